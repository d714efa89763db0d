/**
 * The stages of `genaug run`, as data: each names its version, the options
 * that decide its output (its fingerprint), whether it resumes from a journal,
 * and its run function, which reads the files of the stages before it in the
 * run folder and writes its own folder. Adding a stage is one entry here and
 * one name in config.ts's STAGES.
 */
import { existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';

import sharp from 'sharp';

import { annotate } from '../curate/annotate.js';
import { compositeOnWhite, paddingCrop } from '../curate/crops.js';
import { applyFilters, type Rule } from '../curate/filters.js';
import { clipScores, interSimilarity } from '../curate/score.js';
import type { ScoreTable } from '../curate/table.js';
import { datasetGap } from '../curate/gap.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readCoco, type CocoAnnotation, type CocoIndex } from '../io/coco.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { decodeRleSync, encodeRleSync, rleArea, rleToBbox, segmentationToRle, type Rle } from '../kernels/mask.js';
import { classMax, classMean, groupPairs, pairs, topk } from '../kernels/similarity.js';
import type { ImageEmbedder, RgbInput } from '../models/types.js';
import { GenaugError } from '../native/errors.js';
import { PlanJobSchema, type PlanJob } from '../plan/job.js';
import { categoryPriors, type CategoryPrior } from '../plan/priors.js';
import { gaussian, seededRandom } from '../util/random.js';
import { generateProcedural, mixSeed } from '../demo/procedural.js';
import type { LoadedConfig, RunConfig, StageName } from './config.js';
import { ClipModel } from '../models/clip.js';
import { FeatureEmbedder } from '../models/features.js';
import type { Manifest } from './run.js';
import { tarBytes, type TarMember } from './tar.js';

export interface StageContext {
  cfg: LoadedConfig;
  runDir: string;
  /** This stage's folder (RUN/<stage>). */
  dir: string;
  manifest: Manifest;
  log: (line: string) => void;
  progress: (done: number, total: number) => void;
}

export interface StageResult {
  summary: Record<string, unknown>;
}

export interface StageDef {
  /** Bump when the stage's output for the same options changes. */
  version: number;
  /** Resumes from its own journal after an interruption (else starts clean). */
  resumable?: boolean;
  /** Journal files (suffixes) left out of the recorded outputs. */
  journals?: string[];
  inputs: (c: RunConfig) => string[];
  options: (c: RunConfig) => unknown;
  run: (ctx: StageContext) => Promise<StageResult>;
}

const enc = (s: string) => new TextEncoder().encode(s);
export const writeJson = (path: string, v: unknown) => writeFileAtomic(path, enc(JSON.stringify(v, null, 1) + '\n'));
export const writeJsonl = (path: string, rows: unknown[]) => writeFileAtomic(path, enc(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '')));

/** Reads JSON lines; a torn last line (an interrupted append) is ignored. */
export async function readJsonl<T>(path: string): Promise<T[]> {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      /* torn line */
    }
  }
  return out;
}

export const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

/** A class name as a file/folder name. */
export const slug = (name: string) => name.replace(/[^A-Za-z0-9_-]+/g, '_');

/** Runs `fn` over items with `lanes` at a time; stops taking items at the first error and rethrows it. */
async function lanes<T>(items: T[], n: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const lane = async () => {
    for (let i = next++; !failure && i < items.length; i = next++) {
      try {
        await fn(items[i] as T, i);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, lane));
  if (failure) throw failure.e;
}

// --- shared readers -----------------------------------------------------------

export interface ClassInfo {
  name: string;
  /** Category id in the real COCO file. */
  id: number;
  prior: CategoryPrior;
}

/** The classes of the run: plan.classes or every real category, in category id order. */
export async function runClasses(cfg: LoadedConfig, coco?: CocoIndex): Promise<{ coco: CocoIndex; classes: ClassInfo[] }> {
  const real = coco ?? (await readCoco(cfg.paths.realCoco));
  const priors = categoryPriors(real);
  const wanted = cfg.config.plan.classes;
  if (wanted) {
    wanted.forEach((n, i) => {
      if (!priors.some((p) => p.name === n)) {
        throw new GenaugError('E_ARGUMENT', `plan.classes[${i}]: '${n}' is not a category of ${cfg.paths.realCoco} (has: ${priors.map((p) => p.name).join(', ')})`);
      }
    });
  }
  const classes = priors.filter((p) => !wanted || wanted.includes(p.name)).map((p) => ({ name: p.name, id: p.id, prior: p }));
  return { coco: real, classes };
}

// --- plan ---------------------------------------------------------------------

async function runPlan(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const p = c.plan;
  const { coco, classes } = await runClasses(ctx.cfg);
  const jobs: PlanJob[] = [];
  const perClass: Record<string, number> = {};
  for (const cls of classes) {
    const n = cls.prior.frequency === 'r' ? (p.rare_per_class ?? p.per_class) : p.per_class;
    perClass[cls.name] = n;
    // Consecutive seeds within a class: candidate k of job i uses base + i * candidates + k.
    const base = mixSeed(c.seed, cls.id, 11) & 0x3fffffff;
    const gloss = coco.categoryById.get(cls.id)?.def;
    const def = typeof gloss === 'string' ? gloss : '';
    for (let i = 0; i < n; i++) {
      const prompt = p.template
        .replaceAll('{name}', cls.name.replace(/_/g, ' '))
        .replaceAll('{def}', p.strategy === 'divergen' || p.template.includes('{def}') ? def : '')
        .replace(/(,\s*)+,/g, ',')
        .replace(/,\s*$/, '')
        .trim();
      jobs.push(
        PlanJobSchema.parse({
          id: `${slug(cls.name)}-${String(i).padStart(5, '0')}`,
          kind: 'txt2img',
          classes: [cls.name],
          prompt,
          negative_prompt: p.negative_prompt,
          candidates: p.candidates,
          width: p.width,
          height: p.height,
          seed: base + i * p.candidates,
          provenance: { strategy: p.strategy, frequency: cls.prior.frequency, realImages: cls.prior.imageCount },
        }),
      );
    }
  }
  await writeJsonl(join(ctx.dir, 'plan.jsonl'), jobs);
  ctx.log(`${jobs.length} jobs for ${classes.length} classes`);
  return { summary: { jobs: jobs.length, perClass } };
}

// --- generate -----------------------------------------------------------------

interface GenLine {
  file: string;
  category: string;
  job: string;
  candidate: number;
  seed: number;
  prompt: string;
  status: 'ok' | 'failed';
  reason?: string;
  /** Procedural backend: what was really drawn. */
  truth?: string;
}

async function postJson(url: string, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new GenaugError('E_BACKEND', `POST ${url} failed: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`, { url });
  }
  const text = await res.text();
  if (!res.ok) throw new GenaugError('E_BACKEND', `POST ${url} answered ${res.status}: ${text.slice(0, 300)}`, { url, status: res.status });
  try {
    return JSON.parse(text);
  } catch {
    throw new GenaugError('E_BACKEND', `POST ${url} did not answer JSON: ${text.slice(0, 200)}`, { url });
  }
}

