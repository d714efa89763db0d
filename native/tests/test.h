// A tiny unit-test framework for the core (no download, no dependency):
// TEST(name) registers a test; CHECK* record failures and go on.
// test_main.cc runs them all and prints "N passed, N failed".
#pragma once
#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cpu.h"
#include "error.h"

namespace gtest_lite {

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}
inline int& failures() {
  static int f = 0;
  return f;
}
struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
inline void report(const char* file, int line, const std::string& what) {
  ++failures();
  std::cerr << "  FAIL " << file << ":" << line << ": " << what << "\n";
}

}  // namespace gtest_lite

#define GA_CAT2(a, b) a##b
#define GA_CAT(a, b) GA_CAT2(a, b)
#define TEST(name)                                                                      \
  static void GA_CAT(test_, name)();                                                    \
  static gtest_lite::Registrar GA_CAT(reg_, name)(#name, GA_CAT(test_, name));          \
  static void GA_CAT(test_, name)()

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) gtest_lite::report(__FILE__, __LINE__, "CHECK(" #cond ")");           \
  } while (0)

#define CHECK_EQ(a, b)                                                                  \
  do {                                                                                  \
    auto va_ = (a);                                                                     \
    auto vb_ = (b);                                                                     \
    if (!(va_ == vb_)) {                                                                \
      std::ostringstream os_;                                                           \
      os_ << "CHECK_EQ(" #a ", " #b "): " << va_ << " != " << vb_;                      \
      gtest_lite::report(__FILE__, __LINE__, os_.str());                                \
    }                                                                                   \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
  do {                                                                                  \
    double va_ = (a), vb_ = (b);                                                        \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                             \
      std::ostringstream os_;                                                           \
      os_ << "CHECK_NEAR(" #a ", " #b "): " << va_ << " vs " << vb_;                    \
      gtest_lite::report(__FILE__, __LINE__, os_.str());                                \
    }                                                                                   \
  } while (0)

#define CHECK_THROWS_CODE(expr, code_str)                                               \
  do {                                                                                  \
    bool thrown_ = false;                                                               \
    try {                                                                               \
      (void)(expr);                                                                     \
    } catch (const genaug::Error& e_) {                                                 \
      thrown_ = true;                                                                   \
      if (e_.code() != (code_str))                                                      \
        gtest_lite::report(__FILE__, __LINE__, std::string("expected ") + (code_str) + ", got " + e_.code() + ": " + e_.what()); \
    } catch (const std::exception& e_) {                                                \
      thrown_ = true;                                                                   \
      gtest_lite::report(__FILE__, __LINE__, std::string("expected genaug::Error, got ") + e_.what()); \
    }                                                                                   \
    if (!thrown_) gtest_lite::report(__FILE__, __LINE__, "expected " #expr " to throw " code_str); \
  } while (0)

// Every SIMD level this CPU runs, scalar first: tests pin each kernel family
// to each of them in turn and compare it with the scalar reference.
inline std::vector<genaug::Isa> available_isas() {
  std::vector<genaug::Isa> out{genaug::Isa::Scalar};
  if (genaug::cpu_info().avx2_fma) out.push_back(genaug::Isa::Avx2);
  if (genaug::cpu_info().avx512) out.push_back(genaug::Isa::Avx512);
  return out;
}
