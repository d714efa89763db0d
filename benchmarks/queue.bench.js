// Scale-out (issue 13): the generate + annotate + embed part of a procedural
// run (>= 2000 generated images by default) run locally, then through the
// BullMQ queue on a redis-server of its own with 1 and with 2 `genaug worker`
// processes (the coordinator does no item work). Seconds are the sum of the
// three stages' times in run.json; every run writes the same bytes (checked).
// Last line: {"summary": {workers_1_s, workers_2_s, scaling, overhead_1_worker, ...}}.
// --pin (taskset, 2+ cores): the local run, the coordinator and worker 1 on core 0, worker 2 on core 1 (on a
// machine other jobs share, the core they use decides more than the queue does: off by default).
//   node benchmarks/queue.bench.js [--per-class 286 --images 48 --size 128 --quick --pin]
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { args, emit, loadGenaug, machine, root } from './lib.js';

const a = args({ images: 48, 'per-class': 286, size: 128 });
if (a.quick) Object.assign(a, { images: 8, 'per-class': 20, size: 96 });
const redisServer = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
if (!redisServer) {
  console.error('queue bench: needs redis-server (apt-get install redis-server)');
  process.exit(1);
}
const bin = join(root, 'bin', 'genaug.js');
const taskset = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));
const pin = Boolean(a.pin) && taskset && machine().cores >= 2;
/** The command line of a process pinned to `core` (or as it is). */
const on = (core, argv) => (pin ? [taskset, ['-c', String(core), ...argv]] : [argv[0], argv.slice(1)]);
const g = await loadGenaug();
const dir = mkdtempSync(join(tmpdir(), 'genaug-bench-queue-'));

const port = await new Promise((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const password = randomBytes(12).toString('hex');
const redis = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], { stdio: 'ignore' });
const url = `redis://:${password}@127.0.0.1:${port}`;

const STAGES = ['generate', 'annotate', 'embed'];

/** The hashes of every output of the three stages (journals and progress files left out). */
function outputs(runDir) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else if (!['journal.jsonl', 'progress.jsonl'].includes(e.name)) out[r] = createHash('sha256').update(readFileSync(join(d, e.name))).digest('hex');
    }
  };
  for (const s of STAGES) walk(join(runDir, s), s);
  return out;
}

async function runOnce(label, workers) {
  const base = join(dir, label);
  await g.writeRealDataset({ out: join(base, 'data'), seed: 1, images: a.images });
  const config = {
    name: 'bench-queue',
    seed: 1,
    run_dir: 'run',
    real: { coco: 'data/annotations.json', images: 'data/images' },
    plan: { strategy: 'template', per_class: a['per-class'], rare_per_class: 2 * a['per-class'], width: a.size, height: a.size },
    generate: { backend: 'procedural', concurrency: 1 },
    // One lane per process: the local run and each worker process use one core for the item work.
    annotate: { workers: 0 },
    embed: { model: 'features', real_crop_padding: 4, workers: 0 },
  };
  writeFileSync(join(base, 'run.yaml'), JSON.stringify(config));
  const procs = [];
  for (let i = 0; i < workers; i++) procs.push(spawn(...on(i, [process.execPath, bin, 'worker', '--queue', url, '--id', `w${i + 1}`, '-q']), { stdio: 'ignore' }));
  const t0 = process.hrtime.bigint();
  const r = spawnSync(...on(0, [process.execPath, bin, 'run', join(base, 'run.yaml'), '--until', 'embed', '-q', ...(workers ? ['--queue', url] : [])]), { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((s) => (p.exitCode !== null ? s() : p.on('exit', s)))));
  if (r.status !== 0) throw new Error(`${label}: genaug run failed: ${r.stderr}`);
  const m = JSON.parse(readFileSync(join(base, 'run', 'run.json'), 'utf8'));
  const stages = Object.fromEntries(STAGES.map((s) => [s, m.stages[s].seconds]));
  const seconds = STAGES.reduce((n, s) => n + m.stages[s].seconds, 0);
  const row = { bench: 'queue', run: label, workers, pinned: Boolean(pin), seconds: Number(seconds.toFixed(3)), wall_s: Number(wall.toFixed(3)), stages, generated: m.stages.generate.summary.images, ...(m.queue ? { jobs: Object.fromEntries(Object.entries(m.queue.stages).map(([k, v]) => [k, v.jobs])) } : {}), ...machine() };
  emit(row);
  return { seconds, outputs: outputs(join(base, 'run')) };
}

try {
  // redis-server up (it answers a status query).
  for (let i = 0; ; i++) {
    if (spawnSync(process.execPath, [bin, 'queue', 'status', '--queue', url], { stdio: 'ignore' }).status === 0) break;
    if (i > 50) throw new Error('redis-server did not start');
    await new Promise((s) => setTimeout(s, 200));
  }
  const local = await runOnce('local', 0);
  const one = await runOnce('queue-1-worker', 1);
  const two = await runOnce('queue-2-workers', 2);
  const same = JSON.stringify(one.outputs) === JSON.stringify(local.outputs) && JSON.stringify(two.outputs) === JSON.stringify(local.outputs);
  if (!same) throw new Error('the queued runs did not write the local run\'s bytes');
  emit({
    summary: {
      images: Object.keys(local.outputs).filter((f) => f.startsWith('generate/images/') && !f.endsWith('.json')).length,
      local_s: Number(local.seconds.toFixed(3)),
      workers_1_s: Number(one.seconds.toFixed(3)),
      workers_2_s: Number(two.seconds.toFixed(3)),
      scaling: Number((one.seconds / two.seconds).toFixed(3)),
      overhead_1_worker: Number((one.seconds / local.seconds - 1).toFixed(3)),
      same_bytes: same,
      pinned: Boolean(pin),
      cores: machine().cores ?? undefined,
    },
  });
} finally {
  redis.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
