/**
 * Instance copy-paste compositor (X-Paste / DiverGen, ALGORITHMS.md §2.5):
 * pastes RGBA instances onto a destination RGB image, in order, and keeps
 * every instance mask, box and area consistent with what stays visible.
 *
 * For each pasted instance, in order:
 * - the RGBA crop is resized to `targetWidth` x `targetHeight` with bilinear
 *   interpolation, flipped horizontally when `flip`, and placed with its
 *   top-left corner at x0 = floor(cx - targetWidth / 2 + 0.5),
 *   y0 = floor(cy - targetHeight / 2 + 0.5) (for an integer centre:
 *   cx - floor(targetWidth / 2)); what falls outside the image is clipped;
 * - its mask is (resized alpha >= `maskThreshold`) inside the image; the
 *   default 1 is §2.5's rule (alpha > 0 after the resize), 128 the common
 *   "half-opaque" alternative;
 * - blend, always restricted to the mask (no pixel outside the instance's
 *   mask changes, so pixels and annotations agree): `basic` (default, the
 *   reference's) copies RGB where the mask is set; `alpha` computes
 *   (src * a + dst * (255 - a) + 127) / 255 (integer division) with
 *   a = resized alpha inside the mask and 0 outside it; `gaussian` uses the
 *   same formula with a = round(255 * (mask blurred by a Gaussian of
 *   `sigma`)) inside the mask and 0 outside it (an inward feathered edge);
 * - every earlier instance (real or pasted) loses the new mask's pixels and
 *   its box and area are recomputed; it is kept when every coordinate of its
 *   xyxy box moved by at most `keepMaxShift` (10) against its box before this
 *   paste, or when its remaining area is > `keepMinArea` (300); otherwise it
 *   is dropped (`occluded`); an instance with no pixel left is dropped
 *   (`empty`).
 *
 * Sampling convention (pixel centres, as OpenCV INTER_LINEAR): target column
 * u samples source x = (u + 0.5) * width / targetWidth - 0.5, evaluated
 * exactly in integers, clamped at the edges (x < 0 reads column 0; x beyond
 * the last column reads the last column), with 11-bit weights a, b as OpenCV:
 * h_r = S[y_r][x0] * (2048 - a) + S[y_r][x1] * a, value =
 * ((h_0 >> 4) * (2048 - b) + (h_1 >> 4) * b + 2^17) >> 18. An
 * integer-aligned sample returns the source value exactly; results are within
 * 1 of the real-valued interpolation. Flip: destination column j of the
 * instance takes target column targetWidth - 1 - j.
 *
 * Output masks are full-frame (height x width, 0/1). The composed images and
 * masks are views into one ArrayBuffer: by default one per call (every
 * scene's image and masks), with `pool` or `transferable` one per scene
 * (allocating many 1 MiB arrays costs more than the compositing); copy an
 * array (`mask.slice()`) to keep it alone: any view kept keeps its whole
 * ArrayBuffer.
 *
 * Output memory is recycled by default: each call's block is native memory
 * that goes back on a free list once the garbage collector finds it
 * unreachable (every image and mask of the call dropped), so a steady stream
 * of calls writes into pages that are mapped already instead of paying a page
 * fault per 4 KiB (and the kernel's zeroing) of fresh memory. One block per
 * call rather than per scene: V8 starts a full collection for about every
 * 64 MiB of new external memory, and one buffer per call of 32 1024² scenes
 * costs about one collection where one per scene cost two. Such blocks
 * cannot be moved to another thread: pass `transferable: true` for results
 * that go into a postMessage transfer list. {@link compositeMemory} reports
 * (and can release) the memory waiting for reuse.
 * Boxes are COCO
 * [x, y, w, h], tight, 0-based (columns x .. x + w - 1). Instances that
 * cannot be pasted are not errors: they are listed in `dropped` with the
 * reason (`zero-size` target, `empty-crop`, `empty-alpha`: no resized pixel
 * reaches alpha `maskThreshold`, `clipped-out`: no mask pixel inside the image).
 * Box-only scenes (boxes, no masks): each box becomes the mask of columns
 * round(x) .. round(x + w) - 1 and rows round(y) .. round(y + h) - 1
 * (round = floor(v + 0.5)), clipped to the image; `boxOnly` is true.
 */

import type { NativeAddon, NativeCompositeInstanceIn, NativeCompositeOptions, NativeCompositeSceneIn, NativeCompositeSceneOut } from '../native/addon.js';
import { GenaugError } from '../native/errors.js';
import { type Device, resolveDevice } from '../native/device.js';
import { native } from '../native/load.js';
import { checkInt, checkNumber, pinInputs } from '../native/validate.js';

