/**
 * Distribution metrics (ts/kernels/metrics.ts) against a small double-precision
 * oracle written here: two-pass mean/covariance, a cyclic Jacobi eigensolver,
 * the Fréchet distance through an explicit matrix square root, and the Vendi
 * score from the N x N similarity matrix.
 */
import { describe, expect, it } from 'vitest';

import {
  emptyGaussianStats,
  frechetDistance,
  frechetDistanceSync,
  gaussianCovariance,
  gaussianMean,
  gaussianStats,
  gaussianStatsSync,
  mergeGaussianStats,
  vendiScore,
  vendiScoreSync,
  type GaussianStats,
} from '../ts/kernels/metrics.js';
import type { Matrix } from '../ts/native/validate.js';
import { native } from '../ts/native/load.js';
import { gaussian, seededRandom } from '../ts/util/random.js';
import { expectCode } from './helpers.js';

// ------------------------------------------------------------------ oracle --

/** Eigenvalues (ascending) and eigenvectors (columns of v) of a symmetric n x n matrix, by cyclic Jacobi rotations. */
function jacobi(a0: Float64Array, n: number): { values: number[]; v: Float64Array } {
  const a = Float64Array.from(a0);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const at = (i: number, j: number) => a[i * n + j] as number;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += at(i, j) ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = at(p, q);
        if (apq === 0) continue;
        const theta = (at(q, q) - at(p, p)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = at(k, p);
          const akq = at(k, q);
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = at(p, k);
          const aqk = at(q, k);
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => at(x, x) - at(y, y));
  const values = order.map((i) => at(i, i));
  const vs = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vs[k * n + dst] = v[k * n + src] as number;
  });
  return { values, v: vs };
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const f = a[i * n + k] as number;
      for (let j = 0; j < n; j++) c[i * n + j] = (c[i * n + j] as number) + f * (b[k * n + j] as number);
    }
  return c;
}

/**
 * Eigenvalues at or below n x 2^-52 x the largest count as 0 (the rank
 * convention of the definition): without it, the square roots of the
 * rounding noise in the null space of a rank-deficient matrix add ~1e-8
 * relative error per null direction.
 */
function clipped(values: number[], n: number): number[] {
  const tol = n * Number.EPSILON * Math.max(0, ...values);
  return values.map((l) => (l > tol ? l : 0));
}

function sqrtm(s: Float64Array, n: number): Float64Array {
  const { values: raw, v } = jacobi(s, n);
  const values = clipped(raw, n);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += (v[i * n + k] as number) * Math.sqrt(values[k] as number) * (v[j * n + k] as number);
      out[i * n + j] = acc;
    }
  return out;
}

function refStats(m: Matrix): { mean: Float64Array; cov: Float64Array } {
  const { rows: N, dim: D, data } = m;
  const mean = new Float64Array(D);
  for (let r = 0; r < N; r++) for (let j = 0; j < D; j++) mean[j] = (mean[j] as number) + (data[r * D + j] as number);
  for (let j = 0; j < D; j++) mean[j] = (mean[j] as number) / N;
  const cov = new Float64Array(D * D);
  for (let r = 0; r < N; r++)
    for (let i = 0; i < D; i++) {
      const xi = (data[r * D + i] as number) - (mean[i] as number);
      for (let j = 0; j < D; j++) cov[i * D + j] = (cov[i * D + j] as number) + xi * ((data[r * D + j] as number) - (mean[j] as number));
    }
  if (N > 1) for (let i = 0; i < D * D; i++) cov[i] = (cov[i] as number) / (N - 1);
  else cov.fill(0);
  return { mean, cov };
}

