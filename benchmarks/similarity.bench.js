// The similarity engine on the reference size: 20000x512 queries
// against 50000x512 database rows, fused top-1 and top-10, with GFLOP/s and
// peak extra memory; beside it, in the same run, numpy/OpenBLAS chunked max
// and torch chunked top-10 from ../shared/peers/cosine_bench.py.
//   node benchmarks/similarity.bench.js [--M 20000 --N 50000 --D 512 --rounds 3 --reps 1 --quick --no-peer]
// Each genaug measurement runs in a child process, so its peak memory is its own.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { args, emit, loadGenaug, machine, maxRssBytes, randomMatrix, rssBytes, runPeer, time } from './lib.js';

const a = args({ M: 20000, N: 50000, D: 512, reps: 1, op: '', peer: true });
if (a.quick) Object.assign(a, { M: 2000, N: 5000, D: 128, reps: 1 });

async function child() {
  const g = await loadGenaug();
  const q = await randomMatrix(a.M, a.D, 1);
  const d = await randomMatrix(a.N, a.D, 2);
  const labels = new Int32Array(a.N).map((_, i) => (i * 7919) % 100);
  globalThis.gc?.();
  const base = rssBytes();
  const flop = 2 * a.M * a.N * a.D;
  const run = {
    topk1: () => g.topk(q, d, 1),
    topk10: () => g.topk(q, d, 10),
    classMax: () => g.classMax(q, d, labels),
    classMean: () => g.classMean(q, d, labels),
  }[a.op];
  const t = await time(run, a.reps, 1);
  const extra = Math.max(0, maxRssBytes() - base);
  const res = { ...t, peak_extra_mib: +(extra / 2 ** 20).toFixed(1), isa: g.capabilities().isa };
  if (a.op !== 'classMean') res.gflops = +(flop / t.median_s / 1e9).toFixed(1);
  process.stdout.write(JSON.stringify(res) + '\n');
}

// The host is shared and noisy, so genaug and its peer alternate: each round
// runs genaug's operation, then the peer's, and the ratio is taken per round;
// the figures printed are medians over rounds.
async function main() {
  const ops = ['topk1', 'topk10', 'classMax', 'classMean'];
  const pair = { topk1: 'np_chunked_max', topk10: 'torch_chunked_topk10', classMean: 'np_class_mean' };
  const rounds = a.rounds ?? (a.quick ? 1 : 3);
  const wantPeer = a.peer !== false && !a['no-peer'];
  const ours = Object.fromEntries(ops.map((op) => [op, []]));
  const peers = Object.fromEntries(ops.map((op) => [op, []]));
  let peerSkipped = wantPeer ? undefined : 'disabled with --no-peer';
  let peerVersions;
  for (let r = 0; r < rounds; r++) {
    for (const op of ops) {
      const c = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--op', op,
        '--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps)], { encoding: 'utf8' });
      if (c.status !== 0) {
        console.error(c.stderr);
        process.exit(1);
      }
      const mine = JSON.parse(c.stdout.trim().split('\n').pop());
      ours[op].push(mine);
      let line = `round ${r + 1}/${rounds} ${op}: genaug ${mine.median_s.toFixed(3)} s`;
      if (pair[op] && peerSkipped === undefined) {
        const p = runPeer('cosine_bench.py', ['--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps), '--only', pair[op]], ['numpy', 'threadpoolctl']);
        const res = (p.results ?? []).find((x) => x.variant === pair[op] && !x.error);
        if (p.skipped) peerSkipped = p.skipped;
        else if (!res) peerSkipped = `peer variant ${pair[op]} failed: ${JSON.stringify(p.results ?? p).slice(0, 300)}`;
        else {
          peers[op].push(res);
          peerVersions = p.versions;
          line += `, ${pair[op]} ${res.median_s.toFixed(3)} s`;
        }
      }
      console.error(line);
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
  };
  const m = machine();
  for (const op of ops) {
    const mine = ours[op];
    const t = median(mine.map((x) => x.median_s));
    const g = {
      median_s: t,
      min_s: Math.min(...mine.map((x) => x.min_s)),
      rounds: mine.length,
      peak_extra_mib: Math.max(...mine.map((x) => x.peak_extra_mib)),
      isa: mine[0].isa,
    };
    if (op !== 'classMean') g.gflops = +((2 * a.M * a.N * a.D) / t / 1e9).toFixed(1);
    const ps = peers[op];
    const pt = median(ps.map((x) => x.median_s));
    emit({
      bench: 'similarity', op, M: a.M, N: a.N, D: a.D, genaug: g,
      peer: ps.length
        ? { variant: pair[op], median_s: pt, gflops: median(ps.map((x) => x.gflops_effective)), extra_peak_mib: Math.max(...ps.map((x) => x.extra_peak_MiB)) }
        : { skipped: pair[op] ? peerSkipped ?? 'peer did not run' : 'no peer for this operation' },
      speedup_vs_peer: ps.length ? +median(ps.map((p, i) => p.median_s / mine[i].median_s)).toFixed(3) : null,
      machine: m,
      peer_versions: peerVersions ? { numpy: peerVersions.numpy, torch: peerVersions.torch, blas: (peerVersions.threadpools ?? []).map((x) => `${x.internal_api} ${x.version} ${x.architecture} x${x.num_threads}`) } : undefined,
    });
  }
}

if (a.child) await child();
else await main();
