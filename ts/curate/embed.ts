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
 * command embeds only what is missing and writes the same bytes. The rows of
 * the run are held in memory until the end (N × D × 4 bytes).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, open, readdir, readFile, stat, truncate } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { isMainThread } from 'node:worker_threads';

import { Piscina } from 'piscina';

import { writeFileAtomic } from '../io/atomic.js';
import { readImage, type AlphaBackground, type ReadImageOptions } from '../io/images.js';
import { ChunkJournal } from '../io/journal.js';
import { NpyStreamWriter, writeNpy } from '../io/npy.js';
import { checkInt } from '../native/validate.js';
import { ClipModel } from '../models/clip.js';
import { clipPreprocess } from '../models/clip-preprocess.js';
import { FeatureEmbedder } from '../models/features.js';
import type { Provider } from '../models/onnx.js';
import { GenaugError } from '../native/errors.js';
import { readJsonObjects } from '../util/jsonl.js';
import { packageRoot } from '../native/load.js';
import { IMAGE_EXTENSIONS, listImages } from './annotate.js';

/** What embeds: a CLIP model folder or the weight-free features. Plain data (goes to workers). */
export interface EmbedderSpec {
  kind: 'clip' | 'features';
  /** CLIP model folder (kind 'clip'). */
  model?: string;
  provider?: Provider;
  /** onnxruntime intra-op threads per session (default: 1 in pool workers, onnxruntime's own otherwise). */
  threads?: number;
}

export interface EmbedImagesOptions {
  /** Folder of images (searched recursively, sorted); the index's paths are relative to it. */
  images?: string;
  /** JSON lines {"file": path, ...fields}: these files in this order (relative to `images`, else to the manifest's folder); the fields go into the index. */
  manifest?: string;
  /** The .npy to write; the index and failures go beside it (E.index.jsonl, E.failed.jsonl). */
  out: string;
  embedder: EmbedderSpec;
  /** Images per inference batch (default 16). */
  batchSize?: number;
  /** Worker threads (default: min(cores, 4); 0 = in-process). */
  workers?: number;
  /** Cache folder (content hash → row per model). */
  cache?: string;
  maxPixels?: number;
  /**
   * What images with an alpha channel are composited onto before embedding
   * (default 'none': alpha dropped, the RGB under it kept). DiverGen embeds
   * generated instances on black (ALGORITHMS.md §2.3): use 'black' for RGBA
   * instances. RGB images are unchanged whatever this says.
   */
  background?: AlphaBackground;
  onProgress?: (done: number, total: number) => void;
  onNote?: (note: string) => void;
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
}

// ---------------------------------------------------------------------------
// One batch (runs in a pool worker or in-process)

export interface BatchTask {
  kind: 'images' | 'texts';
  spec: EmbedderSpec;
  /** Absolute image paths (kind 'images'). */
  files?: string[];
  texts?: string[];
  batchSize: number;
  maxPixels?: number;
  /** Composite RGBA images onto this colour (default 'none': drop alpha). */
  background?: AlphaBackground;
}

