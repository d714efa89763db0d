// The compositor: the resize against a double-precision bilinear reference
// (within 1) and exact at integer-aligned samples, hand-computed values, the
// keep rule at its boundaries, skip reasons, box-only scenes, thread-count
// independence, argument errors, and the resize's row kernel pinned to every
// ISA this CPU has, byte for byte against the plain reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "composite.h"
#include "composite_kernels.h"
#include "test.h"

using namespace genaug;

namespace {

using Bytes = std::vector<uint8_t>;

// A scene with owned buffers.
struct Owned {
  Bytes image;
  std::vector<Bytes> masks;
  std::vector<Bytes> crops;
  Bytes out_image;
  std::vector<Bytes> out_masks;
  CompositeScene s;
  void finish() {
    s.masks.clear();
    for (auto& m : masks) s.masks.push_back(m.data());
    s.image = image.data();
    out_image.assign(image.size(), 0xEE);
    s.out_image = out_image.data();
    const size_t slots = static_cast<size_t>(s.real_count()) + s.pastes.size();
    out_masks.assign(slots, Bytes(static_cast<size_t>(s.h * s.w), 0xEE));  // garbage: every output byte must be written
    s.out_masks.clear();
    for (auto& m : out_masks) s.out_masks.push_back(m.data());
  }
  const Bytes& mask_of(const CompositeInstance& i) const { return out_masks[static_cast<size_t>(i.slot)]; }
};

Owned grey(int64_t h, int64_t w, uint8_t v = 10) {
  Owned o;
  o.s.h = h;
  o.s.w = w;
  o.image.assign(static_cast<size_t>(h * w * 3), v);
  return o;
}

PasteSpec paste(const Bytes& crop, int64_t w, int64_t h, int64_t tw, int64_t th, double cx, double cy, bool flip = false) {
  PasteSpec p;
  p.rgba = crop.data();
  p.width = w;
  p.height = h;
  p.target_w = tw;
  p.target_h = th;
  p.cx = cx;
  p.cy = cy;
  p.flip = flip;
  return p;
}

// Real-valued bilinear with the half-pixel convention and edge clamping.
double ref_bilinear(const Bytes& c, int64_t w, int64_t h, int64_t tw, int64_t th, int64_t u, int64_t v, int ch) {
  auto clampc = [](double x, int64_t n) { return std::min(std::max(x, 0.0), static_cast<double>(n - 1)); };
  const double sx = clampc((u + 0.5) * w / tw - 0.5, w), sy = clampc((v + 0.5) * h / th - 0.5, h);
  const int64_t x0 = static_cast<int64_t>(std::floor(sx)), y0 = static_cast<int64_t>(std::floor(sy));
  const int64_t x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const double fx = sx - x0, fy = sy - y0;
  auto at = [&](int64_t x, int64_t y) { return static_cast<double>(c[static_cast<size_t>((y * w + x) * 4 + ch)]); };
  return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) + fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1));
}

}  // namespace

TEST(composite_resize_2x2_to_4x4) {
  Bytes crop(16);
  const uint8_t red[4] = {0, 80, 160, 240};
  for (int i = 0; i < 4; ++i) {
    crop[4 * i] = red[i];
    crop[4 * i + 1] = 200;
    crop[4 * i + 2] = 50;
    crop[4 * i + 3] = 255;
  }
  Bytes out(4 * 4 * 4);
  composite_resize_window(paste(crop, 2, 2, 4, 4, 0, 0), 0, 4, 0, 4, out.data());
  const int want[16] = {0, 20, 60, 80, 40, 60, 100, 120, 120, 140, 180, 200, 160, 180, 220, 240};
  for (int i = 0; i < 16; ++i) {
    CHECK_EQ(static_cast<int>(out[4 * i]), want[i]);
    CHECK_EQ(static_cast<int>(out[4 * i + 1]), 200);
    CHECK_EQ(static_cast<int>(out[4 * i + 3]), 255);
  }
  // Flipped: each row reversed.
  composite_resize_window(paste(crop, 2, 2, 4, 4, 0, 0, true), 0, 4, 0, 4, out.data());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK_EQ(static_cast<int>(out[(y * 4 + x) * 4]), want[y * 4 + 3 - x]);
}

