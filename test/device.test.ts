// --device auto|cpu|cuda. Without a usable CUDA device (CI): 'auto' is the CPU
// path byte for byte, 'cuda' fails with E_CUDA_UNAVAILABLE naming why (library
// and CLI). With one (npm run test:gpu runs this file on a GPU machine): the
// CUDA path returns the CPU path's indices exactly and its scores within 1e-5
// (rowDot: the same bytes), on odd shapes and with the database and the query
// set streamed through a small device budget.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeNpy } from '../ts/io/npy.js';
import { paste } from '../ts/augment/paste.js';
import { bnStats } from '../ts/kernels/bnstats.js';
import { compositeBatch, compositeBatchSync, type CompositeOptions, type CompositeResult, type CompositeScene } from '../ts/kernels/composite.js';
import { classMax, classMean, pairs, rowDot, topk } from '../ts/kernels/similarity.js';
import { providerForDevice, providerStatus } from '../ts/models/onnx.js';
import { checkDevice, cudaUnavailableReason, resolveDevice } from '../ts/native/device.js';
import { capabilities } from '../ts/native/load.js';
import { expectCode, randomMatrix } from './helpers.js';
import { buildPasteFixture, fixtureOptions } from './paste-fixture.js';

const run = promisify(execFile);
const bin = join(__dirname, '..', 'bin', 'genaug.js');
const cuda = capabilities().cuda;

