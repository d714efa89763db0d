/**
 * COCO / LVIS instance annotations: a checked reader and an atomic writer.
 *
 * The reader validates the structure field by field and indexes it. Problems
 * that make one annotation unusable (an image id that does not exist, a
 * category id that does not exist, a malformed box) are collected in
 * `problems` and the annotation is skipped, so a large file with a few bad
 * rows still loads; `strict: true` turns the first problem into an error.
 * Problems with the file as a whole (not JSON, no images array, duplicate
 * ids) are always errors (E_FORMAT, naming the file, the field and the index).
 * Fields genaug does not know (LVIS `frequency`, `synset`, `def`,
 * `neg_category_ids`, ...) are kept as they are.
 */

import { GenaugError } from '../native/errors.js';
import { readSync } from 'node:fs';

import { ioError } from '../native/errors.js';
import { AtomicWriter, openForReading } from './atomic.js';
import { PackedPolygons, PolygonPool } from './polygons.js';

export { PackedPolygons, packPolygons, polygonRings, polygonFloat64Rings, isPolygons } from './polygons.js';

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  [extra: string]: unknown;
}

export interface CocoRle {
  size: [number, number];
  counts: string | number[];
}

/**
 * Polygons (COCO's number[][], or PackedPolygons when read with `polygons:
 * 'packed'`) or RLE. Read polygons through polygonRings / polygonFloat64Rings
 * (or segmentationToRle), which take both forms.
 */
export type CocoSegmentation = number[][] | PackedPolygons | CocoRle;

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  segmentation?: CocoSegmentation;
  [extra: string]: unknown;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  /** LVIS: r (≤ 10 training images), c (11–100), f (> 100). */
  frequency?: 'r' | 'c' | 'f';
  /** LVIS: the WordNet gloss. */
  def?: string;
  synset?: string;
  synonyms?: string[];
  [extra: string]: unknown;
}

export interface CocoProblem {
  /** Where: `annotations[12]`, `images[3]`, ... */
  where: string;
  /** What kind: dangling-image, dangling-category, bad-bbox, bad-segmentation, bad-image. */
  kind: string;
  message: string;
}

export interface CocoDataset {
  info?: unknown;
  licenses?: unknown[];
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  [extra: string]: unknown;
}

export interface CocoIndex {
  /** The dataset, with unusable annotations removed. */
  dataset: CocoDataset;
  imageById: Map<number, CocoImage>;
  categoryById: Map<number, CocoCategory>;
  /** Annotations per image id, in file order (every image present, possibly empty). */
  annotationsByImage: Map<number, CocoAnnotation[]>;
  /** What was skipped and why. */
  problems: CocoProblem[];
  /** The file it came from, for messages. */
  source: string;
}

export interface ReadCocoOptions {
  /** Throw on the first problem instead of skipping the annotation (default false). */
  strict?: boolean;
  /** Largest file accepted, in bytes (default 4 GiB, a Node buffer's limit). */
  maxBytes?: number;
  /**
   * The form of polygon segmentations: 'arrays' (default), COCO's number[][];
   * 'packed', a PackedPolygons per annotation, the same doubles in shared
   * fixed-point storage (about half the memory of the arrays; JSON.stringify and
   * writeCoco write the same bytes). An empty list (`[]`) and RLE stay as
   * they are. What every genaug command uses.
   */
  polygons?: 'arrays' | 'packed';
}

/** Whether seg is COCO polygons as the reader accepts them: rings of ≥ 3 points of finite numbers. */
function isPolygonList(seg: unknown): seg is number[][] {
  return Array.isArray(seg) && seg.every((p) => Array.isArray(p) && p.length >= 6 && p.length % 2 === 0 && p.every(isFiniteNumber));
}

function polygonsOption(options: ReadCocoOptions): 'arrays' | 'packed' {
  const p = options.polygons ?? 'arrays';
  if (p !== 'arrays' && p !== 'packed') throw new GenaugError('E_ARGUMENT', `polygons must be 'arrays' or 'packed', got ${shown(p)}`);
  return p;
}

