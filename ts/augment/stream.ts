/**
 * The paste stream: online copy-paste samples as a WebDataset tar stream, for
 * a training loop in another process (`genaug paste --stream | python ...`,
 * `webdataset.WebDataset("pipe:genaug paste --stream ...")`, or
 * `tarfile.open(fileobj=proc.stdout, mode="r|")`).
 *
 * Each sample is the pair `<key>.jpg` (or .png) + `<key>.json` that the
 * offline WebDataset export (`paste --format webdataset`) writes: with
 * `epochs: N` the samples are byte for byte those of the export with
 * `copies: N` (epoch e is copy e; the same key, image bytes and json).
 * Endless (the default), image_id counts epoch-major (e * images + index + 1),
 * as no copy count is known.
 *
 * The sample sequence: epoch e visits every image once, in an order shuffled
 * by (seed, e) (the loader's order, ts/augment/loader.ts), so sample g of the
 * whole stream is position g mod images of epoch floor(g / images). Shard I of
 * N takes the samples g with g mod N = I: the N shards are disjoint, together
 * they are the whole stream, and a sample's bytes depend only on (seed, image,
 * epoch), so the same seed and shard count give the same samples whatever the
 * worker count. Items that fail (missing or undecodable image) are left out
 * and reported through onSkip, as the export leaves them out.
 *
 * Renders run ahead of the writer in a piscina pool, at most `prefetch` of
 * them; the writer waits for the sink to drain (back-pressure), so memory
 * stays bounded by prefetch samples plus the sink's buffer however slow the
 * reader is. A sink closed by its reader (EPIPE) ends the stream quietly.
 */
import type { Piscina } from 'piscina';

import { tarEnd, tarSample } from '../io/webdataset.js';
import { GenaugError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';
import { CropCache } from './pool.js';
import { imageKeys, journalLine, openPastePool, planItem, preparePaste, renderItem, webdatasetJson, type PasteContext, type PasteSourceOptions, type RenderResult } from './paste.js';
import { itemSeed, shuffledIndices } from './sample.js';

export interface StreamShard {
  /** 0-based index of this shard. */
  index: number;
  /** Number of shards. */
  count: number;
}

export interface PasteStreamOptions extends PasteSourceOptions {
  /** Passes over the dataset (default Infinity: endless). */
  epochs?: number;
  /** This stream's shard of the sample sequence (default 0 of 1: all of it). */
  shard?: StreamShard;
  /** Shuffle the image order per epoch (default true). */
  shuffle?: boolean;
  /** Image encoding (default 'jpeg'). */
  imageFormat?: 'jpeg' | 'png';
  /** JPEG quality 1..100 (default 95). */
  jpegQuality?: number;
  /** Worker threads (default: the number of cores; 0 = the main thread). */
  workers?: number;
  /** Samples rendered ahead of the writer (default 2 x workers, at least 2). */
  prefetch?: number;
  /** Stops the stream after the sample in hand (the tar stream is then ended properly). */
  signal?: AbortSignal;
  /** Told about each item left out (failed render) or crop skipped. */
  onSkip?: (record: { imageId: number; copy: number; file?: string; reason: string }) => void;
}

export interface StreamSample {
  key: string;
  /** The tar members' contents by field: `jpg` or `png`, and `json`. */
  fields: Record<string, Uint8Array>;
  /** Index of the sample in the whole (unsharded) stream. */
  index: number;
  epoch: number;
  imageId: number;
}

/** "I/N" with 0 <= I < N, as `--shard` takes it. */
export function parseShard(text: string, what = '--shard'): StreamShard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new GenaugError('E_ARGUMENT', `${what} must be "I/N" with 0 <= I < N (this stream's shard of N), got '${text}'`);
  }
  return { index, count };
}

/**
 * The shard the environment gives a stream started by a data-loading worker,
 * by the variables webdataset's pytorch_worker_info() reads: RANK and
 * WORLD_SIZE (set by torchrun for each training process) and WORKER and
 * NUM_WORKERS (DataLoader workers; PyTorch sets none, so a worker_init_fn or
 * the dataset sets them, or passes --shard). The shard is
 * rank x num_workers + worker of world_size x num_workers; undefined when
 * none is set. A malformed or out-of-range value is E_ARGUMENT naming it.
 */
export function shardFromEnvironment(env: NodeJS.ProcessEnv = process.env): (StreamShard & { from: string }) | undefined {
  const pair = (a: string, b: string): [number, number] | undefined => {
    const x = env[a], y = env[b];
    if (x === undefined && y === undefined) return undefined;
    if (x === undefined || y === undefined) throw new GenaugError('E_ARGUMENT', `${x === undefined ? a : b} is not set but ${x === undefined ? b : a} is: set both (or pass --shard I/N)`);
    const i = Number(x), n = Number(y);
    if (!/^\d+$/.test(x.trim()) || !/^\d+$/.test(y.trim()) || n < 1 || i >= n) throw new GenaugError('E_ARGUMENT', `${a}=${x} ${b}=${y}: need integers with 0 <= ${a} < ${b}`);
    return [i, n];
  };
  const node = pair('RANK', 'WORLD_SIZE');
  const worker = pair('WORKER', 'NUM_WORKERS');
  if (!node && !worker) return undefined;
  const [rank, world] = node ?? [0, 1];
  const [w, workers] = worker ?? [0, 1];
  const from = [node ? `RANK=${rank} WORLD_SIZE=${world}` : '', worker ? `WORKER=${w} NUM_WORKERS=${workers}` : ''].filter(Boolean).join(' ');
  return { index: rank * workers + w, count: world * workers, from };
}

