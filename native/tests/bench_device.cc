// bench_device: the CUDA kernels against the CPU path on the sizes,
// with no Node.js (the GPU machines this project is lent have nvcc, CMake and
// g++ but no Node, so `npm run test:gpu` cannot run there; this program and
// scripts/gpu-native.sh can). For each hot path: the CPU path's time (every
// core), the device path's time (the first call, which pays the CUDA context
// and the transfers' set-up, reported apart), their ratio, and how far the
// two agree:
//   - similarity (20000 x 50000 x 512 top-1 and top-10, exact and with
//     precision 'bf16' against the CPU's exact answer; 64 queries' class max
//     over 100 classes and pairs >= 0.15; rowDot): index mismatches and the
//     largest score difference;
//   - BN statistics (64 x 256 x 56 x 56, NCHW and NHWC): counts and min/max
//     equal, the largest relative difference of mean and m2;
//   - copy-paste compositing (32 scenes of 1024 x 1024 with two real masks and
//     five 512 x 512 RGBA instances, basic blend): whether every output byte
//     and every instance is the CPU path's.
// One JSON object per line; the last carries `summary`. Exit 0 when every
// comparison holds, 1 when one does not, 2 when there is no usable device.
//   bench_device [--quick] [--emulate] [--reps N]
// --emulate runs the CPU emulation backends instead of CUDA (with small pretend
// device memories, so the blocking is exercised): how CI and machines without
// a GPU check that this program itself works.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bnstats.h"
#include "bnstats_device.h"
#include "composite.h"
#include "composite_device.h"
#include "cuda_api.h"
#include "cpu.h"
#include "error.h"
#include "similarity.h"
#include "similarity_device.h"

using namespace genaug;

namespace {

struct Args {
  bool quick = false, emulate = false;
  int reps = 3;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of `reps` timed runs of fn (seconds); first_s: the first call's time.
double best_of(int reps, const std::function<void()>& fn, double* first_s = nullptr) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    fn();
    const double t = now_s() - t0;
    if (r == 0 && first_s) *first_s = t;
    best = std::min(best, t);
  }
  return best;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::vector<float> gaussian_rows(int64_t rows, int64_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * dim));
  for (auto& x : v) x = g(rng);
  return v;
}

struct Report {
  bool ok = true;
  std::ostringstream summary;
  bool first_field = true;
  void field(const std::string& k, double v) {
    summary << (first_field ? "" : ", ") << '"' << k << "\": " << num(v);
    first_field = false;
  }
  void line(const std::string& s) {
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }
};

// ---------------------------------------------------------------- similarity

