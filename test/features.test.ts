/**
 * The weight-free "features-v1" embedder: hand-computed vectors for flat
 * colours and stripes (the layout is documented in features.ts), the HSV bins
 * by hand, and the near-duplicate behaviour it exists for.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { FEATURES_V1, FeatureEmbedder, hsvBin } from '../ts/models/features.js';
import type { RgbInput } from '../ts/models/types.js';
import { makeImage } from './clip-helpers.js';

function flat(w: number, h: number, rgb: [number, number, number]): RgbInput {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  return { data, width: w, height: h };
}

function cos(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** A scene of a few coloured rectangles on a gradient, seeded. */
function scene(seed: number, w = 96, h = 80): RgbInput {
  const img = makeImage(w, h, seed);
  const data = img.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inBox = x > 10 + seed * 3 && x < 50 + seed * 5 && y > 15 && y < 60 - seed;
      data[i] = inBox ? (40 * seed) % 256 : (x * 2) % 256;
      data[i + 1] = inBox ? 200 : (y * 3) % 256;
      data[i + 2] = inBox ? (90 + 50 * seed) % 256 : 128;
    }
  }
  return img;
}

describe('features-v1', () => {
  const f = new FeatureEmbedder();

  it('bins colours as 8 hue x 3 saturation x 3 value', () => {
    expect(hsvBin(255, 0, 0)).toBe((0 * 3 + 2) * 3 + 2); // red: hue 0, saturated, bright
    expect(hsvBin(0, 0, 255)).toBe((5 * 3 + 2) * 3 + 2); // blue: hue 240/360 * 8 = 5.33
    expect(hsvBin(0, 0, 0)).toBe(0);
    expect(hsvBin(128, 128, 128)).toBe((0 * 3 + 0) * 3 + 1); // grey: no saturation, value 0.5
    expect(hsvBin(255, 255, 0)).toBe((1 * 3 + 2) * 3 + 2); // yellow: 60/360 * 8 = 1.33
  });

  it('gives the hand-computed vector for a flat colour', async () => {
    expect([f.name, f.dim]).toEqual(['features-v1', 1701]);
    const v = await f.embedImages([flat(30, 20, [255, 0, 0])]);
    // Each of the 21 cells: one colour bin at the level weight (1, 1/2, 1/4), no gradient;
    // total norm^2 = 1 + 4/4 + 16/16 = 3, so each entry is weight / sqrt(3).
    const want = new Float32Array(1701);
    let cell = 0;
    for (const g of FEATURES_V1.levels) {
      for (let c = 0; c < g * g; c++, cell++) want[cell * FEATURES_V1.block + 8] = 1 / g / Math.sqrt(3);
    }
    for (let i = 0; i < 1701; i++) expect(v[i]!, `entry ${i}`).toBeCloseTo(want[i]!, 6);
  });

  it('puts the gradient of vertical stripes into orientation bin 0 (and horizontal stripes into bin 4)', async () => {
    const stripes = (vertical: boolean): RgbInput => {
      const data = new Uint8Array(64 * 64 * 3);
      for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) data.fill(((vertical ? x : y) >> 2) % 2 ? 255 : 0, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
      return { data, width: 64, height: 64 };
    };
    for (const [vertical, bin] of [
      [true, 0],
      [false, 4],
    ] as const) {
      const v = f.embedOne(stripes(vertical));
      // The whole-image cell's orientation block: all its weight in `bin` (gradient angle 0 or pi/2, bin centres (k + 0.5) * 20 deg:
      // angle 0 splits between bins 8 and 0 equally; pi/2 = 90 deg sits in bin 4 at its centre).
      const ori = Array.from(v.subarray(FEATURES_V1.colorBins, FEATURES_V1.block));
      const top = ori.indexOf(Math.max(...ori));
      if (vertical) {
        expect([0, 8]).toContain(top);
        expect(ori[0]!).toBeCloseTo(ori[8]!, 6);
      } else expect(top).toBe(bin);
      expect(ori.filter((x, i) => x > 1e-6 && ![0, 4, 8].includes(i))).toEqual([]);
    }
  });

  it('keeps re-encoded and resized copies close, different scenes apart; deterministic; unit rows', async () => {
    const a = scene(1);
    const b = scene(4);
    const jpeg = await sharp(Buffer.from(a.data), { raw: { width: a.width, height: a.height, channels: 3 } }).jpeg({ quality: 70 }).raw().toBuffer();
    const small = await sharp(Buffer.from(a.data), { raw: { width: a.width, height: a.height, channels: 3 } }).resize(72, 60).raw().toBuffer();
    const rows = await f.embedImages([a, { data: new Uint8Array(jpeg), width: a.width, height: a.height }, { data: new Uint8Array(small), width: 72, height: 60 }, b]);
    const row = (i: number) => rows.subarray(i * 1701, (i + 1) * 1701);
    for (let i = 0; i < 4; i++) expect(cos(row(i), row(i))).toBeCloseTo(1, 5);
    expect(cos(row(0), row(1))).toBeGreaterThan(0.95);
    expect(cos(row(0), row(2))).toBeGreaterThan(0.95);
    expect(cos(row(0), row(3))).toBeLessThan(0.9);
    const again = await f.embedImages([a]);
    expect(Array.from(again)).toEqual(Array.from(row(0)));
  });
});