/** One image for a job candidate from the configured backend. */
async function generateOne(c: RunConfig, job: PlanJob, seed: number): Promise<{ png: Uint8Array; truth?: string }> {
  const g = c.generate;
  const timeout = g.timeout_s * 1000;
  if (g.backend === 'procedural') {
    const fr = g.failure_rates ?? {};
    const rates = {
      ...(fr.off_class !== undefined ? { offClass: fr.off_class } : {}),
      ...(fr.empty !== undefined ? { empty: fr.empty } : {}),
      ...(fr.near_duplicate !== undefined ? { nearDuplicate: fr.near_duplicate } : {}),
      ...(fr.border !== undefined ? { border: fr.border } : {}),
    };
    const r = await generateProcedural(job.classes[0] as string, seed, { width: job.width, height: job.height, rates });
    return { png: r.png, truth: r.truth };
  }
  const base = (g.url as string).replace(/\/+$/, '');
  let b64: string | undefined;
  if (g.backend === 'a1111') {
    const res = (await postJson(
      `${base}/sdapi/v1/txt2img`,
      {
        prompt: job.prompt,
        negative_prompt: job.negative_prompt,
        seed,
        steps: g.steps,
        cfg_scale: g.cfg_scale,
        width: job.width,
        height: job.height,
        batch_size: 1,
        n_iter: 1,
        ...(g.sampler ? { sampler_name: g.sampler } : {}),
        ...(g.model ? { override_settings: { sd_model_checkpoint: g.model }, override_settings_restore_afterwards: true } : {}),
        send_images: true,
        save_images: false,
      },
      {},
      timeout,
    )) as { images?: unknown };
    b64 = Array.isArray(res.images) && typeof res.images[0] === 'string' ? res.images[0] : undefined;
  } else if (g.backend === 'openai') {
    const key = g.api_key_env ? process.env[g.api_key_env] : undefined;
    const res = (await postJson(
      `${base}/v1/images/generations`,
      { prompt: job.prompt, n: 1, size: `${job.width}x${job.height}`, response_format: 'b64_json', ...(g.model ? { model: g.model } : {}) },
      key ? { authorization: `Bearer ${key}` } : {},
      timeout,
    )) as { data?: Array<{ b64_json?: unknown }> };
    const d = res.data?.[0]?.b64_json;
    b64 = typeof d === 'string' ? d : undefined;
  } else {
    throw new GenaugError('E_BACKEND', "generate.backend 'comfyui' needs the generate stage's ComfyUI client, which this build does not have yet; use a1111, openai or procedural");
  }
  if (!b64) throw new GenaugError('E_BACKEND', `${base} answered without an image`);
  const png = await sharp(Buffer.from(b64.replace(/^data:[^,]*,/, ''), 'base64')).png().toBuffer();
  return { png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength) };
}

async function runGenerate(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const jobs = await readJsonl<PlanJob>(join(ctx.runDir, 'plan', 'plan.jsonl'));
  const tasks = jobs.flatMap((job) =>
    Array.from({ length: job.candidates }, (_, k) => ({
      job,
      k,
      seed: job.seed + k,
      file: `${slug(job.classes[0] as string)}/${job.id}_c${k}.png`,
    })),
  );
  const journal = join(ctx.dir, 'progress.jsonl');
  const done = new Map((await readJsonl<GenLine>(journal)).map((l) => [l.file, l]));
  let finished = tasks.filter((t) => done.has(t.file)).length;
  if (finished) ctx.log(`resuming: ${finished} of ${tasks.length} images already generated`);
  ctx.progress(finished, tasks.length);
  const todo = tasks.filter((t) => !done.has(t.file) || done.get(t.file)?.status === 'failed');
  await lanes(todo, c.generate.concurrency, async (t) => {
    const base: Omit<GenLine, 'status'> = { file: t.file, category: t.job.classes[0] as string, job: t.job.id, candidate: t.k, seed: t.seed, prompt: t.job.prompt };
    let line: GenLine;
    try {
      const r = await generateOne(c, t.job, t.seed);
      const path = join(ctx.dir, 'images', t.file);
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, r.png);
      line = { ...base, status: 'ok', ...(r.truth ? { truth: r.truth } : {}) };
    } catch (e) {
      if (!(e instanceof GenaugError)) throw e;
      line = { ...base, status: 'failed', reason: `[${e.code}] ${e.message}` };
    }
    await appendFile(journal, JSON.stringify(line) + '\n');
    if (!done.has(t.file)) finished++;
    done.set(t.file, line);
    ctx.progress(finished, tasks.length);
  });
  const lines = tasks.map((t) => done.get(t.file) as GenLine);
  await writeJsonl(join(ctx.dir, 'generated.jsonl'), lines);
  await writeJsonl(
    join(ctx.dir, 'categories.jsonl'),
    lines.filter((l) => l.status === 'ok').map((l) => ({ file: l.file, category: l.category })),
  );
  const failed = lines.filter((l) => l.status === 'failed').length;
  if (failed === lines.length && lines.length > 0) throw new GenaugError('E_BACKEND', `every generation failed; first: ${lines[0]?.reason}`);
  return { summary: { images: lines.length - failed, failed, backend: c.generate.backend } };
}

