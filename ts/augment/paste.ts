/**
 * Copy-paste augmentation (X-Paste / DiverGen, ALGORITHMS.md §2.5) over a
 * real COCO dataset and an instance pool: the shared preparation (dataset,
 * pool, size priors), the per-item plan (seeded sampling), the per-item
 * render (decode, real masks, composite, encode) that runs in a worker, and
 * the offline `paste` run that writes a COCO, WebDataset or YOLO dataset,
 * resumably.
 *
 * An item is one (real image, copy index). Its draws come from
 * itemSeed(seed, image id, copy), so the output does not depend on the worker
 * count or the processing order. Each finished item is one line of
 * OUT/progress.jsonl (written after its image file); a rerun skips those, and
 * the annotation files and OUT/log.jsonl are rebuilt from the journal in item
 * order (image order in the COCO file, then copy), so an interrupted and
 * resumed run gives the same bytes as an uninterrupted one.
 *
 * Render once, write many: a list of formats is written from one render per
 * item (one composite, one encode), into OUT/<format>/ folders that are each
 * the dataset a run of that format alone would write there.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';

import { Piscina } from 'piscina';
import sharp from 'sharp';

import { removeStaleTemporaries, writeFileAtomic } from '../io/atomic.js';
import { readImage } from '../io/images.js';
import { checkWithin } from '../io/roots.js';
import { PackedPolygons, readCoco, type CocoAnnotation, type CocoCategory, type CocoIndex, type CocoSegmentation } from '../io/coco.js';
import { indexShards, readShardMember, ShardWriter } from '../io/webdataset.js';
import { compositeSync, CompositeOutputPool, type BlendMode, type CompositeOptions, type CompositeResult, type PasteInstance } from '../kernels/composite.js';
import { decodeRleSync, encodeRleSync, segmentationToRle } from '../kernels/mask.js';
import { resolveDevice, type Device } from '../native/device.js';
import { GenaugError, ioError } from '../native/errors.js';
import type { Distributor } from '../util/distribute.js';
import { readJournalMap } from '../util/jsonl.js';
import { mixSeed, seededRandom } from '../util/random.js';
import { packageRoot } from '../native/load.js';
import { categoryPriors } from '../plan/priors.js';
import { maskToPolygon } from './contour.js';
import { CropCache, readInstancePool, type InstancePool, type PoolSkip } from './pool.js';
import { itemRandom, resolveSampleOptions, sampleInstances, type Placement, type SampleOptions, type SamplingCategory, type SizePriorEntry } from './sample.js';

// --- preparation ---------------------------------------------------------------

export interface PasteSourceOptions extends SampleOptions {
  /** Real dataset: a COCO/LVIS file or an already read index. */
  coco: string | CocoIndex;
  /** Folder of the real images (file_name is relative to it). */
  images: string;
  /** Instance pool: a folder with index.json, an index file, or a pool already read. */
  pool: string | InstancePool;
  /** Seed of every draw (default 0). */
  seed?: number;
  /** Size priors {"<category id>": [μ, σ]} or such a file (default: computed from `coco`, as area_mean_std2.json). */
  priors?: string | Record<string, [number, number]>;
  /** Append pool categories the real dataset lacks (new ids), instead of skipping them. */
  addCategories?: boolean;
  /** The folder the pool's crops must lie in (default: the pool index's folder; see ReadPoolOptions.root). */
  poolRoot?: string;
  /**
   * Go on with a pool that has no usable instance (the output is then the real images alone, as a run with
   * pool.allow_empty asks) instead of failing with E_FORMAT.
   */
  allowEmptyPool?: boolean;
  /** Real images with more pixels than this (from the header, before decoding) are failed items (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Blending (default 'basic', the reference). */
  blend?: BlendMode;
  /** Gaussian feather sigma in pixels (default 2). */
  sigma?: number;
  /** A pasted instance's mask is (resized alpha >= this), 1..255 (default 1: §2.5's alpha > 0; 128: half-opaque). */
  maskThreshold?: number;
  /** Occlusion keep rule: kept when every box coordinate moved ≤ keepMaxShift (10) or the visible area > keepMinArea (300). */
  keepMaxShift?: number;
  keepMinArea?: number;
  /**
   * Where the compositing runs: 'cpu' (default), 'cuda' (E_CUDA_UNAVAILABLE naming why without a usable GPU)
   * or 'auto' (CUDA when usable, silently the CPU otherwise). The same bytes either way (not part of run.json).
   */
  device?: Device;
  /** Decoded crops cached per worker, in bytes (default 256 MiB). */
  cacheBytes?: number;
  /**
   * The in-process crop cache: the pool's alpha check decodes each crop into
   * it, so rendering on this thread does not decode the crop a second time.
   */
  cropCache?: CropCache;
}

export interface PasteContext {
  coco: CocoIndex;
  pool: InstancePool;
  imagesRoot: string;
  maxPixels?: number;
  seed: number;
  /** The output categories: the real ones, then the added ones. */
  categories: CocoCategory[];
  sampling: SamplingCategory[];
  priors: Map<number, SizePriorEntry>;
  sample: Required<SampleOptions>;
  compose: CompositeOptions;
  /** 'cuda' when the compositing runs on the GPU (resolved once, here; absent: the CPU). */
  device?: 'cuda';
  cacheBytes: number;
}

async function loadPriors(p: PasteSourceOptions['priors'], coco: CocoIndex): Promise<Map<number, SizePriorEntry>> {
  const map = new Map<number, SizePriorEntry>();
  if (p === undefined) {
    for (const c of categoryPriors(coco)) if (c.size) map.set(c.id, { mean: c.size.mean, std: c.size.std });
    return map;
  }
  let table: unknown = p;
  if (typeof p === 'string') {
    try {
      table = JSON.parse(await readFile(p, 'utf8'));
    } catch (e) {
      throw new GenaugError('E_FORMAT', `size priors ${p}: could not read them as JSON (${(e as Error).message})`, { path: p });
    }
  }
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw new GenaugError('E_FORMAT', 'size priors must be an object {"<category id>": [mean, std]} or a genaug priors.json');
  }
  // `genaug priors` output: {version, categories: [{id, size: {mean, std} | null}], ...}.
  const cats = (table as { categories?: unknown }).categories;
  if (Array.isArray(cats)) {
    for (const [i, c] of cats.entries()) {
      const { id, size } = (c ?? {}) as { id?: unknown; size?: { mean?: unknown; std?: unknown } | null };
      if (!Number.isSafeInteger(id)) throw new GenaugError('E_FORMAT', `size priors: categories[${i}] has no integer "id"`);
      if (size === null || size === undefined) continue;
      const { mean, std } = size;
      if (typeof mean !== 'number' || typeof std !== 'number' || !Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
        throw new GenaugError('E_FORMAT', `size priors: categories[${i}].size must be {mean, std ≥ 0}`);
      }
      map.set(id as number, { mean, std });
    }
    return map;
  }
  for (const [k, v] of Object.entries(table)) {
    if (!/^\d+$/.test(k) || !Array.isArray(v) || v.length < 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (v[1] as number) < 0) {
      throw new GenaugError('E_FORMAT', `size priors: entry "${k}" must be "<category id>": [mean, std ≥ 0]`);
    }
    map.set(Number(k), { mean: v[0] as number, std: v[1] as number });
  }
  return map;
}

