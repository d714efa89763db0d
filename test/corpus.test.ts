/**
 * The hostile input corpus (issue 21): every file in test/corpus/files (and
 * the links, FIFOs and devices made here) is fed to the command that reads it,
 * through the CLI's own entry point, beside good inputs. Each must give what
 * test/corpus/cases.json says: a typed error (exit 1, `genaug: error [E_...]`),
 * a recorded rejection with the good items beside it kept, or, for odd but
 * valid inputs, acceptance. Never a crash, a stack trace or a hang (every case
 * has HANG_MS; the runner process is killed and the case fails).
 *
 * The cases run in one child process (test/corpus/runner.mjs) to keep CI
 * short; a case that kills or hangs it is recorded and the rest go on in a
 * fresh one. Regenerate the corpus with `node test/corpus/make.mjs`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { a1111Server, type TestServer } from './generate-servers.js';

const here = join(__dirname, 'corpus');
const repo = join(__dirname, '..');
// A case with no answer in this time is a hang (GENAUG_CORPUS_HANG_MS shortens it for a run against an older build).
const HANG_MS = Number(process.env.GENAUG_CORPUS_HANG_MS ?? 20_000);

interface Case {
  id: string;
  kind: string;
  scenario: string;
  /** The command line, as cases.json documents it. */
  command: string;
  file?: string;
  gunzip?: string;
  make?: string;
  args?: string[];
  stdout?: string;
  /** Text the recorded rejection must hold (in an output .json/.jsonl or on stdout). */
  reason?: string;
  /** Scenario 'argv': the command line ({file}, {good}, {ws} replaced). */
  argv?: string[];
  expect: { outcome: 'error' | 'rejected' | 'ok'; code?: string };
}
interface Result {
  id: string;
  exit?: number;
  stdout: string;
  stderr: string;
  crash?: string;
  hang?: boolean;
}
interface Job {
  id: string;
  argv?: string[];
  api?: string;
  path?: string;
}

const cases: Case[] = JSON.parse(readFileSync(join(here, 'cases.json'), 'utf8'));
const good = join(here, 'good');
let work = '';
const results = new Map<string, Result>();
/** Per case: its folder and the checker of its outcome. */
const setups = new Map<string, { ws: string; input: string; job: Job; check: (r: Result) => void }>();

const readJsonl = (p: string): Array<Record<string, unknown>> =>
  existsSync(p)
    ? readFileSync(p, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l))
    : [];

/** The "file" of each line that parses (the expected bad item of a manifest case). */
function lenientFiles(p: string): unknown[] {
  return readFileSync(p, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l.replace(/^\uFEFF/, '')).file];
      } catch {
        return [];
      }
    });
}

/** Puts the case's input in place: the corpus file (unpacked), or a FIFO, a link or a folder. */
function place(c: Case, dir: string, name?: string): string {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, name ?? (c.gunzip ? basename(c.gunzip) : basename(c.file ?? c.id)));
  const make = c.make;
  if (make === 'fifo') execFileSync('mkfifo', [target]);
  else if (make === 'dir') mkdirSync(target);
  else if (make?.startsWith('link:')) {
    const to = make.slice(5);
    symlinkSync(to === 'outside' ? join(good, 'images', 'a.png') : to, target);
  } else {
    const bytes = readFileSync(join(here, 'files', c.file as string));
    writeFileSync(target, c.gunzip ? gunzipSync(bytes) : bytes);
  }
  return target;
}

/** Everything a case recorded: its output .json and .jsonl files (the input left out) and its stdout. */
function recorded(ws: string, input: string, r: Result): string {
  const parts = [r.stdout];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && p !== input && /\.jsonl?$/.test(e.name)) parts.push(readFileSync(p, 'utf8'));
    }
  };
  walk(ws);
  return parts.join('\n');
}

/** The good images in `dir`, plus what the manifest cases name: a folder, a text file, links out, a FIFO. */
function imagesFolder(dir: string, outside = join(dir, '..', 'outside.jpg')): string {
  cpSync(join(good, 'images'), dir, { recursive: true });
  // A readable image just outside the folder: what a '..' or absolute name, or a link, would reach.
  copyFileSync(join(good, 'images', 'b.jpg'), outside);
  return dir;
}

