// N-API glue for native/core/composite: compositeBatch(scenes, options) and
// its Sync twin. Every argument is validated here (on the JS thread) and again
// by the core; outputs (the composed image and one mask slot per instance)
// are allocated here, uninitialised, and filled by the core on the worker.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "common.h"
#include "composite.h"
#include "composite_device.h"
#include "cuda_api.h"

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

// device: 'cpu' (default) or 'cuda' (ts/kernels/composite.ts resolves
// 'auto'); deviceBytes caps the device memory of a batch of scenes (0: from
// the free memory).
struct DeviceChoice {
  bool cuda = false;
  int64_t bytes = 0;
};
DeviceChoice read_device(Napi::Env env, Napi::Value v) {
  DeviceChoice d;
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) return d;  // read_options has checked the type
  Napi::Object obj = v.As<Napi::Object>();
  const std::string device = opt_string(obj, "device", "cpu");
  if (device == "cuda") d.cuda = true;
  else if (device != "cpu") throw_js(env, "E_RANGE", "option device must be 'cpu' or 'cuda', got '", device, "'");
  d.bytes = opt_int(obj, "deviceBytes", 0, 0, int64_t(1) << 50);
  return d;
}

// Recycled output memory (the default). A 1024² scene with 8 instances needs
// 11 MiB of output; fresh memory costs one page fault per 4 KiB (2,800 per
// scene, more system time than the compositing itself: the kernel zeroes
// every page) and the allocator's unmapping when the garbage collector frees
// it. Here each call's outputs (every scene's image and mask slots) are one
// block of native memory handed to JavaScript as one external ArrayBuffer
// whose finalizer (run after the garbage collector found the block
// unreachable: every image and mask view of the call dropped) puts it back on
// a free list, so the next call writes into pages that are mapped already.
// One block per call, not per scene: V8 starts a collection for every 64 MiB
// or so of new external memory, and a call's many buffers made it run about
// two full collections per call of 32 1024² scenes, one buffer about one.
// Blocks are mapped in multiples of 2 MiB with transparent huge pages asked
// for, so even a fresh block costs few faults (but the kernel still zeroes
// it). A call takes the smallest free block that is large enough and at most
// a quarter larger; a fresh block of 16 MiB or more is an eighth larger than
// asked, so calls whose sizes vary a little share blocks. At most cap_ bytes (see below) wait on the free list;
// beyond that a returned block is unmapped.
//
// External ArrayBuffers cannot be transferred to another thread (Node marks
// them untransferable): callers that transfer the results (the paste workers)
// pass `transferable: true`, which writes into fresh JavaScript memory.
class BlockPool {
 public:
  static constexpr size_t kGranule = size_t(2) << 20;
  // The free list holds at most three times the largest call's output
  // (blocks come back a garbage collection and an event-loop turn late, so a
  // steady loop has two or three calls' worth in flight), up to six times
  // when blocks keep coming back late (see take), between 64 MiB and 2 GiB
  // (at least 64 MiB: a loader compositing one scene per call keeps a few).
  static constexpr size_t kHeldMin = size_t(64) << 20, kHeldMax = size_t(2) << 30;
  static constexpr size_t kMultMax = 6;
  // Blocks handed out and not yet back: past this (a loop that never lets the
  // event loop run, where finalizers cannot run) outputs go to ordinary
  // JavaScript memory, which the collector frees by itself.
  static constexpr size_t kOutstandingMax = size_t(4) << 30;

  // Called with each call's output bytes before its block is taken.
  void note_call(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    call_ = std::max(call_, bytes);
    outstanding_at_call_ = outstanding_;
    cap_ = std::min(kHeldMax, std::max({kHeldMin, cap_, mult_ * call_}));
  }

  bool can_lend(size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_ + size <= kOutstandingMax;
  }

  static size_t round(size_t n) { return ((n ? n : 1) + kGranule - 1) / kGranule * kGranule; }

