import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { assignBackend, checkWorkflow, generate as generateApi, plan as planApi, type GenerateJournalLine } from '../ts/index.js';

const generate = generateApi.run;
const makePlan = planApi.run;
import { parseBackendSpec } from '../ts/cli/generate.js';
import { A1111Backend } from '../ts/generate/a1111.js';
import type { PlanJob } from '../ts/plan/job.js';
import { caught, tempFolder } from './helpers.js';
import { fixtureDataset } from './plan-fixture.js';
import { a1111Server, comfyKey, comfyServer, drawImage, openaiServer, sha, type TestServer } from './generate-servers.js';

const tmp = tempFolder('genaug-generate-');
const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
const track = <T extends TestServer>(s: T): T => {
  servers.push(s);
  return s;
};

const examples = join(__dirname, '..', 'examples');
const readJson = async (p: string) => JSON.parse(await readFile(p, 'utf8'));
const readLines = async (p: string) =>
  (await readFile(p, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

function job(id: string, over: Partial<PlanJob> & { seed: number }): Record<string, unknown> {
  return { id, kind: 'txt2img', classes: ['cup'], prompt: `a photo of a single cup ${id}`, negative_prompt: 'blurry', candidates: 1, width: 16, height: 16, provenance: { strategy: 'test' }, ...over };
}

async function writePlan(dir: string, lines: Array<Record<string, unknown> | string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const p = join(dir, 'plan.jsonl');
  await writeFile(p, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return p;
}

/** Every file under dir, recursively. */
async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

const fileFor = (png: Buffer) => `${sha(png).slice(0, 16)}.png`;

describe('generate on AUTOMATIC1111/Forge', () => {
  it('sends txt2img, img2img and background-inpaint requests field by field and keeps each image content-addressed with its sidecar', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('a1111');
    await mkdir(dir, { recursive: true });
    const src = await drawImage('source', 24, 16);
    const mask = await drawImage('mask', 24, 16);
    await writeFile(join(dir, 'src.png'), src);
    await writeFile(join(dir, 'mask.png'), mask);
    const plan = await writePlan(dir, [
      job('t1', { seed: 10, candidates: 2, layout: [{ name: 'cup', box: [0.1, 0.1, 0.5, 0.5] }] }),
      job('e1', { seed: 20, kind: 'img2img', source_image: 'src.png', denoising_strength: 0.4, classes: ['dog', 'ball'], prompt: 'a dog in the snow', width: 24 }),
      job('p1', { seed: 30, kind: 'inpaint', source_image: 'src.png', mask: join(dir, 'mask.png'), invert_mask: true, prompt: 'a cup on a beach', width: 24 }),
    ]);
    const out = join(dir, 'out');
    const r = await generate(plan, {
      out,
      backends: [{ type: 'a1111', url: server.url, model: 'sd15.safetensors', params: { steps: 7, cfg_scale: 5.5, sampler_name: 'Euler a', override_settings: { CLIP_stop_at_last_layers: 2 } } }],
      retries: 0,
    });
    expect(r).toMatchObject({ jobs: 3, items: 4, ok: 4, failed: 0, invalidLines: 0, generatedThisRun: 4, resumed: 0, interrupted: false });

    const bodies = new Map(server.hits.map((h) => [h.json.seed as number, { path: h.path, body: h.json }]));
    expect(server.hits.length).toBe(4);
    for (const seed of [10, 11]) {
      const { path, body } = bodies.get(seed)!;
      expect(path).toBe('/sdapi/v1/txt2img');
      expect(body).toMatchObject({ prompt: 'a photo of a single cup t1', negative_prompt: 'blurry', seed, width: 16, height: 16, batch_size: 1, n_iter: 1, steps: 7, cfg_scale: 5.5, sampler_name: 'Euler a' });
      expect(body.override_settings).toEqual({ CLIP_stop_at_last_layers: 2, sd_model_checkpoint: 'sd15.safetensors' });
      expect(body.override_settings_restore_afterwards).toBe(false);
      expect(body.init_images).toBeUndefined();
    }
    const e = bodies.get(20)!;
    expect(e.path).toBe('/sdapi/v1/img2img');
    expect(Buffer.from(e.body.init_images[0], 'base64').equals(src)).toBe(true);
    expect(e.body.denoising_strength).toBe(0.4);
    expect(e.body.mask).toBeUndefined();
    const p = bodies.get(30)!;
    expect(p.path).toBe('/sdapi/v1/img2img');
    expect(Buffer.from(p.body.mask, 'base64').equals(mask)).toBe(true);
    expect(p.body.inpainting_mask_invert).toBe(1); // repaint outside the mask: the background

    // The oracle: the image the server draws for each request, stored under its sha256.
    const expected = [
      ['t1', 0, 10, await drawImage(`a1111|10|a photo of a single cup t1||`, 16, 16)],
      ['t1', 1, 11, await drawImage(`a1111|11|a photo of a single cup t1||`, 16, 16)],
      ['e1', 0, 20, await drawImage(`a1111|20|a dog in the snow|${sha(src)}|`, 24, 16)],
      ['p1', 0, 30, await drawImage(`a1111|30|a cup on a beach|${sha(src)}|${sha(mask)}:1`, 24, 16)],
    ] as const;
    const manifest = await readLines(join(out, 'manifest.jsonl'));
    expect(manifest.map((m) => [m.job, m.candidate])).toEqual(expected.map(([j, c]) => [j, c]));
    for (const [i, [jobId, c, seed, png]] of expected.entries()) {
      const f = fileFor(png);
      expect((await readFile(join(out, 'images', f))).equals(png), `${jobId}#${c}`).toBe(true);
      expect(manifest[i]).toMatchObject({ file: f, path: `images/${f}`, category: jobId === 'e1' ? 'dog' : 'cup', seed, backend: 'a1111', model: 'sd15.safetensors' });
      const side = await readJson(join(out, 'images', f.replace('.png', '.json')));
      expect(side).toMatchObject({ file: f, sha256: sha(png), job: jobId, candidate: c, seed, server_seed: seed, backend: 'a1111', backend_type: 'a1111', model: 'sd15.safetensors' });
      expect(side.parameters.steps).toBe(7);
      expect(JSON.stringify(side)).not.toContain('init_images');
    }
    const side0 = await readJson(join(out, 'images', fileFor(expected[0][3]).replace('.png', '.json')));
    expect(side0).toMatchObject({ prompt: 'a photo of a single cup t1', negative_prompt: 'blurry', classes: ['cup'], layout: [{ name: 'cup', box: [0.1, 0.1, 0.5, 0.5] }], provenance: { strategy: 'test' } });
    expect(side0.info.all_seeds).toEqual([10]);
    const journal = await readLines(join(out, 'journal.jsonl'));
    expect(journal.length).toBe(4);
    expect(journal.every((l: GenerateJournalLine) => l.status === 'ok')).toBe(true);
    expect(await readFile(join(out, 'failed.jsonl'), 'utf8')).toBe('');

    // The manifest works as `genaug annotate --images OUT/images --manifest OUT/manifest.jsonl`.
    const { annotate } = await import('../ts/curate/annotate.js');
    const pool = join(dir, 'pool');
    const a = await annotate({ images: join(out, 'images'), manifest: join(out, 'manifest.jsonl'), out: pool, workers: 0, minFraction: 0.01 });
    expect(a.images).toBe(4);
    const progress = await readLines(join(pool, 'progress.jsonl'));
    expect(Object.fromEntries(progress.map((l) => [l.file, l.category]))).toEqual(Object.fromEntries(manifest.map((m) => [m.file, m.category])));

    // A second run finds everything in the journal and sends nothing.
    const again = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url, model: 'sd15.safetensors' }] });
    expect(again).toMatchObject({ ok: 4, generatedThisRun: 0, resumed: 4 });
    expect(server.hits.length).toBe(4);
  });

  it('keeps an overridden model loaded (override_settings_restore_afterwards false) unless the user sets it', () => {
    const req = { job: job('m', { seed: 1 }) as unknown as PlanJob, candidate: 0, seed: 1 };
    const url = 'http://127.0.0.1:1';
    expect(new A1111Backend({ url, model: 'xl.safetensors' }).body(req)).toMatchObject({ override_settings: { sd_model_checkpoint: 'xl.safetensors' }, override_settings_restore_afterwards: false });
    expect(new A1111Backend({ url, model: 'xl.safetensors', params: { override_settings_restore_afterwards: true } }).body(req).override_settings_restore_afterwards).toBe(true);
    const plain = new A1111Backend({ url }).body(req);
    expect('override_settings' in plain || 'override_settings_restore_afterwards' in plain).toBe(false);
  });

  it('isolates a NaN, a 500, a cut image, a 4xx and a hung request to their own items; retries only what can succeed', async () => {
    const server = track(
      await a1111Server({
        misbehave: ({ seed, attempt }) =>
          seed === 200 ? 'nan' : seed === 300 && attempt === 1 ? '500' : seed === 400 ? 'truncate' : seed === 500 ? '400' : seed === 600 && attempt === 1 ? '429' : seed === 700 ? 'hang' : seed === 800 && attempt === 1 ? 'cut' : 'ok',
      }),
    );
    const dir = tmp.fresh('a1111-bad');
    const seeds = [100, 200, 300, 400, 500, 600, 700, 800];
    const plan = await writePlan(dir, seeds.map((s) => job(`j${s}`, { seed: s })));
    const out = join(dir, 'out');
    const notes: string[] = [];
    const r = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url, concurrency: 3, timeoutMs: 400 }], retries: 2, backoffMs: 5, onNote: (n) => notes.push(n) });
    expect(r).toMatchObject({ items: 8, ok: 4, failed: 4 });
    expect(Object.fromEntries(server.attempts)).toEqual({ 100: 1, 200: 3, 300: 2, 400: 3, 500: 1, 600: 2, 700: 3, 800: 2 });
    const failed = await readLines(join(out, 'failed.jsonl'));
    expect(failed.map((f) => f.job)).toEqual(['j200', 'j400', 'j500', 'j700']);
    const [nan, cut, bad, hung] = failed;
    expect(nan.error.status).toBe(500);
    expect(nan.error.message).toMatch(/HTTP 500: NansException: A tensor with all NaNs was produced in Unet/);
    expect(nan.attempts).toBe(3);
    expect(cut.error.message).toMatch(/truncated PNG image/);
    expect(bad).toMatchObject({ attempts: 1, error: { code: 'E_BACKEND', status: 400 } });
    expect(bad.error.message).toContain('Invalid prompt: a photo of a single cup j500');
    expect(hung.error.message).toMatch(/timeout/);
    expect(hung.attempts).toBe(3);
    const manifest = await readLines(join(out, 'manifest.jsonl'));
    expect(manifest.map((m) => m.job)).toEqual(['j100', 'j300', 'j600', 'j800']);
    for (const m of manifest) {
      const png = await drawImage(`a1111|${m.seed}|a photo of a single cup ${m.job}||`, 16, 16);
      expect((await readFile(join(out, 'images', m.file))).equals(png)).toBe(true);
    }
    expect(notes.some((n) => /retry 1\/2/.test(n))).toBe(true);

    expect(failed.map((f) => f.retryable)).toEqual([true, true, false, true]);

    // A rerun tries the retryable failures again (the NaN, the cut image, the hung request) but not the 400;
    // --retry-failed tries every failure (and the hung one still hangs).
    const before = server.hits.length;
    const keep = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url, timeoutMs: 200 }], retries: 0 });
    expect(server.hits.slice(before).map((h) => h.json.seed).sort()).toEqual([200, 400, 700]);
    expect(keep).toMatchObject({ ok: 4, failed: 4, generatedThisRun: 3, resumed: 5 });
    const hits = server.hits.length;
    const retry = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url, timeoutMs: 200 }], retries: 0, retryFailed: true });
    expect(server.hits.slice(hits).map((h) => h.json.seed).sort()).toEqual([200, 400, 500, 700]);
    expect(retry).toMatchObject({ ok: 4, failed: 4, generatedThisRun: 4, resumed: 4 });
  });

  it('records a plan line that does not validate with its number and field, and runs the others', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('plan-bad');
    const plan = await writePlan(dir, [
      job('good1', { seed: 1 }),
      'not json at all',
      { ...job('badseed', { seed: 2 }), seed: 'two' },
      { ...job('nolayout', { seed: 3 }), layout: [{ name: 'cup', box: [0.1, 0.2, 0.3] }] },
      job('good1', { seed: 4 }),
      { ...job('noprompt', { seed: 5 }), prompt: undefined },
      job('edit-without-source', { seed: 6, kind: 'img2img' }),
      job('good2', { seed: 7 }),
      { ...job('box-out', { seed: 8 }), layout: [{ name: 'cup', box: [0.1, 0.2, 0.3, 0.4] }, { name: 'cup', box: [0.5, 0.2, 0.6, 0.4] }] },
      { ...job('box-empty', { seed: 9 }), layout: [{ name: 'cup', box: [0.1, 0.2, 0, 0.4] }] },
      job('inpaint-without-mask', { seed: 10, kind: 'inpaint', source_image: 'src.png' }),
    ]);
    const out = join(dir, 'out');
    const r = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url }], retries: 0 });
    expect(r).toMatchObject({ jobs: 2, ok: 2, failed: 0, invalidLines: 9 });
    const failed = await readLines(join(out, 'failed.jsonl'));
    expect(failed.map((f) => [f.line, f.status, f.field])).toEqual([
      [2, 'invalid', undefined],
      [3, 'invalid', 'seed'],
      [4, 'invalid', 'layout.0.box'],
      [5, 'invalid', 'id'],
      [6, 'invalid', 'prompt'],
      [7, 'invalid', 'source_image'],
      [9, 'invalid', 'layout.1.box'],
      [10, 'invalid', 'layout.0.box'],
      [11, 'invalid', 'mask'],
    ]);
    expect(failed[0].error).toMatch(/plan\.jsonl:2: not a JSON line/);
    expect(failed[1].error).toMatch(/plan\.jsonl:3: field "seed"/);
    expect(failed[3].error).toMatch(/good1 is already the id of line 1/);
    expect(failed[5].error).toMatch(/plan\.jsonl:7: field "source_image": an img2img job needs source_image/);
    expect(failed[6].error).toMatch(/plan\.jsonl:9: field "layout\.1\.box": .*x\+w = 1\.1 is not inside \(0, 1\)/);
    expect(failed[7].error).toMatch(/width and height must be > 0/);
    expect(failed[8].error).toMatch(/an inpaint job needs mask/);
    expect((await readLines(join(out, 'manifest.jsonl'))).map((m) => m.job)).toEqual(['good1', 'good2']);
    expect(server.hits.map((h) => h.json.seed)).toEqual([1, 7]);
  });

  it('fails the items of a server that dies mid-run with the connection error, and resumes them when it is back', async () => {
    let server: Awaited<ReturnType<typeof a1111Server>> | undefined;
    server = await a1111Server({ delayMs: 20, onRequest: (n) => n === 4 && server?.kill() });
    const port = Number(new URL(server.url).port);
    const dir = tmp.fresh('dies');
    const plan = await writePlan(dir, Array.from({ length: 10 }, (_, i) => job(`d${i}`, { seed: 1000 + i })));
    const out = join(dir, 'out');
    const r = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url }], retries: 1, backoffMs: 5 });
    expect(r.ok).toBe(3);
    expect(r.failed).toBe(7);
    const failed = await readLines(join(out, 'failed.jsonl'));
    expect(failed[0].job).toBe('d3');
    for (const f of failed) expect(f.error.message).toMatch(/connection failed/);
    const back = track(await a1111Server({ port }));
    // Connection failures are retryable: the plain rerun picks them up (no --retry-failed needed).
    const again = await generate(plan, { out, backends: [{ type: 'a1111', url: back.url }] });
    expect(again).toMatchObject({ ok: 10, failed: 0, resumed: 3, generatedThisRun: 7 });
    expect(back.hits.map((h) => h.json.seed)).toEqual(Array.from({ length: 7 }, (_, i) => 1003 + i));
    const journal = await readLines(join(out, 'journal.jsonl'));
    expect(journal.length).toBe(17); // 3 ok + 7 failed + 7 ok: append-only
    const manifest = await readLines(join(out, 'manifest.jsonl'));
    expect(manifest.map((m) => m.job)).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
  });
});

