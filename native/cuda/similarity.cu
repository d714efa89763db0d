// The CUDA backend of the similarity engine's device path
// (native/core/similarity_device.h). The host side (checks, scaling, block
// sizing from free device memory, streaming) is shared with the CPU
// emulation; each kernel thread here runs one call of a device_tiling.h
// function, the same call the emulation runs for that thread, so the
// emulation tests in native/tests check this file's index math.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "device_tiling.h"
#include "error.h"
#include "similarity_device.h"

namespace genaug {

namespace {

using tiling::kTile;

[[noreturn]] void cuda_fail(cudaError_t st, const char* what) {
  if (st == cudaErrorMemoryAllocation)
    fail("E_NOMEM", "CUDA: ", what, ": out of device memory (", cudaGetErrorString(st), ")");
  fail("E_CUDA_UNAVAILABLE", "CUDA driver error in ", what, ": ", cudaGetErrorString(st));
}
void check(cudaError_t st, const char* what) {
  if (st != cudaSuccess) cuda_fail(st, what);
}

// A grow-only device buffer.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (p_) cudaFree(p_);
  }
  T* get(int64_t n) {
    if (n < 1) n = 1;
    if (n > cap_) {
      if (p_) cudaFree(p_);
      p_ = nullptr;
      cap_ = 0;
      check(cudaMalloc(reinterpret_cast<void**>(&p_), static_cast<size_t>(n) * sizeof(T)), "cudaMalloc");
      cap_ = n;
    }
    return p_;
  }
  T* ptr() const { return p_; }
  void upload(const T* src, int64_t n) {
    check(cudaMemcpy(get(n), src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice), "copy to device");
  }
  void download(T* dst, int64_t n) const {
    if (n > 0) check(cudaMemcpy(dst, p_, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost), "copy from device");
  }

 private:
  T* p_ = nullptr;
  int64_t cap_ = 0;
};

unsigned blocks_for(int64_t threads, int per_block) { return static_cast<unsigned>((threads + per_block - 1) / per_block); }

// S (column-major, ld m) = Q B^T. Thread (x, y) of block (bx, by) owns query
// row bx*T + x and database row by*T + y; depth in kTile slices through
// shared memory, zero-padded past d (tiling::tile_dot is this sum).
__global__ void score_kernel(const float* __restrict__ q, int64_t m, const float* __restrict__ b, int64_t n, int64_t d,
                             float* __restrict__ s) {
  __shared__ float qs[kTile][kTile + 1];
  __shared__ float bs[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kTile + tx;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kTile + ty;
  const int64_t qrow = static_cast<int64_t>(blockIdx.x) * kTile + ty;
  const int64_t brow = static_cast<int64_t>(blockIdx.y) * kTile + ty;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += kTile) {
    const int64_t k = k0 + tx;
    qs[ty][tx] = (qrow < m && k < d) ? q[qrow * d + k] : 0.0f;
    bs[ty][tx] = (brow < n && k < d) ? b[brow * d + k] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTile; ++kk) acc = tiling::fma32(qs[tx][kk], bs[ty][kk], acc);
    __syncthreads();
  }
  if (r < m && c < n) s[tiling::score_at(r, c, m)] = acc;
}

// One thread per (row, part): consecutive threads, consecutive rows.
__global__ void topk_scan_kernel(const float* __restrict__ s, int64_t m, int64_t n, int64_t j0, int64_t k, int64_t parts,
                                 float* ps, int64_t* pj, int64_t* pf) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= m * parts) return;
  const int64_t r = t % m, p = t / m;
  int64_t c0, c1;
  tiling::part_range(n, parts, p, c0, c1);
  const int64_t o = (r * parts + p) * k;
  pf[r * parts + p] = tiling::topk_scan(s, m, r, c0, c1, j0, k, ps + o, pj + o);
}

