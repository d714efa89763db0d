import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { generateProcedural, truthOf, DEFAULT_FAILURE_RATES, writeRealDataset } from '../ts/generate/procedural-world.js';
import { STAGES as ALL_STAGES } from '../ts/pipeline/config.js';

// An instance run (DiverGen here): the dataset and bnstats stages are not part of it (recorded as such in run.json).
const NOT_PART = ['dataset', 'bnstats'] as const;
const STAGES = ALL_STAGES.filter((s) => !(NOT_PART as readonly string[]).includes(s));
import { loadConfig } from '../ts/pipeline/config.js';
import { readManifest, runPipeline } from '../ts/pipeline/run.js';
import { expectError, tempFolder } from './helpers.js';
import { smallConfig } from './pipeline-fixture.js';

const tmp = tempFolder('genaug-pipeline-run-');
let root: string;


async function config(name: string, c: unknown) {
  const p = join(root, name);
  await writeFile(p, stringify(c));
  return loadConfig(p);
}

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 2, images: 8 });
});

describe('procedural world', () => {
  it('draws the same bytes for the same seed, and failures at about the configured rates', async () => {
    const a = await generateProcedural('disk', 1234);
    const b = await generateProcedural('disk', 1234);
    expect(Buffer.from(a.png).equals(Buffer.from(b.png))).toBe(true);
    const c = await generateProcedural('disk', 1235);
    expect(Buffer.from(a.png).equals(Buffer.from(c.png))).toBe(false);
    const n = 4000;
    const counts: Record<string, number> = {};
    for (let s = 0; s < n; s++) counts[truthOf(s, DEFAULT_FAILURE_RATES)] = (counts[truthOf(s, DEFAULT_FAILURE_RATES)] ?? 0) + 1;
    // Binomial: 4 standard deviations around each rate.
    const within = (k: string, p: number) => expect(Math.abs((counts[k] ?? 0) - n * p), k).toBeLessThan(4 * Math.sqrt(n * p * (1 - p)));
    within('off-class', DEFAULT_FAILURE_RATES.offClass);
    within('empty', DEFAULT_FAILURE_RATES.empty);
    within('near-duplicate', DEFAULT_FAILURE_RATES.nearDuplicate);
    within('border', DEFAULT_FAILURE_RATES.border);
  });

  it('a near-duplicate repeats the previous seed\'s image up to faint noise', async () => {
    let seed = 1;
    while (!(truthOf(seed, DEFAULT_FAILURE_RATES) === 'near-duplicate' && truthOf(seed - 1, DEFAULT_FAILURE_RATES) === 'ok')) seed++;
    const sharp = (await import('sharp')).default;
    const raw = async (png: Uint8Array) => new Uint8Array(await sharp(Buffer.from(png)).raw().toBuffer());
    const dup = await raw((await generateProcedural('square', seed)).png);
    const prev = await raw((await generateProcedural('square', seed - 1)).png);
    let maxDiff = 0;
    let differing = 0;
    for (let i = 0; i < dup.length; i++) {
      const d = Math.abs((dup[i] as number) - (prev[i] as number));
      maxDiff = Math.max(maxDiff, d);
      if (d > 0) differing++;
    }
    expect(differing).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(16);
  });
});

