import { readFile, writeFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { buildProgram } from '../ts/cli/main.js';
import type { ImageTextEmbedder, RgbInput } from '../ts/models/types.js';
import { extraCategories, planAmbiguity } from '../ts/plan/ambiguity.js';
import { AnswerCache, DEFAULT_JOB, planClasses, makeJob } from '../ts/plan/core.js';
import { PlanJobSchema, type PlanJob } from '../ts/plan/job.js';
import { plan } from '../ts/plan/plan.js';
import { buildPriors, objectSets } from '../ts/plan/priors.js';
import { planTemplates } from '../ts/plan/prompts.js';
import { CaptionStore } from '../ts/plan/captions.js';
import { datasetSample } from '../ts/plan/domains.js';
import { parseCoco } from '../ts/io/coco.js';
import { boxProblem, drawObjectSets, insideUnit, layoutProblem, objectIds, sceneGraphProblem, templateSceneCaption, untagCaption } from '../ts/plan/scenes.js';
import { packagedWordNet } from '../ts/plan/wordnet.js';
import { fixtureCoco, fixtureDataset } from './plan-fixture.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-plan-');
const wn = packagedWordNet();

async function readPlan(path: string): Promise<PlanJob[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => PlanJobSchema.parse(JSON.parse(l)));
}

async function cocoFile(): Promise<string> {
  const p = tmp.fresh('train.json');
  await writeFile(p, JSON.stringify(fixtureDataset()));
  return p;
}

describe('template strategies', () => {
  it('X-Paste and DiverGen prompts, with the definition from LVIS, the LVIS synset or the first WordNet sense', () => {
    const classes = planClasses(fixtureCoco());
    const x = planTemplates(classes, { style: 'xpaste' }, { negativePrompt: '', candidates: 4, width: 512, height: 512, seed: 0 });
    expect(x.jobs.map((j) => j.prompt)).toEqual([
      'a photo of a single person',
      'a photo of a single dog',
      'a photo of a single frisbee',
      'a photo of a single crane',
      'a photo of a single teddy bear',
    ]);
    expect(x.jobs.map((j) => j.classes[0])).toEqual(['person', 'dog', 'frisbee', 'crane', 'teddy_bear']);
    expect(x.jobs.every((j) => j.candidates === 4 && j.kind === 'txt2img')).toBe(true);
    const d = planTemplates(classes, { style: 'divergen', wordnet: wn }, { negativePrompt: '', candidates: 1, width: 512, height: 512, seed: 0 });
    const by = new Map(d.jobs.map((j) => [j.classes[0], j]));
    expect(by.get('dog')!.prompt).toBe('a photo of a single dog, a domestic dog, in a white background');
    expect(by.get('dog')!.provenance).toMatchObject({ strategy: 'divergen', definition: 'lvis' });
    // person.n.01's gloss in data.noun: 'a human being; "there was too much for one person to do"'.
    expect(by.get('person')!.prompt).toBe('a photo of a single person, a human being, in a white background');
    expect(by.get('person')!.provenance).toMatchObject({ definition: 'wordnet-synset', synset: 'person.n.01' });
    expect(by.get('teddy_bear')!.prompt).toBe(
      "a photo of a single teddy bear, plaything consisting of a child's toy bear (usually plush and stuffed with soft materials), in a white background",
    );
    expect(by.get('teddy_bear')!.provenance).toMatchObject({ definition: 'wordnet-first-sense', synset: 'teddy.n.01' });
    // (NLTK names a synset by its first lemma: "teddy 1 teddy_bear 0" -> teddy.n.01.)
    // The ambiguity the LAR strategy exists for: crane's senses 1-3 are two writers and a constellation (instances);
    // the first concrete sense is the machine (crane.n.04), not the bird.
    expect(by.get('crane')!.prompt).toBe('a photo of a single crane, lifts and moves heavy objects; lifting tackle is suspended from a pivoted boom that rotates around a vertical axis, in a white background');
    expect(by.get('crane')!.provenance).toMatchObject({ definition: 'wordnet-first-sense', synset: 'crane.n.04' });
  });

  it('ids are a hash of the content and strategy; seeds derive from the plan seed and the id', () => {
    const a = makeJob('template', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, {});
    const b = makeJob('template', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, { other: 'provenance' });
    const c = makeJob('divergen', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, {});
    const e = makeJob('template', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, {}, { negativePrompt: '', candidates: 1, width: 512, height: 512, seed: 7 });
    expect(a.id).toMatch(/^template-[0-9a-f]{20}$/);
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id.replace('template', 'divergen'));
    expect(e.id).toBe(a.id);
    expect(e.seed).not.toBe(a.seed);
    expect(a.seed).toBeLessThan(2 ** 31);
    // More candidates: the same job (id and seed), so best-of-N can be extended.
    const more = makeJob('template', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, {}, { ...DEFAULT_JOB, candidates: 5 });
    expect([more.id, more.seed, more.candidates]).toEqual([a.id, a.seed, 5]);
    const wider = makeJob('template', { kind: 'txt2img', classes: ['dog'], prompt: 'a photo of a single dog' }, {}, { ...DEFAULT_JOB, width: 768 });
    expect(wider.id).not.toBe(a.id);
  });
});

