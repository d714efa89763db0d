// CLIS-L: the native scorer against a plain reference of the spec's formulas
// (ALGORITHMS.md §1.3) written here over plain objects, on thousands of random
// layouts in both modes, plus hand-computed scenes and bad inputs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { run } from '../ts/cli/main.js';

import {
  buildRelationPool,
  clisLayout,
  clisLayoutSync,
  normalizeName,
  poolFromAcpJson,
  poolToAcpJson,
  type Box,
  type NameSimilarity,
  type RelationExample,
  type SceneLayout,
} from '../ts/kernels/layout.js';
import { examplesFromCoco, examplesFromVisualGenome, imageSizesFromVisualGenome, nameSimilarityFromFunction, nameSimilarityFromTable, spatialRelation } from '../ts/curate/relations.js';
import { parseCoco } from '../ts/io/coco.js';
import { capabilities } from '../ts/native/load.js';
import { seededRandom } from '../ts/util/random.js';
import { expectCode } from './helpers.js';

// ------------------------------------------------------------------ reference
const f32 = Math.fround;
const ratioSim = (a: number, b: number) => (a + b < 1e-10 ? 1 : Math.min(a, b) / Math.max(a, b));
const pen = (s: number, t = 0.03) => (s >= t ? s : t - (1 + t) * (1 - s / t));
const warp = (x: number) => (x >= 0.9 ? x : x >= 0.8 ? x ** 2 : x >= 0.7 ? x ** 3 : x >= 0.6 ? x ** 4 : x ** 5);
const area = (b: Box) => b[2] * b[3];
const centre = (b: Box) => [b[0] + b[2] / 2, b[1] + b[3] / 2];
const diag = (b: Box) => Math.hypot(b[2], b[3]);
function iou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const i = iw * ih;
  return i / (area(a) + area(b) - i);
}
function rho(s: Box, o: Box): number {
  const [sx, sy] = centre(s);
  const [ox, oy] = centre(o);
  return Math.hypot(ox! - sx!, oy! - sy!) / ((diag(s) + diag(o)) / 2);
}
const f32box = (b: Box) => b.map(f32) as Box;
const okBox = (b: Box | null): b is Box => !!b && b.every(Number.isFinite) && b[2] > 0 && b[3] > 0;

