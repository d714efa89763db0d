/**
 * `generate`: runs a plan on one or more image servers and keeps what comes
 * back, resumably.
 *
 * - Each job asks for `candidates` images; candidate c uses seed job.seed + c
 *   and goes to one backend, picked by weight from a hash of (job id,
 *   candidate, seed): the same plan gives the same assignment on every run.
 * - Each backend has its own concurrency limit (that many lanes, each with
 *   one item at a time: never more requests in flight, and nothing is queued
 *   beyond them, so 10,000 jobs cost no more memory than 1,000 do beyond
 *   their plan lines); each request its own timeout (AbortController),
 *   retried on 5xx, 429, timeouts, connection errors and cut responses, never
 *   on other 4xx, after an exponential backoff with jitter (`backoffDelay`).
 *   A Retry-After header (seconds or HTTP-date) holds back every request to
 *   that backend until its time, not only the retried one.
 * - A finished image is written atomically as OUT/images/<sha256[:16]>.<ext>
 *   with a sidecar OUT/images/<sha256[:16]>.json, and only then journaled
 *   (one line in OUT/journal.jsonl). A failure is journaled with the server's
 *   message and does not stop the batch. A run that is killed resumes at the
 *   first (job, candidate) without a journal line: nothing finished is lost or
 *   generated again; an image written but not yet journaled is generated again
 *   to the same bytes and the same file.
 * - A failure is journaled with `retryable`: server errors, timeouts, lost
 *   connections and unreadable local inputs (a server that was down, a disk
 *   not mounted) are tried again by the next run; 4xx answers and invalid
 *   jobs stand until `retryFailed`.
 * - At the end OUT/manifest.jsonl (one line per image, plan order, the
 *   {"file", "category"} keys `genaug annotate --manifest` reads) and
 *   OUT/failed.jsonl (every failed item and invalid plan line) are rebuilt
 *   from the journal.
 * - Secrets (API keys, URL passwords) never reach a file: every line written
 *   is checked and scrubbed.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { readWholeFile, writeFileAtomic } from '../io/atomic.js';
import { checkWithin } from '../io/roots.js';
import { GenaugError, ioError } from '../native/errors.js';
import type { PlanJob } from '../plan/job.js';
import type { Distributor } from '../util/distribute.js';
import { readAppendLog } from '../util/jsonl.js';
import { backoffDelay } from '../util/retry.js';
import { redactor } from '../util/secrets.js';
import { A1111Backend } from './a1111.js';
import { ComfyBackend } from './comfyui.js';
import { clip } from './http.js';
import { checkImage } from './image.js';
import { OpenAIBackend } from './openai.js';
import { checkJob, readPlan, type InvalidPlanLine, type PlanEntry } from './plan.js';
import type { Backend, BackendOptions, BackendType, GenerateRequest, GenerateResult } from './types.js';

export { backoffDelay } from '../util/retry.js';

export interface BackendSpec extends BackendOptions {
  type: BackendType;
  /** Name in records (default the type, numbered when a type repeats). */
  label?: string;
  /** Share of the items (default 1). */
  weight?: number;
  /** Requests in flight on this backend (default GenerateOptions.concurrency). */
  concurrency?: number;
  /** Per-request timeout in ms (default GenerateOptions.timeoutMs). */
  timeoutMs?: number;
  /** A ready backend object instead of one built from `type` (tests, custom servers). */
  backend?: Backend;
}

export interface GenerateProgress {
  /** Items finished (ok or failed), including those found in the journal. */
  done: number;
  total: number;
  failed: number;
  /** Items finished by this run. */
  thisRun: number;
  elapsedMs: number;
  /** Items per second in this run, and the time left at that rate (NaN before the first). */
  rate: number;
  etaMs: number;
  /** Sampler steps of the requests in flight whose server reports them (ComfyUI), summed: value of max. */
  steps?: { value: number; max: number };
}

