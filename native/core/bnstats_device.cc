#include "bnstats_device.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "device_tiling.h"
#include "error.h"

namespace genaug {

namespace {

std::atomic<int64_t> g_chunk{0};

class EmulatedBn final : public BnBackend {
 public:
  explicit EmulatedBn(int64_t free_bytes) : free_(free_bytes) {}
  std::string name() const override { return "cuda emulation"; }
  int64_t free_bytes() override { return free_; }
  void blocks(const float* f32, const uint16_t* f16, int64_t ns, int64_t C, int64_t S, bool nchw, bool fused,
              bntiling::Raw* out) override {
    const bntiling::Src x{f32, f16};
    const int64_t nb = bntiling::blocks_per_channel(S, C, nchw);
    // The kernel's grid: one thread per block.
    for (int64_t t = 0; t < ns * C * nb; ++t) bntiling::thread_block(x, t, C, S, nb, nchw, fused, out);
  }

 private:
  int64_t free_;
};

}  // namespace

std::unique_ptr<BnBackend> emulated_bn_backend(int64_t free_bytes) { return std::make_unique<EmulatedBn>(free_bytes); }

int64_t last_bn_chunk() { return g_chunk.load(); }

BnStats device_bn_stats(BnBackend& be, const BnInput& in, const BnOptions& opt, int64_t device_bytes) {
  bn_check_input(in);
  if (opt.threads < 0) fail("E_RANGE", "threads must be >= 0, got ", opt.threads);
  const int64_t C = in.c, S = in.s, N = in.n;
  BnStats out = bn_empty_stats(in.num_domains, C);
  if (N == 0) return out;
  const bool nchw = in.layout == Layout::NCHW;
  // The CPU kernels of opt.isa: scalar rounds d * d then adds; the AVX2 /
  // AVX-512 files (built with -mfma) contract it into one fused multiply-add.
  const bool fused = clamp_isa(opt.isa) != Isa::Scalar;
  const int64_t nb = bntiling::blocks_per_channel(S, C, nchw);
  const int64_t elem = in.f16 ? 2 : 4;
  const int64_t per_sample = C * S * elem + C * nb * static_cast<int64_t>(sizeof(bntiling::Raw));
  const int64_t budget = device_bytes > 0 ? device_bytes : tiling::budget_from_free(be.free_bytes());
  if (per_sample > budget)
    fail("E_NOMEM", be.name(), ": ", budget, " bytes of device memory are not enough for one sample (", per_sample,
         " bytes: ", C, " channels x ", S, " positions)");
  const int64_t chunk = std::min<int64_t>(N, budget / per_sample);
  g_chunk.store(chunk);
  std::vector<bntiling::Raw> raw;
  std::vector<float> scratch;
  auto dom = [&](int64_t sample) -> int64_t { return in.domains ? in.domains[sample] : 0; };
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t ns = std::min(chunk, N - n0);
    raw.resize(static_cast<size_t>(ns * C * nb));
    be.blocks(in.f32 ? in.f32 + n0 * C * S : nullptr, in.f16 ? in.f16 + n0 * C * S : nullptr, ns, C, S, nchw, fused,
              raw.data());
    // Chan merges in the CPU path's order (bnstats.cc). NCHW: per (domain,
    // channel), samples in order, each sample's blocks in order. NHWC: each
    // segment's blocks (bntiling::nhwc_segment_blocks consecutive blocks of
    // one sample) chained into the segment's statistics, the segments merged
    // into their domain's in sample and segment order.
    const int64_t G = nchw ? nb : bntiling::nhwc_segment_blocks(C);
    const int64_t rows = nchw ? bntiling::kBlock : bntiling::nhwc_rows(C);
    BnStats seg = bn_empty_stats(1, C);
    for (int64_t s = 0; s < ns; ++s) {
      const int64_t n = n0 + s;
      for (int64_t b0 = 0; b0 < nb; b0 += G) {
        BnStats& acc = nchw ? out : seg;
        if (!nchw) seg = bn_empty_stats(1, C);
        for (int64_t b = b0; b < std::min(nb, b0 + G); ++b) {
          for (int64_t c = 0; c < C; ++c) {
            const int64_t at = nchw ? dom(n) * C + c : c;
            const bntiling::Raw& r = raw[bntiling::block_index(s, c, b, C, nb, nchw)];
            const int64_t p0 = b * rows;
            const int64_t len = std::min(rows, S - p0);
            if (!std::isfinite(r.center) || !std::isfinite(r.s2)) {
              // The CPU path's slow path, on this block's values.
              scratch.resize(static_cast<size_t>(len));
              const bntiling::Src x{in.f32, in.f16};
              for (int64_t i = 0; i < len; ++i)
                scratch[i] = nchw ? x((n * C + c) * S + p0 + i) : x((n * S + p0 + i) * C + c);
              bn_block_nonfinite(scratch.data(), len, in, opt, n, c, p0, 1, acc, at);
              continue;
            }
            const double m2b = r.s2 - r.s1 * r.s1 / static_cast<double>(len);
            bn_chan(acc.count[at], acc.mean[at], acc.m2[at], len, r.center + r.s1 / static_cast<double>(len), m2b);
            acc.min[at] = std::min(acc.min[at], r.mn);
            acc.max[at] = std::max(acc.max[at], r.mx);
          }
        }
        if (nchw) continue;
        for (int64_t c = 0; c < C; ++c) {
          const int64_t at = dom(n) * C + c;
          bn_chan(out.count[at], out.mean[at], out.m2[at], seg.count[c], seg.mean[c], seg.m2[c]);
          out.min[at] = std::min(out.min[at], seg.min[c]);
          out.max[at] = std::max(out.max[at], seg.max[c]);
          out.nonfinite[at] += seg.nonfinite[c];
        }
      }
    }
  }
  return out;
}

}  // namespace genaug
