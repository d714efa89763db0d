// The device (CUDA) similarity path's blocking and index math, run on the CPU
// by the emulation backend (the same per-thread functions the kernels call,
// in the same blocks), against the CPU engine on odd shapes: k > n, n not a
// multiple of a block or of the tile, one row, empty classes, many blocks on
// both sides (a small pretend device memory), ties between duplicate rows.
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>

#include "device_tiling.h"
#include "similarity.h"
#include "similarity_device.h"
#include "test.h"

using namespace genaug;

namespace {

struct Mat {
  std::vector<float> v;
  int64_t rows, dim;
  MatrixView view() const { return MatrixView{v.data(), rows, dim}; }
};

Mat make_mat(int64_t rows, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Mat m{std::vector<float>(static_cast<size_t>(rows * dim)), rows, dim};
  for (auto& x : m.v) x = nd(rng);
  return m;
}

SimilarityOptions cpu_opts(bool normalize = true) {
  SimilarityOptions o;
  o.normalize = normalize;
  o.threads = 2;
  o.isa = active_isa();
  return o;
}

// Pretend device memory that holds only a few rows of each side.
SimilarityOptions dev_opts(int64_t device_bytes, bool normalize = true) {
  SimilarityOptions o = cpu_opts(normalize);
  o.device_bytes = device_bytes;
  return o;
}

void compare_topk(const Mat& q, const Mat& d, int64_t k, int64_t device_bytes, bool normalize = true) {
  auto be = emulated_backend(int64_t(1) << 30);
  TopKResult c = topk(q.view(), d.view(), k, cpu_opts(normalize));
  TopKResult g = device_topk(*be, q.view(), d.view(), k, dev_opts(device_bytes, normalize));
  CHECK_EQ(g.rows, c.rows);
  CHECK_EQ(g.k, c.k);
  CHECK_EQ(g.indices.size(), c.indices.size());
  if (g.indices.size() != c.indices.size()) return;
  int64_t bad = 0;
  for (size_t x = 0; x < c.indices.size(); ++x) {
    if (g.indices[x] != c.indices[x]) ++bad;
    CHECK_NEAR(g.scores[x], c.scores[x], normalize ? 1e-5 : 1e-4);
  }
  CHECK_EQ(bad, 0);
}

}  // namespace

TEST(device_tiling_topk_insert_keeps_best_first_ties_to_lower_index) {
  float s[3];
  int64_t j[3];
  int64_t filled = 0;
  // Hand-worked: (0.5, 7), (0.9, 3), (0.5, 2), (0.1, 0), (0.9, 1) into k = 3
  // -> (0.9, 1), (0.9, 3), (0.5, 2).
  const float in_s[] = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f};
  const int64_t in_j[] = {7, 3, 2, 0, 1};
  for (int e = 0; e < 5; ++e) tiling::topk_insert(s, j, 3, filled, in_s[e], in_j[e]);
  CHECK_EQ(filled, 3);
  CHECK_EQ(j[0], 1);
  CHECK_EQ(j[1], 3);
  CHECK_EQ(j[2], 2);
  CHECK_EQ(s[0], 0.9f);
  CHECK_EQ(s[2], 0.5f);
}

TEST(device_tiling_parts_cover_every_column_once) {
  for (int64_t n : {1, 2, 7, 255, 256, 257, 1000, 5000}) {
    for (int64_t k : {1, 5, 32, 33}) {
      const int64_t parts = tiling::topk_parts(n, k);
      CHECK(parts >= 1 && parts <= tiling::kMaxParts);
      if (k > tiling::kPartsMaxK) CHECK_EQ(parts, 1);
      int64_t next = 0;
      for (int64_t p = 0; p < parts; ++p) {
        int64_t c0, c1;
        tiling::part_range(n, parts, p, c0, c1);
        CHECK_EQ(c0, next);
        CHECK(c1 >= c0);
        next = c1;
      }
      CHECK_EQ(next, n);
    }
  }
}

TEST(device_tiling_block_plan_fits_the_budget) {
  tiling::BlockPlan p;
  // Everything fits: whole sides.
  CHECK(tiling::plan_blocks(int64_t(1) << 30, 100, 1000, 64, 48, 0, p));
  CHECK_EQ(p.mb, 100);
  CHECK_EQ(p.nb, 1000);
  // Tight: blocks shrink until they fit, never to zero rows.
  for (int64_t budget : {int64_t(3000), int64_t(20000), int64_t(1) << 20}) {
    if (!tiling::plan_blocks(budget, 5000, 70000, 17, 100, 4, p)) {
      CHECK(tiling::plan_bytes(1, 1, 17, 100, 4) > budget);
      continue;
    }
    CHECK(p.mb >= 1 && p.nb >= 1 && p.mb <= 5000 && p.nb <= 65536);
    CHECK(p.bytes <= budget);
    CHECK_EQ(p.bytes, tiling::plan_bytes(p.mb, p.nb, 17, 100, 4));
  }
  // One row of each does not fit: refused.
  CHECK(!tiling::plan_blocks(100, 10, 10, 64, 0, 0, p));
  // 3/4 of free memory less 64 MiB, never negative.
  CHECK_EQ(tiling::budget_from_free(int64_t(1) << 30), (int64_t(1) << 30) / 4 * 3 - (int64_t(64) << 20));
  CHECK_EQ(tiling::budget_from_free(1000), 0);
}

