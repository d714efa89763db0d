/**
 * Tiny CLIP-shaped ONNX models and model folders for the tests (no weights can
 * be fetched), with the weights kept so a test can compute the expected
 * embeddings itself:
 *
 *  - vision: pixel_values [N, 3, S, S] → Flatten → MatMul Wv (3·S·S × D) →
 *    image_embeds [N, D] (every pixel of the preprocessed tensor matters, in
 *    CHW order);
 *  - text: Gather(E, input_ids) [N, L, E] × attention_mask → sum over L →
 *    MatMul Wt (E × D) → text_embeds [N, D];
 *  - combined: both in one graph plus logits_per_image = scale ·
 *    normalise(image) · normalise(text)ᵀ.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { seededRandom } from '../ts/util/random.js';
import type { RgbInput } from '../ts/models/types.js';
import { GraphBuilder, type ElemType } from './onnx-builder.js';

export const FIXTURE_TOKENIZER = join(import.meta.dirname, '..', '..', 'shared', 'fixtures', 'clip-tokenizer');

/** The generator of test/fixtures/make_pil_resize.py: left half a checkerboard, right half LCG noise. */
export function makeImage(w: number, h: number, seed: number): RgbInput {
  let state = seed >>> 0;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        data[(y * w + x) * 3 + c] = x < Math.floor(w / 2) ? ((Math.floor(x / 4) + Math.floor(y / 4) + c) % 2 ? 255 : 0) : state >>> 24;
      }
    }
  }
  return { data, width: w, height: h };
}

export interface TinyClip {
  size: number;
  dim: number;
  vocab: number;
  embedWidth: number;
  /** Row-major (3·S·S) × D. */
  wv: Float32Array;
  /** Row-major vocab × E. */
  emb: Float32Array;
  /** Row-major E × D. */
  wt: Float32Array;
}

