import { describe, expect, it } from 'vitest';

import { itemRandom, itemSeed, resolveSampleOptions, sampleInstances, shuffledIndices, type SamplingCategory } from '../ts/augment/sample.js';
import { expectCode } from './helpers.js';

/** A generator that returns the given values in order (then fails the test). */
function scripted(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`scripted generator ran out after ${values.length} draws`);
    return values[i++] as number;
  };
}

const crop = (width: number, height: number) => ({ width, height });

describe('sampleInstances: hand-checked draws', () => {
  const image = { width: 100, height: 80 };

  it('prior size, aspect, flip and centre follow §2.5 exactly', () => {
    const cats: SamplingCategory[] = [
      { categoryId: 7, instances: [crop(20, 10)] },
      { categoryId: 9, instances: [] },  // empty: never chosen
      { categoryId: 4, instances: [crop(20, 10), crop(5, 5)] },
    ];
    // n: floor(0.06 * 20) = 1 attempt. Category: 2 non-empty, floor(0.9 * 2) = 1 -> id 4. Instance floor(0.1 * 2) = 0.
    // s = 0.2 + 0 * N = 0.2 (std 0; two uniforms still drawn). T = 0.04 * 8000 = 320. r = 2 * (0.8 + 0.4 * 0.5) = 2.
    // W' = floor(sqrt(640)) = 25, H' = floor(25 / 2) = 12. Flip: 0.3 < 0.5. cx = floor(0.505 * 100) = 50, cy = floor(0.25 * 80) = 20.
    const r = sampleInstances(scripted([0.06, 0.9, 0.1, 0.5, 0.5, 0.5, 0.3, 0.505, 0.25]), image, cats, new Map([[4, { mean: 0.2, std: 0 }]]));
    expect(r.attempts).toBe(1);
    expect(r.placements).toEqual([{ category: 2, instance: 0, categoryId: 4, targetWidth: 25, targetHeight: 12, flip: true, cx: 50, cy: 20, scale: 'prior' }]);
  });

  it('clips s to [10 / H, 0.5]', () => {
    const cats = [{ categoryId: 1, instances: [crop(10, 10)] }];
    // s = 0.9 -> 0.5: T = 0.25 * 8000 = 2000, r = 1 (jitter 0.5 -> 1.0): W' = floor(sqrt(2000)) = 44, H' = 44. Flip 0.7: no.
    const big = sampleInstances(scripted([0.06, 0.5, 0.5, 0.5, 0.5, 0.5, 0.7, 0, 0]), image, cats, new Map([[1, { mean: 0.9, std: 0 }]]));
    expect(big.placements[0]).toMatchObject({ targetWidth: 44, targetHeight: 44, flip: false, cx: 0, cy: 0 });
    // s = 0.01 -> 10 / 80 = 0.125: T = 125: W' = floor(sqrt(125)) = 11, H' = 11.
    const small = sampleInstances(scripted([0.06, 0.5, 0.5, 0.5, 0.5, 0.5, 0.7, 0.999, 0.999]), image, cats, new Map([[1, { mean: 0.01, std: 0 }]]));
    expect(small.placements[0]).toMatchObject({ targetWidth: 11, targetHeight: 11, cx: 99, cy: 79 });
  });

  it('rejects too small and too large prior sizes, consuming no flip or centre draws', () => {
    const cats = [{ categoryId: 1, instances: [crop(1, 100), crop(100, 10)] }];
    const priors = new Map([[1, { mean: 0.5, std: 0 }]]);
    // 2 attempts: floor(0.1 * 20) = 2. First: instance 0 (1 x 100): r = 0.01, T = 2000, W' = floor(sqrt(20)) = 4 < 5 -> too small.
    // Second: instance 1 (100 x 10): r = 10, W' = floor(sqrt(20000)) = 141 >= 100 (H' = 14) -> too large.
    const r = sampleInstances(scripted([0.1, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5, 0.7, 0.5, 0.5, 0.5]), image, cats, priors);
    expect(r).toEqual({ attempts: 2, placements: [], rejected: { tooSmall: 1, tooLarge: 1 } });
  });

  it('uses the random-scale rule without a prior, or with randomScale', () => {
    const cats = [{ categoryId: 1, instances: [crop(40, 30), crop(1000, 30), crop(10, 30)] }];
    // f = 0.05 + 0.25 * 0.6 = 0.2: 40 x 30 -> 8 x 6. Flip 0.2: yes.
    const r = sampleInstances(scripted([0.06, 0.5, 0.1, 0.6, 0.2, 0.5, 0.5]), image, cats, new Map());
    expect(r.placements[0]).toMatchObject({ targetWidth: 8, targetHeight: 6, flip: true, scale: 'random' });
    // 1000 x 30 -> 200 x 6: >= 100 -> too large; 10 x 30 -> 2 x 6: < 3 -> too small.
    const rej = sampleInstances(scripted([0.1, 0.5, 0.5, 0.6, 0.5, 0.9, 0.6]), image, cats, new Map());
    expect(rej.rejected).toEqual({ tooSmall: 1, tooLarge: 1 });
    // randomScale ignores the prior.
    const forced = sampleInstances(scripted([0.06, 0.5, 0.1, 0.6, 0.2, 0.5, 0.5]), image, cats, new Map([[1, { mean: 0.3, std: 0.1 }]]), { randomScale: true });
    expect(forced.placements[0]).toMatchObject({ targetWidth: 8, targetHeight: 6, scale: 'random' });
  });

  it('random mode draws one index over all instances', () => {
    const cats = [
      { categoryId: 1, instances: [crop(40, 30)] },
      { categoryId: 2, instances: [crop(40, 30), crop(40, 30), crop(40, 30)] },
    ];
    // floor(0.3 * 4) = 1 -> category 1 (id 2), instance 0.
    const r = sampleInstances(scripted([0.06, 0.3, 0.6, 0.9, 0.5, 0.5]), image, cats, new Map(), { sampling: 'random' });
    expect(r.placements[0]).toMatchObject({ category: 1, instance: 0, categoryId: 2, flip: false });
  });

  it('draws nothing but n from an empty pool, and n can be 0', () => {
    expect(sampleInstances(scripted([0.9]), image, [{ categoryId: 1, instances: [] }], new Map())).toEqual({ attempts: 18, placements: [], rejected: { tooSmall: 0, tooLarge: 0 } });
    expect(sampleInstances(scripted([0.01]), image, [{ categoryId: 1, instances: [crop(9, 9)] }], new Map()).attempts).toBe(0);
  });

  it('checks its options', async () => {
    await expectCode(() => resolveSampleOptions({ maxSamples: 0 }), 'E_ARGUMENT', /maxSamples/);
    await expectCode(() => resolveSampleOptions({ aspectJitter: [1.2, 0.8] }), 'E_ARGUMENT', /aspectJitter/);
    await expectCode(() => resolveSampleOptions({ sampling: 'uniform' as never }), 'E_ARGUMENT', /sampling/);
    await expectCode(() => resolveSampleOptions({ flipProbability: 2 }), 'E_ARGUMENT', /flipProbability/);
    expect(resolveSampleOptions({ maxSamples: undefined }).maxSamples).toBe(20);
  });
});

