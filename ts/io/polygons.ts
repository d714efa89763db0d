/**
 * A compact, exact form of COCO polygon segmentations (`readCoco(path, {
 * polygons: 'packed' })`).
 *
 * A plain COCO polygon list is `number[][]`: each coordinate an 8-byte double
 * in a JavaScript array, with array headers around every ring, which makes
 * the parsed polygons of an LVIS-size file larger than their JSON text. A
 * PackedPolygons keeps the coordinates in large typed-array chunks shared by
 * all the polygons of one read: each ring as 32-bit integers q with a power
 * of ten k (0..6) such that q / 10^k is exactly the double that was parsed
 * (every 2-decimal COCO/LVIS coordinate is), or, when any ring of the
 * segmentation has a value that is not (1e-7, 0.1 + 0.2, -0, values beyond
 * the int32 range at their scale), the whole segmentation as float64. Every
 * accessor gives back the very doubles that were packed (Object.is-equal), so
 * JSON.stringify (which calls toJSON) writes the same bytes as the arrays.
 *
 * Layout, at `offset` in the chunk: [ringCount, (ringLength, k) per ring,
 * coordinates of ring 0, ring 1, ...]; k is 0 in float64 storage.
 */

import { GenaugError } from '../native/errors.js';

const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000] as const;
const MAX_K = POW10.length - 1;
const INT32_MAX = 2147483647;

/** Whether v is exactly q / 10^k for an int32 q (checked through the very division that decoding does). */
function fitsAt(v: number, k: number): boolean {
  const p = POW10[k] as number;
  const q = Math.round(v * p);
  return q >= -INT32_MAX && q <= INT32_MAX && Object.is((q | 0) / p, v);
}

/** The smallest k (0..6) at which every coordinate of the ring fits, or -1. Fitting is monotone in k (q/10^k and 10q/10^(k+1) round the same rational). */
function ringScale(ring: ArrayLike<number>): number {
  let k = 0;
  for (let j = 0; j < ring.length; j++) {
    const v = ring[j] as number;
    while (!fitsAt(v, k)) if (++k > MAX_K) return -1;
  }
  return k;
}

/**
 * One annotation's polygons as `readCoco(path, { polygons: 'packed' })` gives them: int32 fixed point with a power
 * of ten per ring where that reproduces every double exactly, else float64, in chunks shared by the whole read.
 * `ring(i)`, `toArrays()`, `flat()` and JSON.stringify give back the very doubles that were read.
 */
export class PackedPolygons {
  /** The chunk holding this segmentation (shared with others of the same read). */
  readonly #data: Int32Array | Float64Array;
  /** Where its header starts in the chunk. */
  readonly #at: number;

  /** @internal Made by a PolygonPool (or packPolygons); not for direct use. */
  constructor(data: Int32Array | Float64Array, at: number) {
    this.#data = data;
    this.#at = at;
  }

  /** Number of rings (polygons) of the segmentation. */
  get ringCount(): number {
    return this.#data[this.#at] as number;
  }

  /** 'fixed' (int32 with a power of ten per ring) or 'float64' (some value of the segmentation had no exact fixed-point form). */
  get storage(): 'fixed' | 'float64' {
    return this.#data instanceof Int32Array ? 'fixed' : 'float64';
  }

  /** Number of coordinates (2 per point) of ring i. */
  ringLength(i: number): number {
    this.#check(i);
    return this.#data[this.#at + 1 + 2 * i] as number;
  }

  /** The power of ten of ring i's fixed point (value = stored integer / 10^k); -1 in float64 storage. */
  ringScale(i: number): number {
    this.#check(i);
    return this.#data instanceof Int32Array ? (this.#data[this.#at + 2 + 2 * i] as number) : -1;
  }

