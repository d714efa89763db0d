// The small threading toolkit of the core: run a function on T threads (the
// caller's thread is one of them), a reusable barrier, and a first-error slot
// so a failure on any thread reaches the caller after every thread joined.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu.h"
#include "error.h"

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

// The error met first in an order every thread walks upwards (a key: a
// segment, a (sample, channel) pair): a thread stops once an error at a lower
// key than its next one is known and goes on otherwise, so the error reported
// is the one a single thread would have met first, whatever the thread count
// and the timing (a FirstError would report whichever thread failed first).
class LowestError {
 public:
  void capture(int64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_ || key < key_.load(std::memory_order_relaxed)) {
      error_ = std::current_exception();
      key_.store(key, std::memory_order_release);
    }
  }
  // An error at a key below `key` is known: work at `key` and above is moot.
  bool below(int64_t key) const { return key_.load(std::memory_order_acquire) < key; }
  bool failed() const { return key_.load(std::memory_order_acquire) != kNone; }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr int64_t kNone = INT64_MAX;
  std::mutex mu_;
  std::exception_ptr error_;
  std::atomic<int64_t> key_{kNone};
};

// The thread count for a call: 0 means every hardware thread; capped at 256.
inline int resolve_threads(int requested) {
  if (requested < 0) fail("E_RANGE", "threads must be >= 0 (0 = all cores), got ", requested);
  if (requested == 0) return static_cast<int>(hardware_threads());
  return requested < 256 ? requested : 256;
}

// Runs fn(tid) for tid in [0, threads); tid 0 on the calling thread. Any
// exception is rethrown after all threads have joined. fn runs only once every
// thread exists: if the system refuses to start one, the threads already
// started exit without running fn and E_NOMEM is thrown, so code that waits on
// a Barrier(threads) inside fn can never wait for a thread that was not born.
template <typename Fn>
void run_threads(int threads, Fn&& fn) {
  if (threads <= 1) {
    fn(0);
    return;
  }
  FirstError err;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  int gate = 0;  // 0: wait, 1: go, 2: give up
  auto wait_gate = [&]() {
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait(lock, [&] { return gate != 0; });
    return gate == 1;
  };
  auto open_gate = [&](int value) {
    {
      std::lock_guard<std::mutex> lock(gate_mu);
      gate = value;
    }
    gate_cv.notify_all();
  };
  std::vector<std::thread> pool;
  try {
    pool.reserve(static_cast<size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) {
      pool.emplace_back([&, t] {
        if (!wait_gate()) return;
        try {
          fn(t);
        } catch (...) {
          err.capture();
        }
      });
    }
  } catch (const std::exception& e) {
    open_gate(2);
    for (auto& th : pool) th.join();
    fail("E_NOMEM", "could not start ", threads, " threads (", e.what(), "); pass fewer threads");
  }
  open_gate(1);
  try {
    fn(0);
  } catch (...) {
    err.capture();
  }
  for (auto& th : pool) th.join();
  err.rethrow();
}

// Runs fn(i, tid) for every i in [0, n) on `threads` threads (tid in
// [0, threads)), handing out indices in increasing order. After a call throws,
// no new index is started, and the exception rethrown is that of the lowest
// failing index: every lower index was handed out earlier and has finished.
// So for a deterministic fn the error, like the result, does not depend on the
// thread count.
template <typename Fn>
void parallel_for_index(int64_t n, int threads, Fn&& fn) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  int64_t failed_at = n;
  std::exception_ptr error;
  run_threads(threads, [&](int tid) {
    while (!stop.load(std::memory_order_acquire)) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i, tid);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < failed_at) {
          failed_at = i;
          error = std::current_exception();
        }
        stop.store(true, std::memory_order_release);
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace genaug
