// Instance copy-paste compositor (X-Paste / DiverGen, ALGORITHMS.md §2.5):
// paste RGBA instances onto a destination RGB image in order, keep every
// instance mask consistent with what is visible, and recompute every box and
// area from the final visible mask.
//
// Per scene, for each pasted instance in order:
//  1. Resize the RGBA crop (w x h) to target (tw x th) with bilinear
//     interpolation, flip horizontally when asked, and place it so that its
//     top-left corner is x0 = floor(cx - tw / 2 + 0.5), y0 = floor(cy - th / 2 + 0.5)
//     (for integer centres: x0 = cx - floor(tw / 2), as the reference and the
//     OpenCV peer). Parts outside the image are clipped.
//  2. Its mask is (resized alpha >= mask_threshold) inside the image. The
//     default threshold 1 is §2.5's rule (mask = alpha > 0 after the resize);
//     128 ("half-opaque") is the common alternative.
//  3. Blend, always restricted to the mask (no pixel outside the instance's
//     mask changes, so pixels and annotations agree for every threshold):
//     `basic` copies RGB where the mask is set (the reference default);
//     `alpha` computes out = (src * a + dst * (255 - a) + 127) / 255 (integer
//     division) with a = resized alpha inside the mask and 0 outside it;
//     `gaussian` uses the same formula with a = round(255 * (G_sigma * m))
//     inside the mask and 0 outside it (m: the unclipped instance mask, zero
//     outside the instance; so the edge is feathered inward and no colour of
//     the crop's transparent part leaks out).
//  4. Occlusion: every earlier live instance (real or pasted) loses the
//     pixels of the new mask; its box and area are recomputed. It is kept when
//     every coordinate of its xyxy box (exclusive right/bottom) moved by at
//     most keep_max_shift (10) compared with its box before this paste, OR its
//     remaining area is > keep_min_area (300); otherwise dropped ("occluded").
//     An instance whose mask became empty is dropped ("empty").
//
// Bilinear sampling (pixel centres, as OpenCV INTER_LINEAR, half-pixel):
// target column u samples source x = (u + 0.5) * w / tw - 0.5, computed
// exactly in integers: n = (2u + 1) * w - tw, x0 = floor(n / (2 tw)),
// a = round-half-up(2048 * (n - 2 tw x0) / (2 tw)); x0 < 0 gives (0, a = 0);
// x0 >= w - 1 gives (w - 1, a = 0); x1 = min(x0 + 1, w - 1). Rows likewise
// (y0, y1, b). Per channel, with 11-bit weights as OpenCV:
//   h_r = S[y_r][x0] * (2048 - a) + S[y_r][x1] * a          (r = 0, 1)
//   v   = ((h_0 >> 4) * (2048 - b) + (h_1 >> 4) * b + 2^17) >> 18
// An integer-aligned sample (a = b = 0) returns the source value exactly, and
// the result is within 1 of the real-valued bilinear interpolation.
// Flip: destination column j of the instance takes target column tw - 1 - j.
//
// Masks: uint8 H x W row-major; inputs nonzero = foreground, outputs 0/1.
// Boxes: COCO [x, y, w, h] tight, 0-based, covering columns x..x+w-1.
// Box-only scenes: each box [x, y, w, h] (floats) becomes the mask of columns
// round(x) .. round(x + w) - 1 and rows round(y) .. round(y + h) - 1
// (round = floor(v + 0.5)), clipped to the image.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu.h"
#include "mask.h"

