// A main() for fuzz targets when clang's libFuzzer is not available (gcc
// builds). It runs LLVMFuzzerTestOneInput on
//   1. every file named on the command line (a folder: every file in it), then
//   2. -runs=N (default 200000) runs of a built-in corpus of
//      .npy headers (v1, v2, v3; many dtypes and shapes), first as they are,
//      then with deterministic random mutations: bit flips, byte
//      changes, truncations, deletions, duplications, insertions of header
//      tokens, and HEADER_LEN rewrites (including "make it consistent", so the
//      mutations reach the dictionary parser instead of stopping at the length).
// Options: -runs=N, -seed=S (xorshift seed, default 1), -artifact_prefix=P
// (where a crashing input is saved, default ./); other -flag=value options of
// libFuzzer are accepted and ignored so the same command line works for both.
//
// A C++ exception escaping the target counts as a crash; the input is saved as
// <prefix>crash-<run> and the driver goes on. A signal (abort, segfault) saves
// the input as <prefix>crash-signal and ends the process. The last line is
// "fuzz_npy: <runs> runs, <crashes> crashes"; the exit status is 0 only when
// there were none.
#include <algorithm>
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// --- The input being run, for the signal handler -----------------------------

const uint8_t* g_current = nullptr;
size_t g_current_size = 0;
char g_signal_path[4096] = "crash-signal";

void write_str(const char* s) {
  ssize_t r = ::write(2, s, std::strlen(s));
  (void)r;
}

void on_signal(int sig) {
  write_str("fuzz_npy: crashed with a signal; the input is saved as ");
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

// --- Deterministic randomness ------------------------------------------------

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

// --- Running -------------------------------------------------------------------

struct Runner {
  std::string artifact_prefix = "./";
  uint64_t runs = 0;
  uint64_t crashes = 0;

  void run(const Bytes& input, const std::string& label) {
    g_current = input.data();
    g_current_size = input.size();
    ++runs;
    try {
      LLVMFuzzerTestOneInput(input.data(), input.size());
    } catch (const std::exception& e) {
      crash(input, label, e.what());
    } catch (...) {
      crash(input, label, "an exception that is not a std::exception");
    }
    g_current = nullptr;
    g_current_size = 0;
  }

  void crash(const Bytes& input, const std::string& label, const char* what) {
    ++crashes;
    const std::string path = artifact_prefix + "crash-" + std::to_string(runs);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
    std::fprintf(stderr, "fuzz_npy: run %llu (%s): uncaught exception: %s; input (%zu bytes) saved as %s\n",
                 static_cast<unsigned long long>(runs), label.c_str(), what, input.size(), path.c_str());
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
        std::fprintf(stderr, "fuzz_npy: -runs must be a number, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-seed", v)) {
      seed = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        std::fprintf(stderr, "fuzz_npy: -seed must be a number, got '%s'\n", v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-artifact_prefix", v)) {
      runner.artifact_prefix = v;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "fuzz_npy: ignoring libFuzzer option %s\n", argv[i]);
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  std::snprintf(g_signal_path, sizeof g_signal_path, "%scrash-signal", runner.artifact_prefix.c_str());
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_signal);

  // 1. Files from the command line.
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
        std::fprintf(stderr, "fuzz_npy: cannot read %s\n", p.string().c_str());
        return 2;
      }
      runner.run(data, p.string());
      ++files;
    }
  }

  // 2. The seed corpus as is, then mutations of it: `mutations` runs in all.
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
    if (rng.chance(3)) set_header_len(b, b.size() >= 12 ? b.size() - prefix_of(b) : 0);
    runner.run(b, "mutation");
  }

  std::printf("fuzz_npy: %llu input files, %zu seed headers, xorshift seed %llu\n", static_cast<unsigned long long>(files), seeds.size(),
              static_cast<unsigned long long>(seed));
  std::printf("fuzz_npy: %llu runs, %llu crashes\n", static_cast<unsigned long long>(runner.runs),
              static_cast<unsigned long long>(runner.crashes));
  return runner.crashes == 0 ? 0 : 1;
}