describe('genaug run (in process)', () => {
  it('runs every stage, records outputs with their hashes, and skips finished stages when run again', async () => {
    const cfg = await config('a.yaml', smallConfig('run-a'));
    const first = await runPipeline(cfg);
    expect(first.ran).toEqual([...STAGES]);
    const m = await readManifest(cfg.paths.runDir);
    for (const s of STAGES) {
      const r = m?.stages[s];
      expect(r?.status, s).toBe('done');
      expect(r?.seconds, s).toBeGreaterThanOrEqual(0);
      expect(r?.outputs.length, s).toBeGreaterThan(0);
      for (const o of r?.outputs ?? []) expect(await sha(join(cfg.paths.runDir, o.path)), o.path).toBe(o.sha256);
    }
    expect(first.notPart).toEqual([...NOT_PART]);
    for (const s of NOT_PART) {
      expect(m?.stages[s], s).toMatchObject({ status: 'done', outputs: [], skipped: expect.stringMatching(s === 'dataset' ? /output 'instances'/ : /no bnstats\.model/) });
      expect(existsSync(join(cfg.paths.runDir, s)), s).toBe(false);
    }
    const said: string[] = [];
    const again = await runPipeline(cfg, { log: (l) => said.push(l) });
    expect(again.ran).toEqual([]);
    expect(again.skipped).toEqual([...STAGES]);
    expect(again.notPart).toEqual([...NOT_PART]);
    // And it says so, stage by stage.
    for (const s of STAGES) expect(said).toContain(`${s}: up to date, skipped`);
  });

  it('re-runs only the stages after a changed option', async () => {
    const cfg = await config('b.yaml', smallConfig('run-b'));
    await runPipeline(cfg);
    const cocoBefore = await sha(join(cfg.paths.runDir, 'paste', 'coco', 'annotations.json'));
    const changed = await config('b.yaml', smallConfig('run-b', { paste: { max_samples: 6 } }));
    const r = await runPipeline(changed);
    expect(r.ran).toEqual(['paste', 'report']);
    expect(r.skipped).toEqual(['plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'pool']);
    expect(await sha(join(cfg.paths.runDir, 'paste', 'coco', 'annotations.json'))).not.toBe(cocoBefore);
  });

  it('--until stops after a stage, --from starts at one, --force runs it again', async () => {
    const cfg = await config('c.yaml', smallConfig('run-c'));
    const a = await runPipeline(cfg, { until: 'annotate' });
    expect(a.ran).toEqual(['plan', 'generate', 'annotate']);
    expect((await readManifest(cfg.paths.runDir))?.stages.embed).toBeUndefined();
    await expectError(runPipeline(cfg, { from: 'filter' }), 'E_ARGUMENT', "'embed'");
    const b = await runPipeline(cfg, { from: 'embed', until: 'pool' });
    expect(b.ran).toEqual(['embed', 'score', 'filter', 'pool']);
    const c = await runPipeline(cfg, { from: 'score', until: 'score', force: true });
    expect(c.ran).toEqual(['score']);
    await expectError(runPipeline(cfg, { from: 'pool', until: 'plan' }), 'E_ARGUMENT', 'after');
  });

  it("a finished stage's folder loses the temporary files of processes that no longer run, and keeps a live writer's", async () => {
    // What a queue worker SIGKILLed in the middle of an atomic write leaves behind (.NAME.PID.HEX.tmp), planted
    // while the stage runs, at the stage folder's top and one folder down.
    const cfg = await config('t.yaml', smallConfig('run-t'));
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    const dir = join(cfg.paths.runDir, 'annotate');
    const planted: string[] = [];
    const live = join(dir, `.keep.json.${process.pid}.0123456789ab.tmp`);
    await runPipeline(cfg, {
      until: 'annotate',
      onProgress: (stage) => {
        if (stage !== 'annotate' || !existsSync(dir)) return;
        const plant = (d: string) => {
          const p = join(d, `.x.png.${dead}.a1b2c3d4e5f6.tmp`);
          if (planted.includes(p)) return;
          writeFileSync(p, 'half');
          planted.push(p);
        };
        plant(dir);
        if (!existsSync(live)) writeFileSync(live, 'still writing');
        const sub = readdirSync(dir, { withFileTypes: true }).find((e) => e.isDirectory());
        if (sub) plant(join(dir, sub.name));
      },
    });
    expect(planted.length).toBe(2);
    for (const p of planted) expect(existsSync(p), p).toBe(false);
    expect(existsSync(live)).toBe(true);
    const outputs = (await readManifest(cfg.paths.runDir))?.stages.annotate?.outputs.map((o) => o.path) ?? [];
    expect(outputs.length).toBeGreaterThan(0);
    expect(outputs.filter((o) => o.includes('.tmp'))).toEqual([]);
    rmSync(live);
  });

  it('plan.extra_categories: DiverGen\'s extra WordNet categories are generated, exempt from the real-crop rules, and pasted as new categories', async () => {
    const cfg = await config('extra.yaml', smallConfig('run-extra', {
      plan: { strategy: 'template', per_class: 3, width: 96, height: 96, extra_categories: 2 },
      filter: { rules: ['divergen'], inter_similarity_min: 0.2, require_own_class_best: true },
    }));
    await runPipeline(cfg);
    const R = cfg.paths.runDir;
    const jobs = (await readFile(join(R, 'plan', 'plan.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { classes: string[]; provenance: { class_source?: string; extra?: { synset: string } } });
    const extras = jobs.filter((j) => j.provenance.class_source === 'wordnet-extra').map((j) => j.classes[0]!);
    expect(extras).toHaveLength(2);
    const real = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8')) as { categories: Array<{ id: number; name: string }> };
    for (const e of extras) expect(real.categories.map((k) => k.name)).not.toContain(e);
    // Decisions: every extra instance was embedded and judged; none fell to a real-crop rule.
    const decisions = (await readFile(join(R, 'filter', 'decisions.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { category: string; status: string; reason?: string });
    const ofExtras = decisions.filter((d) => extras.includes(d.category));
    expect(ofExtras.length).toBeGreaterThan(0);
    for (const d of ofExtras) expect(d.reason ?? '', d.reason).not.toMatch(/not embedded|no-real-crops|closer-to-another-class/);
    expect(ofExtras.some((d) => d.status === 'kept')).toBe(true);
    // The export: the real categories as they were, the extras appended with new ids, and pasted instances of them.
    const coco = JSON.parse(await readFile(join(R, 'paste', 'coco', 'annotations.json'), 'utf8')) as { categories: Array<{ id: number; name: string }>; annotations: Array<{ category_id: number; instance_source: string }> };
    expect(coco.categories.slice(0, real.categories.length)).toEqual(real.categories.map((k) => expect.objectContaining({ id: k.id, name: k.name })));
    const maxReal = Math.max(...real.categories.map((k) => k.id));
    const added = coco.categories.filter((k) => extras.includes(k.name));
    expect(added.map((k) => k.name).sort()).toEqual([...extras].sort());
    for (const k of added) expect(k.id).toBeGreaterThan(maxReal);
    expect(coco.annotations.filter((a) => a.instance_source === 'pasted' && added.some((k) => k.id === a.category_id)).length).toBeGreaterThan(0);
    // The report lists them in its funnel (it used to loop forever on a class it did not know).
    const report = JSON.parse(await readFile(join(R, 'report', 'report.json'), 'utf8')) as { funnel: Record<string, { planned: number }> };
    for (const e of extras) expect(report.funnel[e]!.planned).toBe(3);
  }, 60_000);

  it('a pool that ends empty stops the run with E_EMPTY before pasting real-only data; pool.allow_empty goes on', async () => {
    // min_area_fraction 1: no generated instance covers its whole image, so the filter keeps nothing.
    const strict = { dedup_threshold: 0.999, min_area_fraction: 1 };
    const cfg = await config('empty.yaml', smallConfig('run-empty', { filter: strict }));
    await expectError(runPipeline(cfg), 'E_EMPTY', 'the pool would be empty', 'no generated sample was kept', 'pool.allow_empty');
    expect(existsSync(join(cfg.paths.runDir, 'pool', 'index.json'))).toBe(false);
    expect(existsSync(join(cfg.paths.runDir, 'paste'))).toBe(false);
    const kept = (await readFile(join(cfg.paths.runDir, 'filter', 'kept.jsonl'), 'utf8')).trim();
    expect(kept).toBe('');
    const allowed = await config('empty.yaml', smallConfig('run-empty', { filter: strict, pool: { allow_empty: true } }));
    const r = await runPipeline(allowed);
    expect(r.ran).toEqual(['pool', 'paste', 'report']);
    const coco = JSON.parse(await readFile(join(cfg.paths.runDir, 'paste', 'coco', 'annotations.json'), 'utf8')) as { annotations: unknown[] };
    const real = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8')) as { annotations: unknown[] };
    // Nothing pasted: the real annotations alone.
    expect(coco.annotations).toHaveLength(real.annotations.length);
  });

  it('one run at a time per folder; a lock left by a killed run is taken over', async () => {
    const cfg = await config('e.yaml', smallConfig('run-e'));
    const first = runPipeline(cfg);
    await new Promise((r) => setTimeout(r, 30));
    await expectError(runPipeline(cfg), 'E_LOCKED', 'another genaug run', `pid ${process.pid}`);
    await first;
    // A lock whose process is gone: a pid no process has.
    await writeFile(join(cfg.paths.runDir, '.lock'), '2147483646');
    const r = await runPipeline(cfg);
    expect(r.skipped).toEqual([...STAGES]);
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(cfg.paths.runDir, '.lock'))).toBe(false);
  });

  it('embed.max_real_per_class embeds a seeded choice of at most N real crops per class', async () => {
    const cfg = await config('f.yaml', smallConfig('run-f', { embed: { model: 'features', real_crop_padding: 6, max_real_per_class: 2 } }));
    await runPipeline(cfg, { until: 'embed' });
    const rows = (await readFile(join(cfg.paths.runDir, 'embed', 'real.index.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { category: string; annotation: number });
    const coco = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8')) as { annotations: Array<{ category_id: number }>; categories: Array<{ id: number; name: string }> };
    for (const cat of coco.categories) {
      const have = coco.annotations.filter((a) => a.category_id === cat.id).length;
      expect(rows.filter((r) => r.category === cat.name).length, cat.name).toBe(Math.min(2, have));
    }
    const first = await sha(join(cfg.paths.runDir, 'embed', 'real.npy'));
    await runPipeline(cfg, { from: 'embed', until: 'embed', force: true });
    expect(await sha(join(cfg.paths.runDir, 'embed', 'real.npy'))).toBe(first);
  });

  it('a run killed during embed resumes from its journal without embedding the finished batches again', async () => {
    const embed = { model: 'features', real_crop_padding: 6, batch: 1, workers: 0 };
    const ref = await config('kref.yaml', smallConfig('run-kref', { embed }));
    await runPipeline(ref, { until: 'embed' });
    const cfg = await config('k.yaml', smallConfig('run-k', { embed }));
    await runPipeline(cfg, { until: 'annotate' });
    const dir = join(cfg.paths.runDir, 'embed');
    const chunks = () => ['real.npy.partial', 'generated.npy.partial'].reduce((n, d) => n + (existsSync(join(dir, d)) ? readdirSync(join(dir, d)).filter((f) => f.endsWith('.chunk')).length : 0), 0);
    // Kill -9 the command-line run as soon as it has journaled a few batches.
    const child = spawn(process.execPath, [join(__dirname, '..', 'bin', 'genaug.js'), 'run', join(root, 'k.yaml'), '--until', 'embed', '--quiet'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    let seen = 0;
    while (child.exitCode === null && (seen = chunks()) < 3) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    expect(await exited, 'the run finished before it could be killed').toBeNull();
    expect(seen).toBeGreaterThanOrEqual(3);
    expect((await readManifest(cfg.paths.runDir))?.stages.embed?.status).toBe('running');
    const r = await runPipeline(cfg, { until: 'embed' });
    const rec = r.manifest.stages.embed;
    expect(rec?.resumed).toBe(1);
    expect(rec?.summary.resumedBatches).toBeGreaterThanOrEqual(seen);
    for (const f of ['real.npy', 'real.index.jsonl', 'generated.npy', 'generated.index.jsonl']) expect(await sha(join(dir, f)), f).toBe(await sha(join(ref.paths.runDir, 'embed', f)));
    expect(existsSync(join(dir, 'real.npy.partial'))).toBe(false);
  }, 60_000);

  it('every stage before the report decodes each image at most once (GENAUG_DECODE_LOG)', async () => {
    const cfg = await config('dec.yaml', smallConfig('run-dec', { paste: { max_samples: 4, workers: 0 } }));
    const log = join(root, 'decodes.log');
    const before = process.env.GENAUG_DECODE_LOG;
    process.env.GENAUG_DECODE_LOG = log;
    const perStage: Record<string, Map<string, number>> = {};
    try {
      for (const stage of STAGES.filter((s) => s !== 'report')) {
        await writeFile(log, '');
        await runPipeline(cfg, { from: stage, until: stage });
        const counts = new Map<string, number>();
        for (const l of (await readFile(log, 'utf8')).split('\n').filter(Boolean)) counts.set(l, (counts.get(l) ?? 0) + 1);
        perStage[stage] = counts;
      }
    } finally {
      if (before === undefined) delete process.env.GENAUG_DECODE_LOG;
      else process.env.GENAUG_DECODE_LOG = before;
    }
    for (const [stage, counts] of Object.entries(perStage)) {
      const twice = [...counts].filter(([, n]) => n > 1);
      expect(twice, `${stage} decoded these more than once`).toEqual([]);
    }
    // The log is real: annotate and embed each decoded every generated image, paste the real images and pool crops.
    const generated = (await readFile(join(cfg.paths.runDir, 'generate', 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => join(cfg.paths.runDir, 'generate', 'images', (JSON.parse(l) as { file: string }).file));
    for (const f of generated) expect(perStage.annotate?.get(f), f).toBe(1);
    const embedded = (await readFile(join(cfg.paths.runDir, 'embed', 'generated.index.jsonl'), 'utf8')).trim().split('\n').map((l) => join(cfg.paths.runDir, 'generate', 'images', (JSON.parse(l) as { file: string }).file));
    expect(embedded.length).toBeGreaterThan(0);
    for (const f of embedded) expect(perStage.embed?.get(f), f).toBe(1);
    expect([...(perStage.paste?.keys() ?? [])].some((f) => f.includes(join('pool', 'instances')))).toBe(true);
  }, 120_000);

  it('re-runs a stage whose recorded output was deleted', async () => {
    const cfg = await config('d.yaml', smallConfig('run-d'));
    await runPipeline(cfg);
    const { rm } = await import('node:fs/promises');
    await rm(join(cfg.paths.runDir, 'pool', 'index.json'));
    const r = await runPipeline(cfg);
    expect(r.ran[0]).toBe('pool');
  });

  it('a plan with no jobs fails the plan stage, quoting the first failure; captions from plan.captions prompt the jobs', async () => {
    const coco = JSON.parse(await readFile(join(root, 'data', 'annotations.json'), 'utf8')) as { images: Array<{ id: number }> };
    // Captions only for images that are not in the dataset: no image of any class has one.
    await writeFile(join(root, 'caps-none.json'), JSON.stringify({ annotations: [{ image_id: 99999, caption: 'nothing' }] }));
    const bad = await config('cap-bad.yaml', smallConfig('run-cap-bad', { plan: { strategy: 'caption', per_class: 1, captions: ['caps-none.json'] } }));
    await expectError(runPipeline(bad, { until: 'plan' }), 'E_ARGUMENT', 'no jobs', '/ image ', 'no stored caption');
    expect((await readManifest(bad.paths.runDir))?.stages.plan?.status).toBe('failed');
    await writeFile(join(root, 'caps.json'), JSON.stringify({ annotations: coco.images.map((im) => ({ image_id: im.id, caption: `scene number ${im.id}.` })) }));
    const good = await config('cap-good.yaml', smallConfig('run-cap-good', { plan: { strategy: 'caption', per_class: 1, captions: ['caps.json'] } }));
    await runPipeline(good, { until: 'plan' });
    const jobs = (await readFile(join(good.paths.runDir, 'plan', 'plan.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { prompt: string });
    expect(jobs.length).toBeGreaterThan(0);
    for (const j of jobs) expect(j.prompt).toMatch(/^a photo of \S.*, scene number \d+$/);
  });

  it('the report counts pasted images and instances from a WebDataset-only export as from a COCO one', async () => {
    const wds = await config('wds.yaml', smallConfig('run-wds', { export: { formats: ['webdataset'], shard_size: 4 } }));
    await runPipeline(wds);
    const coco = await config('wds-coco.yaml', smallConfig('run-wds-coco', { export: { formats: ['coco'], shard_size: 4 } }));
    await runPipeline(coco);
    type Report = { totals: { pastedImages: number; pastedInstances: number }; funnel: Record<string, { pasted: number }> };
    const a = JSON.parse(await readFile(join(wds.paths.runDir, 'report', 'report.json'), 'utf8')) as Report;
    const b = JSON.parse(await readFile(join(coco.paths.runDir, 'report', 'report.json'), 'utf8')) as Report;
    // The oracle: the COCO file of the same seed's render, and the paste stage's own summary.
    const doc = JSON.parse(await readFile(join(coco.paths.runDir, 'paste', 'coco', 'annotations.json'), 'utf8')) as { images: unknown[]; annotations: Array<{ instance_source: string }> };
    const pasted = doc.annotations.filter((x) => x.instance_source === 'pasted').length;
    expect(pasted).toBeGreaterThan(0);
    expect(b.totals.pastedImages).toBe(doc.images.length);
    expect(a.totals.pastedImages).toBe(doc.images.length);
    expect(a.totals.pastedInstances).toBe(pasted);
    expect((await readManifest(wds.paths.runDir))?.stages.paste?.summary.pasted).toBe(pasted);
    expect(a.funnel).toEqual(b.funnel);
    const html = await readFile(join(wds.paths.runDir, 'report', 'report.html'), 'utf8');
    expect(html).toContain('pasted (coloured)');
    // The WebDataset export is stored once (its shards); the report draws the same pasted pictures from them.
    expect(existsSync(join(wds.paths.runDir, 'paste', 'webdataset', 'images'))).toBe(false);
    const gallery = (h: string) => [...h.matchAll(/<figure><img alt="([^"]+)" src="([^"]+)"><figcaption>[^<]*pasted \(coloured\)/g)].map((m) => `${m[1]} ${m[2]}`);
    const cocoHtml = await readFile(join(coco.paths.runDir, 'report', 'report.html'), 'utf8');
    expect(gallery(html).length).toBeGreaterThan(0);
    expect(gallery(html)).toEqual(gallery(cocoHtml));
  });

  it('drops near-duplicates only when filter.dedup_threshold is set or the rules include dedup', async () => {
    type Row = { id: string; dup_of: string | null };
    type Dec = { file: string; reason?: string };
    const run = async (name: string, filter: Record<string, unknown>) => {
      const cfg = await config(`${name}.yaml`, smallConfig(name, { generate: { backend: 'procedural', concurrency: 2, failure_rates: { near_duplicate: 0.5, off_class: 0, empty: 0, border: 0 } }, filter }));
      await runPipeline(cfg, { until: 'filter' });
      const read = async <T>(p: string) => (await readFile(join(cfg.paths.runDir, p), 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
      const scores = await read<Row>('score/scores.jsonl');
      const dups = new Set(scores.filter((r) => r.dup_of !== null).map((r) => r.id));
      const dropped = (await read<Dec>('filter/decisions.jsonl')).filter((d) => /^dedup: near-duplicate/.test(d.reason ?? '')).map((d) => d.file);
      return { dups, dropped };
    };
    const off = await run('dedup-off', {});
    expect(off.dups.size).toBeGreaterThan(0); // the planted repeats are there ...
    expect(off.dropped).toEqual([]); // ... and kept
    for (const filter of [{ dedup_threshold: 0.99 }, { rules: ['dedup'] }]) {
      const on = await run(`dedup-on-${Object.keys(filter)[0]}`, filter);
      expect(new Set(on.dropped), JSON.stringify(filter)).toEqual(on.dups);
    }
  });

  it("the report draws DiverGen's default threshold 0.6 and leaves out its own unfinished timing row", async () => {
    const cfg = await config('dg.yaml', smallConfig('run-dg', { filter: { rules: ['divergen'] } }));
    await runPipeline(cfg);
    const data = JSON.parse(await readFile(join(cfg.paths.runDir, 'report', 'report.json'), 'utf8')) as { timings: Array<{ stage: string; status: string }>; thresholds: { inter_similarity_min: number | null; dedup_threshold: number | null } };
    expect(data.timings.map((t) => t.stage)).toEqual(STAGES.filter((s) => s !== 'report'));
    expect(data.timings.every((t) => t.status === 'done')).toBe(true);
    expect(data.thresholds).toMatchObject({ inter_similarity_min: 0.6, dedup_threshold: null });
    const html = await readFile(join(cfg.paths.runDir, 'report', 'report.html'), 'utf8');
    const chart = html.slice(html.indexOf('similarity to own class'), html.indexOf('</svg>', html.indexOf('similarity to own class')));
    expect(chart).toContain('class="threshold"');
    expect(chart).toContain('>min 0.6<');
    expect(html).not.toMatch(/<td>report<\/td>/);
  });
});

describe('genaug demo and the folder lock', () => {
  it('a demo refused by the lock of a running writer writes nothing (it used to write data/ and run.yaml first)', async () => {
    const { runDemo } = await import('../ts/cli/demo.js');
    const { lockFolder } = await import('../ts/io/lock.js');
    const dir = join(root, 'locked-demo');
    const unlock = await lockFolder(dir, 'genaug demo');
    try {
      await expectError(runDemo({ out: dir, seed: 2, images: 4, quiet: true }, { print: () => undefined } as never), 'E_LOCKED', 'another genaug demo', `pid ${process.pid}`);
      expect(readdirSync(dir)).toEqual(['.lock']);
    } finally {
      await unlock();
    }
    // The lock made the folder and takes it away again when nothing else was written into it.
    expect(existsSync(dir)).toBe(false);
  });
});
