// The device path of CLIS-L: the score of every (layout pair, real example)
// on an accelerator, one example per thread (layout_tiling.h: the arithmetic
// the CPU path runs), and the rest on the host as clis_layout does it (the
// candidates in example order, the rank, the confidence sums), so the scores
// are the CPU path's bytes. Layouts are processed in groups whose example
// scores fit the device memory. Backends: CUDA (native/cuda/layout.cu) and
// the CPU emulation (tests, no GPU needed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "layout.h"
#include "layout_tiling.h"

namespace genaug {

class ClisBackend {
 public:
  virtual ~ClisBackend() = default;
  virtual std::string name() const = 0;
  virtual int64_t free_bytes() = 0;
  // The pool and the name similarities (Q x P), once per call.
  virtual void load_pool(const LayoutPool& pool, const float* sim, int64_t Q) = 0;
  // Outputs [0, total) of the jobs (clis::example_at each).
  virtual void examples(const clis::Job* jobs, int64_t njobs, int64_t total, const clis::Params& o, double* score,
                        double* w, uint8_t* flags) = 0;
};

std::unique_ptr<ClisBackend> emulated_clis_backend(int64_t free_bytes);

// clis_layout on a backend; device_bytes > 0 caps the device memory for
// example scores (0: 3/4 of the free memory). Groups of the last call: last_clis_groups().
LayoutScores device_clis_layout(ClisBackend& be, const LayoutBatch& batch, const LayoutPool& pool, const float* sim,
                                const LayoutOptions& opt, const int32_t* cancel = nullptr, int64_t device_bytes = 0);
int64_t last_clis_groups();

}  // namespace genaug
