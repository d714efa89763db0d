// CLIS-L (spec ALGORITHMS.md §1.3). See layout.h for the data layout.
#include "layout.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>

#include "error.h"
#include "layout_tiling.h"
#include "parallel.h"

namespace genaug {

double layout_ratio_sim(double a, double b) { return clis::ratio_sim(a, b); }
double layout_penalty(double s, double t) { return clis::penalty(s, t); }
double layout_warp(double x) { return clis::warp(x); }
double layout_iou(const float* a, const float* b) { return clis::iou(a, b); }

namespace {

bool box_ok(const float* b) {
  return std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]) && b[2] > 0 && b[3] > 0;
}

using clis::PairGeom;
using clis::geom;

}  // namespace

bool layout_box_ok(const float* b) { return box_ok(b); }

void layout_check_inputs(const LayoutBatch& b, const LayoutPool& p, const float* sim, const LayoutOptions& o) {
  if (!(o.tau >= -1 && o.tau <= 1)) fail("E_RANGE", "tau must be in [-1, 1], got ", o.tau);
  if (!(o.penalty_t > 0 && o.penalty_t < 1)) fail("E_RANGE", "penalty threshold t must be in (0, 1), got ", o.penalty_t);
  if (!(o.high_sim >= -1 && o.high_sim <= 1)) fail("E_RANGE", "highSim must be in [-1, 1], got ", o.high_sim);
  if (o.rank_divisor < 1) fail("E_RANGE", "rankDivisor must be >= 1, got ", o.rank_divisor);
  if (!(o.low_weight >= 0 && std::isfinite(o.low_weight))) fail("E_RANGE", "lowWeight must be finite and >= 0, got ", o.low_weight);
  if (p.predicates < 0 || p.names < 0 || b.layouts < 0 || b.names < 0) fail("E_RANGE", "negative count");
  // Pool.
  if (p.start[0] != 0) fail("E_RANGE", "pool start[0] must be 0, got ", p.start[0]);
  for (int64_t r = 0; r < p.predicates; ++r)
    if (p.start[r + 1] < p.start[r]) fail("E_RANGE", "pool start[", r + 1, "] = ", p.start[r + 1], " is below start[", r, "] = ", p.start[r]);
  if (p.start[p.predicates] != p.examples)
    fail("E_SHAPE", "pool start[", p.predicates, "] = ", p.start[p.predicates], " but the pool has ", p.examples, " examples");
  for (int64_t e = 0; e < p.examples; ++e) {
    if (p.subject[e] < 0 || p.subject[e] >= p.names) fail("E_RANGE", "pool example ", e, ": subject name id ", p.subject[e], " is outside [0, ", p.names, ")");
    if (p.object[e] < 0 || p.object[e] >= p.names) fail("E_RANGE", "pool example ", e, ": object name id ", p.object[e], " is outside [0, ", p.names, ")");
    if (!box_ok(p.subject_box + 4 * e)) fail("E_RANGE", "pool example ", e, ": the subject box must be finite with w > 0 and h > 0");
    if (!box_ok(p.object_box + 4 * e)) fail("E_RANGE", "pool example ", e, ": the object box must be finite with w > 0 and h > 0");
  }
  // Similarity table.
  const int64_t cells = b.names * p.names;
  for (int64_t i = 0; i < cells; ++i)
    if (!std::isfinite(sim[i])) fail("E_NONFINITE", "name similarity [", i / p.names, ", ", i % p.names, "] is not finite");
  // Batch.
  if (b.object_start[0] != 0 || b.relation_start[0] != 0) fail("E_RANGE", "layout offsets must start at 0");
  for (int64_t l = 0; l < b.layouts; ++l) {
    if (b.object_start[l + 1] < b.object_start[l]) fail("E_RANGE", "object offsets decrease at layout ", l);
    if (b.relation_start[l + 1] < b.relation_start[l]) fail("E_RANGE", "relation offsets decrease at layout ", l);
  }
  if (b.object_start[b.layouts] != b.objects) fail("E_SHAPE", "object offsets end at ", b.object_start[b.layouts], " but there are ", b.objects, " objects");
  if (b.relation_start[b.layouts] != b.relations)
    fail("E_SHAPE", "relation offsets end at ", b.relation_start[b.layouts], " but there are ", b.relations, " relation pairs");
  for (int64_t i = 0; i < b.objects; ++i)
    if (b.object_name[i] < 0 || b.object_name[i] >= b.names) fail("E_RANGE", "object ", i, ": name id ", b.object_name[i], " is outside [0, ", b.names, ")");
  for (int64_t l = 0; l < b.layouts; ++l) {
    const int64_t n = b.object_start[l + 1] - b.object_start[l];
    for (int64_t k = b.relation_start[l]; k < b.relation_start[l + 1]; ++k) {
      if (b.relation_predicate[k] < -1 || b.relation_predicate[k] >= p.predicates)
        fail("E_RANGE", "layout ", l, " relation ", k - b.relation_start[l], ": predicate id ", b.relation_predicate[k], " is outside [-1, ", p.predicates, ")");
      if (b.relation_subject[k] < -1 || b.relation_subject[k] >= n)
        fail("E_RANGE", "layout ", l, " relation ", k - b.relation_start[l], ": subject ", b.relation_subject[k], " is outside [-1, ", n, ")");
      if (b.relation_object[k] < -1 || b.relation_object[k] >= n)
        fail("E_RANGE", "layout ", l, " relation ", k - b.relation_start[l], ": object ", b.relation_object[k], " is outside [-1, ", n, ")");
    }
  }
}

