/**
 * Append-only JSON lines files (journals, caches, caption stores) that a kill
 * may leave with a half-written last line. Appending after such a line would
 * glue the next record onto it and lose both; so on open the torn tail is cut
 * off (back to the last '\n') before anything is appended. A last line that
 * is a whole JSON object and only lacks its '\n' is kept and completed.
 */
import { existsSync } from 'node:fs';
import { appendFile, open, readFile } from 'node:fs/promises';

import { GenaugError, ioError } from '../native/errors.js';
import { readTextFile, writeFileAtomic } from '../io/atomic.js';

function isJsonObject(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

/**
 * Reads `path` ('' when it does not exist). When the file does not end with
 * '\n', its last line is completed with one if it is a whole JSON object, and
 * cut off (the file truncated after its last '\n') otherwise. `what` names
 * the file in errors.
 */
export async function readAppendLog(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw ioError(`${what} ${path}`, path, 'read it', e);
  }
  if (text.length && !text.endsWith('\n')) {
    const keep = text.slice(0, text.lastIndexOf('\n') + 1);
    if (isJsonObject(text.slice(keep.length))) {
      try {
        await appendFile(path, '\n');
      } catch (e) {
        throw ioError(`${what} ${path}`, path, 'end its last line', e);
      }
      return `${text}\n`;
    }
    try {
      const fh = await open(path, 'r+');
      try {
        await fh.truncate(Buffer.byteLength(keep));
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw ioError(`${what} ${path}`, path, 'cut its torn last line', e);
    }
    text = keep;
  }
  return text;
}

/**
 * A journal read as a map: each whole JSON object line under the key `keyOf`
 * gives it (undefined: the line is ignored), later lines winning. The torn
 * tail a kill may leave is handled as readAppendLog does, so appending after
 * this is safe; a line that still fails to parse is skipped (that item is
 * simply done again).
 */
export async function readJournalMap<T>(path: string, what: string, keyOf: (line: T) => string | undefined): Promise<Map<string, T>> {
  const done = new Map<string, T>();
  for (const line of (await readAppendLog(path, what)).split('\n')) {
    if (!line.trim()) continue;
    let j: T;
    try {
      j = JSON.parse(line) as T;
    } catch {
      continue;
    }
    if (j === null || typeof j !== 'object') continue;
    const key = keyOf(j);
    if (key !== undefined) done.set(key, j);
  }
  return done;
}

/**
 * A JSON lines input the user gives (a manifest, an index, a plan-derived
 * table): every non-blank line must be a JSON object. Returns each with its
 * 1-based line number, for messages about its fields. E_IO when the file
 * cannot be read, E_FORMAT naming `path:line` for a line that is not an object.
 */
export async function readJsonObjects(path: string, what = 'the file'): Promise<Array<{ line: number; value: Record<string, unknown> }>> {
  // Only a regular file (a FIFO or /dev/zero is E_IO, not a wait or an endless read); a byte-order mark is dropped.
  const text = await readTextFile(path, `${what} ${path}`);
  const out: Array<{ line: number; value: Record<string, unknown> }> = [];
  text.split(/\r?\n/).forEach((s, i) => {
    if (!s.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new GenaugError('E_FORMAT', `${path}:${i + 1}: not a JSON line (${(e as Error).message})`, { path, line: i + 1 });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new GenaugError('E_FORMAT', `${path}:${i + 1}: each line must be a JSON object`, { path, line: i + 1 });
    }
    out.push({ line: i + 1, value: v as Record<string, unknown> });
  });
  return out;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Writes a JSON document (one-space indent, final newline) atomically. */
export const writeJson = (path: string, v: unknown) => writeFileAtomic(path, utf8(JSON.stringify(v, null, 1) + '\n'));

/** Writes JSON lines atomically (a newline after each line). */
export const writeJsonl = (path: string, rows: unknown[]) => writeFileAtomic(path, utf8(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '')));

/** Reads a JSON document. */
export const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

/** Reads JSON lines a run wrote itself ([] when the file is missing); a torn last line (an interrupted append) is ignored. */
export async function readJsonl<T>(path: string): Promise<T[]> {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      /* torn line */
    }
  }
  return out;
}
