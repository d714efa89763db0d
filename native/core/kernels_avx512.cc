// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl;
// used only when CPUID says so).
#include <immintrin.h>

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
}  // namespace

const Kernels& kernels_avx512() {
  static const Kernels k{Isa::Avx512, MR, NR, micro, scan_gt, max_range, stats_impl::sum, stats_impl::centered_moments,
                             stats_impl::column_sums, stats_impl::column_moments, stats_impl::half_to_float};
  return k;
}

}  // namespace genaug
