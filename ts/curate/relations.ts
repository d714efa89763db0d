/**
 * Relation-example pools and name-similarity tables for CLIS-L.
 *
 * Pools come from Visual Genome `relationships.json` or from any COCO-style
 * file plus a list of spatial relations derived from box geometry (the rule is
 * in `spatialRelation`). Name similarity comes from text embeddings (cosine of
 * e.g. CLIP text embeddings of the names), from any similarity function (the
 * WordNet Wu-Palmer measure of ts/plan/wordnet.ts plugs in here), or from a
 * user table in ACP's `sim_map` JSON form ({a: {b: sim}}).
 */
import { readTextFile } from '../io/atomic.js';
import type { CocoIndex } from '../io/coco.js';
import { classMax } from '../kernels/similarity.js';
import { buildRelationPool, normalizeName, normalizePredicate, poolFromAcpJson, type Box, type NameSimilarity, type RelationExample, type RelationPool } from '../kernels/layout.js';
import type { TextEmbedder } from '../models/types.js';
import { GenaugError, ioError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';

export interface PoolCapOptions {
  /** Keep at most this many examples per predicate (a seeded sample; default: all). */
  maxPerPredicate?: number;
  /** Seed of that sample (default 0). */
  seed?: number;
  /** Keep only these predicates (normalised; default: all). */
  predicates?: string[];
}

/** Applies the per-predicate cap and filter: a seeded sample that keeps file order among the kept. */
export function capExamples(examples: RelationExample[], options: PoolCapOptions = {}): RelationExample[] {
  const only = options.predicates ? new Set(options.predicates.map(normalizePredicate)) : undefined;
  let list = only ? examples.filter((e) => only.has(normalizePredicate(e.predicate))) : examples;
  const cap = options.maxPerPredicate;
  if (cap === undefined) return list;
  if (!Number.isInteger(cap) || cap < 1) throw new GenaugError('E_RANGE', `maxPerPredicate must be an integer >= 1, got ${cap}`);
  const random = seededRandom(options.seed ?? 0);
  const keys = list.map(() => random());
  const byPred = new Map<string, number[]>();
  list.forEach((e, i) => {
    const p = normalizePredicate(e.predicate);
    let l = byPred.get(p);
    if (!l) byPred.set(p, (l = []));
    l.push(i);
  });
  const keep = new Uint8Array(list.length);
  for (const idx of byPred.values()) {
    const chosen = idx.length <= cap ? idx : [...idx].sort((a, b) => keys[a]! - keys[b]! || a - b).slice(0, cap);
    for (const i of chosen) keep[i] = 1;
  }
  list = list.filter((_, i) => keep[i] === 1);
  return list;
}

// ---------------------------------------------------------------- Visual Genome

interface VgObject {
  name?: string;
  names?: string[];
  x?: number;
  y?: number;
  w?: number;
  h?: number;
}

export interface VisualGenomeOptions extends PoolCapOptions {
  /** Image sizes by image id (from VG image_data.json): boxes are then divided by width/height. Default: pixels as they are. */
  imageSizes?: Map<number, { width: number; height: number }>;
}

export interface PoolBuildReport {
  examples: RelationExample[];
  /** Relationships skipped, by reason. */
  skipped: Record<string, number>;
}

/**
 * Image sizes from Visual Genome `image_data.json` ([{image_id | id, width, height}, ...]; a top-level
 * {images: [...]} is accepted too), for `examplesFromVisualGenome`'s `imageSizes`.
 */
export function imageSizesFromVisualGenome(json: unknown, source = '<image_data.json>'): Map<number, { width: number; height: number }> {
  const list = Array.isArray(json) ? json : (json as { images?: unknown })?.images;
  if (!Array.isArray(list)) throw new GenaugError('E_FORMAT', `${source}: expected a list of {image_id, width, height} (Visual Genome image_data.json)`);
  const sizes = new Map<number, { width: number; height: number }>();
  list.forEach((e: unknown, i) => {
    const im = (e ?? {}) as { image_id?: unknown; id?: unknown; width?: unknown; height?: unknown };
    const id = im.image_id ?? im.id;
    const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
    if (!Number.isSafeInteger(id) || !ok(im.width) || !ok(im.height)) {
      throw new GenaugError('E_FORMAT', `${source}: [${i}] needs an integer "image_id" and positive "width" and "height"`, { index: i });
    }
    sizes.set(id as number, { width: im.width, height: im.height });
  });
  return sizes;
}

/**
 * Examples from Visual Genome `relationships.json`: a list of
 * {image_id, relationships: [{predicate, subject: {name | names[0], x, y, w, h}, object: {...}}]}
 * (a top-level {images: [...]} is accepted too). Relationships with an empty
 * predicate, no name or a box with w or h ≤ 0 are skipped and counted.
 */
export function examplesFromVisualGenome(json: unknown, options: VisualGenomeOptions = {}, source = '<relationships.json>'): PoolBuildReport {
  const images = Array.isArray(json) ? json : (json as { images?: unknown })?.images;
  if (!Array.isArray(images)) throw new GenaugError('E_FORMAT', `${source}: expected a list of images with "relationships" (Visual Genome relationships.json)`);
  const skipped: Record<string, number> = {};
  const skip = (why: string) => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  const examples: RelationExample[] = [];
  images.forEach((im: unknown, ii) => {
    const img = im as { image_id?: number; id?: number; relationships?: unknown };
    if (typeof img !== 'object' || img === null || !Array.isArray(img.relationships)) {
      throw new GenaugError('E_FORMAT', `${source}: images[${ii}] has no "relationships" list`);
    }
    const imageId = img.image_id ?? img.id;
    const size = typeof imageId === 'number' ? options.imageSizes?.get(imageId) : undefined;
    if (options.imageSizes && !size) {
      skip('no-image-size');
      return;
    }
    for (const rel of img.relationships as Array<{ predicate?: unknown; subject?: VgObject; object?: VgObject }>) {
      const predicate = typeof rel?.predicate === 'string' ? normalizePredicate(rel.predicate) : '';
      if (!predicate) {
        skip('no-predicate');
        continue;
      }
      const name = (o: VgObject | undefined) => (typeof o?.name === 'string' ? o.name : Array.isArray(o?.names) && typeof o.names[0] === 'string' ? o.names[0] : '');
      const box = (o: VgObject | undefined): Box | null => {
        const b = [o?.x, o?.y, o?.w, o?.h];
        if (!b.every((v) => typeof v === 'number' && Number.isFinite(v)) || (b[2] as number) <= 0 || (b[3] as number) <= 0) return null;
        return size ? [b[0]! / size.width, b[1]! / size.height, b[2]! / size.width, b[3]! / size.height] : (b as Box);
      };
      const s = name(rel.subject);
      const o = name(rel.object);
      if (!s || !o) {
        skip('no-name');
        continue;
      }
      const sb = box(rel.subject);
      const ob = box(rel.object);
      if (!sb || !ob) {
        skip('bad-box');
        continue;
      }
      examples.push({ predicate, subject: normalizeName(s), object: normalizeName(o), subjectBox: sb, objectBox: ob, info: { img_id: imageId } });
    }
  });
  return { examples: capExamples(examples, options), skipped };
}

// ---------------------------------------------------------------- COCO + spatial relations

/** The spatial relations genaug derives from boxes. */
export const SPATIAL_RELATIONS = ['left of', 'right of', 'above', 'below', 'inside', 'surrounding'] as const;

/**
 * The spatial relation of subject box a to object box b (xywh), or null:
 * - a's box lies within b's box (edges may touch) → "inside"; b's within a's → "surrounding"
 *   (identical boxes count as "inside");
 * - otherwise, with d = centre(b) − centre(a) in image-normalised units: when |dx| ≥ |dy|,
 *   a is "left of" b if dx > 0, else "right of"; when |dy| > |dx|, a is "above" b if dy > 0
 *   (image y grows downwards), else "below". Coincident centres (d = 0) give null.
 */
export function spatialRelation(a: Box, b: Box, width = 1, height = 1): (typeof SPATIAL_RELATIONS)[number] | null {
  const within = (p: Box, q: Box) => p[0] >= q[0] && p[1] >= q[1] && p[0] + p[2] <= q[0] + q[2] && p[1] + p[3] <= q[1] + q[3];
  if (within(a, b)) return 'inside';
  if (within(b, a)) return 'surrounding';
  const dx = (b[0] + b[2] / 2 - (a[0] + a[2] / 2)) / width;
  const dy = (b[1] + b[3] / 2 - (a[1] + a[3] / 2)) / height;
  if (dx === 0 && dy === 0) return null;
  if (Math.abs(dx) >= Math.abs(dy)) return dx > 0 ? 'left of' : 'right of';
  return dy > 0 ? 'above' : 'below';
}

export interface CocoRelationOptions extends PoolCapOptions {
  /** Relations to derive (default all of SPATIAL_RELATIONS). */
  relations?: string[];
  /** Include crowd annotations (default false). */
  includeCrowd?: boolean;
  /** At most this many annotations per image are paired (the largest by area; default 20). */
  maxObjectsPerImage?: number;
}

/**
 * Examples from a COCO-style dataset: every ordered pair of (non-crowd)
 * annotations of one image gives the relation `spatialRelation(a, b)` when it
 * is in the requested list. Boxes are normalised by the image size; names are
 * the category names (LVIS `_` and sense suffixes cleaned by normalizeName).
 */
export function examplesFromCoco(index: CocoIndex, options: CocoRelationOptions = {}): PoolBuildReport {
  const wanted = new Set((options.relations ?? [...SPATIAL_RELATIONS]).map(normalizePredicate));
  for (const r of wanted) {
    if (!(SPATIAL_RELATIONS as readonly string[]).includes(r)) {
      throw new GenaugError('E_ARGUMENT', `unknown spatial relation "${r}"; genaug derives ${SPATIAL_RELATIONS.join(', ')} from boxes`);
    }
  }
  const maxObjects = options.maxObjectsPerImage ?? 20;
  const skipped: Record<string, number> = {};
  const examples: RelationExample[] = [];
  for (const im of index.dataset.images) {
    let anns = (index.annotationsByImage.get(im.id) ?? []).filter((a) => (options.includeCrowd || a.iscrowd !== 1) && a.bbox[2] > 0 && a.bbox[3] > 0);
    if (anns.length > maxObjects) {
      skipped['over-max-objects'] = (skipped['over-max-objects'] ?? 0) + anns.length - maxObjects;
      anns = [...anns].sort((x, y) => y.bbox[2] * y.bbox[3] - x.bbox[2] * x.bbox[3] || x.id - y.id).slice(0, maxObjects);
    }
    const norm = (b: number[]): Box => [b[0]! / im.width, b[1]! / im.height, b[2]! / im.width, b[3]! / im.height];
    for (const a of anns) {
      for (const b of anns) {
        if (a === b) continue;
        const rel = spatialRelation(a.bbox, b.bbox, im.width, im.height);
        if (!rel || !wanted.has(rel)) continue;
        const name = (id: number) => index.categoryById.get(id)!.name;
        examples.push({
          predicate: rel,
          subject: normalizeName(name(a.category_id)),
          object: normalizeName(name(b.category_id)),
          subjectBox: norm(a.bbox),
          objectBox: norm(b.bbox),
          info: { img_id: im.id, subject_ann: a.id, object_ann: b.id },
        });
      }
    }
  }
  return { examples: capExamples(examples, options), skipped };
}

/** Reads a relation pool: ACP's JSON ({relation: [examples]}). */
export async function readRelationPool(path: string): Promise<RelationPool> {
  return poolFromAcpJson(await readJson(path), path);
}

export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (e) {
    throw ioError(path, path, 'read it', e);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GenaugError('E_FORMAT', `${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
}

export { buildRelationPool };

// ---------------------------------------------------------------- name similarity

/** Similarity from any function of two normalised names (e.g. WordNet Wu-Palmer; identical names are 1). */
export function nameSimilarityFromFunction(layoutNames: string[], poolNames: string[], fn: (a: string, b: string) => number): NameSimilarity {
  const Q = layoutNames.map(normalizeName);
  const P = poolNames.map(normalizeName);
  const values = new Float32Array(Q.length * P.length);
  const cache = new Map<string, number>();
  Q.forEach((a, q) =>
    P.forEach((b, p) => {
      const key = `${a}\u0000${b}`;
      let v = cache.get(key);
      if (v === undefined) {
        v = a === b ? 1 : fn(a, b);
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new GenaugError('E_NONFINITE', `name similarity of "${a}" and "${b}" is ${v}`);
        cache.set(key, v);
      }
      values[q * P.length + p] = v;
    }),
  );
  return { layoutNames: Q, poolNames: P, values };
}

/**
 * ACP's sim_map JSON ({a: {b: sim}}): looked up both ways (a→b, then b→a);
 * identical names are 1; a pair the table lacks is 0 (never a candidate).
 */
export function nameSimilarityFromTable(table: unknown, layoutNames: string[], poolNames: string[], source = '<sim_map>'): NameSimilarity {
  if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new GenaugError('E_FORMAT', `${source}: a name-similarity table must be {name: {name: number}}`);
  const map = new Map<string, Map<string, number>>();
  for (const [a, row] of Object.entries(table as Record<string, unknown>)) {
    if (typeof row !== 'object' || row === null) throw new GenaugError('E_FORMAT', `${source}: "${a}" must map names to numbers`);
    const m = new Map<string, number>();
    for (const [b, v] of Object.entries(row as Record<string, unknown>)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new GenaugError('E_FORMAT', `${source}: "${a}"."${b}" must be a finite number`);
      m.set(normalizeName(b), v);
    }
    map.set(normalizeName(a), m);
  }
  return nameSimilarityFromFunction(layoutNames, poolNames, (a, b) => map.get(a)?.get(b) ?? map.get(b)?.get(a) ?? 0);
}

/** Cosine of text embeddings of the names (e.g. CLIP's text tower), optionally in a template like "a photo of a {}". */
export async function nameSimilarityFromEmbeddings(embedder: TextEmbedder, layoutNames: string[], poolNames: string[], template = '{}'): Promise<NameSimilarity> {
  const Q = layoutNames.map(normalizeName);
  const P = poolNames.map(normalizeName);
  if (Q.length === 0 || P.length === 0) return { layoutNames: Q, poolNames: P, values: new Float32Array(0) };
  const text = (n: string) => template.replace('{}', n);
  const q = await embedder.embedTexts(Q.map(text));
  const p = await embedder.embedTexts(P.map(text));
  const dim = embedder.dim;
  // Every pool name its own class: classMax is then the full Q x P cosine matrix, computed natively.
  const labels = Int32Array.from(P, (_, i) => i);
  const r = await classMax({ data: q, rows: Q.length, dim }, { data: p, rows: P.length, dim }, labels, { numClasses: P.length });
  return { layoutNames: Q, poolNames: P, values: r.values };
}

/** Builds a pool from examples (re-exported for the CLI). */
export function poolFromExamples(examples: RelationExample[]): RelationPool {
  return buildRelationPool(examples);
}
