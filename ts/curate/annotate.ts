/**
 * Turns generated object images into an instance pool (X-Paste / DiverGen):
 * segment the object (corner flood fill by default, SAM-background or an
 * ONNX foreground segmenter on request), keep its largest component, fill its
 * holes, check its area fraction, crop it tight as an RGBA PNG, and record
 * the mask as compressed COCO RLE in the source image's frame.
 *
 * Every image ends as one line of POOL/progress.jsonl (kept, rejected with
 * the reason, or failed with the error), written after its PNG, so a run that
 * is killed resumes at the first image without a line, and a bad image never
 * stops the batch. index.json, annotations.json and rejected.jsonl are
 * rebuilt from that journal at the end, in a fixed order.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { isMainThread } from 'node:worker_threads';

import { Piscina } from 'piscina';
import sharp from 'sharp';

import { writeFileAtomic } from '../io/atomic.js';
import { checkWithin } from '../io/roots.js';
import { IMAGE_EXTENSIONS, readImage } from '../io/images.js';
import { readJournalMap, readJsonObjects } from '../util/jsonl.js';
import { cropToMask, foregroundFromCorners, postProcessMask, type Image, type PostProcessResult } from '../kernels/mask.js';
import type { ClipModel } from '../models/clip.js';
import type { SamModel } from '../models/sam.js';
import type { Segmenter } from '../models/segmenter.js';
import type { ImageTextEmbedder, RgbInput } from '../models/types.js';
import { clipScores, clipTextRows, type ClipTextRows } from './score.js';
import { round6 } from './table.js';
import { GenaugError, ioError, type ErrorCode } from '../native/errors.js';
import { packageRoot } from '../native/load.js';
import type { Distributor } from '../util/distribute.js';


export interface AnnotateOptions {
  /**
   * Model files for the worker pool (each worker loads its own copy); when
   * given, images are processed in a piscina pool of worker threads instead
   * of on the main thread. `sam`/`segmenter` instances are used in-process.
   * `segmenters` (two or more) with `clip` (a CLIP model folder): X-Paste's
   * pick, every segmenter's mask scored with CLIP, the best kept per image.
   */
  models?: { samEncoder?: string; samDecoder?: string; segmenter?: string; segmenters?: string[]; clip?: string; provider?: 'cpu' | 'cuda' };
  /** Worker threads (default: the number of cores; 0 = process on the main thread). */
  workers?: number;
  /** Folder of generated images (searched recursively). */
  images: string;
  /** Output pool folder. */
  out: string;
  /** How the foreground is found (default 'corners'). */
  method?: 'corners' | 'sam' | 'segmenter';
  /** Corner flood-fill colour tolerance, 0..255 (default 10). */
  tolerance?: number;
  sam?: SamModel;
  segmenter?: Segmenter;
  /**
   * Several segmenters, in-process (method 'segmenter'): each gives a
   * candidate mask; the image composited on white outside it is scored with
   * `clip` against `clipTemplate` and the best-scoring mask is kept
   * (X-Paste's reseg.py + clean_pool.py: mask > threshold, 100·cos, first
   * best on a tie). One segmenter here is the same as `segmenter`.
   */
  segmenters?: Segmenter[];
  /** The CLIP model of the pick among several segmenters (in-process; `models.clip` loads one per thread). */
  clip?: ImageTextEmbedder;
  /** X-Paste's text, the class name filled in for {} (default 'a photo of {}', `_` as spaces). */
  clipTemplate?: string;
  /** Category of each image: its folder name (default), or a manifest of {"file", "category"} lines. */
  manifest?: string;
  /** Area fraction bounds (X-Paste: [0.05, 0.95]). */
  minFraction?: number;
  maxFraction?: number;
  /** Images with more pixels than this are rejected, from the header (default DEFAULT_MAX_PIXELS, 8192 x 8192). */
  maxPixels?: number;
  /** Images processed at once (default: the number of cores). */
  concurrency?: number;
  /** Process again the images that failed in an earlier run. */
  retryFailed?: boolean;
  /** Stops taking new images: those started finish and are journaled, then the run rejects with E_ABORTED (rerun to resume). */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Hands the images to other processes (genaug worker): each is annotated there by annotateOne, journaled here. */
  distribute?: Distributor;
}