  // A block of at least round(n) bytes (its size in `size`), or nullptr when
  // the system has no memory.
  uint8_t* take(size_t n, size_t& size) {
    size = round(n);
    // A fresh block gets an eighth more room (calls of a loader vary in size
    // with their instance counts: the next, slightly larger call can reuse it).
    const size_t fresh = size >= (size_t(16) << 20) ? round(n + n / 8) : size;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first - size <= size / 4) {
        size = it->first;
        uint8_t* b = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        held_ -= size;
        outstanding_ += size;
        return b;
      }
      // A fresh block while a call's worth of earlier blocks is still out:
      // they come back late (a collection and an event-loop turn after they
      // were dropped, on a busy machine sometimes a call or two later), so
      // keep more of them when they do rather than unmapping them, which
      // would make the next late return map (and the kernel zero) fresh
      // memory again.
      if (outstanding_at_call_ >= call_ && call_ > 0 && mult_ < kMultMax) {
        ++mult_;
        cap_ = std::min(kHeldMax, std::max(cap_, mult_ * call_));
        outstanding_at_call_ = 0;  // once per call
      }
      size = fresh;
      outstanding_ += size;
    }
#if defined(__linux__)
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::lock_guard<std::mutex> lock(mu_);
      outstanding_ -= size;
      return nullptr;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return static_cast<uint8_t*>(p);
#else
    void* p = std::malloc(size);
    if (!p) {
      std::lock_guard<std::mutex> lock(mu_);
      outstanding_ -= size;
    }
    return static_cast<uint8_t*>(p);
#endif
  }

  void give_back(uint8_t* b, size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      outstanding_ -= size;
      if (held_ + size <= cap_) {
        free_[size].push_back(b);
        held_ += size;
        return;
      }
    }
    unmap(b, size);
  }

  // Unmaps every block on the free list; returns the bytes released.
  size_t trim() {
    std::map<size_t, std::vector<uint8_t*>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(free_);
      held_ = 0;
    }
    size_t n = 0;
    for (auto& [size, list] : all)
      for (uint8_t* b : list) unmap(b, size), n += size;
    return n;
  }

  size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_;
  }

 private:
  static void unmap(uint8_t* b, size_t size) {
#if defined(__linux__)
    munmap(b, size);
#else
    (void)size;
    std::free(b);
#endif
  }
  std::mutex mu_;
  std::map<size_t, std::vector<uint8_t*>> free_;  // by size; no empty lists
  size_t held_ = 0, outstanding_ = 0, cap_ = kHeldMin, call_ = 0, mult_ = 3, outstanding_at_call_ = 0;
};

// Never destroyed: finalizers of blocks still alive at exit may run late.
BlockPool& block_pool() {
  static BlockPool* pool = new BlockPool();
  return *pool;
}

// A Uint8Array of n bytes (uninitialised) in a recycled block. V8 counts an
// external ArrayBuffer's bytes as external memory itself (its array buffer
// sweeper adds them when the buffer is made and takes them off when it is
// swept), which is what starts the collection that returns the block; an
// extra napi_adjust_external_memory would count every block twice and take
// its share off only when the finalizer runs, an event-loop turn later.
//
// A call's block is taken before the work and handed to JavaScript (wrapped)
// after the work was queued: making the ArrayBuffer is what lets V8 run a
// marking step (several ms: the external memory it adds), which then runs
// while the pool threads composite instead of before they start.
struct Lent {
  uint8_t* raw = nullptr;  // a pool block not wrapped yet (owned here)
  size_t size = 0;         // its size
  size_t n = 0;            // bytes asked for
  Napi::Reference<Napi::Uint8Array> js;  // the wrapped block, or ordinary JavaScript memory
  uint8_t* data() { return raw ? raw : js.Value().Data(); }
};

// n bytes (uninitialised): a pool block, or ordinary JavaScript memory past
// kOutstandingMax.
void lend(Napi::Env env, size_t n, Lent& l) {
  BlockPool& pool = block_pool();
  l.n = n;
  if (!pool.can_lend(BlockPool::round(n))) {
    l.js = Napi::Persistent(alloc_u8(env, n));
    return;
  }
  l.raw = pool.take(n, l.size);
  if (!l.raw) throw_js(env, "E_NOMEM", "could not map ", l.size, " bytes of composite output");
}