TEST(composite_resize_matches_real_bilinear_within_one) {
  std::mt19937 rng(5);
  for (int t = 0; t < 200; ++t) {
    const int64_t w = 1 + rng() % 40, h = 1 + rng() % 40, tw = 1 + rng() % 70, th = 1 + rng() % 70;
    Bytes c(static_cast<size_t>(w * h * 4));
    for (auto& v : c) v = static_cast<uint8_t>(rng());
    Bytes out(static_cast<size_t>(tw * th * 4));
    // A random window of the target grid, as the compositor asks for clipped parts.
    const int64_t u0 = rng() % tw, v0 = rng() % th;
    const int64_t u1 = u0 + 1 + rng() % (tw - u0), v1 = v0 + 1 + rng() % (th - v0);
    composite_resize_window(paste(c, w, h, tw, th, 0, 0), u0, u1, v0, v1, out.data());
    int worst = 0;
    for (int64_t v = v0; v < v1; ++v)
      for (int64_t u = u0; u < u1; ++u)
        for (int ch = 0; ch < 4; ++ch) {
          const double r = ref_bilinear(c, w, h, tw, th, u, v, ch);
          const int got = out[static_cast<size_t>(((v - v0) * (u1 - u0) + (u - u0)) * 4 + ch)];
          worst = std::max(worst, static_cast<int>(std::ceil(std::fabs(got - r) - 1e-9)));
        }
    CHECK(worst <= 1);
    // Same size: an exact copy.
    Bytes same(static_cast<size_t>(w * h * 4));
    composite_resize_window(paste(c, w, h, w, h, 0, 0), 0, w, 0, h, same.data());
    CHECK(same == c);
  }
}

TEST(composite_keep_rule_boundaries) {
  // A 41 x 10 mask at the origin; an opaque instance covers columns c..63, rows 0..19.
  auto run = [](int64_t c, bool extra, int64_t shift, int64_t min_area) {
    Owned o = grey(64, 64);
    Bytes m(64 * 64, 0);
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x <= 40; ++x) m[static_cast<size_t>(y * 64 + x)] = 1;
    if (extra) m[10 * 64] = 1;
    o.masks.push_back(m);
    o.crops.push_back(Bytes{9, 9, 9, 255});
    const int64_t tw = 64 - c;
    o.s.pastes.push_back(paste(o.crops[0], 1, 1, tw, 20, static_cast<double>(c + tw / 2), 10));
    o.finish();
    CompositeOptions opt;
    opt.keep_max_shift = shift;
    opt.keep_min_area = min_area;
    opt.threads = 1;
    return composite_scene(o.s, opt);
  };
  CompositeResult r = run(31, false, 10, 300);  // moved exactly 10, area 310
  CHECK_EQ(r.instances.size(), size_t(2));
  CHECK_EQ(r.instances[0].area, int64_t(310));
  CHECK_EQ(r.instances[0].box.w, int64_t(31));
  r = run(30, false, 10, 300);  // moved 11, area exactly 300
  CHECK_EQ(r.instances.size(), size_t(1));
  CHECK_EQ(r.dropped.size(), size_t(1));
  CHECK(r.dropped[0].reason == DropReason::Occluded);
  r = run(30, true, 10, 300);  // moved 11, area 301
  CHECK_EQ(r.instances.size(), size_t(2));
  CHECK_EQ(r.instances[0].area, int64_t(301));
  r = run(31, false, 9, 310);  // options: moved 10 > 9, area 310 not > 310
  CHECK_EQ(r.instances.size(), size_t(1));
  r = run(0, false, 10, 300);  // fully covered
  CHECK(r.dropped.size() == 1 && r.dropped[0].reason == DropReason::Empty);
}

