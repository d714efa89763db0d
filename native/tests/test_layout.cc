// CLIS-L (native/core/layout): the pieces against hand-computed values from
// the spec's formulas, and whole scenes computed by hand.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "layout.h"
#include "test.h"

using namespace genaug;

namespace {

bool near(double a, double b, double tol = 1e-12) { return std::fabs(a - b) <= tol; }

struct Scene {
  // pool
  std::vector<int32_t> pstart{0};
  std::vector<int32_t> psub, pobj;
  std::vector<float> psbox, pobox;
  std::vector<uint8_t> psym;
  // batch
  std::vector<int32_t> ostart{0}, oname, rstart{0}, rpred, rsub, robj;
  std::vector<float> obox;
  std::vector<float> sim;
  int64_t pnames = 0, lnames = 0;

  LayoutScores run(const LayoutOptions& o) {
    LayoutPool p;
    p.predicates = static_cast<int64_t>(pstart.size()) - 1;
    p.names = pnames;
    p.start = pstart.data();
    p.subject = psub.data();
    p.object = pobj.data();
    p.subject_box = psbox.data();
    p.object_box = pobox.data();
    p.symmetric = psym.data();
    p.examples = static_cast<int64_t>(psub.size());
    LayoutBatch b;
    b.layouts = static_cast<int64_t>(ostart.size()) - 1;
    b.names = lnames;
    b.object_start = ostart.data();
    b.object_name = oname.data();
    b.object_box = obox.data();
    b.objects = static_cast<int64_t>(oname.size());
    b.relation_start = rstart.data();
    b.relation_predicate = rpred.data();
    b.relation_subject = rsub.data();
    b.relation_object = robj.data();
    b.relations = static_cast<int64_t>(rpred.size());
    return clis_layout(b, p, sim.data(), o);
  }
};

// One predicate with one example (names 0 -> 1, similarity 1), one layout with two objects and one relation.
Scene one_example(std::vector<float> es, std::vector<float> eo, std::vector<float> ps, std::vector<float> po, bool symmetric) {
  Scene s;
  s.pnames = 2;
  s.lnames = 2;
  s.sim = {1, 0, 0, 1};
  s.pstart.push_back(1);
  s.psub = {0};
  s.pobj = {1};
  s.psbox = es;
  s.pobox = eo;
  s.psym = {static_cast<uint8_t>(symmetric)};
  s.oname = {0, 1};
  s.obox = ps;
  s.obox.insert(s.obox.end(), po.begin(), po.end());
  s.ostart.push_back(2);
  s.rpred = {0};
  s.rsub = {0};
  s.robj = {1};
  s.rstart.push_back(1);
  return s;
}

}  // namespace

TEST(layout_pieces) {
  CHECK(near(layout_ratio_sim(2, 4), 0.5));
  CHECK(near(layout_ratio_sim(0, 0), 1.0));
  CHECK(near(layout_ratio_sim(0, 1), 0.0));
  CHECK(near(layout_penalty(0.5, 0.03), 0.5));
  CHECK(near(layout_penalty(0.0, 0.03), -1.0));
  CHECK(near(layout_penalty(0.015, 0.03), 0.03 - 1.03 * 0.5));
  CHECK(near(layout_warp(0.95), 0.95));
  CHECK(near(layout_warp(0.85), 0.85 * 0.85));
  CHECK(near(layout_warp(0.75), 0.75 * 0.75 * 0.75));
  CHECK(near(layout_warp(0.65), std::pow(0.65, 4), 1e-15));
  CHECK(near(layout_warp(0.5), std::pow(0.5, 5), 1e-15));
  const float a[4] = {0, 0, 2, 2}, b[4] = {1, 1, 2, 2};
  CHECK(near(layout_iou(a, b), 1.0 / 7.0));
}

TEST(layout_identical_boxes_score_one) {
  // The layout equals the example: every term is 1, so the score is (0.5 + 1 + 0.8) / 2.3 = 1.
  Scene s = one_example({0.1f, 0.1f, 0.2f, 0.3f}, {0.5f, 0.4f, 0.3f, 0.2f}, {0.1f, 0.1f, 0.2f, 0.3f}, {0.5f, 0.4f, 0.3f, 0.2f}, true);
  for (bool faithful : {false, true}) {
    LayoutOptions o;
    o.faithful = faithful;
    LayoutScores r = s.run(o);
    CHECK_EQ(r.status[0], kLayoutOk);
    CHECK(near(r.score[0], 1.0));
    CHECK(near(r.confidence[0], 1.0));
  }
}

