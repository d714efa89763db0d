// The blocking and index math of the device (CUDA) similarity path, in one
// header that both nvcc (native/cuda/similarity.cu, where the per-element
// functions run inside the kernels) and the host compiler (the CPU emulation
// in similarity_device.cc, run by native/tests on machines without a GPU)
// compile. Everything a kernel decides -- the order of a dot product, which
// columns a thread scans, how partial top-k lists merge, ties to the lower
// index, which pairs pass, how many rows fit in device memory -- is decided
// here, so the emulation checks the same index math the GPU runs.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define GENAUG_HD __host__ __device__
#else
#define GENAUG_HD
#endif

namespace genaug::tiling {

// Square tile of the score kernel (threads per block: TILE x TILE).
constexpr int kTile = 32;
// Partial top-k lists per query row and database block: columns are split in
// this many ranges scanned in parallel, then merged. Only for small k (each
// partial list costs k entries per row).
constexpr int64_t kMaxParts = 8;
constexpr int64_t kPartsMaxK = 32;

// Fused multiply-add in float32, the same on host and device.
GENAUG_HD inline float fma32(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fmaf(a, b, c);
#endif
}
// Double product and sum without contraction (the CPU's row_dot order).
GENAUG_HD inline double mul64(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  volatile double r = a * b;
  return r;
#endif
}
GENAUG_HD inline double add64(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  volatile double r = a + b;
  return r;
#endif
}

// score(i, j) of a (query block, database block): rows are already scaled
// (normalised) float32 rows. The kernel walks depth in kTile slices through
// shared memory, padding past d with zeros (fma(0, 0, acc) == acc: acc is never
// -0), so the sum is this one: k = 0 .. d-1 in order, one fused multiply-add each.
GENAUG_HD inline float tile_dot(const float* a, const float* b, int64_t d) {
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += kTile)
    for (int64_t k = k0; k < k0 + kTile; ++k) acc = k < d ? fma32(a[k], b[k], acc) : fma32(0.0f, 0.0f, acc);
  return acc;
}

// Scores are stored column-major, S[c * ld + r] (ld = query rows of the
// block), so threads that each own a query row read consecutive addresses.
GENAUG_HD inline int64_t score_at(int64_t r, int64_t c, int64_t ld) { return c * ld + r; }

// Better = higher score; equal scores go to the lower index.
GENAUG_HD inline bool better(float s, int64_t j, float t, int64_t u) { return s > t || (s == t && j < u); }

// A best-first list of at most k entries, `filled` of them valid: inserts
// (s, j) where it belongs, dropping the worst when full.
GENAUG_HD inline void topk_insert(float* ls, int64_t* lj, int64_t k, int64_t& filled, float s, int64_t j) {
  if (filled == k && !better(s, j, ls[k - 1], lj[k - 1])) return;
  int64_t p = filled < k ? filled++ : k - 1;
  while (p > 0 && better(s, j, ls[p - 1], lj[p - 1])) {
    ls[p] = ls[p - 1];
    lj[p] = lj[p - 1];
    --p;
  }
  ls[p] = s;
  lj[p] = j;
}

// Parts a database block of n columns is split into for a top-k of k.
GENAUG_HD inline int64_t topk_parts(int64_t n, int64_t k) {
  if (k > kPartsMaxK) return 1;
  int64_t p = n / 256;
  if (p < 1) p = 1;
  if (p > kMaxParts) p = kMaxParts;
  return p;
}
// Columns [c0, c1) of part p of `parts` over n columns.
GENAUG_HD inline void part_range(int64_t n, int64_t parts, int64_t p, int64_t& c0, int64_t& c1) {
  c0 = n * p / parts;
  c1 = n * (p + 1) / parts;
}

// One (query row r, part p) of a block: its partial best-first list of the
// columns [c0, c1), global database index j0 + c. Returns the entries filled.
GENAUG_HD inline int64_t topk_scan(const float* S, int64_t ld, int64_t r, int64_t c0, int64_t c1, int64_t j0, int64_t k,
                                   float* ls, int64_t* lj) {
  int64_t filled = 0;
  for (int64_t c = c0; c < c1; ++c) topk_insert(ls, lj, k, filled, S[score_at(r, c, ld)], j0 + c);
  return filled;
}

