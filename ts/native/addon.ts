/**
 * The type declarations of everything the native addon exports, declared once
 * (the addon's functions are registered by native/binding/*.cc, one file per
 * core file; the sections below follow them). Only the typed wrappers in ts/
 * call these; the loader (load.ts) returns a NativeAddon.
 */

/** A float32 matrix as three arguments: data (rows x dim, row-major), rows, dim. */
type Mat = [data: Float32Array, rows: number, dim: number];

export type NativeIsa = 'auto' | 'scalar' | 'avx2' | 'avx512';

// --- addon.cc ------------------------------------------------------------------

export interface NativeCapabilities {
  isa: 'scalar' | 'avx2' | 'avx512';
  isaBest: 'scalar' | 'avx2' | 'avx512';
  cpu: { avx2: boolean; avx512: boolean; avx512bf16: boolean; threads: number };
  cuda: {
    built: boolean;
    devices: number;
    usable: boolean;
    reason?: string;
    /** Kernels this build has, e.g. 'similarity.topk' (empty without CUDA). */
    kernels: string[];
    /** Device 0, when usable. */
    device?: { name: string; totalBytes: number; freeBytes: number; computeCapability: string; runtimeVersion: string; driverVersion: string };
  };
  sanitized: boolean;
}

// --- similarity.cc -------------------------------------------------------------

export interface NativeSimilarityOptions {
  normalize?: boolean;
  threads?: number;
  isa?: NativeIsa;
  blockBytes?: number;
  /** Set element 0 to non-zero to stop the call at its next block (E_ABORTED). */
  cancel?: Int32Array;
  queryName?: string;
  dbName?: string;
  queryRowOffset?: number;
  dbRowOffset?: number;
  /** 'exact' (default) or 'bf16' (opt-in screening with a statistical margin). */
  precision?: 'exact' | 'bf16';
  /** The 8-bit screening pass: 'auto' (default), 'on' or 'off'. */
  screen?: 'auto' | 'on' | 'off';
  /** 'cpu' (default) or 'cuda' (the device path; E_CUDA_UNAVAILABLE without one). */
  device?: 'cpu' | 'cuda';
  /** Device memory one call may use (0: 3/4 of the free memory). */
  deviceBytes?: number;
}

export interface NativeEngineStats {
  screened: boolean;
  split: boolean;
  rescored: number;
  pairs: number;
  /** Block sizes of the last device-path call: query rows, database rows, bytes budget. */
  deviceQueryRows: number;
  deviceDbRows: number;
  deviceBudget: number;
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

// --- npy.cc --------------------------------------------------------------------

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

// --- bnstats.cc ----------------------------------------------------------------

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
  isa?: NativeIsa;
  /** 'cpu' (default) or 'cuda' (the device path; E_CUDA_UNAVAILABLE without one). */
  device?: 'cpu' | 'cuda';
  deviceBytes?: number;
}

type BnArgs = [data: Float32Array | Uint16Array, n: number, c: number, s: number, layout: 'nchw' | 'nhwc', domains: Int32Array | null, numDomains: number, opts: NativeBnOptions];

// --- metrics.cc ----------------------------------------------------------------

export interface NativeMetricsOptions {
  /** Threads (0 or absent: every core). Results do not depend on it. */
  threads?: number;
  isa?: NativeIsa;
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
  /** max(0, meanTerm + trace1 + trace2 - 2 traceSqrt). */
  distance: number;
  /** ||mean1 - mean2||^2. */
  meanTerm: number;
  /** tr(S1), tr(S2). */
  trace1: number;
  trace2: number;
  /** tr((S1^1/2 S2 S1^1/2)^1/2). */
  traceSqrt: number;
  /** The numerical rank of S1 (eigenvalues kept). */
  rank1: number;
}

export interface NativeVendi {
  score: number;
  entropy: number;
  gram: boolean;
  eigenvalues: Float64Array;
}

type FrechetArgs = [meanDiff: Float64Array, cov1: Float64Array, cov2: Float64Array, dim: number, opts?: NativeMetricsOptions];

// --- mask.cc, rle.cc -----------------------------------------------------------

