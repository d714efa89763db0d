// The screened similarity engine (8-bit product + rigorous error bound +
// exact float32 rescoring) and the few-query split must give the float32
// engine's bytes. The oracle here is independent of the native code: the
// float32 engine's arithmetic re-done in JavaScript (rows scaled by
// 1/sqrt(sum of squares in double), rounded to float, then one chain of
// correctly rounded float32 fused multiply-adds per pair), with the same tie
// rule; a double-precision cosine checks what those scores mean.
import { describe, expect, it } from 'vitest';

import { capabilities, classMaxSync, pairs, topk, topkSync, type Matrix } from '../ts/index.js';
import { engineStats } from '../ts/kernels/similarity.js';
import { expectCode, randomMatrix } from './helpers.js';

const caps = capabilities();
// Screening runs where the float32 kernels are fused multiply-add chains.
const CAN_SCREEN = caps.cpu.avx2 || caps.cpu.avx512;
const ISA = caps.cpu.avx2 ? ('avx2' as const) : ('auto' as const);

/** round_to_float(a*b + c) with a single rounding (a, b, c floats). */
function fma32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 x 24 bits fit a double
  const t = p + c;
  // TwoSum: t + err == p + c exactly.
  const bv = t - p;
  const err = p - (t - bv) + (c - bv);
  const f = Math.fround(t);
  if (err === 0 || f === t) return f;
  // t sits exactly halfway between two floats only if rounding t to float and
  // back moves it by exactly half a float ulp; then err decides.
  const other = f > t ? nextFloatDown(f) : nextFloatUp(f);
  if (Math.abs(f - t) === Math.abs(other - t)) {
    const up = f > t ? f : other;
    const down = f > t ? other : f;
    return err > 0 ? up : down;
  }
  return f;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function nextFloatUp(f: number): number {
  f32[0] = f;
  if (f === 0) return 1.401298464324817e-45;
  u32[0] = (u32[0] as number) + (f > 0 ? 1 : -1);
  return f32[0] as number;
}
function nextFloatDown(f: number): number {
  f32[0] = f;
  if (f === 0) return -1.401298464324817e-45;
  u32[0] = (u32[0] as number) + (f > 0 ? -1 : 1);
  return f32[0] as number;
}

/** Rows as the float32 engine packs them (cosine). */
function packRows(m: Matrix): Float32Array {
  const out = new Float32Array(m.rows * m.dim);
  for (let r = 0; r < m.rows; r++) {
    let s = 0;
    for (let k = 0; k < m.dim; k++) {
      const x = m.data[r * m.dim + k] as number;
      s += x * x;
    }
    const n = Math.sqrt(s);
    const sc = n > 0 ? 1 / n : 0;
    for (let k = 0; k < m.dim; k++) out[r * m.dim + k] = Math.fround((m.data[r * m.dim + k] as number) * sc);
  }
  return out;
}

function chainScores(q: Matrix, d: Matrix): Float32Array {
  const a = packRows(q);
  const b = packRows(d);
  const D = q.dim;
  const out = new Float32Array(q.rows * d.rows);
  for (let i = 0; i < q.rows; i++)
    for (let j = 0; j < d.rows; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s = fma32(a[i * D + k] as number, b[j * D + k] as number, s);
      out[i * d.rows + j] = s;
    }
  return out;
}

function oracleTop(scores: Float32Array, i: number, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, j) => j);
  idx.sort((x, y) => (scores[i * n + y] as number) - (scores[i * n + x] as number) || x - y);
  return idx.slice(0, k);
}

