/**
 * The gap metrics at widths where the eigensolver's speed matters (issue 22):
 * the threaded, batched solver gives the figures of the previous
 * one-rotation-at-a-time solver (golden values computed by it, on the same
 * seeded data) and of numpy.linalg.eigh in float64; `genaug gap --project`
 * gives the run report's projected figures.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { datasetGap, GAP_DIM, GAP_PROJECTION_SEED, randomProjection } from '../ts/curate/gap.js';
import { writeNpy } from '../ts/io/npy.js';
import { frechetDistanceRowsSync, frechetDistanceSync, gaussianStatsSync, vendiScoreSync } from '../ts/kernels/metrics.js';
import { randomMatrix } from './helpers.js';

const D = 420;
const real = randomMatrix(500, D, 31);
const syn = randomMatrix(150, D, 32);
const labels = { real: Int32Array.from({ length: 500 }, (_, i) => i % 3), synthetic: Int32Array.from({ length: 150 }, (_, i) => (i * 7) % 3) };

// Computed by the previous solver (Householder + QL with every rotation applied to the whole eigenvector matrix) on this data.
const OLD = {
  overall: [0.9131640756677721, 276.3250949793673, 125.63797507010241],
  perClass: [
    [1.3768555584677218, 137.04513719840176, 47.2207027910076],
    [1.3771043206188605, 136.89318723823558, 47.21249373669609],
    [1.3802582957287766, 136.37445977467388, 47.150779185058326],
  ],
  scalarFrechet: { distance: 127.80052321045784, meanTerm: 1.2353217933848093, trace1: 140.00826582861467, trace2: 139.70546716094165, traceSqrt: 76.57426578624164, rank1: 420 },
};

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
const head = (m: typeof real, rows: number) => ({ data: m.data.slice(0, rows * m.dim), rows, dim: m.dim });

describe('gap eigensolver', () => {
  it('gives the previous solver\'s figures (overall and per class, full-rank and rank-deficient covariances)', async () => {
    const g = await datasetGap(real, syn, labels);
    const got = [g.overall, ...g.perClass!].map((s) => [s.frechet!, s.vendiReal!, s.vendiSynthetic!]);
    const want = [OLD.overall, ...OLD.perClass];
    got.forEach((row, i) => row.forEach((v, k) => expect(rel(v, want[i]![k]!), `set ${i} metric ${k}: ${v} vs ${want[i]![k]}`).toBeLessThan(1e-9)));
    // The scalar kernels do the previous solver's arithmetic in the same order: equal to the last bits.
    const f = frechetDistanceSync(gaussianStatsSync(real, { isa: 'scalar' }), gaussianStatsSync(syn, { isa: 'scalar' }), { isa: 'scalar' });
    expect(f.rank1).toBe(OLD.scalarFrechet.rank1);
    for (const k of ['distance', 'meanTerm', 'trace1', 'trace2', 'traceSqrt'] as const) expect(rel(f[k], OLD.scalarFrechet[k]), k).toBeLessThan(1e-13);
  });

  it('does not depend on the thread count', () => {
    const a = gaussianStatsSync(syn), b = gaussianStatsSync(real);
    const one = frechetDistanceSync(a, b, { threads: 1 });
    expect(frechetDistanceSync(a, b, { threads: 3 })).toEqual(one);
    expect(vendiScoreSync(real, { threads: 3 }).score).toBe(vendiScoreSync(real, { threads: 1 }).score);
  });

  it('the row path (no more rows than columns) gives the covariance path\'s distance', () => {
    for (const [x, y] of [[syn, head(real, 300)], [head(real, 167), head(syn, 50)], [head(syn, 1), head(real, 40)], [head(real, 40), head(syn, 1)]] as const) {
      const cov = frechetDistanceSync(gaussianStatsSync(x), gaussianStatsSync(y));
      const rows = frechetDistanceRowsSync(x, y);
      expect(rows.rank1).toBe(cov.rank1);
      for (const k of ['distance', 'meanTerm', 'trace1', 'trace2', 'traceSqrt'] as const) {
        expect(Math.abs(rows[k] - cov[k]), `${x.rows} x ${y.rows} ${k}`).toBeLessThanOrEqual(1e-9 * Math.max(Math.abs(cov[k]), cov.trace1 + cov.trace2));
      }
      expect(frechetDistanceRowsSync(x, y, { threads: 3 })).toEqual(frechetDistanceRowsSync(x, y, { threads: 1 }));
    }
    expect(() => frechetDistanceRowsSync(real, syn)).toThrow(/at most as many rows as columns/);
    const bad = head(syn, 10);
    bad.data[3 * D + 7] = NaN;
    expect(() => frechetDistanceRowsSync(head(real, 10), bad)).toThrow(/second set row 3, column 7 is NaN/);
  });

  it('agrees with numpy.linalg.eigh in float64', async () => {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.warn('gap-eigen.test.ts: numpy not installed; the previous solver\'s figures above are the reference');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'genaug-gap-eigen-'));
    try {
      await writeNpy(join(dir, 'r.npy'), real.data, [real.rows, D]);
      await writeNpy(join(dir, 's.npy'), syn.data, [syn.rows, D]);
      // The Fréchet distance with the same rank rule (eigenvalues of S1 above D eps max kept), from numpy's eigh.
      const script = `
import json, sys, numpy as np
eps = np.finfo(np.float64).eps
def frechet(x, y):
    x = x.astype(np.float64); y = y.astype(np.float64)
    s1 = np.cov(x, rowvar=False); s2 = np.cov(y, rowvar=False)
    l, w = np.linalg.eigh(s1)
    keep = l > len(l) * eps * max(l[-1], 0)
    b = np.sqrt(l[keep])[:, None] * w[:, keep].T
    m = b @ s2 @ b.T
    mu = np.linalg.eigvalsh((m + m.T) / 2)
    ts = np.sqrt(mu[mu > len(mu) * eps * max(mu[-1], 0)]).sum()
    d = x.mean(0) - y.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * ts), int(keep.sum())
def vendi(x):
    x = x.astype(np.float64); x = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(x @ x.T / len(x) if len(x) <= x.shape[1] else x.T @ x / len(x))
    lam = lam[lam > 0]
    return float(np.exp(-(lam * np.log(lam)).sum()))
r = np.load(sys.argv[1]); s = np.load(sys.argv[2])
print(json.dumps({"rs": frechet(r, s), "sr": frechet(s, r), "rows": frechet(s, r[:300]), "vr": vendi(r), "vs": vendi(s)}))`;
      const py = spawnSync('/usr/bin/python3', ['-c', script, join(dir, 'r.npy'), join(dir, 's.npy')], { encoding: 'utf8' });
      expect(py.status, py.stderr).toBe(0);
      const want = JSON.parse(py.stdout) as { rs: [number, number]; sr: [number, number]; rows: [number, number]; vr: number; vs: number };
      const sr = gaussianStatsSync(real), ss = gaussianStatsSync(syn);
      const rs = frechetDistanceSync(sr, ss);
      const srf = frechetDistanceSync(ss, sr);  // S1 of rank 149 < D: the rank-deficient path
      expect([rs.rank1, srf.rank1]).toEqual([want.rs[1], want.sr[1]]);
      expect(rel(rs.distance, want.rs[0])).toBeLessThan(1e-9);
      expect(rel(srf.distance, want.sr[0])).toBeLessThan(1e-9);
      // The row path (150 and 300 rows < D): the same distance without a D x D eigenproblem.
      const rows = frechetDistanceRowsSync(syn, head(real, 300));
      expect(rows.rank1).toBe(want.rows[1]);
      expect(rel(rows.distance, want.rows[0])).toBeLessThan(1e-9);
      expect(rel(vendiScoreSync(real).score, want.vr)).toBeLessThan(1e-9);
      expect(rel(vendiScoreSync(syn).score, want.vs)).toBeLessThan(1e-9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('genaug gap --project DIM gives the run report\'s projected figures', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const dir = await mkdtemp(join(tmpdir(), 'genaug-gap-project-'));
    try {
      const r = randomMatrix(60, 300, 41), s = randomMatrix(40, 300, 42);
      await writeNpy(join(dir, 'r.npy'), r.data, [60, 300]);
      await writeNpy(join(dir, 's.npy'), s.data, [40, 300]);
      const bin = join(__dirname, '..', 'bin', 'genaug.js');
      await promisify(execFile)(process.execPath, [bin, 'gap', '--real', join(dir, 'r.npy'), '--synthetic', join(dir, 's.npy'), '--project', String(GAP_DIM), '--out', join(dir, 'g.json'), '-q']);
      const g = JSON.parse(await readFile(join(dir, 'g.json'), 'utf8'));
      expect(g.project).toEqual({ dim: GAP_DIM, seed: GAP_PROJECTION_SEED });
      // What the report computes: the same seeded projection of both sets, then the gap.
      const want = await datasetGap(randomProjection(r, GAP_DIM, GAP_PROJECTION_SEED), randomProjection(s, GAP_DIM, GAP_PROJECTION_SEED));
      expect(g.overall).toEqual(JSON.parse(JSON.stringify(want.overall)));
      const unprojected = await datasetGap(r, s);
      expect(g.overall.frechet).not.toBe(unprojected.overall.frechet);
      const bad = await promisify(execFile)(process.execPath, [bin, 'gap', '--real', join(dir, 'r.npy'), '--synthetic', join(dir, 's.npy'), '--project', '0', '--out', join(dir, 'x.json')]).catch((e: { code: number; stderr: string }) => e);
      expect((bad as { code: number }).code).toBe(2);
      expect((bad as { stderr: string }).stderr).toMatch(/--project/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
