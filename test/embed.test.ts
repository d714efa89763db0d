/**
 * Embedding runs (`embedImages`, `embedTexts`, `genaug embed`): rows checked
 * against embeddings computed in the test (features-v1 on pixels decoded
 * here; the tiny CLIP model's weights applied to the tensors Python's
 * preprocessing made), the index against the files' own sha256, failures
 * recorded, resume giving the same bytes, the cache, and the worker pool
 * giving the same rows as the main thread.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { embedImages, embedTexts } from '../ts/curate/embed.js';
import { readNpy } from '../ts/io/npy.js';
import { FeatureEmbedder } from '../ts/models/features.js';
import type { RgbInput } from '../ts/models/types.js';
import { FIXTURE_TOKENIZER, makeImage, refImageEmbedding, refTextEmbedding, tinyClipWeights, writeClipFolder } from './clip-helpers.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-embed-');
const W = tinyClipWeights();
const bin = join(import.meta.dirname, '..', 'bin', 'genaug.js');

async function png(path: string, img: RgbInput): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toFile(path);
}

/** A folder: cat/0..2.png, dog/0..2.png, dog/copy.png (= cat/0.png), bad.png (not an image), notes.txt (ignored). */
async function makeFolder(name: string): Promise<string> {
  const dir = join(tmp.dir(), name);
  for (let i = 0; i < 3; i++) {
    await png(join(dir, 'cat', `${i}.png`), makeImage(30 + i * 7, 24 + i * 5, i + 1));
    await png(join(dir, 'dog', `${i}.png`), makeImage(40 - i * 3, 33 + i, i + 11));
  }
  await png(join(dir, 'dog', 'copy.png'), makeImage(30, 24, 1));
  await writeFile(join(dir, 'bad.png'), 'this is not a png');
  await writeFile(join(dir, 'notes.txt'), 'ignored');
  return dir;
}

async function indexOf(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8');
  return text.trim() ? text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : [];
}

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

