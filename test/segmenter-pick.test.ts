/**
 * X-Paste's pick among several segmenters (spec ALGORITHMS.md §2.2): every
 * segmenter's mask, the image on white outside it, CLIP ×100 against "a photo
 * of {name}", the best mask kept per image.
 *
 * The oracle is computed by hand. The image's left half is red (255, 0, 0) and
 * its right half green (0, 255, 0). Segmenter R finds red > mean (the left
 * half), G green > mean (the right half). The CLIP stand-in's image embedding
 * is (sum of the normalised red plane, sum of the normalised green plane) and
 * its text embedding a fixed direction: (1, 0) for "redness", (0, 1) for
 * "greenness". R's composite has red 255 everywhere and green 0 | 255 (mean
 * 127.5 after the symmetric resize and centre crop), G's red 255 | 0 and green
 * 255 everywhere; so each score is 100·cos of two known 2-vectors.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';

import { annotate, type JournalLine } from '../ts/curate/annotate.js';
import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { ClipModel } from '../ts/models/clip.js';
import { Segmenter } from '../ts/models/segmenter.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { writeClipFolder, type TinyClip } from './clip-helpers.js';
import { expectError, tempFolder, tree } from './helpers.js';
import { segmenterModel } from './onnx-builder.js';

const tmp = tempFolder('genaug-seg-pick-');
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];
const norm = (v: number, c: number) => (v / 255 - (MEAN[c] as number)) / (STD[c] as number);
const score = (e: [number, number], t: [number, number]) => (100 * (e[0] * t[0] + e[1] * t[1])) / Math.hypot(...e) / Math.hypot(...t);
// Mean normalised (red, green) of each candidate's composite on white.
const E_RED: [number, number] = [norm(255, 0), norm(127.5, 1)];
const E_GREEN: [number, number] = [norm(127.5, 0), norm(255, 1)];

let dir: string;
let red: string;
let green: string;
let clipRed: string;
let clipGreen: string;
let images: string;

/** The CLIP stand-in: 16² input, image = (Σ red plane, Σ green plane), text = `dir` whatever the words. */
function standIn(direction: [number, number]): TinyClip {
  const size = 16;
  const wv = new Float32Array(3 * size * size * 2);
  for (let i = 0; i < size * size; i++) {
    wv[i * 2] = 1; // red plane -> dim 0
    wv[(size * size + i) * 2 + 1] = 1; // green plane -> dim 1
  }
  const vocab = 49408;
  return { size, dim: 2, vocab, embedWidth: 1, wv, emb: new Float32Array(vocab).fill(1), wt: Float32Array.from(direction) };
}

async function halves(path: string, w = 32, h = 32): Promise<void> {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(y * w + x) * 3 + (x < w / 2 ? 0 : 1)] = 255;
  await mkdir(join(path, '..'), { recursive: true });
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

