/**
 * Render once, write many: `paste` with a list of formats composites and
 * encodes each item once and writes every OUT/<format>/ from that render, each
 * folder the same bytes as a run of that format alone; it resumes (also after
 * a kill between two folders' journal lines) to the same bytes.
 *
 * The compositor and the image encoder are observed through pass-through
 * wrappers (the real functions run; a counter notes each call), on the main
 * thread (workers: 0).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it, vi } from 'vitest';

import { paste, resolvePasteFormats, type PasteFormat, type PasteOptions } from '../ts/augment/paste.js';
import { expectCode, expectSameTree, tempFolder, tree } from './helpers.js';
import { buildPasteFixture, type PasteFixture, fixtureOptions } from './paste-fixture.js';

const calls = vi.hoisted(() => ({ composite: 0, encode: 0 }));

vi.mock('../ts/kernels/composite.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../ts/kernels/composite.js')>();
  return {
    ...m,
    compositeSync: (...args: Parameters<typeof m.compositeSync>) => {
      calls.composite++;
      return m.compositeSync(...args);
    },
  };
});

// Every sharp instance's .jpeg() and .png() (the output encoders) is counted; decoding goes through .raw().
vi.mock('sharp', async (importOriginal) => {
  const real = ((await importOriginal()) as { default: (...a: unknown[]) => Record<string, (...a: unknown[]) => unknown> }).default;
  const counted = new Proxy(real, {
    apply(target, self, args) {
      const inst = Reflect.apply(target, self, args) as Record<string, (...a: unknown[]) => unknown>;
      for (const name of ['jpeg', 'png']) {
        const f = inst[name]!.bind(inst);
        inst[name] = (...a: unknown[]) => {
          calls.encode++;
          return f(...a);
        };
      }
      return inst;
    },
  });
  return { default: counted };
});

const tmp = tempFolder('genaug-paste-formats-');
let fx: PasteFixture;

beforeAll(async () => {
  fx = await buildPasteFixture(join(tmp.dir(), 'fx'));
});

const ALL: PasteFormat[] = ['coco', 'webdataset', 'yolo'];

// 4 real images x 3 copies = 12 items: 9 render, 3 fail (d.png is missing); b has a crowd region, c is box-only.
const base = (out: string, extra: Partial<PasteOptions> = {}): PasteOptions => fixtureOptions(fx, out, { shardSize: 4, ...extra });

const lines = async (path: string) => (await readFile(path, 'utf8')).trim().split('\n');

/** Each format alone into DIR/<format>, then the folder moved to DIR-single (so DIR is free and data.yaml's path is DIR's). */
async function singleRuns(dir: string): Promise<string> {
  for (const format of ALL) await paste(base(join(dir, format), { format }));
  await rename(dir, `${dir}-single`);
  return `${dir}-single`;
}

