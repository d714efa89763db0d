/**
 * Label-ambiguity resolution ("Diversify, Don't Fine-Tune", LAR) and
 * category diversity (DiverGen).
 *
 * LAR: the candidate meanings of a class name come from its WordNet noun
 * senses, the LVIS definition and, with an LLM, a few short descriptions.
 * Each candidate k is scored by the mean over real images i of the class of
 * cos(CLIP(image_i), CLIP("a photo of {name}, {meaning_k}")); the best one is
 * the class's meaning and is appended to its prompts. Without an embedder (or
 * without images, or when the scores tie) the fallback is, in order: the gloss
 * of the LVIS synset, the LVIS definition, the first concrete WordNet sense
 * (no instances, no abstract senses), the LLM's first candidate.
 *
 * Category diversity: WordNet neighbours of the classes (siblings and cousins:
 * up `hops` hypernym edges, then down as many hyponym edges) that are not a
 * class already and whose similarity to every class is below a threshold
 * (DiverGen filtered ImageNet categories at 0.4; path similarity by default).
 */

import { z } from 'zod';

import type { CocoIndex } from '../io/coco.js';
import { readImage } from '../io/images.js';
import { ClipModel } from '../models/clip.js';
import type { ImageTextEmbedder, RgbInput } from '../models/types.js';
import { GenaugError } from '../native/errors.js';
import { readableImagePath, sampleClassImages } from './captions.js';
import { askJson, makeJob, mapLimit, normalizeText, reasonOf, type JobDefaults, type LlmSource, type PlanClass, type PlanFailure, type StrategyResult } from './core.js';
import type { PlanJob } from './job.js';
import type { Meanings } from './prompts.js';
import { lemmaText, type SimilarityMeasure, type Synset, type WordNet } from './wordnet.js';

export interface MeaningCandidate {
  text: string;
  source: 'wordnet' | 'lvis' | 'llm';
  synset?: string;
  /** Mean CLIP cosine to the class's real images (when scored). */
  score?: number;
}

export interface Resolution {
  class: string;
  meaning: string | null;
  /** clip: the best-scored candidate; otherwise the fallback that gave it. */
  method: 'clip' | 'single' | 'lvis-synset' | 'lvis' | 'wordnet-synset' | 'wordnet-first-sense' | 'llm-first' | 'none';
  candidates: MeaningCandidate[];
  /** Real images the scores were averaged over. */
  images: number;
}

const LlmMeanings = z.object({ meanings: z.array(z.string()) });

/** Candidate meanings of a class: WordNet senses, the LVIS def, then the LLM's (deduplicated on normalised text). */
export async function candidateMeanings(
  c: PlanClass,
  o: { wordnet?: WordNet; llm?: LlmSource; llmCount?: number },
): Promise<{ candidates: MeaningCandidate[]; failure?: string }> {
  const out: MeaningCandidate[] = [];
  if (o.wordnet) for (const s of o.wordnet.synsets(c.display)) out.push({ text: s.definition, source: 'wordnet', synset: s.name });
  // An extra category's def is its WordNet gloss, not an LVIS definition.
  if (c.def) out.push(c.source === 'wordnet-extra' ? { text: c.def, source: 'wordnet', ...(c.synset ? { synset: c.synset } : {}) } : { text: c.def, source: 'lvis' });
  let failure: string | undefined;
  if (o.llm) {
    const k = o.llmCount ?? 4;
    try {
      const r = await askJson(
        o.llm,
        [
          { role: 'system', content: 'You disambiguate object class names for image generation. Answer with JSON only.' },
          {
            role: 'user',
            content:
              `A visual recognition dataset has a class named "${c.display}"${c.synonyms?.length ? ` (synonyms: ${c.synonyms.join(', ')})` : ''}${c.def ? ` (defined as: ${c.def})` : ''}. ` +
              `List up to ${k} distinct things this name can mean, each as a short description (at most 15 words) of what it looks like, most likely meaning first. Return {"meanings": [strings]}.`,
          },
        ],
        LlmMeanings,
        'meanings',
        (v) => (v.meanings.some((m) => m.trim() && m.length <= 200) ? null : 'no usable meaning (non-empty, at most 200 characters)'),
      );
      for (const m of r.value.meanings.slice(0, k)) if (m.trim() && m.length <= 200) out.push({ text: m.trim().replace(/\.+$/, ''), source: 'llm' });
    } catch (e) {
      failure = reasonOf(e);
    }
  }
  const seen = new Set<string>();
  return {
    candidates: out.filter((m) => {
      const key = normalizeText(m.text);
      return key && !seen.has(key) && (seen.add(key), true);
    }),
    ...(failure ? { failure } : {}),
  };
}

