import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import {
  capabilities,
  classMax,
  classMaxSync,
  classMean,
  GenaugError,
  groupPairs,
  mergeTopk,
  nearDuplicates,
  pairs,
  rowDot,
  sliceRows,
  topk,
  topkSync,
  type Matrix,
} from '../ts/index.js';
import { cosine, expectCode, oracleTopk, randomMatrix } from './helpers.js';

const ISAS = (['scalar', 'avx2', 'avx512'] as const).filter((isa) => {
  const caps = capabilities();
  return isa === 'scalar' || (isa === 'avx2' ? caps.cpu.avx2 : caps.cpu.avx512);
});


function checkTopk(q: Matrix, d: Matrix, k: number, r: { k: number; indices: Int32Array; scores: Float32Array }, normalize = true) {
  expect(r.indices).toBeInstanceOf(Int32Array);
  const keff = Math.min(k, d.rows);
  expect(r.k).toBe(keff);
  expect(r.indices.length).toBe(q.rows * keff);
  for (let i = 0; i < q.rows; i++) {
    const want = oracleTopk(q, i, d, keff, normalize);
    const seen = new Set<number>();
    for (let c = 0; c < keff; c++) {
      const idx = r.indices[i * keff + c] as number;
      const s = r.scores[i * keff + c] as number;
      expect(seen.has(idx)).toBe(false);
      seen.add(idx);
      expect(Math.abs(s - (want[c] as [number, number])[0])).toBeLessThan(2e-5);
      expect(Math.abs(s - cosine(q, i, d, idx, normalize))).toBeLessThan(2e-5);
    }
  }
}

