// The statistics kernels, written once as plain loops over fixed-width lanes
// so each ISA file can compile them with its own target flags (the compiler
// vectorises them to SSE2, AVX2 or AVX-512). Included by kernels_*.cc only.
// Lane-wise accumulation in a fixed order keeps results independent of the
// thread count for a given ISA.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>

namespace genaug {
// Anonymous: every kernels_*.cc gets its own copy compiled for its ISA (one
// shared inline definition would let the linker pick, say, the AVX-512 one
// for everybody).
namespace {
namespace stats_impl {

constexpr int L = 16;  // lanes

// Values are accumulated in float lanes for at most kRun vectors, then the
// lanes are flushed into double accumulators: float speed (no conversion in
// the inner loop), with rounding errors bounded by runs of kRun values.
constexpr int64_t kRun = 16;

// A sum in float lanes flushed into double every kRun vectors: used for the
// centre of the moment pass, which only needs to be near the mean (the exact
// mean is the centre plus the mean deviation from it).
inline double sum(const float* x, int64_t n) {
  double acc[L] = {0};
  int64_t i = 0;
  while (i + L <= n) {
    float a[L] = {0};
    const int64_t end = i + std::min<int64_t>(kRun * L, (n - i) / L * L);
    for (; i < end; i += L)
      for (int l = 0; l < L; ++l) a[l] += x[i + l];
    for (int l = 0; l < L; ++l) acc[l] += a[l];
  }
  double s = 0;
  for (int l = 0; l < L; ++l) s += acc[l];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

// Moments around `center`, which must be a float value (the caller rounds
// its estimate to float and uses that same value as the centre).
inline void centered_moments(const float* x, int64_t n, double center, double* s1, double* s2, float* mn, float* mx) {
  const float c = static_cast<float>(center);
  double d1[L] = {0}, d2[L] = {0};
  float lo[L], hi[L];
  for (int l = 0; l < L; ++l) {
    lo[l] = std::numeric_limits<float>::infinity();
    hi[l] = -std::numeric_limits<float>::infinity();
  }
  int64_t i = 0;
  while (i + L <= n) {
    float a1[L] = {0}, a2[L] = {0};
    const int64_t end = i + std::min<int64_t>(kRun * L, (n - i) / L * L);
    for (; i < end; i += L) {
#if defined(__GNUC__)
      // The n values after x (bnstats' next NCHW plane) come in while this
      // pass reads x from cache: memory keeps streaming. A hint; it does not
      // fault past the end of the data.
      __builtin_prefetch(reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(x) + static_cast<uintptr_t>(n + i) * sizeof(float)), 0, 2);
#endif
      for (int l = 0; l < L; ++l) {
        const float v = x[i + l];
        const float d = v - c;
        a1[l] += d;
        a2[l] += d * d;
        lo[l] = v < lo[l] ? v : lo[l];
        hi[l] = v > hi[l] ? v : hi[l];
      }
    }
    for (int l = 0; l < L; ++l) {
      d1[l] += a1[l];
      d2[l] += a2[l];
    }
  }
  double t1 = 0, t2 = 0;
  float m0 = *mn, m1 = *mx;
  for (int l = 0; l < L; ++l) {
    t1 += d1[l];
    t2 += d2[l];
    m0 = lo[l] < m0 ? lo[l] : m0;
    m1 = hi[l] > m1 ? hi[l] : m1;
  }
  for (; i < n; ++i) {
    const float v = x[i];
    const double d = static_cast<double>(v) - static_cast<double>(c);
    t1 += d;
    t2 += d * d;
    m0 = v < m0 ? v : m0;
    m1 = v > m1 ? v : m1;
  }
  *s1 += t1;
  *s2 += t2;
  *mn = m0;
  *mx = m1;
}

// column_sums, the NHWC pass that brings a block in from memory, reads it row
// by row (each row's slice of columns is contiguous, so memory is streamed in
// order and the prefetchers follow), with up to kCols columns of lane
// accumulators live at once. Per column, the
// arithmetic is a fixed sequence: float sums over runs of kRun rows, each run
// flushed into the double accumulator, so the result does not depend on how
// the columns are grouped.
constexpr int64_t kCols = 256;

inline void column_sums(const float* x, int64_t rows, int64_t cols, int64_t stride, double* acc) {
  const int64_t vcols = cols / L * L;
  alignas(64) float a[kCols];
  for (int64_t c0 = 0; c0 < vcols; c0 += kCols) {
    const int64_t w = std::min(kCols, vcols - c0);
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
      const int64_t r1 = std::min(rows, r0 + kRun);
      for (int64_t j = 0; j < w; ++j) a[j] = 0.f;
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = x + r * stride + c0;
        for (int64_t j = 0; j < w; j += L)
          for (int l = 0; l < L; ++l) a[j + l] += row[j + l];
      }
      for (int64_t j = 0; j < w; ++j) acc[c0 + j] += a[j];
    }
  }
  for (int64_t c = vcols; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) acc[c] += static_cast<double>(x[r * stride + c]);
}

// Per-column moments around per-column centres (rounded to float, as above);
// the block is in cache after column_sums, so 16 columns at a time with every
// accumulator in registers.
inline void column_moments(const float* x, int64_t rows, int64_t cols, int64_t stride, const double* center, double* s1,
                           double* s2, float* mn, float* mx) {
  int64_t c = 0;
  for (; c + L <= cols; c += L) {
    float cf[L], lo[L], hi[L];
    for (int l = 0; l < L; ++l) {
      cf[l] = static_cast<float>(center[c + l]);
      lo[l] = mn[c + l];
      hi[l] = mx[c + l];
    }
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
      float a1[L] = {0}, a2[L] = {0};
      const int64_t r1 = std::min(rows, r0 + kRun);
      for (int64_t r = r0; r < r1; ++r) {
        for (int l = 0; l < L; ++l) {
          const float v = x[r * stride + c + l];
          const float d = v - cf[l];
          a1[l] += d;
          a2[l] += d * d;
          lo[l] = v < lo[l] ? v : lo[l];
          hi[l] = v > hi[l] ? v : hi[l];
        }
      }
      for (int l = 0; l < L; ++l) {
        s1[c + l] += a1[l];
        s2[c + l] += a2[l];
      }
    }
    for (int l = 0; l < L; ++l) {
      mn[c + l] = lo[l];
      mx[c + l] = hi[l];
    }
  }
  for (; c < cols; ++c) {
    const double cc = static_cast<double>(static_cast<float>(center[c]));
    for (int64_t r = 0; r < rows; ++r) {
      const float v = x[r * stride + c];
      const double d = static_cast<double>(v) - cc;
      s1[c] += d;
      s2[c] += d * d;
      mn[c] = v < mn[c] ? v : mn[c];
      mx[c] = v > mx[c] ? v : mx[c];
    }
  }
}

// IEEE 754 binary16 -> binary32, exact (subnormals, infinities, NaN payloads).
inline float half_to_float_one(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    // subnormal: normalise
    int shift = 0;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      ++shift;
    }
    man &= 0x3ffu;
    bits = sign | ((113u - static_cast<uint32_t>(shift)) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline void half_to_float(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float_one(src[i]);
}

}  // namespace stats_impl
}  // namespace
}  // namespace genaug
