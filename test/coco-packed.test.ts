/**
 * readCoco / parseCoco with { polygons: 'packed' }: every coordinate is the double the default (arrays) reader gives
 * (Object.is), the writer writes the same bytes, consumers give the same results, bad input the same errors.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { PackedPolygons, packPolygons, parseCoco, parseCocoBuffer, polygonFloat64Rings, polygonRings, readCoco, writeCoco, type CocoIndex } from '../ts/io/coco.js';
import { PolygonPool } from '../ts/io/polygons.js';
import { polygonsToRle, segmentationToRle } from '../ts/kernels/mask.js';
import { paste } from '../ts/augment/paste.js';
import { expectCode, tempFolder } from './helpers.js';
import { buildPasteFixture, fixtureOptions } from './paste-fixture.js';

const tmp = tempFolder('genaug-coco-packed-');

// Polygon rings as they stand in the file (the text itself: -0, 1E2, 1.50 and 0.30000000000000004 are kept as
// written), with what a packed reader must store them as: fixed point with these powers of ten per ring, or float64.
const RINGS: Array<{ text: string; storage: 'fixed' | 'float64'; scales?: number[] }> = [
  { text: '[[123.45, 7, -12.5, 1.5, 0.05, 99.99]]', storage: 'fixed', scales: [2] },
  { text: '[[1, 2, 3, 4, 5, 6], [1.000001, 0, 2, 0, 2, 2]]', storage: 'fixed', scales: [0, 6] },
  { text: '[[2147483647, 0, -2147483647, 1, 3, 4]]', storage: 'fixed', scales: [0] },
  { text: '[[21474836.47, 0, 1, 1, 2, 2]]', storage: 'fixed', scales: [2] },
  { text: '[[1E2, 1.50, 3.0, 4, 5, 6.25]]', storage: 'fixed', scales: [2] },
  { text: '[[-0, 1, 2, 3, 4, 5]]', storage: 'float64' },
  { text: '[[1e-7, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[0.30000000000000004, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[1e20, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[2147483648, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[21474836.48, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[0.1234567, 0, 1, 1, 2, 2]]', storage: 'float64' },
  { text: '[[-3.25, 10.5, 30, 10, 30, 40.75], [5e-324, 0, 1, 1, 2, 2]]', storage: 'float64' },
];

/** An awkward file: the rings above, an empty list, RLE, none, bad polygons, iscrowd absent / in a string / escaped. */
function awkwardText(): string {
  const ann = (id: number, seg: string | undefined, extra = '') =>
    `{"id": ${id}, "image_id": 1, "category_id": 1, "bbox": [1.5, 2, 10, 10], "area": 12.25${seg === undefined ? '' : `, "segmentation": ${seg}`}${extra}}`;
  const anns = RINGS.map((r, i) => ann(100 + i, r.text, i % 2 ? ', "iscrowd": 0' : ''));
  anns.push(ann(200, '[]'), ann(201, '{"size": [48, 64], "counts": [0, 3072]}'), ann(202, undefined));
  anns.push(ann(203, '[[1, 2, 3]]'), ann(204, '[[1, "a", 3, 4, 5, 6]]'), ann(205, '[[1, 2, 3, 4, 5, 6, 7]]'));
  anns.push(ann(206, '[[4.5, 4, 28, 4, 28, 24]]', ', "note": "iscrowd"'), ann(207, '[[4, 4, 28, 4, 28, 24]]', ', "iscr\\u006fwd": 1'));
  return `{"info": {"v": 1}, "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}], "categories": [{"id": 1, "name": "cat"}],\n"annotations": [\n${anns.join(',\n')}\n]}`;
}

