// The replay/mutation driver shared by the fuzz targets when clang's
// libFuzzer is not available (gcc builds). A driver file supplies its seed
// corpus and its mutation, and main() calls run_fuzz_driver. It runs
// LLVMFuzzerTestOneInput on
//   1. every file named on the command line (a folder: every file in it), then
//   2. -runs=N (default 200000) runs: the seeds as they are, then mutated.
// Options: -runs=N, -seed=S (xorshift seed, default 1), -artifact_prefix=P,
// -dump_seeds=DIR (write the seed corpus there and exit);
// other -flag=value options of libFuzzer are accepted and ignored. A C++
// exception escaping the target counts as a crash (the input is saved as
// <prefix>crash-<run>); a signal saves <prefix>crash-signal and ends the
// process. The last line is "<name>: <runs> runs, <crashes> crashes".
#pragma once
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
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fuzz_driver {

// --- The input being run, for the signal handler -----------------------------

const uint8_t* g_current = nullptr;
size_t g_current_size = 0;
char g_signal_path[4096] = "crash-signal";
const char* g_name = "fuzz";

void write_str(const char* s) {
  ssize_t r = ::write(2, s, std::strlen(s));
  (void)r;
}

void on_signal(int sig) {
  write_str(g_name);
  write_str(": crashed with a signal; the input is saved as ");
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
    std::fprintf(stderr, "%s: run %llu (%s): uncaught exception: %s; input (%zu bytes) saved as %s\n", g_name,
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


// Runs the target on the files named in argv, then on the seeds as they are
// and `-runs` deterministic mutations of them (`mutate` changes one input in
// place; it is called one to four times per run). Prints the summary lines and
// returns the exit status: 0 only when nothing crashed.
inline int run_fuzz_driver(int argc, char** argv, const char* name, const char* seed_noun, const std::vector<Bytes>& seeds,
                           const std::function<void(Bytes&, XorShift&)>& mutate,
                           const std::function<void(Bytes&, XorShift&)>& finish = nullptr) {
  g_name = name;
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
        std::fprintf(stderr, "%s: -runs must be a number, got '%s'\n", name, v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-seed", v)) {
      seed = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') {
        std::fprintf(stderr, "%s: -seed must be a number, got '%s'\n", name, v.c_str());
        return 2;
      }
    } else if (parse_flag(argv[i], "-artifact_prefix", v)) {
      runner.artifact_prefix = v;
    } else if (parse_flag(argv[i], "-dump_seeds", v)) {
      // Writes the seed corpus as files seed-<k> into folder v and exits: the
      // starting corpus of a libFuzzer run (native/tests/corpus/README.md).
      std::error_code ec;
      std::filesystem::create_directories(v, ec);
      for (size_t k = 0; k < seeds.size(); ++k) {
        const std::string path = v + "/seed-" + std::to_string(k);
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(seeds[k].data()), static_cast<std::streamsize>(seeds[k].size()));
        if (!f) {
          std::fprintf(stderr, "%s: cannot write %s\n", name, path.c_str());
          return 2;
        }
      }
      std::printf("%s: %zu seed %s written to %s\n", name, seeds.size(), seed_noun, v.c_str());
      return 0;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "%s: ignoring libFuzzer option %s\n", name, argv[i]);
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
        std::fprintf(stderr, "%s: cannot read %s\n", name, p.string().c_str());
        return 2;
      }
      runner.run(data, p.string());
      ++files;
    }
  }

  // 2. The seed corpus as is, then mutations of it: `mutations` runs in all.
  XorShift rng(seed);
  for (uint64_t r = 0; r < mutations; ++r) {
    if (r < seeds.size()) {
      runner.run(seeds[r], "seed");
      continue;
    }
    Bytes b = seeds[rng.below(seeds.size())];
    const size_t n = 1 + rng.below(4);
    for (size_t k = 0; k < n; ++k) mutate(b, rng);
    if (finish) finish(b, rng);
    runner.run(b, "mutation");
  }

  std::printf("%s: %llu input files, %zu seed %s, xorshift seed %llu\n", name, static_cast<unsigned long long>(files), seeds.size(), seed_noun,
              static_cast<unsigned long long>(seed));
  std::printf("%s: %llu runs, %llu crashes\n", name, static_cast<unsigned long long>(runner.runs),
              static_cast<unsigned long long>(runner.crashes));
  return runner.crashes == 0 ? 0 : 1;
}

}  // namespace fuzz_driver
