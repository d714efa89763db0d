// Which SIMD level the kernels use. Detected once at start-up from CPUID; the
// environment variable GENAUG_ISA (scalar|avx2|avx512) may lower it (never
// raise it above what the CPU has), so tests can run every kernel here.
#pragma once
#include <string>

namespace genaug {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuInfo {
  bool avx2_fma = false;   // AVX2 + FMA3
  bool avx512 = false;     // AVX-512 F/BW/DQ/VL
  bool avx512_bf16 = false;
  Isa best = Isa::Scalar;  // the best level this CPU runs
};

const CpuInfo& cpu_info();
// The level in use: min(best, GENAUG_ISA override) unless `requested` is given.
Isa active_isa();
// Clamps a requested level to what the CPU supports.
Isa clamp_isa(Isa requested);
const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512" | "auto"; throws E_RANGE otherwise.
Isa parse_isa(const std::string& name);
unsigned hardware_threads();

}  // namespace genaug
