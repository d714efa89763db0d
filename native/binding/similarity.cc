// N-API glue for native/core/similarity: argument checks, then the core call
// on the libuv pool (Promise) or inline (the *Sync twins).
#include "similarity.h"

#include "common.h"
#include "cpu.h"
#include "cuda_api.h"
#include "similarity_device.h"

namespace genaug::binding {

namespace {

// Reads the options object at position i; a `cancel` Int32Array in it is
// appended to `keep` so it outlives the job.
SimilarityOptions read_options(const Napi::CallbackInfo& info, size_t i, std::vector<Napi::Value>& keep) {
  SimilarityOptions o;
  if (i >= info.Length() || info[i].IsUndefined()) {
    o.isa = active_isa();
    return o;
  }
  Napi::Object obj = arg_object(info, i, "options");
  Napi::Value cancel = obj.Get("cancel");
  if (!cancel.IsUndefined()) {
    if (!cancel.IsTypedArray() || cancel.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        cancel.As<Napi::Int32Array>().ElementLength() < 1)
      throw_js(info.Env(), "E_TYPE", "option cancel must be an Int32Array of length >= 1");
    o.cancel = cancel.As<Napi::Int32Array>().Data();
    keep.push_back(cancel);
  }
  o.normalize = opt_bool(obj, "normalize", true);
  o.threads = static_cast<int>(opt_int(obj, "threads", 0, 0, 256));
  o.block_bytes = opt_int(obj, "blockBytes", o.block_bytes, 1 << 16, int64_t(1) << 40);
  o.query_name = opt_string(obj, "queryName", o.query_name);
  o.db_name = opt_string(obj, "dbName", o.db_name);
  o.query_row_offset = opt_int(obj, "queryRowOffset", 0, 0, int64_t(1) << 50);
  o.db_row_offset = opt_int(obj, "dbRowOffset", 0, 0, int64_t(1) << 50);
  o.isa = opt_isa(obj);
  const std::string precision = opt_string(obj, "precision", "exact");
  if (precision == "bf16")
    o.precision = SimilarityOptions::Precision::Bf16;
  else if (precision != "exact")
    throw_js(info.Env(), "E_RANGE", "option precision must be 'exact' or 'bf16', got '", precision, "'");
  o.device_bytes = opt_int(obj, "deviceBytes", 0, 0, int64_t(1) << 50);
  const std::string screen = opt_string(obj, "screen", "auto");
  if (screen == "on")
    o.screen = 1;
  else if (screen == "off")
    o.screen = 0;
  else if (screen != "auto")
    throw_js(info.Env(), "E_RANGE", "option screen must be 'auto', 'on' or 'off', got '", screen, "'");
  return o;
}

// The `device` option: 'cpu' (default) or 'cuda' (ts/kernels/similarity.ts
// resolves 'auto'). 'cuda' runs the device path on the CUDA backend, which
// throws E_CUDA_UNAVAILABLE naming why when there is none.
bool read_device(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsObject()) return false;
  const std::string device = opt_string(info[i].As<Napi::Object>(), "device", "cpu");
  if (device == "cuda") return true;
  if (device != "cpu") throw_js(info.Env(), "E_RANGE", "option device must be 'cpu' or 'cuda', got '", device, "'");
  return false;
}

Napi::Value TopK(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  std::vector<Napi::Value> keep;
  SimilarityOptions opt = read_options(info, 7, keep);
  const bool cuda = read_device(info, 7);
  Napi::Float32Array qa, da;
  MatrixView q = read_matrix(info, 0, "query", qa);
  MatrixView d = read_matrix(info, 3, "database", da);
  const int64_t k = arg_int(info, 6, "k", 1, int64_t(1) << 31);
  keep.insert(keep.end(), {qa, da});
  return run_job<TopKResult>(
      env, sync, keep, [=] { return cuda ? device_topk(*cuda_similarity_backend(), q, d, k, opt) : topk(q, d, k, opt); },
      [](Napi::Env env, TopKResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("k", Napi::Number::New(env, static_cast<double>(r.k)));
        o.Set("indices", to_i64(env, r.indices));
        o.Set("scores", to_f32(env, r.scores));
        return o;
      });
}

Napi::Value PerClass(const Napi::CallbackInfo& info, bool sync, bool mean) {
  Napi::Env env = info.Env();
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  std::vector<Napi::Value> keep;
  SimilarityOptions opt = read_options(info, 8, keep);
  const bool cuda = read_device(info, 8);
  Napi::Float32Array qa, da;
  MatrixView q = read_matrix(info, 0, "query", qa);
  MatrixView d = read_matrix(info, 3, "database", da);
  Napi::Int32Array la = arg_i32(info, 6, "labels");
  if (static_cast<int64_t>(la.ElementLength()) != d.rows)
    throw_js(env, "E_SHAPE", "labels has ", la.ElementLength(), " entries but the database has ", d.rows, " rows");
  const int64_t classes = arg_int(info, 7, "numClasses", 1, int64_t(1) << 31);
  keep.insert(keep.end(), {qa, da, la});
  const int32_t* labels = la.Data();
  return run_job<ClassResult>(
      env, sync, keep,
      [=] {
        if (cuda) {
          auto be = cuda_similarity_backend();
          return mean ? device_class_mean(*be, q, d, labels, classes, opt) : device_class_max(*be, q, d, labels, classes, opt);
        }
        return mean ? class_mean(q, d, labels, classes, opt) : class_max(q, d, labels, classes, opt);
      },
      [](Napi::Env env, ClassResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("classes", Napi::Number::New(env, static_cast<double>(r.classes)));
        o.Set("values", to_f32(env, r.values));
        o.Set("counts", to_i64(env, r.counts));
        return o;
      });
}

Napi::Value Pairs(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  std::vector<Napi::Value> keep;
  SimilarityOptions opt = read_options(info, 9, keep);
  const bool cuda = read_device(info, 9);
  Napi::Float32Array qa, da;
  MatrixView q = read_matrix(info, 0, "query", qa);
  MatrixView d = read_matrix(info, 3, "database", da);
  const double t = arg_number(info, 6, "threshold");
  const int64_t self_offset = arg_int(info, 7, "selfOffset", -1, int64_t(1) << 40);
  const int64_t max_pairs = arg_int(info, 8, "maxPairs", 0, int64_t(1) << 40);
  keep.insert(keep.end(), {qa, da});
  return run_job<PairsResult>(
      env, sync, keep, [=] {
        return cuda ? device_pairs(*cuda_similarity_backend(), q, d, t, self_offset, max_pairs, opt)
                    : pairs(q, d, t, self_offset, max_pairs, opt);
      },
      [](Napi::Env env, PairsResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("i", to_i64(env, r.i));
        o.Set("j", to_i64(env, r.j));
        o.Set("scores", to_f32(env, r.score));
        return o;
      });
}

Napi::Value RowDot(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  std::vector<Napi::Value> keep;
  SimilarityOptions opt = read_options(info, 6, keep);
  const bool cuda = read_device(info, 6);
  Napi::Float32Array qa, da;
  MatrixView q = read_matrix(info, 0, "query", qa);
  MatrixView d = read_matrix(info, 3, "database", da);
  keep.insert(keep.end(), {qa, da});
  return run_job<std::vector<float>>(
      env, sync, keep, [=] { return cuda ? device_row_dot(*cuda_similarity_backend(), q, d, opt) : row_dot(q, d, opt); },
      [](Napi::Env env, std::vector<float>& r) -> Napi::Value { return to_f32(env, r); });
}

Napi::Value ClassMean(const Napi::CallbackInfo& info, bool sync) { return PerClass(info, sync, true); }
Napi::Value ClassMax(const Napi::CallbackInfo& info, bool sync) { return PerClass(info, sync, false); }

Napi::Value SetTuning(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, 0, "tuning");
  EngineTuning t;
  t.mc = opt_int(o, "mc", 0, 0, 1 << 16);
  t.nct = opt_int(o, "nct", 0, 0, 1 << 16);
  t.kc = opt_int(o, "kc", 0, 0, 1 << 16);
  set_engine_tuning(t);
  return info.Env().Undefined();
}

