// The CUDA backend of the compositor's device path (native/core/composite_device.h):
// the window, blur and rectangle kernels run one element of a paste per
// thread, the pixel kernel one scene pixel per thread, each thread running the
// composite_tiling.h call the CPU emulation runs for that element.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "composite_device.h"
#include "cuda_api.h"
#include "cuda_util.cuh"
#include "error.h"

namespace genaug {

namespace {

using cudautil::Buffer;
using cudautil::check;

constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kBlocksX = 1024;  // grid-stride: at most this many blocks per paste / scene

__global__ void stats_clear_kernel(ctile::Stat* st, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    st[i] = ctile::Stat{0ull, ctile::kNoExtent, -1, ctile::kNoExtent, -1};
}

// stage 0: window, 1: horizontal blur, 2: rectangle. Paste p0 + blockIdx.y.
__global__ void paste_kernel(ctile::Arenas A, int64_t p0, int stage, ctile::Params prm) {
  const ctile::Paste& p = A.pastes[p0 + blockIdx.y];
  if (!p.active) return;
  const int64_t n = stage == 2 ? (p.xb - p.xa) * (p.yb - p.ya) : (p.ej1 - p.ej0) * (p.ei1 - p.ei0);
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (stage == 0) ctile::window_px(A, p, e);
    else if (stage == 1) ctile::hblur_px(A, p, e, prm);
    else ctile::rect_px(A, p, e, prm);
  }
}

// Scene s0 + blockIdx.y, one pixel per thread.
__global__ void pixel_kernel(ctile::Arenas A, int64_t s0, ctile::Params prm) {
  const ctile::Scene& s = A.scenes[s0 + blockIdx.y];
  const int64_t n = s.h * s.w;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    ctile::pixel(A, s, e % s.w, e / s.w, prm);
}

__global__ void visible_kernel(ctile::Arenas A, int64_t i, int64_t slot, int64_t x, int64_t y, int64_t w, int64_t h,
                               uint8_t* out) {
  const ctile::Scene& s = A.scenes[i];
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < w * h;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = ctile::visible(A, s, slot, x + e % w, y + e / w);
}

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(kBlocksX, (n + ctile::kThreads - 1) / ctile::kThreads)));
}