TEST(composite_outputs_and_skips) {
  Owned o = grey(16, 16);
  Bytes m(256, 0);
  for (int y = 2; y < 6; ++y)
    for (int x = 2; x < 12; ++x) m[static_cast<size_t>(y * 16 + x)] = 255;  // nonzero = foreground
  o.masks.push_back(m);
  o.masks.push_back(Bytes(256, 0));  // empty input mask
  o.crops = {Bytes{1, 2, 3, 255}, Bytes{1, 2, 3, 0}, Bytes{}};
  o.s.pastes = {paste(o.crops[0], 1, 1, 0, 3, 4, 4), paste(o.crops[2], 0, 0, 3, 3, 4, 4), paste(o.crops[1], 1, 1, 3, 3, 4, 4),
                paste(o.crops[0], 1, 1, 3, 3, 40, 4), paste(o.crops[0], 1, 1, 4, 4, 2, 2)};
  o.finish();
  CompositeResult r = composite_scene(o.s, CompositeOptions{});
  CHECK_EQ(r.dropped.size(), size_t(5));
  const DropReason want[5] = {DropReason::Empty, DropReason::ZeroSize, DropReason::EmptyCrop, DropReason::EmptyAlpha,
                              DropReason::ClippedOut};
  for (size_t i = 0; i < 5 && i < r.dropped.size(); ++i) CHECK(r.dropped[i].reason == want[i]);
  CHECK_EQ(r.instances.size(), size_t(2));
  // Real 0 lost columns 2..3 of rows 2..3 (the 4 x 4 paste at 0..3): 40 - 4 = 36 pixels.
  CHECK_EQ(r.instances[0].area, int64_t(36));
  CHECK(r.instances[0].box.x == 2 && r.instances[0].box.y == 2 && r.instances[0].box.w == 10 && r.instances[0].box.h == 4);
  const Bytes& rm = o.mask_of(r.instances[0]);
  for (int64_t i = 0; i < 256; ++i) {
    const int64_t x = i % 16, y = i / 16;
    const bool want_on = y >= 2 && y < 6 && x >= 2 && x < 12 && !(x < 4 && y < 4);
    CHECK_EQ(static_cast<int>(rm[static_cast<size_t>(i)]), want_on ? 1 : 0);
  }
  const Bytes& pm = o.mask_of(r.instances[1]);
  for (int64_t i = 0; i < 256; ++i) CHECK_EQ(static_cast<int>(pm[static_cast<size_t>(i)]), (i % 16 < 4 && i / 16 < 4) ? 1 : 0);
  CHECK_EQ(static_cast<int>(o.out_image[0]), 1);
  CHECK_EQ(static_cast<int>(o.out_image[(5 * 16 + 5) * 3]), 10);
}

