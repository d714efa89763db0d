import { writeFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { displayName, parseCoco, parseCocoBuffer, readCoco, writeCoco } from '../ts/io/coco.js';
import { categoryPriors, frequencyGroup, sizePriorTable } from '../ts/plan/priors.js';
import { expectCode, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-coco-');

function dataset() {
  return {
    info: { year: 2026 },
    images: [
      { id: 1, file_name: 'a.jpg', width: 100, height: 50 },
      { id: 2, file_name: 'b.jpg', width: 200, height: 200, neg_category_ids: [3] },
    ],
    annotations: [
      { id: 10, image_id: 1, category_id: 1, bbox: [0, 0, 10, 20], area: 150, iscrowd: 0, segmentation: [[0, 0, 10, 0, 10, 20]] },
      { id: 11, image_id: 2, category_id: 1, bbox: [5, 5, 40, 10], area: 400, iscrowd: 0 },
      { id: 12, image_id: 2, category_id: 2, bbox: [0, 0, 200, 200], area: 40000, iscrowd: 1, segmentation: { size: [200, 200], counts: [0, 40000] } },
      { id: 13, image_id: 9, category_id: 1, bbox: [0, 0, 1, 1], area: 1, iscrowd: 0 },
      { id: 14, image_id: 1, category_id: 7, bbox: [0, 0, 1, 1], area: 1, iscrowd: 0 },
      { id: 15, image_id: 1, category_id: 1, bbox: [0, 0, -1, 1], area: 1, iscrowd: 0 },
      { id: 16, image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], area: 1, iscrowd: 0, segmentation: { size: [10, 10], counts: 'PP' } },
      { id: 17, image_id: 1, category_id: 1, bbox: [0, 0, 1, 1], area: 1, iscrowd: 'yes' },
      { id: 18, image_id: 1, category_id: 1, bbox: [0, 0, 1e308, 1], area: 1e308, iscrowd: 0 },
    ],
    categories: [
      { id: 1, name: 'traffic_light', supercategory: 'x', frequency: 'f' },
      { id: 2, name: 'bow_(weapon)' },
    ],
  };
}

describe('COCO reader', () => {
  it('skips and records each unusable annotation, keeps the rest and every unknown field', () => {
    const c = parseCoco(dataset(), 'd.json');
    expect(c.dataset.annotations.map((a) => a.id)).toEqual([10, 11, 12]);
    expect(c.problems.map((p) => [p.where, p.kind])).toEqual([
      ['annotations[3]', 'dangling-image'],
      ['annotations[4]', 'dangling-category'],
      ['annotations[5]', 'bad-bbox'],
      ['annotations[6]', 'bad-segmentation'],
      ['annotations[7]', 'bad-iscrowd'],
      ['annotations[8]', 'bad-bbox'],
    ]);
    expect(c.problems[5]!.message).toContain('far outside its 100 x 50 image');
    expect(c.problems[4]!.message).toContain('"yes"');
    const d = dataset();
    delete (d.annotations[0] as { iscrowd?: number }).iscrowd;
    expect(parseCoco(d, 'd.json').dataset.annotations[0]!.iscrowd).toBe(0); // absent = 0
    expect(c.problems[3]!.message).toContain('[10, 10]');
    expect(c.annotationsByImage.get(2)!.map((a) => a.id)).toEqual([11, 12]);
    expect(c.imageById.get(2)!.neg_category_ids).toEqual([3]);
    expect(c.dataset.info).toEqual({ year: 2026 });
    expect(c.categoryById.get(1)!.frequency).toBe('f');
  });

  it('strict mode, duplicates and structural errors fail with E_FORMAT naming the place', async () => {
    await expectCode(() => parseCoco(dataset(), 'd.json', { strict: true }), 'E_FORMAT', /annotations\[3\].*image 9/);
    const dup = dataset();
    dup.images.push({ id: 1, file_name: 'c.jpg', width: 1, height: 1 });
    await expectCode(() => parseCoco(dup, 'd.json'), 'E_FORMAT', /images\[2\] repeats image id 1/);
    await expectCode(() => parseCoco('{"images": 3}', 'x.json'), 'E_FORMAT', /"images" must be an array/);
    await expectCode(() => parseCoco('{not json', 'x.json'), 'E_FORMAT', /not valid JSON/);
    await expectCode(readCoco(tmp.fresh('missing.json')), 'E_IO', /missing\.json/);
  });

  it('round-trips through the atomic writer', async () => {
    const path = tmp.fresh('out.json');
    const c = parseCoco(dataset(), 'd.json');
    await writeCoco(path, c.dataset);
    const back = await readCoco(path);
    expect(back.dataset).toEqual(c.dataset);
    expect(back.problems).toEqual([]);
    await writeFile(path, JSON.stringify({ images: [], categories: [] }));
    expect((await readCoco(path)).dataset.annotations).toEqual([]);
  });

  it('the chunked buffer parser reads what JSON.parse reads, tricky strings and spacing included', () => {
    const d = dataset() as Record<string, unknown>;
    d.info = { note: 'quotes \\" and brackets ]}[{ and , commas', unicode: 'caf\u00e9 \u{1F600}', nested: [[1, [2]], { a: null }], t: true, n: -1.5e-3 };
    (d.categories as Array<Record<string, unknown>>)[0]!.synonyms = ['a"b', 'c\\d', ''];
    for (const text of [JSON.stringify(d), JSON.stringify(d, null, 2), JSON.stringify(d, null, '\t').replace(/\n/g, '\r\n')]) {
      const a = parseCocoBuffer(new TextEncoder().encode(text), 'd.json');
      const b = parseCoco(text, 'd.json');
      expect(a.dataset).toEqual(b.dataset);
      expect(a.problems).toEqual(b.problems);
    }
    const empty = parseCocoBuffer(new TextEncoder().encode(' { "images" : [ ] , "categories":[],"annotations":[]} '), 'e.json');
    expect(empty.dataset.images).toEqual([]);
  });

  it('the chunked parser names the byte offset of malformed JSON', async () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    await expectCode(() => parseCocoBuffer(enc('{"images": [{"id": 1,}], "categories": []}'), 'x.json'), 'E_FORMAT', /x\.json is not valid JSON: .* at byte 12/);
    await expectCode(() => parseCocoBuffer(enc('{"images": [], "categories": [] '), 'x.json'), 'E_FORMAT', /not valid JSON/);
    await expectCode(() => parseCocoBuffer(enc('{"images": [], "categories": []} x'), 'x.json'), 'E_FORMAT', /trailing data/);
    await expectCode(() => parseCocoBuffer(enc('{"images": ["unterminated], "categories": []}'), 'x.json'), 'E_FORMAT', /unterminated string|not valid JSON/);
    await expectCode(() => parseCocoBuffer(enc('[1, 2]'), 'x.json'), 'E_FORMAT', /top level/);
  });

  it('readCoco streams the file through windows of any size and reads what the whole-buffer parser reads, errors at the same byte', async () => {
    const d = dataset() as Record<string, unknown>;
    d.info = { note: 'quotes \\" and brackets ]}[{ and , commas', unicode: 'caf\u00e9 \u{1F600}', nested: [[1, [2]], { a: null }], t: true, n: -1.5e-3 };
    const texts = [JSON.stringify(d), '\ufeff' + JSON.stringify(d, null, 2), JSON.stringify(d, null, '\t').replace(/\n/g, '\r\n')];
    for (const [k, text] of texts.entries()) {
      const path = `${tmp.dir()}/stream-${k}.json`;
      await writeFile(path, text);
      const want = parseCocoBuffer(new TextEncoder().encode(text.replace(/^\ufeff/, '')), path);
      for (const chunkBytes of [1, 2, 7, 64, 1 << 23]) {
        const got = await readCoco(path, { chunkBytes });
        expect(got.dataset, `text ${k}, chunks of ${chunkBytes}`).toEqual(want.dataset);
        expect(got.problems).toEqual(want.problems);
      }
    }
    for (const bad of ['{"images": [{"id": 1,}], "categories": []}', '{"images": [], "categories": [] ', '{"images": [], "categories": []} x', '{"images": ["unterminated], "categories": []}', '[1, 2]', '', '{"images": [1', '{"images": [], "categories": [], "n": 12']) {
      const path = `${tmp.dir()}/bad.json`;
      await writeFile(path, bad);
      let want = '';
      try {
        parseCocoBuffer(new TextEncoder().encode(bad), path);
      } catch (e) {
        want = (e as Error).message;
      }
      expect(want, bad).not.toBe('');
      for (const chunkBytes of [1, 3, 1 << 23]) {
        await expectCode(readCoco(path, { chunkBytes }), 'E_FORMAT');
        const got = await readCoco(path, { chunkBytes }).then(() => '', (e: Error) => e.message);
        expect(got, `${bad} in chunks of ${chunkBytes}`).toBe(want);
      }
    }
  });

  it('turns LVIS names into prompt words', () => {
    expect(displayName({ name: 'traffic_light' })).toBe('traffic light');
    expect(displayName({ name: 'bow_(weapon)' })).toBe('bow');
  });
});

