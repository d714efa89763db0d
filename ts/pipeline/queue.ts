/**
 * Scale-out on BullMQ + Redis: `genaug run --queue redis://...` splits each
 * per-item stage (generate, annotate, embed, paste) into jobs of contiguous
 * item shards, and `genaug worker --queue ...` processes, on any machine that
 * sees the run folder at the same path (shared storage), take them.
 *
 * - A job names its tasks file and its result file, both under RUN/queue/<stage>/
 *   (on the shared storage; the Redis job holds only their names). Its id is a
 *   hash of the stage's fingerprint, the shard index and the shard's tasks:
 *   enqueueing the same work again (a resumed coordinator) finds the same job,
 *   never a second one, and a shard whose result file exists is not enqueued.
 * - A worker runs each task with the same function the local run uses
 *   (annotateOne, embedBatch, renderItem, generate on the shard's items), writes
 *   the stage's files by temporary file + rename, then the result file
 *   atomically, then completes the job. A worker killed mid-job leaves the job's
 *   lock to expire: BullMQ's stalled-job check (every `stallMs`) hands it to
 *   another worker. A job that fails `attempts` times (exponential backoff) is
 *   recorded with its reason as the failure of each of its items, as the local
 *   run records a failed item, and the run goes on.
 * - The coordinator gives the results back to the stage engine in task order;
 *   the engine journals and assembles them as its own (ts/util/distribute.ts),
 *   so the outputs are byte-identical to the local run's whatever the number of
 *   workers, the order jobs finish in, or which worker crashed.
 * - Redis that cannot be reached or refuses the password: E_QUEUE_UNAVAILABLE
 *   within seconds, not a reconnect loop. The password is never written: every
 *   message, log line and run.json shows the URL as redis://***@host:port/db.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { isAbsolute, join, relative, resolve } from 'node:path';

import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from 'bullmq';

import { annotateOne, type AnnotateTask, type JournalLine } from '../curate/annotate.js';
import { embedBatch, type BatchTask } from '../curate/embed.js';
import { renderItem, type RenderTask } from '../augment/paste.js';
import { CropCache } from '../augment/pool.js';
import { generate, type GenerateJournalLine, type GenerateTask } from '../generate/runner.js';
import { writeFileAtomic } from '../io/atomic.js';
import { GenaugError } from '../native/errors.js';
import type { Distributed, DistributedKind, Distributor } from '../util/distribute.js';
import { readJournalMap } from '../util/jsonl.js';
import { redactor } from '../util/secrets.js';
import { loadConfig, type LoadedConfig, type StageName } from './config.js';
import { clipScoreTask, generateSetup, type ClipScoreTask } from './stages.js';

/** The stages whose items go to queue workers (score: its CLIP scores; its similarities, filter, pool and report need every row at once: the coordinator runs them). */
export const QUEUE_STAGES: readonly DistributedKind[] = ['generate', 'annotate', 'embed', 'score', 'paste'];

/** BullMQ's key prefix: genaug's queues are genaug:<stage>:*. */
const PREFIX = 'genaug';

/** Items per job, by stage (a job is a few seconds of work on one core: small enough to spread, big enough to cost little to hand out). */
export const DEFAULT_SHARD: Record<DistributedKind, number> = { generate: 32, annotate: 64, embed: 4, score: 4, paste: 32 };

// --- the URL ----------------------------------------------------------------------

export interface QueueUrl {
  host: string;
  port: number;
  db: number;
  tls: boolean;
  username?: string;
  password?: string;
  /** The URL with the credentials replaced (redis://***@host:port/db): what messages and files show. */
  display: string;
  /** Removes every form of the password from a text. */
  scrub: (text: string) => string;
}

