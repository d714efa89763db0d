/**
 * End to end through the built CLI (node bin/genaug.js after tsc): the demo's
 * outputs checked with independent readers (the plain COCO RLE decoder of
 * coco-oracle.ts, tar(1), sharp), the report in real headless Chromium, and `genaug run`
 * killed at random points then resumed to the same bytes as a clean run.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { seededRandom } from '../ts/util/random.js';
import { areaAndBox, checkCoco, decodeRlePlain, type Coco } from './coco-oracle.js';
import { filesUnder, tempFolder } from './helpers.js';
import { smallConfig } from './pipeline-fixture.js';

const run = promisify(execFile);
const repo = join(__dirname, '..');
const bin = join(repo, 'bin', 'genaug.js');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Chromium is not ours to sanitise: under `npm run test:sanitize` the ASan/UBSan runtime is preloaded into every child,
// which makes Chromium hang. It gets the environment without the sanitizer settings.
const browserEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS'].includes(k)));
const tmp = tempFolder('genaug-e2e-');
let root: string;
let demo: string;

async function genaug(args: string[], timeout = 300_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { maxBuffer: 1 << 26, timeout });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}




const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

beforeAll(async () => {
  root = tmp.dir();
  // The CLI under test is the compiled one.
  await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json')], { timeout: 300_000 });
  demo = join(root, 'demo');
  const r = await genaug(['demo', '--out', demo, '--quiet']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(join(demo, 'run', 'report', 'report.html'));
}, 420_000);

describe('genaug demo (built CLI)', () => {
  it('writes summary.json naming its outputs, and catches the planted failures', async () => {
    const s = JSON.parse(await readFile(join(demo, 'summary.json'), 'utf8'));
    for (const p of Object.values(s.outputs) as string[]) expect(existsSync(p), p).toBe(true);
    // Every image the generator drew as a failure is rejected; most good ones are kept.
    for (const [kind, v] of Object.entries(s.truth as Record<string, { kept: number; rejected: number }>)) {
      if (kind === 'ok') expect(v.kept).toBeGreaterThan(0.8 * (v.kept + v.rejected));
      else expect(v.kept, kind).toBe(0);
    }
    expect(Object.keys(s.truth).sort()).toEqual(['border', 'empty', 'near-duplicate', 'off-class', 'ok']);
  });

  it('the real and the pasted COCO files follow the format: every RLE decodes to its area and tight box', async () => {
    const real = await checkCoco(join(demo, 'data', 'annotations.json'), join(demo, 'data', 'images'));
    const counts = new Map<number, Set<number>>();
    for (const a of real.annotations) counts.set(a.category_id, (counts.get(a.category_id) ?? new Set()).add(a.image_id));
    const imagesPerClass = real.categories.map((c) => counts.get(c.id)?.size ?? 0);
    expect(Math.min(...imagesPerClass), 'a rare class with a few images').toBeGreaterThan(0);
    expect(Math.min(...imagesPerClass)).toBeLessThanOrEqual(10);
    const pasted = await checkCoco(join(demo, 'run', 'paste', 'coco', 'annotations.json'), join(demo, 'run', 'paste', 'coco', 'images'));
    expect(pasted.images.length).toBe(real.images.length);
    expect(pasted.annotations.filter((a) => a.instance_source === 'pasted').length).toBeGreaterThan(20);
    // Masks of one image do not overlap (later pastes occlude earlier instances).
    for (const im of pasted.images.slice(0, 10)) {
      const cover = new Uint8Array(im.width * im.height);
      for (const a of pasted.annotations.filter((x) => x.image_id === im.id)) {
        const m = decodeRlePlain(a.segmentation);
        for (let q = 0; q < m.length; q++) if (m[q]) { expect(cover[q], `overlap in ${im.file_name}`).toBe(0); cover[q] = 1; }
      }
    }
  });

  it('the WebDataset shards read back with tar: samples grouped by key, the same images and annotations as the COCO export', async () => {
    const wds = join(demo, 'run', 'paste', 'webdataset', 'shards');
    const shards = (await readdir(wds)).filter((f) => f.endsWith('.tar')).sort();
    expect(shards.length).toBeGreaterThan(1);
    const coco = JSON.parse(await readFile(join(demo, 'run', 'paste', 'coco', 'annotations.json'), 'utf8')) as Coco;
    const seen = new Set<string>();
    for (const shard of shards) {
      expect(shard).toMatch(/^\d{6}\.tar$/);
      const list = (await run('tar', ['-tf', join(wds, shard)])).stdout.trim().split('\n');
      expect(list).toEqual([...list].sort());
      const keys = [...new Set(list.map((n) => n.slice(0, n.indexOf('.'))))];
      const out = join(root, 'x', shard);
      await mkdir(out, { recursive: true });
      await run('tar', ['-xf', join(wds, shard), '-C', out]);
      for (const k of keys) {
        expect(k).not.toMatch(/\./);
        expect(seen.has(k), `key ${k} unique`).toBe(false);
        seen.add(k);
        expect(list.filter((n) => n.startsWith(`${k}.`))).toEqual([`${k}.jpg`, `${k}.json`]);
        const j = JSON.parse(await readFile(join(out, `${k}.json`), 'utf8')) as { image_id: number; width: number; height: number; annotations: Coco['annotations'] };
        const im = coco.images.find((i) => i.id === j.image_id)!;
        expect(im.file_name).toBe(`${k}.jpg`);
        // The WebDataset render and the COCO render are separate runs of the same seed: the same bytes.
        expect((await readFile(join(out, `${k}.jpg`))).equals(await readFile(join(demo, 'run', 'paste', 'coco', 'images', im.file_name))), k).toBe(true);
        const strip = (a: Coco['annotations'][number]) => ({ category_id: a.category_id, segmentation: a.segmentation, area: a.area, bbox: a.bbox, iscrowd: a.iscrowd, instance_source: a.instance_source });
        expect(j.annotations.map(strip)).toEqual(coco.annotations.filter((a) => a.image_id === im.id).map(strip));
        for (const a of j.annotations) {
          const m = decodeRlePlain(a.segmentation);
          const { area, bbox } = areaAndBox(m, j.height, j.width);
          expect([a.area, a.bbox], `${k} annotation ${a.id}`).toEqual([area, bbox]);
        }
      }
    }
    expect(seen.size).toBe(coco.images.length);
  });

  it("the report's numbers agree with the run manifest", async () => {
    const html = await readFile(join(demo, 'run', 'report', 'report.html'), 'utf8');
    const manifest = JSON.parse(await readFile(join(demo, 'run', 'run.json'), 'utf8'));
    const data = JSON.parse(html.match(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/)![1]!);
    const st = manifest.stages;
    expect(data.totals.kept).toBe(st.filter.summary.kept);
    expect(data.totals.rejected).toBe(st.filter.summary.rejected);
    expect(data.totals.pool).toBe(st.pool.summary.instances);
    expect(data.totals.pastedImages).toBe(st.paste.summary.images);
    expect(data.totals.pastedInstances).toBe(st.paste.summary.pasted);
    expect(data.totals.generated).toBe(st.generate.summary.images);
    for (const [k, n] of Object.entries(st.plan.summary.perClass as Record<string, number>)) expect(data.funnel[k].planned, k).toBe(n);
    for (const [k, n] of Object.entries(st.pool.summary.perClass as Record<string, number>)) expect(data.funnel[k]['in pool'], k).toBe(n);
    // The funnel table shows the same numbers.
    const table = html.match(/<table id="funnel-table">([\s\S]*?)<\/table>/)![1]!;
    for (const k of data.classes as string[]) {
      const row = table.match(new RegExp(`<tr><td>${k}</td>((?:<td>\\d+</td>)+)</tr>`))![1]!;
      const cells = [...row.matchAll(/<td>(\d+)<\/td>/g)].map((m) => Number(m[1]));
      expect(cells).toEqual(Object.values(data.funnel[k]));
    }
    for (const t of data.timings) if (t.seconds !== null) expect(t.seconds).toBe(st[t.stage].seconds);
    // Self-contained: no network references.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/@import|url\(http/);
  });

  it('opens in headless Chromium without console errors, with charts, grids and a non-blank screenshot', async () => {
    expect(existsSync(CHROMIUM), `Chromium is needed at ${CHROMIUM} (Debian: apt-get install chromium)`).toBe(true);
    const url = `file://${join(demo, 'run', 'report', 'report.html')}`;
    const flags = ['--headless=new', '--disable-gpu', '--no-sandbox', '--no-first-run', '--disable-extensions', `--user-data-dir=${join(root, 'chrome')}`];
    const dom = await run(CHROMIUM, [...flags, '--enable-logging=stderr', '--v=0', '--virtual-time-budget=3000', '--dump-dom', url], { maxBuffer: 1 << 26, timeout: 120_000, env: browserEnv });
    const consoleLines = dom.stderr.split('\n').filter((l) => /:CONSOLE/.test(l) || /Uncaught/.test(l));
    expect(consoleLines).toEqual([]);
    // The page's script ran to its end and counted the charts.
    const ready = Number(dom.stdout.match(/<body[^>]*data-ready="(\d+)"/)?.[1] ?? -1);
    expect(ready).toBeGreaterThanOrEqual(6);
    expect(dom.stdout).toMatch(/<svg class="chart" id="funnel-chart"/);
    expect((dom.stdout.match(/class="threshold"/g) ?? []).length).toBeGreaterThan(0);
    expect((dom.stdout.match(/<div class="cell kept"/g) ?? []).length).toBeGreaterThan(5);
    expect((dom.stdout.match(/<div class="cell rejected"/g) ?? []).length).toBeGreaterThan(5);
    expect((dom.stdout.match(/class="why"/g) ?? []).length).toBeGreaterThan(5);
    expect(dom.stdout).toMatch(/<section id="pasted">[\s\S]*?<img/);
    const shot = join(root, 'shot.png');
    await run(CHROMIUM, [...flags, `--screenshot=${shot}`, '--window-size=1200,1800', '--virtual-time-budget=3000', url], { timeout: 120_000, env: browserEnv });
    const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1200, 1800]);
    let sum = 0;
    let sum2 = 0;
    const colours = new Set<number>();
    for (let q = 0; q < data.length; q += 3) {
      const g = ((data[q] as number) + (data[q + 1] as number) + (data[q + 2] as number)) / 3;
      sum += g;
      sum2 += g * g;
      if (q % 301 === 0) colours.add(((data[q] as number) << 16) | ((data[q + 1] as number) << 8) | (data[q + 2] as number));
    }
    const n = data.length / 3;
    const variance = sum2 / n - (sum / n) ** 2;
    expect(variance).toBeGreaterThan(200);
    expect(colours.size).toBeGreaterThan(50);
  }, 240_000);
});

describe('genaug run (built CLI)', () => {
  it('a config with a typo fails before any work, naming the key', async () => {
    await writeRealDataset({ out: join(root, 'data'), seed: 4, images: 8 });
    const p = join(root, 'typo.yaml');
    await writeFile(p, stringify({ ...smallConfig('typo-run'), filter: { dedup_treshold: 0.9 } }));
    const r = await genaug(['run', p]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_FORMAT.*unknown key 'filter\.dedup_treshold'/);
    expect(existsSync(join(root, 'typo-run'))).toBe(false);
  });

  it('names the report only when the run wrote one', async () => {
    if (!existsSync(join(root, 'data'))) await writeRealDataset({ out: join(root, 'data'), seed: 4, images: 8 });
    const p = join(root, 'until.yaml');
    await writeFile(p, stringify(smallConfig('until-run')));
    const r = await genaug(['run', p, '--until', 'plan', '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('run folder');
    expect(r.stdout).not.toContain('report');
  });

  it('killed at random points and run again, it ends with the same bytes as an uninterrupted run', async () => {
    if (!existsSync(join(root, 'data'))) await writeRealDataset({ out: join(root, 'data'), seed: 4, images: 8 });
    const clean = join(root, 'clean.yaml');
    const killed = join(root, 'killed.yaml');
    await writeFile(clean, stringify(smallConfig('run-clean')));
    await writeFile(killed, stringify(smallConfig('run-killed')));
    const c = await genaug(['run', clean, '--quiet']);
    expect(c.code, c.stderr).toBe(0);
    const r = seededRandom(99);
    let kills = 0;
    for (let attempt = 0; attempt < 6; attempt++) {
      const child = spawn(process.execPath, [bin, 'run', killed, '--quiet'], { stdio: 'ignore' });
      const delay = 150 + Math.floor(r() * 2500);
      const exited = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(false);
        }, delay);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve(code === 0);
        });
      });
      if (exited) break;
      kills++;
      await new Promise((res) => child.once('close', res).once('exit', res));
    }
    expect(kills).toBeGreaterThan(0);
    const last = await genaug(['run', killed, '--quiet']);
    expect(last.code, last.stderr).toBe(0);
    const a = join(root, 'run-clean');
    const b = join(root, 'run-killed');
    const compare = ['plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'pool', 'paste'];
    for (const stage of compare) {
      // Journals record completion order, which depends on timing; every other file must be identical.
      const journal = (f: string) => /(^|\/)(progress|journal|answers)\.jsonl$/.test(f);
      const fa = (await filesUnder(join(a, stage))).filter((f) => !journal(f));
      const fb = (await filesUnder(join(b, stage))).filter((f) => !journal(f));
      expect(fb, stage).toEqual(fa);
      for (const f of fa) expect(await sha(join(b, stage, f)), `${stage}/${f}`).toBe(await sha(join(a, stage, f)));
    }
  }, 240_000);
});
