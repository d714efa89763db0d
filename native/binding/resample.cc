// N-API glue for native/core/resample: the CLIP preprocessing's pixel work.
//   pilResizeRgbSync(src, inW, inH, h, v, left, top, ow, oh[, lut, out, offset])
// h, v: {ksize, outSize, bounds: Int32Array, fixed: Int32Array} or null (axis
// kept). Without lut it returns the oh x ow x 3 Uint8Array; with lut
// (Float32Array of 3 x 256) it writes the CHW float planes into out at offset
// and returns undefined. Synchronous: a few milliseconds per image, called on
// the embedding workers' threads.
#include <napi.h>

#include <vector>

#include "common.h"
#include "resample.h"

namespace genaug::binding {

namespace {

bool read_axis(Napi::Env env, Napi::Value v, int64_t in_size, const char* what, ResampleAxis& a) {
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsObject()) throw_js(env, "E_TYPE", what, " must be a resampling table or null, got ", type_name(v));
  Napi::Object o = v.As<Napi::Object>();
  a.in_size = in_size;
  a.ksize = opt_int(o, "ksize", 0, 1, int64_t(1) << 20);
  a.out_size = opt_int(o, "outSize", 0, 1, int64_t(1) << 20);
  Napi::Value b = o.Get("bounds"), f = o.Get("fixed");
  if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_js(env, "E_DTYPE", what, ".bounds must be an Int32Array, got ", type_name(b));
  if (!f.IsTypedArray() || f.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_js(env, "E_DTYPE", what, ".fixed must be an Int32Array, got ", type_name(f));
  Napi::Int32Array bi = b.As<Napi::Int32Array>(), fi = f.As<Napi::Int32Array>();
  if (static_cast<int64_t>(bi.ElementLength()) != 2 * a.out_size || static_cast<int64_t>(fi.ElementLength()) != a.ksize * a.out_size)
    throw_js(env, "E_SHAPE", what, " has ", bi.ElementLength(), " bounds and ", fi.ElementLength(), " taps for ", a.out_size,
             " outputs of ksize ", a.ksize);
  a.bounds = bi.Data();
  a.fixed = fi.Data();
  checked(env, [&] { resample_check(a, what); });
  return true;
}

Napi::Value PilResizeRgb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array src = arg_u8(info, 0, "src");
  const int64_t in_w = arg_int(info, 1, "inWidth", 1, int64_t(1) << 20);
  const int64_t in_h = arg_int(info, 2, "inHeight", 1, int64_t(1) << 20);
  if (static_cast<int64_t>(src.ElementLength()) != in_w * in_h * 3)
    throw_js(env, "E_SHAPE", "src has ", src.ElementLength(), " bytes, expected ", in_w, " x ", in_h, " x 3");
  ResampleAxis h, v;
  const bool has_h = read_axis(env, arg_value(info, 3), in_w, "horizontal table", h);
  const bool has_v = read_axis(env, arg_value(info, 4), in_h, "vertical table", v);
  const int64_t left = arg_int(info, 5, "left", 0, int64_t(1) << 20);
  const int64_t top = arg_int(info, 6, "top", 0, int64_t(1) << 20);
  const int64_t ow = arg_int(info, 7, "width", 1, int64_t(1) << 20);
  const int64_t oh = arg_int(info, 8, "height", 1, int64_t(1) << 20);
  Napi::Value lutv = arg_value(info, 9);
  const bool to_float = !lutv.IsUndefined() && !lutv.IsNull();
  Napi::Float32Array lut, out;
  int64_t offset = 0;
  if (to_float) {
    lut = arg_f32(info, 9, "lut");
    if (lut.ElementLength() != 768) throw_js(env, "E_SHAPE", "lut must hold 3 x 256 values, got ", lut.ElementLength());
    out = arg_f32(info, 10, "out");
    offset = arg_int(info, 11, "offset", 0, int64_t(1) << 50);
    if (offset + 3 * ow * oh > static_cast<int64_t>(out.ElementLength()))
      throw_js(env, "E_SHAPE", "out has ", out.ElementLength(), " values; ", 3 * ow * oh, " at offset ", offset, " do not fit");
  }
  std::vector<uint8_t> tmp;
  Napi::Uint8Array result;
  uint8_t* dst;
  if (to_float) {
    tmp.resize(static_cast<size_t>(ow * oh * 3));
    dst = tmp.data();
  } else {
    result = alloc_u8(env, static_cast<size_t>(ow * oh * 3));
    dst = result.Data();
  }
  checked(env, [&] { pil_resize_rgb(src.Data(), in_w, in_h, has_h ? &h : nullptr, has_v ? &v : nullptr, left, top, ow, oh, dst); });
  if (!to_float) return result;
  rgb_to_chw_lut(dst, ow * oh, lut.Data(), out.Data() + offset);
  return env.Undefined();
}

}  // namespace

void register_resample(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {plain("pilResizeRgbSync", PilResizeRgb)});
}

}  // namespace genaug::binding
