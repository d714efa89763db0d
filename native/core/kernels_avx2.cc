// AVX2 + FMA kernels (compiled with -mavx2 -mfma; used only when CPUID says so).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
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

// NHWC statistics (bnstats): the same per-column arithmetic as
// stats_impl::column_sums / column_moments compiled for AVX2 (float runs of
// kRun rows flushed into double, the square of the deviation fused into its
// sum as the compiler does for this target), written with intrinsics so the
// lane accumulators stay in registers and the flushes into double are
// vector conversions and adds: the same bytes, fewer instructions.
constexpr int kLanes = 16;  // stats_impl::L: the vector/tail column split
constexpr int64_t kRun = 16;  // stats_impl::kRun

// Runs of kRun rows, each row read whole and in memory order (the block
// streams in from memory as the prefetchers like it), added into float run
// accumulators that stay in L1 (up to kSlab columns at a time), flushed into
// double after each run: per column the same float runs of kRun rows as
// stats_impl::column_sums.
constexpr int64_t kSlab = 1024;
// Software prefetch distance of the column sums: 16 KiB ahead of the row
// being read (the hardware prefetchers alone leave the memory idle too often).
constexpr int64_t kAhead = 16384;

// The address `bytes` past p, for a prefetch: computed as an integer, since
// it may lie past the end of the data (a prefetch there is a hint that does
// not fault; pointer arithmetic there would be undefined).
inline const char* ahead(const void* p, int64_t bytes) {
  return reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes));
}

void column_sums(const float* x, int64_t rows, int64_t cols, int64_t stride, double* acc) {
  const int64_t vcols = cols / kLanes * kLanes;
  alignas(32) float a[kSlab];
  for (int64_t c0 = 0; c0 < vcols; c0 += kSlab) {
    const int64_t w = std::min(kSlab, vcols - c0);
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
      const int64_t r1 = std::min(rows, r0 + kRun);
      for (int64_t j = 0; j < w; j += 8) _mm256_store_ps(a + j, _mm256_setzero_ps());
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = x + r * stride + c0;
        for (int64_t j = 0; j < w; j += 16) {
          _mm_prefetch(ahead(row + j, kAhead), _MM_HINT_T0);
          _mm256_store_ps(a + j, _mm256_add_ps(_mm256_load_ps(a + j), _mm256_loadu_ps(row + j)));
          _mm256_store_ps(a + j + 8, _mm256_add_ps(_mm256_load_ps(a + j + 8), _mm256_loadu_ps(row + j + 8)));
        }
      }
      double* d = acc + c0;
      for (int64_t j = 0; j < w; j += 8) {
        const __m256 v = _mm256_load_ps(a + j);
        _mm256_storeu_pd(d + j, _mm256_add_pd(_mm256_loadu_pd(d + j), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
        _mm256_storeu_pd(d + j + 4, _mm256_add_pd(_mm256_loadu_pd(d + j + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
      }
    }
  }
  for (int64_t c = vcols; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) acc[c] += static_cast<double>(x[r * stride + c]);
}

void column_moments(const float* x, int64_t rows, int64_t cols, int64_t stride, const double* center, double* s1,
                    double* s2, float* mn, float* mx) {
  int64_t c = 0;
  // While the block (in L2: bnstats prefetched it here, for the block before)
  // is read for its moments, the
  // memory that follows it -- bnstats' next block of rows, as many bytes as
  // this block when stride == cols -- is prefetched, one line per row step,
  // so that memory keeps streaming during this pass. (A prefetch past the end
  // of the data is a hint that does not fault.)
  for (; c + kLanes <= cols; c += kLanes) {
    const int64_t pf = (rows * stride + (c / kLanes) * rows * 16) * 4;  // bytes from x
    const __m256 cf0 = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(center + c + 4)), _mm256_cvtpd_ps(_mm256_loadu_pd(center + c)));
    const __m256 cf1 = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(center + c + 12)), _mm256_cvtpd_ps(_mm256_loadu_pd(center + c + 8)));
    __m256 lo0 = _mm256_loadu_ps(mn + c), lo1 = _mm256_loadu_ps(mn + c + 8);
    __m256 hi0 = _mm256_loadu_ps(mx + c), hi1 = _mm256_loadu_ps(mx + c + 8);
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
      __m256 a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
      const int64_t r1 = std::min(rows, r0 + kRun);
      for (int64_t r = r0; r < r1; ++r) {
        _mm_prefetch(ahead(x, pf + r * 64), _MM_HINT_T1);
        const __m256 v0 = _mm256_loadu_ps(x + r * stride + c), v1 = _mm256_loadu_ps(x + r * stride + c + 8);
        const __m256 d0 = _mm256_sub_ps(v0, cf0), d1 = _mm256_sub_ps(v1, cf1);
        a10 = _mm256_add_ps(a10, d0);
        a11 = _mm256_add_ps(a11, d1);
        a20 = _mm256_fmadd_ps(d0, d0, a20);
        a21 = _mm256_fmadd_ps(d1, d1, a21);
        // v < lo ? v : lo, as the plain loop (vminps returns its second operand on NaN).
        lo0 = _mm256_min_ps(v0, lo0);
        lo1 = _mm256_min_ps(v1, lo1);
        hi0 = _mm256_max_ps(v0, hi0);
        hi1 = _mm256_max_ps(v1, hi1);
      }
      auto flush = [](double* d, __m256 a) {
        _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(a))));
        _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1))));
      };
      flush(s1 + c, a10);
      flush(s1 + c + 8, a11);
      flush(s2 + c, a20);
      flush(s2 + c + 8, a21);
    }
    _mm256_storeu_ps(mn + c, lo0);
    _mm256_storeu_ps(mn + c + 8, lo1);
    _mm256_storeu_ps(mx + c, hi0);
    _mm256_storeu_ps(mx + c + 8, hi1);
  }
  if (c < cols) stats_impl::column_moments(x + c, rows, cols - c, stride, center + c, s1 + c, s2 + c, mn + c, mx + c);
}
}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k{Isa::Avx2, MR, NR, micro, scan_gt, max_range, stats_impl::sum, stats_impl::centered_moments,
                             column_sums, column_moments, stats_impl::half_to_float};
  return k;
}

}  // namespace genaug
