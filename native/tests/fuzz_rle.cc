// Fuzz target for the COCO RLE string decoder (and what runs on its output).
// Built with clang it is a libFuzzer target (-fsanitize=fuzzer); otherwise
// fuzz_driver_rle.cc supplies main().
//
// Input: byte 0 = h (mod 48), byte 1 = w (mod 48), the rest = the string.
// The decoder may reject any input, but only with genaug::Error E_FORMAT.
// Whatever it accepts must sum to h * w and survive decode, area, toBbox,
// merge, iou and a round trip through the string form, agreeing with a naive
// column-major decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.h"
#include "fuzz_require.h"
#include "rle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int64_t h = data[0] % 48, w = data[1] % 48;
  const char* s = reinterpret_cast<const char*>(data + 2);
  const size_t len = size - 2;
  std::vector<uint32_t> counts;
  try {
    counts = genaug::rle_from_string(s, len, h, w);
  } catch (const genaug::Error& e) {
    FUZZ_REQUIRE(e.code() == "E_FORMAT");
    FUZZ_REQUIRE(std::string(e.what()).compare(0, 3, "RLE") == 0);  // says what it is about
    return 0;
  }
  uint64_t sum = 0;
  for (uint32_t c : counts) sum += c;
  FUZZ_REQUIRE(sum == static_cast<uint64_t>(h * w));
  std::vector<uint8_t> mask(static_cast<size_t>(h * w), 7), naive(static_cast<size_t>(h * w), 0);
  genaug::rle_decode(counts.data(), counts.size(), h, w, mask.data());
  uint64_t pos = 0, area = 0;
  for (size_t i = 0; i < counts.size(); ++i)
    for (uint32_t k = 0; k < counts[i]; ++k, ++pos)
      if (i & 1) {
        naive[(pos % h) * w + pos / h] = 1;
        ++area;
      }
  FUZZ_REQUIRE(mask == naive);
  FUZZ_REQUIRE(genaug::rle_area(counts.data(), counts.size()) == area);
  // The string form round-trips exactly, whatever the counts.
  const std::string again = genaug::rle_to_string(counts.data(), counts.size());
  FUZZ_REQUIRE(genaug::rle_from_string(again.data(), again.size(), h, w) == counts);
  // Re-encoding the mask gives canonical counts that decode to the same mask.
  const std::vector<uint32_t> canon = genaug::rle_encode(mask.data(), h, w);
  FUZZ_REQUIRE(genaug::rle_area(canon.data(), canon.size()) == area);
  (void)genaug::rle_to_bbox(counts.data(), counts.size(), h, w);
  if (h * w > 0) {
    const genaug::RleRef a{counts.data(), counts.size()}, b{canon.data(), canon.size()};
    const std::vector<uint32_t> u = genaug::rle_merge({a, b}, h, w, false);
    std::vector<uint8_t> back(static_cast<size_t>(h * w));
    genaug::rle_decode(u.data(), u.size(), h, w, back.data());
    FUZZ_REQUIRE(back == naive);
    double iou = -1;
    genaug::rle_iou({b}, {b}, h, w, nullptr, &iou, 1);
    FUZZ_REQUIRE(iou == (area > 0 ? 1.0 : 0.0));
  }
  return 0;
}