describe('topk', () => {
  it.each(ISAS)('matches the double-precision oracle with %s kernels', async (isa) => {
    for (const dim of [1, 5, 16, 33, 100]) {
      const q = randomMatrix(17, dim, dim);
      const d = randomMatrix(203, dim, 1000 + dim);
      for (const k of [1, 4, 203, 500]) checkTopk(q, d, k, await topk(q, d, k, { isa }));
    }
  });

  it('handles M = 1, N = 1 and k > N', async () => {
    const q = randomMatrix(1, 9, 1);
    const d1 = randomMatrix(1, 9, 2);
    const r = await topk(q, d1, 5);
    expect(r.k).toBe(1);
    expect(Array.from(r.indices)).toEqual([0]);
    checkTopk(q, d1, 5, r);
    const d = randomMatrix(40, 9, 3);
    checkTopk(q, d, 1024, await topk(q, d, 1024));
  });

  it('handles large k (1024 and 2000) against the oracle', async () => {
    const q = randomMatrix(6, 20, 13);
    const d = randomMatrix(3000, 20, 14);
    for (const k of [1024, 2000]) checkTopk(q, d, k, await topk(q, d, k));
  });

  it('gives the same bytes whatever the thread count and block size', async () => {
    const q = randomMatrix(300, 64, 5);
    const d = randomMatrix(4000, 64, 6);
    const a = await topk(q, d, 12, { threads: 1, blockBytes: 65536 });
    const b = await topk(q, d, 12, { threads: 2 });
    expect(Buffer.from(a.indices.buffer).equals(Buffer.from(b.indices.buffer))).toBe(true);
    expect(Buffer.from(a.scores.buffer).equals(Buffer.from(b.scores.buffer))).toBe(true);
  });

  it('breaks ties toward the lower index (duplicates)', async () => {
    const q = randomMatrix(2, 12, 7);
    const d = randomMatrix(30, 12, 8);
    for (const j of [25, 4, 17]) d.data.set(q.data.subarray(0, 12), j * 12);
    const r = await topk(q, d, 3);
    expect(Array.from(r.indices.subarray(0, 3)).map(Number)).toEqual([4, 17, 25]);
    expect(r.scores[0]).toBe(r.scores[1]);
    expect(r.scores[1]).toBe(r.scores[2]);
  });

  it('scores zero vectors 0 (documented) and rejects NaN/Inf with the row and column', async () => {
    const q = randomMatrix(2, 4, 9);
    const d = randomMatrix(3, 4, 10);
    d.data.fill(0, 4, 8);
    const r = await topk(q, d, 3);
    for (let i = 0; i < 2; i++) {
      for (let c = 0; c < 3; c++) if (r.indices[i * 3 + c] === 1) expect(r.scores[i * 3 + c]).toBe(0);
    }
    d.data[2 * 4 + 3] = Number.NaN;
    await expectCode(topk(q, d, 1), 'E_NONFINITE', /database row 2, column 3 is NaN/);
    d.data[2 * 4 + 3] = Number.POSITIVE_INFINITY;
    await expectCode(() => topkSync(q, d, 1), 'E_NONFINITE', /infinite/);
  });

  it('computes dot products without normalisation', async () => {
    const q = randomMatrix(5, 7, 11);
    const d = randomMatrix(50, 7, 12);
    checkTopk(q, d, 3, await topk(q, d, 3, { normalize: false }), false);
  });

  it('rejects bad arguments with GenaugError codes, never a crash', async () => {
    const q = randomMatrix(3, 4, 1);
    const d = randomMatrix(5, 4, 2);
    await expectCode(topk({ data: new Float64Array(12) as unknown as Float32Array, rows: 3, dim: 4 }, d, 1), 'E_DTYPE', /Float32Array, got Float64Array/);
    await expectCode(topk({ data: new Float32Array(11), rows: 3, dim: 4 }, d, 1), 'E_SHAPE', /11 elements/);
    await expectCode(topk(q, randomMatrix(5, 3, 2), 1), 'E_SHAPE', /same width/);
    await expectCode(topk(q, d, -1), 'E_RANGE');
    await expectCode(topk(q, d, 0), 'E_RANGE');
    await expectCode(topk(q, d, 1.5), 'E_RANGE');
    await expectCode(topk(q, d, '3' as unknown as number), 'E_TYPE');
    await expectCode(topk(null as unknown as Matrix, d, 1), 'E_TYPE');
    await expectCode(topk(q, d, 1, { isa: 'sse9' as 'auto' }), 'E_RANGE');
    await expectCode(topk(q, d, 1, { threads: -2 }), 'E_RANGE');
    await expectCode(topk(q, d, 1, { blockBytes: 10 }), 'E_RANGE');
  });

  it('validates again in C++ when the TypeScript layer is bypassed', async () => {
    const { native } = await import('../ts/native/load.js');
    const addon = native();
    const f = new Float32Array(12);
    const bad: Array<[() => unknown, string]> = [
      [() => addon.topkSync(new Float64Array(12) as unknown as Float32Array, 3, 4, f, 3, 4, 1, {}), 'E_DTYPE'],
      [() => addon.topkSync(f, 4, 4, f, 3, 4, 1, {}), 'E_SHAPE'],
      [() => addon.topkSync(f, 3, 4, f, 3, 4, 0, {}), 'E_RANGE'],
      [() => addon.topkSync(f, 3, 4, f, 3, 4, Number.NaN, {}), 'E_RANGE'],
      [() => (addon.topkSync as unknown as () => unknown)(), 'E_DTYPE'],
      [() => addon.topkSync(f, 3, 4, f, 3, 4, 1, { threads: 'x' as unknown as number }), 'E_TYPE'],
      [() => addon.classMaxSync(f, 3, 4, f, 3, 4, new Int32Array([0, 1, 9]), 2, {}), 'E_RANGE'],
      [() => addon.classMaxSync(f, 3, 4, f, 3, 4, new Int32Array([0, 1]), 2, {}), 'E_SHAPE'],
      [() => addon.pairsSync(f, 3, 4, f, 3, 4, 0.5, 1, 10, {}), 'E_RANGE'],
    ];
    for (const [fn, code] of bad) await expectCode(fn, code);
    // The raw addon checks arguments before it queues work, so it throws synchronously.
    await expectCode(() => addon.topk(f, 3, 4, f, 3, 4, 1, { isa: 'nope' as 'auto' }), 'E_RANGE');
  });
});

