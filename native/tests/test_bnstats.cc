// Per-channel statistics against a double-precision two-pass oracle, on
// adversarial data, both layouts, float16, every ISA, and merge exactness.
#include <cstring>
#include <limits>
#include <random>

#include "bnstats.h"
#include "test.h"

using namespace genaug;

namespace {

struct Ref {
  std::vector<int64_t> count;
  std::vector<double> mean, var;  // biased variance
  std::vector<float> mn, mx;
};

// Element (n, c, p) of the activations in either layout.
float at(const std::vector<float>& x, Layout lay, int64_t C, int64_t S, int64_t n, int64_t c, int64_t p) {
  return lay == Layout::NCHW ? x[(n * C + c) * S + p] : x[(n * S + p) * C + c];
}

Ref oracle(const std::vector<float>& x, Layout lay, int64_t N, int64_t C, int64_t S, const std::vector<int32_t>& dom,
           int64_t D) {
  Ref r;
  r.count.assign(D * C, 0);
  r.mean.assign(D * C, 0);
  r.var.assign(D * C, 0);
  r.mn.assign(D * C, std::numeric_limits<float>::infinity());
  r.mx.assign(D * C, -std::numeric_limits<float>::infinity());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < S; ++p) {
        const int64_t i = dom[n] * C + c;
        const float v = at(x, lay, C, S, n, c, p);
        r.count[i]++;
        r.mean[i] += v;
        r.mn[i] = std::min(r.mn[i], v);
        r.mx[i] = std::max(r.mx[i], v);
      }
  for (int64_t i = 0; i < D * C; ++i)
    if (r.count[i]) r.mean[i] /= static_cast<double>(r.count[i]);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < S; ++p) {
        const int64_t i = dom[n] * C + c;
        const double d = at(x, lay, C, S, n, c, p) - r.mean[i];
        r.var[i] += d * d;
      }
  for (int64_t i = 0; i < D * C; ++i)
    if (r.count[i]) r.var[i] /= static_cast<double>(r.count[i]);
  return r;
}

// Channel c has mean 10^(c % 5 - 1) * 1e4-ish and a tiny or large spread:
// mixed scales across channels, the classic trap for sum-of-squares.
std::vector<float> adversarial(int64_t count, int64_t C, Layout lay, int64_t S, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<float> x(static_cast<size_t>(count));
  const int64_t N = count / (C * S);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < S; ++p) {
        const double mean = c % 3 == 0 ? 1e4 : (c % 3 == 1 ? -3.0 : 1e-3);
        const double sd = c % 3 == 0 ? 1e-2 : (c % 3 == 1 ? 50.0 : 1e-6);
        const float v = static_cast<float>(mean + sd * nd(rng));
        if (lay == Layout::NCHW) x[(n * C + c) * S + p] = v;
        else x[(n * S + p) * C + c] = v;
      }
  return x;
}

void check_against(const BnStats& s, const Ref& r) {
  for (size_t i = 0; i < r.count.size(); ++i) {
    CHECK_EQ(s.count[i], r.count[i]);
    if (r.count[i] == 0) continue;
    // Deviations from the block centre are taken in float, so the mean is
    // exact to a tiny fraction of the spread (and to double rounding of its size).
    CHECK_NEAR(s.mean[i], r.mean[i], 1e-7 * std::sqrt(r.var[i]) + 1e-12 * std::fabs(r.mean[i]));
    const double var = s.m2[i] / static_cast<double>(s.count[i]);
    if (r.var[i] > 0) CHECK(std::fabs(var - r.var[i]) <= 1e-6 * r.var[i]);
    else CHECK(var >= 0 && var < 1e-20);
    CHECK_EQ(s.min[i], r.mn[i]);
    CHECK_EQ(s.max[i], r.mx[i]);
  }
}

}  // namespace

TEST(bnstats_matches_oracle_both_layouts_every_isa) {
  const int64_t N = 6, C = 37, S = 9000 + 13;  // S crosses a block boundary
  std::vector<int32_t> dom{0, 1, 1, 0, 2, 1};
  for (Layout lay : {Layout::NCHW, Layout::NHWC}) {
    std::vector<float> x = adversarial(N * C * S, C, lay, S, 7);
    Ref r = oracle(x, lay, N, C, S, dom, 4);  // domain 3 stays empty
    for (Isa isa : available_isas()) {
      BnInput in;
      in.f32 = x.data();
      in.n = N;
      in.c = C;
      in.s = S;
      in.layout = lay;
      in.domains = dom.data();
      in.num_domains = 4;
      BnOptions opt;
      opt.isa = isa;
      BnStats s = bn_stats(in, opt);
      check_against(s, r);
      CHECK_EQ(s.count[3 * C], 0);
      opt.threads = 1;
      BnStats s1 = bn_stats(in, opt);
      CHECK(s1.mean == s.mean && s1.m2 == s.m2);  // same bytes whatever the thread count
    }
  }
}

