/**
 * A seeded procedural world for the demo and the tests: six shape classes
 * (one rare), "real" scenes with textured backgrounds and COCO annotations
 * (compressed RLE of each object's visible mask), and an image generator that
 * stands in for a diffusion server: one object on a white background from a
 * class name and a seed, with the failure cases generative data has, at known
 * rates (off-class drawings, empty images, near-duplicates of an earlier
 * sample, objects running off the border). Every pixel is a function of the
 * seed, so the same seed gives the same bytes.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import { writeFileAtomic } from '../io/atomic.js';
import { encodeRleSync, rleArea, rleToBbox } from '../kernels/mask.js';
import { gaussian, mixSeed, seededRandom } from '../util/random.js';

export interface ShapeClass {
  name: string;
  /** Base colour (RGB). */
  colour: [number, number, number];
  /** Relative frequency in the real scenes. */
  weight: number;
}

/** The demo's classes; `star` is the rare one. Hues sit mid-bin of features-v1's 8 hue bins, so colour separates them. */
export const SHAPE_CLASSES: ShapeClass[] = [
  { name: 'disk', colour: [210, 40, 120], weight: 1 },
  { name: 'square', colour: [60, 40, 220], weight: 1 },
  { name: 'triangle', colour: [40, 150, 100], weight: 1 },
  { name: 'ring', colour: [236, 118, 24], weight: 0.8 },
  { name: 'cross', colour: [180, 50, 200], weight: 0.8 },
  { name: 'star', colour: [226, 218, 40], weight: 0.07 },
];

/** Is local point (u, v) in [-1, 1]^2 inside the class's shape? */
export function insideShape(cls: string, u: number, v: number): boolean {
  switch (cls) {
    case 'disk':
      return u * u + v * v <= 1;
    case 'square':
      return Math.abs(u) <= 0.82 && Math.abs(v) <= 0.82;
    case 'triangle':
      return v >= -0.85 && v <= 0.75 && Math.abs(u) <= ((v + 0.85) / 1.6) * 0.95;
    case 'ring': {
      const r2 = u * u + v * v;
      return r2 <= 1 && r2 >= 0.32;
    }
    case 'cross':
      return (Math.abs(u) <= 0.3 && Math.abs(v) <= 0.92) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 0.92);
    case 'star': {
      const r = Math.sqrt(u * u + v * v);
      const t = Math.atan2(v, u);
      return r <= 0.5 + 0.45 * Math.cos(5 * t);
    }
    default:
      return u * u + v * v <= 1;
  }
}

interface Placed {
  cls: ShapeClass;
  cx: number;
  cy: number;
  radius: number;
  angle: number;
  colour: [number, number, number];
  /** Shading direction. */
  shade: number;
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Paints one object into an RGB buffer; marks its pixels in `mask` (when given) with `label`. */
function paint(rgb: Uint8Array, width: number, height: number, o: Placed, mask?: Int16Array, label = 0): void {
  const ca = Math.cos(o.angle);
  const sa = Math.sin(o.angle);
  const x0 = Math.max(0, Math.floor(o.cx - o.radius - 1));
  const x1 = Math.min(width - 1, Math.ceil(o.cx + o.radius + 1));
  const y0 = Math.max(0, Math.floor(o.cy - o.radius - 1));
  const y1 = Math.min(height - 1, Math.ceil(o.cy + o.radius + 1));
  const sx = Math.cos(o.shade);
  const sy = Math.sin(o.shade);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = (x + 0.5 - o.cx) / o.radius;
      const dy = (y + 0.5 - o.cy) / o.radius;
      const u = ca * dx + sa * dy;
      const v = -sa * dx + ca * dy;
      if (!insideShape(o.cls.name, u, v)) continue;
      const light = 1 + 0.18 * (dx * sx + dy * sy);
      const p = 3 * (y * width + x);
      rgb[p] = clamp8(o.colour[0] * light);
      rgb[p + 1] = clamp8(o.colour[1] * light);
      rgb[p + 2] = clamp8(o.colour[2] * light);
      if (mask) mask[y * width + x] = label;
    }
  }
}

