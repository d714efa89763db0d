/**
 * The similarity engine: exact cosine (or dot-product) comparisons between
 * float32 embeddings, reduced on the fly so the full query x database matrix
 * never exists. Every operation returns a Promise and runs off the event loop;
 * the *Sync twins are for use inside worker threads.
 *
 * Normalisation: with `normalize` (the default) rows are L2-normalised first,
 * so scores are cosines. A zero row normalises to zeros: its cosine with every
 * row is 0 (documented choice; it is not an error). NaN or infinite inputs are
 * rejected with E_NONFINITE naming the row and column.
 */
import type { NativeClassResult, NativePairs, NativeSimilarityOptions, NativeTopK } from '../native/addon.js';
import { GenaugError } from '../native/errors.js';
import { type Device, resolveDevice } from '../native/device.js';
import { capabilities, native } from '../native/load.js';
import { checkInt, checkMatrix, checkNumber, checkSameDim, type Matrix, pinInputs, sliceRows } from '../native/validate.js';

export type { Matrix } from '../native/validate.js';

export interface SimilarityOptions {
  /** L2-normalise rows first, so scores are cosines (default true). */
  normalize?: boolean;
  /** Threads for this call (default: every core). Results do not depend on it. */
  threads?: number;
  /** SIMD level: 'auto' (default), or a lower one for testing. */
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  /** Bytes of database packed at a time (default 64 MiB): the engine's memory bound. */
  blockBytes?: number;
  /**
   * 'exact' (default): every result is the float32 engine's, byte for byte
   * (an 8-bit screening pass may run first, with a rigorous error bound and
   * exact float32 rescoring of every pair it cannot rule out).
   * 'bf16' (opt-in, faster): the screening margin is statistical (4 standard
   * deviations of the rounding error) instead of worst-case, so a true
   * neighbour scoring within about that error of the k-th may be missed;
   * every score returned is still the exact float32 score of the row
   * returned. On AVX2 the screening product is 8-bit integer (no AVX-512
   * BF16 kernel yet); measured recall@1 is in docs/performance.md.
   * On CUDA (`device: 'cuda'`, top-k and pairs, sm_80 or newer) 'bf16' screens with a
   * bf16 tensor-core product under a rigorous per-pair bound and rescores in
   * float32, so its result is the CUDA exact path's, byte for byte (this
   * mode has not yet run on a GPU: see docs/performance.md).
   */
  precision?: 'exact' | 'bf16';
  /** The screening pass in exact mode: 'auto' (default: where it is faster), 'on' or 'off' (for testing; same bytes). */
  screen?: 'auto' | 'on' | 'off';
  /**
   * Where the call runs: 'cpu' (default), 'cuda' or 'auto' (CUDA when usable,
   * else the CPU, silently). 'cuda' without a CUDA build or device fails with
   * E_CUDA_UNAVAILABLE saying why. The CUDA path keeps the results contract
   * (best first, ties to the lower index, NaN for an empty class, pairs by
   * (i, j)); its scores are float32 sums of the same scaled rows in another
   * order, within about 1e-6 of the CPU's (rowDot: the same bytes). `isa`
   * and `screen` apply to the CPU path only; on CUDA `precision: 'bf16'`
   * screens top-k and pairs on the tensor cores (the exact path's results, see
   * `precision`) and every other call is the exact float32 product.
   */
  device?: Device;
  /** GPU memory one call may use, in bytes (default: 3/4 of the device's free memory); larger inputs are streamed in blocks. */
  deviceBytes?: number;
  /** Aborting stops a running call at its next block; it rejects with E_ABORTED. */
  signal?: AbortSignal;
  /**
   * Names for error messages: what to call each side (e.g. its file) and the
   * row number of its first row when it is a chunk of something larger.
   */
  describe?: { query?: string; database?: string; queryRowOffset?: number; databaseRowOffset?: number };
}

export interface TopKResult {
  /** Query rows. */
  rows: number;
  /** Columns per row: min(k, database rows). */
  k: number;
  /**
   * rows x k database indices, best first; equal scores go to the lower index.
   * Int32Array: an in-memory database has fewer than 2^31 rows (topkFiles,
   * whose databases can be larger, writes int64).
   */
  indices: Int32Array;
  /** rows x k scores matching `indices`. */
  scores: Float32Array;
}

/**
 * A top-k result with 64-bit indices: what the addon returns, and what
 * topkFiles accumulates over database chunks whose row numbers can pass
 * 2^31 - 1. Not part of the public API.
 */
