// N-API glue for native/core/linalg and native/core/metrics: the Gaussian
// statistics of an embedding matrix, the Fréchet distance between two
// Gaussians and the Vendi score, each as a Promise (libuv pool) and a *Sync
// twin.
#include <cmath>
#include <cstring>

#include "common.h"
#include "cpu.h"
#include "linalg.h"
#include "metrics.h"

namespace genaug::binding {

namespace {

Napi::Float64Array arg_f64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw_js(info.Env(), "E_DTYPE", what, " must be a Float64Array, got ", type_name(v));
  return v.As<Napi::Float64Array>();
}


struct Common {
  int threads = 0;
  Isa isa = Isa::Avx512;
  std::string name = "data";
  int64_t row_offset = 0;
  VendiPath path = VendiPath::Auto;
};

// { threads?, isa?, name?, rowOffset?, path? } at position i (optional).
Common read_options(const Napi::CallbackInfo& info, size_t i) {
  Common c;
  c.isa = active_isa();
  if (i >= info.Length() || info[i].IsUndefined()) return c;
  Napi::Object o = arg_object(info, i, "options");
  c.threads = static_cast<int>(opt_int(o, "threads", 0, 0, 256));
  c.name = opt_string(o, "name", c.name);
  c.row_offset = opt_int(o, "rowOffset", 0, 0, int64_t(1) << 50);
  c.isa = opt_isa(o);
  const std::string path = opt_string(o, "path", "auto");
  if (path == "gram") c.path = VendiPath::Gram;
  else if (path == "covariance") c.path = VendiPath::Covariance;
  else if (path != "auto") throw_js(info.Env(), "E_RANGE", "option path must be auto, gram or covariance; got ", path);
  return c;
}

Napi::Value GaussianStats(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  // Options first: their getters run JS, which must not run after the data pointers are taken.
  const Common c = read_options(info, 3);
  Napi::Float32Array da;
  const MatrixView m = read_matrix(info, 0, "data", da);
  StatsOptions opt;
  opt.threads = c.threads;
  opt.isa = c.isa;
  opt.name = c.name;
  opt.row_offset = c.row_offset;
  return run_job<GaussianState>(
      env, sync, {da}, [=] { return gaussian_stats(m, opt); },
      [](Napi::Env env, GaussianState& s) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("count", Napi::Number::New(env, static_cast<double>(s.count)));
        o.Set("dim", Napi::Number::New(env, static_cast<double>(s.dim)));
        o.Set("shift", to_f64(env, s.shift));
        o.Set("offset", to_f64(env, s.offset));
        o.Set("comoment", to_f64(env, s.comoment));
        return o;
      });
}

// A FrechetResult as the JS object both frechet entry points return.
Napi::Value frechet_to_js(Napi::Env env, FrechetResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("distance", Napi::Number::New(env, r.distance));
  o.Set("meanTerm", Napi::Number::New(env, r.mean_term));
  o.Set("trace1", Napi::Number::New(env, r.trace1));
  o.Set("trace2", Napi::Number::New(env, r.trace2));
  o.Set("traceSqrt", Napi::Number::New(env, r.trace_sqrt));
  o.Set("rank1", Napi::Number::New(env, static_cast<double>(r.rank1)));
  return o;
}

Napi::Value Frechet(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  const Common c = read_options(info, 4);
  Napi::Float64Array md = arg_f64(info, 0, "meanDiff");
  Napi::Float64Array c1 = arg_f64(info, 1, "cov1");
  Napi::Float64Array c2 = arg_f64(info, 2, "cov2");
  const int64_t dim = arg_int(info, 3, "dim", 1, kMaxDenseDim);
  if (static_cast<int64_t>(md.ElementLength()) != dim)
    throw_js(env, "E_SHAPE", "meanDiff has ", md.ElementLength(), " elements but dim is ", dim);
  for (auto [arr, name] : {std::pair{&c1, "cov1"}, std::pair{&c2, "cov2"}})
    if (static_cast<int64_t>(arr->ElementLength()) != dim * dim)
      throw_js(env, "E_SHAPE", name, " has ", arr->ElementLength(), " elements but dim x dim = ", dim * dim);
  // Copied (at most a few MiB): the job then owns its inputs outright.
  std::vector<double> d(md.Data(), md.Data() + dim);
  std::vector<double> s1(c1.Data(), c1.Data() + dim * dim), s2(c2.Data(), c2.Data() + dim * dim);
  MetricsOptions opt;
  opt.threads = c.threads;
  opt.isa = c.isa;
  return run_job<FrechetResult>(
      env, sync, {},
      [d = std::move(d), s1 = std::move(s1), s2 = std::move(s2), dim, opt] {
        return frechet_distance(d.data(), s1.data(), s2.data(), dim, opt);
      },
      frechet_to_js);
}

// frechetRows(a, rowsA, dim, b, rowsB, dimB, options?): the row path (N <= D on both sides).
Napi::Value FrechetRows(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  const Common c = read_options(info, 6);
  Napi::Float32Array da, db;
  const MatrixView a = read_matrix(info, 0, "a", da);
  const MatrixView b = read_matrix(info, 3, "b", db);
  MetricsOptions opt;
  opt.threads = c.threads;
  opt.isa = c.isa;
  return run_job<FrechetResult>(
      env, sync, {da, db}, [=] { return frechet_distance_rows(a, b, opt); },
      frechet_to_js);
}

Napi::Value Vendi(const Napi::CallbackInfo& info, bool sync) {
  Napi::Env env = info.Env();
  const Common c = read_options(info, 3);
  Napi::Float32Array da;
  const MatrixView m = read_matrix(info, 0, "data", da);
  VendiOptions opt;
  opt.threads = c.threads;
  opt.isa = c.isa;
  opt.path = c.path;
  opt.name = c.name;
  opt.row_offset = c.row_offset;
  return run_job<VendiResult>(
      env, sync, {da}, [=] { return vendi_score(m, opt); },
      [](Napi::Env env, VendiResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("score", Napi::Number::New(env, r.score));
        o.Set("entropy", Napi::Number::New(env, r.entropy));
        o.Set("gram", Napi::Boolean::New(env, r.gram));
        o.Set("eigenvalues", to_f64(env, r.eigenvalues));
        return o;
      });
}

}  // namespace

void register_metrics(Napi::Env env, Napi::Object exports) {
  export_functions(env, exports, {job<GaussianStats>("gaussianStats"), job<Frechet>("frechet"), job<FrechetRows>("frechetRows"), job<Vendi>("vendi")});
}

}  // namespace genaug::binding
