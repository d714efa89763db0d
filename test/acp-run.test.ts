/**
 * Auto Cherry-Picker whole inside `genaug run`, through the built CLI: `genaug demo --preset acp` (scene graphs and
 * layouts from the loopback stand-in LLM, the procedural scene generator with planted failures, CLIS-I by the
 * stand-in VLM + judge, best-of-N per scene graph, COCO of the kept scenes). Its dataset is read back with a plain
 * reader written here (the COCO format's own rules: boxes, rectangle polygons, one annotation per layout object,
 * categories by name) against the plan's layouts scaled to each image and against the pixels; the best-of-N choice
 * against an argmax recomputed from the scores table; and a demo SIGKILLed during the score stage, then run again,
 * ends with the same bytes as an uninterrupted one.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { stringify } from 'yaml';

import { generateProceduralScene, sceneTruthOf, SHAPE_CLASSES, writeRealDataset } from '../ts/generate/procedural-world.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { expectError, expectSameTree, tempFolder, tree } from './helpers.js';

const tmp = tempFolder('genaug-acp-');
const bin = join(__dirname, '..', 'bin', 'genaug.js');
const IMAGES = '12';

/** Runs the demo; with `kill`, SIGKILLs it as soon as `kill()` (polled every 20 ms) says so. */
function demo(out: string, kill?: () => Promise<boolean>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'demo', '--preset', 'acp', '--out', out, '--images', IMAGES, '--seed', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let killed = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const poll = kill
      ? setInterval(async () => {
          if (!killed && (await kill()) && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        }, 20)
      : undefined;
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stderr, stdout });
    });
  });
}