describe('generate resumes from what a kill leaves', () => {
  it('an unreadable source image fails as retryable and is generated by the next run once the file is there', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('late-source');
    const plan = await writePlan(dir, [job('e', { seed: 5, kind: 'img2img', source_image: 'later/src.png' }), job('t', { seed: 6 })]);
    const out = join(dir, 'out');
    const r1 = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url }], retries: 0 });
    expect(r1).toMatchObject({ ok: 1, failed: 1 });
    const [f] = await readLines(join(out, 'failed.jsonl'));
    expect(f).toMatchObject({ job: 'e', retryable: true, error: { code: 'E_IO' } });
    expect(f.error.message).toContain(join(dir, 'later', 'src.png'));
    await mkdir(join(dir, 'later'));
    const src = await drawImage('late', 16, 16);
    await writeFile(join(dir, 'later', 'src.png'), src);
    const r2 = await generate(plan, { out, backends: [{ type: 'a1111', url: server.url }], retries: 0 });
    expect(r2).toMatchObject({ ok: 2, failed: 0, generatedThisRun: 1, resumed: 1 });
    expect(server.hits.map((h) => h.json.seed)).toEqual([6, 5]);
    expect(Buffer.from(server.hits[1]!.json.init_images[0], 'base64').equals(src)).toBe(true);
  });

  it('cuts a half-written journal line, removes stale temporary files, and takes a job list', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('halfline');
    const jobs = [0, 1, 2].map((i) => job(`h${i}`, { seed: 70 + i }) as unknown as PlanJob);
    const out = join(dir, 'out');
    const progress: Array<{ done: number; rate: number }> = [];
    await generate(jobs.slice(0, 2), { out, backends: [{ type: 'a1111', url: server.url }], onProgress: (p) => progress.push({ done: p.done, rate: p.rate }) });
    expect(progress.map((p) => p.done)).toEqual([0, 1, 2]);
    expect(progress.slice(1).every((p) => p.rate > 0 && Number.isFinite(p.rate))).toBe(true);
    // A kill during the append of h1's line and during a write of h2's image.
    const journalPath = join(out, 'journal.jsonl');
    const text = await readFile(journalPath, 'utf8');
    const [first, second] = text.trim().split('\n');
    await writeFile(journalPath, `${first}\n${second!.slice(0, 25)}`);
    await writeFile(join(out, 'images', '.0123456789abcdef.png.999.a1b2c3.tmp'), 'partial');
    server.hits.length = 0;
    const r = await generate(jobs, { out, backends: [{ type: 'a1111', url: server.url }] });
    expect(r).toMatchObject({ items: 3, ok: 3, resumed: 1, generatedThisRun: 2 });
    expect(server.hits.map((h) => h.json.seed)).toEqual([71, 72]);
    const lines = (await readFile(journalPath, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l).job)).toEqual(['h0', 'h1', 'h2']);
    expect((await readdir(join(out, 'images'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await readdir(join(out, 'images'))).length).toBe(6);
  });
});