const lines = async (p: string) => (await readFile(p, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as JournalLine);

beforeAll(async () => {
  dir = tmp.dir();
  red = await segmenterModel({ width: 32, height: 32, channel: 0 }).write(join(dir, 'red.onnx'));
  green = await segmenterModel({ width: 32, height: 32, channel: 1 }).write(join(dir, 'green.onnx'));
  clipRed = await writeClipFolder(join(dir, 'clip-red'), 'split', standIn([1, 0]));
  clipGreen = await writeClipFolder(join(dir, 'clip-green'), 'split', standIn([0, 1]));
  images = join(dir, 'images');
  await halves(join(images, 'apple', 'a.png'));
});

describe('X-Paste: several segmenters, the CLIP pick', () => {
  it('keeps the mask CLIP scores best, whatever the order, and records every candidate', async () => {
    const cases = [
      { clip: clipRed, models: [green, red], picked: 1, bbox: [0, 0, 16, 32], scores: [score(E_GREEN, [1, 0]), score(E_RED, [1, 0])] },
      { clip: clipRed, models: [red, green], picked: 0, bbox: [0, 0, 16, 32], scores: [score(E_RED, [1, 0]), score(E_GREEN, [1, 0])] },
      { clip: clipGreen, models: [red, green], picked: 1, bbox: [16, 0, 16, 32], scores: [score(E_RED, [0, 1]), score(E_GREEN, [0, 1])] },
    ];
    // By hand: 99.65 and 3.33 against "redness", 8.33 and 99.94 against "greenness".
    expect(cases.map((c) => c.scores.map((s) => s.toFixed(2)))).toEqual([['3.33', '99.65'], ['99.65', '3.33'], ['8.33', '99.94']]);
    for (const [k, c] of cases.entries()) {
      const out = join(dir, `pool-${k}`);
      const names = c.models.map((m) => (m === red ? 'red.onnx' : 'green.onnx'));
      const r = await annotate({ images, out, method: 'segmenter', models: { segmenters: c.models, clip: c.clip }, workers: 0 });
      expect(r).toMatchObject({ images: 1, kept: 1, picks: { [names[c.picked] as string]: 1, [names[1 - c.picked] as string]: 0 } });
      const [line] = await lines(join(out, 'progress.jsonl'));
      expect(line?.bbox).toEqual(c.bbox);
      expect(line?.segmenters?.picked).toBe(c.picked);
      expect(line?.segmenters?.candidates.map((x) => x.model)).toEqual(names);
      expect(line?.segmenters?.candidates.map((x) => x.areaFraction)).toEqual([0.5, 0.5]);
      line?.segmenters?.candidates.forEach((x, i) => expect(x.clipScore).toBeCloseTo(c.scores[i] as number, 2));
      // The decision is in the pool index too, and the crop is the picked half.
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
      expect(index.categories.apple[0].segmenters).toEqual(line?.segmenters);
      const crop = await sharp(join(out, 'instances', 'apple', 'apple_a.png')).raw().toBuffer({ resolveWithObject: true });
      expect([crop.info.width, crop.info.height]).toEqual([16, 32]);
      expect([...crop.data.subarray(0, 4)]).toEqual(c.bbox[0] === 0 ? [255, 0, 0, 255] : [0, 255, 0, 255]);
    }
  });

  it('in-process models give the same pick and bytes as models loaded from paths, in a worker pool or not', async () => {
    const segs = [await Segmenter.load({ model: green }), await Segmenter.load({ model: red })];
    const clip = await ClipModel.open(clipRed, { require: 'both' });
    try {
      await annotate({ images, out: join(dir, 'inproc'), method: 'segmenter', segmenters: segs, clip });
    } finally {
      await clip.close();
      for (const s of segs) await s.release();
    }
    await annotate({ images, out: join(dir, 'paths'), method: 'segmenter', models: { segmenters: [green, red], clip: clipRed }, workers: 0 });
    await annotate({ images, out: join(dir, 'pooled'), method: 'segmenter', models: { segmenters: [green, red], clip: clipRed }, workers: 2 });
    const a = await tree(join(dir, 'inproc'), []);
    expect([...a.keys()].sort()).toEqual(['annotations.json', 'index.json', 'instances/apple/apple_a.png', 'progress.jsonl', 'rejected.jsonl']);
    const picks = await Promise.all(['inproc', 'paths', 'pooled'].map(async (d) => (await lines(join(dir, d, 'progress.jsonl')))[0]?.segmenters?.picked));
    expect(picks).toEqual([1, 1, 1]);
    for (const d of ['paths', 'pooled']) {
      const b = await tree(join(dir, d), []);
      for (const f of ['annotations.json', 'instances/apple/apple_a.png']) expect(b.get(f)?.equals(a.get(f) as Buffer)).toBe(true);
    }
  });

  it('one segmenter in the list is today\'s single-segmenter path, byte for byte, with no CLIP model', async () => {
    await annotate({ images, out: join(dir, 'single'), method: 'segmenter', models: { segmenter: red }, workers: 0 });
    await annotate({ images, out: join(dir, 'list1'), method: 'segmenter', models: { segmenters: [red] }, workers: 0 });
    const a = await tree(join(dir, 'single'), []);
    const b = await tree(join(dir, 'list1'), []);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(b.get(k)?.equals(v)).toBe(true);
    expect((await readFile(join(dir, 'single', 'progress.jsonl'), 'utf8')).includes('segmenters')).toBe(false);
  });

  it('a rejected pick keeps its candidates in rejected.jsonl', async () => {
    // With the area bound at 0.4 the picked half (0.5) is too large: rejected, with the why.
    const out = join(dir, 'rejected');
    const r = await annotate({ images, out, method: 'segmenter', models: { segmenters: [red, green], clip: clipGreen }, maxFraction: 0.4, workers: 0 });
    expect(r).toMatchObject({ kept: 0, rejected: 1 });
    const [rej] = await lines(join(out, 'rejected.jsonl'));
    expect(rej?.status).toBe('rejected');
    expect(rej?.segmenters?.picked).toBe(1);
    expect(rej?.segmenters?.candidates).toHaveLength(2);
  });

  it('several segmenters without a CLIP model, or both forms at once, are refused before any image', async () => {
    await expectError(annotate({ images, out: join(dir, 'e1'), method: 'segmenter', models: { segmenters: [red, green] }, workers: 0 }), 'E_ARGUMENT', '2 segmenters need a CLIP model');
    await expectError(annotate({ images, out: join(dir, 'e2'), method: 'segmenter', models: { segmenter: red, segmenters: [green] }, workers: 0 }), 'E_ARGUMENT', 'not both');
    // A segmenter that does not load is one error (the probe), naming the file.
    const missing = join(dir, 'nope.onnx');
    await expectError(annotate({ images, out: join(dir, 'e3'), method: 'segmenter', models: { segmenters: [red, missing], clip: clipRed }, workers: 0 }), 'E_IO', missing);
  });

  it('genaug annotate: repeatable --segmenter with --clip; two without --clip exit non-zero with E_ARGUMENT', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'genaug.js');
    const run = promisify(execFile);
    const out = join(dir, 'cli');
    const r = await run(process.execPath, [bin, 'annotate', '--images', images, '--out', out, '--segmenter', red, '--segmenter', green, '--clip', clipGreen, '--workers', '0', '-q']);
    expect(r.stdout).toMatch(/1 images: 1 instances kept/);
    expect(r.stdout).toContain('masks picked per segmenter (best CLIP score): red.onnx 0, green.onnx 1');
    const [line] = await lines(join(out, 'progress.jsonl'));
    expect([line?.segmenters?.picked, line?.bbox]).toEqual([1, [16, 0, 16, 32]]);
    const bad = await run(process.execPath, [bin, 'annotate', '--images', images, '--out', join(dir, 'cli2'), '--segmenter', red, '--segmenter', green]).catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/E_ARGUMENT.*--clip/);
  });
});

