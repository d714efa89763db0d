# Runtime-dispatched SIMD kernels. The library itself is built for baseline
# x86-64; only these files get wider instruction sets, and the code calls them
# only after CPUID says the CPU has them. Never -march=native.
include(CheckCXXCompilerFlag)
function(genaug_add_simd_kernels target)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    check_cxx_compiler_flag("-mavx512f -mavx512bw -mavx512dq -mavx512vl" GENAUG_HAS_AVX512_FLAGS)
    if(GENAUG_HAS_AVX512_FLAGS)
      target_sources(${target} PRIVATE native/core/kernels_avx2.cc native/core/kernels_avx512.cc)
      set_source_files_properties(native/core/kernels_avx2.cc PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
      set_source_files_properties(native/core/kernels_avx512.cc PROPERTIES
        COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mfma;-mavx2;-Wno-maybe-uninitialized")
      target_compile_definitions(${target} PUBLIC GENAUG_HAVE_X86_KERNELS=1)
      message(STATUS "genaug: x86-64 baseline + AVX2/FMA + AVX-512 kernels (runtime dispatch)")
    endif()
  else()
    message(STATUS "genaug: ${CMAKE_SYSTEM_PROCESSOR}: portable kernels only")
  endif()
endfunction()
