/**
 * Embedding runs: a folder (or a manifest) of images → E.npy (float32 N × D,
 * L2-normalised rows, numpy-loadable) + E.index.jsonl (row i ↔ line i: the
 * file relative to the images folder, its sha256 and any manifest fields) +
 * E.failed.jsonl (images that could not be decoded or preprocessed, with the
 * reason; they get no row and the run goes on); and a text file → T.npy (one
 * row per line, in order).
 *
 * Work: decode (sharp) + preprocess + inference run in a piscina pool of
 * worker threads (dist/workers/embed.js), one batch per task, each worker with
 * its own onnxruntime session (1 intra-op thread unless told otherwise), so
 * the event loop never waits on a model; without the compiled worker (running
 * from sources) or with workers: 0 the batches run in-process.
 *
 * Files are hashed first (sha256 of the bytes). Identical files are embedded
 * once. With a cache folder, rows already computed by the same model (same
 * files, sizes, mtimes, preprocessing, provider) for the same content are
 * reused and new ones added (cache/<model key>/rows.f32 + keys.jsonl,
 * append-only; one run at a time per cache folder).
 *
 * Resume: every finished batch is journaled in E.npy.partial/ (a ChunkJournal
 * keyed by the batch's content), so a killed run started again with the same
 * command embeds only what is missing and writes the same bytes. Rows are
 * written to E.npy in order as their batches finish (a temporary file, moved
 * into place at the end), so memory does not grow with the number of images.
 * With a pool, a CLIP model is loaded only in the workers (the first one tells
 * this thread the row width): no model load or inference on the event loop.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, open, readdir, readFile, stat, truncate } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { isMainThread } from 'node:worker_threads';

import { Piscina } from 'piscina';

import { AtomicWriter, writeFileAtomic } from '../io/atomic.js';
import { readImage, type AlphaBackground, type ReadImageOptions } from '../io/images.js';
import { ChunkJournal } from '../io/journal.js';
import { checkWithin, manifestImage } from '../io/roots.js';
import { NpyStreamWriter, writeNpy } from '../io/npy.js';
import { checkInt } from '../native/validate.js';
import { ClipModel } from '../models/clip.js';
import { clipPreprocess } from '../models/clip-preprocess.js';
import { FeatureEmbedder } from '../models/features.js';
import type { Provider } from '../models/onnx.js';
import { GenaugError, type ErrorCode } from '../native/errors.js';
import type { Distributor } from '../util/distribute.js';
import { readJsonObjects } from '../util/jsonl.js';
import { mixSeed, seededRandom } from '../util/random.js';
import { readCoco, type CocoAnnotation, type CocoCategory, type CocoImage } from '../io/coco.js';
import { packageRoot } from '../native/load.js';
import { listImages } from './annotate.js';
import { IMAGE_EXTENSIONS } from '../io/images.js';
import { paddingCrop } from './crops.js';
import { decodeRleSync, segmentationToRle, type Rle } from '../kernels/mask.js';
import type { RgbInput } from '../models/types.js';

/** What embeds: a CLIP model folder or the weight-free features. Plain data (goes to workers). */
export interface EmbedderSpec {
  kind: 'clip' | 'features';
  /** CLIP model folder (kind 'clip'). */
  model?: string;
  provider?: Provider;
  /** onnxruntime intra-op threads per session (default: 1 in pool workers, onnxruntime's own otherwise). */
  threads?: number;
}

/** What every image embedding run takes (embedImages, embedInstances). */
export interface EmbedRunOptions {
  /** The .npy to write; the index and failures go beside it (E.index.jsonl, E.failed.jsonl). */
  out: string;
  embedder: EmbedderSpec;
  /** Images per inference batch (default 16). */
  batchSize?: number;
  /** Worker threads (default: min(cores, 4); 0 = in-process). */
  workers?: number;
  /** Cache folder (content hash → row per model). */
  cache?: string;
  /** Images with more pixels are recorded as failed (io/images.ts DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
  onNote?: (note: string) => void;
  /** Stops taking new batches: the batches running finish and are journaled, then the run rejects with E_ABORTED (rerun to resume). */
  signal?: AbortSignal;
  /** Hands the batches to other processes (genaug worker): each is embedded there by embedBatch, journaled and assembled here. */
  distribute?: Distributor;
}

export interface EmbedImagesOptions extends EmbedRunOptions {
  /** Folder of images (searched recursively, sorted); the index's paths are relative to it. */
  images?: string;
  /** JSON lines {"file": path, ...fields}: these files in this order (relative to `images`, else to the manifest's folder); the fields go into the index. */
  manifest?: string;
  /**
   * What images with an alpha channel are composited onto before embedding
   * (default 'none': alpha dropped, the RGB under it kept). DiverGen embeds
   * generated instances on black (ALGORITHMS.md §2.3): use 'black' for RGBA
   * instances. RGB images are unchanged whatever this says.
   */
  background?: AlphaBackground;
}

export interface EmbedRunResult {
  out: string;
  index: string;
  failed: string;
  rows: number;
  dim: number;
  images: number;
  failures: number;
  /** Rows taken from the cache. */
  cached: number;
  /** Batches found finished from an interrupted run. */
  resumedBatches: number;
  /** Milliseconds spent in the workers: decoding, preprocessing, inference (summed over batches). */
  timings: { decode: number; preprocess: number; infer: number };
  name: string;
  /** embedInstances: annotations of the COCO file that could not be used (bad box, mask, ids), the first named. */
  skipped?: { count: number; first: string };
}

// ---------------------------------------------------------------------------
// One batch (runs in a pool worker or in-process)

export interface BatchTask {
  /** 'probe': load the embedder and answer its row width (no items). */
  kind: 'images' | 'texts' | 'instances' | 'probe';
  spec: EmbedderSpec;
  /** Absolute image paths (kind 'images'). */
  files?: string[];
  /** Kind 'instances': images, each decoded once, and the instance masks cut from it (one row per instance). */
  images?: Array<{ abs: string; masks: Rle[] }>;
  /** How an instance becomes the embedded picture (kind 'instances'). */
  instance?: InstanceView;
  texts?: string[];
  batchSize: number;
  maxPixels?: number;
  /** Composite RGBA images onto this colour (default 'none': drop alpha). */
  background?: AlphaBackground;
}

