/**
 * SAM wiring with tiny models the test builds itself (test/onnx-builder.ts):
 * preprocessing, the (x, y) coordinate transform on non-square images, the
 * padding point, the mask choice rule, output at the original size, and the
 * load-time signature checks.
 */
import { writeFile } from 'node:fs/promises';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { readImage } from '../ts/io/images.js';
import { openSession, providerStatus } from '../ts/models/onnx.js';
import {
  SAM_ENCODER_INPUT_NAMES,
  SamModel,
  chooseMask,
  cornerPrompts,
  samResizeShape,
  samTransformPoints,
  type Point,
  type SamEmbedding,
} from '../ts/models/sam.js';
import { expectError, tempFolder } from './helpers.js';
import { samDecoder, samEncoder, type DecoderOptions } from './onnx-builder.js';

const tmp = tempFolder('genaug-sam-');

/** Writes a PNG from a per-pixel colour function. */
async function png(path: string, width: number, height: number, color: (x: number, y: number) => [number, number, number]): Promise<string> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(color(x, y), (y * width + x) * 3);
  }
  await sharp(data, { raw: { width, height, channels: 3 } }).png().toFile(path);
  return path;
}

/** The toy decoder's mask for `points` (x, y) of label 1: Chebyshev distance < radius, row-major H×W. */
function oracle(width: number, height: number, points: readonly Point[], radius: number): Uint8Array {
  const m = new Uint8Array(width * height);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      if (points.some(([x, y]) => Math.max(Math.abs(c - x), Math.abs(r - y)) < radius)) m[r * width + c] = 1;
    }
  }
  return m;
}

function area(m: Uint8Array): number {
  return m.reduce((s, v) => s + v, 0);
}

const W = 300; // a wide, non-square image: (row, col) corners would land elsewhere
const H = 120;
const CORNERS_XY: Point[] = [
  [0, 0],
  [W - 1, 0],
  [0, H - 1],
  [W - 1, H - 1],
];

let encoderPath = '';
let imagePath = '';

async function decoder(name: string, opts: DecoderOptions = {}): Promise<string> {
  return samDecoder(opts).write(tmp.fresh(`${name}.onnx`));
}

async function load(dec: DecoderOptions = {}): Promise<SamModel> {
  return SamModel.load({ encoder: encoderPath, decoder: await decoder('dec', dec), threads: 1 });
}

beforeAll(async () => {
  encoderPath = await samEncoder().write(tmp.fresh('encoder.onnx'));
  imagePath = await png(tmp.fresh('wide.png'), W, H, () => [200, 100, 50]);
});

describe('SAM coordinate transform', () => {
  it('resizes the long side to 1024, rounding the short side half up (get_preprocess_shape)', () => {
    expect(samResizeShape(300, 120)).toEqual({ width: 1024, height: 410 }); // 409.6 -> 410
    expect(samResizeShape(120, 300)).toEqual({ width: 410, height: 1024 });
    expect(samResizeShape(50, 50)).toEqual({ width: 1024, height: 1024 });
    expect(samResizeShape(2048, 1000)).toEqual({ width: 1024, height: 500 });
  });

  it('maps (x, y) with the per-axis factors of apply_coords', () => {
    const t = samTransformPoints(CORNERS_XY, W, H);
    const fx = 1024 / 300;
    const fy = 410 / 120;
    const want = [0, 0, 299 * fx, 0, 0, 119 * fy, 299 * fx, 119 * fy];
    expect(Array.from(t).map((v, i) => Math.abs(v - (want[i] as number)))).toSatisfy((d: number[]) => d.every((x) => x < 1e-3));
    // x is the column: the far-right corner is near 1024 on x, the bottom row near 410 on y.
    expect(t[2]).toBeGreaterThan(1019);
    expect(t[5]).toBeLessThan(410);
  });

  it('corner prompts are (x, y) for any aspect ratio', () => {
    expect(cornerPrompts(W, H)).toEqual({ points: CORNERS_XY, labels: [1, 1, 1, 1] });
  });
});

