// Mask kernels and COCO RLE against plain references written from the spec
// (pixel flood fill for components and holes, a Fortran-order walk for RLE,
// the FORMATS.md string rules), hand-made cases, and worked examples.
#include <algorithm>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "mask.h"
#include "rle.h"
#include "test.h"

using namespace genaug;

namespace {

using Mask = std::vector<uint8_t>;

Mask parse(const std::vector<std::string>& rows) {
  Mask m;
  for (const auto& r : rows)
    for (char c : r) m.push_back(c == '#' ? 1 : 0);
  return m;
}

// --- References ---------------------------------------------------------------

// Labels (1..n) by BFS; labels are numbered by their first pixel in row-major order.
int ref_label(const Mask& m, int64_t h, int64_t w, int conn, bool value, std::vector<int>& lab) {
  lab.assign(m.size(), 0);
  int n = 0;
  for (int64_t i = 0; i < h * w; ++i) {
    if ((m[i] != 0) != value || lab[i]) continue;
    lab[i] = ++n;
    std::deque<int64_t> q{i};
    while (!q.empty()) {
      const int64_t p = q.front();
      q.pop_front();
      const int64_t y = p / w, x = p % w;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          if (!dy && !dx) continue;
          if (conn == 4 && dy && dx) continue;
          const int64_t yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const int64_t k = yy * w + xx;
          if ((m[k] != 0) == value && !lab[k]) {
            lab[k] = n;
            q.push_back(k);
          }
        }
    }
  }
  return n;
}

Mask ref_largest(const Mask& m, int64_t h, int64_t w, int conn, int64_t* comps = nullptr) {
  std::vector<int> lab;
  const int n = ref_label(m, h, w, conn, true, lab);
  std::vector<int64_t> area(n + 1, 0);
  for (int l : lab) if (l) ++area[l];
  int best = 0;
  for (int l = 1; l <= n; ++l)
    if (area[l] > area[best]) best = l;
  Mask out(m.size(), 0);
  for (size_t i = 0; i < m.size(); ++i) out[i] = best && lab[i] == best;
  if (comps) *comps = n;
  return out;
}

// Background components (dual connectivity) touching no border become foreground.
Mask ref_fill(const Mask& m, int64_t h, int64_t w, int conn) {
  std::vector<int> lab;
  const int n = ref_label(m, h, w, conn == 8 ? 4 : 8, false, lab);
  std::vector<char> border(n + 1, 0);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      if (y == 0 || x == 0 || y == h - 1 || x == w - 1) border[lab[y * w + x]] = 1;
  Mask out(m.size());
  for (size_t i = 0; i < m.size(); ++i) out[i] = m[i] ? 1 : (border[lab[i]] ? 0 : 1);
  return out;
}

// Column-major runs starting with zeros (FORMATS.md).
std::vector<uint32_t> ref_encode(const Mask& m, int64_t h, int64_t w) {
  std::vector<uint32_t> c;
  uint8_t p = 0;
  uint32_t run = 0;
  for (int64_t x = 0; x < w; ++x)
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t v = m[y * w + x] != 0;
      if (v != p) {
        c.push_back(run);
        run = 0;
        p = v;
      }
      ++run;
    }
  c.push_back(run);
  return c;
}

Mask ref_decode(const std::vector<uint32_t>& c, int64_t h, int64_t w) {
  Mask m(h * w, 0);
  int64_t pos = 0;
  for (size_t i = 0; i < c.size(); ++i)
    for (uint32_t k = 0; k < c[i]; ++k, ++pos)
      if (i & 1) m[(pos % h) * w + pos / h] = 1;
  return m;
}

// The string rules of FORMATS.md, spelled out with plain integers.
std::string ref_string(const std::vector<uint32_t>& c) {
  std::string s;
  for (size_t i = 0; i < c.size(); ++i) {
    long long x = c[i];
    if (i > 2) x -= c[i - 2];
    for (;;) {
      long long chunk = ((x % 32) + 32) % 32;  // low 5 bits
      long long rest = (x - chunk) / 32;       // floor division
      const bool last = (chunk & 0x10) ? rest == -1 : rest == 0;
      s.push_back(static_cast<char>(48 + chunk + (last ? 0 : 0x20)));
      x = rest;
      if (last) break;
    }
  }
  return s;
}

