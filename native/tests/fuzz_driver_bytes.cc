// The no-clang driver of the structured fuzz targets (fuzz_polygon,
// fuzz_layout, fuzz_composite), whose inputs are streams of small decisions
// (fuzz_input.h) rather than a file format: its seeds are the corpus files
// named on the command line (native/tests/corpus/<target>/) plus 64 random
// byte strings, and its mutations work on bytes (bit flips, new bytes, small
// increments, truncations, deletions, duplications, insertions, splices of
// another seed). FUZZ_NAME names the target in its output.
// The shared machinery (runner, signals, options) is fuzz_driver_common.h.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_driver_common.h"

#ifndef FUZZ_NAME
#define FUZZ_NAME "fuzz"
#endif

using namespace fuzz_driver;

namespace {

std::vector<Bytes> g_seeds;

void mutate(Bytes& b, XorShift& rng) {
  switch (rng.below(9)) {
    case 0:
      if (!b.empty()) b[rng.below(b.size())] ^= static_cast<uint8_t>(1u << rng.below(8));
      break;
    case 1:
      if (!b.empty()) b[rng.below(b.size())] = static_cast<uint8_t>(rng.next());
      break;
    case 2:  // a small step: sizes and table indices move to their neighbours
      if (!b.empty()) b[rng.below(b.size())] += static_cast<uint8_t>(rng.chance(2) ? 1 : 255);
      break;
    case 3:
      b.resize(rng.below(b.size() + 1));
      break;
    case 4: {
      const size_t at = rng.below(b.size() + 1), n = 1 + rng.below(8);
      for (size_t k = 0; k < n; ++k) b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng.next()));
      break;
    }
    case 5:
      if (!b.empty()) {
        const size_t at = rng.below(b.size()), len = 1 + rng.below(std::min<size_t>(16, b.size() - at));
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
      }
      break;
    case 6:
      if (!b.empty() && b.size() < 4096) {
        const size_t at = rng.below(b.size()), len = 1 + rng.below(std::min<size_t>(32, b.size() - at));
        const Bytes piece(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng.below(b.size() + 1)), piece.begin(), piece.end());
      }
      break;
    case 7:  // a byte from the special end of fuzz_input's tables (limits, NaN, raw doubles)
      if (!b.empty()) b[rng.below(b.size())] = static_cast<uint8_t>(224 + rng.below(32));
      break;
    default: {  // splice: the tail of another seed
      const Bytes& o = g_seeds[rng.below(g_seeds.size())];
      const size_t at = rng.below(b.size() + 1), from = rng.below(o.size() + 1);
      b.resize(at);
      b.insert(b.end(), o.begin() + static_cast<std::ptrdiff_t>(from), o.end());
      break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;
    std::error_code ec;
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(argv[i], ec)) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i], ec))
        if (e.is_regular_file(ec)) paths.push_back(e.path());
    } else {
      paths.emplace_back(argv[i]);
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      Bytes b;
      if (read_file(p, b)) g_seeds.push_back(std::move(b));
    }
  }
  XorShift rng(20261207);
  for (int k = 0; k < 64; ++k) {
    Bytes b(rng.below(160));
    for (auto& v : b) v = static_cast<uint8_t>(rng.next());
    g_seeds.push_back(std::move(b));
  }
  return run_fuzz_driver(argc, argv, FUZZ_NAME, "inputs", g_seeds, mutate);
}
