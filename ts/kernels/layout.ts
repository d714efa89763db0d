/**
 * CLIS-L, Auto Cherry-Picker's layout score (spec ALGORITHMS.md §1.3), in
 * native code: each relation (subject, predicate, object) of a layout is
 * compared with the real examples of that predicate whose subject and object
 * names are similar enough (relative size, IoU and relative centre distance,
 * direction), the pair takes the example score at rank ⌊n_hi/50⌋, and the
 * scene score is the confidence-weighted mean over its pairs (range ≈ [−1, 1]).
 *
 * Default: the intended formula (dist = ½·IoU term + ½·ρ term with ρ from each
 * side's own boxes). `faithful: true` reproduces the released code (dist = the
 * IoU term only). Any unknown predicate, missing/degenerate box or relation
 * without candidate examples makes the scene score 0 with a status saying why.
 *
 * Inputs: a batch of layouts (objects with names and xywh boxes, relations
 * referring to objects by index), a relation pool (see buildRelationPool and
 * ts/curate/relations.ts) and a name-similarity table between the layouts'
 * names and the pool's names (see ts/curate/relations.ts for builders).
 */
import type { NativeLayoutOptions, NativeLayoutScores } from '../native/addon.js';
import { type Device, resolveDevice } from '../native/device.js';
import { GenaugError } from '../native/errors.js';
import { native } from '../native/load.js';
import { checkInt, pinInputs } from '../native/validate.js';

/** A box in xywh, top-left origin (any unit; the score is scale-invariant except for the direction term's aspect). */
export type Box = [number, number, number, number];

export interface RelationExample {
  predicate: string;
  subject: string;
  object: string;
  subjectBox: Box;
  objectBox: Box;
  /** Where it came from (image id, caption, ...); kept in the ACP JSON form. */
  info?: Record<string, unknown>;
}

/** Examples grouped by predicate, in flat arrays for the native scorer. */
export interface RelationPool {
  /** Normalised predicate strings; predicate r owns examples [start[r], start[r+1]). */
  predicates: string[];
  /** The pool's (normalised) name vocabulary. */
  names: string[];
  start: Int32Array;
  subject: Int32Array;
  object: Int32Array;
  subjectBox: Float32Array;
  objectBox: Float32Array;
  /** 1 when the predicate mentions neither "left" nor "right" (its direction may be mirrored). */
  symmetric: Uint8Array;
  /** Per example, in pool order (optional). */
  info?: Array<Record<string, unknown> | undefined>;
}

/** Name similarity: values[q * poolNames.length + p] = similarity of layoutNames[q] to poolNames[p]. */
export interface NameSimilarity {
  layoutNames: string[];
  poolNames: string[];
  values: Float32Array;
}

export interface LayoutRelation {
  /** Object index (0-based) in the layout, or several (every subject/object pair is scored); -1 or null = unknown. */
  subject: number | number[] | null;
  predicate: string;
  object: number | number[] | null;
}

export interface SceneLayout {
  /** box null (or not finite, or w/h ≤ 0) counts as missing ("pred fail"). */
  objects: Array<{ name: string; box: Box | null }>;
  relations: LayoutRelation[];
}

export interface ClisLayoutOptions extends Omit<NativeLayoutOptions, 'cancel' | 'device'> {
  signal?: AbortSignal;
  /**
   * Where the example scores are computed: 'cpu' (default), 'cuda' (the GPU;
   * E_CUDA_UNAVAILABLE naming why without one) or 'auto' (CUDA when usable,
   * silently the CPU otherwise). The same bytes either way.
   */
  device?: Device;
}

export const LAYOUT_STATUS = ['ok', 'no-relations', 'unknown-predicate', 'missing-box', 'no-candidates'] as const;
export type LayoutStatus = (typeof LAYOUT_STATUS)[number];

export interface ClisLayoutResult {
  /** Scene CLIS-L per layout (0 on failure). */
  score: Float64Array;
  /** Scene confidence: min over its pairs' confidence (0 on failure). */
  confidence: Float64Array;
  status: LayoutStatus[];
  /** Index of the failing pair within its layout, -1 when none. */
  failedPair: Int32Array;
  /** Pair scores and confidences, layout after layout (NaN for pairs not reached); layout l owns [pairStart[l], pairStart[l+1]). */
  pairScore: Float64Array;
  pairConfidence: Float64Array;
  pairStart: Int32Array;
}

