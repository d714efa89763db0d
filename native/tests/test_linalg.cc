// The dense linear algebra and the distribution metrics against hand-computed
// cases and plain double-precision references: the symmetric
// eigendecomposition, the blocked cross-product kernel (every ISA, several
// thread counts; the tile kernel of each ISA bit for bit against its
// reference), the Gaussian state and its merge on adversarial data, the
// Fréchet distance and the Vendi score.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>

#include "linalg.h"
#include "linalg_kernels.h"
#include "metrics.h"
#include "test.h"

using namespace genaug;

namespace {

using Mat = std::vector<double>;

// A random orthogonal n x n matrix (columns), by Gram-Schmidt twice on a Gaussian matrix.
Mat random_orthogonal(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  Mat q(static_cast<size_t>(n * n));
  for (auto& x : q) x = nd(rng);
  for (int64_t j = 0; j < n; ++j) {
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t k = 0; k < j; ++k) {
        double d = 0;
        for (int64_t i = 0; i < n; ++i) d += q[i * n + j] * q[i * n + k];
        for (int64_t i = 0; i < n; ++i) q[i * n + j] -= d * q[i * n + k];
      }
    }
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += q[i * n + j] * q[i * n + j];
    s = std::sqrt(s);
    for (int64_t i = 0; i < n; ++i) q[i * n + j] /= s;
  }
  return q;
}

// Q diag(l) Q^T.
Mat compose(const Mat& q, const std::vector<double>& l, int64_t n) {
  Mat a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += q[i * n + k] * l[k] * q[j * n + k];
      a[i * n + j] = s;
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];
  return a;
}

double max_abs(const Mat& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

// max |A v_j - l_j v_j| and max |V^T V - I|.
void check_decomposition(const Mat& a, int64_t n, const SymEigen& e, double tol) {
  CHECK_EQ(static_cast<int64_t>(e.values.size()), n);
  CHECK_EQ(static_cast<int64_t>(e.vectors.size()), n * n);
  const double scale = std::max(1.0, max_abs(a));
  double worst_res = 0, worst_orth = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < n; ++i) {
      double av = 0;
      for (int64_t k = 0; k < n; ++k) av += a[i * n + k] * e.vectors[k * n + j];
      worst_res = std::max(worst_res, std::fabs(av - e.values[j] * e.vectors[i * n + j]));
    }
    for (int64_t k = 0; k < n; ++k) {
      double d = 0;
      for (int64_t i = 0; i < n; ++i) d += e.vectors[i * n + j] * e.vectors[i * n + k];
      worst_orth = std::max(worst_orth, std::fabs(d - (j == k ? 1.0 : 0.0)));
    }
  }
  for (int64_t j = 1; j < n; ++j) CHECK(e.values[j - 1] <= e.values[j]);
  if (!(worst_res <= tol * scale && worst_orth <= tol)) {
    std::ostringstream os;
    os << "n=" << n << " residual " << worst_res << " (scale " << scale << "), orthogonality " << worst_orth;
    gtest_lite::report(__FILE__, __LINE__, os.str());
  }
}

struct FloatData {
  std::vector<float> v;
  int64_t rows, dim;
  MatrixView view() const { return MatrixView{v.data(), rows, dim}; }
  MatrixView slice(int64_t r0, int64_t r1) const { return MatrixView{v.data() + r0 * dim, r1 - r0, dim}; }
};

FloatData gaussian_data(int64_t rows, int64_t dim, uint32_t seed, const std::vector<double>& mean = {},
                        const std::vector<double>& stdev = {}) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  FloatData d{std::vector<float>(static_cast<size_t>(rows * dim)), rows, dim};
  // A little correlation between neighbouring columns so the co-moments are not all ~0.
  for (int64_t r = 0; r < rows; ++r) {
    double prev = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const double z = 0.8 * nd(rng) + 0.6 * prev;
      prev = z;
      const double m = mean.empty() ? 0.0 : mean[j % mean.size()];
      const double s = stdev.empty() ? 1.0 : stdev[j % stdev.size()];
      d.v[r * dim + j] = static_cast<float>(m + s * z);
    }
  }
  return d;
}

// The naive two-pass reference in double from the same float inputs.
void reference_stats(const FloatData& d, std::vector<double>& mean, Mat& comoment) {
  const int64_t N = d.rows, D = d.dim;
  mean.assign(static_cast<size_t>(D), 0.0);
  comoment.assign(static_cast<size_t>(D * D), 0.0);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < D; ++j) mean[j] += d.v[r * D + j];
  for (auto& m : mean) m /= static_cast<double>(N);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t i = 0; i < D; ++i) {
      const double xi = d.v[r * D + i] - mean[i];
      for (int64_t j = 0; j < D; ++j) comoment[i * D + j] += xi * (d.v[r * D + j] - mean[j]);
    }
}

// max over (i, j) of |a_ij - b_ij| / sqrt(b_ii b_jj) (0/0 counts as exact).
double normalised_error(const Mat& a, const Mat& b, int64_t D) {
  double worst = 0;
  for (int64_t i = 0; i < D; ++i)
    for (int64_t j = 0; j < D; ++j) {
      const double diff = std::fabs(a[i * D + j] - b[i * D + j]);
      const double s = std::sqrt(b[i * D + i] * b[j * D + j]);
      if (diff == 0) continue;
      worst = std::max(worst, s > 0 ? diff / s : INFINITY);
    }
  return worst;
}

