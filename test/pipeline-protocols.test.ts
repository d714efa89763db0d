/**
 * `genaug run` against a local server for each remote protocol it speaks (A1111, ComfyUI over its websocket,
 * OpenAI images, an OpenAI-compatible vision chat), with the failures a real server has: HTTP 500, no answer
 * (timeout), a body that is not JSON. Each test checks what the server received, what reached the run's outputs,
 * how each failure was recorded, and that a later run with the server well retries what can still succeed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { SHAPE_CLASSES, writeRealDataset } from '../ts/generate/procedural-world.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { readManifest, runPipeline } from '../ts/pipeline/run.js';
import { a1111Key, a1111Server, comfyKey, comfyServer, drawImage, openaiServer, sha, type Misbehave } from './generate-servers.js';
import { readBody, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-pipeline-protocols-');
let root: string;
const servers: Array<{ close(): Promise<void> }> = [];
const track = <T extends { close(): Promise<void> }>(s: T) => (servers.push(s), s);
const names = SHAPE_CLASSES.map((c) => c.name);
const classOf = (prompt: string) => names.find((n) => prompt === `a photo of a single ${n}` || prompt.startsWith(`a photo of a single ${n},`));

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 12, images: 6 });
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

const lines = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));

async function config(name: string, extra: Record<string, unknown>) {
  const p = join(root, `${name}.yaml`);
  await writeFile(p, stringify({ seed: 3, run_dir: name, real: { coco: 'data/annotations.json', images: 'data/images' }, annotate: { workers: 0 }, ...extra }));
  return loadConfig(p);
}

describe('genaug run against each remote protocol', () => {
  it('A1111: prompts, seeds and size reach the server, its images the manifest; 500, timeout and broken JSON are retryable failures a later run retries', async () => {
    let broken = true;
    // Three classes fail while the server is "broken", each its own way; the others draw.
    const misbehave: Misbehave = ({ prompt }) => {
      if (!broken) return 'ok';
      return ({ [names[0]!]: '500', [names[1]!]: 'hang', [names[2]!]: 'badjson' } as Record<string, 'hang'>)[classOf(prompt) ?? ''] ?? 'ok';
    };
    const server = track(await a1111Server({ misbehave }));
    const cfg = await config('a1111', { plan: { strategy: 'template', per_class: 1, width: 32, height: 24 }, generate: { backend: 'a1111', url: server.url, timeout_s: 1, retries: 1, concurrency: 3, steps: 5 } });
    const r = await runPipeline(cfg, { until: 'generate' });
    expect(r.ran).toEqual(['plan', 'generate']);
    const gen = join(cfg.paths.runDir, 'generate');
    // Every job reached the server as A1111's txt2img body: the plan's prompt, seed, size and settings.
    const plan = await lines(join(cfg.paths.runDir, 'plan', 'plan.jsonl'));
    expect(plan).toHaveLength(names.length);
    for (const j of plan) {
      const hits = server.hits.filter((h) => h.json?.prompt === j.prompt);
      // The failing ones were retried once (retries: 1): two attempts each.
      expect(hits.length, j.prompt).toBe(names.indexOf(classOf(j.prompt)!) < 3 ? 2 : 1);
      for (const h of hits) {
        expect(h.path).toBe('/sdapi/v1/txt2img');
        expect(h.json).toMatchObject({ seed: j.seed, width: 32, height: 24, steps: 5, negative_prompt: j.negative_prompt });
      }
    }
    // The images that came back are the server's bytes (the oracle: the server draws them from the request).
    const manifest = await lines(join(gen, 'manifest.jsonl'));
    expect(manifest.map((m) => classOf(plan.find((j) => j.id === m.job).prompt)).sort()).toEqual(names.slice(3).sort());
    for (const m of manifest) {
      const j = plan.find((x) => x.id === m.job);
      const png = await drawImage(a1111Key({ seed: j.seed, prompt: j.prompt }), 32, 24);
      expect(sha(await readFile(join(gen, 'images', m.file)))).toBe(sha(png));
    }
    // Each failure recorded as retryable, with what went wrong; the run did not stop.
    const failed = await lines(join(gen, 'failed.jsonl'));
    const why = Object.fromEntries(failed.map((f) => [classOf(plan.find((j) => j.id === f.job).prompt), f]));
    expect(Object.keys(why).sort()).toEqual(names.slice(0, 3).sort());
    for (const f of failed) expect(f).toMatchObject({ retryable: true, attempts: 2, error: { code: 'E_BACKEND' } });
    expect(why[names[0]!].error.status).toBe(500);
    expect(why[names[0]!].error.message).toMatch(/500/);
    expect(why[names[1]!].error.message).toMatch(/no answer within 1s \(timeout\)/);
    expect(why[names[2]!].error.message).toMatch(/not JSON/);
    expect((await readManifest(cfg.paths.runDir))?.stages.generate?.summary).toMatchObject({ images: names.length - 3, failed: 3 });
    // The server recovers: a later run asks again for exactly the three failures, and the stage is complete.
    broken = false;
    const before = server.hits.length;
    const again = await runPipeline(cfg, { until: 'generate' });
    expect(again.ran).toEqual(['generate']);
    expect(server.hits.slice(before).map((h) => classOf(h.json.prompt)).sort()).toEqual(names.slice(0, 3).sort());
    expect((await readManifest(cfg.paths.runDir))?.stages.generate?.summary).toMatchObject({ images: names.length, failed: 0 });
    expect(await lines(join(gen, 'manifest.jsonl'))).toHaveLength(names.length);
  });
  it('ComfyUI over its websocket: the workflow\'s placeholders filled, both output images of each prompt kept; 500, timeout and broken JSON retried by a later run', async () => {
    let broken = true;
    const misbehave: Misbehave = ({ prompt }) => {
      if (!broken) return 'ok';
      const cls = names.find((n) => prompt.split('|').includes(`a photo of a single ${n}`));
      return ({ [names[0]!]: '500', [names[1]!]: 'hang', [names[2]!]: 'badjson' } as Record<string, 'hang'>)[cls ?? ''] ?? 'ok';
    };
    const server = track(await comfyServer({ websocket: true, pendingPolls: 0, steps: 2, images: 2, misbehave }));
    const workflow = join(root, 'txt2img.json');
    await writeFile(workflow, await readFile(join(import.meta.dirname, '..', 'examples', 'comfyui-txt2img.json')));
    const cfg = await config('comfy', {
      plan: { strategy: 'template', per_class: 1, width: 32, height: 24, negative_prompt: 'blurry' },
      generate: { backend: 'comfyui', url: server.url, workflow: 'txt2img.json', timeout_s: 1, retries: 1, concurrency: 3 },
    });
    await runPipeline(cfg, { until: 'generate' });
    const gen = join(cfg.paths.runDir, 'generate');
    const plan = await lines(join(cfg.paths.runDir, 'plan', 'plan.jsonl'));
    const jobOf = (id: string) => plan.find((j) => j.id === id);
    // Each prompt queued is the workflow with the job's values in place of {{prompt}}, {{seed}}, {{width}}, ...,
    // typed as the nodes want them (the server validates INT/STRING inputs as ComfyUI does).
    const posted = server.hits.filter((h) => h.path === '/prompt').map((h) => h.json);
    expect(posted.length).toBe(names.length + 3); // the three failing prompts asked twice
    const template = JSON.parse(await readFile(workflow, 'utf8'));
    for (const q of posted) {
      const j = plan.find((x) => x.prompt === q.prompt['6'].inputs.text);
      expect(j).toBeDefined();
      const want = structuredClone(template);
      want['3'].inputs.seed = j.seed;
      want['5'].inputs.width = 32;
      want['5'].inputs.height = 24;
      want['6'].inputs.text = j.prompt;
      want['7'].inputs.text = 'blurry';
      expect(q.prompt).toEqual(want);
    }
    // Followed over the websocket under the client id it was queued with; /history read once per finished prompt.
    const clients = new Set(posted.map((q) => q.client_id));
    expect(clients.size).toBe(1);
    expect(server.socketMessages.length).toBeGreaterThan(0);
    expect(new Set(server.socketMessages.map((m) => m.client))).toEqual(clients);
    const finished = server.socketMessages.filter((m) => m.type === 'execution_success').map((m) => `/history/${m.data.prompt_id}`);
    expect(finished).toHaveLength(names.length - 3);
    expect(server.hits.filter((h) => h.path.startsWith('/history/')).map((h) => h.path).sort()).toEqual(finished.sort());
    // Both images of every finished prompt are in the manifest, in the server's order, with the server's bytes.
    const manifest = await lines(join(gen, 'manifest.jsonl'));
    expect(manifest).toHaveLength(2 * (names.length - 3));
    for (const m of manifest) {
      const j = jobOf(m.job);
      const q = posted.find((x) => x.prompt['3'].inputs.seed === j.seed)!;
      const { key } = comfyKey(q.prompt);
      expect(sha(await readFile(join(gen, 'images', m.file)))).toBe(sha(await drawImage(m.output === 0 ? key : `${key} #${m.output}`, 32, 24)));
    }
    expect(manifest.map((m) => m.output).sort()).toEqual(Array.from({ length: names.length - 3 }, () => [0, 1]).flat().sort());
    // The failures: retryable, each with its cause.
    const failed = await lines(join(gen, 'failed.jsonl'));
    const why = Object.fromEntries(failed.map((f) => [classOf(jobOf(f.job).prompt), f]));
    expect(Object.keys(why).sort()).toEqual(names.slice(0, 3).sort());
    for (const f of failed) expect(f).toMatchObject({ retryable: true, attempts: 2, error: { code: 'E_BACKEND' } });
    expect(why[names[0]!].error).toMatchObject({ status: 500 });
    expect(why[names[1]!].error.message).toMatch(/no answer within 1s \(timeout\)/);
    expect(why[names[2]!].error.message).toMatch(/not JSON/);
    // Well again: only the three are queued again, each with its two images.
    broken = false;
    const before = posted.length;
    await runPipeline(cfg, { until: 'generate' });
    const again = server.hits.filter((h) => h.path === '/prompt').slice(before).map((h) => classOf(h.json.prompt['6'].inputs.text));
    expect(again.sort()).toEqual(names.slice(0, 3).sort());
    expect((await readManifest(cfg.paths.runDir))?.stages.generate?.summary).toMatchObject({ failed: 0 });
    expect(await lines(join(gen, 'manifest.jsonl'))).toHaveLength(2 * names.length);
  });
  it('OpenAI images: the body fields and the key reach the server, its images the manifest; 500, timeout and broken JSON retried by a later run', async () => {
    let broken = true;
    const misbehave: Misbehave = ({ prompt }) => {
      if (!broken) return 'ok';
      return ({ [names[0]!]: '500', [names[1]!]: 'hang', [names[2]!]: 'badjson' } as Record<string, 'hang'>)[classOf(prompt) ?? ''] ?? 'ok';
    };
    const key = 'sk-test-protocols-0123456789';
    process.env.GENAUG_TEST_OPENAI_KEY = key;
    const server = track(await openaiServer({ apiKey: key, echoKey: true, misbehave }));
    try {
      const cfg = await config('openai', {
        plan: { strategy: 'template', per_class: 1, width: 32, height: 24 },
        generate: { backend: 'openai', url: server.url, model: 'dall-e-2', api_key_env: 'GENAUG_TEST_OPENAI_KEY', params: { quality: 'standard' }, timeout_s: 1, retries: 1, concurrency: 3 },
      });
      await runPipeline(cfg, { until: 'generate' });
      const gen = join(cfg.paths.runDir, 'generate');
      const plan = await lines(join(cfg.paths.runDir, 'plan', 'plan.jsonl'));
      const jobOf = (id: string) => plan.find((j) => j.id === id);
      // The Images API body: prompt, one image, the size as WxH, the model, base64 answers, the extra params; no seed (the API has none).
      // (loadConfig's reachability probe is a GET /.)
      const posts = () => server.hits.filter((h) => h.method === 'POST');
      expect(server.hits.filter((h) => h.method !== 'POST').map((h) => h.path)).toEqual(['/']);
      expect(posts().length).toBe(names.length + 3);
      for (const h of posts()) {
        expect(h.path).toBe('/v1/images/generations');
        expect(h.headers.authorization).toBe(`Bearer ${key}`);
        expect(h.json).toEqual({ prompt: expect.stringMatching(/^a photo of a single \w+$/), n: 1, size: '32x24', model: 'dall-e-2', response_format: 'b64_json', quality: 'standard' });
      }
      expect(new Set(posts().map((h) => h.json.prompt))).toEqual(new Set(plan.map((j) => j.prompt)));
      const manifest = await lines(join(gen, 'manifest.jsonl'));
      expect(manifest.map((m) => classOf(jobOf(m.job).prompt)).sort()).toEqual(names.slice(3).sort());
      for (const m of manifest) {
        expect(m).toMatchObject({ model: 'dall-e-2' });
        expect(sha(await readFile(join(gen, 'images', m.file)))).toBe(sha(await drawImage(`openai|dall-e-2|0|${jobOf(m.job).prompt}|`, 32, 24)));
      }
      const failed = await lines(join(gen, 'failed.jsonl'));
      const why = Object.fromEntries(failed.map((f) => [classOf(jobOf(f.job).prompt), f]));
      expect(Object.keys(why).sort()).toEqual(names.slice(0, 3).sort());
      for (const f of failed) expect(f).toMatchObject({ retryable: true, attempts: 2, error: { code: 'E_BACKEND' } });
      expect(why[names[0]!].error).toMatchObject({ status: 500, message: expect.stringMatching(/server had an error/) });
      expect(why[names[1]!].error.message).toMatch(/no answer within 1s \(timeout\)/);
      expect(why[names[2]!].error.message).toMatch(/not JSON/);
      // The server echoed the key in its 500 answer: the record has it redacted.
      expect(await readFile(join(gen, 'failed.jsonl'), 'utf8')).not.toContain(key);
      broken = false;
      const before = posts().length;
      await runPipeline(cfg, { until: 'generate' });
      expect(posts().slice(before).map((h) => classOf(h.json.prompt)).sort()).toEqual(names.slice(0, 3).sort());
      expect((await readManifest(cfg.paths.runDir))?.stages.generate?.summary).toMatchObject({ images: names.length, failed: 0 });
      for (const f of ['journal.jsonl', 'manifest.jsonl']) expect(await readFile(join(gen, f), 'utf8')).not.toContain(key);
    } finally {
      delete process.env.GENAUG_TEST_OPENAI_KEY;
    }
  });
  it('OpenAI-compatible VLM (plan.strategy caption): each real image sent as a data URL, its caption in the plan; 500, a cut body and a non-JSON answer are the plan\'s failures, asked again by a forced rerun', async () => {
    const coco = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8')) as { images: Array<{ id: number; file_name: string }> };
    const bySha = new Map<string, number>();
    for (const im of coco.images) bySha.set(sha(await readFile(join(root, 'data', 'images', im.file_name))), im.id);
    const caption = (id: number) => `a white picture with shapes, number ${id}.`;
    let broken = true;
    // While broken, the first three images asked about fail: HTTP 500, a cut JSON body, an answer that is no JSON.
    const ways = ['500', 'cut', 'prose'] as const;
    const failing = new Map<number, (typeof ways)[number]>();
    const seen: Array<{ body: any; image: number | undefined }> = [];
    const server: Server = createServer(async (req, res) => {
      // loadConfig's reachability probe (GET /v1) gets what an OpenAI-compatible server answers there.
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return void res.writeHead(404).end('{"detail": "Not Found"}');
      const body = JSON.parse(await readBody(req));
      const url: string = body.messages?.[0]?.content?.find((p: any) => p.type === 'image_url')?.image_url.url ?? '';
      const image = bySha.get(sha(Buffer.from(url.replace(/^data:[^;,]+;base64,/, ''), 'base64')));
      seen.push({ body, image });
      if (image !== undefined && broken && !failing.has(image) && failing.size < ways.length) failing.set(image, ways[failing.size]!);
      const way = broken && image !== undefined ? failing.get(image) : undefined;
      if (way === '500') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error": {"message": "model overloaded"}}');
      res.writeHead(200, { 'content-type': 'application/json' });
      if (way === 'cut') return void res.end('{"id": "x", "choices": [{"message": {"role": "assis');
      const content = way === 'prose' ? 'This image shows a few shapes on white.' : JSON.stringify({ caption: image === undefined ? '' : caption(image) });
      res.end(JSON.stringify({ id: 'c', model: 'vlm-test', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    track({ close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) });
    const cfg = await config('vlm', {
      plan: { strategy: 'caption', per_class: 1, width: 32, height: 32 },
      vlm: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, model: 'vlm-test' },
    });
    const r = await runPipeline(cfg, { until: 'plan' });
    expect(r.ran).toEqual(['plan']);
    // Every request: the model, one user message with the instruction and the image as a data URL holding a real image's bytes.
    for (const q of seen) {
      expect(q.body.model).toBe('vlm-test');
      expect(q.body.messages[0].role).toBe('user');
      expect(q.body.messages[0].content[0]).toMatchObject({ type: 'text', text: expect.stringMatching(/caption/) });
      expect(q.image).toBeDefined();
    }
    const planPath = join(cfg.paths.runDir, 'plan', 'plan.jsonl');
    const jobs = await lines(planPath);
    const failures = await lines(`${planPath}.failures.jsonl`);
    expect(failing.size).toBe(3);
    const asked = new Set(seen.map((q) => q.image!));
    const good = [...asked].filter((id) => !failing.has(id));
    expect(good.length).toBeGreaterThan(0);
    // The answers flow into the plan: each job's prompt is "a photo of {class}, {caption}" of its image.
    expect(jobs.length).toBeGreaterThan(0);
    for (const j of jobs) {
      expect(j.provenance).toMatchObject({ strategy: 'caption', caption_source: 'vlm-test' });
      expect(good).toContain(j.provenance.image_id);
      expect(j.prompt).toBe(`a photo of ${j.classes[0]}, ${caption(j.provenance.image_id).replace(/\.$/, '')}`);
    }
    // Each failing image is the plan's failure (one per class it stood for), with the cause; each was asked again before giving up.
    const failedImages = new Set(failures.map((f) => Number(/image (\d+)$/.exec(f.item)![1])));
    expect([...failedImages].sort()).toEqual([...failing.keys()].sort());
    for (const f of failures) {
      const way = failing.get(Number(/image (\d+)$/.exec(f.item)![1]))!;
      expect(f).toMatchObject({ strategy: 'caption', stage: 'caption' });
      expect(f.reason).toMatch({ '500': /HTTP 500/, cut: /JSON/, prose: /JSON/ }[way]);
    }
    for (const id of failing.keys()) expect(seen.filter((q) => q.image === id).length).toBeGreaterThan(1);
    expect((await readManifest(cfg.paths.runDir))?.stages.plan?.summary).toMatchObject({ jobs: jobs.length, failures: failures.length });
    // The server recovers; a forced rerun of the plan keeps the stage's answers (answers.jsonl) and captions, so it
    // asks only for the captions it lacks (before the plan stage resumed, --force deleted them and asked for all),
    // and plans every image.
    broken = false;
    const before = seen.length;
    await runPipeline(cfg, { from: 'plan', until: 'plan', force: true });
    expect(new Set(seen.slice(before).map((q) => q.image))).toEqual(new Set(failing.keys()));
    expect(await lines(`${planPath}.failures.jsonl`)).toEqual([]);
    expect((await lines(planPath)).length).toBe(jobs.length + failures.length);
  });
});
