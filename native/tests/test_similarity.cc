// The similarity engine against a plain double-precision oracle, on every ISA
// this CPU runs, with the awkward shapes: D not a multiple of the SIMD width,
// M or N of 1, k > N, duplicates, zero rows, several database blocks.
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "similarity.h"
#include "test.h"

using namespace genaug;

namespace {

struct Data {
  std::vector<float> v;
  int64_t rows, dim;
  MatrixView view() const { return MatrixView{v.data(), rows, dim}; }
};

Data make_data(int64_t rows, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Data d{std::vector<float>(static_cast<size_t>(rows * dim)), rows, dim};
  for (auto& x : d.v) x = nd(rng);
  return d;
}

double oracle(const Data& a, int64_t i, const Data& b, int64_t j, bool normalize) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t k = 0; k < a.dim; ++k) {
    const double x = a.v[i * a.dim + k], y = b.v[j * b.dim + k];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (!normalize) return dot;
  if (na == 0 || nb == 0) return 0;
  return dot / std::sqrt(na) / std::sqrt(nb);
}

void check_topk(const Data& q, const Data& d, int64_t k, const SimilarityOptions& opt) {
  TopKResult r = topk(q.view(), d.view(), k, opt);
  const int64_t keff = std::min(k, d.rows);
  CHECK_EQ(r.k, keff);
  CHECK_EQ(r.rows, q.rows);
  for (int64_t i = 0; i < q.rows; ++i) {
    std::vector<std::pair<double, int64_t>> all;
    for (int64_t j = 0; j < d.rows; ++j) all.push_back({oracle(q, i, d, j, opt.normalize), j});
    std::sort(all.begin(), all.end(), [](auto& x, auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
    std::set<int64_t> seen;
    for (int64_t c = 0; c < keff; ++c) {
      const int64_t idx = r.indices[i * keff + c];
      CHECK(idx >= 0 && idx < d.rows);
      CHECK(seen.insert(idx).second);
      // The c-th returned score equals the c-th best, and is the score of the returned row.
      CHECK_NEAR(r.scores[i * keff + c], all[c].first, 2e-5 * (opt.normalize ? 1.0 : 50.0));
      CHECK_NEAR(r.scores[i * keff + c], oracle(q, i, d, idx, opt.normalize), 2e-5 * (opt.normalize ? 1.0 : 50.0));
      if (c > 0) CHECK(r.scores[i * keff + c] <= r.scores[i * keff + c - 1]);
    }
  }
}

}  // namespace

TEST(topk_matches_oracle_on_every_isa) {
  for (Isa isa : available_isas()) {
    SimilarityOptions opt;
    opt.isa = isa;
    for (int64_t dim : {1, 3, 16, 37, 64, 130}) {
      Data q = make_data(29, dim, 1 + static_cast<uint32_t>(dim));
      Data d = make_data(301, dim, 100 + static_cast<uint32_t>(dim));
      check_topk(q, d, 1, opt);
      check_topk(q, d, 7, opt);
      check_topk(q, d, 301, opt);
    }
  }
}

TEST(topk_edge_shapes) {
  for (Isa isa : available_isas()) {
    SimilarityOptions opt;
    opt.isa = isa;
    check_topk(make_data(1, 5, 1), make_data(1, 5, 2), 1, opt);
    check_topk(make_data(1, 5, 3), make_data(1, 5, 4), 10, opt);   // k > N
    check_topk(make_data(13, 9, 5), make_data(1, 9, 6), 3, opt);  // N = 1
    check_topk(make_data(1, 700, 7), make_data(50, 700, 8), 4, opt);  // D > one depth pass
    opt.normalize = false;
    check_topk(make_data(17, 33, 9), make_data(90, 33, 10), 5, opt);
  }
}

TEST(topk_many_blocks_and_threads_are_deterministic) {
  Data q = make_data(500, 48, 11);
  Data d = make_data(3000, 48, 12);
  SimilarityOptions a;
  a.threads = 1;
  a.block_bytes = 1 << 16;  // many database blocks
  SimilarityOptions b;
  b.threads = 2;
  TopKResult ra = topk(q.view(), d.view(), 9, a);
  TopKResult rb = topk(q.view(), d.view(), 9, b);
  CHECK(ra.indices == rb.indices);
  CHECK(std::memcmp(ra.scores.data(), rb.scores.data(), ra.scores.size() * sizeof(float)) == 0);
  check_topk(q, d, 9, a);
}

TEST(topk_ties_go_to_the_lower_index) {
  Data q = make_data(4, 10, 21);
  Data d = make_data(20, 10, 22);
  // Rows 3, 8 and 15 are copies of query 0; row 11 is 2x query 0, and scaling
  // by 2 is exact in floating point, so all four tie exactly.
  for (int64_t j : {3, 8, 15}) std::copy(q.v.begin(), q.v.begin() + 10, d.v.begin() + j * 10);
  for (int k = 0; k < 10; ++k) d.v[11 * 10 + k] = 2.0f * q.v[k];
  for (Isa isa : available_isas()) {
    SimilarityOptions opt;
    opt.isa = isa;
    TopKResult r = topk(q.view(), d.view(), 4, opt);
    CHECK_EQ(r.indices[0], 3);
    CHECK_EQ(r.indices[1], 8);
    CHECK_EQ(r.indices[2], 11);
    CHECK_EQ(r.indices[3], 15);
    CHECK(r.scores[0] == r.scores[1] && r.scores[1] == r.scores[2] && r.scores[2] == r.scores[3]);
    TopKResult r2 = topk(q.view(), d.view(), 2, opt);  // the same two survive a smaller heap
    CHECK_EQ(r2.indices[0], 3);
    CHECK_EQ(r2.indices[1], 8);
    CHECK_NEAR(r.scores[0], 1.0, 1e-6);
  }
}

TEST(zero_rows_score_zero_and_nonfinite_is_rejected) {
  Data q = make_data(3, 8, 31);
  Data d = make_data(5, 8, 32);
  std::fill(d.v.begin() + 16, d.v.begin() + 24, 0.0f);  // row 2 is zero
  std::fill(q.v.begin(), q.v.begin() + 8, 0.0f);        // query 0 is zero
  TopKResult r = topk(q.view(), d.view(), 5, SimilarityOptions{});
  for (int c = 0; c < 5; ++c) CHECK_EQ(r.scores[c], 0.0f);
  for (int64_t i = 1; i < 3; ++i)
    for (int c = 0; c < 5; ++c)
      if (r.indices[i * 5 + c] == 2) CHECK_EQ(r.scores[i * 5 + c], 0.0f);
  d.v[4 * 8 + 6] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_CODE(topk(q.view(), d.view(), 1, SimilarityOptions{}), "E_NONFINITE");
  d.v[4 * 8 + 6] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_CODE(topk(q.view(), d.view(), 1, SimilarityOptions{}), "E_NONFINITE");
  try {
    topk(q.view(), d.view(), 1, SimilarityOptions{});
  } catch (const genaug::Error& e) {
    CHECK(std::string(e.what()).find("database row 4, column 6") != std::string::npos);
  }
}

TEST(bad_arguments_throw_codes) {
  Data q = make_data(3, 8, 41);
  Data d = make_data(5, 7, 42);
  CHECK_THROWS_CODE(topk(q.view(), d.view(), 1, SimilarityOptions{}), "E_SHAPE");
  Data d8 = make_data(5, 8, 43);
  CHECK_THROWS_CODE(topk(q.view(), d8.view(), 0, SimilarityOptions{}), "E_RANGE");
  SimilarityOptions bad;
  bad.threads = -1;
  CHECK_THROWS_CODE(topk(q.view(), d8.view(), 1, bad), "E_RANGE");
  std::vector<int32_t> labels{0, 1, 2, 5, 1};
  CHECK_THROWS_CODE(class_max(q.view(), d8.view(), labels.data(), 3, SimilarityOptions{}), "E_RANGE");
  labels[3] = -1;
  CHECK_THROWS_CODE(class_mean(q.view(), d8.view(), labels.data(), 3, SimilarityOptions{}), "E_RANGE");
  CHECK_THROWS_CODE(pairs(q.view(), d8.view(), std::numeric_limits<float>::quiet_NaN(), -1, 10, SimilarityOptions{}), "E_RANGE");
  Data huge = make_data(2, 8, 44);
  huge.v[0] = 3e38f;
  SimilarityOptions raw;
  raw.normalize = false;
  CHECK_THROWS_CODE(topk(huge.view(), huge.view(), 1, raw), "E_RANGE");
}

TEST(class_mean_and_max_match_oracle) {
  Data q = make_data(23, 19, 51);
  Data d = make_data(211, 19, 52);
  const int64_t C = 7;  // class 5 stays empty
  std::vector<int32_t> labels(211);
  std::mt19937 rng(53);
  for (auto& l : labels) {
    l = static_cast<int32_t>(rng() % 6);
    if (l == 5) l = 6;
  }
  for (Isa isa : available_isas()) {
    SimilarityOptions opt;
    opt.isa = isa;
    opt.block_bytes = 1 << 16;
    ClassResult mean = class_mean(q.view(), d.view(), labels.data(), C, opt);
    ClassResult mx = class_max(q.view(), d.view(), labels.data(), C, opt);
    CHECK_EQ(mean.counts[5], 0);
    for (int64_t i = 0; i < q.rows; ++i) {
      for (int64_t c = 0; c < C; ++c) {
        double sum = 0, best = -1e300;
        int64_t n = 0;
        for (int64_t j = 0; j < d.rows; ++j) {
          if (labels[j] != c) continue;
          const double s = oracle(q, i, d, j, true);
          sum += s;
          best = std::max(best, s);
          ++n;
        }
        if (n == 0) {
          CHECK(std::isnan(mean.values[i * C + c]));
          CHECK(std::isnan(mx.values[i * C + c]));
        } else {
          CHECK_NEAR(mean.values[i * C + c], sum / n, 2e-5);
          CHECK_NEAR(mx.values[i * C + c], best, 2e-5);
        }
      }
    }
  }
}

TEST(pairs_within_and_between_sets) {
  Data a = make_data(150, 6, 61);  // low dimension: many high cosines
  Data b = make_data(90, 6, 62);
  for (int k = 0; k < 6; ++k) a.v[40 * 6 + k] = a.v[7 * 6 + k];  // exact duplicate
  const float t = 0.9f;
  for (Isa isa : available_isas()) {
    SimilarityOptions opt;
    opt.isa = isa;
    PairsResult self = pairs(a.view(), a.view(), t, 0, 1 << 20, opt);
    std::vector<std::pair<int64_t, int64_t>> want;
    for (int64_t i = 0; i < a.rows; ++i)
      for (int64_t j = i + 1; j < a.rows; ++j)
        if (oracle(a, i, a, j, true) >= t + 1e-5) want.push_back({i, j});
    // Every clear pair is found; everything found is above the threshold (within float noise).
    std::set<std::pair<int64_t, int64_t>> got;
    for (size_t x = 0; x < self.i.size(); ++x) {
      got.insert({self.i[x], self.j[x]});
      CHECK(self.j[x] > self.i[x]);
      CHECK(self.score[x] >= t);
      CHECK(oracle(a, self.i[x], a, self.j[x], true) >= t - 1e-5);
      if (x > 0) CHECK(self.i[x - 1] < self.i[x] || (self.i[x - 1] == self.i[x] && self.j[x - 1] < self.j[x]));
    }
    for (auto& p : want) CHECK(got.count(p) == 1);
    CHECK(got.count({7, 40}) == 1);
    // A slice of the set at an offset finds the same pairs for its rows.
    MatrixView slice{a.v.data() + 30 * 6, 50, 6};
    PairsResult part = pairs(slice, a.view(), t, 30, 1 << 20, opt);
    size_t expect = 0;
    for (auto& p : got) expect += (p.first >= 30 && p.first < 80);
    CHECK_EQ(part.i.size(), expect);
    // Between sets.
    PairsResult cross = pairs(a.view(), b.view(), t, -1, 1 << 20, opt);
    size_t n = 0;
    for (int64_t i = 0; i < a.rows; ++i)
      for (int64_t j = 0; j < b.rows; ++j) n += oracle(a, i, b, j, true) >= t + 1e-5;
    CHECK(cross.i.size() >= n);
    for (size_t x = 0; x < cross.i.size(); ++x) CHECK(oracle(a, cross.i[x], b, cross.j[x], true) >= t - 1e-5);
    CHECK_THROWS_CODE(pairs(a.view(), a.view(), 0.0f, 0, 3, opt), "E_LIMIT");
  }
}

TEST(row_dot_matches_oracle) {
  Data a = make_data(77, 13, 71);
  Data b = make_data(77, 13, 72);
  std::vector<float> r = row_dot(a.view(), b.view(), SimilarityOptions{});
  for (int64_t i = 0; i < 77; ++i) CHECK_NEAR(r[i], oracle(a, i, b, i, true), 1e-6);
  Data c = make_data(76, 13, 73);
  CHECK_THROWS_CODE(row_dot(a.view(), c.view(), SimilarityOptions{}), "E_SHAPE");
}

// Odd engine tunings (depth split into passes, both loop orders, tiles that
// are not multiples of the micro-tile) give the same results as the defaults.
TEST(engine_tunings_agree) {
  Data q = make_data(53, 45, 91);
  Data d = make_data(517, 45, 92);
  SimilarityOptions opt;
  TopKResult ref = topk(q.view(), d.view(), 6, opt);
  for (int64_t order : {0, 1}) {
    for (int64_t kc : {7, 16, 45}) {
      EngineTuning t;
      t.kc = kc;
      t.order = order;
      t.mc = 13;
      t.nct = 40;
      set_engine_tuning(t);
      for (Isa isa : available_isas()) {
        opt.isa = isa;
        check_topk(q, d, 6, opt);
      }
      opt.isa = cpu_info().best;
      TopKResult r = topk(q.view(), d.view(), 6, opt);
      CHECK(r.indices == ref.indices);
    }
  }
  set_engine_tuning(EngineTuning{});
}

// Rows with a norm far below float's smallest normal still normalise
// correctly (the scale 1/norm overflows float, so it is kept in double).
TEST(tiny_rows_normalise_without_overflow) {
  Data q = make_data(2, 4, 101);
  for (auto& x : q.v) x *= 1e-40f;  // subnormal floats
  Data d = q;
  TopKResult r = topk(q.view(), d.view(), 2, SimilarityOptions{});
  for (int i = 0; i < 2; ++i) {
    CHECK_EQ(r.indices[i * 2], i);
    CHECK(std::isfinite(r.scores[i * 2]));
    CHECK_NEAR(r.scores[i * 2], 1.0, 1e-5);
  }
  std::vector<float> rd = row_dot(q.view(), d.view(), SimilarityOptions{});
  CHECK_NEAR(rd[0], 1.0, 1e-5);
  PairsResult p = pairs(q.view(), d.view(), 0.99, -1, 100, SimilarityOptions{});
  CHECK_EQ(p.i.size(), 2u);
}

// The threshold is compared in double precision: a pair whose float score is
// just below a decimal threshold is not reported.
TEST(pairs_threshold_is_exact) {
  Data a = make_data(1, 16, 111);
  Data b = make_data(1, 16, 112);
  TopKResult r = topk(a.view(), b.view(), 1, SimilarityOptions{});
  const double s = r.scores[0];
  CHECK_EQ(pairs(a.view(), b.view(), s, -1, 10, SimilarityOptions{}).i.size(), 1u);
  CHECK_EQ(pairs(a.view(), b.view(), std::nextafter(s, 2.0), -1, 10, SimilarityOptions{}).i.size(), 0u);
  CHECK_EQ(pairs(a.view(), b.view(), 1e300, -1, 10, SimilarityOptions{}).i.size(), 0u);
  CHECK_EQ(pairs(a.view(), b.view(), -1e300, -1, 10, SimilarityOptions{}).i.size(), 1u);
}

TEST(width_limit_and_wide_rows_stay_bounded) {
  std::vector<float> wide(static_cast<size_t>(kMaxDim), 0.5f);
  MatrixView one{wide.data(), 1, kMaxDim};
  SimilarityOptions opt;
  opt.block_bytes = 1 << 16;  // far less than one row: the block still holds one micro-panel
  TopKResult r = topk(one, one, 1, opt);
  CHECK_NEAR(r.scores[0], 1.0, 1e-5);
  MatrixView too_wide{wide.data(), 0, kMaxDim + 1};
  CHECK_THROWS_CODE(topk(too_wide, too_wide, 1, opt), "E_SHAPE");
}

TEST(nonfinite_message_uses_names_and_offsets) {
  Data q = make_data(3, 4, 121);
  q.v[2 * 4 + 1] = std::numeric_limits<float>::quiet_NaN();
  SimilarityOptions opt;
  opt.query_name = "q.npy";
  opt.query_row_offset = 1000;
  try {
    topk(q.view(), q.view(), 1, opt);
    CHECK(false);
  } catch (const genaug::Error& e) {
    CHECK_EQ(e.code(), std::string("E_NONFINITE"));
    CHECK(std::string(e.what()).find("q.npy row 1002, column 1 is NaN") != std::string::npos);
  }
}
