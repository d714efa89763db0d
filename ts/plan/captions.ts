/**
 * Caption prompts ("Image Captions are Natural Prompts"): each real image is
 * captioned once by an OpenAI-compatible vision endpoint, the caption stored
 * per image in a JSON lines file (so reruns never ask again), and the prompt
 * is "a photo of {class}, {caption}".
 */
import { appendFile, readFile } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { z } from 'zod';

import { readWholeFile } from '../io/atomic.js';
import type { CocoIndex, CocoImage } from '../io/coco.js';
import { checkWithin } from '../io/roots.js';
import { readAppendLog } from '../util/jsonl.js';
import { imageDataUrl } from '../llm/chat.js';
import { GenaugError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';
import { askJson, itemSeed, makeJob, mapLimit, reasonOf, shuffled, type JobDefaults, type LlmSource, type PlanClass, type PlanFailure, type StrategyResult } from './core.js';
import type { PlanJob } from './job.js';

export interface StoredCaption {
  image_id: number;
  caption: string;
  /** Who wrote it: a model name, "coco" (a COCO captions file), "file". */
  source: string;
}

/**
 * Captions per image id. Reads either a JSON lines store ({image_id, caption,
 * source} per line; the first caption of an image wins, a torn last line is
 * ignored) or a COCO captions file ({"annotations": [{image_id, caption}]}).
 * New captions are appended to the store's path.
 */
export class CaptionStore {
  readonly #map = new Map<number, StoredCaption>();
  private constructor(readonly path: string | null) {}

  static memory(): CaptionStore {
    return new CaptionStore(null);
  }

  static async open(path: string, extra: string[] = []): Promise<CaptionStore> {
    const store = new CaptionStore(path);
    for (const p of [path, ...extra]) await store.#load(p, p !== path);
    return store;
  }

  async #load(path: string, mustExist: boolean): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !mustExist) return;
      throw new GenaugError('E_IO', `could not read captions from ${path}: ${(e as Error).message}`, { path });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined; // JSON lines
    }
    const anns = (doc as { annotations?: unknown } | undefined)?.annotations;
    if (Array.isArray(anns)) {
      // A COCO captions file.
      for (const a of anns as Array<{ image_id?: unknown; caption?: unknown }>) {
        if (Number.isInteger(a.image_id) && typeof a.caption === 'string' && !this.#map.has(a.image_id as number)) {
          this.#map.set(a.image_id as number, { image_id: a.image_id as number, caption: a.caption.trim(), source: 'coco' });
        }
      }
      return;
    }
    // The store itself (appended to) loses a torn last line from a kill, so the next caption starts its own line.
    if (path === this.path) text = await readAppendLog(path, 'the caption store');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as Partial<StoredCaption>;
        if (Number.isInteger(r.image_id) && typeof r.caption === 'string' && !this.#map.has(r.image_id!)) {
          this.#map.set(r.image_id!, { image_id: r.image_id!, caption: r.caption, source: typeof r.source === 'string' ? r.source : 'file' });
        }
      } catch {
        // torn line from a killed run: captioned again
      }
    }
  }

  get size(): number {
    return this.#map.size;
  }

  get(imageId: number): StoredCaption | undefined {
    return this.#map.get(imageId);
  }

  async put(c: StoredCaption): Promise<void> {
    this.#map.set(c.image_id, c);
    if (this.path) {
      try {
        await appendFile(this.path, JSON.stringify(c) + '\n');
      } catch (e) {
        throw new GenaugError('E_IO', `could not append to the caption store ${this.path}: ${(e as Error).message}`, { path: this.path });
      }
    }
  }
}

const MIME: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif', '.bmp': 'image/bmp' };

/** The path of a COCO image under an image folder (absolute file names are kept). */
export function imagePath(image: CocoImage, imageRoot?: string): string {
  return isAbsolute(image.file_name) || !imageRoot ? image.file_name : join(imageRoot, image.file_name);
}

/**
 * The image a COCO entry names, checked against the roots rule (io/roots.ts): it must lie inside `imageRoot`
 * (--images), or inside the working folder when none is given; an absolute file_name or `..` elsewhere is E_IO.
 */
export function readableImagePath(image: CocoImage, imageRoot?: string): Promise<string> {
  return checkWithin(imageRoot ?? process.cwd(), image.file_name, 'image');
}

/**
 * A COCO image's path as a plan line records it (`source_image`): `generate`
 * resolves relative paths against the plan file's folder, so an image found
 * under the working folder (a relative `imageRoot` or file name) is written
 * relative to `planDir`; an absolute `imageRoot` or file name stays absolute.
 * Separators are always '/'.
 */
