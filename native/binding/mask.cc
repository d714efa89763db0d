// N-API glue for native/core/mask: masks are Uint8Array batches (data, n, h,
// w), images Uint8Array (h, w, channels). The post-processing chain can return
// each mask's COCO RLE (the RLE functions themselves are in rle.cc).
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "common.h"
#include "mask.h"

namespace genaug::binding {

namespace {

int opt_connectivity(Napi::Object o) {
  const int64_t c = opt_int(o, "connectivity", 8, 4, 8);
  if (c != 4 && c != 8) throw_js(o.Env(), "E_RANGE", "option connectivity must be 4 or 8, got ", c);
  return static_cast<int>(c);
}

struct Image {
  Napi::Uint8Array array;
  ImageView view;
};

// (data, h, w, channels) starting at argument i.
Image arg_image(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  Image im;
  im.array = arg_u8(info, i, "image");
  im.view.h = arg_int(info, i + 1, "height", 0, kMaxMaskSide);
  im.view.w = arg_int(info, i + 2, "width", 0, kMaxMaskSide);
  im.view.channels = arg_int(info, i + 3, "channels", 1, 64);
  checked(env, [&] { check_image(im.view, "image"); });
  const int64_t len = static_cast<int64_t>(im.array.ElementLength());
  if (im.view.h * im.view.w * im.view.channels != len)
    throw_js(env, "E_SHAPE", "image has ", len, " bytes but ", im.view.h, " x ", im.view.w, " x ", im.view.channels,
             " = ", im.view.h * im.view.w * im.view.channels);
  im.view.data = im.array.Data();
  return im;
}

template <typename T>
Napi::Float64Array to_f64(Napi::Env env, const std::vector<T>& v) {
  Napi::Float64Array out = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(v[i]);
  return out;
}

Napi::Float64Array boxes_f64(Napi::Env env, const std::vector<Box>& b) {
  Napi::Float64Array out = Napi::Float64Array::New(env, b.size() * 4);
  for (size_t i = 0; i < b.size(); ++i) {
    out[4 * i + 0] = static_cast<double>(b[i].x);
    out[4 * i + 1] = static_cast<double>(b[i].y);
    out[4 * i + 2] = static_cast<double>(b[i].w);
    out[4 * i + 3] = static_cast<double>(b[i].h);
  }
  return out;
}

Napi::Object post_result(Napi::Env env, PostResult& r, Napi::Value mask, RleForm form) {
  Napi::Object o = Napi::Object::New(env);
  if (!mask.IsUndefined()) o.Set("data", mask);
  o.Set("area", to_f64(env, r.area));
  o.Set("bbox", boxes_f64(env, r.box));
  o.Set("components", to_f64(env, r.components));
  Napi::Uint8Array ok = Napi::Uint8Array::New(env, r.ok.size());
  if (!r.ok.empty()) std::memcpy(ok.Data(), r.ok.data(), r.ok.size());
  o.Set("ok", ok);
  Napi::Array reason = Napi::Array::New(env, r.reason.size());
  for (size_t i = 0; i < r.reason.size(); ++i) reason.Set(static_cast<uint32_t>(i), r.reason[i]);
  o.Set("reason", reason);
  if (form != RleForm::None) {
    Napi::Array rle = Napi::Array::New(env, static_cast<size_t>(r.n));
    for (int64_t i = 0; i < r.n; ++i) {
      if (form == RleForm::String) rle.Set(static_cast<uint32_t>(i), Napi::String::New(env, r.strings[i]));
      else rle.Set(static_cast<uint32_t>(i), to_u32(env, r.counts[i]));
    }
    o.Set("rle", rle);
  }
  return o;
}

PostOptions read_post_options(Napi::Object o) {
  PostOptions p;
  p.connectivity = opt_connectivity(o);
  p.invert = opt_bool(o, "invert", false);
  p.largest = opt_bool(o, "largest", true);
  p.fill_holes = opt_bool(o, "fillHoles", true);
  p.min_area = opt_int(o, "minArea", 1, 0, kMaxMaskPixels);
  p.min_fraction = opt_double(o, "minFraction", 0.0);
  p.max_fraction = opt_double(o, "maxFraction", 1.0);
  if (!(p.min_fraction >= 0 && p.min_fraction <= 1) || !(p.max_fraction >= 0 && p.max_fraction <= 1))
    throw_js(o.Env(), "E_RANGE", "options minFraction and maxFraction must lie in [0, 1], got ", p.min_fraction,
             " and ", p.max_fraction);
  p.rle = opt_rle_form(o, "rle", RleForm::None);
  p.want_mask = opt_bool(o, "mask", true);
  p.threads = opt_threads(o);
  return p;
}

// --- Mask kernels ------------------------------------------------------------

Napi::Value Invert(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  const int threads = opt_threads(arg_options(info, 4));
  Napi::Uint8Array out = alloc_u8(env, b.array.ElementLength());
  uint8_t* dst = out.Data();
  const MaskBatchView v = b.view;
  return run_job<int>(
      env, sync, {b.array, out}, [=] { mask_invert(v, dst, threads); return 0; },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value Largest(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  Napi::Object o = arg_options(info, 4);
  const int conn = opt_connectivity(o), threads = opt_threads(o);
  Napi::Uint8Array out = alloc_u8(env, b.array.ElementLength());
  uint8_t* dst = out.Data();
  const MaskBatchView v = b.view;
  struct R {
    std::vector<int64_t> area, comps;
  };
  return run_job<R>(
      env, sync, {b.array, out},
      [=] {
        R r;
        r.area.resize(static_cast<size_t>(v.n));
        r.comps.resize(static_cast<size_t>(v.n));
        mask_largest_component(v, conn, dst, r.area.data(), r.comps.data(), threads);
        return r;
      },
      [ref = out_ref(out)](Napi::Env env, R& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("data", out_value(env, ref));
        o.Set("area", to_f64(env, r.area));
        o.Set("components", to_f64(env, r.comps));
        return o;
      });
}

Napi::Value FillHoles(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  Napi::Object o = arg_options(info, 4);
  const int conn = opt_connectivity(o), threads = opt_threads(o);
  Napi::Uint8Array out = alloc_u8(env, b.array.ElementLength());
  uint8_t* dst = out.Data();
  const MaskBatchView v = b.view;
  return run_job<int>(
      env, sync, {b.array, out}, [=] { mask_fill_holes(v, conn, dst, threads); return 0; },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value Stats(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  const int threads = opt_threads(arg_options(info, 4));
  const MaskBatchView v = b.view;
  struct R {
    std::vector<int64_t> area;
    std::vector<Box> box;
  };
  return run_job<R>(
      env, sync, {b.array},
      [=] {
        R r;
        r.area.resize(static_cast<size_t>(v.n));
        r.box.resize(static_cast<size_t>(v.n));
        mask_stats(v, r.area.data(), r.box.data(), threads);
        return r;
      },
      [](Napi::Env env, R& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("area", to_f64(env, r.area));
        o.Set("bbox", boxes_f64(env, r.box));
        return o;
      });
}

Napi::Value Iou(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Napi::Uint8Array a = arg_u8(info, 0, "mask a");
  MaskBatchArg b = arg_mask_batch(info, 1, "mask b");
  if (a.ElementLength() != b.array.ElementLength())
    throw_js(env, "E_SHAPE", "mask a has ", a.ElementLength(), " bytes but mask b has ", b.array.ElementLength());
  const int threads = opt_threads(arg_options(info, 5));
  MaskBatchView va = b.view;
  va.data = a.Data();
  const MaskBatchView vb = b.view;
  return run_job<std::vector<double>>(
      env, sync, {a, b.array},
      [=] {
        std::vector<double> r(static_cast<size_t>(vb.n));
        mask_iou(va, vb, r.data(), threads);
        return r;
      },
      [](Napi::Env env, std::vector<double>& r) -> Napi::Value { return to_f64(env, r); });
}

Napi::Value Crop(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Image im = arg_image(info, 0);
  Napi::Uint8Array mask = arg_u8(info, 4, "mask");
  if (static_cast<int64_t>(mask.ElementLength()) != im.view.h * im.view.w)
    throw_js(env, "E_SHAPE", "mask has ", mask.ElementLength(), " bytes but the image is ", im.view.h, " x ",
             im.view.w);
  bool has_box = false;
  Box box;
  Napi::Value bv = arg_value(info, 5);
  if (!bv.IsUndefined() && !bv.IsNull()) {
    if (!bv.IsTypedArray() || bv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        bv.As<Napi::Float64Array>().ElementLength() != 4)
      throw_js(env, "E_TYPE", "box must be a Float64Array [x, y, w, h] or null");
    Napi::Float64Array f = bv.As<Napi::Float64Array>();
    int64_t vals[4];
    for (int k = 0; k < 4; ++k) {
      const double d = f[k];
      if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9e15)
        throw_js(env, "E_RANGE", "box values must be integers, got ", d);
      vals[k] = static_cast<int64_t>(d);
    }
    box = Box{vals[0], vals[1], vals[2], vals[3]};
    has_box = true;
  }
  const ImageView iv = im.view;
  const uint8_t* mk = mask.Data();
  struct R {
    std::vector<uint8_t> data;
    Box box;
  };
  return run_job<R>(
      env, sync, {im.array, mask},
      [=] {
        R r;
        r.box = mask_crop_rgba(iv, mk, has_box ? &box : nullptr, r.data);
        return r;
      },
      [](Napi::Env env, R& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        Napi::Uint8Array d = Napi::Uint8Array::New(env, r.data.size());
        if (!r.data.empty()) std::memcpy(d.Data(), r.data.data(), r.data.size());
        o.Set("data", d);
        o.Set("bbox", boxes_f64(env, {r.box}));
        return o;
      });
}

Napi::Value CornerBackground(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Image im = arg_image(info, 0);
  const int tol = static_cast<int>(opt_int(arg_options(info, 4), "tolerance", 10, 0, 255));
  Napi::Uint8Array out = alloc_u8(env, static_cast<size_t>(im.view.h * im.view.w));
  uint8_t* dst = out.Data();
  const ImageView iv = im.view;
  return run_job<int>(
      env, sync, {im.array, out}, [=] { corner_background(iv, tol, dst); return 0; },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value PostProcess(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  const PostOptions p = read_post_options(arg_options(info, 4));
  OutRef ref;
  uint8_t* dst = nullptr;
  std::vector<Napi::Value> keep{b.array};
  if (p.want_mask) {
    Napi::Uint8Array out = alloc_u8(env, b.array.ElementLength());
    dst = out.Data();
    ref = out_ref(out);
  }
  const MaskBatchView v = b.view;
  return run_job<PostResult>(
      env, sync, keep, [=] { return post_process(v, p, dst); },
      [ref, p](Napi::Env env, PostResult& r) -> Napi::Value { return post_result(env, r, out_value(env, ref), p.rle); });
}

Napi::Value CornerForeground(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Image im = arg_image(info, 0);
  Napi::Object o = arg_options(info, 4);
  const PostOptions p = read_post_options(o);
  const int tol = static_cast<int>(opt_int(o, "tolerance", 10, 0, 255));
  const bool want_bg = opt_bool(o, "background", false);
  const size_t px = static_cast<size_t>(im.view.h * im.view.w);
  OutRef ref, bgref;
  uint8_t *dst = nullptr, *bg = nullptr;
  std::vector<Napi::Value> keep{im.array};
  if (p.want_mask) {
    Napi::Uint8Array out = alloc_u8(env, px);
    dst = out.Data();
    ref = out_ref(out);
  }
  if (want_bg) {
    Napi::Uint8Array out = alloc_u8(env, px);
    bg = out.Data();
    bgref = out_ref(out);
  }
  const ImageView iv = im.view;
  return run_job<PostResult>(
      env, sync, keep, [=] { return corner_foreground(iv, tol, p, dst, bg); },
      [ref, bgref, p](Napi::Env env, PostResult& r) -> Napi::Value {
        Napi::Object o = post_result(env, r, out_value(env, ref), p.rle);
        if (bgref) o.Set("background", out_value(env, bgref));
        return o;
      });
}

}  // namespace

void register_mask(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports,
                   {
                       job<Invert>("maskInvert"),
                       job<Largest>("maskLargestComponent"),
                       job<FillHoles>("maskFillHoles"),
                       job<Stats>("maskStats"),
                       job<Iou>("maskIou"),
                       job<Crop>("maskCrop"),
                       job<CornerBackground>("maskCornerBackground"),
                       job<PostProcess>("maskPostProcess"),
                       job<CornerForeground>("maskCornerForeground"),
                   });
}

}  // namespace genaug::binding