__global__ void topk_merge_kernel(float* ts, int64_t* tj, int64_t* tf, const float* ps, const int64_t* pj,
                                  const int64_t* pf, int64_t m, int64_t k, int64_t parts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  int64_t filled = tf[r];
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t o = (r * parts + p) * k;
    tiling::topk_merge(ts + r * k, tj + r * k, k, filled, ps + o, pj + o, pf[r * parts + p]);
  }
  tf[r] = filled;
}

__global__ void fill_kernel(float* x, int64_t n, float v) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < n) x[t] = v;
}

__global__ void classmax_kernel(const float* __restrict__ s, int64_t m, int64_t n, const int32_t* __restrict__ labels,
                                int64_t classes, float* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < m) tiling::classmax_scan(s, m, r, n, labels, out + r * classes);
}

__global__ void pairs_kernel(const float* __restrict__ s, int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self,
                             float below, int64_t* counts, const int64_t* offsets, int64_t* oi, int64_t* oj, float* os) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  if (offsets == nullptr)
    counts[r] = tiling::pairs_scan(s, m, r, n, i0, j0, self, below, nullptr, nullptr, nullptr);
  else
    tiling::pairs_scan(s, m, r, n, i0, j0, self, below, oi + offsets[r], oj + offsets[r], os + offsets[r]);
}

__global__ void row_dot_kernel(const float* __restrict__ a, const float* __restrict__ b, const double* sa,
                               const double* sb, int64_t m, int64_t d, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < m) out[i] = tiling::row_dot_one(a + i * d, b + i * d, d, sa, sb, i);
}

// ------------------------------------------------------------ bf16 screen --
// (device_tiling.h derives the bound and holds each thread's work.)

// P (column-major, ld m) = Q~ B~^T: bf16 rows, float32 accumulation on the
// tensor cores. Block (bx, by) owns query rows bx*kScreenM.. and database rows
// by*kScreenN..; 4 warps, each a 32 x 32 corner as 2 x 2 wmma 16x16x16
// fragments. Depth goes in kScreenK slices staged through shared memory, zero
// padded past m, n and d (zeros add exact zeros); the result goes through
// shared memory so any m, n can be stored (wmma needs ld a multiple of 4).
constexpr int kScreenThreads = 128;
__global__ void __launch_bounds__(kScreenThreads)
    screen_mma_kernel(const uint16_t* __restrict__ q, int64_t m, const uint16_t* __restrict__ b, int64_t n, int64_t d,
                      float* __restrict__ s) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int M = tiling::kScreenM, N = tiling::kScreenN, K = tiling::kScreenK, F = tiling::kMmaK;
  constexpr int LDA = K + 8, LDC = M + 4;
  static_assert(M == N && M == 64 && K % F == 0, "the staging loop fills both operands' tiles with one index");
  __shared__ __align__(32) __nv_bfloat16 as[M * LDA];
  __shared__ __align__(32) __nv_bfloat16 bs[N * LDA];
  __shared__ __align__(32) float cs[N * LDC];  // column-major: cs[c * LDC + r]
  const int warp = threadIdx.x / 32;
  const int wr = (warp & 1) * 32, wc = (warp >> 1) * 32;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * M, c0 = static_cast<int64_t>(blockIdx.y) * N;
  wmma::fragment<wmma::accumulator, F, F, F, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < d; k0 += K) {
    for (int e = threadIdx.x; e < M * K; e += kScreenThreads) {
      const int rr = e / K, kk = e % K;
      const int64_t gk = k0 + kk, gr = r0 + rr, gc = c0 + rr;
      as[rr * LDA + kk] = __ushort_as_bfloat16(gr < m && gk < d ? q[gr * d + gk] : static_cast<uint16_t>(0));
      bs[rr * LDA + kk] = __ushort_as_bfloat16(gc < n && gk < d ? b[gc * d + gk] : static_cast<uint16_t>(0));
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < K; kk += F) {
      wmma::fragment<wmma::matrix_a, F, F, F, __nv_bfloat16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, F, F, F, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], as + (wr + F * i) * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], bs + (wc + F * j) * LDA + kk, LDA);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(cs + (wc + F * j) * LDC + wr + F * i, acc[i][j], LDC, wmma::mem_col_major);
  __syncthreads();
  for (int e = threadIdx.x; e < M * N; e += kScreenThreads) {
    const int cc = e / M, rr = e % M;
    if (r0 + rr < m && c0 + cc < n) s[tiling::score_at(r0 + rr, c0 + cc, m)] = cs[cc * LDC + rr];
  }
