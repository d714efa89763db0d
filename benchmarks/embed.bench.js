// Embedding runs (`genaug embed`): images/s on 1 and 2 workers with a small
// generated CLIP-shaped vision model (224 × 224 input, ViT-B/32-style 32 × 32
// patch embedding to 192 channels, 4 residual MLP blocks 192-768-192, mean
// pool, projection to 512; about 0.1 GMAC per image, ~40x lighter than
// ViT-B/32, so it shows the pipeline's own costs), and the share of worker
// time in decoding, preprocessing (PIL-exact bicubic resize + crop +
// normalise) and inference. Also the weight-free features-v1 embedder.
// A second model has ViT-B/32's compute (12 blocks of 768-wide projections
// and a 768-3072-768 MLP on 49 tokens, ~4.3 GMAC per image; the blocks share
// one set of weights to keep the file small): the real model's balance of
// preprocessing and inference, where `preprocess_fraction` is read. Also the
// event loop's longest stall during each run (inference and model loading run
// in the pool's workers) and the resident-memory growth per 10k images
// (child processes embedding 500 and 4000 small images; rows are streamed to
// the .npy, so it stays flat).
//   node benchmarks/embed.bench.js [--images 128 --width 640 --height 480 --batch 8 --b32-images 128 --b32-batch 4 --quick --no-rss --keep]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import onnxProto from 'onnx-proto';
import sharp from 'sharp';

import { args, emit, loadGenaug, machine, maxRssBytes, shared } from './lib.js';
import { printMachineLine } from './machine.js';

// Batches are what the workers share out, and each run pays the pool's start
// and a model load per worker once (~0.5-1 s): 128 distinct ViT-B/32-cost
// images in batches of 4 (32 batches, ~16 s on one worker), 128 small ones in
// batches of 8.
// (16 images in one batch of 16 gave a 2-worker run nothing to split, and
// start-up was a third of a 16-image run.)
const a = args({ images: 128, width: 640, height: 480, batch: 8, 'b32-images': 128, 'b32-batch': 4 });
if (a.quick) Object.assign(a, { images: 16, batch: 4, 'b32-images': 8, 'b32-batch': 2 });
const { onnx } = onnxProto;
const g = await loadGenaug();

// Child mode: embed the first N images of a folder (manifest), print the peak RSS.
if (a['rss-child']) {
  const [dir, n] = [String(a['rss-child']), Number(a.n)];
  const manifest = join(dir, `m${n}.jsonl`);
  writeFileSync(manifest, Array.from({ length: n }, (_, i) => JSON.stringify({ file: `s${String(i).padStart(5, '0')}.png` })).join('\n') + '\n');
  await g.embedImages({ images: join(dir, 'small'), manifest, out: join(dir, `rss${n}.npy`), embedder: { kind: 'clip', model: join(dir, 'model') }, workers: 1, batchSize: 16 });
  process.stdout.write(JSON.stringify({ n, max_rss: maxRssBytes() }) + '\n');
  process.exit(0);
}
const ortVersion = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'), 'utf8')).version;
printMachineLine(g, 'embed', { name: "genaug's own inference (onnxruntime-node, CPU)", versions: { 'onnxruntime-node': ortVersion } });

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function buildVisionModel(path, size = 'small') {
  const rnd = lcg(3);
  const nodes = [];
  const inits = [];
  let n = 0;
  const F = onnx.TensorProto.DataType.FLOAT;
  const constF = (dims, scale) => {
    const size = dims.reduce((x, y) => x * y, 1);
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = (rnd() * 2 - 1) * scale;
    const name = `w${n++}`;
    inits.push({ name, dataType: F, dims, rawData: new Uint8Array(data.buffer) });
    return name;
  };
  const constI = (vals) => {
    const name = `i${n++}`;
    inits.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [vals.length], rawData: new Uint8Array(new BigInt64Array(vals.map(BigInt)).buffer) });
    return name;
  };
  const node = (op, inputs, attrs = {}, out) => {
    const o = out ?? `t${n++}`;
    const T = onnx.AttributeProto.AttributeType;
    nodes.push({
      opType: op,
      input: inputs,
      output: [o],
      name: `n${n++}`,
      attribute: Object.entries(attrs).map(([k, v]) => (Array.isArray(v) ? { name: k, type: T.INTS, ints: v } : { name: k, type: T.INT, i: v })),
    });
    return o;
  };
  const C = size === 'b32' ? 768 : 192;
  let x = node('Conv', ['pixel_values', constF([C, 3, 32, 32], 0.02)], { strides: [32, 32], kernel_shape: [32, 32] });
  x = node('Transpose', [node('Reshape', [x, constI([0, C, 49])])], { perm: [0, 2, 1] });
  if (size === 'b32') {
    // ViT-B/32's per-block matrix work (q, k, v, out projections + MLP), one shared set of weights.
    const proj = [0, 1, 2, 3].map(() => constF([C, C], 0.02));
    const up = constF([C, 4 * C], 0.02), down = constF([4 * C, C], 0.01);
    for (let b = 0; b < 12; b++) {
      let y = x;
      for (const w of proj) y = node('MatMul', [y, w]);
      x = node('Add', [x, y]);
      x = node('Add', [x, node('MatMul', [node('Relu', [node('MatMul', [x, up])]), down])]);
    }
  } else {
    for (let b = 0; b < 4; b++) {
      const h = node('Relu', [node('MatMul', [x, constF([C, 4 * C], 0.05)])]);
      x = node('Add', [x, node('MatMul', [h, constF([4 * C, C], 0.03)])]);
    }
  }
  const pooled = node('ReduceMean', [x], { axes: [1], keepdims: 0 });
  node('MatMul', [pooled, constF([C, 512], 0.07)], {}, 'image_embeds');
  const vi = (name, dims) => ({
    name,
    type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'genaug-bench',
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'bench_clip_vision', node: nodes, input: [vi('pixel_values', ['batch', 3, 224, 224])], output: [vi('image_embeds', ['batch', 512])], initializer: inits },
  });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}

