import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { annotate } from '../ts/curate/annotate.js';
import { decodeRle } from '../ts/kernels/mask.js';
import { expectCode, expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-annotate-');

/** An RGB image: white, with `paint(x, y)` returning a colour or null for background. */
async function png(path: string, w: number, h: number, paint: (x: number, y: number) => [number, number, number] | null) {
  const data = Buffer.alloc(w * h * 3, 255);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = paint(x, y);
      if (c) data.set(c, (y * w + x) * 3);
    }
  }
  await mkdir(join(path, '..'), { recursive: true });
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

async function makeImages(root: string) {
  // cat/a: a red 50x40 rectangle at (20, 10) with a white 10x10 hole: kept, hole filled.
  await png(join(root, 'cat', 'a.png'), 120, 80, (x, y) =>
    x >= 20 && x < 70 && y >= 10 && y < 50 && !(x >= 35 && x < 45 && y >= 25 && y < 35) ? [220, 30, 30] : null,
  );
  // cat/b: a blue disc on a tall image (non-square).
  await png(join(root, 'cat', 'b.png'), 60, 150, (x, y) => ((x - 30) ** 2 + (y - 70) ** 2 <= 20 ** 2 ? [20, 40, 200] : null));
  // dog/c: a 2x2 dot: below 5 % of the image.
  await png(join(root, 'dog', 'c.png'), 50, 50, (x, y) => (x >= 10 && x < 12 && y >= 10 && y < 12 ? [0, 0, 0] : null));
  // dog/d: nothing at all.
  await png(join(root, 'dog', 'd.png'), 40, 30, () => null);
  // dog/e: not an image.
  await writeFile(join(root, 'dog', 'e.png'), 'definitely not a png');
  // dog/f: fills everything but a one-pixel border: 96 %, above 95 %.
  await png(join(root, 'dog', 'f.png'), 100, 100, (x, y) => (x > 0 && y > 0 && x < 99 && y < 99 ? [10, 200, 10] : null));
}

