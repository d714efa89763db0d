// N-API glue for the .npy header parser.
#include "npy.h"

#include "common.h"

namespace genaug::binding {

namespace {
// parseNpyHeader(bytes: Uint8Array, name: string) -> header | { needed }
Napi::Value ParseNpyHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array bytes = arg_u8(info, 0, "bytes");
  if (info.Length() < 2 || !info[1].IsString()) throw_js(env, "E_TYPE", "name must be a string");
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  NpyHeader h;
  int64_t needed = 0;
  detail::Failure failure;
  if (!detail::guarded([&] { h = parse_npy_header(bytes.Data(), bytes.ElementLength(), name, &needed); }, failure)) {
    if (needed > 0 && needed <= kNpyMaxHeaderBytes + 12) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("needed", Napi::Number::New(env, static_cast<double>(needed)));
      return o;
    }
    throw_error(env, failure.code, failure.message);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", h.major);
  o.Set("minor", h.minor);
  o.Set("descr", h.descr);
  o.Set("dtype", h.dtype);
  o.Set("itemsize", h.itemsize);
  o.Set("fortranOrder", h.fortran_order);
  Napi::Array shape = Napi::Array::New(env, h.shape.size());
  for (size_t i = 0; i < h.shape.size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(h.shape[i])));
  o.Set("shape", shape);
  o.Set("dataOffset", Napi::Number::New(env, static_cast<double>(h.data_offset)));
  o.Set("count", Napi::Number::New(env, static_cast<double>(h.count)));
  o.Set("dataBytes", Napi::Number::New(env, static_cast<double>(h.data_bytes)));
  return o;
}
}  // namespace

void register_npy(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {plain("parseNpyHeader", ParseNpyHeader)});
}

}  // namespace genaug::binding
