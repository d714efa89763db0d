/**
 * The presets `genaug demo --preset NAME` runs: each is the whole method of one seed paper on procedurally drawn
 * data, with no model or server, to the dataset that paper trains on. A preset gives the run config the demo writes
 * (paths relative to DIR/run.yaml), the stand-in answerers it needs (an OpenAI-compatible chat/VLM server started
 * on loopback for the demo's duration, see standin.ts), anything it draws or builds before the run (tiny models),
 * and where its dataset ends up.
 */
import { join } from 'node:path';

import { ACP_ANSWERERS } from './answers-acp.js';
import { CLASSIFY_ANSWERERS } from './answers-classify.js';
import type { Answerer } from './standin.js';
import { writeTinyClassifier, writeTinyClip } from './tiny-models.js';

export interface DemoContext {
  seed: number;
  /** The demo folder (absolute). */
  out: string;
  /** The stand-in chat/VLM server's base URL, when the preset has answerers. */
  llmUrl?: string;
}

export interface DemoPreset {
  /** One line for --help and the log. */
  description: string;
  /** The stand-in server's answerers: when given, the demo starts it and passes its URL in the context. */
  answerers?: readonly Answerer[];
  /** Runs before the run config is written (after the real data is drawn): tiny models, extra files. */
  prepare?: (ctx: DemoContext) => Promise<void>;
  /** The run config (a preset name, the demo's settings over it). */
  config: (ctx: DemoContext) => Record<string, unknown>;
  /** The files of the method's dataset and the report, by name, for summary.json and the last lines printed. */
  outputs: (runDir: string) => Record<string, string>;
}

/** DiverGen's settings with what the demo changes: no server, no model, a small run. */
export function divergenDemoConfig(seed: number): Record<string, unknown> {
  return {
    name: 'demo',
    preset: 'divergen',
    seed,
    run_dir: 'run',
    real: { coco: 'data/annotations.json', images: 'data/images' },
    // X-Paste's plain template: WordNet's first sense of 'square' or 'cross' would only confuse the prompts here.
    plan: { strategy: 'template', per_class: 20, rare_per_class: 40, width: 128, height: 128 },
    generate: { backend: 'procedural', concurrency: 2 },
    annotate: { method: 'corners', tolerance: 10, min_area_fraction: 0.05, max_area_fraction: 0.95, workers: 0 },
    embed: { model: 'features', real_crop_padding: 4, workers: 0 },
    score: { inter: 'mean', knn: 5 },
    filter: { dedup_threshold: 0.995, reject_border: true, require_own_class_best: true, inter_similarity_min: 0.28, knn_agreement_min: 3 },
    pool: { max_per_class: 0 },
    paste: { copies_per_image: 1, max_samples: 8, workers: 0 },
    export: { formats: ['coco', 'webdataset'], shard_size: 16 },
    report: { thumbnails: 48, thumb_size: 80 },
  };
}

/** The outputs of an instance run (pool pasted into the real images). */
export function instanceOutputs(runDir: string): Record<string, string> {
  return {
    report: join(runDir, 'report', 'report.html'),
    coco: join(runDir, 'paste', 'coco', 'annotations.json'),
    webdataset: join(runDir, 'paste', 'webdataset', 'shards'),
    pool: join(runDir, 'pool', 'index.json'),
    manifest: join(runDir, 'run.json'),
  };
}

/** The settings every classification demo shares: the drawn data, the stand-in server, small images, few thumbnails. */
function classificationDemo(ctx: DemoContext, preset: string, over: Record<string, unknown>): Record<string, unknown> {
  const server = { url: ctx.llmUrl, model: 'genaug-standin' };
  return {
    name: 'demo',
    preset,
    seed: ctx.seed,
    run_dir: 'run',
    real: { coco: 'data/annotations.json', images: 'data/images' },
    llm: server,
    vlm: server,
    generate: { backend: 'procedural', concurrency: 2 },
    export: { shard_size: 16 },
    report: { thumbnails: 24, thumb_size: 64 },
    ...over,
  };
}

/** The tiny models of tiny-models.ts into DIR/models/ (a CLIP-format folder and a classifier with BatchNorm). */
async function writeDemoModels(ctx: DemoContext): Promise<void> {
  await writeTinyClip(join(ctx.out, 'models', 'clip'));
  await writeTinyClassifier(join(ctx.out, 'models', 'classifier.onnx'));
}

/** The outputs of a classification run (RUN/dataset), and the aux-BN statistics when the run has them. */
export function classificationOutputs(runDir: string, auxbn = false): Record<string, string> {
  return {
    report: join(runDir, 'report', 'report.html'),
    imagefolder: join(runDir, 'dataset', 'imagefolder', 'train'),
    webdataset: join(runDir, 'dataset', 'webdataset'),
    classes: join(runDir, 'dataset', 'classes.txt'),
    ...(auxbn ? { auxbn: join(runDir, 'bnstats', 'auxbn.safetensors') } : {}),
    manifest: join(runDir, 'run.json'),
  };
}

