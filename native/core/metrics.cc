#include "metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "error.h"
#include "parallel.h"

namespace genaug {

namespace {

// Splits rows [0, rows) over threads; fn(r0, r1) must only write rows it owns.
template <typename Fn>
void for_rows(int64_t rows, int64_t min_rows_per_thread, int threads, Fn&& fn) {
  int T = resolve_threads(threads);
  T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, rows / std::max<int64_t>(1, min_rows_per_thread))));
  run_threads(T, [&](int tid) { fn(rows * tid / T, rows * (tid + 1) / T); });
}

// sum sqrt(lambda) over the eigenvalues of the r x r product m above the rank tolerance r eps max(lambda), summed
// smallest first; m is made exactly symmetric first (the product is symmetric up to rounding) and overwritten.
double sqrt_trace_of_symmetric(std::vector<double>& m, int64_t r, const MetricsOptions& opt) {
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = i + 1; j < r; ++j) {
      const double v = 0.5 * (m[i * r + j] + m[j * r + i]);
      m[i * r + j] = v;
      m[j * r + i] = v;
    }
  std::vector<double> mu;
  sym_eigen_inplace(m, r, mu, nullptr, opt.threads, opt.isa);
  const double mmax = std::max(mu.back(), 0.0);
  const double tolm = static_cast<double>(r) * DBL_EPSILON * mmax;
  double t = 0.0;
  for (double v : mu)  // ascending: small terms first
    if (v > tolm) t += std::sqrt(v);
  return t;
}

void check_finite(const double* v, int64_t count, int64_t dim, const char* what) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i])) {
      if (dim > 0)
        fail("E_NONFINITE", what, " entry (", i / dim, ", ", i % dim, ") is ", std::isnan(v[i]) ? "NaN" : "infinite");
      fail("E_NONFINITE", what, " element ", i, " is ", std::isnan(v[i]) ? "NaN" : "infinite");
    }
  }
}

}  // namespace

FrechetResult frechet_distance(const double* mean_diff, const double* cov1, const double* cov2, int64_t D,
                               const MetricsOptions& opt) {
  if (D < 1) fail("E_SHAPE", "the dimension must be >= 1, got ", D);
  if (D > kMaxDenseDim) fail("E_LIMIT", "dimension ", D, " is larger than the supported ", kMaxDenseDim);
  check_finite(mean_diff, D, 0, "the mean difference");
  check_finite(cov1, D * D, D, "covariance 1");
  check_finite(cov2, D * D, D, "covariance 2");
  FrechetResult res;
  for (int64_t j = 0; j < D; ++j) res.mean_term += mean_diff[j] * mean_diff[j];
  std::vector<double> s1(static_cast<size_t>(D * D)), s2(static_cast<size_t>(D * D));
  for (int64_t i = 0; i < D; ++i) {
    for (int64_t j = 0; j < D; ++j) {
      s1[i * D + j] = i == j ? cov1[i * D + i] : 0.5 * (cov1[i * D + j] + cov1[j * D + i]);
      s2[i * D + j] = i == j ? cov2[i * D + i] : 0.5 * (cov2[i * D + j] + cov2[j * D + i]);
    }
    res.trace1 += cov1[i * D + i];
    res.trace2 += cov2[i * D + i];
  }
  // S1 = W^T diag(l) W (rows of W are the eigenvectors).
  std::vector<double> l1, w1;
  sym_eigen_inplace(s1, D, l1, &w1, opt.threads, opt.isa);
  const double lmax = std::max(l1.back(), 0.0);
  const double tol1 = static_cast<double>(D) * DBL_EPSILON * lmax;
  // B = diag(sqrt l) W over the kept eigenvalues: r x D.
  std::vector<int64_t> kept;
  for (int64_t k = 0; k < D; ++k)
    if (l1[k] > tol1) kept.push_back(k);
  const int64_t r = static_cast<int64_t>(kept.size());
  res.rank1 = r;
  if (r > 0) {
    std::vector<double> b(static_cast<size_t>(r * D));
    for (int64_t i = 0; i < r; ++i) {
      const double sq = std::sqrt(l1[kept[i]]);
      const double* src = w1.data() + kept[i] * D;
      for (int64_t k = 0; k < D; ++k) b[i * D + k] = sq * src[k];
    }
    // C = B S2 (r x D).
    std::vector<double> c = multiply(b.data(), s2.data(), r, D, D, opt.threads, opt.isa);
    // M = C B^T (r x r), with B^T laid out D x r so the inner loop is contiguous.
    std::vector<double> bt(static_cast<size_t>(D * r));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t k = 0; k < D; ++k) bt[k * r + i] = b[i * D + k];
    std::vector<double> m = multiply(c.data(), bt.data(), r, D, r, opt.threads, opt.isa);
    res.trace_sqrt += sqrt_trace_of_symmetric(m, r, opt);
  }
  res.distance = std::max(0.0, res.mean_term + res.trace1 + res.trace2 - 2.0 * res.trace_sqrt);
  return res;
}

