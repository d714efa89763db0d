/**
 * The scores the filters of the seed methods keep or drop samples by
 * (spec ALGORITHMS.md §1.2, §1.3, §2.3, §4):
 * - X-Paste's CLIP score (×100) of an instance on white against "a photo of {name}";
 * - DiverGen's CLIP inter-similarity to the real crops of the same category
 *   (mean via the class-mean shortcut; max and top-k-mean variants);
 * - near-duplicate groups;
 * - ALIA's zero-shot semantic score and its classifier-confidence numbers;
 * - CLIS-L of plan layouts (native, ts/kernels/layout.ts) and CLIS-I in
 *   `judge` mode (a VLM describes, an LLM grades 0–5) or `clip` mode.
 * Every function takes embeddings or an embedder (ImageTextEmbedder), so the
 * same code runs with CLIP, the weight-free embedder or a test double.
 */
import sharp from 'sharp';
import { z } from 'zod';

import { type ChatClient, extractJson, imageDataUrl } from '../llm/chat.js';
import { type Box, type SceneLayout, normalizeName } from '../kernels/layout.js';
import { classMax, classMean, groupPairs, nearDuplicates, pairs, topk } from '../kernels/similarity.js';
import type { Matrix } from '../native/validate.js';
import { checkSignature, openSession, runSession, type OnnxModel, type Provider } from '../models/onnx.js';
import type { ImageTextEmbedder, RgbInput } from '../models/types.js';
import { displayName } from '../io/coco.js';
import { round6 } from './table.js';
import { readMatrix } from '../io/npy.js';
import { readJsonObjects } from '../util/jsonl.js';
import { GenaugError } from '../native/errors.js';
import { compositeOnWhite } from './crops.js';
import { readImage } from '../io/images.js';

// ------------------------------------------------------------------ X-Paste CLIP score

/**
 * 100·cos(image_i, template(displayName(name_i))) per image (X-Paste's logit): the template gets the readable
 * name (`_` as spaces, no LVIS `_(sense)` suffix). `images` should already be composited on white.
 */
export async function clipScores(
  embedder: ImageTextEmbedder,
  images: RgbInput[],
  names: string[],
  template = 'a photo of {}',
  /** Text rows already embedded (clipTextRows), so a stream of batches embeds each name once. */
  textRows?: ClipTextRows,
): Promise<Float32Array> {
  if (images.length !== names.length) throw new GenaugError('E_SHAPE', `clipScores: ${images.length} images but ${names.length} names`);
  const { rows: texts, at } = textRows ?? (await clipTextRows(embedder, names, template));
  for (const n of names) if (!at.has(n)) throw new GenaugError('E_ARGUMENT', `clipScores: no text row for the name ${JSON.stringify(n)}`);
  const imgs = images.length > 0 ? await embedder.embedImages(images) : new Float32Array(0);
  const d = embedder.dim;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const t = at.get(names[i]!)!;
    let s = 0;
    for (let k = 0; k < d; k++) s += imgs[i * d + k]! * texts[t * d + k]!;
    out[i] = 100 * s;
  }
  return out;
}

/**
 * X-Paste's CLIP score of instance cut-outs (RGBA files): each composited on
 * white, then clipScores against the template with its category name.
 */
export async function clipScoreInstances(embedder: ImageTextEmbedder, files: string[], names: string[], template = 'a photo of {}', batch = 32): Promise<Float32Array> {
  if (files.length !== names.length) throw new GenaugError('E_SHAPE', `${files.length} files for ${names.length} names`);
  const out = new Float32Array(files.length);
  for (let i0 = 0; i0 < files.length; i0 += batch) {
    const imgs: RgbInput[] = [];
    for (const f of files.slice(i0, i0 + batch)) {
      const rgba = await readImage(f, { channels: 4 });
      imgs.push(compositeOnWhite(rgba.data, rgba.width, rgba.height));
    }
    out.set(await clipScores(embedder, imgs, names.slice(i0, i0 + batch).map((n) => n.replace(/_/g, ' ')), template), i0);
  }
  return out;
}

export interface ClipTextRows {
  rows: Float32Array;
  at: Map<string, number>;
}

/** The text embeddings of template(displayName(name)) for each distinct name (for clipScores over batches); keyed by the raw name. */
export async function clipTextRows(embedder: ImageTextEmbedder, names: string[], template = 'a photo of {}'): Promise<ClipTextRows> {
  const unique = [...new Set(names)];
  // X-Paste fills the template with the readable name: `_` as spaces, no LVIS `_(sense)` suffix ("sea_lion" -> "sea lion").
  const rows = unique.length > 0 ? await embedder.embedTexts(unique.map((n) => template.replace('{}', displayName({ name: n })))) : new Float32Array(0);
  return { rows, at: new Map(unique.map((n, i) => [n, i])) };
}