interface RefOptions {
  tau: number;
  faithful: boolean;
  balance?: boolean;
  symmetry?: boolean;
}
function refScene(layout: SceneLayout, examples: RelationExample[], sim: (a: string, b: string) => number, o: RefOptions): { score: number; status: string } {
  if (layout.relations.length === 0) return { score: 0, status: 'no-relations' };
  let sc = 0;
  let c = 0;
  for (const rel of layout.relations) {
    const subs = Array.isArray(rel.subject) ? rel.subject : [rel.subject as number];
    const objs = Array.isArray(rel.object) ? rel.object : [rel.object as number];
    for (const si of subs)
      for (const oi of objs) {
        const pool = examples.filter((e) => e.predicate === rel.predicate);
        if (pool.length === 0) return { score: 0, status: 'unknown-predicate' };
        const sb = layout.objects[si]?.box ?? null;
        const ob = layout.objects[oi]?.box ?? null;
        if (!okBox(sb) || !okBox(ob)) return { score: 0, status: 'missing-box' };
        const ps = f32box(sb);
        const po = f32box(ob);
        const sName = normalizeName(layout.objects[si]!.name);
        const oName = normalizeName(layout.objects[oi]!.name);
        const scores: number[] = [];
        let nHi = 0;
        let conf = 0;
        for (const e of pool) {
          const ss = sim(sName, e.subject);
          const os = sim(oName, e.object);
          if (!(ss >= o.tau && os >= o.tau)) continue;
          const w = warp(ss) * warp(os);
          const hi = ss >= 0.8 && os >= 0.8;
          if (hi) nHi++;
          conf += hi ? w : 1e-4 * w;
          const es = f32box(e.subjectBox);
          const eo = f32box(e.objectBox);
          const size = pen(w * ratioSim(area(ps) / area(po), area(es) / area(eo)));
          const iouT = pen(w * ratioSim(iou(ps, po), iou(es, eo)));
          const rhoT = pen(w * ratioSim(rho(ps, po), rho(es, eo)));
          let wi = 0.5;
          let wr = 0.5;
          if (o.balance) {
            if (iouT > 0.95) [wi, wr] = [0.2, 0.8];
            else if (rhoT > 0.95) [wi, wr] = [0.8, 0.2];
          }
          const dist = o.faithful ? iouT : wi * iouT + wr * rhoT;
          const vp = [centre(po)[0]! - centre(ps)[0]!, centre(po)[1]! - centre(ps)[1]!];
          const ve = [centre(eo)[0]! - centre(es)[0]!, centre(eo)[1]! - centre(es)[1]!];
          const zp = Math.hypot(vp[0]!, vp[1]!) < 1e-12;
          const ze = Math.hypot(ve[0]!, ve[1]!) < 1e-12;
          let dir: number;
          if (zp && ze) dir = 1;
          else if (zp || ze) dir = 0;
          else {
            const n = Math.hypot(vp[0]!, vp[1]!) * Math.hypot(ve[0]!, ve[1]!);
            let cos = (vp[0]! * ve[0]! + vp[1]! * ve[1]!) / n;
            if ((o.symmetry ?? true) && !/left|right/.test(rel.predicate)) cos = Math.max(cos, (-vp[0]! * ve[0]! + vp[1]! * ve[1]!) / n);
            dir = pen((w * (cos + 1)) / 2);
          }
          scores.push((0.5 * size + dist + 0.8 * dir) / 2.3);
        }
        if (scores.length === 0) return { score: 0, status: 'no-candidates' };
        scores.sort((a, b) => b - a);
        const s = scores[Math.floor(nHi / 50)]!;
        sc += conf * s;
        c += conf;
      }
  }
  return { score: c > 0 ? sc / c : 0, status: 'ok' };
}

