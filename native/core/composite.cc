// Instance copy-paste compositor: see composite.h for the rules and the
// sampling convention.
//
// Cost model: the only full-frame passes are the copy of the destination
// image, the normalising copy of each real mask (which also yields its area
// and box) and the zero fill of each pasted instance's output mask. All the
// rest touches only the pasted instance's clipped rectangle: the resize
// (fixed point, one row kernel per ISA: composite_kernels_<isa>.cc), the blend,
// and the occlusion update of the earlier masks whose box meets the
// rectangle. A box is recomputed only when its mask lost pixels, by scanning
// inside its previous box (boxes only shrink).
#include "composite.h"
#include "composite_tiling.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "error.h"
#include "parallel.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

// Baseline SSE2 (part of x86-64) for the row counts below; the resize's
// per-ISA kernels are in composite_kernels_<isa>.cc.
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define GENAUG_COMPOSITE_SSE2 1
#endif

#include "composite_kernels.h"

namespace genaug {

const char* drop_reason_name(DropReason r) {
  switch (r) {
    case DropReason::Occluded: return "occluded";
    case DropReason::Empty: return "empty";
    case DropReason::ClippedOut: return "clipped-out";
    case DropReason::ZeroSize: return "zero-size";
    case DropReason::EmptyCrop: return "empty-crop";
    case DropReason::EmptyAlpha: return "empty-alpha";
  }
  return "unknown";
}

namespace {

// ---------------------------------------------------------------------------
// Row helpers on 0/1 (or 0/nonzero) bytes.

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline int ctz64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(v);
#else
  int n = 0;
  while (!(v & 1)) v >>= 1, ++n;
  return n;
#endif
}
inline int clz64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_clzll(v);
#else
  int n = 0;
  while (!(v & (uint64_t(1) << 63))) v <<= 1, ++n;
  return n;
#endif
}

constexpr bool kLittleEndian =
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    false;
#else
    true;
#endif

// First nonzero byte in [0, n), or -1.
int64_t first_set(const uint8_t* row, int64_t n) {
  int64_t i = 0;
  if (kLittleEndian) {
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = load64(row + i);
      if (v) return i + ctz64(v) / 8;
    }
  }
  for (; i < n; ++i)
    if (row[i]) return i;
  return -1;
}

// Last nonzero byte in [0, n), or -1.
int64_t last_set(const uint8_t* row, int64_t n) {
  int64_t i = n;
  if (kLittleEndian) {
    for (; i >= 8; i -= 8) {
      const uint64_t v = load64(row + i - 8);
      if (v) return i - 1 - clz64(v) / 8;
    }
  }
  for (; i > 0; --i)
    if (row[i - 1]) return i - 1;
  return -1;
}

#if GENAUG_COMPOSITE_SSE2
inline int64_t sum64x2(__m128i v) {
  alignas(16) int64_t t[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(t), v);
  return t[0] + t[1];
}
#endif

// Number of ones in a row of 0/1 bytes.
int64_t count_ones(const uint8_t* row, int64_t n) {
  int64_t s = 0, i = 0;
#if GENAUG_COMPOSITE_SSE2
  __m128i acc = _mm_setzero_si128();
  const __m128i z = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16)
    acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)), z));
  s = sum64x2(acc);
#endif
  for (; i + 8 <= n; i += 8) s += static_cast<int64_t>((load64(row + i) * 0x0101010101010101ull) >> 56);
  for (; i < n; ++i) s += row[i];
  return s;
}

// dst = (src != 0) for n bytes; returns the number of ones written.
int64_t normalise_copy(const uint8_t* __restrict src, uint8_t* __restrict dst, int64_t n) {
  int64_t i = 0, s = 0;
#if GENAUG_COMPOSITE_SSE2
  __m128i acc = _mm_setzero_si128();
  const __m128i z = _mm_setzero_si128(), one = _mm_set1_epi8(1);
  for (; i + 16 <= n; i += 16) {
    const __m128i nz = _mm_andnot_si128(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)), z), one);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), nz);
    acc = _mm_add_epi64(acc, _mm_sad_epu8(nz, z));
  }
  s = sum64x2(acc);
#endif
  for (; i < n; ++i) s += dst[i] = src[i] != 0;
  return s;
}

// Output of a call from this size on is written with stream (non-temporal)
// stores: it is larger than half the last-level cache, so it is read back
// (by the caller, later) from memory whatever the stores do, and a stream
// store saves the read of every line it overwrites (a regular store first
// reads the line: for a 1024² scene, 11 MiB of reads of memory that is about
// to be overwritten). Smaller calls keep regular stores: their output may
// still be in the cache when the caller reads it.
constexpr int64_t kStreamMinBytes = int64_t(16) << 20;