// --- annotate -----------------------------------------------------------------

async function runAnnotate(ctx: StageContext): Promise<StageResult> {
  const a = ctx.cfg.config.annotate;
  const p = ctx.cfg.paths;
  const r = await annotate({
    images: join(ctx.runDir, 'generate', 'images'),
    out: ctx.dir,
    manifest: join(ctx.runDir, 'generate', 'categories.jsonl'),
    method: a.method,
    tolerance: a.tolerance,
    minFraction: a.min_area_fraction,
    maxFraction: a.max_area_fraction,
    workers: a.workers,
    concurrency: Math.max(1, Math.min(4, availableParallelism())),
    ...(a.method === 'sam' ? { models: { samEncoder: p.samEncoder as string, samDecoder: p.samDecoder as string, provider: a.provider } } : {}),
    ...(a.method === 'segmenter' ? { models: { segmenter: p.segmenter as string, provider: a.provider } } : {}),
    onProgress: ctx.progress,
  });
  return { summary: r };
}

// --- embed --------------------------------------------------------------------

async function openEmbedder(cfg: LoadedConfig): Promise<(ImageEmbedder & { close?: () => Promise<void> }) | ClipModel> {
  const e = cfg.config.embed;
  if (e.model === 'features') return new FeatureEmbedder();
  return ClipModel.open(cfg.paths.clip as string, { provider: e.provider, batchSize: e.batch, require: 'both' });
}

export async function decodeRgb(path: string): Promise<RgbInput> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

interface PoolAnnotations {
  images: Array<{ id: number; file_name: string; width: number; height: number }>;
  annotations: Array<{ id: number; image_id: number; category_id: number; segmentation: Rle; area: number; bbox: [number, number, number, number] }>;
  categories: Array<{ id: number; name: string }>;
}

export interface GeneratedRow {
  file: string;
  category: string;
  label: number;
  bbox: [number, number, number, number];
  area: number;
  width: number;
  height: number;
  areaFraction: number;
}

export interface RealRow {
  image: string;
  annotation: number;
  category: string;
  label: number;
}

async function runEmbed(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { coco, classes } = await runClasses(ctx.cfg);
  const labelOf = new Map(classes.map((k, i) => [k.name, i]));
  const labelOfCat = new Map(classes.map((k, i) => [k.id, i]));
  const embedder = await openEmbedder(ctx.cfg);
  const batch = c.embed.batch;
  // Real crops.
  const realRows: RealRow[] = [];
  const realCrops: RgbInput[] = [];
  const realVecs: Float32Array[] = [];
  const flush = async (crops: RgbInput[], into: Float32Array[]) => {
    if (crops.length) into.push(await embedder.embedImages(crops.splice(0)));
  };
  const imgs = [...coco.dataset.images].sort((a, b) => a.id - b.id);
  let done = 0;
  for (const im of imgs) {
    const anns = (coco.annotationsByImage.get(im.id) ?? []).filter((a) => labelOfCat.has(a.category_id) && a.segmentation && a.iscrowd !== 1);
    if (anns.length === 0) continue;
    const rgb = await decodeRgb(join(ctx.cfg.paths.realImages, im.file_name));
    for (const a of anns) {
      const m = decodeRleSync(segmentationToRle(a.segmentation, im.height, im.width));
      if (!m.data.some((v) => v !== 0)) continue;
      realCrops.push(paddingCrop(rgb, m.data, { padding: c.embed.real_crop_padding, blur: 10 }));
      const label = labelOfCat.get(a.category_id) as number;
      realRows.push({ image: im.file_name, annotation: a.id, category: (classes[label] as ClassInfo).name, label });
      if (realCrops.length >= batch) await flush(realCrops, realVecs);
    }
    ctx.progress(++done, imgs.length);
  }
  await flush(realCrops, realVecs);
  // Generated instances: the generated image with the background set to black.
  const pool = await readJson<PoolAnnotations>(join(ctx.runDir, 'annotate', 'annotations.json'));
  const catName = new Map(pool.categories.map((k) => [k.id, k.name]));
  const genRows: GeneratedRow[] = [];
  const genVecs: Float32Array[] = [];
  const genCrops: RgbInput[] = [];
  const annByImage = new Map(pool.annotations.map((a) => [a.image_id, a]));
  for (const im of pool.images) {
    const a = annByImage.get(im.id);
    if (!a) continue;
    const category = catName.get(a.category_id) as string;
    const label = labelOf.get(category);
    if (label === undefined) continue;
    const rgb = await decodeRgb(join(ctx.runDir, 'generate', 'images', im.file_name));
    const m = decodeRleSync(a.segmentation);
    for (let q = 0; q < m.data.length; q++) if (!m.data[q]) rgb.data.fill(0, 3 * q, 3 * q + 3);
    genCrops.push(rgb);
    genRows.push({ file: im.file_name, category, label, bbox: a.bbox, area: a.area, width: im.width, height: im.height, areaFraction: a.area / (im.width * im.height) });
    if (genCrops.length >= batch) await flush(genCrops, genVecs);
  }
  await flush(genCrops, genVecs);
  // X-Paste's CLIP score: the cut-out composited on white against "a photo of {name}" (x 100).
  let clipScored = 0;
  if (embedder instanceof ClipModel) {
    const index = await readJson<{ categories: Record<string, Array<{ file: string; source: string }>> }>(join(ctx.runDir, 'annotate', 'index.json'));
    const instanceOf = new Map(Object.values(index.categories).flatMap((l) => l.map((x) => [x.source, x.file] as const)));
    const scores = new Float32Array(genRows.length);
    for (let i0 = 0; i0 < genRows.length; i0 += batch) {
      const part = genRows.slice(i0, i0 + batch);
      const imgs: RgbInput[] = [];
      for (const r of part) {
        const { data, info } = await sharp(join(ctx.runDir, 'annotate', instanceOf.get(r.file) as string)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        imgs.push(compositeOnWhite(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height));
      }
      scores.set(await clipScores(embedder, imgs, part.map((r) => r.category.replace(/_/g, ' ')), c.embed.clip_template), i0);
    }
    await writeNpy(join(ctx.dir, 'clip_scores.npy'), scores, [genRows.length]);
    clipScored = genRows.length;
  }
  await embedder.close?.();
  const cat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) ((out.set(p, o)), (o += p.length));
    return out;
  };
  const D = embedder.dim;
  await writeNpy(join(ctx.dir, 'real.npy'), cat(realVecs), [realRows.length, D]);
  await writeNpy(join(ctx.dir, 'real_labels.npy'), Int32Array.from(realRows, (r) => r.label), [realRows.length]);
  await writeJsonl(join(ctx.dir, 'real.jsonl'), realRows);
  await writeNpy(join(ctx.dir, 'generated.npy'), cat(genVecs), [genRows.length, D]);
  await writeNpy(join(ctx.dir, 'generated_labels.npy'), Int32Array.from(genRows, (r) => r.label), [genRows.length]);
  await writeJsonl(join(ctx.dir, 'generated.jsonl'), genRows);
  await writeJson(join(ctx.dir, 'classes.json'), { embedder: embedder.name, dim: D, classes: classes.map((k) => k.name) });
  return { summary: { embedder: embedder.name, dim: D, real: realRows.length, generated: genRows.length, clipScored } };
}

