/**
 * The short chaos run for CI (the long one: `npm run chaos`, figures in
 * docs/reliability.md): `genaug demo --images 48` SIGKILLed once in each of
 * generate, embed and paste and SIGTERMed once in annotate, at random points
 * within those stages (delays from an uninterrupted run's stage timings),
 * run again after each. It must end with the same bytes as the uninterrupted
 * run, no temporary file, lock or journal folder left, every journal holding
 * each item once; the SIGTERM exits 143 with the locks released and whole
 * journals. The driver (scripts/chaos.mjs) reads where each signal landed
 * from the killed process's own output.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { chaos } from '../scripts/chaos.mjs';
import { expectSameTree, tempFolder, tree } from './helpers.js';

const tmp = tempFolder('genaug-chaos-');
const bin = join(__dirname, '..', 'bin', 'genaug.js');
/** The uninterrupted demo the chaos run compared against (kept for the SIGTERM tests below). */
let ref = '';

/** Runs the CLI; SIGTERM once `started()` says the command is under way. */
function runUntil(args: string[], started: () => Promise<boolean>): Promise<{ code: number | null; stderr: string; signalled: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(async () => {
      // Checked again after the await: on a loaded machine started() can outlast the 10 ms interval, and two
      // callbacks would each send a SIGTERM (the second one quits at once, by design, with no message).
      if (!signalled && (await started()) && !signalled) {
        signalled = true;
        clearInterval(poll);
        child.kill('SIGTERM');
      }
    }, 10);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stderr, signalled });
    });
  });
}

const lines = async (p: string) => (existsSync(p) ? (await readFile(p, 'utf8')).split('\n').filter(Boolean).length : 0);

describe('chaos (short)', () => {
  it('demo of 48 images: 3 SIGKILLs and 1 SIGTERM over generate, annotate, embed, paste, then the same bytes as an uninterrupted run', async () => {
    const r = await chaos({ images: 48, kills: 3, sigterms: 1, phases: ['generate', 'embed', 'paste'], termStages: ['annotate'], seed: Number(process.env.GENAUG_CHAOS_SEED ?? 11), work: tmp.fresh('w'), keep: true });
    ref = join(r.work, 'ref');
    expect(r.failures).toEqual([]);
    expect(r.kills).toBe(3);
    expect(r.sigterms).toBe(1);
    for (const s of ['generate', 'embed', 'paste']) expect(r.perPhase[s]?.SIGKILL, s).toBeGreaterThanOrEqual(1);
    expect(r.perPhase.annotate?.SIGTERM).toBe(1);
    expect(r.record.find((e) => e.signal === 'SIGTERM')?.code).toBe(143);
    expect(r.compare?.differing).toBe(0);
    expect(r.compare?.files).toBeGreaterThan(300);
  }, 180_000);

  // The commands on their own, as the demo ran them (CLI defaults = the demo's settings): stopped after some items
  // with the journal whole and the lock released, then resumed to the demo's own bytes.
  it.each([
    [
      'annotate',
      (out: string) => ['annotate', '--images', join(ref, 'run/generate/images'), '--manifest', join(ref, 'run/generate/manifest.jsonl'), '--out', out, '--workers', '0', '--concurrency', '1', '-q'],
      (out: string) => lines(join(out, 'progress.jsonl')),
      'run/annotate',
    ],
    [
      'paste',
      (out: string) => [
        'paste', '--coco', join(ref, 'data/annotations.json'), '--images', join(ref, 'data/images'), '--pool', join(ref, 'run/pool'), '--priors', join(ref, 'run/pool/size_prior.json'),
        '--out', out, '--seed', '1', '--max-samples', '8', '--format', 'coco,webdataset', '--shard-size', '16', '--workers', '0', '-q',
      ],
      (out: string) => lines(join(out, 'webdataset', 'progress.jsonl')),
      'run/paste',
    ],
  ] as const)('SIGTERM stops %s between items: exit 143, journal whole, lock released; the rerun gives the demo\'s bytes', async (_name, args, done, refDir) => {
    expect(ref, 'the chaos run above kept its reference').not.toBe('');
    const out = tmp.fresh('stopped');
    const r = await runUntil(args(out), async () => (await done(out)) >= 2);
    expect(r.signalled).toBe(true);
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/error \[E_ABORTED\]: .*stopped after \d+ of \d+.*stopped by SIGTERM/);
    const names = await readdir(out, { recursive: true });
    expect(names.filter((n) => /\.lock$|\.tmp$/.test(String(n)))).toEqual([]);
    const n = await done(out);
    expect(n).toBeGreaterThanOrEqual(2);
    for (const j of names.filter((x) => String(x).endsWith('progress.jsonl'))) expect((await readFile(join(out, String(j)), 'utf8')).endsWith('\n'), String(j)).toBe(true);
    expect(n, 'stopped before the end').toBeLessThan(await done(join(ref, refDir)));
    const again = spawn(process.execPath, [bin, ...args(out)], { stdio: 'ignore' });
    expect(await new Promise((res) => again.on('close', res))).toBe(0);
    const skip = ['progress.jsonl', 'run.json'];
    expectSameTree(await tree(join(ref, refDir), skip), await tree(out, skip));
  }, 60_000);
});