export interface NativeMaskOptions {
  /** Threads (0 or absent: every core, at most one per mask). Results do not depend on it. */
  threads?: number;
}

export interface NativeComponentOptions extends NativeMaskOptions {
  /** Foreground connectivity, 4 or 8 (default 8); hole filling uses the dual for the background. */
  connectivity?: number;
}

export type NativeRleForm = 'none' | 'counts' | 'string';

export interface NativePostOptions extends NativeComponentOptions {
  invert?: boolean;
  largest?: boolean;
  fillHoles?: boolean;
  minArea?: number;
  minFraction?: number;
  maxFraction?: number;
  /** RLE of each result: 'none' (default), 'counts' (Uint32Array) or 'string'. */
  rle?: NativeRleForm;
  /** Return the resulting masks (default true). */
  mask?: boolean;
}

export interface NativeCornerOptions extends NativePostOptions {
  /** Max |difference| per channel (R, G, B) to the corner's colour, 0..255 (default 10). */
  tolerance?: number;
  /** Also return the background estimate. */
  background?: boolean;
}

export interface NativePostResult {
  /** n * h * w, 0/1 (absent with mask: false). */
  data?: Uint8Array;
  area: Float64Array;
  /** n x 4: [x, y, w, h] per mask. */
  bbox: Float64Array;
  components: Float64Array;
  ok: Uint8Array;
  reason: string[];
  rle?: Array<Uint32Array | string>;
  background?: Uint8Array;
}

export interface NativeLargest {
  data: Uint8Array;
  area: Float64Array;
  components: Float64Array;
}

export interface NativeStats {
  area: Float64Array;
  bbox: Float64Array;
}

export interface NativeCrop {
  /** bbox.h x bbox.w x 4, RGBA. */
  data: Uint8Array;
  /** [x, y, w, h]. */
  bbox: Float64Array;
}

export type NativeCounts = Uint32Array | string;

type Batch = [data: Uint8Array, n: number, h: number, w: number];
type Img = [data: Uint8Array, h: number, w: number, channels: number];
type IouArgs = [dt: NativeCounts[], gt: NativeCounts[], h: number, w: number, iscrowd: Uint8Array | null, opts?: NativeMaskOptions];

// --- layout.cc (CLIS-L) --------------------------------------------------------

export interface NativeLayoutOptions {
  /** Name-similarity floor for candidate examples (default 0.6, the released CLI's; the function default was 0.8). */
  tau?: number;
  /** Penalty threshold t (default 0.03). */
  penaltyT?: number;
  /** Both similarities ≥ this count as "high" for the rank and the confidence (default 0.8). */
  highSim?: number;
  /** Confidence weight of examples that are not both-high (default 1e-4). */
  lowWeight?: number;
  /** Pair score = the example at rank ⌊n_hi / rankDivisor⌋ (default 50). */
  rankDivisor?: number;
  /** Reproduce the released code: dist = IoU term only (default false: the intended ½ IoU + ½ ρ). */
  faithful?: boolean;
  /** use_balance: dist weights (0.2, 0.8) when the IoU term > 0.95, else (0.8, 0.2) when the ρ term > 0.95 (default false). */
  balance?: boolean;
  /** use_symmetry: mirror the example direction for predicates without left/right (default true). */
  symmetry?: boolean;
  /** Threads (default every core); results do not depend on it. */
  threads?: number;
  /** 'cpu' (default) or 'cuda' (the device path, the same bytes; E_CUDA_UNAVAILABLE without one). */
  device?: 'cpu' | 'cuda';
  /** GPU memory for example scores (default: 3/4 of the free memory); layouts are scored in groups that fit. */
  deviceBytes?: number;
  cancel?: Int32Array;
}

export interface NativeLayoutScores {
  score: Float64Array;
  confidence: Float64Array;
  status: Int32Array;
  failedPair: Int32Array;
  pairScore: Float64Array;
  pairConfidence: Float64Array;
}

