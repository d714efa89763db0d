/**
 * The stages of `genaug run`, as data: each names its version, the options
 * that decide its output (its fingerprint), whether it resumes from a journal,
 * and its run function, which reads the files of the stages before it in the
 * run folder and writes its own folder. Adding a stage is one entry here and
 * one name in config.ts's STAGES.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
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
import { readCoco, type CocoIndex } from '../io/coco.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { decodeRleSync, segmentationToRle, type Rle } from '../kernels/mask.js';
import { classMax, classMean, groupPairs, pairs, topk } from '../kernels/similarity.js';
import type { ImageEmbedder, RgbInput } from '../models/types.js';
import { GenaugError } from '../native/errors.js';
import { paste, type PasteSummary } from '../augment/paste.js';
import { generate, type BackendSpec, type GenerateJournalLine } from '../generate/runner.js';
import { PlanJobSchema, type PlanJob } from '../plan/job.js';
import { plan } from '../plan/plan.js';
import { categoryPriors, type CategoryPrior } from '../plan/priors.js';
import { gaussian, seededRandom } from '../util/random.js';
import { mixSeed } from '../util/random.js';
import { ClipModel } from '../models/clip.js';
import { FeatureEmbedder } from '../models/features.js';
import type { LoadedConfig, RunConfig, StageName } from './config.js';
import { ProceduralBackend } from '../generate/procedural.js';
import type { Manifest } from './run.js';

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
  /** A done stage's work left that a re-run can do (why, or undefined): it is then run again, resuming. */
  pending?: (dir: string) => Promise<string | undefined>;
  /** Files (or folders) outside the run folder whose content decides the output: models, workflows. */
  files?: (cfg: LoadedConfig) => Array<string | undefined>;
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

function endpoint(e: { url: string; model: string; api_key_env?: string | undefined } | undefined) {
  if (!e) return undefined;
  const key = e.api_key_env ? process.env[e.api_key_env] : undefined;
  return { url: e.url, model: e.model, ...(key ? { apiKey: key } : {}) };
}

async function runPlan(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const p = c.plan;
  const { coco, classes } = await runClasses(ctx.cfg);
  const out = join(ctx.dir, 'plan.jsonl');
  // template/divergen: one job per class whose candidates are the class's images (rare classes: rare_per_class).
  const single = p.strategy === 'template' || p.strategy === 'divergen';
  const llm = endpoint(c.llm);
  const vlm = endpoint(c.vlm);
  const summary = await plan({
    coco,
    out,
    strategy: p.strategy,
    classes: classes.map((k) => k.name),
    seed: c.seed,
    candidates: single ? p.per_class : p.candidates,
    width: p.width,
    height: p.height,
    negativePrompt: p.negative_prompt,
    imageRoot: ctx.cfg.paths.realImages,
    cache: join(ctx.dir, 'answers.jsonl'),
    ...(ctx.cfg.paths.captions ? { captionSources: ctx.cfg.paths.captions } : {}),
    ...(!single ? { perClass: p.per_class } : {}),
    ...(p.modes ? { modes: p.modes } : {}),
    ...(p.domains ? { domains: p.domains } : {}),
    ...(p.strength !== undefined ? { strength: p.strength } : {}),
    ...(p.scenes !== undefined ? { scenes: p.scenes } : {}),
    ...(llm ? { llm } : {}),
    ...(vlm ? { vlm } : {}),
    onNote: ctx.log,
    onProgress: ctx.progress,
  });
  let jobs = await readJsonl<PlanJob>(out);
  if (jobs.length === 0) {
    const first = (await readJsonl<{ item: string; stage: string; reason: string }>(summary.failuresPath))[0];
    throw new GenaugError('E_ARGUMENT', `the plan has no jobs${first ? ` (${summary.failures} failures; first: ${first.item}, ${first.stage}: ${first.reason})` : ''}; see ${summary.failuresPath}`, { failures: summary.failures });
  }
  if (single && p.rare_per_class !== undefined) {
    const rare = new Set(classes.filter((k) => k.prior.frequency === 'r').map((k) => k.name));
    jobs = jobs.map((j) => (rare.has(j.classes[0] as string) ? PlanJobSchema.parse({ ...j, candidates: p.rare_per_class }) : j));
    await writeJsonl(out, jobs);
  }
  const perClass: Record<string, number> = {};
  for (const j of jobs) for (const k of j.classes.slice(0, 1)) perClass[k] = (perClass[k] ?? 0) + j.candidates;
  ctx.log(`${jobs.length} jobs, ${Object.values(perClass).reduce((a, b) => a + b, 0)} images for ${classes.length} classes`);
  return { summary: { jobs: jobs.length, images: Object.values(perClass).reduce((a, b) => a + b, 0), failures: summary.failures, perClass } };
}

