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
import { a1111Key, a1111Server, comfyKey, comfyServer, drawImage, openaiServer, sha, type Misbehave, type TestServer } from './generate-servers.js';
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
});