// Hands a lent pool block to JavaScript: an external ArrayBuffer whose
// finalizer returns it. On failure the block stays in `l` (its owner gives it
// back once no thread writes it any more).
void wrap(Napi::Env env, Lent& l) {
  if (!l.raw) return;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, l.raw, l.size,
      [](Napi::Env, void* data, void* hint) {
        const size_t bytes = reinterpret_cast<size_t>(hint);
        block_pool().give_back(static_cast<uint8_t*>(data), bytes);
      },
      reinterpret_cast<void*>(l.size));
  l.raw = nullptr;  // owned by the ArrayBuffer from here on
  l.js = Napi::Persistent(Napi::Uint8Array::New(env, l.n, ab, 0));
}

Napi::Value CompositeMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool trim = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  Napi::Object o = Napi::Object::New(env);
  const size_t released = trim ? block_pool().trim() : 0;
  o.Set("heldBytes", Napi::Number::New(env, static_cast<double>(block_pool().held())));
  o.Set("releasedBytes", Napi::Number::New(env, static_cast<double>(released)));
  return o;
}

// One uninitialised block per call (per 512 MiB of it) holds every scene's
// image and mask slots (each scene's at a 64-byte aligned offset): allocating (and later freeing)
// nine 1 MiB arrays per 1024² scene on the JS thread costs more than
// compositing it. The core writes the image, the real slots and the pasted
// slots completely; the result's arrays are views.
struct Outputs {
  std::vector<Lent> shared;                                   // the call's blocks
  std::vector<Napi::Reference<Napi::Uint8Array>> caller;      // per scene: its `out`, if given
  std::vector<size_t> need, offset, which;                    // per scene: bytes, and where in `shared`
  bool wrap_failed = false;
  // Blocks never wrapped (an error before the work, or after it was queued)
  // go back here: the work is over when the last owner lets go.
  ~Outputs() {
    for (Lent& l : shared)
      if (l.raw) block_pool().give_back(l.raw, l.size);
  }
};

