import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { maskToPolygon, traceBoundaries } from '../ts/augment/contour.js';
import { CropCache, LruCache, readInstancePool } from '../ts/augment/pool.js';
import { imageKeys, paste, planItem, preparePaste, renderItem, type PasteOptions } from '../ts/augment/paste.js';
import { readCoco } from '../ts/io/coco.js';
import { indexShards, readShardMember, ShardWriter, tarHeader } from '../ts/io/webdataset.js';
import { decodeRleSync, fillHolesSync, largestComponentSync, rleArea } from '../ts/kernels/mask.js';
import { seededRandom } from '../ts/util/random.js';
import { expectCode, expectSameTree, tempFolder, tree } from './helpers.js';
import { buildPasteFixture, ellipseCrop, type PasteFixture, fixtureOptions } from './paste-fixture.js';

const tmp = tempFolder('genaug-paste-');
let fx: PasteFixture;

beforeAll(async () => {
  fx = await buildPasteFixture(join(tmp.dir(), 'fx'));
});

const base = (out: string, extra: Partial<PasteOptions> = {}): PasteOptions => fixtureOptions(fx, out, extra);

function tightBox(m: Uint8Array, w: number, h: number): [number, number, number, number] {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (m[y * w + x]) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

describe('genaug paste: COCO', () => {
  it('an export where every item failed is E_EMPTY, not an empty dataset with exit 0; the reasons stay in log.jsonl', async () => {
    const out = tmp.fresh('all-failed');
    const none = tmp.fresh('no-images');
    await mkdir(none, { recursive: true });
    await expectCode(paste(base(out, { images: none, copies: 1 })), 'E_EMPTY', /every one of the 4 items failed \(first: .*\); the reasons are in .*log\.jsonl/);
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { kind?: string });
    expect(log.filter((l) => l.kind === 'image-failed')).toHaveLength(4);
  });

  it('round-trips: readCoco reads it, RLEs decode to the compositor masks, boxes and areas match the masks', async () => {
    const out = tmp.fresh('coco');
    const r = await paste(base(out));
    expect(r).toMatchObject({ items: 12, ok: 9, failed: 3 });
    const back = await readCoco(join(out, 'annotations.json'));
    expect(back.problems).toEqual([]);
    expect(back.dataset.images.length).toBe(9);
    expect(back.dataset.categories.map((c) => c.id)).toEqual([1, 3, 5]);
    const real = await readCoco(fx.coco);
    // Re-render each item in-process (same seed, same plan) and compare the masks.
    const ctx = await preparePaste(base(out));
    const cache = new CropCache();
    let pasted = 0;
    for (const im of back.dataset.images) {
      const anns = back.annotationsByImage.get(im.id) ?? [];
      const srcIndex = real.dataset.images.findIndex((x) => x.id === im.source_image_id);
      const plan = planItem(ctx, srcIndex, im.copy as number, { raw: true }, { rle: false, bitmap: true, polygon: false });
      const rendered = await renderItem(plan.task, cache);
      expect(rendered.ok).toBe(true);
      expect(anns.length).toBe(rendered.instances.length);
      const decoded = sharp(join(out, 'images', im.file_name));
      expect(await decoded.metadata()).toMatchObject({ width: im.width, height: im.height, format: 'jpeg' });
      anns.forEach((a, k) => {
        const inst = rendered.instances[k]!;
        expect(a.instance_source).toBe(inst.source);
        expect(a.bbox).toEqual(tightBox(inst.mask!, im.width, im.height));
        expect(a.area).toBe(inst.mask!.reduce((s, v) => s + v, 0));
        expect(a.area).toBeGreaterThan(0);
        if (inst.source === 'pasted') pasted++;
        if (im.box_only && inst.source === 'real') {
          expect(a.segmentation).toBeUndefined();
          return;
        }
        const seg = a.segmentation as { size: [number, number]; counts: string };
        expect(typeof seg.counts).toBe('string');
        expect(seg.size).toEqual([im.height, im.width]);
        expect(Buffer.compare(Buffer.from(decodeRleSync(seg).data), Buffer.from(inst.mask!))).toBe(0);
        expect(rleArea(seg)).toBe(a.area);
        if (inst.source === 'real') {
          const orig = real.dataset.annotations.find((x) => x.id === a.source_annotation_id)!;
          expect(a.category_id).toBe(orig.category_id);
          expect(a.iscrowd).toBe(orig.iscrowd);
        } else {
          expect(a.iscrowd).toBe(0);
          expect([3, 5]).toContain(a.category_id);  // dog, sea_lion: the non-empty, known pool categories
        }
      });
    }
    expect(pasted).toBeGreaterThan(10);
    // c.png has boxes only: its outputs say so.
    const cImages = back.dataset.images.filter((im) => im.source_image_id === 13);
    expect(cImages.length).toBe(3);
    for (const im of cImages) expect(im.box_only).toBe(true);
    expect(back.dataset.images.filter((im) => im.source_image_id !== 13).every((im) => im.box_only === false)).toBe(true);
    // The crowd annotation of b.png stays crowd where it survives.
    const crowd = back.dataset.annotations.filter((a) => a.source_annotation_id === 4);
    for (const a of crowd) expect(a.iscrowd).toBe(1);
  });

  it('records bad inputs in log.jsonl and goes on', async () => {
    const out = tmp.fresh('log');
    await paste(base(out));
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const kinds = new Set(log.map((l) => l.kind));
    expect(log.find((l) => l.kind === 'dangling-image')).toMatchObject({ stage: 'coco', where: 'annotations[6]' });
    expect(log.find((l) => l.kind === 'unknown-category')).toMatchObject({ stage: 'pool', category: 'unicorn' });
    expect(log.find((l) => l.kind === 'empty-category')).toMatchObject({ stage: 'pool', category: 'cat' });
    const failed = log.filter((l) => l.kind === 'image-failed');
    expect(failed.map((l) => [l.image_id, l.copy])).toEqual([[14, 0], [14, 1], [14, 2]]);
    expect(failed[0].message).toMatch(/E_IO.*d\.png does not exist/);
    // The fully transparent dog crop is left out once, when the pool is read, not at every draw of it.
    const blank = log.filter((l) => l.kind === 'empty-alpha');
    expect(blank).toHaveLength(1);
    expect(blank[0]).toMatchObject({ stage: 'pool', category: 'dog', file: join(fx.pool, 'instances', 'dog', 'blank.png') });
    expect(kinds.has('crop-skipped')).toBe(false);
  });

  it('reads no image outside --images: a COCO file_name with .. or a link out of the folder fails that item, the rest render', async () => {
    const { symlink, copyFile } = await import('node:fs/promises');
    const doc = JSON.parse(await readFile(fx.coco, 'utf8')) as { images: Array<{ id: number; file_name: string }> };
    const first = doc.images[0]!;
    const second = doc.images[1]!;
    const outside = tmp.fresh('outside');
    await mkdir(outside, { recursive: true });
    await copyFile(join(fx.images, first.file_name), join(outside, first.file_name));
    await copyFile(join(fx.images, second.file_name), join(outside, second.file_name));
    const images = tmp.fresh('images');
    await mkdir(images, { recursive: true });
    for (const im of doc.images) await copyFile(join(fx.images, im.file_name), join(images, im.file_name)).catch(() => undefined);
    await rm(join(images, second.file_name));
    await symlink(join(outside, second.file_name), join(images, second.file_name));
    first.file_name = `../${relative(dirname(images), outside)}/${first.file_name}`;
    const coco = join(tmp.fresh('roots'), 'c.json');
    await mkdir(dirname(coco), { recursive: true });
    await writeFile(coco, JSON.stringify(doc));
    const out = tmp.fresh('roots-out');
    const r = await paste({ ...base(out), coco, images, copies: 1 });
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { kind: string; image_id: number; message: string });
    const refused = log.filter((l) => l.kind === 'image-failed' && /outside/.test(l.message)).map((l) => l.image_id).sort();
    expect(refused).toEqual([first.id, second.id].sort());
    expect(r.ok).toBeGreaterThan(0);
  });

  it('never samples a fully transparent crop (the pool drops it when read, like clean_pool)', async () => {
    const out = tmp.fresh('alpha');
    const ctx = await preparePaste(base(out, { copies: 1 }));
    const dog = ctx.pool.categories.find((c) => c.categoryId === 3)!;
    expect(dog.instances.map((i) => i.file.split('/').pop())).toEqual(['d1.png', 'd2.png']);
    let dogDraws = 0;
    for (let copy = 0; copy < 40; copy++) {
      for (let i = 0; i < 3; i++) {
        for (const p of planItem(ctx, i, copy, { raw: true }, { rle: false, bitmap: false, polygon: false }).task.placements) {
          expect(p.file).not.toMatch(/blank\.png$/);
          if (p.categoryId === 3) dogDraws++;
        }
      }
    }
    expect(dogDraws).toBeGreaterThan(50);
    // checkAlpha: false keeps it (then every draw of it is a crop-skipped record at render time).
    const raw = await readInstancePool(fx.pool, ctx.categories, { checkAlpha: false });
    expect(raw.categories.find((c) => c.categoryId === 3)!.instances).toHaveLength(3);
  });

  it('treats segmentation [] and null as no segmentation: box-only handling, flagged, same output as a missing field', async () => {
    const real = JSON.parse(await readFile(fx.coco, 'utf8')) as { annotations: Array<Record<string, unknown>> };
    const variant = async (name: string, seg: unknown) => {
      const dir = join(tmp.dir(), `seg-${name}`);
      await mkdir(dir, { recursive: true });
      const anns = real.annotations.map((a) => {
        // a.png's first annotation (mixed image) and both of c.png's (box-only image).
        if (a.id !== 1 && a.id !== 5 && a.id !== 6) return a;
        const { segmentation: _, ...rest } = a;
        return seg === 'absent' ? rest : { ...rest, segmentation: seg };
      });
      await writeFile(join(dir, 'real.json'), JSON.stringify({ ...real, annotations: anns }));
      const out = tmp.fresh(`seg-${name}-out`);
      await paste(base(out, { coco: join(dir, 'real.json') }));
      return out;
    };
    const absent = await variant('absent', 'absent');
    const back = await readCoco(join(absent, 'annotations.json'));
    // c: box-only image; a: its annotation 1 has no segmentation in the output and is flagged box_only.
    for (const im of back.dataset.images.filter((x) => x.source_image_id === 13)) expect(im.box_only).toBe(true);
    const a1 = back.dataset.annotations.filter((a) => a.source_annotation_id === 1);
    expect(a1.length).toBeGreaterThan(0);
    for (const a of a1) {
      expect(a.segmentation).toBeUndefined();
      expect(a.box_only).toBe(true);
    }
    const a2 = back.dataset.annotations.filter((a) => a.source_annotation_id === 2);
    for (const a of a2) expect([a.box_only, typeof (a.segmentation as { counts: unknown }).counts]).toEqual([undefined, 'string']);
    const log = (await readFile(join(absent, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((l) => l.kind === 'segmentation-as-box')).toEqual([]);
    for (const seg of [[], null]) expectSameTree(await tree(absent), await tree(await variant(JSON.stringify(seg), seg)));
  });

  it('reads an X-Paste pool, records instances larger than the image, and appends unknown categories on request', async () => {
    const xp = join(tmp.dir(), 'xpaste');
    await mkdir(xp, { recursive: true });
    await ellipseCrop(join(xp, 'wide.png'), 60, 4, [200, 100, 0]);
    await ellipseCrop(join(xp, 'zero.png'), 8, 8, [0, 0, 0], true);
    // "1": the second category by id (dog, id 3); "7": beyond the categories; a relative and an img|mask entry.
    await writeFile(join(xp, 'pool.json'), JSON.stringify({ 1: ['*wide.png', '*zero.png', 'a.jpg|a.png'], 7: ['*wide.png'] }));
    const out = tmp.fresh('xpaste-out');
    await writeFile(join(xp, 'priors.json'), JSON.stringify({ 3: [0.5, 0] }));
    await paste(base(out, { pool: join(xp, 'pool.json'), priors: join(xp, 'priors.json'), copies: 2 }));
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.find((l) => l.kind === 'unsupported-entry')).toMatchObject({ category: '1', file: 'a.jpg|a.png' });
    expect(log.find((l) => l.kind === 'unknown-category')).toMatchObject({ category: '7' });
    // s = 0.5, r = 15 x jitter: W' = floor(sqrt(r T)) >= W on a, b and c: too large (on the 32 x 32 d, H' = 4: too small).
    const rejected = log.filter((l) => l.kind === 'sample-rejected');
    expect(rejected.filter((l) => l.image_id !== 14).length).toBe(6);
    for (const l of rejected) expect(l.image_id === 14 ? l.too_small : l.too_large).toBeGreaterThan(0);
    for (const l of rejected) expect(l.image_id === 14 ? l.too_large : l.too_small).toBe(0);

    const pool = await readInstancePool(join(xp, 'pool.json'), [{ id: 1, name: 'cat' }, { id: 3, name: 'dog' }], { addCategories: true });
    expect(pool.addedCategories).toEqual([{ id: 4, name: '7', supercategory: 'object' }]);
    // zero.png has an empty alpha: left out when read.
    expect(pool.categories.map((c) => [c.categoryId, c.instances.length])).toEqual([[3, 1], [4, 1]]);
    expect(pool.skipped.filter((k) => k.kind === 'empty-alpha').map((k) => k.file)).toEqual([join(xp, 'zero.png')]);
    expect(pool.categories[0]!.instances[0]).toMatchObject({ width: 60, height: 4 });
  });

  it('records undecodable and wrongly sized images, and a pool that maps to nothing, without stopping', async () => {
    const dir = join(tmp.dir(), 'badimages');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'garbage.jpg'), 'not an image at all');
    await sharp(Buffer.alloc(10 * 10 * 3, 128), { raw: { width: 10, height: 10, channels: 3 } }).png().toFile(join(dir, 'small.png'));
    await sharp(Buffer.alloc(20 * 16 * 3, 90), { raw: { width: 20, height: 16, channels: 3 } }).png().toFile(join(dir, 'ok.png'));
    const coco = join(dir, 'real.json');
    await writeFile(coco, JSON.stringify({
      images: [{ id: 1, file_name: 'garbage.jpg', width: 10, height: 10 }, { id: 2, file_name: 'small.png', width: 12, height: 10 }, { id: 3, file_name: 'ok.png', width: 20, height: 16 }],
      annotations: [{ id: 1, image_id: 3, category_id: 8, bbox: [1, 1, 5, 5] }],
      categories: [{ id: 2, name: 'dog' }],
    }));
    const out = tmp.fresh('badimages-out');
    const r = await paste({ coco, images: dir, pool: fx.pool, out, seed: 1, workers: 0 });
    expect(r).toMatchObject({ items: 3, ok: 1, failed: 2 });
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.find((l) => l.kind === 'dangling-category')).toMatchObject({ where: 'annotations[0]' });
    const failed = log.filter((l) => l.kind === 'image-failed');
    expect(failed[0]).toMatchObject({ image_id: 1, file_name: 'garbage.jpg' });
    expect(failed[0].message).toMatch(/E_FORMAT.*garbage\.jpg could not be decoded/);
    expect(failed[1]).toMatchObject({ image_id: 2 });
    expect(failed[1].message).toMatch(/E_SHAPE.*10 x 10 but the COCO file says 12 x 10/);
    const back = await readCoco(join(out, 'annotations.json'));
    expect(back.dataset.images.map((im) => im.file_name)).toEqual(['ok_0.jpg']);
  });

  it('bounds the crop cache by bytes, evicting the least recently used', () => {
    const lru = new LruCache<string, Uint8Array>(100, (v) => v.length);
    lru.set('a', new Uint8Array(40));
    lru.set('b', new Uint8Array(40));
    expect(lru.get('a')?.length).toBe(40);  // a is now the most recent
    lru.set('c', new Uint8Array(40));  // 120 > 100: b goes
    expect([lru.get('b'), lru.bytes, lru.size]).toEqual([undefined, 80, 2]);
    lru.set('huge', new Uint8Array(101));  // never fits: not cached, nothing evicted
    expect([lru.get('huge'), lru.size]).toEqual([undefined, 2]);
  });

  it('maps genaug pool names to categories (normalised names, synonyms) and rejects bad indexes', async () => {
    const pool = await readInstancePool(fx.pool, [
      { id: 2, name: 'Dog' },
      { id: 9, name: 'pinniped', synonyms: ['sea_lion'] },
      { id: 1, name: 'cat' },
    ]);
    expect(pool.categories.map((c) => [c.name, c.categoryId, c.instances.length])).toEqual([['dog', 2, 2], ['sea lion', 9, 1]]);
    const bad = join(tmp.dir(), 'bad-index.json');
    await writeFile(bad, JSON.stringify({ hello: 'world' }));
    await expectCode(readInstancePool(bad, []), 'E_FORMAT', /neither genaug's/);
    await expectCode(readInstancePool(join(tmp.dir(), 'nope'), []), 'E_IO');
  });
});

