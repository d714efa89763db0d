#include "mask.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <sstream>

#include "cpu.h"
#include "error.h"
#include "parallel.h"
#include "rle.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace genaug {

namespace {

inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }
inline int clz64(uint64_t x) { return __builtin_clzll(x); }
inline int popcount64(uint64_t x) { return __builtin_popcountll(x); }

// A maximal horizontal span of foreground, columns [s, e).
struct Run {
  int32_t s, e;
};

// The runs of a mask, row by row: the runs of row r are run[row[r] .. row[r+1]).
struct Runs {
  int64_t h = 0, w = 0;
  std::vector<Run> run;
  std::vector<int64_t> row;
  void reset(int64_t hh, int64_t ww) {
    h = hh;
    w = ww;
    run.clear();
    row.assign(static_cast<size_t>(h) + 1, 0);
  }
};

// Per-thread scratch, reused from mask to mask.
struct Workspace {
  std::vector<uint64_t> bits;
  Runs a, b, bg, c;
  std::vector<int64_t> root, area;
  std::vector<uint8_t> flag;
};

// Appends the runs of one packed row.
void bits_runs(const uint64_t* bits, int64_t nw, int64_t w, std::vector<Run>& out) {
  uint64_t carry = 0;
  bool in = false;
  int32_t start = 0;
  for (int64_t i = 0; i < nw; ++i) {
    const uint64_t x = bits[i];
    uint64_t t = x ^ ((x << 1) | carry);
    carry = x >> 63;
    while (t) {
      const int32_t col = static_cast<int32_t>(i * 64 + ctz64(t));
      if (!in) {
        start = col;
      } else {
        out.push_back({start, col});
      }
      in = !in;
      t &= t - 1;
    }
  }
  if (in) out.push_back({start, static_cast<int32_t>(w)});
}

void runs_of_mask(const uint8_t* m, int64_t h, int64_t w, bool invert, Runs& R, std::vector<uint64_t>& bits) {
  R.reset(h, w);
  const int64_t nw = (w + 63) / 64;
  bits.resize(static_cast<size_t>(nw));
  for (int64_t r = 0; r < h; ++r) {
    R.row[r] = static_cast<int64_t>(R.run.size());
    pack_mask_row(m + r * w, w, bits.data(), invert);
    bits_runs(bits.data(), nw, w, R.run);
  }
  R.row[h] = static_cast<int64_t>(R.run.size());
}

// root[i] = the smallest run index of run i's component (runs are numbered in
// row-major order, so that run holds the component's first pixel).
// Returns the number of components.
int64_t label_runs(const Runs& R, int conn, std::vector<int64_t>& root) {
  const int64_t n = static_cast<int64_t>(R.run.size());
  root.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) root[i] = i;
  auto find = [&](int64_t x) {
    while (root[x] != x) {
      root[x] = root[root[x]];
      x = root[x];
    }
    return x;
  };
  const int32_t d = conn == 8 ? 1 : 0;
  for (int64_t r = 1; r < R.h; ++r) {
    const int64_t p0 = R.row[r - 1], p1 = R.row[r], c1 = R.row[r + 1];
    int64_t j = p0;
    for (int64_t i = p1; i < c1; ++i) {
      const int32_t cs = R.run[i].s, ce = R.run[i].e;
      // 8-connected: [ps, pe) touches [cs, ce) when ps <= ce and pe >= cs;
      // 4-connected: when ps < ce and pe > cs.
      while (j < p1 && R.run[j].e + d <= cs) ++j;
      for (int64_t k = j; k < p1 && R.run[k].s < ce + d; ++k) {
        const int64_t a = find(k), b = find(i);
        if (a < b) root[b] = a;
        else if (b < a) root[a] = b;
      }
    }
  }
  int64_t comps = 0;
  for (int64_t i = 0; i < n; ++i) {
    root[i] = root[root[i]];
    if (root[i] == i) ++comps;
  }
  return comps;
}

