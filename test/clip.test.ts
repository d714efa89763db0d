/**
 * ClipModel with tiny CLIP-shaped models built here (both layouts). The
 * expected embeddings are computed in the test from the models' weights: for
 * images from the float32 tensors Python's CLIPImageProcessor steps produced
 * (test/fixtures/pil-resize.json) or from a plain normalisation written here,
 * for texts from the fixture's reference token ids.
 */
import { readFileSync } from 'node:fs';
import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ClipModel } from '../ts/models/clip.js';
import { providerStatus } from '../ts/models/onnx.js';
import { GenaugError } from '../ts/native/errors.js';
import {
  FIXTURE_TOKENIZER,
  makeImage,
  PREPROCESSOR,
  refImageEmbedding,
  refTextEmbedding,
  tinyClipWeights,
  visionModel,
  writeClipFolder,
} from './clip-helpers.js';
import { caught, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-clip-');
const W = tinyClipWeights();

const pipeline = (
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'pil-resize.json'), 'utf8')) as {
    pipeline: Array<{ width: number; height: number; seed: number; chw: string }>;
  }
).pipeline.map((c) => {
  const b = Buffer.from(c.chw, 'base64');
  return { image: makeImage(c.width, c.height, c.seed), chw: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) };
});
const refTexts = JSON.parse(readFileSync(join(FIXTURE_TOKENIZER, 'reference-tokenizations.json'), 'utf8')) as Array<{ text: string; ids: number[] }>;

function expectRowsClose(got: Float32Array, want: number[][], tol: number): void {
  const dim = want[0]!.length;
  expect(got.length).toBe(want.length * dim);
  want.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(got[i * dim + j]! - v), `row ${i} col ${j}`).toBeLessThan(tol)));
}

describe.each(['split', 'combined'] as const)('ClipModel, %s layout', (layout) => {
  it('embeds images exactly as the Python preprocessing + the model would, in batches', async () => {
    const dir = await writeClipFolder(tmp.fresh(layout), layout, W);
    const m = await ClipModel.open(dir, { batchSize: 2 });
    try {
      expect([m.layout, m.dim, m.contextLength, m.imageSize]).toEqual([layout, 8, 77, { height: 16, width: 16 }]);
      const e = await m.embedImages(pipeline.map((p) => p.image));
      expectRowsClose(e, pipeline.map((p) => refImageEmbedding(W, p.chw)), 1e-5);
      // A plain reference for an image already at the crop size: (v / 255 - mean) / std, CHW.
      const img = makeImage(16, 16, 99);
      const cfg = { ...PREPROCESSOR, size: { height: 16, width: 16 } };
      const dir2 = await writeClipFolder(tmp.fresh(`${layout}-fixed`), layout, W, { preprocessor: cfg });
      const m2 = await ClipModel.open(dir2);
      const chw = new Array<number>(3 * 256);
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < 256; i++) chw[c * 256 + i] = (img.data[i * 3 + c]! / 255 - cfg.image_mean[c]!) / cfg.image_std[c]!;
      }
      expectRowsClose(await m2.embedImages([img]), [refImageEmbedding(W, chw)], 1e-5);
      await m2.close();
    } finally {
      await m.close();
    }
  });

  it('embeds texts from the reference token ids, padded to 77', async () => {
    const dir = await writeClipFolder(tmp.fresh(layout), layout, W);
    const m = await ClipModel.open(dir, { batchSize: 3 });
    try {
      const e = await m.embedTexts(refTexts.map((r) => r.text));
      expectRowsClose(e, refTexts.map((r) => refTextEmbedding(W, r.ids)), 1e-5);
      // Row norms are 1.
      for (let i = 0; i < refTexts.length; i++) {
        let s = 0;
        for (let j = 0; j < 8; j++) s += e[i * 8 + j]! ** 2;
        expect(s).toBeCloseTo(1, 5);
      }
      if (layout === 'combined') expect(m.logitScale).toBeCloseTo(42.5, 3);
      else expect(m.logitScale).toBe(100);
    } finally {
      await m.close();
    }
  });

  it('feeds int32 ids when the model takes int32, and pads to 77 when there is no attention mask', async () => {
    const dir = await writeClipFolder(tmp.fresh(layout), layout, W, { idsType: 'int32', noMask: true, onnxSubfolder: true });
    const m = await ClipModel.open(dir);
    try {
      expect([m.idsType, m.hasAttentionMask]).toEqual(['int32', false]);
      const ids = refTexts[0]!.ids;
      // Without a mask every position counts: the ids padded with 49407 to 77.
      const padded = [...ids, ...new Array<number>(77 - ids.length).fill(49407)];
      expectRowsClose(await m.embedTexts([refTexts[0]!.text]), [refTextEmbedding(W, padded)], 1e-5);
    } finally {
      await m.close();
    }
  });

  it('names wrong input names and the file', async () => {
    const dir = await writeClipFolder(tmp.fresh(layout), layout, W, { rename: { pixel_values: 'pixels', attention_mask: 'mask' } });
    const e = await caught(ClipModel.open(dir));
    expect(e.code).toBe('E_MODEL');
    expect(e.message).toContain(layout === 'split' ? 'vision_model.onnx' : 'model.onnx');
    expect(e.message).toContain("missing input 'pixel_values'");
    expect(e.message).toContain("unexpected input 'pixels'");
    if (layout === 'combined') expect(e.message).toContain("unexpected input 'mask'");
  });
});

