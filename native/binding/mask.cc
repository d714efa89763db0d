// N-API glue for native/core/mask and native/core/rle: masks are Uint8Array
// batches (data, n, h, w), images Uint8Array (h, w, channels), RLE counts a
// Uint32Array or the COCO string form.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <atomic>
#include <memory>

#include "common.h"
#include "mask.h"
#include "parallel.h"
#include "rle.h"

namespace genaug::binding {

namespace {

// Core checks run on the JS thread: genaug::Error becomes a GenaugError.
template <typename Fn>
void checked(Napi::Env env, Fn&& fn) {
  try {
    fn();
  } catch (const genaug::Error& e) {
    throw_error(env, e.code(), e.what());
  }
}

Napi::Value arg_at(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

Napi::Object opts_at(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = arg_at(info, i);
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(info.Env());
  return arg_object(info, i, "options");
}

double opt_double(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_js(o.Env(), "E_RANGE", "option ", key, " must be finite, got ", d);
  return d;
}

int opt_connectivity(Napi::Object o) {
  const int64_t c = opt_int(o, "connectivity", 8, 4, 8);
  if (c != 4 && c != 8) throw_js(o.Env(), "E_RANGE", "option connectivity must be 4 or 8, got ", c);
  return static_cast<int>(c);
}

// A Uint8Array of n bytes left uninitialised (node::Buffer's allocation, no
// zero fill), for outputs every kernel writes completely: zero-filling and
// faulting in a fresh 1 MiB array costs more than the kernels here.
Napi::Uint8Array alloc_u8(Napi::Env env, size_t n) {
  Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, n);
  return Napi::Uint8Array::New(env, n, b.ArrayBuffer(), b.ByteOffset());
}

// A reference to an output array that outlives the call's handle scope, so
// the Promise's completion (a later scope) can return it. Released on the JS
// thread with the job.
using OutRef = std::shared_ptr<Napi::Reference<Napi::Uint8Array>>;
OutRef out_ref(Napi::Uint8Array a) { return std::make_shared<Napi::Reference<Napi::Uint8Array>>(Napi::Persistent(a)); }
Napi::Value out_value(Napi::Env env, const OutRef& r) { return r ? Napi::Value(r->Value()) : env.Undefined(); }

int opt_threads(Napi::Object o) { return static_cast<int>(opt_int(o, "threads", 0, 0, 256)); }

RleForm opt_form(Napi::Object o, const char* key, RleForm fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw_js(o.Env(), "E_TYPE", "option ", key, " must be 'none', 'counts' or 'string'");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "none") return RleForm::None;
  if (s == "counts") return RleForm::Counts;
  if (s == "string") return RleForm::String;
  throw_js(o.Env(), "E_RANGE", "option ", key, " must be 'none', 'counts' or 'string', got '", s, "'");
}

struct Batch {
  Napi::Uint8Array array;
  MaskBatchView view;
};

// (data, n, h, w) starting at argument i.
Batch arg_batch(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  Batch b;
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

// RLE counts given as a Uint32Array or the string form. Strings are copied
// on the JS thread and parsed in resolve() (on the worker for async calls).
struct Counts {
  const uint32_t* ptr = nullptr;
  size_t m = 0;
  bool is_string = false;
  std::string str;
  std::vector<uint32_t> parsed;
  void resolve(int64_t h, int64_t w, const char* what) {
    if (is_string) {
      parsed = rle_from_string(str.data(), str.size(), h, w);
      ptr = parsed.data();
      m = parsed.size();
    } else {
      rle_check(ptr, m, h, w, what);
    }
  }
  RleRef ref() const { return RleRef{ptr, m}; }
};

Counts read_counts(Napi::Env env, Napi::Value v, const std::string& what, std::vector<Napi::Value>& keep) {
  Counts c;
  if (v.IsString()) {
    c.is_string = true;
    c.str = v.As<Napi::String>().Utf8Value();
  } else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    Napi::Uint32Array a = v.As<Napi::Uint32Array>();
    c.ptr = a.Data();
    c.m = a.ElementLength();
    keep.push_back(a);
  } else {
    throw_js(env, "E_TYPE", what, " must be RLE counts: a Uint32Array or the compressed string");
  }
  return c;
}

std::vector<Counts> read_counts_list(Napi::Env env, Napi::Value v, const char* what, std::vector<Napi::Value>& keep) {
  if (!v.IsArray()) throw_js(env, "E_TYPE", what, " must be an array of RLE counts");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<Counts> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i)
    out.push_back(read_counts(env, a.Get(i), std::string(what) + "[" + std::to_string(i) + "]", keep));
  return out;
}

