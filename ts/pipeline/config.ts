/**
 * The run config of `genaug run`: one YAML or JSON file describing which real
 * data, which method settings, which servers and models. It is checked in
 * full before any work starts: unknown keys and wrong types fail with the key
 * path, every path is resolved relative to the config file and must exist,
 * and every server URL must answer an HTTP request.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { parseDocument } from 'yaml';
import { z } from 'zod';

import { readTextFile } from '../io/atomic.js';
import { GenaugError } from '../native/errors.js';
import { splitCredentials } from '../util/url.js';
import { packageRoot } from '../native/load.js';

const path = () => z.string().min(1);
const fraction = () => z.number().min(0).max(1);

/**
 * The stages of `genaug run`, in order. Not every stage applies to every method (a stage's `applies` in
 * stages.ts): instance methods (X-Paste, DiverGen) end in pool + paste; ACP's `scenes` output and the
 * classification methods (ALIA, caption prompts, DDFT) end in the `dataset` stage; `bnstats` runs when a
 * classifier is given for auxiliary BatchNorm statistics.
 */
export const STAGES = ['plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'pool', 'paste', 'dataset', 'bnstats', 'report'] as const;
export type StageName = (typeof STAGES)[number];

const PlanSchema = z
  .object({
    /**
     * template: one prompt template per class (X-Paste); divergen: the template with the class gloss;
     * llm / scene / caption / alia / ambiguity: the planning strategies of \`genaug plan\` (LLM prompts,
     * ACP scene graphs, caption prompts, ALIA domain edits, label-ambiguity resolution).
     */
    strategy: z.enum(['template', 'divergen', 'llm', 'scene', 'caption', 'alia', 'ambiguity']).default('template'),
    negative_prompt: z.string().default(''),
    /**
     * template/divergen: images per class (the one job's candidates); llm: prompts per class and mode;
     * caption/alia/ambiguity: real images per class.
     */
    per_class: z.number().int().min(1).max(100000).default(16),
    /** template/divergen: images per rare class (frequency group r: <= 10 real images). */
    rare_per_class: z.number().int().min(1).max(100000).optional(),
    /** Images per job for the other strategies (best-of-N picks among them). */
    candidates: z.number().int().min(1).max(1000).default(1),
    width: z.number().int().min(8).max(8192).default(512),
    height: z.number().int().min(8).max(8192).default(512),
    /** Restrict to these class names (default: every category of the real data). */
    classes: z.array(z.string().min(1)).optional(),
    /** llm strategy: diversity modes (DiverGen prompts, Yu et al. contextual / style). */
    modes: z.array(z.enum(['divergen', 'context', 'style'])).optional(),
    /** alia strategy: domain descriptions to edit towards (default: summarised by the LLM from captions). */
    domains: z.array(z.string().min(1)).optional(),
    /** alia strategy: img2img strength. */
    strength: fraction().optional(),
    /** scene strategy: scenes to plan. */
    scenes: z.number().int().min(1).optional(),
    /**
     * template/divergen/llm/ambiguity: DiverGen's category diversity: this many extra WordNet categories near the
     * dataset's classes (path similarity below 0.4 to every class), generated and pasted as new categories.
     */
    extra_categories: z.number().int().min(0).max(10000).default(0),
    /**
     * llm strategy: "Diversify, Don't Fine-Tune"'s label-ambiguity resolution first (the ambiguity strategy: LLM
     * candidate meanings scored with CLIP against real images when embed.clip is given), its meaning in every prompt.
     */
    resolve_meanings: z.boolean().default(false),
    /** caption/alia strategies: caption files (COCO captions JSON, or JSON lines of {image_id, caption}) used before asking the VLM. */
    captions: z.array(path()).optional(),
  })
  .strict();

/** One of several generation servers sharing the items by weight (DiverGen's model mix). */
const ServerSchema = z
  .object({
    backend: z.enum(['a1111', 'comfyui', 'openai']),
    url: z.string().url(),
    /** Share of the items (default 1): each (job, candidate) goes to one server, drawn by weight from a hash of its id. */
    weight: z.number().positive().max(1e6).default(1),
    /** Name in the records (default: the backend, numbered when one repeats). */
    label: z.string().min(1).max(64).optional(),
    model: z.string().optional(),
    api_key_env: z.string().optional(),
    workflow: path().optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    /** Requests in flight on this server (default generate.concurrency). */
    concurrency: z.number().int().min(1).max(64).optional(),
  })
  .strict();

const GenerateSchema = z
  .object({
    backend: z.enum(['procedural', 'a1111', 'comfyui', 'openai']).default('procedural'),
    /** Several servers mixed by weight instead of one backend/url. */
    servers: z.array(ServerSchema).min(1).max(64).optional(),
    url: z.string().url().optional(),
    model: z.string().optional(),
    /** Name of the environment variable holding the API key (openai). */
    api_key_env: z.string().optional(),
    steps: z.number().int().min(1).max(1000).default(50),
    cfg_scale: z.number().min(0).max(100).default(7.5),
    sampler: z.string().optional(),
    /** ComfyUI API-format workflow JSON with {{prompt}}, {{seed}}, ... placeholders. */
    workflow: path().optional(),
    /** Extra request fields (A1111/OpenAI body, ComfyUI placeholders). */
    params: z.record(z.string(), z.unknown()).optional(),
    concurrency: z.number().int().min(1).max(64).default(2),
    timeout_s: z.number().min(1).max(3600).default(300),
    retries: z.number().int().min(0).max(20).default(3),
    /**
     * procedural backend only: how often each failure is drawn. Single objects: off_class, empty, near_duplicate,
     * border; scenes from a layout (plan.strategy scene): missing_object, misplaced_object, off_class (one object
     * drawn as another class), blank (a black image, as a safety checker answers).
     */
    failure_rates: z
      .object({ off_class: fraction(), empty: fraction(), near_duplicate: fraction(), border: fraction(), missing_object: fraction(), misplaced_object: fraction(), blank: fraction() })
      .strict()
      .partial()
      .optional(),
  })
  .strict();

const AnnotateSchema = z
  .object({
    method: z.enum(['corners', 'sam', 'segmenter']).default('corners'),
    tolerance: z.number().int().min(0).max(255).default(10),
    min_area_fraction: fraction().default(0.05),
    max_area_fraction: fraction().default(0.95),
    sam_encoder: path().optional(),
    sam_decoder: path().optional(),
    segmenter: path().optional(),
    /** X-Paste's several segmenters (method 'segmenter'): each one's mask is CLIP-scored (embed.clip, embed.clip_template) and the best kept per image. */
    segmenters: z.array(path()).min(1).optional(),
    provider: z.enum(['cpu', 'cuda']).default('cpu'),
    workers: z.number().int().min(0).max(256).default(0),
  })
  .strict();

const EmbedSchema = z
  .object({
    /** features: the weight-free embedder (no model); clip: a CLIP ONNX export folder. */
    model: z.enum(['features', 'clip']).default('features'),
    clip: path().optional(),
    provider: z.enum(['cpu', 'cuda']).default('cpu'),
    batch: z.number().int().min(1).max(4096).default(32),
    /** Worker threads embedding batches (default min(cores, 4); 0 = the main thread). The rows do not depend on it. */
    workers: z.number().int().min(0).max(256).optional(),
    /** A row cache folder (created when missing) shared by runs and genaug embed --cache: unchanged crops are not embedded again. */
    cache: path().optional(),
    /** X-Paste's CLIP score text (CLIP only): 100 cos(instance on white, template with the class name). */
    clip_template: z.string().min(1).default('a photo of {}'),
    /** Pixels of context around each real crop's box (DiverGen: 40). */
    real_crop_padding: z.number().int().min(0).max(1000).default(40),
    /** Real crops embedded per class (0 = all; DiverGen uses all): a seeded choice. */
    max_real_per_class: z.number().int().min(0).default(0),
  })
  .strict();

const ScoreSchema = z
  .object({
    /** How a generated instance is scored against its class's real crops (DiverGen: mean). */
    inter: z.enum(['mean', 'max']).default('mean'),
    knn: z.number().int().min(1).max(100).default(5),
    /** ALIA's semantic filter (rule alia, CLIP): the one domain-level positive text, e.g. "a photo of a bird". */
    alia_positive: z.string().min(1).optional(),
    /** Its negative texts (default ALIA's: "a photo of an object", "a photo of geometric shapes", "a photo", "an image", "a painting"). */
    alia_negatives: z.array(z.string().min(1)).min(1).optional(),
    /**
     * ALIA's confidence filter (rule alia): an ONNX classifier of the real data (float32 NCHW image in, [N, classes]
     * logits out, classes in the run's class order); thresholds = its mean probability of each class on the real
     * images of that class (the images with one class).
     */
    classifier: path().optional(),
    /**
     * ACP's CLIS-I of each generated scene (output scenes): judge (the paper's: a VLM describes the image, each box
     * region and crop, an LLM grades the descriptions 0-5; needs vlm, grades with llm when set, else the vlm), clip
     * (the CLIP proxy: needs embed.model clip), features (a weight-free proxy: each layout box's crop against the real
     * crops of its class with the features embedder). Default: judge when vlm is set, else clip with a CLIP model,
     * else features.
     */
    clis_i: z.enum(['judge', 'clip', 'features']).optional(),
    /** Judge mode: scenes scored at once (requests in flight); the scores do not depend on it. */
    judge_concurrency: z.number().int().min(1).max(64).default(4),
    /** CLIS-L name similarity floor for the relation pool's examples (ACP's tau). */
    clis_l_tau: z.number().min(0).max(1).default(0.6),
  })
  .strict();

const FilterSchema = z
  .object({
    /** The seed methods' rules, in order (genaug filter): xpaste, divergen, acp, dedup, alia. */
    rules: z.array(z.enum(['xpaste', 'divergen', 'acp', 'dedup', 'alia'])).default([]),
    /** X-Paste: per-category CLIP bar min(min_clip, best - clip_tolerance) on the x100 CLIP score. */
    min_clip: z.number().default(21),
    clip_tolerance: z.number().min(0).default(1),
    /** Keep when the mean similarity to the class's real crops is at least this (DiverGen: 0.6 with CLIP ViT-L/14). */
    inter_similarity_min: z.number().min(-1).max(1).optional(),
    /** Reject when another class's real crops are closer than the asked class's. */
    require_own_class_best: z.boolean().default(false),
    /** Reject when fewer than this many of the k nearest real crops share the class. */
    knn_agreement_min: z.number().int().min(0).max(100).optional(),
    /** Near-duplicate threshold on embedding cosine (one of each group is kept). */
    dedup_threshold: z.number().min(-1).max(1).optional(),
    /** Reject instances whose mask touches the image border (cut off by the frame). */
    reject_border: z.boolean().default(false),
    /** ALIA: after the rules, keep this many in all, class-balanced, drawn by the run seed (default: all kept). */
    subsample: z.number().int().min(0).optional(),
    /** Area fraction bounds (X-Paste: 0.05..0.95), applied again after annotation. */
    min_area_fraction: fraction().optional(),
    max_area_fraction: fraction().optional(),
  })
  .strict();

const PoolSchema = z
  .object({
    /** At most this many instances per class (0 = all), taken in score order. */
    max_per_class: z.number().int().min(0).default(0),
    /** Go on with an empty pool (the export is then the real data alone) instead of failing with E_EMPTY. */
    allow_empty: z.boolean().default(false),
  })
  .strict();

const PasteSchema = z
  .object({
    /** Augmented copies of each real image. */
    copies_per_image: z.number().int().min(1).max(1000).default(1),
    /** n ~ U{0 .. max_samples - 1} paste attempts per image (X-Paste/DiverGen: 20). */
    max_samples: z.number().int().min(1).max(1000).default(20),
    sampling: z.enum(['cas_random', 'random']).default('cas_random'),
    blend: z.enum(['basic', 'alpha', 'gaussian']).default('basic'),
    /** A pasted instance's mask is (resized alpha >= this): 1 = §2.5's alpha > 0; 128 = half-opaque. */
    mask_threshold: z.number().int().min(1).max(255).default(1),
    aspect_jitter: z.tuple([z.number().positive(), z.number().positive()]).default([0.8, 1.2]),
    flip: fraction().default(0.5),
    /** Scale range for classes without a size prior (DiverGen: 0.05..0.3). */
    random_scale: z.tuple([z.number().positive(), z.number().positive()]).default([0.05, 0.3]),
    /** Occlusion keep rule: box moved at most this many pixels ... */
    keep_moved_px: z.number().min(0).default(10),
    /** ... or visible area above this many pixels. */
    keep_min_area: z.number().min(0).default(300),
    /** Worker threads of the renderer (0 = the main thread; default: the number of cores). */
    workers: z.number().int().min(0).max(256).optional(),
  })
  .strict();

const ExportSchema = z
  .object({
    formats: z.array(z.enum(['coco', 'webdataset', 'yolo'])).min(1).default(['coco', 'webdataset']),
    shard_size: z.number().int().min(1).max(1000000).default(1000),
    jpeg_quality: z.number().int().min(1).max(100).default(95),
    /** YOLO: the user's real validation set for data.yaml's `val:` (a folder or list file). */
    yolo_val: z.string().min(1).optional(),
    /** YOLO without yolo_val: the fraction of source images held out as val.txt (0: no split). */
    val_fraction: z.number().min(0).max(0.99).default(0.1),
  })
  .strict();

/**
 * The method's own dataset when it is not pasted instances (`output: scenes | classification`), written by the
 * `dataset` stage into RUN/dataset/.
 */
const DatasetSchema = z
  .object({
    /**
     * scenes: coco (annotations.json + images/, one box and mask per layout object); classification: imagefolder
     * (train/<class>/<file>) and/or webdataset (cls/txt keys). Default: [coco] for scenes, [imagefolder, webdataset]
     * for classification.
     */
    formats: z.array(z.enum(['coco', 'imagefolder', 'webdataset'])).min(1).optional(),
    /** classification: the real training images (their COCO category) join the set, origin 'real'. */
    include_real: z.boolean().default(false),
    /** Write the set when no generated image was kept (the real images alone, or nothing) instead of failing with E_EMPTY. */
    allow_empty: z.boolean().default(false),
    /**
     * scenes: also paste the kept scenes' objects into the real training images (ACP's "optionally pasted"): each
     * exported object's mask cut as an RGBA crop into dataset/pool/, pasted with the paste and export settings (seed,
     * copies, formats ...) into dataset/paste/<format>/, as an instance run's paste stage.
     */
    paste: z.boolean().default(false),
  })
  .strict();

/** Auxiliary BatchNorm statistics ("Diversify, Don't Fine-Tune"): per-domain BN statistics of a classifier. */
const BnStatsSchema = z
  .object({
    /** ONNX classifier whose BatchNormalization inputs are measured on the real and the kept synthetic images. */
    model: path().optional(),
    /** Images per batch through the model. */
    batch: z.number().int().min(1).max(4096).default(16),
  })
  .strict();

const ReportSchema = z
  .object({
    /** Thumbnails per grid. */
    thumbnails: z.number().int().min(0).max(2000).default(48),
    thumb_size: z.number().int().min(16).max(512).default(96),
  })
  .strict();

const RealSchema = z.object({ coco: path(), images: path() }).strict();

const LlmSchema = z.object({ url: z.string().url(), model: z.string().min(1), api_key_env: z.string().optional() }).strict();

export const RunConfigSchema = z
  .object({
    name: z.string().min(1).default('run'),
    /** The method preset these settings follow (informative; shown in the report). */
    preset: z.string().optional(),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
    /** The run folder (relative to the config file). */
    run_dir: path(),
    /**
     * What the run ends in: instances (the pool pasted into the real images: X-Paste, DiverGen), scenes (the
     * generated scenes with one box and mask per layout object: ACP) or classification (whole labelled images:
     * ALIA, caption prompts, DDFT).
     */
    output: z.enum(['instances', 'scenes', 'classification']).default('instances'),
    real: RealSchema,
    /** OpenAI-compatible chat endpoint for planning (llm, scene, alia strategies). */
    llm: LlmSchema.optional(),
    /** OpenAI-compatible vision endpoint for captions (caption, alia strategies). */
    vlm: LlmSchema.optional(),
    plan: PlanSchema.default(PlanSchema.parse({})),
    generate: GenerateSchema.default(GenerateSchema.parse({})),
    annotate: AnnotateSchema.default(AnnotateSchema.parse({})),
    embed: EmbedSchema.default(EmbedSchema.parse({})),
    score: ScoreSchema.default(ScoreSchema.parse({})),
    filter: FilterSchema.default(FilterSchema.parse({})),
    pool: PoolSchema.default(PoolSchema.parse({})),
    paste: PasteSchema.default(PasteSchema.parse({})),
    export: ExportSchema.default(ExportSchema.parse({})),
    dataset: DatasetSchema.default(DatasetSchema.parse({})),
    bnstats: BnStatsSchema.default(BnStatsSchema.parse({})),
    report: ReportSchema.default(ReportSchema.parse({})),
  })
  .strict();

export type RunConfig = z.infer<typeof RunConfigSchema>;

/** A preset: the same shape with every section optional and no run-specific parts required. */
export const PresetSchema = RunConfigSchema.partial().strict();

function keyPath(p: readonly PropertyKey[]): string {
  return p.length === 0 ? '(top level)' : p.map((k) => (typeof k === 'number' ? `[${k}]` : String(k))).join('.').replace(/\.\[/g, '[');
}

/** zod issues as one message naming every bad key path. */
export function describeIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const base = i.path.length ? `${keyPath(i.path)}.` : '';
      return `unknown key ${i.keys.map((k) => `'${base}${k}'`).join(', ')}`;
    }
    return `${keyPath(i.path)}: ${i.message}`;
  });
  return `${source}: ${lines.join('; ')}`;
}

