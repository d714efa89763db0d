import { describe, expect, it } from 'vitest';

import { datasetGap, setGap } from '../ts/curate/gap.js';
import { cosine, randomMatrix } from './helpers.js';

function meanNN(a: ReturnType<typeof randomMatrix>, b: ReturnType<typeof randomMatrix>): number {
  let s = 0;
  for (let i = 0; i < a.rows; i++) {
    let best = -Infinity;
    for (let j = 0; j < b.rows; j++) best = Math.max(best, cosine(a, i, b, j));
    s += best;
  }
  return s / a.rows;
}

describe('domain gap', () => {
  it('a set against itself: Fréchet 0, nearest neighbours at cosine 1 both ways, equal Vendi', async () => {
    const a = randomMatrix(300, 16, 1);
    const g = await setGap(a, a);
    expect(g.frechet).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(g.syntheticToReal! - 1)).toBeLessThan(1e-6);
    expect(Math.abs(g.realToSynthetic! - 1)).toBeLessThan(1e-6);
    expect(g.vendiReal).toBeCloseTo(g.vendiSynthetic!, 9);
  });

  it('matches brute-force nearest neighbours and the 1-D closed form of the Fréchet distance', async () => {
    const a = randomMatrix(70, 6, 2);
    const b = randomMatrix(50, 6, 3);
    const g = await setGap(a, b);
    expect(g.syntheticToReal).toBeCloseTo(meanNN(b, a), 6);
    expect(g.realToSynthetic).toBeCloseTo(meanNN(a, b), 6);
    // 1-D, raw values: (m1 - m2)^2 + (s1 - s2)^2 with unbiased standard deviations.
    const x = { data: Float32Array.from([1, 2, 4, 7]), rows: 4, dim: 1 };
    const y = { data: Float32Array.from([0.5, 3, 3]), rows: 3, dim: 1 };
    const stat = (v: number[]) => {
      const m = v.reduce((p, q) => p + q, 0) / v.length;
      return [m, Math.sqrt(v.reduce((p, q) => p + (q - m) ** 2, 0) / (v.length - 1))] as const;
    };
    const [m1, s1] = stat([1, 2, 4, 7]);
    const [m2, s2] = stat([0.5, 3, 3]);
    const raw = await setGap(x, y, { normalize: false });
    expect(raw.frechet).toBeCloseTo((m1 - m2) ** 2 + (s1 - s2) ** 2, 9);
    // A zero embedding has no cosine: a clear error naming the set and the row.
    const z = { data: Float32Array.from([0, 1]), rows: 2, dim: 1 };
    await expect(setGap(x, z, { normalize: false })).rejects.toThrow(/synthetic embeddings: .*row 0/);
  });

  it('reports per class, with nulls where a side has no rows', async () => {
    const real = randomMatrix(40, 8, 4);
    const syn = randomMatrix(30, 8, 5);
    const rl = Int32Array.from({ length: 40 }, (_, i) => i % 2);
    const sl = Int32Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? 2 : i % 2));
    const rep = await datasetGap(real, syn, { real: rl, synthetic: sl });
    expect(rep.perClass!.map((c) => [c.class, c.real, c.synthetic])).toEqual([[0, 20, 10], [1, 20, 10], [2, 0, 10]]);
    expect(rep.perClass![2]!.frechet).toBeNull();
    expect(rep.perClass![2]!.syntheticToReal).toBeNull();
    expect(rep.perClass![2]!.vendiReal).toBeNull();
    expect(rep.perClass![2]!.vendiSynthetic).toBeGreaterThan(1);
    expect(rep.overall.real).toBe(40);
  });
});

describe('genaug gap', () => {
  it('writes overall and per-class figures to gap.json', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { mkdtemp, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeNpy } = await import('../ts/io/npy.js');
    const dir = await mkdtemp(join(tmpdir(), 'genaug-gap-'));
    try {
      const real = randomMatrix(60, 8, 6);
      const syn = randomMatrix(45, 8, 7);
      await writeNpy(join(dir, 'r.npy'), real.data, [60, 8]);
      await writeNpy(join(dir, 's.npy'), syn.data, [45, 8]);
      await writeNpy(join(dir, 'rl.npy'), Int32Array.from({ length: 60 }, (_, i) => i % 3), [60]);
      await writeNpy(join(dir, 'sl.npy'), Int32Array.from({ length: 45 }, (_, i) => i % 3), [45]);
      const bin = join(__dirname, '..', 'bin', 'genaug.js');
      const r = await promisify(execFile)(process.execPath, [bin, 'gap', '--real', join(dir, 'r.npy'), '--synthetic', join(dir, 's.npy'),
        '--real-labels', join(dir, 'rl.npy'), '--synthetic-labels', join(dir, 'sl.npy'), '--out', join(dir, 'gap.json'), '-q']);
      expect(r.stdout).toMatch(/overall: Fréchet/);
      const g = JSON.parse(await readFile(join(dir, 'gap.json'), 'utf8'));
      expect(g.perClass).toHaveLength(3);
      expect(g.overall.syntheticToReal).toBeCloseTo(meanNN(syn, real), 6);
      const bad = await promisify(execFile)(process.execPath, [bin, 'gap', '--real', join(dir, 'r.npy'), '--synthetic', join(dir, 's.npy'),
        '--real-labels', join(dir, 'rl.npy'), '--out', join(dir, 'x.json')]).catch((e: { code: number; stderr: string }) => e);
      expect((bad as { code: number }).code).toBe(2);
      expect((bad as { stderr: string }).stderr).toMatch(/E_ARGUMENT.*--synthetic-labels/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
