// The no-clang driver of fuzz_npy: its seed corpus (.npy headers v1, v2, v3;
// many dtypes and shapes) and its mutations (bit flips, byte changes,
// truncations, deletions, duplications, insertions of header tokens, and
// HEADER_LEN rewrites, including "make it consistent", so the mutations reach
// the dictionary parser instead of stopping at the length).
// The shared machinery (runner, signals, options) is fuzz_driver_common.h.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_driver_common.h"
#include "npy.h"

using namespace fuzz_driver;

namespace {


// --- Seed corpus: headers exactly as numpy writes them -----------------------

Bytes header(const std::string& dict, int major, size_t data_bytes = 0) {
  const size_t prefix = major == 1 ? 10 : 12;
  size_t hlen = dict.size() + 1;
  hlen += (64 - (prefix + hlen) % 64) % 64;
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  for (size_t i = 0; i < prefix - 8; ++i) out.push_back(static_cast<uint8_t>((hlen >> (8 * i)) & 0xff));
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), hlen - dict.size() - 1, ' ');
  out.push_back('\n');
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(i * 37));
  return out;
}

std::string dict(const std::string& descr, const std::string& shape, const char* fortran = "False") {
  std::string d = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  return d + std::string(20, ' ');
}

std::vector<Bytes> seed_corpus() {
  std::vector<Bytes> seeds;
  const char* descrs[] = {"<f4", "<f2", "<f8", "<i4", "<i8", "|u1", "<u1", "|i1", "|b1", "<u2", "<i2", "<u4", "<u8", ">f4", "<c8", "|O"};
  for (const char* d : descrs) seeds.push_back(header(dict(d, "(2, 3)"), 1));
  const char* shapes[] = {"()", "(0,)", "(5,)", "(1, 1)", "(0, 512)", "(2, 3, 4)", "(3L, 4L)", "(1, 2, 3, 4, 5, 6, 7, 8)",
                          "(9223372036854775807,)", "(4294967296, 4294967296)"};
  for (const char* s : shapes) seeds.push_back(header(dict("<f4", s), 1));
  seeds.push_back(header(dict("<f4", "(2, 3)"), 1, 24));
  seeds.push_back(header(dict("<f4", "(2, 3)", "True"), 1));
  for (int major : {2, 3}) {
    seeds.push_back(header(dict("<f8", "(4,)"), major, 32));
    seeds.push_back(header(dict("<f2", "(3, 2)"), major));
  }
  seeds.push_back(header("{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}", 1));
  seeds.push_back(header("{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (1, 1)}", 1));
  seeds.push_back(header("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", 1));
  return seeds;
}

// --- Mutations -----------------------------------------------------------------

const char* const kTokens[] = {
    "'shape': (", "'descr': '", "'fortran_order': ", "True", "False", "(", ")", ",", ", ", ":", "{", "}", "'", "\"",
    "\n", " ", "\\", "L", "0", "1", "9", "-1", "99999999999999999999", "4294967296", "<f4", ">f4", "|b1", "[", "]",
    "\x93NUMPY", "\x00", "\xc3\xa9", "\xff",
};

size_t prefix_of(const Bytes& b) { return b.size() > 6 && b[6] == 1 ? 10 : 12; }

void set_header_len(Bytes& b, uint64_t hl) {
  if (b.size() < 12) return;
  const size_t width = prefix_of(b) == 10 ? 2 : 4;
  for (size_t i = 0; i < width; ++i) b[8 + i] = static_cast<uint8_t>((hl >> (8 * i)) & 0xff);
}

void mutate(Bytes& b, XorShift& rng) {
  switch (rng.below(11)) {
    case 0:  // flip a bit
      if (!b.empty()) b[rng.below(b.size())] ^= static_cast<uint8_t>(1u << rng.below(8));
      break;
    case 1: {  // change a byte, often to a header-ish character
      if (b.empty()) break;
      static const char kChars[] = "(){}[],:'\" \n0123456789LTFx<>|";
      b[rng.below(b.size())] = rng.chance(2) ? static_cast<uint8_t>(rng.next()) : static_cast<uint8_t>(kChars[rng.below(sizeof kChars - 1)]);
      break;
    }
    case 2:  // truncate
      b.resize(rng.below(b.size() + 1));
      break;
    case 3:
    case 4: {  // insert a token
      const char* t = kTokens[rng.below(std::size(kTokens))];
      const size_t len = t[0] == 0 ? 1 : std::strlen(t);
      const size_t at = rng.below(b.size() + 1);
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), t, t + len);
      break;
    }
    case 5: {  // delete a range
      if (b.empty()) break;
      const size_t at = rng.below(b.size());
      const size_t len = 1 + rng.below(std::min<size_t>(16, b.size() - at));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
      break;
    }
    case 6: {  // duplicate a range
      if (b.empty() || b.size() > 4096) break;
      const size_t at = rng.below(b.size());
      const size_t len = 1 + rng.below(std::min<size_t>(32, b.size() - at));
      const Bytes piece(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
      const size_t to = rng.below(b.size() + 1);
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(to), piece.begin(), piece.end());
      break;
    }
    case 7: {  // an interesting HEADER_LEN
      static const uint64_t kLens[] = {0, 1, 2, 0x7fff, 0xffff, 0x10000, 1u << 20, (1u << 20) + 1, 0x7fffffff, 0xffffffff};
      if (b.size() >= 12) set_header_len(b, rng.chance(2) ? kLens[rng.below(std::size(kLens))] : (b.size() - prefix_of(b)) + rng.below(5) - 2);
      break;
    }
    case 8:  // change the version
      if (b.size() > 7) b[6 + rng.below(2)] = static_cast<uint8_t>(rng.below(5));
      break;
    case 9: {  // replace a digit with a long run of digits
      for (size_t tries = 0; tries < 8 && !b.empty(); ++tries) {
        const size_t at = rng.below(b.size());
        if (b[at] >= '0' && b[at] <= '9') {
          const std::string digits(1 + rng.below(24), static_cast<char>('0' + rng.below(10)));
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), digits.begin(), digits.end());
          break;
        }
      }
      break;
    }
    default:  // HEADER_LEN made consistent with the bytes that are there
      if (b.size() >= 12) set_header_len(b, b.size() - prefix_of(b));
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return run_fuzz_driver(argc, argv, "fuzz_npy", "headers", seed_corpus(), mutate, [](Bytes& b, XorShift& rng) {
    if (rng.chance(3)) set_header_len(b, b.size() >= 12 ? b.size() - prefix_of(b) : 0);
  });
}
