// Strict parser for the header of a NumPy .npy file (format versions 1.0,
// 2.0 and 3.0). It never trusts a length it has not checked against the bytes
// it was given, so it is safe on arbitrary input (see native/tests/fuzz_npy.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace genaug {

struct NpyHeader {
  int major = 0;
  int minor = 0;
  std::string descr;      // as written, e.g. "<f4"
  std::string dtype;      // genaug's name: float32 float16 float64 int32 int64 uint8 int8
  int itemsize = 0;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  int64_t data_offset = 0;  // bytes from the start of the file
  int64_t count = 0;        // number of elements (product of shape)
  int64_t data_bytes = 0;   // count * itemsize
};

constexpr int64_t kNpyMaxHeaderBytes = 1 << 20;

// Parses the header from the first `len` bytes of a file named `name` (used in
// messages). When `len` is too short to hold the whole header, throws
// E_FORMAT saying so; `needed` (if not null) then receives the number of bytes
// required, or 0 when the file is not an .npy file at all.
NpyHeader parse_npy_header(const uint8_t* bytes, size_t len, const std::string& name, int64_t* needed = nullptr);

// Bytes needed to read the header of a file starting with `bytes` (at least 12
// bytes), or -1 when it does not start with the .npy magic.
int64_t npy_header_length(const uint8_t* bytes, size_t len);

}  // namespace genaug