export interface TopK64 {
  rows: number;
  k: number;
  indices: BigInt64Array;
  scores: Float32Array;
}

export interface ClassScores {
  rows: number;
  classes: number;
  /** rows x classes; NaN for a class with no database rows. */
  values: Float32Array;
  /** Database rows per class. */
  counts: Int32Array;
}

export interface PairList {
  /** Row in the first set. */
  i: Int32Array;
  /** Row in the second set (or the same set, with j > i). */
  j: Int32Array;
  scores: Float32Array;
}

const ISAS = new Set(['auto', 'scalar', 'avx2', 'avx512']);

function nativeOptions(o: SimilarityOptions | undefined): NativeSimilarityOptions {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null) throw new GenaugError('E_TYPE', 'options must be an object');
  const out: NativeSimilarityOptions = {};
  if (o.normalize !== undefined) {
    if (typeof o.normalize !== 'boolean') throw new GenaugError('E_TYPE', 'options.normalize must be a boolean');
    out.normalize = o.normalize;
  }
  if (o.threads !== undefined) out.threads = checkInt(o.threads, 'options.threads', 0, 256);
  if (o.isa !== undefined) {
    if (!ISAS.has(o.isa)) throw new GenaugError('E_RANGE', `options.isa must be one of auto, scalar, avx2, avx512; got ${String(o.isa)}`);
    out.isa = o.isa;
  }
  if (o.blockBytes !== undefined) out.blockBytes = checkInt(o.blockBytes, 'options.blockBytes', 1 << 16);
  if (o.precision !== undefined) {
    if (o.precision !== 'exact' && o.precision !== 'bf16') throw new GenaugError('E_RANGE', `options.precision must be 'exact' or 'bf16', got ${String(o.precision)}`);
    out.precision = o.precision;
  }
  if (o.screen !== undefined) {
    if (o.screen !== 'auto' && o.screen !== 'on' && o.screen !== 'off') throw new GenaugError('E_RANGE', `options.screen must be 'auto', 'on' or 'off', got ${String(o.screen)}`);
    out.screen = o.screen;
  }
  if (o.device !== undefined && resolveDevice(o.device, 'options.device') === 'cuda') out.device = 'cuda';
  if (o.deviceBytes !== undefined) out.deviceBytes = checkInt(o.deviceBytes, 'options.deviceBytes', 1);
  if (o.describe !== undefined) {
    const d = o.describe;
    if (d.query !== undefined) out.queryName = String(d.query);
    if (d.database !== undefined) out.dbName = String(d.database);
    if (d.queryRowOffset !== undefined) out.queryRowOffset = checkInt(d.queryRowOffset, 'describe.queryRowOffset', 0);
    if (d.databaseRowOffset !== undefined) out.dbRowOffset = checkInt(d.databaseRowOffset, 'describe.databaseRowOffset', 0);
  }
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal)) throw new GenaugError('E_TYPE', 'options.signal must be an AbortSignal');
    if (o.signal.aborted) throw new GenaugError('E_ABORTED', 'the operation was aborted before it started', undefined, { cause: o.signal.reason });
  }
  return out;
}

/**
 * Runs one native call with the options' AbortSignal wired to the native
 * cancel flag for the duration of the call (the listener is removed after).
 */
