import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { native } from '../ts/native/load.js';
import {
  compressRle,
  cornerBackgroundSync,
  cropToMask,
  cropToMaskSync,
  decodeRle,
  decodeRleBatchSync,
  decodeRleSync,
  encodeRle,
  encodeRleBatch,
  encodeRleSync,
  fillHoles,
  fillHolesSync,
  foregroundFromCorners,
  foregroundFromCornersSync,
  invertMask,
  largestComponent,
  largestComponentBatchSync,
  largestComponentSync,
  maskArea,
  maskBbox,
  maskIou,
  maskStatsBatchSync,
  mergeRles,
  polygonsToRle,
  postProcessBatch,
  postProcessBatchSync,
  postProcessMask,
  postProcessMaskSync,
  rleArea,
  rleIou,
  rleIouSync,
  rleToBbox,
  segmentationToRle,
  uncompressRle,
  type Image,
  type Mask,
  type MaskBatch,
  type Rle,
} from '../ts/kernels/mask.js';
import { seededRandom } from '../ts/util/random.js';
import { expectCode } from './helpers.js';

// --- References written from the spec ----------------------------------------------

function parse(rows: string[]): Mask {
  const data = Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));
  return { data, height: rows.length, width: rows[0]?.length ?? 0 };
}

function fg(m: Mask, i: number): boolean {
  return (m.data[i] as number) !== 0;
}

/** BFS labels (1..n), numbered by first pixel in row-major order. */
function label(m: Mask, conn: 4 | 8, value: boolean): { lab: Int32Array; n: number } {
  const { height: h, width: w } = m;
  const lab = new Int32Array(h * w);
  let n = 0;
  for (let i = 0; i < h * w; i++) {
    if (fg(m, i) !== value || lab[i]) continue;
    lab[i] = ++n;
    const stack = [i];
    while (stack.length) {
      const p = stack.pop() as number;
      const y = Math.floor(p / w), x = p % w;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        if ((!dy && !dx) || (conn === 4 && dy && dx)) continue;
        const yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const k = yy * w + xx;
        if (fg(m, k) === value && !lab[k]) {
          lab[k] = n;
          stack.push(k);
        }
      }
    }
  }
  return { lab, n };
}

function refLargest(m: Mask, conn: 4 | 8 = 8): Mask {
  const { lab, n } = label(m, conn, true);
  const area = new Float64Array(n + 1);
  for (const l of lab) if (l) area[l] = (area[l] as number) + 1;
  let best = 0;
  for (let l = 1; l <= n; l++) if ((area[l] as number) > (area[best] as number)) best = l;
  return { ...m, data: Uint8Array.from(lab, (l) => (best && l === best ? 1 : 0)) };
}

function refFill(m: Mask, conn: 4 | 8 = 8): Mask {
  const { height: h, width: w } = m;
  const { lab, n } = label(m, conn === 8 ? 4 : 8, false);
  const border = new Uint8Array(n + 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (y === 0 || x === 0 || y === h - 1 || x === w - 1) border[lab[y * w + x] as number] = 1;
  }
  return { ...m, data: Uint8Array.from(lab, (l, i) => (fg(m, i) ? 1 : border[l] ? 0 : 1)) };
}

/** Column-major runs starting with zeros. */
function refEncode(m: Mask): number[] {
  const out: number[] = [];
  let p = false, run = 0;
  for (let x = 0; x < m.width; x++) for (let y = 0; y < m.height; y++) {
    const v = fg(m, y * m.width + x);
    if (v !== p) {
      out.push(run);
      run = 0;
      p = v;
    }
    run++;
  }
  out.push(run);
  return out;
}

/** FORMATS.md string rules with plain arithmetic. */
function refString(c: number[]): string {
  let s = '';
  c.forEach((v, i) => {
    let x = i > 2 ? v - (c[i - 2] as number) : v;
    for (;;) {
      const chunk = ((x % 32) + 32) % 32;
      const rest = (x - chunk) / 32;
      const last = chunk & 0x10 ? rest === -1 : rest === 0;
      s += String.fromCharCode(48 + chunk + (last ? 0 : 0x20));
      x = rest;
      if (last) break;
    }
  });
  return s;
}