/** Parses redis://[[user]:password@]host[:port][/db] (rediss:// for TLS); the password may also come from GENAUG_QUEUE_PASSWORD. */
export function parseQueueUrl(url: string, env: NodeJS.ProcessEnv = process.env): QueueUrl {
  const masked = url.replace(/\/\/[^@/\s]*@/g, '//***@');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GenaugError('E_ARGUMENT', `--queue: not a URL: '${masked}' (expected redis://[:password@]host:port[/db])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new GenaugError('E_ARGUMENT', `--queue: '${masked}' must be a redis:// or rediss:// URL`);
  if (!u.hostname) throw new GenaugError('E_ARGUMENT', `--queue: '${masked}' names no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\/+/, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 1_000_000) throw new GenaugError('E_ARGUMENT', `--queue: '${masked}': the database must be a number (redis://host:port/0), got '${dbText}'`);
  const password = u.password ? decodeURIComponent(u.password) : env.GENAUG_QUEUE_PASSWORD || undefined;
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const secrets = [password, u.password].filter((x): x is string => Boolean(x));
  const base = redactor(secrets);
  const scrub = (t: string) => base(t).replace(/\/\/[^@/\s]*@/g, '//***@');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port,
    db,
    tls: u.protocol === 'rediss:',
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    display: `${u.protocol}//${password || username ? '***@' : ''}${u.hostname}:${port}/${db}`,
    scrub,
  };
}

function connectionOptions(q: QueueUrl): ConnectionOptions {
  return {
    host: q.host,
    port: q.port,
    db: q.db,
    ...(q.username ? { username: q.username } : {}),
    ...(q.password ? { password: q.password } : {}),
    ...(q.tls ? { tls: {} } : {}),
    connectTimeout: 5000,
    // Reconnect every 0.25 .. 2 s while Redis is away (a worker waits it out; the coordinator gives up, see unavailableMs).
    retryStrategy: (times: number) => Math.min(250 * times, 2000),
  };
}

/**
 * Speaks to Redis once, directly (AUTH, SELECT, PING), before any BullMQ
 * object exists: a host that does not answer or a refused password is
 * E_QUEUE_UNAVAILABLE within `timeoutMs`, with the reason, never a retry loop.
 */
export async function checkRedis(q: QueueUrl, timeoutMs = 8000): Promise<void> {
  const commands: string[][] = [];
  if (q.password) commands.push(q.username ? ['AUTH', q.username, q.password] : ['AUTH', q.password]);
  if (q.db) commands.push(['SELECT', String(q.db)]);
  commands.push(['PING']);
  const fail = (why: string) => new GenaugError('E_QUEUE_UNAVAILABLE', q.scrub(`Redis at ${q.display}: ${why}`), { url: q.display });
  await new Promise<void>((resolvePromise, reject) => {
    let sock: Socket;
    let buf = '';
    let answered = 0;
    const finish = (e?: GenaugError) => {
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolvePromise();
    };
    const timer = setTimeout(() => finish(fail(`no answer within ${timeoutMs / 1000} s (is redis-server running there, and the port open?)`)), timeoutMs);
    const onConnect = () => sock.write(commands.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join(''));
    sock = q.tls ? tlsConnect({ host: q.host, port: q.port, servername: q.host }, onConnect) : createConnection({ host: q.host, port: q.port }, onConnect);
    sock.setEncoding('utf8');
    sock.on('error', (e: NodeJS.ErrnoException) => finish(fail(`could not connect (${e.code ?? e.message})`)));
    sock.on('close', () => finish(fail('the connection was closed before Redis answered')));
    sock.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('-')) {
          const msg = line.slice(1);
          const auth = /WRONGPASS|NOAUTH|invalid password|invalid username/i.test(msg);
          return finish(fail(auth ? `the password was refused (${msg})` : `Redis answered an error (${msg})`));
        }
        if (++answered === commands.length) return finish();
      }
    });
  });
}

// --- results on shared storage ------------------------------------------------------

