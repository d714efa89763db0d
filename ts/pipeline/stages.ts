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

import { exportClassification, readLabelledManifest, type ClassificationFormat, type LabelledImage } from '../augment/classification.js';
import { paste } from '../augment/paste.js';
import { exportScenes, scenePool } from '../augment/scenes.js';
import { modelBnStats } from '../curate/auxbn.js';
import { checkWithin } from '../io/roots.js';
import { annotate } from '../curate/annotate.js';
import { embedInstances, type EmbedderSpec } from '../curate/embed.js';
import { applyFilters, balancedSubsample, describeDecision, ownSimilarity, writeDecisions, type FilterOptions, type LedgerEntry, type Rule } from '../curate/filters.js';
import { clipScoreInstances, scoreInstancesAgainstReal } from '../curate/score.js';
import { selectPool } from '../curate/pool.js';
import { mergeScores, readScores, round6, type ScoreColumns } from '../curate/table.js';
import { generate, type BackendSpec, type GenerateJournalLine, type GenerateOptions } from '../generate/runner.js';
import { ProceduralBackend } from '../generate/procedural.js';
import { readCoco, type CocoIndex } from '../io/coco.js';
import { ClipModel } from '../models/clip.js';
import type { ImageTextEmbedder } from '../models/types.js';
import { GenaugError } from '../native/errors.js';
import { openClipEmbedder } from '../plan/ambiguity.js';
import { PlanJobSchema, type PlanJob } from '../plan/job.js';
import { plan } from '../plan/plan.js';
import { categoryPriors, type CategoryPrior } from '../plan/priors.js';
import { readJson, readJsonl, writeJson, writeJsonl } from '../util/jsonl.js';
import { writeReport } from '../report/report.js';
import { aliaColumns, resolveMeanings, wholeImageCoco } from './classify.js';
import { annotateScenes, scoreScenes } from './acp.js';
import { STAGES, type LoadedConfig, type RunConfig, type StageName } from './config.js';
import type { GenLine, StageContext, StageResult } from './stage-types.js';

export type { GenLine, StageContext, StageResult };



export interface StageDef {
  /** Bump when the stage's output for the same options changes. */
  version: number;
  /** Resumes from its own journal after an interruption (else starts clean); a function: for the runs it says. */
  resumable?: boolean | ((c: RunConfig) => boolean);
  /** Journal files (suffixes) left out of the recorded outputs. */
  journals?: string[];
  inputs: (c: RunConfig) => string[];
  options: (c: RunConfig) => unknown;
  /** A done stage's work left that a re-run can do (why, or undefined): it is then run again, resuming. */
  pending?: (dir: string) => Promise<string | undefined>;
  /** Why this stage is not part of a run with this config (undefined: it is): it is then recorded as skipped. */
  applies?: (c: RunConfig) => string | undefined;
  /** Files (or folders) outside the run folder whose content decides the output: models, workflows. */
  files?: (cfg: LoadedConfig) => Array<string | undefined>;
  run: (ctx: StageContext) => Promise<StageResult>;
}

// --- shared readers -----------------------------------------------------------

export interface ClassInfo {
  name: string;
  /** Category id in the real COCO file. */
  id: number;
  prior: CategoryPrior;
}

/**
 * DiverGen's extra categories the plan added (plan.extra_categories): WordNet classes the real data lacks, in
 * plan order. They are generated, kept without the real-crop rules (they have no real crops) and pasted as new
 * categories.
 */
export async function extraClasses(runDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const j of await readJsonl<PlanJob>(join(runDir, 'plan', 'plan.jsonl'))) {
    const name = j.classes[0];
    if ((j.provenance as { class_source?: unknown } | undefined)?.class_source === 'wordnet-extra' && name !== undefined && !out.includes(name)) out.push(name);
  }
  return out;
}

/** The classes of the run: plan.classes or every real category, in category id order. */
export async function runClasses(cfg: LoadedConfig, coco?: CocoIndex): Promise<{ coco: CocoIndex; classes: ClassInfo[] }> {
  const real = coco ?? (await readCoco(cfg.paths.realCoco, { polygons: 'packed' }));
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
  // Label-ambiguity resolution scores the candidate meanings with CLIP against real images (the method's own way)
  // when the run has a CLIP model; without one it falls back to the LVIS / WordNet meaning, and says so.
  // DDFT (plan.resolve_meanings): the same resolution first, then the llm strategy's prompts with the meanings.
  const lar = p.strategy === 'ambiguity' || p.resolve_meanings;
  const clipDir = lar ? ctx.cfg.paths.clip : undefined;
  if (lar && !clipDir) ctx.log('ambiguity without CLIP (no embed.clip): each class gets its LVIS or WordNet meaning, not one scored against the real images');
  const embedder = clipDir ? await openClipEmbedder(clipDir, c.embed.provider) : undefined;
  try {
    const meanings = p.resolve_meanings ? await resolveMeanings(ctx, { coco, classes: classes.map((k) => k.name), ...(llm ? { llm } : {}), ...(embedder ? { embedder } : {}) }) : undefined;
    return await planWith(ctx, { coco, classes, out, single, llm, vlm, embedder, ...(meanings ? { meanings } : {}) });
  } finally {
    await embedder?.close?.();
  }
}

