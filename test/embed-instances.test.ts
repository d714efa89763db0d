/**
 * embedInstances (genaug embed --coco): one row per instance of a COCO file,
 * checked against rows computed by hand from the same pixels (decode, mask,
 * DiverGen crop or black background, features-v1), with the cache, the
 * worker pool and bad instances recorded, not dropped.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, it } from 'vitest';

import { embedInstances } from '../ts/curate/embed.js';
import { paddingCrop } from '../ts/curate/crops.js';
import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { readImage } from '../ts/io/images.js';
import { readNpy } from '../ts/io/npy.js';
import { decodeRleSync, segmentationToRle } from '../ts/kernels/mask.js';
import { FeatureEmbedder } from '../ts/models/features.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-embed-instances-');
let root: string;
let coco: { images: Array<{ id: number; file_name: string; width: number; height: number }>; annotations: Array<{ id: number; image_id: number; category_id: number; segmentation: unknown; iscrowd?: number }>; categories: Array<{ id: number; name: string }> };
const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
const lines = async (p: string) => (await readFile(p, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 5, images: 6 });
  coco = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8'));
});

describe('embedInstances', () => {
  it('crop and masked rows equal rows computed by hand, in image-id then annotation order', async () => {
    const f = new FeatureEmbedder();
    for (const mode of ['crop', 'masked'] as const) {
      const out = join(root, `${mode}.npy`);
      const r = await embedInstances({ coco: join(root, 'data', 'annotations.json'), images: join(root, 'data', 'images'), out, embedder: { kind: 'features' }, mode, padding: 6, blur: 10, workers: 0 });
      const rows = (await readNpy(out)).data as Float32Array;
      const index = await lines(join(root, `${mode}.index.jsonl`));
      const want = coco.annotations.filter((a) => a.iscrowd !== 1 && a.segmentation).sort((a, b) => a.image_id - b.image_id);
      expect(index.map((l) => l.annotation)).toEqual(want.map((a) => a.id));
      expect(r.rows).toBe(want.length);
      for (const [i, a] of want.entries()) {
        const im = coco.images.find((x) => x.id === a.image_id)!;
        const rgb = await readImage(join(root, 'data', 'images', im.file_name));
        const m = decodeRleSync(segmentationToRle(a.segmentation, im.height, im.width)).data;
        let pic;
        if (mode === 'crop') pic = paddingCrop(rgb, m, { padding: 6, blur: 10 });
        else {
          const data = new Uint8Array(rgb.data);
          for (let q = 0; q < m.length; q++) if (!m[q]) data.fill(0, 3 * q, 3 * q + 3);
          pic = { data, width: rgb.width, height: rgb.height };
        }
        expect(Array.from(rows.subarray(i * f.dim, (i + 1) * f.dim)), `${mode} row ${i}`).toEqual(Array.from(f.embedOne(pic)));
        expect(index[i]!.category).toBe(coco.categories.find((c) => c.id === a.category_id)!.name);
      }
    }
  });

  it('a category the COCO file lacks is an error, or with missingCategories skip keeps its label position and has no rows', async () => {
    const coco = join(root, 'data', 'annotations.json');
    const names = (JSON.parse(await readFile(coco, 'utf8')) as { categories: Array<{ id: number; name: string }> }).categories.sort((a, b) => a.id - b.id).map((k) => k.name);
    const base = { coco, images: join(root, 'data', 'images'), embedder: { kind: 'features' } as const, mode: 'masked' as const, workers: 0 };
    await expect(embedInstances({ ...base, out: join(root, 'ghost.npy'), categories: ['ghost', ...names] })).rejects.toThrow(/categories\[0\]: 'ghost' is not a category/);
    const notes: string[] = [];
    await embedInstances({ ...base, out: join(root, 'skip.npy'), categories: ['ghost', ...names], missingCategories: 'skip', onNote: (n) => notes.push(n) });
    await embedInstances({ ...base, out: join(root, 'plain.npy'), categories: names });
    const rows = async (f: string) => (await readFile(join(root, f), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { category: string; label: number });
    const skip = await rows('skip.index.jsonl');
    const plain = await rows('plain.index.jsonl');
    // Same instances; each label shifted by the reserved position 0.
    expect(skip.map((r) => r.category)).toEqual(plain.map((r) => r.category));
    expect(skip.map((r) => r.label)).toEqual(plain.map((r) => r.label + 1));
    expect(skip.every((r) => r.label === names.indexOf(r.category) + 1)).toBe(true);
    expect(notes.join('\n')).toMatch(/has no ghost: nothing of that class to embed/);
  });

  it('gives the same bytes from the cache, in a worker pool, and with any batch size', async () => {
    const base = { coco: join(root, 'data', 'annotations.json'), images: join(root, 'data', 'images'), embedder: { kind: 'features' } as const, mode: 'crop' as const, padding: 4 };
    const a = await embedInstances({ ...base, out: join(root, 'a.npy'), workers: 0, batchSize: 3, cache: join(root, 'cache') });
    expect(a.cached).toBe(0);
    const b = await embedInstances({ ...base, out: join(root, 'b.npy'), workers: 0, batchSize: 7, cache: join(root, 'cache') });
    expect(b.cached).toBe(b.rows);
    const c = await embedInstances({ ...base, out: join(root, 'c.npy'), workers: 2, batchSize: 2 });
    expect(await sha(join(root, 'b.npy'))).toBe(await sha(join(root, 'a.npy')));
    expect(await sha(join(root, 'c.npy'))).toBe(await sha(join(root, 'a.npy')));
    expect(await sha(join(root, 'c.index.jsonl'))).toBe(await sha(join(root, 'a.index.jsonl')));
    expect(c.rows).toBe(a.rows);
  });

  it('records a missing image and an empty mask in failed.jsonl and goes on; refuses unknown categories', async () => {
    const bad = structuredClone(coco);
    const gone = bad.images[0]!;
    gone.file_name = 'missing.png';
    const other = bad.annotations.find((a) => a.image_id !== gone.id)!;
    const im = bad.images.find((x) => x.id === other.image_id)!;
    other.segmentation = { size: [im.height, im.width], counts: [im.height * im.width] };
    await writeFile(join(root, 'bad.json'), JSON.stringify(bad));
    const r = await embedInstances({ coco: join(root, 'bad.json'), images: join(root, 'data', 'images'), out: join(root, 'bad.npy'), embedder: { kind: 'features' }, mode: 'crop', workers: 0 });
    const failed = await lines(join(root, 'bad.failed.jsonl'));
    const onGone = bad.annotations.filter((a) => a.image_id === gone.id && a.iscrowd !== 1).length;
    expect(failed.filter((l) => l.file === 'missing.png').length).toBe(onGone);
    expect(failed.find((l) => l.annotation === other.id)?.reason).toMatch(/mask is empty/);
    expect(r.failures).toBe(onGone + 1);
    expect(r.rows + r.failures).toBe(bad.annotations.filter((a) => a.iscrowd !== 1).length);
    await expectError(embedInstances({ coco: join(root, 'bad.json'), images: join(root, 'data', 'images'), out: join(root, 'x.npy'), embedder: { kind: 'features' }, mode: 'crop', categories: ['nope'] }), 'E_ARGUMENT', 'nope');
  });

  it('genaug embed --coco exits 1 when no instance could be embedded, naming the failures file', async () => {
    const none = structuredClone(coco);
    for (const im of none.images) im.file_name = `gone-${im.id}.png`;
    await writeFile(join(root, 'none.json'), JSON.stringify(none));
    const bin = join(__dirname, '..', 'bin', 'genaug.js');
    const err = await promisify(execFile)(process.execPath, [bin, 'embed', '--features', '--coco', join(root, 'none.json'), '--images', join(root, 'data', 'images'), '--out', join(root, 'none.npy')]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/E_IO.*none\.failed\.jsonl/);
    await rm(join(root, 'none.npy'), { force: true });
  });
});

describe('embed runs: non-regular files and the roots rule', () => {
  it('records devices, FIFOs, folders and paths or links outside the manifest folder as failed (no hang), and embeds the rest', async () => {
    const { embedImages } = await import('../ts/curate/embed.js');
    const { execFileSync } = await import('node:child_process');
    const { symlink } = await import('node:fs/promises');
    execFileSync('mkfifo', [join(root, 'pipe.png')]);
    await symlink('/dev/zero', join(root, 'zero.png'));
    const good = `data/images/${coco.images[0]!.file_name}`;
    const files = [good, 'pipe.png', 'data', '/dev/zero', '../elsewhere.png', 'zero.png'];
    await writeFile(join(root, 'odd.jsonl'), files.map((file) => JSON.stringify({ file })).join('\n') + '\n');
    const r = await embedImages({ manifest: join(root, 'odd.jsonl'), out: join(root, 'odd.npy'), embedder: { kind: 'features' }, workers: 0 });
    expect(r.rows).toBe(1);
    const failed = await lines(join(root, 'odd.failed.jsonl'));
    const reason = (f: string) => failed.find((l) => l.file === f || l.file.endsWith(f.replace(/^\.\.\//, '')))?.reason as string;
    expect(reason('pipe.png')).toMatch(/^\[E_IO\] .* is not a regular file/);
    expect(reason('data')).toMatch(/^\[E_IO\] .* is not a regular file/);
    expect(failed.map((l) => l.reason).filter((x: string) => /outside/.test(x)).length).toBe(3);
    expect(failed.length).toBe(5);
  }, 20_000);
});