describe('one run per output folder', () => {
  it('refuses a second run on the same folder while the first holds the lock, and takes over a dead run\'s lock', async () => {
    const server = track(await a1111Server({ delayMs: 300 }));
    const dir = tmp.fresh('lock');
    const plan = await writePlan(dir, [job('l1', { seed: 1 }), job('l2', { seed: 2 })]);
    const out = join(dir, 'out');
    const first = generate(plan, { out, backends: [{ type: 'a1111', url: server.url }] });
    // Once its first request reaches the server, the first run holds the lock.
    while (server.hits.length === 0) await new Promise((r) => setTimeout(r, 5));
    const lock = await readFile(join(out, 'generate.lock'), 'utf8');
    expect(lock.split('\n')[0]).toBe(String(process.pid));
    // A temporary file of the first run that the second must not delete.
    await writeFile(join(out, 'images', '.in-flight.png.1.tmp'), 'x');
    const second = await caught(generate(plan, { out, backends: [{ type: 'a1111', url: server.url }] }));
    expect(second.code).toBe('E_IO');
    expect(second.message).toContain(`another genaug generate (pid ${process.pid}) is writing to ${out}`);
    expect(await readFile(join(out, 'images', '.in-flight.png.1.tmp'), 'utf8')).toBe('x');
    expect(await first).toMatchObject({ ok: 2 });
    await expect(readFile(join(out, 'generate.lock'))).rejects.toThrow(/ENOENT/);
    // The lock of a run killed with SIGKILL: its pid is gone, the lock is stale.
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const { hostname } = await import('node:os');
    await writeFile(join(out, 'generate.lock'), `${dead}\n${hostname()}\n`);
    const r = await generate([...(await readLines(plan)), job('l3', { seed: 3 })] as PlanJob[], { out, backends: [{ type: 'a1111', url: server.url }] });
    expect(r).toMatchObject({ ok: 3, generatedThisRun: 1 });
    await expect(readFile(join(out, 'generate.lock'))).rejects.toThrow(/ENOENT/);
  });
});

