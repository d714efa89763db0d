/**
 * ALIA domain descriptions: the captions of 20 images drawn with the plan
 * seed from the whole dataset (stored captions first, the rest of the sample
 * captioned by the VLM), are summarised by an LLM into at most 10 settings
 * (scene, action, camera pose, zoom, ...); every setting becomes an edit
 * prompt for real images of each class (img2img with the real image as
 * source). Settings can also come from a file (one per line) instead of the
 * LLM.
 */
import { z } from 'zod';

import type { CocoIndex } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';
import { captionImages, planImagePath, sampleClassImages, type CaptionOptions } from './captions.js';
import { askJson, dedupeTexts, itemSeed, makeJob, reasonOf, shuffled, type JobDefaults, type LlmSource, type PlanClass, type PlanFailure, type StrategyResult } from './core.js';
import type { PlanJob } from './job.js';

const Settings = z.object({ settings: z.array(z.string()) });

export interface DomainSummary {
  settings: string[];
  source: 'llm' | 'file';
  model?: string;
  /** Image ids whose captions were summarised. */
  sampled: number[];
}

/**
 * The ALIA summary. `captions` are (image id, caption) pairs; duplicates (by
 * normalised text) are dropped, then `sample` (default 20) are drawn with
 * `seed`. The answer keeps at most `max` (default 10) distinct settings.
 */
export async function summariseDomains(
  llm: LlmSource,
  captions: Array<[number, string]>,
  o: { seed: number; prefix?: string; sample?: number; max?: number },
): Promise<DomainSummary> {
  const max = o.max ?? 10;
  const distinct = new Map<string, [number, string]>();
  for (const [id, text] of captions) {
    const k = text.toLowerCase().replace(/\s+/g, ' ').trim();
    if (k && !distinct.has(k)) distinct.set(k, [id, text]);
  }
  const picked = shuffled([...distinct.values()], seededRandom(itemSeed(o.seed, 'alia:captions'))).slice(0, o.sample ?? 20);
  if (!picked.length) throw new GenaugError('E_ARGUMENT', 'ALIA needs captions of real images to summarise (none were available)');
  const prefix = o.prefix ?? 'a photo of';
  const r = await askJson(
    llm,
    [
      { role: 'system', content: 'You summarise image datasets for data augmentation. Answer with JSON only.' },
      {
        role: 'user',
        content:
          `These are captions of images from one dataset:\n${picked.map(([, t]) => `- ${t}`).join('\n')}\n\n` +
          `Summarise them into objective descriptions of the settings they show: scene, location, action, camera pose, zoom and other image qualities. ` +
          `Give at most ${max} settings, each describing a unique setting, each a short phrase that completes "${prefix} <object> ..." without naming the object ` +
          `(e.g. "standing on a branch", "flying in the sky with a city skyline in the background", "in a river at night"). Return {"settings": [strings]}.`,
      },
    ],
    Settings,
    'settings',
    (v) => (dedupeTexts(v.settings).some((s) => s.trim() && s.length <= 200) ? null : 'no usable setting (non-empty, at most 200 characters)'),
  );
  const settings = dedupeTexts(r.value.settings.map((s) => s.trim().replace(/\.+$/, ''))).filter((s) => s && s.length <= 200).slice(0, max);
  return { settings, source: 'llm', model: r.model, sampled: picked.map(([id]) => id) };
}

/**
 * ALIA's edit prompt: "a photo of a {class}, {setting}" by default; `{class}` and `{setting}` are placeholders.
 * A setting holding `{}` is already a whole class-templated prompt, as ALIA's own prompt lists are written
 * ("a photo of a {} bird on rocks"): `{}` becomes the class name and the template is not used.
 */
export function domainPrompt(template: string, name: string, setting: string): string {
  if (setting.includes('{}')) return setting.replace(/\{\}/g, name);
  return template.replace(/\{class\}/g, name).replace(/\{setting\}/g, setting);
}

export interface DomainPlanOptions extends CaptionOptions {
  llm?: LlmSource;
  /** Settings given by the user (one per line in --domains); the LLM is not asked then. */
  settings?: string[];
  /** Real images edited per class (default 8). */
  perClass?: number;
  /** img2img strength (ALIA: 0.5 iWildCam, 0.6 CUB; default 0.5). */
  strength?: number;
  /** Prompt template with {class} and {setting} (default "a photo of a {class}, {setting}"). */
  template?: string;
  prefix?: string;
  /**
   * Folder of the plan file: `source_image` paths under the working folder are
   * written relative to it, as `generate` reads them (default: the working folder).
   */
  planDir?: string;
}

