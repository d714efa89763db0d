/**
 * Single-object prompts: the X-Paste and DiverGen templates, and prompts
 * diversified by an LLM (DiverGen's generated prompts; contextual and
 * stylised diversification of "Diversify, Don't Fine-Tune"), with template
 * fallbacks when no LLM endpoint is given. Every job's provenance says where
 * each part came from.
 */
import { z } from 'zod';

import {
  article, askJson, dedupeTexts, itemSeed, makeJob, mapLimit, normalizeText, reasonOf, shuffled, withProgress,
  type JobDefaults, type LlmSource, type PlanClass, type PlanFailure, type StrategyResult,
} from './core.js';
import type { PlanJob } from './job.js';
import { seededRandom } from '../util/random.js';
import type { WordNet } from './wordnet.js';

/** X-Paste: "a photo of a single {name}". */
export function xpastePrompt(name: string): string {
  return `a photo of a single ${name}`;
}

/** DiverGen's manual prompt: "a photo of a single {name}, {definition}, in a white background". */
export function divergenPrompt(name: string, definition?: string): string {
  return definition ? `a photo of a single ${name}, ${definition}, in a white background` : `a photo of a single ${name}, in a white background`;
}

export type DefinitionSource = 'meaning' | 'lvis' | 'wordnet-synset' | 'wordnet-first-sense' | 'none';

export interface Definition {
  text?: string;
  source: DefinitionSource;
  synset?: string;
}

/** A resolved meaning per class name (from the ambiguity strategy's meanings file). */
export type Meanings = Map<string, { meaning: string; source: string }>;

/**
 * A class's definition: a resolved meaning when given, else the LVIS `def`,
 * else the gloss of its LVIS `synset` in WordNet, else the gloss of the
 * name's first concrete WordNet noun sense (`WordNet.firstConcreteSense`:
 * instances and abstract senses skipped), else none.
 */
export function classDefinition(c: PlanClass, wordnet?: WordNet, meanings?: Meanings): Definition {
  const m = meanings?.get(c.name);
  if (m) return { text: m.meaning, source: 'meaning' };
  // An extra category's def is its WordNet gloss, not an LVIS definition.
  if (c.def) return c.source === 'wordnet-extra' ? { text: c.def, source: 'wordnet-synset', ...(c.synset ? { synset: c.synset } : {}) } : { text: c.def, source: 'lvis' };
  if (wordnet) {
    const fromSynset = c.synset ? wordnet.synset(c.synset) : null;
    if (fromSynset) return { text: fromSynset.definition, source: 'wordnet-synset', synset: fromSynset.name };
    if (c.extra) {
      const s = wordnet.synset(c.extra.synset);
      if (s) return { text: s.definition, source: 'wordnet-synset', synset: s.name };
    }
    const first = wordnet.firstConcreteSense(c.display);
    if (first) return { text: first.definition, source: 'wordnet-first-sense', synset: first.name };
  }
  return { source: 'none' };
}

const classProvenance = (c: PlanClass) => ({
  class_source: c.source,
  ...(c.id !== null ? { category_id: c.id } : {}),
  ...(c.extra ? { extra: c.extra } : {}),
});

/** One template job per class (X-Paste or DiverGen form); `candidates` images each. */
export function planTemplates(
  classes: PlanClass[],
  o: { style: 'xpaste' | 'divergen'; wordnet?: WordNet; meanings?: Meanings },
  d: JobDefaults,
): StrategyResult {
  const jobs: PlanJob[] = [];
  for (const c of classes) {
    if (o.style === 'xpaste') {
      const m = o.meanings?.get(c.name);
      const prompt = m ? `${xpastePrompt(c.display)}, ${m.meaning}` : xpastePrompt(c.display);
      jobs.push(makeJob('template', { kind: 'txt2img', classes: [c.name], prompt }, { template: 'xpaste', ...(m ? { meaning: m.source } : {}), ...classProvenance(c) }, d));
    } else {
      const def = classDefinition(c, o.wordnet, o.meanings);
      jobs.push(
        makeJob(
          'divergen',
          { kind: 'txt2img', classes: [c.name], prompt: divergenPrompt(c.display, def.text) },
          { template: 'divergen', definition: def.source, ...(def.synset ? { synset: def.synset } : {}), ...classProvenance(c) },
          d,
        ),
      );
    }
  }
  return { jobs, failures: [] };
}

// ---------------------------------------------------------------------------
// LLM-diversified prompts

export type DiversityMode = 'divergen' | 'context' | 'style';
export const DIVERSITY_MODES: DiversityMode[] = ['divergen', 'context', 'style'];

/** DiverGen's prompt openings. */
export const DIVERGEN_OPENINGS = ['A photo of', 'An image of', 'A real photo of', 'A photography of', 'An illustration of'];