/** Packs one parsed annotation's polygons in place (only valid non-empty ones: the checks later see the rest as they were). */
function packAnnotation(a: unknown, pool: PolygonPool): unknown {
  if (isObject(a)) {
    const seg = a.segmentation;
    if (Array.isArray(seg) && seg.length > 0 && isPolygonList(seg)) a.segmentation = pool.pack(seg);
  }
  return a;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * A value from the file as a message quotes it: numbers, booleans and null as
 * they are, strings quoted and cut at 60 characters, arrays and objects by
 * kind (String() or JSON.stringify of an array nested 5,000 deep overflows
 * the stack).
 */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}

function formatError(source: string, where: string, what: string): GenaugError {
  return new GenaugError('E_FORMAT', `${source}: ${where} ${what}`, { path: source, where });
}

/** Parses and checks COCO JSON text (or an already parsed object). */
export function parseCoco(input: string | unknown, source = '<coco>', options: ReadCocoOptions = {}): CocoIndex {
  return checkCoco(input, source, options, polygonsOption(options) === 'packed' ? new PolygonPool() : undefined);
}

/** parseCoco, packing polygons into `pool` when given (and turning packed ones back into arrays when not). */
function checkCoco(input: string | unknown, source: string, options: ReadCocoOptions, pool: PolygonPool | undefined): CocoIndex {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      throw new GenaugError('E_FORMAT', `${source} is not valid JSON: ${(e as Error).message}`, { path: source });
    }
  }
  if (!isObject(raw)) throw formatError(source, 'the top level', 'must be an object with images, annotations and categories');
  for (const key of ['images', 'categories'] as const) {
    if (!Array.isArray(raw[key])) throw formatError(source, `"${key}"`, 'must be an array');
  }
  if (raw.annotations !== undefined && !Array.isArray(raw.annotations)) throw formatError(source, '"annotations"', 'must be an array');
  const problems: CocoProblem[] = [];
  const problem = (where: string, kind: string, message: string) => {
    if (options.strict) throw formatError(source, where, message);
    problems.push({ where, kind, message });
  };

  const imageById = new Map<number, CocoImage>();
  const images: CocoImage[] = [];
  (raw.images as unknown[]).forEach((im, i) => {
    const where = `images[${i}]`;
    if (!isObject(im) || !isInt(im.id)) throw formatError(source, where, 'must be an object with an integer "id"');
    if (imageById.has(im.id)) throw formatError(source, where, `repeats image id ${im.id}`);
    if (typeof im.file_name !== 'string' || !isInt(im.width) || !isInt(im.height) || im.width <= 0 || im.height <= 0) {
      problem(where, 'bad-image', `(id ${im.id}) needs a string "file_name" and positive integer "width" and "height"`);
      return;
    }
    imageById.set(im.id, im as CocoImage);
    images.push(im as CocoImage);
  });

  const categoryById = new Map<number, CocoCategory>();
  (raw.categories as unknown[]).forEach((c, i) => {
    const where = `categories[${i}]`;
    if (!isObject(c) || !isInt(c.id) || typeof c.name !== 'string') {
      throw formatError(source, where, 'must be an object with an integer "id" and a string "name"');
    }
    if (categoryById.has(c.id)) throw formatError(source, where, `repeats category id ${c.id}`);
    categoryById.set(c.id, c as CocoCategory);
  });

  const annotationsByImage = new Map<number, CocoAnnotation[]>();
  for (const im of images) annotationsByImage.set(im.id, []);
  const annotations: CocoAnnotation[] = [];
  const annotationIds = new Set<number>();
  ((raw.annotations as unknown[] | undefined) ?? []).forEach((a, i) => {
    const where = `annotations[${i}]`;
    if (!isObject(a) || !isInt(a.id)) throw formatError(source, where, 'must be an object with an integer "id"');
    if (annotationIds.has(a.id)) throw formatError(source, where, `repeats annotation id ${a.id}`);
    annotationIds.add(a.id);
    if (!isInt(a.image_id) || !imageById.has(a.image_id)) {
      problem(where, 'dangling-image', `(id ${a.id}) refers to image ${shown(a.image_id)}, which is not in "images"`);
      return;
    }
    if (!isInt(a.category_id) || !categoryById.has(a.category_id)) {
      problem(where, 'dangling-category', `(id ${a.id}) refers to category ${shown(a.category_id)}, which is not in "categories"`);
      return;
    }
    const b = a.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every(isFiniteNumber) || (b[2] as number) < 0 || (b[3] as number) < 0) {
      problem(where, 'bad-bbox', `(id ${a.id}) needs "bbox" [x, y, w, h] with finite numbers and w, h ≥ 0`);
      return;
    }
    {
      // A box far outside its image (beyond one image size on any side) is malformed, not a huge object: it would turn
      // size priors into Infinity/null and paste boxes off the canvas.
      const im = imageById.get(a.image_id)!;
      const [x, y, w, h] = b as [number, number, number, number];
      if (x < -im.width || y < -im.height || x + w > 2 * im.width || y + h > 2 * im.height) {
        problem(where, 'bad-bbox', `(id ${a.id}) has "bbox" [${b.join(', ')}], far outside its ${im.width} x ${im.height} image`);
        return;
      }
    }
    const seg = a.segmentation;
    if (seg !== undefined && seg !== null) {
      const okPolygons = seg instanceof PackedPolygons || isPolygonList(seg);
      const okRle =
        isObject(seg) &&
        Array.isArray(seg.size) &&
        seg.size.length === 2 &&
        seg.size.every(isInt) &&
        (typeof seg.counts === 'string' || (Array.isArray(seg.counts) && seg.counts.every(isInt)));
      if (!okPolygons && !okRle) {
        problem(where, 'bad-segmentation', `(id ${a.id}) has a "segmentation" that is neither polygons [[x, y, ...]] nor RLE {size, counts}`);
        return;
      }
      if (okRle) {
        const im = imageById.get(a.image_id)!;
        const [h, w] = (seg as { size: number[] }).size as [number, number];
        if (h !== im.height || w !== im.width) {
          problem(where, 'bad-segmentation', `(id ${a.id}) has RLE size [${h}, ${w}] but its image is ${im.height}×${im.width}`);
          return;
        }
        const bad = rleCountsProblem((seg as { counts: string | number[] }).counts, h * w);
        if (bad) {
          problem(where, 'bad-segmentation', `(id ${a.id}) has RLE counts that ${bad}`);
          return;
        }
      }
    }
    // iscrowd is 0 or 1 (COCO); a value like "yes" or 2 is not silently read as 0 (a crowd region pasted over).
    if (a.iscrowd !== undefined && a.iscrowd !== 0 && a.iscrowd !== 1) {
      problem(where, 'bad-iscrowd', `(id ${a.id}) has "iscrowd": ${shown(a.iscrowd)}; COCO allows 0 or 1`);
      return;
    }
    const ann = a as CocoAnnotation;
    if (ann.iscrowd !== 1) ann.iscrowd = 0;
    if (!isFiniteNumber(ann.area)) ann.area = (b[2] as number) * (b[3] as number);
    if (seg === null) delete ann.segmentation;
    else if (pool && Array.isArray(seg) && seg.length > 0) ann.segmentation = pool.pack(seg as number[][]);
    else if (!pool && seg instanceof PackedPolygons) ann.segmentation = seg.toArrays();
    annotations.push(ann);
    annotationsByImage.get(ann.image_id)!.push(ann);
  });

  const dataset: CocoDataset = { ...(raw as Record<string, unknown>), images, annotations, categories: [...categoryById.values()] };
  return { dataset, imageById, categoryById, annotationsByImage, problems, source };
}

