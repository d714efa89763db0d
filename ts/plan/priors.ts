/**
 * Real-data priors from a COCO/LVIS file: how often each class occurs (and its
 * LVIS-style frequency group), and how large its instances are relative to
 * their image. The paste sampler draws instance sizes from the size prior;
 * the planner rebalances toward rare classes with the counts.
 *
 * Size prior (X-Paste/DiverGen `area_mean_std2.json`): mean and *population*
 * standard deviation of √(bbox_w·bbox_h / (W·H)) over the class's annotations.
 * Crowd annotations and zero-area boxes are left out of it.
 * Frequency groups (LVIS, Detic): r ≤ 10 training images, c 11–100, f > 100;
 * a class's own LVIS `frequency` field is reported beside the computed one.
 */
import type { CocoIndex } from '../io/coco.js';

export type FrequencyGroup = 'r' | 'c' | 'f';

export interface SizePrior {
  mean: number;
  std: number;
  /** Annotations it was computed from. */
  count: number;
}

export interface CategoryPrior {
  id: number;
  name: string;
  imageCount: number;
  instanceCount: number;
  /** From the counts: r ≤ rareMax images < c ≤ commonMax < f. */
  frequency: FrequencyGroup;
  /** The file's own LVIS frequency when it has one. */
  lvisFrequency?: FrequencyGroup;
  /** null when the class has no usable annotation. */
  size: SizePrior | null;
}

export interface PriorOptions {
  rareMax?: number;
  commonMax?: number;
}

export function frequencyGroup(imageCount: number, o: PriorOptions = {}): FrequencyGroup {
  if (imageCount <= (o.rareMax ?? 10)) return 'r';
  if (imageCount <= (o.commonMax ?? 100)) return 'c';
  return 'f';
}

/** Per-category counts, frequency group and size prior, in category id order. */
export function categoryPriors(coco: CocoIndex, o: PriorOptions = {}): CategoryPrior[] {
  const images = new Map<number, Set<number>>();
  const instances = new Map<number, number>();
  const sums = new Map<number, { n: number; mean: number; m2: number }>();
  for (const a of coco.dataset.annotations) {
    let set = images.get(a.category_id);
    if (!set) images.set(a.category_id, (set = new Set()));
    set.add(a.image_id);
    instances.set(a.category_id, (instances.get(a.category_id) ?? 0) + 1);
    const im = coco.imageById.get(a.image_id)!;
    const boxArea = a.bbox[2] * a.bbox[3];
    if (a.iscrowd === 1 || !(boxArea > 0)) continue;
    const s = Math.sqrt(boxArea / (im.width * im.height));
    // Welford: stable for millions of annotations.
    const acc = sums.get(a.category_id) ?? { n: 0, mean: 0, m2: 0 };
    acc.n += 1;
    const d = s - acc.mean;
    acc.mean += d / acc.n;
    acc.m2 += d * (s - acc.mean);
    sums.set(a.category_id, acc);
  }
  return [...coco.categoryById.values()]
    .sort((a, b) => a.id - b.id)
    .map((c) => {
      const imageCount = images.get(c.id)?.size ?? 0;
      const acc = sums.get(c.id);
      const lvis = c.frequency === 'r' || c.frequency === 'c' || c.frequency === 'f' ? c.frequency : undefined;
      return {
        id: c.id,
        name: c.name,
        imageCount,
        instanceCount: instances.get(c.id) ?? 0,
        frequency: frequencyGroup(imageCount, o),
        ...(lvis ? { lvisFrequency: lvis } : {}),
        size: acc ? { mean: acc.mean, std: Math.sqrt(acc.m2 / acc.n), count: acc.n } : null,
      };
    });
}

/** The X-Paste/DiverGen `area_mean_std2.json` form: {"<1-based cat id>": [μ, σ]}. */
export function sizePriorTable(priors: CategoryPrior[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const p of priors) if (p.size) out[String(p.id)] = [p.size.mean, p.size.std];
  return out;
}

// ---------------------------------------------------------------------------
// Co-occurring object sets, real layouts and repeat factors (ACP §1.4, LVIS RFS)

/** One real object: its category name and normalised xywh box (top-left origin, clipped to [0, 1]). */
export interface RealObject {
  name: string;
  box: [number, number, number, number];
}

export interface RealLayout {
  image_id: number;
  objects: RealObject[];
}

/** A multiset of category names seen together in real images, with how many images hold exactly it. */
export interface ObjectSet {
  /** Category names, sorted, repeated once per instance. */
  objects: string[];
  /** Images whose (capped) object list is exactly this multiset. */
  count: number;
  /** Sum of those images' repeat factors (the weight rebalanced sampling gives the set). */
  weight: number;
  /** Up to `maxLayouts` of those images' layouts, in image id order. */
  layouts: RealLayout[];
}

export interface SetOptions {
  /** Longest object list kept per image; larger images keep their largest boxes (default 26). */
  maxObjects?: number;
  /** Images with fewer objects are left out of the sets (default 1). */
  minObjects?: number;
  /** Layouts stored per set (default 16). */
  maxLayouts?: number;
  /** Repeat-factor threshold t (default 0.001, as LVIS RFS). */
  rfsThreshold?: number;
}

/**
 * Repeat-factor sampling (Gupta et al., LVIS): f_c = fraction of images that
 * contain class c, r_c = max(1, √(t / f_c)); an image's factor is the max of
 * its classes' r_c (1 for an image without annotations). Keys: category ids.
 */
