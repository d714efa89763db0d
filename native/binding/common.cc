#include "common.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <new>

namespace genaug::binding {

Napi::Object make_error(Napi::Env env, const std::string& code, const std::string& message) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->error_class.IsEmpty()) {
    return data->error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err.Value();
}

void throw_error(Napi::Env env, const std::string& code, const std::string& message) {
  throw Napi::Error(env, make_error(env, code, message));
}

namespace detail {
bool guarded(const std::function<void()>& fn, Failure& failure) {
  try {
    fn();
    return true;
  } catch (const genaug::Error& e) {
    failure = {e.code(), e.what()};
  } catch (const std::bad_alloc&) {
    failure = {"E_NOMEM", "out of memory: the native call could not allocate its working buffers"};
  } catch (const std::exception& e) {
    failure = {"E_INTERNAL", std::string("internal error: ") + e.what()};
  } catch (...) {
    failure = {"E_INTERNAL", "internal error: unknown exception"};
  }
  return false;
}
}  // namespace detail

const char* type_name(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      case napi_bigint64_array: return "BigInt64Array";
      case napi_biguint64_array: return "BigUint64Array";
      default: return "a typed array";
    }
  }
  if (v.IsArray()) return "an array";
  if (v.IsString()) return "a string";
  if (v.IsNumber()) return "a number";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsBigInt()) return "a bigint";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "an unknown value";
}

Napi::Value arg_value(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

static Napi::Value arg(const Napi::CallbackInfo& info, size_t i) { return arg_value(info, i); }

Napi::Object arg_options(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = arg(info, i);
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(info.Env());
  return arg_object(info, i, "options");
}

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = arg(info, i);
  if (!v.IsObject()) throw_js(info.Env(), "E_TYPE", what, " must be an object, got ", type_name(v));
  return v.As<Napi::Object>();
}

template <typename T>
static T typed(const Napi::CallbackInfo& info, size_t i, const char* what, napi_typedarray_type type,
               const char* expected, const char* code) {
  Napi::Value v = arg(info, i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_js(info.Env(), code, what, " must be a ", expected, ", got ", type_name(v));
  return v.As<T>();
}

Napi::Float32Array arg_f32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return typed<Napi::Float32Array>(info, i, what, napi_float32_array, "Float32Array", "E_DTYPE");
}
Napi::Int32Array arg_i32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return typed<Napi::Int32Array>(info, i, what, napi_int32_array, "Int32Array", "E_DTYPE");
}
Napi::Uint8Array arg_u8(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return typed<Napi::Uint8Array>(info, i, what, napi_uint8_array, "Uint8Array", "E_DTYPE");
}

