// Scores, filters and the judge: against plain references recomputed here
// (a tiny deterministic ImageTextEmbedder test double, direct loops for the
// crop rule and the class similarities), hand-computed filter tables, and a
// local chat-completions server for the CLIS-I judge.
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { run } from '../ts/cli/main.js';
import { paddingCrop, compositeOnWhite } from '../ts/curate/crops.js';
import { applyFilters, balancedQuotas, balancedSubsample } from '../ts/curate/filters.js';
import {
  aliaSemantic,
  clipScores,
  clisImageClip,
  clisImageJudge,
  confidenceScores,
  GRADE_RESPONSE_FORMAT,
  parseGrade,
  confidentThresholds,
  gridBox,
  interSimilarity,
  planToScene,
  zeroShot,
} from '../ts/curate/score.js';
import { mergeScores, readScores, type ScoreColumns } from '../ts/curate/table.js';
import { ChatClient } from '../ts/llm/chat.js';
import type { ImageTextEmbedder, RgbInput } from '../ts/models/types.js';
import { seededRandom } from '../ts/util/random.js';
import sharp from 'sharp';

import { writeClipFolder, tinyClipWeights } from './clip-helpers.js';
import { cosine, expectCode, randomMatrix, tempFolder } from './helpers.js';

// ------------------------------------------------------------------ test double
const DIM = 8;
function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v) || 1;
  return Float32Array.from(v, (x) => x / n);
}
function imageVec(im: RgbInput): number[] {
  const v = new Array(DIM).fill(0);
  for (let i = 0; i < im.width * im.height; i++) for (let c = 0; c < 3; c++) v[(c + (i % 3)) % DIM] += im.data[i * 3 + c]! + 1;
  v[7] = im.width;
  return v;
}
function textVec(t: string): number[] {
  const v = new Array(DIM).fill(0);
  for (let i = 0; i < t.length; i++) v[(t.charCodeAt(i) * 7 + i) % DIM] += 1;
  return v;
}
const testEmbedder: ImageTextEmbedder = {
  dim: DIM,
  name: 'test-double',
  logitScale: 100,
  async embedImages(images) {
    const out = new Float32Array(images.length * DIM);
    images.forEach((im, i) => out.set(unit(imageVec(im)), i * DIM));
    return out;
  },
  async embedTexts(texts) {
    const out = new Float32Array(texts.length * DIM);
    texts.forEach((t, i) => out.set(unit(textVec(t)), i * DIM));
    return out;
  },
};
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, k) => s + x * b[k]!, 0);
function randomImage(w: number, h: number, seed: number): RgbInput {
  const r = seededRandom(seed);
  return { data: Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256)), width: w, height: h };
}

// ------------------------------------------------------------------ crops
describe('DiverGen padding crop', () => {
  const refl = (i: number, n: number) => {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  };
  function reference(im: RgbInput, mask: Uint8Array, pad: number, k: number): RgbInput {
    let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
    for (let y = 0; y < im.height; y++)
      for (let x = 0; x < im.width; x++)
        if (mask[y * im.width + x]) (x0 = Math.min(x0, x), x1 = Math.max(x1, x), y0 = Math.min(y0, y), y1 = Math.max(y1, y));
    const cx0 = Math.max(0, x0 - pad), cy0 = Math.max(0, y0 - pad), cx1 = Math.min(im.width - 1, x1 + pad), cy1 = Math.min(im.height - 1, y1 + pad);
    const w = cx1 - cx0 + 1, h = cy1 - cy0 + 1;
    const out = new Uint8Array(w * h * 3);
    const a = Math.floor(k / 2);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          const X = cx0 + x, Y = cy0 + y;
          if (mask[Y * im.width + X]) {
            out[(y * w + x) * 3 + c] = im.data[(Y * im.width + X) * 3 + c]!;
            continue;
          }
          let s = 0;
          for (let dy = -a; dy < k - a; dy++) for (let dx = -a; dx < k - a; dx++) s += im.data[(refl(Y + dy, im.height) * im.width + refl(X + dx, im.width)) * 3 + c]!;
          out[(y * w + x) * 3 + c] = Math.round(s / (k * k));
        }
    return { data: out, width: w, height: h };
  }
  it('matches a direct per-pixel reference (borders, clipping, odd and even kernels)', () => {
    for (const [W, H, pad, k, seed] of [[60, 50, 40, 10, 1], [120, 90, 40, 10, 2], [30, 20, 5, 3, 3], [7, 9, 2, 10, 4]] as const) {
      const im = randomImage(W, H, seed);
      const r = seededRandom(seed + 10);
      const mask = new Uint8Array(W * H);
      const mx = Math.floor(r() * W * 0.5), my = Math.floor(r() * H * 0.5);
      for (let y = my; y < Math.min(H, my + 1 + Math.floor(r() * H * 0.5)); y++) for (let x = mx; x < Math.min(W, mx + 1 + Math.floor(r() * W * 0.5)); x++) if (r() < 0.8) mask[y * W + x] = 1;
      mask[my * W + mx] = 1;
      const got = paddingCrop(im, mask, { padding: pad, blur: k });
      const want = reference(im, mask, pad, k);
      expect([got.width, got.height]).toEqual([want.width, want.height]);
      expect(Buffer.from(got.data).equals(Buffer.from(want.data))).toBe(true);
    }
  });
  it('rejects an empty mask and a mask of the wrong size', () => {
    const im = randomImage(10, 10, 1);
    expect(() => paddingCrop(im, new Uint8Array(100))).toThrow(/empty/);
    expect(() => paddingCrop(im, new Uint8Array(99))).toThrow(/expected 10 x 10/);
  });
  it('composites RGBA onto white', () => {
    const c = compositeOnWhite(Uint8Array.from([0, 0, 0, 255, 0, 0, 0, 0, 100, 100, 100, 128]), 3, 1);
    expect([...c.data]).toEqual([0, 0, 0, 255, 255, 255, 177, 177, 177]);
  });
});

