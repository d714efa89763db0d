// Dense linear algebra in double for the distribution metrics: a symmetric
// eigendecomposition (Householder tridiagonalisation, one pass over the
// matrix per step and threaded, + implicit QL with shifts whose rotations are
// applied in cache-sized batches to panels of the eigenvectors, threaded and
// SIMD), a blocked matrix product, a blocked, multi-threaded accumulation of cross-products of a
// float32 matrix (the Gram/covariance kernel), and the mergeable Gaussian
// state (count, mean, co-moment matrix) of a set of embeddings.
//
// Everything here is deterministic: for a given SIMD level the bytes of every
// result do not depend on the thread count (each output element is summed in
// the same order whichever thread computes it). Different SIMD levels (FMA or
// not) may differ in the last bits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu.h"
#include "similarity.h"  // MatrixView

namespace genaug {

// The widest matrix the dense D x D routines accept (a D x D double matrix is
// 512 MiB at this size, and the eigendecomposition is O(D^3)).
constexpr int64_t kMaxDenseDim = 8192;

// ---------------------------------------------------------------------------
// Symmetric eigendecomposition.

struct SymEigen {
  int64_t n = 0;
  std::vector<double> values;   // n eigenvalues, ascending
  // n x n row-major; column j is the unit eigenvector of values[j]
  // (A V = V diag(values), V^T V = I). Empty unless vectors were requested.
  std::vector<double> vectors;
};

// Eigenvalues (ascending) and, when `vectors`, eigenvectors of the symmetric
// n x n row-major matrix `a`. The matrix is symmetrised first as (A + A^T)/2,
// so a matrix that is symmetric up to rounding is fine. Throws E_NONFINITE for
// NaN/Inf entries, E_LIMIT for n > kMaxDenseDim, E_INTERNAL if the QL
// iteration does not converge (not seen in practice).
SymEigen sym_eigen(const double* a, int64_t n, bool vectors, int threads = 0, Isa isa = Isa::Avx512);

// The same, for callers that own a scratch copy: `a` (n x n, symmetric, any
// content is destroyed) is overwritten. Eigenvalues go to `values`
// (ascending); when `rows` is not null it receives the eigenvectors as ROWS
// (row j is the eigenvector of values[j]), which is the layout the metrics
// use. No finiteness or size check.
// threads: 0 = every hardware thread; isa is clamped to the CPU. The result
// does not depend on the thread count; for the scalar level it is the same,
// bit for bit, as the plain one-rotation-at-a-time algorithm.
void sym_eigen_inplace(std::vector<double>& a, int64_t n, std::vector<double>& values, std::vector<double>* rows, int threads = 0,
                       Isa isa = Isa::Avx512);

// out (rows x cols) = a (rows x inner) * b (inner x cols), all row-major, in
// double; row blocks are split over threads (each output element is summed in
// increasing inner order, whatever the thread count).
std::vector<double> multiply(const double* a, const double* b, int64_t rows, int64_t inner, int64_t cols, int threads, Isa isa);

// ---------------------------------------------------------------------------
// Cross-product accumulation: C = sum_r z_r z_r^T (n x n) and s = sum_r z_r,
// where z_r[j] = (x(r, j) - shift[j]) * row_scale[r] * col_scale[j] and
// x(r, j) = data[r * row_stride + j * col_stride] (float32). Sums are in
// double, over blocks of rows, with a register-blocked kernel over the upper
// triangle; threads split the columns of the upper triangle, so the result
// does not depend on the thread count. Null shift/scales mean 0 / 1.
struct GramSource {
  const float* data = nullptr;
  int64_t rows = 0;        // r: the summation index
  int64_t cols = 0;        // n: the size of the output
  int64_t row_stride = 0;  // elements between x(r, j) and x(r + 1, j)
  int64_t col_stride = 1;  // elements between x(r, j) and x(r, j + 1)
  const double* shift = nullptr;
  const double* row_scale = nullptr;
  const double* col_scale = nullptr;
};

// Fills `c` (n x n, full symmetric, row-major) and, when not null, `colsum`
// (n). threads: 0 = every hardware thread. isa is clamped to the CPU.
void gram(const GramSource& src, double* c, double* colsum, int threads, Isa isa);

// ---------------------------------------------------------------------------
// The Gaussian state of a set of D-dimensional points, mergeable exactly.
//
// mean = shift + offset. The shift is a reference point close to the data
// (float32-representable values taken from the data); keeping it apart from
// the offset makes merges and mean differences exact to double precision even
// when the mean is large relative to the spread (e.g. mean 1e4, std 1e-2),
// where a plain double mean would lose 1e-10 relative accuracy per merge.
// comoment = sum_r (x_r - mean)(x_r - mean)^T (D x D, full symmetric).
struct GaussianState {
  int64_t count = 0;
  int64_t dim = 0;
  std::vector<double> shift;     // D
  std::vector<double> offset;    // D
  std::vector<double> comoment;  // D x D
};

struct StatsOptions {
  int threads = 0;          // 0: every hardware thread
  Isa isa = Isa::Avx512;    // clamped to what the CPU has
  std::string name = "data";  // used in messages
  int64_t row_offset = 0;     // row number of the first row, in messages
};

// The state of the rows of `m` (N x D float32). N = 0 gives the empty state
// (count 0, zeros), the identity of merge_states. Throws E_NONFINITE naming
// the first NaN/Inf (row and column), E_LIMIT for D > kMaxDenseDim.
GaussianState gaussian_stats(const MatrixView& m, const StatsOptions& opt);

// Chan et al.'s pairwise merge: the state of the union of both sets. The
// result keeps a's shift. Throws E_SHAPE when the dimensions differ.
GaussianState merge_states(const GaussianState& a, const GaussianState& b);

// mean = shift + offset.
std::vector<double> state_mean(const GaussianState& s);
// The unbiased covariance comoment / (count - 1). count = 1 gives zeros (a
// single point has no spread); count = 0 throws E_RANGE.
std::vector<double> state_covariance(const GaussianState& s);
// mean(a) - mean(b), computed as (shift_a - shift_b) + (offset_a - offset_b).
std::vector<double> state_mean_diff(const GaussianState& a, const GaussianState& b);

}  // namespace genaug
