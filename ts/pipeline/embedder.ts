/**
 * A small weight-free image embedder for runs without a model: a hue
 * histogram weighted by saturation, a 2 x 2 grid of mean colours and a 4 x 4
 * grid of gradient-orientation histograms (HOG-like) on a 32 x 32 resize,
 * L2-normalised. It separates colour and shape classes well enough for the
 * demo's filters; it knows nothing about text, so text-based scores need CLIP.
 */
import sharp from 'sharp';

import type { ImageEmbedder, RgbInput } from '../models/types.js';

const S = 32;
const HUE_BINS = 24;
const CELLS = 4;
const ORIENT = 18;
const HARMONICS = 9;
const RINGS = 8;
const SHAPE = HARMONICS + RINGS + CELLS * CELLS;

export class PipelineFeatureEmbedder implements ImageEmbedder {
  readonly dim = HUE_BINS + 12 + SHAPE;
  readonly name = 'genaug-features-v1';

  async embedImages(images: RgbInput[]): Promise<Float32Array> {
    const out = new Float32Array(images.length * this.dim);
    for (let i = 0; i < images.length; i++) {
      const img = images[i] as RgbInput;
      const small = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
        .resize(S, S, { fit: 'fill', kernel: 'cubic' })
        .raw()
        .toBuffer();
      out.set(featuresOf(new Uint8Array(small.buffer, small.byteOffset, small.byteLength)), i * this.dim);
    }
    return out;
  }
}

function featuresOf(px: Uint8Array): Float32Array {
  const f = new Float32Array(HUE_BINS + 12 + SHAPE);
  const grey = new Float32Array(S * S);
  for (let q = 0; q < S * S; q++) {
    const r = (px[3 * q] as number) / 255;
    const g = (px[3 * q + 1] as number) / 255;
    const b = (px[3 * q + 2] as number) / 255;
    grey[q] = 0.299 * r + 0.587 * g + 0.114 * b;
    const mx = Math.max(r, g, b);
    const mn = Math.min(r, g, b);
    const sat = mx > 0 ? (mx - mn) / mx : 0;
    if (mx - mn > 1e-6) {
      let h = mx === r ? (g - b) / (mx - mn) : mx === g ? 2 + (b - r) / (mx - mn) : 4 + (r - g) / (mx - mn);
      h = ((h / 6) % 1 + 1) % 1;
      const bin = Math.min(HUE_BINS - 1, Math.floor(h * HUE_BINS));
      f[bin] = (f[bin] as number) + sat * mx;
    }
    const x = q % S;
    const y = Math.floor(q / S);
    const cell = 3 * ((y < S / 2 ? 0 : 2) + (x < S / 2 ? 0 : 1));
    f[HUE_BINS + cell] = (f[HUE_BINS + cell] as number) + r;
    f[HUE_BINS + cell + 1] = (f[HUE_BINS + cell + 1] as number) + g;
    f[HUE_BINS + cell + 2] = (f[HUE_BINS + cell + 2] as number) + b;
  }
  normalise(f, 0, HUE_BINS, 1.0);
  normalise(f, HUE_BINS, 12, 0.6);
  const base = HUE_BINS + 12;
  const cs = S / CELLS;
  const hist = new Float64Array(ORIENT);
  const maxR = Math.hypot(S / 2, S / 2);
  for (let y = 1; y < S - 1; y++) {
    for (let x = 1; x < S - 1; x++) {
      const gx = (grey[y * S + x + 1] as number) - (grey[y * S + x - 1] as number);
      const gy = (grey[(y + 1) * S + x] as number) - (grey[(y - 1) * S + x] as number);
      const mag = Math.hypot(gx, gy);
      if (mag < 1e-4) continue;
      let a = Math.atan2(gy, gx);
      if (a < 0) a += Math.PI;
      const o = Math.min(ORIENT - 1, Math.floor((a / Math.PI) * ORIENT));
      hist[o] = (hist[o] as number) + mag;
      const ring = Math.min(RINGS - 1, Math.floor((Math.hypot(x + 0.5 - S / 2, y + 0.5 - S / 2) / maxR) * RINGS));
      f[base + HARMONICS + ring] = (f[base + HARMONICS + ring] as number) + mag;
      const c = Math.floor(y / cs) * CELLS + Math.floor(x / cs);
      f[base + HARMONICS + RINGS + c] = (f[base + HARMONICS + RINGS + c] as number) + mag;
    }
  }
  // Magnitudes of the orientation histogram's Fourier coefficients: the same whatever the rotation.
  for (let k = 0; k < HARMONICS; k++) {
    let re = 0;
    let im = 0;
    for (let o = 0; o < ORIENT; o++) {
      re += (hist[o] as number) * Math.cos((2 * Math.PI * k * o) / ORIENT);
      im += (hist[o] as number) * Math.sin((2 * Math.PI * k * o) / ORIENT);
    }
    f[base + k] = Math.hypot(re, im);
  }
  normalise(f, base, HARMONICS, 1.2);
  normalise(f, base + HARMONICS, RINGS, 0.6);
  normalise(f, base + HARMONICS + RINGS, CELLS * CELLS, 0.4);
  normalise(f, 0, f.length, 1);
  return f;
}

function normalise(f: Float32Array, start: number, n: number, weight: number): void {
  let s = 0;
  for (let k = start; k < start + n; k++) s += (f[k] as number) ** 2;
  const inv = s > 0 ? weight / Math.sqrt(s) : 0;
  for (let k = start; k < start + n; k++) f[k] = (f[k] as number) * inv;
}