export interface BatchResult {
  dim: number;
  /** Rows of the items (images, or instances) that succeeded, in item order. */
  rows: Float32Array;
  /** Per item (image, or instance): null when it has a row, else the reason it failed. */
  errors: Array<string | null>;
  timings: { decode: number; preprocess: number; infer: number };
  /** A probe whose embedder could not be loaded: the error, to be thrown again on the calling thread. */
  fatal?: { code: ErrorCode; message: string; detail?: Record<string, unknown> };
}

const embedders = new Map<string, Promise<ClipModel | FeatureEmbedder>>();

function specKey(spec: EmbedderSpec): string {
  return JSON.stringify([spec.kind, spec.model ? resolve(spec.model) : '', spec.provider ?? 'cpu', spec.threads ?? null]);
}

/** The embedder of a spec, loaded once per thread. */
export function loadEmbedder(spec: EmbedderSpec, batchSize = 32, need: 'image' | 'text' | 'both' = 'image'): Promise<ClipModel | FeatureEmbedder> {
  const key = `${specKey(spec)}|${batchSize}|${need}`;
  let p = embedders.get(key);
  if (!p) {
    if (spec.kind === 'features') p = Promise.resolve(new FeatureEmbedder());
    else {
      if (!spec.model) throw new GenaugError('E_ARGUMENT', "an embedder of kind 'clip' needs a model folder");
      const threads = spec.threads !== undefined ? { threads: spec.threads } : isMainThread ? {} : { threads: 1 };
      p = ClipModel.open(spec.model, { provider: spec.provider ?? 'cpu', batchSize, require: need, ...threads });
    }
    p.catch(() => embedders.delete(key));
    embedders.set(key, p);
  }
  return p;
}

/** Closes and forgets a loaded embedder of this thread (the main thread's copy when workers do the work). */
async function releaseEmbedder(spec: EmbedderSpec, batchSize: number, need: 'image' | 'text' | 'both'): Promise<void> {
  const key = `${specKey(spec)}|${batchSize}|${need}`;
  const p = embedders.get(key);
  embedders.delete(key);
  const m = await p?.catch(() => undefined);
  if (m instanceof ClipModel) await m.close();
}

function reasonOf(e: unknown): string {
  return e instanceof GenaugError ? `[${e.code}] ${e.message}` : `[E_INTERNAL] ${String((e as Error)?.message ?? e)}`;
}

/** Decodes, preprocesses and embeds one batch; a bad image is recorded, not thrown. */
export async function embedBatch(task: BatchTask): Promise<BatchResult> {
  const timings = { decode: 0, preprocess: 0, infer: 0 };
  if (task.kind === 'probe') {
    try {
      const m = await loadEmbedder(task.spec, task.batchSize, 'image');
      return { dim: m.dim, rows: new Float32Array(0), errors: [], timings };
    } catch (e) {
      const g = e instanceof GenaugError ? e : new GenaugError('E_INTERNAL', String((e as Error)?.message ?? e));
      return { dim: 0, rows: new Float32Array(0), errors: [], timings, fatal: { code: g.code, message: g.message, ...(g.detail ? { detail: g.detail } : {}) } };
    }
  }
  if (task.kind === 'texts') {
    const m = (await loadEmbedder(task.spec, task.batchSize, 'text')) as ClipModel;
    const t0 = performance.now();
    const rows = await m.embedTexts(task.texts ?? []);
    timings.infer = performance.now() - t0;
    return { dim: m.dim, rows, errors: (task.texts ?? []).map(() => null), timings };
  }
  const emb = await loadEmbedder(task.spec, task.batchSize, 'image');
  const decode: ReadImageOptions = { maxPixels: task.maxPixels, background: task.background ?? 'none' };
  const errors: Array<string | null> = [];
  const count = task.kind === 'instances' ? (task.images ?? []).reduce((n, im) => n + im.masks.length, 0) : (task.files ?? []).length;
  const clip = emb instanceof FeatureEmbedder ? undefined : emb;
  const size = clip ? (clip.imageSize as { height: number; width: number }) : undefined;
  const per = size ? 3 * size.height * size.width : emb.dim;
  // CLIP: preprocessed pixels, inferred once for the batch; features-v1: the rows themselves.
  const buffer = new Float32Array(count * per);
  let n = 0;
  const take = (img: RgbInput, t1: number) => {
    if (clip) clipPreprocess(img, clip.preprocess as NonNullable<ClipModel['preprocess']>, buffer, n * per);
    else (emb as FeatureEmbedder).embedOne(img, buffer, n * per);
    timings.preprocess += performance.now() - t1;
    errors.push(null);
    n++;
  };
  if (task.kind === 'instances') {
    const view = task.instance as InstanceView;
    for (const im of task.images ?? []) {
      let rgb: RgbInput;
      const t0 = performance.now();
      try {
        rgb = await readImage(im.abs, { ...decode, background: 'none' });
      } catch (e) {
        for (let q = 0; q < im.masks.length; q++) errors.push(reasonOf(e));
        continue;
      }
      timings.decode += performance.now() - t0;
      for (const rle of im.masks) {
        const t1 = performance.now();
        try {
          take(instancePicture(rgb, rle, view), t1);
        } catch (e) {
          errors.push(reasonOf(e));
        }
      }
    }
  } else {
    for (const f of task.files ?? []) {
      try {
        const t0 = performance.now();
        const img = await readImage(f, decode);
        const t1 = performance.now();
        timings.decode += t1 - t0;
        take(img, t1);
      } catch (e) {
        errors.push(reasonOf(e));
      }
    }
  }
  if (!clip) return { dim: emb.dim, rows: buffer.slice(0, n * per), errors, timings };
  const t2 = performance.now();
  const rows = n > 0 ? await clip.embedPixels(buffer.subarray(0, n * per), n) : new Float32Array(0);
  timings.infer = performance.now() - t2;
  return { dim: clip.dim, rows, errors, timings };
}

/**
 * What an instance of a COCO file looks like when it is embedded (DiverGen,
 * ALGORITHMS.md §2.3): 'crop' is the real-data side (the mask's box padded by
 * `padding` pixels, the background outside the mask box-blurred, curate/crops.ts
 * paddingCrop); 'masked' is the generated side (the whole image with every pixel
 * outside the mask set to black).
 */