describe('layout validation and scene pieces', () => {
  it('rejects boxes that are not strictly inside (0, 1) or have no area', () => {
    expect(boxProblem([0.1, 0.2, 0.3, 0.4])).toBeNull();
    expect(boxProblem([0, 0.2, 0.3, 0.4])).toMatch(/x = 0 is not inside/);
    expect(boxProblem([0.5, 0.2, 0.5, 0.4])).toMatch(/x\+w = 1 is not inside/);
    expect(boxProblem([0.1, 0.7, 0.3, 0.4])).toMatch(/y\+h = 1\.1\d* is not inside/);
    expect(boxProblem([0.1, -0.1, 0.3, 0.4])).toMatch(/y = -0\.1 is not inside/);
    expect(boxProblem([0.1, 0.2, 0, 0.4])).toMatch(/width and height must be > 0/);
    expect(boxProblem([0.1, 0.2, 0.3])).toMatch(/4 finite numbers/);
    expect(boxProblem([0.1, Number.NaN, 0.3, 0.4])).toMatch(/4 finite numbers/);
    expect(insideUnit([0, 0, 1, 1]).map((v) => +v.toFixed(12))).toEqual([0.001, 0.001, 0.998, 0.998]);
    expect(insideUnit([0.2, 0.3, 0.1, 0.1])).toEqual([0.2, 0.3, 0.1, 0.1]);
    const ids = ['dog-1', 'frisbee-1'];
    expect(layoutProblem({ Layout: [{ object: 'dog-1', bbox: [0.1, 0.1, 0.2, 0.2] }, { object: 'frisbee-1', bbox: [0.5, 0.5, 0.2, 0.2] }] }, ids)).toBeNull();
    expect(layoutProblem({ Layout: [{ object: 'dog-1', bbox: [0.1, 0.1, 0.2, 0.2] }] }, ids)).toMatch(/no box for frisbee-1/);
    expect(layoutProblem({ Layout: [{ object: 'dog-1', bbox: [0.1, 0.1, 0.2, 0.2] }, { object: 'dog-1', bbox: [0.1, 0.1, 0.2, 0.2] }] }, ids)).toMatch(/repeats dog-1/);
    expect(layoutProblem({ Layout: [{ object: 'cat-1', bbox: [0.1, 0.1, 0.2, 0.2] }] }, ids)).toMatch(/not one of/);
    expect(layoutProblem({ Layout: [{ object: 'dog-1', bbox: [0.9, 0.1, 0.2, 0.2] }, { object: 'frisbee-1', bbox: [0.5, 0.5, 0.2, 0.2] }] }, ids)).toMatch(/x\+w = 1\.1/);
  });

  it('object ids, caption tags and template captions', () => {
    expect(objectIds(['dog', 'person', 'dog'])).toEqual(['dog-1', 'person-1', 'dog-2']);
    expect(untagCaption('a brown dog(dog-1) leaps for a red frisbee (frisbee-1).')).toBe('a brown dog leaps for a red frisbee.');
    expect(templateSceneCaption(['person', 'dog', 'dog'])).toBe('a photo of a person and two dogs');
    expect(templateSceneCaption(['bus', 'apple', 'bus', 'bus', 'puppy', 'puppy'])).toBe('a photo of three buses, an apple and two puppies');
    const g = {
      attributes: [{ object: 'dog-1', attribute: 'a brown dog' }],
      groups: [['dog-1']],
      layers_of_depth: [{ layer: 'Foreground' as const, groups: [['dog-1']] }],
      relations: [],
      caption: 'a brown dog(dog-1) runs',
    };
    expect(sceneGraphProblem(g, ['dog-1'])).toBeNull();
    expect(sceneGraphProblem({ ...g, caption: 'a brown dog runs' }, ['dog-1'])).toMatch(/tag every object/);
    expect(sceneGraphProblem({ ...g, groups: [['cat-1']] }, ['dog-1'])).toMatch(/unknown object id "cat-1"/);
    expect(sceneGraphProblem({ ...g, attributes: [] }, ['dog-1'])).toMatch(/no entry for dog-1/);
  });

  it('draws object sets in proportion to their repeat-factor weight (or their counts without rebalancing)', () => {
    // Weights with t = 0.5: person 5, crane 2√3, [dog,dog,person] √3, [dog,person] √3, [frisbee,person] √6.
    const sets = objectSets(fixtureCoco(), { rfsThreshold: 0.5 });
    const w = [5, 2 * Math.sqrt(3), Math.sqrt(3), Math.sqrt(3), Math.sqrt(6)];
    const total = w.reduce((a, b) => a + b);
    const n = 40000;
    const tally = (draws: ReturnType<typeof drawObjectSets>) => sets.map((s) => draws.filter((d) => d.set === s).length / n);
    const re = tally(drawObjectSets(sets, n, 3));
    re.forEach((p, i) => expect(Math.abs(p - w[i]! / total)).toBeLessThan(0.01));
    const plain = tally(drawObjectSets(sets, n, 3, false));
    [5, 2, 1, 1, 1].forEach((c, i) => expect(Math.abs(plain[i]! - c / 10)).toBeLessThan(0.01));
    // Same seed, same draws.
    expect(drawObjectSets(sets, 50, 9).map((d) => d.layout?.image_id)).toEqual(drawObjectSets(sets, 50, 9).map((d) => d.layout?.image_id));
  });
});