// The runs of the largest component (ties: the first in row-major order).
int64_t keep_largest(const Runs& R, int conn, Runs& out, Workspace& ws, int64_t* kept) {
  const int64_t comps = label_runs(R, conn, ws.root);
  const int64_t n = static_cast<int64_t>(R.run.size());
  ws.area.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) ws.area[ws.root[i]] += R.run[i].e - R.run[i].s;
  int64_t best = -1, best_area = 0;
  for (int64_t i = 0; i < n; ++i)
    if (ws.root[i] == i && ws.area[i] > best_area) {
      best = i;
      best_area = ws.area[i];
    }
  out.reset(R.h, R.w);
  for (int64_t r = 0; r < R.h; ++r) {
    out.row[r] = static_cast<int64_t>(out.run.size());
    for (int64_t i = R.row[r]; i < R.row[r + 1]; ++i)
      if (ws.root[i] == best) out.run.push_back(R.run[i]);
  }
  out.row[R.h] = static_cast<int64_t>(out.run.size());
  if (kept) *kept = best_area;
  return comps;
}

void complement_runs(const Runs& in, Runs& out) {
  out.reset(in.h, in.w);
  const int32_t w = static_cast<int32_t>(in.w);
  for (int64_t r = 0; r < in.h; ++r) {
    out.row[r] = static_cast<int64_t>(out.run.size());
    int32_t prev = 0;
    for (int64_t i = in.row[r]; i < in.row[r + 1]; ++i) {
      if (in.run[i].s > prev) out.run.push_back({prev, in.run[i].s});
      prev = in.run[i].e;
    }
    if (prev < w) out.run.push_back({prev, w});
  }
  out.row[in.h] = static_cast<int64_t>(out.run.size());
}

// Holes: background components (dual connectivity) that touch no border.
void fill_holes_runs(const Runs& fg, int conn, Runs& out, Workspace& ws) {
  complement_runs(fg, ws.bg);
  const Runs& bg = ws.bg;
  label_runs(bg, conn == 8 ? 4 : 8, ws.root);
  const int64_t n = static_cast<int64_t>(bg.run.size());
  ws.flag.assign(static_cast<size_t>(n), 0);
  for (int64_t r = 0; r < bg.h; ++r)
    for (int64_t i = bg.row[r]; i < bg.row[r + 1]; ++i)
      if (r == 0 || r == bg.h - 1 || bg.run[i].s == 0 || bg.run[i].e == bg.w) ws.flag[ws.root[i]] = 1;
  // The result is the complement of the background that reaches the border.
  out.reset(fg.h, fg.w);
  const int32_t w = static_cast<int32_t>(fg.w);
  for (int64_t r = 0; r < bg.h; ++r) {
    out.row[r] = static_cast<int64_t>(out.run.size());
    int32_t prev = 0;
    for (int64_t i = bg.row[r]; i < bg.row[r + 1]; ++i) {
      if (!ws.flag[ws.root[i]]) continue;
      if (bg.run[i].s > prev) out.run.push_back({prev, bg.run[i].s});
      prev = bg.run[i].e;
    }
    if (prev < w) out.run.push_back({prev, w});
  }
  out.row[fg.h] = static_cast<int64_t>(out.run.size());
}

void runs_to_mask(const Runs& R, uint8_t* out) {
  if (R.w == 0) return;
  for (int64_t r = 0; r < R.h; ++r) {
    uint8_t* row = out + r * R.w;
    std::memset(row, 0, static_cast<size_t>(R.w));
    for (int64_t i = R.row[r]; i < R.row[r + 1]; ++i)
      std::memset(row + R.run[i].s, 1, static_cast<size_t>(R.run[i].e - R.run[i].s));
  }
}

void runs_row_bits(const Runs& R, int64_t r, uint64_t* bits) {
  const int64_t nw = (R.w + 63) / 64;
  std::memset(bits, 0, static_cast<size_t>(nw) * sizeof(uint64_t));
  for (int64_t i = R.row[r]; i < R.row[r + 1]; ++i) {
    const int64_t s = R.run[i].s, e = R.run[i].e;  // e > s
    const int64_t ws = s >> 6, we = (e - 1) >> 6;
    const uint64_t first = ~uint64_t(0) << (s & 63);
    const uint64_t last = ~uint64_t(0) >> (63 - ((e - 1) & 63));
    if (ws == we) {
      bits[ws] |= first & last;
    } else {
      bits[ws] |= first;
      for (int64_t k = ws + 1; k < we; ++k) bits[k] = ~uint64_t(0);
      bits[we] |= last;
    }
  }
}

