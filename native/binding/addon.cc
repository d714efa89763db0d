// Registers the binding modules (one per core file) and reports what this
// build can do.
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
  Napi::Array kernels = Napi::Array::New(env);
  uint32_t at = 0;
  for (const std::string& k : cuda_kernels()) kernels.Set(at++, k);
  cuda.Set("kernels", kernels);
  CudaDeviceInfo dev;
  std::string dwhy;
  if (devices > 0 && cuda_device_info(dev, &dwhy)) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", dev.name);
    d.Set("totalBytes", static_cast<double>(dev.total_bytes));
    d.Set("freeBytes", static_cast<double>(dev.free_bytes));
    d.Set("computeCapability", std::to_string(dev.compute_major) + "." + std::to_string(dev.compute_minor));
    d.Set("runtimeVersion", std::to_string(dev.runtime_version / 1000) + "." + std::to_string(dev.runtime_version % 1000 / 10));
    d.Set("driverVersion", std::to_string(dev.driver_version / 1000) + "." + std::to_string(dev.driver_version % 1000 / 10));
    cuda.Set("device", d);
  } else if (devices > 0) {
    cuda.Set("usable", false);
    cuda.Set("reason", dwhy);
  }
  o.Set("cuda", cuda);
#ifdef GENAUG_SANITIZE_BUILD
  o.Set("sanitized", true);
#else
  o.Set("sanitized", false);
#endif
  return o;
}

}  // namespace

void register_addon(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {plain("setErrorClass", SetErrorClass), plain("capabilities", Capabilities)});
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  // One binding file per core file; each registers its own table.
  for (auto reg : {register_addon, register_similarity, register_npy, register_bnstats, register_metrics, register_mask,
                   register_rle, register_layout, register_composite, register_resample})
    reg(env, exports);
  return exports;
}

}  // namespace genaug::binding

static Napi::Object InitGenaug(Napi::Env env, Napi::Object exports) { return genaug::binding::Init(env, exports); }

NODE_API_MODULE(genaug, InitGenaug)
