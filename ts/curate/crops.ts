/**
 * Crops that the scores compare: DiverGen's "padding" crop of a real
 * annotation and X-Paste's white-background composite of a generated instance.
 *
 * DiverGen padding rule (spec ALGORITHMS.md §2.3): the tight box of the mask,
 * grown by `padding` (40) pixels on each side and clipped to the image; inside
 * it, every pixel outside the mask is replaced by the same pixel of a
 * `blur`×`blur` (10×10) box-blurred copy of the whole image. The blur follows
 * OpenCV's `cv2.blur` defaults: the window of pixel x spans
 * [x − ⌊k/2⌋, x + k − 1 − ⌊k/2⌋] (anchor at the centre), the mean is rounded
 * to the nearest integer, and the image is extended by reflect-101 at its
 * borders (…cba|abcd|dcb…).
 */
import type { CocoAnnotation, CocoIndex } from '../io/coco.js';
import { compositeAlpha, readImage } from '../io/images.js';
import { checkWithin } from '../io/roots.js';
import { decodeRle, segmentationToRle } from '../kernels/mask.js';
import type { RgbInput } from '../models/types.js';
import { GenaugError } from '../native/errors.js';

export interface PaddingCropOptions {
  /** Pixels added on each side of the mask's tight box (default 40). */
  padding?: number;
  /** Box-blur kernel side (default 10). */
  blur?: number;
}

/** Reflect-101 index into [0, n). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/** Tight box of a mask as inclusive pixel bounds, or null when the mask is empty. */
export function maskBounds(mask: Uint8Array, width: number, height: number): { x0: number; y0: number; x1: number; y1: number } | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return x1 < 0 ? null : { x0, y0, x1, y1 };
}

/** DiverGen's padding crop of `image` (RGB) around `mask` (nonzero = object). Throws E_RANGE for an empty mask. */
export function paddingCrop(image: RgbInput, mask: Uint8Array, options: PaddingCropOptions = {}): RgbInput {
  const { width: W, height: H, data } = image;
  if (data.length !== W * H * 3) throw new GenaugError('E_SHAPE', `image has ${data.length} bytes, expected ${W} x ${H} x 3`);
  if (mask.length !== W * H) throw new GenaugError('E_SHAPE', `mask has ${mask.length} bytes, expected ${W} x ${H}`);
  const pad = options.padding ?? 40;
  const k = options.blur ?? 10;
  if (!Number.isInteger(pad) || pad < 0) throw new GenaugError('E_RANGE', `padding must be an integer >= 0, got ${pad}`);
  if (!Number.isInteger(k) || k < 1) throw new GenaugError('E_RANGE', `blur must be an integer >= 1, got ${k}`);
  const b = maskBounds(mask, W, H);
  if (!b) throw new GenaugError('E_RANGE', 'the mask is empty: nothing to crop');
  const cx0 = Math.max(0, b.x0 - pad);
  const cy0 = Math.max(0, b.y0 - pad);
  const cx1 = Math.min(W - 1, b.x1 + pad);
  const cy1 = Math.min(H - 1, b.y1 + pad);
  const cw = cx1 - cx0 + 1;
  const ch = cy1 - cy0 + 1;
  const lo = Math.floor(k / 2);
  const hi = k - 1 - lo;
  // Horizontal sums for the rows the vertical pass needs (reflected), columns of the crop.
  const rows = ch + k - 1;
  const hsum = new Float64Array(rows * cw * 3);
  for (let r = 0; r < rows; r++) {
    const y = reflect101(cy0 - lo + r, H);
    for (let x = 0; x < cw; x++) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      for (let dx = -lo; dx <= hi; dx++) {
        const p = (y * W + reflect101(cx0 + x + dx, W)) * 3;
        s0 += data[p]!;
        s1 += data[p + 1]!;
        s2 += data[p + 2]!;
      }
      const o = (r * cw + x) * 3;
      hsum[o] = s0;
      hsum[o + 1] = s1;
      hsum[o + 2] = s2;
    }
  }
  const out = new Uint8Array(cw * ch * 3);
  const area = k * k;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const src = ((cy0 + y) * W + cx0 + x) * 3;
      const o = (y * cw + x) * 3;
      if (mask[(cy0 + y) * W + cx0 + x]) {
        out[o] = data[src]!;
        out[o + 1] = data[src + 1]!;
        out[o + 2] = data[src + 2]!;
        continue;
      }
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let dy = 0; dy < k; dy++) s += hsum[((y + dy) * cw + x) * 3 + c]!;
        out[o + c] = Math.round(s / area);
      }
    }
  }
  return { data: out, width: cw, height: ch };
}

/** The mask of a COCO/LVIS annotation (polygons or RLE) in its image's frame. */
export async function annotationMask(index: CocoIndex, ann: CocoAnnotation): Promise<Uint8Array> {
  const im = index.imageById.get(ann.image_id);
  if (!im) throw new GenaugError('E_ARGUMENT', `annotation ${ann.id} refers to image ${ann.image_id}, which is not in ${index.source}`);
  if (!ann.segmentation) throw new GenaugError('E_FORMAT', `annotation ${ann.id} in ${index.source} has no segmentation`);
  const m = await decodeRle(segmentationToRle(ann.segmentation, im.height, im.width));
  return m.data;
}

