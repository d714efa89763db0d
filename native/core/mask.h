// Binary mask kernels for instance annotation (X-Paste / DiverGen pools):
// invert, largest connected component, hole filling, tight box, area, IoU,
// crop to RGBA, the classical corner flood-fill background estimate, and the
// whole post-processing chain in one call.
//
// Masks are uint8, row-major, H x W, nonzero = foreground; results are 0/1.
// A batch is n masks of the same size stored one after another. Every kernel
// works on runs (maximal horizontal spans of foreground): a row is packed to
// bits, its runs are read with count-trailing-zeros, and components are
// labelled by union-find over runs that touch in consecutive rows. This is a
// few passes over 1/8 of the pixels plus work proportional to the runs, so
// smooth object masks cost little more than reading them.
//
// Conventions (stated once, used everywhere):
// - connectivity 8 (default) or 4 is the connectivity of the FOREGROUND. Hole
//   filling uses the dual connectivity for the background (4 for 8, 8 for 4),
//   so "a hole" is exactly a background region that the foreground encloses:
//   with 8-connected foreground, a background pixel touching the outside only
//   diagonally is a hole. This matches OpenCV's floodFill from the border
//   (4-connected) and scipy.ndimage.binary_fill_holes' default structure.
// - Largest component ties go to the component whose first pixel in
//   row-major order comes first.
// - Boxes are COCO [x, y, w, h] in pixels, tight (w = x_max - x_min + 1);
//   an empty mask has the box [0, 0, 0, 0].
// - IoU of two empty masks is 0 (as pycocotools' iou).
// - The corner background: a 4-connected flood fill from each of the four
//   corner pixels over the pixels whose colour is within `tolerance` of that
//   corner's colour (max over R, G, B of |difference| <= tolerance; alpha is
//   ignored); the background is the union of the four fills.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace genaug {

// h * w is limited to 2^32 - 1 pixels: COCO RLE counts are 32-bit.
constexpr int64_t kMaxMaskPixels = 0xFFFFFFFFll;
constexpr int64_t kMaxMaskSide = 0x7FFFFFFFll;

struct MaskBatchView {
  const uint8_t* data = nullptr;  // n * h * w bytes
  int64_t n = 1;
  int64_t h = 0;
  int64_t w = 0;
};

struct ImageView {
  const uint8_t* data = nullptr;  // h * w * channels bytes, interleaved
  int64_t h = 0;
  int64_t w = 0;
  int64_t channels = 3;  // 3 (RGB) or 4 (RGBA)
};

struct Box {
  int64_t x = 0, y = 0, w = 0, h = 0;
};

// Throws E_SHAPE / E_LIMIT for sizes the kernels do not take. `what` names
// the argument in messages.
void check_mask_size(int64_t h, int64_t w, const char* what);
void check_image(const ImageView& img, const char* what);
void check_connectivity(int connectivity);

// Threads for `jobs` independent pieces of work: `threads` (0: every core),
// at most jobs and 256.
int mask_threads(int threads, int64_t jobs);

// Packs one row (w bytes, nonzero = 1; `invert` flips) into ceil(w / 64)
// words, bit c of word c / 64 = column c; padding bits past w are 0.
void pack_mask_row(const uint8_t* row, int64_t w, uint64_t* bits, bool invert = false);

// out[i] = (m[i] == 0) for every mask of the batch.
void mask_invert(const MaskBatchView& m, uint8_t* out, int threads = 0);

// Keeps the largest connected component of each mask. `kept_area` and
// `components` (n entries each, may be null) receive the kept component's
// pixel count and the number of components found.
void mask_largest_component(const MaskBatchView& m, int connectivity, uint8_t* out, int64_t* kept_area,
                            int64_t* components, int threads = 0);

// Fills the holes of each mask (see the connectivity convention above).
void mask_fill_holes(const MaskBatchView& m, int connectivity, uint8_t* out, int threads = 0);

// Area (foreground pixel count) and tight box of each mask.
void mask_stats(const MaskBatchView& m, int64_t* area, Box* box, int threads = 0);

// IoU of a[i] and b[i] for every i (same n, h, w).
void mask_iou(const MaskBatchView& a, const MaskBatchView& b, double* out, int threads = 0);

// Crops the image and its mask (same h, w) to `box` (the mask's tight box when
// box is null) into an RGBA buffer of box.h x box.w x 4 with alpha =
// 255 * (mask != 0); colour is copied as it is. The box must lie inside the
// image (E_RANGE). Returns the box used.
Box mask_crop_rgba(const ImageView& img, const uint8_t* mask, const Box* box, std::vector<uint8_t>& out);

// The corner flood-fill background (0/1) of one image, h * w bytes.
void corner_background(const ImageView& img, int tolerance, uint8_t* out);

// ---------------------------------------------------------------------------
// The post-processing chain, one native call per batch.

enum class RleForm { None, Counts, String };

struct PostOptions {
  int connectivity = 8;
  bool invert = false;          // the input is a background mask
  bool largest = true;          // keep the largest component
  bool fill_holes = true;
  int64_t min_area = 1;         // pixels; below: rejected
  double min_fraction = 0.0;    // area / (h * w) must lie in [min, max]
  double max_fraction = 1.0;
  RleForm rle = RleForm::None;  // COCO RLE of the result, column-major
  bool want_mask = true;        // write the resulting masks
  int threads = 0;
};

struct PostResult {
  int64_t n = 0;
  std::vector<int64_t> area;
  std::vector<Box> box;
  std::vector<int64_t> components;  // before keeping the largest
  std::vector<uint8_t> ok;          // 1: passed the area checks
  std::vector<std::string> reason;  // why not, "" when ok
  std::vector<std::vector<uint32_t>> counts;  // RleForm::Counts
  std::vector<std::string> strings;           // RleForm::String
};

// invert (optional) -> largest component -> fill holes -> area, box ->
// area checks -> RLE. `out` (n * h * w, may be null when !want_mask)
// receives the masks, rejected ones included.
PostResult post_process(const MaskBatchView& m, const PostOptions& opt, uint8_t* out);

// corner_background -> post_process(invert = true). `background` (h * w, may
// be null) receives the background estimate.
PostResult corner_foreground(const ImageView& img, int tolerance, const PostOptions& opt, uint8_t* out,
                             uint8_t* background);

}  // namespace genaug