/** Parses YAML (or JSON, which is YAML) text into a plain object; E_FORMAT with the line on a syntax error. */
export function parseConfigText(text: string, source: string): unknown {
  try {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const bad = doc.errors[0] ?? doc.warnings[0];
    // A warning is an error here: an unknown tag (!!js/function, !!python/..., !custom) would otherwise be dropped
    // with only a Node warning, and the tagged value used as if it were plain.
    if (bad) throw bad;
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new GenaugError('E_FORMAT', `${source} is not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`, { path: source });
  }
}

/** Validates a parsed config object (no file checks); E_FORMAT naming every bad key path. */
export function validateConfig(raw: unknown, source = '<config>'): RunConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new GenaugError('E_FORMAT', `${source}: a run config must be a mapping of keys (name, real, plan, generate, ...)`, { path: source });
  }
  const r = RunConfigSchema.safeParse(raw);
  if (!r.success) throw new GenaugError('E_FORMAT', describeIssues(r.error, source), { path: source, issues: r.error.issues });
  return r.data;
}

/** Validates a preset file's object. */
export function validatePreset(raw: unknown, source: string) {
  const r = PresetSchema.safeParse(raw ?? {});
  if (!r.success) throw new GenaugError('E_FORMAT', describeIssues(r.error, source), { path: source });
  return r.data;
}