export interface JournalLine {
  file: string;
  category: string;
  status: 'kept' | 'rejected' | 'failed';
  reason?: string;
  width?: number;
  height?: number;
  instance?: string;
  bbox?: [number, number, number, number];
  area?: number;
  areaFraction?: number;
  counts?: string;
  /** Several segmenters: each one's candidate (CLIP score ×100 on white, raw mask area fraction) and the one kept. */
  segmenters?: SegmenterPick;
  /**
   * The cut-out could not be written (a full or read-only disk): not the
   * image's failure but the run's. Never journaled: annotate stops with E_IO
   * and a rerun processes the image again. Plain data, so it crosses from a
   * pool worker.
   */
  outputError?: { message: string; path: string };
}

/** Which of several segmenters' masks was kept for an image, and why. */
export interface SegmenterPick {
  /** Index into `candidates` (and the segmenter list) of the kept mask: the highest score, the first on a tie. */
  picked: number;
  candidates: Array<{
    /** The segmenter's model file name. */
    model: string;
    /** 100·cos(CLIP(image on white outside the mask), CLIP(template with the class)), rounded to 6 decimals. */
    clipScore: number;
    /** The raw mask's foreground fraction, before the largest component is kept. */
    areaFraction: number;
  }>;
}

/** Image files below `root` (any depth), as sorted '/'-separated paths relative to it. */
export async function listImages(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new GenaugError('E_IO', `could not list ${dir}: ${(e as Error).message}`, { path: dir });
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (IMAGE_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) {
        // Links are listed too, wherever they point: reading one that leads out of the folder is refused
        // (io/roots.ts) and recorded as a failed item, not silently left out.
        out.push(relative(root, p).split(sep).join('/'));
      }
    }
  };
  await walk(root);
  return out.sort();
}

async function readManifest(path: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const { line, value } of await readJsonObjects(path, 'the manifest')) {
    const { file, category } = value;
    if (typeof file !== 'string' || typeof category !== 'string' || !category) {
      throw new GenaugError('E_FORMAT', `${path}:${line}: each line needs "file" and "category" strings`, { path, line });
    }
    map.set(file, category);
  }
  return map;
}

/** A file-name-safe, collision-free instance name from the source path. */
function instanceName(file: string): string {
  return file.replace(/\.[^./]+$/, '').replace(/[^A-Za-z0-9._-]+/g, '_') + '.png';
}

async function readJournal(path: string): Promise<Map<string, JournalLine>> {
  return readJournalMap<JournalLine>(path, 'the annotate journal', (j) => (typeof j.file === 'string' ? j.file : undefined));
}

// Models loaded from paths, once per thread (each pool worker has its own).
const samCache = new Map<string, Promise<SamModel>>();
const segCache = new Map<string, Promise<Segmenter>>();

function loadSam(encoder: string, decoder: string, provider: 'cpu' | 'cuda' = 'cpu'): Promise<SamModel> {
  const key = `${encoder}\0${decoder}\0${provider}`;
  let p = samCache.get(key);
  if (!p) {
    // In a pool worker each session gets one thread: the pool already uses every core.
    const threads = isMainThread ? {} : { threads: 1 };
    p = import('../models/sam.js').then(({ SamModel: M }) => M.load({ encoder, decoder, provider, ...threads }));
    samCache.set(key, p);
  }
  return p;
}

function loadSegmenter(model: string, provider: 'cpu' | 'cuda' = 'cpu'): Promise<Segmenter> {
  const key = `${model}\0${provider}`;
  let p = segCache.get(key);
  if (!p) {
    const threads = isMainThread ? {} : { threads: 1 };
    p = import('../models/segmenter.js').then(({ Segmenter: S }) => S.load({ model, provider, ...threads }));
    segCache.set(key, p);
  }
  return p;
}

