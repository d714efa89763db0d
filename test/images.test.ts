/**
 * ts/io/images.ts against oracles written here: pixels made by hand, encoded,
 * read back, and compared with what the hand computation says (rotations,
 * composites, 16-bit reduction).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32, deflateSync } from 'node:zlib';

import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';

import { DEFAULT_MAX_PIXELS, imageInfo, readImage } from '../ts/io/images.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-images-');

/** A W x H image where every pixel differs: any flip, rotation or transposition shows. */
function pattern(W: number, H: number, channels: 3 | 4): Uint8Array {
  const px = new Uint8Array(W * H * channels);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * channels;
      px[i] = 20 + Math.round((200 * x) / (W - 1));
      px[i + 1] = 30 + Math.round((180 * y) / (H - 1));
      px[i + 2] = (x * 7 + y * 13) % 256;
      if (channels === 4) px[i + 3] = (x * 31 + y * 17) % 256;
    }
  }
  return px;
}

/** EXIF 6 (viewer turns it 90° clockwise): out(x, y) = in(y, H − 1 − x); out is H x W. */
function rotate6(px: Uint8Array, W: number, H: number, c: number): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let y = 0; y < W; y++) for (let x = 0; x < H; x++) for (let k = 0; k < c; k++) out[(y * H + x) * c + k] = px[((H - 1 - x) * W + y) * c + k]!;
  return out;
}

/** EXIF 8 (viewer turns it 90° counter-clockwise): out(x, y) = in(W − 1 − y, x). */
function rotate8(px: Uint8Array, W: number, H: number, c: number): Uint8Array {
  const out = new Uint8Array(px.length);
  for (let y = 0; y < W; y++) for (let x = 0; x < H; x++) for (let k = 0; k < c; k++) out[(y * H + x) * c + k] = px[(x * W + (W - 1 - y)) * c + k]!;
  return out;
}

const raw = (px: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4) => sharp(px, { raw: { width, height, channels } });

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid PNG header that claims W x H RGB pixels, followed by a few rows of data: a decompression bomb's shape in 300 bytes. */
function claimedPng(W: number, H: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc((W * 3 + 1) * 4))), chunk('IEND', Buffer.alloc(0))]);
}

describe('readImage: orientation', () => {
  const W = 7;
  const H = 4;

  it('applies EXIF orientation 6 and 8 to a PNG: pixels and size in the displayed frame', async () => {
    const px = pattern(W, H, 3);
    for (const [orientation, rotate] of [[6, rotate6], [8, rotate8]] as const) {
      const png = await raw(px, W, H, 3).png().withMetadata({ orientation }).toBuffer();
      const img = await readImage(png);
      expect([img.width, img.height, img.channels]).toEqual([H, W, 3]);
      expect(Buffer.from(img.data).equals(Buffer.from(rotate(px, W, H, 3))), `orientation ${orientation}`).toBe(true);
    }
  });

  it('applies EXIF orientation 6 and 8 to a JPEG read from a file', async () => {
    const w = 32;
    const h = 16;
    const px = pattern(w, h, 3);
    for (const [orientation, rotate] of [[6, rotate6], [8, rotate8]] as const) {
      const file = tmp.fresh(`o${orientation}.jpg`);
      await raw(px, w, h, 3).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation }).toFile(file);
      const img = await readImage(file);
      expect([img.width, img.height]).toEqual([h, w]);
      // Exactly the stored pixels, turned by the rotation computed here...
      const stored = await sharp(file, { autoOrient: false }).raw().toBuffer();
      expect(Buffer.from(img.data).equals(Buffer.from(rotate(new Uint8Array(stored), w, h, 3)))).toBe(true);
      // ...which are the original's, turned, up to JPEG's loss.
      expect(maxDiff(img.data, rotate(px, w, h, 3))).toBeLessThanOrEqual(6);
      const info = await imageInfo(file);
      expect(info).toMatchObject({ width: h, height: w, orientation, format: 'jpeg', channels: 3, hasAlpha: false });
    }
  });
});

