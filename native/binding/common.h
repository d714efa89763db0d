// Shared N-API glue: the per-environment data (the GenaugError constructor
// handed in by ts/native/load.ts), argument readers that throw GenaugError
// instead of asserting, and run_job(), which runs a core call either on the
// libuv pool (returning a Promise) or inline (the synchronous twin), catching
// every C++ exception into a GenaugError with a code.
#pragma once
#include <napi.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "cpu.h"
#include "error.h"
#include "mask.h"
#include "similarity.h"

namespace genaug::binding {

struct AddonData {
  Napi::FunctionReference error_class;
};

// Builds a GenaugError(code, message) (a plain Error with .code when the
// class was not registered yet).
Napi::Object make_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, const std::string& code, const std::string& message);

template <typename... Parts>
[[noreturn]] void throw_js(Napi::Env env, const char* code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw_error(env, code, os.str());
}

// Runs a core call on the JS thread: a genaug::Error becomes a GenaugError.
template <typename Fn>
void checked(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const genaug::Error& e) {
    throw_error(env, e.code(), e.what());
  }
}

// Argument readers: `what` names the argument in messages.
// How a value that is not what was expected looks, for messages: "Float64Array", "an array", "null".
const char* type_name(const Napi::Value& v);

// Argument i, or undefined past the end.
Napi::Value arg_value(const Napi::CallbackInfo& info, size_t i);
// The options object at argument i; an empty object when it is absent, undefined or null.
Napi::Object arg_options(const Napi::CallbackInfo& info, size_t i);

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Float32Array arg_f32(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Int32Array arg_i32(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Uint8Array arg_u8(const Napi::CallbackInfo& info, size_t i, const char* what);
int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t min, int64_t max);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* what);
bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* what);

// Optional fields of an options object.
bool opt_bool(Napi::Object o, const char* key, bool fallback);
int64_t opt_int(Napi::Object o, const char* key, int64_t fallback, int64_t min, int64_t max);
std::string opt_string(Napi::Object o, const char* key, const std::string& fallback);
// A finite number.
double opt_double(Napi::Object o, const char* key, double fallback);
// threads: 0 (every core) .. 256; 0 when absent.
int opt_threads(Napi::Object o);
// isa: 'auto' (the process's level, GENAUG_ISA included; also when absent),
// 'scalar', 'avx2' or 'avx512' (lowered to what the CPU has).
Isa opt_isa(Napi::Object o);

// (Float32Array, rows, dim) at argument positions i, i+1, i+2, checked
// against each other without overflow; `keep` receives the array.
MatrixView read_matrix(const Napi::CallbackInfo& info, size_t i, const char* name, Napi::Float32Array& keep);

// A batch of masks (data: Uint8Array, n, h, w) starting at argument i, checked
// against each other without overflow.
struct MaskBatchArg {
  Napi::Uint8Array array;
  MaskBatchView view;
};
MaskBatchArg arg_mask_batch(const Napi::CallbackInfo& info, size_t i, const char* what);

// An RLE form option: 'none', 'counts' or 'string'.
RleForm opt_rle_form(Napi::Object o, const char* key, RleForm fallback);

// Output arrays, freshly allocated and filled by copy.
Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v);
Napi::Float64Array to_f64(Napi::Env env, const std::vector<double>& v);
Napi::BigInt64Array to_i64(Napi::Env env, const std::vector<int64_t>& v);
Napi::Uint32Array to_u32(Napi::Env env, const std::vector<uint32_t>& v);

// A Uint8Array of n bytes left uninitialised (node::Buffer's allocation, no
// zero fill), for outputs the core writes completely: zero-filling and
// faulting in a fresh 1 MiB array costs more than many kernels.
Napi::Uint8Array alloc_u8(Napi::Env env, size_t n);

// A reference to an output array that outlives the call's handle scope, so a
// job's completion (a later scope) can return it. Released on the JS thread
// with the job.
using OutRef = std::shared_ptr<Napi::Reference<Napi::Uint8Array>>;
OutRef out_ref(Napi::Uint8Array a);
// The referenced array, or undefined for an empty reference.
Napi::Value out_value(Napi::Env env, const OutRef& r);