Box ref_box(const Mask& m, int64_t h, int64_t w) {
  int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      if (m[y * w + x]) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
  return x1 < 0 ? Box{} : Box{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

int64_t ref_area(const Mask& m) {
  int64_t a = 0;
  for (uint8_t v : m) a += v != 0;
  return a;
}

Mask random_mask(int64_t h, int64_t w, std::mt19937& rng, int density) {
  // Blocky noise: runs and holes of many sizes, values other than 1 too.
  Mask m(h * w);
  std::uniform_int_distribution<int> pct(0, 99), val(1, 255);
  for (auto& v : m) v = pct(rng) < density ? (pct(rng) < 80 ? 1 : val(rng)) : 0;
  return m;
}

Mask largest(const Mask& m, int64_t h, int64_t w, int conn, int64_t* area = nullptr, int64_t* comps = nullptr) {
  Mask out(m.size());
  mask_largest_component(MaskBatchView{m.data(), 1, h, w}, conn, out.data(), area, comps, 1);
  return out;
}

Mask filled(const Mask& m, int64_t h, int64_t w, int conn) {
  Mask out(m.size());
  mask_fill_holes(MaskBatchView{m.data(), 1, h, w}, conn, out.data(), 1);
  return out;
}

bool same_box(const Box& a, const Box& b) { return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h; }

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{0, 0}, {0, 5}, {5, 0}, {1, 1}, {1, 7}, {7, 1}, {1, 64},
                                                          {64, 1}, {3, 5}, {5, 3}, {13, 17}, {1, 130}, {130, 1},
                                                          {31, 63}, {33, 65}, {64, 64}, {65, 129}};

}  // namespace

// --- Components and holes -----------------------------------------------------

TEST(mask_diagonal_touch_4_vs_8) {
  const Mask m = parse({"#.", ".#"});
  int64_t area = 0, comps = 0;
  CHECK(largest(m, 2, 2, 8, &area, &comps) == m);
  CHECK_EQ(comps, 1);
  CHECK_EQ(area, 2);
  // 4-connected: two components of one pixel; the tie goes to the first in row-major order.
  CHECK(largest(m, 2, 2, 4, &area, &comps) == parse({"#.", ".."}));
  CHECK_EQ(comps, 2);
  CHECK_EQ(area, 1);
  const Mask anti = parse({".#", "#."});
  CHECK(largest(anti, 2, 2, 4) == parse({".#", ".."}));
}

TEST(mask_largest_picks_area_not_order) {
  const Mask m = parse({"#....", ".....", "..###", "..###"});
  CHECK(largest(m, 4, 5, 8) == parse({".....", ".....", "..###", "..###"}));
  const Mask e(12, 0);
  int64_t area = 7, comps = 7;
  CHECK(largest(e, 3, 4, 8, &area, &comps) == e);
  CHECK_EQ(area, 0);
  CHECK_EQ(comps, 0);
}

TEST(mask_ring_with_hole) {
  const Mask ring = parse({".....", ".###.", ".#.#.", ".###.", "....."});
  CHECK(filled(ring, 5, 5, 8) == parse({".....", ".###.", ".###.", ".###.", "....."}));
  CHECK(filled(ring, 5, 5, 4) == parse({".....", ".###.", ".###.", ".###.", "....."}));
  // A ring with a gap: the inside reaches the outside, nothing to fill.
  const Mask open = parse({".....", ".#.#.", ".#.#.", ".###.", "....."});
  CHECK(filled(open, 5, 5, 8) == open);
  // An island inside a hole inside a ring: everything inside becomes foreground.
  const Mask nested = parse({"#######", "#.....#", "#.###.#", "#.#.#.#", "#.###.#", "#.....#", "#######"});
  CHECK(filled(nested, 7, 7, 8) == Mask(49, 1));
}