FrechetResult frechet_distance(const GaussianState& a, const GaussianState& b, const MetricsOptions& opt) {
  if (a.dim != b.dim) fail("E_SHAPE", "statistics of dimension ", a.dim, " and ", b.dim, " cannot be compared");
  if (a.count <= 0 || b.count <= 0)
    fail("E_RANGE", "the Fréchet distance needs at least one point on each side (counts ", a.count, " and ", b.count, ")");
  const std::vector<double> diff = state_mean_diff(a, b);
  const std::vector<double> c1 = state_covariance(a), c2 = state_covariance(b);
  return frechet_distance(diff.data(), c1.data(), c2.data(), a.dim, opt);
}

namespace {

// Rows minus their column means, in double (n x D row-major), and the transpose (D x n).
void centred(const MatrixView& m, const char* name, std::vector<double>& z, std::vector<double>& zt, std::vector<double>& mean) {
  const int64_t n = m.rows, D = m.dim;
  mean.assign(static_cast<size_t>(D), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < D; ++k) {
      const float v = m.data[r * D + k];
      if (!std::isfinite(v))
        fail("E_NONFINITE", name, " row ", r, ", column ", k, " is ", std::isnan(v) ? "NaN" : "infinite", ": embeddings must be finite");
      mean[k] += v;
    }
  for (double& v : mean) v /= static_cast<double>(n);
  z.resize(static_cast<size_t>(n * D));
  zt.resize(static_cast<size_t>(n * D));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < D; ++k) {
      const double v = static_cast<double>(m.data[r * D + k]) - mean[k];
      z[r * D + k] = v;
      zt[k * n + r] = v;
    }
}

}  // namespace

FrechetResult frechet_distance_rows(const MatrixView& a, const MatrixView& b, const MetricsOptions& opt) {
  const int64_t n1 = a.rows, n2 = b.rows, D = a.dim;
  if (D < 1 || b.dim != D) fail("E_SHAPE", "the two sets must have the same number (>= 1) of columns, got ", a.dim, " and ", b.dim);
  if (n1 < 1 || n2 < 1) fail("E_RANGE", "the Fréchet distance needs at least one point on each side (counts ", n1, " and ", n2, ")");
  if (n1 > D || n2 > D) fail("E_SHAPE", "the row path needs at most as many rows as columns (", n1, " and ", n2, " rows, ", D, " columns)");
  if (a.data == nullptr || b.data == nullptr) fail("E_SHAPE", "a set has no data");
  std::vector<double> z1, z1t, m1, z2, z2t, m2;
  centred(a, "the first set", z1, z1t, m1);
  centred(b, "the second set", z2, z2t, m2);
  FrechetResult res;
  for (int64_t k = 0; k < D; ++k) res.mean_term += (m1[k] - m2[k]) * (m1[k] - m2[k]);
  const double f1 = n1 > 1 ? 1.0 / static_cast<double>(n1 - 1) : 0.0, f2 = n2 > 1 ? 1.0 / static_cast<double>(n2 - 1) : 0.0;
  // tr S = sum of squares of the centred entries / (n - 1), column by column as the covariance's diagonal.
  for (int64_t k = 0; k < D; ++k) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t r = 0; r < n1; ++r) s1 += z1t[k * n1 + r] * z1t[k * n1 + r];
    for (int64_t r = 0; r < n2; ++r) s2 += z2t[k * n2 + r] * z2t[k * n2 + r];
    res.trace1 += s1 * f1;
    res.trace2 += s2 * f2;
  }
  // G = Z1 Z1^T / (n1 - 1): its eigenvalues are S1's nonzero ones (exactly symmetric: the same products both sides).
  std::vector<double> g = multiply(z1.data(), z1t.data(), n1, D, n1, opt.threads, opt.isa);
  for (double& v : g) v *= f1;
  std::vector<double> l, u;
  sym_eigen_inplace(g, n1, l, &u, opt.threads, opt.isa);
  const double lmax = std::max(l.back(), 0.0);
  const double tol1 = static_cast<double>(D) * DBL_EPSILON * lmax;
  std::vector<int64_t> kept;
  for (int64_t k = 0; k < n1; ++k)
    if (l[k] > tol1) kept.push_back(k);
  const int64_t r = static_cast<int64_t>(kept.size());
  res.rank1 = r;
  if (r > 0 && f2 > 0.0) {
    // P = U_k^T K / sqrt((n1 - 1)(n2 - 1)) (r x n2), K = Z1 Z2^T; M = P P^T.
    std::vector<double> k12 = multiply(z1.data(), z2t.data(), n1, D, n2, opt.threads, opt.isa);
    std::vector<double> uk(static_cast<size_t>(r * n1));
    for (int64_t i = 0; i < r; ++i) std::copy(u.begin() + kept[i] * n1, u.begin() + (kept[i] + 1) * n1, uk.begin() + i * n1);
    std::vector<double> p = multiply(uk.data(), k12.data(), r, n1, n2, opt.threads, opt.isa);
    const double scale = std::sqrt(f1 * f2);
    for (double& v : p) v *= scale;
    std::vector<double> pt(static_cast<size_t>(n2 * r));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < n2; ++j) pt[j * r + i] = p[i * n2 + j];
    std::vector<double> m = multiply(p.data(), pt.data(), r, n2, r, opt.threads, opt.isa);
    res.trace_sqrt += sqrt_trace_of_symmetric(m, r, opt);
  }
  res.distance = std::max(0.0, res.mean_term + res.trace1 + res.trace2 - 2.0 * res.trace_sqrt);
  return res;
}