TEST(composite_mask_threshold) {
  // A 4 x 4 crop whose left column has alpha 60 (the rest 255), pasted at
  // scale 1 at (2, 2) of an 8 x 8 grey image: §2.5's rule (threshold 1,
  // alpha > 0) annotates all 16 pixels; 128 annotates the 12 opaque ones.
  Bytes crop(4 * 4 * 4);
  for (int i = 0; i < 16; ++i) {
    crop[4 * i] = 200;
    crop[4 * i + 1] = 100;
    crop[4 * i + 2] = 0;
    crop[4 * i + 3] = i % 4 == 0 ? 60 : 255;
  }
  auto run = [&](int thr, BlendMode blend, Owned& o) {
    o = grey(8, 8, 50);
    o.crops = {crop};
    o.s.pastes = {paste(o.crops[0], 4, 4, 4, 4, 4, 4)};  // x0 = y0 = 2
    o.finish();
    CompositeOptions opt;
    opt.mask_threshold = thr;
    opt.blend = blend;
    return composite_scene(o.s, opt);
  };
  const int blended = (200 * 60 + 50 * 195 + 127) / 255;  // red channel of an alpha-60 pixel over 50
  for (BlendMode blend : {BlendMode::Basic, BlendMode::Alpha}) {
    Owned o;
    CompositeResult r = run(1, blend, o);
    CHECK_EQ(r.instances.size(), size_t(1));
    CHECK_EQ(r.instances[0].area, int64_t(16));
    CHECK(r.instances[0].box.x == 2 && r.instances[0].box.y == 2 && r.instances[0].box.w == 4 && r.instances[0].box.h == 4);
    // Column 2 (alpha 60) is in the mask and painted.
    CHECK_EQ(static_cast<int>(o.out_image[(3 * 8 + 2) * 3]), blend == BlendMode::Basic ? 200 : blended);
    r = run(128, blend, o);
    CHECK_EQ(r.instances.size(), size_t(1));
    CHECK_EQ(r.instances[0].area, int64_t(12));
    CHECK(r.instances[0].box.x == 3 && r.instances[0].box.y == 2 && r.instances[0].box.w == 3 && r.instances[0].box.h == 4);
    // Column 2 is outside the mask: untouched with every blend.
    for (int y = 0; y < 8; ++y)
      for (int c = 0; c < 3; ++c) CHECK_EQ(static_cast<int>(o.out_image[(y * 8 + 2) * 3 + c]), 50);
    CHECK_EQ(static_cast<int>(o.out_image[(3 * 8 + 3) * 3]), 200);
  }
  // Skip reasons use the same threshold: all-alpha-100 is empty-alpha at 128;
  // an instance whose only in-image column has alpha 100 is clipped-out at 128.
  Bytes faint{1, 2, 3, 100};
  Bytes edge{1, 2, 3, 100, 4, 5, 6, 255};
  for (int thr : {1, 100, 101, 128}) {
    Owned o = grey(8, 8);
    o.crops = {faint, edge};
    o.s.pastes = {paste(o.crops[0], 1, 1, 3, 3, 4, 4), paste(o.crops[1], 2, 1, 2, 1, 8, 0)};  // the second: x0 = 7
    o.finish();
    CompositeOptions opt;
    opt.mask_threshold = thr;
    CompositeResult r = composite_scene(o.s, opt);
    if (thr <= 100) {
      CHECK_EQ(r.dropped.size(), size_t(0));
      CHECK_EQ(r.instances.size(), size_t(2));
      if (r.instances.size() == 2) {
        CHECK_EQ(r.instances[0].area, int64_t(9));
        CHECK(r.instances[1].area == 1 && r.instances[1].box.x == 7 && r.instances[1].box.y == 0);
      }
    } else {
      CHECK_EQ(r.instances.size(), size_t(0));
      CHECK_EQ(r.dropped.size(), size_t(2));
      if (r.dropped.size() == 2) {
        CHECK(r.dropped[0].reason == DropReason::EmptyAlpha);
        CHECK(r.dropped[1].reason == DropReason::ClippedOut);
      }
      CHECK(o.out_image == o.image);  // nothing painted
    }
  }
}

TEST(composite_box_only) {
  Owned o = grey(16, 16);
  o.s.box_only = true;
  o.s.boxes = {1.6, 2.4, 5, 3.2, 20, 20, 4, 4};
  o.finish();
  CompositeResult r = composite_scene(o.s, CompositeOptions{});
  CHECK_EQ(r.instances.size(), size_t(1));
  CHECK(r.instances[0].box.x == 2 && r.instances[0].box.y == 2 && r.instances[0].box.w == 5 && r.instances[0].box.h == 4);
  CHECK_EQ(r.instances[0].area, int64_t(20));
  CHECK(r.dropped.size() == 1 && r.dropped[0].reason == DropReason::Empty);
}

TEST(composite_threads_do_not_change_results) {
  std::mt19937 rng(9);
  std::vector<Owned> a(24), b;
  for (auto& o : a) {
    o = grey(40 + rng() % 40, 40 + rng() % 40);
    for (auto& v : o.image) v = static_cast<uint8_t>(rng());
    for (int r = 0; r < 3; ++r) {
      Bytes m(static_cast<size_t>(o.s.h * o.s.w));
      const int64_t x0 = rng() % o.s.w, y0 = rng() % o.s.h;
      for (int64_t y = y0; y < std::min(o.s.h, y0 + 20); ++y)
        for (int64_t x = x0; x < std::min(o.s.w, x0 + 25); ++x) m[static_cast<size_t>(y * o.s.w + x)] = 1;
      o.masks.push_back(m);
    }
    o.crops.resize(4);
    for (int p = 0; p < 4; ++p) {
      const int64_t w = 1 + rng() % 30, h = 1 + rng() % 30;
      o.crops[p].resize(static_cast<size_t>(w * h * 4));
      for (auto& v : o.crops[p]) v = static_cast<uint8_t>(rng() | 0x80);
      o.s.pastes.push_back(paste(o.crops[p], w, h, 1 + rng() % 50, 1 + rng() % 50, static_cast<double>(rng() % o.s.w),
                                 static_cast<double>(rng() % o.s.h), rng() & 1));
    }
  }
  b = a;
  for (auto& o : a) o.finish();
  for (auto& o : b) o.finish();
  std::vector<CompositeScene> sa, sb;
  for (auto& o : a) sa.push_back(o.s);
  for (auto& o : b) sb.push_back(o.s);
  CompositeOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  o1.blend = o2.blend = BlendMode::Alpha;
  auto ra = composite_batch(sa, o1), rb = composite_batch(sb, o2);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].out_image == b[i].out_image);
    CHECK_EQ(ra[i].instances.size(), rb[i].instances.size());
    for (size_t k = 0; k < ra[i].instances.size() && k < rb[i].instances.size(); ++k) {
      CHECK_EQ(ra[i].instances[k].area, rb[i].instances[k].area);
      CHECK(a[i].mask_of(ra[i].instances[k]) == b[i].mask_of(rb[i].instances[k]));
    }
  }
}

