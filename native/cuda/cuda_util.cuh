// What the CUDA backends share: the error check that turns a CUDA status into
// the project's error (E_NOMEM for device memory, else E_CUDA_UNAVAILABLE)
// and a growable device buffer reused across calls.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "error.h"

namespace genaug {
namespace cudautil {

inline void check(cudaError_t st, const char* what) {
  if (st == cudaSuccess) return;
  if (st == cudaErrorMemoryAllocation) fail("E_NOMEM", "CUDA: ", what, ": out of device memory (", cudaGetErrorString(st), ")");
  fail("E_CUDA_UNAVAILABLE", "CUDA driver error in ", what, ": ", cudaGetErrorString(st));
}

// Device memory that grows to the largest request and is freed with the buffer.
struct Buffer {
  void* p = nullptr;
  size_t cap = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (p) cudaFree(p);
  }
  void* get(size_t n) {
    if (n == 0) n = 1;
    if (n > cap) {
      if (p) cudaFree(p);
      p = nullptr;
      cap = 0;
      check(cudaMalloc(&p, n), "cudaMalloc");
      cap = n;
    }
    return p;
  }
  template <typename T>
  T* upload(const T* src, size_t count) {
    void* d = get(count * sizeof(T));
    if (count) check(cudaMemcpy(d, src, count * sizeof(T), cudaMemcpyHostToDevice), "copy to device");
    return static_cast<T*>(d);
  }
};

}  // namespace cudautil
}  // namespace genaug