TEST(device_tiling_dot_is_the_sequential_fma_chain) {
  Mat a = make_mat(1, 77, 5), b = make_mat(1, 77, 6);
  float acc = 0.0f;
  for (int64_t k = 0; k < 77; ++k) acc = std::fmaf(a.v[k], b.v[k], acc);
  const float t = tiling::tile_dot(a.v.data(), b.v.data(), 77);
  CHECK(std::memcmp(&acc, &t, sizeof acc) == 0);
}

TEST(device_emulation_topk_matches_cpu_on_odd_shapes) {
  // (m, n, d, k, pretend device bytes): one row; k > n; n not a multiple of
  // the tile or of a block; k past the partial-list limit; many blocks.
  struct Case {
    int64_t m, n, d, k, bytes;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 1 << 20},     {1, 5, 3, 9, 1 << 20},      {37, 101, 17, 5, 1 << 20},
      {37, 101, 17, 5, 6000},    {70, 300, 33, 40, 1 << 20}, {70, 300, 33, 40, 40000},
      {5, 1000, 8, 3, 1 << 22},  {3, 1000, 8, 3, 9000},      {130, 77, 31, 77, 30000},
  };
  uint32_t seed = 11;
  for (const Case& c : cases) {
    Mat q = make_mat(c.m, c.d, seed++), d = make_mat(c.n, c.d, seed++);
    compare_topk(q, d, c.k, c.bytes);
    compare_topk(q, d, c.k, c.bytes, false);
  }
  // The small budget really streamed both sides in several blocks.
  Mat q = make_mat(37, 17, 1), d = make_mat(101, 17, 2);
  auto be = emulated_backend(int64_t(1) << 30);
  device_topk(*be, q.view(), d.view(), 5, dev_opts(6000));
  const DevicePlanInfo p = last_device_plan();
  CHECK(p.query_rows < 37);
  CHECK(p.db_rows < 101);
  CHECK_EQ(p.budget, 6000);
}

TEST(device_emulation_topk_ties_go_to_the_lower_index) {
  // Duplicate database rows score the same bytes: the lower index first,
  // across parts and blocks.
  Mat base = make_mat(40, 9, 3);
  Mat d{std::vector<float>(), 600, 9};
  for (int64_t r = 0; r < 600; ++r) d.v.insert(d.v.end(), base.v.begin() + (r % 40) * 9, base.v.begin() + (r % 40 + 1) * 9);
  Mat q = make_mat(6, 9, 4);
  compare_topk(q, d, 20, 1 << 20);
  compare_topk(q, d, 20, 12000);
  auto be = emulated_backend(int64_t(1) << 30);
  TopKResult g = device_topk(*be, q.view(), d.view(), 15, dev_opts(12000));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t c = 1; c < 15; ++c) {
      const float s0 = g.scores[i * 15 + c - 1], s1 = g.scores[i * 15 + c];
      CHECK(s0 >= s1);
      if (s0 == s1) CHECK(g.indices[i * 15 + c - 1] < g.indices[i * 15 + c]);
    }
}

TEST(device_emulation_class_max_and_mean_match_cpu_with_empty_classes) {
  Mat q = make_mat(23, 19, 7), d = make_mat(211, 19, 8);
  // Classes 0..9; 3 and 8 have no rows.
  std::vector<int32_t> labels(211);
  for (int64_t r = 0; r < 211; ++r) {
    int32_t l = static_cast<int32_t>((r * 7) % 10);
    if (l == 3 || l == 8) l = 0;
    labels[r] = l;
  }
  auto be = emulated_backend(int64_t(1) << 30);
  for (int64_t bytes : {int64_t(1) << 20, int64_t(7000)}) {
    for (bool mean : {false, true}) {
      ClassResult c = mean ? class_mean(q.view(), d.view(), labels.data(), 10, cpu_opts())
                           : class_max(q.view(), d.view(), labels.data(), 10, cpu_opts());
      ClassResult g = mean ? device_class_mean(*be, q.view(), d.view(), labels.data(), 10, dev_opts(bytes))
                           : device_class_max(*be, q.view(), d.view(), labels.data(), 10, dev_opts(bytes));
      CHECK_EQ(g.rows, c.rows);
      CHECK_EQ(g.classes, c.classes);
      CHECK(g.counts == c.counts);
      CHECK_EQ(g.values.size(), c.values.size());
      for (size_t x = 0; x < c.values.size() && x < g.values.size(); ++x) {
        CHECK_EQ(std::isnan(g.values[x]), std::isnan(c.values[x]));
        if (!std::isnan(c.values[x])) CHECK_NEAR(g.values[x], c.values[x], 1e-5);
      }
      CHECK(std::isnan(g.values[3]) && std::isnan(g.values[8]));
    }
  }
  // A label outside the classes: the CPU path's error.
  labels[100] = 10;
  CHECK_THROWS_CODE(device_class_max(*be, q.view(), d.view(), labels.data(), 10, dev_opts(1 << 20)), "E_RANGE");
}

