// The per-pixel work of the copy-paste compositor's device path, in one header
// that nvcc (native/cuda/composite.cu: each GPU thread runs one call of a
// function here) and the host compiler (composite_device.cc's CPU emulation,
// run by native/tests without a GPU) both compile. Every expression is the
// CPU compositor's (composite.cc, composite_kernels_impl.h) so the bytes are
// the same: the reference bilinear formula of composite.h (integer, 11-bit
// weights), the mask alpha >= threshold, basic / alpha blends with the exact
// floor(x / 255), and the gaussian weight as the CPU's two float passes in the
// same order (no contraction: the core is built without -mfma, the CUDA files
// with --fmad=false).
//
// The sequential part of the CPU loop (paste after paste) becomes a fold per
// pixel: a pixel's colour is the blends of the pastes whose mask covers it, in
// paste order; an instance k loses the pixel to the first later paste whose
// mask covers it (its "first occluder" q, or none). The pixel kernel adds the
// pixel to the statistics (count and extent) of (k, q) for every instance k
// set there, and the host replays the CPU's keep rule from them: instance k's
// area and box after paste p are those of its pixels whose first occluder is
// after p. The visible mask of an instance is its pixels with no occluder:
// a real instance's where no paste covers, a pasted one's where it is the last.
#pragma once
#include <cmath>
#include <cstdint>

#include "device_tiling.h"  // GENAUG_HD