function cosineDouble(q: Matrix, i: number, d: Matrix, j: number): number {
  let s = 0;
  let nq = 0;
  let nd = 0;
  for (let k = 0; k < q.dim; k++) {
    const x = q.data[i * q.dim + k] as number;
    const y = d.data[j * d.dim + k] as number;
    s += x * y;
    nq += x * x;
    nd += y * y;
  }
  return nq > 0 && nd > 0 ? s / Math.sqrt(nq * nd) : 0;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/**
 * Adversarial database for query row 0..M-1: exact duplicates (ties to the
 * lower index), scaled copies (same cosine), copies perturbed far below the
 * 8-bit error (near-ties the screening cannot separate), a zero row, and
 * random rows.
 */
function adversarial(M: number, N: number, D: number, seed: number): { q: Matrix; d: Matrix } {
  const r = rng(seed);
  const q = new Float32Array(M * D).map(() => r());
  const d = new Float32Array(N * D).map(() => r());
  for (let j = 0; j < N; j++) {
    const src = j % M;
    const kind = j % 7;
    if (kind === 1 || kind === 2) {
      for (let k = 0; k < D; k++) d[j * D + k] = q[src * D + k] as number; // exact duplicates
    } else if (kind === 3) {
      for (let k = 0; k < D; k++) d[j * D + k] = Math.fround((q[src * D + k] as number) * 4); // scaled copy
    } else if (kind === 4 || kind === 5) {
      const eps = kind === 4 ? 1e-7 : 3e-6;
      for (let k = 0; k < D; k++) d[j * D + k] = Math.fround((q[src * D + k] as number) + eps * r());
    } else if (j === N - 1) {
      d.fill(0, j * D, (j + 1) * D); // zero row
    }
  }
  return { q: { data: q, rows: M, dim: D }, d: { data: d, rows: N, dim: D } };
}

function bytes(a: Float32Array | BigInt64Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Byte equality (Buffer.equals: toEqual on megabytes is far too slow), naming the first difference. */
function expectSameBytes(got: Float32Array | BigInt64Array | Int32Array, want: Float32Array | BigInt64Array | Int32Array): void {
  expect(got.length).toBe(want.length);
  if (bytes(got).equals(bytes(want))) return;
  const i = got.findIndex((x: number | bigint, n: number) => !Object.is(x, want[n]));
  expect({ index: i, got: got[i] }).toEqual({ index: i, got: want[i] });
}

describe('screened top-k: the float32 bytes', () => {
  it('adversarial near-ties: same indices and score bytes as a JS float32 FMA-chain oracle and the unscreened engine', () => {
    const { q, d } = adversarial(6, 700, 40, 7);
    const scores = chainScores(q, d);
    for (const k of [1, 3, 10]) {
      const on = topkSync(q, d, k, { screen: 'on', isa: ISA, threads: 2 });
      expect(engineStats().screened).toBe(CAN_SCREEN);
      const off = topkSync(q, d, k, { screen: 'off', isa: ISA, threads: 2 });
      expect(engineStats().screened).toBe(false);
      expectSameBytes(on.indices, off.indices);
      expectSameBytes(on.scores, off.scores);
      for (let i = 0; i < q.rows; i++) {
        const want = oracleTop(scores, i, d.rows, k);
        expect(Array.from(on.indices.slice(i * k, (i + 1) * k), Number)).toEqual(want);
        for (let c = 0; c < k; c++) {
          const j = want[c] as number;
          expect(on.scores[i * k + c]).toBe(scores[i * d.rows + j]);
          expect(Math.abs((on.scores[i * k + c] as number) - cosineDouble(q, i, d, j))).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('rescoring in rounds (best candidates selected, the rest filtered by the raised bound): k = 2, 7, 16 and k > rows, near-ties, odd width, several blocks', () => {
    const { q, d } = adversarial(5, 301, 37, 23);
    const scores = chainScores(q, d);
    for (const k of [2, 7, 16, 305]) {
      // blockBytes small enough for several database blocks: the k-th exact score carries over.
      const opt = { isa: ISA, threads: 2, blockBytes: 1 << 16 };
      const on = topkSync(q, d, k, { ...opt, screen: 'on' });
      expect(engineStats().screened).toBe(CAN_SCREEN);
      const off = topkSync(q, d, k, { ...opt, screen: 'off' });
      expectSameBytes(on.indices, off.indices);
      expectSameBytes(on.scores, off.scores);
      const kk = Math.min(k, d.rows);
      expect(on.k).toBe(kk);
      for (let i = 0; i < q.rows; i++) {
        const want = oracleTop(scores, i, d.rows, kk);
        expect(Array.from(on.indices.slice(i * kk, (i + 1) * kk), Number)).toEqual(want);
        for (let c = 0; c < kk; c++) expect(on.scores[i * kk + c]).toBe(scores[i * d.rows + (want[c] as number)]);
      }
    }
  });

  it('all ties (a database of one row repeated, a zero query row): the lowest indices, memory bounded by early rescoring', () => {
    const r = rng(17);
    const row = new Float32Array(48).map(() => r());
    const d = { data: new Float32Array(12000 * 48), rows: 12000, dim: 48 };
    for (let j = 0; j < d.rows; j++) d.data.set(row, j * 48);
    const q = { data: new Float32Array(2 * 48), rows: 2, dim: 48 };
    q.data.set(row, 0); // row 1 stays zero: every score 0
    for (const k of [1, 5]) {
      const on = topkSync(q, d, k, { screen: 'on', isa: ISA, threads: 1 });
      expect(engineStats().screened).toBe(CAN_SCREEN);
      const off = topkSync(q, d, k, { screen: 'off', isa: ISA, threads: 1 });
      expectSameBytes(on.indices, off.indices);
      expectSameBytes(on.scores, off.scores);
      expect(Array.from(on.indices.slice(0, k), Number)).toEqual(Array.from({ length: k }, (_, c) => c));
      expect(Array.from(on.indices.slice(k, 2 * k), Number)).toEqual(Array.from({ length: k }, (_, c) => c));
    }
  });

  it('random data, several blocks and uneven widths: screened equals unscreened, byte for byte', () => {
    for (const [M, N, D, k] of [
      [300, 2100, 77, 1],
      [257, 1500, 512, 4],
      [64, 3000, 33, 10],
    ] as const) {
      const q = randomMatrix(M, D, 11 + D);
      const d = randomMatrix(N, D, 12 + D);
      // blockBytes small enough to make several database blocks.
      const opt = { isa: ISA, threads: 2, blockBytes: 1 << 18 };
      const on = topkSync(q, d, k, { ...opt, screen: 'on' });
      expect(engineStats().screened).toBe(CAN_SCREEN);
      if (CAN_SCREEN) expect(engineStats().rescored).toBeLessThan(M * N);
      const off = topkSync(q, d, k, { ...opt, screen: 'off' });
      expectSameBytes(on.indices, off.indices);
      expectSameBytes(on.scores, off.scores);
    }
  });

  it('without normalisation (dot products, rows of very different norms) too', () => {
    const r = rng(3);
    const q = { data: new Float32Array(50 * 24).map(() => r() * 1e3), rows: 50, dim: 24 };
    const d = { data: new Float32Array(900 * 24).map((_, x) => r() * (x % 48 < 24 ? 1e-3 : 10)), rows: 900, dim: 24 };
    const on = topkSync(q, d, 3, { normalize: false, screen: 'on', isa: ISA });
    const off = topkSync(q, d, 3, { normalize: false, screen: 'off', isa: ISA });
    expectSameBytes(on.indices, off.indices);
    expectSameBytes(on.scores, off.scores);
  });

  it("precision 'bf16': every score is the exact float32 score of the row returned, and recall@1 is high", async () => {
    const q = randomMatrix(200, 64, 21);
    const d = randomMatrix(4000, 64, 22);
    const exact = topkSync(q, d, 5, { screen: 'off', isa: ISA });
    const fast = await topk(q, d, 5, { precision: 'bf16', isa: ISA });
    const scores = chainScores({ ...q, rows: 20 }, d);
    for (let i = 0; i < 20; i++)
      for (let c = 0; c < 5; c++) expect(fast.scores[i * 5 + c]).toBe(scores[i * d.rows + Number(fast.indices[i * 5 + c])]);
    let hit = 0;
    for (let i = 0; i < q.rows; i++) if (fast.indices[i * 5] === exact.indices[i * 5]) hit++;
    expect(hit / q.rows).toBeGreaterThanOrEqual(0.99);
  });

  it('bad precision or screen option: typed errors', async () => {
    const q = randomMatrix(2, 8, 1);
    await expectCode(topk(q, q, 1, { precision: 'fp8' as 'bf16' }), 'E_RANGE', /precision/);
    await expectCode(topk(q, q, 1, { screen: 'sometimes' as 'on' }), 'E_RANGE', /screen/);
    await expectCode(() => topkSync(q, q, 1, { precision: 'fp8' as 'bf16' }), 'E_RANGE', /precision/);
  });
});

describe('few query rows: the database is split over the threads', () => {
  it('class-max: split and screened results equal the one-thread float32 result, byte for byte', () => {
    const q = randomMatrix(5, 48, 31);
    const d = randomMatrix(40000, 48, 32);
    const labels = new Int32Array(d.rows).map((_, j) => (j * 7919) % 37);
    const one = classMaxSync(q, d, labels, { threads: 1, screen: 'off', isa: ISA });
    expect(engineStats().split).toBe(false);
    const split = classMaxSync(q, d, labels, { threads: 2, screen: 'off', isa: ISA });
    expect(engineStats().split).toBe(true);
    const screened = classMaxSync(q, d, labels, { threads: 2, screen: 'on', isa: ISA });
    expect(engineStats().screened).toBe(CAN_SCREEN);
    expectSameBytes(split.values, one.values);
    expectSameBytes(screened.values, one.values);
    // Meaning: each value is the max double cosine over the class, to float accuracy.
    const best = new Float64Array(q.rows * 37).fill(-Infinity);
    for (let j = 0; j < d.rows; j++)
      for (let i = 0; i < q.rows; i++) {
        const c = labels[j] as number;
        best[i * 37 + c] = Math.max(best[i * 37 + c] as number, cosineDouble(q, i, d, j));
      }
    for (let x = 0; x < best.length; x++) expect(Math.abs((one.values[x] as number) - (best[x] as number))).toBeLessThan(1e-5);
  });

  it('pairs between two sets: split and screened equal the one-thread result and the JS oracle', async () => {
    const { q, d } = adversarial(8, 40000, 32, 5);
    const one = await pairs(q, d, { threshold: 0.3, threads: 1, screen: 'off', isa: ISA });
    const split = await pairs(q, d, { threshold: 0.3, threads: 2, screen: 'off', isa: ISA });
    const screened = await pairs(q, d, { threshold: 0.3, threads: 2, screen: 'on', isa: ISA });
    expect(one.scores.length).toBeGreaterThan(1000);
    for (const r of [split, screened]) {
      expectSameBytes(r.i, one.i);
      expectSameBytes(r.j, one.j);
      expectSameBytes(r.scores, one.scores);
    }
    const scores = chainScores(q, d);
    let x = 0;
    for (let i = 0; i < q.rows; i++)
      for (let j = 0; j < d.rows; j++) {
        const s = scores[i * d.rows + j] as number;
        if (s < 0.3) continue;
        expect([Number(one.i[x]), Number(one.j[x]), one.scores[x]]).toEqual([i, j, s]);
        x++;
      }
    expect(x).toBe(one.scores.length);
  });

  it('pairs within one set, in chunks of few rows: split and screened equal the one-thread result', async () => {
    const r = rng(9);
    const e = randomMatrix(6000, 64, 41);
    // Plant near-duplicates so there is something to find.
    for (let p = 0; p < 40; p++) {
      const a = (p * 4999) % e.rows;
      const b = (p * 7919 + 13) % e.rows;
      if (a === b) continue;
      for (let k = 0; k < 64; k++) e.data[b * 64 + k] = Math.fround((e.data[a * 64 + k] as number) + 1e-3 * r());
    }
    const opt = { threshold: 0.5, isa: ISA, chunkRows: 128 };
    const one = await pairs(e, undefined, { ...opt, threads: 1, screen: 'off' });
    const split = await pairs(e, undefined, { ...opt, threads: 2, screen: 'off' });
    const screened = await pairs(e, undefined, { ...opt, threads: 2, screen: 'on' });
    expect(one.scores.length).toBeGreaterThanOrEqual(30);
    for (const x of [split, screened]) {
      expectSameBytes(x.i, one.i);
      expectSameBytes(x.j, one.j);
      expectSameBytes(x.scores, one.scores);
    }
  });
});

describe('the database normalised as it is packed (one pass over it)', () => {
  it('odd widths, a last tile of a few rows, label order, zero rows: class-max, pairs and top-k equal the JS float32 chain oracle', async () => {
    for (const [D, N] of [
      [13, 1001],
      [37, 523],
      [8, 17],
      [1, 40],
    ] as const) {
      const q = randomMatrix(3, D, D);
      const d = randomMatrix(N, D, 100 + D);
      d.data.fill(0, 5 * D, 6 * D); // a zero row: multiplier 0, scores 0
      const labels = new Int32Array(N).map((_, j) => (j * 7919) % 7);
      const scores = chainScores(q, d);
      for (const [threads, screen] of [[1, 'off'], [2, 'off'], [1, 'on'], [2, 'on']] as const) {
        const cm = classMaxSync(q, d, labels, { threads, screen, isa: ISA });
        for (let i = 0; i < q.rows; i++)
          for (let c = 0; c < 7; c++) {
            let best = -Infinity;
            for (let j = 0; j < N; j++) if (labels[j] === c) best = Math.max(best, scores[i * N + j] as number);
            expect(Object.is(cm.values[i * 7 + c], Math.fround(best))).toBe(true);
          }
        const pr = await pairs(q, d, { threshold: -0.05, threads, screen, isa: ISA });
        const tk = topkSync(q, d, 2, { threads, screen, isa: ISA });
        for (let i = 0; i < q.rows; i++) {
          const want = oracleTop(scores, i, N, 2);
          expect(Array.from(tk.indices.subarray(2 * i, 2 * i + 2))).toEqual(want);
          expect(Array.from(tk.scores.subarray(2 * i, 2 * i + 2))).toEqual(want.map((j) => scores[i * N + j]));
        }
        let x = 0;
        for (let i = 0; i < q.rows; i++)
          for (let j = 0; j < N; j++) {
            const s = scores[i * N + j] as number;
            if (s < -0.05) continue;
            expect([pr.i[x], pr.j[x], pr.scores[x]]).toEqual([i, j, s]);
            x++;
          }
        expect(x).toBe(pr.scores.length);
      }
    }
  });

  it('a NaN or infinity anywhere in the database: E_NONFINITE naming the first one, before any other error (float32 and screened engines)', async () => {
    const q = randomMatrix(2, 20, 1);
    const d = randomMatrix(3000, 20, 2);
    const labels = new Int32Array(d.rows).map((_, j) => j % 5);
    d.data[2900 * 20 + 7] = Number.NaN;
    d.data[2950 * 20 + 3] = Number.POSITIVE_INFINITY;
    for (const threads of [1, 2])
      for (const screen of ['off', 'on'] as const) {
        expect(() => classMaxSync(q, d, labels, { threads, screen, isa: ISA })).toThrow(/database row 2900, column 7 is NaN/);
        await expectCode(pairs(q, d, { threshold: 0.1, threads, screen, isa: ISA }), 'E_NONFINITE', /database row 2900, column 7 is NaN/);
        await expectCode(topk(q, d, 3, { threads, screen, isa: ISA }), 'E_NONFINITE', /database row 2900, column 7 is NaN/);
        // Every pair passes: E_LIMIT comes up in the first tile, long before the bad row; the bad row still wins.
        await expectCode(pairs(q, d, { threshold: -2, maxPairs: 10, threads, screen, isa: ISA }), 'E_NONFINITE', /row 2900/);
        // No query rows: nothing to compare, but the database is still checked.
        const none = { data: new Float32Array(0), rows: 0, dim: 20 };
        expect(() => classMaxSync(none, d, labels, { threads, screen, isa: ISA })).toThrow(/database row 2900, column 7 is NaN/);
        expect(() => topkSync(none, d, 1, { threads, screen, isa: ISA })).toThrow(/database row 2900, column 7 is NaN/);
      }
    d.data[2900 * 20 + 7] = 0;
    expect(() => classMaxSync(q, d, labels, { threads: 1, screen: 'off', isa: ISA })).toThrow(/database row 2950, column 3 is infinite/);
  });
});

describe('few-query pairs screened from the rows as they are (run_pairs_stream)', () => {
  /** Every (i, j) with oracle score >= t, in (i, j) order. */
  function oraclePairs(scores: Float32Array, M: number, N: number, t: number, self = -1): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let i = 0; i < M; i++)
      for (let j = self >= 0 ? self + i + 1 : 0; j < N; j++) {
        const s = scores[i * N + j] as number;
        if (s >= t) out.push([i, j, s]);
      }
    return out;
  }
  function expectPairs(got: { i: Int32Array; j: Int32Array; scores: Float32Array }, want: [number, number, number][]): void {
    expect(got.scores.length).toBe(want.length);
    for (let x = 0; x < want.length; x++) {
      const [i, j, s] = want[x] as [number, number, number];
      if (got.i[x] !== i || got.j[x] !== j || !Object.is(got.scores[x], s)) expect([got.i[x], got.j[x], got.scores[x]]).toEqual([i, j, s]);
    }
  }

  it('odd widths, partial tiles and panels, zero, tiny and huge rows, thresholds at and next to a score: the JS float32 chain oracle, every screen setting', async () => {
    for (const [M, N, D] of [
      [5, 1100, 13],
      [3, 1037, 37],
      [7, 1030, 1],
      [2, 1200, 130],
    ] as const) {
      const { q, d } = adversarial(M, N, D, 100 + D);
      // Rows the float quantisation does not take: zero, tiny (squares underflow float) and huge (they overflow it).
      d.data.fill(0, 3 * D, 4 * D);
      for (let k = 0; k < D; k++) {
        d.data[7 * D + k] = Math.fround((d.data[7 * D + k] as number) * 1e-30);
        d.data[11 * D + k] = Math.fround((d.data[11 * D + k] as number) * 1e25);
        d.data[(N - 2) * D + k] = Math.fround((q.data[k] as number) * 3e-25); // a tiny copy of query row 0: cosine ~1
      }
      const scores = chainScores(q, d);
      // Thresholds: a low one, one at a score (that pair passes), one just above it (it does not), a high one.
      const s0 = scores[1 * N + 40] as number;
      for (const t of [0.2, s0, s0 + 2 ** -30, 0.9999]) {
        const want = oraclePairs(scores, M, N, t);
        for (const screen of ['auto', 'on', 'off'] as const) {
          const got = await pairs(q, d, { threshold: t, threads: 1, screen, isa: ISA });
          // (auto may fall back to the float32 engine where many pairs pass: low thresholds at these small widths)
          if (screen === 'on') expect(engineStats().screened).toBe(CAN_SCREEN);
          expectPairs(got, want);
        }
      }
      expect(oraclePairs(scores, M, N, s0).some(([i, j]) => i === 1 && j === 40)).toBe(true);
      expect(oraclePairs(scores, M, N, s0 + 2 ** -30).some(([i, j]) => i === 1 && j === 40)).toBe(false);
    }
  });

  it('1, 2 and 3 threads and the float32 engine give the same bytes; the bound rules out most pairs', async () => {
    const q = randomMatrix(6, 72, 51);
    const d = randomMatrix(21000, 72, 52);
    // Plant close copies of the queries, and rows at several scales.
    for (let j = 0; j < d.rows; j += 997) for (let k = 0; k < 72; k++) d.data[j * 72 + k] = Math.fround((q.data[(j % 6) * 72 + k] as number) * (1 + (j % 5)) + 1e-3 * Math.sin(j + k));
    for (let j = 5; j < d.rows; j += 13) for (let k = 0; k < 72; k++) d.data[j * 72 + k] = Math.fround((d.data[j * 72 + k] as number) * 1e3);
    const opt = { threshold: 0.25, isa: ISA };
    const off = await pairs(q, d, { ...opt, threads: 1, screen: 'off' });
    expect(off.scores.length).toBeGreaterThan(20);
    for (const threads of [1, 2, 3]) {
      const got = await pairs(q, d, { ...opt, threads, screen: 'auto' });
      const st = engineStats();
      expect(st.screened).toBe(CAN_SCREEN);
      if (CAN_SCREEN) {
        expect(st.split).toBe(threads > 1);
        expect(st.rescored).toBeGreaterThanOrEqual(off.scores.length);
        expect(st.rescored).toBeLessThan((q.rows * d.rows) / 20);
      }
      expectSameBytes(got.i, off.i);
      expectSameBytes(got.j, off.j);
      expectSameBytes(got.scores, off.scores);
    }
    // Without normalisation (dot products): the same.
    const dots = await pairs(q, d, { ...opt, threshold: 3, normalize: false, threads: 1, screen: 'off' });
    expect(dots.scores.length).toBeGreaterThan(20);
    for (const threads of [1, 3]) {
      const got = await pairs(q, d, { ...opt, threshold: 3, normalize: false, threads, screen: 'auto' });
      expectSameBytes(got.i, dots.i);
      expectSameBytes(got.j, dots.j);
      expectSameBytes(got.scores, dots.scores);
    }
  });

  it('a threshold most pairs pass: auto falls back to the float32 engine, on screens every pair; same bytes', async () => {
    const q = randomMatrix(4, 24, 61);
    const d = randomMatrix(3000, 24, 62);
    const scores = chainScores(q, d);
    for (const t of [-1, -0.05, -1e300]) {
      const want = oraclePairs(scores, q.rows, d.rows, t);
      const auto = await pairs(q, d, { threshold: t, threads: 2, screen: 'auto', isa: ISA });
      expect(engineStats().screened).toBe(false);
      expectPairs(auto, want);
      const on = await pairs(q, d, { threshold: t, threads: 2, screen: 'on', isa: ISA });
      expect(engineStats().screened).toBe(CAN_SCREEN);
      expectPairs(on, want);
    }
    // Nothing can pass.
    for (const t of [1.01, 1e300]) {
      const none = await pairs(q, d, { threshold: t, threads: 2, isa: ISA });
      expect(none.scores.length).toBe(0);
    }
    // The sample tile screens well but later tiles are near-copies of the
    // queries (every pair a candidate): those tiles take the float32 product.
    // And a database of under four tiles: no sample, every tile decides alone.
    const near = randomMatrix(3000, 24, 63);
    for (let j = 1500; j < 3000; j++) for (let k = 0; k < 24; k++) near.data[j * 24 + k] = Math.fround((q.data[(j % 4) * 24 + k] as number) + 0.05 * (near.data[j * 24 + k] as number));
    const small = { data: d.data.subarray(0, 700 * 24), rows: 700, dim: 24 };
    for (const [db, t] of [[near, 0.5], [small, -0.05]] as const) {
      const sc = chainScores(q, db);
      const want = oraclePairs(sc, q.rows, db.rows, t);
      expect(want.length).toBeGreaterThan(1000);
      for (const threads of [1, 2]) {
        const got = await pairs(q, db, { threshold: t, threads, screen: 'auto', isa: ISA });
        expect(engineStats().screened).toBe(CAN_SCREEN);
        if (CAN_SCREEN) expect(engineStats().rescored).toBeLessThan(want.length);
        expectPairs(got, want);
      }
    }
  });

  it('more query rows than run_pairs_stream takes (run_screened): the float32 bytes', async () => {
    const e = randomMatrix(4200, 6, 81);
    const opt = { threshold: 0.97, isa: ISA, chunkRows: 4200 };
    const off = await pairs(e, undefined, { ...opt, threads: 2, screen: 'off' });
    const on = await pairs(e, undefined, { ...opt, threads: 2, screen: 'on' });
    expect(engineStats().screened).toBe(CAN_SCREEN);
    expect(off.scores.length).toBeGreaterThan(100);
    expectSameBytes(on.i, off.i);
    expectSameBytes(on.j, off.j);
    expectSameBytes(on.scores, off.scores);
  });

  it('within one set in chunks of few rows, and a NaN row: the float32 bytes, E_NONFINITE naming the row', async () => {
    const e = randomMatrix(3000, 40, 71);
    for (let p = 0; p < 30; p++) {
      const a = (p * 331) % e.rows;
      const b = (p * 977 + 5) % e.rows;
      for (let k = 0; k < 40; k++) e.data[b * 40 + k] = Math.fround((e.data[a * 40 + k] as number) * 2 + 1e-4 * Math.cos(k + p));
    }
    const opt = { threshold: 0.6, isa: ISA, chunkRows: 100 };
    const off = await pairs(e, undefined, { ...opt, threads: 1, screen: 'off' });
    expect(off.scores.length).toBeGreaterThanOrEqual(25);
    const auto = await pairs(e, undefined, { ...opt, threads: 2, screen: 'auto' });
    expectSameBytes(auto.i, off.i);
    expectSameBytes(auto.j, off.j);
    expectSameBytes(auto.scores, off.scores);
    const q = randomMatrix(3, 40, 72);
    e.data[2500 * 40 + 9] = Number.NaN;
    for (const threads of [1, 2]) await expectCode(pairs(q, e, { threshold: 0.2, threads, isa: ISA }), 'E_NONFINITE', /database row 2500, column 9 is NaN/);
  });
});