/** Reads the real dataset, the pool and the priors, and checks the options. */
export async function preparePaste(o: PasteSourceOptions): Promise<PasteContext> {
  const device = resolveDevice(o.device, 'device');  // before any work: 'cuda' without a GPU fails here
  const coco = typeof o.coco === 'string' ? await readCoco(o.coco, { polygons: 'packed' }) : o.coco;
  const categoriesIn = [...coco.categoryById.values()].sort((a, b) => a.id - b.id);
  const pool = typeof o.pool === 'string' ? await readInstancePool(o.pool, categoriesIn, { addCategories: o.addCategories ?? false, ...(o.poolRoot !== undefined ? { root: o.poolRoot } : {}), ...(o.cropCache ? { cache: o.cropCache } : {}) }) : o.pool;
  if (typeof o.pool === 'string' && pool.categories.length === 0 && !o.allowEmptyPool) {
    // Not one instance to paste: the output would be the real images again, which no one asks for.
    const first = pool.skipped.find((k) => k.kind !== 'empty-category') ?? pool.skipped[0];
    throw new GenaugError('E_FORMAT', `instance pool ${o.pool} has no usable instance${first ? ` (first problem: ${first.message})` : ''}`, { path: o.pool });
  }
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new GenaugError('E_ARGUMENT', `seed must be a non-negative integer, got ${seed}`);
  const blend = o.blend ?? 'basic';
  if (!['basic', 'alpha', 'gaussian'].includes(blend)) throw new GenaugError('E_ARGUMENT', `blend must be basic, alpha or gaussian, got '${blend}'`);
  const maskThreshold = o.maskThreshold ?? 1;
  if (!Number.isInteger(maskThreshold) || maskThreshold < 1 || maskThreshold > 255) {
    throw new GenaugError('E_RANGE', `maskThreshold must be an integer in [1, 255], got ${String(maskThreshold)}`);
  }
  return {
    coco,
    pool,
    imagesRoot: resolve(o.images),
    ...(o.maxPixels !== undefined ? { maxPixels: o.maxPixels } : {}),
    seed,
    categories: [...categoriesIn, ...pool.addedCategories],
    sampling: pool.categories.map((c) => ({ categoryId: c.categoryId, instances: c.instances })),
    priors: await loadPriors(o.priors, coco),
    sample: resolveSampleOptions(o),
    compose: { blend, sigma: o.sigma ?? 2, maskThreshold, keepMaxShift: o.keepMaxShift ?? 10, keepMinArea: o.keepMinArea ?? 300 },
    ...(device === 'cuda' ? { device: 'cuda' as const } : {}),
    cacheBytes: o.cacheBytes ?? 256 * 2 ** 20,
  };
}

// --- per item: plan (main thread) and render (worker) --------------------------

/** A sampled placement as the worker needs it: the crop's file instead of pool indices. */
export type RenderPlacement = { file: string } & Pick<Placement, 'categoryId' | 'targetWidth' | 'targetHeight' | 'flip' | 'cx' | 'cy'>;

/** Everything a worker needs for one item: plain, cloneable data. */
export interface RenderTask {
  imagePath: string;
  /** The images folder: imagePath must lie inside it (io/roots.ts). */
  imageRoot: string;
  /** The pixel limit of the real image (readImage's default when absent). */
  maxPixels?: number;
  width: number;
  height: number;
  /** The real annotations' geometry, in file order. */
  annotations: Array<{ bbox: number[]; segmentation?: CocoSegmentation }>;
  placements: RenderPlacement[];
  compose: CompositeOptions;
  device?: 'cuda';
  cacheBytes: number;
  /**
   * Encode the image once and write those bytes to each path (offline run: one per format folder; with `keep`,
   * also return them: the stream), or return the raw RGB (loader).
   */
  output: { paths: string[]; format: 'jpeg' | 'png'; quality: number; keep?: boolean } | { raw: true };
  /** Per instance: 'rle' (compressed counts string), 'bitmap' (the mask), or both. */
  masks: { rle: boolean; bitmap: boolean; polygon: boolean };
}

export interface RenderedInstance {
  source: 'real' | 'pasted';
  /** Index into the task's annotations (real) or placements (pasted). */
  index: number;
  bbox: [number, number, number, number];
  area: number;
  counts?: string;
  mask?: Uint8Array;
  /** Largest component's outer polygon, pixel-corner vertices (YOLO). */
  polygon?: number[];
  /** A real annotation without a segmentation (none, null or []): its mask is its box, occluded. */
  boxOnly?: boolean;
}

export interface RenderResult {
  ok: boolean;
  /** Why the item failed ("[CODE] message"). */
  reason?: string;
  width: number;
  height: number;
  boxOnly: boolean;
  instances: RenderedInstance[];
  dropped: Array<{ source: 'real' | 'pasted'; index: number; reason: string }>;
  /** Placements left out before compositing (crop unreadable, empty alpha). */
  skipped: Array<{ index: number; file: string; reason: string }>;
  /** Real annotations whose segmentation could not be rasterised (a box mask was used). */
  fallbacks: Array<{ index: number; reason: string }>;
  /** Raw RGB (output.raw). */
  image?: Uint8Array;
  /** The encoded image (output.keep). */
  encoded?: Uint8Array;
  /**
   * The rendered image could not be written (a full or read-only disk): the
   * run's failure, not the item's. Never journaled: paste stops with E_IO and
   * a rerun renders the item again. Plain data, so it crosses from a worker.
   */
  outputError?: { message: string; path: string };
}

export interface ItemPlan {
  imageIndex: number;
  imageId: number;
  copy: number;
  attempts: number;
  rejected: { tooSmall: number; tooLarge: number };
  task: RenderTask;
}

