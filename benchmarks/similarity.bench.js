// The similarity engine on the issue's reference size: 20000x512 queries
// against 50000x512 database rows, fused top-1 and top-10 (exact), top-1 with
// precision 'bf16' (with its recall@1 against the exact top-1), and with few
// queries (--fewM, default 64) class-max and thresholded pairs; GFLOP/s and
// peak extra memory. Beside it, in the same run: numpy/OpenBLAS chunked max
// and torch chunked top-10 from ../shared/peers/cosine_bench.py, and numpy
// for the few-query reductions (benchmarks/peers/few_query_peer.py).
// The first line is the machine (CPU, SIMD level, threads) and the peers'
// versions; the last carries `summary`.
//   node benchmarks/similarity.bench.js [--M 20000 --N 50000 --D 512 --rounds 3 --reps 1 --ops topk1,topk10 --quick --no-peer]
// With --device cuda (npm run bench -- similarity --device cuda): every
// operation runs on the GPU and, in the same round, on the CPU path; each line
// carries speedup_vs_cpu, the agreement of the two (index mismatches, largest
// score difference) and, where torch with CUDA is installed, the ratio to
// torch's chunked top-k on the same GPU (benchmarks/peers/torch_cuda_topk.py).
// On CUDA bf16top1 / bf16top10 are precision 'bf16' (the tensor-core screen with
// exact rescoring): their agreement is against the CPU's exact top-k, and the
// summary adds bf16_top1_vs_cpu and bf16_top10_vs_topk10 (the screen against the
// CUDA exact kernels).
// Each genaug measurement runs in a child process, so its peak memory is its own.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { args, emit, findPython, loadGenaug, machine, maxRssBytes, randomMatrix, root, rssBytes, runPeer, time } from './lib.js';

const a = args({ M: 20000, N: 50000, D: 512, reps: 1, op: '', peer: true, fewM: 64, threshold: 0.15, device: 'cpu' });
if (!['cpu', 'cuda', 'auto'].includes(a.device)) {
  console.error(`--device must be cpu, cuda or auto, got ${a.device}`);
  process.exit(2);
}
if (a.quick) Object.assign(a, { M: 2000, N: 5000, D: 128, reps: 1, fewM: 16 });

async function child() {
  const g = await loadGenaug();
  const few = a.op.endsWith('Few');
  const M = few ? a.fewM : a.M;
  const q = await randomMatrix(M, a.D, 1);
  const d = await randomMatrix(a.N, a.D, 2);
  const labels = new Int32Array(a.N).map((_, i) => (i * 7919) % 100);
  globalThis.gc?.();
  const base = rssBytes();
  const flop = 2 * M * a.N * a.D;
  let exactTop1;
  if (a.op === 'bf16top1') exactTop1 = await g.topk(q, d, 1);
  const dev = a.device === 'cpu' ? {} : { device: a.device };
  const ops = {
    topk1: (o) => g.topk(q, d, 1, o),
    topk1Fp32: (o) => g.topk(q, d, 1, { screen: 'off', ...o }),
    topk10Fp32: (o) => g.topk(q, d, 10, { screen: 'off', ...o }),
    topk10: (o) => g.topk(q, d, 10, o),
    bf16top1: (o) => g.topk(q, d, 1, { precision: 'bf16', ...o }),
    bf16top10: (o) => g.topk(q, d, 10, { precision: 'bf16', ...o }),
    classMax: (o) => g.classMax(q, d, labels, o),
    classMean: (o) => g.classMean(q, d, labels, o),
    classMaxFew: (o) => g.classMax(q, d, labels, o),
    pairsFew: (o) => g.pairs(q, d, { threshold: a.threshold, ...o }),
  };
  const run = () => ops[a.op](dev);
  let last;
  // The few-query calls take a fraction of a second: more repetitions.
  const t = await time(async () => (last = await run()), few ? Math.max(5, a.reps) : a.reps, 1);
  const extra = Math.max(0, maxRssBytes() - base);
  const res = { ...t, peak_extra_mib: +(extra / 2 ** 20).toFixed(1), isa: g.capabilities().isa, threads: g.capabilities().cpu.threads };
  if (a.op !== 'classMean') res.gflops = +(flop / t.median_s / 1e9).toFixed(1);
  if (exactTop1) {
    let hit = 0;
    for (let i = 0; i < M; i++) if (last.indices[i] === exactTop1.indices[i]) hit++;
    res.recall_at_1 = hit / M;
  }
  if (a.op === 'pairsFew') res.pairs = last.scores.length;
  if (a.device !== 'cpu') {
    // The same call on the CPU path: the device path's results contract (indices exact, scores within 1e-5).
    // precision 'bf16' on CUDA promises the exact answer: compared with the CPU's exact top-k.
    const cpu = a.op.startsWith('bf16') ? await g.topk(q, d, a.op === 'bf16top1' ? 1 : 10) : await ops[a.op]({});
    res.device = a.device;
    res.agreement = agreement(last, cpu);
  }
  process.stdout.write(JSON.stringify(res) + '\n');
}

