// The pieces the compositor's row kernels share, included by
// composite_kernels_*.cc only, so each compiles them with its own flags.
#pragma once
#include <cstdint>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define GENAUG_COMPOSITE_SSE2 1
#endif

namespace genaug {
// Anonymous: every composite_kernels_*.cc gets its own copy compiled for its
// ISA (one shared inline definition would let the linker pick one for all).
namespace {
namespace composite_impl {

// Pixels [k, n) of a row, one at a time: the reference formula.
inline void resize_tail(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw, int32_t b,
                        int64_t k, int64_t n, bool wide, uint8_t* o) {
  const int32_t b0 = 2048 - b;
  const int64_t dx = wide ? 4 : 0;  // sw == 1: both taps are the one column (a = 0)
  for (; k < n; ++k) {
    const uint8_t* p0 = r0 + xoff[k];
    const uint8_t* p1 = r1 + xoff[k];
    const int32_t wa0 = xw[k] & 0xFFFF, wa1 = xw[k] >> 16;
    for (int c = 0; c < 4; ++c) {
      const int32_t h0 = (p0[c] * wa0 + p0[dx + c] * wa1) >> 4;
      const int32_t h1 = (p1[c] * wa0 + p1[dx + c] * wa1) >> 4;
      o[4 * k + c] = static_cast<uint8_t>((h0 * b0 + h1 * b + (1 << 17)) >> 18);
    }
  }
}

#if GENAUG_COMPOSITE_SSE2
// Pixels from k on, two at a time (the reference's arithmetic); needs wide
// rows (the two taps of a column are one 8-byte load). Returns where it stopped.
inline int64_t resize_pairs_sse2(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw,
                                 int32_t b, int64_t k, int64_t n, uint8_t* o) {
  const int32_t b0 = 2048 - b;
  const __m128i z = _mm_setzero_si128();
  const __m128i wb = _mm_set1_epi32(b0 | (b << 16));
  const __m128i rnd = _mm_set1_epi32(1 << 17);
  for (; k + 2 <= n; k += 2) {
    // Two output pixels: taps (p0 p1) of rows r0 and r1 for columns k and k + 1.
    __m128i a0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r0 + xoff[k]));
    __m128i a1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r0 + xoff[k + 1]));
    __m128i c0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1 + xoff[k]));
    __m128i c1 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1 + xoff[k + 1]));
    // [r0 r1 g0 g1 b0 b1 a0 a1] bytes, then 16-bit.
    a0 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(a0, _mm_srli_epi64(a0, 32)), z);
    a1 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(a1, _mm_srli_epi64(a1, 32)), z);
    c0 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(c0, _mm_srli_epi64(c0, 32)), z);
    c1 = _mm_unpacklo_epi8(_mm_unpacklo_epi8(c1, _mm_srli_epi64(c1, 32)), z);
    const __m128i w0 = _mm_set1_epi32(xw[k]);
    const __m128i w1 = _mm_set1_epi32(xw[k + 1]);
    // Horizontal: 4 channels each, 32-bit, then >> 4 to fit 16 bits.
    const __m128i h00 = _mm_srai_epi32(_mm_madd_epi16(a0, w0), 4);  // row 0, pixel k
    const __m128i h01 = _mm_srai_epi32(_mm_madd_epi16(a1, w1), 4);  // row 0, pixel k+1
    const __m128i h10 = _mm_srai_epi32(_mm_madd_epi16(c0, w0), 4);  // row 1, pixel k
    const __m128i h11 = _mm_srai_epi32(_mm_madd_epi16(c1, w1), 4);  // row 1, pixel k+1
    const __m128i r0p = _mm_packs_epi32(h00, h01);  // row 0: k rgba, k+1 rgba
    const __m128i r1p = _mm_packs_epi32(h10, h11);  // row 1
    const __m128i vlo = _mm_madd_epi16(_mm_unpacklo_epi16(r0p, r1p), wb);  // pixel k
    const __m128i vhi = _mm_madd_epi16(_mm_unpackhi_epi16(r0p, r1p), wb);  // pixel k+1
    const __m128i v0 = _mm_srai_epi32(_mm_add_epi32(vlo, rnd), 18);
    const __m128i v1 = _mm_srai_epi32(_mm_add_epi32(vhi, rnd), 18);
    const __m128i v = _mm_packus_epi16(_mm_packs_epi32(v0, v1), z);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 4 * k), v);
  }
  return k;
}
#endif

}  // namespace composite_impl
}  // namespace
}  // namespace genaug