function expectSameCoordinates(packed: CocoIndex, arrays: CocoIndex): number {
  let checked = 0;
  expect(packed.dataset.annotations.map((a) => a.id)).toEqual(arrays.dataset.annotations.map((a) => a.id));
  packed.dataset.annotations.forEach((p, k) => {
    const a = arrays.dataset.annotations[k]!;
    const want = a.segmentation;
    if (Array.isArray(want) && want.length > 0) {
      const seg = p.segmentation as PackedPolygons;
      expect(seg).toBeInstanceOf(PackedPolygons);
      expect(seg.ringCount).toBe(want.length);
      const flat = seg.flat();
      let o = 0;
      want.forEach((ring, i) => {
        expect(seg.ringLength(i)).toBe(ring.length);
        const got = seg.ring(i);
        const f64 = seg.ringFloat64(i);
        ring.forEach((v, j) => {
          for (const x of [got[j], f64[j], flat[o + j], seg.toArrays()[i]![j], polygonRings(seg)![i]![j], polygonFloat64Rings(seg)![i]![j]]) {
            if (!Object.is(x, v)) throw new Error(`annotation ${a.id} ring ${i}[${j}]: ${String(x)} is not ${String(v)}`);
          }
          checked++;
        });
        o += ring.length;
      });
      expect(JSON.stringify(seg)).toBe(JSON.stringify(want));
    } else expect(p.segmentation).toEqual(want);
  });
  return checked;
}

