#include "similarity.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <limits>
#include <memory>
#include <numeric>

#include "error.h"
#include "kernels.h"
#include "parallel.h"
#include "screen_kernels.h"

namespace genaug {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------- buffers --

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;

// Large buffers (the packed database block) are 2 MiB aligned and asked to
// be backed by huge pages: one page fault per 2 MiB instead of 512.
void* aligned_bytes(size_t bytes) {
  const size_t align = bytes >= (size_t(4) << 20) ? (size_t(2) << 20) : 64;
  bytes = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes);
  if (p == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

AlignedFloats aligned_floats(int64_t n) {
  return AlignedFloats(static_cast<float*>(aligned_bytes(static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float))));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

std::atomic<int64_t> g_mc{0}, g_nct{0}, g_kc{0}, g_order{0};
std::atomic<bool> g_stat_screened{false}, g_stat_split{false};
std::atomic<int64_t> g_stat_rescored{0}, g_stat_pairs{0};

// ------------------------------------------------------------- validation --

void check_view(const MatrixView& m, const char* name) {
  if (m.rows < 0) fail("E_SHAPE", name, " has a negative number of rows (", m.rows, ")");
  if (m.dim < 1) fail("E_SHAPE", name, " must have at least one column, got ", m.dim);
  if (m.dim > kMaxDim) fail("E_SHAPE", name, " has ", m.dim, " columns; embeddings wider than ", kMaxDim, " are not supported");
  if (m.rows > 0 && m.data == nullptr) fail("E_SHAPE", name, " has no data");
}

void check_pair(const MatrixView& q, const MatrixView& d, const char* qn, const char* dn) {
  check_view(q, qn);
  check_view(d, dn);
  if (q.dim != d.dim)
    fail("E_SHAPE", qn, " has ", q.dim, " columns but ", dn, " has ", d.dim, ": embeddings must have the same width");
}


// Scans rows for NaN/Inf (E_NONFINITE names the first one) and returns the
// per-row multiplier the packing applies: 1/||row|| when normalising (0 for a
// zero row), empty otherwise. Also returns the largest row norm.
struct Prepared {
  std::vector<double> scale;
  double max_norm = 0.0;
};

Prepared prepare(const MatrixView& m, bool normalize, const std::string& name, int64_t row_offset, int threads) {
  Prepared p;
  if (normalize) p.scale.assign(static_cast<size_t>(m.rows), 0.0);
  const int64_t D = m.dim;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, m.rows / 1024 + 1)));
  std::vector<double> max_norm(static_cast<size_t>(threads), 0.0);
  std::vector<int64_t> bad_row(static_cast<size_t>(threads), -1);
  run_threads(threads, [&](int tid) {
    const int64_t r0 = m.rows * tid / threads, r1 = m.rows * (tid + 1) / threads;
    // Four rows at a time: each row's sum keeps its sequential order (same
    // bytes), but four independent chains hide the add latency.
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      const float *x0 = m.data + r * D, *x1 = x0 + D, *x2 = x1 + D, *x3 = x2 + D;
      double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
      for (int64_t k = 0; k < D; ++k) {
        s0 += static_cast<double>(x0[k]) * x0[k];
        s1 += static_cast<double>(x1[k]) * x1[k];
        s2 += static_cast<double>(x2[k]) * x2[k];
        s3 += static_cast<double>(x3[k]) * x3[k];
      }
      const double ss[4] = {s0, s1, s2, s3};
      bool bad = false;
      for (int z = 0; z < 4; ++z) {
        if (!std::isfinite(ss[z])) {
          bad_row[tid] = r + z;
          bad = true;
          break;
        }
        const double n = std::sqrt(ss[z]);
        max_norm[tid] = std::max(max_norm[tid], n);
        if (normalize) p.scale[r + z] = n > 0.0 ? 1.0 / n : 0.0;
      }
      if (bad) return;
    }
    for (; r < r1; ++r) {
      const float* x = m.data + r * D;
      double s = 0.0;
      for (int64_t k = 0; k < D; ++k) s += static_cast<double>(x[k]) * x[k];
      if (!std::isfinite(s)) {
        bad_row[tid] = r;
        return;
      }
      const double n = std::sqrt(s);
      max_norm[tid] = std::max(max_norm[tid], n);
      // Kept in double: 1/n overflows float for rows with norm below ~3e-39.
      if (normalize) p.scale[r] = n > 0.0 ? 1.0 / n : 0.0;
    }
  });
  for (int t = 0; t < threads; ++t) {
    if (bad_row[t] >= 0) {
      const int64_t r = bad_row[t];
      for (int64_t k = 0; k < D; ++k) {
        const float v = m.data[r * D + k];
        if (!std::isfinite(v))
          fail("E_NONFINITE", name, " row ", r + row_offset, ", column ", k, " is ", std::isnan(v) ? "NaN" : "infinite",
               ": embeddings must be finite");
      }
    }
    p.max_norm = std::max(p.max_norm, max_norm[t]);
  }
  return p;
}

// Without normalisation a dot product is bounded by the product of the norms
// (Cauchy-Schwarz, for every partial sum too); refuse inputs that could
// overflow float32 rather than return infinities.
void check_dot_range(const Prepared& a, const Prepared& b, bool normalize) {
  if (normalize) return;
  if (a.max_norm * b.max_norm > 1e37)
    fail("E_RANGE", "values too large: without normalisation dot products could reach ", a.max_norm * b.max_norm,
         " and overflow float32; normalise or rescale the embeddings");
}

// ----------------------------------------------------------------- engine --

// A database normalised as it is packed: read once, not once for its norms
// and once more for the product (what bounds a few-query call). What
// prepare() needs to name a bad row the way the up-front pass does.
struct LazyNorm {
  MatrixView view;
  std::string name;
  int64_t row_offset;
  int threads;
};

struct Operand {
  const float* data;
  int64_t rows;
  int64_t dim;
  const double* scale;  // per physical row, or nullptr
  const int64_t* perm;  // logical row -> physical row, or nullptr
  // Not null: normalise every row while packing it (scale is then nullptr):
  // run_engine_stream and run_screened do; run_engine's block path computes
  // the scales first.
  const LazyNorm* lazy = nullptr;
};

// Logical row i of an operand.
inline const float* row_ptr(const Operand& op, int64_t i) { return op.data + (op.perm ? op.perm[i] : i) * op.dim; }

// The multiplier prepare() gives a row (its squares summed in double, k = 0,
// 1, ... in order; 1/||x||, 0 for a zero row); false when the sum is not finite.
inline bool row_inv_norm(const float* x, int64_t D, double* scale) {
  double ss = 0.0;
  for (int64_t k = 0; k < D; ++k) ss += static_cast<double>(x[k]) * x[k];
  const double n = std::sqrt(ss);
  *scale = n > 0.0 ? 1.0 / n : 0.0;
  return std::isfinite(ss);
}

class Reducer {
 public:
  virtual ~Reducer() = default;
  // A finished tile: query rows [i0, i0+mi), database (logical) rows
  // [j0, j0+nj); score(i0+r, j0+c) = tile[r*ldc + c].
  virtual void consume(int tid, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) = 0;
  virtual bool skip(int64_t /*i0*/, int64_t /*mi*/, int64_t /*j0*/, int64_t /*nj*/) const { return false; }
  // Few query rows: may tiles of the same query rows go to different threads
  // at once? A reducer that says yes has set itself up for `threads` threads.
  virtual bool can_split(int /*threads*/) { return false; }
  // The screened engine's tile (see run_screened).
  virtual void consume_screened(int /*tid*/, const struct ScreenTile& /*t*/) { fail("E_INTERNAL", "no screened reducer"); }
  // Called before the screened engine starts (threads, query rows per block)
  // and after the last tile of each (query block, database block), with the
  // whole block: j0 = its first row, drows = its float32 rows, no approx.
  virtual void prepare_screened(int /*threads*/, int64_t /*rows*/) {}
  virtual void finish_screened(int /*tid*/, const struct ScreenTile& /*t*/) {}
};

// One tile of the screened engine: approximate scores, their error bound per
// query row, and the float32 rows that rescore a pair exactly.
struct ScreenTile {
  const float* approx;  // approx[r*ldc + c] for query row i0+r, database row j0+c
  int64_t ldc;
  int64_t i0, mi, j0, nj;
  const double* margin;  // per query row r: |exact float32 score - approx| <= margin[r] for every c
  const float* qrows;    // qrows + r*dim: query row i0+r as the float32 engine packs it
  const float* drows;    // drows + c*dim: database row j0+c likewise
  int64_t dim;
  const ScreenKernels* sk;
  const Kernels* k;
  int64_t* rescored;  // the thread's count of pairs rescored
  int64_t bj0;          // the database block's first row
  const float* brows;   // brows + (j - bj0)*dim: row j of the block, float32
  // Per query row r and database column c of the tile (null in the tile
  // finish_screened gets): their quantisation stats, for a bound per pair
  // (pair_margin) tighter than margin[r] (the block's worst column).
  const struct QuantStats* qstat = nullptr;
  const struct QuantStats* dstat = nullptr;
  bool statistical = false;
};


// The largest float <= t (t in double; -inf stays -inf).
// The float just below a finite f (no libm call: this runs per candidate).
inline float float_below(float f) {
  if (f == 0.0f) return -std::numeric_limits<float>::denorm_min();
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b = f > 0.0f ? b - 1 : b + 1;
  std::memcpy(&f, &b, 4);
  return f;
}

inline float float_at_most(double t) {
  if (!(t > -static_cast<double>(std::numeric_limits<float>::max()))) return kNegInf;
  if (t >= static_cast<double>(std::numeric_limits<float>::max())) return std::numeric_limits<float>::max();
  const float f = static_cast<float>(t);
  return static_cast<double>(f) > t ? float_below(f) : f;
}

// The smallest float >= t (t in double).
inline float float_at_least(double t) { return -float_at_most(-t); }

// Rescores the candidates of one query row in batches: calls `take(c, exact)`
// for every column c in [from, to) with approx[c] >= bound(), where bound()
// is read again after every batch (it may only rise).
template <typename Bound, typename Take>
void rescore_row(const ScreenTile& t, int64_t r, int64_t from, int64_t to, Bound bound, Take take) {
  const float* row = t.approx + r * t.ldc;
  const float* a = t.qrows + r * t.dim;
  constexpr int kBatch = 8;
  int64_t cols[kBatch];
  const float* ptrs[kBatch];
  float exact[kBatch];
  int64_t c = from;
  for (;;) {
    const float tf = bound();
    if (tf == std::numeric_limits<float>::infinity()) return;
    const float below = tf == kNegInf ? kNegInf : float_below(tf);
    int n = 0;
    for (c = t.k->scan_gt(row, c, to, below); c < to && n < kBatch; c = t.k->scan_gt(row, c + 1, to, below)) {
      cols[n] = c;
      ptrs[n] = t.drows + c * t.dim;
      ++n;
    }
    if (n == 0) return;
    t.sk->exact_dots(a, ptrs, n, t.dim, exact);
    *t.rescored += n;
    for (int x = 0; x < n; ++x) take(cols[x], exact[x]);
    if (c >= to) return;
  }
}


// Packs rows [r0, r0+rows) of `op` into a panel laid out [k][width]; rows past
// the end are zero so the micro-kernel always runs full tiles.
void pack_panel(const Operand& op, int64_t r0, int64_t rows, int width, float* out) {
  const int64_t D = op.dim;
  static const ScreenKernels* fast = screen_kernels_for(Isa::Avx2);
  if (fast != nullptr && width % 8 == 0 && rows == width) {
    const float* src[64];
    double sc[64];
    for (int r = 0; r < width; ++r) {
      const int64_t phys = op.perm ? op.perm[r0 + r] : r0 + r;
      src[r] = op.data + phys * D;
      sc[r] = op.scale ? op.scale[phys] : 1.0;
    }
    if (width <= 64) {
      fast->pack_rows(src, op.scale ? sc : nullptr, width, D, out);
      return;
    }
  }
  for (int r = 0; r < width; ++r) {
    if (r < rows) {
      const int64_t phys = op.perm ? op.perm[r0 + r] : r0 + r;
      const float* src = op.data + phys * D;
      if (op.scale) {
        const double s = op.scale[phys];
        for (int64_t k = 0; k < D; ++k) out[k * width + r] = static_cast<float>(src[k] * s);
      } else {
        for (int64_t k = 0; k < D; ++k) out[k * width + r] = src[k];
      }
    } else {
      for (int64_t k = 0; k < D; ++k) out[k * width + r] = 0.0f;
    }
  }
}

