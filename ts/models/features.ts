/**
 * "features-v1": a weight-free image embedder for runs without a CLIP model
 * and for near-duplicate detection. It is NOT semantic: two photos of
 * different dogs are not closer than a dog and a cat of the same colours and
 * layout. What it does capture is colour distribution and edge structure, so
 * re-encoded, resized, slightly cropped or recoloured copies of one image land
 * very close together (cosine > 0.95 typically) while different images do not.
 *
 * Recipe (deterministic, plain typed-array code):
 *  1. resize to 64 × 64 (aspect not kept) with PIL-exact antialiased bilinear;
 *  2. per pixel: HSV colour bin (8 hue × 3 saturation × 3 value = 72) and the
 *     luminance gradient (central differences), its unsigned orientation
 *     split linearly between 9 bins over [0, π), weighted by magnitude;
 *  3. a spatial pyramid of cells: 1 × 1, 2 × 2, 4 × 4 (21 cells); per cell a
 *     72-bin colour histogram (fractions, square-rooted: Hellinger) and a
 *     9-bin orientation histogram, each block L2-normalised on its own;
 *  4. each level weighted by 1 / √(its cell count) so the three levels weigh
 *     the same, everything concatenated (21 × 81 = 1701 values) and
 *     L2-normalised.
 */
import { GenaugError } from '../native/errors.js';
import { pilResize } from './clip-preprocess.js';
import type { ImageEmbedder, RgbInput } from './types.js';

const SIDE = 64;
const HUE_BINS = 8;
const SAT_BINS = 3;
const VAL_BINS = 3;
const COLOR_BINS = HUE_BINS * SAT_BINS * VAL_BINS;
const ORI_BINS = 9;
const LEVELS = [1, 2, 4] as const;
const BLOCK = COLOR_BINS + ORI_BINS;
const CELLS = LEVELS.reduce((s, g) => s + g * g, 0);

/** The colour bin of one RGB pixel (8 hue × 3 saturation × 3 value). */
export function hsvBin(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const v = max / 255;
  const s = max === 0 ? 0 : (max - min) / max;
  let h = 0;
  if (max !== min) {
    const d = max - min;
    if (max === r) h = ((g - b) / d + 6) % 6;
    else if (max === g) h = (b - r) / d + 2;
    else h = (r - g) / d + 4;
    h /= 6; // [0, 1)
  }
  const hb = Math.min(HUE_BINS - 1, Math.floor(h * HUE_BINS));
  const sb = Math.min(SAT_BINS - 1, Math.floor(s * SAT_BINS));
  const vb = Math.min(VAL_BINS - 1, Math.floor(v * VAL_BINS));
  return (hb * SAT_BINS + sb) * VAL_BINS + vb;
}

function normalizeBlock(v: Float32Array, start: number, end: number, weight: number): void {
  let s = 0;
  for (let i = start; i < end; i++) s += (v[i] as number) ** 2;
  if (s <= 0) return;
  const k = weight / Math.sqrt(s);
  for (let i = start; i < end; i++) v[i] = (v[i] as number) * k;
}

export class FeatureEmbedder implements ImageEmbedder {
  readonly name = 'features-v1';
  readonly dim = CELLS * BLOCK;

  /** One row (dim values, L2-normalised) into `out` at `offset`. */
  embedOne(img: RgbInput, out: Float32Array = new Float32Array(this.dim), offset = 0): Float32Array {
    if (typeof img !== 'object' || img === null || !(img.data instanceof Uint8Array)) {
      throw new GenaugError('E_TYPE', 'features: an image must be { data: Uint8Array, width, height } (interleaved RGB)');
    }
    const small = img.width === SIDE && img.height === SIDE ? img : pilResize(img, SIDE, SIDE, 'bilinear');
    const px = small.data;
    const n = SIDE * SIDE;
    const colour = new Uint8Array(n);
    const lum = new Float32Array(n);
    for (let i = 0, p = 0; i < n; i++, p += 3) {
      const r = px[p] as number;
      const g = px[p + 1] as number;
      const b = px[p + 2] as number;
      colour[i] = hsvBin(r, g, b);
      lum[i] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
    const v = out.subarray(offset, offset + this.dim);
    v.fill(0);
    let cellBase = 0;
    for (const grid of LEVELS) {
      const cell = SIDE / grid;
      for (let y = 0; y < SIDE; y++) {
        const cy = Math.floor(y / cell);
        for (let x = 0; x < SIDE; x++) {
          const base = (cellBase + cy * grid + Math.floor(x / cell)) * BLOCK;
          const i = y * SIDE + x;
          v[base + (colour[i] as number)] = (v[base + (colour[i] as number)] as number) + 1;
          // Central differences, one-sided at the border.
          const gx = (lum[y * SIDE + Math.min(SIDE - 1, x + 1)] as number) - (lum[y * SIDE + Math.max(0, x - 1)] as number);
          const gy = (lum[Math.min(SIDE - 1, y + 1) * SIDE + x] as number) - (lum[Math.max(0, y - 1) * SIDE + x] as number);
          const mag = Math.sqrt(gx * gx + gy * gy);
          if (mag > 1e-6) {
            let a = Math.atan2(gy, gx);
            if (a < 0) a += Math.PI;
            if (a >= Math.PI) a -= Math.PI;
            const pos = (a / Math.PI) * ORI_BINS - 0.5;
            const lo = Math.floor(pos);
            const f = pos - lo;
            const b0 = base + COLOR_BINS + ((lo + ORI_BINS) % ORI_BINS);
            const b1 = base + COLOR_BINS + ((lo + 1) % ORI_BINS);
            v[b0] = (v[b0] as number) + mag * (1 - f);
            v[b1] = (v[b1] as number) + mag * f;
          }
        }
      }
      const weight = 1 / grid; // 1 / sqrt(grid * grid cells)
      for (let c = 0; c < grid * grid; c++) {
        const base = (cellBase + c) * BLOCK;
        for (let k = base; k < base + COLOR_BINS; k++) v[k] = Math.sqrt(v[k] as number);
        normalizeBlock(v, base, base + COLOR_BINS, weight);
        normalizeBlock(v, base + COLOR_BINS, base + BLOCK, weight);
      }
      cellBase += grid * grid;
    }
    normalizeBlock(v, 0, this.dim, 1);
    return out;
  }

  async embedImages(images: RgbInput[]): Promise<Float32Array> {
    if (!Array.isArray(images)) throw new GenaugError('E_TYPE', 'embedImages: images must be an array');
    const out = new Float32Array(images.length * this.dim);
    images.forEach((img, i) => this.embedOne(img, out, i * this.dim));
    return out;
  }
}

/** The layout of a features-v1 row, for tests and inspection. */
export const FEATURES_V1 = { side: SIDE, colorBins: COLOR_BINS, orientationBins: ORI_BINS, levels: LEVELS, block: BLOCK, cells: CELLS } as const;
