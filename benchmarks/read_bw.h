// One timed pass of the read-bandwidth loop shared by benchmarks/read_bw.cpp
// and benchmarks/bnstats_core.cpp: T threads each sum their contiguous share
// of n floats with 8 independent AVX2 accumulators (unaligned loads, so any
// float pointer does). Returns GB/s. Compile with -mavx2.
#pragma once
#include <immintrin.h>

#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

inline double read_bw_pass(const float* a, size_t n, int T) {
  std::vector<float> part(static_cast<size_t>(T));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> th;
  for (int t = 0; t < T; ++t) {
    th.emplace_back([&, t] {
      const size_t lo = n * t / T / 64 * 64, hi = t + 1 == T ? n : n * (t + 1) / T / 64 * 64;
      __m256 s[8];
      for (auto& v : s) v = _mm256_setzero_ps();
      for (size_t i = lo; i + 64 <= hi; i += 64)
        for (int k = 0; k < 8; ++k) s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(a + i + 8 * k));
      for (int k = 1; k < 8; ++k) s[0] = _mm256_add_ps(s[0], s[k]);
      float out[8];
      _mm256_storeu_ps(out, s[0]);
      part[static_cast<size_t>(t)] = out[0] + out[7];
    });
  }
  for (auto& x : th) x.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = 0;
  for (float p : part) sink = sink + p;
  return static_cast<double>(n * sizeof(float)) / secs / 1e9;
}
