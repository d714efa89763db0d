/**
 * Per-channel BatchNorm statistics per domain (real / synthetic / ...), for
 * auxiliary BatchNorm ("Diversify, Don't Fine-Tune", AdvProp-style): the
 * exact statistics of everything seen (count, mean, variance, min, max;
 * mergeable across batches, workers and processes), and PyTorch-convention
 * running statistics (momentum or cumulative average, unbiased running
 * variance) ready to load into the main and auxiliary BN layers.
 */
import type { NativeBnOptions, NativeBnStats } from '../native/addon.js';
import type { SafeTensor } from '../io/safetensors.js';
import { type Device, resolveDevice } from '../native/device.js';
import { GenaugError } from '../native/errors.js';
import { native } from '../native/load.js';
import { checkInt, pinInputs } from '../native/validate.js';

export type Layout = 'nchw' | 'nhwc';

/** A batch of activations: float32 values, or float16 bits in a Uint16Array. */
export interface Activations {
  data: Float32Array | Uint16Array;
  /** [N, C, ...spatial] for nchw, [N, ...spatial, C] for nhwc; [N, C] for either. */
  shape: readonly number[];
  layout: Layout;
}

export interface BnStatsOptions {
  /** Domain of each sample (Int32Array of length N, values in [0, numDomains)); default: all 0. */
  domains?: Int32Array;
  /** Number of domains (default: 2 when domains are given, else 1). */
  numDomains?: number;
  /** 'reject' (default): NaN/Inf is an E_NONFINITE error naming the sample, channel and position; 'skip': counted in `nonfinite` and left out. */
  nonfinite?: 'reject' | 'skip';
  threads?: number;
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  /**
   * Where the per-block moments are computed: 'cpu' (default), 'cuda' (the
   * GPU; E_CUDA_UNAVAILABLE naming why without one) or 'auto' (CUDA when
   * usable, silently the CPU otherwise). The CUDA path runs the CPU kernels'
   * arithmetic per block and merges in the CPU's order: the same bytes as the
   * CPU path with the same `isa`.
   */
  device?: Device;
  /** GPU memory one call may use, in bytes (default: 3/4 of the free memory); samples are streamed in chunks that fit. */
  deviceBytes?: number;
}

/** Exact statistics, arrays of numDomains x channels (domain-major). */
export interface BnStatsState {
  domains: number;
  channels: number;
  count: Float64Array;
  mean: Float64Array;
  /** Sum of squared deviations from the mean (variance = m2 / count, unbiased m2 / (count - 1)). */
  m2: Float64Array;
  min: Float32Array;
  max: Float32Array;
  nonfinite: Float64Array;
}

/** N, C and positions per channel from a shape and layout. */
export function channelsOf(shape: readonly number[], layout: Layout): { n: number; c: number; s: number } {
  if (!Array.isArray(shape) || shape.length < 2) {
    throw new GenaugError('E_SHAPE', `activations must have at least 2 dimensions (N, C, ...), got shape [${String(shape)}]`);
  }
  shape.forEach((d, i) => checkInt(d, `shape[${i}]`, 0));
  if (layout !== 'nchw' && layout !== 'nhwc') throw new GenaugError('E_RANGE', `layout must be 'nchw' or 'nhwc', got ${String(layout)}`);
  const n = shape[0] as number;
  const c = (layout === 'nchw' ? shape[1] : shape[shape.length - 1]) as number;
  const spatial = layout === 'nchw' ? shape.slice(2) : shape.slice(1, -1);
  const s = spatial.reduce((a, b) => a * b, 1);
  if (c < 1) throw new GenaugError('E_SHAPE', `activations have ${c} channels`);
  if (s < 1) throw new GenaugError('E_SHAPE', `activations have an empty spatial dimension (shape [${shape.join(', ')}])`);
  return { n, c, s };
}