export interface InstanceView {
  mode: 'crop' | 'masked';
  padding?: number;
  blur?: number;
}

/** The picture of one instance of a decoded image (see InstanceView); an empty mask is an error. */
export function instancePicture(rgb: RgbInput, rle: Rle, view: InstanceView): RgbInput {
  const [h, w] = rle.size;
  if (h !== rgb.height || w !== rgb.width) throw new GenaugError('E_SHAPE', `the mask is ${w} x ${h} but its image is ${rgb.width} x ${rgb.height}`);
  const m = decodeRleSync(rle).data;
  let any = false;
  for (let q = 0; q < m.length && !any; q++) any = m[q] !== 0;
  if (!any) throw new GenaugError('E_FORMAT', 'the instance mask is empty');
  if (view.mode === 'crop') return paddingCrop(rgb, m, { padding: view.padding ?? 40, blur: view.blur ?? 10 });
  const data = new Uint8Array(rgb.data);
  for (let q = 0, o = 0; q < m.length; q++, o += 3) if (m[q] === 0) data[o] = data[o + 1] = data[o + 2] = 0;
  return { data, width: rgb.width, height: rgb.height };
}

// ---------------------------------------------------------------------------
// Listing, hashing, identity

interface Item {
  /** Path relative to the images folder, '/'-separated. */
  file: string;
  abs: string;
  fields: Record<string, unknown>;
  sha256?: string;
  error?: string;
}

async function readManifest(path: string, images: string | undefined): Promise<Item[]> {
  const items: Item[] = [];
  for (const { line, value } of await readJsonObjects(path, 'the manifest')) {
    const { file, sha256: _s, row: _r, ...fields } = value;
    if (typeof file !== 'string' || !file) throw new GenaugError('E_FORMAT', `${path}:${line}: each line needs a "file" string`, { path, line });
    const { root, name } = manifestImage(value, path, images);
    items.push({ file: file.split(sep).join('/'), abs: resolve(root, name ?? file), fields });
  }
  return items;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  // A device or a FIFO (/dev/zero, a pipe) would be read (or opened) forever: only regular files are images.
  if (!(await stat(path)).isFile()) throw Object.assign(new Error('is not a regular file'), { code: 'ENOTREG' });
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** What decides a row besides the image bytes: the model's files (size, mtime), preprocessing and provider. */
async function embedderIdentity(spec: EmbedderSpec, background: AlphaBackground = 'none'): Promise<{ key: string; name: string }> {
  // A background changes the rows of RGBA images: it is part of the identity (keys without it stay as before).
  const bg = background === 'none' ? '' : `-on-${background}`;
  if (spec.kind === 'features') return { key: `features-v1${bg}`, name: 'features-v1' };
  const dir = resolve(spec.model as string);
  const files: Array<[string, number, number]> = [];
  for (const sub of ['', 'onnx']) {
    for (const n of ['vision_model.onnx', 'text_model.onnx', 'model.onnx', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      try {
        const s = await stat(join(dir, sub, n));
        files.push([join(sub, n), s.size, Math.round(s.mtimeMs)]);
      } catch {
        // absent: part of the identity by its absence
      }
    }
  }
  const digest = createHash('sha256').update(JSON.stringify({ dir, files, provider: spec.provider ?? 'cpu' })).digest('hex');
  return { key: `clip-${digest.slice(0, 24)}${bg}`, name: `clip:${basename(dir)}` };
}

// ---------------------------------------------------------------------------
// Cache: <cache>/<model key>/rows.f32 + keys.jsonl

class RowCache {
  private constructor(
    private readonly dir: string,
    private readonly dim: number,
    private readonly rows: Map<string, number>,
    private data: Float32Array,
  ) {}

  static async open(root: string, key: string, dim: number): Promise<RowCache> {
    const dir = join(root, key);
    await mkdir(dir, { recursive: true });
    const meta = join(dir, 'meta.json');
    if (existsSync(meta)) {
      const m = JSON.parse(await readFile(meta, 'utf8')) as { dim?: number };
      if (m.dim !== dim) throw new GenaugError('E_FORMAT', `cache ${dir} holds ${m.dim}-wide rows but this model gives ${dim}; use another --cache folder`, { path: dir });
    } else await writeFileAtomic(meta, new TextEncoder().encode(JSON.stringify({ dim, key }) + '\n'));
    let bytes = new Uint8Array(0);
    try {
      bytes = new Uint8Array(await readFile(join(dir, 'rows.f32')));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new GenaugError('E_IO', `could not read ${join(dir, 'rows.f32')}: ${(e as Error).message}`);
    }
    const whole = Math.floor(bytes.length / (dim * 4));
    const data = new Float32Array(whole * dim);
    new Uint8Array(data.buffer).set(bytes.subarray(0, whole * dim * 4));
    const rows = new Map<string, number>();
    let text = '';
    try {
      text = await readFile(join(dir, 'keys.jsonl'), 'utf8');
    } catch {
      text = '';
    }
    for (const line of text.split('\n')) {
      try {
        const k = JSON.parse(line) as { sha256: string; row: number };
        if (typeof k.sha256 === 'string' && Number.isInteger(k.row) && k.row >= 0 && k.row < whole) rows.set(k.sha256, k.row);
      } catch {
        // an empty or cut line
      }
    }
    return new RowCache(dir, dim, rows, data);
  }

  get(sha: string): Float32Array | undefined {
    const r = this.rows.get(sha);
    return r === undefined ? undefined : this.data.subarray(r * this.dim, (r + 1) * this.dim);
  }

  /** Appends rows (data first, keys after, so a key never points past the data). */
  async add(entries: Array<[string, Float32Array]>): Promise<void> {
    const fresh = entries.filter(([s]) => !this.rows.has(s));
    if (fresh.length === 0) return;
    const path = join(this.dir, 'rows.f32');
    const rowBytes = this.dim * 4;
    let size = 0;
    try {
      size = (await stat(path)).size;
    } catch {
      size = 0;
    }
    if (size % rowBytes !== 0) {
      size -= size % rowBytes;
      await truncate(path, size);
    }
    const first = size / rowBytes;
    const block = new Float32Array(fresh.length * this.dim);
    fresh.forEach(([, row], i) => block.set(row, i * this.dim));
    await appendFile(path, new Uint8Array(block.buffer));
    await appendFile(join(this.dir, 'keys.jsonl'), fresh.map(([s], i) => JSON.stringify({ sha256: s, row: first + i })).join('\n') + '\n');
    const grown = new Float32Array(this.data.length + block.length);
    grown.set(this.data);
    grown.set(block, this.data.length);
    this.data = grown;
    fresh.forEach(([s], i) => this.rows.set(s, first + i));
  }
}

// ---------------------------------------------------------------------------
// The pool

function workerFile(): string {
  return join(packageRoot, 'dist', 'workers', 'embed.js');
}

function openPool(workers: number): Piscina | undefined {
  if (workers <= 0) return undefined;
  const filename = workerFile();
  if (!existsSync(filename)) return undefined;
  return new Piscina({ filename, minThreads: 1, maxThreads: workers, idleTimeout: 1000 });
}

function runner(pool: Piscina | undefined): (t: BatchTask) => Promise<BatchResult> {
  return pool ? (t) => pool.run(t) as Promise<BatchResult> : embedBatch;
}

/** Rows + journal chunk encoding: [u32 header length][header JSON][float32 rows]. */
function encodeChunk(r: BatchResult): Uint8Array[] {
  const header = new TextEncoder().encode(JSON.stringify({ dim: r.dim, errors: r.errors, timings: r.timings }));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, header.length, true);
  return [len, header, new Uint8Array(r.rows.buffer, r.rows.byteOffset, r.rows.byteLength)];
}

async function readChunk(journal: ChunkJournal, key: string): Promise<BatchResult> {
  const path = join(journal.dir, `${key}.chunk`);
  const bytes = new Uint8Array(await readFile(path));
  const hl = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + hl))) as Omit<BatchResult, 'rows'>;
  const rest = bytes.subarray(4 + hl);
  const ok = h.errors.filter((e) => e === null).length;
  if (rest.length !== ok * h.dim * 4) throw new GenaugError('E_FORMAT', `${path}: journal chunk is cut short; delete ${journal.dir} and run again`, { path });
  const rows = new Float32Array(ok * h.dim);
  new Uint8Array(rows.buffer).set(rest);
  return { ...h, rows };
}

