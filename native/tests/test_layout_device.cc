// CLIS-L's device path, run on the CPU by the emulation backend (the
// per-example function each CUDA thread runs, then the host's reduction),
// against clis_layout: the same bytes on random scenes with every failure
// kind (no relations, unknown predicate, missing box, no candidate), empty
// predicates, mirrored predicates, every option, and layouts processed in
// many groups through a small pretend device memory.
#include <cstring>
#include <random>
#include <vector>

#include "cuda_api.h"
#include "layout.h"
#include "layout_device.h"
#include "test.h"

using namespace genaug;

namespace {

struct World {
  std::vector<int32_t> pstart{0}, psub, pobj;
  std::vector<float> psbox, pobox;
  std::vector<uint8_t> psym;
  std::vector<int32_t> ostart{0}, oname, rstart{0}, rpred, rsub, robj;
  std::vector<float> obox, sim;
  int64_t P = 0, Q = 0;
  LayoutPool pool;
  LayoutBatch batch;

  void views() {
    pool.predicates = static_cast<int64_t>(pstart.size()) - 1;
    pool.names = P;
    pool.start = pstart.data();
    pool.subject = psub.data();
    pool.object = pobj.data();
    pool.subject_box = psbox.data();
    pool.object_box = pobox.data();
    pool.symmetric = psym.data();
    pool.examples = static_cast<int64_t>(psub.size());
    batch.layouts = static_cast<int64_t>(ostart.size()) - 1;
    batch.names = Q;
    batch.object_start = ostart.data();
    batch.object_name = oname.data();
    batch.object_box = obox.data();
    batch.objects = static_cast<int64_t>(oname.size());
    batch.relation_start = rstart.data();
    batch.relation_predicate = rpred.data();
    batch.relation_subject = rsub.data();
    batch.relation_object = robj.data();
    batch.relations = static_cast<int64_t>(rpred.size());
  }
};

World make_world(uint32_t seed, int64_t layouts) {
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int64_t n) { return static_cast<int32_t>(std::uniform_int_distribution<int64_t>(0, n - 1)(rng)); };
  World w;
  w.P = 7;
  w.Q = 6;
  auto box = [&](std::vector<float>& v) {
    v.push_back(static_cast<float>(uni(0, 100)));
    v.push_back(static_cast<float>(uni(0, 100)));
    v.push_back(static_cast<float>(uni(1, 60)));
    v.push_back(static_cast<float>(uni(1, 60)));
  };
  const int64_t R = 5;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t n = r == 3 ? 0 : pick(40) + 1;  // predicate 3 has no examples
    for (int64_t e = 0; e < n; ++e) {
      w.psub.push_back(pick(w.P));
      w.pobj.push_back(pick(w.P));
      box(w.psbox);
      if (e % 7 == 0) {  // same centre as the subject: a zero direction
        const float* s = &w.psbox[w.psbox.size() - 4];
        w.pobox.insert(w.pobox.end(), {s[0], s[1], s[2], s[3]});
      } else {
        box(w.pobox);
      }
    }
    w.pstart.push_back(static_cast<int32_t>(w.psub.size()));
    w.psym.push_back(static_cast<uint8_t>(r % 2));
  }
  for (int64_t i = 0; i < w.Q * w.P; ++i) w.sim.push_back(static_cast<float>(i % 5 == 0 ? 0.95 : uni(-0.2, 1.0)));
  for (int64_t l = 0; l < layouts; ++l) {
    const int64_t n = pick(5);
    for (int64_t i = 0; i < n; ++i) {
      w.oname.push_back(pick(w.Q));
      box(w.obox);
      if (pick(15) == 0) w.obox[w.obox.size() - 2] = 0.0f;  // a missing box
    }
    w.ostart.push_back(static_cast<int32_t>(w.oname.size()));
    const int64_t rels = n == 0 ? 0 : pick(4);
    for (int64_t k = 0; k < rels; ++k) {
      w.rpred.push_back(pick(12) == 0 ? -1 : pick(R));
      w.rsub.push_back(pick(10) == 0 ? -1 : pick(n));
      w.robj.push_back(pick(n));
    }
    w.rstart.push_back(static_cast<int32_t>(w.rpred.size()));
  }
  w.views();
  return w;
}

