/**
 * What every plan strategy shares: the classes to plan for, job construction
 * with stable ids and seeds, recorded failures, an answer cache that makes
 * reruns reuse the LLM's earlier answers, and LLM calls validated beyond their
 * JSON schema with retries.
 */
import { createHash } from 'node:crypto';
import { appendFile } from 'node:fs/promises';

import type { CocoIndex } from '../io/coco.js';
import { displayName } from '../io/coco.js';
import type { ChatClient, ChatMessage } from '../llm/chat.js';
import { GenaugError } from '../native/errors.js';
import { readAppendLog } from '../util/jsonl.js';
import { PlanJobSchema, type LayoutBox, type PlanJob } from './job.js';
import { frequencyGroup, type FrequencyGroup } from './priors.js';
import type { z } from 'zod';

export type Strategy = 'template' | 'divergen' | 'llm' | 'scene' | 'caption' | 'alia' | 'ambiguity';
export const STRATEGIES: Strategy[] = ['template', 'divergen', 'llm', 'scene', 'caption', 'alia', 'ambiguity'];

/** A class to plan for: a category of the dataset, or an extra category found in WordNet. */
export interface PlanClass {
  /** The category name as the dataset spells it (what `classes` in a job holds). */
  name: string;
  /** The name as a prompt word ("teddy bear"). */
  display: string;
  /** Category id; null for an extra category. */
  id: number | null;
  def?: string;
  synset?: string;
  synonyms?: string[];
  frequency?: FrequencyGroup;
  /** Real images that hold the class, in id order. */
  imageIds: number[];
  /** Where the class came from. */
  source: 'dataset' | 'wordnet-extra';
  /** For extra categories: the WordNet synset and its highest similarity to a dataset class. */
  extra?: { synset: string; similarity: number; nearest: string };
}

export interface ClassFilter {
  /** Only these category names (dataset spelling or display name). */
  names?: string[];
  /** Only these frequency groups (computed from image counts, r ≤ 10 < c ≤ 100 < f). */
  frequencies?: FrequencyGroup[];
}

/** The dataset's categories as plan classes, in category id order. */
export function planClasses(coco: CocoIndex, filter: ClassFilter = {}): PlanClass[] {
  const images = new Map<number, Set<number>>();
  for (const [imageId, anns] of coco.annotationsByImage) {
    for (const a of anns) {
      let s = images.get(a.category_id);
      if (!s) images.set(a.category_id, (s = new Set()));
      s.add(imageId);
    }
  }
  const wanted = filter.names ? new Set(filter.names.map((n) => n.trim().toLowerCase())) : null;
  const out: PlanClass[] = [];
  for (const c of [...coco.categoryById.values()].sort((a, b) => a.id - b.id)) {
    const display = displayName(c);
    if (wanted && !wanted.has(c.name.toLowerCase()) && !wanted.has(display.toLowerCase())) continue;
    const imageIds = [...(images.get(c.id) ?? [])].sort((a, b) => a - b);
    const frequency = frequencyGroup(imageIds.length);
    if (filter.frequencies && !filter.frequencies.includes(frequency)) continue;
    out.push({
      name: c.name,
      display,
      id: c.id,
      ...(typeof c.def === 'string' && c.def.trim() ? { def: c.def.trim() } : {}),
      ...(typeof c.synset === 'string' ? { synset: c.synset } : {}),
      ...(Array.isArray(c.synonyms) ? { synonyms: c.synonyms.filter((s): s is string => typeof s === 'string') } : {}),
      frequency,
      imageIds,
      source: 'dataset',
    });
  }
  if (wanted) {
    const found = new Set(out.flatMap((c) => [c.name.toLowerCase(), c.display.toLowerCase()]));
    const missing = [...wanted].filter((n) => !found.has(n));
    if (missing.length) throw new GenaugError('E_ARGUMENT', `no category named ${missing.map((m) => JSON.stringify(m)).join(', ')} in ${coco.source}`);
  }
  return out;
}

export interface JobDefaults {
  negativePrompt: string;
  candidates: number;
  width: number;
  height: number;
  /** The plan's seed: each job's seed is derived from it and the job's id. */
  seed: number;
}