int64_t output_bytes(const CompositeScene& s) {
  if (s.crop_masks) return 0;
  return s.h * s.w * (3 + static_cast<int64_t>(s.out_masks.size()));
}

// Copies n bytes with non-temporal stores where dst is 16-byte aligned (the
// outputs are written once here and read much later, from memory: no
// read-for-ownership of lines about to be overwritten completely).
void stream_copy(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n) {
#if GENAUG_COMPOSITE_SSE2
  int64_t i = 0;
  const int64_t head = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15);
  if (n < 64 + head) {
    std::memcpy(dst, src, static_cast<size_t>(n));
    return;
  }
  std::memcpy(dst, src, static_cast<size_t>(head));
  i = head;
  for (; i + 64 <= n; i += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), d);
  }
  std::memcpy(dst + i, src + i, static_cast<size_t>(n - i));
#else
  std::memcpy(dst, src, static_cast<size_t>(n));
#endif
}

void stream_zero(uint8_t* dst, int64_t n) {
#if GENAUG_COMPOSITE_SSE2
  const int64_t head = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15);
  if (n < 64 + head) {
    std::memset(dst, 0, static_cast<size_t>(n));
    return;
  }
  std::memset(dst, 0, static_cast<size_t>(head));
  int64_t i = head;
  const __m128i z = _mm_setzero_si128();
  for (; i + 64 <= n; i += 64) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), z);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), z);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), z);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), z);
  }
  std::memset(dst + i, 0, static_cast<size_t>(n - i));
#else
  std::memset(dst, 0, static_cast<size_t>(n));
#endif
}

// normalise_copy with stream stores where dst is 16-byte aligned.
int64_t normalise_stream(const uint8_t* __restrict src, uint8_t* __restrict dst, int64_t n) {
#if GENAUG_COMPOSITE_SSE2
  if (reinterpret_cast<uintptr_t>(dst) & 15) return normalise_copy(src, dst, n);
  int64_t i = 0, s = 0;
  __m128i acc = _mm_setzero_si128();
  const __m128i z = _mm_setzero_si128(), one = _mm_set1_epi8(1);
  for (; i + 16 <= n; i += 16) {
    const __m128i nz = _mm_andnot_si128(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)), z), one);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), nz);
    acc = _mm_add_epi64(acc, _mm_sad_epu8(nz, z));
  }
  s = sum64x2(acc);
  for (; i < n; ++i) s += dst[i] = src[i] != 0;
  return s;
#else
  return normalise_copy(src, dst, n);
#endif
}