function refFrechet(a: Matrix, b: Matrix): number {
  const x = refStats(a);
  const y = refStats(b);
  const D = a.dim;
  const h = sqrtm(x.cov, D);
  const inner = matmul(matmul(h, y.cov, D), h, D);
  for (let i = 0; i < D; i++)
    for (let j = i + 1; j < D; j++) {
      const s = 0.5 * ((inner[i * D + j] as number) + (inner[j * D + i] as number));
      inner[i * D + j] = s;
      inner[j * D + i] = s;
    }
  let trs = 0;
  for (const l of clipped(jacobi(inner, D).values, D)) trs += Math.sqrt(l);
  let d = 0;
  for (let j = 0; j < D; j++) d += ((x.mean[j] as number) - (y.mean[j] as number)) ** 2 + (x.cov[j * D + j] as number) + (y.cov[j * D + j] as number);
  return d - 2 * trs;
}

function refVendi(m: Matrix): number {
  const { rows: N, dim: D, data } = m;
  const norms = Array.from({ length: N }, (_, r) => Math.hypot(...Array.from(data.subarray(r * D, (r + 1) * D))));
  const k = new Float64Array(N * N);
  for (let a = 0; a < N; a++)
    for (let b = 0; b < N; b++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += (data[a * D + j] as number) * (data[b * D + j] as number);
      k[a * N + b] = s / (norms[a] as number) / (norms[b] as number) / N;
    }
  let h = 0;
  for (const l of jacobi(k, N).values) if (l > 0) h -= l * Math.log(l);
  return Math.exp(h);
}

/** Random rows: column j has mean means[j % len] and spread stds[j % len], with some correlation. */
function data(rows: number, dim: number, seed: number, means: number[] = [0], stds: number[] = [1]): Matrix {
  const r = seededRandom(seed);
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    let prev = 0;
    for (let j = 0; j < dim; j++) {
      const z = 0.8 * gaussian(r) + 0.6 * prev;
      prev = z;
      out[i * dim + j] = (means[j % means.length] as number) + (stds[j % stds.length] as number) * z;
    }
  }
  return { data: out, rows, dim };
}

/** max |a_ij - b_ij| / sqrt(b_ii b_jj). */
function normalisedError(a: Float64Array, b: Float64Array, D: number): number {
  let worst = 0;
  for (let i = 0; i < D; i++)
    for (let j = 0; j < D; j++) {
      const diff = Math.abs((a[i * D + j] as number) - (b[i * D + j] as number));
      if (diff === 0) continue;
      worst = Math.max(worst, diff / Math.sqrt((b[i * D + i] as number) * (b[j * D + j] as number)));
    }
  return worst;
}

function rows(m: Matrix, start: number, end: number): Matrix {
  return { data: m.data.subarray(start * m.dim, end * m.dim), rows: end - start, dim: m.dim };
}

// The native functions are registered by register_metrics() in addon.cc;
// until a build has them, the tests that need them are skipped.

// ------------------------------------------------------------ TS-only parts --

