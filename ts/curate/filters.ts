/**
 * The keep/drop rules of the seed methods over a scores table (spec
 * ALGORITHMS.md §1.2, §2.3, §4). Every sample gets one decision with the
 * reason and the numbers behind it; the first rule that rejects a sample names
 * the reason. Rules (columns they read in brackets):
 * - `xpaste`: per-category bar b_c = min(minClip, best_c − tol) on the ×100
 *   CLIP score [clip_score, category], and minArea ≤ area fraction ≤ maxArea [area_fraction];
 * - `divergen`: inter-similarity ≥ threshold [inter_sim_mean, or the column
 *   named]; a sample without a score (its category has no real crops) is
 *   rejected unless its category is exempt (or `exemptMissing`);
 * - `acp`: best-of-N: per plan job [job], keep the argmax CLIS-I [clis_i]
 *   (ties: the first in table order); exactly −1 (the judge's sentinel for an
 *   unparseable grade) rejects; any other score competes, negative CLIP-mode
 *   scores included;
 * - `dedup`: one sample per near-duplicate group [dup_group]: the first in table order;
 * - `border`: drop an instance whose box touches its image's border (cut off by the frame) [touches_border];
 * - `area`: minArea ≤ area fraction ≤ maxArea [area_fraction];
 * - `own-class`: drop a sample closer to another class's real crops than to its own [best_class, category]
 *   (exempt categories, which have no real crops, are not judged by it nor by `knn`);
 * - `knn`: of its k nearest real crops at least min(knnMin, ⌈real crops of its class / 2⌉) share its class
 *   (a rare class cannot have most of k neighbours among its few crops) [knn_agree, knn_k, real_count];
 * Every column a rule reads must exist (E_FORMAT naming column and rule); a
 * row with a null value is rejected with its reason (scoring-error when the
 * row records an *_error), except DiverGen's no-real-crops exemptions.
 * - `alia`: semantic: drop when a negative text wins [alia_winner > 0];
 *   confidence: drop when max prob > the intended class's threshold
 *   [alia_max_prob, alia_threshold, alia_pred, alia_label]: "too-easy" when
 *   the prediction is the intended class, else "likely-mislabeled".
 */
import type { ScoreColumns, ScoreTable } from './table.js';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { writeFileAtomic } from '../io/atomic.js';
import { GenaugError } from '../native/errors.js';
import { itemSeed } from '../plan/core.js';
import { seededRandom } from '../util/random.js';

export interface Decision {
  id: string;
  kept: boolean;
  /** Why it was dropped (rule:reason), or the rules it passed. */
  reason: string;
  /** The numbers the decision used. */
  values: Record<string, unknown>;
}

export interface FilterOptions {
  // X-Paste
  minClip?: number;
  tol?: number;
  minArea?: number;
  maxArea?: number;
  // DiverGen
  threshold?: number;
  similarityColumn?: string;
  exemptCategories?: string[];
  exemptMissing?: boolean;
  // ACP
  scoreColumn?: string;
  groupColumn?: string;
  // knn
  knnMin?: number;
}

export type Rule = 'xpaste' | 'divergen' | 'acp' | 'dedup' | 'alia' | 'border' | 'area' | 'own-class' | 'knn';

export const PRESETS: Record<'xpaste' | 'divergen' | 'acp' | 'alia', Rule[]> = {
  xpaste: ['xpaste'],
  divergen: ['divergen'],
  acp: ['acp'],
  alia: ['alia'],
};

export const FILTER_DEFAULTS = { minClip: 21, tol: 1, minArea: 0.05, maxArea: 0.95, threshold: 0.6, similarityColumn: 'inter_sim_mean', scoreColumn: 'clis_i', groupColumn: 'job', knnMin: 3 };

const num = (v: unknown): number | null => (typeof v === 'number' && !Number.isNaN(v) ? v : null);