describe('generate on ComfyUI', () => {
  it('fills the workflow with type-correct values, polls /history and fetches the outputs with /view', async () => {
    const server = track(await comfyServer({ pendingPolls: 2 }));
    const dir = tmp.fresh('comfy');
    const template = await readJson(join(examples, 'comfyui-txt2img.json'));
    template['6'].inputs.text = 'a photo of a {{class}}, {{prompt}}';
    template['3'].inputs.steps = '{{steps}}';
    await writeFile(join(dir + '.json'), JSON.stringify(template));
    const plan = await writePlan(dir, [job('c1', { seed: 5, candidates: 2, width: 24, height: 16 }), job('c2', { seed: 9, prompt: 'a mug', classes: ['mug'] })]);
    const out = join(dir, 'out');
    const r = await generate(plan, { out, backends: [{ type: 'comfyui', url: server.url, workflow: template, workflowName: 'tpl.json', params: { steps: 12 }, pollMs: 1 }], retries: 0 });
    expect(r).toMatchObject({ ok: 3, failed: 0 });
    const posted = server.hits.filter((h) => h.path === '/prompt').map((h) => h.json);
    expect(posted.length).toBe(3);
    expect(new Set(posted.map((p) => typeof p.client_id)).size).toBe(1);
    // The oracle graph, filled by hand.
    const expectGraph = (seed: number, prompt: string, cls: string, w: number, h: number) => {
      const g = structuredClone(template);
      g['3'].inputs.seed = seed;
      g['3'].inputs.steps = 12;
      g['5'].inputs.width = w;
      g['5'].inputs.height = h;
      g['6'].inputs.text = `a photo of a ${cls}, ${prompt}`;
      g['7'].inputs.text = 'blurry';
      return g;
    };
    const want = [expectGraph(5, 'a photo of a single cup c1', 'cup', 24, 16), expectGraph(6, 'a photo of a single cup c1', 'cup', 24, 16), expectGraph(9, 'a mug', 'mug', 16, 16)];
    expect(posted.map((p) => p.prompt).sort((a, b) => a['3'].inputs.seed - b['3'].inputs.seed)).toEqual(want);
    // Each prompt was polled until its outputs appeared (2 empty answers first).
    expect(server.hits.filter((h) => h.path.startsWith('/history/')).length).toBe(9);
    const manifest = await readLines(join(out, 'manifest.jsonl'));
    for (const [i, g] of want.entries()) {
      const { key, width, height } = comfyKey(g);
      const png = await drawImage(key, width, height);
      expect(manifest[i].file).toBe(fileFor(png));
      expect((await readFile(join(out, 'images', manifest[i].file))).equals(png)).toBe(true);
      expect(manifest[i].model).toBe('v1-5-pruned-emaonly.safetensors');
    }
  });

  it('clones the GLIGEN box node once per layout box, chained, and wires it out when there are none', async () => {
    const server = track(await comfyServer({ pendingPolls: 0 }));
    const dir = tmp.fresh('gligen');
    const template = await readJson(join(examples, 'comfyui-gligen.json'));
    const plan = await writePlan(dir, [
      job('g2', { seed: 1, width: 64, height: 64, classes: ['cat', 'sofa'], layout: [{ name: 'cat', box: [0.1, 0.2, 0.3, 0.4] }, { name: 'sofa', box: [0.5, 0.5, 0.45, 0.45] }] }),
      job('g0', { seed: 2, width: 64, height: 64 }),
    ]);
    const r = await generate(plan, { out: join(dir, 'out'), backends: [{ type: 'comfyui', url: server.url, workflow: template, pollMs: 1 }], retries: 0 });
    expect(r.ok).toBe(2);
    const [two, none] = server.hits.filter((h) => h.path === '/prompt').map((h) => h.json.prompt).sort((a, b) => a['3'].inputs.seed - b['3'].inputs.seed);
    expect(two['11']).toBeUndefined();
    // x = round(0.1*64/8)*8 = 8, y = round(12.8/8)*8 = 16, w = round(19.2/8)*8 = 16, h = round(25.6/8)*8 = 24
    expect(two['11_0'].inputs).toEqual({ conditioning_to: ['6', 0], clip: ['4', 1], gligen_textbox_model: ['10', 0], text: 'cat', width: 16, height: 24, x: 8, y: 16 });
    // x = round(32/8)*8 = 32, w = round(28.8/8)*8 = 32
    expect(two['11_1'].inputs).toEqual({ conditioning_to: ['11_0', 0], clip: ['4', 1], gligen_textbox_model: ['10', 0], text: 'sofa', width: 32, height: 32, x: 32, y: 32 });
    expect(two['3'].inputs.positive).toEqual(['11_1', 0]);
    expect(JSON.stringify(two)).not.toMatch(/genaug_(repeat|chain)/);
    expect(Object.values(none).some((n: any) => n.class_type === 'GLIGENTextBoxApply')).toBe(false);
    expect(none['3'].inputs.positive).toEqual(['6', 0]);
  });

  it('uploads source images for edits, and reports node_errors, execution errors and missing inputs with the server\'s message', async () => {
    const server = track(await comfyServer({ pendingPolls: 1 }));
    const dir = tmp.fresh('comfy-edit');
    await mkdir(dir, { recursive: true });
    const src = await drawImage('comfy-source', 16, 16);
    await writeFile(join(dir, 'src.png'), src);
    const img2img = await readJson(join(examples, 'comfyui-img2img.json'));
    const plan = await writePlan(dir, [
      job('edit', { seed: 3, kind: 'img2img', source_image: 'src.png', denoising_strength: 0.35 }),
      job('boom', { seed: 4, kind: 'img2img', source_image: 'src.png', prompt: 'explode' }),
    ]);
    const r = await generate(plan, { out: join(dir, 'out'), backends: [{ type: 'comfyui', url: server.url, workflow: img2img, pollMs: 1 }], retries: 2, backoffMs: 1 });
    expect(r).toMatchObject({ ok: 1, failed: 1 });
    const name = `genaug_${sha(src).slice(0, 24)}.png`;
    expect(server.uploads.get(name)?.equals(src)).toBe(true);
    const g = server.hits.find((h) => h.path === '/prompt' && h.json.prompt['3'].inputs.seed === 3)!.json.prompt;
    expect(g['10'].inputs.image).toBe(name);
    expect(g['3'].inputs.denoise).toBe(0.35);
    const failed = await readLines(join(dir, 'out', 'failed.jsonl'));
    expect(failed[0].attempts).toBe(1); // an execution error is not retried
    expect(failed[0].error.message).toMatch(/failed: node 3 \(KSampler\): torch.OutOfMemoryError: CUDA out of memory/);

    // node_errors: a value of the wrong type reaches the server, which rejects the prompt (400 + node_errors).
    const txt = await readJson(join(examples, 'comfyui-txt2img.json'));
    txt['3'].inputs.steps = '{{steps}}';
    const plan2 = await writePlan(join(dir, 'p2'), [job('n1', { seed: 1 }), job('needs-image', { seed: 2 })]);
    const r2 = await generate(plan2, {
      out: join(dir, 'out2'),
      backends: [{ type: 'comfyui', url: server.url, workflow: txt, params: { steps: 'many' }, pollMs: 1 }],
      retries: 3,
      backoffMs: 1,
    });
    expect(r2.failed).toBe(2);
    const f2 = await readLines(join(dir, 'out2', 'failed.jsonl'));
    expect(f2[0].attempts).toBe(1);
    expect(f2[0].error.status).toBe(400);
    expect(f2[0].error.message).toContain('Prompt outputs failed validation');
    expect(f2[0].error.message).toContain('node 3 (KSampler): Failed to convert an input value to a INT value: steps, "many"');

    const needs = await generate(plan2, { out: join(dir, 'out3'), backends: [{ type: 'comfyui', url: server.url, workflow: img2img, pollMs: 1 }], retries: 0 });
    expect(needs.failed).toBe(2);
    expect((await readLines(join(dir, 'out3', 'failed.jsonl')))[0].error.message).toMatch(/uses \{\{image\}\} but job n1 has no source_image/);
    // And the other way round: an edit job on a workflow that never reads the image.
    const uploadHits = () => server.hits.filter((h) => h.path === '/upload/image').length;
    const uploadsBefore = uploadHits();
    const noImage = await generate(plan, { out: join(dir, 'out4'), backends: [{ type: 'comfyui', url: server.url, workflow: txt, params: { steps: 3 }, pollMs: 1 }], retries: 0 });
    expect(noImage.failed).toBe(2);
    expect((await readLines(join(dir, 'out4', 'failed.jsonl')))[0].error.message).toMatch(/job edit is img2img but the workflow does not use \{\{image\}\}/);
    expect(uploadHits()).toBe(uploadsBefore); // refused before anything was uploaded
  });

  it('follows prompts over the websocket: progress, the failing node of an execution_error, every output image kept, /history read once', async () => {
    const server = track(await comfyServer({ websocket: true, pendingPolls: 0, steps: 4, images: 2 }));
    const dir = tmp.fresh('comfy-ws');
    const template = await readJson(join(examples, 'comfyui-txt2img.json'));
    const plan = await writePlan(dir, [job('w1', { seed: 5, candidates: 2, width: 24, height: 16 }), job('w2', { seed: 9, prompt: 'it will explode', classes: ['mug'] })]);
    const out = join(dir, 'out');
    const steps: Array<{ value: number; max: number }> = [];
    const r = await generate(plan, { out, backends: [{ type: 'comfyui', url: server.url, workflow: template, pollMs: 1 }], retries: 0, onProgress: (p) => p.steps && steps.push(p.steps) });
    expect(r).toMatchObject({ ok: 2, failed: 1, images: 4, duplicates: 0 });
    // Followed, not polled: /history read once per finished prompt, never for the failed one.
    const historyHits = server.hits.filter((h) => h.path.startsWith('/history/')).map((h) => h.path);
    expect(historyHits.sort()).toEqual(['/history/p-1', '/history/p-2']);
    // Every progress message of the socket reached the runner's progress, in order, with its own maximum.
    expect(steps).toEqual([1, 2, 3, 4, 1, 2, 3, 4].map((value) => ({ value, max: 4 })));
    // The client the prompts were queued under is the socket's client, and it is closed when the batch ends.
    const client = server.hits.find((h) => h.path === '/prompt')!.json.client_id;
    expect(new Set(server.socketMessages.map((m) => m.client))).toEqual(new Set([client]));
    await expect.poll(() => server.clients.size).toBe(0);
    // Both images of each prompt, in the server's order, each its own manifest line and sidecar.
    const manifest = await readLines(join(out, 'manifest.jsonl'));
    expect(manifest.map((m) => [m.job, m.candidate, m.output])).toEqual([['w1', 0, 0], ['w1', 0, 1], ['w1', 1, 0], ['w1', 1, 1]]);
    const posted = server.hits.filter((h) => h.path === '/prompt').map((h) => h.json.prompt);
    for (const [c, prompt] of posted.filter((p) => !comfyKey(p).key.includes('explode')).sort((a, b) => a['3'].inputs.seed - b['3'].inputs.seed).entries()) {
      const { key, width, height } = comfyKey(prompt);
      for (const k of [0, 1]) {
        const png = await drawImage(k === 0 ? key : `${key} #${k}`, width, height);
        const line = manifest[2 * c + k];
        expect(line.file).toBe(fileFor(png));
        expect((await readFile(join(out, 'images', line.file))).equals(png)).toBe(true);
        const sidecar = await readJson(join(out, 'images', line.file.replace(/\.png$/, '.json')));
        expect(sidecar).toMatchObject({ job: 'w1', candidate: c, output: k, outputs: 2 });
      }
    }
    const journal = await readLines(join(out, 'journal.jsonl'));
    expect(journal.filter((l) => l.status === 'ok').map((l) => l.more.length)).toEqual([1, 1]);
    const failed = await readLines(join(out, 'failed.jsonl'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ job: 'w2', attempts: 1 });
    expect(failed[0].error.message).toMatch(/prompt p-\d failed: node 3 \(KSampler\): torch.OutOfMemoryError: CUDA out of memory/);

    // A rerun asks nothing again (the execution error is not retryable) and lists the same four images.
    const promptsBefore = server.hits.filter((h) => h.path === '/prompt').length;
    const again = await generate(plan, { out, backends: [{ type: 'comfyui', url: server.url, workflow: template, pollMs: 1 }], retries: 0 });
    expect(again).toMatchObject({ ok: 2, failed: 1, images: 4, resumed: 3 });
    expect(server.hits.filter((h) => h.path === '/prompt').length).toBe(promptsBefore);
    expect(await readLines(join(out, 'manifest.jsonl'))).toEqual(manifest);
  });

  it('falls back to polling /history when the websocket drops mid-prompt, and when the server has none', async () => {
    const server = track(await comfyServer({ websocket: true, pendingPolls: 0, steps: 3, dropSocketAfter: 4 }));
    const dir = tmp.fresh('comfy-ws-drop');
    const template = await readJson(join(examples, 'comfyui-txt2img.json'));
    const plan = await writePlan(dir, [job('d1', { seed: 1, candidates: 3 })]);
    const r = await generate(plan, { out: join(dir, 'out'), backends: [{ type: 'comfyui', url: server.url, workflow: template, pollMs: 1 }], retries: 0 });
    expect(r).toMatchObject({ ok: 3, failed: 0, images: 3 });
    // The first prompt's socket was cut after its 4th message (before its end): it finished by polling /history.
    expect(server.socketMessages.slice(0, 4).map((m) => m.type)).toEqual(['execution_start', 'execution_cached', 'executing', 'progress']);
    expect(server.hits.filter((h) => h.path === '/history/p-1').length).toBeGreaterThanOrEqual(1);
    const manifest = await readLines(join(dir, 'out', 'manifest.jsonl'));
    expect(manifest.map((m) => m.output)).toEqual([undefined, undefined, undefined]);
  });

  it('rejects a UI-format workflow and an unknown placeholder before sending anything', () => {
    expect(() => checkWorkflow({ nodes: [], links: [] }, 'ui.json')).toThrow(/UI-format workflow/);
    expect(() => checkWorkflow({ 1: { class_type: 'KSampler', inputs: { seed: '{{sede}}' } } }, 'w.json')).toThrow(/node 1 \(KSampler\) uses \{\{sede\}\}/);
    expect(() => checkWorkflow({ 1: { class_type: 'X', inputs: { t: '{{box.name}}' } } }, 'w.json')).toThrow(/\{\{box.name\}\}/);
    expect(checkWorkflow({ prompt: { 1: { class_type: 'X', inputs: { steps: '{{steps}}' } } } }, 'w.json', { steps: 3 })).toHaveProperty('1');
  });
});