#else
  __trap();  // built for a device without bf16 tensor cores: has_bf16_screen() keeps this from running
#endif
}

__global__ void screen_lower_kernel(const float* __restrict__ s, int64_t m, int64_t n, int64_t j0, int64_t k,
                                    int64_t parts, const double* __restrict__ qt, const double* __restrict__ bt,
                                    int64_t d, double slack, float* ps, int64_t* pj, int64_t* pf) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= m * parts) return;
  const int64_t r = t % m, p = t / m;
  int64_t c0, c1;
  tiling::part_range(n, parts, p, c0, c1);
  const int64_t o = (r * parts + p) * k;
  pf[r * parts + p] = tiling::screen_lower_scan(s, m, r, c0, c1, j0, k, qt + 3 * r, bt, d, slack, ps + o, pj + o);
}

__global__ void screen_threshold_kernel(const float* ts, const int64_t* tf, int64_t m, int64_t k, int64_t parts,
                                        const float* ps, const int64_t* pj, const int64_t* pf, float* ls, int64_t* lj,
                                        float* th) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  th[r] = tiling::screen_threshold(ts + r * k, tf[r], k, ps + r * parts * k, pj + r * parts * k, pf + r * parts, parts,
                                   ls + r * k, lj + r * k);
}

__global__ void screen_rescore_kernel(const float* __restrict__ s, int64_t m, int64_t n, int64_t j0, int64_t k,
                                      int64_t parts, const double* __restrict__ qt, const double* __restrict__ bt,
                                      int64_t d, double slack, const float* __restrict__ th,
                                      const float* __restrict__ q, const float* __restrict__ b, float* ps, int64_t* pj,
                                      int64_t* pf, int64_t* pc) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= m * parts) return;
  const int64_t r = t % m, p = t / m;
  int64_t c0, c1;
  tiling::part_range(n, parts, p, c0, c1);
  const int64_t o = (r * parts + p) * k;
  pf[r * parts + p] = tiling::screen_rescore_scan(s, m, r, c0, c1, j0, k, qt + 3 * r, bt, d, slack, th[r], q + r * d, b,
                                                  ps + o, pj + o, pc + r * parts + p);
}

__global__ void screen_merge_kernel(float* ts, int64_t* tj, int64_t* tf, int64_t* rc, const float* ps, const int64_t* pj,
                                    const int64_t* pf, const int64_t* pc, int64_t m, int64_t k, int64_t parts) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  int64_t filled = tf[r], count = rc[r];
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t o = (r * parts + p) * k;
    tiling::topk_merge(ts + r * k, tj + r * k, k, filled, ps + o, pj + o, pf[r * parts + p]);
    count += pc[r * parts + p];
  }
  tf[r] = filled;
  rc[r] = count;
}

__global__ void screen_pairs_kernel(const float* __restrict__ s, int64_t m, int64_t n, int64_t i0, int64_t j0,
                                    int64_t self, float below, const double* __restrict__ qt,
                                    const double* __restrict__ bt, int64_t d, double slack, const float* __restrict__ q,
                                    const float* __restrict__ b, int64_t* counts, int64_t* rescored,
                                    const int64_t* offsets, int64_t* oi, int64_t* oj, float* os) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  if (offsets == nullptr)
    counts[r] = tiling::screen_pairs_scan(s, m, r, n, i0, j0, self, below, qt + 3 * r, bt, d, slack, q + r * d, b,
                                          nullptr, nullptr, nullptr, rescored + r);
  else
    tiling::screen_pairs_scan(s, m, r, n, i0, j0, self, below, qt + 3 * r, bt, d, slack, q + r * d, b, oi + offsets[r],
                              oj + offsets[r], os + offsets[r], nullptr);
}

