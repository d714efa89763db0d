// The eigensolver and product kernels of linalg_kernels.h, written once in
// plain C++ over fixed lane counts and compiled per ISA: each
// linalg_kernels_<isa>.cc includes this file inside its own anonymous
// namespace, so the same source becomes SSE2, AVX2 + FMA or AVX-512 code.
// The operation order per element is the same everywhere; only fused
// multiply-adds (AVX2/AVX-512 units) change the last bits.
#pragma once
#include <algorithm>
#include <cstdint>

#include "linalg_kernels.h"

namespace eigen_impl {

using genaug::kPanelLanes;
using genaug::PlaneRotation;

inline void reflect_panel(const double* v, double beta, int64_t m, double* panel) {
  double t[kPanelLanes] = {};
  for (int64_t i = 0; i < m; ++i) {
    const double vi = v[i];
    if (vi == 0.0) continue;
    const double* row = panel + i * kPanelLanes;
    for (int l = 0; l < kPanelLanes; ++l) t[l] += vi * row[l];
  }
  for (int64_t i = 0; i < m; ++i) {
    const double f = beta * v[i];
    if (f == 0.0) continue;
    double* row = panel + i * kPanelLanes;
    for (int l = 0; l < kPanelLanes; ++l) row[l] -= f * t[l];
  }
}

inline void rotate_panel(const PlaneRotation* r, int64_t count, double* panel) {
  for (int64_t k = 0; k < count; ++k) {
    double* a = panel + r[k].i * kPanelLanes;
    double* b = a + kPanelLanes;
    const double c = r[k].c, s = r[k].s;
    for (int l = 0; l < kPanelLanes; ++l) {
      const double x = a[l], y = b[l];
      b[l] = s * x + c * y;
      a[l] = c * x - s * y;
    }
  }
}

// A 4 x 8 register tile of out, over the whole inner range.
inline void gemm_tile(const double* a, int64_t lda, const double* b, int64_t ldb, double* out, int64_t ldo, int64_t inner) {
  double acc[4][8];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 8; ++j) acc[i][j] = out[i * ldo + j];
  for (int64_t k = 0; k < inner; ++k) {
    const double* bk = b + k * ldb;
    for (int i = 0; i < 4; ++i) {
      const double f = a[i * lda + k];
      for (int j = 0; j < 8; ++j) acc[i][j] += f * bk[j];
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 8; ++j) out[i * ldo + j] = acc[i][j];
}

inline void gemm_acc(const double* a, int64_t lda, const double* b, int64_t ldb, double* out, int64_t ldo, int64_t rows, int64_t inner,
                     int64_t cols) {
  // Blocks of the inner index keep a slice of b in cache while the rows pass over it; within a
  // block each element's terms are added in increasing inner order, and blocks go in increasing order.
  constexpr int64_t KB = 256, JB = 256;
  for (int64_t k0 = 0; k0 < inner; k0 += KB) {
    const int64_t kb = std::min(KB, inner - k0);
    for (int64_t j0 = 0; j0 < cols; j0 += JB) {
      const int64_t jb = std::min(JB, cols - j0);
      int64_t i = 0;
      for (; i + 4 <= rows; i += 4) {
        int64_t j = 0;
        for (; j + 8 <= jb; j += 8) gemm_tile(a + i * lda + k0, lda, b + k0 * ldb + j0 + j, ldb, out + i * ldo + j0 + j, ldo, kb);
        for (; j < jb; ++j)
          for (int64_t ii = i; ii < i + 4; ++ii) {
            double s = out[ii * ldo + j0 + j];
            for (int64_t k = 0; k < kb; ++k) s += a[ii * lda + k0 + k] * b[(k0 + k) * ldb + j0 + j];
            out[ii * ldo + j0 + j] = s;
          }
      }
      for (; i < rows; ++i)
        for (int64_t j = 0; j < jb; ++j) {
          double s = out[i * ldo + j0 + j];
          for (int64_t k = 0; k < kb; ++k) s += a[i * lda + k0 + k] * b[(k0 + k) * ldb + j0 + j];
          out[i * ldo + j0 + j] = s;
        }
    }
  }
}

}  // namespace eigen_impl