TEST(device_emulation_pairs_match_cpu_within_and_across_sets) {
  Mat a = make_mat(45, 6, 9), b = make_mat(130, 6, 10);
  auto be = emulated_backend(int64_t(1) << 30);
  // A threshold in a wide gap of the scores, so float32 rounding cannot move a pair across it.
  auto gap_threshold = [&](const Mat& q, const Mat& d) {
    TopKResult all = topk(q.view(), d.view(), d.rows, cpu_opts());
    std::vector<float> s = all.scores;
    std::sort(s.begin(), s.end());
    size_t best = s.size() * 8 / 10;
    for (size_t x = s.size() * 8 / 10; x + 1 < s.size() * 95 / 100; ++x)
      if (s[x + 1] - s[x] > s[best + 1] - s[best]) best = x;
    return 0.5 * (static_cast<double>(s[best]) + s[best + 1]);
  };
  const double t = gap_threshold(a, b);
  for (int64_t bytes : {int64_t(1) << 20, int64_t(3000)}) {
    PairsResult c = pairs(a.view(), b.view(), t, -1, 1 << 20, cpu_opts());
    PairsResult g = device_pairs(*be, a.view(), b.view(), t, -1, 1 << 20, dev_opts(bytes));
    CHECK(c.i.size() > 0);
    CHECK(g.i == c.i);
    CHECK(g.j == c.j);
    for (size_t x = 0; x < c.score.size() && x < g.score.size(); ++x) CHECK_NEAR(g.score[x], c.score[x], 1e-5);
    // Within one set: rows 20..44 of b against all of b, j > 20 + i only.
    Mat s{std::vector<float>(b.v.begin() + 20 * 6, b.v.begin() + 45 * 6), 25, 6};
    const double ts = gap_threshold(s, b);
    PairsResult cs = pairs(s.view(), b.view(), ts, 20, 1 << 20, cpu_opts());
    PairsResult gs = device_pairs(*be, s.view(), b.view(), ts, 20, 1 << 20, dev_opts(bytes));
    CHECK(gs.i == cs.i);
    CHECK(gs.j == cs.j);
    for (size_t x = 0; x < gs.i.size(); ++x) CHECK(gs.j[x] > 20 + gs.i[x]);
    // Past maxPairs: E_LIMIT, as the CPU path.
    if (c.i.size() > 1) {
      CHECK_THROWS_CODE(device_pairs(*be, a.view(), b.view(), t, -1, static_cast<int64_t>(c.i.size()) - 1, dev_opts(bytes)),
                        "E_LIMIT");
      PairsResult exact = device_pairs(*be, a.view(), b.view(), t, -1, static_cast<int64_t>(c.i.size()), dev_opts(bytes));
      CHECK_EQ(exact.i.size(), c.i.size());
    }
  }
}

TEST(device_emulation_row_dot_is_the_cpu_bytes) {
  auto be = emulated_backend(int64_t(1) << 30);
  for (bool normalize : {true, false}) {
    Mat a = make_mat(301, 13, 21), b = make_mat(301, 13, 22);
    std::fill(a.v.begin() + 13 * 5, a.v.begin() + 13 * 6, 0.0f);  // a zero row: cosine 0
    std::vector<float> c = row_dot(a.view(), b.view(), cpu_opts(normalize));
    std::vector<float> g = device_row_dot(*be, a.view(), b.view(), dev_opts(2000, normalize));
    CHECK(last_device_plan().query_rows < 301);
    CHECK_EQ(g.size(), c.size());
    CHECK(g.size() == c.size() && std::memcmp(g.data(), c.data(), g.size() * sizeof(float)) == 0);
    CHECK_EQ(g[5], 0.0f);
  }
}

TEST(device_emulation_rejects_what_the_cpu_path_rejects) {
  auto be = emulated_backend(int64_t(1) << 30);
  Mat q = make_mat(3, 4, 1), d = make_mat(5, 4, 2), w = make_mat(5, 3, 3);
  CHECK_THROWS_CODE(device_topk(*be, q.view(), d.view(), 0, dev_opts(1 << 20)), "E_RANGE");
  CHECK_THROWS_CODE(device_topk(*be, q.view(), w.view(), 1, dev_opts(1 << 20)), "E_SHAPE");
  q.v[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_CODE(device_topk(*be, q.view(), d.view(), 1, dev_opts(1 << 20)), "E_NONFINITE");
  q.v[5] = 0.0f;
  // Too little device memory for one row of each side.
  CHECK_THROWS_CODE(device_topk(*be, q.view(), d.view(), 1, dev_opts(40)), "E_NOMEM");
  // Sized from the backend's free memory when device_bytes is 0: 1 GiB pretend.
  device_topk(*be, q.view(), d.view(), 2, dev_opts(0));
  CHECK_EQ(last_device_plan().budget, tiling::budget_from_free(int64_t(1) << 30));
  // Cancelled before the first block.
  int32_t flag = 1;
  SimilarityOptions o = dev_opts(1 << 20);
  o.cancel = &flag;
  CHECK_THROWS_CODE(device_topk(*be, q.view(), d.view(), 1, o), "E_ABORTED");
  // No rows on a side.
  TopKResult e = device_topk(*be, MatrixView{nullptr, 0, 4}, d.view(), 3, dev_opts(1 << 20));
  CHECK_EQ(e.rows, 0);
  CHECK(e.indices.empty());
  TopKResult z = device_topk(*be, q.view(), MatrixView{nullptr, 0, 4}, 3, dev_opts(1 << 20));
  CHECK_EQ(z.k, 0);
}

// ------------------------------------------------- precision 'bf16' (screen) --

namespace {

SimilarityOptions bf16_opts(int64_t device_bytes, bool normalize = true) {
  SimilarityOptions o = dev_opts(device_bytes, normalize);
  o.precision = SimilarityOptions::Precision::Bf16;
  return o;
}

bool same_bytes(const TopKResult& a, const TopKResult& b) {
  return a.rows == b.rows && a.k == b.k && a.indices == b.indices && a.scores.size() == b.scores.size() &&
         std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(float)) == 0;
}

// The bf16 screen's answer against the exact device path (the same bytes: the
// contract) and the CPU engine (indices exact; scores the same bytes where the
// CPU's float32 kernel is the same fused multiply-add chain, as on AVX2).
// Returns the pairs rescored.
int64_t compare_bf16(SimilarityBackend& be, const Mat& q, const Mat& d, int64_t k, int64_t device_bytes,
                     bool normalize = true) {
  TopKResult c = topk(q.view(), d.view(), k, cpu_opts(normalize));
  TopKResult x = device_topk(be, q.view(), d.view(), k, dev_opts(device_bytes, normalize));
  TopKResult g = device_topk(be, q.view(), d.view(), k, bf16_opts(device_bytes, normalize));
  const DevicePlanInfo plan = last_device_plan();
  CHECK(plan.screened);
  CHECK(same_bytes(g, x));
  CHECK(g.indices == c.indices);
  if (active_isa() != Isa::Scalar) CHECK(same_bytes(g, c));
  return plan.rescored;
}

}  // namespace