void bench_similarity(const Args& a, SimilarityBackend& be, Report& rep) {
  const int64_t M = a.quick ? 600 : 20000, N = a.quick ? 2000 : 50000, D = a.quick ? 96 : 512, few = a.quick ? 16 : 64;
  const std::vector<float> q = gaussian_rows(M, D, 1), d = gaussian_rows(N, D, 2);
  const MatrixView Q{q.data(), M, D}, B{d.data(), N, D}, F{q.data(), few, D};
  std::vector<int32_t> labels(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) labels[i] = static_cast<int32_t>((i * 7919) % 100);
  SimilarityOptions cpu;  // every core, the default engine
  SimilarityOptions dev;
  if (a.emulate) dev.device_bytes = 1 << 22;  // many blocks
  const int reps = a.emulate ? 1 : a.reps;

  // Exact top-1 and top-10, then precision 'bf16' (the tensor-core screen with
  // exact rescoring: the exact answer again, against the CPU's exact one).
  for (const auto& [k, bf16] : {std::pair<int64_t, bool>{1, false}, {10, false}, {1, true}, {10, true}}) {
    TopKResult rc, rd;
    double first = 0;
    SimilarityOptions devk = dev;
    if (bf16) devk.precision = SimilarityOptions::Precision::Bf16;
    const double tc = best_of(reps, [&] { rc = topk(Q, B, k, cpu); });
    const double td = best_of(reps, [&] { rd = device_topk(be, Q, B, k, devk); }, &first);
    int64_t mism = 0;
    double diff = 0;
    for (size_t i = 0; i < rc.indices.size(); ++i) {
      mism += rc.indices[i] != rd.indices[i];
      diff = std::max(diff, static_cast<double>(std::fabs(rc.scores[i] - rd.scores[i])));
    }
    const bool ok = mism == 0 && diff <= 1e-5;
    rep.ok &= ok;
    const std::string op = (bf16 ? "bf16topk" : "topk") + std::to_string(k);
    rep.line("{\"op\": \"" + op + "\", \"M\": " + std::to_string(M) + ", \"N\": " + std::to_string(N) + ", \"D\": " +
             std::to_string(D) + ", \"cpu_s\": " + num(tc) + ", \"device_s\": " + num(td) + ", \"device_first_call_s\": " +
             num(first) + ", \"speedup_vs_cpu\": " + num(tc / td) + ", \"device_gflops\": " +
             num(2.0 * M * N * D / td / 1e9) + ", \"index_mismatches\": " + std::to_string(mism) +
             ", \"max_score_diff\": " + num(diff) + ", \"ok\": " + (ok ? "true" : "false") + "}");
    rep.field(op + "_speedup_vs_cpu", tc / td);
  }
  {
    ClassResult rc, rd;
    const double tc = best_of(reps, [&] { rc = class_max(F, B, labels.data(), 100, cpu); });
    const double td = best_of(reps, [&] { rd = device_class_max(be, F, B, labels.data(), 100, dev); });
    double diff = 0;
    for (size_t i = 0; i < rc.values.size(); ++i) {
      if (std::isnan(rc.values[i]) != std::isnan(rd.values[i])) diff = 1e300;
      else if (!std::isnan(rc.values[i])) diff = std::max(diff, static_cast<double>(std::fabs(rc.values[i] - rd.values[i])));
    }
    const bool ok = diff <= 1e-5 && rc.values.size() == rd.values.size() && rc.counts == rd.counts;
    rep.ok &= ok;
    rep.line("{\"op\": \"classMaxFew\", \"M\": " + std::to_string(few) + ", \"cpu_s\": " + num(tc) + ", \"device_s\": " +
             num(td) + ", \"speedup_vs_cpu\": " + num(tc / td) + ", \"max_score_diff\": " + num(diff) +
             ", \"ok\": " + (ok ? "true" : "false") + "}");
    rep.field("classmax_few_speedup_vs_cpu", tc / td);
  }
  {
    PairsResult rc, rd;
    const double thr = a.quick ? 0.25 : 0.15;
    const double tc = best_of(reps, [&] { rc = pairs(F, B, thr, -1, int64_t(1) << 40, cpu); });
    const double td = best_of(reps, [&] { rd = device_pairs(be, F, B, thr, -1, int64_t(1) << 40, dev); });
    // Pairs whose score sits within 1e-5 of the threshold may be in one list
    // only; every other pair must be in both, with the same (i, j).
    int64_t missing = 0;
    double diff = 0;
    size_t x = 0, y = 0;
    while (x < rc.i.size() || y < rd.i.size()) {
      const bool take_c = y >= rd.i.size() || (x < rc.i.size() && (rc.i[x] < rd.i[y] || (rc.i[x] == rd.i[y] && rc.j[x] < rd.j[y])));
      const bool take_d = x >= rc.i.size() || (y < rd.i.size() && (rd.i[y] < rc.i[x] || (rd.i[y] == rc.i[x] && rd.j[y] < rc.j[x])));
      if (take_c) {
        missing += std::fabs(rc.score[x] - thr) > 1e-5;
        ++x;
      } else if (take_d) {
        missing += std::fabs(rd.score[y] - thr) > 1e-5;
        ++y;
      } else {
        diff = std::max(diff, static_cast<double>(std::fabs(rc.score[x] - rd.score[y])));
        ++x;
        ++y;
      }
    }
    const bool ok = missing == 0 && diff <= 1e-5;
    rep.ok &= ok;
    rep.line("{\"op\": \"pairsFew\", \"M\": " + std::to_string(few) + ", \"threshold\": " + num(thr) + ", \"pairs\": " +
             std::to_string(rc.i.size()) + ", \"cpu_s\": " + num(tc) + ", \"device_s\": " + num(td) +
             ", \"speedup_vs_cpu\": " + num(tc / td) + ", \"pairs_in_one_list_only\": " + std::to_string(missing) +
             ", \"max_score_diff\": " + num(diff) + ", \"ok\": " + (ok ? "true" : "false") + "}");
    rep.field("pairs_few_speedup_vs_cpu", tc / td);
  }
  {
    std::vector<float> rc, rd;
    const int64_t rows = std::min(M, N);
    const MatrixView Qr{q.data(), rows, D}, Br{d.data(), rows, D};
    const double tc = best_of(reps, [&] { rc = row_dot(Qr, Br, cpu); });
    const double td = best_of(reps, [&] { rd = device_row_dot(be, Qr, Br, dev); });
    const bool ok = rc.size() == rd.size() && std::memcmp(rc.data(), rd.data(), rc.size() * sizeof(float)) == 0;
    rep.ok &= ok;
    rep.line("{\"op\": \"rowDot\", \"rows\": " + std::to_string(rows) + ", \"cpu_s\": " + num(tc) + ", \"device_s\": " +
             num(td) + ", \"speedup_vs_cpu\": " + num(tc / td) + ", \"same_bytes\": " + (ok ? "true" : "false") + "}");
  }
}

