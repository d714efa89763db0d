/**
 * The CLIP byte-pair-encoding tokenizer, read from a Hugging Face
 * `tokenizer.json` (the file every CLIP export ships; ../shared/fixtures/
 * clip-tokenizer/ holds OpenAI CLIP's). It reproduces the fast tokenizer's
 * pipeline exactly:
 *
 *  1. added tokens (`<|startoftext|>`, `<|endoftext|>`) written literally in the
 *     text are split out first and map to their ids;
 *  2. normalisation: Unicode NFC, every run of white space to one space,
 *     lower case;
 *  3. pre-tokenisation with CLIP's pattern (contractions 's 't 're 've 'm 'll
 *     'd, runs of letters, single digits, runs of other non-space characters;
 *     everything else, i.e. white space, is dropped);
 *  4. each piece as UTF-8 bytes mapped to printable characters (GPT-2's
 *     byte-level table), the last one carrying the `</w>` end-of-word suffix;
 *  5. BPE: repeatedly merge the adjacent pair with the lowest merge rank;
 *  6. `<|startoftext|>` … `<|endoftext|>` around the ids, truncated so that the
 *     whole fits the context length (77: bos, 75 tokens, eos), padded with the
 *     pad token (tokenizer_config.json's `pad_token`, else `<|endoftext|>`) and
 *     an attention mask of 1 for real tokens and 0 for padding.
 */
import { readFile } from 'node:fs/promises';

import { GenaugError } from '../native/errors.js';
import { checkInt } from '../native/validate.js';

/** CLIP's context length. */
export const CLIP_CONTEXT_LENGTH = 77;