// Accumulates the extent of a row of 0/1 bytes (columns offset by x0) into a box.
struct Extent {
  int64_t x0 = INT64_MAX, x1 = -1, y0 = INT64_MAX, y1 = -1;  // inclusive
  void add_row(const uint8_t* row, int64_t n, int64_t xoff, int64_t y) {
    const int64_t f = first_set(row, n);
    if (f < 0) return;
    const int64_t l = last_set(row, n);
    x0 = std::min(x0, xoff + f);
    x1 = std::max(x1, xoff + l);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
  }
  Box box() const {
    if (x1 < 0) return Box{};
    return Box{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  }
};

// ---------------------------------------------------------------------------
// Bilinear coefficients (composite.h): ctile::coeff (composite_tiling.h),
// the one definition the device kernels use too.
using ctile::coeff;

struct Scratch {
  std::vector<int64_t> xoff;   // byte offset of the left tap per column
  std::vector<int32_t> xw;     // (2048 - a) | (a << 16)
  std::vector<int32_t> xw4;    // the same, 4 copies per column (kernels with quad_weights)
  std::vector<uint8_t> rgba;   // the resized window
  std::vector<uint8_t> mask;   // its mask (alpha >= mask_threshold)
  std::vector<float> blur, blur_tmp;
  std::vector<float> kernel;
  std::vector<uint8_t> slots;  // full-frame masks of a crop_masks scene
  std::vector<uint8_t> row;    // one output row, composed before it is streamed out
};

// Resizes the window [j0, j1) x [i0, i1) of the instance as placed (columns
// after the flip) into out (rows of (j1 - j0) RGBA pixels), one row kernel
// call per row.
void resize_window(const PasteSpec& p, int64_t j0, int64_t j1, int64_t i0, int64_t i1, uint8_t* out, Scratch& s,
                   const CompositeKernels& K) {
  const int64_t n = j1 - j0;
  if (n <= 0 || i1 <= i0) return;
  const int64_t sw = p.width, sh = p.height, tw = p.target_w, th = p.target_h;
  const bool wide = sw >= 2;  // the two taps of a column are adjacent bytes: one 8-byte load
  s.xoff.resize(static_cast<size_t>(n));
  s.xw.resize(static_cast<size_t>(n));
  for (int64_t j = j0; j < j1; ++j) {
    const int64_t u = p.flip ? tw - 1 - j : j;
    int64_t x0;
    int32_t a;
    coeff(u, sw, tw, x0, a);
    if (wide && x0 == sw - 1) {  // same value, keeps the 8-byte load inside the row
      x0 = sw - 2;
      a = 2048;
    }
    s.xoff[static_cast<size_t>(j - j0)] = x0 * 4;
    s.xw[static_cast<size_t>(j - j0)] = (2048 - a) | (a << 16);
  }
  const int64_t* xoff = s.xoff.data();
  const int32_t* xw = s.xw.data();
  if (K.quad_weights && wide) {
    s.xw4.resize(static_cast<size_t>(4 * n));
    for (int64_t k = 0; k < n; ++k)
      for (int c = 0; c < 4; ++c) s.xw4[static_cast<size_t>(4 * k + c)] = xw[k];
  }
  const int64_t stride = sw * 4;
  for (int64_t i = i0; i < i1; ++i) {
    int64_t y0;
    int32_t b;
    coeff(i, sh, th, y0, b);
    const int64_t y1 = std::min(y0 + 1, sh - 1);
    K.resize_row(p.rgba + y0 * stride, p.rgba + y1 * stride, xoff, xw, s.xw4.data(), b, n, wide, out + (i - i0) * n * 4);
  }
}

// mask[i] = rgba[4i + 3] >= threshold for n pixels.
void alpha_mask(const uint8_t* __restrict rgba, uint8_t* __restrict mask, int64_t n, int threshold) {
  const uint8_t t = static_cast<uint8_t>(threshold);
  for (int64_t i = 0; i < n; ++i) mask[i] = rgba[4 * i + 3] >= t;
}

// Exact floor(x / 255) for 0 <= x < 65536.
inline uint32_t div255(uint32_t x) { return (x * 32897u) >> 23; }

void blend_basic(const uint8_t* __restrict src, const uint8_t* __restrict m, uint8_t* __restrict dst, int64_t n) {
  int64_t k = 0;
  while (k < n) {
    // Skip runs of zeros 8 at a time (most of an instance's rectangle is a run).
    if (k + 8 <= n) {
      const uint64_t v = load64(m + k);
      if (v == 0) {
        k += 8;
        continue;
      }
      if (v == 0x0101010101010101ull) {
        // 4-byte moves: each writes one pixel's RGB and the next pixel's R,
        // which the next move overwrites; the run's last pixel takes 3 bytes.
        for (int64_t e = k + 7; k < e; ++k) std::memcpy(dst + 3 * k, src + 4 * k, 4);
        dst[3 * k] = src[4 * k];
        dst[3 * k + 1] = src[4 * k + 1];
        dst[3 * k + 2] = src[4 * k + 2];
        ++k;
        continue;
      }
    }
    if (m[k]) {
      dst[3 * k] = src[4 * k];
      dst[3 * k + 1] = src[4 * k + 1];
      dst[3 * k + 2] = src[4 * k + 2];
    }
    ++k;
  }
}

// out = (src * a + dst * (255 - a) + 127) / 255 with a = weight[k], or, when
// weight is null, a = the source's alpha where the mask m is set and 0 elsewhere.
void blend_weighted(const uint8_t* __restrict src, const uint8_t* __restrict weight, const uint8_t* __restrict m,
                    uint8_t* __restrict dst, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const uint32_t a = weight ? weight[k] : (m[k] ? src[4 * k + 3] : 0u);
    if (a == 0) continue;
    const uint32_t ia = 255 - a;
    for (int c = 0; c < 3; ++c) dst[3 * k + c] = static_cast<uint8_t>(div255(src[4 * k + c] * a + dst[3 * k + c] * ia + 127));
  }
}