TEST(mask_hole_touching_outside_diagonally) {
  // The centre touches the outside only through the diagonal gap at (1, 3).
  const Mask m = parse({".....", ".##..", ".#.#.", "..##.", "....."});
  Mask want = m;
  want[2 * 5 + 2] = 1;
  CHECK(filled(m, 5, 5, 8) == want);  // 8-connected foreground: the centre is enclosed
  CHECK(filled(m, 5, 5, 4) == m);     // 4-connected foreground: it leaks diagonally
}

TEST(mask_touching_border) {
  // The image border is not a wall: a region open to the border is not a hole.
  const Mask u = parse({"#.#", "#.#", "###"});
  CHECK(filled(u, 3, 3, 8) == u);
  const Mask closed = parse({"###", "#.#", "###"});
  CHECK(filled(closed, 3, 3, 8) == Mask(9, 1));
  const Mask full(12, 1);
  CHECK(filled(full, 3, 4, 8) == full);
  CHECK(largest(full, 3, 4, 8) == full);
}

TEST(mask_components_and_holes_match_reference) {
  std::mt19937 rng(7);
  for (const auto& [h, w] : kShapes)
    for (int density : {5, 35, 55, 80, 97})
      for (int conn : {4, 8}) {
        const Mask m = random_mask(h, w, rng, density);
        int64_t comps = 0, rc = 0, area = 0;
        const Mask want = ref_largest(m, h, w, conn, &rc);
        CHECK(largest(m, h, w, conn, &area, &comps) == want);
        CHECK_EQ(comps, rc);
        CHECK_EQ(area, ref_area(want));
        CHECK(filled(m, h, w, conn) == ref_fill(m, h, w, conn));
      }
}

TEST(mask_batch_and_threads_agree) {
  std::mt19937 rng(3);
  const int64_t n = 9, h = 37, w = 71;
  Mask batch;
  for (int i = 0; i < n; ++i) {
    const Mask m = random_mask(h, w, rng, 30 + 5 * i);
    batch.insert(batch.end(), m.begin(), m.end());
  }
  for (int threads : {1, 2, 4}) {
    Mask out(batch.size()), fill(batch.size());
    std::vector<int64_t> area(n), comps(n);
    mask_largest_component(MaskBatchView{batch.data(), n, h, w}, 8, out.data(), area.data(), comps.data(), threads);
    mask_fill_holes(MaskBatchView{batch.data(), n, h, w}, 8, fill.data(), threads);
    for (int64_t i = 0; i < n; ++i) {
      const Mask m(batch.begin() + i * h * w, batch.begin() + (i + 1) * h * w);
      CHECK(Mask(out.begin() + i * h * w, out.begin() + (i + 1) * h * w) == ref_largest(m, h, w, 8));
      CHECK(Mask(fill.begin() + i * h * w, fill.begin() + (i + 1) * h * w) == ref_fill(m, h, w, 8));
    }
  }
}

TEST(mask_invert_stats_iou) {
  std::mt19937 rng(11);
  for (const auto& [h, w] : kShapes) {
    const Mask a = random_mask(h, w, rng, 40), b = random_mask(h, w, rng, 60);
    Mask inv(a.size());
    mask_invert(MaskBatchView{a.data(), 1, h, w}, inv.data(), 1);
    for (size_t i = 0; i < a.size(); ++i) CHECK_EQ(int(inv[i]), int(a[i] == 0));
    int64_t area = -1;
    Box box;
    mask_stats(MaskBatchView{a.data(), 1, h, w}, &area, &box, 1);
    CHECK_EQ(area, ref_area(a));
    CHECK(same_box(box, ref_box(a, h, w)));
    int64_t inter = 0, uni = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      inter += a[i] && b[i];
      uni += a[i] || b[i];
    }
    double iou = -1;
    mask_iou(MaskBatchView{a.data(), 1, h, w}, MaskBatchView{b.data(), 1, h, w}, &iou, 1);
    CHECK_NEAR(iou, uni ? double(inter) / double(uni) : 0.0, 1e-15);
  }
  const Mask one = parse({"....", ".#..", "..#.", "...."});
  int64_t area = 0;
  Box box;
  mask_stats(MaskBatchView{one.data(), 1, 4, 4}, &area, &box, 1);
  CHECK(same_box(box, Box{1, 1, 2, 2}));
  CHECK_EQ(area, 2);
}