/** ACP's name normalisation: drop a `-k` id suffix, `_` → space, a space before `(`; lower case, single spaces. */
export function normalizeName(name: string): string {
  return String(name)
    .replace(/-\d+$/, '')
    .replace(/_/g, ' ')
    .replace(/\s*\(/g, ' (')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}

export function normalizePredicate(predicate: string): string {
  return String(predicate).toLowerCase().replace(/_/g, ' ').replace(/\s+/g, ' ').trim();
}

/** A predicate may be mirrored left-right unless it says left or right. */
export function isSymmetricPredicate(predicate: string): boolean {
  return !/left|right/.test(predicate);
}

const boxOk = (b: unknown): b is Box =>
  Array.isArray(b) && b.length === 4 && b.every((v) => typeof v === 'number' && Number.isFinite(v)) && (b[2] as number) > 0 && (b[3] as number) > 0;

/** Groups examples by (normalised) predicate, in first-seen order. Examples with unusable boxes are an error (E_RANGE, naming the index). */
export function buildRelationPool(examples: RelationExample[]): RelationPool {
  if (!Array.isArray(examples)) throw new GenaugError('E_TYPE', 'examples must be an array');
  const predIndex = new Map<string, number>();
  const nameIndex = new Map<string, number>();
  const byPred: number[][] = [];
  const names: string[] = [];
  const nameId = (n: string) => {
    let id = nameIndex.get(n);
    if (id === undefined) {
      id = names.length;
      names.push(n);
      nameIndex.set(n, id);
    }
    return id;
  };
  examples.forEach((e, i) => {
    if (typeof e !== 'object' || e === null || typeof e.predicate !== 'string' || typeof e.subject !== 'string' || typeof e.object !== 'string') {
      throw new GenaugError('E_TYPE', `examples[${i}] needs string predicate, subject and object`);
    }
    if (!boxOk(e.subjectBox) || !boxOk(e.objectBox)) {
      throw new GenaugError('E_RANGE', `examples[${i}] (${e.subject} ${e.predicate} ${e.object}) needs finite xywh boxes with w > 0 and h > 0`);
    }
    const p = normalizePredicate(e.predicate);
    let r = predIndex.get(p);
    if (r === undefined) {
      r = byPred.length;
      predIndex.set(p, r);
      byPred.push([]);
    }
    byPred[r]!.push(i);
  });
  const n = examples.length;
  const pool: RelationPool = {
    predicates: [...predIndex.keys()],
    names,
    start: new Int32Array(byPred.length + 1),
    subject: new Int32Array(n),
    object: new Int32Array(n),
    subjectBox: new Float32Array(4 * n),
    objectBox: new Float32Array(4 * n),
    symmetric: new Uint8Array(byPred.length),
    info: [],
  };
  let o = 0;
  byPred.forEach((list, r) => {
    pool.start[r] = o;
    pool.symmetric[r] = isSymmetricPredicate(pool.predicates[r]!) ? 1 : 0;
    for (const i of list) {
      const e = examples[i]!;
      pool.subject[o] = nameId(normalizeName(e.subject));
      pool.object[o] = nameId(normalizeName(e.object));
      pool.subjectBox.set(e.subjectBox, 4 * o);
      pool.objectBox.set(e.objectBox, 4 * o);
      pool.info!.push(e.info);
      o++;
    }
  });
  pool.start[byPred.length] = o;
  return pool;
}

/** The examples of a pool, in pool order. */
export function poolExamples(pool: RelationPool): RelationExample[] {
  const out: RelationExample[] = [];
  for (let r = 0; r < pool.predicates.length; r++) {
    for (let e = pool.start[r]!; e < pool.start[r + 1]!; e++) {
      const box = (a: Float32Array) => Array.from(a.subarray(4 * e, 4 * e + 4)) as Box;
      out.push({
        predicate: pool.predicates[r]!,
        subject: pool.names[pool.subject[e]!]!,
        object: pool.names[pool.object[e]!]!,
        subjectBox: box(pool.subjectBox),
        objectBox: box(pool.objectBox),
        ...(pool.info?.[e] ? { info: pool.info[e] } : {}),
      });
    }
  }
  return out;
}

/** ACP's pool JSON: {relation: [{subject, object, s_bbox, o_bbox, info}]}. */
export function poolToAcpJson(pool: RelationPool): Record<string, Array<Record<string, unknown>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const e of poolExamples(pool)) {
    (out[e.predicate] ??= []).push({ subject: e.subject, object: e.object, s_bbox: e.subjectBox, o_bbox: e.objectBox, info: e.info ?? {} });
  }
  return out;
}

