// What the core knows about CUDA. With GENAUG_HAVE_CUDA the functions come
// from native/cuda/*.cu; without it they report that CUDA was not built.
#pragma once
#include <cstdint>
#include <string>

namespace genaug {

bool cuda_built();
// Number of usable CUDA devices; 0 with the reason in *why when none.
int cuda_device_count(std::string* why);

// C[i*n + j] = sum_k A[i*d + k] * B[j*d + k] on device 0 (row-major A: m x d,
// B: n x d). Throws E_CUDA_UNAVAILABLE without a device or a CUDA build.
void cuda_dot_block(const float* a, int64_t m, const float* b, int64_t n, int64_t d, float* c);

}  // namespace genaug
