// The compositor's row kernels for the baseline build: the plain reference,
// and on x86-64 (where SSE2 is part of the baseline) the SSE2 kernel.
#include "composite_kernels.h"
#include "composite_kernels_impl.h"

namespace genaug {

namespace {
void resize_row_reference(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw, const int32_t*,
                          int32_t b, int64_t n, bool wide, uint8_t* o) {
  composite_impl::resize_tail(r0, r1, xoff, xw, b, 0, n, wide, o);
}

#if GENAUG_COMPOSITE_SSE2
void resize_row_sse2(const uint8_t* r0, const uint8_t* r1, const int64_t* xoff, const int32_t* xw, const int32_t*,
                     int32_t b, int64_t n, bool wide, uint8_t* o) {
  int64_t k = 0;
  if (wide) k = composite_impl::resize_pairs_sse2(r0, r1, xoff, xw, b, 0, n, o);
  composite_impl::resize_tail(r0, r1, xoff, xw, b, k, n, wide, o);
}
#endif
}  // namespace

const CompositeKernels& composite_kernels_reference() {
  static const CompositeKernels k{Isa::Scalar, false, resize_row_reference};
  return k;
}

const CompositeKernels& composite_kernels_scalar() {
#if GENAUG_COMPOSITE_SSE2
  static const CompositeKernels k{Isa::Scalar, false, resize_row_sse2};
  return k;
#else
  return composite_kernels_reference();
#endif
}

const CompositeKernels& composite_kernels_for(Isa isa) {
#ifdef GENAUG_HAVE_X86_KERNELS
  if (clamp_isa(isa) >= Isa::Avx2) return composite_kernels_avx2();
#else
  (void)isa;
#endif
  return composite_kernels_scalar();
}

}  // namespace genaug