export const DEFAULT_JOB: JobDefaults = { negativePrompt: '', candidates: 1, width: 512, height: 512, seed: 0 };

export interface JobContent {
  kind: PlanJob['kind'];
  classes: string[];
  prompt: string;
  negative_prompt?: string;
  layout?: LayoutBox[];
  source_image?: string;
  /**
   * What names the source image in the job's id and seed instead of its path (e.g. its COCO file_name): the same
   * edit planned from another folder keeps its id and seed, so the run's bytes do not depend on where it lives.
   */
  source_key?: string;
  denoising_strength?: number;
  /** The image size when the job has its own (an edit of a real image); default JobDefaults' width and height. */
  width?: number;
  height?: number;
  /**
   * Hashed into the id but not written: tells apart jobs that are meant to be
   * separate although their content is equal (one per source image in caption
   * prompts, one per draw in rebalanced scenes).
   */
  idKey?: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * A job with a stable id: `<strategy>-<first 20 hex digits of SHA-256 of the
 * strategy and the job's content>` (everything but the id, seed, candidates and
 * provenance, plus `idKey` when given); its seed is the first 31 bits of SHA-256(plan seed, id), so the
 * same options give the same plan bytes and candidate seeds never overflow. `candidates` is left out
 * of both, so raising --candidates keeps every id and seed: generate then only makes the new candidates.
 */
export function makeJob(strategy: Strategy, content: JobContent, provenance: Record<string, unknown>, d: JobDefaults = DEFAULT_JOB): PlanJob {
  const body = {
    kind: content.kind,
    classes: content.classes,
    prompt: content.prompt.trim(),
    negative_prompt: content.negative_prompt ?? d.negativePrompt,
    ...(content.layout ? { layout: content.layout } : {}),
    ...(content.source_image !== undefined ? { source_image: content.source_image } : {}),
    ...(content.denoising_strength !== undefined ? { denoising_strength: content.denoising_strength } : {}),
    candidates: d.candidates,
    width: content.width ?? d.width,
    height: content.height ?? d.height,
  };
  const { candidates: _notHashed, ...rest } = body;
  const identity = content.source_key === undefined ? rest : { ...rest, source_image: `key:${content.source_key}` };
  const hashed = content.idKey === undefined ? [strategy, identity] : [strategy, identity, content.idKey];
  const id = `${strategy}-${sha256(JSON.stringify(hashed)).toString('hex').slice(0, 20)}`;
  const seed = sha256(`${d.seed}:${id}`).readUInt32BE(0) >>> 1;
  const job = { id, ...body, seed, provenance: { strategy, ...provenance } };
  const checked = PlanJobSchema.safeParse(job);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new GenaugError('E_INTERNAL', `planned job ${id} does not match the plan schema at ${issue.path.join('.')}: ${issue.message}`);
  }
  return checked.data;
}

/** A planned item that could not be made, with why (recorded, never dropped). */
export interface PlanFailure {
  strategy: Strategy;
  /** What failed: a class, an object set, an image. */
  item: string;
  stage: string;
  reason: string;
}

export interface StrategyResult {
  jobs: PlanJob[];
  failures: PlanFailure[];
  /** Side results a strategy reports (settings, meanings, ...). */
  notes?: Record<string, unknown>;
}

