// Registers the binding modules and reports what this build can do.
#include <napi.h>

#include "common.h"
#include "cpu.h"
#include "cuda_api.h"

namespace genaug::binding {

namespace {

// setErrorClass(GenaugError): called once per environment by ts/native/load.ts
// so every error thrown from C++ is a real GenaugError with a code.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw_js(env, "E_TYPE", "setErrorClass expects a constructor");
  auto* data = env.GetInstanceData<AddonData>();
  data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuInfo& cpu = cpu_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", isa_name(active_isa()));
  o.Set("isaBest", isa_name(cpu.best));
  Napi::Object cpuo = Napi::Object::New(env);
  cpuo.Set("avx2", cpu.avx2_fma);
  cpuo.Set("avx512", cpu.avx512);
  cpuo.Set("avx512bf16", cpu.avx512_bf16);
  cpuo.Set("threads", hardware_threads());
  o.Set("cpu", cpuo);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("built", cuda_built());
  std::string why;
  const int devices = cuda_device_count(&why);
  cuda.Set("devices", devices);
  cuda.Set("usable", devices > 0);
  if (devices <= 0) cuda.Set("reason", why);
  o.Set("cuda", cuda);
#ifdef GENAUG_SANITIZE_BUILD
  o.Set("sanitized", true);
#else
  o.Set("sanitized", false);
#endif
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  register_similarity(env, exports);
  register_npy(env, exports);
  register_bnstats(env, exports);
  register_metrics(env, exports);
  register_mask(env, exports);
  register_layout(env, exports);
  register_composite(env, exports);
  return exports;
}

}  // namespace genaug::binding

static Napi::Object InitGenaug(Napi::Env env, Napi::Object exports) { return genaug::binding::Init(env, exports); }

NODE_API_MODULE(genaug, InitGenaug)