/**
 * The COCO input of a paste / real-crops case and the images folder it reads: the case's file as the COCO file,
 * or (an image case) the good COCO file with image 1 renamed to the case's image placed among the good ones.
 */
function cocoCase(c: Case, ws: string, imageCase: boolean): { f: string; images: string } {
  const images = imagesFolder(join(ws, 'images'));
  if (!imageCase) return { f: place(c, ws), images };
  const img = place(c, images);
  const f = join(ws, 'coco.json');
  const coco = JSON.parse(readFileSync(join(good, 'coco.json'), 'utf8'));
  coco.images[1].file_name = basename(img);
  writeFileSync(f, JSON.stringify(coco));
  return { f, images };
}

// --- what a recorded rejection looks like, per command ------------------------------------

/** embed: the good images are rows of the index, the bad one is in OUT.failed.jsonl. */
function embedCheck(out: string, keptFiles: string[], failedFile: string | undefined) {
  return (r: Result) => {
    expect(r.exit, r.stderr).toBe(0);
    const index = readJsonl(`${out.replace(/\.npy$/, '')}.index.jsonl`).map((l) => l.file);
    for (const f of keptFiles) expect(index, 'a good image is kept').toContain(f);
    const failed = readJsonl(`${out.replace(/\.npy$/, '')}.failed.jsonl`);
    if (failedFile === undefined) expect(failed, 'nothing failed').toEqual([]);
    else {
      expect(failed.length, 'exactly the bad item failed').toBe(1);
      expect(String(failed[0]?.file)).toContain(failedFile);
      expect(String(failed[0]?.reason), 'a typed reason').toMatch(/^\[E_[A-Z]+\] /);
    }
  };
}