TEST(layout_mirrored_relation) {
  // The example's object is to the right of its subject; the layout's to the left (mirror image, same sizes).
  // cos = -1; with symmetry the mirrored example matches (cos 1): dir 1. Without: dir = P(0) = -1.
  Scene sym = one_example({0.1f, 0.1f, 0.2f, 0.2f}, {0.6f, 0.1f, 0.2f, 0.2f}, {0.6f, 0.1f, 0.2f, 0.2f}, {0.1f, 0.1f, 0.2f, 0.2f}, true);
  LayoutOptions o;
  LayoutScores r = sym.run(o);
  CHECK(near(r.score[0], 1.0));
  Scene nosym = one_example({0.1f, 0.1f, 0.2f, 0.2f}, {0.6f, 0.1f, 0.2f, 0.2f}, {0.6f, 0.1f, 0.2f, 0.2f}, {0.1f, 0.1f, 0.2f, 0.2f}, false);
  r = nosym.run(o);
  CHECK(near(r.score[0], (0.5 + 1.0 - 0.8) / 2.3));
}

TEST(layout_hand_computed_terms) {
  // Example: subject 1x1 at (0,0), object 2x2 at (0,0): area ratio 1/4, IoU 1/4, centres (0.5,0.5) -> (1,1).
  // Layout: subject 1x1 at (0,0), object 1x1 at (2,0): area ratio 1, IoU 0, v = (2, 0).
  Scene s = one_example({0, 0, 1, 1}, {0, 0, 2, 2}, {0, 0, 1, 1}, {2, 0, 1, 1}, false);
  const double size = 0.25;                  // sim(1, 1/4)
  const double iou = layout_penalty(0, 0.03);  // sim(0, 1/4) = 0 -> -1
  const double rho_p = 2.0 / std::sqrt(2.0);
  const double rho_e = std::sqrt(0.5) / ((std::sqrt(2.0) + std::sqrt(8.0)) / 2);
  const double rho = std::min(rho_p, rho_e) / std::max(rho_p, rho_e);
  const double cosv = (2 * 0.5) / (2 * std::sqrt(0.5));
  const double dir = (cosv + 1) / 2;
  LayoutOptions o;
  LayoutScores r = s.run(o);
  CHECK(near(r.score[0], (0.5 * size + (0.5 * iou + 0.5 * rho) + 0.8 * dir) / 2.3, 1e-9));
  o.faithful = true;
  r = s.run(o);
  CHECK(near(r.score[0], (0.5 * size + iou + 0.8 * dir) / 2.3, 1e-9));
}

TEST(layout_failures_score_zero) {
  Scene s = one_example({0, 0, 1, 1}, {1, 0, 1, 1}, {0, 0, 1, 1}, {1, 0, 1, 1}, true);
  LayoutOptions o;
  Scene unknown = s;
  unknown.rpred = {-1};
  LayoutScores r = unknown.run(o);
  CHECK_EQ(r.status[0], kLayoutUnknownPredicate);
  CHECK_EQ(r.score[0], 0.0);
  Scene missing = s;
  missing.obox[6] = 0;  // object width 0
  r = missing.run(o);
  CHECK_EQ(r.status[0], kLayoutMissingBox);
  Scene far = s;
  far.sim = {0.5f, 0, 0, 0.5f};  // below tau 0.6
  r = far.run(o);
  CHECK_EQ(r.status[0], kLayoutNoCandidates);
  CHECK_EQ(r.failed_pair[0], 0);
  Scene none = s;
  none.rpred.clear();
  none.rsub.clear();
  none.robj.clear();
  none.rstart = {0, 0};
  r = none.run(o);
  CHECK_EQ(r.status[0], kLayoutNoRelations);
}

TEST(layout_bad_input) {
  Scene s = one_example({0, 0, 1, 1}, {1, 0, 1, 1}, {0, 0, 1, 1}, {1, 0, 1, 1}, true);
  LayoutOptions o;
  Scene bad = s;
  bad.psub = {5};
  bool threw = false;
  try {
    bad.run(o);
  } catch (const genaug::Error& e) {
    threw = e.code() == "E_RANGE";
  }
  CHECK(threw);
  bad = s;
  bad.rsub = {7};
  threw = false;
  try {
    bad.run(o);
  } catch (const genaug::Error& e) {
    threw = e.code() == "E_RANGE";
  }
  CHECK(threw);
}