async function genaug(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function expectClose(a: Float32Array, b: Float32Array, tol: number) {
  expect(a.length).toBe(b.length);
  for (let x = 0; x < a.length; x++) {
    const u = a[x] as number;
    const v = b[x] as number;
    if (Number.isNaN(v)) expect(Number.isNaN(u)).toBe(true);
    else expect(Math.abs(u - v)).toBeLessThanOrEqual(tol);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genaug-device-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('device names', () => {
  it('checks names and resolves cpu without asking the addon', () => {
    expect(checkDevice('auto')).toBe('auto');
    expect(() => checkDevice('gpu')).toThrow(/must be 'auto', 'cpu' or 'cuda'/);
    expect(resolveDevice(undefined)).toBe('cpu');
    expect(resolveDevice('cpu')).toBe('cpu');
    expect(resolveDevice('auto')).toBe(cuda.usable ? 'cuda' : 'cpu');
    if (cuda.usable) expect(resolveDevice('cuda')).toBe('cuda');
    else expect(() => resolveDevice('cuda')).toThrow(cuda.reason as string);
  });

  it('capabilities say whether CUDA is built and usable, and which kernels exist', () => {
    expect(typeof cuda.built).toBe('boolean');
    expect(Array.isArray(cuda.kernels)).toBe(true);
    if (cuda.built) expect(cuda.kernels).toEqual(expect.arrayContaining(['similarity.topk', 'similarity.topk.bf16', 'similarity.classMax', 'similarity.classMean', 'similarity.pairs', 'similarity.pairs.bf16', 'similarity.rowDot', 'composite.batch']));
    else expect(cuda.kernels).toEqual([]);
    if (cuda.usable) {
      expect(cuda.device?.totalBytes).toBeGreaterThan(0);
      expect(cuda.device?.name.length).toBeGreaterThan(0);
      expect(cudaUnavailableReason()).toBeUndefined();
    } else {
      expect(cuda.device).toBeUndefined();
      // The reason names the cause: not built, or no device / the driver's error.
      expect(cuda.reason).toMatch(cuda.built ? /CUDA device|driver|CUDA/ : /built without CUDA/);
    }
  });

  it('maps --device onto the onnxruntime provider, keeping --provider as the older name', () => {
    expect(providerForDevice(undefined, undefined)).toBe('cpu');
    expect(providerForDevice(undefined, 'cuda')).toBe('cuda');
    expect(providerForDevice('cpu', 'cpu')).toBe('cpu');
    expect(providerForDevice('cuda', undefined)).toBe('cuda');
    expect(providerForDevice('auto', undefined)).toBe(providerStatus('cuda').usable ? 'cuda' : 'cpu');
    expect(() => providerForDevice('cuda', 'cpu')).toThrow(/disagree/);
    expect(() => providerForDevice('tpu' as 'cpu', undefined)).toThrow(/must be 'auto', 'cpu' or 'cuda'/);
  });
});

describe('bnstats on --device', () => {
  // Odd shapes: channels not a multiple of 16, positions past one block, an empty domain.
  const n = 3;
  const c = 19;
  const s = 70;
  const data = new Float32Array(n * c * s).map((_, i) => 500 + Math.sin(i * 0.37) * 3);
  const domains = Int32Array.from([0, 2, 0]);

  it("gives the CPU path's bytes on CUDA, for both layouts, or fails with E_CUDA_UNAVAILABLE naming why; auto falls back silently", async () => {
    for (const layout of ['nchw', 'nhwc'] as const) {
      const acts = { data, shape: [n, c, s], layout };
      const cpu = await bnStats(acts, { domains, numDomains: 3 });
      const auto = await bnStats(acts, { domains, numDomains: 3, device: 'auto', deviceBytes: 40_000 });
      for (const key of ['count', 'mean', 'm2', 'min', 'max', 'nonfinite'] as const) expect(bytes(auto[key]).equals(bytes(cpu[key]))).toBe(true);
      if (!cuda.usable) {
        await expectCode(bnStats(acts, { domains, numDomains: 3, device: 'cuda' }), 'E_CUDA_UNAVAILABLE');
        continue;
      }
      const gpu = await bnStats(acts, { domains, numDomains: 3, device: 'cuda', deviceBytes: 12_000 });
      for (const key of ['count', 'mean', 'm2', 'min', 'max', 'nonfinite'] as const) expect(bytes(gpu[key]).equals(bytes(cpu[key]))).toBe(true);
    }
  });
});

describe('similarity on --device', () => {
  // Odd shapes: n not a multiple of the tile or a block, k > n, one query row, an empty class.
  const q = randomMatrix(37, 19, 1);
  const d = randomMatrix(205, 19, 2);
  const one = randomMatrix(1, 19, 3);
  const labels = new Int32Array(205).map((_, i) => ((i * 7) % 5 === 3 ? 0 : (i * 7) % 5));

  it("'auto' is the CPU path's bytes without a usable device, and its results contract with one", async () => {
    for (const [query, k] of [[q, 5], [q, 300], [one, 7]] as const) {
      const cpu = await topk(query, d, k);
      const auto = await topk(query, d, k, { device: 'auto', deviceBytes: 40_000 });
      expect(auto.indices).toEqual(cpu.indices);
      if (cuda.usable) expectClose(auto.scores, cpu.scores, 1e-5);
      else expect(bytes(auto.scores).equals(bytes(cpu.scores))).toBe(true);
    }
  });

  it("'cuda' fails with E_CUDA_UNAVAILABLE naming why, or matches the CPU path on every operation", async () => {
    const opt = { device: 'cuda' as const, deviceBytes: 30_000 };
    if (!cuda.usable) {
      await expectCode(topk(q, d, 3, opt), 'E_CUDA_UNAVAILABLE', new RegExp((cuda.reason as string).slice(0, 30).replace(/[()]/g, '.')));
      await expectCode(classMax(q, d, labels, opt), 'E_CUDA_UNAVAILABLE');
      await expectCode(rowDot(q, q, opt), 'E_CUDA_UNAVAILABLE');
      return;
    }
    for (const k of [1, 10, 40, 300]) {
      const a = await topk(q, d, k, opt);
      const b = await topk(q, d, k);
      expect(a.indices).toEqual(b.indices);
      expectClose(a.scores, b.scores, 1e-5);
    }
    for (const f of [classMax, classMean]) {
      const a = await f(q, d, labels, { ...opt, numClasses: 6 });
      const b = await f(q, d, labels, { numClasses: 6 });
      expect(a.counts).toEqual(b.counts);
      expectClose(a.values, b.values, 1e-5);
    }
    const pa = await pairs(d, undefined, { ...opt, threshold: 0.5 });
    const pb = await pairs(d, undefined, { threshold: 0.5 });
    expect(pa.i).toEqual(pb.i);
    expect(pa.j).toEqual(pb.j);
    expectClose(pa.scores, pb.scores, 1e-5);
    const ra = await rowDot(q, randomMatrix(37, 19, 9), opt);
    const rb = await rowDot(q, randomMatrix(37, 19, 9));
    expect(bytes(ra).equals(bytes(rb))).toBe(true);
  });

  it("precision 'bf16' on 'cuda' (top-k, pairs) fails with E_CUDA_UNAVAILABLE, or is the CUDA exact path's bytes and the CPU's indices", async () => {
    const opt = { device: 'cuda' as const, deviceBytes: 30_000, precision: 'bf16' as const };
    if (!cuda.usable) {
      await expectCode(topk(q, d, 3, opt), 'E_CUDA_UNAVAILABLE');
      await expectCode(pairs(d, undefined, { ...opt, threshold: 0.5 }), 'E_CUDA_UNAVAILABLE');
      return;
    }
    // Near-duplicate database rows (cosines closer than bf16 can tell apart) besides random ones.
    const near = randomMatrix(205, 19, 2);
    for (let r = 0; r < 205; r++) for (let c = 0; c < 19; c++) near.data[r * 19 + c] = (q.data[(r % 37) * 19 + c] as number) * (1 + ((r * 19 + c) % 7) * 1e-7);
    for (const db of [d, near]) {
      for (const [query, k] of [[q, 1], [q, 10], [q, 300], [one, 7]] as const) {
        const a = await topk(query, db, k, opt);
        const b = await topk(query, db, k, { device: 'cuda', deviceBytes: 30_000 });
        const c = await topk(query, db, k);
        expect(a.indices).toEqual(b.indices);
        expect(bytes(a.scores).equals(bytes(b.scores))).toBe(true);
        expect(a.indices).toEqual(c.indices);
      }
      // Pairs through the screen: the CUDA exact pairs' bytes, the CPU's pairs.
      const pa = await pairs(db, undefined, { ...opt, threshold: 0.5 });
      const pb = await pairs(db, undefined, { device: 'cuda', deviceBytes: 30_000, threshold: 0.5 });
      const pc = await pairs(db, undefined, { threshold: 0.5 });
      expect(pa.i).toEqual(pb.i);
      expect(pa.j).toEqual(pb.j);
      expect(bytes(pa.scores).equals(bytes(pb.scores))).toBe(true);
      expect(pa.j).toEqual(pc.j);
    }
  });

  it('rejects a bad device or budget before any work', async () => {
    await expectCode(topk(q, d, 3, { device: 'gpu' as 'cpu' }), 'E_RANGE');
    await expectCode(topk(q, d, 3, { deviceBytes: 0 }), 'E_RANGE');
  });

  it('genaug similarity topk --device: auto writes the CPU bytes without a device; cuda fails with E_CUDA_UNAVAILABLE or agrees', async () => {
    await writeNpy(join(dir, 'q.npy'), q.data, [q.rows, q.dim]);
    await writeNpy(join(dir, 'd.npy'), d.data, [d.rows, d.dim]);
    const args = ['similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, 'd.npy'), '--k', '4', '-q'];
    const c = await genaug(...args, '--out', join(dir, 'cpu'));
    expect(c.code, c.stderr).toBe(0);
    const a = await genaug(...args, '--out', join(dir, 'auto'), '--device', 'auto');
    expect(a.code, a.stderr).toBe(0);
    const ci = await readFile(join(dir, 'cpu.indices.npy'));
    expect((await readFile(join(dir, 'auto.indices.npy'))).equals(ci)).toBe(true);
    if (!cuda.usable) expect((await readFile(join(dir, 'auto.scores.npy'))).equals(await readFile(join(dir, 'cpu.scores.npy')))).toBe(true);
    const g = await genaug(...args, '--out', join(dir, 'gpu'), '--device', 'cuda');
    if (cuda.usable) {
      expect(g.code, g.stderr).toBe(0);
      expect((await readFile(join(dir, 'gpu.indices.npy'))).equals(ci)).toBe(true);
    } else {
      expect(g.code).toBe(1);
      expect(g.stderr).toMatch(/E_CUDA_UNAVAILABLE/);
      expect(g.stderr).toContain((cuda.reason as string).slice(0, 40));
    }
    const bad = await genaug(...args, '--out', join(dir, 'bad'), '--device', 'tpu');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/E_ARGUMENT.*--device/);
  });

  it('genaug info lists the CUDA build, its kernels and the device or why there is none', async () => {
    const r = await genaug('info');
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { cuda: typeof cuda; onnxruntimeCuda: { usable: boolean; reason: string } };
    expect(info.cuda.built).toBe(cuda.built);
    expect(info.cuda.kernels).toEqual(cuda.kernels);
    expect(info.cuda.usable).toBe(cuda.usable);
    if (!cuda.usable) expect(info.cuda.reason).toBe(cuda.reason);
    expect(info.onnxruntimeCuda.usable).toBe(providerStatus('cuda').usable);
  });
});

describe('compositing on --device', () => {
  // Odd shapes: instances clipped at every border, 1 x 1 crops and targets, flips, scale up and down,
  // soft alpha, real masks and a box-only scene.
  function crop(w: number, h: number, seed: number): Uint8Array {
    const c = new Uint8Array(w * h * 4);
    for (let i = 0; i < c.length; i++) c[i] = (i * 37 + seed * 101 + ((i * i) >> 3)) & 255;
    for (let i = 3; i < c.length; i += 4) c[i] = (i >> 2) % 5 === 0 ? 0 : (i >> 2) % 5 === 1 ? 90 : 255;
    return c;
  }
  function scenes(): CompositeScene[] {
    const out: CompositeScene[] = [];
    for (const [w, h] of [[13, 9], [1, 1], [7, 16]] as const) {
      const image = new Uint8Array(w * h * 3).map((_, i) => (i * 7) & 255);
      const m0 = new Uint8Array(w * h).map((_, i) => (i % w < w / 2 ? 1 : 0));
      const m1 = new Uint8Array(w * h).map((_, i) => (Math.floor(i / w) > h / 3 ? 3 : 0));
      const instances = [
        [5, 4, 9, 7, 0, 0, false], [3, 3, 6, 5, w, h, true], [1, 1, 1, 1, w / 2, h / 2, false], [6, 5, 2, 3, -1, h - 1, true],
        [4, 6, 20, 12, w - 2, 1.5, false], [2, 2, 3, 3, w / 2 + 0.3, h / 2 - 0.7, true], [3, 2, 0, 4, 2, 2, false],
      ].map(([cw, ch, tw, th, cx, cy, flip], k) => ({
        rgba: crop(cw as number, ch as number, k), width: cw as number, height: ch as number,
        targetWidth: tw as number, targetHeight: th as number, cx: cx as number, cy: cy as number, flip: flip as boolean,
      }));
      out.push({ image: { data: image, width: w, height: h }, masks: [m0, m1], instances });
      out.push({ image: { data: image, width: w, height: h }, boxes: [[-1, 0.4, w / 2, h], [2, 2, 3.6, 2.2]], instances: instances.slice(2) });
    }
    return out;
  }
  function expectSame(a: CompositeResult[], b: CompositeResult[]) {
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => {
      const y = b[i] as CompositeResult;
      expect(bytes(x.image).equals(bytes(y.image))).toBe(true);
      expect(x.dropped).toEqual(y.dropped);
      expect(x.instances.map((k) => [k.source, k.index, k.bbox, k.area])).toEqual(y.instances.map((k) => [k.source, k.index, k.bbox, k.area]));
      x.instances.forEach((k, j) => expect(bytes(k.mask).equals(bytes((y.instances[j] as CompositeResult['instances'][number]).mask))).toBe(true));
    });
  }
  const optionSets: CompositeOptions[] = [
    { blend: 'basic', keepMinArea: 3, keepMaxShift: 1 },
    { blend: 'alpha', maskThreshold: 128, keepMinArea: 5 },
    { blend: 'gaussian', sigma: 0.8, maskFormat: 'box', threads: 2 },
  ];

  it("'auto' is the CPU path's bytes; 'cuda' fails with E_CUDA_UNAVAILABLE naming why, or gives the CPU path's bytes", async () => {
    for (const o of optionSets) {
      const cpu = await compositeBatch(scenes(), o);
      expect(cpu.some((r) => r.dropped.length > 0) && cpu.some((r) => r.instances.length > 0)).toBe(true);
      expectSame(await compositeBatch(scenes(), { ...o, device: 'auto', deviceBytes: 3000 }), cpu);
      expectSame(compositeBatchSync(scenes(), { ...o, device: 'auto' }), cpu);
      if (!cuda.usable) {
        await expectCode(compositeBatch(scenes(), { ...o, device: 'cuda' }), 'E_CUDA_UNAVAILABLE');
        expect(() => compositeBatchSync(scenes(), { ...o, device: 'cuda' })).toThrow(cuda.reason as string);
        continue;
      }
      expectSame(await compositeBatch(scenes(), { ...o, device: 'cuda' }), cpu);
      expectSame(compositeBatchSync(scenes(), { ...o, device: 'cuda', deviceBytes: 3000 }), cpu);  // several batches
    }
  });

  it('rejects a bad device or budget before any work', async () => {
    expect(() => compositeBatchSync(scenes(), { device: 'gpu' as never })).toThrow(/options.device must be 'auto', 'cpu' or 'cuda'/);
    await expectCode(compositeBatch(scenes(), { device: 'auto', deviceBytes: 0 }), 'E_RANGE');
    await expectCode(compositeBatch(scenes(), { deviceBytes: 1.5 }), 'E_RANGE');
  });

  it("genaug paste --device: auto writes the CPU path's files; cuda fails with E_CUDA_UNAVAILABLE or writes the same files", async () => {
    const fx = await buildPasteFixture(join(dir, 'paste-fx'));
    const files = async (out: string) => {
      const names = (await readdir(join(out, 'images'))).sort();
      return { names, data: await Promise.all(names.map((n) => readFile(join(out, 'images', n)))), coco: JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as unknown };
    };
    const cpuOut = join(dir, 'paste-cpu');
    await paste(fixtureOptions(fx, cpuOut, { copies: 1, imageFormat: 'png', blend: 'gaussian' }));
    const cpu = await files(cpuOut);
    expect(cpu.names.length).toBeGreaterThan(0);
    const args = (out: string, device: string) => ['paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', out, '--seed', '3', '--copies', '1', '--workers', '0', '--image-format', 'png', '--blend', 'gaussian', '--device', device, '-q'];
    const auto = await genaug(...args(join(dir, 'paste-auto'), 'auto'));
    expect(auto.code, auto.stderr).toBe(0);
    expect(await files(join(dir, 'paste-auto'))).toEqual(cpu);
    const g = await genaug(...args(join(dir, 'paste-cuda'), 'cuda'));
    if (cuda.usable) {
      expect(g.code, g.stderr).toBe(0);
      expect(await files(join(dir, 'paste-cuda'))).toEqual(cpu);
    } else {
      expect(g.code).not.toBe(0);
      expect(g.stderr).toMatch(/E_CUDA_UNAVAILABLE/);
      expect(g.stderr).toContain((cuda.reason as string).slice(0, 40));
      await expectCode(paste(fixtureOptions(fx, join(dir, 'paste-lib'), { copies: 1, device: 'cuda' })), 'E_CUDA_UNAVAILABLE');
    }
    const bad = await genaug(...args(join(dir, 'paste-bad'), 'tpu'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/E_ARGUMENT.*--device/);
  });
});
