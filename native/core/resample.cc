#include "resample.h"

#include <algorithm>
#include <cstdlib>

#include "error.h"

namespace genaug {

namespace {
constexpr int kPrecisionBits = 32 - 8 - 2;

// The reference's `ss >> 22` on an int32 (wrapping, as JavaScript's ToInt32
// and Pillow's int32 accumulator do; only reachable with tables whose taps sum
// past ±2 in magnitude, which no Pillow filter makes).
inline uint8_t clip8(int64_t ss) {
  const int32_t w = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(ss)));
  const int32_t v = w >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Largest sum of |taps| of any output index: the sums below stay within
// int32 when 255 * it + 2^21 < 2^31 (Pillow's own accumulator is an int32).
int64_t max_abs_sum(const ResampleAxis& a) {
  int64_t best = 0;
  for (int64_t o = 0; o < a.out_size; ++o) {
    int64_t s = 0;
    const int32_t n = a.bounds[2 * o + 1];
    for (int32_t k = 0; k < n; ++k) s += std::llabs(static_cast<int64_t>(a.fixed[o * a.ksize + k]));
    best = std::max(best, s);
  }
  return best;
}

template <typename Acc>
void horizontal(const uint8_t* src, int64_t in_w, const ResampleAxis& h, int64_t left, int64_t ow, int64_t y0,
                int64_t rows, uint8_t* tmp) {
  const Acc half = Acc(1) << (kPrecisionBits - 1);
  for (int64_t yy = 0; yy < rows; ++yy) {
    const uint8_t* in = src + (yy + y0) * in_w * 3;
    uint8_t* o = tmp + yy * ow * 3;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const int64_t xx = ox + left;
      const int32_t xmin = h.bounds[2 * xx], xmax = h.bounds[2 * xx + 1];
      const int32_t* k = h.fixed + xx * h.ksize;
      const uint8_t* p = in + xmin * 3;
      Acc s0 = half, s1 = half, s2 = half;
      for (int32_t x = 0; x < xmax; ++x, p += 3) {
        const Acc w = k[x];
        s0 += p[0] * w;
        s1 += p[1] * w;
        s2 += p[2] * w;
      }
      o[3 * ox] = clip8(s0);
      o[3 * ox + 1] = clip8(s1);
      o[3 * ox + 2] = clip8(s2);
    }
  }
}

template <typename Acc>
void vertical(const uint8_t* src, int64_t stride, int64_t col0, const ResampleAxis& v, int64_t row_offset, int64_t top,
              int64_t ow, int64_t oh, uint8_t* out) {
  const Acc half = Acc(1) << (kPrecisionBits - 1);
  const int64_t n = ow * 3;
  std::vector<Acc> acc(static_cast<size_t>(n));
  for (int64_t oy = 0; oy < oh; ++oy) {
    const int64_t yy = oy + top;
    const int64_t ymin = v.bounds[2 * yy] - row_offset;
    const int32_t ymax = v.bounds[2 * yy + 1];
    const int32_t* k = v.fixed + yy * v.ksize;
    Acc* a = acc.data();
    std::fill(acc.begin(), acc.end(), half);
    // Taps outer, bytes inner: rows read sequentially (integer sums: any order gives the same bytes).
    for (int32_t y = 0; y < ymax; ++y) {
      const Acc w = k[y];
      const uint8_t* row = src + (ymin + y) * stride + col0;
      for (int64_t i = 0; i < n; ++i) a[i] += row[i] * w;
    }
    uint8_t* o = out + oy * n;
    for (int64_t i = 0; i < n; ++i) o[i] = clip8(a[i]);
  }
}
}  // namespace

void resample_check(const ResampleAxis& a, const char* what) {
  if (a.in_size < 1 || a.out_size < 1 || a.ksize < 1 || !a.bounds || !a.fixed)
    fail("E_RANGE", what, ": empty resampling table");
  for (int64_t o = 0; o < a.out_size; ++o) {
    const int64_t first = a.bounds[2 * o], count = a.bounds[2 * o + 1];
    if (first < 0 || count < 0 || count > a.ksize || first + count > a.in_size)
      fail("E_RANGE", what, ": output index ", o, " reads taps [", first, ", ", first + count, ") of an input of ", a.in_size,
           " (ksize ", a.ksize, ")");
  }
}

void pil_resize_rgb(const uint8_t* src, int64_t in_w, int64_t in_h, const ResampleAxis* h, const ResampleAxis* v,
                    int64_t left, int64_t top, int64_t ow, int64_t oh, uint8_t* out) {
  const int64_t out_w = h ? h->out_size : in_w, out_h = v ? v->out_size : in_h;
  if (h && h->in_size != in_w) fail("E_RANGE", "horizontal table is for ", h->in_size, " columns, the image has ", in_w);
  if (v && v->in_size != in_h) fail("E_RANGE", "vertical table is for ", v->in_size, " rows, the image has ", in_h);
  if (left < 0 || top < 0 || ow < 1 || oh < 1 || left + ow > out_w || top + oh > out_h)
    fail("E_RANGE", "resize window (", left, ", ", top, ") ", ow, " x ", oh, " is not inside the ", out_w, " x ", out_h, " output");
  const int64_t limit = (int64_t(1) << 31) - (int64_t(1) << (kPrecisionBits - 1)) - 1;
  // The source rows the wanted output rows read.
  int64_t y_first = top, y_last = top + oh;
  if (v) {
    y_first = v->bounds[2 * top];
    y_last = v->bounds[2 * (top + oh - 1)] + v->bounds[2 * (top + oh - 1) + 1];
  }
  const uint8_t* vsrc = src;
  int64_t vstride = in_w * 3, col0 = left * 3, row_offset = 0;
  std::vector<uint8_t> tmp;
  if (h) {
    const int64_t rows = y_last - y_first;
    tmp.resize(static_cast<size_t>(ow * rows * 3));
    if (255 * max_abs_sum(*h) <= limit) horizontal<int32_t>(src, in_w, *h, left, ow, y_first, rows, tmp.data());
    else horizontal<int64_t>(src, in_w, *h, left, ow, y_first, rows, tmp.data());
    vsrc = tmp.data();
    vstride = ow * 3;
    col0 = 0;
    row_offset = y_first;
  }
  if (!v) {
    for (int64_t y = 0; y < oh; ++y)
      std::copy(vsrc + (y + top - row_offset) * vstride + col0, vsrc + (y + top - row_offset) * vstride + col0 + ow * 3, out + y * ow * 3);
    return;
  }
  if (255 * max_abs_sum(*v) <= limit) vertical<int32_t>(vsrc, vstride, col0, *v, row_offset, top, ow, oh, out);
  else vertical<int64_t>(vsrc, vstride, col0, *v, row_offset, top, ow, oh, out);
}

void rgb_to_chw_lut(const uint8_t* rgb, int64_t n, const float* lut, float* out) {
  float* r = out;
  float* g = out + n;
  float* b = out + 2 * n;
  for (int64_t i = 0; i < n; ++i) {
    r[i] = lut[rgb[3 * i]];
    g[i] = lut[256 + rgb[3 * i + 1]];
    b[i] = lut[512 + rgb[3 * i + 2]];
  }
}

}  // namespace genaug