export interface GenerateOptions {
  out: string;
  backends: BackendSpec[];
  /** Default requests in flight per backend (default 1). */
  concurrency?: number;
  /** Default per-request timeout, ms (default 600000). */
  timeoutMs?: number;
  /** Retries after the first attempt for retryable failures (default 3). */
  retries?: number;
  /** First backoff, ms, doubled each retry (default 1000), capped at maxBackoffMs (default 60000), with jitter (see backoffDelay). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Longest Retry-After honoured, ms (default 600000): a server asking for a
   * longer wait fails the item as retryable (a later run tries it again)
   * instead of holding the batch.
   */
  maxRetryAfterMs?: number;
  /** Source of the backoff jitter, uniform in [0, 1) (default Math.random; it changes timing only, never bytes). */
  random?: () => number;
  /**
   * Try again every item that failed in an earlier run. Without it (the
   * default) a rerun tries again only the failures journaled as retryable
   * (5xx, 429, timeouts, connection errors, unreadable input files); the
   * others (4xx, invalid jobs) stand.
   */
  retryFailed?: boolean;
  /** Folder that relative source_image/mask paths are relative to (default: the plan's folder, or the working folder for a job list). */
  baseDir?: string;
  /**
   * Folders a source_image or mask may lie in besides baseDir and the working folder (the roots rule,
   * io/roots.ts): a job naming a file elsewhere (absolute, `..`, a link out) fails with E_IO, retryable, and the
   * batch goes on. `genaug plan` writes absolute paths when its --images was absolute, and `..` paths when the
   * images are outside the plan's folder; pass that folder here (genaug generate --images) when it is not under
   * the working folder.
   */
  inputRoots?: string[];
  /** Stops the run cleanly: requests in flight are dropped, the journal stays consistent. */
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  /** Hears notes (resumed items, retries). */
  onNote?: (note: string) => void;
  /** Hands the items to other processes (genaug worker, which runs `shard`); their journal lines come back and are journaled here. */
  distribute?: Distributor;
  /**
   * A worker's part of a distributed run: only these items of the plan, journaled in `journal` (its own file, so
   * a redelivered shard resumes), with no lock (the queue's job lock is the one), no clean-up of OUT's temporary files (other workers are
   * writing there) and no manifest.jsonl / failed.jsonl (the coordinator writes them).
   */
  shard?: { items: GenerateTask[]; journal: string };
}

/** One item of a distributed generate run (Distributor task). */
export interface GenerateTask {
  job: PlanJob;
  candidate: number;
}

export interface GenerateSummary {
  out: string;
  jobs: number;
  /** (job, candidate) items in the plan. */
  items: number;
  /** Items with an image. */
  ok: number;
  /** Image files in the manifest (more than `ok` when a server answers several images per request). */
  images: number;
  failed: number;
  /** Plan lines that did not validate (in failed.jsonl). */
  invalidLines: number;
  /** Items finished in this run / found finished in the journal. */
  generatedThisRun: number;
  resumed: number;
  /** Images whose bytes another item of the plan already produced (listed once in the manifest). */
  duplicates: number;
  /** Items per backend label: ok and failed. */
  backends: Record<string, { ok: number; failed: number }>;
  /** True when the run was stopped by its signal before every item finished. */
  interrupted: boolean;
}

/** One line of OUT/journal.jsonl. */
export interface GenerateJournalLine {
  job: string;
  candidate: number;
  status: 'ok' | 'failed';
  seed: number;
  backend: string;
  /** ok: the image file (relative to OUT/images), its sha256, the server's seed and model. */
  file?: string;
  sha256?: string;
  /** null when the server was sent no seed (OpenAI). */
  server_seed?: number | null;
  model?: string;
  /**
   * ok, when the server answered several images for one request (a ComfyUI workflow with a batch or several
   * SaveImage nodes): the second and later ones, in the server's order (`file` etc. above are the first).
   */
  more?: Array<{ file: string; sha256: string; server_seed: number | null }>;
  /** failed: the error code, HTTP status, the server's message and the attempts made. */
  error?: { code: string; status?: number; message: string };
  attempts?: number;
  /** failed: whether a later run tries the item again without --retry-failed (lines from older versions: no). */
  retryable?: boolean;
}

/** Picks a backend index for (job, candidate): a hash of (id, candidate, seed) in [0, 1) against the cumulative weights. */
export function assignBackend(jobId: string, candidate: number, seed: number, weights: readonly number[]): number {
  const h = createHash('sha256').update(`${jobId}\u0000${candidate}\u0000${seed}`).digest();
  const u = h.readUIntBE(0, 6) / 2 ** 48;
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i] as number;
    if (u * total < acc) return i;
  }
  return weights.length - 1;
}

