// AVX2 kernels of the screened similarity engine (compiled with -mavx2 -mfma;
// used only when CPUID says so). vpmaddubsw multiplies 32 unsigned by 32
// signed bytes and adds pairs into 16 bits; with both sides within 7 bits
// (queries q + 64 in [1, 127], database q in [-63, 63]) the 16-bit sums of
// two such results never saturate, so one vpmaddwd per 64 multiply-adds
// widens them to 32 bits.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "screen_kernels.h"

namespace genaug {

namespace {
constexpr int MR = 4;
constexpr int NR = 16;  // two ymm registers of 8 int32 lanes

// Database side within 8 bits ([-127, 127]): vpmaddubsw lanes reach
// 2 * 127 * 127 = 32258, so every product is widened at once (one vpmaddwd
// per 32 multiply-adds; slower, but half the database rounding error).
void micro8(int64_t k4, const uint8_t* a, const int8_t* b, const float* ascale, const float* bscale,
            const int32_t* corr, float* c, int64_t ldc) {
  __m256i c0[MR], c1[MR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_si256();
    c1[i] = _mm256_setzero_si256();
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t k = 0; k < k4; ++k) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4 + 32));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      int32_t av;
      __builtin_memcpy(&av, a + k * MR * 4 + i * 4, 4);
      const __m256i ai = _mm256_set1_epi32(av);
      c0[i] = _mm256_add_epi32(c0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b0), ones));
      c1[i] = _mm256_add_epi32(c1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b1), ones));
    }
  }
  const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr));
  const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + 8));
  const __m256 s0 = _mm256_loadu_ps(bscale);
  const __m256 s1 = _mm256_loadu_ps(bscale + 8);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    const __m256 ai = _mm256_set1_ps(ascale[i]);
    _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(ai, _mm256_mul_ps(s0, _mm256_cvtepi32_ps(_mm256_sub_epi32(c0[i], k0)))));
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(ai, _mm256_mul_ps(s1, _mm256_cvtepi32_ps(_mm256_sub_epi32(c1[i], k1)))));
  }
}

void micro(int64_t k4, const uint8_t* a, const int8_t* b, const float* ascale, const float* bscale,
           const int32_t* corr, float* c, int64_t ldc) {
  __m256i c0[MR], c1[MR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_si256();
    c1[i] = _mm256_setzero_si256();
  }
  const __m256i ones = _mm256_set1_epi16(1);
  // Two depth groups per vpmaddwd: with both sides within 7 bits each
  // vpmaddubsw lane is at most 2 * 127 * 63 = 16002, so the 16-bit sum of two
  // (32004) is exact.
  int64_t k = 0;
  for (; k + 2 <= k4; k += 2) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4 + 32));
    const __m256i b2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4 + 64));
    const __m256i b3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4 + 96));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      int32_t av, aw;
      __builtin_memcpy(&av, a + k * MR * 4 + i * 4, 4);
      __builtin_memcpy(&aw, a + (k + 1) * MR * 4 + i * 4, 4);
      const __m256i ai = _mm256_set1_epi32(av), aj = _mm256_set1_epi32(aw);
      c0[i] = _mm256_add_epi32(
          c0[i], _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(ai, b0), _mm256_maddubs_epi16(aj, b2)), ones));
      c1[i] = _mm256_add_epi32(
          c1[i], _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(ai, b1), _mm256_maddubs_epi16(aj, b3)), ones));
    }
  }
  for (; k < k4; ++k) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * NR * 4 + 32));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      int32_t av;
      __builtin_memcpy(&av, a + k * MR * 4 + i * 4, 4);
      const __m256i ai = _mm256_set1_epi32(av);
      c0[i] = _mm256_add_epi32(c0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b0), ones));
      c1[i] = _mm256_add_epi32(c1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b1), ones));
    }
  }
  const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr));
  const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + 8));
  const __m256 s0 = _mm256_loadu_ps(bscale);
  const __m256 s1 = _mm256_loadu_ps(bscale + 8);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    const __m256 ai = _mm256_set1_ps(ascale[i]);
    const __m256 v0 = _mm256_mul_ps(ai, _mm256_mul_ps(s0, _mm256_cvtepi32_ps(_mm256_sub_epi32(c0[i], k0))));
    const __m256 v1 = _mm256_mul_ps(ai, _mm256_mul_ps(s1, _mm256_cvtepi32_ps(_mm256_sub_epi32(c1[i], k1))));
    _mm256_storeu_ps(c + i * ldc, v0);
    _mm256_storeu_ps(c + i * ldc + 8, v1);
  }
}