function jitterColour(c: [number, number, number], r: () => number, amount: number): [number, number, number] {
  return [clamp8(c[0] + (r() - 0.5) * 2 * amount), clamp8(c[1] + (r() - 0.5) * 2 * amount), clamp8(c[2] + (r() - 0.5) * 2 * amount)];
}

function pickClass(r: () => number, classes: ShapeClass[]): ShapeClass {
  const total = classes.reduce((s, c) => s + c.weight, 0);
  let u = r() * total;
  for (const c of classes) {
    u -= c.weight;
    if (u <= 0) return c;
  }
  return classes[classes.length - 1] as ShapeClass;
}

/** A textured, non-white background: a tinted gradient, stripes and grain. */
function background(width: number, height: number, r: () => number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const base = [60 + r() * 120, 60 + r() * 110, 50 + r() * 100];
  const freq = 0.03 + r() * 0.08;
  const dir = r() * Math.PI;
  const fx = Math.cos(dir) * freq;
  const fy = Math.sin(dir) * freq;
  const grad = [(r() - 0.5) * 60, (r() - 0.5) * 60, (r() - 0.5) * 60];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = 14 * Math.sin(x * fx + y * fy) + 8 * Math.sin(0.013 * x * y);
      const g = y / height;
      const p = 3 * (y * width + x);
      for (let k = 0; k < 3; k++) rgb[p + k] = clamp8((base[k] as number) + (grad[k] as number) * g + s + (r() - 0.5) * 16);
    }
  }
  return rgb;
}

export interface RealDatasetOptions {
  out: string;
  seed: number;
  images?: number;
  width?: number;
  height?: number;
  classes?: ShapeClass[];
}

export interface RealDataset {
  /** annotations.json (COCO, compressed RLE). */
  coco: string;
  /** Folder of the images. */
  images: string;
  counts: Record<string, { images: number; instances: number }>;
}

/**
 * "Real" scenes: textured backgrounds with 1-4 objects each (later objects
 * occlude earlier ones); every object's visible mask becomes a COCO
 * annotation with compressed RLE, its area and its tight box. The rare class
 * is guaranteed a few images.
 */
export async function writeRealDataset(o: RealDatasetOptions): Promise<RealDataset> {
  const n = o.images ?? 48;
  const W = o.width ?? 320;
  const H = o.height ?? 240;
  const classes = o.classes ?? SHAPE_CLASSES;
  const imgDir = join(o.out, 'images');
  await mkdir(imgDir, { recursive: true });
  const images: unknown[] = [];
  const annotations: unknown[] = [];
  const counts: Record<string, { images: number; instances: number }> = {};
  for (const c of classes) counts[c.name] = { images: 0, instances: 0 };
  const rare = classes.reduce((a, b) => (b.weight < a.weight ? b : a));
  let annId = 1;
  for (let i = 0; i < n; i++) {
    const r = seededRandom(mixSeed(o.seed, i, 101));
    const rgb = background(W, H, r);
    const labels = new Int16Array(W * H).fill(-1);
    const k = 1 + Math.floor(r() * 4);
    const placed: Placed[] = [];
    for (let j = 0; j < k; j++) {
      // Every 12th image shows the rare class first, so it has a handful of real examples.
      const cls = j === 0 && i % 12 === 5 ? rare : pickClass(r, classes.filter((c) => c !== rare));
      const radius = 16 + r() * 30;
      placed.push({
        cls,
        cx: radius * 0.6 + r() * (W - 1.2 * radius),
        cy: radius * 0.6 + r() * (H - 1.2 * radius),
        radius,
        angle: r() * Math.PI * 2,
        colour: jitterColour(cls.colour, r, 18),
        shade: r() * Math.PI * 2,
      });
    }
    placed.forEach((p, j) => paint(rgb, W, H, p, labels, j));
    const file = `real_${String(i).padStart(4, '0')}.jpg`;
    const seen = new Set<string>();
    placed.forEach((p, j) => {
      const m = new Uint8Array(W * H);
      let any = 0;
      for (let q = 0; q < W * H; q++) if (labels[q] === j) ((m[q] = 1), any++);
      if (any < 16) return; // hidden behind later objects
      const rle = encodeRleSync({ data: m, height: H, width: W });
      annotations.push({
        id: annId++,
        image_id: i + 1,
        category_id: classes.indexOf(p.cls) + 1,
        segmentation: rle,
        area: rleArea(rle),
        bbox: rleToBbox(rle),
        iscrowd: 0,
      });
      (counts[p.cls.name] as { instances: number }).instances++;
      seen.add(p.cls.name);
    });
    for (const s of seen) (counts[s] as { images: number }).images++;
    const jpg = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width: W, height: H, channels: 3 } })
      .jpeg({ quality: 92, chromaSubsampling: '4:4:4' })
      .toBuffer();
    await writeFileAtomic(join(imgDir, file), jpg);
    images.push({ id: i + 1, file_name: file, width: W, height: H });
  }
  const coco = {
    info: { description: 'genaug procedural demo scenes', version: '1' },
    licenses: [],
    images,
    annotations,
    categories: classes.map((c, i) => ({ id: i + 1, name: c.name, supercategory: 'shape' })),
  };
  const cocoPath = join(o.out, 'annotations.json');
  await writeFileAtomic(cocoPath, new TextEncoder().encode(JSON.stringify(coco) + '\n'));
  return { coco: cocoPath, images: imgDir, counts };
}