TEST(mask_crop_rgba) {
  const int64_t h = 4, w = 5;
  for (int C : {3, 4}) {
    std::vector<uint8_t> img(h * w * C);
    for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 7 + 1);
    const Mask m = parse({".....", "..#..", ".##..", "....."});
    std::vector<uint8_t> out;
    const Box b = mask_crop_rgba(ImageView{img.data(), h, w, C}, m.data(), nullptr, out);
    CHECK(same_box(b, Box{1, 1, 2, 2}));
    CHECK_EQ(out.size(), size_t(16));
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) {
        const uint8_t* src = img.data() + ((1 + y) * w + 1 + x) * C;
        const uint8_t* d = out.data() + (y * 2 + x) * 4;
        CHECK(d[0] == src[0] && d[1] == src[1] && d[2] == src[2]);
        CHECK_EQ(int(d[3]), m[(1 + y) * w + 1 + x] ? 255 : 0);
      }
    Box bad{3, 0, 3, 1};
    CHECK_THROWS_CODE(mask_crop_rgba(ImageView{img.data(), h, w, C}, m.data(), &bad, out), "E_RANGE");
  }
  std::vector<uint8_t> out;
  uint8_t px[2] = {0, 0};
  CHECK_THROWS_CODE(mask_crop_rgba(ImageView{px, 1, 1, 2}, px, nullptr, out), "E_SHAPE");
}

TEST(mask_corner_background) {
  // White background, a dark object, a near-white speck inside the object
  // (not reachable: stays foreground), and near-white noise on the background.
  const int64_t h = 6, w = 7;
  std::vector<uint8_t> img(h * w * 3, 255);
  auto set = [&](int y, int x, uint8_t v) { for (int c = 0; c < 3; ++c) img[(y * w + x) * 3 + c] = v; };
  for (int y = 1; y <= 4; ++y)
    for (int x = 2; x <= 5; ++x) set(y, x, 20);
  set(2, 3, 250);  // enclosed
  set(0, 3, 247);  // background within tolerance 10
  set(5, 0, 240);  // a corner of its own colour: seeds its own fill
  std::vector<uint8_t> bg(h * w);
  corner_background(ImageView{img.data(), h, w, 3}, 10, bg.data());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const bool object = y >= 1 && y <= 4 && x >= 2 && x <= 5;
      CHECK_EQ(int(bg[y * w + x]), object ? 0 : 1);
    }
  // Tolerance 0: the noise pixel is not background any more.
  corner_background(ImageView{img.data(), h, w, 3}, 0, bg.data());
  CHECK_EQ(int(bg[3]), 0);
  // The whole chain: foreground = the object with its speck filled.
  std::vector<uint8_t> fg(h * w);
  PostOptions o;
  o.rle = RleForm::Counts;
  PostResult r = corner_foreground(ImageView{img.data(), h, w, 3}, 10, o, fg.data(), nullptr);
  CHECK_EQ(r.area[0], 16);
  CHECK(same_box(r.box[0], Box{2, 1, 4, 4}));
  CHECK(r.ok[0] == 1);
  CHECK(r.counts[0] == ref_encode(fg, h, w));
  // RGBA: alpha is ignored.
  std::vector<uint8_t> rgba(h * w * 4);
  for (int64_t i = 0; i < h * w; ++i) {
    std::memcpy(&rgba[i * 4], &img[i * 3], 3);
    rgba[i * 4 + 3] = static_cast<uint8_t>(i);
  }
  std::vector<uint8_t> bg4(h * w);
  corner_background(ImageView{rgba.data(), h, w, 4}, 10, bg4.data());
  corner_background(ImageView{img.data(), h, w, 3}, 10, bg.data());
  CHECK(bg4 == bg);
  CHECK_THROWS_CODE(corner_background(ImageView{img.data(), h, w, 3}, 256, bg.data()), "E_RANGE");
  CHECK_THROWS_CODE(corner_background(ImageView{img.data(), 0, 0, 3}, 10, bg.data()), "E_SHAPE");
}