describe('mergeGaussianStats (TypeScript)', () => {
  it('merges hand-made states exactly and treats the empty state as the identity', () => {
    // Points {1, 3} and {10}: mean 14/3, comoment sum (x - mean)^2.
    const a: GaussianStats = { count: 2, dim: 1, shift: Float64Array.of(1), offset: Float64Array.of(1), comoment: Float64Array.of(2) };
    const b: GaussianStats = { count: 1, dim: 1, shift: Float64Array.of(10), offset: Float64Array.of(0), comoment: Float64Array.of(0) };
    const m = mergeGaussianStats(a, b);
    expect(m.count).toBe(3);
    expect(gaussianMean(m)[0]).toBeCloseTo(14 / 3, 14);
    const want = (1 - 14 / 3) ** 2 + (3 - 14 / 3) ** 2 + (10 - 14 / 3) ** 2;
    expect(m.comoment[0]).toBeCloseTo(want, 12);
    expect(gaussianCovariance(m)[0]).toBeCloseTo(want / 2, 12);
    const e = emptyGaussianStats(1);
    expect(mergeGaussianStats(e, a)).toEqual(a);
    expect(mergeGaussianStats(a, e)).toEqual(a);
    expect(mergeGaussianStats(a, e).comoment).not.toBe(a.comoment);
  });

  it('rejects malformed states', async () => {
    const ok = emptyGaussianStats(2);
    await expectCode(() => mergeGaussianStats(ok, emptyGaussianStats(3)), 'E_SHAPE');
    await expectCode(() => mergeGaussianStats(ok, { ...ok, shift: new Float32Array(2) } as unknown as GaussianStats), 'E_DTYPE');
    await expectCode(() => mergeGaussianStats(ok, { ...ok, comoment: new Float64Array(3) }), 'E_SHAPE');
    await expectCode(() => mergeGaussianStats(ok, { ...ok, count: -1 }), 'E_RANGE');
    await expectCode(() => mergeGaussianStats(ok, { ...ok, count: 1.5 }), 'E_RANGE');
    await expectCode(() => mergeGaussianStats(ok, null as unknown as GaussianStats), 'E_TYPE');
    await expectCode(() => mergeGaussianStats(ok, { ...ok, offset: Float64Array.of(0, NaN) }), 'E_NONFINITE', /offset element 1 is NaN/);
    await expectCode(() => gaussianCovariance(ok), 'E_RANGE');
  });
});

// ---------------------------------------------------------------- natively --

describe('gaussianStats', () => {
  it('matches a two-pass double reference on adversarial data (mean 1e4, std 1e-2, mixed scales)', async () => {
    const m = data(1500, 11, 3, [1e4, -3e3, 0, 1e-3, 7e5], [1e-2, 1, 1e-6, 30, 1e3, 5e-2]);
    const ref = refStats(m);
    const s = await gaussianStats(m);
    expect(s.count).toBe(1500);
    expect(normalisedError(gaussianCovariance(s), ref.cov, m.dim)).toBeLessThan(1e-9);
    const mean = gaussianMean(s);
    for (let j = 0; j < m.dim; j++) {
      const sd = Math.sqrt(ref.cov[j * m.dim + j] as number);
      expect(Math.abs((mean[j] as number) - (ref.mean[j] as number))).toBeLessThanOrEqual(1e-9 * sd + 4e-16 * Math.abs(ref.mean[j] as number));
    }
    // The Sync twin and any thread count give the same bytes.
    const t = gaussianStatsSync(m, { threads: 1 });
    expect(t.comoment).toEqual(s.comoment);
    expect((await gaussianStats(m, { threads: 3 })).comoment).toEqual(s.comoment);
  });

  it('merged chunks equal one pass; one row has covariance 0; no rows is the empty state', async () => {
    const m = data(400, 7, 9, [1e4, 5], [1e-2, 2]);
    const whole = await gaussianStats(m);
    let acc = emptyGaussianStats(7);
    const r = seededRandom(5);
    for (let i = 0; i < m.rows; ) {
      const e = Math.min(m.rows, i + Math.floor(r() * 8));
      acc = mergeGaussianStats(acc, gaussianStatsSync(rows(m, i, e)));
      i = e;
    }
    expect(acc.count).toBe(whole.count);
    expect(normalisedError(acc.comoment, whole.comoment, 7)).toBeLessThan(1e-12);
    const one = gaussianStatsSync(rows(m, 0, 1));
    expect(Array.from(gaussianCovariance(one))).toEqual(new Array(49).fill(0));
    expect(Array.from(gaussianMean(one))).toEqual(Array.from(m.data.subarray(0, 7)));
    const none = gaussianStatsSync(rows(m, 0, 0));
    expect(none.count).toBe(0);
    expect(mergeGaussianStats(none, whole)).toEqual(whole);
  });

  it('rejects bad input with GenaugError codes', async () => {
    const m = data(20, 5, 1);
    m.data[7 * 5 + 3] = NaN;
    await expectCode(gaussianStats(m, { describe: { name: 'real.npy', rowOffset: 100 } }), 'E_NONFINITE', /real\.npy row 107, column 3 is NaN/);
    await expectCode(() => gaussianStatsSync(m), 'E_NONFINITE');
    await expectCode(gaussianStats({ data: new Float64Array(4), rows: 2, dim: 2 } as unknown as Matrix), 'E_DTYPE');
    await expectCode(gaussianStats({ data: new Float32Array(5), rows: 2, dim: 2 }), 'E_SHAPE');
    await expectCode(gaussianStats(data(2, 2, 1), { threads: -1 }), 'E_RANGE');
    await expectCode(gaussianStats(data(2, 2, 1), { isa: 'sse' as 'auto' }), 'E_RANGE');
    await expectCode(gaussianStats(data(1, 9000, 1)), 'E_LIMIT');
    // The native layer checks again.
    const n = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    await expectCode(() => n.gaussianStatsSync!(new Float32Array(6), 2, 4), 'E_SHAPE');
    await expectCode(() => n.gaussianStatsSync!([1, 2], 1, 2), 'E_DTYPE');
    await expectCode(() => n.gaussianStatsSync!(new Float32Array(4), 2, 2, { threads: 'x' }), 'E_TYPE');
    await expectCode(() => n.frechetSync!(new Float64Array(2), new Float64Array(4), new Float64Array(3), 2), 'E_SHAPE');
    await expectCode(() => n.frechetSync!(new Float64Array(2), new Float32Array(4), new Float64Array(4), 2), 'E_DTYPE');
    await expectCode(() => n.vendiSync!(new Float32Array(4), 2, 2, { path: 'both' }), 'E_RANGE');
  });
});

