/**
 * The one home of image decoding. Every image genaug reads goes through
 * `readImage` (pixels) or `imageInfo` (header only), so the rules hold
 * everywhere:
 *
 * - pixels come out as 8-bit sRGB, RGB or RGBA, whatever went in (16-bit,
 *   CMYK, greyscale, palette, with or without alpha);
 * - EXIF orientation is applied: pixels, width and height are in the frame
 *   viewers show;
 * - the pixel count is checked from the header before anything is decoded
 *   (E_LIMIT; default DEFAULT_MAX_PIXELS), so a small file that claims a huge
 *   image costs nothing;
 * - only regular files are opened (a folder, /dev/zero or a FIFO is E_IO, not
 *   a hang);
 * - errors are GenaugErrors naming the image: E_IO missing or unreadable,
 *   E_FORMAT undecodable, E_LIMIT too many pixels.
 *
 * Decode trace: when the environment variable GENAUG_DECODE_LOG names a file,
 * each decode appends one line to it (the absolute path, or `<buffer>` for
 * encoded bytes), so tests can count how often each image is decoded. It is
 * read at every decode (worker threads included) and costs one property read
 * when unset. Raw pixels are not decoded and are not logged.
 */
import { appendFileSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { resolve } from 'node:path';

import sharp, { type Metadata, type Sharp } from 'sharp';

import { GenaugError } from '../native/errors.js';
import { checkInt } from '../native/validate.js';

/** Row-major 8-bit pixels, `channels` per pixel. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** A path, an encoded image (PNG/JPEG/WebP/... bytes), or decoded pixels. */
export type ImageInput = string | Buffer | RawImage;

/** Row-major 8-bit RGB, 3 bytes per pixel. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Row-major 8-bit sRGB, `channels` (3: RGB, 4: RGBA) bytes per pixel. */
export interface DecodedImage extends RgbImage {
  channels: 3 | 4;
}

/**
 * The default pixel limit (width x height, checked from the header before
 * decoding): 8192 x 8192 = 64 Mi pixels (256 MiB as RGBA). Larger than any
 * generated or training image genaug expects; a 16000² decompression bomb of
 * a few hundred KB is refused instead of costing gigabytes. Raise it with the
 * maxPixels option (--max-pixels) for genuinely huge images.
 */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** What an image with an alpha channel is composited onto for RGB: 'none' drops alpha (keeps the RGB under it). */
export type AlphaBackground = 'none' | 'black' | 'white';

export interface ReadImageOptions {
  /** 3: RGB (default); 4: RGBA, alpha 255 where the image has none. */
  channels?: 3 | 4;
  /** With RGB: drop alpha ('none', default) or composite it onto black or white: round(a·rgb + (1 − a)·bg). */
  background?: AlphaBackground;
  /** Refuse (E_LIMIT) images with more pixels than this, from the header (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Shrink (never enlarge) so the longer side is at most this, keeping the aspect (sharp's default kernel). */
  maxSide?: number;
}

/** What the header says; width and height are in the displayed frame (EXIF orientation applied). */
export interface ImageInfo {
  width: number;
  height: number;
  /** Channels as stored (1 grey, 2 grey + alpha, 3, 4 RGBA or CMYK). */
  channels: number;
  /** 'png', 'jpeg', 'webp', ... as sharp names it. */
  format: string;
  hasAlpha: boolean;
  /** 'srgb', 'b-w', 'cmyk', 'rgb16', 'grey16', ... as sharp names it. */
  space: string;
  /** 'uchar', 'ushort', ... */
  depth: string;
  /** EXIF orientation 1..8 (1 when absent). */
  orientation: number;
}

function isRawImage(v: unknown): v is RawImage {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && 'data' in v && 'width' in v && 'height' in v;
}

function checkRaw(img: RawImage): void {
  if (!(img.data instanceof Uint8Array)) throw new GenaugError('E_DTYPE', 'raw image data must be a Uint8Array');
  checkInt(img.width, 'image width', 1, 1 << 20);
  checkInt(img.height, 'image height', 1, 1 << 20);
  if (img.channels !== 1 && img.channels !== 3 && img.channels !== 4) {
    throw new GenaugError('E_RANGE', `raw image channels must be 1, 3 or 4, got ${String(img.channels)}`);
  }
  const want = img.width * img.height * img.channels;
  if (img.data.length !== want) {
    throw new GenaugError('E_SHAPE', `raw image data has ${img.data.length} bytes, expected ${img.width} x ${img.height} x ${img.channels} = ${want}`);
  }
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A regular, readable file, or E_IO naming it (checked before sharp opens it: a FIFO or device would block). */
async function checkFile(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new GenaugError('E_IO', `image ${path} is not a regular file`, { path });
    await access(path, fsConstants.R_OK);
  } catch (e) {
    if (e instanceof GenaugError) throw e;
    const code = errno(e);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : messageOf(e);
    throw new GenaugError('E_IO', `image ${path} ${why}`, { path, errno: code }, { cause: e });
  }
}

/** The error detail naming the image: its path, or a description of the buffer. */
function detailOf(label: string, path: string | undefined): Record<string, unknown> {
  return path === undefined ? { image: label } : { path };
}

/** A sharp error as a GenaugError naming the image. */
function decodeError(e: unknown, label: string, path: string | undefined, maxPixels: number): GenaugError {
  if (e instanceof GenaugError) return e;
  const msg = messageOf(e);
  const detail = detailOf(label, path);
  if (/pixel limit/i.test(msg)) return new GenaugError('E_LIMIT', `image ${label} has more pixels than the limit of ${maxPixels}${RAISE} (${msg})`, detail, { cause: e });
  if (/input file is missing/i.test(msg)) return new GenaugError('E_IO', `image ${label} does not exist`, detail, { cause: e });
  return new GenaugError('E_FORMAT', `image ${label} could not be decoded: ${msg}`, detail, { cause: e });
}

/** How the pixel limit is raised, for E_LIMIT messages. */
const RAISE = ' (raise it with --max-pixels, or the maxPixels option)';

/**
 * The raster formats genaug reads. sharp also renders SVG (and, depending on
 * its build, PDF and other documents): a vector file can name other files,
 * expand entities or draw at any size, and is no photograph; it is refused.
 */
const RASTER_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif', 'jp2', 'jxl']);

function checkRaster(m: Metadata, label: string, path: string | undefined): void {
  if (m.format && !RASTER_FORMATS.has(m.format)) {
    throw new GenaugError('E_FORMAT', `image ${label} is ${m.format.toUpperCase()}, not a raster image genaug reads (${[...RASTER_FORMATS].join(', ')})`, detailOf(label, path));
  }
}

/** Oriented width and height from sharp's metadata. */
function orientedSize(m: Metadata): { width: number; height: number } {
  const o = m.autoOrient;
  if (o && o.width && o.height) return { width: o.width, height: o.height };
  const swap = (m.orientation ?? 1) >= 5;
  return { width: (swap ? m.height : m.width) ?? 0, height: (swap ? m.width : m.height) ?? 0 };
}

function labelOf(input: string | Buffer): string {
  return typeof input === 'string' ? input : `an encoded image buffer of ${input.length} bytes`;
}

/** Header only: size (in the displayed frame), channels, format. E_IO / E_FORMAT name the image. */
export async function imageInfo(input: string | Buffer): Promise<ImageInfo> {
  if (typeof input !== 'string' && !Buffer.isBuffer(input)) {
    throw new GenaugError('E_TYPE', 'imageInfo takes a path or a Buffer of encoded bytes');
  }
  const path = typeof input === 'string' ? input : undefined;
  if (path !== undefined) await checkFile(path);
  const label = labelOf(input);
  let m: Metadata;
  try {
    m = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw decodeError(e, label, path, DEFAULT_MAX_PIXELS);
  }
  checkRaster(m, label, path);
  const { width, height } = orientedSize(m);
  if (!(width > 0 && height > 0) || !m.format) throw new GenaugError('E_FORMAT', `image ${label} has no size in its header`, detailOf(label, path));
  return {
    width,
    height,
    channels: m.channels ?? 0,
    format: m.format,
    hasAlpha: Boolean(m.hasAlpha),
    space: String(m.space ?? ''),
    depth: String(m.depth ?? ''),
    orientation: m.orientation ?? 1,
  };
}

function traceDecode(input: string | Buffer): void {
  const log = process.env.GENAUG_DECODE_LOG;
  if (!log) return;
  appendFileSync(log, `${typeof input === 'string' ? resolve(input) : '<buffer>'}\n`);
}

/**
 * Composites row-major RGBA onto black or white: out = round(a·rgb + (1 − a)·bg),
 * a = alpha / 255 (what readImage does with a background).
 */
export function compositeAlpha(rgba: Uint8Array, width: number, height: number, background: 'black' | 'white'): RgbImage {
  if (rgba.length !== width * height * 4) throw new GenaugError('E_SHAPE', `RGBA image has ${rgba.length} bytes, expected ${width} x ${height} x 4`);
  const bg = background === 'white' ? 255 : 0;
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = (rgba[i * 4 + 3] as number) / 255;
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(a * (rgba[i * 4 + c] as number) + (1 - a) * bg);
  }
  return { data: rgb, width, height };
}

