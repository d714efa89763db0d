// Read bandwidth of this machine, for the bnstats benchmark when
// ../shared/peers/stream_bw.cpp cannot be built here (it needs AVX-512):
// T threads each sum their contiguous share of an N-float array with 8
// independent AVX2 accumulators; prints {"read_GBs_med": ..., "read_GBs_best": ...}.
//   g++ -O3 -mavx2 -mfma -pthread read_bw.cpp -o read_bw && ./read_bw THREADS FLOATS REPS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "read_bw.h"

int main(int argc, char** argv) {
  const int T = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : (size_t(1) << 26);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  float* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  for (size_t i = 0; i < n; ++i) a[i] = static_cast<float>(i & 1023);
  std::vector<double> gbs;
  for (int r = 0; r < reps; ++r) gbs.push_back(read_bw_pass(a, n, T));
  std::sort(gbs.begin(), gbs.end());
  std::printf("{\"threads\": %d, \"bytes\": %zu, \"read_GBs_med\": %.2f, \"read_GBs_best\": %.2f}\n", T, n * sizeof(float), gbs[gbs.size() / 2], gbs.back());
  std::free(a);
  return 0;
}