const clipCache = new Map<string, Promise<ClipModel>>();

function loadClip(dir: string, provider: 'cpu' | 'cuda' = 'cpu'): Promise<ClipModel> {
  const key = `${dir}\0${provider}`;
  let p = clipCache.get(key);
  if (!p) {
    const threads = isMainThread ? {} : { threads: 1 };
    p = import('../models/clip.js').then(({ ClipModel: C }) => C.open(dir, { provider, require: 'both', ...threads }));
    clipCache.set(key, p);
  }
  return p;
}

/** The segmenters of a multi-segmenter pick (two or more), else undefined: one segmenter is the plain path. */
function severalSegmenters(o: Pick<AnnotateOptions, 'segmenters' | 'models'>): number {
  return Math.max(o.segmenters?.length ?? 0, o.models?.segmenters?.length ?? 0);
}

// Text rows of the pick's CLIP texts, per model and template, filled class by class as images come.
const pickTexts = new WeakMap<ImageTextEmbedder, Map<string, ClipTextRows>>();

async function pickTextRow(clip: ImageTextEmbedder, template: string, category: string): Promise<ClipTextRows> {
  let byKey = pickTexts.get(clip);
  if (!byKey) pickTexts.set(clip, (byKey = new Map()));
  const key = `${template}\0${category}`;
  let rows = byKey.get(key);
  if (!rows) {
    rows = await clipTextRows(clip, [category], template);
    byKey.set(key, rows);
  }
  return rows;
}

/** The image with every pixel outside `mask` white (X-Paste's wb_im = img·m + 1·(1 − m)). */
function onWhite(rgb: Image, mask: Uint8Array): RgbInput {
  const out = new Uint8Array(rgb.data.length);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      out[i * 3] = rgb.data[i * 3] as number;
      out[i * 3 + 1] = rgb.data[i * 3 + 1] as number;
      out[i * 3 + 2] = rgb.data[i * 3 + 2] as number;
    } else {
      out[i * 3] = 255;
      out[i * 3 + 1] = 255;
      out[i * 3 + 2] = 255;
    }
  }
  return { data: out, width: rgb.width, height: rgb.height };
}

/**
 * X-Paste's pick among several segmenters: each one's raw mask, the image
 * composited on white outside it, CLIP-scored (×100) against the template
 * with the class name; the highest score wins (the first on a tie, as
 * numpy's argmax). Scores are rounded to 6 decimals before the comparison,
 * so the recorded numbers explain the decision.
 */
async function pickSegmenter(rgb: Image, category: string, o: AnnotateOptions): Promise<{ mask: Uint8Array; pick: SegmenterPick }> {
  if (!o.segmenters?.length && o.models?.segmenters) o.segmenters = await Promise.all(o.models.segmenters.map((m) => loadSegmenter(m, o.models?.provider)));
  if (!o.clip && o.models?.clip) o.clip = await loadClip(o.models.clip, o.models.provider);
  const segs = o.segmenters as Segmenter[];
  if (!o.clip) throw new GenaugError('E_ARGUMENT', `${segs.length} segmenters need a CLIP model to pick among their masks (--clip DIR; embed.clip in a run)`);
  const input = { data: rgb.data, width: rgb.width, height: rgb.height, channels: 3 as const };
  const masks: Uint8Array[] = [];
  const fractions: number[] = [];
  for (const seg of segs) {
    const fg = await seg.segment(input);
    masks.push(fg.mask);
    fractions.push(round6(fg.area / (rgb.width * rgb.height)));
  }
  const template = o.clipTemplate ?? 'a photo of {}';
  const scores = await clipScores(o.clip, masks.map((m) => onWhite(rgb, m)), masks.map(() => category), template, await pickTextRow(o.clip, template, category));
  const rounded = Array.from(scores, (v) => round6(v));
  let picked = 0;
  for (let i = 1; i < rounded.length; i++) if ((rounded[i] as number) > (rounded[picked] as number)) picked = i;
  return {
    mask: masks[picked] as Uint8Array,
    pick: { picked, candidates: segs.map((s, i) => ({ model: basename(s.model.path), clipScore: rounded[i] as number, areaFraction: fractions[i] as number })) },
  };
}

