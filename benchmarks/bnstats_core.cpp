// BatchNorm statistics micro-benchmark without Node: genaug::bn_stats (the
// core library the addon links) on N x C x S float32 in both layouts, on 1 and
// 2 threads, interleaved round by round with this machine's read bandwidth on
// 1 and 2 threads (benchmarks/read_bw.cpp's loop: 8 independent AVX2
// accumulators per thread over a contiguous share), so every figure of a round
// is taken under the same load. Per call it reports the best wall time and the
// best process CPU time (other processes on a shared machine stretch the first
// much more than the second). OFF shifts the data by OFF floats from a 64-byte
// boundary (a Float32Array that V8 gets from malloc sits 16 bytes past one).
// The checksum line is the statistics' bytes (FNV-1a over count, mean, m2, min,
// max), the same whatever the thread count, to compare two builds.
//
//   npx cmake-js compile --out build --CDCMAKE_BUILD_TYPE=Release   # builds build/libgenaug_core.a
//   g++ -O2 -std=c++17 -mavx2 -Inative/core benchmarks/bnstats_core.cpp build/libgenaug_core.a -pthread -o .bench/bnstats_core
//   .bench/bnstats_core [ROUNDS=3] [REPS=10] [N=64 C=256 S=3136] [OFF=0]
#include <immintrin.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "bnstats.h"
#include "read_bw.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Best GB/s of T threads each summing its contiguous share of n floats.
double read_bw(const float* a, size_t n, int T, int reps) {
  double best = 0;
  for (int r = 0; r < reps; ++r) best = std::max(best, read_bw_pass(a, n, T));
  return best;
}

uint64_t fnv(uint64_t h, const void* p, size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace genaug;
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  const int64_t N = argc > 3 ? std::atoll(argv[3]) : 64, C = argc > 4 ? std::atoll(argv[4]) : 256,
                S = argc > 5 ? std::atoll(argv[5]) : 3136;
  const int off = argc > 6 ? std::atoi(argv[6]) : 0;
  if (rounds < 1 || reps < 1 || N < 2 || C < 1 || S < 1 || off < 0 || off > 15) {
    std::fprintf(stderr, "usage: bnstats_core [ROUNDS>=1] [REPS>=1] [N>=2 C>=1 S>=1] [OFF in 0..15]\n");
    return 2;
  }
  const size_t n = static_cast<size_t>(N * C * S);
  float* buf = static_cast<float*>(std::aligned_alloc(64, (n + 16) * sizeof(float) / 64 * 64 + 64));
  float* d = buf + off;
  // The bench's pattern (benchmarks/bnstats.bench.js): runs of 64 values, a random level plus a small ramp.
  uint32_t s = 1;
  for (size_t i = 0; i < n; i += 64) {
    s = s * 1664525u + 1013904223u;
    const float v = 5.0f + 3.0f * static_cast<float>(s / 4294967296.0 - 0.5);
    for (size_t j = i; j < std::min(n, i + 64); ++j) d[j] = v + static_cast<float>(j - i) * 1e-3f;
  }
  std::vector<int32_t> dom(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) dom[static_cast<size_t>(i)] = i < N / 2 ? 0 : 1;
  const Isa isa = active_isa();
  struct Best {
    double wall = 1e9, cpu = 1e9;
  } best[2][2];
  double bw_best[2] = {0, 0};
  uint64_t sums[2][2] = {{0, 0}, {0, 0}};
  const double gb = static_cast<double>(n * sizeof(float)) / 1e9;
  for (int round = 0; round < rounds; ++round) {
    double bw[2];
    for (int t = 0; t < 2; ++t) bw_best[t] = std::max(bw_best[t], bw[t] = read_bw(d, n, t + 1, 5));
    double gbs[2][2], cpu_ms[2][2];
    for (int l = 0; l < 2; ++l) {
      for (int t = 0; t < 2; ++t) {
        BnInput in;
        in.f32 = d;
        in.n = N;
        in.c = C;
        in.s = S;
        in.layout = l == 0 ? Layout::NCHW : Layout::NHWC;
        in.domains = dom.data();
        in.num_domains = 2;
        BnOptions o;
        o.threads = t + 1;
        o.isa = isa;
        double wall = 1e9, cpu = 1e9;
        for (int r = 0; r < reps; ++r) {
          const double w0 = now(), c0 = cpu_now();
          const BnStats st = bn_stats(in, o);
          cpu = std::min(cpu, cpu_now() - c0);
          wall = std::min(wall, now() - w0);
          uint64_t h = 1469598103934665603ull;
          h = fnv(h, st.count.data(), st.count.size() * sizeof(int64_t));
          h = fnv(h, st.mean.data(), st.mean.size() * sizeof(double));
          h = fnv(h, st.m2.data(), st.m2.size() * sizeof(double));
          h = fnv(h, st.min.data(), st.min.size() * sizeof(float));
          h = fnv(h, st.max.data(), st.max.size() * sizeof(float));
          sums[l][t] = h;
        }
        gbs[l][t] = gb / wall;
        cpu_ms[l][t] = cpu * 1e3;
        best[l][t].wall = std::min(best[l][t].wall, wall);
        best[l][t].cpu = std::min(best[l][t].cpu, cpu);
      }
    }
    std::printf(
        "{\"round\": %d, \"read_GBs_1t\": %.2f, \"read_GBs_2t\": %.2f, \"nchw_GBs\": [%.2f, %.2f], \"nhwc_GBs\": [%.2f, "
        "%.2f], \"nchw_cpu_ms\": [%.2f, %.2f], \"nhwc_cpu_ms\": [%.2f, %.2f]}\n",
        round, bw[0], bw[1], gbs[0][0], gbs[0][1], gbs[1][0], gbs[1][1], cpu_ms[0][0], cpu_ms[0][1], cpu_ms[1][0],
        cpu_ms[1][1]);
  }
  std::printf(
      "{\"best\": true, \"shape\": [%lld, %lld, %lld], \"off\": %d, \"read_GBs_1t\": %.2f, \"read_GBs_2t\": %.2f, "
      "\"nchw_GBs\": [%.2f, %.2f], \"nhwc_GBs\": [%.2f, %.2f], \"nchw_cpu_ms\": [%.2f, %.2f], \"nhwc_cpu_ms\": [%.2f, "
      "%.2f], \"nhwc_vs_nchw_2t\": %.2f, \"fraction_2t\": [%.3f, %.3f], \"checksum\": \"%016llx %016llx\", "
      "\"same_bytes_1t_2t\": %s}\n",
      static_cast<long long>(N), static_cast<long long>(C), static_cast<long long>(S), off, bw_best[0], bw_best[1],
      gb / best[0][0].wall, gb / best[0][1].wall, gb / best[1][0].wall, gb / best[1][1].wall, best[0][0].cpu * 1e3,
      best[0][1].cpu * 1e3, best[1][0].cpu * 1e3, best[1][1].cpu * 1e3, best[1][1].wall / best[0][1].wall,
      gb / best[0][1].wall / bw_best[1], gb / best[1][1].wall / bw_best[1], static_cast<unsigned long long>(sums[0][0]),
      static_cast<unsigned long long>(sums[1][0]),
      sums[0][0] == sums[0][1] && sums[1][0] == sums[1][1] ? "true" : "false");
  std::free(buf);
  return 0;
}
