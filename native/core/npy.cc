#include "npy.h"

#include <cstring>
#include <limits>

#include "error.h"

namespace genaug {

namespace {

const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

struct Cursor {
  const char* p;
  const char* end;
  const std::string& file;

  void skip_ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  [[noreturn]] void bad(const char* what) const { fail("E_FORMAT", file, ": malformed .npy header: ", what); }
  bool eat(char c) {
    skip_ws();
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }
  void expect(char c, const char* what) {
    if (!eat(c)) bad(what);
  }
  std::string str() {
    skip_ws();
    if (p >= end || (*p != '\'' && *p != '"')) bad("expected a quoted string");
    const char q = *p++;
    const char* s = p;
    while (p < end && *p != q) {
      if (*p == '\\') bad("escapes are not allowed in header strings");
      ++p;
    }
    if (p >= end) bad("unterminated string");
    std::string out(s, static_cast<size_t>(p - s));
    ++p;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (end - p >= 4 && std::memcmp(p, "True", 4) == 0) {
      p += 4;
      return true;
    }
    if (end - p >= 5 && std::memcmp(p, "False", 5) == 0) {
      p += 5;
      return false;
    }
    bad("fortran_order must be True or False");
  }
  int64_t integer() {
    skip_ws();
    if (p >= end || *p < '0' || *p > '9') bad("shape entries must be non-negative integers");
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
      const int digit = *p - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) bad("a shape entry is too large");
      v = v * 10 + digit;
      ++p;
    }
    if (p < end && (*p == 'L' || *p == 'l')) ++p;  // Python 2 longs
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(', "shape must be a tuple");
    std::vector<int64_t> dims;
    skip_ws();
    if (eat(')')) return dims;
    for (;;) {
      if (dims.size() >= 32) bad("shape has more than 32 dimensions");
      dims.push_back(integer());
      if (eat(')')) break;
      expect(',', "expected ',' or ')' in shape");
      if (eat(')')) break;
    }
    return dims;
  }
};

void dtype_of(const std::string& descr, NpyHeader& h, const std::string& file) {
  struct Known {
    const char* descr;
    const char* name;
    int size;
  };
  static const Known known[] = {
      {"<f4", "float32", 4}, {"<f2", "float16", 2}, {"<f8", "float64", 8}, {"<i4", "int32", 4},
      {"<i8", "int64", 8},   {"|u1", "uint8", 1},   {"<u1", "uint8", 1},   {"|i1", "int8", 1},
      {"|b1", "bool", 1},    {"<u2", "uint16", 2},  {"<i2", "int16", 2},   {"<u4", "uint32", 4},
      {"<u8", "uint64", 8},
  };
  for (const auto& k : known) {
    if (descr == k.descr) {
      h.dtype = k.name;
      h.itemsize = k.size;
      return;
    }
  }
  if (!descr.empty() && descr[0] == '>')
    fail("E_DTYPE", file, ": dtype '", descr, "' is big-endian; genaug reads little-endian .npy files (numpy: arr.astype(arr.dtype.newbyteorder('<')))");
  fail("E_DTYPE", file, ": dtype '", descr, "' is not supported (supported: <f4 <f2 <f8 <i4 <i8 |u1 |i1 |b1 <i2 <u2 <u4 <u8)");
}

}  // namespace

int64_t npy_header_length(const uint8_t* bytes, size_t len) {
  if (len < 10 || std::memcmp(bytes, kMagic, 6) != 0) return -1;
  const int major = bytes[6];
  if (major == 1) return 10 + (static_cast<int64_t>(bytes[8]) | (static_cast<int64_t>(bytes[9]) << 8));
  if ((major == 2 || major == 3) && len >= 12) {
    const int64_t hl = static_cast<int64_t>(bytes[8]) | (static_cast<int64_t>(bytes[9]) << 8) |
                       (static_cast<int64_t>(bytes[10]) << 16) | (static_cast<int64_t>(bytes[11]) << 24);
    return 12 + hl;
  }
  return -1;
}