void layout_views(const LayoutArrays& a, LayoutBatch& batch, LayoutPool& pool) {
  constexpr int64_t kMaxNames = int64_t(1) << 31;
  if (a.pool_names < 0 || a.pool_names > kMaxNames) fail("E_RANGE", "pool name count must be in [0, 2^31], got ", a.pool_names);
  if (a.layout_names < 0 || a.layout_names > kMaxNames) fail("E_RANGE", "layout name count must be in [0, 2^31], got ", a.layout_names);
  // Offsets are int32: more entries than that cannot be addressed.
  constexpr size_t kMaxEntries = size_t(1) << 31;
  for (size_t n : {a.pool_start.size, a.pool_subject.size, a.object_start.size, a.object_name.size, a.relation_start.size,
                   a.relation_predicate.size})
    if (n >= kMaxEntries) fail("E_LIMIT", "layout arrays are limited to 2^31 - 1 entries, got ", n);
  pool = LayoutPool{};
  if (a.pool_start.size < 1) fail("E_SHAPE", "pool start needs at least one entry (0)");
  pool.predicates = static_cast<int64_t>(a.pool_start.size) - 1;
  pool.examples = static_cast<int64_t>(a.pool_subject.size);
  pool.names = a.pool_names;
  if (static_cast<int64_t>(a.pool_object.size) != pool.examples || static_cast<int64_t>(a.pool_subject_box.size) != 4 * pool.examples ||
      static_cast<int64_t>(a.pool_object_box.size) != 4 * pool.examples)
    fail("E_SHAPE", "pool arrays disagree: ", pool.examples, " subjects, ", a.pool_object.size, " objects, ", a.pool_subject_box.size,
         " and ", a.pool_object_box.size, " box values (4 per example)");
  if (static_cast<int64_t>(a.pool_symmetric.size) != pool.predicates)
    fail("E_SHAPE", "pool symmetric flags have ", a.pool_symmetric.size, " entries for ", pool.predicates, " predicates");
  batch = LayoutBatch{};
  if (a.object_start.size < 1 || a.relation_start.size != a.object_start.size)
    fail("E_SHAPE", "object and relation offsets need L + 1 entries each, got ", a.object_start.size, " and ", a.relation_start.size);
  batch.layouts = static_cast<int64_t>(a.object_start.size) - 1;
  batch.names = a.layout_names;
  batch.objects = static_cast<int64_t>(a.object_name.size);
  batch.relations = static_cast<int64_t>(a.relation_predicate.size);
  if (static_cast<int64_t>(a.object_box.size) != 4 * batch.objects)
    fail("E_SHAPE", "object boxes have ", a.object_box.size, " values for ", batch.objects, " objects (4 each)");
  if (static_cast<int64_t>(a.relation_subject.size) != batch.relations || static_cast<int64_t>(a.relation_object.size) != batch.relations)
    fail("E_SHAPE", "relation arrays disagree: ", batch.relations, " predicates, ", a.relation_subject.size, " subjects, ",
         a.relation_object.size, " objects");
  if (a.pool_names > 0 && a.layout_names > (int64_t(1) << 40) / a.pool_names) fail("E_LIMIT", "name similarity table too large");
  if (static_cast<int64_t>(a.sim.size) != a.layout_names * a.pool_names)
    fail("E_SHAPE", "name similarity has ", a.sim.size, " values; expected ", a.layout_names, " x ", a.pool_names);
  pool.start = a.pool_start.data;
  pool.subject = a.pool_subject.data;
  pool.object = a.pool_object.data;
  pool.subject_box = a.pool_subject_box.data;
  pool.object_box = a.pool_object_box.data;
  pool.symmetric = a.pool_symmetric.data;
  batch.object_start = a.object_start.data;
  batch.object_name = a.object_name.data;
  batch.object_box = a.object_box.data;
  batch.relation_start = a.relation_start.data;
  batch.relation_predicate = a.relation_predicate.data;
  batch.relation_subject = a.relation_subject.data;
  batch.relation_object = a.relation_object.data;
}