// ----------------------------------------------------------------------- BN

void bench_bn(const Args& a, BnBackend& be, Report& rep) {
  const int64_t n = a.quick ? 4 : 64, c = a.quick ? 24 : 256, s = a.quick ? 15 * 17 : 56 * 56;
  std::vector<float> x(static_cast<size_t>(n * c * s));
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.5f, 2.0f);
  for (auto& v : x) v = g(rng);
  const int reps = a.emulate ? 1 : a.reps;
  for (Layout layout : {Layout::NCHW, Layout::NHWC}) {
    BnInput in;
    in.f32 = x.data();
    in.n = n;
    in.c = c;
    in.s = s;
    in.layout = layout;
    BnOptions opt;
    BnStats rc, rd;
    const int64_t dbytes = a.emulate ? (int64_t(1) << 16) : 0;
    const double tc = best_of(reps, [&] { rc = bn_stats(in, opt); });
    const double td = best_of(reps, [&] { rd = device_bn_stats(be, in, opt, dbytes); });
    double rel = 0;
    bool same = rc.count == rd.count && rc.min == rd.min && rc.max == rd.max;
    for (size_t i = 0; i < rc.mean.size() && same; ++i) {
      rel = std::max(rel, std::fabs(rc.mean[i] - rd.mean[i]) / std::max(1e-30, std::fabs(rc.mean[i])));
      rel = std::max(rel, std::fabs(rc.m2[i] - rd.m2[i]) / std::max(1e-30, std::fabs(rc.m2[i])));
    }
    const bool ok = same && rel <= 1e-6;
    rep.ok &= ok;
    const double gb = static_cast<double>(x.size()) * 4 / 1e9;
    const char* name = layout == Layout::NCHW ? "nchw" : "nhwc";
    rep.line(std::string("{\"op\": \"bnstats\", \"layout\": \"") + name + "\", \"shape\": [" + std::to_string(n) + ", " +
             std::to_string(c) + ", " + std::to_string(s) + "], \"cpu_s\": " + num(tc) + ", \"device_s\": " + num(td) +
             ", \"speedup_vs_cpu\": " + num(tc / td) + ", \"device_gb_per_s\": " + num(gb / td) +
             ", \"counts_min_max_equal\": " + (same ? "true" : "false") + ", \"max_rel_diff\": " + num(rel) +
             ", \"ok\": " + (ok ? "true" : "false") + "}");
    rep.field(std::string("bn_") + name + "_speedup_vs_cpu", tc / td);
  }
}

// ---------------------------------------------------------------- composite