const execFileP = promisify(execFile);
/** Runs the built CLI (bin/genaug.js → dist). */
const genaug = async (...args: string[]) => {
  try {
    const r = await execFileP(process.execPath, [bin, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
};

describe('embedImages', () => {
  it('writes rows, index and failures in file order (features-v1), the same from the pool and the main thread', async () => {
    const dir = await makeFolder('feat');
    const out = join(tmp.dir(), 'feat.npy');
    const r = await embedImages({ images: dir, out, embedder: { kind: 'features' }, batchSize: 3, workers: 2 });
    expect(existsSync(join(import.meta.dirname, '..', 'dist', 'workers', 'embed.js'))).toBe(true);
    const files = ['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png', 'dog/2.png', 'dog/copy.png'];
    expect([r.rows, r.images, r.failures, r.dim, r.name]).toEqual([7, 8, 1, 1701, 'features-v1']);
    const npy = await readNpy(out);
    expect([npy.dtype, npy.shape]).toEqual(['float32', [7, 1701]]);
    const index = await indexOf(join(tmp.dir(), 'feat.index.jsonl'));
    expect(index.map((l) => l.file)).toEqual(files);
    expect(index.map((l) => l.row)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const f = new FeatureEmbedder();
    for (const [i, file] of files.entries()) {
      expect(index[i]!.sha256).toBe(await sha(join(dir, file)));
      const { data, info } = await sharp(join(dir, file)).raw().toBuffer({ resolveWithObject: true });
      const want = f.embedOne({ data: new Uint8Array(data), width: info.width, height: info.height });
      expect(Array.from((npy.data as Float32Array).subarray(i * 1701, (i + 1) * 1701)), file).toEqual(Array.from(want));
    }
    const failed = await indexOf(join(tmp.dir(), 'feat.failed.jsonl'));
    expect(failed.map((l) => l.file)).toEqual(['bad.png']);
    expect(String(failed[0]!.reason)).toMatch(/E_FORMAT.*bad\.png/);
    expect(existsSync(`${out}.partial`)).toBe(false);

    const inline = join(tmp.dir(), 'feat-inline.npy');
    await embedImages({ images: dir, out: inline, embedder: { kind: 'features' }, batchSize: 2, workers: 0 });
    expect(Buffer.compare(await readFile(inline), await readFile(out))).toBe(0);
  });

  it('streams rows in order when batches finish out of order (many one-image batches, copies far apart, failures between)', async () => {
    const dir = join(tmp.dir(), 'stream');
    const n = 24;
    for (let i = 0; i < n; i++) await png(join(dir, `i${String(i).padStart(2, '0')}.png`), makeImage(9 + (i % 5) * 7, 11 + (i % 3) * 13, i));
    // i24 is a copy of i00 (last and first), i12 a copy of i05; two undecodable files in between.
    await writeFile(join(dir, 'i24.png'), await readFile(join(dir, 'i00.png')));
    await writeFile(join(dir, 'i12.png'), await readFile(join(dir, 'i05.png')));
    await writeFile(join(dir, 'i07.png'), 'not a png');
    await writeFile(join(dir, 'i19.png'), 'not a png either');
    const pooled = join(tmp.dir(), 'stream-pool.npy');
    const r = await embedImages({ images: dir, out: pooled, embedder: { kind: 'features' }, batchSize: 1, workers: 2 });
    expect([r.rows, r.failures]).toEqual([23, 2]);
    const inline = join(tmp.dir(), 'stream-inline.npy');
    await embedImages({ images: dir, out: inline, embedder: { kind: 'features' }, batchSize: 5, workers: 0 });
    expect(Buffer.compare(await readFile(pooled), await readFile(inline))).toBe(0);
    expect(await readFile(join(tmp.dir(), 'stream-pool.index.jsonl'), 'utf8')).toBe(await readFile(join(tmp.dir(), 'stream-inline.index.jsonl'), 'utf8'));
    const npy = await readNpy(pooled);
    const index = await indexOf(join(tmp.dir(), 'stream-pool.index.jsonl'));
    const rowOf = (file: string) => Array.from((npy.data as Float32Array).subarray((index.find((l) => l.file === file)!.row as number) * 1701, ((index.find((l) => l.file === file)!.row as number) + 1) * 1701));
    expect(rowOf('i24.png')).toEqual(rowOf('i00.png'));
    expect(rowOf('i12.png')).toEqual(rowOf('i05.png'));
    expect((await indexOf(join(tmp.dir(), 'stream-pool.failed.jsonl'))).map((l) => l.file)).toEqual(['i07.png', 'i19.png']);
  });

  it('embeds with a CLIP model as Python preprocessing + the model would, following a manifest with its fields', async () => {
    const model = await writeClipFolder(join(tmp.dir(), 'clip-split'), 'split', W);
    const fx = JSON.parse(await readFile(join(import.meta.dirname, 'fixtures', 'pil-resize.json'), 'utf8')) as {
      pipeline: Array<{ width: number; height: number; seed: number; chw: string }>;
    };
    const dir = join(tmp.dir(), 'fixture-images');
    const lines: string[] = [];
    for (const [i, c] of fx.pipeline.entries()) {
      await png(join(dir, `p${i}.png`), makeImage(c.width, c.height, c.seed));
      lines.push(JSON.stringify({ file: `p${2 - i}.png`, category: `c${i}` }));
    }
    lines.push(JSON.stringify({ file: 'missing.png', category: 'x' }));
    await writeFile(join(dir, 'm.jsonl'), lines.join('\n') + '\n');
    const out = join(tmp.dir(), 'clip.npy');
    const r = await embedImages({ manifest: join(dir, 'm.jsonl'), out, embedder: { kind: 'clip', model }, batchSize: 2, workers: 1 });
    expect([r.rows, r.dim, r.failures]).toEqual([3, 8, 1]);
    const index = await indexOf(join(tmp.dir(), 'clip.index.jsonl'));
    expect(index.map((l) => [l.file, l.category, l.row])).toEqual([
      ['p2.png', 'c0', 0],
      ['p1.png', 'c1', 1],
      ['p0.png', 'c2', 2],
    ]);
    const rows = (await readNpy(out)).data as Float32Array;
    for (let k = 0; k < 3; k++) {
      const b = Buffer.from(fx.pipeline[2 - k]!.chw, 'base64');
      const want = refImageEmbedding(W, new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4));
      for (let j = 0; j < 8; j++) expect(Math.abs(rows[k * 8 + j]! - want[j]!)).toBeLessThan(1e-5);
    }
    const failed = await indexOf(join(tmp.dir(), 'clip.failed.jsonl'));
    expect(failed.map((l) => [l.file, l.category])).toEqual([['missing.png', 'x']]);
    expect(String(failed[0]!.reason)).toMatch(/E_IO.*missing\.png.*does not exist/);
  });

  it('composites RGBA images onto --background (black for DiverGen) before embedding; none keeps the RGB under alpha', async () => {
    // An RGBA instance: an opaque coloured square in the middle, white RGB under alpha 0 around it, a half-alpha ring.
    const Wd = 20;
    const Hd = 16;
    const rgba = new Uint8Array(Wd * Hd * 4);
    for (let y = 0; y < Hd; y++) {
      for (let x = 0; x < Wd; x++) {
        const i = (y * Wd + x) * 4;
        const inner = x >= 6 && x < 14 && y >= 4 && y < 12;
        const ring = !inner && x >= 5 && x < 15 && y >= 3 && y < 13;
        rgba.set(inner || ring ? [30 + x * 5, 200 - y * 7, 90] : [255, 255, 255], i);
        rgba[i + 3] = inner ? 255 : ring ? 127 : 0;
      }
    }
    const dir = join(tmp.dir(), 'rgba');
    await mkdir(dir, { recursive: true });
    await sharp(Buffer.from(rgba), { raw: { width: Wd, height: Hd, channels: 4 } }).png().toFile(join(dir, 'inst.png'));
    await png(join(dir, 'rgb.png'), makeImage(12, 10, 5));
    // Reference composite: round(a·rgb + (1 − a)·bg), a = alpha / 255.
    const onto = (bg: number): RgbInput => {
      const out = new Uint8Array(Wd * Hd * 3);
      for (let p = 0; p < Wd * Hd; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round((rgba[p * 4 + 3]! / 255) * rgba[p * 4 + c]! + (1 - rgba[p * 4 + 3]! / 255) * bg);
      return { data: out, width: Wd, height: Hd };
    };
    const dropAlpha: RgbInput = { data: Uint8Array.from({ length: Wd * Hd * 3 }, (_, k) => rgba[Math.floor(k / 3) * 4 + (k % 3)]!), width: Wd, height: Hd };
    const f = new FeatureEmbedder();
    const { data: rgbPx, info } = await sharp(join(dir, 'rgb.png')).raw().toBuffer({ resolveWithObject: true });
    const rgbRow = Array.from(f.embedOne({ data: new Uint8Array(rgbPx), width: info.width, height: info.height }));
    const rowsOf = async (background: 'none' | 'black' | 'white' | undefined, workers: number) => {
      const out = join(tmp.dir(), `rgba-${background}-${workers}.npy`);
      await embedImages({ images: dir, out, embedder: { kind: 'features' }, workers, ...(background ? { background } : {}) });
      const d = (await readNpy(out)).data as Float32Array;
      return [Array.from(d.subarray(0, 1701)), Array.from(d.subarray(1701, 3402))];
    };
    const black = Array.from(f.embedOne(onto(0)));
    const white = Array.from(f.embedOne(onto(255)));
    expect(black).not.toEqual(Array.from(f.embedOne(dropAlpha)));
    for (const workers of [0, 1]) {
      expect(await rowsOf('black', workers)).toEqual([black, rgbRow]);
      expect(await rowsOf('white', workers)).toEqual([white, rgbRow]);
      expect(await rowsOf(undefined, workers)).toEqual([Array.from(f.embedOne(dropAlpha)), rgbRow]);
    }
    // The CLI flag, and a cache keeps rows of different backgrounds apart.
    const cache = join(tmp.dir(), 'rgba-cache');
    for (const [bg, want] of [['none', f.embedOne(dropAlpha)], ['black', black]] as const) {
      const out = join(tmp.dir(), `rgba-cli-${bg}.npy`);
      const r = await genaug('embed', '--features', '--images', dir, '--out', out, '--background', bg, '--cache', cache, '-q');
      expect(r.code, r.stderr).toBe(0);
      expect(Array.from(((await readNpy(out)).data as Float32Array).subarray(0, 1701))).toEqual(Array.from(want));
    }
    expect((await genaug('embed', '--help')).stdout).toContain('--background');
  });

  it('resumes after an interruption and writes the same bytes', async () => {
    const dir = await makeFolder('resume');
    const model = await writeClipFolder(join(tmp.dir(), 'clip-resume'), 'combined', W);
    const embedder = { kind: 'clip' as const, model };
    const clean = join(tmp.dir(), 'clean.npy');
    await embedImages({ images: dir, out: clean, embedder, batchSize: 2, workers: 0 });
    const killed = join(tmp.dir(), 'killed.npy');
    // 7 distinct contents (dog/copy.png repeats cat/0.png) in batches of 2: done goes 1, 3, 5, 7, 8.
    await expect(
      embedImages({
        images: dir,
        out: killed,
        embedder,
        batchSize: 2,
        workers: 0,
        onProgress: (done) => {
          if (done === 5) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(existsSync(killed)).toBe(false);
    expect(existsSync(`${killed}.partial`)).toBe(true);
    const notes: string[] = [];
    const r = await embedImages({ images: dir, out: killed, embedder, batchSize: 2, workers: 0, onNote: (n) => notes.push(n) });
    expect(r.resumedBatches).toBe(2);
    expect(notes.join(' ')).toMatch(/resuming/);
    expect(Buffer.compare(await readFile(killed), await readFile(clean))).toBe(0);
    expect(await readFile(join(tmp.dir(), 'killed.index.jsonl'), 'utf8')).toBe(await readFile(join(tmp.dir(), 'clean.index.jsonl'), 'utf8'));
  });

  it('reuses cached rows for unchanged content and embeds only new images', async () => {
    const dir = await makeFolder('cache');
    const cache = join(tmp.dir(), 'cache-dir');
    const a = await embedImages({ images: dir, out: join(tmp.dir(), 'c1.npy'), embedder: { kind: 'features' }, cache, workers: 0 });
    expect(a.cached).toBe(0);
    await png(join(dir, 'new', 'n.png'), makeImage(25, 25, 77));
    let embedded = 0;
    const b = await embedImages({
      images: dir,
      out: join(tmp.dir(), 'c2.npy'),
      embedder: { kind: 'features' },
      cache,
      workers: 0,
      onProgress: (done, total) => (embedded = total - done),
    });
    // 6 distinct contents were cached (dog/copy.png = cat/0.png); only n.png is new.
    expect([b.cached, b.rows]).toEqual([6, 8]);
    expect(embedded).toBe(0);
    const r1 = (await readNpy(join(tmp.dir(), 'c1.npy'))).data as Float32Array;
    const r2 = (await readNpy(join(tmp.dir(), 'c2.npy'))).data as Float32Array;
    const i2 = await indexOf(join(tmp.dir(), 'c2.index.jsonl'));
    expect(i2.map((l) => l.file)).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png', 'dog/2.png', 'dog/copy.png', 'new/n.png']);
    expect(Array.from(r2.subarray(0, 7 * 1701))).toEqual(Array.from(r1));
  });
});

describe('embedTexts', () => {
  it('writes one row per line, in order, equal to the reference-id embeddings', async () => {
    const model = await writeClipFolder(join(tmp.dir(), 'clip-text'), 'split', W);
    const refs = JSON.parse(await readFile(join(FIXTURE_TOKENIZER, 'reference-tokenizations.json'), 'utf8')) as Array<{ text: string; ids: number[] }>;
    const usable = refs.filter((r) => !/\n|\t/.test(r.text));
    const path = join(tmp.dir(), 'texts.txt');
    await writeFile(path, usable.map((r) => r.text).join('\r\n') + '\r\n');
    const out = join(tmp.dir(), 'texts.npy');
    const r = await embedTexts({ model, texts: path, out, batchSize: 2, workers: 1 });
    expect([r.rows, r.dim]).toEqual([usable.length, 8]);
    const npy = await readNpy(out);
    expect(npy.shape).toEqual([usable.length, 8]);
    usable.forEach((t, i) => {
      const want = refTextEmbedding(W, t.ids);
      for (let j = 0; j < 8; j++) expect(Math.abs((npy.data as Float32Array)[i * 8 + j]! - want[j]!)).toBeLessThan(1e-5);
    });
  });
});

describe('genaug embed', () => {

  it('embeds a folder, reports a missing model file by name, and explains its options', async () => {
    const dir = await makeFolder('cli');
    const out = join(tmp.dir(), 'cli.npy');
    const ok = await genaug('embed', '--features', '--images', dir, '--out', out, '--workers', '1', '-q');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/7 of 8 images embedded with features-v1 \(1701 wide\).*1 failed/);
    expect((await readNpy(out)).shape).toEqual([7, 1701]);
    const model = await writeClipFolder(join(tmp.dir(), 'clip-cli'), 'split', W);
    await writeFile(join(model, 'vision_model.onnx'), '');
    const { unlink } = await import('node:fs/promises');
    await unlink(join(model, 'vision_model.onnx'));
    const bad = await genaug('embed', '--model', model, '--images', dir, '--out', join(tmp.dir(), 'x.npy'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('genaug: error [E_MODEL]');
    expect(bad.stderr).toContain(join(model, 'vision_model.onnx'));
    const help = await genaug('embed', '--help');
    for (const opt of ['--model', '--features', '--images', '--manifest', '--texts', '--out', '--batch-size', '--workers', '--provider', '--cache']) expect(help.stdout).toContain(opt);
  });

  it('exits 1 after "0 of N images embedded", naming the failures file (a folder or a manifest of images none of which decode)', async () => {
    const dir = join(tmp.dir(), 'none-decode');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.png'), 'not a png');
    await writeFile(join(dir, 'b.jpg'), 'not a jpeg');
    await writeFile(join(dir, 'm.jsonl'), ['a.png', 'b.jpg'].map((file) => JSON.stringify({ file, category: 'x' })).join('\n') + '\n');
    for (const from of [['--images', dir], ['--manifest', join(dir, 'm.jsonl')]]) {
      const out = join(tmp.dir(), `none-${from[0]!.slice(2)}.npy`);
      const r = await genaug('embed', '--features', ...from, '--out', out, '--workers', '0', '-q');
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/0 of 2 images embedded/);
      expect(r.stderr).toMatch(/E_IO.*no images could be embedded; the reasons are in .*none-.*\.failed\.jsonl/);
    }
  });
});
