// Portable kernels: the baseline every CPU runs, and the shape the SIMD
// kernels must agree with.
#include <limits>

#include "kernels.h"
#include "kernels_stats_impl.h"

namespace genaug {

namespace {
constexpr int MR = 4;
constexpr int NR = 8;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * ldc + j] : 0.0f;
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = a + k * MR;
    const float* bk = b + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ak[i] * bk[j];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

int64_t scan_gt(const float* row, int64_t from, int64_t n, float t) {
  for (int64_t j = from; j < n; ++j)
    if (row[j] > t) return j;
  return n;
}

float max_range(const float* row, int64_t from, int64_t to) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = from; j < to; ++j) m = row[j] > m ? row[j] : m;
  return m;
}
}  // namespace

const Kernels& kernels_scalar() {
  static const Kernels k{Isa::Scalar, MR, NR, micro, scan_gt, max_range, stats_impl::sum, stats_impl::centered_moments,
                             stats_impl::column_sums, stats_impl::column_moments, stats_impl::half_to_float};
  return k;
}

const Kernels& kernels_for(Isa isa) {
#ifdef GENAUG_HAVE_X86_KERNELS
  isa = clamp_isa(isa);
  if (isa == Isa::Avx512) return kernels_avx512();
  if (isa == Isa::Avx2) return kernels_avx2();
#else
  (void)isa;
#endif
  return kernels_scalar();
}

}  // namespace genaug