constexpr int kThreads = 128;

void launched(const char* what) { check(cudaGetLastError(), what); }

class CudaBackend final : public SimilarityBackend {
 public:
  CudaBackend() {
    check(cudaSetDevice(0), "cudaSetDevice");
    int major = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), "cudaDeviceGetAttribute");
    bf16_ = major >= 8;
  }
  std::string name() const override { return "CUDA device 0"; }
  int64_t free_bytes() override {
    size_t fr = 0, total = 0;
    check(cudaMemGetInfo(&fr, &total), "cudaMemGetInfo");
    return static_cast<int64_t>(fr);
  }

  void load_query(const float* rows, int64_t m, int64_t d) override { q_.upload(rows, m * d); }
  void load_db(const float* rows, int64_t n, int64_t d) override { b_.upload(rows, n * d); }

  void scores(int64_t m, int64_t n, int64_t d) override {
    dim3 block(kTile, kTile);
    dim3 grid(static_cast<unsigned>((m + kTile - 1) / kTile), static_cast<unsigned>((n + kTile - 1) / kTile));
    score_kernel<<<grid, block>>>(q_.ptr(), m, b_.ptr(), n, d, s_.get(m * n));
    launched("score kernel");
  }
  void read_scores(float* s, int64_t m, int64_t n) override { s_.download(s, m * n); }

  void topk_reset(int64_t m, int64_t k) override {
    ts_.get(m * k);
    tj_.get(m * k);
    check(cudaMemset(tf_.get(m), 0, static_cast<size_t>(m) * sizeof(int64_t)), "cudaMemset");
    check(cudaMemset(rc_.get(m), 0, static_cast<size_t>(m) * sizeof(int64_t)), "cudaMemset");
  }
  void topk_block(int64_t m, int64_t n, int64_t j0, int64_t k) override {
    const int64_t parts = tiling::topk_parts(n, k);
    float* ps = ps_.get(m * parts * k);
    int64_t* pj = pj_.get(m * parts * k);
    int64_t* pf = pf_.get(m * parts);
    topk_scan_kernel<<<blocks_for(m * parts, kThreads), kThreads>>>(s_.ptr(), m, n, j0, k, parts, ps, pj, pf);
    launched("top-k scan kernel");
    topk_merge_kernel<<<blocks_for(m, kThreads), kThreads>>>(ts_.ptr(), tj_.ptr(), tf_.ptr(), ps, pj, pf, m, k, parts);
    launched("top-k merge kernel");
  }
  void topk_read(int64_t m, int64_t k, float* s, int64_t* j) override {
    ts_.download(s, m * k);
    tj_.download(j, m * k);
  }

  void classmax_reset(int64_t m, int64_t classes) override {
    fill_kernel<<<blocks_for(m * classes, kThreads), kThreads>>>(cm_.get(m * classes), m * classes,
                                                                   -std::numeric_limits<float>::infinity());
    launched("fill kernel");
  }
  void classmax_block(int64_t m, int64_t n, const int32_t* labels, int64_t classes) override {
    lab_.upload(labels, n);
    classmax_kernel<<<blocks_for(m, kThreads), kThreads>>>(s_.ptr(), m, n, lab_.ptr(), classes, cm_.ptr());
    launched("class max kernel");
  }
  void classmax_read(int64_t m, int64_t classes, float* out) override { cm_.download(out, m * classes); }

  void pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t* counts) override {
    pairs_kernel<<<blocks_for(m, kThreads), kThreads>>>(s_.ptr(), m, n, i0, j0, self, below, cnt_.get(m), nullptr,
                                                         nullptr, nullptr, nullptr);
    launched("pairs count kernel");
    cnt_.download(counts, m);
  }
  void pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, const int64_t* offsets,
                   int64_t total, int64_t* oi, int64_t* oj, float* os) override {
    off_.upload(offsets, m);
    pairs_kernel<<<blocks_for(m, kThreads), kThreads>>>(s_.ptr(), m, n, i0, j0, self, below, nullptr, off_.ptr(),
                                                         oi_.get(total), oj_.get(total), os_.get(total));
    launched("pairs write kernel");
    oi_.download(oi, total);
    oj_.download(oj, total);
    os_.download(os, total);
  }

  void row_dot(const float* a, const float* b, const double* sa, const double* sb, int64_t m, int64_t d,
               float* out) override {
    q_.upload(a, m * d);
    b_.upload(b, m * d);
    if (sa) {
      sa_.upload(sa, m);
      sb_.upload(sb, m);
    }
    row_dot_kernel<<<blocks_for(m, kThreads), kThreads>>>(q_.ptr(), b_.ptr(), sa ? sa_.ptr() : nullptr,
                                                           sa ? sb_.ptr() : nullptr, m, d, out_.get(m));
    launched("row dot kernel");
    out_.download(out, m);
  }

  bool has_bf16_screen() override { return bf16_; }
  void load_query_bf16(const uint16_t* rows, const double* terms, int64_t m, int64_t d) override {
    qh_.upload(rows, m * d);
    qt_.upload(terms, 3 * m);
  }
  void load_db_bf16(const uint16_t* rows, const double* terms, int64_t n, int64_t d) override {
    bh_.upload(rows, n * d);
    bt_.upload(terms, 3 * n);
  }
  void screen_scores(int64_t m, int64_t n, int64_t d) override {
    dim3 grid(static_cast<unsigned>((m + tiling::kScreenM - 1) / tiling::kScreenM),
              static_cast<unsigned>((n + tiling::kScreenN - 1) / tiling::kScreenN));
    screen_mma_kernel<<<grid, kScreenThreads>>>(qh_.ptr(), m, bh_.ptr(), n, d, s_.get(m * n));
    launched("bf16 screen kernel");
  }
  void screen_topk_block(int64_t m, int64_t n, int64_t j0, int64_t k, int64_t d, double slack) override {
    const int64_t parts = tiling::topk_parts(n, k);
    float* ps = ps_.get(m * parts * k);
    int64_t* pj = pj_.get(m * parts * k);
    int64_t* pf = pf_.get(m * parts);
    int64_t* pc = pc_.get(m * parts);
    float* ls = ls_.get(m * k);
    int64_t* lj = lj_.get(m * k);
    float* th = th_.get(m);
    screen_lower_kernel<<<blocks_for(m * parts, kThreads), kThreads>>>(s_.ptr(), m, n, j0, k, parts, qt_.ptr(), bt_.ptr(),
                                                                      d, slack, ps, pj, pf);
    launched("bf16 screen lower-bound kernel");
    screen_threshold_kernel<<<blocks_for(m, kThreads), kThreads>>>(ts_.ptr(), tf_.ptr(), m, k, parts, ps, pj, pf, ls, lj,
                                                                   th);
    launched("bf16 screen threshold kernel");
    screen_rescore_kernel<<<blocks_for(m * parts, kThreads), kThreads>>>(s_.ptr(), m, n, j0, k, parts, qt_.ptr(),
                                                                        bt_.ptr(), d, slack, th, q_.ptr(), b_.ptr(), ps,
                                                                        pj, pf, pc);
    launched("bf16 screen rescoring kernel");
    screen_merge_kernel<<<blocks_for(m, kThreads), kThreads>>>(ts_.ptr(), tj_.ptr(), tf_.ptr(), rc_.ptr(), ps, pj, pf, pc,
                                                               m, k, parts);
    launched("bf16 screen merge kernel");
  }
  void screen_rescored_read(int64_t m, int64_t* counts) override { rc_.download(counts, m); }
  int64_t screen_pairs_count(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                             double slack, int64_t* counts) override {
    screen_pairs_kernel<<<blocks_for(m, kThreads), kThreads>>>(s_.ptr(), m, n, i0, j0, self, below, qt_.ptr(), bt_.ptr(), d,
                                                               slack, q_.ptr(), b_.ptr(), cnt_.get(m), rc_.get(m), nullptr,
                                                               nullptr, nullptr, nullptr);
    launched("bf16 screen pairs count kernel");
    cnt_.download(counts, m);
    std::vector<int64_t> rescored(static_cast<size_t>(m));
    rc_.download(rescored.data(), m);
    int64_t total = 0;
    for (int64_t x : rescored) total += x;
    return total;
  }
  void screen_pairs_write(int64_t m, int64_t n, int64_t i0, int64_t j0, int64_t self, float below, int64_t d,
                          double slack, const int64_t* offsets, int64_t total, int64_t* oi, int64_t* oj,
                          float* os) override {
    off_.upload(offsets, m);
    screen_pairs_kernel<<<blocks_for(m, kThreads), kThreads>>>(s_.ptr(), m, n, i0, j0, self, below, qt_.ptr(), bt_.ptr(), d,
                                                               slack, q_.ptr(), b_.ptr(), nullptr, nullptr, off_.ptr(),
                                                               oi_.get(total), oj_.get(total), os_.get(total));
    launched("bf16 screen pairs write kernel");
    oi_.download(oi, total);
    oj_.download(oj, total);
    os_.download(os, total);
  }

 private:
  bool bf16_ = false;
  DeviceArray<float> q_, b_, s_, ts_, ps_, cm_, os_, out_, ls_, th_;
  DeviceArray<int64_t> tj_, tf_, pj_, pf_, cnt_, off_, oi_, oj_, pc_, lj_, rc_;
  DeviceArray<int32_t> lab_;
  DeviceArray<double> sa_, sb_, qt_, bt_;
  DeviceArray<uint16_t> qh_, bh_;
};

}  // namespace

