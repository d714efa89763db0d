// The compositor's device path (composite_device.h): the host plans each
// scene (placement, clipping, the windows the resize fills), packs scenes
// into batches that fit the device memory, lets the backend run the per-pixel
// kernels of composite_tiling.h, and replays composite.cc's per-instance
// bookkeeping from the statistics they return.
#include "composite_device.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "device_tiling.h"
#include "error.h"
#include "parallel.h"

namespace genaug {

namespace {

std::atomic<int64_t> g_batches{0};

class EmulatedComposite final : public CompositeBackend {
 public:
  explicit EmulatedComposite(int64_t free_bytes) : free_(free_bytes) {}
  std::string name() const override { return "cuda emulation"; }
  int64_t free_bytes() override { return free_; }

  void run(const CompositeDeviceBatch& b, ctile::Stat* stats) override {
    // "Uploads": every input at its arena offset.
    image_.resize(static_cast<size_t>(b.image_bytes));
    crop_.resize(static_cast<size_t>(b.crop_bytes));
    masks_.resize(static_cast<size_t>(b.mask_bytes));
    win_rgba_.resize(static_cast<size_t>(b.win_elems * 4));
    win_blur_.resize(b.prm.blend == ctile::kBlend_Gaussian ? static_cast<size_t>(b.win_elems) : 0);
    rect_mask_.resize(static_cast<size_t>(b.rect_elems));
    rect_weight_.resize(b.prm.blend == ctile::kBlend_Gaussian ? static_cast<size_t>(b.rect_elems) : 0);
    owner_.resize(static_cast<size_t>(b.owner_elems));
    stats_.resize(static_cast<size_t>(b.stat_elems));
    for (ctile::Stat& s : stats_) ctile::stat_clear(s);
    for (size_t i = 0; i < b.scenes.size(); ++i) {
      const ctile::Scene& s = b.scenes[i];
      const int64_t hw = s.h * s.w;
      if (hw > 0) std::memcpy(image_.data() + s.image, b.image_src[i], static_cast<size_t>(hw * 3));
      if (s.masks >= 0)
        for (int64_t r = 0; r < s.R; ++r)
          if (hw > 0) std::memcpy(masks_.data() + s.masks + r * hw, b.mask_src[i][static_cast<size_t>(r)], static_cast<size_t>(hw));
    }
    for (size_t k = 0; k < b.pastes.size(); ++k) {
      const ctile::Paste& p = b.pastes[k];
      if (p.active) std::memcpy(crop_.data() + p.crop, b.crop_src[k], static_cast<size_t>(p.w * p.h * 4));
    }
    A_.crop = crop_.data();
    A_.masks = masks_.data();
    A_.boxes = b.boxes.data();
    A_.pastes = b.pastes.data();
    A_.scenes = b.scenes.data();
    A_.kern = b.kern.data();
    A_.image = image_.data();
    A_.win_rgba = win_rgba_.data();
    A_.win_blur = win_blur_.data();
    A_.rect_mask = rect_mask_.data();
    A_.rect_weight = rect_weight_.data();
    A_.owner = owner_.data();
    A_.stats = stats_.data();
    // The kernels, as the CUDA backend launches them: the window, blur and
    // rectangle kernels over every paste, then the pixel kernel over every
    // scene. Scenes are independent, so the emulation runs them on threads.
    const int64_t n = static_cast<int64_t>(b.scenes.size());
    std::atomic<int64_t> next{0};
    const ctile::Params prm = b.prm;
    run_threads(std::max(1, std::min<int>(b.threads, static_cast<int>(std::max<int64_t>(n, 1)))), [&](int) {
      for (;;) {
        const int64_t i = next.fetch_add(1);
        if (i >= n) return;
        const ctile::Scene& s = b.scenes[static_cast<size_t>(i)];
        for (int64_t k = s.paste0; k < s.paste0 + s.P; ++k) {
          const ctile::Paste& p = b.pastes[static_cast<size_t>(k)];
          if (!p.active) continue;
          const int64_t win = (p.ej1 - p.ej0) * (p.ei1 - p.ei0), rect = (p.xb - p.xa) * (p.yb - p.ya);
          for (int64_t e = 0; e < win; ++e) ctile::window_px(A_, p, e);
          if (prm.blend == ctile::kBlend_Gaussian)
            for (int64_t e = 0; e < win; ++e) ctile::hblur_px(A_, p, e, prm);
          for (int64_t e = 0; e < rect; ++e) ctile::rect_px(A_, p, e, prm);
        }
        for (int64_t y = 0; y < s.h; ++y)
          for (int64_t x = 0; x < s.w; ++x) ctile::pixel(A_, s, x, y, prm);
      }
    });
    if (b.stat_elems) std::memcpy(stats, stats_.data(), static_cast<size_t>(b.stat_elems) * sizeof(ctile::Stat));
  }

