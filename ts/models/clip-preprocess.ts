/**
 * The Hugging Face CLIPImageProcessor (the PIL-based, "slow" one that
 * CLIPProcessor uses), driven by a model's preprocessor_config.json:
 *
 *   convert to RGB → resize (shortest edge to `size.shortest_edge`, the long
 *   side int()-truncated, or to {height, width}) with PIL's resampling →
 *   centre crop to `crop_size` (top = (h − crop_h) // 2, zero padding when the
 *   image is smaller) → × rescale_factor (float64, then float32) → (x − mean) /
 *   std in float32 → CHW float32.
 *
 * The resize is PIL's ImagingResample for 8-bit images reproduced exactly:
 * separable filters (bicubic a = −0.5, support scaled by the downscale factor,
 * i.e. antialiased), coefficients normalised to sum 1 and converted to 22-bit
 * fixed point, the horizontal pass first (over the rows the vertical pass will
 * read only), rounded and clamped to uint8, then the vertical pass. Outputs
 * are byte-identical to Pillow's `Image.resize` (test/fixtures/pil-resize.json
 * was made by Pillow), so the float tensor matches Python's bit for bit.
 *
 * The coefficient tables and the value table are computed here (cached); the
 * pixel loops run natively (native/core/resample.cc: the same integer sums,
 * so the same bytes), the resize, crop and normalise of one image in one call
 * straight into the batch tensor. {@link pilResizeReference} is the
 * TypeScript loop the native one replaced, kept as a reference.
 */
import { GenaugError } from '../native/errors.js';
import { native } from '../native/load.js';
import { checkInt } from '../native/validate.js';
import type { RgbInput } from './types.js';
import { readModelJson } from './tokenizer.js';

/** PIL's resampling filter numbers (Image.Resampling). */
export const PIL_RESAMPLE = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;
export type ResampleFilter = 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming';

