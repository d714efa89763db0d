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
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import { readTextFile, writeFileAtomic } from '../io/atomic.js';
import { readCoco, type CocoCategory } from '../io/coco.js';
import { imageInfo } from '../io/images.js';
import { checkWithin, manifestImage } from '../io/roots.js';
import { encodeRleSync } from '../kernels/mask.js';
import { SamModel } from '../models/sam.js';
import { GenaugError } from '../native/errors.js';
import { boxProblem } from '../plan/job.js';
import { readJsonObjects } from '../util/jsonl.js';
import { categoryMatcher } from './pool.js';

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

export async function exportScenes(o: SceneExportOptions): Promise<SceneExportSummary> {
  const out = resolve(o.out);
  const imagesOut = join(out, 'images');
  await mkdir(imagesOut, { recursive: true });

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
    categories = typeof o.categories === 'string' ? [...(await readCoco(o.categories)).categoryById.values()].sort((a, b) => a.id - b.id) : [...o.categories];
  }
  let match = categoryMatcher(categories);
  if (o.addCategories) {
    const unknown = [...new Set(scenes.flatMap((s) => s.layout.map((l) => l.name)).filter((n) => !match(n)))].sort();
    let next = categories.reduce((m, c) => Math.max(m, c.id), 0) + 1;
    for (const name of unknown) categories.push({ id: next++, name, supercategory: 'object' });
    match = categoryMatcher(categories);
  }

  const sam = o.sam ? await SamModel.load({ encoder: o.sam.encoder, decoder: o.sam.decoder, ...(o.sam.threads ? { threads: o.sam.threads } : {}) }) : undefined;
  const images: Array<Record<string, unknown>> = [];
  const annotations: Array<Record<string, unknown>> = [];
  const sources = { sam: 0, box: 0 };
  let skipped = 0;
  try {
    for (const [i, s] of scenes.entries()) {
      const imageId = i + 1;
      const W = s.width;
      const H = s.height;
      images.push({ id: imageId, file_name: s.item.file, width: W, height: H, source_id: s.item.id });
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
          id: annotations.length + 1,
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
      await copyFile(s.item.path, join(imagesOut, s.item.file));
      o.onProgress?.(i + 1, scenes.length);
    }
  } finally {
    await sam?.release();
  }
  if (annotations.length === 0) throw new GenaugError('E_EMPTY', `no object of any layout matches a category (first: ${log[0] ?? 'none'}); give --add-categories or the categories they belong to`, { path: o.manifest });

  const annPath = join(out, 'annotations.json');
  const coco = { info: { description: 'generated scenes (genaug export scenes)', version: '1' }, images, annotations, categories };
  await writeFileAtomic(annPath, new TextEncoder().encode(JSON.stringify(coco) + '\n'));
  const logPath = join(out, 'log.jsonl');
  await writeFileAtomic(logPath, new TextEncoder().encode(log.map((l) => `${l}\n`).join('')));
  return { images: images.length, annotations: annotations.length, maskSources: sources, categories, skipped, outputs: [annPath, imagesOut, logPath] };
}
