// The device path of the BatchNorm statistics: the per-(sample, channel,
// block) moments on an accelerator (one block per thread, bnstats_tiling.h:
// the CPU kernels' arithmetic), Chan-merged on the host in the CPU path's
// order, so the statistics are the CPU path's bytes. Samples are streamed
// through device memory in chunks sized from its free memory. Backends: CUDA
// (native/cuda/bnstats.cu) and the CPU emulation (tests, no GPU needed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "bnstats.h"
#include "bnstats_tiling.h"

namespace genaug {

class BnBackend {
 public:
  virtual ~BnBackend() = default;
  virtual std::string name() const = 0;
  virtual int64_t free_bytes() = 0;
  // Raw moments of every block of ns samples (ns x C x S values, float32 or
  // float16 bits, in the layout), in bntiling::block_index order.
  // `fused`: squares accumulated with one rounding (bntiling::sq_add32).
  virtual void blocks(const float* f32, const uint16_t* f16, int64_t ns, int64_t C, int64_t S, bool nchw, bool fused,
                      bntiling::Raw* out) = 0;
};

std::unique_ptr<BnBackend> emulated_bn_backend(int64_t free_bytes);

// bn_stats on a backend, the bytes of bn_stats(in, opt) on this CPU (the
// blocks fuse the squares' multiply-add where opt.isa's CPU kernels do:
// AVX2 and AVX-512, not scalar); device_bytes > 0 caps the device memory a call uses
// (0: 3/4 of the free memory). Samples per chunk of the last call: last_bn_chunk().
BnStats device_bn_stats(BnBackend& be, const BnInput& in, const BnOptions& opt, int64_t device_bytes = 0);
int64_t last_bn_chunk();

}  // namespace genaug