/**
 * Decodes an image to 8-bit sRGB, RGB (default) or RGBA, EXIF orientation
 * applied. A path must be a regular readable file (E_IO); encoded bytes that
 * do not decode are E_FORMAT; more pixels than `maxPixels` in the header is
 * E_LIMIT before any decoding. Raw pixels are converted (grey expanded, alpha
 * dropped, added or composited) and checked against the limit too.
 */
export async function readImage(input: ImageInput, o: ReadImageOptions = {}): Promise<DecodedImage> {
  const channels = o.channels ?? 3;
  if (channels !== 3 && channels !== 4) throw new GenaugError('E_ARGUMENT', `channels must be 3 or 4, got ${JSON.stringify(channels)}`);
  const background = o.background ?? 'none';
  if (background !== 'none' && background !== 'black' && background !== 'white') {
    throw new GenaugError('E_ARGUMENT', `background must be none, black or white, got ${JSON.stringify(background)}`);
  }
  if (background !== 'none' && channels === 4) throw new GenaugError('E_ARGUMENT', 'a background is composited only when decoding to RGB (channels 3)');
  const maxPixels = checkInt(o.maxPixels ?? DEFAULT_MAX_PIXELS, 'maxPixels', 1);
  if (o.maxSide !== undefined) checkInt(o.maxSide, 'maxSide', 1);

  let src: Sharp;
  let label: string;
  let path: string | undefined;
  if (isRawImage(input)) {
    checkRaw(input);
    label = 'a raw image';
    if (input.width * input.height > maxPixels) {
      throw new GenaugError('E_LIMIT', `${label} has ${input.width} x ${input.height} pixels, more than the limit of ${maxPixels}${RAISE}`);
    }
    src = sharp(input.data, { raw: { width: input.width, height: input.height, channels: input.channels }, limitInputPixels: false });
  } else {
    if (typeof input === 'string') {
      path = input;
      await checkFile(path);
    } else if (!Buffer.isBuffer(input)) {
      throw new GenaugError('E_TYPE', 'an image must be a path, a Buffer of encoded bytes, or { data, width, height, channels }');
    }
    label = labelOf(input);
    // The header first: the pixel count is known before anything is decoded.
    src = sharp(input, { limitInputPixels: false, failOn: 'warning', autoOrient: true });
    let m: Metadata;
    try {
      m = await src.metadata();
    } catch (e) {
      throw decodeError(e, label, path, maxPixels);
    }
    checkRaster(m, label, path);
    const w = m.width ?? 0;
    const h = m.height ?? 0;
    if (w * h > maxPixels) {
      throw new GenaugError('E_LIMIT', `image ${label} is ${w} x ${h} = ${w * h} pixels, more than the limit of ${maxPixels}${RAISE}`, detailOf(label, path));
    }
    traceDecode(input);
  }

  try {
    if (o.maxSide !== undefined) src = src.resize({ width: o.maxSide, height: o.maxSide, fit: 'inside', withoutEnlargement: true });
    if (channels === 4) src = src.ensureAlpha();
    else if (background === 'none') src = src.removeAlpha();
    const { data, info } = await src.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const px = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (channels === 3 && background !== 'none' && info.channels === 4) {
      return { ...compositeAlpha(px, info.width, info.height, background), channels: 3 };
    }
    if (info.channels !== channels) throw new GenaugError('E_FORMAT', `image ${label} decoded to ${info.channels} channels, expected ${channels}`, detailOf(label, path));
    return { data: px, width: info.width, height: info.height, channels };
  } catch (e) {
    throw decodeError(e, label, path, maxPixels);
  }
}

/** File name extensions read as images when a folder is listed (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff', '.gif', '.avif'];