namespace genaug {

enum class BlendMode { Basic, Alpha, Gaussian };

struct CompositeOptions {
  BlendMode blend = BlendMode::Basic;
  double sigma = 2.0;           // gaussian feather, pixels (0, 64]
  int64_t keep_max_shift = 10;  // keep when every box coordinate moved <= this
  int64_t keep_min_area = 300;  // ... or when the remaining area is > this
  int threads = 0;              // 0: every core (at most one per scene)
  int mask_threshold = 1;       // mask = resized alpha >= this, [1, 255] (1: §2.5's alpha > 0)
  Isa isa = Isa::Avx512;        // the resize's row kernel, clamped to the CPU; every level gives the same bytes
};

// Limits on sizes (E_RANGE beyond).
constexpr int64_t kMaxCropSide = 1 << 16;
constexpr int64_t kMaxTargetSide = 1 << 20;
constexpr double kMaxCentre = 1e12;

struct PasteSpec {
  const uint8_t* rgba = nullptr;  // height * width * 4 bytes
  int64_t rgba_bytes = -1;        // bytes at rgba when the caller knows them (checked); -1: not given
  int64_t width = 0, height = 0;
  int64_t target_w = 0, target_h = 0;
  bool flip = false;
  double cx = 0, cy = 0;
};

enum class Source : uint8_t { Real = 0, Pasted = 1 };

enum class DropReason : uint8_t {
  Occluded,    // failed the keep rule
  Empty,       // no visible pixel left (or an empty input mask / box)
  ClippedOut,  // a pasted instance with no mask pixel inside the image
  ZeroSize,    // target width or height 0
  EmptyCrop,   // crop width or height 0
  EmptyAlpha,  // the resized instance has no pixel with alpha >= mask_threshold
};
const char* drop_reason_name(DropReason r);

struct CompositeScene {
  const uint8_t* image = nullptr;  // h * w * 3 (RGB)
  int64_t h = 0, w = 0;
  bool box_only = false;
  std::vector<const uint8_t*> masks;  // R masks of h * w (when !box_only)
  // The byte lengths of image and of each mask when the caller knows them
  // (the binding: its typed arrays), checked against h * w (* 3) by
  // composite_check; -1 / empty: not given, the caller vouches for them.
  int64_t image_bytes = -1;
  std::vector<int64_t> mask_bytes;
  std::vector<double> boxes;          // 4R: [x, y, w, h] per box (when box_only)
  std::vector<PasteSpec> pastes;      // P
  // Caller-allocated outputs: h * w * 3 bytes, and R + P slots of h * w
  // bytes (slot r: real instance r, slot R + p: pasted instance p). Only the
  // slots of instances in the output are written completely.
  uint8_t* out_image = nullptr;
  std::vector<uint8_t*> out_masks;
  // Return each output instance's mask cropped to its box (CompositeInstance::crop)
  // instead of writing out_masks (which must then be empty): the full-frame
  // masks live in per-thread scratch memory that is reused across scenes.
  bool crop_masks = false;
  int64_t real_count() const { return box_only ? static_cast<int64_t>(boxes.size() / 4) : static_cast<int64_t>(masks.size()); }
};

struct CompositeInstance {
  Source source = Source::Real;
  int64_t index = 0;  // r or p
  int64_t slot = 0;   // which out_masks slot holds its mask
  Box box;
  int64_t area = 0;
  std::vector<uint8_t> crop;  // box.h x box.w, with crop_masks
};

struct CompositeDrop {
  Source source = Source::Real;
  int64_t index = 0;
  DropReason reason = DropReason::Empty;
};

struct CompositeResult {
  std::vector<CompositeInstance> instances;  // real ones by index, then pasted ones by index
  std::vector<CompositeDrop> dropped;        // same order
};

// Throws E_SHAPE / E_RANGE / E_ARGUMENT for arguments the compositor does not take.
void composite_check(const CompositeScene& s, const char* what = "scene");
// composite_check_options, then composite_check and the output slots of every
// scene (named scenes[i]): what composite_batch and the device path check
// before any work.
void composite_check_batch(const std::vector<CompositeScene>& scenes, const CompositeOptions& o);
// Shared by the CPU path and the device path (composite_device.cc), so both
// compute them with the very same expressions: a box-only coordinate rounded
// half up and clamped into [lo, hi]; the normalised Gaussian edge kernel of
// the 'gaussian' blend (radius max(1, ceil(3 sigma))); the dropped list in
// (source, index) order.
int64_t composite_round_clamp(double v, int64_t lo, int64_t hi);
void composite_gaussian_kernel(double sigma, std::vector<float>& k);
void composite_sort_drops(std::vector<CompositeDrop>& drops);
void composite_check_options(const CompositeOptions& o);

// One scene (checked first).
CompositeResult composite_scene(const CompositeScene& s, const CompositeOptions& o);

// Many scenes, in parallel over scenes; the result does not depend on the
// thread count.
std::vector<CompositeResult> composite_batch(const std::vector<CompositeScene>& scenes, const CompositeOptions& o);

// The bilinear resize of the header's convention for the target window
// [u0, u1) x [v0, v1) of the tw x th target grid (flip applied to the
// columns), written as RGBA rows of (u1 - u0) pixels, with the row kernel of
// `isa` (clamped to the CPU). For tests and reuse.
void composite_resize_window(const PasteSpec& p, int64_t u0, int64_t u1, int64_t v0, int64_t v1, uint8_t* out,
                             Isa isa = Isa::Avx512);

}  // namespace genaug