function refBox(m: Mask): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) {
    if (!fg(m, y * m.width + x)) continue;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

function randomMask(h: number, w: number, seed: number, density: number): Mask {
  const r = seededRandom(seed);
  const data = new Uint8Array(h * w);
  for (let i = 0; i < data.length; i++) data[i] = r() < density ? (r() < 0.8 ? 1 : 1 + Math.floor(r() * 254)) : 0;
  return { data, height: h, width: w };
}

function binary(m: Mask): Uint8Array {
  return Uint8Array.from(m.data, (v) => (v ? 1 : 0));
}

const SHAPES: Array<[number, number]> = [[0, 0], [0, 4], [4, 0], [1, 1], [1, 9], [9, 1], [1, 64], [64, 1], [3, 5], [5, 3], [17, 13], [33, 65], [64, 64]];

// --- Components, holes, stats ------------------------------------------------------

describe('mask kernels', () => {
  it('touching diagonals: one component under 8-connectivity, two under 4 (tie to the first)', async () => {
    const m = parse(['#.', '.#']);
    expect(largestComponentSync(m).components).toBe(1);
    const r = await largestComponent(m, { connectivity: 4 });
    expect(r.components).toBe(2);
    expect(Array.from(r.mask.data)).toEqual([1, 0, 0, 0]);
    expect(Array.from(largestComponentSync(parse(['.#', '#.']), { connectivity: 4 }).mask.data)).toEqual([0, 1, 0, 0]);
  });

  it('fills a ring, not a ring open to the border, and treats diagonal leaks by connectivity', async () => {
    const ring = parse(['.....', '.###.', '.#.#.', '.###.', '.....']);
    expect(Array.from((await fillHoles(ring)).data)).toEqual(Array.from(parse(['.....', '.###.', '.###.', '.###.', '.....']).data));
    const u = parse(['#.#', '#.#', '###']);
    expect(Array.from(fillHolesSync(u).data)).toEqual(Array.from(u.data));
    const diag = parse(['.....', '.##..', '.#.#.', '..##.', '.....']);
    expect(fillHolesSync(diag).data[12]).toBe(1);                    // enclosed for 8-connected foreground
    expect(fillHolesSync(diag, { connectivity: 4 }).data[12]).toBe(0);  // leaks diagonally for 4-connected
  });

  it('matches the BFS reference on random masks of odd, thin and empty shapes', () => {
    let seed = 1;
    for (const [h, w] of SHAPES) for (const density of [0.05, 0.45, 0.6, 0.95]) for (const conn of [4, 8] as const) {
      const m = randomMask(h, w, seed++, density);
      expect(Array.from(largestComponentSync(m, { connectivity: conn }).mask.data)).toEqual(Array.from(refLargest(m, conn).data));
      expect(Array.from(fillHolesSync(m, { connectivity: conn }).data)).toEqual(Array.from(refFill(m, conn).data));
    }
  });

  it('area, box, invert, IoU', () => {
    const m = randomMask(23, 31, 5, 0.3);
    expect(maskArea(m)).toBe(binary(m).reduce((a, b) => a + b, 0));
    expect(maskBbox(m)).toEqual(refBox(m));
    expect(maskBbox({ data: new Uint8Array(6), height: 2, width: 3 })).toEqual([0, 0, 0, 0]);
    expect(Array.from(invertMask(m).data)).toEqual(Array.from(m.data, (v) => (v ? 0 : 1)));
    const b = randomMask(23, 31, 6, 0.5);
    let i = 0, u = 0;
    for (let k = 0; k < m.data.length; k++) {
      i += fg(m, k) && fg(b, k) ? 1 : 0;
      u += fg(m, k) || fg(b, k) ? 1 : 0;
    }
    expect(maskIou(m, b)).toBeCloseTo(i / u, 15);
    const empty = { data: new Uint8Array(4), height: 2, width: 2 };
    expect(maskIou(empty, empty)).toBe(0);
  });

  it('crops RGB and RGBA to RGBA with alpha = 255 * mask', async () => {
    for (const channels of [3, 4] as const) {
      const img: Image = { data: Uint8Array.from({ length: 4 * 5 * channels }, (_, i) => (i * 7 + 1) & 255), height: 4, width: 5, channels };
      const mask = parse(['.....', '..#..', '.##..', '.....']);
      const c = await cropToMask(img, mask);
      expect(c.bbox).toEqual([1, 1, 2, 2]);
      expect([c.width, c.height]).toEqual([2, 2]);
      for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) {
        const s = ((1 + y) * 5 + 1 + x) * channels;
        expect(Array.from(c.data.subarray((y * 2 + x) * 4, (y * 2 + x) * 4 + 4))).toEqual([
          img.data[s], img.data[s + 1], img.data[s + 2], mask.data[(1 + y) * 5 + 1 + x] ? 255 : 0,
        ]);
      }
      expect(cropToMaskSync(img, mask, [0, 0, 5, 4]).data.length).toBe(80);
      await expectCode(() => cropToMaskSync(img, mask, [3, 0, 3, 1]), 'E_RANGE');
    }
  });

  it('post-processes in one call, batches and threads agree with single masks', async () => {
    const h = 41, w = 57, n = 6;
    const data = new Uint8Array(n * h * w);
    for (let i = 0; i < n; i++) data.set(randomMask(h, w, 100 + i, 0.55 + 0.05 * i).data, i * h * w);
    const batch: MaskBatch = { data, count: n, height: h, width: w };
    const one = postProcessBatchSync(batch, { threads: 1 });
    const two = await postProcessBatch(batch, { threads: 2, rle: 'counts' });
    for (let i = 0; i < n; i++) {
      const m: Mask = { data: data.subarray(i * h * w, (i + 1) * h * w), height: h, width: w };
      const want = refFill(refLargest(m));
      const r = i % 2 ? await postProcessMask(m) : postProcessMaskSync(m);
      expect(Array.from(r.mask?.data ?? [])).toEqual(Array.from(want.data));
      expect(r.area).toBe(want.data.reduce((a, b) => a + b, 0));
      expect(r.bbox).toEqual(refBox(want));
      expect(r.rle?.counts).toBe(refString(refEncode(want)));
      expect(one[i]?.rle).toEqual(r.rle);
      expect(two[i]?.rle?.counts).toEqual(refEncode(want));
      expect(Array.from(two[i]?.mask?.data ?? [])).toEqual(Array.from(want.data));
    }
    const lb = largestComponentBatchSync(batch, { threads: 2 });
    expect(lb.components.length).toBe(n);
    const st = maskStatsBatchSync(batch, { threads: 2 });
    expect(st.bbox[0]).toEqual(refBox({ data: data.subarray(0, h * w), height: h, width: w }));
  });

  it('rejects by area with a reason', () => {
    const m = parse(['#....', '.....', '.....', '.....', '.....']);
    const r = postProcessMaskSync(m, { minFraction: 0.05, maxFraction: 0.95, rle: 'none' });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/below minFraction/);
    expect(r.rle).toBeUndefined();
    expect(postProcessMaskSync({ data: new Uint8Array(4), height: 2, width: 2 }).reason).toBe('the mask is empty');
    expect(postProcessMaskSync(m, { mask: false }).mask).toBeUndefined();
  });
});