// --- score --------------------------------------------------------------------

export interface ScoreRow {
  file: string;
  category: string;
  /** Similarity to the real crops of its own class (mean or max over them). */
  own: number;
  /** The class whose real crops are most similar, and that similarity. */
  bestClass: string;
  best: number;
  /** Of the k nearest real crops, how many share the class. */
  knnAgree: number;
  k: number;
  /** Row of the first (kept) member of its near-duplicate group, or -1. */
  duplicateOf: number;
  /** Cosine to that member. */
  duplicateScore: number;
  touchesBorder: boolean;
  areaFraction: number;
  /** X-Paste's CLIP score (100 cos to "a photo of {name}" on white), with a CLIP model only. */
  clipScore?: number;
}

async function loadMatrix(path: string) {
  const n = await readNpy(path);
  const shape = n.shape as number[];
  return { data: n.data as Float32Array, rows: shape[0] as number, dim: (shape[1] ?? 1) as number };
}

async function runScore(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const e = join(ctx.runDir, 'embed');
  const { classes } = await readJson<{ classes: string[] }>(join(e, 'classes.json'));
  const real = await loadMatrix(join(e, 'real.npy'));
  const realLabels = (await readNpy(join(e, 'real_labels.npy'))).data as Int32Array;
  const gen = await loadMatrix(join(e, 'generated.npy'));
  const rows = await readJsonl<GeneratedRow>(join(e, 'generated.jsonl'));
  const C = classes.length;
  const clipPath = join(e, 'clip_scores.npy');
  const clip = existsSync(clipPath) ? ((await readNpy(clipPath)).data as Float32Array) : undefined;
  const scores: ScoreRow[] = [];
  if (gen.rows > 0 && real.rows > 0) {
    // Own class: DiverGen's inter-similarity (mean or max of cosines to the class's real crops);
    // every class: the class means, to tell which real class a sample is closest to.
    const genLabels = Int32Array.from(rows, (r) => r.label);
    const ownSim = await interSimilarity(gen, genLabels, real, realLabels, { variants: [c.score.inter] });
    const own = c.score.inter === 'max' ? ownSim.max : ownSim.mean;
    const inter = c.score.inter === 'max' ? await classMax(gen, real, realLabels, { numClasses: C }) : await classMean(gen, real, realLabels, { numClasses: C });
    const k = Math.min(c.score.knn, real.rows);
    const knn = await topk(gen, real, k);
    const dupThreshold = c.filter.dedup_threshold ?? 0.99;
    const dup = await pairs(gen, undefined, { threshold: dupThreshold });
    const groups = groupPairs(gen.rows, dup, 'greedy');
    // For each dropped row: the kept row it pairs with most strongly.
    const dupOf = new Int32Array(gen.rows).fill(-1);
    const dupScore = new Float32Array(gen.rows);
    for (let p = 0; p < dup.scores.length; p++) {
      const i = Number(dup.i[p]);
      const j = Number(dup.j[p]);
      // Same class only: a shape drawn for two classes is an off-class problem, not a duplicate.
      if ((rows[i] as GeneratedRow).label !== (rows[j] as GeneratedRow).label) continue;
      if (groups.keep[j] === 0 && groups.keep[i] === 1 && (dup.scores[p] as number) > (dupScore[j] as number)) {
        dupOf[j] = i;
        dupScore[j] = dup.scores[p] as number;
      }
    }
    for (let i = 0; i < gen.rows; i++) {
      const r = rows[i] as GeneratedRow;
      let best = 0;
      for (let q = 1; q < C; q++) if ((inter.values[i * C + q] as number) > (inter.values[i * C + best] as number) || Number.isNaN(inter.values[i * C + best] as number)) best = q;
      let agree = 0;
      for (let x = 0; x < k; x++) agree += realLabels[Number(knn.indices[i * k + x])] === r.label ? 1 : 0;
      const [bx, by, bw, bh] = r.bbox;
      scores.push({
        file: r.file,
        category: r.category,
        own: round(own[i] as number),
        bestClass: classes[best] as string,
        best: round(inter.values[i * C + best] as number),
        knnAgree: agree,
        k,
        duplicateOf: dupOf[i] as number,
        duplicateScore: round(dupScore[i] as number),
        touchesBorder: bx <= 0 || by <= 0 || bx + bw >= r.width || by + bh >= r.height,
        areaFraction: round(r.areaFraction),
        ...(clip ? { clipScore: round(clip[i] as number) } : {}),
      });
    }
  }
  await writeJsonl(join(ctx.dir, 'scores.jsonl'), scores);
  return { summary: { scored: scores.length, duplicates: scores.filter((s) => s.duplicateOf >= 0).length, border: scores.filter((s) => s.touchesBorder).length } };
}

