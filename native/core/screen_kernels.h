// Kernels of the screened similarity engine (similarity.cc): an 8-bit integer
// matrix product that gives every (query, database) pair an approximate score
// with a known worst-case error, and the exact float32 dot products that
// rescore the pairs the approximation cannot rule out. The exact products run
// the same chain of fused multiply-adds (k = 0, 1, ..., D-1, starting from 0)
// as the float32 micro-kernels, so a rescored pair has the very bytes the
// plain float32 engine gives it.
#pragma once
#include <cstdint>

#include "cpu.h"

namespace genaug {

// What quant_raw reports for one raw row x (see there).
struct RawQuant {
  float t = 0.0f;     // the step: x ~ t q
  float ssx = 0.0f;   // sum of x_k^2 in float, any order (not finite iff the row is not, or overflows)
  float sse = 0.0f;   // sum of (x_k - t q_k)^2 in float, each difference rounded once, any order
  int32_t sumq = 0;   // sum of q_k
};

struct ScreenKernels {
  int mr;  // query rows per micro-tile: packed [k/4][mr][4] bytes, value q + 64 (q in [-63, 63])
  int nr;  // database rows per micro-tile: packed [k/4][nr][4] signed bytes
  // c[i*ldc + j] = ascale[i] * (bscale[j] * float(sum_k a[i][k]*b[j][k] - corr[j]))
  // for i < mr, j < nr, over k4 groups of 4 depths; corr[j] = 64 * sum_k b[j][k].
  // micro: database q in [-63, 63]; micro8: in [-127, 127].
  void (*micro)(int64_t k4, const uint8_t* a, const int8_t* b, const float* ascale, const float* bscale,
                const int32_t* corr, float* c, int64_t ldc);
  void (*micro8)(int64_t k4, const uint8_t* a, const int8_t* b, const float* ascale, const float* bscale,
                 const int32_t* corr, float* c, int64_t ldc);
  // out[x] = the fused multiply-add chain of a[0..D) with rows[x][0..D), for x < n (any n).
  void (*exact_dots)(const float* a, const float* const* rows, int64_t n, int64_t D, float* out);
  // v[k] = has_scale ? float(src[k] * scale) : src[k] (as the float32 engine
  // packs); returns max |v[k]|.
  float (*load_row)(const float* src, bool has_scale, double scale, int64_t D, float* v);
  // q[k] = v[k] / s rounded (any rounding) and clamped to [-qmax, qmax],
  // stored as the byte q + offset; sums in double of (s q)^2, (v - s q)^2,
  // v^2, and the sum of q.
  void (*quantize)(const float* v, int64_t D, float s, int qmax, int offset, uint8_t* q, double* nq2, double* ne2,
                   double* nv2, int64_t* sumq);
  // out[k*width + r] = scale ? float(rows[r][k] * scale[r]) : rows[r][k] for
  // r < width (a multiple of 8), k < D: the float32 engine's packing, byte
  // for byte, 8 rows at a time through an 8 x 8 transpose.
  void (*pack_rows)(const float* const* rows, const double* scale, int width, int64_t D, float* out);
  // The indices j < n with row[j] >= t, ascending, into idx; returns how many.
  int64_t (*collect_ge)(const float* row, int64_t n, float t, int32_t* idx);
  // pack_rows with every row normalised, its multiplier computed here as
  // prepare() computes it: scale[r] = 1 / sqrt(sum_k double(x_k)^2, summed
  // k = 0, 1, ... in order), 0 for a zero row; out as pack_rows with that
  // scale, byte for byte. Returns false (out and scale unspecified) when a
  // row's sum is not finite (a NaN or an infinity in it).
  bool (*pack_rows_norm)(const float* const* rows, int width, int64_t D, float* out, double* scale);
  // The same multipliers alone, for n rows (a multiple of 8).
  bool (*row_norms)(const float* const* rows, int n, int64_t D, double* scale);
  // Rows as they are (not normalised), quantised in float with no double
  // sums: for r < n, t = max|x| / qmax (float division), q_k = x_k * (qmax /
  // max|x|) rounded to nearest and clamped to [-qmax, qmax], stored as signed
  // bytes into one packed [D4/4][nr][4] panel (depths D..D4-1 and rows
  // n..nr-1 zero); st[r] as RawQuant says. A row whose ssx is not within
  // [2^-100, 2^100] (zero, tiny, huge, NaN, infinite) has st[r].ssx set and
  // nothing else: the caller quantises it another way.
  // out[x] = the fused multiply-add chain of a[x][0..D) with w[0..D) (as
  // exact_dots, but every pair its own rows), for x < n (any n), where
  // w[k] = bscale ? float(b[x][k] * bscale[x]) : b[x][k] (the float32
  // engine's packing of the row).
  void (*exact_dots_pairs)(const float* const* a, const float* const* b, const double* bscale, int64_t n, int64_t D,
                           float* out);
  void (*quant_raw)(const float* const* rows, int n, int64_t D, int qmax, int8_t* panel, RawQuant* st);
};

// The screening kernels for an ISA, or nullptr where there are none (the
// screened engine is then not used and the float32 engine runs).
const ScreenKernels* screen_kernels_for(Isa isa);
#ifdef GENAUG_HAVE_X86_KERNELS
const ScreenKernels& screen_kernels_avx2();
#endif

}  // namespace genaug
