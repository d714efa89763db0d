import { existsSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { pasteLoader, type PasteLoaderOptions, type PasteSample } from '../ts/augment/loader.js';
import { paste } from '../ts/augment/paste.js';
import { decodeRleSync } from '../ts/kernels/mask.js';
import { expectCode, tempFolder } from './helpers.js';
import { buildPasteFixture, type PasteFixture } from './paste-fixture.js';

const tmp = tempFolder('genaug-paste-loader-');
let fx: PasteFixture;

beforeAll(async () => {
  fx = await buildPasteFixture(join(tmp.dir(), 'fx'));
});

const opts = (extra: Partial<PasteLoaderOptions> = {}): PasteLoaderOptions => ({ coco: fx.coco, images: fx.images, pool: fx.pool, seed: 7, workers: 0, ...extra });

async function collect(o: PasteLoaderOptions): Promise<{ samples: PasteSample[]; skips: Array<{ imageId: number; copy: number; file?: string; reason: string }> }> {
  const skips: Array<{ imageId: number; copy: number; file?: string; reason: string }> = [];
  const samples: PasteSample[] = [];
  for await (const s of pasteLoader({ ...o, onSkip: (r) => skips.push(r) })) samples.push(s);
  return { samples, skips };
}

describe('pasteLoader', () => {
  it('yields every usable image once per epoch, seeded order, consistent masks, boxes and areas', async () => {
    const { samples, skips } = await collect(opts({ epochs: 2 }));
    expect(samples.length).toBe(6);
    for (const e of [0, 1]) {
      const ids = samples.filter((s) => s.epoch === e).map((s) => s.imageId);
      expect([...ids].sort()).toEqual([11, 12, 13]);
    }
    expect(samples.slice(0, 3).every((s) => s.epoch === 0 && s.copy === 0)).toBe(true);
    const failed = skips.filter((s) => !s.file);
    expect(failed.map((s) => [s.imageId, s.copy])).toEqual([[14, 0], [14, 1]]);
    expect(failed[0]!.reason).toMatch(/E_IO.*does not exist/);
    for (const s of samples) {
      expect(s.image.length).toBe(s.width * s.height * 3);
      expect(s.boxOnly).toBe(s.imageId === 13);
      for (const a of s.annotations) {
        const m = a.mask!;
        expect(m.length).toBe(s.width * s.height);
        let area = 0, x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
        for (let i = 0; i < m.length; i++) {
          if (!m[i]) continue;
          area++;
          const x = i % s.width, y = Math.floor(i / s.width);
          x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
        }
        expect(area).toBe(a.area);
        expect(area).toBeGreaterThan(0);
        expect(a.bbox).toEqual([x0, y0, x1 - x0 + 1, y1 - y0 + 1]);
        expect(a.source === 'pasted' ? [3, 5] : [1, 3, 5]).toContain(a.category_id);
      }
    }
  });

  it('matches the offline render of the same seed (copy = epoch) and gives the same samples with workers and RLE masks', async () => {
    expect(existsSync(join(__dirname, '..', 'dist', 'workers', 'paste.js'))).toBe(true);
    const out = tmp.fresh('offline');
    await paste({ coco: fx.coco, images: fx.images, pool: fx.pool, out, seed: 7, copies: 2, workers: 0, imageFormat: 'png' });
    const inline = await collect(opts({ epochs: 2 }));
    for (const s of inline.samples) {
      const file = join(out, 'images', `${s.fileName.replace(/\.png$/, '')}_${s.copy}.png`);
      const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      expect(Buffer.compare(data, Buffer.from(s.image)), file).toBe(0);
    }
    const pooled = await collect(opts({ epochs: 2, workers: 2, masks: 'rle', prefetch: 3 }));
    expect(pooled.samples.map((s) => [s.imageId, s.epoch])).toEqual(inline.samples.map((s) => [s.imageId, s.epoch]));
    pooled.samples.forEach((s, i) => {
      const t = inline.samples[i]!;
      expect(Buffer.compare(Buffer.from(s.image), Buffer.from(t.image))).toBe(0);
      expect(s.annotations.map((a) => [a.category_id, a.bbox, a.area, a.source])).toEqual(t.annotations.map((a) => [a.category_id, a.bbox, a.area, a.source]));
      s.annotations.forEach((a, k) => {
        expect(a.mask).toBeUndefined();
        expect(Buffer.compare(Buffer.from(decodeRleSync(a.rle!).data), Buffer.from(t.annotations[k]!.mask!))).toBe(0);
      });
    });
  });

  it('stops cleanly when the loop breaks early, and close() is idempotent', async () => {
    const loader = pasteLoader(opts({ epochs: Infinity, workers: 2 }));
    let n = 0;
    for await (const s of loader) {
      expect(s.image.length).toBeGreaterThan(0);
      if (++n === 7) break;
    }
    expect(n).toBe(7);
    await loader.close();
    expect(await loader.next()).toEqual({ done: true, value: undefined });
  });

  it('without shuffle keeps the file order; checks its options', async () => {
    const { samples } = await collect(opts({ shuffle: false }));
    expect(samples.map((s) => s.imageId)).toEqual([11, 12, 13]);
    await expectCode(() => pasteLoader(opts({ epochs: -1 })), 'E_ARGUMENT', /epochs/);
    await expectCode(() => pasteLoader(opts({ masks: 'png' as never })), 'E_ARGUMENT', /masks/);
  });
});
