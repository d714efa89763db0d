/**
 * `genaug demo --preset xpaste`: X-Paste's method whole, with the tiny hand-set CLIP of ts/demo/tiny-models.ts. The
 * oracles: X-Paste's filter rule recomputed here from the scores table (per category, bar = min(min_clip, best -
 * tolerance) over the samples inside the area limits; kept iff clip_score >= bar and the area is inside them), the
 * procedural generator's truth for what each planted failure became, and the plain COCO decoder of coco-oracle.ts
 * for the pasted dataset.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, it } from 'vitest';

import { checkCoco } from './coco-oracle.js';
import { tempFolder } from './helpers.js';

const bin = join(__dirname, '..', 'bin', 'genaug.js');
const tmp = tempFolder('genaug-demo-xpaste-');
let out: string;

interface Decision {
  file: string;
  category: string;
  truth?: string;
  status: 'kept' | 'rejected' | 'failed';
  stage: string;
  reason?: string;
  score?: { clip_score: number; area_fraction: number };
}

const lines = <T>(text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

beforeAll(async () => {
  out = tmp.fresh('demo');
  await promisify(execFile)(process.execPath, [bin, 'demo', '--preset', 'xpaste', '--out', out, '--images', '24', '-q'], { maxBuffer: 1 << 26 });
}, 180_000);

describe('genaug demo --preset xpaste', () => {
  it("keeps exactly what X-Paste's per-category CLIP bar and area limits keep, recomputed here", async () => {
    const run = join(out, 'run');
    const cfg = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')) as { preset: string; stages: Record<string, { summary: { rules?: string[] } }> };
    expect(cfg.preset).toBe('xpaste');
    expect(cfg.stages.filter!.summary.rules).toEqual(['area', 'xpaste']);
    const decisions = lines<Decision>(await readFile(join(run, 'filter', 'decisions.jsonl'), 'utf8'));
    const scored = decisions.filter((d) => d.stage === 'filter');
    expect(scored.length).toBeGreaterThan(20);
    const inside = (d: Decision) => d.score!.area_fraction >= 0.05 && d.score!.area_fraction <= 0.95;
    const best = new Map<string, number>();
    for (const d of scored) if (inside(d)) best.set(d.category, Math.max(best.get(d.category) ?? -Infinity, d.score!.clip_score));
    for (const d of scored) {
      const bar = Math.min(21, (best.get(d.category) ?? Infinity) - 1);
      const keep = inside(d) && d.score!.clip_score >= bar;
      expect(d.status, `${d.file} (${d.category}, clip ${d.score!.clip_score}, bar ${bar})`).toBe(keep ? 'kept' : 'rejected');
      if (!keep) expect(d.reason).toMatch(/^(xpaste|area): /);
    }
    // What became of the planted failures: drawings of another class fall under the CLIP bar, empty images have no
    // mask; X-Paste keeps near-duplicates and border cut-offs (it has no rule for them).
    const fate = (truth: string) => decisions.filter((d) => d.truth === truth);
    expect(fate('off-class').length).toBeGreaterThan(0);
    for (const d of fate('off-class')) expect([d.status, d.reason?.slice(0, 24)]).toEqual(['rejected', 'xpaste: clip-below-bar (']);
    for (const d of fate('empty')) expect(d.status).toBe('rejected');
    for (const d of fate('ok')) expect(d.status).toBe('kept');
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as { preset: string; truth: Record<string, { kept: number; rejected: number }> };
    expect(summary.preset).toBe('xpaste');
    expect(summary.truth['off-class']).toMatchObject({ kept: 0, rejected: fate('off-class').length });
  });

  it('pastes the kept instances into the real images as COCO a plain decoder reads', async () => {
    const run = join(out, 'run');
    const coco = await checkCoco(join(run, 'paste', 'coco', 'annotations.json'), join(run, 'paste', 'coco', 'images'));
    const pasted = coco.annotations.filter((a) => a.instance_source === 'pasted');
    expect(pasted.length).toBeGreaterThan(0);
    // Every pasted instance is of a class the pool has, and the pool holds only kept samples.
    const pool = JSON.parse(await readFile(join(run, 'pool', 'index.json'), 'utf8')) as { categories: Record<string, Array<{ source: string }>> };
    const kept = new Set(lines<Decision>(await readFile(join(run, 'filter', 'decisions.jsonl'), 'utf8')).filter((d) => d.status === 'kept').map((d) => d.file));
    for (const list of Object.values(pool.categories)) for (const e of list) expect(kept.has(e.source), e.source).toBe(true);
    const names = new Map(coco.categories.map((c) => [c.id, c.name]));
    for (const a of pasted) expect(Object.keys(pool.categories)).toContain(names.get(a.category_id));
  });
});
