// The blocking and index math of the device (CUDA) similarity path, in one
// header that both nvcc (native/cuda/similarity.cu, where the per-element
// functions run inside the kernels) and the host compiler (the CPU emulation
// in similarity_device.cc, run by native/tests on machines without a GPU)
// compile. Everything a kernel decides -- the order of a dot product, which
// columns a thread scans, how partial top-k lists merge, ties to the lower
// index, which pairs pass, how many rows fit in device memory -- is decided
// here, so the emulation checks the same index math the GPU runs.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

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

// ------------------------------------------------ bf16 screen (precision 'bf16') --
//
// precision 'bf16' on the device screens every (query row v, database row w)
// pair with a tensor-core product of the rows rounded to bf16, bounds the
// screen's error per pair rigorously, and rescores in float32 -- tile_dot, the
// exact path's own chain -- every pair the bound cannot rule out. The answer
// is built from exact scores only, with the exact path's tie rule, so it is
// the exact path's bytes (the CPU path's indices; see similarity_device.h for
// the scores). Rows v here are the packed float32 rows (already scaled when
// normalising); v~ = bf16(v) (bf16_round), e_v = v - v~ (exact in double).
//
// The bound. Let s = tile_dot(v, w) (what the answer reports), P the screen's
// float32 result from the tensor cores, and write
//   |s - P| <= |s - v.w| + |v.w - v~.w~| + |v~.w~ - P|.
// (1) The exact chain: D fused multiply-adds in float32, each rounding to
//     nearest once, so |s - v.w| <= gamma_D sum_k |v_k w_k| <= gamma_D ||v|| ||w||
//     (Cauchy-Schwarz), gamma_D = D u / (1 - D u), u = 2^-24 [Higham, 3.1];
//     plus at most 2^-150 per step where a partial sum is subnormal.
// (2) Quantisation: v.w - v~.w~ = (v~ + e_v).w - v~.(w - e_w) = e_v.w + v~.e_w, so
//     |v.w - v~.w~| <= ||e_v|| ||w|| + ||v~|| ||e_w||       (Cauchy-Schwarz twice).
// (3) Accumulation: a product of two bf16 values (8-bit significands) is
//     exact in float32; the tensor cores add them to the float32 accumulator in
//     an unspecified order and grouping, aligning to the largest addend and
//     truncating (not rounding) the shifted bits [Fasi, Higham, Mikaitis, Pranesh,
//     "Numerical behavior of NVIDIA tensor cores", PeerJ CS 2021]. A step adding
//     g terms (the accumulator and up to 16 products) errs by less than one
//     ulp of the largest term per term truncated plus one for the result,
//     <= (g + 1) 2^-23 (sum of the |terms|), and the accumulator is at most
//     (1 + delta) sum_k |v~_k w~_k|. Over any grouping of the D products into
//     steps (one product a step is the worst), the sum of (g + 1) is at most
//     3 D, so with delta <= 3 D 2^-23 <= 3/16 (D <= 2^19, which device_topk
//     requires of the screen)
//     |v~.w~ - P| <= 3 D (1 + 3/16) 2^-23 sum_k |v~_k w~_k| <= (D + 16) 2^-21 ||v~|| ||w~||,
//     plus 2^-126 per
//     product or partial sum flushed to zero (bf16 subnormals never occur:
//     bf16_round flushes them and e_v keeps what it dropped).
// Hence |s - P| <= E(v, w) with
//   E = ||w|| (||e_v|| + gamma_D ||v||) + ||e_w|| ||v~|| + ||w~|| (D + 16) 2^-21 ||v~||
//       + (D + 16) 2^-124,
// and E is taken 1e-6 relative larger to cover the double arithmetic of the
// norms (sums of D squares, relative error <= D 2^-53) and of E itself. Each
// query row brings its three factors (screen_query_terms), each database row
// its three norms (screen_db_terms). A pair can be in the exact top-k only if
// P + E >= T, T the k-th largest of values known to be at most k distinct
// exact scores: the k exact scores already kept, or the k largest P - E of
// the block (rounded down to float). Everything below T is skipped; the rest
// is rescored exactly and merged with the running list like the exact path.

