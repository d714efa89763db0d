import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { generateProcedural, SHAPE_CLASSES, writeRealDataset } from '../ts/generate/procedural-world.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { readManifest, runPipeline } from '../ts/pipeline/run.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-pipeline-server-');
let root: string;
let server: Server;
let url: string;
const requests: Array<Record<string, unknown>> = [];
const auth = new Set<string>();
/** While set, the server answers 500 to requests with an odd seed (a server having trouble). */
let failOdd = false;

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 12, images: 6 });
  server = createServer(standIn(requests));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

/** A stand-in AUTOMATIC1111 server's handler: /sdapi/v1/txt2img draws the class named in the prompt; requests go to `log`. */
function standIn(log: Array<Record<string, unknown>>) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/sdapi/v1/txt2img') {
        res.statusCode = 404;
        res.end('{}');
        return;
      }
      const b = JSON.parse(body) as { prompt: string; seed: number; width: number; height: number };
      log.push(b);
      if (failOdd && b.seed % 2 === 1) {
        res.statusCode = 500;
        res.end('{"error": "out of memory"}');
        return;
      }
      auth.add(String(req.headers.authorization));
      const cls = SHAPE_CLASSES.find((c) => b.prompt.includes(c.name))?.name ?? 'disk';
      const img = await generateProcedural(cls, b.seed, { width: b.width, height: b.height, rates: { offClass: 0, empty: 0, nearDuplicate: 0, border: 0 } });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ images: [Buffer.from(img.png).toString('base64')], parameters: {}, info: JSON.stringify({ seed: b.seed, all_seeds: [b.seed] }) }));
    });
  };
}

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('genaug run against an AUTOMATIC1111 server', () => {
  it('sends the plan\'s prompts, seeds and settings, and carries the images to the paste output', async () => {
    const p = join(root, 'a1111.yaml');
    await writeFile(
      p,
      stringify({
        name: 'a1111',
        seed: 5,
        run_dir: 'run',
        real: { coco: 'data/annotations.json', images: 'data/images' },
        plan: { strategy: 'template', per_class: 2, width: 64, height: 64 },
        // Credentials in the URL become HTTP Basic auth and are written nowhere.
        generate: { backend: 'a1111', url: url.replace('http://', 'http://bob:hunter2@'), steps: 12, cfg_scale: 6.5, sampler: 'Euler a', concurrency: 2 },
        annotate: { workers: 0 },
        paste: { max_samples: 3, workers: 0 },
        export: { formats: ['coco'] },
        report: { thumbnails: 4, thumb_size: 32 },
      }),
    );
    const r = await runPipeline(await loadConfig(p));
    expect(r.ran).toContain('paste');
    expect(requests.length).toBe(2 * SHAPE_CLASSES.length);
    for (const q of requests) {
      expect(q.steps).toBe(12);
      expect(q.cfg_scale).toBe(6.5);
      expect(q.sampler_name).toBe('Euler a');
      expect(q.prompt).toMatch(/^a photo of a single \w+$/);
    }
    // Candidates of one job use consecutive seeds.
    const seeds = new Map<string, number[]>();
    for (const q of requests) seeds.set(q.prompt as string, [...(seeds.get(q.prompt as string) ?? []), q.seed as number].sort((a, b) => a - b));
    for (const s of seeds.values()) expect(s[1]! - s[0]!).toBe(1);
    const m = await readManifest(join(root, 'run'));
    expect(m?.stages.generate?.summary.images).toBe(2 * SHAPE_CLASSES.length);
    expect(m?.stages.pool?.summary.instances).toBeGreaterThan(0);
    expect(auth.size).toBe(1);
    expect([...auth][0]).toBe(`Basic ${Buffer.from('bob:hunter2').toString('base64')}`);
    const all = await readdir(join(root, 'run'), { recursive: true, withFileTypes: true });
    for (const f of all) {
      if (!f.isFile() || !/\.(json|jsonl|html)$/.test(f.name)) continue;
      expect(await readFile(join(f.parentPath, f.name), 'utf8'), join(f.parentPath, f.name)).not.toContain('hunter2');
    }
  });

  it('generate.servers mixes several servers by weight (DiverGen\'s model mix): each item to the server its hash draws, counted per server', async () => {
    const small: Array<Record<string, unknown>> = [];
    const second = createServer(standIn(small));
    await new Promise<void>((r) => second.listen(0, '127.0.0.1', r));
    try {
      const url2 = `http://127.0.0.1:${(second.address() as AddressInfo).port}`;
      const p = join(root, 'mix.yaml');
      const before = requests.length;
      await writeFile(
        p,
        stringify({
          seed: 11,
          run_dir: 'run-mix',
          real: { coco: 'data/annotations.json', images: 'data/images' },
          plan: { strategy: 'template', per_class: 8, width: 48, height: 48 },
          generate: { servers: [{ backend: 'a1111', url, weight: 3, label: 'big' }, { backend: 'a1111', url: url2, weight: 1, label: 'small', params: { steps: 4 } }], steps: 9 },
          annotate: { workers: 0 },
        }),
      );
      await runPipeline(await loadConfig(p), { until: 'generate' });
      const items = 8 * SHAPE_CLASSES.length;
      const big = requests.slice(before);
      expect(big.length + small.length).toBe(items);
      expect(small.length).toBeGreaterThan(0);
      expect(big.length).toBeGreaterThan(small.length);
      // Shared settings go to every server; a server's own params win.
      expect(big.every((q) => q.steps === 9)).toBe(true);
      expect(small.every((q) => q.steps === 4)).toBe(true);
      // The oracle: the runner's weighted draw per (job, candidate, seed).
      const { assignBackend } = await import('../ts/generate/runner.js');
      const journal = (await readFile(join(root, 'run-mix', 'generate', 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { job: string; candidate: number; seed: number; backend: string });
      expect(journal).toHaveLength(items);
      for (const l of journal) expect(l.backend).toBe(['big', 'small'][assignBackend(l.job, l.candidate, l.seed, [3, 1])]);
      const m = await readManifest(join(root, 'run-mix'));
      expect(m?.stages.generate?.summary.perServer).toEqual({ big: { ok: big.length, failed: 0 }, small: { ok: small.length, failed: 0 } });
      // One server or a list, not both; a comfyui server needs its workflow.
      await writeFile(p, stringify({ run_dir: 'run-mix2', real: { coco: 'data/annotations.json', images: 'data/images' }, generate: { backend: 'a1111', url, servers: [{ backend: 'a1111', url: url2 }] } }));
      await expect(loadConfig(p)).rejects.toThrow(/generate\.servers: give either one server/);
      await writeFile(p, stringify({ run_dir: 'run-mix2', real: { coco: 'data/annotations.json', images: 'data/images' }, generate: { servers: [{ backend: 'comfyui', url: url2 }] } }));
      await expect(loadConfig(p)).rejects.toThrow(/generate\.servers\[0\]\.workflow/);
    } finally {
      await new Promise<void>((r) => second.close(() => r()));
    }
  });

  it('retries retryable failures of a done generate stage, resumes a failed one, and --force keeps finished images', async () => {
    const p = join(root, 'retry.yaml');
    await writeFile(
      p,
      stringify({
        seed: 9,
        run_dir: 'run-retry',
        real: { coco: 'data/annotations.json', images: 'data/images' },
        plan: { strategy: 'template', per_class: 2, width: 48, height: 48 },
        generate: { backend: 'a1111', url, concurrency: 2, retries: 0 },
        annotate: { workers: 0 },
      }),
    );
    const cfg = await loadConfig(p);
    const dir = join(cfg.paths.runDir, 'generate', 'images');
    const hashes = async () => {
      const out: Record<string, string> = {};
      for (const f of (await readdir(dir)).filter((x) => x.endsWith('.png')).sort()) out[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex');
      return out;
    };
    const items = 2 * SHAPE_CLASSES.length;
    // Candidates have consecutive seeds: one of each job's two fails.
    failOdd = true;
    let before = requests.length;
    await runPipeline(cfg, { until: 'generate' });
    expect(requests.length - before).toBe(items);
    let m = await readManifest(cfg.paths.runDir);
    expect(m?.stages.generate?.summary).toMatchObject({ images: items / 2, failed: items / 2 });
    const firstImages = await hashes();
    expect(Object.keys(firstImages).length).toBe(items / 2);
    // Run again with the server well: the done stage is not fresh while it has retryable failures; only those are sent.
    failOdd = false;
    before = requests.length;
    let r = await runPipeline(cfg, { until: 'generate' });
    expect(r.ran).toEqual(['generate']);
    expect(requests.length - before).toBe(items / 2);
    expect(requests.slice(before).every((q) => (q.seed as number) % 2 === 1)).toBe(true);
    m = await readManifest(cfg.paths.runDir);
    expect(m?.stages.generate?.summary).toMatchObject({ images: items, failed: 0 });
    expect(m?.stages.generate?.resumed).toBe(1);
    const all = await hashes();
    for (const [f, h] of Object.entries(firstImages)) expect(all[f], f).toBe(h);
    // Nothing left to retry: up to date.
    r = await runPipeline(cfg, { until: 'generate' });
    expect(r.skipped).toEqual(['plan', 'generate']);
    // --force on a journalled stage with the same fingerprint resumes: no image is asked for again or lost.
    before = requests.length;
    r = await runPipeline(cfg, { from: 'generate', until: 'generate', force: true });
    expect(r.ran).toEqual(['generate']);
    expect(requests.length - before).toBe(0);
    expect(await hashes()).toEqual(all);
    // A stage that failed (after journalling its items) resumes from its journal instead of starting clean.
    m = (await readManifest(cfg.paths.runDir))!;
    m.stages.generate!.status = 'failed';
    await writeFile(join(cfg.paths.runDir, 'run.json'), JSON.stringify(m));
    r = await runPipeline(cfg, { until: 'generate' });
    expect(r.ran).toEqual(['generate']);
    expect(requests.length - before).toBe(0);
    expect((await readManifest(cfg.paths.runDir))?.stages.generate?.resumed).toBe(3);
    expect(await hashes()).toEqual(all);
    // A changed fingerprint starts clean: every image is asked for again.
    const p2 = join(root, 'retry.yaml');
    await writeFile(p2, (await readFile(p, 'utf8')).replace('retries: 0', 'retries: 0\n  steps: 7'));
    before = requests.length;
    await runPipeline(await loadConfig(p2), { until: 'generate' });
    expect(requests.length - before).toBe(items);
  });
});
