// The small threading toolkit of the core: run a function on T threads (the
// caller's thread is one of them), a reusable barrier, and a first-error slot
// so a failure on any thread reaches the caller after every thread joined.
#pragma once
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace genaug {

class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const long gen = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return gen != generation_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
  int arrived_ = 0;
  long generation_ = 0;
};

class FirstError {
 public:
  void capture() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::current_exception();
    failed_ = true;
  }
  bool failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  mutable std::mutex mu_;
  std::exception_ptr error_;
  bool failed_ = false;
};

// Runs fn(tid) for tid in [0, threads); tid 0 on the calling thread. Any
// exception is rethrown after all threads have joined.
template <typename Fn>
void run_threads(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  FirstError err;
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        fn(t);
      } catch (...) {
        err.capture();
      }
    });
  }
  try {
    fn(0);
  } catch (...) {
    err.capture();
  }
  for (auto& th : pool) th.join();
  err.rethrow();
}

}  // namespace genaug
