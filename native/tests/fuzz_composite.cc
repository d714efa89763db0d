// Fuzz target for the compositor's inputs: composite_batch with scenes and
// options built from the input, every byte length given as the binding gives
// its typed arrays' lengths (so the length checks, now in composite_check,
// are exercised with buffers of exactly the declared size).
// Built with clang it is a libFuzzer target; otherwise fuzz_driver_bytes.cc
// supplies main().
//
// Input (fuzz_input.h): options, then 0..3 scenes: size (0..24 a side, or past
// a limit), masks or boxes, pasted instances (crop 0..16, target 0..40 or
// past a limit, centre, flip), each length sometimes off; pixels, masks and
// alpha come from a xorshift seeded by the input.
// The call may reject any input, but only with genaug::Error E_SHAPE,
// E_RANGE, E_ARGUMENT or E_LIMIT. Whatever it accepts must account for every
// instance exactly once (kept or dropped), give each kept instance a 0/1 mask
// whose area and tight box are the ones reported, keep a pasted mask apart from every other, a
// real instance inside its input mask or box, leave every pixel outside the
// pasted rectangles unchanged, and give the same bytes with the scalar resize
// kernel as with the CPU's best, and with the device path run by the CPU
// emulation (composite_device.h; in batches of one scene when asked).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "composite.h"
#include "composite_device.h"
#include "error.h"
#include "fuzz_require.h"
#include "fuzz_input.h"

namespace {

using Bytes = std::vector<uint8_t>;

// A byte length: usually the right one, sometimes off by one or empty.
int64_t length(fuzz_input::Reader& in, int64_t right) {
  switch (in.u8() % 40) {
    case 0: return right + 1;
    case 1: return right > 0 ? right - 1 : 0;
    case 2: return 0;
    default: return right;
  }
}

// A buffer of `len` bytes (at most 1 MiB: sizes past a limit never get that far).
Bytes buffer(int64_t len, uint64_t seed, uint8_t density) {
  return fuzz_input::fill(static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(len, 0), 1 << 20)), seed, density);
}

struct SceneData {
  Bytes image;
  std::vector<Bytes> masks;
  std::vector<Bytes> rgba;
  Bytes out;  // image + slots
};

struct Run {
  std::vector<SceneData> data;
  std::vector<genaug::CompositeScene> scenes;
};

