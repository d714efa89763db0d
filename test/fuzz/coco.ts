/**
 * The COCO reader fuzz target: parseCocoBuffer (what readCoco runs on a
 * file's bytes) on mutated annotation files. Most mutations edit the JSON
 * tree (a value replaced by one of the kinds that break readers: null,
 * strings for numbers, 1e308, nested arrays up to 10,000 deep, keys such
 * as __proto__; keys and elements removed or repeated), the rest edit the
 * text's bytes (so the byte scanner meets broken JSON). Whatever is accepted
 * must be consistent (every kept annotation has its image and category, a
 * finite bbox, iscrowd 0 or 1), and when the text is valid JSON, parseCoco
 * on JSON.parse of it must come to the same outcome. With packed polygons
 * the outcome is the same and the dataset stringifies to the same text.
 */
import { GenaugError } from '../../ts/native/errors.js';
import { parseCoco, parseCocoBuffer, type CocoIndex } from '../../ts/io/coco.js';
import { type FuzzTarget, type Rng, int, invariant, mutateBytes, pick } from './engine.js';

const enc = new TextEncoder();
const DEEP = '\u0000deep\u0000';

function seeds(): Uint8Array[] {
  const image = (id: number, w = 64, h = 48) => ({ id, file_name: `img${id}.jpg`, width: w, height: h });
  const docs: unknown[] = [
    {
      images: [image(1)],
      annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [1, 2, 10, 12], area: 120, iscrowd: 0, segmentation: [[1, 2, 11, 2, 11, 14, 1, 14]] }],
      categories: [{ id: 1, name: 'cat', supercategory: 'animal' }],
    },
    {
      info: { year: 2017 },
      licenses: [{ id: 1, name: 'x' }],
      images: [image(1), image(2, 32, 32)],
      annotations: [
        { id: 1, image_id: 1, category_id: 2, bbox: [0, 0, 64, 48], iscrowd: 1, segmentation: { size: [48, 64], counts: '0`0' } },
        { id: 2, image_id: 2, category_id: 1, bbox: [3.5, 4.25, 5, 6], iscrowd: 0, segmentation: { size: [32, 32], counts: [0, 10, 1014] } },
        { id: 3, image_id: 9, category_id: 1, bbox: [0, 0, 1, 1] },
      ],
      categories: [{ id: 1, name: 'dog' }, { id: 2, name: 'person' }],
    },
    {
      images: [{ ...image(7), neg_category_ids: [3], not_exhaustive_category_ids: [] }],
      annotations: [{ id: 10, image_id: 7, category_id: 3, bbox: [10, 10, 5, 5], segmentation: [[10, 10, 15, 10, 15, 15]] }],
      categories: [{ id: 3, name: 'traffic_light', synonyms: ['traffic_light', 'stoplight'], frequency: 'r', image_count: 1 }],
    },
    { images: [], categories: [] },
    { images: [image(1)], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [60, 40, 10, 10], iscrowd: 0 }], categories: [{ id: 1, name: 'a' }] },
  ];
  return docs.map((d) => enc.encode(JSON.stringify(d, null, pick(() => 0.5, [0, 1, 2]))));
}

const VALUES: unknown[] = [
  null, true, false, 0, 1, -1, 0.5, 2 ** 31, 2 ** 53, 1e308, -1e308, 5e-324, '', 'yes', '0', '1', 'x.jpg', '../../etc/passwd', [], {}, [1, 2, 3, 4],
  [0, 0, 1e308, 1], [-1, -1, 2, 2], [[1, 2, 3, 4, 5, 6]], [[1, 2, 3]], [[]], { size: [48, 64], counts: '0' }, { size: [48, 64], counts: [3072] },
  { size: [1, 1] }, { counts: 'x' }, DEEP,
];
const KEYS = [
  'id', 'image_id', 'category_id', 'bbox', 'segmentation', 'iscrowd', 'area', 'width', 'height', 'file_name', 'name', 'size', 'counts',
  '__proto__', 'constructor', 'toString', 'images', 'annotations', 'categories', 'synonyms', 'frequency',
];
const TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u0000', '\\ud800', 'é', '\u00ff', ' ', 'null', '1e999', '-', '"images":', '"__proto__":'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The containers of a JSON tree with, for each, the keys it has. */
function containers(v: Json, out: Array<Json[] | { [k: string]: Json }>, depth = 0): void {
  if (depth > 64 || v === null || typeof v !== 'object') return;
  out.push(v);
  for (const c of Array.isArray(v) ? v : Object.values(v)) containers(c, out, depth + 1);
}

function serialize(v: Json, rng: Rng): string {
  const depth = pick(rng, [64, 64, 64, 64, 2000, 2000, 2000, 2000, 10_000]); // String() and JSON.stringify overflow the stack from about 5,000
  return JSON.stringify(v).replaceAll(JSON.stringify(DEEP), `${'['.repeat(depth)}1${']'.repeat(depth)}`);
}

