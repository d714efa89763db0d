// N-API glue for native/core/layout (CLIS-L): typed arrays in, per-layout
// scores out, as a Promise (libuv pool) and a Sync twin.
//
// clisLayout(poolStart, poolSubject, poolObject, poolSubjectBox, poolObjectBox, poolSymmetric, poolNames,
//            objectStart, objectName, objectBox, relationStart, relationPredicate, relationSubject,
//            relationObject, layoutNames, sim, options)
#include "layout.h"
#include "layout_device.h"
#include "cuda_api.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "common.h"

namespace genaug::binding {

namespace {

Napi::Float64Array f64_of(Napi::Env env, const std::vector<double>& v) { return to_f64(env, v); }

Napi::Int32Array i32_of(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
  return a;
}

Napi::Value ClisLayout(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  LayoutOptions opt;
  bool cuda = false;
  int64_t device_bytes = 0;
  if (info.Length() > 16 && !info[16].IsUndefined()) {
    Napi::Object o = arg_object(info, 16, "options");
    Napi::Value cancel = o.Get("cancel");
    if (!cancel.IsUndefined()) {
      if (!cancel.IsTypedArray() || cancel.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
          cancel.As<Napi::Int32Array>().ElementLength() < 1)
        throw_js(env, "E_TYPE", "option cancel must be an Int32Array of length >= 1");
      keep.push_back(cancel);
    }
    auto num = [&](const char* key, double fallback) {
      Napi::Value v = o.Get(key);
      if (v.IsUndefined()) return fallback;
      if (!v.IsNumber()) throw_js(env, "E_TYPE", "option ", key, " must be a number");
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(d)) throw_js(env, "E_RANGE", "option ", key, " must be finite");
      return d;
    };
    opt.tau = num("tau", opt.tau);
    opt.penalty_t = num("penaltyT", opt.penalty_t);
    opt.high_sim = num("highSim", opt.high_sim);
    opt.low_weight = num("lowWeight", opt.low_weight);
    opt.rank_divisor = opt_int(o, "rankDivisor", opt.rank_divisor, 1, int64_t(1) << 40);
    opt.faithful = opt_bool(o, "faithful", opt.faithful);
    opt.balance = opt_bool(o, "balance", opt.balance);
    opt.symmetry = opt_bool(o, "symmetry", opt.symmetry);
    opt.threads = static_cast<int>(opt_int(o, "threads", 0, 0, 256));
    // device: 'cpu' (default) or 'cuda' (ts/kernels/layout.ts resolves 'auto').
    const std::string device = opt_string(o, "device", "cpu");
    if (device == "cuda") cuda = true;
    else if (device != "cpu") throw_js(env, "E_RANGE", "option device must be 'cpu' or 'cuda', got '", device, "'");
    device_bytes = opt_int(o, "deviceBytes", 0, 0, int64_t(1) << 50);
  }
  const int32_t* cancel = keep.empty() ? nullptr : keep[0].As<Napi::Int32Array>().Data();

  Napi::Int32Array pstart = arg_i32(info, 0, "pool start");
  Napi::Int32Array psub = arg_i32(info, 1, "pool subject");
  Napi::Int32Array pobj = arg_i32(info, 2, "pool object");
  Napi::Float32Array psbox = arg_f32(info, 3, "pool subject boxes");
  Napi::Float32Array pobox = arg_f32(info, 4, "pool object boxes");
  Napi::Uint8Array psym = arg_u8(info, 5, "pool symmetric flags");
  const int64_t pnames = arg_int(info, 6, "pool name count", 0, int64_t(1) << 31);
  Napi::Int32Array ostart = arg_i32(info, 7, "object start");
  Napi::Int32Array oname = arg_i32(info, 8, "object name");
  Napi::Float32Array obox = arg_f32(info, 9, "object boxes");
  Napi::Int32Array rstart = arg_i32(info, 10, "relation start");
  Napi::Int32Array rpred = arg_i32(info, 11, "relation predicate");
  Napi::Int32Array rsub = arg_i32(info, 12, "relation subject");
  Napi::Int32Array robj = arg_i32(info, 13, "relation object");
  const int64_t lnames = arg_int(info, 14, "layout name count", 0, int64_t(1) << 31);
  Napi::Float32Array sim = arg_f32(info, 15, "name similarity");

  auto view = [](auto arr) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(arr.Data())>>;
    return LayoutArray<T>{arr.Data(), arr.ElementLength()};
  };
  LayoutArrays arrays;
  arrays.pool_start = view(pstart);
  arrays.pool_subject = view(psub);
  arrays.pool_object = view(pobj);
  arrays.pool_subject_box = view(psbox);
  arrays.pool_object_box = view(pobox);
  arrays.pool_symmetric = view(psym);
  arrays.pool_names = pnames;
  arrays.object_start = view(ostart);
  arrays.object_name = view(oname);
  arrays.object_box = view(obox);
  arrays.relation_start = view(rstart);
  arrays.relation_predicate = view(rpred);
  arrays.relation_subject = view(rsub);
  arrays.relation_object = view(robj);
  arrays.layout_names = lnames;
  arrays.sim = view(sim);
  // The lengths are checked by the core (layout_views), the values by clis_layout.
  LayoutPool pool;
  LayoutBatch batch;
  checked(env, [&] { layout_views(arrays, batch, pool); });
  const float* simp = sim.Data();
  for (size_t i = 0; i < 16; ++i)
    if (info[i].IsObject()) keep.push_back(info[i]);

  return run_job<LayoutScores>(
      env, sync, keep,
      [=] {
        return cuda ? device_clis_layout(*cuda_clis_backend(), batch, pool, simp, opt, cancel, device_bytes)
                    : clis_layout(batch, pool, simp, opt, cancel);
      },
      [](Napi::Env env, LayoutScores& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("score", f64_of(env, r.score));
        o.Set("confidence", f64_of(env, r.confidence));
        o.Set("status", i32_of(env, r.status));
        o.Set("failedPair", i32_of(env, r.failed_pair));
        o.Set("pairScore", f64_of(env, r.pair_score));
        o.Set("pairConfidence", f64_of(env, r.pair_confidence));
        return o;
      });
}

}  // namespace

void register_layout(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {job<ClisLayout>("clisLayout")});
}

}  // namespace genaug::binding
