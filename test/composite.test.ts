/**
 * The instance compositor against a plain reference implementation written
 * here (bilinear resize with the documented integer convention, blend,
 * occlusion with the keep rule, boxes and areas by full scans), over
 * thousands of seeded random scenes, plus hand-computed cases and the
 * error codes of bad inputs.
 */
import { describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';

import { compositeBatch, compositeBatchSync, compositeSync, CompositeOutputPool, GenaugError } from '../ts/index.js';
import { compositeMemory } from '../ts/kernels/composite.js';
import type { CompositeOptions, CompositeResult, CompositeScene, PasteInstance } from '../ts/index.js';
import { native } from '../ts/native/load.js';
import { seededRandom } from '../ts/util/random.js';
import { expectCode } from './helpers.js';

// ---------------------------------------------------------------------------
// Reference implementation.

/** floor(n / d) for integers (d > 0). */
const fdiv = (n: number, d: number): number => Math.floor(n / d);

function coeff(u: number, nSrc: number, nDst: number): [number, number] {
  const num = (2 * u + 1) * nSrc - nDst;
  const den = 2 * nDst;
  let q = fdiv(num, den);
  const rem = num - q * den;
  let a = fdiv(rem * 2048 + nDst, den);
  if (q < 0) {
    q = 0;
    a = 0;
  } else if (q >= nSrc - 1) {
    q = nSrc - 1;
    a = 0;
  }
  return [q, a];
}

/** The instance resized to tw x th (RGBA), flipped when asked. */
function refResize(p: PasteInstance): Uint8Array {
  const { width: sw, height: sh, targetWidth: tw, targetHeight: th, rgba } = p;
  const out = new Uint8Array(tw * th * 4);
  for (let i = 0; i < th; i++) {
    const [y0, b] = coeff(i, sh, th);
    const y1 = Math.min(y0 + 1, sh - 1);
    for (let j = 0; j < tw; j++) {
      const u = p.flip ? tw - 1 - j : j;
      const [x0, a] = coeff(u, sw, tw);
      const x1 = Math.min(x0 + 1, sw - 1);
      for (let c = 0; c < 4; c++) {
        const h0 = ((rgba[(y0 * sw + x0) * 4 + c] as number) * (2048 - a) + (rgba[(y0 * sw + x1) * 4 + c] as number) * a) >> 4;
        const h1 = ((rgba[(y1 * sw + x0) * 4 + c] as number) * (2048 - a) + (rgba[(y1 * sw + x1) * 4 + c] as number) * a) >> 4;
        out[(i * tw + j) * 4 + c] = (h0 * (2048 - b) + h1 * b + (1 << 17)) >> 18;
      }
    }
  }
  return out;
}

type Box4 = [number, number, number, number];

/** Fails the test (plain checks in the hot loops: expect() per pixel is too slow). */
function fail(msg: string): never {
  throw new Error(msg);
}

function refBox(m: Uint8Array, W: number, H: number): [Box4, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1, area = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!m[y * W + x]) continue;
      area++;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  return x1 < 0 ? [[0, 0, 0, 0], 0] : [[x0, y0, x1 - x0 + 1, y1 - y0 + 1], area];
}

interface RefInst {
  source: 'real' | 'pasted';
  index: number;
  mask: Uint8Array;
  box: Box4;
  area: number;
  alive: boolean;
}

/** Top-left corner, and the resized instance of each pasted instance (for the top-most pixel check). */
interface RefOut extends CompositeResult {
  resized: Array<Uint8Array | null>;
  origin: Array<[number, number]>;
  /** Union of the masks of the pasted instances that were painted, and their indices. */
  painted: Uint8Array;
  paintedIndex: number[];
  /** Per pixel, the last painted pasted instance whose mask (before occlusion) covers it, or -1. */
  top: Int32Array;
}

