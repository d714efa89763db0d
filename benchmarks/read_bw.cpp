// Read bandwidth of this machine, for the bnstats benchmark when
// ../shared/peers/stream_bw.cpp cannot be built here (it needs AVX-512):
// T threads each sum their contiguous share of an N-float array with 8
// independent AVX2 accumulators; prints {"read_GBs_med": ..., "read_GBs_best": ...}.
//   g++ -O3 -mavx2 -mfma -pthread read_bw.cpp -o read_bw && ./read_bw THREADS FLOATS REPS
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const int T = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : (size_t(1) << 26);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  float* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  for (size_t i = 0; i < n; ++i) a[i] = static_cast<float>(i & 1023);
  std::vector<double> gbs;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<float> part(T);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < T; ++t) {
      th.emplace_back([&, t] {
        const size_t lo = n * t / T / 64 * 64, hi = t + 1 == T ? n : n * (t + 1) / T / 64 * 64;
        __m256 s[8];
        for (auto& v : s) v = _mm256_setzero_ps();
        for (size_t i = lo; i + 64 <= hi; i += 64)
          for (int k = 0; k < 8; ++k) s[k] = _mm256_add_ps(s[k], _mm256_load_ps(a + i + 8 * k));
        for (int k = 1; k < 8; ++k) s[0] = _mm256_add_ps(s[0], s[k]);
        float out[8];
        _mm256_storeu_ps(out, s[0]);
        part[t] = out[0] + out[7];
      });
    }
    for (auto& x : th) x.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (float p : part) sink = sink + p;
    gbs.push_back(n * sizeof(float) / secs / 1e9);
  }
  std::sort(gbs.begin(), gbs.end());
  std::printf("{\"threads\": %d, \"bytes\": %zu, \"read_GBs_med\": %.2f, \"read_GBs_best\": %.2f}\n", T, n * sizeof(float), gbs[gbs.size() / 2], gbs.back());
  std::free(a);
  return 0;
}
