/**
 * The classification methods end to end: `genaug demo --preset alia | caption-prompts | ddft` (in process, the same
 * runDemo the CLI calls), each on 24 procedural scenes with the loopback stand-in server and the tiny models. Each
 * funnel is checked against the run's own ledger, and each dataset with readers written here from the formats' rules:
 * a directory walk for ImageFolder (classes = sorted folder names, as torchvision's ImageFolder finds them), a ustar
 * reader for the WebDataset shards (cls = the index of txt in classes.txt), and a safetensors header parse for the
 * aux-BN file (PyTorch state-dict names).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

import { runDemo } from '../ts/cli/demo.js';
import { COLOUR_WORDS } from '../ts/demo/answers-classify.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { expectCode, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-methods-classify-');
const quiet = { print: () => {} };

interface Decision {
  file: string;
  category: string;
  status: 'kept' | 'rejected' | 'failed';
  stage: string;
  reason?: string;
  truth?: string;
  score?: Record<string, unknown>;
}

const jsonl = async <T>(p: string): Promise<T[]> =>
  (await readFile(p, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);

/** ImageFolder as torchvision reads it: classes = sorted sub-folder names, label = the folder's index. */
async function walkImageFolder(root: string): Promise<{ classes: string[]; samples: Array<{ file: string; label: number }> }> {
  const classes = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const samples: Array<{ file: string; label: number }> = [];
  for (const [i, c] of classes.entries()) for (const f of (await readdir(join(root, c))).sort()) samples.push({ file: f, label: i });
  return { classes, samples };
}

