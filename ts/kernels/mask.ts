/**
 * Binary masks and COCO RLE for instance annotation (X-Paste / DiverGen
 * pools): largest component, hole filling, tight box, area, IoU, RGBA crop,
 * the weight-free corner flood-fill background, the whole post-processing
 * chain in one native call, and COCO RLE byte-for-byte as pycocotools
 * (encode, decode, area, toBbox, merge, iou, polygons) without a
 * Fortran-order copy.
 *
 * Masks are uint8, row-major, height x width, nonzero = foreground; results
 * are 0/1. Connectivity (4 or 8, default 8) is that of the foreground; hole
 * filling treats the background with the dual connectivity (4 for 8), so a
 * hole is a background region the foreground encloses. Boxes are COCO
 * [x, y, w, h], tight; an empty mask has [0, 0, 0, 0].
 */

import type { NativeAddon, NativeCounts, NativePostOptions, NativePostResult } from '../native/addon.js';
import { GenaugError } from '../native/errors.js';
import { native } from '../native/load.js';
import { checkInt, checkNumber, pinInputs } from '../native/validate.js';
import { PackedPolygons } from '../io/polygons.js';

/** One mask: `height` x `width` bytes, row-major, nonzero = foreground. */
export interface Mask {
  data: Uint8Array;
  height: number;
  width: number;
}

/** `count` masks of one size, one after another. */
export interface MaskBatch {
  data: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** An interleaved RGB or RGBA image. */
export interface Image {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 3 | 4;
}

export type Connectivity = 4 | 8;
/** COCO box: [x, y, width, height] in pixels. */
export type Bbox = [x: number, y: number, w: number, h: number];

/** COCO RLE exactly as COCO JSON holds it: `counts` is the compressed string or the uncompressed list. */
export interface Rle {
  size: [height: number, width: number];
  counts: string | number[];
}

export type RleForm = 'string' | 'counts';

export interface MaskOptions {
  /** Threads for batches (0 or absent: every core, at most one per mask). Results do not depend on it. */
  threads?: number;
}

export interface ComponentOptions extends MaskOptions {
  /** Foreground connectivity (default 8). */
  connectivity?: Connectivity;
}

export interface PostProcessOptions extends ComponentOptions {
  /** The input is a background mask: take its complement first. */
  invert?: boolean;
  /** Keep the largest component (default true). */
  largest?: boolean;
  /** Fill holes (default true). */
  fillHoles?: boolean;
  /** Reject results with fewer pixels (default 1: reject empty masks). */
  minArea?: number;
  /** Reject results whose area / (height * width) is outside [minFraction, maxFraction] (default [0, 1]; X-Paste uses [0.05, 0.95]). */
  minFraction?: number;
  maxFraction?: number;
  /** RLE of the result: 'string' (compressed, default), 'counts' or 'none'. */
  rle?: RleForm | 'none';
  /** Return the resulting mask (default true). */
  mask?: boolean;
}

export interface PostProcessResult {
  mask?: Mask;
  area: number;
  bbox: Bbox;
  /** Components before keeping the largest. */
  components: number;
  /** Passed the area checks. */
  ok: boolean;
  /** Why not, when not ok. */
  reason?: string;
  rle?: Rle;
}

export interface CornerOptions extends Omit<PostProcessOptions, 'invert' | 'threads'> {
  /** Max |difference| per channel (R, G, B; alpha ignored) to the corner's colour, 0..255 (default 10). */
  tolerance?: number;
  /** Also return the background estimate. */
  background?: boolean;
}

export interface CornerResult extends PostProcessResult {
  background?: Mask;
}

export interface Crop {
  /** RGBA, bbox[3] x bbox[2] x 4, alpha = 255 * mask. */
  data: Uint8Array;
  width: number;
  height: number;
  /** Where the crop lies in the image. */
  bbox: Bbox;
}

function addon(): NativeAddon {
  return native();
}

const MAX_PIXELS = 0xffffffff;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function checkSize(height: unknown, width: unknown, name: string): [number, number] {
  const h = checkInt(height, `${name}.height`, 0);
  const w = checkInt(width, `${name}.width`, 0);
  if (h * w > MAX_PIXELS) throw new GenaugError('E_LIMIT', `${name} is ${h} x ${w}, over the limit of 2^32 - 1 pixels (COCO RLE counts are 32-bit)`);
  return [h, w];
}

function checkBytes(data: unknown, name: string): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new GenaugError('E_DTYPE', `${name} must be a Uint8Array, got ${typeName(data)}`);
  }
  return data;
}

