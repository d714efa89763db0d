// The similarity engine on the reference size: 20000x512 queries
// against 50000x512 database rows, fused top-1 and top-10, with GFLOP/s and
// peak extra memory; beside it, in the same run, numpy/OpenBLAS chunked max
// and torch chunked top-10 from ../shared/peers/cosine_bench.py.
//   node benchmarks/similarity.bench.js [--M 20000 --N 50000 --D 512 --reps 3 --quick --no-peer]
// Each genaug measurement runs in a child process, so its peak memory is its own.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { args, emit, loadGenaug, machine, maxRssBytes, randomMatrix, rssBytes, runPeer, time } from './lib.js';

const a = args({ M: 20000, N: 50000, D: 512, reps: 3, op: '', peer: true });
if (a.quick) Object.assign(a, { M: 2000, N: 5000, D: 128, reps: 1 });

async function child() {
  const g = await loadGenaug();
  const q = randomMatrix(a.M, a.D, 1);
  const d = randomMatrix(a.N, a.D, 2);
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

async function main() {
  const ops = ['topk1', 'topk10', 'classMax', 'classMean'];
  const ours = {};
  for (const op of ops) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--op', op,
      '--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps)], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(1);
    }
    ours[op] = JSON.parse(r.stdout.trim().split('\n').pop());
    console.error(`genaug ${op}: ${ours[op].median_s.toFixed(3)} s`);
  }
  let peer = { skipped: 'disabled with --no-peer' };
  if (a.peer !== false && !a['no-peer']) {
    console.error('running peers (numpy chunked max, torch chunked top-10, numpy class mean)...');
    peer = runPeer('cosine_bench.py', ['--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps),
      '--only', 'np_chunked_max,torch_chunked_topk10,np_class_mean'], ['numpy', 'threadpoolctl']);
  }
  const byVariant = Object.fromEntries((peer.results ?? []).filter((r) => !r.error).map((r) => [r.variant, r]));
  const pair = { topk1: 'np_chunked_max', topk10: 'torch_chunked_topk10', classMean: 'np_class_mean' };
  const m = machine();
  for (const op of ops) {
    const p = byVariant[pair[op]];
    emit({
      bench: 'similarity', op, M: a.M, N: a.N, D: a.D, genaug: ours[op],
      peer: p ? { variant: p.variant, median_s: p.median_s, gflops: p.gflops_effective, extra_peak_mib: p.extra_peak_MiB }
        : { skipped: peer.skipped ?? (pair[op] ? `peer variant ${pair[op]} did not run` : 'no peer for this operation') },
      speedup_vs_peer: p ? +(p.median_s / ours[op].median_s).toFixed(3) : null,
      machine: m, peer_versions: peer.versions ? { numpy: peer.versions.numpy, torch: peer.versions.torch, blas: (peer.versions.threadpools ?? []).map((t) => `${t.internal_api} ${t.version} ${t.architecture} x${t.num_threads}`) } : undefined,
    });
  }
}

if (a.child) await child();
else await main();
