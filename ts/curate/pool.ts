/**
 * The instance pool a run pastes from: the kept instances of an annotated
 * pool (`genaug annotate`'s folder), copied into POOL/instances/<class>/, with
 * POOL/index.json in genaug's pool layout (what `genaug paste` and the online
 * loader read) and POOL/size_prior.json, X-Paste's area_mean_std2.json
 * ({"<real category id>": [mean, std]} of sqrt(box area / image area)) from
 * the real dataset.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import type { CocoIndex } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { categoryPriors } from '../plan/priors.js';
import { readJson, writeJson } from '../util/jsonl.js';
import { ownSimilarity } from './filters.js';
import { round6, type ScoreTable } from './table.js';

export interface PoolEntry {
  /** The crop, relative to the pool folder. */
  file: string;
  /** The generated image it was cut from. */
  source: string;
  /** Its similarity to the real crops of its class (0 when not scored). */
  score: number;
  areaFraction: number;
  /** The instance's box in its generated image ([x, y, w, h]; w x h is the crop size). */
  bbox: number[];
}

export interface SelectPoolOptions {
  /** The annotated pool folder (index.json with {categories: {name: [{file, source, bbox}]}}). */
  annotated: string;
  /** The kept samples, by generated file (the scores table's ids). */
  kept: Iterable<string>;
  /** The scores table: category, similarity and area fraction of each kept sample. */
  scores: ScoreTable;
  /** The real dataset (size priors; the classes when `classes` is absent: every category by id). */
  coco: CocoIndex;
  /** The classes of the pool, in order (index.json lists every one, empty or not). */
  classes?: string[];
  /** Keep at most this many per class, the most similar first (0: all). */
  maxPerClass?: number;
  out: string;
  /** Write a pool with no instance instead of failing with E_EMPTY (default false). */
  allowEmpty?: boolean;
}

/** A class name as a folder name. */
export const slug = (name: string) => name.replace(/[^A-Za-z0-9_-]+/g, '_');

/** Writes the pool of the kept instances; returns the count per class. */
export async function selectPool(o: SelectPoolOptions): Promise<{ instances: number; perClass: Record<string, number> }> {
  const classes = o.classes ?? [...o.coco.dataset.categories].sort((a, b) => a.id - b.id).map((c) => c.name);
  const maxPer = o.maxPerClass ?? 0;
  if (!Number.isInteger(maxPer) || maxPer < 0) throw new GenaugError('E_RANGE', `maxPerClass must be an integer >= 0, got ${maxPer}`);
  const annotated = resolve(o.annotated);
  const index = await readJson<{ categories?: Record<string, Array<{ file: string; source: string; bbox: number[] }>> }>(join(annotated, 'index.json')).catch((e: unknown) => {
    throw new GenaugError('E_IO', `${join(annotated, 'index.json')}: not an annotated pool (${(e as Error).message})`, { path: annotated });
  });
  if (!index.categories || typeof index.categories !== 'object') throw new GenaugError('E_FORMAT', `${join(annotated, 'index.json')} has no "categories" object`);
  const bySource = new Map(Object.values(index.categories).flatMap((l) => l.map((e) => [e.source, e] as const)));
  // The kept ids by class, in kept order (one pass: classes x kept would be quadratic on LVIS).
  const byClass = new Map<string, string[]>();
  for (const id of o.kept) {
    const cls = o.scores.get(id)?.category;
    if (typeof cls !== 'string') continue;
    let l = byClass.get(cls);
    if (!l) byClass.set(cls, (l = []));
    l.push(id);
  }
  const own = (id: string) => ownSimilarity(o.scores.get(id)) ?? 0;
  // Choose first, write after: an empty pool is refused before anything is written.
  const chosen: Array<{ cls: string; picks: Array<{ id: string; file: string; bbox: number[] }> }> = [];
  let total = 0;
  for (const cls of classes) {
    let ids = byClass.get(cls) ?? [];
    if (maxPer > 0) ids = [...ids].sort((a, b) => own(b) - own(a) || a.localeCompare(b)).slice(0, maxPer);
    const picks = ids.flatMap((id) => {
      const inst = bySource.get(id);
      return inst ? [{ id, file: inst.file, bbox: inst.bbox ?? [] }] : [];
    });
    total += picks.length;
    chosen.push({ cls, picks });
  }
  if (total === 0 && !o.allowEmpty) {
    const kept = [...byClass.values()].reduce((n, l) => n + l.length, 0);
    throw new GenaugError(
      'E_EMPTY',
      `the pool would be empty: ${kept ? `none of the ${kept} kept samples is an instance of the annotated pool ${annotated}` : 'no generated sample was kept'}` +
        ` (classes: ${classes.join(', ') || 'none'}); pasting from it would export the real images alone.` +
        ' Look at the filter decisions for why, or allow an empty pool (genaug pool --allow-empty; pool.allow_empty: true in a run config)',
      { path: o.out },
    );
  }
  const categories: Record<string, PoolEntry[]> = {};
  for (const { cls, picks } of chosen) {
    const entries: PoolEntry[] = [];
    for (const { id, file, bbox } of picks) {
      const to = `instances/${slug(cls)}/${file.split('/').pop()}`;
      await mkdir(join(o.out, dirname(to)), { recursive: true });
      await copyFile(join(annotated, file), join(o.out, to));
      entries.push({ file: to, source: id, score: own(id), areaFraction: Number(o.scores.get(id)?.area_fraction ?? 0), bbox });
    }
    categories[cls] = entries.sort((a, b) => a.file.localeCompare(b.file));
  }
  await writeJson(join(o.out, 'index.json'), { categories });
  const sizes: Record<string, [number, number]> = {};
  for (const p of categoryPriors(o.coco)) if (p.size) sizes[String(p.id)] = [round6(p.size.mean), round6(p.size.std)];
  await writeJson(join(o.out, 'size_prior.json'), sizes);
  const perClass = Object.fromEntries(Object.entries(categories).map(([k, v]) => [k, v.length]));
  return { instances: Object.values(perClass).reduce((s, v) => s + v, 0), perClass };
}
