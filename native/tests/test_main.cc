#include <cstring>

#include "test.h"

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (auto& c : gtest_lite::registry()) {
    if (filter && std::strstr(c.name, filter) == nullptr) continue;
    const int before = gtest_lite::failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      gtest_lite::report(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    if (gtest_lite::failures() == before) {
      ++passed;
    } else {
      ++failed;
      std::cerr << "FAILED " << c.name << "\n";
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