// ---------------------------------------------------------------------------
// Image runs

function siblings(out: string): { index: string; failed: string; partial: string } {
  const stem = out.endsWith('.npy') ? out.slice(0, -4) : out;
  return { index: `${stem}.index.jsonl`, failed: `${stem}.failed.jsonl`, partial: `${out}.partial` };
}

/** Checks the options every embedding run shares; returns the resolved ones. */
function runSettings(o: { out: string; embedder: EmbedderSpec; batchSize?: number; workers?: number; background?: AlphaBackground }, what: string) {
  if (!o.out) throw new GenaugError('E_ARGUMENT', `${what} needs out (the .npy to write)`);
  const spec = o.embedder;
  if (!spec || (spec.kind !== 'clip' && spec.kind !== 'features')) throw new GenaugError('E_ARGUMENT', "embedder must be { kind: 'clip', model } or { kind: 'features' }");
  const batchSize = o.batchSize ?? 16;
  checkInt(batchSize, 'batchSize', 1, 4096);
  const workers = o.workers ?? Math.min(4, availableParallelism());
  checkInt(workers, 'workers', 0, 256);
  const background = o.background ?? 'none';
  if (background !== 'none' && background !== 'black' && background !== 'white') throw new GenaugError('E_ARGUMENT', `background must be none, black or white, got ${JSON.stringify(background)}`);
  return { spec, batchSize, workers, background, out: resolve(o.out) };
}

/** One row to compute: `key` names its content (cache and journal); units with an error get no row. */
interface Unit {
  key?: string;
  error?: string;
}

interface EmbedPlan<U extends Unit> {
  spec: EmbedderSpec;
  /** The embedder's identity key, extended with anything else that changes the rows. */
  identity: string;
  batchSize: number;
  workers: number;
  cache?: string | undefined;
  partial: string;
  /** Settings recorded in the journal beside the identity. */
  params: Record<string, unknown>;
  /** The batches of the units still to compute (each a list of units with distinct keys). */
  batches: (todo: U[]) => U[][];
  task: (batch: U[]) => BatchTask;
  onProgress?: ((done: number, total: number) => void) | undefined;
  onNote?: ((note: string) => void) | undefined;
  signal?: AbortSignal | undefined;
  distribute?: Distributor | undefined;
}

interface Embedded {
  dim: number;
  cached: number;
  resumedBatches: number;
  timings: { decode: number; preprocess: number; infer: number };
  rows: number;
  failures: number;
  index: string;
  failed: string;
}

/**
 * The width of the embedder's rows, learnt where the inference will run (a
 * pool worker loads the model, not this thread). With a pool, `lanes` probes
 * go at once, so that many workers load the model side by side: the pool
 * starts with one worker, and the others would otherwise each load theirs on
 * its first batch, after the first worker's load, on the run's critical path
 * (a ViT-B/32 load is ~0.5-1 s, a few batches' time). Which worker answers
 * which probe does not matter: a worker that already has the model answers at
 * once, and one that missed a probe loads on its first batch as before.
 */
async function embedderDim(spec: EmbedderSpec, batchSize: number, pool: Piscina | undefined, lanes = 1): Promise<number> {
  if (spec.kind === 'features') return new FeatureEmbedder().dim;
  if (!pool) return (await loadEmbedder(spec, batchSize, 'image')).dim;
  const probe = { kind: 'probe', spec, batchSize } satisfies BatchTask;
  const rs = (await Promise.all(Array.from({ length: Math.max(1, lanes) }, () => pool.run(probe)))) as BatchResult[];
  const r = rs.find((x) => x.fatal) ?? (rs[0] as BatchResult);
  if (r.fatal) throw new GenaugError(r.fatal.code, r.fatal.message, r.fatal.detail);
  return r.dim;
}

