// `genaug gap` at D = 1701 (the demo's features-v1 width) against numpy/scipy
// in the same run. Two workloads on seeded Gaussian data with a few strong
// directions (like image features):
//   frechet: one Fréchet distance between two full-rank sets (N = 2000 > D):
//     genaug's eigendecomposition-based distance vs the same formula with
//     numpy.linalg.eigh and with scipy.linalg.eigh (LAPACK's divide and
//     conquer, driver evd), and with --sqrtm also scipy.linalg.sqrtm(S1 S2),
//     the formula of pytorch-fid / torchmetrics (minutes at D = 1701);
//   gap: the `genaug gap` command end to end (Fréchet, nearest neighbours and
//     Vendi, overall and for 3 classes; 600 real and 900 synthetic rows), and
//     with --project 128 (the run report's projection);
// Summary gap_vs_scipy: scipy eigh's seconds / genaug's for the Fréchet distance
// (above 1: genaug is faster), the relative difference of the values beside.
//   npm run bench -- gap [--dim 1701 --rows 2000 --quick --no-peer --sqrtm]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { args, emit, findPython, loadGenaug, machine, root } from './lib.js';

const a = args({ dim: 1701, rows: 2000, real: 600, synthetic: 900, peer: true });
if (a['no-peer']) a.peer = false;
if (a.quick) Object.assign(a, { dim: 300, rows: 400, real: 120, synthetic: 180 });
const D = Number(a.dim);
const g = await loadGenaug();
const { seededRandom, gaussian } = await import(join(root, 'dist', 'util', 'random.js'));
const { writeNpy } = await import(join(root, 'dist', 'io', 'npy.js'));
const bin = join(root, 'bin', 'genaug.js');

/**
 * Rows of N(0, I) plus 8 stronger shared directions, shifted by `shift`. (With
 * a much wider spectrum the rank rule of the formula, eigenvalues below
 * D eps max dropped, starts dropping real ones, and the value depends on
 * rounding near that threshold in any implementation.)
 */
function features(rows, seed, shift) {
  const r = seededRandom(seed);
  const basis = seededRandom(99);
  const dirs = Array.from({ length: 8 }, () => Float32Array.from({ length: D }, () => gaussian(basis)));
  const data = new Float32Array(rows * D);
  for (let i = 0; i < rows; i++) {
    const row = data.subarray(i * D, (i + 1) * D);
    for (let k = 0; k < D; k++) row[k] = gaussian(r) + shift;
    for (const d of dirs) {
      const c = gaussian(r) * 0.5;
      for (let k = 0; k < D; k++) row[k] += c * d[k];
    }
  }
  return { data, rows, dim: D };
}