describe('genaug paste: determinism and resume', () => {
  it('gives the same bytes with 1 and 2 workers (and on the main thread)', async () => {
    expect(existsSync(join(__dirname, '..', 'dist', 'workers', 'paste.js'))).toBe(true);
    const outs = [];
    for (const workers of [1, 2, 0]) {
      const out = tmp.fresh(`w${workers}`);
      await paste(base(out, { workers, format: 'webdataset', shardSize: 4 }));
      outs.push(await tree(out));
    }
    expect(outs[0]!.has('shards/000002.tar')).toBe(true);
    expectSameTree(outs[0]!, outs[1]!);
    expectSameTree(outs[0]!, outs[2]!);
  });

  it('resumes an interrupted run to the same bytes, and refuses other settings in the same folder', async () => {
    const full = tmp.fresh('full');
    await paste(base(full, { format: 'coco' }));
    const cut = tmp.fresh('cut');
    const ac = new AbortController();
    await expectCode(paste(base(cut, { signal: ac.signal, onProgress: (done) => done >= 4 && ac.abort() })), 'E_ABORTED', /run it again to resume/);
    const journal = (await readFile(join(cut, 'progress.jsonl'), 'utf8')).trim().split('\n');
    expect(journal.length).toBe(4);
    expect(existsSync(join(cut, 'annotations.json'))).toBe(false);
    const seen: number[] = [];
    await paste(base(cut, { format: 'coco', onProgress: (done) => seen.push(done) }));
    expect(seen[0]).toBe(4);
    expect((await readFile(join(cut, 'progress.jsonl'), 'utf8')).trim().split('\n').length).toBe(12);
    expectSameTree(await tree(full), await tree(cut));
    await expectCode(paste(base(cut, { seed: 4 })), 'E_ARGUMENT', /other settings/);
  });
});