// ------------------------------------------------------------------ scores
describe('scores against plain references', () => {
  it('CLIP score is 100·cos(image, "a photo of {name}")', async () => {
    const imgs = [randomImage(4, 4, 1), randomImage(5, 3, 2), randomImage(2, 2, 3)];
    const names = ['dog', 'cat', 'dog'];
    const got = await clipScores(testEmbedder, imgs, names);
    imgs.forEach((im, i) => expect(got[i]).toBeCloseTo(100 * dot(unit(imageVec(im)), unit(textVec(`a photo of ${names[i]}`))), 4));
  });
  it('CLIP score fills the template with the display name (_ as space, LVIS sense dropped)', async () => {
    const imgs = [randomImage(4, 4, 7), randomImage(3, 5, 8)];
    const names = ['sea_lion', 'bat_(animal)'];
    const got = await clipScores(testEmbedder, imgs, names);
    const shown = ['a photo of sea lion', 'a photo of bat'];
    imgs.forEach((im, i) => expect(got[i]).toBeCloseTo(100 * dot(unit(imageVec(im)), unit(textVec(shown[i]!))), 4));
    expect(Math.abs(got[0]! - 100 * dot(unit(imageVec(imgs[0]!)), unit(textVec('a photo of sea_lion'))))).toBeGreaterThan(1e-3);
  });
  it('inter-similarity mean / max / top-k mean per own class', async () => {
    const gen = randomMatrix(40, 16, 1);
    const real = randomMatrix(90, 16, 2);
    const gl = Int32Array.from({ length: 40 }, (_, i) => i % 4); // class 3 has no real rows
    const rl = Int32Array.from({ length: 90 }, (_, i) => i % 3);
    const r = await interSimilarity(gen, gl, real, rl, { k: 4 });
    for (let i = 0; i < 40; i++) {
      const cs: number[] = [];
      for (let j = 0; j < 90; j++) if (rl[j] === gl[i]) cs.push(cosine(gen, i, real, j));
      if (cs.length === 0) {
        expect(Number.isNaN(r.mean[i]!) && Number.isNaN(r.max[i]!) && Number.isNaN(r.topk[i]!)).toBe(true);
        continue;
      }
      cs.sort((a, b) => b - a);
      expect(r.mean[i]).toBeCloseTo(cs.reduce((a, b) => a + b, 0) / cs.length, 4);
      expect(r.max[i]).toBeCloseTo(cs[0]!, 5);
      expect(r.topk[i]).toBeCloseTo((cs[0]! + cs[1]! + cs[2]! + cs[3]!) / 4, 5);
    }
    await expectCode(interSimilarity(gen, new Int32Array(3), real, rl), 'E_SHAPE', /labels/);
  });
  it('zero-shot softmax and the ALIA semantic winner', async () => {
    const texts = ['a photo of a bird', 'a painting', 'an image'];
    const imgs = [randomImage(3, 3, 5), randomImage(3, 3, 6)];
    const ie = await testEmbedder.embedImages(imgs);
    const r = await aliaSemantic(testEmbedder, { data: ie, rows: 2, dim: DIM }, texts[0]!, texts.slice(1));
    for (let i = 0; i < 2; i++) {
      const logits = texts.map((t) => 100 * dot(unit(imageVec(imgs[i]!)), unit(textVec(t))));
      const m = Math.max(...logits);
      const z = logits.reduce((s, l) => s + Math.exp(l - m), 0);
      expect(r.positiveProb[i]).toBeCloseTo(Math.exp(logits[0]! - m) / z, 4);
      expect(r.winner[i]).toBe(logits.indexOf(m));
    }
    const z = zeroShot({ data: Float32Array.from([1, 0]), rows: 1, dim: 2 }, { data: Float32Array.from([1, 0, 0, 1]), rows: 2, dim: 2 }, Math.log(3));
    expect(z.probs[0]).toBeCloseTo(0.75, 6);
  });
  it('confident thresholds and confidence numbers (hand-computed)', () => {
    // 3 real images, 2 classes: class 0 images have p0 = 0.9, 0.7 → t0 = 0.8; class 1 image p1 = 0.6 → t1 = 0.6.
    const t = confidentThresholds(Float32Array.from([0.9, 0.1, 0.7, 0.3, 0.4, 0.6]), Int32Array.from([0, 0, 1]), 2);
    expect([...t].map((v) => +v.toFixed(6))).toEqual([0.8, 0.6]);
    const c = confidenceScores(Float32Array.from([0.85, 0.15, 0.3, 0.7]), Int32Array.from([0, 0]), 2, t);
    expect([...c.maxProb].map((v) => +v.toFixed(6))).toEqual([0.85, 0.7]);
    expect([...c.pred]).toEqual([0, 1]);
    expect([...c.threshold].map((v) => +v.toFixed(6))).toEqual([0.8, 0.8]);
    expect(() => confidentThresholds(Float32Array.from([1, 0]), Int32Array.from([2]), 2)).toThrow(/outside/);
  });
  it('CLIS-I clip mode weighs 0.5 global + 0.5 mean(0.8 region + 0.2 crop)', async () => {
    const image = randomImage(20, 10, 9);
    const objects = [{ name: 'dog', box: [0, 0, 0.5, 0.5] as [number, number, number, number] }, { name: 'ball', box: [0.5, 0.5, 0.5, 0.5] as [number, number, number, number], text: 'a red ball' }];
    const r = await clisImageClip(testEmbedder, { image, caption: 'a dog and a ball', objects });
    const cos = (im: RgbInput, t: string) => 100 * dot(unit(imageVec(im)), unit(textVec(t)));
    const crop = (x0: number, y0: number, w: number, h: number): RgbInput => {
      const d = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = image.data[((y0 + y) * 20 + x0 + x) * 3 + c]!;
      return { data: d, width: w, height: h };
    };
    const region = (x0: number, y0: number, w: number, h: number): RgbInput => {
      const d = new Uint8Array(image.data.length).fill(128);
      for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) for (let c = 0; c < 3; c++) d[(y * 20 + x) * 3 + c] = image.data[(y * 20 + x) * 3 + c]!;
      return { data: d, width: 20, height: 10 };
    };
    const l0 = 0.8 * cos(region(0, 0, 10, 5), 'dog') + 0.2 * cos(crop(0, 0, 10, 5), 'dog');
    const l1 = 0.8 * cos(region(10, 5, 10, 5), 'a red ball') + 0.2 * cos(crop(10, 5, 10, 5), 'a red ball');
    expect(r.score).toBeCloseTo(0.5 * cos(image, 'a dog and a ball') + 0.25 * (l0 + l1), 3);
  });
  it('reads plan layouts and ACP relations into scenes', () => {
    const s = planToScene({
      id: 'j1',
      layout: [{ name: 'dog', box: [0.1, 0.1, 0.2, 0.2] }, { name: 'frisbee', box: [0.5, 0.1, 0.1, 0.1] }, { name: 'dog', box: [0.7, 0.7, 0.2, 0.2] }],
      provenance: { scene_graph: { relations: [{ caption: 'x', relations: [{ subject: ['dog-2'], object: ['frisbee-1', 'cat-1'], relation: 'catching' }] }] } },
    });
    expect(s.relations).toEqual([{ subject: [2], predicate: 'catching', object: [1, -1] }]);
  });
});

