// The CUDA backend of the BatchNorm statistics' device path
// (native/core/bnstats_device.h): one GPU thread per (sample, channel, block),
// each running bntiling::block_at -- the call the CPU emulation runs for that
// block -- and the host merging the blocks in the CPU path's order.
#include <cuda_runtime.h>

#include <string>

#include "bnstats_device.h"
#include "cuda_api.h"
#include "cuda_util.cuh"
#include "error.h"

namespace genaug {

namespace {

using cudautil::Buffer;
using cudautil::check;

// One thread per block (bntiling::thread_block: the order and the block the CPU emulation computes).
__global__ void bn_blocks_kernel(const float* f32, const uint16_t* f16, int64_t ns, int64_t C, int64_t S, bool nchw,
                                 bool fused, int64_t nb, bntiling::Raw* out) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < ns * C * nb) bntiling::thread_block(bntiling::Src{f32, f16}, t, C, S, nb, nchw, fused, out);
}

class CudaBn final : public BnBackend {
 public:
  CudaBn() { check(cudaSetDevice(0), "cudaSetDevice"); }
  std::string name() const override { return "CUDA device 0"; }
  int64_t free_bytes() override {
    size_t fr = 0, total = 0;
    check(cudaMemGetInfo(&fr, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(fr);
  }
  void blocks(const float* f32, const uint16_t* f16, int64_t ns, int64_t C, int64_t S, bool nchw, bool fused,
              bntiling::Raw* out) override {
    const size_t values = static_cast<size_t>(ns * C * S);
    const size_t bytes = values * (f16 ? 2 : 4);
    void* x = in_.get(bytes);
    check(cudaMemcpy(x, f16 ? static_cast<const void*>(f16) : static_cast<const void*>(f32), bytes, cudaMemcpyHostToDevice),
          "copy to device");
    const int64_t nb = bntiling::blocks_per_channel(S, C, nchw);
    const int64_t n = ns * C * nb;
    auto* o = static_cast<bntiling::Raw*>(out_.get(static_cast<size_t>(n) * sizeof(bntiling::Raw)));
    constexpr int kThreads = 128;
    bn_blocks_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads>>>(
        f16 ? nullptr : static_cast<const float*>(x), f16 ? static_cast<const uint16_t*>(x) : nullptr, ns, C, S, nchw, fused, nb, o);
    check(cudaGetLastError(), "bn blocks kernel");
    check(cudaMemcpy(out, o, static_cast<size_t>(n) * sizeof(bntiling::Raw), cudaMemcpyDeviceToHost), "copy from device");
  }

 private:
  Buffer in_, out_;
};

}  // namespace

std::unique_ptr<BnBackend> cuda_bn_backend() {
  std::string why;
  if (cuda_device_count(&why) <= 0) fail("E_CUDA_UNAVAILABLE", why);
  return std::make_unique<CudaBn>();
}

}  // namespace genaug
