#include "similarity.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "error.h"
#include "kernels.h"
#include "parallel.h"

namespace genaug {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------- buffers --

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;

AlignedFloats aligned_floats(int64_t n) {
  size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedFloats(static_cast<float*>(p));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

std::atomic<int64_t> g_mc{0}, g_nct{0}, g_kc{0}, g_order{0};

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
    for (int64_t r = r0; r < r1; ++r) {
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

struct Operand {
  const float* data;
  int64_t rows;
  int64_t dim;
  const double* scale;  // per physical row, or nullptr
  const int64_t* perm;  // logical row -> physical row, or nullptr
};

class Reducer {
 public:
  virtual ~Reducer() = default;
  // A finished tile: query rows [i0, i0+mi), database (logical) rows
  // [j0, j0+nj); score(i0+r, j0+c) = tile[r*ldc + c].
  virtual void consume(int tid, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) = 0;
  virtual bool skip(int64_t /*i0*/, int64_t /*mi*/, int64_t /*j0*/, int64_t /*nj*/) const { return false; }
};

// Packs rows [r0, r0+rows) of `op` into a panel laid out [k][width]; rows past
// the end are zero so the micro-kernel always runs full tiles.
void pack_panel(const Operand& op, int64_t r0, int64_t rows, int width, float* out) {
  const int64_t D = op.dim;
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

bool cancelled(const int32_t* flag) { return flag != nullptr && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0; }

void run_engine(const Operand& q, const Operand& d, Reducer& red, const Kernels& K, int threads,
                int64_t block_bytes, const int32_t* cancel) {
  const int64_t M = q.rows, N = d.rows, D = q.dim;
  if (M == 0 || N == 0) return;
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
  const int T = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n_qblocks)));

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
          for (int64_t blk; (blk = next[db].fetch_add(1)) < n_qblocks;) {
            if (err.failed()) break;
            if (cancelled(cancel)) fail("E_ABORTED", "the similarity call was aborted");
            const int64_t i0 = blk * MC;
            const int64_t mi = std::min(MC, M - i0);
            const int64_t apanels = (mi + MR - 1) / MR;
            for (int64_t p = 0; p < apanels; ++p)
              pack_panel(q, i0 + p * MR, std::min<int64_t>(MR, mi - p * MR), MR, ap + p * D * MR);
            for (int64_t jt = 0; jt < nb; jt += NCT) {
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

// --------------------------------------------------------------- reducers --

// Per query row, a bounded heap of the k best (score, index) seen so far. The
// heap's top is the worst kept entry; "worse" means a lower score, or the same
// score at a higher index, so ties go to the lower index.
class TopKReducer final : public Reducer {
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
};

// Per query row and class, the max score; the database is visited in label
// order (a stable permutation), so each class is one contiguous range.
class ClassMaxReducer final : public Reducer {
 public:
  ClassMaxReducer(float* out, int64_t classes, const std::vector<int64_t>& starts, const Kernels& K)
      : out_(out), classes_(classes), starts_(starts), K_(K) {}

  void consume(int, const float* tile, int64_t ldc, int64_t i0, int64_t mi, int64_t j0, int64_t nj) override {
    // First class whose range reaches past j0.
    int64_t c0 = std::upper_bound(starts_.begin(), starts_.end(), j0) - starts_.begin() - 1;
    for (int64_t r = 0; r < mi; ++r) {
      const float* row = tile + r * ldc;
      float* o = out_ + (i0 + r) * classes_;
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
  int64_t classes_;
  const std::vector<int64_t>& starts_;  // classes + 1 entries
  const Kernels& K_;
};

// Copies every tile into a dense rows x cols output (used where the output is
// itself rows x cols, e.g. query x class means).
class StoreReducer final : public Reducer {
 public:
  StoreReducer(float* out, int64_t cols) : out_(out), cols_(cols) {}
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
    // A float score s passes when (double)s >= threshold. The smallest float
    // that passes is f = threshold rounded up to a float; s passes iff
    // s > the float just below f.
    const double fmax = std::numeric_limits<float>::max();
    if (threshold > fmax) {
      below_ = std::numeric_limits<float>::infinity();  // nothing passes
    } else if (threshold <= -fmax) {
      below_ = kNegInf;  // everything passes
    } else {
      float f = static_cast<float>(threshold);
      if (static_cast<double>(f) < threshold) f = std::nextafter(f, std::numeric_limits<float>::infinity());
      below_ = std::nextafter(f, kNegInf);
    }
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

}  // namespace

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
  Prepared pd = prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
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
  Operand d{db.data, db.rows, db.dim, opt.normalize ? pd.scale.data() : nullptr, nullptr};
  run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
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
  Prepared pd = prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  ClassResult out;
  out.rows = query.rows;
  out.classes = num_classes;
  out.counts = g.counts;
  out.values.assign(static_cast<size_t>(query.rows * num_classes), kNegInf);
  ClassMaxReducer red(out.values.data(), num_classes, g.starts, K);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{db.data, db.rows, db.dim, opt.normalize ? pd.scale.data() : nullptr, g.perm.data()};
  run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
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
  // Mean of the cosines = dot with the mean of the unit database vectors.
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
        const double s = opt.normalize ? pd.scale[r] : 1.0;
        const float* v = db.data + r * D;
        for (int64_t k = 0; k < D; ++k) acc[k] += s * v[k];
      }
      for (int64_t k = 0; k < D; ++k) means[c * D + k] = static_cast<float>(acc[k] / static_cast<double>(g.counts[c]));
    }
  });
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
  Prepared pd = prepare(db, opt.normalize, opt.db_name, opt.db_row_offset, threads);
  check_dot_range(pq, pd, opt.normalize);
  PairsReducer red(threads, threshold, self_offset, max_pairs, K);
  Operand q{query.data, query.rows, query.dim, opt.normalize ? pq.scale.data() : nullptr, nullptr};
  Operand d{db.data, db.rows, db.dim, opt.normalize ? pd.scale.data() : nullptr, nullptr};
  run_engine(q, d, red, K, threads, opt.block_bytes, opt.cancel);
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

}  // namespace genaug