  void read_image(const CompositeDeviceBatch& b, int64_t i, uint8_t* dst) override {
    const ctile::Scene& s = b.scenes[static_cast<size_t>(i)];
    if (s.h * s.w > 0) std::memcpy(dst, image_.data() + s.image, static_cast<size_t>(s.h * s.w * 3));
  }

  void read_mask(const CompositeDeviceBatch& b, int64_t i, int64_t slot, int64_t x, int64_t y, int64_t w, int64_t h,
                 uint8_t* dst) override {
    const ctile::Scene& s = b.scenes[static_cast<size_t>(i)];
    for (int64_t e = 0; e < w * h; ++e) dst[e] = ctile::visible(A_, s, slot, x + e % w, y + e / w);
  }

 private:
  int64_t free_;
  std::vector<uint8_t> image_, crop_, masks_, win_rgba_, rect_mask_, rect_weight_;
  std::vector<float> win_blur_;
  std::vector<int32_t> owner_;
  std::vector<ctile::Stat> stats_;
  ctile::Arenas A_{};
};

// One scene's plan: its pastes placed (offsets relative to the scene), why
// each inactive one is skipped, and its arena sizes.
struct Plan {
  std::vector<ctile::Paste> pastes;
  std::vector<DropReason> skip;  // per paste, for !active
  std::vector<uint8_t> clipped;  // per paste: the rectangle is smaller than the target
  std::vector<int64_t> boxes;    // 4 per real box (box-only)
  int64_t crop = 0, win = 0, rect = 0;
  int64_t bytes = 0;
};

Plan plan_scene(const CompositeScene& s, int64_t rad, bool gaussian) {
  Plan pl;
  const int64_t H = s.h, W = s.w, R = s.real_count(), P = static_cast<int64_t>(s.pastes.size());
  pl.pastes.resize(static_cast<size_t>(P));
  pl.skip.assign(static_cast<size_t>(P), DropReason::Empty);
  pl.clipped.assign(static_cast<size_t>(P), 0);
  if (s.box_only) {
    for (int64_t r = 0; r < R; ++r) {
      const double* b = &s.boxes[static_cast<size_t>(4 * r)];
      int64_t x0 = composite_round_clamp(b[0], 0, W), x1 = composite_round_clamp(b[0] + b[2], 0, W);
      int64_t y0 = composite_round_clamp(b[1], 0, H), y1 = composite_round_clamp(b[1] + b[3], 0, H);
      if (!(x1 > x0 && y1 > y0)) x0 = x1 = y0 = y1 = 0;  // empty (composite.cc writes no pixel)
      pl.boxes.insert(pl.boxes.end(), {x0, x1, y0, y1});
    }
  }
  for (int64_t k = 0; k < P; ++k) {
    const PasteSpec& ps = s.pastes[static_cast<size_t>(k)];
    ctile::Paste& p = pl.pastes[static_cast<size_t>(k)];
    if (ps.target_w == 0 || ps.target_h == 0) {
      pl.skip[static_cast<size_t>(k)] = DropReason::ZeroSize;
      continue;
    }
    if (ps.width == 0 || ps.height == 0) {
      pl.skip[static_cast<size_t>(k)] = DropReason::EmptyCrop;
      continue;
    }
    const int64_t tw = ps.target_w, th = ps.target_h;
    const int64_t x0 = static_cast<int64_t>(std::floor(ps.cx - static_cast<double>(tw) / 2 + 0.5));
    const int64_t y0 = static_cast<int64_t>(std::floor(ps.cy - static_cast<double>(th) / 2 + 0.5));
    const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min<int64_t>(x0 + tw, W);
    const int64_t ya = std::max<int64_t>(y0, 0), yb = std::min<int64_t>(y0 + th, H);
    pl.clipped[static_cast<size_t>(k)] = xa != x0 || ya != y0 || xb != x0 + tw || yb != y0 + th;
    if (xa >= xb || ya >= yb) {
      pl.skip[static_cast<size_t>(k)] = DropReason::ClippedOut;
      continue;
    }
    p.active = 1;
    p.w = ps.width;
    p.h = ps.height;
    p.tw = tw;
    p.th = th;
    p.flip = ps.flip ? 1 : 0;
    p.x0 = x0;
    p.y0 = y0;
    p.xa = xa;
    p.xb = xb;
    p.ya = ya;
    p.yb = yb;
    p.ej0 = xa - x0;
    p.ej1 = xb - x0;
    p.ei0 = ya - y0;
    p.ei1 = yb - y0;
    if (gaussian) {
      p.ej0 = std::max<int64_t>(0, p.ej0 - rad);
      p.ej1 = std::min<int64_t>(tw, p.ej1 + rad);
      p.ei0 = std::max<int64_t>(0, p.ei0 - rad);
      p.ei1 = std::min<int64_t>(th, p.ei1 + rad);
    }
    p.crop = pl.crop;
    p.win = pl.win;
    p.rect = pl.rect;
    pl.crop += ps.width * ps.height * 4;
    pl.win += (p.ej1 - p.ej0) * (p.ei1 - p.ei0);
    pl.rect += (xb - xa) * (yb - ya);
  }
  const int64_t HW = H * W;
  pl.bytes = HW * 3 + HW * 4 + (s.box_only ? 0 : R * HW) + HW + pl.crop + pl.win * (gaussian ? 8 : 4) +
             pl.rect * (gaussian ? 2 : 1) + (R + P) * (P + 1) * static_cast<int64_t>(sizeof(ctile::Stat)) +
             P * static_cast<int64_t>(sizeof(ctile::Paste)) + static_cast<int64_t>(sizeof(ctile::Scene)) + 32 * R;
  return pl;
}

struct Ext {
  int64_t count = 0;
  int32_t x0 = ctile::kNoExtent, x1 = -1, y0 = ctile::kNoExtent, y1 = -1;
  void add(const ctile::Stat& s) {
    count += static_cast<int64_t>(s.count);
    x0 = std::min(x0, s.x0);
    x1 = std::max(x1, s.x1);
    y0 = std::min(y0, s.y0);
    y1 = std::max(y1, s.y1);
  }
  Box box() const { return x1 < 0 ? Box{} : Box{x0, y0, x1 - x0 + 1, y1 - y0 + 1}; }
};

struct Live {
  Source source;
  int64_t index, slot;
  Box box;
  int64_t area;
  bool alive;
};

// composite.cc's scene loop without the pixels: the keep rule replayed from
// the statistics st ((R + P) x (P + 1)) of scene i of batch b.
void bookkeeping(CompositeBackend& be, const CompositeDeviceBatch& b, int64_t i, const CompositeScene& s, const Plan& pl,
                 const ctile::Stat* st, const CompositeOptions& o, CompositeResult& res) {
  const int64_t R = s.real_count(), P = static_cast<int64_t>(s.pastes.size()), Q = P + 1, H = s.h, W = s.w;
  // after[k * Q + q]: instance k's pixels whose first occluder is at or after q.
  std::vector<Ext> after(static_cast<size_t>((R + P) * Q));
  for (int64_t k = 0; k < R + P; ++k) {
    Ext acc;
    for (int64_t q = P; q >= 0; --q) {
      acc.add(st[k * Q + q]);
      after[static_cast<size_t>(k * Q + q)] = acc;
    }
  }
  std::vector<Live> live;
  live.reserve(static_cast<size_t>(R + P));
  std::vector<CompositeDrop> drops;
  for (int64_t r = 0; r < R; ++r) {
    const Ext& e = after[static_cast<size_t>(r * Q)];
    Live L{Source::Real, r, r, e.box(), e.count, true};
    if (L.area == 0) {
      L.alive = false;
      drops.push_back({Source::Real, r, DropReason::Empty});
    }
    live.push_back(L);
  }
  for (int64_t p = 0; p < P; ++p) {
    const ctile::Paste& pp = pl.pastes[static_cast<size_t>(p)];
    if (!pp.active) {
      drops.push_back({Source::Pasted, p, pl.skip[static_cast<size_t>(p)]});
      continue;
    }
    const Ext& mine = after[static_cast<size_t>((R + p) * Q)];
    if (mine.count == 0) {
      drops.push_back({Source::Pasted, p, pl.clipped[static_cast<size_t>(p)] ? DropReason::ClippedOut : DropReason::EmptyAlpha});
      continue;
    }
    for (Live& L : live) {
      if (!L.alive) continue;
      const int64_t removed = static_cast<int64_t>(st[L.slot * Q + p].count);
      if (!removed) continue;
      L.area -= removed;
      const Box before = L.box;
      if (L.area == 0) {
        L.alive = false;
        drops.push_back({L.source, L.index, DropReason::Empty});
        continue;
      }
      L.box = after[static_cast<size_t>(L.slot * Q + p + 1)].box();
      const int64_t d = std::max({std::llabs(L.box.x - before.x), std::llabs(L.box.y - before.y),
                                  std::llabs((L.box.x + L.box.w) - (before.x + before.w)),
                                  std::llabs((L.box.y + L.box.h) - (before.y + before.h))});
      if (!(d <= o.keep_max_shift || L.area > o.keep_min_area)) {
        L.alive = false;
        drops.push_back({L.source, L.index, DropReason::Occluded});
      }
    }
    live.push_back(Live{Source::Pasted, p, R + p, mine.box(), mine.count, true});
  }
  if (H * W > 0) be.read_image(b, i, s.out_image);
  res.instances.clear();
  for (const Live& L : live) {
    if (!L.alive) continue;
    res.instances.push_back(CompositeInstance{L.source, L.index, L.slot, L.box, L.area, {}});
    if (s.crop_masks) {
      std::vector<uint8_t>& c = res.instances.back().crop;
      c.resize(static_cast<size_t>(L.box.w * L.box.h));
      be.read_mask(b, i, L.slot, L.box.x, L.box.y, L.box.w, L.box.h, c.data());
    } else {
      be.read_mask(b, i, L.slot, 0, 0, W, H, s.out_masks[static_cast<size_t>(L.slot)]);
    }
  }
  composite_sort_drops(drops);
  res.dropped = std::move(drops);
}

}  // namespace

std::unique_ptr<CompositeBackend> emulated_composite_backend(int64_t free_bytes) {
  return std::make_unique<EmulatedComposite>(free_bytes);
}

int64_t last_composite_batches() { return g_batches.load(); }

int64_t composite_device_bytes(const CompositeDeviceBatch& b) {
  const bool g = b.prm.blend == ctile::kBlend_Gaussian;
  return b.image_bytes + b.crop_bytes + b.mask_bytes + b.win_elems * (g ? 8 : 4) + b.rect_elems * (g ? 2 : 1) +
         b.owner_elems * 4 + b.stat_elems * static_cast<int64_t>(sizeof(ctile::Stat)) + b.max_hw +
         static_cast<int64_t>(b.pastes.size() * sizeof(ctile::Paste) + b.scenes.size() * sizeof(ctile::Scene) +
                              b.boxes.size() * sizeof(int64_t) + b.kern.size() * sizeof(float));
}

std::vector<CompositeResult> device_composite_batch(CompositeBackend& be, const std::vector<CompositeScene>& scenes,
                                                    const CompositeOptions& o, int64_t device_bytes) {
  composite_check_batch(scenes, o);
  if (device_bytes < 0) fail("E_RANGE", "deviceBytes must be >= 0, got ", device_bytes);
  const int64_t n = static_cast<int64_t>(scenes.size());
  std::vector<CompositeResult> out(scenes.size());
  g_batches.store(0);
  if (n == 0) return out;
  const bool gaussian = o.blend == BlendMode::Gaussian;
  std::vector<float> kern;
  if (gaussian) composite_gaussian_kernel(o.sigma, kern);
  else kern.assign(1, 0.f);
  const int64_t rad = gaussian ? static_cast<int64_t>(kern.size() / 2) : 0;
  std::vector<Plan> plans(scenes.size());
  for (int64_t i = 0; i < n; ++i) plans[static_cast<size_t>(i)] = plan_scene(scenes[static_cast<size_t>(i)], rad, gaussian);
  const int64_t budget = device_bytes > 0 ? device_bytes : tiling::budget_from_free(be.free_bytes());
  const int threads = mask_threads(o.threads, n);
  std::vector<ctile::Stat> stats;
  int64_t batches = 0;
  for (int64_t i0 = 0; i0 < n;) {
    // Whole scenes while they fit (at least one).
    int64_t i1 = i0, bytes = 0;
    while (i1 < n) {
      const int64_t more = plans[static_cast<size_t>(i1)].bytes;
      if (i1 > i0 && bytes + more > budget) break;
      bytes += more;
      ++i1;
    }
    CompositeDeviceBatch b;
    b.kern = kern;
    b.prm.blend = gaussian ? ctile::kBlend_Gaussian : o.blend == BlendMode::Alpha ? ctile::kBlend_Alpha : ctile::kBlend_Basic;
    b.prm.threshold = o.mask_threshold;
    b.prm.rad = static_cast<int32_t>(rad);
    b.threads = threads;
    for (int64_t i = i0; i < i1; ++i) {
      const CompositeScene& s = scenes[static_cast<size_t>(i)];
      const Plan& pl = plans[static_cast<size_t>(i)];
      const int64_t HW = s.h * s.w, R = s.real_count(), P = static_cast<int64_t>(s.pastes.size());
      ctile::Scene sc;
      sc.h = s.h;
      sc.w = s.w;
      sc.image = b.image_bytes;
      sc.owner = b.owner_elems;
      sc.masks = s.box_only ? -1 : b.mask_bytes;
      sc.boxes = static_cast<int64_t>(b.boxes.size() / 4);
      sc.R = R;
      sc.P = P;
      sc.paste0 = static_cast<int64_t>(b.pastes.size());
      sc.stats = b.stat_elems;
      b.scenes.push_back(sc);
      b.image_src.push_back(s.image);
      b.mask_src.push_back(s.box_only ? std::vector<const uint8_t*>{} : s.masks);
      b.boxes.insert(b.boxes.end(), pl.boxes.begin(), pl.boxes.end());
      for (int64_t k = 0; k < P; ++k) {
        ctile::Paste p = pl.pastes[static_cast<size_t>(k)];
        p.crop += b.crop_bytes;
        p.win += b.win_elems;
        p.rect += b.rect_elems;
        b.pastes.push_back(p);
        b.crop_src.push_back(p.active ? s.pastes[static_cast<size_t>(k)].rgba : nullptr);
      }
      b.image_bytes += HW * 3;
      b.owner_elems += HW;
      if (!s.box_only) b.mask_bytes += R * HW;
      b.crop_bytes += pl.crop;
      b.win_elems += pl.win;
      b.rect_elems += pl.rect;
      b.stat_elems += (R + P) * (P + 1);
      b.max_hw = std::max(b.max_hw, HW);
    }
    stats.resize(static_cast<size_t>(b.stat_elems));
    be.run(b, stats.data());
    for (int64_t i = i0; i < i1; ++i)
      bookkeeping(be, b, i - i0, scenes[static_cast<size_t>(i)], plans[static_cast<size_t>(i)],
                  stats.data() + b.scenes[static_cast<size_t>(i - i0)].stats, o, out[static_cast<size_t>(i)]);
    ++batches;
    i0 = i1;
  }
  g_batches.store(batches);
  return out;
}

}  // namespace genaug
