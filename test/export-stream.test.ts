/**
 * `genaug export classification --stream`: the classification set as a WebDataset tar stream on stdout. The oracle
 * is the offline export of the same manifest (its shards' samples, byte for byte) read by a plain tar parser written
 * here from the ustar layout, and by Python's tarfile in stream mode when python3 is present.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { classificationStream } from '../ts/augment/classification.js';
import { streamOrder } from '../ts/augment/stream.js';
import { tarSamples as samples, untar } from './helpers.js';

const bin = join(__dirname, '..', 'bin', 'genaug.js');
let dir: string;
let manifest: string;

const stream = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [bin, 'export', 'classification', '--manifest', manifest, '--stream', '-q', ...args], { maxBuffer: 1 << 28, env: { ...process.env, ...env } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genaug-export-stream-'));
  await mkdir(join(dir, 'images'));
  const lines: string[] = [];
  const classes = ['cat', 'dog', 'zebra'];
  for (let i = 0; i < 10; i++) {
    const file = `img${i}.png`;
    await sharp({ create: { width: 8 + i, height: 6, channels: 3, background: { r: 20 * i, g: 7 * i, b: 255 - 9 * i } } }).png().toFile(join(dir, 'images', file));
    lines.push(JSON.stringify({ file, path: `images/${file}`, category: classes[i % 3], prompt: `a photo of a ${classes[i % 3]}` }));
  }
  manifest = join(dir, 'manifest.jsonl');
  await writeFile(manifest, lines.join('\n') + '\n');
  execFileSync(process.execPath, [bin, 'export', 'classification', '--manifest', manifest, '--format', 'webdataset', '--out', join(dir, 'offline')]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function offlineSamples(): Promise<Map<string, Record<string, Buffer>>> {
  const wd = join(dir, 'offline', 'webdataset');
  const members: Array<[string, Buffer]> = [];
  for (const f of (await readdir(wd)).sort()) members.push(...untar(await readFile(join(wd, f))));
  return samples(members);
}

describe('genaug export classification --stream', () => {
  it('one epoch in file order is the offline shards, sample for sample and byte for byte (key + _0)', async () => {
    const r = stream(['--epochs', '1', '--no-shuffle']);
    expect(r.status, r.stderr.toString()).toBe(0);
    const got = samples(untar(r.stdout));
    const want = await offlineSamples();
    expect([...got.keys()]).toEqual([...want.keys()].map((k) => `${k}_0`));
    for (const [k, fields] of want) expect(got.get(`${k}_0`)).toEqual(fields);
    // Every sample: the image, its class index (the line of classes.txt), the class name, the json.
    const classes = (await readFile(join(dir, 'offline', 'classes.txt'), 'utf8')).trim().split('\n');
    for (const f of got.values()) {
      expect(Object.keys(f).sort()).toEqual(['cls', 'json', 'png', 'txt']);
      expect(classes[Number(f.cls!.toString())]).toBe(f.txt!.toString());
    }
    // The stream ends with the tar end-of-archive blocks, as a finite tar must.
    expect(r.stdout.length % 10240).toBe(0);
  });

  it('shards I/N (or WORKER/NUM_WORKERS) are disjoint and together the whole shuffled stream; the same seed gives the same bytes', () => {
    const whole = stream(['--epochs', '2', '--seed', '5']);
    expect(whole.status).toBe(0);
    const all = samples(untar(whole.stdout));
    expect(all.size).toBe(20);
    // Epoch e holds every image once.
    for (const e of [0, 1]) expect(new Set([...all.keys()].filter((k) => k.endsWith(`_${e}`)).map((k) => k.slice(0, -2))).size).toBe(10);
    const parts = [0, 1, 2].map((i) => samples(untar(stream(['--epochs', '2', '--seed', '5', '--shard', `${i}/3`]).stdout)));
    const keys = parts.flatMap((p) => [...p.keys()]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(keys)).toEqual(new Set(all.keys()));
    // Sample g of the whole stream is in shard g mod 3, in order.
    const order = [...all.keys()];
    for (const i of [0, 1, 2]) expect([...parts[i]!.keys()]).toEqual(order.filter((_, g) => g % 3 === i));
    for (const p of parts) for (const [k, f] of p) expect(f).toEqual(all.get(k));
    const env = samples(untar(stream(['--epochs', '2', '--seed', '5'], { WORKER: '1', NUM_WORKERS: '3' }).stdout));
    expect([...env.keys()]).toEqual([...parts[1]!.keys()]);
    expect(Buffer.compare(stream(['--epochs', '2', '--seed', '5']).stdout, whole.stdout)).toBe(0);
    // Another seed, another order.
    expect([...samples(untar(stream(['--epochs', '2', '--seed', '6']).stdout)).keys()]).not.toEqual(order);
  });

  it('the order is streamOrder: a shuffle per epoch, the same whatever the shard count', () => {
    const whole = [...streamOrder(7, { seed: 3, epochs: 3 })];
    expect(whole.map(([g]) => g)).toEqual([...Array(21).keys()]);
    for (const e of [0, 1, 2]) expect(whole.filter(([, ep]) => ep === e).map(([, , i]) => i).sort()).toEqual([...Array(7).keys()]);
    const two = [0, 1].flatMap((i) => [...streamOrder(7, { seed: 3, epochs: 3, shard: { index: i, count: 2 } })]).sort((a, b) => a[0] - b[0]);
    expect(two).toEqual(whole);
    expect([...streamOrder(0, { seed: 1, epochs: 2 })]).toEqual([]);
    expect(() => [...streamOrder(3, { seed: 1, epochs: 0 })]).toThrow(/epochs/);
  });

  it('an endless stream whose reader stops early exits 0', async () => {
    const child = spawn(process.execPath, [bin, 'export', 'classification', '--manifest', manifest, '--stream', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = 0;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 50_000) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(0);
  });

  it('an image that cannot be read is left out and said; every image unreadable is E_EMPTY', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, (await readFile(manifest, 'utf8')) + JSON.stringify({ file: 'gone.png', path: 'images/gone.png', category: 'cat' }) + '\n');
    // A missing file: left out of the stream with a line on stderr naming it; the other samples all come.
    const r = spawnSync(process.execPath, [bin, 'export', 'classification', '--manifest', bad, '--stream', '--epochs', '1'], { maxBuffer: 1 << 28 });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toMatch(/skipped .*gone\.png \(epoch 0\)/);
    expect(samples(untar(r.stdout)).size).toBe(10);
    const items = [{ path: join(dir, 'images', 'nope.png'), label: 'cat', origin: 'generated', id: 'x' }];
    await expect(async () => {
      for await (const s of classificationStream({ items, seed: 0, epochs: 1 })) void s;
    }).rejects.toMatchObject({ code: 'E_EMPTY' });
  });

  it('folder-only and stream-only options are refused in the other mode', () => {
    const a = spawnSync(process.execPath, [bin, 'export', 'classification', '--manifest', manifest, '--stream', '--out', join(dir, 'x')]);
    expect(a.status).not.toBe(0);
    expect(a.stderr.toString()).toMatch(/E_ARGUMENT.*--out is for a dataset folder/);
    const b = spawnSync(process.execPath, [bin, 'export', 'classification', '--manifest', manifest, '--out', join(dir, 'y'), '--epochs', '2']);
    expect(b.stderr.toString()).toMatch(/E_ARGUMENT.*--epochs is for --stream/);
    const c = spawnSync(process.execPath, [bin, 'export', 'classification', '--manifest', manifest]);
    expect(c.stderr.toString()).toMatch(/--out <dir>' not specified/);
  });

  it("Python's tarfile reads the stream in stream mode (python3 present)", () => {
    if (!existsSync('/usr/bin/python3')) {
      console.log('python3 not installed: the tarfile check is left to the JS tar reader above');
      return;
    }
    const py = `import json, subprocess, sys, tarfile
p = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.PIPE)
names = []
with tarfile.open(fileobj=p.stdout, mode="r|") as t:
    for m in t:
        names.append((m.name, len(t.extractfile(m).read())))
print(json.dumps({"rc": p.wait(), "names": names}))`;
    const cmd = [process.execPath, bin, 'export', 'classification', '--manifest', manifest, '--stream', '--epochs', '1', '--no-shuffle', '-q'];
    const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, JSON.stringify(cmd)]).toString()) as { rc: number; names: Array<[string, number]> };
    const js = untar(stream(['--epochs', '1', '--no-shuffle']).stdout);
    expect(out.rc).toBe(0);
    expect(out.names).toEqual(js.map(([n, b]) => [n, b.length]));
  });
});