NpyHeader parse_npy_header(const uint8_t* bytes, size_t len, const std::string& name, int64_t* needed) {
  if (needed) *needed = 0;
  if (len < 10 || std::memcmp(bytes, kMagic, 6) != 0)
    fail("E_FORMAT", name, ": not an .npy file (it does not start with the \\x93NUMPY magic)");
  NpyHeader h;
  h.major = bytes[6];
  h.minor = bytes[7];
  if (h.major < 1 || h.major > 3 || h.minor != 0)
    fail("E_FORMAT", name, ": unsupported .npy format version ", h.major, ".", h.minor, " (supported: 1.0, 2.0, 3.0)");
  size_t prefix = h.major == 1 ? 10 : 12;
  if (len < prefix) {
    if (needed) *needed = static_cast<int64_t>(prefix);
    fail("E_FORMAT", name, ": truncated .npy header");
  }
  int64_t hl = 0;
  if (h.major == 1) {
    hl = static_cast<int64_t>(bytes[8]) | (static_cast<int64_t>(bytes[9]) << 8);
  } else {
    hl = static_cast<int64_t>(bytes[8]) | (static_cast<int64_t>(bytes[9]) << 8) |
         (static_cast<int64_t>(bytes[10]) << 16) | (static_cast<int64_t>(bytes[11]) << 24);
  }
  if (hl > kNpyMaxHeaderBytes)
    fail("E_FORMAT", name, ": .npy header length ", hl, " exceeds the ", kNpyMaxHeaderBytes, "-byte limit");
  if (static_cast<int64_t>(len) < static_cast<int64_t>(prefix) + hl) {
    if (needed) *needed = static_cast<int64_t>(prefix) + hl;
    fail("E_FORMAT", name, ": truncated .npy header (", hl, " header bytes announced, ", len - prefix, " present)");
  }
  const char* s = reinterpret_cast<const char*>(bytes + prefix);
  for (int64_t i = 0; i < hl; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0 || (c >= 0x80 && h.major < 3))
      fail("E_FORMAT", name, ": .npy header contains a non-ASCII or NUL byte at offset ", prefix + i);
  }
  Cursor cur{s, s + hl, name};
  cur.expect('{', "expected '{'");
  bool have_descr = false, have_fortran = false, have_shape = false;
  for (;;) {
    if (cur.eat('}')) break;
    const std::string key = cur.str();
    cur.expect(':', "expected ':' after a key");
    if (key == "descr") {
      if (have_descr) cur.bad("duplicate key 'descr'");
      cur.skip_ws();
      if (cur.p < cur.end && *cur.p == '[') cur.bad("structured dtypes are not supported");
      h.descr = cur.str();
      have_descr = true;
    } else if (key == "fortran_order") {
      if (have_fortran) cur.bad("duplicate key 'fortran_order'");
      h.fortran_order = cur.boolean();
      have_fortran = true;
    } else if (key == "shape") {
      if (have_shape) cur.bad("duplicate key 'shape'");
      h.shape = cur.tuple();
      have_shape = true;
    } else {
      fail("E_FORMAT", name, ": malformed .npy header: unexpected key '", key, "'");
    }
    if (cur.eat('}')) break;
    cur.expect(',', "expected ',' or '}' after a value");
  }
  cur.skip_ws();
  if (cur.p != cur.end) cur.bad("trailing characters after the header dictionary");
  if (!have_descr) fail("E_FORMAT", name, ": .npy header has no 'descr' field");
  if (!have_fortran) fail("E_FORMAT", name, ": .npy header has no 'fortran_order' field");
  if (!have_shape) fail("E_FORMAT", name, ": .npy header has no 'shape' field");
  dtype_of(h.descr, h, name);
  // Fortran order (numpy's layout for a transposed array) is parsed; the reader reorders the data to C order.
  int64_t count = 1;
  for (int64_t d : h.shape) {
    if (d != 0 && count > (std::numeric_limits<int64_t>::max() / 16) / d)
      fail("E_FORMAT", name, ": .npy shape is too large");
    count *= d;
  }
  h.count = count;
  h.data_bytes = count * h.itemsize;
  h.data_offset = static_cast<int64_t>(prefix) + hl;
  return h;
}

}  // namespace genaug
