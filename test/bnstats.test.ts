import { describe, expect, it } from 'vitest';

import { capabilities } from '../ts/index.js';
import {
  BnStatsAccumulator,
  bnStats,
  bnStatsFromJSON,
  bnStatsSync,
  bnStatsToJSON,
  bnVariance,
  mergeBnStats,
  type Layout,
} from '../ts/kernels/bnstats.js';
import { float32ToFloat16Bits, float16BitsToFloat32 } from '../ts/io/npy.js';
import { seededRandom, gaussian } from '../ts/util/random.js';
import { expectCode } from './helpers.js';

const ISAS = (['scalar', 'avx2', 'avx512'] as const).filter((isa) => {
  const caps = capabilities();
  return isa === 'scalar' || (isa === 'avx2' ? caps.cpu.avx2 : caps.cpu.avx512);
});

/** Activations with mixed scales per channel: mean 1e4 with sd 1e-2, mean -3 with sd 50, mean 1e-3 with sd 1e-6. */
function make(n: number, c: number, s: number, layout: Layout, seed: number): Float32Array {
  const r = seededRandom(seed);
  const x = new Float32Array(n * c * s);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const [mean, sd] = ch % 3 === 0 ? [1e4, 1e-2] : ch % 3 === 1 ? [-3, 50] : [1e-3, 1e-6];
      for (let p = 0; p < s; p++) {
        const v = mean + sd * gaussian(r);
        x[layout === 'nchw' ? (i * c + ch) * s + p : (i * s + p) * c + ch] = v;
      }
    }
  }
  return x;
}

/** The plain two-pass oracle in double precision. */
function oracle(x: Float32Array, n: number, c: number, s: number, layout: Layout, dom: Int32Array, D: number) {
  const val = (i: number, ch: number, p: number) => x[layout === 'nchw' ? (i * c + ch) * s + p : (i * s + p) * c + ch] as number;
  const count = new Float64Array(D * c);
  const mean = new Float64Array(D * c);
  const v = new Float64Array(D * c);
  // (NaN values are skipped, as nonfinite: 'skip' does.)
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < s; p++) {
    if (Number.isNaN(val(i, ch, p))) continue;
    const k = (dom[i] as number) * c + ch;
    count[k] = (count[k] as number) + 1;
    mean[k] = (mean[k] as number) + val(i, ch, p);
  }
  for (let k = 0; k < D * c; k++) if (count[k]) mean[k] = (mean[k] as number) / (count[k] as number);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < s; p++) {
    if (Number.isNaN(val(i, ch, p))) continue;
    const k = (dom[i] as number) * c + ch;
    v[k] = (v[k] as number) + (val(i, ch, p) - (mean[k] as number)) ** 2;
  }
  for (let k = 0; k < D * c; k++) if (count[k]) v[k] = (v[k] as number) / (count[k] as number);
  return { count, mean, var: v };
}

/**
 * Every (domain, channel) cell of `got` against the oracle: the same counts; where a cell has values, the mean exact
 * to a tiny fraction of the spread (and to double rounding of its size) and the variance to 1e-6 relative.
 */
function expectOracle(got: Parameters<typeof bnVariance>[0], want: ReturnType<typeof oracle>): void {
  const gotVar = bnVariance(got);
  expect(got.count.length).toBe(want.count.length);
  for (let k = 0; k < want.count.length; k++) {
    expect(got.count[k]).toBe(want.count[k]);
    if (!want.count[k]) continue;
    expect(Math.abs((got.mean[k] as number) - (want.mean[k] as number))).toBeLessThanOrEqual(
      1e-7 * Math.sqrt(want.var[k] as number) + 1e-12 * Math.abs(want.mean[k] as number),
    );
    expect(Math.abs((gotVar[k] as number) - (want.var[k] as number))).toBeLessThanOrEqual(1e-6 * (want.var[k] as number));
  }
}