// Screen product tile (native/cuda/similarity.cu, screen_mma_kernel): a block
// of 4 warps computes kScreenM query rows x kScreenN database rows, depth in
// kScreenK slices staged through shared memory (zero padded), each warp a
// 32 x 32 corner as 2 x 2 wmma 16 x 16 x 16 bf16 fragments, float32 accumulators.
constexpr int kScreenM = 64;
constexpr int kScreenN = 64;
constexpr int kScreenK = 32;
constexpr int kMmaK = 16;
// The largest depth the screen's bound holds for (see (3)).
constexpr int64_t kScreenMaxDepth = int64_t(1) << 19;

GENAUG_HD inline uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
GENAUG_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// bf16 of a finite float: round to nearest, ties to even; a float below the
// normal range becomes 0 (so the tensor cores never see a bf16 subnormal); a
// value rounding past the largest bf16 becomes the largest (same sign).
GENAUG_HD inline uint16_t bf16_round(float x) {
  const uint32_t u = float_bits(x);
  if (((u >> 23) & 0xffu) == 0) return 0;
  uint32_t h = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  if (((h >> 7) & 0xffu) == 0xffu) h = ((u >> 16) & 0x8000u) | 0x7f7fu;
  return static_cast<uint16_t>(h);
}
GENAUG_HD inline float bf16_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// The largest float <= x (x a double; -inf below the float range).
GENAUG_HD inline float round_down_float(double x) {
  float f = static_cast<float>(x);
  if (static_cast<double>(f) > x) f = nextafterf(f, -INFINITY);
  return f;
}

// The constant terms of E for a depth d (see above).
GENAUG_HD inline double screen_gamma(int64_t d) {
  const double du = static_cast<double>(d) * 0x1p-24;
  return du / (1.0 - du);
}
GENAUG_HD inline double screen_acc(int64_t d) { return static_cast<double>(d + 16) * 0x1p-21; }
GENAUG_HD inline double screen_abs(int64_t d) { return static_cast<double>(d + 16) * 0x1p-124; }
// Scale of the margin: 1 + 1e-6 (tests cut it to show that the bound is what keeps the answer exact).
constexpr double kScreenSlack = 1.0 + 1e-6;

// One packed row to bf16 (out) and its norms in double: ||v||, ||v~||, ||v - v~||.
inline void bf16_row(const float* v, int64_t d, uint16_t* out, double& nv, double& nt, double& ne) {
  double sv = 0.0, st = 0.0, se = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const uint16_t h = bf16_round(v[k]);
    out[k] = h;
    const double x = v[k], t = bf16_float(h), e = x - t;
    sv += x * x;
    st += t * t;
    se += e * e;
  }
  nv = std::sqrt(sv);
  nt = std::sqrt(st);
  ne = std::sqrt(se);
}
// A query row's three factors of E: (||e_v|| + gamma_D ||v||, ||v~||, (D + 16) 2^-21 ||v~||).
inline void screen_query_terms(double nv, double nt, double ne, int64_t d, double* t) {
  t[0] = ne + screen_gamma(d) * nv;
  t[1] = nt;
  t[2] = screen_acc(d) * nt;
}
// A database row's three norms, in the order they multiply the query's factors: (||w||, ||e_w||, ||w~||).
inline void screen_db_terms(double nv, double nt, double ne, double* t) {
  t[0] = nv;
  t[1] = ne;
  t[2] = nt;
}

// E for a query row's factors qt and a database row's norms bt (double, no contraction).
GENAUG_HD inline double screen_margin(const double* qt, const double* bt, int64_t d, double slack) {
  const double e = add64(add64(mul64(qt[0], bt[0]), mul64(qt[1], bt[1])), mul64(qt[2], bt[2]));
  return add64(mul64(e, slack), screen_abs(d));
}
GENAUG_HD inline bool finite32(float x) { return fabsf(x) <= FLT_MAX; }

// The screen's model on the CPU (the emulation's stand-in for one tensor-core
// dot product; the hardware's order and rounding differ, within (3) above):
// depth in kMmaK slices, each slice's exact products summed in double, added
// to the float32 accumulator truncated toward zero (the hardware truncates).
inline float mma_model_dot(const uint16_t* a, const uint16_t* b, int64_t d) {
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += kMmaK) {
    double slice = 0.0;
    for (int64_t k = k0; k < k0 + kMmaK && k < d; ++k)
      slice += static_cast<double>(bf16_float(a[k])) * static_cast<double>(bf16_float(b[k]));
    const double sum = static_cast<double>(acc) + slice;
    float f = static_cast<float>(sum);
    if (std::fabs(static_cast<double>(f)) > std::fabs(sum)) f = std::nextafter(f, 0.0f);
    if (std::fabs(f) < FLT_MIN) f = 0.0f;
    acc = f;
  }
  return acc;
}