type LayoutArgs = [
  poolStart: Int32Array,
  poolSubject: Int32Array,
  poolObject: Int32Array,
  poolSubjectBox: Float32Array,
  poolObjectBox: Float32Array,
  poolSymmetric: Uint8Array,
  poolNames: number,
  objectStart: Int32Array,
  objectName: Int32Array,
  objectBox: Float32Array,
  relationStart: Int32Array,
  relationPredicate: Int32Array,
  relationSubject: Int32Array,
  relationObject: Int32Array,
  layoutNames: number,
  sim: Float32Array,
  options: NativeLayoutOptions,
];

// --- composite.cc --------------------------------------------------------------

/** One instance to paste: an RGBA crop (height x width x 4) and where and how large it goes. */
export interface NativeCompositeInstanceIn {
  rgba: Uint8Array;
  width: number;
  height: number;
  targetWidth: number;
  targetHeight: number;
  /** Horizontal flip (default false). */
  flip?: boolean;
  /** Centre in destination pixels. */
  cx: number;
  cy: number;
}

export interface NativeCompositeSceneIn {
  image: Uint8Array;
  width: number;
  height: number;
  masks?: Uint8Array[];
  /** 4 numbers [x, y, w, h] per box: a box-only scene. */
  boxes?: Float64Array;
  instances?: NativeCompositeInstanceIn[];
  /** Output block, at least height * width * (3 + masks + instances) bytes, overwritten (allocated by the addon when absent). */
  out?: Uint8Array;
}

export interface NativeCompositeOptions {
  blend?: 'basic' | 'alpha' | 'gaussian';
  sigma?: number;
  keepMaxShift?: number;
  keepMinArea?: number;
  threads?: number;
  maskThreshold?: number;
  maskFormat?: 'full' | 'box';
  /** The resize's row kernel (every level gives the same bytes); 'auto': the process's level. */
  isa?: NativeIsa;
  /** 'cuda': the device path (the same bytes); ts/kernels/composite.ts resolves 'auto'. */
  device?: 'cpu' | 'cuda';
  /** Device memory of one batch of scenes (0 or absent: 3/4 of the free memory less 64 MiB). */
  deviceBytes?: number;
}

export interface NativeCompositeInstanceOut {
  source: 'real' | 'pasted';
  index: number;
  mask: Uint8Array;
  bbox: [number, number, number, number];
  area: number;
}

export interface NativeCompositeDrop {
  source: 'real' | 'pasted';
  index: number;
  reason: string;
}

export interface NativeCompositeSceneOut {
  image: Uint8Array;
  width: number;
  height: number;
  boxOnly: boolean;
  instances: NativeCompositeInstanceOut[];
  dropped: NativeCompositeDrop[];
}

// --- The addon ---------------------------------------------------------------