// ------------------------------------------------------------------ random data
const NAMES = ['dog', 'cat', 'puppy', 'frisbee', 'ball', 'person', 'man', 'table', 'cup'];
const PREDS = ['on', 'next to', 'left of', 'holding', 'right of'];
function randomSim(seed: number): { table: NameSimilarity; fn: (a: string, b: string) => number } {
  const r = seededRandom(seed);
  const m = new Map<string, number>();
  for (const a of NAMES) for (const b of NAMES) m.set(`${a}|${b}`, a === b ? 1 : f32(r() < 0.5 ? 0.3 + r() * 0.7 : r() * 0.6));
  const fn = (a: string, b: string) => m.get(`${a}|${b}`)!;
  return { table: nameSimilarityFromFunction(NAMES, NAMES, fn), fn };
}
function randomBox(r: () => number, allowBad: boolean): Box | null {
  if (allowBad && r() < 0.01) return null;
  // Coarse grid so identical boxes, touching boxes and zero IoU all happen.
  const g = (v: number) => Math.round(v * 20) / 20;
  const w = g(0.05 + r() * 0.5);
  const h = g(0.05 + r() * 0.5);
  return [g(r() * 0.5), g(r() * 0.5), w, h];
}
function randomExamples(seed: number, n: number): RelationExample[] {
  const r = seededRandom(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  return Array.from({ length: n }, () => ({
    predicate: pick(PREDS.slice(0, 4)),
    subject: pick(NAMES),
    object: pick(NAMES),
    subjectBox: randomBox(r, false)!,
    objectBox: randomBox(r, false)!,
  }));
}
function randomLayouts(seed: number, n: number): SceneLayout[] {
  const r = seededRandom(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  return Array.from({ length: n }, () => {
    const k = 1 + Math.floor(r() * 5);
    const objects = Array.from({ length: k }, (_, i) => ({ name: `${pick(NAMES)}-${i + 1}`, box: randomBox(r, true) }));
    const nr = Math.floor(r() * 4);
    const relations = Array.from({ length: nr }, () => ({
      subject: r() < 0.2 ? [Math.floor(r() * k), Math.floor(r() * k)] : Math.floor(r() * k),
      predicate: r() < 0.03 ? 'flying over' : pick(PREDS),
      object: Math.floor(r() * k),
    }));
    return { objects, relations };
  });
}

describe('CLIS-L against the reference formulas', () => {
  const examples = randomExamples(11, 600);
  const pool = buildRelationPool(examples);
  const { table, fn } = randomSim(5);
  const layouts = randomLayouts(7, 3000);
  for (const mode of [
    { faithful: false, tau: 0.6 },
    { faithful: true, tau: 0.6 },
    { faithful: false, tau: 0.4, balance: true },
    { faithful: false, tau: 0.8, symmetry: false },
  ]) {
    it(`matches on 3000 random layouts (${JSON.stringify(mode)})`, async () => {
      const got = await clisLayout(layouts, pool, table, mode);
      const statuses = new Set<string>();
      layouts.forEach((l, i) => {
        const want = refScene(l, examples, fn, mode);
        statuses.add(want.status);
        expect(got.status[i], `layout ${i}`).toBe(want.status);
        expect(Math.abs((got.score[i] as number) - want.score), `layout ${i}`).toBeLessThan(1e-9);
      });
      // The random data reaches every branch.
      for (const s of ['ok', 'missing-box', 'unknown-predicate', 'no-relations']) expect(statuses.has(s), s).toBe(true);
      expect(got.status.filter((s) => s === 'ok').length).toBeGreaterThan(500);
    });
  }
  it("--device: auto is the CPU path's bytes; cuda is the same bytes on a GPU, else E_CUDA_UNAVAILABLE naming why", async () => {
    const sub = layouts.slice(0, 400);
    const cpu = await clisLayout(sub, pool, table, { faithful: false });
    const same = (a: typeof cpu, b: typeof cpu) => {
      for (const k of ['score', 'confidence', 'pairScore', 'pairConfidence', 'failedPair'] as const) {
        expect(Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength).equals(Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength)), k).toBe(true);
      }
      expect(a.status).toEqual(b.status);
    };
    same(await clisLayout(sub, pool, table, { faithful: false, device: 'auto', deviceBytes: 5000 }), cpu);
    const caps = capabilities().cuda;
    if (caps.usable) same(await clisLayout(sub, pool, table, { faithful: false, device: 'cuda', deviceBytes: 5000 }), cpu);
    else await expectCode(clisLayout(sub, pool, table, { device: 'cuda' }), 'E_CUDA_UNAVAILABLE', /CUDA/);
  });
  it('a VG pool in pixels scores like a normalised one up to a uniform per-image scale; an anisotropic scale moves only ρ and direction', async () => {
    const r = seededRandom(21);
    const scale = (b: Box, kx: number, ky: number): Box => [b[0] * kx, b[1] * ky, b[2] * kx, b[3] * ky];
    // Term level (the reference helpers above): area ratio and IoU are invariant to any (kx, ky); ρ and the direction
    // cosine only to kx = ky.
    const dirCos = (s: Box, o: Box, t: Box, u: Box) => {
      const v = [centre(o)[0]! - centre(s)[0]!, centre(o)[1]! - centre(s)[1]!];
      const w = [centre(u)[0]! - centre(t)[0]!, centre(u)[1]! - centre(t)[1]!];
      return (v[0]! * w[0]! + v[1]! * w[1]!) / (Math.hypot(v[0]!, v[1]!) * Math.hypot(w[0]!, w[1]!));
    };
    let rhoMoved = 0;
    let dirMoved = 0;
    for (const e of examples.slice(0, 200)) {
      const [kx, ky] = [100 + r() * 900, 100 + r() * 900];
      const k = 100 + r() * 900;
      const [s, o] = [e.subjectBox, e.objectBox];
      const [as, ao] = [scale(s, kx, ky), scale(o, kx, ky)];
      const [us, uo] = [scale(s, k, k), scale(o, k, k)];
      expect(area(as) / area(ao)).toBeCloseTo(area(s) / area(o), 9);
      expect(iou(as, ao)).toBeCloseTo(iou(s, o), 9);
      expect(rho(us, uo)).toBeCloseTo(rho(s, o), 9);
      if (centre(s)[0] !== centre(o)[0] || centre(s)[1] !== centre(o)[1]) {
        expect(dirCos(us, uo, s, o)).toBeCloseTo(1, 9);
        if (Math.abs(dirCos(as, ao, s, o) - 1) > 1e-6) dirMoved++;
      }
      if (Math.abs(rho(as, ao) - rho(s, o)) > 1e-6) rhoMoved++;
    }
    expect(rhoMoved).toBeGreaterThan(100);
    expect(dirMoved).toBeGreaterThan(50);
    // Scorer level: each example scaled by its own uniform factor (an image's pixel size) gives the same scene scores.
    // Powers of two keep the boxes exact in float32 (otherwise touching boxes can get a 1e-8 IoU, and sim(0, 1e-8) = 0).
    const pow2 = () => 2 ** (6 + Math.floor(r() * 5));
    const sub = layouts.slice(0, 1000);
    const uniform = buildRelationPool(examples.map((e) => {
      const k = pow2();
      return { ...e, subjectBox: scale(e.subjectBox, k, k), objectBox: scale(e.objectBox, k, k) };
    }));
    const aniso = buildRelationPool(examples.map((e) => {
      const [kx, ky] = [pow2(), pow2()];
      return { ...e, subjectBox: scale(e.subjectBox, kx, ky), objectBox: scale(e.objectBox, kx, ky) };
    }));
    for (const faithful of [false, true]) {
      const a = await clisLayout(sub, pool, table, { faithful });
      const b = await clisLayout(sub, uniform, table, { faithful });
      const c = await clisLayout(sub, aniso, table, { faithful });
      let moved = 0;
      sub.forEach((_, i) => {
        expect(b.score[i], `layout ${i}`).toBe(a.score[i]);
        if (Math.abs(c.score[i]! - a.score[i]!) > 1e-3) moved++;
      });
      expect(moved).toBeGreaterThan(50);
    }
  });
  it('gives the same bytes on 1 thread and on all, sync and async', async () => {
    const a = await clisLayout(layouts, pool, table, { threads: 1 });
    const b = await clisLayout(layouts, pool, table, { threads: 0 });
    const c = clisLayoutSync(layouts, pool, table);
    expect(Buffer.from(a.score.buffer).equals(Buffer.from(b.score.buffer))).toBe(true);
    expect(Buffer.from(a.score.buffer).equals(Buffer.from(c.score.buffer))).toBe(true);
    expect(Buffer.from(a.confidence.buffer).equals(Buffer.from(b.confidence.buffer))).toBe(true);
  });
  it('the intended and the faithful mode differ where ρ disagrees with IoU', async () => {
    const a = await clisLayout(layouts, pool, table, { faithful: false });
    const b = await clisLayout(layouts, pool, table, { faithful: true });
    let differ = 0;
    for (let i = 0; i < layouts.length; i++) if (a.status[i] === 'ok' && a.score[i] !== b.score[i]) differ++;
    expect(differ).toBeGreaterThan(100);
  });
});

