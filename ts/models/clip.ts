/**
 * CLIP through onnxruntime-node, from a model folder in either common export
 * layout:
 *
 *  - split (Transformers.js): `vision_model.onnx` (pixel_values float32
 *    [N, 3, H, W] → image_embeds [N, D]) and `text_model.onnx` (input_ids
 *    [N, L] int64 or int32, attention_mask when the model has it →
 *    text_embeds [N, D]);
 *  - combined (optimum): `model.onnx` with input_ids, pixel_values and
 *    attention_mask → image_embeds, text_embeds (and logits_per_image).
 *
 * The .onnx files may sit in the folder or in its `onnx/` subfolder
 * (Transformers.js puts them there); the folder also holds tokenizer.json
 * (+ tokenizer_config.json), preprocessor_config.json and config.json.
 *
 * The combined graph needs both modalities on every run: embedding images
 * feeds one dummy text (`<|startoftext|><|endoftext|>`, padded) and embedding
 * texts feeds one all-zero pixel tensor, and only the wanted output is
 * fetched (the dummy's own embedding is discarded). The dummy costs one
 * extra text or image per batch, and the model must accept different batch
 * sizes for the two inputs (optimum's export does; a static batch dim is
 * reported on load).
 *
 * Embeddings are L2-normalised rows (a zero row stays zero). `logitScale` is
 * measured from logits_per_image when the combined model has it, else
 * `options.logitScale`, else 100 (OpenAI CLIP's trained value). config.json's
 * `logit_scale_init_value` is the temperature training *started* from
 * (ln(1/0.07): exp = 14.3), not the trained one, so it is not used.
 *
 * Event loop: onnxruntime-node's run() blocks it (see onnx.ts); the embedding
 * runs (curate/embed.ts) call this from piscina workers.
 */
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import * as ort from 'onnxruntime-node';

import { GenaugError } from '../native/errors.js';
import { checkInt, checkNumber } from '../native/validate.js';
import { clipPreprocess, outputSize, readPreprocessorConfig, type ClipPreprocessConfig } from './clip-preprocess.js';
import { checkOutput, checkSignature, openSession, runSession, type OnnxModel, type OnnxValueMetadata, type Provider, type TensorSpec } from './onnx.js';
import { CLIP_CONTEXT_LENGTH, ClipTokenizer, readModelJson } from './tokenizer.js';
import type { ImageTextEmbedder, RgbInput } from './types.js';

export interface ClipOpenOptions {
  /** Execution provider (default 'cpu'); 'cuda' without a usable CUDA provider → E_CUDA_UNAVAILABLE. */
  provider?: Provider;
  /** onnxruntime intra-op threads (default onnxruntime's: every core). */
  threads?: number;
  deviceId?: number;
  /** Images or texts per inference call (default 32). */
  batchSize?: number;
  /** Which towers must be present (default 'both'); 'image' opens a split folder without text_model.onnx/tokenizer.json. */
  require?: 'both' | 'image' | 'text';
  /** Overrides the logit scale (see the note above). */
  logitScale?: number;
}

export type ClipLayout = 'split' | 'combined';

const IDS_TYPES = ['int64', 'int32'] as const;

function l2normalizeRows(data: Float32Array, rows: number, dim: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * dim;
    for (let j = 0; j < dim; j++) s += (data[o + j] as number) ** 2;
    if (s > 0) {
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < dim; j++) data[o + j] = (data[o + j] as number) * inv;
    }
  }
  return data;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first of `names` found in `dir` or `dir/onnx`. */
async function findFile(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const sub of ['', 'onnx']) {
    for (const n of names) {
      const p = join(dir, sub, n);
      if (await exists(p)) return p;
    }
  }
  return undefined;
}