describe('annotate (corner method)', () => {
  it('cuts instances out, records every rejection and failure, and writes COCO RLE that decodes to the mask', async () => {
    const images = join(tmp.dir(), 'gen');
    await makeImages(images);
    const out = join(tmp.dir(), 'pool');
    const r = await annotate({ images, out, concurrency: 2 });
    expect(r).toEqual({ images: 6, kept: 2, rejected: 3, failed: 1, categories: 1 });

    const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8'));
    expect(coco.categories).toEqual([{ id: 1, name: 'cat', supercategory: 'object' }]);
    const a = coco.annotations[0];
    expect(coco.images[0]).toEqual({ id: 1, file_name: 'cat/a.png', width: 120, height: 80 });
    expect(a.bbox).toEqual([20, 10, 50, 40]);
    expect(a.area).toBe(2000); // the hole is filled
    expect(typeof a.segmentation.counts).toBe('string');
    const mask = await decodeRle(a.segmentation);
    for (let y = 0; y < 80; y++) for (let x = 0; x < 120; x++) expect(mask.data[y * 120 + x]).toBe(x >= 20 && x < 70 && y >= 10 && y < 50 ? 1 : 0);

    // The instance is the tight RGBA crop with alpha = 255 * mask.
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(index.categories.cat.map((e: { source: string }) => e.source)).toEqual(['cat/a.png', 'cat/b.png']);
    const inst = await sharp(join(out, index.categories.cat[0].file)).raw().toBuffer({ resolveWithObject: true });
    expect([inst.info.width, inst.info.height, inst.info.channels]).toEqual([50, 40, 4]);
    expect(inst.data[3]).toBe(255);
    expect([...inst.data.subarray(0, 3)]).toEqual([220, 30, 30]);
    const tall = coco.annotations[1];
    expect(tall.bbox).toEqual([10, 50, 41, 41]); // (x, y) for a non-square image

    const rejected = (await readFile(join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rejected.map((l) => [l.file, l.status])).toEqual([['dog/c.png', 'rejected'], ['dog/d.png', 'rejected'], ['dog/e.png', 'failed'], ['dog/f.png', 'rejected']]);
    expect(rejected[2].reason).toMatch(/E_FORMAT.*e\.png/);
    for (const l of rejected) expect(l.reason.length).toBeGreaterThan(5);

    // The worker pool (used above when dist/ is built) and the main thread give the same pool.
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(__dirname, '..', 'dist', 'workers', 'annotate.js'))).toBe(true);
    const inline = join(tmp.dir(), 'pool-inline');
    await annotate({ images, out: inline, workers: 0 });
    for (const f of ['annotations.json', 'index.json', 'rejected.jsonl']) {
      expect(await readFile(join(inline, f), 'utf8'), f).toBe(await readFile(join(out, f), 'utf8'));
    }
  });

  it('resumes after an interruption and writes the same pool as an uninterrupted run', async () => {
    const images = join(tmp.dir(), 'gen2');
    await makeImages(images);
    const clean = join(tmp.dir(), 'clean');
    await annotate({ images, out: clean, concurrency: 1 });
    const killed = join(tmp.dir(), 'killed');
    let calls = 0;
    await expect(
      annotate({ images, out: killed, concurrency: 1, onProgress: () => { if (++calls === 4) throw new Error('killed'); } }),
    ).rejects.toThrow('killed');
    const partial = (await readFile(join(killed, 'progress.jsonl'), 'utf8')).trim().split('\n');
    expect(partial.length).toBe(3);
    const seen: number[] = [];
    await annotate({ images, out: killed, concurrency: 1, onProgress: (d) => seen.push(d) });
    expect(seen[0]).toBe(3); // started where it stopped
    for (const f of ['annotations.json', 'index.json', 'rejected.jsonl']) {
      expect(await readFile(join(killed, f), 'utf8'), f).toBe(await readFile(join(clean, f), 'utf8'));
    }
    expect((await readFile(join(killed, 'progress.jsonl'), 'utf8')).trim().split('\n').length).toBe(6);
  });

  it('the CLI reports the counts and fails clearly on a missing folder', async () => {
    const images = join(tmp.dir(), 'gen3');
    await makeImages(images);
    const bin = join(__dirname, '..', 'bin', 'genaug.js');
    const run = promisify(execFile);
    const r = await run(process.execPath, [bin, 'annotate', '--images', images, '--out', join(tmp.dir(), 'pool3'), '-q']);
    expect(r.stdout).toMatch(/6 images: 2 instances kept in 1 categories, 3 rejected, 1 failed/);
    const bad = await run(process.execPath, [bin, 'annotate', '--images', join(tmp.dir(), 'nope'), '--out', join(tmp.dir(), 'p4')]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/E_IO/);
  });
});