/** Reads ACP's pool JSON (see poolToAcpJson). `source` names the file in errors. */
export function poolFromAcpJson(json: unknown, source = '<pool>'): RelationPool {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GenaugError('E_FORMAT', `${source}: a relation pool must be an object {relation: [examples]}`);
  }
  const examples: RelationExample[] = [];
  for (const [predicate, list] of Object.entries(json as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new GenaugError('E_FORMAT', `${source}: "${predicate}" must be a list of examples`);
    list.forEach((e: unknown, i) => {
      const x = e as Record<string, unknown>;
      if (typeof x !== 'object' || x === null || typeof x.subject !== 'string' || typeof x.object !== 'string' || !boxOk(x.s_bbox) || !boxOk(x.o_bbox)) {
        throw new GenaugError('E_FORMAT', `${source}: "${predicate}"[${i}] needs string subject/object and s_bbox/o_bbox [x, y, w, h] with w, h > 0`);
      }
      examples.push({
        predicate,
        subject: x.subject,
        object: x.object,
        subjectBox: x.s_bbox as Box,
        objectBox: x.o_bbox as Box,
        ...(typeof x.info === 'object' && x.info !== null ? { info: x.info as Record<string, unknown> } : {}),
      });
    });
  }
  return buildRelationPool(examples);
}

/** Every (normalised) object name of the layouts, sorted. */
export function layoutNames(layouts: SceneLayout[]): string[] {
  const set = new Set<string>();
  for (const l of layouts) for (const o of l.objects) set.add(normalizeName(o.name));
  return [...set].sort();
}

/** The flat arrays the native scorer takes. */
export interface PackedLayouts {
  names: number;
  objectStart: Int32Array;
  objectName: Int32Array;
  objectBox: Float32Array;
  relationStart: Int32Array;
  relationPredicate: Int32Array;
  relationSubject: Int32Array;
  relationObject: Int32Array;
  /** The similarity table re-ordered to (layout names of the table) x (pool.names). */
  sim: Float32Array;
}

const asList = (v: number | number[] | null | undefined): number[] => (v === null || v === undefined ? [-1] : Array.isArray(v) ? (v.length ? v : [-1]) : [v]);

/** Packs layouts against a pool and a similarity table; checks that every name is in the table. */
export function packLayouts(layouts: SceneLayout[], pool: RelationPool, sim: NameSimilarity): PackedLayouts {
  if (!Array.isArray(layouts)) throw new GenaugError('E_TYPE', 'layouts must be an array');
  checkSimilarity(sim);
  const P = pool.names.length;
  const simPool = new Map(sim.poolNames.map((n, i) => [normalizeName(n), i]));
  const perm = pool.names.map((n) => {
    const i = simPool.get(n);
    if (i === undefined) throw new GenaugError('E_ARGUMENT', `the name-similarity table has no column for the pool name "${n}"`);
    return i;
  });
  const Q = sim.layoutNames.length;
  const Pt = sim.poolNames.length;
  const values = new Float32Array(Q * P);
  for (let q = 0; q < Q; q++) for (let p = 0; p < P; p++) values[q * P + p] = sim.values[q * Pt + perm[p]!]!;
  const simLayout = new Map(sim.layoutNames.map((n, i) => [normalizeName(n), i]));
  const predIndex = new Map(pool.predicates.map((p, i) => [p, i]));
  let nObj = 0;
  let nRel = 0;
  layouts.forEach((l, li) => {
    if (typeof l !== 'object' || l === null || !Array.isArray(l.objects) || !Array.isArray(l.relations)) {
      throw new GenaugError('E_TYPE', `layouts[${li}] needs "objects" and "relations" arrays`);
    }
    nObj += l.objects.length;
    for (const r of l.relations) nRel += asList(r.subject).length * asList(r.object).length;
  });
  const out: PackedLayouts = {
    names: Q,
    objectStart: new Int32Array(layouts.length + 1),
    objectName: new Int32Array(nObj),
    objectBox: new Float32Array(4 * nObj).fill(Number.NaN),
    relationStart: new Int32Array(layouts.length + 1),
    relationPredicate: new Int32Array(nRel),
    relationSubject: new Int32Array(nRel),
    relationObject: new Int32Array(nRel),
    sim: values,
  };
  let o = 0;
  let k = 0;
  layouts.forEach((l, li) => {
    out.objectStart[li] = o;
    out.relationStart[li] = k;
    l.objects.forEach((obj, oi) => {
      const q = simLayout.get(normalizeName(obj?.name ?? ''));
      if (q === undefined) throw new GenaugError('E_ARGUMENT', `layouts[${li}].objects[${oi}]: the name-similarity table has no row for "${obj?.name}"`);
      out.objectName[o] = q;
      if (boxOk(obj.box)) out.objectBox.set(obj.box, 4 * o);
      o++;
    });
    const n = l.objects.length;
    for (const r of l.relations) {
      const pred = predIndex.get(normalizePredicate(r.predicate)) ?? -1;
      for (const s of asList(r.subject)) {
        for (const ob of asList(r.object)) {
          const idx = (v: number) => (Number.isInteger(v) && v >= 0 && v < n ? v : -1);
          out.relationPredicate[k] = pred;
          out.relationSubject[k] = idx(s);
          out.relationObject[k] = idx(ob);
          k++;
        }
      }
    }
  });
  out.objectStart[layouts.length] = o;
  out.relationStart[layouts.length] = k;
  return out;
}