// Eight rows at a time, one per lane: each lane runs exactly the chain of the
// float32 micro-kernels (k = 0, 1, ... from 0), so the bytes are theirs. The
// rows are read 8 floats at a time and transposed in registers.
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                       __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
  r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
  r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
  r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
  r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}

float load_row(const float* src, bool has_scale, double scale, int64_t D, float* v) {
  __m256 mx = _mm256_setzero_ps();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  int64_t k = 0;
  if (has_scale) {
    const __m256d sc = _mm256_set1_pd(scale);
    for (; k + 8 <= D; k += 8) {
      const __m256 x = _mm256_loadu_ps(src + k);
      const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), sc));
      const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), sc));
      const __m256 y = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
      _mm256_storeu_ps(v + k, y);
      mx = _mm256_max_ps(mx, _mm256_and_ps(y, absmask));
    }
    for (; k < D; ++k) v[k] = static_cast<float>(src[k] * scale);
  } else {
    for (; k + 8 <= D; k += 8) {
      const __m256 y = _mm256_loadu_ps(src + k);
      _mm256_storeu_ps(v + k, y);
      mx = _mm256_max_ps(mx, _mm256_and_ps(y, absmask));
    }
    for (; k < D; ++k) v[k] = src[k];
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float m = 0.0f;
  for (int l = 0; l < 8; ++l) m = lanes[l] > m ? lanes[l] : m;
  for (int64_t j = k - (k % 8 == 0 ? 0 : 0); j < D; ++j) m = std::fabs(v[j]) > m ? std::fabs(v[j]) : m;
  return m;
}

void quantize(const float* v, int64_t D, float s, int qmax, int offset, uint8_t* q, double* nq2, double* ne2,
              double* nv2, int64_t* sumq) {
  const __m256i off = _mm256_set1_epi32(offset);
  const float inv = s > 0.0f ? static_cast<float>(1.0 / static_cast<double>(s)) : 0.0f;
  const __m256 iv = _mm256_set1_ps(inv);
  const __m256i lim = _mm256_set1_epi32(qmax), nlim = _mm256_set1_epi32(-qmax);
  const __m256d sd = _mm256_set1_pd(static_cast<double>(s));
  __m256d aq = _mm256_setzero_pd(), ae = _mm256_setzero_pd(), av = _mm256_setzero_pd();
  __m256i as = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 8 <= D; k += 8) {
    const __m256 x = _mm256_loadu_ps(v + k);
    __m256i qi = _mm256_cvtps_epi32(_mm256_mul_ps(x, iv));  // round to nearest even
    qi = _mm256_max_epi32(nlim, _mm256_min_epi32(lim, qi));
    as = _mm256_add_epi32(as, qi);
    // 8 int32 lanes -> 8 bytes.
    const __m256i b = _mm256_add_epi32(qi, off);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    const __m128i by = _mm_packs_epi16(w, w);  // q + offset is within [-63, 127]: signed bytes
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + k), by);
    for (int h = 0; h < 2; ++h) {
      const __m256d xd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(x, 1) : _mm256_castps256_ps128(x));
      const __m256d dq = _mm256_mul_pd(sd, _mm256_cvtepi32_pd(h ? _mm256_extracti128_si256(qi, 1) : _mm256_castsi256_si128(qi)));
      const __m256d e = _mm256_sub_pd(xd, dq);
      aq = _mm256_fmadd_pd(dq, dq, aq);
      ae = _mm256_fmadd_pd(e, e, ae);
      av = _mm256_fmadd_pd(xd, xd, av);
    }
  }
  alignas(32) double dq4[4], de4[4], dv4[4];
  alignas(32) int32_t s8[8];
  _mm256_store_pd(dq4, aq);
  _mm256_store_pd(de4, ae);
  _mm256_store_pd(dv4, av);
  _mm256_store_si256(reinterpret_cast<__m256i*>(s8), as);
  double tq = dq4[0] + dq4[1] + dq4[2] + dq4[3], te = de4[0] + de4[1] + de4[2] + de4[3];
  double tv = dv4[0] + dv4[1] + dv4[2] + dv4[3];
  int64_t ts = 0;
  for (int l = 0; l < 8; ++l) ts += s8[l];
  for (; k < D; ++k) {
    const double x = v[k];
    int qi = static_cast<int>(std::nearbyint(v[k] * inv));
    qi = qi > qmax ? qmax : (qi < -qmax ? -qmax : qi);
    q[k] = static_cast<uint8_t>(qi + offset);
    const double dq = static_cast<double>(s) * qi, e = x - dq;
    tq += dq * dq;
    te += e * e;
    tv += x * x;
    ts += qi;
  }
  *nq2 = tq;
  *ne2 = te;
  *nv2 = tv;
  *sumq = ts;
}

