/**
 * Distribution metrics over embeddings: Gaussian statistics (mean and
 * covariance, mergeable exactly across chunks, files and workers), the
 * Fréchet distance between two such Gaussians (how far a synthetic set is from
 * a real one) and the Vendi score (how many effectively distinct items a set
 * holds, with cosine similarity).
 *
 * Decisions a caller should know:
 * - The covariance is unbiased: comoment / (count - 1). A single point has
 *   covariance 0 (not an error); an empty state has none (E_RANGE).
 * - A state keeps its mean as `shift + offset`, where `shift` is a reference
 *   point taken from the data. Merges and mean differences then stay exact to
 *   double precision even when the mean is large compared with the spread.
 * - The Fréchet distance handles rank-deficient covariances (fewer points
 *   than dimensions): eigenvalues below D x 2.2e-16 x the largest are treated
 *   as 0, and the result is clipped at 0.
 * - Vendi: rows are L2-normalised, so a zero row is an error (E_RANGE: cosine
 *   similarity is undefined for it); NaN/Inf is E_NONFINITE naming the row
 *   and column. The score lies in [1, min(N, D)].
 * Every native operation returns a Promise and runs off the event loop; the
 * *Sync twins are for worker threads.
 */

import type { NativeAddon, NativeFrechet, NativeMetricsOptions } from '../native/addon.js';
import { GenaugError } from '../native/errors.js';
import { native } from '../native/load.js';
import { checkInt, checkMatrix, type Matrix, pinInputs } from '../native/validate.js';

/** The widest statistics supported (a D x D double matrix; the native limit too). */
export const MAX_DENSE_DIM = 8192;

/** The Gaussian state of a set of D-dimensional points. */
export interface GaussianStats {
  /** Number of points. */
  count: number;
  dim: number;
  /** D values: a reference point close to the data. mean = shift + offset. */
  shift: Float64Array;
  /** D values: the mean minus the shift. */
  offset: Float64Array;
  /** D x D row-major, symmetric: the sum over points of (x - mean)(x - mean)^T. */
  comoment: Float64Array;
}

export interface MetricsOptions {
  /** Threads for this call (default: every core). Results do not depend on it. */
  threads?: number;
  /** SIMD level: 'auto' (default), or a lower one for testing (results may differ in the last bits). */
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  /** Names for error messages: what to call the matrix (e.g. its file) and the row number of its first row. */
  describe?: { name?: string; rowOffset?: number };
}

export interface VendiOptions extends MetricsOptions {
  /**
   * 'auto' (default): from the N x N Gram matrix when N <= D, from the D x D
   * matrix otherwise (same nonzero eigenvalues). The others force one.
   */
  path?: 'auto' | 'gram' | 'covariance';
}

export type FrechetResult = NativeFrechet;

export interface VendiResult {
  /** exp(entropy), in [1, min(N, D)]. */
  score: number;
  /** -sum lambda log lambda over the eigenvalues of K / N (natural log). */
  entropy: number;
  /** Which matrix the eigenvalues came from: 'gram' (N x N) or 'covariance' (D x D). */
  path: 'gram' | 'covariance';
  /** The eigenvalues, ascending, rounding negatives clipped to 0; they sum to 1. */
  eigenvalues: Float64Array;
}


const addon = (): NativeAddon => native();

const ISAS = new Set(['auto', 'scalar', 'avx2', 'avx512']);
const PATHS = new Set(['auto', 'gram', 'covariance']);

function nativeOptions(o: VendiOptions | undefined, allowPath: boolean): NativeMetricsOptions {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null) throw new GenaugError('E_TYPE', 'options must be an object');
  const out: NativeMetricsOptions = {};
  if (o.threads !== undefined) out.threads = checkInt(o.threads, 'options.threads', 0, 256);
  if (o.isa !== undefined) {
    if (!ISAS.has(o.isa)) throw new GenaugError('E_RANGE', `options.isa must be one of auto, scalar, avx2, avx512; got ${String(o.isa)}`);
    out.isa = o.isa;
  }
  if (o.describe !== undefined) {
    if (typeof o.describe !== 'object' || o.describe === null) throw new GenaugError('E_TYPE', 'options.describe must be an object');
    if (o.describe.name !== undefined) out.name = String(o.describe.name);
    if (o.describe.rowOffset !== undefined) out.rowOffset = checkInt(o.describe.rowOffset, 'describe.rowOffset', 0);
  }
  if (allowPath && o.path !== undefined) {
    if (!PATHS.has(o.path)) throw new GenaugError('E_RANGE', `options.path must be one of auto, gram, covariance; got ${String(o.path)}`);
    out.path = o.path;
  }
  return out;
}

const pin = pinInputs;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return Array.isArray(v) ? 'an array' : typeof v;
}

function checkFinite(a: Float64Array, what: string, dim: number): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i] as number;
    if (!Number.isFinite(v)) {
      const where = dim > 0 ? `entry (${Math.floor(i / dim)}, ${i % dim})` : `element ${i}`;
      throw new GenaugError('E_NONFINITE', `${what} ${where} is ${Number.isNaN(v) ? 'NaN' : 'infinite'}`);
    }
  }
}