static int64_t checked_int(Napi::Env env, Napi::Value v, const char* what, int64_t min, int64_t max) {
  if (!v.IsNumber()) throw_js(env, "E_TYPE", what, " must be a number, got ", type_name(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throw_js(env, "E_RANGE", what, " must be an integer, got ", d);
  if (d < static_cast<double>(min) || d > static_cast<double>(max))
    throw_js(env, "E_RANGE", what, " must be in [", min, ", ", max, "], got ", d);
  return static_cast<int64_t>(d);
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t min, int64_t max) {
  return checked_int(info.Env(), arg(info, i), what, min, max);
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = arg(info, i);
  if (!v.IsNumber()) throw_js(info.Env(), "E_TYPE", what, " must be a number, got ", type_name(v));
  return v.As<Napi::Number>().DoubleValue();
}

bool arg_bool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = arg(info, i);
  if (!v.IsBoolean()) throw_js(info.Env(), "E_TYPE", what, " must be a boolean, got ", type_name(v));
  return v.As<Napi::Boolean>().Value();
}

bool opt_bool(Napi::Object o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be a boolean, got ", type_name(v));
  return v.As<Napi::Boolean>().Value();
}

int64_t opt_int(Napi::Object o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  std::string what = std::string("option ") + key;
  return checked_int(o.Env(), v, what.c_str(), min, max);
}

std::string opt_string(Napi::Object o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be a string, got ", type_name(v));
  return v.As<Napi::String>().Utf8Value();
}

double opt_double(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_js(o.Env(), "E_RANGE", "option ", key, " must be finite, got ", d);
  return d;
}

int opt_threads(Napi::Object o) { return static_cast<int>(opt_int(o, "threads", 0, 0, 256)); }

Isa opt_isa(Napi::Object o) {
  const std::string isa = opt_string(o, "isa", "auto");
  if (isa == "auto") return active_isa();
  Isa out = Isa::Scalar;
  checked(o.Env(), [&] { out = clamp_isa(parse_isa(isa)); });
  return out;
}

MaskBatchArg arg_mask_batch(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  MaskBatchArg b;
  b.array = arg_u8(info, i, what);
  b.view.n = arg_int(info, i + 1, "count", 0, int64_t(1) << 40);
  b.view.h = arg_int(info, i + 2, "height", 0, kMaxMaskSide);
  b.view.w = arg_int(info, i + 3, "width", 0, kMaxMaskSide);
  checked(env, [&] { check_mask_size(b.view.h, b.view.w, what); });
  const int64_t len = static_cast<int64_t>(b.array.ElementLength());
  const int64_t px = b.view.h * b.view.w;
  if ((px == 0 && len != 0) || (px > 0 && (b.view.n > len / px || b.view.n * px != len)))
    throw_js(env, "E_SHAPE", what, " has ", len, " bytes but ", b.view.n, " masks of ", b.view.h, " x ", b.view.w,
             " need ", px > 0 && b.view.n <= (int64_t(1) << 62) / px ? b.view.n * px : -1);
  b.view.data = b.array.Data();
  return b;
}

RleForm opt_rle_form(Napi::Object o, const char* key, RleForm fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be 'none', 'counts' or 'string'");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "none") return RleForm::None;
  if (s == "counts") return RleForm::Counts;
  if (s == "string") return RleForm::String;
  throw_js(o.Env(), "E_RANGE", "option ", key, " must be 'none', 'counts' or 'string', got '", s, "'");
}

Napi::Uint32Array to_u32(Napi::Env env, const std::vector<uint32_t>& v) {
  Napi::Uint32Array out = Napi::Uint32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(uint32_t));
  return out;
}

Napi::Uint8Array alloc_u8(Napi::Env env, size_t n) {
  Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, n);
  return Napi::Uint8Array::New(env, n, b.ArrayBuffer(), b.ByteOffset());
}

OutRef out_ref(Napi::Uint8Array a) { return std::make_shared<Napi::Reference<Napi::Uint8Array>>(Napi::Persistent(a)); }

Napi::Value out_value(Napi::Env env, const OutRef& r) { return r ? Napi::Value(r->Value()) : env.Undefined(); }

void export_functions(Napi::Env env, Napi::Object exports, std::initializer_list<Export> table) {
  for (const Export& e : table) {
    exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
    if (e.sync != nullptr) {
      const std::string sync_name = std::string(e.name) + "Sync";
      exports.Set(sync_name, Napi::Function::New(env, e.sync, sync_name));
    }
  }
}

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array out = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(float));
  return out;
}

Napi::Float64Array to_f64(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array out = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(double));
  return out;
}

MatrixView read_matrix(const Napi::CallbackInfo& info, size_t i, const char* name, Napi::Float32Array& keep) {
  keep = arg_f32(info, i, name);
  const std::string rows_name = std::string(name) + " rows";
  const std::string dim_name = std::string(name) + " dim";
  const int64_t rows = arg_int(info, i + 1, rows_name.c_str(), 0, int64_t(1) << 40);
  const int64_t dim = arg_int(info, i + 2, dim_name.c_str(), 1, kMaxDim);
  const int64_t len = static_cast<int64_t>(keep.ElementLength());
  // rows <= len / dim first, so rows * dim cannot overflow.
  if (rows > len / dim || rows * dim != len)
    throw_js(info.Env(), "E_SHAPE", name, " has ", len, " elements but ", rows, " rows x ", dim, " columns = ", rows * dim);
  MatrixView v;
  v.data = keep.Data();
  v.rows = rows;
  v.dim = dim;
  return v;
}

Napi::BigInt64Array to_i64(Napi::Env env, const std::vector<int64_t>& v) {
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, v.size() * sizeof(int64_t));
  if (!v.empty()) std::memcpy(buf.Data(), v.data(), v.size() * sizeof(int64_t));
  napi_value arr;
  napi_status st = napi_create_typedarray(env, napi_bigint64_array, v.size(), buf, 0, &arr);
  NAPI_THROW_IF_FAILED(env, st, Napi::BigInt64Array());
  return Napi::Value(env, arr).As<Napi::BigInt64Array>();
}

}  // namespace genaug::binding
