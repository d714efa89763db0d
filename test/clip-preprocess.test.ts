/**
 * The CLIP image preprocessing: PIL's resize byte for byte against outputs
 * Pillow made (test/fixtures/pil-resize.json, see make_pil_resize.py there),
 * an independent double-precision separable resampler written here (within
 * one level of rounding), HF's resize-size and centre-crop rules by hand, and
 * the whole pipeline against the float32 tensor the Python steps produced.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  centerCrop,
  clipPreprocess,
  OPENAI_CLIP_PREPROCESS,
  outputSize,
  parsePreprocessorConfig,
  pilResize,
  pilResizeReference,
  resizeOutputSize,
  type ResampleFilter,
} from '../ts/models/clip-preprocess.js';
import type { RgbInput } from '../ts/models/types.js';
import { makeImage } from './clip-helpers.js';
import { expectCode } from './helpers.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'pil-resize.json'), 'utf8')) as {
  resize: Array<{ width: number; height: number; seed: number; outWidth: number; outHeight: number; filter: ResampleFilter; rgb: string }>;
  pipeline: Array<{ width: number; height: number; seed: number; shortestEdge: number; crop: number; chw: string }>;
};

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** Keys' bicubic (a = -0.5), written from the formula. */
function cubic(x: number): number {
  const a = Math.abs(x);
  if (a < 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

/**
 * An independent float reference of an antialiased separable resize: output
 * pixel centre (i + 0.5) * scale, kernel stretched by max(scale, 1), taps over
 * the source pixels whose centres fall in the support, normalised to sum 1;
 * horizontal then vertical, rounding to uint8 in between as PIL does.
 */
function floatResize(img: RgbInput, ow: number, oh: number): Uint8Array {
  const axis = (inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    const fs = Math.max(scale, 1);
    return Array.from({ length: outSize }, (_, i) => {
      const c = (i + 0.5) * scale;
      const taps: Array<[number, number]> = [];
      for (let j = 0; j < inSize; j++) {
        const w = cubic((j + 0.5 - c) / fs);
        if (w !== 0 && Math.abs(j + 0.5 - c) < 2 * fs + 0.5) taps.push([j, w]);
      }
      const sum = taps.reduce((s, t) => s + t[1], 0);
      return taps.map(([j, w]) => [j, w / sum] as [number, number]);
    });
  };
  const round = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  const hx = axis(img.width, ow);
  const tmp = new Uint8Array(ow * img.height * 3);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < 3; c++) tmp[(y * ow + x) * 3 + c] = round(hx[x]!.reduce((s, [j, w]) => s + w * img.data[(y * img.width + j) * 3 + c]!, 0));
    }
  }
  const vy = axis(img.height, oh);
  const out = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < 3; c++) out[(y * ow + x) * 3 + c] = round(vy[y]!.reduce((s, [j, w]) => s + w * tmp[(j * ow + x) * 3 + c]!, 0));
    }
  }
  return out;
}

describe('pilResize', () => {
  it('is byte-identical to Pillow for every fixture case (bicubic down/up, one axis, other filters)', () => {
    expect(fixture.resize.length).toBe(10);
    for (const c of fixture.resize) {
      const img = makeImage(c.width, c.height, c.seed);
      const r = pilResize(img, c.outWidth, c.outHeight, c.filter);
      expect([r.width, r.height]).toEqual([c.outWidth, c.outHeight]);
      const want = b64(c.rgb);
      let diff = 0;
      for (let i = 0; i < want.length; i++) if (want[i] !== r.data[i]) diff++;
      expect(diff, `${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight} ${c.filter}`).toBe(0);
    }
  });

  it('agrees with an independent float bicubic within one level', () => {
    for (const [w, h, ow, oh] of [
      [60, 40, 24, 16],
      [13, 9, 40, 27],
      [97, 61, 36, 22],
      [300, 7, 21, 7],
    ] as const) {
      const img = makeImage(w, h, 5);
      const got = pilResize(img, ow, oh).data;
      const ref = floatResize(img, ow, oh);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
      expect(maxDiff, `${w}x${h} -> ${ow}x${oh}`).toBeLessThanOrEqual(1);
    }
  });

  it('computes a window of the output with the same bytes as cropping the full resize', () => {
    for (const [w, h, ow, oh] of [
      [60, 40, 24, 16],
      [13, 9, 40, 27],
      [50, 50, 50, 17],
      [50, 30, 19, 30],
      [20, 20, 20, 20],
    ] as const) {
      const img = makeImage(w, h, 4);
      const full = pilResize(img, ow, oh);
      for (const win of [
        { left: 0, top: 0, width: ow, height: oh },
        { left: 1, top: 2, width: ow - 3, height: oh - 4 },
        { left: ow - 5, top: oh - 3, width: 5, height: 3 },
      ]) {
        const part = pilResize(img, ow, oh, 'bicubic', win);
        expect([part.width, part.height]).toEqual([win.width, win.height]);
        for (let y = 0; y < win.height; y++) {
          const want = full.data.subarray(((y + win.top) * ow + win.left) * 3, ((y + win.top) * ow + win.left + win.width) * 3);
          expect(Array.from(part.data.subarray(y * win.width * 3, (y + 1) * win.width * 3))).toEqual(Array.from(want));
        }
      }
    }
    expect(() => pilResize(makeImage(4, 4, 1), 8, 8, 'bicubic', { left: 4, top: 0, width: 5, height: 1 })).toThrow(/window/);
  });

  it('returns a copy for the same size and rejects bad images', async () => {
    const img = makeImage(7, 5, 1);
    const r = pilResize(img, 7, 5);
    expect(r.data).toEqual(img.data);
    expect(r.data).not.toBe(img.data);
    await expectCode(() => pilResize({ data: new Uint8Array(10), width: 2, height: 2 }, 1, 1), 'E_SHAPE', /12/);
  });
});