/** torch's chunked top-k on the GPU (benchmarks/peers/torch_cuda_topk.py), or { skipped }. */
function runTorchCuda(args) {
  const py = findPython(['torch']);
  if (!py) return { skipped: 'no Python with torch' };
  try {
    const out = execFileSync(py, [join(root, 'benchmarks', 'peers', 'torch_cuda_topk.py'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return { skipped: `torch_cuda_topk.py failed: ${String(e.stderr ?? e.message).slice(-500)}` };
  }
}

/** Index mismatches and the largest score difference between a device result and the CPU's. */
function agreement(x, y) {
  const pick = (r) => r.values ?? r.scores;
  const sx = pick(x), sy = pick(y);
  let maxDiff = 0;
  let lengthMismatch = sx.length !== sy.length;
  for (let i = 0; i < Math.min(sx.length, sy.length); i++) {
    const dd = Math.abs(sx[i] - sy[i]);
    if (Number.isNaN(sx[i]) !== Number.isNaN(sy[i])) lengthMismatch = true;
    else if (!Number.isNaN(dd) && dd > maxDiff) maxDiff = dd;
  }
  let mismatches = 0;
  const ix = x.indices ?? x.j, iy = y.indices ?? y.j;
  if (ix && iy) for (let i = 0; i < Math.min(ix.length, iy.length); i++) if (ix[i] !== iy[i]) mismatches++;
  return { index_mismatches: mismatches, max_score_diff: maxDiff, shape_or_nan_mismatch: lengthMismatch, ok: !lengthMismatch && mismatches === 0 && maxDiff <= 1e-5 };
}

/** The few-query peer (benchmarks/peers/few_query_peer.py), or { skipped }. */
function runLocalPeer(args) {
  const py = findPython(['numpy', 'threadpoolctl']);
  if (!py) return { skipped: 'no Python with numpy, threadpoolctl' };
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  try {
    const out = execFileSync(py, [join(root, 'benchmarks', 'peers', 'few_query_peer.py'), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return { skipped: `few_query_peer.py failed: ${String(e.stderr ?? e.message).slice(-500)}` };
  }
}

/** numpy / torch / BLAS versions, for the first line (cheap: imports only). */
function peerVersions() {
  const py = findPython(['numpy']);
  if (!py) return 'no peer Python';
  const code = 'import json,numpy\ntry:\n import torch; tv=torch.__version__\nexcept Exception: tv=None\ntry:\n import threadpoolctl; b=[f"{x.get(\'internal_api\')} {x.get(\'version\')}" for x in threadpoolctl.threadpool_info()]\nexcept Exception: b=[]\nprint(json.dumps({"numpy":numpy.__version__,"torch":tv,"blas":sorted(set(b))}))';
  const r = spawnSync(py, ['-c', code], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout.trim());
  } catch {
    return 'unknown';
  }
}

// The host is shared and noisy, so genaug and its peer alternate: each round
// runs genaug's operation, then the peer's, and the ratio is taken per round;
// the figures printed are medians over rounds.
async function main() {
  // (Also --ops topk1Fp32,topk10Fp32: the same without the screening pass.)
  const onDevice = a.device !== 'cpu';
  // On CUDA precision 'bf16' is the tensor-core screen with exact rescoring (top-1 and top-10).
  const allOps = onDevice ? ['topk1', 'topk10', 'bf16top1', 'bf16top10', 'classMaxFew', 'pairsFew', 'classMax', 'classMean'] : ['topk1', 'topk10', 'bf16top1', 'classMaxFew', 'pairsFew', 'classMax', 'classMean'];
  const ops = a.ops ? String(a.ops).split(',') : allOps;
  const pair = {
    topk1: 'np_chunked_max',
    topk1Fp32: 'np_chunked_max',
    topk10Fp32: 'torch_chunked_topk10',
    bf16top1: 'np_chunked_max',
    bf16top10: 'torch_chunked_topk10',
    topk10: 'torch_chunked_topk10',
    classMean: 'np_class_mean',
    classMaxFew: 'np_classmax_few',
    pairsFew: 'np_pairs_few',
  };
  const rounds = a.rounds ?? (a.quick ? 1 : 3);
  const wantPeer = a.peer !== false && !a['no-peer'];
  const m = machine();
  const g0 = await loadGenaug();
  const versions = wantPeer ? peerVersions() : 'peer disabled';
  // First line: the machine, the SIMD level, the threads, the peers' versions.
  const cuda = g0.capabilities().cuda;
  if (a.device === 'cuda' && !cuda.usable) {
    console.error(`--device cuda: ${cuda.reason ?? 'no usable CUDA device'} (genaug info shows what this build and machine have)`);
    process.exit(1);
  }
  emit({ bench: 'similarity', device: a.device, machine: { cpu: m.cpu, isa: g0.capabilities().isa, threads: g0.capabilities().cpu.threads, cores: m.cores, node: m.node, gpu: cuda.device ?? null }, peer_versions: versions });
  const cpuRuns = Object.fromEntries(ops.map((op) => [op, []]));
  const torchRuns = Object.fromEntries(ops.map((op) => [op, []]));
  const childRun = (op, device) => {
    const c = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--op', op, '--device', device,
      '--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps), '--fewM', String(a.fewM), '--threshold', String(a.threshold)], { encoding: 'utf8' });
    if (c.status !== 0) {
      console.error(c.stderr);
      process.exit(1);
    }
    return JSON.parse(c.stdout.trim().split('\n').pop());
  };
  const ours = Object.fromEntries(ops.map((op) => [op, []]));
  const peers = Object.fromEntries(ops.map((op) => [op, []]));
  const skipped = {};
  for (let r = 0; r < rounds; r++) {
    for (const op of ops) {
      // The peer runs right after each operation (no reuse across operations):
      // the host's load changes within minutes.
      const peerCache = {};
      const mine = childRun(op, a.device);
      ours[op].push(mine);
      let line = `round ${r + 1}/${rounds} ${op}: genaug${onDevice ? ` (${a.device})` : ''} ${mine.median_s.toFixed(3)} s`;
      if (onDevice) {
        const cpu = childRun(op, 'cpu');
        cpuRuns[op].push(cpu);
        line += `, genaug (cpu) ${cpu.median_s.toFixed(3)} s, agreement ${JSON.stringify(mine.agreement)}`;
        if (wantPeer && ['topk1', 'topk10', 'bf16top1', 'bf16top10'].includes(op)) {
          const p = runTorchCuda(['--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps), '--k', op.endsWith('top1') ? '1' : '10']);
          if (p.median_s !== undefined) {
            torchRuns[op].push(p);
            line += `, torch cuda ${p.median_s.toFixed(3)} s`;
          } else skipped[`${op}_torch_cuda`] = p.skipped ?? p.error ?? 'torch cuda peer failed';
        }
      }
      const variant = pair[op];
      if (variant && wantPeer && !skipped[op]) {
        let res = peerCache[variant];
        if (!res) {
          let p;
          if (variant.endsWith('_few')) p = runLocalPeer(['--M', String(a.fewM), '--N', String(a.N), '--D', String(a.D), '--reps', String(Math.max(5, a.reps)), '--threshold', String(a.threshold)]);
          else p = runPeer('cosine_bench.py', ['--M', String(a.M), '--N', String(a.N), '--D', String(a.D), '--reps', String(a.reps), '--only', variant], ['numpy', 'threadpoolctl']);
          if (p.skipped) skipped[op] = p.skipped;
          for (const x of p.results ?? []) if (!x.error) peerCache[x.variant] = x;
          res = peerCache[variant];
          if (!res && !skipped[op]) skipped[op] = `peer variant ${variant} failed: ${JSON.stringify(p.results ?? p).slice(0, 300)}`;
        }
        if (res) {
          peers[op].push(res);
          line += `, ${variant} ${res.median_s.toFixed(3)} s`;
        }
      }
      console.error(line);
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
  };
  const speedups = {};
  for (const op of ops) {
    const mine = ours[op];
    const t = median(mine.map((x) => x.median_s));
    const few = op.endsWith('Few');
    const g = {
      median_s: t,
      min_s: Math.min(...mine.map((x) => x.min_s)),
      rounds: mine.length,
      peak_extra_mib: Math.max(...mine.map((x) => x.peak_extra_mib)),
      isa: mine[0].isa,
    };
    if (op !== 'classMean') g.gflops = +((2 * (few ? a.fewM : a.M) * a.N * a.D) / t / 1e9).toFixed(1);
    if (mine[0].recall_at_1 !== undefined) g.recall_at_1 = Math.min(...mine.map((x) => x.recall_at_1));
    if (mine[0].pairs !== undefined) g.pairs = mine[0].pairs;
    const ps = peers[op];
    const pt = median(ps.map((x) => x.median_s));
    speedups[op] = ps.length ? +median(ps.map((p, i) => p.median_s / mine[i].median_s)).toFixed(3) : null;
    if (onDevice) {
      g.device = a.device;
      g.agreement = mine.map((x) => x.agreement);
      const cpu = cpuRuns[op];
      g.cpu_median_s = median(cpu.map((x) => x.median_s));
      g.speedup_vs_cpu = +median(cpu.map((c, i) => c.median_s / mine[i].median_s)).toFixed(3);
      const tr = torchRuns[op];
      g.speedup_vs_torch_cuda = tr.length ? +median(tr.map((p, i) => p.median_s / mine[i].median_s)).toFixed(3) : (skipped[`${op}_torch_cuda`] ?? null);
    }
    emit({
      bench: 'similarity', op, M: few ? a.fewM : a.M, N: a.N, D: a.D, genaug: g,
      peer: ps.length ? { variant: pair[op], median_s: pt } : { skipped: pair[op] ? skipped[op] ?? 'peer did not run' : 'no peer for this operation' },
      speedup_vs_peer: speedups[op],
    });
  }
  const recall = ours.bf16top1?.length ? Math.min(...ours.bf16top1.map((x) => x.recall_at_1)) : null;
  emit({
    bench: 'similarity', M: a.M, N: a.N, D: a.D, few_query_M: a.fewM, rounds,
    summary: {
      top1_vs_numpy: speedups.topk1 ?? null,
      top10_vs_torch: speedups.topk10 ?? null,
      bf16_top1_vs_numpy: speedups.bf16top1 ?? null,
      bf16_recall_at_1: recall,
      ...(onDevice ? { bf16_top1_vs_cpu: ours.bf16top1?.length ? +median(cpuRuns.bf16top1.map((c, i) => c.median_s / ours.bf16top1[i].median_s)).toFixed(3) : null, bf16_top10_vs_topk10: ours.bf16top10?.length && ours.topk10?.length ? +(median(ours.topk10.map((x) => x.median_s)) / median(ours.bf16top10.map((x) => x.median_s))).toFixed(3) : null } : {}),
      classmax_vs_numpy: speedups.classMaxFew ?? null,
      pairs_vs_numpy: speedups.pairsFew ?? null,
    },
    machine: m,
  });
}

if (a.child) await child();
else await main();