TEST(mask_post_process_chain) {
  std::mt19937 rng(5);
  for (const auto& [h, w] : kShapes) {
    const Mask m = random_mask(h, w, rng, 60);
    for (bool invert : {false, true}) {
      Mask in = m;
      if (invert)
        for (auto& v : in) v = v == 0;
      const Mask want = ref_fill(ref_largest(in, h, w, 8), h, w, 8);
      Mask out(m.size());
      PostOptions o;
      o.invert = invert;
      o.rle = RleForm::String;
      PostResult r = post_process(MaskBatchView{m.data(), 1, h, w}, o, out.data());
      CHECK(out == want);
      CHECK_EQ(r.area[0], ref_area(want));
      CHECK(same_box(r.box[0], ref_box(want, h, w)));
      CHECK_EQ(r.strings[0], ref_string(ref_encode(want, h, w)));
      CHECK_EQ(int(r.ok[0]), ref_area(want) > 0 ? 1 : 0);
    }
  }
  // Area checks and reasons.
  const Mask small = parse({"#....", ".....", ".....", ".....", "....."});  // 1/25 = 0.04
  PostOptions o;
  o.min_fraction = 0.05;
  o.max_fraction = 0.95;
  PostResult r = post_process(MaskBatchView{small.data(), 1, 5, 5}, o, nullptr);
  CHECK(r.ok[0] == 0);
  CHECK(r.reason[0].find("below minFraction") != std::string::npos);
  const Mask full(16, 1);
  r = post_process(MaskBatchView{full.data(), 1, 4, 4}, o, nullptr);
  CHECK(r.reason[0].find("above maxFraction") != std::string::npos);
  const Mask empty(16, 0);
  r = post_process(MaskBatchView{empty.data(), 1, 4, 4}, PostOptions{}, nullptr);
  CHECK_EQ(r.reason[0], std::string("the mask is empty"));
  o = PostOptions{};
  o.connectivity = 6;
  CHECK_THROWS_CODE(post_process(MaskBatchView{full.data(), 1, 4, 4}, o, nullptr), "E_RANGE");
  CHECK_THROWS_CODE(check_mask_size(1 << 20, 1 << 20, "m"), "E_LIMIT");
  CHECK_THROWS_CODE(check_mask_size(-1, 3, "m"), "E_SHAPE");
}

// --- RLE ------------------------------------------------------------------------

TEST(rle_string_worked_examples) {
  // Worked by hand from FORMATS.md: 5 bits per character, low bits first,
  // 0x20 = more follows, 0x10 = sign of the last chunk, + 48; deltas for i > 2.
  const std::vector<std::pair<std::vector<uint32_t>, std::string>> cases = {
      {{0}, "0"},                 // 0 -> '0'
      {{6}, "6"},                 // 6 -> 6 + 48
      {{0, 6}, "06"},             // a full 2 x 3 mask
      {{16}, "`0"},               // 16 has bit 0x10: chunk 16|0x20 = 48 -> '`', then 0 -> '0'
      {{100}, "T3"},              // 100 = 4 + 3*32: (4|0x20)+48 = 'T', then '3'
      {{1048576}, "PPPP1"},       // 2^20: four zero chunks with continuation, then 1
      {{1, 2, 3, 1}, "123O"},     // counts[3] - counts[1] = -1: chunk 31 (sign set), done -> 'O'
      // 30 has bit 0x10 set, so a second chunk must say "positive": (30|0x20)+48 = 'n', then '0';
      // counts[3] - counts[1] = 10 - 30 = -20: chunk 12|0x20 -> '\\', then -1 -> chunk 31 -> 'O'.
      {{0, 30, 10, 10}, "0n0:\\O"},
      {{5, 30, 7, 10}, "5n07\\O"},
  };
  for (const auto& [counts, want] : cases) {
    const std::string got = rle_to_string(counts.data(), counts.size());
    CHECK_EQ(got, want);
    CHECK_EQ(ref_string(counts), want);
    uint64_t total = 0;
    for (uint32_t c : counts) total += c;
    CHECK(rle_from_string(want.data(), want.size(), 1, static_cast<int64_t>(total)) == counts);
  }
}