TEST(composite_argument_errors) {
  Owned o = grey(8, 8);
  o.crops.push_back(Bytes{1, 2, 3, 255});
  o.s.pastes.push_back(paste(o.crops[0], 1, 1, 2, 2, 1, 1));
  o.finish();
  CompositeOptions opt;
  opt.sigma = 0;
  CHECK_THROWS_CODE(composite_scene(o.s, opt), "E_RANGE");
  opt = CompositeOptions{};
  opt.mask_threshold = 0;
  CHECK_THROWS_CODE(composite_scene(o.s, opt), "E_RANGE");
  opt.mask_threshold = 256;
  CHECK_THROWS_CODE(composite_scene(o.s, opt), "E_RANGE");
  opt = CompositeOptions{};
  opt.keep_min_area = -1;
  CHECK_THROWS_CODE(composite_scene(o.s, opt), "E_RANGE");
  CompositeScene s = o.s;
  s.pastes[0].target_w = -1;
  CHECK_THROWS_CODE(composite_scene(s, CompositeOptions{}), "E_RANGE");
  s = o.s;
  s.pastes[0].cx = NAN;
  CHECK_THROWS_CODE(composite_scene(s, CompositeOptions{}), "E_RANGE");
  s = o.s;
  s.out_masks.pop_back();
  CHECK_THROWS_CODE(composite_scene(s, CompositeOptions{}), "E_SHAPE");
  s = o.s;
  s.box_only = true;
  s.boxes = {1, 2, 3};
  s.out_masks.clear();
  CHECK_THROWS_CODE(composite_scene(s, CompositeOptions{}), "E_SHAPE");
  s = o.s;
  s.h = -1;
  CHECK_THROWS_CODE(composite_scene(s, CompositeOptions{}), "E_SHAPE");
}

