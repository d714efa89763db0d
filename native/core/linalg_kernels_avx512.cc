// AVX-512 Gram tile kernel (compiled with the AVX-512 flags of
// cmake/simd.cmake; used only when CPUID says so): an 8 x 16 tile, one fused
// multiply-add chain per element.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "linalg_kernels.h"

namespace genaug {

namespace {
#include "linalg_eigen_impl.h"
constexpr int MR = 8;
constexpr int NR = 16;  // two zmm registers

#define GENAUG_ROW512(k)                     \
  x = _mm512_set1_pd(ar[k]);                 \
  c##k##0 = _mm512_fmadd_pd(x, b0, c##k##0); \
  c##k##1 = _mm512_fmadd_pd(x, b1, c##k##1);

void gram_tile(const double* a, const double* b, int64_t rb, double* out) {
  __m512d c00 = _mm512_setzero_pd(), c01 = _mm512_setzero_pd(), c10 = _mm512_setzero_pd(), c11 = _mm512_setzero_pd();
  __m512d c20 = _mm512_setzero_pd(), c21 = _mm512_setzero_pd(), c30 = _mm512_setzero_pd(), c31 = _mm512_setzero_pd();
  __m512d c40 = _mm512_setzero_pd(), c41 = _mm512_setzero_pd(), c50 = _mm512_setzero_pd(), c51 = _mm512_setzero_pd();
  __m512d c60 = _mm512_setzero_pd(), c61 = _mm512_setzero_pd(), c70 = _mm512_setzero_pd(), c71 = _mm512_setzero_pd();
  for (int64_t r = 0; r < rb; ++r) {
    const __m512d b0 = _mm512_loadu_pd(b + r * NR);
    const __m512d b1 = _mm512_loadu_pd(b + r * NR + 8);
    const double* ar = a + r * MR;
    __m512d x;
    GENAUG_ROW512(0)
    GENAUG_ROW512(1)
    GENAUG_ROW512(2)
    GENAUG_ROW512(3)
    GENAUG_ROW512(4)
    GENAUG_ROW512(5)
    GENAUG_ROW512(6)
    GENAUG_ROW512(7)
  }
  _mm512_storeu_pd(out + 0, c00);
  _mm512_storeu_pd(out + 8, c01);
  _mm512_storeu_pd(out + 16, c10);
  _mm512_storeu_pd(out + 24, c11);
  _mm512_storeu_pd(out + 32, c20);
  _mm512_storeu_pd(out + 40, c21);
  _mm512_storeu_pd(out + 48, c30);
  _mm512_storeu_pd(out + 56, c31);
  _mm512_storeu_pd(out + 64, c40);
  _mm512_storeu_pd(out + 72, c41);
  _mm512_storeu_pd(out + 80, c50);
  _mm512_storeu_pd(out + 88, c51);
  _mm512_storeu_pd(out + 96, c60);
  _mm512_storeu_pd(out + 104, c61);
  _mm512_storeu_pd(out + 112, c70);
  _mm512_storeu_pd(out + 120, c71);
}
#undef GENAUG_ROW512
}  // namespace

const LinalgKernels& linalg_kernels_avx512() {
  static const LinalgKernels k{Isa::Avx512, MR, NR, gram_tile, eigen_impl::reflect_panel, eigen_impl::rotate_panel, eigen_impl::gemm_acc};
  return k;
}

}  // namespace genaug
