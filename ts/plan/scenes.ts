/**
 * Multi-object scenes (Auto Cherry-Picker): object sets drawn from the sets
 * that co-occur in real images, rebalanced toward rare classes with repeat
 * factors; then two LLM calls, a scene graph (attributes, groups, depth
 * layers, relations, a caption tagging every object) and a layout
 * (normalised xywh, top-left origin), each validated and asked again when
 * invalid. Without an LLM the real layout of the drawn image is used with a
 * template caption.
 */
import { z } from 'zod';

import { displayName, type CocoIndex } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { seededRandom } from '../util/random.js';
import { askJson, mapLimit, reasonOf, makeJob, withProgress, type JobDefaults, type LlmSource, type PlanFailure, type StrategyResult } from './core.js';
import { boxProblem, type LayoutBox, type PlanJob } from './job.js';

export { boxProblem };
import type { ObjectSet, RealLayout } from './priors.js';

/** Brings a real [0, 1] box strictly inside (0, 1) by moving its edges at most `eps` inward. */
export function insideUnit(box: readonly [number, number, number, number], eps = 1e-3): [number, number, number, number] {
  if (boxProblem(box) === null) return [box[0], box[1], box[2], box[3]];
  const x0 = Math.min(Math.max(box[0], eps), 1 - 2 * eps);
  const y0 = Math.min(Math.max(box[1], eps), 1 - 2 * eps);
  const x1 = Math.max(Math.min(box[0] + box[2], 1 - eps), x0 + eps);
  const y1 = Math.max(Math.min(box[1] + box[3], 1 - eps), y0 + eps);
  return [x0, y0, x1 - x0, y1 - y0];
}

export interface DrawnSet {
  set: ObjectSet;
  /** The real layout drawn with it (one of the set's stored layouts), if any. */
  layout: RealLayout | undefined;
}

/**
 * Draws `n` object sets with replacement. With `rebalance` (the default) a set's
 * probability is proportional to its weight (the sum of its images' repeat
 * factors, i.e. an image drawn with probability ∝ max over its classes of
 * r_c = max(1, √(t / f_c))); without, to its image count.
 */
export function drawObjectSets(sets: readonly ObjectSet[], n: number, seed: number, rebalance = true): DrawnSet[] {
  if (!sets.length) throw new GenaugError('E_ARGUMENT', 'there are no object sets to draw from (no image with annotations)');
  const weights = sets.map((s) => (rebalance ? s.weight : s.count));
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) cumulative.push((total += w));
  const random = seededRandom(seed);
  const out: DrawnSet[] = [];
  for (let i = 0; i < n; i++) {
    const u = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    const set = sets[lo]!;
    const layout = set.layouts.length ? set.layouts[Math.floor(random() * set.layouts.length)] : undefined;
    out.push({ set, layout });
  }
  return out;
}

/** ACP object ids: "{name}-{k}", k from 1 per name, in list order. */
export function objectIds(names: readonly string[]): string[] {
  const k = new Map<string, number>();
  return names.map((n) => {
    const i = (k.get(n) ?? 0) + 1;
    k.set(n, i);
    return `${n}-${i}`;
  });
}

export const DEPTH_LAYERS = ['Immediate Foreground', 'Foreground', 'Midground', 'Background'] as const;

export const SceneGraphSchema = z.object({
  attributes: z.array(z.object({ object: z.string(), attribute: z.string() })),
  groups: z.array(z.array(z.string())),
  layers_of_depth: z.array(z.object({ layer: z.enum(DEPTH_LAYERS), groups: z.array(z.array(z.string())) })),
  relations: z.array(
    z.object({ caption: z.string(), relations: z.array(z.object({ subject: z.array(z.string()), object: z.array(z.string()), relation: z.string() })) }),
  ),
  caption: z.string(),
});
export type SceneGraph = z.infer<typeof SceneGraphSchema>;

export const LayoutAnswerSchema = z.object({ Layout: z.array(z.object({ object: z.string(), bbox: z.array(z.number()) })) });
export type LayoutAnswer = z.infer<typeof LayoutAnswerSchema>;