/** JSON with typed arrays kept exact (embedding rows, masks): {"$f32": base64} / {"$u8": base64}. */
export function encodeResult(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Float32Array) return { $f32: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    if (v instanceof Uint8Array) return { $u8: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    return v;
  });
}

export function decodeResult<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o.$f32 === 'string' && Object.keys(o).length === 1) {
        const b = Buffer.from(o.$f32, 'base64');
        const out = new Float32Array(b.length / 4);
        new Uint8Array(out.buffer).set(b);
        return out;
      }
      if (typeof o.$u8 === 'string' && Object.keys(o).length === 1) return new Uint8Array(Buffer.from(o.$u8, 'base64'));
    }
    return v;
  }) as T;
}

/** What a queue job carries: where its run is and its two files there (relative to the run folder). */
export interface JobData {
  v: 1;
  kind: DistributedKind;
  runDir: string;
  /** The run's config (generate: the worker builds its backends from it). */
  config: string;
  tasks: string;
  result: string;
  /** Items in the job. */
  items: number;
}

interface ResultFile {
  worker: string;
  results: unknown[];
}

// --- the coordinator ---------------------------------------------------------------

export interface QueueRunOptions {
  url: string;
  /** Attempts per job before it is recorded as failed (default 3), with exponential backoff from backoffMs (default 1000). */
  attempts?: number;
  backoffMs?: number;
  /** Items per job, by stage (default DEFAULT_SHARD). */
  shard?: Partial<Record<DistributedKind, number>>;
  /** Workers of this process (0: the coordinator does no item work). */
  localWorkers?: number;
  /** Lock / stalled-job interval of the local workers, ms (default 30000). */
  stallMs?: number;
  /** Redis gone for this long mid-run fails the run with E_QUEUE_UNAVAILABLE (default 8000 ms). */
  unavailableMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface QueueStageRecord {
  jobs: number;
  failed: number;
  byWorker: Record<string, number>;
}

/** run.json's "queue". */
export interface QueueRecord {
  url: string;
  stages: Partial<Record<StageName, QueueStageRecord>>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), res(v)),
      (e: unknown) => (clearTimeout(t), rej(e)),
    );
  });
}

/**
 * One coordinator's link to the queue: a BullMQ Queue (and QueueEvents) per
 * stage, the run's counts for run.json, and the local workers if asked for.
 */
export class QueueRun {
  readonly url: QueueUrl;
  private readonly queues = new Map<DistributedKind, Queue>();
  private readonly events = new Map<DistributedKind, QueueEvents>();
  private readonly stats: Partial<Record<StageName, QueueStageRecord>> = {};
  private local: QueueWorkers | undefined;
  private readonly conn: ConnectionOptions;

  private constructor(
    readonly cfg: LoadedConfig,
    private readonly o: QueueRunOptions,
    url: QueueUrl,
  ) {
    this.url = url;
    this.conn = connectionOptions(url);
  }

  /** Checks Redis (E_QUEUE_UNAVAILABLE), then opens the queues and the local workers. */
  static async open(cfg: LoadedConfig, o: QueueRunOptions): Promise<QueueRun> {
    const url = parseQueueUrl(o.url);
    for (const [name, v] of [['attempts', o.attempts], ['localWorkers', o.localWorkers]] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new GenaugError('E_ARGUMENT', `--queue: ${name} must be an integer >= 0, got ${v}`);
    }
    await checkRedis(url);
    const r = new QueueRun(cfg, o, url);
    for (const kind of QUEUE_STAGES) {
      const q = new Queue(kind, { connection: r.conn, prefix: PREFIX });
      q.on('error', () => undefined); // reported by the health check, with the password scrubbed
      r.queues.set(kind, q);
    }
    if (o.localWorkers) {
      // Their failures are said in the coordinator's log; the line per job is not.
      const log = o.log ?? (() => undefined);
      r.local = await startWorkers({ url: o.url, concurrency: o.localWorkers, id: `${hostname()}:${process.pid}:local`, ...(o.stallMs ? { stallMs: o.stallMs } : {}), log: (l) => (/ job \S+ \(\S+ items\)/.test(l) ? undefined : log(l)) });
    }
    o.log?.(`queue: ${url.display}${o.localWorkers ? `, ${o.localWorkers} local worker${o.localWorkers === 1 ? '' : 's'}` : ', no local workers (start genaug worker processes)'}`);
    return r;
  }

