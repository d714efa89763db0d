#include "bnstats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "error.h"
#include "bnstats_tiling.h"
#include "kernels.h"
#include "parallel.h"

namespace genaug {

namespace {

constexpr int64_t kBlock = 8192;      // NCHW: values per cache-resident block
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

// chan() of one block of `rows` finite values into each of W channels, its
// statistics given as centre + moments (mean = centre + s1/rows, co-moment
// s2 - s1^2/rows), written so the compiler can run it several channels per
// instruction: the same operations in the same order as chan(), so the same
// bytes.
void merge_rows(int64_t W, int64_t rows, const double* __restrict center, const double* __restrict s1,
                const double* __restrict s2, const float* __restrict bmn, const float* __restrict bmx,
                int64_t* __restrict count, double* __restrict mean, double* __restrict m2, float* __restrict mn,
                float* __restrict mx) {
  const double nb = static_cast<double>(rows);
  int64_t j = 0;
#if defined(__SSE2__)
  // Two channels per instruction (SSE2 is the x86-64 baseline). Counts are
  // below 2^52, so a count converts to double exactly as 2^52 + count - 2^52.
  const __m128d vnb = _mm_set1_pd(nb), two52 = _mm_set1_pd(4503599627370496.0);
  const __m128i vrows = _mm_set1_epi64x(rows), exp52 = _mm_castpd_si128(two52), zero = _mm_setzero_si128();
  for (; j + 2 <= W; j += 2) {
    const __m128d c = _mm_loadu_pd(center + j), a1 = _mm_loadu_pd(s1 + j), a2 = _mm_loadu_pd(s2 + j);
    const __m128d mb = _mm_add_pd(c, _mm_div_pd(a1, vnb));
    const __m128d m2b = _mm_sub_pd(a2, _mm_div_pd(_mm_mul_pd(a1, a1), vnb));
    const __m128i na = _mm_loadu_si128(reinterpret_cast<const __m128i*>(count + j));
    const __m128i nt = _mm_add_epi64(na, vrows);
    const __m128d nad = _mm_sub_pd(_mm_castsi128_pd(_mm_or_si128(na, exp52)), two52);
    const __m128d n = _mm_sub_pd(_mm_castsi128_pd(_mm_or_si128(nt, exp52)), two52);
    const __m128d ma = _mm_loadu_pd(mean + j), m2a = _mm_loadu_pd(m2 + j);
    const __m128d delta = _mm_sub_pd(mb, ma);
    const __m128d mean_next = _mm_add_pd(ma, _mm_div_pd(_mm_mul_pd(delta, vnb), n));
    const __m128d m2_next =
        _mm_add_pd(m2a, _mm_add_pd(m2b, _mm_div_pd(_mm_mul_pd(_mm_mul_pd(_mm_mul_pd(delta, delta), nad), vnb), n)));
    // na == 0 (64-bit lanes): both 32-bit halves zero.
    const __m128i z32 = _mm_cmpeq_epi32(na, zero);
    const __m128d first = _mm_castsi128_pd(_mm_and_si128(z32, _mm_shuffle_epi32(z32, 0xB1)));
    _mm_storeu_pd(mean + j, _mm_or_pd(_mm_and_pd(first, mb), _mm_andnot_pd(first, mean_next)));
    _mm_storeu_pd(m2 + j, _mm_or_pd(_mm_and_pd(first, m2b), _mm_andnot_pd(first, m2_next)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(count + j), nt);
  }
#endif
  for (; j < W; ++j) {
    const double mb = center[j] + s1[j] / nb;
    const double m2b = s2[j] - s1[j] * s1[j] / nb;
    const int64_t na = count[j];
    const double n = static_cast<double>(na + rows);
    const double ma = mean[j];
    const double delta = mb - ma;
    const double mean_next = ma + delta * nb / n;
    const double m2_next = m2[j] + (m2b + delta * delta * static_cast<double>(na) * nb / n);
    mean[j] = na == 0 ? mb : mean_next;
    m2[j] = na == 0 ? m2b : m2_next;
    count[j] = na + rows;
  }
  for (j = 0; j < W; ++j) {
    mn[j] = std::min(mn[j], bmn[j]);
    mx[j] = std::max(mx[j], bmx[j]);
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
    // A rejected value: the one first in (sample, channel, position) order,
    // as one thread would meet it, whichever thread gets to its own first.
    LowestError err;
    run_threads(T, [&](int tid) {
      std::vector<float> scratch(in.f16 ? static_cast<size_t>(std::min(S, kBlock)) : 0);
      // Samples outer, this thread's channels inner: each sample's slice of
      // channels is one contiguous run of memory. Every channel still sees
      // its samples in order, so the result does not depend on the threads.
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t c = C * tid / T; c < C * (tid + 1) / T; ++c) {
          if (err.below(n * C + c)) return;
          try {
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
          } catch (...) {
            err.capture(n * C + c);
            return;
          }
        }
      }
    });
    err.rethrow();
    return out;
  }