Napi::Uint32Array to_u32(Napi::Env env, const std::vector<uint32_t>& v) {
  Napi::Uint32Array out = Napi::Uint32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(uint32_t));
  return out;
}

Napi::Value rle_value(Napi::Env env, const std::vector<uint32_t>& counts, RleForm form) {
  if (form == RleForm::String) return Napi::String::New(env, rle_to_string(counts.data(), counts.size()));
  return to_u32(env, counts);
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
  p.rle = opt_form(o, "rle", RleForm::None);
  p.want_mask = opt_bool(o, "mask", true);
  p.threads = opt_threads(o);
  return p;
}

// --- Mask kernels ------------------------------------------------------------

Napi::Value Invert(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Batch b = arg_batch(info, 0, "mask");
  const int threads = opt_threads(opts_at(info, 4));
  Napi::Uint8Array out = alloc_u8(env, b.array.ElementLength());
  uint8_t* dst = out.Data();
  const MaskBatchView v = b.view;
  return run_job<int>(
      env, sync, {b.array, out}, [=] { mask_invert(v, dst, threads); return 0; },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value Largest(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Batch b = arg_batch(info, 0, "mask");
  Napi::Object o = opts_at(info, 4);
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
  Batch b = arg_batch(info, 0, "mask");
  Napi::Object o = opts_at(info, 4);
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
  Batch b = arg_batch(info, 0, "mask");
  const int threads = opt_threads(opts_at(info, 4));
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
  Batch b = arg_batch(info, 1, "mask b");
  if (a.ElementLength() != b.array.ElementLength())
    throw_js(env, "E_SHAPE", "mask a has ", a.ElementLength(), " bytes but mask b has ", b.array.ElementLength());
  const int threads = opt_threads(opts_at(info, 5));
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
  Napi::Value bv = arg_at(info, 5);
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
  const int tol = static_cast<int>(opt_int(opts_at(info, 4), "tolerance", 10, 0, 255));
  Napi::Uint8Array out = alloc_u8(env, static_cast<size_t>(im.view.h * im.view.w));
  uint8_t* dst = out.Data();
  const ImageView iv = im.view;
  return run_job<int>(
      env, sync, {im.array, out}, [=] { corner_background(iv, tol, dst); return 0; },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value PostProcess(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Batch b = arg_batch(info, 0, "mask");
  const PostOptions p = read_post_options(opts_at(info, 4));
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
  Napi::Object o = opts_at(info, 4);
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

// --- RLE -----------------------------------------------------------------------

Napi::Value RleEncode(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Batch b = arg_batch(info, 0, "mask");
  Napi::Object o = opts_at(info, 4);
  const RleForm form = opt_form(o, "form", RleForm::String);
  if (form == RleForm::None) throw_js(env, "E_RANGE", "option form must be 'counts' or 'string'");
  const int threads = opt_threads(o);
  const MaskBatchView v = b.view;
  struct R {
    std::vector<std::vector<uint32_t>> counts;
    std::vector<std::string> strings;
  };
  return run_job<R>(
      env, sync, {b.array},
      [=] {
        R r;
        const size_t n = static_cast<size_t>(v.n);
        r.counts.resize(n);
        if (form == RleForm::String) r.strings.resize(n);
        const int64_t px = v.h * v.w;
        std::atomic<int64_t> next{0};
        run_threads(mask_threads(threads, v.n), [&](int) {
          for (;;) {
            const int64_t i = next.fetch_add(1);
            if (i >= v.n) return;
            r.counts[i] = rle_encode(v.data + i * px, v.h, v.w);
            if (form == RleForm::String) {
              r.strings[i] = rle_to_string(r.counts[i].data(), r.counts[i].size());
              std::vector<uint32_t>().swap(r.counts[i]);
            }
          }
        });
        return r;
      },
      [form](Napi::Env env, R& r) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, r.counts.size());
        for (size_t i = 0; i < r.counts.size(); ++i) {
          if (form == RleForm::String) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, r.strings[i]));
          else a.Set(static_cast<uint32_t>(i), to_u32(env, r.counts[i]));
        }
        return a;
      });
}

Napi::Value RleDecode(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto list = std::make_shared<std::vector<Counts>>(read_counts_list(env, arg_at(info, 0), "rles", keep));
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide);
  const int64_t w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  checked(env, [&] { check_mask_size(h, w, "mask"); });
  const int threads = opt_threads(opts_at(info, 3));
  const int64_t n = static_cast<int64_t>(list->size());
  if (h * w > 0 && n > (int64_t(1) << 40) / (h * w)) throw_js(env, "E_LIMIT", "decoding ", n, " masks of ", h, " x ", w, " is too large");
  Napi::Uint8Array out = alloc_u8(env, static_cast<size_t>(n * h * w));
  uint8_t* dst = out.Data();
  keep.push_back(out);
  return run_job<int>(
      env, sync, keep,
      [=] {
        std::atomic<int64_t> next{0};
        run_threads(mask_threads(threads, n), [&](int) {
          for (;;) {
            const int64_t i = next.fetch_add(1);
            if (i >= n) return;
            Counts& c = (*list)[static_cast<size_t>(i)];
            const std::string what = "rles[" + std::to_string(i) + "]";
            c.resolve(h, w, what.c_str());
            rle_decode(c.ptr, c.m, h, w, dst + i * h * w);
          }
        });
        return 0;
      },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

Napi::Value RleFromString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value s = arg_at(info, 0);
  if (!s.IsString()) throw_js(env, "E_TYPE", "counts must be the compressed RLE string");
  const std::string str = s.As<Napi::String>().Utf8Value();
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide), w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  std::vector<uint32_t> c;
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    c = rle_from_string(str.data(), str.size(), h, w);
  });
  return to_u32(env, c);
}

