// N-API glue for native/core/rle: COCO RLE of mask batches (Uint8Array data,
// n, h, w), RLE counts given as a Uint32Array or the compressed string form.
// Strings are copied on the JS thread and parsed by the core on the worker.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "rle.h"

namespace genaug::binding {

namespace {

// One RLE argument: a Uint32Array (kept alive through `keep`) or a string.
RleInput read_rle(Napi::Env env, Napi::Value v, const std::string& what, std::vector<Napi::Value>& keep) {
  RleInput c;
  if (v.IsString()) {
    c.is_string = true;
    c.str = v.As<Napi::String>().Utf8Value();
  } else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    Napi::Uint32Array a = v.As<Napi::Uint32Array>();
    c.counts = a.Data();
    c.m = a.ElementLength();
    keep.push_back(a);
  } else {
    throw_js(env, "E_TYPE", what, " must be RLE counts: a Uint32Array or the compressed string");
  }
  return c;
}

std::vector<RleInput> read_rle_list(Napi::Env env, Napi::Value v, const char* what, std::vector<Napi::Value>& keep) {
  if (!v.IsArray()) throw_js(env, "E_TYPE", what, " must be an array of RLE counts");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<RleInput> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i)
    out.push_back(read_rle(env, a.Get(i), std::string(what) + "[" + std::to_string(i) + "]", keep));
  return out;
}

// (height, width) at arguments i, i + 1, checked as a mask size.
void arg_size(const Napi::CallbackInfo& info, size_t i, int64_t& h, int64_t& w) {
  h = arg_int(info, i, "height", 0, kMaxMaskSide);
  w = arg_int(info, i + 1, "width", 0, kMaxMaskSide);
  checked(info.Env(), [&] { check_mask_size(h, w, "mask"); });
}

Napi::Value rle_value(Napi::Env env, const std::vector<uint32_t>& counts, RleForm form) {
  if (form == RleForm::String) return Napi::String::New(env, rle_to_string(counts.data(), counts.size()));
  return to_u32(env, counts);
}

// rleEncode(data, n, h, w, {form, threads}) -> (Uint32Array | string)[]
Napi::Value Encode(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  MaskBatchArg b = arg_mask_batch(info, 0, "mask");
  Napi::Object o = arg_options(info, 4);
  const RleForm form = opt_rle_form(o, "form", RleForm::String);
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
        if (form == RleForm::String) r.strings = rle_encode_batch_strings(v, threads);
        else r.counts = rle_encode_batch(v, threads);
        return r;
      },
      [form](Napi::Env env, R& r) -> Napi::Value {
        const size_t n = form == RleForm::String ? r.strings.size() : r.counts.size();
        Napi::Array a = Napi::Array::New(env, n);
        for (size_t i = 0; i < n; ++i) {
          if (form == RleForm::String) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, r.strings[i]));
          else a.Set(static_cast<uint32_t>(i), to_u32(env, r.counts[i]));
        }
        return a;
      });
}

// rleDecode(rles, h, w, {threads}) -> Uint8Array of rles.length masks
Napi::Value Decode(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto list = std::make_shared<std::vector<RleInput>>(read_rle_list(env, arg_value(info, 0), "rles", keep));
  int64_t h, w;
  arg_size(info, 1, h, w);
  const int threads = opt_threads(arg_options(info, 3));
  const int64_t n = static_cast<int64_t>(list->size());
  if (h * w > 0 && n > (int64_t(1) << 40) / (h * w)) throw_js(env, "E_LIMIT", "decoding ", n, " masks of ", h, " x ", w, " is too large");
  Napi::Uint8Array out = alloc_u8(env, static_cast<size_t>(n * h * w));
  uint8_t* dst = out.Data();
  keep.push_back(out);
  return run_job<int>(
      env, sync, keep,
      [=] {
        rle_decode_batch(*list, h, w, dst, threads, "rles");
        return 0;
      },
      [ref = out_ref(out)](Napi::Env env, int&) -> Napi::Value { return out_value(env, ref); });
}

// rleIou(dt, gt, h, w, iscrowd | null, {threads}) -> Float64Array dt.length x gt.length
Napi::Value Iou(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  auto dt = std::make_shared<std::vector<RleInput>>(read_rle_list(env, arg_value(info, 0), "detections", keep));
  auto gt = std::make_shared<std::vector<RleInput>>(read_rle_list(env, arg_value(info, 1), "ground truths", keep));
  int64_t h, w;
  arg_size(info, 2, h, w);
  const uint8_t* crowd = nullptr;
  Napi::Value cv = arg_value(info, 4);
  if (!cv.IsUndefined() && !cv.IsNull()) {
    Napi::Uint8Array c = arg_u8(info, 4, "iscrowd");
    if (c.ElementLength() != gt->size())
      throw_js(env, "E_SHAPE", "iscrowd has ", c.ElementLength(), " entries but there are ", gt->size(),
               " ground truths");
    crowd = c.Data();
    keep.push_back(c);
  }
  const int threads = opt_threads(arg_options(info, 5));
  return run_job<std::vector<double>>(
      env, sync, keep,
      [=] {
        const std::vector<RleRef> d = rle_resolve_all(*dt, h, w, "detections");
        const std::vector<RleRef> g = rle_resolve_all(*gt, h, w, "ground truths");
        std::vector<double> out(d.size() * g.size());
        rle_iou(d, g, h, w, crowd, out.data(), threads);
        return out;
      },
      [](Napi::Env env, std::vector<double>& r) -> Napi::Value { return to_f64(env, r); });
}

