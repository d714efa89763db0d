/**
 * The paste layer's view of the compositor: one scene in, the composited
 * image and every surviving instance (mask, box, area) out.
 *
 * TEMPORARY: a plain TypeScript implementation of the native compositor's
 * rules (native/core/composite.h), used until ts/kernels/composite.ts lands.
 */
import { GenaugError } from '../native/errors.js';

export type BlendMode = 'basic' | 'alpha' | 'gaussian';

export interface ScenePaste {
  rgba: Uint8Array;
  width: number;
  height: number;
  targetWidth: number;
  targetHeight: number;
  flip: boolean;
  cx: number;
  cy: number;
}

export interface SceneInput {
  image: { data: Uint8Array; width: number; height: number };
  /** One 0/1 mask per real instance (height x width) ... */
  masks?: Uint8Array[];
  /** ... or, for a box-only scene, one [x, y, w, h] per real instance. */
  boxes?: number[][];
  pastes: ScenePaste[];
}

export interface SceneInstance {
  source: 'real' | 'pasted';
  index: number;
  mask: Uint8Array;
  bbox: [number, number, number, number];
  area: number;
}

export interface SceneOutput {
  image: Uint8Array;
  instances: SceneInstance[];
  dropped: Array<{ source: 'real' | 'pasted'; index: number; reason: string }>;
  boxOnly: boolean;
}

export interface ComposeOptions {
  blend?: BlendMode;
  sigma?: number;
  keepMaxShift?: number;
  keepMinArea?: number;
}

function tightBox(m: Uint8Array, w: number, h: number): { box: [number, number, number, number]; area: number } {
  let x0 = w, y0 = h, x1 = -1, y1 = -1, area = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (m[y * w + x]) {
        area++;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return area ? { box: [x0, y0, x1 - x0 + 1, y1 - y0 + 1], area } : { box: [0, 0, 0, 0], area: 0 };
}

function resizeBilinear(p: ScenePaste): Uint8Array {
  const { width: w, height: h, targetWidth: tw, targetHeight: th } = p;
  const out = new Uint8Array(tw * th * 4);
  for (let v = 0; v < th; v++) {
    const sy = Math.min(Math.max((v + 0.5) * (h / th) - 0.5, 0), h - 1);
    const y0 = Math.floor(sy), y1 = Math.min(y0 + 1, h - 1), b = sy - y0;
    for (let u = 0; u < tw; u++) {
      const sx = Math.min(Math.max((u + 0.5) * (w / tw) - 0.5, 0), w - 1);
      const x0 = Math.floor(sx), x1 = Math.min(x0 + 1, w - 1), a = sx - x0;
      const du = p.flip ? tw - 1 - u : u;
      for (let c = 0; c < 4; c++) {
        const s = (yy: number, xx: number) => p.rgba[(yy * w + xx) * 4 + c] as number;
        const val = (s(y0, x0) * (1 - a) + s(y0, x1) * a) * (1 - b) + (s(y1, x0) * (1 - a) + s(y1, x1) * a) * b;
        out[(v * tw + du) * 4 + c] = Math.round(val);
      }
    }
  }
  return out;
}

export function compositeScene(scene: SceneInput, o: ComposeOptions = {}): SceneOutput {
  const { width: W, height: H } = scene.image;
  if ((o.blend ?? 'basic') !== 'basic') throw new GenaugError('E_ARGUMENT', 'the stand-in compositor does basic blending only');
  const keepShift = o.keepMaxShift ?? 10;
  const keepArea = o.keepMinArea ?? 300;
  const image = Uint8Array.from(scene.image.data);
  const boxOnly = !scene.masks;
  const masks: Uint8Array[] = [];
  if (scene.masks) for (const m of scene.masks) masks.push(Uint8Array.from(m, (v) => (v ? 1 : 0)));
  else {
    for (const b of scene.boxes ?? []) {
      const m = new Uint8Array(W * H);
      const xa = Math.max(0, Math.floor(b[0]! + 0.5)), xb = Math.min(W, Math.floor(b[0]! + b[2]! + 0.5));
      const ya = Math.max(0, Math.floor(b[1]! + 0.5)), yb = Math.min(H, Math.floor(b[1]! + b[3]! + 0.5));
      for (let y = ya; y < yb; y++) m.fill(1, y * W + xa, y * W + Math.max(xa, xb));
      masks.push(m);
    }
  }
  const R = masks.length;
  type Live = { source: 'real' | 'pasted'; index: number; mask: Uint8Array; box: [number, number, number, number]; area: number };
  const live: Live[] = [];
  const dropped: SceneOutput['dropped'] = [];
  for (let r = 0; r < R; r++) {
    const t = tightBox(masks[r]!, W, H);
    if (t.area === 0) dropped.push({ source: 'real', index: r, reason: 'empty' });
    else live.push({ source: 'real', index: r, mask: masks[r]!, box: t.box, area: t.area });
  }
  scene.pastes.forEach((p, pi) => {
    const res = resizeBilinear(p);
    const x0 = Math.floor(p.cx - p.targetWidth / 2 + 0.5);
    const y0 = Math.floor(p.cy - p.targetHeight / 2 + 0.5);
    const m = new Uint8Array(W * H);
    for (let v = 0; v < p.targetHeight; v++) {
      const y = y0 + v;
      if (y < 0 || y >= H) continue;
      for (let u = 0; u < p.targetWidth; u++) {
        const x = x0 + u;
        if (x < 0 || x >= W) continue;
        const s = (v * p.targetWidth + u) * 4;
        if ((res[s + 3] as number) >= 128) {
          m[y * W + x] = 1;
          image.set(res.subarray(s, s + 3), (y * W + x) * 3);
        }
      }
    }
    const t = tightBox(m, W, H);
    if (t.area === 0) {
      dropped.push({ source: 'pasted', index: pi, reason: 'clipped_out' });
      return;
    }
    for (let i = 0; i < live.length; i++) {
      const e = live[i]!;
      for (let k = 0; k < m.length; k++) if (m[k]) e.mask[k] = 0;
      const nt = tightBox(e.mask, W, H);
      const old = [e.box[0], e.box[1], e.box[0] + e.box[2], e.box[1] + e.box[3]];
      const nw = [nt.box[0], nt.box[1], nt.box[0] + nt.box[2], nt.box[1] + nt.box[3]];
      const moved = Math.max(...old.map((v, j) => Math.abs(v - nw[j]!)));
      if (nt.area === 0 || !(moved <= keepShift || nt.area > keepArea)) {
        dropped.push({ source: e.source, index: e.index, reason: nt.area === 0 ? 'empty' : 'occluded' });
        live.splice(i--, 1);
      } else {
        e.box = nt.box;
        e.area = nt.area;
      }
    }
    live.push({ source: 'pasted', index: pi, mask: m, box: t.box, area: t.area });
  });
  return { image, instances: live.map((e) => ({ source: e.source, index: e.index, mask: e.mask, bbox: e.box, area: e.area })), dropped, boxOnly };
}