/**
 * The stream order of a dataset of `n` samples, as the paste stream visits its images: epoch e is every sample once,
 * in an order shuffled by (seed, e) (or file order), and shard I of N takes the positions g with g mod N = I of the
 * whole sequence. Yields [position g, epoch, sample index].
 */
export function* streamOrder(n: number, o: { seed: number; epochs?: number; shard?: StreamShard; shuffle?: boolean }): Generator<[number, number, number]> {
  const epochs = o.epochs ?? Infinity;
  if (!(epochs === Infinity || (Number.isSafeInteger(epochs) && epochs >= 1))) throw new GenaugError('E_ARGUMENT', `epochs must be a positive integer or Infinity, got ${epochs}`);
  const shard = o.shard ?? { index: 0, count: 1 };
  if (!Number.isSafeInteger(shard.index) || !Number.isSafeInteger(shard.count) || shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    throw new GenaugError('E_ARGUMENT', `shard must be {index, count} with 0 <= index < count, got ${shard.index}/${shard.count}`);
  }
  if (n === 0) return;
  let epochSeen = -1;
  let order: number[] = [];
  for (let g = shard.index; g < epochs * n; g += shard.count) {
    const e = Math.floor(g / n);
    if (e !== epochSeen) {
      order = o.shuffle === false ? Array.from({ length: n }, (_, i) => i) : shuffledIndices(n, seededRandom(itemSeed(o.seed, 0x65706f63, e)));
      epochSeen = e;
    }
    yield [g, e, order[g % n] as number];
  }
}

interface Pending {
  index: number;
  imageIndex: number;
  epoch: number;
  plan: ReturnType<typeof planItem>;
  promise: Promise<RenderResult>;
}

/** The samples of one shard of the stream, in stream order. Leaving the loop early stops the workers. */
export async function* pasteStream(o: PasteStreamOptions): AsyncGenerator<StreamSample> {
  const epochs = o.epochs ?? Infinity;
  if (!(epochs === Infinity || (Number.isSafeInteger(epochs) && epochs >= 1))) throw new GenaugError('E_ARGUMENT', `epochs must be a positive integer or Infinity, got ${epochs}`);
  const shard = o.shard ?? { index: 0, count: 1 };
  if (!Number.isSafeInteger(shard.index) || !Number.isSafeInteger(shard.count) || shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    throw new GenaugError('E_ARGUMENT', `shard must be {index, count} with 0 <= index < count, got ${shard.index}/${shard.count}`);
  }
  const imageFormat = o.imageFormat ?? 'jpeg';
  if (imageFormat !== 'jpeg' && imageFormat !== 'png') throw new GenaugError('E_ARGUMENT', `imageFormat must be jpeg or png, got '${String(imageFormat)}'`);
  const quality = o.jpegQuality ?? 95;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new GenaugError('E_ARGUMENT', `jpegQuality must be an integer in [1, 100], got ${quality}`);
  const shared = o.workers === 0 ? new CropCache(o.cacheBytes ?? 256 * 2 ** 20) : undefined;
  const ctx: PasteContext = await preparePaste(shared ? { ...o, cropCache: shared } : o);
  const images = ctx.coco.dataset.images;
  const n = images.length;
  if (n === 0) return;
  const keys = imageKeys(images);
  const ext = imageFormat === 'png' ? 'png' : 'jpg';
  const names = new Map(ctx.categories.map((c) => [c.id, c.name]));
  const total = epochs === Infinity ? Infinity : epochs * n;
  const pool: Piscina | undefined = openPastePool(o.workers);
  const cache = pool ? undefined : (shared ?? new CropCache(ctx.cacheBytes));
  const threads = pool ? pool.options.maxThreads : 1;
  const prefetch = Math.max(1, o.prefetch ?? Math.max(2, 2 * threads));
  const orders = new Map<number, number[]>();
  const order = (e: number): number[] => {
    let got = orders.get(e);
    if (!got) {
      got = o.shuffle === false ? Array.from({ length: n }, (_, i) => i) : shuffledIndices(n, seededRandom(itemSeed(ctx.seed, 0x65706f63, e)));
      orders.clear();
      orders.set(e, got);
    }
    return got;
  };
  const queue: Pending[] = [];
  let next = shard.index;
  const launch = (): boolean => {
    if (next >= total) return false;
    const g = next;
    next += shard.count;
    const epoch = Math.floor(g / n);
    const imageIndex = order(epoch)[g % n] as number;
    const plan = planItem(ctx, imageIndex, epoch, { paths: [], format: imageFormat, quality, keep: true }, { rle: true, bitmap: false, polygon: false });
    const promise: Promise<RenderResult> = pool ? pool.run(plan.task) : renderItem(plan.task, cache as CropCache);
    promise.catch(() => undefined);  // observed when dequeued
    queue.push({ index: g, imageIndex, epoch, plan, promise });
    return true;
  };
  let delivered = 0;
  let failedInARow = 0;
  const perEpoch = Math.ceil(n / shard.count);
  try {
    for (;;) {
      while (queue.length < prefetch && !o.signal?.aborted && launch()) {
        // filled up to `prefetch`
      }
      const p = queue.shift();
      if (!p) break;
      const r = await p.promise;
      const im = images[p.imageIndex]!;
      for (const s of r.skipped) o.onSkip?.({ imageId: im.id, copy: p.epoch, file: s.file, reason: s.reason });
      if (!r.ok || !r.encoded) {
        o.onSkip?.({ imageId: im.id, copy: p.epoch, reason: r.reason ?? 'failed' });
        // Every item of a whole epoch's share failed and none ever worked: an endless stream would spin forever.
        if (++failedInARow > perEpoch && delivered === 0) {
          throw new GenaugError('E_EMPTY', `the first ${failedInARow} items of the stream all failed (last: image ${im.id} ${im.file_name}: ${r.reason ?? 'failed'}); nothing to stream`);
        }
        continue;
      }
      failedInARow = 0;
      const key = `${keys[p.imageIndex]}_${p.epoch}`;
      const line = journalLine(ctx, p.plan, key, r);
      const imageId = epochs === Infinity ? p.epoch * n + p.imageIndex + 1 : p.imageIndex * epochs + p.epoch + 1;
      const json = new TextEncoder().encode(JSON.stringify(webdatasetJson(line, imageId, ext, names)));
      delivered++;
      yield { key, fields: { [ext]: r.encoded, json }, index: p.index, epoch: p.epoch, imageId };
    }
    if (delivered === 0 && next > shard.index && !o.signal?.aborted) {
      throw new GenaugError('E_EMPTY', `every item of this stream failed (the skipped items say why); nothing to stream`);
    }
  } finally {
    // Leaving early (the reader closed the pipe, a break): the renders in flight are dropped.
    await Promise.all(queue.splice(0).map((p) => p.promise.catch(() => undefined)));
    await pool?.destroy();
  }
}

