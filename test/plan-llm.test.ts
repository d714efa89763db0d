import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { PlanJobSchema, type PlanJob } from '../ts/plan/job.js';
import { plan, type EndpointOptions } from '../ts/plan/plan.js';
import { boxProblem, layoutProblem, SCENE_EXAMPLES, SceneGraphSchema, sceneGraphProblem } from '../ts/plan/scenes.js';
import { fixtureDataset } from './plan-fixture.js';
import { tempFolder, readBody } from './helpers.js';

type Reply = { status?: number; content?: string; finish?: string; body?: string };
type Message = { role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> };
type Request = { name: string; messages: Message[]; auth: string | undefined };

/** A chat-completions server: scripted replies per JSON-schema name, else a handler per name. */
const queues = new Map<string, Reply[]>();
const handlers = new Map<string, (r: Request) => Reply>();
const requests: Request[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as { messages: Message[]; response_format?: { json_schema?: { name?: string } } };
    const r: Request = { name: body.response_format?.json_schema?.name ?? 'text', messages: body.messages, auth: req.headers.authorization };
    requests.push(r);
    const reply = queues.get(r.name)?.shift() ?? handlers.get(r.name)?.(r) ?? { status: 500, body: `no reply scripted for ${r.name}` };
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
    res.end(reply.body ?? JSON.stringify({ model: 'test-llm', choices: [{ message: { role: 'assistant', content: reply.content }, finish_reason: reply.finish ?? 'stop' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  queues.clear();
  handlers.clear();
  requests.length = 0;
});

const tmp = tempFolder('genaug-plan-llm-');
const SECRET = 'sk-test-never-written';
const llm = (): EndpointOptions => ({ url: base, model: 'test-llm', apiKey: SECRET, retries: 3, backoffMs: 1 });
const ok = (value: unknown): Reply => ({ content: JSON.stringify(value) });
const text = (m: Message) => (typeof m.content === 'string' ? m.content : m.content.map((p) => p.text ?? '').join(''));

async function cocoFile(): Promise<string> {
  const p = tmp.fresh('train.json');
  await writeFile(p, JSON.stringify(fixtureDataset()));
  return p;
}
async function readPlan(path: string): Promise<PlanJob[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => PlanJobSchema.parse(JSON.parse(l)));
}
const failuresOf = async (out: string) =>
  (await readFile(`${out}.failures.jsonl`, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { item: string; stage: string; reason: string });

describe('LLM-diversified prompts', () => {
  it('retries past non-JSON, cut-off and invalid answers, deduplicates, caches, and never writes the key', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('llm.jsonl');
    queues.set('prompts', [
      { content: 'Here are some great prompts!' },
      { content: '{"prompts": ["A photo of a', finish: 'length' },
      ok({ prompts: ['A photo of a cat, in a white background'] }),
      ok({
        prompts: [
          'A photo of a brown dog, in a white background',
          'a photo of a BROWN dog in a white background!',
          'An image of a spotted dog sitting.',
          'A real photo of a tiny dog, in a white background',
          'An illustration of a dog with a hat, in a white background',
        ],
      }),
    ]);
    const o = { coco, strategy: 'llm' as const, classes: ['dog'], perClass: 3, llm: llm(), concurrency: 1 };
    const progress: Array<[number, number]> = [];
    const r = await plan({ ...o, out, onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([[1, 1]]);
    expect(r.failures).toBe(0);
    const jobs = await readPlan(out);
    expect(jobs.map((j) => j.prompt)).toEqual([
      'A photo of a brown dog, in a white background',
      'An image of a spotted dog sitting, in a white background',
      'A real photo of a tiny dog, in a white background',
    ]);
    expect(jobs[0]!.provenance).toMatchObject({ strategy: 'llm', mode: 'divergen', source: 'llm', model: 'test-llm', definition: 'lvis' });
    expect(requests.map((q) => q.name)).toEqual(['prompts', 'prompts', 'prompts', 'prompts']);
    expect(requests[0]!.auth).toBe(`Bearer ${SECRET}`);
    expect(text(requests[0]!.messages[1]!)).toMatch(/single dog \(a domestic dog\)/);
    // The invalid answer went back with the reason.
    expect(requests[3]!.messages).toHaveLength(4);
    expect(text(requests[3]!.messages[3]!)).toMatch(/cannot be used: none of the 1 texts is usable .*mention "dog"/);
    // A rerun reuses the cached answer: no request, same bytes.
    requests.length = 0;
    const again = tmp.fresh('llm-again.jsonl');
    await plan({ ...o, out: again, cache: `${out}.cache.jsonl` });
    expect(requests).toHaveLength(0);
    expect(await readFile(again, 'utf8')).toBe(await readFile(out, 'utf8'));
    for (const f of [out, `${out}.cache.jsonl`, `${out}.failures.jsonl`]) expect(await readFile(f, 'utf8')).not.toContain(SECRET);
  });

  it('an LLM URL with credentials goes as Basic auth; the password reaches no file', async () => {
    const coco = await cocoFile();
    const dir = tmp.dir();
    const out = join(dir, 'creds.jsonl');
    const PASS = 'hunter2-secret-pw';
    handlers.set('prompts', () => ({ status: 403, body: `user bob:${PASS} may not use this model` }));
    const url = base.replace('http://', `http://bob:${PASS}@`);
    const r = await plan({ coco, out, strategy: 'llm', classes: ['dog'], perClass: 1, llm: { url, model: 'test-llm', retries: 0 } });
    expect(requests[0]!.auth).toBe(`Basic ${Buffer.from(`bob:${PASS}`).toString('base64')}`);
    const failures = await failuresOf(out);
    expect(failures).toHaveLength(r.failures);
    expect(failures[0]!.reason).toContain(`${base}/chat/completions`);
    expect(failures[0]!.reason).toMatch(/HTTP 403/);
    const { readdir } = await import('node:fs/promises');
    const files = await readdir(dir);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) expect(await readFile(join(dir, f), 'utf8')).not.toContain(PASS);
  });

  it('a class whose answers never parse is recorded and falls back to templates; styles come from the LLM', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('llm-fail.jsonl');
    handlers.set('descriptions', () => ({ content: 'I cannot do that.' }));
    handlers.set('styles', () => ok({ styles: ['Watercolor', 'watercolor', 'origami', 'claymation'] }));
    await plan({ coco, out, strategy: 'llm', classes: ['frisbee'], perClass: 2, modes: ['context', 'style'], llm: { ...llm(), retries: 1 } });
    const jobs = await readPlan(out);
    const context = jobs.filter((j) => j.provenance.mode === 'context');
    expect(context).toHaveLength(2);
    expect(context.every((j) => j.provenance.source === 'template' && /^a photo of a frisbee /.test(j.prompt))).toBe(true);
    const style = jobs.filter((j) => j.provenance.mode === 'style');
    expect(style.map((j) => j.provenance.source)).toEqual(['llm', 'llm']);
    for (const j of style) expect(j.prompt).toMatch(/^an? (Watercolor|origami|claymation) of a frisbee, a light, plastic disk/);
    const failures = await failuresOf(out);
    expect(failures).toEqual([expect.objectContaining({ item: 'frisbee', stage: 'context', reason: expect.stringMatching(/E_BACKEND.*not JSON/) })]);
    expect(requests.filter((q) => q.name === 'descriptions')).toHaveLength(2);
  });
});

describe('ACP scenes through the LLM', () => {
  const graphFor = (r: Request) => {
    const ids = (JSON.parse(text(r.messages[1]!)) as { objects: string[] }).objects;
    return {
      attributes: ids.map((id) => ({ object: id, attribute: `a red ${id.replace(/-\d+$/, '')}` })),
      groups: [ids],
      layers_of_depth: [{ layer: 'Foreground', groups: [ids] }],
      relations: [{ caption: 'together', relations: ids.length > 1 ? [{ subject: [ids[0]], object: [ids[1]], relation: 'next to' }] : [] }],
      caption: `a scene with ${ids.map((id) => `a ${id.replace(/-\d+$/, '')}(${id})`).join(' and ')}`,
    };
  };
  const layoutIds = (r: Request) => (JSON.parse(text(r.messages[1]!)) as { objects: string[] }).objects.map((o) => o.split(':')[0]!);

  it('asks again when a box leaves (0, 1) and plans the corrected layout', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('scene.jsonl');
    handlers.set('scene_graph', (r) => ok(graphFor(r)));
    handlers.set('layout', (r) => {
      const ids = layoutIds(r);
      const bad = r.messages.length === 2; // first round: the last box runs off the right edge
      return ok({ Layout: ids.map((id, i) => ({ object: id, bbox: bad && i === ids.length - 1 ? [0.7, 0.1, 0.5, 0.2] : [0.05 + 0.1 * i, 0.1, 0.1, 0.3] })) });
    });
    const progress: Array<[number, number]> = [];
    const r = await plan({ coco, out, strategy: 'scene', scenes: 6, seed: 2, llm: llm(), onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((k) => [k, 6]));
    expect(r.failures).toBe(0);
    const jobs = await readPlan(out);
    expect(jobs.length).toBeGreaterThan(0);
    for (const j of jobs) {
      expect(j.provenance).toMatchObject({ strategy: 'scene', source: 'llm' });
      expect(j.prompt).not.toMatch(/\(\w+-\d+\)/);
      j.layout!.forEach((b, i) => {
        expect(boxProblem(b.box)).toBeNull();
        expect(b.box).toEqual([0.05 + 0.1 * i, 0.1, 0.1, 0.3]);
        expect(b.attributes![0]).toMatch(/^a red /);
        expect(b.layer).toBe(1);
      });
    }
    const retried = requests.filter((q) => q.name === 'layout' && q.messages.length === 4);
    expect(retried.length).toBeGreaterThan(0);
    expect(text(retried[0]!.messages[3]!)).toMatch(/bbox \[0\.7,0\.1,0\.5,0\.2\]: x\+w = 1\.2 is not inside \(0, 1\)/);
    // Both prompts carry ACP-style worked examples (##Example-i / Prompt / Desired Output), valid answers to their prompts.
    const sceneAsk = text(requests.find((q) => q.name === 'scene_graph')!.messages[0]!);
    const layoutAsk = text(requests.find((q) => q.name === 'layout')!.messages[0]!);
    for (const [i, e] of SCENE_EXAMPLES.entries()) {
      expect(sceneAsk).toContain(`##Example-${i + 1}\nPrompt: ${JSON.stringify({ objects: e.objects })}\nDesired Output: ${JSON.stringify(e.graph)}`);
      expect(layoutAsk).toContain(`##Example-${i + 1}\nPrompt: `);
      expect(layoutAsk).toContain(`Desired Output: ${JSON.stringify(e.layout)}`);
      expect(SceneGraphSchema.parse(e.graph)).toEqual(e.graph);
      expect(sceneGraphProblem(e.graph, e.objects)).toBeNull();
      expect(layoutProblem(e.layout, e.objects)).toBeNull();
    }
    expect(SCENE_EXAMPLES).toHaveLength(2);
  });

  it('records a scene whose layouts stay invalid, and one whose scene graph does not tag every object', async () => {
    const coco = await cocoFile();
    const out = tmp.fresh('scene-bad.jsonl');
    handlers.set('scene_graph', (r) => ok({ ...graphFor(r), caption: 'a scene without tags' }));
    const r1 = await plan({ coco, out, strategy: 'scene', scenes: 1, llm: { ...llm(), retries: 0 } });
    expect(r1.jobs).toBe(0);
    expect((await failuresOf(out))[0]).toMatchObject({ stage: 'scene-graph', reason: expect.stringMatching(/stayed invalid after 3 tries: the caption must tag every object/) });
    handlers.set('scene_graph', (r) => ok(graphFor(r)));
    handlers.set('layout', (r) => ok({ Layout: layoutIds(r).map((id) => ({ object: id, bbox: [0, 0, 1, 1] })) }));
    const out2 = tmp.fresh('scene-bad2.jsonl');
    const r2 = await plan({ coco, out: out2, strategy: 'scene', scenes: 1, llm: llm() });
    expect(r2.jobs).toBe(0);
    expect((await failuresOf(out2))[0]).toMatchObject({ stage: 'layout', reason: expect.stringMatching(/x = 0 is not inside \(0, 1\)/) });
  });
});

describe('captions, ALIA domains and LLM meanings', () => {
  it('captions each image once through the vision endpoint and stores them', async () => {
    const coco = await cocoFile();
    const dir = tmp.dir();
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    for (const i of [1, 2]) await writeFile(join(dir, `img${i}.png`), bytes);
    handlers.set('caption', () => ok({ caption: 'A dog playing on the grass.' }));
    const out = tmp.fresh('caption.jsonl');
    await plan({ coco, out, strategy: 'caption', classes: ['dog'], imageRoot: dir, vlm: { ...llm(), model: 'test-vlm' } });
    expect((await readPlan(out)).map((j) => [j.prompt, j.provenance.image_id, j.provenance.caption_source])).toEqual([
      ['a photo of dog, A dog playing on the grass', 1, 'test-llm'],
      ['a photo of dog, A dog playing on the grass', 2, 'test-llm'],
    ]);
    const image = (requests[0]!.messages[0]!.content as Array<{ type: string; image_url?: { url: string } }>).find((p) => p.type === 'image_url')!;
    expect(image.image_url!.url).toBe(`data:image/png;base64,${bytes.toString('base64')}`);
    const store = (await readFile(`${out}.captions.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(store.map((s) => s.image_id).sort()).toEqual([1, 2]);
    requests.length = 0;
    await plan({ coco, out: tmp.fresh('caption-again.jsonl'), captions: `${out}.captions.jsonl`, strategy: 'caption', classes: ['dog'], imageRoot: dir, vlm: { ...llm(), model: 'test-vlm' } });
    expect(requests).toHaveLength(0);
  });

  it('ALIA: summarises at most 20 distinct captions into at most 10 settings, one edit per image and setting', async () => {
    const coco = await cocoFile();
    const caps = tmp.fresh('captions.jsonl');
    await writeFile(caps, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => JSON.stringify({ image_id: i, caption: i % 2 ? 'a person walking' : `a person in room ${i}` })).join('\n') + '\n');
    const settings = Array.from({ length: 12 }, (_, i) => `setting number ${i % 11}`);
    handlers.set('settings', () => ok({ settings }));
    const out = tmp.fresh('alia.jsonl');
    await plan({ coco, out, strategy: 'alia', classes: ['person'], captions: caps, llm: llm(), perClass: 2, imageRoot: '/real' });
    const ask = text(requests.find((q) => q.name === 'settings')!.messages[1]!);
    // Every stored caption of the dataset is summarised (duplicates dropped), not only those of the 2 images edited.
    expect(ask.split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2)).sort()).toEqual(['a person in room 2', 'a person in room 4', 'a person in room 6', 'a person in room 8', 'a person walking']);
    const jobs = await readPlan(out);
    const domains = JSON.parse(await readFile(`${out}.domains.json`, 'utf8'));
    expect(domains.settings).toEqual(Array.from({ length: 10 }, (_, i) => `setting number ${i}`));
    expect(jobs).toHaveLength(2 * 10);
    expect(jobs.every((j) => j.kind === 'img2img' && j.denoising_strength === 0.5 && /^\/real\/img\d+\.png$/.test(j.source_image!))).toBe(true);
    expect(jobs[0]!.prompt).toBe('a photo of a person, setting number 0');
    expect(jobs[0]!.provenance).toMatchObject({ strategy: 'alia', settings_source: 'llm', setting: 'setting number 0' });
  });

  it('ALIA with a VLM captions a seeded sample of the whole dataset, stored captions first', async () => {
    const coco = await cocoFile();
    const dir = tmp.dir();
    for (let i = 1; i <= 12; i++) await writeFile(join(dir, `img${i}.png`), Buffer.from([0x89, 0x50, 0x4e, 0x47, i]));
    const caps = tmp.fresh('some-captions.jsonl');
    await writeFile(caps, [3, 9, 12].map((i) => JSON.stringify({ image_id: i, caption: `stored caption ${i}` })).join('\n') + '\n');
    handlers.set('caption', (r) => {
      const part = (r.messages[0]!.content as Array<{ type: string; image_url?: { url: string } }>).find((p) => p.type === 'image_url')!;
      const i = Buffer.from(part.image_url!.url.split(',')[1]!, 'base64')[4];
      return ok({ caption: `vlm caption ${i}` });
    });
    handlers.set('settings', () => ok({ settings: ['in the rain'] }));
    const out = join(dir, 'alia.jsonl');
    const vlm = { ...llm(), model: 'test-vlm' };
    const r = await plan({ coco, out, strategy: 'alia', classes: ['frisbee'], captions: caps, llm: llm(), vlm, perClass: 1, imageRoot: dir });
    expect(r).toMatchObject({ jobs: 1, failures: 0 });
    // The dataset has 12 images (fewer than 20): the 9 without a caption are captioned, all 12 summarised.
    expect(requests.filter((q) => q.name === 'caption')).toHaveLength(9);
    const ask = text(requests.find((q) => q.name === 'settings')!.messages[1]!);
    const lines = ask.split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2));
    expect(lines.sort()).toEqual(Array.from({ length: 12 }, (_, k) => k + 1).map((i) => ([3, 9, 12].includes(i) ? `stored caption ${i}` : `vlm caption ${i}`)).sort());
    const domains = JSON.parse(await readFile(`${out}.domains.json`, 'utf8'));
    expect([...domains.sampled].sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 12 }, (_, k) => k + 1));
  });

  it('ambiguity: the LLM adds candidate meanings beside the WordNet senses', async () => {
    const coco = await cocoFile();
    handlers.set('meanings', () => ok({ meanings: ['a tall wading bird with a long neck.', 'large long-necked wading bird of marshes and plains in many parts of the world'] }));
    const out = tmp.fresh('amb.jsonl');
    await plan({ coco, out, strategy: 'ambiguity', classes: ['crane'], llm: llm() });
    const job = (await readPlan(out))[0]!;
    const cands = job.provenance.candidates as Array<{ text: string; source: string }>;
    // Five WordNet senses, then the LLM's new one (its second repeats a WordNet gloss and is dropped).
    expect(cands.map((c) => c.source)).toEqual(['wordnet', 'wordnet', 'wordnet', 'wordnet', 'wordnet', 'llm']);
    expect(cands[5]!.text).toBe('a tall wading bird with a long neck');
    const meanings = JSON.parse(await readFile(`${out}.meanings.json`, 'utf8'));
    expect(meanings.meanings[0]).toMatchObject({ class: 'crane', method: 'wordnet-first-sense' });
  });
});