async function planWith(
  ctx: StageContext,
  a: { coco: Awaited<ReturnType<typeof runClasses>>['coco']; classes: Awaited<ReturnType<typeof runClasses>>['classes']; out: string; single: boolean; llm: ReturnType<typeof endpoint>; vlm: ReturnType<typeof endpoint>; embedder: ImageTextEmbedder | undefined; meanings?: string },
): Promise<StageResult> {
  const c = ctx.cfg.config;
  const p = c.plan;
  const { coco, classes, out, single, llm, vlm, embedder } = a;
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
    ...(embedder ? { embedder } : {}),
    ...(a.meanings ? { meanings: a.meanings } : {}),
    ...(p.extra_categories ? { extraCategories: p.extra_categories } : {}),
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

async function backendSpecs(cfg: LoadedConfig, procedural?: ProceduralBackend): Promise<BackendSpec[]> {
  const g = cfg.config.generate;
  const a1111Defaults = { steps: g.steps, cfg_scale: g.cfg_scale, ...(g.sampler ? { sampler_name: g.sampler } : {}) };
  if (g.servers) {
    // DiverGen's model mix: each item goes to one server, drawn by weight (genaug generate --backend ... ,WEIGHT).
    return Promise.all(
      g.servers.map(async (sv, i): Promise<BackendSpec> => {
        const key = sv.api_key_env ? process.env[sv.api_key_env] : undefined;
        const workflow = cfg.paths.serverWorkflows?.[i];
        return {
          type: sv.backend,
          url: sv.url,
          weight: sv.weight,
          ...(sv.label ? { label: sv.label } : {}),
          ...(sv.model ? { model: sv.model } : {}),
          ...(sv.concurrency ? { concurrency: sv.concurrency } : {}),
          params: { ...(sv.backend === 'a1111' ? a1111Defaults : {}), ...(g.params ?? {}), ...(sv.params ?? {}) },
          ...(key ? { apiKey: key } : {}),
          ...(workflow ? { workflow: JSON.parse(await readFile(workflow, 'utf8')), workflowName: workflow } : {}),
        };
      }),
    );
  }
  if (g.backend === 'procedural') return [{ type: 'procedural' as unknown as BackendSpec['type'], url: 'procedural://genaug', label: 'procedural', backend: procedural as ProceduralBackend }];
  const key = g.api_key_env ? process.env[g.api_key_env] : undefined;
  return [
    {
      type: g.backend,
      url: g.url as string,
      ...(g.model ? { model: g.model } : {}),
      params: { ...(g.backend === 'a1111' ? a1111Defaults : {}), ...(g.params ?? {}) },
      ...(key ? { apiKey: key } : {}),
    },
  ];
}

/** The generate options of a run's config (backends, pacing): the coordinator's and every queue worker's. */
export async function generateSetup(cfg: LoadedConfig): Promise<{ options: Omit<GenerateOptions, 'out'>; procedural: ProceduralBackend | undefined }> {
  const g = cfg.config.generate;
  const fr = g.failure_rates ?? {};
  const procedural =
    g.backend === 'procedural' && !g.servers
      ? new ProceduralBackend({
          ...(fr.off_class !== undefined ? { offClass: fr.off_class } : {}),
          ...(fr.empty !== undefined ? { empty: fr.empty } : {}),
          ...(fr.near_duplicate !== undefined ? { nearDuplicate: fr.near_duplicate } : {}),
          ...(fr.border !== undefined ? { border: fr.border } : {}),
        }, {
          ...(fr.missing_object !== undefined ? { missing: fr.missing_object } : {}),
          ...(fr.misplaced_object !== undefined ? { misplaced: fr.misplaced_object } : {}),
          ...(fr.off_class !== undefined ? { offClass: fr.off_class } : {}),
          ...(fr.blank !== undefined ? { blank: fr.blank } : {}),
        })
      : undefined;
  const specs = await backendSpecs(cfg, procedural);
  if (!g.servers && g.backend === 'comfyui' && cfg.paths.workflow) {
    (specs[0] as BackendSpec).workflow = JSON.parse(await readFile(cfg.paths.workflow, 'utf8'));
    (specs[0] as BackendSpec).workflowName = cfg.paths.workflow;
  }
  return { options: { backends: specs, concurrency: g.concurrency, timeoutMs: g.timeout_s * 1000, retries: g.retries, inputRoots: [cfg.paths.realImages] }, procedural };
}

async function runGenerate(ctx: StageContext): Promise<StageResult> {
  const g = ctx.cfg.config.generate;
  const { options, procedural } = await generateSetup(ctx.cfg);
  const planPath = join(ctx.runDir, 'plan', 'plan.jsonl');
  const summary = await generate(planPath, {
    ...options,
    out: ctx.dir,
    onNote: ctx.log,
    ...(ctx.distribute ? { distribute: ctx.distribute } : {}),
    onProgress: (pr) => ctx.progress(pr.done, pr.total),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  if (summary.interrupted) throw new GenaugError('E_ABORTED', `generate was stopped with ${summary.items - summary.ok - summary.failed} items left (the journal keeps the finished ones); run again to resume`);
  // One line per (job, candidate) in plan order, with the truth of the procedural generator.
  const jobs = await readJsonl<PlanJob>(planPath);
  const journal = new Map((await readJsonl<GenerateJournalLine>(join(ctx.dir, 'journal.jsonl'))).map((l) => [`${l.job}\u0000${l.candidate}`, l]));
  const lines: GenLine[] = [];
  for (const j of jobs) {
    for (let k = 0; k < j.candidates; k++) {
      const l = journal.get(`${j.id}\u0000${k}`);
      const base = { category: j.classes[0] as string, job: j.id, candidate: k, seed: j.seed + k, prompt: j.prompt };
      if (l?.status === 'ok' && l.file) {
        lines.push({ file: l.file, ...base, status: 'ok', ...(procedural ? { truth: procedural.truth(k, j.seed + k, j) } : {}) });
        // Every further image the server answered for the request (a ComfyUI batch) is a generated image too.
        for (const m of l.more ?? []) if (m.file !== l.file) lines.push({ file: m.file, ...base, status: 'ok' });
      }
      else lines.push({ file: `${j.id}_c${k}`, ...base, status: 'failed', reason: l?.error ? `[${l.error.code}] ${l.error.message}` : 'not generated' });
    }
  }
  await writeJsonl(join(ctx.dir, 'generated.jsonl'), lines);
  if (summary.ok === 0 && summary.items > 0) throw new GenaugError('E_BACKEND', `every generation failed; first: ${lines[0]?.reason}`);
  return { summary: { images: summary.ok, failed: summary.failed, duplicates: summary.duplicates, backend: g.servers ? 'servers' : g.backend, ...(g.servers ? { perServer: summary.backends } : {}) } };
}

/** Generations journaled as failed and retryable (5xx, timeouts, lost connections): genaug generate tries them again. */
async function generatePending(dir: string): Promise<string | undefined> {
  const last = new Map((await readJsonl<GenerateJournalLine>(join(dir, 'journal.jsonl'))).map((l) => [`${l.job}\u0000${l.candidate}`, l]));
  const n = [...last.values()].filter((l) => l.status === 'failed' && l.retryable === true).length;
  return n ? `${n} generation${n === 1 ? '' : 's'} failed with a retryable error` : undefined;
}

// --- annotate -----------------------------------------------------------------

async function runAnnotate(ctx: StageContext): Promise<StageResult> {
  if (ctx.cfg.config.output === 'scenes') return annotateScenes(ctx); // ACP: one box per layout object (pipeline/acp.ts)
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
    ...(a.method === 'segmenter' && !p.segmenters ? { models: { segmenter: p.segmenter as string, provider: a.provider } } : {}),
    // X-Paste's several segmenters: one list (a single one is the plain path), picked per image with embed.clip.
    ...(a.method === 'segmenter' && p.segmenters ? { models: { segmenters: p.segmenters, ...(p.segmenters.length >= 2 ? { clip: p.clip as string } : {}), provider: a.provider }, clipTemplate: ctx.cfg.config.embed.clip_template } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.distribute ? { distribute: ctx.distribute } : {}),
    onProgress: ctx.progress,
  });
  return { summary: r };
}

// --- embed --------------------------------------------------------------------

/** The embedder of the run's config (embedInstances' spec). */
export function embedderSpec(cfg: LoadedConfig): EmbedderSpec {
  const e = cfg.config.embed;
  return e.model === 'features' ? { kind: 'features' } : { kind: 'clip', model: cfg.paths.clip as string, provider: e.provider };
}

/**
 * `genaug embed --coco REAL --instances crop` and `genaug embed --coco
 * annotate/annotations.json --instances masked --order generate/generated.jsonl`:
 * DiverGen's real crops and generated instances, journaled (a killed run resumes).
 */
async function runEmbed(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { classes } = await runClasses(ctx.cfg);
  const extras = await extraClasses(ctx.runDir);
  const common = {
    embedder: embedderSpec(ctx.cfg),
    categories: classes.map((k) => k.name),
    batchSize: c.embed.batch,
    workers: c.embed.workers,
    ...(ctx.cfg.paths.embedCache ? { cache: ctx.cfg.paths.embedCache } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.distribute ? { distribute: ctx.distribute } : {}),
    onNote: ctx.log,
  };
  const real = await embedInstances({
    ...common,
    coco: ctx.cfg.paths.realCoco,
    images: ctx.cfg.paths.realImages,
    out: join(ctx.dir, 'real.npy'),
    mode: 'crop',
    padding: c.embed.real_crop_padding,
    blur: 10,
    maxPerCategory: c.embed.max_real_per_class,
    seed: c.seed,
    onProgress: (d, t) => ctx.progress(d, 2 * t),
  });
  // Rows in plan order (job, then candidate), so near-duplicate groups keep the earlier candidate.
  // Classification: each generated image whole (no mask), in classify.ts.
  const whole = c.output === 'classification' ? await wholeImageCoco(ctx, [...classes.map((k) => k.name), ...extras]) : undefined;
  const gen = await embedInstances({
    ...common,
    coco: whole ?? join(ctx.runDir, 'annotate', 'annotations.json'),
    images: join(ctx.runDir, 'generate', 'images'),
    // The extra categories after the run's classes, so the labels of the run's classes match the real rows'; a class
    // whose every image failed has no category in annotate's file and nothing to embed (it is not an error of the run).
    categories: [...classes.map((k) => k.name), ...extras],
    missingCategories: 'skip',
    out: join(ctx.dir, 'generated.npy'),
    ...(whole ? { mode: 'crop' as const, padding: 0, blur: 1 } : { mode: 'masked' as const }),
    order: join(ctx.runDir, 'generate', 'generated.jsonl'),
    onProgress: (d, t) => ctx.progress(t + d, 2 * t),
  });
  return { summary: { embedder: real.name, dim: real.dim, real: real.rows, generated: gen.rows, failed: real.failures + gen.failures, resumedBatches: real.resumedBatches + gen.resumedBatches } };
}

// --- score --------------------------------------------------------------------

/** `genaug score against-real` (+ `genaug score clip-score` with a CLIP model) into score/scores.jsonl. */
async function runScore(ctx: StageContext): Promise<StageResult> {
  if (ctx.cfg.config.output === 'scenes') return scoreScenes(ctx); // ACP: CLIS-I and CLIS-L per scene (pipeline/acp.ts)
  const c = ctx.cfg.config;
  const e = join(ctx.runDir, 'embed');
  const { classes } = await runClasses(ctx.cfg);
  const table = await scoreInstancesAgainstReal(join(e, 'generated.npy'), join(e, 'real.npy'), {
    inter: c.score.inter,
    knn: c.score.knn,
    dedupThreshold: c.filter.dedup_threshold ?? 0.99,
    classes: [...classes.map((k) => k.name), ...(await extraClasses(ctx.runDir))],
  });
  // X-Paste's CLIP score: the cut-out composited on white against "a photo of {name}" (x 100).
  let clipScored = 0;
  if (c.embed.model !== 'features' && table.size > 0 && c.output !== 'classification') {
    const index = await readJson<{ categories: Record<string, Array<{ file: string; source: string }>> }>(join(ctx.runDir, 'annotate', 'index.json'));
    const instanceOf = new Map(Object.values(index.categories).flatMap((l) => l.map((x) => [x.source, x.file] as const)));
    const ids = [...table.keys()].filter((id) => instanceOf.has(id));
    const files = ids.map((id) => join(ctx.runDir, 'annotate', instanceOf.get(id) as string));
    const names = ids.map((id) => String(table.get(id)?.category));
    let scores: Float32Array;
    if (ctx.distribute) {
      // The same batches on queue workers (each one clipScoreInstances call of one batch), so the same numbers.
      const b = c.embed.batch;
      const tasks: ClipScoreTask[] = [];
      for (let i = 0; i < files.length; i += b) tasks.push({ clip: ctx.cfg.paths.clip as string, provider: c.embed.provider, batch: b, template: c.embed.clip_template, files: files.slice(i, i + b), names: names.slice(i, i + b) });
      const res = await ctx.distribute.run<ClipScoreTask, Float32Array>('score', tasks);
      scores = new Float32Array(files.length);
      // A CLIP score that cannot be computed fails the stage, as it does in a local run.
      res.forEach((r, k) => {
        if (!r.ok) throw new GenaugError('E_QUEUE_JOB', r.reason);
        scores.set(r.value, k * b);
      });
    } else {
      const model = await ClipModel.open(ctx.cfg.paths.clip as string, { provider: c.embed.provider, batchSize: c.embed.batch, require: 'both' });
      try {
        scores = await clipScoreInstances(model, files, names, c.embed.clip_template, c.embed.batch);
      } finally {
        await model.close();
      }
    }
    ids.forEach((id, i) => ((table.get(id) as Record<string, unknown>).clip_score = round6(scores[i] as number)));
    clipScored = ids.length;
  }
  // ALIA's semantic and confidence scores on the whole images (classify.ts).
  const alia = c.filter.rules.includes('alia') && table.size > 0 ? await aliaColumns(ctx, table, classes.map((k) => k.name)) : undefined;
  await mergeScores(join(ctx.dir, 'scores.jsonl'), table);
  const rows = [...table.values()];
  return { summary: { scored: rows.length, duplicates: rows.filter((r) => r.dup_of !== null).length, border: rows.filter((r) => r.touches_border === true).length, clipScored, ...(alia ? { alia } : {}) } };
}

/** One batch of X-Paste's CLIP score on a queue worker: the cut-outs and their class names. */
export interface ClipScoreTask {
  clip: string;
  provider: RunConfig['embed']['provider'];
  batch: number;
  template: string;
  files: string[];
  names: string[];
}

const clipModels = new Map<string, Promise<ClipModel>>();

/** A queue worker's part of the score stage: one batch's CLIP scores (the model loaded once per process). */
export async function clipScoreTask(t: ClipScoreTask): Promise<Float32Array> {
  const key = JSON.stringify([t.clip, t.provider, t.batch]);
  let m = clipModels.get(key);
  if (!m) {
    m = ClipModel.open(t.clip, { provider: t.provider, batchSize: t.batch, require: 'both' });
    clipModels.set(key, m);
    m.catch(() => clipModels.delete(key));
  }
  return clipScoreInstances(await m, t.files, t.names, t.template, t.batch);
}

// --- filter -------------------------------------------------------------------

/** The run's one rule chain over the scores table, as `genaug filter --rules` takes it. */
export function filterRules(c: RunConfig): Rule[] {
  const f = c.filter;
  const method = f.rules as Rule[];
  const rules: Rule[] = [];
  // Near-duplicates are dropped only when asked for (X-Paste and DiverGen keep them): a threshold or the dedup rule.
  if (f.dedup_threshold !== undefined || method.includes('dedup')) rules.push('dedup');
  if (f.reject_border) rules.push('border');
  if (f.min_area_fraction !== undefined || f.max_area_fraction !== undefined) rules.push('area');
  for (const r of method) if (!rules.includes(r)) rules.push(r);
  if (f.require_own_class_best) rules.push('own-class');
  if (f.inter_similarity_min !== undefined && !rules.includes('divergen')) rules.push('divergen');
  if (f.knn_agreement_min !== undefined) rules.push('knn');
  return rules;
}

/** The options of that chain (`genaug filter`'s flags); `extras` (DiverGen's extra categories, no real crops) are exempt from the real-crop rule. */
export function filterOptions(c: RunConfig, extras: string[] = []): FilterOptions {
  const f = c.filter;
  return {
    ...(extras.length ? { exemptCategories: extras } : {}),
    threshold: f.inter_similarity_min ?? 0.6,
    similarityColumn: c.score.inter === 'max' ? 'inter_sim_max' : 'inter_sim_mean',
    minArea: f.min_area_fraction ?? 0.05,
    maxArea: f.max_area_fraction ?? 0.95,
    minClip: f.min_clip,
    tol: f.clip_tolerance,
    ...(f.knn_agreement_min !== undefined ? { knnMin: f.knn_agreement_min } : {}),
  };
}

/**
 * `genaug filter --scores score/scores.jsonl --rules <chain>` into kept.jsonl
 * and rejected.jsonl; decisions.jsonl is the run's ledger: every planned
 * image once, failed in generate, rejected in annotate, or decided by the chain.
 */
async function runFilter(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const table = await readScores(join(ctx.runDir, 'score', 'scores.jsonl'), { allowMissing: true });
  const rules = filterRules(c);
  const ruled = applyFilters(table, rules, filterOptions(c, await extraClasses(ctx.runDir)));
  const decided = new Map((c.filter.subsample !== undefined ? balancedSubsample(ruled, table, c.filter.subsample, c.seed) : ruled).map((d) => [d.id, d]));
  await writeDecisions([...decided.values()], join(ctx.dir, 'kept.jsonl'), join(ctx.dir, 'rejected.jsonl'));
  const gen = await readJsonl<GenLine>(join(ctx.runDir, 'generate', 'generated.jsonl'));
  const rejectedAnn = new Map((await readJsonl<{ file: string; status: string; reason: string; segmenters?: LedgerEntry['segmenters'] }>(join(ctx.runDir, 'annotate', 'rejected.jsonl'))).map((r) => [r.file, r]));
  // Several segmenters: why annotate kept the mask it kept, in the ledger beside the filter's decision.
  // (A classification run has no annotate stage: the whole image is the sample.)
  const indexPath = join(ctx.runDir, 'annotate', 'index.json');
  const annIndex = existsSync(indexPath) ? await readJson<{ categories: Record<string, Array<{ source: string; segmenters?: LedgerEntry['segmenters'] }>> }>(indexPath) : { categories: {} };
  const picks = new Map(Object.values(annIndex.categories).flatMap((l) => l.flatMap((x) => (x.segmenters ? [[x.source, x.segmenters] as const] : []))));
  for (const r of rejectedAnn.values()) if (r.segmenters) picks.set(r.file, r.segmenters);
  const decisions: LedgerEntry[] = [];
  for (const g of gen) {
    const pick = picks.get(g.file);
    const base = { file: g.file, category: g.category, ...(g.truth ? { truth: g.truth } : {}), ...(pick ? { segmenters: pick } : {}) };
    const rj = rejectedAnn.get(g.file);
    const d = decided.get(g.file);
    if (g.status === 'failed') decisions.push({ ...base, status: 'failed', stage: 'generate', reason: g.reason ?? 'generation failed' });
    else if (rj) decisions.push({ ...base, status: rj.status === 'failed' ? 'failed' : 'rejected', stage: 'annotate', reason: rj.reason });
    else if (!d) decisions.push({ ...base, status: 'rejected', stage: 'filter', reason: 'no score (not embedded: see embed/*.failed.jsonl)' });
    else decisions.push({ ...base, status: d.kept ? 'kept' : 'rejected', stage: 'filter', ...(d.kept ? {} : { reason: describeDecision(d) }), score: table.get(g.file) as ScoreColumns });
  }
  await writeJsonl(join(ctx.dir, 'decisions.jsonl'), decisions);
  const count = (st: string) => decisions.filter((d) => d.status === st).length;
  return { summary: { kept: count('kept'), rejected: count('rejected'), failed: count('failed'), rules } };
}

// --- pool ---------------------------------------------------------------------

/** `genaug pool --annotated annotate --kept filter/kept.jsonl --scores score/scores.jsonl --coco REAL`. */
async function runPool(ctx: StageContext): Promise<StageResult> {
  const { coco, classes } = await runClasses(ctx.cfg);
  const kept = (await readJsonl<{ id: string }>(join(ctx.runDir, 'filter', 'kept.jsonl'))).map((l) => l.id);
  const summary = await selectPool({
    annotated: join(ctx.runDir, 'annotate'),
    kept,
    scores: await readScores(join(ctx.runDir, 'score', 'scores.jsonl'), { allowMissing: true }),
    coco,
    classes: [...classes.map((k) => k.name), ...(await extraClasses(ctx.runDir))],
    maxPerClass: ctx.cfg.config.pool.max_per_class,
    allowEmpty: ctx.cfg.config.pool.allow_empty,
    out: ctx.dir,
  });
  return { summary };
}

// --- paste + export -------------------------------------------------------------

/** `genaug paste --format coco,webdataset,...`: each image composited and encoded once, every export format written from it. */
async function runPaste(ctx: StageContext): Promise<StageResult> {
  // DiverGen's extra categories are new to the real data: appended as categories (random scale: no size prior).
  return { summary: await pasteInto(ctx, join(ctx.runDir, 'pool'), ctx.dir, (await extraClasses(ctx.runDir)).length > 0) };
}

/** The pool folder pasted into the real images with the run's paste and export settings, into `out`/<format>/. */
async function pasteInto(ctx: StageContext, pool: string, out: string, addCategories: boolean): Promise<Record<string, unknown>> {
  const c = ctx.cfg.config;
  const p = c.paste;
  const r = await paste({
    coco: ctx.cfg.paths.realCoco,
    images: ctx.cfg.paths.realImages,
    pool,
    priors: join(pool, 'size_prior.json'),
    // pool.allow_empty: the user asked for the real images alone when nothing was kept.
    ...(c.pool.allow_empty ? { allowEmptyPool: true } : {}),
    ...(addCategories ? { addCategories: true } : {}),
    seed: c.seed,
    // A list: each format in <out>/<format>/, a complete dataset (images + annotations).
    out,
    format: c.export.formats,
    copies: p.copies_per_image,
    jpegQuality: c.export.jpeg_quality,
    shardSize: c.export.shard_size,
    ...(c.export.yolo_val !== undefined ? { yoloVal: c.export.yolo_val } : {}),
    valFraction: c.export.val_fraction,
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
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.distribute ? { distribute: ctx.distribute } : {}),
    onProgress: ctx.progress,
  });
  return { images: r.ok, failed: r.failed, annotations: r.realInstances + r.pastedInstances, pasted: r.pastedInstances, dropped: r.dropped, rendered: r.rendered, formats: c.export.formats };
}