export function checkMask(m: unknown, name = 'mask'): Mask {
  if (typeof m !== 'object' || m === null) throw new GenaugError('E_TYPE', `${name} must be { data: Uint8Array, height, width }, got ${typeName(m)}`);
  const { data, height, width } = m as Partial<Mask>;
  const bytes = checkBytes(data, `${name}.data`);
  const [h, w] = checkSize(height, width, name);
  if (bytes.length !== h * w) throw new GenaugError('E_SHAPE', `${name}.data has ${bytes.length} bytes but ${name} is ${h} x ${w} = ${h * w}`);
  return m as Mask;
}

export function checkMaskBatch(m: unknown, name = 'masks'): MaskBatch {
  if (typeof m !== 'object' || m === null) throw new GenaugError('E_TYPE', `${name} must be { data: Uint8Array, count, height, width }, got ${typeName(m)}`);
  const { data, count, height, width } = m as Partial<MaskBatch>;
  const bytes = checkBytes(data, `${name}.data`);
  const n = checkInt(count, `${name}.count`, 0);
  const [h, w] = checkSize(height, width, name);
  if (bytes.length !== n * h * w) {
    throw new GenaugError('E_SHAPE', `${name}.data has ${bytes.length} bytes but ${n} masks of ${h} x ${w} need ${n * h * w}`);
  }
  return m as MaskBatch;
}

export function checkImage(img: unknown, name = 'image'): Image {
  if (typeof img !== 'object' || img === null) throw new GenaugError('E_TYPE', `${name} must be { data: Uint8Array, height, width, channels }, got ${typeName(img)}`);
  const { data, height, width, channels } = img as Partial<Image>;
  const bytes = checkBytes(data, `${name}.data`);
  const [h, w] = checkSize(height, width, name);
  if (channels !== 3 && channels !== 4) {
    throw new GenaugError('E_SHAPE', `${name}.channels must be 3 (RGB) or 4 (RGBA), got ${String(channels)}; convert grayscale or CMYK images to RGB first`);
  }
  if (bytes.length !== h * w * channels) {
    throw new GenaugError('E_SHAPE', `${name}.data has ${bytes.length} bytes but ${h} x ${w} x ${channels} = ${h * w * channels}`);
  }
  return img as Image;
}

/** Validates an RLE object and returns its size and the counts in the form the addon takes. */
export function checkRle(rle: unknown, name = 'rle'): { h: number; w: number; counts: NativeCounts } {
  if (typeof rle !== 'object' || rle === null) throw new GenaugError('E_TYPE', `${name} must be { size: [h, w], counts }, got ${typeName(rle)}`);
  const { size, counts } = rle as Partial<Rle>;
  if (!Array.isArray(size) || size.length !== 2) throw new GenaugError('E_TYPE', `${name}.size must be [height, width], got ${typeName(size)}`);
  const [h, w] = checkSize(size[0], size[1], name);
  if (typeof counts === 'string') return { h, w, counts };
  if (counts instanceof Uint32Array) return { h, w, counts };
  if (!Array.isArray(counts)) throw new GenaugError('E_TYPE', `${name}.counts must be a string or an array of run lengths, got ${typeName(counts)}`);
  const out = new Uint32Array(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > MAX_PIXELS) {
      throw new GenaugError('E_RANGE', `${name}.counts[${i}] must be an integer in [0, 2^32), got ${String(c)}`);
    }
    out[i] = c;
  }
  return { h, w, counts: out };
}

function threadsOf(o: MaskOptions | undefined): { threads?: number } {
  return o?.threads === undefined ? {} : { threads: checkInt(o.threads, 'threads', 0, 256) };
}