function refComposite(s: CompositeScene, o: CompositeOptions = {}): RefOut {
  const W = s.image.width, H = s.image.height;
  const img = s.image.data.slice();
  const maxShift = o.keepMaxShift ?? 10, minArea = o.keepMinArea ?? 300, blend = o.blend ?? 'basic';
  // §2.5: mask = alpha > 0 after the resize (threshold 1) unless told otherwise.
  const threshold = o.maskThreshold ?? 1;
  const insts: RefInst[] = [];
  const dropped: CompositeResult['dropped'] = [];
  const rnd = (v: number): number => Math.floor(v + 0.5);
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  if (s.boxes) {
    s.boxes.forEach((b, r) => {
      const m = new Uint8Array(W * H);
      const x0 = clamp(rnd(b[0]), 0, W), x1 = clamp(rnd(b[0] + b[2]), 0, W), y0 = clamp(rnd(b[1]), 0, H), y1 = clamp(rnd(b[1] + b[3]), 0, H);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * W + x] = 1;
      const [box, area] = refBox(m, W, H);
      insts.push({ source: 'real', index: r, mask: m, box, area, alive: area > 0 });
      if (!area) dropped.push({ source: 'real', index: r, reason: 'empty' });
    });
  } else {
    (s.masks ?? []).forEach((src, r) => {
      const m = src.map((v) => (v ? 1 : 0));
      const [box, area] = refBox(m, W, H);
      insts.push({ source: 'real', index: r, mask: m, box, area, alive: area > 0 });
      if (!area) dropped.push({ source: 'real', index: r, reason: 'empty' });
    });
  }
  const resized: Array<Uint8Array | null> = [];
  const origin: Array<[number, number]> = [];
  const painted = new Uint8Array(W * H);
  const paintedIndex: number[] = [];
  const top = new Int32Array(W * H).fill(-1);
  (s.instances ?? []).forEach((p, idx) => {
    resized.push(null);
    origin.push([0, 0]);
    if (p.targetWidth === 0 || p.targetHeight === 0) return dropped.push({ source: 'pasted', index: idx, reason: 'zero-size' });
    if (p.width === 0 || p.height === 0) return dropped.push({ source: 'pasted', index: idx, reason: 'empty-crop' });
    const tw = p.targetWidth, th = p.targetHeight;
    const x0 = Math.floor(p.cx - tw / 2 + 0.5), y0 = Math.floor(p.cy - th / 2 + 0.5);
    origin[idx] = [x0, y0];
    const xa = Math.max(x0, 0), xb = Math.min(x0 + tw, W), ya = Math.max(y0, 0), yb = Math.min(y0 + th, H);
    if (xa >= xb || ya >= yb) return dropped.push({ source: 'pasted', index: idx, reason: 'clipped-out' });
    const rs = refResize(p);
    resized[idx] = rs;
    const m = new Uint8Array(W * H);
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) m[y * W + x] = (rs[((y - y0) * tw + (x - x0)) * 4 + 3] as number) >= threshold ? 1 : 0;
    const [box, area] = refBox(m, W, H);
    if (!area) {
      const clipped = xa !== x0 || ya !== y0 || xb !== x0 + tw || yb !== y0 + th;
      return dropped.push({ source: 'pasted', index: idx, reason: clipped ? 'clipped-out' : 'empty-alpha' });
    }
    paintedIndex.push(idx);
    for (let i = 0; i < W * H; i++) {
      if (!m[i]) continue;
      painted[i] = 1;
      top[i] = idx;
    }
    if (blend === 'basic') {
      for (let y = ya; y < yb; y++) {
        for (let x = xa; x < xb; x++) {
          if (!m[y * W + x]) continue;
          for (let c = 0; c < 3; c++) img[(y * W + x) * 3 + c] = rs[((y - y0) * tw + (x - x0)) * 4 + c] as number;
        }
      }
    } else if (blend === 'alpha') {
      for (let y = ya; y < yb; y++) {
        for (let x = xa; x < xb; x++) {
          const k = ((y - y0) * tw + (x - x0)) * 4;
          const a = m[y * W + x] ? (rs[k + 3] as number) : 0; // painting stays inside the mask
          for (let c = 0; c < 3; c++) {
            const d = (y * W + x) * 3 + c;
            img[d] = Math.floor(((rs[k + c] as number) * a + (img[d] as number) * (255 - a) + 127) / 255);
          }
        }
      }
    }
    for (const e of insts) {
      if (!e.alive) continue;
      let removed = 0;
      for (let i = 0; i < W * H; i++) {
        if (e.mask[i] && m[i]) {
          e.mask[i] = 0;
          removed++;
        }
      }
      if (!removed) continue;
      const before = e.box;
      const [box2, area2] = refBox(e.mask, W, H);
      e.box = box2;
      e.area = area2;
      if (area2 === 0) {
        e.alive = false;
        dropped.push({ source: e.source, index: e.index, reason: 'empty' });
        continue;
      }
      const shift = Math.max(
        Math.abs(box2[0] - before[0]), Math.abs(box2[1] - before[1]),
        Math.abs(box2[0] + box2[2] - before[0] - before[2]), Math.abs(box2[1] + box2[3] - before[1] - before[3]),
      );
      if (!(shift <= maxShift || area2 > minArea)) {
        e.alive = false;
        dropped.push({ source: e.source, index: e.index, reason: 'occluded' });
      }
    }
    insts.push({ source: 'pasted', index: idx, mask: m, box, area, alive: true });
    return 0;
  });
  const order = (a: { source: string; index: number }, b: { source: string; index: number }): number =>
    a.source === b.source ? a.index - b.index : a.source === 'real' ? -1 : 1;
  dropped.sort(order);
  return {
    image: img,
    width: W,
    height: H,
    boxOnly: s.boxes !== undefined,
    instances: insts.filter((e) => e.alive).map((e) => ({ source: e.source, index: e.index, mask: e.mask, bbox: e.box, area: e.area })),
    dropped,
    resized,
    origin,
    painted,
    paintedIndex,
    top,
  };
}

// ---------------------------------------------------------------------------
// Random scenes.