// rankDivisor 1 with every candidate both-high made the rank n_hi = the
// number of candidates, one past the end of the sorted scores (found by
// fuzz_layout). The rank is now clamped to the last (lowest) score. Oracle:
// each example scored alone (a single candidate is its own pair score).
TEST(layout_rank_divisor_one_takes_the_lowest) {
  const std::vector<std::vector<float>> es = {{0, 0, 1, 1}, {0, 0, 2, 1}, {0, 0, 1, 3}};
  const std::vector<std::vector<float>> eo = {{1, 0, 1, 1}, {0, 2, 1, 1}, {3, 3, 2, 2}};
  const std::vector<float> ps = {0, 0, 1, 1}, po = {1, 0.5f, 1, 1};
  std::vector<double> alone;
  for (size_t e = 0; e < es.size(); ++e) {
    Scene one = one_example(es[e], eo[e], ps, po, false);
    alone.push_back(one.run(LayoutOptions{}).pair_score[0]);
  }
  CHECK(alone[0] != alone[1] && alone[1] != alone[2] && alone[0] != alone[2]);
  Scene three = one_example(es[0], eo[0], ps, po, false);
  for (size_t e = 1; e < es.size(); ++e) {
    three.psub.push_back(0);
    three.pobj.push_back(1);
    three.psbox.insert(three.psbox.end(), es[e].begin(), es[e].end());
    three.pobox.insert(three.pobox.end(), eo[e].begin(), eo[e].end());
  }
  three.pstart = {0, 3};
  std::vector<double> sorted = alone;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  LayoutOptions o;
  o.rank_divisor = 1;  // rank 3 of 3 candidates: clamped to the lowest
  CHECK_NEAR(three.run(o).pair_score[0], sorted[2], 1e-12);
  o.rank_divisor = 2;  // rank 1: the middle one
  CHECK_NEAR(three.run(o).pair_score[0], sorted[1], 1e-12);
  o.rank_divisor = 4;  // rank 0: the highest
  CHECK_NEAR(three.run(o).pair_score[0], sorted[0], 1e-12);
}

// layout_views: the array lengths the binding used to check are checked by
// the core, with the binding's codes.
TEST(layout_views_checks_lengths) {
  Scene s = one_example({0, 0, 1, 1}, {1, 0, 1, 1}, {0, 0, 1, 1}, {1, 0, 1, 1}, true);
  auto arrays = [](Scene& x) {
    LayoutArrays a;
    a.pool_start = {x.pstart.data(), x.pstart.size()};
    a.pool_subject = {x.psub.data(), x.psub.size()};
    a.pool_object = {x.pobj.data(), x.pobj.size()};
    a.pool_subject_box = {x.psbox.data(), x.psbox.size()};
    a.pool_object_box = {x.pobox.data(), x.pobox.size()};
    a.pool_symmetric = {x.psym.data(), x.psym.size()};
    a.pool_names = x.pnames;
    a.object_start = {x.ostart.data(), x.ostart.size()};
    a.object_name = {x.oname.data(), x.oname.size()};
    a.object_box = {x.obox.data(), x.obox.size()};
    a.relation_start = {x.rstart.data(), x.rstart.size()};
    a.relation_predicate = {x.rpred.data(), x.rpred.size()};
    a.relation_subject = {x.rsub.data(), x.rsub.size()};
    a.relation_object = {x.robj.data(), x.robj.size()};
    a.layout_names = x.lnames;
    a.sim = {x.sim.data(), x.sim.size()};
    return a;
  };
  LayoutBatch b;
  LayoutPool p;
  LayoutArrays a = arrays(s);
  layout_views(a, b, p);
  const LayoutScores direct = s.run(LayoutOptions{});
  CHECK_EQ(clis_layout(b, p, a.sim.data, LayoutOptions{}).pair_score[0], direct.pair_score[0]);
  a.sim.size = 3;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_SHAPE");
  a = arrays(s);
  a.pool_start.size = 0;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_SHAPE");
  a = arrays(s);
  a.object_box.size = 7;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_SHAPE");
  a = arrays(s);
  a.relation_start.size = 1;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_SHAPE");
  a = arrays(s);
  a.pool_symmetric.size = 2;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_SHAPE");
  a = arrays(s);
  a.layout_names = -1;
  CHECK_THROWS_CODE(layout_views(a, b, p), "E_RANGE");
}