// ------------------------------------------------------------------ DiverGen inter-similarity

export interface InterSimilarityOptions {
  /** Top-k for the top-k-mean variant (default 5). */
  k?: number;
  /** Which variants to compute (default all). */
  variants?: Array<'mean' | 'max' | 'topk'>;
  threads?: number;
}

export interface InterSimilarity {
  /** Mean cosine to every real row of the sample's class (NaN when the class has no real rows). */
  mean: Float32Array;
  max: Float32Array;
  /** Mean of the k best cosines (fewer when the class has fewer real rows). */
  topk: Float32Array;
}

/**
 * Per generated row, its cosine to the real rows of its own class. Classes are
 * handled one at a time: mean = g · mean(real unit rows) (class mean,
 * O(D) per row), max and top-k by the blocked native kernels.
 */
export async function interSimilarity(gen: Matrix, genClass: Int32Array, real: Matrix, realClass: Int32Array, options: InterSimilarityOptions = {}): Promise<InterSimilarity> {
  if (genClass.length !== gen.rows) throw new GenaugError('E_SHAPE', `${genClass.length} generated labels for ${gen.rows} generated rows`);
  if (realClass.length !== real.rows) throw new GenaugError('E_SHAPE', `${realClass.length} real labels for ${real.rows} real rows`);
  if (gen.dim !== real.dim) throw new GenaugError('E_SHAPE', `generated embeddings are ${gen.dim}-wide, real ones ${real.dim}-wide: embed both with the same model`);
  const variants = new Set(options.variants ?? ['mean', 'max', 'topk']);
  const k = options.k ?? 5;
  const out: InterSimilarity = {
    mean: new Float32Array(gen.rows).fill(Number.NaN),
    max: new Float32Array(gen.rows).fill(Number.NaN),
    topk: new Float32Array(gen.rows).fill(Number.NaN),
  };
  const rowsOf = (labels: Int32Array) => {
    const m = new Map<number, number[]>();
    labels.forEach((c, i) => {
      let l = m.get(c);
      if (!l) m.set(c, (l = []));
      l.push(i);
    });
    return m;
  };
  const take = (m: Matrix, rows: number[]): Matrix => {
    const data = new Float32Array(rows.length * m.dim);
    rows.forEach((r, i) => data.set(m.data.subarray(r * m.dim, (r + 1) * m.dim), i * m.dim));
    return { data, rows: rows.length, dim: m.dim };
  };
  const realRows = rowsOf(realClass);
  const opt = options.threads !== undefined ? { threads: options.threads } : {};
  for (const [c, gRows] of rowsOf(genClass)) {
    const rRows = realRows.get(c);
    if (!rRows) continue;
    const g = take(gen, gRows);
    const r = take(real, rRows);
    const zeros = new Int32Array(r.rows);
    if (variants.has('mean')) {
      const m = await classMean(g, r, zeros, { ...opt, numClasses: 1 });
      gRows.forEach((row, i) => (out.mean[row] = m.values[i]!));
    }
    if (variants.has('max')) {
      const m = await classMax(g, r, zeros, { ...opt, numClasses: 1 });
      gRows.forEach((row, i) => (out.max[row] = m.values[i]!));
    }
    if (variants.has('topk')) {
      const t = await topk(g, r, k, opt);
      gRows.forEach((row, i) => {
        let s = 0;
        for (let j = 0; j < t.k; j++) s += t.scores[i * t.k + j]!;
        out.topk[row] = s / t.k;
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------ generated instances against the real crops

/** One row of an instance embeddings index (embedInstances' E.index.jsonl): the fields the real-data scores read. */
export interface InstanceRow {
  file: string;
  category: string;
  label: number;
  bbox: number[];
  width: number;
  height: number;
  area: number;
}

export interface AgainstRealOptions {
  /** Own-class inter-similarity: mean (DiverGen) or max over the class's real crops (default mean). */
  inter?: 'mean' | 'max';
  /** k nearest real crops for the agreement count (default 5; at most the real rows). */
  knn?: number;
  /** Cosine at or above which two generated samples of one class are near-duplicates (default 0.99). */
  dedupThreshold?: number;
  /** Class names by label (default: from the rows' category and label). */
  classes?: string[];
}


/** Class names by label, from index rows ('' for a label no row has). */
export function classesOf(...lists: Array<Array<{ category: string; label: number }>>): string[] {
  const out: string[] = [];
  for (const l of lists) for (const r of l) out[r.label] = r.category;
  return Array.from(out, (n) => n ?? '');
}

/**
 * The scores `genaug run` filters generated instances by, one table row per
 * generated sample (id = its file), from the embeddings of the generated
 * instances and of the real crops (embedInstances' outputs):
 * - `inter_sim_mean` | `inter_sim_max`: DiverGen's similarity to the real crops of its own class (null: none);
 * - `best_class`, `best_sim`: the class whose real crops are closest on average (max with inter 'max');
 * - `knn_agree` of `knn_k`: how many of the k nearest real crops share its class; `real_count`: its class's real crops;
 * - `dup_group`, `dup_of`, `dup_score`: near-duplicates of the same class (greedy: a sample is a duplicate of the
 *   earlier kept sample it pairs with most strongly; `dup_group` names that kept sample, or the sample itself);
 * - `touches_border`, `area_fraction`: the instance's box against its image.
 */
export async function scoreAgainstReal(
  gen: Matrix,
  genRows: InstanceRow[],
  real: Matrix,
  realLabels: Int32Array,
  options: AgainstRealOptions = {},
): Promise<Map<string, Record<string, number | string | boolean | null>>> {
  if (genRows.length !== gen.rows) throw new GenaugError('E_SHAPE', `${genRows.length} generated index rows for ${gen.rows} embeddings`);
  if (realLabels.length !== real.rows) throw new GenaugError('E_SHAPE', `${realLabels.length} real labels for ${real.rows} embeddings`);
  const inter = options.inter ?? 'mean';
  if (inter !== 'mean' && inter !== 'max') throw new GenaugError('E_ARGUMENT', `inter must be mean or max, got ${JSON.stringify(inter)}`);
  const classes = options.classes ?? classesOf(genRows, Array.from(realLabels, (label) => ({ category: '', label })));
  const C = Math.max(classes.length, 1);
  const column = inter === 'max' ? 'inter_sim_max' : 'inter_sim_mean';
  const table = new Map<string, Record<string, number | string | boolean | null>>();
  if (gen.rows === 0 || real.rows === 0) return table;
  const genLabels = Int32Array.from(genRows, (r) => r.label);
  const ownSim = await interSimilarity(gen, genLabels, real, realLabels, { variants: [inter] });
  const own = inter === 'max' ? ownSim.max : ownSim.mean;
  const byClass = inter === 'max' ? await classMax(gen, real, realLabels, { numClasses: C }) : await classMean(gen, real, realLabels, { numClasses: C });
  const k = Math.min(options.knn ?? 5, real.rows);
  const knn = await topk(gen, real, k);
  const dup = await pairs(gen, undefined, { threshold: options.dedupThreshold ?? 0.99 });
  const groups = groupPairs(gen.rows, dup, 'greedy');
  const dupOf = new Int32Array(gen.rows).fill(-1);
  const dupScore = new Float32Array(gen.rows);
  for (let p = 0; p < dup.scores.length; p++) {
    const i = Number(dup.i[p]);
    const j = Number(dup.j[p]);
    // Same class only: a shape drawn for two classes is an off-class problem, not a duplicate.
    if ((genRows[i] as InstanceRow).label !== (genRows[j] as InstanceRow).label) continue;
    if (groups.keep[j] === 0 && groups.keep[i] === 1 && (dup.scores[p] as number) > (dupScore[j] as number)) {
      dupOf[j] = i;
      dupScore[j] = dup.scores[p] as number;
    }
  }
  const realCount = new Map<number, number>();
  for (const l of realLabels) realCount.set(l, (realCount.get(l) ?? 0) + 1);
  for (let i = 0; i < gen.rows; i++) {
    const r = genRows[i] as InstanceRow;
    const v = (q: number) => byClass.values[i * C + q] as number;
    let best = 0;
    for (let q = 1; q < C; q++) if (v(q) > v(best) || Number.isNaN(v(best))) best = q;
    let agree = 0;
    for (let x = 0; x < k; x++) agree += realLabels[knn.indices[i * k + x] as number] === r.label ? 1 : 0;
    const [bx, by, bw, bh] = r.bbox as [number, number, number, number];
    const d = dupOf[i] as number;
    table.set(r.file, {
      category: r.category,
      [column]: Number.isFinite(own[i] as number) ? round6(own[i] as number) : null,
      best_class: classes[best] ?? '',
      best_sim: Number.isFinite(v(best)) ? round6(v(best)) : null,
      knn_agree: agree,
      knn_k: k,
      real_count: realCount.get(r.label) ?? 0,
      dup_group: d >= 0 ? (genRows[d] as InstanceRow).file : r.file,
      dup_of: d >= 0 ? (genRows[d] as InstanceRow).file : null,
      dup_score: round6(dupScore[i] as number),
      touches_border: bx <= 0 || by <= 0 || bx + bw >= r.width || by + bh >= r.height,
      area_fraction: round6(r.area / (r.width * r.height)),
    });
  }
  return table;
}

/** The index beside an embeddings file: E.npy → E.index.jsonl. */
export const indexPathOf = (npy: string) => npy.replace(/\.npy$/i, '') + '.index.jsonl';

/** Reads an instance embeddings file and its index (embedInstances' outputs); rows and lines must agree. */
export async function readInstanceEmbeddings(npy: string): Promise<{ m: Matrix; rows: InstanceRow[] }> {
  const m = await readMatrix(npy, { name: npy });
  const index = indexPathOf(npy);
  const rows = (await readJsonObjects(index, 'the embeddings index')).map(({ line, value }) => {
    if (typeof value.file !== 'string' || typeof value.category !== 'string' || !Number.isInteger(value.label)) {
      throw new GenaugError('E_FORMAT', `${index}:${line}: an instance index line needs "file", "category" and an integer "label" (genaug embed --coco writes them)`, { path: index, line });
    }
    return value as unknown as InstanceRow;
  });
  if (rows.length !== m.rows) throw new GenaugError('E_SHAPE', `${index} has ${rows.length} lines but ${npy} has ${m.rows} rows; they must be row-aligned`);
  return { m, rows };
}

/** scoreAgainstReal over the files `genaug embed --coco` writes (generated masked instances, real crops). */
export async function scoreInstancesAgainstReal(genNpy: string, realNpy: string, options: AgainstRealOptions = {}) {
  const gen = await readInstanceEmbeddings(genNpy);
  const real = await readInstanceEmbeddings(realNpy);
  const classes = options.classes ?? classesOf(gen.rows, real.rows);
  return scoreAgainstReal(gen.m, gen.rows, real.m, Int32Array.from(real.rows, (r) => r.label), { ...options, classes });
}

// ------------------------------------------------------------------ near duplicates

/** Near-duplicate groups: group[i] = the lowest row of i's connected group (pairs with cosine ≥ threshold). */
export async function duplicateGroups(emb: Matrix, threshold = 0.95): Promise<{ group: Int32Array; keep: Uint8Array; duplicateGroups: number }> {
  const r = await nearDuplicates(emb, { threshold });
  return { group: r.group, keep: r.keep, duplicateGroups: r.duplicateGroups };
}

// ------------------------------------------------------------------ ALIA

export interface ZeroShot {
  /** rows x texts softmax(logitScale · cos). */
  probs: Float32Array;
  /** Index of the winning text per row. */
  winner: Int32Array;
  texts: number;
}

/** Zero-shot classification of image rows over text rows (both unit vectors): softmax of logitScale·cos. */
export function zeroShot(images: Matrix, texts: Matrix, logitScale: number): ZeroShot {
  if (images.dim !== texts.dim) throw new GenaugError('E_SHAPE', `image embeddings are ${images.dim}-wide, text embeddings ${texts.dim}-wide`);
  const T = texts.rows;
  const probs = new Float32Array(images.rows * T);
  const winner = new Int32Array(images.rows);
  const logits = new Float64Array(T);
  for (let i = 0; i < images.rows; i++) {
    let best = 0;
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let k = 0; k < images.dim; k++) s += images.data[i * images.dim + k]! * texts.data[t * texts.dim + k]!;
      logits[t] = logitScale * s;
      if (logits[t]! > logits[best]!) best = t;
    }
    let z = 0;
    for (let t = 0; t < T; t++) z += Math.exp(logits[t]! - logits[best]!);
    for (let t = 0; t < T; t++) probs[i * T + t] = Math.exp(logits[t]! - logits[best]!) / z;
    winner[i] = best;
  }
  return { probs, winner, texts: T };
}

/** ALIA's default negative texts (spec §4). */
export const ALIA_NEGATIVES = ['a photo of an object', 'a photo of geometric shapes', 'a photo', 'an image', 'a painting'];

/** ALIA semantic score: zero-shot over [positive, ...negatives]; the sample is dropped when a negative wins (winner > 0). */
export async function aliaSemantic(
  embedder: ImageTextEmbedder,
  imageEmbeddings: Matrix,
  positive: string,
  negatives: string[] = ALIA_NEGATIVES,
): Promise<{ positiveProb: Float32Array; winner: Int32Array }> {
  const texts = [positive, ...negatives];
  const t = await embedder.embedTexts(texts);
  const z = zeroShot(imageEmbeddings, { data: t, rows: texts.length, dim: embedder.dim }, embedder.logitScale);
  const positiveProb = new Float32Array(imageEmbeddings.rows);
  for (let i = 0; i < imageEmbeddings.rows; i++) positiveProb[i] = z.probs[i * texts.length]!;
  return { positiveProb, winner: z.winner };
}

export interface ClassifierOptions {
  /** Input side (default: from the model's input shape, else 224). */
  size?: number;
  /** Per-channel mean and std on the 0–1 scale (default ImageNet's). */
  mean?: [number, number, number];
  std?: [number, number, number];
  provider?: Provider;
}

/** An image classifier ONNX model: one float32 NCHW image input, one float32 [N, K] logits output. */
export class ImageClassifier {
  private constructor(
    readonly model: OnnxModel,
    readonly input: string,
    readonly output: string,
    readonly size: number,
    readonly mean: [number, number, number],
    readonly std: [number, number, number],
  ) {}

  static async open(path: string, options: ClassifierOptions = {}): Promise<ImageClassifier> {
    const model = await openSession(path, 'classifier', options.provider ? { provider: options.provider } : {});
    const m = checkSignature(model, { inputs: [{ name: 'image', names: ['input', 'pixel_values', 'image', 'images', 'x'], type: 'float32', dims: [null, 3, null, null] }], outputs: [{ name: 'logits', names: ['logits', 'output', 'probs', 'y'], type: 'float32', dims: [null, null] }] }, 'classifier');
    const meta = (model.session as unknown as { inputMetadata?: Array<{ name: string; shape?: unknown[] }> }).inputMetadata;
    const shape = Array.isArray(meta) ? meta.find((x) => x.name === m.inputs.image)?.shape : undefined;
    const side = typeof shape?.[2] === 'number' && (shape[2] as number) > 0 ? (shape[2] as number) : 224;
    return new ImageClassifier(model, m.inputs.image!, m.outputs.logits!, options.size ?? side, options.mean ?? [0.485, 0.456, 0.406], options.std ?? [0.229, 0.224, 0.225]);
  }

  /** Softmax probabilities, rows x classes. Images are resized (bilinear) to size x size. */
  async predict(images: RgbInput[]): Promise<{ probs: Float32Array; classes: number }> {
    const S = this.size;
    const ort = await import('onnxruntime-node');
    const batch = new Float32Array(images.length * 3 * S * S);
    for (let i = 0; i < images.length; i++) {
      const im = images[i]!;
      const buf = await sharp(im.data, { raw: { width: im.width, height: im.height, channels: 3 } }).resize(S, S, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
      for (let c = 0; c < 3; c++) for (let p = 0; p < S * S; p++) batch[i * 3 * S * S + c * S * S + p] = (buf[p * 3 + c]! / 255 - this.mean[c]!) / this.std[c]!;
    }
    if (images.length === 0) return { probs: new Float32Array(0), classes: 0 };
    const out = await runSession(this.model, { [this.input]: new ort.Tensor('float32', batch, [images.length, 3, S, S]) }, [this.output]);
    const t = out[this.output]!;
    const K = Number(t.dims[1]);
    return { probs: softmaxRows(t.data as Float32Array, images.length, K), classes: K };
  }
}

/** Row-wise softmax of logits (rows x k). */
export function softmaxRows(logits: Float32Array, rows: number, k: number): Float32Array {
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[r * k + j]!);
    let z = 0;
    for (let j = 0; j < k; j++) z += Math.exp(logits[r * k + j]! - m);
    for (let j = 0; j < k; j++) out[r * k + j] = Math.exp(logits[r * k + j]! - m) / z;
  }
  return out;
}

/** ALIA / cleanlab confident thresholds: t_k = mean p_k over the real images labelled k (NaN for a class without images). */
export function confidentThresholds(probs: Float32Array, labels: Int32Array, classes: number): Float64Array {
  if (probs.length !== labels.length * classes) throw new GenaugError('E_SHAPE', `${probs.length} probabilities for ${labels.length} images x ${classes} classes`);
  const sum = new Float64Array(classes);
  const n = new Float64Array(classes);
  labels.forEach((y, i) => {
    if (y < 0 || y >= classes) throw new GenaugError('E_RANGE', `label ${y} of real image ${i} is outside the classifier's ${classes} classes`);
    sum[y] = sum[y]! + probs[i * classes + y]!;
    n[y] = n[y]! + 1;
  });
  return sum.map((s, k) => (n[k]! > 0 ? s / n[k]! : Number.NaN));
}

/** Per generated sample: max probability, predicted class, and the threshold of its intended class. */
export function confidenceScores(probs: Float32Array, intended: Int32Array, classes: number, thresholds: Float64Array) {
  const maxProb = new Float32Array(intended.length);
  const pred = new Int32Array(intended.length);
  const threshold = new Float64Array(intended.length);
  intended.forEach((y, i) => {
    if (y < 0 || y >= classes) throw new GenaugError('E_RANGE', `intended class ${y} of sample ${i} is outside the classifier's ${classes} classes`);
    let best = 0;
    for (let k = 1; k < classes; k++) if (probs[i * classes + k]! > probs[i * classes + best]!) best = k;
    maxProb[i] = probs[i * classes + best]!;
    pred[i] = best;
    threshold[i] = thresholds[y]!;
  });
  return { maxProb, pred, threshold };
}

// ------------------------------------------------------------------ plans → layouts

interface PlanLike {
  id: string;
  layout?: Array<{ name: string; box: [number, number, number, number]; attributes?: string[] }>;
  relations?: unknown;
  provenance?: Record<string, unknown>;
}

/**
 * A plan job's layout as a CLIS-L scene. Relations are read from `relations`,
 * `provenance.relations` or `provenance.scene_graph.relations`, in ACP's form
 * ([{subject: [ids], object: [ids], relation}], optionally nested in
 * [{caption, relations: [...]}]). Object ids resolve to layout entries: a
 * number is an index; a string equal to an entry's name is that entry; "name-k"
 * is the k-th (1-based) entry whose name normalises to "name". Unresolved ids
 * become missing objects (the scene then scores 0, "missing-box").
 */
export function planToScene(job: PlanLike): SceneLayout {
  const layout = job.layout ?? [];
  const objects = layout.map((o) => ({ name: o.name, box: o.box as Box }));
  const raw = job.relations ?? job.provenance?.relations ?? (job.provenance?.scene_graph as { relations?: unknown } | undefined)?.relations ?? [];
  const flat: Array<{ subject: unknown; object: unknown; relation: string }> = [];
  const walk = (v: unknown) => {
    if (!Array.isArray(v)) return;
    for (const r of v as Array<Record<string, unknown>>) {
      if (r && Array.isArray(r.relations)) walk(r.relations);
      else if (r && typeof (r.relation ?? r.predicate) === 'string') flat.push({ subject: r.subject, object: r.object, relation: String(r.relation ?? r.predicate) });
    }
  };
  walk(raw);
  const resolve = (id: unknown): number => {
    if (typeof id === 'number') return Number.isInteger(id) && id >= 0 && id < layout.length ? id : -1;
    if (typeof id !== 'string') return -1;
    const exact = layout.findIndex((o) => o.name === id);
    if (exact >= 0) return exact;
    const m = /^(.*)-(\d+)$/.exec(id);
    if (!m) return -1;
    const want = normalizeName(m[1]!);
    let k = Number(m[2]);
    for (let i = 0; i < layout.length; i++) if (normalizeName(layout[i]!.name) === want && --k === 0) return i;
    return -1;
  };
  const ids = (v: unknown) => (Array.isArray(v) ? v.map(resolve) : [resolve(v)]);
  return { objects, relations: flat.map((r) => ({ subject: ids(r.subject), predicate: r.relation, object: ids(r.object) })) };
}

// ------------------------------------------------------------------ CLIS-I

export interface ClisObject {
  name: string;
  /** Normalised xywh. */
  box: [number, number, number, number];
  /** The intended description of this object (its attributes); default: the name. */
  text?: string;
}

export interface ClisImageInput {
  image: RgbInput;
  caption: string;
  objects: ClisObject[];
}

export interface ClisImageResult {
  /** 0–100, or −1 when a grade could not be parsed (rejects the sample). */
  score: number;
  global: number;
  /** Per object: 0.8·region + 0.2·crop (0 when describing that object failed). */
  objects: number[];
  /** Why a score is −1 or an object is 0. */
  notes: string[];
}

/** The box in pixels (xyxy, clipped; at least 1 px). */
function pixelBox(box: ClisObject['box'], W: number, H: number): [number, number, number, number] {
  const x0 = Math.min(W - 1, Math.max(0, Math.floor(box[0] * W)));
  const y0 = Math.min(H - 1, Math.max(0, Math.floor(box[1] * H)));
  const x1 = Math.min(W, Math.max(x0 + 1, Math.ceil((box[0] + box[2]) * W)));
  const y1 = Math.min(H, Math.max(y0 + 1, Math.ceil((box[1] + box[3]) * H)));
  return [x0, y0, x1, y1];
}

export function cropBox(img: RgbInput, box: ClisObject['box']): RgbInput {
  const [x0, y0, x1, y1] = pixelBox(box, img.width, img.height);
  const w = x1 - x0;
  const h = y1 - y0;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x1) * 3), y * w * 3);
  return { data: out, width: w, height: h };
}