// pack_panel for a LazyNorm operand: each row's multiplier computed here, as
// prepare() computes it, then the rows packed with it. False when a row is
// not finite (the caller then runs prepare() for its error).
bool pack_panel_norm(const Operand& op, int64_t r0, int64_t rows, int width, float* out) {
  const int64_t D = op.dim;
  static const ScreenKernels* fast = screen_kernels_for(Isa::Avx2);
  if (fast != nullptr && width % 8 == 0 && rows == width && width <= 64) {
    const float* src[64];
    double sc[64];
    for (int r = 0; r < width; ++r) src[r] = row_ptr(op, r0 + r);
    return fast->pack_rows_norm(src, width, D, out, sc);
  }
  for (int r = 0; r < width; ++r) {
    if (r < rows) {
      const float* src = row_ptr(op, r0 + r);
      double s;
      if (!row_inv_norm(src, D, &s)) return false;
      for (int64_t k = 0; k < D; ++k) out[k * width + r] = static_cast<float>(src[k] * s);
    } else {
      for (int64_t k = 0; k < D; ++k) out[k * width + r] = 0.0f;
    }
  }
  return true;
}

// The up-front pass a LazyNorm operand skipped: throws what prepare() throws
// (E_NONFINITE naming the first bad row).
void check_lazy(const LazyNorm& z) { prepare(z.view, true, z.name, z.row_offset, z.threads); }

// Multiply-adds below which a call with few query rows stays on one thread.
constexpr int64_t kSplitMinWork = int64_t(1) << 23;

bool cancelled(const int32_t* flag) { return flag != nullptr && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0; }

// One block of query rows (few): the database is never packed as a whole.
// Each thread takes the next tile of NCT database rows, packs just that tile
// (it stays in cache) and runs it against the query block packed once, so no
// buffer the size of the database is written (nor page-faulted in).
void run_engine_stream(const Operand& q, const Operand& d, Reducer& red, const Kernels& K, int T, int64_t MC,
                       int64_t NCT, int64_t KC, const int32_t* cancel) {
  const int64_t M = q.rows, N = d.rows, D = q.dim;
  const int MR = K.mr, NR = K.nr;
  const int64_t apanels = (M + MR - 1) / MR;
  AlignedFloats ap = aligned_floats(MC * D);
  for (int64_t p = 0; p < apanels; ++p) pack_panel(q, p * MR, std::min<int64_t>(MR, M - p * MR), MR, ap.get() + p * D * MR);
  const int64_t tiles = (N + NCT - 1) / NCT;
  std::atomic<int64_t> next{0};
  std::atomic<bool> bad{false};  // a LazyNorm row is not finite
  FirstError err;
  run_threads(T, [&](int tid) {
    try {
      AlignedFloats bt = aligned_floats(round_up(NCT, NR) * D);
      AlignedFloats ct = aligned_floats(MC * NCT);
      // Each thread claims its next tile one ahead and prefetches that tile's
      // rows while it multiplies the current one, so reading the database
      // (the bound of a few-query call) overlaps the product.
      const int64_t row_lines = (D * static_cast<int64_t>(sizeof(float)) + 63) / 64;
      auto prefetch_slice = [&](int64_t t, int64_t part, int64_t parts) {
        if (t >= tiles) return;
        const int64_t r0 = t * NCT, nr = std::min(NCT, N - r0), lines = nr * row_lines;
        for (int64_t x = lines * part / parts; x < lines * (part + 1) / parts; ++x) {
          const int64_t r = r0 + x / row_lines;
          const int64_t phys = d.perm ? d.perm[r] : r;
          __builtin_prefetch(reinterpret_cast<const char*>(d.data + phys * D) + (x % row_lines) * 64, 0, 2);
        }
      };
      int64_t ahead = next.fetch_add(1);
      for (int64_t tile; (tile = ahead) < tiles;) {
        ahead = next.fetch_add(1);
        if (err.failed() || bad.load(std::memory_order_relaxed)) break;
        if (cancelled(cancel)) fail("E_ABORTED", "the similarity call was aborted");
        const int64_t j0 = tile * NCT;
        const int64_t nj = std::min(NCT, N - j0);
        if (red.skip(0, M, j0, nj)) continue;
        const int64_t bpanels = (nj + NR - 1) / NR;
        bool ok = true;
        for (int64_t p = 0; p < bpanels && ok; ++p) {
          if (d.lazy)
            ok = pack_panel_norm(d, j0 + p * NR, std::min<int64_t>(NR, nj - p * NR), NR, bt.get() + p * D * NR);
          else
            pack_panel(d, j0 + p * NR, std::min<int64_t>(NR, nj - p * NR), NR, bt.get() + p * D * NR);
        }
        if (!ok) {
          bad.store(true);
          break;
        }
        for (int64_t k0 = 0; k0 < D; k0 += KC) {
          const int64_t kc = std::min(KC, D - k0);
          for (int64_t jr = 0; jr < bpanels; ++jr) {
            if (k0 == 0) prefetch_slice(ahead, jr, bpanels);
            const float* b = bt.get() + jr * D * NR + k0 * NR;
            for (int64_t ir = 0; ir < apanels; ++ir)
              K.micro(kc, ap.get() + ir * D * MR + k0 * MR, b, ct.get() + ir * MR * NCT + jr * NR, NCT, k0 > 0);
          }
        }
        red.consume(tid, ct.get(), NCT, 0, M, j0, nj);
      }
    } catch (...) {
      err.capture();
    }
  });
  // A bad row, or an error (E_LIMIT, E_ABORTED) that may have come before a
  // bad row was reached: the up-front pass would have failed first.
  if (d.lazy != nullptr && (bad.load() || err.failed())) {
    check_lazy(*d.lazy);
    if (bad.load()) fail("E_INTERNAL", "a database row is not finite but the check found none");
  }
  err.rethrow();
}

void run_engine(const Operand& q, const Operand& d_in, Reducer& red, const Kernels& K, int threads,
                int64_t block_bytes, const int32_t* cancel) {
  Operand d = d_in;
  const int64_t M = q.rows, N = d.rows, D = q.dim;
  if (M == 0 || N == 0) {
    if (d.lazy) check_lazy(*d.lazy);
    return;
  }
  const int MR = K.mr, NR = K.nr;
  const int64_t mc_tuned = g_mc.load();
  const int64_t mc_default = mc_tuned > 0 ? mc_tuned : 192;
  // Query rows per block; the packed block (MC x D per thread) also stays
  // within a quarter of block_bytes when rows are very wide.
  const int64_t mc_mem = std::max<int64_t>(MR, block_bytes / 4 / (D * static_cast<int64_t>(sizeof(float))) / MR * MR);
  const int64_t MC = std::max<int64_t>(MR, round_up(std::min<int64_t>({mc_default, mc_mem, round_up(M, MR)}), MR));
  const int64_t nct_tuned = g_nct.load();
  const int64_t nct_default = nct_tuned > 0 ? nct_tuned : 256;
  const int64_t NCT = std::max<int64_t>(NR, round_up(nct_default, NR));
  const int64_t kc_tuned = g_kc.load();
  const int64_t KC = kc_tuned > 0 ? kc_tuned : 512;
  // Database rows per packed block: as many as block_bytes holds (whole
  // micro-panels, at least one), never more than the database needs.
  int64_t NB = std::max<int64_t>(NR, block_bytes / (D * static_cast<int64_t>(sizeof(float))) / NR * NR);
  NB = std::min(NB, round_up(N, NR));
  const int64_t n_qblocks = (M + MC - 1) / MC;
  const int64_t n_dblocks = (N + NB - 1) / NB;
  // Few query rows (fewer blocks than threads): the tiles of the database
  // block go to the threads instead, when the reducer allows it.
  // (Not for small calls: starting the threads would cost more than the work.)
  const bool split = n_qblocks < threads && threads > 1 && M * N * D >= kSplitMinWork && red.can_split(threads);
  const int T = split ? threads : static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n_qblocks)));
  g_stat_split.store(split);
  g_stat_screened.store(false);
  if (n_qblocks == 1 && (split || T == 1)) {
    run_engine_stream(q, d, red, K, T, MC, NCT, KC, cancel);
    return;
  }
  std::vector<double> lazy_scale;
  if (d.lazy) {
    Prepared p = prepare(d.lazy->view, true, d.lazy->name, d.lazy->row_offset, d.lazy->threads);
    lazy_scale = std::move(p.scale);
    d.scale = lazy_scale.data();
    d.lazy = nullptr;
  }

  AlignedFloats bpack = aligned_floats(round_up(NB, NR) * D);
  std::vector<AlignedFloats> apack, ctile;
  for (int t = 0; t < T; ++t) {
    apack.push_back(aligned_floats(MC * D));
    ctile.push_back(aligned_floats(MC * NCT));
  }
  std::unique_ptr<std::atomic<int64_t>[]> next(new std::atomic<int64_t>[static_cast<size_t>(n_dblocks)]);
  for (int64_t b = 0; b < n_dblocks; ++b) next[b].store(0);
  Barrier barrier(T);
  FirstError err;

  run_threads(T, [&](int tid) {
    float* ap = apack[tid].get();
    float* ct = ctile[tid].get();
    for (int64_t db = 0; db < n_dblocks; ++db) {
      const int64_t jc = db * NB;
      const int64_t nb = std::min(NB, N - jc);
      const int64_t panels = (nb + NR - 1) / NR;
      if (!err.failed()) {
        try {
          for (int64_t p = tid; p < panels; p += T)
            pack_panel(d, jc + p * NR, std::min<int64_t>(NR, nb - p * NR), NR, bpack.get() + p * D * NR);
        } catch (...) {
          err.capture();
        }
      }
      barrier.wait();
      if (!err.failed()) {
        try {
          const int64_t tiles = (nb + NCT - 1) / NCT;
          const int64_t items = split ? n_qblocks * tiles : n_qblocks;
          int64_t packed = -1, i0 = 0, mi = 0, apanels = 0;
          for (int64_t item; (item = next[db].fetch_add(1)) < items;) {
            if (err.failed()) break;
            if (cancelled(cancel)) fail("E_ABORTED", "the similarity call was aborted");
            const int64_t blk = split ? item / tiles : item;
            const int64_t jt0 = split ? (item % tiles) * NCT : 0, jt1 = split ? std::min(nb, jt0 + NCT) : nb;
            if (blk != packed) {
              i0 = blk * MC;
              mi = std::min(MC, M - i0);
              apanels = (mi + MR - 1) / MR;
              for (int64_t p = 0; p < apanels; ++p)
                pack_panel(q, i0 + p * MR, std::min<int64_t>(MR, mi - p * MR), MR, ap + p * D * MR);
              packed = blk;
            }
            for (int64_t jt = jt0; jt < jt1; jt += NCT) {
              const int64_t nj = std::min(NCT, nb - jt);
              if (red.skip(i0, mi, jc + jt, nj)) continue;
              const int64_t bpanels = (nj + NR - 1) / NR;
              const float* bt = bpack.get() + (jt / NR) * D * NR;
              for (int64_t k0 = 0; k0 < D; k0 += KC) {
                const int64_t kc = std::min(KC, D - k0);
                if (g_order.load() == 0) {
                  // B micro-panel (NR x kc) stays in L1 while the A panels stream from L2.
                  for (int64_t jr = 0; jr < bpanels; ++jr) {
                    const float* b = bt + jr * D * NR + k0 * NR;
                    for (int64_t ir = 0; ir < apanels; ++ir)
                      K.micro(kc, ap + ir * D * MR + k0 * MR, b, ct + ir * MR * NCT + jr * NR, NCT, k0 > 0);
                  }
                } else {
                  for (int64_t ir = 0; ir < apanels; ++ir) {
                    const float* a = ap + ir * D * MR + k0 * MR;
                    float* c = ct + ir * MR * NCT;
                    for (int64_t jr = 0; jr < bpanels; ++jr)
                      K.micro(kc, a, bt + jr * D * NR + k0 * NR, c + jr * NR, NCT, k0 > 0);
                  }
                }
              }
              red.consume(tid, ct, NCT, i0, mi, jc + jt, nj);
            }
          }
        } catch (...) {
          err.capture();
        }
      }
      barrier.wait();
    }
  });
  err.rethrow();
}

