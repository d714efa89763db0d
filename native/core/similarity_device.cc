#include "similarity_device.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>

#include "device_tiling.h"
#include "error.h"
#include "parallel.h"

namespace genaug {

namespace {

std::atomic<int64_t> g_plan_m{0}, g_plan_n{0}, g_plan_budget{0}, g_rescored{0};
std::atomic<bool> g_screened{false};
std::atomic<double> g_slack{tiling::kScreenSlack};

void check_cancel(const SimilarityOptions& opt) {
  if (opt.cancel != nullptr && __atomic_load_n(opt.cancel, __ATOMIC_RELAXED) != 0)
    fail("E_ABORTED", "the similarity call was aborted");
}

// Rows [r0, r0 + rows) of m as the CPU engine packs them: float(x * scale)
// when normalising, x otherwise.
void pack(const MatrixView& m, const RowScales& s, bool normalize, int64_t r0, int64_t rows, std::vector<float>& buf) {
  const int64_t D = m.dim;
  buf.resize(static_cast<size_t>(std::max<int64_t>(rows * D, 1)));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = m.data + (r0 + r) * D;
    float* dst = buf.data() + r * D;
    if (normalize) {
      const double sc = s.scale[r0 + r];
      for (int64_t k = 0; k < D; ++k) dst[k] = static_cast<float>(src[k] * sc);
    } else {
      std::copy(src, src + D, dst);
    }
  }
}

// A call's screen statistics start empty (also for a call that returns before planning).
void reset_screen_stats() {
  g_screened.store(false);
  g_rescored.store(0);
}

tiling::BlockPlan plan_for(SimilarityBackend& be, const SimilarityOptions& opt, int64_t m, int64_t n, int64_t d,
                           int64_t row_state, int64_t col_extra) {
  const int64_t budget = opt.device_bytes > 0 ? opt.device_bytes : tiling::budget_from_free(be.free_bytes());
  tiling::BlockPlan p;
  if (!tiling::plan_blocks(budget, m, n, d, row_state, col_extra, p))
    fail("E_NOMEM", be.name(), ": ", budget, " bytes of device memory are not enough for one query row and one database row of ",
         d, " columns (", tiling::plan_bytes(1, 1, d, row_state, col_extra), " bytes needed)");
  g_plan_m.store(p.mb);
  g_plan_n.store(p.nb);
  g_plan_budget.store(budget);
  reset_screen_stats();
  return p;
}


struct Prepared2 {
  RowScales q, d;
  int threads;
};

Prepared2 prepare_both(const MatrixView& query, const MatrixView& db, const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  Prepared2 p;
  p.threads = resolve_threads(opt.threads);
  p.q = row_scales(query, opt.normalize, opt.query_name, opt.query_row_offset, p.threads);
  p.d = row_scales(db, opt.normalize, opt.db_name, opt.db_row_offset, p.threads);
  check_dot_range(p.q, p.d, opt.normalize);
  return p;
}

// ----------------------------------------------------- the CPU emulation --
// Each method runs what one CUDA kernel's threads run (one call of the
// device_tiling.h function per thread), in the same blocks.

class EmulatedBackend final : public SimilarityBackend {
 public:
  explicit EmulatedBackend(int64_t free_bytes) : free_(free_bytes) {}
  std::string name() const override { return "cuda emulation"; }
  int64_t free_bytes() override { return free_; }

  void load_query(const float* rows, int64_t m, int64_t d) override { q_.assign(rows, rows + m * d); }
  void load_db(const float* rows, int64_t n, int64_t d) override { b_.assign(rows, rows + n * d); }

  void scores(int64_t m, int64_t n, int64_t d) override {
    s_.assign(static_cast<size_t>(m * n), 0.0f);
    // The score kernel's grid: one thread per (r, c), in kTile x kTile blocks.
    for (int64_t bc = 0; bc < n; bc += tiling::kTile)
      for (int64_t br = 0; br < m; br += tiling::kTile)
        for (int64_t c = bc; c < std::min(n, bc + tiling::kTile); ++c)
          for (int64_t r = br; r < std::min(m, br + tiling::kTile); ++r)
            s_[tiling::score_at(r, c, m)] = tiling::tile_dot(q_.data() + r * d, b_.data() + c * d, d);
  }
  void read_scores(float* s, int64_t m, int64_t n) override { std::copy(s_.begin(), s_.begin() + m * n, s); }