const hasColumn = (table: ScoreTable, column: string): boolean => {
  for (const row of table.values()) if (column in row) return true;
  return false;
};

/** The columns a rule reads must exist (a rule never passes or fails samples silently on a missing column). */
function need(table: ScoreTable, column: string, rule: string): void {
  if (table.size > 0 && !hasColumn(table, column)) {
    throw new GenaugError('E_FORMAT', `the ${rule} filter needs a "${column}" column; the scores table has none (run the matching genaug score first)`, { column, rule });
  }
}

/** The error a score command recorded on this row for `column` (column_error, else any *_error), if any. */
function rowError(row: ScoreColumns, column: string): string | null {
  const own = row[`${column}_error`];
  if (typeof own === 'string' && own) return own;
  for (const [k, v] of Object.entries(row)) if (k.endsWith('_error') && typeof v === 'string' && v) return v;
  return null;
}

type Verdict = { drop: string | null; values: Record<string, unknown> };
type RuleFn = (table: ScoreTable, o: Required<FilterOptions>) => Map<string, Verdict>;

const xpaste: RuleFn = (table, o) => {
  need(table, 'clip_score', 'xpaste');
  need(table, 'category', 'xpaste');
  need(table, 'area_fraction', 'xpaste');
  const best = new Map<string, number>();
  for (const row of table.values()) {
    const s = num(row.clip_score);
    const c = String(row.category ?? '');
    if (s !== null) best.set(c, Math.max(best.get(c) ?? -Infinity, s));
  }
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const s = num(row.clip_score);
    const c = String(row.category ?? '');
    const area = num(row.area_fraction);
    const bar = Math.min(o.minClip, (best.get(c) ?? Infinity) - o.tol);
    const err = rowError(row, 'clip_score');
    const values: Record<string, unknown> = { clip_score: s, bar, area_fraction: area, category: c };
    if (row.area_fraction_source !== undefined) values.area_fraction_source = row.area_fraction_source;
    if (err) values.error = err;
    let drop: string | null = null;
    if (s === null) drop = err ? 'scoring-error' : 'no-clip-score';
    else if (s < bar) drop = 'clip-below-bar';
    else if (area === null) drop = 'no-area-fraction';
    else if (area < o.minArea || area > o.maxArea) drop = 'area-out-of-range';
    out.set(id, { drop, values });
  }
  return out;
};

const divergen: RuleFn = (table, o) => {
  need(table, o.similarityColumn, 'divergen');
  need(table, 'category', 'divergen');
  const exempt = new Set(o.exemptCategories);
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const s = num(row[o.similarityColumn]);
    const c = String(row.category ?? '');
    const err = rowError(row, o.similarityColumn);
    const values: Record<string, unknown> = { [o.similarityColumn]: s, threshold: o.threshold, category: c };
    if (err) values.error = err;
    let drop: string | null = null;
    // A null score with a recorded error is that sample's failure; without one, its category has no real crops.
    if (s === null && err) drop = 'scoring-error';
    else if (s === null) drop = exempt.has(c) || o.exemptMissing ? null : 'no-real-crops';
    else if (s < o.threshold) drop = 'similarity-below-threshold';
    out.set(id, { drop, values });
  }
  return out;
};

/** CLIS-I judge mode's score when a grade stayed unparseable (clisImageJudge); CLIP-mode scores may be any real. */
const JUDGE_UNPARSEABLE = -1;

