// Per-channel BatchNorm statistics on 64x256x56x56 float32 (205 MB) with two
// domains (first and second half of the batch), as GB/s of compulsory traffic
// (one read of the activations) and as a fraction of this machine's measured
// read bandwidth (../shared/peers/stream_bw.cpp, when g++ can build it); beside
// it, in the same run, torch.batch_norm_update_stats and torch.var_mean from
// ../shared/peers/bn_bench.py when torch is installed.
//   node benchmarks/bnstats.bench.js [--shape 64,256,56,56 --reps 10 --layout nchw --quick --no-peer]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { args, emit, loadGenaug, machine, maxRssBytes, root, rssBytes, runPeer, shared, time } from './lib.js';
import { printMachineLine, pythonVersions } from './machine.js';

const a = args({ shape: '64,256,56,56', reps: 10, layout: 'nchw', peer: true });
if (a.quick) Object.assign(a, { shape: '8,64,28,28', reps: 2 });
const [N, C, H, W] = String(a.shape).split(',').map(Number);

function readBandwidth() {
  const src = join(shared, 'peers', 'stream_bw.cpp');
  const dir = join(root, '.bench');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'stream_bw');
  let why = 'stream_bw.cpp not found';
  if (existsSync(src)) {
    try {
      if (!existsSync(bin)) execFileSync('g++', ['-O3', '-march=native', '-fopenmp', src, '-o', bin], { stdio: 'ignore' });
      const out = execFileSync(bin, ['2', String(1 << 26), '10'], { encoding: 'utf8' });
      const j = JSON.parse(out.trim().split('\n').pop());
      return { read_GBs: j.read_GBs_med, triad_GBs: j.triad_GBs_med, tool: 'stream_bw' };
    } catch (e) {
      why = `could not build or run stream_bw (${String(e.message).slice(0, 120)})`;
    }
  }
  // Fallback (stream_bw needs AVX-512): benchmarks/read_bw.cpp, 2 threads of AVX2 loads over 256 MiB.
  try {
    const fb = join(dir, 'read_bw');
    if (!existsSync(fb)) execFileSync('g++', ['-O3', '-mavx2', '-mfma', '-pthread', join(root, 'benchmarks', 'read_bw.cpp'), '-o', fb], { stdio: 'ignore' });
    const j = JSON.parse(execFileSync(fb, ['2', String(1 << 26), '10'], { encoding: 'utf8' }).trim().split('\n').pop());
    return { read_GBs: j.read_GBs_med, read_GBs_best: j.read_GBs_best, tool: 'benchmarks/read_bw.cpp', note: why };
  } catch (e) {
    return { skipped: `${why}; benchmarks/read_bw.cpp failed too: ${String(e.message).slice(0, 120)}` };
  }
}