/** An RGBA instance composited onto a white background (X-Paste's CLIP-score input): out = a·rgb + (1 − a)·255, rounded. */
export function compositeOnWhite(rgba: Uint8Array, width: number, height: number): RgbInput {
  return compositeAlpha(rgba, width, height, 'white');
}

/** The foreground area fraction of an RGBA instance (alpha > 128, X-Paste's rule). */
export function alphaAreaFraction(rgba: Uint8Array, width: number, height: number): number {
  let n = 0;
  for (let i = 0; i < width * height; i++) if (rgba[i * 4 + 3]! > 128) n++;
  return width * height > 0 ? n / (width * height) : 0;
}

/**
 * Cuts every annotation with a segmentation into a padding crop PNG under
 * `out`, and writes out/manifest.jsonl ({file, category, id: "ann-<id>"},
 * ready for `genaug embed --manifest`) and out/failed.jsonl (annotation,
 * reason). A missing image or empty mask is recorded and skipped.
 * Each finished image is a line of out/progress.jsonl (after its crops are
 * written): a killed run started again skips those images and writes the same
 * manifest and failed list (rebuilt in image order from the journal). Other
 * annotations (file contents) or options start the journal over.
 */
export async function writeRealCrops(
  index: CocoIndex,
  imagesDir: string,
  out: string,
  options: PaddingCropOptions & { /** Images with more pixels are failed (default DEFAULT_MAX_PIXELS). */ maxPixels?: number } = {},
): Promise<{ written: number; failed: number; resumed: number }> {
  const { mkdir } = await import('node:fs/promises');
  const { join, resolve } = await import('node:path');
  const { createHash } = await import('node:crypto');
  const sharp = (await import('sharp')).default;
  const { writeFileAtomic } = await import('../io/atomic.js');
  const { openSampleJournal } = await import('./table.js');
  await mkdir(join(out, 'crops'), { recursive: true });
  const fingerprint = createHash('sha256');
  for (const im of index.dataset.images) fingerprint.update(`${im.id}\0${im.file_name}\0${im.width}x${im.height}\n`);
  for (const a of index.dataset.annotations) fingerprint.update(JSON.stringify([a.id, a.image_id, a.category_id, a.iscrowd, a.segmentation ?? null]) + '\n');
  const settings = { annotations: fingerprint.digest('hex').slice(0, 32), images: resolve(imagesDir), padding: options.padding ?? 40, blur: options.blur ?? 10 };
  const journal = await openSampleJournal<{ manifest: string[]; failed: string[] }>(join(out, 'progress.jsonl'), settings);
  const manifest: string[] = [];
  const failed: string[] = [];
  let resumed = 0;
  for (const im of index.dataset.images) {
    const anns = (index.annotationsByImage.get(im.id) ?? []).filter((a) => a.segmentation && a.iscrowd !== 1);
    if (anns.length === 0) continue;
    const key = String(im.id);
    const before = journal.done.get(key);
    if (before) {
      manifest.push(...before.manifest);
      failed.push(...before.failed);
      resumed++;
      continue;
    }
    const mine = { manifest: [] as string[], failed: [] as string[] };
    let rgb: RgbInput | undefined;
    try {
      // The roots rule: a file_name with '..', an absolute path or a link out of the folder is a failed image.
      rgb = await readImage(await checkWithin(imagesDir, im.file_name, 'image'), options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {});
      if (rgb.width !== im.width || rgb.height !== im.height) throw new GenaugError('E_SHAPE', `image is ${rgb.width}x${rgb.height} but the annotations say ${im.width}x${im.height}`);
    } catch (e) {
      rgb = undefined;
      for (const a of anns) mine.failed.push(JSON.stringify({ annotation: a.id, image: im.file_name, reason: (e as Error).message }));
    }
    if (rgb) {
      for (const a of anns) {
        try {
          const crop = paddingCrop(rgb, await annotationMask(index, a), options);
          const file = `crops/${a.id}.png`;
          const png = await sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } }).png().toBuffer();
          await writeFileAtomic(join(out, file), png);
          mine.manifest.push(JSON.stringify({ file, category: index.categoryById.get(a.category_id)?.name ?? String(a.category_id), id: `ann-${a.id}` }));
        } catch (e) {
          mine.failed.push(JSON.stringify({ annotation: a.id, image: im.file_name, reason: (e as Error).message }));
        }
      }
    }
    await journal.append(key, mine);
    manifest.push(...mine.manifest);
    failed.push(...mine.failed);
  }
  const enc = (l: string[]) => new TextEncoder().encode(l.join('\n') + (l.length ? '\n' : ''));
  await writeFileAtomic(join(out, 'manifest.jsonl'), enc(manifest));
  await writeFileAtomic(join(out, 'failed.jsonl'), enc(failed));
  return { written: manifest.length, failed: failed.length, resumed };
}
