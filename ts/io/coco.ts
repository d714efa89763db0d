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
import { readFile, stat } from 'node:fs/promises';

import { GenaugError } from '../native/errors.js';
import { ioError, writeFileAtomic } from './atomic.js';

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

export type CocoSegmentation = number[][] | CocoRle;

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
  /** Largest file accepted, in bytes (default 2 GiB; V8 cannot hold a longer string). */
  maxBytes?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function formatError(source: string, where: string, what: string): GenaugError {
  return new GenaugError('E_FORMAT', `${source}: ${where} ${what}`, { path: source, where });
}

/** Parses and checks COCO JSON text (or an already parsed object). */
export function parseCoco(input: string | unknown, source = '<coco>', options: ReadCocoOptions = {}): CocoIndex {
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
      problem(where, 'dangling-image', `(id ${a.id}) refers to image ${String(a.image_id)}, which is not in "images"`);
      return;
    }
    if (!isInt(a.category_id) || !categoryById.has(a.category_id)) {
      problem(where, 'dangling-category', `(id ${a.id}) refers to category ${String(a.category_id)}, which is not in "categories"`);
      return;
    }
    const b = a.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every(isFiniteNumber) || (b[2] as number) < 0 || (b[3] as number) < 0) {
      problem(where, 'bad-bbox', `(id ${a.id}) needs "bbox" [x, y, w, h] with finite numbers and w, h ≥ 0`);
      return;
    }
    const seg = a.segmentation;
    if (seg !== undefined && seg !== null) {
      const okPolygons = Array.isArray(seg) && seg.every((p) => Array.isArray(p) && p.length >= 6 && p.length % 2 === 0 && p.every(isFiniteNumber));
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
      }
    }
    const ann = a as CocoAnnotation;
    if (ann.iscrowd !== 1) ann.iscrowd = 0;
    if (!isFiniteNumber(ann.area)) ann.area = (b[2] as number) * (b[3] as number);
    if (seg === null) delete ann.segmentation;
    annotations.push(ann);
    annotationsByImage.get(ann.image_id)!.push(ann);
  });

  const dataset: CocoDataset = { ...(raw as Record<string, unknown>), images, annotations, categories: [...categoryById.values()] };
  return { dataset, imageById, categoryById, annotationsByImage, problems, source };
}

/** Reads and checks a COCO/LVIS annotation file. */
export async function readCoco(path: string, options: ReadCocoOptions = {}): Promise<CocoIndex> {
  const maxBytes = options.maxBytes ?? 2 ** 31;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw ioError(path, path, 'read it', e);
  }
  if (size > maxBytes) {
    throw new GenaugError('E_LIMIT', `${path} is ${size} bytes, over the ${maxBytes}-byte limit for one COCO file; split it by images`, { path });
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw ioError(path, path, 'read it', e);
  }
  return parseCoco(text, path, options);
}

/** Writes a COCO dataset as compact JSON, atomically. */
export async function writeCoco(path: string, dataset: CocoDataset): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(dataset) + '\n'));
}

/** The category name as a prompt word: LVIS names use `_` for spaces and may carry a `_(sense)` suffix. */
export function displayName(category: Pick<CocoCategory, 'name'>): string {
  return category.name.replace(/_\([^)]*\)$/, '').replace(/_/g, ' ').trim();
}
