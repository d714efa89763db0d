import { describe, expect, it } from 'vitest';

import { diverseSubset, uniqueness } from '../ts/curate/unique.js';
import { cosine, expectCode, randomMatrix } from './helpers.js';

describe('uniqueness and diverse subsets', () => {
  it('uniqueness = 1 - weighted similarity to the k nearest other rows (brute-force oracle)', async () => {
    const e = randomMatrix(300, 16, 5);
    // Plant exact duplicates (rows 10 and 11 equal row 3): their nearest neighbour is 1, never themselves.
    e.data.copyWithin(10 * 16, 3 * 16, 4 * 16);
    e.data.copyWithin(11 * 16, 3 * 16, 4 * 16);
    for (const [k, weights] of [[3, [0.6, 0.3, 0.1]], [5, [1, 1, 1, 1, 1]]] as const) {
      const u = await uniqueness(e, { k, weights: [...weights] });
      for (let i = 0; i < e.rows; i++) {
        const sims: number[] = [];
        for (let j = 0; j < e.rows; j++) if (j !== i) sims.push(cosine(e, i, e, j));
        sims.sort((a, b) => b - a);
        const wsum = weights.reduce((a, b) => a + b, 0);
        const want = 1 - weights.reduce((acc, w, c) => acc + w * sims[c]!, 0) / wsum;
        expect(u.uniqueness[i]).toBeCloseTo(want, 4);
        expect(u.nearest[i]).toBeCloseTo(sims[0]!, 4);
      }
    }
    const u = await uniqueness(e);
    expect(u.nearest[10]).toBeCloseTo(1, 5);
    expect([3, 11]).toContain(u.nearestIndex[10]);
  });

  it('a set of one row has no neighbours; bad weights are refused', async () => {
    const u = await uniqueness(randomMatrix(1, 4, 1));
    expect(Number.isNaN(u.uniqueness[0])).toBe(true);
    await expectCode(uniqueness(randomMatrix(5, 4, 1), { k: 2, weights: [1] }), 'E_RANGE');
    await expectCode(uniqueness(randomMatrix(5, 4, 1), { k: 2, weights: [0, 0] }), 'E_RANGE');
  });

  it('greedy max-min picks what a brute-force replay of the rule picks, and spreads over clusters first', async () => {
    const e = randomMatrix(200, 8, 9);
    const d = await diverseSubset(e, 12, { start: 7 });
    // Replay: each pick is the unpicked row with the lowest max similarity to the picked ones (lower index on ties).
    const picked = [7];
    while (picked.length < 12) {
      let best = -1;
      let bestScore = Infinity;
      for (let i = 0; i < e.rows; i++) {
        if (picked.includes(i)) continue;
        const m = Math.max(...picked.map((p) => cosine(e, i, e, p)));
        if (m < bestScore - 1e-9) {
          bestScore = m;
          best = i;
        }
      }
      picked.push(best);
    }
    expect([...d.indices]).toEqual(picked);
    expect(Number.isNaN(d.coverage[0])).toBe(true);
    // Four tight clusters: the first four picks take one row from each.
    const dim = 4;
    const data = new Float32Array(40 * dim);
    for (let i = 0; i < 40; i++) {
      data[i * dim + (i % 4)] = 1;
      data[i * dim + ((i + 1) % 4)] = 0.01 * ((i * 7) % 5);
    }
    const c = await diverseSubset({ data, rows: 40, dim }, 4);
    expect(new Set([...c.indices].map((i) => i % 4)).size).toBe(4);
    await expectCode(diverseSubset(e, 201), 'E_RANGE');
  });
});