// -------------------------------------------------------- screened engine --
//
// The float32 product is bound by fused multiply-add throughput. The screened
// engine does the full product in 8-bit integers instead (twice or more the
// multiply-adds per instruction), with a rigorous per-pair error bound, and
// rescores in float32 only the pairs whose bound cannot rule them out. Each
// row v (as the float32 engine packs it: x * (1/||x||) rounded to float) is
// quantised with its own scale s = max|v| / 63: v = s q + e, |q| <= 63. For a query row v and database row w,
// with S = s_v s_w (q_v . q_w) the integer product and s_fp32 the score the
// float32 engine computes (a chain of D fused multiply-adds),
//   |v.w - S|      <= ||s_v q_v|| ||e_w|| + ||e_v|| ||w||      (Cauchy-Schwarz)
//   |s_fp32 - v.w| <= gamma_D ||v|| ||w||, gamma_D = D u / (1 - D u), u = 2^-24
//   |approx - S|   <= 4u ||s_v q_v|| ||s_w q_w||               (float epilogue)
// The margin E of a query row against a database block takes the block's
// largest ||e_w||, ||w||, ||s_w q_w||, so |s_fp32 - approx| <= E for every
// pair. A reducer then rescores exactly every pair whose approx + E can still
// reach what it keeps (the k-th best, the class max, the threshold), which
// provably includes every pair of the exact answer; the answer is built from
// exact scores only, so it is the float32 engine's, byte for byte.

struct QuantStats {
  float scale = 0.0f;  // s
  int32_t corr = 0;    // 64 * sum(q) (database rows; the query side's +64 offset)
  double nq = 0.0, ne = 0.0, nv = 0.0;  // ||s q||, ||e||, ||v||
};

struct AlignedDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
std::unique_ptr<T[], AlignedDeleter> aligned_array(int64_t n) {
  return std::unique_ptr<T[], AlignedDeleter>(static_cast<T*>(aligned_bytes(static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T))));
}

// Quantises rows [r0, r0+rows) of `op` into one packed micro-panel of
// `width` rows ([k/4][width][4] bytes; q + offset), their float32 rows
// (fout + r*D) and their stats; rows past the end are zeros.
void pack_quant_panel(const ScreenKernels& SK, const Operand& op, int64_t r0, int64_t rows, int width, int qmax,
                      int offset, int64_t D4, uint8_t* panel, float* fout, QuantStats* st, uint8_t* scratch) {
  const int64_t D = op.dim;
  // A LazyNorm operand: the rows' multipliers first (as prepare() computes
  // them), eight rows at a time where the panel is full.
  double lazy_scale[64];
  if (op.lazy != nullptr) {
    if (width > 64) fail("E_INTERNAL", "panel too wide for a lazily normalised operand");
    bool ok = true;
    if (rows == width && width % 8 == 0) {
      const float* src[64];
      for (int r = 0; r < width; ++r) src[r] = row_ptr(op, r0 + r);
      ok = SK.row_norms(src, width, D, lazy_scale);
    } else {
      for (int r = 0; r < rows; ++r) ok &= row_inv_norm(row_ptr(op, r0 + r), D, &lazy_scale[r]);
    }
    if (!ok) fail("E_NONFINITE", "a database row is not finite");  // replaced by check_lazy's message
  }
  for (int r = 0; r < width; ++r) {
    QuantStats q;
    uint8_t* dst = panel + r * 4;
    if (r >= rows) {
      for (int64_t k = 0; k < D4; ++k) dst[(k >> 2) * width * 4 + (k & 3)] = static_cast<uint8_t>(offset);
      st[r] = q;
      continue;
    }
    const int64_t phys = op.perm ? op.perm[r0 + r] : r0 + r;
    float* v = fout + static_cast<int64_t>(r) * D;
    const float m = op.lazy ? SK.load_row(op.data + phys * D, true, lazy_scale[r], D, v)
                            : SK.load_row(op.data + phys * D, op.scale != nullptr, op.scale ? op.scale[phys] : 1.0, D, v);
    float scale = static_cast<float>(static_cast<double>(m) / qmax);
    if (!(scale >= std::numeric_limits<float>::min())) scale = 0.0f;  // tiny rows: everything is error
    double nq2, ne2, nv2;
    int64_t sumq;
    SK.quantize(v, D, scale, qmax, offset, scratch, &nq2, &ne2, &nv2, &sumq);
    for (int64_t k = D; k < D4; ++k) scratch[k] = static_cast<uint8_t>(offset);
    for (int64_t k4 = 0; k4 < D4 / 4; ++k4) std::memcpy(dst + k4 * width * 4, scratch + 4 * k4, 4);
    q.scale = scale;
    q.corr = static_cast<int32_t>(64 * sumq);
    q.nq = std::sqrt(nq2);
    q.ne = std::sqrt(ne2);
    q.nv = std::sqrt(nv2);
    st[r] = q;
  }
}

struct BlockMax {
  double ne = 0.0, nv = 0.0, nq = 0.0;
  void add(const QuantStats& q) {
    ne = std::max(ne, q.ne);
    nv = std::max(nv, q.nv);
    nq = std::max(nq, q.nq);
  }
  void add(const BlockMax& b) {
    ne = std::max(ne, b.ne);
    nv = std::max(nv, b.nv);
    nq = std::max(nq, b.nq);
  }
};

// screen_margin for one pair: the database row's own norms instead of the
// block's largest (never larger than screen_margin's against that block).
inline double pair_margin(const QuantStats& a, const QuantStats& b, double gamma, double fstat) {
  const double u = std::ldexp(1.0, -24);
  const double e = fstat * (a.nq * b.ne + a.ne * b.nv) + gamma * a.nv * b.nv + 4.0 * u * a.nq * b.nq;
  return e * (1.0 + 1e-6) + 1e-44;
}

// The bound |s_fp32 - approx| <= margin for a query row against a block (see
// the comment above); `statistical` (the opt-in bf16 precision) replaces the
// Cauchy-Schwarz terms by 4 standard deviations of a sum of D independent
// rounding errors (||e|| ||w|| / sqrt(D) each).
double screen_margin(const QuantStats& a, const BlockMax& b, int64_t D, bool statistical) {
  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(D) * u / (1.0 - static_cast<double>(D) * u);
  double quant = a.nq * b.ne + a.ne * b.nv;
  if (statistical) quant *= 4.0 / std::sqrt(static_cast<double>(D));
  const double e = quant + gamma * a.nv * b.nv + 4.0 * u * a.nq * b.nq;
  // Room for the rounding of these double sums and of threshold arithmetic,
  // and for subnormal products.
  return e * (1.0 + 1e-6) + 1e-44;
}

void run_screened(const Operand& q, const Operand& d, Reducer& red, const Kernels& K, const ScreenKernels& SK,
                  int threads, int64_t block_bytes, const int32_t* cancel, bool statistical, bool db8) {
  const int db_qmax = db8 ? 127 : 63;
  const auto micro = db8 ? SK.micro8 : SK.micro;
  const int64_t M = q.rows, N = d.rows, D = q.dim;
  if (M == 0 || N == 0) {
    if (d.lazy) check_lazy(*d.lazy);
    return;
  }
  const int MR = SK.mr, NR = SK.nr;
  const int64_t D4 = round_up(D, 4);
  const int64_t per_qrow = D4 + D * static_cast<int64_t>(sizeof(float));
  const int64_t mc_tuned = g_mc.load();
  const int64_t mc_default = mc_tuned > 0 ? mc_tuned : 192;
  const int64_t mc_mem = std::max<int64_t>(MR, block_bytes / 4 / per_qrow / MR * MR);
  const int64_t MC = std::max<int64_t>(MR, round_up(std::min<int64_t>({mc_default, mc_mem, round_up(M, MR)}), MR));
  const int64_t nct_tuned = g_nct.load();
  const int64_t NCT = std::max<int64_t>(NR, round_up(nct_tuned > 0 ? nct_tuned : 256, NR));
  // Database rows per block: 8-bit panel + float32 rows within block_bytes.
  int64_t NB = std::max<int64_t>(NR, block_bytes / (D4 + D * static_cast<int64_t>(sizeof(float))) / NR * NR);
  NB = std::min(NB, round_up(N, NR));
  const int64_t n_qblocks = (M + MC - 1) / MC;
  const bool split = n_qblocks < threads && threads > 1 && M * N * D >= kSplitMinWork && red.can_split(threads);
  // Few query rows: blocks of ~8 MiB, which stay in the last-level cache
  // from packing to rescoring and are not page-faulted in afresh as one
  // buffer the size of the database would be.
  if (split || n_qblocks == 1) NB = std::min(NB, std::max<int64_t>(NR, (int64_t(8) << 20) / (D4 + D * static_cast<int64_t>(sizeof(float))) / NR * NR));
  const int64_t n_dblocks = (N + NB - 1) / NB;
  const int T = split ? threads : static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n_qblocks)));
  g_stat_split.store(split);
  g_stat_screened.store(true);

  auto bpanel = aligned_array<uint8_t>(NB * D4);
  AlignedFloats brows = aligned_floats(NB * D);
  std::vector<QuantStats> bstat(static_cast<size_t>(NB));
  std::vector<BlockMax> tmax(static_cast<size_t>(T));
  struct PerThread {
    std::unique_ptr<uint8_t[], AlignedDeleter> apanel;
    AlignedFloats arows, ctile;
    std::vector<QuantStats> astat;
    std::vector<float> ascale;
    std::vector<double> margin, tmargin;
    std::vector<uint8_t> scratch;
  };
  std::vector<PerThread> pt(static_cast<size_t>(T));
  red.prepare_screened(T, MC);
  for (auto& p : pt) {
    p.apanel = aligned_array<uint8_t>(MC * D4);
    p.arows = aligned_floats(MC * D);
    p.ctile = aligned_floats(MC * NCT);
    p.astat.resize(static_cast<size_t>(MC));
    p.ascale.resize(static_cast<size_t>(MC));
    p.scratch.resize(static_cast<size_t>(D4));
    p.margin.resize(static_cast<size_t>(MC));
    p.tmargin.resize(static_cast<size_t>(MC));
  }
  std::unique_ptr<std::atomic<int64_t>[]> next(new std::atomic<int64_t>[static_cast<size_t>(n_dblocks)]);
  for (int64_t b = 0; b < n_dblocks; ++b) next[b].store(0);
  std::atomic<int64_t> rescored_total{0};
  Barrier barrier(T);
  FirstError err;

  run_threads(T, [&](int tid) {
    PerThread& P = pt[static_cast<size_t>(tid)];
    int64_t rescored = 0;
    for (int64_t db = 0; db < n_dblocks; ++db) {
      const int64_t jc = db * NB;
      const int64_t nb = std::min(NB, N - jc);
      const int64_t panels = (nb + NR - 1) / NR;
      if (!err.failed()) {
        try {
          BlockMax bm;
          for (int64_t p = tid; p < panels; p += T) {
            pack_quant_panel(SK, d, jc + p * NR, std::min<int64_t>(NR, nb - p * NR), NR, db_qmax, 0, D4,
                             bpanel.get() + p * D4 * NR, brows.get() + p * NR * D, bstat.data() + p * NR, P.scratch.data());
            for (int r = 0; r < NR; ++r) bm.add(bstat[p * NR + r]);
          }
          tmax[tid] = bm;
        } catch (...) {
          err.capture();
        }
      }
      barrier.wait();
      if (!err.failed()) {
        try {
          BlockMax bm;
          for (const auto& t : tmax) bm.add(t);
          std::vector<float> bscale(static_cast<size_t>(panels * NR));
          std::vector<int32_t> corr(static_cast<size_t>(panels * NR));
          for (int64_t c = 0; c < panels * NR; ++c) {
            bscale[c] = bstat[c].scale;
            corr[c] = bstat[c].corr;
          }
          const int64_t tiles = (nb + NCT - 1) / NCT;
          const int64_t items = split ? n_qblocks * tiles : n_qblocks;
          int64_t packed = -1;
          int64_t apanels = 0, mi = 0, i0 = 0;
          for (int64_t item; (item = next[db].fetch_add(1)) < items;) {
            if (err.failed()) break;
            if (cancelled(cancel)) fail("E_ABORTED", "the similarity call was aborted");
            const int64_t blk = split ? item / tiles : item;
            const int64_t t0 = split ? item % tiles : 0, t1 = split ? t0 + 1 : tiles;
            if (blk != packed) {
              i0 = blk * MC;
              mi = std::min(MC, M - i0);
              apanels = (mi + MR - 1) / MR;
              for (int64_t p = 0; p < apanels; ++p)
                pack_quant_panel(SK, q, i0 + p * MR, std::min<int64_t>(MR, mi - p * MR), MR, 63, 64, D4,
                                 P.apanel.get() + p * D4 * MR, P.arows.get() + p * MR * D, P.astat.data() + p * MR,
                                 P.scratch.data());
              for (int64_t r = 0; r < apanels * MR; ++r) P.ascale[r] = P.astat[r].scale;
              for (int64_t r = 0; r < mi; ++r) P.margin[r] = screen_margin(P.astat[r], bm, D, statistical);
              packed = blk;
            }
            float* ct = P.ctile.get();
            for (int64_t tile = t0; tile < t1; ++tile) {
              const int64_t jt = tile * NCT;
              const int64_t nj = std::min(NCT, nb - jt);
              if (red.skip(i0, mi, jc + jt, nj)) continue;
              const int64_t bpanels = (nj + NR - 1) / NR;
              for (int64_t jr = 0; jr < bpanels; ++jr) {
                const int8_t* b = reinterpret_cast<const int8_t*>(bpanel.get() + (jt / NR + jr) * D4 * NR);
                const float* bs = bscale.data() + jt + jr * NR;
                const int32_t* cr = corr.data() + jt + jr * NR;
                for (int64_t ir = 0; ir < apanels; ++ir)
                  micro(D4 / 4, P.apanel.get() + ir * D4 * MR, b, P.ascale.data() + ir * MR, bs, cr,
                           ct + ir * MR * NCT + jr * NR, NCT);
              }
              // The tile's own worst column (256 rows, not the whole block's): a tighter first filter.
              BlockMax tm;
              for (int64_t c = 0; c < nj; ++c) tm.add(bstat[jt + c]);
              for (int64_t r = 0; r < mi; ++r) P.tmargin[r] = std::min(P.margin[r], screen_margin(P.astat[r], tm, D, statistical));
              ScreenTile st{ct, NCT, i0, mi, jc + jt, nj, P.tmargin.data(), P.arows.get(), brows.get() + jt * D, D, &SK, &K, &rescored, jc, brows.get(),
                            P.astat.data(), bstat.data() + jt, statistical};
              red.consume_screened(tid, st);
            }
            if (!split) {
              ScreenTile all{nullptr, 0, i0, mi, jc, nb, P.margin.data(), P.arows.get(), brows.get(), D, &SK, &K, &rescored, jc, brows.get()};
              red.finish_screened(tid, all);
            }
          }
        } catch (...) {
          err.capture();
        }
      }
      barrier.wait();
    }
    rescored_total.fetch_add(rescored);
  });
  // A bad row of a LazyNorm database, or an error that may have come before
  // one was reached: the up-front pass would have failed first.
  if (d.lazy != nullptr && err.failed()) check_lazy(*d.lazy);
  g_stat_rescored.store(rescored_total.load());
  g_stat_pairs.store(M * N);
  err.rethrow();
}