describe('genaug paste: WebDataset shards', () => {
  it('writes ustar shards that tar(1) lists and extracts: sorted, unique dot-free keys, jpg + json', async () => {
    const out = tmp.fresh('wds');
    await paste(base(out, { format: 'webdataset', shardSize: 4 }));
    const shards = (await readdir(join(out, 'shards'))).sort();
    expect(shards).toEqual(['000000.tar', '000001.tar', '000002.tar']);
    // The dataset is stored once: the staged renders are gone, the shards hold them (compared with a COCO run's images).
    expect(existsSync(join(out, 'images'))).toBe(false);
    expect(existsSync(join(out, 'shards.partial'))).toBe(false);
    const cocoOut = tmp.fresh('wds-coco');
    await paste(base(cocoOut, { format: 'coco', shardSize: 4 }));
    const members: string[] = [];
    for (const s of shards) {
      const path = join(out, 'shards', s);
      const listed = execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).trim().split('\n');
      members.push(...listed);
      // Headers: magic, checksum, sizes, 512-byte alignment, padded to a 10240-byte record.
      const bytes = await readFile(path);
      expect(bytes.length % 10240).toBe(0);
      let off = 0;
      let names = 0;
      while (off < bytes.length) {
        const h = bytes.subarray(off, off + 512);
        if (h.every((b) => b === 0)) break;
        expect(h.subarray(257, 263).toString('latin1')).toBe('ustar\0');
        const stored = parseInt(h.subarray(148, 154).toString('latin1'), 8);
        let sum = 0;
        for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
        expect(stored).toBe(sum);
        const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
        expect(name).toBe(listed[names++]);
        const size = parseInt(h.subarray(124, 135).toString('latin1'), 8);
        off += 512 + Math.ceil(size / 512) * 512;
      }
      expect(names).toBe(listed.length);
      const x = join(out, `x-${s}`);
      await mkdir(x);
      execFileSync('tar', ['-xf', path, '-C', x]);
      for (const m of listed) {
        const got = await readFile(join(x, m));
        if (m.endsWith('.jpg')) expect(Buffer.compare(got, await readFile(join(cocoOut, 'images', m)))).toBe(0);
        else {
          const j = JSON.parse(got.toString('utf8'));
          expect(`${j.key}.json`).toBe(m);
          for (const a of j.annotations) {
            expect(a.category_name).toBe({ 1: 'cat', 3: 'dog', 5: 'sea_lion' }[a.category_id as 1 | 3 | 5]);
            if (a.segmentation) expect(rleArea(a.segmentation)).toBe(a.area);
          }
        }
      }
    }
    expect(members).toEqual([...members].sort());
    const keys = members.map((m) => m.slice(0, m.indexOf('.')));
    for (const k of keys) expect(k).toMatch(/^[A-Za-z0-9_-]{1,127}$/);
    expect(new Set(keys).size).toBe(9);
    for (const k of new Set(keys)) expect(members.filter((m) => m.startsWith(`${k}.`))).toEqual([`${k}.jpg`, `${k}.json`]);
  });

  it('a rerun of a finished WebDataset export rebuilds the shards from the previous ones, byte for byte', async () => {
    const out = tmp.fresh('wds-rerun');
    await paste(base(out, { format: 'webdataset', shardSize: 4 }));
    const before = await Promise.all(['000000.tar', '000001.tar', '000002.tar'].map((s) => readFile(join(out, 'shards', s))));
    // Nothing is staged any more: every image comes back out of the old shards.
    const again = await paste(base(out, { format: 'webdataset', shardSize: 4 }));
    expect(again.rendered).toBe(0);
    const after = await Promise.all(['000000.tar', '000001.tar', '000002.tar'].map((s) => readFile(join(out, 'shards', s))));
    for (let i = 0; i < 3; i++) expect(Buffer.compare(after[i]!, before[i]!)).toBe(0);
    expect(existsSync(join(out, 'images'))).toBe(false);
    // indexShards sees every member at its offset: the bytes read back equal tar(1)'s extraction.
    const index = await indexShards(join(out, 'shards'));
    expect(index.size).toBe(18);
    const x = tmp.fresh('wds-x');
    await mkdir(x);
    execFileSync('tar', ['-xf', join(out, 'shards', '000001.tar'), '-C', x]);
    for (const m of await readdir(x)) expect(Buffer.compare(Buffer.from(await readShardMember(index.get(m)!)), await readFile(join(x, m)))).toBe(0);
    // A shard removed by hand: its images are neither staged nor sharded any more; the error says what to do.
    await rm(join(out, 'shards', '000001.tar'));
    await expectCode(paste(base(out, { format: 'webdataset', shardSize: 4 })), 'E_IO', /neither staged nor in the previous shards.*progress\.jsonl/);
    // A corrupt shard is E_FORMAT naming it, not a crash.
    await writeFile(join(out, 'shards', '000000.tar'), Buffer.alloc(1024, 7));
    await expectCode(indexShards(join(out, 'shards')), 'E_FORMAT', /000000\.tar: not a WebDataset shard/);
  });

  it('ShardWriter refuses keys out of order or with dots; headers are ustar', async () => {
    const w = new ShardWriter(tmp.fresh('sw'));
    await w.add('b', { json: new Uint8Array([123, 125]) });
    await expectCode(w.add('a', { json: new Uint8Array(1) }), 'E_ARGUMENT', /increasing order/);
    await expectCode(w.add('c.d', { json: new Uint8Array(1) }), 'E_ARGUMENT', /no dots/);
    const shards = await w.close();
    expect(execFileSync('tar', ['-tvf', shards[0]!], { encoding: 'utf8' })).toMatch(/-rw-r--r-- .*0\/0 +2 1970-01-01 00:00 b\.json/);
    expect(Buffer.from(tarHeader('x.json', 8).subarray(148, 156)).toString('latin1')).toMatch(/^[0-7]{6}\0 $/);
  });
});