TEST(rle_encode_decode_match_reference) {
  std::mt19937 rng(1);
  for (const auto& [h, w] : kShapes)
    for (int density : {0, 3, 50, 97, 100}) {
      const Mask m = random_mask(h, w, rng, density);
      const auto want = ref_encode(m, h, w);
      const auto got = rle_encode(m.data(), h, w);
      CHECK(got == want);
      const std::string s = rle_to_string(got.data(), got.size());
      CHECK_EQ(s, ref_string(want));
      CHECK(rle_from_string(s.data(), s.size(), h, w) == want);
      Mask back(h * w, 7);
      rle_decode(got.data(), got.size(), h, w, back.data());
      Mask bin = m;
      for (auto& v : bin) v = v != 0;
      CHECK(back == bin);
      CHECK(ref_decode(want, h, w) == bin);
      CHECK_EQ(rle_area(got.data(), got.size()), uint64_t(ref_area(m)));
      const auto bb = rle_to_bbox(got.data(), got.size(), h, w);
      const Box rb = ref_box(m, h, w);
      CHECK(bb[0] == rb.x && bb[1] == rb.y && bb[2] == rb.w && bb[3] == rb.h);
    }
}

TEST(rle_empty_full_and_thin) {
  const Mask e(6, 0), f(6, 1);
  CHECK((rle_encode(e.data(), 2, 3) == std::vector<uint32_t>{6}));
  CHECK((rle_encode(f.data(), 2, 3) == std::vector<uint32_t>{0, 6}));
  CHECK((rle_encode(nullptr, 0, 3) == std::vector<uint32_t>{0}));
  // 1 x N is one column-major run per column; N x 1 a single column.
  const Mask row = parse({".##.#"});
  CHECK((rle_encode(row.data(), 1, 5) == std::vector<uint32_t>{1, 2, 1, 1}));
  CHECK((rle_encode(row.data(), 5, 1) == std::vector<uint32_t>{1, 2, 1, 1}));
  // Column-major order: runs continue across columns.
  const Mask m = parse({"#.", "##"});  // column 0: 1 1, column 1: 0 1
  CHECK((rle_encode(m.data(), 2, 2) == std::vector<uint32_t>{0, 2, 1, 1}));
  // toBbox of an empty mask is all zeros; of a full one the whole image.
  const std::vector<uint32_t> ce{6}, cf{0, 6};
  CHECK((rle_to_bbox(ce.data(), 1, 2, 3) == std::array<double, 4>{0, 0, 0, 0}));
  CHECK((rle_to_bbox(cf.data(), 2, 2, 3) == std::array<double, 4>{0, 0, 3, 2}));
  // A run that crosses a column boundary spans the full height (cocoapi's rule).
  const std::vector<uint32_t> cross{2, 2, 2};  // 3 x 2: rows 2 of column 0 and row 0 of column 1
  CHECK((rle_to_bbox(cross.data(), 3, 3, 2) == std::array<double, 4>{0, 0, 2, 3}));
}