  void topk_reset(int64_t m, int64_t k) override {
    ts_.assign(static_cast<size_t>(m * k), 0.0f);
    tj_.assign(static_cast<size_t>(m * k), -1);
    tf_.assign(static_cast<size_t>(m), 0);
    rc_.assign(static_cast<size_t>(m), 0);
  }
  void topk_block(int64_t m, int64_t n, int64_t j0, int64_t k) override {
    const int64_t parts = tiling::topk_parts(n, k);
    std::vector<float> ps(static_cast<size_t>(m * parts * k));
    std::vector<int64_t> pj(static_cast<size_t>(m * parts * k));
    std::vector<int64_t> pf(static_cast<size_t>(m * parts));
    // Scan kernel: one thread per (row, part).
    for (int64_t r = 0; r < m; ++r)
      for (int64_t p = 0; p < parts; ++p) {
        int64_t c0, c1;
        tiling::part_range(n, parts, p, c0, c1);
        const int64_t o = (r * parts + p) * k;
        pf[r * parts + p] = tiling::topk_scan(s_.data(), m, r, c0, c1, j0, k, ps.data() + o, pj.data() + o);
      }
    // Merge kernel: one thread per row.
    for (int64_t r = 0; r < m; ++r)
      for (int64_t p = 0; p < parts; ++p) {
        const int64_t o = (r * parts + p) * k;
        tiling::topk_merge(ts_.data() + r * k, tj_.data() + r * k, k, tf_[r], ps.data() + o, pj.data() + o,
                           pf[r * parts + p]);
      }
  }
  void topk_read(int64_t m, int64_t k, float* s, int64_t* j) override {
    std::copy(ts_.begin(), ts_.begin() + m * k, s);
    std::copy(tj_.begin(), tj_.begin() + m * k, j);
  }

  void classmax_reset(int64_t m, int64_t classes) override {
    cm_.assign(static_cast<size_t>(m * classes), -std::numeric_limits<float>::infinity());
  }
  void classmax_block(int64_t m, int64_t n, const int32_t* labels, int64_t classes) override {
    for (int64_t r = 0; r < m; ++r) tiling::classmax_scan(s_.data(), m, r, n, labels, cm_.data() + r * classes);
  }
  void classmax_read(int64_t m, int64_t classes, float* out) override {
    std::copy(cm_.begin(), cm_.begin() + m * classes, out);
  }