/** Samples one item's placements (deterministic in seed, image id, copy). */
export function planItem(ctx: PasteContext, imageIndex: number, copy: number, output: RenderTask['output'], masks: RenderTask['masks']): ItemPlan {
  const im = ctx.coco.dataset.images[imageIndex]!;
  const random = itemRandom(ctx.seed, im.id, copy);
  const s = sampleInstances(random, im, ctx.sampling, ctx.priors, ctx.sample);
  const anns = ctx.coco.annotationsByImage.get(im.id) ?? [];
  return {
    imageIndex,
    imageId: im.id,
    copy,
    attempts: s.attempts,
    rejected: s.rejected,
    task: {
      imagePath: resolve(ctx.imagesRoot, im.file_name), // an absolute file_name stays absolute (and is refused unless inside the folder)
      imageRoot: ctx.imagesRoot,
      ...(ctx.maxPixels !== undefined ? { maxPixels: ctx.maxPixels } : {}),
      width: im.width,
      height: im.height,
      // Packed polygons go to a worker as arrays (a structured clone keeps no class, and would copy the shared chunk).
      annotations: anns.map((a) => ({ bbox: a.bbox, ...(hasSegmentation(a.segmentation) ? { segmentation: a.segmentation instanceof PackedPolygons ? a.segmentation.toArrays() : a.segmentation } : {}) })),
      placements: s.placements.map((p) => ({
        file: ctx.pool.categories[p.category]!.instances[p.instance]!.file,
        categoryId: p.categoryId,
        targetWidth: p.targetWidth,
        targetHeight: p.targetHeight,
        flip: p.flip,
        cx: p.cx,
        cy: p.cy,
      })),
      compose: ctx.compose,
      ...(ctx.device ? { device: ctx.device } : {}),
      cacheBytes: ctx.cacheBytes,
      output,
      masks,
    },
  };
}

/**
 * Whether an annotation's segmentation describes a shape: undefined, null and
 * an empty polygon list (`segmentation: []`, common in box-only exports) do not,
 * and such an annotation is handled as box-only.
 */
export function hasSegmentation(seg: CocoSegmentation | null | undefined): seg is CocoSegmentation {
  return seg !== undefined && seg !== null && !(Array.isArray(seg) && seg.length === 0);
}

function describe(e: unknown): string {
  return e instanceof GenaugError ? `[${e.code}] ${e.message}` : `[E_INTERNAL] ${String((e as Error)?.message ?? e)}`;
}

/** Box [x, y, w, h] as a mask, with the compositor's rounding (floor(v + 0.5)), clipped. */
export function boxMask(b: readonly number[], width: number, height: number): Uint8Array {
  const m = new Uint8Array(width * height);
  const r = (v: number) => Math.floor(v + 0.5);
  const xa = Math.max(0, r(b[0]!)), xb = Math.min(width, r(b[0]! + b[2]!));
  const ya = Math.max(0, r(b[1]!)), yb = Math.min(height, r(b[1]! + b[3]!));
  if (xb > xa) for (let y = ya; y < yb; y++) m.fill(1, y * width + xa, y * width + xb);
  return m;
}

/** Renders one item: decode, masks of the real annotations, composite, encode. Never throws: a failure is `ok: false`. */
export async function renderItem(task: RenderTask, cache: CropCache): Promise<RenderResult> {
  const empty: RenderResult = { ok: false, width: task.width, height: task.height, boxOnly: false, instances: [], dropped: [], skipped: [], fallbacks: [] };
  try {
    const img = await readImage(await checkWithin(task.imageRoot, task.imagePath, 'image'), task.maxPixels !== undefined ? { maxPixels: task.maxPixels } : {});
    if (img.width !== task.width || img.height !== task.height) {
      return { ...empty, reason: `[E_SHAPE] ${task.imagePath} is ${img.width} x ${img.height} but the COCO file says ${task.width} x ${task.height}` };
    }
    const W = img.width;
    const H = img.height;
    const boxOnly = task.annotations.length > 0 && task.annotations.every((a) => !hasSegmentation(a.segmentation));
    const fallbacks: RenderResult['fallbacks'] = [];
    let masks: Uint8Array[] | undefined;
    if (!boxOnly) {
      masks = task.annotations.map((a, i) => {
        if (!hasSegmentation(a.segmentation)) return boxMask(a.bbox, W, H);
        try {
          return decodeRleSync(segmentationToRle(a.segmentation, H, W)).data;
        } catch (e) {
          fallbacks.push({ index: i, reason: describe(e) });
          return boxMask(a.bbox, W, H);
        }
      });
    }
    const skipped: RenderResult['skipped'] = [];
    const pastes: PasteInstance[] = [];
    const pasteIndex: number[] = [];
    for (let i = 0; i < task.placements.length; i++) {
      const p = task.placements[i]!;
      try {
        const crop = await cache.get(p.file);
        pastes.push({ rgba: crop.data, width: crop.width, height: crop.height, targetWidth: p.targetWidth, targetHeight: p.targetHeight, flip: p.flip, cx: p.cx, cy: p.cy });
        pasteIndex.push(i);
      } catch (e) {
        skipped.push({ index: i, file: p.file, reason: describe(e) });
      }
    }
    const boxes = task.annotations.map((a) => a.bbox as [number, number, number, number]);
    // One scene per call: the pool's workers (or the main thread) are the parallelism.
    // Results that leave this thread (raw images, bitmap masks: the loader transfers them) go into transferable memory;
    // the others are done with when this item is written: their memory goes back to this thread's output pool.
    const transferable = 'raw' in task.output || task.masks.bitmap === true;
    const pool = transferable ? undefined : (renderPool ??= new CompositeOutputPool({ maxBytes: 256 * 2 ** 20 }));
    const out = compositeSync({ image: img, ...(boxOnly ? { boxes } : { masks: masks as Uint8Array[] }), instances: pastes }, { ...task.compose, threads: 1, ...(task.device ? { device: task.device } : {}), ...(pool ? { pool } : { transferable }) });
    try {
      return await finishItem(task, out, { W, H, boxOnly, pasteIndex, skipped, fallbacks, empty });
    } finally {
      pool?.release(out);
    }
  } catch (e) {
    return { ...empty, reason: describe(e) };
  }
}

/** The output pool of this thread's renders that stay on it (file outputs). */
let renderPool: CompositeOutputPool | undefined;