  record(): QueueRecord {
    return { url: this.url.display, stages: this.stats };
  }

  /** The stage's distributor (undefined for the stages the coordinator runs itself). */
  distributor(stage: StageName, fingerprint: string, progress: (done: number, total: number) => void): (Distributor & { finish(): Promise<void> }) | undefined {
    if (!(QUEUE_STAGES as readonly string[]).includes(stage)) return undefined;
    const self = this;
    return {
      run<T, R>(kind: DistributedKind, tasks: T[]): Promise<Array<Distributed<R>>> {
        return self.runShards<T, R>(stage, fingerprint, kind, tasks, progress);
      },
      // The stage's files are in its folder now: its tasks and results are not needed again.
      finish: async () => {
        await rm(join(self.cfg.paths.runDir, 'queue', stage), { recursive: true, force: true });
        await rmdir(join(self.cfg.paths.runDir, 'queue')).catch(() => undefined); // only when no other stage's is left
      },
    };
  }

  private async events1(kind: DistributedKind): Promise<QueueEvents> {
    let ev = this.events.get(kind);
    if (!ev) {
      ev = new QueueEvents(kind, { connection: this.conn, prefix: PREFIX });
      ev.on('error', () => undefined);
      this.events.set(kind, ev);
      await withTimeout(ev.waitUntilReady(), 10_000, 'queue events').catch(() => undefined);
    }
    return ev;
  }