describe('CLIP resize and crop rules', () => {
  it('scales the shortest edge and truncates the long side (get_resize_output_image_size)', () => {
    const cfg = OPENAI_CLIP_PREPROCESS;
    expect(resizeOutputSize(480, 640, cfg)).toEqual([224, 298]); // 224 * 640 / 480 = 298.67
    expect(resizeOutputSize(640, 480, cfg)).toEqual([298, 224]);
    expect(resizeOutputSize(100, 100, cfg)).toEqual([224, 224]);
    expect(resizeOutputSize(3, 1000, cfg)).toEqual([224, 74666]);
    const fixed = parsePreprocessorConfig({ size: { height: 10, width: 12 } });
    expect(resizeOutputSize(480, 640, fixed)).toEqual([10, 12]);
  });

  it('crops at floor((h - ch) / 2) and zero-pads a smaller image centred with ceil', () => {
    const img = makeImage(7, 6, 3);
    const c = centerCrop(img, 3, 4); // top = 1, left = 1
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        for (let k = 0; k < 3; k++) expect(c.data[(y * 4 + x) * 3 + k]).toBe(img.data[((y + 1) * 7 + x + 1) * 3 + k]);
      }
    }
    // A 3 x 2 image cropped to 4 x 5 (w x h) is padded to 4 x 5.
    const small = { data: new Uint8Array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]), width: 3, height: 2 };
    const p = centerCrop(small, 5, 4);
    expect([p.width, p.height]).toEqual([4, 5]);
    // top = (2 - 5) // 2 = -2, top_pad = ceil(3 / 2) = 2 -> rows 2..3 hold the image; left = (3 - 4) // 2 = -1, left_pad = 1 -> cols 1..3
    const at = (x: number, y: number) => p.data[(y * 4 + x) * 3];
    expect([at(0, 2), at(1, 2), at(2, 2), at(3, 2)]).toEqual([0, 1, 2, 3]);
    expect([at(1, 3), at(3, 3), at(1, 1), at(1, 4)]).toEqual([4, 6, 0, 0]);
  });

  it('reads preprocessor_config.json (int sizes, defaults) and names a bad field', async () => {
    const cfg = parsePreprocessorConfig({ size: 336, crop_size: 336, resample: 3, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
    expect(cfg.size).toEqual({ shortestEdge: 336 });
    expect(outputSize(cfg)).toEqual({ height: 336, width: 336 });
    expect(outputSize(parsePreprocessorConfig({ do_center_crop: false }))).toBeUndefined();
    await expectCode(() => parsePreprocessorConfig({ resample: 0 }, 'p.json'), 'E_MODEL', /p\.json.*resample/);
    await expectCode(() => parsePreprocessorConfig({ image_std: [1, 0, 1] }), 'E_MODEL', /image_std/);
    await expectCode(() => parsePreprocessorConfig({ size: { foo: 1 } }), 'E_MODEL', /size/);
  });
});

