/**
 * RUN/run.json, the manifest of a run: per stage its status, fingerprint,
 * inputs, options, outputs (size and SHA-256), timing and summary.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { StageName } from './config.js';

export const MANIFEST_VERSION = 1;

export interface OutputRecord {
  path: string;
  bytes: number;
  sha256: string;
}

export interface StageRecord {
  status: 'running' | 'done' | 'failed';
  fingerprint: string;
  inputs: string[];
  options: unknown;
  outputs: OutputRecord[];
  summary: Record<string, unknown>;
  started: string;
  finished?: string;
  seconds?: number;
  error?: string;
  /** Times this stage was resumed after an interruption. */
  resumed?: number;
  /** The stage is not part of this run's method (why): recorded as done with no outputs. */
  skipped?: string;
}

export interface Manifest {
  version: number;
  name: string;
  preset?: string;
  config: string;
  seed: number;
  stages: Partial<Record<StageName, StageRecord>>;
  /** `genaug run --queue`: the queue (URL without its password) and per stage its jobs, failed jobs and jobs per worker. */
  queue?: { url: string; stages: Partial<Record<StageName, { jobs: number; failed: number; byWorker: Record<string, number> }>> };
}

export async function readManifest(runDir: string): Promise<Manifest | undefined> {
  const p = join(runDir, 'run.json');
  if (!existsSync(p)) return undefined;
  try {
    const m = JSON.parse(await readFile(p, 'utf8')) as Manifest;
    return m.version === MANIFEST_VERSION ? m : undefined;
  } catch {
    return undefined; // an unreadable manifest means nothing is known to be done
  }
}