/** The LAR text of a candidate: "a photo of {name}, {meaning}". */
export function meaningText(name: string, meaning: string): string {
  return `a photo of ${name}, ${meaning}`;
}

/** Mean over images of cos(image, text) for each candidate (embeddings are L2-normalised rows). */
export async function scoreMeanings(name: string, candidates: string[], images: RgbInput[], embedder: ImageTextEmbedder): Promise<number[]> {
  if (!candidates.length || !images.length) return candidates.map(() => Number.NaN);
  const t = await embedder.embedTexts(candidates.map((m) => meaningText(name, m)));
  const v = await embedder.embedImages(images);
  const dim = embedder.dim;
  if (t.length !== candidates.length * dim || v.length !== images.length * dim) {
    throw new GenaugError('E_SHAPE', `the embedder ${embedder.name} returned ${t.length} and ${v.length} values; expected ${candidates.length}×${dim} and ${images.length}×${dim}`);
  }
  return candidates.map((_, k) => {
    let sum = 0;
    for (let i = 0; i < images.length; i++) {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += v[i * dim + j]! * t[k * dim + j]!;
      sum += dot;
    }
    return sum / images.length;
  });
}

/** The longer side real images are shrunk to before CLIP scores them (CLIP resizes to 224 anyway). */
const SCORE_MAX_SIDE = 448;

export interface ResolveOptions {
  wordnet?: WordNet;
  llm?: LlmSource;
  embedder?: ImageTextEmbedder;
  /** Real images of a class, as RGB; default: the class's images under `imageRoot`. */
  loadImages?: (c: PlanClass, imageIds: number[]) => Promise<RgbInput[]>;
  imageRoot?: string;
  /** Real images scored per class (default 8). */
  imagesPerClass?: number;
  llmCount?: number;
  seed?: number;
  concurrency?: number;
}

function fallback(c: PlanClass, candidates: MeaningCandidate[], wordnet?: WordNet): Pick<Resolution, 'meaning' | 'method'> {
  const synset = c.synset && wordnet ? wordnet.synset(c.synset) : null;
  const extra = c.source === 'wordnet-extra';
  if (synset) return { meaning: synset.definition, method: extra ? 'wordnet-synset' : 'lvis-synset' };
  if (c.def) return { meaning: c.def, method: extra ? 'wordnet-synset' : 'lvis' };
  const first = wordnet?.firstConcreteSense(c.display);
  const fromCandidates = first && candidates.find((m) => m.synset === first.name);
  if (fromCandidates) return { meaning: fromCandidates.text, method: 'wordnet-first-sense' };
  const llm = candidates.find((m) => m.source === 'llm');
  if (llm) return { meaning: llm.text, method: 'llm-first' };
  return { meaning: null, method: 'none' };
}

