// The statistics kernels, written once as plain loops over fixed-width lanes
// so each ISA file can compile them with its own target flags (the compiler
// vectorises them to SSE2, AVX2 or AVX-512). Included by kernels_*.cc only.
// Lane-wise accumulation in a fixed order keeps results independent of the
// thread count for a given ISA.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace genaug {
// Anonymous: every kernels_*.cc gets its own copy compiled for its ISA (one
// shared inline definition would let the linker pick, say, the AVX-512 one
// for everybody).
namespace {
namespace stats_impl {

constexpr int L = 16;  // lanes

inline double sum(const float* x, int64_t n) {
  double acc[L] = {0};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) acc[l] += static_cast<double>(x[i + l]);
  double s = 0;
  for (int l = 0; l < L; ++l) s += acc[l];
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

inline void centered_moments(const float* x, int64_t n, double center, double* s1, double* s2, float* mn, float* mx) {
  double a1[L] = {0}, a2[L] = {0};
  float lo[L], hi[L];
  for (int l = 0; l < L; ++l) {
    lo[l] = std::numeric_limits<float>::infinity();
    hi[l] = -std::numeric_limits<float>::infinity();
  }
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    for (int l = 0; l < L; ++l) {
      const float v = x[i + l];
      const double d = static_cast<double>(v) - center;
      a1[l] += d;
      a2[l] += d * d;
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
    }
  }
  double t1 = 0, t2 = 0;
  float m0 = *mn, m1 = *mx;
  for (int l = 0; l < L; ++l) {
    t1 += a1[l];
    t2 += a2[l];
    m0 = lo[l] < m0 ? lo[l] : m0;
    m1 = hi[l] > m1 ? hi[l] : m1;
  }
  for (; i < n; ++i) {
    const float v = x[i];
    const double d = static_cast<double>(v) - center;
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

inline void column_sums(const float* x, int64_t rows, int64_t cols, int64_t stride, double* acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * stride;
    for (int64_t c = 0; c < cols; ++c) acc[c] += static_cast<double>(row[c]);
  }
}

inline void column_moments(const float* x, int64_t rows, int64_t cols, int64_t stride, const double* center, double* s1,
                           double* s2, float* mn, float* mx) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * stride;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = row[c];
      const double d = static_cast<double>(v) - center[c];
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
