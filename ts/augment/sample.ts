/**
 * Seeded instance sampling for copy-paste (X-Paste / DiverGen InstPool,
 * ALGORITHMS.md §2.5). For one destination image of W x H pixels:
 *
 * 1. n ~ UniformInt[0, maxSamples - 1] attempts (maxSamples 20, so n can be 0).
 * 2. Per attempt, which instance: `cas_random` (default) picks a category
 *    uniformly among the categories with at least one instance, then an
 *    instance uniformly within it, with replacement; `random` picks uniformly
 *    over all instances.
 * 3. Size, for a category with a size prior N(μ, σ) of √(box area / image area):
 *    s ~ N(μ, σ) clipped to [minSizePixels / H, maxScale] (10 / H, 0.5);
 *    T = s²·H·W; r = (crop_w / crop_h)·U(0.8, 1.2); W' = ⌊√(rT)⌋, H' = ⌊W'/r⌋;
 *    rejected when W' < 5, H' < 5, W' ≥ W or H' ≥ H.
 *    Random-scale fallback (a category without a prior, or randomScale set):
 *    f ~ U(0.05, 0.3), W' = ⌊crop_w·f⌋, H' = ⌊crop_h·f⌋, rejected when a side
 *    is < 3 or ≥ the image side.
 * 4. Horizontal flip with p = 0.5.
 * 5. Centre (cx, cy) uniform over the integers [0, W) x [0, H).
 *
 * Draw order per attempt (fixed, so results are reproducible): the category
 * (cas_random) and the instance, or the one instance (random); the size (two
 * uniforms for the normal draw, then one for the aspect jitter; or one for the
 * random scale); a rejected attempt stops there. Then the flip, cx, cy.
 *
 * Every image's draws come from its own generator, seeded from (seed, image
 * id, copy index) by `itemSeed`, so the result does not depend on which
 * worker handles the image or in which order images are processed.
 */
import { GenaugError } from '../native/errors.js';
import { gaussian, seededRandom } from '../util/random.js';

export type SamplingMode = 'cas_random' | 'random';

export interface SampleOptions {
  /** Attempts per image are UniformInt[0, maxSamples - 1] (default 20). */
  maxSamples?: number;
  /** How instances are chosen (default 'cas_random'). */
  sampling?: SamplingMode;
  /** Lower clip of s, in pixels of the image height: s ≥ minSizePixels / H (default 10). */
  minSizePixels?: number;
  /** Upper clip of s (default 0.5). */
  maxScale?: number;
  /** Aspect jitter factor range (default [0.8, 1.2]). */
  aspectJitter?: [number, number];
  /** Prior-sized instances with a side below this are rejected (default 5). */
  minSide?: number;
  /** Use the random-scale rule for every category, prior or not (default false). */
  randomScale?: boolean;
  /** Random-scale factor range (default [0.05, 0.3], DiverGen). */
  randomScaleRange?: [number, number];
  /** Random-scaled instances with a side below this are rejected (default 3). */
  randomScaleMinSide?: number;
  /** Horizontal flip probability (default 0.5). */
  flipProbability?: number;
}

/** What sampling needs of an instance: its crop size. */
export interface SamplingInstance {
  width: number;
  height: number;
}

/** A pool category: the destination category id and its instances. */
export interface SamplingCategory {
  categoryId: number;
  instances: readonly SamplingInstance[];
}

/** A size prior: mean and (population) std of √(box area / image area). */
export interface SizePriorEntry {
  mean: number;
  std: number;
}

export interface Placement {
  /** Index into the categories given to the sampler. */
  category: number;
  /** Index into that category's instances. */
  instance: number;
  categoryId: number;
  targetWidth: number;
  targetHeight: number;
  flip: boolean;
  cx: number;
  cy: number;
  /** Which size rule was used. */
  scale: 'prior' | 'random';
}

export interface SampleResult {
  /** n, the number of attempts drawn. */
  attempts: number;
  placements: Placement[];
  /** Attempts rejected by the size rules. */
  rejected: { tooSmall: number; tooLarge: number };
}

export const SAMPLE_DEFAULTS: Required<SampleOptions> = Object.freeze({
  maxSamples: 20,
  sampling: 'cas_random',
  minSizePixels: 10,
  maxScale: 0.5,
  aspectJitter: [0.8, 1.2],
  minSide: 5,
  randomScale: false,
  randomScaleRange: [0.05, 0.3],
  randomScaleMinSide: 3,
  flipProbability: 0.5,
}) as Required<SampleOptions>;

function checkRange(name: string, r: unknown, min: number): [number, number] {
  if (!Array.isArray(r) || r.length !== 2 || !r.every((v) => typeof v === 'number' && Number.isFinite(v)) || r[0] < min || r[0] > r[1]) {
    throw new GenaugError('E_ARGUMENT', `${name} must be [low, high] with ${min} ≤ low ≤ high, got ${JSON.stringify(r)}`);
  }
  return r as [number, number];
}