// --------------------------------------------------------------- reducers --

// Per query row, a bounded heap of the k best (score, index) seen so far. The
// heap's top is the worst kept entry; "worse" means a lower score, or the same
// score at a higher index, so ties go to the lower index.
class TopKReducer final : public Reducer {
  struct Deferred;

 public:
  TopKReducer(int64_t rows, int64_t k, const Kernels& K)
      : k_(k), K_(K), score_(static_cast<size_t>(rows * k)), index_(static_cast<size_t>(rows * k)),
        size_(static_cast<size_t>(rows), 0), thr_(static_cast<size_t>(rows), kNegInf) {}

  void consume(int, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) override {
    for (int64_t r = 0; r < mi; ++r) {
      const int64_t i = i0 + r;
      const float* row = tile + r * ldc;
      float* hs = score_.data() + i * k_;
      int64_t* hi = index_.data() + i * k_;
      int64_t& n = size_[i];
      float t = thr_[i];
      for (int64_t c = K_.scan_gt(row, 0, nj, t); c < nj; c = K_.scan_gt(row, c + 1, nj, t)) {
        push(hs, hi, n, row[c], j0 + c);
        if (n == k_) t = hs[0];
      }
      thr_[i] = t;
    }
  }

  // Screened: per query row, the tiles of a database block only collect
  // candidates (column, approx); rescoring waits for the block's end, when
  // the k-th largest lower bound L (approx - E over the block, or the k-th
  // exact score kept from earlier blocks) is as high as it gets. A pair of
  // the exact top-k has approx >= s - E >= (final k-th) - E >= L - E at every
  // moment, so it is collected, kept when the list is pruned, and rescored:
  // candidates are rescored best approx first until approx < max(L, k-th
  // exact kept) - E. The answer is built from exact scores only.
  void prepare_screened(int threads, int64_t rows) override {
    def_.resize(static_cast<size_t>(threads));
    for (auto& d : def_) {
      d.cand.assign(static_cast<size_t>(rows), {});
      d.low.assign(static_cast<size_t>(rows), {});
      d.cap.assign(static_cast<size_t>(rows), 0);
    }
  }

  void consume_screened(int tid, const ScreenTile& t) override {
    Deferred& D = def_[tid];
    std::vector<int32_t>& idx = D.idx;
    const double u = std::ldexp(1.0, -24), Dd = static_cast<double>(t.dim);
    const double gamma = Dd * u / (1.0 - Dd * u);
    const double fstat = t.statistical ? 4.0 / std::sqrt(Dd) : 1.0;
    for (int64_t r = 0; r < t.mi; ++r) {
      const int64_t i = t.i0 + r;
      const float* row = t.approx + r * t.ldc;
      const double E = t.margin[r];  // >= every pair's own bound Ec (pair_margin)
      auto& cand = D.cand[r];
      auto& low = D.low[r];  // min-heap of the k largest lower bounds of this block
      const float* hs = score_.data() + i * k_;
      const double exact_kth = size_[i] == k_ ? static_cast<double>(hs[0]) : -std::numeric_limits<double>::infinity();
      auto L = [&] { return std::max(exact_kth, static_cast<int64_t>(low.size()) == k_ ? low.front() : -std::numeric_limits<double>::infinity()); };
      float admit = float_at_most(L() - E);
      idx.resize(static_cast<size_t>(t.nj));
      const int64_t hits = t.sk->collect_ge(row, t.nj, admit, idx.data());
      for (int64_t h = 0; h < hits; ++h) {
        const int64_t c = idx[h];
        const float v = row[c];
        if (v < admit) continue;
        // The pair's own bound: its exact score lies in [v - Ec, v + Ec]; it
        // can be in the top-k only if v + Ec >= L. The list keeps v + Ec
        // (rounded up), which rescore_deferred compares with L directly.
        const double Ec = pair_margin(t.qstat[r], t.dstat[c], gamma, fstat);
        if (static_cast<double>(v) + Ec < L()) continue;
        cand.push_back({float_at_least(static_cast<double>(v) + Ec), t.j0 + c});
        const double lo = static_cast<double>(v) - Ec;
        if (static_cast<int64_t>(low.size()) < k_) {
          low.push_back(lo);
          std::push_heap(low.begin(), low.end(), std::greater<double>());
        } else if (lo > low.front()) {
          std::pop_heap(low.begin(), low.end(), std::greater<double>());
          low.back() = lo;
          std::push_heap(low.begin(), low.end(), std::greater<double>());
        } else {
          continue;
        }
        admit = std::max(admit, float_at_most(L() - E));
      }
      // Prune when the list has grown well past what the bound keeps.
      // (amortised: the next prune waits until the list has doubled again).
      int64_t& cap = D.cap[r];
      if (static_cast<int64_t>(cand.size()) > std::max<int64_t>(cap, 4 * k_ + 256)) {
        const float keep = float_at_most(L());
        cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const std::pair<float, int64_t>& x) { return x.first < keep; }),
                   cand.end());
        cap = 2 * static_cast<int64_t>(cand.size());
        // Still long (ties, duplicates): rescore now, which keeps memory
        // bounded and raises the bound with exact scores.
        if (static_cast<int64_t>(cand.size()) > 8 * k_ + 4096) rescore_deferred(D, r, t);
      }
    }
  }

  void finish_screened(int tid, const ScreenTile& t) override {
    Deferred& D = def_[tid];
    for (int64_t r = 0; r < t.mi; ++r) {
      rescore_deferred(D, r, t);
      D.low[r].clear();
    }
  }

  // Rescores row r's candidates best upper bound first, while that bound
  // >= max(L, k-th exact kept) (see consume_screened), and empties the list.
  void rescore_deferred(Deferred& D, int64_t r, const ScreenTile& t) {
    constexpr int kBatch = 8;
    const float* ptrs[kBatch];
    float exact[kBatch];
    const int64_t i = t.i0 + r;
    auto& cand = D.cand[r];
    auto& low = D.low[r];
    float* hs = score_.data() + i * k_;
    int64_t* hi = index_.data() + i * k_;
    int64_t& n = size_[i];
    const double lowk = static_cast<int64_t>(low.size()) == k_ ? low.front() : -std::numeric_limits<double>::infinity();
    auto bound = [&] { return float_at_most(std::max(lowk, n == k_ ? static_cast<double>(hs[0]) : -std::numeric_limits<double>::infinity())); };
    {
      const float keep = bound();  // only rises: what is below it now never gets rescored
      cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const std::pair<float, int64_t>& x) { return x.first < keep; }),
                 cand.end());
    }
    // Best bound first, a round at a time: the round's best candidates are
    // selected (linear time, no full sort), rescored, and the rest filtered
    // by the bound they raised. Which order the candidates are rescored in
    // does not change the answer (push keeps the k best under a total
    // order); only how many are rescored.
    const float* a = t.qrows + r * t.dim;
    auto row_of = [&](int64_t j) { return t.brows + (j - t.bj0) * t.dim; };
    auto better = [](const std::pair<float, int64_t>& x, const std::pair<float, int64_t>& y) { return x.first > y.first; };
    size_t from = 0;
    while (from < cand.size()) {
      const size_t round = std::min(cand.size() - from, static_cast<size_t>(std::max<int64_t>(k_, kBatch)));
      if (from + round < cand.size()) std::nth_element(cand.begin() + from, cand.begin() + from + round, cand.end(), better);
      std::sort(cand.begin() + from, cand.begin() + from + round, better);
      size_t x = from;
      const size_t end = from + round;
      while (x < end) {
        const float tf = bound();
        int m = 0;
        size_t y = x;
        for (; y < end && m < kBatch && cand[y].first >= tf; ++y, ++m) ptrs[m] = row_of(cand[y].second);
        if (m == 0) break;
        for (size_t z = y; z < std::min(end, y + kBatch); ++z) {
          const char* p = reinterpret_cast<const char*>(row_of(cand[z].second));
          for (int64_t off = 0; off < t.dim * 4; off += 64) __builtin_prefetch(p + off);
        }
        t.sk->exact_dots(a, ptrs, m, t.dim, exact);
        *t.rescored += m;
        for (int z = 0; z < m; ++z) push(hs, hi, n, exact[z], cand[x + z].second);
        x = y;
      }
      if (x < end) break;  // sorted: everything after is below the bound too
      // Keep only what can still reach the raised bound.
      const float keep = bound();
      const auto last = std::remove_if(cand.begin() + end, cand.end(), [&](const std::pair<float, int64_t>& c) { return c.first < keep; });
      cand.erase(last, cand.end());
      from = end;
    }
    cand.clear();
    D.cap[r] = 0;
  }

  void finish(TopKResult& out) {
    const int64_t rows = static_cast<int64_t>(size_.size());
    out.rows = rows;
    out.k = k_;
    out.indices.assign(static_cast<size_t>(rows * k_), -1);
    out.scores.assign(static_cast<size_t>(rows * k_), kNegInf);
    std::vector<int64_t> order(static_cast<size_t>(k_));
    for (int64_t i = 0; i < rows; ++i) {
      const float* hs = score_.data() + i * k_;
      const int64_t* hi = index_.data() + i * k_;
      const int64_t n = size_[i];
      std::iota(order.begin(), order.begin() + n, 0);
      std::sort(order.begin(), order.begin() + n, [&](int64_t a, int64_t b) {
        return hs[a] > hs[b] || (hs[a] == hs[b] && hi[a] < hi[b]);
      });
      for (int64_t c = 0; c < n; ++c) {
        out.indices[i * k_ + c] = hi[order[c]];
        out.scores[i * k_ + c] = hs[order[c]];
      }
    }
  }

 private:
  static bool worse(float sa, int64_t ia, float sb, int64_t ib) { return sa < sb || (sa == sb && ia > ib); }

  void push(float* hs, int64_t* hi, int64_t& n, float s, int64_t j) {
    int64_t pos;
    if (n < k_) {
      pos = n++;
      // sift up
      while (pos > 0) {
        int64_t parent = (pos - 1) / 2;
        if (!worse(s, j, hs[parent], hi[parent])) break;
        hs[pos] = hs[parent];
        hi[pos] = hi[parent];
        pos = parent;
      }
      hs[pos] = s;
      hi[pos] = j;
      return;
    }
    if (!worse(hs[0], hi[0], s, j)) return;  // not better than the worst kept
    pos = 0;
    for (;;) {
      int64_t child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && worse(hs[child + 1], hi[child + 1], hs[child], hi[child])) ++child;
      if (!worse(hs[child], hi[child], s, j)) break;
      hs[pos] = hs[child];
      hi[pos] = hi[child];
      pos = child;
    }
    hs[pos] = s;
    hi[pos] = j;
  }

  int64_t k_;
  const Kernels& K_;
  std::vector<float> score_;
  std::vector<int64_t> index_;
  std::vector<int64_t> size_;
  std::vector<float> thr_;
  struct Deferred {
    std::vector<std::vector<std::pair<float, int64_t>>> cand;
    std::vector<std::vector<double>> low;
    std::vector<int32_t> idx;
    std::vector<int64_t> cap;
  };
  std::vector<Deferred> def_;  // per thread, per row of its query block
};