describe('CLIS-L hand-computed scenes', () => {
  const one = (predicate: string, es: Box, eo: Box): ReturnType<typeof buildRelationPool> =>
    buildRelationPool([{ predicate, subject: 'dog', object: 'frisbee', subjectBox: es, objectBox: eo }]);
  const sim = nameSimilarityFromFunction(['dog', 'frisbee'], ['dog', 'frisbee'], () => 0);
  const scene = (predicate: string, s: Box | null, o: Box | null): SceneLayout => ({
    objects: [
      { name: 'dog-1', box: s },
      { name: 'frisbee-1', box: o },
    ],
    relations: [{ subject: 0, predicate, object: 1 }],
  });
  it('identical boxes score 1 in both modes, with confidence 1', async () => {
    const pool = one('catching', [0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.2]);
    for (const faithful of [false, true]) {
      const r = await clisLayout([scene('catching', [0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.2])], pool, sim, { faithful });
      expect(r.score[0]).toBeCloseTo(1, 12);
      expect(r.confidence[0]).toBeCloseTo(1, 12);
    }
  });
  it('a mirrored relation scores 1 for symmetric predicates and (0.5 + 1 − 0.8)/2.3 for "left of"', async () => {
    const e: [Box, Box] = [[0.1, 0.1, 0.2, 0.2], [0.6, 0.1, 0.2, 0.2]];
    const mirrored = scene('near', [0.6, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]);
    expect((await clisLayout([mirrored], one('near', ...e), sim)).score[0]).toBeCloseTo(1, 12);
    const left = scene('left of', [0.6, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]);
    expect((await clisLayout([left], one('left of', ...e), sim)).score[0]).toBeCloseTo((0.5 + 1 - 0.8) / 2.3, 12);
  });
  it('a missing relation, a missing box or no similar example scores the scene 0', async () => {
    const pool = one('on', [0, 0, 1, 1], [0, 1, 1, 1]);
    const r = await clisLayout(
      [scene('under', [0, 0, 1, 1], [0, 1, 1, 1]), scene('on', null, [0, 1, 1, 1]), scene('on', [0, 0, 1, 1], [0, 1, 0, 1])],
      pool,
      sim,
    );
    expect([...r.score]).toEqual([0, 0, 0]);
    expect(r.status).toEqual(['unknown-predicate', 'missing-box', 'missing-box']);
    const far = nameSimilarityFromFunction(['dog', 'frisbee'], ['dog', 'frisbee'], () => 0.1);
    const cat = { objects: [{ name: 'cat', box: [0, 0, 1, 1] as Box }, { name: 'frisbee', box: [0, 1, 1, 1] as Box }], relations: [{ subject: 0, predicate: 'on', object: 1 }] };
    const catSim = nameSimilarityFromFunction(['cat', 'frisbee'], ['dog', 'frisbee'], (a, b) => (a === 'cat' && b === 'dog' ? 0.5 : 0));
    expect((await clisLayout([cat], pool, catSim)).status).toEqual(['no-candidates']);
    expect((await clisLayout([scene('on', [0, 0, 1, 1], [0, 1, 1, 1])], pool, far)).score[0]).toBeCloseTo(1, 12);
  });
  it('the pair score is the example at rank floor(n_hi / 50)', async () => {
    // 120 examples with both names identical (n_hi = 120 → rank 2): the third best score.
    const r = seededRandom(3);
    const ex: RelationExample[] = Array.from({ length: 120 }, () => ({
      predicate: 'on',
      subject: 'dog',
      object: 'frisbee',
      subjectBox: [r() * 0.5, r() * 0.5, 0.1 + r() * 0.3, 0.1 + r() * 0.3],
      objectBox: [r() * 0.5, r() * 0.5, 0.1 + r() * 0.3, 0.1 + r() * 0.3],
    }));
    const pool = buildRelationPool(ex);
    const l = scene('on', [0.1, 0.1, 0.2, 0.2], [0.2, 0.3, 0.3, 0.1]);
    const got = await clisLayout([l], pool, sim);
    const scores = ex.map((e) => refScene(l, [e], () => 1, { tau: 0.6, faithful: false }).score).sort((a, b) => b - a);
    expect(got.score[0]).toBeCloseTo(scores[2]!, 12);
    expect(got.confidence[0]).toBeCloseTo(120, 9);
  });
});

