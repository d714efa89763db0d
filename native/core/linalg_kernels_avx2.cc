// AVX2 + FMA Gram tile kernel (compiled with -mavx2 -mfma; used only when
// CPUID says so): a 4 x 8 tile, one fused multiply-add chain per element.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "linalg_kernels.h"

namespace genaug {

namespace {
#include "linalg_eigen_impl.h"
constexpr int MR = 4;
constexpr int NR = 8;  // two ymm registers

void gram_tile(const double* a, const double* b, int64_t rb, double* out) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  for (int64_t r = 0; r < rb; ++r) {
    const __m256d b0 = _mm256_loadu_pd(b + r * NR);
    const __m256d b1 = _mm256_loadu_pd(b + r * NR + 4);
    const double* ar = a + r * MR;
    __m256d x = _mm256_broadcast_sd(ar + 0);
    c00 = _mm256_fmadd_pd(x, b0, c00);
    c01 = _mm256_fmadd_pd(x, b1, c01);
    x = _mm256_broadcast_sd(ar + 1);
    c10 = _mm256_fmadd_pd(x, b0, c10);
    c11 = _mm256_fmadd_pd(x, b1, c11);
    x = _mm256_broadcast_sd(ar + 2);
    c20 = _mm256_fmadd_pd(x, b0, c20);
    c21 = _mm256_fmadd_pd(x, b1, c21);
    x = _mm256_broadcast_sd(ar + 3);
    c30 = _mm256_fmadd_pd(x, b0, c30);
    c31 = _mm256_fmadd_pd(x, b1, c31);
  }
  _mm256_storeu_pd(out + 0, c00);
  _mm256_storeu_pd(out + 4, c01);
  _mm256_storeu_pd(out + 8, c10);
  _mm256_storeu_pd(out + 12, c11);
  _mm256_storeu_pd(out + 16, c20);
  _mm256_storeu_pd(out + 20, c21);
  _mm256_storeu_pd(out + 24, c30);
  _mm256_storeu_pd(out + 28, c31);
}
}  // namespace

const LinalgKernels& linalg_kernels_avx2() {
  static const LinalgKernels k{Isa::Avx2, MR, NR, gram_tile, eigen_impl::reflect_panel, eigen_impl::rotate_panel, eigen_impl::gemm_acc};
  return k;
}

}  // namespace genaug
