// The device path of the BatchNorm statistics, run on the CPU by the
// emulation backend (the per-block function each CUDA thread runs, in the
// kernel's block order, then the host's Chan merge): the CPU path's bytes for
// both layouts, float32 and float16, odd shapes (positions not a multiple of
// a block, channels not a multiple of the 16 lanes, one sample, an empty
// domain), non-finite values skipped or rejected, and samples streamed in
// chunks through a small pretend device memory.
#include <cstring>
#include <limits>
#include <random>

#include "bnstats.h"
#include "bnstats_device.h"
#include "cuda_api.h"
#include "test.h"

using namespace genaug;

namespace {

template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void expect_same(const BnStats& g, const BnStats& c) {
  CHECK_EQ(g.domains, c.domains);
  CHECK_EQ(g.channels, c.channels);
  CHECK(g.count == c.count);
  CHECK(same_bytes(g.mean, c.mean));
  CHECK(same_bytes(g.m2, c.m2));
  CHECK(same_bytes(g.min, c.min));
  CHECK(same_bytes(g.max, c.max));
  CHECK(g.nonfinite == c.nonfinite);
  // The bound, stated independently of the bytes: within 1e-6 relative.
  for (size_t i = 0; i < c.mean.size() && i < g.mean.size(); ++i) {
    CHECK(std::fabs(g.mean[i] - c.mean[i]) <= 1e-6 * std::max(1.0, std::fabs(c.mean[i])));
    CHECK(std::fabs(g.m2[i] - c.m2[i]) <= 1e-6 * std::max(1.0, std::fabs(c.m2[i])));
  }
}

std::vector<float> values(int64_t n, uint32_t seed, float mean, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(mean, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

uint16_t float_to_half(float f) {
  // Round-to-nearest-even for normal values in range (test data only).
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((b >> 23) & 0xff) - 127 + 15;
  uint32_t man = b & 0x7fffffu;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (man >> 13);
  const uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(h);
}

// The ISA of the CPU kernels the device path must reproduce (scalar rounds
// d * d before adding; AVX2 / AVX-512 fuse it).
Isa g_isa = Isa::Scalar;

BnOptions cpu_opts(NonFinite nf = NonFinite::Reject) {
  BnOptions o;
  o.threads = 2;
  o.isa = g_isa;
  o.nonfinite = nf;
  return o;
}

}  // namespace

TEST(bn_device_emulation_is_the_cpu_bytes_on_odd_shapes) {
  struct Case {
    int64_t n, c, s;
    Layout lay;
  };
  // Positions past one block (8192 NCHW; NHWC bntiling::nhwc_rows: 496 rows
  // for 129 channels, 64 for 1030) and not a multiple of it; NHWC samples of
  // several segments (1030 channels: 15 blocks each); channels not a multiple
  // of 16; one sample; N x C (s = 1).
  const Case cases[] = {{3, 5, 9001, Layout::NCHW}, {1, 1, 1, Layout::NCHW},  {4, 35, 131, Layout::NHWC},
                        {2, 16, 64, Layout::NHWC},  {5, 3, 1, Layout::NHWC},  {7, 17, 70, Layout::NCHW},
                        {2, 129, 500, Layout::NHWC}, {2, 1030, 1100, Layout::NHWC}};
  auto be = emulated_bn_backend(int64_t(1) << 30);
  for (Isa isa : {Isa::Scalar, active_isa()}) {
  g_isa = isa;
  uint32_t seed = 1;
  for (const Case& k : cases) {
    // Large mean, small spread: the centre and the float runs matter.
    std::vector<float> x = values(k.n * k.c * k.s, seed++, 1000.0f, 0.5f);
    std::vector<int32_t> dom(static_cast<size_t>(k.n));
    for (int64_t i = 0; i < k.n; ++i) dom[i] = static_cast<int32_t>(i % 2 == 0 ? 0 : 2);  // domain 1 stays empty
    BnInput in;
    in.f32 = x.data();
    in.n = k.n;
    in.c = k.c;
    in.s = k.s;
    in.layout = k.lay;
    in.domains = dom.data();
    in.num_domains = 3;
    const BnStats c = bn_stats(in, cpu_opts());
    expect_same(device_bn_stats(*be, in, cpu_opts()), c);
    // One sample per chunk.
    const int64_t one = k.c * k.s * 4 + k.c * bntiling::blocks_per_channel(k.s, k.c, k.lay == Layout::NCHW) * int64_t(sizeof(bntiling::Raw));
    expect_same(device_bn_stats(*be, in, cpu_opts(), one + 8), c);
    CHECK_EQ(last_bn_chunk(), 1);
    // float16 input.
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) h[i] = float_to_half(x[i] * 0.01f);
    BnInput hin = in;
    hin.f32 = nullptr;
    hin.f16 = h.data();
    expect_same(device_bn_stats(*be, hin, cpu_opts()), bn_stats(hin, cpu_opts()));
  }
  }
  g_isa = active_isa();
}

TEST(bn_device_emulation_nonfinite_and_errors_as_the_cpu) {
  g_isa = active_isa();
  auto be = emulated_bn_backend(int64_t(1) << 30);
  std::vector<float> x = values(2 * 20 * 100, 5, 0.0f, 1.0f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[20 * 100 + 7 * 20 + 4] = std::numeric_limits<float>::infinity();
  for (Layout lay : {Layout::NCHW, Layout::NHWC}) {
    BnInput in;
    in.f32 = x.data();
    in.n = 2;
    in.c = 20;
    in.s = 100;
    in.layout = lay;
    expect_same(device_bn_stats(*be, in, cpu_opts(NonFinite::Skip)), bn_stats(in, cpu_opts(NonFinite::Skip)));
    CHECK_THROWS_CODE(device_bn_stats(*be, in, cpu_opts()), "E_NONFINITE");
  }
  BnInput bad;
  bad.f32 = x.data();
  bad.n = 2;
  bad.c = 0;
  CHECK_THROWS_CODE(device_bn_stats(*be, bad, cpu_opts()), "E_SHAPE");
  BnInput big;
  big.f32 = x.data();
  big.n = 2;
  big.c = 20;
  big.s = 100;
  CHECK_THROWS_CODE(device_bn_stats(*be, big, cpu_opts(), 100), "E_NOMEM");
  // No samples: the empty statistics.
  BnInput none = big;
  none.n = 0;
  BnStats e = device_bn_stats(*be, none, cpu_opts());
  CHECK_EQ(e.count.size(), size_t(20));
  CHECK_EQ(e.count[0], 0);
}

// Where a GPU exists (npm run test:gpu), the CUDA backend gives the same
// bytes; elsewhere it says why it cannot run.
TEST(cuda_bn_backend_is_the_cpu_bytes_or_reports_unavailable) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    CHECK(!why.empty());
    CHECK_THROWS_CODE(cuda_bn_backend(), "E_CUDA_UNAVAILABLE");
    return;
  }
  auto cu = cuda_bn_backend();
  g_isa = active_isa();
  for (Layout lay : {Layout::NCHW, Layout::NHWC}) {
    std::vector<float> x = values(6 * 37 * 9100, 9, 50.0f, 3.0f);
    BnInput in;
    in.f32 = x.data();
    in.n = 6;
    in.c = 37;
    in.s = 9100;
    in.layout = lay;
    const BnStats c = bn_stats(in, cpu_opts());
    expect_same(device_bn_stats(*cu, in, cpu_opts()), c);
    expect_same(device_bn_stats(*cu, in, cpu_opts(), int64_t(37) * 9100 * 4 * 2 + 100000), c);
  }
}