// Per query row and class, the max score; the database is visited in label
// order (a stable permutation), so each class is one contiguous range.
class ClassMaxReducer final : public Reducer {
 public:
  ClassMaxReducer(float* out, int64_t rows, int64_t classes, const std::vector<int64_t>& starts, const Kernels& K)
      : out_(out), rows_(rows), classes_(classes), starts_(starts), K_(K) {}

  // Few query rows: one private copy of the output per thread (merged by
  // finish()), when they are small.
  bool can_split(int threads) override {
    if (rows_ * classes_ * threads > (int64_t(64) << 20)) return false;
    split_.assign(static_cast<size_t>(threads), std::vector<float>(static_cast<size_t>(rows_ * classes_), kNegInf));
    return true;
  }

  void finish() {
    for (auto& v : split_)
      for (int64_t x = 0; x < rows_ * classes_; ++x)
        if (v[x] > out_[x]) out_[x] = v[x];
    split_.clear();
  }

  float* out_for(int tid) { return split_.empty() ? out_ : split_[tid].data(); }

  // Per class range of the tile: a pair is rescored when approx + E can
  // reach the class's exact max so far, and approx >= (the range's largest
  // approx) - 2E (the range's best pair always is).
  void consume_screened(int tid, const ScreenTile& t) override {
    float* out = out_for(tid);
    const int64_t c0 = std::upper_bound(starts_.begin(), starts_.end(), t.j0) - starts_.begin() - 1;
    for (int64_t r = 0; r < t.mi; ++r) {
      const float* row = t.approx + r * t.ldc;
      float* o = out + (t.i0 + r) * classes_;
      const double E = t.margin[r];
      for (int64_t c = c0; c < classes_ && starts_[c] < t.j0 + t.nj; ++c) {
        const int64_t a = std::max(starts_[c], t.j0) - t.j0;
        const int64_t b = std::min(starts_[c + 1], t.j0 + t.nj) - t.j0;
        if (b <= a) continue;
        const double top = static_cast<double>(K_.max_range(row, a, b)) - 2.0 * E;
        rescore_row(
            t, r, a, b, [&] { return float_at_most(std::max(top, static_cast<double>(o[c]) - E)); },
            [&](int64_t, float s) {
              if (s > o[c]) o[c] = s;
            });
      }
    }
  }

  void consume(int tid, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) override {
    float* out = out_for(tid);
    // First class whose range reaches past j0.
    int64_t c0 = std::upper_bound(starts_.begin(), starts_.end(), j0) - starts_.begin() - 1;
    for (int64_t r = 0; r < mi; ++r) {
      const float* row = tile + r * ldc;
      float* o = out + (i0 + r) * classes_;
      for (int64_t c = c0; c < classes_ && starts_[c] < j0 + nj; ++c) {
        const int64_t a = std::max(starts_[c], j0) - j0;
        const int64_t b = std::min(starts_[c + 1], j0 + nj) - j0;
        if (b <= a) continue;
        const float m = K_.max_range(row, a, b);
        if (m > o[c]) o[c] = m;
      }
    }
  }

 private:
  float* out_;
  int64_t rows_;
  int64_t classes_;
  const std::vector<int64_t>& starts_;  // classes + 1 entries
  const Kernels& K_;
  std::vector<std::vector<float>> split_;
};

// Copies every tile into a dense rows x cols output (used where the output is
// itself rows x cols, e.g. query x class means).
class StoreReducer final : public Reducer {
 public:
  StoreReducer(float* out, int64_t cols) : out_(out), cols_(cols) {}
  bool can_split(int) override { return true; }  // tiles write disjoint columns
  void consume(int, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) override {
    for (int64_t r = 0; r < mi; ++r)
      std::memcpy(out_ + (i0 + r) * cols_ + j0, tile + r * ldc, static_cast<size_t>(nj) * sizeof(float));
  }

 private:
  float* out_;
  int64_t cols_;
};

struct Pair {
  int64_t i, j;
  float s;
};

class PairsReducer final : public Reducer {
 public:
  PairsReducer(int threads, double threshold, int64_t self_offset, int64_t max_pairs, const Kernels& K)
      : per_thread_(static_cast<size_t>(threads)), self_(self_offset), max_(max_pairs), K_(K) {
    below_ = pairs_threshold_below(threshold);
  }

  bool skip(int64_t i0, int64_t /*mi*/, int64_t j0, int64_t nj) const override {
    // Within one set only j > self_ + i matters; the tile holds none when its
    // last column is at or before the first query row's own position.
    return self_ >= 0 && j0 + nj - 1 <= self_ + i0;
  }

  void consume(int tid, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) override {
    auto& out = per_thread_[tid];
    for (int64_t r = 0; r < mi; ++r) {
      const int64_t i = i0 + r;
      const float* row = tile + r * ldc;
      int64_t from = 0;
      if (self_ >= 0) from = std::max<int64_t>(0, self_ + i + 1 - j0);
      for (int64_t c = K_.scan_gt(row, from, nj, below_); c < nj; c = K_.scan_gt(row, c + 1, nj, below_)) {
        if (count_.fetch_add(1, std::memory_order_relaxed) >= max_)
          fail("E_LIMIT", "more than ", max_, " pairs pass the threshold; raise the threshold or maxPairs");
        out.push_back(Pair{i, j0 + c, row[c]});
      }
    }
  }

  bool can_split(int) override { return true; }  // per-thread lists, one atomic count

  // A pair passes when its exact score s > below_; it is rescored when
  // approx > below_ - E, which every passing pair satisfies.
  void consume_screened(int tid, const ScreenTile& t) override {
    if (below_ == std::numeric_limits<float>::infinity()) return;
    auto& out = per_thread_[tid];
    for (int64_t r = 0; r < t.mi; ++r) {
      const int64_t i = t.i0 + r;
      int64_t from = 0;
      if (self_ >= 0) from = std::max<int64_t>(0, self_ + i + 1 - t.j0);
      if (from >= t.nj) continue;
      const float tf = float_at_most(static_cast<double>(below_) - t.margin[r]);
      rescore_row(
          t, r, from, t.nj, [&] { return tf; },
          [&](int64_t c, float s) {
            if (!(s > below_)) return;
            if (count_.fetch_add(1, std::memory_order_relaxed) >= max_)
              fail("E_LIMIT", "more than ", max_, " pairs pass the threshold; raise the threshold or maxPairs");
            out.push_back(Pair{i, t.j0 + c, s});
          });
    }
  }

  // For run_pairs_stream: a pair passes when its exact score s > below();
  // take() keeps one that does.
  float below() const { return below_; }
  int64_t self_offset() const { return self_; }
  void take(int tid, int64_t i, int64_t j, float s) {
    if (count_.fetch_add(1, std::memory_order_relaxed) >= max_)
      fail("E_LIMIT", "more than ", max_, " pairs pass the threshold; raise the threshold or maxPairs");
    per_thread_[tid].push_back(Pair{i, j, s});
  }

  void finish(PairsResult& res) {
    std::vector<Pair> all;
    size_t total = 0;
    for (auto& v : per_thread_) total += v.size();
    all.reserve(total);
    for (auto& v : per_thread_) {
      all.insert(all.end(), v.begin(), v.end());
      std::vector<Pair>().swap(v);
    }
    std::sort(all.begin(), all.end(), [](const Pair& a, const Pair& b) { return a.i < b.i || (a.i == b.i && a.j < b.j); });
    res.i.resize(total);
    res.j.resize(total);
    res.score.resize(total);
    for (size_t x = 0; x < total; ++x) {
      res.i[x] = all[x].i;
      res.j[x] = all[x].j;
      res.score[x] = all[x].s;
    }
  }

 private:
  std::vector<std::vector<Pair>> per_thread_;
  int64_t self_;
  int64_t max_;
  const Kernels& K_;
  float below_;
  std::atomic<int64_t> count_{0};
};