// max_j |mean_a_j - mean_b_j| / std_b_j, the mean differences taken state-wise.
double mean_error(const GaussianState& a, const GaussianState& b) {
  const std::vector<double> d = state_mean_diff(a, b);
  double worst = 0;
  for (int64_t j = 0; j < a.dim; ++j) {
    if (d[j] == 0) continue;
    const double s = std::sqrt(b.comoment[j * a.dim + j] / static_cast<double>(b.count));
    worst = std::max(worst, s > 0 ? std::fabs(d[j]) / s : INFINITY);
  }
  return worst;
}

template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const genaug::Error& e) {
    return e.code() + ": " + e.what();
  }
  return "(no error)";
}

}  // namespace

// ------------------------------------------------------------------ eigen --

TEST(eigen_diagonal_and_trivial_sizes) {
  SymEigen e0 = sym_eigen(nullptr, 0, true);
  CHECK_EQ(e0.values.size(), size_t(0));
  const double one[1] = {-2.5};
  SymEigen e1 = sym_eigen(one, 1, true);
  CHECK_EQ(e1.values[0], -2.5);
  CHECK_EQ(e1.vectors[0], 1.0);
  const Mat diag = {3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0};
  SymEigen e = sym_eigen(diag.data(), 4, true);
  const double want[4] = {-1, 0, 2, 3};
  for (int i = 0; i < 4; ++i) CHECK_NEAR(e.values[i], want[i], 1e-15);
  check_decomposition(diag, 4, e, 1e-14);
  // The zero matrix.
  const Mat zero(25, 0.0);
  SymEigen ez = sym_eigen(zero.data(), 5, true);
  for (double v : ez.values) CHECK_EQ(v, 0.0);
  check_decomposition(zero, 5, ez, 1e-15);
}

TEST(eigen_2x2_known) {
  // [[a, b], [b, c]]: (a + c)/2 -+ sqrt(((a - c)/2)^2 + b^2).
  const double cases[][3] = {{2, 1, 2}, {4, -3, -4}, {1e-8, 1, 1e8}, {5, 1e-12, 5}, {0, 1, 0}};
  for (const auto& c : cases) {
    const Mat a = {c[0], c[1], c[1], c[2]};
    SymEigen e = sym_eigen(a.data(), 2, true);
    const double mid = 0.5 * (c[0] + c[2]), rad = std::hypot(0.5 * (c[0] - c[2]), c[1]);
    CHECK_NEAR(e.values[0], mid - rad, 1e-14 * std::max(1.0, rad));
    CHECK_NEAR(e.values[1], mid + rad, 1e-14 * std::max(1.0, rad));
    check_decomposition(a, 2, e, 1e-14);
  }
}

TEST(eigen_second_difference_matrix) {
  // tridiag(-1, 2, -1): eigenvalues 2 - 2 cos(k pi / (n + 1)), k = 1..n.
  for (int64_t n : {3, 10, 57}) {
    Mat a(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      a[i * n + i] = 2;
      if (i + 1 < n) a[i * n + i + 1] = a[(i + 1) * n + i] = -1;
    }
    SymEigen e = sym_eigen(a.data(), n, true);
    for (int64_t k = 1; k <= n; ++k)
      CHECK_NEAR(e.values[k - 1], 2 - 2 * std::cos(static_cast<double>(k) * std::acos(-1.0) / static_cast<double>(n + 1)), 1e-13);
    check_decomposition(a, n, e, 1e-12);
  }
}

TEST(eigen_rank_deficient) {
  // u u^T + v v^T: rank 2; the nonzero eigenvalues are those of the Gram matrix [[u.u, u.v], [u.v, v.v]].
  const int64_t n = 7;
  std::vector<double> u = {1, 2, 0, -1, 3, 0.5, 1}, v = {0, 1, 1, 1, -2, 0, 2};
  Mat a(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i * n + j] = u[i] * u[j] + v[i] * v[j];
  double uu = 0, uv = 0, vv = 0;
  for (int64_t i = 0; i < n; ++i) uu += u[i] * u[i], uv += u[i] * v[i], vv += v[i] * v[i];
  const double mid = 0.5 * (uu + vv), rad = std::hypot(0.5 * (uu - vv), uv);
  SymEigen e = sym_eigen(a.data(), n, true);
  for (int64_t k = 0; k < n - 2; ++k) CHECK_NEAR(e.values[k], 0.0, 1e-13);
  CHECK_NEAR(e.values[n - 2], mid - rad, 1e-12);
  CHECK_NEAR(e.values[n - 1], mid + rad, 1e-12);
  check_decomposition(a, n, e, 1e-13);
}

TEST(eigen_repeated_eigenvalues) {
  const int64_t n = 9;
  const std::vector<double> l = {1, 1, 1, 5, 5, 7, -2, -2, 0};
  const Mat q = random_orthogonal(n, 11);
  const Mat a = compose(q, l, n);
  SymEigen e = sym_eigen(a.data(), n, true);
  std::vector<double> want = l;
  std::sort(want.begin(), want.end());
  for (int64_t k = 0; k < n; ++k) CHECK_NEAR(e.values[k], want[k], 1e-13);
  check_decomposition(a, n, e, 1e-13);
}

