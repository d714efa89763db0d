/**
 * The online paste loader: an async iterator of augmented samples for a
 * training loop, with decode + sampling + composite running ahead of the
 * consumer in a piscina pool of worker threads (ts/workers/paste.ts; images
 * and masks are transferred back, not copied).
 *
 *   const loader = pasteLoader({ coco: 'train.json', images: 'train/', pool: 'pool/', seed: 1, epochs: 10 });
 *   for await (const s of loader) {
 *     // s.image: Uint8Array RGB (s.height x s.width x 3); s.annotations: [{category_id, bbox, area, mask, source}]
 *   }
 *   await loader.close();   // when leaving the loop early (break does it too)
 *
 * Epoch e visits every image once, in an order shuffled by (seed, e) when
 * `shuffle` (default), and uses copy index e for the sampling seed, so each
 * epoch sees new pastes and the sequence is the same on every run whatever the
 * worker count. Samples come out in that order; up to `prefetch` items are in
 * flight. An item that fails (missing or undecodable image, size mismatch) is
 * skipped and reported through `onSkip`; unusable crops are left out of their
 * item and reported the same way.
 */
import type { Piscina } from 'piscina';

import type { CocoAnnotation } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';
import { CropCache } from './pool.js';
import { openPastePool, planItem, preparePaste, renderItem, type PasteContext, type PasteSourceOptions, type RenderResult } from './paste.js';
import { itemSeed, shuffledIndices } from './sample.js';

export interface PasteLoaderOptions extends PasteSourceOptions {
  /** Passes over the dataset (default 1; Infinity for an endless stream). */
  epochs?: number;
  /** Shuffle the image order per epoch (default true). */
  shuffle?: boolean;
  /** Items decoded and composited ahead of the consumer (default 2 x workers, at least 2). */
  prefetch?: number;
  /** Worker threads (default: the number of cores; 0 = the main thread). */
  workers?: number;
  /** Masks as 'bitmap' (Uint8Array, height x width, 0/1; default) or 'rle' (compressed COCO RLE). */
  masks?: 'bitmap' | 'rle';
  /** Told about each skipped item or crop. */
  onSkip?: (record: { imageId: number; copy: number; file?: string; reason: string }) => void;
}

export interface PasteSampleAnnotation {
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  source: 'real' | 'pasted';
  mask?: Uint8Array;
  rle?: { size: [number, number]; counts: string };
}

export interface PasteSample {
  /** Interleaved RGB, height x width x 3. */
  image: Uint8Array;
  width: number;
  height: number;
  /** The real image's id and file. */
  imageId: number;
  fileName: string;
  /** The copy index (= the epoch). */
  copy: number;
  epoch: number;
  /** The real instances' masks are their boxes (the image had no segmentation). */
  boxOnly: boolean;
  annotations: PasteSampleAnnotation[];
}

export interface PasteLoader extends AsyncIterableIterator<PasteSample> {
  /** Stops the loader and its workers; pending samples are discarded. */
  close(): Promise<void>;
  /** The prepared dataset and pool (after the first `next()`). */
  readonly context: PasteContext | undefined;
}

interface Pending {
  imageIndex: number;
  epoch: number;
  /** Category id of each placement. */
  placed: number[];
  promise: Promise<RenderResult>;
}