  void pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t* counts) override {
    for (int64_t r = 0; r < m; ++r)
      counts[r] = tiling::pairs_scan(s_.data(), m, r, n, i0, j0, self, below, nullptr, nullptr, nullptr);
  }
  void pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, const int64_t* offsets,
                   int64_t /*total*/, int64_t* oi, int64_t* oj, float* os) override {
    for (int64_t r = 0; r < m; ++r)
      tiling::pairs_scan(s_.data(), m, r, n, i0, j0, self, below, oi + offsets[r], oj + offsets[r], os + offsets[r]);
  }

  void row_dot(const float* a, const float* b, const double* sa, const double* sb, int64_t m, int64_t d,
               float* out) override {
    for (int64_t i = 0; i < m; ++i) out[i] = tiling::row_dot_one(a + i * d, b + i * d, d, sa, sb, i);
  }

  bool has_bf16_screen() override { return true; }
  void load_query_bf16(const uint16_t* rows, const double* terms, int64_t m, int64_t d) override {
    qh_.assign(rows, rows + m * d);
    qt_.assign(terms, terms + 3 * m);
  }
  void load_db_bf16(const uint16_t* rows, const double* terms, int64_t n, int64_t d) override {
    bh_.assign(rows, rows + n * d);
    bt_.assign(terms, terms + 3 * n);
  }
  void screen_scores(int64_t m, int64_t n, int64_t d) override {
    s_.assign(static_cast<size_t>(m * n), 0.0f);
    // screen_mma_kernel's grid: kScreenM x kScreenN output tiles; the tensor
    // cores' dot product is modelled by mma_model_dot.
    for (int64_t bc = 0; bc < n; bc += tiling::kScreenN)
      for (int64_t br = 0; br < m; br += tiling::kScreenM)
        for (int64_t c = bc; c < std::min(n, bc + tiling::kScreenN); ++c)
          for (int64_t r = br; r < std::min(m, br + tiling::kScreenM); ++r)
            s_[tiling::score_at(r, c, m)] = tiling::mma_model_dot(qh_.data() + r * d, bh_.data() + c * d, d);
  }
  void screen_topk_block(int64_t m, int64_t n, int64_t j0, int64_t k, int64_t d, double slack) override {
    const int64_t parts = tiling::topk_parts(n, k);
    std::vector<float> ps(static_cast<size_t>(m * parts * k)), ls(static_cast<size_t>(m * k)), th(static_cast<size_t>(m));
    std::vector<int64_t> pj(static_cast<size_t>(m * parts * k)), lj(static_cast<size_t>(m * k));
    std::vector<int64_t> pf(static_cast<size_t>(m * parts)), pc(static_cast<size_t>(m * parts));
    // Lower-bound kernel: one thread per (row, part).
    for (int64_t r = 0; r < m; ++r)
      for (int64_t p = 0; p < parts; ++p) {
        int64_t c0, c1;
        tiling::part_range(n, parts, p, c0, c1);
        const int64_t o = (r * parts + p) * k;
        pf[r * parts + p] = tiling::screen_lower_scan(s_.data(), m, r, c0, c1, j0, k, qt_.data() + 3 * r, bt_.data(), d,
                                                      slack, ps.data() + o, pj.data() + o);
      }
    // Threshold kernel: one thread per row.
    for (int64_t r = 0; r < m; ++r)
      th[r] = tiling::screen_threshold(ts_.data() + r * k, tf_[r], k, ps.data() + r * parts * k, pj.data() + r * parts * k,
                                       pf.data() + r * parts, parts, ls.data() + r * k, lj.data() + r * k);
    // Rescoring kernel: one thread per (row, part).
    for (int64_t r = 0; r < m; ++r)
      for (int64_t p = 0; p < parts; ++p) {
        int64_t c0, c1;
        tiling::part_range(n, parts, p, c0, c1);
        const int64_t o = (r * parts + p) * k;
        pf[r * parts + p] = tiling::screen_rescore_scan(s_.data(), m, r, c0, c1, j0, k, qt_.data() + 3 * r, bt_.data(), d,
                                                        slack, th[r], q_.data() + r * d, b_.data(), ps.data() + o,
                                                        pj.data() + o, &pc[r * parts + p]);
      }
    // Merge kernel: one thread per row.
    for (int64_t r = 0; r < m; ++r)
      for (int64_t p = 0; p < parts; ++p) {
        const int64_t o = (r * parts + p) * k;
        tiling::topk_merge(ts_.data() + r * k, tj_.data() + r * k, k, tf_[r], ps.data() + o, pj.data() + o,
                           pf[r * parts + p]);
        rc_[r] += pc[r * parts + p];
      }
  }
  void screen_rescored_read(int64_t m, int64_t* counts) override { std::copy(rc_.begin(), rc_.begin() + m, counts); }
  int64_t screen_pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                             double slack, int64_t* counts) override {
    // One thread per query row, as pairs_count.
    int64_t total = 0;
    for (int64_t r = 0; r < m; ++r) {
      int64_t rescored = 0;
      counts[r] = tiling::screen_pairs_scan(s_.data(), m, r, n, i0, j0, self, below, qt_.data() + 3 * r, bt_.data(), d,
                                            slack, q_.data() + r * d, b_.data(), nullptr, nullptr, nullptr, &rescored);
      total += rescored;
    }
    return total;
  }
  void screen_pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                          double slack, const int64_t* offsets, int64_t /*total*/, int64_t* oi, int64_t* oj,
                          float* os) override {
    for (int64_t r = 0; r < m; ++r)
      tiling::screen_pairs_scan(s_.data(), m, r, n, i0, j0, self, below, qt_.data() + 3 * r, bt_.data(), d, slack,
                                q_.data() + r * d, b_.data(), oi + offsets[r], oj + offsets[r], os + offsets[r], nullptr);
  }

 private:
  int64_t free_;
  std::vector<float> q_, b_, s_, ts_, cm_;
  std::vector<int64_t> tj_, tf_, rc_;
  std::vector<uint16_t> qh_, bh_;
  std::vector<double> qt_, bt_;
};