/** The whole frame with everything outside the box set to mid-grey (128): the CLIP-mode "region". */
export function regionImage(img: RgbInput, box: ClisObject['box']): RgbInput {
  const [x0, y0, x1, y1] = pixelBox(box, img.width, img.height);
  const out = new Uint8Array(img.data.length).fill(128);
  for (let y = y0; y < y1; y++) out.set(img.data.subarray((y * img.width + x0) * 3, (y * img.width + x1) * 3), (y * img.width + x0) * 3);
  return { data: out, width: img.width, height: img.height };
}

const weigh = (global: number, objects: number[]) => (objects.length === 0 ? global : 0.5 * global + (0.5 * objects.reduce((a, b) => a + b, 0)) / objects.length);

/** CLIS-I `clip` mode: 100·cos for the global image vs caption, the region and the crop vs each object's text; the judge's weights. */
export async function clisImageClip(embedder: ImageTextEmbedder, input: ClisImageInput): Promise<ClisImageResult> {
  const imgs: RgbInput[] = [input.image];
  for (const o of input.objects) imgs.push(regionImage(input.image, o.box), cropBox(input.image, o.box));
  const texts = [input.caption, ...input.objects.map((o) => o.text ?? o.name)];
  const ie = await embedder.embedImages(imgs);
  const te = await embedder.embedTexts(texts);
  const d = embedder.dim;
  const cos = (i: number, t: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += ie[i * d + k]! * te[t * d + k]!;
    return 100 * s;
  };
  const global = cos(0, 0);
  const objects = input.objects.map((_, j) => 0.8 * cos(1 + 2 * j, 1 + j) + 0.2 * cos(2 + 2 * j, 1 + j));
  return { score: weigh(global, objects), global, objects, notes: [] };
}