describe('per-class scores', () => {
  const q = randomMatrix(11, 21, 31);
  const d = randomMatrix(157, 21, 32);
  const labels = new Int32Array(157).map((_, i) => [0, 1, 3, 1, 0, 3, 3][i % 7] as number); // class 2 empty

  function oracle(i: number, c: number): { mean: number; max: number } {
    let sum = 0;
    let n = 0;
    let max = -Infinity;
    for (let j = 0; j < d.rows; j++) {
      if (labels[j] !== c) continue;
      const s = cosine(q, i, d, j);
      sum += s;
      n++;
      max = Math.max(max, s);
    }
    return { mean: n ? sum / n : Number.NaN, max: n ? max : Number.NaN };
  }

  it.each(ISAS)('class mean and max match the oracle with %s kernels; empty classes are NaN', async (isa) => {
    const mean = await classMean(q, d, labels, { isa, numClasses: 5 });
    const max = await classMax(q, d, labels, { isa, numClasses: 5 });
    expect(mean.classes).toBe(5);
    expect(mean.counts).toBeInstanceOf(Int32Array);
    expect(Array.from(mean.counts)).toEqual([45, 45, 0, 67, 0]);
    for (let i = 0; i < q.rows; i++) {
      for (let c = 0; c < 5; c++) {
        const o = oracle(i, c);
        const m = mean.values[i * 5 + c] as number;
        const x = max.values[i * 5 + c] as number;
        if (Number.isNaN(o.mean)) {
          expect(m).toBeNaN();
          expect(x).toBeNaN();
        } else {
          expect(Math.abs(m - o.mean)).toBeLessThan(2e-5);
          expect(Math.abs(x - o.max)).toBeLessThan(2e-5);
        }
      }
    }
  });

  it('infers the class count and rejects bad labels', async () => {
    expect((classMaxSync(q, d, labels)).classes).toBe(4);
    await expectCode(classMean(q, d, new Int32Array(156)), 'E_SHAPE', /156 entries/);
    await expectCode(classMean(q, d, new Float32Array(157) as unknown as Int32Array), 'E_DTYPE');
    const neg = labels.slice();
    neg[3] = -1;
    await expectCode(classMax(q, d, neg), 'E_RANGE', /labels\[3\] = -1/);
    await expectCode(classMax(q, d, labels, { numClasses: 3 }), 'E_RANGE', /outside \[0, 3\)/);
  });
});