class CudaComposite final : public CompositeBackend {
 public:
  CudaComposite() { check(cudaSetDevice(0), "cudaSetDevice"); }
  std::string name() const override { return "CUDA device 0"; }
  int64_t free_bytes() override {
    size_t fr = 0, total = 0;
    check(cudaMemGetInfo(&fr, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(fr);
  }

  void run(const CompositeDeviceBatch& b, ctile::Stat* stats) override {
    const bool g = b.prm.blend == ctile::kBlend_Gaussian;
    auto* image = static_cast<uint8_t*>(image_.get(static_cast<size_t>(b.image_bytes)));
    auto* crop = static_cast<uint8_t*>(crop_.get(static_cast<size_t>(b.crop_bytes)));
    auto* masks = static_cast<uint8_t*>(masks_.get(static_cast<size_t>(b.mask_bytes)));
    for (size_t i = 0; i < b.scenes.size(); ++i) {
      const ctile::Scene& s = b.scenes[i];
      const int64_t hw = s.h * s.w;
      if (hw <= 0) continue;
      check(cudaMemcpy(image + s.image, b.image_src[i], static_cast<size_t>(hw * 3), cudaMemcpyHostToDevice), "copy to device");
      if (s.masks >= 0)
        for (int64_t r = 0; r < s.R; ++r)
          check(cudaMemcpy(masks + s.masks + r * hw, b.mask_src[i][static_cast<size_t>(r)], static_cast<size_t>(hw),
                           cudaMemcpyHostToDevice), "copy to device");
    }
    for (size_t k = 0; k < b.pastes.size(); ++k) {
      const ctile::Paste& p = b.pastes[k];
      if (p.active)
        check(cudaMemcpy(crop + p.crop, b.crop_src[k], static_cast<size_t>(p.w * p.h * 4), cudaMemcpyHostToDevice),
              "copy to device");
    }
    A_.crop = crop;
    A_.masks = masks;
    A_.boxes = boxes_.upload(b.boxes.data(), b.boxes.size());
    A_.pastes = pastes_.upload(b.pastes.data(), b.pastes.size());
    A_.scenes = scenes_.upload(b.scenes.data(), b.scenes.size());
    A_.kern = kern_.upload(b.kern.data(), b.kern.size());
    A_.image = image;
    A_.win_rgba = static_cast<uint8_t*>(win_rgba_.get(static_cast<size_t>(b.win_elems * 4)));
    A_.win_blur = g ? static_cast<float*>(win_blur_.get(static_cast<size_t>(b.win_elems) * sizeof(float))) : nullptr;
    A_.rect_mask = static_cast<uint8_t*>(rect_mask_.get(static_cast<size_t>(b.rect_elems)));
    A_.rect_weight = g ? static_cast<uint8_t*>(rect_weight_.get(static_cast<size_t>(b.rect_elems))) : nullptr;
    A_.owner = static_cast<int32_t*>(owner_.get(static_cast<size_t>(b.owner_elems) * sizeof(int32_t)));
    A_.stats = static_cast<ctile::Stat*>(stats_.get(static_cast<size_t>(b.stat_elems) * sizeof(ctile::Stat)));
    out_ = static_cast<uint8_t*>(out_buf_.get(static_cast<size_t>(b.max_hw)));
    if (b.stat_elems > 0) {
      stats_clear_kernel<<<blocks_for(b.stat_elems), ctile::kThreads>>>(A_.stats, b.stat_elems);
      check(cudaGetLastError(), "compositor statistics kernel");
    }
    // The largest window / rectangle / scene sets the grid's width (grid-stride beyond).
    int64_t max_win = 0, max_rect = 0, max_hw = 0;
    for (const ctile::Paste& p : b.pastes)
      if (p.active) {
        max_win = std::max(max_win, (p.ej1 - p.ej0) * (p.ei1 - p.ei0));
        max_rect = std::max(max_rect, (p.xb - p.xa) * (p.yb - p.ya));
      }
    for (const ctile::Scene& s : b.scenes) max_hw = std::max(max_hw, s.h * s.w);
    const int64_t np = static_cast<int64_t>(b.pastes.size()), ns = static_cast<int64_t>(b.scenes.size());
    for (int stage = 0; stage < 3; ++stage) {
      if (stage == 1 && !g) continue;
      const unsigned bx = blocks_for(stage == 2 ? max_rect : max_win);
      for (int64_t p0 = 0; p0 < np; p0 += kMaxGridY) {
        const unsigned by = static_cast<unsigned>(std::min(kMaxGridY, np - p0));
        paste_kernel<<<dim3(bx, by), ctile::kThreads>>>(A_, p0, stage, b.prm);
        check(cudaGetLastError(), "compositor paste kernel");
      }
    }
    for (int64_t s0 = 0; s0 < ns; s0 += kMaxGridY) {
      const unsigned by = static_cast<unsigned>(std::min(kMaxGridY, ns - s0));
      pixel_kernel<<<dim3(blocks_for(max_hw), by), ctile::kThreads>>>(A_, s0, b.prm);
      check(cudaGetLastError(), "compositor pixel kernel");
    }
    if (b.stat_elems > 0)
      check(cudaMemcpy(stats, A_.stats, static_cast<size_t>(b.stat_elems) * sizeof(ctile::Stat), cudaMemcpyDeviceToHost),
            "copy from device");
    else
      check(cudaDeviceSynchronize(), "compositor kernels");
  }

  void read_image(const CompositeDeviceBatch& b, int64_t i, uint8_t* dst) override {
    const ctile::Scene& s = b.scenes[static_cast<size_t>(i)];
    const int64_t hw = s.h * s.w;
    if (hw > 0) check(cudaMemcpy(dst, A_.image + s.image, static_cast<size_t>(hw * 3), cudaMemcpyDeviceToHost), "copy from device");
  }

  void read_mask(const CompositeDeviceBatch& b, int64_t i, int64_t slot, int64_t x, int64_t y, int64_t w, int64_t h,
                 uint8_t* dst) override {
    const int64_t n = w * h;
    if (n <= 0) return;
    visible_kernel<<<blocks_for(n), ctile::kThreads>>>(A_, i, slot, x, y, w, h, out_);
    check(cudaGetLastError(), "compositor mask kernel");
    check(cudaMemcpy(dst, out_, static_cast<size_t>(n), cudaMemcpyDeviceToHost), "copy from device");
  }

 private:
  ctile::Arenas A_{};
  uint8_t* out_ = nullptr;
  Buffer image_, crop_, masks_, boxes_, pastes_, scenes_, kern_, win_rgba_, win_blur_, rect_mask_, rect_weight_, owner_,
      stats_, out_buf_;
};

}  // namespace

std::unique_ptr<CompositeBackend> cuda_composite_backend() {
  std::string why;
  if (cuda_device_count(&why) <= 0) fail("E_CUDA_UNAVAILABLE", why);
  return std::make_unique<CudaComposite>();
}

}  // namespace genaug