template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void expect_same(const LayoutScores& g, const LayoutScores& c) {
  CHECK(same_bytes(g.score, c.score));
  CHECK(same_bytes(g.confidence, c.confidence));
  CHECK(g.status == c.status);
  CHECK(g.failed_pair == c.failed_pair);
  CHECK(same_bytes(g.pair_score, c.pair_score));
  CHECK(same_bytes(g.pair_confidence, c.pair_confidence));
}

}  // namespace

TEST(clis_device_emulation_is_the_cpu_bytes) {
  auto be = emulated_clis_backend(int64_t(1) << 30);
  for (uint32_t seed : {1u, 2u, 3u}) {
    World w = make_world(seed, 120);
    for (int variant = 0; variant < 5; ++variant) {
      LayoutOptions o;
      o.threads = 2;
      if (variant == 1) o.faithful = true;
      if (variant == 2) o.balance = true, o.symmetry = false;
      if (variant == 3) o.rank_divisor = 1, o.tau = 0.3;
      if (variant == 4) o.rank_divisor = 3, o.high_sim = 0.5, o.low_weight = 0.5;
      const LayoutScores c = clis_layout(w.batch, w.pool, w.sim.data(), o);
      expect_same(device_clis_layout(*be, w.batch, w.pool, w.sim.data(), o), c);
      CHECK_EQ(last_clis_groups(), 1);
      // A budget of a few hundred bytes: nearly one layout per group.
      expect_same(device_clis_layout(*be, w.batch, w.pool, w.sim.data(), o, nullptr, 600), c);
      CHECK(last_clis_groups() > 20);
    }
    // Every failure kind and a success occur in these scenes.
    const LayoutScores c = clis_layout(w.batch, w.pool, w.sim.data(), LayoutOptions{});
    for (int32_t st : {kLayoutOk, kLayoutNoRelations, kLayoutUnknownPredicate, kLayoutMissingBox, kLayoutNoCandidates})
      CHECK(std::count(c.status.begin(), c.status.end(), st) > 0);
  }
}

TEST(clis_device_checks_inputs_and_cancels_as_the_cpu) {
  auto be = emulated_clis_backend(int64_t(1) << 30);
  World w = make_world(9, 10);
  LayoutOptions bad;
  bad.tau = 2;
  CHECK_THROWS_CODE(device_clis_layout(*be, w.batch, w.pool, w.sim.data(), bad), "E_RANGE");
  w.sim[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_CODE(device_clis_layout(*be, w.batch, w.pool, w.sim.data(), LayoutOptions{}), "E_NONFINITE");
  w.sim[3] = 0.5f;
  int32_t flag = 1;
  CHECK_THROWS_CODE(device_clis_layout(*be, w.batch, w.pool, w.sim.data(), LayoutOptions{}, &flag), "E_ABORTED");
}

// Where a GPU exists (npm run test:gpu) the CUDA backend gives the same
// bytes; elsewhere it says why it cannot run.
TEST(cuda_clis_backend_is_the_cpu_bytes_or_reports_unavailable) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    CHECK(!why.empty());
    CHECK_THROWS_CODE(cuda_clis_backend(), "E_CUDA_UNAVAILABLE");
    return;
  }
  auto cu = cuda_clis_backend();
  World w = make_world(4, 2000);
  for (bool faithful : {false, true}) {
    LayoutOptions o;
    o.faithful = faithful;
    const LayoutScores c = clis_layout(w.batch, w.pool, w.sim.data(), o);
    expect_same(device_clis_layout(*cu, w.batch, w.pool, w.sim.data(), o), c);
    expect_same(device_clis_layout(*cu, w.batch, w.pool, w.sim.data(), o, nullptr, 20000), c);
  }
}