void bench_composite(const Args& a, CompositeBackend& be, Report& rep) {
  const int64_t H = a.quick ? 160 : 1024, W = a.quick ? 200 : 1024, SRC = a.quick ? 64 : 512;
  const int scenes_n = a.quick ? 3 : 32;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> image(static_cast<size_t>(H * W * 3));
  for (auto& v : image) v = static_cast<uint8_t>(byte(rng));
  // Two real masks (discs) and a pool of soft-edged RGBA instances.
  std::vector<std::vector<uint8_t>> masks(2, std::vector<uint8_t>(static_cast<size_t>(H * W)));
  for (int m = 0; m < 2; ++m)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const double dx = x - W * (0.3 + 0.4 * m), dy = y - H * 0.5;
        masks[m][y * W + x] = dx * dx + dy * dy < (H * 0.2) * (H * 0.2) ? 1 : 0;
      }
  std::vector<std::vector<uint8_t>> pool(4, std::vector<uint8_t>(static_cast<size_t>(SRC * SRC * 4)));
  for (auto& p : pool)
    for (int64_t y = 0; y < SRC; ++y)
      for (int64_t x = 0; x < SRC; ++x) {
        uint8_t* px = &p[(y * SRC + x) * 4];
        px[0] = static_cast<uint8_t>(byte(rng));
        px[1] = static_cast<uint8_t>(byte(rng));
        px[2] = static_cast<uint8_t>(byte(rng));
        const double r = std::hypot(x - SRC / 2.0, y - SRC / 2.0) / (SRC * 0.45);
        px[3] = static_cast<uint8_t>(std::clamp(255.0 * (1.0 - r) * 4.0, 0.0, 255.0));
      }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<CompositeScene> cpu_s(static_cast<size_t>(scenes_n)), dev_s;
  const int P = 5;
  std::vector<std::vector<uint8_t>> outs_c, outs_d;
  for (int s = 0; s < scenes_n; ++s) {
    CompositeScene& sc = cpu_s[s];
    sc.image = image.data();
    sc.h = H;
    sc.w = W;
    sc.masks = {masks[0].data(), masks[1].data()};
    for (int p = 0; p < P; ++p) {
      PasteSpec ps;
      ps.rgba = pool[static_cast<size_t>(p % 4)].data();
      ps.width = SRC;
      ps.height = SRC;
      const int64_t side = static_cast<int64_t>(SRC * (0.1 + 0.9 * u(rng)));
      ps.target_w = std::max<int64_t>(1, side);
      ps.target_h = std::max<int64_t>(1, side);
      ps.flip = u(rng) < 0.5;
      ps.cx = std::floor(u(rng) * W);
      ps.cy = std::floor(u(rng) * H);
      sc.pastes.push_back(ps);
    }
  }
  dev_s = cpu_s;
  auto wire = [&](std::vector<CompositeScene>& ss, std::vector<std::vector<uint8_t>>& outs) {
    outs.assign(ss.size() * (1 + 2 + P), {});
    size_t o = 0;
    for (auto& sc : ss) {
      outs[o].assign(static_cast<size_t>(H * W * 3), 0);
      sc.out_image = outs[o++].data();
      sc.out_masks.clear();
      for (int m = 0; m < 2 + P; ++m) {
        outs[o].assign(static_cast<size_t>(H * W), 0);
        sc.out_masks.push_back(outs[o++].data());
      }
    }
  };
  wire(cpu_s, outs_c);
  wire(dev_s, outs_d);
  CompositeOptions opt;
  const int reps = a.emulate ? 1 : a.reps;
  std::vector<CompositeResult> rc, rd;
  double first = 0;
  const double tc = best_of(reps, [&] { rc = composite_batch(cpu_s, opt); });
  const int64_t dbytes = a.emulate ? (int64_t(H * W * 12)) : 0;
  const double td = best_of(reps, [&] { rd = device_composite_batch(be, dev_s, opt, dbytes); }, &first);
  // The same instances, drops and output bytes (masks: the slots of output instances).
  bool same = rc.size() == rd.size();
  for (size_t s = 0; s < rc.size() && same; ++s) {
    const auto& A = rc[s].instances;
    const auto& B = rd[s].instances;
    same &= A.size() == B.size() && rc[s].dropped.size() == rd[s].dropped.size();
    for (size_t i = 0; i < A.size() && same; ++i) {
      same &= A[i].source == B[i].source && A[i].index == B[i].index && A[i].slot == B[i].slot && A[i].area == B[i].area &&
              A[i].box.x == B[i].box.x && A[i].box.y == B[i].box.y && A[i].box.w == B[i].box.w && A[i].box.h == B[i].box.h;
      same &= std::memcmp(cpu_s[s].out_masks[A[i].slot], dev_s[s].out_masks[B[i].slot], static_cast<size_t>(H * W)) == 0;
    }
    same &= std::memcmp(cpu_s[s].out_image, dev_s[s].out_image, static_cast<size_t>(H * W * 3)) == 0;
  }
  rep.ok &= same;
  rep.line("{\"op\": \"composite\", \"scenes\": " + std::to_string(scenes_n) + ", \"size\": [" + std::to_string(H) + ", " +
           std::to_string(W) + "], \"pasted\": " + std::to_string(P) + ", \"cpu_s\": " + num(tc) + ", \"device_s\": " +
           num(td) + ", \"device_first_call_s\": " + num(first) + ", \"cpu_images_per_s\": " + num(scenes_n / tc) +
           ", \"device_images_per_s\": " + num(scenes_n / td) + ", \"speedup_vs_cpu\": " + num(tc / td) +
           ", \"same_bytes\": " + (same ? "true" : "false") + ", \"device_batches\": " + std::to_string(last_composite_batches()) + "}");
  rep.field("composite_speedup_vs_cpu", tc / td);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--quick") a.quick = true;
    else if (s == "--emulate") a.emulate = true;
    else if (s == "--reps" && i + 1 < argc) a.reps = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_device [--quick] [--emulate] [--reps N]\n");
      return 2;
    }
  }
  Report rep;
  try {
    std::string why;
    std::unique_ptr<SimilarityBackend> sim;
    std::unique_ptr<BnBackend> bn;
    std::unique_ptr<CompositeBackend> comp;
    if (a.emulate) {
      sim = emulated_backend(int64_t(1) << 22);
      bn = emulated_bn_backend(int64_t(1) << 16);
      comp = emulated_composite_backend(int64_t(1) << 26);
      rep.line("{\"device\": \"cpu emulation\", \"cuda_built\": " + std::string(cuda_built() ? "true" : "false") + "}");
    } else {
      if (cuda_device_count(&why) <= 0) {
        std::printf("{\"device\": null, \"skipped\": \"%s\"}\n", why.c_str());
        return 2;
      }
      CudaDeviceInfo info;
      cuda_device_info(info, &why);
      std::string kernels;
      for (const auto& k : cuda_kernels()) kernels += (kernels.empty() ? "\"" : ", \"") + k + "\"";
      rep.line("{\"device\": \"" + info.name + "\", \"compute\": \"" + std::to_string(info.compute_major) + "." +
               std::to_string(info.compute_minor) + "\", \"total_bytes\": " + std::to_string(info.total_bytes) +
               ", \"runtime_version\": " + std::to_string(info.runtime_version) + ", \"driver_version\": " +
               std::to_string(info.driver_version) + ", \"kernels\": [" + kernels + "], \"cpu_threads\": " +
               std::to_string(hardware_threads()) + "}");
      sim = cuda_similarity_backend();
      bn = cuda_bn_backend();
      comp = cuda_composite_backend();
    }
    bench_similarity(a, *sim, rep);
    bench_bn(a, *bn, rep);
    bench_composite(a, *comp, rep);
  } catch (const Error& e) {
    std::printf("{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}\n", e.code().c_str(), e.what());
    return 1;
  }
  rep.line("{\"summary\": {" + rep.summary.str() + ", \"all_agree\": " + (rep.ok ? "true" : "false") + "}}");
  return rep.ok ? 0 : 1;
}