function checkSimilarity(sim: NameSimilarity): void {
  if (typeof sim !== 'object' || sim === null || !Array.isArray(sim.layoutNames) || !Array.isArray(sim.poolNames) || !(sim.values instanceof Float32Array)) {
    throw new GenaugError('E_TYPE', 'the name similarity must be {layoutNames, poolNames, values: Float32Array}');
  }
  if (sim.values.length !== sim.layoutNames.length * sim.poolNames.length) {
    throw new GenaugError('E_SHAPE', `the name similarity has ${sim.values.length} values for ${sim.layoutNames.length} x ${sim.poolNames.length} names`);
  }
}

function nativeOptions(o: ClisLayoutOptions | undefined): NativeLayoutOptions {
  const out: NativeLayoutOptions = {};
  if (o === undefined) return out;
  if (typeof o !== 'object' || o === null) throw new GenaugError('E_TYPE', 'options must be an object');
  for (const key of ['tau', 'penaltyT', 'highSim', 'lowWeight'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new GenaugError('E_TYPE', `options.${key} must be a finite number`);
    out[key] = v;
  }
  if (o.rankDivisor !== undefined) out.rankDivisor = checkInt(o.rankDivisor, 'options.rankDivisor', 1);
  for (const key of ['faithful', 'balance', 'symmetry'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw new GenaugError('E_TYPE', `options.${key} must be a boolean`);
    out[key] = v;
  }
  if (o.threads !== undefined) out.threads = checkInt(o.threads, 'options.threads', 0, 256);
  if (o.device !== undefined && resolveDevice(o.device, 'options.device') === 'cuda') out.device = 'cuda';
  if (o.deviceBytes !== undefined) out.deviceBytes = checkInt(o.deviceBytes, 'options.deviceBytes', 1);
  return out;
}

function args(p: PackedLayouts, pool: RelationPool, opt: NativeLayoutOptions) {
  return [
    pool.start, pool.subject, pool.object, pool.subjectBox, pool.objectBox, pool.symmetric, pool.names.length,
    p.objectStart, p.objectName, p.objectBox, p.relationStart, p.relationPredicate, p.relationSubject, p.relationObject, p.names, p.sim, opt,
  ] as const;
}

function toResult(r: NativeLayoutScores, p: PackedLayouts): ClisLayoutResult {
  return {
    score: r.score,
    confidence: r.confidence,
    status: Array.from(r.status, (s) => LAYOUT_STATUS[s] ?? 'ok'),
    failedPair: r.failedPair,
    pairScore: r.pairScore,
    pairConfidence: r.pairConfidence,
    pairStart: p.relationStart,
  };
}

/** Scores a batch of layouts (thousands per call, in parallel over layouts, off the event loop). */
export async function clisLayout(layouts: SceneLayout[], pool: RelationPool, sim: NameSimilarity, options?: ClisLayoutOptions): Promise<ClisLayoutResult> {
  const opt = nativeOptions(options);
  if (options?.signal?.aborted) throw new GenaugError('E_ABORTED', 'CLIS-L was aborted before it started');
  const p = packLayouts(layouts, pool, sim);
  pinInputs(pool.start, pool.subject, pool.object, pool.subjectBox, pool.objectBox, pool.symmetric);
  const signal = options?.signal;
  if (!signal) return toResult(await native().clisLayout(...args(p, pool, opt)), p);
  const flag = new Int32Array(1);
  const onAbort = () => Atomics.store(flag, 0, 1);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return toResult(await native().clisLayout(...args(p, pool, { ...opt, cancel: flag })), p);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function clisLayoutSync(layouts: SceneLayout[], pool: RelationPool, sim: NameSimilarity, options?: Omit<ClisLayoutOptions, 'signal'>): ClisLayoutResult {
  const opt = nativeOptions(options);
  const p = packLayouts(layouts, pool, sim);
  return toResult(native().clisLayoutSync(...args(p, pool, opt)), p);
}