/** Resolves every class's meaning; failures (LLM, images) are recorded and the fallback is used. */
export async function resolveAmbiguity(coco: CocoIndex | null, classes: PlanClass[], o: ResolveOptions): Promise<{ resolutions: Resolution[]; failures: PlanFailure[] }> {
  const load =
    o.loadImages ??
    (async (_c: PlanClass, ids: number[]) => {
      if (!coco) return [];
      return Promise.all(ids.map((id) => readableImagePath(coco.imageById.get(id)!, o.imageRoot).then((path) => readImage(path, { maxSide: SCORE_MAX_SIDE }))));
    });
  const perClass = await mapLimit(classes, o.concurrency ?? 2, async (c): Promise<[Resolution, PlanFailure[]]> => {
    const failures: PlanFailure[] = [];
    const r = await resolveOne(c, failures);
    return [r, failures];
  });
  async function resolveOne(c: PlanClass, failures: PlanFailure[]): Promise<Resolution> {
    const { candidates, failure } = await candidateMeanings(c, o);
    if (failure) failures.push({ strategy: 'ambiguity', item: c.name, stage: 'llm-candidates', reason: failure });
    if (candidates.length === 1) return { class: c.name, meaning: candidates[0]!.text, method: 'single', candidates, images: 0 };
    if (o.embedder && candidates.length > 1) {
      try {
        const ids = sampleClassImages(c, o.imagesPerClass ?? 8, o.seed ?? 0);
        const images = ids.length ? await load(c, ids) : [];
        if (images.length) {
          const scores = await scoreMeanings(c.display, candidates.map((m) => m.text), images, o.embedder);
          const scored = candidates.map((m, k) => ({ ...m, score: scores[k]! }));
          let best = 0;
          for (let k = 1; k < scored.length; k++) if (scored[k]!.score > scored[best]!.score) best = k;
          const tie = scored.some((m, k) => k !== best && Math.abs(m.score - scored[best]!.score) <= 1e-6);
          if (!tie) return { class: c.name, meaning: scored[best]!.text, method: 'clip', candidates: scored, images: images.length };
          return { class: c.name, ...fallback(c, scored, o.wordnet), candidates: scored, images: images.length };
        }
      } catch (e) {
        failures.push({ strategy: 'ambiguity', item: c.name, stage: 'clip-score', reason: reasonOf(e) });
      }
    }
    return { class: c.name, ...fallback(c, candidates, o.wordnet), candidates, images: 0 };
  }
  return { resolutions: perClass.map(([r]) => r), failures: perClass.flatMap(([, f]) => f) };
}

/** The meanings map the prompt strategies take, from resolutions (or a meanings.json file's entries). */
export function meaningsOf(resolutions: Array<Pick<Resolution, 'class' | 'meaning' | 'method'>>): Meanings {
  const m: Meanings = new Map();
  for (const r of resolutions) if (r.meaning) m.set(r.class, { meaning: r.meaning, source: r.method });
  return m;
}

// ---------------------------------------------------------------------------
// Category diversity

export interface ExtraCategoryOptions {
  /** How many extra categories to add. */
  count: number;
  /** Similarity used by the rule (default "path"). */
  measure?: SimilarityMeasure;
  /** A candidate is kept only if its similarity to every class is below this (default 0.4). */
  maxSimilarity?: number;
  /** Hypernym edges climbed from a class's synset to find neighbours (default 2). */
  hops?: number;
  /** Candidate names instead of WordNet neighbours (e.g. ImageNet class names); each resolved to its first noun sense. */
  candidates?: string[];
}

/** A class's WordNet synset: its LVIS synset when it resolves, else the first concrete noun sense of its name. */
export function classSynset(c: PlanClass, wordnet: WordNet): Synset | null {
  return (c.synset ? wordnet.synset(c.synset) : null) ?? wordnet.firstConcreteSense(c.display);
}

/**
 * Extra categories (DiverGen's category diversity), most related first: the
 * candidates whose highest similarity to a class is below `maxSimilarity`,
 * sorted by that similarity (descending), then by name.
 */