describe('sampleInstances: distributions over seeded runs', () => {
  const chiSquare = (counts: number[], expected: number[]) => counts.reduce((s, c, i) => s + (c - expected[i]!) ** 2 / expected[i]!, 0);

  it('n is uniform on 0..19; categories are uniform under cas_random and instance-weighted under random', () => {
    const cats: SamplingCategory[] = [
      { categoryId: 1, instances: [crop(30, 30)] },
      { categoryId: 2, instances: Array.from({ length: 9 }, () => crop(30, 30)) },
    ];
    const nCounts = new Array(20).fill(0);
    const cas: number[] = [0, 0];
    const rnd: number[] = [0, 0];
    const priors = new Map([[1, { mean: 0.1, std: 0.02 }], [2, { mean: 0.1, std: 0.02 }]]);
    for (let id = 0; id < 4000; id++) {
      const a = sampleInstances(itemRandom(5, id, 0), { width: 640, height: 480 }, cats, priors);
      nCounts[a.attempts]++;
      for (const p of a.placements) cas[p.category]! += 1;
      for (const p of sampleInstances(itemRandom(6, id, 0), { width: 640, height: 480 }, cats, priors, { sampling: 'random' }).placements) rnd[p.category]! += 1;
    }
    // df = 19: P(chi2 > 43.8) = 0.001.
    expect(chiSquare(nCounts, new Array(20).fill(200))).toBeLessThan(43.8);
    const casN = cas[0]! + cas[1]!;
    expect(chiSquare(cas, [casN / 2, casN / 2])).toBeLessThan(10.8);  // df = 1, p = 0.001
    const rndN = rnd[0]! + rnd[1]!;
    expect(chiSquare(rnd, [rndN / 10, (9 * rndN) / 10])).toBeLessThan(10.8);
  });

  it('size follows N(μ, σ); flips are Bernoulli(0.5); centres are uniform', () => {
    const cats = [{ categoryId: 3, instances: [crop(50, 40), crop(20, 30)] }];
    const W = 1000;
    const H = 800;
    const s: number[] = [];
    let flips = 0;
    const xBins = new Array(10).fill(0);
    const yBins = new Array(8).fill(0);
    for (let id = 0; id < 1500; id++) {
      for (const p of sampleInstances(itemRandom(11, id, 2), { width: W, height: H }, cats, new Map([[3, { mean: 0.2, std: 0.05 }]])).placements) {
        s.push(Math.sqrt((p.targetWidth * p.targetHeight) / (W * H)));
        if (p.flip) flips++;
        xBins[Math.floor(p.cx / 100)]++;
        yBins[Math.floor(p.cy / 100)]++;
        expect(Number.isInteger(p.cx) && p.cx >= 0 && p.cx < W && Number.isInteger(p.cy) && p.cy >= 0 && p.cy < H).toBe(true);
      }
    }
    const n = s.length;
    const mean = s.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    // Flooring W' and H' shrinks s by < 0.3 %; the aspect jitter keeps the area (up to flooring).
    expect(Math.abs(mean - 0.2)).toBeLessThan(0.004);
    expect(Math.abs(sd - 0.05)).toBeLessThan(0.004);
    expect(Math.abs(flips - n / 2)).toBeLessThan(4 * Math.sqrt(n / 4));
    expect(chiSquare(xBins, new Array(10).fill(n / 10))).toBeLessThan(27.9);  // df 9, p = 0.001
    expect(chiSquare(yBins, new Array(8).fill(n / 8))).toBeLessThan(24.3);  // df 7
  });
});

describe('seeding', () => {
  it('is a pure function of (seed, image id, copy)', () => {
    const cats = [{ categoryId: 1, instances: [crop(30, 20), crop(10, 40)] }];
    const run = (seed: number, id: number, copy: number) => sampleInstances(itemRandom(seed, id, copy), { width: 320, height: 240 }, cats, new Map([[1, { mean: 0.15, std: 0.05 }]]));
    expect(run(1, 42, 0)).toEqual(run(1, 42, 0));
    const variants = [run(1, 42, 1), run(2, 42, 0), run(1, 43, 0)].map((r) => JSON.stringify(r));
    for (const v of variants) expect(v).not.toBe(JSON.stringify(run(1, 42, 0)));
    expect(itemSeed(1, 2 ** 40, 3)).not.toBe(itemSeed(1, 0, 3));
    expect(itemSeed(0, 0, 0)).toBe(itemSeed(0, 0, 0));
  });

  it('shuffles to a permutation, reproducibly', () => {
    const a = shuffledIndices(50, itemRandom(3, 0, 0));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffledIndices(50, itemRandom(3, 0, 0))).toEqual(a);
    expect(shuffledIndices(50, itemRandom(3, 0, 1))).not.toEqual(a);
  });
});