TEST(device_tiling_bf16_round_is_nearest_even_without_subnormals) {
  // Hand-worked bit patterns: 1 = 0x3f80; 1 + 2^-8 is the midpoint of 1 and
  // 1 + 2^-7 (ties to the even 0x3f80); a hair above it rounds up; 1 + 3 2^-8
  // is the midpoint of 0x3f81 and 0x3f82 (even: 0x3f82); -1.5 = 0xbfc0.
  CHECK_EQ(tiling::bf16_round(1.0f), 0x3f80);
  CHECK_EQ(tiling::bf16_round(1.0f + 0x1p-8f), 0x3f80);
  CHECK_EQ(tiling::bf16_round(1.0f + 0x1p-8f + 0x1p-23f), 0x3f81);
  CHECK_EQ(tiling::bf16_round(1.0f + 3 * 0x1p-8f), 0x3f82);
  CHECK_EQ(tiling::bf16_round(-1.5f), 0xbfc0);
  CHECK_EQ(tiling::bf16_float(0x3f81), 1.0f + 0x1p-7f);
  // Below the normal range: 0; past the largest bf16: the largest, same sign.
  CHECK_EQ(tiling::bf16_round(0x1p-130f), 0);
  CHECK_EQ(tiling::bf16_round(std::numeric_limits<float>::max()), 0x7f7f);
  CHECK_EQ(tiling::bf16_round(-std::numeric_limits<float>::max()), 0xff7f);
  // Rounded down to a float: never above the double.
  CHECK_EQ(tiling::round_down_float(1.0 + 0x1p-30), 1.0f);
  CHECK_EQ(tiling::round_down_float(1.0 - 0x1p-30), std::nextafter(1.0f, 0.0f));
  CHECK_EQ(tiling::round_down_float(-1.0 - 0x1p-30), std::nextafter(-1.0f, -2.0f));
}

TEST(device_tiling_bf16_margin_covers_the_screen_error) {
  // |tile_dot(v, w) - screen(v~, w~)| <= E for random rows, rows at bf16
  // midpoints (every rounding error at its largest, all of one sign) and
  // tiny rows; E is at most a few times the worst case seen (not vacuous).
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double worst_ratio = 0.0;
  for (int64_t d : {1, 7, 16, 33, 200, 512}) {
    for (int kind = 0; kind < 3; ++kind) {
      std::vector<float> v(d), w(d);
      for (int64_t k = 0; k < d; ++k) {
        if (kind == 0) {
          v[k] = nd(rng);
          w[k] = nd(rng);
        } else if (kind == 1) {
          v[k] = 1.0f + 0x1p-8f - 0x1p-20f;  // rounds down by ~2^-8
          w[k] = 1.0f + 0x1p-8f - 0x1p-20f;
        } else {
          v[k] = nd(rng) * 0x1p-60f;
          w[k] = nd(rng) * 0x1p-60f;
        }
      }
      std::vector<uint16_t> hv(d), hw(d);
      double nv, nt, ne, mv, mt, me, qt[3], bt[3];
      tiling::bf16_row(v.data(), d, hv.data(), nv, nt, ne);
      tiling::bf16_row(w.data(), d, hw.data(), mv, mt, me);
      tiling::screen_query_terms(nv, nt, ne, d, qt);
      tiling::screen_db_terms(mv, mt, me, bt);
      const double err = std::fabs(static_cast<double>(tiling::tile_dot(v.data(), w.data(), d)) -
                                   tiling::mma_model_dot(hv.data(), hw.data(), d));
      const double E = tiling::screen_margin(qt, bt, d, tiling::kScreenSlack);
      CHECK(err <= E);
      if (kind == 1) worst_ratio = std::max(worst_ratio, err / E);
    }
  }
  // At the midpoints the quantisation term is attained: E within 2x of the error.
  CHECK(worst_ratio > 0.5);
}

