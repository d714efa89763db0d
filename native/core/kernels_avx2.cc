// AVX2 + FMA kernels (compiled with -mavx2 -mfma; used only when CPUID says so).
#include <immintrin.h>

#include <limits>

#include "kernels.h"
#include "kernels_stats_impl.h"

namespace genaug {

namespace {
constexpr int MR = 6;
constexpr int NR = 16;  // two ymm registers

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    c0[i] = accumulate ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    c1[i] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * NR);
    const __m256 b1 = _mm256_load_ps(b + k * NR + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + k * MR + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * ldc, c0[i]);
    _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
  }
}

int64_t scan_gt(const float* row, int64_t from, int64_t n, float t) {
  int64_t j = from;
  const __m256 tv = _mm256_set1_ps(t);
  for (; j + 32 <= n; j += 32) {
    __m256 m0 = _mm256_cmp_ps(_mm256_loadu_ps(row + j), tv, _CMP_GT_OQ);
    __m256 m1 = _mm256_cmp_ps(_mm256_loadu_ps(row + j + 8), tv, _CMP_GT_OQ);
    __m256 m2 = _mm256_cmp_ps(_mm256_loadu_ps(row + j + 16), tv, _CMP_GT_OQ);
    __m256 m3 = _mm256_cmp_ps(_mm256_loadu_ps(row + j + 24), tv, _CMP_GT_OQ);
    __m256 any = _mm256_or_ps(_mm256_or_ps(m0, m1), _mm256_or_ps(m2, m3));
    if (_mm256_movemask_ps(any) != 0) break;
  }
  for (; j < n; ++j)
    if (row[j] > t) return j;
  return n;
}

float max_range(const float* row, int64_t from, int64_t to) {
  int64_t j = from;
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (; j + 8 <= to; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + j));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float r = lanes[0];
  for (int i = 1; i < 8; ++i) r = lanes[i] > r ? lanes[i] : r;
  for (; j < to; ++j) r = row[j] > r ? row[j] : r;
  return r;
}
}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k{Isa::Avx2, MR, NR, micro, scan_gt, max_range, stats_impl::sum, stats_impl::centered_moments,
                             stats_impl::column_sums, stats_impl::column_moments, stats_impl::half_to_float};
  return k;
}

}  // namespace genaug