/** The deepest bracket nesting of JSON bytes (strings ignored roughly: enough to spot the deep values). */
function nesting(b: Uint8Array): number {
  let d = 0;
  let max = 0;
  for (const c of b) {
    if (c === 0x5b || c === 0x7b) max = Math.max(max, ++d);
    else if (c === 0x5d || c === 0x7d) d--;
  }
  return max;
}

function mutateTree(b: Uint8Array, rng: Rng): Uint8Array | undefined {
  // A tree with a deep value cannot be copied or serialised again (stack overflow, slow to reach): bytes only.
  if (nesting(b) > 1000) return undefined;
  let doc: Json;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b)) as Json;
  } catch {
    return undefined;
  }
  const all: Array<Json[] | { [k: string]: Json }> = [];
  containers(doc, all);
  if (all.length === 0) return undefined;
  const c = pick(rng, all);
  const value = structuredClone(pick(rng, VALUES)) as Json;
  if (Array.isArray(c)) {
    const i = int(rng, c.length + 1);
    switch (int(rng, 4)) {
      case 0:
        c.splice(i, 1);
        break;
      case 1:
        if (c.length > 0) c.splice(i, 0, structuredClone(c[int(rng, c.length)]!));
        break;
      default:
        c[Math.min(i, Math.max(0, c.length - 1))] = value;
    }
  } else {
    const keys = Object.keys(c);
    if (keys.length > 0 && int(rng, 4) === 0) delete c[pick(rng, keys)];
    else {
      const key = keys.length > 0 && int(rng, 2) === 0 ? pick(rng, keys) : pick(rng, KEYS);
      Object.defineProperty(c, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  try {
    return enc.encode(serialize(doc, rng));
  } catch {
    return undefined; // a tree too deep to serialise again
  }
}

function mutate(b: Uint8Array, rng: Rng): Uint8Array {
  if (int(rng, 4) !== 0 && b.length < 4_000_000) {
    let m: Uint8Array | undefined;
    try {
      m = mutateTree(b, rng);
    } catch {
      m = undefined; // a tree too deep to copy: mutate the bytes instead
    }
    if (m) return m;
  }
  return mutateBytes(b, rng, TOKENS);
}

function check(idx: CocoIndex): void {
  const { dataset, imageById, categoryById, annotationsByImage } = idx;
  for (const im of dataset.images) invariant(Number.isSafeInteger(im.width) && im.width > 0 && Number.isSafeInteger(im.height) && im.height > 0, 'images have a positive size');
  let n = 0;
  for (const list of annotationsByImage.values()) n += list.length;
  invariant(n === dataset.annotations.length, 'every annotation is indexed under its image');
  for (const a of dataset.annotations) {
    invariant(imageById.has(a.image_id) && categoryById.has(a.category_id), 'kept annotations have their image and category');
    invariant(Array.isArray(a.bbox) && a.bbox.length === 4 && a.bbox.every(Number.isFinite) && a.bbox[2]! >= 0 && a.bbox[3]! >= 0, 'a finite bbox');
    invariant(a.iscrowd === 0 || a.iscrowd === 1, 'iscrowd 0 or 1');
    invariant(Number.isFinite(a.area), 'a finite area');
  }
}

type Outcome = { ok: true; images: number; annotations: number; problems: number } | { ok: false; code: string };

function outcome(f: () => CocoIndex): Outcome {
  try {
    const idx = f();
    check(idx);
    return { ok: true, images: idx.dataset.images.length, annotations: idx.dataset.annotations.length, problems: idx.problems.length };
  } catch (e) {
    if (e instanceof GenaugError && e.constructor === GenaugError) return { ok: false, code: e.code };
    throw e;
  }
}

function run(input: Uint8Array): void {
  let arrays: CocoIndex | undefined;
  const a = outcome(() => (arrays = parseCocoBuffer(input, 'fuzz.json')));
  // Packed polygons: the same outcome, and the same dataset once written as JSON (toJSON gives the arrays back).
  let packed: CocoIndex | undefined;
  const p = outcome(() => (packed = parseCocoBuffer(input, 'fuzz.json', { polygons: 'packed' })));
  invariant(JSON.stringify(a) === JSON.stringify(p), `packed and arrays agree: ${JSON.stringify(a)} vs ${JSON.stringify(p)}`);
  if (a.ok && nesting(input) < 1000) invariant(JSON.stringify(packed!.dataset) === JSON.stringify(arrays!.dataset), 'a packed dataset writes as the arrays one');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(input));
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined) {
    const b = outcome(() => parseCoco(parsed, 'fuzz.json'));
    invariant(JSON.stringify(a) === JSON.stringify(b), `parseCocoBuffer and parseCoco agree: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
  if (!a.ok) throw new GenaugError(a.code as never, 'refused');
}

export const cocoTarget: FuzzTarget = { name: 'coco', seeds: seeds(), mutate, run };
