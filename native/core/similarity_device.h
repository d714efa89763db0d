// The device path of the similarity engine: the same operations as
// similarity.h (top-k, class mean/max, pairs, row dot), run block by block on
// an accelerator through a SimilarityBackend. The host side here -- input
// checks, row scaling, block sizing from the device's free memory, streaming
// the query set and the database through device memory block by block,
// sorting out results -- is shared by every backend:
//   - the CUDA backend (native/cuda/similarity.cu), built when nvcc is found;
//   - the emulation backend (emulated_backend()), which runs each kernel's
//     per-thread work (device_tiling.h) on the CPU in the same blocks, so the
//     blocking and index math are tested on machines without a GPU.
// precision 'bf16' (top-k, pairs): a bf16 tensor-core screen with a rigorous per-pair
// error bound, then exact float32 rescoring (the same chain as the exact
// kernels) of every pair the bound cannot rule out: the exact path's results.
// Results follow the CPU path's contract: indices best first, ties to the
// lower index, NaN for an empty class, pairs sorted by (i, j). Scores are
// float32 dot products of the same scaled rows summed in another order, so
// they agree with the CPU path to about 1e-6, not byte for byte (rowDot, a
// double sum in the CPU's order, is the same bytes).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "similarity.h"

namespace genaug {

class SimilarityBackend {
 public:
  virtual ~SimilarityBackend() = default;
  virtual std::string name() const = 0;
  // Device memory free now, in bytes.
  virtual int64_t free_bytes() = 0;
  // Query block (m rows) and database block (n rows) of scaled float32 rows, d wide.
  virtual void load_query(const float* rows, int64_t m, int64_t d) = 0;
  virtual void load_db(const float* rows, int64_t n, int64_t d) = 0;
  // S = Q B^T for the loaded blocks, column-major (tiling::score_at, ld = m).
  virtual void scores(int64_t m, int64_t n, int64_t d) = 0;
  virtual void read_scores(float* s, int64_t m, int64_t n) = 0;
  // Running top-k of the query block: reset, merge one database block whose
  // first row is j0, read back (m x k, best first).
  virtual void topk_reset(int64_t m, int64_t k) = 0;
  virtual void topk_block(int64_t m, int64_t n, int64_t j0, int64_t k) = 0;
  virtual void topk_read(int64_t m, int64_t k, float* s, int64_t* j) = 0;
  // Running class max (m x classes, -inf start); labels of the block's rows.
  virtual void classmax_reset(int64_t m, int64_t classes) = 0;
  virtual void classmax_block(int64_t m, int64_t n, const int32_t* labels, int64_t classes) = 0;
  virtual void classmax_read(int64_t m, int64_t classes, float* out) = 0;
  // Pairs of the block: counts per query row, then the pairs written at the
  // given per-row offsets (exclusive prefix sums of the counts, total entries).
  virtual void pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t* counts) = 0;
  virtual void pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below,
                           const int64_t* offsets, int64_t total, int64_t* oi, int64_t* oj, float* os) = 0;
  // score[i] of rowDot for m rows (scales may be null: no normalisation).
  virtual void row_dot(const float* a, const float* b, const double* sa, const double* sb, int64_t m, int64_t d,
                       float* out) = 0;

  // The bf16 screen of precision 'bf16' (device_tiling.h derives its bound).
  // False where the device has no bf16 tensor cores (before sm_80): top-k
  // then runs the exact kernels (same results).
  virtual bool has_bf16_screen() = 0;
  // The loaded blocks' rows in bf16 (device_tiling.h bf16_round) and each
  // row's three terms of the bound (screen_query_terms / screen_db_terms), in
  // addition to the float32 rows of load_query / load_db (which rescore).
  virtual void load_query_bf16(const uint16_t* rows, const double* terms, int64_t m, int64_t d) = 0;
  virtual void load_db_bf16(const uint16_t* rows, const double* terms, int64_t n, int64_t d) = 0;
  // P = Q~ B~^T with float32 accumulation into the score buffer (column-major, as scores()).
  virtual void screen_scores(int64_t m, int64_t n, int64_t d) = 0;
  // Merges one database block (first row j0) into the running top-k through
  // the screen: lower bounds, threshold, exact rescoring of every column the
  // bound cannot rule out, merge (topk_reset / topk_read as the exact path).
  // `slack` scales the bound (tiling::kScreenSlack; tests cut it).
  virtual void screen_topk_block(int64_t m, int64_t n, int64_t j0, int64_t k, int64_t d, double slack) = 0;
  // Columns rescored per query row since topk_reset.
  virtual void screen_rescored_read(int64_t m, int64_t* counts) = 0;
  // pairs_count / pairs_write through the screen (tiling::screen_pairs_scan);
  // pairs_count also returns the columns it rescored, summed over the block.
  virtual int64_t screen_pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                                     double slack, int64_t* counts) = 0;
  virtual void screen_pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                                  double slack, const int64_t* offsets, int64_t total, int64_t* oi, int64_t* oj,
                                  float* os) = 0;
};

// The CPU emulation of the CUDA kernels; `free_bytes` is the device memory it
// pretends to have (small values force many blocks).
std::unique_ptr<SimilarityBackend> emulated_backend(int64_t free_bytes);

// The block sizes a call uses (for tests and benchmarks): query rows and
// database rows per block, from opt.device_bytes or the backend's free memory.
struct DevicePlanInfo {
  int64_t query_rows = 0, db_rows = 0, budget = 0;
  // precision 'bf16' top-k and pairs: whether the bf16 screen ran, and the
  // pairs it rescored exactly (out of query rows x database rows).
  bool screened = false;
  int64_t rescored = 0;
};
DevicePlanInfo last_device_plan();

// For tests only: scales the bf16 screen's error bound (default
// tiling::kScreenSlack, 1 + 1e-6). A test cuts it to show that the answer is
// exact because of the bound: with a tenth of it, adversarial rows go wrong.
void set_device_screen_slack(double slack);

TopKResult device_topk(SimilarityBackend& be, const MatrixView& query, const MatrixView& db, int64_t k,
                       const SimilarityOptions& opt);
ClassResult device_class_mean(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                              const int32_t* labels, int64_t num_classes, const SimilarityOptions& opt);
ClassResult device_class_max(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                             const int32_t* labels, int64_t num_classes, const SimilarityOptions& opt);
PairsResult device_pairs(SimilarityBackend& be, const MatrixView& query, const MatrixView& db, double threshold,
                         int64_t self_offset, int64_t max_pairs, const SimilarityOptions& opt);
std::vector<float> device_row_dot(SimilarityBackend& be, const MatrixView& query, const MatrixView& db,
                                  const SimilarityOptions& opt);

}  // namespace genaug