export function tinyClipWeights(size = 16, dim = 8, seed = 7, embedWidth = 6, vocab = 49408): TinyClip {
  const r = seededRandom(seed);
  const u = (n: number, s: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
  return { size, dim, vocab, embedWidth, wv: u(3 * size * size * dim, 0.1), emb: u(vocab * embedWidth, 1), wt: u(embedWidth * dim, 1) };
}

export interface BuildOptions {
  idsType?: ElemType;
  maskType?: ElemType;
  /** Leave the attention_mask input out (the text branch then sums every position). */
  noMask?: boolean;
  rename?: Record<string, string>;
  /** Output dims' D as a symbolic dim. */
  symbolicDim?: boolean;
  logitScale?: number;
  /** Static pixel size in the model (default S). */
  staticSize?: number | 'dynamic';
}

function visionBranch(g: GraphBuilder, t: TinyClip, o: BuildOptions, pixelName: string): string {
  const flat = g.node('Flatten', [pixelName], { axis: 1 });
  return g.node('MatMul', [flat, g.constF(Array.from(t.wv), [3 * t.size * t.size, t.dim])]);
}

function textBranch(g: GraphBuilder, t: TinyClip, o: BuildOptions, idsName: string, maskName: string | undefined): string {
  const e = g.node('Gather', [g.constF(Array.from(t.emb), [t.vocab, t.embedWidth]), idsName], { axis: 0 }); // N, L, E
  let x = e;
  if (maskName) {
    const m = g.node('Unsqueeze', [g.node('Cast', [maskName], { to: 1 }), g.constI64([2])]);
    x = g.node('Mul', [e, m]);
  }
  const summed = g.node('ReduceSum', [x, g.constI64([1])], { keepdims: 0 }); // N, E
  return g.node('MatMul', [summed, g.constF(Array.from(t.wt), [t.embedWidth, t.dim])]);
}

export function visionModel(t: TinyClip, o: BuildOptions = {}): GraphBuilder {
  const nm = (s: string) => o.rename?.[s] ?? s;
  const g = new GraphBuilder('tiny_clip_vision');
  const S = o.staticSize === 'dynamic' ? null : (o.staticSize ?? t.size);
  const px = g.input(nm('pixel_values'), 'float32', ['batch', 3, S ?? 'h', S ?? 'w']);
  const y = visionBranch(g, t, o, px);
  g.node('Identity', [y], {}, nm('image_embeds'));
  g.output(nm('image_embeds'), 'float32', ['batch', o.symbolicDim ? 'dim' : t.dim]);
  return g;
}

export function textModel(t: TinyClip, o: BuildOptions = {}): GraphBuilder {
  const nm = (s: string) => o.rename?.[s] ?? s;
  const g = new GraphBuilder('tiny_clip_text');
  const ids = g.input(nm('input_ids'), o.idsType ?? 'int64', ['batch', 'seq']);
  const mask = o.noMask ? undefined : g.input(nm('attention_mask'), o.maskType ?? o.idsType ?? 'int64', ['batch', 'seq']);
  const y = textBranch(g, t, o, ids, mask);
  g.node('Identity', [y], {}, nm('text_embeds'));
  g.output(nm('text_embeds'), 'float32', ['batch', o.symbolicDim ? 'dim' : t.dim]);
  return g;
}

export function combinedModel(t: TinyClip, o: BuildOptions = {}): GraphBuilder {
  const nm = (s: string) => o.rename?.[s] ?? s;
  const g = new GraphBuilder('tiny_clip');
  const ids = g.input(nm('input_ids'), o.idsType ?? 'int64', ['text_batch', 'seq']);
  const px = g.input(nm('pixel_values'), 'float32', ['image_batch', 3, t.size, t.size]);
  const mask = o.noMask ? undefined : g.input(nm('attention_mask'), o.maskType ?? o.idsType ?? 'int64', ['text_batch', 'seq']);
  const img = visionBranch(g, t, o, px);
  const txt = textBranch(g, t, o, ids, mask);
  g.node('Identity', [img], {}, 'image_embeds');
  g.node('Identity', [txt], {}, 'text_embeds');
  const ni = g.node('Div', [img, g.node('ReduceL2', [img], { axes: [1], keepdims: 1 })]);
  const nt = g.node('Div', [txt, g.node('ReduceL2', [txt], { axes: [1], keepdims: 1 })]);
  const logits = g.node('MatMul', [ni, g.node('Transpose', [nt], { perm: [1, 0] })]);
  g.node('Mul', [logits, g.constF([o.logitScale ?? 42.5], [])], {}, 'logits_per_image');
  g.output('image_embeds', 'float32', ['image_batch', t.dim]);
  g.output('text_embeds', 'float32', ['text_batch', t.dim]);
  g.output('logits_per_image', 'float32', ['image_batch', 'text_batch']);
  return g;
}

export const PREPROCESSOR = {
  do_convert_rgb: true,
  do_resize: true,
  size: { shortest_edge: 20 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 16, width: 16 },
  do_rescale: true,
  rescale_factor: 0.00392156862745098,
  do_normalize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  image_processor_type: 'CLIPImageProcessor',
};

/** Writes a model folder: the tokenizer files, preprocessor_config.json, and the model(s) of `layout`. */
export async function writeClipFolder(
  dir: string,
  layout: 'split' | 'combined',
  t: TinyClip,
  o: BuildOptions & { onnxSubfolder?: boolean; preprocessor?: Record<string, unknown> } = {},
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const { readFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'tokenizer.json'), await readFile(join(FIXTURE_TOKENIZER, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer_config.json'), await readFile(join(FIXTURE_TOKENIZER, 'tokenizer_config.json')));
  await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify(o.preprocessor ?? PREPROCESSOR));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'clip', projection_dim: t.dim, logit_scale_init_value: 2.6592 }));
  const md = o.onnxSubfolder ? join(dir, 'onnx') : dir;
  await mkdir(md, { recursive: true });
  if (layout === 'split') {
    await visionModel(t, o).write(join(md, 'vision_model.onnx'));
    await textModel(t, o).write(join(md, 'text_model.onnx'));
  } else {
    await combinedModel(t, o).write(join(md, 'model.onnx'));
  }
  return dir;
}

/** Expected image embedding (L2-normalised, double precision) of a preprocessed CHW tensor. */
export function refImageEmbedding(t: TinyClip, chw: ArrayLike<number>): number[] {
  const out = new Array<number>(t.dim).fill(0);
  for (let i = 0; i < chw.length; i++) for (let j = 0; j < t.dim; j++) out[j]! += chw[i]! * t.wv[i * t.dim + j]!;
  return normalise(out);
}

/** Expected text embedding of token ids (only the unmasked ones count). */
export function refTextEmbedding(t: TinyClip, ids: readonly number[]): number[] {
  const e = new Array<number>(t.embedWidth).fill(0);
  for (const id of ids) for (let k = 0; k < t.embedWidth; k++) e[k]! += t.emb[id * t.embedWidth + k]!;
  const out = new Array<number>(t.dim).fill(0);
  for (let k = 0; k < t.embedWidth; k++) for (let j = 0; j < t.dim; j++) out[j]! += e[k]! * t.wt[k * t.dim + j]!;
  return normalise(out);
}

export function normalise(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return n > 0 ? v.map((x) => x / n) : v;
}