// rleFromString(s, h, w) -> Uint32Array
Napi::Value FromString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value s = arg_value(info, 0);
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

// rleToString(counts: Uint32Array) -> string
Napi::Value ToString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = arg_value(info, 0);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw_js(env, "E_DTYPE", "counts must be a Uint32Array");
  Napi::Uint32Array a = v.As<Napi::Uint32Array>();
  return Napi::String::New(env, rle_to_string(a.Data(), a.ElementLength()));
}

// (counts, h, w) at arguments 0..2, resolved: `in` owns a parsed string.
RleRef single_rle(const Napi::CallbackInfo& info, RleInput& in, int64_t& h, int64_t& w) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  in = read_rle(env, arg_value(info, 0), "counts", keep);
  h = arg_int(info, 1, "height", 0, kMaxMaskSide);
  w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  RleRef r;
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    r = rle_resolve(in, h, w, "RLE");
  });
  return r;
}

// rleArea(counts, h, w) -> number
Napi::Value Area(const Napi::CallbackInfo& info) {
  RleInput in;
  int64_t h, w;
  const RleRef r = single_rle(info, in, h, w);
  return Napi::Number::New(info.Env(), static_cast<double>(rle_area(r.counts, r.m)));
}

// rleToBbox(counts, h, w) -> Float64Array [x, y, w, h]
Napi::Value ToBbox(const Napi::CallbackInfo& info) {
  RleInput in;
  int64_t h, w;
  const RleRef r = single_rle(info, in, h, w);
  const auto bb = rle_to_bbox(r.counts, r.m, h, w);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), 4);
  for (int k = 0; k < 4; ++k) out[k] = bb[k];
  return out;
}

// rleMerge(rles, h, w, intersect, {form}) -> counts or string
Napi::Value Merge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> keep;
  std::vector<RleInput> list = read_rle_list(env, arg_value(info, 0), "rles", keep);
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide), w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  const bool intersect = arg_bool(info, 3, "intersect");
  const RleForm form = opt_rle_form(arg_options(info, 4), "form", RleForm::String);
  std::vector<uint32_t> r;
  checked(env, [&] {
    check_mask_size(h, w, "mask");
    r = rle_merge(rle_resolve_all(list, h, w, "rles"), h, w, intersect);
  });
  return rle_value(env, r, form);
}

// rleFromPolygons(polys: Float64Array[], h, w, {form}): pycocotools'
// frPyObjects(polys, h, w) followed by merge (annToRLE): when the first entry
// has exactly 4 numbers every entry is a box [x, y, w, h] (frBbox), as in
// pycocotools; otherwise each entry is a polygon x0, y0, x1, y1, ...
Napi::Value FromPolygons(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value pv = arg_value(info, 0);
  if (!pv.IsArray()) throw_js(env, "E_TYPE", "polygons must be an array of Float64Array");
  Napi::Array arr = pv.As<Napi::Array>();
  const int64_t h = arg_int(info, 1, "height", 0, kMaxMaskSide), w = arg_int(info, 2, "width", 0, kMaxMaskSide);
  const RleForm form = opt_rle_form(arg_options(info, 3), "form", RleForm::String);
  std::vector<Napi::Float64Array> polys;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw_js(env, "E_TYPE", "polygons[", i, "] must be a Float64Array");
    polys.push_back(v.As<Napi::Float64Array>());
  }
  std::vector<PolygonRef> refs;
  refs.reserve(polys.size());
  for (auto& p : polys) refs.push_back(PolygonRef{p.Data(), p.ElementLength()});
  std::vector<uint32_t> merged;
  checked(env, [&] { merged = rle_from_polygons(refs, h, w); });  // every check of the values is the core's
  return rle_value(env, merged, form);
}

}  // namespace

void register_rle(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports,
                   {
                       job<Encode>("rleEncode"),
                       job<Decode>("rleDecode"),
                       job<Iou>("rleIou"),
                       plain("rleFromString", FromString),
                       plain("rleToString", ToString),
                       plain("rleArea", Area),
                       plain("rleToBbox", ToBbox),
                       plain("rleMerge", Merge),
                       plain("rleFromPolygons", FromPolygons),
                   });
}

}  // namespace genaug::binding
