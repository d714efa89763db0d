/**
 * An independent reader of genaug's COCO outputs for the end-to-end tests: a plain COCO RLE decoder (cocoapi
 * maskApi.c rules, written from the format description) and a check that every annotation decodes to its area and
 * tight box inside an image of the size the file says.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { expect } from 'vitest';

// --- an independent COCO RLE decoder (cocoapi maskApi.c rules, written from the format description) ---

export function rleStringToCounts(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2] as number;
    counts.push(x);
  }
  return counts;
}

/** Row-major 0/1 mask from a COCO RLE (counts are column-major runs starting with zeros). */
export function decodeRlePlain(rle: { size: [number, number]; counts: string | number[] }): Uint8Array {
  const [h, w] = rle.size;
  const counts = typeof rle.counts === 'string' ? rleStringToCounts(rle.counts) : rle.counts;
  const m = new Uint8Array(h * w);
  let pos = 0;
  counts.forEach((n, i) => {
    if (i % 2 === 1) for (let q = pos; q < pos + n; q++) m[(q % h) * w + Math.floor(q / h)] = 1;
    pos += n;
  });
  expect(pos, 'RLE counts must sum to h * w').toBe(h * w);
  return m;
}

export function areaAndBox(m: Uint8Array, h: number, w: number): { area: number; bbox: number[] } {
  let area = 0;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (m[y * w + x]) {
        area++;
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
  return { area, bbox: area ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : [0, 0, 0, 0] };
}

export interface Coco {
  images: Array<{ id: number; file_name: string; width: number; height: number }>;
  annotations: Array<{ id: number; image_id: number; category_id: number; segmentation: { size: [number, number]; counts: string }; area: number; bbox: number[]; iscrowd: number; instance_source?: string }>;
  categories: Array<{ id: number; name: string }>;
}

export async function checkCoco(path: string, imageRoot: string): Promise<Coco> {
  const coco = JSON.parse(await readFile(path, 'utf8')) as Coco;
  for (const key of ['images', 'annotations', 'categories'] as const) expect(Array.isArray(coco[key]), key).toBe(true);
  const images = new Map(coco.images.map((i) => [i.id, i]));
  expect(images.size).toBe(coco.images.length);
  const cats = new Set(coco.categories.map((c) => c.id));
  expect(new Set(coco.annotations.map((a) => a.id)).size).toBe(coco.annotations.length);
  for (const im of coco.images) {
    const meta = await sharp(join(imageRoot, im.file_name)).metadata();
    expect([meta.width, meta.height], im.file_name).toEqual([im.width, im.height]);
  }
  for (const a of coco.annotations) {
    const im = images.get(a.image_id);
    expect(im, `annotation ${a.id} image`).toBeDefined();
    expect(cats.has(a.category_id), `annotation ${a.id} category`).toBe(true);
    expect(a.iscrowd).toBe(0);
    expect(typeof a.segmentation.counts, 'compressed RLE').toBe('string');
    expect(a.segmentation.size).toEqual([im!.height, im!.width]);
    const m = decodeRlePlain(a.segmentation);
    const { area, bbox } = areaAndBox(m, im!.height, im!.width);
    expect(area, `annotation ${a.id} area`).toBeGreaterThan(0);
    expect(a.area, `annotation ${a.id} area`).toBe(area);
    expect(a.bbox, `annotation ${a.id} bbox`).toEqual(bbox);
  }
  return coco;
}
