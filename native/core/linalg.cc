#include "linalg.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "linalg_kernels.h"
#include "parallel.h"

namespace genaug {

namespace {

// Four independent partial sums: the loop is not bound by the latency of one
// addition, and the order is fixed, so the result is reproducible.
inline double dot(const double* x, const double* y, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  for (; i < n; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

// ------------------------------------------------------- tridiagonalisation --
//
// A = Q T Q^T with T symmetric tridiagonal (diagonal d, sub-diagonal e, e[i]
// coupling i and i+1) and Q = H_0 H_1 ... H_{n-3}, each H_k = I - beta v v^T a
// Householder reflection acting on indices k+1..n-1 that zeroes column k below
// the sub-diagonal. Applied to the trailing block B as H B H = B - v q^T - q v^T
// with p = beta B v, q = p - (beta/2)(v^T p) v. The update touches both
// triangles with the same products, so B stays exactly symmetric.
void tridiagonalise(std::vector<double>& a, int64_t n, std::vector<double>& d, std::vector<double>& e,
                    std::vector<double>& beta) {
  d.assign(static_cast<size_t>(n), 0.0);
  e.assign(static_cast<size_t>(n), 0.0);
  beta.assign(static_cast<size_t>(n), 0.0);
  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
  double* A = a.data();
  for (int64_t k = 0; k + 2 < n; ++k) {
    const int64_t m = n - k - 1;  // length of the reflected part
    d[k] = A[k * n + k];
    // Row k right of the diagonal equals column k below it; v is built in its place.
    double* x = A + k * n + k + 1;
    double scale = 0.0;
    for (int64_t i = 0; i < m; ++i) scale = std::max(scale, std::fabs(x[i]));
    if (scale == 0.0) {
      e[k] = 0.0;  // already reduced: H_k = I
      continue;
    }
    // Work with x / scale (no overflow or underflow in the squares).
    double ss = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      x[i] /= scale;
      ss += x[i] * x[i];
    }
    const double norm = std::sqrt(ss);  // in [1, sqrt(m)]
    const double x0 = x[0];
    // alpha = -sign(x0) * norm, so v0 = x0 - alpha adds magnitudes (no cancellation).
    const double alpha = x0 >= 0.0 ? -norm : norm;
    x[0] = x0 - alpha;
    const double b = 1.0 / (norm * (std::fabs(x0) + norm));  // 2 / (v^T v)
    beta[k] = b;
    e[k] = alpha * scale;
    // p = beta B v, B = A[k+1.., k+1..].
    const int64_t o = k + 1;
    for (int64_t i = 0; i < m; ++i) p[i] = b * dot(A + (o + i) * n + o, x, m);
    const double kk = 0.5 * b * dot(x, p.data(), m);
    for (int64_t i = 0; i < m; ++i) q[i] = p[i] - kk * x[i];
    for (int64_t i = 0; i < m; ++i) {
      double* row = A + (o + i) * n + o;
      const double vi = x[i], qi = q[i];
      for (int64_t j = 0; j < m; ++j) row[j] -= vi * q[j] + qi * x[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = A[(n - 2) * n + n - 2];
    e[n - 2] = A[(n - 1) * n + n - 2];
  }
  if (n >= 1) d[n - 1] = A[(n - 1) * n + n - 1];
  e[n - 1] = 0.0;
}

// W = Q^T (rows of W are the columns of Q), from the reflections stored in
// the rows of `a` by tridiagonalise(). Q is built backwards: Q = H_k Q for
// k = n-3 .. 0, where only the block [k+1.., k+1..] of Q differs from I.
void accumulate_q(const std::vector<double>& a, int64_t n, const std::vector<double>& beta, std::vector<double>& w) {
  std::vector<double> q(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  std::vector<double> t(static_cast<size_t>(n));
  for (int64_t k = n - 3; k >= 0; --k) {
    const double b = beta[k];
    if (b == 0.0) continue;
    const int64_t o = k + 1, m = n - o;
    const double* v = a.data() + k * n + o;
    // t = v^T Q[o.., o..], then Q[o.., o..] -= beta v t^T.
    std::fill(t.begin(), t.begin() + m, 0.0);
    for (int64_t i = 0; i < m; ++i) {
      const double vi = v[i];
      if (vi == 0.0) continue;
      const double* row = q.data() + (o + i) * n + o;
      for (int64_t j = 0; j < m; ++j) t[j] += vi * row[j];
    }
    for (int64_t i = 0; i < m; ++i) {
      const double f = b * v[i];
      if (f == 0.0) continue;
      double* row = q.data() + (o + i) * n + o;
      for (int64_t j = 0; j < m; ++j) row[j] -= f * t[j];
    }
  }
  w.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) w[j * n + i] = q[i * n + j];
}

// ------------------------------------------------------------ implicit QL --
//
// Diagonalises the tridiagonal (d, e) by implicit QL steps with a Wilkinson
// shift: for the unreduced block [l, m], the shift is the eigenvalue of the
// leading 2x2 block nearer to d[l]; the step T - sI = QL, T' = LQ + sI is
// carried out implicitly as a chain of plane rotations from the bottom of the
// block up to l (chasing the bulge), which keeps T' tridiagonal. An
// off-diagonal element is negligible when it is below DBL_EPSILON times its
// two diagonal neighbours or times the norm of T (so blocks of eigenvalues
// near zero converge as fast as the others). Rotations are applied to rows i,
// i+1 of W (the eigenvectors as rows) when W is given.
void tridiagonal_ql(std::vector<double>& d, std::vector<double>& e, int64_t n, double* w) {
  if (n <= 1) return;
  double tnorm = 0.0;
  for (int64_t i = 0; i < n; ++i) tnorm = std::max(tnorm, std::fabs(d[i]) + std::fabs(e[i]) + (i > 0 ? std::fabs(e[i - 1]) : 0.0));
  const double eps = DBL_EPSILON;
  const double abs_tol = eps * tnorm;
  for (int64_t l = 0; l < n; ++l) {
    int iterations = 0;
    for (;;) {
      int64_t m = l;
      for (; m < n - 1; ++m) {
        const double em = std::fabs(e[m]);
        if (em <= abs_tol || em <= eps * (std::fabs(d[m]) + std::fabs(d[m + 1]))) break;
      }
      if (m == l) break;  // d[l] is an eigenvalue
      if (++iterations > 60)
        fail("E_INTERNAL", "the symmetric eigensolver did not converge (eigenvalue ", l, " of ", n, ")");
      // Shift: eigenvalue of [[d_l, e_l], [e_l, d_{l+1}]] nearer to d[l]; g = d[m] - shift.
      double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1.0, c = 1.0, p = 0.0;
      bool split = false;
      for (int64_t i = m - 1; i >= l; --i) {
        const double f = s * e[i];
        const double b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0.0) {
          // The bulge vanished (underflow): T splits here; restart on the smaller block.
          d[i + 1] -= p;
          e[m] = 0.0;
          split = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (w != nullptr) {
          double* wi = w + i * n;
          double* wj = w + (i + 1) * n;
          for (int64_t k = 0; k < n; ++k) {
            const double x = wi[k], y = wj[k];
            wj[k] = s * x + c * y;
            wi[k] = c * x - s * y;
          }
        }
      }
      if (split) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0.0;
    }
  }
}

// ------------------------------------------------------------------ gram --
// The tile kernels are in linalg_kernels_<isa>.cc (one per ISA).

constexpr int64_t kRowBlock = 256;

// Packs rows [r0, r0 + rb) of columns [j0, j0 + width) of z into out
// (rb x width, row-major; zeros past the last column). When colsum is given,
// colsum[j] += z(r, j) for each row in order.
void pack_panel(const GramSource& s, int64_t r0, int64_t rb, int64_t j0, int width, double* out, double* colsum) {
  const int64_t n = s.cols;
  const int valid = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(width, n - j0)));
  double sh[16], cs[16];
  for (int c = 0; c < width; ++c) {
    sh[c] = (c < valid && s.shift) ? s.shift[j0 + c] : 0.0;
    cs[c] = (c < valid && s.col_scale) ? s.col_scale[j0 + c] : 1.0;
  }
  if (s.col_stride == 1 || colsum != nullptr) {
    for (int64_t r = 0; r < rb; ++r) {
      const float* x = s.data + (r0 + r) * s.row_stride + j0 * s.col_stride;
      const double rs = s.row_scale ? s.row_scale[r0 + r] : 1.0;
      double* o = out + r * width;
      int c = 0;
      for (; c < valid; ++c) {
        const double z = ((static_cast<double>(x[c * s.col_stride]) - sh[c]) * rs) * cs[c];
        o[c] = z;
        if (colsum) colsum[j0 + c] += z;
      }
      for (; c < width; ++c) o[c] = 0.0;
    }
  } else {
    // Column-strided source (the transposed view): read each column along r.
    for (int c = 0; c < width; ++c) {
      if (c >= valid) {
        for (int64_t r = 0; r < rb; ++r) out[r * width + c] = 0.0;
        continue;
      }
      const float* x = s.data + r0 * s.row_stride + (j0 + c) * s.col_stride;
      for (int64_t r = 0; r < rb; ++r) {
        const double rs = s.row_scale ? s.row_scale[r0 + r] : 1.0;
        out[r * width + c] = ((static_cast<double>(x[r * s.row_stride]) - sh[c]) * rs) * cs[c];
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- public --

void sym_eigen_inplace(std::vector<double>& a, int64_t n, std::vector<double>& values, std::vector<double>* rows) {
  values.clear();
  if (rows) rows->clear();
  if (n <= 0) return;
  std::vector<double> e, beta;
  tridiagonalise(a, n, values, e, beta);
  if (rows) accumulate_q(a, n, beta, *rows);
  tridiagonal_ql(values, e, n, rows ? rows->data() : nullptr);
  // Ascending order (selection sort: n swaps of rows at most).
  for (int64_t i = 0; i + 1 < n; ++i) {
    int64_t k = i;
    for (int64_t j = i + 1; j < n; ++j)
      if (values[j] < values[k]) k = j;
    if (k != i) {
      std::swap(values[i], values[k]);
      if (rows) std::swap_ranges(rows->begin() + i * n, rows->begin() + (i + 1) * n, rows->begin() + k * n);
    }
  }
}

SymEigen sym_eigen(const double* a, int64_t n, bool vectors) {
  if (n < 0) fail("E_SHAPE", "matrix size must be >= 0, got ", n);
  if (n > kMaxDenseDim) fail("E_LIMIT", "matrix of size ", n, " is larger than the supported ", kMaxDenseDim);
  SymEigen out;
  out.n = n;
  if (n == 0) return out;
  std::vector<double> s(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const double v = a[i * n + j];
      if (!std::isfinite(v)) fail("E_NONFINITE", "matrix entry (", i, ", ", j, ") is ", std::isnan(v) ? "NaN" : "infinite");
      s[i * n + j] = j == i ? v : 0.5 * (v + a[j * n + i]);
    }
  }
  std::vector<double> rows;
  sym_eigen_inplace(s, n, out.values, vectors ? &rows : nullptr);
  if (vectors) {
    out.vectors.resize(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) out.vectors[j * n + i] = rows[i * n + j];
  }
  return out;
}

void gram(const GramSource& s, double* c, double* colsum, int threads, Isa isa) {
  const int64_t n = s.cols, R = s.rows;
  std::fill(c, c + n * n, 0.0);
  if (colsum) std::fill(colsum, colsum + n, 0.0);
  if (n == 0 || R == 0) return;
  const LinalgKernels& K = linalg_kernels_for(isa);
  const int64_t MR = K.mr, NR = K.nr;
  const int64_t n_ip = (n + MR - 1) / MR, n_jp = (n + NR - 1) / NR;
  // Work of column panel jp: the row panels meeting the upper triangle.
  std::vector<int64_t> prefix(static_cast<size_t>(n_jp + 1), 0);
  for (int64_t jp = 0; jp < n_jp; ++jp) prefix[jp + 1] = prefix[jp] + std::min(n_ip, (jp * NR + NR - 1) / MR + 1);
  int T = resolve_threads(threads);
  T = static_cast<int>(std::min<int64_t>(T, n_jp));
  // Below ~4M multiply-adds a second thread costs more than it saves.
  if (static_cast<double>(R) * static_cast<double>(n) * static_cast<double>(n) < 8e6) T = 1;
  std::vector<int64_t> bounds(static_cast<size_t>(T + 1), n_jp);
  bounds[0] = 0;
  for (int t = 1; t < T; ++t) {
    const int64_t target = prefix[n_jp] * t / T;
    bounds[t] = std::lower_bound(prefix.begin(), prefix.end(), target) - prefix.begin();
  }
  for (int t = 1; t <= T; ++t) bounds[t] = std::max(bounds[t], bounds[t - 1]);
  run_threads(T, [&](int tid) {
    const int64_t pb = bounds[tid], pe = bounds[tid + 1];
    if (pb >= pe) return;
    const int64_t jend = std::min(n, pe * NR);
    const int64_t ips = (jend - 1) / MR + 1;  // row panels this thread needs
    std::vector<double> apack(static_cast<size_t>(kRowBlock * ips * MR));
    std::vector<double> bpack(static_cast<size_t>(kRowBlock * (pe - pb) * NR));
    std::vector<double> tile(static_cast<size_t>(MR * NR));
    for (int64_t r0 = 0; r0 < R; r0 += kRowBlock) {
      const int64_t rb = std::min(kRowBlock, R - r0);
      for (int64_t ip = 0; ip < ips; ++ip)
        pack_panel(s, r0, rb, ip * MR, static_cast<int>(MR), apack.data() + ip * rb * MR, nullptr);
      for (int64_t jp = pb; jp < pe; ++jp)
        pack_panel(s, r0, rb, jp * NR, static_cast<int>(NR), bpack.data() + (jp - pb) * rb * NR, colsum);
      for (int64_t jp = pb; jp < pe; ++jp) {
        const int64_t j0 = jp * NR;
        const int64_t ip_end = std::min(ips, (j0 + NR - 1) / MR + 1);
        const double* bp = bpack.data() + (jp - pb) * rb * NR;
        for (int64_t ip = 0; ip < ip_end; ++ip) {
          K.gram_tile(apack.data() + ip * rb * MR, bp, rb, tile.data());
          const int64_t i0 = ip * MR;
          for (int64_t a = 0; a < MR && i0 + a < n; ++a) {
            const int64_t i = i0 + a;
            double* crow = c + i * n;
            for (int64_t b = std::max<int64_t>(0, i - j0); b < NR && j0 + b < n; ++b) crow[j0 + b] += tile[a * NR + b];
          }
        }
      }
    }
  });
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) c[j * n + i] = c[i * n + j];
}

GaussianState gaussian_stats(const MatrixView& m, const StatsOptions& opt) {
  const int64_t N = m.rows, D = m.dim;
  if (N < 0) fail("E_SHAPE", opt.name, " has a negative number of rows (", N, ")");
  if (D < 1) fail("E_SHAPE", opt.name, " must have at least one column, got ", D);
  if (D > kMaxDenseDim)
    fail("E_LIMIT", opt.name, " has ", D, " columns; the dense D x D statistics support at most ", kMaxDenseDim);
  if (N > 0 && m.data == nullptr) fail("E_SHAPE", opt.name, " has no data");
  GaussianState st;
  st.count = N;
  st.dim = D;
  st.shift.assign(static_cast<size_t>(D), 0.0);
  st.offset.assign(static_cast<size_t>(D), 0.0);
  st.comoment.assign(static_cast<size_t>(D * D), 0.0);
  if (N == 0) return st;
  // Provisional shift: the mean of the first rows, rounded to float so that
  // x - shift is exact in double for values of similar magnitude.
  const int64_t head = std::min<int64_t>(N, 32);
  for (int64_t j = 0; j < D; ++j) {
    double s = 0.0;
    for (int64_t r = 0; r < head; ++r) s += m.data[r * D + j];
    st.shift[j] = static_cast<double>(static_cast<float>(s / static_cast<double>(head)));
  }
  std::vector<double> colsum(static_cast<size_t>(D));
  GramSource src;
  src.data = m.data;
  src.rows = N;
  src.cols = D;
  src.row_stride = D;
  src.col_stride = 1;
  src.shift = st.shift.data();
  gram(src, st.comoment.data(), colsum.data(), opt.threads, opt.isa);
  // A NaN or infinity anywhere makes its column sum non-finite (finite float
  // values cannot overflow a double sum): find the first one for the message.
  bool bad = false;
  for (int64_t j = 0; j < D; ++j) bad = bad || !std::isfinite(colsum[j]);
  if (bad) {
    for (int64_t r = 0; r < N; ++r)
      for (int64_t j = 0; j < D; ++j) {
        const float v = m.data[r * D + j];
        if (!std::isfinite(v))
          fail("E_NONFINITE", opt.name, " row ", r + opt.row_offset, ", column ", j, " is ", std::isnan(v) ? "NaN" : "infinite",
               ": embeddings must be finite");
      }
    fail("E_NONFINITE", opt.name, ": the statistics overflowed");
  }
  const double inv_n = 1.0 / static_cast<double>(N);
  for (int64_t j = 0; j < D; ++j) st.offset[j] = colsum[j] * inv_n;
  // comoment = sum z z^T - (sum z)(sum z)^T / N; the correction is small since
  // the shift is close to the mean. Same products on both sides: stays symmetric.
  for (int64_t i = 0; i < D; ++i) {
    double* row = st.comoment.data() + i * D;
    for (int64_t j = 0; j < D; ++j) row[j] -= colsum[i] * colsum[j] * inv_n;
    row[i] = std::max(row[i], 0.0);
  }
  return st;
}

GaussianState merge_states(const GaussianState& a, const GaussianState& b) {
  if (a.dim != b.dim) fail("E_SHAPE", "cannot merge statistics of dimension ", a.dim, " and ", b.dim);
  const int64_t D = a.dim;
  auto check = [&](const GaussianState& s, const char* which) {
    if (s.count < 0) fail("E_RANGE", which, " count must be >= 0, got ", s.count);
    if (static_cast<int64_t>(s.shift.size()) != D || static_cast<int64_t>(s.offset.size()) != D ||
        static_cast<int64_t>(s.comoment.size()) != D * D)
      fail("E_SHAPE", which, " statistics have arrays of the wrong length for dimension ", D);
  };
  check(a, "the first");
  check(b, "the second");
  if (b.count == 0) return a;
  if (a.count == 0) return b;
  GaussianState out;
  out.dim = D;
  out.count = a.count + b.count;
  const double n = static_cast<double>(out.count);
  const double fb = static_cast<double>(b.count) / n;                               // nb / n
  const double fab = static_cast<double>(a.count) * (static_cast<double>(b.count) / n);  // na nb / n
  std::vector<double> delta = state_mean_diff(b, a);  // mean_b - mean_a
  out.shift = a.shift;
  out.offset.resize(static_cast<size_t>(D));
  for (int64_t j = 0; j < D; ++j) out.offset[j] = a.offset[j] + delta[j] * fb;
  out.comoment.resize(static_cast<size_t>(D * D));
  for (int64_t i = 0; i < D; ++i) {
    const double di = delta[i] * fab;
    for (int64_t j = 0; j < D; ++j) out.comoment[i * D + j] = (a.comoment[i * D + j] + b.comoment[i * D + j]) + di * delta[j];
  }
  // Keep the result exactly symmetric (di * delta[j] vs dj * delta[i] round differently).
  for (int64_t i = 0; i < D; ++i)
    for (int64_t j = i + 1; j < D; ++j) out.comoment[j * D + i] = out.comoment[i * D + j];
  return out;
}

std::vector<double> state_mean(const GaussianState& s) {
  std::vector<double> m(static_cast<size_t>(s.dim));
  for (int64_t j = 0; j < s.dim; ++j) m[j] = s.shift[j] + s.offset[j];
  return m;
}

std::vector<double> state_covariance(const GaussianState& s) {
  if (s.count <= 0) fail("E_RANGE", "the covariance of an empty set is undefined (count is ", s.count, ")");
  const int64_t D = s.dim;
  std::vector<double> c(static_cast<size_t>(D * D), 0.0);
  if (s.count == 1) return c;
  const double inv = 1.0 / static_cast<double>(s.count - 1);
  for (int64_t i = 0; i < D * D; ++i) c[i] = s.comoment[i] * inv;
  return c;
}

std::vector<double> state_mean_diff(const GaussianState& a, const GaussianState& b) {
  if (a.dim != b.dim) fail("E_SHAPE", "statistics of dimension ", a.dim, " and ", b.dim, " cannot be compared");
  std::vector<double> d(static_cast<size_t>(a.dim));
  for (int64_t j = 0; j < a.dim; ++j) d[j] = (a.shift[j] - b.shift[j]) + (a.offset[j] - b.offset[j]);
  return d;
}

}  // namespace genaug