export function extraCategories(classes: PlanClass[], wordnet: WordNet, o: ExtraCategoryOptions): PlanClass[] {
  const measure = o.measure ?? 'path';
  const max = o.maxSimilarity ?? 0.4;
  const hops = o.hops ?? 2;
  const own = classes.map((c) => classSynset(c, wordnet)).filter((s): s is Synset => s !== null);
  const ownOffsets = new Set(own.map((s) => s.offset));
  const candidates = new Map<number, Synset>();
  if (o.candidates) {
    for (const name of o.candidates) {
      const s = wordnet.synset(name) ?? wordnet.synsets(name)[0];
      if (s) candidates.set(s.offset, s);
    }
  } else {
    for (const s of own) {
      let level: Synset[] = [s];
      for (let h = 0; h < hops; h++) level = level.flatMap((x) => wordnet.hypernyms(x));
      let down = level;
      for (let h = 0; h < hops; h++) down = down.flatMap((x) => wordnet.hyponyms(x));
      for (const x of down) candidates.set(x.offset, x);
    }
  }
  const kept: Array<{ s: Synset; sim: number; nearest: Synset }> = [];
  for (const cand of candidates.values()) {
    if (ownOffsets.has(cand.offset)) continue;
    let best = -Infinity;
    let nearest: Synset | undefined;
    for (const s of own) {
      const v = wordnet.similarity(cand, s, measure) ?? 0;
      if (v > best) {
        best = v;
        nearest = s;
      }
    }
    if (nearest && best < max) kept.push({ s: cand, sim: best, nearest });
  }
  kept.sort((a, b) => b.sim - a.sim || (a.s.name < b.s.name ? -1 : a.s.name > b.s.name ? 1 : 0));
  const taken = new Set(classes.flatMap((c) => [c.name.toLowerCase(), c.display.toLowerCase()]));
  const out: PlanClass[] = [];
  for (const k of kept) {
    if (out.length >= o.count) break;
    const display = lemmaText(k.s.lemmas[0]!);
    if (taken.has(display.toLowerCase())) continue;
    taken.add(display.toLowerCase());
    out.push({
      name: k.s.lemmas[0]!.toLowerCase(),
      display,
      id: null,
      def: k.s.definition,
      synset: k.s.name,
      synonyms: k.s.lemmas.slice(1).map(lemmaText),
      imageIds: [],
      source: 'wordnet-extra',
      extra: { synset: k.s.name, similarity: k.sim, nearest: k.nearest.name },
    });
  }
  return out;
}

export interface AmbiguityPlanOptions extends ResolveOptions {
  /** Prompt form the meaning is appended to (default "a photo of a single {class}"). */
  template?: string;
}

/** One job per class: the template with the resolved meaning appended; resolutions in `notes.meanings`. */
export async function planAmbiguity(coco: CocoIndex | null, classes: PlanClass[], o: AmbiguityPlanOptions, d: JobDefaults): Promise<StrategyResult> {
  const { resolutions, failures } = await resolveAmbiguity(coco, classes, o);
  const template = o.template ?? 'a photo of a single {class}';
  const jobs: PlanJob[] = [];
  classes.forEach((c, i) => {
    const r = resolutions[i]!;
    const base = template.replace(/\{class\}/g, c.display);
    jobs.push(
      makeJob(
        'ambiguity',
        { kind: 'txt2img', classes: [c.name], prompt: r.meaning ? `${base}, ${r.meaning}` : base },
        {
          meaning_method: r.method,
          ...(o.embedder ? { embedder: o.embedder.name } : {}),
          candidates: r.candidates.map((m) => ({ text: m.text, source: m.source, ...(m.synset ? { synset: m.synset } : {}), ...(m.score !== undefined ? { score: m.score } : {}) })),
          class_source: c.source,
          ...(c.id !== null ? { category_id: c.id } : {}),
          ...(c.extra ? { extra: c.extra } : {}),
        },
        d,
      ),
    );
  });
  return { jobs, failures, notes: { meanings: resolutions } };
}

/** Opens a CLIP model folder (models/clip.ts, both towers) as the embedder that scores candidate meanings. */
export async function openClipEmbedder(dir: string, provider: 'cpu' | 'cuda' = 'cpu'): Promise<ImageTextEmbedder> {
  return ClipModel.open(dir, { provider, require: 'both' });
}