export interface LoadedConfig {
  config: RunConfig;
  /** The config file (absolute). */
  file: string;
  /** Every path in the config, resolved to absolute. */
  paths: { runDir: string; realCoco: string; realImages: string; captions?: string[]; classifier?: string; workflow?: string; serverWorkflows?: Array<string | undefined>; samEncoder?: string; samDecoder?: string; segmenter?: string; segmenters?: string[]; clip?: string; embedCache?: string; bnModel?: string };
}

/** The (key path, value) of every file or folder the config names that must exist. */
function pathKeys(c: RunConfig): Array<[string, string | undefined, StageName]> {
  return [
    ['real.coco', c.real.coco, 'plan'],
    ['real.images', c.real.images, 'plan'],
    ...(c.plan.captions ?? []).map((p, i): [string, string, StageName] => [`plan.captions[${i}]`, p, 'plan']),
    ['generate.workflow', c.generate.workflow, 'generate'],
    ...(c.generate.servers ?? []).map((sv, i): [string, string | undefined, StageName] => [`generate.servers[${i}].workflow`, sv.workflow, 'generate']),
    ['annotate.sam_encoder', c.annotate.sam_encoder, 'annotate'],
    ['annotate.sam_decoder', c.annotate.sam_decoder, 'annotate'],
    ['annotate.segmenter', c.annotate.segmenter, 'annotate'],
    ...(c.annotate.segmenters ?? []).map((p, i): [string, string, StageName] => [`annotate.segmenters[${i}]`, p, 'annotate']),
    // The pick among several segmenters uses the CLIP model in annotate already.
    ['embed.clip', c.embed.clip, (c.annotate.segmenters?.length ?? 0) >= 2 ? 'annotate' : 'embed'],
    ['score.classifier', c.score.classifier, 'score'],
    ['bnstats.model', c.bnstats.model, 'bnstats'],
  ];
}

