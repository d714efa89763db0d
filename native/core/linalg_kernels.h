// Per-ISA kernels behind linalg's Gram/covariance accumulation (gram() in
// linalg.cc). One register-blocked tile kernel per ISA, each in its own
// translation unit compiled with its own target flags:
//   linalg_kernels_scalar.cc  the plain reference (baseline flags)
//   linalg_kernels_avx2.cc    AVX2 + FMA
//   linalg_kernels_avx512.cc  AVX-512F
// linalg_kernels_for() picks one at run time. The tile shape differs per ISA,
// and so may the last bits (FMA or not); for a given ISA the result does not
// depend on the thread count.
#pragma once
#include <cstdint>

#include "cpu.h"

namespace genaug {

struct LinalgKernels {
  Isa isa;
  int mr;  // rows of the tile (a panel: rb x mr, row-major)
  int nr;  // columns of the tile (b panel: rb x nr, row-major)
  // out[i * nr + j] = sum_r a[r * mr + i] * b[r * nr + j] for i < mr, j < nr,
  // summed over r in increasing order, from zero.
  void (*gram_tile)(const double* a, const double* b, int64_t rb, double* out);
};

const LinalgKernels& linalg_kernels_for(Isa isa);  // isa is clamped to the CPU
const LinalgKernels& linalg_kernels_scalar();
#ifdef GENAUG_HAVE_X86_KERNELS
const LinalgKernels& linalg_kernels_avx2();
const LinalgKernels& linalg_kernels_avx512();
#endif

}  // namespace genaug