/** Normalised prompt text for deduplication: lower case, letters and digits, single spaces. */
export function normalizeText(text: string): string {
  return text
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Keeps the first of every normalised text. */
export function dedupeTexts(texts: string[]): string[] {
  const seen = new Set<string>();
  return texts.filter((t) => {
    const k = normalizeText(t);
    if (!k || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Jobs with the same id (same content) keep their first occurrence. */
export function dedupeJobs(jobs: PlanJob[]): PlanJob[] {
  const seen = new Set<string>();
  return jobs.filter((j) => (seen.has(j.id) ? false : (seen.add(j.id), true)));
}

/** "a" or "an" before a word (by its first letter). */
export function article(word: string): string {
  return /^[aeiou]/i.test(word.trim()) ? 'an' : 'a';
}

/** A deterministic shuffle (Fisher-Yates) with a seeded generator. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A per-item seed from the plan seed and an item key (independent of processing order). */
export function itemSeed(seed: number, key: string): number {
  return sha256(`${seed}|${key}`).readUInt32BE(0) || 1;
}

// ---------------------------------------------------------------------------
// Answer cache

/**
 * Earlier LLM answers, keyed by a hash of the request: an append-only JSON
 * lines file, so a rerun (or a resumed run) asks only what it has not asked
 * yet and plans the same bytes. A torn last line from a killed run is cut off on open
 * (so the next answer starts a line of its own) and asked again.
 */
export class AnswerCache {
  readonly #map = new Map<string, unknown>();
  private constructor(readonly path: string | null) {}

  static memory(): AnswerCache {
    return new AnswerCache(null);
  }

  static async open(path: string): Promise<AnswerCache> {
    const cache = new AnswerCache(path);
    const text = await readAppendLog(path, 'the answer cache');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as { key?: unknown; value?: unknown };
        if (typeof r.key === 'string') cache.#map.set(r.key, r.value);
      } catch {
        // a line cut off by a kill: asked again
      }
    }
    return cache;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): unknown {
    return this.#map.get(key);
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#map.set(key, value);
    if (this.path) {
      try {
        await appendFile(this.path, JSON.stringify({ key, value }) + '\n');
      } catch (e) {
        throw new GenaugError('E_IO', `could not append to the answer cache ${this.path}: ${(e as Error).message}`, { path: this.path });
      }
    }
  }
}

/** An LLM (or VLM) endpoint with its cache. */
export interface LlmSource {
  client: ChatClient;
  cache: AnswerCache;
  /** Rounds of asking again when an answer passes the schema but fails the strategy's own checks (default 2). */
  validationRetries?: number;
}

export interface AskResult<T> {
  value: T;
  model: string;
  cached: boolean;
}

/**
 * Asks for a JSON answer matching `schema` that also passes `validate`
 * (which returns a reason when the answer is unusable). Invalid answers are
 * asked again with the reason fed back; after the retries the call throws
 * E_BACKEND with the last reason. Valid answers are cached under a hash of
 * the model, schema name and messages.
 */
export async function askJson<S extends z.ZodType>(
  llm: LlmSource,
  messages: ChatMessage[],
  schema: S,
  name: string,
  validate: (value: z.infer<S>) => string | null = () => null,
): Promise<AskResult<z.infer<S>>> {
  const key = sha256(JSON.stringify([llm.client.model, name, messages])).toString('hex');
  if (llm.cache.has(key)) {
    const value = llm.cache.get(key) as z.infer<S>;
    const checked = schema.safeParse(value);
    if (checked.success && validate(checked.data) === null) return { value: checked.data, model: llm.client.model, cached: true };
  }
  const rounds = (llm.validationRetries ?? 2) + 1;
  let conversation = messages;
  let reason = '';
  for (let round = 0; round < rounds; round++) {
    const r = await llm.client.completeJson(conversation, schema, { name });
    const problem = validate(r.value);
    if (problem === null) {
      await llm.cache.put(key, r.value);
      return { value: r.value, model: r.model ?? llm.client.model, cached: false };
    }
    reason = problem;
    conversation = [
      ...messages,
      { role: 'assistant', content: r.text },
      { role: 'user', content: `That answer cannot be used: ${problem}. Answer again with corrected JSON only.` },
    ];
  }
  throw new GenaugError('E_BACKEND', `${llm.client.url} (model ${llm.client.model}): the answers stayed invalid after ${rounds} tries: ${reason}`);
}

/** Runs `task` over items with at most `concurrency` at once; results keep the items' order. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Wraps a mapLimit task so that `onProgress(done, total)` hears each item finish (failed ones too). */
export function withProgress<T, R>(
  total: number,
  onProgress: ((done: number, total: number) => void) | undefined,
  task: (item: T, index: number) => Promise<R>,
): (item: T, index: number) => Promise<R> {
  let done = 0;
  return async (item, index) => {
    try {
      return await task(item, index);
    } finally {
      onProgress?.(++done, total);
    }
  };
}

/** The message of an error, for a failure record. */
export function reasonOf(e: unknown): string {
  return e instanceof GenaugError ? `[${e.code}] ${e.message}` : (e as Error)?.message ?? String(e);
}