const acp: RuleFn = (table, o) => {
  need(table, o.scoreColumn, 'acp');
  const best = new Map<string, { id: string; s: number }>();
  for (const [id, row] of table) {
    const s = num(row[o.scoreColumn]);
    const g = String(row[o.groupColumn] ?? id);
    if (s === null || s === JUDGE_UNPARSEABLE) continue;
    const b = best.get(g);
    if (!b || s > b.s) best.set(g, { id, s });
  }
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const s = num(row[o.scoreColumn]);
    const g = String(row[o.groupColumn] ?? id);
    const err = rowError(row, o.scoreColumn);
    const values: Record<string, unknown> = { [o.scoreColumn]: s, [o.groupColumn]: g, best: best.get(g)?.s ?? null };
    if (err) values.error = err;
    let drop: string | null = null;
    if (s === null) drop = err ? 'scoring-error' : 'no-score';
    else if (s === JUDGE_UNPARSEABLE) drop = 'unparseable-judge-answer';
    else if (best.get(g)!.id !== id) drop = 'not-best-of-n';
    out.set(id, { drop, values });
  }
  return out;
};

const dedup: RuleFn = (table) => {
  need(table, 'dup_group', 'dedup');
  const first = new Map<string, string>();
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const g = row.dup_group;
    if (g === null || g === undefined) {
      out.set(id, { drop: 'no-dup-group', values: { dup_group: null } });
      continue;
    }
    const key = String(g);
    const f = first.get(key);
    if (f === undefined) first.set(key, id);
    out.set(id, { drop: f === undefined ? null : 'near-duplicate', values: { dup_group: g, kept_instead: f ?? null } });
  }
  return out;
};

const ALIA_CONFIDENCE = ['alia_max_prob', 'alia_threshold', 'alia_pred', 'alia_label'];

const alia: RuleFn = (table) => {
  // ALIA has two filters: semantic [alia_winner] and confidence [ALIA_CONFIDENCE]; at least one must have been scored,
  // and a filter's columns must be complete. A row with a null score of a scored filter is rejected with the reason.
  const semantic = table.size > 0 && hasColumn(table, 'alia_winner');
  const present = ALIA_CONFIDENCE.filter((c) => hasColumn(table, c));
  const confidence = table.size > 0 && present.length > 0;
  if (confidence) for (const c of ALIA_CONFIDENCE) need(table, c, 'alia (confidence)');
  if (table.size > 0 && !semantic && !confidence) {
    throw new GenaugError('E_FORMAT', 'the alia filter needs the "alia_winner" column (genaug score alia-semantic) or the alia_max_prob/alia_threshold/alia_pred/alia_label columns (genaug score alia-confidence); the scores table has neither', { rule: 'alia' });
  }
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const winner = num(row.alia_winner);
    const conf = num(row.alia_max_prob);
    const thr = num(row.alia_threshold);
    const pred = row.alia_pred;
    const label = row.alia_label;
    const values: Record<string, unknown> = { alia_winner: winner, alia_max_prob: conf, alia_threshold: thr, alia_pred: pred ?? null, alia_label: label ?? null };
    const err = rowError(row, 'alia');
    if (err) values.error = err;
    let drop: string | null = null;
    if (semantic && winner === null) drop = err ? 'scoring-error' : 'no-semantic-score';
    else if (semantic && winner! > 0) drop = 'semantic-negative-wins';
    else if (confidence && conf === null) drop = err ? 'scoring-error' : 'no-confidence-score';
    // A class without real images has no threshold (NaN → null): nothing to compare with, so that rule does not drop.
    else if (confidence && thr !== null && conf! > thr) drop = pred === label ? 'too-easy' : 'likely-mislabeled';
    out.set(id, { drop, values });
  }
  return out;
};

const border: RuleFn = (table) => {
  need(table, 'touches_border', 'border');
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const t = row.touches_border;
    out.set(id, { drop: t === true ? 'touches-border' : t === false ? null : 'no-border-value', values: { touches_border: t ?? null } });
  }
  return out;
};

const area: RuleFn = (table, o) => {
  need(table, 'area_fraction', 'area');
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const a = num(row.area_fraction);
    const drop = a === null ? 'no-area-fraction' : a < o.minArea ? 'area-below-min' : a > o.maxArea ? 'area-above-max' : null;
    out.set(id, { drop, values: { area_fraction: a, min_area: o.minArea, max_area: o.maxArea } });
  }
  return out;
};

