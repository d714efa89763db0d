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
//
// The matrix is read and written once per step, not twice: as soon as row
// k+1 has its step-k update, the next reflection is built from it, and every
// other row computes its term of the next p = beta B v right after its own
// update, while it is in cache. Rows are split over threads (a team that
// meets at a barrier twice per step); each row's arithmetic is the same
// whichever thread does it, so the result does not depend on the thread count.

// Builds reflection k from row k (final by now): d[k], e[k], beta[k], v in
// row k right of the diagonal. False when the column is already reduced.
bool prepare_reflection(double* A, int64_t n, int64_t k, std::vector<double>& d, std::vector<double>& e,
                        std::vector<double>& beta) {
  const int64_t m = n - k - 1;  // length of the reflected part
  d[k] = A[k * n + k];
  // Row k right of the diagonal equals column k below it; v is built in its place.
  double* x = A + k * n + k + 1;
  double scale = 0.0;
  for (int64_t i = 0; i < m; ++i) scale = std::max(scale, std::fabs(x[i]));
  if (scale == 0.0) {
    e[k] = 0.0;  // already reduced: H_k = I
    beta[k] = 0.0;
    return false;
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
  beta[k] = 1.0 / (norm * (std::fabs(x0) + norm));  // 2 / (v^T v)
  e[k] = alpha * scale;
  return true;
}

void tridiagonalise(std::vector<double>& a, int64_t n, std::vector<double>& d, std::vector<double>& e,
                    std::vector<double>& beta, int threads) {
  d.assign(static_cast<size_t>(n), 0.0);
  e.assign(static_cast<size_t>(n), 0.0);
  beta.assign(static_cast<size_t>(n), 0.0);
  double* A = a.data();
  if (n > 2) {
    std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
    // Per step, written once by thread 0 before a barrier: whether it reflects, whether p is ready.
    std::vector<char> reflects(static_cast<size_t>(n), 0), p_ready(static_cast<size_t>(n), 0);
    int T = resolve_threads(threads);
    // Below this a step is too short to share: the barriers would cost more than they save.
    if (n < 400) T = 1;
    Barrier barrier(T);
    auto sync = [&] {
      if (T > 1) barrier.wait();
    };
    run_threads(T, [&](int tid) {
      if (tid == 0) reflects[0] = prepare_reflection(A, n, 0, d, e, beta);
      sync();
      for (int64_t k = 0; k + 2 < n; ++k) {
        const int64_t o = k + 1, m = n - o;
        const bool next_exists = k + 3 < n;  // step k+1 is a reflection step
        if (!reflects[k]) {
          if (tid == 0 && next_exists) reflects[k + 1] = prepare_reflection(A, n, k + 1, d, e, beta);
          sync();
          continue;
        }
        const double b = beta[k];
        const double* x = A + k * n + o;
        if (!p_ready[k]) {
          // p = beta B v, B = A[k+1.., k+1..]: rows split over the team.
          const int64_t r0 = m * tid / T, r1 = m * (tid + 1) / T;
          for (int64_t i = r0; i < r1; ++i) p[i] = b * dot(A + (o + i) * n + o, x, m);
          sync();
        }
        if (tid == 0) {
          const double kk = 0.5 * b * dot(x, p.data(), m);
          for (int64_t i = 0; i < m; ++i) q[i] = p[i] - kk * x[i];
          // Row k+1 first: the next reflection is built from it.
          double* row = A + o * n + o;
          const double v0 = x[0], q0 = q[0];
          for (int64_t j = 0; j < m; ++j) row[j] -= v0 * q[j] + q0 * x[j];
          if (next_exists) {
            reflects[k + 1] = prepare_reflection(A, n, k + 1, d, e, beta);
            p_ready[k + 1] = reflects[k + 1];
          }
        }
        sync();
        const bool fuse = next_exists && reflects[k + 1];
        const double b1 = fuse ? beta[k + 1] : 0.0;
        const double* x1 = A + (k + 1) * n + o + 1;
        // Rows k+2..n-1: the step-k update, then (fused) the row's term of the next p.
        const int64_t rest = m - 1;
        const int64_t r0 = 1 + rest * tid / T, r1 = 1 + rest * (tid + 1) / T;
        for (int64_t i = r0; i < r1; ++i) {
          double* row = A + (o + i) * n + o;
          const double vi = x[i], qi = q[i];
          for (int64_t j = 0; j < m; ++j) row[j] -= vi * q[j] + qi * x[j];
          if (fuse) p[i - 1] = b1 * dot(row + 1, x1, m - 1);
        }
        sync();
      }
    });
  }
  if (n >= 2) {
    d[n - 2] = A[(n - 2) * n + n - 2];
    e[n - 2] = A[(n - 1) * n + n - 2];
  }
  if (n >= 1) d[n - 1] = A[(n - 1) * n + n - 1];
  if (n >= 1) e[n - 1] = 0.0;
}

// Eigenvector panels: the n x n matrix W whose rows become the eigenvectors,
// kept as ceil(n / L) panels of L = kPanelLanes columns, panel j holding
// element (i, l) = W[i][j L + l] at i L + l (lanes past n are zero). A plane
// rotation of rows i, i+1 of W is a rotation of rows i, i+1 of every panel.
struct Panels {
  int64_t n = 0, count = 0;
  std::vector<double> data;
  double* panel(int64_t j) { return data.data() + j * n * kPanelLanes; }
};

// W = Q^T in panels, from the reflections stored in the rows of `a` by
// tridiagonalise(). Q is built backwards, Q = H_k Q for k = n-3 .. 0, where
// only the block [k+1.., k+1..] of Q differs from I; that runs on panels of L
// columns of Q (each one thread's, all reflections applied while it is in
// cache), which are then transposed into the panels of W.
void build_q_panels(const std::vector<double>& a, int64_t n, const std::vector<double>& beta, Panels& w, int threads,
                    const LinalgKernels& K) {
  constexpr int64_t L = kPanelLanes;
  const int64_t count = (n + L - 1) / L;
  std::vector<double> cols(static_cast<size_t>(count * n * L), 0.0);  // panels of columns of Q
  int T = std::min<int64_t>(resolve_threads(threads), count);
  parallel_for_index(count, T, [&](int64_t j, int) {
    double* c = cols.data() + j * n * L;
    for (int64_t l = 0; l < L && j * L + l < n; ++l) c[(j * L + l) * L + l] = 1.0;
    // Reflection k touches columns >= k+1 only: the last one this panel meets has k+1 = its last column.
    const int64_t last = std::min<int64_t>(n - 3, j * L + L - 2);
    for (int64_t k = last; k >= 0; --k) {
      const double b = beta[k];
      if (b == 0.0) continue;
      const int64_t o = k + 1;
      K.reflect_panel(a.data() + k * n + o, b, n - o, c + o * L);
    }
  });
  w.n = n;
  w.count = count;
  w.data.assign(static_cast<size_t>(count * n * L), 0.0);
  // W[i][r] = Q[r][i]: panel j of W holds rows jL.. of Q.
  parallel_for_index(count, T, [&](int64_t j, int) {
    double* out = w.panel(j);
    for (int64_t l = 0; l < L && j * L + l < n; ++l) {
      const int64_t r = j * L + l;
      for (int64_t i = 0; i < n; ++i) out[i * L + l] = cols[(i / L) * n * L + r * L + (i % L)];
    }
  });
}

// Rotations waiting to be applied to the eigenvector panels: applied in
// batches, each panel taking the whole batch in order while it is in cache,
// panels split over threads. Every element sees the rotations in the order
// they were made, whatever the batch size or thread count.
class RotationQueue {
 public:
  RotationQueue(Panels* w, int threads, const LinalgKernels& K) : w_(w), K_(K) {
    if (w_) {
      threads_ = static_cast<int>(std::min<int64_t>(resolve_threads(threads), w_->count));
      // A batch a panel reads from cache (24 bytes each).
      pending_.reserve(kBatch);
    }
  }
  void push(int64_t i, double c, double s) {
    if (!w_) return;
    pending_.push_back(PlaneRotation{i, c, s});
    if (static_cast<int64_t>(pending_.size()) >= kBatch) flush();
  }
  void flush() {
    if (!w_ || pending_.empty()) return;
    const PlaneRotation* r = pending_.data();
    const int64_t count = static_cast<int64_t>(pending_.size());
    parallel_for_index(w_->count, threads_, [&](int64_t j, int) { K_.rotate_panel(r, count, w_->panel(j)); });
    pending_.clear();
  }

 private:
  static constexpr int64_t kBatch = 1 << 15;
  Panels* w_;
  const LinalgKernels& K_;
  int threads_ = 1;
  std::vector<PlaneRotation> pending_;
};

// ------------------------------------------------------------ implicit QL --
//
// Diagonalises the tridiagonal (d, e) by implicit QL steps with a Wilkinson
// shift: for the unreduced block [l, m], the shift is the eigenvalue of the
// leading 2x2 block nearer to d[l]; the step T - sI = QL, T' = LQ + sI is
// carried out implicitly as a chain of plane rotations from the bottom of the
// block up to l (chasing the bulge), which keeps T' tridiagonal. An
// off-diagonal element is negligible when it is below DBL_EPSILON times its
// two diagonal neighbours or times the norm of T (so blocks of eigenvalues
// near zero converge as fast as the others). Each rotation of rows i, i+1 is
// queued for the eigenvector panels when they are wanted.
void tridiagonal_ql(std::vector<double>& d, std::vector<double>& e, int64_t n, RotationQueue& rot) {
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
        rot.push(i, c, s);
      }
      if (split) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0.0;
    }
  }
  rot.flush();
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