describe('relation pools and name similarity', () => {
  it('round-trips the ACP pool JSON and normalises names', () => {
    const pool = buildRelationPool([{ predicate: 'Sitting_On', subject: 'Teddy_Bear-2', object: 'bench(seat)', subjectBox: [1, 2, 3, 4], objectBox: [0, 0, 10, 10] }]);
    expect(pool.predicates).toEqual(['sitting on']);
    expect(pool.names).toEqual(['teddy bear', 'bench (seat)']);
    const again = poolFromAcpJson(JSON.parse(JSON.stringify(poolToAcpJson(pool))));
    expect(again.predicates).toEqual(pool.predicates);
    expect([...again.subjectBox]).toEqual([1, 2, 3, 4]);
  });
  it('derives spatial relations from boxes by the documented rule', () => {
    expect(spatialRelation([0, 0, 10, 10], [20, 0, 10, 10])).toBe('left of');
    expect(spatialRelation([20, 0, 10, 10], [0, 0, 10, 10])).toBe('right of');
    expect(spatialRelation([0, 0, 10, 10], [0, 30, 10, 10])).toBe('above');
    expect(spatialRelation([0, 30, 10, 10], [0, 0, 10, 10])).toBe('below');
    expect(spatialRelation([2, 2, 5, 5], [0, 0, 10, 10])).toBe('inside');
    expect(spatialRelation([0, 0, 10, 10], [2, 2, 5, 5])).toBe('surrounding');
    // Normalised by the image: 30 px right in a 300-wide image vs 20 px down in a 40-high image.
    expect(spatialRelation([0, 0, 10, 10], [30, 20, 10, 10], 300, 40)).toBe('above');
  });
  it('builds a pool from a COCO file and from Visual Genome relationships', () => {
    const coco = parseCoco({
      images: [{ id: 1, file_name: 'a.jpg', width: 100, height: 50 }],
      categories: [{ id: 1, name: 'dog' }, { id: 2, name: 'frisbee' }],
      annotations: [
        { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
        { id: 2, image_id: 1, category_id: 2, bbox: [50, 0, 10, 10], area: 100, iscrowd: 0 },
      ],
    });
    const { examples } = examplesFromCoco(coco, { relations: ['left of', 'right of'] });
    expect(examples.map((e) => `${e.subject} ${e.predicate} ${e.object}`)).toEqual(['dog left of frisbee', 'frisbee right of dog']);
    expect(examples[0]!.subjectBox).toEqual([0, 0, 0.1, 0.2]);
    expect(() => examplesFromCoco(coco, { relations: ['flying over'] })).toThrow(/unknown spatial relation/);
    const vg = examplesFromVisualGenome([
      {
        image_id: 9,
        relationships: [
          { predicate: 'ON', subject: { names: ['cup'], x: 1, y: 2, w: 3, h: 4 }, object: { name: 'table', x: 0, y: 0, w: 10, h: 10 } },
          { predicate: 'on', subject: { name: 'cup', x: 1, y: 2, w: 0, h: 4 }, object: { name: 'table', x: 0, y: 0, w: 10, h: 10 } },
        ],
      },
    ]);
    expect(vg.examples).toHaveLength(1);
    expect(vg.examples[0]).toMatchObject({ predicate: 'on', subject: 'cup', object: 'table' });
    expect(vg.skipped).toEqual({ 'bad-box': 1 });
  });
  it('normalises VG boxes by image_data.json sizes (library and genaug score pool --image-data), and says when they stay in pixels', async () => {
    const rels = [
      { image_id: 9, relationships: [{ predicate: 'on', subject: { name: 'cup', x: 10, y: 20, w: 30, h: 40 }, object: { name: 'table', x: 0, y: 50, w: 200, h: 100 } }] },
      { image_id: 10, relationships: [{ predicate: 'on', subject: { name: 'cup', x: 1, y: 2, w: 3, h: 4 }, object: { name: 'table', x: 0, y: 0, w: 10, h: 10 } }] },
    ];
    const imageData = [{ image_id: 9, width: 200, height: 400, url: 'x' }];
    const sizes = imageSizesFromVisualGenome(imageData);
    const lib = examplesFromVisualGenome(rels, { imageSizes: sizes });
    expect(lib.examples.map((e) => [e.subjectBox, e.objectBox])).toEqual([[[0.05, 0.05, 0.15, 0.1], [0, 0.125, 1, 0.25]]]);
    expect(lib.skipped).toEqual({ 'no-image-size': 1 });
    expect(() => imageSizesFromVisualGenome([{ image_id: 1, width: 0, height: 5 }], 'im.json')).toThrow(/im\.json: \[0\] needs/);
    const dir = mkdtempSync(join(tmpdir(), 'genaug-vg-'));
    try {
      writeFileSync(join(dir, 'rel.json'), JSON.stringify(rels));
      writeFileSync(join(dir, 'im.json'), JSON.stringify(imageData));
      const cli = async (...extra: string[]) => {
        const printed: string[] = [];
        const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (printed.push(String(chunk)), true));
        try {
          const code = await run(['node', 'genaug', 'score', 'pool', '--vg', join(dir, 'rel.json'), '--out', join(dir, 'pool.json'), ...extra]);
          return { code, out: printed.join(''), pool: JSON.parse(readFileSync(join(dir, 'pool.json'), 'utf8')) };
        } finally {
          spy.mockRestore();
        }
      };
      const norm = await cli('--image-data', join(dir, 'im.json'));
      expect(norm.code).toBe(0);
      // The pool file holds float32 boxes.
      expect(norm.pool.on.map((e: { s_bbox: Box; o_bbox: Box }) => [e.s_bbox, e.o_bbox])).toEqual([[f32box([0.05, 0.05, 0.15, 0.1]), [0, 0.125, 1, 0.25]]]);
      expect(norm.out).toMatch(/normalised by their image size/);
      const px = await cli();
      expect(px.pool.on.map((e: { s_bbox: Box }) => e.s_bbox)).toEqual([[10, 20, 30, 40], [1, 2, 3, 4]]);
      expect(px.out).toMatch(/boxes are in pixels.*size and IoU terms are unaffected.*rho and direction are invariant to a uniform scale only/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('reads ACP sim_map tables both ways, identical names 1, missing pairs 0', () => {
    const t = nameSimilarityFromTable({ dog: { puppy: 0.9 } }, ['puppy', 'dog'], ['dog', 'cat']);
    expect([...t.values].map((v) => Math.round(v * 100) / 100)).toEqual([0.9, 0, 1, 0]);
  });
  it('rejects names missing from the table and bad pools', async () => {
    const pool = buildRelationPool([{ predicate: 'on', subject: 'dog', object: 'cat', subjectBox: [0, 0, 1, 1], objectBox: [0, 0, 1, 1] }]);
    const sim = nameSimilarityFromFunction(['dog'], ['dog', 'cat'], () => 0);
    await expectCode(clisLayout([{ objects: [{ name: 'horse', box: [0, 0, 1, 1] }], relations: [] }], pool, sim), 'E_ARGUMENT', /horse/);
    expect(() => buildRelationPool([{ predicate: 'on', subject: 'a', object: 'b', subjectBox: [0, 0, 0, 1], objectBox: [0, 0, 1, 1] }])).toThrow(/w > 0/);
    await expectCode(clisLayout([], pool, { layoutNames: ['dog'], poolNames: ['dog'], values: new Float32Array(3) }), 'E_SHAPE');
  });
});
