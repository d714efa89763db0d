/**
 * The generic ONNX foreground segmenter with a tiny model built here: its
 * foreground is where the normalised red channel is > 0, so the test knows
 * exactly which pixels each image should give.
 */
import { writeFile } from 'node:fs/promises';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { resizeBilinear } from '../ts/models/onnx.js';
import { Segmenter } from '../ts/models/segmenter.js';
import { expectError, tempFolder } from './helpers.js';
import { GraphBuilder, segmenterModel, type SegmenterModelOptions } from './onnx-builder.js';

const tmp = tempFolder('genaug-seg-');

/** A PNG whose left `split` columns are white and the rest black. */
async function halves(width: number, height: number, split: number): Promise<string> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < split; x++) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  const path = tmp.fresh(`halves-${width}x${height}.png`);
  await sharp(data, { raw: { width, height, channels: 3 } }).png().toFile(path);
  return path;
}

function leftMask(width: number, height: number, split: number): Uint8Array {
  const m = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) m.fill(1, y * width, y * width + split);
  return m;
}

async function model(o: SegmenterModelOptions): Promise<string> {
  return segmenterModel(o).write(tmp.fresh('seg.onnx'));
}

describe('Segmenter', () => {
  it('reads the input size from the model, and returns a mask at the image size', async () => {
    const seg = await Segmenter.load({ model: await model({ width: 64, height: 48 }), threads: 1 });
    try {
      expect([seg.inputWidth, seg.inputHeight, seg.inputName, seg.outputName]).toEqual([64, 48, 'input', 'output']);
      const same = await seg.segment(await halves(64, 48, 32));
      expect([same.width, same.height, same.area]).toEqual([64, 48, 32 * 48]);
      expect(Buffer.from(same.mask).equals(Buffer.from(leftMask(64, 48, 32)))).toBe(true);

      // Twice the model size: resized down with sharp, the map resized back up bilinearly.
      const big = await seg.segment(await halves(128, 96, 64));
      expect([big.width, big.height]).toEqual([128, 96]);
      expect(big.probability.length).toBe(128 * 96);
      expect(Buffer.from(big.mask).equals(Buffer.from(leftMask(128, 96, 64)))).toBe(true);

      // A non-proportional image is stretched to the model's input (as U²-Net/ISNet are used).
      const odd = await seg.segment(await halves(50, 90, 25));
      expect([odd.width, odd.height]).toEqual([50, 90]);
      expect(odd.mask[45 * 50 + 10]).toBe(1);
      expect(odd.mask[45 * 50 + 40]).toBe(0);
    } finally {
      await seg.release();
    }
  });

  it('logit outputs go through a sigmoid; a low-resolution map is resized back bilinearly', async () => {
    const path = await model({ width: 64, height: 48, kind: 'logits', outputStride: 2 });
    const seg = await Segmenter.load({ model: path, output: 'logits' });
    try {
      const r = await seg.segment(await halves(64, 48, 32));
      expect(Buffer.from(r.mask).equals(Buffer.from(leftMask(64, 48, 32)))).toBe(true);
      const pWhite = 1 / (1 + Math.exp(-(1 - 0.485) / 0.229));
      expect(r.probability[10 * 64 + 5]).toBeCloseTo(pWhite, 5);
      // The threshold applies to the probability.
      const strict = await Segmenter.load({ model: path, output: 'logits', threshold: 0.95 });
      expect((await strict.segment(await halves(64, 48, 32))).area).toBe(0);
      await strict.release();
      // min-max normalisation (U²-Net's normPRED) of the raw map.
      const mm = await Segmenter.load({ model: path, normalize: 'minmax' });
      const n = await mm.segment(await halves(64, 48, 32));
      expect(Buffer.from(n.mask).equals(Buffer.from(leftMask(64, 48, 32)))).toBe(true);
      expect(n.probability[5]).toBeCloseTo(1, 6);
      await mm.release();
    } finally {
      await seg.release();
    }
  });

  it('uses the mean/std options', async () => {
    // With mean 1 every normalised value is <= 0: no foreground at all.
    const seg = await Segmenter.load({ model: await model({ width: 64, height: 48 }), mean: [1, 1, 1], std: [1, 1, 1] });
    try {
      expect((await seg.segment(await halves(64, 48, 32))).area).toBe(0);
    } finally {
      await seg.release();
    }
    await expectError(Segmenter.load({ model: await model({ width: 8, height: 8 }), std: [1, 0, 1] }), 'E_RANGE', 'std[1]');
    await expectError(Segmenter.load({ model: await model({ width: 8, height: 8 }), threshold: 1 }), 'E_RANGE', 'threshold');
  });

  it('dynamic H, W need inputSize', async () => {
    const path = await model({ width: 32, height: 32, inputDims: [1, 3, 'h', 'w'] });
    await expectError(Segmenter.load({ model: path }), 'E_MODEL', 'dynamic height/width', 'inputSize');
    const seg = await Segmenter.load({ model: path, inputSize: { width: 32, height: 32 } });
    const r = await seg.segment(await halves(64, 64, 32));
    expect(Buffer.from(r.mask).equals(Buffer.from(leftMask(64, 64, 32)))).toBe(true);
    await seg.release();
    await expectError(
      Segmenter.load({ model: await model({ width: 32, height: 32 }), inputSize: { width: 16, height: 16 } }),
      'E_SHAPE',
      'static 32 x 32',
    );
  });

  it('validates the signature at load, listing every mismatch', async () => {
    await expectError(
      Segmenter.load({ model: await model({ width: 16, height: 16, outputChannels: 2 }) }),
      'E_MODEL',
      "output 'output' has dim 1 = 2",
      'expected 1 [1, 1, ?, ?]',
    );
    await expectError(
      Segmenter.load({ model: await model({ width: 16, height: 16, inputDims: [3, 16, 16] }) }),
      'E_MODEL',
      "input 'input' has rank 3",
    );
    const g = new GraphBuilder('two_inputs');
    g.input('a', 'float32', [1, 3, 8, 8]);
    g.input('b', 'float32', [1, 3, 8, 8]);
    g.node('Add', ['a', 'b'], {}, 'y');
    g.output('y', 'float32', [1, 3, 8, 8]);
    const two = await g.write(tmp.fresh('two.onnx'));
    await expectError(Segmenter.load({ model: two }), 'E_MODEL', 'has 2 inputs (a, b)');
    await expectError(
      Segmenter.load({ model: two, inputName: 'a' }),
      'E_MODEL',
      "output 'y' has dim 1 = 3",
      "unexpected input 'b'",
    );
  });

  it('missing model → E_IO; not ONNX → E_MODEL; bad images → E_FORMAT/E_IO with the path', async () => {
    const missing = tmp.fresh('none.onnx');
    await expectError(Segmenter.load({ model: missing }), 'E_IO', missing);
    const junk = tmp.fresh('junk.onnx');
    await writeFile(junk, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]));
    await expectError(Segmenter.load({ model: junk }), 'E_MODEL', junk);

    const seg = await Segmenter.load({ model: await model({ width: 16, height: 16 }) });
    try {
      const png = await sharp(Buffer.alloc(32 * 32 * 3, 7), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
      const cut = tmp.fresh('cut.png');
      await writeFile(cut, png.subarray(0, png.length - 20));
      await expectError(seg.segment(cut), 'E_FORMAT', cut);
      await expectError(seg.segment(Buffer.from('nope')), 'E_FORMAT', 'encoded image buffer');
      const gone = tmp.fresh('gone.png');
      await expectError(seg.segment(gone), 'E_IO', gone);
      expect((await seg.segment(png)).width).toBe(32);
    } finally {
      await seg.release();
    }
  });
});

describe('resizeBilinear', () => {
  it('matches half-pixel bilinear (align_corners=False) on a 2x upsample', () => {
    const out = resizeBilinear(new Float32Array([0, 1]), 2, 1, 4, 1);
    expect(Array.from(out)).toEqual([0, 0.25, 0.75, 1]);
    const same = resizeBilinear(new Float32Array([1, 2, 3, 4]), 2, 2, 2, 2);
    expect(Array.from(same)).toEqual([1, 2, 3, 4]);
  });
});