// Runs `work` (no N-API calls allowed inside) and converts its result with
// `done` on the JS thread. `keep` are JS values (input arrays) kept alive
// until the job ends. With sync=true everything happens inline.
template <typename Result>
Napi::Value run_job(Napi::Env env, bool sync, std::vector<Napi::Value> keep, std::function<Result()> work,
                    std::function<Napi::Value(Napi::Env, Result&)> done);

// ------------------------------------------------------------------------
namespace detail {
struct Failure {
  std::string code;
  std::string message;
};
// Calls fn, translating any C++ exception into a Failure.
bool guarded(const std::function<void()>& fn, Failure& failure);

template <typename Result>
class Job final : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::vector<Napi::Value> keep, std::function<Result()> work,
      std::function<Napi::Value(Napi::Env, Result&)> done)
      : Napi::AsyncWorker(env, "genaug"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {
    for (auto& v : keep) keep_.push_back(Napi::Persistent(v));
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    ok_ = guarded([&] { result_ = std::make_unique<Result>(work_()); }, failure_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!ok_) {
      deferred_.Reject(make_error(env, failure_.code, failure_.message));
      return;
    }
    try {
      deferred_.Resolve(done_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
    result_.reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Result()> work_;
  std::function<Napi::Value(Napi::Env, Result&)> done_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  std::unique_ptr<Result> result_;
  Failure failure_;
  bool ok_ = false;
};
}  // namespace detail

template <typename Result>
Napi::Value run_job(Napi::Env env, bool sync, std::vector<Napi::Value> keep, std::function<Result()> work,
                    std::function<Napi::Value(Napi::Env, Result&)> done) {
  if (sync) {
    std::unique_ptr<Result> result;
    detail::Failure failure;
    if (!detail::guarded([&] { result = std::make_unique<Result>(work()); }, failure))
      throw_error(env, failure.code, failure.message);
    return done(env, *result);
  }
  auto* job = new detail::Job<Result>(env, std::move(keep), std::move(work), std::move(done));
  Napi::Promise p = job->promise();
  job->Queue();
  return p;
}

// ------------------------------------------------------------------------
// Module registration: each binding file lists what it exports in one table
// and hands it to export_functions.
//   export_functions(env, exports, {job<TopK>("topk"), plain("setEngineTuning", SetTuning)});
// job<Fn>(name) exports Fn(info, sync) twice: `name` runs it on the libuv pool
// and returns a Promise, `nameSync` runs it inline. plain(name, fn) exports fn
// once (a quick call that needs no worker).
using Callback = Napi::Value (*)(const Napi::CallbackInfo&);
using JobCallback = Napi::Value (*)(const Napi::CallbackInfo&, bool sync);

struct Export {
  const char* name;
  Callback fn;
  Callback sync;  // the Sync twin, or null
};

template <JobCallback Fn>
Export job(const char* name) {
  return Export{name, [](const Napi::CallbackInfo& i) { return Fn(i, false); },
                [](const Napi::CallbackInfo& i) { return Fn(i, true); }};
}

inline Export plain(const char* name, Callback fn) { return Export{name, fn, nullptr}; }

void export_functions(Napi::Env env, Napi::Object exports, std::initializer_list<Export> table);

// Each binding file's registration, called once per environment by addon.cc.
void register_addon(Napi::Env env, Napi::Object exports);
void register_similarity(Napi::Env env, Napi::Object exports);
void register_npy(Napi::Env env, Napi::Object exports);
void register_bnstats(Napi::Env env, Napi::Object exports);
void register_metrics(Napi::Env env, Napi::Object exports);
void register_mask(Napi::Env env, Napi::Object exports);
void register_rle(Napi::Env env, Napi::Object exports);
void register_layout(Napi::Env env, Napi::Object exports);
void register_composite(Napi::Env env, Napi::Object exports);
void register_resample(Napi::Env env, Napi::Object exports);

}  // namespace genaug::binding
