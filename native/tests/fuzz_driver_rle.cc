// A main() for fuzz_rle when clang's libFuzzer is not available (gcc builds).
// (fuzz_driver.cc is the .npy target's driver: its seeds and mutations are
// .npy headers.) It runs LLVMFuzzerTestOneInput on
//   1. every file named on the command line (a folder: every file in it), then
//   2. -runs=N (default 200000) runs: a built-in corpus of valid inputs
//      (two size bytes + the RLE string of a random mask of that size, plus
//      hand-picked strings), first as they are, then mutated deterministically:
//      bit flips, characters near the '0'..'o' range, truncations, deletions,
//      duplications, insertions, size changes.
// Options: -runs=N, -seed=S (xorshift seed, default 1), -artifact_prefix=P;
// other -flag=value options of libFuzzer are accepted and ignored.
// A C++ exception escaping the target counts as a crash (the input is saved as
// <prefix>crash-<run>); a signal saves <prefix>crash-signal and ends the
// process. The last line is "fuzz_rle: <runs> runs, <crashes> crashes"; the
// exit status is 0 only when there were none.
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "rle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

const uint8_t* g_current = nullptr;
size_t g_current_size = 0;
char g_signal_path[4096] = "crash-signal";

void write_str(const char* s) {
  ssize_t r = ::write(2, s, std::strlen(s));
  (void)r;
}

void on_signal(int sig) {
  write_str("fuzz_rle: crashed with a signal; the input is saved as ");
  write_str(g_signal_path);
  write_str("\n");
  const int fd = ::open(g_signal_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t done = 0;
    while (g_current && done < g_current_size) {
      const ssize_t w = ::write(fd, g_current + done, g_current_size - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    ::close(fd);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

struct XorShift {
  uint64_t s;
  explicit XorShift(uint64_t seed) : s(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
  bool chance(unsigned one_in) { return below(one_in) == 0; }
};

using Bytes = std::vector<uint8_t>;

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

struct Runner {
  std::string artifact_prefix = "./";
  uint64_t runs = 0;
  uint64_t crashes = 0;

  void run(const Bytes& in, const std::string& label) {
    g_current = in.data();
    g_current_size = in.size();
    ++runs;
    try {
      LLVMFuzzerTestOneInput(in.data(), in.size());
    } catch (const std::exception& e) {
      crash(in, label, e.what());
    } catch (...) {
      crash(in, label, "an exception that is not a std::exception");
    }
    g_current = nullptr;
    g_current_size = 0;
  }

  void crash(const Bytes& in, const std::string& label, const char* what) {
    ++crashes;
    const std::string path = artifact_prefix + "crash-" + std::to_string(runs);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
    std::fprintf(stderr, "fuzz_rle: run %llu (%s): uncaught exception: %s; input (%zu bytes) saved as %s\n",
                 static_cast<unsigned long long>(runs), label.c_str(), what, in.size(), path.c_str());
  }
};

bool read_file(const std::filesystem::path& p, Bytes& out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

bool parse_flag(const char* arg, const char* name, std::string& value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  value = arg + n + 1;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mutations = 200000;
  uint64_t seed = 1;
  Runner runner;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    char* end = nullptr;
    if (parse_flag(argv[i], "-runs", v)) {
      mutations = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        std::fprintf(stderr, "fuzz_rle: -runs must be a number, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-seed", v)) {
      seed = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        std::fprintf(stderr, "fuzz_rle: -seed must be a number, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-artifact_prefix", v)) {
      runner.artifact_prefix = v;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "fuzz_rle: ignoring libFuzzer option %s\n", argv[i]);
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  std::snprintf(g_signal_path, sizeof g_signal_path, "%scrash-signal", runner.artifact_prefix.c_str());
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_signal);

  uint64_t files = 0;
  for (const std::string& in : inputs) {
    std::error_code ec;
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(in, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(in, ec))
        if (entry.is_regular_file(ec)) paths.push_back(entry.path());
    } else {
      paths.emplace_back(in);
    }
    for (const auto& p : paths) {
      Bytes data;
      if (!read_file(p, data)) {
        std::fprintf(stderr, "fuzz_rle: cannot read %s\n", p.string().c_str());
        return 2;
      }
      runner.run(data, p.string());
      ++files;
    }
  }

  const std::vector<Bytes> seeds = seed_corpus();
  XorShift rng(seed);
  for (uint64_t r = 0; r < mutations; ++r) {
    if (r < seeds.size()) {
      runner.run(seeds[r], "seed");
      continue;
    }
    Bytes b = seeds[rng.below(seeds.size())];
    const size_t n = 1 + rng.below(4);
    for (size_t k = 0; k < n; ++k) mutate(b, rng);
    runner.run(b, "mutation");
  }
  std::printf("fuzz_rle: %llu input files, %zu seed inputs, xorshift seed %llu\n", static_cast<unsigned long long>(files),
              seeds.size(), static_cast<unsigned long long>(seed));
  std::printf("fuzz_rle: %llu runs, %llu crashes\n", static_cast<unsigned long long>(runner.runs),
              static_cast<unsigned long long>(runner.crashes));
  return runner.crashes == 0 ? 0 : 1;
}
