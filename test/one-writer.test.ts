/**
 * One writer (issue 21): every command that writes takes its outputs' locks
 * before it writes anything. Through the built CLI, for each writing command:
 * a lock held by a live process refuses it with E_LOCKED naming that pid and
 * leaves its output folder byte for byte as it was; a lock left by a dead
 * process is taken over and the command writes what it writes unlocked. The
 * takeover itself: several processes taking over one stale lock at once, one
 * ends up holding it; a recycled pid (same number, another start time) is
 * not mistaken for the writer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeNpy } from '../ts/io/npy.js';
import { buildProgram, outputLocks, run as runCli } from '../ts/cli/main.js';
import { a1111Server, type TestServer } from './generate-servers.js';
import { expectSameTree, tempFolder, tree } from './helpers.js';
import type { Command } from 'commander';

const repo = join(__dirname, '..');
const tmp = tempFolder('genaug-writer-');

/**
 * The CLI in this process (the same program, options and exit codes as
 * bin/genaug.js; a process per call would cost most of this file's time).
 */
async function genaug(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const w = (k: 'stdout' | 'stderr') => (chunk: string | Uint8Array) => ((out[k] += String(chunk)), true);
  const so = process.stdout.write;
  const se = process.stderr.write;
  process.stdout.write = w('stdout') as typeof so;
  process.stderr.write = w('stderr') as typeof se;
  try {
    const code = await runCli(['node', 'genaug', ...args]);
    return { code, ...out };
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
  }
}

/** A live process that is not genaug (holds a planted lock), and the pid of one that has exited. */
let sleeper: ChildProcess;
let deadPid: number;
let server: TestServer;
let demo: string;
let small: string;