function setup(c: Case, ws: string): { job: Job; input: string; check: (r: Result) => void } {
  const q = join(good, 'q.npy');
  const d = join(good, 'd.npy');
  const cli = (argv: string[]) => ({ id: c.id, argv: [...argv, ...(c.args ?? [])] });
  const none = () => undefined;
  switch (c.scenario) {
    case 'topk-query': {
      const f = place(c, ws);
      return { input: f, job: cli(['similarity', 'topk', '--query', f, '--db', d, '--out', join(ws, 'o'), '-q']), check: none };
    }
    case 'topk-db': {
      const f = place(c, ws);
      return { input: f, job: cli(['similarity', 'topk', '--query', q, '--db', f, '--out', join(ws, 'o'), '-q']), check: none };
    }
    case 'class-labels': {
      const f = place(c, ws);
      return { input: f, job: cli(['similarity', 'class-mean', '--query', q, '--db', d, '--labels', f, '--out', join(ws, 'o'), '-q']), check: none };
    }
    case 'gap-real': {
      const f = place(c, ws);
      return { input: f, job: cli(['gap', '--real', f, '--synthetic', d, '--out', join(ws, 'gap.json'), '-q']), check: none };
    }
    case 'unique-emb': {
      const f = place(c, ws);
      return { input: f, job: cli(['similarity', 'unique', '--emb', f, '--out', join(ws, 'o'), '-q']), check: none };
    }
    case 'bnstats-act': {
      const f = place(c, ws);
      return { input: f, job: cli(['bnstats', '--activations', f, '--out', join(ws, 'o.safetensors'), '-q']), check: none };
    }
    case 'bnstats-domains': {
      const f = place(c, ws);
      return { input: f, job: cli(['bnstats', '--activations', join(good, 'act.npy'), '--domains', f, '--out', join(ws, 'o.safetensors'), '-q']), check: none };
    }
    case 'bnstats-model': {
      const f = place(c, ws);
      const images = imagesFolder(join(ws, 'images'));
      return { input: f, job: cli(['bnstats', '--model', f, '--real', images, '--synthetic', images, '--out', join(ws, 'o.safetensors'), '-q']), check: none };
    }
    case 'safetensors-api': {
      const f = place(c, ws);
      return { input: f, job: { id: c.id, api: 'readSafetensors', path: f }, check: none };
    }
    case 'priors': {
      const f = place(c, ws);
      const out = join(ws, 'priors.json');
      return {
        input: f,
        job: cli(['priors', '--coco', f, '--out', out]),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          const p = JSON.parse(readFileSync(out, 'utf8'));
          expect(p.categories.map((x: { name: string }) => x.name).sort(), 'the good classes are kept').toEqual(['cat', 'dog']);
          if (c.expect.outcome === 'rejected') expect(r.stdout).toMatch(/skipped \d+ unusable annotations/);
          else expect(r.stdout).not.toMatch(/unusable/);
        },
      };
    }
    case 'plan': {
      const f = place(c, ws);
      const out = join(ws, 'plan.jsonl');
      return {
        input: f,
        job: cli(['plan', '--coco', f, '--out', out, '--strategy', 'template', '--per-class', '1', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          const cats = readJsonl(out).map((j) => (j.objects as Array<{ category: string }> | undefined)?.[0]?.category ?? j.category);
          expect(cats.length, 'a job for each good class').toBeGreaterThanOrEqual(2);
          expect(r.stdout + r.stderr).toMatch(/unusable|skipped|problem/);
        },
      };
    }
    case 'paste':
    case 'paste-image': {
      const { f, images } = cocoCase(c, ws, c.scenario === 'paste-image');
      const out = join(ws, 'out');
      return {
        input: f,
        job: cli(['paste', '--coco', f, '--images', images, '--pool', join(good, 'pool', 'pool.json'), '--out', out, '--workers', '0', '--seed', '1', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          const log = readJsonl(join(out, 'log.jsonl'));
          const failed = log.filter((l) => l.kind === 'image-failed' || l.stage === 'coco');
          expect(failed.length, JSON.stringify(log)).toBeGreaterThanOrEqual(1);
          const written = readdirSync(join(out, 'images'));
          expect(written.length, 'the good image is rendered').toBeGreaterThanOrEqual(1);
        },
      };
    }
    case 'paste-pool': {
      const images = imagesFolder(join(ws, 'images'));
      const poolDir = join(ws, 'pool');
      cpSync(join(good, 'pool'), poolDir, { recursive: true });
      writeFileSync(join(poolDir, 'text.png'), 'not an image\n');
      writeFileSync(join(poolDir, 'vector.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16"/></svg>');
      execFileSync('mkfifo', [join(poolDir, 'fifo.png')]);
      symlinkSync('/dev/zero', join(poolDir, 'zero.png'));
      const f = place(c, poolDir, 'case-pool.json');
      const out = join(ws, 'out');
      return {
        input: f,
        job: cli(['paste', '--coco', join(good, 'coco.json'), '--images', images, '--pool', f, '--out', out, '--workers', '0', '--seed', '1', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          const skipped = readJsonl(join(out, 'log.jsonl')).filter((l) => l.stage === 'pool' && l.kind !== 'empty-category');
          expect(skipped.length, 'the bad entry is recorded').toBe(1);
          expect(r.stdout, 'the good crops are pasted').toMatch(/ [1-9]\d* pasted instances/);
        },
      };
    }
    case 'embed-model':
    case 'annotate-segmenter':
    case 'annotate-sam': {
      const images = imagesFolder(join(ws, 'images'));
      if (c.scenario === 'embed-model') {
        const dir = join(ws, 'model');
        mkdirSync(dir);
        writeFileSync(join(dir, 'preprocessor_config.json'), '{}');
        writeFileSync(join(dir, 'tokenizer.json'), '{}');
        const f = place(c, dir, 'model.onnx');
        return { input: f, job: cli(['embed', '--model', dir, '--images', images, '--out', join(ws, 'e.npy'), '--workers', '0', '-q']), check: none };
      }
      const f = place(c, ws);
      const models = c.scenario === 'annotate-sam' ? ['--sam-encoder', f, '--sam-decoder', f] : ['--segmenter', f];
      return { input: f, job: cli(['annotate', ...models, '--images', images, '--out', join(ws, 'pool'), '--workers', '0', '-q']), check: none };
    }
    case 'argv': {
      // Any command: {file} is the case's input, {good} the good inputs, {ws} the case's folder.
      const f = place(c, ws);
      const argv = (c.argv as string[]).map((a) => a.replace('{file}', f).replace('{good}', good).replace('{ws}', ws));
      return { input: f, job: cli(argv), check: none };
    }
    case 'generate-plan': {
      copyFileSync(join(good, 'images', 'a.png'), join(ws, 'src.png'));
      execFileSync('mkfifo', [join(ws, 'fifo.png')]);
      symlinkSync('/dev/zero', join(ws, 'zero.png'));
      const f = place(c, ws);
      const out = join(ws, 'out');
      return {
        input: f,
        job: cli(['generate', '--plan', f, '--backend', `a1111=${server.url}`, '--out', out, '--retries', '0', '--timeout', '10', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          expect(readJsonl(join(out, 'manifest.jsonl')).length, 'the good job is generated').toBe(1);
          expect(readJsonl(join(out, 'failed.jsonl')).length, 'the bad line or job is recorded').toBe(c.expect.outcome === 'rejected' ? 1 : 0);
        },
      };
    }
    case 'embed-coco': {
      const images = imagesFolder(join(ws, 'images'));
      const f = place(c, ws);
      const out = join(ws, 'e.npy');
      return {
        input: f,
        job: cli(['embed', '--features', '--coco', f, '--images', images, '--out', out, '--workers', '0', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          expect(readJsonl(join(ws, 'e.index.jsonl')).length, 'the good instances are kept').toBeGreaterThanOrEqual(1);
          // A bad image is a failed row; a bad annotation is never a row, it is counted on stdout.
          const recorded = readJsonl(join(ws, 'e.failed.jsonl')).length + (/skipped 1 unusable annotations/.test(r.stdout) ? 1 : 0);
          expect(recorded, 'the bad one is recorded').toBe(1);
        },
      };
    }
    case 'real-crops':
    case 'real-crops-image': {
      const { f, images } = cocoCase(c, ws, c.scenario === 'real-crops-image');
      const out = join(ws, 'crops');
      return {
        input: f,
        job: cli(['score', 'real-crops', '--coco', f, '--images', images, '--out', out]),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          expect(readJsonl(join(out, 'manifest.jsonl')).length, 'the good crops are kept').toBeGreaterThanOrEqual(1);
          expect(r.stdout + r.stderr).toMatch(/fail|skip|unusable/i);
        },
      };
    }
    case 'score-pool': {
      const f = place(c, ws);
      const out = join(ws, 'pool.json');
      return {
        input: f,
        job: cli(['score', 'pool', '--coco', f, '--out', out]),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          expect(existsSync(out)).toBe(true);
          expect(r.stdout + r.stderr).toMatch(/unusable|skip/i);
        },
      };
    }
    case 'embed-manifest': {
      const images = imagesFolder(join(ws, 'images'));
      mkdirSync(join(images, 'sub'));
      writeFileSync(join(images, 'notes.txt'), 'not an image\n');
      symlinkSync(join(good, 'images', 'a.png'), join(images, 'link-out.png'));
      symlinkSync('/dev/zero', join(images, 'link-zero.png'));
      execFileSync('mkfifo', [join(images, 'fifo.png')]);
      const f = place(c, ws);
      const out = join(ws, 'e.npy');
      const lines = c.make ? [] : lenientFiles(f);
      const bad = lines.find((l) => l !== 'a.png' && l !== 'b.jpg');
      return {
        input: f,
        job: cli(['embed', '--features', '--manifest', f, '--images', images, '--out', out, '--workers', '0', '-q']),
        check: c.expect.outcome === 'rejected' ? embedCheck(out, ['a.png', 'b.jpg'], String(bad).replace(/\0.*/, '')) : embedCheck(out, ['a.png', 'b.jpg'], undefined),
      };
    }
    case 'annotate-manifest':
    case 'annotate-image': {
      const images = join(ws, 'images');
      let argv: string[];
      let f: string;
      if (c.scenario === 'annotate-manifest') {
        imagesFolder(images);
        f = place(c, ws);
        if (readFileSync(f, 'utf8').includes('link-out.png')) symlinkSync(join(good, 'images', 'a.png'), join(images, 'link-out.png'));
        argv = ['annotate', '--images', images, '--manifest', f];
      } else {
        imagesFolder(join(images, 'cat'), join(ws, 'outside.jpg'));
        f = place(c, join(images, 'cat'));
        argv = ['annotate', '--images', images];
      }
      const out = join(ws, 'pool');
      return {
        input: f,
        job: cli([...argv, '--out', out, '--workers', '0', '-q']),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
          const sources = JSON.stringify(index);
          expect(sources, 'the good images are kept').toContain('a.png');
          expect(sources).toContain('b.jpg');
          // A failure is a line with a typed reason; rejections by the area checks are content, not failures.
          const rejected = readJsonl(join(out, 'rejected.jsonl'));
          const failed = rejected.filter((l) => /^\[E_[A-Z]+\] /.test(String(l.reason)));
          const bad = c.scenario === 'annotate-image' ? basename(f) : 'link-out.png';
          if (c.expect.outcome === 'rejected') expect(failed.map((l) => l.file), JSON.stringify(rejected)).toEqual([expect.stringContaining(bad)]);
          else expect(failed, 'nothing failed').toEqual([]);
          if (c.stdout) expect(JSON.stringify(rejected)).toMatch(new RegExp(c.stdout));
        },
      };
    }
    case 'filter-scores': {
      const f = place(c, ws);
      const out = join(ws, 'kept.jsonl');
      return {
        input: f,
        job: cli(['filter', '--scores', f, '--preset', 'xpaste', '--out', out]),
        check: (r) => {
          expect(r.exit, r.stderr).toBe(0);
          if (c.expect.outcome === 'ok') return;
          expect(readJsonl(out).map((l) => l.id)).toContain('b.png');
          expect(readJsonl(join(ws, 'kept.rejected.jsonl')).map((l) => l.id)).toContain('a.png');
        },
      };
    }
    case 'run-config': {
      copyFileSync(join(good, 'coco.json'), join(ws, 'coco.json'));
      imagesFolder(join(ws, 'images'));
      execFileSync('mkfifo', [join(ws, 'fifo.json')]);
      const f = place(c, ws);
      return { input: f, job: cli(['run', f, '--until', 'plan', '--no-check-servers', '-q']), check: none };
    }
    case 'embed-image': {
      const images = imagesFolder(join(ws, 'images'));
      const f = place(c, images);
      const out = join(ws, 'e.npy');
      const name = basename(f);
      return {
        input: f,
        job: cli(['embed', '--features', '--images', images, '--out', out, '--workers', '0', '-q']),
        check: (r) => {
          embedCheck(out, c.expect.outcome === 'ok' ? ['a.png', 'b.jpg', name] : ['a.png', 'b.jpg'], c.expect.outcome === 'ok' ? undefined : name)(r);
          if (c.stdout) expect(readFileSync(join(ws, 'e.failed.jsonl'), 'utf8')).toMatch(new RegExp(c.stdout));
        },
      };
    }
    default:
      throw new Error(`unknown scenario ${c.scenario}`);
  }
}

/** Runs the jobs in a runner process; a hang or a crash is recorded and the rest go on in a new one. */
async function runAll(jobs: Job[]): Promise<void> {
  let rest = jobs;
  while (rest.length) {
    const file = join(work, `jobs-${jobs.length - rest.length}.json`);
    writeFileSync(file, JSON.stringify(rest));
    const child = spawn(process.execPath, [join(here, 'runner.mjs'), file], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], cwd: work });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', () => undefined);
    let started: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    let buf = '';
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, HANG_MS);
    };
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.start) {
          started = msg.start;
          arm();
        } else if (msg.crash) {
          results.set(msg.id, { id: msg.id, stdout: '', stderr: msg.stderr, crash: msg.crash });
          started = undefined;
        } else {
          results.set(msg.id, msg);
          started = undefined;
          clearTimeout(timer);
        }
      }
    });
    await new Promise<void>((resolve) => child.on('close', () => resolve()));
    clearTimeout(timer);
    if (started !== undefined && !results.has(started)) {
      results.set(started, { id: started, stdout: '', stderr, ...(hung ? { hang: true } : { crash: `runner exited while running it: ${stderr.slice(-2000)}` }) });
    }
    rest = rest.filter((j) => !results.has(j.id));
    if (rest.length && started === undefined && !hung) {
      // The runner stopped between cases without a word: nothing more can be learnt from it.
      for (const j of rest) results.set(j.id, { id: j.id, stdout: '', stderr, crash: `runner stopped: ${stderr.slice(-2000)}` });
      rest = [];
    }
  }
}