namespace genaug::ctile {

constexpr int kBlend_Basic = 0, kBlend_Alpha = 1, kBlend_Gaussian = 2;
constexpr int kThreads = 256;  // threads per block of every compositor kernel

// One pasted instance of a batch, placed (host: composite_device.cc).
struct Paste {
  int64_t crop = 0;        // byte offset of its RGBA crop (height x width x 4) in the crop arena
  int64_t w = 0, h = 0;    // crop size
  int64_t tw = 0, th = 0;  // target size
  int64_t x0 = 0, y0 = 0;  // top-left of the target grid in the image
  int64_t xa = 0, xb = 0, ya = 0, yb = 0;      // the clipped rectangle, image coordinates (half-open)
  int64_t ej0 = 0, ej1 = 0, ei0 = 0, ei1 = 0;  // the resized window, instance coordinates (rect, +- the blur radius for gaussian)
  int64_t win = 0;   // element offset of its window in the window arenas (rgba: 4 bytes, blur: 1 float per element)
  int64_t rect = 0;  // element offset of its rectangle in the mask / weight arenas
  int32_t flip = 0;
  int32_t active = 0;  // has a nonempty rectangle (not zero-size, empty-crop or clipped out by geometry)
};

struct Scene {
  int64_t h = 0, w = 0;
  int64_t image = 0;   // byte offset of its RGB image (composed in place) in the image arena
  int64_t owner = 0;   // element offset of its owner map (int32: the last paste covering the pixel, -1)
  int64_t masks = -1;  // byte offset of its R real masks (h x w each) in the mask arena; -1: box-only
  int64_t boxes = 0;   // index of its first real box in the box arena (4 int64: x0, x1, y0, y1; box-only)
  int64_t R = 0, P = 0;
  int64_t paste0 = 0;  // its first paste in the paste array
  int64_t stats = 0;   // element offset of its (R + P) x (P + 1) statistics
};

// Pixels of instance k whose first occluder is q (q = P: none).
struct Stat {
  unsigned long long count;
  int32_t x0, x1, y0, y1;  // inclusive extent; x0 > x1 when empty
};
constexpr int32_t kNoExtent = 0x7FFFFFFF;
inline void stat_clear(Stat& s) { s = Stat{0ull, kNoExtent, -1, kNoExtent, -1}; }

struct Params {
  int32_t blend = kBlend_Basic;
  int32_t threshold = 1;  // mask = resized alpha >= threshold
  int32_t rad = 0;        // gaussian radius (kernel: 2 rad + 1 floats)
};

// The device memory of one batch (device pointers on the GPU, host ones in the emulation).
struct Arenas {
  const uint8_t* crop = nullptr;
  const uint8_t* masks = nullptr;
  const int64_t* boxes = nullptr;
  const Paste* pastes = nullptr;
  const Scene* scenes = nullptr;
  const float* kern = nullptr;
  uint8_t* image = nullptr;
  uint8_t* win_rgba = nullptr;
  float* win_blur = nullptr;
  uint8_t* rect_mask = nullptr;
  uint8_t* rect_weight = nullptr;
  int32_t* owner = nullptr;
  Stat* stats = nullptr;
};

GENAUG_HD inline int64_t max64(int64_t a, int64_t b) { return a < b ? b : a; }
GENAUG_HD inline int64_t min64(int64_t a, int64_t b) { return b < a ? b : a; }

// The bilinear coefficients of the CPU path and the device kernels: the left index and the 11-bit weight of the
// right neighbour (round half up of 2048 * rem / den) for target index u of n_dst samples over n_src.
GENAUG_HD inline void coeff(int64_t u, int64_t n_src, int64_t n_dst, int64_t& i0, int32_t& a) {
  const int64_t num = (2 * u + 1) * n_src - n_dst;
  const int64_t den = 2 * n_dst;
  int64_t q = num >= 0 ? num / den : -((-num + den - 1) / den);
  const int64_t rem = num - q * den;
  int64_t w = (rem * 2048 + n_dst) / den;
  if (q < 0) {
    q = 0;
    w = 0;
  } else if (q >= n_src - 1) {
    q = n_src - 1;
    w = 0;
  }
  i0 = q;
  a = static_cast<int32_t>(w);
}

// Element e of paste p's window: the resized RGBA pixel at instance column
// j = ej0 + e % ew (after the flip), row i = ei0 + e / ew (composite.h's
// reference formula, which every row kernel of the CPU path equals).
GENAUG_HD inline void window_px(const Arenas& A, const Paste& p, int64_t e) {
  const int64_t ew = p.ej1 - p.ej0;
  const int64_t j = p.ej0 + e % ew, i = p.ei0 + e / ew;
  const int64_t u = p.flip ? p.tw - 1 - j : j;
  int64_t x0, y0;
  int32_t a, b;
  coeff(u, p.w, p.tw, x0, a);
  coeff(i, p.h, p.th, y0, b);
  const int64_t x1 = min64(x0 + 1, p.w - 1), y1 = min64(y0 + 1, p.h - 1);
  const uint8_t* r0 = A.crop + p.crop + y0 * p.w * 4;
  const uint8_t* r1 = A.crop + p.crop + y1 * p.w * 4;
  const int32_t wa0 = 2048 - a, b0 = 2048 - b;
  uint8_t* o = A.win_rgba + (p.win + e) * 4;
  for (int c = 0; c < 4; ++c) {
    const int32_t h0 = (r0[4 * x0 + c] * wa0 + r0[4 * x1 + c] * a) >> 4;
    const int32_t h1 = (r1[4 * x0 + c] * wa0 + r1[4 * x1 + c] * a) >> 4;
    o[c] = static_cast<uint8_t>((h0 * b0 + h1 * b + (1 << 17)) >> 18);
  }
}

// Element e of paste p's window (gaussian): the horizontal pass of the blur of
// the window's mask, as composite.cc (terms in t order, clipped to the window).
GENAUG_HD inline void hblur_px(const Arenas& A, const Paste& p, int64_t e, const Params& prm) {
  const int64_t ew = p.ej1 - p.ej0;
  const int64_t x = e % ew, row = e - x;
  const int64_t rad = prm.rad;
  const uint8_t thr = static_cast<uint8_t>(prm.threshold);
  const uint8_t* er = A.win_rgba + (p.win + row) * 4;
  float acc = 0;
  const int64_t lo = max64(-rad, -x), hi = min64(rad, ew - 1 - x);
  for (int64_t t = lo; t <= hi; ++t) {
    const float m = er[4 * (x + t) + 3] >= thr ? 1.f : 0.f;
    const float prod = A.kern[t + rad] * m;
    acc = acc + prod;
  }
  A.win_blur[p.win + e] = acc;
}

GENAUG_HD inline float floor32(float x) {
#if defined(__CUDA_ARCH__)
  return floorf(x);
#else
  return std::floor(x);
#endif
}

// Element e of paste p's rectangle (rw x rh): its mask byte and, for
// gaussian, its blend weight round(255 * blurred mask) inside the mask (0
// outside), the vertical pass as composite.cc.
GENAUG_HD inline void rect_px(const Arenas& A, const Paste& p, int64_t e, const Params& prm) {
  const int64_t rw = p.xb - p.xa;
  const int64_t x = e % rw, y = e / rw;
  const int64_t ew = p.ej1 - p.ej0, eh = p.ei1 - p.ei0;
  const int64_t ex = (p.xa - p.x0) - p.ej0 + x, ey = (p.ya - p.y0) - p.ei0 + y;
  const uint8_t alpha = A.win_rgba[(p.win + ey * ew + ex) * 4 + 3];
  const uint8_t m = alpha >= static_cast<uint8_t>(prm.threshold) ? 1 : 0;
  A.rect_mask[p.rect + e] = m;
  if (prm.blend != kBlend_Gaussian) return;
  uint8_t wgt = 0;
  if (m) {
    const int64_t rad = prm.rad;
    float acc = 0;
    const int64_t lo = max64(-rad, -ey), hi = min64(rad, eh - 1 - ey);
    for (int64_t t = lo; t <= hi; ++t) {
      const float prod = A.kern[t + rad] * A.win_blur[p.win + (ey + t) * ew + ex];
      acc = acc + prod;
    }
    const float scaled = acc * 255.f;
    const float v = floor32(scaled + 0.5f);
    wgt = static_cast<uint8_t>(v < 255.f ? v : 255.f);  // std::min(255.f, v)
  }
  A.rect_weight[p.rect + e] = wgt;
}

// Exact floor(x / 255) for 0 <= x < 65536 (composite.cc's div255).
GENAUG_HD inline uint32_t div255(uint32_t x) { return (x * 32897u) >> 23; }

GENAUG_HD inline bool real_set(const Arenas& A, const Scene& s, int64_t r, int64_t x, int64_t y) {
  if (s.masks >= 0) return A.masks[s.masks + r * s.h * s.w + y * s.w + x] != 0;
  const int64_t* b = A.boxes + 4 * (s.boxes + r);
  return x >= b[0] && x < b[1] && y >= b[2] && y < b[3];
}

GENAUG_HD inline void stat_add(Stat* st, int64_t x, int64_t y) {
#if defined(__CUDA_ARCH__)
  atomicAdd(&st->count, 1ull);
  atomicMin(&st->x0, static_cast<int>(x));
  atomicMax(&st->x1, static_cast<int>(x));
  atomicMin(&st->y0, static_cast<int>(y));
  atomicMax(&st->y1, static_cast<int>(y));
#else
  st->count += 1;
  const int32_t xi = static_cast<int32_t>(x), yi = static_cast<int32_t>(y);
  if (xi < st->x0) st->x0 = xi;
  if (xi > st->x1) st->x1 = xi;
  if (yi < st->y0) st->y0 = yi;
  if (yi > st->y1) st->y1 = yi;
#endif
}

// Pixel (x, y) of scene s: the blends of the pastes covering it in paste
// order (the CPU's blend_basic / blend_weighted per pixel), its owner, and the
// statistics of every instance set there.
GENAUG_HD inline void pixel(const Arenas& A, const Scene& s, int64_t x, int64_t y, const Params& prm) {
  uint8_t* d = A.image + s.image + (y * s.w + x) * 3;
  uint8_t c0 = d[0], c1 = d[1], c2 = d[2];
  Stat* st = A.stats + s.stats;
  const int64_t Q = s.P + 1;
  int64_t first = s.P, prev = -1;
  for (int64_t k = 0; k < s.P; ++k) {
    const Paste& p = A.pastes[s.paste0 + k];
    if (!p.active || x < p.xa || x >= p.xb || y < p.ya || y >= p.yb) continue;
    const int64_t e = (y - p.ya) * (p.xb - p.xa) + (x - p.xa);
    if (!A.rect_mask[p.rect + e]) continue;
    const int64_t ew = p.ej1 - p.ej0;
    const uint8_t* src = A.win_rgba + (p.win + (y - p.y0 - p.ei0) * ew + (x - p.x0 - p.ej0)) * 4;
    if (prm.blend == kBlend_Basic) {
      c0 = src[0];
      c1 = src[1];
      c2 = src[2];
    } else {
      const uint32_t a = prm.blend == kBlend_Alpha ? src[3] : A.rect_weight[p.rect + e];
      if (a != 0) {
        const uint32_t ia = 255 - a;
        c0 = static_cast<uint8_t>(div255(src[0] * a + c0 * ia + 127));
        c1 = static_cast<uint8_t>(div255(src[1] * a + c1 * ia + 127));
        c2 = static_cast<uint8_t>(div255(src[2] * a + c2 * ia + 127));
      }
    }
    if (prev >= 0) stat_add(st + (s.R + prev) * Q + k, x, y);
    else first = k;
    prev = k;
  }
  d[0] = c0;
  d[1] = c1;
  d[2] = c2;
  A.owner[s.owner + y * s.w + x] = static_cast<int32_t>(prev);
  if (prev >= 0) stat_add(st + (s.R + prev) * Q + s.P, x, y);
  for (int64_t r = 0; r < s.R; ++r)
    if (real_set(A, s, r, x, y)) stat_add(st + r * Q + first, x, y);
}

// The visible mask of instance `slot` (real r < R, pasted R + p) at (x, y).
GENAUG_HD inline uint8_t visible(const Arenas& A, const Scene& s, int64_t slot, int64_t x, int64_t y) {
  const int32_t own = A.owner[s.owner + y * s.w + x];
  if (slot < s.R) return own < 0 && real_set(A, s, slot, x, y) ? 1 : 0;
  return own == slot - s.R ? 1 : 0;
}

}  // namespace genaug::ctile
