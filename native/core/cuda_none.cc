// CUDA entry points for a build without CUDA: they say so.
#include "cuda_api.h"
#include "error.h"
#include "bnstats_device.h"
#include "composite_device.h"
#include "layout_device.h"
#include "similarity_device.h"

#ifndef GENAUG_HAVE_CUDA
namespace genaug {
namespace {
constexpr const char* kNotBuilt =
    "genaug was built without CUDA (no CUDA compiler was found when it was built, or GENAUG_CUDA=OFF); "
    "rebuild with nvcc on PATH: GENAUG_CUDA=ON npm run build:native";
}
bool cuda_built() { return false; }
int cuda_device_count(std::string* why) {
  if (why) *why = kNotBuilt;
  return 0;
}
bool cuda_device_info(CudaDeviceInfo&, std::string* why) {
  if (why) *why = kNotBuilt;
  return false;
}
std::vector<std::string> cuda_kernels() { return {}; }
std::unique_ptr<SimilarityBackend> cuda_similarity_backend() { fail("E_CUDA_UNAVAILABLE", kNotBuilt); }
std::unique_ptr<BnBackend> cuda_bn_backend() { fail("E_CUDA_UNAVAILABLE", kNotBuilt); }
std::unique_ptr<ClisBackend> cuda_clis_backend() { fail("E_CUDA_UNAVAILABLE", kNotBuilt); }
std::unique_ptr<CompositeBackend> cuda_composite_backend() { fail("E_CUDA_UNAVAILABLE", kNotBuilt); }
}  // namespace genaug
#endif