describe('packed polygons', () => {
  it('keep every double of an awkward file exactly, as fixed point where that is exact and float64 where not', async () => {
    const text = awkwardText();
    const path = join(tmp.dir(), 'awkward.json');
    await writeFile(path, text);
    const arrays = await readCoco(path);
    // The independent oracle for the values: JSON.parse of the whole text.
    const oracle = (JSON.parse(text) as { annotations: Array<{ id: number; segmentation?: unknown }> }).annotations;
    for (const a of arrays.dataset.annotations) expect(a.segmentation).toEqual(oracle.find((o) => o.id === a.id)!.segmentation);
    expect(Object.is((arrays.dataset.annotations[5]!.segmentation as number[][])[0]![0], -0)).toBe(true);

    const reads = [
      await readCoco(path, { polygons: 'packed' }),
      await readCoco(path, { polygons: 'packed', chunkBytes: 7 }),
      parseCocoBuffer(new TextEncoder().encode(text), path, { polygons: 'packed' }),
      parseCoco(text, path, { polygons: 'packed' }),
      parseCoco(JSON.parse(text), path, { polygons: 'packed' }),
    ];
    for (const packed of reads) {
      expect(expectSameCoordinates(packed, arrays)).toBe(RINGS.reduce((s, r) => s + (JSON.parse(r.text) as number[][]).flat().length, 0) + 6 + 6);
      expect(packed.problems).toEqual(arrays.problems);
      expect(packed.problems.map((p) => p.where)).toEqual(['annotations[16]', 'annotations[17]', 'annotations[18]']);
      RINGS.forEach((r, i) => {
        const seg = packed.dataset.annotations[i]!.segmentation as PackedPolygons;
        expect(seg.storage, r.text).toBe(r.storage);
        expect(Array.from({ length: seg.ringCount }, (_, k) => seg.ringScale(k)), r.text).toEqual(r.scales ?? Array(seg.ringCount).fill(-1));
      });
      // The same dataset, key order included (JSON.stringify follows it), as the plain JSON.parse reader.
      expect(JSON.stringify(packed.dataset)).toBe(JSON.stringify(parseCoco(text, path).dataset));
      const byId = (id: number) => packed.dataset.annotations.find((a) => a.id === id)!;
      expect([byId(100).iscrowd, byId(206).iscrowd, byId(207).iscrowd]).toEqual([0, 0, 1]);
      expect(byId(200).segmentation).toEqual([]);
    }
  });

  it('writeCoco writes a packed dataset byte for byte as the arrays one, and reads back the same', async () => {
    const path = join(tmp.dir(), 'awkward-w.json');
    await writeFile(path, awkwardText());
    const a = join(tmp.dir(), 'w-arrays.json');
    const p = join(tmp.dir(), 'w-packed.json');
    await writeCoco(a, (await readCoco(path)).dataset);
    await writeCoco(p, (await readCoco(path, { polygons: 'packed' })).dataset);
    const bytes = await readFile(a);
    expect((await readFile(p)).equals(bytes)).toBe(true);
    const again = join(tmp.dir(), 'w-again.json');
    await writeCoco(again, (await readCoco(p, { polygons: 'packed' })).dataset);
    expect((await readFile(again)).equals(bytes)).toBe(true);
    // A packed dataset given to the default parser comes back as arrays.
    const back = parseCoco((await readCoco(p, { polygons: 'packed' })).dataset, 'x');
    expect(Array.isArray(back.dataset.annotations[0]!.segmentation)).toBe(true);
    expect(JSON.stringify(back.dataset)).toBe(JSON.stringify((await readCoco(a)).dataset));
  });

  it('rasterise to the same masks (or fail the same way) as the arrays', async () => {
    const path = join(tmp.dir(), 'awkward-r.json');
    await writeFile(path, awkwardText());
    const arrays = await readCoco(path);
    const packed = await readCoco(path, { polygons: 'packed' });
    const outcome = (seg: unknown) => {
      try {
        return segmentationToRle(seg, 48, 64);
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    const masks: number[] = [];
    const outOfRange: number[] = [];
    arrays.dataset.annotations.forEach((a, k) => {
      const want = outcome(a.segmentation);
      if (typeof want === 'object') masks.push(a.id);
      if (want === 'E_RANGE') outOfRange.push(a.id);
      expect(outcome(packed.dataset.annotations[k]!.segmentation), `annotation ${a.id}`).toEqual(want);
    });
    // The rasteriser takes coordinates within +-2^24: the int32-range rings are refused the same way in both forms.
    expect(outOfRange).toEqual([102, 103, 108, 109, 110]);
    expect(masks).toEqual([100, 101, 104, 105, 106, 107, 111, 112, 201, 206, 207]);
    // polygonsToRle takes the packed form too, in either RLE form.
    for (const id of masks.filter((m) => m !== 201)) {
      const k = arrays.dataset.annotations.findIndex((a) => a.id === id);
      const seg = packed.dataset.annotations[k]!.segmentation as PackedPolygons;
      const want = arrays.dataset.annotations[k]!.segmentation as number[][];
      expect(polygonsToRle(seg, 48, 64, { form: 'counts' })).toEqual(polygonsToRle(want, 48, 64, { form: 'counts' }));
      expect(polygonsToRle(seg, 48, 64)).toEqual(polygonsToRle(want, 48, 64));
    }
  });

  it('bad input fails with the same codes and messages as the arrays reader', async () => {
    const text = awkwardText();
    for (const polygons of ['arrays', 'packed'] as const) {
      await expectCode(() => parseCoco(text, 'x.json', { strict: true, polygons }), 'E_FORMAT', /annotations\[16\].*neither polygons/);
      await expectCode(readCoco(join(tmp.dir(), 'absent.json'), { polygons }), 'E_IO');
    }
    await expectCode(readCoco(join(tmp.dir(), 'absent.json'), { polygons: 'flat' as never }), 'E_ARGUMENT', /'arrays' or 'packed'/);
    await expectCode(() => parseCoco(text, 'x.json', { polygons: 'flat' as never }), 'E_ARGUMENT');
    const badElements = ['{"id": 1, "segmentation": [[1, 2, 3, 4, 5, 6],]}', '{"id": 1,, "segmentation": [[1, 2, 3, 4, 5, 6]]}', '{"id": 1 "segmentation": [[1, 2, 3, 4, 5, 6]]}'];
    const bads = ['{"images": [{"id": 1,}], "categories": []}', '{"images": [], "categories": [] ', '{"images": [], "categories": []} x', '[1, 2]', '',
      ...badElements.map((el) => `{"images": [], "categories": [], "annotations": [${el}]}`)];
    for (const [k, bad] of bads.entries()) {
      const path = join(tmp.dir(), `bad-${k}.json`);
      await writeFile(path, bad);
      const msg = (p: Promise<unknown>) => p.then(() => 'no error', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
      const want = await msg(readCoco(path));
      expect(want, bad).toMatch(/^E_FORMAT: /);
      // A malformed annotation is reported with JSON.parse's own words for its text (what the reader said before packing).
      const el = badElements.find((e) => bad.includes(e));
      if (el) expect(want).toContain(((): string => { try { JSON.parse(el); return ''; } catch (e) { return (e as Error).message; } })());
      for (const chunkBytes of [1, 1 << 20]) expect(await msg(readCoco(path, { polygons: 'packed', chunkBytes })), bad).toBe(want);
    }
  });

  it('the pool spreads segmentations over chunks (and gives a large one its own) without mixing them up', () => {
    const pool = new PolygonPool(4, 64);
    const rings: number[][][] = [];
    let s = 1;
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
    for (let k = 0; k < 400; k++) {
      const nRings = 1 + (k % 3);
      rings.push(
        Array.from({ length: nRings }, (_, r) =>
          Array.from({ length: k === 77 && r === 0 ? 200 : 6 + 2 * ((k + r) % 9) }, () => {
            const v = rnd() * 1000 - 500;
            return k % 5 === 0 ? v : Math.round(v * 10 ** (k % 4)) / 10 ** (k % 4) + 0; // + 0: no -0
          }),
        ),
      );
    }
    const packed = rings.map((r) => pool.pack(r));
    packed.forEach((p, k) => {
      expect(p.storage).toBe(k % 5 === 0 ? 'float64' : 'fixed');
      const back = p.toArrays();
      rings[k]!.forEach((ring, i) => ring.forEach((v, j) => expect(Object.is(back[i]![j], v)).toBe(true)));
    });
    expect(() => packed[0]!.ring(3)).toThrow(/out of range/);
    // packPolygons: one on its own, checked input.
    expect(packPolygons([[0.5, 1, 2, 3]]).toArrays()).toEqual([[0.5, 1, 2, 3]]);
    expect(() => packPolygons([[1, Number.NaN]])).toThrow(/finite numbers/);
    expect(() => packPolygons([[1, 2], 'x' as never])).toThrow(/polygons\[1\]/);
  });

  it('paste gives the same output files from a packed and an arrays reading of the real dataset', async () => {
    const fx = await buildPasteFixture(join(tmp.dir(), 'fx'));
    // Awkward coordinates in the fixture's polygons: 2 decimals, one float64 fallback.
    const coco = JSON.parse(await readFile(fx.coco, 'utf8')) as { annotations: Array<{ id: number; segmentation?: unknown }> };
    coco.annotations.find((a) => a.id === 1)!.segmentation = [[4.25, 4.5, 27.75, 4.01, 28, 23.99, 4.5, 24]];
    coco.annotations.find((a) => a.id === 2)!.segmentation = [[30, 10.3, 0.1 + 0.2 + 59.7, 10, 30.000000001, 40]];
    await writeFile(fx.coco, JSON.stringify(coco));
    const outs: Buffer[][] = [];
    for (const polygons of ['arrays', 'packed'] as const) {
      const out = join(tmp.dir(), `paste-${polygons}`);
      await paste(fixtureOptions(fx, out, { coco: await readCoco(fx.coco, { polygons }), copies: 2 }));
      const files = ['annotations.json', ...(await import('node:fs/promises').then((f) => f.readdir(join(out, 'images')))).sort().map((f) => join('images', f))];
      outs.push(await Promise.all(files.map((f) => readFile(join(out, f)))));
    }
    expect(outs[1]!.length).toBe(outs[0]!.length);
    expect(outs[0]!.length).toBeGreaterThan(2);
    outs[0]!.forEach((b, i) => expect(outs[1]![i]!.equals(b)).toBe(true));
  });
});