const jsonl = async <T>(p: string): Promise<T[]> => (await readFile(p, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
const json = async <T>(p: string): Promise<T> => JSON.parse(await readFile(p, 'utf8')) as T;

interface Job {
  id: string;
  classes: string[];
  candidates: number;
  layout: Array<{ name: string; box: [number, number, number, number] }>;
}
interface Coco {
  images: Array<{ id: number; file_name: string; width: number; height: number; source_id: string }>;
  annotations: Array<{ id: number; image_id: number; category_id: number; bbox: number[]; area: number; segmentation: number[][]; layout_index: number; mask_source: string; iscrowd: number }>;
  categories: Array<{ id: number; name: string }>;
}

/** The polygon's area by the shoelace formula (COCO polygons are [x1, y1, x2, y2, ...] in pixels). */
function polygonArea(p: number[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i += 2) {
    const j = (i + 2) % p.length;
    s += p[i]! * p[j + 1]! - p[j]! * p[i + 1]!;
  }
  return Math.abs(s) / 2;
}

describe('genaug demo --preset acp', () => {
  let clean = '';

  it('plans, generates, judges, keeps the best of each scene graph and exports its scenes with one box per layout object', async () => {
    clean = tmp.fresh('clean');
    const r = await demo(clean);
    expect(r.code, r.stderr).toBe(0);
    const run = join(clean, 'run');
    const summary = await json<{ preset: string; totals: Record<string, number>; truth: Record<string, Record<string, number>>; fates: Record<string, Record<string, number>>; funnel: Record<string, Record<string, number>>; standin: { answered: number; refused: number }; stages: Record<string, { status: string; skipped?: string; summary: Record<string, unknown> }> }>(join(clean, 'summary.json'));
    expect(summary.preset).toBe('acp');
    // Everything the clients asked the stand-in was answered; pool and paste are not part of ACP.
    expect(summary.standin.refused).toBe(0);
    expect(summary.standin.answered).toBeGreaterThan(0);
    expect(summary.stages.pool!.skipped).toMatch(/output 'scenes'/);
    expect(summary.stages.paste!.skipped).toMatch(/output 'scenes'/);
    expect(summary.stages.score!.summary.clis_i).toBe('judge');

    const jobs = new Map((await jsonl<Job>(join(run, 'plan', 'plan.jsonl'))).map((j) => [j.id, j]));
    expect(jobs.size).toBe(8);
    for (const j of jobs.values()) expect(j.layout.length).toBeGreaterThan(0);
    const gen = await jsonl<{ file: string; job: string; status: string; truth: string }>(join(run, 'generate', 'generated.jsonl'));
    expect(gen).toHaveLength(32);
    const scores = await jsonl<{ id: string; job: string; clis_i: number | null; clis_l: number; clis_l_status: string }>(join(run, 'score', 'scores.jsonl'));
    const decisions = await jsonl<{ file: string; status: string; reason?: string; truth: string }>(join(run, 'filter', 'decisions.jsonl'));
    const kept = new Set((await jsonl<{ id: string }>(join(run, 'filter', 'kept.jsonl'))).map((k) => k.id));

    // Best-of-N, recomputed: per job the first highest CLIS-I that is not the judge's −1 sentinel.
    const best = new Map<string, { id: string; s: number }>();
    for (const s of scores) {
      if (s.clis_i === null || s.clis_i === -1) continue;
      const b = best.get(s.job);
      if (!b || s.clis_i > b.s) best.set(s.job, { id: s.id, s: s.clis_i });
    }
    expect([...kept].sort()).toEqual([...best.values()].map((b) => b.id).sort());
    expect(kept.size).toBe(jobs.size);
    // CLIS-L is kept as a score of every scene (the same for the candidates of one layout).
    for (const s of scores) expect(typeof s.clis_l).toBe('number');
    for (const j of jobs.keys()) expect(new Set(scores.filter((s) => s.job === j).map((s) => s.clis_l)).size).toBe(1);

    // Every planted failure's fate: a black image is never graded (−1 sentinel) and so never kept; a scene with a
    // missing, misplaced or off-class object loses to a clean candidate of its scene graph when there is one.
    const truthOf = new Map(gen.map((g) => [g.file, g.truth]));
    const kinds = new Set(gen.map((g) => g.truth));
    for (const k of ['ok', 'blank', 'missing-object', 'misplaced-object', 'off-class-object']) expect(kinds, k).toContain(k);
    for (const d of decisions) {
      expect(d.reason === undefined, d.file).toBe(d.status === 'kept');
      if (d.truth === 'blank') expect(d.reason, d.file).toMatch(/^acp: unparseable-judge-answer/);
      else if (d.status !== 'kept') expect(d.reason, d.file).toMatch(/^acp: not-best-of-n \(clis_i [\d.]+, job scene-\w+, best [\d.]+\)/);
    }
    for (const [job] of jobs) {
      const mine = gen.filter((g) => g.job === job);
      const winner = mine.find((g) => kept.has(g.file))!;
      if (mine.some((g) => g.truth === 'ok')) expect(winner.truth, job).toBe('ok');
    }
    expect(summary.truth.blank!.kept).toBe(0);
    expect(summary.truth.ok!.kept).toBe(kept.size - [...kept].filter((f) => truthOf.get(f) !== 'ok').length);

    // The dataset, read back by its own rules.
    const coco = await json<Coco>(join(run, 'dataset', 'coco', 'annotations.json'));
    const catName = new Map(coco.categories.map((c) => [c.id, c.name]));
    expect(coco.categories.map((c) => c.name)).toEqual(SHAPE_CLASSES.map((k) => k.name));
    expect(coco.images.map((im) => im.file_name).sort()).toEqual([...kept].sort());
    const jobOf = new Map(gen.map((g) => [g.file, g.job]));
    let objects = 0;
    for (const im of coco.images) {
      expect(im.source_id).toBe(im.file_name);
      const meta = await sharp(join(run, 'dataset', 'coco', 'images', im.file_name)).metadata();
      expect([meta.width, meta.height]).toEqual([im.width, im.height]);
      const { data } = await sharp(join(run, 'dataset', 'coco', 'images', im.file_name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const layout = jobs.get(jobOf.get(im.file_name)!)!.layout;
      const anns = coco.annotations.filter((a) => a.image_id === im.id);
      // One annotation per layout object, in layout order, its category by name.
      expect(anns.map((a) => a.layout_index)).toEqual(layout.map((_, k) => k));
      expect(anns.map((a) => catName.get(a.category_id))).toEqual(layout.map((o) => o.name));
      for (const [k, a] of anns.entries()) {
        const [x, y, w, h] = layout[k]!.box;
        const want = [x * im.width, y * im.height, w * im.width, h * im.height];
        a.bbox.forEach((v, q) => expect(Math.abs(v - want[q]!), `${im.file_name} object ${k}`).toBeLessThanOrEqual(0.006));
        // No SAM in the demo: the documented fallback mask is the box as a rectangle polygon.
        expect(a.mask_source).toBe('box');
        expect(a.iscrowd).toBe(0);
        const [bx, by, bw, bh] = a.bbox as [number, number, number, number];
        expect(a.segmentation).toHaveLength(1);
        expect(a.segmentation[0]).toEqual([bx, by, +(bx + bw).toFixed(2), by, +(bx + bw).toFixed(2), +(by + bh).toFixed(2), bx, +(by + bh).toFixed(2)]);
        expect(Math.abs(polygonArea(a.segmentation[0]!) - a.area)).toBeLessThan(0.05 * bw + 0.05 * bh + 0.01);
        // In a clean kept scene the box holds its object: its class colour is the commonest saturated colour there.
        if (truthOf.get(im.file_name) === 'ok') {
          const counts = new Map<string, number>();
          for (let py = Math.ceil(by); py < Math.floor(by + bh); py++) {
            for (let px = Math.ceil(bx); px < Math.floor(bx + bw); px++) {
              const p = 3 * (py * im.width + px);
              const c = [data[p]!, data[p + 1]!, data[p + 2]!];
              if (Math.max(...c) - Math.min(...c) < 50) continue;
              const near = SHAPE_CLASSES.reduce((m, s) => ((s.colour[0] - c[0]!) ** 2 + (s.colour[1] - c[1]!) ** 2 + (s.colour[2] - c[2]!) ** 2 < (m.colour[0] - c[0]!) ** 2 + (m.colour[1] - c[1]!) ** 2 + (m.colour[2] - c[2]!) ** 2 ? s : m));
              counts.set(near.name, (counts.get(near.name) ?? 0) + 1);
            }
          }
          const top = [...counts].sort((p, q) => q[1] - p[1])[0];
          expect(top?.[0], `${im.file_name} object ${k}`).toBe(layout[k]!.name);
        }
      }
      objects += anns.length;
    }
    expect(coco.annotations).toHaveLength(objects);
    expect(new Set(coco.annotations.map((a) => a.id)).size).toBe(objects);
    // The report's funnel ends in the objects of the dataset's scenes, per class.
    const perClass: Record<string, number> = {};
    for (const a of coco.annotations) perClass[catName.get(a.category_id)!] = (perClass[catName.get(a.category_id)!] ?? 0) + 1;
    // The funnel counts layout objects: planned = candidates x the class's objects in each layout; every object of a
    // kept scene is in the dataset (no SAM: each gets its box).
    for (const [k, row] of Object.entries(summary.funnel)) {
      expect(row['objects in the scenes'], k).toBe(perClass[k] ?? 0);
      expect(row['kept by filters'], k).toBe(perClass[k] ?? 0);
      expect(row.planned, k).toBe([...jobs.values()].reduce((n, j) => n + j.candidates * j.layout.filter((o) => o.name === k).length, 0));
    }
    // summary.json's fate of each planted failure: the black images all end as the judge's −1.
    expect(summary.fates.blank).toEqual({ 'filter: acp: unparseable-judge-answer': gen.filter((g) => g.truth === 'blank').length });
    expect(Object.values(summary.fates).reduce((n, f) => n + Object.values(f).reduce((a, b) => a + b, 0), 0)).toBe(32);
    expect(summary.totals.kept).toBe(kept.size);
    // The report shows ACP's own scores and output.
    const html = await readFile(join(run, 'report', 'report.html'), 'utf8');
    for (const t of ['CLIS-I (judge; best of N per scene graph)', 'CLIS-L of the layouts', `${objects} objects in the generated scenes of dataset/coco`]) expect(html).toContain(t);
  }, 120_000);

  it('SIGKILLed during the score stage and run again, it resumes from its journal and ends with the same bytes', async () => {
    const out = tmp.fresh('killed');
    // Killed once the judge has finished a few scenes (the journal's settings line, then one line per scene).
    const journal = join(out, 'run', 'score', 'clis-i.progress.jsonl');
    const first = await demo(out, async () => existsSync(journal) && (await readFile(journal, 'utf8')).split('\n').filter(Boolean).length >= 4);
    expect(first.signal, first.stderr).toBe('SIGKILL');
    expect(first.stderr).not.toMatch(/score: done/);
    const journaled = (await readFile(journal, 'utf8')).split('\n').filter(Boolean).length - 1;
    const again = await demo(out);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/score: resuming/);
    // The journaled scenes were not judged again: fewer requests than the uninterrupted run (whose plan answers the
    // resumed run also takes from its cache).
    const asked = (f: string) => json<{ standin: { answered: number } }>(join(f, 'summary.json')).then((x) => x.standin.answered);
    expect(journaled).toBeGreaterThanOrEqual(3);
    expect(await asked(out)).toBeLessThan(await asked(clean));
    // Journals (LLM answer caches, progress) record timing; the report and run.json record seconds.
    const skip = ['answers.jsonl', 'journal.jsonl', 'progress.jsonl', 'clis-i.progress.jsonl'];
    for (const stage of ['plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'dataset']) {
      expectSameTree(await tree(join(clean, 'run', stage), skip), await tree(join(out, 'run', stage), skip));
    }
  }, 120_000);
});

/** A float32 .npy read by the format's own rules (magic, version, header dict, little-endian rows). */
async function readNpy(path: string): Promise<{ rows: number; dim: number; data: Float32Array }> {
  const b = await readFile(path);
  expect(b.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const v = b[6]!;
  const hl = v === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = v === 1 ? 10 : 12;
  const header = b.subarray(start, start + hl).toString('latin1');
  expect(header).toMatch(/'descr': '<f4'/);
  expect(header).toMatch(/'fortran_order': False/);
  const [rows, dim] = /'shape': \((\d+), (\d+)\)/.exec(header)!.slice(1).map(Number) as [number, number];
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < rows * dim; i++) data[i] = b.readFloatLE(start + hl + 4 * i);
  return { rows, dim, data };
}

describe('genaug run, output scenes, with no server at all', () => {
  it('plans from the real layouts and picks the best of N by the features proxy of CLIS-I, recomputed here', async () => {
    const dir = tmp.fresh('features');
    await writeRealDataset({ out: join(dir, 'data'), seed: 5, images: 12 });
    const config = {
      name: 'acp-features', preset: 'acp', seed: 2, run_dir: 'run', output: 'scenes',
      real: { coco: 'data/annotations.json', images: 'data/images' },
      plan: { strategy: 'scene', scenes: 5, candidates: 3, width: 96, height: 96 },
      generate: { backend: 'procedural', concurrency: 2, failure_rates: { blank: 0.2, missing_object: 0.2 } },
      annotate: { method: 'corners', workers: 0 },
      embed: { model: 'features', real_crop_padding: 4, workers: 0 },
      report: { thumbnails: 4, thumb_size: 48 },
    };
    await writeFile(join(dir, 'run.yaml'), stringify(config));
    const r = await runPipeline(await loadConfig(join(dir, 'run.yaml'), { checkServers: false }), { log: () => undefined });
    const run = r.runDir;
    expect(r.manifest.stages.score!.summary.clis_i).toBe('features');
    const jobs = await jsonl<Job & { provenance: { source: string } }>(join(run, 'plan', 'plan.jsonl'));
    expect(jobs).toHaveLength(5);
    for (const j of jobs) expect(j.provenance.source).toBe('real-layout');
    // The oracle: per layout object (annotate's rows, one per object, each with its box), the mean cosine to each
    // class's real crops in double precision; the margin own - best other; per scene 100 x the mean margin.
    const real = await readNpy(join(run, 'embed', 'real.npy'));
    const gen = await readNpy(join(run, 'embed', 'generated.npy'));
    const realRows = await jsonl<{ label: number }>(join(run, 'embed', 'real.index.jsonl'));
    const genRows = await jsonl<{ file: string; label: number }>(join(run, 'embed', 'generated.index.jsonl'));
    expect(genRows).toHaveLength(gen.rows);
    const unit = (m: { dim: number; data: Float32Array }, i: number) => {
      const v = Array.from(m.data.subarray(i * m.dim, (i + 1) * m.dim));
      const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      return v.map((x) => (n > 0 ? x / n : 0));
    };
    const classes = Math.max(...realRows.map((x) => x.label), ...genRows.map((x) => x.label)) + 1;
    const margin = genRows.map((g, i) => {
      const q = unit(gen, i);
      const sums = new Array(classes).fill(0);
      const counts = new Array(classes).fill(0);
      realRows.forEach((rr, j) => {
        const d = unit(real, j);
        sums[rr.label] += q.reduce((a, x, k) => a + x * d[k]!, 0);
        counts[rr.label]++;
      });
      const mean = sums.map((s2, c) => (counts[c] ? s2 / counts[c] : Number.NaN));
      const other = Math.max(...mean.filter((m, c) => c !== g.label && Number.isFinite(m)));
      return mean[g.label]! - other;
    });
    const scores = await jsonl<{ id: string; job: string; clis_i: number; objects: number }>(join(run, 'score', 'scores.jsonl'));
    const gl = await jsonl<{ file: string; job: string; status: string; truth: string }>(join(run, 'generate', 'generated.jsonl'));
    expect(scores).toHaveLength(gl.filter((g) => g.status === 'ok').length);
    for (const s of scores) {
      const mine = margin.filter((_, i) => genRows[i]!.file === s.id);
      expect(mine).toHaveLength(s.objects);
      expect(Math.abs(s.clis_i - (100 * mine.reduce((a, b) => a + b, 0)) / mine.length), s.id).toBeLessThan(1e-3);
    }
    // Best of N per scene graph by that score, and the dataset is those scenes.
    const kept = (await jsonl<{ id: string }>(join(run, 'filter', 'kept.jsonl'))).map((k) => k.id);
    const want = jobs.map((j) => scores.filter((s) => s.job === j.id).reduce((a, b) => (b.clis_i > a.clis_i ? b : a)).id);
    expect(kept.sort()).toEqual(want.sort());
    const coco = await json<Coco>(join(run, 'dataset', 'coco', 'annotations.json'));
    expect(coco.images.map((im) => im.file_name).sort()).toEqual(kept.sort());
    expect(coco.annotations).toHaveLength(kept.reduce((n, f) => n + jobs.find((j) => j.id === gl.find((g) => g.file === f)!.job)!.layout.length, 0));

    // The config refuses what cannot run, before any work, naming the key.
    const refused = async (name: string, change: Record<string, unknown>, ...fragments: string[]) => {
      await writeFile(join(dir, name), stringify({ ...config, ...change }));
      await expectError(loadConfig(join(dir, name), { checkServers: false }), 'E_FORMAT', ...fragments);
    };
    await refused('a.yaml', { output: 'instances' }, 'filter.rules', "rule 'acp'", 'output: scenes');
    await refused('b.yaml', { plan: { strategy: 'template' } }, ': output:', 'plan.strategy: scene');
    await refused('c.yaml', { score: { clis_i: 'judge' } }, 'score.clis_i', 'vlm');
    await refused('d.yaml', { score: { clis_i: 'clip' } }, 'score.clis_i', 'embed.model: clip');
  }, 60_000);
});

describe('the scene generator (layout-conditioned stand-in)', () => {
  /** Pixels of each class colour inside a normalised box of a decoded image (nearest class colour of saturated pixels). */
  const inBox = (rgb: Buffer, W: number, H: number, box: readonly number[]) => {
    const counts = new Map<string, number>();
    for (let y = Math.ceil(box[1]! * H); y < Math.floor((box[1]! + box[3]!) * H); y++) {
      for (let x = Math.ceil(box[0]! * W); x < Math.floor((box[0]! + box[2]!) * W); x++) {
        const p = 3 * (y * W + x);
        const c = [rgb[p]!, rgb[p + 1]!, rgb[p + 2]!];
        if (Math.max(...c) - Math.min(...c) < 50) continue;
        const d = (s: (typeof SHAPE_CLASSES)[number]) => (s.colour[0] - c[0]!) ** 2 + (s.colour[1] - c[1]!) ** 2 + (s.colour[2] - c[2]!) ** 2;
        const near = SHAPE_CLASSES.reduce((m, s) => (d(s) < d(m) ? s : m));
        counts.set(near.name, (counts.get(near.name) ?? 0) + 1);
      }
    }
    return counts;
  };

  it('draws each layout object in its box, and each planted failure as it says; same seed, same bytes', async () => {
    const layout = [
      { name: 'disk', box: [0.04, 0.3, 0.28, 0.28] },
      { name: 'square', box: [0.36, 0.3, 0.28, 0.28] },
      { name: 'ring', box: [0.68, 0.05, 0.28, 0.28] },
    ];
    const seen = new Set<string>();
    for (let seed = 0; seed < 60 && seen.size < 5; seed++) {
      const r = await generateProceduralScene(layout, seed, { width: 100, height: 100, rates: { missing: 0.2, misplaced: 0.2, offClass: 0.2, blank: 0.1 } });
      expect(Buffer.compare(Buffer.from(r.png), Buffer.from((await generateProceduralScene(layout, seed, { width: 100, height: 100, rates: { missing: 0.2, misplaced: 0.2, offClass: 0.2, blank: 0.1 } })).png))).toBe(0);
      expect(r.truth).toBe(sceneTruthOf(seed, { missing: 0.2, misplaced: 0.2, offClass: 0.2, blank: 0.1 }));
      seen.add(r.truth);
      const { data } = await sharp(Buffer.from(r.png)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      if (r.truth === 'blank') {
        expect(Math.max(...data)).toBeLessThan(8);
        continue;
      }
      layout.forEach((o, k) => {
        const counts = inBox(data, 100, 100, o.box);
        const own = counts.get(o.name) ?? 0;
        const area = o.box[2]! * o.box[3]! * 10000;
        if (k !== r.failed) expect(own, `seed ${seed} ${r.truth} object ${k}`).toBeGreaterThan(0.3 * area);
        else if (r.truth === 'off-class-object') {
          expect(own, `seed ${seed}`).toBe(0);
          expect(r.drawn[k]!.name).not.toBe(o.name);
          expect(counts.get(r.drawn[k]!.name) ?? 0).toBeGreaterThan(0.3 * area);
        } else {
          // Missing or moved away: nothing of it in its box; a moved one is where `drawn` says.
          expect(own, `seed ${seed} ${r.truth}`).toBeLessThan(0.02 * area);
          if (r.truth === 'missing-object') expect(r.drawn[k]).toBeNull();
          else expect(inBox(data, 100, 100, r.drawn[k]!.box).get(o.name) ?? 0).toBeGreaterThan(0.3 * area);
        }
      });
    }
    expect([...seen].sort()).toEqual(['blank', 'misplaced-object', 'missing-object', 'off-class-object', 'ok']);
  });
});
