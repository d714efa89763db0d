#include "cpu.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#include "error.h"

namespace genaug {

namespace {
CpuInfo detect() {
  CpuInfo info;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  info.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  info.avx512 = info.avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  info.avx512_bf16 = info.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
#endif
  info.best = info.avx512 ? Isa::Avx512 : info.avx2_fma ? Isa::Avx2 : Isa::Scalar;
  return info;
}
}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

Isa clamp_isa(Isa requested) {
  Isa best = cpu_info().best;
  return static_cast<int>(requested) < static_cast<int>(best) ? requested : best;
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  if (name == "auto" || name.empty()) return cpu_info().best;
  fail("E_RANGE", "unknown ISA '", name, "': expected scalar, avx2, avx512 or auto");
}

Isa active_isa() {
  static const Isa isa = [] {
    const char* env = std::getenv("GENAUG_ISA");
    if (env == nullptr || *env == '\0') return cpu_info().best;
    std::string v(env);
    if (v != "scalar" && v != "avx2" && v != "avx512" && v != "auto") return cpu_info().best;
    return clamp_isa(parse_isa(v));
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

unsigned hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace genaug