// Pass 1, one (query row r, part p): the partial list of the k largest lower
// bounds P - E (rounded down to float) of the columns [c0, c1). A screen
// score that is not finite gives no lower bound (-inf).
GENAUG_HD inline int64_t screen_lower_scan(const float* P, int64_t ld, int64_t r, int64_t c0, int64_t c1, int64_t j0,
                                           int64_t k, const double* qt, const double* bt, int64_t d, double slack,
                                           float* ls, int64_t* lj) {
  int64_t filled = 0;
  for (int64_t c = c0; c < c1; ++c) {
    const float p = P[score_at(r, c, ld)];
    const float lo = finite32(p) ? round_down_float(add64(static_cast<double>(p), -screen_margin(qt, bt + 3 * c, d, slack)))
                                 : -INFINITY;
    topk_insert(ls, lj, k, filled, lo, j0 + c);
  }
  return filled;
}

// Pass 2, one query row: the threshold T below which no column of the block
// can enter the top-k. `rs`, `rfilled`: the row's running list of exact
// scores; `ps`, `pj`, `pf`: the row's `parts` partial lists of lower bounds,
// merged here into the row's scratch list (ls, lj; k entries). T is the larger
// of the k-th exact score kept and the k-th lower bound of the block, -inf
// while neither has k entries.
GENAUG_HD inline float screen_threshold(const float* rs, int64_t rfilled, int64_t k, const float* ps, const int64_t* pj,
                                        const int64_t* pf, int64_t parts, float* ls, int64_t* lj) {
  int64_t filled = 0;
  for (int64_t p = 0; p < parts; ++p) topk_merge(ls, lj, k, filled, ps + p * k, pj + p * k, pf[p]);
  float t = -INFINITY;
  if (filled == k) t = ls[k - 1];
  if (rfilled == k && rs[k - 1] > t) t = rs[k - 1];
  return t;
}

// Pass 3, one (query row r, part p): every column of [c0, c1) whose P + E is
// not below T (or whose P is not finite) rescored exactly (tile_dot of the
// float32 rows: q is row r's, b the block's) into a partial best-first list.
// *rescored counts them.
GENAUG_HD inline int64_t screen_rescore_scan(const float* P, int64_t ld, int64_t r, int64_t c0, int64_t c1, int64_t j0,
                                             int64_t k, const double* qt, const double* bt, int64_t d, double slack,
                                             float T, const float* q, const float* b, float* ls, int64_t* lj,
                                             int64_t* rescored) {
  int64_t filled = 0, n = 0;
  for (int64_t c = c0; c < c1; ++c) {
    const float p = P[score_at(r, c, ld)];
    if (finite32(p) && add64(static_cast<double>(p), screen_margin(qt, bt + 3 * c, d, slack)) < static_cast<double>(T))
      continue;
    ++n;
    topk_insert(ls, lj, k, filled, tile_dot(q, b + c * d, d), j0 + c);
  }
  *rescored = n;
  return filled;
}

// Pairs through the screen, one query row r (global row i0 + r): as
// pairs_scan, but a column whose P + E is not above `below` is skipped
// (its exact score s <= P + E cannot pass s > below) and every other one is
// rescored exactly and kept when tile_dot > below. Counts (out == nullptr) or
// writes, in column order; *rescored counts the columns rescored.
GENAUG_HD inline int64_t screen_pairs_scan(const float* P, int64_t ld, int64_t r, int64_t n, int64_t i0, int64_t j0,
                                           int64_t self, float below, const double* qt, const double* bt, int64_t d,
                                           double slack, const float* q, const float* b, int64_t* oi, int64_t* oj,
                                           float* os, int64_t* rescored) {
  int64_t cnt = 0, n_rescored = 0;
  for (int64_t c = pairs_first(i0 + r, j0, self); c < n; ++c) {
    const float p = P[score_at(r, c, ld)];
    if (finite32(p) && add64(static_cast<double>(p), screen_margin(qt, bt + 3 * c, d, slack)) <= static_cast<double>(below))
      continue;
    ++n_rescored;
    const float s = tile_dot(q, b + c * d, d);
    if (s > below) {
      if (oi) {
        oi[cnt] = i0 + r;
        oj[cnt] = j0 + c;
        os[cnt] = s;
      }
      ++cnt;
    }
  }
  if (rescored) *rescored = n_rescored;
  return cnt;
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