/** Cross-field rules zod cannot express per key, for the stages the run will reach. */
function checkCombinations(c: RunConfig, source: string, reaches: (s: StageName) => boolean): void {
  const fail = (key: string, msg: string) => {
    throw new GenaugError('E_FORMAT', `${source}: ${key}: ${msg}`, { path: source, key });
  };
  // Strategies that need a server for captions or domains: refused here, not after a plan of 0 jobs.
  const captionSource = Boolean(c.vlm) || Boolean(c.plan.captions?.length);
  const captionHow = 'set vlm (url, model) of an OpenAI-compatible vision server, or plan.captions (COCO captions files)';
  if (c.plan.strategy === 'caption' && !captionSource) fail('vlm', `plan.strategy 'caption' prompts with captions of the real images and none can be had: ${captionHow}`);
  if (c.plan.strategy === 'alia' && !c.plan.domains?.length) {
    if (!c.llm) fail('llm', "plan.strategy 'alia' summarises captions into domains with an LLM: set llm (url, model), or give the domains in plan.domains");
    if (!captionSource) fail('vlm', `plan.strategy 'alia' summarises captions of the real images and none can be had: ${captionHow} (or give the domains in plan.domains)`);
  }
  if (c.generate.servers) {
    if (c.generate.backend !== 'procedural' || c.generate.url || c.generate.workflow || c.generate.model) {
      fail('generate.servers', 'give either one server (generate.backend, url, model, workflow) or a list (generate.servers), not both');
    }
    c.generate.servers.forEach((sv, i) => {
      if (sv.backend === 'comfyui' && !sv.workflow) fail(`generate.servers[${i}].workflow`, "backend 'comfyui' needs an API-format workflow file");
    });
  } else if (reaches('generate') && c.generate.backend !== 'procedural' && !c.generate.url) fail('generate.url', `backend '${c.generate.backend}' needs the server URL`);
  if (reaches('generate') && c.generate.backend === 'comfyui' && !c.generate.workflow) fail('generate.workflow', "backend 'comfyui' needs an API-format workflow file");
  if (reaches('annotate') && c.annotate.method === 'sam' && (!c.annotate.sam_encoder || !c.annotate.sam_decoder)) fail('annotate.sam_encoder', "method 'sam' needs sam_encoder and sam_decoder");
  const segs = c.annotate.segmenters;
  if (reaches('annotate') && c.annotate.method === 'segmenter' && !c.annotate.segmenter && !segs) fail('annotate.segmenter', "method 'segmenter' needs a segmenter model file (segmenter, or a list in segmenters)");
  if (segs && c.annotate.segmenter) fail('annotate.segmenters', 'give either one segmenter (annotate.segmenter) or a list (annotate.segmenters), not both');
  if (segs && c.annotate.method !== 'segmenter') fail('annotate.segmenters', `are used by method 'segmenter', not '${c.annotate.method}': set annotate.method: segmenter`);
  segs?.forEach((p, i) => {
    if (segs.indexOf(p) !== i) fail(`annotate.segmenters[${i}]`, `${p} is listed twice`);
  });
  if (reaches('annotate') && segs && segs.length >= 2 && !c.embed.clip) {
    fail('embed.clip', `${segs.length} annotate.segmenters need a CLIP model folder to pick, per image, the mask whose cut-out scores best against the class text (X-Paste)`);
  }
  if (reaches('filter')) {
    for (const rule of c.filter.rules) {
      if ((rule === 'xpaste' || rule === 'alia') && c.embed.model !== 'clip') fail('filter.rules', `rule '${rule}' scores with CLIP text embeddings: set embed.model: clip`);
      if (rule === 'acp' && c.output !== 'scenes') fail('filter.rules', "rule 'acp' picks the best of each scene graph's candidates by CLIS-I, which the run computes for scenes: set output: scenes (and plan.strategy: scene)");
      if (rule === 'alia' && c.output !== 'classification') fail('filter.rules', "rule 'alia' filters whole edited images: set output: classification");
      if (rule === 'alia' && !c.score.alia_positive) fail('score.alia_positive', "rule 'alia' needs the domain-level positive text of its semantic filter (e.g. \"a photo of a bird\")");
    }
    if (c.output === 'classification' && (c.filter.reject_border || c.filter.min_area_fraction !== undefined || c.filter.max_area_fraction !== undefined)) {
      fail('filter.reject_border', "output 'classification' keeps whole images (no mask): the border and area rules do not apply");
    }
  }
  if (c.output === 'scenes' && c.plan.strategy !== 'scene') fail('output', "output 'scenes' exports each generated scene with its layout's objects: it needs plan.strategy: scene");
  if (c.score.clis_i === 'judge' && !c.vlm) fail('score.clis_i', "CLIS-I 'judge' describes the images with a VLM: set vlm (url, model) of an OpenAI-compatible vision server");
  if (c.score.clis_i === 'clip' && c.embed.model !== 'clip') fail('score.clis_i', "CLIS-I 'clip' scores with CLIP: set embed.model: clip and embed.clip");
  if (c.dataset.formats) {
    const allowed = c.output === 'scenes' ? ['coco'] : c.output === 'classification' ? ['imagefolder', 'webdataset'] : [];
    if (c.output === 'instances') fail('dataset.formats', "output 'instances' writes its dataset in the paste stage (export.formats); dataset.formats is for output 'scenes' or 'classification'");
    for (const f of c.dataset.formats) if (!allowed.includes(f)) fail('dataset.formats', `output '${c.output}' writes ${allowed.join(' or ')}, not '${f}'`);
  }
  if (c.plan.resolve_meanings && c.plan.strategy !== 'llm') fail('plan.resolve_meanings', "resolves the class meanings before the llm strategy's prompts: set plan.strategy: llm (the ambiguity strategy resolves them on its own)");
  if (c.dataset.paste && c.output !== 'scenes') fail('dataset.paste', "pastes the objects of generated scenes into the real images: it needs output: scenes (an instance run pastes in its paste stage)");
  if (c.dataset.include_real && c.output !== 'classification') fail('dataset.include_real', "only a classification set takes the real images (output: classification)");
  if (reaches('embed') && c.embed.model === 'clip' && !c.embed.clip) fail('embed.clip', "model 'clip' needs the folder of a CLIP ONNX export");
  if (c.annotate.min_area_fraction > c.annotate.max_area_fraction) fail('annotate.min_area_fraction', 'is larger than annotate.max_area_fraction');
  if (c.paste.aspect_jitter[0] > c.paste.aspect_jitter[1]) fail('paste.aspect_jitter', 'must be [low, high] with low <= high');
  if (c.paste.random_scale[0] > c.paste.random_scale[1]) fail('paste.random_scale', 'must be [low, high] with low <= high');
}