function fromNative(r: NativeBnStats): BnStatsState {
  return {
    domains: r.domains,
    channels: r.channels,
    count: Float64Array.from(r.count, Number),
    mean: r.mean,
    m2: r.m2,
    min: r.min,
    max: r.max,
    nonfinite: Float64Array.from(r.nonfinite, Number),
  };
}

function prepare(acts: Activations, o: BnStatsOptions = {}) {
  if (typeof acts !== 'object' || acts === null) throw new GenaugError('E_TYPE', 'activations must be { data, shape, layout }');
  const { data, shape, layout } = acts;
  if (!(data instanceof Float32Array) && !(data instanceof Uint16Array)) {
    throw new GenaugError('E_DTYPE', `activations.data must be a Float32Array (or a Uint16Array of float16 bits), got ${ArrayBuffer.isView(data) ? (data as ArrayBufferView).constructor.name : typeof data}`);
  }
  const { n, c, s } = channelsOf(shape, layout);
  if (data.length !== n * c * s) {
    throw new GenaugError('E_SHAPE', `activations.data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n * c * s}`);
  }
  const domains = o.domains ?? null;
  if (domains !== null) {
    if (!(domains instanceof Int32Array)) throw new GenaugError('E_DTYPE', 'domains must be an Int32Array with one entry per sample');
    if (domains.length !== n) throw new GenaugError('E_SHAPE', `domains has ${domains.length} entries but the batch has ${n} samples`);
  }
  const numDomains = checkInt(o.numDomains ?? (domains ? 2 : 1), 'numDomains', 1, 65536);
  if (domains) {
    for (let i = 0; i < n; i++) {
      const d = domains[i] as number;
      if (d < 0 || d >= numDomains) throw new GenaugError('E_RANGE', `domains[${i}] = ${d} is outside [0, ${numDomains})`);
    }
  }
  if (o.nonfinite !== undefined && o.nonfinite !== 'reject' && o.nonfinite !== 'skip') {
    throw new GenaugError('E_RANGE', `nonfinite must be 'reject' or 'skip', got ${String(o.nonfinite)}`);
  }
  const nopt: NativeBnOptions = {};
  if (o.nonfinite) nopt.nonfinite = o.nonfinite;
  if (o.threads !== undefined) nopt.threads = checkInt(o.threads, 'threads', 0, 256);
  if (o.isa !== undefined) nopt.isa = o.isa;
  if (o.device !== undefined && resolveDevice(o.device, 'device') === 'cuda') nopt.device = 'cuda';
  if (o.deviceBytes !== undefined) nopt.deviceBytes = checkInt(o.deviceBytes, 'deviceBytes', 1);
  return [data, n, c, s, layout, domains, numDomains, nopt] as const;
}

/** Statistics of one batch, off the event loop. */
export async function bnStats(acts: Activations, options?: BnStatsOptions): Promise<BnStatsState> {
  const args = prepare(acts, options);
  pinInputs(args[0], args[5]);
  return fromNative(await native().bnStats(...args));
}

export function bnStatsSync(acts: Activations, options?: BnStatsOptions): BnStatsState {
  return fromNative(native().bnStatsSync(...prepare(acts, options)));
}

export function emptyBnStats(domains: number, channels: number): BnStatsState {
  checkInt(domains, 'domains', 1, 65536);
  checkInt(channels, 'channels', 1);
  const n = domains * channels;
  return {
    domains,
    channels,
    count: new Float64Array(n),
    mean: new Float64Array(n),
    m2: new Float64Array(n),
    min: new Float32Array(n).fill(Number.POSITIVE_INFINITY),
    max: new Float32Array(n).fill(Number.NEGATIVE_INFINITY),
    nonfinite: new Float64Array(n),
  };
}