/** The members of a POSIX ustar archive (512-byte headers, octal sizes, data padded to 512). */
function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let p = 0;
  while (p + 512 <= buf.length) {
    const h = buf.subarray(p, p + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString('latin1').replace(/\0.*$/s, '');
    const name = (str(345, 155) ? `${str(345, 155)}/` : '') + str(0, 100);
    const size = parseInt(str(124, 12).trim() || '0', 8);
    // The header checksum: the sum of its bytes with the checksum field read as spaces.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    expect(parseInt(str(148, 8).trim(), 8)).toBe(sum);
    if (h[156] === 48 || h[156] === 0) out.set(name, buf.subarray(p + 512, p + 512 + size));
    p += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** WebDataset samples: members grouped by key (the name up to the first dot of the base name). */
async function readShards(dir: string): Promise<Array<{ key: string; cls: number; txt: string; image: string }>> {
  const samples: Array<{ key: string; cls: number; txt: string; image: string }> = [];
  for (const shard of (await readdir(dir)).filter((f) => f.endsWith('.tar')).sort()) {
    const groups = new Map<string, Map<string, Buffer>>();
    for (const [name, data] of untar(await readFile(join(dir, shard)))) {
      const base = name.split('/').pop()!;
      const dot = base.indexOf('.');
      const key = name.slice(0, name.length - base.length) + base.slice(0, dot);
      if (!groups.has(key)) groups.set(key, new Map());
      groups.get(key)!.set(base.slice(dot + 1), data);
    }
    for (const [key, m] of groups) {
      const image = [...m.keys()].find((k) => ['png', 'jpg', 'jpeg'].includes(k));
      expect(image, `${shard}: sample ${key} has an image`).toBeDefined();
      samples.push({ key, cls: Number(m.get('cls')!.toString('utf8').trim()), txt: m.get('txt')!.toString('utf8').trim(), image: image! });
    }
  }
  return samples;
}

/** The dataset of a classification run read both ways; they must agree with each other and with classes.txt. */
async function readDataset(runDir: string) {
  const classesTxt = (await readFile(join(runDir, 'dataset', 'classes.txt'), 'utf8')).split('\n').filter(Boolean);
  const folder = await walkImageFolder(join(runDir, 'dataset', 'imagefolder', 'train'));
  expect(folder.classes).toEqual(classesTxt);
  const wds = await readShards(join(runDir, 'dataset', 'webdataset'));
  for (const s of wds) expect(classesTxt[s.cls], `sample ${s.key}`).toBe(s.txt);
  const count = (labels: string[]) => Object.fromEntries(classesTxt.map((c) => [c, labels.filter((l) => l === c).length]));
  expect(count(wds.map((s) => s.txt))).toEqual(count(folder.samples.map((s) => classesTxt[s.label]!)));
  return { classes: classesTxt, folder, wds, byClass: (name: string) => folder.samples.filter((s) => classesTxt[s.label] === name).map((s) => s.file) };
}

async function demo(preset: string) {
  const out = tmp.fresh(preset);
  await runDemo({ out, seed: 3, images: 24, quiet: true, preset }, quiet);
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as {
    runDir: string;
    truth: Record<string, Record<string, number>>;
    funnel: Record<string, Record<string, number>>;
    totals: Record<string, number>;
    stages: Record<string, { status: string; skipped?: string; summary: Record<string, unknown> }>;
    standin: { answered: number; refused: number };
    outputs: Record<string, string>;
  };
  const decisions = await jsonl<Decision>(join(summary.runDir, 'filter', 'decisions.jsonl'));
  expect(summary.truth).toBeDefined();
  // The funnel per class is the ledger's count; the dataset's count is the folder's.
  const ds = await readDataset(summary.runDir);
  for (const [k, f] of Object.entries(summary.funnel)) {
    expect(f.scored).toBe(decisions.filter((d) => d.category === k && d.stage === 'filter').length);
    expect(f['kept by filters']).toBe(decisions.filter((d) => d.category === k && d.status === 'kept').length);
    expect(f['in the dataset']).toBe(ds.byClass(k).length);
  }
  // Every planted failure is in the truth table as the ledger has it.
  for (const [t, counts] of Object.entries(summary.truth)) for (const st of ['kept', 'rejected', 'failed'] as const) expect(counts[st]).toBe(decisions.filter((d) => d.truth === t && d.status === st).length);
  expect(summary.stages.annotate!.skipped).toMatch(/whole image/);
  expect(summary.standin.refused).toBe(0);
  return { out, summary, decisions, ds };
}

describe('genaug demo --preset for the classification methods', () => {
  it('alia: captions → domains → edit prompts, semantic + confidence filters, subsample, one labelled set', async () => {
    const { out, summary, decisions, ds } = await demo('alia');
    const run = summary.runDir;
    // Domains are the stand-in's summary of the stand-in's captions; every job's prompt is "a photo of a {class}, {setting}".
    const domains = JSON.parse(await readFile(join(run, 'plan', 'plan.jsonl.domains.json'), 'utf8')) as { settings: string[]; source: string };
    expect(domains.source).toBe('llm');
    expect(domains.settings.length).toBeGreaterThan(1);
    const plan = await jsonl<{ prompt: string; classes: string[]; kind: string }>(join(run, 'plan', 'plan.jsonl'));
    for (const j of plan) {
      expect(j.kind).toBe('img2img');
      expect(domains.settings.map((s) => `a photo of a ${j.classes[0]}, ${s}`)).toContain(j.prompt);
    }
    // Each decision keeps its reason, and the ALIA columns say why: a negative text won, or it passed both filters.
    for (const d of decisions) {
      if (d.status !== 'kept') expect(d.reason, d.file).toBeTruthy();
      const s = d.score!;
      if (d.reason?.startsWith('alia: semantic-negative-wins')) expect(Number(s.alia_winner)).toBeGreaterThan(0);
      if (d.status === 'kept') {
        expect(s.alia_winner).toBe(0);
        if (s.alia_threshold !== null) expect(Number(s.alia_max_prob)).toBeLessThanOrEqual(Number(s.alia_threshold));
        expect(s.best_class).toBe(d.category);
      }
    }
    // The planted failures: empty pictures lose to the negative texts, drawings of another class are closer to
    // another class's real crops, near-duplicates are one of a group.
    // (How many of each are planted depends on the job seeds, which hash the source image's path, so on the folder.)
    const of = (t: string) => decisions.filter((d) => d.truth === t);
    expect(decisions.filter((d) => d.truth !== 'ok').length).toBeGreaterThan(0);
    // (dedup runs first: a second blank picture is a near-duplicate of the first.)
    for (const d of of('empty')) expect(d.reason).toMatch(/^(alia: semantic-negative-wins|dedup: near-duplicate)/);
    if (of('empty').length) expect(of('empty').some((d) => d.reason!.startsWith('alia: semantic-negative-wins'))).toBe(true);
    for (const d of of('off-class')) expect(d.status).toBe('rejected');
    for (const d of of('near-duplicate')) expect(d.reason).toMatch(/^dedup: near-duplicate/);
    // Class-balanced subsample to 24 (filter.subsample).
    const kept = decisions.filter((d) => d.status === 'kept');
    expect(kept.length).toBe(24);
    const drawnOut = decisions.filter((d) => d.reason?.startsWith('subsample: not-drawn'));
    expect(drawnOut.length).toBeGreaterThan(0);
    // The set: the kept edits under their asked class, plus the real images of one class (dataset.include_real).
    for (const d of kept) expect(ds.byClass(d.category)).toContain(d.file);
    const generatedInSet = ds.folder.samples.filter((s) => !s.file.startsWith('real_')).length;
    expect(generatedInSet).toBe(kept.length);
    expect(ds.folder.samples.length).toBe(summary.stages.dataset!.summary.images);
    const conf = (summary.stages.score!.summary.alia as { confidence: { thresholds: Record<string, number | null> } }).confidence;
    for (const v of Object.values(conf.thresholds)) if (v !== null) expect(v).toBeGreaterThan(0), expect(v).toBeLessThanOrEqual(1);
    const html = await readFile(join(run, 'report', 'report.html'), 'utf8');
    // The report draws ALIA's own two filters.
    for (const t of ['ALIA semantic: probability of the positive text', 'ALIA confidence: top probability minus the class']) expect(html).toContain(t);

    // Nothing kept: the empty set is an error unless allowed; allowed, the set is the real images alone.
    // Run again: every stage is up to date (the stand-in is gone; nothing asks it).
    const cfgPath = join(out, 'run.yaml');
    expect((await runPipeline(await loadConfig(cfgPath, { checkServers: false }))).ran).toEqual([]);
    const cfg = parse(await readFile(cfgPath, 'utf8')) as Record<string, Record<string, unknown>>;
    cfg.filter = { ...cfg.filter, subsample: 0 };
    await writeFile(cfgPath, stringify(cfg));
    await expectCode(runPipeline(await loadConfig(cfgPath, { checkServers: false })), 'E_EMPTY', /allow_empty/);
    cfg.dataset = { ...cfg.dataset, allow_empty: true };
    await writeFile(cfgPath, stringify(cfg));
    // Only the stages from the changed option on run (the filter with subsample 0 finished in the refused run).
    expect((await runPipeline(await loadConfig(cfgPath, { checkServers: false }))).ran).toEqual(['dataset', 'report']);
    const again = await readDataset(summary.runDir);
    expect(again.folder.samples.every((s) => s.file.startsWith('real_'))).toBe(true);
    expect(again.folder.samples.length).toBeGreaterThan(0);
  }, 60_000);

  it('caption-prompts: one image per captioned real image, "a photo of {class}, {caption}", nothing filtered', async () => {
    const { summary, decisions, ds } = await demo('caption-prompts');
    const run = summary.runDir;
    const captions = new Map((await jsonl<{ image_id: number; caption: string }>(join(run, 'plan', 'plan.jsonl.captions.jsonl'))).map((c) => [c.image_id, c.caption]));
    const plan = await jsonl<{ prompt: string; classes: string[]; candidates: number; provenance: { image_id: number } }>(join(run, 'plan', 'plan.jsonl'));
    expect(plan.length).toBeGreaterThan(0);
    for (const j of plan) {
      expect(j.candidates).toBe(1);
      const cap = captions.get(j.provenance.image_id);
      expect(cap, `caption of image ${j.provenance.image_id}`).toBeDefined();
      expect(j.prompt).toBe(`a photo of ${j.classes[0]}, ${cap!.replace(/\.+$/, '')}`);
    }
    // The stand-in captions what it sees by colour: most captions of an image of the class name it (a small or
    // half-hidden object can fall under the stand-in's 0.4% pixel bar).
    const named = plan.filter((j) => captions.get(j.provenance.image_id)!.includes(`${COLOUR_WORDS[j.classes[0]!]} ${j.classes[0]}`));
    expect(named.length).toBeGreaterThanOrEqual(0.8 * plan.length);
    // The method filters nothing: every generated image is in the set under its class, planted failures included.
    expect(decisions.every((d) => d.status === 'kept')).toBe(true);
    for (const d of decisions) expect(ds.byClass(d.category)).toContain(d.file);
    expect(ds.folder.samples.length).toBe(decisions.length);
  }, 60_000);

  it('ddft: meanings chosen with CLIP, contextual + style prompts, the set and aux-BN statistics per domain', async () => {
    const { summary, decisions, ds } = await demo('ddft');
    const run = summary.runDir;
    const meanings = JSON.parse(await readFile(join(run, 'plan', 'meanings.jsonl.meanings.json'), 'utf8')) as { meanings: Array<{ class: string; meaning: string; method: string; candidates: Array<{ text: string; score?: number }> }> };
    for (const m of meanings.meanings) {
      // The candidate that names the drawn colour scores best against the real images of the class.
      expect(m.method).toBe('clip');
      expect(m.meaning).toContain(COLOUR_WORDS[m.class]!);
      const best = Math.max(...m.candidates.map((c) => c.score ?? -Infinity));
      expect(m.candidates.find((c) => c.text === m.meaning)!.score).toBe(best);
    }
    const plan = await jsonl<{ prompt: string; classes: string[]; provenance: { mode?: string } }>(join(run, 'plan', 'plan.jsonl'));
    const modes = new Set(plan.map((j) => j.provenance.mode));
    expect([...modes].sort()).toEqual(['context', 'style']);
    for (const j of plan) {
      const c = j.classes[0]!;
      expect(j.prompt).toContain(c);
      if (j.provenance.mode === 'style') expect(j.prompt).toMatch(new RegExp(`^an? .+ of an? ${c}, ${meanings.meanings.find((m) => m.class === c)!.meaning}$`));
    }
    expect(ds.folder.samples.filter((s) => !s.file.startsWith('real_')).length).toBe(decisions.filter((d) => d.status === 'kept').length);

    // aux-BN: a safetensors header (u64 little-endian length, JSON) with a state dict's names for each BN layer.
    const buf = await readFile(join(run, 'bnstats', 'auxbn.safetensors'));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
    expect(names).toEqual(['bn1.aux_bn.num_batches_tracked', 'bn1.aux_bn.running_mean', 'bn1.aux_bn.running_var', 'bn1.num_batches_tracked', 'bn1.running_mean', 'bn1.running_var']);
    const tensor = (k: string) => {
      const t = header[k]!;
      const bytes = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
      return t.dtype === 'F32' ? Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))) : [Number(bytes.readBigInt64LE(0))];
    };
    for (const k of ['bn1.running_mean', 'bn1.running_var', 'bn1.aux_bn.running_mean', 'bn1.aux_bn.running_var']) {
      expect(header[k]!.dtype).toBe('F32');
      expect(header[k]!.shape).toEqual([6]);
    }
    // The BN input is a colour membership in [0, 1] per pixel: means in [0, 1], variances in [0, 0.25].
    for (const k of ['bn1.running_mean', 'bn1.aux_bn.running_mean']) for (const v of tensor(k)) expect(v).toBeGreaterThanOrEqual(0), expect(v).toBeLessThanOrEqual(1);
    for (const k of ['bn1.running_var', 'bn1.aux_bn.running_var']) for (const v of tensor(k)) expect(v).toBeGreaterThanOrEqual(0), expect(v).toBeLessThanOrEqual(0.25 + 1e-6);
    // Domain 0 is the real scenes (small objects on textured ground), domain 1 the kept synthetic images (one large
    // shape each): the synthetic domain has more class-coloured pixels in all.
    const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
    expect(sum(tensor('bn1.aux_bn.running_mean'))).toBeGreaterThan(sum(tensor('bn1.running_mean')));
    const used = (summary.stages.bnstats!.summary.images as Array<{ used: number }>).map((x) => x.used);
    expect(used[1]).toBe(decisions.filter((d) => d.status === 'kept').length);
    expect(existsSync(summary.outputs.auxbn!)).toBe(true);
  }, 60_000);
});