// ------------------------------------------------------------------ filters
describe('filters on hand-computed tables', () => {
  const table = (rows: Array<Record<string, unknown>>) => new Map(rows.map(({ id, ...r }) => [id as string, r as Record<string, never>]));
  it('X-Paste: bar = min(21, best − 1) per category, area in [0.05, 0.95]', () => {
    const t = table([
      { id: 'a', category: 'dog', clip_score: 30, area_fraction: 0.5 },
      { id: 'b', category: 'dog', clip_score: 20.5, area_fraction: 0.5 }, // bar 21 → drop
      { id: 'c', category: 'cat', clip_score: 15, area_fraction: 0.5 }, // best 15 → bar 14 → keep
      { id: 'd', category: 'cat', clip_score: 13.9, area_fraction: 0.5 }, // below 14 → drop
      { id: 'e', category: 'dog', clip_score: 25, area_fraction: 0.97 }, // area → drop
    ]);
    const d = applyFilters(t, ['xpaste']);
    expect(d.map((x) => [x.id, x.kept, x.reason])).toEqual([
      ['a', true, 'passed xpaste'],
      ['b', false, 'xpaste:clip-below-bar'],
      ['c', true, 'passed xpaste'],
      ['d', false, 'xpaste:clip-below-bar'],
      ['e', false, 'xpaste:area-out-of-range'],
    ]);
    expect(d[3]!.values.bar).toBe(14);
  });
  it('DiverGen: ≥ 0.6, classes without real crops dropped unless exempt', () => {
    const t = table([
      { id: 'a', category: 'dog', inter_sim_mean: 0.6 },
      { id: 'b', category: 'dog', inter_sim_mean: 0.59 },
      { id: 'c', category: 'okapi', inter_sim_mean: null },
    ]);
    expect(applyFilters(t, ['divergen']).map((x) => x.kept)).toEqual([true, false, false]);
    expect(applyFilters(t, ['divergen'], { exemptCategories: ['okapi'] }).map((x) => x.kept)).toEqual([true, false, true]);
    expect(applyFilters(t, ['divergen'], { threshold: 0.5 }).map((x) => x.kept)).toEqual([true, true, false]);
  });
  it('ACP best-of-N: argmax per job, first on ties, −1 rejects', () => {
    const t = table([
      { id: 'a', job: 'j1', clis_i: 40 },
      { id: 'b', job: 'j1', clis_i: 70 },
      { id: 'c', job: 'j1', clis_i: 70 },
      { id: 'd', job: 'j2', clis_i: -1 },
      { id: 'e', job: 'j3', clis_i: 10 },
      // CLIP-mode scores can be negative: only the judge's exact −1 sentinel rejects, the rest compete
      { id: 'f', job: 'j4', clis_i: -3.5 },
      { id: 'g', job: 'j4', clis_i: -0.25 },
      { id: 'h', job: 'j5', clis_i: -1 },
      { id: 'i', job: 'j5', clis_i: -7 },
    ]);
    expect(applyFilters(t, ['acp']).map((x) => `${x.id}:${x.kept ? 'keep' : x.reason}`)).toEqual([
      'a:acp:not-best-of-n', 'b:keep', 'c:acp:not-best-of-n', 'd:acp:unparseable-judge-answer', 'e:keep',
      'f:acp:not-best-of-n', 'g:keep', 'h:acp:unparseable-judge-answer', 'i:keep',
    ]);
  });
  it('dedup keeps the first of each group; ALIA drops negatives, too-easy and likely-mislabeled', () => {
    const t = table([
      { id: 'a', dup_group: 'a', alia_winner: 0, alia_max_prob: 0.5, alia_threshold: 0.8, alia_pred: 'dog', alia_label: 'dog' },
      { id: 'b', dup_group: 'a', alia_winner: 0, alia_max_prob: 0.5, alia_threshold: 0.8, alia_pred: 'dog', alia_label: 'dog' },
      { id: 'c', dup_group: 'c', alia_winner: 2, alia_max_prob: 0.5, alia_threshold: 0.8, alia_pred: 'dog', alia_label: 'dog' },
      { id: 'd', dup_group: 'd', alia_winner: 0, alia_max_prob: 0.9, alia_threshold: 0.8, alia_pred: 'dog', alia_label: 'dog' },
      { id: 'e', dup_group: 'e', alia_winner: 0, alia_max_prob: 0.9, alia_threshold: 0.8, alia_pred: 'cat', alia_label: 'dog' },
      { id: 'f', dup_group: 'f', alia_winner: 0, alia_max_prob: 0.8, alia_threshold: 0.8, alia_pred: 'cat', alia_label: 'dog' },
    ]);
    expect(applyFilters(t, ['dedup', 'alia']).map((x) => (x.kept ? 'keep' : x.reason))).toEqual([
      'keep',
      'dedup:near-duplicate',
      'alia:semantic-negative-wins',
      'alia:too-easy',
      'alia:likely-mislabeled',
      'keep',
    ]);
  });
  it('ALIA\'s class-balanced subsampling: equal shares, a small class gives its rest to the others, drawn by seed among the kept', async () => {
    // Hand cases of the quotas: 10 over (8, 1, 8) -> the small class takes 1, the others split 9 as 5 + 4.
    expect(balancedQuotas([8, 1, 8], 10)).toEqual([5, 1, 4]);
    expect(balancedQuotas([3, 3, 3], 4)).toEqual([2, 1, 1]);
    expect(balancedQuotas([2, 0, 9], 20)).toEqual([2, 0, 9]);
    expect(balancedQuotas([5, 5], 0)).toEqual([0, 0]);
    const rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 30; i++) rows.push({ id: `s${i}`, category: i < 16 ? 'dog' : i < 18 ? 'cat' : 'cow', inter_sim_mean: i === 5 ? 0.1 : 0.9 });
    const t = table(rows);
    const ruled = applyFilters(t, ['divergen']);
    const sub = balancedSubsample(ruled, t, 10, 7);
    expect(sub.map((d) => d.id)).toEqual(ruled.map((d) => d.id));
    const kept = sub.filter((d) => d.kept);
    expect(kept).toHaveLength(10);
    const per = (c: string) => kept.filter((d) => t.get(d.id)!.category === c).length;
    // Kept before: dog 15 (s5 rejected), cat 2, cow 12 -> quotas dog 4, cat 2, cow 4.
    expect([per('dog'), per('cat'), per('cow')]).toEqual([4, 2, 4]);
    // Only kept samples can be drawn; the rest are dropped with the reason; a rejection keeps its own reason.
    expect(sub.find((d) => d.id === 's5')!.reason).toBe('divergen:similarity-below-threshold');
    for (const d of sub.filter((x) => !x.kept && x.id !== 's5')) expect(d.reason).toBe('subsample:not-drawn');
    // Deterministic by seed; another seed draws others; n at least the kept count changes nothing.
    expect(balancedSubsample(ruled, t, 10, 7)).toEqual(sub);
    expect(balancedSubsample(ruled, t, 10, 8).filter((d) => d.kept).map((d) => d.id)).not.toEqual(kept.map((d) => d.id));
    expect(balancedSubsample(ruled, t, 29, 7)).toEqual(ruled);
    await expectCode(() => balancedSubsample(ruled, t, -1, 7), 'E_RANGE', /subsample/);
  });
  it('requires the columns each preset reads (E_FORMAT naming column and preset); a null with a recorded error is a per-row rejection', async () => {
    // DiverGen without a similarity column, ALIA without any alia_* column, X-Paste without area_fraction: errors, not silent passes.
    await expectCode(() => applyFilters(table([{ id: 'a', category: 'dog', clip_score: 30 }]), ['divergen']), 'E_FORMAT', /inter_sim_mean.*/);
    expect(() => applyFilters(table([{ id: 'a', category: 'dog', clip_score: 30 }]), ['divergen'])).toThrow(/divergen/);
    await expectCode(() => applyFilters(table([{ id: 'a', category: 'dog' }]), ['alia']), 'E_FORMAT', /alia/);
    await expectCode(() => applyFilters(table([{ id: 'a', alia_max_prob: 0.9 }]), ['alia']), 'E_FORMAT', /alia_threshold/);
    await expectCode(() => applyFilters(table([{ id: 'a', category: 'dog', clip_score: 30 }]), ['xpaste']), 'E_FORMAT', /area_fraction.*xpaste|xpaste.*area_fraction/);
    // Per-row nulls: a scoring error rejects with its reason; a null area fraction no longer skips the area rule.
    const x = applyFilters(
      table([
        { id: 'a', category: 'dog', clip_score: 30, area_fraction: 0.5 },
        { id: 'b', category: 'dog', clip_score: 29, area_fraction: null },
        { id: 'c', category: 'dog', clip_score: null, area_fraction: null, clip_score_error: 'x.png: bad PNG' },
      ]),
      ['xpaste'],
    );
    expect(x.map((d) => (d.kept ? 'keep' : d.reason))).toEqual(['keep', 'xpaste:no-area-fraction', 'xpaste:scoring-error']);
    expect(x[2]!.values.error).toBe('x.png: bad PNG');
    const dg = applyFilters(
      table([
        { id: 'a', category: 'dog', inter_sim_mean: 0.7 },
        { id: 'b', category: 'dog', inter_sim_mean: null, inter_sim_mean_error: 'not embedded' },
        { id: 'c', category: 'okapi', inter_sim_mean: null },
      ]),
      ['divergen'],
      { exemptMissing: true },
    );
    expect(dg.map((d) => (d.kept ? 'keep' : d.reason))).toEqual(['keep', 'divergen:scoring-error', 'keep']);
    const al = applyFilters(
      table([
        { id: 'a', alia_winner: 0 },
        { id: 'b', alia_winner: null, alia_error: 'could not decode' },
        { id: 'c', alia_winner: 1 },
      ]),
      ['alia'],
    );
    expect(al.map((d) => (d.kept ? 'keep' : d.reason))).toEqual(['keep', 'alia:scoring-error', 'alia:semantic-negative-wins']);
    const conf = applyFilters(
      table([
        { id: 'a', alia_max_prob: 0.5, alia_threshold: 0.8, alia_pred: 'dog', alia_label: 'dog' },
        { id: 'b', alia_max_prob: null, alia_threshold: null, alia_pred: null, alia_label: 'dog', alia_error: 'could not decode' },
      ]),
      ['alia'],
    );
    expect(conf.map((d) => (d.kept ? 'keep' : d.reason))).toEqual(['keep', 'alia:scoring-error']);
  });
  it('names a missing column', () => {
    expect(() => applyFilters(table([{ id: 'a', category: 'x' }]), ['xpaste'])).toThrow(/clip_score/);
  });
});