// The device paths' one streaming loop: each block of p.mb query rows packed and loaded once, then every block of
// p.nb database rows packed, loaded and scored. `before(i0, mi)` and `after(i0, mi)` bracket a query block;
// `skip(i0, j0, nj)` leaves a database block out before it is packed; `block(i0, mi, j0, nj)` is the op's part.
// The packed float32 rows of a block in bf16 and their terms of the screen's
// bound, loaded as the query side (query) or the database side.
void load_bf16(SimilarityBackend& be, const std::vector<float>& rows, int64_t n, int64_t d, bool query,
               std::vector<uint16_t>& bits, std::vector<double>& terms) {
  bits.resize(static_cast<size_t>(std::max<int64_t>(n * d, 1)));
  terms.resize(static_cast<size_t>(std::max<int64_t>(3 * n, 1)));
  for (int64_t r = 0; r < n; ++r) {
    double nv, nt, ne;
    tiling::bf16_row(rows.data() + r * d, d, bits.data() + r * d, nv, nt, ne);
    if (query)
      tiling::screen_query_terms(nv, nt, ne, d, terms.data() + 3 * r);
    else
      tiling::screen_db_terms(nv, nt, ne, terms.data() + 3 * r);
  }
  if (query)
    be.load_query_bf16(bits.data(), terms.data(), n, d);
  else
    be.load_db_bf16(bits.data(), terms.data(), n, d);
}

// `screen`: each block is also loaded in bf16 and screen_scores replaces scores.
template <typename Before, typename Skip, typename Block, typename After>
void stream_blocks(SimilarityBackend& be, const MatrixView& query, const MatrixView& db, const Prepared2& pr,
                   const SimilarityOptions& opt, const tiling::BlockPlan& p, Before before, Skip skip, Block block,
                   After after, bool screen = false) {
  const int64_t M = query.rows, N = db.rows, D = query.dim;
  std::vector<float> qbuf, dbuf;
  std::vector<uint16_t> hbuf;
  std::vector<double> tbuf;
  for (int64_t i0 = 0; i0 < M; i0 += p.mb) {
    const int64_t mi = std::min(p.mb, M - i0);
    pack(query, pr.q, opt.normalize, i0, mi, qbuf);
    be.load_query(qbuf.data(), mi, D);
    if (screen) load_bf16(be, qbuf, mi, D, true, hbuf, tbuf);
    before(i0, mi);
    for (int64_t j0 = 0; j0 < N; j0 += p.nb) {
      check_cancel(opt);
      const int64_t nj = std::min(p.nb, N - j0);
      if (skip(i0, j0, nj)) continue;
      pack(db, pr.d, opt.normalize, j0, nj, dbuf);
      be.load_db(dbuf.data(), nj, D);
      if (screen) {
        load_bf16(be, dbuf, nj, D, false, hbuf, tbuf);
        be.screen_scores(mi, nj, D);
      } else {
        be.scores(mi, nj, D);
      }
      block(i0, mi, j0, nj);
    }
    after(i0, mi);
  }
}

}  // namespace

std::unique_ptr<SimilarityBackend> emulated_backend(int64_t free_bytes) {
  return std::make_unique<EmulatedBackend>(free_bytes);
}