// Maps the pages of a fresh output that is about to be written completely in
// one system call (Linux >= 5.14: MADV_POPULATE_WRITE) instead of one page
// fault per 4 KiB: fresh output buffers otherwise cost as much as the
// compositing. Elsewhere (or on older kernels) this does nothing.
void prefault(uint8_t* p, int64_t n) {
#if defined(__linux__)
  constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE
  constexpr uintptr_t kPage = 4096;
  if (n < static_cast<int64_t>(16 * kPage)) return;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(n)) & ~(kPage - 1);
  if (e <= a) return;
  // Reused memory is mapped already, and walking its page tables costs more
  // than it saves: look at the last page first (the first one holds the
  // allocator's header, so it is mapped even in a fresh block).
  unsigned char resident = 0;
  if (mincore(reinterpret_cast<void*>(e - kPage), kPage, &resident) == 0 && (resident & 1)) return;
  (void)madvise(reinterpret_cast<void*>(a), e - a, kPopulateWrite);
#else
  (void)p;
  (void)n;
#endif
}

struct Live {
  Source source;
  int64_t index;
  int64_t slot;
  Box box;
  int64_t area;
  bool alive;
};

void scene(const CompositeScene& s, const CompositeOptions& o, CompositeResult& res, Scratch& sc, bool stream) {
  const CompositeKernels& K = composite_kernels_for(o.isa);
  const int64_t H = s.h, W = s.w, HW = H * W;
  const int64_t R = s.real_count(), P = static_cast<int64_t>(s.pastes.size());
  if (HW > 0) {
    prefault(s.out_image, HW * 3);
    if (stream) stream_copy(s.out_image, s.image, HW * 3);
    else std::memcpy(s.out_image, s.image, static_cast<size_t>(HW * 3));
  }
  std::vector<uint8_t*> slots = s.out_masks;
  if (s.crop_masks) {
    sc.slots.resize(static_cast<size_t>((R + P) * HW));
    slots.resize(static_cast<size_t>(R + P));
    for (int64_t k = 0; k < R + P; ++k) slots[static_cast<size_t>(k)] = sc.slots.data() + k * HW;
  }
  const bool fresh_outputs = !s.crop_masks;  // scratch is already mapped
  const bool nt = fresh_outputs && stream;
  std::vector<Live> live;
  live.reserve(static_cast<size_t>(R + P));
  std::vector<CompositeDrop> drops;

  // Real instances: normalised copy, area and box in one pass.
  for (int64_t r = 0; r < R; ++r) {
    uint8_t* out = slots[static_cast<size_t>(r)];
    Live L{Source::Real, r, r, Box{}, 0, true};
    if (fresh_outputs) prefault(out, HW);
    if (!s.box_only) {
      const uint8_t* in = s.masks[static_cast<size_t>(r)];
      Extent e;
      for (int64_t y = 0; y < H; ++y) {
        uint8_t* row = out + y * W;
        const int64_t c = nt ? normalise_stream(in + y * W, row, W) : normalise_copy(in + y * W, row, W);
        if (c) {
          L.area += c;
          e.add_row(in + y * W, W, 0, y);  // the input's nonzero bytes are the output's ones
        }
      }
      L.box = e.box();
    } else {
      const double* b = &s.boxes[static_cast<size_t>(4 * r)];
      const int64_t x0 = composite_round_clamp(b[0], 0, W), x1 = composite_round_clamp(b[0] + b[2], 0, W);
      const int64_t y0 = composite_round_clamp(b[1], 0, H), y1 = composite_round_clamp(b[1] + b[3], 0, H);
      if (x1 > x0 && y1 > y0) {
        L.box = Box{x0, y0, x1 - x0, y1 - y0};
        L.area = L.box.w * L.box.h;
        if (y0 > 0) std::memset(out, 0, static_cast<size_t>(y0 * W));
        for (int64_t y = y0; y < y1; ++y) {
          uint8_t* row = out + y * W;
          std::memset(row, 0, static_cast<size_t>(x0));
          std::memset(row + x0, 1, static_cast<size_t>(x1 - x0));
          std::memset(row + x1, 0, static_cast<size_t>(W - x1));
        }
        if (y1 < H) std::memset(out + y1 * W, 0, static_cast<size_t>((H - y1) * W));
      }
    }
    if (L.area == 0) {
      L.alive = false;
      drops.push_back({Source::Real, r, DropReason::Empty});
    }
    live.push_back(L);
  }

  std::vector<float>& kern = sc.kernel;
  if (o.blend == BlendMode::Gaussian) composite_gaussian_kernel(o.sigma, kern);
  const int64_t rad = static_cast<int64_t>(kern.size() / 2);
  std::vector<int64_t> removed;

  for (int64_t p = 0; p < P; ++p) {
    const PasteSpec& ps = s.pastes[static_cast<size_t>(p)];
    const int64_t slot = R + p;
    auto skip = [&](DropReason why) { drops.push_back({Source::Pasted, p, why}); };
    if (ps.target_w == 0 || ps.target_h == 0) {
      skip(DropReason::ZeroSize);
      continue;
    }
    if (ps.width == 0 || ps.height == 0) {
      skip(DropReason::EmptyCrop);
      continue;
    }
    const int64_t tw = ps.target_w, th = ps.target_h;
    const int64_t x0 = static_cast<int64_t>(std::floor(ps.cx - static_cast<double>(tw) / 2 + 0.5));
    const int64_t y0 = static_cast<int64_t>(std::floor(ps.cy - static_cast<double>(th) / 2 + 0.5));
    const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min<int64_t>(x0 + tw, W);
    const int64_t ya = std::max<int64_t>(y0, 0), yb = std::min<int64_t>(y0 + th, H);
    const bool clipped = xa != x0 || ya != y0 || xb != x0 + tw || yb != y0 + th;
    if (xa >= xb || ya >= yb) {
      skip(DropReason::ClippedOut);
      continue;
    }
    const int64_t rw = xb - xa, rh = yb - ya, rn = rw * rh;
    // Pass 1: the resized window and its mask, extent and area.
    sc.mask.resize(static_cast<size_t>(rn));
    uint8_t* m = sc.mask.data();
    const uint8_t* src = nullptr;
    int64_t sstride = rw * 4;  // bytes per row of `src`
    int64_t soff = 0;          // byte offset of the rectangle's first pixel in `src`
    int64_t ej0 = xa - x0, ej1 = xb - x0, ei0 = ya - y0, ei1 = yb - y0;  // window in instance coordinates
    if (o.blend == BlendMode::Gaussian) {
      ej0 = std::max<int64_t>(0, ej0 - rad);
      ej1 = std::min<int64_t>(tw, ej1 + rad);
      ei0 = std::max<int64_t>(0, ei0 - rad);
      ei1 = std::min<int64_t>(th, ei1 + rad);
      sstride = (ej1 - ej0) * 4;
      soff = ((ya - y0) - ei0) * sstride + ((xa - x0) - ej0) * 4;
    }
    sc.rgba.resize(static_cast<size_t>((ej1 - ej0) * (ei1 - ei0) * 4));
    resize_window(ps, ej0, ej1, ei0, ei1, sc.rgba.data(), sc, K);
    src = sc.rgba.data() + soff;
    Extent ext;
    int64_t area = 0;
    for (int64_t y = 0; y < rh; ++y) {
      uint8_t* mr = m + y * rw;
      alpha_mask(src + y * sstride, mr, rw, o.mask_threshold);
      const int64_t c = count_ones(mr, rw);
      if (c) {
        area += c;
        ext.add_row(mr, rw, xa, ya + y);
      }
    }
    if (area == 0) {
      skip(clipped ? DropReason::ClippedOut : DropReason::EmptyAlpha);
      continue;
    }
    // Blend.
    uint8_t* img = s.out_image;
    if (o.blend == BlendMode::Basic) {
      for (int64_t y = 0; y < rh; ++y)
        blend_basic(src + y * sstride, m + y * rw, img + ((ya + y) * W + xa) * 3, rw);
    } else if (o.blend == BlendMode::Alpha) {
      for (int64_t y = 0; y < rh; ++y)
        blend_weighted(src + y * sstride, nullptr, m + y * rw, img + ((ya + y) * W + xa) * 3, rw);
    } else {
      // Weight = round(255 * (G * m)) inside the mask, m over the whole window.
      const int64_t ew = ej1 - ej0, eh = ei1 - ei0;
      sc.blur.assign(static_cast<size_t>(ew * eh), 0.f);
      sc.blur_tmp.assign(static_cast<size_t>(ew * eh), 0.f);
      const uint8_t* er = sc.rgba.data();
      const int thr = o.mask_threshold;
      for (int64_t i = 0; i < ew * eh; ++i) sc.blur[static_cast<size_t>(i)] = er[4 * i + 3] >= thr ? 1.f : 0.f;
      const float* kp = kern.data();
      for (int64_t y = 0; y < eh; ++y)
        for (int64_t x = 0; x < ew; ++x) {
          float acc = 0;
          const int64_t lo = std::max<int64_t>(-rad, -x), hi = std::min<int64_t>(rad, ew - 1 - x);
          for (int64_t t = lo; t <= hi; ++t) acc += kp[t + rad] * sc.blur[static_cast<size_t>(y * ew + x + t)];
          sc.blur_tmp[static_cast<size_t>(y * ew + x)] = acc;
        }
      std::vector<uint8_t> wrow(static_cast<size_t>(rw));
      for (int64_t y = 0; y < rh; ++y) {
        const int64_t ey = (ya - y0) - ei0 + y;
        for (int64_t x = 0; x < rw; ++x) {
          const int64_t ex = (xa - x0) - ej0 + x;
          if (!m[y * rw + x]) {
            wrow[static_cast<size_t>(x)] = 0;
            continue;
          }
          float acc = 0;
          const int64_t lo = std::max<int64_t>(-rad, -ey), hi = std::min<int64_t>(rad, eh - 1 - ey);
          for (int64_t t = lo; t <= hi; ++t) acc += kp[t + rad] * sc.blur_tmp[static_cast<size_t>((ey + t) * ew + ex)];
          wrow[static_cast<size_t>(x)] = static_cast<uint8_t>(std::min(255.f, std::floor(acc * 255.f + 0.5f)));
        }
        blend_weighted(src + y * sstride, wrow.data(), nullptr, img + ((ya + y) * W + xa) * 3, rw);
      }
    }
    // Occlusion of the earlier live instances whose box meets the rectangle.
    removed.assign(live.size(), 0);
    for (size_t k = 0; k < live.size(); ++k) {
      Live& L = live[k];
      if (!L.alive) continue;
      const int64_t kx0 = std::max(xa, L.box.x), kx1 = std::min(xb, L.box.x + L.box.w);
      const int64_t ky0 = std::max(ya, L.box.y), ky1 = std::min(yb, L.box.y + L.box.h);
      if (kx0 >= kx1 || ky0 >= ky1) continue;
      uint8_t* km = slots[static_cast<size_t>(L.slot)];
      const int64_t n = kx1 - kx0;
      int64_t rem = 0;
      for (int64_t y = ky0; y < ky1; ++y) {
        uint8_t* __restrict d = km + y * W + kx0;
        const uint8_t* __restrict mm = m + (y - ya) * rw + (kx0 - xa);
        uint32_t cnt = 0;
        for (int64_t x = 0; x < n; ++x) {
          cnt += d[x] & mm[x];
          d[x] &= static_cast<uint8_t>(~mm[x]);
        }
        rem += cnt;
      }
      removed[k] = rem;
    }
    for (size_t k = 0; k < live.size(); ++k) {
      if (!removed[k]) continue;
      Live& L = live[k];
      L.area -= removed[k];
      const Box before = L.box;
      if (L.area == 0) {
        L.alive = false;
        drops.push_back({L.source, L.index, DropReason::Empty});
        continue;
      }
      const uint8_t* km = slots[static_cast<size_t>(L.slot)];
      Extent e;
      for (int64_t y = before.y; y < before.y + before.h; ++y) e.add_row(km + y * W + before.x, before.w, before.x, y);
      L.box = e.box();
      const int64_t d = std::max({std::llabs(L.box.x - before.x), std::llabs(L.box.y - before.y),
                                  std::llabs((L.box.x + L.box.w) - (before.x + before.w)),
                                  std::llabs((L.box.y + L.box.h) - (before.y + before.h))});
      if (!(d <= o.keep_max_shift || L.area > o.keep_min_area)) {
        L.alive = false;
        drops.push_back({L.source, L.index, DropReason::Occluded});
      }
    }
    // The new instance's full-frame mask.
    uint8_t* nm = slots[static_cast<size_t>(slot)];
    if (fresh_outputs) prefault(nm, HW);
    if (nt) {
      stream_zero(nm, ya * W);
      sc.row.resize(static_cast<size_t>(W));
      uint8_t* rb = sc.row.data();
      std::memset(rb, 0, static_cast<size_t>(W));
      for (int64_t y = ya; y < yb; ++y) {
        std::memcpy(rb + xa, m + (y - ya) * rw, static_cast<size_t>(rw));
        stream_copy(nm + y * W, rb, W);
      }
      stream_zero(nm + yb * W, (H - yb) * W);
    } else {
    if (ya > 0) std::memset(nm, 0, static_cast<size_t>(ya * W));
    for (int64_t y = ya; y < yb; ++y) {
      uint8_t* row = nm + y * W;
      if (xa > 0) std::memset(row, 0, static_cast<size_t>(xa));
      std::memcpy(row + xa, m + (y - ya) * rw, static_cast<size_t>(rw));
      if (xb < W) std::memset(row + xb, 0, static_cast<size_t>(W - xb));
    }
    if (yb < H) std::memset(nm + yb * W, 0, static_cast<size_t>((H - yb) * W));
    }
    live.push_back(Live{Source::Pasted, p, slot, ext.box(), area, true});
  }

#if GENAUG_COMPOSITE_SSE2
  if (nt) _mm_sfence();  // the stream stores are visible before the results are handed over
#endif
  res.instances.clear();
  for (const Live& L : live) {
    if (!L.alive) continue;
    res.instances.push_back(CompositeInstance{L.source, L.index, L.slot, L.box, L.area, {}});
    if (s.crop_masks) {
      std::vector<uint8_t>& c = res.instances.back().crop;
      c.resize(static_cast<size_t>(L.box.w * L.box.h));
      const uint8_t* m = slots[static_cast<size_t>(L.slot)];
      for (int64_t y = 0; y < L.box.h; ++y)
        std::memcpy(c.data() + y * L.box.w, m + (L.box.y + y) * W + L.box.x, static_cast<size_t>(L.box.w));
    }
  }
  composite_sort_drops(drops);
  res.dropped = std::move(drops);
}

}  // namespace

