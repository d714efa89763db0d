/**
 * Classification sets, the dataset ALIA, caption-as-prompt and "Diversify,
 * Don't Fine-Tune" train on: whole (generated or edited, optionally real)
 * images with one class label each, written as
 * - ImageFolder: OUT/imagefolder/train/<class>/<file>, readable by
 *   torchvision.datasets.ImageFolder unchanged (its class index is the
 *   position of the folder name in sorted order);
 * - WebDataset: OUT/webdataset/{000000..}.tar with `<key>.<ext>` (the image
 *   bytes), `<key>.cls` (the class index, ASCII digits), `<key>.txt` (the
 *   class name) and `<key>.json` (source file, class, origin, prompt);
 * and OUT/classes.txt, the class index order both share (line i = class i):
 * the folder names sorted as ImageFolder sorts them, so the two readers
 * agree. Image bytes are copied unchanged. Same inputs, same bytes.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';

import { writeFileAtomic } from '../io/atomic.js';
import { IMAGE_EXTENSIONS } from '../io/images.js';
import { checkWithin, manifestImage } from '../io/roots.js';
import { ShardWriter } from '../io/webdataset.js';
import { streamOrder, type StreamShard } from './stream.js';
import { GenaugError } from '../native/errors.js';
import { readJsonObjects } from '../util/jsonl.js';

export type ClassificationFormat = 'imagefolder' | 'webdataset';
export const CLASSIFICATION_FORMATS: readonly ClassificationFormat[] = ['imagefolder', 'webdataset'];

/** One labelled image. */
export interface LabelledImage {
  /** The image file (absolute, or relative to the working folder). */
  path: string;
  /** Its class name. */
  label: string;
  /** Where it came from ('generated', 'real', ...), kept in the WebDataset json. */
  origin: string;
  /** The sample id of the scores table / kept list (a manifest line's id, else its file). */
  id: string;
  /** The prompt that made it, when known. */
  prompt?: string;
}

export interface ClassificationExportOptions {
  items: LabelledImage[];
  out: string;
  formats?: readonly ClassificationFormat[];
  /** WebDataset samples per shard (default 1000). */
  shardSize?: number;
}

export interface ClassificationExportSummary {
  images: number;
  classes: string[];
  perClass: Record<string, number>;
  outputs: string[];
}

/**
 * A class name as one folder name: path separators, NUL and a leading dot
 * (".", "..", hidden folders, which ImageFolder would skip) replaced by "_".
 * Two classes that map to one folder are refused by the export.
 */
export function classFolder(name: string): string {
  const f = name.replace(/[/\\\0]/g, '_').replace(/^\./, '_');
  return f === '' ? '_' : f;
}

/** Python's sort of str (by code point), which torchvision's find_classes uses. */
const byCodePoint = (a: string, b: string): number => {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
};

/**
 * Labelled images from a manifest (JSON lines): the image found as every
 * manifest reader finds it (`file` under `images`, else the line's `path` or
 * `file` from the manifest's folder), the class from `label` or `category`,
 * restricted to the ids in `kept` when given. Files outside the folder are refused.
 */
export async function readLabelledManifest(manifest: string, o: { images?: string; origin: string; kept?: Set<string> }): Promise<LabelledImage[]> {
  const out: LabelledImage[] = [];
  for (const { line, value } of await readJsonObjects(manifest, 'the manifest')) {
    const id = typeof value.id === 'string' && value.id ? value.id : value.file;
    if (typeof id !== 'string' || !id) throw new GenaugError('E_FORMAT', `${manifest}:${line}: each line needs a "file" (or "id") string`, { path: manifest, line });
    if (o.kept && !o.kept.has(id)) continue;
    const label = value.label ?? value.category;
    if (typeof label !== 'string' || !label) throw new GenaugError('E_FORMAT', `${manifest}:${line}: the line has no "label" (or "category") class name`, { path: manifest, line });
    const { root, name } = manifestImage(value, manifest, o.images);
    if (!name) throw new GenaugError('E_FORMAT', `${manifest}:${line}: the line names no image ("file" or "path")`, { path: manifest, line });
    const path = await checkWithin(root, name, `${manifest}:${line}: image`);
    out.push({ path, label, origin: o.origin, id, ...(typeof value.prompt === 'string' ? { prompt: value.prompt } : {}) });
  }
  return out;
}

interface NamedSample extends LabelledImage {
  /** Its file name in the ImageFolder class folder. */
  file: string;
  /** The image field's extension (jpg, png, webp, ...). */
  ext: string;
  /** Its WebDataset key. */
  key: string;
}

/**
 * The classification set's classes (ImageFolder's order) and samples (file names, WebDataset keys) as the export
 * writes them, in WebDataset order (by key). Refuses an empty list and two classes on one folder.
 */