/** Styles used when no LLM lists them (the SD examples plus common renderings). */
export const FALLBACK_STYLES = [
  'painting', 'pencil sketch', 'cartoon', '3D render', 'embroidery', 'origami', 'watercolor painting', 'oil painting',
  'pixel art image', 'sculpture', 'graffiti', 'tattoo design', 'stained glass window', 'charcoal drawing', 'woodcut print', 'plush toy',
];

/** Contexts used when no LLM writes scene descriptions. */
export const FALLBACK_CONTEXTS = [
  'indoors', 'outdoors on a city street', 'in a park', 'on a wooden table', 'in a field', 'at night', 'on a sunny day', 'in the rain',
  'in close-up', 'seen from above', 'in a kitchen', 'in a forest', 'on a beach', 'in a living room', 'in the snow', 'at dusk',
];

const Prompts = z.object({ prompts: z.array(z.string()) });
const Descriptions = z.object({ descriptions: z.array(z.string()) });
const Styles = z.object({ styles: z.array(z.string()) });

const MAX_PROMPT_CHARS = 400;

/** Does the text mention the class (its name, its display name or a synonym)? */
export function mentionsClass(text: string, c: PlanClass): boolean {
  const t = ` ${normalizeText(text)} `;
  const names = [c.display, c.name, ...(c.synonyms ?? [])].map((n) => normalizeText(n.replace(/_/g, ' '))).filter(Boolean);
  // "dogs" mentions "dog": compare with a plural-tolerant check on the last word.
  return names.some((n) => t.includes(` ${n} `) || t.includes(` ${n}s `) || t.includes(` ${n}es `));
}

function checkList(items: string[], c: PlanClass, mustMention: boolean): string | null {
  const ok = items.filter((p) => p.trim() && p.length <= MAX_PROMPT_CHARS && (!mustMention || mentionsClass(p, c)));
  if (!ok.length) return `none of the ${items.length} texts is usable (each must be non-empty, at most ${MAX_PROMPT_CHARS} characters${mustMention ? `, and mention "${c.display}"` : ''})`;
  return null;
}

export interface LlmPromptOptions {
  modes: DiversityMode[];
  /** Prompts per class and mode. */
  perClass: number;
  llm?: LlmSource;
  wordnet?: WordNet;
  meanings?: Meanings;
  /** LLM calls at once (default 4). */
  concurrency?: number;
  /** Hears (classes done, classes). */
  onProgress?: (done: number, total: number) => void;
}

function divergenMessages(c: PlanClass, def: string | undefined, n: number) {
  return [
    {
      role: 'system' as const,
      content: 'You write prompts for a text-to-image model that will generate training images of single objects for instance segmentation. Answer with JSON only.',
    },
    {
      role: 'user' as const,
      content:
        `Write ${n} different prompts for images of a single ${c.display}${def ? ` (${def})` : ''}.\n` +
        `Rules: each prompt starts with one of ${DIVERGEN_OPENINGS.map((x) => `"${x}"`).join(', ')}; ` +
        `it names the ${c.display} and describes one instance with a distinct appearance (colour, shape, material, size, state, viewpoint); ` +
        `it shows only one ${c.display} and no other objects or people; it ends with ", in a white background"; at most 30 words; no two prompts alike.\n` +
        `Return {"prompts": [${n} strings]}.`,
    },
  ];
}

function contextMessages(c: PlanClass, def: string | undefined, n: number) {
  return [
    { role: 'system' as const, content: 'You write prompts for a text-to-image model that will generate diverse training photos. Answer with JSON only.' },
    {
      role: 'user' as const,
      content:
        `Write ${n} distinct one-sentence descriptions of a realistic photo that shows a ${c.display}${def ? ` (meaning: ${def})` : ''}.\n` +
        `Vary the context across the sentences: background, location, co-occurring objects, viewpoint, time of day and weather. ` +
        `Each sentence must contain the words "${c.display}" and be at most 30 words.\n` +
        `Return {"descriptions": [${n} strings]}.`,
    },
  ];
}

function styleMessages(n: number) {
  return [
    { role: 'system' as const, content: 'You help diversify image-generation prompts. Answer with JSON only.' },
    {
      role: 'user' as const,
      content:
        `List ${n} distinct visual styles or renderings an image of an object can have, as short noun phrases usable in "a <style> of a dog" ` +
        `(for example: painting, pencil sketch, cartoon, 3D render, embroidery, origami). Return {"styles": [${n} strings]}.`,
    },
  ];
}