/** a + b (Chan et al.): the statistics of both batches together. Neither input is changed. */
export function mergeBnStats(a: BnStatsState, b: BnStatsState): BnStatsState {
  if (a.domains !== b.domains || a.channels !== b.channels) {
    throw new GenaugError('E_SHAPE', `cannot merge statistics of ${b.domains} domains x ${b.channels} channels with ${a.domains} x ${a.channels}`);
  }
  const out = emptyBnStats(a.domains, a.channels);
  for (let i = 0; i < a.count.length; i++) {
    const na = a.count[i] as number;
    const nb = b.count[i] as number;
    const n = na + nb;
    out.count[i] = n;
    if (nb === 0) {
      out.mean[i] = a.mean[i] as number;
      out.m2[i] = a.m2[i] as number;
    } else if (na === 0) {
      out.mean[i] = b.mean[i] as number;
      out.m2[i] = b.m2[i] as number;
    } else {
      const delta = (b.mean[i] as number) - (a.mean[i] as number);
      out.mean[i] = (a.mean[i] as number) + (delta * nb) / n;
      out.m2[i] = (a.m2[i] as number) + (b.m2[i] as number) + (delta * delta * na * nb) / n;
    }
    out.min[i] = Math.min(a.min[i] as number, b.min[i] as number);
    out.max[i] = Math.max(a.max[i] as number, b.max[i] as number);
    out.nonfinite[i] = (a.nonfinite[i] as number) + (b.nonfinite[i] as number);
  }
  return out;
}

/** Per-domain, per-channel variance: biased (m2 / n, what BN normalises with) or unbiased (m2 / (n - 1)). NaN where undefined. */
export function bnVariance(s: BnStatsState, unbiased = false): Float64Array {
  return s.m2.map((m2, i) => {
    const n = s.count[i] as number;
    const d = unbiased ? n - 1 : n;
    return d > 0 ? m2 / d : Number.NaN;
  });
}

/** JSON-safe form (numbers and nulls); `fromJSON` restores it exactly (doubles print round-trip). */
export function bnStatsToJSON(s: BnStatsState) {
  const arr = (a: ArrayLike<number>) => Array.from(a, (v) => (Number.isFinite(v) ? v : null));
  return { version: 1, domains: s.domains, channels: s.channels, count: arr(s.count), mean: arr(s.mean), m2: arr(s.m2), min: arr(s.min), max: arr(s.max), nonfinite: arr(s.nonfinite) };
}

export function bnStatsFromJSON(j: unknown): BnStatsState {
  const o = j as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.version !== 1) throw new GenaugError('E_FORMAT', 'not a genaug bnstats state (version 1)');
  const domains = checkInt(o.domains, 'domains', 1, 65536);
  const channels = checkInt(o.channels, 'channels', 1);
  const n = domains * channels;
  const get = (key: string, fill: number): number[] => {
    const v = o[key];
    if (!Array.isArray(v) || v.length !== n) throw new GenaugError('E_FORMAT', `bnstats state field ${key} must be an array of ${n} numbers`);
    return v.map((x, i) => {
      if (x === null) return fill;
      if (typeof x !== 'number') throw new GenaugError('E_FORMAT', `bnstats state field ${key}[${i}] is not a number`);
      return x;
    });
  };
  return {
    domains,
    channels,
    count: Float64Array.from(get('count', 0)),
    mean: Float64Array.from(get('mean', 0)),
    m2: Float64Array.from(get('m2', 0)),
    min: Float32Array.from(get('min', Number.POSITIVE_INFINITY)),
    max: Float32Array.from(get('max', Number.NEGATIVE_INFINITY)),
    nonfinite: Float64Array.from(get('nonfinite', 0)),
  };
}

export interface AccumulatorOptions {
  channels: number;
  /** Domains (default 2: 0 = real, the main BN; 1 = synthetic, the auxiliary BN). */
  numDomains?: number;
  /** PyTorch BN momentum (default 0.1); null = cumulative moving average (momentum=None). */
  momentum?: number | null;
  nonfinite?: 'reject' | 'skip';
  threads?: number;
}

