// N-API glue for native/core/composite: compositeBatch(scenes, options) and
// its Sync twin. Every argument is validated here (on the JS thread) and again
// by the core; outputs (the composed image and one mask slot per instance)
// are allocated here, uninitialised, and filled by the core on the worker.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "composite.h"

namespace genaug::binding {

namespace {

int64_t field_int(Napi::Object o, const char* key, const std::string& where, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_js(o.Env(), "E_TYPE", where, ".", key, " must be a number, got ", type_name(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throw_js(o.Env(), "E_RANGE", where, ".", key, " must be an integer, got ", d);
  if (d < static_cast<double>(min) || d > static_cast<double>(max))
    throw_js(o.Env(), "E_RANGE", where, ".", key, " must be in [", min, ", ", max, "], got ", d);
  return static_cast<int64_t>(d);
}

double field_number(Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_js(o.Env(), "E_TYPE", where, ".", key, " must be a number, got ", type_name(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::fabs(d) > kMaxCentre)
    throw_js(o.Env(), "E_RANGE", where, ".", key, " must be finite with |value| <= 1e12, got ", d);
  return d;
}

Napi::Uint8Array field_u8(Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw_js(o.Env(), "E_DTYPE", where, ".", key, " must be a Uint8Array, got ", type_name(v));
  return v.As<Napi::Uint8Array>();
}

Napi::Object as_object(Napi::Env env, Napi::Value v, const std::string& where) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) throw_js(env, "E_TYPE", where, " must be an object, got ", type_name(v));
  return v.As<Napi::Object>();
}

Napi::Array as_array(Napi::Env env, Napi::Value v, const std::string& where) {
  if (!v.IsArray()) throw_js(env, "E_TYPE", where, " must be an array, got ", type_name(v));
  return v.As<Napi::Array>();
}

CompositeOptions read_options(Napi::Env env, Napi::Value v, bool& crop) {
  CompositeOptions o;
  o.isa = active_isa();
  crop = false;
  if (v.IsUndefined() || v.IsNull()) return o;
  Napi::Object obj = as_object(env, v, "options");
  const std::string fmt = opt_string(obj, "maskFormat", "full");
  if (fmt == "box") crop = true;
  else if (fmt != "full") throw_js(env, "E_RANGE", "option maskFormat must be 'full' or 'box', got '", fmt, "'");
  const std::string blend = opt_string(obj, "blend", "basic");
  if (blend == "basic") o.blend = BlendMode::Basic;
  else if (blend == "alpha") o.blend = BlendMode::Alpha;
  else if (blend == "gaussian") o.blend = BlendMode::Gaussian;
  else throw_js(env, "E_RANGE", "option blend must be 'basic', 'alpha' or 'gaussian', got '", blend, "'");
  Napi::Value sg = obj.Get("sigma");
  if (!sg.IsUndefined()) {
    if (!sg.IsNumber()) throw_js(env, "E_TYPE", "option sigma must be a number, got ", type_name(sg));
    o.sigma = sg.As<Napi::Number>().DoubleValue();
    if (!(o.sigma > 0 && o.sigma <= 64)) throw_js(env, "E_RANGE", "option sigma must be in (0, 64], got ", o.sigma);
  }
  o.keep_max_shift = opt_int(obj, "keepMaxShift", 10, 0, int64_t(1) << 40);
  o.keep_min_area = opt_int(obj, "keepMinArea", 300, 0, int64_t(1) << 40);
  o.threads = static_cast<int>(opt_int(obj, "threads", 0, 0, 256));
  o.mask_threshold = static_cast<int>(opt_int(obj, "maskThreshold", 1, 1, 255));
  o.isa = opt_isa(obj);
  return o;
}

// One uninitialised block per scene holds its image and every mask slot:
// allocating (and later freeing) nine 1 MiB arrays per 1024² scene on the JS
// thread costs more than compositing it. The core writes the image, the real
// slots and the pasted slots completely; the result's arrays are views.
struct Outputs {
  std::vector<Napi::Reference<Napi::Uint8Array>> blocks;
};

Napi::Value CompositeBatch(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Napi::Array list = as_array(env, info.Length() > 0 ? info[0] : env.Undefined(), "scenes");
  bool crop = false;
  const CompositeOptions opts = read_options(env, info.Length() > 1 ? info[1] : env.Undefined(), crop);
  auto scenes = std::make_shared<std::vector<CompositeScene>>();
  auto outs = std::make_shared<Outputs>();
  std::vector<Napi::Value> keep;
  const uint32_t n = list.Length();
  scenes->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const std::string where = "scenes[" + std::to_string(i) + "]";
    Napi::Object so = as_object(env, list.Get(i), where);
    CompositeScene& s = (*scenes)[i];
    s.w = field_int(so, "width", where, 0, kMaxMaskSide);
    s.h = field_int(so, "height", where, 0, kMaxMaskSide);
    if (s.w > 0 && s.h > kMaxMaskPixels / s.w)
      throw_js(env, "E_LIMIT", where, " is ", s.h, " x ", s.w, ", over the limit of 2^32 - 1 pixels");
    Napi::Uint8Array img = field_u8(so, "image", where);
    s.image_bytes = static_cast<int64_t>(img.ElementLength());  // checked by composite_check, as every length below
    s.image = img.Data();
    keep.push_back(img);
    Napi::Value mv = so.Get("masks"), bv = so.Get("boxes");
    const bool has_masks = !mv.IsUndefined() && !mv.IsNull(), has_boxes = !bv.IsUndefined() && !bv.IsNull();
    if (has_masks && has_boxes)
      throw_js(env, "E_ARGUMENT", where, " has both masks and boxes; give masks, or boxes for a box-only scene");
    if (has_boxes) {
      s.box_only = true;
      if (!bv.IsTypedArray() || bv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
        throw_js(env, "E_DTYPE", where, ".boxes must be a Float64Array of [x, y, w, h] per box, got ", type_name(bv));
      Napi::Float64Array b = bv.As<Napi::Float64Array>();
      if (b.ElementLength() % 4)
        throw_js(env, "E_SHAPE", where, ".boxes has ", b.ElementLength(), " numbers, not a multiple of 4");
      s.boxes.assign(b.Data(), b.Data() + b.ElementLength());
      for (size_t k = 0; k < s.boxes.size(); ++k) {
        const double v = s.boxes[k];
        if (!std::isfinite(v) || std::fabs(v) > kMaxCentre)
          throw_js(env, "E_RANGE", where, ".boxes[", k / 4, "] must hold finite numbers with |v| <= 1e12, got ", v);
        if (k % 4 >= 2 && v < 0) throw_js(env, "E_RANGE", where, ".boxes[", k / 4, "] has a negative size ", v);
      }
    } else if (has_masks) {
      Napi::Array ma = as_array(env, mv, where + ".masks");
      for (uint32_t r = 0; r < ma.Length(); ++r) {
        const std::string mw = where + ".masks[" + std::to_string(r) + "]";
        Napi::Value m = ma.Get(r);
        if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
          throw_js(env, "E_DTYPE", mw, " must be a Uint8Array, got ", type_name(m));
        Napi::Uint8Array mu = m.As<Napi::Uint8Array>();
        s.masks.push_back(mu.Data());
        s.mask_bytes.push_back(static_cast<int64_t>(mu.ElementLength()));
        keep.push_back(mu);
      }
    }
    Napi::Value iv = so.Get("instances");
    if (!iv.IsUndefined() && !iv.IsNull()) {
      Napi::Array ia = as_array(env, iv, where + ".instances");
      for (uint32_t p = 0; p < ia.Length(); ++p) {
        const std::string pw = where + ".instances[" + std::to_string(p) + "]";
        Napi::Object po = as_object(env, ia.Get(p), pw);
        PasteSpec ps;
        ps.width = field_int(po, "width", pw, 0, kMaxCropSide);
        ps.height = field_int(po, "height", pw, 0, kMaxCropSide);
        ps.target_w = field_int(po, "targetWidth", pw, 0, kMaxTargetSide);
        ps.target_h = field_int(po, "targetHeight", pw, 0, kMaxTargetSide);
        Napi::Value fv = po.Get("flip");
        if (!fv.IsUndefined()) {
          if (!fv.IsBoolean()) throw_js(env, "E_TYPE", pw, ".flip must be a boolean, got ", type_name(fv));
          ps.flip = fv.As<Napi::Boolean>().Value();
        }
        ps.cx = field_number(po, "cx", pw);
        ps.cy = field_number(po, "cy", pw);
        Napi::Uint8Array rgba = field_u8(po, "rgba", pw);
        ps.rgba = rgba.Data();
        ps.rgba_bytes = static_cast<int64_t>(rgba.ElementLength());
        keep.push_back(rgba);
        s.pastes.push_back(ps);
      }
    }
    try {
      composite_check(s, where.c_str());
    } catch (const genaug::Error& e) {
      throw_error(env, e.code(), e.what());
    }
  }
  // Outputs, after every check passed.
  outs->blocks.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    CompositeScene& s = (*scenes)[i];
    const size_t hw = static_cast<size_t>(s.h * s.w);
    const size_t slots = crop ? 0 : static_cast<size_t>(s.real_count()) + s.pastes.size();
    s.crop_masks = crop;
    if (hw > 0 && slots + 3 > (size_t(1) << 46) / hw)
      throw_js(env, "E_LIMIT", "scenes[", i, "] would need ", slots + 3, " x ", hw, " bytes of output");
    // The caller's uninitialised block (the TS wrapper passes
    // Buffer.allocUnsafeSlow: N-API has no uninitialised allocation, and
    // zero-filling here, on the JS thread, would cost more than compositing).
    const size_t need = hw * (3 + slots);
    Napi::Object so = list.Get(i).As<Napi::Object>();
    Napi::Value ov = so.Get("out");
    Napi::Uint8Array block;
    if (ov.IsUndefined() || ov.IsNull()) {
      block = alloc_u8(env, need);
    } else {
      const std::string where = "scenes[" + std::to_string(i) + "]";
      block = field_u8(so, "out", where);
      if (block.ElementLength() < need)
        throw_js(env, "E_SHAPE", where, ".out has ", block.ElementLength(), " bytes but the outputs need ", need,
                 " (height x width x (3 + masks + instances), or x 3 with maskFormat 'box')");
    }
    uint8_t* base = block.Data();
    s.out_image = base;
    for (size_t k = 0; k < slots; ++k) s.out_masks.push_back(base + hw * (3 + k));
    outs->blocks.push_back(Napi::Persistent(block));
  }
  return run_job<std::vector<CompositeResult>>(
      env, sync, keep, [scenes, opts] { return composite_batch(*scenes, opts); },
      [scenes, outs, crop](Napi::Env env, std::vector<CompositeResult>& res) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, res.size());
        for (size_t i = 0; i < res.size(); ++i) {
          const CompositeScene& s = (*scenes)[i];
          Napi::Object so = Napi::Object::New(env);
          Napi::Uint8Array block = outs->blocks[i].Value();
          Napi::ArrayBuffer ab = block.ArrayBuffer();
          const size_t base = block.ByteOffset(), hw = static_cast<size_t>(s.h * s.w);
          so.Set("image", Napi::Uint8Array::New(env, hw * 3, ab, base));
          so.Set("width", Napi::Number::New(env, static_cast<double>(s.w)));
          so.Set("height", Napi::Number::New(env, static_cast<double>(s.h)));
          so.Set("boxOnly", Napi::Boolean::New(env, s.box_only));
          Napi::Array inst = Napi::Array::New(env, res[i].instances.size());
          for (size_t k = 0; k < res[i].instances.size(); ++k) {
            const CompositeInstance& c = res[i].instances[k];
            Napi::Object io = Napi::Object::New(env);
            io.Set("source", c.source == Source::Real ? "real" : "pasted");
            io.Set("index", Napi::Number::New(env, static_cast<double>(c.index)));
            if (crop) {
              Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(env, c.crop.data(), c.crop.size());
              io.Set("mask", Napi::Uint8Array::New(env, c.crop.size(), b.ArrayBuffer(), b.ByteOffset()));
            } else {
              io.Set("mask", Napi::Uint8Array::New(env, hw, ab, base + hw * (3 + static_cast<size_t>(c.slot))));
            }
            Napi::Array bb = Napi::Array::New(env, 4);
            bb.Set(0u, Napi::Number::New(env, static_cast<double>(c.box.x)));
            bb.Set(1u, Napi::Number::New(env, static_cast<double>(c.box.y)));
            bb.Set(2u, Napi::Number::New(env, static_cast<double>(c.box.w)));
            bb.Set(3u, Napi::Number::New(env, static_cast<double>(c.box.h)));
            io.Set("bbox", bb);
            io.Set("area", Napi::Number::New(env, static_cast<double>(c.area)));
            inst.Set(static_cast<uint32_t>(k), io);
          }
          so.Set("instances", inst);
          Napi::Array dr = Napi::Array::New(env, res[i].dropped.size());
          for (size_t k = 0; k < res[i].dropped.size(); ++k) {
            const CompositeDrop& d = res[i].dropped[k];
            Napi::Object dobj = Napi::Object::New(env);
            dobj.Set("source", d.source == Source::Real ? "real" : "pasted");
            dobj.Set("index", Napi::Number::New(env, static_cast<double>(d.index)));
            dobj.Set("reason", drop_reason_name(d.reason));
            dr.Set(static_cast<uint32_t>(k), dobj);
          }
          so.Set("dropped", dr);
          out.Set(static_cast<uint32_t>(i), so);
        }
        return out;
      });
}

}  // namespace

void register_composite(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {job<CompositeBatch>("compositeBatch")});
}

}  // namespace genaug::binding