function connectivityOf(o: ComponentOptions | undefined): { connectivity?: number } {
  if (o?.connectivity === undefined) return {};
  if (o.connectivity !== 4 && o.connectivity !== 8) throw new GenaugError('E_RANGE', `connectivity must be 4 or 8, got ${String(o.connectivity)}`);
  return { connectivity: o.connectivity };
}

function formOf(form: unknown, fallback: RleForm): RleForm {
  if (form === undefined) return fallback;
  if (form !== 'string' && form !== 'counts') throw new GenaugError('E_RANGE', `form must be 'string' or 'counts', got ${String(form)}`);
  return form;
}

function optBool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new GenaugError('E_TYPE', `option ${key} must be a boolean, got ${typeName(v)}`);
  return v;
}

function postOptions(o: PostProcessOptions | CornerOptions | undefined): NativePostOptions {
  const src = (o ?? {}) as Record<string, unknown>;
  const out: NativePostOptions = { ...connectivityOf(o), ...threadsOf(o as MaskOptions) };
  for (const k of ['invert', 'largest', 'fillHoles', 'mask'] as const) {
    const v = optBool(src, k);
    if (v !== undefined) out[k] = v;
  }
  if (src.minArea !== undefined) out.minArea = checkInt(src.minArea, 'minArea', 0, MAX_PIXELS);
  for (const k of ['minFraction', 'maxFraction'] as const) {
    if (src[k] === undefined) continue;
    const v = checkNumber(src[k], k);
    if (v < 0 || v > 1) throw new GenaugError('E_RANGE', `${k} must lie in [0, 1], got ${v}`);
    out[k] = v;
  }
  const rle = src.rle ?? 'string';
  if (rle !== 'none' && rle !== 'string' && rle !== 'counts') throw new GenaugError('E_RANGE', `rle must be 'string', 'counts' or 'none', got ${String(rle)}`);
  out.rle = rle;
  return out;
}

const pin = pinInputs;

function toRle(c: NativeCounts, h: number, w: number): Rle {
  return { size: [h, w], counts: typeof c === 'string' ? c : Array.from(c) };
}

function bboxAt(b: Float64Array, i: number): Bbox {
  return [b[4 * i] as number, b[4 * i + 1] as number, b[4 * i + 2] as number, b[4 * i + 3] as number];
}

function postResults(r: NativePostResult, n: number, h: number, w: number): PostProcessResult[] {
  const out: PostProcessResult[] = [];
  for (let i = 0; i < n; i++) {
    const res: PostProcessResult = {
      area: r.area[i] as number,
      bbox: bboxAt(r.bbox, i),
      components: r.components[i] as number,
      ok: r.ok[i] === 1,
    };
    if (r.data) res.mask = { data: r.data.subarray(i * h * w, (i + 1) * h * w), height: h, width: w };
    if (!res.ok) res.reason = r.reason[i] as string;
    if (r.rle) res.rle = toRle(r.rle[i] as NativeCounts, h, w);
    out.push(res);
  }
  return out;
}

function single(m: Mask): [Uint8Array, number, number, number] {
  return [m.data, 1, m.height, m.width];
}
function batchArgs(m: MaskBatch): [Uint8Array, number, number, number] {
  return [m.data, m.count, m.height, m.width];
}
function imageArgs(img: Image): [Uint8Array, number, number, number] {
  return [img.data, img.height, img.width, img.channels];
}

// --- Masks ------------------------------------------------------------------

/** 1 where the mask is 0, else 0. */
export function invertMask(m: Mask): Mask {
  checkMask(m);
  return { data: addon().maskInvertSync(...single(m), { threads: 1 }), height: m.height, width: m.width };
}

export async function invertMaskBatch(m: MaskBatch, o?: MaskOptions): Promise<MaskBatch> {
  checkMaskBatch(m);
  pin(m.data);
  return { ...m, data: await addon().maskInvert(...batchArgs(m), threadsOf(o)) };
}