// ------------------------------------------------------------------ table + CLI
describe('scores table and the CLI', () => {
  const folders = tempFolder('score');
  const tmp = { fresh: (n: string) => { const d = folders.fresh(n); mkdirSync(d, { recursive: true }); return d; } };
  it('merges columns into JSONL and CSV tables', async () => {
    for (const ext of ['jsonl', 'csv']) {
      const p = join(tmp.fresh(ext), `s.${ext}`);
      await mergeScores(p, new Map([['a', { x: 1 }], ['b,"q"', { x: 2 }]]));
      await mergeScores(p, new Map<string, ScoreColumns>([['a', { y: 'hi' }], ['c', { x: Number.NaN }]]));
      const t = await readScores(p);
      expect([...t.keys()]).toEqual(['a', 'b,"q"', 'c']);
      expect(t.get('a')).toEqual({ x: 1, y: 'hi' });
      expect(t.get('b,"q"')?.x).toBe(2);
    }
  });
  it('CSV tables round-trip cells with commas, quotes and line breaks (RFC 4180)', async () => {
    const p = join(tmp.fresh('csv-multiline'), 's.csv');
    const ids = ['plain', 'a,b', 'say "hi"', 'two\nlines', 'crlf\r\nline', '"\n,"'];
    const rows = new Map<string, ScoreColumns>(ids.map((id, i) => [id, { n: i + 0.5, note: `${id}|x,"y"\nz`, ok: i % 2 === 0 }]));
    await mergeScores(p, rows);
    // A second merge reads the file back (multi-line cells included) and rewrites it.
    await mergeScores(p, new Map<string, ScoreColumns>([['two\nlines', { extra: 'e\n"f"' }]]));
    const t = await readScores(p);
    expect([...t.keys()]).toEqual(ids);
    ids.forEach((id, i) => expect(t.get(id)).toEqual({ n: i + 0.5, note: `${id}|x,"y"\nz`, ok: i % 2 === 0, extra: id === 'two\nlines' ? 'e\n"f"' : null }));
    // Hand-written file: CRLF records, a quoted field across lines, doubled quotes, a blank line.
    const q = join(tmp.fresh('csv-hand'), 'h.csv');
    writeFileSync(q, 'id,v,w\r\n"x\r\ny",1,"a ""b"", c"\r\n\r\nz,2,\r\n');
    const h = await readScores(q);
    expect([...h.entries()]).toEqual([['x\r\ny', { v: 1, w: 'a "b", c' }], ['z', { v: 2, w: null }]]);
    writeFileSync(q, 'id,v\nx,"open\n');
    await expectCode(readScores(q), 'E_FORMAT', /h\.csv:2: a quoted field is not closed/);
    writeFileSync(q, 'id,v\n"a\nb",1,2\n');
    await expectCode(readScores(q), 'E_FORMAT', /h\.csv:2 has 3 cells, the header has 2/);
  });
  it('genaug filter writes kept and rejected with reasons; bad input is a clear error', async () => {
    const dir = tmp.fresh('cli');
    const s = join(dir, 's.jsonl');
    writeFileSync(s, ['{"id":"a","job":"j","clis_i":5}', '{"id":"b","job":"j","clis_i":9}'].join('\n') + '\n');
    const out = join(dir, 'kept.jsonl');
    expect(await run(['node', 'genaug', 'filter', '--scores', s, '--preset', 'acp', '--out', out])).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['b']);
    const rej = JSON.parse(readFileSync(join(dir, 'kept.rejected.jsonl'), 'utf8'));
    expect(rej).toMatchObject({ id: 'a', reason: 'acp:not-best-of-n', clis_i: 5, best: 9 });
    expect(await run(['node', 'genaug', 'filter', '--scores', join(dir, 'missing.jsonl'), '--preset', 'acp', '--out', out])).toBe(1);
    expect(await run(['node', 'genaug', 'filter', '--scores', s, '--preset', 'nope', '--out', out])).toBe(2);
  });
  it('genaug score clis-l scores plan layouts against a pool', async () => {
    const dir = tmp.fresh('clisl');
    const pool = join(dir, 'pool.json');
    writeFileSync(pool, JSON.stringify({ 'left of': [{ subject: 'dog', object: 'cat', s_bbox: [0, 0, 0.2, 0.2], o_bbox: [0.5, 0, 0.2, 0.2] }] }));
    const plan = join(dir, 'plan.jsonl');
    const job = (id: string, rel: string) => JSON.stringify({ id, layout: [{ name: 'dog', box: [0, 0, 0.2, 0.2] }, { name: 'cat', box: [0.5, 0, 0.2, 0.2] }], relations: [{ subject: ['dog-1'], object: ['cat-1'], relation: rel }] });
    writeFileSync(plan, [job('j1', 'left of'), job('j2', 'under')].join('\n') + '\n');
    const table = join(dir, 's.jsonl');
    expect(await run(['node', 'genaug', 'score', 'clis-l', '--plan', plan, '--pool', pool, '--exact-names', '--table', table])).toBe(0);
    const t = await readScores(table);
    expect(t.get('j1')).toMatchObject({ clis_l: 1, clis_l_status: 'ok' });
    expect(t.get('j2')).toMatchObject({ clis_l: 0, clis_l_status: 'unknown-predicate' });
  });
  it('genaug score clis-l --wordnet matches a layout name to a close pool name (puppy ~ dog) that exact names miss', async () => {
    const dir = tmp.fresh('clisl-wn');
    const pool = join(dir, 'pool.json');
    writeFileSync(pool, JSON.stringify({ 'left of': [{ subject: 'dog', object: 'cat', s_bbox: [0, 0, 0.2, 0.2], o_bbox: [0.5, 0, 0.2, 0.2] }] }));
    const plan = join(dir, 'plan.jsonl');
    writeFileSync(plan, JSON.stringify({ id: 'p', layout: [{ name: 'puppy', box: [0, 0, 0.2, 0.2] }, { name: 'cat', box: [0.5, 0, 0.2, 0.2] }], relations: [{ subject: ['puppy-1'], object: ['cat-1'], relation: 'left of' }] }) + '\n');
    const exact = join(dir, 'exact.jsonl');
    expect(await run(['node', 'genaug', 'score', 'clis-l', '--plan', plan, '--pool', pool, '--exact-names', '--table', exact])).toBe(0);
    expect((await readScores(exact)).get('p')).toMatchObject({ clis_l: 0, clis_l_status: 'no-candidates' });
    const wn = join(dir, 'wn.jsonl');
    expect(await run(['node', 'genaug', 'score', 'clis-l', '--plan', plan, '--pool', pool, '--wordnet', '--table', wn])).toBe(0);
    // Identical boxes: size, dist and dir similarities are all 1, so every term is P(w) = w and the scene
    // scores w = u(wup(puppy, dog)) * u(1), with the warp u(x) = x^2 on [0.8, 0.9) (ALGORITHMS.md 1.3).
    const { packagedWordNet } = await import('../ts/plan/wordnet.js');
    const wup = packagedWordNet().wordSimilarity('puppy', 'dog', 'wup')!;
    expect(wup).toBeGreaterThanOrEqual(0.8);
    expect(wup).toBeLessThan(0.9);
    const got = (await readScores(wn)).get('p')!;
    expect(got.clis_l_status).toBe('ok');
    expect(got.clis_l as number).toBeCloseTo(wup * wup, 5);
    expect(await run(['node', 'genaug', 'score', 'clis-l', '--plan', plan, '--pool', pool, '--wordnet', 'cosine', '--table', wn])).toBe(2);
  });
  it('genaug score clip-score takes area_fraction from the manifest / pool index / source image, the crop only as a named fallback', async () => {
    const dir = tmp.fresh('area');
    const model = await writeClipFolder(join(dir, 'clip'), 'split', tinyClipWeights());
    // Fully opaque 10x8 rectangular crops: their tight-crop fraction is 1.0 (X-Paste would drop them as > 0.95).
    const crop = (seed: number) => {
      const px = new Uint8Array(10 * 8 * 4);
      for (let i = 0; i < 80; i++) px.set([(seed * 40 + i) % 256, (i * 3) % 256, 100, 255], i * 4);
      return sharp(Buffer.from(px), { raw: { width: 10, height: 8, channels: 4 } }).png().toBuffer();
    };
    for (const n of ['a', 'b', 'c', 'd']) writeFileSync(join(dir, `${n}.png`), await crop(n.charCodeAt(0)));
    writeFileSync(join(dir, 'gen.png'), await sharp({ create: { width: 40, height: 20, channels: 3, background: '#808080' } }).png().toBuffer());
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ dog: [{ file: 'b.png', areaFraction: 0.25, source: 'gen.png', bbox: [0, 0, 10, 8] }] }));
    const manifest = join(dir, 'm.jsonl');
    writeFileSync(
      manifest,
      [
        { file: 'a.png', category: 'dog', area_fraction: 0.3 },
        { file: 'b.png', category: 'dog' },
        { file: 'c.png', category: 'dog', source: 'gen.png' },
        { file: 'd.png', category: 'dog' },
      ].map((l) => JSON.stringify(l)).join('\n') + '\n',
    );
    const table = join(dir, 's.jsonl');
    expect(await run(['node', 'genaug', 'score', 'clip-score', '--model', model, '--manifest', manifest, '--pool-index', join(dir, 'index.json'), '--table', table])).toBe(0);
    const t = await readScores(table);
    expect(['a.png', 'b.png', 'c.png', 'd.png'].map((id) => [t.get(id)!.area_fraction, t.get(id)!.area_fraction_source])).toEqual([
      [0.3, 'manifest'],
      [0.25, 'pool-index'],
      [80 / 800, 'source-image'],
      [1, 'crop'],
    ]);
  });
  it('clip-score and alia-confidence stream in batches: same scores whatever the batch size, an undecodable image is a row with an error', async () => {
    const dir = tmp.fresh('stream');
    const model = await writeClipFolder(join(dir, 'clip'), 'split', tinyClipWeights());
    const rng = seededRandom(5);
    const imgs: RgbInput[] = [];
    const lines: string[] = [];
    for (let i = 0; i < 7; i++) {
      const w = 6 + (i % 3) * 5;
      const h = 9 + (i % 2) * 4;
      const px = new Uint8Array(w * h * 4);
      for (let k = 0; k < px.length; k++) px[k] = k % 4 === 3 ? (rng() < 0.7 ? 255 : 0) : Math.floor(rng() * 256);
      writeFileSync(join(dir, `i${i}.png`), await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer());
      imgs.push(compositeOnWhite(px, w, h));
      lines.push(JSON.stringify({ file: `i${i}.png`, category: i % 2 ? 'dog' : 'cat', label: i % 2 ? 'dog' : 'cat' }));
      if (i === 3) {
        writeFileSync(join(dir, 'bad.png'), 'not a png');
        lines.push(JSON.stringify({ file: 'bad.png', category: 'dog', label: 'dog' }));
      }
    }
    const manifest = join(dir, 'm.jsonl');
    writeFileSync(manifest, lines.join('\n') + '\n');
    // Oracle: one unbatched call of the library over every decodable image.
    const { ClipModel } = await import('../ts/models/clip.js');
    const clip = await ClipModel.open(model);
    const want = await clipScores(clip, imgs, imgs.map((_, i) => (i % 2 ? 'dog' : 'cat')));
    await clip.close();
    const tables: Array<Map<string, ScoreColumns>> = [];
    for (const bs of ['1', '3', '64']) {
      const table = join(dir, `clip-${bs}.jsonl`);
      expect(await run(['node', 'genaug', 'score', 'clip-score', '--model', model, '--manifest', manifest, '--batch-size', bs, '--table', table])).toBe(0);
      tables.push(await readScores(table));
    }
    for (const t of tables) {
      expect([...t.keys()]).toEqual(['i0.png', 'i1.png', 'i2.png', 'i3.png', 'bad.png', 'i4.png', 'i5.png', 'i6.png']);
      expect([0, 1, 2, 3, 4, 5, 6].map((i) => t.get(`i${i}.png`)!.clip_score)).toEqual(Array.from(want));
      expect(t.get('bad.png')).toMatchObject({ clip_score: null, category: 'dog' });
      expect(String(t.get('bad.png')!.clip_score_error)).toMatch(/bad\.png/);
    }
    // ALIA confidence: a tiny classifier (global average pool → 3x2 matrix); the real set holds a bad image too.
    const { GraphBuilder } = await import('./onnx-builder.js');
    const g = new GraphBuilder('clf');
    const x = g.input('input', 'float32', ['n', 3, 8, 8]);
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [x])]);
    g.node('MatMul', [pooled, g.constF([1, -1, 0.5, 2, -2, 0.3], [3, 2])], {}, 'logits');
    g.output('logits', 'float32', ['n', 2]);
    await g.write(join(dir, 'clf.onnx'));
    writeFileSync(join(dir, 'classes.txt'), 'cat\ndog\n');
    const { ImageClassifier } = await import('../ts/curate/score.js');
    const clf = await ImageClassifier.open(join(dir, 'clf.onnx'));
    const { readImage } = await import('../ts/io/images.js');
    const all = await clf.predict(await Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => readImage(join(dir, `i${i}.png`)))));
    const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 6], (i) => i % 2);
    const thr = confidentThresholds(all.probs, labels, 2);
    const c = confidenceScores(all.probs, labels, 2, thr);
    const alia: Array<Map<string, ScoreColumns>> = [];
    for (const bs of ['2', '64']) {
      const table = join(dir, `alia-${bs}.jsonl`);
      const argv = ['node', 'genaug', 'score', 'alia-confidence', '--classifier', join(dir, 'clf.onnx'), '--classes', join(dir, 'classes.txt'), '--real', manifest, '--manifest', manifest, '--batch-size', bs, '--table', table];
      expect(await run(argv)).toBe(0);
      alia.push(await readScores(table));
    }
    for (const t of alia) {
      expect([0, 1, 2, 3, 4, 5, 6].map((i) => t.get(`i${i}.png`)!.alia_max_prob)).toEqual(Array.from(c.maxProb));
      expect([0, 1, 2, 3, 4, 5, 6].map((i) => t.get(`i${i}.png`)!.alia_threshold)).toEqual(Array.from(c.threshold));
      expect(t.get('bad.png')).toMatchObject({ alia_max_prob: null, alia_label: 'dog' });
      expect(String(t.get('bad.png')!.alia_error)).toMatch(/bad\.png/);
    }
    // genaug generate's own layout: OUT/manifest.jsonl naming `file` relative to OUT/images/ and `path` relative to
    // OUT/, the class in `category` (no `label`): read unchanged, with no --images, the same numbers come out.
    const gen = join(dir, 'gen');
    mkdirSync(join(gen, 'images'), { recursive: true });
    const genLines = [0, 1, 2, 3, 4, 5, 6].map((i) => {
      writeFileSync(join(gen, 'images', `i${i}.png`), readFileSync(join(dir, `i${i}.png`)));
      return JSON.stringify({ file: `i${i}.png`, path: `images/i${i}.png`, category: i % 2 ? 'dog' : 'cat', class: i % 2 ? 'dog' : 'cat', job: `j${i}` });
    });
    writeFileSync(join(gen, 'manifest.jsonl'), genLines.join('\n') + '\n');
    const genClip = join(dir, 'gen-clip.jsonl');
    expect(await run(['node', 'genaug', 'score', 'clip-score', '--model', model, '--manifest', join(gen, 'manifest.jsonl'), '--table', genClip])).toBe(0);
    const gc = await readScores(genClip);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => gc.get(`i${i}.png`)!.clip_score)).toEqual(Array.from(want));
    const genAlia = join(dir, 'gen-alia.jsonl');
    expect(await run(['node', 'genaug', 'score', 'alia-confidence', '--classifier', join(dir, 'clf.onnx'), '--classes', join(dir, 'classes.txt'), '--real', join(gen, 'manifest.jsonl'), '--manifest', join(gen, 'manifest.jsonl'), '--table', genAlia])).toBe(0);
    const ga = await readScores(genAlia);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => ga.get(`i${i}.png`)!.alia_max_prob)).toEqual(Array.from(c.maxProb));
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => ga.get(`i${i}.png`)!.alia_label)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => (i % 2 ? 'dog' : 'cat')));
    // And embed --manifest: the rows of generate's images, the same as embedding the images folder itself.
    expect(await run(['node', 'genaug', 'embed', '--features', '--manifest', join(gen, 'manifest.jsonl'), '--out', join(dir, 'gen.npy'), '-q'])).toBe(0);
    expect(await run(['node', 'genaug', 'embed', '--features', '--images', join(gen, 'images'), '--out', join(dir, 'folder.npy'), '-q'])).toBe(0);
    const { readMatrix } = await import('../ts/io/npy.js');
    const a = await readMatrix(join(dir, 'gen.npy'));
    const b = await readMatrix(join(dir, 'folder.npy'));
    expect(a.rows).toBe(7);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
  });
  it('genaug score inter-sim matches categories by case and _ vs space on both sides, and reports the ones that match nothing', async () => {
    const dir = tmp.fresh('inter-names');
    const { writeNpy } = await import('../ts/io/npy.js');
    const g = randomMatrix(4, 6, 11);
    const r = randomMatrix(5, 6, 12);
    await writeNpy(join(dir, 'g.npy'), g.data, [4, 6]);
    await writeNpy(join(dir, 'r.npy'), r.data, [5, 6]);
    const gc = ['Sea_Lion', 'dog', 'unicorn', 'sea  lion'];
    const rc = ['sea lion', 'DOG', 'sea_lion', 'zebra', 'Dog'];
    writeFileSync(join(dir, 'g.index.jsonl'), gc.map((c, i) => JSON.stringify({ file: `g${i}.png`, category: c })).join('\n') + '\n');
    writeFileSync(join(dir, 'r.index.jsonl'), rc.map((c, i) => JSON.stringify({ file: `r${i}.png`, category: c })).join('\n') + '\n');
    const table = join(dir, 's.jsonl');
    const printed: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (printed.push(String(chunk)), true));
    let code: number;
    try {
      code = await run(['node', 'genaug', 'score', 'inter-sim', '--gen', join(dir, 'g.npy'), '--real', join(dir, 'r.npy'), '--k', '2', '--table', table]);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    const t = await readScores(table);
    // Oracle: plain loops over the real rows of the same normalised name.
    const key = (c: string) => c.replace(/[_\s]+/g, ' ').trim().toLowerCase();
    gc.forEach((c, i) => {
      const cs = rc.flatMap((d, j) => (key(d) === key(c) ? [cosine(g, i, r, j)] : [])).sort((a, b) => b - a);
      const row = t.get(`g${i}.png`)!;
      if (cs.length === 0) {
        expect(row).toMatchObject({ inter_sim_mean: null, inter_sim_max: null, inter_sim_topk: null });
        expect(String(row.inter_sim_error)).toContain('"unicorn"');
        return;
      }
      expect(row.inter_sim_error).toBeUndefined();
      expect(row.inter_sim_mean as number).toBeCloseTo(cs.reduce((a, b) => a + b, 0) / cs.length, 4);
      expect(row.inter_sim_max as number).toBeCloseTo(cs[0]!, 5);
      expect(row.inter_sim_topk as number).toBeCloseTo((cs[0]! + cs[1]!) / 2, 5);
    });
    const out = printed.join('');
    expect(out).toMatch(/1 generated categories match no real category.*"unicorn"/);
    expect(out).toMatch(/1 real categories match no generated category: "zebra"/);
  });
  it('genaug score inter-sim rejects index files that do not match the embeddings', async () => {
    const dir = tmp.fresh('inter');
    const { writeNpy } = await import('../ts/io/npy.js');
    await writeNpy(join(dir, 'g.npy'), randomMatrix(3, 4, 1).data, [3, 4]);
    await writeNpy(join(dir, 'r.npy'), randomMatrix(2, 4, 2).data, [2, 4]);
    writeFileSync(join(dir, 'g.index.jsonl'), '{"file":"a.png","category":"dog"}\n{"file":"b.png","category":"dog"}\n');
    writeFileSync(join(dir, 'r.index.jsonl'), '{"file":"r1.png","category":"dog"}\n{"file":"r2.png","category":"dog"}\n');
    const table = join(dir, 's.jsonl');
    expect(await run(['node', 'genaug', 'score', 'inter-sim', '--gen', join(dir, 'g.npy'), '--real', join(dir, 'r.npy'), '--table', table])).toBe(1);
    expect(existsSync(table)).toBe(false);
    writeFileSync(join(dir, 'g.index.jsonl'), '{"file":"a.png","category":"dog"}\n{"file":"b.png","category":"dog"}\n{"file":"c.png","category":"cat"}\n');
    expect(await run(['node', 'genaug', 'score', 'inter-sim', '--gen', join(dir, 'g.npy'), '--real', join(dir, 'r.npy'), '--table', table])).toBe(0);
    const t = await readScores(table);
    expect(t.get('c.png')?.inter_sim_mean).toBeNull();
    expect(typeof t.get('a.png')?.inter_sim_mean).toBe('number');
  });
});