VendiResult vendi_score(const MatrixView& m, const VendiOptions& opt) {
  const int64_t N = m.rows, D = m.dim;
  if (N < 1) fail("E_SHAPE", "the Vendi score needs at least one row; ", opt.name, " has ", N);
  if (D < 1) fail("E_SHAPE", opt.name, " must have at least one column, got ", D);
  if (D > kMaxDim) fail("E_SHAPE", opt.name, " has ", D, " columns; embeddings wider than ", kMaxDim, " are not supported");
  if (m.data == nullptr) fail("E_SHAPE", opt.name, " has no data");
  bool gram_path = opt.path == VendiPath::Gram || (opt.path == VendiPath::Auto && N <= D);
  const int64_t n = gram_path ? N : D;
  if (n > kMaxDenseDim)
    fail("E_LIMIT", "the Vendi score of ", N, " rows x ", D, " columns needs a ", n, " x ", n,
         " eigendecomposition; at most ", kMaxDenseDim, " is supported");
  // Row scales 1 / ||x_r|| in double; NaN/Inf and zero rows are refused.
  std::vector<double> scale(static_cast<size_t>(N));
  std::vector<unsigned char> bad(static_cast<size_t>(N), 0);  // 1: non-finite, 2: zero
  for_rows(N, 1024, opt.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = m.data + r * D;
      double s = 0.0;
      for (int64_t k = 0; k < D; ++k) s += static_cast<double>(x[k]) * x[k];
      if (!std::isfinite(s)) bad[r] = 1;
      else if (s == 0.0) bad[r] = 2;
      else scale[r] = 1.0 / std::sqrt(s);
    }
  });
  for (int64_t r = 0; r < N; ++r) {
    if (bad[r] == 1) {
      for (int64_t k = 0; k < D; ++k) {
        const float v = m.data[r * D + k];
        if (!std::isfinite(v))
          fail("E_NONFINITE", opt.name, " row ", r + opt.row_offset, ", column ", k, " is ", std::isnan(v) ? "NaN" : "infinite",
               ": embeddings must be finite");
      }
    }
    if (bad[r] == 2)
      fail("E_RANGE", opt.name, " row ", r + opt.row_offset,
           " is all zeros: the Vendi score uses cosine similarity, which is undefined for a zero vector");
  }
  GramSource src;
  src.data = m.data;
  if (gram_path) {
    // The transposed view: sum over the D features of z_k z_k^T, z_k[a] = x[a][k] / ||x_a||.
    src.rows = D;
    src.cols = N;
    src.row_stride = 1;
    src.col_stride = D;
    src.col_scale = scale.data();
  } else {
    src.rows = N;
    src.cols = D;
    src.row_stride = D;
    src.col_stride = 1;
    src.row_scale = scale.data();
  }
  std::vector<double> k(static_cast<size_t>(n * n));
  gram(src, k.data(), nullptr, opt.threads, opt.isa);
  const double inv_n = 1.0 / static_cast<double>(N);
  for (double& v : k) v *= inv_n;
  VendiResult res;
  res.gram = gram_path;
  sym_eigen_inplace(k, n, res.eigenvalues, nullptr, opt.threads, opt.isa);
  double h = 0.0;
  for (double& l : res.eigenvalues) {
    if (l <= 0.0) {
      l = 0.0;
      continue;
    }
    h -= l * std::log(l);
  }
  // The eigenvalues sum to 1, so the entropy is >= 0; rounding can make it -1e-16.
  res.entropy = std::max(h, 0.0);
  res.score = std::exp(res.entropy);
  return res;
}

}  // namespace genaug
