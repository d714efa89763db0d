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

/**
 * The copy-paste benchmarks' data (paste-loader, stream): `images` generated W x H JPEGs under DIR/images with 4
 * polygon instances each of 3 categories in DIR/real.json, and a pool DIR/pool (index.json) of `crops` elliptic RGBA
 * crops per category; `rnd` (a seeded random) makes it the same every run.
 */
export async function writePasteFixture(dir, { images: count, crops, W, H, rnd }) {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { default: sharp } = await import('sharp');
  const a = { images: count, crops };
  const images = join(dir, 'images');
  await mkdir(images, { recursive: true });
  const coco = { images: [], annotations: [], categories: [{ id: 1, name: 'car' }, { id: 2, name: 'dog' }, { id: 3, name: 'cup' }] };
  let annId = 1;
  for (let i = 0; i < a.images; i++) {
    const px = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const k = (y * W + x) * 3;
      px[k] = (x + 7 * i) & 255;
      px[k + 1] = (y * 2) & 255;
      px[k + 2] = (rnd() * 64) | 0;
    }
    const file = `img${String(i).padStart(4, '0')}.jpg`;
    await sharp(px, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(images, file));
    coco.images.push({ id: i + 1, file_name: file, width: W, height: H });
    for (let k = 0; k < 4; k++) {
      const w = Math.round(W * (0.1 + 0.2 * rnd())), h = Math.round(H * (0.1 + 0.2 * rnd()));
      const x = Math.round((W - w) * rnd()), y = Math.round((H - h) * rnd());
      coco.annotations.push({ id: annId++, image_id: i + 1, category_id: 1 + (k % 3), bbox: [x, y, w, h], area: w * h, iscrowd: 0, segmentation: [[x, y, x + w, y, x + w / 2, y + h]] });
    }
  }
  await writeFile(join(dir, 'real.json'), JSON.stringify(coco));
  const pool = join(dir, 'pool');
  const index = { categories: {} };
  for (const name of ['car', 'dog', 'cup']) {
    await mkdir(join(pool, 'instances', name), { recursive: true });
    index.categories[name] = [];
    for (let c = 0; c < a.crops; c++) {
      const cw = 160 + ((rnd() * 96) | 0), ch = 160 + ((rnd() * 96) | 0);
      const d = Buffer.alloc(cw * ch * 4);
      for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) {
        const dx = (x + 0.5) / cw - 0.5, dy = (y + 0.5) / ch - 0.5;
        const o = (y * cw + x) * 4;
        d[o] = 40 * c; d[o + 1] = x & 255; d[o + 2] = y & 255;
        d[o + 3] = dx * dx + dy * dy < 0.25 ? 255 : 0;
      }
      const file = `instances/${name}/${c}.png`;
      await sharp(d, { raw: { width: cw, height: ch, channels: 4 } }).png().toFile(join(pool, file));
      index.categories[name].push({ file, bbox: [0, 0, cw, ch] });
    }
  }
  await writeFile(join(pool, 'index.json'), JSON.stringify(index));
  return { images, coco: join(dir, 'real.json'), pool };
}