export type BlendMode = 'basic' | 'alpha' | 'gaussian';
export type CompositeBbox = [x: number, y: number, w: number, h: number];
export type DropReason = 'occluded' | 'empty' | 'clipped-out' | 'zero-size' | 'empty-crop' | 'empty-alpha';
export type InstanceSource = 'real' | 'pasted';

/** An interleaved RGB image, height x width x 3 bytes. */
export interface RgbFrame {
  data: Uint8Array;
  width: number;
  height: number;
}

/** One instance to paste: an RGBA crop (height x width x 4) and where and how large it goes. */
export type PasteInstance = NativeCompositeInstanceIn;

export interface CompositeScene {
  image: RgbFrame;
  /** The destination's instance masks, one height x width Uint8Array each (nonzero = foreground). */
  masks?: Uint8Array[];
  /** Or, for a box-only dataset: its boxes [x, y, w, h] (masks are made from them). */
  boxes?: ReadonlyArray<readonly [number, number, number, number]>;
  /** Pasted in order; later ones sit on top. */
  instances?: PasteInstance[];
}

export interface CompositeOptions {
  /** 'basic' (default, hard paste), 'alpha' or 'gaussian' (feathered edge). */
  blend?: BlendMode;
  /**
   * A pasted instance's mask is (resized alpha >= maskThreshold), an integer in
   * [1, 255]. Default 1: §2.5's rule, mask = alpha > 0 after the resize (every
   * pixel with any coverage is annotated). 128 is the common "half-opaque"
   * alternative (faint fringes are neither annotated nor painted).
   */
  maskThreshold?: number;
  /** Gaussian feather sigma in pixels, (0, 64] (default 2). */
  sigma?: number;
  /** Keep an occluded instance when every box coordinate moved by at most this (default 10). */
  keepMaxShift?: number;
  /** ... or when its visible area is more than this (default 300). */
  keepMinArea?: number;
  /** Threads over scenes (0 or absent: every core). Results do not depend on it. */
  threads?: number;
  /**
   * 'full' (default): each mask is height x width. 'box': each mask is cropped
   * to its bbox (bbox[3] rows x bbox[2] columns, at (bbox[0], bbox[1])): much
   * less memory, and the full-frame work happens in reused native scratch.
   */
  maskFormat?: 'full' | 'box';
  /**
   * The SIMD level of the resize ('auto', default: the process's level; lowered
   * to what the CPU has). Every level gives the same bytes; this is for tests
   * and measurements.
   */
  isa?: 'auto' | 'scalar' | 'avx2' | 'avx512';
  /** Reuse output memory across calls, explicitly (see {@link CompositeOutputPool}). */
  pool?: CompositeOutputPool;
  /**
   * Write the results into fresh JavaScript memory that can be transferred to
   * another thread (postMessage transfer lists), instead of the recycled
   * native memory of the default (which Node does not let move). Slower: a
   * fresh block costs a page fault per 4 KiB.
   */
  transferable?: boolean;
  /**
   * Where the per-pixel work runs: 'cpu' (default), 'cuda' (the GPU;
   * E_CUDA_UNAVAILABLE naming why without one) or 'auto' (CUDA when usable,
   * silently the CPU otherwise). The same bytes either way.
   */
  device?: Device;
  /** CUDA: device memory for one batch of scenes, bytes (default: 3/4 of the free device memory less 64 MiB). */
  deviceBytes?: number;
}

export interface CompositeInstance {
  source: InstanceSource;
  /** Index into the scene's masks/boxes (real) or instances (pasted). */
  index: number;
  /** Visible mask, 0/1: height x width, or bbox-sized with maskFormat 'box'. */
  mask: Uint8Array;
  bbox: CompositeBbox;
  area: number;
}

export interface CompositeDrop {
  source: InstanceSource;
  index: number;
  reason: DropReason;
}

export interface CompositeResult {
  /** The composed RGB image, height x width x 3. */
  image: Uint8Array;
  width: number;
  height: number;
  /** Surviving instances: real ones by index, then pasted ones by index. */
  instances: CompositeInstance[];
  /** Every input instance not in `instances`, with the reason (same order). */
  dropped: CompositeDrop[];
  /** The scene gave boxes, not masks: masks are box-shaped. */
  boxOnly: boolean;
}

