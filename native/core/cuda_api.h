// What the core knows about CUDA. With GENAUG_HAVE_CUDA the functions come
// from native/cuda/*.cu; without it (cuda_none.cc) they report that CUDA was
// not built, and every kernel entry point throws E_CUDA_UNAVAILABLE saying so.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace genaug {

class SimilarityBackend;
class BnBackend;
class ClisBackend;
class CompositeBackend;

bool cuda_built();
// Number of usable CUDA devices; 0 with the reason in *why when none (no
// CUDA build, no device, or the driver's error).
int cuda_device_count(std::string* why);

// Device 0 as the runtime reports it.
struct CudaDeviceInfo {
  std::string name;
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  int compute_major = 0, compute_minor = 0;
  int runtime_version = 0;  // e.g. 13000 for 13.0 (the runtime genaug was built with)
  int driver_version = 0;   // the newest CUDA version the installed driver supports
};
// False with the reason in *why when there is no usable device.
bool cuda_device_info(CudaDeviceInfo& out, std::string* why);

// The kernels this build has ("similarity.topk", ...); empty without CUDA.
std::vector<std::string> cuda_kernels();

// The similarity engine's CUDA backend on device 0 (similarity_device.h runs
// the calls). Throws E_CUDA_UNAVAILABLE naming why when there is none.
std::unique_ptr<SimilarityBackend> cuda_similarity_backend();

// The BatchNorm statistics' CUDA backend on device 0 (bnstats_device.h runs
// the calls). Throws E_CUDA_UNAVAILABLE naming why when there is none.
std::unique_ptr<BnBackend> cuda_bn_backend();

// CLIS-L's CUDA backend on device 0 (layout_device.h runs the calls).
std::unique_ptr<ClisBackend> cuda_clis_backend();

// The copy-paste compositor's CUDA backend on device 0 (composite_device.h runs the calls).
std::unique_ptr<CompositeBackend> cuda_composite_backend();

}  // namespace genaug
