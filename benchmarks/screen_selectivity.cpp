// How selective the CUDA bf16 screen's bound is, counted by the CPU emulation
// of the device path (no GPU needed): M x N x D normalised Gaussian rows,
// top-1 and top-10 with precision 'bf16' (optional 4th argument: every row
// is that many times one shared random direction plus its own noise, so the
// cosines crowd together as real embeddings' do); prints the pairs rescored exactly
// and whether the answer is the CPU engine's, byte for byte. Build against the
// core library of the C++ tests (bash native/tests/run.sh builds build-tests/):
//   g++ -O2 -std=c++17 -Inative/core benchmarks/screen_selectivity.cpp build-tests/libgenaug_core.a -pthread \
//     -o /tmp/screen_selectivity && /tmp/screen_selectivity 64 20000 512
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "similarity.h"
#include "similarity_device.h"
using namespace genaug;
int main(int argc, char** argv) {
  const int64_t M = atoi(argv[1]), N = atoi(argv[2]), D = atoi(argv[3]);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(M * D), d(N * D);
  const float shared = argc > 4 ? static_cast<float>(atof(argv[4])) : 0.0f;
  std::vector<float> mu(D);
  for (auto& x : mu) x = nd(rng);
  for (size_t x = 0; x < q.size(); ++x) q[x] = shared * mu[x % D] + nd(rng);
  for (size_t x = 0; x < d.size(); ++x) d[x] = shared * mu[x % D] + nd(rng);
  auto be = emulated_backend(int64_t(1) << 32);
  for (int64_t k : {1, 10}) {
    SimilarityOptions o;
    o.precision = SimilarityOptions::Precision::Bf16;
    o.device_bytes = int64_t(1) << 30;
    TopKResult g = device_topk(*be, MatrixView{q.data(), M, D}, MatrixView{d.data(), N, D}, k, o);
    SimilarityOptions c;
    TopKResult x = topk(MatrixView{q.data(), M, D}, MatrixView{d.data(), N, D}, k, c);
    DevicePlanInfo p = last_device_plan();
    std::printf("M %ld N %ld D %ld k %ld: rescored %ld of %ld pairs (%.3f%%, %.1f per query row), blocks %ld x %ld, same as CPU: %d\n",
                (long)M, (long)N, (long)D, (long)k, (long)p.rescored, (long)(M * N), 100.0 * p.rescored / (M * N),
                (double)p.rescored / M, (long)p.query_rows, (long)p.db_rows, (int)(g.indices == x.indices && g.scores == x.scores));
  }
}
