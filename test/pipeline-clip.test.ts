import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { loadConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { tinyClipWeights, writeClipFolder } from './clip-helpers.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-pipeline-clip-');
let root: string;

const config = (runDir: string, clip: string) => ({
  name: 'clip',
  seed: 3,
  run_dir: runDir,
  real: { coco: 'data/annotations.json', images: 'data/images' },
  plan: { per_class: 3, rare_per_class: 3, width: 64, height: 64 },
  annotate: { workers: 0 },
  embed: { model: 'clip', clip, batch: 4 },
  filter: { rules: ['dedup', 'xpaste'], dedup_threshold: 0.9999, min_clip: 21, clip_tolerance: 1 },
  paste: { max_samples: 3 },
  report: { thumbnails: 4, thumb_size: 32 },
});

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 9, images: 6 });
  await writeClipFolder(join(root, 'clip'), 'split', tinyClipWeights(16, 8, 7));
});

describe('genaug run with a CLIP model', () => {
  it('scores cut-outs with CLIP and applies X-Paste\'s per-category bar min(min_clip, best - tol)', async () => {
    const p = join(root, 'clip.yaml');
    await writeFile(p, stringify(config('run', 'clip')));
    const cfg = await loadConfig(p);
    const r = await runPipeline(cfg);
    expect(r.ran).toContain('report');
    const gen = (await readFile(join(root, 'run', 'embed', 'generated.index.jsonl'), 'utf8')).trim().split('\n');
    const table = (await readFile(join(root, 'run', 'score', 'scores.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { clip_score: number });
    expect(table.length).toBe(gen.length);
    for (const r of table) expect(Math.abs(r.clip_score)).toBeLessThanOrEqual(100.0001);
    const decisions = (await readFile(join(root, 'run', 'filter', 'decisions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { category: string; status: string; reason?: string; score?: { clip_score: number; dup_of: string | null; area_fraction: number } });
    const scored = decisions.filter((d) => d.score && d.score.dup_of === null);
    const best = new Map<string, number>();
    for (const d of scored) best.set(d.category, Math.max(best.get(d.category) ?? -Infinity, d.score!.clip_score));
    for (const d of scored) {
      const bar = Math.min(21, best.get(d.category)! - 1);
      const inArea = d.score!.area_fraction >= 0.05 && d.score!.area_fraction <= 0.95;
      const xpasteKeeps = d.score!.clip_score >= bar && inArea;
      expect(d.status === 'kept', `${d.category} ${d.score!.clip_score} vs bar ${bar}: ${d.reason}`).toBe(xpasteKeeps);
    }
    // Every category keeps at least its best sample (the bar is never above best - 1).
    for (const c of best.keys()) expect(scored.some((d) => d.category === c && d.status === 'kept'), c).toBe(true);
    const html = await readFile(join(root, 'run', 'report', 'report.html'), 'utf8');
    expect(html).toContain('X-Paste CLIP score');
    // The chart draws min_clip and the per-class bars below it (curate/filters.ts: over every scored row).
    const bars = new Map<string, number>();
    for (const d of decisions) if (d.score) bars.set(d.category, Math.max(bars.get(d.category) ?? -Infinity, d.score.clip_score - 1));
    const lower = [...bars].filter(([, b]) => b < 21).sort((a, b) => a[1] - b[1]);
    const chart = html.slice(html.indexOf('X-Paste CLIP score'), html.indexOf('</svg>', html.indexOf('X-Paste CLIP score')));
    const labels = [...chart.matchAll(/<line class="threshold"[^>]*\/><text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(labels[0]).toBe('min_clip 21');
    if (lower.length <= 4) expect(labels.slice(1)).toEqual(lower.map(([k, b]) => `${k} ${b.toFixed(1)}`));
    else expect(labels.slice(1)).toEqual([`lowest class bar ${lower[0]![1].toFixed(1)} (${lower.length} classes below min_clip)`]);
    // A changed model file (here: its modification time) makes embed and every stage after it run again.
    const { utimes } = await import('node:fs/promises');
    const later = new Date(Date.now() + 60_000);
    await utimes(join(root, 'clip', 'vision_model.onnx'), later, later);
    const again = await runPipeline(await loadConfig(p));
    expect(again.ran).toEqual(['embed', 'score', 'filter', 'pool', 'paste', 'report']);
  });

  it('plan.strategy ambiguity scores the candidate meanings with the run\'s CLIP model against real images', async () => {
    const p = join(root, 'ambiguity.yaml');
    await writeFile(p, stringify({ ...config('run-amb', 'clip'), plan: { strategy: 'ambiguity', per_class: 2, width: 64, height: 64 } }));
    const r = await runPipeline(await loadConfig(p), { until: 'plan' });
    expect(r.ran).toEqual(['plan']);
    type Meaning = { class: string; method: string; candidates: Array<{ text: string; score?: number }> };
    const doc = JSON.parse(await readFile(join(root, 'run-amb', 'plan', 'plan.jsonl.meanings.json'), 'utf8')) as { meanings: Meaning[] };
    expect(doc.meanings.length).toBeGreaterThan(0);
    // Classes with more than one candidate meaning were decided by CLIP, each candidate with its score.
    const decided = doc.meanings.filter((m) => m.candidates.length > 1);
    expect(decided.length).toBeGreaterThan(0);
    for (const m of decided) {
      expect(m.method, m.class).toBe('clip');
      for (const c of m.candidates) expect(typeof c.score, `${m.class}: ${c.text}`).toBe('number');
    }
    // The same plan without a CLIP model falls back (and the plan stage is a different one: its identity includes the model).
    const q = join(root, 'ambiguity-features.yaml');
    await writeFile(q, stringify({ ...config('run-amb-f', 'clip'), embed: { model: 'features' }, filter: { rules: [] }, plan: { strategy: 'ambiguity', per_class: 2, width: 64, height: 64 } }));
    await runPipeline(await loadConfig(q), { until: 'plan' });
    const plain = JSON.parse(await readFile(join(root, 'run-amb-f', 'plan', 'plan.jsonl.meanings.json'), 'utf8')) as { meanings: Meaning[] };
    expect(plain.meanings.every((m) => m.method !== 'clip')).toBe(true);
  });

  it('a CLIP folder with a missing tower fails at config time, naming embed.clip, before any work', async () => {
    await writeClipFolder(join(root, 'broken'), 'split', tinyClipWeights(16, 8, 7));
    await rm(join(root, 'broken', 'text_model.onnx'));
    const p = join(root, 'broken.yaml');
    await writeFile(p, stringify(config('never', 'broken')));
    await expectError(loadConfig(p), 'E_MODEL', 'embed.clip');
    expect(existsSync(join(root, 'never'))).toBe(false);
  });
});
