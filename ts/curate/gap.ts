/**
 * How far the synthetic set is from the real one, and how diverse each is,
 * per class and overall: Fréchet distance between the two embedding
 * distributions (as Gaussians), mean nearest-neighbour similarity both ways
 * (does the synthetic data sit where the real data is; does it cover it),
 * and the Vendi score of each set (effective number of distinct samples).
 */
import { GenaugError } from '../native/errors.js';
import { frechetDistance, frechetDistanceRows, gaussianStats, vendiScore } from '../kernels/metrics.js';
import { topk } from '../kernels/similarity.js';
import type { Matrix } from '../native/validate.js';
import { gaussian, seededRandom } from '../util/random.js';

export interface GapOptions {
  /** L2-normalise rows before the Fréchet distance (default true, like the cosine scores; Vendi and NN always use cosine). */
  normalize?: boolean;
  threads?: number;
}

export interface SetGap {
  real: number;
  synthetic: number;
  /** null when a side has no rows. */
  frechet: number | null;
  /** Mean over synthetic rows of the cosine to their nearest real row. */
  syntheticToReal: number | null;
  /** Mean over real rows of the cosine to their nearest synthetic row (coverage). */
  realToSynthetic: number | null;
  vendiReal: number | null;
  vendiSynthetic: number | null;
}

function l2rows(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    let s = 0;
    for (let k = 0; k < m.dim; k++) s += (m.data[r * m.dim + k] as number) ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < m.dim; k++) out[r * m.dim + k] = (m.data[r * m.dim + k] as number) * inv;
  }
  return { data: out, rows: m.rows, dim: m.dim };
}

function meanTop1(scores: Float32Array): number {
  let s = 0;
  for (const v of scores) s += v;
  return s / scores.length;
}

/** The gap between two sets of embeddings (same width). */
export async function setGap(real: Matrix, synthetic: Matrix, o: GapOptions = {}): Promise<SetGap> {
  if (real.dim !== synthetic.dim) {
    throw new GenaugError('E_SHAPE', `real embeddings have ${real.dim} columns but synthetic ones ${synthetic.dim}`);
  }
  const threads = o.threads === undefined ? {} : { threads: o.threads };
  const both = real.rows > 0 && synthetic.rows > 0;
  const norm = o.normalize ?? true;
  let frechet: number | null = null;
  if (both) {
    const x = norm ? l2rows(real) : real;
    const y = norm ? l2rows(synthetic) : synthetic;
    // No more rows than columns on either side (per-class sets of wide features): from the rows, no D x D eigenproblem.
    if (x.rows <= x.dim && y.rows <= y.dim) frechet = (await frechetDistanceRows(x, y, threads)).distance;
    else frechet = (await frechetDistance(await gaussianStats(x, threads), await gaussianStats(y, threads), threads)).distance;
  }
  return {
    real: real.rows,
    synthetic: synthetic.rows,
    frechet,
    syntheticToReal: both ? meanTop1((await topk(synthetic, real, 1, threads)).scores) : null,
    realToSynthetic: both ? meanTop1((await topk(real, synthetic, 1, threads)).scores) : null,
    vendiReal: real.rows > 0 ? await vendi(real, 'real', threads) : null,
    vendiSynthetic: synthetic.rows > 0 ? await vendi(synthetic, 'synthetic', threads) : null,
  };
}

async function vendi(m: Matrix, which: string, threads: { threads?: number }): Promise<number> {
  try {
    return (await vendiScore(m, threads)).score;
  } catch (e) {
    if (e instanceof GenaugError) throw new GenaugError(e.code, `${which} embeddings: ${e.message}`, e.detail, { cause: e });
    throw e;
  }
}

/** Rows of `m` whose label is `c`. */
function rowsOf(m: Matrix, labels: Int32Array, c: number): Matrix {
  let n = 0;
  for (const l of labels) if (l === c) n++;
  const out = new Float32Array(n * m.dim);
  let o = 0;
  for (let r = 0; r < m.rows; r++) {
    if (labels[r] !== c) continue;
    out.set(m.data.subarray(r * m.dim, (r + 1) * m.dim), o * m.dim);
    o++;
  }
  return { data: out, rows: n, dim: m.dim };
}