export interface ClipPreprocessConfig {
  doConvertRgb: boolean;
  doResize: boolean;
  /** Resize target: the shortest edge, or an exact height × width. */
  size: { shortestEdge: number } | { height: number; width: number };
  resample: ResampleFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

/** OpenAI CLIP's processor (ViT-B/32, ViT-L/14 at 224). */
export const OPENAI_CLIP_PREPROCESS: ClipPreprocessConfig = {
  doConvertRgb: true,
  doResize: true,
  size: { shortestEdge: 224 },
  resample: 'bicubic',
  doCenterCrop: true,
  cropSize: { height: 224, width: 224 },
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
};

// ---------------------------------------------------------------------------
// preprocessor_config.json

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the fields of a preprocessor_config.json object (missing ones take
 * CLIPImageProcessor's defaults). `size` may be an int (shortest edge),
 * {shortest_edge} or {height, width}; `crop_size` an int or {height, width}.
 */
export function parsePreprocessorConfig(json: unknown, source = 'preprocessor_config.json'): ClipPreprocessConfig {
  const bad = (field: string, why: string): never => {
    throw new GenaugError('E_MODEL', `${source}: field "${field}" ${why}`, { path: source, field });
  };
  if (!isObj(json)) throw new GenaugError('E_MODEL', `${source}: expected a JSON object`, { path: source });
  const d = OPENAI_CLIP_PREPROCESS;
  const bool = (k: string, def: boolean): boolean => {
    const v = json[k];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') bad(k, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const posInt = (k: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 16384) bad(k, `must be an integer in [1, 16384], got ${JSON.stringify(v)}`);
    return v as number;
  };
  const triple = (k: string, def: [number, number, number]): [number, number, number] => {
    const v = json[k];
    if (v === undefined || v === null) return def;
    const arr = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      bad(k, `must be a number or a list of 3 numbers, got ${JSON.stringify(v)}`);
    }
    return arr as [number, number, number];
  };

  let size: ClipPreprocessConfig['size'] = d.size;
  const sz = json.size;
  if (typeof sz === 'number') size = { shortestEdge: posInt('size', sz) };
  else if (isObj(sz)) {
    if (sz.shortest_edge !== undefined) size = { shortestEdge: posInt('size.shortest_edge', sz.shortest_edge) };
    else if (sz.height !== undefined && sz.width !== undefined) size = { height: posInt('size.height', sz.height), width: posInt('size.width', sz.width) };
    else bad('size', `needs shortest_edge or height and width, got ${JSON.stringify(sz)}`);
  } else if (sz !== undefined && sz !== null) bad('size', `must be an int or an object, got ${JSON.stringify(sz)}`);

  let cropSize = d.cropSize;
  const cs = json.crop_size;
  if (typeof cs === 'number') cropSize = { height: posInt('crop_size', cs), width: cs };
  else if (isObj(cs)) cropSize = { height: posInt('crop_size.height', cs.height), width: posInt('crop_size.width', cs.width) };
  else if (cs !== undefined && cs !== null) bad('crop_size', `must be an int or {height, width}, got ${JSON.stringify(cs)}`);

  let resample: ResampleFilter = 'bicubic';
  const rs = json.resample;
  if (rs !== undefined && rs !== null) {
    const name = (Object.keys(PIL_RESAMPLE) as Array<keyof typeof PIL_RESAMPLE>).find((k) => PIL_RESAMPLE[k] === rs);
    if (!name || name === 'nearest') bad('resample', `must be one of 1 (lanczos), 2 (bilinear), 3 (bicubic), 4 (box), 5 (hamming); got ${JSON.stringify(rs)}`);
    resample = name as ResampleFilter;
  }
  const rf = json.rescale_factor;
  if (rf !== undefined && (typeof rf !== 'number' || !Number.isFinite(rf))) bad('rescale_factor', `must be a number, got ${JSON.stringify(rf)}`);
  const std = triple('image_std', d.imageStd);
  if (std.some((s) => s === 0)) bad('image_std', 'must not contain 0');
  return {
    doConvertRgb: bool('do_convert_rgb', true),
    doResize: bool('do_resize', true),
    size,
    resample,
    doCenterCrop: bool('do_center_crop', true),
    cropSize,
    doRescale: bool('do_rescale', true),
    rescaleFactor: (rf as number | undefined) ?? d.rescaleFactor,
    doNormalize: bool('do_normalize', true),
    imageMean: triple('image_mean', d.imageMean),
    imageStd: std,
  };
}

/** Reads and parses a preprocessor_config.json; a missing file is E_MODEL naming it. */
export async function readPreprocessorConfig(path: string): Promise<ClipPreprocessConfig> {
  return parsePreprocessorConfig(await readModelJson(path, 'preprocessor config'), path);
}

/**
 * The tensor size every image comes out at, or undefined when it depends on
 * the image (shortest-edge resize without a centre crop).
 */
export function outputSize(cfg: ClipPreprocessConfig): { height: number; width: number } | undefined {
  if (cfg.doCenterCrop) return cfg.cropSize;
  if (cfg.doResize && 'height' in cfg.size) return { height: cfg.size.height, width: cfg.size.width };
  return undefined;
}

/** HF's get_resize_output_image_size: [height, width] after the resize step. */
export function resizeOutputSize(height: number, width: number, cfg: ClipPreprocessConfig): [number, number] {
  if (!cfg.doResize) return [height, width];
  if ('height' in cfg.size) return [cfg.size.height, cfg.size.width];
  const s = cfg.size.shortestEdge;
  if (width <= height) return [Math.trunc((s * height) / width), s];
  return [s, Math.trunc((s * width) / height)];
}

// ---------------------------------------------------------------------------
// PIL's resampling (libImaging/Resample.c), 8 bits per channel

const FILTERS: Record<ResampleFilter, { support: number; f: (x: number) => number }> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    f: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    f: (x) => {
      let a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      a *= Math.PI;
      return (Math.sin(a) / a) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(a));
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const A = -0.5;
      const a = Math.abs(x);
      if (a < 1) return ((A + 2) * a - (A + 3)) * a * a + 1;
      if (a < 2) return (((a - 5) * a + 8) * a - 4) * A;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    f: (x) => {
      const sinc = (v: number): number => {
        if (v === 0) return 1;
        const p = v * Math.PI;
        return Math.sin(p) / p;
      };
      return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

/** One axis's coefficient table: for each output index the first input index, the tap count and ksize fixed-point taps. */
export interface ResampleCoeffs {
  ksize: number;
  /** [first, count] per output index. */
  bounds: Int32Array;
  /** Fixed-point (22-bit) taps, ksize per output index. */
  fixed: Int32Array;
  /** The same taps as doubles (normalised to sum 1), for float references. */
  weights: Float64Array;
}

const coeffCache = new Map<string, ResampleCoeffs>();

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize). */
export function resampleCoeffs(inSize: number, outSize: number, filter: ResampleFilter = 'bicubic'): ResampleCoeffs {
  const key = `${inSize}:${outSize}:${filter}`;
  const hit = coeffCache.get(key);
  if (hit) return hit;
  const fp = FILTERS[filter];
  if (!fp) throw new GenaugError('E_RANGE', `unknown resampling filter ${JSON.stringify(filter)}`);
  // PIL passes the box as C floats; 0 and an int size are exact.
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = fp.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const fixed = new Int32Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const base = xx * ksize;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fp.f((x + xmin - center + 0.5) * ss);
      weights[base + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      if (ww !== 0) weights[base + x] = (weights[base + x] as number) / ww;
      const k = weights[base + x] as number;
      fixed[base + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const c = { ksize, bounds, fixed, weights };
  if (coeffCache.size > 256) coeffCache.clear();
  coeffCache.set(key, c);
  return c;
}

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function checkRgb(img: RgbInput, what: string): void {
  if (typeof img !== 'object' || img === null || !(img.data instanceof Uint8Array)) {
    throw new GenaugError('E_TYPE', `${what}: expected { data: Uint8Array, width, height } (interleaved RGB)`);
  }
  checkInt(img.width, `${what}: width`, 1, 1 << 20);
  checkInt(img.height, `${what}: height`, 1, 1 << 20);
  if (img.data.length !== img.width * img.height * 3) {
    throw new GenaugError('E_SHAPE', `${what}: data has ${img.data.length} bytes, expected ${img.width} x ${img.height} x 3 = ${img.width * img.height * 3}`);
  }
}

/**
 * Pillow's `Image.resize((width, height), resample)` of an RGB image,
 * byte for byte (box = the whole image, reducing_gap = None). With `window`
 * only that rectangle of the output is computed and returned (the same bytes
 * as cropping the full result).
 */
export function pilResize(img: RgbInput, width: number, height: number, filter: ResampleFilter = 'bicubic', window?: Window): RgbInput {
  return resizeNative(img, width, height, filter, window);
}

function checkWindow(width: number, height: number, window: Window | undefined): Window {
  checkInt(width, 'pilResize: width', 1, 1 << 20);
  checkInt(height, 'pilResize: height', 1, 1 << 20);
  const win = window ?? { left: 0, top: 0, width, height };
  if (win.left < 0 || win.top < 0 || win.width < 1 || win.height < 1 || win.left + win.width > width || win.top + win.height > height) {
    throw new GenaugError('E_RANGE', `pilResize: window ${JSON.stringify(win)} is not inside the ${width} x ${height} output`);
  }
  return win;
}

/** The coefficient table of an axis for the native call (null: the axis keeps its size). */
function nativeAxis(inSize: number, outSize: number, filter: ResampleFilter) {
  if (inSize === outSize) return null;
  const c = resampleCoeffs(inSize, outSize, filter);
  return { ksize: c.ksize, outSize, bounds: c.bounds, fixed: c.fixed };
}

/**
 * pilResize natively; with `to` the window goes through the value table of
 * `to.cfg` into CHW float planes at to.out[to.offset...] (and nothing is returned).
 */
function resizeNative(img: RgbInput, width: number, height: number, filter: ResampleFilter, window: Window | undefined): RgbInput;
function resizeNative(img: RgbInput, width: number, height: number, filter: ResampleFilter, window: Window | undefined, to: { lut: Float32Array; out: Float32Array; offset: number }): undefined;
function resizeNative(
  img: RgbInput,
  width: number,
  height: number,
  filter: ResampleFilter,
  window: Window | undefined,
  to?: { lut: Float32Array; out: Float32Array; offset: number },
): RgbInput | undefined {
  checkRgb(img, 'pilResize');
  const win = checkWindow(width, height, window);
  if (!FILTERS[filter]) throw new GenaugError('E_RANGE', `unknown resampling filter ${JSON.stringify(filter)}`);
  const h = nativeAxis(img.width, width, filter);
  const v = nativeAxis(img.height, height, filter);
  if (to) {
    native().pilResizeRgbSync(img.data, img.width, img.height, h, v, win.left, win.top, win.width, win.height, to.lut, to.out, to.offset);
    return undefined;
  }
  if (!h && !v) return window ? cropRect(img, win) : { data: img.data.slice(), width, height };
  const data = native().pilResizeRgbSync(img.data, img.width, img.height, h, v, win.left, win.top, win.width, win.height) as Uint8Array;
  return { data, width: win.width, height: win.height };
}

/** {@link pilResize} as TypeScript loops: the reference the native resize must match byte for byte. */
export function pilResizeReference(img: RgbInput, width: number, height: number, filter: ResampleFilter = 'bicubic', window?: Window): RgbInput {
  checkRgb(img, 'pilResize');
  checkInt(width, 'pilResize: width', 1, 1 << 20);
  checkInt(height, 'pilResize: height', 1, 1 << 20);
  const win = window ?? { left: 0, top: 0, width, height };
  if (win.left < 0 || win.top < 0 || win.width < 1 || win.height < 1 || win.left + win.width > width || win.top + win.height > height) {
    throw new GenaugError('E_RANGE', `pilResize: window ${JSON.stringify(win)} is not inside the ${width} x ${height} output`);
  }
  const inW = img.width;
  const inH = img.height;
  const needH = width !== inW;
  const needV = height !== inH;
  if (!needH && !needV) return window ? cropRect(img, win) : { data: img.data.slice(), width, height };
  const vert = resampleCoeffs(inH, height, filter);
  // The source rows the wanted output rows read (PIL: those of every output row).
  const yFirst = vert.bounds[win.top * 2] as number;
  const yLast = (vert.bounds[(win.top + win.height - 1) * 2] as number) + (vert.bounds[(win.top + win.height - 1) * 2 + 1] as number);
  const half = 1 << (PRECISION_BITS - 1);
  const outW = win.width;

  let src = img.data;
  let srcW = inW;
  let srcLeft = win.left; // column of the source image (or of the horizontal pass) the output's first column is
  let rowOffset = 0; // the first source row the vertical pass's bounds refer to
  if (needH) {
    const hc = resampleCoeffs(inW, width, filter);
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(outW * rows * 3);
    const { ksize, bounds, fixed } = hc;
    for (let yy = 0; yy < rows; yy++) {
      const inRow = (yy + yFirst) * inW * 3;
      const outRow = yy * outW * 3;
      for (let ox = 0; ox < outW; ox++) {
        const xx = ox + win.left;
        const xmin = bounds[xx * 2] as number;
        const xmax = bounds[xx * 2 + 1] as number;
        const kb = xx * ksize;
        let s0 = half;
        let s1 = half;
        let s2 = half;
        let p = inRow + xmin * 3;
        for (let x = 0; x < xmax; x++, p += 3) {
          const k = fixed[kb + x] as number;
          s0 += (src[p] as number) * k;
          s1 += (src[p + 1] as number) * k;
          s2 += (src[p + 2] as number) * k;
        }
        const o = outRow + ox * 3;
        tmp[o] = clip8(s0);
        tmp[o + 1] = clip8(s1);
        tmp[o + 2] = clip8(s2);
      }
    }
    src = tmp;
    srcW = outW;
    srcLeft = 0;
    rowOffset = yFirst;
  }
  if (!needV) return cropRect({ data: src, width: srcW, height: src.length / (srcW * 3) }, { left: srcLeft, top: win.top - rowOffset, width: outW, height: win.height }, src !== img.data);
  const out = new Uint8Array(outW * win.height * 3);
  const { ksize, bounds, fixed } = vert;
  const stride = srcW * 3;
  const rowBytes = outW * 3;
  const colStart = srcLeft * 3;
  const acc = new Float64Array(rowBytes);
  for (let oy = 0; oy < win.height; oy++) {
    const yy = oy + win.top;
    const ymin = (bounds[yy * 2] as number) - rowOffset;
    const ymax = bounds[yy * 2 + 1] as number;
    const kb = yy * ksize;
    const outRow = oy * rowBytes;
    // Taps outer, bytes inner: each source row is read sequentially (the sums are exact integers either way).
    acc.fill(half);
    for (let y = 0; y < ymax; y++) {
      const k = fixed[kb + y] as number;
      const from = (ymin + y) * stride + colStart;
      for (let xx = 0; xx < rowBytes; xx++) acc[xx] = (acc[xx] as number) + (src[from + xx] as number) * k;
    }
    for (let xx = 0; xx < rowBytes; xx++) out[outRow + xx] = clip8(acc[xx] as number);
  }
  return { data: out, width: outW, height: win.height };
}

/** A rectangle of an output (left, top, width, height). */
export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The pixels of `r` (inside `img`); the same array when it is the whole image and `owned`. */
function cropRect(img: RgbInput, r: Window, owned = false): RgbInput {
  if (owned && r.left === 0 && r.top === 0 && r.width === img.width && r.height === img.height) return img;
  const out = new Uint8Array(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    const from = ((y + r.top) * img.width + r.left) * 3;
    out.set(img.data.subarray(from, from + r.width * 3), y * r.width * 3);
  }
  return { data: out, width: r.width, height: r.height };
}

/**
 * HF's center_crop on HWC uint8: top = (h − ch) // 2, left = (w − cw) // 2
 * (floor division); an image smaller than the crop is zero-padded, centred
 * with ceil((new − old) / 2) before.
 */
export function centerCrop(img: RgbInput, cropH: number, cropW: number): RgbInput {
  checkRgb(img, 'centerCrop');
  const { width: w, height: h } = img;
  let top = Math.floor((h - cropH) / 2);
  let left = Math.floor((w - cropW) / 2);
  if (top >= 0 && left >= 0 && top + cropH <= h && left + cropW <= w) {
    if (top === 0 && left === 0 && cropH === h && cropW === w) return img;
    const out = new Uint8Array(cropH * cropW * 3);
    for (let y = 0; y < cropH; y++) out.set(img.data.subarray(((y + top) * w + left) * 3, ((y + top) * w + left + cropW) * 3), y * cropW * 3);
    return { data: out, width: cropW, height: cropH };
  }
  const newH = Math.max(cropH, h);
  const newW = Math.max(cropW, w);
  const topPad = Math.ceil((newH - h) / 2);
  const leftPad = Math.ceil((newW - w) / 2);
  top += topPad;
  left += leftPad;
  const y0 = Math.max(0, top);
  const y1 = Math.min(newH, top + cropH);
  const x0 = Math.max(0, left);
  const x1 = Math.min(newW, left + cropW);
  const outW = x1 - x0;
  const outH = y1 - y0;
  const out = new Uint8Array(outW * outH * 3);
  for (let y = y0; y < y1; y++) {
    const sy = y - topPad;
    if (sy < 0 || sy >= h) continue;
    for (let x = x0; x < x1; x++) {
      const sx = x - leftPad;
      if (sx < 0 || sx >= w) continue;
      const o = ((y - y0) * outW + (x - x0)) * 3;
      const i = (sy * w + sx) * 3;
      out[o] = img.data[i] as number;
      out[o + 1] = img.data[i + 1] as number;
      out[o + 2] = img.data[i + 2] as number;
    }
  }
  return { data: out, width: outW, height: outH };
}

const lutCache = new WeakMap<ClipPreprocessConfig, Float32Array>();

/** value → float32 after rescale (float64 product, cast to float32) and normalise (float32 ops), per channel: 3 × 256. */
function valueLut(cfg: ClipPreprocessConfig): Float32Array {
  let lut = lutCache.get(cfg);
  if (lut) return lut;
  lut = new Float32Array(768);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f(cfg.imageMean[c] as number);
    const s = f(cfg.imageStd[c] as number);
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? f(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = f(f(x - m) / s);
      lut[c * 256 + v] = x;
    }
  }
  lutCache.set(cfg, lut);
  return lut;
}

/** The uint8 image after the resize and crop steps (before rescale/normalise). */
export function clipResizeCrop(img: RgbInput, cfg: ClipPreprocessConfig): RgbInput {
  checkRgb(img, 'clipPreprocess');
  let cur = img;
  if (cfg.doResize) {
    const [h, w] = resizeOutputSize(img.height, img.width, cfg);
    if (h !== img.height || w !== img.width) {
      const { height: ch, width: cw } = cfg.cropSize;
      if (cfg.doCenterCrop && ch <= h && cw <= w) {
        // Only the pixels the centre crop keeps are computed (each output pixel is independent, so the bytes are PIL's).
        return pilResize(cur, w, h, cfg.resample, { left: Math.floor((w - cw) / 2), top: Math.floor((h - ch) / 2), width: cw, height: ch });
      }
      cur = pilResize(cur, w, h, cfg.resample);
    }
  }
  if (cfg.doCenterCrop) cur = centerCrop(cur, cfg.cropSize.height, cfg.cropSize.width);
  return cur;
}

/**
 * One image → CHW float32 (3 × H × W) as CLIPImageProcessor makes it. With
 * `out` the values are written at `offset` (a batch tensor) and `out` is
 * returned; the image must then come out at `outputSize(cfg)`.
 */
export function clipPreprocess(img: RgbInput, cfg: ClipPreprocessConfig = OPENAI_CLIP_PREPROCESS, out?: Float32Array, offset = 0): Float32Array {
  checkRgb(img, 'clipPreprocess');
  if (cfg.doResize && cfg.doCenterCrop) {
    // The common case in one native call: resize only the crop's window, normalise, write CHW.
    const [h, w] = resizeOutputSize(img.height, img.width, cfg);
    const { height: ch, width: cw } = cfg.cropSize;
    if ((h !== img.height || w !== img.width) && ch <= h && cw <= w) {
      const dst = out ?? new Float32Array(3 * ch * cw);
      if (out && offset + 3 * ch * cw > out.length) {
        throw new GenaugError('E_SHAPE', `clipPreprocess: the image came out ${cw} x ${ch}, which does not fit the output tensor at offset ${offset}`);
      }
      const win = { left: Math.floor((w - cw) / 2), top: Math.floor((h - ch) / 2), width: cw, height: ch };
      resizeNative(img, w, h, cfg.resample, win, { lut: valueLut(cfg), out: dst, offset });
      return dst;
    }
  }
  const cur = clipResizeCrop(img, cfg);
  const plane = cur.width * cur.height;
  const dst = out ?? new Float32Array(3 * plane);
  if (out && offset + 3 * plane > out.length) {
    throw new GenaugError('E_SHAPE', `clipPreprocess: the image came out ${cur.width} x ${cur.height}, which does not fit the output tensor at offset ${offset}`);
  }
  const lut = valueLut(cfg);
  const d = cur.data;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    dst[offset + i] = lut[d[p] as number] as number;
    dst[offset + plane + i] = lut[256 + (d[p + 1] as number)] as number;
    dst[offset + 2 * plane + i] = lut[512 + (d[p + 2] as number)] as number;
  }
  return dst;
}