/** Annotations, encode and write of one composited item (its output memory is released by the caller). */
async function finishItem(
  task: RenderTask,
  out: CompositeResult,
  c: { W: number; H: number; boxOnly: boolean; pasteIndex: number[]; skipped: RenderResult['skipped']; fallbacks: RenderResult['fallbacks']; empty: RenderResult },
): Promise<RenderResult> {
  const { W, H, boxOnly, pasteIndex, skipped, fallbacks, empty } = c;
  {
    const instances: RenderedInstance[] = out.instances.map((inst) => {
      const r: RenderedInstance = {
        source: inst.source,
        index: inst.source === 'pasted' ? (pasteIndex[inst.index] as number) : inst.index,
        bbox: inst.bbox,
        area: inst.area,
      };
      // A real annotation without a segmentation was composited as its box: its output mask is no real shape.
      if (inst.source === 'real' && !hasSegmentation(task.annotations[inst.index]?.segmentation)) r.boxOnly = true;
      const m = { data: inst.mask, width: W, height: H };
      if (task.masks.rle) r.counts = encodeRleSync(m).counts as string;
      if (task.masks.bitmap) r.mask = inst.mask;
      if (task.masks.polygon) r.polygon = maskToPolygon(inst.mask, W, H);
      return r;
    });
    const dropped = out.dropped.map((d) => ({ ...d, index: d.source === 'pasted' ? (pasteIndex[d.index] as number) : d.index }));
    const result: RenderResult = { ok: true, width: W, height: H, boxOnly, instances, dropped, skipped, fallbacks };
    if ('raw' in task.output) result.image = out.image;
    else {
      const enc = sharp(out.image, { raw: { width: W, height: H, channels: 3 } });
      const bytes = task.output.format === 'png' ? await enc.png().toBuffer() : await enc.jpeg({ quality: task.output.quality }).toBuffer();
      if (task.output.keep) result.encoded = new Uint8Array(bytes);  // its own buffer: transferable from a worker
      for (const path of task.output.paths) {
        try {
          await writeFileAtomic(path, bytes);
        } catch (e) {
          const err = ioError(path, path, 'write it', e);
          return { ...empty, reason: describe(err), outputError: { message: err.message, path } };
        }
      }
    }
    return result;
  }
}

// --- worker pool -----------------------------------------------------------------

/** A piscina pool on dist/workers/paste.js, or undefined (workers 0, or running from sources). */
export function openPastePool(workers: number | undefined): Piscina | undefined {
  const threads = workers ?? availableParallelism();
  if (threads <= 0) return undefined;
  const filename = join(packageRoot, 'dist', 'workers', 'paste.js');
  if (!existsSync(filename)) return undefined;
  // Two tasks per worker: one decodes (sharp, off the thread) while the other composites.
  return new Piscina({ filename, minThreads: threads, maxThreads: threads, idleTimeout: 1000, concurrentTasksPerWorker: 2 });
}

// --- offline run -----------------------------------------------------------------

export type PasteFormat = 'coco' | 'webdataset' | 'yolo';

/** The export formats, in the order a list of them is written (and recorded in run.json). */
export const PASTE_FORMATS: readonly PasteFormat[] = ['coco', 'webdataset', 'yolo'];

/**
 * Checks `format`: one name writes into OUT, a list (even of one) writes each
 * format into OUT/<format>/. The list comes back in PASTE_FORMATS order.
 */
export function resolvePasteFormats(format: PasteFormat | readonly PasteFormat[] | undefined): { formats: PasteFormat[]; subfolders: boolean } {
  const known = (f: unknown): f is PasteFormat => typeof f === 'string' && (PASTE_FORMATS as readonly string[]).includes(f);
  if (format === undefined) return { formats: ['coco'], subfolders: false };
  if (!Array.isArray(format)) {
    if (!known(format)) throw new GenaugError('E_ARGUMENT', `format must be coco, webdataset or yolo, got '${String(format)}'`);
    return { formats: [format], subfolders: false };
  }
  if (format.length === 0) throw new GenaugError('E_ARGUMENT', 'format list is empty: name one or more of coco, webdataset, yolo');
  for (const f of format) {
    if (!known(f)) throw new GenaugError('E_ARGUMENT', `format list [${format.join(', ')}]: '${String(f)}' is not coco, webdataset or yolo`);
    if (format.indexOf(f) !== format.lastIndexOf(f)) throw new GenaugError('E_ARGUMENT', `format list [${format.join(', ')}]: '${f}' is named twice`);
  }
  return { formats: PASTE_FORMATS.filter((f) => format.includes(f)), subfolders: true };
}

export interface PasteOptions extends PasteSourceOptions {
  /** Output folder. */
  out: string;
  /** Augmented copies per real image (default 1). */
  copies?: number;
  /**
   * Annotation format (default 'coco'), or a list of formats written from one
   * render (each image composited and encoded once): a list writes each format
   * into OUT/<format>/, a complete dataset with the same bytes as a run of that
   * format alone with `out: OUT/<format>`.
   */
  format?: PasteFormat | readonly PasteFormat[];
  /** Image encoding (default 'jpeg'). */
  imageFormat?: 'jpeg' | 'png';
  /** JPEG quality 1..100 (default 95). */
  jpegQuality?: number;
  /** WebDataset samples per shard (default 1000). */
  shardSize?: number;
  /**
   * YOLO: the validation images data.yaml names, as Ultralytics reads `val:` (a folder or a list file of the
   * user's real validation set). Without it, a held-out split of the output (see `valFraction`).
   */
  yoloVal?: string;
  /**
   * YOLO: the fraction of source images (all copies of each) held out as val.txt when `yoloVal` is not given
   * (default 0.1; 0: no split, val is the training list and data.yaml says so).
   */
  valFraction?: number;
  /** Worker threads (default: the number of cores; 0 = the main thread). */
  workers?: number;
  /** Redo items that failed in an earlier run. */
  retryFailed?: boolean;
  /** Stops taking new items; the run then rejects with E_ABORTED (rerun to resume). */
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Hands the items to other processes (genaug worker): each is rendered and written there by renderItem, journaled here. */
  distribute?: Distributor;
}

export interface PasteJournalLine {
  image_index: number;
  image_id: number;
  copy: number;
  key: string;
  status: 'ok' | 'failed';
  reason?: string;
  attempts: number;
  rejected: { tooSmall: number; tooLarge: number };
  width?: number;
  height?: number;
  box_only?: boolean;
  instances?: Array<{ source: 'real' | 'pasted'; index: number; category_id: number; iscrowd: 0 | 1; bbox: number[]; area: number; counts?: string; polygon?: number[]; annotation_id?: number; box_only?: true }>;
  dropped?: RenderResult['dropped'];
  skipped?: RenderResult['skipped'];
  fallbacks?: RenderResult['fallbacks'];
}

