// Per-ISA row kernels of the compositor: one output row of the fixed-point
// bilinear resize of composite.h. Each ISA's kernel lives in its own
// translation unit, compiled with its own target flags:
//   composite_kernels_scalar.cc  the plain reference, and the baseline build
//                                (SSE2, 2 pixels per step, on x86-64, where
//                                SSE2 is part of the baseline; the reference
//                                elsewhere)
//   composite_kernels_avx2.cc    AVX2, 4 pixels per step
// composite_kernels_for() picks one at run time; there is no AVX-512 variant
// (Isa::Avx512 uses the AVX2 one). The arithmetic is exact integer
// arithmetic, so every variant writes the same bytes as the reference.
#pragma once
#include <cstdint>

#include "cpu.h"

namespace genaug {

struct CompositeKernels {
  Isa isa;  // the level of the instructions the kernel uses
  // Whether resize_row reads xw4 (each xw entry repeated 4 times).
  bool quad_weights;
  // n RGBA output pixels into o: pixel k blends the taps at r0 + xoff[k] and
  // r1 + xoff[k] (the source rows of this output row) with the column weights
  // xw[k] = (2048 - a) | (a << 16) and the row weight b. wide: the right tap
  // is the pixel after the left one (the source has >= 2 columns); otherwise
  // both taps are the one column.
  void (*resize_row)(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw, const int32_t* xw4,
                     int32_t b, int64_t n, bool wide, uint8_t* o);
};

const CompositeKernels& composite_kernels_for(Isa isa);  // isa is clamped to the CPU
// The plain loop every variant must agree with byte for byte.
const CompositeKernels& composite_kernels_reference();
const CompositeKernels& composite_kernels_scalar();
#ifdef GENAUG_HAVE_X86_KERNELS
const CompositeKernels& composite_kernels_avx2();
#endif

}  // namespace genaug