/**
 * Bytes of JSON text seen through a window: buf[0, len) are the bytes from
 * offset `base` of the input; more(keep) drops buf[0, keep), appends the next
 * bytes (growing buf when a single value needs it) and sets eof at the end.
 */
interface ByteWindow {
  buf: Uint8Array;
  len: number;
  base: number;
  eof: boolean;
  more(keep: number): void;
}

/** A window over a file, read with positional reads of `chunk` bytes: memory is the window, not the file. */
function fileWindow(fd: number, size: number, start: number, chunk: number, source: string): ByteWindow {
  const w: ByteWindow = {
    buf: Buffer.allocUnsafe(Math.min(Math.max(size - start, 1), chunk)),
    len: 0,
    base: start,
    eof: false,
    more(keep: number) {
      this.buf.copyWithin(0, keep, this.len);
      this.len -= keep;
      this.base += keep;
      const want = Math.min(chunk, size - (this.base + this.len));
      if (want <= 0) {
        this.eof = true;
        return;
      }
      if (this.len + want > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + want));
        grown.set(this.buf.subarray(0, this.len));
        this.buf = grown;
      }
      let got = 0;
      while (got < want) {
        let n: number;
        try {
          n = readSync(fd, this.buf, this.len + got, want - got, this.base + this.len + got);
        } catch (e) {
          throw ioError(source, source, `read ${want - got} bytes at offset ${this.base + this.len + got}`, e);
        }
        if (n === 0) throw new GenaugError('E_FORMAT', `${source} got shorter while it was read (${this.base + this.len + got} of ${size} bytes)`, { path: source });
        got += n;
      }
      this.len += got;
      if (this.base + this.len >= size) this.eof = true;
    },
  };
  w.more(0);
  return w;
}