export function pasteLoader(o: PasteLoaderOptions): PasteLoader {
  const epochs = o.epochs ?? 1;
  if (!(epochs === Infinity || (Number.isInteger(epochs) && epochs >= 0))) throw new GenaugError('E_ARGUMENT', `epochs must be a non-negative integer or Infinity, got ${epochs}`);
  const maskMode = o.masks ?? 'bitmap';
  if (maskMode !== 'bitmap' && maskMode !== 'rle') throw new GenaugError('E_ARGUMENT', `masks must be 'bitmap' or 'rle', got '${String(maskMode)}'`);
  let ctx: PasteContext | undefined;
  let pool: Piscina | undefined;
  let cache: CropCache | undefined;
  let prefetch = 1;
  let started: Promise<void> | undefined;
  let closed = false;
  const queue: Pending[] = [];
  // The item cursor: epoch and position in that epoch's order.
  let epoch = 0;
  let position = 0;
  let order: number[] = [];

  const start = async () => {
    ctx = await preparePaste(o);
    const workers = o.workers;
    pool = openPastePool(workers);
    if (!pool) cache = new CropCache(ctx.cacheBytes);
    const threads = pool ? pool.options.maxThreads : 1;
    prefetch = Math.max(1, o.prefetch ?? Math.max(2, 2 * threads));
    order = epochOrder(0);
  };

  const epochOrder = (e: number): number[] => {
    const n = (ctx as PasteContext).coco.dataset.images.length;
    return o.shuffle === false ? Array.from({ length: n }, (_, i) => i) : shuffledIndices(n, seededRandom(itemSeed((ctx as PasteContext).seed, 0x65706f63, e)));
  };

  /** Starts the next item, if any is left. */
  const launch = (): boolean => {
    const c = ctx as PasteContext;
    if (c.coco.dataset.images.length === 0) return false;
    while (position >= order.length) {
      epoch++;
      position = 0;
      if (epoch >= epochs) return false;
      order = epochOrder(epoch);
    }
    if (epoch >= epochs) return false;
    const imageIndex = order[position++] as number;
    const plan = planItem(c, imageIndex, epoch, { raw: true }, { rle: maskMode === 'rle', bitmap: maskMode === 'bitmap', polygon: false });
    const promise: Promise<RenderResult> = pool ? pool.run(plan.task) : renderItem(plan.task, cache as CropCache);
    promise.catch(() => undefined);  // observed when dequeued
    queue.push({ imageIndex, epoch, placed: plan.task.placements.map((x) => x.categoryId), promise });
    return true;
  };

  const toSample = (p: Pending, r: RenderResult): PasteSample => {
    const c = ctx as PasteContext;
    const im = c.coco.dataset.images[p.imageIndex]!;
    const anns = c.coco.annotationsByImage.get(im.id) ?? [];
    return {
      image: r.image as Uint8Array,
      width: r.width,
      height: r.height,
      imageId: im.id,
      fileName: im.file_name,
      copy: p.epoch,
      epoch: p.epoch,
      boxOnly: r.boxOnly,
      annotations: r.instances.map((inst) => {
        const real = inst.source === 'real' ? (anns[inst.index] as CocoAnnotation) : undefined;
        return {
          category_id: real ? real.category_id : (p.placed[inst.index] as number),
          bbox: inst.bbox,
          area: inst.area,
          iscrowd: real ? real.iscrowd : 0,
          source: inst.source,
          ...(inst.mask ? { mask: inst.mask } : {}),
          ...(inst.counts !== undefined ? { rle: { size: [r.height, r.width] as [number, number], counts: inst.counts } } : {}),
        };
      }),
    };
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    const pending = queue.splice(0).map((p) => p.promise.catch(() => undefined));
    await Promise.all(pending);
    await pool?.destroy();
    pool = undefined;
  };

  const loader: PasteLoader = {
    get context() {
      return ctx;
    },
    async next(): Promise<IteratorResult<PasteSample>> {
      if (closed) return { done: true, value: undefined };
      started ??= start();
      await started;
      for (;;) {
        while (!closed && queue.length < prefetch && launch()) {
          // filled up to `prefetch`
        }
        const p = queue.shift();
        if (!p || closed) {
          await close();
          return { done: true, value: undefined };
        }
        const r = await p.promise;
        const im = (ctx as PasteContext).coco.dataset.images[p.imageIndex]!;
        for (const s of r.skipped) o.onSkip?.({ imageId: im.id, copy: p.epoch, file: s.file, reason: s.reason });
        if (!r.ok) {
          o.onSkip?.({ imageId: im.id, copy: p.epoch, reason: r.reason ?? 'failed' });
          continue;
        }
        return { done: false, value: toSample(p, r) };
      }
    },
    async return(): Promise<IteratorResult<PasteSample>> {
      await close();
      return { done: true, value: undefined };
    },
    close,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return loader;
}