describe('bnStats', () => {
  for (const layout of ['nchw', 'nhwc'] as const) {
    it.each(ISAS)(`${layout}: matches the oracle to 1e-6 relative variance on adversarial data (%s)`, async (isa) => {
      const [n, c, s] = [5, 7, 300];
      const x = make(n, c, s, layout, 11);
      const domains = Int32Array.from([1, 0, 0, 1, 1]);
      const shape = layout === 'nchw' ? [n, c, 15, 20] : [n, 15, 20, c];
      const got = await bnStats({ data: x, shape, layout }, { domains, numDomains: 3, isa });
      const want = oracle(x, n, c, s, layout, domains, 3);
      expectOracle(got, want);
      expect(got.count[2 * c]).toBe(0); // domain 2 is empty
    });
  }

  it.each(ISAS)('nhwc: each column sorted within its sample (a block centre from its first rows far from the block mean) still matches the oracle (%s)', async (isa) => {
    // 20 channels: 1,024-row blocks whose centre is the mean of their first 128 rows; 1,100 rows: a full and a
    // partial block. Sorted ascending, the first rows are the smallest: the worst order for that centre.
    const [n, s, c] = [2, 1100, 20];
    const x = make(n, c, s, 'nhwc', 31);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const col = Float32Array.from({ length: s }, (_, p) => x[(i * s + p) * c + ch] as number).sort();
        col.forEach((v, p) => (x[(i * s + p) * c + ch] = v));
      }
    }
    const domains = Int32Array.from([0, 0]);
    const got = await bnStats({ data: x, shape: [n, s, 1, c], layout: 'nhwc' }, { domains, numDomains: 1, isa });
    const want = oracle(x, n, c, s, 'nhwc', domains, 1);
    expectOracle(got, want);
  });

  it.each(ISAS)('nhwc: the same bytes for 1, 2, 3 and 5 threads (segments split between threads, then merged in order), odd channel counts, partial row blocks, skipped NaN, float16 (%s)', async (isa) => {
    const bytes = (s: Awaited<ReturnType<typeof bnStats>>) =>
      [s.count, s.mean, s.m2, s.min, s.max, s.nonfinite].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')).join('|');
    // Channels: fewer than one 16-lane group, 16-lane groups plus a tail. Rows: one block per sample; two blocks
    // (496 and 4 rows for 129 channels) chained in one segment; 1,030 channels: 64-row blocks, 15 of
    // them per segment, so two segments per sample (the second partial) merged in order.
    for (const [n, s, c] of [[3, 70, 5], [4, 130, 70], [2, 500, 129], [2, 1100, 1030]] as const) {
      const x = make(n, c, s, 'nhwc', 21 + c);
      x[(1 * s + 65) * c + (c - 1)] = Number.NaN; // sample 1, second row block, last channel
      const domains = Int32Array.from({ length: n }, (_, i) => (i * 2) % 3);
      const runs = [];
      for (const threads of [1, 2, 3, 5]) {
        runs.push(await bnStats({ data: x, shape: [n, s, 1, c], layout: 'nhwc' }, { domains, numDomains: 3, isa, threads, nonfinite: 'skip' }));
      }
      for (const r of runs.slice(1)) expect(bytes(r)).toBe(bytes(runs[0]!));
      const got = runs[0]!;
      // Sample 1 is in domain 2.
      expect(Array.from(got.nonfinite).reduce((a, b) => a + Number(b), 0)).toBe(1);
      expect(got.nonfinite[2 * c + c - 1]).toBe(1);
      const want = oracle(x, n, c, s, 'nhwc', domains, 3);
      expectOracle(got, want);
      // float16 input: the same statistics as its float32 values, whatever the threads.
      const h = float32ToFloat16Bits(x.map((v) => v / 1e4));
      const f = float16BitsToFloat32(h);
      const ref = bytes(await bnStats({ data: f, shape: [n, s, 1, c], layout: 'nhwc' }, { isa, threads: 1, nonfinite: 'skip' }));
      for (const threads of [1, 2, 3]) {
        expect(bytes(await bnStats({ data: h, shape: [n, s, 1, c], layout: 'nhwc' }, { isa, threads, nonfinite: 'skip' }))).toBe(ref);
      }
    }
    const y = make(3, 4, 150, 'nhwc', 5);
    y[(2 * 150 + 140) * 4 + 3] = Number.POSITIVE_INFINITY;
    for (const threads of [1, 2]) {
      await expectCode(bnStats({ data: y, shape: [3, 150, 4], layout: 'nhwc' }, { isa, threads }), 'E_NONFINITE', /sample 2, channel 3, position 140 is infinite/);
    }
  });

  it('merging many small batches equals one big batch; JSON round-trips exactly', () => {
    const [n, c, s] = [24, 4, 9];
    const x = make(n, c, s, 'nchw', 12);
    const whole = bnStatsSync({ data: x, shape: [n, c, 3, 3], layout: 'nchw' });
    let acc = bnStatsSync({ data: x.subarray(0, 5 * c * s), shape: [5, c, 3, 3], layout: 'nchw' });
    for (let b = 5; b < n; b += 5) {
      const m = Math.min(5, n - b);
      acc = mergeBnStats(acc, bnStatsSync({ data: x.subarray(b * c * s, (b + m) * c * s), shape: [m, c, 3, 3], layout: 'nchw' }));
    }
    for (let k = 0; k < c; k++) {
      expect(acc.count[k]).toBe(whole.count[k]);
      expect(Math.abs((acc.mean[k] as number) - (whole.mean[k] as number))).toBeLessThanOrEqual(1e-12 * Math.abs(whole.mean[k] as number) + 1e-15);
      expect(Math.abs((acc.m2[k] as number) - (whole.m2[k] as number))).toBeLessThanOrEqual(1e-9 * (whole.m2[k] as number));
      expect(acc.min[k]).toBe(whole.min[k]);
      expect(acc.max[k]).toBe(whole.max[k]);
    }
    const back = bnStatsFromJSON(JSON.parse(JSON.stringify(bnStatsToJSON(acc))));
    expect(Array.from(back.m2)).toEqual(Array.from(acc.m2));
    expect(Array.from(back.mean)).toEqual(Array.from(acc.mean));
  });

  it('reads float16 activations exactly as their float32 values', () => {
    const x = make(3, 5, 40, 'nhwc', 13).map((v) => v / 1e3);
    const h = float32ToFloat16Bits(x);
    const a = bnStatsSync({ data: h, shape: [3, 40, 5], layout: 'nhwc' });
    const b = bnStatsSync({ data: float16BitsToFloat32(h), shape: [3, 40, 5], layout: 'nhwc' });
    expect(Array.from(a.mean)).toEqual(Array.from(b.mean));
    expect(Array.from(a.m2)).toEqual(Array.from(b.m2));
  });

  it('rejects NaN by default (naming sample, channel, position) or counts and skips it', async () => {
    const x = new Float32Array(2 * 3 * 4).fill(2);
    x[(1 * 3 + 1) * 4 + 2] = Number.NaN;
    await expectCode(bnStats({ data: x, shape: [2, 3, 4], layout: 'nchw' }), 'E_NONFINITE', /sample 1, channel 1, position 2 is NaN/);
    const s = await bnStats({ data: x, shape: [2, 3, 4], layout: 'nchw' }, { nonfinite: 'skip' });
    expect(Array.from(s.nonfinite)).toEqual([0, 1, 0]);
    expect(Array.from(s.count)).toEqual([8, 7, 8]);
  });

  it('with several bad values, the one rejected is the first in (sample, channel, position) order, whatever the threads', async () => {
    // The first in order is the one a thread reaches last: the thread that owns a later value meets it at once.
    // NCHW: threads split the channels; A = (1, 1, S - 1) is met after three full channels of its thread, B = (1, 2, 0)
    // after two of the other's.
    const [n, c, s] = [2, 4, 60000];
    const x = make(n, c, s, 'nchw', 21);
    x[(1 * c + 1) * s + s - 1] = Number.NaN;
    x[(1 * c + 2) * s] = Number.POSITIVE_INFINITY;
    // NHWC: the threads split each sample's segments; A in sample 0's last row, B in sample 1's first.
    const rows = 300000;
    const y = make(n, 4, rows, 'nhwc', 22);
    y[(rows - 1) * 4] = Number.NaN;
    y[(rows + 0) * 4 + 3] = Number.NEGATIVE_INFINITY;
    for (const isa of ISAS) {
      for (const threads of [1, 2, 3, 2, 2]) {
        await expectCode(bnStats({ data: x, shape: [n, c, s], layout: 'nchw' }, { isa, threads }), 'E_NONFINITE', new RegExp(`sample 1, channel 1, position ${s - 1} is NaN`));
        await expectCode(bnStats({ data: y, shape: [n, rows, 4], layout: 'nhwc' }, { isa, threads }), 'E_NONFINITE', new RegExp(`sample 0, channel 0, position ${rows - 1} is NaN`));
      }
    }
  });

  it('rejects bad shapes, layouts and domain tags with codes', async () => {
    const x = new Float32Array(24);
    await expectCode(bnStats({ data: x, shape: [2, 3, 5], layout: 'nchw' }), 'E_SHAPE', /24 elements/);
    await expectCode(bnStats({ data: x, shape: [24], layout: 'nchw' }), 'E_SHAPE');
    await expectCode(bnStats({ data: x, shape: [2, 3, 4], layout: 'nchw' as Layout, }, { domains: Int32Array.from([0, 2]) }), 'E_RANGE', /domains\[1\] = 2/);
    await expectCode(bnStats({ data: x, shape: [2, 3, 4], layout: 'nchw' }, { domains: Int32Array.from([0]) }), 'E_SHAPE');
    await expectCode(bnStats({ data: x, shape: [2, 3, 4], layout: 'chwn' as Layout }), 'E_RANGE');
    await expectCode(bnStats({ data: new Float64Array(24) as unknown as Float32Array, shape: [2, 3, 4], layout: 'nchw' }), 'E_DTYPE');
    const { native } = await import('../ts/native/load.js');
    await expectCode(() => native().bnStatsSync(x, 2, 3, 5, 'nchw', null, 1, {}), 'E_SHAPE');
    await expectCode(() => native().bnStatsSync(x, 2, 3, 4, 'nchw', Int32Array.from([0, 7]), 2, {}), 'E_RANGE');
  });
});