/**
 * The engine of every image embedding run: rows by content key, from the
 * cache, from the journal of an interrupted run, or computed in the pool (a
 * piscina worker per lane, or in-process), each finished batch journaled; and
 * E.npy (+ E.index.jsonl) written in unit order as the rows come, so memory
 * stays flat in the number of units: a finished batch waits only until the
 * batches before it are written (lanes run at most a few batches ahead), and a
 * row is kept beyond that only while a later unit (an identical file) still
 * needs it. E.failed.jsonl is written at the end.
 */
async function embedAndWrite<U extends Unit>(
  units: U[],
  p: EmbedPlan<U>,
  out: string,
  line: (u: U, row: number) => Record<string, unknown>,
  failed: (u: U, reason: string) => Record<string, unknown>,
): Promise<Embedded> {
  const usePool = p.workers > 0 && existsSync(workerFile());
  // CLIP models load in a pool worker (which keeps its copy for the batches): never on this thread when there is a pool.
  let pool = usePool && p.spec.kind === 'clip' ? openPool(p.workers) : undefined;
  try {
    return await embedWithPool(units, p, out, line, failed, usePool, () => (pool ??= openPool(p.workers)), await embedderDim(p.spec, p.batchSize, pool, Math.min(p.workers, Math.ceil(units.length / p.batchSize))));
  } finally {
    await pool?.destroy();
  }
}

async function embedWithPool<U extends Unit>(
  units: U[],
  p: EmbedPlan<U>,
  out: string,
  line: (u: U, row: number) => Record<string, unknown>,
  failed: (u: U, reason: string) => Record<string, unknown>,
  usePool: boolean,
  getPool: () => Piscina | undefined,
  dim: number,
): Promise<Embedded> {
  const cache = p.cache ? await RowCache.open(resolve(p.cache), p.identity, dim) : undefined;
  let cached = 0;
  const todo: U[] = [];
  const queued = new Set<string>();
  const counted = new Set<string>();
  // How many units still need each key's row (identical files share one).
  const uses = new Map<string, number>();
  let maxRows = 0;
  for (const u of units) {
    if (!u.key || u.error) continue;
    maxRows++;
    uses.set(u.key, (uses.get(u.key) ?? 0) + 1);
    if (cache?.get(u.key)) {
      if (!counted.has(u.key)) cached++;
      counted.add(u.key);
    } else if (!queued.has(u.key)) {
      queued.add(u.key);
      todo.push(u);
    }
  }
  const journal = await ChunkJournal.open(p.partial, { inputs: [], params: { embedder: p.identity, dim, batchSize: p.batchSize, ...p.params } }, p.onNote);
  const batches = p.batches(todo);
  const keyOf = (b: U[]): string => 'b' + createHash('sha256').update(b.map((u) => u.key).join(',')).digest('hex').slice(0, 32);
  const batchOf = new Map<string, number>();
  batches.forEach((b, i) => b.forEach((u) => batchOf.set(u.key as string, i)));
  const timings = { decode: 0, preprocess: 0, infer: 0 };
  const total = units.length;
  let done = units.length - todo.length;
  let resumedBatches = 0;
  const journaled = new Set<number>();
  const pending: number[] = [];
  batches.forEach((b, i) => {
    if (journal.has(keyOf(b))) {
      journaled.add(i);
      resumedBatches++;
      done += b.length;
    } else pending.push(i);
  });
  p.onProgress?.(done, total);

  // Rows of finished batches not yet written (and of keys a later unit still needs), failures by key.
  const rowByKey = new Map<string, Float32Array>();
  const failOf = new Map<string, string>();
  const complete = new Set<number>();
  const take = async (b: U[], r: BatchResult): Promise<void> => {
    let k = 0;
    const fresh: Array<[string, Float32Array]> = [];
    b.forEach((u, i) => {
      const err = r.errors[i];
      if (err === null || err === undefined) {
        const row = r.rows.slice(k * dim, (k + 1) * dim);
        k++;
        rowByKey.set(u.key as string, row);
        fresh.push([u.key as string, row]);
      } else failOf.set(u.key as string, err);
    });
    timings.decode += r.timings.decode;
    timings.preprocess += r.timings.preprocess;
    timings.infer += r.timings.infer;
    if (cache) await cache.add(fresh);
  };

  const paths = siblings(out);
  const writer = await NpyStreamWriter.create(out, 'float32', maxRows, dim, { atMost: true });
  const indexOut = await AtomicWriter.open(paths.index).catch(async (e: unknown) => {
    await writer.abort();
    throw e;
  });
  const failedLines: string[] = [];
  const enc = new TextEncoder();
  const blockRows = 256;
  const block = new Float32Array(blockRows * dim);
  let inBlock = 0;
  let indexText = '';
  let rowsWritten = 0;
  let cursor = 0;
  const flush = async (): Promise<void> => {
    if (inBlock > 0) await writer.append(block.slice(0, inBlock * dim));
    inBlock = 0;
    if (indexText) await indexOut.write(enc.encode(indexText));
    indexText = '';
  };
  const use = (key: string): void => {
    const left = (uses.get(key) ?? 1) - 1;
    uses.set(key, left);
    if (left <= 0) {
      rowByKey.delete(key);
      uses.delete(key);
    }
  };
  // Writes every unit whose row (or failure) is known, in order; one caller at a time.
  const advance = async (): Promise<void> => {
    while (cursor < units.length) {
      const u = units[cursor] as U;
      if (u.error || !u.key) {
        if (u.error !== undefined) failedLines.push(JSON.stringify(failed(u, u.error)));
        cursor++;
        continue;
      }
      let row = cache?.get(u.key);
      if (!row) {
        const b = batchOf.get(u.key) as number;
        if (!complete.has(b)) {
          if (!journaled.has(b)) break;
          const bu = batches[b] as U[];
          await take(bu, await readChunk(journal, keyOf(bu)));
          complete.add(b);
        }
        row = rowByKey.get(u.key);
      }
      if (row) {
        block.set(row, inBlock * dim);
        indexText += JSON.stringify(line(u, rowsWritten)) + '\n';
        rowsWritten++;
        if (++inBlock === blockRows) await flush();
      } else {
        failedLines.push(JSON.stringify(failed(u, failOf.get(u.key) ?? '[E_INTERNAL] no row and no reason')));
      }
      use(u.key);
      cursor++;
    }
  };
  let writing: Promise<void> = Promise.resolve();
  const write = (): Promise<void> => (writing = writing.then(advance));

  if (p.distribute && pending.length > 0) {
    // Every batch elsewhere; each result is journaled and taken as one computed here would be, then written in order.
    const res = await p.distribute.run<BatchTask, BatchResult>('embed', pending.map((bi) => p.task(batches[bi] as U[])));
    for (let i = 0; i < pending.length; i++) {
      const bi = pending[i] as number;
      const b = batches[bi] as U[];
      const r = res[i] as (typeof res)[number];
      if (!r.ok) {
        for (const u of b) failOf.set(u.key as string, r.reason);
      } else {
        if (r.value.dim !== dim) throw new GenaugError('E_INTERNAL', `a worker's embedder gave ${r.value.dim}-wide rows, expected ${dim}`);
        if (r.value.errors.length !== b.length) throw new GenaugError('E_INTERNAL', `a worker answered ${r.value.errors.length} items for a batch of ${b.length}`);
        await journal.put(keyOf(b), encodeChunk(r.value));
        await take(b, r.value);
      }
      complete.add(bi);
      done += b.length;
      await write();
    }
    p.onProgress?.(done, total);
    pending.length = 0;
  }
  const lanes = Math.max(1, Math.min(usePool ? p.workers : 1, pending.length));
  const pool = pending.length > 0 && usePool ? getPool() : undefined;
  const run = runner(pool);
  let failure: { error: unknown } | undefined;
  // Lanes take pending batches in order, at most `ahead` past the lowest unfinished one.
  const ahead = 2 * lanes + 1;
  const finished = new Array<boolean>(pending.length).fill(false);
  let lowest = 0;
  let wake: Array<() => void> = [];
  const notify = (): void => {
    while (lowest < pending.length && finished[lowest]) lowest++;
    const w = wake;
    wake = [];
    for (const f of w) f();
  };
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; !failure && i < pending.length; i = next++) {
      while (!failure && i >= lowest + ahead) await new Promise<void>((r) => wake.push(r));
      if (failure) break;
      if (p.signal?.aborted) {
        failure ??= { error: new GenaugError('E_ABORTED', `embed was stopped after ${done} of ${total} items (finished batches are journaled in ${p.partial}); run it again to resume`) };
        break;
      }
      const bi = pending[i] as number;
      const b = batches[bi] as U[];
      try {
        const r = await run(p.task(b));
        if (r.dim !== dim) throw new GenaugError('E_INTERNAL', `a worker's embedder gave ${r.dim}-wide rows, expected ${dim}`);
        if (r.errors.length !== b.length) throw new GenaugError('E_INTERNAL', `a worker answered ${r.errors.length} items for a batch of ${b.length}`);
        await journal.put(keyOf(b), encodeChunk(r));
        await take(b, r);
        complete.add(bi);
        done += b.length;
        p.onProgress?.(done, total);
        await write();
      } catch (error) {
        failure ??= { error };
      } finally {
        finished[i] = true;
        notify();
      }
    }
    notify();
  };
  try {
    await Promise.all(Array.from({ length: lanes }, lane));
    if (failure) throw failure.error;
    await write();
    if (cursor !== units.length) throw new GenaugError('E_INTERNAL', `embedding stopped at unit ${cursor} of ${units.length}`);
    await flush();
    await writer.close();
    await indexOut.commit();
  } catch (e) {
    await writer.abort().catch(() => undefined);
    await indexOut.abort().catch(() => undefined);
    throw e;
  }
  await writeFileAtomic(paths.failed, enc.encode(failedLines.join('\n') + (failedLines.length ? '\n' : '')));
  await journal.remove();
  return { dim, cached, resumedBatches, timings, rows: rowsWritten, failures: failedLines.length, index: paths.index, failed: paths.failed };
}