// --- dataset (scenes, classification) ----------------------------------------------

/** The generated images the filter kept, in manifest order (a kept id is a manifest line's file). */
export async function keptGenerated(runDir: string): Promise<{ kept: Set<string>; files: string[] }> {
  const kept = new Set((await readJsonl<{ id: string }>(join(runDir, 'filter', 'kept.jsonl'))).map((l) => l.id));
  const files = (await readJsonl<{ file: string }>(join(runDir, 'generate', 'manifest.jsonl'))).map((l) => l.file).filter((f) => kept.has(f));
  return { kept, files };
}

/** The real training images as labelled images: an image's class is the one category of its annotations. */
async function realLabelled(cfg: LoadedConfig): Promise<{ items: LabelledImage[]; mixed: number; unlabelled: number }> {
  const coco = await readCoco(cfg.paths.realCoco, { polygons: 'packed' });
  const items: LabelledImage[] = [];
  let mixed = 0;
  let unlabelled = 0;
  for (const im of coco.dataset.images) {
    const set = new Set((coco.annotationsByImage.get(im.id) ?? []).map((a) => a.category_id));
    if (set.size === 0) unlabelled++;
    else if (set.size > 1) mixed++;
    else {
      const cat = [...set][0] as number;
      const path = await checkWithin(cfg.paths.realImages, im.file_name, `${cfg.paths.realCoco}: image ${im.id}`);
      items.push({ path, label: coco.categoryById.get(cat)?.name ?? String(cat), origin: 'real', id: `real:${im.id}` });
    }
  }
  return { items, mixed, unlabelled };
}

