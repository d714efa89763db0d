// The plain Gram tile kernel: the baseline every CPU runs, and the reference
// the SIMD kernels are tested against.
#include <algorithm>
#include <cstdint>

#include "linalg_kernels.h"

namespace genaug {

namespace {
#include "linalg_eigen_impl.h"
constexpr int MR = 4;
constexpr int NR = 4;

void gram_tile(const double* a, const double* b, int64_t rb, double* out) {
  double acc[MR][NR] = {};
  for (int64_t r = 0; r < rb; ++r) {
    const double* ar = a + r * MR;
    const double* br = b + r * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ar[i] * br[j];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = acc[i][j];
}
}  // namespace

const LinalgKernels& linalg_kernels_scalar() {
  static const LinalgKernels k{Isa::Scalar, MR, NR, gram_tile, eigen_impl::reflect_panel, eigen_impl::rotate_panel, eigen_impl::gemm_acc};
  return k;
}

const LinalgKernels& linalg_kernels_for(Isa isa) {
#ifdef GENAUG_HAVE_X86_KERNELS
  isa = clamp_isa(isa);
  if (isa == Isa::Avx512) return linalg_kernels_avx512();
  if (isa == Isa::Avx2) return linalg_kernels_avx2();
#else
  (void)isa;
#endif
  return linalg_kernels_scalar();
}

}  // namespace genaug