describe('pairs and near-duplicates', () => {
  it('finds every pair above the threshold within a set, streamed in chunks', async () => {
    const e = randomMatrix(260, 5, 41);
    e.data.set(e.data.subarray(10 * 5, 11 * 5), 200 * 5);
    const t = 0.95;
    const seen: number[] = [];
    const all = await pairs(e, undefined, { threshold: t, chunkRows: 37, onProgress: (done) => seen.push(done) });
    expect(seen[seen.length - 1]).toBe(260);
    expect(all.i).toBeInstanceOf(Int32Array);
    expect(all.j).toBeInstanceOf(Int32Array);
    const got = new Set<string>();
    for (let x = 0; x < all.scores.length; x++) {
      const i = Number(all.i[x]);
      const j = Number(all.j[x]);
      expect(j).toBeGreaterThan(i);
      expect(all.scores[x]).toBeGreaterThanOrEqual(t);
      expect(cosine(e, i, e, j)).toBeGreaterThan(t - 1e-5);
      got.add(`${i},${j}`);
    }
    for (let i = 0; i < e.rows; i++) {
      for (let j = i + 1; j < e.rows; j++) if (cosine(e, i, e, j) >= t + 1e-5) expect(got.has(`${i},${j}`)).toBe(true);
    }
    expect(got.has('10,200')).toBe(true);
  });

  it('finds pairs between two sets', async () => {
    const a = randomMatrix(70, 4, 42);
    const b = randomMatrix(90, 4, 43);
    const r = await pairs(a, b, { threshold: 0.97, chunkRows: 16 });
    let n = 0;
    for (let i = 0; i < a.rows; i++) for (let j = 0; j < b.rows; j++) if (cosine(a, i, b, j) >= 0.97 + 1e-5) n++;
    expect(r.scores.length).toBeGreaterThanOrEqual(n);
    for (let x = 0; x < r.scores.length; x++) expect(cosine(a, Number(r.i[x]), b, Number(r.j[x]))).toBeGreaterThan(0.97 - 1e-5);
  });

  it('stops with E_LIMIT past maxPairs, and E_ABORTED when aborted', async () => {
    const e = randomMatrix(50, 3, 44);
    await expectCode(pairs(e, undefined, { threshold: -1, maxPairs: 100 }), 'E_LIMIT', /raise the threshold/);
    const ac = new AbortController();
    ac.abort();
    await expectCode(pairs(e, undefined, { threshold: 0.5, signal: ac.signal }), 'E_ABORTED');
  });

  it('groups by connected component, or greedily without chaining', () => {
    // 0-1, 1-2 chain; 4-5; 3 alone
    const list = { i: Int32Array.from([0, 1, 4]), j: Int32Array.from([1, 2, 5]), scores: new Float32Array([1, 1, 1]) };
    const comp = groupPairs(6, list, 'component');
    expect(Array.from(comp.group)).toEqual([0, 0, 0, 3, 4, 4]);
    expect(Array.from(comp.keep)).toEqual([1, 0, 0, 1, 1, 0]);
    expect(comp.duplicateGroups).toBe(2);
    const greedy = groupPairs(6, list, 'greedy');
    // 1 is dropped (pairs with kept 0); 2 pairs only with dropped 1, so it stays.
    expect(Array.from(greedy.keep)).toEqual([1, 0, 1, 1, 1, 0]);
  });

  it('nearDuplicates returns pairs, groups and a keep mask', async () => {
    const e = randomMatrix(40, 16, 45);
    e.data.set(e.data.subarray(3 * 16, 4 * 16), 30 * 16);
    e.data.set(e.data.subarray(3 * 16, 4 * 16), 12 * 16);
    const r = await nearDuplicates(e, { threshold: 0.999 });
    expect(r.group[30]).toBe(3);
    expect(r.group[12]).toBe(3);
    expect(r.keep[3]).toBe(1);
    expect(r.keep[12]).toBe(0);
    expect(r.keep[30]).toBe(0);
    expect(r.keep.reduce((s, v) => s + v, 0)).toBe(38);
  });
});

describe('rowDot', () => {
  it('is the cosine of aligned rows', async () => {
    const a = randomMatrix(33, 10, 51);
    const b = randomMatrix(33, 10, 52);
    const r = await rowDot(a, b);
    for (let i = 0; i < 33; i++) expect(Math.abs((r[i] as number) - cosine(a, i, b, i))).toBeLessThan(1e-6);
    await expectCode(rowDot(a, randomMatrix(32, 10, 1)), 'E_SHAPE');
  });
});

