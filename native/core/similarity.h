// The similarity engine: exact cosine (or dot-product) comparisons between a
// query set (M x D) and a database (N x D) of float32 row-major embeddings,
// reduced on the fly (top-k, per-class max/mean, thresholded pairs) so the
// M x N matrix never exists. A packed, register-blocked matrix product fills
// one cache-sized tile at a time and hands it to the reduction; memory is
// bounded by `block_bytes` (the packed database block) plus a few hundred KiB
// per thread, whatever M and N are.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cpu.h"

namespace genaug {

struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t dim = 0;
};

struct SimilarityOptions {
  // L2-normalise every row first (cosine). A zero row normalises to zeros,
  // so its cosine with everything is 0.
  bool normalize = true;
  int threads = 0;                  // 0: every hardware thread
  Isa isa = Isa::Avx512;            // clamped to what the CPU has
  int64_t block_bytes = 64ll << 20;  // packed database block
  // The 8-bit screening pass (see similarity.cc, "screened engine"): -1 lets
  // the engine choose (on where it is faster than the float32 product: AVX2),
  // 0 never, 1 always where the float32 kernels are fused multiply-add chains
  // (AVX2, AVX-512). Exact results are the same bytes either way.
  int screen = -1;
  // Precision::Exact: results identical to the float32 engine. Precision::Bf16
  // (opt-in): the screening margin is a statistical one (4 standard deviations
  // of the rounding error) instead of the worst-case bound, so a true
  // neighbour within that error of the k-th may be missed; every score
  // returned is still the exact float32 score of the row returned.
  enum class Precision { Exact = 0, Bf16 = 1 } precision = Precision::Exact;
  // When not null, a flag another thread may set to non-zero: the call then
  // stops at the next block and throws E_ABORTED.
  const int32_t* cancel = nullptr;
  // Used in messages only: what to call each side, and the row number of its
  // first row when it is a chunk of something larger.
  // The device path only (similarity_device.h): bytes of device memory a call
  // may use; 0 sizes its blocks from the device's free memory.
  int64_t device_bytes = 0;
  std::string query_name = "query";
  std::string db_name = "database";
  int64_t query_row_offset = 0;
  int64_t db_row_offset = 0;
};

// The widest embeddings accepted: memory per thread grows with the width.
constexpr int64_t kMaxDim = 65536;

struct TopKResult {
  int64_t rows = 0;
  int64_t k = 0;  // min(requested k, N)
  std::vector<int64_t> indices;  // rows x k, best first, ties to the lower index
  std::vector<float> scores;     // rows x k
};

struct ClassResult {
  int64_t rows = 0;
  int64_t classes = 0;
  std::vector<float> values;   // rows x classes; NaN for a class with no rows
  std::vector<int64_t> counts; // database rows per class
};

struct PairsResult {
  std::vector<int64_t> i;  // query row
  std::vector<int64_t> j;  // database row
  std::vector<float> score;
};

TopKResult topk(const MatrixView& query, const MatrixView& db, int64_t k, const SimilarityOptions& opt);

ClassResult class_mean(const MatrixView& query, const MatrixView& db, const int32_t* labels,
                       int64_t num_classes, const SimilarityOptions& opt);
ClassResult class_max(const MatrixView& query, const MatrixView& db, const int32_t* labels,
                      int64_t num_classes, const SimilarityOptions& opt);

// Every (i, j) with score >= threshold, sorted by i then j. When self_offset
// >= 0 the query is a slice of the database starting at row self_offset, and
// only pairs with j > self_offset + i are reported (each unordered pair once,
// no self-pairs). Throws E_LIMIT past max_pairs.
PairsResult pairs(const MatrixView& query, const MatrixView& db, double threshold, int64_t self_offset,
                  int64_t max_pairs, const SimilarityOptions& opt);

// score[i] = cos(query_i, db_i) (or the dot product without normalisation).
std::vector<float> row_dot(const MatrixView& query, const MatrixView& db, const SimilarityOptions& opt);

// Engine tunables (exposed for benchmarks): rows per query block, database
// rows per tile, depth per pass. 0 keeps the default.
struct EngineTuning {
  int64_t mc = 0, nct = 0, kc = 0;
  int64_t order = 0;  // 0: database panel outer (in L1), query panels inner; 1: the reverse
};
void set_engine_tuning(const EngineTuning& t);

// What the last call on this thread ran (for benchmarks and tests): whether
// it screened, the pairs rescored exactly, and the pairs screened.
struct EngineStats {
  bool screened = false;
  bool split = false;     // few query rows: the database was split over the threads
  int64_t rescored = 0;
  int64_t pairs = 0;
};
EngineStats last_engine_stats();

// Shared with the device path (similarity_device.cc), so both check inputs
// with the same messages and scale rows the same way.
struct RowScales {
  std::vector<double> scale;  // 1/||row|| (0 for a zero row) when normalising; empty otherwise
  double max_norm = 0.0;
};
void check_similarity_inputs(const MatrixView& query, const MatrixView& db, const SimilarityOptions& opt);
// Scans for NaN/Inf (E_NONFINITE naming the row and column) and returns the scales.
RowScales row_scales(const MatrixView& m, bool normalize, const std::string& name, int64_t row_offset, int threads);
void check_dot_range(const RowScales& a, const RowScales& b, bool normalize);
// Database rows per class (E_RANGE for a label outside [0, classes)).
std::vector<int64_t> label_counts(const int32_t* labels, int64_t n, int64_t classes);
// classes x dim: the mean of each class's scaled database rows (class_mean's operand).
std::vector<float> class_mean_vectors(const MatrixView& db, const int32_t* labels, int64_t classes, const double* scale,
                                      int threads);
// The float just below the smallest float that passes `threshold`: a score s
// passes when s > this.
float pairs_threshold_below(double threshold);

}  // namespace genaug