/** The options with defaults filled in, checked (E_ARGUMENT naming the option). */
export function resolveSampleOptions(o: SampleOptions = {}): Required<SampleOptions> {
  const r = { ...SAMPLE_DEFAULTS } as Required<SampleOptions>;
  // Only the sampling keys (callers pass wider option objects).
  for (const k of Object.keys(SAMPLE_DEFAULTS) as Array<keyof SampleOptions>) {
    if (o[k] !== undefined) (r as unknown as Record<string, unknown>)[k] = o[k];
  }
  if (!Number.isInteger(r.maxSamples) || r.maxSamples < 1 || r.maxSamples > 10000) {
    throw new GenaugError('E_ARGUMENT', `maxSamples must be an integer in [1, 10000], got ${r.maxSamples}`);
  }
  if (r.sampling !== 'cas_random' && r.sampling !== 'random') throw new GenaugError('E_ARGUMENT', `sampling must be 'cas_random' or 'random', got '${String(r.sampling)}'`);
  for (const k of ['minSizePixels', 'maxScale', 'minSide', 'randomScaleMinSide'] as const) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || r[k] < 0) throw new GenaugError('E_ARGUMENT', `${k} must be a finite number ≥ 0, got ${String(r[k])}`);
  }
  if (!(r.flipProbability >= 0 && r.flipProbability <= 1)) throw new GenaugError('E_ARGUMENT', `flipProbability must be in [0, 1], got ${r.flipProbability}`);
  checkRange('aspectJitter', r.aspectJitter, Number.MIN_VALUE);
  checkRange('randomScaleRange', r.randomScaleRange, 0);
  return r;
}

/** murmur3's 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit generator seed from any number of non-negative safe integers (seed, image id, copy, ...). */
export function itemSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    if (!Number.isSafeInteger(p)) throw new GenaugError('E_ARGUMENT', `seed parts must be safe integers, got ${p}`);
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32((h ^ fmix32(lo + 0x632be5ab)) + 0x7f4a7c15);
    h = fmix32((h ^ fmix32(hi + 0x2545f491)) + 0x5bd1e995);
  }
  return h || 1;
}

/** The generator for one (seed, image id, copy) item. */
export function itemRandom(seed: number, imageId: number, copy: number): () => number {
  return seededRandom(itemSeed(seed, imageId, copy));
}

/** UniformInt[0, n - 1] from a generator of floats in (0, 1). */
export function uniformInt(random: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

function uniform(random: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * random();
}

/**
 * Draws the instances to paste onto one W x H image. `priors` maps a
 * destination category id to its size prior; categories without an entry use
 * the random-scale rule.
 */
export function sampleInstances(
  random: () => number,
  image: { width: number; height: number },
  categories: readonly SamplingCategory[],
  priors: ReadonlyMap<number, SizePriorEntry>,
  options: SampleOptions = {},
): SampleResult {
  const o = resolveSampleOptions(options);
  const W = image.width;
  const H = image.height;
  if (!Number.isInteger(W) || !Number.isInteger(H) || W <= 0 || H <= 0) {
    throw new GenaugError('E_ARGUMENT', `image size must be positive integers, got ${W} x ${H}`);
  }
  const nonEmpty = categories.map((c, i) => [c, i] as const).filter(([c]) => c.instances.length > 0);
  const flat: Array<[number, number]> = [];
  if (o.sampling === 'random') categories.forEach((c, i) => c.instances.forEach((_, j) => flat.push([i, j])));
  const result: SampleResult = { attempts: 0, placements: [], rejected: { tooSmall: 0, tooLarge: 0 } };
  const n = uniformInt(random, o.maxSamples);
  result.attempts = n;
  if (nonEmpty.length === 0) return result;
  for (let a = 0; a < n; a++) {
    let ci: number;
    let ii: number;
    if (o.sampling === 'cas_random') {
      const [c, i] = nonEmpty[uniformInt(random, nonEmpty.length)]!;
      ci = i;
      ii = uniformInt(random, c.instances.length);
    } else {
      [ci, ii] = flat[uniformInt(random, flat.length)]!;
    }
    const cat = categories[ci]!;
    const crop = cat.instances[ii]!;
    const prior = o.randomScale ? undefined : priors.get(cat.categoryId);
    let tw: number;
    let th: number;
    let scale: Placement['scale'];
    if (prior && Number.isFinite(prior.mean) && Number.isFinite(prior.std)) {
      scale = 'prior';
      const lo = o.minSizePixels / H;
      let s = prior.mean + prior.std * gaussian(random);
      s = Math.min(Math.max(s, lo), o.maxScale);
      const T = s * s * H * W;
      const r = (crop.width / crop.height) * uniform(random, o.aspectJitter[0], o.aspectJitter[1]);
      tw = Math.floor(Math.sqrt(r * T));
      th = Math.floor(tw / r);
      if (tw < o.minSide || th < o.minSide || !(crop.width > 0 && crop.height > 0)) {
        result.rejected.tooSmall++;
        continue;
      }
      if (tw >= W || th >= H) {
        result.rejected.tooLarge++;
        continue;
      }
    } else {
      scale = 'random';
      const f = uniform(random, o.randomScaleRange[0], o.randomScaleRange[1]);
      tw = Math.floor(crop.width * f);
      th = Math.floor(crop.height * f);
      if (tw < o.randomScaleMinSide || th < o.randomScaleMinSide) {
        result.rejected.tooSmall++;
        continue;
      }
      if (tw >= W || th >= H) {
        result.rejected.tooLarge++;
        continue;
      }
    }
    const flip = random() < o.flipProbability;
    const cx = uniformInt(random, W);
    const cy = uniformInt(random, H);
    result.placements.push({ category: ci, instance: ii, categoryId: cat.categoryId, targetWidth: tw, targetHeight: th, flip, cx, cy, scale });
  }
  return result;
}

/** Seeded Fisher-Yates shuffle of 0..n-1 (for epochs). */
export function shuffledIndices(n: number, random: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(random, i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