async function main() {
  const g = await loadGenaug();
  printMachineLine(g, 'bnstats', { name: 'torch batch_norm_update_stats / var_mean (../shared/peers/bn_bench.py)', versions: a.peer !== false && !a['no-peer'] ? pythonVersions(['torch', 'numpy']) : { skipped: '--no-peer' } });
  const { bnStats } = await import(join(root, 'dist', 'kernels', 'bnstats.js'));
  const { seededRandom, gaussian } = await import(join(root, 'dist', 'util', 'random.js'));
  const n = N * C * H * W;
  const data = new Float32Array(n);
  const r = seededRandom(1);
  for (let i = 0; i < n; i += 64) {
    const v = 5 + 3 * gaussian(r);
    for (let j = i; j < Math.min(n, i + 64); j++) data[j] = v + (j - i) * 1e-3;
  }
  const domains = Int32Array.from({ length: N }, (_, i) => (i < N / 2 ? 0 : 1));
  const shape = a.layout === 'nchw' ? [N, C, H, W] : [N, H, W, C];
  globalThis.gc?.();
  const base = rssBytes();
  const t = await time(() => bnStats({ data, shape, layout: a.layout }, { domains, numDomains: 2 }), a.reps, 2);
  const extra = Math.max(0, maxRssBytes() - base);
  const bytes = n * 4;
  const ours = { ms: +(t.median_s * 1e3).toFixed(3), ms_min: +(t.min_s * 1e3).toFixed(3), GBs: +(bytes / t.median_s / 1e9).toFixed(2), peak_extra_mib: +(extra / 2 ** 20).toFixed(1), isa: g.capabilities().isa };
  // Both layouts on the same data, interleaved rep by rep (a busy machine drifts), and CPU time per call, which
  // other processes on the machine do not stretch.
  const layouts = {};
  for (const layout of ['nchw', 'nhwc']) layouts[layout] = { wall: [], cpu: [] };
  for (let r = 0; r < a.reps + 1; r++) {
    for (const layout of ['nchw', 'nhwc']) {
      const sh = layout === 'nchw' ? [N, C, H, W] : [N, H, W, C];
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await bnStats({ data, shape: sh, layout }, { domains, numDomains: 2 });
      const wall = Number(process.hrtime.bigint() - t0) / 1e6;
      const c = process.cpuUsage(c0);
      if (r > 0) {
        layouts[layout].wall.push(wall);
        layouts[layout].cpu.push((c.user + c.system) / 1000);
      }
    }
  }
  const med = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
  const both = Object.fromEntries(Object.entries(layouts).map(([k, v]) => [k, { ms: +med(v.wall).toFixed(2), ms_min: +Math.min(...v.wall).toFixed(2), cpu_ms: +med(v.cpu).toFixed(2), GBs_best: +(bytes / Math.min(...v.wall) / 1e6).toFixed(2) }]));
  const bw = a.quick ? { skipped: 'quick run' } : readBandwidth();
  let peer = { skipped: 'disabled with --no-peer' };
  if (a.peer !== false && !a['no-peer']) peer = runPeer('bn_bench.py', ['--shape', `${N},${C},${H},${W}`, '--no-numpy', '--min-time', a.quick ? '0.1' : '1.0'], ['torch', 'numpy']);
  const R = peer.results ?? {};
  const upd = R.torch_batch_norm_update_stats_2domains;
  const vm = R.torch_var_mean_0_2_3_2domains;
  emit({
    bench: 'bnstats', layout: a.layout, shape, domains: 2, tensor_MB: +(bytes / 1e6).toFixed(1), genaug: ours,
    machine_read_bandwidth: bw,
    fraction_of_read_bandwidth: bw.read_GBs ? +(ours.GBs / bw.read_GBs).toFixed(3) : null,
    peer: upd || vm ? { batch_norm_update_stats_2domains_ms: upd?.ms, var_mean_2domains_ms: vm?.ms, torch_threads: peer.torch_threads, var_rel_err_torch: R.bn_update_stats_max_rel_err_var } : { skipped: peer.skipped ?? 'torch peer did not report' },
    speedup_vs_batch_norm_update_stats: upd ? +(upd.ms / ours.ms).toFixed(2) : null,
    speedup_vs_var_mean: vm ? +(vm.ms / ours.ms).toFixed(2) : null,
    layouts: both,
    machine: machine(),
    summary: {
      // NHWC time over NCHW time (1.0 = as fast; the target is <= 1.1), by wall clock and by CPU time.
      nhwc_vs_nchw: +(both.nhwc.ms / both.nchw.ms).toFixed(2),
      nhwc_vs_nchw_cpu: +(both.nhwc.cpu_ms / both.nchw.cpu_ms).toFixed(2),
      // The slower layout's best run as a fraction of the machine's measured read bandwidth.
      bandwidth_fraction: bw.read_GBs ? +(Math.min(both.nchw.GBs_best, both.nhwc.GBs_best) / (bw.read_GBs_best ?? bw.read_GBs)).toFixed(3) : null,
      bandwidth_fraction_nchw: bw.read_GBs ? +(both.nchw.GBs_best / (bw.read_GBs_best ?? bw.read_GBs)).toFixed(3) : null,
    },
  });
}

await main();