/** Why a scene graph is unusable for these object ids, or null. */
export function sceneGraphProblem(g: SceneGraph, ids: readonly string[]): string | null {
  const known = new Set(ids);
  const described = new Set(g.attributes.map((a) => a.object));
  const missing = ids.filter((id) => !described.has(id));
  if (missing.length) return `"attributes" has no entry for ${missing.join(', ')}`;
  const unknown = [
    ...g.attributes.map((a) => a.object),
    ...g.groups.flat(),
    ...g.layers_of_depth.flatMap((l) => l.groups.flat()),
    ...g.relations.flatMap((r) => r.relations.flatMap((x) => [...x.subject, ...x.object])),
  ].filter((id) => !known.has(id));
  if (unknown.length) return `unknown object id ${JSON.stringify(unknown[0])} (the objects are ${ids.join(', ')})`;
  const untagged = ids.filter((id) => !g.caption.includes(`(${id})`));
  if (untagged.length) return `the caption must tag every object as word(id); ${untagged.join(', ')} missing`;
  return null;
}

/** Why a layout answer is unusable, or null: every object exactly once, every box valid. */
export function layoutProblem(l: LayoutAnswer, ids: readonly string[]): string | null {
  const seen = new Set<string>();
  for (const [i, item] of l.Layout.entries()) {
    if (!ids.includes(item.object)) return `Layout[${i}].object ${JSON.stringify(item.object)} is not one of ${ids.join(', ')}`;
    if (seen.has(item.object)) return `Layout[${i}] repeats ${item.object}`;
    seen.add(item.object);
    const p = boxProblem(item.bbox);
    if (p) return `Layout[${i}] (${item.object}) bbox ${JSON.stringify(item.bbox)}: ${p}`;
  }
  const missing = ids.filter((id) => !seen.has(id));
  return missing.length ? `no box for ${missing.join(', ')}` : null;
}

