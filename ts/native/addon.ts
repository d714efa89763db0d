import type { NativeMask } from './addon-mask.js';
import type { NativeMetrics } from './addon-metrics.js';
import type { NativeComposite } from './addon-composite.js';

/** Type declarations of what native/binding exports. Only ts/ wrappers call these. */

export interface NativeSimilarityOptions {
  normalize?: boolean;
  threads?: number;
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  blockBytes?: number;
  /** Set element 0 to non-zero to stop the call at its next block (E_ABORTED). */
  cancel?: Int32Array;
  queryName?: string;
  dbName?: string;
  queryRowOffset?: number;
  dbRowOffset?: number;
}

export interface NativeTopK {
  k: number;
  indices: BigInt64Array;
  scores: Float32Array;
}

export interface NativeClassResult {
  classes: number;
  values: Float32Array;
  counts: BigInt64Array;
}

export interface NativePairs {
  i: BigInt64Array;
  j: BigInt64Array;
  scores: Float32Array;
}

export interface NativeNpyHeader {
  /** Format version: 1, 2 or 3 (minor is always 0). */
  major: number;
  minor: number;
  /** The descr as written in the file, e.g. '<f4'. */
  descr: string;
  dtype: string;
  itemsize: number;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data from the start of the file. */
  dataOffset: number;
  /** Number of elements (the product of the shape). */
  count: number;
  dataBytes: number;
}

export interface NativeCapabilities {
  isa: 'scalar' | 'avx2' | 'avx512';
  isaBest: 'scalar' | 'avx2' | 'avx512';
  cpu: { avx2: boolean; avx512: boolean; avx512bf16: boolean; threads: number };
  cuda: { built: boolean; devices: number; usable: boolean; reason?: string };
  sanitized: boolean;
}

type Mat = [data: Float32Array, rows: number, dim: number];

export interface NativeBnStats {
  domains: number;
  channels: number;
  count: BigInt64Array;
  mean: Float64Array;
  m2: Float64Array;
  min: Float32Array;
  max: Float32Array;
  nonfinite: BigInt64Array;
}

export interface NativeBnOptions {
  threads?: number;
  nonfinite?: 'reject' | 'skip';
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
}

type BnArgs = [data: Float32Array | Uint16Array, n: number, c: number, s: number, layout: 'nchw' | 'nhwc', domains: Int32Array | null, numDomains: number, opts: NativeBnOptions];

export type { NativeMetrics, NativeMetricsOptions, NativeGaussianStats, NativeFrechet, NativeVendi } from './addon-metrics.js';

export type { NativeMask, NativeMaskOptions, NativeComponentOptions, NativePostOptions, NativeCornerOptions, NativePostResult, NativeLargest, NativeStats, NativeCrop, NativeCounts, NativeRleForm } from './addon-mask.js';

export interface NativeAddon extends NativeMetrics, NativeMask, NativeComposite {
  bnStats(...args: BnArgs): Promise<NativeBnStats>;
  bnStatsSync(...args: BnArgs): NativeBnStats;
  setErrorClass(cls: unknown): void;
  capabilities(): NativeCapabilities;
  topk(...args: [...Mat, ...Mat, k: number, opts: NativeSimilarityOptions]): Promise<NativeTopK>;
  topkSync(...args: [...Mat, ...Mat, k: number, opts: NativeSimilarityOptions]): NativeTopK;
  classMean(...args: [...Mat, ...Mat, labels: Int32Array, numClasses: number, opts: NativeSimilarityOptions]): Promise<NativeClassResult>;
  classMeanSync(...args: [...Mat, ...Mat, labels: Int32Array, numClasses: number, opts: NativeSimilarityOptions]): NativeClassResult;
  classMax(...args: [...Mat, ...Mat, labels: Int32Array, numClasses: number, opts: NativeSimilarityOptions]): Promise<NativeClassResult>;
  classMaxSync(...args: [...Mat, ...Mat, labels: Int32Array, numClasses: number, opts: NativeSimilarityOptions]): NativeClassResult;
  pairs(...args: [...Mat, ...Mat, threshold: number, selfOffset: number, maxPairs: number, opts: NativeSimilarityOptions]): Promise<NativePairs>;
  pairsSync(...args: [...Mat, ...Mat, threshold: number, selfOffset: number, maxPairs: number, opts: NativeSimilarityOptions]): NativePairs;
  rowDot(...args: [...Mat, ...Mat, opts: NativeSimilarityOptions]): Promise<Float32Array>;
  rowDotSync(...args: [...Mat, ...Mat, opts: NativeSimilarityOptions]): Float32Array;
  setEngineTuning(t: { mc?: number; nct?: number; kc?: number }): void;
  parseNpyHeader(bytes: Uint8Array, name: string): NativeNpyHeader | { needed: number };
}