describe('SAM encoder input', () => {
  it('normalises with SAM mean/std and pads bottom/right with zeros (wide and tall images)', async () => {
    const sam = await load();
    try {
      expect(sam.encoderNames).toEqual({ input: 'image', output: 'image_embeddings' });
      const norm = [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12, (50 - 103.53) / 57.375];
      // The toy encoder: 16x16 average pooling; embedding channel c = image channel c % 3.
      const at = (e: SamEmbedding, c: number, row: number, col: number): number => e.embeddings[(c * 64 + row) * 64 + col] as number;

      const wide = await sam.embed(imagePath); // resized to 1024 x 410: rows 410.. are padding
      expect(wide.embeddings.length).toBe(256 * 64 * 64);
      expect([wide.width, wide.height]).toEqual([W, H]);
      for (let c = 0; c < 3; c++) {
        expect(at(wide, c, 0, 0)).toBeCloseTo(norm[c] as number, 4);
        expect(at(wide, c + 3, 24, 63)).toBeCloseTo(norm[c] as number, 4);
        expect(at(wide, c, 25, 10)).toBeCloseTo(((norm[c] as number) * 10) / 16, 4); // rows 400..409 of 400..415
        expect(at(wide, c, 26, 10)).toBe(0);
        expect(at(wide, c, 63, 63)).toBe(0);
      }

      const tall = await sam.embed(await png(tmp.fresh('tall.png'), H, W, () => [200, 100, 50]));
      expect([tall.width, tall.height]).toEqual([H, W]);
      for (let c = 0; c < 3; c++) {
        expect(at(tall, c, 63, 24)).toBeCloseTo(norm[c] as number, 4);
        expect(at(tall, c, 10, 25)).toBeCloseTo(((norm[c] as number) * 10) / 16, 4);
        expect(at(tall, c, 10, 26)).toBe(0);
      }

      // Raw pixels and grayscale images go through the same path.
      const raw = await sam.embed({ data: new Uint8Array(W * H * 3).fill(128), width: W, height: H, channels: 3 });
      expect(at(raw, 0, 0, 0)).toBeCloseTo((128 - 123.675) / 58.395, 4);
      const grayPath = tmp.fresh('gray.png');
      await sharp(Buffer.alloc(40 * 30, 128), { raw: { width: 40, height: 30, channels: 1 } }).png().toFile(grayPath);
      const gray = await sam.embed(grayPath);
      expect(at(gray, 1, 0, 0)).toBeCloseTo((128 - 116.28) / 57.12, 4);
    } finally {
      await sam.release();
    }
  });
});

