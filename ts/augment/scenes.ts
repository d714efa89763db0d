/**
 * The dataset Auto Cherry-Picker trains its detectors on: the generated scenes themselves, one box and one mask per
 * object of the layout each was generated from. Reads a `genaug generate` output folder (manifest.jsonl, and the
 * image sidecars that carry each job's layout), optionally only the samples a filter kept (ACP's best-of-N by
 * CLIS-I), and writes OUT/annotations.json (COCO, readable by pycocotools) with OUT/images/ (the kept images,
 * bytes unchanged).
 *
 * Each layout object becomes an annotation: its box (normalised xywh) scaled to the image's real size, the category
 * matched by name to the real dataset's (case, `_`/space and LVIS synonyms, as pools are), and a mask:
 * - with a SAM encoder/decoder: SAM prompted with the box (corner labels 2 and 3, the single-mask output), the mask
 *   kept inside the box (ACP annotates each object within its layout box), compressed RLE;
 * - without (the documented fallback): the box itself as a rectangle polygon.
 * `mask_source` says which ("sam", or "box" also when SAM found nothing inside the box).
 * An object whose name matches no category is left out and logged (OUT/log.jsonl), unless addCategories appends
 * it with a new id; an image without a layout is logged and left out. Same inputs, same bytes.
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import sharp from 'sharp';

import { readTextFile, writeFileAtomic } from '../io/atomic.js';
import { readCoco, type CocoCategory } from '../io/coco.js';
import { imageInfo, readImage } from '../io/images.js';
import { checkWithin, manifestImage } from '../io/roots.js';
import { cropToMask, decodeRleSync, encodeRleSync, maskArea, maskBbox, segmentationToRle } from '../kernels/mask.js';
import { SamModel } from '../models/sam.js';
import { GenaugError } from '../native/errors.js';
import { boxProblem } from '../plan/job.js';
import { categoryPriors } from '../plan/priors.js';
import { readJsonObjects, writeJson } from '../util/jsonl.js';
import { categoryMatcher } from './pool.js';
import { streamOrder, type StreamShard } from './stream.js';

export interface SceneExportOptions {
  /** The generate output's manifest (OUT/manifest.jsonl); each image's sidecar (images/<name>.json) holds its layout. */
  manifest: string;
  out: string;
  /** Only these manifest ids (a manifest line's id, else its file), e.g. the ids `genaug filter --preset acp` kept. */
  kept?: Set<string>;
  /** Categories to match layout names to (the real dataset's COCO file or list); default: the layout names, sorted, ids 1.. */
  categories?: string | CocoCategory[];
  /** Append names no category matches (new ids after the largest, in name order) instead of leaving them out. */
  addCategories?: boolean;
  /** SAM encoder and decoder ONNX files: masks from box prompts. Without them every mask is the box. */
  sam?: { encoder: string; decoder: string; threads?: number };
  onProgress?: (done: number, total: number) => void;
}

export interface SceneExportSummary {
  images: number;
  annotations: number;
  maskSources: { sam: number; box: number };
  categories: CocoCategory[];
  skipped: number;
  outputs: string[];
}