TEST(eigen_random_symmetric) {
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  for (int64_t n : {2, 3, 4, 5, 8, 17, 40, 129}) {
    Mat a(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = nd(rng);
    SymEigen e = sym_eigen(a.data(), n, true);
    check_decomposition(a, n, e, 1e-10);
    double tr = 0, sum = 0;
    for (int64_t i = 0; i < n; ++i) tr += a[i * n + i], sum += e.values[i];
    CHECK_NEAR(sum, tr, 1e-11 * n);
    // Values only: the same eigenvalues.
    SymEigen ev = sym_eigen(a.data(), n, false);
    CHECK(ev.vectors.empty());
    for (int64_t i = 0; i < n; ++i) CHECK_NEAR(ev.values[i], e.values[i], 1e-12 * n);
  }
  // Graded scales and a nearly symmetric input (symmetrised first).
  const int64_t n = 12;
  const Mat q = random_orthogonal(n, 3);
  std::vector<double> l(n);
  for (int64_t i = 0; i < n; ++i) l[i] = std::pow(10.0, static_cast<double>(i) - 6);
  Mat a = compose(q, l, n);
  a[1] += 1e-18;
  SymEigen e = sym_eigen(a.data(), n, true);
  for (int64_t i = 0; i < n; ++i) CHECK_NEAR(e.values[i], l[i], 1e-15 * 1e5 * 10);
  check_decomposition(a, n, e, 1e-10);
}

TEST(eigen_threads_isa_and_batches) {
  // Large enough for the threaded tridiagonalisation (n >= 400), several
  // eigenvector panels and several batches of rotations: the result does not
  // depend on the thread count, and every ISA's result is a decomposition
  // that agrees with the scalar one to rounding.
  const int64_t n = 452;
  std::mt19937 rng(9);
  std::normal_distribution<double> nd;
  // A covariance of rank 300 (a null space, as with fewer points than dimensions) plus a few large values.
  Mat x(static_cast<size_t>(300 * n));
  for (double& v : x) v = nd(rng);
  Mat a(static_cast<size_t>(n * n), 0.0);
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) a[i * n + j] += x[r * n + i] * x[r * n + j] * (r < 3 ? 50.0 : 1.0);
  std::vector<std::vector<double>> values, vectors;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    std::vector<double> ref_values, ref_rows;
    for (int threads : {1, 2, 3}) {
      std::vector<double> s = a, v, rows;
      sym_eigen_inplace(s, n, v, &rows, threads, isa);
      if (threads == 1) {
        ref_values = v;
        ref_rows = rows;
        SymEigen e;
        e.n = n;
        e.values = v;
        e.vectors.resize(static_cast<size_t>(n * n));
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) e.vectors[j * n + i] = rows[i * n + j];
        check_decomposition(a, n, e, 1e-9);
      } else {
        CHECK(v == ref_values);
        CHECK(rows == ref_rows);
      }
    }
    values.push_back(ref_values);
  }
  const double top = values[0].back();
  for (size_t k = 1; k < values.size(); ++k)
    for (int64_t i = 0; i < n; ++i) CHECK_NEAR(values[k][i], values[0][i], 1e-12 * top);
}

TEST(eigen_rejects_nonfinite) {
  Mat a = {1, 2, 2, NAN};
  CHECK_THROWS_CODE(sym_eigen(a.data(), 2, false), "E_NONFINITE");
  a[3] = INFINITY;
  CHECK_THROWS_CODE(sym_eigen(a.data(), 2, false), "E_NONFINITE");
}

// ------------------------------------------------------------------- gram --