export interface GapReport {
  overall: SetGap;
  /** Per class index (when labels are given), in class order. */
  perClass?: Array<SetGap & { class: number }>;
}

/** Overall and (with labels for both sets) per-class gap. */
export async function datasetGap(
  real: Matrix,
  synthetic: Matrix,
  labels?: { real: Int32Array; synthetic: Int32Array },
  o: GapOptions & { onClass?: (done: number, total: number) => void } = {},
): Promise<GapReport> {
  const report: GapReport = { overall: await setGap(real, synthetic, o) };
  if (!labels) return report;
  if (labels.real.length !== real.rows) throw new GenaugError('E_SHAPE', `${labels.real.length} real labels for ${real.rows} real rows`);
  if (labels.synthetic.length !== synthetic.rows) throw new GenaugError('E_SHAPE', `${labels.synthetic.length} synthetic labels for ${synthetic.rows} synthetic rows`);
  let classes = 0;
  for (const l of [...labels.real, ...labels.synthetic]) {
    if (l < 0) throw new GenaugError('E_RANGE', `labels must be class indices >= 0, got ${l}`);
    classes = Math.max(classes, l + 1);
  }
  report.perClass = [];
  for (let c = 0; c < classes; c++) {
    report.perClass.push({ class: c, ...(await setGap(rowsOf(real, labels.real, c), rowsOf(synthetic, labels.synthetic, c), o)) });
    o.onClass?.(c + 1, classes);
  }
  return report;
}

/** Width the run report's gap is computed in: wider embeddings go through a seeded random projection first. */
export const GAP_DIM = 128;
/** Seed of the run report's projection (and of `genaug gap --project`, so the two give the same figures). */
export const GAP_PROJECTION_SEED = 12345;

/**
 * A seeded Gaussian random projection to `k` columns (Johnson-Lindenstrauss:
 * cosines are kept approximately). The Fréchet distance needs a k x k matrix
 * square root per class; at CLIP/features widths (768-1701) that would take
 * minutes for a report, at 128 it takes milliseconds.
 */
export function randomProjection(m: Matrix, k: number, seed: number): Matrix {
  if (m.dim <= k) return m;
  const r = seededRandom(seed);
  const P = new Float32Array(m.dim * k);
  for (let i = 0; i < P.length; i++) P[i] = gaussian(r) / Math.sqrt(k);
  const out = new Float32Array(m.rows * k);
  for (let i = 0; i < m.rows; i++)
    for (let d = 0; d < m.dim; d++) {
      const v = m.data[i * m.dim + d] as number;
      if (v === 0) continue;
      for (let j = 0; j < k; j++) out[i * k + j] = (out[i * k + j] as number) + v * (P[d * k + j] as number);
    }
  return { data: out, rows: m.rows, dim: k };
}

/**
 * The gap between real crops and generated instances (instance embeddings:
 * `genaug embed --coco` outputs), overall and per class, for all generated
 * rows (before) and the `kept` files only (after), in GAP_DIM dimensions.
 */
export async function instanceGap(real: { m: Matrix; rows: Array<{ label: number }> }, gen: { m: Matrix; rows: Array<{ label: number; file: string }> }, kept: Set<string>) {
  const realP = randomProjection(real.m, GAP_DIM, GAP_PROJECTION_SEED);
  const realLabels = Int32Array.from(real.rows, (r) => r.label);
  const genP = randomProjection(gen.m, GAP_DIM, GAP_PROJECTION_SEED);
  const pick = (want: (i: number) => boolean) => {
    const idx = gen.rows.map((_, i) => i).filter(want);
    const data = new Float32Array(idx.length * genP.dim);
    idx.forEach((r, o) => data.set(genP.data.subarray(r * genP.dim, (r + 1) * genP.dim), o * genP.dim));
    return { m: { data, rows: idx.length, dim: genP.dim }, labels: Int32Array.from(idx, (i) => gen.rows[i]!.label) };
  };
  const all = pick(() => true);
  const after = pick((i) => kept.has(gen.rows[i]!.file));
  const labels = (x: { labels: Int32Array }) => ({ real: realLabels, synthetic: x.labels });
  return {
    before: all.m.rows > 1 ? await datasetGap(realP, all.m, labels(all)) : undefined,
    after: after.m.rows > 1 ? await datasetGap(realP, after.m, labels(after)) : undefined,
  };
}
