#include "bnstats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "error.h"
#include "kernels.h"
#include "parallel.h"

namespace genaug {

namespace {

constexpr int64_t kBlock = 8192;      // NCHW: values per cache-resident block
constexpr int64_t kRowBlock = 64;     // NHWC: rows per block
constexpr float kInf = std::numeric_limits<float>::infinity();

// Folds a block (nb values with mean mb and co-moment m2b) into a running
// (count, mean, m2).
inline void chan(int64_t& na, double& ma, double& m2a, int64_t nb, double mb, double m2b) {
  if (nb == 0) return;
  if (na == 0) {
    na = nb;
    ma = mb;
    m2a = m2b;
    return;
  }
  const double n = static_cast<double>(na + nb);
  const double delta = mb - ma;
  ma += delta * static_cast<double>(nb) / n;
  m2a += m2b + delta * delta * static_cast<double>(na) * static_cast<double>(nb) / n;
  na += nb;
}

BnStats empty_stats(int64_t domains, int64_t channels) {
  BnStats s;
  s.domains = domains;
  s.channels = channels;
  const size_t n = static_cast<size_t>(domains * channels);
  s.count.assign(n, 0);
  s.mean.assign(n, 0.0);
  s.m2.assign(n, 0.0);
  s.min.assign(n, kInf);
  s.max.assign(n, -kInf);
  s.nonfinite.assign(n, 0);
  return s;
}

[[noreturn]] void nonfinite_error(const BnInput& in, int64_t sample, int64_t channel, int64_t pos, float v) {
  fail("E_NONFINITE", "activation of sample ", sample, ", channel ", channel, ", position ", pos, " is ",
       std::isnan(v) ? "NaN" : "infinite", " (pass nonfinite: 'skip' to count and skip such values)");
}

// Block statistics of x[0, n) that may hold NaN/Inf: the slow path.
void block_with_nonfinite(const float* x, int64_t n, const BnInput& in, const BnOptions& opt, int64_t sample,
                          int64_t channel, int64_t pos0, int64_t stride, int64_t& cnt, double& mean, double& m2,
                          float& mn, float& mx, int64_t& bad) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    if (!std::isfinite(v)) {
      if (opt.nonfinite == NonFinite::Reject) nonfinite_error(in, sample, channel, pos0 + i, v);
      ++bad;
      continue;
    }
    chan(cnt, mean, m2, 1, v, 0.0);
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
}

void check_input(const BnInput& in) {
  if ((in.f32 == nullptr) == (in.f16 == nullptr) && in.n * in.c * in.s > 0)
    fail("E_INTERNAL", "bn_stats needs exactly one of float32 or float16 data");
  if (in.n < 0 || in.c < 1 || in.s < 1)
    fail("E_SHAPE", "activations must have N >= 0 samples, C >= 1 channels and >= 1 position per channel; got N=", in.n,
         ", C=", in.c, ", positions=", in.s);
  if (in.num_domains < 1 || in.num_domains > (1 << 16))
    fail("E_RANGE", "numDomains must be in [1, 65536], got ", in.num_domains);
  if (in.domains != nullptr) {
    for (int64_t i = 0; i < in.n; ++i)
      if (in.domains[i] < 0 || in.domains[i] >= in.num_domains)
        fail("E_RANGE", "domains[", i, "] = ", in.domains[i], " is outside [0, ", in.num_domains, ")");
  }
}

}  // namespace