describe('run config: annotate.segmenters', () => {
  let root: string;
  const base = () => ({ name: 't', seed: 3, run_dir: 'run', real: { coco: 'data/annotations.json', images: 'data/images' } });
  const write = async (name: string, config: unknown) => {
    const p = join(root, name);
    await writeFile(p, stringify(config));
    return p;
  };
  beforeAll(async () => {
    root = join(dir, 'cfg');
    await writeRealDataset({ out: join(root, 'data'), seed: 5, images: 4 });
  });

  it('several need embed.clip; unknown paths, duplicates and a wrong method are named', async () => {
    const ann = (segmenters: string[], extra: Record<string, unknown> = {}) => ({ ...base(), annotate: { method: 'segmenter', segmenters, ...extra } });
    await expectError(loadConfig(await write('noclip.yaml', ann([red, green]))), 'E_FORMAT', 'embed.clip', '2 annotate.segmenters need a CLIP model');
    await expectError(loadConfig(await write('gone.yaml', { ...ann([red, join(root, 'gone.onnx')]), embed: { clip: clipRed } })), 'E_IO', 'annotate.segmenters[1]', 'gone.onnx');
    await expectError(loadConfig(await write('twice.yaml', { ...ann([red, red]), embed: { clip: clipRed } })), 'E_FORMAT', 'annotate.segmenters[1]', 'listed twice');
    await expectError(loadConfig(await write('both.yaml', ann([red], { segmenter: green }))), 'E_FORMAT', 'not both');
    await expectError(loadConfig(await write('method.yaml', { ...base(), annotate: { segmenters: [red] } })), 'E_FORMAT', "method 'segmenter'");
    await expectError(loadConfig(await write('clipgone.yaml', { ...ann([red, green]), embed: { clip: join(root, 'no-clip') } })), 'E_IO', 'embed.clip');
    // One segmenter in the list needs no CLIP model.
    const one = await loadConfig(await write('one.yaml', ann([red])));
    expect(one.paths.segmenters).toEqual([red]);
  });

  it('genaug run: the annotate stage picks per image and records the candidates, which the filter ledger and the report show', async () => {
    const cfg = await loadConfig(
      await write('run.yaml', {
        ...base(),
        plan: { per_class: 1, width: 64, height: 64 },
        annotate: { method: 'segmenter', segmenters: [red, green], min_area_fraction: 0, max_area_fraction: 1 },
        embed: { clip: clipGreen },
      }),
    );
    await runPipeline(cfg);
    const journal = await lines(join(cfg.paths.runDir, 'annotate', 'progress.jsonl'));
    expect(journal.filter((x) => x.segmenters).length).toBeGreaterThan(0);
    for (const l of journal.filter((x) => x.status !== 'failed')) {
      const c = l.segmenters?.candidates ?? [];
      expect(c.map((x) => x.model)).toEqual(['red.onnx', 'green.onnx']);
      // The first best score wins.
      const best = Math.max(...c.map((x) => x.clipScore));
      expect(l.segmenters?.picked).toBe(c.findIndex((x) => x.clipScore === best));
    }
    // The run's ledger carries each image's pick beside the filter's decision.
    const ledger = (await readFile(join(cfg.paths.runDir, 'filter', 'decisions.jsonl'), 'utf8')).trim().split('\n').map((x) => JSON.parse(x) as { file: string; segmenters?: unknown });
    const byFile = new Map(journal.map((l) => [l.file, l.segmenters]));
    expect(ledger.filter((d) => d.segmenters).length).toBe(journal.filter((l) => l.segmenters).length);
    for (const d of ledger) expect(d.segmenters).toEqual(byFile.get(d.file));
    // The report counts each segmenter's picks (the oracle: the journal's picked indices) and their fate in the filter.
    const html = await readFile(join(cfg.paths.runDir, 'report', 'report.html'), 'utf8');
    const table = /<table id="segmenter-table">(.*?)<\/table>/.exec(html)?.[1] ?? '';
    const picked = (i: number) => journal.filter((l) => l.segmenters?.picked === i).length;
    const keptFiles = new Set(ledger.filter((d) => (d as { status?: string }).status === 'kept').map((d) => d.file));
    const kept = (i: number) => journal.filter((l) => l.segmenters?.picked === i && keptFiles.has(l.file)).length;
    expect(table).toContain(`<tr><td>red.onnx</td><td>${picked(0)}</td><td>${kept(0)}</td>`);
    expect(table).toContain(`<tr><td>green.onnx</td><td>${picked(1)}</td><td>${kept(1)}</td>`);
  });
});
