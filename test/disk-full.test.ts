/**
 * A full or read-only disk in the middle of an output (issue 21). The built
 * CLI runs under test/fault-shim.mjs, which makes every write fail with
 * ENOSPC (or EACCES) once a given number of bytes has been written under the
 * output folder (the crossing write is short, as on a real full disk). The
 * failure points are fractions of what an uninterrupted run writes. Each
 * must give one `genaug: error [E_IO]` line naming a path under the output
 * and the cause in plain words (no stack), leave no temporary file, keep the
 * outputs already complete intact (the done stages' files match their
 * run.json hashes and the uninterrupted run's bytes; every image written
 * decodes), and a rerun once the disk is fine must end with the same bytes
 * as the uninterrupted run.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { filesUnder, tempFolder } from './helpers.js';
import { smallConfig } from './pipeline-fixture.js';

const exec = promisify(execFile);
const repo = join(__dirname, '..');
const bin = join(repo, 'bin', 'genaug.js');
const shim = join(repo, 'test', 'fault-shim.mjs');
const tmp = tempFolder('genaug-diskfull-');

interface Fault {
  /** Folder the faults (and the count) apply to. */
  under: string;
  after?: number;
  code?: 'ENOSPC' | 'EACCES';
  /** File the shim writes the bytes written into. */
  count?: string;
}

async function genaug(args: string[], fault?: Fault): Promise<{ code: number; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (fault) {
    env.GENAUG_FAULT_UNDER = fault.under;
    if (fault.after !== undefined) env.GENAUG_FAULT_AFTER = String(fault.after);
    if (fault.code) env.GENAUG_FAULT_CODE = fault.code;
    if (fault.count) env.GENAUG_FAULT_COUNT = fault.count;
  }
  try {
    const r = await exec(process.execPath, [...(fault ? ['--import', shim] : []), bin, ...args], { env, maxBuffer: 1 << 26, timeout: 120_000 });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, stderr: x.stderr };
  }
}


const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
/** Journals record completion order and attempts; run.json and the report record times. */
const compared = (f: string) => !/(^|\/)(progress|journal|answers)\.jsonl$|(^|\/)run\.json$|^report\//.test(f);

async function expectSameOutputs(ref: string, got: string): Promise<void> {
  const a = (await filesUnder(ref)).filter(compared);
  const b = (await filesUnder(got)).filter(compared);
  expect(b).toEqual(a);
  for (const f of a) expect(await sha(join(got, f)), f).toBe(await sha(join(ref, f)));
}

const WORDS = { ENOSPC: 'no space left on device', EACCES: 'permission denied' };