inline __m256 scale8(__m256 x, __m256d s) {
  const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), s));
  const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), s));
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

void pack_rows(const float* const* rows, const double* scale, int width, int64_t D, float* out) {
  for (int g = 0; g < width; g += 8) {
    const float* r[8];
    __m256d s[8];
    for (int l = 0; l < 8; ++l) {
      r[l] = rows[g + l];
      s[l] = _mm256_set1_pd(scale ? scale[g + l] : 1.0);
    }
    int64_t k = 0;
    for (; k + 8 <= D; k += 8) {
      __m256 v[8];
      for (int l = 0; l < 8; ++l) {
        v[l] = _mm256_loadu_ps(r[l] + k);
        if (scale) v[l] = scale8(v[l], s[l]);
      }
      transpose8(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(out + (k + l) * width + g, v[l]);
    }
    for (; k < D; ++k)
      for (int l = 0; l < 8; ++l)
        out[k * width + g + l] = scale ? static_cast<float>(r[l][k] * scale[g + l]) : r[l][k];
  }
}

// Columns k..k+8 of 8 rows, transposed: v[l] is column k + l, one row per
// lane. The rows come from memory once, 8 (or 16) streams at once, which the
// hardware prefetcher alone keeps too short: prefetch ahead every 16 columns.
// Columns k..k+8 of 8 rows, transposed (v[l] is column k + l, one row per lane), no prefetch.
__attribute__((always_inline)) inline void load8_t(const float* const* r, int64_t k, __m256 v[8]) {
  __m256 v0 = _mm256_loadu_ps(r[0] + k), v1 = _mm256_loadu_ps(r[1] + k), v2 = _mm256_loadu_ps(r[2] + k);
  __m256 v3 = _mm256_loadu_ps(r[3] + k), v4 = _mm256_loadu_ps(r[4] + k), v5 = _mm256_loadu_ps(r[5] + k);
  __m256 v6 = _mm256_loadu_ps(r[6] + k), v7 = _mm256_loadu_ps(r[7] + k);
  transpose8(v0, v1, v2, v3, v4, v5, v6, v7);
  v[0] = v0, v[1] = v1, v[2] = v2, v[3] = v3, v[4] = v4, v[5] = v5, v[6] = v6, v[7] = v7;
}

__attribute__((always_inline)) inline void load8_transposed(const float* const* r, int64_t k, __m256 v[8]) {
  // The address may lie past the row (a prefetch there is a harmless hint), so it is computed as an integer.
  if (k % 16 == 0)
    for (int l = 0; l < 8; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(r[l]) + (k + 192) * sizeof(float)), _MM_HINT_T0);
  load8_t(r, k, v);
}

// Adds the squares of 8 floats, in double (exact products), to lo (lanes 0-3) and hi (lanes 4-7).
__attribute__((always_inline)) inline void add_squares(__m256 x, __m256d& lo, __m256d& hi) {
  const __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
  const __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  lo = _mm256_add_pd(lo, _mm256_mul_pd(xl, xl));
  hi = _mm256_add_pd(hi, _mm256_mul_pd(xh, xh));
}