/** Milliseconds the main thread has spent on a CPU (Linux), or null. */
function mainThreadCpuMs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'genaug-embed-bench-'));
try {
  const modelDir = join(dir, 'model');
  const b32Dir = join(dir, 'model-b32');
  for (const [d, size] of [[modelDir, 'small'], [b32Dir, 'b32']]) {
    mkdirSync(d);
    buildVisionModel(join(d, 'vision_model.onnx'), size);
    copyFileSync(join(shared, 'fixtures', 'clip-tokenizer', 'tokenizer.json'), join(d, 'tokenizer.json'));
    writeFileSync(
      join(d, 'preprocessor_config.json'),
      JSON.stringify({
        size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, resample: 3, do_center_crop: true, do_resize: true, do_rescale: true,
        rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
      }),
    );
  }
  const images = join(dir, 'images');
  mkdirSync(images);
  const W = Number(a.width), H = Number(a.height);
  for (let i = 0; i < Number(a.images); i++) {
    const rnd = lcg(100 + i);
    const raw = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const p = (y * W + x) * 3;
        raw[p] = (x * 255) / W;
        raw[p + 1] = (y * 255) / H;
        raw[p + 2] = (rnd() * 64 + ((x >> 5) + (y >> 5)) * 16 + i * 8) & 255;
      }
    }
    await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(images, `img${String(i).padStart(4, '0')}.jpg`));
  }

  const results = [];
  const b32Images = join(dir, 'images-b32');
  mkdirSync(b32Images);
  for (let i = 0; i < Math.min(Number(a['b32-images']), Number(a.images)); i++) copyFileSync(join(images, `img${String(i).padStart(4, '0')}.jpg`), join(b32Images, `img${String(i).padStart(4, '0')}.jpg`));
  for (const [label, embedder, folder, batchSize] of [
    ['clip-b32-cost', { kind: 'clip', model: b32Dir }, b32Images, Number(a['b32-batch'])],
    ['clip-small', { kind: 'clip', model: modelDir }, images, Number(a.batch)],
    ['features-v1', { kind: 'features' }, images, Number(a.batch)],
  ]) {
    for (const workers of [1, 2]) {
      const out = join(dir, `${label}-${workers}.npy`);
      const loop = monitorEventLoopDelay({ resolution: 2 });
      loop.enable();
      // The longest gaps between 1 ms ticks, with when they happened (ms from the start), the progress so far, and
      // how much of the gap the main thread spent running (Linux: /proc/self/task/PID/schedstat): a gap with little
      // running time is the machine's other work preempting this thread, not work on the event loop.
      const start = performance.now();
      let last = start, progress = 0, lastCpu = mainThreadCpuMs();
      const gaps = [];
      const tick = setInterval(() => {
        const now = performance.now(), cpu = mainThreadCpuMs();
        if (now - last > 10) gaps.push({ at_ms: Math.round(last - start), gap_ms: Math.round(now - last), running_ms: cpu === null ? null : +(cpu - lastCpu).toFixed(1), done: progress });
        last = now;
        lastCpu = cpu;
      }, 1);
      const t0 = process.hrtime.bigint();
      const r = await g.embedImages({ images: folder, out, embedder, workers, batchSize, onProgress: (d) => (progress = d) });
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(tick);
      loop.disable();
      const busy = r.timings.decode + r.timings.preprocess + r.timings.infer;
      const share = (v) => +(v / busy).toFixed(3);
      results.push({
        embedder: label,
        workers,
        images: r.images,
        seconds: +secs.toFixed(3),
        images_per_s: +(r.images / secs).toFixed(1),
        worker_ms_per_image: {
          decode: +(r.timings.decode / r.images).toFixed(2),
          preprocess: +(r.timings.preprocess / r.images).toFixed(2),
          infer: +(r.timings.infer / r.images).toFixed(2),
        },
        share: { decode: share(r.timings.decode), preprocess: share(r.timings.preprocess), infer: share(r.timings.infer) },
        event_loop_max_delay_ms: +(loop.max / 1e6).toFixed(1),
        // The longest time the main thread spent running between two ticks (its own work blocking the loop).
        event_loop_max_block_ms: gaps.length && gaps[0].running_ms !== null ? Math.max(...gaps.map((x) => x.running_ms)) : +(loop.max / 1e6).toFixed(1),
        longest_gaps: gaps.sort((x, y) => y.gap_ms - x.gap_ms).slice(0, 3),
      });
    }
  }
  // Resident memory against the number of images: two child processes.
  let rss = { skipped: '--no-rss' };
  if (!a['no-rss']) {
    const small = join(dir, 'small');
    mkdirSync(small);
    const sizes = a.quick ? [100, 400] : [500, 4000];
    for (let i = 0; i < sizes[1]; i++) {
      const raw = Buffer.alloc(48 * 48 * 3, i & 255);
      for (let p = 0; p < raw.length; p += 7) raw[p] = (p * 13 + i * 7) & 255;
      await sharp(raw, { raw: { width: 48, height: 48, channels: 3 } }).png().toFile(join(small, `s${String(i).padStart(5, '0')}.png`));
    }
    const self = fileURLToPath(import.meta.url);
    const peak = (n) => JSON.parse(execFileSync(process.execPath, [self, '--rss-child', dir, '--n', String(n)], { encoding: 'utf8' }).trim().split('\n').pop()).max_rss;
    const r0 = peak(sizes[0]), r1 = peak(sizes[1]);
    rss = { images: sizes, peak_rss_mib: [+(r0 / 2 ** 20).toFixed(1), +(r1 / 2 ** 20).toFixed(1)], growth_mib_per_10k: +(((r1 - r0) / 2 ** 20 / (sizes[1] - sizes[0])) * 1e4).toFixed(1) };
  }
  // Preprocessing alone on the main thread (one 640x480 image -> 3x224x224), for reference.
  const rgb = { data: new Uint8Array(W * H * 3).map((_, i) => (i * 7) & 255), width: W, height: H };
  const reps = 20;
  g.clipPreprocess(rgb);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) g.clipPreprocess(rgb);
  const prepMs = Number(process.hrtime.bigint() - t0) / 1e6 / reps;
  emit({
    benchmark: 'embed',
    machine: machine(),
    params: { images: Number(a.images), width: W, height: H, batch: Number(a.batch), b32_images: Number(a['b32-images']), b32_batch: Number(a['b32-batch']), model: 'ViT-B/32-style patch embed + 4 MLP blocks (192/768), 224 px, 512-d' },
    clip_preprocess_ms_per_image: +prepMs.toFixed(2),
    runs: results,
    rss,
    summary: (() => {
      const run = (label, w) => results.find((r) => r.embedder === label && r.workers === w);
      const prepShare = (r) => +(r.share.decode + r.share.preprocess).toFixed(3);
      const b1 = run('clip-b32-cost', 1), b2 = run('clip-b32-cost', 2), s1 = run('clip-small', 1), s2 = run('clip-small', 2);
      return {
        preprocess_fraction: prepShare(b1),
        preprocess_fraction_small_model: prepShare(s1),
        scaling_2_workers: +(b2.images_per_s / b1.images_per_s).toFixed(2),
        scaling_2_workers_small_model: +(s2.images_per_s / s1.images_per_s).toFixed(2),
        event_loop_max_block_ms: Math.max(...results.filter((r) => r.embedder.startsWith('clip')).map((r) => r.event_loop_max_block_ms)),
        rss_growth_mib_per_10k: rss.growth_mib_per_10k ?? null,
      };
    })(),
  });
} finally {
  if (a.keep) console.error(`embed: kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