TEST(rle_string_rejects_malformed) {
  auto bad = [](const std::string& s, int64_t h, int64_t w, const char* frag) {
    bool threw = false;
    try {
      rle_from_string(s.data(), s.size(), h, w);
    } catch (const genaug::Error& e) {
      threw = true;
      CHECK_EQ(e.code(), std::string("E_FORMAT"));
      if (std::string(e.what()).find(frag) == std::string::npos) {
        std::cerr << "  message: " << e.what() << "\n";
        CHECK(false);
      }
    }
    CHECK(threw);
  };
  bad("0p", 1, 1, "byte 1");            // 'p' = 112 is past 'o'
  bad("0 ", 1, 1, "byte 1");
  bad(std::string("0\xff", 2), 1, 1, "byte 1");
  bad("P", 1, 1, "ends inside");        // continuation bit on the last character
  bad("PPPPPPP0", 1, 1, "more than 7");
  bad("O", 1, 1, "outside [0, 2^32)");  // -1 as the first count
  bad("5", 2, 3, "sum to 5");
  bad("", 2, 3, "sum to 0");
  bad("06", 2, 2, "sum to 6");
  CHECK(rle_from_string("", 0, 0, 0).empty());
  const std::vector<uint32_t> c{0, 7};
  Mask out(6);
  CHECK_THROWS_CODE(rle_decode(c.data(), c.size(), 2, 3, out.data()), "E_FORMAT");
}

TEST(rle_merge_and_iou) {
  std::mt19937 rng(9);
  for (const auto& [h, w] : kShapes) {
    if (h * w == 0) continue;
    const Mask a = random_mask(h, w, rng, 40), b = random_mask(h, w, rng, 40), c = random_mask(h, w, rng, 20);
    const auto ra = rle_encode(a.data(), h, w), rb = rle_encode(b.data(), h, w), rc = rle_encode(c.data(), h, w);
    const std::vector<RleRef> refs{{ra.data(), ra.size()}, {rb.data(), rb.size()}, {rc.data(), rc.size()}};
    Mask u(h * w), in(h * w);
    for (int64_t i = 0; i < h * w; ++i) {
      u[i] = a[i] || b[i] || c[i];
      in[i] = a[i] && b[i] && c[i];
    }
    CHECK(rle_merge(refs, h, w, false) == ref_encode(u, h, w));
    CHECK(rle_merge(refs, h, w, true) == ref_encode(in, h, w));
    double o[9];
    const uint8_t crowd[3] = {0, 1, 0};
    rle_iou(refs, refs, h, w, crowd, o, 2);
    const Mask* ms[3] = {&a, &b, &c};
    for (int d = 0; d < 3; ++d)
      for (int g = 0; g < 3; ++g) {
        int64_t i = 0, un = 0, ad = 0;
        for (int64_t p = 0; p < h * w; ++p) {
          const bool x = (*ms[d])[p] != 0, y = (*ms[g])[p] != 0;
          i += x && y;
          un += x || y;
          ad += x;
        }
        const double want = i == 0 ? 0.0 : double(i) / double(crowd[g] ? ad : un);
        CHECK_NEAR(o[d * 3 + g], want, 1e-15);
      }
  }
  const std::vector<uint32_t> x{4}, y{5};
  CHECK_THROWS_CODE(rle_merge({{x.data(), 1}, {y.data(), 1}}, 2, 2, false), "E_FORMAT");
  CHECK_THROWS_CODE(rle_merge({}, 2, 2, false), "E_SHAPE");
}

