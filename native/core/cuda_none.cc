// CUDA entry points for a build without CUDA: they say so.
#include "cuda_api.h"
#include "error.h"

#ifndef GENAUG_HAVE_CUDA
namespace genaug {
bool cuda_built() { return false; }
int cuda_device_count(std::string* why) {
  if (why) *why = "genaug was built without CUDA (no CUDA compiler was found, or GENAUG_CUDA=OFF)";
  return 0;
}
void cuda_dot_block(const float*, int64_t, const float*, int64_t, int64_t, float*) {
  fail("E_CUDA_UNAVAILABLE", "genaug was built without CUDA; rebuild with nvcc on PATH (GENAUG_CUDA=ON npm run build:native)");
}
}  // namespace genaug
#endif