/** Checks a GaussianStats object (types, lengths, finite values) and returns it. */
export function checkGaussianStats(s: unknown, name: string): GaussianStats {
  if (typeof s !== 'object' || s === null) {
    throw new GenaugError('E_TYPE', `${name} must be GaussianStats { count, dim, shift, offset, comoment }, got ${typeName(s)}`);
  }
  const g = s as Partial<GaussianStats>;
  checkInt(g.count, `${name}.count`, 0);
  const dim = checkInt(g.dim, `${name}.dim`, 1, MAX_DENSE_DIM);
  for (const [key, len] of [
    ['shift', dim],
    ['offset', dim],
    ['comoment', dim * dim],
  ] as const) {
    const a = g[key];
    if (!(a instanceof Float64Array)) throw new GenaugError('E_DTYPE', `${name}.${key} must be a Float64Array, got ${typeName(a)}`);
    if (a.length !== len) throw new GenaugError('E_SHAPE', `${name}.${key} has ${a.length} elements but dim ${dim} needs ${len}`);
    checkFinite(a, `${name}.${key}`, key === 'comoment' ? dim : 0);
  }
  return s as GaussianStats;
}

function fromNative(s: { count: number; dim: number; shift: Float64Array; offset: Float64Array; comoment: Float64Array }): GaussianStats {
  return { count: s.count, dim: s.dim, shift: s.shift, offset: s.offset, comoment: s.comoment };
}

/**
 * The Gaussian state (count, mean, co-moments) of the rows of an N x D
 * float32 matrix, accumulated natively in double. N = 0 gives the empty state,
 * which merges as the identity.
 */
export async function gaussianStats(m: Matrix, options?: MetricsOptions): Promise<GaussianStats> {
  checkMatrix(m, 'data');
  const opts = nativeOptions(options, false);
  pin(m.data);
  return fromNative(await addon().gaussianStats(m.data, m.rows, m.dim, opts));
}

export function gaussianStatsSync(m: Matrix, options?: MetricsOptions): GaussianStats {
  checkMatrix(m, 'data');
  return fromNative(addon().gaussianStatsSync(m.data, m.rows, m.dim, nativeOptions(options, false)));
}

/** The state of no points: the identity of mergeGaussianStats. */
export function emptyGaussianStats(dim: number): GaussianStats {
  checkInt(dim, 'dim', 1, MAX_DENSE_DIM);
  return { count: 0, dim, shift: new Float64Array(dim), offset: new Float64Array(dim), comoment: new Float64Array(dim * dim) };
}

function copyStats(s: GaussianStats): GaussianStats {
  return { count: s.count, dim: s.dim, shift: s.shift.slice(), offset: s.offset.slice(), comoment: s.comoment.slice() };
}

/**
 * The state of the union of two sets (Chan et al.'s pairwise update), in
 * double, with the same formula as the native merge: the result keeps a's
 * shift. Returns new arrays; the inputs are not modified.
 */
export function mergeGaussianStats(a: GaussianStats, b: GaussianStats): GaussianStats {
  checkGaussianStats(a, 'a');
  checkGaussianStats(b, 'b');
  if (a.dim !== b.dim) throw new GenaugError('E_SHAPE', `cannot merge statistics of dimension ${a.dim} and ${b.dim}`);
  if (b.count === 0) return copyStats(a);
  if (a.count === 0) return copyStats(b);
  const D = a.dim;
  const count = a.count + b.count;
  if (!Number.isSafeInteger(count)) throw new GenaugError('E_RANGE', `merged count ${count} is beyond 2^53`);
  const fb = b.count / count;
  const fab = a.count * (b.count / count);
  const delta = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    delta[j] = ((b.shift[j] as number) - (a.shift[j] as number)) + ((b.offset[j] as number) - (a.offset[j] as number));
  }
  const offset = new Float64Array(D);
  for (let j = 0; j < D; j++) offset[j] = (a.offset[j] as number) + (delta[j] as number) * fb;
  const comoment = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    const di = (delta[i] as number) * fab;
    for (let j = i; j < D; j++) {
      const v = ((a.comoment[i * D + j] as number) + (b.comoment[i * D + j] as number)) + di * (delta[j] as number);
      comoment[i * D + j] = v;
      comoment[j * D + i] = v;
    }
  }
  return { count, dim: D, shift: a.shift.slice(), offset, comoment };
}

/** mean = shift + offset (D values). */
export function gaussianMean(s: GaussianStats): Float64Array {
  checkGaussianStats(s, 'stats');
  const m = new Float64Array(s.dim);
  for (let j = 0; j < s.dim; j++) m[j] = (s.shift[j] as number) + (s.offset[j] as number);
  return m;
}

/**
 * The unbiased covariance comoment / (count - 1), D x D row-major. A single
 * point has covariance 0; an empty state throws E_RANGE.
 */