TEST(bnstats_single_element_channels_and_merge_of_many_batches) {
  const int64_t N = 40, C = 5, S = 1;
  std::vector<float> x = adversarial(N * C * S, C, Layout::NCHW, S, 9);
  std::vector<int32_t> dom(N, 0);
  BnInput in;
  in.f32 = x.data();
  in.n = N;
  in.c = C;
  in.s = S;
  BnStats whole = bn_stats(in, BnOptions{});
  check_against(whole, oracle(x, Layout::NCHW, N, C, S, dom, 1));
  BnStats merged;
  for (int64_t b = 0; b < N; b += 3) {
    BnInput part = in;
    part.f32 = x.data() + b * C * S;
    part.n = std::min<int64_t>(3, N - b);
    BnStats s = bn_stats(part, BnOptions{});
    if (b == 0) merged = s;
    else bn_merge(merged, s);
  }
  for (size_t i = 0; i < whole.count.size(); ++i) {
    CHECK_EQ(merged.count[i], whole.count[i]);
    CHECK_NEAR(merged.mean[i], whole.mean[i], 1e-12 * std::max(1.0, std::fabs(whole.mean[i])));
    CHECK(std::fabs(merged.m2[i] - whole.m2[i]) <= 1e-9 * whole.m2[i]);
  }
}

TEST(bnstats_float16_equals_float32_of_the_same_values) {
  const int64_t N = 3, C = 4, S = 50;
  std::vector<uint16_t> h(N * C * S);
  std::mt19937 rng(3);
  for (auto& v : h) {
    v = static_cast<uint16_t>(rng() & 0xffff);
    if (((v >> 10) & 0x1f) == 0x1f) v &= 0x7bff;  // no inf/NaN
  }
  // Reference conversion of a few known halves.
  std::vector<float> f(h.size());
  BnInput in;
  in.f16 = h.data();
  in.n = N;
  in.c = C;
  in.s = S;
  for (Isa isa : available_isas()) {
    BnOptions opt;
    opt.isa = isa;
    BnStats a = bn_stats(in, opt);
    // Decode by hand with the IEEE rules and compare with the float32 path.
    for (size_t i = 0; i < h.size(); ++i) {
      const int e = (h[i] >> 10) & 0x1f, m = h[i] & 0x3ff;
      const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
      f[i] = static_cast<float>((h[i] & 0x8000) ? -mag : mag);
    }
    BnInput in32 = in;
    in32.f16 = nullptr;
    in32.f32 = f.data();
    BnStats b = bn_stats(in32, opt);
    CHECK(a.mean == b.mean && a.m2 == b.m2 && a.min == b.min && a.max == b.max);
  }
}

TEST(bnstats_nonfinite_rejected_or_skipped_and_bad_input) {
  const int64_t N = 2, C = 3, S = 20;
  std::vector<float> x(N * C * S, 1.0f);
  x[(1 * C + 2) * S + 7] = std::numeric_limits<float>::quiet_NaN();
  BnInput in;
  in.f32 = x.data();
  in.n = N;
  in.c = C;
  in.s = S;
  try {
    bn_stats(in, BnOptions{});
    CHECK(false);
  } catch (const genaug::Error& e) {
    CHECK_EQ(e.code(), std::string("E_NONFINITE"));
    CHECK(std::string(e.what()).find("sample 1, channel 2, position 7 is NaN") != std::string::npos);
  }
  BnOptions skip;
  skip.nonfinite = NonFinite::Skip;
  BnStats s = bn_stats(in, skip);
  CHECK_EQ(s.nonfinite[2], 1);
  CHECK_EQ(s.count[2], N * S - 1);
  CHECK_NEAR(s.mean[2], 1.0, 1e-15);
  std::vector<int32_t> dom{0, 5};
  in.domains = dom.data();
  in.num_domains = 2;
  CHECK_THROWS_CODE(bn_stats(in, BnOptions{}), "E_RANGE");
  in.domains = nullptr;
  in.c = 0;
  CHECK_THROWS_CODE(bn_stats(in, BnOptions{}), "E_SHAPE");
}