describe('concurrency', () => {
  it('does not block the event loop while a long call runs', async () => {
    const q = randomMatrix(1500, 256, 61);
    const d = randomMatrix(6000, 256, 62);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await topk(q, d, 5, { threads: 1 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });

  it('survives worker threads that load the addon, use it and exit', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}).then((g) => {
        const q = { data: new Float32Array(64).fill(1), rows: 8, dim: 8 };
        const r = g.topkSync(q, q, 2);
        parentPort.postMessage(r.k);
      });`;
    for (let n = 0; n < 4; n++) {
      const w = new Worker(code, { eval: true });
      const k = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(k).toBe(2);
      await w.terminate();
    }
  });
});

describe('cancellation', () => {
  it('an AbortSignal stops a running native call with E_ABORTED', async () => {
    const q = randomMatrix(3000, 256, 71);
    const d = randomMatrix(20000, 256, 72);
    const ac = new AbortController();
    const started = Date.now();
    const p = topk(q, d, 5, { threads: 1, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user pressed ctrl-c')), 20);
    await expectCode(p, 'E_ABORTED', /aborted/);
    // The whole call would take seconds on one thread; it stopped at a block boundary instead.
    expect(Date.now() - started).toBeLessThan(1500);
    const done = await topk(randomMatrix(4, 8, 1), randomMatrix(9, 8, 2), 2, { signal: new AbortController().signal });
    expect(done.k).toBe(2);
  });
});

describe('memory safety at the boundary', () => {
  it('transferring an input buffer while a call runs neither crashes nor corrupts the result', async () => {
    const q = randomMatrix(200, 64, 81);
    const d = randomMatrix(5000, 64, 82);
    const want = topkSync(q, d, 3);
    const p = topk(q, d, 3);
    // A transfer would detach the buffer under the running native code; the
    // wrapper marked it untransferable, so this copies instead.
    const buf = d.data.buffer as ArrayBuffer;
    const moved = structuredClone(buf, { transfer: [buf] });
    expect(moved.byteLength).toBe(d.data.byteLength);
    const got = await p;
    expect(Buffer.from(got.indices.buffer).equals(Buffer.from(want.indices.buffer))).toBe(true);
  });

  it('rows x dim that would overflow is a shape error in C++, not a crash', async () => {
    const { native } = await import('../ts/native/load.js');
    const empty = new Float32Array(0);
    await expectCode(() => native().rowDotSync(empty, 2 ** 40, 65536, empty, 2 ** 40, 65536, {}), 'E_SHAPE');
    await expectCode(() => native().topkSync(empty, 0, 65537, empty, 0, 65537, 1, {}), 'E_RANGE');
  });
});

describe('few queries against a large database', () => {
  it('is split over the cores and merged into exactly the bytes of one call', async () => {
    const q = randomMatrix(5, 32, 91);
    const d = randomMatrix(20000, 32, 92);
    d.data.set(d.data.subarray(3 * 32, 4 * 32), 15000 * 32); // a tie across the split
    const split = await topk(q, d, 9, { threads: 2 });
    const one = topkSync(q, d, 9, { threads: 1 });
    expect(Buffer.from(split.indices.buffer).equals(Buffer.from(one.indices.buffer))).toBe(true);
    expect(Buffer.from(split.scores.buffer).equals(Buffer.from(one.scores.buffer))).toBe(true);
    checkTopk(q, d, 9, split);
  });
});

describe('mergeTopk', () => {
  it('merges chunk results into the one-shot Int32Array result, and refuses indices past 2^31 - 1', async () => {
    const q = randomMatrix(7, 16, 41);
    const d = randomMatrix(90, 16, 42);
    d.data.set(d.data.subarray(5 * 16, 6 * 16), 70 * 16); // a tie across the chunks
    const one = await topk(q, d, 6);
    const a = await topk(q, sliceRows(d, 0, 50), 6);
    const b = await topk(q, sliceRows(d, 50, 90), 6);
    const merged = mergeTopk(a, b, 50, 6);
    expect(merged.indices).toBeInstanceOf(Int32Array);
    expect(Array.from(merged.indices)).toEqual(Array.from(one.indices));
    expect(Buffer.from(merged.scores.buffer).equals(Buffer.from(one.scores.buffer))).toBe(true);
    // k = 12 keeps all six of b, one of which has an index of 5 or more: past 2^31 - 1 once shifted.
    expect(() => mergeTopk(a, b, 2 ** 31 - 5, 12)).toThrow(/does not fit an Int32Array: use topkFiles/);
  });
});
