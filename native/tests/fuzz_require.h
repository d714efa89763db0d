// The invariant check of the fuzz targets: a result that breaks what the
// parser promises aborts, which libFuzzer and the replay driver report as a
// crash with the input that caused it. `size` is the entry point's input size.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace fuzz_require {

[[noreturn]] inline void violated(const char* file, const char* what, size_t size) {
  std::fprintf(stderr, "%s: invariant violated: %s (input of %zu bytes)\n", file, what, size);
  std::abort();
}

}  // namespace fuzz_require

#define FUZZ_REQUIRE(cond) \
  do {                     \
    if (!(cond)) ::fuzz_require::violated(__FILE__, #cond, size); \
  } while (0)