  private async runShards<T, R>(stage: StageName, fingerprint: string, kind: DistributedKind, tasks: T[], progress: (done: number, total: number) => void): Promise<Array<Distributed<R>>> {
    const runDir = this.cfg.paths.runDir;
    const size = this.o.shard?.[kind] ?? DEFAULT_SHARD[kind];
    if (!Number.isInteger(size) || size < 1) throw new GenaugError('E_ARGUMENT', `--shard-size must be a positive integer, got ${size}`);
    const attempts = this.o.attempts ?? 3;
    const dir = join(runDir, 'queue', stage);
    await mkdir(dir, { recursive: true });
    const stat = (this.stats[stage] ??= { jobs: 0, failed: 0, byWorker: {} });
    const queue = this.queues.get(kind) as Queue;
    interface Shard {
      index: number;
      id: string;
      tasks: T[];
      resultPath: string;
      outcome?: Array<Distributed<R>>;
    }
    const shards: Shard[] = [];
    for (let k = 0; k * size < tasks.length; k++) {
      const part = tasks.slice(k * size, (k + 1) * size);
      const hash = createHash('sha256').update(`${fingerprint}\0${kind}\0${k}\0`).update(encodeResult(part)).digest('hex').slice(0, 32);
      shards.push({ index: k, id: `${stage}-${hash}`, tasks: part, resultPath: join(dir, `${hash}.result.json`) });
    }
    stat.jobs += shards.length;
    let doneItems = 0;
    const take = async (s: Shard): Promise<boolean> => {
      if (s.outcome) return true;
      let file: ResultFile;
      try {
        file = decodeResult<ResultFile>(await readFile(s.resultPath, 'utf8'));
      } catch {
        return false;
      }
      if (!Array.isArray(file.results) || file.results.length !== s.tasks.length) return false;
      s.outcome = file.results.map((value) => ({ ok: true, value: value as R }));
      stat.byWorker[file.worker] = (stat.byWorker[file.worker] ?? 0) + 1;
      doneItems += s.tasks.length;
      return true;
    };
    const pending = new Map<string, Shard>();
    for (const s of shards) if (!(existsSync(s.resultPath) && (await take(s)))) pending.set(s.id, s);
    const total = tasks.length;
    progress(doneItems, total);
    if (pending.size > 0) {
      const log = this.o.log ?? (() => undefined);
      const ev = await this.events1(kind);
      const woken = new Set<string>();
      let wake: (() => void) | undefined;
      const nudge = (id: string) => {
        if (!pending.has(id)) return;
        woken.add(id);
        wake?.();
      };
      const onCompleted = ({ jobId }: { jobId: string }) => nudge(jobId);
      const onFailed = ({ jobId }: { jobId: string }) => nudge(jobId);
      ev.on('completed', onCompleted);
      ev.on('failed', onFailed);
      const enqueue = async (s: Shard) => {
        const tasksRel = join('queue', stage, `${s.id.slice(stage.length + 1)}.tasks.json`);
        if (!existsSync(join(runDir, tasksRel))) await writeFileAtomic(join(runDir, tasksRel), new TextEncoder().encode(encodeResult(s.tasks)));
        const old = await queue.getJob(s.id);
        if (old) {
          const state = await old.getState();
          // Waiting, delayed or active: the work is on its way (a resumed coordinator finds it). Finished without a
          // result file here (removed with its stage, run again with --force) or failed in an earlier run: again.
          if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
          await old.remove().catch(() => undefined);
        }
        const data: JobData = { v: 1, kind, runDir, config: this.cfg.file, tasks: tasksRel, result: relative(runDir, s.resultPath), items: s.tasks.length };
        await queue.add(kind, data, {
          jobId: s.id,
          attempts: Math.max(1, attempts),
          backoff: { type: 'exponential', delay: this.o.backoffMs ?? 1000 },
          removeOnComplete: { age: 7 * 86400, count: 1_000_000 },
          removeOnFail: { age: 30 * 86400 },
        });
      };
      try {
        for (const s of pending.values()) await withTimeout(enqueue(s), this.o.unavailableMs ?? 8000, 'enqueue').catch((e: unknown) => {
          throw this.unavailable(e);
        });
        log(`${stage}: ${shards.length} jobs (${pending.size} to do, ${shards.length - pending.size} done before), ${total} items`);
        let lastOk = Date.now();
        let lastSweep = Date.now();
        let lastLine = 0;
        let rotate = 0;
        /** One look at the jobs: those woken by an event, and every 3 s every result file and a rotating few jobs' states. */
        const look = async (): Promise<void> => {
          await (await queue.client).get(`${PREFIX}:health`);
          const sweep = Date.now() - lastSweep > 3000;
          const ids = [...pending.keys()];
          const check = new Set(woken);
          woken.clear();
          if (sweep) {
            for (const id of ids) {
              const sh = pending.get(id) as Shard;
              if (existsSync(sh.resultPath) && (await take(sh))) pending.delete(id);
            }
            for (let n = 0; n < Math.min(50, ids.length); n++) check.add(ids[(rotate + n) % ids.length] as string);
            rotate += 50;
          }
          for (const id of check) {
            const sh = pending.get(id);
            if (!sh) continue;
            if (existsSync(sh.resultPath) && (await take(sh))) {
              pending.delete(id);
              continue;
            }
            const job = await queue.getJob(id);
            if (!job) {
              // Redis lost it (restarted without persistence): enqueued again from its tasks file.
              await enqueue(sh);
              continue;
            }
            const state = await job.getState();
            if (state === 'failed') {
              const reason = `[E_QUEUE_JOB] queue job ${id} failed ${job.attemptsMade} time${job.attemptsMade === 1 ? '' : 's'}: ${this.url.scrub(job.failedReason ?? 'no reason given')}`;
              log(`${stage}: ${reason}`);
              sh.outcome = sh.tasks.map(() => ({ ok: false, reason }));
              stat.failed++;
              doneItems += sh.tasks.length;
              pending.delete(id);
            } else if (state === 'completed' && !existsSync(sh.resultPath)) {
              // Completed but its result file is not there (removed by hand): done again.
              await job.remove().catch(() => undefined);
              await enqueue(sh);
            }
          }
          if (sweep) lastSweep = Date.now();
          if (Date.now() - lastLine > 5000 && pending.size > 0) {
            lastLine = Date.now();
            const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
            log(`${stage}: queue ${kind}: waiting ${c.waiting ?? 0}, active ${c.active ?? 0}, delayed ${c.delayed ?? 0}, completed ${c.completed ?? 0}, failed ${c.failed ?? 0}; this run: ${shards.length - pending.size}/${shards.length} jobs`);
          }
        };
        while (pending.size > 0) {
          if (this.o.signal?.aborted) throw new GenaugError('E_ABORTED', `${stage} was stopped with ${pending.size} of ${shards.length} jobs unfinished (they stay queued; the same command resumes)`);
          await new Promise<void>((r) => {
            const t = setTimeout(r, 1000);
            wake = () => (clearTimeout(t), r());
            this.o.signal?.addEventListener('abort', wake, { once: true });
          });
          if (wake) this.o.signal?.removeEventListener('abort', wake);
          wake = undefined;
          // Every Redis call has a deadline: Redis away for unavailableMs fails the run typed (what the workers
          // finished is in the result files, and the same command resumes from them).
          try {
            await withTimeout(look(), 3000, 'Redis');
            lastOk = Date.now();
          } catch (e) {
            if (Date.now() - lastOk > (this.o.unavailableMs ?? 8000)) throw this.unavailable(e);
          }
          progress(doneItems, total);
        }
      } finally {
        ev.off('completed', onCompleted);
        ev.off('failed', onFailed);
      }
      progress(doneItems, total);
    }
    return shards.flatMap((s) => s.outcome as Array<Distributed<R>>);
  }