/**
 * The grade the LLM is asked for. Every property is required (OpenAI's strict json_schema mode demands it), and no
 * others are allowed. What is *accepted* back is more lenient (parseGrade): a valid score is enough.
 */
export const GradeSchema = z.strictObject({ score: z.number().int().min(0).max(5), explanation: z.string() });

/** `response_format` for the grade request: give it to the LLM client (ChatClient's extraBody), as `genaug score clis-i` does. */
export const GRADE_RESPONSE_FORMAT = { type: 'json_schema', json_schema: { name: 'grade', strict: true, schema: z.toJSONSchema(GradeSchema) } };

const GradeAnswer = z.object({ score: z.number().int().min(0).max(5) });

/**
 * Reads a grade from an LLM answer (ALGORITHMS.md §1.2): the JSON key `score` (0–5 integer), else a `score: N`
 * pattern in the text; an answer cut off by the length limit is never read. Returns the grade or why it failed.
 */
export function parseGrade(text: string, finishReason: string | null = 'stop'): { score: number } | { error: string } {
  if (finishReason === 'length') return { error: 'the answer was cut off (finish_reason "length")' };
  try {
    const r = GradeAnswer.safeParse(extractJson(text));
    if (r.success) return { score: r.data.score };
  } catch {
    // not JSON: try the pattern
  }
  const m = /["']?\bscore["']?\s*[:=]\s*["']?(\d+)(?![\d.])/i.exec(text);
  if (m) {
    const v = Number(m[1]);
    if (v >= 0 && v <= 5) return { score: v };
  }
  return { error: `no 0-5 score in the answer: ${JSON.stringify(text.slice(0, 200))}` };
}