int64_t composite_round_clamp(double v, int64_t lo, int64_t hi) {
  const double r = std::floor(v + 0.5);
  if (!(r > static_cast<double>(lo))) return lo;
  if (r > static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(r);
}

void composite_gaussian_kernel(double sigma, std::vector<float>& k) {
  const int rad = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  k.assign(static_cast<size_t>(2 * rad + 1), 0.f);
  double sum = 0;
  std::vector<double> d(k.size());
  for (int i = -rad; i <= rad; ++i) sum += d[static_cast<size_t>(i + rad)] = std::exp(-(i * i) / (2 * sigma * sigma));
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(d[i] / sum);
}

void composite_sort_drops(std::vector<CompositeDrop>& drops) {
  std::stable_sort(drops.begin(), drops.end(), [](const CompositeDrop& a, const CompositeDrop& b) {
    if (a.source != b.source) return a.source < b.source;
    return a.index < b.index;
  });
}

void composite_check_options(const CompositeOptions& o) {
  if (!(o.sigma > 0 && o.sigma <= 64)) fail("E_RANGE", "option sigma must be in (0, 64], got ", o.sigma);
  if (o.keep_max_shift < 0) fail("E_RANGE", "option keepMaxShift must be >= 0, got ", o.keep_max_shift);
  if (o.keep_min_area < 0) fail("E_RANGE", "option keepMinArea must be >= 0, got ", o.keep_min_area);
  if (o.threads < 0 || o.threads > 256) fail("E_RANGE", "option threads must be in [0, 256], got ", o.threads);
  if (o.mask_threshold < 1 || o.mask_threshold > 255)
    fail("E_RANGE", "option maskThreshold must be an integer in [1, 255], got ", o.mask_threshold);
}

namespace {
void check_outputs(const CompositeScene& s, const char* what) {
  const size_t slots = s.crop_masks ? 0 : static_cast<size_t>(s.real_count()) + s.pastes.size();
  if (s.out_masks.size() != slots) fail("E_SHAPE", what, ": ", s.out_masks.size(), " output mask slots for ", slots, " instances");
  const bool any = s.h > 0 && s.w > 0;
  if (any && !s.out_image) fail("E_ARGUMENT", what, ": the output image is missing");
  for (uint8_t* m : s.out_masks)
    if (any && !m) fail("E_ARGUMENT", what, ": an output mask slot is missing");
}
}  // namespace

void composite_check(const CompositeScene& s, const char* what) {
  check_mask_size(s.h, s.w, what);
  const int64_t hw = s.h * s.w;
  if (s.image_bytes >= 0 && s.image_bytes != hw * 3)
    fail("E_SHAPE", what, ".image has ", s.image_bytes, " bytes but ", s.h, " x ", s.w, " x 3 = ", hw * 3);
  if (s.h > 0 && s.w > 0 && !s.image) fail("E_ARGUMENT", what, ": image data is missing");
  if (!s.mask_bytes.empty() && s.mask_bytes.size() != s.masks.size())
    fail("E_ARGUMENT", what, ": ", s.mask_bytes.size(), " mask lengths for ", s.masks.size(), " masks");
  for (size_t r = 0; r < s.mask_bytes.size(); ++r)
    if (s.mask_bytes[r] != hw)
      fail("E_SHAPE", what, ".masks[", r, "] has ", s.mask_bytes[r], " bytes but the image is ", s.h, " x ", s.w, " = ", hw);
  for (size_t r = 0; r < s.masks.size(); ++r)
    if (hw > 0 && !s.masks[r]) fail("E_ARGUMENT", what, ".masks[", r, "] data is missing");
  if (s.box_only) {
    if (!s.masks.empty()) fail("E_ARGUMENT", what, ": a box-only scene takes boxes, not masks");
    if (s.boxes.size() % 4) fail("E_SHAPE", what, ": boxes has ", s.boxes.size(), " numbers, not a multiple of 4");
    for (size_t i = 0; i < s.boxes.size(); ++i) {
      const double v = s.boxes[i];
      if (!std::isfinite(v) || std::fabs(v) > kMaxCentre)
        fail("E_RANGE", what, ": boxes[", i / 4, "][", i % 4, "] must be finite with |v| <= 1e12, got ", v);
      if (i % 4 >= 2 && v < 0) fail("E_RANGE", what, ": boxes[", i / 4, "] has a negative width or height (", v, ")");
    }
  } else if (!s.boxes.empty()) {
    fail("E_ARGUMENT", what, ": boxes given but the scene is not box-only");
  }
  for (size_t i = 0; i < s.pastes.size(); ++i) {
    const PasteSpec& p = s.pastes[i];
    if (p.width < 0 || p.height < 0 || p.width > kMaxCropSide || p.height > kMaxCropSide)
      fail("E_RANGE", what, ": instances[", i, "] crop is ", p.width, " x ", p.height, "; each side must be in [0, ", kMaxCropSide, "]");
    if (p.rgba_bytes >= 0 && p.rgba_bytes != p.width * p.height * 4)
      fail("E_SHAPE", what, ".instances[", i, "].rgba has ", p.rgba_bytes, " bytes but ", p.height, " x ", p.width, " x 4 = ",
           p.width * p.height * 4);
    if (p.width * p.height > 0 && !p.rgba) fail("E_ARGUMENT", what, ": instances[", i, "] rgba data is missing");
    if (p.target_w < 0 || p.target_h < 0 || p.target_w > kMaxTargetSide || p.target_h > kMaxTargetSide)
      fail("E_RANGE", what, ": instances[", i, "] target size is ", p.target_w, " x ", p.target_h,
           "; each side must be in [0, ", kMaxTargetSide, "]");
    if (!std::isfinite(p.cx) || !std::isfinite(p.cy) || std::fabs(p.cx) > kMaxCentre || std::fabs(p.cy) > kMaxCentre)
      fail("E_RANGE", what, ": instances[", i, "] centre (", p.cx, ", ", p.cy, ") must be finite with |v| <= 1e12");
  }
}

CompositeResult composite_scene(const CompositeScene& s, const CompositeOptions& o) {
  composite_check_options(o);
  composite_check(s);
  check_outputs(s, "scene");
  CompositeResult r;
  Scratch sc;
  scene(s, o, r, sc, output_bytes(s) >= kStreamMinBytes);
  return r;
}

void composite_check_batch(const std::vector<CompositeScene>& scenes, const CompositeOptions& o) {
  composite_check_options(o);
  for (size_t i = 0; i < scenes.size(); ++i) {
    const std::string what = "scenes[" + std::to_string(i) + "]";
    composite_check(scenes[i], what.c_str());
    check_outputs(scenes[i], what.c_str());
  }
}

std::vector<CompositeResult> composite_batch(const std::vector<CompositeScene>& scenes, const CompositeOptions& o) {
  composite_check_batch(scenes, o);
  const int64_t n = static_cast<int64_t>(scenes.size());
  std::vector<CompositeResult> out(scenes.size());
  const int T = mask_threads(o.threads, n);
  std::vector<Scratch> scratch(static_cast<size_t>(T));
  std::atomic<int64_t> next{0};
  int64_t total = 0;
  for (const CompositeScene& s : scenes) total += output_bytes(s);
  const bool stream = total >= kStreamMinBytes;
  run_threads(T, [&](int tid) {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      scene(scenes[static_cast<size_t>(i)], o, out[static_cast<size_t>(i)], scratch[static_cast<size_t>(tid)], stream);
    }
  });
  return out;
}

void composite_resize_window(const PasteSpec& p, int64_t u0, int64_t u1, int64_t v0, int64_t v1, uint8_t* out, Isa isa) {
  if (p.width <= 0 || p.height <= 0 || p.target_w <= 0 || p.target_h <= 0) fail("E_RANGE", "resize of an empty instance");
  if (u0 < 0 || v0 < 0 || u1 > p.target_w || v1 > p.target_h || u1 < u0 || v1 < v0)
    fail("E_RANGE", "resize window outside the target grid");
  Scratch sc;
  resize_window(p, u0, u1, v0, v1, out, sc, composite_kernels_for(isa));
}

}  // namespace genaug