export function planImagePath(image: CocoImage, imageRoot: string | undefined, planDir: string): string {
  const p = imagePath(image, imageRoot);
  if (isAbsolute(p)) return p;
  return relative(resolve(planDir), resolve(p)).split(sep).join('/');
}

const CaptionAnswer = z.object({ caption: z.string() });

export const CAPTION_INSTRUCTION =
  'Write a caption for this image: one plain sentence of at most 20 words saying what is in it and where, like an image caption dataset. Return {"caption": "..."}.';

export interface CaptionOptions {
  vlm?: LlmSource;
  store: CaptionStore;
  imageRoot?: string;
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Makes sure every listed image has a caption: stored ones are used as they
 * are, the others are asked of the VLM (when given) and stored. Returns the
 * images that still have none, with why.
 */
export async function captionImages(coco: CocoIndex, imageIds: number[], o: CaptionOptions): Promise<Map<number, string>> {
  const missing = imageIds.filter((id) => !o.store.get(id));
  const failed = new Map<number, string>();
  let done = 0;
  await mapLimit(missing, o.concurrency ?? 4, async (id) => {
    try {
      if (!o.vlm) throw new GenaugError('E_ARGUMENT', 'no stored caption and no vision endpoint (--vlm-url) to write one');
      const image = coco.imageById.get(id)!;
      const path = await readableImagePath(image, o.imageRoot);
      let bytes: Buffer;
      try {
        bytes = await readWholeFile(path, `image ${path}`);
      } catch (e) {
        throw new GenaugError('E_IO', `could not read image ${path}: ${(e as Error).message}`, { path });
      }
      const r = await askJson(
        o.vlm,
        [{ role: 'user', content: [{ type: 'text', text: CAPTION_INSTRUCTION }, { type: 'image_url', image_url: { url: imageDataUrl(bytes, MIME[extname(path).toLowerCase()] ?? 'image/jpeg') } }] }],
        CaptionAnswer,
        'caption',
        (v) => (v.caption.trim() && v.caption.length <= 400 ? null : 'the caption must be non-empty and at most 400 characters'),
      );
      await o.store.put({ image_id: id, caption: r.value.caption.trim().replace(/\s+/g, ' '), source: r.model });
    } catch (e) {
      failed.set(id, reasonOf(e));
    }
    o.onProgress?.(++done, missing.length);
  });
  return failed;
}

/** Caption-in-Prompt: "a photo of {class}, {caption}" (the caption's final full stop dropped). */
export function captionPrompt(name: string, caption: string): string {
  return `a photo of ${name}, ${caption.trim().replace(/\.+$/, '')}`;
}

/** Up to `perClass` real images per class (all when omitted), drawn with a seed per class. */
export function sampleClassImages(c: PlanClass, perClass: number | undefined, seed: number): number[] {
  if (perClass === undefined || c.imageIds.length <= perClass) return c.imageIds;
  return shuffled(c.imageIds, seededRandom(itemSeed(seed, `images:${c.name}`)))
    .slice(0, perClass)
    .sort((a, b) => a - b);
}

export interface CaptionPlanOptions extends CaptionOptions {
  /** Real images per class (default: all). */
  perClass?: number;
}

/** One job per (class, real image of the class), prompted by the image's caption. */
export async function planCaptions(coco: CocoIndex, classes: PlanClass[], o: CaptionPlanOptions, d: JobDefaults): Promise<StrategyResult> {
  const chosen = classes.map((c) => ({ c, ids: sampleClassImages(c, o.perClass, d.seed) }));
  const all = [...new Set(chosen.flatMap((x) => x.ids))].sort((a, b) => a - b);
  const failed = await captionImages(coco, all, o);
  const jobs: PlanJob[] = [];
  const failures: PlanFailure[] = [];
  for (const { c, ids } of chosen) {
    for (const id of ids) {
      const stored = o.store.get(id);
      if (!stored) {
        failures.push({ strategy: 'caption', item: `${c.name} / image ${id}`, stage: 'caption', reason: failed.get(id) ?? 'no caption' });
        continue;
      }
      jobs.push(
        makeJob(
          'caption',
          { kind: 'txt2img', classes: [c.name], prompt: captionPrompt(c.display, stored.caption), idKey: `image:${id}` },
          { image_id: id, caption_source: stored.source, class_source: c.source, ...(c.id !== null ? { category_id: c.id } : {}) },
          d,
        ),
      );
    }
  }
  return { jobs, failures };
}
