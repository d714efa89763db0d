import { readFile, stat, writeFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { buildProgram } from '../ts/cli/main.js';
import { buildPriors, objectSets, realLayout, repeatFactors } from '../ts/plan/priors.js';
import { fixtureCoco, fixtureDataset } from './plan-fixture.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-priors-');

describe('priors: repeat factors, object sets, real layouts', () => {
  it('repeat factors follow r_c = max(1, sqrt(t / f_c)) and an image takes the max of its classes', () => {
    // 12 images: person in 9 (f 3/4), dog in 2 (f 1/6), frisbee in 1 (f 1/12), crane in 2, teddy_bear in none.
    const rf = repeatFactors(fixtureCoco(), 0.5);
    expect(rf.category.get(1)).toBe(1); // sqrt(0.5 / 0.75) < 1
    expect(rf.category.get(2)).toBeCloseTo(Math.sqrt(3), 12);
    expect(rf.category.get(3)).toBeCloseTo(Math.sqrt(6), 12);
    expect(rf.category.get(5)).toBe(1);
    expect(rf.image.get(1)).toBeCloseTo(Math.sqrt(3), 12);
    expect(rf.image.get(3)).toBeCloseTo(Math.sqrt(6), 12);
    expect(rf.image.get(4)).toBe(1);
    expect(rf.image.get(9)).toBe(1); // no annotations
    // LVIS's t = 0.001 leaves every class of this small set at 1.
    expect([...repeatFactors(fixtureCoco()).category.values()].every((r) => r === 1)).toBe(true);
  });

  it('counts object multisets per image, weights them by repeat factor and stores normalised layouts', () => {
    const sets = objectSets(fixtureCoco(), { rfsThreshold: 0.5 });
    expect(sets.map((s) => [s.objects, s.count])).toEqual([
      [['person'], 5],
      [['crane'], 2],
      [['dog', 'dog', 'person'], 1],
      [['dog', 'person'], 1],
      [['frisbee', 'person'], 1],
    ]);
    expect(sets[0]!.weight).toBe(5);
    expect(sets[1]!.weight).toBeCloseTo(2 * Math.sqrt(3), 12);
    expect(sets[4]!.weight).toBeCloseTo(Math.sqrt(6), 12);
    // Image 1 (200×100): person [20,10,40,50] -> [0.1, 0.1, 0.2, 0.5]; dog [150,50,60,60] runs off the right edge -> clipped.
    const l = sets[2]!.layouts[0]!;
    expect(l.image_id).toBe(1);
    expect(l.objects[0]).toEqual({ name: 'person', box: [0.1, 0.1, 0.2, 0.5] });
    expect(l.objects[1]!.name).toBe('dog');
    expect(l.objects[1]!.box.map((v) => +v.toFixed(12))).toEqual([0.75, 0.5, 0.25, 0.5]);
    // The crowd-only image 10 and the empty image 9 hold no set.
    expect(sets.flatMap((s) => s.layouts.map((x) => x.image_id))).not.toContain(10);
    expect(sets.reduce((n, s) => n + s.count, 0)).toBe(10);
  });

  it('caps the object list at the largest boxes and the stored layouts per set', () => {
    // Image 1 keeps person (2000 px²) and the big dog (3600), drops the 10×10 dog: it joins [dog, person].
    expect(realLayout(fixtureCoco(), 1, 2).objects.map((o) => o.name)).toEqual(['person', 'dog']);
    const sets = objectSets(fixtureCoco(), { maxObjects: 2, maxLayouts: 1 });
    const dp = sets.find((s) => s.objects.join() === 'dog,person')!;
    expect(dp.count).toBe(2);
    expect(dp.layouts.map((x) => x.image_id)).toEqual([1]);
    expect(objectSets(fixtureCoco(), { minObjects: 2 }).every((s) => s.objects.length >= 2)).toBe(true);
  });

  it('genaug priors writes priors.json and the area_mean_std2 table', async () => {
    const coco = tmp.fresh('train.json');
    await writeFile(coco, JSON.stringify(fixtureDataset()));
    const out = tmp.fresh('priors.json');
    const table = tmp.fresh('area_mean_std2.json');
    const printed: string[] = [];
    await buildProgram({ print: (l) => printed.push(l) }).parseAsync(['node', 'genaug', 'priors', '--coco', coco, '--out', out, '--size-table', table, '--rfs-threshold', '0.5']);
    const priors = JSON.parse(await readFile(out, 'utf8'));
    expect({ ...priors, source: 'fixture.json' }).toEqual(JSON.parse(JSON.stringify(buildPriors(fixtureCoco(), { rfsThreshold: 0.5 }))));
    expect(priors).toMatchObject({ version: 1, source: coco, images: 12, annotations: 15 });
    const dog = priors.categories.find((c: { name: string }) => c.name === 'dog');
    expect(dog).toMatchObject({ imageCount: 2, instanceCount: 3, frequency: 'r', def: 'a domestic dog' });
    expect(dog.repeatFactor).toBeCloseTo(Math.sqrt(3), 12);
    expect(priors.categories.find((c: { name: string }) => c.name === 'person')).toMatchObject({ imageCount: 9, synset: 'person.n.01' });
    expect(priors.sets).toHaveLength(5);
    // frisbee: one 20×10 box in a 200×100 image: sqrt(200 / 20000) = 0.1, std 0; teddy_bear (no box) is absent.
    const t = JSON.parse(await readFile(table, 'utf8'));
    expect(t['3']).toEqual([0.1, 0]);
    expect(t['5']).toBeUndefined();
    expect(Object.keys(t).sort()).toEqual(['1', '2', '3', '4']);
    expect(printed.join('\n')).toMatch(/5 classes \(r 5, c 0, f 0\), 5 object sets from 12 images/);
  });

  it('genaug priors fails loudly on a COCO file with no categories or no usable annotation, and writes nothing', async () => {
    const run = (coco: string, out: string) => buildProgram({ print: () => undefined }).parseAsync(['node', 'genaug', 'priors', '--coco', coco, '--out', out]);
    const d = fixtureDataset() as { images: unknown[]; annotations: Array<Record<string, unknown>>; categories: unknown[] };
    const noCats = tmp.fresh('nocats.json');
    await writeFile(noCats, JSON.stringify({ images: d.images, annotations: [], categories: [] }));
    const out1 = tmp.fresh('p1.json');
    await expectError(run(noCats, out1), 'E_FORMAT', 'it has no categories');
    await expect(stat(out1)).rejects.toThrow(/ENOENT/);
    // Categories, but only crowd boxes.
    const crowd = tmp.fresh('crowd.json');
    await writeFile(crowd, JSON.stringify({ ...d, annotations: d.annotations.map((a) => ({ ...a, iscrowd: 1 })) }));
    const out2 = tmp.fresh('p2.json');
    await expectError(run(crowd, out2), 'E_FORMAT', 'no image has an annotation that counts (12 images, 15 annotations');
    await expect(stat(out2)).rejects.toThrow(/ENOENT/);
  });
});