bool cuda_built() { return true; }

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a failed probe
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(st);
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

bool cuda_device_info(CudaDeviceInfo& out, std::string* why) {
  if (cuda_device_count(why) <= 0) return false;
  cudaDeviceProp prop{};
  cudaError_t st = cudaGetDeviceProperties(&prop, 0);
  if (st == cudaSuccess) st = cudaSetDevice(0);
  size_t fr = 0, total = 0;
  if (st == cudaSuccess) st = cudaMemGetInfo(&fr, &total);
  if (st != cudaSuccess) {
    if (why) *why = std::string("CUDA device 0 cannot be used: ") + cudaGetErrorString(st);
    return false;
  }
  out.name = prop.name;
  out.total_bytes = static_cast<int64_t>(total);
  out.free_bytes = static_cast<int64_t>(fr);
  out.compute_major = prop.major;
  out.compute_minor = prop.minor;
  cudaRuntimeGetVersion(&out.runtime_version);
  cudaDriverGetVersion(&out.driver_version);
  return true;
}

std::vector<std::string> cuda_kernels() {
  return {"similarity.topk", "similarity.topk.bf16", "similarity.classMax", "similarity.classMean", "similarity.pairs", "similarity.pairs.bf16", "similarity.rowDot",
          "bnstats.nchw", "bnstats.nhwc", "layout.clisL", "composite.batch"};
}

std::unique_ptr<SimilarityBackend> cuda_similarity_backend() {
  std::string why;
  if (cuda_device_count(&why) <= 0) fail("E_CUDA_UNAVAILABLE", why);
  return std::make_unique<CudaBackend>();
}

}  // namespace genaug
