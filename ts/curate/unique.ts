/**
 * Two different questions users ask of an embedding set, kept apart:
 *
 * - **uniqueness** — how unlike the rest of the set is each sample? For each
 *   row, the k most similar *other* rows (the blocked top-k engine, exact),
 *   and uniqueness = 1 − Σ wⱼ·simⱼ with the weights normalised to sum 1.
 *   k and the weights are options (fiftyone hard-codes k = 3, [0.6, 0.3, 0.1];
 *   those are the defaults here). A row's score says nothing about which rows
 *   to keep together.
 * - **a mutually diverse subset** — which S rows are most unlike *each other*?
 *   Greedy max-min (farthest-point) selection: start from the row least like
 *   the set's mean direction, then repeatedly add the row whose highest
 *   similarity to the rows chosen so far is lowest. Each step is one pass over
 *   the set (N·D), so S steps cost S·N·D; ties go to the lower row index.
 *
 * Both use cosine similarity (rows L2-normalised) unless normalize is false.
 */
import { GenaugError } from '../native/errors.js';
import { topk, type SimilarityOptions } from '../kernels/similarity.js';
import { checkInt, checkMatrix, type Matrix } from '../native/validate.js';

export interface UniquenessOptions extends SimilarityOptions {
  /** Neighbours per row (default 3). */
  k?: number;
  /** Weight of the 1st, 2nd, ... neighbour (default [0.6, 0.3, 0.1]); length k. */
  weights?: number[];
}

export interface UniquenessResult {
  /** 1 − weighted mean similarity to the k nearest other rows; NaN for a set of one row. */
  uniqueness: Float32Array;
  /** Similarity to the nearest other row (what a near-duplicate threshold cuts). */
  nearest: Float32Array;
  /** Index of that row (−1 when there is none). */
  nearestIndex: Int32Array;
  k: number;
  weights: number[];
}

export async function uniqueness(emb: Matrix, options: UniquenessOptions = {}): Promise<UniquenessResult> {
  checkMatrix(emb, 'emb');
  const k = options.k ?? 3;
  checkInt(k, 'k', 1, 1024);
  const weights = options.weights ?? (k === 3 ? [0.6, 0.3, 0.1] : Array.from({ length: k }, () => 1 / k));
  if (weights.length !== k || weights.some((w) => !Number.isFinite(w) || w < 0) || !(weights.reduce((a, b) => a + b, 0) > 0)) {
    throw new GenaugError('E_RANGE', `weights must be ${k} finite non-negative numbers with a positive sum, got [${weights.join(', ')}]`);
  }
  const n = emb.rows;
  const kk = Math.min(k + 1, n);
  const { k: _k, weights: _w, ...engine } = options;
  const r = await topk(emb, emb, kk, engine);
  const out: UniquenessResult = {
    uniqueness: new Float32Array(n),
    nearest: new Float32Array(n),
    nearestIndex: new Int32Array(n).fill(-1),
    k,
    weights,
  };
  for (let i = 0; i < n; i++) {
    // The row itself is among its own top k+1 (score 1 for cosine); drop it. With many exact
    // duplicates at lower indices it can be pushed out: then drop the last entry instead.
    const row: Array<[number, number]> = [];
    let droppedSelf = false;
    for (let c = 0; c < r.k; c++) {
      const j = r.indices[i * r.k + c] as number;
      if (j === i && !droppedSelf) {
        droppedSelf = true;
        continue;
      }
      row.push([j, r.scores[i * r.k + c] as number]);
    }
    const neigh = row.slice(0, k);
    if (neigh.length === 0) {
      out.uniqueness[i] = Number.NaN;
      out.nearest[i] = Number.NaN;
      continue;
    }
    let ws = 0;
    let acc = 0;
    neigh.forEach(([, s], c) => {
      acc += (weights[c] as number) * s;
      ws += weights[c] as number;
    });
    out.uniqueness[i] = 1 - acc / ws;
    out.nearest[i] = neigh[0]![1];
    out.nearestIndex[i] = neigh[0]![0];
  }
  return out;
}

export interface DiverseSubsetOptions {
  /** L2-normalise rows first (default true). */
  normalize?: boolean;
  /** First row to pick (default: the row least similar to the mean direction). */
  start?: number;
  /** Called after each pick with (picked so far, size). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface DiverseSubset {
  /** Row indices in the order they were picked. */
  indices: Int32Array;
  /** For each pick, its highest similarity to the rows picked before it (NaN for the first). */
  coverage: Float32Array;
}

/** Greedy max-min selection of `size` mutually dissimilar rows. */
export async function diverseSubset(emb: Matrix, size: number, options: DiverseSubsetOptions = {}): Promise<DiverseSubset> {
  checkMatrix(emb, 'emb');
  const { rows: n, dim: d } = emb;
  checkInt(size, 'size', 0, n);
  const x = new Float32Array(emb.data);
  if (options.normalize !== false) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += x[i * d + c]! * x[i * d + c]!;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let c = 0; c < d; c++) x[i * d + c]! *= inv;
    }
  }
  let start = options.start;
  if (start === undefined) {
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c]! += x[i * d + c]!;
    let best = Number.POSITIVE_INFINITY;
    start = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += x[i * d + c]! * mean[c]!;
      if (s < best) {
        best = s;
        start = i;
      }
    }
  } else checkInt(start, 'start', 0, Math.max(0, n - 1));
  const indices = new Int32Array(size);
  const coverage = new Float32Array(size);
  const maxSim = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const picked = new Uint8Array(n);
  let next = start;
  for (let t = 0; t < size; t++) {
    if (options.signal?.aborted) throw new GenaugError('E_ABORTED', 'diverse subset selection was cancelled');
    indices[t] = next;
    coverage[t] = t === 0 ? Number.NaN : maxSim[next]!;
    picked[next] = 1;
    const o = next * d;
    let bestScore = Number.POSITIVE_INFINITY;
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (picked[i]) continue;
      let s = 0;
      const b = i * d;
      for (let c = 0; c < d; c++) s += x[o + c]! * x[b + c]!;
      if (s > maxSim[i]!) maxSim[i] = s;
      if (maxSim[i]! < bestScore) {
        bestScore = maxSim[i]!;
        best = i;
      }
    }
    next = best;
    options.onProgress?.(t + 1, size);
    // Yield to the event loop now and then: a long selection must not freeze the process.
    if ((t & 15) === 15) await new Promise<void>((r) => setImmediate(r));
  }
  return { indices, coverage };
}
