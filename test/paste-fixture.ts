/** A tiny real dataset and instance pool for the paste tests, built on disk with sharp. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import type { PasteOptions } from '../ts/augment/paste.js';
import { seededRandom } from '../ts/util/random.js';

export interface PasteFixture {
  root: string;
  images: string;
  coco: string;
  pool: string;
}

async function noiseImage(path: string, width: number, height: number, seed: number): Promise<void> {
  const r = seededRandom(seed);
  const data = Buffer.alloc(width * height * 3);
  // Smooth-ish content: a gradient plus noise, so JPEG artefacts stay small.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 4 + Math.floor(r() * 16)) & 255;
      data[i + 1] = (y * 4 + Math.floor(r() * 16)) & 255;
      data[i + 2] = Math.floor(r() * 255);
    }
  }
  await sharp(data, { raw: { width, height, channels: 3 } }).png().toFile(path);
}

/** An RGBA crop: a filled ellipse of colour `rgb` on transparent (alpha 0 everywhere when `empty`). */
export async function ellipseCrop(path: string, width: number, height: number, rgb: [number, number, number], empty = false): Promise<void> {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = (x + 0.5 - width / 2) / (width / 2);
      const dy = (y + 0.5 - height / 2) / (height / 2);
      const i = (y * width + x) * 4;
      data[i] = rgb[0];
      data[i + 1] = rgb[1];
      data[i + 2] = rgb[2];
      data[i + 3] = !empty && dx * dx + dy * dy <= 1 ? 255 : 0;
    }
  }
  await sharp(data, { raw: { width, height, channels: 4 } }).png().toFile(path);
}

/**
 * Images: a.png (64x48, polygon annotations), b.png (80x60, one RLE and one
 * crowd annotation), c.png (64x64, boxes only), d.png (listed, missing on
 * disk). Categories 1 cat, 3 dog, 5 sea_lion; one annotation with a dangling
 * image id. Pool (genaug layout): dog (two crops and one with an empty
 * alpha), "sea lion" (matches sea_lion), cat (empty), unicorn (unknown).
 */
export async function buildPasteFixture(root: string): Promise<PasteFixture> {
  const images = join(root, 'images');
  const pool = join(root, 'pool');
  await mkdir(images, { recursive: true });
  for (const d of ['dog', 'sea_lion', 'unicorn']) await mkdir(join(pool, 'instances', d), { recursive: true });
  await noiseImage(join(images, 'a.png'), 64, 48, 1);
  await noiseImage(join(images, 'b.png'), 80, 60, 2);
  await noiseImage(join(images, 'c.png'), 64, 64, 3);
  // b's RLE: a 10 x 8 block at x 30..39, y 20..27, as column-major counts starting with zeros.
  const H = 60;
  const counts: number[] = [];
  let run = 0;
  let cur = 0;
  for (let x = 0; x < 80; x++) {
    for (let y = 0; y < H; y++) {
      const v = x >= 30 && x < 40 && y >= 20 && y < 28 ? 1 : 0;
      if (v !== cur) {
        counts.push(run);
        run = 0;
        cur = v;
      }
      run++;
    }
  }
  counts.push(run);
  const coco = {
    info: { description: 'paste fixture' },
    images: [
      { id: 11, file_name: 'a.png', width: 64, height: 48 },
      { id: 12, file_name: 'b.png', width: 80, height: 60 },
      { id: 13, file_name: 'c.png', width: 64, height: 64 },
      { id: 14, file_name: 'd.png', width: 32, height: 32 },
    ],
    annotations: [
      { id: 1, image_id: 11, category_id: 1, bbox: [4, 4, 24, 20], area: 480, iscrowd: 0, segmentation: [[4, 4, 28, 4, 28, 24, 4, 24]] },
      { id: 2, image_id: 11, category_id: 3, bbox: [30, 10, 30, 30], area: 450, iscrowd: 0, segmentation: [[30, 10, 60, 10, 30, 40]] },
      { id: 3, image_id: 12, category_id: 5, bbox: [30, 20, 10, 8], area: 80, iscrowd: 0, segmentation: { size: [60, 80], counts } },
      { id: 4, image_id: 12, category_id: 3, bbox: [0, 40, 40, 20], area: 800, iscrowd: 1, segmentation: [[0, 40, 40, 40, 40, 60, 0, 60]] },
      { id: 5, image_id: 13, category_id: 1, bbox: [10, 10, 30, 20], area: 600, iscrowd: 0 },
      { id: 6, image_id: 13, category_id: 3, bbox: [20.4, 30.6, 25, 25], area: 625, iscrowd: 0 },
      { id: 7, image_id: 99, category_id: 1, bbox: [0, 0, 5, 5], area: 25, iscrowd: 0 },
    ],
    categories: [
      { id: 1, name: 'cat', supercategory: 'animal' },
      { id: 3, name: 'dog', supercategory: 'animal' },
      { id: 5, name: 'sea_lion', supercategory: 'animal' },
    ],
  };
  const cocoPath = join(root, 'real.json');
  await writeFile(cocoPath, JSON.stringify(coco));
  await ellipseCrop(join(pool, 'instances', 'dog', 'd1.png'), 24, 18, [250, 10, 10]);
  await ellipseCrop(join(pool, 'instances', 'dog', 'd2.png'), 14, 20, [10, 250, 10]);
  await ellipseCrop(join(pool, 'instances', 'dog', 'blank.png'), 12, 12, [0, 0, 0], true);
  await ellipseCrop(join(pool, 'instances', 'sea_lion', 's1.png'), 30, 16, [10, 10, 250]);
  await ellipseCrop(join(pool, 'instances', 'unicorn', 'u1.png'), 16, 16, [250, 250, 10]);
  const entry = (file: string, w: number, h: number) => ({ file, areaFraction: 0.3, source: file, bbox: [0, 0, w, h] });
  const index = {
    categories: {
      dog: [entry('instances/dog/d1.png', 24, 18), entry('instances/dog/d2.png', 14, 20), entry('instances/dog/blank.png', 12, 12)],
      'sea lion': [entry('instances/sea_lion/s1.png', 30, 16)],
      cat: [],
      unicorn: [entry('instances/unicorn/u1.png', 16, 16)],
    },
  };
  await writeFile(join(pool, 'index.json'), JSON.stringify(index));
  return { root, images, coco: cocoPath, pool };
}

/** The paste tests' options over the fixture: seed 3, 3 copies, on the main thread. */
export const fixtureOptions = (fx: PasteFixture, out: string, extra: Partial<PasteOptions> = {}): PasteOptions => ({
  coco: fx.coco,
  images: fx.images,
  pool: fx.pool,
  out,
  seed: 3,
  copies: 3,
  workers: 0,
  ...extra,
});
