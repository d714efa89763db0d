/**
 * `dataset.paste` (issue #20): an ACP run (output scenes, no server: real layouts, the features proxy of CLIS-I)
 * that also pastes the kept scenes' objects into the real images. Checked against the run's own files read
 * independently: each pool crop is the pixels of a kept scene inside its exported object's box (decoded here
 * with sharp), the paste COCO holds the real annotations (each traced to the real file) and pasted ones whose
 * categories are the layout objects' categories, and the same config run twice gives the same bytes.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { expectError, expectSameTree, tempFolder, tree } from './helpers.js';

const tmp = tempFolder('genaug-acp-paste-');
const json = async <T>(p: string): Promise<T> => JSON.parse(await readFile(p, 'utf8')) as T;
const jsonl = async <T>(p: string): Promise<T[]> => (await readFile(p, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

interface Ann { id: number; image_id: number; category_id: number; bbox: number[]; instance_source?: string; source_annotation_id?: number; layout_index?: number }
interface Coco { images: Array<{ id: number; file_name: string; width: number; height: number; source_id?: string }>; annotations: Ann[]; categories: Array<{ id: number; name: string }> }

const config = {
  name: 'acp-paste', preset: 'acp', seed: 4, run_dir: 'run', output: 'scenes',
  real: { coco: 'data/annotations.json', images: 'data/images' },
  plan: { strategy: 'scene', scenes: 4, candidates: 2, width: 96, height: 96 },
  generate: { backend: 'procedural', concurrency: 2 },
  annotate: { method: 'corners', workers: 0 },
  embed: { model: 'features', real_crop_padding: 4, workers: 0 },
  dataset: { paste: true },
  paste: { workers: 0, max_samples: 6, random_scale: [0.2, 0.5] },
  export: { formats: ['coco'] },
  report: { thumbnails: 2, thumb_size: 32 },
};

async function run(dir: string) {
  await writeRealDataset({ out: join(dir, 'data'), seed: 5, images: 8 });
  await writeFile(join(dir, 'run.yaml'), stringify(config));
  return runPipeline(await loadConfig(join(dir, 'run.yaml'), { checkServers: false }), { log: () => undefined });
}

describe('genaug run, output scenes with dataset.paste', () => {
  it('cuts the kept scenes objects into a pool and pastes them into the real images; same seed, same bytes', async () => {
    const a = tmp.fresh('a');
    const r = await run(a);
    const ds = join(r.runDir, 'dataset');
    expect(String(r.manifest.stages.pool!.skipped)).toMatch(/dataset.paste/);
    const kept = new Set((await jsonl<{ id: string }>(join(r.runDir, 'filter', 'kept.jsonl'))).map((k) => k.id));
    const scenes = await json<Coco>(join(ds, 'coco', 'annotations.json'));

    // The pool: one crop per exported object, the scene's pixels in the object's box, fully opaque (box masks).
    const index = await json<{ categories: Record<string, Array<{ file: string; source: string; bbox: number[] }>> }>(join(ds, 'pool', 'index.json'));
    const entries = Object.entries(index.categories).flatMap(([name, l]) => l.map((e) => ({ name, ...e })));
    expect(entries).toHaveLength(scenes.annotations.length);
    const catName = new Map(scenes.categories.map((c) => [c.id, c.name]));
    for (const e of entries) {
      expect(kept.has(e.source), e.source).toBe(true);
      const im = scenes.images.find((i) => i.source_id === e.source)!;
      const ann = scenes.annotations.find((x) => x.image_id === im.id && e.file.endsWith(`_${x.layout_index}.png`))!;
      expect(catName.get(ann.category_id)).toBe(e.name);
      const [x, y, w, h] = e.bbox as [number, number, number, number];
      // The crop lies in the object's box (pixel-rounded).
      expect(x).toBeGreaterThanOrEqual(Math.floor(ann.bbox[0]!));
      expect(y).toBeGreaterThanOrEqual(Math.floor(ann.bbox[1]!));
      expect(x + w).toBeLessThanOrEqual(Math.ceil(ann.bbox[0]! + ann.bbox[2]!));
      expect(y + h).toBeLessThanOrEqual(Math.ceil(ann.bbox[1]! + ann.bbox[3]!));
      const crop = await sharp(join(ds, 'pool', e.file)).raw().toBuffer({ resolveWithObject: true });
      expect([crop.info.width, crop.info.height, crop.info.channels]).toEqual([w, h, 4]);
      const scene = await sharp(join(ds, 'coco', 'images', im.file_name)).removeAlpha().extract({ left: x, top: y, width: w, height: h }).raw().toBuffer();
      for (let p = 0; p < w * h; p++) {
        expect(crop.data[4 * p + 3]).toBe(255);
        for (let ch = 0; ch < 3; ch++) expect(crop.data[4 * p + ch]).toBe(scene[3 * p + ch]);
      }
    }

    // The pasted set: the real annotations, each traced to the real file, plus pasted layout objects.
    const real = await json<Coco>(join(a, 'data', 'annotations.json'));
    const pasted = await json<Coco>(join(ds, 'paste', 'coco', 'annotations.json'));
    expect(pasted.images).toHaveLength(real.images.length);
    const fromReal = pasted.annotations.filter((x) => x.instance_source === 'real');
    const fromPool = pasted.annotations.filter((x) => x.instance_source === 'pasted');
    expect(fromReal.length).toBeGreaterThan(0);
    expect(fromPool.length).toBeGreaterThan(0);
    for (const x of fromReal) {
      const src = real.annotations.find((y) => y.id === x.source_annotation_id)!;
      expect(src, String(x.source_annotation_id)).toBeDefined();
      expect(x.category_id).toBe(src.category_id);
    }
    const layoutCats = new Set(scenes.annotations.map((x) => x.category_id));
    for (const x of fromPool) expect(layoutCats.has(x.category_id), String(x.category_id)).toBe(true);
    expect(pasted.categories.map((c) => c.id).sort()).toEqual(real.categories.map((c) => c.id).sort());
    const summary = r.manifest.stages.dataset!.summary as { pool: number; paste: { pasted: number; images: number } };
    expect(summary.pool).toBe(entries.length);
    expect(summary.paste.pasted).toBe(fromPool.length);

    // Same config, another folder: the same bytes.
    const b = tmp.fresh('b');
    const r2 = await run(b);
    expectSameTree(await tree(ds), await tree(join(r2.runDir, 'dataset')));

    // Only a scene run pastes in its dataset stage.
    await writeFile(join(a, 'bad.yaml'), stringify({ ...config, output: 'classification', preset: 'alia', plan: { strategy: 'template' }, filter: { rules: [] } }));
    await expectError(loadConfig(join(a, 'bad.yaml'), { checkServers: false }), 'E_FORMAT', 'dataset.paste', 'output: scenes');
  }, 90_000);
});
