// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl;
// used only when CPUID says so).
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels.h"
#include "kernels_stats_impl.h"

namespace genaug {

namespace {
constexpr int MR = 12;
constexpr int NR = 32;  // two zmm registers

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    c0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    c1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * NR);
    const __m512 b1 = _mm512_load_ps(b + k * NR + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[k * MR + i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, c0[i]);
    _mm512_storeu_ps(c + i * ldc + 16, c1[i]);
  }
}

int64_t scan_gt(const float* row, int64_t from, int64_t n, float t) {
  int64_t j = from;
  const __m512 tv = _mm512_set1_ps(t);
  for (; j + 64 <= n; j += 64) {
    __mmask16 m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j), tv, _CMP_GT_OQ);
    __mmask16 m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j + 16), tv, _CMP_GT_OQ);
    __mmask16 m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j + 32), tv, _CMP_GT_OQ);
    __mmask16 m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j + 48), tv, _CMP_GT_OQ);
    if ((m0 | m1 | m2 | m3) != 0) break;
  }
  for (; j + 16 <= n; j += 16) {
    __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j), tv, _CMP_GT_OQ);
    if (m != 0) return j + __builtin_ctz(static_cast<unsigned>(m));
  }
  for (; j < n; ++j)
    if (row[j] > t) return j;
  return n;
}

float max_range(const float* row, int64_t from, int64_t to) {
  int64_t j = from;
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (; j + 16 <= to; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  float r = lanes[0];
  for (int i = 1; i < 16; ++i) r = lanes[i] > r ? lanes[i] : r;
  for (; j < to; ++j) r = row[j] > r ? row[j] : r;
  return r;
}
// Statistics kernels by hand: four independent accumulator chains (the
// generic loops leave one chain per quantity, latency-bound at 4 cycles per
// vector), float lanes flushed into double every 64 vectors.
double sum16(const float* x, int64_t n) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  while (i + 64 <= n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    const int64_t end = i + std::min<int64_t>(1024, (n - i) / 64 * 64);
    for (; i < end; i += 64) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    const __m512 t = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(acc0, acc1));
  double s = 0;
  for (int l = 0; l < 8; ++l) s += lanes[l];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

void centered_moments16(const float* x, int64_t n, double center, double* s1, double* s2, float* mn, float* mx) {
  const float c = static_cast<float>(center);
  const __m512 cv = _mm512_set1_ps(c);
  __m512d d1a = _mm512_setzero_pd(), d1b = _mm512_setzero_pd(), d2a = _mm512_setzero_pd(), d2b = _mm512_setzero_pd();
  __m512 lo = _mm512_set1_ps(std::numeric_limits<float>::infinity()), hi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 lo2 = lo, hi2 = hi;
  int64_t i = 0;
  while (i + 32 <= n) {
    __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps(), q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    const int64_t end = i + std::min<int64_t>(512, (n - i) / 32 * 32);
    for (; i < end; i += 32) {
      const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
      const __m512 e0 = _mm512_sub_ps(v0, cv), e1 = _mm512_sub_ps(v1, cv);
      p0 = _mm512_add_ps(p0, e0);
      p1 = _mm512_add_ps(p1, e1);
      q0 = _mm512_fmadd_ps(e0, e0, q0);
      q1 = _mm512_fmadd_ps(e1, e1, q1);
      lo = _mm512_min_ps(lo, v0);
      hi = _mm512_max_ps(hi, v0);
      lo2 = _mm512_min_ps(lo2, v1);
      hi2 = _mm512_max_ps(hi2, v1);
    }
    const __m512 p = _mm512_add_ps(p0, p1), q = _mm512_add_ps(q0, q1);
    d1a = _mm512_add_pd(d1a, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    d1b = _mm512_add_pd(d1b, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
    d2a = _mm512_add_pd(d2a, _mm512_cvtps_pd(_mm512_castps512_ps256(q)));
    d2b = _mm512_add_pd(d2b, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1))));
  }
  alignas(64) double a[8], b[8];
  alignas(64) float l[16], h[16];
  _mm512_store_pd(a, _mm512_add_pd(d1a, d1b));
  _mm512_store_pd(b, _mm512_add_pd(d2a, d2b));
  _mm512_store_ps(l, _mm512_min_ps(lo, lo2));
  _mm512_store_ps(h, _mm512_max_ps(hi, hi2));
  double t1 = 0, t2 = 0;
  float m0 = *mn, m1 = *mx;
  for (int k = 0; k < 8; ++k) {
    t1 += a[k];
    t2 += b[k];
  }
  for (int k = 0; k < 16; ++k) {
    m0 = l[k] < m0 ? l[k] : m0;
    m1 = h[k] > m1 ? h[k] : m1;
  }
  for (; i < n; ++i) {
    const float v = x[i];
    const double d = static_cast<double>(v) - static_cast<double>(c);
    t1 += d;
    t2 += d * d;
    m0 = v < m0 ? v : m0;
    m1 = v > m1 ? v : m1;
  }
  *s1 += t1;
  *s2 += t2;
  *mn = m0;
  *mx = m1;
}
}  // namespace

const Kernels& kernels_avx512() {
  static const Kernels k{Isa::Avx512, MR, NR, micro, scan_gt, max_range, sum16, centered_moments16,
                             stats_impl::column_sums, stats_impl::column_moments, stats_impl::half_to_float};
  return k;
}

}  // namespace genaug
