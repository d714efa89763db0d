/**
 * The scores table: one row per sample id, one column per score. JSONL
 * (`{"id": ..., "clip_score": ...}` per line) or CSV (header `id,...`), chosen
 * by the file extension. Every score command merges its columns into the
 * table: existing rows keep their other columns, new ids are appended, and the
 * file is rewritten atomically.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';

import { readTextFile, writeFileAtomic } from '../io/atomic.js';
import { GenaugError, ioError } from '../native/errors.js';

export type ScoreValue = number | string | boolean | null;

/** A score as tables store it: rounded to 1e-6 (NaN and infinities kept as they are). */
export const round6 = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : v);
export type ScoreColumns = Record<string, ScoreValue>;

/** Rows by id, in file order (Map keeps insertion order). */
export type ScoreTable = Map<string, ScoreColumns>;

const isCsv = (path: string) => extname(path).toLowerCase() === '.csv';

function csvCell(v: ScoreValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Parses CSV text (RFC 4180): records end at CRLF or LF outside quotes; a
 * quoted field may hold commas, line breaks and doubled quotes ("" = ").
 * Returns each record's cells and the 1-based line it starts on. An
 * unterminated quote is E_FORMAT.
 */
export function parseCsv(text: string, path = 'CSV'): Array<{ cells: string[]; line: number }> {
  const records: Array<{ cells: string[]; line: number }> = [];
  let cells: string[] = [];
  let cur = '';
  let q = false;
  let line = 1;
  let start = 1;
  let quoteLine = 1;
  const endRecord = () => {
    cells.push(cur);
    // A blank line is no record.
    if (!(cells.length === 1 && cells[0]!.trim() === '')) records.push({ cells, line: start });
    cells = [];
    cur = '';
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (q) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cur += '"';
          i++;
        } else q = false;
      } else {
        if (ch === '\n') line++;
        cur += ch;
      }
    } else if (ch === '"') {
      q = true;
      quoteLine = line;
    } else if (ch === ',') {
      cells.push(cur);
      cur = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else cur += ch;
  }
  if (q) throw new GenaugError('E_FORMAT', `${path}:${quoteLine}: a quoted field is not closed before the end of the file`, { path, line: quoteLine });
  if (cur !== '' || cells.length > 0) endRecord();
  return records;
}

function csvValue(s: string): ScoreValue {
  if (s === '') return null;
  if (s === 'NaN') return Number.NaN;
  if (s === 'true' || s === 'false') return s === 'true';
  const n = Number(s);
  return Number.isFinite(n) || s === 'Infinity' || s === '-Infinity' ? n : s;
}

/** Reads a scores table (JSONL or CSV); a missing file is an empty table when `allowMissing`. */
export async function readScores(path: string, options: { allowMissing?: boolean } = {}): Promise<ScoreTable> {
  if (!existsSync(path)) {
    if (options.allowMissing) return new Map();
    throw new GenaugError('E_IO', `the scores table ${path} does not exist`, { path });
  }
  const text = await readTextFile(path);
  const table: ScoreTable = new Map();
  if (isCsv(path)) {
    const records = parseCsv(text, path);
    const header = records[0]?.cells ?? [''];
    if (header[0] !== 'id') throw new GenaugError('E_FORMAT', `${path}: a scores CSV must start with an "id" column, got "${header[0] ?? ''}"`);
    for (const { cells, line } of records.slice(1)) {
      if (cells.length !== header.length) throw new GenaugError('E_FORMAT', `${path}:${line} has ${cells.length} cells, the header has ${header.length}`, { path, line });
      const row: ScoreColumns = {};
      header.slice(1).forEach((h, c) => {
        row[h] = csvValue(cells[c + 1]!);
      });
      table.set(cells[0]!, row);
    }
    return table;
  }
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new GenaugError('E_FORMAT', `${path}:${i + 1} is not JSON: ${(e as Error).message}`, { path, line: i + 1 });
    }
    const o = obj as Record<string, ScoreValue>;
    if (typeof o !== 'object' || o === null || typeof o.id !== 'string' || !o.id) {
      throw new GenaugError('E_FORMAT', `${path}:${i + 1} needs a string "id"`, { path, line: i + 1 });
    }
    const { id, ...rest } = o;
    table.set(id as string, { ...(table.get(id as string) ?? {}), ...rest });
  });
  return table;
}

/** Serialises a table (columns in first-seen order). NaN is written as null in JSONL. */
export function formatScores(table: ScoreTable, csv: boolean): string {
  if (!csv) {
    let s = '';
    for (const [id, row] of table) s += JSON.stringify({ id, ...row }, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n';
    return s;
  }
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const row of table.values()) for (const c of Object.keys(row)) if (!seen.has(c)) (seen.add(c), cols.push(c));
  let s = ['id', ...cols].map(csvCell).join(',') + '\n';
  for (const [id, row] of table) s += [csvCell(id), ...cols.map((c) => csvCell(row[c] ?? null))].join(',') + '\n';
  return s;
}

/** Merges `columns` (by id) into the table at `path` (created when missing) and writes it atomically. */
export async function mergeScores(path: string, columns: Map<string, ScoreColumns>): Promise<ScoreTable> {
  const table = await readScores(path, { allowMissing: true });
  for (const [id, cols] of columns) table.set(id, { ...(table.get(id) ?? {}), ...cols });
  await mkdir(dirname(resolve(path)), { recursive: true });
  await writeFileAtomic(path, new TextEncoder().encode(formatScores(table, isCsv(path))));
  return table;
}

/**
 * A per-sample journal for long score runs (append-only JSONL): the first line
 * is `{"settings": ...}`, every later line `{"key": ..., "value": ...}` for one
 * finished sample. Opening it with other settings (other inputs, mode or
 * model) starts it over; a last line cut short by a kill is ignored, so that
 * sample is done again. A rerun skips the keys in `done`.
 */
export interface SampleJournal<T> {
  done: Map<string, T>;
  append(key: string, value: T): Promise<void>;
}

export async function openSampleJournal<T>(path: string, settings: unknown): Promise<SampleJournal<T>> {
  const { appendFile } = await import('node:fs/promises');
  const head = JSON.stringify({ settings });
  const done = new Map<string, T>();
  let text = '';
  if (existsSync(path)) {
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw ioError(path, path, 'read it', e);
    }
  }
  const lines = text.split('\n');
  if (lines[0] === head) {
    for (const line of lines.slice(1)) {
      if (!line.trim()) continue;
      try {
        const j = JSON.parse(line) as { key?: unknown; value?: T };
        if (typeof j.key === 'string' && 'value' in j) done.set(j.key, j.value as T);
      } catch {
        // cut short by a kill: done again
      }
    }
    // Drop a partial last line so appends start on a fresh line.
    if (!text.endsWith('\n')) await writeFileAtomic(path, new TextEncoder().encode([head, ...[...done].map(([key, value]) => JSON.stringify({ key, value }))].join('\n') + '\n'));
  } else {
    await writeFileAtomic(path, new TextEncoder().encode(head + '\n'));
  }
  let chain = Promise.resolve();
  return {
    done,
    append(key, value) {
      done.set(key, value);
      // Appends in call order, one at a time.
      chain = chain.then(() => appendFile(path, JSON.stringify({ key, value }) + '\n'));
      return chain;
    },
  };
}

/** A short content hash of files (journal settings: the same paths with other contents are other inputs). */
export async function contentHash(...paths: string[]): Promise<string> {
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  for (const p of paths) {
    try {
      h.update(await readFile(p));
    } catch (e) {
      throw ioError(p, p, 'read it', e);
    }
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}
