/**
 * Runs the stages of a run config in order, in one run folder. Each stage
 * reads the files of the stages before it and writes its own folder; the
 * manifest (RUN/run.json, written atomically) records per stage its inputs,
 * options, outputs (size and SHA-256), timing and status.
 *
 * A stage is done only when its outputs and its manifest entry are written.
 * Re-running skips a done stage whose fingerprint (its options, the real data,
 * the fingerprints of the stages before it) is unchanged and whose outputs are
 * still there; a stage that was interrupted or failed resumes through its own
 * journal (generate, annotate, paste) when its fingerprint is unchanged, or
 * starts again (the others are quick and deterministic), so an interrupted run
 * ends with the same bytes as one that was never interrupted. A done generate
 * stage whose journal still has retryable failures runs again and retries
 * them; --force on a journalled stage resumes it too (finished items are kept).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

import { removeStaleTemporaries, writeFileAtomic } from '../io/atomic.js';
import { lockFolder } from '../io/lock.js';
import { GenaugError } from '../native/errors.js';
import { STAGES, type LoadedConfig, type StageName } from './config.js';
import { MANIFEST_VERSION, readManifest, type Manifest, type OutputRecord, type StageRecord } from './manifest.js';
import type { QueueRun } from './queue.js';
import { STAGE_DEFS, type StageContext, type StageResult } from './stages.js';

export { MANIFEST_VERSION, readManifest, type Manifest, type OutputRecord, type StageRecord };

export interface RunOptions {
  from?: StageName;
  until?: StageName;
  /** Run the selected stages even when their fingerprints match. */
  force?: boolean;
  log?: (line: string) => void;
  onProgress?: (stage: StageName, done: number, total: number) => void;
  /**
   * Stops the run: no new stage starts, and a stage with items (generate,
   * annotate, embed, paste) takes no new item, journals those in hand, and
   * rejects with E_ABORTED; the stage is recorded as not done and the next
   * run resumes it.
   */
  signal?: AbortSignal;
  /** `--queue`: the per-item stages' work goes to queue workers (pipeline/queue.ts); the outputs are the same bytes. */
  queue?: QueueRun;
}


async function writeManifest(runDir: string, m: Manifest): Promise<void> {
  await writeFileAtomic(join(runDir, 'run.json'), new TextEncoder().encode(JSON.stringify(m, null, 1) + '\n'));
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file under `dir`, relative to `root`, sorted; journals and temporary files left out. */
export async function listFiles(dir: string, root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && !e.name.includes('.tmp')) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out.sort();
}

/** Temporary files a killed run left half-written (atomic writes' .tmp files): gone before a stage resumes. */
async function removeTemporaries(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.includes('.tmp')) await rm(join(e.parentPath, e.name), { force: true });
  }
}

/** removeStaleTemporaries (temporary files of processes that no longer run) in `dir` and every folder below it. */
async function removeDeadTemporaries(dir: string): Promise<void> {
  await removeStaleTemporaries(dir);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isDirectory()) await removeStaleTemporaries(join(e.parentPath, e.name));
  }
}

async function recordOutputs(runDir: string, files: string[]): Promise<OutputRecord[]> {
  const out: OutputRecord[] = [];
  for (const f of files) {
    const data = await readFile(join(runDir, f));
    out.push({ path: f, bytes: data.byteLength, sha256: sha256(data) });
  }
  return out;
}