/** What a run wrote; the counts are shared by every format (one render feeds them all). */
export interface PasteSummary {
  items: number;
  ok: number;
  failed: number;
  realInstances: number;
  pastedInstances: number;
  dropped: number;
  /** Items rendered (composited and encoded) by this call; the others were finished by an earlier run. */
  rendered: number;
  /** Files written, every format's: annotations.json / shards / labels + data.yaml, and log.jsonl. */
  outputs: string[];
  /** Per format: its folder (OUT, or OUT/<format> for a list) and the files written there. */
  formats: Partial<Record<PasteFormat, { out: string; outputs: string[] }>>;
}

/** A file-name-safe key per image: its file_name stem ([A-Za-z0-9_-], ≤ 80 chars), with the id appended when two collide. */
export function imageKeys(images: readonly { id: number; file_name: string }[]): string[] {
  const stems = images.map((im) => {
    const s = im.file_name.replace(/\.[^./\\]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(-80);
    return s || 'image';
  });
  const count = new Map<string, number>();
  for (const s of stems) count.set(s, (count.get(s) ?? 0) + 1);
  const keys = stems.map((s, i) => ((count.get(s) as number) > 1 ? `${s.slice(-60)}_id${images[i]!.id}` : s));
  // A suffixed key can meet another image's own stem (a.jpg#5, a.png#6, a_id5.jpg#7 → a_id5 twice): in image order,
  // every later repeat gets _dupN (the smallest N not taken), so the keys are unique and depend only on the list.
  const taken = new Set<string>();
  const all = new Set(keys);
  return keys.map((k) => {
    let key = k;
    for (let n = 2; taken.has(key); n++) {
      key = `${k}_dup${n}`;
      if (all.has(key)) key = k; // taken by another image's key: try the next N
    }
    taken.add(key);
    return key;
  });
}

async function readJournal(path: string): Promise<Map<string, PasteJournalLine>> {
  return readJournalMap<PasteJournalLine>(path, 'the paste journal', (j) =>
    typeof j.image_index === 'number' && typeof j.copy === 'number' ? `${j.image_index}:${j.copy}` : undefined,
  );
}

const enc = (s: string) => new TextEncoder().encode(s);

/**
 * The settings that decide the output bytes; a resumed run must use the same
 * ones. A format folder records its one format (the same run.json as a run of
 * that format alone); the folder above a list's folders records the list.
 */
function runSettings(o: PasteOptions, ctx: PasteContext, format: PasteFormat | PasteFormat[], copies: number) {
  return {
    seed: ctx.seed,
    copies,
    ...(Array.isArray(format) ? { formats: format } : { format }),
    imageFormat: o.imageFormat ?? 'jpeg',
    jpegQuality: o.jpegQuality ?? 95,
    shardSize: o.shardSize ?? 1000,
    sample: ctx.sample,
    compose: ctx.compose,
    images: ctx.coco.dataset.images.length,
    categories: ctx.categories.map((c) => [c.id, c.name]),
    pool: ctx.pool.categories.map((c) => [c.categoryId, c.instances.length]),
    priors: [...ctx.priors].sort((a, b) => a[0] - b[0]),
  };
}

/** One format's folder during a run: its journal and the items it holds. */
interface PasteTarget {
  format: PasteFormat;
  out: string;
  journalPath: string;
  done: Map<string, PasteJournalLine>;
}

/** Compares `settings` with DIR/run.json: true when it holds them, false when there is none; other settings are refused. */
async function sameSettings(dir: string, settings: string): Promise<boolean> {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) return false;
  const before = await readFile(path, 'utf8');
  if (before.trim() !== settings) {
    throw new GenaugError('E_ARGUMENT', `${dir} holds a run with other settings (seed, copies, format, sampling, pool or dataset differ; see run.json); use a new --out folder`, { path });
  }
  return true;
}

/** A journal line as the given format's folder keeps it: only YOLO's carries the traced polygons. */
function lineFor(format: PasteFormat, line: PasteJournalLine): PasteJournalLine {
  if (format === 'yolo' || !line.instances?.some((x) => x.polygon)) return line;
  return { ...line, instances: line.instances.map(({ polygon: _, ...x }) => x) };
}

/**
 * The offline render: OUT/images/ plus COCO / WebDataset / YOLO annotations and
 * OUT/log.jsonl. With a list of formats, each image is composited and encoded
 * once and written into every OUT/<format>/ folder, each keeping its own
 * run.json and progress.jsonl as a run of that format alone would; an item is
 * done when every folder's journal holds it (the same line), so a run killed
 * between two folders' journal lines renders that item again and resumes to the
 * same bytes.
 */
