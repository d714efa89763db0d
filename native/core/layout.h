// CLIS-L, the layout score of Auto Cherry-Picker (spec ALGORITHMS.md §1.3):
// every relation (subject, predicate, object) of a layout is compared with
// the real examples of that predicate whose subject and object names are
// similar enough, on relative size, position (IoU and centre distance) and
// direction; the scene score is the confidence-weighted mean over its
// relations. Plain C++17, parallel over layouts, deterministic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace genaug {

// Boxes are xywh, top-left origin, 4 floats each.
struct LayoutPool {
  int64_t predicates = 0;       // R
  int64_t names = 0;            // P: the pool's name vocabulary
  const int32_t* start = nullptr;  // R + 1 offsets: examples of predicate r are [start[r], start[r+1])
  const int32_t* subject = nullptr;  // pool name id per example
  const int32_t* object = nullptr;
  const float* subject_box = nullptr;  // 4 per example
  const float* object_box = nullptr;
  const uint8_t* symmetric = nullptr;  // per predicate: 1 = may mirror horizontally (no left/right in the string)
  int64_t examples = 0;
};

struct LayoutBatch {
  int64_t layouts = 0;             // L
  int64_t names = 0;               // Q: the layouts' name vocabulary
  const int32_t* object_start = nullptr;  // L + 1 offsets into the objects
  const int32_t* object_name = nullptr;   // layout name id per object
  const float* object_box = nullptr;      // 4 per object; a box that is not finite or has w <= 0 or h <= 0 counts as missing
  int64_t objects = 0;
  const int32_t* relation_start = nullptr;  // L + 1 offsets into the relation pairs
  const int32_t* relation_predicate = nullptr;  // pool predicate id, or -1 when the pool has no such predicate
  const int32_t* relation_subject = nullptr;    // object index within its layout (0-based), or -1 when missing
  const int32_t* relation_object = nullptr;
  int64_t relations = 0;
};

struct LayoutOptions {
  double tau = 0.6;           // name-similarity floor for candidate examples
  double penalty_t = 0.03;    // P(s) threshold
  double high_sim = 0.8;      // "both similarities high" for the rank and the confidence
  int64_t rank_divisor = 50;  // pair score = sorted[min(floor(n_hi / rank_divisor), n - 1)] (descending, n candidates)
  double low_weight = 1e-4;   // confidence weight of examples that are not both-high
  bool faithful = false;      // released code: dist = IoU term only
  bool balance = false;       // use_balance weights of the dist terms
  bool symmetry = true;       // use_symmetry: mirrored example direction for predicates without left/right
  int threads = 0;
};

enum LayoutStatus : int32_t {
  kLayoutOk = 0,
  kLayoutNoRelations = 1,   // no relation pairs: score 0, confidence 0
  kLayoutUnknownPredicate = 2,  // a predicate the pool does not have ("eval fail")
  kLayoutMissingBox = 3,    // a subject or object without a usable box ("pred fail")
  kLayoutNoCandidates = 4,  // no example passes the name-similarity floor ("eval fail")
};

struct LayoutScores {
  std::vector<double> score;       // per layout
  std::vector<double> confidence;  // per layout: min over its pairs' confidence (0 on failure)
  std::vector<int32_t> status;     // LayoutStatus
  std::vector<int32_t> failed_pair;  // index (within the layout) of the pair that failed, -1 otherwise
  std::vector<double> pair_score;  // per relation pair (NaN for pairs not evaluated)
  std::vector<double> pair_confidence;
};

// The arrays of a call as the caller holds them: pointer and element count
// each (the binding's typed arrays, the fuzz target's bytes).
template <typename T>
struct LayoutArray {
  const T* data = nullptr;
  std::size_t size = 0;
};

struct LayoutArrays {
  LayoutArray<int32_t> pool_start, pool_subject, pool_object;
  LayoutArray<float> pool_subject_box, pool_object_box;
  LayoutArray<uint8_t> pool_symmetric;
  int64_t pool_names = 0;
  LayoutArray<int32_t> object_start, object_name;
  LayoutArray<float> object_box;
  LayoutArray<int32_t> relation_start, relation_predicate, relation_subject, relation_object;
  int64_t layout_names = 0;
  LayoutArray<float> sim;  // layout_names x pool_names
};

// Checks the lengths of the arrays against each other (E_SHAPE / E_RANGE /
// E_LIMIT naming the arrays) and points `batch` and `pool` at them, ready
// for clis_layout (which checks every value).
void layout_views(const LayoutArrays& a, LayoutBatch& batch, LayoutPool& pool);

// Checks every index and box of the pool and the batch (E_RANGE / E_SHAPE /
// E_NONFINITE naming the array and the index), then scores all layouts.
// `sim` is Q x P row-major: similarity of layout name q to pool name p.
LayoutScores clis_layout(const LayoutBatch& batch, const LayoutPool& pool, const float* sim, const LayoutOptions& opt,
                         const int32_t* cancel = nullptr);

// Shared with the device path (layout_device.cc): the checks clis_layout
// runs first, and whether a box is usable (finite, w > 0, h > 0).
void layout_check_inputs(const LayoutBatch& batch, const LayoutPool& pool, const float* sim, const LayoutOptions& opt);
bool layout_box_ok(const float* b);

// The pieces, exposed for the unit tests.
double layout_ratio_sim(double a, double b);
double layout_penalty(double s, double t);
double layout_warp(double x);
double layout_iou(const float* a, const float* b);

}  // namespace genaug