describe('corner background', () => {
  // A non-square white image with a dark object: a (row, col) mix-up of the
  // corners would read outside the image or seed inside the object.
  const H = 30, W = 50;
  function scene(channels: 3 | 4): Image {
    const data = new Uint8Array(H * W * channels).fill(255);
    for (let y = 5; y < 20; y++) for (let x = 30; x < 46; x++) for (let c = 0; c < 3; c++) data[(y * W + x) * channels + c] = 30;
    for (let c = 0; c < 3; c++) data[(10 * W + 35) * channels + c] = 252;  // a light speck inside the object
    for (let c = 0; c < 3; c++) data[(0 * W + 20) * channels + c] = 246;   // background noise within tolerance
    return { data, height: H, width: W, channels };
  }

  it('flood-fills from the corners within the tolerance', async () => {
    const bg = cornerBackgroundSync(scene(3));
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const object = y >= 5 && y < 20 && x >= 30 && x < 46;
      expect(bg.data[y * W + x], `(${x}, ${y})`).toBe(object ? 0 : 1);
    }
    expect(cornerBackgroundSync(scene(3), { tolerance: 5 }).data[20]).toBe(0);
    for (const channels of [3, 4] as const) {
      const r = channels === 3 ? foregroundFromCornersSync(scene(channels), { background: true }) : await foregroundFromCorners(scene(channels));
      expect(r.area).toBe(15 * 16);
      expect(r.bbox).toEqual([30, 5, 16, 15]);
      expect(r.ok).toBe(true);
      if (channels === 3) expect(Array.from(r.background?.data ?? [])).toEqual(Array.from(bg.data));
      expect((await decodeRle(r.rle as Rle)).data).toEqual(r.mask?.data);
    }
    await expectCode(() => foregroundFromCornersSync(scene(3), { invert: true } as never), 'E_ARGUMENT');
  });
});