/**
 * Accepts batches as they come. Each batch updates the exact totals and, per
 * domain present in the batch, the running statistics the way
 * torch.nn.BatchNorm does in training: running_mean = (1 - m) running_mean +
 * m batch_mean, running_var likewise with the unbiased batch variance
 * (m = 1 / num_batches_tracked with momentum null); num_batches_tracked
 * counts the batches in which the domain appeared.
 */
export class BnStatsAccumulator {
  readonly channels: number;
  readonly numDomains: number;
  readonly momentum: number | null;
  totals: BnStatsState;
  readonly runningMean: Float64Array;
  readonly runningVar: Float64Array;
  readonly numBatchesTracked: Float64Array;
  private readonly nonfinite: 'reject' | 'skip' | undefined;
  private readonly threads: number | undefined;

  constructor(o: AccumulatorOptions) {
    this.channels = checkInt(o.channels, 'channels', 1);
    this.numDomains = checkInt(o.numDomains ?? 2, 'numDomains', 1, 65536);
    if (o.momentum !== null && o.momentum !== undefined && !(typeof o.momentum === 'number' && o.momentum > 0 && o.momentum <= 1)) {
      throw new GenaugError('E_RANGE', `momentum must be in (0, 1] or null, got ${String(o.momentum)}`);
    }
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.totals = emptyBnStats(this.numDomains, this.channels);
    this.runningMean = new Float64Array(this.numDomains * this.channels);
    this.runningVar = new Float64Array(this.numDomains * this.channels).fill(1);
    this.numBatchesTracked = new Float64Array(this.numDomains);
    this.nonfinite = o.nonfinite;
    this.threads = o.threads;
  }

  /** Adds one batch; `domains` tags each sample (default: all domain 0). Returns the batch's own statistics. */
  async update(acts: Activations, domains?: Int32Array): Promise<BnStatsState> {
    const { c } = channelsOf(acts.shape, acts.layout);
    if (c !== this.channels) throw new GenaugError('E_SHAPE', `batch has ${c} channels, the accumulator ${this.channels}`);
    const opts: BnStatsOptions = { numDomains: this.numDomains };
    if (domains) opts.domains = domains;
    if (this.nonfinite) opts.nonfinite = this.nonfinite;
    if (this.threads !== undefined) opts.threads = this.threads;
    const batch = await bnStats(acts, opts);
    this.apply(batch);
    return batch;
  }

  /** Folds precomputed batch statistics in (the same as update, without the native pass). */
  apply(batch: BnStatsState): void {
    if (batch.domains !== this.numDomains || batch.channels !== this.channels) {
      throw new GenaugError('E_SHAPE', `batch statistics are ${batch.domains} x ${batch.channels}, the accumulator ${this.numDomains} x ${this.channels}`);
    }
    this.totals = mergeBnStats(this.totals, batch);
    const C = this.channels;
    for (let d = 0; d < this.numDomains; d++) {
      let present = false;
      for (let c = 0; c < C && !present; c++) present = (batch.count[d * C + c] as number) + (batch.nonfinite[d * C + c] as number) > 0;
      if (!present) continue;
      this.numBatchesTracked[d] = (this.numBatchesTracked[d] as number) + 1;
      const m = this.momentum ?? 1 / (this.numBatchesTracked[d] as number);
      for (let c = 0; c < C; c++) {
        const i = d * C + c;
        const cnt = batch.count[i] as number;
        if (cnt === 0) continue;
        // PyTorch uses the unbiased variance for the running estimate (n / (n - 1)); with one value it has none.
        const v = cnt > 1 ? (batch.m2[i] as number) / (cnt - 1) : (this.runningVar[i] as number);
        this.runningMean[i] = (1 - m) * (this.runningMean[i] as number) + m * (batch.mean[i] as number);
        this.runningVar[i] = (1 - m) * (this.runningVar[i] as number) + m * v;
      }
    }
  }

