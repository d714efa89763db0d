// Copy-paste compositing on the GPU against the CPU path, in the same run:
// the workload of paste.bench.js (per scene a 1024² RGB background with 3
// existing instance masks and 5 RGBA instances from 512² soft-edged sources,
// scale U(0.1, 1), flip p = 0.5, random centre, clipped at the border), one
// compositeBatch call per batch, for the basic, alpha and gaussian blends.
// Prints images/s on each device, the ratio, and whether every output byte
// (image, masks, boxes, areas, drops) is the CPU path's.
//   npm run bench -- paste-device [--device cuda|auto] [--batch 16 --reps 3 --threads 0]
// --device cuda (the default) without a usable GPU: a line saying why, and exit
// status 0 when the device was not asked for explicitly (`npm run bench` runs
// every benchmark), 1 when it was. --device auto on a machine without one
// runs the CPU path twice (a check of this script).
import { args, emit, loadGenaug, machine } from './lib.js';

const explicit = process.argv.includes('--device');
const a = args({ batch: 16, reps: 3, threads: 0, device: 'cuda' });
if (!['cuda', 'auto'].includes(a.device)) {
  console.error(`--device must be cuda or auto, got ${a.device}`);
  process.exit(2);
}
const g = await loadGenaug();
const cuda = g.capabilities().cuda;
if (a.device === 'cuda' && !cuda.usable) {
  const why = cuda.reason ?? 'no usable CUDA device';
  emit({ bench: 'paste-device', skipped: `--device cuda: ${why}` });
  process.exit(explicit ? 1 : 0);
}
const H = 1024, W = 1024, SRC = 512, N_EXIST = 3, N_PASTE = 5, POOL = 4;
const { seededRandom } = await import('../dist/util/random.js');
const rnd = seededRandom(7);
const randInt = (lo, hi) => lo + Math.floor(rnd() * (hi - lo));

function noise(n) {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = 64 + ((rnd() * 128) | 0);
  return d;
}
// An ellipse with a soft edge over `soft` pixels (alpha), or hard 0/1.
function blob(h, w, radius, soft) {
  const out = new Uint8Array(h * w);
  const cy = h * (0.45 + 0.1 * rnd()), cx = w * (0.45 + 0.1 * rnd());
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dy = y - cy, dx = (x - cx) / 1.3;
      const d = radius - Math.sqrt(dx * dx + dy * dy);
      if (soft) out[y * w + x] = d >= soft ? 255 : d <= -soft ? 0 : Math.round((255 * (d + soft)) / (2 * soft));
      else out[y * w + x] = d > 0 ? 1 : 0;
    }
  }
  return out;
}
const background = noise(H * W * 3);
const exist = [];
for (let i = 0; i < N_EXIST; i++) exist.push(blob(H, W, 160 + 40 * i, 0));
const pool = [];
for (let i = 0; i < POOL; i++) {
  const alpha = blob(SRC, SRC, 150, 3), rgb = noise(SRC * SRC * 3), rgba = new Uint8Array(SRC * SRC * 4);
  for (let p = 0; p < SRC * SRC; p++) {
    rgba[4 * p] = rgb[3 * p];
    rgba[4 * p + 1] = rgb[3 * p + 1];
    rgba[4 * p + 2] = rgb[3 * p + 2];
    rgba[4 * p + 3] = alpha[p];
  }
  pool.push(rgba);
}
const batch = [];
for (let k = 0; k < a.batch; k++) {
  const instances = [];
  for (let j = 0; j < N_PASTE; j++) {
    const sz = Math.max(1, Math.round(SRC * (0.1 + 0.9 * rnd())));
    instances.push({ rgba: pool[randInt(0, POOL)], width: SRC, height: SRC, targetWidth: sz, targetHeight: sz, flip: rnd() < 0.5, cx: randInt(0, W), cy: randInt(0, H) });
  }
  batch.push({ image: { data: background, width: W, height: H }, masks: exist, instances });
}

const same = (x, y) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
function identical(p, q) {
  return p.length === q.length && p.every((r, i) => {
    const s = q[i];
    return same(r.image, s.image) && JSON.stringify(r.dropped) === JSON.stringify(s.dropped) && r.instances.length === s.instances.length &&
      r.instances.every((k, j) => {
        const l = s.instances[j];
        return k.source === l.source && k.index === l.index && k.area === l.area && String(k.bbox) === String(l.bbox) && same(k.mask, l.mask);
      });
  });
}
async function timed(o) {
  await g.compositeBatch(batch, o);  // warm-up (device memory, output blocks)
  const ts = [];
  let last;
  for (let r = 0; r < a.reps; r++) {
    const t0 = process.hrtime.bigint();
    last = await g.compositeBatch(batch, o);
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  ts.sort((x, y) => x - y);
  return { s: ts[Math.floor(ts.length / 2)], last };
}

emit({ bench: 'paste-device', device: a.device, machine: { ...machine(), gpu: cuda.device ?? null }, workload: { height: H, width: W, existing_masks: N_EXIST, pasted: N_PASTE, source: SRC, batch: a.batch, reps: a.reps } });
for (const blend of ['basic', 'alpha', 'gaussian']) {
  const cpu = await timed({ blend, threads: a.threads });
  const dev = await timed({ blend, threads: a.threads, device: a.device });
  emit({
    bench: 'paste-device', blend, device: a.device,
    cpu_images_per_s: +(a.batch / cpu.s).toFixed(1), device_images_per_s: +(a.batch / dev.s).toFixed(1),
    speedup_vs_cpu: +(cpu.s / dev.s).toFixed(2), identical_to_cpu: identical(dev.last, cpu.last),
  });
}