// --- COCO RLE ------------------------------------------------------------------------

describe('COCO RLE', () => {
  it('writes the string form as worked by hand from FORMATS.md', () => {
    const cases: Array<[number[], string]> = [
      [[6], '6'], [[0, 6], '06'], [[16], '`0'], [[100], 'T3'], [[1048576], 'PPPP1'], [[1, 2, 3, 1], '123O'], [[0, 30, 10, 10], '0n0:\\O'],
    ];
    for (const [counts, s] of cases) {
      const total = counts.reduce((a, b) => a + b, 0);
      expect(compressRle({ size: [1, total], counts }).counts).toBe(s);
      expect(refString(counts)).toBe(s);
      expect(uncompressRle({ size: [total, 1], counts: s }).counts).toEqual(counts);
    }
  });

  it('encodes and decodes like the column-major reference, including empty, full, 1xN, Nx1 and odd sizes', async () => {
    let seed = 50;
    for (const [h, w] of SHAPES) for (const density of [0, 0.02, 0.5, 0.97, 1]) {
      const m = randomMask(h, w, seed++, density);
      const counts = refEncode(m);
      const rle = encodeRleSync(m, { form: 'counts' });
      expect(rle).toEqual({ size: [h, w], counts });
      const s = await encodeRle(m);
      expect(s.counts).toBe(refString(counts));
      expect(Array.from(decodeRleSync(s).data)).toEqual(Array.from(binary(m)));
      expect(Array.from((await decodeRle(rle)).data)).toEqual(Array.from(binary(m)));
      expect(rleArea(s)).toBe(binary(m).reduce((a, b) => a + b, 0));
      expect(rleToBbox(s)).toEqual(refBox(m));
    }
    expect(encodeRleSync({ data: new Uint8Array(0), height: 0, width: 3 }).counts).toBe('0');
  });

  it('batches encode and decode', async () => {
    const n = 5, h = 19, w = 23;
    const data = new Uint8Array(n * h * w);
    for (let i = 0; i < n; i++) data.set(randomMask(h, w, 7 + i, 0.4).data, i * h * w);
    const rles = await encodeRleBatch({ data, count: n, height: h, width: w }, { threads: 2 });
    const back = decodeRleBatchSync(rles, { threads: 2 });
    expect(back.count).toBe(n);
    expect(Array.from(back.data)).toEqual(Array.from(data, (v) => (v ? 1 : 0)));
  });

  it('merges and computes IoU like the pixel reference (crowd divides by the detection area)', async () => {
    const h = 13, w = 17;
    const ms = [randomMask(h, w, 1, 0.4), randomMask(h, w, 2, 0.4), randomMask(h, w, 3, 0.2)];
    const rles = ms.map((m) => encodeRleSync(m));
    const union = mergeRles(rles);
    const inter = mergeRles(rles, { intersect: true, form: 'counts' });
    const U = { data: Uint8Array.from({ length: h * w }, (_, i) => (ms.some((m) => fg(m, i)) ? 1 : 0)), height: h, width: w };
    const I = { data: Uint8Array.from({ length: h * w }, (_, i) => (ms.every((m) => fg(m, i)) ? 1 : 0)), height: h, width: w };
    expect(union.counts).toBe(refString(refEncode(U)));
    expect(inter.counts).toEqual(refEncode(I));
    const crowd = [0, 1, 0];
    const iou = await rleIou(rles, rles, crowd);
    expect(rleIouSync(rles, rles, crowd)).toEqual(iou);
    for (let d = 0; d < 3; d++) for (let g = 0; g < 3; g++) {
      let i = 0, u = 0, a = 0;
      for (let k = 0; k < h * w; k++) {
        const x = fg(ms[d] as Mask, k), y = fg(ms[g] as Mask, k);
        i += x && y ? 1 : 0; u += x || y ? 1 : 0; a += x ? 1 : 0;
      }
      expect(iou[d]?.[g]).toBeCloseTo(i === 0 ? 0 : i / (crowd[g] ? a : u), 15);
    }
  });

  it('rasterises polygons as pycocotools (worked by hand) and reads COCO segmentations', () => {
    // A 4-number entry is a box in pycocotools: [0, 0, 2, 2] -> the 2 x 2 top-left block.
    expect(polygonsToRle([[0, 0, 2, 2]], 4, 4, { form: 'counts' }).counts).toEqual([0, 2, 2, 2, 10]);
    // Triangle (0,0) (3,0) (0,3): pixel centres strictly inside, see test_mask.cc for the trace.
    expect(polygonsToRle([[0, 0, 3, 0, 0, 3]], 4, 4, { form: 'counts' }).counts).toEqual([0, 2, 2, 1, 11]);
    // Two polygons are merged (union).
    const two = polygonsToRle([[0, 0, 2, 0, 2, 2, 0, 2], [2, 2, 4, 2, 4, 4, 2, 4]], 4, 4);
    expect(rleArea(two)).toBe(8);
    expect(segmentationToRle([[0, 0, 2, 0, 2, 2, 0, 2]], 4, 4)).toEqual(polygonsToRle([[0, 0, 2, 0, 2, 2, 0, 2]], 4, 4));
    expect(segmentationToRle({ size: [2, 3], counts: [0, 6] }, 2, 3)).toEqual({ size: [2, 3], counts: '06' });
    expect(segmentationToRle({ size: [2, 3], counts: '06' }, 2, 3)).toEqual({ size: [2, 3], counts: '06' });
  });

  it('agrees with a numpy Fortran-order encoder when numpy is installed', () => {
    const py = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    if (py.status !== 0) return;  // the JS reference above is the oracle everywhere
    const masks = SHAPES.filter(([h, w]) => h * w > 0).map(([h, w], i) => randomMask(h, w, 900 + i, 0.5));
    const script = `
import json, sys, numpy as np
out = []
for m in json.load(sys.stdin):
    a = (np.array(m["data"], np.uint8).reshape(m["h"], m["w"]) != 0).astype(np.uint8)
    f = a.ravel(order="F")
    change = np.flatnonzero(np.diff(np.concatenate([[0], f]))).tolist()
    pos = change + [f.size]
    counts = [pos[0]] + [pos[i] - pos[i - 1] for i in range(1, len(pos))]
    out.append(counts)
print(json.dumps(out))`;
    const r = spawnSync('/usr/bin/python3', ['-c', script], {
      input: JSON.stringify(masks.map((m) => ({ data: Array.from(m.data), h: m.height, w: m.width }))),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const want = JSON.parse(r.stdout) as number[][];
    masks.forEach((m, i) => expect(encodeRleSync(m, { form: 'counts' }).counts).toEqual(want[i]));
  });
});

// --- Bad input ------------------------------------------------------------------------

describe('mask and RLE errors', () => {
  it('TypeScript wrappers', async () => {
    await expectCode(() => maskArea({ data: new Float32Array(4) as never, height: 2, width: 2 }), 'E_DTYPE');
    await expectCode(() => maskArea({ data: new Uint8ClampedArray(4) as never, height: 2, width: 2 }), 'E_DTYPE');
    await expectCode(() => maskArea({ data: new Uint8Array(5), height: 2, width: 2 }), 'E_SHAPE');
    await expectCode(() => maskArea({ data: new Uint8Array(4), height: -2, width: -2 }), 'E_RANGE');
    await expectCode(() => maskArea({ data: new Uint8Array(4), height: 2.5, width: 2 }), 'E_RANGE');
    await expectCode(() => maskArea(null as never), 'E_TYPE');
    await expectCode(() => maskArea({ data: new Uint8Array(0), height: 70000, width: 70000 }), 'E_LIMIT');
    await expectCode(() => cornerBackgroundSync({ data: new Uint8Array(8), height: 2, width: 2, channels: 2 as never }), 'E_SHAPE');
    await expectCode(() => cornerBackgroundSync({ data: new Uint8Array(12), height: 2, width: 2, channels: 3 }, { tolerance: 300 }), 'E_RANGE');
    await expectCode(fillHoles(parse(['#']), { connectivity: 6 as never }), 'E_RANGE');
    await expectCode(postProcessMask(parse(['#']), { minFraction: 2 }), 'E_RANGE');
    await expectCode(postProcessMask(parse(['#']), { rle: 'bytes' as never }), 'E_RANGE');
    await expectCode(() => maskIou(parse(['#']), parse(['##'])), 'E_SHAPE');
    await expectCode(() => cropToMaskSync({ data: new Uint8Array(12), height: 2, width: 2, channels: 3 }, parse(['##'])), 'E_SHAPE');
    await expectCode(() => decodeRleSync({ size: [2, 3], counts: '5' }), 'E_FORMAT', /sum to 5/);
    await expectCode(decodeRle({ size: [2, 3], counts: '0p' }), 'E_FORMAT', /byte 1/);
    await expectCode(decodeRle({ size: [2, 3], counts: [1, 2] }), 'E_FORMAT');
    await expectCode(() => decodeRleSync({ size: [2, 3], counts: [1, -2] }), 'E_RANGE');
    await expectCode(() => decodeRleSync({ size: 6 as never, counts: '6' }), 'E_TYPE');
    await expectCode(() => rleArea({ size: [2, 3], counts: 6 as never }), 'E_TYPE');
    await expectCode(() => mergeRles([{ size: [2, 3], counts: '6' }, { size: [3, 2], counts: '6' }]), 'E_SHAPE');
    await expectCode(() => mergeRles([]), 'E_SHAPE');
    await expectCode(() => polygonsToRle([[0, 0, 1]], 4, 4), 'E_SHAPE');
    await expectCode(() => polygonsToRle([[0, 0, 1, 0, 1, NaN]], 4, 4), 'E_RANGE');
    await expectCode(() => polygonsToRle([[0, 0, 2, 2], [0, 0, 1, 0, 1, 1]], 4, 4), 'E_SHAPE');
    await expectCode(rleIou([{ size: [2, 3], counts: '6' }], [{ size: [2, 3], counts: '6' }], [1, 0]), 'E_SHAPE');
  });

  it('the addon checks again', async () => {
    const a = native();
    await expectCode(() => a.maskPostProcessSync(new Float32Array(4) as never, 1, 2, 2), 'E_DTYPE');
    await expectCode(() => a.maskPostProcessSync(new Uint8Array(5), 1, 2, 2), 'E_SHAPE');
    await expectCode(() => a.maskPostProcessSync(new Uint8Array(4), 1, 2, 2, { connectivity: 6 }), 'E_RANGE');
    await expectCode(() => a.maskFillHolesSync(new Uint8Array(4), 1, 2, 2, { connectivity: 5 }), 'E_RANGE');
    await expectCode(() => a.rleEncodeSync(new Uint8Array(4), 2, 2, 2), 'E_SHAPE');
    await expectCode(() => a.maskCornerBackgroundSync(new Uint8Array(8), 2, 2, 2), 'E_SHAPE');
    await expectCode(() => a.maskCornerBackgroundSync(new Uint8Array(0), 0, 0, 3), 'E_SHAPE');
    await expectCode(a.rleDecode(['0p'], 1, 1), 'E_FORMAT');
    await expectCode(a.rleDecode([new Uint32Array([0, 2])], 1, 1), 'E_FORMAT');
    await expectCode(() => a.rleDecodeSync([5 as never], 1, 1), 'E_TYPE');
    await expectCode(() => a.rleFromString('P', 1, 1), 'E_FORMAT', /ends inside/);
    await expectCode(() => a.rleFromString('PPPPPPP0', 1, 1), 'E_FORMAT');
    await expectCode(() => a.rleMerge([], 1, 1, false), 'E_SHAPE');
    await expectCode(() => a.rleFromPolygons([new Float64Array([0, 0, 1, 0, 1])], 4, 4), 'E_SHAPE');
    await expectCode(() => a.maskCropSync(new Uint8Array(12), 2, 2, 3, new Uint8Array(4), new Float64Array([0, 0, 3, 1])), 'E_RANGE');
    await expectCode(() => a.rleIouSync([new Uint32Array([4])], [new Uint32Array([4])], 2, 2, new Uint8Array(3)), 'E_SHAPE');
  });
});