export const JUDGE_PROMPTS = {
  describe: 'Describe the image in at most 50 words: the objects, their attributes, the layout and the actions.',
  region: (b: [number, number, number, number]) =>
    `Describe the object in the region <box>(${b[0]},${b[1]}),(${b[2]},${b[3]})</box> of the image (top-left and bottom-right corners on a 0-1000 grid) in at most 30 words: what it is, its colour, texture and what it does.`,
  grade: (truth: string, pred: string) =>
    `You compare an intended description with what a vision model saw. Intended: "${truth}". Seen: "${pred}". ` +
    'Judge whether the objects, their attributes, actions and relations agree (synonyms are fine). ' +
    'Answer with JSON {"score": an integer from 0 (nothing agrees) to 5 (everything agrees), "explanation": one sentence}.',
};

/** Qwen-VL's 0–1000 grid: int(v·1000) − 1, clamped to [0, 999]. */
export function gridBox(box: ClisObject['box']): [number, number, number, number] {
  const g = (v: number) => Math.min(999, Math.max(0, Math.trunc(v * 1000) - 1));
  return [g(box[0]), g(box[1]), g(box[0] + box[2]), g(box[1] + box[3])];
}

async function pngDataUrl(img: RgbInput): Promise<string> {
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
  return imageDataUrl(png);
}