function randomScene(r: () => number, opts: { boxOnly?: boolean; size?: [width: number, height: number] } = {}): CompositeScene {
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const W = opts.size ? opts.size[0] : int(32, 96), H = opts.size ? opts.size[1] : int(32, 96);
  const image = { data: new Uint8Array(W * H * 3).map(() => int(0, 255)), width: W, height: H };
  const R = int(0, 4);
  const scene: CompositeScene = { image };
  if (opts.boxOnly) {
    scene.boxes = Array.from({ length: R }, () => [r() * W * 1.2 - 0.1 * W, r() * H * 1.2 - 0.1 * H, r() * W * 0.6, r() * H * 0.6] as [number, number, number, number]);
  } else {
    scene.masks = Array.from({ length: R }, () => {
      const m = new Uint8Array(W * H);
      if (r() < 0.1) return m; // empty
      const cx = int(0, W - 1), cy = int(0, H - 1), rx = int(2, W / 2), ry = int(2, H / 2), val = r() < 0.2 ? 255 : 1;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 && r() < 0.97) m[y * W + x] = val;
      return m;
    });
  }
  const P = int(0, 6);
  scene.instances = Array.from({ length: P }, () => {
    const cw = r() < 0.05 ? 0 : int(1, 40), ch = r() < 0.05 ? 0 : int(1, 40);
    const rgba = new Uint8Array(cw * ch * 4);
    const kind = r();
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const k = (y * cw + x) * 4;
        rgba[k] = int(0, 255);
        rgba[k + 1] = int(0, 255);
        rgba[k + 2] = int(0, 255);
        const d = Math.hypot((x + 0.5) / cw - 0.5, (y + 0.5) / ch - 0.5);
        rgba[k + 3] = kind < 0.05 ? 0 : kind < 0.15 ? int(0, 255) : kind < 0.3 ? 255 : Math.max(0, Math.min(255, Math.round(255 * (0.55 - d) * 8)));
      }
    }
    const tw = r() < 0.05 ? 0 : int(1, Math.round(W * 0.9)), th = r() < 0.05 ? 0 : int(1, Math.round(H * 0.9));
    const frac = r() < 0.2;
    return {
      rgba, width: cw, height: ch, targetWidth: tw, targetHeight: th, flip: r() < 0.5,
      cx: int(-20, W + 20) + (frac ? r() : 0), cy: int(-20, H + 20) + (frac ? r() : 0),
    };
  });
  return scene;
}

function expectSameResult(got: CompositeResult, want: CompositeResult, where: string): void {
  expect(got.dropped, `${where} dropped`).toEqual(want.dropped);
  expect(got.instances.map((i) => [i.source, i.index, i.bbox, i.area]), `${where} instances`).toEqual(want.instances.map((i) => [i.source, i.index, i.bbox, i.area]));
  got.instances.forEach((inst, k) => {
    if (Buffer.compare(inst.mask, want.instances[k]!.mask) !== 0) fail(`${where}: mask ${k} differs from the reference`);
  });
  expect(got.boxOnly).toBe(want.boxOnly);
  expect(got.width).toBe(want.width);
  expect(got.height).toBe(want.height);
}

/** The properties the issue lists, checked on the native output alone. */
function checkProperties(s: CompositeScene, got: CompositeResult, ref: RefOut, blend: string, where: string): void {
  const W = got.width, H = got.height;
  const owner = new Int32Array(W * H).fill(-1);
  const nR = s.boxes ? s.boxes.length : (s.masks ?? []).length;
  for (const [k, inst] of got.instances.entries()) {
    const [box, area] = refBox(inst.mask, W, H);
    expect(inst.bbox, `${where}: box is the tight box of its mask`).toEqual(box);
    expect(inst.area, `${where}: area is the mask's pixel count`).toBe(area);
    expect(area, `${where}: no empty mask`).toBeGreaterThan(0);
    for (let i = 0; i < W * H; i++) {
      const v = inst.mask[i] as number;
      if (v !== 0 && v !== 1) fail(`${where}: mask value ${v}`);
      // Real masks may overlap each other in the input (as COCO annotations do);
      // a pasted instance's pixel belongs to it alone.
      if (v && blend === 'basic') {
        const prev = owner[i] as number;
        if (prev !== -1 && (inst.source === 'pasted' || got.instances[prev]!.source === 'pasted')) {
          fail(`${where}: pixel ${i} belongs to instances ${prev} and ${k}`);
        }
        owner[i] = k;
      }
    }
  }
  // Every input instance is either in the output or dropped, never both.
  const seen = new Set<string>();
  for (const i of got.instances) seen.add(`${i.source}${i.index}`);
  for (const d of got.dropped) {
    expect(seen.has(`${d.source}${d.index}`), `${where}: dropped ${d.source} ${d.index} is also in the output`).toBe(false);
    seen.add(`${d.source}${d.index}`);
  }
  expect(seen.size).toBe(nR + (s.instances ?? []).length);
  // Pasted pixels equal the resized instance's pixels: with `basic` for every
  // surviving pasted instance (later pastes removed what they painted from its
  // mask); with `alpha` for the last painted one where its alpha is 255.
  const lastPainted = Math.max(-1, ...ref.paintedIndex);
  for (const inst of got.instances) {
    if (inst.source !== 'pasted') continue;
    if (blend === 'gaussian' || (blend === 'alpha' && inst.index !== lastPainted)) continue;
    const p = s.instances![inst.index]!;
    const rs = ref.resized[inst.index]!;
    const [x0, y0] = ref.origin[inst.index]!;
    for (let i = 0; i < W * H; i++) {
      if (!inst.mask[i]) continue;
      const x = i % W, y = Math.floor(i / W);
      const k = ((y - y0) * p.targetWidth + (x - x0)) * 4;
      if (blend === 'alpha' && rs[k + 3] !== 255) continue;
      for (let c = 0; c < 3; c++) if (got.image[i * 3 + c] !== rs[k + c]) fail(`${where}: pasted ${inst.index} pixel (${x}, ${y}) is ${got.image[i * 3 + c]}, resized ${rs[k + c]}`);
    }
  }
  // Pixels and annotations agree for every blend and threshold: nothing
  // outside the painted masks changes; with `basic` every pixel of them is
  // the top-most painted instance's resized colour (painted = mask exactly).
  for (let i = 0; i < W * H; i++) {
    const t = ref.top[i] as number;
    if (t < 0) {
      for (let c = 0; c < 3; c++) if (got.image[i * 3 + c] !== s.image.data[i * 3 + c]) fail(`${where}: pixel ${i} outside every pasted mask changed`);
    } else if (blend === 'basic') {
      const p = s.instances![t]!;
      const [x0, y0] = ref.origin[t]!;
      const k = ((Math.floor(i / W) - y0) * p.targetWidth + (i % W - x0)) * 4;
      for (let c = 0; c < 3; c++) if (got.image[i * 3 + c] !== ref.resized[t]![k + c]) fail(`${where}: pixel ${i} of pasted ${t}'s mask is not its colour`);
    }
  }
}