export function repeatFactors(coco: CocoIndex, threshold = 0.001): { category: Map<number, number>; image: Map<number, number> } {
  const n = coco.dataset.images.length;
  const imagesWith = new Map<number, number>();
  for (const [, anns] of coco.annotationsByImage) {
    for (const c of new Set(anns.map((a) => a.category_id))) imagesWith.set(c, (imagesWith.get(c) ?? 0) + 1);
  }
  const category = new Map<number, number>();
  for (const c of coco.categoryById.keys()) {
    const k = imagesWith.get(c) ?? 0;
    category.set(c, k === 0 || n === 0 ? 1 : Math.max(1, Math.sqrt(threshold / (k / n))));
  }
  const image = new Map<number, number>();
  for (const [id, anns] of coco.annotationsByImage) {
    let r = 1;
    for (const a of anns) r = Math.max(r, category.get(a.category_id)!);
    image.set(id, r);
  }
  return { category, image };
}

const clip01 = (v: number) => Math.min(1, Math.max(0, v));

/** [start, length] of a pixel span as fractions of `size`, clipped to [0, 1] (exact division when inside). */
function normalisedSpan(start: number, length: number, size: number): [number, number] {
  const s = start / size;
  const l = length / size;
  if (s >= 0 && start + length <= size) return [s, l];
  const s0 = clip01(s);
  return [s0, Math.max(0, clip01((start + length) / size) - s0)];
}

/** An image's objects (non-crowd, positive area), largest first when capped, then in file order. */
export function realLayout(coco: CocoIndex, imageId: number, maxObjects = 26): RealLayout {
  const im = coco.imageById.get(imageId)!;
  let anns = (coco.annotationsByImage.get(imageId) ?? []).filter((a) => a.iscrowd !== 1 && a.bbox[2] * a.bbox[3] > 0);
  if (anns.length > maxObjects) {
    const keep = new Set([...anns].sort((a, b) => b.bbox[2] * b.bbox[3] - a.bbox[2] * a.bbox[3] || a.id - b.id).slice(0, maxObjects));
    anns = anns.filter((a) => keep.has(a));
  }
  return {
    image_id: imageId,
    objects: anns.map((a) => {
      const box = [
        ...normalisedSpan(a.bbox[0], a.bbox[2], im.width),
        ...normalisedSpan(a.bbox[1], a.bbox[3], im.height),
      ] as [number, number, number, number];
      return { name: coco.categoryById.get(a.category_id)!.name, box: [box[0], box[2], box[1], box[3]] as [number, number, number, number] };
    }),
  };
}

/** The object multisets of real images, counted, most frequent first (ties by their names). */
export function objectSets(coco: CocoIndex, o: SetOptions = {}): ObjectSet[] {
  const maxObjects = o.maxObjects ?? 26;
  const minObjects = o.minObjects ?? 1;
  const maxLayouts = o.maxLayouts ?? 16;
  const rf = repeatFactors(coco, o.rfsThreshold ?? 0.001).image;
  const sets = new Map<string, ObjectSet>();
  const ids = [...coco.imageById.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    const layout = realLayout(coco, id, maxObjects);
    if (layout.objects.length < minObjects || layout.objects.length === 0) continue;
    const objects = layout.objects.map((x) => x.name).sort();
    const key = JSON.stringify(objects);
    let s = sets.get(key);
    if (!s) sets.set(key, (s = { objects, count: 0, weight: 0, layouts: [] }));
    s.count += 1;
    s.weight += rf.get(id) ?? 1;
    if (s.layouts.length < maxLayouts) s.layouts.push(layout);
  }
  return [...sets.entries()]
    .sort(([ka, a], [kb, b]) => b.count - a.count || (ka < kb ? -1 : ka > kb ? 1 : 0))
    .map(([, s]) => s);
}

export interface PriorsCategory extends CategoryPrior {
  /** Repeat factor r_c = max(1, √(t / f_c)). */
  repeatFactor: number;
  /** The file's LVIS `def` / `synset` when present. */
  def?: string;
  synset?: string;
}

/** The priors.json document (see the README, "genaug priors"). */
export interface PriorsFile {
  version: 1;
  source: string;
  images: number;
  annotations: number;
  options: Required<PriorOptions> & Required<SetOptions>;
  categories: PriorsCategory[];
  sets: ObjectSet[];
}

/** Everything `genaug priors` writes, from a read COCO/LVIS file. */
export function buildPriors(coco: CocoIndex, o: PriorOptions & SetOptions = {}): PriorsFile {
  const options = {
    rareMax: o.rareMax ?? 10,
    commonMax: o.commonMax ?? 100,
    maxObjects: o.maxObjects ?? 26,
    minObjects: o.minObjects ?? 1,
    maxLayouts: o.maxLayouts ?? 16,
    rfsThreshold: o.rfsThreshold ?? 0.001,
  };
  const rf = repeatFactors(coco, options.rfsThreshold).category;
  const categories = categoryPriors(coco, options).map((p) => {
    const c = coco.categoryById.get(p.id)!;
    return {
      ...p,
      repeatFactor: rf.get(p.id) ?? 1,
      ...(typeof c.def === 'string' ? { def: c.def } : {}),
      ...(typeof c.synset === 'string' ? { synset: c.synset } : {}),
    };
  });
  return {
    version: 1,
    source: coco.source,
    images: coco.dataset.images.length,
    annotations: coco.dataset.annotations.length,
    options,
    categories,
    sets: objectSets(coco, options),
  };
}
