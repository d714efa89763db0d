// Per-ISA kernels behind the similarity engine. Each ISA provides one
// register-blocked micro-kernel for the packed matrix product and the small
// row scans the reductions need. The tables live in kernels_<isa>.cc, each
// compiled with its own target flags; kernels_for() picks one at run time.
#pragma once
#include <cstdint>

#include "cpu.h"

namespace genaug {

struct Kernels {
  Isa isa;
  int mr;  // query rows per micro-tile (broadcast operand, packed [k][mr])
  int nr;  // database rows per micro-tile (vector operand, packed [k][nr])
  // c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + sum_k a[k*mr + i] * b[k*nr + j]
  // for i < mr, j < nr. With accumulate the sum continues the same chain of
  // fused multiply-adds, so the result does not depend on how k is split.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
  // First index j in [from, n) with row[j] > t, or n.
  int64_t (*scan_gt)(const float* row, int64_t from, int64_t n, float t);
  // Largest value of row[from, to); -inf when empty.
  float (*max_range)(const float* row, int64_t from, int64_t to);

  // --- per-channel statistics (bnstats) ---
  // Sum of x[0, n) in double.
  double (*sum)(const float* x, int64_t n);
  // One pass over x[0, n) around `center`: s1 += sum(x - center),
  // s2 += sum((x - center)^2) (double), and the min/max (float).
  void (*centered_moments)(const float* x, int64_t n, double center, double* s1, double* s2, float* mn, float* mx);
  // Column sums of `rows` rows of `cols` floats, rows `stride` floats apart:
  // acc[c] += sum_r x[r*stride + c] (double).
  void (*column_sums)(const float* x, int64_t rows, int64_t cols, int64_t stride, double* acc);
  // Column moments around per-column centres, as centered_moments.
  void (*column_moments)(const float* x, int64_t rows, int64_t cols, int64_t stride, const double* center, double* s1,
                         double* s2, float* mn, float* mx);
  // IEEE half to float.
  void (*half_to_float)(const uint16_t* src, float* dst, int64_t n);
};

const Kernels& kernels_for(Isa isa);
const Kernels& kernels_scalar();
#ifdef GENAUG_HAVE_X86_KERNELS
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
#endif

}  // namespace genaug