// pack_rows with the scales computed here, in the same pass (see
// screen_kernels.h): pass 1 transposes the raw rows into `out` and sums each
// row's squares in double, one row per lane, k = 0, 1, ... in order (as
// prepare() does; the products of floats are exact in double, so there is
// no rounding a fused multiply-add could change); pass 2 scales the panel in
// place while it is still in L1.
bool pack_rows_norm(const float* const* rows, int width, int64_t D, float* out, double* scale) {
  bool ok = true;
  for (int g = 0; g < width; g += 16) {
    const int ng = width - g >= 16 ? 2 : 1;
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    // One group of 8 rows per call, h fixed at compile time so each group's
    // loads are their own instructions with a constant stride (what the
    // hardware stride prefetcher follows), the row pointers in registers.
    const float* rp[16];
    for (int l = 0; l < 8 * ng; ++l) rp[l] = rows[g + l];
    auto step = [&](auto hc, int64_t k) __attribute__((always_inline)) {
      constexpr int h = decltype(hc)::value;
      const float* const* r = rp + 8 * h;
      __m256 v[8];
      load8_transposed(r, k, v);
      for (int l = 0; l < 8; ++l) {
        _mm256_storeu_ps(out + (k + l) * width + g + 8 * h, v[l]);
        add_squares(v[l], acc[2 * h], acc[2 * h + 1]);
      }
    };
    int64_t k = 0;
    if (ng == 2) {
      for (; k + 8 <= D; k += 8) {
        step(std::integral_constant<int, 0>(), k);
        step(std::integral_constant<int, 1>(), k);
      }
    } else {
      for (; k + 8 <= D; k += 8) step(std::integral_constant<int, 0>(), k);
    }
    alignas(32) double sum[16];
    for (int h = 0; h < 2 * ng; ++h) _mm256_store_pd(sum + 4 * h, acc[h]);
    for (; k < D; ++k)
      for (int l = 0; l < 8 * ng; ++l) {
        const float x = rows[g + l][k];
        out[k * width + g + l] = x;
        sum[l] += static_cast<double>(x) * x;
      }
    for (int l = 0; l < 8 * ng; ++l) {
      if (!std::isfinite(sum[l])) ok = false;
      const double n = std::sqrt(sum[l]);
      scale[g + l] = n > 0.0 ? 1.0 / n : 0.0;
    }
  }
  if (!ok) return false;
  for (int g = 0; g < width; g += 8) {
    const __m256d slo = _mm256_loadu_pd(scale + g), shi = _mm256_loadu_pd(scale + g + 4);
    for (int64_t k = 0; k < D; ++k) {
      float* p = out + k * width + g;
      const __m256 x = _mm256_loadu_ps(p);
      const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), slo));
      const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), shi));
      _mm256_storeu_ps(p, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
    }
  }
  return true;
}

// The multipliers of pack_rows_norm without the packing: n rows (a multiple
// of 8), eight per group, one row per lane, summed k = 0, 1, ... in order.
bool row_norms(const float* const* rows, int n, int64_t D, double* scale) {
  bool ok = true;
  for (int g = 0; g < n; g += 8) {
    const float* const* r = rows + g;
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t k = 0;
    for (; k + 8 <= D; k += 8) {
      __m256 v[8];
      load8_transposed(r, k, v);
      for (int l = 0; l < 8; ++l) add_squares(v[l], lo, hi);
    }
    alignas(32) double sum[8];
    _mm256_store_pd(sum, lo);
    _mm256_store_pd(sum + 4, hi);
    for (; k < D; ++k)
      for (int l = 0; l < 8; ++l) sum[l] += static_cast<double>(r[l][k]) * r[l][k];
    for (int l = 0; l < 8; ++l) {
      if (!std::isfinite(sum[l])) ok = false;
      const double nn = std::sqrt(sum[l]);
      scale[g + l] = nn > 0.0 ? 1.0 / nn : 0.0;
    }
  }
  return ok;
}

