// genaug::Error — the one exception type the core throws for anything the
// caller did wrong or anything the machine refused. The binding turns it into
// the JavaScript GenaugError with the same `code`. Codes are listed once, in
// ts/native/errors.ts; test/errors.test.ts checks that every code used here is
// listed there.
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace genaug {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// Builds a message from streamable parts: fail("E_SHAPE", "query has ", n, " rows").
template <typename... Parts>
[[noreturn]] inline void fail(const char* code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(code, os.str());
}

}  // namespace genaug