describe('frechetDistance', () => {
  it('matches the oracle on random data', async () => {
    for (const [na, nb, D] of [
      [300, 200, 4],
      [150, 400, 9],
      [60, 80, 12],
    ] as const) {
      const a = data(na, D, na + D, [0.5, -1], [1, 2]);
      const b = data(nb, D, nb + 7 * D, [0.2], [0.5, 1.5, 1]);
      const want = refFrechet(a, b);
      const got = await frechetDistance(await gaussianStats(a), await gaussianStats(b));
      expect(Math.abs(got.distance - want)).toBeLessThan(1e-9 * (got.trace1 + got.trace2));
      expect(got.rank1).toBe(D);
      const sync = frechetDistanceSync(gaussianStatsSync(b), gaussianStatsSync(a), { threads: 1 });
      expect(Math.abs(sync.distance - want)).toBeLessThan(1e-9 * (got.trace1 + got.trace2));
    }
  });

  it('is 0 for a set with itself, the closed form in 1-D, and finite and >= 0 when N < D', async () => {
    for (const n of [3, 30, 2000]) {
      const s = gaussianStatsSync(data(n, 20, n, [1e4, 3], [1e-2, 2]));
      const f = frechetDistanceSync(s, s);
      expect(f.distance).toBeLessThanOrEqual(1e-6);
      expect(f.distance).toBeGreaterThanOrEqual(0);
      expect(f.rank1).toBe(Math.min(n - 1, 20));
    }
    const x = data(500, 1, 1, [2], [1.5]);
    const y = data(700, 1, 2, [-1], [0.3]);
    const rx = refStats(x);
    const ry = refStats(y);
    const want = ((rx.mean[0] as number) - (ry.mean[0] as number)) ** 2 + (Math.sqrt(rx.cov[0] as number) - Math.sqrt(ry.cov[0] as number)) ** 2;
    expect(frechetDistanceSync(gaussianStatsSync(x), gaussianStatsSync(y)).distance).toBeCloseTo(want, 10);
    for (const n of [1, 2, 6]) {
      const a = gaussianStatsSync(data(n, 32, 10 + n));
      const b = gaussianStatsSync(data(n + 4, 32, 20 + n, [0.5], [3]));
      for (const f of [frechetDistanceSync(a, b), frechetDistanceSync(b, a), frechetDistanceSync(a, a)]) {
        expect(Number.isFinite(f.distance)).toBe(true);
        expect(f.distance).toBeGreaterThanOrEqual(0);
      }
      const f = frechetDistanceSync(a, b);
      const want = refFrechet(data(n, 32, 10 + n), data(n + 4, 32, 20 + n, [0.5], [3]));
      expect(Math.abs(f.distance - want)).toBeLessThan(1e-10 * (f.trace1 + f.trace2));
    }
  });

  it('rejects empty or mismatched states', async () => {
    const s = gaussianStatsSync(data(5, 3, 1));
    await expectCode(frechetDistance(emptyGaussianStats(3), s), 'E_RANGE');
    await expectCode(frechetDistance(s, gaussianStatsSync(data(5, 4, 1))), 'E_SHAPE');
    await expectCode(() => frechetDistanceSync(s, { ...s, comoment: s.comoment.map((v, i) => (i === 4 ? Infinity : v)) }), 'E_NONFINITE', /comoment entry \(1, 1\)/);
  });
});