function addon(): NativeAddon {
  return native();
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function bytes(v: unknown, name: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new GenaugError('E_DTYPE', `${name} must be a Uint8Array, got ${typeName(v)}`);
  return v;
}

function object(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw new GenaugError('E_TYPE', `${name} must be an object, got ${typeName(v)}`);
  }
  return v as Record<string, unknown>;
}

const MAX_SIDE = 0x7fffffff;
const MAX_PIXELS = 0xffffffff;
const MAX_CROP = 1 << 16;
const MAX_TARGET = 1 << 20;
const MAX_COORD = 1e12;

function coord(v: unknown, name: string): number {
  const x = checkNumber(v, name);
  if (Math.abs(x) > MAX_COORD) throw new GenaugError('E_RANGE', `${name} must satisfy |v| <= 1e12, got ${x}`);
  return x;
}

function nativeOptions(o: CompositeOptions | undefined): NativeCompositeOptions {
  const src = o === undefined ? {} : object(o, 'options');
  const out: NativeCompositeOptions = {};
  if (src.blend !== undefined) {
    if (src.blend !== 'basic' && src.blend !== 'alpha' && src.blend !== 'gaussian') {
      throw new GenaugError('E_RANGE', `blend must be 'basic', 'alpha' or 'gaussian', got ${String(src.blend)}`);
    }
    out.blend = src.blend;
  }
  if (src.sigma !== undefined) {
    const s = checkNumber(src.sigma, 'sigma');
    if (!(s > 0 && s <= 64)) throw new GenaugError('E_RANGE', `sigma must be in (0, 64], got ${s}`);
    out.sigma = s;
  }
  if (src.keepMaxShift !== undefined) out.keepMaxShift = checkInt(src.keepMaxShift, 'keepMaxShift', 0, 2 ** 40);
  if (src.keepMinArea !== undefined) out.keepMinArea = checkInt(src.keepMinArea, 'keepMinArea', 0, 2 ** 40);
  if (src.threads !== undefined) out.threads = checkInt(src.threads, 'threads', 0, 256);
  if (src.maskThreshold !== undefined) out.maskThreshold = checkInt(src.maskThreshold, 'maskThreshold', 1, 255);
  if (src.maskFormat !== undefined) {
    if (src.maskFormat !== 'full' && src.maskFormat !== 'box') throw new GenaugError('E_RANGE', `maskFormat must be 'full' or 'box', got ${String(src.maskFormat)}`);
    out.maskFormat = src.maskFormat;
  }
  if (src.isa !== undefined) {
    if (src.isa !== 'auto' && src.isa !== 'scalar' && src.isa !== 'avx2' && src.isa !== 'avx512') {
      throw new GenaugError('E_RANGE', `isa must be 'auto', 'scalar', 'avx2' or 'avx512', got ${String(src.isa)}`);
    }
    out.isa = src.isa;
  }
  if (src.device !== undefined && resolveDevice(src.device as Device, 'options.device') === 'cuda') out.device = 'cuda';
  if (src.deviceBytes !== undefined) out.deviceBytes = checkInt(src.deviceBytes, 'options.deviceBytes', 1, 2 ** 50);
  return out;
}

