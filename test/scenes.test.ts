/**
 * genaug export scenes: Auto Cherry-Picker's training data, from what `genaug generate` wrote for scene-plan jobs
 * (a local A1111 stand-in draws the images), checked with the COCO format's own rules and a mask decode.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { exportScenes } from '../ts/augment/scenes.js';
import { generate } from '../ts/generate/runner.js';
import { decodeRleSync } from '../ts/kernels/mask.js';
import { a1111Server, type TestServer } from './generate-servers.js';
import { expectCode, tarSamples, tempFolder, untar } from './helpers.js';
import { samBoxDecoder, samEncoder } from './onnx-builder.js';

const tmp = tempFolder('genaug-scenes-');
const BIN = join(import.meta.dirname, '..', 'bin', 'genaug.js');
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

const LAYOUTS = {
  s1: [
    { name: 'cat', box: [0.1, 0.2, 0.4, 0.5] },
    { name: 'dog', box: [0.55, 0.1, 0.3, 0.6] },
  ],
  s2: [
    { name: 'Cat', box: [0.25, 0.25, 0.5, 0.5] },
    { name: 'unicorn', box: [0.05, 0.05, 0.2, 0.2] },
  ],
};

/** Generates two scene jobs with two candidates each (images 48 x 32) and returns the manifest. */
async function generated(dir: string): Promise<string> {
  const server = await a1111Server();
  servers.push(server);
  await mkdir(dir, { recursive: true });
  const plan = join(dir, 'plan.jsonl');
  const lines = Object.entries(LAYOUTS).map(([id, layout], i) => ({
    id,
    kind: 'txt2img',
    classes: layout.map((l) => l.name),
    prompt: `a scene ${id}`,
    negative_prompt: '',
    seed: 10 * (i + 1),
    candidates: 2,
    width: 48,
    height: 32,
    layout,
    provenance: { strategy: 'scene' },
  }));
  await writeFile(plan, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const r = await generate(plan, { out: join(dir, 'gen'), backends: [{ type: 'a1111', url: server.url }], retries: 0 });
  expect(r).toMatchObject({ ok: 4, failed: 0 });
  return join(dir, 'gen', 'manifest.jsonl');
}

const readJson = async (p: string) => JSON.parse(await readFile(p, 'utf8'));
const readLines = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('genaug export scenes', () => {
  it('writes one box per layout object at the image size, matched to the real categories, with box masks by default', async () => {
    const dir = tmp.fresh('boxes');
    const manifest = await generated(dir);
    const gen = await readLines(manifest);
    // Best of N: one candidate per job kept, as genaug filter --preset acp writes it.
    const keptIds = [gen.find((l) => l.job === 's1' && l.candidate === 1).file, gen.find((l) => l.job === 's2' && l.candidate === 0).file];
    const real = join(dir, 'real.json');
    await writeFile(real, JSON.stringify({ images: [], annotations: [], categories: [{ id: 7, name: 'dog' }, { id: 3, name: 'cat' }] }));
    const out = join(dir, 'scenes');
    const r = await exportScenes({ manifest, out, kept: new Set(keptIds), categories: real });
    expect(r).toMatchObject({ images: 2, annotations: 3, maskSources: { sam: 0, box: 3 }, skipped: 1 });

    const coco = await readJson(join(out, 'annotations.json'));
    expect(coco.images).toEqual([
      { id: 1, file_name: keptIds[0], width: 48, height: 32, source_id: keptIds[0] },
      { id: 2, file_name: keptIds[1], width: 48, height: 32, source_id: keptIds[1] },
    ]);
    // Boxes by hand: [x W, y H, w W, h H]; "Cat" matches cat by case; the unicorn matches nothing.
    expect(coco.annotations.map((a: { image_id: number; category_id: number; bbox: number[] }) => [a.image_id, a.category_id, a.bbox])).toEqual([
      [1, 3, [4.8, 6.4, 19.2, 16]],
      [1, 7, [26.4, 3.2, 14.4, 19.2]],
      [2, 3, [12, 8, 24, 16]],
    ]);
    for (const a of coco.annotations) {
      const [x, y, w, h] = a.bbox;
      expect(a).toMatchObject({ iscrowd: 0, mask_source: 'box', area: Math.round(w * h * 100) / 100 });
      expect(a.segmentation).toEqual([[x, y, Math.round((x + w) * 100) / 100, y, Math.round((x + w) * 100) / 100, Math.round((y + h) * 100) / 100, x, Math.round((y + h) * 100) / 100]]);
    }
    expect(coco.categories).toEqual([{ id: 3, name: 'cat' }, { id: 7, name: 'dog' }]);
    // The images, bytes unchanged; the unknown object logged.
    for (const f of keptIds) expect((await readFile(join(out, 'images', f))).equals(await readFile(join(dir, 'gen', 'images', f)))).toBe(true);
    expect(await readLines(join(out, 'log.jsonl'))).toEqual([expect.objectContaining({ kind: 'unknown-category', name: 'unicorn', file: keptIds[1] })]);

    // --add-categories appends it; without categories the layout names are the categories.
    const all = await exportScenes({ manifest, out: join(dir, 'scenes-all') });
    expect(all.categories.map((c) => [c.id, c.name])).toEqual([[1, 'Cat'], [2, 'cat'], [3, 'dog'], [4, 'unicorn']]);
    expect(all).toMatchObject({ images: 4, annotations: 8, skipped: 0 });
    const added = await exportScenes({ manifest, out: join(dir, 'scenes-added'), kept: new Set(keptIds), categories: real, addCategories: true });
    expect(added.categories.map((c) => [c.id, c.name])).toEqual([[3, 'cat'], [7, 'dog'], [8, 'unicorn']]);
    expect(added.annotations).toBe(4);
  });

  it('masks each object with SAM prompted by its box, kept inside the box', async () => {
    const dir = tmp.fresh('sam');
    const manifest = await generated(dir);
    const encoder = await samEncoder().write(join(dir, 'enc.onnx'));
    const decoder = await samBoxDecoder(2).write(join(dir, 'dec.onnx'));
    const out = join(dir, 'scenes');
    const r = await exportScenes({ manifest, out, sam: { encoder, decoder } });
    expect(r.maskSources).toEqual({ sam: 8, box: 0 });
    const coco = await readJson(join(out, 'annotations.json'));
    for (const a of coco.annotations) {
      expect(a.mask_source).toBe('sam');
      expect(a.segmentation.size).toEqual([32, 48]);
      const m = decodeRleSync(a.segmentation);
      // The toy decoder answers the box shrunk by 2 pixels: pixel centres strictly inside [x0 + 2, x1 - 2].
      const [x, y, w, h] = a.bbox;
      let n = 0;
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 48; c++) {
          const want = c + 0.5 > x + 2 && c + 0.5 < x + w - 2 && r + 0.5 > y + 2 && r + 0.5 < y + h - 2 ? 1 : 0;
          expect(m.data[r * 48 + c], `pixel (${c}, ${r}) of the mask of box ${a.bbox}`).toBe(want);
          n += want;
        }
      }
      expect(a.area).toBe(n);
    }
  });

  it('the command: refuses half a SAM pair and a manifest without layouts; exits 0 with the summary', async () => {
    const dir = tmp.fresh('cli');
    const manifest = await generated(dir);
    const ok = spawnSync(process.execPath, [BIN, 'export', 'scenes', '--manifest', manifest, '--out', join(dir, 'o1')], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('scenes: 4 images, 8 objects (0 SAM masks, 8 box masks) of 4 categories');
    const half = spawnSync(process.execPath, [BIN, 'export', 'scenes', '--manifest', manifest, '--sam-encoder', 'e.onnx', '--out', join(dir, 'o2')], { encoding: 'utf8' });
    expect(half.status).toBe(2);
    expect(half.stderr).toMatch(/give both --sam-encoder and --sam-decoder/);
    // A txt2img manifest without layouts (an image whose sidecar has none).
    const flat = join(dir, 'flat.jsonl');
    const first = (await readLines(manifest))[0];
    const sidecar = join(dir, 'gen', 'images', first.file.replace(/\.png$/, '.json'));
    const s = await readJson(sidecar);
    delete s.layout;
    await writeFile(sidecar, JSON.stringify(s));
    await writeFile(flat, JSON.stringify(first) + '\n');
    await expectCode(exportScenes({ manifest: flat, out: join(dir, 'o3') }), 'E_EMPTY', /none of the 1 images has a layout/);
  });

  it('--stream: the export as WebDataset samples (image bytes unchanged, the COCO records of each image), sharded and by epoch', async () => {
    const dir = tmp.fresh('stream');
    const manifest = await generated(dir);
    const real = join(dir, 'real.json');
    await writeFile(real, JSON.stringify({ images: [], annotations: [], categories: [{ id: 7, name: 'dog' }, { id: 3, name: 'cat' }] }));
    const out = join(dir, 'scenes');
    await exportScenes({ manifest, out, categories: real });
    const coco = await readJson(join(out, 'annotations.json'));
    const stream = (...extra: string[]) => spawnSync(process.execPath, [BIN, 'export', 'scenes', '--manifest', manifest, '--categories', real, '--stream', '-q', ...extra], { maxBuffer: 1 << 26 });
    const r = stream('--epochs', '1', '--no-shuffle');
    expect(r.status, r.stderr.toString()).toBe(0);
    const got = tarSamples(untar(r.stdout));
    // One sample per exported image, in manifest order: the image bytes as exported, the json its COCO records.
    expect([...got.keys()]).toEqual(coco.images.map((im: { file_name: string }) => `${im.file_name.replace(/\.png$/, '')}_0`));
    const names = new Map(coco.categories.map((c: { id: number; name: string }) => [c.id, c.name]));
    for (const im of coco.images) {
      const f = got.get(`${im.file_name.replace(/\.png$/, '')}_0`)!;
      expect(Object.keys(f).sort()).toEqual(['json', 'png']);
      expect(f.png!.equals(await readFile(join(out, 'images', im.file_name)))).toBe(true);
      const j = JSON.parse(f.json!.toString());
      expect({ ...j, key: undefined, annotations: undefined }).toEqual({ ...im, key: undefined, annotations: undefined });
      const want = coco.annotations.filter((a: { image_id: number }) => a.image_id === im.id).map((a: { category_id: number }) => ({ ...a, category_name: names.get(a.category_id) }));
      expect(j.annotations).toEqual(want);
    }
    // Two epochs in two shards: disjoint, together every image once per epoch.
    const parts = ['0/2', '1/2'].map((sh) => tarSamples(untar(stream('--epochs', '2', '--seed', '4', '--shard', sh).stdout)));
    const keys = parts.flatMap((p) => [...p.keys()]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(2 * coco.images.length);
    for (const e of [0, 1]) expect(keys.filter((k) => k.endsWith(`_${e}`)).map((k) => k.slice(0, -2)).sort()).toEqual(coco.images.map((im: { file_name: string }) => im.file_name.replace(/\.png$/, '')).sort());
    // --out with --stream is refused.
    const bad = spawnSync(process.execPath, [BIN, 'export', 'scenes', '--manifest', manifest, '--stream', '--out', join(dir, 'x')]);
    expect(bad.stderr.toString()).toMatch(/E_ARGUMENT.*--out is for a dataset folder/);
  });
});
