import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readNpy, writeNpy } from '../ts/io/npy.js';
import { cosine, oracleTopk, randomMatrix } from './helpers.js';

const run = promisify(execFile);
const bin = join(__dirname, '..', 'bin', 'genaug.js');

async function genaug(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

let dir: string;
const q = randomMatrix(120, 24, 1);
const d = randomMatrix(700, 24, 2);
const labels = new Int32Array(700).map((_, i) => (i * 13) % 6);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genaug-cli-'));
  await writeNpy(join(dir, 'q.npy'), q.data, [q.rows, q.dim]);
  await writeNpy(join(dir, 'd.npy'), d.data, [d.rows, d.dim]);
  await writeNpy(join(dir, 'l.npy'), BigInt64Array.from(labels, (v) => BigInt(v)), [700]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('genaug similarity', () => {
  it('topk writes int64 indices and float32 scores matching the oracle, also when the database is streamed', async () => {
    for (const extra of [[], ['--db-budget-mib', '0.01', '--chunk-rows', '50']]) {
      const r = await genaug('similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, 'd.npy'), '--k', '7', '--out', join(dir, 'tk'), '-q', ...extra);
      expect(r.code, r.stderr).toBe(0);
      const idx = await readNpy(join(dir, 'tk.indices.npy'));
      const sc = await readNpy(join(dir, 'tk.scores.npy'));
      expect(idx.dtype).toBe('int64');
      expect(idx.shape).toEqual([120, 7]);
      expect(sc.dtype).toBe('float32');
      for (let i = 0; i < q.rows; i++) {
        const want = oracleTopk(q, i, d, 7);
        for (let c = 0; c < 7; c++) {
          expect(Math.abs((sc.data as Float32Array)[i * 7 + c] as number - (want[c] as [number, number])[0])).toBeLessThan(2e-5);
          const j = Number((idx.data as BigInt64Array)[i * 7 + c]);
          expect(Math.abs(cosine(q, i, d, j) - (want[c] as [number, number])[0])).toBeLessThan(2e-5);
        }
      }
    }
  });

  it('class-mean writes M x C scores equal to the mean of cosines per class', async () => {
    const r = await genaug('similarity', 'class-mean', '--query', join(dir, 'q.npy'), '--db', join(dir, 'd.npy'), '--labels', join(dir, 'l.npy'), '--out', join(dir, 'cm'), '-q');
    expect(r.code, r.stderr).toBe(0);
    const s = await readNpy(join(dir, 'cm.scores.npy'));
    expect(s.shape).toEqual([120, 6]);
    for (const i of [0, 57, 119]) {
      for (let c = 0; c < 6; c++) {
        let sum = 0;
        let n = 0;
        for (let j = 0; j < d.rows; j++) if (labels[j] === c) (sum += cosine(q, i, d, j)), n++;
        expect(Math.abs(((s.data as Float32Array)[i * 6 + c] as number) - sum / n)).toBeLessThan(2e-5);
      }
    }
  });

  it('pairs writes pairs, scores, groups, a bool keep mask and a summary', async () => {
    const e = randomMatrix(80, 8, 3);
    e.data.set(e.data.subarray(5 * 8, 6 * 8), 60 * 8);
    await writeNpy(join(dir, 'e.npy'), e.data, [80, 8]);
    const r = await genaug('similarity', 'pairs', '--emb', join(dir, 'e.npy'), '--threshold', '0.9999', '--out', join(dir, 'p'), '-q');
    expect(r.code, r.stderr).toBe(0);
    const p = await readNpy(join(dir, 'p.pairs.npy'));
    expect(p.shape).toEqual([1, 2]);
    expect(Array.from(p.data as BigInt64Array)).toEqual([5n, 60n]);
    const keep = await readNpy(join(dir, 'p.keep.npy'));
    expect(keep.dtype).toBe('bool');
    expect((keep.data as Uint8Array)[60]).toBe(0);
    expect((keep.data as Uint8Array).reduce((s, v) => s + v, 0)).toBe(79);
    const summary = JSON.parse(await readFile(join(dir, 'p.summary.json'), 'utf8'));
    expect(summary).toMatchObject({ pairs: 1, kept: 79, dropped: 1, duplicateGroups: 1 });
    expect(summary.scoreHistogram.counts.reduce((s: number, v: number) => s + v, 0)).toBe(1);
    expect(summary.scoreHistogram.edges[0]).toBeCloseTo(0.9999, 6);
  });

  it('fails clearly: a missing file, a file that is not .npy, a bad option', async () => {
    const missing = await genaug('similarity', 'topk', '--query', join(dir, 'nope.npy'), '--db', join(dir, 'd.npy'), '--out', join(dir, 'x'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/E_IO.*nope\.npy/);
    await writeFile(join(dir, 'text.npy'), 'hello, not numpy');
    const notNpy = await genaug('similarity', 'topk', '--query', join(dir, 'text.npy'), '--db', join(dir, 'd.npy'), '--out', join(dir, 'x'));
    expect(notNpy.code).toBe(1);
    expect(notNpy.stderr).toMatch(/E_FORMAT.*text\.npy.*not an \.npy file/);
    const badK = await genaug('similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, 'd.npy'), '--out', join(dir, 'x'), '--k', 'ten');
    expect(badK.code).toBe(2);
    expect(badK.stderr).toMatch(/^genaug: error \[E_ARGUMENT\]: .*--k must be an integer/);
    const noOut = await genaug('similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, 'd.npy'));
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/^genaug: error \[E_ARGUMENT\]: required option '--out <prefix>' not specified/);
    const width = await genaug('similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, 'e.npy'), '--out', join(dir, 'x'));
    expect(width.code).toBe(1);
    expect(width.stderr).toMatch(/E_SHAPE.*same width/);
  });

  it('--help works from the built command (the help of every command is checked in-process below)', async () => {
    for (const cmd of [[], ['similarity', 'topk'], ['run']]) {
      const r = await genaug(...cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage: genaug/);
    }
  });
});

describe('genaug --help', () => {
  it('every command and option of the whole CLI is described', async () => {
    const { buildProgram } = await import('../ts/cli/main.js');
    type Cmd = { name(): string; description(): string; commands: readonly Cmd[]; options: readonly { flags: string; description: string }[]; helpInformation(): string };
    const seen: string[] = [];
    const walk = (c: Cmd, path: string) => {
      seen.push(path);
      expect(c.description(), `${path} has no description`).not.toBe('');
      for (const o of c.options) expect(o.description, `${path} ${o.flags} has no description`).not.toBe('');
      expect(c.helpInformation()).toMatch(/^Usage: /);
      for (const sub of c.commands) walk(sub, `${path} ${sub.name()}`);
    };
    walk(buildProgram({ print: () => undefined }) as unknown as Cmd, 'genaug');
    for (const cmd of ['paste', 'pool', 'embed', 'score', 'score against-real', 'filter', 'plan', 'priors', 'generate', 'annotate', 'gap', 'bnstats', 'similarity unique', 'demo', 'run', 'info']) expect(seen).toContain(`genaug ${cmd}`);
  });
});

describe('genaug --help reads in pipeline order', () => {
  type Opt = { flags: string; long?: string; mandatory: boolean; helpGroupHeading?: string };
  type Cmd = { name(): string; commands: readonly Cmd[]; options: readonly Opt[]; helpInformation(): string };
  const program = async () => (await import('../ts/cli/main.js')).buildProgram({ print: () => undefined }) as unknown as Cmd;

  it('lists the way in (demo, run) first, then the stages in pipeline order, then the tools, under a current description', async () => {
    const help = (await program()).helpInformation();
    expect(help.replace(/\s+/g, ' ')).toMatch(/Start with `genaug demo`/);
    const at = (heading: string) => help.indexOf(heading);
    expect(at('Start here:')).toBeGreaterThan(0);
    expect(at('Start here:')).toBeLessThan(at('Stages, in pipeline order'));
    expect(at('Stages, in pipeline order')).toBeLessThan(at('Many machines:'));
    expect(at('Many machines:')).toBeLessThan(at('Analysis and tools:'));
    const order = [...help.matchAll(/^ {2}([a-z]+)(?= )/gm)].map((m) => m[1]);
    expect(order).toEqual(['demo', 'run', 'priors', 'plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'pool', 'paste', 'export', 'worker', 'queue', 'gap', 'similarity', 'bnstats', 'info', 'help']);
    expect(help).not.toMatch(/^Commands:/m); // no stray group
  });

  it('marks every required option, in every command', async () => {
    let required = 0;
    const walk = (c: Cmd) => {
      const help = c.helpInformation().replace(/\n {20,}/g, ' ');
      for (const o of c.options.filter((x) => x.mandatory)) {
        required++;
        expect(help, `${c.name()} ${o.flags}`).toMatch(new RegExp(`\\s${o.flags.replace(/[<>[\]]/g, '\\$&')}\\s+required: `));
      }
      c.commands.forEach(walk);
    };
    walk(await program());
    expect(required).toBeGreaterThan(40);
    const topk = (await program()).commands.find((c) => c.name() === 'similarity')!.commands.find((c) => c.name() === 'topk')!;
    expect(topk.helpInformation()).toMatch(/--query <file> +required: query embeddings/);
    expect(topk.helpInformation()).toMatch(/--k <n> +neighbours per query row \(clamped to N\) \(default: 10\)/);
  });

  it('groups plan --help by strategy', async () => {
    const plan = (await program()).commands.find((c) => c.name() === 'plan')!;
    const help = plan.helpInformation();
    const headings = [...help.matchAll(/^(\S[^\n]*):$/gm)].map((m) => m[1]);
    expect(headings).toEqual([
      'Input, output and every strategy', 'llm strategy', 'scene strategy (ACP)', 'caption and alia strategies', 'ambiguity strategy',
      'Extra categories (template, divergen, llm, ambiguity; DiverGen)',
      'LLM and VLM endpoints (optional: without them the strategies fall back as said below)', 'Options',
    ]);
    const group = (flag: string) => plan.options.find((o) => o.long === flag)?.helpGroupHeading;
    expect(group('--modes')).toBe('llm strategy:');
    expect(group('--scenes')).toBe('scene strategy (ACP):');
    expect(group('--clip')).toBe('ambiguity strategy:');
    expect(group('--llm-url')).toMatch(/^LLM and VLM endpoints/);
  });

  it('prints every default as a user would type it', async () => {
    const { typedDefault } = await import('../ts/cli/main.js');
    expect(typedDefault(['divergen'])).toBe('divergen');
    expect(typedDefault(['coco', 'yolo'])).toBe('coco,yolo');
    expect(typedDefault([0.8, 1.2])).toBe('0.8,1.2');
    expect(typedDefault('')).toBe('""');
    expect(typedDefault('a photo of')).toBe('"a photo of"');
    expect(typedDefault(0.5)).toBe('0.5');
    const odd: string[] = [];
    const walk = (c: Cmd) => {
      for (const m of c.helpInformation().replace(/\n {20,}/g, ' ').matchAll(/default: ([^;)]*)/g)) {
        const v = m[1] as string;
        if (/^[[{]|0x|\^|^"[^ ]+"$|\bundefined\b|\bnull\b|NaN/.test(v)) odd.push(`${c.name()}: default: ${v}`);
      }
      c.commands.forEach(walk);
    };
    walk(await program());
    expect(odd).toEqual([]);
    const plan = (await program()).commands.find((c) => c.name() === 'plan')!.helpInformation().replace(/\s+/g, ' ');
    expect(plan).toContain('(stylised diversification) (default: divergen)');
    expect(plan).toContain('(choices: template, divergen, llm, scene, caption, alia, ambiguity; default: template)');
  });
});

describe('resumable file runs', () => {
  it('a killed topk run resumes from its journal and writes the same bytes as an uninterrupted run', async () => {
    const { topkFiles, classFiles } = await import('../ts/kernels/files.js');
    const { existsSync } = await import('node:fs');
    const qp = join(dir, 'q.npy');
    const dp = join(dir, 'd.npy');
    await topkFiles(qp, dp, 4, join(dir, 'clean'), { chunkRows: 25 });
    // Simulate a kill after the third chunk.
    let calls = 0;
    await expect(
      topkFiles(qp, dp, 4, join(dir, 'killed'), {
        chunkRows: 25,
        onProgress: () => {
          if (++calls === 3) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(existsSync(join(dir, 'killed.partial', 'journal.json'))).toBe(true);
    expect(existsSync(join(dir, 'killed.indices.npy'))).toBe(false);
    const notes: string[] = [];
    const r = await topkFiles(qp, dp, 4, join(dir, 'killed'), { chunkRows: 25, onNote: (n) => notes.push(n) });
    expect(r.resumedChunks).toBe(3);
    expect(notes.join()).toMatch(/resuming: 3 finished chunk/);
    expect(existsSync(join(dir, 'killed.partial'))).toBe(false);
    for (const f of ['indices', 'scores']) {
      expect((await readFile(join(dir, `killed.${f}.npy`))).equals(await readFile(join(dir, `clean.${f}.npy`)))).toBe(true);
    }
    // A partial folder from other parameters is discarded, not mixed in.
    calls = 0;
    await expect(
      topkFiles(qp, dp, 4, join(dir, 'other'), { chunkRows: 25, onProgress: () => { if (++calls === 2) throw new Error('killed'); } }),
    ).rejects.toThrow('killed');
    const notes2: string[] = [];
    const r2 = await topkFiles(qp, dp, 5, join(dir, 'other'), { chunkRows: 25, onNote: (n) => notes2.push(n) });
    expect(r2.resumedChunks).toBe(0);
    expect(notes2.join()).toMatch(/discarding/);
    // class-max resumes the same way.
    const lp = join(dir, 'l.npy');
    await classFiles('max', qp, dp, lp, join(dir, 'cmclean'), { chunkRows: 30 });
    calls = 0;
    await expect(
      classFiles('max', qp, dp, lp, join(dir, 'cmkilled'), { chunkRows: 30, onProgress: () => { if (++calls === 2) throw new Error('killed'); } }),
    ).rejects.toThrow('killed');
    const r3 = await classFiles('max', qp, dp, lp, join(dir, 'cmkilled'), { chunkRows: 30 });
    expect(r3.resumedChunks).toBe(2);
    expect((await readFile(join(dir, 'cmkilled.scores.npy'))).equals(await readFile(join(dir, 'cmclean.scores.npy')))).toBe(true);
  });
});

describe('float16 inputs', () => {
  it('topk on a float16 .npy equals topk on the same values in float32', async () => {
    const { float32ToFloat16Bits, float16BitsToFloat32 } = await import('../ts/io/npy.js');
    const bits = float32ToFloat16Bits(d.data);
    await writeNpy(join(dir, 'd16.npy'), bits, [d.rows, d.dim], { dtype: 'float16' });
    await writeNpy(join(dir, 'd16as32.npy'), float16BitsToFloat32(bits), [d.rows, d.dim]);
    for (const [name, db] of [['h', 'd16.npy'], ['f', 'd16as32.npy']] as const) {
      const r = await genaug('similarity', 'topk', '--query', join(dir, 'q.npy'), '--db', join(dir, db), '--k', '3', '--out', join(dir, `f16${name}`), '-q');
      expect(r.code, r.stderr).toBe(0);
    }
    for (const f of ['indices', 'scores']) {
      expect((await readFile(join(dir, `f16h.${f}.npy`))).equals(await readFile(join(dir, `f16f.${f}.npy`)))).toBe(true);
    }
  });
});

describe('error messages name the file and the global row', () => {
  it('a NaN deep in a chunked query file is reported with its file and row', async () => {
    const bad = randomMatrix(90, 24, 9);
    bad.data[61 * 24 + 5] = Number.NaN;
    await writeNpy(join(dir, 'nan.npy'), bad.data, [90, 24]);
    const r = await genaug('similarity', 'topk', '--query', join(dir, 'nan.npy'), '--db', join(dir, 'd.npy'), '--out', join(dir, 'nan'), '--chunk-rows', '25', '-q');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_NONFINITE.*nan\.npy row 61, column 5 is NaN/);
  });
});