/** Validates one scene and returns its native form (arrays shared, not copied). */
function nativeScene(sc: unknown, where: string): NativeCompositeSceneIn {
  const s = object(sc, where);
  const img = object(s.image, `${where}.image`);
  const width = checkInt(img.width, `${where}.image.width`, 0, MAX_SIDE);
  const height = checkInt(img.height, `${where}.image.height`, 0, MAX_SIDE);
  if (width * height > MAX_PIXELS) throw new GenaugError('E_LIMIT', `${where}.image is ${height} x ${width}, over the limit of 2^32 - 1 pixels`);
  const data = bytes(img.data, `${where}.image.data`);
  if (data.length !== width * height * 3) {
    throw new GenaugError('E_SHAPE', `${where}.image.data has ${data.length} bytes but ${height} x ${width} x 3 = ${width * height * 3} (RGB)`);
  }
  const out: NativeCompositeSceneIn = { image: data, width, height };
  if (s.masks !== undefined && s.boxes !== undefined) {
    throw new GenaugError('E_ARGUMENT', `${where} has both masks and boxes; give masks, or boxes for a box-only scene`);
  }
  if (s.masks !== undefined) {
    if (!Array.isArray(s.masks)) throw new GenaugError('E_TYPE', `${where}.masks must be an array of Uint8Array, got ${typeName(s.masks)}`);
    out.masks = s.masks.map((m: unknown, i: number) => {
      const b = bytes(m, `${where}.masks[${i}]`);
      if (b.length !== width * height) {
        throw new GenaugError('E_SHAPE', `${where}.masks[${i}] has ${b.length} bytes but the image is ${height} x ${width} = ${width * height}`);
      }
      return b;
    });
  }
  if (s.boxes !== undefined) {
    if (!Array.isArray(s.boxes)) throw new GenaugError('E_TYPE', `${where}.boxes must be an array of [x, y, w, h], got ${typeName(s.boxes)}`);
    const f = new Float64Array(s.boxes.length * 4);
    s.boxes.forEach((b: unknown, i: number) => {
      if (!Array.isArray(b) || b.length !== 4) throw new GenaugError('E_SHAPE', `${where}.boxes[${i}] must be [x, y, w, h], got ${typeName(b)}`);
      for (let k = 0; k < 4; k++) {
        const v = coord(b[k], `${where}.boxes[${i}][${k}]`);
        if (k >= 2 && v < 0) throw new GenaugError('E_RANGE', `${where}.boxes[${i}] has a negative ${k === 2 ? 'width' : 'height'} ${v}`);
        f[4 * i + k] = v;
      }
    });
    out.boxes = f;
  }
  if (s.instances !== undefined) {
    if (!Array.isArray(s.instances)) throw new GenaugError('E_TYPE', `${where}.instances must be an array, got ${typeName(s.instances)}`);
    out.instances = s.instances.map((ins: unknown, p: number) => {
      const w = `${where}.instances[${p}]`;
      const o = object(ins, w);
      const cw = checkInt(o.width, `${w}.width`, 0, MAX_CROP);
      const ch = checkInt(o.height, `${w}.height`, 0, MAX_CROP);
      const rgba = bytes(o.rgba, `${w}.rgba`);
      if (rgba.length !== cw * ch * 4) throw new GenaugError('E_SHAPE', `${w}.rgba has ${rgba.length} bytes but ${ch} x ${cw} x 4 = ${cw * ch * 4} (RGBA)`);
      if (o.flip !== undefined && typeof o.flip !== 'boolean') throw new GenaugError('E_TYPE', `${w}.flip must be a boolean, got ${typeName(o.flip)}`);
      return {
        rgba,
        width: cw,
        height: ch,
        targetWidth: checkInt(o.targetWidth, `${w}.targetWidth`, 0, MAX_TARGET),
        targetHeight: checkInt(o.targetHeight, `${w}.targetHeight`, 0, MAX_TARGET),
        flip: o.flip === true,
        cx: coord(o.cx, `${w}.cx`),
        cy: coord(o.cy, `${w}.cy`),
      };
    });
  }
  return out;
}

function nativeScenes(scenes: unknown, o: NativeCompositeOptions, pool: CompositeOutputPool | undefined, transferable: boolean): NativeCompositeSceneIn[] {
  if (!Array.isArray(scenes)) throw new GenaugError('E_TYPE', `scenes must be an array, got ${typeName(scenes)}`);
  const out = scenes.map((s: unknown, i: number) => nativeScene(s, `scenes[${i}]`));
  // Default: the addon gives the call one recycled native block. Otherwise one
  // uninitialised output block per scene (image, then one mask slot per input
  // instance) from the pool or Buffer.allocUnsafeSlow (no zero fill).
  if (!pool && !transferable) return out;
  for (const s of out) {
    const slots = o.maskFormat === 'box' ? 0 : (s.boxes ? s.boxes.length / 4 : (s.masks?.length ?? 0)) + (s.instances?.length ?? 0);
    const bytes = s.width * s.height * (3 + slots);
    if (bytes > 2 ** 46) throw new GenaugError('E_LIMIT', `a scene would need ${bytes} bytes of output`);
    s.out = pool ? pool.take(bytes) : fresh(bytes);
  }
  return out;
}