// Merges a partial list of `n` entries into a row's running list.
GENAUG_HD inline void topk_merge(float* rs, int64_t* rj, int64_t k, int64_t& filled, const float* ps, const int64_t* pj,
                                 int64_t n) {
  for (int64_t e = 0; e < n; ++e) topk_insert(rs, rj, k, filled, ps[e], pj[e]);
}

// Class max of one query row over a block: out[labels[c]] = max(.., S(r, c)).
GENAUG_HD inline void classmax_scan(const float* S, int64_t ld, int64_t r, int64_t n, const int32_t* labels, float* out) {
  for (int64_t c = 0; c < n; ++c) {
    const float s = S[score_at(r, c, ld)];
    float& o = out[labels[c]];
    if (s > o) o = s;
  }
}

// Pairs of one query row r (global row i = i0 + r) in a block: a pair passes
// when s > below (the float just under the threshold, as the CPU path) and,
// within one set (self >= 0), only j > self + i. First column to look at:
GENAUG_HD inline int64_t pairs_first(int64_t i, int64_t j0, int64_t self) {
  if (self < 0) return 0;
  const int64_t f = self + i + 1 - j0;
  return f > 0 ? f : 0;
}
// Counts (out == nullptr) or writes the passing pairs of row r in column order.
GENAUG_HD inline int64_t pairs_scan(const float* S, int64_t ld, int64_t r, int64_t n, int64_t i0, int64_t j0,
                                    int64_t self, float below, int64_t* oi, int64_t* oj, float* os) {
  int64_t cnt = 0;
  for (int64_t c = pairs_first(i0 + r, j0, self); c < n; ++c) {
    const float s = S[score_at(r, c, ld)];
    if (s > below) {
      if (oi) {
        oi[cnt] = i0 + r;
        oj[cnt] = j0 + c;
        os[cnt] = s;
      }
      ++cnt;
    }
  }
  return cnt;
}

// score[i] of rowDot: double sum of float products in order, then the
// product of the two row scales (the CPU path's operations, no contraction).
GENAUG_HD inline float row_dot_one(const float* a, const float* b, int64_t d, const double* sa, const double* sb,
                                   int64_t i) {
  double s = 0.0;
  for (int64_t k = 0; k < d; ++k) s = add64(s, mul64(static_cast<double>(a[k]), static_cast<double>(b[k])));
  if (sa) s = mul64(s, mul64(sa[i], sb[i]));
  return static_cast<float>(s);
}

// ------------------------------------------------------ block sizing (host) --

// Rows of a query block (mb) and a database block (nb) that fit in `budget`
// bytes of device memory, given the bytes each query row keeps (its state:
// top-k lists, class maxima, pair counts) and each database row brings besides
// its floats (labels). Database blocks shrink first, down to the query block's
// size, then both halve; at least one row each. Returns false when even one
// row of each does not fit.
struct BlockPlan {
  int64_t mb = 0, nb = 0;
  int64_t bytes = 0;
};

inline int64_t plan_bytes(int64_t mb, int64_t nb, int64_t d, int64_t row_state, int64_t col_extra) {
  return 4 * (mb * d + nb * d + mb * nb) + mb * row_state + nb * col_extra;
}

inline bool plan_blocks(int64_t budget, int64_t m, int64_t n, int64_t d, int64_t row_state, int64_t col_extra,
                        BlockPlan& out, int64_t max_mb = 8192, int64_t max_nb = 65536) {
  int64_t mb = m < max_mb ? m : max_mb, nb = n < max_nb ? n : max_nb;
  if (mb < 1) mb = 1;
  if (nb < 1) nb = 1;
  while (plan_bytes(mb, nb, d, row_state, col_extra) > budget) {
    if (nb > 1 && nb >= mb)
      nb = (nb + 1) / 2;
    else if (mb > 1)
      mb = (mb + 1) / 2;
    else
      return false;
  }
  out.mb = mb;
  out.nb = nb;
  out.bytes = plan_bytes(mb, nb, d, row_state, col_extra);
  return true;
}

// Bytes of device memory a call may use out of `free_bytes`: 3/4 of it, less
// 64 MiB for the runtime's own allocations.
inline int64_t budget_from_free(int64_t free_bytes) {
  const int64_t b = free_bytes / 4 * 3 - (int64_t(64) << 20);
  return b > 0 ? b : 0;
}

}  // namespace genaug::tiling