DevicePlanInfo last_device_plan() {
  DevicePlanInfo p;
  p.query_rows = g_plan_m.load();
  p.db_rows = g_plan_n.load();
  p.budget = g_plan_budget.load();
  p.screened = g_screened.load();
  p.rescored = g_rescored.load();
  return p;
}

void set_device_screen_slack(double slack) { g_slack.store(slack); }

TopKResult device_topk(SimilarityBackend& be, const MatrixView& query, const MatrixView& db, int64_t k,
                       const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  reset_screen_stats();
  if (k < 1) fail("E_RANGE", "k must be >= 1, got ", k);
  Prepared2 pr = prepare_both(query, db, opt);
  const int64_t M = query.rows, N = db.rows, D = query.dim;
  const int64_t keff = std::min(k, N);
  TopKResult out;
  out.rows = M;
  if (keff == 0 || M == 0) {
    out.k = keff;
    return out;
  }
  out.k = keff;
  out.indices.assign(static_cast<size_t>(M * keff), 0);
  out.scores.assign(static_cast<size_t>(M * keff), 0.0f);
  const int64_t parts = keff <= tiling::kPartsMaxK ? tiling::kMaxParts : 1;
  if (opt.precision == SimilarityOptions::Precision::Bf16 && D <= tiling::kScreenMaxDepth && be.has_bf16_screen()) {
    // Per query row besides the exact path's: its bf16 row and terms, the
    // lower-bound scratch list, the threshold, rescoring counts; per database
    // row: its bf16 row and norms.
    const tiling::BlockPlan p =
        plan_for(be, opt, M, N, D, keff * 12 * (2 + parts) + 16 + 2 * D + 24 + 4 + 8 * (1 + parts), 2 * D + 24);
    const double slack = g_slack.load();
    std::vector<int64_t> counts;
    int64_t rescored = 0;
    stream_blocks(
        be, query, db, pr, opt, p, [&](int64_t, int64_t mi) { be.topk_reset(mi, keff); },
        [](int64_t, int64_t, int64_t) { return false; },
        [&](int64_t, int64_t mi, int64_t j0, int64_t nj) { be.screen_topk_block(mi, nj, j0, keff, D, slack); },
        [&](int64_t i0, int64_t mi) {
          be.topk_read(mi, keff, out.scores.data() + i0 * keff, out.indices.data() + i0 * keff);
          counts.assign(static_cast<size_t>(mi), 0);
          be.screen_rescored_read(mi, counts.data());
          for (int64_t c : counts) rescored += c;
        },
        true);
    g_screened.store(true);
    g_rescored.store(rescored);
    return out;
  }
  const tiling::BlockPlan p = plan_for(be, opt, M, N, D, keff * 12 * (1 + parts) + 16, 0);
  stream_blocks(
      be, query, db, pr, opt, p, [&](int64_t, int64_t mi) { be.topk_reset(mi, keff); }, [](int64_t, int64_t, int64_t) { return false; },
      [&](int64_t, int64_t mi, int64_t j0, int64_t nj) { be.topk_block(mi, nj, j0, keff); },
      [&](int64_t i0, int64_t mi) { be.topk_read(mi, keff, out.scores.data() + i0 * keff, out.indices.data() + i0 * keff); });
  return out;
}

