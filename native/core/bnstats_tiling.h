// The per-block arithmetic of the BatchNorm statistics on the device path,
// for nvcc (native/cuda/bnstats.cu, one block per GPU thread) and the host
// compiler (the CPU emulation in bnstats_device.cc). It is the CPU kernels'
// arithmetic (kernels_stats_impl.h: float lanes flushed into double every
// kRun vectors, the same centre rounded to float, the same tail handling),
// written out operation by operation, so a block's (centre, s1, s2, min, max)
// are the CPU's bytes and the Chan merge on the host, in the CPU's order,
// gives the CPU's statistics.
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>

#include "device_tiling.h"  // GENAUG_HD

namespace genaug::bntiling {

constexpr int L = 16;             // lanes (kernels_stats_impl.h)
constexpr int64_t kRun = 16;      // vectors per float run before the double flush
constexpr int64_t kBlock = 8192;  // NCHW: values per block (bnstats.cc)

// NHWC: rows per block for C channels -- about 256 KiB of float32 (the
// block is read from L2, where the pass over the block before prefetched it;
// larger blocks, fewer merges: 256 KiB measured ~5 % faster than 128 KiB on
// a 512 KiB L2), a multiple of kRun, at least 64 and at most 1024 rows.
GENAUG_HD inline int64_t nhwc_rows(int64_t C) {
  const int64_t r = 65536 / C / kRun * kRun;
  return r < 64 ? 64 : r > 1024 ? 1024 : r;
}
// NHWC: the rows of a block of `rows` rows whose mean (rounded to float) is
// the centre of the block's moments: the first eighth (at least kRun rows,
// at most all of them). Only these rows are read twice (a sum pass, then the
// moment pass over the whole block), not the whole block. Any subset of k of
// the block's r values has its mean within sqrt(r / k) standard deviations
// of the block's mean, so the centre is within sqrt(8) of them however the
// values are ordered (for shuffled activations, about sqrt(8 / r)): the
// moments around it lose at most a few bits more to float rounding than
// around the block's own mean.
GENAUG_HD inline int64_t nhwc_center_rows(int64_t rows) {
  const int64_t k = rows / 8 < kRun ? kRun : rows / 8;
  return k < rows ? k : rows;
}
// NHWC: blocks per segment. A sample's blocks are chained (Chan) into
// segments of up to about 2^20 values, and the segments are merged into the
// domain's statistics in order; the segments are what the threads split.
GENAUG_HD inline int64_t nhwc_segment_blocks(int64_t C) {
  const int64_t g = (int64_t(1) << 20) / (nhwc_rows(C) * C);
  return g < 1 ? 1 : g;
}

// One block's raw moments; the host turns them into (count, mean, M2).
struct Raw {
  double center, s1, s2;
  float mn, mx;
};

GENAUG_HD inline float inf32() {
  uint32_t b = 0x7f800000u;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

// IEEE 754 binary16 -> binary32, exact (kernels_stats_impl.h's).
GENAUG_HD inline float half_to_float(uint16_t h) {
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
    int shift = 0;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      ++shift;
    }
    man &= 0x3ffu;
    bits = sign | ((113u - static_cast<uint32_t>(shift)) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// Element i of a float32 or float16 array.
struct Src {
  const float* f32;
  const uint16_t* f16;
  GENAUG_HD float operator()(int64_t i) const { return f32 ? f32[i] : half_to_float(f16[i]); }
};

GENAUG_HD inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// acc + d * d, rounded once (`fused`: what the CPU's AVX2 / AVX-512 kernel
// files compute, compiled with -mfma, where the compiler contracts it) or twice
// (the scalar kernels).
GENAUG_HD inline float sq_add32(float acc, float d, bool fused) {
  if (fused) return tiling::fma32(d, d, acc);
  const float dd = d * d;
  return acc + dd;
}
GENAUG_HD inline double sq_add64(double acc, double d, bool fused) {
#if defined(__CUDA_ARCH__)
  return fused ? __fma_rn(d, d, acc) : __dadd_rn(acc, __dmul_rn(d, d));
#else
  if (fused) return std::fma(d, d, acc);
  volatile double dd = d * d;
  return acc + dd;
#endif
}

// NCHW block: values base .. base+n-1 (contiguous). stats_impl::sum, the
// centre rounded to float, then stats_impl::centered_moments.
GENAUG_HD inline Raw block_contiguous(const Src& x, int64_t base, int64_t n, bool fused) {
  double acc[L];
  for (int l = 0; l < L; ++l) acc[l] = 0.0;
  int64_t i = 0;
  while (i + L <= n) {
    float a[L];
    for (int l = 0; l < L; ++l) a[l] = 0.0f;
    const int64_t end = i + min64(kRun * L, (n - i) / L * L);
    for (; i < end; i += L)
      for (int l = 0; l < L; ++l) a[l] = a[l] + x(base + i + l);
    for (int l = 0; l < L; ++l) acc[l] = acc[l] + static_cast<double>(a[l]);
  }
  double s = 0;
  for (int l = 0; l < L; ++l) s = s + acc[l];
  for (; i < n; ++i) s = s + static_cast<double>(x(base + i));
  Raw r;
  r.center = static_cast<double>(static_cast<float>(s / static_cast<double>(n)));
  // centered_moments
  const float c = static_cast<float>(r.center);
  double d1[L], d2[L];
  float lo[L], hi[L];
  for (int l = 0; l < L; ++l) {
    d1[l] = 0.0;
    d2[l] = 0.0;
    lo[l] = inf32();
    hi[l] = -inf32();
  }
  i = 0;
  while (i + L <= n) {
    float a1[L], a2[L];
    for (int l = 0; l < L; ++l) a1[l] = a2[l] = 0.0f;
    const int64_t end = i + min64(kRun * L, (n - i) / L * L);
    for (; i < end; i += L) {
      for (int l = 0; l < L; ++l) {
        const float v = x(base + i + l);
        const float d = v - c;
        a1[l] = a1[l] + d;
        a2[l] = sq_add32(a2[l], d, fused);
        lo[l] = v < lo[l] ? v : lo[l];
        hi[l] = v > hi[l] ? v : hi[l];
      }
    }
    for (int l = 0; l < L; ++l) {
      d1[l] = d1[l] + static_cast<double>(a1[l]);
      d2[l] = d2[l] + static_cast<double>(a2[l]);
    }
  }
  double t1 = 0, t2 = 0;
  float m0 = inf32(), m1 = -inf32();
  for (int l = 0; l < L; ++l) {
    t1 = t1 + d1[l];
    t2 = t2 + d2[l];
    m0 = lo[l] < m0 ? lo[l] : m0;
    m1 = hi[l] > m1 ? hi[l] : m1;
  }
  for (; i < n; ++i) {
    const float v = x(base + i);
    const double d = static_cast<double>(v) - static_cast<double>(c);
    t1 = t1 + d;
    t2 = sq_add64(t2, d, fused);
    m0 = v < m0 ? v : m0;
    m1 = v > m1 ? v : m1;
  }
  r.s1 = 0.0 + t1;
  r.s2 = 0.0 + t2;
  r.mn = m0;
  r.mx = m1;
  return r;
}

// NHWC block, one column: rows r = 0..rows-1 at base + r*stride. Columns
// below (C / 16) * 16 take the lane path of column_sums / column_moments
// (float runs of kRun rows flushed into double), the others the double tail.
GENAUG_HD inline Raw block_column(const Src& x, int64_t base, int64_t rows, int64_t stride, bool lane_column, bool fused) {
  // The centre: the mean of the first nhwc_center_rows rows.
  const int64_t crows = nhwc_center_rows(rows);
  double sum = 0.0;
  if (lane_column) {
    for (int64_t r0 = 0; r0 < crows; r0 += kRun) {
      const int64_t r1 = min64(crows, r0 + kRun);
      float a = 0.0f;
      for (int64_t r = r0; r < r1; ++r) a = a + x(base + r * stride);
      sum = sum + static_cast<double>(a);
    }
  } else {
    for (int64_t r = 0; r < crows; ++r) sum = sum + static_cast<double>(x(base + r * stride));
  }
  Raw out;
  out.center = static_cast<double>(static_cast<float>(sum / static_cast<double>(crows)));
  double s1 = 0.0, s2 = 0.0;
  float lo = inf32(), hi = -inf32();
  if (lane_column) {
    const float cf = static_cast<float>(out.center);
    for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
      float a1 = 0.0f, a2 = 0.0f;
      const int64_t r1 = min64(rows, r0 + kRun);
      for (int64_t r = r0; r < r1; ++r) {
        const float v = x(base + r * stride);
        const float d = v - cf;
        a1 = a1 + d;
        a2 = sq_add32(a2, d, fused);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      s1 = s1 + static_cast<double>(a1);
      s2 = s2 + static_cast<double>(a2);
    }
  } else {
    const double cc = static_cast<double>(static_cast<float>(out.center));
    for (int64_t r = 0; r < rows; ++r) {
      const float v = x(base + r * stride);
      const double d = static_cast<double>(v) - cc;
      s1 = s1 + d;
      s2 = sq_add64(s2, d, fused);
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
  }
  out.s1 = s1;
  out.s2 = s2;
  out.mn = lo;
  out.mx = hi;
  return out;
}

// Blocks per sample and where block (sample s, channel c, block b) goes.
GENAUG_HD inline int64_t blocks_per_channel(int64_t S, int64_t C, bool nchw) {
  const int64_t len = nchw ? kBlock : nhwc_rows(C);
  return (S + len - 1) / len;
}
GENAUG_HD inline int64_t block_index(int64_t s, int64_t c, int64_t b, int64_t C, int64_t nb, bool nchw) {
  return nchw ? (s * C + c) * nb + b : (s * nb + b) * C + c;
}

// The one block a device thread computes: samples of `x` (ns x C x S values
// in the layout), block (s, c, b) in block_index order.
GENAUG_HD inline Raw block_at(const Src& x, int64_t s, int64_t c, int64_t b, int64_t C, int64_t S, bool nchw,
                              bool fused) {
  if (nchw) {
    const int64_t p = b * kBlock;
    return block_contiguous(x, (s * C + c) * S + p, min64(kBlock, S - p), fused);
  }
  const int64_t R = nhwc_rows(C);
  const int64_t r = b * R;
  return block_column(x, (s * S + r) * C + c, min64(R, S - r), C, c < C / L * L, fused);
}

// Device thread t of the grid (ns x C x nb threads, consecutive threads on consecutive channels for NHWC -- coalesced
// reads -- or consecutive blocks of one channel for NCHW): computes its block and stores it at block_index. The CUDA
// kernel runs it once per thread; the CPU emulation runs it for every t.
GENAUG_HD inline void thread_block(const Src& x, int64_t t, int64_t C, int64_t S, int64_t nb, bool nchw, bool fused, Raw* out) {
  int64_t s, c, b;
  if (nchw) {
    b = t % nb;
    c = (t / nb) % C;
    s = t / (nb * C);
  } else {
    c = t % C;
    b = (t / C) % nb;
    s = t / (C * nb);
  }
  out[block_index(s, c, b, C, nb, nchw)] = block_at(x, s, c, b, C, S, nchw, fused);
}

}  // namespace genaug::bntiling
