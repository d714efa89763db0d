// The compositor's AVX2 row kernel (compiled with -mavx2; used only when
// CPUID says so): 4 pixels per step, then the SSE2 pairs and the reference
// for the last pixels. Same arithmetic as the reference, same bytes.
#include <immintrin.h>

#include "composite_kernels.h"
#include "composite_kernels_impl.h"

namespace genaug {

namespace {

#define GENAUG_TAPS(row, oa, ob)                                                                                     \
  _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>((row) + (oa)))), \
                          _mm_loadl_epi64(reinterpret_cast<const __m128i*>((row) + (ob))), 1)

// Pixels from 0 on, 4 at a time: each 128-bit lane holds one pixel's two taps
// of one source row widened to 16-bit pairs (R0 R1 G0 G1 B0 B1 A0 A1), so one
// madd gives the horizontal sums. Returns where it stopped (a multiple of 4).
int64_t resize_quads(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw4, int32_t b,
                     int64_t n, uint8_t* o) {
  const __m256i shuf = _mm256_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1,  //
                                        0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1);
  const __m256i pair = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                        0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  const __m256i wb = _mm256_set1_epi32((2048 - b) | (b << 16));
  const __m256i rnd = _mm256_set1_epi32(1 << 17);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    __m256i v[2];
    for (int h = 0; h < 2; ++h) {
      const int64_t ka = k + 2 * h;
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xw4 + 4 * ka));
      const __m256i t0 = _mm256_shuffle_epi8(GENAUG_TAPS(r0, xoff[ka], xoff[ka + 1]), shuf);
      const __m256i t1 = _mm256_shuffle_epi8(GENAUG_TAPS(r1, xoff[ka], xoff[ka + 1]), shuf);
      const __m256i h0 = _mm256_srai_epi32(_mm256_madd_epi16(t0, w), 4);  // row 0: pixel ka | ka + 1
      const __m256i h1 = _mm256_srai_epi32(_mm256_madd_epi16(t1, w), 4);  // row 1
      const __m256i p = _mm256_shuffle_epi8(_mm256_packs_epi32(h0, h1), pair);  // (h0, h1) pairs per channel
      v[h] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_madd_epi16(p, wb), rnd), 18);
    }
    // lanes: v[0] = (k | k+1), v[1] = (k+2 | k+3) -> bytes in lane order (k, k+2 | k+1, k+3), then reorder.
    const __m256i w16 = _mm256_packs_epi32(v[0], v[1]);
    const __m256i w8 = _mm256_packus_epi16(w16, w16);
    const __m256i out = _mm256_permutevar8x32_epi32(w8, order);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 4 * k), _mm256_castsi256_si128(out));
  }
  return k;
}
#undef GENAUG_TAPS

void resize_row(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw, const int32_t* xw4,
                int32_t b, int64_t n, bool wide, uint8_t* o) {
  int64_t k = 0;
  if (wide) {
    k = resize_quads(r0, r1, xoff, xw4, b, n, o);
    k = composite_impl::resize_pairs_sse2(r0, r1, xoff, xw, b, k, n, o);
  }
  composite_impl::resize_tail(r0, r1, xoff, xw, b, k, n, wide, o);
}

}  // namespace

const CompositeKernels& composite_kernels_avx2() {
  static const CompositeKernels k{Isa::Avx2, true, resize_row};
  return k;
}

}  // namespace genaug