// ------------------------------------------ screened pairs, few queries --
//
// Few query rows against a large database: the call is bound by reading the
// database and by the product, so the database side is quantised in float
// straight from the rows as they are (quant_raw: no double sums, no float32
// copy, no normalisation pass), tile by tile as each thread claims it, and
// every pair gets its own rigorous bound. Let x be a database row, sigma the
// multiplier the float32 engine applies (1/||x|| computed as prepare() does,
// or the given scale, or 1), w_k = float(x_k sigma) its packed row, t q_x its
// quantisation (x = t q_x + e_x) and b = float(sigma_f t) the scale given to
// the 8-bit product (sigma_f: sigma, or 1/sqrt of the float sum of squares
// when sigma is not computed). With v = s q_v + e_v the packed query row,
//   |v.w - s b (q_v.q_x)| <= ||v|| ||w - b q_x|| + ||e_v|| ||b q_x||
//   ||w - b q_x|| <= ||w - sigma x|| + sigma ||e_x|| + |sigma t - b| ||q_x||
// and, as in run_screened, gamma_D ||v|| ||w|| for the float32 chain and
// 4u ||s q_v|| ||b q_x|| for the product's float epilogue. sigma is only
// known to lie in an interval from the float sum of squares (relative width
// about D 2^-23); every norm is an upper bound with the float sums' worst-case
// rounding (all their terms are non-negative) and an absolute allowance for
// subnormals. A pair is rescored when approx + E(pair) >= below (the float
// just under the threshold): every pair with exact score > below is. Only
// then is the row's exact sigma computed (row_norms, prepare()'s arithmetic),
// its float32 row formed (load_row) and the score computed with the float32
// engine's chain (exact_dots); the pair is kept when that score > below, so
// the answer is the float32 engine's, byte for byte. A row whose sum of
// squares is outside [2^-100, 2^100] (zero, tiny, huge, not finite) is
// quantised as run_screened does, from its exact float32 row.

// Query rows up to which pairs screen with run_pairs_stream rather than
// run_screened (pairs() in TypeScript calls with at most 4096 by default).
// Measured on AVX2, one thread, N = 20000, D = 512, CPU time: 1024 query
// rows 187 ms against 208 ms, 2048 293 ms against 389 ms; past this the
// query panels (M x D bytes, read for every database panel) outgrow the
// caches.
constexpr int64_t kStreamMaxQueryRows = 4096;

struct StreamRow {
  double eq = 0.0;    // sigma ||e_x|| (the quantisation error; scaled in the statistical mode)
  double er = 0.0;    // the rest of ||w - b q_x||, plus gamma_D ||w||
  double beta = 0.0;  // ||b q_x||
};

// Returns false, having done nothing, when a sample tile says most pairs
// would be rescored (the caller then runs the float32 engine); `force`
// (screen: 'on') skips that estimate and the per-tile fallback.
bool run_pairs_stream(const Operand& q, const Operand& d, PairsReducer& red, const Kernels& K, const ScreenKernels& SK,
                      int threads, const int32_t* cancel, bool statistical, bool force) {
  const int64_t M = q.rows, N = d.rows, D = q.dim;
  g_stat_screened.store(true);
  g_stat_split.store(false);
  if (M == 0 || N == 0) {
    if (d.lazy) check_lazy(*d.lazy);
    return true;
  }
  const int MR = SK.mr, NR = SK.nr, KMR = K.mr, KNR = K.nr;
  const int64_t D4 = round_up(D, 4);
  const double Dd = static_cast<double>(D);
  const double u = std::ldexp(1.0, -24);
  const double gammaD = Dd * u / (1.0 - Dd * u);
  const double tiny = Dd * std::ldexp(1.0, -149) + 1e-44;
  const double fstat = statistical ? 4.0 / std::sqrt(Dd) : 1.0;
  const float below = red.below();
  const int64_t self = red.self_offset();
  // Database rows per tile: 256, fewer for wide rows (a fallback tile's float32 panel is kept per thread).
  const int64_t step = std::lcm<int64_t>(NR, KNR);
  const int64_t nct_tuned = g_nct.load();
  int64_t NCT = round_up(nct_tuned > 0 ? nct_tuned : 256, step);
  NCT = std::max(step, std::min(NCT, (int64_t(4) << 20) / (D * static_cast<int64_t>(sizeof(float))) / step * step));
  const int64_t tiles = (N + NCT - 1) / NCT;
  const int64_t KC = g_kc.load() > 0 ? g_kc.load() : 512;

  // The query rows: 8-bit panels (q + 64), their float32 rows, their stats;
  // and the float32 engine's panels for tiles that fall back to it.
  const int64_t apanels = (M + MR - 1) / MR;
  auto apanel = aligned_array<uint8_t>(apanels * MR * D4);
  AlignedFloats arows = aligned_floats(apanels * MR * D);
  std::vector<QuantStats> astat(static_cast<size_t>(apanels * MR));
  std::vector<float> ascale(static_cast<size_t>(apanels * MR));
  {
    std::vector<uint8_t> scratch(static_cast<size_t>(D4));
    for (int64_t p = 0; p < apanels; ++p)
      pack_quant_panel(SK, q, p * MR, std::min<int64_t>(MR, M - p * MR), MR, 63, 64, D4, apanel.get() + p * D4 * MR,
                       arows.get() + p * MR * D, astat.data() + p * MR, scratch.data());
    for (int64_t r = 0; r < apanels * MR; ++r) ascale[r] = astat[r].scale;
  }
  const int64_t kpanels = (M + KMR - 1) / KMR;
  AlignedFloats ap;
  if (!force) {
    ap = aligned_floats(kpanels * KMR * D);
    for (int64_t p = 0; p < kpanels; ++p) pack_panel(q, p * KMR, std::min<int64_t>(KMR, M - p * KMR), KMR, ap.get() + p * D * KMR);
  }
  // E(r, c) = (fstat (A_r eq_c + B_r beta_c) + A_r er_c + 4u S_r beta_c)(1 + 1e-6) + tiny.
  auto bound = [&](int64_t r, double eq, double er, double beta) {
    const QuantStats& a = astat[static_cast<size_t>(r)];
    return (fstat * (a.nv * eq + a.ne * beta) + a.nv * er + 4.0 * u * a.nq * beta) * (1.0 + 1e-6) + tiny;
  };

  const bool lazy = d.lazy != nullptr;
  struct PerThread {
    std::unique_ptr<uint8_t[], AlignedDeleter> bpanel;
    AlignedFloats ct, bt, ct32;
    std::vector<float> bscale;
    std::vector<int32_t> corr, idx, slot;
    std::vector<StreamRow> rb;
    std::vector<double> sigma;  // per tile row: the exact multiplier, NaN until computed
    std::vector<RawQuant> rq;
    std::vector<float> v;
    std::vector<uint8_t> scratch;
    std::vector<std::pair<int32_t, int32_t>> cand;
    int64_t rescored = 0;
  };
  auto setup = [&](PerThread& P) {
    P.bpanel = aligned_array<uint8_t>(NCT * D4);
    P.ct = aligned_floats(apanels * MR * NCT);
    P.bscale.resize(static_cast<size_t>(NCT));
    P.corr.resize(static_cast<size_t>(NCT));
    P.idx.resize(static_cast<size_t>(NCT));
    P.slot.resize(static_cast<size_t>(NCT));
    P.rb.resize(static_cast<size_t>(NCT));
    P.sigma.resize(static_cast<size_t>(NCT));
    P.rq.resize(static_cast<size_t>(NR));
    P.v.resize(static_cast<size_t>(D));
    P.scratch.resize(static_cast<size_t>(D4));
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();

  // Quantises tile rows [j0, j0+nj) and runs the 8-bit product; false when
  // a row is not finite (LazyNorm).
  auto screen_tile = [&](PerThread& P, int64_t j0, int64_t nj, int64_t next_j0) {
    const int64_t bpanels = (nj + NR - 1) / NR;
    for (int64_t jr = 0; jr < bpanels; ++jr) {
      // The rows of the next panel (this tile's, or the first of the next
      // tile this thread will screen) come in from memory during this
      // panel's product, a slice per query panel.
      const int64_t pf0 = jr + 1 < bpanels ? j0 + (jr + 1) * NR : next_j0;
      const int64_t pfn = pf0 < 0 ? 0 : std::min<int64_t>(NR, (jr + 1 < bpanels ? j0 + nj : N) - pf0);
      const int64_t pf_lines = d.perm == nullptr ? (pfn * D * static_cast<int64_t>(sizeof(float)) + 63) / 64 : 0;
      const char* pf_base = pf_lines > 0 ? reinterpret_cast<const char*>(row_ptr(d, pf0)) : nullptr;
      const int64_t c0 = jr * NR;
      const int n = static_cast<int>(std::min<int64_t>(NR, nj - c0));
      const float* src[64];
      for (int r = 0; r < n; ++r) src[r] = row_ptr(d, j0 + c0 + r);
      int8_t* panel = reinterpret_cast<int8_t*>(P.bpanel.get() + jr * D4 * NR);
      SK.quant_raw(src, n, D, 63, panel, P.rq.data());
      for (int r = 0; r < NR; ++r) {
        const int64_t c = c0 + r;
        StreamRow& rb = P.rb[c];
        if (r >= n) {
          P.bscale[c] = 0.0f;
          P.corr[c] = 0;
          rb = StreamRow{};
          P.sigma[c] = 0.0;
          continue;
        }
        const RawQuant& x = P.rq[r];
        const int64_t phys = d.perm ? d.perm[j0 + c] : j0 + c;
        const bool has_scale = lazy || d.scale != nullptr;
        double sig = lazy ? nan : (d.scale ? d.scale[phys] : 1.0);
        const double ssf = x.ssx;
        if (ssf >= 0x1p-100 && ssf <= 0x1p100) {
          // Bounds on the true sum of squares from the float one (D + 16 non-negative terms at most per chain).
          const double g = 2.0 * (Dd + 16.0) * u;
          const double absf = Dd * std::ldexp(1.0, -149);
          const double nx_hi = std::sqrt((ssf + absf) * (1.0 + g)) * (1.0 + 1e-15);
          const double nx_lo = std::sqrt(std::max(0.0, (ssf - absf) * (1.0 - g))) * (1.0 - 1e-15);
          double sig_lo = sig, sig_hi = sig, sig_f = sig;
          if (lazy) {
            // prepare()'s double sum and 1/sqrt differ from the true 1/||x|| by far less than 1e-9 relative.
            sig_f = 1.0 / std::sqrt(ssf);
            sig_lo = (1.0 / nx_hi) * (1.0 - 1e-9);
            sig_hi = nx_lo > 0.0 ? (1.0 / nx_lo) * (1.0 + 1e-9) : std::numeric_limits<double>::infinity();
          }
          const double t = x.t;
          const float b = static_cast<float>(sig_f * t);
          if (b >= std::numeric_limits<float>::min() && std::isfinite(sig_hi)) {
            // Each difference was rounded once (relative u, or 2^-150 where subnormal).
            const double se_hi = std::sqrt((static_cast<double>(x.sse) + absf) * (1.0 + g)) * (1.0 + std::ldexp(1.0, -22)) +
                                 std::sqrt(Dd) * std::ldexp(1.0, -149);
            const double qn_hi = (nx_hi + se_hi) / t * (1.0 + 1e-15);  // ||q_x|| <= (||x|| + ||e_x||) / t
            const double dsig = std::max(sig_hi - sig_f, sig_f - sig_lo);
            const double diff = dsig * t + std::ldexp(1.0, -22) * b;  // |sigma t - b|
            const double sx = sig_hi * nx_hi;
            const double dw = sx * std::ldexp(1.0, -23) + std::sqrt(Dd) * std::ldexp(1.0, -149);  // ||w - sigma x||
            const double wn = sx * (1.0 + std::ldexp(1.0, -22)) + std::sqrt(Dd) * std::ldexp(1.0, -149);  // ||w||
            rb.eq = sig_hi * se_hi;
            rb.er = gammaD * wn + dw + diff * qn_hi;
            rb.beta = b * qn_hi;
            P.bscale[c] = b;
            P.corr[c] = 64 * x.sumq;
            P.sigma[c] = sig;
            continue;
          }
        }
        // The exact float32 row, quantised with double sums (as run_screened does).
        const float* xr = src[r];
        if (lazy && !row_inv_norm(xr, D, &sig)) return false;
        const float m = SK.load_row(xr, has_scale, sig, D, P.v.data());
        float scale = static_cast<float>(static_cast<double>(m) / 63);
        if (!(scale >= std::numeric_limits<float>::min())) scale = 0.0f;
        double nq2, ne2, nv2;
        int64_t sumq;
        SK.quantize(P.v.data(), D, scale, 63, 0, P.scratch.data(), &nq2, &ne2, &nv2, &sumq);
        for (int64_t k = D; k < D4; ++k) P.scratch[k] = 0;
        for (int64_t k4 = 0; k4 < D4 / 4; ++k4) std::memcpy(panel + k4 * NR * 4 + r * 4, P.scratch.data() + 4 * k4, 4);
        rb.eq = std::sqrt(ne2);
        rb.er = gammaD * std::sqrt(nv2);
        rb.beta = std::sqrt(nq2);
        P.bscale[c] = scale;
        P.corr[c] = static_cast<int32_t>(64 * sumq);
        P.sigma[c] = sig;
      }
      const int8_t* bp = panel;
      // (Lines per query panel, rounded up; no division per panel.)
      const int64_t pf_per = (pf_lines + apanels - 1) / apanels;
      for (int64_t ir = 0, l = 0; ir < apanels; ++ir) {
        for (const int64_t l1 = std::min(pf_lines, l + pf_per); l < l1; ++l) __builtin_prefetch(pf_base + l * 64, 0, 3);
        SK.micro(D4 / 4, apanel.get() + ir * D4 * MR, bp, ascale.data() + ir * MR, P.bscale.data() + c0,
                 P.corr.data() + c0, P.ct.get() + ir * MR * NCT + c0, NCT);
      }
    }
    return true;
  };

  // The pairs of tile rows [j0, j0+nj) that the bound cannot rule out, into P.cand (by query row).
  auto collect = [&](PerThread& P, int64_t j0, int64_t nj) {
    P.cand.clear();
    StreamRow mx;
    for (int64_t c = 0; c < nj; ++c) {
      mx.eq = std::max(mx.eq, P.rb[c].eq);
      mx.er = std::max(mx.er, P.rb[c].er);
      mx.beta = std::max(mx.beta, P.rb[c].beta);
    }
    for (int64_t r = 0; r < M; ++r) {
      int64_t from = 0;
      if (self >= 0) from = std::max<int64_t>(0, self + r + 1 - j0);
      if (from >= nj) continue;
      const float* row = P.ct.get() + r * NCT;
      const float admit = float_at_most(static_cast<double>(below) - bound(r, mx.eq, mx.er, mx.beta));
      const int64_t hits = SK.collect_ge(row + from, nj - from, admit, P.idx.data());
      for (int64_t h = 0; h < hits; ++h) {
        const int64_t c = from + P.idx[h];
        const StreamRow& rb = P.rb[c];
        if (static_cast<double>(row[c]) + bound(r, rb.eq, rb.er, rb.beta) >= static_cast<double>(below))
          P.cand.push_back({static_cast<int32_t>(r), static_cast<int32_t>(c)});
      }
    }
  };

  // Rescores P.cand exactly; false when a row is not finite.
  auto rescore = [&](PerThread& P, int tid, int64_t j0) {
    std::fill(P.slot.begin(), P.slot.end(), -1);
    int32_t rows = 0;  // distinct database rows among the candidates
    const float* need[64];
    int64_t needc[64];
    int nneed = 0;
    auto flush_sigma = [&]() {
      if (nneed == 0) return true;
      // Eight rows at a time (a row per lane), the last group padded with copies.
      const float* rows8[64];
      double sc[64];
      const int n8 = (nneed + 7) / 8 * 8;
      for (int z = 0; z < n8; ++z) rows8[z] = need[z < nneed ? z : 0];
      if (!SK.row_norms(rows8, n8, D, sc)) return false;
      for (int z = 0; z < nneed; ++z) P.sigma[needc[z]] = sc[z];
      nneed = 0;
      return true;
    };
    for (const auto& pc : P.cand) {
      const int32_t c = pc.second;
      if (P.slot[c] >= 0) continue;
      P.slot[c] = rows++;
      if (std::isnan(P.sigma[c])) {
        need[nneed] = row_ptr(d, j0 + c);
        needc[nneed++] = c;
        if (nneed == 64 && !flush_sigma()) return false;
      }
    }
    if (!flush_sigma()) return false;
    // Eight pairs at a time, whatever their rows, each database row scaled
    // as the float32 engine packs it (an unnormalised one is used as it is).
    const bool has_scale = lazy || d.scale != nullptr;
    constexpr int kBatch = 64;
    const float *pa[kBatch], *pb[kBatch];
    double sc[kBatch];
    float exact[kBatch];
    for (size_t x = 0; x < P.cand.size(); x += kBatch) {
      const int n = static_cast<int>(std::min<size_t>(kBatch, P.cand.size() - x));
      for (int z = 0; z < n; ++z) {
        const int32_t c = P.cand[x + z].second;
        pa[z] = arows.get() + P.cand[x + z].first * D;
        pb[z] = row_ptr(d, j0 + c);
        sc[z] = P.sigma[c];
      }
      SK.exact_dots_pairs(pa, pb, has_scale ? sc : nullptr, n, D, exact);
      for (int z = 0; z < n; ++z)
        if (exact[z] > below) red.take(tid, P.cand[x + z].first, j0 + P.cand[x + z].second, exact[z]);
    }
    P.rescored += static_cast<int64_t>(P.cand.size());
    return true;
  };

  // The float32 engine on one tile (run_engine_stream's arithmetic); false when a row is not finite.
  auto exact_tile = [&](PerThread& P, int tid, int64_t j0, int64_t nj) {
    if (!P.bt) {
      P.bt = aligned_floats(round_up(NCT, KNR) * D);
      P.ct32 = aligned_floats(kpanels * KMR * NCT);
    }
    const int64_t bpanels = (nj + KNR - 1) / KNR;
    for (int64_t p = 0; p < bpanels; ++p) {
      if (lazy) {
        if (!pack_panel_norm(d, j0 + p * KNR, std::min<int64_t>(KNR, nj - p * KNR), KNR, P.bt.get() + p * D * KNR)) return false;
      } else {
        pack_panel(d, j0 + p * KNR, std::min<int64_t>(KNR, nj - p * KNR), KNR, P.bt.get() + p * D * KNR);
      }
    }
    for (int64_t k0 = 0; k0 < D; k0 += KC) {
      const int64_t kc = std::min(KC, D - k0);
      for (int64_t jr = 0; jr < bpanels; ++jr)
        for (int64_t ir = 0; ir < kpanels; ++ir)
          K.micro(kc, ap.get() + ir * D * KMR + k0 * KMR, P.bt.get() + jr * D * KNR + k0 * KNR,
                  P.ct32.get() + ir * KMR * NCT + jr * KNR, NCT, k0 > 0);
    }
    red.consume(tid, P.ct32.get(), NCT, 0, M, j0, nj);
    return true;
  };

  // More candidates than this in a tile: the float32 product is cheaper than
  // rescoring them one by one: a rescored pair costs about ten pairs of the
  // float32 product (measured, 64 x 50000 x 512, one thread: screening
  // everything breaks even with the float32 engine at 5.7 % of pairs
  // rescored, 86 against 83 ms; 13 %: 160 against 79 ms; 2 %: 56 against
  // 66 ms). The sample decides for the whole call a little earlier.
  const auto limit = [&](int64_t nj) { return M * nj / 16; };

  // The estimate: the first tile with pairs to report, screened by this thread.
  if (!force && tiles >= 4) {
    PerThread P;
    setup(P);
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t j0 = tile * NCT, nj = std::min(NCT, N - j0);
      if (red.skip(0, M, j0, nj)) continue;
      if (!screen_tile(P, j0, nj, -1)) {
        check_lazy(*d.lazy);
        fail("E_INTERNAL", "a database row is not finite but the check found none");
      }
      collect(P, j0, nj);
      if (static_cast<int64_t>(P.cand.size()) > M * nj / 20) return false;
      break;
    }
  }

  const bool split = threads > 1 && M * N * D >= kSplitMinWork;
  const int T = split ? threads : 1;
  g_stat_split.store(split);
  std::atomic<int64_t> next{0};
  std::atomic<bool> bad{false};
  std::atomic<int64_t> rescored_total{0};
  FirstError err;
  run_threads(T, [&](int tid) {
    PerThread P;
    try {
      setup(P);
      // Each thread claims its next tile one ahead, to prefetch its first rows.
      int64_t ahead = next.fetch_add(1);
      for (int64_t tile; (tile = ahead) < tiles;) {
        ahead = next.fetch_add(1);
        if (err.failed() || bad.load(std::memory_order_relaxed)) break;
        if (cancelled(cancel)) fail("E_ABORTED", "the similarity call was aborted");
        const int64_t j0 = tile * NCT, nj = std::min(NCT, N - j0);
        if (red.skip(0, M, j0, nj)) continue;
        bool ok = screen_tile(P, j0, nj, ahead < tiles ? ahead * NCT : -1);
        if (ok) {
          collect(P, j0, nj);
          if (!force && static_cast<int64_t>(P.cand.size()) > limit(nj))
            ok = exact_tile(P, tid, j0, nj);
          else
            ok = rescore(P, tid, j0);
        }
        if (!ok) {
          bad.store(true);
          break;
        }
      }
    } catch (...) {
      err.capture();
    }
    rescored_total.fetch_add(P.rescored);
  });
  if (lazy && (bad.load() || err.failed())) {
    check_lazy(*d.lazy);
    if (bad.load()) fail("E_INTERNAL", "a database row is not finite but the check found none");
  }
  g_stat_rescored.store(rescored_total.load());
  g_stat_pairs.store(M * N);
  err.rethrow();
  return true;
}