  // NHWC: each sample is S rows of C channels, taken R rows at a time
  // (bntiling::nhwc_rows: a block of about 256 KiB, every channel of R rows,
  // one contiguous run of memory). The column sums of its first rows
  // (bntiling::nhwc_center_rows, an eighth) give float centres, the moments
  // around them read the whole block (prefetched into L2 while the block
  // before was read), and it is chained (Chan) into its segment's statistics: G
  // consecutive blocks of one sample (bntiling::nhwc_segment_blocks, about
  // 2^20 values). The segments are then merged into their domain's
  // statistics in sample and segment order. Per channel that is the same
  // sequence of operations whatever the threads: the threads split the
  // segments in waves (each thread a run of consecutive segments, so each
  // streams its own part of memory), then the wave's channels for the merge.
  const int64_t R = bntiling::nhwc_rows(C);
  const int64_t G = bntiling::nhwc_segment_blocks(C);
  const int64_t nb = (S + R - 1) / R;          // blocks per sample
  const int64_t per_sample = (nb + G - 1) / G;  // segments per sample
  const int64_t segs = N * per_sample;
  T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(T, segs)));
  // Segments per wave: as many as about 16 MiB of segment statistics hold (at
  // least one per thread), so a batch is usually one wave: two barriers, and a
  // thread that the machine's load holds up stalls the others only there.
  const int64_t wave = std::min<int64_t>(segs, std::max<int64_t>(T, (int64_t(16) << 20) / (C * 40)));
  // Per segment of the wave and channel: the segment's statistics.
  const size_t wn = static_cast<size_t>(wave * C);
  std::vector<int64_t> wcount(wn), wbad(wn);
  std::vector<double> wmean(wn), wm2(wn);
  std::vector<float> wmn(wn), wmx(wn);
  Barrier barrier(T);
  // A rejected value: the first in segment order, as one thread would meet it
  // (a thread stops at a segment above one known to have failed).
  LowestError err;
  run_threads(T, [&](int tid) {
    const size_t cn = static_cast<size_t>(C);
    std::vector<double> sums(cn), center(cn), s1(cn), s2(cn);
    std::vector<float> bmn(cn), bmx(cn);
    std::vector<float> scratch(in.f16 ? static_cast<size_t>(R * C) : 0);
    const int64_t m0 = C * tid / T, m1 = C * (tid + 1) / T;
    for (int64_t b0 = 0; b0 < segs; b0 += wave) {
      const int64_t nw = std::min(wave, segs - b0);
      // Phase 1: segment statistics, consecutive segments per thread.
      for (int64_t ws = nw * tid / T; ws < nw * (tid + 1) / T && !err.below(b0 + ws); ++ws) {
        try {
          const int64_t n = (b0 + ws) / per_sample, k = (b0 + ws) % per_sample;
          const size_t o = static_cast<size_t>(ws * C);
          int64_t* count = wcount.data() + o;
          double* mean = wmean.data() + o;
          double* m2 = wm2.data() + o;
          float* mn = wmn.data() + o;
          float* mx = wmx.data() + o;
          int64_t* bad = wbad.data() + o;
          std::fill(count, count + C, 0);
          std::fill(bad, bad + C, 0);
          std::fill(mean, mean + C, 0.0);
          std::fill(m2, m2 + C, 0.0);
          std::fill(mn, mn + C, kInf);
          std::fill(mx, mx + C, -kInf);
          for (int64_t b = k * G; b < std::min(nb, (k + 1) * G); ++b) {
            const int64_t r = b * R, rows = std::min(R, S - r);
            const float* x;
            if (in.f16) {
              K.half_to_float(in.f16 + (n * S + r) * C, scratch.data(), rows * C);
              x = scratch.data();
            } else {
              x = in.f32 + (n * S + r) * C;
            }
            // The centre: the mean of the block's first rows (bntiling::nhwc_center_rows), rounded to float.
            const int64_t crows = bntiling::nhwc_center_rows(rows);
            std::fill(sums.begin(), sums.end(), 0.0);
            K.column_sums(x, crows, C, C, sums.data());
            for (int64_t j = 0; j < C; ++j) center[j] = static_cast<float>(sums[j] / static_cast<double>(crows));
            std::fill(s1.begin(), s1.end(), 0.0);
            std::fill(s2.begin(), s2.end(), 0.0);
            std::fill(bmn.begin(), bmn.end(), kInf);
            std::fill(bmx.begin(), bmx.end(), -kInf);
            K.column_moments(x, rows, C, C, center.data(), s1.data(), s2.data(), bmn.data(), bmx.data());
            bool finite = true;
            for (int64_t j = 0; j < C; ++j) finite &= std::isfinite(center[j]) && std::isfinite(s2[j]);
            if (finite) {
              merge_rows(C, rows, center.data(), s1.data(), s2.data(), bmn.data(), bmx.data(), count, mean, m2, mn, mx);
              continue;
            }
            for (int64_t j = 0; j < C; ++j) {
              if (!std::isfinite(center[j]) || !std::isfinite(s2[j])) {
                // The slow path reads the block's column again (float16: converted again).
                if (in.f16) {
                  std::vector<float> col(static_cast<size_t>(rows));
                  for (int64_t i = 0; i < rows; ++i) K.half_to_float(in.f16 + (n * S + r + i) * C + j, col.data() + i, 1);
                  block_with_nonfinite(col.data(), rows, in, opt, n, j, r, 1, count[j], mean[j], m2[j], mn[j], mx[j], bad[j]);
                } else {
                  block_with_nonfinite(in.f32 + (n * S + r) * C + j, rows, in, opt, n, j, r, C, count[j], mean[j], m2[j],
                                       mn[j], mx[j], bad[j]);
                }
                continue;
              }
              const double m2b = s2[j] - s1[j] * s1[j] / static_cast<double>(rows);
              chan(count[j], mean[j], m2[j], rows, center[j] + s1[j] / static_cast<double>(rows), m2b);
              mn[j] = std::min(mn[j], bmn[j]);
              mx[j] = std::max(mx[j], bmx[j]);
            }
          }
        } catch (...) {
          err.capture(b0 + ws);
        }
      }
      barrier.wait();
      // Phase 2: this thread's channels, the wave's segments in order.
      if (!err.failed()) {
        for (int64_t ws = 0; ws < nw; ++ws) {
          const int64_t d = dom((b0 + ws) / per_sample);
          const size_t o = static_cast<size_t>(ws * C);
          for (int64_t j = m0; j < m1; ++j) {
            const int64_t at = d * C + j;
            chan(out.count[at], out.mean[at], out.m2[at], wcount[o + j], wmean[o + j], wm2[o + j]);
            out.min[at] = std::min(out.min[at], wmn[o + j]);
            out.max[at] = std::max(out.max[at], wmx[o + j]);
            out.nonfinite[at] += wbad[o + j];
          }
        }
      }
      barrier.wait();
    }
  });
  err.rethrow();
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