async function withSignal<T>(
  o: SimilarityOptions | undefined,
  nopt: NativeSimilarityOptions,
  call: (n: NativeSimilarityOptions) => Promise<T>,
  inputs: ArrayBufferView[],
): Promise<T> {
  pinInputs(...inputs);
  const signal = o?.signal;
  if (!signal) return call(nopt);
  const flag = new Int32Array(1);
  const onAbort = () => Atomics.store(flag, 0, 1);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await call({ ...nopt, cancel: flag });
  } catch (e) {
    if (e instanceof GenaugError && e.code === 'E_ABORTED') throw new GenaugError('E_ABORTED', e.message, undefined, { cause: signal.reason });
    throw e;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function pairArgs(query: Matrix, db: Matrix) {
  checkMatrix(query, 'query');
  checkMatrix(db, 'database');
  checkSameDim(query, db, 'query', 'database');
  return [query.data, query.rows, query.dim, db.data, db.rows, db.dim] as const;
}

function checkLabels(labels: unknown, db: Matrix, numClasses: number | undefined): number {
  if (!(labels instanceof Int32Array)) {
    throw new GenaugError('E_DTYPE', `labels must be an Int32Array, got ${ArrayBuffer.isView(labels) ? labels.constructor.name : typeof labels}`);
  }
  if (labels.length !== db.rows) {
    throw new GenaugError('E_SHAPE', `labels has ${labels.length} entries but the database has ${db.rows} rows`);
  }
  let max = -1;
  for (let r = 0; r < labels.length; r++) {
    const l = labels[r] as number;
    if (l < 0) throw new GenaugError('E_RANGE', `labels[${r}] = ${l} is negative; labels must be class indices >= 0`);
    if (l > max) max = l;
  }
  const classes = numClasses === undefined ? Math.max(1, max + 1) : checkInt(numClasses, 'numClasses', 1, 2 ** 31 - 1);
  if (max >= classes) {
    const r = labels.findIndex((l) => l >= classes);
    throw new GenaugError('E_RANGE', `labels[${r}] = ${labels[r]} is outside [0, ${classes})`);
  }
  return classes;
}

function toTopK(rows: number, r: { k: number; indices: BigInt64Array; scores: Float32Array }): TopK64 {
  return { rows, k: r.k, indices: r.indices, scores: r.scores };
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * 64-bit row numbers or counts from the addon as an Int32Array, `offset`
 * added; E_RANGE (saying what to use instead) for one past 2^31 - 1, which an
 * in-memory matrix cannot have but a shifted chunk result can.
 */
function toInt32(a: BigInt64Array, what: string, offset = 0, hint = ''): Int32Array {
  const out = new Int32Array(a.length);
  for (let x = 0; x < out.length; x++) {
    const v = Number(a[x] as bigint);
    const shifted = v >= 0 ? v + offset : v;
    if (shifted > INT32_MAX) throw new GenaugError('E_RANGE', `${what} ${shifted} does not fit an Int32Array${hint}`);
    out[x] = shifted;
  }
  return out;
}

/** The public result: indices as Int32Array (E_RANGE for one past 2^31 - 1, which only topkFiles can hold). */
function narrow(r: TopK64): TopKResult {
  return { rows: r.rows, k: r.k, indices: toInt32(r.indices, 'top-k index', 0, ': use topkFiles (int64 indices) for databases of 2^31 rows or more'), scores: r.scores };
}

function classScores(rows: number, r: NativeClassResult): ClassScores {
  return { rows, classes: r.classes, values: r.values, counts: toInt32(r.counts, 'class count') };
}

function widen(r: TopKResult): TopK64 {
  return { rows: r.rows, k: r.k, indices: BigInt64Array.from(r.indices, (v) => BigInt(v)), scores: r.scores };
}

/** What the last similarity call ran (for benchmarks and tests; sync calls make it unambiguous). */
export function engineStats(): { screened: boolean; split: boolean; rescored: number; pairs: number } {
  return native().engineStats();
}

/** Query rows below which one native call cannot keep every core busy (one block of query rows). */
const SMALL_QUERY_ROWS = 192;

/**
 * For each query row, the k best database rows (k from 1 to 2^31; clamped to
 * the database size). A few query rows against a large database are split by
 * database rows over the cores and merged exactly (same bytes as one call).
 */
export async function topk(query: Matrix, db: Matrix, k: number, options?: SimilarityOptions): Promise<TopKResult> {
  return narrow(await topk64(query, db, k, options));
}

/** topk with 64-bit indices (internal: topkFiles). */
export async function topk64(query: Matrix, db: Matrix, k: number, options?: SimilarityOptions): Promise<TopK64> {
  const args = pairArgs(query, db);
  checkInt(k, 'k', 1, 2 ** 31);
  const nopt = nativeOptions(options);
  const cores = nopt.threads && nopt.threads > 0 ? nopt.threads : capabilities().cpu.threads;
  const parts = Math.min(cores, Math.floor(db.rows / 4096));
  // Few query rows on the CPU: the database is split over the cores. The CUDA path takes it whole.
  if (query.rows > SMALL_QUERY_ROWS || parts < 2 || nopt.device === 'cuda') {
    return toTopK(query.rows, await withSignal(options, nopt, (n) => native().topk(...args, k, n), [query.data, db.data]));
  }
  const bounds = Array.from({ length: parts + 1 }, (_, p) => Math.round((p * db.rows) / parts));
  const results = await Promise.all(
    bounds.slice(0, -1).map((start, p) => {
      const part = sliceRows(db, start, bounds[p + 1] as number);
      const popt = { ...nopt, threads: 1, dbRowOffset: (nopt.dbRowOffset ?? 0) + start };
      return withSignal(options, popt, (n) => native().topk(query.data, query.rows, query.dim, part.data, part.rows, part.dim, k, n), [query.data, db.data]);
    }),
  );
  let acc = toTopK(query.rows, results[0] as NativeTopK);
  for (let p = 1; p < parts; p++) acc = mergeTopk64(acc, toTopK(query.rows, results[p] as NativeTopK), bounds[p] as number, k);
  return acc;
}

export function topkSync(query: Matrix, db: Matrix, k: number, options?: SimilarityOptions): TopKResult {
  const args = pairArgs(query, db);
  checkInt(k, 'k', 1, 2 ** 31);
  return narrow(toTopK(query.rows, native().topkSync(...args, k, nativeOptions(options))));
}

export interface ClassOptions extends SimilarityOptions {
  /** Number of classes (default: largest label + 1). */
  numClasses?: number;
}

/**
 * For each query row, the mean score over the database rows of each class.
 * Computed without the full product: the mean of cosines with unit vectors is
 * the dot product with the class's mean unit vector.
 */
export async function classMean(query: Matrix, db: Matrix, labels: Int32Array, options?: ClassOptions): Promise<ClassScores> {
  const args = pairArgs(query, db);
  const classes = checkLabels(labels, db, options?.numClasses);
  const r = await withSignal(options, nativeOptions(options), (n) => native().classMean(...args, labels, classes, n), [query.data, db.data, labels]);
  return classScores(query.rows, r);
}

export function classMeanSync(query: Matrix, db: Matrix, labels: Int32Array, options?: ClassOptions): ClassScores {
  const args = pairArgs(query, db);
  const classes = checkLabels(labels, db, options?.numClasses);
  return classScores(query.rows, native().classMeanSync(...args, labels, classes, nativeOptions(options)));
}

/** For each query row, the max score over the database rows of each class (fused blocked product). */
export async function classMax(query: Matrix, db: Matrix, labels: Int32Array, options?: ClassOptions): Promise<ClassScores> {
  const args = pairArgs(query, db);
  const classes = checkLabels(labels, db, options?.numClasses);
  const r = await withSignal(options, nativeOptions(options), (n) => native().classMax(...args, labels, classes, n), [query.data, db.data, labels]);
  return classScores(query.rows, r);
}

export function classMaxSync(query: Matrix, db: Matrix, labels: Int32Array, options?: ClassOptions): ClassScores {
  const args = pairArgs(query, db);
  const classes = checkLabels(labels, db, options?.numClasses);
  return classScores(query.rows, native().classMaxSync(...args, labels, classes, nativeOptions(options)));
}

/** cos(query_i, db_i) for aligned rows (image i with text i): CLIP scores. */
export async function rowDot(query: Matrix, db: Matrix, options?: SimilarityOptions): Promise<Float32Array> {
  const args = pairArgs(query, db);
  if (query.rows !== db.rows) throw new GenaugError('E_SHAPE', `rowDot needs the same number of rows on both sides, got ${query.rows} and ${db.rows}`);
  return withSignal(options, nativeOptions(options), (n) => native().rowDot(...args, n), [query.data, db.data]);
}

export function rowDotSync(query: Matrix, db: Matrix, options?: SimilarityOptions): Float32Array {
  const args = pairArgs(query, db);
  if (query.rows !== db.rows) throw new GenaugError('E_SHAPE', `rowDot needs the same number of rows on both sides, got ${query.rows} and ${db.rows}`);
  return native().rowDotSync(...args, nativeOptions(options));
}

export interface PairsOptions extends SimilarityOptions {
  /** Pairs with score >= threshold are reported. */
  threshold: number;
  /** Query rows per native call (default 4096): bounds the latency of one call and lets pairs stream. */
  chunkRows?: number;
  /** Stop with E_LIMIT past this many pairs in total (default 50 million). */
  maxPairs?: number;
  /** Called with each chunk's pairs (already in global row numbers), in order. When given, pairs are not accumulated. */
  onPairs?: (chunk: PairList) => void | Promise<void>;
  /** Called after each chunk with (query rows done, query rows in all). */
  onProgress?: (done: number, total: number) => void;
}

function concatPairs(parts: PairList[]): PairList {
  let n = 0;
  for (const p of parts) n += p.scores.length;
  const out: PairList = { i: new Int32Array(n), j: new Int32Array(n), scores: new Float32Array(n) };
  let o = 0;
  for (const p of parts) {
    out.i.set(p.i, o);
    out.j.set(p.j, o);
    out.scores.set(p.scores, o);
    o += p.scores.length;
  }
  return out;
}

/**
 * Every pair with score >= threshold: within one set (b omitted; each
 * unordered pair once, j > i) or between two sets. Streams in chunks of query
 * rows, so memory is bounded by the chunk and the pairs found, never N x N.
 * Pairs come sorted by i, then j.
 */
export async function pairs(a: Matrix, b: Matrix | undefined, options: PairsOptions): Promise<PairList> {
  checkMatrix(a, b === undefined ? 'embeddings' : 'first set');
  if (b !== undefined) {
    checkMatrix(b, 'second set');
    checkSameDim(a, b, 'first set', 'second set');
  }
  if (typeof options !== 'object' || options === null) throw new GenaugError('E_TYPE', 'pairs needs an options object with a threshold');
  const threshold = checkNumber(options.threshold, 'threshold');
  const chunk = checkInt(options.chunkRows ?? 4096, 'chunkRows', 1);
  const maxPairs = checkInt(options.maxPairs ?? 50_000_000, 'maxPairs', 0);
  let budget = maxPairs;
  const nopt = nativeOptions(options);
  const db = b ?? a;
  const parts: PairList[] = [];
  for (let start = 0; start < a.rows || (start === 0 && a.rows === 0); start += chunk) {
    if (a.rows === 0) break;
    if (options.signal?.aborted) throw new GenaugError('E_ABORTED', 'pairs was aborted', undefined, { cause: options.signal.reason });
    const end = Math.min(a.rows, start + chunk);
    const q = sliceRows(a, start, end);
    const chunkOpt = { ...nopt, queryRowOffset: (nopt.queryRowOffset ?? 0) + start };
    let raw: NativePairs;
    try {
      raw = await withSignal(options, chunkOpt, (n) => native().pairs(q.data, q.rows, q.dim, db.data, db.rows, db.dim, threshold, b === undefined ? start : -1, budget, n), [q.data, db.data]);
    } catch (e) {
      if (e instanceof GenaugError && e.code === 'E_LIMIT') {
        throw new GenaugError('E_LIMIT', `more than ${maxPairs} pairs score >= ${threshold}; raise the threshold or maxPairs`);
      }
      throw e;
    }
    budget -= raw.scores.length;
    const r: PairList = { i: toInt32(raw.i, 'pair row', start), j: toInt32(raw.j, 'pair row'), scores: raw.scores };
    if (options.onPairs) await options.onPairs(r);
    else parts.push(r);
    options.onProgress?.(end, a.rows);
  }
  return concatPairs(parts);
}

export interface GroupResult {
  /** Group id per row: the smallest row index in its connected component. */
  group: Int32Array;
  /** Number of groups with more than one row. */
  duplicateGroups: number;
  /** 1 = keep, 0 = drop. */
  keep: Uint8Array;
}

/**
 * Groups rows connected by pairs (union-find) and decides which to keep.
 * - 'component' keeps the lowest index of every connected group (one per group;
 *   beware chaining: a-b and b-c put a and c together even when they differ);
 * - 'greedy' walks rows in order and drops a row only when it pairs with a row
 *   already kept, so a dropped row never drops another (no chaining).
 */
export function groupPairs(n: number, list: PairList, mode: 'component' | 'greedy' = 'component'): GroupResult {
  checkInt(n, 'n', 0);
  if (mode !== 'component' && mode !== 'greedy') throw new GenaugError('E_RANGE', `mode must be 'component' or 'greedy', got ${String(mode)}`);
  const parent = new Int32Array(n);
  for (let x = 0; x < n; x++) parent[x] = x;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      const p = parent[x] as number;
      parent[x] = parent[p] as number;
      x = p;
    }
    return x;
  };
  const m = list.scores.length;
  for (let e = 0; e < m; e++) {
    const a = Number(list.i[e]);
    const b = Number(list.j[e]);
    if (a < 0 || a >= n || b < 0 || b >= n) throw new GenaugError('E_RANGE', `pair ${e} (${a}, ${b}) is outside [0, ${n})`);
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) {
      if (ra < rb) parent[rb] = ra;
      else parent[ra] = rb;
    }
  }
  const group = new Int32Array(n);
  const size = new Int32Array(n);
  for (let x = 0; x < n; x++) {
    group[x] = find(x);
    size[group[x] as number] = (size[group[x] as number] as number) + 1;
  }
  let duplicateGroups = 0;
  for (let x = 0; x < n; x++) if (group[x] === x && (size[x] as number) > 1) duplicateGroups++;
  const keep = new Uint8Array(n);
  if (mode === 'component') {
    for (let x = 0; x < n; x++) keep[x] = group[x] === x ? 1 : 0;
  } else {
    // Adjacency of each row to lower rows, then a walk in index order.
    keep.fill(1);
    const lowerStart = new Int32Array(n + 1);
    for (let e = 0; e < m; e++) {
      const hi = Math.max(Number(list.i[e]), Number(list.j[e]));
      lowerStart[hi + 1] = (lowerStart[hi + 1] as number) + 1;
    }
    for (let x = 0; x < n; x++) lowerStart[x + 1] = (lowerStart[x + 1] as number) + (lowerStart[x] as number);
    const fill = lowerStart.slice(0, n);
    const lower = new Int32Array(m);
    for (let e = 0; e < m; e++) {
      const a = Number(list.i[e]);
      const b = Number(list.j[e]);
      const hi = Math.max(a, b);
      const slot = fill[hi] as number;
      fill[hi] = slot + 1;
      lower[slot] = Math.min(a, b);
    }
    for (let x = 0; x < n; x++) {
      for (let p = lowerStart[x] as number; p < (lowerStart[x + 1] as number); p++) {
        if (keep[lower[p] as number] === 1 && (lower[p] as number) !== x) {
          keep[x] = 0;
          break;
        }
      }
    }
  }
  return { group, duplicateGroups, keep };
}