describe('vendiScore', () => {
  it('matches the oracle on both paths', async () => {
    for (const [n, d] of [
      [8, 20],
      [20, 6],
      [15, 15],
    ] as const) {
      const m = data(n, d, n * d, [0.3], [1, 0.2]);
      const want = refVendi(m);
      const got = await vendiScore(m);
      expect(got.path).toBe(n <= d ? 'gram' : 'covariance');
      expect(Math.abs(got.score - want)).toBeLessThan(1e-9 * want);
      for (const path of ['gram', 'covariance'] as const) {
        const r = vendiScoreSync(m, { path });
        expect(r.path).toBe(path);
        expect(r.eigenvalues.length).toBe(path === 'gram' ? n : d);
        expect(Math.abs(r.score - want)).toBeLessThan(1e-9 * want);
      }
    }
  });

  it('is 1 for identical rows and n for orthogonal ones', async () => {
    for (const [n, d] of [
      [5, 16],
      [40, 8],
    ] as const) {
      const same = new Float32Array(n * d);
      for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) same[r * d + j] = (j + 1) * (j % 2 ? -0.5 : 0.25);
      expect((await vendiScore({ data: same, rows: n, dim: d })).score).toBeCloseTo(1, 9);
    }
    // N <= D: 6 signed, scaled basis vectors in 10 dimensions.
    const orth = new Float32Array(6 * 10);
    for (let r = 0; r < 6; r++) orth[r * 10 + ((r * 3) % 10)] = r % 2 ? -2 : 0.5 + r;
    expect(vendiScoreSync({ data: orth, rows: 6, dim: 10 }).score).toBeCloseTo(6, 9);
    // N > D: 4 orthogonal directions, each 5 times.
    const rep = new Float32Array(20 * 4);
    for (let r = 0; r < 20; r++) rep[r * 4 + (r % 4)] = r % 3 ? 1.5 : -3;
    const v = vendiScoreSync({ data: rep, rows: 20, dim: 4 });
    expect(v.path).toBe('covariance');
    expect(v.score).toBeCloseTo(4, 9);
  });

  it('rejects zero rows, NaN and empty input', async () => {
    const m = data(6, 4, 2);
    m.data.fill(0, 8, 12);
    await expectCode(vendiScore(m), 'E_RANGE', /row 2 is all zeros/);
    const n = data(6, 4, 2);
    n.data[3 * 4 + 1] = Infinity;
    await expectCode(vendiScore(n, { describe: { name: 'synthetic' } }), 'E_NONFINITE', /synthetic row 3, column 1 is infinite/);
    await expectCode(vendiScore({ data: new Float32Array(0), rows: 0, dim: 4 }), 'E_SHAPE');
    await expectCode(vendiScore(data(3, 3, 1), { path: 'eigen' as 'auto' }), 'E_RANGE');
  });
});