const ownClass: RuleFn = (table, o) => {
  need(table, 'best_class', 'own-class');
  need(table, 'category', 'own-class');
  // An exempt category (no real crops of its own, e.g. DiverGen's extras) can never be nearest to itself: not judged.
  const exempt = new Set(o.exemptCategories);
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const best = row.best_class;
    const c = String(row.category ?? '');
    const drop = exempt.has(c) ? null : best === null || best === undefined ? 'no-best-class' : String(best) !== c ? 'closer-to-another-class' : null;
    out.set(id, { drop, values: { best_class: best ?? null, best_sim: row.best_sim ?? null } });
  }
  return out;
};

const knn: RuleFn = (table, o) => {
  for (const c of ['knn_agree', 'knn_k', 'real_count']) need(table, c, 'knn');
  const exempt = new Set(o.exemptCategories);
  const out = new Map<string, Verdict>();
  for (const [id, row] of table) {
    const agree = num(row.knn_agree);
    const real = num(row.real_count) ?? 0;
    const needed = Math.min(o.knnMin, Math.ceil(real / 2));
    const drop = exempt.has(String(row.category ?? '')) ? null : agree === null ? 'no-knn-score' : agree < needed ? 'knn-disagrees' : null;
    out.set(id, { drop, values: { knn_agree: agree, knn_k: row.knn_k ?? null, knn_needed: needed } });
  }
  return out;
};

const RULES: Record<Rule, RuleFn> = { xpaste, divergen, acp, dedup, alia, border, area, 'own-class': ownClass, knn };

/** Applies the rules in order; a sample is kept when no rule drops it. */
export function applyFilters(table: ScoreTable, rules: Rule[], options: FilterOptions = {}): Decision[] {
  const o = { ...FILTER_DEFAULTS, exemptCategories: [], exemptMissing: false, ...options } as Required<FilterOptions>;
  for (const r of rules) if (!(r in RULES)) throw new GenaugError('E_ARGUMENT', `unknown filter rule "${r}"; rules: ${Object.keys(RULES).join(', ')}`);
  const verdicts = rules.map((r) => [r, RULES[r](table, o)] as const);
  const out: Decision[] = [];
  for (const id of table.keys()) {
    const values: Record<string, unknown> = {};
    let reason: string | null = null;
    for (const [r, v] of verdicts) {
      const x = v.get(id)!;
      Object.assign(values, x.values);
      if (x.drop && reason === null) reason = `${r}:${x.drop}`;
    }
    out.push({ id, kept: reason === null, reason: reason ?? `passed ${rules.join('+')}`, values });
  }
  return out;
}

/** How many of each class a class-balanced draw of `n` takes: equal shares, a class with fewer gives its rest to the others. */
export function balancedQuotas(available: readonly number[], n: number): number[] {
  const quota = available.map(() => 0);
  let left = Math.min(n, available.reduce((a, b) => a + b, 0));
  while (left > 0) {
    const open = available.map((a, i) => i).filter((i) => (available[i] as number) > (quota[i] as number));
    const share = Math.floor(left / open.length);
    if (share === 0) {
      // Fewer left than open classes: one more each to the first ones, in class order.
      for (const i of open.slice(0, left)) quota[i]!++;
      break;
    }
    for (const i of open) {
      const take = Math.min(share, (available[i] as number) - (quota[i] as number));
      quota[i]! += take;
      left -= take;
    }
  }
  return quota;
}

/**
 * ALIA's class-balanced subsampling of the kept samples to `n` in all: each class (the table's `category`)
 * gets an equal share (balancedQuotas), drawn by seed within the class; the kept samples not drawn are
 * dropped with the reason `subsample:not-drawn`. Nothing changes when at most `n` are kept.
 */