export function gaussianCovariance(s: GaussianStats): Float64Array {
  checkGaussianStats(s, 'stats');
  return covariance(s, 'stats');
}

function covariance(s: GaussianStats, name: string): Float64Array {
  if (s.count === 0) throw new GenaugError('E_RANGE', `${name} is empty (count 0): it has no covariance`);
  const c = new Float64Array(s.dim * s.dim);
  if (s.count === 1) return c;
  const inv = 1 / (s.count - 1);
  for (let i = 0; i < c.length; i++) c[i] = (s.comoment[i] as number) * inv;
  return c;
}

function frechetArgs(a: GaussianStats, b: GaussianStats): [Float64Array, Float64Array, Float64Array, number] {
  checkGaussianStats(a, 'a');
  checkGaussianStats(b, 'b');
  if (a.dim !== b.dim) throw new GenaugError('E_SHAPE', `statistics of dimension ${a.dim} and ${b.dim} cannot be compared`);
  const diff = new Float64Array(a.dim);
  for (let j = 0; j < a.dim; j++) {
    diff[j] = ((a.shift[j] as number) - (b.shift[j] as number)) + ((a.offset[j] as number) - (b.offset[j] as number));
  }
  return [diff, covariance(a, 'a'), covariance(b, 'b'), a.dim];
}

/**
 * The Fréchet distance between the Gaussians of two states, with their
 * unbiased covariances: ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr((S1^1/2 S2 S1^1/2)^1/2).
 * Both states need at least one point (E_RANGE) and the same dimension (E_SHAPE).
 */
export async function frechetDistance(a: GaussianStats, b: GaussianStats, options?: MetricsOptions): Promise<FrechetResult> {
  const args = frechetArgs(a, b);
  return { ...(await addon().frechet(...args, nativeOptions(options, false))) };
}

export function frechetDistanceSync(a: GaussianStats, b: GaussianStats, options?: MetricsOptions): FrechetResult {
  const args = frechetArgs(a, b);
  return { ...addon().frechetSync(...args, nativeOptions(options, false)) };
}

function checkRowPath(a: Matrix, b: Matrix): void {
  checkMatrix(a, 'a');
  checkMatrix(b, 'b');
  if (a.dim !== b.dim) throw new GenaugError('E_SHAPE', `the sets have ${a.dim} and ${b.dim} columns`);
  if (a.rows < 1 || b.rows < 1) throw new GenaugError('E_RANGE', `the Fréchet distance needs at least one point on each side (counts ${a.rows} and ${b.rows})`);
  if (a.rows > a.dim || b.rows > b.dim) throw new GenaugError('E_SHAPE', `frechetDistanceRows needs at most as many rows as columns (${a.rows} and ${b.rows} rows, ${a.dim} columns): use gaussianStats + frechetDistance`);
}

/**
 * The Fréchet distance between the Gaussians of two sets of rows (unbiased
 * covariances), from the rows themselves: for sets with no more rows than
 * columns (per-class sets of wide features) it decomposes the N1 x N1 matrix
 * of centred cross products instead of the D x D covariance, with the same
 * kept eigenvalues and thresholds as frechetDistance, so the value is the
 * same up to rounding at a fraction of the cost.
 */
export async function frechetDistanceRows(a: Matrix, b: Matrix, options?: MetricsOptions): Promise<FrechetResult> {
  checkRowPath(a, b);
  pin(a.data);
  pin(b.data);
  return { ...(await addon().frechetRows(a.data, a.rows, a.dim, b.data, b.rows, b.dim, nativeOptions(options, false))) };
}

export function frechetDistanceRowsSync(a: Matrix, b: Matrix, options?: MetricsOptions): FrechetResult {
  checkRowPath(a, b);
  return { ...addon().frechetRowsSync(a.data, a.rows, a.dim, b.data, b.rows, b.dim, nativeOptions(options, false)) };
}

function toVendi(r: { score: number; entropy: number; gram: boolean; eigenvalues: Float64Array }): VendiResult {
  return { score: r.score, entropy: r.entropy, path: r.gram ? 'gram' : 'covariance', eigenvalues: r.eigenvalues };
}

function checkVendiMatrix(m: Matrix): void {
  checkMatrix(m, 'data');
  if (m.rows < 1) throw new GenaugError('E_SHAPE', 'the Vendi score needs at least one row; data has 0');
}

/** The Vendi score of the rows of an N x D float32 matrix, with cosine similarity. */
export async function vendiScore(m: Matrix, options?: VendiOptions): Promise<VendiResult> {
  checkVendiMatrix(m);
  const opts = nativeOptions(options, true);
  pin(m.data);
  return toVendi(await addon().vendi(m.data, m.rows, m.dim, opts));
}

export function vendiScoreSync(m: Matrix, options?: VendiOptions): VendiResult {
  checkVendiMatrix(m);
  return toVendi(addon().vendiSync(m.data, m.rows, m.dim, nativeOptions(options, true)));
}