function staticDim(meta: OnnxValueMetadata | undefined, i: number): number | undefined {
  if (!meta || !meta.isTensor) return undefined;
  const d = meta.shape[i];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

function metaOf(m: OnnxModel, kind: 'input' | 'output', name: string): OnnxValueMetadata | undefined {
  return (kind === 'input' ? m.session.inputMetadata : m.session.outputMetadata).find((x) => x.name === name);
}

interface Towers {
  vision?: OnnxModel;
  text?: OnnxModel;
  combined?: OnnxModel;
}

export class ClipModel implements ImageTextEmbedder {
  readonly dim: number;
  readonly name: string;
  readonly logitScale: number;
  readonly layout: ClipLayout;
  readonly dir: string;
  readonly provider: Provider;
  readonly batchSize: number;
  /** The tensor size images are preprocessed to. */
  readonly imageSize: { height: number; width: number } | undefined;
  /** Token positions per text (the model's static length, else 77). */
  readonly contextLength: number;
  readonly idsType: 'int64' | 'int32';
  readonly hasAttentionMask: boolean;
  readonly maskType: 'int64' | 'int32';

  private constructor(
    private readonly towers: Towers,
    readonly tokenizer: ClipTokenizer | undefined,
    readonly preprocess: ClipPreprocessConfig | undefined,
    init: {
      dim: number;
      logitScale: number;
      layout: ClipLayout;
      dir: string;
      provider: Provider;
      batchSize: number;
      imageSize: { height: number; width: number } | undefined;
      contextLength: number;
      idsType: 'int64' | 'int32';
      hasAttentionMask: boolean;
      maskType: 'int64' | 'int32';
    },
  ) {
    this.dim = init.dim;
    this.logitScale = init.logitScale;
    this.layout = init.layout;
    this.dir = init.dir;
    this.name = `clip:${basename(init.dir)}`;
    this.provider = init.provider;
    this.batchSize = init.batchSize;
    this.imageSize = init.imageSize;
    this.contextLength = init.contextLength;
    this.idsType = init.idsType;
    this.hasAttentionMask = init.hasAttentionMask;
    this.maskType = init.maskType;
  }

  /**
   * Opens a CLIP model folder (layout detected from the files). Missing files
   * → E_MODEL naming what was looked for; a model whose inputs/outputs do not
   * match → E_MODEL naming the file and each mismatch.
   */
  static async open(dir: string, opts: ClipOpenOptions = {}): Promise<ClipModel> {
    if (typeof dir !== 'string' || dir.length === 0) throw new GenaugError('E_TYPE', 'ClipModel.open: the model folder must be a non-empty string');
    const root = resolve(dir);
    const provider = opts.provider ?? 'cpu';
    const batchSize = opts.batchSize ?? 32;
    checkInt(batchSize, 'batchSize', 1, 65536);
    const need = opts.require ?? 'both';
    if (need !== 'both' && need !== 'image' && need !== 'text') {
      throw new GenaugError('E_RANGE', `require must be 'both', 'image' or 'text', got ${JSON.stringify(need)}`);
    }
    if (opts.logitScale !== undefined) checkNumber(opts.logitScale, 'logitScale');
    if (!(await exists(root))) throw new GenaugError('E_MODEL', `CLIP model folder ${root} does not exist`, { path: root });
    const wantImage = need !== 'text';
    const wantText = need !== 'image';
    const session = { provider, ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.deviceId !== undefined ? { deviceId: opts.deviceId } : {}) };

    const visionPath = await findFile(root, ['vision_model.onnx']);
    const textPath = await findFile(root, ['text_model.onnx']);
    const combinedPath = await findFile(root, ['model.onnx']);
    const layout: ClipLayout = visionPath || textPath || !combinedPath ? 'split' : 'combined';
    if (layout === 'split') {
      const missing: string[] = [];
      if (wantImage && !visionPath) missing.push('vision_model.onnx');
      if (wantText && !textPath) missing.push('text_model.onnx');
      if (missing.length > 0) {
        throw new GenaugError(
          'E_MODEL',
          `CLIP model folder ${root}: ${missing.map((m) => join(root, m)).join(' and ')} (or under onnx/) ${missing.length > 1 ? 'do' : 'does'} not exist; ` +
            'expected vision_model.onnx + text_model.onnx (split layout, Transformers.js) or model.onnx (combined layout, optimum)',
          { path: join(root, missing[0] as string) },
        );
      }
    }
    const tokPath = join(root, 'tokenizer.json');
    const prePath = join(root, 'preprocessor_config.json');
    for (const [want, p] of [
      [wantText, tokPath],
      [wantImage, prePath],
    ] as const) {
      if (want && !(await exists(p))) throw new GenaugError('E_MODEL', `CLIP model folder ${root}: ${p} does not exist`, { path: p });
    }
    const tokenizer = wantText ? await ClipTokenizer.fromFile(tokPath, join(root, 'tokenizer_config.json')) : undefined;
    const preprocess = wantImage ? await readPreprocessorConfig(prePath) : undefined;
    const imageSize = preprocess ? outputSize(preprocess) : undefined;
    if (preprocess && !imageSize) {
      throw new GenaugError('E_MODEL', `${prePath}: without a centre crop the image size varies with the image (size.shortest_edge); a batch needs one size`, { path: prePath });
    }
    const config = (await readModelJson(join(root, 'config.json'), 'model config', true)) as Record<string, unknown> | undefined;

    const pixelSpec: TensorSpec = { name: 'pixel_values', type: 'float32', dims: [null, 3, null, null] };
    const idsSpec: TensorSpec = { name: 'input_ids', type: IDS_TYPES, dims: [null, null] };
    const maskSpec: TensorSpec = { name: 'attention_mask', type: IDS_TYPES, dims: [null, null], optional: true };
    const towers: Towers = {};
    const opened: OnnxModel[] = [];
    try {
      if (layout === 'split') {
        if (wantImage) {
          const m = await openSession(visionPath as string, 'CLIP vision model', session);
          opened.push(m);
          checkSignature(m, { inputs: [pixelSpec], outputs: [{ name: 'image_embeds', type: 'float32', dims: [null, null] }] });
          towers.vision = m;
        }
        if (wantText) {
          const m = await openSession(textPath as string, 'CLIP text model', session);
          opened.push(m);
          checkSignature(m, { inputs: [idsSpec, maskSpec], outputs: [{ name: 'text_embeds', type: 'float32', dims: [null, null] }] });
          towers.text = m;
        }
      } else {
        const m = await openSession(combinedPath as string, 'CLIP model', session);
        opened.push(m);
        checkSignature(m, {
          inputs: [idsSpec, pixelSpec, maskSpec],
          outputs: [
            { name: 'image_embeds', type: 'float32', dims: [null, null] },
            { name: 'text_embeds', type: 'float32', dims: [null, null] },
            { name: 'logits_per_image', type: 'float32', dims: [null, null], optional: true },
          ],
        });
        towers.combined = m;
      }
    } catch (e) {
      await Promise.all(opened.map((m) => m.session.release().catch(() => undefined)));
      throw e;
    }

    const imgModel = towers.vision ?? towers.combined;
    const txtModel = towers.text ?? towers.combined;
    // Static sizes in the model must agree with the preprocessing.
    if (imgModel && imageSize) {
      const meta = metaOf(imgModel, 'input', 'pixel_values');
      const h = staticDim(meta, 2);
      const w = staticDim(meta, 3);
      if ((h !== undefined && h !== imageSize.height) || (w !== undefined && w !== imageSize.width)) {
        throw new GenaugError(
          'E_MODEL',
          `${imgModel.path}: input 'pixel_values' is ${h ?? '?'} x ${w ?? '?'} but ${prePath} makes ${imageSize.height} x ${imageSize.width} images`,
          { path: imgModel.path },
        );
      }
    }
    let contextLength = CLIP_CONTEXT_LENGTH;
    let idsType: 'int64' | 'int32' = 'int64';
    let hasAttentionMask = false;
    let maskType: 'int64' | 'int32' = 'int64';
    if (txtModel) {
      const ids = metaOf(txtModel, 'input', 'input_ids');
      contextLength = staticDim(ids, 1) ?? CLIP_CONTEXT_LENGTH;
      idsType = ids && ids.isTensor && ids.type === 'int32' ? 'int32' : 'int64';
      const mask = metaOf(txtModel, 'input', 'attention_mask');
      hasAttentionMask = mask !== undefined;
      maskType = mask && mask.isTensor && mask.type === 'int32' ? 'int32' : 'int64';
    }
    if (towers.combined) {
      for (const input of ['input_ids', 'pixel_values']) {
        const b = staticDim(metaOf(towers.combined, 'input', input), 0);
        if (b !== undefined) {
          throw new GenaugError('E_MODEL', `${towers.combined.path}: input '${input}' has a static batch size ${b}; the combined layout needs a dynamic batch dim`, {
            path: towers.combined.path,
          });
        }
      }
    }

    // The embedding width: a static output dim, else config.json's projection_dim, else one probe run.
    const outMeta = towers.vision ? metaOf(towers.vision, 'output', 'image_embeds') : towers.text ? metaOf(towers.text, 'output', 'text_embeds') : metaOf(towers.combined as OnnxModel, 'output', 'image_embeds');
    let dim = staticDim(outMeta, 1) ?? (typeof config?.projection_dim === 'number' ? (config.projection_dim as number) : 0);
    const model = new ClipModel(towers, tokenizer, preprocess, {
      dim,
      logitScale: opts.logitScale ?? 100,
      layout,
      dir: root,
      provider,
      batchSize,
      imageSize,
      contextLength,
      idsType,
      hasAttentionMask,
      maskType,
    });
    // One probe: checks that the model runs with genaug's inputs, gives the width and (combined) the logit scale.
    const probe = await model.probe();
    if (dim !== 0 && probe.dim !== dim) {
      throw new GenaugError('E_MODEL', `CLIP model ${root}: embeddings are ${probe.dim} wide, but the model/config.json says ${dim}`, { path: root });
    }
    dim = probe.dim;
    (model as { dim: number }).dim = dim;
    if (opts.logitScale === undefined && probe.logitScale !== undefined) (model as { logitScale: number }).logitScale = probe.logitScale;
    return model;
  }

  /** The towers' files, for provenance. */
  get files(): string[] {
    return [this.towers.vision, this.towers.text, this.towers.combined].filter((m): m is OnnxModel => m !== undefined).map((m) => m.path);
  }

  private idsTensor(values: Int32Array, rows: number, length: number, type = this.idsType): ort.Tensor {
    if (type === 'int32') return new ort.Tensor('int32', values, [rows, length]);
    const big = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) big[i] = BigInt(values[i] as number);
    return new ort.Tensor('int64', big, [rows, length]);
  }

  private textFeeds(ids: Int32Array, mask: Int32Array, rows: number, length: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { input_ids: this.idsTensor(ids, rows, length) };
    if (this.hasAttentionMask) feeds.attention_mask = this.idsTensor(mask, rows, length, this.maskType);
    return feeds;
  }

  private dummyText(): Record<string, ort.Tensor> {
    const tok = this.tokenizer;
    const L = this.contextLength;
    const ids = new Int32Array(L).fill(tok ? tok.padId : 49407);
    ids[0] = tok ? tok.bosId : 49406;
    ids[1] = tok ? tok.eosId : 49407;
    const mask = new Int32Array(L);
    mask[0] = 1;
    mask[1] = 1;
    return this.textFeeds(ids, mask, 1, L);
  }

  /** Zeros, or (probe) a fixed pattern that gives a non-zero embedding to measure the logit scale with. */
  private dummyImage(pattern = false): ort.Tensor {
    const s = this.imageSize ?? { height: 224, width: 224 };
    const px = new Float32Array(3 * s.height * s.width);
    if (pattern) for (let i = 0; i < px.length; i++) px[i] = ((i * 7919) % 13) / 6 - 1;
    return new ort.Tensor('float32', px, [1, 3, s.height, s.width]);
  }

  private async probe(): Promise<{ dim: number; logitScale?: number }> {
    if (this.towers.combined) {
      const m = this.towers.combined;
      const hasLogits = metaOf(m, 'output', 'logits_per_image') !== undefined;
      const out = await runSession(m, { ...this.dummyText(), pixel_values: this.dummyImage(true) }, ['image_embeds', 'text_embeds', ...(hasLogits ? ['logits_per_image'] : [])]);
      const img = checkOutput(m, 'image_embeds', out.image_embeds, 2, [1, null]);
      const txt = checkOutput(m, 'text_embeds', out.text_embeds, 2, [1, null]);
      if (img.length !== txt.length) throw new GenaugError('E_MODEL', `${m.path}: image_embeds are ${img.length} wide but text_embeds ${txt.length}`, { path: m.path });
      let logitScale: number | undefined;
      if (hasLogits) {
        const logit = checkOutput(m, 'logits_per_image', out.logits_per_image, 2, [1, 1])[0] as number;
        const a = l2normalizeRows(img.slice(), 1, img.length);
        const b = l2normalizeRows(txt.slice(), 1, txt.length);
        let cos = 0;
        for (let j = 0; j < a.length; j++) cos += (a[j] as number) * (b[j] as number);
        if (Math.abs(cos) > 1e-3 && Number.isFinite(logit / cos) && logit / cos > 0) logitScale = logit / cos;
      }
      return { dim: img.length, ...(logitScale !== undefined ? { logitScale } : {}) };
    }
    if (this.towers.vision) {
      const v = this.towers.vision;
      const out = await runSession(v, { pixel_values: this.dummyImage(true) }, ['image_embeds']);
      const img = checkOutput(v, 'image_embeds', out.image_embeds, 2, [1, null]);
      if (this.towers.text) {
        const t = this.towers.text;
        const o2 = await runSession(t, this.dummyText(), ['text_embeds']);
        const txt = checkOutput(t, 'text_embeds', o2.text_embeds, 2, [1, null]);
        if (txt.length !== img.length) {
          throw new GenaugError('E_MODEL', `CLIP model ${this.dir}: ${v.path} gives ${img.length}-wide embeddings but ${t.path} ${txt.length}-wide`, { path: this.dir });
        }
      }
      return { dim: img.length };
    }
    const t = this.towers.text as OnnxModel;
    const o = await runSession(t, this.dummyText(), ['text_embeds']);
    return { dim: checkOutput(t, 'text_embeds', o.text_embeds, 2, [1, null]).length };
  }

  /** Preprocessed pixels for `images` (N × 3 × H × W float32), as CLIPImageProcessor makes them. */
  preprocessImages(images: readonly RgbInput[]): Float32Array {
    if (!this.preprocess || !this.imageSize) throw new GenaugError('E_MODEL', `CLIP model ${this.dir} was opened without its image tower`);
    const { height, width } = this.imageSize;
    const per = 3 * height * width;
    const out = new Float32Array(images.length * per);
    images.forEach((img, i) => clipPreprocess(img, this.preprocess as ClipPreprocessConfig, out, i * per));
    return out;
  }

  /** Image embeddings of already preprocessed pixels (N × 3 × H × W), L2-normalised. */
  async embedPixels(pixels: Float32Array, count: number): Promise<Float32Array> {
    const m = this.towers.vision ?? this.towers.combined;
    if (!m || !this.imageSize) throw new GenaugError('E_MODEL', `CLIP model ${this.dir} was opened without its image tower`);
    const { height, width } = this.imageSize;
    const per = 3 * height * width;
    if (!(pixels instanceof Float32Array) || pixels.length !== count * per) {
      throw new GenaugError('E_SHAPE', `embedPixels: expected ${count} x 3 x ${height} x ${width} float32 values, got ${pixels?.length}`);
    }
    const out = new Float32Array(count * this.dim);
    for (let start = 0; start < count; start += this.batchSize) {
      const n = Math.min(this.batchSize, count - start);
      const px = new ort.Tensor('float32', pixels.subarray(start * per, (start + n) * per), [n, 3, height, width]);
      const feeds: Record<string, ort.Tensor> = this.towers.combined ? { ...this.dummyText(), pixel_values: px } : { pixel_values: px };
      const r = await runSession(m, feeds, ['image_embeds']);
      out.set(checkOutput(m, 'image_embeds', r.image_embeds, 2, [n, this.dim]), start * this.dim);
    }
    return l2normalizeRows(out, count, this.dim);
  }

  /** One L2-normalised row per image (images.length × dim). */
  async embedImages(images: RgbInput[]): Promise<Float32Array> {
    if (!Array.isArray(images)) throw new GenaugError('E_TYPE', 'embedImages: images must be an array of { data, width, height }');
    const out = new Float32Array(images.length * this.dim);
    for (let start = 0; start < images.length; start += this.batchSize) {
      const chunk = images.slice(start, start + this.batchSize);
      out.set(await this.embedPixels(this.preprocessImages(chunk), chunk.length), start * this.dim);
    }
    return out;
  }

  /** One L2-normalised row per text (texts.length × dim), tokenised to the model's context length. */
  async embedTexts(texts: string[]): Promise<Float32Array> {
    const m = this.towers.text ?? this.towers.combined;
    if (!m || !this.tokenizer) throw new GenaugError('E_MODEL', `CLIP model ${this.dir} was opened without its text tower`);
    if (!Array.isArray(texts)) throw new GenaugError('E_TYPE', 'embedTexts: texts must be an array of strings');
    const out = new Float32Array(texts.length * this.dim);
    for (let start = 0; start < texts.length; start += this.batchSize) {
      const chunk = texts.slice(start, start + this.batchSize);
      const enc = this.tokenizer.encodeBatch(chunk, { contextLength: this.contextLength });
      const feeds = this.textFeeds(enc.ids, enc.attentionMask, enc.rows, enc.length);
      if (this.towers.combined) feeds.pixel_values = this.dummyImage();
      const r = await runSession(m, feeds, ['text_embeds']);
      out.set(checkOutput(m, 'text_embeds', r.text_embeds, 2, [chunk.length, this.dim]), start * this.dim);
    }
    return l2normalizeRows(out, texts.length, this.dim);
  }

  async close(): Promise<void> {
    const ms = [this.towers.vision, this.towers.text, this.towers.combined].filter((m): m is OnnxModel => m !== undefined);
    await Promise.all(ms.map((m) => m.session.release()));
  }
}

export { l2normalizeRows };
