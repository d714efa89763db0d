#include "rle.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "error.h"
#include "mask.h"
#include "parallel.h"

namespace genaug {

namespace {

inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }

// Transition events (column, row) of rows >= 1, bucketed by column afterwards.
struct Event {
  uint32_t col;
  uint32_t row;
};

std::vector<uint32_t> counts_from_positions(const std::vector<uint32_t>& pos, uint64_t total) {
  std::vector<uint32_t> counts;
  counts.reserve(pos.size() + 1);
  uint64_t prev = 0;
  for (uint32_t p : pos) {
    counts.push_back(static_cast<uint32_t>(p - prev));
    prev = p;
  }
  counts.push_back(static_cast<uint32_t>(total - prev));
  return counts;
}

// Walks two RLEs of the same size run by run (pycocotools' merge/iou loop).
// step(c, va, vb, last) is called for each stretch of c pixels where A has
// value va and B value vb; `last` is true for the final stretch.
template <typename Step>
void walk_pair(const RleRef& A, const RleRef& B, Step&& step) {
  uint64_t ca = A.m ? A.counts[0] : 0, cb = B.m ? B.counts[0] : 0;
  size_t a = 1, b = 1;
  bool va = false, vb = false;
  for (;;) {
    const uint64_t c = std::min(ca, cb);
    const bool pva = va, pvb = vb;
    ca -= c;
    if (ca == 0 && a < A.m) {
      ca = A.counts[a++];
      va = !va;
    }
    cb -= c;
    if (cb == 0 && b < B.m) {
      cb = B.counts[b++];
      vb = !vb;
    }
    // pycocotools stops when the current runs of both are used up (ct == 0);
    // that equals "nothing is left" for canonical RLEs, and is the correct
    // condition for RLEs with zero-length runs inside.
    const bool last = ca == 0 && cb == 0 && a >= A.m && b >= B.m;
    step(c, pva, pvb, va, vb, last);
    if (last) return;
  }
}

}  // namespace

void rle_check(const uint32_t* counts, size_t m, int64_t h, int64_t w, const char* what) {
  uint64_t sum = 0;
  for (size_t i = 0; i < m; ++i) sum += counts[i];
  const uint64_t total = static_cast<uint64_t>(h) * static_cast<uint64_t>(w);
  if (sum != total)
    fail("E_FORMAT", what, ": the counts sum to ", sum, " but the mask has h x w = ", h, " x ", w, " = ", total,
         " pixels");
}

std::vector<uint32_t> rle_encode_packed(int64_t h, int64_t w, const PackedRowFn& row) {
  check_mask_size(h, w, "mask");
  const uint64_t total = static_cast<uint64_t>(h) * static_cast<uint64_t>(w);
  if (total == 0) return {0};
  const int64_t nw = (w + 63) / 64;
  std::vector<uint64_t> first(nw), prev(nw), cur(nw);
  row(0, first.data());
  std::copy(first.begin(), first.end(), prev.begin());
  std::vector<Event> events;
  std::vector<uint32_t> per_col(static_cast<size_t>(w) + 1, 0);
  for (int64_t r = 1; r < h; ++r) {
    row(r, cur.data());
    for (int64_t i = 0; i < nw; ++i) {
      uint64_t d = cur[i] ^ prev[i];
      while (d) {
        const uint32_t c = static_cast<uint32_t>(i * 64 + ctz64(d));
        events.push_back({c, static_cast<uint32_t>(r)});
        ++per_col[c];
        d &= d - 1;
      }
    }
    std::swap(prev, cur);
  }
  // Row 0 of column c follows row h-1 of column c-1 (0 before column 0).
  std::vector<uint32_t> top;
  uint64_t carry = 0;
  for (int64_t i = 0; i < nw; ++i) {
    const uint64_t shifted = (prev[i] << 1) | carry;
    carry = prev[i] >> 63;
    uint64_t d = first[i] ^ shifted;
    if (i == nw - 1 && (w & 63) != 0) d &= (uint64_t(1) << (w & 63)) - 1;
    while (d) {
      const uint32_t c = static_cast<uint32_t>(i * 64 + ctz64(d));
      top.push_back(c);
      ++per_col[c];
      d &= d - 1;
    }
  }
  // Counting sort by column; row 0 first, then rows in increasing order.
  std::vector<uint32_t> start(static_cast<size_t>(w) + 1, 0);
  uint32_t acc = 0;
  for (int64_t c = 0; c < w; ++c) {
    start[c] = acc;
    acc += per_col[c];
  }
  std::vector<uint32_t> pos(acc);
  const uint64_t H = static_cast<uint64_t>(h);
  for (uint32_t c : top) pos[start[c]++] = static_cast<uint32_t>(c * H);
  for (const Event& e : events) pos[start[e.col]++] = static_cast<uint32_t>(e.col * H + e.row);
  return counts_from_positions(pos, total);
}

