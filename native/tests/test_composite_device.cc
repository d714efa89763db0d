// The compositor's device path, run on the CPU by the emulation backend (the
// per-pixel functions of composite_tiling.h each CUDA thread runs, then the
// host's keep rule from their statistics), against composite_batch, byte for
// byte: the image, every output instance's mask (full frame or cropped to its
// box), boxes, areas and the dropped list, on random scenes with instances
// clipped at every border, 1 x 1 crops and targets, flips, scale up and down,
// every blend, mask thresholds, keep rules that keep and that drop, masks of
// existing instances and box-only scenes, zero-size and empty inputs, threads
// 1 and 2, and scenes processed in several batches through a pretend device
// memory of a few KiB.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include "composite.h"
#include "composite_device.h"
#include "cuda_api.h"
#include "test.h"

using namespace genaug;

namespace {

using Bytes = std::vector<uint8_t>;

struct Owned {
  Bytes image;
  std::vector<Bytes> masks, crops;
  std::vector<double> boxes;
  bool box_only = false;
  std::vector<PasteSpec> pastes;
  int64_t h = 0, w = 0;
  // Outputs of one run.
  Bytes out_image;
  std::vector<Bytes> out_masks;
  CompositeScene scene(bool crop) {
    CompositeScene s;
    s.h = h;
    s.w = w;
    s.image = image.data();
    s.box_only = box_only;
    if (box_only) s.boxes = boxes;
    else
      for (auto& m : masks) s.masks.push_back(m.data());
    s.pastes = pastes;
    for (size_t k = 0; k < pastes.size(); ++k) s.pastes[k].rgba = crops[k].data();
    out_image.assign(static_cast<size_t>(h * w * 3), 0xEE);
    s.out_image = out_image.data();
    s.crop_masks = crop;
    out_masks.clear();
    if (!crop) {
      out_masks.assign(static_cast<size_t>(s.real_count()) + pastes.size(), Bytes(static_cast<size_t>(h * w), 0xEE));
      for (auto& m : out_masks) s.out_masks.push_back(m.data());
    }
    return s;
  }
};

// A crop whose alpha has a transparent border, holes and soft values.
Bytes random_crop(std::mt19937& rng, int64_t w, int64_t h) {
  Bytes c(static_cast<size_t>(w * h * 4));
  std::uniform_int_distribution<int> b(0, 255), coin(0, 5);
  const bool faint = coin(rng) == 0;  // alpha below 100 everywhere: empty at threshold 128
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = &c[static_cast<size_t>((y * w + x) * 4)];
      p[0] = static_cast<uint8_t>(b(rng));
      p[1] = static_cast<uint8_t>(b(rng));
      p[2] = static_cast<uint8_t>(b(rng));
      const bool edge = (x == 0 || y == 0) && w > 2 && h > 2;
      const int k = coin(rng);
      p[3] = edge ? 0 : k == 0 ? 0 : k == 1 ? static_cast<uint8_t>(b(rng)) : 255;
      if (faint) p[3] = static_cast<uint8_t>(p[3] % 100);
    }
  return c;
}