struct Labelled {
  std::vector<int64_t> perm;    // database rows sorted by label (stable)
  std::vector<int64_t> starts;  // classes + 1 offsets into perm
  std::vector<int64_t> counts;
};

Labelled group_labels(const int32_t* labels, int64_t n, int64_t classes) {
  if (classes < 1) fail("E_RANGE", "numClasses must be >= 1, got ", classes);
  if (n > 0 && labels == nullptr) fail("E_SHAPE", "labels are missing");
  Labelled g;
  g.counts.assign(static_cast<size_t>(classes), 0);
  for (int64_t r = 0; r < n; ++r) {
    const int32_t l = labels[r];
    if (l < 0 || l >= classes)
      fail("E_RANGE", "labels[", r, "] = ", l, " is outside [0, ", classes, ")");
    ++g.counts[l];
  }
  g.starts.assign(static_cast<size_t>(classes + 1), 0);
  for (int64_t c = 0; c < classes; ++c) g.starts[c + 1] = g.starts[c] + g.counts[c];
  g.perm.resize(static_cast<size_t>(n));
  std::vector<int64_t> fill(g.starts.begin(), g.starts.end() - 1);
  for (int64_t r = 0; r < n; ++r) g.perm[fill[labels[r]]++] = r;
  return g;
}


// Mean of the cosines = dot with the mean of the unit database vectors: the
// per-class mean of the scaled database rows (double sums, in row order).
std::vector<float> mean_vectors(const MatrixView& db, const Labelled& g, const double* scale, int64_t num_classes,
                                int threads) {
  const int64_t D = db.dim;
  std::vector<float> means(static_cast<size_t>(num_classes * D), 0.0f);
  run_threads(static_cast<int>(std::min<int64_t>(threads, num_classes)), [&](int tid) {
    const int64_t T = std::min<int64_t>(threads, num_classes);
    std::vector<double> acc(static_cast<size_t>(D));
    for (int64_t c = tid; c < num_classes; c += T) {
      if (g.counts[c] == 0) continue;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t x = g.starts[c]; x < g.starts[c + 1]; ++x) {
        const int64_t r = g.perm[x];
        const double s = scale ? scale[r] : 1.0;
        const float* v = db.data + r * D;
        for (int64_t k = 0; k < D; ++k) acc[k] += s * v[k];
      }
      for (int64_t k = 0; k < D; ++k) means[c * D + k] = static_cast<float>(acc[k] / static_cast<double>(g.counts[c]));
    }
  });
  return means;
}
}  // namespace