function fresh(bytes: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(bytes);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Output memory to reuse across calls (opt-in, for training loaders): pass it
 * as `options.pool`, and hand each result back with `release(result)` once
 * its image and masks are no longer needed — their bytes are overwritten by a
 * later call. Fresh output memory costs page faults and garbage collection
 * (a 1024² scene with 8 instances is 11 MiB); reused memory costs neither.
 * Blocks are kept by size (rounded up to a multiple of 1 MiB, so scenes with
 * a few more or fewer instances share them), at most `maxBytes` in all.
 */
export class CompositeOutputPool {
  readonly maxBytes: number;
  #free = new Map<number, Uint8Array[]>();
  #held = 0;
  constructor(options: { maxBytes?: number } = {}) {
    this.maxBytes = options.maxBytes === undefined ? 1 << 30 : checkInt(options.maxBytes, 'maxBytes', 0);
  }

  /** Bytes held for reuse. */
  get heldBytes(): number {
    return this.#held;
  }

  /** A block of at least `bytes` (internal: called by compositeBatch). */
  take(bytes: number): Uint8Array {
    const size = Math.ceil(Math.max(bytes, 1) / (1 << 20)) * (1 << 20);
    const list = this.#free.get(size);
    const b = list?.pop();
    if (b) {
      this.#held -= b.byteLength;
      return b;
    }
    return fresh(size);
  }

  /** Returns the memory of results (from a call that used this pool) for reuse. */
  release(results: CompositeResult | CompositeResult[]): void {
    for (const r of Array.isArray(results) ? results : [results]) {
      const block = blocks.get(r);
      if (!block || !taken.has(block)) continue;
      taken.delete(block);
      if (this.#held + block.byteLength > this.maxBytes) continue;
      const list = this.#free.get(block.byteLength) ?? [];
      list.push(block);
      this.#free.set(block.byteLength, list);
      this.#held += block.byteLength;
    }
  }
}

/** The output block behind each result, and the blocks given out by a pool and not yet released. */
const blocks = new WeakMap<CompositeResult, Uint8Array>();
const taken = new WeakSet<Uint8Array>();

function results(r: NativeCompositeSceneOut[], ns: NativeCompositeSceneIn[], pool?: CompositeOutputPool): CompositeResult[] {
  const out = r.map((s) => ({
    image: s.image,
    width: s.width,
    height: s.height,
    instances: s.instances.map((i) => ({ source: i.source, index: i.index, mask: i.mask, bbox: i.bbox, area: i.area })),
    dropped: s.dropped.map((d) => ({ source: d.source, index: d.index, reason: d.reason as DropReason })),
    boxOnly: s.boxOnly,
  }));
  if (pool) {
    out.forEach((res, i) => {
      const block = ns[i]!.out!;
      blocks.set(res, block);
      taken.add(block);
    });
  }
  return out;
}

function transferableOf(options: CompositeOptions | undefined): boolean {
  const t = (options as { transferable?: unknown } | undefined)?.transferable;
  if (t !== undefined && typeof t !== 'boolean') throw new GenaugError('E_TYPE', `transferable must be a boolean, got ${typeName(t)}`);
  return t === true;
}

/**
 * The compositor's recycled output memory: `heldBytes` waiting on the free
 * list for the next call (at most 3x the largest call's output, up to 6x
 * when blocks keep coming back late, within 64 MiB..2 GiB). `release: true` unmaps it first (blocks still in use are
 * not touched; they return to the list when collected).
 */
export function compositeMemory(options: { release?: boolean } = {}): { heldBytes: number; releasedBytes: number } {
  return addon().compositeMemory(object(options, 'options').release === true);
}

function poolOf(options: CompositeOptions | undefined): CompositeOutputPool | undefined {
  const p = (options as { pool?: unknown } | undefined)?.pool;
  if (p === undefined) return undefined;
  if (!(p instanceof CompositeOutputPool)) throw new GenaugError('E_TYPE', `pool must be a CompositeOutputPool, got ${typeName(p)}`);
  return p;
}

/**
 * Composites many scenes in one native call, in parallel over scenes on the
 * libuv pool (the event loop stays free). Same inputs → same bytes whatever
 * `threads` is.
 */
export async function compositeBatch(scenes: CompositeScene[], options?: CompositeOptions): Promise<CompositeResult[]> {
  const o = nativeOptions(options);
  const pool = poolOf(options);
  const ns = nativeScenes(scenes, o, pool, transferableOf(options));
  for (const s of ns) pinInputs(s.image, ...(s.masks ?? []), ...(s.instances ?? []).map((i) => i.rgba));
  return results(await addon().compositeBatch(ns, o), ns, pool);
}

/** The synchronous twin of {@link compositeBatch} (blocks the calling thread; use it in workers). */
export function compositeBatchSync(scenes: CompositeScene[], options?: CompositeOptions): CompositeResult[] {
  const o = nativeOptions(options);
  const pool = poolOf(options);
  const ns = nativeScenes(scenes, o, pool, transferableOf(options));
  return results(addon().compositeBatchSync(ns, o), ns, pool);
}

/** One scene; see {@link compositeBatch}. */
export function compositeSync(scene: CompositeScene, options?: CompositeOptions): CompositeResult {
  return compositeBatchSync([scene], options)[0] as CompositeResult;
}
