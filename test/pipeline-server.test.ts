import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { generateProcedural, SHAPE_CLASSES, writeRealDataset } from '../ts/demo/procedural.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { readManifest, runPipeline } from '../ts/pipeline/run.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-pipeline-server-');
let root: string;
let server: Server;
let url: string;
const requests: Array<Record<string, unknown>> = [];
const auth = new Set<string>();

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 12, images: 6 });
  // A stand-in AUTOMATIC1111 server: /sdapi/v1/txt2img draws the class named in the prompt.
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/sdapi/v1/txt2img') {
        res.statusCode = 404;
        res.end('{}');
        return;
      }
      const b = JSON.parse(body) as { prompt: string; seed: number; width: number; height: number };
      requests.push(b);
      auth.add(String(req.headers.authorization));
      const cls = SHAPE_CLASSES.find((c) => b.prompt.includes(c.name))?.name ?? 'disk';
      const img = await generateProcedural(cls, b.seed, { width: b.width, height: b.height, rates: { offClass: 0, empty: 0, nearDuplicate: 0, border: 0 } });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ images: [Buffer.from(img.png).toString('base64')], parameters: {}, info: JSON.stringify({ seed: b.seed, all_seeds: [b.seed] }) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

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
    const { readFile, readdir } = await import('node:fs/promises');
    const all = await readdir(join(root, 'run'), { recursive: true, withFileTypes: true });
    for (const f of all) {
      if (!f.isFile() || !/\.(json|jsonl|html)$/.test(f.name)) continue;
      expect(await readFile(join(f.parentPath, f.name), 'utf8'), join(f.parentPath, f.name)).not.toContain('hunter2');
    }
  });
});
