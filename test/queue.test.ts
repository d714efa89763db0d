/**
 * Scale-out on BullMQ + a real redis-server (issue 13), through the built CLI:
 * a queued demo gives the local demo's bytes with one and with two worker
 * processes, when a worker is killed with SIGKILL in the middle of a job, when
 * the coordinator is killed and started again, and after Redis went away in
 * the middle of a run; a refused password is E_QUEUE_UNAVAILABLE, fast, and
 * the password is written nowhere. Each test starts its own redis-server on a
 * free loopback port (no persistence, a random password) and stops it after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import sharp from 'sharp';

import { clipScoreInstances } from '../ts/curate/score.js';
import { checkRedis, decodeResult, encodeResult, parseQueueUrl, processJob } from '../ts/pipeline/queue.js';
import { tinyClipWeights, writeClipFolder } from './clip-helpers.js';
import { tempFolder } from './helpers.js';

const bin = resolve('bin/genaug.js');
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
const IMAGES = 4;
const tmp = tempFolder('genaug-queue-');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface Redis {
  url: string;
  password: string;
  port: number;
  proc: ChildProcess;
  stop: () => Promise<void>;
}

/** A redis-server of this test alone: loopback, a free port, no persistence, a random password. */
async function startRedis(port?: number, password = randomBytes(12).toString('hex')): Promise<Redis> {
  const p = port ?? (await freePort());
  const proc = spawn(REDIS as string, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await checkRedis(parseQueueUrl(`redis://:${password}@127.0.0.1:${p}`), 2000);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${p}: ${(e as Error).message}`);
      await new Promise((s) => setTimeout(s, 100));
    }
  }
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((s) => proc.once('exit', s));
    proc.kill('SIGKILL');
    await gone;
  };
  return { url: `redis://:${password}@127.0.0.1:${p}`, password, port: p, proc, stop };
}

interface Cli {
  proc: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

function cli(args: string[]): Cli {
  const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((s) => proc.on('exit', (code) => s(code)));
  return { proc, out: () => out, done };
}

/** Workers stopped with SIGTERM at the end of each test (they finish their job, then exit 0). */
const running: Cli[] = [];
function worker(r: Redis, id: string, extra: string[] = []): Cli {
  const w = cli(['worker', '--queue', r.url, '--id', id, '--stall-interval', '1000', ...extra]);
  running.push(w);
  return w;
}
async function stopWorkers(): Promise<void> {
  const codes: Array<[string, number | null]> = [];
  for (const w of running.splice(0)) {
    const killed = w.proc.signalCode === 'SIGKILL';
    if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
    // It exits 0 on its own, Redis there or not; a hang fails the test, it does not hold the suite.
    const t = setTimeout(() => w.proc.kill('SIGKILL'), 20_000);
    const code = await w.done;
    clearTimeout(t);
    if (!killed) codes.push([w.out(), code]);
  }
  for (const [out, code] of codes) expect(code, out).toBe(0);
}

async function waitFor(what: string, cond: () => boolean, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((s) => setTimeout(s, 50));
  }
}

/** The run folder's outputs: every file but run.json, the report, journals and the queue's own files. */
async function outputs(demo: string): Promise<Map<string, Buffer>> {
  const root = join(demo, 'run');
  const out = new Map<string, Buffer>();
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (r !== 'report' && r !== 'queue') await walk(join(d, e.name), r);
      } else if (r !== 'run.json' && !['journal.jsonl', 'progress.jsonl'].includes(e.name)) out.set(r, await readFile(join(d, e.name)));
    }
  };
  await walk(root, '');
  return out;
}

function expectSame(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  const differ = [...a].filter(([k, v]) => Buffer.compare(v, b.get(k) as Buffer) !== 0).map(([k]) => k);
  expect(differ).toEqual([]);
}

/** No file under `dir` holds the password. */
async function expectNoPassword(dir: string, password: string): Promise<void> {
  const hits: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((await readFile(p)).includes(password)) hits.push(p);
    }
  };
  await walk(dir);
  expect(hits).toEqual([]);
}

const demoArgs = (out: string) => ['demo', '--out', out, '--images', String(IMAGES), '--seed', '5'];

let local: Map<string, Buffer>;

beforeAll(async () => {
  if (!REDIS) throw new Error('test/queue.test.ts needs redis-server (apt-get install redis-server; .ci/run installs it)');
  const out = join(tmp.dir(), 'local');
  const c = cli(demoArgs(out));
  expect(await c.done, c.out()).toBe(0);
  local = await outputs(out);
  expect(local.size).toBeGreaterThan(100);
}, 120_000);