Napi::Value EngineStatsJs(const Napi::CallbackInfo& info) {
  const EngineStats st = last_engine_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("screened", Napi::Boolean::New(info.Env(), st.screened));
  o.Set("split", Napi::Boolean::New(info.Env(), st.split));
  o.Set("rescored", Napi::Number::New(info.Env(), static_cast<double>(st.rescored)));
  o.Set("pairs", Napi::Number::New(info.Env(), static_cast<double>(st.pairs)));
  // The block sizes of the last device-path call (any thread).
  const DevicePlanInfo p = last_device_plan();
  o.Set("deviceQueryRows", Napi::Number::New(info.Env(), static_cast<double>(p.query_rows)));
  o.Set("deviceDbRows", Napi::Number::New(info.Env(), static_cast<double>(p.db_rows)));
  o.Set("deviceBudget", Napi::Number::New(info.Env(), static_cast<double>(p.budget)));
  return o;
}

}  // namespace

void register_similarity(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports,
                   {
                       job<TopK>("topk"),
                       job<ClassMean>("classMean"),
                       job<ClassMax>("classMax"),
                       job<Pairs>("pairs"),
                       job<RowDot>("rowDot"),
                       plain("setEngineTuning", SetTuning),
                       plain("engineStats", EngineStatsJs),
                   });
}

}  // namespace genaug::binding
