/**
 * `genaug plan` as a library call: reads the dataset (and priors), runs one
 * strategy, and writes the plan (JSON lines, one PlanJob per line, atomically)
 * with its failures beside it. Same options and same cached answers give the
 * same plan bytes.
 */
import { dirname, resolve } from 'node:path';

import { readTextFile, writeFileAtomic } from '../io/atomic.js';
import { readCoco, type CocoIndex } from '../io/coco.js';
import { ChatClient, type ChatClientOptions } from '../llm/chat.js';
import type { ImageTextEmbedder } from '../models/types.js';
import { GenaugError } from '../native/errors.js';
import { extraCategories, meaningsOf, planAmbiguity, type Resolution } from './ambiguity.js';
import { CaptionStore, planCaptions } from './captions.js';
import { AnswerCache, dedupeJobs, planClasses, type JobDefaults, type LlmSource, type PlanClass, type PlanFailure, type Strategy, type StrategyResult } from './core.js';
import { planDomains } from './domains.js';
import type { PlanJob } from './job.js';
import { objectSets, type ObjectSet, type PriorsFile } from './priors.js';
import { planLlmPrompts, planTemplates, type DiversityMode, type Meanings } from './prompts.js';
import { planScenes } from './scenes.js';
import { packagedWordNet, type SimilarityMeasure, type WordNet } from './wordnet.js';
import type { FrequencyGroup } from './priors.js';

/** An OpenAI-compatible endpoint: the chat client's options, with the base URL as `url`. */
export type EndpointOptions = { url: string } & Pick<ChatClientOptions, 'model' | 'apiKey' | 'timeoutMs' | 'retries' | 'backoffMs' | 'temperature'>;

export interface PlanOptions {
  coco: string | CocoIndex;
  out: string;
  strategy: Strategy;
  /** priors.json from `genaug priors` (object sets for scenes); computed from the dataset when absent. */
  priors?: string;
  classes?: string[];
  frequencies?: FrequencyGroup[];
  seed?: number;
  candidates?: number;
  width?: number;
  height?: number;
  negativePrompt?: string;
  /** llm: prompts per class and mode (default 8); caption/alia/ambiguity: real images per class. */
  perClass?: number;
  modes?: DiversityMode[];
  scenes?: number;
  rebalance?: boolean;
  imageRoot?: string;
  /** Caption store (default `<out>.captions.jsonl`) and extra caption files (COCO captions JSON or JSON lines). */
  captions?: string;
  captionSources?: string[];
  domains?: string[];
  strength?: number;
  aliaTemplate?: string;
  domainPrefix?: string;
  /** meanings.json from an ambiguity plan: the meaning is appended to template/divergen/llm prompts. */
  meanings?: string;
  embedder?: ImageTextEmbedder;
  imagesPerClass?: number;
  llmCandidates?: number;
  extraCategories?: number;
  extraMeasure?: SimilarityMeasure;
  extraMaxSimilarity?: number;
  extraCandidates?: string[];
  llm?: EndpointOptions;
  vlm?: EndpointOptions;
  /** Answer cache (default `<out>.cache.jsonl`); null: none. */
  cache?: string | null;
  concurrency?: number;
  wordnet?: WordNet;
  onNote?: (note: string) => void;
  /** Hears progress: images captioned (caption, alia), classes done (llm), scenes done (scene). */
  onProgress?: (done: number, total: number) => void;
}

export interface PlanSummary {
  out: string;
  jobs: number;
  failures: number;
  failuresPath: string;
  /** Side files written (meanings, domains). */
  written: string[];
  classes: number;
  extraClasses: number;
}

const lines = (rows: unknown[]) => new TextEncoder().encode(rows.map((r) => JSON.stringify(r) + '\n').join(''));