export function createBackend(spec: BackendSpec): Backend {
  if (spec.backend) return spec.backend;
  switch (spec.type) {
    case 'a1111':
      return new A1111Backend(spec);
    case 'comfyui':
      return new ComfyBackend(spec);
    case 'openai':
      return new OpenAIBackend(spec);
    default:
      throw new GenaugError('E_ARGUMENT', `unknown backend type '${String(spec.type)}' (expected a1111, comfyui or openai)`);
  }
}

const keyOf = (job: string, candidate: number) => `${job}\u0000${candidate}`;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise) => {
    if (signal?.aborted) return resolvePromise();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolvePromise();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Reads the journal, cutting a last line left half-written by a kill. Later lines for an item supersede earlier ones. */
async function openJournal(path: string): Promise<Map<string, GenerateJournalLine>> {
  const done = new Map<string, GenerateJournalLine>();
  const text = await readAppendLog(path, 'the journal');
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      const l = JSON.parse(raw) as GenerateJournalLine;
      if (typeof l.job === 'string' && Number.isInteger(l.candidate) && (l.status === 'ok' || l.status === 'failed')) done.set(keyOf(l.job, l.candidate), l);
    } catch {
      // A damaged line: its item is simply generated again.
    }
  }
  return done;
}

/** The lock file a run holds in its output folder. */
export const LOCK_NAME = 'generate.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Takes `path` with O_EXCL, recording this process's pid and host. A lock
 * whose pid is dead on this host (a run killed with SIGKILL) is stale and
 * taken over; a live one, or one from another host, refuses the run.
 * Returns the release function.
 */
