// The no-clang driver of fuzz_rle: its seed corpus (two size bytes + the RLE
// string of a random mask of that size, plus hand-picked strings) and its
// mutations (bit flips, characters near the '0'..'o' range, truncations,
// deletions, duplications, insertions, size changes).
// The shared machinery (runner, signals, options) is fuzz_driver_common.h.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_driver_common.h"
#include "rle.h"

using namespace fuzz_driver;

namespace {


Bytes input(uint8_t h, uint8_t w, const std::string& s) {
  Bytes b;
  b.reserve(2 + s.size());
  b.push_back(h);
  b.push_back(w);
  for (char c : s) b.push_back(static_cast<uint8_t>(c));
  return b;
}

std::vector<Bytes> seed_corpus() {
  std::vector<Bytes> seeds;
  XorShift rng(12345);
  const int sizes[][2] = {{0, 0}, {1, 1}, {1, 7}, {7, 1}, {2, 3}, {5, 5}, {13, 17}, {47, 47}, {32, 9}};
  for (const auto& hw : sizes) {
    const int h = hw[0], w = hw[1];
    for (int density : {0, 2, 30, 50, 90, 100}) {
      std::vector<uint8_t> m(static_cast<size_t>(h * w));
      for (auto& v : m) v = rng.below(100) < static_cast<size_t>(density);
      const std::vector<uint32_t> c = genaug::rle_encode(m.data(), h, w);
      seeds.push_back(input(static_cast<uint8_t>(h), static_cast<uint8_t>(w), genaug::rle_to_string(c.data(), c.size())));
    }
  }
  for (const char* s : {"", "0", "6", "06", "`0", "T3", "PPPP1", "123O", "0n0:\\O", "o", "O", "P", "PPPPPPP0", "0p"})
    seeds.push_back(input(2, 3, s));
  return seeds;
}

void mutate(Bytes& b, XorShift& rng) {
  switch (rng.below(8)) {
    case 0:
      if (b.size() > 2) b[2 + rng.below(b.size() - 2)] ^= static_cast<uint8_t>(1u << rng.below(8));
      break;
    case 1:  // a character around the alphabet '0'..'o'
      if (b.size() > 2) b[2 + rng.below(b.size() - 2)] = static_cast<uint8_t>(40 + rng.below(80));
      break;
    case 2:
      b.resize(2 + rng.below(b.size() - 1));
      break;
    case 3: {
      const size_t at = 2 + rng.below(b.size() - 1);
      const size_t n = 1 + rng.below(4);
      for (size_t k = 0; k < n; ++k)
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng.chance(8) ? rng.next() : 48 + rng.below(64)));
      break;
    }
    case 4:
      if (b.size() > 2) {
        const size_t at = 2 + rng.below(b.size() - 2);
        const size_t len = 1 + rng.below(std::min<size_t>(8, b.size() - at));
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
      }
      break;
    case 5:
      if (b.size() > 2 && b.size() < 8192) {
        const size_t at = 2 + rng.below(b.size() - 2);
        const size_t len = 1 + rng.below(std::min<size_t>(16, b.size() - at));
        const Bytes piece(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
        const size_t to = 2 + rng.below(b.size() - 1);
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(to), piece.begin(), piece.end());
      }
      break;
    case 6:  // another size
      b[rng.below(2)] = static_cast<uint8_t>(rng.below(48));
      break;
    default:  // swap the two sizes (transposed masks)
      std::swap(b[0], b[1]);
      break;
  }
}

}  // namespace

int main(int argc, char** argv) { return run_fuzz_driver(argc, argv, "fuzz_rle", "inputs", seed_corpus(), mutate); }
