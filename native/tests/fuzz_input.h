// Reading a fuzz input as a stream of small decisions (shared by the
// structured fuzz targets: polygons, compositor, CLIS-L). Every read is
// defined on every input: past the end, reads return 0, so a short input is
// a valid (small) case. Bulk data (pixels, crops) comes from a xorshift
// seeded by the input, so inputs stay small and libFuzzer's mutations act on
// the structure: sizes, counts, coordinates, options.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace fuzz_input {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}

  uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint64_t u64() {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= static_cast<uint64_t>(u8()) << (8 * k);
    return v;
  }
  // 0 .. n-1.
  size_t below(size_t n) { return n == 0 ? 0 : u8() % n; }
  bool flag() { return u8() & 1; }
  bool empty() const { return i_ >= n_; }

  // A coordinate: mostly small values with a fraction (what annotations
  // hold), sometimes one of the values that break arithmetic, sometimes a
  // raw double. Finite values in (1e4, 2^24) are folded below 1e3: they are
  // legal but make one call cost up to a second (a boundary of 2^26 points),
  // which would only slow the fuzzer down.
  double coord() {
    const uint8_t tag = u8();
    if (tag < 224) return (static_cast<int>(tag) - 48) * 0.5 + u8() / 256.0;
    static const double kSpecial[] = {
        std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
        1e300, -1e300, 16777216.0, -16777216.0, 16777217.0, 1e-300, -0.0, 0.0, 0.5, -0.5, 1e12, -1e12, 1e12 + 1,
        2147483647.0, -2147483648.0, 4294967296.0, 1e-9, 63.5, 64.0, 255.5, 1e13,
    };
    const size_t k = tag - 224;
    if (k < sizeof kSpecial / sizeof kSpecial[0]) return kSpecial[k];
    double v;
    const uint64_t bits = u64();
    std::memcpy(&v, &bits, sizeof v);
    if (std::isfinite(v) && std::fabs(v) > 1e4 && std::fabs(v) < 16777216.0) v = std::fmod(v, 1e3);
    return v;
  }

  // A size: mostly 0..max-1, sometimes a value past a limit (negative, huge).
  int64_t size(int64_t max, const int64_t* special = nullptr, size_t nspecial = 0) {
    const uint8_t tag = u8();
    if (tag < 240 || nspecial == 0) return static_cast<int64_t>(tag % max);
    return special[(tag - 240) % nspecial];
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

struct XorShift {
  uint64_t s;
  explicit XorShift(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// n bytes from a seeded xorshift; `density` (0..255) is the chance that a
// byte is nonzero, for masks and alpha; 255: any byte.
inline std::vector<uint8_t> fill(size_t n, uint64_t seed, uint8_t density) {
  std::vector<uint8_t> v(n);
  XorShift r(seed);
  for (auto& b : v) {
    const uint64_t x = r.next();
    b = density == 255 ? static_cast<uint8_t>(x >> 24) : ((x & 255) < density ? static_cast<uint8_t>(1 + (x >> 8) % 255) : 0);
  }
  return v;
}

}  // namespace fuzz_input