async function foreground(rgb: Image, category: string, o: AnnotateOptions): Promise<{ r: PostProcessResult; pick?: SegmenterPick }> {
  const checks = { minFraction: o.minFraction ?? 0.05, maxFraction: o.maxFraction ?? 0.95, rle: 'string' as const };
  const method = o.method ?? 'corners';
  if (method === 'corners') return { r: await foregroundFromCorners(rgb, { tolerance: o.tolerance ?? 10, ...checks }) };
  if (method === 'sam') {
    if (!o.sam && o.models?.samEncoder && o.models.samDecoder) o.sam = await loadSam(o.models.samEncoder, o.models.samDecoder, o.models.provider);
    if (!o.sam) throw new GenaugError('E_ARGUMENT', "method 'sam' needs a SAM model (--sam-encoder and --sam-decoder)");
    const bg = await o.sam.segmentBackground({ data: rgb.data, width: rgb.width, height: rgb.height, channels: 3 });
    return { r: await postProcessMask({ data: bg.background, height: rgb.height, width: rgb.width }, { invert: true, ...checks }) };
  }
  if (severalSegmenters(o) >= 2) {
    const { mask, pick } = await pickSegmenter(rgb, category, o);
    return { r: await postProcessMask({ data: mask, height: rgb.height, width: rgb.width }, checks), pick };
  }
  if (!o.segmenter && o.segmenters?.length === 1) o.segmenter = o.segmenters[0];
  const one = o.models?.segmenter ?? o.models?.segmenters?.[0];
  if (!o.segmenter && one) o.segmenter = await loadSegmenter(one, o.models?.provider);
  if (!o.segmenter) throw new GenaugError('E_ARGUMENT', "method 'segmenter' needs a segmenter model (--segmenter)");
  const fg = await o.segmenter.segment({ data: rgb.data, width: rgb.width, height: rgb.height, channels: 3 });
  return { r: await postProcessMask({ data: fg.mask, height: rgb.height, width: rgb.width }, checks) };
}

export async function annotateOne(file: string, category: string, o: AnnotateOptions): Promise<JournalLine> {
  const path = join(o.images, file);
  try {
    await checkWithin(o.images, path, 'image');
    const loaded = await readImage(path, { maxPixels: o.maxPixels });
    const rgb: Image = { data: loaded.data, height: loaded.height, width: loaded.width, channels: 3 };
    const { r, pick } = await foreground(rgb, category, o);
    const base = { file, category, width: rgb.width, height: rgb.height };
    const why = pick ? { segmenters: pick } : {};
    if (!r.ok || !r.mask) return { ...base, status: 'rejected', reason: r.reason ?? 'rejected by the area checks', ...why };
    const crop = await cropToMask(rgb, r.mask, r.bbox);
    const png = await sharp(Buffer.from(crop.data.buffer, crop.data.byteOffset, crop.data.byteLength), {
      raw: { width: crop.width, height: crop.height, channels: 4 },
    })
      .png()
      .toBuffer();
    // The category as one folder name: never '.', '..' or a path (a category "../x" must not write outside instances/).
    const folder = category.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+$/, (d) => `_${d}`) || '_';
    const instance = `instances/${folder}/${instanceName(file)}`;
    try {
      await mkdir(dirname(join(o.out, instance)), { recursive: true });
      await writeFileAtomic(join(o.out, instance), png);
    } catch (e) {
      const err = ioError(join(o.out, instance), join(o.out, instance), 'write it', e);
      return { file, category, status: 'failed', reason: `[${err.code}] ${err.message}`, outputError: { message: err.message, path: join(o.out, instance) } };
    }
    return {
      ...base,
      status: 'kept',
      instance,
      bbox: r.bbox,
      area: r.area,
      areaFraction: r.area / (rgb.width * rgb.height),
      counts: r.rle?.counts as string,
      ...why,
    };
  } catch (e) {
    const reason = e instanceof GenaugError ? `[${e.code}] ${e.message}` : `[E_INTERNAL] ${String((e as Error)?.message ?? e)}`;
    return { file, category, status: 'failed', reason };
  }
}