/** What the procedural generator drew, for measuring how well the filters catch failures. */
export type GeneratedTruth = 'ok' | 'off-class' | 'empty' | 'near-duplicate' | 'border';

export interface FailureRates {
  offClass: number;
  empty: number;
  nearDuplicate: number;
  border: number;
}

export const DEFAULT_FAILURE_RATES: FailureRates = { offClass: 0.08, empty: 0.05, nearDuplicate: 0.07, border: 0.07 };

export interface GeneratedImage {
  png: Uint8Array;
  truth: GeneratedTruth;
  /** The class actually drawn (differs from the asked one for off-class failures; null when empty). */
  drawn: string | null;
}

function classByName(name: string, classes: ShapeClass[]): ShapeClass {
  const lower = name.toLowerCase();
  return classes.find((c) => c.name === lower) ?? classes.find((c) => lower.includes(c.name)) ?? (classes[mixSeed(lower.length, lower.charCodeAt(0)) % classes.length] as ShapeClass);
}

/** The pixels of a clean render of `cls` for `seed` (on white, 0-255 RGB). */
function renderClean(cls: ShapeClass, seed: number, W: number, H: number, border: boolean): Uint8Array {
  const r = seededRandom(mixSeed(seed, 7));
  const rgb = new Uint8Array(W * H * 3);
  for (let q = 0; q < rgb.length; q++) rgb[q] = 255 - Math.floor(r() * 3);
  const S = Math.min(W, H);
  const radius = S * (0.22 + r() * 0.16);
  let cx = W / 2 + (r() - 0.5) * S * 0.2;
  let cy = H / 2 + (r() - 0.5) * S * 0.2;
  if (border) {
    // Pushed so that a good part of it (at least half its reach) leaves the frame on one side.
    const side = Math.floor(r() * 4);
    const off = radius * (0.1 + r() * 0.35);
    if (side === 0) cx = off;
    else if (side === 1) cx = W - off;
    else if (side === 2) cy = off;
    else cy = H - off;
  }
  paint(rgb, W, H, { cls, cx, cy, radius, angle: r() * Math.PI * 2, colour: jitterColour(cls.colour, r, 22), shade: r() * Math.PI * 2 });
  return rgb;
}

