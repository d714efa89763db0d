// The device path of the copy-paste compositor: the per-pixel work (resize,
// flip, blend, mask write, occlusion) on an accelerator, one pixel per thread
// (composite_tiling.h: the CPU path's arithmetic), and the per-instance
// bookkeeping (keep rule, boxes, areas, dropped reasons) on the host, replayed
// from per-(instance, occluding paste) statistics the pixel kernel gathers.
// The results are composite_batch's bytes (image, boxes, areas, drops, and
// the mask of every instance in the output). Scenes are processed in batches
// whose device memory fits 3/4 of the free device memory less 64 MiB
// (device_bytes overrides). Backends: CUDA (native/cuda/composite.cu) and the
// CPU emulation (tests, no GPU needed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "composite.h"
#include "composite_tiling.h"

namespace genaug {

// One batch of scenes as the backend sees it: the records, the arena sizes,
// and where each input comes from on the host.
struct CompositeDeviceBatch {
  std::vector<ctile::Scene> scenes;
  std::vector<ctile::Paste> pastes;
  std::vector<int64_t> boxes;  // 4 per real box of box-only scenes
  std::vector<float> kern;     // the gaussian kernel (2 rad + 1), or one 0
  ctile::Params prm;
  int64_t image_bytes = 0, crop_bytes = 0, mask_bytes = 0, win_elems = 0, rect_elems = 0, owner_elems = 0, stat_elems = 0;
  int64_t max_hw = 0;  // the largest scene (the mask read-back buffer)
  // Host inputs, copied to their arena offsets: per scene its image; per paste
  // its crop (nullptr when inactive); per scene its real masks.
  std::vector<const uint8_t*> image_src;
  std::vector<const uint8_t*> crop_src;
  std::vector<std::vector<const uint8_t*>> mask_src;
  int threads = 1;  // the emulation's threads over scenes
};

// Device bytes one batch needs (the budget's unit).
int64_t composite_device_bytes(const CompositeDeviceBatch& b);

class CompositeBackend {
 public:
  virtual ~CompositeBackend() = default;
  virtual std::string name() const = 0;
  virtual int64_t free_bytes() = 0;
  // Uploads the batch, runs the window, blur, rectangle and pixel kernels,
  // and copies the statistics (stat_elems) to `stats`.
  virtual void run(const CompositeDeviceBatch& b, ctile::Stat* stats) = 0;
  // After run: scene i's composed image (h x w x 3) into dst.
  virtual void read_image(const CompositeDeviceBatch& b, int64_t i, uint8_t* dst) = 0;
  // After run: the visible mask of `slot` in scene i over the region
  // [x, x + w) x [y, y + h), rows of w bytes, into dst.
  virtual void read_mask(const CompositeDeviceBatch& b, int64_t i, int64_t slot, int64_t x, int64_t y, int64_t w,
                         int64_t h, uint8_t* dst) = 0;
};

// The CPU emulation: runs each kernel's per-thread function of
// composite_tiling.h for every thread, over host memory; free_bytes is a
// pretend device memory size.
std::unique_ptr<CompositeBackend> emulated_composite_backend(int64_t free_bytes);

// composite_batch on a backend (checked as composite_batch). device_bytes > 0
// caps the device memory of a batch of scenes (0: from the free memory); a
// scene larger than the cap is a batch of its own. Batches of the last call:
// last_composite_batches().
std::vector<CompositeResult> device_composite_batch(CompositeBackend& be, const std::vector<CompositeScene>& scenes,
                                                    const CompositeOptions& o, int64_t device_bytes = 0);
int64_t last_composite_batches();

}  // namespace genaug