describe('readImage: formats', () => {
  const W = 6;
  const H = 5;

  it('reads plain 8-bit RGB and RGBA PNGs exactly (RGB drops alpha, RGBA keeps it)', async () => {
    const rgb = pattern(W, H, 3);
    const rgba = pattern(W, H, 4);
    const a = await readImage(await raw(rgb, W, H, 3).png().toBuffer());
    expect(Buffer.from(a.data).equals(Buffer.from(rgb))).toBe(true);
    const b = await readImage(await raw(rgba, W, H, 4).png().toBuffer());
    const under = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) under.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
    expect(Buffer.from(b.data).equals(Buffer.from(under))).toBe(true);
    const c = await readImage(await raw(rgba, W, H, 4).png().toBuffer(), { channels: 4 });
    expect(c.channels).toBe(4);
    expect(Buffer.from(c.data).equals(Buffer.from(rgba))).toBe(true);
    // RGBA from an RGB image: alpha 255.
    const d = await readImage(await raw(rgb, W, H, 3).png().toBuffer(), { channels: 4 });
    for (let i = 0; i < W * H; i++) {
      expect(Array.from(d.data.subarray(i * 4, i * 4 + 4))).toEqual([...rgb.subarray(i * 3, i * 3 + 3), 255]);
    }
  });

  it('reduces a 16-bit PNG (RGB and RGBA) to 8 bits: k·257 → k', async () => {
    const ks = Array.from({ length: W * H * 4 }, (_, i) => (i * 41 + 3) % 256);
    const rgb16 = await sharp(new Uint16Array(ks.slice(0, W * H * 3).map((k) => k * 257)), { raw: { width: W, height: H, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect(await imageInfo(rgb16)).toMatchObject({ depth: 'ushort', channels: 3 });
    expect(Array.from((await readImage(rgb16)).data)).toEqual(ks.slice(0, W * H * 3));
    const rgba16 = await sharp(new Uint16Array(ks.map((k) => k * 257)), { raw: { width: W, height: H, channels: 4 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect(Array.from((await readImage(rgba16, { channels: 4 })).data)).toEqual(ks);
  });

  it('expands greyscale and grey + alpha to R = G = B', async () => {
    const g = new Uint8Array(W * H).map((_, i) => (i * 9) % 256);
    const grey = await raw(g, W, H, 1).toColourspace('b-w').png().toBuffer();
    expect(await imageInfo(grey)).toMatchObject({ channels: 1, space: 'b-w' });
    const img = await readImage(grey);
    for (let i = 0; i < W * H; i++) expect(Array.from(img.data.subarray(i * 3, i * 3 + 3))).toEqual([g[i], g[i], g[i]]);
    const ga = new Uint8Array(W * H * 2).map((_, i) => (i * 23 + 5) % 256);
    const greyAlpha = await raw(ga, W, H, 2).toColourspace('b-w').png().toBuffer();
    expect(await imageInfo(greyAlpha)).toMatchObject({ channels: 2, hasAlpha: true });
    const rgba = await readImage(greyAlpha, { channels: 4 });
    for (let i = 0; i < W * H; i++) expect(Array.from(rgba.data.subarray(i * 4, i * 4 + 4))).toEqual([ga[2 * i], ga[2 * i], ga[2 * i], ga[2 * i + 1]]);
  });

  it('reads a palette PNG exactly', async () => {
    const colours = [[200, 30, 40], [10, 220, 90], [60, 70, 250], [255, 255, 0]];
    const px = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) px.set(colours[(i * 3 + Math.floor(i / W)) % 4]!, i * 3);
    const pal = await raw(px, W, H, 3).png({ palette: true }).toBuffer();
    expect((await sharp(pal).metadata()).isPalette).toBe(true);
    expect(Buffer.from((await readImage(pal)).data).equals(Buffer.from(px))).toBe(true);
  });

  it('converts a CMYK JPEG to sRGB close to the colours it was written from', async () => {
    const w = 16;
    const h = 16;
    const colours = [[180, 90, 60], [70, 140, 200], [120, 120, 120], [40, 160, 80]];
    const px = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(colours[(y >> 3) * 2 + (x >> 3)]!, (y * w + x) * 3);
    const cmyk = await raw(px, w, h, 3).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    expect(await imageInfo(cmyk)).toMatchObject({ space: 'cmyk', channels: 4, hasAlpha: false });
    const img = await readImage(cmyk);
    expect([img.width, img.height, img.channels]).toEqual([w, h, 3]);
    // Through a CMYK profile and back colours move a little (gamut, black generation), never far.
    expect(maxDiff(img.data, px)).toBeLessThanOrEqual(32);
    // Each patch keeps its dominant channel; grey stays grey.
    for (let k = 0; k < 4; k++) {
      const at = ((k >> 1) * 8 + 4) * w + (k & 1) * 8 + 4;
      const got = Array.from(img.data.subarray(at * 3, at * 3 + 3));
      const want = colours[k]!;
      if (want[0] === want[1]) expect(Math.max(...got) - Math.min(...got)).toBeLessThanOrEqual(4);
      else expect(got.indexOf(Math.max(...got))).toBe(want.indexOf(Math.max(...want)));
    }
  });

  it('composites alpha onto black or white: round(a·c + (1 − a)·bg)', async () => {
    const rgba = pattern(W, H, 4);
    const png = await raw(rgba, W, H, 4).png().toBuffer();
    for (const [background, bg] of [['black', 0], ['white', 255]] as const) {
      const want = new Uint8Array(W * H * 3);
      for (let i = 0; i < W * H; i++) {
        const a = rgba[i * 4 + 3]! / 255;
        for (let c = 0; c < 3; c++) want[i * 3 + c] = Math.round(a * rgba[i * 4 + c]! + (1 - a) * bg);
      }
      const img = await readImage(png, { background });
      expect(Buffer.from(img.data).equals(Buffer.from(want)), background).toBe(true);
    }
    // No alpha: the background changes nothing.
    const rgb = pattern(W, H, 3);
    expect(Buffer.from((await readImage(await raw(rgb, W, H, 3).png().toBuffer(), { background: 'white' })).data).equals(Buffer.from(rgb))).toBe(true);
  });

  it('takes raw pixels (grey expanded) and shrinks to maxSide keeping the aspect', async () => {
    const g = new Uint8Array(W * H).map((_, i) => i);
    const img = await readImage({ data: g, width: W, height: H, channels: 1 });
    expect(Array.from(img.data.subarray(3 * 7, 3 * 8))).toEqual([7, 7, 7]);
    const big = await raw(new Uint8Array(40 * 20 * 3).fill(77), 40, 20, 3).png().toBuffer();
    const small = await readImage(big, { maxSide: 10 });
    expect([small.width, small.height]).toEqual([10, 5]);
    expect(small.data.every((v) => v === 77)).toBe(true);
    const kept = await readImage(big, { maxSide: 100 });
    expect([kept.width, kept.height]).toEqual([40, 20]);
  });
});

describe('readImage: refusals', () => {
  it('refuses a header claiming more pixels than the limit, before decoding it', async () => {
    const bomb = tmp.fresh('bomb.png');
    await writeFile(bomb, claimedPng(20000, 20000));
    expect(await imageInfo(bomb)).toMatchObject({ width: 20000, height: 20000 });
    const log = tmp.fresh('bomb-decodes.log');
    process.env.GENAUG_DECODE_LOG = log;
    try {
      const t = performance.now();
      await expectError(readImage(bomb), 'E_LIMIT', bomb, '20000 x 20000', String(DEFAULT_MAX_PIXELS));
      await expectError(readImage(await readFile(bomb), { maxPixels: 1000 }), 'E_LIMIT', 'limit of 1000');
      expect(performance.now() - t).toBeLessThan(1000);
    } finally {
      delete process.env.GENAUG_DECODE_LOG;
    }
    expect(existsSync(log), 'nothing was decoded').toBe(false);
    // Raw pixels are held to the limit too.
    await expectError(readImage({ data: new Uint8Array(300), width: 10, height: 10, channels: 3 }, { maxPixels: 99 }), 'E_LIMIT', 'limit of 99');
  });

  it('refuses /dev/zero and a folder with E_IO, without hanging', async () => {
    if (existsSync('/dev/zero')) {
      await expectError(readImage('/dev/zero'), 'E_IO', '/dev/zero', 'not a regular file');
      await expectError(imageInfo('/dev/zero'), 'E_IO', '/dev/zero');
    }
    const dir = tmp.fresh('a-folder.png');
    await mkdir(dir);
    await expectError(readImage(dir), 'E_IO', dir, 'not a regular file');
  });

  it('gives E_IO naming a missing file, E_FORMAT naming a truncated or foreign one', async () => {
    const missing = tmp.fresh('missing.png');
    const e = await expectError(readImage(missing), 'E_IO', missing, 'does not exist');
    expect(e.detail).toMatchObject({ path: missing });
    await expectError(imageInfo(missing), 'E_IO', missing);
    const png = await raw(pattern(20, 20, 3), 20, 20, 3).png().toBuffer();
    const cutPng = tmp.fresh('cut.png');
    await writeFile(cutPng, png.subarray(0, 60));
    await expectError(readImage(cutPng), 'E_FORMAT', cutPng);
    const jpg = await raw(pattern(64, 64, 3), 64, 64, 3).jpeg().toBuffer();
    const cutJpg = tmp.fresh('cut.jpg');
    await writeFile(cutJpg, jpg.subarray(0, jpg.length - 300));
    await expectError(readImage(cutJpg), 'E_FORMAT', cutJpg);
    const text = tmp.fresh('notes.png');
    await writeFile(text, 'not an image at all');
    await expectError(readImage(text), 'E_FORMAT', text);
    await expectError(imageInfo(text), 'E_FORMAT', text);
  });
});

describe('decode trace (GENAUG_DECODE_LOG)', () => {
  afterEach(() => {
    delete process.env.GENAUG_DECODE_LOG;
  });

  it('appends one line per decode (absolute path or <buffer>); headers and raw pixels are not decodes', async () => {
    const a = tmp.fresh('a.png');
    const b = tmp.fresh('b.jpg');
    await raw(pattern(4, 4, 3), 4, 4, 3).png().toFile(a);
    await raw(pattern(8, 8, 3), 8, 8, 3).jpeg().toFile(b);
    const log = tmp.fresh('decodes.log');
    process.env.GENAUG_DECODE_LOG = log;
    await readImage(a);
    await readImage(a, { channels: 4 });
    await readImage(b);
    await readImage(await readFile(b));
    await imageInfo(a);
    await readImage({ data: new Uint8Array(12), width: 2, height: 2, channels: 3 });
    await readImage(tmp.fresh('absent.png')).catch(() => undefined);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toEqual([resolve(a), resolve(a), resolve(b), '<buffer>']);
  });

  it('traces decodes in worker threads too (dist/ build)', async () => {
    const dist = new URL('../dist/io/images.js', import.meta.url);
    if (!existsSync(dist)) return;
    const a = tmp.fresh('w.png');
    await raw(pattern(4, 4, 3), 4, 4, 3).png().toFile(a);
    const log = tmp.fresh('worker-decodes.log');
    const code = `import(${JSON.stringify(dist.href)}).then(async (m) => { await m.readImage(${JSON.stringify(a)}); await m.readImage(${JSON.stringify(a)}); })`;
    await new Promise<void>((res, rej) => {
      const w = new Worker(code, { eval: true, env: { ...process.env, GENAUG_DECODE_LOG: log } });
      w.on('error', rej);
      w.on('exit', (c) => (c === 0 ? res() : rej(new Error(`worker exited ${c}`))));
    });
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual([a, a]);
    await rm(log);
  });
});