TEST(device_emulation_bf16_topk_is_the_exact_answer_on_odd_shapes) {
  auto be = emulated_backend(int64_t(1) << 30);
  struct Case {
    int64_t m, n, d, k, bytes;
  };
  // One row; k > n; n not a multiple of the screen tile or of a block; k past
  // the partial-list limit; many blocks on both sides.
  const Case cases[] = {
      {1, 1, 1, 1, 1 << 20},    {1, 5, 3, 9, 1 << 20},     {37, 101, 17, 5, 1 << 20}, {37, 101, 17, 5, 9000},
      {70, 300, 33, 40, 1 << 20}, {70, 300, 33, 40, 60000}, {5, 1000, 8, 3, 1 << 22},  {3, 1000, 8, 3, 12000},
      {130, 77, 31, 77, 50000}, {65, 129, 64, 1, 1 << 20},
  };
  uint32_t seed = 101;
  for (const Case& c : cases) {
    Mat q = make_mat(c.m, c.d, seed++), d = make_mat(c.n, c.d, seed++);
    compare_bf16(*be, q, d, c.k, c.bytes);
    compare_bf16(*be, q, d, c.k, c.bytes, false);
  }
  // Random rows: the screen rules out most pairs (it is not rescoring everything).
  Mat q = make_mat(40, 64, 5), d = make_mat(3000, 64, 6);
  const int64_t rescored = compare_bf16(*be, q, d, 5, 1 << 22);
  CHECK(rescored < 40 * 3000 / 5);
  CHECK(rescored >= 40 * 5);
}

TEST(device_emulation_bf16_topk_ties_and_all_equal_rows) {
  auto be = emulated_backend(int64_t(1) << 30);
  // Duplicate database rows (ties to the lower index across parts and blocks).
  Mat base = make_mat(40, 9, 3);
  Mat d{std::vector<float>(), 600, 9};
  for (int64_t r = 0; r < 600; ++r) d.v.insert(d.v.end(), base.v.begin() + (r % 40) * 9, base.v.begin() + (r % 40 + 1) * 9);
  Mat q = make_mat(6, 9, 4);
  compare_bf16(*be, q, d, 20, 1 << 20);
  compare_bf16(*be, q, d, 20, 12000);
  // Every database row the same: every column ties with the k-th, so the
  // bound rules nothing out and every pair is rescored; the answer is 0..k-1.
  Mat one = make_mat(1, 24, 9);
  Mat same{std::vector<float>(), 700, 24};
  for (int64_t r = 0; r < 700; ++r) same.v.insert(same.v.end(), one.v.begin(), one.v.end());
  Mat qs = make_mat(3, 24, 10);
  for (int64_t bytes : {int64_t(1) << 20, int64_t(20000)}) {
    const int64_t rescored = compare_bf16(*be, qs, same, 7, bytes);
    CHECK_EQ(rescored, 3 * 700);
    TopKResult g = device_topk(*be, qs.view(), same.view(), 7, bf16_opts(bytes));
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t c = 0; c < 7; ++c) CHECK_EQ(g.indices[i * 7 + c], c);
  }
  // Near duplicates of the query (cosines within ~1e-6 of each other, far
  // below bf16's resolution): many candidates per row, still the exact order.
  Mat nq = make_mat(4, 48, 12);
  Mat near{std::vector<float>(), 500, 48};
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> ud(-1e-6f, 1e-6f);
  for (int64_t r = 0; r < 500; ++r)
    for (int64_t k = 0; k < 48; ++k) near.v.push_back(nq.v[(r % 4) * 48 + k] * (1.0f + ud(rng)));
  const int64_t many = compare_bf16(*be, nq, near, 10, 30000);
  CHECK(many > 4 * 100);
}

namespace {
// Rows where bf16 rounding reverses the order: q = ones; row A's entries are
// just under the bf16 midpoint 1 + 2^-8 (bf16: 1, each rounding down by ~2^-8),
// row B has a quarter of its entries at 1 + 2^-7 and the rest 1 (exact in
// bf16). Exact: A = D (1 + 2^-8 - 2^-20) beats B = D (1 + 2^-9); the screen
// says B = D (1 + 2^-9) beats A = D. Only a margin of at least ~D 2^-9 (the
// quantisation term at its worst, here attained) keeps A a candidate.
void adversarial(int64_t D, int64_t copies, Mat& q, Mat& d) {
  q = Mat{std::vector<float>(static_cast<size_t>(D), 1.0f), 1, D};
  d = Mat{std::vector<float>(), 0, D};
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> pick(0, 3);
  for (int64_t c = 0; c < copies; ++c) {
    // B rows first (lower indices), then one A row, then filler far below.
    for (int64_t k = 0; k < D; ++k) d.v.push_back(k % 4 == 0 ? 1.0f + 0x1p-7f : 1.0f);
    for (int64_t k = 0; k < D; ++k) d.v.push_back(1.0f + 0x1p-8f - 0x1p-20f);
    for (int64_t k = 0; k < D; ++k) d.v.push_back(pick(rng) == 0 ? 0.5f : 0.25f);
    d.rows += 3;
  }
}
}  // namespace

TEST(device_emulation_bf16_bound_is_what_keeps_the_answer_exact) {
  auto be = emulated_backend(int64_t(1) << 30);
  for (int64_t D : {64, 100}) {
    Mat q, d;
    adversarial(D, 30, q, d);
    for (int64_t k : {1, 30, 31}) {
      for (int64_t bytes : {int64_t(1) << 20, int64_t(4 * D * 40)}) {
        TopKResult c = topk(q.view(), d.view(), k, cpu_opts(false));
        // The exact answer starts with the A rows (index 3 c + 1).
        CHECK_EQ(c.indices[0], 1);
        compare_bf16(*be, q, d, k, bytes, false);
        // With a tenth of the bound the screen drops A rows for a B row: a
        // wrong answer (for k up to the A rows' count; past it, the k-th lower
        // bound of a whole block is an A row's, which keeps them all).
        set_device_screen_slack(0.1);
        TopKResult cut = device_topk(*be, q.view(), d.view(), k, bf16_opts(bytes, false));
        set_device_screen_slack(tiling::kScreenSlack);
        if (k <= 30) CHECK(cut.indices != c.indices);
      }
    }
  }
}