ClassResult device_class_max(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                             const int32_t* labels, int64_t num_classes, const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  reset_screen_stats();
  std::vector<int64_t> counts = label_counts(labels, db.rows, num_classes);
  Prepared2 pr = prepare_both(query, db, opt);
  const int64_t M = query.rows, N = db.rows, D = query.dim, C = num_classes;
  ClassResult out;
  out.rows = M;
  out.classes = C;
  out.counts = counts;
  out.values.assign(static_cast<size_t>(M * C), -std::numeric_limits<float>::infinity());
  if (M > 0 && N > 0) {
    const tiling::BlockPlan p = plan_for(be, opt, M, N, D, 4 * C, 4);
    stream_blocks(
        be, query, db, pr, opt, p, [&](int64_t, int64_t mi) { be.classmax_reset(mi, C); }, [](int64_t, int64_t, int64_t) { return false; },
        [&](int64_t, int64_t mi, int64_t j0, int64_t nj) { be.classmax_block(mi, nj, labels + j0, C); },
        [&](int64_t i0, int64_t mi) { be.classmax_read(mi, C, out.values.data() + i0 * C); });
  }
  for (int64_t c = 0; c < C; ++c)
    if (counts[c] == 0)
      for (int64_t i = 0; i < M; ++i) out.values[i * C + c] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

ClassResult device_class_mean(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                              const int32_t* labels, int64_t num_classes, const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  reset_screen_stats();
  std::vector<int64_t> counts = label_counts(labels, db.rows, num_classes);
  Prepared2 pr = prepare_both(query, db, opt);
  const int64_t M = query.rows, D = query.dim, C = num_classes;
  // Mean of the cosines = dot with the mean of the unit database vectors (the CPU path's operand).
  std::vector<float> means = class_mean_vectors(db, labels, C, opt.normalize ? pr.d.scale.data() : nullptr, pr.threads);
  ClassResult out;
  out.rows = M;
  out.classes = C;
  out.counts = counts;
  out.values.assign(static_cast<size_t>(M * C), 0.0f);
  if (M > 0) {
    const tiling::BlockPlan p = plan_for(be, opt, M, C, D, 0, 0);
    std::vector<float> qbuf, sbuf;
    for (int64_t i0 = 0; i0 < M; i0 += p.mb) {
      const int64_t mi = std::min(p.mb, M - i0);
      pack(query, pr.q, opt.normalize, i0, mi, qbuf);
      be.load_query(qbuf.data(), mi, D);
      for (int64_t j0 = 0; j0 < C; j0 += p.nb) {
        check_cancel(opt);
        const int64_t nj = std::min(p.nb, C - j0);
        be.load_db(means.data() + j0 * D, nj, D);
        be.scores(mi, nj, D);
        sbuf.resize(static_cast<size_t>(mi * nj));
        be.read_scores(sbuf.data(), mi, nj);
        for (int64_t r = 0; r < mi; ++r)
          for (int64_t c = 0; c < nj; ++c) out.values[(i0 + r) * C + j0 + c] = sbuf[tiling::score_at(r, c, mi)];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c)
    if (counts[c] == 0)
      for (int64_t i = 0; i < M; ++i) out.values[i * C + c] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

PairsResult device_pairs(SimilarityBackend& be, const MatrixView& query, const MatrixView& db, double threshold,
                         int64_t self_offset, int64_t max_pairs, const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  reset_screen_stats();
  if (!std::isfinite(threshold)) fail("E_RANGE", "threshold must be a finite number");
  if (max_pairs < 0) fail("E_RANGE", "maxPairs must be >= 0, got ", max_pairs);
  if (self_offset >= 0 && self_offset + query.rows > db.rows)
    fail("E_RANGE", "selfOffset ", self_offset, " + ", query.rows, " query rows runs past the ", db.rows, " database rows");
  Prepared2 pr = prepare_both(query, db, opt);
  const int64_t M = query.rows, N = db.rows, D = query.dim;
  const float below = pairs_threshold_below(threshold);
  PairsResult out;
  if (M == 0 || N == 0 || below == std::numeric_limits<float>::infinity()) return out;
  // precision 'bf16': the screen (its bf16 rows and terms besides the float32 ones), exact rescoring.
  const bool screen = opt.precision == SimilarityOptions::Precision::Bf16 && D <= tiling::kScreenMaxDepth && be.has_bf16_screen();
  const double slack = g_slack.load();
  const tiling::BlockPlan p = screen ? plan_for(be, opt, M, N, D, 24 + 2 * D + 24, 2 * D + 24) : plan_for(be, opt, M, N, D, 16, 0);
  std::vector<int64_t> counts, offsets;
  int64_t total = 0, rescored = 0;
  stream_blocks(
      be, query, db, pr, opt, p, [](int64_t, int64_t) {},
      // Within one set only j > self + i matters: nothing in a block ending at or before the first row's own position.
      [&](int64_t i0, int64_t j0, int64_t nj) { return self_offset >= 0 && j0 + nj - 1 <= self_offset + i0; },
      [&](int64_t i0, int64_t mi, int64_t j0, int64_t nj) {
      counts.assign(static_cast<size_t>(mi), 0);
      if (screen)
        rescored += be.screen_pairs_count(mi, nj, i0, j0, self_offset, below, D, slack, counts.data());
      else
        be.pairs_count(mi, nj, i0, j0, self_offset, below, counts.data());
      offsets.assign(static_cast<size_t>(mi), 0);
      int64_t block = 0;
      for (int64_t r = 0; r < mi; ++r) {
        offsets[r] = block;
        block += counts[r];
      }
      if (total + block > max_pairs)
        fail("E_LIMIT", "more than ", max_pairs, " pairs pass the threshold; raise the threshold or maxPairs");
      if (block == 0) return;
      out.i.resize(static_cast<size_t>(total + block));
      out.j.resize(static_cast<size_t>(total + block));
      out.score.resize(static_cast<size_t>(total + block));
      if (screen)
        be.screen_pairs_write(mi, nj, i0, j0, self_offset, below, D, slack, offsets.data(), block, out.i.data() + total,
                              out.j.data() + total, out.score.data() + total);
      else
        be.pairs_write(mi, nj, i0, j0, self_offset, below, offsets.data(), block, out.i.data() + total,
                       out.j.data() + total, out.score.data() + total);
      total += block;
      },
      [](int64_t, int64_t) {}, screen);
  g_screened.store(screen);
  g_rescored.store(rescored);
  // Blocks come query block by query block, database block by database block:
  // sort into (i, j) order (every pair is unique, so the order is total).
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return out.i[a] < out.i[b] || (out.i[a] == out.i[b] && out.j[a] < out.j[b]);
  });
  PairsResult sorted;
  sorted.i.resize(static_cast<size_t>(total));
  sorted.j.resize(static_cast<size_t>(total));
  sorted.score.resize(static_cast<size_t>(total));
  for (int64_t x = 0; x < total; ++x) {
    sorted.i[x] = out.i[order[x]];
    sorted.j[x] = out.j[order[x]];
    sorted.score[x] = out.score[order[x]];
  }
  return sorted;
}

std::vector<float> device_row_dot(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                                  const SimilarityOptions& opt) {
  check_similarity_inputs(query, db, opt);
  reset_screen_stats();
  if (query.rows != db.rows)
    fail("E_SHAPE", "rowDot needs the same number of rows on both sides, got ", query.rows, " and ", db.rows);
  Prepared2 pr = prepare_both(query, db, opt);
  const int64_t M = query.rows, D = query.dim;
  std::vector<float> out(static_cast<size_t>(M));
  if (M == 0) return out;
  // Rows of both sides, their scales and the score: 8 D + 20 bytes a row.
  const int64_t budget = opt.device_bytes > 0 ? opt.device_bytes : tiling::budget_from_free(be.free_bytes());
  const int64_t per_row = 8 * D + 20;
  if (budget < per_row) fail("E_NOMEM", be.name(), ": ", budget, " bytes of device memory are not enough for one row of ", D, " columns");
  const int64_t rows = std::min<int64_t>(M, std::max<int64_t>(1, budget / per_row));
  g_plan_m.store(rows);
  g_plan_n.store(rows);
  g_plan_budget.store(budget);
  for (int64_t i0 = 0; i0 < M; i0 += rows) {
    check_cancel(opt);
    const int64_t mi = std::min(rows, M - i0);
    be.row_dot(query.data + i0 * D, db.data + i0 * D, opt.normalize ? pr.q.scale.data() + i0 : nullptr,
               opt.normalize ? pr.d.scale.data() + i0 : nullptr, mi, D, out.data() + i0);
  }
  return out;
}

}  // namespace genaug