const round = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : v);

// --- filter -------------------------------------------------------------------

export interface Decision {
  file: string;
  category: string;
  status: 'kept' | 'rejected' | 'failed';
  /** The stage that decided: generate, annotate or filter. */
  stage: 'generate' | 'annotate' | 'filter';
  reason?: string;
  truth?: string;
  score?: ScoreRow;
}

async function runFilter(ctx: StageContext): Promise<StageResult> {
  const f = ctx.cfg.config.filter;
  const gen = await readJsonl<GenLine>(join(ctx.runDir, 'generate', 'generated.jsonl'));
  const rejectedAnn = new Map((await readJsonl<{ file: string; status: string; reason: string }>(join(ctx.runDir, 'annotate', 'rejected.jsonl'))).map((r) => [r.file, r]));
  const scores = await readJsonl<ScoreRow>(join(ctx.runDir, 'score', 'scores.jsonl'));
  const byFile = new Map(scores.map((s, i) => [s.file, { s, i }]));
  // A rare class cannot have most of k neighbours among its few real crops: ask for at most half of them.
  const realCount = new Map<string, number>();
  for (const r of await readJsonl<RealRow>(join(ctx.runDir, 'embed', 'real.jsonl'))) realCount.set(r.category, (realCount.get(r.category) ?? 0) + 1);
  // The seed methods' rules (curate/filters.ts) over the scores, as \`genaug filter\` applies them.
  const rules = f.rules as Rule[];
  let methodDecisions: Map<string, { kept: boolean; reason: string; values: Record<string, unknown> }> | undefined;
  if (rules.length) {
    const heads = new Set(scores.filter((s) => s.duplicateOf >= 0).map((s) => scores[s.duplicateOf]?.file));
    const table: ScoreTable = new Map(
      scores.map((s) => [
        s.file,
        {
          category: s.category,
          [ctx.cfg.config.score.inter === 'max' ? 'inter_sim_max' : 'inter_sim_mean']: Number.isFinite(s.own) ? s.own : null,
          area_fraction: s.areaFraction,
          // A group is named by its kept member; that member carries the name too, and comes first in table order.
          dup_group: s.duplicateOf >= 0 ? (scores[s.duplicateOf]?.file ?? null) : heads.has(s.file) ? s.file : null,
          ...(s.clipScore !== undefined ? { clip_score: s.clipScore } : {}),
        },
      ]),
    );
    methodDecisions = new Map(
      applyFilters(table, rules, {
        threshold: f.inter_similarity_min ?? 0.6,
        similarityColumn: ctx.cfg.config.score.inter === 'max' ? 'inter_sim_max' : 'inter_sim_mean',
        minArea: f.min_area_fraction ?? 0.05,
        maxArea: f.max_area_fraction ?? 0.95,
        minClip: f.min_clip,
        tol: f.clip_tolerance,
      }).map((d) => [d.id, d]),
    );
  }
  const decisions: Decision[] = [];
  for (const g of gen) {
    const base = { file: g.file, category: g.category, ...(g.truth ? { truth: g.truth } : {}) };
    if (g.status === 'failed') {
      decisions.push({ ...base, status: 'failed', stage: 'generate', reason: g.reason ?? 'generation failed' });
      continue;
    }
    const rj = rejectedAnn.get(g.file);
    if (rj) {
      decisions.push({ ...base, status: rj.status === 'failed' ? 'failed' : 'rejected', stage: 'annotate', reason: rj.reason });
      continue;
    }
    const hit = byFile.get(g.file);
    if (!hit) {
      decisions.push({ ...base, status: 'rejected', stage: 'filter', reason: 'no score (class has no real examples)' });
      continue;
    }
    const s = hit.s;
    let reason: string | undefined;
    const method = methodDecisions?.get(g.file);
    if (s.duplicateOf >= 0) reason = `near-duplicate of ${scores[s.duplicateOf]?.file} (cosine ${s.duplicateScore.toFixed(3)})`;
    else if (f.reject_border && s.touchesBorder) reason = 'object touches the image border (cut off by the frame)';
    else if (f.min_area_fraction !== undefined && s.areaFraction < f.min_area_fraction) reason = `object covers ${(s.areaFraction * 100).toFixed(1)} % of the image < ${f.min_area_fraction * 100} %`;
    else if (f.max_area_fraction !== undefined && s.areaFraction > f.max_area_fraction) reason = `object covers ${(s.areaFraction * 100).toFixed(1)} % of the image > ${f.max_area_fraction * 100} %`;
    else if (method && !method.kept) reason = `${method.reason.replace(':', ': ')} (${Object.entries(method.values).filter(([k]) => k !== 'category').map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toFixed(4)) : v}`).join(', ')})`;
    else if (f.require_own_class_best && s.bestClass !== s.category) reason = `closer to real '${s.bestClass}' (${s.best.toFixed(3)}) than to real '${s.category}' (${s.own.toFixed(3)})`;
    else if (f.inter_similarity_min !== undefined && !rules.includes('divergen') && !(s.own >= f.inter_similarity_min)) reason = `similarity to real '${s.category}' ${s.own.toFixed(3)} < ${f.inter_similarity_min}`;
    else if (f.knn_agreement_min !== undefined && s.knnAgree < Math.min(f.knn_agreement_min, Math.ceil((realCount.get(s.category) ?? 0) / 2))) reason = `only ${s.knnAgree}/${s.k} nearest real crops are '${s.category}'`;
    decisions.push({ ...base, status: reason ? 'rejected' : 'kept', stage: 'filter', ...(reason ? { reason } : {}), score: s });
  }
  await writeJsonl(join(ctx.dir, 'decisions.jsonl'), decisions);
  const count = (st: string) => decisions.filter((d) => d.status === st).length;
  return { summary: { kept: count('kept'), rejected: count('rejected'), failed: count('failed') } };
}

// --- pool ---------------------------------------------------------------------

export interface PoolEntry {
  file: string;
  source: string;
  score: number;
  areaFraction: number;
}

async function runPool(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { coco, classes } = await runClasses(ctx.cfg);
  const decisions = (await readJsonl<Decision>(join(ctx.runDir, 'filter', 'decisions.jsonl'))).filter((d) => d.status === 'kept');
  const index = await readJson<{ categories: Record<string, Array<{ file: string; source: string }>> }>(join(ctx.runDir, 'annotate', 'index.json'));
  const instanceOf = new Map(Object.values(index.categories).flatMap((l) => l.map((e) => [e.source, e.file] as const)));
  const categories: Record<string, PoolEntry[]> = {};
  for (const cls of classes) {
    let kept = decisions.filter((d) => d.category === cls.name);
    if (c.pool.max_per_class > 0) kept = [...kept].sort((a, b) => (b.score?.own ?? 0) - (a.score?.own ?? 0) || a.file.localeCompare(b.file)).slice(0, c.pool.max_per_class);
    const entries: PoolEntry[] = [];
    for (const d of kept) {
      const inst = instanceOf.get(d.file);
      if (!inst) continue;
      const to = `instances/${slug(cls.name)}/${inst.split('/').pop()}`;
      await mkdir(join(ctx.dir, dirname(to)), { recursive: true });
      await copyFile(join(ctx.runDir, 'annotate', inst), join(ctx.dir, to));
      entries.push({ file: to, source: d.file, score: d.score?.own ?? 0, areaFraction: d.score?.areaFraction ?? 0 });
    }
    categories[cls.name] = entries.sort((a, b) => a.file.localeCompare(b.file));
  }
  await writeJson(join(ctx.dir, 'pool.json'), { categories });
  // X-Paste's area_mean_std2.json: {"<1-based real category id>": [mean, std]} of sqrt(box area / image area).
  const priors = categoryPriors(coco);
  const sizes: Record<string, [number, number]> = {};
  for (const p of priors) if (p.size) sizes[String(p.id)] = [round(p.size.mean), round(p.size.std)];
  await writeJson(join(ctx.dir, 'size_prior.json'), sizes);
  const perClass = Object.fromEntries(Object.entries(categories).map(([k, v]) => [k, v.length]));
  return { summary: { instances: Object.values(categories).reduce((s, v) => s + v.length, 0), perClass } };
}

// --- paste + export -------------------------------------------------------------

interface Inst {
  category_id: number;
  mask: Uint8Array;
  box: [number, number, number, number]; // xyxy, exclusive max
  source: 0 | 1;
  from?: string;
}

function maskBox(m: Uint8Array, W: number, H: number): [number, number, number, number] {
  let x0 = W;
  let y0 = H;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      if (m[y * W + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 + 1, y1 + 1];
}

interface LoadedInstance {
  category: string;
  categoryId: number;
  rgba: Buffer;
  width: number;
  height: number;
  file: string;
}

async function pasteImage(
  c: RunConfig,
  rgb: Uint8Array,
  W: number,
  H: number,
  real: Inst[],
  pool: Map<string, LoadedInstance[]>,
  sizePrior: Map<number, [number, number]>,
  r: () => number,
): Promise<Inst[]> {
  const p = c.paste;
  const insts = real.map((x) => ({ ...x }));
  const nonEmpty = [...pool.keys()].filter((k) => (pool.get(k) as LoadedInstance[]).length > 0).sort();
  const all = nonEmpty.flatMap((k) => pool.get(k) as LoadedInstance[]);
  if (all.length === 0) return insts;
  const n = Math.floor(r() * p.max_samples);
  for (let a = 0; a < n; a++) {
    let src: LoadedInstance;
    if (p.sampling === 'cas_random') {
      const list = pool.get(nonEmpty[Math.floor(r() * nonEmpty.length)] as string) as LoadedInstance[];
      src = list[Math.floor(r() * list.length)] as LoadedInstance;
    } else src = all[Math.floor(r() * all.length)] as LoadedInstance;
    let w2: number;
    let h2: number;
    const prior = sizePrior.get(src.categoryId);
    const jitter = p.aspect_jitter[0] + r() * (p.aspect_jitter[1] - p.aspect_jitter[0]);
    if (prior) {
      const s = Math.min(0.5, Math.max(10 / H, prior[0] + prior[1] * gaussian(r)));
      const T = s * s * H * W;
      const ratio = (src.width / src.height) * jitter;
      w2 = Math.floor(Math.sqrt(ratio * T));
      h2 = Math.floor(w2 / ratio);
      if (w2 < 5 || h2 < 5 || w2 >= W || h2 >= H) continue;
    } else {
      const f = p.random_scale[0] + r() * (p.random_scale[1] - p.random_scale[0]);
      w2 = Math.floor(src.width * f * jitter);
      h2 = Math.floor(src.height * f);
      if (w2 < 3 || h2 < 3 || w2 >= W || h2 >= H) continue;
    }
    const flip = r() < p.flip;
    const cx = Math.floor(r() * W);
    const cy = Math.floor(r() * H);
    let img = sharp(src.rgba, { raw: { width: src.width, height: src.height, channels: 4 } }).resize(w2, h2, { fit: 'fill', kernel: 'linear' });
    if (flip) img = img.flop();
    const px = new Uint8Array(await img.raw().toBuffer());
    const ox = cx - Math.floor(w2 / 2);
    const oy = cy - Math.floor(h2 / 2);
    const m = new Uint8Array(W * H);
    const weight = new Float32Array(W * H);
    for (let y = 0; y < h2; y++) {
      const yy = oy + y;
      if (yy < 0 || yy >= H) continue;
      for (let x = 0; x < w2; x++) {
        const xx = ox + x;
        if (xx < 0 || xx >= W) continue;
        const al = px[4 * (y * w2 + x) + 3] as number;
        if (al > 0) {
          m[yy * W + xx] = 1;
          weight[yy * W + xx] = p.blend === 'alpha' ? al / 255 : 1;
        }
      }
    }
    if (p.blend === 'gaussian') {
      // A 5 x 5 box blur of the mask as the blend weight (what the reference code's "gaussian" does).
      const wsrc = Float32Array.from(m);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          let s = 0;
          let k = 0;
          for (let dy = -2; dy <= 2; dy++)
            for (let dx = -2; dx <= 2; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy >= 0 && yy < H && xx >= 0 && xx < W) ((s += wsrc[yy * W + xx] as number), k++);
            }
          weight[y * W + x] = m[y * W + x] ? s / k : 0;
        }
    }
    const box = maskBox(m, W, H);
    if (box[2] === 0) continue;
    for (let y = 0; y < h2; y++) {
      const yy = oy + y;
      if (yy < 0 || yy >= H) continue;
      for (let x = 0; x < w2; x++) {
        const xx = ox + x;
        if (xx < 0 || xx >= W) continue;
        const q = yy * W + xx;
        const t = weight[q] as number;
        if (t <= 0) continue;
        for (let k = 0; k < 3; k++) rgb[3 * q + k] = Math.round((rgb[3 * q + k] as number) * (1 - t) + (px[4 * (y * w2 + x) + k] as number) * t);
      }
    }
    // Occlusion: earlier instances lose the pixels the new one covers.
    for (let i = insts.length - 1; i >= 0; i--) {
      const e = insts[i] as Inst;
      for (let q = 0; q < m.length; q++) if (m[q]) e.mask[q] = 0;
      const nb = maskBox(e.mask, W, H);
      let area = 0;
      for (let q = 0; q < e.mask.length; q++) area += e.mask[q] as number;
      const moved = Math.max(...nb.map((v, k) => Math.abs(v - (e.box[k] as number))));
      if (moved <= p.keep_moved_px || area > p.keep_min_area) e.box = nb;
      else insts.splice(i, 1);
    }
    insts.push({ category_id: src.categoryId, mask: m, box, source: 1, from: src.file });
  }
  return insts.filter((x) => x.mask.some((v) => v !== 0));
}

async function runPaste(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { coco, classes } = await runClasses(ctx.cfg);
  const poolJson = await readJson<{ categories: Record<string, PoolEntry[]> }>(join(ctx.runDir, 'pool', 'pool.json'));
  const pool = new Map<string, LoadedInstance[]>();
  for (const cls of classes) {
    const list: LoadedInstance[] = [];
    for (const e of poolJson.categories[cls.name] ?? []) {
      const { data, info } = await sharp(join(ctx.runDir, 'pool', e.file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      list.push({ category: cls.name, categoryId: cls.id, rgba: data, width: info.width, height: info.height, file: e.file });
    }
    pool.set(cls.name, list);
  }
  const sizePrior = new Map<number, [number, number]>(
    Object.entries(await readJson<Record<string, [number, number]>>(join(ctx.runDir, 'pool', 'size_prior.json'))).map(([k, v]) => [Number(k), v]),
  );
  const cocoDir = join(ctx.dir, 'coco');
  const wdsDir = join(ctx.dir, 'webdataset');
  const formats = new Set(c.export.formats);
  await mkdir(join(cocoDir, 'images'), { recursive: true });
  if (formats.has('webdataset')) await mkdir(wdsDir, { recursive: true });
  const images: unknown[] = [];
  const annotations: unknown[] = [];
  const members: TarMember[] = [];
  const shards: string[] = [];
  let shardSamples = 0;
  const flushShard = async () => {
    if (!members.length) return;
    const name = `shard-${String(shards.length).padStart(6, '0')}.tar`;
    await writeFileAtomic(join(wdsDir, name), tarBytes(members.splice(0)));
    shards.push(name);
    shardSamples = 0;
  };
  const imgs = [...coco.dataset.images].sort((a, b) => a.id - b.id);
  let annId = 1;
  let imgId = 1;
  let pasted = 0;
  for (const im of imgs) {
    const src = await decodeRgb(join(ctx.cfg.paths.realImages, im.file_name));
    const W = src.width;
    const H = src.height;
    const real: Inst[] = (coco.annotationsByImage.get(im.id) ?? [])
      .filter((a: CocoAnnotation) => a.segmentation && a.iscrowd !== 1)
      .map((a) => {
        const mask = decodeRleSync(segmentationToRle(a.segmentation, H, W)).data;
        return { category_id: a.category_id, mask, box: maskBox(mask, W, H), source: 0 as const };
      });
    for (let k = 0; k < c.paste.copies_per_image; k++) {
      const r = seededRandom(mixSeed(c.seed, im.id, k, 77));
      const rgb = new Uint8Array(src.data);
      const insts = await pasteImage(c, rgb, W, H, real.map((x) => ({ ...x, mask: new Uint8Array(x.mask) })), pool, sizePrior, r);
      const stem = im.file_name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_');
      const key = `${stem}_aug${k}`;
      const jpg = new Uint8Array(await sharp(Buffer.from(rgb), { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: c.export.jpeg_quality }).toBuffer());
      const fileName = `${key}.jpg`;
      await writeFileAtomic(join(cocoDir, 'images', fileName), jpg);
      const image = { id: imgId, file_name: `images/${fileName}`, width: W, height: H, source_image: im.file_name };
      images.push(image);
      const seg = new Uint8Array(W * H);
      const anns = insts.map((x, j) => {
        const rle = encodeRleSync({ data: x.mask, height: H, width: W });
        for (let q = 0; q < x.mask.length; q++) if (x.mask[q]) seg[q] = Math.min(255, j + 1);
        if (x.source === 1) pasted++;
        return {
          id: annId++,
          image_id: imgId,
          category_id: x.category_id,
          segmentation: rle,
          area: rleArea(rle),
          bbox: rleToBbox(rle),
          iscrowd: 0,
          instance_source: x.source,
          ...(x.from ? { pool_instance: x.from } : {}),
        };
      });
      annotations.push(...anns);
      if (formats.has('webdataset')) {
        const png = new Uint8Array(await sharp(Buffer.from(seg), { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer());
        members.push(
          { name: `${key}.jpg`, data: jpg },
          { name: `${key}.json`, data: enc(JSON.stringify({ image: { ...image, file_name: fileName }, annotations: anns, categories: coco.dataset.categories.map((q) => ({ id: q.id, name: q.name })) })) },
          { name: `${key}.seg.png`, data: png },
        );
        if (++shardSamples >= c.export.shard_size) await flushShard();
      }
      imgId++;
    }
  }
  if (formats.has('webdataset')) await flushShard();
  const categories = coco.dataset.categories.map((q) => ({ id: q.id, name: q.name, supercategory: q.supercategory ?? 'object' }));
  await writeJson(join(cocoDir, 'annotations.json'), { info: { description: 'genaug paste output', version: '1' }, licenses: [], images, annotations, categories });
  return { summary: { images: images.length, annotations: annotations.length, pasted, shards: shards.length } };
}

// --- report -------------------------------------------------------------------

async function runReport(ctx: StageContext): Promise<StageResult> {
  const { writeReport } = await import('../report/report.js');
  return writeReport(ctx);
}

export const STAGE_DEFS: Record<StageName, StageDef> = {
  plan: { version: 1, inputs: () => ['real.coco'], options: (c) => ({ plan: c.plan }), run: runPlan },
  generate: {
    version: 1,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['plan/plan.jsonl'],
    // The server URL is not part of the identity: the same server moved elsewhere gives the same images.
    options: (c) => ({ ...c.generate, url: undefined, concurrency: undefined, timeout_s: undefined }),
    run: runGenerate,
  },
  annotate: {
    version: 1,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['generate/images', 'generate/categories.jsonl'],
    options: (c) => ({ ...c.annotate, workers: undefined }),
    run: runAnnotate,
  },
  embed: { version: 1, inputs: () => ['real.coco', 'real.images', 'annotate/annotations.json'], options: (c) => ({ embed: c.embed }), run: runEmbed },
  score: { version: 1, inputs: () => ['embed/*.npy'], options: (c) => ({ score: c.score, dedup: c.filter.dedup_threshold ?? 0.99 }), run: runScore },
  filter: { version: 1, inputs: () => ['generate/generated.jsonl', 'annotate/rejected.jsonl', 'score/scores.jsonl'], options: (c) => ({ filter: c.filter, inter: c.score.inter }), run: runFilter },
  pool: { version: 1, inputs: () => ['filter/decisions.jsonl', 'annotate/index.json', 'real.coco'], options: (c) => ({ pool: c.pool }), run: runPool },
  paste: { version: 1, inputs: () => ['pool/pool.json', 'pool/size_prior.json', 'real.coco', 'real.images'], options: (c) => ({ paste: c.paste, export: c.export }), run: runPaste },
  report: { version: 1, inputs: () => ['run.json', 'every stage folder'], options: (c) => ({ report: c.report }), run: runReport },
};

/** Width the report's gap is computed in: wider embeddings go through a seeded random projection first. */
export const GAP_DIM = 128;

/**
 * A seeded Gaussian random projection to `k` columns (Johnson-Lindenstrauss:
 * cosines are kept approximately). The Fréchet distance needs a k x k matrix
 * square root per class; at CLIP/features widths (768-1701) that would take
 * minutes for a report, at 128 it takes milliseconds.
 */
export function randomProjection(m: { data: Float32Array; rows: number; dim: number }, k: number, seed: number) {
  if (m.dim <= k) return m;
  const r = seededRandom(seed);
  const P = new Float32Array(m.dim * k);
  for (let i = 0; i < P.length; i++) P[i] = gaussian(r) / Math.sqrt(k);
  const out = new Float32Array(m.rows * k);
  for (let i = 0; i < m.rows; i++)
    for (let d = 0; d < m.dim; d++) {
      const v = m.data[i * m.dim + d] as number;
      if (v === 0) continue;
      for (let j = 0; j < k; j++) out[i * k + j] = (out[i * k + j] as number) + v * (P[d * k + j] as number);
    }
  return { data: out, rows: m.rows, dim: k };
}

/** Used by the report: the gap between real and kept synthetic embeddings, overall and per class. */
export async function gapOf(runDir: string, keptFiles: Set<string>) {
  const e = join(runDir, 'embed');
  const real = randomProjection(await loadMatrix(join(e, 'real.npy')), GAP_DIM, 12345);
  const realLabels = (await readNpy(join(e, 'real_labels.npy'))).data as Int32Array;
  const gen = randomProjection(await loadMatrix(join(e, 'generated.npy')), GAP_DIM, 12345);
  const rows = await readJsonl<GeneratedRow>(join(e, 'generated.jsonl'));
  const pick = (want: (i: number) => boolean) => {
    const idx = rows.map((_, i) => i).filter(want);
    const data = new Float32Array(idx.length * gen.dim);
    idx.forEach((r, o) => data.set(gen.data.subarray(r * gen.dim, (r + 1) * gen.dim), o * gen.dim));
    return { m: { data, rows: idx.length, dim: gen.dim }, labels: Int32Array.from(idx, (i) => (rows[i] as GeneratedRow).label) };
  };
  const all = pick(() => true);
  const kept = pick((i) => keptFiles.has((rows[i] as GeneratedRow).file));
  const labels = (x: { labels: Int32Array }) => ({ real: realLabels, synthetic: x.labels });
  return {
    before: all.m.rows > 1 ? await datasetGap(real, all.m, labels(all)) : undefined,
    after: kept.m.rows > 1 ? await datasetGap(real, kept.m, labels(kept)) : undefined,
  };
}
