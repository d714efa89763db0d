// Per-channel statistics of activations for BatchNorm, per domain (real,
// synthetic, ...): count, mean, variance (as the co-moment M2), min and max,
// in one pass over memory. Each block of one sample (NCHW: one channel's
// plane; NHWC: all channels of ~256 KiB of rows) gets a centre per channel
// (NCHW: the block's mean; NHWC: the mean of its first eighth of rows, read
// twice while it sits in cache) and its moments around that centre, and
// blocks are merged with Chan et al.'s formula, in a fixed order, so results
// are stable (mean 1e4 with deviation 1e-2 keeps its variance) and do not
// depend on the thread count. They are floating-point estimates: their bytes
// may change when the blocking changes (they stay within the oracle's
// tolerances in test/bnstats.test.ts).
#pragma once
#include <cstdint>
#include <vector>

#include "cpu.h"

namespace genaug {

enum class Layout { NCHW, NHWC };
enum class NonFinite { Reject, Skip };

struct BnInput {
  const float* f32 = nullptr;     // one of f32 / f16
  const uint16_t* f16 = nullptr;  // IEEE half bits
  int64_t n = 0;                  // samples
  int64_t c = 0;                  // channels
  int64_t s = 1;                  // spatial positions per sample and channel (H*W, 1 for N x C)
  Layout layout = Layout::NCHW;
  const int32_t* domains = nullptr;  // per sample, in [0, num_domains); null: all 0
  int64_t num_domains = 1;
};

struct BnOptions {
  NonFinite nonfinite = NonFinite::Reject;
  int threads = 0;
  Isa isa = Isa::Avx512;
};

// Arrays of num_domains x channels, domain-major.
struct BnStats {
  int64_t domains = 0;
  int64_t channels = 0;
  std::vector<int64_t> count;
  std::vector<double> mean;
  std::vector<double> m2;  // sum of squared deviations from the mean
  std::vector<float> min;  // +inf where count is 0
  std::vector<float> max;  // -inf where count is 0
  std::vector<int64_t> nonfinite;  // values skipped (NonFinite::Skip)
};

BnStats bn_stats(const BnInput& in, const BnOptions& opt);

// Merges b into a (same shape): Chan et al.
void bn_merge(BnStats& a, const BnStats& b);

// Shared with the device path (bnstats_device.cc): the input checks, the
// empty result, Chan's fold of one block, and the slow path of a block that
// holds NaN/Inf (x: the block's n values as float32, `stride` apart).
void bn_check_input(const BnInput& in);
BnStats bn_empty_stats(int64_t domains, int64_t channels);
void bn_chan(int64_t& na, double& ma, double& m2a, int64_t nb, double mb, double m2b);
void bn_block_nonfinite(const float* x, int64_t n, const BnInput& in, const BnOptions& opt, int64_t sample, int64_t channel,
                        int64_t pos0, int64_t stride, BnStats& out, int64_t at);

}  // namespace genaug