/** Where the stream goes: process.stdout, a socket, any Node Writable. */
export interface StreamSink {
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly writableNeedDrain?: boolean;
}

export interface StreamSummary {
  samples: number;
  bytes: number;
  /** The reader closed the stream (EPIPE) before its end: not an error. */
  closedByReader: boolean;
}

const READER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * Writes one shard of the stream to `sink` as a tar stream (a finite stream
 * ends with the tar end-of-archive blocks). Waits for `drain` whenever the
 * sink's buffer is full. A reader that goes away (EPIPE) ends it quietly
 * with closedByReader; any other write error is E_IO.
 */
export async function writePasteStream(o: PasteStreamOptions, sink: StreamSink): Promise<StreamSummary> {
  return writeTarStream(pasteStream(o), sink);
}

/**
 * Writes samples ({key, fields}) to `sink` as one tar stream, the way writePasteStream does (back-pressure,
 * end-of-archive blocks after the last sample, a reader that goes away ends it quietly). Every stream of genaug
 * (paste, export classification, export scenes) goes through here.
 */
export async function writeTarStream(source: AsyncIterable<{ key: string; fields: Record<string, Uint8Array> }>, sink: StreamSink): Promise<StreamSummary> {
  let failure: NodeJS.ErrnoException | undefined;
  let gone = false;
  const wake = new Set<() => void>();
  const onError = (e: unknown) => {
    const err = e as NodeJS.ErrnoException;
    if (READER_GONE.has(String(err?.code))) gone = true;
    else failure ??= err;
    for (const w of wake) w();
  };
  const onClose = () => {
    gone = true;
    for (const w of wake) w();
  };
  sink.on('error', onError);
  sink.on('close', onClose);
  const waitDrain = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        wake.delete(done);
        sink.off('drain', done);
        resolve();
      };
      wake.add(done);
      sink.once('drain', done);
    });
  const check = () => {
    if (failure) throw new GenaugError('E_IO', `the stream's output could not be written: ${failure.message}`, { code: failure.code });
  };
  let bytes = 0;
  let samples = 0;
  const put = async (chunk: Uint8Array) => {
    if (gone) return;
    bytes += chunk.byteLength;
    if (!sink.write(chunk)) await waitDrain();
    check();
  };
  try {
    for await (const s of source) {
      await put(tarSample(s.key, s.fields));
      if (gone) break;
      samples++;
    }
    if (!gone) {
      const end = tarEnd(bytes);
      bytes += end.byteLength;
      // Waits until the last bytes are handed to the system (or the reader went away).
      await new Promise<void>((resolve) => {
        const done = () => {
          wake.delete(done);
          resolve();
        };
        wake.add(done);
        sink.write(end, () => done());
      });
      check();
    }
  } finally {
    sink.off('error', onError);
    sink.off('close', onClose);
  }
  return { samples, bytes, closedByReader: gone };
}