afterAll(stopWorkers);

describe('queue plumbing', () => {
  it('--queue URLs: the password is in no display form and is scrubbed from any text', () => {
    const q = parseQueueUrl('redis://:p%40ss-w0rd@10.1.2.3:6380/4');
    expect(q).toMatchObject({ host: '10.1.2.3', port: 6380, db: 4, password: 'p@ss-w0rd', display: 'redis://***@10.1.2.3:6380/4' });
    expect(q.scrub('AUTH p@ss-w0rd failed for redis://:p%40ss-w0rd@10.1.2.3:6380/4')).toBe('AUTH *** failed for redis://***@10.1.2.3:6380/4');
    expect(parseQueueUrl('redis://h', { GENAUG_QUEUE_PASSWORD: 'from-env-123' })).toMatchObject({ port: 6379, db: 0, password: 'from-env-123', display: 'redis://***@h:6379/0' });
    for (const bad of ['http://h:1', 'redis://h:1/x', 'not a url']) expect(() => parseQueueUrl(bad)).toThrow(/--queue/);
  });

  it('job results keep typed arrays bit for bit (embedding rows travel as results)', () => {
    const rows = new Float32Array([0.1, -1e-38, Math.PI, NaN, -0]);
    const back = decodeResult<{ rows: Float32Array; mask: Uint8Array }>(encodeResult({ rows, mask: new Uint8Array([0, 255, 7]) }));
    expect(Buffer.from(back.rows.buffer).equals(Buffer.from(rows.buffer))).toBe(true);
    expect([...back.mask]).toEqual([0, 255, 7]);
  });
});

describe('queue jobs', () => {
  it("score's CLIP-score jobs give the local run's numbers bit for bit, batch for batch (processed as a worker does)", async () => {
    const dir = tmp.fresh('clip');
    mkdirSync(join(dir, 'run', 'queue', 'score'), { recursive: true });
    const model = await writeClipFolder(join(dir, 'clip'), 'split', tinyClipWeights());
    const files: string[] = [];
    const names: string[] = [];
    for (let i = 0; i < 7; i++) {
      const w = 6 + (i % 3) * 5;
      const h = 9 + (i % 2) * 4;
      const px = new Uint8Array(w * h * 4);
      for (let k = 0; k < px.length; k++) px[k] = k % 4 === 3 ? (k % 7 ? 255 : 0) : (k * 37 + i * 11) % 256;
      files.push(join(dir, `i${i}.png`));
      names.push(i % 2 ? 'dog' : 'cat');
      writeFileSync(files[i] as string, await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer());
    }
    // The local run: one call over every instance, batches of 3.
    const { ClipModel } = await import('../ts/models/clip.js');
    const clip = await ClipModel.open(model, { batchSize: 3, require: 'both' });
    const local = await clipScoreInstances(clip, files, names, 'a photo of {}', 3);
    await clip.close();
    // The queue: two jobs (batches [0, 3), [3, 6) and [6, 7)), each run by processJob from its tasks file.
    const tasks = [0, 3, 6].map((i) => ({ clip: model, provider: 'cpu' as const, batch: 3, template: 'a photo of {}', files: files.slice(i, i + 3), names: names.slice(i, i + 3) }));
    const parts: Float32Array[] = [];
    for (const [n, part] of [tasks.slice(0, 2), tasks.slice(2)].entries()) {
      writeFileSync(join(dir, 'run', 'queue', 'score', `j${n}.tasks.json`), encodeResult(part));
      expect(await processJob({ v: 1, kind: 'score', runDir: join(dir, 'run'), config: join(dir, 'none.yaml'), tasks: `queue/score/j${n}.tasks.json`, result: `queue/score/j${n}.result.json`, items: part.length }, 'here')).toEqual({ worker: 'here', items: part.length });
      const r = decodeResult<{ worker: string; results: Float32Array[] }>(await readFile(join(dir, 'run', 'queue', 'score', `j${n}.result.json`), 'utf8'));
      parts.push(...r.results);
    }
    const queued = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (queued.set(p, at), at + p.length), 0);
    expect(Buffer.from(queued.buffer).equals(Buffer.from(local.buffer))).toBe(true);
    // A job naming a file outside its run folder is refused.
    await expect(processJob({ v: 1, kind: 'score', runDir: join(dir, 'run'), config: '', tasks: '../i0.png', result: 'x', items: 1 }, 'here')).rejects.toMatchObject({ code: 'E_FORMAT' });
  }, 60_000);
});