export interface NativeAddon {
  // addon.cc
  setErrorClass(cls: unknown): void;
  capabilities(): NativeCapabilities;
  // similarity.cc
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
  /** What the last similarity call ran: screened or not, split or not, pairs rescored. */
  engineStats(): NativeEngineStats;
  // npy.cc
  parseNpyHeader(bytes: Uint8Array, name: string): NativeNpyHeader | { needed: number };
  // bnstats.cc
  bnStats(...args: BnArgs): Promise<NativeBnStats>;
  bnStatsSync(...args: BnArgs): NativeBnStats;
  // metrics.cc
  gaussianStats(...args: [...Mat, opts?: NativeMetricsOptions]): Promise<NativeGaussianStats>;
  gaussianStatsSync(...args: [...Mat, opts?: NativeMetricsOptions]): NativeGaussianStats;
  frechet(...args: FrechetArgs): Promise<NativeFrechet>;
  frechetSync(...args: FrechetArgs): NativeFrechet;
  frechetRows(...args: [...Mat, ...Mat, opts?: NativeMetricsOptions]): Promise<NativeFrechet>;
  frechetRowsSync(...args: [...Mat, ...Mat, opts?: NativeMetricsOptions]): NativeFrechet;
  vendi(...args: [...Mat, opts?: NativeMetricsOptions]): Promise<NativeVendi>;
  vendiSync(...args: [...Mat, opts?: NativeMetricsOptions]): NativeVendi;
  // mask.cc
  maskInvert(...args: [...Batch, opts?: NativeMaskOptions]): Promise<Uint8Array>;
  maskInvertSync(...args: [...Batch, opts?: NativeMaskOptions]): Uint8Array;
  maskLargestComponent(...args: [...Batch, opts?: NativeComponentOptions]): Promise<NativeLargest>;
  maskLargestComponentSync(...args: [...Batch, opts?: NativeComponentOptions]): NativeLargest;
  maskFillHoles(...args: [...Batch, opts?: NativeComponentOptions]): Promise<Uint8Array>;
  maskFillHolesSync(...args: [...Batch, opts?: NativeComponentOptions]): Uint8Array;
  maskStats(...args: [...Batch, opts?: NativeMaskOptions]): Promise<NativeStats>;
  maskStatsSync(...args: [...Batch, opts?: NativeMaskOptions]): NativeStats;
  maskIou(...args: [a: Uint8Array, ...Batch, opts?: NativeMaskOptions]): Promise<Float64Array>;
  maskIouSync(...args: [a: Uint8Array, ...Batch, opts?: NativeMaskOptions]): Float64Array;
  maskCrop(...args: [...Img, mask: Uint8Array, bbox: Float64Array | null]): Promise<NativeCrop>;
  maskCropSync(...args: [...Img, mask: Uint8Array, bbox: Float64Array | null]): NativeCrop;
  maskCornerBackground(...args: [...Img, opts?: { tolerance?: number }]): Promise<Uint8Array>;
  maskCornerBackgroundSync(...args: [...Img, opts?: { tolerance?: number }]): Uint8Array;
  maskPostProcess(...args: [...Batch, opts?: NativePostOptions]): Promise<NativePostResult>;
  maskPostProcessSync(...args: [...Batch, opts?: NativePostOptions]): NativePostResult;
  maskCornerForeground(...args: [...Img, opts?: NativeCornerOptions]): Promise<NativePostResult>;
  maskCornerForegroundSync(...args: [...Img, opts?: NativeCornerOptions]): NativePostResult;
  // rle.cc
  rleEncode(...args: [...Batch, opts?: NativeMaskOptions & { form?: 'counts' | 'string' }]): Promise<NativeCounts[]>;
  rleEncodeSync(...args: [...Batch, opts?: NativeMaskOptions & { form?: 'counts' | 'string' }]): NativeCounts[];
  rleDecode(rles: NativeCounts[], h: number, w: number, opts?: NativeMaskOptions): Promise<Uint8Array>;
  rleDecodeSync(rles: NativeCounts[], h: number, w: number, opts?: NativeMaskOptions): Uint8Array;
  rleIou(...args: IouArgs): Promise<Float64Array>;
  rleIouSync(...args: IouArgs): Float64Array;
  rleFromString(s: string, h: number, w: number): Uint32Array;
  rleToString(counts: Uint32Array): string;
  rleArea(counts: NativeCounts, h: number, w: number): number;
  rleToBbox(counts: NativeCounts, h: number, w: number): Float64Array;
  rleMerge(rles: NativeCounts[], h: number, w: number, intersect: boolean, opts?: { form?: 'counts' | 'string' }): NativeCounts;
  rleFromPolygons(polygons: Float64Array[], h: number, w: number, opts?: { form?: 'counts' | 'string' }): NativeCounts;
  // layout.cc
  clisLayout(...args: LayoutArgs): Promise<NativeLayoutScores>;
  clisLayoutSync(...args: LayoutArgs): NativeLayoutScores;
  // composite.cc
  compositeBatch(scenes: NativeCompositeSceneIn[], opts?: NativeCompositeOptions): Promise<NativeCompositeSceneOut[]>;
  compositeBatchSync(scenes: NativeCompositeSceneIn[], opts?: NativeCompositeOptions): NativeCompositeSceneOut[];
  compositeMemory(release: boolean): { heldBytes: number; releasedBytes: number };
  pilResizeRgbSync(
    src: Uint8Array, inWidth: number, inHeight: number,
    h: { ksize: number; outSize: number; bounds: Int32Array; fixed: Int32Array } | null,
    v: { ksize: number; outSize: number; bounds: Int32Array; fixed: Int32Array } | null,
    left: number, top: number, width: number, height: number,
    lut?: Float32Array, out?: Float32Array, offset?: number,
  ): Uint8Array | undefined;
}