/** Embeds a folder or manifest of images into E.npy + E.index.jsonl (+ E.failed.jsonl). */
export async function embedImages(o: EmbedImagesOptions): Promise<EmbedRunResult> {
  if (!o.images && !o.manifest) throw new GenaugError('E_ARGUMENT', 'embedImages needs images (a folder) or manifest (JSON lines)');
  const { spec, batchSize, workers, background, out } = runSettings(o, 'embedImages');
  await mkdir(dirname(out), { recursive: true });

  // 1. The items, in row order.
  let items: Item[];
  let root: string;
  if (o.manifest) {
    root = resolve(o.images ?? dirname(resolve(o.manifest)));
    items = await readManifest(o.manifest, o.images);
    // A line with `path` (genaug generate's manifest: `file` relative to images/, `path` to the manifest's folder) keeps
    // its `file` as the row's name, the id score, filter and annotate use for that image; others are named from the root.
    items.forEach((it) => (it.file = !o.images && typeof it.fields.path === 'string' && it.fields.path ? posix.normalize(it.file) : relative(root, it.abs).split(sep).join('/')));
  } else {
    root = resolve(o.images as string);
    if (!existsSync(root)) throw new GenaugError('E_IO', `images folder ${root} does not exist`, { path: root });
    items = (await listImages(root)).map((f) => ({ file: f, abs: join(root, f), fields: {} }));
  }
  if (items.length === 0) throw new GenaugError('E_IO', `no images (${IMAGE_EXTENSIONS.join(' ')}) ${o.manifest ? `in ${o.manifest}` : `under ${root}`}`, { path: root });

  // 2. Content hashes (an unreadable file is a failure of that item): identical files are embedded once.
  await hashItems(items, root);
  const units = items.map((it) => ({ ...it, ...(it.sha256 ? { key: it.sha256 } : {}) }));

  // 3. Rows by content, from the cache, the journal or the pool.
  const ident = await embedderIdentity(spec, background);
  const e = await embedAndWrite(units, {
    spec,
    identity: ident.key,
    batchSize,
    workers,
    cache: o.cache,
    partial: siblings(out).partial,
    params: { maxPixels: o.maxPixels ?? null, version: 1, ...(background !== 'none' ? { background } : {}) },
    batches: (todo) => Array.from({ length: Math.ceil(todo.length / batchSize) }, (_, i) => todo.slice(i * batchSize, (i + 1) * batchSize)),
    task: (b) => ({ kind: 'images', spec, files: b.map((it) => it.abs), batchSize, background, ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}) }),
    onProgress: o.onProgress,
    onNote: o.onNote,
    signal: o.signal,
    distribute: o.distribute,
  },
  // 4. Outputs in item order, written as the rows come.
  out,
  (it, row) => ({ file: it.file, sha256: it.sha256, row, ...it.fields }),
  (it, reason) => ({ file: it.file, ...(it.sha256 ? { sha256: it.sha256 } : {}), reason, ...it.fields }));
  return { out, index: e.index, failed: e.failed, rows: e.rows, dim: e.dim, images: items.length, failures: e.failures, cached: e.cached, resumedBatches: e.resumedBatches, timings: e.timings, name: ident.name };
}