export async function paste(o: PasteOptions): Promise<PasteSummary> {
  const { formats, subfolders } = resolvePasteFormats(o.format);
  // Rendering on this thread: the pool's alpha check fills the crop cache the renders read.
  const shared = o.workers === 0 ? new CropCache(o.cacheBytes ?? 256 * 2 ** 20) : undefined;
  const ctx = await preparePaste(shared ? { ...o, cropCache: shared } : o);
  const root = resolve(o.out);
  const copies = o.copies ?? 1;
  if (!Number.isInteger(copies) || copies < 1) throw new GenaugError('E_ARGUMENT', `copies must be a positive integer, got ${copies}`);
  if (formats.includes('yolo')) yoloHeldOut([], o.valFraction ?? 0.1, 0); // checks the fraction before any work
  const imageFormat = o.imageFormat ?? 'jpeg';
  const quality = o.jpegQuality ?? 95;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new GenaugError('E_ARGUMENT', `jpegQuality must be an integer in [1, 100], got ${quality}`);

  // Every run.json is checked before anything is written: a folder of another run (another seed, another
  // format list, a single format's dataset where a list's folders would go) is refused, never mixed in.
  const targets: PasteTarget[] = formats.map((format) => ({ format, out: subfolders ? join(root, format) : root, journalPath: '', done: new Map() }));
  const pending: Array<[string, string]> = [];
  if (subfolders) {
    const settings = JSON.stringify(runSettings(o, ctx, formats, copies));
    if (!(await sameSettings(root, settings))) pending.push([root, settings]);
  }
  for (const t of targets) {
    const settings = JSON.stringify(runSettings(o, ctx, t.format, copies));
    if (!(await sameSettings(t.out, settings))) pending.push([t.out, settings]);
  }
  for (const t of targets) await mkdir(join(t.out, 'images'), { recursive: true });
  for (const [dir, settings] of pending) await writeFileAtomic(join(dir, 'run.json'), enc(settings + '\n'));
  // A run killed in the middle of a write left its temporary file beside the destination: not part of the dataset.
  for (const dir of new Set([root, ...targets.flatMap((t) => [t.out, join(t.out, 'images'), join(t.out, 'labels')])])) await removeStaleTemporaries(dir);

  const images = ctx.coco.dataset.images;
  const keys = imageKeys(images);
  const ext = imageFormat === 'png' ? 'png' : 'jpg';
  const itemKey = (i: number, c: number) => `${keys[i]}_${c}`;
  for (const t of targets) {
    t.journalPath = join(t.out, 'progress.jsonl');
    t.done = await readJournal(t.journalPath);
  }
  // Rendered again: an item a folder lacks (a run killed between two folders' lines), an item the folders
  // disagree on (they were rendered apart, from other inputs), and on request a failed one.
  const asLine = (l: PasteJournalLine | undefined) => (l ? JSON.stringify(lineFor('coco', l)) : '');
  const todo: Array<[number, number]> = [];
  for (let i = 0; i < images.length; i++) {
    for (let c = 0; c < copies; c++) {
      const lines = targets.map((t) => t.done.get(`${i}:${c}`));
      const whole = lines.every((l) => l !== undefined && asLine(l) === asLine(lines[0]));
      if (!whole || (o.retryFailed && lines.some((l) => l?.status === 'failed'))) todo.push([i, c]);
    }
  }
  const total = images.length * copies;
  let finished = total - todo.length;
  let rendered = 0;
  o.onProgress?.(finished, total);

  const masks = { rle: true, bitmap: false, polygon: formats.includes('yolo') };
  const planOf = (i: number, c: number): ItemPlan => planItem(ctx, i, c, { paths: targets.map((x) => join(x.out, 'images', `${itemKey(i, c)}.${ext}`)), format: imageFormat, quality }, masks);
  /** Each folder's journal gets the line it lacks (or holds otherwise); one it already holds is not written twice. */
  const record = async (i: number, c: number, line: PasteJournalLine): Promise<void> => {
    for (const x of targets) {
      const mine = lineFor(x.format, line);
      const text = JSON.stringify(mine);
      const had = x.done.get(`${i}:${c}`);
      if (had && JSON.stringify(had) === text) continue;
      await appendFile(x.journalPath, text + '\n');
      x.done.set(`${i}:${c}`, mine);
    }
  };
  if (o.distribute && todo.length > 0) {
    // Every item rendered and written elsewhere; the results come back in item order and are journaled here.
    const plans = todo.map(([i, c]) => planOf(i, c));
    const res = await o.distribute.run<RenderTask, RenderResult>('paste', plans.map((p) => p.task));
    for (let t = 0; t < todo.length; t++) {
      const [i, c] = todo[t]!;
      const plan = plans[t] as ItemPlan;
      const out = res[t]!;
      const r: RenderResult = out.ok ? out.value : { ok: false, reason: out.reason, width: plan.task.width, height: plan.task.height, boxOnly: false, instances: [], dropped: [], skipped: [], fallbacks: [] };
      rendered++;
      await record(i, c, journalLine(ctx, plan, itemKey(i, c), r));
      finished++;
    }
    o.onProgress?.(finished, total);
    todo.length = 0;
  }
  const pool = todo.length > 0 ? openPastePool(o.workers) : undefined;
  const cache = pool ? undefined : (shared ?? new CropCache(ctx.cacheBytes));
  const lanes = pool ? Math.max(1, 2 * (o.workers ?? availableParallelism())) : 1;
  let failure: { error: unknown } | undefined;
  let next = 0;
  const lane = async () => {
    for (let t = next++; !failure && t < todo.length; t = next++) {
      if (o.signal?.aborted) {
        failure ??= { error: new GenaugError('E_ABORTED', `paste was stopped after ${finished} of ${total} items; run it again to resume`) };
        break;
      }
      try {
        const [i, c] = todo[t]!;
        const plan = planOf(i, c);
        const r: RenderResult = pool ? await pool.run(plan.task) : await renderItem(plan.task, cache as CropCache);
        if (r.outputError) throw new GenaugError('E_IO', r.outputError.message, { path: r.outputError.path });
        rendered++;
        await record(i, c, journalLine(ctx, plan, itemKey(i, c), r));
        finished++;
        o.onProgress?.(finished, total);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(lanes, Math.max(1, todo.length)) }, lane));
  } finally {
    await pool?.destroy();
  }
  if (failure) throw failure.error;

  const perFormat: PasteSummary['formats'] = {};
  let lines: PasteJournalLine[] = [];
  for (const t of targets) {
    lines = [];
    for (let i = 0; i < images.length; i++) for (let c = 0; c < copies; c++) lines.push(t.done.get(`${i}:${c}`) as PasteJournalLine);
    perFormat[t.format] = { out: t.out, outputs: await writeOutputs(ctx, t.out, t.format, ext, copies, lines, o) };
  }
  const ok = lines.filter((l) => l.status === 'ok');
  // A dataset with no image is no training data: an error (the reasons are in each folder's log.jsonl), not exit 0.
  if (ok.length === 0) {
    const first = lines.find((l) => l.status === 'failed')?.reason;
    const logs = targets.map((t) => join(t.out, 'log.jsonl')).join(', ');
    throw new GenaugError(
      'E_EMPTY',
      lines.length === 0
        ? `the export would be empty: ${typeof o.coco === 'string' ? o.coco : 'the real dataset'} lists no image`
        : `the export would be empty: every one of the ${lines.length} items failed (first: ${first ?? 'failed'}); the reasons are in ${logs}`,
      { path: targets[0]?.out },
    );
  }
  return {
    items: lines.length,
    ok: ok.length,
    failed: lines.length - ok.length,
    realInstances: ok.reduce((n, l) => n + (l.instances ?? []).filter((x) => x.source === 'real').length, 0),
    pastedInstances: ok.reduce((n, l) => n + (l.instances ?? []).filter((x) => x.source === 'pasted').length, 0),
    dropped: ok.reduce((n, l) => n + (l.dropped ?? []).length, 0),
    rendered,
    outputs: targets.flatMap((t) => perFormat[t.format]?.outputs ?? []),
    formats: perFormat,
  };
}