beforeAll(async () => {
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  const gone = spawn('true', { stdio: 'ignore' });
  deadPid = gone.pid as number;
  await new Promise((r) => gone.on('exit', r));
  server = await a1111Server();
  demo = join(tmp.dir(), 'demo');
  const d = await genaug(['demo', '--images', '4', '--out', demo, '-q']);
  expect(d.code, d.stderr).toBe(0);
  // Small inputs for the commands whose demo inputs would be slow: a 3-job plan, 6 of the generated images, 8 x 4 matrices.
  small = join(tmp.dir(), 'small');
  await mkdir(join(small, 'images'), { recursive: true });
  const jobs = [0, 1, 2].map((i) => ({ id: `k${i}`, kind: 'txt2img', classes: [i % 2 ? 'cup' : 'dog'], prompt: `a photo of a ${i % 2 ? 'cup' : 'dog'}`, candidates: 1, width: 16, height: 16, seed: 1000 * i }));
  await writeFile(join(small, 'plan.jsonl'), jobs.map((j) => JSON.stringify(j)).join('\n') + '\n');
  const manifest = (await readFile(run('generate/manifest.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, 6);
  for (const l of manifest) await copyFile(join(run('generate/images'), JSON.parse(l).file), join(small, 'images', JSON.parse(l).file));
  await writeFile(join(small, 'manifest.jsonl'), manifest.join('\n') + '\n');
  const m = (seed: number) => Float32Array.from({ length: 32 }, (_, i) => Math.sin(seed * 7 + i * 1.3));
  await writeNpy(join(small, 'a.npy'), m(1), [8, 4]);
  await writeNpy(join(small, 'b.npy'), m(2), [8, 4]);
}, 120_000);

afterAll(async () => {
  sleeper?.kill();
  await server?.close();
});

interface Case {
  name: string;
  /** The command's arguments, writing under `out` (a folder of its own). */
  args: (out: string) => string[];
  /** The lock files it takes, under `out`. */
  locks: (out: string) => string[];
}

const run = (f: string) => join(demo, 'run', f);
const CASES: Case[] = [
  { name: 'plan', args: (o) => ['plan', '--coco', join(demo, 'data', 'annotations.json'), '--strategy', 'template', '--out', join(o, 'plan.jsonl')], locks: (o) => [join(o, 'plan.jsonl.lock')] },
  {
    name: 'generate',
    args: (o) => ['generate', '--plan', join(small, 'plan.jsonl'), '--out', join(o, 'gen'), '--backend', `a1111=${server.url}`, '-q'],
    locks: (o) => [join(o, 'gen', '.lock')],
  },
  {
    name: 'annotate',
    args: (o) => ['annotate', '--images', join(small, 'images'), '--manifest', join(small, 'manifest.jsonl'), '--out', join(o, 'pool'), '--workers', '0', '-q'],
    locks: (o) => [join(o, 'pool', '.lock')],
  },
  { name: 'embed', args: (o) => ['embed', '--features', '--images', join(small, 'images'), '--out', join(o, 'gen.npy'), '--workers', '0', '-q'], locks: (o) => [join(o, 'gen.npy.lock')] },
  {
    name: 'score against-real',
    args: (o) => ['score', 'against-real', '--gen', run('embed/generated.npy'), '--real', run('embed/real.npy'), '--table', join(o, 'scores.jsonl')],
    locks: (o) => [join(o, 'scores.jsonl.lock')],
  },
  {
    name: 'filter',
    args: (o) => ['filter', '--scores', run('score/scores.jsonl'), '--rules', 'dedup,border', '--out', join(o, 'kept.jsonl'), '--rejected', join(o, 'no.jsonl')],
    locks: (o) => [join(o, 'kept.jsonl.lock'), join(o, 'no.jsonl.lock')],
  },
  {
    name: 'pool',
    args: (o) => ['pool', '--annotated', run('annotate'), '--kept', run('filter/kept.jsonl'), '--scores', run('score/scores.jsonl'), '--coco', join(demo, 'data', 'annotations.json'), '--out', join(o, 'pool')],
    locks: (o) => [join(o, 'pool', '.lock')],
  },
  {
    name: 'paste',
    args: (o) => ['paste', '--coco', join(demo, 'data', 'annotations.json'), '--images', join(demo, 'data', 'images'), '--pool', run('pool'), '--out', join(o, 'paste'), '--workers', '0', '-q'],
    locks: (o) => [join(o, 'paste', '.lock')],
  },
  {
    name: 'priors',
    args: (o) => ['priors', '--coco', join(demo, 'data', 'annotations.json'), '--out', join(o, 'priors.json'), '--size-table', join(o, 'size.json')],
    locks: (o) => [join(o, 'priors.json.lock'), join(o, 'size.json.lock')],
  },
  { name: 'bnstats', args: (o) => ['bnstats', '--activations', join(small, 'a.npy'), '--out', join(o, 'bn.safetensors'), '-q'], locks: (o) => [join(o, 'bn.safetensors.lock')] },
  { name: 'gap', args: (o) => ['gap', '--real', join(small, 'a.npy'), '--synthetic', join(small, 'b.npy'), '--out', join(o, 'gap.json'), '-q'], locks: (o) => [join(o, 'gap.json.lock')] },
  {
    name: 'similarity topk',
    args: (o) => ['similarity', 'topk', '--query', join(small, 'a.npy'), '--db', join(small, 'b.npy'), '--k', '2', '--out', join(o, 'top')],
    locks: (o) => [join(o, 'top.lock')],
  },
];

describe('one writer per output', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s: a live holder refuses it with E_LOCKED and the pid, output unchanged; a dead one is taken over', async (_n, c) => {
    const out = tmp.fresh(c.name.replace(/ /g, '-'));
    await mkdir(out, { recursive: true });
    const first = await genaug(c.args(out));
    expect(first.code, first.stderr).toBe(0);
    const written = await tree(out, []);
    expect(written.size).toBeGreaterThan(0);
    // Each lock in turn held by a live process (the others free): refused, nothing changed.
    for (const lock of c.locks(out)) {
      await mkdir(join(lock, '..'), { recursive: true });
      await writeFile(lock, `${sleeper.pid}\n`);
      const before = await tree(out, []);
      const r = await genaug(c.args(out));
      expect(r.code, `${c.name} with ${lock} held: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^genaug: error \\[E_LOCKED\\]: another genaug process \\(pid ${sleeper.pid}\\) is writing `));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expectSameTree(before, await tree(out, []));
      // Stale: its process is gone. Taken over, the same bytes written again, the lock released.
      await writeFile(lock, `${deadPid}\n`);
      const again = await genaug(c.args(out));
      expect(again.code, again.stderr).toBe(0);
      for (const l of c.locks(out)) expect(existsSync(l), l).toBe(false);
      const after = await tree(out, []);
      // generate's journal and paste/annotate progress record completion order and runs; the outputs are the same.
      const outputs = (m: Map<string, Buffer>) => new Map([...m].filter(([k]) => !/(journal|progress|log)\.jsonl$|run\.json$/.test(k)));
      expectSameTree(outputs(written), outputs(after));
    }
  }, 120_000);

  it('an output inside a folder another live process holds (a run folder) is refused before anything is written', async () => {
    const run = tmp.fresh('held-run');
    await mkdir(run, { recursive: true });
    await writeFile(join(run, '.lock'), `${sleeper.pid}\n\ngenaug run\n`);
    const out = join(run, 'paste', 'mine');
    const r = await genaug(['gap', '--real', join(run, 'none.npy'), '--synthetic', join(run, 'none.npy'), '--out', join(out, 'gap.json')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`E_LOCKED\\]: .*gap\\.json is inside .*held-run, which another genaug run \\(pid ${sleeper.pid}\\) is writing`));
    expect(existsSync(join(run, 'paste'))).toBe(false);
    // Once that writer is gone, the same command is judged on its own (here: its missing input).
    await writeFile(join(run, '.lock'), `${deadPid}\n`);
    const again = await genaug(['gap', '--real', join(run, 'none.npy'), '--synthetic', join(run, 'none.npy'), '--out', join(out, 'gap.json')]);
    expect(again.stderr).not.toMatch(/E_LOCKED/);
  });

  it('covers every command that writes: each has an output option taken as a lock, or is known to write nothing', () => {
    const program = buildProgram({ print: () => undefined });
    const leaves: Command[] = [];
    const walk = (c: Command) => (c.commands.length ? c.commands.forEach(walk) : leaves.push(c));
    walk(program);
    // queue status only reads Redis; a worker writes its jobs' results into the run folder that the coordinator
    // (genaug run --queue) holds the lock of, each file atomically under a name no other job uses.
    const writesNothing = new Set(['info', 'status']);
    const locksItself = new Set(['run', 'demo', 'worker']);
    const unlocked: string[] = [];
    for (const c of leaves) {
      const outputs = c.options.filter((o) => ['out', 'table', 'rejected', 'sizeTable', 'captions', 'cache'].includes(o.attributeName()));
      if (writesNothing.has(c.name()) || locksItself.has(c.name())) continue;
      if (outputs.length === 0) unlocked.push(c.name());
    }
    expect(unlocked).toEqual([]);
    // The rule for a folder and for a file, as the CLI parses them.
    const paste = program.commands.find((c) => c.name() === 'paste') as Command;
    paste.setOptionValue('out', '/x/out');
    expect(outputLocks(paste)).toEqual([{ folder: '/x/out' }]);
    const gap = program.commands.find((c) => c.name() === 'gap') as Command;
    gap.setOptionValue('out', '/x/gap.json');
    expect(outputLocks(gap)).toEqual([{ file: '/x/gap.json' }]);
  });
});