/** Is an HTTP server answering at `url`? Any HTTP status counts; a refused/timed-out connection does not. */
export async function checkReachable(url: string, key: string, timeoutMs = 3000): Promise<void> {
  // Credentials in the URL (http://user:pass@host) go in a header, and never into a message.
  const { url: shown, headers } = splitCredentials(url);
  try {
    await fetch(shown, { method: 'GET', headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (e as Error).message);
    throw new GenaugError('E_BACKEND', `${key}: the server at ${shown} is not reachable (${why}); start it or fix the URL`, { key, url: shown });
  }
}

/** Where a preset named in a config lives: a bundled name (presets/<name>.yaml) or a path relative to the config. */
export function presetPath(name: string, configFile: string): string {
  if (/[\\/]|\.ya?ml$|\.json$/.test(name)) return isAbsolute(name) ? name : resolve(dirname(configFile), name);
  return join(packageRoot, 'presets', `${name}.yaml`);
}

export const BUNDLED_PRESETS = ['xpaste', 'divergen', 'acp', 'alia', 'caption-prompts', 'ddft'] as const;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge for config mappings: `over` wins; lists are replaced, not concatenated. */
export function mergeConfig(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeConfig(base[k], v);
  return out;
}

/** Reads and checks a preset file (every key known, every type right). */
export async function readPreset(path: string, key = 'preset'): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (e) {
    if (e instanceof GenaugError && e.detail?.errno !== 'ENOENT') throw new GenaugError(e.code, `${key}: ${e.message}`, { ...e.detail, key });
    throw new GenaugError('E_IO', `${key}: preset file ${path} does not exist (bundled presets: ${BUNDLED_PRESETS.join(', ')})`, { path, key });
  }
  const raw = parseConfigText(text, path) ?? {};
  validatePreset(raw, path);
  if (!isPlainObject(raw)) throw new GenaugError('E_FORMAT', `${path}: a preset must be a mapping of keys`, { path });
  return raw;
}