describe('clipPreprocess', () => {
  it('matches the float32 tensor of the Python CLIPImageProcessor steps bit for bit', () => {
    const cfg = parsePreprocessorConfig({
      size: { shortest_edge: 20 },
      crop_size: { height: 16, width: 16 },
      image_mean: [0.48145466, 0.4578275, 0.40821073],
      image_std: [0.26862954, 0.26130258, 0.27577711],
      rescale_factor: 0.00392156862745098,
    });
    for (const c of fixture.pipeline) {
      const got = clipPreprocess(makeImage(c.width, c.height, c.seed), cfg);
      const b = b64(c.chw);
      const want = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      expect(got.length).toBe(3 * 16 * 16);
      expect(Array.from(got)).toEqual(Array.from(want));
    }
  });

  it('is a plain resize + crop + (v / 255 - mean) / std, CHW, written at an offset', () => {
    const cfg = parsePreprocessorConfig({ size: { height: 8, width: 8 }, crop_size: 6, image_mean: [0.1, 0.2, 0.3], image_std: [0.5, 0.25, 2] });
    const img = makeImage(20, 13, 9);
    const resized = pilResize(img, 8, 8);
    const out = new Float32Array(5 + 3 * 36);
    clipPreprocess(img, cfg, out, 5);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 6; x++) {
          const v = resized.data[((y + 1) * 8 + x + 1) * 3 + c]!;
          const want = (v / 255 - cfg.imageMean[c]!) / cfg.imageStd[c]!;
          expect(out[5 + c * 36 + y * 6 + x]).toBeCloseTo(want, 5);
        }
      }
    }
    expect(Array.from(out.subarray(0, 5))).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('native resize (the pixel loops of pilResize and clipPreprocess)', () => {
  const filters: ResampleFilter[] = ['bicubic', 'bilinear', 'lanczos', 'box', 'hamming'];

  it('gives the bytes of the TypeScript reference for every filter, up- and downscaling, whole and windowed', () => {
    const cases: Array<[number, number, number, number]> = [
      [37, 23, 11, 17], [160, 120, 75, 56], [13, 9, 50, 31], [64, 64, 64, 30], [40, 70, 17, 70], [1, 5, 3, 2], [90, 7, 56, 56],
    ];
    let seed = 11;
    for (const filter of filters) {
      for (const [w, h, ow, oh] of cases) {
        const img = makeImage(w, h, seed++);
        expect(pilResize(img, ow, oh, filter).data).toEqual(pilResizeReference(img, ow, oh, filter).data);
        const win = { left: Math.floor(ow / 3), top: Math.floor(oh / 4), width: Math.max(1, Math.floor(ow / 2)), height: Math.max(1, Math.floor(oh / 2)) };
        expect(pilResize(img, ow, oh, filter, win)).toEqual(pilResizeReference(img, ow, oh, filter, win));
      }
    }
  });

  it('clipPreprocess (resize of the crop window, normalise, CHW in one native call) equals the reference steps', () => {
    // OpenAI's processor at 32 px (the same code path as 224, smaller images).
    const cfg = parsePreprocessorConfig({ image_mean: OPENAI_CLIP_PREPROCESS.imageMean, image_std: OPENAI_CLIP_PREPROCESS.imageStd, size: { shortest_edge: 32 }, crop_size: 32, resample: 3 });
    const S = 32;
    for (const [w, h] of [[80, 60], [33, 140], [32, 32], [70, 32], [45, 37], [20, 50]] as const) {
      const img = makeImage(w, h, w + h);
      const [rh, rw] = resizeOutputSize(h, w, cfg);
      const crop = centerCrop(pilResizeReference(img, rw, rh, cfg.resample), S, S);
      const want = new Float32Array(3 * S * S);
      const f = Math.fround;
      for (let i = 0; i < S * S; i++) {
        for (let c = 0; c < 3; c++) {
          const x = f(crop.data[3 * i + c]! * cfg.rescaleFactor);
          want[c * S * S + i] = f(f(x - f(cfg.imageMean[c]!)) / f(cfg.imageStd[c]!));
        }
      }
      const out = new Float32Array(2 + 3 * S * S);
      clipPreprocess(img, cfg, out, 2);
      expect(Buffer.from(out.buffer, 8)).toEqual(Buffer.from(want.buffer));
    }
  });

  it('rejects tables and windows that do not fit, with a code, instead of reading outside the image', async () => {
    const img = makeImage(8, 8, 1);
    await expectCode(() => pilResize(img, 4, 4, 'bicubic', { left: 2, top: 0, width: 3, height: 4 }), 'E_RANGE', /window/);
    const { native } = await import('../ts/native/load.js');
    const bad = { ksize: 2, outSize: 2, bounds: Int32Array.from([0, 2, 7, 2]), fixed: Int32Array.from([1 << 21, 1 << 21, 1 << 21, 1 << 21]) };
    await expectCode(() => native().pilResizeRgbSync(img.data, 8, 8, bad, null, 0, 0, 2, 8), 'E_RANGE', /taps \[7, 9\)/);
    await expectCode(() => native().pilResizeRgbSync(img.data.subarray(1), 8, 8, null, null, 0, 0, 8, 8), 'E_SHAPE', /bytes/);
  });
});
