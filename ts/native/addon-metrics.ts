/** Type declarations of what native/binding/metrics.cc exports (to be merged into addon.ts). */

export interface NativeMetricsOptions {
  /** Threads (0 or absent: every core). Results do not depend on it. */
  threads?: number;
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  /** What to call the matrix in messages, and the row number of its first row. */
  name?: string;
  rowOffset?: number;
  /** Vendi only: 'auto' (N x N when N <= D, else D x D), or force one path. */
  path?: 'auto' | 'gram' | 'covariance';
}

export interface NativeGaussianStats {
  count: number;
  dim: number;
  /** D: the reference point; mean = shift + offset. */
  shift: Float64Array;
  offset: Float64Array;
  /** D x D row-major: sum of (x - mean)(x - mean)^T. */
  comoment: Float64Array;
}

export interface NativeFrechet {
  distance: number;
  meanTerm: number;
  trace1: number;
  trace2: number;
  traceSqrt: number;
  rank1: number;
}

export interface NativeVendi {
  score: number;
  entropy: number;
  gram: boolean;
  eigenvalues: Float64Array;
}

type Mat = [data: Float32Array, rows: number, dim: number];
type FrechetArgs = [meanDiff: Float64Array, cov1: Float64Array, cov2: Float64Array, dim: number, opts?: NativeMetricsOptions];

export interface NativeMetrics {
  gaussianStats(...args: [...Mat, opts?: NativeMetricsOptions]): Promise<NativeGaussianStats>;
  gaussianStatsSync(...args: [...Mat, opts?: NativeMetricsOptions]): NativeGaussianStats;
  frechet(...args: FrechetArgs): Promise<NativeFrechet>;
  frechetSync(...args: FrechetArgs): NativeFrechet;
  vendi(...args: [...Mat, opts?: NativeMetricsOptions]): Promise<NativeVendi>;
  vendiSync(...args: [...Mat, opts?: NativeMetricsOptions]): NativeVendi;
}