namespace {
// The screening kernels to use for a call, or nullptr for the float32 engine.
// Screening reproduces the float32 engine's bytes only where its kernels are
// chains of fused multiply-adds (AVX2, AVX-512), so never for scalar.
const ScreenKernels* pick_screen(const SimilarityOptions& opt, const Kernels& K, bool auto_ok) {
  if (K.isa == Isa::Scalar) return nullptr;
  const ScreenKernels* sk = screen_kernels_for(K.isa);
  if (sk == nullptr) return nullptr;
  if (opt.precision == SimilarityOptions::Precision::Bf16) return sk;
  if (opt.screen == 0) return nullptr;
  if (opt.screen == 1) return sk;
  // Auto: where the 8-bit product beats the float32 one (AVX2; an AVX-512
  // float32 FMA matches the AVX2 8-bit rate).
  return auto_ok && K.isa == Isa::Avx2 ? sk : nullptr;
}

void run_any(const Operand& q, const Operand& d, Reducer& red, const Kernels& K, const ScreenKernels* sk,
             int threads, const SimilarityOptions& opt, bool db8 = false) {
  g_stat_rescored.store(0);
  g_stat_pairs.store(0);
  if (sk)
    run_screened(q, d, red, K, *sk, threads, opt.block_bytes, opt.cancel,
                 opt.precision == SimilarityOptions::Precision::Bf16, db8);
  else
    run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
}
}  // namespace

const ScreenKernels* screen_kernels_for(Isa isa) {
#ifdef GENAUG_HAVE_X86_KERNELS
  isa = clamp_isa(isa);
  if (isa == Isa::Avx2 || isa == Isa::Avx512) return &screen_kernels_avx2();
#else
  (void)isa;
#endif
  return nullptr;
}

EngineStats last_engine_stats() {
  EngineStats s;
  s.screened = g_stat_screened.load();
  s.split = g_stat_split.load();
  s.rescored = g_stat_rescored.load();
  s.pairs = g_stat_pairs.load();
  return s;
}

void set_engine_tuning(const EngineTuning& t) {
  g_mc.store(t.mc);
  g_nct.store(t.nct);
  g_kc.store(t.kc);
  g_order.store(t.order);
}

static void check_options(const SimilarityOptions& opt) {
  if (opt.block_bytes < (1 << 16)) fail("E_RANGE", "blockBytes must be at least 65536, got ", opt.block_bytes);
}

TopKResult topk(const MatrixView& query, const MatrixView& db, int64_t k, const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  check_options(opt);
  if (k < 1) fail("E_RANGE", "k must be >= 1, got ", k);
  const int threads = resolve_threads(opt.threads);
  const Kernels& K = kernels_for(opt.isa);
  Prepared pq = prepare(query, opt.normalize, opt.query_name, opt.query_row_offset, threads);
  // The engines normalise the database as they pack it (LazyNorm).
  const LazyNorm lazy{db, opt.db_name, opt.db_row_offset, threads};
  const bool lazy_db = opt.normalize;
  Prepared pd = lazy_db ? Prepared{} : prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  const int64_t keff = std::min(k, db.rows);
  TopKResult out;
  if (keff == 0) {
    out.rows = query.rows;
    out.k = 0;
    return out;
  }
  TopKReducer red(query.rows, keff, K);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{db.data, db.rows, db.dim, opt.normalize && !lazy_db ? pd.scale.data() : nullptr, nullptr,
            lazy_db ? &lazy : nullptr};
  // Every top-k screens with the faster 7-bit database side: the candidates
  // its wider margin adds are cheap now that rescoring selects instead of
  // sorting (measured on AVX2, 2 threads, 4000 x 50000 x 512, top-10: 2.15-2.5
  // s CPU against 2.4-2.6 s with the 8-bit database side, whose product is
  // a third slower; run_any's db8 still selects it, no caller does now).
  run_any(q, d, red, K, pick_screen(opt, K, keff <= 16), threads, opt);
  red.finish(out);
  return out;
}

ClassResult class_max(const MatrixView& query, const MatrixView& db, const int32_t* labels, int64_t num_classes,
                      const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  check_options(opt);
  Labelled g = group_labels(labels, db.rows, num_classes);
  const int threads = resolve_threads(opt.threads);
  const Kernels& K = kernels_for(opt.isa);
  Prepared pq = prepare(query, opt.normalize, opt.query_name, opt.query_row_offset, threads);
  // Auto never screens class-max: every class's running max needs its own
  // rescoring, which costs more than the 8-bit product saves (measured 0.8x).
  const ScreenKernels* sk = pick_screen(opt, K, false);
  // The engines normalise the database as they pack it (LazyNorm).
  const LazyNorm lazy{db, opt.db_name, opt.db_row_offset, threads};
  const bool lazy_db = opt.normalize;
  Prepared pd = lazy_db ? Prepared{} : prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  ClassResult out;
  out.rows = query.rows;
  out.classes = num_classes;
  out.counts = g.counts;
  out.values.assign(static_cast<size_t>(query.rows * num_classes), kNegInf);
  ClassMaxReducer red(out.values.data(), query.rows, num_classes, g.starts, K);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{db.data, db.rows, db.dim, opt.normalize && !lazy_db ? pd.scale.data() : nullptr, g.perm.data(),
            lazy_db ? &lazy : nullptr};
  run_any(q, d, red, K, sk, threads, opt);
  red.finish();
  for (int64_t c = 0; c < num_classes; ++c)
    if (g.counts[c] == 0)
      for (int64_t i = 0; i < query.rows; ++i) out.values[i * num_classes + c] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

ClassResult class_mean(const MatrixView& query, const MatrixView& db, const int32_t* labels, int64_t num_classes,
                       const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  check_options(opt);
  Labelled g = group_labels(labels, db.rows, num_classes);
  const int threads = resolve_threads(opt.threads);
  const Kernels& K = kernels_for(opt.isa);
  Prepared pq = prepare(query, opt.normalize, opt.query_name, opt.query_row_offset, threads);
  Prepared pd = prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  std::vector<float> means = mean_vectors(db, g, opt.normalize ? pd.scale.data() : nullptr, num_classes, threads);
  const int64_t D = db.dim;
  ClassResult out;
  out.rows = query.rows;
  out.classes = num_classes;
  out.counts = g.counts;
  out.values.assign(static_cast<size_t>(query.rows * num_classes), 0.0f);
  StoreReducer red(out.values.data(), num_classes);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{means.data(), num_classes, D, nullptr, nullptr};
  run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
  for (int64_t c = 0; c < num_classes; ++c)
    if (g.counts[c] == 0)
      for (int64_t i = 0; i < query.rows; ++i) out.values[i * num_classes + c] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

PairsResult pairs(const MatrixView& query, const MatrixView& db, double threshold, int64_t self_offset,
                  int64_t max_pairs, const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  check_options(opt);
  if (!std::isfinite(threshold)) fail("E_RANGE", "threshold must be a finite number");
  if (max_pairs < 0) fail("E_RANGE", "maxPairs must be >= 0, got ", max_pairs);
  if (self_offset >= 0 && self_offset + query.rows > db.rows)
    fail("E_RANGE", "selfOffset ", self_offset, " + ", query.rows, " query rows runs past the ", db.rows, " database rows");
  const int threads = resolve_threads(opt.threads);
  const Kernels& K = kernels_for(opt.isa);
  Prepared pq = prepare(query, opt.normalize, opt.query_name, opt.query_row_offset, threads);
  // Auto screens pairs: with up to kStreamMaxQueryRows query rows in
  // run_pairs_stream (the database quantised tile by tile straight from its
  // rows), which itself falls back to the float32 engine when a sample tile
  // says most pairs would be rescored; with more in run_screened's blocks.
  const ScreenKernels* sk = pick_screen(opt, K, true);
  // The engines normalise the database as they pack it (LazyNorm);
  // not within one set, where tiles before the query rows are skipped (their
  // rows would go unchecked).
  const LazyNorm lazy{db, opt.db_name, opt.db_row_offset, threads};
  const bool lazy_db = opt.normalize && self_offset < 0;
  Prepared pd = lazy_db ? Prepared{} : prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  PairsReducer red(threads, threshold, self_offset, max_pairs, K);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{db.data, db.rows, db.dim, opt.normalize && !lazy_db ? pd.scale.data() : nullptr, nullptr,
            lazy_db ? &lazy : nullptr};
  // (Only while a float32 copy of the query rows fits in a quarter of blockBytes: it keeps two and an 8-bit one.)
  if (sk != nullptr && query.rows <= kStreamMaxQueryRows &&
      query.rows * query.dim * static_cast<int64_t>(sizeof(float)) <= opt.block_bytes / 4) {
    g_stat_rescored.store(0);
    g_stat_pairs.store(0);
    if (!run_pairs_stream(q, d, red, K, *sk, threads, opt.cancel, opt.precision == SimilarityOptions::Precision::Bf16,
                          opt.screen == 1))
      run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
  } else {
    run_any(q, d, red, K, sk, threads, opt);
  }
  PairsResult out;
  red.finish(out);
  return out;
}

std::vector<float> row_dot(const MatrixView& query, const MatrixView& db, const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  if (query.rows != db.rows)
    fail("E_SHAPE", "rowDot needs the same number of rows on both sides, got ", query.rows, " and ", db.rows);
  const int threads = resolve_threads(opt.threads);
  Prepared pq = prepare(query, opt.normalize, opt.query_name, opt.query_row_offset, threads);
  Prepared pd = prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  const int64_t M = query.rows, D = query.dim;
  std::vector<float> out(static_cast<size_t>(M));
  const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, M / 4096 + 1)));
  run_threads(T, [&](int tid) {
    for (int64_t i = M * tid / T; i < M * (tid + 1) / T; ++i) {
      const float* a = query.data + i * D;
      const float* b = db.data + i * D;
      double s = 0.0;
      for (int64_t k = 0; k < D; ++k) s += static_cast<double>(a[k]) * b[k];
      if (opt.normalize) s *= pq.scale[i] * pd.scale[i];
      out[i] = static_cast<float>(s);
    }
  });
  return out;
}

float pairs_threshold_below(double threshold) {
  // A float score s passes when (double)s >= threshold. The smallest float
  // that passes is f = threshold rounded up to a float; s passes iff
  // s > the float just below f.
  const double fmax = std::numeric_limits<float>::max();
  if (threshold > fmax) return std::numeric_limits<float>::infinity();  // nothing passes
  if (threshold <= -fmax) return kNegInf;                               // everything passes
  float f = static_cast<float>(threshold);
  if (static_cast<double>(f) < threshold) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return std::nextafter(f, kNegInf);
}

void check_similarity_inputs(const MatrixView& query, const MatrixView& db, const SimilarityOptions& opt) {
  check_pair(query, db, "query", "database");
  check_options(opt);
}

RowScales row_scales(const MatrixView& m, bool normalize, const std::string& name, int64_t row_offset, int threads) {
  Prepared p = prepare(m, normalize, name, row_offset, threads);
  RowScales r;
  r.scale = std::move(p.scale);
  r.max_norm = p.max_norm;
  return r;
}

void check_dot_range(const RowScales& a, const RowScales& b, bool normalize) {
  Prepared pa, pb;
  pa.max_norm = a.max_norm;
  pb.max_norm = b.max_norm;
  check_dot_range(pa, pb, normalize);
}

std::vector<int64_t> label_counts(const int32_t* labels, int64_t n, int64_t classes) {
  return group_labels(labels, n, classes).counts;
}

std::vector<float> class_mean_vectors(const MatrixView& db, const int32_t* labels, int64_t classes, const double* scale,
                                      int threads) {
  Labelled g = group_labels(labels, db.rows, classes);
  return mean_vectors(db, g, scale, classes, threads);
}

}  // namespace genaug