  /** Total number of coordinates over all rings. */
  get coordinateCount(): number {
    const n = this.ringCount;
    let s = 0;
    for (let r = 0; r < n; r++) s += this.#data[this.#at + 1 + 2 * r] as number;
    return s;
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.ringCount) throw new GenaugError('E_RANGE', `ring ${String(i)} is out of range (${this.ringCount} rings)`);
  }

  /** Start of ring i's coordinates in the chunk. */
  #start(i: number): number {
    const n = this.ringCount;
    let s = this.#at + 1 + 2 * n;
    for (let r = 0; r < i; r++) s += this.#data[this.#at + 1 + 2 * r] as number;
    return s;
  }

  /** Writes ring i's exact doubles into `out` (an array or typed array of at least ringLength(i) from `outOffset`). */
  #decode(i: number, out: { [j: number]: number }, outOffset: number): void {
    const d = this.#data;
    const len = d[this.#at + 1 + 2 * i] as number;
    const s = this.#start(i);
    if (d instanceof Int32Array) {
      const p = POW10[d[this.#at + 2 + 2 * i] as number] as number;
      for (let j = 0; j < len; j++) out[outOffset + j] = (d[s + j] as number) / p;
    } else for (let j = 0; j < len; j++) out[outOffset + j] = d[s + j] as number;
  }

  /** Ring i as a new array of the exact doubles read from the file. */
  ring(i: number): number[] {
    this.#check(i);
    const out = new Array<number>(this.ringLength(i));
    this.#decode(i, out, 0);
    return out;
  }

  /** Ring i as a new Float64Array (what the rasteriser takes), without an intermediate array. */
  ringFloat64(i: number): Float64Array {
    this.#check(i);
    const out = new Float64Array(this.ringLength(i));
    this.#decode(i, out, 0);
    return out;
  }

  /** Every ring as a Float64Array. */
  toFloat64Rings(): Float64Array[] {
    return Array.from({ length: this.ringCount }, (_, i) => this.ringFloat64(i));
  }

  /** Every coordinate, rings one after another, in one Float64Array; ring i starts at the sum of ringLength(0..i-1). */
  flat(): Float64Array {
    const out = new Float64Array(this.coordinateCount);
    let o = 0;
    for (let i = 0; i < this.ringCount; i++) {
      this.#decode(i, out, o);
      o += this.ringLength(i);
    }
    return out;
  }

  /** The COCO form, number[][], the exact doubles (a new array each call). */
  toArrays(): number[][] {
    return Array.from({ length: this.ringCount }, (_, i) => this.ring(i));
  }

  /** JSON.stringify writes the COCO form: the same bytes as the arrays it was packed from. */
  toJSON(): number[][] {
    return this.toArrays();
  }

  /** What console.log and util.inspect show (the private fields would show nothing). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    const rings = this.toArrays().map((r) => `[${r.length > 8 ? `${r.slice(0, 8).join(', ')}, ... ${r.length - 8} more` : r.join(', ')}]`);
    return `PackedPolygons(${this.storage}) [${rings.join(', ')}]`;
  }

  /** Bytes of storage this segmentation takes in its chunk (header included). */
  get byteLength(): number {
    return (1 + 2 * this.ringCount + this.coordinateCount) * this.#data.BYTES_PER_ELEMENT;
  }
}

/** Smallest and largest chunk, in elements: chunks double from the first to the last, so a small file takes little. */
const FIRST_CHUNK = 1 << 12;
const LAST_CHUNK = 1 << 20;

class Chunks<T extends Int32Array | Float64Array> {
  chunk: T | undefined;
  pos = 0;
  next: number;
  constructor(
    private readonly make: (n: number) => T,
    first: number,
    private readonly last: number,
  ) {
    this.next = Math.min(first, last);
  }
  /** Room for n elements: at pos in the current chunk, or in a new one (one of exactly n when n is over a chunk). */
  room(n: number): T {
    if (this.chunk && this.pos + n <= this.chunk.length) return this.chunk;
    if (n > this.last) {
      // A segmentation larger than a chunk gets one of its own; the current chunk goes on being filled.
      const own = this.make(n);
      return own;
    }
    while (this.next < n) this.next *= 2;
    this.chunk = this.make(this.next);
    this.pos = 0;
    if (this.next < this.last) this.next = Math.min(this.next * 2, this.last);
    return this.chunk;
  }
}

/**
 * The shared storage of one read: packs polygon lists into chunks of
 * Int32Array (fixed point) or Float64Array (fallback), allocated as it goes
 * (never one buffer reallocated to the whole size).
 */
export class PolygonPool {
  readonly #fixed: Chunks<Int32Array>;
  readonly #float: Chunks<Float64Array>;

  /**
   * firstChunk: elements of the first chunk of each kind (default 4096);
   * chunks double up to lastChunk (default 2^20: 4 MiB of int32, 8 MiB of
   * float64); a segmentation larger than that gets a chunk of its own.
   */
  constructor(firstChunk = FIRST_CHUNK, lastChunk = LAST_CHUNK) {
    this.#fixed = new Chunks((n) => new Int32Array(n), firstChunk, lastChunk);
    this.#float = new Chunks((n) => new Float64Array(n), firstChunk, lastChunk);
  }

  /**
   * The rings packed. They must be valid COCO polygons (each an array of
   * finite numbers); the reader checks that first.
   */
  pack(rings: readonly (ArrayLike<number>)[]): PackedPolygons {
    const n = rings.length;
    let total = 1 + 2 * n;
    const scales = new Array<number>(n);
    let fixed = true;
    for (let r = 0; r < n; r++) {
      const ring = rings[r] as ArrayLike<number>;
      total += ring.length;
      if (fixed) {
        const k = ringScale(ring);
        if (k < 0) fixed = false;
        else scales[r] = k;
      }
    }
    const chunks = fixed ? this.#fixed : this.#float;
    const d = chunks.room(total);
    const own = d !== chunks.chunk;
    const at = own ? 0 : chunks.pos;
    d[at] = n;
    let o = at + 1 + 2 * n;
    for (let r = 0; r < n; r++) {
      const ring = rings[r] as ArrayLike<number>;
      const len = ring.length;
      d[at + 1 + 2 * r] = len;
      if (fixed) {
        const k = scales[r] as number;
        d[at + 2 + 2 * r] = k;
        const p = POW10[k] as number;
        for (let j = 0; j < len; j++) d[o + j] = Math.round((ring[j] as number) * p);
      } else {
        d[at + 2 + 2 * r] = 0;
        for (let j = 0; j < len; j++) d[o + j] = ring[j] as number;
      }
      o += len;
    }
    if (!own) chunks.pos = o;
    return new PackedPolygons(d, at);
  }
}

/** One polygon list (number[][] of finite numbers) as a PackedPolygons with storage of its own (at most twice its size). */
export function packPolygons(rings: readonly (readonly number[])[]): PackedPolygons {
  if (!Array.isArray(rings)) throw new GenaugError('E_TYPE', 'polygons must be an array of coordinate arrays');
  rings.forEach((r, i) => {
    if (!Array.isArray(r) || !r.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new GenaugError('E_TYPE', `polygons[${i}] must be an array of finite numbers`);
    }
  });
  return new PolygonPool(1, 2 ** 31).pack(rings);
}

/**
 * The polygons of a segmentation as COCO number[][] (the arrays themselves
 * when it is that form, new arrays of the same doubles when packed), or
 * undefined for RLE, null and undefined. The one way consumers read
 * polygons, whichever form the reader gave.
 */
export function polygonRings(seg: unknown): number[][] | undefined {
  if (seg instanceof PackedPolygons) return seg.toArrays();
  if (Array.isArray(seg)) return seg as number[][];
  return undefined;
}

/** The polygons of a segmentation as one Float64Array per ring (what the rasteriser takes), or undefined for RLE, null and undefined. */
export function polygonFloat64Rings(seg: unknown): Float64Array[] | undefined {
  if (seg instanceof PackedPolygons) return seg.toFloat64Rings();
  if (Array.isArray(seg)) return seg.map((r) => Float64Array.from(r as number[]));
  return undefined;
}

/** Whether a segmentation is polygons (arrays or packed), not RLE. */
export function isPolygons(seg: unknown): seg is number[][] | PackedPolygons {
  return seg instanceof PackedPolygons || Array.isArray(seg);
}