void outputs(Run& run, bool crop) {
  for (size_t i = 0; i < run.scenes.size(); ++i) {
    genaug::CompositeScene& s = run.scenes[i];
    SceneData& d = run.data[i];
    const bool small = s.h >= 0 && s.w >= 0 && s.h <= 64 && s.w <= 64;
    const int64_t hw = small ? s.h * s.w : 1;
    const int64_t real = s.real_count();
    const size_t slots = crop ? 0 : static_cast<size_t>(real) + s.pastes.size();
    d.out.assign(static_cast<size_t>(hw) * (3 + slots), 0xAB);
    s.out_image = d.out.data();
    s.out_masks.clear();
    for (size_t k = 0; k < slots; ++k) s.out_masks.push_back(d.out.data() + hw * (3 + static_cast<int64_t>(k)));
    s.crop_masks = crop;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_input::Reader in(data, size);
  genaug::CompositeOptions opt;
  opt.blend = static_cast<genaug::BlendMode>(in.below(3));
  static const int kThreshold[] = {1, 128, 255, 2, 0, 256};
  static const double kSigma[] = {2, 0.5, 64, 1e-3, 8, 0, -1, 65, NAN};
  static const int64_t kShift[] = {10, 0, 1, 3, -1, int64_t(1) << 40};
  static const int64_t kArea[] = {300, 0, 5, 20, -1};
  static const int kThreads[] = {1, 1, 1, 2, 3, -1, 257};
  opt.mask_threshold = kThreshold[in.below(6)];
  opt.sigma = kSigma[in.below(9)];
  opt.keep_max_shift = kShift[in.below(6)];
  opt.keep_min_area = kArea[in.below(5)];
  opt.threads = kThreads[in.below(7)];
  const uint8_t bits = in.u8();
  const bool crop = bits & 1, compare_isa = (bits & 6) == 6, compare_device = (bits & 24) == 24;
  opt.isa = genaug::Isa::Avx512;  // clamped to the CPU

  Run run;
  const size_t n = in.below(4);
  run.data.resize(n);
  run.scenes.resize(n);
  static const int64_t kSide[] = {-1, 65535, 70000, int64_t(1) << 31, 0};
  static const int64_t kCrop[] = {-1, 65536, 65537, 0};
  static const int64_t kTarget[] = {-1, 1 << 20, (1 << 20) + 1, 0, 1000};
  for (size_t i = 0; i < n; ++i) {
    genaug::CompositeScene& s = run.scenes[i];
    SceneData& d = run.data[i];
    s.h = in.size(25, kSide, 5);
    s.w = in.size(25, kSide, 5);
    const bool small = s.h >= 0 && s.w >= 0 && s.h <= 64 && s.w <= 64;
    const int64_t hw = small ? s.h * s.w : 1;
    const uint64_t seed = in.u16();
    d.image = buffer(length(in, hw * 3), seed, 255);
    s.image = d.image.data();
    s.image_bytes = static_cast<int64_t>(d.image.size());
    const uint8_t kind = in.u8();
    const size_t R = in.below(4);
    if (kind % 4 == 0) {  // a box-only scene
      s.box_only = true;
      const size_t values = 4 * R + (in.u8() % 16 == 0 ? 1 + in.below(3) : 0);
      for (size_t k = 0; k < values; ++k) s.boxes.push_back(in.coord());
      if (kind == 4) s.masks.push_back(d.image.data());  // masks too: refused
    } else {
      for (size_t r = 0; r < R; ++r) {
        const uint8_t density = in.u8();
        Bytes m = buffer(length(in, hw), seed + 17 * (r + 1), density);
        if (density & 1) {  // a rectangle rather than noise
          const int64_t x0 = in.below(26), y0 = in.below(26), x1 = in.below(26), y1 = in.below(26);
          for (int64_t y = 0; small && y < s.h; ++y)
            for (int64_t x = 0; x < s.w; ++x)
              if (y * s.w + x < static_cast<int64_t>(m.size())) m[static_cast<size_t>(y * s.w + x)] = x >= x0 && x < x1 && y >= y0 && y < y1;
        }
        d.masks.push_back(std::move(m));
      }
      for (const Bytes& m : d.masks) {
        s.masks.push_back(m.data());
        s.mask_bytes.push_back(static_cast<int64_t>(m.size()));
      }
    }
    const size_t P = in.below(4);
    for (size_t p = 0; p < P; ++p) {
      genaug::PasteSpec ps;
      ps.width = in.size(17, kCrop, 4);
      ps.height = in.size(17, kCrop, 4);
      ps.target_w = in.size(41, kTarget, 5);
      ps.target_h = in.size(41, kTarget, 5);
      ps.flip = in.flag();
      ps.cx = in.coord();
      ps.cy = in.coord();
      const bool sane = ps.width >= 0 && ps.height >= 0 && ps.width <= 64 && ps.height <= 64;
      Bytes rgba = buffer(length(in, sane ? ps.width * ps.height * 4 : 4), seed + 1000 + p, 255);
      const uint8_t alpha = in.u8();  // chance of a visible pixel
      for (size_t k = 3; k < rgba.size(); k += 4) rgba[k] = (rgba[k - 1] < alpha) ? rgba[k - 3] | 1 : 0;
      d.rgba.push_back(std::move(rgba));
      ps.rgba = d.rgba.back().data();
      ps.rgba_bytes = static_cast<int64_t>(d.rgba.back().size());
      s.pastes.push_back(ps);
    }
  }
  outputs(run, crop);

  std::vector<genaug::CompositeResult> res;
  try {
    res = genaug::composite_batch(run.scenes, opt);
  } catch (const genaug::Error& e) {
    FUZZ_REQUIRE(e.code() == "E_SHAPE" || e.code() == "E_RANGE" || e.code() == "E_ARGUMENT" || e.code() == "E_LIMIT");
    return 0;
  }
  FUZZ_REQUIRE(res.size() == n);
  for (size_t i = 0; i < n; ++i) {
    const genaug::CompositeScene& s = run.scenes[i];
    const genaug::CompositeResult& r = res[i];
    // Accepted sizes: up to 24 a side, or an empty scene (0 pixels) of any side within the limits.
    FUZZ_REQUIRE(s.h >= 0 && s.w >= 0 && ((s.h <= 24 && s.w <= 24) || s.h * s.w == 0));
    const int64_t H = s.h, W = s.w, HW = H * W, R = s.real_count(), P = static_cast<int64_t>(s.pastes.size());
    // Every instance once.
    std::set<std::pair<int, int64_t>> seen;
    for (const auto& c : r.instances) FUZZ_REQUIRE(seen.insert({static_cast<int>(c.source), c.index}).second);
    for (const auto& d : r.dropped) FUZZ_REQUIRE(seen.insert({static_cast<int>(d.source), d.index}).second);
    FUZZ_REQUIRE(static_cast<int64_t>(seen.size()) == R + P);
    for (const auto& k : seen) FUZZ_REQUIRE(k.second >= 0 && k.second < (k.first == 0 ? R : P));
    // Masks: 0/1, area, tight box, real ones inside their input.
    std::vector<uint8_t> owner(static_cast<size_t>(HW), 0);
    for (const auto& c : r.instances) {
      FUZZ_REQUIRE(c.box.w >= 1 && c.box.h >= 1 && c.box.x >= 0 && c.box.y >= 0 && c.box.x + c.box.w <= W && c.box.y + c.box.h <= H);
      std::vector<uint8_t> full(static_cast<size_t>(HW), 0);
      if (crop) {
        FUZZ_REQUIRE(static_cast<int64_t>(c.crop.size()) == c.box.w * c.box.h);
        for (int64_t y = 0; y < c.box.h; ++y)
          for (int64_t x = 0; x < c.box.w; ++x) full[static_cast<size_t>((c.box.y + y) * W + c.box.x + x)] = c.crop[static_cast<size_t>(y * c.box.w + x)];
      } else {
        FUZZ_REQUIRE(c.slot == (c.source == genaug::Source::Real ? c.index : R + c.index));
        std::copy(s.out_masks[static_cast<size_t>(c.slot)], s.out_masks[static_cast<size_t>(c.slot)] + HW, full.begin());
      }
      int64_t area = 0, x0 = W, x1 = -1, y0 = H, y1 = -1;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const uint8_t v = full[static_cast<size_t>(y * W + x)];
          FUZZ_REQUIRE(v <= 1);
          if (!v) continue;
          ++area;
          x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
          owner[static_cast<size_t>(y * W + x)] += c.source == genaug::Source::Real ? 1 : 16;
          if (c.source == genaug::Source::Real && !s.box_only) FUZZ_REQUIRE(s.masks[static_cast<size_t>(c.index)][y * W + x] != 0);
          if (c.source == genaug::Source::Real && s.box_only) {
            const double* b = &s.boxes[static_cast<size_t>(4 * c.index)];
            FUZZ_REQUIRE(x >= std::floor(b[0] + 0.5) && x < std::floor(b[0] + b[2] + 0.5));
            FUZZ_REQUIRE(y >= std::floor(b[1] + 0.5) && y < std::floor(b[1] + b[3] + 0.5));
          }
        }
      FUZZ_REQUIRE(area == c.area && area >= 1);
      FUZZ_REQUIRE(x0 == c.box.x && y0 == c.box.y && x1 - x0 + 1 == c.box.w && y1 - y0 + 1 == c.box.h);
    }
    // A pasted instance's pixels belong to it alone (real masks may overlap each other, as in the input).
    for (uint8_t o : owner) FUZZ_REQUIRE(o < 16 || o == 16);
    // Pixels outside every pasted rectangle are the input's.
    std::vector<uint8_t> touched(static_cast<size_t>(HW), 0);
    for (const auto& p : s.pastes) {
      const int64_t px0 = static_cast<int64_t>(std::floor(p.cx - static_cast<double>(p.target_w) / 2 + 0.5));
      const int64_t py0 = static_cast<int64_t>(std::floor(p.cy - static_cast<double>(p.target_h) / 2 + 0.5));
      for (int64_t y = std::max<int64_t>(py0, 0); y < std::min<int64_t>(py0 + p.target_h, H); ++y)
        for (int64_t x = std::max<int64_t>(px0, 0); x < std::min<int64_t>(px0 + p.target_w, W); ++x) touched[static_cast<size_t>(y * W + x)] = 1;
    }
    for (int64_t k = 0; k < HW * 3; ++k)
      if (!touched[static_cast<size_t>(k / 3)]) FUZZ_REQUIRE(s.out_image[k] == s.image[k]);
  }
  // A second run of the same scenes into fresh outputs, and the check that it gave the first run's results and bytes
  // (every kept instance, its box, area, crop and mask; every drop and its reason; the image).
  auto rerun = [&]() {
    Run again;
    again.data = run.data;
    again.scenes = run.scenes;
    for (size_t i = 0; i < n; ++i) {
      genaug::CompositeScene& s = again.scenes[i];
      s.image = again.data[i].image.data();
      for (size_t r = 0; r < s.masks.size(); ++r) s.masks[r] = again.data[i].masks[r].data();
      for (size_t p = 0; p < s.pastes.size(); ++p) s.pastes[p].rgba = again.data[i].rgba[p].data();
    }
    outputs(again, crop);
    return again;
  };
  auto require_same = [&](const Run& again, const std::vector<genaug::CompositeResult>& res2) {
    FUZZ_REQUIRE(res2.size() == n);
    for (size_t i = 0; i < n; ++i) {
      FUZZ_REQUIRE(res2[i].instances.size() == res[i].instances.size() && res2[i].dropped.size() == res[i].dropped.size());
      for (size_t k = 0; k < res[i].instances.size(); ++k) {
        const auto &a = res[i].instances[k], &b = res2[i].instances[k];
        FUZZ_REQUIRE(a.source == b.source && a.index == b.index && a.slot == b.slot && a.area == b.area && a.box.x == b.box.x &&
                     a.box.y == b.box.y && a.box.w == b.box.w && a.box.h == b.box.h && a.crop == b.crop);
      }
      for (size_t k = 0; k < res[i].dropped.size(); ++k)
        FUZZ_REQUIRE(res[i].dropped[k].source == res2[i].dropped[k].source && res[i].dropped[k].index == res2[i].dropped[k].index &&
                     res[i].dropped[k].reason == res2[i].dropped[k].reason);
      const int64_t hw = run.scenes[i].h * run.scenes[i].w;
      FUZZ_REQUIRE(std::equal(run.data[i].out.begin(), run.data[i].out.begin() + hw * 3, again.data[i].out.begin()));
      for (const auto& c : res[i].instances)  // the kept instances' slots (the others need not be written)
        if (!crop) FUZZ_REQUIRE(std::equal(run.scenes[i].out_masks[static_cast<size_t>(c.slot)], run.scenes[i].out_masks[static_cast<size_t>(c.slot)] + hw,
                                           again.scenes[i].out_masks[static_cast<size_t>(c.slot)]));
    }
  };
  if (compare_device) {
    // The device path (the CPU emulation of its kernels) gives the CPU path's bytes.
    Run again = rerun();
    static const std::unique_ptr<genaug::CompositeBackend> be = genaug::emulated_composite_backend(int64_t(1) << 30);
    require_same(again, genaug::device_composite_batch(*be, again.scenes, opt, (bits & 32) ? 1 : 0));
    if (n > 1 && (bits & 32)) FUZZ_REQUIRE(genaug::last_composite_batches() == static_cast<int64_t>(n));
  }
  if (compare_isa) {
    // The scalar row kernel gives the same bytes as the CPU's best.
    Run again = rerun();
    genaug::CompositeOptions scalar = opt;
    scalar.isa = genaug::Isa::Scalar;
    require_same(again, genaug::composite_batch(again.scenes, scalar));
  }
  return 0;
}
