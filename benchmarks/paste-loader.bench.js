// The online paste loader (pasteLoader) on generated data: samples per second
// delivered to a consumer that only touches each sample, with 1 and 2 worker
// threads (and the main thread), for a given image size. Each sample is:
// decode a JPEG, rasterise the real polygons, sample up to 19 pastes from the
// pool (X-Paste rules, size prior from the data), composite natively, return
// the RGB image and one full-frame mask per instance (transferred, not copied).
//   node benchmarks/paste-loader.bench.js [--images 16 --size 640 --samples 64 --quick]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';

import { args, emit, loadGenaug, machine, root } from './lib.js';

const a = args({ images: 16, size: 640, samples: 64, crops: 4, reps: 3 });
if (a.quick) Object.assign(a, { images: 4, size: 320, samples: 16, reps: 1 });
const g = await loadGenaug();
const { seededRandom } = await import(join(root, 'dist', 'util', 'random.js'));

const dir = await mkdtemp(join(tmpdir(), 'genaug-paste-bench-'));
try {
  const rnd = seededRandom(1);
  const S = Number(a.size);
  const W = S, H = Math.round((S * 3) / 4);
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

  const results = [];
  for (const workers of [0, 1, 2]) {
    const run = async (n) => {
      const loader = g.pasteLoader({ coco: join(dir, 'real.json'), images, pool, seed: 1, epochs: Infinity, workers });
      let got = 0, instances = 0;
      // Warm-up on the same loader: workers start and decode the crops once.
      const warmup = Math.max(4, 2 * workers);
      let t0 = 0n;
      for await (const s of loader) {
        got++;
        if (got === warmup) t0 = process.hrtime.bigint();
        if (got <= warmup) continue;
        instances += s.annotations.length;
        if (got - warmup >= n) break;
      }
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      return { secs, got: got - warmup, instances };
    };
    // Several runs, interleaved with nothing else: report the median and the best (the machine may be shared).
    const runs = [];
    for (let i = 0; i < a.reps; i++) runs.push(await run(Number(a.samples)));
    const rates = runs.map((r) => r.got / r.secs).sort((x, y) => x - y);
    const r = runs[0];
    results.push({
      workers,
      samples: r.got,
      reps: runs.length,
      samples_per_s: +rates[Math.floor(rates.length / 2)].toFixed(1),
      samples_per_s_best: +rates[rates.length - 1].toFixed(1),
      instances_per_sample: +(r.instances / r.got).toFixed(1),
    });
  }
  const w1 = results.find((r) => r.workers === 1).samples_per_s_best;
  const w2 = results.find((r) => r.workers === 2).samples_per_s_best;
  emit({
    benchmark: 'paste-loader',
    machine: machine(),
    image: `${W}x${H} jpeg`,
    pool: `3 categories x ${a.crops} RGBA crops (~160-256 px)`,
    note: 'workers 0 = main thread (sharp decodes on the libuv pool, compositing blocks the loop); each sample has a full-frame mask per instance; scaling from the best runs',
    results,
    scaling_1_to_2: +(w2 / w1).toFixed(2),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