describe('annotate (SAM-background method)', () => {
  it('keeps to its roots: a link out of the image folder is not listed, a category of "..", "../x" or "a/b" writes inside instances/', async () => {
    const dir = tmp.fresh('roots');
    const rect = (x: number, y: number): [number, number, number] | null => (x >= 10 && x < 40 && y >= 10 && y < 30 ? [200, 20, 20] : null);
    await png(join(dir, 'outside', 'secret.png'), 60, 40, rect);
    for (const f of ['a.png', 'b.png', 'c.png']) await png(join(dir, 'in', f), 60, 40, rect);
    await symlink(join(dir, 'outside', 'secret.png'), join(dir, 'in', 'link.png'));
    await writeFile(join(dir, 'm.jsonl'), [['a.png', '..'], ['b.png', '../../x'], ['c.png', 'a/b'], ['link.png', 'cat']].map(([file, category]) => JSON.stringify({ file, category })).join('\n') + '\n');
    const r = await annotate({ images: join(dir, 'in'), out: join(dir, 'out'), manifest: join(dir, 'm.jsonl'), workers: 0 });
    expect(r.images).toBe(4); // the link is listed, and refused when read
    expect(r.failed).toBe(1);
    const rejected = (await readFile(join(dir, 'out', 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { file: string; reason: string });
    expect(rejected.find((l) => l.file === 'link.png')?.reason).toMatch(/^\[E_IO\] image .*link\.png is a link to .*secret\.png, outside/);
    const all = (await readdir(dir, { recursive: true })).map((f) => String(f)).filter((f) => f.endsWith('.png')).sort();
    expect(all.filter((f) => !f.startsWith('in/') && !f.startsWith('outside/') && !f.startsWith(join('out', 'instances') + '/'))).toEqual([]);
    const index = JSON.parse(await readFile(join(dir, 'out', 'index.json'), 'utf8')) as { categories: Record<string, Array<{ file: string }>> };
    expect(Object.keys(index.categories).sort()).toEqual(['..', '../../x', 'a/b']);
    for (const list of Object.values(index.categories)) for (const e of list) expect(e.file).toMatch(/^instances\/[^/]+\/[^/]+\.png$/);
  });

  it('a batch where every image failed is an error (E_IO naming the reasons file), with the reasons written', async () => {
    const dir = tmp.fresh('all-failed');
    await mkdir(join(dir, 'in', 'cat'), { recursive: true });
    await writeFile(join(dir, 'in', 'cat', 'a.png'), 'not an image');
    await writeFile(join(dir, 'in', 'cat', 'b.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    await expectError(annotate({ images: join(dir, 'in'), out: join(dir, 'out'), method: 'corners', workers: 0 }), 'E_IO', 'every one of the 2 images failed', join(dir, 'out', 'rejected.jsonl'));
    const rejected = (await readFile(join(dir, 'out', 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { status: string });
    expect(rejected.map((r) => r.status)).toEqual(['failed', 'failed']);
  });

  it('inverts the chosen corner background and post-processes it, on a non-square image', async () => {
    const { samDecoder, samEncoder } = await import('./onnx-builder.js');
    const { SamModel } = await import('../ts/models/sam.js');
    const encoder = await samEncoder().write(tmp.fresh('enc.onnx'));
    const decoder = await samDecoder({ radii: [5.5, 10.5, 20.5] }).write(tmp.fresh('dec.onnx'));
    const sam = await SamModel.load({ encoder, decoder });
    const images = join(tmp.dir(), 'gen-sam');
    await png(join(images, 'cup', 'a.png'), 120, 80, (x, y) => (x > 40 && x < 80 ? [1, 2, 3] : null));
    const out = join(tmp.dir(), 'pool-sam');
    const r = await annotate({ images, out, method: 'sam', sam });
    expect(r.kept).toBe(1);
    const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8'));
    // The toy decoder's largest mask covers the pixels within 20 of a corner
    // (in (x, y)); the instance is everything else.
    const mask = await decodeRle(coco.annotations[0].segmentation);
    let area = 0;
    for (let y = 0; y < 80; y++) {
      for (let x = 0; x < 120; x++) {
        const nearCorner = Math.min(x, 119 - x) <= 20 && Math.min(y, 79 - y) <= 20;
        expect(mask.data[y * 120 + x], `${x},${y}`).toBe(nearCorner ? 0 : 1);
        area += nearCorner ? 0 : 1;
      }
    }
    expect(coco.annotations[0].area).toBe(area);
    expect(coco.annotations[0].bbox).toEqual([0, 0, 120, 80]);
    // The same through the worker pool, each worker loading the models from their files.
    const pooled = join(tmp.dir(), 'pool-sam-workers');
    const r2 = await annotate({ images, out: pooled, method: 'sam', models: { samEncoder: encoder, samDecoder: decoder }, workers: 2 });
    expect(r2.kept).toBe(1);
    expect(await readFile(join(pooled, 'annotations.json'), 'utf8')).toBe(await readFile(join(out, 'annotations.json'), 'utf8'));
    // A model that does not load is one typed error from the worker that loads it (and from this thread without a pool),
    // before any image: not a failure of every image.
    const junk = join(tmp.dir(), 'junk.onnx');
    await writeFile(junk, 'not an onnx model');
    for (const workers of [2, 0]) {
      const dest = join(tmp.dir(), `pool-junk-${workers}`);
      await expectCode(annotate({ images, out: dest, method: 'sam', models: { samEncoder: junk, samDecoder: decoder }, workers }), 'E_MODEL', /junk\.onnx/);
      expect(existsSync(join(dest, 'progress.jsonl'))).toBe(false);
    }
  });
});
