#!/usr/bin/env node
/**
 * `npm run load [-- --jobs N --concurrency C --size PX --margin-mb M]`:
 * memory of `generate` with many queued jobs (issue 21, load).
 *
 * 1. The library (dist/) runs N jobs (default 10,000) against the hostile
 *    server of test/load-server.mjs, run in a child process so that its own
 *    memory is not counted (drops, cut responses, 500/503 and 429s on a seeded
 *    schedule; no hung requests, to keep it fast). Memory is sampled after a
 *    full GC every 500 finished items: the V8 heap plus `external` (Buffers
 *    live outside the heap: a runner keeping every image would not show in
 *    heapUsed alone).
 * 2. The CLI (`genaug generate`, the same plan, a fresh folder) runs as a
 *    child with its V8 heap capped (--max-old-space-size, default 64 MB, so
 *    that the collector does not let garbage pile up): it must finish, and
 *    its RSS, read from /proc every 100 ms against the journal's line count,
 *    must stay within 2 x margin of its value at 1,000 items.
 *
 * Asserts: every job's image once on disk (manifest lines unique, files =
 * jobs); heap + external after N ≤ the same after 1,000 + margin (default
 * 16 MB); the CLI as above. Images are 32 × 32 (about 3 KB) so a runner that
 * kept each response would grow by tens of MB and fail both.
 * Prints a table and a JSON summary; exits 1 when a check fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (typeof globalThis.gc !== 'function') {
  // Heap figures need a full collection before each sample.
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`load: --${name} needs a positive number`);
    process.exit(2);
  }
  return v;
}

async function main() {
  const N = arg('jobs', 10_000);
  const concurrency = arg('concurrency', 8);
  const size = arg('size', 32);
  const marginMb = arg('margin-mb', 16);
  const heapCapMb = arg('cli-heap-mb', 64);
  const keep = process.argv.includes('--keep');
  if (N < 2000) {
    console.error('load: --jobs must be at least 2000 (the heap is compared after 1,000 and after N)');
    process.exit(2);
  }
  const dist = join(root, 'dist', 'index.js');
  if (!existsSync(dist)) {
    console.error('load: dist/ is missing; run npm run build:ts first');
    process.exit(2);
  }
  const { generate } = await import(dist);
  const dir = await mkdtemp(join(tmpdir(), 'genaug-load-'));
  const server = await startServer({
    seed: 1,
    record: false,
    faults: { drop: 0.01, cut: 0.01, 500: 0.01, 503: 0.01, '429s': 0.002 },
    retryAfterS: 0.05,
    maxFaults: 2,
  });
  const failures = [];
  const check = (ok, what) => {
    if (!ok) failures.push(what);
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  };
  try {
    const plan = join(dir, 'plan.jsonl');
    const lines = [];
    for (let i = 0; i < N; i++) {
      lines.push(JSON.stringify({ id: `j${i}`, kind: 'txt2img', classes: [i % 2 ? 'cup' : 'dog'], prompt: `load job ${i}`, negative_prompt: '', candidates: 1, width: size, height: size, seed: 10 + i }));
    }
    await writeFile(plan, lines.join('\n') + '\n');
    lines.length = 0;

    // 1. The library, heap sampled after a full GC.
    const samples = [];
    const sample = (done) => {
      globalThis.gc();
      globalThis.gc();
      const m = process.memoryUsage();
      // arrayBuffers is part of external.
      samples.push({ done, heapMb: m.heapUsed / 2 ** 20, rssMb: m.rss / 2 ** 20, externalMb: m.external / 2 ** 20, memMb: (m.heapUsed + m.external) / 2 ** 20 });
    };
    sample(0);
    const t0 = Date.now();
    const out = join(dir, 'lib');
    const summary = await generate(plan, {
      out,
      backends: [{ type: 'a1111', url: server.url, concurrency, timeoutMs: 30_000 }],
      retries: 4,
      backoffMs: 5,
      maxBackoffMs: 50,
      onProgress: (p) => {
        if (p.done > 0 && p.done % 500 === 0) sample(p.done);
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    sample(N + 0.5); // after the manifest was written
    const at = (d) => samples.find((s) => s.done === d);
    const s1k = at(1000);
    const sN = at(N);
    console.log(`\nlibrary: ${N} jobs, concurrency ${concurrency}, ${size}x${size} PNG, ${seconds.toFixed(1)} s (${(N / seconds).toFixed(0)} items/s)`);
    console.log(`server: ${JSON.stringify(await server.stats())}`);
    console.log('  done   heap MB   external MB   heap+external MB   rss MB');
    for (const s of samples) console.log(`${String(Math.floor(s.done)).padStart(6)}   ${s.heapMb.toFixed(1).padStart(7)}   ${s.externalMb.toFixed(1).padStart(11)}   ${s.memMb.toFixed(1).padStart(16)}   ${s.rssMb.toFixed(1).padStart(6)}`);
    check(summary.ok === N && summary.failed === 0, `library: ${summary.ok} of ${N} images, ${summary.failed} failed`);
    await checkFolder(out, N, check, 'library');
    const growth = sN.memMb - s1k.memMb;
    check(growth <= marginMb, `library: heap + external after ${N} (${sN.memMb.toFixed(1)} MB) <= after 1000 (${s1k.memMb.toFixed(1)} MB) + ${marginMb} MB: growth ${growth.toFixed(1)} MB (${((growth * 2 ** 20) / (N - 1000)).toFixed(0)} bytes per job)`);

    // 2. The CLI, RSS read from /proc against the journal's length.
    const cliOut = join(dir, 'cli');
    const rss = await cliRun([`--max-old-space-size=${heapCapMb}`, join(root, 'bin', 'genaug.js'), 'generate', '--plan', plan, '--out', cliOut, '--backend', `a1111=${server.url}`, '--concurrency', String(concurrency), '--retries', '4', '--backoff', '0.005', '-q'], join(cliOut, 'journal.jsonl'));
    check(rss.code === 0, `cli: finished ${N} jobs with its heap capped at ${heapCapMb} MB (exit code ${rss.code}${rss.stderr ? `: ${rss.stderr.trim().slice(-300)}` : ''})`);
    await checkFolder(cliOut, N, check, 'cli');
    const r1k = rss.points.find((p) => p.lines >= 1000);
    const rMax = Math.max(...rss.points.filter((p) => p.lines >= 1000).map((p) => p.rssMb));
    const trail = [1000, N / 4, N / 2, (3 * N) / 4, N].map((n) => rss.points.find((p) => p.lines >= n)).filter(Boolean);
    console.log(`cli: ${rss.seconds.toFixed(1)} s; RSS (MB) by items done: ${trail.map((p) => `${p.lines}: ${p.rssMb.toFixed(0)}`).join(', ')}; peak ${Math.max(...rss.points.map((p) => p.rssMb)).toFixed(1)} MB`);
    check(r1k !== undefined && rMax <= r1k.rssMb + 2 * marginMb, `cli: RSS after 1000 items (at most ${rMax.toFixed(1)} MB) <= RSS at 1000 (${r1k?.rssMb.toFixed(1)} MB) + ${2 * marginMb} MB`);
    console.log(
      `\n${JSON.stringify({
        jobs: N,
        concurrency,
        size,
        library: { seconds, heapMb1k: s1k.heapMb, heapMbN: sN.heapMb, memMb1k: s1k.memMb, memMbN: sN.memMb, growthMb: growth, bytesPerJob: (growth * 2 ** 20) / (N - 1000), rssMbN: sN.rssMb },
        cli: { seconds: rss.seconds, heapCapMb, rssMb1k: r1k?.rssMb, rssMbMaxAfter1k: rMax },
      })}`,
    );
  } finally {
    await server.close();
    if (!keep) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
  if (failures.length) {
    console.error(`load: ${failures.length} check(s) failed`);
    process.exit(1);
  }
}

/** Every job once: manifest lines unique and one PNG + one sidecar per job, nothing else. */
async function checkFolder(out, n, check, what) {
  const manifest = (await readFile(join(out, 'manifest.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const names = await readdir(join(out, 'images'));
  const journal = (await readFile(join(out, 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  check(
    manifest.length === n && new Set(manifest.map((m) => m.job)).size === n && new Set(manifest.map((m) => m.file)).size === n,
    `${what}: manifest has ${manifest.length} lines, ${new Set(manifest.map((m) => m.job)).size} distinct jobs and files`,
  );
  check(names.length === 2 * n && names.filter((x) => x.endsWith('.png')).length === n, `${what}: images/ holds ${names.length} files (${n} PNG + ${n} sidecars expected)`);
  check(journal.length === n && new Set(journal.map((l) => l.job)).size === n, `${what}: journal has ${journal.length} lines for ${new Set(journal.map((l) => l.job)).size} jobs`);
}

function startServer(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'test', 'load-server.mjs'), JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    const waiting = [];
    let url;
    child.on('error', reject);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (url === undefined) {
          url = line.url;
          resolve({
            url,
            stats: () =>
              new Promise((r) => {
                waiting.push(r);
                child.stdin.write('stats\n');
              }),
            close: () =>
              new Promise((r) => {
                child.on('exit', () => r());
                child.stdin.end();
              }),
          });
        } else waiting.shift()?.(line);
      }
    });
  });
}

/** Runs node with `args`, reading its RSS from /proc and the journal's line count every 100 ms. */
function cliRun(args, journal) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const points = [];
    const poll = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
        let lines = 0;
        try {
          const text = readFileSync(journal);
          for (const b of text) if (b === 10) lines++;
        } catch {
          // not there yet
        }
        if (kb) points.push({ lines, rssMb: kb / 1024 });
      } catch {
        // exited
      }
    }, 100);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ code, stderr, points, seconds: (Date.now() - t0) / 1000 });
    });
  });
}