LayoutScores clis_layout(const LayoutBatch& b, const LayoutPool& p, const float* sim, const LayoutOptions& o, const int32_t* cancel) {
  layout_check_inputs(b, p, sim, o);
  LayoutScores out;
  const size_t L = static_cast<size_t>(b.layouts);
  out.score.assign(L, 0.0);
  out.confidence.assign(L, 0.0);
  out.status.assign(L, kLayoutOk);
  out.failed_pair.assign(L, -1);
  out.pair_score.assign(static_cast<size_t>(b.relations), std::numeric_limits<double>::quiet_NaN());
  out.pair_confidence.assign(static_cast<size_t>(b.relations), std::numeric_limits<double>::quiet_NaN());
  const int threads = static_cast<int>(std::min<int64_t>(resolve_threads(o.threads), std::max<int64_t>(1, b.layouts / 16)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> aborted{false};
  const double t = o.penalty_t;
  const int64_t P = p.names;

  run_threads(threads, [&](int) {
    std::vector<double> scores;
    for (;;) {
      const int64_t l0 = next.fetch_add(8);
      if (l0 >= b.layouts) break;
      if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
        aborted = true;
        break;
      }
      const int64_t l1 = std::min<int64_t>(b.layouts, l0 + 8);
      for (int64_t l = l0; l < l1; ++l) {
        const int64_t ob = b.object_start[l];
        const int64_t r0 = b.relation_start[l], r1 = b.relation_start[l + 1];
        if (r0 == r1) {
          out.status[l] = kLayoutNoRelations;
          continue;
        }
        double sum_c = 0, sum_cs = 0, min_c = std::numeric_limits<double>::infinity();
        int32_t status = kLayoutOk;
        for (int64_t k = r0; k < r1 && status == kLayoutOk; ++k) {
          const int32_t r = b.relation_predicate[k];
          const int32_t si = b.relation_subject[k], oi = b.relation_object[k];
          if (r < 0) {
            status = kLayoutUnknownPredicate;
          } else if (si < 0 || oi < 0 || !box_ok(b.object_box + 4 * (ob + si)) || !box_ok(b.object_box + 4 * (ob + oi))) {
            status = kLayoutMissingBox;
          }
          if (status != kLayoutOk) {
            out.failed_pair[l] = static_cast<int32_t>(k - r0);
            break;
          }
          const float* ps = b.object_box + 4 * (ob + si);
          const float* po = b.object_box + 4 * (ob + oi);
          const PairGeom gp = geom(ps, po);
          const float* srow = sim + int64_t(b.object_name[ob + si]) * P;
          const float* orow = sim + int64_t(b.object_name[ob + oi]) * P;
          const bool sym = o.symmetry && p.symmetric[r];
          scores.clear();
          int64_t n_hi = 0;
          double conf = 0;
          const clis::Params cp{o.tau, t, o.high_sim, o.faithful, o.balance};
          for (int64_t e = p.start[r]; e < p.start[r + 1]; ++e) {
            double sc, w;
            bool hi;
            if (!clis::example(gp, p.subject_box + 4 * e, p.object_box + 4 * e, srow[p.subject[e]], orow[p.object[e]], sym, cp,
                               sc, w, hi))
              continue;
            if (hi) ++n_hi;
            conf += hi ? w : o.low_weight * w;
            scores.push_back(sc);
          }
          if (scores.empty()) {
            status = kLayoutNoCandidates;
            out.failed_pair[l] = static_cast<int32_t>(k - r0);
            break;
          }
          // n_hi <= scores.size(), so the rank is past the end only when
          // rank_divisor is 1 and every candidate is both-high: the lowest score.
          const size_t rank = std::min(static_cast<size_t>(n_hi / o.rank_divisor), scores.size() - 1);
          std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(rank), scores.end(), std::greater<double>());
          const double ps_score = scores[rank];
          out.pair_score[k] = ps_score;
          out.pair_confidence[k] = conf;
          sum_c += conf;
          sum_cs += conf * ps_score;
          min_c = std::min(min_c, conf);
        }
        out.status[l] = status;
        if (status != kLayoutOk) continue;
        out.score[l] = sum_c > 0 ? sum_cs / sum_c : 0.0;
        out.confidence[l] = min_c;
      }
    }
  });
  if (aborted) fail("E_ABORTED", "the CLIS-L run was aborted");
  return out;
}

}  // namespace genaug