// ------------------------------------------------------------------ journals: resume and concurrency
describe('clis-i and real-crops journal every sample and resume', () => {
  const jt = tempFolder('journal');
  const fresh = (n: string) => {
    const d = jt.fresh(n);
    mkdirSync(d, { recursive: true });
    return d;
  };

  it('clis-i judge: --concurrency does not change the table; a killed run resumes with only the unfinished samples', async () => {
    // A grader whose answer depends only on the request (the text graded), answering after a request-dependent delay,
    // so completion order differs from manifest order under concurrency.
    let requests = 0;
    const hash = (t: string) => [...t].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        requests++;
        const content = JSON.parse(body).messages[0].content;
        const text = Array.isArray(content) ? content[1].text : String(content);
        const answer = Array.isArray(content) ? `seen ${hash(text) % 97}` : `{"score": ${hash(text) % 6}}`;
        setTimeout(() => res.end(JSON.stringify({ choices: [{ message: { content: answer }, finish_reason: 'stop' }] })), hash(text + body.length) % 15);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
    try {
      const dir = fresh('clis-i');
      const n = 6;
      const plan: string[] = [];
      const manifest: string[] = [];
      for (let i = 0; i < n; i++) {
        await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 20 * i, g: 40, b: 60 } } }).png().toFile(join(dir, `g${i}.png`));
        plan.push(JSON.stringify({ id: `j${i}`, prompt: `a dog ${'and a cat '.repeat(i)}`, layout: [{ name: 'dog', box: [0.1, 0.1, 0.5, 0.5], attributes: [`size ${i}`] }] }));
        manifest.push(JSON.stringify({ file: `g${i}.png`, job: `j${i}` }));
      }
      writeFileSync(join(dir, 'plan.jsonl'), plan.join('\n') + '\n');
      writeFileSync(join(dir, 'm.jsonl'), manifest.join('\n') + '\n');
      const argv = (table: string, c: number) => ['node', 'genaug', 'score', 'clis-i', '--plan', join(dir, 'plan.jsonl'), '--manifest', join(dir, 'm.jsonl'), '--vlm-url', url, '--vlm-model', 'x', '--retries', '0', '--concurrency', String(c), '--table', table];
      const one = join(fresh('c1'), 's.jsonl');
      expect(await run(argv(one, 1))).toBe(0);
      const perSample = requests / n;
      expect(perSample).toBe(6);  // VLM: image, region, crop; LLM: three grades
      const scores = [...(await readScores(one)).values()].map((r) => r.clis_i);
      expect(new Set(scores).size).toBeGreaterThan(1);
      const four = join(fresh('c4'), 's.jsonl');
      expect(await run(argv(four, 4))).toBe(0);
      expect(readFileSync(four, 'utf8')).toBe(readFileSync(one, 'utf8'));
      // A killed run: the journal holds 2 samples (in completion order) and a line cut short; no table yet.
      const journal = readFileSync(`${four}.clis-i.progress.jsonl`, 'utf8').split('\n');
      expect(journal.filter(Boolean)).toHaveLength(n + 1);
      const killed = join(fresh('killed'), 's.jsonl');
      writeFileSync(`${killed}.clis-i.progress.jsonl`, [...journal.slice(0, 3), journal[3]!.slice(0, 12)].join('\n'));
      requests = 0;
      expect(await run(argv(killed, 3))).toBe(0);
      expect(requests).toBe((n - 2) * perSample);
      expect(readFileSync(killed, 'utf8')).toBe(readFileSync(one, 'utf8'));
      // Other inputs start the journal over.
      writeFileSync(join(dir, 'plan.jsonl'), plan.map((l) => l.replace('a dog', 'a puppy')).join('\n') + '\n');
      requests = 0;
      expect(await run(argv(killed, 2))).toBe(0);
      expect(requests).toBe(n * perSample);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('real-crops: a killed run resumes, skipping finished images, and writes the same manifest', async () => {
    const dir = fresh('real');
    const images = join(dir, 'images');
    mkdirSync(images, { recursive: true });
    const coco = { images: [] as object[], annotations: [] as object[], categories: [{ id: 1, name: 'dog' }, { id: 2, name: 'cat' }] };
    for (let i = 0; i < 4; i++) {
      await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 50 * i, g: 90, b: 10 } } }).png().toFile(join(images, `i${i}.png`));
      coco.images.push({ id: i + 1, file_name: `i${i}.png`, width: 40, height: 30 });
      coco.annotations.push({ id: 10 + 2 * i, image_id: i + 1, category_id: 1, bbox: [5, 5, 10, 10], area: 100, iscrowd: 0, segmentation: [[5, 5, 15, 5, 15, 15, 5, 15]] });
      coco.annotations.push({ id: 11 + 2 * i, image_id: i + 1, category_id: 2, bbox: [20, 10, 12, 8], area: 96, iscrowd: 0, segmentation: [[20, 10, 32, 10, 32, 18, 20, 18]] });
    }
    coco.images.push({ id: 9, file_name: 'missing.png', width: 40, height: 30 });
    coco.annotations.push({ id: 99, image_id: 9, category_id: 1, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0, segmentation: [[1, 1, 6, 1, 6, 6, 1, 6]] });
    writeFileSync(join(dir, 'coco.json'), JSON.stringify(coco));
    const argv = (out: string) => ['node', 'genaug', 'score', 'real-crops', '--coco', join(dir, 'coco.json'), '--images', images, '--out', out];
    const full = join(dir, 'full');
    expect(await run(argv(full))).toBe(0);
    const manifest = readFileSync(join(full, 'manifest.jsonl'), 'utf8');
    expect(manifest.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['ann-10', 'ann-11', 'ann-12', 'ann-13', 'ann-14', 'ann-15', 'ann-16', 'ann-17']);
    expect(readFileSync(join(full, 'failed.jsonl'), 'utf8')).toMatch(/"annotation":99/);
    // Killed after two images (and a line cut short): no manifest yet; the finished images' sources are gone,
    // so a rerun that read them again would fail them.
    const killed = join(dir, 'killed');
    mkdirSync(join(killed, 'crops'), { recursive: true });
    const journal = readFileSync(join(full, 'progress.jsonl'), 'utf8').split('\n');
    writeFileSync(join(killed, 'progress.jsonl'), [...journal.slice(0, 3), journal[3]!.slice(0, 9)].join('\n'));
    for (const f of ['crops/10.png', 'crops/11.png', 'crops/12.png', 'crops/13.png']) writeFileSync(join(killed, f), readFileSync(join(full, f)));
    const moved = join(dir, 'moved');
    mkdirSync(moved);
    for (const f of ['i0.png', 'i1.png']) writeFileSync(join(moved, f), readFileSync(join(images, f)));
    for (const f of ['i0.png', 'i1.png']) rmSync(join(images, f));
    try {
      expect(await run(argv(killed))).toBe(0);
    } finally {
      for (const f of ['i0.png', 'i1.png']) writeFileSync(join(images, f), readFileSync(join(moved, f)));
    }
    expect(readFileSync(join(killed, 'manifest.jsonl'), 'utf8')).toBe(manifest);
    expect(readFileSync(join(killed, 'failed.jsonl'), 'utf8')).toBe(readFileSync(join(full, 'failed.jsonl'), 'utf8'));
    for (let a = 10; a < 18; a++) expect(Buffer.compare(readFileSync(join(killed, `crops/${a}.png`)), readFileSync(join(full, `crops/${a}.png`)))).toBe(0);
  });
});