TEST(composite_random_scenes_keep_invariants) {
  // Random scenes of every kind (masks or boxes, every blend and mask
  // threshold, instances partly or wholly outside, empty crops and alphas):
  // every output mask is 0/1 and non-empty, its box is tight and its area its
  // pixel count, and with `basic` no pixel belongs to a pasted instance and
  // another one. Pixels and masks agree: no pixel outside the union of the
  // pasted masks (each paste's mask alone, from a scene of that paste only)
  // changes, and with `basic` each pixel of the union is the colour of the
  // top-most paste covering it.
  std::mt19937 rng(77);
  auto uni = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  for (int t = 0; t < 600; ++t) {
    Owned o = grey(uni(1, 48), uni(1, 48));
    for (auto& v : o.image) v = static_cast<uint8_t>(rng());
    const int64_t H = o.s.h, W = o.s.w;
    o.s.box_only = t % 4 == 3;
    const int64_t R = uni(0, 3);
    for (int64_t r = 0; r < R; ++r) {
      if (o.s.box_only) {
        for (int k = 0; k < 4; ++k) o.s.boxes.push_back(k < 2 ? uni(-10, 50) + 0.25 * uni(0, 3) : uni(0, 30) + 0.5 * uni(0, 1));
      } else {
        Bytes m(static_cast<size_t>(H * W));
        for (auto& v : m) v = rng() % 3 == 0 ? static_cast<uint8_t>(rng() | 1) : 0;
        o.masks.push_back(m);
      }
    }
    const int64_t P = uni(0, 5);
    o.crops.resize(static_cast<size_t>(P));
    for (int64_t p = 0; p < P; ++p) {
      const int64_t w = uni(0, 20), h = uni(0, 20);
      o.crops[p].resize(static_cast<size_t>(w * h * 4));
      const int kind = static_cast<int>(rng() % 4);
      for (size_t i = 0; i < o.crops[p].size(); ++i)
        o.crops[p][i] = i % 4 == 3 ? (kind == 0 ? 0 : kind == 1 ? 255 : static_cast<uint8_t>(rng())) : static_cast<uint8_t>(rng());
      o.s.pastes.push_back(paste(o.crops[p], w, h, uni(0, 60), uni(0, 60), static_cast<double>(uni(-30, 80)) + 0.5 * uni(0, 1),
                                 static_cast<double>(uni(-30, 80)), rng() & 1));
    }
    o.finish();
    CompositeOptions opt;
    opt.blend = static_cast<BlendMode>(t % 3);
    opt.sigma = 0.5 + uni(0, 6);
    opt.keep_max_shift = uni(0, 10);
    opt.keep_min_area = uni(0, 100);
    opt.mask_threshold = t % 5 == 0 ? 1 : t % 5 == 1 ? 128 : t % 5 == 2 ? 255 : static_cast<int>(uni(1, 255));
    opt.threads = 1;
    CompositeResult r = composite_scene(o.s, opt);
    CHECK_EQ(r.instances.size() + r.dropped.size(), static_cast<size_t>(R + P));
    // Each paste alone: its mask and (basic) its painted colours.
    std::vector<int> top(static_cast<size_t>(H * W), -1);
    std::vector<Owned> alone(static_cast<size_t>(P));
    for (int64_t p = 0; p < P; ++p) {
      Owned& a = alone[static_cast<size_t>(p)];
      a = grey(H, W);
      a.image = o.image;
      a.crops = {o.crops[static_cast<size_t>(p)]};
      a.s.pastes = {o.s.pastes[static_cast<size_t>(p)]};
      a.s.pastes[0].rgba = a.crops[0].data();
      a.finish();
      CompositeOptions ao = opt;
      ao.blend = BlendMode::Basic;
      CompositeResult ar = composite_scene(a.s, ao);
      if (ar.instances.empty()) continue;
      const Bytes& am = a.mask_of(ar.instances[0]);
      for (int64_t i = 0; i < H * W; ++i)
        if (am[static_cast<size_t>(i)]) top[static_cast<size_t>(i)] = static_cast<int>(p);
    }
    for (int64_t i = 0; i < H * W; ++i) {
      const int tp = top[static_cast<size_t>(i)];
      for (int c = 0; c < 3; ++c) {
        const size_t k = static_cast<size_t>(3 * i + c);
        if (tp < 0) CHECK_EQ(static_cast<int>(o.out_image[k]), static_cast<int>(o.image[k]));
        else if (opt.blend == BlendMode::Basic)
          CHECK_EQ(static_cast<int>(o.out_image[k]), static_cast<int>(alone[static_cast<size_t>(tp)].out_image[k]));
      }
    }
    std::vector<int> owner(static_cast<size_t>(H * W), -1);
    for (size_t k = 0; k < r.instances.size(); ++k) {
      const CompositeInstance& in = r.instances[k];
      const Bytes& m = o.mask_of(in);
      int64_t area = 0, x0 = W, y0 = H, x1 = -1, y1 = -1;
      bool binary = true;
      for (int64_t i = 0; i < H * W; ++i) {
        const uint8_t v = m[static_cast<size_t>(i)];
        if (v > 1) binary = false;
        if (!v) continue;
        ++area;
        x0 = std::min(x0, i % W), x1 = std::max(x1, i % W), y0 = std::min(y0, i / W), y1 = std::max(y1, i / W);
        int& ow = owner[static_cast<size_t>(i)];
        if (opt.blend == BlendMode::Basic && ow >= 0 &&
            (in.source == Source::Pasted || r.instances[static_cast<size_t>(ow)].source == Source::Pasted))
          CHECK(false);
        ow = static_cast<int>(k);
      }
      CHECK(binary);
      CHECK(area > 0);
      CHECK_EQ(in.area, area);
      CHECK(in.box.x == x0 && in.box.y == y0 && in.box.w == x1 - x0 + 1 && in.box.h == y1 - y0 + 1);
    }
  }
}