/**
 * The top-level object of COCO JSON, with each element of the big arrays
 * (images, annotations, categories) parsed on its own from the window: no
 * string of the whole text (V8 caps a string at about 512 MiB, and LVIS v1
 * train is 1.1 GB), and with a file window no buffer of the whole file either.
 * Malformed JSON gives E_FORMAT with the byte offset.
 */
function scanCoco(w: ByteWindow, source: string, onAnnotation?: (a: unknown) => unknown): Record<string, unknown> {
  const bad = (at: number, what: string) =>
    new GenaugError('E_FORMAT', `${source} is not valid JSON: ${what} at byte ${w.base + at}`, { path: source, offset: w.base + at });
  const ws = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  let i = 0;
  const skipWs = () => {
    for (;;) {
      while (i < w.len && ws(w.buf[i])) i++;
      if (i < w.len || w.eof) return;
      w.more(i);
      i = 0;
    }
  };
  // The byte at i (after whitespace), undefined at the end of the input.
  const peek = (): number | undefined => {
    skipWs();
    return i < w.len ? w.buf[i] : undefined;
  };
  // End (exclusive) of the JSON value starting at `start`, or -1 when the window ends first (and more input follows).
  const valueEnd = (start: number): number => {
    const buf = w.buf;
    const len = w.len;
    let j = start;
    let depth = 0;
    do {
      if (j >= len) {
        if (!w.eof) return -1;
        throw bad(j, 'unexpected end of input');
      }
      const c = buf[j];
      if (c === 0x22) {
        j++;
        while (j < len && buf[j] !== 0x22) j += buf[j] === 0x5c ? 2 : 1;
        if (j >= len) {
          if (!w.eof) return -1;
          throw bad(start, 'unterminated string');
        }
        j++;
      } else if (c === 0x7b || c === 0x5b) {
        depth++;
        j++;
      } else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth < 0) throw bad(j, 'unbalanced bracket');
        j++;
      } else if (depth === 0 && (c === 0x2c || ws(c))) {
        break;
      } else j++;
      // A scalar that reaches the window's end may go on in the next bytes.
      if (depth === 0 && j >= len && !w.eof) return -1;
    } while (depth > 0 || (j < len && buf[j] !== 0x2c && buf[j] !== 0x3a && buf[j] !== 0x7d && buf[j] !== 0x5d && !ws(buf[j])));
    return j;
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // The value at i, parsed; i moves past it.
  // withIscrowd (annotations): an object that has no "iscrowd" is parsed with "iscrowd":0 appended, what the checks
  // would add anyway (as its last key, the same order), so V8 makes it with that field in place instead of growing
  // the object afterwards (about 40 bytes less per LVIS annotation). Only where the text shows for sure that the key
  // is absent: no "iscrowd" anywhere and no backslash (an escaped key could spell it).
  const value = (withIscrowd = false): unknown => {
    skipWs();
    for (;;) {
      const e = valueEnd(i);
      if (e >= 0) {
        const s = i;
        i = e;
        try {
          const text = decoder.decode(w.buf.subarray(s, e));
          if (withIscrowd && text.charCodeAt(0) === 0x7b && !text.includes('"iscrowd"') && !text.includes('\\') && /[^\s{]\s*\}$/.test(text)) {
            try {
              return JSON.parse(`${text.slice(0, -1)},"iscrowd":0}`);
            } catch {
              // Malformed: the error below is the one of the text as it is.
            }
          }
          return JSON.parse(text);
        } catch (err) {
          throw bad(s, (err as Error).message);
        }
      }
      w.more(i);
      i = 0;
    }
  };
  const BIG = new Set(['images', 'annotations', 'categories']);
  // No prototype: a top-level "__proto__" key is stored like any other key, not made the object's prototype.
  const raw = Object.create(null) as Record<string, unknown>;
  if (peek() !== 0x7b) throw formatError(source, 'the top level', 'must be an object with images, annotations and categories');
  i++;
  if (peek() === 0x7d) i++;
  else {
    for (;;) {
      if (peek() !== 0x22) throw bad(i, 'expected a key');
      const key = value() as string;
      if (peek() !== 0x3a) throw bad(i, 'expected ":"');
      i++;
      if (BIG.has(key) && peek() === 0x5b) {
        const items: unknown[] = [];
        const each = key === 'annotations' ? onAnnotation : undefined;
        i++;
        if (peek() === 0x5d) i++;
        else {
          for (;;) {
            const item = value(key === 'annotations');
            items.push(each ? each(item) : item);
            const c = peek();
            if (c === 0x2c) i++;
            else if (c === 0x5d) {
              i++;
              break;
            } else throw bad(i, `expected "," or "]" in "${key}"`);
          }
        }
        raw[key] = items;
      } else {
        raw[key] = value();
      }
      const c = peek();
      if (c === 0x2c) i++;
      else if (c === 0x7d) {
        i++;
        break;
      } else throw bad(i, 'expected "," or "}" after a top-level value');
    }
  }
  if (peek() !== undefined) throw bad(i, 'trailing data after the top-level object');
  return raw;
}

