// Fuzz target for the .npy header parser. Built with clang it is a libFuzzer
// target (-fsanitize=fuzzer); otherwise fuzz_driver.cc supplies main().
//
// The parser may reject any input, but only by throwing genaug::Error with
// E_FORMAT or E_DTYPE. Anything else (another exception, a crash, a sanitizer
// report) is a bug, and so is an accepted header that breaks an invariant.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "error.h"
#include "fuzz_require.h"
#include "npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string name = "fuzz.npy";
  int64_t needed = -1;
  try {
    const genaug::NpyHeader h = genaug::parse_npy_header(data, size, name, &needed);
    FUZZ_REQUIRE(needed == 0);
    FUZZ_REQUIRE(h.major >= 1 && h.major <= 3 && h.minor == 0);
    FUZZ_REQUIRE(h.data_offset > 0 && h.data_offset <= static_cast<int64_t>(size));
    FUZZ_REQUIRE(h.data_offset - (h.major == 1 ? 10 : 12) <= genaug::kNpyMaxHeaderBytes);
    FUZZ_REQUIRE(genaug::npy_header_length(data, size) == h.data_offset);
    FUZZ_REQUIRE(!h.dtype.empty());
    FUZZ_REQUIRE(h.itemsize == 1 || h.itemsize == 2 || h.itemsize == 4 || h.itemsize == 8);
    FUZZ_REQUIRE(!h.descr.empty() && h.descr[0] != '>');
    FUZZ_REQUIRE(h.shape.size() <= 32);
    int64_t count = 1;
    for (int64_t d : h.shape) {
      FUZZ_REQUIRE(d >= 0);
      FUZZ_REQUIRE(d == 0 || count <= std::numeric_limits<int64_t>::max() / d);
      count *= d;
    }
    FUZZ_REQUIRE(h.count == count);
    FUZZ_REQUIRE(h.count <= std::numeric_limits<int64_t>::max() / h.itemsize);
    FUZZ_REQUIRE(h.data_bytes == h.count * h.itemsize);
  } catch (const genaug::Error& e) {
    FUZZ_REQUIRE(e.code() == "E_FORMAT" || e.code() == "E_DTYPE");
    FUZZ_REQUIRE(std::string(e.what()).compare(0, name.size(), name) == 0);  // names the file
    // When the parser asks for more bytes, it asks for more than it was given and
    // never for more than the header cap allows.
    FUZZ_REQUIRE(needed >= 0);
    FUZZ_REQUIRE(needed == 0 || (needed > static_cast<int64_t>(size) && needed <= genaug::kNpyMaxHeaderBytes + 12));
    FUZZ_REQUIRE(needed == 0 || e.code() == "E_FORMAT");
  }
  return 0;
}