  /** Prefix of each domain's tensors: '{layer}' for domain 0, '{layer}.aux_bn' for 1, '{layer}.aux_bn{d}' beyond. */
  static defaultNames(numDomains: number): string[] {
    return Array.from({ length: numDomains }, (_, d) => (d === 0 ? '{layer}' : d === 1 ? '{layer}.aux_bn' : `{layer}.aux_bn${d}`));
  }

  /**
   * Tensors a PyTorch BatchNorm loads: `<prefix>.running_mean`, `.running_var`
   * (float32, [C]) and `.num_batches_tracked` (int64, []), per domain.
   * source 'running' (default) exports the momentum estimates; 'exact' the
   * exact totals (mean and unbiased variance of everything seen).
   */
  tensors(layer: string, o: { names?: string[]; source?: 'running' | 'exact' } = {}) {
    if (typeof layer !== 'string' || layer === '') throw new GenaugError('E_ARGUMENT', 'layer must be a non-empty string, e.g. "layer1.0.bn1"');
    const names = o.names ?? BnStatsAccumulator.defaultNames(this.numDomains);
    if (names.length !== this.numDomains) throw new GenaugError('E_SHAPE', `names has ${names.length} entries for ${this.numDomains} domains`);
    const source = o.source ?? 'running';
    if (source !== 'running' && source !== 'exact') throw new GenaugError('E_RANGE', `source must be 'running' or 'exact', got ${String(source)}`);
    const C = this.channels;
    const unbiased = bnVariance(this.totals, true);
    const out: Record<string, SafeTensor> = {};
    names.forEach((tpl, d) => {
      const prefix = tpl.replaceAll('{layer}', layer);
      const mean = new Float32Array(C);
      const variance = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        const i = d * C + c;
        if (source === 'running') {
          mean[c] = this.runningMean[i] as number;
          variance[c] = this.runningVar[i] as number;
        } else {
          mean[c] = (this.totals.count[i] as number) > 0 ? (this.totals.mean[i] as number) : 0;
          variance[c] = Number.isFinite(unbiased[i]) ? (unbiased[i] as number) : 1;
        }
      }
      out[`${prefix}.running_mean`] = { dtype: 'F32', shape: [C], data: mean };
      out[`${prefix}.running_var`] = { dtype: 'F32', shape: [C], data: variance };
      out[`${prefix}.num_batches_tracked`] = { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(this.numBatchesTracked[d] as number)) };
    });
    return out;
  }

  toJSON() {
    return {
      version: 1,
      channels: this.channels,
      numDomains: this.numDomains,
      momentum: this.momentum,
      totals: bnStatsToJSON(this.totals),
      running: { mean: Array.from(this.runningMean), var: Array.from(this.runningVar), numBatchesTracked: Array.from(this.numBatchesTracked) },
    };
  }

  static fromJSON(j: unknown): BnStatsAccumulator {
    const o = j as ReturnType<BnStatsAccumulator['toJSON']>;
    if (typeof o !== 'object' || o === null || o.version !== 1) throw new GenaugError('E_FORMAT', 'not a genaug BnStatsAccumulator state (version 1)');
    const acc = new BnStatsAccumulator({ channels: o.channels, numDomains: o.numDomains, momentum: o.momentum });
    acc.totals = bnStatsFromJSON(o.totals);
    const n = acc.numDomains * acc.channels;
    const arr = (v: unknown, len: number, what: string): number[] => {
      if (!Array.isArray(v) || v.length !== len || !v.every((x) => typeof x === 'number')) throw new GenaugError('E_FORMAT', `running.${what} must be ${len} numbers`);
      return v as number[];
    };
    acc.runningMean.set(arr(o.running?.mean, n, 'mean'));
    acc.runningVar.set(arr(o.running?.var, n, 'var'));
    acc.numBatchesTracked.set(arr(o.running?.numBatchesTracked, acc.numDomains, 'numBatchesTracked'));
    return acc;
  }
}
