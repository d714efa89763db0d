/**
 * genaug export classification: the ImageFolder tree walked the way
 * torchvision's ImageFolder walks it, and the WebDataset shards read by tar(1)
 * and Python's tarfile, both against the source images and classes.txt.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { run } from '../ts/cli/main.js';
import { classFolder, exportClassification } from '../ts/augment/classification.js';
import { expectCode, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-classification-');

async function png(path: string, seed: number): Promise<void> {
  const px = Buffer.alloc(6 * 5 * 3, seed & 0xff);
  px[seed % px.length] = 255 - (seed & 0xff);
  writeFileSync(path, await sharp(px, { raw: { width: 6, height: 5, channels: 3 } }).png().toBuffer());
}

/** A folder as genaug generate leaves it (images/ + manifest.jsonl with file, path, category) and a real set. */
async function fixture(dir: string) {
  mkdirSync(join(dir, 'gen', 'images'), { recursive: true });
  mkdirSync(join(dir, 'real'), { recursive: true });
  const classes = ['dog', 'cat', 'sea lion', 'Zebra'];
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const file = `g${String(i).padStart(2, '0')}.png`;
    await png(join(dir, 'gen', 'images', file), i + 1);
    lines.push(JSON.stringify({ file, path: `images/${file}`, category: classes[i % 4], prompt: `a photo of a ${classes[i % 4]} ${i}` }));
  }
  writeFileSync(join(dir, 'gen', 'manifest.jsonl'), lines.join('\n') + '\n');
  // Kept: all but g01 and g06.
  writeFileSync(join(dir, 'kept.jsonl'), [0, 2, 3, 4, 5, 7, 8, 9, 10, 11].map((i) => JSON.stringify({ id: `g${String(i).padStart(2, '0')}.png` })).join('\n') + '\n');
  // Real images, one with the same file name as a generated one of its class.
  const real: string[] = [];
  for (const [i, c] of [[0, 'dog'], [1, 'cat'], [2, 'dog']] as const) {
    const file = i === 2 ? 'g00.png' : `r${i}.png`;
    await png(join(dir, 'real', file), 100 + i);
    real.push(JSON.stringify({ file, label: c }));
  }
  writeFileSync(join(dir, 'real', 'real.jsonl'), real.join('\n') + '\n');
  return classes;
}

const cli = (...args: string[]) => run(['node', 'genaug', 'export', 'classification', ...args]);