/**
 * CLIS-I `judge` mode (the paper's): the VLM describes the whole image, each
 * box region (its real coordinates in the prompt) and each crop; the LLM
 * grades each description 0–5 against the intended text (parseGrade: JSON
 * `score`, else a `score: N` pattern; re-asked up to `retries` times); grades
 * ×20. A grade that stays unparseable (not JSON without the pattern, out of
 * range, finish_reason "length") makes the whole score −1. A transport or
 * HTTP error of the LLM, or of the VLM on the whole image, throws E_BACKEND:
 * the item fails (it is not a −1). A VLM failure on one object makes that
 * object 0 (spec §1.2). Send GRADE_RESPONSE_FORMAT with the LLM client.
 */
export async function clisImageJudge(
  vlm: ChatClient,
  llm: ChatClient,
  input: ClisImageInput,
  options: { signal?: AbortSignal; /** Re-asks after an unparseable grade (default 3). */ retries?: number } = {},
): Promise<ClisImageResult> {
  const notes: string[] = [];
  const attempts = 1 + (options.retries ?? 3);
  const signal = options.signal ? { signal: options.signal } : {};
  const describe = async (img: RgbInput, prompt: string) => {
    const r = await vlm.complete([{ role: 'user', content: [{ type: 'image_url', image_url: { url: await pngDataUrl(img) } }, { type: 'text', text: prompt }] }], signal);
    return r.text.trim();
  };
  // Transport and HTTP errors (connection refused, 4xx/5xx, timeouts, after the client's own retries) throw E_BACKEND:
  // the item fails, it is not scored. Only an answer that stays unparseable becomes −1.
  const grade = async (truth: string, pred: string, what: string): Promise<number> => {
    let why = '';
    for (let a = 0; a < attempts; a++) {
      const r = await llm.complete([{ role: 'user', content: JUDGE_PROMPTS.grade(truth, pred) }], signal);
      const g = parseGrade(r.text, r.finishReason);
      if ('score' in g) return g.score * 20;
      why = g.error;
    }
    notes.push(`${what}: unparseable grade after ${attempts} attempts (${why})`);
    return -1;
  };
  const globalText = await describe(input.image, JUDGE_PROMPTS.describe);
  const global = await grade(input.caption, globalText, 'global');
  const objects: number[] = [];
  let failed = global < 0;
  for (const [j, o] of input.objects.entries()) {
    const text = o.text ?? o.name;
    let region: string;
    let crop: string;
    try {
      region = await describe(input.image, JUDGE_PROMPTS.region(gridBox(o.box)));
      crop = await describe(cropBox(input.image, o.box), JUDGE_PROMPTS.describe);
    } catch (e) {
      if (!(e instanceof GenaugError) || e.code !== 'E_BACKEND') throw e;
      notes.push(`object ${j} (${o.name}): the VLM failed, scored 0 (${e.message})`);
      objects.push(0);
      continue;
    }
    const r = await grade(text, region, `object ${j} region`);
    const c = await grade(text, crop, `object ${j} crop`);
    if (r < 0 || c < 0) failed = true;
    objects.push(0.8 * r + 0.2 * c);
  }
  return { score: failed ? -1 : weigh(global, objects), global, objects, notes };
}