  private unavailable(e: unknown): GenaugError {
    if (e instanceof GenaugError) return e;
    return new GenaugError('E_QUEUE_UNAVAILABLE', this.url.scrub(`Redis at ${this.url.display} went away (${String((e as Error)?.message ?? e)}); the finished jobs are kept in the run folder: run the same command again when Redis is back`), { url: this.url.display });
  }

  async close(): Promise<void> {
    await this.local?.close();
    const all: Array<Promise<unknown>> = [];
    for (const q of this.queues.values()) all.push(q.close());
    for (const e of this.events.values()) all.push(e.close());
    // A Redis that is gone does not hold the exit: its connections are dropped.
    await withTimeout(Promise.allSettled(all), 3000, 'close').catch(() => {
      // Not awaited: a disconnect from a server that is gone may never settle.
      for (const q of this.queues.values()) void q.disconnect().catch(() => undefined);
      for (const e of this.events.values()) void e.disconnect().catch(() => undefined);
    });
  }
}

// --- the worker ---------------------------------------------------------------------

export interface WorkerOptions {
  url: string;
  /** Jobs at once (default 1). */
  concurrency?: number;
  /** The name in run.json's byWorker (default host:pid). */
  id?: string;
  /** Stages taken (default all). */
  stages?: readonly DistributedKind[];
  /** Job lock duration and stalled-job check interval, ms (default 30000): a killed worker's job is handed out again after about this long. */
  stallMs?: number;
  log?: (line: string) => void;
}

export interface QueueWorkers {
  id: string;
  /** Jobs finished by this process. */
  processed: () => number;
  /** Stops taking jobs; the active ones finish (force: they are handed back at once, and redelivered after the stall interval). */
  close(force?: boolean): Promise<void>;
}

const configs = new Map<string, Promise<LoadedConfig>>();
let cropCache: CropCache | undefined;

