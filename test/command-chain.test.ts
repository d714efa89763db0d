/**
 * The stand-alone commands chained from the very start, each reading the
 * previous one's output unchanged: genaug plan (no --strategy: X-Paste
 * templates) → genaug generate (a local A1111 server drawing one coloured
 * rectangle on white per request) → genaug annotate (generate's manifest) →
 * genaug embed (generate's manifest as it is, and the annotated instances) →
 * genaug score against-real + score clis-i (generate's manifest) → genaug
 * filter → genaug pool → genaug paste.
 *
 * The oracle is the server's own drawing: every generated image is a known
 * rectangle on white, so annotate must keep every one with exactly that box,
 * and every instance that reaches the pasted dataset is one of them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { run } from '../ts/cli/main.js';
import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { tinyClipWeights, writeClipFolder } from './clip-helpers.js';
import { a1111Server, type TestServer } from './generate-servers.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-command-chain-');
const jsonl = async (p: string) => (await readFile(p, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);

/** The tight box of the non-white pixels of a generated image (the rectangle the server drew). */
async function drawnBox(path: string): Promise<[number, number, number, number]> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  let x0 = info.width, y0 = info.height, x1 = -1, y1 = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const o = (y * info.width + x) * info.channels;
      if (data[o] !== 255 || data[o + 1] !== 255 || data[o + 2] !== 255) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  return [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

describe('plan → generate → annotate → embed → score → filter → pool → paste, as separate commands', () => {
  let server: TestServer;
  let dir: string;
  const genaug = async (...args: string[]) => {
    // Each command's own output stays out of the test log; the exit code is what the chain checks.
    const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const quietErr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      return await run(['node', 'genaug', ...args]);
    } finally {
      quiet.mockRestore();
      quietErr.mockRestore();
    }
  };

  beforeAll(async () => {
    server = await a1111Server();
    dir = tmp.dir();
    await writeRealDataset({ out: join(dir, 'data'), seed: 4, images: 8, width: 96, height: 72 });
  });
  afterAll(() => server.close());

  it('each command reads the one before unchanged and the chain ends in a pasted dataset', async () => {
    const d = (...p: string[]) => join(dir, ...p);
    const coco = d('data', 'annotations.json');
    expect(await genaug('plan', '--coco', coco, '--out', d('plan.jsonl'), '--candidates', '2', '--width', '64', '--height', '64', '-q')).toBe(0);
    const plan = await jsonl(d('plan.jsonl'));
    const classes = (JSON.parse(await readFile(coco, 'utf8')) as { categories: Array<{ id: number; name: string }> }).categories.sort((a, b) => a.id - b.id).map((c) => c.name);
    // No --strategy: X-Paste's template for every class.
    expect(plan.map((j) => j.prompt)).toEqual(classes.map((c) => `a photo of a single ${c.replace(/_/g, ' ')}`));

    expect(await genaug('generate', '--plan', d('plan.jsonl'), '--backend', `a1111=${server.url}`, '--out', d('gen'), '-q')).toBe(0);
    const manifest = await jsonl(d('gen', 'manifest.jsonl'));
    expect(manifest).toHaveLength(2 * classes.length);
    // Files are named relative to gen/images.
    for (const m of manifest) expect(m.file).not.toContain('/');

    expect(await genaug('annotate', '--images', d('gen', 'images'), '--manifest', d('gen', 'manifest.jsonl'), '--out', d('ann'), '--workers', '0', '-q')).toBe(0);
    const annotated = new Map((await jsonl(d('ann', 'progress.jsonl'))).map((l) => [l.file, l]));
    for (const m of manifest) {
      const a = annotated.get(m.file);
      expect(a?.status, m.file).toBe('kept');
      expect(a?.category).toBe(m.category);
      expect(a?.bbox).toEqual(await drawnBox(d('gen', 'images', m.file)));
    }

    // embed reads generate's manifest as written (file relative to images/, class in `category`), and names each row
    // by the manifest's `file`: the id the scores, the filter and annotate use for the same image.
    expect(await genaug('embed', '--features', '--manifest', d('gen', 'manifest.jsonl'), '--out', d('emb', 'whole.npy'), '-q')).toBe(0);
    const whole = await jsonl(d('emb', 'whole.index.jsonl'));
    expect(whole.map((r) => r.file).sort()).toEqual(manifest.map((m) => m.file).sort());

    const list = classes.join(',');
    expect(await genaug('embed', '--features', '--coco', coco, '--images', d('data', 'images'), '--instances', 'crop', '--categories', list, '--out', d('emb', 'real.npy'), '--workers', '0', '-q')).toBe(0);
    expect(await genaug('embed', '--features', '--coco', d('ann', 'annotations.json'), '--images', d('gen', 'images'), '--instances', 'masked', '--order', d('gen', 'manifest.jsonl'), '--categories', list, '--out', d('emb', 'gen.npy'), '--workers', '0', '-q')).toBe(0);
    expect(await genaug('score', 'against-real', '--gen', d('emb', 'gen.npy'), '--real', d('emb', 'real.npy'), '--categories', list, '--table', d('score', 'scores.jsonl'))).toBe(0);
    // score clis-i reads generate's manifest unchanged too, and its columns join the same rows (the same ids).
    const clip = await writeClipFolder(d('clip'), 'split', tinyClipWeights());
    expect(await genaug('score', 'clis-i', '--mode', 'clip', '--model', clip, '--plan', d('plan.jsonl'), '--manifest', d('gen', 'manifest.jsonl'), '--table', d('score', 'scores.jsonl'))).toBe(0);
    const scores = await jsonl(d('score', 'scores.jsonl'));
    expect(scores.map((s) => s.id).sort()).toEqual(manifest.map((m) => m.file).sort());
    for (const s of scores) {
      expect(s, s.id).toHaveProperty('inter_sim_mean'); // null for a class without real crops
      expect(typeof s.clis_i, s.id).toBe('number');
    }

    // The area rule alone (every drawn rectangle is 9 % to 36 % of its image): everything is kept.
    expect(await genaug('filter', '--scores', d('score', 'scores.jsonl'), '--rules', 'area', '--out', d('filter', 'kept.jsonl'), '--rejected', d('filter', 'rejected.jsonl'))).toBe(0);
    const kept = await jsonl(d('filter', 'kept.jsonl'));
    expect(kept).toHaveLength(manifest.length);

    expect(await genaug('pool', '--annotated', d('ann'), '--kept', d('filter', 'kept.jsonl'), '--scores', d('score', 'scores.jsonl'), '--coco', coco, '--out', d('pool'))).toBe(0);
    // The pool is every kept instance, found by the generated file's name through annotate's index.
    const pool = JSON.parse(await readFile(d('pool', 'index.json'), 'utf8')) as { categories: Record<string, Array<{ source: string }>> };
    expect(Object.values(pool.categories).flat().map((x) => x.source).sort()).toEqual(manifest.map((m) => m.file).sort());
    expect(await genaug('paste', '--coco', coco, '--images', d('data', 'images'), '--pool', d('pool'), '--priors', d('pool', 'size_prior.json'), '--out', d('paste'), '--seed', '1', '--copies', '2', '--workers', '0', '-q')).toBe(0);
    const out = JSON.parse(await readFile(d('paste', 'annotations.json'), 'utf8')) as { images: unknown[]; annotations: Array<{ instance_source?: string; [k: string]: unknown }> };
    expect(out.images).toHaveLength(16);
    const log = await jsonl(d('paste', 'log.jsonl'));
    expect(log.filter((l) => l.kind === 'image-failed')).toEqual([]);
    const pasted = out.annotations.filter((a) => a.instance_source === 'pasted');
    expect(pasted.length).toBeGreaterThan(0);
    const realIds = new Set((JSON.parse(await readFile(coco, 'utf8')) as { categories: Array<{ id: number }> }).categories.map((c) => c.id));
    for (const a of pasted) expect(realIds.has(a.category_id as number)).toBe(true);
  });
});