TEST(gram_matches_naive_every_isa_and_thread_count) {
  std::mt19937 rng(9);
  std::normal_distribution<double> nd;
  for (int64_t rows : {1, 7, 300, 513}) {
    for (int64_t cols : {1, 3, 9, 17, 40}) {
      std::vector<float> x(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = static_cast<float>(nd(rng));
      std::vector<double> shift(cols), rs(rows), cs(cols);
      for (auto& v : shift) v = static_cast<float>(nd(rng));
      for (auto& v : rs) v = 0.5 + std::fabs(nd(rng));
      for (auto& v : cs) v = 0.5 + std::fabs(nd(rng));
      for (int variant = 0; variant < 2; ++variant) {
        GramSource s;
        s.data = x.data();
        if (variant == 0) {  // rows as samples, with shift and row scales
          s.rows = rows, s.cols = cols, s.row_stride = cols, s.col_stride = 1;
          s.shift = shift.data(), s.row_scale = rs.data();
        } else {  // the transposed view with column scales
          s.rows = cols, s.cols = rows, s.row_stride = 1, s.col_stride = cols;
          s.col_scale = rs.data();
        }
        const int64_t n = s.cols;
        Mat want(static_cast<size_t>(n * n), 0.0);
        std::vector<double> want_sum(static_cast<size_t>(n), 0.0);
        auto z = [&](int64_t r, int64_t j) {
          const double v = x[r * s.row_stride + j * s.col_stride];
          return ((v - (s.shift ? s.shift[j] : 0.0)) * (s.row_scale ? s.row_scale[r] : 1.0)) * (s.col_scale ? s.col_scale[j] : 1.0);
        };
        for (int64_t r = 0; r < s.rows; ++r)
          for (int64_t i = 0; i < n; ++i) {
            want_sum[i] += z(r, i);
            for (int64_t j = 0; j < n; ++j) want[i * n + j] += z(r, i) * z(r, j);
          }
        for (Isa isa : available_isas()) {
          Mat first;
          for (int threads : {1, 2, 3, 7}) {
            Mat c(static_cast<size_t>(n * n));
            std::vector<double> sum(static_cast<size_t>(n));
            gram(s, c.data(), sum.data(), threads, isa);
            for (int64_t i = 0; i < n * n; ++i) CHECK_NEAR(c[i], want[i], 1e-11 * static_cast<double>(s.rows + 1) * 10);
            for (int64_t i = 0; i < n; ++i) CHECK_NEAR(sum[i], want_sum[i], 1e-11 * static_cast<double>(s.rows + 1) * 10);
            for (int64_t i = 0; i < n; ++i)
              for (int64_t j = 0; j < n; ++j) CHECK_EQ(c[i * n + j], c[j * n + i]);
            if (first.empty()) first = c;
            else CHECK(std::memcmp(first.data(), c.data(), c.size() * sizeof(double)) == 0);
          }
        }
      }
    }
  }
}

TEST(gram_tile_kernels_every_isa_bit_for_bit) {
  // Each tile element is one chain over r in increasing order from zero: the
  // scalar kernel multiplies then adds, the AVX2 and AVX-512 kernels fuse
  // (std::fma rounds once, as vfmadd does). So each is checked bit for bit.
  std::mt19937 rng(31);
  std::normal_distribution<double> nd;
  for (Isa isa : available_isas()) {
    const LinalgKernels& K = linalg_kernels_for(isa);
    CHECK(K.isa == isa);  // pinning really selects that level's kernel
    const bool fused = isa != Isa::Scalar;
    for (int64_t rb : {0, 1, 2, 7, 64, 256}) {
      std::vector<double> a(static_cast<size_t>(rb * K.mr)), b(static_cast<size_t>(rb * K.nr));
      for (auto& v : a) v = nd(rng) * std::ldexp(1.0, static_cast<int>(rng() % 40) - 20);
      for (auto& v : b) v = nd(rng) * std::ldexp(1.0, static_cast<int>(rng() % 40) - 20);
      std::vector<double> got(static_cast<size_t>(K.mr * K.nr), -1.0);
      K.gram_tile(a.data(), b.data(), rb, got.data());
      for (int i = 0; i < K.mr; ++i)
        for (int j = 0; j < K.nr; ++j) {
          volatile double acc = 0.0, acc_fused = 0.0;  // volatile: no contraction of the unfused chain
          for (int64_t r = 0; r < rb; ++r) {
            const double x = a[static_cast<size_t>(r * K.mr + i)], y = b[static_cast<size_t>(r * K.nr + j)];
            volatile double p = x * y;
            acc = acc + p;
            acc_fused = std::fma(x, y, acc_fused);
          }
          const double plain = acc, fma_chain = acc_fused, have = got[static_cast<size_t>(i * K.nr + j)];
          const bool is_plain = std::memcmp(&plain, &have, sizeof(double)) == 0;
          const bool is_fused = std::memcmp(&fma_chain, &have, sizeof(double)) == 0;
#if defined(__x86_64__) || defined(__i386__)
          CHECK(fused ? is_fused : is_plain);  // baseline x86-64 has no FMA, so the scalar kernel cannot fuse
#else
          CHECK(fused ? is_fused : (is_plain || is_fused));  // the compiler may contract the scalar kernel here
#endif
        }
    }
  }
  CHECK(linalg_kernels_scalar().isa == Isa::Scalar);
}

TEST(gram_is_thread_count_independent_on_a_large_case) {
  FloatData d = gaussian_data(700, 150, 21);
  for (Isa isa : available_isas()) {
    StatsOptions o;
    o.isa = isa;
    o.threads = 1;
    GaussianState a = gaussian_stats(d.view(), o);
    for (int t : {2, 3, 4, 8}) {
      o.threads = t;
      GaussianState b = gaussian_stats(d.view(), o);
      CHECK(a.comoment == b.comoment);
      CHECK(a.offset == b.offset);
    }
  }
}

// ------------------------------------------------------------- covariance --

TEST(stats_adversarial_against_two_pass_reference) {
  // Mean 1e4 with std 1e-2, and mixed scales and offsets across columns,
  // including a constant column and columns whose spread is at float resolution.
  const std::vector<double> mean = {1e4, 1e4, -3e3, 0.0, 1e-3, 7e5, 42.0, 1e4, -1e4};
  const std::vector<double> stdev = {1e-2, 1e-2, 1.0, 1e-6, 1e-5, 30.0, 1e3, 0.0, 5e-2};
  for (int64_t rows : {2, 3, 31, 1000, 4097}) {
    FloatData d = gaussian_data(rows, 37, static_cast<uint32_t>(rows), mean, stdev);
    std::vector<double> ref_mean;
    Mat ref;
    reference_stats(d, ref_mean, ref);
    for (Isa isa : available_isas()) {
      StatsOptions o;
      o.isa = isa;
      GaussianState st = gaussian_stats(d.view(), o);
      CHECK_EQ(st.count, rows);
      const double err = normalised_error(st.comoment, ref, d.dim);
      if (!(err <= 1e-9)) {
        std::ostringstream os;
        os << "rows " << rows << " isa " << isa_name(isa) << ": comoment relative error " << err;
        gtest_lite::report(__FILE__, __LINE__, os.str());
      }
      // Diagonal: plain relative error.
      for (int64_t j = 0; j < d.dim; ++j) {
        const double r = ref[j * d.dim + j], c = st.comoment[j * d.dim + j];
        CHECK(c >= 0);
        if (r == 0) CHECK_EQ(c, 0.0);
        else CHECK(std::fabs(c - r) <= 1e-9 * r);
      }
      const std::vector<double> m = state_mean(st);
      for (int64_t j = 0; j < d.dim; ++j) {
        const double s = std::sqrt(ref[j * d.dim + j] / static_cast<double>(rows));
        CHECK(std::fabs(m[j] - ref_mean[j]) <= 1e-9 * s + 4e-16 * std::fabs(ref_mean[j]));
      }
      // Column 7 is constant (std 0): exactly zero spread.
      CHECK_EQ(st.comoment[7 * d.dim + 7], 0.0);
    }
  }
}

TEST(stats_single_row_and_empty) {
  FloatData d = gaussian_data(1, 5, 3);
  GaussianState st = gaussian_stats(d.view(), StatsOptions{});
  CHECK_EQ(st.count, 1);
  for (double v : st.comoment) CHECK_EQ(v, 0.0);
  const std::vector<double> m = state_mean(st);
  for (int64_t j = 0; j < 5; ++j) CHECK_EQ(m[j], static_cast<double>(d.v[j]));
  const std::vector<double> cov = state_covariance(st);
  for (double v : cov) CHECK_EQ(v, 0.0);
  GaussianState empty = gaussian_stats(MatrixView{nullptr, 0, 5}, StatsOptions{});
  CHECK_EQ(empty.count, 0);
  CHECK_THROWS_CODE(state_covariance(empty), "E_RANGE");
  GaussianState m1 = merge_states(empty, st), m2 = merge_states(st, empty);
  CHECK(m1.comoment == st.comoment && m2.comoment == st.comoment);
  CHECK(state_mean(m1) == state_mean(st));
}

TEST(stats_merge_of_small_chunks_equals_one_pass) {
  const std::vector<double> mean = {1e4, -3e3, 0.0, 1e-3, 7e5};
  const std::vector<double> stdev = {1e-2, 1.0, 1e-6, 30.0, 1e3};
  FloatData d = gaussian_data(2000, 23, 77, mean, stdev);
  GaussianState whole = gaussian_stats(d.view(), StatsOptions{});
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> size(0, 9);
  std::vector<GaussianState> parts;
  for (int64_t r = 0; r < d.rows;) {
    const int64_t e = std::min<int64_t>(d.rows, r + size(rng));
    parts.push_back(gaussian_stats(d.slice(r, e), StatsOptions{}));
    r = e;
  }
  // Left to right.
  GaussianState seq = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) seq = merge_states(seq, parts[i]);
  // As a balanced tree.
  std::vector<GaussianState> level = parts;
  while (level.size() > 1) {
    std::vector<GaussianState> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) next.push_back(merge_states(level[i], level[i + 1]));
    if (level.size() % 2) next.push_back(level.back());
    level.swap(next);
  }
  for (const GaussianState* m : {&seq, &level[0]}) {
    CHECK_EQ(m->count, whole.count);
    const double ce = normalised_error(m->comoment, whole.comoment, d.dim);
    const double me = mean_error(*m, whole);
    if (!(ce <= 1e-12 && me <= 1e-12)) {
      std::ostringstream os;
      os << "merged state differs: comoment " << ce << ", mean " << me;
      gtest_lite::report(__FILE__, __LINE__, os.str());
    }
  }
  // Dimension mismatch.
  GaussianState other = gaussian_stats(gaussian_data(3, 4, 1).view(), StatsOptions{});
  CHECK_THROWS_CODE(merge_states(whole, other), "E_SHAPE");
}

