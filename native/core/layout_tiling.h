// The per-example arithmetic of CLIS-L (layout.cc), in one header that both
// the CPU path (layout.cc) and the device path (layout_device.cc's
// emulation, native/cuda/layout.cu: one example per GPU thread) compile: the
// geometry of a (subject, object) box pair and the score of one real example
// against a layout's pair. Double arithmetic with no contraction (the core is
// built without -mfma, the CUDA files with --fmad=false) and correctly rounded
// square roots, so every backend computes the same bytes.
#pragma once
#include <cmath>
#include <cstdint>

#include "device_tiling.h"  // GENAUG_HD

namespace genaug::clis {

GENAUG_HD inline double sqrt64(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}
GENAUG_HD inline double max64(double a, double b) { return a < b ? b : a; }  // std::max
GENAUG_HD inline double min64(double a, double b) { return b < a ? b : a; }  // std::min

GENAUG_HD inline double ratio_sim(double a, double b) {
  if (a + b < 1e-10) return 1.0;
  const double hi = max64(a, b);
  return 1.0 - fabs(a - b) / hi;
}

GENAUG_HD inline double penalty(double s, double t) {
  if (s >= t) return s;
  return t - (1.0 + t) * (1.0 - s / t);
}

GENAUG_HD inline double warp(double x) {
  if (x >= 0.9) return x;
  if (x >= 0.8) return x * x;
  if (x >= 0.7) return x * x * x;
  if (x >= 0.6) return x * x * x * x;
  return x * x * x * x * x;
}

GENAUG_HD inline double iou(const float* a, const float* b) {
  const double ax0 = a[0], ay0 = a[1], ax1 = ax0 + a[2], ay1 = ay0 + a[3];
  const double bx0 = b[0], by0 = b[1], bx1 = bx0 + b[2], by1 = by0 + b[3];
  const double iw = max64(0.0, min64(ax1, bx1) - max64(ax0, bx0));
  const double ih = max64(0.0, min64(ay1, by1) - max64(ay0, by0));
  const double inter = iw * ih;
  const double uni = double(a[2]) * a[3] + double(b[2]) * b[3] - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// The geometry of one (subject box, object box) pair that the example scores compare.
struct PairGeom {
  double area_ratio;  // A(s) / A(o)
  double iou;
  double rho;         // |c_s - c_o| / ((D_s + D_o) / 2)
  double vx, vy;      // c_o - c_s
  bool zero;          // v == 0
};

GENAUG_HD inline PairGeom geom(const float* s, const float* o) {
  PairGeom g;
  g.area_ratio = (double(s[2]) * s[3]) / (double(o[2]) * o[3]);
  g.iou = iou(s, o);
  const double csx = s[0] + 0.5 * double(s[2]), csy = s[1] + 0.5 * double(s[3]);
  const double cox = o[0] + 0.5 * double(o[2]), coy = o[1] + 0.5 * double(o[3]);
  g.vx = cox - csx;
  g.vy = coy - csy;
  const double dist = sqrt64(g.vx * g.vx + g.vy * g.vy);
  const double ds = sqrt64(double(s[2]) * s[2] + double(s[3]) * s[3]);
  const double dd = sqrt64(double(o[2]) * o[2] + double(o[3]) * o[3]);
  g.rho = dist / ((ds + dd) / 2.0);
  g.zero = dist < 1e-12;
  return g;
}

struct Params {
  double tau, t, high_sim;
  bool faithful, balance;
};

// One real example (subject box esb, object box eob, name similarities ss and
// os) against a layout pair of geometry gp: false when it is not a candidate
// (a similarity below tau); else its score, its weight w and whether both
// similarities are high.
GENAUG_HD inline bool example(const PairGeom& gp, const float* esb, const float* eob, double ss, double os, bool sym,
                              const Params& o, double& score, double& w, bool& hi) {
  if (!(ss >= o.tau && os >= o.tau)) return false;
  w = warp(ss) * warp(os);
  hi = ss >= o.high_sim && os >= o.high_sim;
  const double t = o.t;
  const PairGeom ge = geom(esb, eob);
  const double size = penalty(w * ratio_sim(gp.area_ratio, ge.area_ratio), t);
  const double iou_term = penalty(w * ratio_sim(gp.iou, ge.iou), t);
  double dist;
  if (o.faithful) {
    dist = iou_term;
  } else {
    const double rho_term = penalty(w * ratio_sim(gp.rho, ge.rho), t);
    double wi = 0.5, wr = 0.5;
    if (o.balance) {
      if (iou_term > 0.95) wi = 0.2, wr = 0.8;
      else if (rho_term > 0.95) wi = 0.8, wr = 0.2;
    }
    dist = wi * iou_term + wr * rho_term;
  }
  double dir;
  if (gp.zero && ge.zero) {
    dir = 1.0;
  } else if (gp.zero || ge.zero) {
    dir = 0.0;
  } else {
    const double np = sqrt64(gp.vx * gp.vx + gp.vy * gp.vy), ne = sqrt64(ge.vx * ge.vx + ge.vy * ge.vy);
    double c = (gp.vx * ge.vx + gp.vy * ge.vy) / (np * ne);
    if (sym) c = max64(c, (-gp.vx * ge.vx + gp.vy * ge.vy) / (np * ne));
    dir = penalty(w * (c + 1.0) / 2.0, t);
  }
  score = (0.5 * size + 1.0 * dist + 0.8 * dir) / 2.3;
  return true;
}

// ------------------------------------------------------------ device path --

// The pool as the device path holds it (device or host memory).
struct PoolView {
  const int32_t* start;    // R + 1
  const int32_t* subject;  // per example: pool name id
  const int32_t* object;
  const float* subject_box;  // 4 per example
  const float* object_box;
  const float* sim;  // Q x P
  int64_t P;
};

// One layout pair to score against every example of its predicate; its
// outputs go to [out, out + examples of r).
struct Job {
  PairGeom gp;
  int64_t out;
  int32_t sname, oname;  // layout name ids of the subject and the object
  int32_t r;
  int32_t sym;
};

// The job whose outputs hold index x (jobs sorted by out, the first at 0).
GENAUG_HD inline int64_t job_of(const Job* jobs, int64_t n, int64_t x) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (jobs[mid].out <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

constexpr uint8_t kCandidate = 1, kHigh = 2;

// What one device thread computes: output x, one (job, example) pair.
GENAUG_HD inline void example_at(const PoolView& pv, const Job* jobs, int64_t njobs, int64_t x, const Params& o,
                                 double* score, double* w, uint8_t* flags) {
  const Job& jb = jobs[job_of(jobs, njobs, x)];
  const int64_t e = pv.start[jb.r] + (x - jb.out);
  const float ss = pv.sim[int64_t(jb.sname) * pv.P + pv.subject[e]];
  const float os = pv.sim[int64_t(jb.oname) * pv.P + pv.object[e]];
  double sc = 0.0, ww = 0.0;
  bool hi = false;
  const bool cand = example(jb.gp, pv.subject_box + 4 * e, pv.object_box + 4 * e, ss, os, jb.sym != 0, o, sc, ww, hi);
  score[x] = sc;
  w[x] = ww;
  flags[x] = static_cast<uint8_t>((cand ? kCandidate : 0) | (hi ? kHigh : 0));
}

}  // namespace genaug::clis