namespace {
bool same_pairs(const PairsResult& a, const PairsResult& b) {
  return a.i == b.i && a.j == b.j && a.score.size() == b.score.size() &&
         std::memcmp(a.score.data(), b.score.data(), a.score.size() * sizeof(float)) == 0;
}
// bf16 pairs against the exact device path (same bytes) and the CPU engine
// (same pairs; same score bytes where its kernel is the fused multiply-add chain).
int64_t compare_bf16_pairs(SimilarityBackend& be, const Mat& q, const Mat& d, double t, int64_t self, int64_t bytes,
                           bool normalize = true) {
  PairsResult c = pairs(q.view(), d.view(), t, self, 1 << 24, cpu_opts(normalize));
  PairsResult x = device_pairs(be, q.view(), d.view(), t, self, 1 << 24, dev_opts(bytes, normalize));
  PairsResult g = device_pairs(be, q.view(), d.view(), t, self, 1 << 24, bf16_opts(bytes, normalize));
  const DevicePlanInfo plan = last_device_plan();
  CHECK(plan.screened);
  CHECK(same_pairs(g, x));
  CHECK(g.i == c.i && g.j == c.j);
  if (active_isa() != Isa::Scalar) CHECK(same_pairs(g, c));
  return plan.rescored;
}
}  // namespace

TEST(device_emulation_bf16_pairs_are_the_exact_pairs) {
  auto be = emulated_backend(int64_t(1) << 30);
  Mat a = make_mat(45, 6, 9), b = make_mat(130, 6, 10);
  // Thresholds at an exact score (the pair with s == t must not pass: s > below
  // where below is the float under t... as the CPU path), between scores, low and high.
  TopKResult all = topk(a.view(), b.view(), 130, cpu_opts());
  for (double t : {0.3, 0.9, -0.5, static_cast<double>(all.scores[7]), static_cast<double>(all.scores[130 * 3 + 40])}) {
    for (int64_t bytes : {int64_t(1) << 20, int64_t(5000)}) {
      compare_bf16_pairs(*be, a, b, t, -1, bytes);
      compare_bf16_pairs(*be, a, b, t, -1, bytes, false);
      Mat s{std::vector<float>(b.v.begin() + 20 * 6, b.v.begin() + 45 * 6), 25, 6};
      compare_bf16_pairs(*be, s, b, t, 20, bytes);
    }
  }
  // Random rows at d = 64: the screen rescores a small share of the pairs.
  Mat q = make_mat(30, 64, 15), d = make_mat(2000, 64, 16);
  const int64_t rescored = compare_bf16_pairs(*be, q, d, 0.35, -1, 1 << 22);
  CHECK(rescored < 30 * 2000 / 10);
  // All rows equal: every pair ties with the threshold's neighbourhood, all rescored.
  Mat one = make_mat(1, 24, 9);
  Mat same{std::vector<float>(), 300, 24};
  for (int64_t r = 0; r < 300; ++r) same.v.insert(same.v.end(), one.v.begin(), one.v.end());
  Mat qs{std::vector<float>(one.v.begin(), one.v.end()), 1, 24};
  CHECK_EQ(compare_bf16_pairs(*be, qs, same, 0.999999, -1, 20000), 300);
  // A call with nothing to do (no query rows; a threshold above the float
  // range, which nothing passes) reports no screen and no rescoring, not the
  // previous call's.
  Mat none{std::vector<float>(), 0, 24};
  CHECK(device_pairs(*be, none.view(), same.view(), 0.5, -1, 1 << 24, bf16_opts(20000)).i.empty());
  CHECK(!last_device_plan().screened);
  CHECK_EQ(last_device_plan().rescored, 0);
  CHECK_EQ(compare_bf16_pairs(*be, qs, same, 0.999999, -1, 20000), 300);
  CHECK(device_pairs(*be, qs.view(), same.view(), 1e39, -1, 1 << 24, bf16_opts(20000)).i.empty());
  CHECK(!last_device_plan().screened);
  CHECK_EQ(last_device_plan().rescored, 0);
  CHECK_EQ(compare_bf16_pairs(*be, qs, same, 0.999999, -1, 20000), 300);
  CHECK(device_topk(*be, none.view(), same.view(), 3, bf16_opts(20000)).indices.empty());
  CHECK(!last_device_plan().screened);
  CHECK_EQ(last_device_plan().rescored, 0);
  // Adversarial rows: the threshold between the A rows (exact D (1 + 2^-8 - 2^-20))
  // and the B rows (D (1 + 2^-9), which bf16 puts above A): only the full
  // bound keeps the A pairs; a tenth of it loses them.
  Mat qa, da;
  adversarial(64, 30, qa, da);
  const double t = 64.0 * (1.0 + 0x1p-9) + 0.01;
  compare_bf16_pairs(*be, qa, da, t, -1, 1 << 20, false);
  PairsResult c = pairs(qa.view(), da.view(), t, -1, 1 << 20, cpu_opts(false));
  CHECK_EQ(c.i.size(), 30u);
  set_device_screen_slack(0.1);
  PairsResult cut = device_pairs(*be, qa.view(), da.view(), t, -1, 1 << 20, bf16_opts(1 << 20, false));
  set_device_screen_slack(tiling::kScreenSlack);
  CHECK(cut.j != c.j);
}