/** The failure kind the generator draws for a seed. */
export function truthOf(seed: number, rates: FailureRates): GeneratedTruth {
  const u = seededRandom(mixSeed(seed, 3))();
  if (u < rates.offClass) return 'off-class';
  if (u < rates.offClass + rates.empty) return 'empty';
  if (u < rates.offClass + rates.empty + rates.nearDuplicate) return 'near-duplicate';
  if (u < rates.offClass + rates.empty + rates.nearDuplicate + rates.border) return 'border';
  return 'ok';
}

/**
 * What the generator draws for a seed: a near-duplicate repeats the image of
 * seed - 1 (the previous candidate of the same job), so it is one only when
 * that image exists (`allowDuplicate`: not the job's first candidate) and was
 * a clean render; otherwise the seed gives a clean image.
 */
export function proceduralTruth(seed: number, rates: FailureRates, allowDuplicate: boolean): GeneratedTruth {
  const t = truthOf(seed, rates);
  if (t === 'near-duplicate' && (!allowDuplicate || truthOf(seed - 1, rates) !== 'ok')) return 'ok';
  return t;
}

/**
 * The generator standing in for a diffusion server: one object of the asked
 * class on a white background. The failure kind is a function of the seed,
 * drawn at `rates`; a near-duplicate repeats the clean render of seed - 1
 * with faint noise, as a sampler stuck in one mode does.
 */
export async function generateProcedural(
  className: string,
  seed: number,
  o: { width?: number; height?: number; rates?: Partial<FailureRates>; classes?: ShapeClass[]; allowDuplicate?: boolean } = {},
): Promise<GeneratedImage> {
  const W = o.width ?? 128;
  const H = o.height ?? 128;
  const classes = o.classes ?? SHAPE_CLASSES;
  const rates = { ...DEFAULT_FAILURE_RATES, ...o.rates };
  const asked = classByName(className, classes);
  const r = seededRandom(mixSeed(seed, 3));
  const truth = proceduralTruth(seed, rates, o.allowDuplicate ?? true);
  r();
  let rgb: Uint8Array;
  let drawn: string | null = asked.name;
  if (truth === 'empty') {
    rgb = new Uint8Array(W * H * 3);
    const g = 238 + Math.floor(r() * 14);
    for (let q = 0; q < rgb.length; q++) rgb[q] = g + Math.floor(r() * 3);
  } else if (truth === 'off-class') {
    const others = classes.filter((c) => c !== asked);
    const other = others[Math.floor(r() * others.length)] as ShapeClass;
    drawn = other.name;
    rgb = renderClean(other, seed, W, H, false);
  } else if (truth === 'near-duplicate') {
    rgb = renderClean(asked, seed - 1, W, H, false);
    for (let q = 0; q < rgb.length; q++) if ((rgb[q] as number) < 250) rgb[q] = clamp8((rgb[q] as number) + gaussian(r));
  } else {
    rgb = renderClean(asked, seed, W, H, truth === 'border');
  }
  const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width: W, height: H, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return { png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), truth, drawn };
}

// --- layout-conditioned scenes (Auto Cherry-Picker's generator) ------------------------------------

/** What the scene generator drew for a layout, for measuring how well best-of-N by CLIS-I picks against failures. */
export type SceneTruth = 'ok' | 'missing-object' | 'misplaced-object' | 'off-class-object' | 'blank';

/** How often each scene failure is drawn (per image). */
export interface SceneFailureRates {
  /** One layout object is not drawn at all. */
  missing: number;
  /** One layout object is drawn elsewhere: its box mirrored through the frame's centre (pushed aside when that overlaps it). */
  misplaced: number;
  /** One layout object is drawn as another class. */
  offClass: number;
  /** The whole image is black, as a diffusion server's safety checker answers. */
  blank: number;
}

export const DEFAULT_SCENE_FAILURE_RATES: SceneFailureRates = { missing: 0.1, misplaced: 0.1, offClass: 0.08, blank: 0.05 };

