/**
 * The roots rule (io/roots.ts) where data names files by absolute path or `..`: an X-Paste pool index, a
 * generate plan's source_image, and the COCO file_names the caption and ambiguity strategies read. Each is
 * refused outside its declared folder (with the reason recorded, the batch going on) and read once the
 * folder holding the files is declared (--pool-root, --images).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { readInstancePool } from '../ts/augment/pool.js';
import { parseCoco } from '../ts/io/coco.js';
import { ChatClient } from '../ts/llm/chat.js';
import { AnswerCache } from '../ts/plan/core.js';
import { captionImages, CaptionStore, readableImagePath } from '../ts/plan/captions.js';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-roots-');
const BIN = join(import.meta.dirname, '..', 'bin', 'genaug.js');

/** An opaque RGBA crop: a w x h rectangle of one colour. */
async function crop(path: string, w: number, h: number): Promise<void> {
  await sharp(Buffer.alloc(w * h * 4, 200), { raw: { width: w, height: h, channels: 4 } }).png().toFile(path);
}

describe('X-Paste pool index', () => {
  it('skips crops outside the index folder as outside-root (absolute, .., a link out) and reads them with a declared root', async () => {
    const dir = tmp.fresh('pool');
    const poolDir = join(dir, 'pool');
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(poolDir, { recursive: true });
    await mkdir(elsewhere, { recursive: true });
    await crop(join(poolDir, 'in.png'), 10, 6);
    await crop(join(elsewhere, 'abs.png'), 8, 8);
    await crop(join(elsewhere, 'up.png'), 7, 5);
    await crop(join(elsewhere, 'linked.png'), 9, 3);
    await symlink(join(elsewhere, 'linked.png'), join(poolDir, 'link.png'));
    const index = join(poolDir, 'pool.json');
    await writeFile(index, JSON.stringify({ 0: ['*in.png', `*${join(elsewhere, 'abs.png')}`, '*../elsewhere/up.png', '*link.png'] }));
    const cats = [{ id: 5, name: 'cat' }];

    const strict = await readInstancePool(index, cats);
    expect(strict.categories.map((c) => c.instances.map((i) => [i.width, i.height]))).toEqual([[[10, 6]]]);
    const outside = strict.skipped.filter((k) => k.kind === 'outside-root');
    expect(outside.map((k) => k.file)).toEqual([join(elsewhere, 'abs.png'), join(poolDir, '../elsewhere/up.png'), join(poolDir, 'link.png')]);
    for (const k of outside) expect(k.message).toMatch(/outside .*--pool-root/);

    // The folder holding them all declared: every crop is read, in index order.
    const declared = await readInstancePool(index, cats, { root: dir });
    expect(declared.skipped).toEqual([]);
    expect(declared.categories[0]!.instances.map((i) => [i.width, i.height])).toEqual([[10, 6], [8, 8], [7, 5], [9, 3]]);
  });

  it('genaug paste --pool-root reads an index whose crops are named by absolute path; without it they are logged and the pool is empty', async () => {
    const dir = tmp.fresh('paste');
    const images = join(dir, 'images');
    const crops = join(dir, 'crops');
    const poolDir = join(dir, 'pool');
    for (const d of [images, crops, poolDir]) await mkdir(d, { recursive: true });
    await sharp(Buffer.alloc(64 * 48 * 3, 90), { raw: { width: 64, height: 48, channels: 3 } }).png().toFile(join(images, 'a.png'));
    await crop(join(crops, 'c.png'), 12, 12);
    const coco = join(dir, 'train.json');
    await writeFile(coco, JSON.stringify({ images: [{ id: 1, file_name: 'a.png', width: 64, height: 48 }], annotations: [], categories: [{ id: 1, name: 'cat' }] }));
    await writeFile(join(poolDir, 'pool.json'), JSON.stringify({ 0: [`*${join(crops, 'c.png')}`] }));
    const args = ['paste', '--coco', coco, '--images', images, '--pool', join(poolDir, 'pool.json'), '--random-scale', '--seed', '3', '--workers', '0', '-q'];

    const refused = spawnSync(process.execPath, [BIN, ...args, '--out', join(dir, 'out1')], { encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/\[E_FORMAT\]: instance pool .* has no usable instance \(first problem: crop .*c\.png is outside .*--pool-root\)/);

    const ok = spawnSync(process.execPath, [BIN, ...args, '--out', join(dir, 'out2'), '--pool-root', crops], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const out = JSON.parse(await readFile(join(dir, 'out2', 'annotations.json'), 'utf8')) as { annotations: Array<{ category_id: number }> };
    expect(out.annotations.length).toBeGreaterThan(0);
    expect(new Set(out.annotations.map((a) => a.category_id))).toEqual(new Set([1]));

    // The stream takes the same options: refused without --pool-root, samples with it.
    const streamArgs = args.filter((a) => a !== '--workers' && a !== '0');
    const noRoot = spawnSync(process.execPath, [BIN, ...streamArgs, '--stream', '--epochs', '1'], { encoding: 'buffer' });
    expect(noRoot.status).toBe(1);
    expect(noRoot.stderr.toString()).toMatch(/no usable instance \(first problem: crop .*c\.png is outside/);
    const streamed = spawnSync(process.execPath, [BIN, ...streamArgs, '--stream', '--epochs', '1', '--pool-root', crops], { encoding: 'buffer' });
    expect(streamed.status, streamed.stderr.toString()).toBe(0);
    // A tar stream: 512-byte blocks, the first header naming a sample member.
    expect(streamed.stdout.length % 512).toBe(0);
    expect(streamed.stdout.subarray(0, 100).toString('latin1')).toMatch(/\.(jpg|json)\0/);
  });
});

describe('COCO file_names read by the caption and ambiguity strategies', () => {
  it('reads images inside --images, records one named outside (absolute or ..) as a failure, and asks the VLM only for the good one', async () => {
    const dir = tmp.fresh('captions');
    const images = join(dir, 'images');
    await mkdir(images, { recursive: true });
    const png = await sharp(Buffer.alloc(8 * 8 * 3, 50), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    await writeFile(join(images, 'in.png'), png);
    await writeFile(join(dir, 'secret.png'), png);
    const coco = parseCoco({
      images: [
        { id: 1, file_name: 'in.png', width: 8, height: 8 },
        { id: 2, file_name: join(dir, 'secret.png'), width: 8, height: 8 },
        { id: 3, file_name: '../secret.png', width: 8, height: 8 },
      ],
      annotations: [],
      categories: [{ id: 1, name: 'cat' }],
    });
    expect(await readableImagePath(coco.imageById.get(1)!, images)).toBe(join(images, 'in.png'));
    await expect(readableImagePath(coco.imageById.get(2)!, images)).rejects.toMatchObject({ code: 'E_IO' });

    // A VLM that answers a caption for whatever image it is sent, counting the calls.
    const asked: string[] = [];
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        asked.push(body.length > 0 ? 'image' : 'empty');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ model: 'stub-vlm', choices: [{ message: { role: 'assistant', content: JSON.stringify({ caption: 'a grey square' }) } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const store = await CaptionStore.open(join(dir, 'captions.jsonl'));
      const failed = await captionImages(coco, [1, 2, 3], { store, imageRoot: images, vlm: { client: new ChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'stub-vlm', retries: 0 }), cache: AnswerCache.memory() } });
      expect([...failed.keys()]).toEqual([2, 3]);
      for (const reason of failed.values()) expect(reason).toMatch(/outside .*files named by data must lie inside their folder/);
      expect(asked).toEqual(['image']);
      expect(store.get(1)?.caption).toBe('a grey square');
    } finally {
      server.close();
    }
  });
});