/** GPT-2's reversible byte → printable character table (entry b: the character byte b is written as). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i] as number)));
  return table;
}

const BYTE_CHARS = bytesToUnicode();

// Unicode White_Space (what \s means in the Rust regex engine the fast tokenizer uses).
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WS}]+`, 'gu');
/** CLIP's pre-tokenizer pattern; the text between matches (white space) is removed. */
const PIECE = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WS}\\p{L}\\p{N}]+`, 'gu');

export interface TokenizerConfig {
  /** tokenizer_config.json's fields that matter here. */
  pad_token?: string | { content: string };
  model_max_length?: number;
  do_lower_case?: boolean;
}

export interface EncodeOptions {
  /** Total length with bos/eos (default 77). Longer texts are truncated, keeping eos. */
  contextLength?: number;
  /** 'max_length' pads every row to contextLength (default); 'longest' to the longest row of the batch. */
  padding?: 'max_length' | 'longest';
}

export interface EncodedBatch {
  /** Row-major rows × length ids. */
  ids: Int32Array;
  /** 1 for real tokens (bos, text, eos), 0 for padding. */
  attentionMask: Int32Array;
  rows: number;
  length: number;
  /** Texts whose tokens did not fit and were cut (their indices). */
  truncated: number[];
}

interface TokenizerJson {
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  normalizer?: unknown;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: Array<string | [string, string]>;
    end_of_word_suffix?: string | null;
    unk_token?: string | null;
  };
}

function tokenContent(t: string | { content: string } | undefined): string | undefined {
  if (t === undefined || t === null) return undefined;
  return typeof t === 'string' ? t : t.content;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly vocabSize: number;
  /** Where the tokenizer was read from (for messages). */
  readonly source: string;
  private readonly vocab: Map<string, number>;
  private readonly ranks: Map<string, number>;
  private readonly suffix: string;
  private readonly added: Array<{ content: string; id: number }>;
  private readonly unkId: number | undefined;
  private readonly cache = new Map<string, number[]>();

  private constructor(json: TokenizerJson, config: TokenizerConfig, source: string) {
    this.source = source;
    const bad = (why: string): never => {
      throw new GenaugError('E_FORMAT', `${source}: not a CLIP BPE tokenizer.json: ${why}`, { path: source });
    };
    const model = json.model;
    if (!model || typeof model !== 'object') bad('no "model" object');
    const m = model as NonNullable<TokenizerJson['model']>;
    if (m.type !== undefined && m.type !== 'BPE') bad(`model.type is '${String(m.type)}', expected 'BPE'`);
    if (!m.vocab || typeof m.vocab !== 'object') bad('no model.vocab');
    if (!Array.isArray(m.merges)) bad('no model.merges list');
    this.vocab = new Map(Object.entries(m.vocab as Record<string, number>));
    this.ranks = new Map();
    (m.merges as Array<string | [string, string]>).forEach((mg, i) => {
      let a: string | undefined;
      let b: string | undefined;
      if (typeof mg === 'string') {
        const sp = mg.indexOf(' ');
        if (sp > 0) [a, b] = [mg.slice(0, sp), mg.slice(sp + 1)];
      } else if (Array.isArray(mg) && mg.length === 2) [a, b] = mg;
      if (typeof a !== 'string' || typeof b !== 'string') bad(`merge ${i} is neither "a b" nor ["a", "b"]`);
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
    this.suffix = m.end_of_word_suffix ?? '';
    this.added = (json.added_tokens ?? []).map((t) => ({ content: t.content, id: t.id }));
    for (const t of this.added) this.vocab.set(t.content, t.id);
    const idOf = (tok: string, what: string): number => {
      const id = this.vocab.get(tok);
      if (id === undefined) bad(`the ${what} token '${tok}' is not in the vocabulary`);
      return id as number;
    };
    this.bosId = idOf('<|startoftext|>', 'start');
    this.eosId = idOf('<|endoftext|>', 'end');
    const pad = tokenContent(config.pad_token);
    this.padId = pad !== undefined ? idOf(pad, 'pad') : this.eosId;
    this.unkId = m.unk_token ? this.vocab.get(m.unk_token) : undefined;
    this.vocabSize = Math.max(...this.vocab.values()) + 1;
    // Longest first, so that overlapping added tokens split the way HF's trie does.
    this.added.sort((x, y) => y.content.length - x.content.length);
  }

  /** Builds a tokenizer from parsed tokenizer.json (and tokenizer_config.json) objects. */
  static fromJSON(json: unknown, config: TokenizerConfig = {}, source = 'tokenizer.json'): ClipTokenizer {
    if (typeof json !== 'object' || json === null) throw new GenaugError('E_FORMAT', `${source}: expected a JSON object`, { path: source });
    return new ClipTokenizer(json as TokenizerJson, config ?? {}, source);
  }

  /**
   * Reads `tokenizer.json`, and `configPath` (tokenizer_config.json) when
   * given; a missing file is E_MODEL naming it, bad JSON E_FORMAT.
   */
  static async fromFile(path: string, configPath?: string): Promise<ClipTokenizer> {
    const json = await readJson(path, 'tokenizer');
    const config = configPath ? ((await readJson(configPath, 'tokenizer config', true)) as TokenizerConfig | undefined) : undefined;
    return ClipTokenizer.fromJSON(json, config ?? {}, path);
  }

  /** NFC, white-space runs to one space, lower case (the tokenizer.json normaliser). */
  static normalize(text: string): string {
    return text.normalize('NFC').replace(WHITESPACE_RUN, ' ').toLowerCase();
  }

  private bpe(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const bytes = new TextEncoder().encode(piece);
    const word: string[] = [];
    for (const b of bytes) word.push(BYTE_CHARS[b] as string);
    if (word.length > 0) word[word.length - 1] += this.suffix;
    // Merge the lowest-ranked adjacent pair (leftmost on ties) until none is left.
    while (word.length > 1) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      const a = word[at] as string;
      const b = word[at + 1] as string;
      // Merge every non-overlapping occurrence of this pair, left to right.
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i += 2;
        } else {
          next.push(word[i] as string);
          i++;
        }
      }
      word.length = 0;
      word.push(...next);
    }
    const ids: number[] = [];
    for (const tok of word) {
      const id = this.vocab.get(tok);
      if (id !== undefined) ids.push(id);
      else if (this.unkId !== undefined) ids.push(this.unkId);
      else throw new GenaugError('E_FORMAT', `${this.source}: token '${tok}' is not in the vocabulary and there is no unk token`);
    }
    if (this.cache.size > 50000) this.cache.clear();
    this.cache.set(piece, ids);
    return ids;
  }

  private encodePlain(text: string, out: number[]): void {
    const norm = ClipTokenizer.normalize(text);
    for (const m of norm.matchAll(PIECE)) out.push(...this.bpe(m[0]));
  }

  /** The ids of one text between bos and eos, neither truncated nor padded. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new GenaugError('E_TYPE', `a text must be a string, got ${typeof text}`);
    const out: number[] = [this.bosId];
    let rest = text;
    while (rest.length > 0) {
      let first = -1;
      let tok: { content: string; id: number } | undefined;
      for (const t of this.added) {
        const i = rest.indexOf(t.content);
        if (i >= 0 && (first < 0 || i < first)) {
          first = i;
          tok = t;
        }
      }
      if (!tok) {
        this.encodePlain(rest, out);
        break;
      }
      this.encodePlain(rest.slice(0, first), out);
      out.push(tok.id);
      rest = rest.slice(first + tok.content.length);
    }
    out.push(this.eosId);
    return out;
  }

  /** Token strings of `ids` (for debugging and tests). */
  tokens(ids: readonly number[]): string[] {
    const inv = new Map<number, string>();
    for (const [k, v] of this.vocab) inv.set(v, k);
    return ids.map((i) => inv.get(i) ?? `<${i}>`);
  }

  /** Encodes texts into padded rows of ids with an attention mask. */
  encodeBatch(texts: readonly string[], opts: EncodeOptions = {}): EncodedBatch {
    if (!Array.isArray(texts)) throw new GenaugError('E_TYPE', 'texts must be an array of strings');
    const ctx = opts.contextLength ?? CLIP_CONTEXT_LENGTH;
    checkInt(ctx, 'contextLength', 2, 1 << 16);
    const padding = opts.padding ?? 'max_length';
    if (padding !== 'max_length' && padding !== 'longest') {
      throw new GenaugError('E_RANGE', `padding must be 'max_length' or 'longest', got ${JSON.stringify(padding)}`);
    }
    const truncated: number[] = [];
    const rowsIds = texts.map((t, i) => {
      if (typeof t !== 'string') throw new GenaugError('E_TYPE', `texts[${i}] must be a string, got ${typeof t}`);
      const ids = this.encode(t);
      if (ids.length > ctx) {
        truncated.push(i);
        return [...ids.slice(0, ctx - 1), this.eosId];
      }
      return ids;
    });
    const length = padding === 'max_length' ? ctx : Math.max(2, ...rowsIds.map((r) => r.length));
    const ids = new Int32Array(texts.length * length).fill(this.padId);
    const attentionMask = new Int32Array(texts.length * length);
    rowsIds.forEach((r, i) => {
      ids.set(r, i * length);
      attentionMask.fill(1, i * length, i * length + r.length);
    });
    return { ids, attentionMask, rows: texts.length, length, truncated };
  }
}

async function readJson(path: string, what: string, optional = false): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (optional && code === 'ENOENT') return undefined;
    throw new GenaugError('E_MODEL', `${what} file ${path} ${code === 'ENOENT' ? 'does not exist' : `could not be read: ${(e as Error).message}`}`, { path }, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GenaugError('E_FORMAT', `${what} file ${path} is not valid JSON: ${(e as Error).message}`, { path }, { cause: e });
  }
}

export { readJson as readModelJson };