let server: TestServer;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'genaug-corpus-'));
  server = await a1111Server();
  const jobs: Job[] = [];
  cases.forEach((c, i) => {
    const ws = join(work, String(i));
    mkdirSync(ws, { recursive: true });
    const s = setup(c, ws);
    setups.set(c.id, { ws, input: s.input, job: s.job, check: s.check });
    jobs.push(s.job);
  });
  await runAll(jobs);
  if (process.env.GENAUG_CORPUS_DUMP) writeFileSync(process.env.GENAUG_CORPUS_DUMP, JSON.stringify([...results.values()], null, 1));
}, 600_000);

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

it('the corpus has at least 200 cases, each with its own input', () => {
  expect(cases.length).toBeGreaterThanOrEqual(200);
  expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
  for (const c of cases) {
    expect(Boolean(c.file) !== Boolean(c.make), c.id).toBe(true);
    // cases.json says which command reads each input: the one the test runs.
    const { job } = setups.get(c.id) as { job: Job };
    if (job.argv) expect(c.command.split(' ').slice(1, 2), c.id).toEqual(job.argv.slice(0, 1));
  }
});

it('the built command (bin/genaug.js, a process per run) answers as the in-process runs did', async () => {
  for (const id of ['npy/text.npy', 'npy/fifo.npy', 'coco/dev-zero.json', 'yaml/billion-laughs.yaml', 'jsonl/bad-json-line.jsonl']) {
    const { job } = setups.get(id) as { job: Job };
    const r = spawnSync(process.execPath, [join(repo, 'bin', 'genaug.js'), ...(job.argv as string[])], { encoding: 'utf8', timeout: HANG_MS, cwd: work });
    const inProcess = results.get(id) as Result;
    expect(r.status, id).toBe(inProcess.exit);
    expect(r.stderr, id).toBe(inProcess.stderr);
  }
});

describe.each([...new Set(cases.map((c) => c.kind))])('%s', (kind) => {
  it.each(cases.filter((c) => c.kind === kind).map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const r = results.get(c.id);
    expect(r, 'the case ran').toBeDefined();
    const res = r as Result;
    expect(res.hang ?? false, `hung (no answer in ${HANG_MS} ms)`).toBe(false);
    expect(res.crash, 'crashed').toBeUndefined();
    const text = res.stdout + res.stderr;
    expect(text, 'no stack trace').not.toMatch(/\n\s+at |unexpected error|TypeError|RangeError|ReferenceError|SyntaxError: (?!JSON)/);
    if (c.expect.outcome === 'error') {
      expect(res.stderr, res.stdout).toMatch(new RegExp(`^genaug: error \\[${c.expect.code}\\]: `));
      expect(res.exit).toBe(c.expect.code === 'E_ARGUMENT' ? 2 : 1);
    } else {
      const s = setups.get(c.id) as { ws: string; input: string; check: (r: Result) => void };
      s.check(res);
      if (c.reason) expect(recorded(s.ws, s.input, res), 'the recorded reason').toContain(c.reason);
    }
  });
});
