/**
 * Auxiliary BatchNorm statistics from a model ("Diversify, Don't Fine-Tune": the classifier keeps one BN per
 * domain, the main one for real images and an auxiliary one for synthetic images). Given an ONNX classifier and a
 * folder of images per domain, genaug finds every BatchNormalization node, makes onnxruntime return the tensor each
 * one normalises (extra graph outputs appended to the model's bytes; the file is not changed), runs the images
 * through in batches, and accumulates per-channel statistics per layer and domain in float64 (Welford/Chan, the
 * bnstats kernel). It writes one safetensors file whose names are the PyTorch state dict's: `<layer>.running_mean`,
 * `.running_var`, `.num_batches_tracked` for domain 0 (real) and `<layer>.aux_bn.*` for domain 1 (synthetic).
 *
 * Layer names come from the BN's scale initializer (torch.onnx keeps `layer1.0.bn1.weight`). Export the model in
 * training-preserving mode (`torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE)` on a model in
 * train() mode, or `do_constant_folding=False`): an eval-mode export folds BN into the convolutions and leaves
 * no BatchNormalization node, which is refused with that hint.
 *
 * Preprocessing is the torchvision evaluation transform: shorter side resized to `resize` (bilinear, antialiased),
 * centre crop `size` x `size`, scaled to [0, 1], normalised with `mean`/`std` (ImageNet's by default).
 * Memory is one batch of inputs and activations, whatever the number of images.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { readWholeFile, writeFileAtomic } from '../io/atomic.js';
import { readImage, type RgbImage } from '../io/images.js';
import { checkWithin } from '../io/roots.js';
import { writeSafetensors, type SafeTensor } from '../io/safetensors.js';
import { BnStatsAccumulator } from '../kernels/bnstats.js';
import { openSession, resizeRgb, runSession, type Provider } from '../models/onnx.js';
import { batchNormTaps, readOnnxGraph, withGraphOutputs, type BnTap } from '../models/onnx-graph.js';
import { GenaugError } from '../native/errors.js';
import { listImages } from './annotate.js';

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

export interface ModelBnStatsOptions {
  /** The ONNX classifier (with BatchNormalization nodes). */
  model: string;
  /**
   * Images, one entry per domain: [real, synthetic] (domain 0 is the main BN, 1 the auxiliary BN, 2+ aux_bn{d}).
   * An entry is a folder (every image in it) or a folder with the files in it to use (e.g. the kept images of a run).
   */
  domains: Array<string | { folder: string; files: string[] }>;
  /** Output .safetensors; a .json twin records the layers, images and failures. */
  out: string;
  /** Images per inference batch (default 32). Each batch is one domain's, as in the paper's training. */
  batchSize?: number;
  /** Crop side (default: the model's fixed input side, else 224). */
  size?: number;
  /** Shorter side before the centre crop (default round(size / 0.875), 256 for 224). */
  resize?: number;
  /** Per-channel mean and std of the [0, 1] pixels (default ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
  /** What the running statistics are: 'exact' (default: mean and unbiased variance of every value) or 'running' (PyTorch's momentum updates, batch by batch). */
  source?: 'exact' | 'running';
  /** PyTorch BN momentum for source 'running' (default 0.1; null: cumulative average). */
  momentum?: number | null;
  provider?: Provider;
  threads?: number;
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ModelBnStatsResult {
  layers: Array<{ layer: string; tensor: string; channels: number }>;
  /** Images used and failed per domain. */
  images: Array<{ folder: string; used: number; failed: number }>;
  failures: Array<{ domain: number; file: string; reason: string }>;
  files: string[];
}

const check3 = (v: readonly number[] | undefined, name: string, fallback: readonly number[]): number[] => {
  const a = v ?? fallback;
  if (!Array.isArray(a) || a.length !== 3 || !a.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new GenaugError('E_ARGUMENT', `${name} must be three finite numbers (R, G, B), got ${JSON.stringify(v)}`);
  }
  return [...a];
};

/**
 * The torchvision evaluation transform of one image into `out` (3 x size x size, CHW): shorter side to `resize`,
 * centre crop, (v / 255 - mean) / std.
 */
