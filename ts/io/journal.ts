/**
 * A journal for long runs that work in chunks: each finished chunk is written
 * atomically into a folder beside the output, so a run that is killed resumes
 * at the first missing chunk, and nothing is computed or written twice. The
 * folder's journal.json records what the run was for (its inputs' sizes and
 * modification times, and its parameters); a folder left by a run with other
 * inputs or parameters is discarded, never mixed in.
 */
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { GenaugError, ioError } from '../native/errors.js';
import { writeFileAtomic } from './atomic.js';

export interface JournalIdentity {
  /** Files the run reads; their size and modification time are recorded. */
  inputs: string[];
  /** Everything else that decides the output (k, normalisation, chunk size, ...). */
  params: Record<string, unknown>;
}

async function describe(identity: JournalIdentity) {
  const inputs = [];
  for (const p of identity.inputs) {
    try {
      const s = await stat(p);
      inputs.push({ path: resolve(p), size: s.size, mtimeMs: s.mtimeMs });
    } catch (e) {
      throw ioError(p, p, 'could not stat it', e);
    }
  }
  return { version: 1, inputs, params: identity.params };
}

export class ChunkJournal {
  private constructor(
    readonly dir: string,
    private readonly done: Set<string>,
    /** Chunks found finished from an earlier run. */
    readonly resumed: number,
  ) {}

  /**
   * Opens (or creates) the journal folder `dir` for a run. `onNote` hears when
   * an earlier run is resumed or a stale folder is discarded.
   */
  static async open(dir: string, identity: JournalIdentity, onNote?: (note: string) => void): Promise<ChunkJournal> {
    const want = JSON.stringify(await describe(identity));
    const journalPath = join(dir, 'journal.json');
    let existing: string | undefined;
    try {
      existing = await readFile(journalPath, 'utf8');
    } catch (e) {
      // No journal yet is the normal start; anything else (a file where the
      // folder should be, no permission) is reported, never cleared away.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(journalPath, journalPath, 'could not read the run journal', e);
      existing = undefined;
    }
    const done = new Set<string>();
    if (existing !== undefined && existing.trim() === want) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        throw ioError(dir, dir, 'could not list the journal folder', e);
      }
      for (const name of names) if (name.endsWith('.chunk')) done.add(name.slice(0, -'.chunk'.length));
      if (done.size > 0) onNote?.(`resuming: ${done.size} finished chunk(s) found in ${dir}`);
      return new ChunkJournal(dir, done, done.size);
    }
    if (existing !== undefined) onNote?.(`discarding ${dir}: it belongs to a run with other inputs or parameters`);
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (e) {
      throw ioError(dir, dir, 'could not clear the stale journal folder', e);
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw ioError(dir, dir, 'could not create the journal folder', e);
    }
    await writeFileAtomic(journalPath, new TextEncoder().encode(want + '\n'));
    return new ChunkJournal(dir, done, 0);
  }

  has(key: string): boolean {
    return this.done.has(key);
  }

  /** Records a finished chunk (atomically: it exists whole or not at all). */
  async put(key: string, parts: readonly Uint8Array[]): Promise<void> {
    if (!/^[A-Za-z0-9_-]+$/.test(key)) throw new GenaugError('E_INTERNAL', `journal key '${key}' has characters a file name should not`);
    await writeFileAtomic(join(this.dir, `${key}.chunk`), parts);
    this.done.add(key);
  }

  /** Reads a finished chunk; it must be exactly `bytes` long. */
  async get(key: string, bytes: number): Promise<Uint8Array> {
    const path = join(this.dir, `${key}.chunk`);
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (e) {
      throw ioError(path, path, 'could not read a journal chunk', e);
    }
    if (data.length !== bytes) {
      throw new GenaugError('E_FORMAT', `${path}: journal chunk has ${data.length} bytes, expected ${bytes}; delete ${this.dir} and run again`);
    }
    // A fresh, aligned copy so typed-array views of any element size work.
    const out = new Uint8Array(new ArrayBuffer(bytes));
    out.set(data);
    return out;
  }

  /** Removes the folder once the final outputs are written. */
  async remove(): Promise<void> {
    try {
      await rm(this.dir, { recursive: true, force: true });
    } catch (e) {
      throw ioError(this.dir, this.dir, 'could not remove the finished journal folder', e);
    }
  }
}
