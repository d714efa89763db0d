#include "layout_device.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <limits>
#include <vector>

#include "device_tiling.h"
#include "error.h"

namespace genaug {

namespace {

std::atomic<int64_t> g_groups{0};

class EmulatedClis final : public ClisBackend {
 public:
  explicit EmulatedClis(int64_t free_bytes) : free_(free_bytes) {}
  std::string name() const override { return "cuda emulation"; }
  int64_t free_bytes() override { return free_; }
  void load_pool(const LayoutPool& p, const float* sim, int64_t /*Q*/) override {
    pv_ = clis::PoolView{p.start, p.subject, p.object, p.subject_box, p.object_box, sim, p.names};
  }
  void examples(const clis::Job* jobs, int64_t njobs, int64_t total, const clis::Params& o, double* score, double* w,
                uint8_t* flags) override {
    for (int64_t x = 0; x < total; ++x) clis::example_at(pv_, jobs, njobs, x, o, score, w, flags);
  }

 private:
  int64_t free_;
  clis::PoolView pv_{};
};

}  // namespace

std::unique_ptr<ClisBackend> emulated_clis_backend(int64_t free_bytes) { return std::make_unique<EmulatedClis>(free_bytes); }

int64_t last_clis_groups() { return g_groups.load(); }

LayoutScores device_clis_layout(ClisBackend& be, const LayoutBatch& b, const LayoutPool& p, const float* sim,
                                const LayoutOptions& o, const int32_t* cancel, int64_t device_bytes) {
  layout_check_inputs(b, p, sim, o);
  LayoutScores out;
  const size_t L = static_cast<size_t>(b.layouts);
  out.score.assign(L, 0.0);
  out.confidence.assign(L, 0.0);
  out.status.assign(L, kLayoutOk);
  out.failed_pair.assign(L, -1);
  out.pair_score.assign(static_cast<size_t>(b.relations), std::numeric_limits<double>::quiet_NaN());
  out.pair_confidence.assign(static_cast<size_t>(b.relations), std::numeric_limits<double>::quiet_NaN());
  if (b.layouts == 0) return out;
  const clis::Params cp{o.tau, o.penalty_t, o.high_sim, o.faithful, o.balance};
  // Per example: score, weight, flags; per job its record.
  constexpr int64_t kPerExample = 2 * 8 + 1;
  const int64_t budget = device_bytes > 0 ? device_bytes : tiling::budget_from_free(be.free_bytes());
  be.load_pool(p, sim, b.names);

  // The pairs a layout evaluates, up to its first unknown predicate or missing box (clis_layout stops there).
  auto layout_jobs = [&](int64_t l, std::vector<clis::Job>& jobs, int64_t& total) {
    const int64_t ob = b.object_start[l];
    for (int64_t k = b.relation_start[l]; k < b.relation_start[l + 1]; ++k) {
      const int32_t r = b.relation_predicate[k];
      const int32_t si = b.relation_subject[k], oi = b.relation_object[k];
      if (r < 0 || si < 0 || oi < 0 || !layout_box_ok(b.object_box + 4 * (ob + si)) || !layout_box_ok(b.object_box + 4 * (ob + oi)))
        return;
      clis::Job jb;
      jb.gp = clis::geom(b.object_box + 4 * (ob + si), b.object_box + 4 * (ob + oi));
      jb.out = total;
      jb.sname = b.object_name[ob + si];
      jb.oname = b.object_name[ob + oi];
      jb.r = r;
      jb.sym = o.symmetry && p.symmetric[r] ? 1 : 0;
      jobs.push_back(jb);
      total += p.start[r + 1] - p.start[r];
    }
  };

  std::vector<clis::Job> jobs;
  std::vector<size_t> first;  // per layout of the group: its first job
  std::vector<double> score, weight;
  std::vector<uint8_t> flags;
  std::vector<double> scores;
  int64_t groups = 0;
  for (int64_t l0 = 0; l0 < b.layouts;) {
    if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) fail("E_ABORTED", "the CLIS-L run was aborted");
    // A group of whole layouts whose example outputs fit the budget (at least one layout).
    jobs.clear();
    first.clear();
    int64_t total = 0, l1 = l0;
    while (l1 < b.layouts) {
      const size_t njobs = jobs.size();
      first.push_back(njobs);
      const int64_t before = total;
      layout_jobs(l1, jobs, total);
      const int64_t bytes = total * kPerExample + static_cast<int64_t>(jobs.size() * sizeof(clis::Job));
      if (l1 > l0 && bytes > budget) {
        jobs.resize(njobs);
        first.pop_back();
        total = before;
        break;
      }
      ++l1;
    }
    ++groups;
    score.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
    weight.resize(score.size());
    flags.resize(score.size());
    if (total > 0) be.examples(jobs.data(), static_cast<int64_t>(jobs.size()), total, cp, score.data(), weight.data(), flags.data());
    // clis_layout's reduction, on the example outputs in example order.
    for (int64_t l = l0; l < l1; ++l) {
      // This layout's jobs; those after a pair without candidates were computed but are not used.
      size_t j = first[static_cast<size_t>(l - l0)];
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
        } else if (si < 0 || oi < 0 || !layout_box_ok(b.object_box + 4 * (ob + si)) || !layout_box_ok(b.object_box + 4 * (ob + oi))) {
          status = kLayoutMissingBox;
        }
        if (status != kLayoutOk) {
          out.failed_pair[l] = static_cast<int32_t>(k - r0);
          break;
        }
        const clis::Job& jb = jobs[j++];
        const int64_t n = p.start[r + 1] - p.start[r];
        scores.clear();
        int64_t n_hi = 0;
        double conf = 0;
        for (int64_t x = jb.out; x < jb.out + n; ++x) {
          if (!(flags[x] & clis::kCandidate)) continue;
          const bool hi = (flags[x] & clis::kHigh) != 0;
          if (hi) ++n_hi;
          conf += hi ? weight[x] : o.low_weight * weight[x];
          scores.push_back(score[x]);
        }
        if (scores.empty()) {
          status = kLayoutNoCandidates;
          out.failed_pair[l] = static_cast<int32_t>(k - r0);
          break;
        }
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
    l0 = l1;
  }
  g_groups.store(groups);
  return out;
}

}  // namespace genaug