/**
 * The method's own dataset when it is not pasted instances:
 * - output scenes (ACP): `genaug export scenes` of the kept generated scenes into dataset/coco/ (COCO, one box
 *   and mask per layout object; SAM box prompts when annotate.method is sam, else the box);
 * - output classification (ALIA, caption prompts, DDFT): `genaug export classification` of the kept generated
 *   images (and the real ones with dataset.include_real) into dataset/ (classes.txt, imagefolder/, webdataset/).
 */
async function runDataset(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const manifest = join(ctx.runDir, 'generate', 'manifest.jsonl');
  const { kept } = await keptGenerated(ctx.runDir);
  if (c.output === 'scenes') {
    const sam = c.annotate.method === 'sam' && ctx.cfg.paths.samEncoder && ctx.cfg.paths.samDecoder ? { encoder: ctx.cfg.paths.samEncoder, decoder: ctx.cfg.paths.samDecoder } : undefined;
    const r = await exportScenes({ manifest, out: join(ctx.dir, 'coco'), kept, categories: ctx.cfg.paths.realCoco, ...(sam ? { sam } : {}), onProgress: ctx.progress });
    const summary = { output: 'scenes', images: r.images, annotations: r.annotations, mask_sources: r.maskSources, left_out: r.skipped, formats: ['coco'] };
    if (!c.dataset.paste) return { summary };
    // dataset.paste: the exported objects (their masks made just now) as a pool, pasted as the paste stage would.
    const pool = await scenePool({ scenes: join(ctx.dir, 'coco'), realCoco: ctx.cfg.paths.realCoco, out: join(ctx.dir, 'pool') });
    const p = await pasteInto(ctx, join(ctx.dir, 'pool'), join(ctx.dir, 'paste'), false);
    return { summary: { ...summary, pool: pool.instances, pool_per_class: pool.perClass, paste: p } };
  }
  const formats = (c.dataset.formats ?? ['imagefolder', 'webdataset']) as ClassificationFormat[];
  const generated = await readLabelledManifest(manifest, { origin: 'generated', kept });
  const real = c.dataset.include_real ? await realLabelled(ctx.cfg) : undefined;
  if (real && (real.mixed || real.unlabelled)) ctx.log(`real images left out of the classification set: ${real.mixed} with several classes, ${real.unlabelled} without an annotation`);
  if (generated.length === 0 && !c.dataset.allow_empty) {
    throw new GenaugError('E_EMPTY', `dataset: no generated image was kept (see filter/decisions.jsonl for why); set dataset.allow_empty: true to write the set anyway${c.dataset.include_real ? ' (the real images alone)' : ''}`);
  }
  const items = [...generated, ...(real?.items ?? [])];
  const r = await exportClassification({ items, out: ctx.dir, formats, shardSize: c.export.shard_size });
  return {
    summary: {
      output: 'classification',
      images: r.images,
      generated: generated.length,
      real: real?.items.length ?? 0,
      ...(real ? { real_left_out: real.mixed + real.unlabelled } : {}),
      classes: r.classes.length,
      per_class: r.perClass,
      formats,
    },
  };
}