/**
 * Parses COCO JSON held in a buffer without making one string of it (see
 * scanCoco); readCoco streams a file through the same scanner.
 */
export function parseCocoBuffer(buf: Uint8Array, source = '<coco>', options: ReadCocoOptions = {}): CocoIndex {
  const w: ByteWindow = { buf, len: buf.length, base: 0, eof: true, more: () => undefined };
  return scanAndCheck(w, source, options);
}

/**
 * scanCoco then the checks; with `polygons: 'packed'` each annotation's
 * polygons are packed right after that annotation is parsed, so the arrays
 * of only one annotation exist at a time.
 */
function scanAndCheck(w: ByteWindow, source: string, options: ReadCocoOptions): CocoIndex {
  const pool = polygonsOption(options) === 'packed' ? new PolygonPool() : undefined;
  return checkCoco(scanCoco(w, source, pool ? (a) => packAnnotation(a, pool) : undefined), source, options, pool);
}

/**
 * Why RLE counts (uncompressed numbers, or the compressed string of
 * pycocotools) do not describe `pixels` pixels, or undefined when they do: a
 * mask that would decode to garbage or fail later (in paste, embed, export)
 * is a recorded problem here.
 */
function rleCountsProblem(counts: string | number[], pixels: number): string | undefined {
  let sum = 0;
  if (typeof counts === 'string') {
    // pycocotools rleFrString: 5 bits per character from '0' (48), bit 0x20 continues, bit 0x10 of the last is the sign;
    // from the third run on, each value is a difference to the run two before.
    const runs: number[] = [];
    let p = 0;
    while (p < counts.length) {
      let x = 0;
      let k = 0;
      let more = true;
      while (more) {
        if (p >= counts.length) return 'end in the middle of a number';
        const c = counts.charCodeAt(p) - 48;
        if (c < 0 || c > 63) return `have the character ${JSON.stringify(counts[p])} at ${p}, outside '0'..'o'`;
        x += (c & 0x1f) * 2 ** (5 * k);
        more = (c & 0x20) !== 0;
        p++;
        k++;
        if (!more && c & 0x10) x -= 2 ** (5 * k);
        if (k > 10) return 'hold a number too large for a mask';
      }
      if (runs.length > 2) x += runs[runs.length - 2] as number;
      if (x < 0) return `give the negative run length ${x} at run ${runs.length}`;
      runs.push(x);
      sum += x;
    }
  } else {
    for (const [i, x] of counts.entries()) {
      if (x < 0) return `give the negative run length ${x} at run ${i}`;
      sum += x;
    }
  }
  return sum === pixels ? undefined : `add up to ${sum} pixels, not height x width = ${pixels}`;
}