/** A config with its preset's settings under it (the config's own keys win). */
async function withPreset(raw: unknown, file: string): Promise<unknown> {
  if (!isPlainObject(raw) || typeof raw.preset !== 'string') return raw;
  const preset = await readPreset(presetPath(raw.preset, file), `${file}: preset`);
  const { preset: _inner, ...rest } = preset;
  return mergeConfig(rest, raw);
}

/** Opens a model to check it, naming the config key in the error. */
async function modelCheck(key: string, file: string, open: () => Promise<void>): Promise<void> {
  try {
    await open();
  } catch (e) {
    if (e instanceof GenaugError) throw new GenaugError(e.code, `${file}: ${key}: ${e.message}`, { ...e.detail, key });
    throw e;
  }
}

/**
 * Reads, validates and checks a run config: schema, combinations, files and
 * servers, in that order, all before any stage runs.
 */
export async function loadConfig(
  file: string,
  o: { checkServers?: boolean; checkModels?: boolean; timeoutMs?: number; /** The last stage the run will reach: later stages' settings are not checked. */ until?: StageName } = {},
): Promise<LoadedConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    // Only a regular file: a FIFO or a device named as the config is refused, not waited on or read forever.
    text = await readTextFile(abs);
  } catch (e) {
    const why = e instanceof GenaugError && e.detail?.errno === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new GenaugError('E_IO', `could not read the run config ${abs}: ${why}`, { path: abs });
  }
  const raw = parseConfigText(text, abs);
  const config = validateConfig(await withPreset(raw, abs), abs);
  const last = STAGES.indexOf(o.until ?? 'report');
  const reaches = (st: StageName) => STAGES.indexOf(st) <= last;
  checkCombinations(config, abs, reaches);
  const base = dirname(abs);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  for (const [key, value, stage] of pathKeys(config)) {
    if (value === undefined || !reaches(stage)) continue;
    const p = at(value);
    if (!existsSync(p)) throw new GenaugError('E_IO', `${abs}: ${key}: ${p} does not exist`, { path: p, key });
    // A folder where a folder is meant, else a regular file: a device (/dev/zero) or a FIFO would be read forever or waited on.
    const folder = key === 'real.images' || key === 'embed.clip';
    const st = statSync(p);
    if (folder ? !st.isDirectory() : !st.isFile()) throw new GenaugError('E_IO', `${abs}: ${key}: ${p} is not a ${folder ? 'folder' : 'regular file'}`, { path: p, key });
  }
  // Models open now (files present, inputs and outputs as expected), not halfway through the run.
  if (o.checkModels !== false && reaches('embed') && config.embed.model === 'clip' && config.embed.clip) {
    const { ClipModel } = await import('../models/clip.js');
    await modelCheck('embed.clip', abs, async () => (await ClipModel.open(at(config.embed.clip!), { provider: config.embed.provider, require: 'both' })).close());
  }
  if (o.checkModels !== false && reaches('annotate') && config.annotate.method === 'sam' && config.annotate.sam_encoder && config.annotate.sam_decoder) {
    const { SamModel } = await import('../models/sam.js');
    await modelCheck('annotate.sam_encoder', abs, async () => (await SamModel.load({ encoder: at(config.annotate.sam_encoder!), decoder: at(config.annotate.sam_decoder!), provider: config.annotate.provider })).release());
  }
  if (o.checkModels !== false && reaches('annotate') && config.annotate.method === 'segmenter' && config.annotate.segmenter) {
    const { Segmenter } = await import('../models/segmenter.js');
    await modelCheck('annotate.segmenter', abs, async () => (await Segmenter.load({ model: at(config.annotate.segmenter!), provider: config.annotate.provider })).release());
  }
  if (o.checkModels !== false && reaches('annotate') && config.annotate.method === 'segmenter' && config.annotate.segmenters) {
    const { Segmenter } = await import('../models/segmenter.js');
    for (const [i, p] of config.annotate.segmenters.entries()) {
      await modelCheck(`annotate.segmenters[${i}]`, abs, async () => (await Segmenter.load({ model: at(p), provider: config.annotate.provider })).release());
    }
    if (config.annotate.segmenters.length >= 2 && config.embed.clip && !(reaches('embed') && config.embed.model === 'clip')) {
      const { ClipModel } = await import('../models/clip.js');
      await modelCheck('embed.clip', abs, async () => (await ClipModel.open(at(config.embed.clip!), { provider: config.annotate.provider, require: 'both' })).close());
    }
  }
  if (o.checkServers !== false) {
    if (reaches('generate') && config.generate.backend !== 'procedural' && config.generate.url) await checkReachable(config.generate.url, 'generate.url', o.timeoutMs);
    if (reaches('generate')) for (const [i, sv] of (config.generate.servers ?? []).entries()) await checkReachable(sv.url, `generate.servers[${i}].url`, o.timeoutMs);
    if (config.llm) await checkReachable(config.llm.url, 'llm.url', o.timeoutMs);
    if (config.vlm) await checkReachable(config.vlm.url, 'vlm.url', o.timeoutMs);
  }
  const opt = (p: string | undefined) => (p === undefined ? undefined : at(p));
  const paths: LoadedConfig['paths'] = { runDir: at(config.run_dir), realCoco: at(config.real.coco), realImages: at(config.real.images), ...(config.plan.captions ? { captions: config.plan.captions.map(at) } : {}) };
  const extra = { workflow: opt(config.generate.workflow), samEncoder: opt(config.annotate.sam_encoder), samDecoder: opt(config.annotate.sam_decoder), segmenter: opt(config.annotate.segmenter), clip: opt(config.embed.clip), classifier: opt(config.score.classifier), embedCache: opt(config.embed.cache), bnModel: opt(config.bnstats.model) };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (paths as unknown as Record<string, string>)[k] = v;
  if (config.annotate.segmenters) paths.segmenters = config.annotate.segmenters.map(at);
  if (config.generate.servers) paths.serverWorkflows = config.generate.servers.map((sv) => opt(sv.workflow));
  return { config, file: abs, paths };
}
