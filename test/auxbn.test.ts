/**
 * Aux-BN from a model: a tiny ONNX classifier with three BatchNormalization nodes (one on the graph input) built
 * here, real and synthetic image folders, and the statistics genaug exports compared with float64 statistics of the
 * same activations, fetched from a copy of the model that declares them as outputs itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { classifierInput, IMAGENET_MEAN, IMAGENET_STD, modelBnStats } from '../ts/curate/auxbn.js';
import { batchNormTaps, readOnnxGraph, withGraphOutputs } from '../ts/models/onnx-graph.js';
import { expectCode, tempFolder } from './helpers.js';
import { float, GraphBuilder } from './onnx-builder.js';

const tmp = tempFolder('genaug-auxbn-');
const BIN = join(import.meta.dirname, '..', 'bin', 'genaug.js');

/** x -> stem.bn -> conv 1x1 (3 -> 4) -> features.1 (BN) -> relu -> head.bn -> global pool -> logits; `taps` also declares the BN inputs as outputs. */
function classifier(taps = false): GraphBuilder {
  const g = new GraphBuilder('tiny_classifier');
  const x = g.input('x', 'float32', ['N', 3, 'H', 'W']);
  const bn = (input: string, prefix: string, c: number, scale: number[], shift: number[], mean: number[], variance: number[]) =>
    g.node('BatchNormalization', [input, g.constF(scale, [c], `${prefix}.weight`), g.constF(shift, [c], `${prefix}.bias`), g.constF(mean, [c], `${prefix}.running_mean`), g.constF(variance, [c], `${prefix}.running_var`)], { epsilon: float(1e-5) });
  const stem = bn(x, 'stem.bn', 3, [1, 0.5, 2], [0.1, 0, -0.2], [0.2, -0.1, 0], [1, 2, 0.5]);
  const w = [0.5, -0.25, 0.125, 1, 0.5, -0.5, -1, 0.25, 0.75, 0.3, 0.3, 0.3];
  const conv = g.node('Conv', [stem, g.constF(w, [4, 3, 1, 1], 'features.0.weight'), g.constF([0.1, -0.2, 0.05, 0], [4], 'features.0.bias')], {}, 'conv_out');
  const b1 = bn(conv, 'features.1', 4, [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]);
  const relu = g.node('Relu', [b1], {}, 'relu_out');
  const b2 = bn(relu, 'head.bn', 4, [2, 2, 2, 2], [0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.1, 0.1], [1, 1, 1, 1]);
  g.output(g.node('GlobalAveragePool', [b2], {}, 'logits'), 'float32', ['N', 4, 1, 1]);
  if (taps) {
    g.output('conv_out', 'float32', ['N', 4, 'H', 'W']);
    g.output('relu_out', 'float32', ['N', 4, 'H', 'W']);
  }
  return g;
}

/** A w x h image of random noise (so the crop and the resize matter) with a seed. */
async function noise(path: string, w: number, h: number, seed: number): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  let s = seed * 2654435761;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = s >>> 24;
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

/** The float64 per-channel mean and unbiased variance of an N x C x S float32 tensor. */
function stats64(data: Float32Array, n: number, c: number, s: number): { mean: number[]; variance: number[] } {
  const mean: number[] = [];
  const variance: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < s; k++) sum += data[(i * c + ch) * s + k] as number;
    const m = sum / (n * s);
    let ss = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < s; k++) ss += ((data[(i * c + ch) * s + k] as number) - m) ** 2;
    mean.push(m);
    variance.push(ss / (n * s - 1));
  }
  return { mean, variance };
}

/** A safetensors file read by its own rules: 8-byte little-endian header length, JSON header, raw data. */
async function readSafetensorsRaw(path: string): Promise<Map<string, { dtype: string; shape: number[]; values: number[] }>> {
  const buf = await readFile(path);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; values: number[] }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const body = buf.subarray(8 + len + t.data_offsets[0], 8 + len + t.data_offsets[1]);
    const values = t.dtype === 'F32' ? Array.from(new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length))) : Array.from(new BigInt64Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)), Number);
    out.set(name, { dtype: t.dtype, shape: t.shape, values });
  }
  return out;
}