/** The journal line of a rendered item (also what the stream builds its samples from). */
export function journalLine(ctx: PasteContext, plan: ItemPlan, key: string, r: RenderResult): PasteJournalLine {
  const base = { image_index: plan.imageIndex, image_id: plan.imageId, copy: plan.copy, key, attempts: plan.attempts, rejected: plan.rejected };
  if (!r.ok) return { ...base, status: 'failed', reason: r.reason ?? 'failed' };
  const anns = ctx.coco.annotationsByImage.get(plan.imageId) ?? [];
  return {
    ...base,
    status: 'ok',
    width: r.width,
    height: r.height,
    box_only: r.boxOnly,
    instances: r.instances.map((inst) => {
      const real = inst.source === 'real' ? (anns[inst.index] as CocoAnnotation) : undefined;
      return {
        source: inst.source,
        index: inst.index,
        category_id: real ? real.category_id : (plan.task.placements[inst.index] as RenderPlacement).categoryId,
        iscrowd: real ? real.iscrowd : 0,
        bbox: inst.bbox,
        area: inst.area,
        ...(inst.counts !== undefined ? { counts: inst.counts } : {}),
        ...(inst.polygon ? { polygon: inst.polygon } : {}),
        ...(real ? { annotation_id: real.id } : {}),
        ...(inst.boxOnly ? { box_only: true as const } : {}),
      };
    }),
    dropped: r.dropped,
    skipped: r.skipped,
    fallbacks: r.fallbacks,
  };
}

/** One output annotation (COCO field order), shared by the COCO and WebDataset writers. */
function cocoAnnotation(id: number, imageId: number, l: PasteJournalLine, inst: NonNullable<PasteJournalLine['instances']>[number]) {
  // A real annotation that had no segmentation keeps none (its occluded box mask is no shape); it is flagged box_only.
  const boxOnly = inst.source === 'real' && (l.box_only || inst.box_only === true);
  const withSeg = !boxOnly && inst.counts !== undefined;
  return {
    id,
    image_id: imageId,
    category_id: inst.category_id,
    ...(withSeg ? { segmentation: { size: [l.height as number, l.width as number], counts: inst.counts as string } } : {}),
    area: inst.area,
    bbox: inst.bbox,
    iscrowd: inst.iscrowd,
    instance_source: inst.source,
    ...(inst.annotation_id !== undefined ? { source_annotation_id: inst.annotation_id } : {}),
    ...(boxOnly ? { box_only: true } : {}),
  };
}

/** The json member of a WebDataset sample (the offline export and the stream write the same bytes). */
export function webdatasetJson(l: PasteJournalLine, imageId: number, ext: string, names: ReadonlyMap<number, string>) {
  let annId = 1;
  return {
    key: l.key,
    image_id: imageId,
    source_image_id: l.image_id,
    copy: l.copy,
    file_name: `${l.key}.${ext}`,
    width: l.width,
    height: l.height,
    box_only: l.box_only,
    annotations: (l.instances ?? []).map((inst) => ({ ...cocoAnnotation(annId++, imageId, l, inst), category_name: names.get(inst.category_id) })),
  };
}