void runs_stats(const Runs& R, int64_t& area, Box& box) {
  area = 0;
  int64_t x0 = R.w, x1 = -1, y0 = -1, y1 = -1;
  for (int64_t r = 0; r < R.h; ++r) {
    const int64_t a = R.row[r], b = R.row[r + 1];
    if (a == b) continue;
    if (y0 < 0) y0 = r;
    y1 = r;
    x0 = std::min<int64_t>(x0, R.run[a].s);
    x1 = std::max<int64_t>(x1, R.run[b - 1].e - 1);
    for (int64_t i = a; i < b; ++i) area += R.run[i].e - R.run[i].s;
  }
  box = y0 < 0 ? Box{} : Box{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

// Runs fn(i, workspace) for i in [0, n) on the threads.
template <typename Fn>
void for_each_mask(int64_t n, int threads, Fn&& fn) {
  const int T = mask_threads(threads, n);
  std::vector<Workspace> ws(static_cast<size_t>(T));
  std::atomic<int64_t> next{0};
  run_threads(T, [&](int tid) {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      fn(i, ws[static_cast<size_t>(tid)]);
    }
  });
}

void check_batch(const MaskBatchView& m, const char* what) {
  if (m.n < 0) fail("E_SHAPE", what, ": the batch size must be >= 0, got ", m.n);
  check_mask_size(m.h, m.w, what);
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

int mask_threads(int threads, int64_t jobs) {
  int64_t T = threads > 0 ? threads : static_cast<int64_t>(hardware_threads());
  T = std::min<int64_t>(T, std::max<int64_t>(jobs, 1));
  return static_cast<int>(std::min<int64_t>(T, 256));
}

void check_mask_size(int64_t h, int64_t w, const char* what) {
  if (h < 0 || w < 0) fail("E_SHAPE", what, ": height and width must be >= 0, got ", h, " x ", w);
  if (h > kMaxMaskSide || w > kMaxMaskSide || (w > 0 && h > kMaxMaskPixels / w))
    fail("E_LIMIT", what, ": ", h, " x ", w, " is over the limit of 2^32 - 1 pixels (COCO RLE counts are 32-bit)");
}

void check_image(const ImageView& img, const char* what) {
  if (img.channels != 3 && img.channels != 4)
    fail("E_SHAPE", what, ": images must have 3 (RGB) or 4 (RGBA) channels, got ", img.channels);
  check_mask_size(img.h, img.w, what);
}

void check_connectivity(int connectivity) {
  if (connectivity != 4 && connectivity != 8)
    fail("E_RANGE", "connectivity must be 4 or 8, got ", connectivity);
}

void pack_mask_row(const uint8_t* row, int64_t w, uint64_t* bits, bool invert) {
  const int64_t nw = (w + 63) / 64;
  for (int64_t i = 0; i < nw; ++i) {
    const int64_t base = i * 64;
    const int64_t n = std::min<int64_t>(64, w - base);
    uint64_t word = 0;
    if (n == 64) {
#if defined(__SSE2__)
      const __m128i zero = _mm_setzero_si128();
      for (int q = 0; q < 4; ++q) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + base + 16 * q));
        const unsigned z = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)));
        word |= static_cast<uint64_t>(~z & 0xFFFFu) << (16 * q);
      }
#else
      for (int b = 0; b < 64; ++b) word |= static_cast<uint64_t>(row[base + b] != 0) << b;
#endif
      if (invert) word = ~word;
    } else {
      for (int64_t b = 0; b < n; ++b) word |= static_cast<uint64_t>(row[base + b] != 0) << b;
      if (invert) word = ~word & ((uint64_t(1) << n) - 1);
    }
    bits[i] = word;
  }
}

void mask_invert(const MaskBatchView& m, uint8_t* out, int threads) {
  check_batch(m, "mask");
  const int64_t total = m.n * m.h * m.w;
  constexpr int64_t kChunk = 1 << 20;
  const int64_t chunks = (total + kChunk - 1) / kChunk;
  std::atomic<int64_t> next{0};
  run_threads(mask_threads(threads, chunks), [&](int) {
    for (;;) {
      const int64_t c = next.fetch_add(1);
      if (c >= chunks) return;
      const int64_t a = c * kChunk, b = std::min(total, a + kChunk);
      const uint8_t* src = m.data + a;
      uint8_t* dst = out + a;
      for (int64_t i = 0; i < b - a; ++i) dst[i] = src[i] == 0;
    }
  });
}