describe('aux-BN statistics from an ONNX classifier', () => {
  it('finds every BatchNormalization node with its state-dict name, and appending outputs leaves the model runnable', async () => {
    const bytes = classifier().toBytes();
    const taps = batchNormTaps(readOnnxGraph(bytes));
    expect(taps.map((t) => [t.layer, t.tensor])).toEqual([['stem.bn', 'x'], ['features.1', 'conv_out'], ['head.bn', 'relu_out']]);
    const tapped = withGraphOutputs(bytes, ['conv_out', 'relu_out']);
    expect(readOnnxGraph(tapped).outputs).toEqual(['logits', 'conv_out', 'relu_out']);
    const session = await ort.InferenceSession.create(tapped);
    expect(session.outputNames).toEqual(['logits', 'conv_out', 'relu_out']);
    await expectCode(() => readOnnxGraph(new Uint8Array([0x3a, 0xff])), 'E_MODEL', /not a valid ONNX model: a varint runs past the end/);
    await expectCode(() => readOnnxGraph(new Uint8Array([0x08, 0x08])), 'E_MODEL', /it has no graph/);
  });

  it('writes main and aux statistics of every BN layer equal to float64 statistics of the same activations', async () => {
    const dir = tmp.fresh('stats');
    const real = join(dir, 'real');
    const synthetic = join(dir, 'synthetic');
    await mkdir(real, { recursive: true });
    await mkdir(synthetic, { recursive: true });
    const sizes = [[40, 30], [30, 50], [24, 24], [64, 20], [33, 41]];
    for (const [i, [w, h]] of sizes.entries()) await noise(join(real, `r${i}.png`), w as number, h as number, i + 1);
    for (let i = 0; i < 3; i++) await noise(join(synthetic, `s${i}.png`), 36 + i * 7, 28, 100 + i);
    await writeFile(join(synthetic, 'broken.png'), 'not an image');
    const model = await classifier().write(join(dir, 'model.onnx'));
    const out = join(dir, 'auxbn.safetensors');
    const r = await modelBnStats({ model, domains: [real, synthetic], out, batchSize: 2, size: 16, resize: 18 });
    expect(r.images).toEqual([{ folder: real, used: 5, failed: 0 }, { folder: synthetic, used: 3, failed: 1 }]);
    expect(r.failures[0]).toMatchObject({ domain: 1, file: join(synthetic, 'broken.png') });

    // The oracle: the same inputs (the torchvision transform, checked on its own below) through a model that
    // declares the BN inputs as its own outputs; float64 statistics per domain.
    const oracle = await ort.InferenceSession.create(classifier(true).toBytes());
    const tensor = async (folder: string, files: string[]) => {
      const plane = 3 * 16 * 16;
      const input = new Float32Array(files.length * plane);
      for (const [i, f] of files.entries()) {
        const { data, info } = await sharp(join(folder, f)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        await classifierInput({ data: new Uint8Array(data), width: info.width, height: info.height }, 16, 18, IMAGENET_MEAN, IMAGENET_STD, input, i * plane);
      }
      const o = await oracle.run({ x: new ort.Tensor('float32', input, [files.length, 3, 16, 16]) });
      return { x: input, conv: o.conv_out!.data as Float32Array, relu: o.relu_out!.data as Float32Array, n: files.length };
    };
    const domains = [await tensor(real, sizes.map((_, i) => `r${i}.png`)), await tensor(synthetic, ['s0.png', 's1.png', 's2.png'])];
    const st = await readSafetensorsRaw(out);
    const layers: Array<[string, 'x' | 'conv' | 'relu', number]> = [['stem.bn', 'x', 3], ['features.1', 'conv', 4], ['head.bn', 'relu', 4]];
    const names: string[] = [];
    for (const [layer, key, c] of layers) {
      for (const [d, prefix] of [[0, layer], [1, `${layer}.aux_bn`]] as const) {
        const want = stats64(domains[d]![key], domains[d]!.n, c, 256);
        const mean = st.get(`${prefix}.running_mean`)!;
        const variance = st.get(`${prefix}.running_var`)!;
        expect(mean).toMatchObject({ dtype: 'F32', shape: [c] });
        for (let ch = 0; ch < c; ch++) {
          expect(Math.abs((mean.values[ch] as number) - (want.mean[ch] as number))).toBeLessThanOrEqual(1e-6 * Math.max(1e-3, Math.abs(want.mean[ch] as number)));
          expect(Math.abs((variance.values[ch] as number) - (want.variance[ch] as number))).toBeLessThanOrEqual(1e-6 * Math.abs(want.variance[ch] as number));
        }
        // Batches of 2: 5 real images are 3 batches, 3 readable synthetic ones 2.
        expect(st.get(`${prefix}.num_batches_tracked`)).toEqual({ dtype: 'I64', shape: [], values: [d === 0 ? 3 : 2] });
        names.push(`${prefix}.num_batches_tracked`, `${prefix}.running_mean`, `${prefix}.running_var`);
      }
    }
    // Exactly the names a torchvision-style state dict has for these BN modules (and their aux twins).
    expect([...st.keys()].sort()).toEqual(names.sort());
    const twin = JSON.parse(await readFile(join(dir, 'auxbn.json'), 'utf8'));
    expect(twin.layers).toEqual([{ layer: 'stem.bn', tensor: 'x', channels: 3 }, { layer: 'features.1', tensor: 'conv_out', channels: 4 }, { layer: 'head.bn', tensor: 'relu_out', channels: 4 }]);
  });

  it('preprocesses as torchvision evaluation does: shorter side resized, centre crop, normalised', async () => {
    // A 4 x 2 image whose left and right halves differ; resize 2 (shorter side) keeps it 4 x 2, the 2 x 2 crop is the middle.
    const px = new Uint8Array([0, 0, 0, 255, 255, 255, 10, 20, 30, 255, 255, 255, 0, 0, 0, 255, 255, 255, 10, 20, 30, 255, 255, 255]);
    const out = new Float32Array(12);
    await classifierInput({ data: px, width: 4, height: 2 }, 2, 2, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], out);
    // Columns 1 and 2 of both rows: (255, 255, 255) then (10, 20, 30).
    const v = (x: number) => Math.fround((x / 255 - 0.5) / 0.25);
    expect(Array.from(out)).toEqual([v(255), v(10), v(255), v(10), v(255), v(20), v(255), v(20), v(255), v(30), v(255), v(30)]);
  });

  it('genaug bnstats --model writes the file, and refuses a model without BN and a missing folder', async () => {
    const dir = tmp.fresh('cli');
    const real = join(dir, 'real');
    const synthetic = join(dir, 'syn');
    await mkdir(real, { recursive: true });
    await mkdir(synthetic, { recursive: true });
    await noise(join(real, 'a.png'), 20, 20, 1);
    await noise(join(synthetic, 'b.png'), 20, 20, 2);
    const model = await classifier().write(join(dir, 'm.onnx'));
    const ok = spawnSync(process.execPath, [BIN, 'bnstats', '--model', model, '--real', real, '--synthetic', synthetic, '--size', '8', '--out', join(dir, 'bn.safetensors'), '-q'], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('3 BatchNorm layers: stem.bn (3), features.1 (4), head.bn (4)');
    expect((await readSafetensorsRaw(join(dir, 'bn.safetensors'))).has('head.bn.aux_bn.running_var')).toBe(true);

    const g = new GraphBuilder('no_bn');
    g.output(g.node('Relu', [g.input('x', 'float32', ['N', 3, 8, 8])], {}, 'y'), 'float32', ['N', 3, 8, 8]);
    const plain = await g.write(join(dir, 'plain.onnx'));
    const noBn = spawnSync(process.execPath, [BIN, 'bnstats', '--model', plain, '--real', real, '--synthetic', synthetic, '--out', join(dir, 'x.safetensors')], { encoding: 'utf8' });
    expect(noBn.status).toBe(1);
    expect(noBn.stderr).toMatch(/\[E_MODEL\]: .*has no BatchNormalization node; .*TrainingMode\.PRESERVE/);
    const missing = spawnSync(process.execPath, [BIN, 'bnstats', '--model', model, '--real', join(dir, 'nope'), '--synthetic', synthetic, '--out', join(dir, 'y.safetensors')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/\[E_IO\]: image folder .*nope does not exist/);
    const both = spawnSync(process.execPath, [BIN, 'bnstats', '--model', model, '--activations', 'a.npy', '--out', join(dir, 'z.safetensors')], { encoding: 'utf8' });
    expect(both.status).toBe(2); // a usage error
    expect(both.stderr).toMatch(/\[E_ARGUMENT\]: give either --activations/);
  });
});