/** Runs one job's tasks with the local run's functions; writes the result file; returns the item count. */
export async function processJob(data: JobData, worker: string): Promise<{ worker: string; items: number }> {
  if (data?.v !== 1 || !(QUEUE_STAGES as readonly string[]).includes(data.kind) || typeof data.runDir !== 'string' || !isAbsolute(data.runDir)) {
    throw new GenaugError('E_FORMAT', `a queue job with data this genaug does not know (${JSON.stringify(data).slice(0, 200)})`);
  }
  const runDir = data.runDir;
  const inside = (rel: string) => {
    const p = resolve(runDir, rel);
    if (relative(runDir, p).startsWith('..') || isAbsolute(relative(runDir, p))) throw new GenaugError('E_FORMAT', `queue job names ${rel}, outside its run folder`);
    return p;
  };
  const tasksPath = inside(data.tasks);
  let text: string;
  try {
    text = await readFile(tasksPath, 'utf8');
  } catch (e) {
    throw new GenaugError('E_IO', `${tasksPath}: could not read the job's tasks (${(e as Error).message}); is the run folder on storage this machine shares, at the same path?`, { path: tasksPath });
  }
  const tasks = decodeResult<unknown[]>(text);
  let results: unknown[];
  switch (data.kind) {
    case 'annotate': {
      // As many images at once as the local run has (annotate's concurrency: decode and encode run off the event loop).
      const list = tasks as AnnotateTask[];
      const out: JournalLine[] = new Array(list.length);
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < list.length; i = next++) {
          const t = list[i] as AnnotateTask;
          const line = await annotateOne(t.file, t.category, t.options);
          if (line.outputError) throw new GenaugError('E_IO', line.outputError.message, { path: line.outputError.path });
          out[i] = line;
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(list.length, list[0]?.options.concurrency ?? 1)) }, lane));
      results = out;
      break;
    }
    case 'embed':
      results = [];
      for (const t of tasks as BatchTask[]) results.push(await embedBatch(t));
      break;
    case 'score':
      results = [];
      for (const t of tasks as ClipScoreTask[]) results.push(await clipScoreTask(t));
      break;
    case 'paste':
      results = [];
      for (const t of tasks as RenderTask[]) {
        cropCache ??= new CropCache(t.cacheBytes);
        const r = await renderItem(t, cropCache);
        if (r.outputError) throw new GenaugError('E_IO', r.outputError.message, { path: r.outputError.path });
        results.push(r);
      }
      break;
    case 'generate': {
      let cfgP = configs.get(data.config);
      if (!cfgP) {
        cfgP = loadConfig(data.config, { checkServers: false, checkModels: false });
        configs.set(data.config, cfgP);
        cfgP.catch(() => configs.delete(data.config));
      }
      const cfg = await cfgP;
      const { options } = await generateSetup(cfg);
      const items = tasks as GenerateTask[];
      const jobs = [...new Map(items.map((t) => [t.job.id, t.job])).values()];
      const journal = inside(data.result.replace(/\.result\.json$/, '.journal.jsonl'));
      // The shard's own journal: a job redelivered after a kill resumes it, never generating an image twice.
      await generate(jobs, { ...options, out: join(runDir, 'generate'), baseDir: join(runDir, 'plan'), shard: { items, journal } });
      const lines = await readJournalMap<GenerateJournalLine>(journal, 'the shard journal', (l) => `${l.job}\u0000${l.candidate}`);
      results = items.map((t) => {
        const l = lines.get(`${t.job.id}\u0000${t.candidate}`);
        if (!l) throw new GenaugError('E_INTERNAL', `generate left job ${t.job.id} candidate ${t.candidate} of the shard unfinished`);
        return l;
      });
      break;
    }
  }
  const body: ResultFile = { worker, results };
  await writeFileAtomic(inside(data.result), new TextEncoder().encode(encodeResult(body)));
  return { worker, items: tasks.length };
}