void mask_largest_component(const MaskBatchView& m, int connectivity, uint8_t* out, int64_t* kept_area,
                            int64_t* components, int threads) {
  check_batch(m, "mask");
  check_connectivity(connectivity);
  const int64_t px = m.h * m.w;
  for_each_mask(m.n, threads, [&](int64_t i, Workspace& ws) {
    runs_of_mask(m.data + i * px, m.h, m.w, false, ws.a, ws.bits);
    int64_t kept = 0;
    const int64_t comps = keep_largest(ws.a, connectivity, ws.b, ws, &kept);
    runs_to_mask(ws.b, out + i * px);
    if (kept_area) kept_area[i] = kept;
    if (components) components[i] = comps;
  });
}

void mask_fill_holes(const MaskBatchView& m, int connectivity, uint8_t* out, int threads) {
  check_batch(m, "mask");
  check_connectivity(connectivity);
  const int64_t px = m.h * m.w;
  for_each_mask(m.n, threads, [&](int64_t i, Workspace& ws) {
    runs_of_mask(m.data + i * px, m.h, m.w, false, ws.a, ws.bits);
    fill_holes_runs(ws.a, connectivity, ws.c, ws);
    runs_to_mask(ws.c, out + i * px);
  });
}

void mask_stats(const MaskBatchView& m, int64_t* area, Box* box, int threads) {
  check_batch(m, "mask");
  const int64_t px = m.h * m.w, nw = (m.w + 63) / 64;
  for_each_mask(m.n, threads, [&](int64_t i, Workspace& ws) {
    ws.bits.resize(static_cast<size_t>(nw));
    int64_t a = 0, x0 = m.w, x1 = -1, y0 = -1, y1 = -1;
    for (int64_t r = 0; r < m.h; ++r) {
      pack_mask_row(m.data + i * px + r * m.w, m.w, ws.bits.data());
      int64_t first = -1, last = -1;
      for (int64_t k = 0; k < nw; ++k) {
        const uint64_t x = ws.bits[k];
        if (!x) continue;
        a += popcount64(x);
        if (first < 0) first = k * 64 + ctz64(x);
        last = k * 64 + 63 - clz64(x);
      }
      if (first < 0) continue;
      if (y0 < 0) y0 = r;
      y1 = r;
      x0 = std::min(x0, first);
      x1 = std::max(x1, last);
    }
    if (area) area[i] = a;
    if (box) box[i] = y0 < 0 ? Box{} : Box{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  });
}

void mask_iou(const MaskBatchView& a, const MaskBatchView& b, double* out, int threads) {
  check_batch(a, "mask a");
  check_batch(b, "mask b");
  if (a.n != b.n || a.h != b.h || a.w != b.w)
    fail("E_SHAPE", "IoU needs masks of one size: ", a.n, " x ", a.h, " x ", a.w, " vs ", b.n, " x ", b.h, " x ", b.w);
  const int64_t px = a.h * a.w, nw = (a.w + 63) / 64;
  for_each_mask(a.n, threads, [&](int64_t i, Workspace& ws) {
    ws.bits.resize(static_cast<size_t>(2 * nw));
    uint64_t* ba = ws.bits.data();
    uint64_t* bb = ba + nw;
    int64_t inter = 0, uni = 0;
    for (int64_t r = 0; r < a.h; ++r) {
      pack_mask_row(a.data + i * px + r * a.w, a.w, ba);
      pack_mask_row(b.data + i * px + r * a.w, a.w, bb);
      for (int64_t k = 0; k < nw; ++k) {
        inter += popcount64(ba[k] & bb[k]);
        uni += popcount64(ba[k] | bb[k]);
      }
    }
    out[i] = uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
  });
}

Box mask_crop_rgba(const ImageView& img, const uint8_t* mask, const Box* box, std::vector<uint8_t>& out) {
  check_image(img, "image");
  Box b;
  if (box) {
    b = *box;
    if (b.x < 0 || b.y < 0 || b.w < 0 || b.h < 0 || b.x > img.w - b.w || b.y > img.h - b.h)
      fail("E_RANGE", "crop box [", b.x, ", ", b.y, ", ", b.w, ", ", b.h, "] is not inside the ", img.w, " x ",
           img.h, " image");
  } else {
    int64_t area = 0;
    mask_stats(MaskBatchView{mask, 1, img.h, img.w}, &area, &b, 1);
  }
  out.assign(static_cast<size_t>(b.w * b.h * 4), 0);
  const int64_t C = img.channels;
  for (int64_t y = 0; y < b.h; ++y) {
    const uint8_t* src = img.data + ((b.y + y) * img.w + b.x) * C;
    const uint8_t* mk = mask + (b.y + y) * img.w + b.x;
    uint8_t* dst = out.data() + y * b.w * 4;
    for (int64_t x = 0; x < b.w; ++x) {
      dst[4 * x + 0] = src[C * x + 0];
      dst[4 * x + 1] = src[C * x + 1];
      dst[4 * x + 2] = src[C * x + 2];
      dst[4 * x + 3] = mk[x] ? 255 : 0;
    }
  }
  return b;
}

void corner_background(const ImageView& img, int tolerance, uint8_t* out) {
  check_image(img, "image");
  if (img.h < 1 || img.w < 1) fail("E_SHAPE", "image: the corner background needs at least 1 x 1 pixels, got ", img.h, " x ", img.w);
  if (tolerance < 0 || tolerance > 255) fail("E_RANGE", "tolerance must be in [0, 255], got ", tolerance);
  const int64_t h = img.h, w = img.w, C = img.channels;
  const int64_t cy[4] = {0, 0, h - 1, h - 1}, cx[4] = {0, w - 1, 0, w - 1};
  // Corners with the same colour share one flood fill.
  int group[4];
  uint8_t colour[4][3];
  int G = 0;
  for (int k = 0; k < 4; ++k) {
    const uint8_t* p = img.data + (cy[k] * w + cx[k]) * C;
    int g = 0;
    while (g < G && !(colour[g][0] == p[0] && colour[g][1] == p[1] && colour[g][2] == p[2])) ++g;
    if (g == G) {
      std::memcpy(colour[G], p, 3);
      ++G;
    }
    group[k] = g;
  }
  // lut[c][v] bit g: channel c value v is within tolerance of colour g.
  uint8_t lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      uint8_t bits = 0;
      for (int g = 0; g < G; ++g)
        if (std::abs(v - static_cast<int>(colour[g][c])) <= tolerance) bits |= static_cast<uint8_t>(1u << g);
      lut[c][v] = bits;
    }
  const int64_t nw = (w + 63) / 64;
  std::vector<uint8_t> code(static_cast<size_t>(w));
  std::vector<uint64_t> bits(static_cast<size_t>(nw));
  std::vector<Runs> R(static_cast<size_t>(G));
  for (int g = 0; g < G; ++g) R[g].reset(h, w);
  for (int64_t r = 0; r < h; ++r) {
    const uint8_t* p = img.data + r * w * C;
    for (int64_t x = 0; x < w; ++x) code[x] = lut[0][p[x * C]] & lut[1][p[x * C + 1]] & lut[2][p[x * C + 2]];
    for (int g = 0; g < G; ++g) {
      for (int64_t i = 0; i < nw; ++i) {
        uint64_t word = 0;
        const int64_t base = i * 64, n = std::min<int64_t>(64, w - base);
        for (int64_t b = 0; b < n; ++b) word |= static_cast<uint64_t>((code[base + b] >> g) & 1u) << b;
        bits[i] = word;
      }
      R[g].row[r] = static_cast<int64_t>(R[g].run.size());
      bits_runs(bits.data(), nw, w, R[g].run);
    }
  }
  std::memset(out, 0, static_cast<size_t>(h * w));
  std::vector<int64_t> root;
  for (int g = 0; g < G; ++g) {
    Runs& Rg = R[g];
    Rg.row[h] = static_cast<int64_t>(Rg.run.size());
    label_runs(Rg, 4, root);
    // The run holding each corner of this colour (the corner matches itself).
    int64_t seeds[4];
    int ns = 0;
    for (int k = 0; k < 4; ++k) {
      if (group[k] != g) continue;
      const int64_t r = cy[k];
      const int64_t i = cx[k] == 0 ? Rg.row[r] : Rg.row[r + 1] - 1;
      seeds[ns++] = root[i];
    }
    for (int64_t r = 0; r < h; ++r)
      for (int64_t i = Rg.row[r]; i < Rg.row[r + 1]; ++i) {
        const int64_t rt = root[i];
        bool hit = false;
        for (int s = 0; s < ns; ++s) hit |= seeds[s] == rt;
        if (hit) std::memset(out + r * w + Rg.run[i].s, 1, static_cast<size_t>(Rg.run[i].e - Rg.run[i].s));
      }
  }
}

