// N-API glue for native/core/bnstats.
#include "bnstats.h"

#include "bnstats_device.h"
#include "common.h"
#include "cpu.h"
#include "cuda_api.h"

namespace genaug::binding {

namespace {


// bnStats(data: Float32Array | Uint16Array (float16 bits), n, c, s, layout, domains: Int32Array | null,
//         numDomains, options) -> { count, mean, m2, min, max, nonfinite }
Napi::Value BnStatsCall(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  BnOptions opt;
  std::vector<Napi::Value> keep;
  bool cuda = false;
  int64_t device_bytes = 0;
  if (info.Length() > 7 && !info[7].IsUndefined()) {
    Napi::Object o = arg_object(info, 7, "options");
    opt.threads = static_cast<int>(opt_int(o, "threads", 0, 0, 256));
    const std::string nf = opt_string(o, "nonfinite", "reject");
    if (nf == "reject") opt.nonfinite = NonFinite::Reject;
    else if (nf == "skip") opt.nonfinite = NonFinite::Skip;
    else throw_js(env, "E_RANGE", "option nonfinite must be 'reject' or 'skip', got '", nf, "'");
    opt.isa = opt_isa(o);
    // device: 'cpu' (default) or 'cuda' (ts/kernels/bnstats.ts resolves 'auto').
    const std::string device = opt_string(o, "device", "cpu");
    if (device == "cuda") cuda = true;
    else if (device != "cpu") throw_js(env, "E_RANGE", "option device must be 'cpu' or 'cuda', got '", device, "'");
    device_bytes = opt_int(o, "deviceBytes", 0, 0, int64_t(1) << 50);
  } else {
    opt.isa = active_isa();
  }
  BnInput in;
  Napi::Value data = info.Length() > 0 ? info[0] : env.Undefined();
  int64_t len = 0;
  if (data.IsTypedArray() && data.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    in.f32 = data.As<Napi::Float32Array>().Data();
    len = static_cast<int64_t>(data.As<Napi::Float32Array>().ElementLength());
  } else if (data.IsTypedArray() && data.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    in.f16 = data.As<Napi::Uint16Array>().Data();
    len = static_cast<int64_t>(data.As<Napi::Uint16Array>().ElementLength());
  } else {
    throw_js(env, "E_DTYPE", "activations must be a Float32Array, or a Uint16Array of float16 bits");
  }
  in.n = arg_int(info, 1, "samples", 0, int64_t(1) << 40);
  in.c = arg_int(info, 2, "channels", 1, int64_t(1) << 24);
  in.s = arg_int(info, 3, "positions", 1, int64_t(1) << 40);
  if (in.n > len / in.c / in.s || in.n * in.c * in.s != len)
    throw_js(env, "E_SHAPE", "activations have ", len, " elements but ", in.n, " samples x ", in.c, " channels x ", in.s,
             " positions = ", in.n * in.c * in.s);
  Napi::Value layout = info.Length() > 4 ? info[4] : env.Undefined();
  if (!layout.IsString()) throw_js(env, "E_TYPE", "layout must be 'nchw' or 'nhwc'");
  const std::string l = layout.As<Napi::String>().Utf8Value();
  if (l == "nchw") in.layout = Layout::NCHW;
  else if (l == "nhwc") in.layout = Layout::NHWC;
  else throw_js(env, "E_RANGE", "layout must be 'nchw' or 'nhwc', got '", l, "'");
  in.num_domains = arg_int(info, 6, "numDomains", 1, 1 << 16);
  Napi::Value dom = info.Length() > 5 ? info[5] : env.Undefined();
  if (!dom.IsNull() && !dom.IsUndefined()) {
    Napi::Int32Array d = arg_i32(info, 5, "domains");
    if (static_cast<int64_t>(d.ElementLength()) != in.n)
      throw_js(env, "E_SHAPE", "domains has ", d.ElementLength(), " entries but there are ", in.n, " samples");
    in.domains = d.Data();
    keep.push_back(d);
  }
  keep.push_back(data);
  return run_job<BnStats>(
      env, sync, keep,
      [=] { return cuda ? device_bn_stats(*cuda_bn_backend(), in, opt, device_bytes) : bn_stats(in, opt); },
      [](Napi::Env env, BnStats& s) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("domains", Napi::Number::New(env, static_cast<double>(s.domains)));
        o.Set("channels", Napi::Number::New(env, static_cast<double>(s.channels)));
        o.Set("count", to_i64(env, s.count));
        o.Set("mean", to_f64(env, s.mean));
        o.Set("m2", to_f64(env, s.m2));
        o.Set("min", to_f32(env, s.min));
        o.Set("max", to_f32(env, s.max));
        o.Set("nonfinite", to_i64(env, s.nonfinite));
        return o;
      });
}

}  // namespace

void register_bnstats(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {job<BnStatsCall>("bnStats")});
}

}  // namespace genaug::binding