Napi::Value RleToString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = arg_at(info, 0);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw_js(env, "E_DTYPE", "counts must be a Uint32Array");
  Napi::Uint32Array a = v.As<Napi::Uint32Array>();
  return Napi::String::New(env, rle_to_string(a.Data(), a.ElementLength()));
}

// (counts, h, w) -> the resolved counts.
Counts single_counts(const Napi::CallbackInfo& info, int64_t& h, int64_t& w) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  Counts c = read_counts(env, arg_at(info, 0), "counts", keep);
  h = arg_int(info, 1, "height", 0, kMaxMaskSide);
  w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    c.resolve(h, w, "RLE");
  });
  return c;
}

Napi::Value RleArea(const Napi::CallbackInfo& info) {
  int64_t h, w;
  Counts c = single_counts(info, h, w);
  return Napi::Number::New(info.Env(), static_cast<double>(rle_area(c.ptr, c.m)));
}

Napi::Value RleToBbox(const Napi::CallbackInfo& info) {
  int64_t h, w;
  Counts c = single_counts(info, h, w);
  const auto bb = rle_to_bbox(c.ptr, c.m, h, w);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), 4);
  for (int k = 0; k < 4; ++k) out[k] = bb[k];
  return out;
}

Napi::Value RleMerge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  std::vector<Counts> list = read_counts_list(env, arg_at(info, 0), "rles", keep);
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide), w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  const bool intersect = arg_bool(info, 3, "intersect");
  const RleForm form = opt_form(opts_at(info, 4), "form", RleForm::String);
  std::vector<uint32_t> r;
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    std::vector<RleRef> refs;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string what = "rles[" + std::to_string(i) + "]";
      list[i].resolve(h, w, what.c_str());
      refs.push_back(list[i].ref());
    }
    r = rle_merge(refs, h, w, intersect);
  });
  return rle_value(env, r, form);
}

Napi::Value RleIou(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto dt = std::make_shared<std::vector<Counts>>(read_counts_list(env, arg_at(info, 0), "detections", keep));
  auto gt = std::make_shared<std::vector<Counts>>(read_counts_list(env, arg_at(info, 1), "ground truths", keep));
  const int64_t h = arg_int(info, 2, "height", 0, kMaxMaskSide), w = arg_int(info, 3, "width", 0, kMaxMaskSide);
  checked(env, [&] { check_mask_size(h, w, "mask"); });
  const uint8_t* crowd = nullptr;
  Napi::Value cv = arg_at(info, 4);
  if (!cv.IsUndefined() && !cv.IsNull()) {
    Napi::Uint8Array c = arg_u8(info, 4, "iscrowd");
    if (c.ElementLength() != gt->size())
      throw_js(env, "E_SHAPE", "iscrowd has ", c.ElementLength(), " entries but there are ", gt->size(),
               " ground truths");
    crowd = c.Data();
    keep.push_back(c);
  }
  const int threads = opt_threads(opts_at(info, 5));
  return run_job<std::vector<double>>(
      env, sync, keep,
      [=] {
        std::vector<RleRef> d, g;
        for (size_t i = 0; i < dt->size(); ++i) {
          const std::string what = "detections[" + std::to_string(i) + "]";
          (*dt)[i].resolve(h, w, what.c_str());
          d.push_back((*dt)[i].ref());
        }
        for (size_t i = 0; i < gt->size(); ++i) {
          const std::string what = "ground truths[" + std::to_string(i) + "]";
          (*gt)[i].resolve(h, w, what.c_str());
          g.push_back((*gt)[i].ref());
        }
        std::vector<double> out(d.size() * g.size());
        rle_iou(d, g, h, w, crowd, out.data(), threads);
        return out;
      },
      [](Napi::Env env, std::vector<double>& r) -> Napi::Value { return to_f64(env, r); });
}