void sym_eigen_inplace(std::vector<double>& a, int64_t n, std::vector<double>& values, std::vector<double>* rows, int threads,
                       Isa isa) {
  values.clear();
  if (rows) rows->clear();
  if (n <= 0) return;
  const LinalgKernels& K = linalg_kernels_for(isa);
  std::vector<double> e, beta;
  tridiagonalise(a, n, values, e, beta, threads);
  Panels w;
  if (rows) build_q_panels(a, n, beta, w, threads, K);
  RotationQueue queue(rows ? &w : nullptr, threads, K);
  tridiagonal_ql(values, e, n, queue);
  if (rows) {
    constexpr int64_t L = kPanelLanes;
    rows->assign(static_cast<size_t>(n * n), 0.0);
    double* out = rows->data();
    for (int64_t j = 0; j < w.count; ++j) {
      const double* pj = w.panel(j);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t l = 0; l < L && j * L + l < n; ++l) out[i * n + j * L + l] = pj[i * L + l];
    }
  }
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

SymEigen sym_eigen(const double* a, int64_t n, bool vectors, int threads, Isa isa) {
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
  sym_eigen_inplace(s, n, out.values, vectors ? &rows : nullptr, threads, isa);
  if (vectors) {
    out.vectors.resize(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) out.vectors[j * n + i] = rows[i * n + j];
  }
  return out;
}

std::vector<double> multiply(const double* a, const double* b, int64_t rows, int64_t inner, int64_t cols, int threads, Isa isa) {
  std::vector<double> out(static_cast<size_t>(rows * cols), 0.0);
  if (rows <= 0 || cols <= 0 || inner <= 0) return out;
  const LinalgKernels& K = linalg_kernels_for(isa);
  constexpr int64_t RB = 64;
  const int64_t blocks = (rows + RB - 1) / RB;
  int T = static_cast<int>(std::min<int64_t>(resolve_threads(threads), blocks));
  if (static_cast<double>(rows) * static_cast<double>(inner) * static_cast<double>(cols) < 4e6) T = 1;
  parallel_for_index(blocks, T, [&](int64_t blk, int) {
    const int64_t i0 = blk * RB, rb = std::min(RB, rows - i0);
    K.gemm_acc(a + i0 * inner, inner, b, cols, out.data() + i0 * cols, cols, rb, inner, cols);
  });
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