describe('image decoding for the models', () => {
  it('reduces 16-bit, grayscale(+alpha) and CMYK inputs to 8-bit RGB', async () => {
    const rgb16 = await sharp(new Uint16Array(4 * 3 * 3).fill(40000), { raw: { width: 4, height: 3, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(rgb16).metadata()).depth).toBe('ushort');
    const a = await readImage(rgb16);
    expect([a.width, a.height, a.data.length]).toEqual([4, 3, 36]);
    expect(Array.from(a.data.slice(0, 3))).toEqual([156, 156, 156]); // 40000 / 65535 * 255
    const grey16 = await sharp(new Uint16Array(12).fill(40000), { raw: { width: 4, height: 3, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
    expect(Array.from((await readImage(grey16)).data.slice(0, 3))).toEqual([156, 156, 156]);
    const greyAlpha = await sharp(Buffer.alloc(4 * 3 * 2, 100), { raw: { width: 4, height: 3, channels: 2 } }).png().toBuffer();
    expect(Array.from((await readImage(greyAlpha)).data.slice(0, 3))).toEqual([100, 100, 100]);
    const cmyk = await sharp(Buffer.alloc(4 * 3 * 3, 100), { raw: { width: 4, height: 3, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const c = await readImage(cmyk);
    expect(c.data.length).toBe(36);
    for (const v of c.data.slice(0, 3)) expect(Math.abs(v - 100)).toBeLessThan(16);
  });
});

describe('SAM-background', () => {
  let emb: SamEmbedding;
  beforeAll(async () => {
    const sam = await load();
    emb = await sam.embed(imagePath);
    await sam.release();
  });

  it('prompts the four (x, y) corners of a non-square image; masks come back at the original size', async () => {
    const sam = await load({ radii: [5.5, 10.5, 20.5] });
    try {
      const r = await sam.segmentBackground(emb);
      expect([r.width, r.height]).toEqual([W, H]);
      expect(r.background.length).toBe(W * H);
      expect(r.candidates).toEqual([0, 1, 2]);
      expect(r.areas).toEqual([4 * 6 * 6, 4 * 11 * 11, 4 * 21 * 21]);
      expect(r.chosen).toBe(2); // all scores 0.9 >= 0.5: the largest
      expect(r.fallback).toBe(false);
      expect(r.scores.map((s) => Math.round(s * 100) / 100)).toEqual([0.9, 0.9, 0.9]);
      const want = oracle(W, H, CORNERS_XY, 20.5);
      expect(Buffer.from(r.background).equals(Buffer.from(want))).toBe(true);
      // The check above discriminates: (row, col) corners, the reference script's bug, give another mask.
      const swapped: Point[] = [
        [0, 0],
        [0, W - 1],
        [H - 1, 0],
        [H - 1, W - 1],
      ];
      expect(Buffer.from(oracle(W, H, swapped, 20.5)).equals(Buffer.from(want))).toBe(false);
      // Same answer straight from the file (embeds, then decodes).
      const direct = await sam.segmentBackground(imagePath);
      expect(Buffer.from(direct.background).equals(Buffer.from(want))).toBe(true);
    } finally {
      await sam.release();
    }
  });

  it('chooses the largest mask whose predicted IoU passes the floor', async () => {
    const cases: Array<{ scores: number[]; radii?: number[]; chosen: number; fallback: boolean }> = [
      { scores: [0.9, 0.3, 0.6], chosen: 2, fallback: false },
      { scores: [0.9, 0.6, 0.3], chosen: 1, fallback: false },
      { scores: [0.9, 0.3, 0.4], chosen: 0, fallback: false },
      // by area, not by index: the first mask is the largest here
      { scores: [0.9, 0.9, 0.9], radii: [30.5, 5.5, 10.5], chosen: 0, fallback: false },
      // none passes: the highest score
      { scores: [0.2, 0.4, 0.1], chosen: 1, fallback: true },
    ];
    for (const c of cases) {
      const sam = await load({ scores: c.scores, radii: c.radii ?? [5.5, 10.5, 20.5] });
      try {
        const r = await sam.segmentBackground(emb);
        expect({ chosen: r.chosen, fallback: r.fallback }, JSON.stringify(c)).toEqual({ chosen: c.chosen, fallback: c.fallback });
        const radius = (c.radii ?? [5.5, 10.5, 20.5])[c.chosen] as number;
        expect(Buffer.from(r.background).equals(Buffer.from(oracle(W, H, CORNERS_XY, radius)))).toBe(true);
      } finally {
        await sam.release();
      }
    }
  });

  it('honours the floor, highest-score and fixed-index choices', async () => {
    const sam = await load({ scores: [0.9, 0.3, 0.6] });
    try {
      expect((await sam.segmentBackground(emb, { scoreFloor: 0.8 })).chosen).toBe(0);
      expect((await sam.segmentBackground(emb, { scoreFloor: 0.2 })).chosen).toBe(2);
      expect((await sam.segmentBackground(emb, { choice: 'highest-score' })).chosen).toBe(0);
      expect((await sam.segmentBackground(emb, { choice: { index: 1 } })).chosen).toBe(1);
      await expectError(sam.segmentBackground(emb, { choice: { index: 3 } }), 'E_RANGE', 'choice.index');
    } finally {
      await sam.release();
    }
  });

  it('with the default 4-mask export, chooses among the multimask channels 1..3 only', async () => {
    const sam = await load({ radii: [40.5, 5.5, 10.5, 20.5], scores: [0.99, 0.9, 0.9, 0.9] });
    try {
      expect(sam.numMasks).toBe(4);
      const r = await sam.segmentBackground(emb);
      expect(r.candidates).toEqual([1, 2, 3]);
      expect(r.areas.length).toBe(4);
      expect(r.chosen).toBe(3);
    } finally {
      await sam.release();
    }
  });

  it('chooseMask breaks ties by score, then by the lower channel', () => {
    expect(chooseMask([0.6, 0.7, 0.7], [10, 10, 10], [0, 1, 2])).toEqual({ index: 1, fallback: false });
    expect(chooseMask([0.1, 0.1], [5, 9], [0, 1])).toEqual({ index: 0, fallback: true });
  });
});

describe('SAM point prompts', () => {
  it('passes (x, y) points and their labels; the padding point (label -1) adds no mask', async () => {
    const sam = await load({ radii: [3.5, 8.5, 12.5] });
    try {
      const emb = await sam.embed(imagePath);
      const r = await sam.segmentPoints(emb, [[250, 30], [20, 100]], [1, 0]);
      expect(r.masks.length).toBe(3);
      expect(r.multimask).toEqual([0, 1, 2]);
      for (const [k, radius] of [3.5, 8.5, 12.5].entries()) {
        const want = oracle(W, H, [[250, 30]], radius);
        expect(Buffer.from(r.masks[k] as Uint8Array).equals(Buffer.from(want)), `mask ${k}`).toBe(true);
        expect(r.areas[k]).toBe(area(want));
      }
      // The negative point at (20, 100) and the padding point at (0, 0) are not foreground:
      expect(r.masks[2]?.[100 * W + 20]).toBe(0);
      expect(r.masks[2]?.[0]).toBe(0);
    } finally {
      await sam.release();
    }
  });

  it('rejects bad prompts with clear errors', async () => {
    const sam = await load();
    try {
      const emb = await sam.embed(imagePath);
      await expectError(sam.segmentPoints(emb, [[299, 200]], [1]), 'E_RANGE', 'outside the 300 x 120 image');
      await expectError(sam.segmentPoints(emb, [[10, 10]], [5]), 'E_RANGE', 'label 0');
      await expectError(sam.segmentPoints(emb, [[10, 10]], [1, 1]), 'E_SHAPE', '1 points but 2 labels');
      await expectError(sam.segmentPoints(emb, [], []), 'E_SHAPE', 'at least one point');
      await expectError(sam.segmentPoints(emb, [[Number.NaN, 1]], [1]), 'E_RANGE', 'point 0 x');
    } finally {
      await sam.release();
    }
  });

  it('a decoder exported with a fixed number of points says so', async () => {
    const sam = await load({ pointCoordsDims: [1, 5, 2] });
    try {
      expect(sam.fixedPoints).toBe(5);
      const emb = await sam.embed(imagePath);
      expect((await sam.segmentBackground(emb)).chosen).toBe(2); // 4 corners + padding = 5
      await expectError(sam.segmentPoints(emb, [[10, 10]], [1]), 'E_SHAPE', 'fixed number of points (5)', 'num_points');
    } finally {
      await sam.release();
    }
  });
});

describe('SAM model loading', () => {
  it('lists every decoder mismatch with what was expected', async () => {
    const dec = await decoder('bad', {
      rename: { point_labels: 'labels' },
      pointCoordsDims: [1, 'n', 2, 1],
      omitOutputs: ['iou_predictions'],
    });
    const e = await expectError(
      SamModel.load({ encoder: encoderPath, decoder: dec }),
      'E_MODEL',
      "missing input 'point_labels' (expected float32 [1, ?])",
      "input 'point_coords' has rank 4",
      'expected rank 3 [1, ?, 2]',
      "unexpected input 'labels' (float32 [1, num_points])",
      "missing output 'iou_predictions'",
      dec,
    );
    expect(e.message).toContain('4 mismatches');
  });

  it('reports element types and static dims', async () => {
    const dec = await decoder('uint8', { masksElem: 'uint8' });
    await expectError(SamModel.load({ encoder: encoderPath, decoder: dec }), 'E_MODEL', "output 'masks' has element type uint8, expected float32");
    const enc = await samEncoder({ inputDims: [1, 3, 512, 512], outputDims: [1, 256, 32, 32] }).write(tmp.fresh('enc512.onnx'));
    await expectError(
      SamModel.load({ encoder: enc, decoder: await decoder('ok') }),
      'E_MODEL',
      "input 'image' has dim 2 = 512",
      'expected 1024 [1, 3, 1024, 1024]',
      "output 'image_embeddings' has dim 2 = 32",
    );
  });

  it('accepts the common encoder names, says which it found, and takes others by option', async () => {
    const dec = await decoder('ok');
    const alt = await samEncoder({ inputName: 'input_image', outputName: 'embeddings' }).write(tmp.fresh('enc-alt.onnx'));
    const sam = await SamModel.load({ encoder: alt, decoder: dec });
    expect(sam.encoderNames).toEqual({ input: 'input_image', output: 'embeddings' });
    await sam.release();

    const odd = await samEncoder({ inputName: 'pixels', outputName: 'feats' }).write(tmp.fresh('enc-odd.onnx'));
    const e = await expectError(SamModel.load({ encoder: odd, decoder: dec }), 'E_MODEL', "missing input one of 'image', 'input_image'", 'encoderInput');
    for (const n of SAM_ENCODER_INPUT_NAMES) expect(e.message).toContain(`'${n}'`);
    const named = await SamModel.load({ encoder: odd, decoder: dec, encoderInput: 'pixels', encoderOutput: 'feats' });
    expect(named.encoderNames).toEqual({ input: 'pixels', output: 'feats' });
    expect((await named.embed(imagePath)).embeddings.length).toBe(256 * 64 * 64);
    await named.release();
  });

  it('missing model file → E_IO naming it; not an ONNX model → E_MODEL', async () => {
    const missing = tmp.fresh('nothere.onnx');
    await expectError(SamModel.load({ encoder: missing, decoder: await decoder('ok') }), 'E_IO', missing, 'does not exist');
    const junk = tmp.fresh('junk.onnx');
    await writeFile(junk, 'this is not a protobuf at all \u0000\u0001\u0002');
    await expectError(SamModel.load({ encoder: encoderPath, decoder: junk }), 'E_MODEL', junk, 'not a valid ONNX model');
    await expectError(openSession(tmp.dir(), 'model'), 'E_IO', 'not a file');
  });

  it("provider 'cuda' without onnxruntime's CUDA provider → E_CUDA_UNAVAILABLE, no CPU fallback", async () => {
    const st = providerStatus('cuda');
    if (st.usable) return; // a machine with the CUDA provider installed
    await expectError(
      SamModel.load({ encoder: encoderPath, decoder: await decoder('ok'), provider: 'cuda' }),
      'E_CUDA_UNAVAILABLE',
      "provider 'cuda' was requested",
    );
  });

  it('corrupt, truncated or missing images → E_FORMAT / E_IO with the path, never a crash', async () => {
    const sam = await load();
    try {
      const good = await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
      const truncated = tmp.fresh('truncated.png');
      await writeFile(truncated, good.subarray(0, Math.floor(good.length / 2)));
      await expectError(sam.embed(truncated), 'E_FORMAT', truncated);
      const garbage = tmp.fresh('garbage.jpg');
      await writeFile(garbage, Buffer.from('definitely not a JPEG'));
      await expectError(sam.segmentBackground(garbage), 'E_FORMAT', garbage);
      const empty = tmp.fresh('empty.png');
      await writeFile(empty, Buffer.alloc(0));
      await expectError(sam.embed(empty), 'E_FORMAT', empty);
      const missing = tmp.fresh('missing.png');
      await expectError(sam.embed(missing), 'E_IO', missing, 'does not exist');
      await expectError(sam.embed({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }), 'E_SHAPE', '4 x 4 x 3 = 48');
      // Still usable afterwards.
      expect((await sam.segmentBackground(imagePath)).chosen).toBe(2);
    } finally {
      await sam.release();
    }
  });

  it('applies a pixel limit with a clear error', async () => {
    const big = await png(tmp.fresh('big.png'), 200, 200, () => [1, 2, 3]);
    const sam = await SamModel.load({ encoder: encoderPath, decoder: await decoder('ok'), maxPixels: 10_000 });
    try {
      await expectError(sam.embed(big), 'E_LIMIT', big, '10000');
    } finally {
      await sam.release();
    }
  });
});