/** PyTorch's training-mode update, written out from its definition, per batch and domain. */
function torchLike(batches: Array<{ x: Float32Array; n: number; dom: Int32Array }>, c: number, s: number, momentum: number | null) {
  const rm = [new Float64Array(c), new Float64Array(c)];
  const rv = [new Float64Array(c).fill(1), new Float64Array(c).fill(1)];
  const tracked = [0, 0];
  for (const b of batches) {
    for (const d of [0, 1]) {
      const rows = Array.from({ length: b.n }, (_, i) => i).filter((i) => b.dom[i] === d);
      if (!rows.length) continue;
      tracked[d]!++;
      const m = momentum ?? 1 / tracked[d]!;
      for (let ch = 0; ch < c; ch++) {
        const vals: number[] = [];
        for (const i of rows) for (let p = 0; p < s; p++) vals.push(b.x[(i * c + ch) * s + p] as number);
        const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
        const unb = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / (vals.length - 1);
        rm[d]![ch] = (1 - m) * rm[d]![ch]! + m * mean;
        rv[d]![ch] = (1 - m) * rv[d]![ch]! + m * unb;
      }
    }
  }
  return { rm, rv, tracked };
}

describe('BnStatsAccumulator', () => {
  for (const momentum of [0.1, null]) {
    it(`follows PyTorch's running-statistics update (momentum ${momentum})`, async () => {
      const [c, s] = [3, 6];
      const acc = new BnStatsAccumulator({ channels: c, momentum });
      const batches = [0, 1, 2, 3].map((b) => {
        const n = 4;
        const dom = b === 2 ? Int32Array.from([0, 0, 0, 0]) : Int32Array.from([0, 1, 0, 1]);
        return { x: make(n, c, s, 'nchw', 20 + b), n, dom };
      });
      for (const b of batches) await acc.update({ data: b.x, shape: [b.n, c, 2, 3], layout: 'nchw' }, b.dom);
      const want = torchLike(batches, c, s, momentum);
      expect(Array.from(acc.numBatchesTracked)).toEqual(want.tracked);
      for (const d of [0, 1]) {
        for (let ch = 0; ch < c; ch++) {
          expect(acc.runningMean[d * c + ch]).toBeCloseTo(want.rm[d]![ch]!, 6);
          expect(Math.abs((acc.runningVar[d * c + ch] as number) - want.rv[d]![ch]!)).toBeLessThanOrEqual(1e-9 * want.rv[d]![ch]! + 1e-12);
        }
      }
      const t = acc.tensors('layer1.0.bn1');
      expect(Object.keys(t).sort()).toEqual([
        'layer1.0.bn1.aux_bn.num_batches_tracked', 'layer1.0.bn1.aux_bn.running_mean', 'layer1.0.bn1.aux_bn.running_var',
        'layer1.0.bn1.num_batches_tracked', 'layer1.0.bn1.running_mean', 'layer1.0.bn1.running_var',
      ]);
      expect(t['layer1.0.bn1.num_batches_tracked']!.shape).toEqual([]);
      expect(t['layer1.0.bn1.num_batches_tracked']!.data[0]).toBe(4n);
      expect(t['layer1.0.bn1.aux_bn.num_batches_tracked']!.data[0]).toBe(3n);
      const back = BnStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(acc)));
      expect(Array.from(back.runningVar)).toEqual(Array.from(acc.runningVar));
      expect(Array.from(back.totals.m2)).toEqual(Array.from(acc.totals.m2));
    });
  }
});

