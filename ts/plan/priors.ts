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