TEST(composite_crop_masks_equal_full_masks_cropped) {
  std::mt19937 rng(31);
  for (int t = 0; t < 200; ++t) {
    Owned a = grey(8 + rng() % 40, 8 + rng() % 40);
    for (auto& v : a.image) v = static_cast<uint8_t>(rng());
    const int64_t H = a.s.h, W = a.s.w;
    for (int r = 0; r < 2; ++r) {
      Bytes m(static_cast<size_t>(H * W));
      for (auto& v : m) v = rng() % 2;
      a.masks.push_back(m);
    }
    a.crops.resize(3);
    for (int p = 0; p < 3; ++p) {
      const int64_t w = 1 + rng() % 12, h = 1 + rng() % 12;
      a.crops[p].resize(static_cast<size_t>(w * h * 4));
      for (auto& v : a.crops[p]) v = static_cast<uint8_t>(rng() | 0x80);
      a.s.pastes.push_back(paste(a.crops[p], w, h, 1 + rng() % 30, 1 + rng() % 30, static_cast<double>(rng() % W),
                                 static_cast<double>(rng() % H), rng() & 1));
    }
    Owned b = a;
    a.finish();
    b.finish();
    b.s.crop_masks = true;
    b.s.out_masks.clear();
    const CompositeResult ra = composite_scene(a.s, CompositeOptions{}), rb = composite_scene(b.s, CompositeOptions{});
    CHECK(a.out_image == b.out_image);
    CHECK_EQ(ra.instances.size(), rb.instances.size());
    for (size_t k = 0; k < ra.instances.size() && k < rb.instances.size(); ++k) {
      const Box bx = ra.instances[k].box;
      const Bytes& full = a.mask_of(ra.instances[k]);
      Bytes want;
      for (int64_t y = bx.y; y < bx.y + bx.h; ++y)
        want.insert(want.end(), full.begin() + y * W + bx.x, full.begin() + y * W + bx.x + bx.w);
      CHECK(rb.instances[k].crop == want);
    }
  }
}

namespace {

// Random scenes with real masks and pasted instances of every size class
// (1-pixel-wide crops included, which take the reference path).
std::vector<Owned> random_scenes(uint32_t seed, int count) {
  std::mt19937 rng(seed);
  std::vector<Owned> a(static_cast<size_t>(count));
  for (auto& o : a) {
    o = grey(30 + rng() % 50, 30 + rng() % 50);
    for (auto& v : o.image) v = static_cast<uint8_t>(rng());
    for (int r = 0; r < 2; ++r) {
      Bytes m(static_cast<size_t>(o.s.h * o.s.w));
      const int64_t x0 = rng() % o.s.w, y0 = rng() % o.s.h;
      for (int64_t y = y0; y < std::min(o.s.h, y0 + 15); ++y)
        for (int64_t x = x0; x < std::min(o.s.w, x0 + 20); ++x) m[static_cast<size_t>(y * o.s.w + x)] = 1;
      o.masks.push_back(m);
    }
    o.crops.resize(5);
    for (int p = 0; p < 5; ++p) {
      const int64_t w = p == 0 ? 1 : 1 + rng() % 40, h = 1 + rng() % 40;
      o.crops[p].resize(static_cast<size_t>(w * h * 4));
      for (auto& v : o.crops[p]) v = static_cast<uint8_t>(rng());
      o.s.pastes.push_back(paste(o.crops[p], w, h, 1 + rng() % 60, 1 + rng() % 60, static_cast<double>(rng() % o.s.w),
                                 static_cast<double>(rng() % o.s.h), rng() & 1));
    }
  }
  return a;
}

}  // namespace