export function classificationSamples(items: readonly LabelledImage[]): { classes: string[]; folders: string[]; folderOf: Map<string, string>; index: Map<string, number>; samples: NamedSample[] } {
  if (items.length === 0) throw new GenaugError('E_EMPTY', 'the classification set would be empty: no labelled image was given (or none was kept)');
  // Classes by folder name, in ImageFolder's order; two names on one folder would merge two classes.
  const folderOf = new Map<string, string>();
  const nameOf = new Map<string, string>();
  for (const it of items) {
    const f = classFolder(it.label);
    const other = nameOf.get(f);
    if (other !== undefined && other !== it.label) throw new GenaugError('E_ARGUMENT', `classes '${other}' and '${it.label}' would share the folder '${f}'; rename one`);
    nameOf.set(f, it.label);
    folderOf.set(it.label, f);
  }
  const folders = [...nameOf.keys()].sort(byCodePoint);
  const classes = folders.map((f) => nameOf.get(f) as string);
  const index = new Map(classes.map((c, i) => [c, i]));
  // Unique file names per class folder: the source name, or name_<hash> when two sources share it.
  const seen = new Map<string, number>();
  for (const it of items) seen.set(`${it.label}\0${basename(it.path)}`, (seen.get(`${it.label}\0${basename(it.path)}`) ?? 0) + 1);
  const named = items.map((it) => {
    const ext = extname(it.path).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext)) throw new GenaugError('E_FORMAT', `${it.path}: not an image file name (${IMAGE_EXTENSIONS.join(' ')})`, { path: it.path });
    const stem = basename(it.path, extname(it.path));
    const clash = (seen.get(`${it.label}\0${basename(it.path)}`) ?? 0) > 1;
    const tag = clash ? `_${createHash('sha256').update(`${it.origin}\0${resolve(it.path)}`).digest('hex').slice(0, 8)}` : '';
    const file = `${stem}${tag}${ext}`;
    const key = `${String(index.get(it.label)).padStart(4, '0')}_${createHash('sha256').update(`${it.label}\0${file}`).digest('hex').slice(0, 16)}`;
    return { ...it, file, ext: ext.slice(1) === 'jpeg' ? 'jpg' : ext.slice(1), key };
  });
  const samples = [...named].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { classes, folders, folderOf, index, samples };
}

/** The WebDataset fields of one sample: the image bytes unchanged, cls (index), txt (class name), json. */
async function sampleFields(it: NamedSample, index: Map<string, number>): Promise<Record<string, Uint8Array>> {
  const bytes = await readFile(it.path);
  const enc = (s: string) => new TextEncoder().encode(s);
  return {
    [it.ext]: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    cls: enc(String(index.get(it.label))),
    txt: enc(it.label),
    json: enc(JSON.stringify({ file: it.file, class: it.label, cls: index.get(it.label), origin: it.origin, id: it.id, ...(it.prompt ? { prompt: it.prompt } : {}) })),
  };
}

export interface ClassificationStreamOptions {
  items: LabelledImage[];
  seed: number;
  /** Passes over the set (default Infinity: endless). */
  epochs?: number;
  /** This stream's shard of the sample sequence (default 0 of 1). */
  shard?: StreamShard;
  /** Shuffle per epoch by (seed, epoch) (default true); false: the offline WebDataset order (by key). */
  shuffle?: boolean;
  /** Told about each image that cannot be read (left out; the stream goes on). */
  onSkip?: (record: { file: string; epoch: number; reason: string }) => void;
}

/**
 * The classification set as a stream of WebDataset samples (`genaug export classification --stream`): each sample
 * is the offline shards' sample for that image, the same fields byte for byte, under the key `<key>_<epoch>`.
 * The order and sharding are the paste stream's (streamOrder): epoch e visits every image once, shuffled by
 * (seed, e); shard I of N takes the positions g with g mod N = I. An image that cannot be read is left out and
 * reported; a stream where every image fails is E_EMPTY.
 */
export async function* classificationStream(o: ClassificationStreamOptions): AsyncGenerator<{ key: string; fields: Record<string, Uint8Array>; epoch: number; index: number }> {
  const { samples, index } = classificationSamples(o.items);
  let delivered = 0;
  let failedInARow = 0;
  for (const [g, epoch, i] of streamOrder(samples.length, o)) {
    const it = samples[i] as NamedSample;
    let fields: Record<string, Uint8Array>;
    try {
      fields = await sampleFields(it, index);
    } catch (e) {
      o.onSkip?.({ file: it.path, epoch, reason: (e as Error).message });
      if (++failedInARow >= samples.length && delivered === 0) throw new GenaugError('E_EMPTY', `every image of the classification stream failed (last: ${it.path}: ${(e as Error).message})`);
      continue;
    }
    failedInARow = 0;
    delivered++;
    yield { key: `${it.key}_${epoch}`, fields, epoch, index: g };
  }
}

/** Writes the classification set (see the module comment); returns what it wrote. */
export async function exportClassification(o: ClassificationExportOptions): Promise<ClassificationExportSummary> {
  const formats = o.formats ?? CLASSIFICATION_FORMATS;
  if (!formats.length || formats.some((f) => !CLASSIFICATION_FORMATS.includes(f))) {
    throw new GenaugError('E_ARGUMENT', `formats must be a non-empty list of ${CLASSIFICATION_FORMATS.join(', ')}, got ${JSON.stringify(formats)}`);
  }
  const { classes, folders, folderOf, index, samples: named } = classificationSamples(o.items);
  const outputs: string[] = [];
  const root = resolve(o.out);
  await mkdir(root, { recursive: true });
  const classesPath = join(root, 'classes.txt');
  await writeFileAtomic(classesPath, new TextEncoder().encode(classes.map((c) => `${c}\n`).join('')));
  outputs.push(classesPath);

  if (formats.includes('imagefolder')) {
    const dir = join(root, 'imagefolder', 'train');
    await rm(join(root, 'imagefolder'), { recursive: true, force: true });
    for (const f of folders) await mkdir(join(dir, f), { recursive: true });
    for (const it of named) await copyFile(it.path, join(dir, folderOf.get(it.label) as string, it.file));
    outputs.push(dir);
  }
  if (formats.includes('webdataset')) {
    const dir = join(root, 'webdataset');
    await rm(dir, { recursive: true, force: true });
    const writer = new ShardWriter(dir, { samplesPerShard: o.shardSize ?? 1000 });
    try {
      for (const it of named) await writer.add(it.key, await sampleFields(it, index));
      outputs.push(...(await writer.close()));
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }
  const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const it of o.items) perClass[it.label] = (perClass[it.label] ?? 0) + 1;
  return { images: o.items.length, classes, perClass, outputs };
}
