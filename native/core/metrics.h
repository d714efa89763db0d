// Distribution metrics over embeddings: the Fréchet distance between two
// Gaussians (how far a synthetic set is from a real one) and the Vendi score
// of a set (its effective number of distinct items).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu.h"
#include "linalg.h"

namespace genaug {

struct MetricsOptions {
  int threads = 0;        // 0: every hardware thread; results do not depend on it
  Isa isa = Isa::Avx512;  // clamped to what the CPU has
};

struct FrechetResult {
  double distance = 0;    // max(0, mean_term + trace1 + trace2 - 2 trace_sqrt)
  double mean_term = 0;   // ||mu1 - mu2||^2
  double trace1 = 0;      // tr(S1)
  double trace2 = 0;      // tr(S2)
  double trace_sqrt = 0;  // tr((S1^1/2 S2 S1^1/2)^1/2)
  int64_t rank1 = 0;      // eigenvalues of S1 kept (the numerical rank of S1)
};

// The Fréchet distance between N(mu1, S1) and N(mu2, S2):
//   ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2).
// mean_diff = mu1 - mu2 (D), cov1, cov2: D x D row-major, symmetrised as
// (S + S^T)/2. S1 = W^T L W by the symmetric eigendecomposition; eigenvalues
// below D * DBL_EPSILON * max eigenvalue (negative ones from rounding among
// them) are set to 0, so rank-deficient covariances (fewer points than
// dimensions) are handled exactly: with B = L^1/2 W restricted to the r kept
// eigenvalues (r x D), S1^1/2 S2 S1^1/2 = W^T (B S2 B^T) W has the same nonzero
// eigenvalues as the r x r matrix B S2 B^T, which is symmetrised and
// decomposed; its eigenvalues below r * DBL_EPSILON * its largest are set to 0
// before the square roots. The result is finite and >= 0 for any finite
// symmetric positive semi-definite input (rounding below 0 is clipped).
// Throws E_NONFINITE (NaN/Inf, naming the argument and entry), E_SHAPE,
// E_LIMIT (D > kMaxDenseDim).
FrechetResult frechet_distance(const double* mean_diff, const double* cov1, const double* cov2, int64_t dim,
                               const MetricsOptions& opt);

// The same between two states, with the unbiased covariances
// comoment / (count - 1) (a single point has covariance 0). E_RANGE for an
// empty state.
FrechetResult frechet_distance(const GaussianState& a, const GaussianState& b, const MetricsOptions& opt);

// The same distance from the rows themselves when neither set has more rows
// than columns (N1, N2 <= D), as for per-class sets of image features: with
// Z1, Z2 the centred rows, S1 = Z1^T Z1 / (N1 - 1) has the nonzero
// eigenvalues of the N1 x N1 matrix G = Z1 Z1^T / (N1 - 1) = U L U^T, and
// B = L^1/2 W (W the kept eigenvectors of S1 as rows) is U_k^T Z1 /
// sqrt(N1 - 1), so B S2 B^T = U_k^T K K^T U_k / ((N1 - 1)(N2 - 1)) with the
// N1 x N2 cross products K = Z1 Z2^T: no D x D matrix is formed or
// decomposed. The kept eigenvalues and both thresholds are those of
// frechet_distance above (D * DBL_EPSILON * max, r * DBL_EPSILON * max), so
// the value is the covariance path's up to rounding. Means and centring are
// in double. A set of one row has covariance 0. Throws E_NONFINITE naming the
// set, row and column, E_SHAPE (no rows, different widths, N > D).
FrechetResult frechet_distance_rows(const MatrixView& a, const MatrixView& b, const MetricsOptions& opt);

enum class VendiPath { Auto = 0, Gram = 1, Covariance = 2 };

struct VendiOptions {
  int threads = 0;
  Isa isa = Isa::Avx512;
  // Auto: the N x N Gram matrix when N <= D, the D x D matrix otherwise. The
  // others force one (for tests; the nonzero eigenvalues are the same).
  VendiPath path = VendiPath::Auto;
  std::string name = "data";  // used in messages
  int64_t row_offset = 0;
};

struct VendiResult {
  double score = 0;    // exp(entropy), in [1, min(N, D)]
  double entropy = 0;  // -sum lambda log lambda (natural log)
  bool gram = false;   // true: computed from the N x N Gram matrix
  // The eigenvalues used, ascending, negatives from rounding clipped to 0
  // (N of them on the Gram path, D on the covariance path; they sum to 1).
  std::vector<double> eigenvalues;
};

// The Vendi score with cosine similarity: rows are L2-normalised (x_r / ||x_r||
// in double), K = X^ X^T / N, and score = exp(-sum lambda log lambda) over the
// eigenvalues of K (0 log 0 = 0). When N > D the eigenvalues come from the
// D x D matrix X^T X^ / N, which has the same nonzero eigenvalues. A zero row
// throws E_RANGE (its cosine similarity is undefined), NaN/Inf throws
// E_NONFINITE naming the row and column, no rows throws E_SHAPE, and
// min(N, D) > kMaxDenseDim throws E_LIMIT.
VendiResult vendi_score(const MatrixView& m, const VendiOptions& opt);

}  // namespace genaug