TEST(stats_rejects_nonfinite_naming_row_and_column) {
  FloatData d = gaussian_data(50, 6, 8);
  d.v[17 * 6 + 4] = NAN;
  d.v[30 * 6 + 1] = INFINITY;
  StatsOptions o;
  o.name = "real";
  o.row_offset = 100;
  CHECK_THROWS_CODE(gaussian_stats(d.view(), o), "E_NONFINITE");
  const std::string msg = error_message([&] { gaussian_stats(d.view(), o); });
  CHECK(msg.find("real row 117, column 4 is NaN") != std::string::npos);
  // In the first rows too (where the shift comes from).
  FloatData e = gaussian_data(5, 3, 8);
  e.v[2] = -INFINITY;
  CHECK(error_message([&] { gaussian_stats(e.view(), StatsOptions{}); }).find("row 0, column 2 is infinite") != std::string::npos);
  CHECK_THROWS_CODE(gaussian_stats(MatrixView{d.v.data(), 1, kMaxDenseDim + 1}, StatsOptions{}), "E_LIMIT");
}

// ---------------------------------------------------------------- Fréchet --

TEST(frechet_of_a_set_with_itself_is_zero) {
  for (int64_t rows : {3, 10, 500, 3000}) {  // rank-deficient (N < D) to full rank
    FloatData d = gaussian_data(rows, 24, static_cast<uint32_t>(rows) + 1, {1e4, 3.0}, {1e-2, 2.0, 0.5});
    GaussianState st = gaussian_stats(d.view(), StatsOptions{});
    FrechetResult f = frechet_distance(st, st, MetricsOptions{});
    CHECK(std::isfinite(f.distance));
    CHECK(f.distance >= 0.0);
    CHECK(f.distance <= 1e-6);
    CHECK_NEAR(f.mean_term, 0.0, 0.0);
    CHECK_EQ(f.rank1, std::min<int64_t>(rows - 1, 24));
  }
}

