// Shared helpers for the benchmarks: timing, memory, machine details, and
// running a peer (Python) script side by side when it is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const shared = resolve(root, '..', 'shared');

export function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = true;
    else {
      out[key] = Number.isNaN(Number(next)) ? next : Number(next);
      i++;
    }
  }
  return out;
}

export async function time(fn, reps = 3, warmup = 1) {
  for (let i = 0; i < warmup; i++) await fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  ts.sort((a, b) => a - b);
  return { median_s: ts[Math.floor(ts.length / 2)], min_s: ts[0], n: ts.length };
}

/** Deterministic float32 data (genaug's own seeded generator), rows L2-normalised when asked. */
export async function randomMatrix(rows, dim, seed, normalize = true) {
  const { seededRandom, gaussian } = await import(join(root, 'dist', 'util', 'random.js'));
  const next = seededRandom(seed);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = gaussian(next);
  if (normalize) {
    for (let r = 0; r < rows; r++) {
      let n = 0;
      for (let k = 0; k < dim; k++) n += data[r * dim + k] ** 2;
      n = Math.sqrt(n);
      for (let k = 0; k < dim; k++) data[r * dim + k] /= n;
    }
  }
  return { data, rows, dim };
}

export function rssBytes() {
  return process.memoryUsage.rss();
}
export function maxRssBytes() {
  return process.resourceUsage().maxRSS * 1024;
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  let genaugVersion = 'unknown';
  try {
    genaugVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  } catch {}
  return { node: process.version, genaug: genaugVersion, cpu, cores: os.cpus().length, memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1) };
}

/** A Python interpreter that can import every module in `modules`, or null. */
export function findPython(modules) {
  const candidates = [process.env.GENAUG_PEER_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

/**
 * Runs a peer script from ../shared/peers and returns its last JSON line, or
 * { skipped: reason } when Python, the module or the script is missing.
 * OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for this command only.
 */
export function runPeer(script, scriptArgs, modules) {
  const path = join(shared, 'peers', script);
  if (!existsSync(path)) return { skipped: `peer script ${path} not found` };
  const py = findPython(modules);
  if (!py) return { skipped: `no Python with ${modules.join(', ')} (apt-get install python3-numpy python3-torch python3-threadpoolctl python3-psutil)` };
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  try {
    const out = execFileSync(py, [path, ...scriptArgs], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
    const lines = out.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]);
  } catch (e) {
    return { skipped: `peer ${script} failed: ${String(e.stderr ?? e.message).slice(-500)}` };
  }
}

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export async function loadGenaug() {
  const dist = join(root, 'dist', 'index.js');
  if (!existsSync(dist)) {
    console.error('genaug is not built: run `npm install` (or `npm run build`) first');
    process.exit(2);
  }
  return import(dist);
}