Owned random_scene(std::mt19937& rng, bool box_only) {
  std::uniform_int_distribution<int> side(1, 23), small(0, 4), coin(0, 1);
  Owned o;
  const int kind = small(rng);
  o.h = kind == 0 ? 1 : side(rng);
  o.w = kind == 1 ? 1 : side(rng);
  if (small(rng) == 0 && coin(rng)) o.h = 0;  // an empty image now and then
  const int64_t HW = o.h * o.w;
  o.image.resize(static_cast<size_t>(HW * 3));
  for (auto& v : o.image) v = static_cast<uint8_t>(rng());
  o.box_only = box_only;
  const int R = small(rng);
  for (int r = 0; r < R; ++r) {
    if (box_only) {
      std::uniform_real_distribution<double> pos(-4, 26), size(0, 14);
      o.boxes.insert(o.boxes.end(), {pos(rng), pos(rng), size(rng), size(rng)});
      continue;
    }
    // A rectangle with holes (nonzero values other than 1 as well), or empty.
    Bytes m(static_cast<size_t>(HW), 0);
    if (small(rng) > 0 && HW > 0) {
      std::uniform_int_distribution<int64_t> xs(0, o.w - 1), ys(0, o.h - 1);
      int64_t x0 = xs(rng), x1 = xs(rng), y0 = ys(rng), y1 = ys(rng);
      if (x1 < x0) std::swap(x0, x1);
      if (y1 < y0) std::swap(y0, y1);
      for (int64_t y = y0; y <= y1; ++y)
        for (int64_t x = x0; x <= x1; ++x)
          if (small(rng)) m[static_cast<size_t>(y * o.w + x)] = static_cast<uint8_t>(1 + (rng() % 255));
    }
    o.masks.push_back(std::move(m));
  }
  const int P = small(rng) + small(rng);
  for (int p = 0; p < P; ++p) {
    PasteSpec ps;
    const int k = small(rng);
    ps.width = k == 0 ? 1 : side(rng);
    ps.height = k == 1 ? 1 : side(rng);
    if (small(rng) == 0 && coin(rng)) (coin(rng) ? ps.width : ps.height) = 0;  // empty crop
    ps.target_w = k == 2 ? 1 : std::uniform_int_distribution<int64_t>(0, 30)(rng);
    ps.target_h = k == 3 ? 1 : std::uniform_int_distribution<int64_t>(1, 30)(rng);
    // Centres anywhere from well outside the left / top border to well past the right / bottom.
    std::uniform_real_distribution<double> cx(-12, static_cast<double>(o.w) + 12), cy(-12, static_cast<double>(o.h) + 12);
    ps.cx = coin(rng) ? std::floor(cx(rng)) : cx(rng);
    ps.cy = coin(rng) ? std::floor(cy(rng)) : cy(rng);
    if (small(rng) == 0 && HW > 0) {  // inside the image, unclipped
      ps.target_w = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(o.w));
      ps.target_h = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(o.h));
      ps.cx = static_cast<double>(o.w) / 2;
      ps.cy = static_cast<double>(o.h) / 2;
    }
    ps.flip = coin(rng) != 0;
    o.crops.push_back(random_crop(rng, ps.width, ps.height));
    o.pastes.push_back(ps);
  }
  return o;
}

struct Run {
  std::vector<CompositeResult> res;
  std::vector<Bytes> images;
  std::vector<std::vector<Bytes>> masks;
};

template <typename F>
Run run(std::vector<Owned>& w, bool crop, F&& f) {
  std::vector<CompositeScene> sc;
  for (auto& o : w) sc.push_back(o.scene(crop));
  Run r;
  r.res = f(sc);
  for (auto& o : w) {
    r.images.push_back(o.out_image);
    r.masks.push_back(o.out_masks);
  }
  return r;
}

int64_t g_compared = 0;

void expect_same(const Run& d, const Run& c, bool crop) {
  CHECK_EQ(d.res.size(), c.res.size());
  for (size_t i = 0; i < std::min(d.res.size(), c.res.size()); ++i) {
    CHECK(d.images[i] == c.images[i]);
    const CompositeResult &a = d.res[i], &b = c.res[i];
    CHECK_EQ(a.instances.size(), b.instances.size());
    for (size_t k = 0; k < std::min(a.instances.size(), b.instances.size()); ++k) {
      const CompositeInstance &x = a.instances[k], &y = b.instances[k];
      CHECK(x.source == y.source);
      CHECK_EQ(x.index, y.index);
      CHECK_EQ(x.slot, y.slot);
      CHECK_EQ(x.box.x, y.box.x);
      CHECK_EQ(x.box.y, y.box.y);
      CHECK_EQ(x.box.w, y.box.w);
      CHECK_EQ(x.box.h, y.box.h);
      CHECK_EQ(x.area, y.area);
      if (crop) CHECK(x.crop == y.crop);
      else CHECK(d.masks[i][static_cast<size_t>(x.slot)] == c.masks[i][static_cast<size_t>(y.slot)]);
      ++g_compared;
    }
    CHECK_EQ(a.dropped.size(), b.dropped.size());
    for (size_t k = 0; k < std::min(a.dropped.size(), b.dropped.size()); ++k) {
      CHECK(a.dropped[k].source == b.dropped[k].source);
      CHECK_EQ(a.dropped[k].index, b.dropped[k].index);
      CHECK(a.dropped[k].reason == b.dropped[k].reason);
    }
  }
}