/** The failure kind the scene generator draws for a seed. */
export function sceneTruthOf(seed: number, rates: SceneFailureRates): SceneTruth {
  const u = seededRandom(mixSeed(seed, 5))();
  let t = 0;
  for (const [k, kind] of [['blank', 'blank'], ['missing', 'missing-object'], ['misplaced', 'misplaced-object'], ['offClass', 'off-class-object']] as const) {
    t += rates[k];
    if (u < t) return kind;
  }
  return 'ok';
}

export interface SceneImage {
  png: Uint8Array;
  truth: SceneTruth;
  /** Per layout object, what was drawn: the class name and its box (normalised xywh), or null when not drawn. */
  drawn: Array<{ name: string; box: [number, number, number, number] } | null>;
  /** The layout object the failure concerns (undefined for ok and blank). */
  failed?: number;
}

/**
 * The generator standing in for a layout-conditioned diffusion server (GLIGEN, InstanceDiffusion): each layout
 * object's class shape drawn in its box (centred, as large as the box's shorter side allows, slightly turned), in
 * layout order (later objects cover earlier ones), on a near-white background. The failure kind is a function of
 * the seed at `rates`: one object missing, drawn outside its box, or drawn as another class; or a black image.
 */
export async function generateProceduralScene(
  layout: ReadonlyArray<{ name: string; box: readonly number[] }>,
  seed: number,
  o: { width?: number; height?: number; rates?: Partial<SceneFailureRates>; classes?: ShapeClass[] } = {},
): Promise<SceneImage> {
  const W = o.width ?? 128;
  const H = o.height ?? 128;
  const classes = o.classes ?? SHAPE_CLASSES;
  const rates = { ...DEFAULT_SCENE_FAILURE_RATES, ...o.rates };
  const truth = sceneTruthOf(seed, rates);
  const r = seededRandom(mixSeed(seed, 11));
  const rgb = new Uint8Array(W * H * 3);
  const drawn: SceneImage['drawn'] = layout.map(() => null);
  const failed = layout.length ? Math.floor(r() * layout.length) : 0;
  if (truth === 'blank') {
    for (let q = 0; q < rgb.length; q++) rgb[q] = Math.floor(r() * 4);
  } else {
    for (let q = 0; q < rgb.length; q++) rgb[q] = 255 - Math.floor(r() * 3);
    layout.forEach((obj, k) => {
      const asked = classByName(obj.name, classes);
      let cls = asked;
      let [x, y, w, h] = obj.box as [number, number, number, number];
      const angle = (r() - 0.5) * 0.5;
      const colour = jitterColour(cls.colour, r, 18);
      const shade = r() * Math.PI * 2;
      if (k === failed && truth === 'missing-object') return;
      if (k === failed && truth === 'off-class-object') {
        const others = classes.filter((c) => c !== asked);
        cls = others[Math.floor(r() * others.length)] as ShapeClass;
      }
      if (k === failed && truth === 'misplaced-object') {
        // Moved to the far side of the frame: the box mirrored through the centre, pushed clear of the original.
        let nx = 1 - x - w;
        let ny = 1 - y - h;
        if (Math.abs(nx - x) < w && Math.abs(ny - y) < h) {
          if (1 - w - x > x) nx = Math.min(1 - w, x + w);
          else nx = Math.max(0, x - w);
          if (Math.abs(nx - x) < w) ny = y + h <= 0.5 ? Math.min(1 - h, y + h) : Math.max(0, y - h);
        }
        x = nx;
        y = ny;
      }
      const radius = 0.48 * Math.min(w * W, h * H);
      paint(rgb, W, H, { cls, cx: (x + w / 2) * W, cy: (y + h / 2) * H, radius, angle, colour: cls === asked ? colour : jitterColour(cls.colour, r, 18), shade });
      drawn[k] = { name: cls.name, box: [x, y, w, h] };
    });
  }
  const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width: W, height: H, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return { png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), truth, drawn, ...(truth !== 'ok' && truth !== 'blank' ? { failed } : {}) };
}