/** Even-odd test of pixel centres against a polygon with pixel-corner vertices. */
function rasterisePolygon(poly: number[], w: number, h: number): Uint8Array {
  const m = new Uint8Array(w * h);
  const n = poly.length / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const px = x + 0.5, py = y + 0.5;
      let inside = false;
      for (let i = 0, j = n - 1; i < n; j = i++) {
        const xi = poly[2 * i]!, yi = poly[2 * i + 1]!, xj = poly[2 * j]!, yj = poly[2 * j + 1]!;
        if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
      }
      m[y * w + x] = inside ? 1 : 0;
    }
  }
  return m;
}

describe('genaug paste: YOLO', () => {
  it('traces every boundary along pixel corners and joins parts and holes into one polygon that fills exactly the mask', () => {
    expect(traceBoundaries(Uint8Array.of(1), 1, 1)).toEqual([[1, 0, 1, 1, 0, 1, 0, 0]]);
    // A 2 x 3 block at (1, 1) in a 4 x 5 frame: 4 corners.
    const block = new Uint8Array(20);
    for (let y = 1; y < 4; y++) for (let x = 1; x < 3; x++) block[y * 4 + x] = 1;
    expect(traceBoundaries(block, 4, 5)).toEqual([[3, 1, 3, 4, 1, 4, 1, 1]]);
    // A 3 x 3 ring: the outer boundary clockwise, the one-pixel hole anticlockwise (on screen, y down).
    const ring = Uint8Array.of(1, 1, 1, 1, 0, 1, 1, 1, 1);
    expect(traceBoundaries(ring, 3, 3)).toEqual([[3, 0, 3, 3, 0, 3, 0, 0], [1, 1, 1, 2, 2, 2, 2, 1]]);
    // Joined (Ultralytics merge_multi_segment): outer ring from its closest corner to the hole, then the hole, then back over the bridge.
    const joined = maskToPolygon(ring, 3, 3);
    expect(Buffer.from(rasterisePolygon(joined, 3, 3)).equals(Buffer.from(ring))).toBe(true);
    // Two parts apart and two parts touching at a corner (one 8-connected part: one ring).
    const two = Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 1);
    expect(traceBoundaries(two, 4, 2)).toHaveLength(2);
    expect(traceBoundaries(Uint8Array.of(1, 0, 0, 1), 2, 2)).toHaveLength(1);
    expect(maskToPolygon(new Uint8Array(6), 3, 2)).toEqual([]);
    // The oracle: filled even-odd at pixel centres (as cv2.fillPoly fills), the polygon is the mask itself, holes and parts included.
    const random = seededRandom(9);
    let multi = 0;
    for (let t = 0; t < 300; t++) {
      const w = 3 + Math.floor(random() * 14), h = 3 + Math.floor(random() * 14);
      const p = 0.3 + random() * 0.5;
      const m = Uint8Array.from({ length: w * h }, () => (random() < p ? 1 : 0));
      const rings = traceBoundaries(m, w, h);
      if (rings.length > 1) multi++;
      for (const r of rings) for (let k = 0; k < r.length; k++) expect(Number.isInteger(r[k]) && r[k]! >= 0 && r[k]! <= (k % 2 ? h : w)).toBe(true);
      const poly = maskToPolygon(m, w, h);
      expect(Buffer.compare(Buffer.from(rasterisePolygon(poly, w, h)), Buffer.from(m)), `case ${t}`).toBe(0);
    }
    expect(multi).toBeGreaterThan(100);
  });

  it('writes one label file per image with normalised polygons of the final masks, and data.yaml', async () => {
    const out = tmp.fresh('yolo');
    await paste(base(out, { format: 'yolo' }));
    const yaml = await readFile(join(out, 'data.yaml'), 'utf8');
    expect(yaml).toContain(`path: ${JSON.stringify(out)}`);
    expect(yaml).toMatch(/train: train.txt\n# val: 3 images of 1 held-out source images[^\n]*\nval: val.txt\nnames:\n {2}0: "cat"\n {2}1: "dog"\n {2}2: "sea_lion"\n/);
    const cls = new Map([[1, 0], [3, 1], [5, 2]]);
    const labels = (await readdir(join(out, 'labels'))).sort();
    const images = (await readdir(join(out, 'images'))).sort();
    expect(labels).toEqual(images.map((f) => f.replace(/\.jpg$/, '.txt')));
    // A real split: train.txt and val.txt (Ultralytics' ./ paths) partition the images, each source image's copies on one side.
    const listed = async (f: string) => (await readFile(join(out, f), 'utf8')).trim().split('\n');
    const train = await listed('train.txt');
    const val = await listed('val.txt');
    expect([...train, ...val].sort()).toEqual(images.map((f) => `./images/${f}`));
    const stemOf = (p: string) => p.replace(/^\.\/images\/(.*)_\d+\.jpg$/, '$1');
    expect(new Set(val.map(stemOf)).size).toBe(1);
    for (const v of val) expect(train.map(stemOf)).not.toContain(stemOf(v));
    // Your own validation set, or none (said in data.yaml); a bad fraction is refused before any work.
    const own = tmp.fresh('yolo-own');
    await paste(base(own, { format: 'yolo', yoloVal: '/data/real/val/images' }));
    expect(await readFile(join(own, 'data.yaml'), 'utf8')).toMatch(/# val: the validation set given[^\n]*\nval: "\/data\/real\/val\/images"\n/);
    expect((await readFile(join(own, 'train.txt'), 'utf8')).trim().split('\n')).toHaveLength(images.length);
    expect(existsSync(join(own, 'val.txt'))).toBe(false);
    const none = tmp.fresh('yolo-none');
    await paste(base(none, { format: 'yolo', valFraction: 0 }));
    expect(await readFile(join(none, 'data.yaml'), 'utf8')).toMatch(/# val: no validation split[^\n]*\nval: train.txt\n/);
    await expectCode(paste(base(tmp.fresh('yolo-bad'), { format: 'yolo', valFraction: 1 })), 'E_ARGUMENT', /valFraction must be in \[0, 1\)/);
    // Re-render every item in-process (same seed): each row's polygon rasterises to its mask exactly.
    const ctx = await preparePaste(base(out));
    const cache = new CropCache();
    const real = await readCoco(fx.coco);
    const stems = ['a', 'b', 'c'];
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    let rowsSeen = 0;
    let boxRows = 0;
    let crowdSeen = 0;
    for (const label of labels) {
      const [, stem, copy] = /^(.*)_(\d+)\.txt$/.exec(label)!;
      const index = stems.indexOf(stem!);
      const im = real.dataset.images[index]!;
      const plan = planItem(ctx, index, Number(copy), { raw: true }, { rle: false, bitmap: true, polygon: false });
      const rendered = await renderItem(plan.task, cache);
      const anns = real.annotationsByImage.get(im.id)!;
      const cat = (inst: (typeof rendered.instances)[number]) => (inst.source === 'real' ? anns[inst.index]!.category_id : plan.task.placements[inst.index]!.categoryId);
      const kept = rendered.instances.filter((inst) => !(inst.source === 'real' && anns[inst.index]!.iscrowd === 1));
      const rows = (await readFile(join(out, 'labels', label), 'utf8')).split('\n').filter(Boolean);
      expect(rows.length).toBe(kept.length);
      rows.forEach((row, k) => {
        const [c, ...coords] = row.split(' ');
        const inst = kept[k]!;
        expect(Number(c)).toBe(cls.get(cat(inst)));
        expect(coords.length % 2).toBe(0);
        expect(coords.length).toBeGreaterThanOrEqual(8);
        const px = coords.map((v, i) => {
          const f = Number(v);
          expect(f >= 0 && f <= 1).toBe(true);
          return Math.round(f * (i % 2 === 0 ? im.width : im.height));
        });
        if (inst.source === 'real' && im.id === 13) {
          // c.png has boxes only: the row is the 4-corner polygon of the output box (the tight box of the visible box mask).
          const [x, y, w, h] = tightBox(inst.mask!, im.width, im.height);
          expect(px).toEqual([x, y, x + w, y, x + w, y + h, x, y + h]);
          boxRows++;
        } else {
          // Every part and hole of the final mask: the polygon fills exactly the mask.
          expect(Buffer.compare(Buffer.from(rasterisePolygon(px, im.width, im.height)), Buffer.from(inst.mask!))).toBe(0);
        }
        rowsSeen++;
      });
      // What YOLO cannot carry is counted per item in log.jsonl.
      const at = (kind: string) => log.find((l) => l.kind === kind && l.image_id === im.id && l.copy === Number(copy));
      const crowd = rendered.instances.length - kept.length;
      expect(at('yolo-crowd-skipped')?.count ?? 0).toBe(crowd);
      if (crowd) expect(at('yolo-crowd-skipped')).toMatchObject({ stage: 'export', file_name: im.file_name });
      const boxes = im.id === 13 ? kept.filter((x) => x.source === 'real').length : 0;
      expect(at('yolo-box-as-polygon')?.count ?? 0).toBe(boxes);
      crowdSeen += crowd;
    }
    expect(rowsSeen).toBeGreaterThan(20);
    expect(boxRows).toBeGreaterThan(0);
    expect(crowdSeen).toBeGreaterThan(0);
  });
});

describe('genaug paste: command line and blends', () => {
  const bin = join(__dirname, '..', 'bin', 'genaug.js');
  const cli = (...args: string[]) => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string };
      return { code: x.status, out: x.stdout + x.stderr };
    }
  };

  it('genaug priors + genaug paste write the same dataset as the library, and bad options exit 2', async () => {
    const priors = join(tmp.dir(), 'cli-priors.json');
    expect(cli('priors', '--coco', fx.coco, '--out', priors).code).toBe(0);
    const file = JSON.parse(await readFile(priors, 'utf8')) as { categories: Array<{ id: number; size: { mean: number; std: number } | null }> };
    const table: Record<string, [number, number]> = {};
    for (const c of file.categories) if (c.size) table[String(c.id)] = [c.size.mean, c.size.std];
    // dog: 30 x 30 on 64 x 48 and 25 x 25 on 64 x 64 (the crowd box on b is left out); sea_lion: one 10 x 8 box on 80 x 60.
    const dog = [Math.sqrt(900 / 3072), Math.sqrt(625 / 4096)];
    expect(table['3']![0]).toBeCloseTo((dog[0]! + dog[1]!) / 2, 12);
    expect(table['3']![1]).toBeCloseTo(Math.abs(dog[0]! - dog[1]!) / 2, 12);
    expect(table['5']).toEqual([Math.sqrt(80 / 4800), 0]);
    // cat: 24 x 20 on 64 x 48 and 30 x 20 on 64 x 64 (c's box-only annotation counts): population std of the two.
    const cat = [Math.sqrt(480 / 3072), Math.sqrt(600 / 4096)];
    expect(table['1']![0]).toBeCloseTo((cat[0]! + cat[1]!) / 2, 12);
    expect(table['1']![1]).toBeCloseTo(Math.abs(cat[0]! - cat[1]!) / 2, 12);
    const viaCli = tmp.fresh('cli');
    const r = cli('paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', viaCli, '--seed', '3', '--copies', '3', '--workers', '0', '--priors', priors, '-q');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/12 items: 9 written, 3 failed/);
    const viaLib = tmp.fresh('lib');
    await paste(base(viaLib));
    expectSameTree(await tree(viaLib), await tree(viaCli));
    expect(cli('paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', viaCli, '--format', 'xml').code).toBe(2);
    const help = cli('paste', '--help').out;
    for (const opt of ['--seed', '--copies', '--format', '--blend', '--max-samples', '--sampling', '--workers', '--jpeg-quality', '--shard-size', '--add-categories']) expect(help).toContain(opt);
  });

  it('exposes every sampling knob with its reference default, and passes it to the library', async () => {
    // Option blocks of the help text (each starts with "  -"), whitespace collapsed.
    const blocks = cli('paste', '--help').out.split(/\n(?= {2}-)/).map((b) => b.replace(/\s+/g, ' ').trim());
    const defaults: Array<[string, string]> = [
      ['--flip-prob <p>', '0.5'], ['--aspect-jitter <lo,hi>', '0.8,1.2'], ['--min-size-px <px>', '10'], ['--max-scale <s>', '0.5'],
      ['--min-side <px>', '5'], ['--random-scale-range <lo,hi>', '0.05,0.3'], ['--random-scale-min-side <px>', '3'],
      ['--sampling <mode>', 'cas_random'], ['--max-samples <n>', '20'], ['--mask-threshold <a>', '1'],
    ];
    for (const [flag, value] of defaults) {
      const block = blocks.find((b) => b.startsWith(flag + ' '));
      expect(block, flag).toBeDefined();
      expect(block!.endsWith(`default: ${value})`), block).toBe(true);
    }
    const args = ['--flip-prob', '1', '--aspect-jitter', '0.9,1.1', '--min-size-px', '4', '--max-scale', '0.3', '--min-side', '3', '--random-scale-range', '0.1,0.2', '--random-scale-min-side', '2', '--sampling', 'random', '--random-scale', '--mask-threshold', '128'];
    const viaCli = tmp.fresh('cli-knobs');
    const r = cli('paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', viaCli, '--seed', '3', '--copies', '3', '--workers', '0', '-q', ...args);
    expect(r.code, r.out).toBe(0);
    const viaLib = tmp.fresh('lib-knobs');
    const knobs = { flipProbability: 1, aspectJitter: [0.9, 1.1] as [number, number], minSizePixels: 4, maxScale: 0.3, minSide: 3, randomScaleRange: [0.1, 0.2] as [number, number], randomScaleMinSide: 2, sampling: 'random' as const, randomScale: true };
    await paste(base(viaLib, { ...knobs, maskThreshold: 128 }));
    expectSameTree(await tree(viaLib), await tree(viaCli));
    const run = JSON.parse(await readFile(join(viaCli, 'run.json'), 'utf8'));
    expect(run.sample).toMatchObject({ ...knobs, maxSamples: 20 });
    expect(run.compose.maskThreshold).toBe(128);
    await expectCode(preparePaste(base(viaLib, { maskThreshold: 0 })), 'E_RANGE');
    // Every pasted instance is flipped (p = 1).
    const ctx = await preparePaste(base(viaLib, knobs));
    const flips = [0, 1, 2].flatMap((i) => planItem(ctx, i, 0, { raw: true }, { rle: false, bitmap: false, polygon: false }).task.placements.map((p) => p.flip));
    expect(flips.length).toBeGreaterThan(0);
    expect(flips.every(Boolean)).toBe(true);
    for (const bad of [['--flip-prob', '1.5'], ['--aspect-jitter', '1.2,0.8'], ['--random-scale-range', '0.1'], ['--max-scale', '-1'], ['--mask-threshold', '0'], ['--mask-threshold', '256']]) {
      const x = cli('paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', tmp.fresh('bad-knob'), ...bad);
      expect(x.code, bad.join(' ')).toBe(2);
    }
  });

  it('alpha and gaussian blends keep masks, boxes and areas consistent', async () => {
    for (const blend of ['alpha', 'gaussian'] as const) {
      const out = tmp.fresh(blend);
      const r = await paste(base(out, { blend, copies: 1 }));
      expect(r.ok).toBe(3);
      const coco = await readCoco(join(out, 'annotations.json'));
      for (const a of coco.dataset.annotations) {
        if (!a.segmentation) continue;
        const m = decodeRleSync(a.segmentation as { size: [number, number]; counts: string });
        expect(rleArea(a.segmentation as { size: [number, number]; counts: string })).toBe(a.area);
        expect(a.bbox).toEqual(tightBox(m.data, m.width, m.height));
      }
    }
  });
});

describe('image keys', () => {
  it('are unique even when an id suffix meets another image stem (a.jpg#5, a.png#6, a_id5.jpg#7)', () => {
    const images = [
      { id: 5, file_name: 'a.jpg' },
      { id: 6, file_name: 'a.png' },
      { id: 7, file_name: 'a_id5.jpg' },
      { id: 8, file_name: 'dir/b.jpg' },
      { id: 9, file_name: 'a_id5_dup2.jpg' },
    ];
    const keys = imageKeys(images);
    expect(new Set(keys).size).toBe(images.length);
    expect(keys).toEqual(['a_id5', 'a_id6', 'a_id5_dup3', 'dir_b', 'a_id5_dup2']);
    expect(imageKeys(images)).toEqual(keys);
  });
});