interface LayoutObject {
  name: string;
  box: [number, number, number, number];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The layout of a generated image, from its sidecar; undefined when it has none. */
async function sidecarLayout(image: string): Promise<{ layout: LayoutObject[] | undefined; job?: string }> {
  const sidecar = image.replace(/\.[^./]+$/, '') + '.json';
  let s: unknown;
  try {
    s = JSON.parse(await readTextFile(sidecar, `sidecar ${sidecar}`));
  } catch (e) {
    if (e instanceof GenaugError && e.code === 'E_IO') return { layout: undefined };
    throw new GenaugError('E_FORMAT', `sidecar ${sidecar} is not valid JSON: ${(e as Error).message}`, { path: sidecar });
  }
  if (!isObject(s) || !Array.isArray(s.layout)) return { layout: undefined, ...(isObject(s) && typeof s.job === 'string' ? { job: s.job } : {}) };
  const layout: LayoutObject[] = [];
  s.layout.forEach((o, i) => {
    const box = isObject(o) ? o.box : undefined;
    const problem = Array.isArray(box) ? boxProblem(box as number[]) : 'is missing';
    if (!isObject(o) || typeof o.name !== 'string' || !o.name || problem) {
      throw new GenaugError('E_FORMAT', `sidecar ${sidecar}: layout[${i}] needs a "name" and a box [x, y, w, h] inside (0, 1)${problem ? ` (the box ${problem})` : ''}`, { path: sidecar });
    }
    layout.push({ name: o.name, box: box as [number, number, number, number] });
  });
  return { layout, ...(typeof s.job === 'string' ? { job: s.job } : {}) };
}

/** A box in pixels, clamped to the image: [x, y, w, h] and the integer pixel window [x0, y0, x1, y1). */
function pixelBox(box: readonly number[], W: number, H: number) {
  const [x, y, w, h] = box as [number, number, number, number];
  const bx = Math.max(0, x * W);
  const by = Math.max(0, y * H);
  const bw = Math.min(W, (x + w) * W) - bx;
  const bh = Math.min(H, (y + h) * H) - by;
  const window = [Math.floor(bx), Math.floor(by), Math.min(W, Math.ceil(bx + bw)), Math.min(H, Math.ceil(by + bh))] as const;
  return { bbox: [bx, by, bw, bh] as [number, number, number, number], window };
}

const round = (v: number) => Math.round(v * 100) / 100;

/** One kept scene with its COCO image record and annotations (one per layout object that matched a category). */
export interface SceneRecord {
  /** The image file (absolute) and its name in the export. */
  path: string;
  file: string;
  image: Record<string, unknown> & { id: number; file_name: string; width: number; height: number };
  annotations: Array<Record<string, unknown>>;
}

/**
 * The scenes of a manifest with their annotations, as `exportScenes` writes them (no file written): the COCO image
 * records and annotations, the categories, what was left out (log lines) and where the masks came from.
 */
export async function sceneRecords(o: Omit<SceneExportOptions, 'out'>): Promise<{ scenes: SceneRecord[]; categories: CocoCategory[]; log: string[]; maskSources: { sam: number; box: number }; skipped: number }> {
  // The images, in manifest order.
  const items: Array<{ id: string; path: string; file: string }> = [];
  const seenFiles = new Set<string>();
  for (const { line, value } of await readJsonObjects(o.manifest, 'the manifest')) {
    const id = typeof value.id === 'string' && value.id ? value.id : value.file;
    if (typeof id !== 'string' || !id) throw new GenaugError('E_FORMAT', `${o.manifest}:${line}: each line needs a "file" (or "id") string`, { path: o.manifest, line });
    if (o.kept && !o.kept.has(id)) continue;
    const { root, name } = manifestImage(value, o.manifest);
    if (!name) throw new GenaugError('E_FORMAT', `${o.manifest}:${line}: the line names no image ("file" or "path")`, { path: o.manifest, line });
    const path = await checkWithin(root, name, `${o.manifest}:${line}: image`);
    const file = basename(path);
    if (seenFiles.has(file)) continue; // the same bytes listed twice
    seenFiles.add(file);
    items.push({ id, path, file });
  }
  if (items.length === 0) throw new GenaugError('E_EMPTY', `no scene to export: ${o.manifest} lists no image${o.kept ? ' that was kept' : ''}`, { path: o.manifest });

  const log: string[] = [];
  const scenes: Array<{ item: (typeof items)[number]; layout: LayoutObject[]; width: number; height: number }> = [];
  for (const item of items) {
    const { layout } = await sidecarLayout(item.path);
    if (!layout || layout.length === 0) {
      log.push(JSON.stringify({ kind: 'no-layout', file: item.file, message: `${item.file}: its sidecar has no layout (was it generated from a scene plan?); left out` }));
      continue;
    }
    const info = await imageInfo(item.path);
    scenes.push({ item, layout, width: info.width, height: info.height });
  }
  if (scenes.length === 0) throw new GenaugError('E_EMPTY', `no scene to export: none of the ${items.length} images has a layout in its sidecar (generate from a scene plan: genaug plan --strategy scene)`, { path: o.manifest });

  // Categories.
  let categories: CocoCategory[];
  if (o.categories === undefined) {
    const names = [...new Set(scenes.flatMap((s) => s.layout.map((l) => l.name)))].sort();
    categories = names.map((name, i) => ({ id: i + 1, name, supercategory: 'object' }));
  } else {
    categories = typeof o.categories === 'string' ? [...(await readCoco(o.categories, { polygons: 'packed' })).categoryById.values()].sort((a, b) => a.id - b.id) : [...o.categories];
  }
  let match = categoryMatcher(categories);
  if (o.addCategories) {
    const unknown = [...new Set(scenes.flatMap((s) => s.layout.map((l) => l.name)).filter((n) => !match(n)))].sort();
    let next = categories.reduce((m, c) => Math.max(m, c.id), 0) + 1;
    for (const name of unknown) categories.push({ id: next++, name, supercategory: 'object' });
    match = categoryMatcher(categories);
  }

  const sam = o.sam ? await SamModel.load({ encoder: o.sam.encoder, decoder: o.sam.decoder, ...(o.sam.threads ? { threads: o.sam.threads } : {}) }) : undefined;
  const records: SceneRecord[] = [];
  let annId = 0;
  const sources = { sam: 0, box: 0 };
  let skipped = 0;
  try {
    for (const [i, s] of scenes.entries()) {
      const imageId = i + 1;
      const W = s.width;
      const H = s.height;
      const annotations: Array<Record<string, unknown>> = [];
      records.push({ path: s.item.path, file: s.item.file, image: { id: imageId, file_name: s.item.file, width: W, height: H, source_id: s.item.id }, annotations });
      const emb = sam ? await sam.embed(s.item.path) : undefined;
      for (const [k, obj] of s.layout.entries()) {
        const cat = match(obj.name);
        if (!cat) {
          skipped++;
          log.push(JSON.stringify({ kind: 'unknown-category', file: s.item.file, object: k, name: obj.name, message: `"${obj.name}" matches no category; left out (--add-categories appends it)` }));
          continue;
        }
        const { bbox, window } = pixelBox(obj.box, W, H);
        if (!(window[2] > window[0] && window[3] > window[1])) {
          skipped++;
          log.push(JSON.stringify({ kind: 'empty-box', file: s.item.file, object: k, name: obj.name, message: `the box of "${obj.name}" covers no pixel of the ${W} x ${H} image; left out` }));
          continue;
        }
        let segmentation: unknown;
        let area: number;
        let source: 'sam' | 'box' = 'box';
        if (sam && emb) {
          const r = await sam.segmentPoints(emb, [[bbox[0], bbox[1]], [bbox[0] + bbox[2], bbox[1] + bbox[3]]], [2, 3]);
          // The single-mask output (channel 0 of the official export) is SAM's answer to a box prompt.
          const m = r.masks[0] as Uint8Array;
          const inside = new Uint8Array(W * H);
          let n = 0;
          for (let y = window[1]; y < window[3]; y++) {
            for (let x = window[0]; x < window[2]; x++) {
              if (m[y * W + x]) {
                inside[y * W + x] = 1;
                n++;
              }
            }
          }
          if (n > 0) {
            const rle = encodeRleSync({ data: inside, width: W, height: H }, { form: 'string' });
            segmentation = { size: [H, W], counts: rle.counts };
            area = n;
            source = 'sam';
          }
        }
        if (source === 'box') {
          const [x0, y0, w, h] = bbox.map(round) as [number, number, number, number];
          segmentation = [[x0, y0, round(x0 + w), y0, round(x0 + w), round(y0 + h), x0, round(y0 + h)]];
          area = round(bbox[2] * bbox[3]);
        }
        sources[source]++;
        annotations.push({
          id: ++annId,
          image_id: imageId,
          category_id: cat.id,
          bbox: bbox.map(round),
          area: area!,
          iscrowd: 0,
          segmentation,
          mask_source: source,
          layout_index: k,
        });
      }
      o.onProgress?.(i + 1, scenes.length);
    }
  } finally {
    await sam?.release();
  }
  if (annId === 0) throw new GenaugError('E_EMPTY', `no object of any layout matches a category (first: ${log[0] ?? 'none'}); give --add-categories or the categories they belong to`, { path: o.manifest });
  return { scenes: records, categories, log, maskSources: sources, skipped };
}

export async function exportScenes(o: SceneExportOptions): Promise<SceneExportSummary> {
  const out = resolve(o.out);
  const imagesOut = join(out, 'images');
  const { scenes, categories, log, maskSources: sources, skipped } = await sceneRecords(o);
  await mkdir(imagesOut, { recursive: true });
  for (const sc of scenes) await copyFile(sc.path, join(imagesOut, sc.file));
  const images = scenes.map((sc) => sc.image);
  const annotations = scenes.flatMap((sc) => sc.annotations);
  const annPath = join(out, 'annotations.json');
  const coco = { info: { description: 'generated scenes (genaug export scenes)', version: '1' }, images, annotations, categories };
  await writeFileAtomic(annPath, new TextEncoder().encode(JSON.stringify(coco) + '\n'));
  const logPath = join(out, 'log.jsonl');
  await writeFileAtomic(logPath, new TextEncoder().encode(log.map((l) => `${l}\n`).join('')));
  return { images: images.length, annotations: annotations.length, maskSources: sources, categories, skipped, outputs: [annPath, imagesOut, logPath] };
}

export interface SceneStreamOptions extends Omit<SceneExportOptions, 'out' | 'onProgress'> {
  seed: number;
  /** Passes over the scenes (default Infinity: endless). */
  epochs?: number;
  shard?: StreamShard;
  /** Shuffle per epoch by (seed, epoch) (default true); false: manifest order. */
  shuffle?: boolean;
  onSkip?: (record: { file: string; epoch: number; reason: string }) => void;
  /** Told once the scenes are annotated (before the first sample). */
  onReady?: (scenes: number, annotations: number) => void;
}

/**
 * The scene dataset as a stream of WebDataset samples (`genaug export scenes --stream`): the scenes are annotated
 * once (SAM box prompts or boxes, as the export), then each sample is `<stem>_<epoch>.<ext>` (the image bytes
 * unchanged) + `.json` ({key, image_id, file_name, width, height, source_id, annotations: the export's COCO
 * annotations of that image with category_name}), in the paste stream's order and sharding (streamOrder).
 */
export async function* sceneStream(o: SceneStreamOptions): AsyncGenerator<{ key: string; fields: Record<string, Uint8Array>; epoch: number; index: number }> {
  const { scenes, categories, log } = await sceneRecords(o);
  for (const l of log) {
    const r = JSON.parse(l) as { file: string; message: string };
    o.onSkip?.({ file: r.file, epoch: -1, reason: r.message });
  }
  o.onReady?.(scenes.length, scenes.reduce((a, s) => a + s.annotations.length, 0));
  const names = new Map(categories.map((c) => [c.id, c.name]));
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  for (const [g, epoch, i] of streamOrder(scenes.length, o)) {
    const sc = scenes[i] as SceneRecord;
    let bytes: Buffer;
    try {
      bytes = await readFile(sc.path);
    } catch (e) {
      o.onSkip?.({ file: sc.path, epoch, reason: (e as Error).message });
      continue;
    }
    const dot = sc.file.lastIndexOf('.');
    const stem = (dot > 0 ? sc.file.slice(0, dot) : sc.file).replace(/[^A-Za-z0-9_-]/g, '_');
    const ext = (dot > 0 ? sc.file.slice(dot + 1).toLowerCase() : 'png').replace('jpeg', 'jpg');
    const key = `${stem}_${epoch}`;
    yield {
      key,
      fields: {
        [ext]: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        json: enc({ key, ...sc.image, annotations: sc.annotations.map((a) => ({ ...a, category_name: names.get(a.category_id as number) })) }),
      },
      epoch,
      index: g,
    };
  }
}

/** A class name as a folder name (as `genaug pool` names them). */
const slug = (name: string) => name.replace(/[^A-Za-z0-9_-]+/g, '_');
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

export interface ScenePoolOptions {
  /** A scene export (`exportScenes`' OUT): annotations.json and images/. */
  scenes: string;
  /** The real dataset's COCO file: the pool's size priors (size_prior.json, as `genaug pool` writes them). */
  realCoco: string;
  out: string;
}

/**
 * The objects of exported scenes as an instance pool (ACP's scenes "optionally pasted"): each annotation's mask
 * (its SAM RLE or its box polygon) cut from its scene as a tight RGBA PNG (alpha = 255 x mask) into
 * OUT/instances/<category>/<scene stem>_<layout index>.png, with OUT/index.json in genaug's pool layout
 * ({categories: {name: [{file, source, score, areaFraction, bbox}]}}, `source` the generated file the scene was,
 * `bbox` the crop's box in it) and OUT/size_prior.json from the real dataset, what `genaug paste` reads.
 * Same export, same bytes.
 */
export async function scenePool(o: ScenePoolOptions): Promise<{ instances: number; perClass: Record<string, number> }> {
  const root = resolve(o.scenes);
  const coco = await readCoco(join(root, 'annotations.json'), { polygons: 'packed' });
  const real = await readCoco(o.realCoco, { polygons: 'packed' });
  const categories: Record<string, Array<{ file: string; source: string; score: number; areaFraction: number; bbox: number[] }>> = {};
  for (const c of [...coco.categoryById.values()].sort((a, b) => a.id - b.id)) categories[c.name] = [];
  let instances = 0;
  for (const im of [...coco.dataset.images].sort((a, b) => a.id - b.id)) {
    const anns = coco.annotationsByImage.get(im.id) ?? [];
    if (anns.length === 0) continue;
    const path = await checkWithin(join(root, 'images'), im.file_name, `${join(root, 'annotations.json')}: image ${im.id}`);
    const rgb = await readImage(path);
    if (rgb.width !== im.width || rgb.height !== im.height) {
      throw new GenaugError('E_SHAPE', `${path} is ${rgb.width} x ${rgb.height} but its COCO record says ${im.width} x ${im.height}`, { path });
    }
    const image = { data: rgb.data, width: rgb.width, height: rgb.height, channels: 3 as const };
    const source = typeof (im as { source_id?: unknown }).source_id === 'string' ? ((im as { source_id?: unknown }).source_id as string) : im.file_name;
    const stem = im.file_name.replace(/\.[^./]+$/, '').replace(/[^A-Za-z0-9_-]+/g, '_');
    for (const a of anns) {
      const cat = coco.categoryById.get(a.category_id);
      if (!cat) continue;
      const mask = decodeRleSync(segmentationToRle(a.segmentation, im.height, im.width));
      const bbox = maskBbox(mask);
      if (!(bbox[2] > 0 && bbox[3] > 0)) continue;
      const crop = await cropToMask(image, mask, bbox);
      const png = await sharp(Buffer.from(crop.data.buffer, crop.data.byteOffset, crop.data.byteLength), { raw: { width: crop.width, height: crop.height, channels: 4 } })
        .png()
        .toBuffer();
      const k = (a as { layout_index?: unknown }).layout_index;
      const file = `instances/${slug(cat.name)}/${stem}_${typeof k === 'number' ? k : a.id}.png`;
      await mkdir(dirname(join(o.out, file)), { recursive: true });
      await writeFileAtomic(join(o.out, file), png);
      (categories[cat.name] as unknown[]).push({ file, source, score: 0, areaFraction: round6(maskArea(mask) / (im.width * im.height)), bbox: [...crop.bbox] });
      instances++;
    }
  }
  for (const l of Object.values(categories)) l.sort((a, b) => a.file.localeCompare(b.file));
  await writeJson(join(o.out, 'index.json'), { categories });
  const sizes: Record<string, [number, number]> = {};
  for (const p of categoryPriors(real)) if (p.size) sizes[String(p.id)] = [round6(p.size.mean), round6(p.size.std)];
  await writeJson(join(o.out, 'size_prior.json'), sizes);
  return { instances, perClass: Object.fromEntries(Object.entries(categories).map(([k, v]) => [k, v.length])) };
}