Napi::Value CompositeBatch(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  Napi::Array list = as_array(env, info.Length() > 0 ? info[0] : env.Undefined(), "scenes");
  bool crop = false;
  const CompositeOptions opts = read_options(env, info.Length() > 1 ? info[1] : env.Undefined(), crop);
  const DeviceChoice dev = read_device(env, info.Length() > 1 ? info[1] : env.Undefined());
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
  // Outputs, after every check passed: each scene's block is its `out`, or
  // its range of the call's recycled block.
  // Scenes go into the call's block in order; a new block starts where the
  // next scene would take it past kCallBlockMax (a typed array holds at most
  // 4 GiB, and the free list at most 2 GiB: huge calls get several blocks).
  constexpr size_t kCallBlockMax = size_t(512) << 20;
  outs->need.assign(n, 0);
  outs->offset.assign(n, SIZE_MAX);
  outs->which.assign(n, 0);
  outs->caller.resize(n);
  std::vector<size_t> block_bytes;
  size_t shared_bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    CompositeScene& s = (*scenes)[i];
    const size_t hw = static_cast<size_t>(s.h * s.w);
    const size_t slots = crop ? 0 : static_cast<size_t>(s.real_count()) + s.pastes.size();
    s.crop_masks = crop;
    if (hw > 0 && slots + 3 > (size_t(1) << 46) / hw)
      throw_js(env, "E_LIMIT", "scenes[", i, "] would need ", slots + 3, " x ", hw, " bytes of output");
    outs->need[i] = hw * (3 + slots);
    Napi::Value ov = list.Get(i).As<Napi::Object>().Get("out");
    if (ov.IsUndefined() || ov.IsNull()) {
      const size_t bytes = (outs->need[i] + 63) / 64 * 64;
      if (block_bytes.empty() || (block_bytes.back() > 0 && block_bytes.back() + bytes > kCallBlockMax)) block_bytes.push_back(0);
      outs->which[i] = block_bytes.size() - 1;
      outs->offset[i] = block_bytes.back();
      block_bytes.back() += bytes;
      shared_bytes += bytes;
      if (shared_bytes > (size_t(1) << 46))
        throw_js(env, "E_LIMIT", "the scenes would need more than 2^46 bytes of output");
    } else {
      // The caller's uninitialised block (the TS wrapper passes
      // Buffer.allocUnsafeSlow or a CompositeOutputPool block: N-API has no
      // uninitialised allocation, and zero-filling here, on the JS thread,
      // would cost more than compositing).
      const std::string where = "scenes[" + std::to_string(i) + "]";
      Napi::Uint8Array block = field_u8(list.Get(i).As<Napi::Object>(), "out", where);
      if (block.ElementLength() < outs->need[i])
        throw_js(env, "E_SHAPE", where, ".out has ", block.ElementLength(), " bytes but the outputs need ", outs->need[i],
                 " (height x width x (3 + masks + instances), or x 3 with maskFormat 'box')");
      outs->caller[i] = Napi::Persistent(block);
    }
  }
  if (shared_bytes > 0) block_pool().note_call(shared_bytes);
  outs->shared.resize(block_bytes.size());
  for (size_t b = 0; b < block_bytes.size(); ++b) {
    if (block_bytes[b] > 0) lend(env, block_bytes[b], outs->shared[b]);
    else outs->shared[b].js = Napi::Persistent(Napi::Uint8Array::New(env, 0));
  }
  for (uint32_t i = 0; i < n; ++i) {
    CompositeScene& s = (*scenes)[i];
    const size_t hw = static_cast<size_t>(s.h * s.w);
    const size_t slots = crop ? 0 : static_cast<size_t>(s.real_count()) + s.pastes.size();
    uint8_t* base = outs->offset[i] != SIZE_MAX ? (outs->need[i] > 0 ? outs->shared[outs->which[i]].data() + outs->offset[i] : nullptr)
                                                 : outs->caller[i].Value().Data();
    s.out_image = base;
    for (size_t k = 0; k < slots; ++k) s.out_masks.push_back(base + hw * (3 + k));
  }
  // The synchronous twin runs the work here: its blocks are wrapped first.
  if (sync)
    for (Lent& l : outs->shared) wrap(env, l);
  Napi::Value job = run_job<std::vector<CompositeResult>>(
      env, sync, keep, [scenes, opts, dev] {
        if (dev.cuda) return device_composite_batch(*cuda_composite_backend(), *scenes, opts, dev.bytes);
        return composite_batch(*scenes, opts);
      },
      [scenes, outs, crop](Napi::Env env, std::vector<CompositeResult>& res) -> Napi::Value {
        if (outs->wrap_failed) throw_js(env, "E_NOMEM", "could not hand the composite output to JavaScript");
        Napi::Array out = Napi::Array::New(env, res.size());
        for (size_t i = 0; i < res.size(); ++i) {
          const CompositeScene& s = (*scenes)[i];
          Napi::Object so = Napi::Object::New(env);
          const bool in_shared = outs->offset[i] != SIZE_MAX;
          Napi::Uint8Array block = in_shared ? outs->shared[outs->which[i]].js.Value() : outs->caller[i].Value();
          Napi::ArrayBuffer ab = block.ArrayBuffer();
          const size_t base = block.ByteOffset() + (in_shared && outs->need[i] > 0 ? outs->offset[i] : 0),
                       hw = static_cast<size_t>(s.h * s.w);
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
  // The work is queued: wrap the blocks now (V8's marking step, if any, runs
  // beside it). A failure rejects the promise once the work is over, and the
  // unwrapped blocks go back to the pool then (~Outputs).
  if (!sync) {
    try {
      for (Lent& l : outs->shared) wrap(env, l);
    } catch (const Napi::Error&) {
      outs->wrap_failed = true;
    }
  }
  return job;
}

}  // namespace

void register_composite(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {job<CompositeBatch>("compositeBatch"), plain("compositeMemory", CompositeMemory)});
}

}  // namespace genaug::binding