TEST(composite_row_kernels_every_isa_match_the_reference) {
  const CompositeKernels& ref = composite_kernels_reference();
  CHECK(ref.isa == Isa::Scalar);
  std::mt19937 rng(2024);
  for (Isa isa : available_isas()) {
    const CompositeKernels& K = composite_kernels_for(isa);
    // Pinning selects that level's kernel (AVX-512 has none of its own: AVX2).
#ifdef GENAUG_HAVE_X86_KERNELS
    CHECK(K.isa == (isa == Isa::Avx512 ? Isa::Avx2 : isa));
#else
    CHECK(K.isa == Isa::Scalar);
#endif
    for (int trial = 0; trial < 3000; ++trial) {
      const int64_t sw = trial % 7 == 0 ? 1 : 2 + rng() % 40;
      const bool wide = sw >= 2;
      const int64_t n = rng() % 38;
      Bytes r0(static_cast<size_t>(sw * 4)), r1(static_cast<size_t>(sw * 4));
      // Extremes as well as random values, so saturation would show.
      for (auto* row : {&r0, &r1})
        for (auto& v : *row) v = trial % 5 == 0 ? static_cast<uint8_t>((rng() & 1) * 255) : static_cast<uint8_t>(rng());
      std::vector<int64_t> xoff(static_cast<size_t>(n));
      std::vector<int32_t> xw(static_cast<size_t>(n)), xw4(static_cast<size_t>(4 * n));
      for (int64_t k = 0; k < n; ++k) {
        const int64_t x0 = wide ? static_cast<int64_t>(rng() % (sw - 1)) : 0;  // wide: both taps inside the row
        const int32_t a = wide ? static_cast<int32_t>(rng() % 2049) : 0;
        xoff[static_cast<size_t>(k)] = x0 * 4;
        xw[static_cast<size_t>(k)] = (2048 - a) | (a << 16);
        for (int c = 0; c < 4; ++c) xw4[static_cast<size_t>(4 * k + c)] = xw[static_cast<size_t>(k)];
      }
      const int32_t b = trial % 11 == 0 ? 2048 : static_cast<int32_t>(rng() % 2049);
      Bytes want(static_cast<size_t>(4 * n + 16), 0xEE), got(want.size(), 0xEE);
      ref.resize_row(r0.data(), r1.data(), xoff.data(), xw.data(), xw4.data(), b, n, wide, want.data());
      K.resize_row(r0.data(), r1.data(), xoff.data(), xw.data(), xw4.data(), b, n, wide, got.data());
      CHECK(got == want);  // the bytes past 4n (0xEE) included: nothing written beyond the row
    }
  }
}

TEST(composite_scenes_are_byte_identical_at_every_isa) {
  for (BlendMode blend : {BlendMode::Basic, BlendMode::Alpha, BlendMode::Gaussian}) {
    std::vector<Owned> first;
    std::vector<CompositeResult> first_r;
    for (Isa isa : available_isas()) {
      std::vector<Owned> a = random_scenes(77, 12);
      for (auto& o : a) o.finish();
      std::vector<CompositeScene> sa;
      for (auto& o : a) sa.push_back(o.s);
      CompositeOptions opt;
      opt.blend = blend;
      opt.isa = isa;
      opt.threads = 2;
      std::vector<CompositeResult> r = composite_batch(sa, opt);
      if (first.empty()) {
        first = std::move(a);
        first_r = std::move(r);
        continue;
      }
      for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].out_image == first[i].out_image);
        CHECK_EQ(r[i].instances.size(), first_r[i].instances.size());
        CHECK_EQ(r[i].dropped.size(), first_r[i].dropped.size());
        for (size_t k = 0; k < r[i].instances.size() && k < first_r[i].instances.size(); ++k) {
          CHECK_EQ(r[i].instances[k].area, first_r[i].instances[k].area);
          CHECK(a[i].mask_of(r[i].instances[k]) == first[i].mask_of(first_r[i].instances[k]));
        }
      }
    }
  }
  // The public window resize, pinned likewise.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t w = 1 + rng() % 30, h = 1 + rng() % 30, tw = 1 + rng() % 70, th = 1 + rng() % 70;
    Bytes crop(static_cast<size_t>(w * h * 4));
    for (auto& v : crop) v = static_cast<uint8_t>(rng());
    const PasteSpec p = paste(crop, w, h, tw, th, 0, 0, rng() & 1);
    Bytes want(static_cast<size_t>(tw * th * 4));
    composite_resize_window(p, 0, tw, 0, th, want.data(), Isa::Scalar);
    for (Isa isa : available_isas()) {
      Bytes got(want.size(), 0xEE);
      composite_resize_window(p, 0, tw, 0, th, got.data(), isa);
      CHECK(got == want);
    }
  }
}