describe('compositor: hand-computed cases', () => {
  const grey = (W: number, H: number, v = 10) => ({ data: new Uint8Array(W * H * 3).fill(v), width: W, height: H });
  const crop2x2 = (): Uint8Array => {
    // R channel 0, 80 / 160, 240; G = 200, B = 50, alpha 255.
    const c = new Uint8Array(16);
    [0, 80, 160, 240].forEach((v, i) => c.set([v, 200, 50, 255], 4 * i));
    return c;
  };

  it('resizes 2x2 to 4x4 with half-pixel centres (as OpenCV INTER_LINEAR)', () => {
    const r = compositeSync({ image: grey(4, 4), instances: [{ rgba: crop2x2(), width: 2, height: 2, targetWidth: 4, targetHeight: 4, cx: 2, cy: 2 }] });
    const red = Array.from({ length: 16 }, (_, i) => r.image[3 * i]);
    // Columns sample x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1); rows likewise.
    expect(red).toEqual([0, 20, 60, 80, 40, 60, 100, 120, 120, 140, 180, 200, 160, 180, 220, 240]);
    expect(Array.from({ length: 16 }, (_, i) => r.image[3 * i + 1])).toEqual(new Array(16).fill(200));
    expect(r.instances).toHaveLength(1);
    expect(r.instances[0]!.bbox).toEqual([0, 0, 4, 4]);
    expect(r.instances[0]!.area).toBe(16);
  });

  it('flips horizontally and places by the centre (x0 = cx - floor(tw / 2))', () => {
    const r = compositeSync({ image: grey(6, 4), instances: [{ rgba: crop2x2(), width: 2, height: 2, targetWidth: 4, targetHeight: 4, flip: true, cx: 3, cy: 2 }] });
    const row0 = Array.from({ length: 6 }, (_, x) => r.image[3 * x]);
    expect(row0).toEqual([10, 80, 60, 20, 0, 10]);
    expect(r.instances[0]!.bbox).toEqual([1, 0, 4, 4]);
  });

  it('copies exactly at scale 1 and clips at the border', () => {
    const rgba = new Uint8Array(3 * 3 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
    const r = compositeSync({ image: grey(4, 4), instances: [{ rgba, width: 3, height: 3, targetWidth: 3, targetHeight: 3, cx: 0, cy: 0 }] });
    // x0 = y0 = -1: the crop's pixels (1..2, 1..2) land on (0..1, 0..1).
    for (const [x, y] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
      for (let c = 0; c < 3; c++) expect(r.image[(y * 4 + x) * 3 + c]).toBe(rgba[((y + 1) * 3 + (x + 1)) * 4 + c]);
    }
    expect(r.instances[0]!.bbox).toEqual([0, 0, 2, 2]);
    expect(r.image[(2 * 4 + 2) * 3]).toBe(10);
  });

  it('alpha blend uses (src a + dst (255 - a) + 127) / 255 inside the mask (alpha >= maskThreshold) only', () => {
    const rgba = new Uint8Array([200, 100, 0, 128, 200, 100, 0, 127]);
    const scene: CompositeScene = { image: grey(2, 1, 50), instances: [{ rgba, width: 2, height: 1, targetWidth: 2, targetHeight: 1, cx: 1, cy: 0 }] };
    const f = (s: number, a: number) => Math.floor((s * a + 50 * (255 - a) + 127) / 255);
    // Default threshold 1 (alpha > 0): both pixels are annotated and blended.
    const r1 = compositeSync(scene, { blend: 'alpha' });
    expect(Array.from(r1.image)).toEqual([f(200, 128), f(100, 128), f(0, 128), f(200, 127), f(100, 127), f(0, 127)]);
    expect(Array.from(r1.instances[0]!.mask)).toEqual([1, 1]);
    // 128: the alpha-127 pixel is outside the mask, so it is not painted either.
    const r128 = compositeSync(scene, { blend: 'alpha', maskThreshold: 128 });
    expect(Array.from(r128.image)).toEqual([f(200, 128), f(100, 128), f(0, 128), 50, 50, 50]);
    expect(Array.from(r128.instances[0]!.mask)).toEqual([1, 0]);
  });

  describe('maskThreshold: a 4 x 4 crop whose left column has alpha 60', () => {
    // Pasted at scale 1 with its top-left corner at (2, 2) of an 8 x 8 image of 50s.
    const crop = new Uint8Array(64);
    for (let i = 0; i < 16; i++) crop.set([200, 100, 0, i % 4 === 0 ? 60 : 255], 4 * i);
    const scene: CompositeScene = { image: grey(8, 8, 50), instances: [{ rgba: crop, width: 4, height: 4, targetWidth: 4, targetHeight: 4, cx: 4, cy: 4 }] };
    const red = (r: CompositeResult, x: number, y: number) => r.image[(y * 8 + x) * 3];
    for (const blend of ['basic', 'alpha', 'gaussian'] as const) {
      it(`${blend}: threshold 1 (default, alpha > 0) annotates all 16 pixels`, () => {
        const r = compositeSync(scene, { blend });
        expect(r.instances.map((i) => [i.bbox, i.area])).toEqual([[[2, 2, 4, 4], 16]]);
        if (blend === 'basic') expect(red(r, 2, 3)).toBe(200);
        if (blend === 'alpha') expect(red(r, 2, 3)).toBe(Math.floor((200 * 60 + 50 * 195 + 127) / 255));
      });
      it(`${blend}: threshold 128 annotates the 12 opaque ones and paints nothing else`, () => {
        const r = compositeSync(scene, { blend, maskThreshold: 128 });
        expect(r.instances.map((i) => [i.bbox, i.area])).toEqual([[[3, 2, 3, 4], 12]]);
        for (let y = 0; y < 8; y++) for (let c = 0; c < 3; c++) expect(r.image[(y * 8 + 2) * 3 + c]).toBe(50);
        if (blend !== 'gaussian') expect(red(r, 3, 3)).toBe(200);
      });
    }
  });

  it('skip reasons use the threshold (empty-alpha, clipped-out)', () => {
    const scene: CompositeScene = {
      image: grey(8, 8),
      instances: [
        { rgba: new Uint8Array([1, 2, 3, 100]), width: 1, height: 1, targetWidth: 3, targetHeight: 3, cx: 4, cy: 4 },
        // x0 = 7: only the alpha-100 column is inside the image.
        { rgba: new Uint8Array([1, 2, 3, 100, 4, 5, 6, 255]), width: 2, height: 1, targetWidth: 2, targetHeight: 1, cx: 8, cy: 0 },
      ],
    };
    const r1 = compositeSync(scene);
    expect(r1.dropped).toEqual([]);
    expect(r1.instances.map((i) => [i.index, i.bbox, i.area])).toEqual([[0, [3, 3, 3, 3], 9], [1, [7, 0, 1, 1], 1]]);
    expect(compositeSync(scene, { maskThreshold: 100 }).instances).toHaveLength(2);
    const r = compositeSync(scene, { maskThreshold: 101 });
    expect(r.instances).toEqual([]);
    expect(r.dropped.map((d) => d.reason)).toEqual(['empty-alpha', 'clipped-out']);
    expect(Buffer.compare(r.image, scene.image.data)).toBe(0);
  });

  describe('keep rule boundaries (box moved <= 10 px OR area > 300)', () => {
    // A 41 x 10 real mask at the origin (area 410), optionally one extra pixel
    // at (0, 10); an opaque instance covers columns c..63 of rows 0..19.
    const W = 64, H = 64;
    const scene = (c: number, extra: boolean): CompositeScene => {
      const m = new Uint8Array(W * H);
      for (let y = 0; y < 10; y++) for (let x = 0; x <= 40; x++) m[y * W + x] = 1;
      if (extra) m[10 * W] = 1;
      const tw = W - c;
      return { image: grey(W, H), masks: [m], instances: [{ rgba: new Uint8Array([9, 9, 9, 255]), width: 1, height: 1, targetWidth: tw, targetHeight: 20, cx: c + Math.floor(tw / 2), cy: 10 }] };
    };
    const real = (r: CompositeResult) => r.instances.find((i) => i.source === 'real');

    it('shift exactly 10 with area 310: kept', () => {
      const r = compositeSync(scene(31, false));
      expect(real(r)?.bbox).toEqual([0, 0, 31, 10]);
      expect(real(r)?.area).toBe(310);
    });
    it('shift 11 with area exactly 300: dropped as occluded', () => {
      const r = compositeSync(scene(30, false));
      expect(real(r)).toBeUndefined();
      expect(r.dropped).toEqual([{ source: 'real', index: 0, reason: 'occluded' }]);
    });
    it('shift 11 with area 301: kept', () => {
      const r = compositeSync(scene(30, true));
      expect(real(r)?.area).toBe(301);
      expect(real(r)?.bbox).toEqual([0, 0, 30, 11]);
    });
    it('the constants are options', () => {
      expect(real(compositeSync(scene(31, false), { keepMaxShift: 9, keepMinArea: 310 }))).toBeUndefined();
      expect(real(compositeSync(scene(31, false), { keepMaxShift: 9, keepMinArea: 309 }))?.area).toBe(310);
      expect(real(compositeSync(scene(30, false), { keepMaxShift: 11 }))?.area).toBe(300);
    });
    it('a fully covered instance is dropped as empty', () => {
      const r = compositeSync(scene(0, false));
      expect(r.dropped).toEqual([{ source: 'real', index: 0, reason: 'empty' }]);
    });
  });

  it('records skips instead of failing', () => {
    const one = new Uint8Array([1, 2, 3, 255]);
    const r = compositeSync({
      image: grey(8, 8),
      instances: [
        { rgba: one, width: 1, height: 1, targetWidth: 0, targetHeight: 3, cx: 4, cy: 4 },
        { rgba: new Uint8Array(0), width: 0, height: 5, targetWidth: 3, targetHeight: 3, cx: 4, cy: 4 },
        { rgba: new Uint8Array([1, 2, 3, 0]), width: 1, height: 1, targetWidth: 3, targetHeight: 3, cx: 4, cy: 4 },
        { rgba: one, width: 1, height: 1, targetWidth: 3, targetHeight: 3, cx: 100, cy: 4 },
        { rgba: one, width: 1, height: 1, targetWidth: 20, targetHeight: 20, cx: 4, cy: 4 },
      ],
    });
    expect(r.dropped.map((d) => d.reason)).toEqual(['zero-size', 'empty-crop', 'empty-alpha', 'clipped-out']);
    expect(r.instances.map((i) => [i.index, i.bbox, i.area])).toEqual([[4, [0, 0, 8, 8], 64]]);
  });

  it('box-only scenes make box-shaped masks and say so', () => {
    const r = compositeSync({ image: grey(16, 16), boxes: [[1.6, 2.4, 5, 3.2], [20, 20, 4, 4]] });
    expect(r.boxOnly).toBe(true);
    expect(r.instances.map((i) => [i.bbox, i.area])).toEqual([[[2, 2, 5, 4], 20]]);
    expect(r.dropped).toEqual([{ source: 'real', index: 1, reason: 'empty' }]);
  });
});

describe('compositor against the reference over random scenes', () => {
  const blends = ['basic', 'alpha', 'gaussian'] as const;
  for (const maskThreshold of [1, 128]) for (const blend of blends) {
    it(`${blend}, maskThreshold ${maskThreshold}: 1000 scenes match the reference and keep the invariants`, () => {
      const r = seededRandom((blend === 'basic' ? 11 : blend === 'alpha' ? 12 : 13) + maskThreshold * 100);
      let pasted = 0, dropped = 0, occluded = 0;
      for (let b = 0; b < 20; b++) {
        const scenes = Array.from({ length: 50 }, (_, i) => randomScene(r, { boxOnly: i % 5 === 4 }));
        const opts: CompositeOptions = { blend, threads: 1 };
        if (maskThreshold !== 1) opts.maskThreshold = maskThreshold; // 1 is the default
        if (b % 3 === 1) Object.assign(opts, { keepMaxShift: 3, keepMinArea: 40 });
        if (b % 3 === 2) Object.assign(opts, { keepMaxShift: 0, keepMinArea: 1000 });
        const got = compositeBatchSync(scenes, opts);
        scenes.forEach((s, i) => {
          const where = `${blend} batch ${b} scene ${i}`;
          const ref = refComposite(s, { ...opts, blend: blend === 'gaussian' ? 'basic' : blend });
          expectSameResult(got[i]!, ref, where);
          checkProperties(s, got[i]!, ref, blend, where);
          if (blend !== 'gaussian') expect(Buffer.compare(got[i]!.image, ref.image), `${where} image`).toBe(0);
          pasted += got[i]!.instances.filter((x) => x.source === 'pasted').length;
          dropped += got[i]!.dropped.length;
          occluded += got[i]!.dropped.filter((d) => d.reason === 'occluded').length;
        });
      }
      // The scenes exercise pasting, dropping and the keep rule.
      expect(pasted).toBeGreaterThan(1000);
      expect(dropped).toBeGreaterThan(200);
      expect(occluded).toBeGreaterThan(20);
    });
  }

  it('1 and 2 threads give identical bytes; the Promise form equals the sync one', async () => {
    const r = seededRandom(99);
    const scenes = Array.from({ length: 60 }, (_, i) => randomScene(r, { boxOnly: i % 4 === 0 }));
    for (const blend of blends) {
      const a = compositeBatchSync(scenes, { blend, threads: 1 });
      const b = compositeBatchSync(scenes, { blend, threads: 2 });
      const c = await compositeBatch(scenes, { blend, threads: 2 });
      for (const other of [b, c]) {
        other.forEach((o, i) => {
          expect(Buffer.compare(o.image, a[i]!.image)).toBe(0);
          expectSameResult(o, a[i]!, `${blend} scene ${i}`);
        });
      }
    }
  });
});

describe('compositor: large calls', () => {
  // From 16 MiB of output per call the core writes the outputs with stream
  // (non-temporal) stores; odd widths put the rows at every alignment.
  it('a call with more than 16 MiB of output (stream stores) matches the reference, on 1 and 2 threads', async () => {
    const r = seededRandom(31);
    const scenes = [randomScene(r, { size: [1021, 683] }), randomScene(r, { size: [1024, 512] }), randomScene(r, { size: [777, 1001], boxOnly: true }), randomScene(r, { size: [640, 480] })];
    const bytes = scenes.reduce((n, s) => n + s.image.width * s.image.height * (3 + (s.masks ?? s.boxes ?? []).length + (s.instances ?? []).length), 0);
    expect(bytes).toBeGreaterThan(16 * 2 ** 20);
    for (const opts of [{ threads: 1 }, { threads: 2, blend: 'alpha' as const }]) {
      const got = opts.threads === 1 ? compositeBatchSync(scenes, opts) : await compositeBatch(scenes, opts);
      scenes.forEach((s, i) => {
        const ref = refComposite(s, opts);
        expectSameResult(got[i]!, ref, `threads ${opts.threads} scene ${i}`);
        expect(Buffer.compare(got[i]!.image, ref.image), `scene ${i} image`).toBe(0);
      });
    }
  });
});

describe('compositor: SIMD levels', () => {
  it('every level (the resize row kernel pinned to it) gives the same bytes', () => {
    const r = seededRandom(4242);
    const scenes = Array.from({ length: 40 }, (_, i) => randomScene(r, { boxOnly: i % 8 === 0 }));
    for (const blend of ['basic', 'alpha', 'gaussian'] as const) {
      const want = compositeBatchSync(scenes, { blend, isa: 'scalar', threads: 1 });
      for (const isa of ['avx2', 'avx512', 'auto'] as const) {
        const got = compositeBatchSync(scenes, { blend, isa, threads: 2 });
        got.forEach((o, i) => {
          expect(Buffer.compare(o.image, want[i]!.image), `${blend} ${isa} scene ${i}`).toBe(0);
          expectSameResult(o, want[i]!, `${blend} ${isa} scene ${i}`);
        });
      }
    }
  });
});

describe('compositor: maskFormat box', () => {
  it('returns the full-frame masks cropped to their boxes, everything else identical', async () => {
    const r = seededRandom(123);
    const scenes = Array.from({ length: 300 }, (_, i) => randomScene(r, { boxOnly: i % 5 === 0 }));
    for (const blend of ['basic', 'gaussian'] as const) {
      const full = compositeBatchSync(scenes, { blend, threads: 2 });
      const box = await compositeBatch(scenes, { blend, threads: 2, maskFormat: 'box' });
      full.forEach((f, i) => {
        const b = box[i]!;
        if (Buffer.compare(f.image, b.image) !== 0) fail(`scene ${i}: images differ`);
        expect(b.dropped).toEqual(f.dropped);
        expect(b.instances.map((x) => [x.source, x.index, x.bbox, x.area])).toEqual(f.instances.map((x) => [x.source, x.index, x.bbox, x.area]));
        f.instances.forEach((inst, k) => {
          const [x0, y0, w, h] = inst.bbox;
          const want = new Uint8Array(w * h);
          for (let y = 0; y < h; y++) want.set(inst.mask.subarray((y0 + y) * f.width + x0, (y0 + y) * f.width + x0 + w), y * w);
          if (Buffer.compare(b.instances[k]!.mask, want) !== 0) fail(`scene ${i} instance ${k}: crop differs`);
        });
      });
    }
  });
});

describe('compositor: output pool', () => {
  it('reused (dirty) output memory gives the same results as fresh memory', async () => {
    const r = seededRandom(321);
    const pool = new CompositeOutputPool();
    const batches = Array.from({ length: 4 }, () => Array.from({ length: 40 }, (_, i) => randomScene(r, { boxOnly: i % 6 === 0 })));
    let reused = 0;
    for (const [b, scenes] of batches.entries()) {
      const want = compositeBatchSync(scenes, { threads: 1, blend: b % 2 ? 'alpha' : 'basic' });
      const before = pool.heldBytes;
      const got = b % 2 ? await compositeBatch(scenes, { threads: 2, pool, blend: 'alpha' }) : compositeBatchSync(scenes, { threads: 2, pool });
      if (b > 0) expect(pool.heldBytes).toBeLessThan(before); // blocks were taken from the pool
      if (pool.heldBytes < before) reused++;
      got.forEach((g, i) => {
        if (Buffer.compare(g.image, want[i]!.image) !== 0) fail(`batch ${b} scene ${i}: image differs`);
        expectSameResult(g, want[i]!, `batch ${b} scene ${i}`);
      });
      pool.release(got);
      pool.release(got); // a second release is ignored
      expect(pool.heldBytes).toBeGreaterThan(0);
    }
    expect(reused).toBe(3);
  });

  it('keeps at most maxBytes and rejects a foreign pool', async () => {
    const pool = new CompositeOutputPool({ maxBytes: 0 });
    const r = seededRandom(5);
    const got = compositeBatchSync([randomScene(r)], { pool });
    pool.release(got);
    expect(pool.heldBytes).toBe(0);
    await expectCode(() => compositeBatchSync([], { pool: {} as CompositeOutputPool }), 'E_TYPE');
  });
});

describe('compositor: bad inputs', () => {
  const img = { data: new Uint8Array(8 * 8 * 3), width: 8, height: 8 };
  const inst = (o: Partial<PasteInstance> = {}): PasteInstance => ({ rgba: new Uint8Array(4), width: 1, height: 1, targetWidth: 2, targetHeight: 2, cx: 1, cy: 1, ...o });
  const cases: Array<[string, () => unknown, string]> = [
    ['image length', () => compositeSync({ image: { ...img, data: new Uint8Array(10) } }), 'E_SHAPE'],
    ['image dtype', () => compositeSync({ image: { ...img, data: new Float32Array(192) as unknown as Uint8Array } }), 'E_DTYPE'],
    ['mask length', () => compositeSync({ image: img, masks: [new Uint8Array(63)] }), 'E_SHAPE'],
    ['mask dtype', () => compositeSync({ image: img, masks: [[1, 2] as unknown as Uint8Array] }), 'E_DTYPE'],
    ['masks and boxes', () => compositeSync({ image: img, masks: [], boxes: [] }), 'E_ARGUMENT'],
    ['box shape', () => compositeSync({ image: img, boxes: [[1, 2, 3] as unknown as [number, number, number, number]] }), 'E_SHAPE'],
    ['negative box size', () => compositeSync({ image: img, boxes: [[1, 2, -3, 4]] }), 'E_RANGE'],
    ['rgba length', () => compositeSync({ image: img, instances: [inst({ rgba: new Uint8Array(3) })] }), 'E_SHAPE'],
    ['negative target', () => compositeSync({ image: img, instances: [inst({ targetWidth: -1 })] }), 'E_RANGE'],
    ['fractional target', () => compositeSync({ image: img, instances: [inst({ targetHeight: 1.5 })] }), 'E_RANGE'],
    ['NaN centre', () => compositeSync({ image: img, instances: [inst({ cx: Number.NaN })] }), 'E_RANGE'],
    ['huge crop', () => compositeSync({ image: img, instances: [inst({ width: 70000 })] }), 'E_RANGE'],
    ['flip type', () => compositeSync({ image: img, instances: [inst({ flip: 1 as unknown as boolean })] }), 'E_TYPE'],
    ['blend', () => compositeSync({ image: img }, { blend: 'poisson' as 'basic' }), 'E_RANGE'],
    ['sigma', () => compositeSync({ image: img }, { blend: 'gaussian', sigma: 0 }), 'E_RANGE'],
    ['threads', () => compositeSync({ image: img }, { threads: -1 }), 'E_RANGE'],
    ['maskFormat', () => compositeSync({ image: img }, { maskFormat: 'rle' as 'box' }), 'E_RANGE'],
    ['maskThreshold 0', () => compositeSync({ image: img }, { maskThreshold: 0 }), 'E_RANGE'],
    ['maskThreshold 256', () => compositeSync({ image: img }, { maskThreshold: 256 }), 'E_RANGE'],
    ['maskThreshold 1.5', () => compositeSync({ image: img }, { maskThreshold: 1.5 }), 'E_RANGE'],
    ['maskThreshold type', () => compositeSync({ image: img }, { maskThreshold: '128' as unknown as number }), 'E_TYPE'],
    ['scenes type', () => compositeBatchSync({} as unknown as CompositeScene[]), 'E_TYPE'],
    ['isa', () => compositeSync({ image: img }, { isa: 'sse9' as 'auto' }), 'E_RANGE'],
  ];
  for (const [name, fn, code] of cases) it(`${name} -> ${code}`, async () => expectCode(fn, code));

  it('the addon checks again when called directly', () => {
    const a = native();
    const codeOf = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(GenaugError);
        return (e as GenaugError).code;
      }
      return 'none';
    };
    expect(codeOf(() => a.compositeBatchSync([{ image: new Uint8Array(5), width: 8, height: 8 }]))).toBe('E_SHAPE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, masks: [new Uint8Array(3)] }]))).toBe('E_SHAPE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, instances: [{ ...inst(), rgba: new Uint8Array(5) }] }]))).toBe('E_SHAPE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, instances: [{ ...inst(), targetWidth: 2 ** 21 }] }]))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, boxes: new Float64Array(3) }]))).toBe('E_SHAPE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, instances: [{ ...inst(), cy: Infinity }] }]))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { blend: 'x' as 'basic' }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { keepMinArea: -1 }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { maskFormat: 'crop' as 'box' }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { maskThreshold: 0 }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { maskThreshold: 256 }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8 }], { isa: 'sse9' as 'auto' }))).toBe('E_RANGE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, masks: [new Uint8Array(64)], out: new Uint8Array(64 * 3) }]))).toBe('E_SHAPE');
    expect(codeOf(() => a.compositeBatchSync([{ image: img.data, width: 8, height: 8, masks: [new Uint8Array(64)], out: new Uint8Array(64 * 3) }], { maskFormat: 'box' }))).toBe('none');
  });
});