TEST(frechet_diagonal_closed_form) {
  // Diagonal covariances: sum (sqrt a_i - sqrt b_i)^2 + ||dmu||^2; also when
  // they commute (the same eigenvectors), and with zeros (rank-deficient).
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  for (int64_t D : {1, 2, 5, 33, 100}) {
    std::vector<double> a(D), b(D), dmu(D);
    for (int64_t i = 0; i < D; ++i) {
      a[i] = u(rng);
      b[i] = u(rng);
      dmu[i] = u(rng) - 1.5;
    }
    if (D > 2) a[0] = 0, b[1] = 0, a[2] = b[2] = 0;
    double want = 0;
    for (int64_t i = 0; i < D; ++i) want += (std::sqrt(a[i]) - std::sqrt(b[i])) * (std::sqrt(a[i]) - std::sqrt(b[i])) + dmu[i] * dmu[i];
    Mat s1(D * D, 0.0), s2(D * D, 0.0);
    for (int64_t i = 0; i < D; ++i) s1[i * D + i] = a[i], s2[i * D + i] = b[i];
    FrechetResult f = frechet_distance(dmu.data(), s1.data(), s2.data(), D, MetricsOptions{});
    CHECK_NEAR(f.distance, want, 1e-12 * std::max(1.0, want));
    const Mat q = random_orthogonal(D, static_cast<uint32_t>(D));
    const Mat r1 = compose(q, a, D), r2 = compose(q, b, D);
    FrechetResult g = frechet_distance(dmu.data(), r1.data(), r2.data(), D, MetricsOptions{});
    CHECK_NEAR(g.distance, want, 1e-10 * std::max(1.0, want));
  }
  // 1-D: (mu1 - mu2)^2 + (sigma1 - sigma2)^2.
  const double dm = 0.7, v1 = 2.25, v2 = 0.16;
  FrechetResult f = frechet_distance(&dm, &v1, &v2, 1, MetricsOptions{});
  CHECK_NEAR(f.distance, 0.49 + (1.5 - 0.4) * (1.5 - 0.4), 1e-15);
}

TEST(frechet_random_against_swapped_route) {
  // tr sqrt(S1^1/2 S2 S1^1/2) = tr sqrt(S2^1/2 S1 S2^1/2): the reference forms
  // S2^1/2 explicitly and takes the eigenvalues of the full product.
  for (int64_t D : {3, 16, 61}) {
    FloatData x = gaussian_data(400, D, 100 + static_cast<uint32_t>(D), {1.0}, {1.0, 2.0});
    FloatData y = gaussian_data(300, D, 200 + static_cast<uint32_t>(D), {0.5, -1.0}, {0.5, 1.5, 1.0});
    GaussianState a = gaussian_stats(x.view(), StatsOptions{}), b = gaussian_stats(y.view(), StatsOptions{});
    FrechetResult f = frechet_distance(a, b, MetricsOptions{});
    const Mat c1 = state_covariance(a), c2 = state_covariance(b);
    const std::vector<double> dmu = state_mean_diff(a, b);
    SymEigen e2 = sym_eigen(c2.data(), D, true);
    std::vector<double> sq(D);
    for (int64_t i = 0; i < D; ++i) sq[i] = std::sqrt(std::max(0.0, e2.values[i]));
    const Mat h = compose(e2.vectors, sq, D);  // S2^1/2
    Mat t(D * D, 0.0), p(D * D, 0.0);
    for (int64_t i = 0; i < D; ++i)
      for (int64_t j = 0; j < D; ++j)
        for (int64_t k = 0; k < D; ++k) t[i * D + j] += h[i * D + k] * c1[k * D + j];
    for (int64_t i = 0; i < D; ++i)
      for (int64_t j = 0; j < D; ++j)
        for (int64_t k = 0; k < D; ++k) p[i * D + j] += t[i * D + k] * h[k * D + j];
    SymEigen ep = sym_eigen(p.data(), D, false);
    double trs = 0, tr1 = 0, tr2 = 0, mt = 0;
    for (int64_t i = 0; i < D; ++i) {
      trs += std::sqrt(std::max(0.0, ep.values[i]));
      tr1 += c1[i * D + i];
      tr2 += c2[i * D + i];
      mt += dmu[i] * dmu[i];
    }
    const double want = mt + tr1 + tr2 - 2 * trs;
    CHECK_NEAR(f.trace_sqrt, trs, 1e-10 * trs);
    CHECK_NEAR(f.distance, want, 1e-9 * (tr1 + tr2));
    // Symmetric in its arguments.
    FrechetResult g = frechet_distance(b, a, MetricsOptions{});
    CHECK_NEAR(g.distance, f.distance, 1e-9 * (tr1 + tr2));
    // Thread count does not change the bytes.
    MetricsOptions one;
    one.threads = 1;
    MetricsOptions three;
    three.threads = 3;
    CHECK_EQ(frechet_distance(a, b, one).distance, frechet_distance(a, b, three).distance);
  }
}

TEST(frechet_rank_deficient_inputs) {
  // Fewer points than dimensions on both sides, different sets.
  for (int64_t rows : {1, 2, 5, 20}) {
    FloatData x = gaussian_data(rows, 40, 7 + static_cast<uint32_t>(rows));
    FloatData y = gaussian_data(rows + 3, 40, 70 + static_cast<uint32_t>(rows), {0.1}, {3.0});
    GaussianState a = gaussian_stats(x.view(), StatsOptions{}), b = gaussian_stats(y.view(), StatsOptions{});
    for (auto [p, q] : {std::pair{&a, &b}, std::pair{&b, &a}, std::pair{&a, &a}}) {
      FrechetResult f = frechet_distance(*p, *q, MetricsOptions{});
      CHECK(std::isfinite(f.distance));
      CHECK(f.distance >= 0.0);
      CHECK(f.trace_sqrt >= 0.0);
    }
    // A single point: covariance 0, so the distance is ||dmu||^2 + tr(S2).
    if (rows == 1) {
      FrechetResult f = frechet_distance(a, b, MetricsOptions{});
      CHECK_EQ(f.trace1, 0.0);
      CHECK_EQ(f.rank1, 0);
      CHECK_NEAR(f.distance, f.mean_term + f.trace2, 1e-12 * f.distance);
    }
  }
}