async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path, `${what} ${path}`);
  } catch (e) {
    throw new GenaugError('E_IO', `could not read ${what} ${path}: ${(e as Error).message}`, { path });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GenaugError('E_FORMAT', `${what} ${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
}

/** Reads a meanings.json written by an ambiguity plan. */
export async function readMeanings(path: string): Promise<Meanings> {
  const doc = (await readJsonFile(path, 'the meanings file')) as { meanings?: unknown };
  if (!Array.isArray(doc.meanings)) throw new GenaugError('E_FORMAT', `${path}: expected {"meanings": [{"class", "meaning", "method"}, ...]}`, { path });
  // A malformed row is named, not dropped: a meanings file whose rows were all skipped would plan without a word.
  const rows = (doc.meanings as unknown[]).map((r, i): Resolution => {
    const x = (r ?? {}) as Partial<Resolution>;
    if (typeof x.class === 'string' && (typeof x.meaning === 'string' || x.meaning === null) && typeof x.method === 'string') return x as Resolution;
    throw new GenaugError('E_FORMAT', `${path}: meanings[${i}] needs "class" and "method" strings and a "meaning" string or null`, { path, index: i });
  });
  return meaningsOf(rows);
}

function client(e: EndpointOptions, envKey: string): ChatClient {
  return new ChatClient({
    baseUrl: e.url,
    model: e.model,
    ...(e.apiKey ?? process.env[envKey] ? { apiKey: (e.apiKey ?? process.env[envKey])! } : {}),
    ...(e.timeoutMs !== undefined ? { timeoutMs: e.timeoutMs } : {}),
    ...(e.retries !== undefined ? { retries: e.retries } : {}),
    ...(e.backoffMs !== undefined ? { backoffMs: e.backoffMs } : {}),
    ...(e.temperature !== undefined ? { temperature: e.temperature } : {}),
  });
}

/** Runs one plan strategy and writes the plan, its failures and side files. */
export async function plan(o: PlanOptions): Promise<PlanSummary> {
  const coco = typeof o.coco === 'string' ? await readCoco(o.coco, { polygons: 'packed' }) : o.coco;
  if (typeof o.coco === 'string' && coco.problems.length) o.onNote?.(`skipped ${coco.problems.length} unusable annotations in ${coco.source}`);
  const d: JobDefaults = {
    negativePrompt: o.negativePrompt ?? '',
    candidates: o.candidates ?? 1,
    width: o.width ?? 512,
    height: o.height ?? 512,
    seed: o.seed ?? 0,
  };
  const cache = o.cache === null ? AnswerCache.memory() : await AnswerCache.open(o.cache ?? `${o.out}.cache.jsonl`);
  const llm: LlmSource | undefined = o.llm ? { client: client(o.llm, 'GENAUG_LLM_API_KEY'), cache } : undefined;
  const vlm: LlmSource | undefined = o.vlm ? { client: client(o.vlm, 'GENAUG_VLM_API_KEY'), cache } : undefined;
  const wordnet = o.wordnet ?? packagedWordNet();
  const meanings = o.meanings ? await readMeanings(o.meanings) : undefined;

  let classes: PlanClass[] = planClasses(coco, { ...(o.classes ? { names: o.classes } : {}), ...(o.frequencies ? { frequencies: o.frequencies } : {}) });
  let extra: PlanClass[] = [];
  if (o.extraCategories && ['template', 'divergen', 'llm', 'ambiguity'].includes(o.strategy)) {
    extra = extraCategories(classes, wordnet, {
      count: o.extraCategories,
      ...(o.extraMeasure ? { measure: o.extraMeasure } : {}),
      ...(o.extraMaxSimilarity !== undefined ? { maxSimilarity: o.extraMaxSimilarity } : {}),
      ...(o.extraCandidates ? { candidates: o.extraCandidates } : {}),
    });
    if (extra.length < o.extraCategories) o.onNote?.(`found ${extra.length} of the ${o.extraCategories} extra categories asked for`);
    classes = [...classes, ...extra];
  }
  const written: string[] = [];
  const captionStore = async () => CaptionStore.open(o.captions ?? `${o.out}.captions.jsonl`, o.captionSources ?? []);

  let result: StrategyResult;
  switch (o.strategy) {
    case 'template':
    case 'divergen':
      result = planTemplates(classes, { style: o.strategy === 'template' ? 'xpaste' : 'divergen', wordnet, ...(meanings ? { meanings } : {}) }, d);
      break;
    case 'llm':
      result = await planLlmPrompts(
        classes,
        {
          modes: o.modes ?? ['divergen'],
          perClass: o.perClass ?? 8,
          ...(llm ? { llm } : {}),
          wordnet,
          ...(meanings ? { meanings } : {}),
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
          ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        },
        d,
      );
      break;
    case 'scene': {
      let sets: ObjectSet[];
      if (o.priors) {
        const p = (await readJsonFile(o.priors, 'the priors file')) as Partial<PriorsFile>;
        if (p.version !== 1 || !Array.isArray(p.sets)) throw new GenaugError('E_FORMAT', `${o.priors} is not a genaug priors file (version 1 with "sets")`, { path: o.priors });
        sets = p.sets;
      } else {
        sets = objectSets(coco);
      }
      const wanted = o.classes || o.frequencies ? new Set(classes.map((c) => c.name)) : null;
      if (wanted) sets = sets.filter((s) => s.objects.some((n) => wanted.has(n)));
      result = await planScenes(
        coco,
        sets,
        { count: o.scenes ?? 100, rebalance: o.rebalance ?? true, ...(llm ? { llm } : {}), ...(o.concurrency ? { concurrency: o.concurrency } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) },
        d,
      );
      break;
    }
    case 'caption':
      result = await planCaptions(
        coco,
        classes,
        {
          store: await captionStore(),
          ...(vlm ? { vlm } : {}),
          ...(o.imageRoot ? { imageRoot: o.imageRoot } : {}),
          ...(o.perClass !== undefined ? { perClass: o.perClass } : {}),
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
          ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        },
        d,
      );
      break;
    case 'alia':
      result = await planDomains(
        coco,
        classes,
        {
          store: await captionStore(),
          ...(vlm ? { vlm } : {}),
          ...(llm ? { llm } : {}),
          ...(o.domains ? { settings: o.domains } : {}),
          ...(o.imageRoot ? { imageRoot: o.imageRoot } : {}),
          ...(o.perClass !== undefined ? { perClass: o.perClass } : {}),
          ...(o.strength !== undefined ? { strength: o.strength } : {}),
          ...(o.aliaTemplate ? { template: o.aliaTemplate } : {}),
          ...(o.domainPrefix ? { prefix: o.domainPrefix } : {}),
          planDir: dirname(resolve(o.out)),
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
          ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        },
        d,
      );
      if (result.notes?.domains) {
        await writeFileAtomic(`${o.out}.domains.json`, new TextEncoder().encode(JSON.stringify({ version: 1, ...(result.notes.domains as object) }, null, 2) + '\n'));
        written.push(`${o.out}.domains.json`);
      }
      break;
    case 'ambiguity':
      result = await planAmbiguity(
        coco,
        classes,
        {
          wordnet,
          ...(llm ? { llm } : {}),
          ...(o.embedder ? { embedder: o.embedder } : {}),
          ...(o.imageRoot ? { imageRoot: o.imageRoot } : {}),
          ...(o.imagesPerClass !== undefined ? { imagesPerClass: o.imagesPerClass } : {}),
          ...(o.llmCandidates !== undefined ? { llmCount: o.llmCandidates } : {}),
          seed: d.seed,
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        },
        d,
      );
      await writeFileAtomic(`${o.out}.meanings.json`, new TextEncoder().encode(JSON.stringify({ version: 1, meanings: result.notes?.meanings ?? [] }, null, 2) + '\n'));
      written.push(`${o.out}.meanings.json`);
      break;
    default:
      throw new GenaugError('E_ARGUMENT', `unknown strategy ${JSON.stringify(o.strategy)}`);
  }
  const jobs: PlanJob[] = dedupeJobs(result.jobs);
  const failures: PlanFailure[] = result.failures;
  await writeFileAtomic(o.out, lines(jobs));
  const failuresPath = `${o.out}.failures.jsonl`;
  await writeFileAtomic(failuresPath, lines(failures));
  return { out: o.out, jobs: jobs.length, failures: failures.length, failuresPath, written, classes: classes.length - extra.length, extraClasses: extra.length };
}