export interface BatchResult {
  dim: number;
  /** Rows of the items that succeeded, in item order. */
  rows: Float32Array;
  /** Per item: null when it has a row, else the reason it failed. */
  errors: Array<string | null>;
  timings: { decode: number; preprocess: number; infer: number };
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
  if (task.kind === 'texts') {
    const m = (await loadEmbedder(task.spec, task.batchSize, 'text')) as ClipModel;
    const t0 = performance.now();
    const rows = await m.embedTexts(task.texts ?? []);
    timings.infer = performance.now() - t0;
    return { dim: m.dim, rows, errors: (task.texts ?? []).map(() => null), timings };
  }
  const files = task.files ?? [];
  const emb = await loadEmbedder(task.spec, task.batchSize, 'image');
  const errors: Array<string | null> = [];
  const decode: ReadImageOptions = { maxPixels: task.maxPixels, background: task.background ?? 'none' };
  if (emb instanceof FeatureEmbedder) {
    const rows = new Float32Array(files.length * emb.dim);
    let n = 0;
    for (const f of files) {
      try {
        const t0 = performance.now();
        const img = await readImage(f, decode);
        const t1 = performance.now();
        emb.embedOne(img, rows, n * emb.dim);
        timings.decode += t1 - t0;
        timings.preprocess += performance.now() - t1;
        errors.push(null);
        n++;
      } catch (e) {
        errors.push(reasonOf(e));
      }
    }
    return { dim: emb.dim, rows: rows.slice(0, n * emb.dim), errors, timings };
  }
  const size = emb.imageSize as { height: number; width: number };
  const per = 3 * size.height * size.width;
  const pixels = new Float32Array(files.length * per);
  let n = 0;
  for (const f of files) {
    try {
      const t0 = performance.now();
      const img = await readImage(f, decode);
      const t1 = performance.now();
      clipPreprocess(img, emb.preprocess as NonNullable<ClipModel['preprocess']>, pixels, n * per);
      timings.decode += t1 - t0;
      timings.preprocess += performance.now() - t1;
      errors.push(null);
      n++;
    } catch (e) {
      errors.push(reasonOf(e));
    }
  }
  const t2 = performance.now();
  const rows = n > 0 ? await emb.embedPixels(pixels.subarray(0, n * per), n) : new Float32Array(0);
  timings.infer = performance.now() - t2;
  return { dim: emb.dim, rows, errors, timings };
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

async function readManifest(path: string, base: string): Promise<Item[]> {
  const items: Item[] = [];
  for (const { line, value } of await readJsonObjects(path, 'the manifest')) {
    const { file, sha256: _s, row: _r, ...fields } = value;
    if (typeof file !== 'string' || !file) throw new GenaugError('E_FORMAT', `${path}:${line}: each line needs a "file" string`, { path, line });
    items.push({ file: file.split(sep).join('/'), abs: resolve(base, file), fields });
  }
  return items;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
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

/** Embeds a folder or manifest of images into E.npy + E.index.jsonl (+ E.failed.jsonl). */
export async function embedImages(o: EmbedImagesOptions): Promise<EmbedRunResult> {
  if (!o.images && !o.manifest) throw new GenaugError('E_ARGUMENT', 'embedImages needs images (a folder) or manifest (JSON lines)');
  if (!o.out) throw new GenaugError('E_ARGUMENT', 'embedImages needs out (the .npy to write)');
  const spec = o.embedder;
  if (!spec || (spec.kind !== 'clip' && spec.kind !== 'features')) throw new GenaugError('E_ARGUMENT', "embedder must be { kind: 'clip', model } or { kind: 'features' }");
  const batchSize = o.batchSize ?? 16;
  checkInt(batchSize, 'batchSize', 1, 4096);
  const workers = o.workers ?? Math.min(4, availableParallelism());
  checkInt(workers, 'workers', 0, 256);
  const out = resolve(o.out);
  const paths = siblings(out);
  await mkdir(dirname(out), { recursive: true });

  // 1. The items, in row order.
  let items: Item[];
  let root: string;
  if (o.manifest) {
    root = resolve(o.images ?? dirname(resolve(o.manifest)));
    items = await readManifest(o.manifest, root);
    items.forEach((it) => (it.file = relative(root, it.abs).split(sep).join('/')));
  } else {
    root = resolve(o.images as string);
    if (!existsSync(root)) throw new GenaugError('E_IO', `images folder ${root} does not exist`, { path: root });
    items = (await listImages(root)).map((f) => ({ file: f, abs: join(root, f), fields: {} }));
  }
  if (items.length === 0) throw new GenaugError('E_IO', `no images (${IMAGE_EXTENSIONS.join(' ')}) ${o.manifest ? `in ${o.manifest}` : `under ${root}`}`, { path: root });

  // 2. Content hashes (an unreadable file is a failure of that item).
  for (const it of items) {
    try {
      it.sha256 = await sha256File(it.abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      it.error = `[E_IO] image ${it.abs} ${code === 'ENOENT' ? 'does not exist' : `could not be read: ${(e as Error).message}`}`;
    }
  }

  // 3. The embedder's identity and width (loads the model once here to check it and learn its width).
  const background = o.background ?? 'none';
  if (background !== 'none' && background !== 'black' && background !== 'white') throw new GenaugError('E_ARGUMENT', `background must be none, black or white, got ${JSON.stringify(background)}`);
  const ident = await embedderIdentity(spec, background);
  const dim = spec.kind === 'features' ? new FeatureEmbedder().dim : (await loadEmbedder(spec, batchSize, 'image')).dim;
  const usePool = workers > 0 && existsSync(workerFile());
  // The workers load their own copies: the main thread's was only to check the model and learn its width.
  if (spec.kind === 'clip' && usePool) await releaseEmbedder(spec, batchSize, 'image');

  const cache = o.cache ? await RowCache.open(resolve(o.cache), ident.key, dim) : undefined;
  const rowOf = new Map<string, Float32Array>();
  const failOf = new Map<string, string>();
  let cached = 0;
  const todo: Item[] = [];
  const queued = new Set<string>();
  for (const it of items) {
    if (!it.sha256 || it.error) continue;
    const hit = cache?.get(it.sha256);
    if (hit) {
      if (!rowOf.has(it.sha256)) cached++;
      rowOf.set(it.sha256, hit);
    } else if (!queued.has(it.sha256)) {
      queued.add(it.sha256);
      todo.push(it);
    }
  }

  // 4. Batches, journaled by content.
  const journal = await ChunkJournal.open(paths.partial, { inputs: [], params: { embedder: ident.key, dim, batchSize, maxPixels: o.maxPixels ?? null, version: 1, ...(background !== 'none' ? { background } : {}) } }, o.onNote);
  const batches: Item[][] = [];
  for (let i = 0; i < todo.length; i += batchSize) batches.push(todo.slice(i, i + batchSize));
  const keyOf = (b: Item[]): string => 'b' + createHash('sha256').update(b.map((it) => it.sha256).join(',')).digest('hex').slice(0, 32);
  const timings = { decode: 0, preprocess: 0, infer: 0 };
  const total = items.length;
  let done = items.length - todo.length;
  o.onProgress?.(done, total);
  let resumedBatches = 0;
  const take = async (b: Item[], r: BatchResult): Promise<void> => {
    let k = 0;
    const fresh: Array<[string, Float32Array]> = [];
    b.forEach((it, i) => {
      const err = r.errors[i];
      if (err === null || err === undefined) {
        const row = r.rows.slice(k * dim, (k + 1) * dim);
        k++;
        rowOf.set(it.sha256 as string, row);
        fresh.push([it.sha256 as string, row]);
      } else failOf.set(it.sha256 as string, err);
    });
    timings.decode += r.timings.decode;
    timings.preprocess += r.timings.preprocess;
    timings.infer += r.timings.infer;
    if (cache) await cache.add(fresh);
  };
  const pending: Item[][] = [];
  for (const b of batches) {
    const key = keyOf(b);
    if (journal.has(key)) {
      await take(b, await readChunk(journal, key));
      resumedBatches++;
      done += b.length;
    } else pending.push(b);
  }
  o.onProgress?.(done, total);

  const pool = pending.length > 0 ? openPool(workers) : undefined;
  const run = runner(pool);
  let failure: { error: unknown } | undefined;
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; !failure && i < pending.length; i = next++) {
      const b = pending[i] as Item[];
      try {
        const r = await run({ kind: 'images', spec, files: b.map((it) => it.abs), batchSize, background, ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}) });
        if (r.dim !== dim) throw new GenaugError('E_INTERNAL', `a worker's embedder gave ${r.dim}-wide rows, expected ${dim}`);
        await journal.put(keyOf(b), encodeChunk(r));
        await take(b, r);
        done += b.length;
        o.onProgress?.(done, total);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(pool ? workers : 1, pending.length)) }, lane));
  } finally {
    await pool?.destroy();
  }
  if (failure) throw failure.error;

  // 5. Outputs in item order.
  const okItems = items.filter((it) => it.sha256 && !it.error && rowOf.has(it.sha256));
  const writer = await NpyStreamWriter.create(out, 'float32', okItems.length, dim);
  const indexLines: string[] = [];
  const failedLines: string[] = [];
  try {
    const block = new Float32Array(Math.min(okItems.length, 1024) * dim);
    let inBlock = 0;
    for (const it of okItems) {
      block.set(rowOf.get(it.sha256 as string) as Float32Array, inBlock * dim);
      indexLines.push(JSON.stringify({ file: it.file, sha256: it.sha256, row: indexLines.length, ...it.fields }));
      if (++inBlock * dim === block.length) {
        await writer.append(block.slice());
        inBlock = 0;
      }
    }
    if (inBlock > 0) await writer.append(block.slice(0, inBlock * dim));
    await writer.close();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  for (const it of items) {
    const reason = it.error ?? (it.sha256 && !rowOf.has(it.sha256) ? failOf.get(it.sha256) : undefined);
    if (reason !== undefined) failedLines.push(JSON.stringify({ file: it.file, ...(it.sha256 ? { sha256: it.sha256 } : {}), reason, ...it.fields }));
  }
  const enc = (lines: string[]) => new TextEncoder().encode(lines.join('\n') + (lines.length ? '\n' : ''));
  await writeFileAtomic(paths.index, enc(indexLines));
  await writeFileAtomic(paths.failed, enc(failedLines));
  await journal.remove();
  return {
    out,
    index: paths.index,
    failed: paths.failed,
    rows: okItems.length,
    dim,
    images: items.length,
    failures: failedLines.length,
    cached,
    resumedBatches,
    timings,
    name: ident.name,
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