async function hashItems(items: Array<{ abs: string; sha256?: string; error?: string }>, root: string): Promise<void> {
  for (const it of items) {
    try {
      await checkWithin(root, it.abs, 'image');
      it.sha256 = await sha256File(it.abs);
    } catch (e) {
      if (e instanceof GenaugError) {
        it.error = reasonOf(e);
        continue;
      }
      const code = (e as NodeJS.ErrnoException).code;
      it.error = `[E_IO] image ${it.abs} ${code === 'ENOENT' ? 'does not exist' : code === 'ENOTREG' ? 'is not a regular file (a device, a pipe or a folder)' : `could not be read: ${(e as Error).message}`}`;
    }
  }
}

// ---------------------------------------------------------------------------
// Instance runs: every instance of a COCO file, one row each

export interface EmbedInstancesOptions extends InstanceView, EmbedRunOptions {
  /** COCO/LVIS annotations whose instances (segmentation masks: polygons or RLE) are embedded. */
  coco: string;
  /** The folder the COCO file names are relative to. */
  images: string;
  /** The categories embedded, by name, in label order (label = position); default every category in id order. */
  categories?: string[];
  /**
   * A category of `categories` the COCO file does not have: an error (default), or 'skip': it keeps its label
   * position and has no rows (a run's class whose every generated image failed).
   */
  missingCategories?: 'error' | 'skip';
  /** At most this many instances per category: a seeded choice among its annotations (0 or absent: all). */
  maxPerCategory?: number;
  /** Seed of that choice. */
  seed?: number;
  /**
   * JSON lines {"file": ...}: the images in this order, by file name (COCO
   * file_name); images the order does not name come after, by image id. Default: by image id.
   */
  order?: string;
}

interface InstanceUnit extends Unit {
  image: CocoImage;
  abs: string;
  annotation: CocoAnnotation;
  rle?: Rle;
  category: string;
  label: number;
}

/**
 * Embeds the instances of a COCO file: for DiverGen's inter-similarity, the
 * real side as padded, background-blurred crops (`mode: 'crop'`) and the
 * generated side as masked images (`mode: 'masked'`). Crowd annotations and
 * categories not asked for are left out; an instance whose mask is empty or
 * whose image cannot be decoded is recorded in E.failed.jsonl. Each image is
 * decoded once (its instances share a batch). Journaled and cached as
 * embedImages is.
 */