std::vector<CompositeOptions> option_sets() {
  std::vector<CompositeOptions> v;
  for (BlendMode b : {BlendMode::Basic, BlendMode::Alpha, BlendMode::Gaussian})
    for (int thr : {1, 128}) {
      CompositeOptions o;
      o.blend = b;
      o.mask_threshold = thr;
      o.sigma = thr == 1 ? 0.6 : 2.3;
      // Small thresholds so that tiny scenes both keep and drop occluded instances.
      o.keep_max_shift = thr == 1 ? 1 : 0;
      o.keep_min_area = thr == 1 ? 6 : 20;
      v.push_back(o);
    }
  return v;
}

void compare_on(CompositeBackend& be, std::vector<Owned>& world, int64_t device_bytes, int64_t* max_batches) {
  for (const CompositeOptions& base : option_sets())
    for (int threads : {1, 2})
      for (bool crop : {false, true}) {
        CompositeOptions o = base;
        o.threads = threads;
        const Run c = run(world, crop, [&](auto& sc) { return composite_batch(sc, o); });
        const Run d = run(world, crop, [&](auto& sc) { return device_composite_batch(be, sc, o, device_bytes); });
        expect_same(d, c, crop);
        if (max_batches) *max_batches = std::max(*max_batches, last_composite_batches());
      }
}

}  // namespace

TEST(composite_device_emulation_is_the_cpu_bytes) {
  std::mt19937 rng(17);
  auto be = emulated_composite_backend(int64_t(1) << 30);
  std::vector<Owned> world;
  for (int i = 0; i < 40; ++i) world.push_back(random_scene(rng, i % 4 == 3));
  g_compared = 0;
  int64_t batches = 0;
  compare_on(*be, world, 0, &batches);
  CHECK_EQ(batches, 1);  // 1 GiB of pretend memory holds them all
  CHECK(g_compared > 500);
  // Every drop reason and both outcomes of the keep rule happened.
  bool seen[6] = {}, kept_occluded = false;
  for (const CompositeOptions& o : option_sets()) {
    std::vector<CompositeScene> sc;
    for (auto& w : world) sc.push_back(w.scene(false));
    const auto r = composite_batch(sc, o);
    for (size_t i = 0; i < r.size(); ++i) {
      for (auto& d : r[i].dropped) seen[static_cast<int>(d.reason)] = true;
      // A surviving real instance that lost pixels to a paste (its area is below its input's).
      for (auto& in : r[i].instances)
        if (in.source == Source::Real && !world[i].box_only &&
            in.area < static_cast<int64_t>(world[i].masks[static_cast<size_t>(in.index)].size() -
                                           std::count(world[i].masks[static_cast<size_t>(in.index)].begin(),
                                                      world[i].masks[static_cast<size_t>(in.index)].end(), 0)))
          kept_occluded = true;
    }
  }
  for (int k = 0; k < 6; ++k) {
    if (!seen[k]) std::cerr << "  no drop of reason " << drop_reason_name(static_cast<DropReason>(k)) << "\n";
    CHECK(seen[k]);
  }
  CHECK(kept_occluded);
}

TEST(composite_device_batches_from_free_memory) {
  std::mt19937 rng(5);
  std::vector<Owned> world;
  for (int i = 0; i < 12; ++i) world.push_back(random_scene(rng, i % 3 == 2));
  // A few KiB of pretend device memory: several batches (a scene larger than
  // the cap is a batch of its own); the bytes do not change.
  int64_t batches = 0;
  auto be = emulated_composite_backend(int64_t(1) << 30);
  compare_on(*be, world, 4096, &batches);
  CHECK(batches >= 4);
  // The budget from the backend's free memory: 3/4 of it less 64 MiB.
  auto tight = emulated_composite_backend((int64_t(64) << 20) * 4 / 3 + 12000);
  batches = 0;
  compare_on(*tight, world, 0, &batches);
  CHECK(batches >= 2);
}