describe('ClipModel files and checks', () => {
  it('reports a missing model file, tokenizer or preprocessor config by path', async () => {
    const dir = await writeClipFolder(tmp.fresh('missing'), 'split', W);
    await unlink(join(dir, 'text_model.onnx'));
    const e1 = await caught(ClipModel.open(dir));
    expect([e1.code, e1.message.includes(join(dir, 'text_model.onnx'))]).toEqual(['E_MODEL', true]);
    // An image-only open does not need it.
    const img = await ClipModel.open(dir, { require: 'image' });
    await expect(img.embedTexts(['a'])).rejects.toThrow(/without its text tower/);
    await img.close();
    await unlink(join(dir, 'preprocessor_config.json'));
    const e2 = await caught(ClipModel.open(dir, { require: 'image' }));
    expect([e2.code, e2.message.includes(join(dir, 'preprocessor_config.json'))]).toEqual(['E_MODEL', true]);
    await rm(dir, { recursive: true });
    const e3 = await caught(ClipModel.open(dir));
    expect([e3.code, e3.message.includes(dir)]).toEqual(['E_MODEL', true]);
  });

  it('rejects a static pixel size that differs from the preprocessing, and probes a symbolic width', async () => {
    const dir = await writeClipFolder(tmp.fresh('static'), 'split', W);
    await visionModel(tinyClipWeights(24), { staticSize: 24 }).write(join(dir, 'vision_model.onnx'));
    const e = await caught(ClipModel.open(dir));
    expect(e.code).toBe('E_MODEL');
    expect(e.message).toMatch(/24 x 24.*16 x 16/);
    const dir2 = await writeClipFolder(tmp.fresh('symbolic'), 'split', W, { symbolicDim: true });
    await unlink(join(dir2, 'config.json'));
    const m = await ClipModel.open(dir2);
    expect(m.dim).toBe(8);
    await m.close();
  });

  it("fails with E_CUDA_UNAVAILABLE when 'cuda' is asked for and onnxruntime-node cannot use it", async () => {
    const dir = await writeClipFolder(tmp.fresh('cuda'), 'split', W);
    const st = providerStatus('cuda');
    const r = await ClipModel.open(dir, { provider: 'cuda' }).then(
      (m) => m,
      (err: unknown) => err,
    );
    if (!st.usable) {
      expect(r).toBeInstanceOf(GenaugError);
      expect((r as GenaugError).code).toBe('E_CUDA_UNAVAILABLE');
    } else if (r instanceof GenaugError) {
      expect(r.code).toBe('E_CUDA_UNAVAILABLE');
    } else {
      expect((r as ClipModel).provider).toBe('cuda');
      await (r as ClipModel).close();
    }
  });
});
