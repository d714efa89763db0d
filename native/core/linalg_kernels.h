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

// One plane rotation of the eigensolver: rows i and i + 1 of a panel become
// (c x - s y, s x + c y) for x = row i, y = row i + 1.
struct PlaneRotation {
  int64_t i;
  double c;
  double s;
};

// Lanes of an eigenvector panel: the eigensolver keeps its vectors as panels
// of kPanelLanes interleaved columns (element (i, l) at i * kPanelLanes + l),
// so every kernel below works on whole cache lines, and one panel is one
// thread's work.
constexpr int kPanelLanes = 16;

struct LinalgKernels {
  Isa isa;
  int mr;  // rows of the tile (a panel: rb x mr, row-major)
  int nr;  // columns of the tile (b panel: rb x nr, row-major)
  // out[i * nr + j] = sum_r a[r * mr + i] * b[r * nr + j] for i < mr, j < nr,
  // summed over r in increasing order, from zero.
  void (*gram_tile)(const double* a, const double* b, int64_t rb, double* out);
  // A Householder reflection I - beta v v^T applied from the left to an
  // m x kPanelLanes panel: t = v^T P (summed over i in increasing order, zero
  // v[i] skipped), then P[i] -= (beta v[i]) t.
  void (*reflect_panel)(const double* v, double beta, int64_t m, double* panel);
  // The rotations r[0..count) applied in order to a panel (rows r.i, r.i + 1).
  void (*rotate_panel)(const PlaneRotation* r, int64_t count, double* panel);
  // out (rows x cols, row-major, leading dimension ldo) += a (rows x inner,
  // lda) * b (inner x cols, ldb), each output element summed over the inner
  // index in increasing order onto its current value.
  void (*gemm_acc)(const double* a, int64_t lda, const double* b, int64_t ldb, double* out, int64_t ldo, int64_t rows,
                   int64_t inner, int64_t cols);
};

const LinalgKernels& linalg_kernels_for(Isa isa);  // isa is clamped to the CPU
const LinalgKernels& linalg_kernels_scalar();
#ifdef GENAUG_HAVE_X86_KERNELS
const LinalgKernels& linalg_kernels_avx2();
const LinalgKernels& linalg_kernels_avx512();
#endif

}  // namespace genaug