export async function classifierInput(img: RgbImage, size: number, resize: number, mean: readonly number[], std: readonly number[], out: Float32Array, offset = 0): Promise<void> {
  const scale = resize / Math.min(img.width, img.height);
  const w = Math.max(size, Math.round(img.width * scale));
  const h = Math.max(size, Math.round(img.height * scale));
  const r = await resizeRgb(img, w, h);
  const left = Math.floor((w - size) / 2);
  const top = Math.floor((h - size) / 2);
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const m = mean[c] as number;
    const s = std[c] as number;
    for (let y = 0; y < size; y++) {
      const row = ((top + y) * w + left) * 3 + c;
      const o = offset + c * plane + y * size;
      for (let x = 0; x < size; x++) out[o + x] = ((r.data[row + x * 3] as number) / 255 - m) / s;
    }
  }
}

export async function modelBnStats(o: ModelBnStatsOptions): Promise<ModelBnStatsResult> {
  if (!Array.isArray(o.domains) || o.domains.length < 1) throw new GenaugError('E_ARGUMENT', 'domains must list one image folder per domain (real, synthetic)');
  const batchSize = o.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new GenaugError('E_RANGE', `batchSize must be an integer ≥ 1, got ${batchSize}`);
  const mean = check3(o.mean, 'mean', IMAGENET_MEAN);
  const std = check3(o.std, 'std', IMAGENET_STD);
  if (std.some((s) => s === 0)) throw new GenaugError('E_RANGE', `std must not be 0, got ${JSON.stringify(std)}`);
  const source = o.source ?? 'exact';

  // The model: its BN nodes, and a session that returns their inputs.
  const bytes = await readWholeFile(o.model, `model ${o.model}`);
  const graph = readOnnxGraph(bytes, o.model);
  const taps = batchNormTaps(graph);
  if (taps.length === 0) {
    throw new GenaugError(
      'E_MODEL',
      `${o.model} has no BatchNormalization node; an eval-mode torch.onnx export folds BN into the convolutions: export with training=torch.onnx.TrainingMode.PRESERVE (model in train() mode) or do_constant_folding=False`,
      { path: o.model },
    );
  }
  const fromInput = new Set(taps.map((t) => t.tensor).filter((t) => graph.inputs.includes(t)));
  const extra = [...new Set(taps.map((t) => t.tensor))].filter((t) => !graph.outputs.includes(t) && !fromInput.has(t));
  const model = await openSession(o.model, 'classifier', { bytes: withGraphOutputs(bytes, extra), ...(o.provider ? { provider: o.provider } : {}), ...(o.threads ? { threads: o.threads } : {}) });
  const inputName = model.session.inputNames[0];
  if (!inputName) throw new GenaugError('E_MODEL', `${o.model} has no input`, { path: o.model });
  const meta = (model.session as unknown as { inputMetadata?: Array<{ shape?: unknown[] }> }).inputMetadata?.[0];
  const fixed = Array.isArray(meta?.shape) && meta.shape.length === 4 && typeof meta.shape[2] === 'number' && meta.shape[2] === meta.shape[3] ? (meta.shape[2] as number) : undefined;
  const size = o.size ?? fixed ?? 224;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new GenaugError('E_RANGE', `size must be an integer in [1, 4096], got ${size}`);
  const resize = o.resize ?? Math.round(size / 0.875);
  if (!Number.isInteger(resize) || resize < size) throw new GenaugError('E_RANGE', `resize must be an integer ≥ size (${size}), got ${resize}`);
  const fetches = [...new Set(taps.map((t) => t.tensor).filter((t) => !fromInput.has(t)))];

  // The images of each domain.
  const lists: string[][] = [];
  const folders: string[] = [];
  for (const entry of o.domains) {
    const folder = typeof entry === 'string' ? entry : entry?.folder;
    if (typeof folder !== 'string' || (typeof entry !== 'string' && !Array.isArray(entry.files))) {
      throw new GenaugError('E_ARGUMENT', 'each domain is an image folder or { folder, files }');
    }
    const s = await stat(folder).catch(() => undefined);
    if (!s?.isDirectory()) throw new GenaugError('E_IO', `image folder ${folder} does not exist or is not a folder`, { path: folder });
    const files = typeof entry === 'string' ? await listImages(folder) : [...entry.files];
    if (files.length === 0) throw new GenaugError('E_EMPTY', `image folder ${folder} has no images${typeof entry === 'string' ? ' (.png, .jpg, .jpeg, .webp, ...)' : ' in the list given'}`, { path: folder });
    lists.push(files);
    folders.push(folder);
  }
  const total = lists.reduce((a, l) => a + l.length, 0);

  const accs = new Map<string, BnStatsAccumulator>();
  const failures: ModelBnStatsResult['failures'] = [];
  const used = o.domains.map(() => 0);
  let done = 0;
  const plane = 3 * size * size;
  for (let d = 0; d < lists.length; d++) {
    const folder = folders[d] as string;
    const files = lists[d] as string[];
    for (let b0 = 0; b0 < files.length; b0 += batchSize) {
      const chunk = files.slice(b0, b0 + batchSize);
      const input = new Float32Array(chunk.length * plane);
      let n = 0;
      for (const f of chunk) {
        try {
          const path = await checkWithin(folder, f, 'image');
          const img = await readImage(path, { channels: 3, ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}) });
          await classifierInput(img, size, resize, mean, std, input, n * plane);
          n++;
        } catch (e) {
          if (!(e instanceof GenaugError)) throw e;
          failures.push({ domain: d, file: join(folder, f), reason: `[${e.code}] ${e.message}` });
        }
      }
      done += chunk.length;
      if (n > 0) {
        const feeds = { [inputName]: new ort.Tensor('float32', n === chunk.length ? input : input.subarray(0, n * plane), [n, 3, size, size]) };
        const outs = await runSession(model, feeds, fetches);
        const tags = new Int32Array(n).fill(d);
        for (const t of taps) {
          const tensor = fromInput.has(t.tensor) ? feeds[inputName] : outs[t.tensor];
          if (!tensor || tensor.type !== 'float32' || tensor.dims.length < 2) {
            throw new GenaugError('E_MODEL', `${o.model}: the input ${t.tensor} of BatchNormalization ${t.node} is not a float32 N x C x ... tensor`, { path: o.model });
          }
          const dims = tensor.dims.map(Number);
          let acc = accs.get(t.layer);
          if (!acc) accs.set(t.layer, (acc = new BnStatsAccumulator({ channels: dims[1] as number, numDomains: o.domains.length, momentum: o.momentum === undefined ? 0.1 : o.momentum })));
          await acc.update({ data: tensor.data as Float32Array, shape: dims, layout: 'nchw' }, tags);
        }
        used[d] = (used[d] as number) + n;
      }
      o.onProgress?.(done, total);
    }
    if (used[d] === 0) {
      const first = failures.find((f) => f.domain === d);
      throw new GenaugError('E_IO', `no image of ${folder} could be read; first: ${first?.file}: ${first?.reason}`, { path: folder });
    }
  }
  await model.session.release?.();

  const tensors: Record<string, SafeTensor> = {};
  const layers: ModelBnStatsResult['layers'] = [];
  for (const t of taps) {
    const acc = accs.get(t.layer) as BnStatsAccumulator;
    Object.assign(tensors, acc.tensors(t.layer, { source }));
    layers.push({ layer: t.layer, tensor: t.tensor, channels: acc.channels });
  }
  await writeSafetensors(o.out, tensors, { producer: 'genaug bnstats --model', model: o.model, source, size: String(size), resize: String(resize) });
  const images = folders.map((folder, d) => ({ folder, used: used[d] as number, failed: failures.filter((f) => f.domain === d).length }));
  const jsonPath = o.out.replace(/\.safetensors$/, '') + '.json';
  await writeFileAtomic(jsonPath, new TextEncoder().encode(JSON.stringify({ model: o.model, source, size, resize, mean, std, layers, images, failures }, null, 1) + '\n'));
  return { layers, images, failures, files: [o.out, jsonPath] };
}

export type { BnTap };