std::vector<uint32_t> rle_encode(const uint8_t* mask, int64_t h, int64_t w) {
  return rle_encode_packed(h, w, [&](int64_t r, uint64_t* bits) { pack_mask_row(mask + r * w, w, bits); });
}

std::string rle_to_string(const uint32_t* counts, size_t m) {
  std::string s;
  s.reserve(m * 2 + 8);
  for (size_t i = 0; i < m; ++i) {
    int64_t x = static_cast<int64_t>(counts[i]);
    if (i > 2) x -= static_cast<int64_t>(counts[i - 2]);
    bool more = true;
    while (more) {
      int c = static_cast<int>(x & 0x1f);
      x >>= 5;  // arithmetic shift (C++20 semantics; gcc and clang do this in C++17)
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

std::vector<uint32_t> rle_from_string(const char* s, size_t len, int64_t h, int64_t w, bool check) {
  std::vector<uint32_t> counts;
  counts.reserve(len / 2 + 1);
  size_t p = 0;
  while (p < len) {
    const size_t begin = p;
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= len)
        fail("E_FORMAT", "RLE string: the string ends inside the value that starts at byte ", begin,
             " (its last character has the continuation bit 0x20)");
      const unsigned ch = static_cast<unsigned char>(s[p]);
      if (ch < 48 || ch > 111)
        fail("E_FORMAT", "RLE string: byte ", p, " is ", ch, ch >= 32 && ch < 127 ? " ('" : "",
             ch >= 32 && ch < 127 ? std::string(1, static_cast<char>(ch)) : std::string(),
             ch >= 32 && ch < 127 ? "')" : "", ", outside '0'..'o' (48..111)");
      if (k >= 7)
        fail("E_FORMAT", "RLE string: the value that starts at byte ", begin,
             " has more than 7 characters (wider than 35 bits)");
      const unsigned c = ch - 48;
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(~uint64_t(0) << (5 * k));
    }
    const size_t m = counts.size();
    if (m > 2) x += static_cast<int64_t>(counts[m - 2]);
    if (x < 0 || x > 0xFFFFFFFFll)
      fail("E_FORMAT", "RLE string: count ", m, " (the value at byte ", begin, ") is ", x,
           ", outside [0, 2^32)");
    counts.push_back(static_cast<uint32_t>(x));
  }
  if (check) rle_check(counts.data(), counts.size(), h, w, "RLE string");
  return counts;
}

void rle_decode(const uint32_t* counts, size_t m, int64_t h, int64_t w, uint8_t* out) {
  check_mask_size(h, w, "mask");
  rle_check(counts, m, h, w, "RLE");
  const uint64_t total = static_cast<uint64_t>(h) * static_cast<uint64_t>(w);
  if (total == 0) return;
  std::memset(out, 0, total);
  const uint64_t H = static_cast<uint64_t>(h);
  const size_t W = static_cast<size_t>(w);
  // Toggles: the value at (r, c) is the XOR of the toggles at rows <= r of
  // column c, where the toggle at row 0 is the absolute value there.
  uint64_t pos = 0;
  for (size_t i = 0; i < m; ++i) {
    const uint64_t e = pos + counts[i];
    if ((i & 1) && e > pos) {
      uint64_t s = pos;
      while (s < e) {
        const uint64_t c = s / H;
        const uint64_t col_end = (c + 1) * H;
        const uint64_t seg_end = std::min(e, col_end);
        out[(s - c * H) * W + c] ^= 1;
        if (seg_end < col_end) out[(seg_end - c * H) * W + c] ^= 1;
        s = seg_end;
      }
    }
    pos = e;
  }
  for (int64_t r = 1; r < h; ++r) {
    uint8_t* row = out + static_cast<size_t>(r) * W;
    const uint8_t* up = row - W;
    for (size_t c = 0; c < W; ++c) row[c] ^= up[c];
  }
}

uint64_t rle_area(const uint32_t* counts, size_t m) {
  uint64_t a = 0;
  for (size_t i = 1; i < m; i += 2) a += counts[i];
  return a;
}

std::array<double, 4> rle_to_bbox(const uint32_t* counts, size_t m, int64_t h, int64_t w) {
  // 32-bit unsigned arithmetic, as in cocoapi, so unusual counts (zero-length
  // runs) give the same numbers pycocotools gives.
  const uint32_t hh = static_cast<uint32_t>(h), ww = static_cast<uint32_t>(w);
  const size_t mm = (m / 2) * 2;
  if (mm == 0 || hh == 0) return {0, 0, 0, 0};
  uint32_t xs = ww, ys = hh, xe = 0, ye = 0, cc = 0, xp = 0;
  for (size_t j = 0; j < mm; ++j) {
    cc += counts[j];
    const uint32_t t = cc - static_cast<uint32_t>(j % 2);
    const uint32_t y = t % hh;
    const uint32_t x = (t - y) / hh;
    if (j % 2 == 0) {
      xp = x;
    } else if (xp < x) {
      ys = 0;
      ye = hh - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(static_cast<uint32_t>(xe - xs + 1)),
          static_cast<double>(static_cast<uint32_t>(ye - ys + 1))};
}

RleRef rle_resolve(RleInput& in, int64_t h, int64_t w, const char* what) {
  if (in.is_string) {
    in.parsed = rle_from_string(in.str.data(), in.str.size(), h, w);
    return RleRef{in.parsed.data(), in.parsed.size()};
  }
  if (in.counts == nullptr && in.m > 0) fail("E_FORMAT", what, ": has ", in.m, " counts but no data");
  rle_check(in.counts, in.m, h, w, what);
  return RleRef{in.counts, in.m};
}

std::vector<RleRef> rle_resolve_all(std::vector<RleInput>& in, int64_t h, int64_t w, const char* name) {
  std::vector<RleRef> out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string what = std::string(name) + "[" + std::to_string(i) + "]";
    out.push_back(rle_resolve(in[i], h, w, what.c_str()));
  }
  return out;
}

namespace {
void check_rle_batch(const MaskBatchView& m) {
  if (m.n < 0) fail("E_SHAPE", "mask: the batch size must be >= 0, got ", m.n);
  check_mask_size(m.h, m.w, "mask");
  if (m.n > 0 && m.h * m.w > 0 && m.data == nullptr) fail("E_SHAPE", "mask: the batch has no data");
}
}  // namespace

std::vector<std::vector<uint32_t>> rle_encode_batch(const MaskBatchView& m, int threads) {
  check_rle_batch(m);
  std::vector<std::vector<uint32_t>> out(static_cast<size_t>(m.n));
  const int64_t px = m.h * m.w;
  parallel_for_index(m.n, mask_threads(threads, m.n), [&](int64_t i, int) {
    out[static_cast<size_t>(i)] = rle_encode(m.data + i * px, m.h, m.w);
  });
  return out;
}

std::vector<std::string> rle_encode_batch_strings(const MaskBatchView& m, int threads) {
  check_rle_batch(m);
  std::vector<std::string> out(static_cast<size_t>(m.n));
  const int64_t px = m.h * m.w;
  parallel_for_index(m.n, mask_threads(threads, m.n), [&](int64_t i, int) {
    const std::vector<uint32_t> counts = rle_encode(m.data + i * px, m.h, m.w);
    out[static_cast<size_t>(i)] = rle_to_string(counts.data(), counts.size());
  });
  return out;
}

void rle_decode_batch(std::vector<RleInput>& rles, int64_t h, int64_t w, uint8_t* out, int threads, const char* name) {
  check_mask_size(h, w, "mask");
  const int64_t n = static_cast<int64_t>(rles.size());
  const int64_t px = h * w;
  if (n > 0 && px > 0 && out == nullptr) fail("E_SHAPE", "decoding ", n, " masks needs an output buffer");
  parallel_for_index(n, mask_threads(threads, n), [&](int64_t i, int) {
    RleInput& in = rles[static_cast<size_t>(i)];
    const std::string what = std::string(name) + "[" + std::to_string(i) + "]";
    const RleRef r = rle_resolve(in, h, w, what.c_str());
    rle_decode(r.counts, r.m, h, w, out + i * px);
    if (in.is_string) std::vector<uint32_t>().swap(in.parsed);  // decoded: the parsed counts are not needed any more
  });
}

std::vector<uint32_t> rle_merge(const std::vector<RleRef>& rles, int64_t h, int64_t w, bool intersect) {
  if (rles.empty()) fail("E_SHAPE", "merge needs at least one RLE");
  for (size_t i = 0; i < rles.size(); ++i) rle_check(rles[i].counts, rles[i].m, h, w, "merge input");
  if (rles.size() == 1 || static_cast<uint64_t>(h) * static_cast<uint64_t>(w) == 0) {
    if (rles[0].m == 0) return {0};
    return std::vector<uint32_t>(rles[0].counts, rles[0].counts + rles[0].m);
  }
  std::vector<uint32_t> acc(rles[0].counts, rles[0].counts + rles[0].m), next;
  for (size_t i = 1; i < rles.size(); ++i) {
    next.clear();
    const RleRef A{acc.data(), acc.size()};
    bool v = false;
    uint64_t cc = 0;
    walk_pair(A, rles[i], [&](uint64_t c, bool, bool, bool va, bool vb, bool last) {
      cc += c;
      const bool vp = v;
      v = intersect ? (va && vb) : (va || vb);
      if (v != vp || last) {
        next.push_back(static_cast<uint32_t>(cc));
        cc = 0;
      }
    });
    acc.swap(next);
  }
  return acc;
}

void rle_iou(const std::vector<RleRef>& dt, const std::vector<RleRef>& gt, int64_t h, int64_t w,
             const uint8_t* iscrowd, double* out, int threads) {
  for (const RleRef& r : dt) rle_check(r.counts, r.m, h, w, "iou detection");
  for (const RleRef& r : gt) rle_check(r.counts, r.m, h, w, "iou ground truth");
  const size_t D = dt.size(), G = gt.size();
  std::vector<std::array<double, 4>> db(D), gb(G);
  for (size_t d = 0; d < D; ++d) db[d] = rle_to_bbox(dt[d].counts, dt[d].m, h, w);
  for (size_t g = 0; g < G; ++g) gb[g] = rle_to_bbox(gt[g].counts, gt[g].m, h, w);
  std::atomic<size_t> next{0};
  const int T = mask_threads(threads, static_cast<int64_t>(D));
  run_threads(T, [&](int) {
    for (;;) {
      const size_t d = next.fetch_add(1);
      if (d >= D) return;
      const auto& Db = db[d];
      const double da = Db[2] * Db[3];
      for (size_t g = 0; g < G; ++g) {
        const auto& Gb = gb[g];
        const bool crowd = iscrowd != nullptr && iscrowd[g] != 0;
        double& o = out[d * G + g];
        o = 0;
        // The box IoU first (pycocotools' bbIou): no overlap, no mask work.
        const double bw = std::fmin(Db[2] + Db[0], Gb[2] + Gb[0]) - std::fmax(Db[0], Gb[0]);
        if (bw <= 0) continue;
        const double bh = std::fmin(Db[3] + Db[1], Gb[3] + Gb[1]) - std::fmax(Db[1], Gb[1]);
        if (bh <= 0) continue;
        const double bi = bw * bh, ga = Gb[2] * Gb[3];
        const double bu = crowd ? da : da + ga - bi;
        if (!(bi / bu > 0)) continue;
        uint64_t inter = 0, uni = 0;
        walk_pair(dt[d], gt[g], [&](uint64_t c, bool pva, bool pvb, bool, bool, bool) {
          if (pva || pvb) {
            uni += c;
            if (pva && pvb) inter += c;
          }
        });
        if (inter == 0) uni = 1;
        else if (crowd) uni = rle_area(dt[d].counts, dt[d].m);
        o = static_cast<double>(inter) / static_cast<double>(uni);
      }
    }
  });
}

std::vector<uint32_t> rle_from_polygon(const double* xy, size_t k, int64_t h, int64_t w) {
  check_mask_size(h, w, "polygon mask");
  if (h < 1 || w < 1) fail("E_SHAPE", "polygons need a mask of at least 1 x 1 pixels, got ", h, " x ", w);
  const uint64_t total = static_cast<uint64_t>(h) * static_cast<uint64_t>(w);
  if (k == 0) return {static_cast<uint32_t>(total)};
  constexpr double kMaxCoord = 1 << 24;
  for (size_t j = 0; j < 2 * k; ++j)
    if (!std::isfinite(xy[j]) || std::fabs(xy[j]) > kMaxCoord)
      fail("E_RANGE", "polygon coordinate ", j, " (point ", j / 2, ") is ", xy[j],
           "; coordinates must be finite and within +-2^24");
  const double scale = 5;
  // Upsample: integer points on a 5x grid, then every grid point along the
  // boundary (stepping along the longer axis, rounding the other).
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = static_cast<int>(scale * xy[j * 2 + 0] + .5);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = static_cast<int>(scale * xy[j * 2 + 1] + .5);
  y[k] = y[0];
  uint64_t m = 0;
  for (size_t j = 0; j < k; ++j)
    m += static_cast<uint64_t>(std::max(std::abs(x[j] - x[j + 1]), std::abs(y[j] - y[j + 1]))) + 1;
  constexpr uint64_t kMaxPoints = uint64_t(1) << 26;
  if (m > kMaxPoints)
    fail("E_LIMIT", "polygon boundary is ", m / 5, " pixels long (over ", kMaxPoints / 5, "); is it in pixels?");
  std::vector<int> u, v;
  u.reserve(m);
  v.reserve(m);
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    if (dx >= dy) {
      if (dx == 0) {
        // A repeated point: cocoapi computes 0/0 here and converts NaN to int,
        // which is INT_MIN on x86. The value never reaches the result (its
        // neighbours share its x, or their x is negative), but keep it equal.
        u.push_back(xs);
        v.push_back(INT_MIN);
        continue;
      }
      const double s = static_cast<double>(ye - ys) / dx;
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        u.push_back(t + xs);
        v.push_back(static_cast<int>(ys + s * t + .5));
      }
    } else {
      const double s = static_cast<double>(xe - xs) / dy;
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(static_cast<int>(xs + s * t + .5));
      }
    }
  }
  // Points where the boundary crosses a pixel-centre column, downsampled:
  // each gives the first row inside (or past) the polygon in that column.
  std::vector<uint32_t> a;
  a.reserve(u.size() / 5 + 2);
  const double wmax = static_cast<double>(w - 1), hd = static_cast<double>(h);
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / scale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > wmax) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / scale - .5;
    if (yd < 0) yd = 0;
    else if (yd > hd) yd = hd;
    yd = std::ceil(yd);
    a.push_back(static_cast<uint32_t>(static_cast<int64_t>(xd) * h + static_cast<int64_t>(yd)));
  }
  a.push_back(static_cast<uint32_t>(total));
  std::sort(a.begin(), a.end());
  uint32_t p = 0;
  for (uint32_t& t : a) {
    const uint32_t cur = t;
    t -= p;
    p = cur;
  }
  // Each crossing toggles inside/outside; two at one position cancel.
  std::vector<uint32_t> b;
  b.reserve(a.size());
  size_t j = 0;
  b.push_back(a[j++]);
  while (j < a.size()) {
    if (a[j] > 0) {
      b.push_back(a[j++]);
    } else {
      ++j;
      if (j < a.size()) b.back() += a[j++];
    }
  }
  return b;
}