describe('genaug plan without an LLM', () => {
  it('every template/WordNet strategy runs, lines validate, and the same options give the same bytes', async () => {
    const coco = await cocoFile();
    for (const strategy of ['template', 'divergen', 'llm', 'scene', 'ambiguity'] as const) {
      const out1 = tmp.fresh(`${strategy}.jsonl`);
      const out2 = tmp.fresh(`${strategy}-again.jsonl`);
      const o = { coco, strategy, seed: 5, scenes: 20, perClass: 3, modes: ['divergen', 'context', 'style'] as const };
      const r1 = await plan({ ...o, modes: [...o.modes], out: out1 });
      await plan({ ...o, modes: [...o.modes], out: out2 });
      expect(await readFile(out1, 'utf8')).toBe(await readFile(out2, 'utf8'));
      const jobs = await readPlan(out1);
      expect(jobs.length).toBe(r1.jobs);
      expect(jobs.length).toBeGreaterThan(0);
      expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
      expect(jobs.every((j) => j.provenance.strategy === strategy)).toBe(true);
      if (strategy === 'llm') {
        // Template fallbacks, said so; 3 per class and mode.
        expect(jobs.every((j) => j.provenance.source === 'template')).toBe(true);
        expect(jobs.filter((j) => j.classes[0] === 'dog' && j.provenance.mode === 'style')).toHaveLength(3);
        expect(jobs.filter((j) => j.provenance.mode === 'divergen').every((j) => j.prompt.endsWith(', in a white background'))).toBe(true);
      }
      if (strategy === 'scene') {
        // One job per draw: repeated draws of a rare set are the point of rebalancing, never merged.
        expect(jobs).toHaveLength(20);
        for (const j of jobs) {
          expect(j.layout!.length).toBeGreaterThan(0);
          for (const b of j.layout!) expect(boxProblem(b.box)).toBeNull();
          expect(j.provenance).toMatchObject({ source: 'real-layout', caption: 'template' });
        }
        const one = jobs.find((j) => j.provenance.image_id === 1);
        if (one) expect(one.prompt).toBe('a photo of a person and two dogs');
      }
    }
  });

  it('caption and alia without an endpoint record why each item failed; --domains and stored captions make them run', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('caption.jsonl');
    const r = await plan({ coco, out, strategy: 'caption', classes: ['dog'] });
    expect(r.jobs).toBe(0);
    const failures = (await readFile(`${out}.failures.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(failures.map((f) => f.item)).toEqual(['dog / image 1', 'dog / image 2']);
    expect(failures[0].reason).toMatch(/no stored caption and no vision endpoint/);
    // A COCO captions file fills the store.
    const caps = tmp.fresh('captions_train.json');
    await writeFile(caps, JSON.stringify({ annotations: [{ image_id: 1, caption: 'A dog and a person in a park.' }, { image_id: 2, caption: 'A dog on grass' }] }));
    const out2 = tmp.fresh('caption2.jsonl');
    await plan({ coco, out: out2, strategy: 'caption', classes: ['dog'], captionSources: [caps] });
    expect((await readPlan(out2)).map((j) => [j.prompt, j.provenance.image_id, j.provenance.caption_source])).toEqual([
      ['a photo of dog, A dog and a person in a park', 1, 'coco'],
      ['a photo of dog, A dog on grass', 2, 'coco'],
    ]);
    const out3 = tmp.fresh('alia.jsonl');
    const r3 = await plan({ coco, out: out3, strategy: 'alia', classes: ['dog'] });
    expect(r3.jobs).toBe(0);
    expect(await readFile(`${out3}.failures.jsonl`, 'utf8')).toMatch(/ALIA needs an LLM/);
    const out4 = tmp.fresh('alia2.jsonl');
    // Image 2 is 333 x 250: its edits are 336 x 248 (nearest multiples of 8), image 1's 200 x 104, whatever --width/--height say.
    const sized = fixtureDataset() as { images: Array<{ id: number; width: number; height: number }> };
    sized.images[1] = { ...sized.images[1]!, width: 333, height: 250 };
    const coco4 = tmp.fresh('sized.json');
    await writeFile(coco4, JSON.stringify(sized));
    await plan({ coco: coco4, out: out4, strategy: 'alia', classes: ['dog'], domains: ['on a beach', 'in the snow'], imageRoot: '/data/coco', strength: 0.6, width: 512, height: 512 });
    const edits = await readPlan(out4);
    expect(edits.map((j) => [j.kind, j.prompt, j.source_image, j.denoising_strength, j.width, j.height])).toEqual([
      ['img2img', 'a photo of a dog, on a beach', '/data/coco/img1.png', 0.6, 200, 104],
      ['img2img', 'a photo of a dog, in the snow', '/data/coco/img1.png', 0.6, 200, 104],
      ['img2img', 'a photo of a dog, on a beach', '/data/coco/img2.png', 0.6, 336, 248],
      ['img2img', 'a photo of a dog, in the snow', '/data/coco/img2.png', 0.6, 336, 248],
    ]);
    // The same edits planned from a dataset in another folder: the same ids and seeds (the images' names in the
    // dataset identify them, not where it lies), only the paths differ.
    const moved = tmp.fresh('alia-moved.jsonl');
    await plan({ coco: coco4, out: moved, strategy: 'alia', classes: ['dog'], domains: ['on a beach', 'in the snow'], imageRoot: '/elsewhere/coco', strength: 0.6, width: 512, height: 512 });
    const again = await readPlan(moved);
    expect(again.map((j) => [j.id, j.seed])).toEqual(edits.map((j) => [j.id, j.seed]));
    expect(again[0]!.source_image).toBe('/elsewhere/coco/img1.png');
    expect(new Set(edits.map((j) => j.id)).size).toBe(4);
    // ALIA's own prompt lists are class-templated with {}: the class goes in its place, the template is not added.
    const out5 = tmp.fresh('alia3.jsonl');
    await plan({ coco: coco4, out: out5, strategy: 'alia', classes: ['dog'], domains: ['a photo of a {} on rocks', 'put the {} next to a {}', 'in the snow'], imageRoot: '/data/coco' });
    expect((await readPlan(out5)).slice(0, 3).map((j) => j.prompt)).toEqual(['a photo of a dog on rocks', 'put the dog next to a dog', 'a photo of a dog, in the snow']);
  });

  it('the answer cache and the caption store cut a torn last line before appending, and keep a whole one', async () => {
    const cachePath = tmp.fresh('cache.jsonl');
    await writeFile(cachePath, `${JSON.stringify({ key: 'a', value: 1 })}\n{"key": "b", "val`);
    const cache = await AnswerCache.open(cachePath);
    expect([cache.has('a'), cache.has('b')]).toEqual([true, false]);
    await cache.put('c', 3);
    const again = await AnswerCache.open(cachePath);
    expect([again.get('a'), again.has('b'), again.get('c')]).toEqual([1, false, 3]);
    expect(await readFile(cachePath, 'utf8')).toBe(`${JSON.stringify({ key: 'a', value: 1 })}\n${JSON.stringify({ key: 'c', value: 3 })}\n`);
    // A whole last record that only lacks its newline is kept.
    const storePath = tmp.fresh('captions.jsonl');
    const line1 = JSON.stringify({ image_id: 1, caption: 'one', source: 'file' });
    await writeFile(storePath, `${line1}\n{"image_id": 2, "capt`);
    const store = await CaptionStore.open(storePath);
    await store.put({ image_id: 3, caption: 'three', source: 'vlm' });
    const store2 = await CaptionStore.open(storePath);
    expect([store2.get(1)?.caption, store2.get(2), store2.get(3)?.caption]).toEqual(['one', undefined, 'three']);
    const whole = tmp.fresh('whole.jsonl');
    await writeFile(whole, line1);
    await (await CaptionStore.open(whole)).put({ image_id: 4, caption: 'four', source: 'vlm' });
    const store3 = await CaptionStore.open(whole);
    expect([store3.get(1)?.caption, store3.get(4)?.caption]).toEqual(['one', 'four']);
  });

  it('ALIA samples 20 images of the whole dataset by seed, captioned ones first', async () => {
    const images = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, file_name: `${i + 1}.png`, width: 8, height: 8 }));
    const coco = parseCoco({ images, annotations: [], categories: [{ id: 1, name: 'x' }] }, 'thirty.json');
    const store = CaptionStore.memory();
    for (let id = 1; id <= 25; id++) await store.put({ image_id: id, caption: `c${id}`, source: 'file' });
    const a = datasetSample(coco, { store }, 1);
    expect(a).toHaveLength(20);
    expect(new Set(a).size).toBe(20);
    expect(a.every((id) => id <= 25)).toBe(true);
    expect(datasetSample(coco, { store }, 1)).toEqual(a);
    expect(datasetSample(coco, { store }, 2)).not.toEqual(a);
    // Only 5 captioned of 30 and no VLM: those 5; a VLM fills the sample with uncaptioned images after them.
    const few = CaptionStore.memory();
    for (const id of [2, 11, 17, 23, 29]) await few.put({ image_id: id, caption: `c${id}`, source: 'file' });
    expect(datasetSample(coco, { store: few }, 1).sort((x, y) => x - y)).toEqual([2, 11, 17, 23, 29]);
    const filled = datasetSample(coco, { store: few, vlm: {} as never }, 1);
    expect(filled).toHaveLength(20);
    expect(filled.slice(0, 5).sort((x, y) => x - y)).toEqual([2, 11, 17, 23, 29]);
  });

  it('meanings from an ambiguity plan flow into the other strategies; extra categories get their own jobs', async () => {
    const coco = await cocoFile();
    const amb = tmp.fresh('amb.jsonl');
    await plan({ coco, out: amb, strategy: 'ambiguity', classes: ['crane', 'dog'] });
    const meanings = JSON.parse(await readFile(`${amb}.meanings.json`, 'utf8'));
    expect(meanings.meanings.map((m: { class: string; method: string }) => [m.class, m.method])).toEqual([
      ['dog', 'lvis'],
      ['crane', 'wordnet-first-sense'],
    ]);
    const out = tmp.fresh('tmpl.jsonl');
    await plan({ coco, out, strategy: 'template', classes: ['crane'], meanings: `${amb}.meanings.json`, extraCategories: 2 });
    const jobs = await readPlan(out);
    expect(jobs[0]!.prompt).toBe('a photo of a single crane, lifts and moves heavy objects; lifting tackle is suspended from a pivoted boom that rotates around a vertical axis');
    expect(jobs[0]!.provenance).toMatchObject({ meaning: 'wordnet-first-sense', class_source: 'dataset' });
    expect(jobs.slice(1).map((j) => j.provenance.class_source)).toEqual(['wordnet-extra', 'wordnet-extra']);
    // The extras are neighbours of crane's first concrete sense (the machine): other lifting devices, path 1/3.
    for (const j of jobs.slice(1)) {
      const extra = j.provenance.extra as { similarity: number; nearest: string; synset: string };
      expect(extra).toMatchObject({ similarity: 1 / 3, nearest: 'crane.n.04' });
      expect(wn.hypernyms(wn.synset(extra.synset)!).map((h) => h.name)).toContain('lifting_device.n.01');
    }
    const div = tmp.fresh('div.jsonl');
    await plan({ coco, out: div, strategy: 'divergen', classes: ['crane'], meanings: `${amb}.meanings.json` });
    expect((await readPlan(div))[0]!.provenance).toMatchObject({ definition: 'meaning' });
    // An extra category's definition is its WordNet gloss, labelled as such (not "lvis").
    const divx = tmp.fresh('divx.jsonl');
    await plan({ coco, out: divx, strategy: 'divergen', classes: ['crane'], extraCategories: 2 });
    const extras = (await readPlan(divx)).filter((j) => j.provenance.class_source === 'wordnet-extra');
    expect(extras).toHaveLength(2);
    for (const j of extras) {
      const synset = (j.provenance.extra as { synset: string }).synset;
      expect(j.provenance).toMatchObject({ definition: 'wordnet-synset', synset });
      expect(j.prompt).toContain(wn.synset(synset)!.definition);
    }
    const ambx = tmp.fresh('ambx.jsonl');
    await plan({ coco, out: ambx, strategy: 'ambiguity', classes: ['crane'], extraCategories: 2 });
    const mx = JSON.parse(await readFile(`${ambx}.meanings.json`, 'utf8')).meanings as Array<{ class: string; method: string; candidates: Array<{ source: string }> }>;
    // One extra has a single WordNet sense ('single'); the other falls back to its synset's gloss.
    expect(mx.slice(1).map((m) => m.method).sort()).toEqual(['single', 'wordnet-synset']);
    for (const m of mx.slice(1)) expect(m.candidates.every((c) => c.source !== 'lvis')).toBe(true);
  });

  it('scene plans read the object sets from a priors file', async () => {
    const coco = await cocoFile();
    const priors = tmp.fresh('priors.json');
    await writeFile(priors, JSON.stringify(buildPriors(fixtureCoco())));
    const a = tmp.fresh('a.jsonl');
    const b = tmp.fresh('b.jsonl');
    await plan({ coco, out: a, strategy: 'scene', scenes: 10, priors });
    await plan({ coco, out: b, strategy: 'scene', scenes: 10 });
    expect(await readFile(a, 'utf8')).toBe(await readFile(b, 'utf8'));
    await writeFile(priors, JSON.stringify({ version: 2 }));
    await expect(plan({ coco, out: a, strategy: 'scene', priors })).rejects.toThrow(/not a genaug priors file/);
  });

  it('the CLI writes the plan and says how many jobs and failures', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('cli.jsonl');
    const printed: string[] = [];
    await buildProgram({ print: (l) => printed.push(l) }).parseAsync(['node', 'genaug', 'plan', '--coco', coco, '--out', out, '--strategy', 'divergen', '--frequency', 'r', '--candidates', '2', '--seed', '3']);
    const jobs = await readPlan(out);
    expect(jobs).toHaveLength(5);
    expect(jobs.every((j) => j.candidates === 2)).toBe(true);
    expect(printed.join('\n')).toMatch(/5 jobs for 5 classes; 0 failures/);
  });

  it('the CLI without --strategy plans X-Paste templates, the same file as --strategy template', async () => {
    const coco = await cocoFile();
    const run = (out: string, ...extra: string[]) => buildProgram({ print: () => undefined }).parseAsync(['node', 'genaug', 'plan', '--coco', coco, '--out', out, '--frequency', 'r', ...extra]);
    const bare = tmp.fresh('bare.jsonl');
    const explicit = tmp.fresh('explicit.jsonl');
    await run(bare);
    await run(explicit, '--strategy', 'template');
    const jobs = await readPlan(bare);
    expect(jobs).toHaveLength(5);
    expect(jobs.every((j) => /^a photo of a single /.test(j.prompt))).toBe(true);
    expect(await readFile(bare, 'utf8')).toBe(await readFile(explicit, 'utf8'));
  });

  it('the CLI fails loudly when the plan comes out empty, naming the failures file; a partial plan succeeds', async () => {
    const coco = await cocoFile();
    const cli = (...args: string[]) => buildProgram({ print: () => undefined }).parseAsync(['node', 'genaug', 'plan', '--coco', coco, ...args]);
    const out = tmp.fresh('empty.jsonl');
    // Captions without a vision endpoint: every item fails.
    await expectError(cli('--out', out, '--strategy', 'caption', '--classes', 'dog'), 'E_BACKEND', `every item failed (2 failures); the reasons are listed in ${out}.failures.jsonl`);
    expect((await readFile(`${out}.failures.jsonl`, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect(await readFile(out, 'utf8')).toBe('');
    // Filters that leave nothing.
    await expectError(cli('--out', tmp.fresh('none.jsonl'), '--strategy', 'template', '--frequency', 'f'), 'E_FORMAT', 'gives nothing to plan');
    // One caption stored, one missing: a plan with a failure is still a plan.
    const caps = tmp.fresh('caps.jsonl');
    await writeFile(caps, JSON.stringify({ image_id: 1, caption: 'a dog' }) + '\n');
    const half = tmp.fresh('half.jsonl');
    await cli('--out', half, '--strategy', 'caption', '--classes', 'dog', '--captions', caps);
    expect(await readPlan(half)).toHaveLength(1);
  });
});

describe('label ambiguity and category diversity', () => {
  /** A 2-d embedder: texts about birds -> (1, 0), other texts -> (0, 1); every image looks like a bird, (0.8, 0.6). */
  const embedder: ImageTextEmbedder = {
    dim: 2,
    name: 'fake-clip',
    logitScale: 100,
    embedTexts: async (texts) => Float32Array.from(texts.flatMap((t) => (/bird/.test(t) ? [1, 0] : [0, 1]))),
    embedImages: async (images) => Float32Array.from(images.flatMap(() => [0.8, 0.6])),
  };
  const fakeImage: RgbInput = { data: new Uint8Array(3), width: 1, height: 1 };

  it('scores every WordNet sense of "crane" against the real images and appends the winner', async () => {
    const classes = planClasses(fixtureCoco(), { names: ['crane'] });
    const seen: number[][] = [];
    const r = await planAmbiguity(
      fixtureCoco(),
      classes,
      { wordnet: wn, embedder, loadImages: async (_c, ids) => (seen.push(ids), ids.map(() => fakeImage)) },
      { negativePrompt: '', candidates: 1, width: 512, height: 512, seed: 0 },
    );
    expect(seen).toEqual([[11, 12]]);
    const job = r.jobs[0]!;
    expect(job.prompt).toBe('a photo of a single crane, large long-necked wading bird of marshes and plains in many parts of the world');
    expect(job.provenance.meaning_method).toBe('clip');
    const cands = job.provenance.candidates as Array<{ text: string; score: number; synset: string }>;
    expect(cands).toHaveLength(5);
    // Mean cosine: the bird text scores 0.8, the other four 0.6.
    expect(cands.find((c) => c.synset === 'crane.n.05')!.score).toBeCloseTo(0.8, 6);
    expect(cands.filter((c) => c.synset !== 'crane.n.05').every((c) => Math.abs(c.score - 0.6) < 1e-6)).toBe(true);
    // Without an embedder: the first WordNet sense, said so.
    const plain = await planAmbiguity(fixtureCoco(), classes, { wordnet: wn }, { negativePrompt: '', candidates: 1, width: 512, height: 512, seed: 0 });
    expect(plain.jobs[0]!.prompt).toBe('a photo of a single crane, lifts and moves heavy objects; lifting tackle is suspended from a pivoted boom that rotates around a vertical axis');
    expect(plain.jobs[0]!.provenance.meaning_method).toBe('wordnet-first-sense');
  });

  it('extra categories are WordNet neighbours below the similarity threshold to every class', () => {
    const dog = planClasses(fixtureCoco(), { names: ['dog'] });
    const extra = extraCategories(dog, wn, { count: 5 });
    expect(extra).toHaveLength(5);
    const dogSynset = wn.synset('dog.n.01')!;
    const parents = new Set(wn.hypernyms(dogSynset).map((s) => s.name));
    for (const e of extra) {
      const s = wn.synset(e.extra!.synset)!;
      expect(s.name).not.toBe('dog.n.01');
      // The most related survivors are dog's siblings: one shared parent, path 1/3 < 0.4.
      expect(wn.hypernyms(s).some((h) => parents.has(h.name))).toBe(true);
      expect(e.extra!.similarity).toBeCloseTo(1 / 3, 12);
      expect(wn.pathSimilarity(s, dogSynset)).toBeCloseTo(1 / 3, 12);
      expect(e.source).toBe('wordnet-extra');
      expect(e.def).toBe(s.definition);
    }
    // A threshold of 1/3 keeps none of the siblings: only cousins (path ≤ 1/4) remain.
    const far = extraCategories(dog, wn, { count: 5, maxSimilarity: 1 / 3 });
    expect(far.every((e) => e.extra!.similarity < 1 / 3)).toBe(true);
    // Given candidates: "puppy" (dog's hyponym, path 1/2) is dropped, "cat" (1/5) kept.
    const given = extraCategories(dog, wn, { count: 5, candidates: ['puppy', 'cat', 'dog'] });
    expect(given.map((e) => e.extra!.synset)).toEqual(['cat.n.01']);
  });

  it('a class named "square" without a synset is the square artifact: no person-sense neighbours such as "airhead"', () => {
    const square = [{ name: 'square', display: 'square', id: 1, synonyms: [], imageIds: [], source: 'dataset' as const }];
    const extra = extraCategories(square, wn, { count: 20 });
    expect(extra.length).toBeGreaterThan(0);
    for (const e of extra) expect(wn.synset(e.extra!.synset)!.lexname, e.name).not.toBe('noun.person');
    expect(extra.map((e) => e.name)).not.toContain('airhead');
    // With the dataset's own synset (as LVIS gives), that sense is used whatever the name's senses are.
    const own = extraCategories([{ ...square[0]!, synset: 'square.n.01' }], wn, { count: 5 });
    expect(own.every((e) => e.extra!.nearest === 'square.n.01')).toBe(true);
  });
});