export function balancedSubsample(decisions: Decision[], table: ScoreTable, n: number, seed: number): Decision[] {
  if (!Number.isInteger(n) || n < 0) throw new GenaugError('E_RANGE', `subsample must be an integer >= 0, got ${n}`);
  const byClass = new Map<string, Decision[]>();
  for (const d of decisions) {
    if (!d.kept) continue;
    const c = String(table.get(d.id)?.category ?? '');
    let l = byClass.get(c);
    if (!l) byClass.set(c, (l = []));
    l.push(d);
  }
  const kept = [...byClass.values()].reduce((a, l) => a + l.length, 0);
  if (kept <= n) return decisions;
  const classes = [...byClass.keys()];
  const quotas = balancedQuotas(classes.map((c) => byClass.get(c)!.length), n);
  const drawn = new Set<string>();
  classes.forEach((c, k) => {
    const list = byClass.get(c)!.map((d) => d.id);
    const random = seededRandom(itemSeed(seed, `subsample:${c}`));
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [list[i], list[j]] = [list[j] as string, list[i] as string];
    }
    for (const id of list.slice(0, quotas[k])) drawn.add(id);
  });
  const quotaOf = new Map(classes.map((c, k) => [c, quotas[k] as number]));
  return decisions.map((d) => {
    if (!d.kept) return d;
    const c = String(table.get(d.id)?.category ?? '');
    const values = { ...d.values, subsample: n, class_quota: quotaOf.get(c) ?? 0 };
    return drawn.has(d.id) ? { ...d, values } : { ...d, kept: false, reason: 'subsample:not-drawn', values };
  });
}

/** Keeps rows of a table with columns of interest, for messages. */
export function rowOf(table: ScoreTable, id: string): ScoreColumns | undefined {
  return table.get(id);
}

/** A decision's reason for people: "rule: reason (column value, ...)" for a drop, else the rules passed. */
export function describeDecision(d: Decision): string {
  if (d.kept) return d.reason;
  const values = Object.entries(d.values)
    .filter(([k, v]) => k !== 'category' && v !== null && v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toFixed(4)) : String(v)}`);
  return `${d.reason.replace(':', ': ')}${values.length ? ` (${values.join(', ')})` : ''}`;
}

/** Writes kept decisions to `out` and the rejected ones to `rejected` (JSON lines {id, reason, ...values}), atomically. */
export async function writeDecisions(decisions: Decision[], out: string, rejected: string): Promise<void> {
  const line = (d: Decision) => JSON.stringify({ id: d.id, reason: d.reason, ...d.values });
  const enc = (l: string[]) => new TextEncoder().encode(l.join('\n') + (l.length ? '\n' : ''));
  for (const p of [out, rejected]) await mkdir(dirname(resolve(p)), { recursive: true });
  await writeFileAtomic(out, enc(decisions.filter((d) => d.kept).map(line)));
  await writeFileAtomic(rejected, enc(decisions.filter((d) => !d.kept).map(line)));
}

/**
 * One line of a run's ledger (genaug run's filter/decisions.jsonl): every
 * planned image once, with the stage that decided it and, when it was scored,
 * its row of the scores table.
 */
export interface LedgerEntry {
  file: string;
  category: string;
  status: 'kept' | 'rejected' | 'failed';
  /** The stage that decided: generate, annotate or filter. */
  stage: 'generate' | 'annotate' | 'filter';
  reason?: string;
  /** The procedural generator's ground truth (demo runs). */
  truth?: string;
  score?: ScoreColumns;
  /** X-Paste's several segmenters: each one's CLIP score and the mask annotate kept (annotate's record). */
  segmenters?: { picked: number; candidates: Array<{ model: string; clipScore: number; areaFraction: number }> };
}

/** A scored row's similarity to the real crops of its own class (inter_sim_mean, else inter_sim_max), if any. */
export function ownSimilarity(row: ScoreColumns | undefined): number | undefined {
  const v = row?.inter_sim_mean ?? row?.inter_sim_max;
  return typeof v === 'number' ? v : undefined;
}