// --- bnstats ----------------------------------------------------------------------

/**
 * "Diversify, Don't Fine-Tune"'s auxiliary BatchNorm statistics: `genaug bnstats --model` over the real images
 * (domain 0, the main BN) and the kept generated images (domain 1, the auxiliary BN) into bnstats/auxbn.safetensors,
 * names as the PyTorch state dict's (`<layer>.running_mean`, `<layer>.aux_bn.running_mean`, ...).
 */
async function runBnStats(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const { files } = await keptGenerated(ctx.runDir);
  if (files.length === 0) throw new GenaugError('E_EMPTY', 'bnstats: no generated image was kept, so the synthetic domain has no image');
  const real = await readCoco(ctx.cfg.paths.realCoco, { polygons: 'packed' });
  const r = await modelBnStats({
    model: ctx.cfg.paths.bnModel as string,
    domains: [
      { folder: ctx.cfg.paths.realImages, files: real.dataset.images.map((im) => im.file_name) },
      { folder: join(ctx.runDir, 'generate', 'images'), files },
    ],
    out: join(ctx.dir, 'auxbn.safetensors'),
    batchSize: c.bnstats.batch,
    onProgress: ctx.progress,
  });
  return { summary: { layers: r.layers.length, images: r.images.map((i) => ({ used: i.used, failed: i.failed })), failures: r.failures.length } };
}