// rleFromPolygons(polys: Float64Array[], h, w, {form}): pycocotools'
// frPyObjects(polys, h, w) followed by merge (annToRLE): when the first entry
// has exactly 4 numbers every entry is a box [x, y, w, h] (frBbox), as in
// pycocotools; otherwise each entry is a polygon x0, y0, x1, y1, ...
Napi::Value RleFromPolygons(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value pv = arg_at(info, 0);
  if (!pv.IsArray()) throw_js(env, "E_TYPE", "polygons must be an array of Float64Array");
  Napi::Array arr = pv.As<Napi::Array>();
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide), w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  const RleForm form = opt_form(opts_at(info, 3), "form", RleForm::String);
  std::vector<Napi::Float64Array> polys;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw_js(env, "E_TYPE", "polygons[", i, "] must be a Float64Array");
    polys.push_back(v.As<Napi::Float64Array>());
  }
  if (polys.empty()) throw_js(env, "E_SHAPE", "polygons is empty");
  const bool boxes = polys[0].ElementLength() == 4;
  if (!boxes && polys[0].ElementLength() < 4)
    throw_js(env, "E_SHAPE", "polygons[0] has ", polys[0].ElementLength(),
             " numbers; a polygon needs at least 3 points (pycocotools reads 4 numbers as a box)");
  std::vector<std::vector<uint32_t>> rles;
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    for (size_t i = 0; i < polys.size(); ++i) {
      const size_t len = polys[i].ElementLength();
      if (boxes && len != 4)
        fail("E_SHAPE", "polygons[", i, "] has ", len, " numbers, but polygons[0] has 4, which makes every entry a box [x, y, w, h] (as in pycocotools)");
      if (len % 2) fail("E_SHAPE", "polygons[", i, "] has an odd number of coordinates (", len, ")");
      rles.push_back(boxes ? rle_from_bbox(polys[i].Data(), h, w) : rle_from_polygon(polys[i].Data(), len / 2, h, w));
    }
  });
  std::vector<RleRef> refs;
  for (const auto& r : rles) refs.push_back(RleRef{r.data(), r.size()});
  std::vector<uint32_t> merged;
  checked(env, [&] { merged = rle_merge(refs, h, w, false); });
  return rle_value(env, merged, form);
}

#define GENAUG_PAIR(js, fn)                                                                                     \
  exports.Set(js, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return fn(i, false); }, js));      \
  exports.Set(js "Sync", Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return fn(i, true); }, js "Sync"))

}  // namespace

void register_mask(Napi::Env env, Napi::Object exports) {
  GENAUG_PAIR("maskInvert", Invert);
  GENAUG_PAIR("maskLargestComponent", Largest);
  GENAUG_PAIR("maskFillHoles", FillHoles);
  GENAUG_PAIR("maskStats", Stats);
  GENAUG_PAIR("maskIou", Iou);
  GENAUG_PAIR("maskCrop", Crop);
  GENAUG_PAIR("maskCornerBackground", CornerBackground);
  GENAUG_PAIR("maskPostProcess", PostProcess);
  GENAUG_PAIR("maskCornerForeground", CornerForeground);
  GENAUG_PAIR("rleEncode", RleEncode);
  GENAUG_PAIR("rleDecode", RleDecode);
  GENAUG_PAIR("rleIou", RleIou);
  exports.Set("rleFromString", Napi::Function::New(env, RleFromString, "rleFromString"));
  exports.Set("rleToString", Napi::Function::New(env, RleToString, "rleToString"));
  exports.Set("rleArea", Napi::Function::New(env, RleArea, "rleArea"));
  exports.Set("rleToBbox", Napi::Function::New(env, RleToBbox, "rleToBbox"));
  exports.Set("rleMerge", Napi::Function::New(env, RleMerge, "rleMerge"));
  exports.Set("rleFromPolygons", Napi::Function::New(env, RleFromPolygons, "rleFromPolygons"));
}

#undef GENAUG_PAIR

}  // namespace genaug::binding