PostResult post_process(const MaskBatchView& m, const PostOptions& opt, uint8_t* out) {
  check_batch(m, "mask");
  check_connectivity(opt.connectivity);
  if (opt.min_area < 0) fail("E_RANGE", "minArea must be >= 0, got ", opt.min_area);
  if (!(opt.min_fraction >= 0 && opt.min_fraction <= 1) || !(opt.max_fraction >= 0 && opt.max_fraction <= 1))
    fail("E_RANGE", "minFraction and maxFraction must lie in [0, 1], got ", opt.min_fraction, " and ",
         opt.max_fraction);
  const int64_t n = m.n, h = m.h, w = m.w, px = h * w;
  PostResult res;
  res.n = n;
  res.area.assign(static_cast<size_t>(n), 0);
  res.box.assign(static_cast<size_t>(n), Box{});
  res.components.assign(static_cast<size_t>(n), 0);
  res.ok.assign(static_cast<size_t>(n), 0);
  res.reason.assign(static_cast<size_t>(n), std::string());
  if (opt.rle == RleForm::Counts) res.counts.resize(static_cast<size_t>(n));
  if (opt.rle == RleForm::String) res.strings.resize(static_cast<size_t>(n));
  for_each_mask(n, opt.threads, [&](int64_t i, Workspace& ws) {
    runs_of_mask(m.data + i * px, h, w, opt.invert, ws.a, ws.bits);
    const Runs* cur = &ws.a;
    if (opt.largest) {
      res.components[i] = keep_largest(*cur, opt.connectivity, ws.b, ws, nullptr);
      cur = &ws.b;
    } else {
      res.components[i] = label_runs(*cur, opt.connectivity, ws.root);
    }
    if (opt.fill_holes) {
      fill_holes_runs(*cur, opt.connectivity, ws.c, ws);
      cur = &ws.c;
    }
    int64_t area = 0;
    runs_stats(*cur, area, res.box[i]);
    res.area[i] = area;
    const double frac = px > 0 ? static_cast<double>(area) / static_cast<double>(px) : 0.0;
    std::string why;
    if (area == 0 && opt.min_area > 0) why = "the mask is empty";
    else if (area < opt.min_area) why = "area " + std::to_string(area) + " is below minArea " + std::to_string(opt.min_area);
    else if (frac < opt.min_fraction) why = "area fraction " + fmt(frac) + " is below minFraction " + fmt(opt.min_fraction);
    else if (frac > opt.max_fraction) why = "area fraction " + fmt(frac) + " is above maxFraction " + fmt(opt.max_fraction);
    res.ok[i] = why.empty();
    res.reason[i] = std::move(why);
    if (out && opt.want_mask) runs_to_mask(*cur, out + i * px);
    if (opt.rle != RleForm::None) {
      std::vector<uint32_t> counts = rle_encode_packed(h, w, [&](int64_t r, uint64_t* bits) { runs_row_bits(*cur, r, bits); });
      if (opt.rle == RleForm::String) res.strings[i] = rle_to_string(counts.data(), counts.size());
      else res.counts[i] = std::move(counts);
    }
  });
  return res;
}

PostResult corner_foreground(const ImageView& img, int tolerance, const PostOptions& opt, uint8_t* out,
                             uint8_t* background) {
  check_image(img, "image");
  std::vector<uint8_t> own;
  if (!background) {
    own.resize(static_cast<size_t>(img.h * img.w));
    background = own.data();
  }
  corner_background(img, tolerance, background);
  PostOptions o = opt;
  o.invert = true;
  o.threads = 1;
  return post_process(MaskBatchView{background, 1, img.h, img.w}, o, out);
}

}  // namespace genaug