describe('taking over a stale lock', () => {
  const script = (dir: string) =>
    `import { lockFolder } from ${JSON.stringify(join(repo, 'dist', 'io', 'lock.js'))};\n` +
    `try { await lockFolder(${JSON.stringify(dir)}, 'genaug test'); process.stdout.write('got\\n'); } catch (e) { process.stdout.write(e.code + '\\n'); process.exit(0); }\n` +
    `process.stdin.resume();\n`;

  it('six processes taking over one stale lock at once: exactly one holds it, the others are refused', async () => {
    const dir = tmp.fresh('race');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.lock'), `${deadPid}\n`);
    const children = Array.from({ length: 6 }, () => spawn(process.execPath, ['--input-type=module', '-e', script(dir)], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const answers = await Promise.all(
      children.map(
        (c) =>
          new Promise<string>((resolve) => {
            let s = '';
            c.stdout?.on('data', (d) => {
              s += d;
              if (s.includes('\n')) resolve(s.trim());
            });
          }),
      ),
    );
    for (const c of children) c.kill();
    expect(answers.filter((a) => a === 'got')).toHaveLength(1);
    expect(answers.filter((a) => a === 'E_LOCKED')).toHaveLength(5);
    const holder = children[answers.indexOf('got')] as ChildProcess;
    expect(Number((await readFile(join(dir, '.lock'), 'utf8')).split('\n')[0])).toBe(holder.pid);
  }, 60_000);

  it('a live pid with another start time is a recycled pid: its lock is stale; with its own start time it holds', async () => {
    const { lockFolder } = await import('../ts/io/lock.js');
    const dir = tmp.fresh('recycled');
    await mkdir(dir, { recursive: true });
    const stat = await readFile(`/proc/${sleeper.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
    await writeFile(join(dir, '.lock'), `${sleeper.pid}\n${start}\ngenaug paste\n`);
    await expect(lockFolder(dir, 'genaug test')).rejects.toMatchObject({ code: 'E_LOCKED', message: expect.stringContaining(`another genaug paste (pid ${sleeper.pid})`) });
    await writeFile(join(dir, '.lock'), `${sleeper.pid}\n${Number(start) + 1}\ngenaug paste\n`);
    const release = await lockFolder(dir, 'genaug test');
    expect((await readFile(join(dir, '.lock'), 'utf8')).split('\n')[0]).toBe(String(process.pid));
    await release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('a lock that created its folders removes them on release when they stayed empty, and keeps them otherwise', async () => {
    const { lockFile, lockFolder } = await import('../ts/io/lock.js');
    const base = tmp.fresh('tidy');
    await mkdir(base, { recursive: true });
    const r1 = await lockFile(join(base, 'a', 'b', 'out.json'), 'genaug test');
    expect(existsSync(join(base, 'a', 'b', 'out.json.lock'))).toBe(true);
    await r1();
    expect(existsSync(join(base, 'a'))).toBe(false);
    const r2 = await lockFolder(join(base, 'c', 'd'), 'genaug test');
    await writeFile(join(base, 'c', 'd', 'kept.txt'), 'x');
    await r2();
    expect(await readFile(join(base, 'c', 'd', 'kept.txt'), 'utf8')).toBe('x');
    expect(existsSync(join(base, 'c', 'd', '.lock'))).toBe(false);
  });
});