describe('genaug bnstats', () => {
  it('--layout names every axis: a rank that does not match is E_SHAPE with the layouts that fit; a Fortran-order file gives the same statistics', async () => {
    const { writeNpy, wrapNpyHeader } = await import('../ts/io/npy.js');
    const { bnstatsFile } = await import('../ts/cli/bnstats.js');
    const { mkdtemp, readFile, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'genaug-bn-layout-'));
    try {
      const [n, c, h, w] = [5, 3, 2, 4];
      const x = make(n, c, h * w, 'nchw', 7);
      await writeNpy(join(dir, 'a.npy'), x, [n, c, h, w]);
      await writeNpy(join(dir, 'a3.npy'), x, [n, c, h * w]);
      const run = (file: string, layout: string | undefined, out: string) =>
        bnstatsFile({ activations: join(dir, file), ...(layout ? { layout: layout as 'nchw' } : {}), out: join(dir, out), layer: 'bn', momentum: 0.1, nonfinite: 'reject' });
      await expectCode(run('a3.npy', 'nchw', 'x.safetensors'), 'E_SHAPE', /--layout nchw expects 4-D activations \(N, C, H, W\), got shape \(5, 3, 8\); for 3-D activations use --layout ncl or nlc/);
      await expectCode(run('a.npy', 'nc', 'x.safetensors'), 'E_SHAPE', /--layout nc expects 2-D/);
      // Without --layout: channels first by rank; ncl on the 3-D file gives the statistics of nchw on the 4-D one.
      await run('a.npy', undefined, 'c.safetensors');
      await run('a3.npy', 'ncl', 'c3.safetensors');
      const state = async (f: string) => {
        const j = JSON.parse(await readFile(join(dir, f), 'utf8')) as { totals: { mean: number[] }; running: { mean: number[] } };
        expect(j.totals.mean).toHaveLength(c);
        expect(j.running.mean).toHaveLength(c);
        return { totals: j.totals, running: j.running };
      };
      expect(await state('c3.json')).toEqual(await state('c.json'));
      // The same array stored in Fortran order (numpy's layout for a transposed array): the same bytes out.
      const f = new Float32Array(x.length);
      for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) f[i + n * (ch + c * (y + h * z))] = x[((i * c + ch) * h + y) * w + z]!;
      const header = wrapNpyHeader(`{'descr': '<f4', 'fortran_order': True, 'shape': (${n}, ${c}, ${h}, ${w}), }`);
      await writeFile(join(dir, 'f.npy'), Buffer.concat([header, new Uint8Array(f.buffer)]));
      await run('f.npy', 'nchw', 'f.safetensors');
      expect(Buffer.compare(await readFile(join(dir, 'f.safetensors')), await readFile(join(dir, 'c.safetensors')))).toBe(0);
      expect(await state('f.json')).toEqual(await state('c.json'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('streams an activations file in batches and writes PyTorch-loadable running statistics', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { writeNpy } = await import('../ts/io/npy.js');
    const { readSafetensors } = await import('../ts/io/safetensors.js');
    const { mkdtemp, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'genaug-bn-'));
    try {
      const [n, c, s] = [12, 3, 6];
      const x = make(n, c, s, 'nchw', 31);
      const dom = Int32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
      await writeNpy(join(dir, 'a.npy'), x, [n, c, 2, 3]);
      await writeNpy(join(dir, 'd.npy'), dom, [n]);
      const bin = join(__dirname, '..', 'bin', 'genaug.js');
      await promisify(execFile)(process.execPath, [bin, 'bnstats', '--activations', join(dir, 'a.npy'), '--domains', join(dir, 'd.npy'), '--out', join(dir, 'bn.safetensors'), '--layer', 'features.1', '--batch-size', '4', '-q']);
      // A stray tag (7) is refused with the fix, not silently grown into 8 domains of which 5 are empty.
      const stray = Int32Array.from(dom, (d, i) => (i === 5 ? 7 : d));
      await writeNpy(join(dir, 'd7.npy'), stray, [n]);
      const refused = await promisify(execFile)(process.execPath, [bin, 'bnstats', '--activations', join(dir, 'a.npy'), '--domains', join(dir, 'd7.npy'), '--out', join(dir, 'bn7.safetensors'), '-q']).catch((e: { code: number; stderr: string }) => e);
      expect((refused as { code: number }).code).toBe(1);
      expect((refused as { stderr: string }).stderr).toMatch(/E_RANGE.*domain\[5\] = 7 is outside \[0, 2\).*--num-domains 8/);
      const f = await readSafetensors(join(dir, 'bn.safetensors'));
      // The oracle: PyTorch's update written out, batch by batch (batches of 4 samples).
      const batches = [0, 4, 8].map((b0) => ({ x: x.subarray(b0 * c * s, (b0 + 4) * c * s), n: 4, dom: dom.subarray(b0, b0 + 4) }));
      const want = torchLike(batches, c, s, 0.1);
      for (const [d, prefix] of [[0, 'features.1'], [1, 'features.1.aux_bn']] as const) {
        const rm = f.tensors.get(`${prefix}.running_mean`)!;
        const rv = f.tensors.get(`${prefix}.running_var`)!;
        const nb = f.tensors.get(`${prefix}.num_batches_tracked`)!;
        expect(rm.dtype).toBe('F32');
        expect(nb.dtype).toBe('I64');
        expect(nb.shape).toEqual([]);
        expect((nb.data as BigInt64Array)[0]).toBe(BigInt(want.tracked[d]!));
        for (let ch = 0; ch < c; ch++) {
          expect(Math.abs((rm.data as Float32Array)[ch]! - want.rm[d]![ch]!)).toBeLessThanOrEqual(1e-6 * Math.abs(want.rm[d]![ch]!) + 1e-6);
          expect(Math.abs((rv.data as Float32Array)[ch]! - want.rv[d]![ch]!)).toBeLessThanOrEqual(1e-6 * want.rv[d]![ch]!);
        }
      }
      const state = JSON.parse(await readFile(join(dir, 'bn.json'), 'utf8'));
      const restored = BnStatsAccumulator.fromJSON(state);
      expect(restored.numBatchesTracked[0]).toBe(3);
      expect(state.samples).toBe(12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