/** Builds the instance pool; returns the counts. */
export async function annotate(o: AnnotateOptions) {
  const root = resolve(o.images);
  const out = resolve(o.out);
  if (o.method === 'segmenter') {
    const several = severalSegmenters(o);
    if ((o.segmenter || o.models?.segmenter) && (o.segmenters?.length || o.models?.segmenters?.length)) {
      throw new GenaugError('E_ARGUMENT', 'give either one segmenter (segmenter) or a list (segmenters), not both');
    }
    if (several >= 2 && !o.clip && !o.models?.clip) {
      throw new GenaugError('E_ARGUMENT', `${several} segmenters need a CLIP model to pick, per image, the mask that scores best against the class text (--clip DIR; embed.clip in a run)`);
    }
  }
  await mkdir(out, { recursive: true });
  const files = await listImages(root);
  if (files.length === 0) throw new GenaugError('E_IO', `no images (${IMAGE_EXTENSIONS.join(' ')}) under ${root}`, { path: root });
  const manifest = o.manifest ? await readManifest(o.manifest) : undefined;
  const categoryOf = (f: string): string => {
    if (manifest) {
      const c = manifest.get(f) ?? manifest.get(basename(f));
      if (c === undefined) throw new GenaugError('E_FORMAT', `${o.manifest} has no category for ${f}`);
      return c;
    }
    const d = dirname(f);
    return d === '.' ? basename(root) : (d.split('/').pop() as string);
  };
  const journalPath = join(out, 'progress.jsonl');
  const done = await readJournal(journalPath);
  const todo = files.filter((f) => {
    const j = done.get(f);
    return !j || (o.retryFailed && j.status === 'failed');
  });
  const categories = new Map(files.map((f) => [f, categoryOf(f)]));
  let finished = files.length - todo.length;
  o.onProgress?.(finished, files.length);
  const opts = { ...o, images: root, out };
  const distributed = Boolean(o.distribute) && todo.length > 0;
  const pool = distributed ? undefined : await openPool(o);
  if (!distributed && (o.method === 'sam' || o.method === 'segmenter') && o.models && (pool || (!o.sam && !o.segmenter && !o.segmenters?.length))) {
    // The models load where they run (a worker, or this thread without a pool), before the first image: a model
    // that does not load is one error, not a failure of every image. With a pool, one probe per worker that will
    // have images goes at once, so the workers load side by side rather than each on its first image, one after
    // another (which worker answers which probe does not matter: one that has the models answers at once).
    const lanes = Math.max(1, Math.min(o.workers ?? availableParallelism(), todo.length));
    const answer = pool
      ? ((await Promise.all(Array.from({ length: lanes }, () => pool.run({ ...poolTask('', '', opts), probe: true })))) as ProbeAnswer[]).reduce((a, b) => (a.fatal ? a : b))
      : await probeModels(o);
    if (answer.fatal) {
      await pool?.destroy();
      throw new GenaugError(answer.fatal.code, answer.fatal.message, answer.fatal.detail);
    }
  }
  const process1 = (f: string): Promise<JournalLine> =>
    pool ? (pool.run(poolTask(f, categories.get(f) as string, opts)) as Promise<JournalLine>) : annotateOne(f, categories.get(f) as string, opts);
  const lanes = Math.max(1, o.concurrency ?? availableParallelism());
  // Lanes stop taking images at the first error (an interrupted run); the
  // images already started finish and are journaled, then the error is thrown.
  let failure: { error: unknown } | undefined;
  let next = 0;
  const run = async () => {
    for (let i = next++; !failure && i < todo.length; i = next++) {
      if (o.signal?.aborted) {
        failure ??= { error: new GenaugError('E_ABORTED', `annotate was stopped after ${finished} of ${files.length} images (each finished one is in ${journalPath}); run it again to resume`) };
        break;
      }
      try {
        const f = todo[i] as string;
        const line = await process1(f);
        if (line.outputError) throw new GenaugError('E_IO', line.outputError.message, { path: line.outputError.path });
        await appendFile(journalPath, JSON.stringify(line) + '\n');
        done.set(f, line);
        finished++;
        o.onProgress?.(finished, files.length);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  if (o.distribute && todo.length > 0) {
    // Every image elsewhere; the lines come back in image order and are journaled as this process's own would be.
    const res = await o.distribute.run<AnnotateTask, JournalLine>('annotate', todo.map((f) => poolTask(f, categories.get(f) as string, opts)));
    const lines = res.map((r, i): JournalLine => (r.ok ? r.value : { file: todo[i] as string, category: categories.get(todo[i] as string) as string, status: 'failed', reason: r.reason }));
    await appendFile(journalPath, lines.map((l) => JSON.stringify(l) + '\n').join(''));
    for (const l of lines) done.set(l.file, l);
    finished += lines.length;
    o.onProgress?.(finished, files.length);
  } else {
    await Promise.all(Array.from({ length: Math.min(lanes, todo.length) }, run));
    await pool?.destroy();
  }
  if (failure) throw failure.error;
  const result = await writePool(out, files.map((f) => done.get(f) as JournalLine));
  // A batch where every image failed (none could even be read) is an error, not an empty pool; the reasons are written.
  if (result.failed === files.length) {
    const first = (done.get(files[0] as string) as JournalLine).reason;
    throw new GenaugError('E_IO', `every one of the ${files.length} images failed (first: ${first}); the reasons are in ${join(out, 'rejected.jsonl')}`, { path: join(out, 'rejected.jsonl') });
  }
  return result;
}

/** What a pool worker needs for one image: plain data only (the worker loads its own models). */
export interface AnnotateTask {
  file: string;
  category: string;
  options: Omit<AnnotateOptions, 'sam' | 'segmenter' | 'segmenters' | 'clip' | 'onProgress' | 'signal' | 'distribute'>;
  /** Only load the models (in this worker, where they will run) and report whether they load. */
  probe?: boolean;
}

/** A probe's answer: null when the models loaded, else the error to throw on the calling thread. */
export type ProbeAnswer = { probe: true; fatal: { code: ErrorCode; message: string; detail?: Record<string, unknown> } | null };

/**
 * Loads the models of `o.models` on this thread (cached for the images that
 * follow). A pool worker runs it first, so a model that does not load is one
 * typed error before any image, and no model is loaded on the main thread.
 */
export async function probeModels(o: Pick<AnnotateOptions, 'method' | 'models'>): Promise<ProbeAnswer> {
  try {
    const m = o.models;
    if (o.method === 'sam' && m?.samEncoder && m.samDecoder) await loadSam(m.samEncoder, m.samDecoder, m.provider);
    if (o.method === 'segmenter' && m?.segmenter) await loadSegmenter(m.segmenter, m.provider);
    if (o.method === 'segmenter' && m?.segmenters) for (const s of m.segmenters) await loadSegmenter(s, m.provider);
    if (o.method === 'segmenter' && (m?.segmenters?.length ?? 0) >= 2 && m?.clip) await loadClip(m.clip, m.provider);
    return { probe: true, fatal: null };
  } catch (e) {
    const g = e instanceof GenaugError ? e : new GenaugError('E_INTERNAL', String((e as Error)?.message ?? e));
    return { probe: true, fatal: { code: g.code, message: g.message, ...(g.detail ? { detail: g.detail } : {}) } };
  }
}

function poolTask(file: string, category: string, o: AnnotateOptions): AnnotateTask {
  const { sam: _sam, segmenter: _seg, segmenters: _segs, clip: _clip, onProgress: _p, signal: _s, distribute: _d, ...options } = o;
  return { file, category, options };
}

/**
 * The worker pool: decode, segment, post-process and encode run in worker
 * threads, one per core, each with its own models. It needs the compiled
 * worker (dist/workers/annotate.js); without it (running from sources) or with
 * workers: 0, images are processed on the main thread, where sharp and the
 * native kernels still run off the event loop.
 */
async function openPool(o: AnnotateOptions): Promise<Piscina | undefined> {
  const threads = o.workers ?? availableParallelism();
  if (threads <= 0) return undefined;
  if ((o.method === 'sam' || o.method === 'segmenter') && !o.models) return undefined; // in-process model objects
  if (o.method === 'segmenter' && (o.segmenters?.length || o.clip)) return undefined;
  const filename = join(packageRoot, 'dist', 'workers', 'annotate.js');
  if (!existsSync(filename)) return undefined;
  return new Piscina({ filename, minThreads: 1, maxThreads: threads, idleTimeout: 1000 });
}

/** index.json, annotations.json (COCO, compressed RLE) and rejected.jsonl from the journal, in file order. */
async function writePool(out: string, lines: JournalLine[]) {
  const kept = lines.filter((l) => l.status === 'kept');
  const names = [...new Set(kept.map((l) => l.category))].sort();
  const catId = new Map(names.map((n, i) => [n, i + 1]));
  const index: Record<string, Array<{ file: string; areaFraction: number; source: string; bbox: number[]; segmenters?: SegmenterPick }>> = {};
  for (const l of kept) {
    (index[l.category] ??= []).push({ file: l.instance as string, areaFraction: l.areaFraction as number, source: l.file, bbox: l.bbox as number[], ...(l.segmenters ? { segmenters: l.segmenters } : {}) });
  }
  const coco = {
    info: { description: 'genaug instance pool', date_created: new Date(0).toISOString() },
    licenses: [],
    images: kept.map((l, i) => ({ id: i + 1, file_name: l.file, width: l.width, height: l.height })),
    annotations: kept.map((l, i) => ({
      id: i + 1,
      image_id: i + 1,
      category_id: catId.get(l.category),
      segmentation: { size: [l.height, l.width], counts: l.counts },
      area: l.area,
      bbox: l.bbox,
      iscrowd: 0,
    })),
    categories: names.map((n) => ({ id: catId.get(n), name: n, supercategory: 'object' })),
  };
  const enc = (s: string) => new TextEncoder().encode(s);
  await writeFileAtomic(join(out, 'index.json'), enc(JSON.stringify({ categories: index }, null, 1) + '\n'));
  await writeFileAtomic(join(out, 'annotations.json'), enc(JSON.stringify(coco) + '\n'));
  const rejected = lines
    .filter((l) => l.status !== 'kept')
    .map((l) => JSON.stringify({ file: l.file, category: l.category, status: l.status, reason: l.reason, ...(l.segmenters ? { segmenters: l.segmenters } : {}) }));
  await writeFileAtomic(join(out, 'rejected.jsonl'), enc(rejected.join('\n') + (rejected.length ? '\n' : '')));
  // Several segmenters: how many images each one's mask was picked for (kept or then rejected by the area checks).
  const picks: Record<string, number> = {};
  for (const l of lines) {
    if (!l.segmenters) continue;
    for (const c of l.segmenters.candidates) picks[c.model] ??= 0;
    const won = l.segmenters.candidates[l.segmenters.picked];
    if (won) picks[won.model] = (picks[won.model] ?? 0) + 1;
  }
  return {
    images: lines.length,
    kept: kept.length,
    rejected: lines.filter((l) => l.status === 'rejected').length,
    failed: lines.filter((l) => l.status === 'failed').length,
    categories: names.length,
    ...(Object.keys(picks).length ? { picks } : {}),
  };
}