TEST(frechet_rejects_bad_input) {
  const Mat c = {1, 0, 0, 1};
  const double dm[2] = {0, NAN};
  const double ok[2] = {0, 0};
  CHECK_THROWS_CODE(frechet_distance(dm, c.data(), c.data(), 2, MetricsOptions{}), "E_NONFINITE");
  Mat bad = c;
  bad[1] = INFINITY;
  CHECK_THROWS_CODE(frechet_distance(ok, c.data(), bad.data(), 2, MetricsOptions{}), "E_NONFINITE");
  CHECK(error_message([&] { frechet_distance(ok, c.data(), bad.data(), 2, MetricsOptions{}); }).find("covariance 2 entry (0, 1)") !=
        std::string::npos);
  GaussianState empty = gaussian_stats(MatrixView{nullptr, 0, 2}, StatsOptions{});
  FloatData d = gaussian_data(4, 2, 1);
  GaussianState st = gaussian_stats(d.view(), StatsOptions{});
  CHECK_THROWS_CODE(frechet_distance(empty, st, MetricsOptions{}), "E_RANGE");
  GaussianState wide = gaussian_stats(gaussian_data(4, 3, 1).view(), StatsOptions{});
  CHECK_THROWS_CODE(frechet_distance(wide, st, MetricsOptions{}), "E_SHAPE");
}

// ------------------------------------------------------------------ Vendi --

namespace {
VendiResult vendi(const FloatData& d, VendiPath path = VendiPath::Auto, Isa isa = Isa::Avx512) {
  VendiOptions o;
  o.path = path;
  o.isa = isa;
  return vendi_score(d.view(), o);
}
}  // namespace

TEST(vendi_identical_vectors_score_one) {
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{1, 4}, {5, 16}, {16, 16}, {50, 8}, {600, 3}}) {
    FloatData d{std::vector<float>(static_cast<size_t>(rows * dim)), rows, dim};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < dim; ++j) d.v[r * dim + j] = 0.37f * static_cast<float>(j + 1) * (j % 2 ? -1.0f : 1.0f);
    for (Isa isa : available_isas()) {
      VendiResult v = vendi(d, VendiPath::Auto, isa);
      CHECK_EQ(v.gram, rows <= dim);
      CHECK_NEAR(v.score, 1.0, 1e-9);
      double sum = 0;
      for (double l : v.eigenvalues) sum += l;
      CHECK_NEAR(sum, 1.0, 1e-12);
    }
  }
}

TEST(vendi_orthogonal_vectors_score_n) {
  // N <= D: n orthogonal rows (signed, scaled basis vectors in a shuffled order).
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {7, 16}, {30, 64}}) {
    FloatData d{std::vector<float>(static_cast<size_t>(rows * dim), 0.0f), rows, dim};
    std::vector<int64_t> perm(dim);
    for (int64_t j = 0; j < dim; ++j) perm[j] = j;
    std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<uint32_t>(rows)));
    for (int64_t r = 0; r < rows; ++r) d.v[r * dim + perm[r]] = (r % 2 ? -1.0f : 1.0f) * (0.5f + static_cast<float>(r));
    for (Isa isa : available_isas()) {
      VendiResult v = vendi(d, VendiPath::Auto, isa);
      CHECK(v.gram);
      CHECK_NEAR(v.score, static_cast<double>(rows), 1e-9);
      CHECK_NEAR(vendi(d, VendiPath::Covariance, isa).score, static_cast<double>(rows), 1e-9);
    }
  }
  // N > D: D orthogonal directions, each repeated k times with different scales: score D.
  for (auto [dim, k] : {std::pair<int64_t, int64_t>{3, 2}, {8, 5}, {20, 3}}) {
    const int64_t rows = dim * k;
    const Mat q = random_orthogonal(dim, 9);
    FloatData d{std::vector<float>(static_cast<size_t>(rows * dim), 0.0f), rows, dim};
    // Rotated basis vectors are orthogonal only to float precision: use signed basis vectors for the exact check.
    for (int64_t r = 0; r < rows; ++r) d.v[r * dim + (r % dim)] = (r % 3 ? 2.0f : -0.25f);
    for (Isa isa : available_isas()) {
      VendiResult v = vendi(d, VendiPath::Auto, isa);
      CHECK(!v.gram);
      CHECK_NEAR(v.score, static_cast<double>(dim), 1e-9);
      CHECK_NEAR(vendi(d, VendiPath::Gram, isa).score, static_cast<double>(dim), 1e-9);
    }
    // A random rotation of them: orthogonal to float rounding, so close to D.
    FloatData rot{std::vector<float>(static_cast<size_t>(rows * dim)), rows, dim};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < dim; ++j) rot.v[r * dim + j] = static_cast<float>(q[j * dim + (r % dim)] * (r % 3 ? 2.0 : -0.25));
    CHECK_NEAR(vendi(rot).score, static_cast<double>(dim), 1e-6);
  }
}