#include "cuda_api.h"

// Where a GPU exists (npm run test:gpu runs these tests there), the CUDA
// backend's results are the emulation's bytes: same sums in the same order,
// same index math; elsewhere it says why it cannot run.
TEST(cuda_backend_is_the_emulation_bytes_or_reports_unavailable) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    CHECK(!why.empty());
    CHECK_THROWS_CODE(cuda_similarity_backend(), "E_CUDA_UNAVAILABLE");
    CudaDeviceInfo info;
    CHECK(!cuda_device_info(info, &why));
    if (!cuda_built()) CHECK(cuda_kernels().empty());
    return;
  }
  auto cu = cuda_similarity_backend();
  auto em = emulated_backend(int64_t(1) << 30);
  Mat q = make_mat(70, 45, 31), d = make_mat(1030, 45, 32);
  std::vector<int32_t> labels(1030);
  for (int64_t r = 0; r < 1030; ++r) labels[r] = static_cast<int32_t>((r * 13) % 7 == 5 ? 0 : (r * 13) % 7);
  for (int64_t bytes : {int64_t(1) << 24, int64_t(60000)}) {
    for (int64_t k : {int64_t(1), int64_t(10), int64_t(40), int64_t(2000)}) {
      TopKResult a = device_topk(*cu, q.view(), d.view(), k, dev_opts(bytes));
      TopKResult b = device_topk(*em, q.view(), d.view(), k, dev_opts(bytes));
      CHECK(a.indices == b.indices);
      CHECK(a.scores.size() == b.scores.size() &&
            std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(float)) == 0);
    }
    ClassResult cm = device_class_max(*cu, q.view(), d.view(), labels.data(), 7, dev_opts(bytes));
    ClassResult em_cm = device_class_max(*em, q.view(), d.view(), labels.data(), 7, dev_opts(bytes));
    CHECK(std::memcmp(cm.values.data(), em_cm.values.data(), cm.values.size() * sizeof(float)) == 0);
    ClassResult mn = device_class_mean(*cu, q.view(), d.view(), labels.data(), 7, dev_opts(bytes));
    ClassResult em_mn = device_class_mean(*em, q.view(), d.view(), labels.data(), 7, dev_opts(bytes));
    CHECK(std::memcmp(mn.values.data(), em_mn.values.data(), mn.values.size() * sizeof(float)) == 0);
    PairsResult pa = device_pairs(*cu, q.view(), d.view(), 0.3, -1, 1 << 24, dev_opts(bytes));
    PairsResult pb = device_pairs(*em, q.view(), d.view(), 0.3, -1, 1 << 24, dev_opts(bytes));
    CHECK(pa.i == pb.i && pa.j == pb.j && pa.score == pb.score);
    Mat r = make_mat(1030, 45, 33);
    std::vector<float> ra = device_row_dot(*cu, r.view(), d.view(), dev_opts(bytes));
    CHECK(ra == row_dot(r.view(), d.view(), cpu_opts()));
  }
  // Sized from the device's free memory.
  device_topk(*cu, q.view(), d.view(), 5, dev_opts(0));
  CHECK(last_device_plan().budget > 0);
}