/** Starts BullMQ workers (one per stage queue) in this process; Redis is checked first (E_QUEUE_UNAVAILABLE). */
export async function startWorkers(o: WorkerOptions): Promise<QueueWorkers> {
  const url = parseQueueUrl(o.url);
  await checkRedis(url);
  const id = o.id ?? `${hostname()}:${process.pid}`;
  const stages = o.stages ?? QUEUE_STAGES;
  const concurrency = o.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new GenaugError('E_ARGUMENT', `--concurrency must be a positive integer, got ${concurrency}`);
  const stallMs = o.stallMs ?? 30_000;
  if (!Number.isFinite(stallMs) || stallMs < 200) throw new GenaugError('E_ARGUMENT', `the stall interval must be >= 200 ms, got ${stallMs}`);
  const log = o.log ?? (() => undefined);
  let processed = 0;
  let active = 0;
  let lastError = 0;
  const workers = stages.map((kind) => {
    const w = new Worker(kind, async (job: Job) => {
      log(`worker ${id}: ${kind} job ${job.id} (${(job.data as JobData)?.items ?? '?'} items)${job.attemptsMade ? `, attempt ${job.attemptsMade + 1}` : ''}`);
      active++;
      try {
        return await processJob(job.data as JobData, id);
      } finally {
        active--;
      }
    }, {
      connection: connectionOptions(url),
      prefix: PREFIX,
      concurrency,
      lockDuration: stallMs,
      stalledInterval: stallMs,
      maxStalledCount: 3,
    });
    w.on('completed', () => processed++);
    w.on('failed', (job, err) => log(url.scrub(`worker ${id}: ${kind} job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err instanceof GenaugError ? `[${err.code}] ` : ''}${err?.message ?? err}`)));
    w.on('error', (err) => {
      // Redis away: BullMQ reconnects by itself; said once every 10 s, password scrubbed.
      if (Date.now() - lastError > 10_000) {
        lastError = Date.now();
        log(url.scrub(`worker ${id}: queue ${kind}: ${err?.message ?? err} (retrying)`));
      }
    });
    return w;
  });
  await Promise.all(workers.map((w) => withTimeout(w.waitUntilReady(), 10_000, 'worker').catch(() => undefined)));
  return {
    id,
    processed: () => processed,
    close: async (force = false) => {
      const closing = Promise.allSettled(workers.map((w) => w.close(force)));
      // The active jobs finish (force: handed back); then a Redis that is gone does not hold the exit.
      while (!force && active > 0) await new Promise((r) => setTimeout(r, 100));
      await withTimeout(closing, 3000, 'close').catch(() => {
        for (const w of workers) void w.disconnect().catch(() => undefined);
      });
    },
  };
}

// --- status -------------------------------------------------------------------------

export type QueueCounts = Record<DistributedKind, { waiting: number; active: number; delayed: number; completed: number; failed: number }>;

/** Waiting / active / delayed / completed / failed jobs per stage queue. */
export async function queueStatus(urlText: string): Promise<{ url: string; stages: QueueCounts; workers: Record<DistributedKind, number> }> {
  const url = parseQueueUrl(urlText);
  await checkRedis(url);
  const stages = {} as QueueCounts;
  const workers = {} as Record<DistributedKind, number>;
  for (const kind of QUEUE_STAGES) {
    const q = new Queue(kind, { connection: connectionOptions(url), prefix: PREFIX });
    q.on('error', () => undefined);
    try {
      const c = await withTimeout(q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed'), 10_000, 'status');
      stages[kind] = { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
      workers[kind] = (await withTimeout(q.getWorkersCount(), 10_000, 'status')) ?? 0;
    } catch (e) {
      throw new GenaugError('E_QUEUE_UNAVAILABLE', url.scrub(`Redis at ${url.display}: ${(e as Error).message}`));
    } finally {
      await q.close().catch(() => undefined);
    }
  }
  return { url: url.display, stages, workers };
}