// --- report -------------------------------------------------------------------

async function runReport(ctx: StageContext): Promise<StageResult> {
  const { classes } = await runClasses(ctx.cfg);
  const embed = ctx.manifest.stages.embed?.summary as { embedder?: string } | undefined;
  return writeReport({
    runDir: ctx.runDir,
    out: ctx.dir,
    config: ctx.cfg.config,
    realCoco: ctx.cfg.paths.realCoco,
    classes: classes.map((k) => k.name),
    embedder: embed?.embedder ?? ctx.cfg.config.embed.model,
    // The report's own time is not known while it is written: the stages before it.
    timings: STAGES.filter((s) => s !== 'report' && !ctx.manifest.stages[s]?.skipped).map((s) => ({ stage: s, seconds: ctx.manifest.stages[s]?.seconds ?? null, status: ctx.manifest.stages[s]?.status ?? 'not run', resumed: ctx.manifest.stages[s]?.resumed ?? 0 })),
  });
}

/** Pool and paste are the dataset of instance runs only (why not, else undefined). */
function pastes(c: RunConfig): string | undefined {
  if (c.output === 'instances') return undefined;
  return `output '${c.output}': the run's dataset is written by the dataset stage${c.dataset.paste ? ' (dataset.paste: its pool and pasted set too, in dataset/pool/ and dataset/paste/)' : ''}`;
}

