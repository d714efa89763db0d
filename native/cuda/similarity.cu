// CUDA kernels mirroring native/core/similarity: a tiled dot-product block
// (C = A * B^T) that the engine can use as a tile producer. The CPU path is
// the reference; these are checked against it where a GPU exists.
#include <cuda_runtime.h>

#include <string>

#include "cuda_api.h"
#include "error.h"

namespace genaug {

namespace {
constexpr int TILE = 32;

__global__ void dot_block_kernel(const float* __restrict__ a, int64_t m, const float* __restrict__ b, int64_t n,
                                 int64_t d, float* __restrict__ c) {
  __shared__ float as[TILE][TILE + 1];
  __shared__ float bs[TILE][TILE + 1];
  const int64_t row = static_cast<int64_t>(blockIdx.y) * TILE + threadIdx.y;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * TILE + threadIdx.x;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += TILE) {
    const int64_t ka = k0 + threadIdx.x;
    as[threadIdx.y][threadIdx.x] = (row < m && ka < d) ? a[row * d + ka] : 0.0f;
    const int64_t brow = static_cast<int64_t>(blockIdx.x) * TILE + threadIdx.y;
    bs[threadIdx.y][threadIdx.x] = (brow < n && ka < d) ? b[brow * d + ka] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; ++k) acc = fmaf(as[threadIdx.y][k], bs[threadIdx.x][k], acc);
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

void check(cudaError_t st, const char* what) {
  if (st != cudaSuccess) fail("E_CUDA_UNAVAILABLE", what, ": ", cudaGetErrorString(st));
}

struct DeviceBuffer {
  float* p = nullptr;
  explicit DeviceBuffer(size_t n) { check(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc"); }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
};
}  // namespace

bool cuda_built() { return true; }

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(st);
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

void cuda_dot_block(const float* a, int64_t m, const float* b, int64_t n, int64_t d, float* c) {
  std::string why;
  if (cuda_device_count(&why) <= 0) fail("E_CUDA_UNAVAILABLE", why);
  if (m == 0 || n == 0) return;
  DeviceBuffer da(static_cast<size_t>(m * d)), db(static_cast<size_t>(n * d)), dc(static_cast<size_t>(m * n));
  check(cudaMemcpy(da.p, a, sizeof(float) * m * d, cudaMemcpyHostToDevice), "copy A");
  check(cudaMemcpy(db.p, b, sizeof(float) * n * d, cudaMemcpyHostToDevice), "copy B");
  dim3 block(TILE, TILE);
  dim3 grid(static_cast<unsigned>((n + TILE - 1) / TILE), static_cast<unsigned>((m + TILE - 1) / TILE));
  dot_block_kernel<<<grid, block>>>(da.p, m, db.p, n, d, dc.p);
  check(cudaGetLastError(), "launch");
  check(cudaMemcpy(c, dc.p, sizeof(float) * m * n, cudaMemcpyDeviceToHost), "copy C");
}

}  // namespace genaug