export function invertMaskBatchSync(m: MaskBatch, o?: MaskOptions): MaskBatch {
  checkMaskBatch(m);
  return { ...m, data: addon().maskInvertSync(...batchArgs(m), threadsOf(o)) };
}

export interface LargestComponent {
  mask: Mask;
  /** Pixels kept. */
  area: number;
  /** Components found. */
  components: number;
}

/** Keeps the largest connected component (ties: the one whose first pixel in row-major order comes first). */
export async function largestComponent(m: Mask, o?: ComponentOptions): Promise<LargestComponent> {
  checkMask(m);
  pin(m.data);
  const r = await addon().maskLargestComponent(...single(m), connectivityOf(o));
  return { mask: { data: r.data, height: m.height, width: m.width }, area: r.area[0] as number, components: r.components[0] as number };
}

export function largestComponentSync(m: Mask, o?: ComponentOptions): LargestComponent {
  checkMask(m);
  const r = addon().maskLargestComponentSync(...single(m), connectivityOf(o));
  return { mask: { data: r.data, height: m.height, width: m.width }, area: r.area[0] as number, components: r.components[0] as number };
}

export interface LargestComponentBatch {
  masks: MaskBatch;
  area: number[];
  components: number[];
}

export async function largestComponentBatch(m: MaskBatch, o?: ComponentOptions): Promise<LargestComponentBatch> {
  checkMaskBatch(m);
  pin(m.data);
  const r = await addon().maskLargestComponent(...batchArgs(m), { ...connectivityOf(o), ...threadsOf(o) });
  return { masks: { ...m, data: r.data }, area: Array.from(r.area), components: Array.from(r.components) };
}

export function largestComponentBatchSync(m: MaskBatch, o?: ComponentOptions): LargestComponentBatch {
  checkMaskBatch(m);
  const r = addon().maskLargestComponentSync(...batchArgs(m), { ...connectivityOf(o), ...threadsOf(o) });
  return { masks: { ...m, data: r.data }, area: Array.from(r.area), components: Array.from(r.components) };
}

/** Fills the background regions that do not reach the border (dual connectivity). */
export async function fillHoles(m: Mask, o?: ComponentOptions): Promise<Mask> {
  checkMask(m);
  pin(m.data);
  return { data: await addon().maskFillHoles(...single(m), connectivityOf(o)), height: m.height, width: m.width };
}

export function fillHolesSync(m: Mask, o?: ComponentOptions): Mask {
  checkMask(m);
  return { data: addon().maskFillHolesSync(...single(m), connectivityOf(o)), height: m.height, width: m.width };
}

export async function fillHolesBatch(m: MaskBatch, o?: ComponentOptions): Promise<MaskBatch> {
  checkMaskBatch(m);
  pin(m.data);
  return { ...m, data: await addon().maskFillHoles(...batchArgs(m), { ...connectivityOf(o), ...threadsOf(o) }) };
}

export function fillHolesBatchSync(m: MaskBatch, o?: ComponentOptions): MaskBatch {
  checkMaskBatch(m);
  return { ...m, data: addon().maskFillHolesSync(...batchArgs(m), { ...connectivityOf(o), ...threadsOf(o) }) };
}

/** Foreground pixel count. */
export function maskArea(m: Mask): number {
  checkMask(m);
  return addon().maskStatsSync(...single(m)).area[0] as number;
}

/** Tight COCO box [x, y, w, h]; [0, 0, 0, 0] for an empty mask. */
export function maskBbox(m: Mask): Bbox {
  checkMask(m);
  return bboxAt(addon().maskStatsSync(...single(m)).bbox, 0);
}

export interface MaskStats {
  area: number[];
  bbox: Bbox[];
}

export async function maskStatsBatch(m: MaskBatch, o?: MaskOptions): Promise<MaskStats> {
  checkMaskBatch(m);
  pin(m.data);
  const r = await addon().maskStats(...batchArgs(m), threadsOf(o));
  return { area: Array.from(r.area), bbox: Array.from({ length: m.count }, (_, i) => bboxAt(r.bbox, i)) };
}