describe('generate on an OpenAI-compatible server', () => {
  const key = 'sk-test-SECRETKEY-0123456789';
  it('asks for b64_json at the plan size, decodes it, edits with an alpha mask, and never writes the key', async () => {
    const server = track(await openaiServer({ apiKey: key, echoKey: true, misbehave: ({ prompt }) => (prompt.includes('forbidden') ? '400' : prompt.includes('flaky') ? '500' : prompt.includes('cut') ? 'truncate' : 'ok') }));
    const dir = tmp.fresh('openai');
    await mkdir(dir, { recursive: true });
    const src = await drawImage('openai-src', 16, 16);
    // The mask: white (the object) on the left half.
    const maskPx = Buffer.alloc(16 * 16, 0);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 8; x++) maskPx[y * 16 + x] = 255;
    await writeFile(join(dir, 'mask.png'), await sharp(maskPx, { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer());
    await writeFile(join(dir, 'src.png'), src);
    const plan = await writePlan(dir, [
      job('o1', { seed: 1, width: 32, height: 16 }),
      job('o2', { seed: 2, prompt: 'forbidden thing' }),
      job('o3', { seed: 3, prompt: 'flaky thing' }),
      job('o4', { seed: 4, prompt: 'cut thing' }),
      job('o5', { seed: 5, kind: 'inpaint', source_image: 'src.png', mask: 'mask.png', invert_mask: true, prompt: 'a cup in a kitchen' }),
    ]);
    const out = join(dir, 'out');
    const r = await generate(plan, { out, backends: [{ type: 'openai', url: server.url, apiKey: key, model: 'dall-e-2', params: { user: 'genaug' } }], retries: 1, backoffMs: 1 });
    expect(r).toMatchObject({ ok: 2, failed: 3 });
    const gen = server.hits.find((h) => h.json?.prompt === 'a photo of a single cup o1')!;
    expect(gen.path).toBe('/v1/images/generations');
    expect(gen.headers.authorization).toBe(`Bearer ${key}`);
    expect(gen.json).toEqual({ prompt: 'a photo of a single cup o1', n: 1, size: '32x16', model: 'dall-e-2', response_format: 'b64_json', user: 'genaug' });
    const png = await drawImage('openai|dall-e-2|0|a photo of a single cup o1|', 32, 16);
    expect((await readFile(join(out, 'images', fileFor(png)))).equals(png)).toBe(true);
    const side = await readJson(join(out, 'images', fileFor(png).replace('.png', '.json')));
    expect(side.info.revised_prompt).toBe('a photo of a single cup o1, detailed');
    // OpenAI was sent no seed: none is claimed.
    expect(side).toMatchObject({ seed: 1, server_seed: null });
    expect((await readLines(join(out, 'journal.jsonl'))).filter((l) => l.status === 'ok').map((l) => l.server_seed)).toEqual([null, null]);

    expect(server.edits.length).toBe(1);
    const ed = server.edits[0]!;
    expect(ed.fields).toMatchObject({ prompt: 'a cup in a kitchen', size: '16x16', model: 'dall-e-2', response_format: 'b64_json', n: '1' });
    expect(ed.image.equals(src)).toBe(true);
    // invert_mask: the background is repainted, so it is transparent; the object (white) stays opaque.
    const { data, info } = await sharp(ed.mask!).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    for (const [x, y, alpha] of [[2, 3, 255], [7, 15, 255], [8, 0, 0], [15, 9, 0]] as const) expect(data[(y * 16 + x) * 4 + 3], `${x},${y}`).toBe(alpha);

    const failed = await readLines(join(out, 'failed.jsonl'));
    expect(failed.map((f) => [f.job, f.attempts])).toEqual([['o2', 1], ['o3', 2], ['o4', 2]]);
    expect(failed[0].error.message).toContain('rejected as a result of our safety system. Bearer ***');
    for (const f of await allFiles(out)) expect((await readFile(f)).includes(key), f).toBe(false);

    // Without the key: 401, not retried.
    const r2 = await generate(plan, { out: join(dir, 'nokey'), backends: [{ type: 'openai', url: server.url }], retries: 3 });
    expect(r2.failed).toBe(5);
    const f2 = await readLines(join(dir, 'nokey', 'failed.jsonl'));
    expect(f2.every((f) => f.attempts === 1 && f.error.status === 401)).toBe(true);
  });
});

describe('identical bytes from different items', () => {
  it('keeps one file and one sidecar (the first item in plan order), lists it once in the manifest and counts the duplicates', async () => {
    const png = await drawImage('always the same', 16, 16);
    const calls: number[] = [];
    const backend = {
      type: 'a1111' as const,
      display: 'custom',
      secrets: [],
      generate: async (req: { seed: number }) => {
        calls.push(req.seed);
        await new Promise((r) => setTimeout(r, (4 - req.seed) * 30)); // candidate 0 finishes last
        return { images: [png], seeds: [req.seed], model: 'seedless', parameters: {}, info: {} };
      },
    };
    const dir = tmp.fresh('dups');
    const plan = await writePlan(dir, [job('s1', { seed: 1, candidates: 3 })]);
    const r = await generate(plan, { out: join(dir, 'out'), backends: [{ type: 'a1111', url: 'http://unused', backend, concurrency: 3 }] });
    expect(calls.sort()).toEqual([1, 2, 3]);
    expect(r).toMatchObject({ ok: 3, duplicates: 2 });
    const manifest = await readLines(join(dir, 'out', 'manifest.jsonl'));
    expect(manifest.map((m) => [m.file, m.candidate])).toEqual([[fileFor(png), 0]]);
    expect((await readdir(join(dir, 'out', 'images'))).sort()).toEqual([fileFor(png).replace('.png', '.json'), fileFor(png)]);
    const journal = await readLines(join(dir, 'out', 'journal.jsonl'));
    expect(journal.map((l) => [l.candidate, l.file]).sort()).toEqual([[0, fileFor(png)], [1, fileFor(png)], [2, fileFor(png)]]);
    expect(await readJson(join(dir, 'out', 'images', fileFor(png).replace('.png', '.json')))).toMatchObject({ job: 's1', candidate: 0, seed: 1 });
  });
});

describe('backend specs', () => {
  it('a --backend without TYPE= is refused without echoing the URL password', () => {
    for (const spec of ['http://alice:s3cret-pw@127.0.0.1:7860', 'http://alice:s3cret-pw@host/x?a=b']) {
      let message = '';
      try {
        parseBackendSpec(spec);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/--backend/);
      expect(message).not.toContain('s3cret-pw');
    }
    expect(parseBackendSpec('a1111=http://alice:s3cret-pw@127.0.0.1:7860,2')).toMatchObject({ type: 'a1111', url: 'http://alice:s3cret-pw@127.0.0.1:7860', weight: 2 });
  });
});

describe('backends mixed by weight', () => {
  it('assigns each (job, candidate) by a hash: deterministic, in proportion to the weights', () => {
    const weights = [3, 1];
    const n = 4000;
    const counts = [0, 0];
    for (let i = 0; i < n; i++) counts[assignBackend(`job${i}`, i % 4, 7 + (i % 4), weights)]!++;
    // Binomial(4000, 0.75): standard deviation 27.4; 4 sigma is 110.
    expect(Math.abs((counts[0] as number) - 3000)).toBeLessThan(110);
    expect(assignBackend('job1', 2, 9, weights)).toBe(assignBackend('job1', 2, 9, weights));
    const three = [0, 0, 0];
    for (let i = 0; i < 3000; i++) three[assignBackend(`j${i}`, 0, i, [1, 1, 2])]!++;
    // Expected 750, 750, 1500 (sd 23.7, 23.7, 27.4).
    expect(three.map((c, i) => Math.abs(c - [750, 750, 1500][i]!) < 110)).toEqual([true, true, true]);
  });

  it('sends each item to its assigned server, the same way on every run', async () => {
    const a = track(await a1111Server());
    const b = track(await a1111Server());
    const dir = tmp.fresh('mixed');
    const jobs = Array.from({ length: 12 }, (_, i) => job(`m${i}`, { seed: 50 * i, candidates: 3 }));
    const plan = await writePlan(dir, jobs);
    const backends = [
      { type: 'a1111' as const, label: 'fast', url: a.url, weight: 2, concurrency: 2 },
      { type: 'a1111' as const, label: 'slow', url: b.url, weight: 1 },
    ];
    const r1 = await generate(plan, { out: join(dir, 'o1'), backends });
    const expected = { fast: [] as number[], slow: [] as number[] };
    for (const j of jobs) for (let c = 0; c < 3; c++) (assignBackend(j.id as string, c, (j.seed as number) + c, [2, 1]) === 0 ? expected.fast : expected.slow).push((j.seed as number) + c);
    expect(a.hits.map((h) => h.json.seed).sort((x, y) => x - y)).toEqual(expected.fast.sort((x, y) => x - y));
    expect(b.hits.map((h) => h.json.seed).sort((x, y) => x - y)).toEqual(expected.slow.sort((x, y) => x - y));
    expect(r1.backends).toEqual({ fast: { ok: expected.fast.length, failed: 0 }, slow: { ok: expected.slow.length, failed: 0 } });
    const r2 = await generate(plan, { out: join(dir, 'o2'), backends });
    expect(r2.backends).toEqual(r1.backends);
    expect(await readFile(join(dir, 'o2', 'manifest.jsonl'), 'utf8')).toBe(await readFile(join(dir, 'o1', 'manifest.jsonl'), 'utf8'));
  });
});

describe('plans and generate together', () => {
  it('an ALIA plan written into another folder points its source images at files generate can read', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('alia-subfolder');
    const images = join(dir, 'images');
    await mkdir(images, { recursive: true });
    const real = new Map<number, Buffer>();
    for (const id of [1, 2]) {
      real.set(id, await drawImage(`real ${id}`, 200, 100));
      await writeFile(join(images, `img${id}.png`), real.get(id)!);
    }
    const coco = join(dir, 'train.json');
    await writeFile(coco, JSON.stringify(fixtureDataset()));
    // --images relative to the working folder, the plan two folders down.
    const planPath = join(dir, 'plans', 'sub', 'plan.jsonl');
    await mkdir(join(dir, 'plans', 'sub'), { recursive: true });
    await makePlan({ coco, out: planPath, strategy: 'alia', classes: ['dog'], domains: ['on a beach'], imageRoot: relative(process.cwd(), images) });
    const jobs = await readLines(planPath);
    expect(jobs.map((j) => j.source_image)).toEqual(['../../images/img1.png', '../../images/img2.png']);
    // The images lie outside the plan's folder and the working folder: the roots rule refuses them until the
    // folder genaug plan read is declared (genaug generate --images), and the refusal is retryable.
    const refused = await generate(planPath, { out: join(dir, 'out'), backends: [{ type: 'a1111', url: server.url }], retries: 0 });
    expect(refused).toMatchObject({ ok: 0, failed: 2 });
    const failedLines = (await readFile(join(dir, 'out', 'failed.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(failedLines.map((l) => l.error.message)).toEqual(failedLines.map(() => expect.stringMatching(/source_image \.\.\/\.\.\/images\/img\d\.png lies outside .*--images/)));
    expect(server.hits).toHaveLength(0);
    const r = await generate(planPath, { out: join(dir, 'out'), backends: [{ type: 'a1111', url: server.url }], retries: 0, inputRoots: [images] });
    expect(r).toMatchObject({ ok: 2, failed: 0 });
    // The server got the real images' bytes.
    expect(server.hits.map((h) => sha(Buffer.from(h.json.init_images[0], 'base64'))).sort()).toEqual([sha(real.get(1)!), sha(real.get(2)!)].sort());
  });

  it('raising --candidates keeps the job ids and seeds: generate makes only the new candidates', async () => {
    const server = track(await a1111Server());
    const dir = tmp.fresh('more-candidates');
    await mkdir(dir, { recursive: true });
    const coco = join(dir, 'train.json');
    await writeFile(coco, JSON.stringify(fixtureDataset()));
    const p1 = join(dir, 'plan1.jsonl');
    const p3 = join(dir, 'plan3.jsonl');
    await makePlan({ coco, out: p1, strategy: 'template', classes: ['dog', 'frisbee'], candidates: 1, width: 16, height: 16, seed: 4 });
    await makePlan({ coco, out: p3, strategy: 'template', classes: ['dog', 'frisbee'], candidates: 3, width: 16, height: 16, seed: 4 });
    const one = await readLines(p1);
    const three = await readLines(p3);
    expect(three.map((j) => [j.id, j.seed])).toEqual(one.map((j) => [j.id, j.seed]));
    const out = join(dir, 'out');
    await generate(p1, { out, backends: [{ type: 'a1111', url: server.url }] });
    expect(server.hits.length).toBe(2);
    const r = await generate(p3, { out, backends: [{ type: 'a1111', url: server.url }] });
    expect(r).toMatchObject({ items: 6, ok: 6, resumed: 2, generatedThisRun: 4 });
    expect(server.hits.slice(2).map((h) => h.json.seed).sort((x, y) => x - y)).toEqual(one.flatMap((j) => [j.seed + 1, j.seed + 2]).sort((x, y) => x - y));
  });
});
