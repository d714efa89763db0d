// Fuzz target for CLIS-L layout scoring: layout_views (the array lengths, as
// the binding hands its typed arrays over) then clis_layout (every index,
// offset, box and option), the path clisLayout takes with a caller's input.
// Built with clang it is a libFuzzer target; otherwise fuzz_driver_layout.cc
// supplies main().
//
// Input (fuzz_input.h): name counts, the similarity table, the pool
// (predicates, offsets, examples, boxes, symmetric flags), the layouts
// (objects, boxes, relations), options; each length is sometimes off by one
// and each index sometimes out of range.
// The call may reject any input, but only with genaug::Error E_RANGE,
// E_SHAPE, E_NONFINITE or E_LIMIT. Whatever it accepts must have one status
// per layout with the documented meaning, finite scores no higher than 1,
// each Ok layout's score the confidence-weighted mean of its pair scores and
// its confidence their minimum, and the same bytes with 3 threads as with 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "error.h"
#include "fuzz_require.h"
#include "fuzz_input.h"
#include "layout.h"

namespace {

// A length that is usually right and sometimes off by one.
size_t length(fuzz_input::Reader& in, size_t right) {
  switch (in.u8() % 32) {
    case 0: return right + 1;
    case 1: return right > 0 ? right - 1 : 0;
    default: return right;
  }
}

// An index that is usually in [lo, hi) and sometimes just outside or wild.
int32_t index(fuzz_input::Reader& in, int32_t lo, int32_t hi) {
  const uint8_t t = in.u8();
  if (t < 240) return hi > lo ? lo + static_cast<int32_t>(t % (hi - lo)) : lo;
  static const int32_t kWild[] = {-1, -2, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  if (t < 244) return kWild[t - 240];
  return t < 250 ? hi : lo - 1;
}

void box(fuzz_input::Reader& in, std::vector<float>& out) {
  const bool wild = in.u8() % 8 == 0;
  const float x = static_cast<float>(in.coord()), y = static_cast<float>(in.coord());
  float w = static_cast<float>(in.coord()), h = static_cast<float>(in.coord());
  if (!wild) {
    w = std::fabs(w) + 0.25f;
    h = std::fabs(h) + 0.25f;
  }
  out.insert(out.end(), {x, y, w, h});
}

bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_input::Reader in(data, size);
  const int64_t P = in.below(5), Q = in.below(5);
  static const float kSim[] = {1.f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f, 0.55f, 0.3f, 0.f, -0.5f, -1.f,
                               std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 0.61f, 1.5f};
  std::vector<float> sim(length(in, static_cast<size_t>(P * Q)));
  for (float& v : sim) v = kSim[in.below(sizeof kSim / sizeof kSim[0])];

  // The pool: R predicates with 0..4 examples each.
  const int32_t R = static_cast<int32_t>(in.below(5));
  std::vector<int32_t> pstart{0};
  for (int32_t r = 0; r < R; ++r) pstart.push_back(pstart.back() + static_cast<int32_t>(in.below(5)));
  const int32_t E = pstart.back();
  if (in.u8() % 16 == 0) pstart[in.below(pstart.size())] = index(in, -1, E + 2);
  pstart.resize(length(in, pstart.size()));
  std::vector<int32_t> psub, pobj;
  std::vector<float> psbox, pobox;
  for (int32_t e = 0; e < E; ++e) {
    psub.push_back(index(in, 0, static_cast<int32_t>(P)));
    pobj.push_back(index(in, 0, static_cast<int32_t>(P)));
    box(in, psbox);
    box(in, pobox);
  }
  psub.resize(length(in, psub.size()));
  psbox.resize(length(in, psbox.size()));
  std::vector<uint8_t> psym(length(in, static_cast<size_t>(R)));
  for (auto& s : psym) s = in.u8() & 1;

  // The layouts.
  const int32_t L = static_cast<int32_t>(in.below(5));
  std::vector<int32_t> ostart{0}, rstart{0}, oname, rpred, rsub, robj;
  std::vector<float> obox;
  for (int32_t l = 0; l < L; ++l) {
    const int32_t n = static_cast<int32_t>(in.below(5)), m = static_cast<int32_t>(in.below(5));
    for (int32_t k = 0; k < n; ++k) {
      oname.push_back(index(in, 0, static_cast<int32_t>(Q)));
      box(in, obox);
    }
    for (int32_t k = 0; k < m; ++k) {
      rpred.push_back(index(in, -1, R));
      rsub.push_back(index(in, -1, n));
      robj.push_back(index(in, -1, n));
    }
    ostart.push_back(ostart.back() + n);
    rstart.push_back(rstart.back() + m);
  }
  if (in.u8() % 16 == 0) ostart[in.below(ostart.size())] = index(in, -1, static_cast<int32_t>(oname.size()) + 2);
  if (in.u8() % 16 == 0) rstart[in.below(rstart.size())] = index(in, -1, static_cast<int32_t>(rpred.size()) + 2);
  rstart.resize(length(in, rstart.size()));
  obox.resize(length(in, obox.size()));
  robj.resize(length(in, robj.size()));

  genaug::LayoutOptions opt;
  static const double kUnit[] = {0.6, 0.8, 0.0, 1.0, -1.0, 0.5, 0.9, 1.5, -1.5, std::numeric_limits<double>::quiet_NaN()};
  static const double kT[] = {0.03, 0.5, 0.999, 1e-9, 0.0, 1.0, -0.1};
  static const int64_t kDiv[] = {50, 1, 2, 3, 7, 0, -1, int64_t(1) << 40};
  static const double kLow[] = {1e-4, 0.0, 1.0, 1e6, -1e-4, std::numeric_limits<double>::infinity()};
  opt.tau = kUnit[in.below(10)];
  opt.penalty_t = kT[in.below(7)];
  opt.high_sim = kUnit[in.below(10)];
  opt.rank_divisor = kDiv[in.below(8)];
  opt.low_weight = kLow[in.below(6)];
  const uint8_t bits = in.u8();
  opt.faithful = bits & 1;
  opt.balance = bits & 2;
  opt.symmetry = !(bits & 4);
  const bool threaded = (bits & 0x18) == 0x18;
  opt.threads = 1;

  genaug::LayoutArrays a;
  a.pool_start = {pstart.data(), pstart.size()};
  a.pool_subject = {psub.data(), psub.size()};
  a.pool_object = {pobj.data(), pobj.size()};
  a.pool_subject_box = {psbox.data(), psbox.size()};
  a.pool_object_box = {pobox.data(), pobox.size()};
  a.pool_symmetric = {psym.data(), psym.size()};
  a.pool_names = P;
  a.object_start = {ostart.data(), ostart.size()};
  a.object_name = {oname.data(), oname.size()};
  a.object_box = {obox.data(), obox.size()};
  a.relation_start = {rstart.data(), rstart.size()};
  a.relation_predicate = {rpred.data(), rpred.size()};
  a.relation_subject = {rsub.data(), rsub.size()};
  a.relation_object = {robj.data(), robj.size()};
  a.layout_names = Q;
  a.sim = {sim.data(), sim.size()};

  genaug::LayoutScores s;
  try {
    genaug::LayoutBatch batch;
    genaug::LayoutPool pool;
    genaug::layout_views(a, batch, pool);
    s = genaug::clis_layout(batch, pool, sim.data(), opt);
    if (threaded) {
      genaug::LayoutOptions o3 = opt;
      o3.threads = 3;
      const genaug::LayoutScores t = genaug::clis_layout(batch, pool, sim.data(), o3);
      FUZZ_REQUIRE(t.status == s.status && t.failed_pair == s.failed_pair);
      for (size_t i = 0; i < s.score.size(); ++i) FUZZ_REQUIRE(same(t.score[i], s.score[i]) && same(t.confidence[i], s.confidence[i]));
      for (size_t i = 0; i < s.pair_score.size(); ++i)
        FUZZ_REQUIRE(same(t.pair_score[i], s.pair_score[i]) && same(t.pair_confidence[i], s.pair_confidence[i]));
    }
  } catch (const genaug::Error& e) {
    FUZZ_REQUIRE(e.code() == "E_RANGE" || e.code() == "E_SHAPE" || e.code() == "E_NONFINITE" || e.code() == "E_LIMIT");
    return 0;
  }
  // With similarities in [-1, 1] and tau >= 0 every example weight is in [0, 1]: pair scores are at most 1 and
  // confidences are >= 0, so the weighted mean is at most 1 too (a negative tau admits negative weights).
  float max_sim = -INFINITY;
  for (float v : sim) max_sim = std::max(max_sim, v);
  const bool bounded = opt.tau >= 0 && max_sim <= 1;
  FUZZ_REQUIRE(s.score.size() == static_cast<size_t>(L) && s.status.size() == static_cast<size_t>(L));
  FUZZ_REQUIRE(s.pair_score.size() == rpred.size());
  for (int32_t l = 0; l < L; ++l) {
    const int32_t r0 = rstart[static_cast<size_t>(l)], r1 = rstart[static_cast<size_t>(l) + 1];
    const int32_t st = s.status[static_cast<size_t>(l)], fp = s.failed_pair[static_cast<size_t>(l)];
    FUZZ_REQUIRE(st >= genaug::kLayoutOk && st <= genaug::kLayoutNoCandidates);
    if (st == genaug::kLayoutNoRelations) FUZZ_REQUIRE(r0 == r1);
    if (st == genaug::kLayoutOk) {
      FUZZ_REQUIRE(fp == -1 && r1 > r0);
      double sc = 0, sw = 0, mn = INFINITY;
      for (int32_t k = r0; k < r1; ++k) {
        const double ps = s.pair_score[static_cast<size_t>(k)], pc = s.pair_confidence[static_cast<size_t>(k)];
        FUZZ_REQUIRE(std::isfinite(ps) && std::isfinite(pc));
        if (bounded) FUZZ_REQUIRE(ps <= 1 + 1e-9 && pc >= 0);
        sc += pc * ps;
        sw += pc;
        mn = std::min(mn, pc);
      }
      const double score = s.score[static_cast<size_t>(l)];
      FUZZ_REQUIRE(std::isfinite(score));
      if (bounded) FUZZ_REQUIRE(score <= 1 + 1e-9);
      FUZZ_REQUIRE(sw > 0 ? std::fabs(score - sc / sw) <= 1e-9 * (1 + std::fabs(score)) : score == 0);
      FUZZ_REQUIRE(s.confidence[static_cast<size_t>(l)] == mn);
    } else {
      FUZZ_REQUIRE(s.score[static_cast<size_t>(l)] == 0 && s.confidence[static_cast<size_t>(l)] == 0);
      if (st != genaug::kLayoutNoRelations) FUZZ_REQUIRE(fp >= 0 && fp < r1 - r0);
    }
  }
  return 0;
}