async function acquireLock(path: string, out: string): Promise<() => Promise<void>> {
  const me = `${process.pid}\n${hostname()}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return async () => {
        try {
          if ((await readFile(path, 'utf8')) === me) await unlink(path);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(path, path, 'create the lock file', e);
    }
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch {
      // removed meanwhile: try again
    }
    const [pidText, host] = text.split('\n');
    const pid = Number(pidText);
    const stale = text !== '' && Number.isInteger(pid) && pid > 0 && host === hostname() && !alive(pid);
    if (attempt < 5 && (text === '' || stale)) {
      if (stale) await unlink(path).catch(() => undefined);
      else await sleep(50); // just created by another run, its pid not written yet
      continue;
    }
    throw new GenaugError(
      'E_IO',
      `another genaug generate (pid ${pidText || '?'}${host && host !== hostname() ? ` on ${host}` : ''}) is writing to ${out}; wait for it to finish, or remove ${path} if that run is gone`,
      { path },
    );
  }
}

/** Removes temporary files a killed run left in `dir` (atomic writes not yet renamed). */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith('.') && n.endsWith('.tmp')).map((n) => unlink(join(dir, n)).catch(() => undefined)));
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

interface Classified {
  code: string;
  status?: number;
  message: string;
  retryable: boolean;
  retryAfterMs?: number;
}

function classify(e: unknown, timedOut: boolean, timeoutMs: number, where: string): Classified {
  if (timedOut) return { code: 'E_BACKEND', message: `${where}: no answer within ${timeoutMs / 1000}s (timeout)`, retryable: true };
  if (e instanceof GenaugError) {
    const d = e.detail ?? {};
    return {
      code: e.code,
      ...(typeof d.status === 'number' ? { status: d.status } : {}),
      message: e.message,
      retryable: e.code === 'E_BACKEND' && d.retryable === true,
      ...(typeof d.retryAfterMs === 'number' ? { retryAfterMs: d.retryAfterMs } : {}),
    };
  }
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TypeError' && /fetch failed|terminated/i.test(err.message ?? '')) {
    const c = err.cause;
    return { code: 'E_BACKEND', message: `${where}: connection failed (${[c?.code, c?.message].filter(Boolean).join(': ') || err.message})`, retryable: true };
  }
  if (err?.name === 'TypeError' || err?.name === 'SocketError' || (err as { code?: string })?.code === 'ECONNRESET') {
    return { code: 'E_BACKEND', message: `${where}: connection failed (${err.message})`, retryable: true };
  }
  return { code: 'E_INTERNAL', message: `${where}: ${String(err?.message ?? e)}`, retryable: false };
}

export async function generate(plan: string | PlanJob[], o: GenerateOptions): Promise<GenerateSummary> {
  if (!o || typeof o.out !== 'string' || !o.out) throw new GenaugError('E_ARGUMENT', 'generate needs options.out (the output folder)');
  if (!Array.isArray(o.backends) || o.backends.length === 0) throw new GenaugError('E_ARGUMENT', 'generate needs at least one backend');
  const retries = o.retries ?? 3;
  const defaultTimeout = o.timeoutMs ?? 600_000;
  const backoffMs = o.backoffMs ?? 1000;
  const maxBackoffMs = o.maxBackoffMs ?? 60_000;
  const maxRetryAfterMs = o.maxRetryAfterMs ?? 600_000;
  const random = o.random ?? Math.random;
  for (const [name, v, min] of [['retries', retries, 0], ['timeoutMs', defaultTimeout, 1], ['backoffMs', backoffMs, 0], ['maxBackoffMs', maxBackoffMs, 0], ['maxRetryAfterMs', maxRetryAfterMs, 0]] as const) {
    if (!Number.isFinite(v) || v < min) throw new GenaugError('E_RANGE', `generate: ${name} must be a number ≥ ${min}, got ${v}`);
  }

  // The plan.
  let entries: PlanEntry[];
  let invalid: InvalidPlanLine[];
  let baseDir: string;
  if (typeof plan === 'string') {
    ({ jobs: entries, invalid } = await readPlan(plan));
    baseDir = o.baseDir ?? dirname(resolve(plan));
  } else {
    if (!Array.isArray(plan)) throw new GenaugError('E_TYPE', 'generate: plan must be a plan.jsonl path or an array of jobs');
    entries = [];
    invalid = [];
    const seen = new Set<string>();
    plan.forEach((j, i) => {
      const r = checkJob(j, i + 1, 'jobs');
      if ('job' in r && typeof r.job === 'object') {
        if (seen.has(r.job.id)) invalid.push({ line: i + 1, job: r.job.id, field: 'id', message: `jobs:${i + 1}: field "id": ${r.job.id} repeats an earlier job's id` });
        else {
          seen.add(r.job.id);
          entries.push(r as PlanEntry);
        }
      } else invalid.push(r as InvalidPlanLine);
    });
    baseDir = o.baseDir ?? process.cwd();
  }

  // The backends.
  const labels = new Set<string>();
  const typeCount = new Map<string, number>();
  for (const s of o.backends) typeCount.set(s.type, (typeCount.get(s.type) ?? 0) + 1);
  const seenType = new Map<string, number>();
  const backends = o.backends.map((spec) => {
    const n = (seenType.get(spec.type) ?? 0) + 1;
    seenType.set(spec.type, n);
    const label = spec.label ?? ((typeCount.get(spec.type) ?? 0) > 1 ? `${spec.type}-${n}` : spec.type);
    if (labels.has(label)) throw new GenaugError('E_ARGUMENT', `two backends are labelled '${label}'; give each a distinct label`);
    labels.add(label);
    const weight = spec.weight ?? 1;
    if (!Number.isFinite(weight) || weight <= 0) throw new GenaugError('E_RANGE', `backend ${label}: weight must be > 0, got ${weight}`);
    const concurrency = spec.concurrency ?? o.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new GenaugError('E_RANGE', `backend ${label}: concurrency must be an integer ≥ 1, got ${concurrency}`);
    /** `notBefore`: no request to this backend before this time (ms since epoch), set by a Retry-After. */
    return { label, weight, concurrency, timeoutMs: spec.timeoutMs ?? defaultTimeout, backend: createBackend(spec), notBefore: 0 };
  });
  const scrub = redactor(backends.flatMap((b) => b.backend.secrets));

  // The output folder and the journal.
  const out = resolve(o.out);
  const imagesDir = join(out, 'images');
  await mkdir(imagesDir, { recursive: true }).catch((e: unknown) => {
    throw ioError(imagesDir, imagesDir, 'create the output folder', e);
  });
  // One run per output folder: a second would delete the first's temporary files and interleave the journal.
  const shard = o.shard;
  // A shard is the queue's to hand out, one worker at a time (BullMQ's job lock); a lock file here would outlive a
  // worker killed on one machine and refuse the job to every other machine.
  const releaseLock = shard ? async () => undefined : await acquireLock(join(out, LOCK_NAME), out);
  try {
    if (!shard) {
      await removeStaleTemps(imagesDir);
      await removeStaleTemps(out);
    }
    const journalPath = shard ? shard.journal : join(out, 'journal.jsonl');
    const journal = await openJournal(journalPath);

    interface Item {
      /** Position in plan order. */
      index: number;
      entry: PlanEntry;
      candidate: number;
      seed: number;
      backend: number;
    }
    let items: Item[] = [];
    const weights = backends.map((b) => b.weight);
    for (const entry of entries) {
      for (let c = 0; c < entry.job.candidates; c++) {
        const seed = entry.job.seed + c;
        items.push({ index: items.length, entry, candidate: c, seed, backend: assignBackend(entry.job.id, c, seed, weights) });
      }
    }
    if (shard) {
      const mine = new Set(shard.items.map((t) => keyOf(t.job.id, t.candidate)));
      items = items.filter((it) => mine.has(keyOf(it.entry.job.id, it.candidate)));
    }
    const todo = items.filter((it) => {
      const j = journal.get(keyOf(it.entry.job.id, it.candidate));
      return !j || (j.status === 'failed' && (Boolean(o.retryFailed) || j.retryable === true));
    });
    const resumed = items.length - todo.length;
    if (resumed > 0) o.onNote?.(`resuming: ${resumed} of ${items.length} items already in ${journalPath}`);

    let done = resumed;
    const todoKeys = new Set(todo.map((it) => keyOf(it.entry.job.id, it.candidate)));
    let failed = items.filter((it) => {
      const k = keyOf(it.entry.job.id, it.candidate);
      return !todoKeys.has(k) && journal.get(k)?.status === 'failed';
    }).length;
    let thisRun = 0;
    const start = Date.now();
    /** The latest progress each request in flight reported, by item index. */
    const inFlight = new Map<number, { value: number; max: number }>();
    const report = () => {
      const elapsedMs = Date.now() - start;
      const rate = thisRun > 0 ? thisRun / (elapsedMs / 1000) : NaN;
      let steps: GenerateProgress['steps'];
      for (const p of inFlight.values()) steps = { value: (steps?.value ?? 0) + p.value, max: (steps?.max ?? 0) + p.max };
      o.onProgress?.({ done, total: items.length, failed, thisRun, elapsedMs, rate, etaMs: rate > 0 ? ((items.length - done) / rate) * 1000 : NaN, ...(steps ? { steps } : {}) });
    };
    report();

    // Appends are chained so lines never interleave.
    let appendChain: Promise<void> = Promise.resolve();
    const journalAppend = (line: GenerateJournalLine): Promise<void> => {
      const text = scrub(JSON.stringify(line)) + '\n';
      appendChain = appendChain.then(() =>
        appendFile(journalPath, text).catch((e: unknown) => {
          throw ioError(journalPath, journalPath, 'append to the journal', e);
        }),
      );
      return appendChain;
    };

    const roots = [...new Set([baseDir, process.cwd(), ...(o.inputRoots ?? [])].map((r) => resolve(r)))];
    const readInput = async (p: string, what: string): Promise<Buffer> => {
      const path = isAbsolute(p) ? p : join(baseDir, p);
      // The roots rule: inside one of the declared folders, by name and after resolving links.
      let inside: GenaugError | undefined;
      for (const r of roots) {
        try {
          await checkWithin(r, path, `${what}`);
          inside = undefined;
          break;
        } catch (e) {
          inside = e instanceof GenaugError ? e : new GenaugError('E_IO', String(e));
        }
      }
      if (inside) {
        const list = roots.join(', ');
        throw new GenaugError('E_IO', `${what} ${p} lies outside ${list}; files named by a plan must lie inside the plan's folder, the working folder or a folder given with --images`, { path });
      }
      try {
        // A regular file only: a source_image or mask naming /dev/zero or a FIFO was an endless read or wait.
        return await readWholeFile(path, `${what} ${path}`);
      } catch (e) {
        throw ioError(`${what} ${path}`, path, 'read it', e);
      }
    };

    /**
     * Two items with the same bytes share one image file; its sidecar describes
     * the first of them in plan order, whatever order they finish in. Writes of
     * one sidecar are chained so the last rename is the right one.
     */
    const itemIndex = new Map(items.map((it) => [keyOf(it.entry.job.id, it.candidate), it.index]));
    const sidecarChain = new Map<string, Promise<unknown>>();

    /** Orders (item, output) pairs: the sidecar of shared bytes describes the first in plan order. */
    const before = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    const sidecarOwnerOf = new Map<string, [number, number]>();

    /** One output image of an item: its content-addressed file and sidecar. */
    const writeImage = async (it: Item, k: number, label: string, type: string, display: string, r: GenerateResult): Promise<{ file: string; sha256: string; server_seed: number | null }> => {
      const j = it.entry.job;
      const image = r.images[k] as Buffer;
      const ext = checkImage(image, `${label} result ${k + 1} of ${r.images.length} for job ${j.id} candidate ${it.candidate}`);
      const sha = createHash('sha256').update(image).digest('hex');
      const name = sha.slice(0, 16);
      const file = `${name}.${ext}`;
      const imagePath = join(imagesDir, file);
      const sidecarPath = join(imagesDir, `${name}.json`);
      const serverSeed = r.seeds[k] ?? r.seeds[0] ?? null;
      const several = r.images.length > 1;
      const writeSidecar = async () => {
        const sidecar = {
          file,
          sha256: sha,
          job: j.id,
          candidate: it.candidate,
          ...(several ? { output: k, outputs: r.images.length } : {}),
          seed: it.seed,
          server_seed: serverSeed,
          kind: j.kind,
          classes: j.classes,
          prompt: j.prompt,
          negative_prompt: j.negative_prompt,
          ...(j.layout ? { layout: j.layout } : {}),
          width: j.width,
          height: j.height,
          ...(j.source_image ? { source_image: j.source_image } : {}),
          ...(j.mask ? { mask: j.mask, invert_mask: Boolean(j.invert_mask) } : {}),
          ...(j.denoising_strength !== undefined ? { denoising_strength: j.denoising_strength } : {}),
          backend: label,
          backend_type: type,
          backend_url: display,
          model: r.model,
          parameters: r.parameters,
          info: r.info,
          provenance: j.provenance,
        };
        await writeFileAtomic(sidecarPath, Buffer.from(scrub(JSON.stringify(sidecar, null, 2)) + '\n'));
      };
      const me: [number, number] = [it.index, k];
      const task = (sidecarChain.get(name) ?? Promise.resolve()).catch(() => undefined).then(async () => {
        if (!(await exists(imagePath))) await writeFileAtomic(imagePath, image);
        let owner = sidecarOwnerOf.get(name);
        if (owner === undefined && (await exists(sidecarPath))) {
          // From an earlier run (perhaps this very item, killed before it was journaled).
          try {
            const s = JSON.parse(await readFile(sidecarPath, 'utf8')) as { job?: string; candidate?: number; output?: number };
            const index = itemIndex.get(keyOf(String(s.job), Number(s.candidate)));
            owner = index === undefined ? undefined : [index, typeof s.output === 'number' ? s.output : 0];
          } catch {
            owner = undefined;
          }
        }
        if (owner !== undefined && before(owner, me)) return;
        sidecarOwnerOf.set(name, me);
        await writeSidecar();
      });
      sidecarChain.set(name, task);
      void task.finally(() => sidecarChain.get(name) === task && sidecarChain.delete(name)).catch(() => undefined);
      await task;
      return { file, sha256: sha, server_seed: serverSeed };
    };

    const writeResult = async (it: Item, label: string, type: string, display: string, r: GenerateResult): Promise<GenerateJournalLine> => {
      const j = it.entry.job;
      // Every image the server answered is kept, in its order (one at a time: two outputs may share bytes).
      const written: Array<{ file: string; sha256: string; server_seed: number | null }> = [];
      for (let k = 0; k < r.images.length; k++) written.push(await writeImage(it, k, label, type, display, r));
      const [first, ...more] = written as [(typeof written)[number], ...typeof written];
      return { job: j.id, candidate: it.candidate, status: 'ok', seed: it.seed, backend: label, file: first.file, sha256: first.sha256, server_seed: first.server_seed, model: r.model, ...(more.length ? { more } : {}) };
    };

    const signal = o.signal;
    const stopped = () => Boolean(signal?.aborted);

    /** One item start to finish; undefined when the run was stopped before it finished. */
    const runItem = async (it: Item): Promise<GenerateJournalLine | undefined> => {
      const b = backends[it.backend] as (typeof backends)[number];
      const j = it.entry.job;
      const where = `${b.label} (${b.backend.display}) job ${j.id} candidate ${it.candidate}`;
      const fail = (c: Classified, attempts: number): GenerateJournalLine => ({
        job: j.id,
        candidate: it.candidate,
        status: 'failed',
        seed: it.seed,
        backend: b.label,
        error: { code: c.code, ...(c.status !== undefined ? { status: c.status } : {}), message: clip(scrub(c.message)) },
        attempts,
        retryable: c.retryable,
      });
      const req: GenerateRequest = {
        job: j,
        candidate: it.candidate,
        seed: it.seed,
        onProgress: (p) => {
          if (!Number.isFinite(p.value) || !Number.isFinite(p.max) || p.max <= 0) return;
          inFlight.set(it.index, { value: Math.min(p.value, p.max), max: p.max });
          report();
        },
      };
      try {
        if (j.kind !== 'txt2img' && !j.source_image) throw new GenaugError('E_FORMAT', `job ${j.id} is ${j.kind} but has no source_image`);
        if (j.kind === 'inpaint' && !j.mask) throw new GenaugError('E_FORMAT', `job ${j.id} is inpaint but has no mask`);
        if (j.source_image) req.sourceImage = await readInput(j.source_image, `job ${j.id}: source_image`);
        if (j.mask) req.mask = await readInput(j.mask, `job ${j.id}: mask`);
      } catch (e) {
        const c = classify(e, false, b.timeoutMs, where);
        // An input file that cannot be read now (not mounted, not copied yet) may be readable on the next run.
        if (c.code === 'E_IO') c.retryable = true;
        return fail(c, 0);
      }
      for (let attempt = 1; ; attempt++) {
        // A Retry-After from any request to this backend holds every lane (it may be moved later while waiting).
        for (let w = b.notBefore - Date.now(); w > 0 && !stopped(); w = b.notBefore - Date.now()) await sleep(w, signal);
        if (stopped()) return undefined;
        // One controller per attempt, aborted by its timer or by the run's signal (a listener removed afterwards,
        // rather than AbortSignal.any, whose dependants a long-lived parent keeps alive).
        const attemptCtl = new AbortController();
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          attemptCtl.abort(new GenaugError('E_BACKEND', 'timeout'));
        }, b.timeoutMs);
        const onStop = () => attemptCtl.abort(signal?.reason);
        signal?.addEventListener('abort', onStop, { once: true });
        const attemptSignal = attemptCtl.signal;
        let result: GenerateResult;
        try {
          result = await b.backend.generate(req, attemptSignal);
          if (!result.images.length) throw new GenaugError('E_BACKEND', `${where}: the server returned no image`, { retryable: true });
          result.images.forEach((im, k) => checkImage(im, result.images.length > 1 ? `${where} image ${k + 1} of ${result.images.length}` : where));
        } catch (e) {
          if (stopped()) return undefined;
          const c = classify(e, timedOut, b.timeoutMs, where);
          if (!c.retryable) return fail(c, attempt);
          if (c.retryAfterMs !== undefined && c.retryAfterMs > maxRetryAfterMs) {
            c.message += ` (the server asks to wait ${Math.ceil(c.retryAfterMs / 1000)} s, more than the ${maxRetryAfterMs / 1000} s allowed; a later run tries it again)`;
            return fail(c, attempt);
          }
          if (c.retryAfterMs !== undefined) b.notBefore = Math.max(b.notBefore, Date.now() + c.retryAfterMs);
          if (attempt > retries) return fail(c, attempt);
          const wait = Math.max(c.retryAfterMs ?? 0, backoffDelay(attempt, backoffMs, maxBackoffMs, random));
          o.onNote?.(`retry ${attempt}/${retries} in ${(wait / 1000).toFixed(1)}s: ${scrub(c.message)}`);
          await sleep(wait, signal);
          continue;
        } finally {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onStop);
        }
        // The files are written even when a stop arrives now: the request is paid for.
        try {
          return await writeResult(it, b.label, b.backend.type, b.backend.display, result);
        } catch (e) {
          if (e instanceof GenaugError && e.code === 'E_IO') throw e; // a full disk stops the run
          return fail(classify(e, false, b.timeoutMs, where), attempt);
        }
      }
    };

    if (o.distribute && todo.length > 0) {
      // Every item elsewhere; the journal lines come back in plan order and are journaled as this run's own.
      const res = await o.distribute.run<GenerateTask, GenerateJournalLine>('generate', todo.map((it) => ({ job: it.entry.job, candidate: it.candidate })));
      todo.forEach((it, i) => {
        const r = res[i] as (typeof res)[number];
        const line: GenerateJournalLine = r.ok
          ? r.value
          : { job: it.entry.job.id, candidate: it.candidate, status: 'failed', seed: it.seed, backend: (backends[it.backend] as (typeof backends)[number]).label, error: { code: 'E_QUEUE_JOB', message: clip(scrub(r.reason)) }, attempts: 0, retryable: true };
        void journalAppend(line);
        journal.set(keyOf(line.job, line.candidate), line);
        if (line.status === 'failed') failed++;
        done++;
        thisRun++;
      });
      report();
      await appendChain;
      todo.length = 0;
    }

    // Per-backend lanes over the items assigned to it, in plan order.
    let fatal: { error: unknown } | undefined;
    const lanes: Array<Promise<void>> = [];
    backends.forEach((b, bi) => {
      const queue = todo.filter((it) => it.backend === bi);
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < queue.length && !fatal && !stopped(); i = next++) {
          const it = queue[i] as Item;
          try {
            const line = await runItem(it).finally(() => inFlight.delete(it.index));
            if (!line) return;
            await journalAppend(line);
            journal.set(keyOf(line.job, line.candidate), line);
            if (line.status === 'failed') failed++;
            done++;
            thisRun++;
            report();
          } catch (error) {
            fatal ??= { error };
          }
        }
      };
      for (let k = 0; k < Math.min(b.concurrency, queue.length); k++) lanes.push(lane());
    });
    await Promise.all(lanes);
    await appendChain.catch(() => undefined);
    if (fatal) throw fatal.error;
    if (shard) return { out, jobs: entries.length, items: items.length, ok: 0, images: 0, failed, invalidLines: invalid.length, generatedThisRun: thisRun, resumed, duplicates: 0, backends: {}, interrupted: stopped() && done < items.length };

    // The manifest and the failure list, rebuilt from the journal in plan order.
    const manifest: string[] = [];
    const failures: string[] = invalid.map((l) => scrub(JSON.stringify({ line: l.line, ...(l.job ? { job: l.job } : {}), status: 'invalid', ...(l.field ? { field: l.field } : {}), error: l.message })));
    const seenFiles = new Set<string>();
    const perBackend: Record<string, { ok: number; failed: number }> = Object.fromEntries(backends.map((b) => [b.label, { ok: 0, failed: 0 }]));
    let ok = 0;
    let nFailed = 0;
    let duplicates = 0;
    for (const it of items) {
      const j = it.entry.job;
      const l = journal.get(keyOf(j.id, it.candidate));
      if (!l) continue;
      const pb = (perBackend[l.backend] ??= { ok: 0, failed: 0 });
      if (l.status === 'failed') {
        nFailed++;
        pb.failed++;
        failures.push(scrub(JSON.stringify({ line: it.entry.line, job: j.id, candidate: it.candidate, status: 'failed', seed: l.seed, backend: l.backend, error: l.error, attempts: l.attempts, retryable: l.retryable === true })));
        continue;
      }
      ok++;
      pb.ok++;
      // One manifest line per image; `output` only when the server answered several for the request.
      const outputs = [l.file as string, ...(l.more ?? []).map((m) => m.file)];
      outputs.forEach((file, k) => {
        if (seenFiles.has(file)) {
          duplicates++;
          return;
        }
        seenFiles.add(file);
        manifest.push(
          scrub(
            JSON.stringify({
              file,
              path: `images/${file}`,
              category: j.classes[0],
              class: j.classes[0],
              classes: j.classes,
              job: j.id,
              candidate: it.candidate,
              ...(outputs.length > 1 ? { output: k } : {}),
              seed: l.seed,
              backend: l.backend,
              model: l.model,
              kind: j.kind,
              prompt: j.prompt,
            }),
          ),
        );
      });
    }
    const lines = (a: string[]) => Buffer.from(a.map((s) => `${s}\n`).join(''));
    await writeFileAtomic(join(out, 'manifest.jsonl'), lines(manifest));
    await writeFileAtomic(join(out, 'failed.jsonl'), lines(failures));
    const summary: GenerateSummary = {
      out,
      jobs: entries.length,
      items: items.length,
      ok,
      images: manifest.length,
      failed: nFailed,
      invalidLines: invalid.length,
      generatedThisRun: thisRun,
      resumed,
      duplicates,
      backends: perBackend,
      interrupted: stopped() && ok + nFailed < items.length,
    };
    if (duplicates) o.onNote?.(`${duplicates} images repeat the bytes of another item (does the server ignore the seed?); the manifest lists each file once`);
    return summary;
  } finally {
    for (const b of backends) await Promise.resolve(b.backend.close?.()).catch(() => undefined);
    await releaseLock();
  }
}