describe('genaug run --queue (BullMQ on redis-server)', () => {
  it('one worker process: the local demo\'s bytes; run.json counts the jobs, by worker, with the URL redacted', async () => {
    const r = await startRedis();
    try {
      worker(r, 'solo');
      const out = tmp.fresh('one');
      const c = cli([...demoArgs(out), '--queue', r.url]);
      expect(await c.done, c.out()).toBe(0);
      expectSame(local, await outputs(out));
      const m = JSON.parse(await readFile(join(out, 'run', 'run.json'), 'utf8')) as { queue: { url: string; stages: Record<string, { jobs: number; failed: number; byWorker: Record<string, number> }> } };
      expect(m.queue.url).toBe(`redis://***@127.0.0.1:${r.port}/0`);
      expect(Object.keys(m.queue.stages).sort()).toEqual(['annotate', 'embed', 'generate', 'paste']);
      for (const s of Object.values(m.queue.stages)) {
        expect(s.failed).toBe(0);
        expect(s.byWorker).toEqual({ solo: s.jobs });
      }
      // genaug queue status counts the same jobs as completed.
      const st = spawnSync(process.execPath, [bin, 'queue', 'status', '--queue', r.url, '--json'], { encoding: 'utf8' });
      expect(st.status, st.stderr).toBe(0);
      const status = JSON.parse(st.stdout) as { url: string; stages: Record<string, { completed: number; failed: number; waiting: number }> };
      for (const [k, s] of Object.entries(m.queue.stages)) expect(status.stages[k]).toMatchObject({ completed: s.jobs, failed: 0, waiting: 0 });
      expect(st.stdout).not.toContain(r.password);
      expect(c.out()).not.toContain(r.password);
      await expectNoPassword(out, r.password);
      // The queue's tasks and results are removed with each finished stage.
      expect(existsSync(join(out, 'run', 'queue'))).toBe(false);
    } finally {
      await stopWorkers().finally(r.stop);
    }
  }, 120_000);

  it('two workers, one killed with SIGKILL in the middle of a job: the job is handed to the other, the bytes are the same', async () => {
    const r = await startRedis();
    try {
      const a = worker(r, 'a');
      worker(r, 'b');
      const out = tmp.fresh('kill');
      const c = cli([...demoArgs(out), '--queue', r.url]);
      // Killed right after it starts an annotate job: that job is in hand, unfinished.
      await waitFor('worker a to start an annotate job', () => /annotate job/.test(a.out()));
      a.proc.kill('SIGKILL');
      expect(await c.done, c.out()).toBe(0);
      expectSame(local, await outputs(out));
      const m = JSON.parse(await readFile(join(out, 'run', 'run.json'), 'utf8')) as { queue: { stages: Record<string, { jobs: number; failed: number; byWorker: Record<string, number> }> } };
      // Both worked; b finished every annotate job a held or never took, and nothing failed.
      expect(m.queue.stages.generate?.byWorker.a).toBeGreaterThan(0);
      expect(m.queue.stages.generate?.byWorker.b).toBeGreaterThan(0);
      for (const s of Object.values(m.queue.stages)) expect(s.failed).toBe(0);
      expect(m.queue.stages.paste?.byWorker).toEqual({ b: m.queue.stages.paste?.jobs });
    } finally {
      await stopWorkers().finally(r.stop);
    }
  }, 150_000);

  it('a job that fails every attempt: each of its images is recorded as failed with the reason, and the run goes on', async () => {
    const r = await startRedis();
    try {
      const out = tmp.fresh('failing');
      worker(r, 'gen', ['--stages', 'generate']);
      const c = cli([...demoArgs(out), '--queue', r.url, '--attempts', '1']);
      // The annotate jobs are queued with no worker to take them yet: one job's tasks file is damaged.
      const q = join(out, 'run', 'queue', 'annotate');
      const tasksFiles = () => (existsSync(q) ? readdirSync(q).filter((f) => f.endsWith('.tasks.json')) : []);
      await waitFor('the annotate jobs', () => /annotate: 4 jobs/.test(c.out()) && tasksFiles().length === 4);
      const damaged = tasksFiles().sort()[0] as string;
      writeFileSync(join(q, damaged), '{"not": "tasks"');
      worker(r, 'rest');
      expect(await c.done, c.out()).toBe(0);
      const rejected = (await readFile(join(out, 'run', 'annotate', 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { status: string; reason: string });
      const lost = rejected.filter((l) => l.status === 'failed' && /^\[E_QUEUE_JOB\] queue job annotate-[0-9a-f]+ failed 1 time: /.test(l.reason));
      // One shard: 64 images (48 for the last one), all recorded, none silently dropped.
      expect([48, 64]).toContain(lost.length);
      const m = JSON.parse(await readFile(join(out, 'run', 'run.json'), 'utf8')) as { stages: Record<string, { status: string }>; queue: { stages: Record<string, { failed: number }> } };
      expect(m.queue.stages.annotate?.failed).toBe(1);
      expect(m.stages.report?.status).toBe('done');
    } finally {
      await stopWorkers().finally(r.stop);
    }
  }, 150_000);

  it('the coordinator killed with SIGKILL and started again with the same command finishes with the same bytes', async () => {
    const r = await startRedis();
    try {
      const out = tmp.fresh('resume');
      // No separate worker: the coordinator works too (--local-workers).
      const args = [...demoArgs(out), '--queue', r.url, '--local-workers', '1', '--stall-interval', '1000'];
      const first = cli(args);
      await waitFor('the annotate stage', () => /annotate: \d+ jobs/.test(first.out()));
      first.proc.kill('SIGKILL');
      await first.done;
      const again = cli(args);
      expect(await again.done, again.out()).toBe(0);
      // Generate was done and is not run again; annotate picks up the jobs already finished.
      expect(again.out()).toMatch(/generate: up to date, skipped/);
      expectSame(local, await outputs(out));
    } finally {
      await r.stop();
    }
  }, 150_000);

  it('Redis stopped in the middle of a run: E_QUEUE_UNAVAILABLE within seconds; rerun with Redis back: the same bytes', async () => {
    const r = await startRedis();
    let back: Redis | undefined;
    try {
      const w = worker(r, 'steady');
      const out = tmp.fresh('redis-gone');
      const args = [...demoArgs(out), '--queue', r.url];
      const c = cli(args);
      await waitFor('the annotate stage', () => /annotate: \d+ jobs/.test(c.out()));
      await r.stop();
      const t0 = Date.now();
      const code = await c.done;
      expect(code, c.out()).toBe(1);
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(c.out()).toMatch(/genaug: error \[E_QUEUE_UNAVAILABLE\]/);
      expect(c.out()).not.toContain(r.password);
      // The same server back (empty: no persistence); the worker reconnects by itself.
      back = await startRedis(r.port, r.password);
      const again = cli(args);
      expect(await again.done, again.out()).toBe(0);
      expectSame(local, await outputs(out));
      expect(w.out()).not.toContain(r.password);
      await expectNoPassword(out, r.password);
    } finally {
      await stopWorkers().finally(async () => {
        await back?.stop();
        await r.stop();
      });
    }
  }, 150_000);

  it('a wrong password or no server: E_QUEUE_UNAVAILABLE, exit 1, within 15 s, the password in no message', async () => {
    const r = await startRedis();
    try {
      const wrong = `redis://:not-${r.password}@127.0.0.1:${r.port}`;
      const demo = tmp.fresh('wrong');
      for (const args of [
        [...demoArgs(demo), '--queue', wrong],
        ['worker', '--queue', `redis://:${r.password}@127.0.0.1:${await freePort()}`],
      ]) {
        const t0 = Date.now();
        const c = cli(args);
        expect(await c.done, c.out()).toBe(1);
        expect(Date.now() - t0).toBeLessThan(15_000);
        expect(c.out()).toMatch(/^genaug: error \[E_QUEUE_UNAVAILABLE\]: Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+\/0: (the password was refused|could not connect)/m);
        expect(c.out()).not.toContain(r.password);
      }
      // Refused before anything was written.
      expect(existsSync(demo)).toBe(false);
      // The library's own check: a refused password, and a port where nothing listens.
      await expect(checkRedis(parseQueueUrl(wrong))).rejects.toMatchObject({ code: 'E_QUEUE_UNAVAILABLE' });
      await expect(checkRedis(parseQueueUrl(`redis://127.0.0.1:${r.port}`))).rejects.toThrow(/NOAUTH/);
    } finally {
      await r.stop();
    }
  }, 90_000);
});