/** The caption without its (id) tags. */
export function untagCaption(caption: string): string {
  return caption
    .replace(/\s*\(([^()]+-\d+)\)/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

function plural(word: string): string {
  if (/(s|x|z|ch|sh)$/i.test(word)) return `${word}es`;
  if (/[^aeiou]y$/i.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

/** "a photo of two dogs, a frisbee and a person" from a multiset of names. */
export function templateSceneCaption(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const parts = [...counts].map(([n, k]) => (k === 1 ? `${/^[aeiou]/i.test(n) ? 'an' : 'a'} ${n}` : `${NUMBER_WORDS[k] ?? k} ${plural(n)}`));
  const list = parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}` : parts[0];
  return `a photo of ${list}`;
}

/**
 * Worked examples shown with each request, as ACP's prompts carry two shots
 * (`##Example-i / Prompt / Desired Output`): our own scenes, each answer valid
 * for its prompt by sceneGraphProblem / layoutProblem (the tests check them).
 */
export const SCENE_EXAMPLES: ReadonlyArray<{ objects: string[]; graph: SceneGraph; layout: LayoutAnswer }> = [
  {
    objects: ['dog-1', 'frisbee-1', 'person-1'],
    graph: {
      attributes: [
        { object: 'dog-1', attribute: 'a brown and white border collie' },
        { object: 'frisbee-1', attribute: 'a red plastic frisbee' },
        { object: 'person-1', attribute: 'a woman in a blue jacket' },
      ],
      groups: [['dog-1', 'frisbee-1'], ['person-1']],
      layers_of_depth: [
        { layer: 'Foreground', groups: [['dog-1', 'frisbee-1']] },
        { layer: 'Midground', groups: [['person-1']] },
      ],
      relations: [
        { caption: 'the dog leaps to catch the frisbee', relations: [{ subject: ['dog-1'], object: ['frisbee-1'], relation: 'catching' }] },
        { caption: 'the woman stands behind the dog', relations: [{ subject: ['person-1'], object: ['dog-1'], relation: 'behind' }] },
      ],
      caption: 'A brown and white border collie(dog-1) leaps in a park to catch a red frisbee(frisbee-1) thrown by a woman(person-1) in a blue jacket.',
    },
    layout: {
      Layout: [
        { object: 'dog-1', bbox: [0.18, 0.42, 0.38, 0.4] },
        { object: 'frisbee-1', bbox: [0.44, 0.3, 0.12, 0.07] },
        { object: 'person-1', bbox: [0.66, 0.2, 0.2, 0.62] },
      ],
    },
  },
  {
    objects: ['cup-1', 'cup-2', 'laptop-1', 'dining table-1'],
    graph: {
      attributes: [
        { object: 'cup-1', attribute: 'a white ceramic mug' },
        { object: 'cup-2', attribute: 'a glass cup of tea' },
        { object: 'laptop-1', attribute: 'an open silver laptop' },
        { object: 'dining table-1', attribute: 'a wooden dining table' },
      ],
      groups: [['cup-1', 'cup-2', 'laptop-1', 'dining table-1']],
      layers_of_depth: [
        { layer: 'Immediate Foreground', groups: [['cup-1']] },
        { layer: 'Foreground', groups: [['cup-2', 'laptop-1']] },
        { layer: 'Midground', groups: [['dining table-1']] },
      ],
      relations: [
        {
          caption: 'two cups and a laptop stand on the table',
          relations: [
            { subject: ['cup-1', 'cup-2'], object: ['dining table-1'], relation: 'on' },
            { subject: ['laptop-1'], object: ['dining table-1'], relation: 'on' },
          ],
        },
        { caption: 'the mug is left of the laptop', relations: [{ subject: ['cup-1'], object: ['laptop-1'], relation: 'left of' }] },
      ],
      caption: 'A white ceramic mug(cup-1) and a glass cup(cup-2) of tea stand beside an open silver laptop(laptop-1) on a wooden dining table(dining table-1).',
    },
    layout: {
      Layout: [
        { object: 'cup-1', bbox: [0.08, 0.52, 0.16, 0.22] },
        { object: 'cup-2', bbox: [0.28, 0.48, 0.1, 0.18] },
        { object: 'laptop-1', bbox: [0.42, 0.26, 0.42, 0.4] },
        { object: 'dining table-1', bbox: [0.02, 0.5, 0.96, 0.46] },
      ],
    },
  },
];

const shots = (answer: (e: (typeof SCENE_EXAMPLES)[number]) => { prompt: unknown; output: unknown }) =>
  SCENE_EXAMPLES.map((e, i) => {
    const { prompt, output } = answer(e);
    return `##Example-${i + 1}\nPrompt: ${JSON.stringify(prompt)}\nDesired Output: ${JSON.stringify(output)}`;
  }).join('\n\n');

const SCENE_TASK =
  'You design scenes for a layout-conditioned image generator. Each object has an id "{name}-{k}". Answer with JSON with these keys:\n' +
  '- "attributes": one {"object": id, "attribute": a short noun phrase with colour/texture/appearance that names the object} per object;\n' +
  '- "groups": lists of ids of objects that strongly interact;\n' +
  `- "layers_of_depth": {"layer": one of ${DEPTH_LAYERS.map((l) => `"${l}"`).join(', ')}, "groups": [[ids]]} entries placing every group;\n` +
  '- "relations": {"caption": a sentence, "relations": [{"subject": [ids], "object": [ids], "relation": a short spatial or action phrase}]} entries;\n' +
  '- "caption": one or two plain sentences describing the scene that mention every object once as word(id), e.g. "a brown dog(dog-1) leaps for a red frisbee(frisbee-1)"; no hedging words.\n\n' +
  shots((e) => ({ prompt: { objects: e.objects }, output: e.graph }));

const LAYOUT_TASK =
  'You place objects in an image. Boxes are [x, y, w, h] normalised to the image: (x, y) the top-left corner, w and h the width and height; ' +
  'x, y, w, h, x+w and y+h must all be strictly between 0 and 1. Give every object exactly one box, sized and placed plausibly for the caption ' +
  'and the depth layers (nearer objects larger and lower). Answer {"Layout": [{"object": id, "bbox": [x, y, w, h]}]}.\n\n' +
  shots((e) => ({
    prompt: { objects: e.graph.attributes.map((a) => `${a.object}: ${a.attribute}`), dense_caption: e.graph.caption, layers_of_depth: e.graph.layers_of_depth },
    output: e.layout,
  }));

export interface ScenePlanOptions {
  /** Scenes to plan. */
  count: number;
  /** Draw toward rare classes with repeat factors (default true). */
  rebalance?: boolean;
  llm?: LlmSource;
  /** LLM calls at once (default 4). */
  concurrency?: number;
  /** Hears (scenes done, scenes). */
  onProgress?: (done: number, total: number) => void;
}

/** Plans `count` scenes from real co-occurring object sets. */
export async function planScenes(coco: CocoIndex, sets: readonly ObjectSet[], o: ScenePlanOptions, d: JobDefaults): Promise<StrategyResult> {
  const drawn = drawObjectSets(sets, o.count, d.seed, o.rebalance ?? true);
  const display = new Map([...coco.categoryById.values()].map((c) => [c.name, displayName(c)]));
  const shown = (name: string) => display.get(name) ?? name.replace(/_/g, ' ');
  const results = await mapLimit(drawn, o.concurrency ?? 4, withProgress(drawn.length, o.onProgress, async ({ set, layout }, index): Promise<{ job?: PlanJob; failure?: PlanFailure }> => {
    // The objects in a stable order: the drawn image's order when there is one, else the set's.
    const names = layout ? layout.objects.map((x) => x.name) : set.objects;
    const classes = [...new Set(names)];
    const ids = objectIds(names);
    const item = `scene ${index}: ${set.objects.join(', ')}`;
    const base = {
      set: set.objects,
      objects: ids,
      draw: index,
      rebalanced: o.rebalance ?? true,
      ...(layout ? { image_id: layout.image_id } : {}),
    };
    if (o.llm) {
      let stage = 'scene-graph';
      try {
        const idsShown = ids.map((id) => id.replace(/^(.*)-(\d+)$/, (_, n: string, k: string) => `${shown(n)}-${k}`));
        const graph = await askJson(
          o.llm,
          [
            { role: 'system', content: SCENE_TASK },
            { role: 'user', content: JSON.stringify({ objects: idsShown }) },
          ],
          SceneGraphSchema,
          'scene_graph',
          (g) => sceneGraphProblem(g, idsShown),
        );
        stage = 'layout';
        const attr = new Map(graph.value.attributes.map((a) => [a.object, a.attribute]));
        const boxes = await askJson(
          o.llm,
          [
            { role: 'system', content: LAYOUT_TASK },
            {
              role: 'user',
              content: JSON.stringify({ objects: idsShown.map((id) => `${id}: ${attr.get(id)}`), dense_caption: graph.value.caption, layers_of_depth: graph.value.layers_of_depth }),
            },
          ],
          LayoutAnswerSchema,
          'layout',
          (l) => layoutProblem(l, idsShown),
        );
        const layer = new Map<string, number>();
        for (const l of graph.value.layers_of_depth) for (const id of l.groups.flat()) if (!layer.has(id)) layer.set(id, DEPTH_LAYERS.indexOf(l.layer));
        const byId = new Map(boxes.value.Layout.map((b) => [b.object, b.bbox as [number, number, number, number]]));
        const layoutBoxes: LayoutBox[] = idsShown.map((id, i) => ({
          name: shown(names[i]!),
          box: byId.get(id)!,
          attributes: [attr.get(id)!],
          ...(layer.has(id) ? { layer: layer.get(id)! } : {}),
        }));
        const job = makeJob(
          'scene',
          { kind: 'txt2img', classes, prompt: untagCaption(graph.value.caption), layout: layoutBoxes, idKey: `draw:${index}` },
          {
            ...base,
            source: 'llm',
            model: graph.model,
            scene_graph: { groups: graph.value.groups, layers_of_depth: graph.value.layers_of_depth, relations: graph.value.relations, caption: graph.value.caption },
          },
          d,
        );
        return { job };
      } catch (e) {
        return { failure: { strategy: 'scene', item, stage, reason: reasonOf(e) } };
      }
    }
    if (!layout) return { failure: { strategy: 'scene', item, stage: 'layout', reason: 'no LLM endpoint and no real layout stored for this set (raise --max-layouts in genaug priors)' } };
    const layoutBoxes: LayoutBox[] = layout.objects.map((x) => ({ name: shown(x.name), box: insideUnit(x.box) }));
    const job = makeJob(
      'scene',
      { kind: 'txt2img', classes, prompt: templateSceneCaption(names.map(shown)), layout: layoutBoxes, idKey: `draw:${index}` },
      { ...base, source: 'real-layout', caption: 'template' },
      d,
    );
    return { job };
  }));
  return {
    jobs: results.flatMap((r) => (r.job ? [r.job] : [])),
    failures: results.flatMap((r) => (r.failure ? [r.failure] : [])),
  };
}