describe('priors', () => {
  it('frequency groups at the LVIS boundaries', () => {
    expect([0, 10, 11, 100, 101].map((n) => frequencyGroup(n))).toEqual(['r', 'r', 'c', 'c', 'f']);
  });

  it('size prior is the population mean/std of sqrt(box area / image area), crowd left out', () => {
    const p = categoryPriors(parseCoco(dataset(), 'd.json'));
    const s1 = Math.sqrt(200 / 5000);
    const s2 = Math.sqrt(400 / 40000);
    const mean = (s1 + s2) / 2;
    const std = Math.sqrt(((s1 - mean) ** 2 + (s2 - mean) ** 2) / 2);
    expect(p[0]).toMatchObject({ id: 1, imageCount: 2, instanceCount: 2, frequency: 'r', lvisFrequency: 'f' });
    // The 1e308 box (annotation 18) is a recorded problem: it does not turn the class's prior into null.
    expect(p[0]!.size!.mean).toBeCloseTo(mean, 14);
    expect(p[0]!.size!.std).toBeCloseTo(std, 14);
    expect(p[1]).toMatchObject({ id: 2, imageCount: 1, instanceCount: 1, size: null });
    expect(sizePriorTable(p)).toEqual({ '1': [p[0]!.size!.mean, p[0]!.size!.std] });
  });
});