// Where a GPU exists: the tensor cores' screen scores stay within the bound
// of every pair (the derivation's accumulation term on the real hardware),
// and the CUDA bf16 top-k is the exact path's bytes on odd shapes, all-equal
// rows and the adversarial rows (where a tenth of the bound goes wrong there too).
TEST(cuda_bf16_screen_is_the_exact_answer_or_reports_unavailable) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    CHECK(!why.empty());
    CHECK_THROWS_CODE(cuda_similarity_backend(), "E_CUDA_UNAVAILABLE");
    return;
  }
  auto cu = cuda_similarity_backend();
  if (!cu->has_bf16_screen()) {
    // Before sm_80: precision 'bf16' runs the exact kernels.
    Mat q = make_mat(9, 20, 1), d = make_mat(300, 20, 2);
    TopKResult a = device_topk(*cu, q.view(), d.view(), 4, bf16_opts(1 << 24));
    CHECK(!last_device_plan().screened);
    CHECK(same_bytes(a, device_topk(*cu, q.view(), d.view(), 4, dev_opts(1 << 24))));
    return;
  }
  auto em = emulated_backend(int64_t(1) << 30);
  // The bound against the hardware's screen scores, pair by pair.
  for (int64_t D : {1, 17, 64, 300, 512}) {
    Mat q = make_mat(70, D, 40 + static_cast<uint32_t>(D)), d = make_mat(130, D, 41 + static_cast<uint32_t>(D));
    for (int64_t x = 0; x < D; ++x) q.v[x] = 1.0f + 0x1p-8f - 0x1p-20f;  // one row at the bf16 midpoints
    std::vector<uint16_t> hq(70 * D), hd(130 * D);
    std::vector<double> tq(3 * 70), td(3 * 130);
    for (int64_t r = 0; r < 70; ++r) {
      double nv, nt, ne;
      tiling::bf16_row(q.v.data() + r * D, D, hq.data() + r * D, nv, nt, ne);
      tiling::screen_query_terms(nv, nt, ne, D, tq.data() + 3 * r);
    }
    for (int64_t r = 0; r < 130; ++r) {
      double nv, nt, ne;
      tiling::bf16_row(d.v.data() + r * D, D, hd.data() + r * D, nv, nt, ne);
      tiling::screen_db_terms(nv, nt, ne, td.data() + 3 * r);
    }
    cu->load_query(q.v.data(), 70, D);
    cu->load_db(d.v.data(), 130, D);
    cu->load_query_bf16(hq.data(), tq.data(), 70, D);
    cu->load_db_bf16(hd.data(), td.data(), 130, D);
    cu->screen_scores(70, 130, D);
    std::vector<float> P(70 * 130);
    cu->read_scores(P.data(), 70, 130);
    int64_t outside = 0;
    for (int64_t r = 0; r < 70; ++r)
      for (int64_t c = 0; c < 130; ++c) {
        const double s = tiling::tile_dot(q.v.data() + r * D, d.v.data() + c * D, D);
        const double E = tiling::screen_margin(tq.data() + 3 * r, td.data() + 3 * c, D, tiling::kScreenSlack);
        if (!(std::fabs(s - P[tiling::score_at(r, c, 70)]) <= E)) ++outside;
      }
    CHECK_EQ(outside, 0);
  }
  const struct {
    int64_t m, n, d, k, bytes;
  } cases[] = {{1, 1, 1, 1, 1 << 20},     {1, 5, 3, 9, 1 << 20},      {37, 101, 17, 5, 9000},
               {70, 1030, 45, 10, 1 << 24}, {70, 1030, 45, 40, 60000}, {130, 777, 64, 2000, 1 << 24}};
  uint32_t seed = 500;
  for (const auto& c : cases) {
    Mat q = make_mat(c.m, c.d, seed++), d = make_mat(c.n, c.d, seed++);
    for (bool normalize : {true, false}) {
      TopKResult g = device_topk(*cu, q.view(), d.view(), c.k, bf16_opts(c.bytes, normalize));
      CHECK(last_device_plan().screened);
      CHECK(same_bytes(g, device_topk(*em, q.view(), d.view(), c.k, dev_opts(c.bytes, normalize))));
      CHECK(same_bytes(g, device_topk(*cu, q.view(), d.view(), c.k, dev_opts(c.bytes, normalize))));
      CHECK(g.indices == topk(q.view(), d.view(), c.k, cpu_opts(normalize)).indices);
    }
  }
  // Pairs through the screen: the emulation's exact pairs, across and within one set.
  for (double t : {0.2, 0.6}) {
    Mat q = make_mat(70, 45, 31), d = make_mat(1030, 45, 32);
    for (int64_t bytes : {int64_t(1) << 24, int64_t(60000)}) {
      PairsResult g = device_pairs(*cu, q.view(), d.view(), t, -1, 1 << 24, bf16_opts(bytes));
      CHECK(last_device_plan().screened);
      CHECK(same_pairs(g, device_pairs(*em, q.view(), d.view(), t, -1, 1 << 24, dev_opts(bytes))));
      Mat w{std::vector<float>(d.v.begin() + 100 * 45, d.v.begin() + 170 * 45), 70, 45};
      CHECK(same_pairs(device_pairs(*cu, w.view(), d.view(), t, 100, 1 << 24, bf16_opts(bytes)),
                       device_pairs(*em, w.view(), d.view(), t, 100, 1 << 24, dev_opts(bytes))));
    }
  }
  Mat one = make_mat(1, 24, 9), qs = make_mat(3, 24, 10);
  Mat same{std::vector<float>(), 700, 24};
  for (int64_t r = 0; r < 700; ++r) same.v.insert(same.v.end(), one.v.begin(), one.v.end());
  TopKResult g = device_topk(*cu, qs.view(), same.view(), 7, bf16_opts(20000));
  CHECK_EQ(last_device_plan().rescored, 3 * 700);
  CHECK(same_bytes(g, device_topk(*em, qs.view(), same.view(), 7, dev_opts(20000))));
  Mat q, d;
  adversarial(64, 30, q, d);
  TopKResult c = topk(q.view(), d.view(), 30, cpu_opts(false));
  CHECK(same_bytes(device_topk(*cu, q.view(), d.view(), 30, bf16_opts(1 << 20, false)),
                   device_topk(*em, q.view(), d.view(), 30, dev_opts(1 << 20, false))));
  CHECK(device_topk(*cu, q.view(), d.view(), 30, bf16_opts(1 << 20, false)).indices == c.indices);
  set_device_screen_slack(0.1);
  TopKResult cut = device_topk(*cu, q.view(), d.view(), 30, bf16_opts(1 << 20, false));
  set_device_screen_slack(tiling::kScreenSlack);
  CHECK(cut.indices != c.indices);
  const double t = 64.0 * (1.0 + 0x1p-9) + 0.01;
  PairsResult cp = pairs(q.view(), d.view(), t, -1, 1 << 20, cpu_opts(false));
  CHECK(same_pairs(device_pairs(*cu, q.view(), d.view(), t, -1, 1 << 20, bf16_opts(1 << 20, false)),
                   device_pairs(*em, q.view(), d.view(), t, -1, 1 << 20, dev_opts(1 << 20, false))));
  set_device_screen_slack(0.1);
  PairsResult pcut = device_pairs(*cu, q.view(), d.view(), t, -1, 1 << 20, bf16_opts(1 << 20, false));
  set_device_screen_slack(tiling::kScreenSlack);
  CHECK(pcut.j != cp.j);
}