// ------------------------------------------------------------------ judge over HTTP
describe('CLIS-I judge mode against a local chat-completions server', () => {
  let server: Server;
  let url = '';
  /** What the grader answers, in order; the VLM always describes. */
  let grades: Array<{ content?: string; finish?: string; status?: number; raw?: string }> = [];
  const prompts: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const b = JSON.parse(body);
        const content = b.messages[0].content;
        const isVlm = Array.isArray(content);
        prompts.push(isVlm ? content[1].text : content);
        if (isVlm) {
          res.end(JSON.stringify({ choices: [{ message: { content: 'a dog catching a red frisbee' }, finish_reason: 'stop' }] }));
          return;
        }
        const g = grades.shift() ?? { content: '{"score": 5}' };
        if (g.raw !== undefined) {
          res.writeHead(g.status ?? 200).end(g.raw);
          return;
        }
        res.end(JSON.stringify({ choices: [{ message: { content: g.content }, finish_reason: g.finish ?? 'stop' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address() as { port: number };
    url = `http://127.0.0.1:${a.port}/v1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const input = () => ({ image: randomImage(16, 16, 1), caption: 'a dog catches a frisbee', objects: [{ name: 'dog', box: [0.1, 0.2, 0.3, 0.4] as [number, number, number, number] }] });
  const judgeTmp = tempFolder('judge');
  const clients = () => ({ vlm: new ChatClient({ baseUrl: url, model: 'vlm', retries: 1, backoffMs: 1 }), llm: new ChatClient({ baseUrl: url, model: 'llm', retries: 1, backoffMs: 1 }) });

  it('valid grades: 0.5·G + 0.5·(0.8·region + 0.2·crop), ×20; region prompt carries the box', async () => {
    grades = [{ content: '{"score": 4, "explanation": "ok"}' }, { content: '```json\n{"score": 3}\n```' }, { content: 'Sure: {"score": 5}' }];
    prompts.length = 0;
    const { vlm, llm } = clients();
    const r = await clisImageJudge(vlm, llm, input());
    expect(r.global).toBe(80);
    expect(r.objects).toEqual([0.8 * 60 + 0.2 * 100]);
    expect(r.score).toBeCloseTo(0.5 * 80 + 0.5 * 68, 10);
    const [x0, y0, x1, y1] = gridBox([0.1, 0.2, 0.3, 0.4]);
    expect([x0, y0, x1, y1]).toEqual([99, 199, 399, 599]);
    expect(prompts.some((p) => p.includes('<box>(99,199),(399,599)</box>'))).toBe(true);
  });
  it('malformed, truncated and non-JSON answers are retried, then −1', async () => {
    // Global: malformed then valid (retry works). Region: truncated twice → −1. Crop: fine.
    grades = [{ content: '{"score": 9}' }, { content: '{"score": 2}' }, { content: '{"score": 4', finish: 'length' }, { content: '{"score": 4}', finish: 'length' }, { content: '{"score": 1}' }];
    const { vlm, llm } = clients();
    const r = await clisImageJudge(vlm, llm, input(), { retries: 1 });
    expect(r.global).toBe(40);
    expect(r.score).toBe(-1);
    expect(r.notes.join(' ')).toMatch(/finish_reason "length"/);
    grades = [{ content: 'I think it is great' }, { content: 'no idea, sorry' }];
    const r2 = await clisImageJudge(vlm, llm, input(), { retries: 1 });
    expect(r2.score).toBe(-1);
    expect(r2.global).toBe(-1);
    expect(r2.notes.join(' ')).toMatch(/unparseable grade after 2 attempts/);
  });
  it('reads "score: N" answers (regex fallback, §1.2) before declaring −1', async () => {
    grades = [{ content: 'The score: 4, since the dog matches.' }, { content: "score = 3" }, { content: '{"rating": 1} but score: 2' }];
    const { vlm, llm } = clients();
    const r = await clisImageJudge(vlm, llm, input());
    expect([r.global, r.objects]).toEqual([80, [0.8 * 60 + 0.2 * 40]]);
    expect(parseGrade('{"score": 4', 'length')).toHaveProperty('error');
    expect(parseGrade('score: 7')).toHaveProperty('error');
    expect(parseGrade('{"score": 5}')).toEqual({ score: 5 });
  });
  it('transport and HTTP errors fail the item (E_BACKEND), never −1; the CLI records them and exits non-zero when all fail', async () => {
    grades = [{ status: 500, raw: 'server exploded' }, { status: 503, raw: 'still down' }];
    const { vlm, llm } = clients();
    await expectCode(clisImageJudge(vlm, llm, input()), 'E_BACKEND', /HTTP 503/);
    grades = [{ status: 400, raw: 'bad request' }];
    await expectCode(clisImageJudge(vlm, llm, input()), 'E_BACKEND', /HTTP 400/);
    const down = new ChatClient({ baseUrl: 'http://127.0.0.1:9/v1', model: 'x', retries: 0, backoffMs: 1 });
    await expectCode(clisImageJudge(down, down, input()), 'E_BACKEND', /could not connect/);
    // The grade schema sent in strict mode lists every property as required and allows no others.
    expect(GRADE_RESPONSE_FORMAT.json_schema.strict).toBe(true);
    const schema = GRADE_RESPONSE_FORMAT.json_schema.schema as { required: string[]; properties: object; additionalProperties: boolean };
    expect([...schema.required].sort()).toEqual(Object.keys(schema.properties).sort());
    expect(schema.additionalProperties).toBe(false);
    // CLI: a server that is down fails every item: rows with clis_i_error, exit 1.
    const dir = judgeTmp.fresh('cli');
    mkdirSync(dir, { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } }).png().toFile(join(dir, 'a.png'));
    writeFileSync(join(dir, 'plan.jsonl'), JSON.stringify({ id: 'j', prompt: 'a dog', layout: [{ name: 'dog', box: [0.1, 0.1, 0.5, 0.5] }] }) + '\n');
    writeFileSync(join(dir, 'm.jsonl'), JSON.stringify({ file: 'a.png', job: 'j' }) + '\n');
    const table = join(dir, 's.jsonl');
    const argv = ['node', 'genaug', 'score', 'clis-i', '--plan', join(dir, 'plan.jsonl'), '--manifest', join(dir, 'm.jsonl'), '--vlm-url', 'http://127.0.0.1:9/v1', '--vlm-model', 'x', '--retries', '0', '--table', table];
    expect(await run(argv)).toBe(1);
    expect((await readScores(table)).get('a.png')).toMatchObject({ clis_i: null, job: 'j' });
    expect(String((await readScores(table)).get('a.png')!.clis_i_error)).toMatch(/E_BACKEND.*could not connect/);
    // Up again: scored.
    grades = [];
    expect(await run([...argv.slice(0, -6), '--vlm-url', url, '--vlm-model', 'x', '--retries', '0', '--table', table])).toBe(0);
    expect((await readScores(table)).get('a.png')).toMatchObject({ clis_i: 100, job: 'j' });
    // A manifest naming a file that is not there: the server is never asked, and is not blamed (E_IO naming the file).
    writeFileSync(join(dir, 'gone.jsonl'), JSON.stringify({ file: 'gone.png', job: 'j' }) + '\n');
    const said: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (said.push(String(chunk)), true));
    const before = prompts.length;
    try {
      const gone = ['node', 'genaug', 'score', 'clis-i', '--plan', join(dir, 'plan.jsonl'), '--manifest', join(dir, 'gone.jsonl'), '--vlm-url', url, '--vlm-model', 'x', '--retries', '0', '--table', join(dir, 'gone-s.jsonl')];
      expect(await run(gone)).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(prompts.length).toBe(before);
    expect(said.join('')).toMatch(/E_IO.*none of the 1 images could be read \(first: .*gone\.png/);
    expect(said.join('')).not.toMatch(/server/);
  });
});
