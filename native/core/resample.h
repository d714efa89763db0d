// Pillow's ImagingResample for 8-bit RGB (libImaging/Resample.c), the integer
// part: given each axis's coefficient table (first input index, tap count and
// 22-bit fixed-point taps per output index, as PIL's precompute_coeffs +
// normalize_coeffs_8bpc make them; ts/models/clip-preprocess.ts computes the
// tables), the horizontal pass (over only the rows the vertical pass reads),
// rounded and clamped to uint8, then the vertical pass. Only the output window
// [left, left + ow) x [top, top + oh) is computed; every output pixel is
// independent, so its bytes are those of the full resize. The sums are exact
// integers, so the bytes are Pillow's (and the TypeScript reference's).
#pragma once
#include <cstdint>
#include <vector>

namespace genaug {

struct ResampleAxis {
  int64_t in_size = 0, out_size = 0;
  int64_t ksize = 0;
  const int32_t* bounds = nullptr;  // [first, count] per output index
  const int32_t* fixed = nullptr;   // ksize taps per output index
};

// Throws E_RANGE when a table does not fit its sizes (a tap outside the input,
// count > ksize) or the window is outside the output.
void resample_check(const ResampleAxis& a, const char* what);

// src: in_h x in_w x 3. h / v: null when that axis keeps its size (then
// out = in on it). out: oh x ow x 3.
void pil_resize_rgb(const uint8_t* src, int64_t in_w, int64_t in_h, const ResampleAxis* h, const ResampleAxis* v,
                    int64_t left, int64_t top, int64_t ow, int64_t oh, uint8_t* out);

// CHW float planes from interleaved RGB through a 3 x 256 value table:
// out[c * n + i] = lut[c * 256 + rgb[3 i + c]].
void rgb_to_chw_lut(const uint8_t* rgb, int64_t n, const float* lut, float* out);

}  // namespace genaug
