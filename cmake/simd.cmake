# Runtime-dispatched SIMD kernels. The library itself is built for baseline
# x86-64; only the per-ISA kernel files get wider instruction sets, and the
# code calls them only after CPUID says the CPU has them. Never -march=native.
#
# One naming scheme for every kernel family: native/core/<family>_<isa>.cc
# (kernels_avx2.cc, linalg_kernels_avx512.cc, composite_kernels_avx2.cc, ...).
# Files ending in _avx2.cc are compiled with the AVX2 flags, files ending in
# _avx512.cc with the AVX-512 flags; each family's <family>_for(isa) picks one
# at run time and falls back to its scalar unit (baseline flags).
include(CheckCXXCompilerFlag)

set(GENAUG_AVX2_FLAGS "-mavx2;-mfma")
set(GENAUG_AVX512_FLAGS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mfma;-mavx2;-Wno-maybe-uninitialized")

# The per-ISA sources of native/core, which the core's own glob leaves out.
set(GENAUG_SIMD_SOURCE_REGEX "_(avx2|avx512)\\.cc$")

function(genaug_add_simd_kernels target)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    check_cxx_compiler_flag("-mavx512f -mavx512bw -mavx512dq -mavx512vl" GENAUG_HAS_AVX512_FLAGS)
    if(GENAUG_HAS_AVX512_FLAGS)
      file(GLOB avx2_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/native/core/*_avx2.cc)
      file(GLOB avx512_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/native/core/*_avx512.cc)
      target_sources(${target} PRIVATE ${avx2_sources} ${avx512_sources})
      set_source_files_properties(${avx2_sources} PROPERTIES COMPILE_OPTIONS "${GENAUG_AVX2_FLAGS}")
      set_source_files_properties(${avx512_sources} PROPERTIES COMPILE_OPTIONS "${GENAUG_AVX512_FLAGS}")
      target_compile_definitions(${target} PUBLIC GENAUG_HAVE_X86_KERNELS=1)
      list(LENGTH avx2_sources n_avx2)
      list(LENGTH avx512_sources n_avx512)
      message(STATUS "genaug: x86-64 baseline + ${n_avx2} AVX2/FMA and ${n_avx512} AVX-512 kernel units (runtime dispatch)")
    endif()
  else()
    message(STATUS "genaug: ${CMAKE_SYSTEM_PROCESSOR}: portable kernels only")
  endif()
endfunction()