describe('compositor: recycled output memory (the default)', () => {
  // A full collection now (vitest gives no --expose-gc; the flag can be turned on at run time).
  const collect = async (): Promise<void> => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    (vm.runInNewContext('gc') as () => void)();
    // Blocks go back on the free list from their finalizers, which run on the event loop.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };

  it('reuses the memory of dropped results, never that of results still held, and gives the bytes of fresh memory', async () => {
    const r = seededRandom(99);
    const scenes = Array.from({ length: 6 }, (_, i) => randomScene(r, { boxOnly: i === 3 }));
    const want = compositeBatchSync(scenes, { threads: 1, transferable: true });
    const kept = compositeBatchSync(scenes, { threads: 2 });
    const keptCopy = kept.map((k) => ({ image: k.image.slice(), masks: k.instances.map((i) => i.mask.slice()) }));
    let reused = false;
    for (let round = 0; round < 4; round++) {
      await collect();
      const held = compositeMemory().heldBytes;
      const got = round % 2 ? await compositeBatch(scenes, { threads: 2 }) : compositeBatchSync(scenes, { threads: 1 });
      if (held > 0 && compositeMemory().heldBytes < held) reused = true;
      got.forEach((g, i) => expectSameResult(g, want[i]!, `round ${round} scene ${i}`));
    }
    expect(reused).toBe(true);
    // The results held all along were not written over.
    kept.forEach((k, i) => {
      expect(Buffer.compare(k.image, keptCopy[i]!.image)).toBe(0);
      k.instances.forEach((inst, j) => expect(Buffer.compare(inst.mask, keptCopy[i]!.masks[j]!)).toBe(0));
      expectSameResult(k, want[i]!, `kept scene ${i}`);
    });
    expect(compositeMemory({ release: true }).heldBytes).toBe(0);
  });

  it('gives transferable results when asked (they move through postMessage) and checks the option', async () => {
    const r = seededRandom(7);
    const [res] = compositeBatchSync([randomScene(r)], { transferable: true });
    const { port1, port2 } = new MessageChannel();
    const got = new Promise<ArrayBuffer>((resolve) => port2.once('message', (m: ArrayBuffer) => resolve(m)));
    const buf = res!.image.buffer as ArrayBuffer;
    const bytes = buf.byteLength;
    port1.postMessage(buf, [buf]);
    expect((await got).byteLength).toBe(bytes);
    expect(buf.byteLength).toBe(0); // moved, not copied
    port1.close();
    await expectCode(() => compositeBatchSync([], { transferable: 1 as unknown as boolean }), 'E_TYPE');
  });
});
