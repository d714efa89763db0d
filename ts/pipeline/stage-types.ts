/**
 * The types a stage's run function works with, apart from stages.ts so that the method modules (acp.ts,
 * classify.ts) that stages.ts calls can use them without an import circle.
 */
import type { Distributor } from '../util/distribute.js';
import type { LoadedConfig } from './config.js';
import type { Manifest } from './manifest.js';

export interface StageContext {
  cfg: LoadedConfig;
  runDir: string;
  /** This stage's folder (RUN/<stage>). */
  dir: string;
  manifest: Manifest;
  log: (line: string) => void;
  progress: (done: number, total: number) => void;
  /** The run's stop signal: a stage with items takes no new one once it fires, and rejects with E_ABORTED. */
  signal?: AbortSignal;
  /** `genaug run --queue`: the stage's items go to queue workers (pipeline/queue.ts). */
  distribute?: Distributor;
}

export interface StageResult {
  summary: Record<string, unknown>;
}

/** A line of generate/generated.jsonl: one planned (job, candidate) and what became of it. */
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