describe('genaug export classification', () => {
  it('writes an ImageFolder tree and WebDataset shards that agree with classes.txt and hold the source bytes', async () => {
    const dir = tmp.fresh('set');
    await fixture(dir);
    const out = join(dir, 'out');
    expect(await cli('--manifest', join(dir, 'gen', 'manifest.jsonl'), '--kept', join(dir, 'kept.jsonl'), '--real', join(dir, 'real', 'real.jsonl'), '--shard-size', '5', '--out', out)).toBe(0);
    const classes = readFileSync(join(out, 'classes.txt'), 'utf8').trimEnd().split('\n');
    // torchvision's find_classes: the folder names, sorted by code point ('Z' < 'c').
    const train = join(out, 'imagefolder', 'train');
    const folders = readdirSync(train).sort();
    expect(folders).toEqual(['Zebra', 'cat', 'dog', 'sea lion']);
    expect(classes).toEqual(folders);
    // Every file of every folder, as (class, sha256 of the bytes): the same multiset as the sources (generated kept + real).
    const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const want: string[] = [];
    const gen = readFileSync(join(dir, 'gen', 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; category: string });
    const kept = new Set(readFileSync(join(dir, 'kept.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id));
    for (const g of gen) if (kept.has(g.file)) want.push(`${g.category} ${h(readFileSync(join(dir, 'gen', 'images', g.file)))}`);
    for (const r of readFileSync(join(dir, 'real', 'real.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; label: string })) want.push(`${r.label} ${h(readFileSync(join(dir, 'real', r.file)))}`);
    const got: string[] = [];
    for (const f of folders) for (const file of readdirSync(join(train, f))) got.push(`${f} ${h(readFileSync(join(train, f, file)))}`);
    expect(got.sort()).toEqual(want.sort());
    expect(got).toHaveLength(13);
    // The two files named g00.png in dog/ (one generated, one real) both survive under distinct names.
    expect(readdirSync(join(train, 'dog')).filter((x) => x.startsWith('g00')).length).toBe(2);
    // WebDataset: tar(1) lists the members; each sample is ext + cls + json + txt, cls = the index of txt in classes.txt.
    const shards = readdirSync(join(out, 'webdataset')).sort();
    expect(shards).toEqual(['000000.tar', '000001.tar', '000002.tar']);
    let samples = 0;
    for (const s of shards) {
      const x = join(dir, `x-${s}`);
      mkdirSync(x);
      execFileSync('tar', ['-xf', join(out, 'webdataset', s), '-C', x]);
      const keys = [...new Set(readdirSync(x).map((m) => m.slice(0, m.indexOf('.'))))];
      for (const k of keys) {
        samples++;
        expect(readdirSync(x).filter((m) => m.startsWith(`${k}.`)).sort()).toEqual([`${k}.cls`, `${k}.json`, `${k}.png`, `${k}.txt`]);
        const name = readFileSync(join(x, `${k}.txt`), 'utf8');
        expect(Number(readFileSync(join(x, `${k}.cls`), 'utf8'))).toBe(classes.indexOf(name));
        const j = JSON.parse(readFileSync(join(x, `${k}.json`), 'utf8')) as { file: string; class: string; origin: string };
        expect(j.class).toBe(name);
        // The same bytes as the ImageFolder copy of that file.
        expect(Buffer.compare(readFileSync(join(x, `${k}.png`)), readFileSync(join(train, classFolder(name), j.file)))).toBe(0);
      }
    }
    expect(samples).toBe(13);
    // Python's tarfile reads the shards as a training loop would (skipped without python3).
    const py = spawnSync('/usr/bin/python3', ['-c', `
import sys, tarfile, glob, collections
n = collections.Counter()
for p in sorted(glob.glob(sys.argv[1] + '/*.tar')):
    with tarfile.open(p) as t:
        for m in t:
            if m.name.endswith('.cls'):
                n[int(t.extractfile(m).read())] += 1
print(','.join(str(n[i]) for i in range(4)))
`, join(out, 'webdataset')], { encoding: 'utf8' });
    if (py.status === 0) {
      const perClass = classes.map((c) => readdirSync(join(train, classFolder(c))).length);
      expect(py.stdout.trim()).toBe(perClass.join(','));
    } else console.warn(`classification.test.ts: python3 tarfile check skipped (${py.error?.message ?? py.stderr})`);
    // Same inputs, same bytes.
    const again = join(dir, 'again');
    expect(await cli('--manifest', join(dir, 'gen', 'manifest.jsonl'), '--kept', join(dir, 'kept.jsonl'), '--real', join(dir, 'real', 'real.jsonl'), '--shard-size', '5', '--out', again)).toBe(0);
    for (const s of shards) expect(readFileSync(join(again, 'webdataset', s)).equals(readFileSync(join(out, 'webdataset', s)))).toBe(true);
  });

  it('refuses an empty set, classes that would share a folder and images outside their folder; one format alone', async () => {
    const dir = tmp.fresh('bad');
    await fixture(dir);
    await expectCode(exportClassification({ items: [], out: join(dir, 'none') }), 'E_EMPTY', /would be empty/);
    const a = join(dir, 'gen', 'images', 'g00.png');
    await expectCode(exportClassification({ items: [{ path: a, label: 'a/b', origin: 'x', id: '1' }, { path: a, label: 'a_b', origin: 'x', id: '2' }], out: join(dir, 'clash') }), 'E_ARGUMENT', /share the folder 'a_b'/);
    expect(classFolder('..')).toBe('_.');
    expect(classFolder('.hidden')).toBe('_hidden');
    writeFileSync(join(dir, 'gen', 'escape.jsonl'), JSON.stringify({ file: '../../real/r0.png', category: 'dog' }) + '\n');
    expect(await cli('--manifest', join(dir, 'gen', 'escape.jsonl'), '--images', join(dir, 'gen', 'images'), '--out', join(dir, 'esc'))).toBe(1);
    expect(existsSync(join(dir, 'esc', 'classes.txt'))).toBe(false);
    expect(await cli('--manifest', join(dir, 'gen', 'manifest.jsonl'), '--format', 'imagefolder', '--out', join(dir, 'if'))).toBe(0);
    expect(existsSync(join(dir, 'if', 'webdataset'))).toBe(false);
    expect(readdirSync(join(dir, 'if', 'imagefolder', 'train', 'dog'))).toHaveLength(3);
    // A bad option is a usage error (exit 2), as everywhere.
    expect(await cli('--manifest', join(dir, 'gen', 'manifest.jsonl'), '--format', 'imagefolder,coco', '--out', join(dir, 'x'))).toBe(2);
  });
});
