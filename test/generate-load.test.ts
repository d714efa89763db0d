/**
 * `genaug generate` under load against a hostile server (test/load-server.mjs):
 * slow answers, hung requests, connections dropped before and in the middle of
 * a response, 500/502/503, and 429 with Retry-After in both forms, all on a
 * seeded schedule. What the server saw is the oracle: requests in flight never
 * above the configured concurrency, no request to the server while a
 * Retry-After holds, the retry of an item no earlier than its backoff; and on
 * disk every image exactly once, equal to the image the server gave for that
 * job, the items that kept failing in failed.jsonl with the server's reason.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { backoffDelay, generate } from '../ts/generate/runner.js';
import { ChatClient } from '../ts/llm/chat.js';
import { parseRetryAfter } from '../ts/generate/http.js';
import type { PlanJob } from '../ts/plan/job.js';
import { tempFolder } from './helpers.js';
import { FAULTS, hostileServer, pngFor, type HostileServer, type ServerEvent } from './load-server.mjs';

const tmp = tempFolder('genaug-load-');
const bin = join(__dirname, '..', 'bin', 'genaug.js');
const servers: HostileServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const job = (i: number): PlanJob =>
  ({
    id: `j${i}`,
    kind: 'txt2img',
    classes: [i % 3 ? 'cup' : 'dog'],
    prompt: `load job ${i}`,
    negative_prompt: '',
    candidates: 1,
    width: 8,
    height: 8,
    seed: 1000 + i,
  }) as PlanJob;

const jsonl = async (p: string) =>
  (await readFile(p, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

describe('Retry-After and backoff', () => {
  it('reads Retry-After as delay-seconds or as an HTTP-date; anything else is ignored', () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 250);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter(new Date(now + 30_750).toUTCString(), now)).toBe(30_750); // whole seconds: 03:04:36 GMT
    expect(parseRetryAfter('Fri, 02 Jan 2026 03:04:00 GMT', now)).toBe(0); // in the past
    for (const bad of [null, undefined, '', '-5', 'soon', '1e3', '12abc']) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });

  it('backs off exponentially with equal jitter: within [cap/2, cap], cap = min(max, base * 2^(attempt-1))', () => {
    const base = 100;
    const max = 1000;
    for (let attempt = 1; attempt <= 8; attempt++) {
      const cap = Math.min(max, base * 2 ** (attempt - 1));
      expect(backoffDelay(attempt, base, max, () => 0)).toBe(cap / 2);
      expect(backoffDelay(attempt, base, max, () => 0.999999)).toBeCloseTo(cap, 3);
      expect(backoffDelay(attempt, base, max, () => 0.5)).toBe(0.75 * cap);
    }
    // Never above the maximum, whatever the attempt (2^1000 overflows to Infinity, still capped).
    expect(backoffDelay(1000, base, max, () => 0.999999)).toBeLessThanOrEqual(max);
    // With Math.random the waits of one attempt spread over the band (lanes that failed together do not retry together).
    const d = Array.from({ length: 200 }, () => backoffDelay(3, base, max));
    expect(Math.min(...d)).toBeGreaterThanOrEqual(200);
    expect(Math.max(...d)).toBeLessThanOrEqual(400);
    expect(new Set(d).size).toBeGreaterThan(150);
    expect(Math.max(...d) - Math.min(...d)).toBeGreaterThan(100);
  });

  it('a Retry-After longer than maxRetryAfterMs fails the item as retryable at once instead of holding the batch', async () => {
    const server = await hostileServer({ seed: 3, faults: { '429s': 1 }, maxFaults: 100, retryAfterS: 3600 });
    servers.push(server);
    const out = tmp.fresh('long-retry-after');
    const r = await generate([job(1)], { out, backends: [{ type: 'a1111', url: server.url }], retries: 5, backoffMs: 1 });
    expect(r).toMatchObject({ ok: 0, failed: 1 });
    expect(server.stats.requests).toBe(1);
    const [f] = await jsonl(join(out, 'failed.jsonl'));
    expect(f).toMatchObject({ job: 'j1', retryable: true, attempts: 1, error: { status: 429 } });
    expect(f.error.message).toMatch(/asks to wait 3600 s, more than the 600 s allowed/);
  });
});

describe('the chat client (plan, judge) under 429/503', () => {
  it('waits out Retry-After in both forms before asking again; a wait beyond maxRetryAfterMs fails at once', async () => {
    // Answers: 429 "Retry-After: 1", then 503 with an HTTP-date, then the answer. Arrival times are the oracle.
    const arrivals: number[] = [];
    const answered: Array<{ t: number; until: number }> = [];
    let mode: 'schedule' | 'long' = 'schedule';
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const t = performance.timeOrigin + performance.now();
        arrivals.push(t);
        const n = arrivals.length;
        if (mode === 'long') {
          res.writeHead(429, { 'retry-after': '3600' });
          return void res.end('{"error": {"message": "slow down"}}');
        }
        if (n === 1) {
          answered.push({ t, until: t + 1000 });
          res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
          return void res.end('{"error": {"message": "rate limited"}}');
        }
        if (n === 2) {
          const until = Math.ceil((t + 1000) / 1000) * 1000;
          answered.push({ t, until });
          res.writeHead(503, { 'retry-after': new Date(until).toUTCString() });
          return void res.end('overloaded');
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ model: 'm', choices: [{ message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const c = new ChatClient({ baseUrl: url, model: 'm', apiKey: 'k', retries: 3, backoffMs: 1 });
      const r = await c.complete([{ role: 'user', content: 'hi' }]);
      expect(r).toMatchObject({ text: 'fine', attempts: 3 });
      expect(arrivals[1]!).toBeGreaterThanOrEqual(answered[0]!.until - 20);
      expect(arrivals[2]!).toBeGreaterThanOrEqual(answered[1]!.until - 20);
      mode = 'long';
      arrivals.length = 0;
      await expect(c.complete([{ role: 'user', content: 'hi' }])).rejects.toThrow(/HTTP 429.*asks to wait 3600 s, more than the 300 s allowed/);
      expect(arrivals).toHaveLength(1);
    } finally {
      server.close();
    }
  });
});

describe('genaug generate against a hostile server', () => {
  const N = 200;
  const CONCURRENCY = 4;
  const RETRIES = 6;
  const BACKOFF_MS = 50;
  const DOOMED = [1017, 1101, 1150, 1199];
  // Long enough that a loaded machine does not time out a request before it is even sent (hung requests cost this).
  const TIMEOUT_S = 2;
  const faults = { slow: 0.06, hang: 0.012, drop: 0.06, cut: 0.06, '500': 0.05, '502': 0.04, '503': 0.04, '429s': 0.008, '429d': 0.008 };

  it(`${N} jobs, concurrency ${CONCURRENCY}: bounded, Retry-After and backoff honoured, every image once, failures recorded`, async () => {
    const server = await hostileServer({ seed: 7, delayMs: 10, slowMs: 200, faults, maxFaults: 3, retryAfterS: 1, retryAfterDateMs: 1000, doomed: DOOMED });
    servers.push(server);
    const dir = tmp.fresh('hostile');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    const plan = join(dir, 'plan.jsonl');
    const jobs = Array.from({ length: N }, (_, i) => job(i));
    await writeFile(plan, jobs.map((j) => JSON.stringify(j)).join('\n') + '\n');
    const out = join(dir, 'out');
    const args = ['generate', '--plan', plan, '--out', out, '--backend', `a1111=${server.url}`, '--concurrency', String(CONCURRENCY), '--retries', String(RETRIES), '--backoff', String(BACKOFF_MS / 1000), '--timeout', String(TIMEOUT_S), '-q'];
    const r = await cli(args);
    expect(r.stderr).toContain(`${DOOMED.length} failed items`);
    expect(r.code).toBe(0);

    // The schedule really was hostile: every kind of fault happened.
    for (const f of FAULTS) expect(server.stats.faults[f], f).toBeGreaterThan(0);

    // Bounded concurrency, and the bound was reached.
    expect(server.stats.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
    expect(server.stats.maxInFlight).toBeGreaterThanOrEqual(2);

    const arrivals = server.events.filter((e) => e.type === 'arrive');
    const byJob = new Map<number, { arrive: ServerEvent[]; end: ServerEvent[] }>();
    for (const e of server.events) {
      const g = byJob.get(e.job as number) ?? { arrive: [], end: [] };
      g[e.type].push(e);
      byJob.set(e.job as number, g);
    }
    const at = (job: number, attempt: number, type: 'arrive' | 'end') => byJob.get(job)?.[type].find((e) => e.attempt === attempt);

    // Retry-After: the item that got it is not sent again before the time named, and no other request reaches the
    // server in that time either (requests already on their way when the 429 went out are allowed a short grace).
    const TOL = 20;
    const GRACE = 400;
    expect(server.retryAfters.length).toBeGreaterThanOrEqual(2);
    expect(new Set(server.retryAfters.map((x) => x.form))).toEqual(new Set(['s', 'date']));
    for (const ra of server.retryAfters) {
      const next = at(ra.job, ra.attempt + 1, 'arrive');
      expect(next, `job ${ra.job} retried after its 429`).toBeDefined();
      expect(next!.t, `job ${ra.job}: Retry-After ${ra.header}`).toBeGreaterThanOrEqual(ra.until - TOL);
      const early = arrivals.filter((e) => e.t > ra.t + GRACE && e.t < ra.until - TOL);
      expect(early.map((e) => `job ${e.job} attempt ${e.attempt} at +${Math.round(e.t - ra.t)} ms`), `Retry-After ${ra.header} at job ${ra.job}`).toEqual([]);
    }

    // Backoff: the retry of an item arrives no earlier than the lower edge of its jittered wait after the failure
    // (requests the client gave up on aside: the server does not see when it did).
    let checked = 0;
    for (const [jobSeed, g] of byJob) {
      for (const end of g.end) {
        const a = end.attempt as number;
        const next = at(jobSeed, a + 1, 'arrive');
        if (!next || end.byClient || end.action === '429s' || end.action === '429d') continue;
        const lower = backoffDelay(a, BACKOFF_MS, 60_000, () => 0);
        expect(next.t - end.t, `job ${jobSeed} attempt ${a + 1} after ${end.action}`).toBeGreaterThanOrEqual(lower - TOL / 4);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
    // The doomed items were tried exactly 1 + retries times, each wait at least the growing lower edge.
    for (const d of DOOMED) expect(server.attempts.get(d)).toBe(RETRIES + 1);

    // On disk: every job exactly once, each file the image the server gave for it.
    const journal = await jsonl(join(out, 'journal.jsonl'));
    expect(journal.map((l) => l.job).sort()).toEqual(jobs.map((j) => j.id).sort());
    const manifest = await jsonl(join(out, 'manifest.jsonl'));
    const okJobs = jobs.filter((j) => !DOOMED.includes(j.seed));
    expect(manifest.map((m) => m.job)).toEqual(okJobs.map((j) => j.id)); // plan order, each once
    expect(new Set(manifest.map((m) => m.file)).size).toBe(okJobs.length);
    const names = (await readdir(join(out, 'images'))).sort();
    expect(names.filter((n) => n.endsWith('.png'))).toHaveLength(okJobs.length);
    expect(names.filter((n) => n.endsWith('.json'))).toHaveLength(okJobs.length);
    expect(names).toHaveLength(2 * okJobs.length); // no temporary files left
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const m of manifest) {
      const j = byId.get(m.job)!;
      expect((await readFile(join(out, 'images', m.file))).equals(pngFor(j.seed, j.prompt, 8, 8)), m.job).toBe(true);
    }

    // The items that kept failing: in failed.jsonl with the server's reason; the batch went on.
    const failed = await jsonl(join(out, 'failed.jsonl'));
    expect(failed.map((f) => f.seed).sort()).toEqual(DOOMED);
    for (const f of failed) {
      expect(f).toMatchObject({ status: 'failed', attempts: RETRIES + 1, retryable: true, error: { code: 'E_BACKEND', status: 500 } });
      expect(f.error.message).toContain(`model crashed on job ${f.seed}`);
    }

    // A rerun sends only the failed items again (still failing) and doubles nothing.
    const before = server.stats.requests;
    const manifestBytes = await readFile(join(out, 'manifest.jsonl'));
    const again = await cli([...args.slice(0, args.indexOf('--retries')), '--retries', '0', '--timeout', String(TIMEOUT_S), '-q']);
    expect(again.code).toBe(0);
    expect(server.stats.requests - before).toBe(DOOMED.length);
    expect((await readFile(join(out, 'manifest.jsonl'))).equals(manifestBytes)).toBe(true);
    expect(await readdir(join(out, 'images'))).toHaveLength(2 * okJobs.length);
  });
});