export function maskStatsBatchSync(m: MaskBatch, o?: MaskOptions): MaskStats {
  checkMaskBatch(m);
  const r = addon().maskStatsSync(...batchArgs(m), threadsOf(o));
  return { area: Array.from(r.area), bbox: Array.from({ length: m.count }, (_, i) => bboxAt(r.bbox, i)) };
}

function sameSize(a: { height: number; width: number }, b: { height: number; width: number }, an: string, bn: string): void {
  if (a.height !== b.height || a.width !== b.width) {
    throw new GenaugError('E_SHAPE', `${an} is ${a.height} x ${a.width} but ${bn} is ${b.height} x ${b.width}`);
  }
}

/** |a and b| / |a or b|; 0 when both are empty (as pycocotools). */
export function maskIou(a: Mask, b: Mask): number {
  checkMask(a, 'a');
  checkMask(b, 'b');
  sameSize(a, b, 'a', 'b');
  return addon().maskIouSync(a.data, ...single(b))[0] as number;
}

/** IoU of a[i] and b[i] for every i. */
export async function maskIouBatch(a: MaskBatch, b: MaskBatch, o?: MaskOptions): Promise<number[]> {
  checkMaskBatch(a, 'a');
  checkMaskBatch(b, 'b');
  sameSize(a, b, 'a', 'b');
  if (a.count !== b.count) throw new GenaugError('E_SHAPE', `a has ${a.count} masks but b has ${b.count}`);
  pin(a.data, b.data);
  return Array.from(await addon().maskIou(a.data, ...batchArgs(b), threadsOf(o)));
}

function cropArgs(image: Image, mask: Mask, bbox?: Bbox): [Uint8Array, number, number, number, Uint8Array, Float64Array | null] {
  checkImage(image);
  checkMask(mask);
  sameSize(image, mask, 'image', 'mask');
  let box: Float64Array | null = null;
  if (bbox !== undefined) {
    if (!Array.isArray(bbox) || bbox.length !== 4) throw new GenaugError('E_TYPE', `bbox must be [x, y, w, h], got ${typeName(bbox)}`);
    box = Float64Array.from(bbox.map((v, i) => checkInt(v, `bbox[${i}]`, 0)));
  }
  return [...imageArgs(image), mask.data, box];
}

function toCrop(r: { data: Uint8Array; bbox: Float64Array }): Crop {
  const bbox = bboxAt(r.bbox, 0);
  return { data: r.data, width: bbox[2], height: bbox[3], bbox };
}

/** Crops the image and mask to `bbox` (default: the mask's tight box) as RGBA with alpha = 255 * mask. */
export async function cropToMask(image: Image, mask: Mask, bbox?: Bbox): Promise<Crop> {
  const args = cropArgs(image, mask, bbox);
  pin(image.data, mask.data);
  return toCrop(await addon().maskCrop(...args));
}

export function cropToMaskSync(image: Image, mask: Mask, bbox?: Bbox): Crop {
  return toCrop(addon().maskCropSync(...cropArgs(image, mask, bbox)));
}

function toleranceOf(o: { tolerance?: number } | undefined): { tolerance?: number } {
  return o?.tolerance === undefined ? {} : { tolerance: checkInt(o.tolerance, 'tolerance', 0, 255) };
}

/**
 * The classical background estimate: a 4-connected flood fill from each
 * corner over pixels within `tolerance` (max over R, G, B of |difference|,
 * default 10) of that corner's colour. Exact on plain-background images.
 */
export async function cornerBackground(image: Image, o?: { tolerance?: number }): Promise<Mask> {
  checkImage(image);
  pin(image.data);
  return { data: await addon().maskCornerBackground(...imageArgs(image), toleranceOf(o)), height: image.height, width: image.width };
}

export function cornerBackgroundSync(image: Image, o?: { tolerance?: number }): Mask {
  checkImage(image);
  return { data: addon().maskCornerBackgroundSync(...imageArgs(image), toleranceOf(o)), height: image.height, width: image.width };
}