export interface NearDuplicateOptions extends Omit<PairsOptions, 'onPairs'> {
  /** How to choose the rows to keep (default 'component'). */
  keep?: 'component' | 'greedy';
}

/** Near-duplicates within one set: the pairs, the connected groups and a keep mask. */
export async function nearDuplicates(emb: Matrix, options: NearDuplicateOptions): Promise<PairList & GroupResult> {
  const list = await pairs(emb, undefined, options);
  return { ...list, ...groupPairs(emb.rows, list, options.keep ?? 'component') };
}

/**
 * Merges two top-k results over the same query rows whose databases were
 * disjoint chunks: `b`'s indices are shifted by `bOffset`. Keeps the best
 * min(k, a.k + b.k) per row with the same order and tie rule as topk, so
 * chunk-by-chunk results equal the one-shot result.
 */
export function mergeTopk(a: TopKResult, b: TopKResult, bOffset: number, k: number): TopKResult {
  return narrow(mergeTopk64(widen(a), widen(b), bOffset, k));
}

/** mergeTopk with 64-bit indices (internal: topkFiles, whose chunk offsets can pass 2^31 - 1). */
export function mergeTopk64(a: TopK64, b: TopK64, bOffset: number, k: number): TopK64 {
  if (a.rows !== b.rows) throw new GenaugError('E_SHAPE', `mergeTopk: ${a.rows} rows vs ${b.rows} rows`);
  checkInt(k, 'k', 1, 2 ** 31);
  checkInt(bOffset, 'bOffset', 0);
  const kk = Math.min(k, a.k + b.k);
  const out: TopK64 = { rows: a.rows, k: kk, indices: new BigInt64Array(a.rows * kk), scores: new Float32Array(a.rows * kk) };
  const off = BigInt(bOffset);
  for (let r = 0; r < a.rows; r++) {
    let x = 0;
    let y = 0;
    for (let c = 0; c < kk; c++) {
      const ax = x < a.k ? (a.scores[r * a.k + x] as number) : Number.NEGATIVE_INFINITY;
      const by = y < b.k ? (b.scores[r * b.k + y] as number) : Number.NEGATIVE_INFINITY;
      const ai = x < a.k ? (a.indices[r * a.k + x] as bigint) : 0n;
      const braw = y < b.k ? (b.indices[r * b.k + y] as bigint) : 0n;
      const bi = braw >= 0n ? braw + off : braw;
      const takeA = y >= b.k || (x < a.k && (ax > by || (ax === by && ai < bi)));
      if (takeA) {
        out.scores[r * kk + c] = ax;
        out.indices[r * kk + c] = ai;
        x++;
      } else {
        out.scores[r * kk + c] = by;
        out.indices[r * kk + c] = bi;
        y++;
      }
    }
  }
  return out;
}
