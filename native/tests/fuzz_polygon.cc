// Fuzz target for polygon (and box) segmentations: rle_from_polygons, the
// core entry that rleFromPolygons (the binding) calls with the caller's
// Float64Arrays, so every check of the values is exercised here.
// Built with clang it is a libFuzzer target; otherwise fuzz_driver_polygon.cc
// supplies main().
//
// Input (fuzz_input.h): h, w (0..40, or a size past the limit), the number of
// entries (0..5), then per entry its length (0..13 numbers) and coordinates.
// The call may reject any input, but only with genaug::Error E_SHAPE, E_RANGE
// or E_LIMIT. Whatever it accepts must be a valid h x w RLE (counts summing
// to h * w) whose foreground lies inside the coordinates' bounding rectangle
// (one pixel of slack: pixel centres, rounding), that comes out the same
// when the call is repeated, and that contains the union of the entries
// rasterised one by one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "fuzz_require.h"
#include "fuzz_input.h"
#include "rle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_input::Reader in(data, size);
  static const int64_t kSides[] = {-1, 0, 0x7FFFFFFF, 0x80000000ll, 70000, 65536};
  const int64_t h = in.size(41, kSides, 6), w = in.size(41, kSides, 6);
  const size_t n = in.below(6);
  std::vector<std::vector<double>> coords(n);
  for (auto& c : coords) c.resize(in.below(14));
  for (auto& c : coords)
    for (double& v : c) v = in.coord();
  std::vector<genaug::PolygonRef> refs;
  for (const auto& c : coords) refs.push_back({c.data(), c.size()});

  std::vector<uint32_t> counts;
  try {
    counts = genaug::rle_from_polygons(refs, h, w);
  } catch (const genaug::Error& e) {
    FUZZ_REQUIRE(e.code() == "E_SHAPE" || e.code() == "E_RANGE" || e.code() == "E_LIMIT");
    return 0;
  }
  // Accepted: a nonempty list of sane entries on a mask of at least 1 x 1 and at most 2^32 - 1 pixels.
  FUZZ_REQUIRE(n >= 1 && h >= 1 && w >= 1 && h <= genaug::kMaxMaskSide && w <= genaug::kMaxMaskSide && h * w <= genaug::kMaxMaskPixels);
  uint64_t sum = 0;
  for (uint32_t c : counts) sum += c;
  FUZZ_REQUIRE(sum == static_cast<uint64_t>(h * w));
  if (h * w > (1 << 16)) return 0;  // the checks below decode the mask: small ones only
  const bool boxes = coords[0].size() == 4;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& c : coords) {
    FUZZ_REQUIRE(c.size() % 2 == 0 && (boxes ? c.size() == 4 : true));
    for (size_t k = 0; k < c.size(); ++k) FUZZ_REQUIRE(std::isfinite(c[k]));
    if (boxes) {
      x0 = std::min({x0, c[0], c[0] + c[2]});
      x1 = std::max({x1, c[0], c[0] + c[2]});
      y0 = std::min({y0, c[1], c[1] + c[3]});
      y1 = std::max({y1, c[1], c[1] + c[3]});
    } else {
      for (size_t k = 0; k + 1 < c.size(); k += 2) {
        x0 = std::min(x0, c[k]);
        x1 = std::max(x1, c[k]);
        y0 = std::min(y0, c[k + 1]);
        y1 = std::max(y1, c[k + 1]);
      }
    }
  }
  std::vector<uint8_t> mask(static_cast<size_t>(h * w));
  genaug::rle_decode(counts.data(), counts.size(), h, w, mask.data());
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      if (mask[static_cast<size_t>(y * w + x)]) {
        FUZZ_REQUIRE(x >= std::floor(x0) - 1 && x <= std::ceil(x1) + 1);
        FUZZ_REQUIRE(y >= std::floor(y0) - 1 && y <= std::ceil(y1) + 1);
      }
  FUZZ_REQUIRE(genaug::rle_from_polygons(refs, h, w) == counts);  // deterministic
  // The union contains each entry on its own.
  std::vector<uint8_t> one(mask.size());
  for (const auto& c : coords) {
    const std::vector<uint32_t> r =
        boxes ? genaug::rle_from_bbox(c.data(), h, w) : genaug::rle_from_polygon(c.data(), c.size() / 2, h, w);
    genaug::rle_decode(r.data(), r.size(), h, w, one.data());
    for (size_t i = 0; i < one.size(); ++i) FUZZ_REQUIRE(!one[i] || mask[i]);
  }
  return 0;
}