function cornerOptions(o: CornerOptions | undefined) {
  const src = (o ?? {}) as Record<string, unknown>;
  if (src.invert !== undefined) throw new GenaugError('E_ARGUMENT', 'option invert does not apply: the corner method always inverts its background');
  const bg = optBool(src, 'background');
  return { ...postOptions(o), ...toleranceOf(o), ...(bg === undefined ? {} : { background: bg }) };
}

function cornerResult(r: NativePostResult, image: Image): CornerResult {
  const res: CornerResult = postResults(r, 1, image.height, image.width)[0] as PostProcessResult;
  if (r.background) res.background = { data: r.background, height: image.height, width: image.width };
  return res;
}

/** Foreground of a plain-background image: corner background, inverted, then post-processed (largest component, holes, area checks, RLE). */
export async function foregroundFromCorners(image: Image, o?: CornerOptions): Promise<CornerResult> {
  checkImage(image);
  const opts = cornerOptions(o);
  pin(image.data);
  return cornerResult(await addon().maskCornerForeground(...imageArgs(image), opts), image);
}

export function foregroundFromCornersSync(image: Image, o?: CornerOptions): CornerResult {
  checkImage(image);
  return cornerResult(addon().maskCornerForegroundSync(...imageArgs(image), cornerOptions(o)), image);
}

/** The post-processing chain in one native call: [invert] -> largest component -> fill holes -> box, area -> area checks -> RLE. */
export async function postProcessMask(m: Mask, o?: PostProcessOptions): Promise<PostProcessResult> {
  checkMask(m);
  const opts = postOptions(o);
  pin(m.data);
  return postResults(await addon().maskPostProcess(...single(m), opts), 1, m.height, m.width)[0] as PostProcessResult;
}

export function postProcessMaskSync(m: Mask, o?: PostProcessOptions): PostProcessResult {
  checkMask(m);
  return postResults(addon().maskPostProcessSync(...single(m), postOptions(o)), 1, m.height, m.width)[0] as PostProcessResult;
}

export async function postProcessBatch(m: MaskBatch, o?: PostProcessOptions): Promise<PostProcessResult[]> {
  checkMaskBatch(m);
  const opts = postOptions(o);
  pin(m.data);
  return postResults(await addon().maskPostProcess(...batchArgs(m), opts), m.count, m.height, m.width);
}

export function postProcessBatchSync(m: MaskBatch, o?: PostProcessOptions): PostProcessResult[] {
  checkMaskBatch(m);
  return postResults(addon().maskPostProcessSync(...batchArgs(m), postOptions(o)), m.count, m.height, m.width);
}

// --- COCO RLE -----------------------------------------------------------------

/** pycocotools' mask.encode (compressed string by default) of a row-major mask, without a Fortran copy. */
export async function encodeRle(m: Mask, o?: { form?: RleForm }): Promise<Rle> {
  checkMask(m);
  const form = formOf(o?.form, 'string');
  pin(m.data);
  return toRle((await addon().rleEncode(...single(m), { form }))[0] as NativeCounts, m.height, m.width);
}

export function encodeRleSync(m: Mask, o?: { form?: RleForm }): Rle {
  checkMask(m);
  return toRle(addon().rleEncodeSync(...single(m), { form: formOf(o?.form, 'string') })[0] as NativeCounts, m.height, m.width);
}

export async function encodeRleBatch(m: MaskBatch, o?: MaskOptions & { form?: RleForm }): Promise<Rle[]> {
  checkMaskBatch(m);
  const form = formOf(o?.form, 'string');
  pin(m.data);
  return (await addon().rleEncode(...batchArgs(m), { form, ...threadsOf(o) })).map((c) => toRle(c, m.height, m.width));
}

export function encodeRleBatchSync(m: MaskBatch, o?: MaskOptions & { form?: RleForm }): Rle[] {
  checkMaskBatch(m);
  return addon().rleEncodeSync(...batchArgs(m), { form: formOf(o?.form, 'string'), ...threadsOf(o) }).map((c) => toRle(c, m.height, m.width));
}