// --- generate -----------------------------------------------------------------

/** One line of generate/generated.jsonl: every (job, candidate) of the plan, in plan order. */
export interface GenLine {
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

function backendSpecs(cfg: LoadedConfig, procedural?: ProceduralBackend): BackendSpec[] {
  const g = cfg.config.generate;
  if (g.backend === 'procedural') return [{ type: 'procedural' as unknown as BackendSpec['type'], url: 'procedural://genaug', label: 'procedural', backend: procedural as ProceduralBackend }];
  const key = g.api_key_env ? process.env[g.api_key_env] : undefined;
  return [
    {
      type: g.backend,
      url: g.url as string,
      ...(g.model ? { model: g.model } : {}),
      params: { ...(g.backend === 'a1111' ? { steps: g.steps, cfg_scale: g.cfg_scale, ...(g.sampler ? { sampler_name: g.sampler } : {}) } : {}), ...(g.params ?? {}) },
      ...(key ? { apiKey: key } : {}),
    },
  ];
}

async function runGenerate(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const g = c.generate;
  const fr = g.failure_rates ?? {};
  const procedural =
    g.backend === 'procedural'
      ? new ProceduralBackend({
          ...(fr.off_class !== undefined ? { offClass: fr.off_class } : {}),
          ...(fr.empty !== undefined ? { empty: fr.empty } : {}),
          ...(fr.near_duplicate !== undefined ? { nearDuplicate: fr.near_duplicate } : {}),
          ...(fr.border !== undefined ? { border: fr.border } : {}),
        })
      : undefined;
  const specs = backendSpecs(ctx.cfg, procedural);
  if (g.backend === 'comfyui' && ctx.cfg.paths.workflow) {
    (specs[0] as BackendSpec).workflow = JSON.parse(await readFile(ctx.cfg.paths.workflow, 'utf8'));
    (specs[0] as BackendSpec).workflowName = ctx.cfg.paths.workflow;
  }
  const planPath = join(ctx.runDir, 'plan', 'plan.jsonl');
  const summary = await generate(planPath, {
    out: ctx.dir,
    backends: specs,
    concurrency: g.concurrency,
    timeoutMs: g.timeout_s * 1000,
    retries: g.retries,
    onNote: ctx.log,
    onProgress: (pr) => ctx.progress(pr.done, pr.total),
  });
  // One line per (job, candidate) in plan order, with the truth of the procedural generator.
  const jobs = await readJsonl<PlanJob>(planPath);
  const journal = new Map((await readJsonl<GenerateJournalLine>(join(ctx.dir, 'journal.jsonl'))).map((l) => [`${l.job}\u0000${l.candidate}`, l]));
  const lines: GenLine[] = [];
  for (const j of jobs) {
    for (let k = 0; k < j.candidates; k++) {
      const l = journal.get(`${j.id}\u0000${k}`);
      const base = { category: j.classes[0] as string, job: j.id, candidate: k, seed: j.seed + k, prompt: j.prompt };
      if (l?.status === 'ok' && l.file) lines.push({ file: l.file, ...base, status: 'ok', ...(procedural ? { truth: procedural.truth(k, j.seed + k) } : {}) });
      else lines.push({ file: `${j.id}_c${k}`, ...base, status: 'failed', reason: l?.error ? `[${l.error.code}] ${l.error.message}` : 'not generated' });
    }
  }
  await writeJsonl(join(ctx.dir, 'generated.jsonl'), lines);
  if (summary.ok === 0 && summary.items > 0) throw new GenaugError('E_BACKEND', `every generation failed; first: ${lines[0]?.reason}`);
  return { summary: { images: summary.ok, failed: summary.failed, duplicates: summary.duplicates, backend: g.backend } };
}

/** Generations journaled as failed and retryable (5xx, timeouts, lost connections): genaug generate tries them again. */
async function generatePending(dir: string): Promise<string | undefined> {
  const last = new Map((await readJsonl<GenerateJournalLine>(join(dir, 'journal.jsonl'))).map((l) => [`${l.job}\u0000${l.candidate}`, l]));
  const n = [...last.values()].filter((l) => l.status === 'failed' && l.retryable === true).length;
  return n ? `${n} generation${n === 1 ? '' : 's'} failed with a retryable error` : undefined;
}

// --- annotate -----------------------------------------------------------------

async function runAnnotate(ctx: StageContext): Promise<StageResult> {
  const a = ctx.cfg.config.annotate;
  const p = ctx.cfg.paths;
  const r = await annotate({
    images: join(ctx.runDir, 'generate', 'images'),
    out: ctx.dir,
    manifest: join(ctx.runDir, 'generate', 'manifest.jsonl'),
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
  // At most max_real_per_class crops per class: a seeded choice among its annotations, the same on every run.
  const cap = c.embed.max_real_per_class;
  let chosen: Set<number> | undefined;
  if (cap > 0) {
    chosen = new Set();
    const byClass = new Map<number, number[]>();
    for (const a of coco.dataset.annotations) {
      if (!labelOfCat.has(a.category_id) || !a.segmentation || a.iscrowd === 1) continue;
      let l = byClass.get(a.category_id);
      if (!l) byClass.set(a.category_id, (l = []));
      l.push(a.id);
    }
    for (const [cat, ids] of byClass) {
      const r = seededRandom(mixSeed(c.seed, cat, 31));
      const order = ids.sort((x, y) => x - y).map((id) => ({ id, k: r() })).sort((x, y) => x.k - y.k);
      for (const o of order.slice(0, cap)) chosen.add(o.id);
    }
  }
  let done = 0;
  for (const im of imgs) {
    const anns = (coco.annotationsByImage.get(im.id) ?? []).filter((a) => labelOfCat.has(a.category_id) && a.segmentation && a.iscrowd !== 1 && (!chosen || chosen.has(a.id)));
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
  // Rows in plan order (job, then candidate), so near-duplicate groups keep the earlier candidate.
  const order = new Map((await readJsonl<GenLine>(join(ctx.runDir, 'generate', 'generated.jsonl'))).map((l, i) => [l.file, i]));
  const poolImages = [...pool.images].sort((x, y) => (order.get(x.file_name) ?? Infinity) - (order.get(y.file_name) ?? Infinity) || x.file_name.localeCompare(y.file_name));
  for (const im of poolImages) {
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
  // Near-duplicates are dropped only when asked for (X-Paste and DiverGen keep them): a threshold or the dedup rule.
  const dedup = f.dedup_threshold !== undefined || rules.includes('dedup');
  let methodDecisions: Map<string, { kept: boolean; reason: string; values: Record<string, unknown> }> | undefined;
  if (rules.length) {
    const table: ScoreTable = new Map(
      scores.map((s) => [
        s.file,
        {
          category: s.category,
          [ctx.cfg.config.score.inter === 'max' ? 'inter_sim_max' : 'inter_sim_mean']: Number.isFinite(s.own) ? s.own : null,
          area_fraction: s.areaFraction,
          // Every row has a group, named by its kept member (which comes first in table order); singletons are their own.
          dup_group: s.duplicateOf >= 0 ? (scores[s.duplicateOf]?.file ?? s.file) : s.file,
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
    if (dedup && s.duplicateOf >= 0) reason = `near-duplicate of ${scores[s.duplicateOf]?.file} (cosine ${s.duplicateScore.toFixed(3)})`;
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
  /** The instance's box in its generated image ([x, y, w, h]; w x h is the crop size). */
  bbox: number[];
}

async function runPool(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { coco, classes } = await runClasses(ctx.cfg);
  const decisions = (await readJsonl<Decision>(join(ctx.runDir, 'filter', 'decisions.jsonl'))).filter((d) => d.status === 'kept');
  const index = await readJson<{ categories: Record<string, Array<{ file: string; source: string; bbox: number[] }>> }>(join(ctx.runDir, 'annotate', 'index.json'));
  const instanceOf = new Map(Object.values(index.categories).flatMap((l) => l.map((e) => [e.source, e.file] as const)));
  const boxOf = new Map(Object.values(index.categories).flatMap((l) => l.map((e) => [e.source, e.bbox] as const)));
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
      entries.push({ file: to, source: d.file, score: d.score?.own ?? 0, areaFraction: d.score?.areaFraction ?? 0, bbox: boxOf.get(d.file) ?? [] });
    }
    categories[cls.name] = entries.sort((a, b) => a.file.localeCompare(b.file));
  }
  // genaug's pool layout (as genaug annotate writes it), which genaug paste and the online loader read.
  await writeJson(join(ctx.dir, 'index.json'), { categories });
  // X-Paste's area_mean_std2.json: {"<1-based real category id>": [mean, std]} of sqrt(box area / image area).
  const priors = categoryPriors(coco);
  const sizes: Record<string, [number, number]> = {};
  for (const p of priors) if (p.size) sizes[String(p.id)] = [round(p.size.mean), round(p.size.std)];
  await writeJson(join(ctx.dir, 'size_prior.json'), sizes);
  const perClass = Object.fromEntries(Object.entries(categories).map(([k, v]) => [k, v.length]));
  return { summary: { instances: Object.values(categories).reduce((s, v) => s + v.length, 0), perClass } };
}

// --- paste + export -------------------------------------------------------------

async function runPaste(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const p = c.paste;
  const summaries: Record<string, PasteSummary> = {};
  // One render per format (each folder is a complete dataset: images + annotations); same seed, same images.
  for (const format of c.export.formats) {
    summaries[format] = await paste({
      coco: ctx.cfg.paths.realCoco,
      images: ctx.cfg.paths.realImages,
      pool: join(ctx.runDir, 'pool'),
      priors: join(ctx.runDir, 'pool', 'size_prior.json'),
      seed: c.seed,
      out: join(ctx.dir, format),
      format,
      copies: p.copies_per_image,
      jpegQuality: c.export.jpeg_quality,
      shardSize: c.export.shard_size,
      workers: p.workers,
      maxSamples: p.max_samples,
      sampling: p.sampling,
      aspectJitter: p.aspect_jitter,
      flipProbability: p.flip,
      randomScaleRange: p.random_scale,
      blend: p.blend,
      maskThreshold: p.mask_threshold,
      keepMaxShift: p.keep_moved_px,
      keepMinArea: p.keep_min_area,
      onProgress: ctx.progress,
    });
  }
  const first = Object.values(summaries)[0] as PasteSummary;
  return { summary: { images: first.ok, failed: first.failed, annotations: first.realInstances + first.pastedInstances, pasted: first.pastedInstances, dropped: first.dropped, formats: c.export.formats } };
}

// --- report -------------------------------------------------------------------

async function runReport(ctx: StageContext): Promise<StageResult> {
  const { writeReport } = await import('../report/report.js');
  return writeReport(ctx);
}

export const STAGE_DEFS: Record<StageName, StageDef> = {
  plan: { version: 2, inputs: () => ['real.coco'], files: (cfg) => cfg.paths.captions ?? [], options: (c) => ({ plan: c.plan, llm: c.llm ? { url: undefined, model: c.llm.model } : null, vlm: c.vlm ? { model: c.vlm.model } : null }), journals: ['answers.jsonl'], run: runPlan },
  generate: {
    version: 1,
    resumable: true,
    journals: ['journal.jsonl'],
    inputs: () => ['plan/plan.jsonl'],
    // The server URL is not part of the identity: the same server moved elsewhere gives the same images.
    // The URL and the client's pacing are not part of the identity (the same server elsewhere gives the same
    // images); a ComfyUI workflow is, by its content.
    files: (cfg) => [cfg.paths.workflow],
    options: (c) => ({ ...c.generate, url: undefined, concurrency: undefined, timeout_s: undefined, retries: undefined }),
    pending: generatePending,
    run: runGenerate,
  },
  annotate: {
    version: 1,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['generate/images', 'generate/manifest.jsonl'],
    options: (c) => ({ ...c.annotate, workers: undefined }),
    files: (cfg) => [cfg.paths.samEncoder, cfg.paths.samDecoder, cfg.paths.segmenter],
    run: runAnnotate,
  },
  embed: { version: 1, inputs: () => ['real.coco', 'real.images', 'annotate/annotations.json'], options: (c) => ({ embed: c.embed }), files: (cfg) => [cfg.paths.clip], run: runEmbed },
  score: { version: 1, inputs: () => ['embed/*.npy'], options: (c) => ({ score: c.score, dedup: c.filter.dedup_threshold ?? 0.99 }), run: runScore },
  filter: { version: 2, inputs: () => ['generate/generated.jsonl', 'annotate/rejected.jsonl', 'score/scores.jsonl'], options: (c) => ({ filter: c.filter, inter: c.score.inter }), run: runFilter },
  pool: { version: 2, inputs: () => ['filter/decisions.jsonl', 'annotate/index.json', 'real.coco'], options: (c) => ({ pool: c.pool }), run: runPool },
  paste: {
    version: 2,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['pool/index.json', 'pool/size_prior.json', 'real.coco', 'real.images'],
    options: (c) => ({ paste: { ...c.paste, workers: undefined }, export: c.export }),
    run: runPaste,
  },
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