/** DiverGen's ending: ", in a white background" (trailing punctuation dropped; kept when already there). */
export function whiteBackground(prompt: string): string {
  const t = prompt.trim().replace(/[\s.!,;:]+$/, '');
  return /\bin a white background$/i.test(t) ? t : `${t}, in a white background`;
}

/** Fallback DiverGen-style prompts: the openings × the definition, cycled. */
function divergenFallback(c: PlanClass, def: string | undefined, n: number, random: () => number): string[] {
  const openings = shuffled(DIVERGEN_OPENINGS, random);
  const out: string[] = [];
  for (let i = 0; i < Math.min(n, openings.length); i++) {
    out.push(`${openings[i]} a single ${c.display}${def ? `, ${def}` : ''}, in a white background`);
  }
  return out;
}

/**
 * Diversified prompts per class. With an LLM: DiverGen's constrained prompts,
 * contextual scene descriptions (CD) and "a {style} of a {class}, {meaning}"
 * with LLM-listed styles (SD), validated (each must mention the class, except
 * style prompts that are built here), deduplicated on normalised text, up to
 * `perClass` per mode. Without an LLM (or after it failed for a class, which
 * is recorded): template fallbacks marked `source: "template"`.
 */
export async function planLlmPrompts(classes: PlanClass[], o: LlmPromptOptions, d: JobDefaults): Promise<StrategyResult> {
  const failures: PlanFailure[] = [];
  const n = o.perClass;
  let styles: { list: string[]; source: 'llm' | 'template'; model?: string } = { list: FALLBACK_STYLES, source: 'template' };
  if (o.modes.includes('style') && o.llm) {
    try {
      const r = await askJson(o.llm, styleMessages(Math.max(n, 8)), Styles, 'styles', (v) =>
        dedupeTexts(v.styles).filter((s) => s.length <= 60).length ? null : 'no usable style (non-empty, at most 60 characters)',
      );
      styles = { list: dedupeTexts(r.value.styles.map((s) => s.trim())).filter((s) => s && s.length <= 60), source: 'llm', model: r.model };
    } catch (e) {
      failures.push({ strategy: 'llm', item: '(styles)', stage: 'style-list', reason: reasonOf(e) });
    }
  }
  const perClass = await mapLimit(classes, o.concurrency ?? 4, withProgress(classes.length, o.onProgress, async (c) => {
    const jobs: PlanJob[] = [];
    const fails: PlanFailure[] = [];
    const def = classDefinition(c, o.wordnet, o.meanings);
    const base = { definition: def.source, ...(def.synset ? { synset: def.synset } : {}), class_source: c.source, ...(c.id !== null ? { category_id: c.id } : {}) };
    const random = seededRandom(itemSeed(d.seed, `llm:${c.name}`));
    for (const mode of o.modes) {
      let texts: string[] = [];
      let source: 'llm' | 'template' = 'template';
      let model: string | undefined;
      if (mode === 'style') {
        const chosen = shuffled(styles.list, random).slice(0, n);
        texts = chosen.map((s) => `${article(s)} ${s} of ${article(c.display)} ${c.display}${def.text ? `, ${def.text}` : ''}`);
        source = styles.source;
        model = styles.model;
      } else if (o.llm) {
        try {
          if (mode === 'divergen') {
            const r = await askJson(o.llm, divergenMessages(c, def.text, n), Prompts, 'prompts', (v) => checkList(v.prompts, c, true));
            texts = r.value.prompts;
            model = r.model;
          } else {
            const r = await askJson(o.llm, contextMessages(c, def.text, n), Descriptions, 'descriptions', (v) => checkList(v.descriptions, c, true));
            texts = r.value.descriptions;
            model = r.model;
          }
          texts = texts.map((t) => t.trim()).filter((t) => t && t.length <= MAX_PROMPT_CHARS && mentionsClass(t, c));
          if (mode === 'divergen') texts = texts.map(whiteBackground);
          source = 'llm';
        } catch (e) {
          fails.push({ strategy: 'llm', item: c.name, stage: mode, reason: reasonOf(e) });
        }
      }
      if (source === 'template' && mode !== 'style') {
        texts =
          mode === 'divergen'
            ? divergenFallback(c, def.text, n, random)
            : shuffled(FALLBACK_CONTEXTS, random)
                .slice(0, n)
                .map((ctx) => `a photo of ${article(c.display)} ${c.display} ${ctx}`);
      }
      for (const prompt of dedupeTexts(texts).slice(0, n)) {
        jobs.push(makeJob('llm', { kind: 'txt2img', classes: [c.name], prompt }, { mode, source, ...(model ? { model } : {}), ...base }, d));
      }
    }
    return { jobs, fails };
  }));
  return { jobs: perClass.flatMap((r) => r.jobs), failures: [...failures, ...perClass.flatMap((r) => r.fails)], notes: { styles } };
}