async function writeOutputs(ctx: PasteContext, out: string, format: PasteFormat, ext: string, copies: number, lines: PasteJournalLine[], o: PasteOptions): Promise<string[]> {
  const outputs: string[] = [];
  const images = ctx.coco.dataset.images;
  const outImageId = (l: PasteJournalLine) => l.image_index * copies + l.copy + 1;
  const ok = lines.filter((l) => l.status === 'ok');
  const exportNotes: ExportNote[] = [];
  if (format === 'coco') {
    let annId = 1;
    const coco = {
      info: { description: 'genaug paste: copy-paste augmented', seed: ctx.seed, copies, source: basename(ctx.coco.source) },
      licenses: ctx.coco.dataset.licenses ?? [],
      images: ok.map((l) => ({
        id: outImageId(l),
        file_name: `${l.key}.${ext}`,
        width: l.width,
        height: l.height,
        source_image_id: l.image_id,
        copy: l.copy,
        box_only: l.box_only,
      })),
      annotations: ok.flatMap((l) => (l.instances ?? []).map((inst) => cocoAnnotation(annId++, outImageId(l), l, inst))),
      categories: ctx.categories,
    };
    const path = join(out, 'annotations.json');
    await writeFileAtomic(path, enc(JSON.stringify(coco) + '\n'));
    outputs.push(path);
  } else if (format === 'webdataset') {
    // OUT/images/ is only the staging area of the renders: the shards are the dataset. They are built in
    // shards.partial/ from the staged images, or, for an item rendered by an earlier run whose staged copy is
    // gone, from the previous shards; then they replace shards/ and the staged images are removed, so the
    // dataset is stored once. A kill at any point leaves either the old shards or the staged images to rebuild from.
    const dir = join(out, 'shards');
    const staging = join(out, 'shards.partial');
    await rm(staging, { recursive: true, force: true });
    const previous = await indexShards(dir);
    const names = new Map(ctx.categories.map((c) => [c.id, c.name]));
    const writer = new ShardWriter(staging, { samplesPerShard: o.shardSize ?? 1000 });
    let written: string[];
    try {
      for (const l of [...ok].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
        const json = webdatasetJson(l, outImageId(l), ext, names);
        const image = await stagedImage(join(out, 'images', `${l.key}.${ext}`), previous.get(`${l.key}.${ext}`));
        await writer.add(l.key, { [ext]: image, json: enc(JSON.stringify(json)) });
      }
      written = await writer.close();
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    await rm(join(out, 'images'), { recursive: true, force: true });
    outputs.push(...written.map((p) => join(dir, basename(p))));
    const catPath = join(out, 'categories.json');
    await writeFileAtomic(catPath, enc(JSON.stringify(ctx.categories) + '\n'));
    outputs.push(catPath);
  } else {
    const cats = [...ctx.categories].sort((a, b) => a.id - b.id);
    const cls = new Map(cats.map((c, i) => [c.id, i]));
    await mkdir(join(out, 'labels'), { recursive: true });
    for (const l of ok) {
      const rows: string[] = [];
      const counts = { crowd: 0, box: 0, noPolygon: 0 };
      for (const inst of l.instances ?? []) {
        // YOLO segmentation has no crowd flag: a crowd region is left out (counted in log.jsonl).
        if (inst.iscrowd === 1) {
          counts.crowd++;
          continue;
        }
        let poly = inst.polygon;
        // A real instance without a segmentation is written as the polygon of its output box (the tight box of
        // its visible box mask), so detection training still sees it (counted in log.jsonl).
        if (inst.source === 'real' && (l.box_only || inst.box_only)) {
          const [x, y, w, h] = inst.bbox as [number, number, number, number];
          poly = [x, y, x + w, y, x + w, y + h, x, y + h];
          counts.box++;
        }
        if (!poly || poly.length < 6) {
          counts.noPolygon++;
          continue;
        }
        const pts = poly.map((v, k) => (v / (k % 2 === 0 ? (l.width as number) : (l.height as number))).toFixed(6));
        rows.push(`${cls.get(inst.category_id)} ${pts.join(' ')}`);
      }
      if (counts.crowd) exportNotes.push({ line: l, kind: 'yolo-crowd-skipped', count: counts.crowd, message: 'YOLO segmentation labels have no crowd flag; crowd regions are left out' });
      if (counts.box) exportNotes.push({ line: l, kind: 'yolo-box-as-polygon', count: counts.box, message: 'instances without a segmentation are written as the 4-corner polygon of their output box' });
      if (counts.noPolygon) exportNotes.push({ line: l, kind: 'yolo-no-polygon', count: counts.noPolygon, message: 'instances without a traced polygon are left out' });
      await writeFileAtomic(join(out, 'labels', `${l.key}.txt`), enc(rows.map((r) => r + '\n').join('')));
    }
    // The split: every copy of a source image on one side, so no validation image is a copy of a training one.
    const held = o.yoloVal !== undefined ? new Set<number>() : yoloHeldOut(ok, o.valFraction ?? 0.1, ctx.seed);
    const list = (ls: PasteJournalLine[]) => enc(ls.map((l) => `./images/${l.key}.${ext}\n`).join(''));
    const train = ok.filter((l) => !held.has(l.image_index));
    const val = ok.filter((l) => held.has(l.image_index));
    await writeFileAtomic(join(out, 'train.txt'), list(train));
    outputs.push(join(out, 'train.txt'));
    let valLine: string;
    if (o.yoloVal !== undefined || !val.length) await rm(join(out, 'val.txt'), { force: true }); // a list an earlier run left
    if (o.yoloVal !== undefined) valLine = `# val: the validation set given (--yolo-val); every output image is for training\nval: ${JSON.stringify(o.yoloVal)}\n`;
    else if (val.length) {
      await writeFileAtomic(join(out, 'val.txt'), list(val));
      outputs.push(join(out, 'val.txt'));
      valLine = `# val: ${val.length} images of ${held.size} held-out source images (--val-fraction ${o.valFraction ?? 0.1}, by seed; all copies of a source image on one side)\nval: val.txt\n`;
    } else valLine = `# val: no validation split (--val-fraction 0, or too few images): val is the training list; give your real validation set with --yolo-val\nval: train.txt\n`;
    const yaml =
      `# genaug paste: YOLO segmentation labels; class = index of the category in ascending COCO id order\n` +
      `path: ${JSON.stringify(out)}\ntrain: train.txt\n${valLine}names:\n` +
      cats.map((c, i) => `  ${i}: ${JSON.stringify(c.name)}\n`).join('');
    await writeFileAtomic(join(out, 'data.yaml'), enc(yaml));
    outputs.push(join(out, 'labels'), join(out, 'data.yaml'));
  }
  const log = buildLog(ctx, lines, images, exportNotes);
  const logPath = join(out, 'log.jsonl');
  await writeFileAtomic(logPath, enc(log.map((r) => JSON.stringify(r) + '\n').join('')));
  outputs.push(logPath);
  return outputs;
}

/**
 * The source images (by index) YOLO's val.txt holds: round(fraction x sources) of them drawn by seed, at
 * least one when the fraction is above 0, and none when fewer than 2 sources rendered (nothing would be left to train on).
 */
export function yoloHeldOut(ok: readonly PasteJournalLine[], fraction: number, seed: number): Set<number> {
  if (!(Number.isFinite(fraction) && fraction >= 0 && fraction < 1)) throw new GenaugError('E_ARGUMENT', `valFraction must be in [0, 1), got ${fraction}`);
  const sources = [...new Set(ok.map((l) => l.image_index))].sort((a, b) => a - b);
  if (fraction === 0 || sources.length < 2) return new Set();
  const n = Math.min(sources.length - 1, Math.max(1, Math.round(fraction * sources.length)));
  const random = seededRandom(mixSeed(seed, 0x59a1));
  for (let i = sources.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [sources[i], sources[j]] = [sources[j] as number, sources[i] as number];
  }
  return new Set(sources.slice(0, n));
}

/** A rendered image of the WebDataset export: its staged file, else its member in the previous shards. */
async function stagedImage(path: string, member: { file: string; offset: number; size: number } | undefined): Promise<Uint8Array> {
  try {
    const bytes = await readFile(path);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (member) return readShardMember(member);
  throw new GenaugError('E_IO', `${path}: this rendered image is neither staged nor in the previous shards (removed by hand?); delete progress.jsonl in its folder to render the dataset again`, { path });
}

/** Instances an export format could not carry as they are, per item (YOLO: crowd, box-only). */
interface ExportNote {
  line: PasteJournalLine;
  kind: 'yolo-crowd-skipped' | 'yolo-box-as-polygon' | 'yolo-no-polygon';
  count: number;
  message: string;
}

/** OUT/log.jsonl: dataset problems, pool skips, then per item (in item order) failures, crop skips, size rejections, export notes. */
function buildLog(ctx: PasteContext, lines: PasteJournalLine[], images: CocoIndex['dataset']['images'], notes: ExportNote[] = []): Array<Record<string, unknown>> {
  const byLine = new Map<PasteJournalLine, ExportNote[]>();
  for (const n of notes) byLine.set(n.line, [...(byLine.get(n.line) ?? []), n]);
  const log: Array<Record<string, unknown>> = [];
  for (const p of ctx.coco.problems) log.push({ stage: 'coco', kind: p.kind, where: p.where, message: p.message });
  for (const s of ctx.pool.skipped as PoolSkip[]) log.push({ stage: 'pool', ...s });
  for (const l of lines) {
    const at = { image_id: l.image_id, file_name: images[l.image_index]?.file_name, copy: l.copy };
    if (l.status === 'failed') log.push({ stage: 'item', kind: 'image-failed', ...at, message: l.reason });
    for (const s of l.skipped ?? []) log.push({ stage: 'item', kind: 'crop-skipped', ...at, file: s.file, message: s.reason });
    for (const f of l.fallbacks ?? []) log.push({ stage: 'item', kind: 'segmentation-as-box', ...at, annotation_index: f.index, message: f.reason });
    if (l.rejected.tooSmall || l.rejected.tooLarge) {
      log.push({ stage: 'item', kind: 'sample-rejected', ...at, too_small: l.rejected.tooSmall, too_large: l.rejected.tooLarge, attempts: l.attempts });
    }
    for (const n of byLine.get(l) ?? []) log.push({ stage: 'export', kind: n.kind, ...at, count: n.count, message: n.message });
  }
  return log;
}