const dir = await mkdtemp(join(tmpdir(), 'genaug-gap-bench-'));
try {
  const x = features(a.rows, 1, 0), y = features(a.rows, 2, 0.05);
  await writeNpy(join(dir, 'x.npy'), x.data, [x.rows, D]);
  await writeNpy(join(dir, 'y.npy'), y.data, [y.rows, D]);
  const t0 = process.hrtime.bigint();
  const sx = await g.gaussianStats(x), sy = await g.gaussianStats(y);
  const statsS = Number(process.hrtime.bigint() - t0) / 1e9;
  const t1 = process.hrtime.bigint();
  const f = await g.frechetDistance(sx, sy);
  const frechetS = Number(process.hrtime.bigint() - t1) / 1e9;

  // The gap command end to end, plain and projected.
  const real = features(a.real, 3, 0), syn = features(a.synthetic, 4, 0.05);
  await writeNpy(join(dir, 'r.npy'), real.data, [real.rows, D]);
  await writeNpy(join(dir, 's.npy'), syn.data, [syn.rows, D]);
  await writeNpy(join(dir, 'rl.npy'), Int32Array.from({ length: real.rows }, (_, i) => i % 3), [real.rows]);
  await writeNpy(join(dir, 'sl.npy'), Int32Array.from({ length: syn.rows }, (_, i) => (i * 7) % 3), [syn.rows]);
  const gapCli = (extra) => {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, [bin, 'gap', '--real', join(dir, 'r.npy'), '--synthetic', join(dir, 's.npy'), '--real-labels', join(dir, 'rl.npy'), '--synthetic-labels', join(dir, 'sl.npy'), '--out', join(dir, 'g.json'), '-q', ...extra]);
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  const gapS = gapCli([]);
  const gapProjectedS = gapCli(['--project', '128']);

  let peer = { skipped: 'no Python with numpy and scipy (apt-get install python3-numpy python3-scipy)' };
  const py = a.peer ? findPython(['numpy', 'scipy']) : null;
  if (!a.peer) peer = { skipped: '--no-peer' };
  if (py) {
    const script = `
import json, sys, time, numpy as np, scipy.linalg
x = np.load(sys.argv[1]).astype(np.float64); y = np.load(sys.argv[2]).astype(np.float64)
t = time.perf_counter()
m1, m2 = x.mean(0), y.mean(0); s1 = np.cov(x, rowvar=False); s2 = np.cov(y, rowvar=False)
stats_s = time.perf_counter() - t
eps = np.finfo(np.float64).eps
def frechet(eigh, eigvalsh):
    l, w = eigh(s1)
    keep = l > len(l) * eps * max(l[-1], 0)
    b = np.sqrt(l[keep])[:, None] * w[:, keep].T
    mu = eigvalsh(b @ s2 @ b.T)
    ts = np.sqrt(mu[mu > len(mu) * eps * max(mu[-1], 0)]).sum()
    d = m1 - m2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * ts)
t = time.perf_counter()
eigh_value = frechet(np.linalg.eigh, np.linalg.eigvalsh)
eigh_s = time.perf_counter() - t
t = time.perf_counter()
scipy_value = frechet(lambda a: scipy.linalg.eigh(a, driver="evd"), lambda a: scipy.linalg.eigh(a, eigvals_only=True, driver="evd"))
scipy_s = time.perf_counter() - t
sqrtm_value = sqrtm_s = None
if int(sys.argv[3]):
    t = time.perf_counter()
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean): covmean = covmean.real
    d = m1 - m2
    sqrtm_value = float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    sqrtm_s = time.perf_counter() - t
from threadpoolctl import threadpool_info
print(json.dumps({"numpy": np.__version__, "scipy": scipy.__version__, "blas": [i.get("internal_api") + " " + str(i.get("num_threads")) + " threads" for i in threadpool_info()], "stats_s": stats_s, "eigh_s": eigh_s, "eigh_value": eigh_value, "scipy_s": scipy_s, "scipy_value": scipy_value, "sqrtm_s": sqrtm_s, "sqrtm_value": sqrtm_value}))`.replace(
      'from threadpoolctl import threadpool_info\n',
      'try:\n    from threadpoolctl import threadpool_info\nexcept ImportError:\n    threadpool_info = lambda: []\n',
    );
    const r = spawnSync(py, ['-c', script, join(dir, 'x.npy'), join(dir, 'y.npy'), a.sqrtm ? '1' : '0'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    peer = r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()) : { skipped: `peer failed: ${r.stderr.slice(-400)}` };
  }
  // The distance is a small difference of large traces: a float64 eigensolver's rounding (eps x the largest eigenvalue,
  // for every eigenvalue) moves it by more, relative to itself, than relative to the traces; both are given.
  const relDiff = (v) => (typeof v === 'number' ? +(Math.abs(f.distance - v) / Math.abs(v)).toExponential(2) : null);
  const traceDiff = (v) => (typeof v === 'number' ? +(Math.abs(f.distance - v) / (f.trace1 + f.trace2)).toExponential(2) : null);
  emit({
    benchmark: 'gap',
    machine: machine(),
    dim: D,
    frechet: {
      rows: a.rows,
      genaug: { stats_s: +statsS.toFixed(3), frechet_s: +frechetS.toFixed(3), value: f.distance, traces: f.trace1 + f.trace2, rank1: f.rank1 },
      numpy_eigh: peer.eigh_s !== undefined ? { s: +peer.eigh_s.toFixed(3), value: peer.eigh_value, rel_diff: relDiff(peer.eigh_value), diff_vs_traces: traceDiff(peer.eigh_value) } : peer,
      scipy_eigh: peer.scipy_s !== undefined ? { s: +peer.scipy_s.toFixed(3), value: peer.scipy_value, rel_diff: relDiff(peer.scipy_value), diff_vs_traces: traceDiff(peer.scipy_value) } : peer,
      scipy_sqrtm: typeof peer.sqrtm_s === 'number' ? { s: +peer.sqrtm_s.toFixed(3), value: peer.sqrtm_value, rel_diff: relDiff(peer.sqrtm_value), diff_vs_traces: traceDiff(peer.sqrtm_value) } : { skipped: 'pass --sqrtm (scipy.linalg.sqrtm of S1 S2, pytorch-fid\'s formula: minutes at D = 1701)' },
      peer_versions: peer.numpy ? { numpy: peer.numpy, scipy: peer.scipy, blas: peer.blas } : undefined,
    },
    gap_command: { real: a.real, synthetic: a.synthetic, classes: 3, s: +gapS.toFixed(3), project_128_s: +gapProjectedS.toFixed(3) },
    summary: {
      gap_vs_scipy: peer.scipy_s !== undefined ? +(peer.scipy_s / frechetS).toFixed(2) : null,
      gap_vs_numpy_eigh: peer.eigh_s !== undefined ? +(peer.eigh_s / frechetS).toFixed(2) : null,
      genaug_frechet_s: +frechetS.toFixed(3),
      genaug_gap_command_s: +gapS.toFixed(3),
    },
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