export const DEMO_PRESETS: Record<string, DemoPreset> = {
  divergen: {
    description: 'DiverGen: template prompts, SAM-free corner masks, real-crop similarity filters, copy-paste detection data',
    config: (ctx) => divergenDemoConfig(ctx.seed),
    outputs: instanceOutputs,
  },
  xpaste: {
    description: "X-Paste: template prompts, corner masks, CLIP score of each cut-out on white against its class name with a per-category bar (a tiny hand-set CLIP), area limits, copy-paste detection data",
    prepare: async (ctx) => {
      await writeTinyClip(join(ctx.out, 'models', 'clip'));
    },
    config: (ctx) => ({
      ...divergenDemoConfig(ctx.seed),
      preset: 'xpaste',
      // X-Paste's CLIP: 100 cos(cut-out on white, "a photo of {class}"); the tiny CLIP reads colours and class names.
      embed: { model: 'clip', clip: 'models/clip', workers: 0, real_crop_padding: 4 },
      // X-Paste's own rule chain: the per-category CLIP bar min(min_clip, best - tolerance) and the area limits; it
      // keeps near-duplicates and has no real-crop rule (DiverGen adds those).
      filter: { rules: ['xpaste'], min_clip: 21, clip_tolerance: 1, min_area_fraction: 0.05, max_area_fraction: 0.95 },
    }),
    outputs: instanceOutputs,
  },
  alia: {
    description: 'ALIA: stand-in VLM captions → LLM domain summary → edit prompts, CLIP semantic + classifier confidence filters on whole images, class-balanced subsample, classification set',
    answerers: CLASSIFY_ANSWERERS,
    prepare: writeDemoModels,
    config: (ctx) =>
      classificationDemo(ctx, 'alia', {
        // One real image per class, edited twice per summarised setting (ALIA: 2 edits per image per prompt).
        plan: { strategy: 'alia', per_class: 1, candidates: 2, strength: 0.5 },
        embed: { model: 'clip', clip: 'models/clip', workers: 0, real_crop_padding: 4 },
        // The procedural world's domain-level text and negatives the tiny CLIP knows (ALIA's own are about photos of birds).
        score: { alia_positive: 'a photo of a coloured shape', alia_negatives: ['a blank image', 'an empty white picture'], classifier: 'models/classifier.onnx' },
        // ALIA's rule, then class-balanced subsampling (ALIA: to the size of the real extra set). Two genaug rules join
        // it for the procedural generator's planted failures ALIA has no rule for: near-duplicates (dedup) and
        // drawings of another class (own-class: another class's real crops are closer).
        filter: { rules: ['dedup', 'alia'], dedup_threshold: 0.99999, require_own_class_best: true, subsample: 24 },
      }),
    outputs: (runDir) => classificationOutputs(runDir),
  },
  'caption-prompts': {
    description: 'Caption-in-Prompt: stand-in VLM captions of every real image → "a photo of {class}, {caption}" → one image each, classification set',
    answerers: CLASSIFY_ANSWERERS,
    config: (ctx) =>
      classificationDemo(ctx, 'caption-prompts', {
        plan: { strategy: 'caption', per_class: 4, candidates: 1, width: 96, height: 96 },
        // The weight-free embedder: the method scores nothing; the embeddings feed the report's gap and diversity only.
        embed: { model: 'features', workers: 0, real_crop_padding: 4 },
      }),
    outputs: (runDir) => classificationOutputs(runDir),
  },
  ddft: {
    description: "Diversify, Don't Fine-Tune: LLM meanings scored with CLIP (label ambiguity), contextual + style prompts, classification set, aux-BN statistics of a classifier on real vs kept synthetic images",
    answerers: CLASSIFY_ANSWERERS,
    prepare: writeDemoModels,
    config: (ctx) =>
      classificationDemo(ctx, 'ddft', {
        plan: { strategy: 'llm', modes: ['context', 'style'], resolve_meanings: true, per_class: 3, candidates: 1, width: 96, height: 96 },
        embed: { model: 'clip', clip: 'models/clip', workers: 0, real_crop_padding: 4 },
        bnstats: { model: 'models/classifier.onnx', batch: 16 },
      }),
    outputs: (runDir) => classificationOutputs(runDir, true),
  },
  acp: {
    description: 'Auto Cherry-Picker: LLM scene graphs and layouts from the real object sets, layout-conditioned scenes, best-of-N by a VLM+LLM judge (CLIS-I), CLIS-L kept, COCO of the scenes with one box and mask per layout object',
    answerers: ACP_ANSWERERS,
    config: (ctx) => ({
      name: 'demo',
      preset: 'acp',
      seed: ctx.seed,
      run_dir: 'run',
      output: 'scenes',
      real: { coco: 'data/annotations.json', images: 'data/images' },
      // The stand-in answers both: scene graphs and layouts (llm), descriptions (vlm) and grades (llm).
      llm: { url: ctx.llmUrl, model: 'standin-llm' },
      vlm: { url: ctx.llmUrl, model: 'standin-vlm' },
      plan: { strategy: 'scene', scenes: 8, candidates: 4, width: 128, height: 128 },
      // The scene generator's planted failures, more often than a real server's so that a small demo shows each.
      generate: { backend: 'procedural', concurrency: 2, retries: 1, failure_rates: { missing_object: 0.14, misplaced_object: 0.14, off_class: 0.12, blank: 0.08 } },
      annotate: { method: 'corners', workers: 0 },
      embed: { model: 'features', real_crop_padding: 4, workers: 0 },
      score: { clis_i: 'judge', judge_concurrency: 4 },
      report: { thumbnails: 24, thumb_size: 80 },
    }),
    outputs: (runDir) => ({
      report: join(runDir, 'report', 'report.html'),
      coco: join(runDir, 'dataset', 'coco', 'annotations.json'),
      scores: join(runDir, 'score', 'scores.jsonl'),
      manifest: join(runDir, 'run.json'),
    }),
  },
};

export function demoPresetNames(): string[] {
  return Object.keys(DEMO_PRESETS);
}
