// COCO run-length encoding (cocoapi common/maskApi.c semantics), on
// row-major masks without a Fortran-order copy.
//
// An RLE of an h x w mask lists the lengths of alternating runs of 0s and 1s
// in column-major order, starting with 0s (counts[0] may be 0); the counts sum
// to h * w. The string form stores counts[i] - counts[i-2] for i > 2, 5 bits
// per character, low bits first, 0x20 = more chunks follow, 0x10 = sign of the
// last chunk, plus 48 ('0'..'o').
//
// Results are byte-for-byte those of pycocotools' mask.encode / decode /
// area / toBbox / merge / iou / frPyObjects, including empty and full masks,
// 1 x N and N x 1 shapes, and the quirks of toBbox on unusual counts. Where
// pycocotools reads out of bounds or crashes (counts not summing to h * w,
// malformed strings, sizes that differ in merge/iou) genaug throws E_FORMAT /
// E_SHAPE instead. Masks are read as nonzero = 1 (pycocotools compares raw
// byte values, so the two agree on 0/1 masks).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mask.h"  // MaskBatchView, check_mask_size, mask_threads

namespace genaug {

struct RleRef {
  const uint32_t* counts = nullptr;
  size_t m = 0;
};

// An RLE as a caller hands it in: counts (not owned), or the compressed
// string form, which is parsed when the RLE is resolved (on whichever thread
// does the work).
struct RleInput {
  const uint32_t* counts = nullptr;  // the counts form: counts[0, m)
  size_t m = 0;
  bool is_string = false;
  std::string str;                   // the string form
  std::vector<uint32_t> parsed;      // str parsed, once resolved
};

// Throws E_FORMAT unless the counts sum to h * w (`what` names the RLE).
void rle_check(const uint32_t* counts, size_t m, int64_t h, int64_t w, const char* what);

// Encodes one row-major mask.
std::vector<uint32_t> rle_encode(const uint8_t* mask, int64_t h, int64_t w);

// Encodes a mask given row by row as packed bits: row(r, bits) fills the
// ceil(w / 64) words of row r (bit c of word c / 64 = pixel (r, c), padding 0).
using PackedRowFn = std::function<void(int64_t r, uint64_t* bits)>;
std::vector<uint32_t> rle_encode_packed(int64_t h, int64_t w, const PackedRowFn& row);

// The compressed string form of counts (pycocotools rleToString).
std::string rle_to_string(const uint32_t* counts, size_t m);

// Parses the string form. Any malformed input throws E_FORMAT naming the
// byte position: characters outside '0'..'o', a value cut off at the end,
// a value wider than 35 bits, a count outside [0, 2^32). With check = true
// the counts must also sum to h * w.
std::vector<uint32_t> rle_from_string(const char* s, size_t len, int64_t h, int64_t w, bool check = true);

// Decodes (validated counts) into a row-major h x w mask of 0/1.
void rle_decode(const uint32_t* counts, size_t m, int64_t h, int64_t w, uint8_t* out);

uint64_t rle_area(const uint32_t* counts, size_t m);

// [x, y, w, h] exactly as pycocotools' rleToBbox computes it.
std::array<double, 4> rle_to_bbox(const uint32_t* counts, size_t m, int64_t h, int64_t w);

// Union (intersect = false) or intersection of RLEs of one size, as
// pycocotools' rleMerge. At least one RLE.
std::vector<uint32_t> rle_merge(const std::vector<RleRef>& rles, int64_t h, int64_t w, bool intersect);

// IoU of every detection d with every ground truth g (all h x w), into
// out[d * gt.size() + g], as pycocotools' rleIou: a crowd ground truth (iscrowd
// not null and iscrowd[g] != 0) divides by the detection's area instead of the
// union; 0 when the boxes do not overlap.
void rle_iou(const std::vector<RleRef>& dt, const std::vector<RleRef>& gt, int64_t h, int64_t w,
             const uint8_t* iscrowd, double* out, int threads = 0);

// Checks `in` for an h x w mask and returns its counts (valid while `in`
// lives): a string is parsed as rle_from_string (E_FORMAT naming the byte);
// counts must sum to h * w (E_FORMAT naming `what`).
RleRef rle_resolve(RleInput& in, int64_t h, int64_t w, const char* what);

// rle_resolve for every entry, in order; entry i is named name[i].
std::vector<RleRef> rle_resolve_all(std::vector<RleInput>& in, int64_t h, int64_t w, const char* name);

// --- Batches ---------------------------------------------------------------
// Many masks of one size at once, one mask per task on `threads` threads
// (0: every core; never more threads than masks). The result does not depend
// on the thread count, and neither does the error: when several entries are
// bad, the one reported is the first.

// The RLE of each mask of the batch (n masks of h x w, one after another).
std::vector<std::vector<uint32_t>> rle_encode_batch(const MaskBatchView& m, int threads = 0);
// The same in the compressed string form (no counts are kept).
std::vector<std::string> rle_encode_batch_strings(const MaskBatchView& m, int threads = 0);

// Resolves each RLE (entry i named name[i]) and decodes it into
// out + i * h * w: out receives rles.size() row-major h x w masks of 0/1.
void rle_decode_batch(std::vector<RleInput>& rles, int64_t h, int64_t w, uint8_t* out, int threads = 0,
                      const char* name = "rles");

// One polygon x0, y0, x1, y1, ... (k points) rasterised as pycocotools'
// rleFrPoly (5x upsampled boundary, pixel centres). Needs h, w >= 1.
std::vector<uint32_t> rle_from_polygon(const double* xy, size_t k, int64_t h, int64_t w);

// A box [x, y, w, h] as pycocotools' rleFrBbox (the polygon of its corners).
std::vector<uint32_t> rle_from_bbox(const double* bb, int64_t h, int64_t w);

// One entry of an annotation's segmentation list: len numbers.
struct PolygonRef {
  const double* xy = nullptr;
  size_t len = 0;
};

// pycocotools' frPyObjects(polys, h, w) followed by merge (annToRLE), with
// every check the caller's input needs: when the first entry has exactly 4
// numbers every entry is a box [x, y, w, h] (frBbox), as in pycocotools;
// otherwise each entry is a polygon x0, y0, x1, y1, ... An empty list, a
// first entry of fewer than 4 numbers, a box list with an entry that is not
// 4 numbers, or an odd count is E_SHAPE; coordinates as rle_from_polygon.
std::vector<uint32_t> rle_from_polygons(const std::vector<PolygonRef>& polys, int64_t h, int64_t w);

}  // namespace genaug