/** pycocotools' mask.decode into a row-major 0/1 mask. Counts must sum to height * width (E_FORMAT). */
export async function decodeRle(rle: Rle): Promise<Mask> {
  const { h, w, counts } = checkRle(rle);
  if (counts instanceof Uint32Array) pin(counts);
  return { data: await addon().rleDecode([counts], h, w), height: h, width: w };
}

export function decodeRleSync(rle: Rle): Mask {
  const { h, w, counts } = checkRle(rle);
  return { data: addon().rleDecodeSync([counts], h, w), height: h, width: w };
}

function sameSizeRles(rles: readonly Rle[], name: string): { h: number; w: number; counts: NativeCounts[] } {
  if (!Array.isArray(rles)) throw new GenaugError('E_TYPE', `${name} must be an array of RLEs, got ${typeName(rles)}`);
  const all = rles.map((r, i) => checkRle(r, `${name}[${i}]`));
  const first = all[0];
  for (let i = 1; i < all.length; i++) {
    const r = all[i] as { h: number; w: number };
    if (first && (r.h !== first.h || r.w !== first.w)) {
      throw new GenaugError('E_SHAPE', `${name}[${i}] is ${r.h} x ${r.w} but ${name}[0] is ${first.h} x ${first.w}`);
    }
  }
  return { h: first?.h ?? 0, w: first?.w ?? 0, counts: all.map((r) => r.counts) };
}

/** Decodes RLEs of one size into a batch. */
export async function decodeRleBatch(rles: readonly Rle[], o?: MaskOptions): Promise<MaskBatch> {
  const { h, w, counts } = sameSizeRles(rles, 'rles');
  return { data: await addon().rleDecode(counts, h, w, threadsOf(o)), count: counts.length, height: h, width: w };
}

export function decodeRleBatchSync(rles: readonly Rle[], o?: MaskOptions): MaskBatch {
  const { h, w, counts } = sameSizeRles(rles, 'rles');
  return { data: addon().rleDecodeSync(counts, h, w, threadsOf(o)), count: counts.length, height: h, width: w };
}

/** pycocotools' mask.area. */
export function rleArea(rle: Rle): number {
  const { h, w, counts } = checkRle(rle);
  return addon().rleArea(counts, h, w);
}

/** pycocotools' mask.toBbox: [x, y, w, h]. */
export function rleToBbox(rle: Rle): Bbox {
  const { h, w, counts } = checkRle(rle);
  return bboxAt(addon().rleToBbox(counts, h, w), 0);
}

/** The compressed string form (as pycocotools' frUncompressedRLE / encode write it). */
export function compressRle(rle: Rle): Rle {
  const { h, w, counts } = checkRle(rle);
  if (typeof counts === 'string') return { size: [h, w], counts };
  return { size: [h, w], counts: addon().rleToString(counts) };
}

/** The uncompressed counts of an RLE (validated: they must sum to height * width). */
export function uncompressRle(rle: Rle): Rle {
  const { h, w, counts } = checkRle(rle);
  if (typeof counts === 'string') return { size: [h, w], counts: Array.from(addon().rleFromString(counts, h, w)) };
  addon().rleArea(counts, h, w);  // validates the sum
  return { size: [h, w], counts: Array.from(counts) };
}

/** pycocotools' mask.merge: union (default) or intersection of RLEs of one size. */
export function mergeRles(rles: readonly Rle[], o?: { intersect?: boolean; form?: RleForm }): Rle {
  const { h, w, counts } = sameSizeRles(rles, 'rles');
  if (counts.length === 0) throw new GenaugError('E_SHAPE', 'mergeRles needs at least one RLE');
  const intersect = o?.intersect ?? false;
  if (typeof intersect !== 'boolean') throw new GenaugError('E_TYPE', 'intersect must be a boolean');
  return toRle(addon().rleMerge(counts, h, w, intersect, { form: formOf(o?.form, 'string') }), h, w);
}