BnStats bn_stats(const BnInput& in, const BnOptions& opt) {
  check_input(in);
  if (opt.threads < 0) fail("E_RANGE", "threads must be >= 0, got ", opt.threads);
  const Kernels& K = kernels_for(opt.isa);
  const int64_t C = in.c, S = in.s, N = in.n, D = in.num_domains;
  BnStats out = empty_stats(D, C);
  if (N == 0) return out;
  const int hw = static_cast<int>(hardware_threads());
  int T = opt.threads == 0 ? hw : std::min(opt.threads, 256);
  auto dom = [&](int64_t sample) -> int64_t { return in.domains ? in.domains[sample] : 0; };

  if (in.layout == Layout::NCHW) {
    T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, C)));
    run_threads(T, [&](int tid) {
      std::vector<float> scratch(in.f16 ? static_cast<size_t>(std::min(S, kBlock)) : 0);
      // Samples outer, this thread's channels inner: each sample's slice of
      // channels is one contiguous run of memory. Every channel still sees
      // its samples in order, so the result does not depend on the threads.
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t c = C * tid / T; c < C * (tid + 1) / T; ++c) {
          const int64_t at = dom(n) * C + c;
          int64_t& cnt = out.count[at];
          double& mean = out.mean[at];
          double& m2 = out.m2[at];
          float& mn = out.min[at];
          float& mx = out.max[at];
          const int64_t base = (n * C + c) * S;
          for (int64_t p = 0; p < S; p += kBlock) {
            const int64_t len = std::min(kBlock, S - p);
            const float* x;
            if (in.f16) {
              K.half_to_float(in.f16 + base + p, scratch.data(), len);
              x = scratch.data();
            } else {
              x = in.f32 + base + p;
            }
            // Pass 1 (in cache) finds a centre near the mean, rounded to float;
            // pass 2 takes the moments around it. The block mean is centre +
            // s1 / len and its co-moment M2 = s2 - s1^2 / len.
            const double center = static_cast<float>(K.sum(x, len) / static_cast<double>(len));
            const double mb = center;
            double s1 = 0, s2 = 0;
            float bmn = kInf, bmx = -kInf;
            K.centered_moments(x, len, center, &s1, &s2, &bmn, &bmx);
            if (!std::isfinite(mb) || !std::isfinite(s2)) {
              block_with_nonfinite(x, len, in, opt, n, c, p, 1, cnt, mean, m2, mn, mx, out.nonfinite[at]);
              continue;
            }
            const double m2b = s2 - s1 * s1 / static_cast<double>(len);
            chan(cnt, mean, m2, len, mb + s1 / static_cast<double>(len), m2b);
            mn = std::min(mn, bmn);
            mx = std::max(mx, bmx);
          }
        }
      }
    });
    return out;
  }

  // NHWC: each sample is S rows of C channels. Threads own channel ranges
  // (multiples of 16 so each row slice is whole cache lines where it can be).
  const int64_t groups = (C + 15) / 16;
  T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, groups)));
  run_threads(T, [&](int tid) {
    const int64_t c0 = std::min(C, groups * tid / T * 16), c1 = std::min(C, groups * (tid + 1) / T * 16);
    const int64_t W = c1 - c0;
    if (W <= 0) return;
    std::vector<double> sums(static_cast<size_t>(W)), center(static_cast<size_t>(W)), s1(static_cast<size_t>(W)),
        s2(static_cast<size_t>(W));
    std::vector<float> bmn(static_cast<size_t>(W)), bmx(static_cast<size_t>(W));
    std::vector<float> scratch(in.f16 ? static_cast<size_t>(kRowBlock * W) : 0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t d = dom(n);
      for (int64_t r = 0; r < S; r += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, S - r);
        const float* x;
        int64_t stride;
        if (in.f16) {
          for (int64_t i = 0; i < rows; ++i)
            K.half_to_float(in.f16 + (n * S + r + i) * C + c0, scratch.data() + i * W, W);
          x = scratch.data();
          stride = W;
        } else {
          x = in.f32 + (n * S + r) * C + c0;
          stride = C;
        }
        std::fill(sums.begin(), sums.end(), 0.0);
        K.column_sums(x, rows, W, stride, sums.data());
        for (int64_t j = 0; j < W; ++j) center[j] = static_cast<float>(sums[j] / static_cast<double>(rows));
        std::fill(s1.begin(), s1.end(), 0.0);
        std::fill(s2.begin(), s2.end(), 0.0);
        std::fill(bmn.begin(), bmn.end(), kInf);
        std::fill(bmx.begin(), bmx.end(), -kInf);
        K.column_moments(x, rows, W, stride, center.data(), s1.data(), s2.data(), bmn.data(), bmx.data());
        for (int64_t j = 0; j < W; ++j) {
          const int64_t at = d * C + c0 + j;
          if (!std::isfinite(center[j]) || !std::isfinite(s2[j])) {
            block_with_nonfinite(x + j, rows, in, opt, n, c0 + j, r, stride, out.count[at], out.mean[at], out.m2[at],
                                 out.min[at], out.max[at], out.nonfinite[at]);
            continue;
          }
          const double m2b = s2[j] - s1[j] * s1[j] / static_cast<double>(rows);
          chan(out.count[at], out.mean[at], out.m2[at], rows, center[j] + s1[j] / static_cast<double>(rows), m2b);
          out.min[at] = std::min(out.min[at], bmn[j]);
          out.max[at] = std::max(out.max[at], bmx[j]);
        }
      }
    }
  });
  return out;
}

void bn_merge(BnStats& a, const BnStats& b) {
  if (a.domains != b.domains || a.channels != b.channels)
    fail("E_SHAPE", "cannot merge statistics of ", b.domains, " domains x ", b.channels, " channels into ", a.domains,
         " x ", a.channels);
  for (size_t i = 0; i < a.count.size(); ++i) {
    chan(a.count[i], a.mean[i], a.m2[i], b.count[i], b.mean[i], b.m2[i]);
    a.min[i] = std::min(a.min[i], b.min[i]);
    a.max[i] = std::max(a.max[i], b.max[i]);
    a.nonfinite[i] += b.nonfinite[i];
  }
}

// Shared with the device path (bnstats_device.cc).
void bn_check_input(const BnInput& in) { check_input(in); }
BnStats bn_empty_stats(int64_t domains, int64_t channels) { return empty_stats(domains, channels); }
void bn_chan(int64_t& na, double& ma, double& m2a, int64_t nb, double mb, double m2b) { chan(na, ma, m2a, nb, mb, m2b); }
void bn_block_nonfinite(const float* x, int64_t n, const BnInput& in, const BnOptions& opt, int64_t sample, int64_t channel,
                        int64_t pos0, int64_t stride, BnStats& out, int64_t at) {
  block_with_nonfinite(x, n, in, opt, sample, channel, pos0, stride, out.count[at], out.mean[at], out.m2[at], out.min[at],
                       out.max[at], out.nonfinite[at]);
}

}  // namespace genaug
