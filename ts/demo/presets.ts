/**
 * The presets `genaug demo --preset NAME` runs: each is the whole method of one seed paper on procedurally drawn
 * data, with no model or server, to the dataset that paper trains on. A preset gives the run config the demo writes
 * (paths relative to DIR/run.yaml), the stand-in answerers it needs (an OpenAI-compatible chat/VLM server started
 * on loopback for the demo's duration, see standin.ts), anything it draws or builds before the run (tiny models),
 * and where its dataset ends up.
 */
import { join } from 'node:path';

import { ACP_ANSWERERS } from './answers-acp.js';
import type { Answerer } from './standin.js';

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

export const DEMO_PRESETS: Record<string, DemoPreset> = {
  divergen: {
    description: 'DiverGen: template prompts, SAM-free corner masks, real-crop similarity filters, copy-paste detection data',
    config: (ctx) => divergenDemoConfig(ctx.seed),
    outputs: instanceOutputs,
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