// quant_raw (see screen_kernels.h): two passes over each row, the second
// while it is in L1. Pass 1: max |x| and the sum of squares (four float
// chains). Pass 2: q = round(x * inv), clamped; the error x - t q with one
// rounding (vfnmadd); its squares; the bytes, two 4-byte groups per 8 depths
// straight into the panel.
void quant_raw(const float* const* rows, int n, int64_t D, int qmax, int8_t* panel, RawQuant* st) {
  const int64_t D4 = (D + 3) / 4 * 4;
  const int64_t ld = int64_t(NR) * 4;  // bytes per group of 4 depths
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lim = _mm256_set1_epi32(qmax), nlim = _mm256_set1_epi32(-qmax);
  for (int r = 0; r < NR; ++r) {
    int8_t* dst = panel + r * 4;
    if (r >= n) {
      for (int64_t g = 0; g < D4 / 4; ++g) __builtin_memset(dst + g * ld, 0, 4);
      st[r] = RawQuant{};
      continue;
    }
    const float* x = rows[r];
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= D; k += 32) {
      const __m256 a = _mm256_loadu_ps(x + k), b = _mm256_loadu_ps(x + k + 8);
      const __m256 c = _mm256_loadu_ps(x + k + 16), d = _mm256_loadu_ps(x + k + 24);
      m0 = _mm256_max_ps(m0, _mm256_max_ps(_mm256_and_ps(a, absmask), _mm256_and_ps(b, absmask)));
      m1 = _mm256_max_ps(m1, _mm256_max_ps(_mm256_and_ps(c, absmask), _mm256_and_ps(d, absmask)));
      s0 = _mm256_fmadd_ps(a, a, s0);
      s1 = _mm256_fmadd_ps(b, b, s1);
      s2 = _mm256_fmadd_ps(c, c, s2);
      s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; k + 8 <= D; k += 8) {
      const __m256 a = _mm256_loadu_ps(x + k);
      m0 = _mm256_max_ps(m0, _mm256_and_ps(a, absmask));
      s0 = _mm256_fmadd_ps(a, a, s0);
    }
    alignas(32) float lm[8], ls[8];
    _mm256_store_ps(lm, _mm256_max_ps(m0, m1));
    _mm256_store_ps(ls, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    float mx = 0.0f, ss = 0.0f;
    for (int l = 0; l < 8; ++l) {
      mx = lm[l] > mx ? lm[l] : mx;
      ss += ls[l];
    }
    for (int64_t j = k; j < D; ++j) {
      const float a = std::fabs(x[j]);
      mx = a > mx ? a : mx;
      ss = std::fma(x[j], x[j], ss);
    }
    RawQuant q;
    q.ssx = ss;
    if (!(ss >= 0x1p-100f && ss <= 0x1p100f)) {
      st[r] = q;
      continue;
    }
    const float t = mx / static_cast<float>(qmax);
    const float inv = static_cast<float>(qmax) / mx;
    const __m256 iv = _mm256_set1_ps(inv), tv = _mm256_set1_ps(t);
    __m256 e0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps();
    __m256i sq = _mm256_setzero_si256();
    k = 0;
    for (; k + 8 <= D; k += 8) {
      const __m256 a = _mm256_loadu_ps(x + k);
      __m256i qi = _mm256_cvtps_epi32(_mm256_mul_ps(a, iv));
      qi = _mm256_max_epi32(nlim, _mm256_min_epi32(lim, qi));
      sq = _mm256_add_epi32(sq, qi);
      const __m256 e = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(qi), tv, a);
      if ((k & 8) == 0)
        e0 = _mm256_fmadd_ps(e, e, e0);
      else
        e1 = _mm256_fmadd_ps(e, e, e1);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
      const __m128i by = _mm_packs_epi16(w, w);
      _mm_storeu_si32(dst + (k >> 2) * ld, by);
      _mm_storeu_si32(dst + ((k >> 2) + 1) * ld, _mm_srli_si128(by, 4));
    }
    alignas(32) float le[8];
    alignas(32) int32_t lq[8];
    _mm256_store_ps(le, _mm256_add_ps(e0, e1));
    _mm256_store_si256(reinterpret_cast<__m256i*>(lq), sq);
    float se = 0.0f;
    int32_t sumq = 0;
    for (int l = 0; l < 8; ++l) {
      se += le[l];
      sumq += lq[l];
    }
    if (k < D) {
      int8_t tail[4] = {0, 0, 0, 0};
      for (int64_t j = k; j < D; ++j) {
        int qi = static_cast<int>(std::nearbyint(x[j] * inv));
        qi = qi > qmax ? qmax : (qi < -qmax ? -qmax : qi);
        const float e = std::fma(-static_cast<float>(qi), t, x[j]);
        se = std::fma(e, e, se);
        sumq += qi;
        tail[j & 3] = static_cast<int8_t>(qi);  // k is a multiple of 8: depth j is in group j / 4
        if ((j & 3) == 3 || j == D - 1) {
          __builtin_memcpy(dst + (j >> 2) * ld, tail, 4);
          tail[0] = tail[1] = tail[2] = tail[3] = 0;
        }
      }
    }
    q.t = t;
    q.sse = se;
    q.sumq = sumq;
    st[r] = q;
  }
}