TEST(vendi_paths_agree_and_match_definition) {
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{12, 5}, {30, 20}, {20, 30}, {3, 100}}) {
    FloatData d = gaussian_data(rows, dim, static_cast<uint32_t>(rows * dim), {0.3}, {1.0, 0.2});
    // Definition: K = X^ X^T / N from normalised rows, eigenvalues, entropy.
    std::vector<double> nrm(rows);
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t j = 0; j < dim; ++j) s += static_cast<double>(d.v[r * dim + j]) * d.v[r * dim + j];
      nrm[r] = std::sqrt(s);
    }
    Mat k(rows * rows);
    for (int64_t a = 0; a < rows; ++a)
      for (int64_t b = 0; b < rows; ++b) {
        double s = 0;
        for (int64_t j = 0; j < dim; ++j) s += static_cast<double>(d.v[a * dim + j]) * d.v[b * dim + j];
        k[a * rows + b] = s / nrm[a] / nrm[b] / static_cast<double>(rows);
      }
    SymEigen e = sym_eigen(k.data(), rows, false);
    double h = 0;
    for (double l : e.values)
      if (l > 0) h -= l * std::log(l);
    const double want = std::exp(h);
    VendiResult g = vendi(d, VendiPath::Gram), c = vendi(d, VendiPath::Covariance), a = vendi(d);
    CHECK_NEAR(g.score, want, 1e-10 * want);
    CHECK_NEAR(c.score, want, 1e-10 * want);
    CHECK_EQ(a.gram, rows <= dim);
    CHECK(a.score >= 1.0 && a.score <= static_cast<double>(std::min(rows, dim)) + 1e-9);
    CHECK_EQ(static_cast<int64_t>(g.eigenvalues.size()), rows);
    CHECK_EQ(static_cast<int64_t>(c.eigenvalues.size()), dim);
    // Thread count does not change the bytes.
    VendiOptions o1, o3;
    o1.threads = 1;
    o3.threads = 3;
    CHECK_EQ(vendi_score(d.view(), o1).score, vendi_score(d.view(), o3).score);
  }
}

TEST(vendi_rejects_bad_input) {
  FloatData d = gaussian_data(6, 4, 2);
  d.v[3 * 4 + 2] = NAN;
  VendiOptions o;
  o.name = "synthetic";
  CHECK_THROWS_CODE(vendi_score(d.view(), o), "E_NONFINITE");
  CHECK(error_message([&] { vendi_score(d.view(), o); }).find("synthetic row 3, column 2 is NaN") != std::string::npos);
  FloatData z = gaussian_data(6, 4, 2);
  for (int64_t j = 0; j < 4; ++j) z.v[4 * 4 + j] = 0.0f;
  CHECK_THROWS_CODE(vendi_score(z.view(), o), "E_RANGE");
  CHECK(error_message([&] { vendi_score(z.view(), o); }).find("row 4") != std::string::npos);
  CHECK_THROWS_CODE(vendi_score(MatrixView{nullptr, 0, 4}, o), "E_SHAPE");
}

// --------------------------------------------------------------- timings --
// GENAUG_LINALG_BENCH=1 prints timings (50000 x 512 statistics, 512 x 512
// eigendecomposition, Fréchet and Vendi at D = 512); skipped otherwise.
TEST(linalg_timings) {
  if (std::getenv("GENAUG_LINALG_BENCH") == nullptr) return;
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  const int64_t N = 50000, D = 512;
  FloatData d = gaussian_data(N, D, 1);
  for (Isa isa : available_isas()) {
    for (int threads : {1, 2}) {
      StatsOptions o;
      o.isa = isa;
      o.threads = threads;
      auto t0 = clock::now();
      GaussianState st = gaussian_stats(d.view(), o);
      auto t1 = clock::now();
      std::cout << "  stats " << N << "x" << D << " isa=" << isa_name(isa) << " threads=" << threads << ": " << ms(t0, t1)
                << " ms\n";
    }
  }
  GaussianState st = gaussian_stats(d.view(), StatsOptions{});
  const Mat cov = state_covariance(st);
  auto t0 = clock::now();
  SymEigen ev = sym_eigen(cov.data(), D, false);
  auto t1 = clock::now();
  SymEigen evv = sym_eigen(cov.data(), D, true);
  auto t2 = clock::now();
  std::cout << "  eigen 512x512 values only: " << ms(t0, t1) << " ms, with vectors: " << ms(t1, t2) << " ms\n";
  GaussianState st2 = gaussian_stats(gaussian_data(20000, D, 2, {0.1}, {1.1}).view(), StatsOptions{});
  for (int threads : {1, 2}) {
    MetricsOptions mo;
    mo.threads = threads;
    auto t3 = clock::now();
    FrechetResult f = frechet_distance(st, st2, mo);
    auto t4 = clock::now();
    std::cout << "  frechet D=512 threads=" << threads << ": " << ms(t3, t4) << " ms (distance " << f.distance << ")\n";
  }
  VendiOptions vo;
  auto t5 = clock::now();
  VendiResult v = vendi_score(d.view(), vo);
  auto t6 = clock::now();
  std::cout << "  vendi 50000x512 (D x D path): " << ms(t5, t6) << " ms (score " << v.score << ")\n";
  FloatData small = gaussian_data(2000, D, 3);
  auto t7 = clock::now();
  VendiResult v2 = vendi_score(small.view(), vo);
  auto t8 = clock::now();
  auto t9 = clock::now();
  VendiOptions vg;
  vg.path = VendiPath::Gram;
  FloatData g = gaussian_data(500, 4096, 3);
  VendiResult v3 = vendi_score(g.view(), vg);
  auto t10 = clock::now();
  std::cout << "  vendi 2000x512: " << ms(t7, t8) << " ms (score " << v2.score << "), 500x4096 Gram path: " << ms(t9, t10)
            << " ms (score " << v3.score << ")\n";
}