async function outputsIntact(runDir: string, outputs: OutputRecord[]): Promise<boolean> {
  for (const o of outputs) {
    try {
      if ((await stat(join(runDir, o.path))).size !== o.bytes) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** The identity of the real data: the COCO file's bytes and the image folder's names and sizes. */
async function realDataFingerprint(cfg: LoadedConfig): Promise<string> {
  const h = createHash('sha256');
  h.update(await readFile(cfg.paths.realCoco));
  const files = await listFiles(cfg.paths.realImages, cfg.paths.realImages);
  for (const f of files) h.update(`${f}\0${(await stat(join(cfg.paths.realImages, f))).size}\0`);
  return h.digest('hex');
}

/** Names, sizes and modification times of the files (folders: every file under them) a stage reads from outside the run. */
async function filesFingerprint(paths: Array<string | undefined>): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if (!p) continue;
    const st = await stat(p);
    const list = st.isDirectory() ? (await listFiles(p, p)).map((f) => join(p, f)) : [p];
    for (const f of list) {
      const s = await stat(f);
      out.push(`${f}\0${s.size}\0${Math.round(s.mtimeMs)}`);
    }
  }
  return out;
}

function stageIndex(name: StageName | undefined, fallback: number): number {
  if (name === undefined) return fallback;
  const i = STAGES.indexOf(name);
  if (i < 0) throw new GenaugError('E_ARGUMENT', `unknown stage '${name}'; stages: ${STAGES.join(', ')}`);
  return i;
}

export interface RunResult {
  runDir: string;
  manifest: Manifest;
  ran: StageName[];
  skipped: StageName[];
  /** Stages that are not part of this run's method (recorded in run.json with the reason). */
  notPart: StageName[];
}

/** Runs (or resumes) the pipeline of a loaded config. */
export async function runPipeline(cfg: LoadedConfig, o: RunOptions = {}): Promise<RunResult> {
  const runDir = cfg.paths.runDir;
  const unlock = await lockFolder(runDir, 'genaug run');
  try {
    return await runLocked(cfg, runDir, o);
  } finally {
    await unlock();
  }
}

async function runLocked(cfg: LoadedConfig, runDir: string, o: RunOptions): Promise<RunResult> {
  const first = stageIndex(o.from, 0);
  const last = stageIndex(o.until, STAGES.length - 1);
  if (first > last) throw new GenaugError('E_ARGUMENT', `--from ${o.from} comes after --until ${o.until}`);
  const c = cfg.config;
  // A run killed while writing run.json leaves its temporary file (the stage folders are cleaned as each stage resumes).
  await removeStaleTemporaries(runDir);
  const old = await readManifest(runDir);
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    name: c.name,
    ...(c.preset ? { preset: c.preset } : {}),
    config: cfg.file,
    seed: c.seed,
    stages: old?.stages ?? {},
    ...(o.queue ? { queue: o.queue.record() } : {}),
  };
  const log = o.log ?? (() => {});
  const realFp = await realDataFingerprint(cfg);
  let upstream = sha256(`real:${realFp}:seed:${c.seed}`);
  const ran: StageName[] = [];
  const skipped: StageName[] = [];
  const notPart: StageName[] = [];
  for (let i = 0; i < STAGES.length; i++) {
    const name = STAGES[i] as StageName;
    const def = STAGE_DEFS[name];
    const options = def.options(c);
    const external = await filesFingerprint(def.files?.(cfg) ?? []);
    const fingerprint = sha256(JSON.stringify({ stage: name, version: def.version, options, files: external, upstream }));
    upstream = fingerprint;
    const prev = manifest.stages[name];
    const selected = i >= first && i <= last;
    // A stage that is not part of this run's method (pool and paste of a classification run, dataset of an
    // instance run): recorded as done with no outputs and its reason, its folder removed.
    const notHere = def.applies?.(c);
    if (notHere !== undefined) {
      if (i > last) break;
      notPart.push(name);
      if (prev?.status === 'done' && prev.fingerprint === fingerprint && prev.skipped === notHere) continue;
      await rm(join(runDir, name), { recursive: true, force: true });
      const now = new Date().toISOString();
      manifest.stages[name] = { status: 'done', fingerprint, inputs: [], options, outputs: [], summary: {}, started: now, finished: now, seconds: 0, skipped: notHere };
      await writeManifest(runDir, manifest);
      log(`${name}: not part of this run (${notHere})`);
      continue;
    }
    const intact = prev?.status === 'done' && prev.fingerprint === fingerprint && (await outputsIntact(runDir, prev.outputs));
    // A done stage with work its journal says can still succeed (generate's retryable failures) is not fresh.
    const pending = intact && selected && def.pending ? await def.pending(join(runDir, name)) : undefined;
    const fresh = intact && !pending;
    if (pending) log(`${name}: ${pending}; trying them again`);
    if (!selected || (fresh && !o.force)) {
      if (selected) skipped.push(name);
      if (i > last) break;
      if (!selected && !fresh && i < first) {
        throw new GenaugError('E_ARGUMENT', `--from ${o.from}: stage '${name}' before it is not done with the current config; run without --from first`);
      }
      if (selected) log(`${name}: up to date, skipped`);
      continue;
    }
    if (o.signal?.aborted) throw new GenaugError('E_ABORTED', `the run was stopped before its ${name} stage; run it again to resume`);
    const dir = join(runDir, name);
    // Same fingerprint: a stage with a journal resumes from it (interrupted, failed, or done and run again by
    // --force or for retryable failures), so finished items are kept; otherwise the stage starts clean.
    const resume = (typeof def.resumable === 'function' ? def.resumable(c) : Boolean(def.resumable)) && prev?.fingerprint === fingerprint && (prev.status === 'running' || prev.status === 'failed' || intact);
    if (!resume) await rm(dir, { recursive: true, force: true });
    else await removeTemporaries(dir);
    await mkdir(dir, { recursive: true });
    const started = new Date();
    const record: StageRecord = {
      status: 'running',
      fingerprint,
      inputs: def.inputs(c),
      options,
      outputs: [],
      summary: {},
      started: started.toISOString(),
      ...(resume ? { resumed: (prev?.resumed ?? 0) + 1 } : {}),
    };
    manifest.stages[name] = record;
    await writeManifest(runDir, manifest);
    log(`${name}: ${resume ? 'resuming' : 'running'}`);
    const distribute = o.queue?.distributor(name, fingerprint, (d, t) => o.onProgress?.(name, d, t));
    const ctx: StageContext = {
      cfg,
      runDir,
      dir,
      manifest,
      log: (s) => log(`${name}: ${s}`),
      progress: (d, t) => o.onProgress?.(name, d, t),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(distribute ? { distribute } : {}),
    };
    let result: StageResult;
    try {
      result = await def.run(ctx);
    } catch (e) {
      record.status = 'failed';
      record.error = e instanceof GenaugError ? `[${e.code}] ${e.message}` : String((e as Error)?.message ?? e);
      record.finished = new Date().toISOString();
      if (o.queue) manifest.queue = o.queue.record();
      // On a full or read-only disk run.json may not be writable either: the stage's own error is the one to
      // report (run.json then still says 'running', and the next run resumes the stage all the same).
      await writeManifest(runDir, manifest).catch(() => undefined);
      throw e;
    }
    // A worker killed in the middle of an atomic write (a queue worker's process, SIGKILLed while another took its
    // job over) leaves its temporary file behind: the finished stage's folder holds what an uninterrupted run's does.
    await removeDeadTemporaries(dir);
    const files = (await listFiles(dir, runDir)).filter((f) => !(def.journals ?? []).some((j) => f.endsWith(j)));
    record.outputs = await recordOutputs(runDir, files);
    record.summary = result.summary;
    record.finished = new Date().toISOString();
    record.seconds = (Date.now() - started.getTime()) / 1000;
    record.status = 'done';
    if (o.queue) manifest.queue = o.queue.record();
    await writeManifest(runDir, manifest);
    await distribute?.finish();
    ran.push(name);
    log(`${name}: done in ${record.seconds.toFixed(1)} s`);
  }
  return { runDir, manifest, ran, skipped, notPart };
}