TEST(rle_polygons_worked_examples) {
  // frBbox [0, 0, 2, 2] on 4 x 4, traced by hand through the rleFrPoly steps:
  // x-crossings at scaled x = 3, 8 (upper edge, y = 2) and 2, 7 (lower, y = 0)
  // give boundary positions 2, 6, 0, 4 and 16: counts 0 2 2 2 10.
  const double box[4] = {0, 0, 2, 2};
  CHECK((rle_from_bbox(box, 4, 4) == std::vector<uint32_t>{0, 2, 2, 2, 10}));
  // Triangle (0,0) (3,0) (0,3) on 4 x 4: boundary positions 0, 4, 8 (top edge)
  // and 8, 5, 2 (hypotenuse) + 16 -> deltas 0 2 2 1 3 0 8; the zero merges.
  const double tri[6] = {0, 0, 3, 0, 0, 3};
  CHECK((rle_from_polygon(tri, 3, 4, 4) == std::vector<uint32_t>{0, 2, 2, 1, 11}));
  // Degenerate polygons: no points, one point, a repeated point.
  CHECK((rle_from_polygon(nullptr, 0, 3, 3) == std::vector<uint32_t>{9}));
  const double pt[2] = {1, 1};
  CHECK((rle_from_polygon(pt, 1, 3, 3) == std::vector<uint32_t>{9}));
  const double rep[8] = {0, 0, 0, 0, 2, 0, 0, 2};
  const double tri2[6] = {0, 0, 2, 0, 0, 2};
  CHECK(rle_from_polygon(rep, 4, 5, 5) == rle_from_polygon(tri2, 3, 5, 5));
  const double nan[6] = {0, 0, 1, 0, 0, 0.0 / 0.0};
  CHECK_THROWS_CODE(rle_from_polygon(nan, 3, 4, 4), "E_RANGE");
  CHECK_THROWS_CODE(rle_from_polygon(tri, 3, 0, 4), "E_SHAPE");
}

TEST(rle_polygons_integer_boxes_and_clipping) {
  // Integer boxes rasterise to exactly the box's pixels, clipped to the image.
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> pos(-3, 12), len(0, 9);
  for (int t = 0; t < 300; ++t) {
    const int64_t h = 1 + t % 11, w = 1 + (t * 7) % 13;
    const double bb[4] = {double(pos(rng)), double(pos(rng)), double(len(rng)), double(len(rng))};
    Mask want(h * w, 0);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        want[y * w + x] = x >= bb[0] && x < bb[0] + bb[2] && y >= bb[1] && y < bb[1] + bb[3] && bb[2] > 0 && bb[3] > 0;
    const auto got = rle_from_bbox(bb, h, w);
    uint64_t sum = 0;
    for (uint32_t c : got) sum += c;
    CHECK_EQ(sum, uint64_t(h * w));
    if (bb[0] >= 0 && bb[1] >= 0) CHECK(ref_decode(got, h, w) == want);
  }
}

TEST(rle_polygons_close_to_pixel_centres) {
  // Random convex polygons: pixels whose centre is clearly inside (or
  // outside) agree with the point-in-polygon test at the centre.
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> U(0, 1);
  for (int t = 0; t < 100; ++t) {
    const int64_t h = 20 + t % 7, w = 24 + t % 5;
    const double cx = 4 + U(rng) * (w - 8), cy = 4 + U(rng) * (h - 8), r = 2 + U(rng) * 8;
    const int k = 3 + t % 8;
    std::vector<double> xy;
    for (int j = 0; j < k; ++j) {
      const double a = 2 * 3.141592653589793 * (j + 0.3 * U(rng)) / k;
      xy.push_back(cx + r * std::cos(a));
      xy.push_back(cy + r * std::sin(a));
    }
    const Mask got = ref_decode(rle_from_polygon(xy.data(), k, h, w), h, w);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const double px = x + 0.5, py = y + 0.5;
        double mind = 1e9;
        bool inside = true;
        for (int j = 0; j < k; ++j) {
          const double x0 = xy[2 * j], y0 = xy[2 * j + 1], x1 = xy[2 * ((j + 1) % k)], y1 = xy[2 * ((j + 1) % k) + 1];
          const double cross = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0);
          const double len = std::hypot(x1 - x0, y1 - y0);
          inside &= cross >= 0;  // counter-clockwise in image coordinates (y down)
          mind = std::min(mind, std::fabs(cross) / len);
        }
        if (mind > 1.0) CHECK_EQ(int(got[y * w + x]), int(inside));
      }
  }
}