/**
 * Reads and checks a COCO/LVIS annotation file (files over 512 MiB, such as
 * LVIS train, included), streaming: the text goes through a window of
 * `chunkBytes` (default 1 MiB), so the memory it takes is the parsed dataset,
 * not the file as well.
 */
export async function readCoco(path: string, options: ReadCocoOptions & { chunkBytes?: number } = {}): Promise<CocoIndex> {
  polygonsOption(options);
  const maxBytes = options.maxBytes ?? 4 * 2 ** 30 - 1;
  // Only a regular file: /dev/zero or a FIFO named as the COCO file is E_IO, not an endless read.
  const { fh, size } = await openForReading(path, path);
  try {
    if (size > maxBytes) throw new GenaugError('E_LIMIT', `${path} is over the ${maxBytes}-byte limit for one COCO file; split it by images`, { path });
    const chunk = options.chunkBytes ?? 1 << 20;
    if (!Number.isSafeInteger(chunk) || chunk < 1) throw new GenaugError('E_RANGE', `chunkBytes must be a positive integer, got ${String(chunk)}`);
    // A UTF-8 byte-order mark (some editors write one) is not part of the JSON.
    const head = Buffer.alloc(3);
    if (size >= 3) readSync(fh.fd, head, 0, 3, 0);
    const start = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
    return scanAndCheck(fileWindow(fh.fd, size, start, chunk, path), path, options);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Writes a COCO dataset as compact JSON, atomically, one array element at a
 * time, so outputs larger than a JavaScript string (LVIS-sized) work.
 */
export async function writeCoco(path: string, dataset: CocoDataset): Promise<void> {
  const w = await AtomicWriter.open(path);
  const enc = new TextEncoder();
  let pending: string[] = [];
  let size = 0;
  const put = async (s: string) => {
    pending.push(s);
    size += s.length;
    if (size > 1 << 22) {
      const chunk = pending.join('');
      pending = [];
      size = 0;
      await w.write(enc.encode(chunk));
    }
  };
  try {
    await put('{');
    let first = true;
    for (const [key, value] of Object.entries(dataset)) {
      if (value === undefined) continue;
      await put(`${first ? '' : ','}${JSON.stringify(key)}:`);
      first = false;
      if (Array.isArray(value)) {
        await put('[');
        for (let k = 0; k < value.length; k++) await put((k ? ',' : '') + (JSON.stringify(value[k]) ?? 'null'));
        await put(']');
      } else await put(JSON.stringify(value) ?? 'null');
    }
    await put('}\n');
    await w.write(enc.encode(pending.join('')));
    await w.commit();
  } catch (e) {
    await w.abort().catch(() => undefined);
    throw e;
  }
}

/** The category name as a prompt word: LVIS names use `_` for spaces and may carry a `_(sense)` suffix. */
export function displayName(category: Pick<CocoCategory, 'name'>): string {
  return category.name.replace(/_\([^)]*\)$/, '').replace(/_/g, ' ').trim();
}