int64_t collect_ge(const float* row, int64_t n, float t, int32_t* idx) {
  const __m256 tv = _mm256_set1_ps(t);
  int64_t m = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    unsigned bits = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + j), tv, _CMP_GE_OQ)));
    while (bits) {
      idx[m++] = static_cast<int32_t>(j + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
  for (; j < n; ++j)
    if (row[j] >= t) idx[m++] = static_cast<int32_t>(j);
  return m;
}

void exact_dots(const float* a, const float* const* rows, int64_t n, int64_t D, float* out) {
  for (int64_t x = 0; x < n; x += 8) {
    const int64_t m = n - x < 8 ? n - x : 8;
    const float* r[8];
    for (int l = 0; l < 8; ++l) r[l] = rows[x + (l < m ? l : 0)];
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= D; k += 8) {
      __m256 v[8];
      load8_t(r, k, v);
      for (int l = 0; l < 8; ++l) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(a + k + l), v[l], acc);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (int l = 0; l < m; ++l) {
      float s = lanes[l];
      for (int64_t kk = k; kk < D; ++kk) s = std::fma(a[kk], r[l][kk], s);
      out[x + l] = s;
    }
  }
}
// Scales 8 floats, one per lane, each by its own double (lanes 0-3: lo, 4-7: hi), rounding once to float.
inline __m256 scale_lanes(__m256 x, __m256d lo, __m256d hi) {
  const __m128 l = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), lo));
  const __m128 h = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), hi));
  return _mm256_insertf128_ps(_mm256_castps128_ps256(l), h, 1);
}

template <bool kScaled>
void exact_dots_pairs_t(const float* const* a, const float* const* b, const double* bscale, int64_t n, int64_t D,
                        float* out) {
  for (int64_t x = 0; x < n; x += 8) {
    const int64_t m = n - x < 8 ? n - x : 8;
    const float *ra[8], *rb[8];
    alignas(32) double sc[8];
    for (int l = 0; l < 8; ++l) {
      ra[l] = a[x + (l < m ? l : 0)];
      rb[l] = b[x + (l < m ? l : 0)];
      sc[l] = kScaled ? bscale[x + (l < m ? l : 0)] : 1.0;
    }
    const __m256d slo = _mm256_load_pd(sc), shi = _mm256_load_pd(sc + 4);
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= D; k += 8) {
      __m256 v[8], w[8];
      load8_t(rb, k, v);
      if (kScaled)
        for (int l = 0; l < 8; ++l) v[l] = scale_lanes(v[l], slo, shi);
      load8_t(ra, k, w);
      for (int l = 0; l < 8; ++l) acc = _mm256_fmadd_ps(w[l], v[l], acc);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    for (int l = 0; l < m; ++l) {
      float s = lanes[l];
      for (int64_t kk = k; kk < D; ++kk)
        s = std::fma(ra[l][kk], kScaled ? static_cast<float>(rb[l][kk] * sc[l]) : rb[l][kk], s);
      out[x + l] = s;
    }
  }
}

void exact_dots_pairs(const float* const* a, const float* const* b, const double* bscale, int64_t n, int64_t D,
                      float* out) {
  if (bscale)
    exact_dots_pairs_t<true>(a, b, bscale, n, D, out);
  else
    exact_dots_pairs_t<false>(a, b, bscale, n, D, out);
}
}  // namespace

const ScreenKernels& screen_kernels_avx2() {
  static const ScreenKernels k{MR, NR, micro, micro8, exact_dots, load_row, quantize, pack_rows, collect_ge,
                                pack_rows_norm, row_norms, exact_dots_pairs, quant_raw};
  return k;
}

}  // namespace genaug