describe('paste: several formats from one render', () => {
  it('writes OUT/coco, OUT/webdataset and OUT/yolo byte-identical to three single-format runs, compositing and encoding each image once', async () => {
    const out = tmp.fresh('three');
    calls.composite = calls.encode = 0;
    const single = await singleRuns(out);
    expect([calls.composite, calls.encode]).toEqual([27, 27]);

    calls.composite = calls.encode = 0;
    const s = await paste(base(out, { format: ['yolo', 'coco', 'webdataset'] }));
    // 12 items rendered; the 9 whose image decodes are composited and encoded once each, for all three folders.
    expect(s.rendered).toBe(12);
    expect([calls.composite, calls.encode]).toEqual([9, 9]);
    expect({ items: s.items, ok: s.ok, failed: s.failed }).toEqual({ items: 12, ok: 9, failed: 3 });
    expect(Object.keys(s.formats)).toEqual(ALL);
    for (const f of ALL) expect(s.formats[f]!.out).toBe(join(out, f));
    expect(s.outputs).toEqual(ALL.flatMap((f) => s.formats[f]!.outputs));
    expect(s.formats.webdataset!.outputs).toContain(join(out, 'webdataset', 'shards', '000002.tar'));

    // Every file, journals and run.json included (the main thread renders in item order, so even progress.jsonl matches).
    for (const f of ALL) expectSameTree(await tree(join(single, f), []), await tree(join(out, f), []));
    expect((await readdir(out)).sort()).toEqual(['coco', 'run.json', 'webdataset', 'yolo']);
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')).formats).toEqual(ALL);
    // The shards carry the very bytes of images/ (one encode feeds both).
    const member = execFileSync('tar', ['-xOf', join(out, 'webdataset', 'shards', '000000.tar'), 'a_0.jpg']);
    expect(Buffer.compare(member, await readFile(join(out, 'coco', 'images', 'a_0.jpg')))).toBe(0);

    // The same with worker threads (dist/workers/paste.js); their journals are in finishing order, so compare them as sets.
    await rename(out, `${out}-w0`);
    await paste(base(out, { format: ALL, workers: 2 }));
    for (const f of ALL) {
      expectSameTree(await tree(join(single, f)), await tree(join(out, f)));
      expect((await lines(join(out, f, 'progress.jsonl'))).sort()).toEqual((await lines(join(single, f, 'progress.jsonl'))).sort());
    }
  });

  it('resumes a run stopped mid-way, and one killed between two folders’ journal lines, to the same bytes; refuses another format list', async () => {
    const out = tmp.fresh('resume');
    await paste(base(out, { format: ALL }));
    const full = `${out}-full`;
    await rename(out, full);

    const ac = new AbortController();
    await expectCode(paste(base(out, { format: ALL, signal: ac.signal, onProgress: (done) => done >= 5 && ac.abort() })), 'E_ABORTED', /run it again to resume/);
    for (const f of ALL) expect(await lines(join(out, f, 'progress.jsonl'))).toHaveLength(5);
    expect(existsSync(join(out, 'coco', 'annotations.json')) || existsSync(join(out, 'webdataset', 'shards')) || existsSync(join(out, 'yolo', 'data.yaml'))).toBe(false);
    // As if killed after the 5th item's COCO line: its image files are written, the other two journals lack it.
    for (const f of ['webdataset', 'yolo']) {
      const path = join(out, f, 'progress.jsonl');
      await writeFile(path, (await lines(path)).slice(0, 4).map((l) => l + '\n').join(''));
    }

    // Another format list, or one format, in this folder is refused before anything is written.
    const before = await tree(out, []);
    await expectCode(paste(base(out, { format: ['coco', 'webdataset'] })), 'E_ARGUMENT', /other settings/);
    await expectCode(paste(base(out, { format: 'coco' })), 'E_ARGUMENT', /other settings/);
    await expectCode(paste(base(join(out, 'coco'), { format: 'coco', seed: 4 })), 'E_ARGUMENT', /other settings/);
    expectSameTree(before, await tree(out, []));

    // A kill in the middle of a write leaves its temporary file: a dead process's are cleared, a running one's kept.
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    const stale = [join(out, 'webdataset', 'images', `.a_1_1.jpg.${dead}.0123456789ab.tmp`), join(out, `.run.json.${dead}.0123456789ab.tmp`)];
    const live = join(out, 'coco', 'images', `.b_2.jpg.${process.pid}.0123456789ab.tmp`);
    for (const p of [...stale, live]) await writeFile(p, 'partial');

    calls.composite = 0;
    const seen: number[] = [];
    const s = await paste(base(out, { format: ALL, onProgress: (done) => seen.push(done) }));
    // Done = in every journal: 4. The 5th item is rendered again; its COCO line is not written twice.
    expect(seen[0]).toBe(4);
    expect(s.rendered).toBe(8);
    for (const f of ALL) expect(await lines(join(out, f, 'progress.jsonl'))).toHaveLength(12);
    expect(stale.filter((p) => existsSync(p))).toEqual([]);
    expect(existsSync(live)).toBe(true);
    await rm(live);
    expectSameTree(await tree(full, []), await tree(out, []));
    // A folder of the list is the dataset of that format alone: it resumes as one (nothing to do).
    const again = await paste(base(join(out, 'yolo'), { format: 'yolo' }));
    expect(again.rendered).toBe(0);
    expectSameTree(await tree(join(full, 'yolo'), []), await tree(join(out, 'yolo'), []));
  });

  it('a `genaug paste --format coco,webdataset,yolo` killed mid-run resumes to the bytes of an uninterrupted run', async () => {
    const bin = join(__dirname, '..', 'bin', 'genaug.js');
    const args = (out: string) => ['paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, '--out', out, '--seed', '3', '--copies', '20', '--workers', '0', '--shard-size', '8', '--format', 'coco,webdataset,yolo', '-q'];
    const out = tmp.fresh('kill');
    execFileSync(process.execPath, [bin, ...args(out)], { stdio: 'ignore' });
    const full = `${out}-full`;
    await rename(out, full);

    // Killed (SIGKILL) as soon as 15 of the 80 items are in the COCO journal.
    const child = spawn(process.execPath, [bin, ...args(out)], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
    const journal = join(out, 'coco', 'progress.jsonl');
    for (let stop = false; !stop; ) {
      await new Promise((r) => setTimeout(r, 5));
      if (child.exitCode !== null) break;
      stop = existsSync(journal) && (await readFile(journal, 'utf8')).split('\n').length > 15;
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const kept = (await lines(journal)).length;
    expect(kept).toBeLessThan(80);

    const r = execFileSync(process.execPath, [bin, ...args(out).filter((a) => a !== '-q')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(r).toMatch(/80 items: 60 written, 20 failed/);
    expect(r).toContain(`output in ${join(out, 'coco')}, ${join(out, 'webdataset')}, ${join(out, 'yolo')}`);
    expectSameTree(await tree(full), await tree(out));
  });

  it('checks the list: names the bad or repeated format (library and command line)', async () => {
    expect(resolvePasteFormats('yolo')).toEqual({ formats: ['yolo'], subfolders: false });
    expect(resolvePasteFormats(undefined)).toEqual({ formats: ['coco'], subfolders: false });
    // A list always gets folders, even of one format (a caller passing a configured list gets one layout).
    expect(resolvePasteFormats(['webdataset'])).toEqual({ formats: ['webdataset'], subfolders: true });
    const out = tmp.fresh('bad');
    await expectCode(paste(base(out, { format: ['coco', 'xml' as PasteFormat] })), 'E_ARGUMENT', /'xml' is not coco, webdataset or yolo/);
    await expectCode(paste(base(out, { format: ['coco', 'coco'] })), 'E_ARGUMENT', /'coco' is named twice/);
    await expectCode(paste(base(out, { format: [] })), 'E_ARGUMENT', /empty/);
    await expectCode(paste(base(out, { format: 'xml' as PasteFormat })), 'E_ARGUMENT', /got 'xml'/);
    expect(existsSync(out)).toBe(false);

    const bin = join(__dirname, '..', 'bin', 'genaug.js');
    const cli = (...a: string[]) => {
      try {
        return { code: 0, out: execFileSync(process.execPath, [bin, 'paste', '--coco', fx.coco, '--images', fx.images, '--pool', fx.pool, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
      } catch (e) {
        const x = e as { status: number; stdout: string; stderr: string };
        return { code: x.status, out: x.stdout + x.stderr };
      }
    };
    for (const [list, bad] of [['coco,xml', "'xml'"], ['coco,,yolo', "''"], ['yolo,coco,yolo', "'yolo' is named twice"]] as const) {
      const r = cli('--out', out, '--format', list);
      expect(r.code, list).toBe(2);
      expect(r.out).toContain('[E_ARGUMENT]');
      expect(r.out).toContain(bad);
    }
    expect(existsSync(out)).toBe(false);

    // The comma list through the command line writes what the library writes.
    const viaCli = tmp.fresh('cli');
    const r = cli('--out', viaCli, '--seed', '3', '--copies', '3', '--workers', '0', '--shard-size', '4', '--format', 'webdataset, coco', '-q');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`output in ${join(viaCli, 'coco')}, ${join(viaCli, 'webdataset')}`);
    const viaLib = tmp.fresh('lib');
    await paste(base(viaLib, { format: ['coco', 'webdataset'] }));
    expectSameTree(await tree(viaLib, []), await tree(viaCli, []));
    const help = cli('--help').out.replace(/\s+/g, ' ');
    for (const where of ['OUT/<format>/', 'OUT/coco/annotations.json', 'OUT/webdataset/shards/', 'OUT/yolo/labels/', 'comma list']) expect(help).toContain(where);
  });
});