/** One E_IO line naming a path under `dir`, the cause in plain words, no stack trace, no temporary file left. */
async function expectCleanFailure(r: { code: number; stderr: string }, dir: string, code: 'ENOSPC' | 'EACCES'): Promise<void> {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^genaug: error \\[E_IO\\]: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+`, 'm'));
  expect(r.stderr).toContain(WORDS[code]);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected error/);
  expect((await filesUnder(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
}

let root: string;
let refRun: string;
let refBytes: number;

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 4, images: 8 });
  await writeFile(join(root, 'ref.yaml'), stringify(smallConfig('run-ref', { embed: { model: 'features', real_crop_padding: 6, workers: 0 } })));
  refRun = join(root, 'run-ref');
  const r = await genaug(['run', join(root, 'ref.yaml'), '-q'], { under: refRun, count: join(root, 'ref.count') });
  expect(r.code, r.stderr).toBe(0);
  refBytes = Number(await readFile(join(root, 'ref.count'), 'utf8'));
  expect(refBytes).toBeGreaterThan(100_000);
}, 120_000);

/** The stages done before the disk filled: their files as run.json recorded them, and as the uninterrupted run wrote them. */
async function expectDoneStagesIntact(dir: string): Promise<string[]> {
  const m = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as { stages: Record<string, { status: string; outputs: Array<{ path: string; sha256: string }> }> };
  const done = Object.entries(m.stages).filter(([, s]) => s.status === 'done');
  for (const [, s] of done) {
    for (const o of s.outputs) {
      expect(await sha(join(dir, o.path)), o.path).toBe(o.sha256);
      expect(o.sha256, o.path).toBe(await sha(join(refRun, o.path)));
    }
  }
  return done.map(([k]) => k);
}

describe('genaug run on a disk that fills up', () => {
  it('ENOSPC after 10 %, then (resumed) after 40 % and 40 % more of its bytes: E_IO each time, done stages intact; then the same bytes', async () => {
    const dir = join(root, 'run-full');
    const cfg = join(root, 'full.yaml');
    await writeFile(cfg, stringify(smallConfig('run-full', { embed: { model: 'features', real_crop_padding: 6, workers: 0 } })));
    const reached: string[][] = [];
    // Each run resumes the last one and fills the disk again further on (the budget is per run).
    for (const fraction of [0.1, 0.4, 0.4]) {
      const r = await genaug(['run', cfg, '-q'], { under: dir, after: Math.floor(fraction * refBytes), code: 'ENOSPC' });
      await expectCleanFailure(r, dir, 'ENOSPC');
      reached.push(await expectDoneStagesIntact(dir));
    }
    // The failures fell in different stages: the runs moved on.
    expect(reached[2]!.length).toBeGreaterThan(reached[0]!.length);
    const again = await genaug(['run', cfg, '-q']);
    expect(again.code, again.stderr).toBe(0);
    await expectSameOutputs(refRun, dir);
  }, 180_000);
});

describe('annotate and paste on a full or read-only disk', () => {
  const annotateArgs = (out: string) => ['annotate', '--images', join(refRun, 'generate', 'images'), '--manifest', join(refRun, 'generate', 'manifest.jsonl'), '--out', out, '--workers', '0', '-q'];
  const pasteArgs = (out: string) => ['paste', '--coco', join(root, 'data', 'annotations.json'), '--images', join(root, 'data', 'images'), '--pool', join(refRun, 'pool'), '--out', out, '--workers', '0', '--max-samples', '4', '-q'];

  /** Every image file in the folder decodes whole (none is a partial write under its final name). */
  async function expectWholeImages(dir: string): Promise<number> {
    const images = (await filesUnder(dir)).filter((f) => /\.(png|jpg)$/.test(f));
    for (const f of images) {
      const { info } = await sharp(join(dir, f)).raw().toBuffer({ resolveWithObject: true });
      expect(info.width, f).toBeGreaterThan(0);
    }
    return images.length;
  }

  it.each([
    ['annotate', [['ENOSPC', 0.5], ['EACCES', 0.3]]],
    ['paste', [['ENOSPC', 0.5]]],
  ] as const)('%s: E_IO on each fault (%j, of its bytes), whole files only, then the same bytes', async (cmd, faults) => {
    const args = cmd === 'annotate' ? annotateArgs : pasteArgs;
    const ref = join(root, `${cmd}-ref`);
    const r0 = await genaug(args(ref), { under: ref, count: join(root, `${cmd}.count`) });
    expect(r0.code, r0.stderr).toBe(0);
    const bytes = Number(await readFile(join(root, `${cmd}.count`), 'utf8'));
    const dir = join(root, `${cmd}-faults`);
    let whole = 0;
    for (const [code, fraction] of faults) {
      const r = await genaug(args(dir), { under: dir, after: Math.floor(fraction * bytes), code });
      await expectCleanFailure(r, dir, code);
      const n = await expectWholeImages(dir);
      expect(n, 'it failed in the middle: more outputs complete than before').toBeGreaterThan(whole);
      whole = n;
    }
    const again = await genaug(args(dir));
    expect(again.code, again.stderr).toBe(0);
    await expectSameOutputs(ref, dir);
  }, 120_000);
});