TEST(composite_device_hand_cases) {
  // A 2 x 2 crop scaled up to 5 x 3, flipped, at each corner and the centre
  // of a 6 x 7 image with one real mask covering everything: clipped at every border.
  std::vector<Owned> world;
  Bytes crop = {10, 20, 30, 255, 40, 50, 60, 128, 70, 80, 90, 0, 100, 110, 120, 255};
  const double cs[][2] = {{0, 0}, {6, 0}, {0, 5}, {6, 5}, {3, 2.5}, {-2.5, 1}, {8.5, 4}};
  for (auto& c : cs) {
    Owned o;
    o.h = 6;
    o.w = 7;
    o.image.assign(6 * 7 * 3, 77);
    o.masks.push_back(Bytes(42, 1));
    for (bool flip : {false, true}) {
      PasteSpec p;
      p.width = p.height = 2;
      p.target_w = 5;
      p.target_h = 3;
      p.cx = c[0];
      p.cy = c[1];
      p.flip = flip;
      o.pastes.push_back(p);
      o.crops.push_back(crop);
    }
    // And one scaled down to 1 x 1.
    PasteSpec q;
    q.width = q.height = 2;
    q.target_w = q.target_h = 1;
    q.cx = c[0];
    q.cy = c[1];
    o.pastes.push_back(q);
    o.crops.push_back(crop);
    world.push_back(std::move(o));
  }
  auto be = emulated_composite_backend(int64_t(1) << 30);
  compare_on(*be, world, 0, nullptr);
  compare_on(*be, world, 1, nullptr);  // one scene per batch
}

TEST(composite_device_empty_and_errors) {
  auto be = emulated_composite_backend(int64_t(1) << 30);
  std::vector<CompositeScene> none;
  CHECK(device_composite_batch(*be, none, CompositeOptions{}).empty());
  CHECK_EQ(last_composite_batches(), 0);
  CompositeOptions bad;
  bad.sigma = 0;
  CHECK_THROWS_CODE(device_composite_batch(*be, none, bad), "E_RANGE");
  bad = CompositeOptions{};
  bad.mask_threshold = 0;
  CHECK_THROWS_CODE(device_composite_batch(*be, none, bad), "E_RANGE");
  CHECK_THROWS_CODE(device_composite_batch(*be, none, CompositeOptions{}, -1), "E_RANGE");
  std::mt19937 rng(3);
  Owned o = random_scene(rng, false);
  o.h = o.w = 4;
  o.image.assign(48, 0);
  o.masks.assign(1, Bytes(16, 1));
  o.pastes.clear();
  o.crops.clear();
  std::vector<CompositeScene> sc{o.scene(false)};
  sc[0].out_masks.clear();  // a missing output slot
  CHECK_THROWS_CODE(device_composite_batch(*be, sc, CompositeOptions{}), "E_SHAPE");
  sc = {o.scene(false)};
  sc[0].mask_bytes = {15};
  CHECK_THROWS_CODE(device_composite_batch(*be, sc, CompositeOptions{}), "E_SHAPE");
}

// Where a GPU exists (npm run test:gpu) the CUDA backend gives the same
// bytes; elsewhere it says why it cannot run.
TEST(cuda_composite_backend_is_the_cpu_bytes_or_reports_unavailable) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    CHECK(!why.empty());
    CHECK_THROWS_CODE(cuda_composite_backend(), "E_CUDA_UNAVAILABLE");
    return;
  }
  auto cu = cuda_composite_backend();
  std::mt19937 rng(17);
  std::vector<Owned> world;
  for (int i = 0; i < 40; ++i) world.push_back(random_scene(rng, i % 4 == 3));
  int64_t batches = 0;
  compare_on(*cu, world, 0, &batches);
  compare_on(*cu, world, 4096, &batches);
  CHECK(batches >= 4);
}
