// The CUDA backend of CLIS-L's device path (native/core/layout_device.h): one
// GPU thread per (layout pair, real example), each running
// clis::example_at -- the call the CPU emulation runs for that output.
#include <cuda_runtime.h>

#include <string>

#include "cuda_api.h"
#include "cuda_util.cuh"
#include "error.h"
#include "layout_device.h"

namespace genaug {

namespace {

using cudautil::Buffer;
using cudautil::check;

__global__ void clis_examples_kernel(clis::PoolView pv, const clis::Job* jobs, int64_t njobs, int64_t total,
                                     clis::Params o, double* score, double* w, uint8_t* flags) {
  const int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x < total) clis::example_at(pv, jobs, njobs, x, o, score, w, flags);
}

class CudaClis final : public ClisBackend {
 public:
  CudaClis() { check(cudaSetDevice(0), "cudaSetDevice"); }
  std::string name() const override { return "CUDA device 0"; }
  int64_t free_bytes() override {
    size_t fr = 0, total = 0;
    check(cudaMemGetInfo(&fr, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(fr);
  }
  void load_pool(const LayoutPool& p, const float* sim, int64_t Q) override {
    const size_t E = static_cast<size_t>(p.examples);
    pv_.start = start_.upload(p.start, static_cast<size_t>(p.predicates + 1));
    pv_.subject = subject_.upload(p.subject, E);
    pv_.object = object_.upload(p.object, E);
    pv_.subject_box = sbox_.upload(p.subject_box, 4 * E);
    pv_.object_box = obox_.upload(p.object_box, 4 * E);
    pv_.sim = sim_.upload(sim, static_cast<size_t>(Q * p.names));
    pv_.P = p.names;
  }
  void examples(const clis::Job* jobs, int64_t njobs, int64_t total, const clis::Params& o, double* score, double* w,
                uint8_t* flags) override {
    const clis::Job* dj = jobs_.upload(jobs, static_cast<size_t>(njobs));
    auto* ds = static_cast<double*>(score_.get(static_cast<size_t>(total) * sizeof(double)));
    auto* dw = static_cast<double*>(w_.get(static_cast<size_t>(total) * sizeof(double)));
    auto* df = static_cast<uint8_t*>(flags_.get(static_cast<size_t>(total)));
    constexpr int kThreads = 128;
    clis_examples_kernel<<<static_cast<unsigned>((total + kThreads - 1) / kThreads), kThreads>>>(pv_, dj, njobs, total, o, ds, dw, df);
    check(cudaGetLastError(), "CLIS-L examples kernel");
    check(cudaMemcpy(score, ds, static_cast<size_t>(total) * sizeof(double), cudaMemcpyDeviceToHost), "copy from device");
    check(cudaMemcpy(w, dw, static_cast<size_t>(total) * sizeof(double), cudaMemcpyDeviceToHost), "copy from device");
    check(cudaMemcpy(flags, df, static_cast<size_t>(total), cudaMemcpyDeviceToHost), "copy from device");
  }

 private:
  clis::PoolView pv_{};
  Buffer start_, subject_, object_, sbox_, obox_, sim_, jobs_, score_, w_, flags_;
};

}  // namespace

std::unique_ptr<ClisBackend> cuda_clis_backend() {
  std::string why;
  if (cuda_device_count(&why) <= 0) fail("E_CUDA_UNAVAILABLE", why);
  return std::make_unique<CudaClis>();
}

}  // namespace genaug