/**
 * An edit's size: the real image's side rounded to the nearest multiple of 8
 * (what SD pipelines need), within [8, 8192]; `fallback` when the COCO file
 * gives no usable size.
 */
export function editSide(side: unknown, fallback: number): number {
  if (typeof side !== 'number' || !Number.isFinite(side) || side <= 0) return fallback;
  return Math.min(8192, Math.max(8, Math.round(side / 8) * 8));
}

/** Captions ALIA summarises (ALIA: 20). */
export const ALIA_CAPTION_SAMPLE = 20;

/**
 * The images whose captions ALIA summarises: every image of the dataset in a
 * seeded order, those with a stored caption first, cut to `sample`. Without a
 * VLM only images with a stored caption are taken.
 */
export function datasetSample(coco: CocoIndex, o: Pick<CaptionOptions, 'store' | 'vlm'>, seed: number, sample = ALIA_CAPTION_SAMPLE): number[] {
  const order = shuffled(
    [...coco.imageById.keys()].sort((a, b) => a - b),
    seededRandom(itemSeed(seed, 'alia:dataset-sample')),
  );
  const stored = order.filter((id) => o.store.get(id));
  const rest = o.vlm ? order.filter((id) => !o.store.get(id)) : [];
  return [...stored, ...rest].slice(0, sample);
}

/** Edit jobs: every (class, real image of the class, setting), at the real image's size (`editSide`). */
export async function planDomains(coco: CocoIndex, classes: PlanClass[], o: DomainPlanOptions, d: JobDefaults): Promise<StrategyResult> {
  const failures: PlanFailure[] = [];
  const perClass = o.perClass ?? 8;
  const chosen = classes.map((c) => ({ c, ids: sampleClassImages(c, perClass, d.seed) }));
  let summary: DomainSummary | undefined;
  if (o.settings?.length) {
    summary = { settings: dedupeTexts(o.settings.map((s) => s.trim())).filter(Boolean), source: 'file', sampled: [] };
  } else if (o.llm) {
    // Summarise captions of the whole dataset, not only of the images to be edited: a seeded sample of
    // `sample` images, those with a stored caption first; with a VLM the rest of the sample is captioned.
    const ids = datasetSample(coco, o, d.seed);
    const missing = await captionImages(coco, ids, o);
    for (const [id, reason] of missing) failures.push({ strategy: 'alia', item: `image ${id}`, stage: 'caption', reason });
    const captions = ids.flatMap((id): Array<[number, string]> => {
      const c = o.store.get(id);
      return c ? [[id, c.caption]] : [];
    });
    try {
      summary = await summariseDomains(o.llm, captions, { seed: d.seed, ...(o.prefix ? { prefix: o.prefix } : {}) });
    } catch (e) {
      failures.push({ strategy: 'alia', item: '(dataset)', stage: 'summary', reason: reasonOf(e) });
    }
  } else {
    failures.push({ strategy: 'alia', item: '(dataset)', stage: 'summary', reason: 'ALIA needs an LLM to summarise the domains (--llm-url) or settings given one per line (--domains FILE)' });
  }
  const jobs: PlanJob[] = [];
  if (summary?.settings.length) {
    const template = o.template ?? 'a photo of a {class}, {setting}';
    for (const { c, ids } of chosen) {
      for (const id of ids) {
        const image = coco.imageById.get(id)!;
        for (const setting of summary.settings) {
          jobs.push(
            makeJob(
              'alia',
              {
                kind: 'img2img',
                classes: [c.name],
                prompt: domainPrompt(template, c.display, setting),
                source_image: planImagePath(image, o.imageRoot, o.planDir ?? process.cwd()),
                // The id and seed follow the image's name in the dataset, not where the dataset lies.
                source_key: `coco:${image.file_name}`,
                denoising_strength: o.strength ?? 0.5,
                width: editSide(image.width, d.width),
                height: editSide(image.height, d.height),
              },
              { image_id: id, setting, settings_source: summary.source, ...(summary.model ? { model: summary.model } : {}), class_source: c.source, ...(c.id !== null ? { category_id: c.id } : {}) },
              d,
            ),
          );
        }
      }
    }
  }
  return { jobs, failures, notes: summary ? { domains: summary } : {} };
}