export async function embedInstances(o: EmbedInstancesOptions): Promise<EmbedRunResult> {
  const { spec, batchSize, workers, out } = runSettings(o, 'embedInstances');
  if (o.mode !== 'crop' && o.mode !== 'masked') throw new GenaugError('E_ARGUMENT', `mode must be crop or masked, got ${JSON.stringify(o.mode)}`);
  const view: InstanceView = o.mode === 'crop' ? { mode: 'crop', padding: o.padding ?? 40, blur: o.blur ?? 10 } : { mode: 'masked' };
  if (view.mode === 'crop') {
    checkInt(view.padding as number, 'padding', 0, 1 << 20);
    checkInt(view.blur as number, 'blur', 1, 1 << 20);
  }
  const maxPer = o.maxPerCategory ?? 0;
  checkInt(maxPer, 'maxPerCategory', 0);
  const coco = await readCoco(o.coco, { polygons: 'packed' });
  const root = resolve(o.images);
  await mkdir(dirname(out), { recursive: true });

  // 1. Categories and labels.
  const byName = new Map(coco.dataset.categories.map((c) => [c.name, c]));
  const names = o.categories ?? [...coco.dataset.categories].sort((a, b) => a.id - b.id).map((c) => c.name);
  const absent = names.filter((n) => !byName.has(n));
  if (absent.length && o.missingCategories !== 'skip') throw new GenaugError('E_ARGUMENT', `categories[${names.indexOf(absent[0]!)}]: '${absent[0]}' is not a category of ${o.coco}`);
  if (absent.length) o.onNote?.(`${o.coco} has no ${absent.join(', ')}: nothing of ${absent.length === 1 ? 'that class' : 'those classes'} to embed`);
  const labelOfCat = new Map(names.flatMap((n, i) => (byName.has(n) ? [[(byName.get(n) as CocoCategory).id, i] as const] : [])));
  const usable = (a: CocoAnnotation) => labelOfCat.has(a.category_id) && Boolean(a.segmentation) && a.iscrowd !== 1;

  // 2. At most maxPer per category: a seeded choice, the same on every run.
  let chosen: Set<number> | undefined;
  if (maxPer > 0) {
    chosen = new Set();
    const byCat = new Map<number, number[]>();
    for (const a of coco.dataset.annotations) {
      if (!usable(a)) continue;
      let l = byCat.get(a.category_id);
      if (!l) byCat.set(a.category_id, (l = []));
      l.push(a.id);
    }
    for (const [cat, ids] of byCat) {
      const r = seededRandom(mixSeed(o.seed ?? 0, cat, 31));
      const drawn = ids.sort((x, y) => x - y).map((id) => ({ id, k: r() })).sort((x, y) => x.k - y.k);
      for (const d of drawn.slice(0, maxPer)) chosen.add(d.id);
    }
  }

  // 3. Images in order, their instances in annotation order.
  let images = [...coco.dataset.images].sort((a, b) => a.id - b.id);
  if (o.order) {
    const rank = new Map<string, number>();
    for (const { value } of await readJsonObjects(o.order, 'the order manifest')) if (typeof value.file === 'string' && !rank.has(value.file)) rank.set(value.file, rank.size);
    images = images.map((im, i) => ({ im, i, r: rank.get(im.file_name) ?? Infinity })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.im);
  }
  const units: InstanceUnit[] = [];
  const shaOf = new Map<number, { sha256?: string; error?: string }>();
  for (const im of images) {
    const anns = (coco.annotationsByImage.get(im.id) ?? []).filter((a) => usable(a) && (!chosen || chosen.has(a.id)));
    if (anns.length === 0) continue;
    const abs = resolve(root, im.file_name);
    const h: { abs: string; sha256?: string; error?: string } = { abs };
    await hashItems([h], root);
    shaOf.set(im.id, h);
    for (const a of anns) {
      const u: InstanceUnit = { image: im, abs, annotation: a, category: names[labelOfCat.get(a.category_id) as number] as string, label: labelOfCat.get(a.category_id) as number };
      if (h.error) u.error = h.error;
      else {
        try {
          u.rle = segmentationToRle(a.segmentation, im.height, im.width);
          u.key = createHash('sha256').update(`${h.sha256}\0${JSON.stringify(u.rle)}`).digest('hex');
        } catch (e) {
          u.error = reasonOf(e);
        }
      }
      units.push(u);
    }
  }
  if (units.length === 0) throw new GenaugError('E_ARGUMENT', `${o.coco} has no instances with a mask in the categories asked for (${names.join(', ')})`);

  // 4. Rows: an image's instances stay in one batch, so each image is decoded once.
  const ident = await embedderIdentity(spec, 'none');
  const viewKey = view.mode === 'crop' ? `crop-p${view.padding}-b${view.blur}` : 'masked';
  const fields = (u: InstanceUnit) => ({
    file: u.image.file_name,
    annotation: u.annotation.id,
    category: u.category,
    label: u.label,
    bbox: u.annotation.bbox,
    area: u.annotation.area,
    width: u.image.width,
    height: u.image.height,
  });
  const w = await embedAndWrite(units, {
    spec,
    identity: `${ident.key}-instances-${viewKey}`,
    batchSize,
    workers,
    cache: o.cache,
    partial: siblings(out).partial,
    params: { maxPixels: o.maxPixels ?? null, version: 1, view: viewKey },
    batches: (todo) => {
      const out: InstanceUnit[][] = [];
      let cur: InstanceUnit[] = [];
      for (let i = 0; i < todo.length; i++) {
        const u = todo[i] as InstanceUnit;
        cur.push(u);
        const nextSame = (todo[i + 1] as InstanceUnit | undefined)?.abs === u.abs;
        if (cur.length >= batchSize && !nextSame) {
          out.push(cur);
          cur = [];
        }
      }
      if (cur.length) out.push(cur);
      return out;
    },
    task: (b) => {
      const imgs: Array<{ abs: string; masks: Rle[] }> = [];
      for (const u of b) {
        const last = imgs[imgs.length - 1];
        if (last && last.abs === u.abs) last.masks.push(u.rle as Rle);
        else imgs.push({ abs: u.abs, masks: [u.rle as Rle] });
      }
      return { kind: 'instances', spec, images: imgs, instance: view, batchSize, ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}) };
    },
    onProgress: o.onProgress,
    onNote: o.onNote,
    signal: o.signal,
    distribute: o.distribute,
  },
  // 5. Outputs in instance order, written as the rows come.
  out, (u, row) => ({ ...fields(u), row }), (u, reason) => ({ ...fields(u), reason }));
  const e = w;
  const first = coco.problems[0];
  return {
    out,
    index: w.index,
    failed: w.failed,
    rows: w.rows,
    dim: e.dim,
    images: shaOf.size,
    failures: w.failures,
    cached: e.cached,
    resumedBatches: e.resumedBatches,
    timings: e.timings,
    name: ident.name,
    ...(first ? { skipped: { count: coco.problems.length, first: `${first.where}: ${first.message}` } } : {}),
  };
}

// ---------------------------------------------------------------------------
// Text runs

export interface EmbedTextsOptions {
  /** A CLIP model folder. */
  model: string;
  provider?: Provider;
  threads?: number;
  /** A UTF-8 text file, one text per line (a final newline ends the last line; empty lines are rows too), or the texts. */
  texts: string | string[];
  out: string;
  /** Texts per inference batch (default 64). */
  batchSize?: number;
  /** Worker threads for the model (default 1; 0 = in-process). */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Reads a texts file: one text per line, a trailing newline (and \r of CRLF) dropped. */
export async function readTextLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new GenaugError('E_IO', `could not read the texts file ${path}: ${(e as Error).message}`, { path });
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Embeds texts (one row each, in order) into T.npy. */
export async function embedTexts(o: EmbedTextsOptions): Promise<{ out: string; rows: number; dim: number }> {
  if (!o.model) throw new GenaugError('E_ARGUMENT', 'embedTexts needs a CLIP model folder');
  const texts = typeof o.texts === 'string' ? await readTextLines(o.texts) : o.texts;
  if (!Array.isArray(texts) || texts.length === 0) throw new GenaugError('E_ARGUMENT', `no texts to embed${typeof o.texts === 'string' ? ` in ${o.texts}` : ''}`);
  const batchSize = o.batchSize ?? 64;
  checkInt(batchSize, 'batchSize', 1, 65536);
  const spec: EmbedderSpec = { kind: 'clip', model: o.model, provider: o.provider ?? 'cpu', ...(o.threads !== undefined ? { threads: o.threads } : {}) };
  const pool = openPool(Math.min(o.workers ?? 1, 1));
  const run = runner(pool);
  const chunks: Float32Array[] = [];
  let dim = 0;
  try {
    // Chunks of a few batches per task: progress, and the worker stays busy.
    const step = batchSize * 4;
    for (let i = 0; i < texts.length; i += step) {
      const r = await run({ kind: 'texts', spec, texts: texts.slice(i, i + step), batchSize });
      dim = r.dim;
      chunks.push(r.rows);
      o.onProgress?.(Math.min(texts.length, i + step), texts.length);
    }
  } finally {
    await pool?.destroy();
  }
  const all = new Float32Array(texts.length * dim);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const out = resolve(o.out);
  await mkdir(dirname(out), { recursive: true });
  await writeNpy(out, all, [texts.length, dim]);
  return { out, rows: texts.length, dim };
}