function iouArgs(dt: readonly Rle[], gt: readonly Rle[], iscrowd?: readonly (boolean | number)[]) {
  const d = sameSizeRles(dt, 'detections');
  const g = sameSizeRles(gt, 'groundTruths');
  if (d.counts.length > 0 && g.counts.length > 0 && (d.h !== g.h || d.w !== g.w)) {
    throw new GenaugError('E_SHAPE', `detections are ${d.h} x ${d.w} but ground truths are ${g.h} x ${g.w}`);
  }
  let crowd: Uint8Array | null = null;
  if (iscrowd !== undefined) {
    if (!Array.isArray(iscrowd) || iscrowd.length !== g.counts.length) {
      throw new GenaugError('E_SHAPE', `iscrowd must have one entry per ground truth (${g.counts.length})`);
    }
    crowd = Uint8Array.from(iscrowd, (v) => (v ? 1 : 0));
  }
  const h = d.counts.length > 0 ? d.h : g.h;
  const w = d.counts.length > 0 ? d.w : g.w;
  return [d.counts, g.counts, h, w, crowd] as const;
}

function iouMatrix(flat: Float64Array, D: number, G: number): number[][] {
  return Array.from({ length: D }, (_, d) => Array.from(flat.subarray(d * G, (d + 1) * G)));
}

/** pycocotools' mask.iou: iou[d][g]; a crowd ground truth divides by the detection's area. */
export async function rleIou(dt: readonly Rle[], gt: readonly Rle[], iscrowd?: readonly (boolean | number)[], o?: MaskOptions): Promise<number[][]> {
  const args = iouArgs(dt, gt, iscrowd);
  return iouMatrix(await addon().rleIou(...args, threadsOf(o)), dt.length, gt.length);
}

export function rleIouSync(dt: readonly Rle[], gt: readonly Rle[], iscrowd?: readonly (boolean | number)[], o?: MaskOptions): number[][] {
  const args = iouArgs(dt, gt, iscrowd);
  return iouMatrix(addon().rleIouSync(...args, threadsOf(o)), dt.length, gt.length);
}

/**
 * COCO polygons ([[x0, y0, x1, y1, ...], ...], or a PackedPolygons) rasterised and merged as
 * pycocotools' frPyObjects + merge (annToRLE). As in pycocotools, when the
 * first entry has exactly 4 numbers every entry is read as a box [x, y, w, h].
 */
export function polygonsToRle(polygons: readonly (readonly number[])[] | PackedPolygons, height: number, width: number, o?: { form?: RleForm }): Rle {
  const [h, w] = checkSize(height, width, 'image');
  if (polygons instanceof PackedPolygons) {
    // The packed rings straight into the rasteriser's Float64Arrays (no number[] in between); same doubles, same mask.
    if (polygons.ringCount === 0) throw new GenaugError('E_SHAPE', 'polygons must be a non-empty array of coordinate lists');
    return toRle(addon().rleFromPolygons(polygons.toFloat64Rings(), h, w, { form: formOf(o?.form, 'string') }), h, w);
  }
  if (!Array.isArray(polygons) || polygons.length === 0) throw new GenaugError('E_SHAPE', 'polygons must be a non-empty array of coordinate lists');
  const polys = polygons.map((p, i) => {
    if (!Array.isArray(p)) throw new GenaugError('E_TYPE', `polygons[${i}] must be an array of numbers, got ${typeName(p)}`);
    return Float64Array.from(p, (v, j) => checkNumber(v, `polygons[${i}][${j}]`));
  });
  return toRle(addon().rleFromPolygons(polys, h, w, { form: formOf(o?.form, 'string') }), h, w);
}

/**
 * A COCO `segmentation` (polygons, uncompressed RLE or compressed RLE) as a
 * compressed RLE of the image's size, as pycocotools' annToRLE.
 */
export function segmentationToRle(segmentation: unknown, height: number, width: number): Rle {
  if (Array.isArray(segmentation)) return polygonsToRle(segmentation as number[][], height, width);
  if (segmentation instanceof PackedPolygons) return polygonsToRle(segmentation, height, width);
  const { h, w } = checkRle(segmentation, 'segmentation');
  if (h !== height || w !== width) throw new GenaugError('E_SHAPE', `segmentation is ${h} x ${w} but the image is ${height} x ${width}`);
  const c = compressRle(segmentation as Rle);
  rleArea(c);  // validates
  return c;
}