export const STAGE_DEFS: Record<StageName, StageDef> = {
  plan: { version: 3, inputs: () => ['real.coco'], files: (cfg) => [...(cfg.paths.captions ?? []), ...(cfg.config.plan.strategy === 'ambiguity' ? [cfg.paths.clip] : [])], options: (c) => ({ plan: c.plan, llm: c.llm ? { url: undefined, model: c.llm.model } : null, vlm: c.vlm ? { model: c.vlm.model } : null }), journals: ['answers.jsonl'], resumable: true, run: runPlan },
  generate: {
    version: 1,
    resumable: true,
    journals: ['journal.jsonl'],
    inputs: () => ['plan/plan.jsonl'],
    // The server URL is not part of the identity: the same server moved elsewhere gives the same images.
    // The URL and the client's pacing are not part of the identity (the same server elsewhere gives the same
    // images); a ComfyUI workflow is, by its content.
    files: (cfg) => [cfg.paths.workflow, ...(cfg.paths.serverWorkflows ?? [])],
    options: (c) => ({
      ...c.generate,
      url: undefined,
      concurrency: undefined,
      timeout_s: undefined,
      retries: undefined,
      ...(c.generate.servers ? { servers: c.generate.servers.map((sv) => ({ ...sv, url: undefined, concurrency: undefined, api_key_env: undefined })) } : {}),
    }),
    pending: generatePending,
    run: runGenerate,
  },
  annotate: {
    version: 1,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['generate/images', 'generate/manifest.jsonl'],
    // Several segmenters: the CLIP model and text of their pick are part of the stage's identity.
    options: (c) => ({ ...c.annotate, workers: undefined, ...((c.annotate.segmenters?.length ?? 0) >= 2 ? { clip_template: c.embed.clip_template } : {}), ...(c.output === 'scenes' ? { output: c.output } : {}) }),
    applies: (c) => (c.output === 'classification' ? "output 'classification': the whole image is the sample (no mask is cut)" : undefined),
    files: (cfg) => [cfg.paths.samEncoder, cfg.paths.samDecoder, cfg.paths.segmenter, ...(cfg.paths.segmenters ?? []), ...((cfg.paths.segmenters?.length ?? 0) >= 2 ? [cfg.paths.clip] : [])],
    run: runAnnotate,
  },
  embed: {
    version: 2,
    resumable: true,
    journals: ['.partial'],
    inputs: () => ['real.coco', 'real.images', 'annotate/annotations.json', 'generate/generated.jsonl'],
    // Classification embeds whole images (classify.ts), instance runs the masked cut-outs.
    options: (c) => ({ embed: { ...c.embed, workers: undefined, cache: undefined }, ...(c.output === 'classification' ? { whole_images: true } : {}) }),
    files: (cfg) => [cfg.paths.clip],
    run: runEmbed,
  },
  score: {
    version: 2,
    // A scene run journals each scene's CLIS-I (judge and clip modes): a killed run does not ask the judge again.
    resumable: (c) => c.output === 'scenes',
    journals: ['clis-i.progress.jsonl'],
    inputs: (c) => ['embed/*.npy', 'embed/*.index.jsonl', ...(c.output === 'scenes' ? ['plan/plan.jsonl', 'generate/images', 'annotate/rejected.jsonl', 'real.coco'] : [])],
    // A scene run's CLIS-I depends on the judge's models (not their URLs) and on generate.retries (re-asks of unparseable grades).
    options: (c) => ({
      score: c.score,
      dedup: c.filter.dedup_threshold ?? 0.99,
      clip: c.embed.model === 'features' ? null : { template: c.embed.clip_template },
      ...(c.output === 'classification' ? { whole_images: true, alia: c.filter.rules.includes('alia') } : {}),
      ...(c.output === 'scenes' ? { acp: { vlm: c.vlm?.model ?? null, llm: c.llm?.model ?? null, retries: c.generate.retries, seed: c.seed } } : {}),
    }),
    files: (cfg) => [cfg.paths.clip, cfg.paths.classifier],
    run: runScore,
  },
  filter: { version: 3, inputs: () => ['generate/generated.jsonl', 'annotate/rejected.jsonl', 'annotate/index.json', 'score/scores.jsonl'], options: (c) => ({ filter: c.filter, inter: c.score.inter }), run: runFilter },
  pool: { version: 3, inputs: () => ['filter/kept.jsonl', 'score/scores.jsonl', 'annotate/index.json', 'real.coco'], options: (c) => ({ pool: c.pool }), applies: (c) => pastes(c), run: runPool },
  paste: {
    version: 3,
    resumable: true,
    journals: ['progress.jsonl'],
    inputs: () => ['pool/index.json', 'pool/size_prior.json', 'real.coco', 'real.images'],
    options: (c) => ({ paste: { ...c.paste, workers: undefined }, export: c.export }),
    applies: (c) => pastes(c),
    run: runPaste,
  },
  dataset: {
    version: 1,
    // dataset.paste: the paste's journal in dataset/paste/ (timings), as the paste stage's.
    journals: ['progress.jsonl'],
    applies: (c) => (c.output === 'instances' ? "output 'instances': the pasted data of the paste stage is the dataset" : undefined),
    inputs: (c) => ['generate/manifest.jsonl', 'filter/kept.jsonl', ...(c.dataset.include_real || c.output === 'scenes' ? ['real.coco'] : []), ...(c.dataset.include_real || c.dataset.paste ? ['real.images'] : [])],
    // dataset.paste: the paste settings decide the pasted set (and pool.allow_empty whether an empty pool pastes).
    options: (c) => ({
      output: c.output,
      // Without dataset.paste the identity is the one before the key existed (a run folder keeps its dataset).
      dataset: c.dataset.paste ? c.dataset : { ...c.dataset, paste: undefined },
      shard_size: c.export.shard_size,
      sam: c.output === 'scenes' && c.annotate.method === 'sam',
      ...(c.dataset.paste ? { paste: { ...c.paste, workers: undefined }, export: c.export, allow_empty_pool: c.pool.allow_empty, seed: c.seed } : {}),
    }),
    files: (cfg) => (cfg.config.output === 'scenes' && cfg.config.annotate.method === 'sam' ? [cfg.paths.samEncoder, cfg.paths.samDecoder] : []),
    run: runDataset,
  },
  bnstats: {
    version: 1,
    applies: (c) => (c.bnstats.model ? undefined : 'no bnstats.model (a classifier for auxiliary BatchNorm statistics)'),
    inputs: () => ['real.coco', 'real.images', 'generate/images', 'filter/kept.jsonl'],
    options: (c) => ({ bnstats: c.bnstats }),
    files: (cfg) => [cfg.paths.bnModel],
    run: runBnStats,
  },
  report: { version: 1, inputs: () => ['run.json', 'every stage folder'], options: (c) => ({ report: c.report }), run: runReport },
};