std::vector<uint32_t> rle_from_bbox(const double* bb, int64_t h, int64_t w) {
  const double xs = bb[0], xe = xs + bb[2];
  const double ys = bb[1], ye = ys + bb[3];
  const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
  return rle_from_polygon(xy, 4, h, w);
}

std::vector<uint32_t> rle_from_polygons(const std::vector<PolygonRef>& polys, int64_t h, int64_t w) {
  if (polys.empty()) fail("E_SHAPE", "polygons is empty");
  const bool boxes = polys[0].len == 4;
  if (!boxes && polys[0].len < 4)
    fail("E_SHAPE", "polygons[0] has ", polys[0].len, " numbers; a polygon needs at least 3 points (pycocotools reads 4 numbers as a box)");
  check_mask_size(h, w, "mask");
  std::vector<std::vector<uint32_t>> rles;
  rles.reserve(polys.size());
  for (size_t i = 0; i < polys.size(); ++i) {
    const size_t len = polys[i].len;
    if (boxes && len != 4)
      fail("E_SHAPE", "polygons[", i, "] has ", len, " numbers, but polygons[0] has 4, which makes every entry a box [x, y, w, h] (as in pycocotools)");
    if (len % 2) fail("E_SHAPE", "polygons[", i, "] has an odd number of coordinates (", len, ")");
    rles.push_back(boxes ? rle_from_bbox(polys[i].xy, h, w) : rle_from_polygon(polys[i].xy, len / 2, h, w));
  }
  std::vector<RleRef> refs;
  refs.reserve(rles.size());
  for (const auto& r : rles) refs.push_back(RleRef{r.data(), r.size()});
  return rle_merge(refs, h, w, false);
}

}  // namespace genaug
