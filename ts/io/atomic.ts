/**
 * Atomic file writes: the bytes go to a temporary file in the destination's
 * folder, are flushed to disk (fsync), and the temporary file is renamed over
 * the destination. A reader therefore sees either the old file or the whole new
 * one, never a partial write. On failure the temporary file is removed.
 *
 * Also the few helpers the ts/io readers and writers share (opening a regular
 * file, reading an exact byte range, turning Node errors into E_IO, the
 * little-endian host check).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { GenaugError, ioError } from '../native/errors.js';

/** How an unexpected argument looks, for messages: 'Float64Array', 'an array', 'null', 'string'. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/** Opens a regular file for reading; E_IO (naming `what`) when it is missing, unreadable or not a file. */
export async function openForReading(path: string, what: string = path): Promise<{ fh: FileHandle; size: number }> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new GenaugError('E_TYPE', `path must be a non-empty string, got ${typeof path === 'string' ? "''" : typeName(path)}`);
  }
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below); regular files ignore the flag.
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    throw ioError(what, path, 'open it', e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GenaugError('E_IO', `${what}: not a regular file (a device, a pipe or a folder)`, { path });
    return { fh, size: st.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw ioError(what, path, 'stat it', e);
  }
}

/**
 * The whole of a regular file (a device such as /dev/zero or a FIFO is E_IO,
 * never an endless read or a wait), at most `maxBytes` (E_LIMIT beyond).
 */
export async function readWholeFile(path: string, what: string = path, maxBytes = 2 ** 31 - 1): Promise<Buffer> {
  const { fh, size } = await openForReading(path, what);
  try {
    if (size > maxBytes) throw new GenaugError('E_LIMIT', `${what}: ${size} bytes is over the ${maxBytes}-byte limit for this file`, { path });
    const buf = Buffer.alloc(size);
    await readExactly(fh, buf, 0, what, path);
    return buf;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** A regular file as UTF-8 text, a leading byte-order mark dropped (see readWholeFile). */
export async function readTextFile(path: string, what: string = path): Promise<string> {
  const text = (await readWholeFile(path, what, 2 ** 29 - 24)).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** .npy and safetensors data are little-endian and are read into typed arrays as is. */
export function requireLittleEndianHost(format: string): void {
  if (!LITTLE_ENDIAN_HOST) {
    throw new GenaugError('E_INTERNAL', `genaug reads and writes ${format} data as little-endian and does not support big-endian hosts`);
  }
}

/** Largest single read or write handed to the OS (Linux moves at most ~2 GiB per call). */
const MAX_IO = 1 << 30;

/**
 * Reads exactly `target.byteLength` bytes at `position`. Running out of file
 * (it shrank while being read) is E_FORMAT "truncated", naming `what`.
 */
export async function readExactly(fh: FileHandle, target: Uint8Array, position: number, what: string, path: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const len = Math.min(target.byteLength - done, MAX_IO);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(target, done, len, position + done));
    } catch (e) {
      throw ioError(what, path, `read ${len} bytes at offset ${position + done}`, e);
    }
    if (bytesRead === 0) {
      throw new GenaugError(
        'E_FORMAT',
        `${what}: truncated: expected ${target.byteLength} bytes at offset ${position}, found ${done} (did the file change while it was read?)`,
        { path },
      );
    }
    done += bytesRead;
  }
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // Already gone, or the folder vanished: nothing more to clean up.
  }
}

async function writeAllAt(fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const len = Math.min(chunk.byteLength - done, MAX_IO);
    const { bytesWritten } = await fh.write(chunk, done, len, position + done);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten}`);
    done += bytesWritten;
  }
}

/** Flushes a folder's entry list so a rename survives a crash (best effort: not every platform allows it). */
async function syncFolder(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Windows and some file systems refuse to open or fsync a folder.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * A streaming atomic write: `open` creates a temporary file beside `path`,
 * `write` appends, `commit` flushes and renames it to `path`, `abort` removes
 * it. A write may be issued before the previous one has finished: each
 * reserves its file range when it is called, so the bytes land in call order.
 */
export class AtomicWriter {
  readonly path: string;
  readonly tempPath: string;
  private fh: FileHandle | undefined;
  private offset = 0;
  private readonly pending = new Set<Promise<void>>();
  private failure: GenaugError | undefined;

  private constructor(path: string, tempPath: string, fh: FileHandle) {
    this.path = path;
    this.tempPath = tempPath;
    this.fh = fh;
  }

  static async open(path: string): Promise<AtomicWriter> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new GenaugError('E_TYPE', `path must be a non-empty string, got ${typeof path === 'string' ? "''" : typeName(path)}`);
    }
    const tempPath = tempPathFor(path);
    let fh: FileHandle;
    try {
      fh = await open(tempPath, 'wx', 0o666);
    } catch (e) {
      throw ioError(path, path, `create a temporary file in ${dirname(path)}`, e);
    }
    return new AtomicWriter(path, tempPath, fh);
  }

  /** Bytes written (or reserved by writes in flight) so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  /** True until `commit` or `abort` has been called. */
  get isOpen(): boolean {
    return this.fh !== undefined;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new GenaugError('E_IO', `${this.path}: write after commit() or abort()`, { path: this.path });
    if (this.failure) throw this.failure;
    const position = this.offset;
    this.offset += chunk.byteLength;
    return this.writeTracked(fh, chunk, position);
  }

  /**
   * Overwrites bytes already written (or reserved), e.g. a header whose final
   * form is known only at the end; the range must lie inside what was written.
   */
  async writeAt(chunk: Uint8Array, position: number): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new GenaugError('E_IO', `${this.path}: write after commit() or abort()`, { path: this.path });
    if (this.failure) throw this.failure;
    if (!Number.isSafeInteger(position) || position < 0 || position + chunk.byteLength > this.offset) {
      throw new GenaugError('E_RANGE', `${this.path}: writeAt(${chunk.byteLength} bytes at ${position}) is outside the ${this.offset} bytes written`, { path: this.path });
    }
    return this.writeTracked(fh, chunk, position);
  }

  /** One positioned write, tracked until it settles (commit waits for it); its failure is the writer's. */
  private writeTracked(fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
    const p = writeAllAt(fh, chunk, position).catch((e: unknown) => {
      this.failure ??= ioError(this.path, this.path, `write ${chunk.byteLength} bytes at offset ${position} of ${this.tempPath}`, e);
      throw this.failure;
    });
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return p;
  }

  /** Flushes everything, renames the temporary file to `path`. Removes it and throws E_IO on failure. */
  async commit(): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new GenaugError('E_IO', `${this.path}: commit() after commit() or abort()`, { path: this.path });
    this.fh = undefined;
    try {
      await Promise.all(this.pending);
      if (this.failure) throw this.failure;
      await fh.sync().catch((e: unknown) => {
        throw ioError(this.path, this.path, `flush ${this.tempPath} to disk`, e);
      });
      await fh.close().catch((e: unknown) => {
        throw ioError(this.path, this.path, `close ${this.tempPath}`, e);
      });
      await rename(this.tempPath, this.path).catch((e: unknown) => {
        throw ioError(this.path, this.path, `rename ${this.tempPath} to it`, e);
      });
    } catch (e) {
      await fh.close().catch(() => undefined);
      await removeQuietly(this.tempPath);
      throw ioError(this.path, this.path, 'write it', e);
    }
    await syncFolder(dirname(this.path));
  }

  /** Discards what was written. Safe to call more than once, and after a failed commit. */
  async abort(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.fh = undefined;
    await Promise.all(this.pending);
    await fh.close().catch(() => undefined);
    await removeQuietly(this.tempPath);
  }
}

/** Writes `data` (one buffer or several, in order) to `path` atomically. Errors are GenaugError E_IO naming the path. */
export async function writeFileAtomic(path: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const chunks: readonly Uint8Array[] = data instanceof Uint8Array ? [data] : data;
  const w = await AtomicWriter.open(path);
  try {
    for (const chunk of chunks) await w.write(chunk);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.commit();
}

/** Whether a process with this id runs (EPERM: it runs, under another user). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that atomic writes into `dir` left behind when
 * their process was killed (`.<name>.<pid>.<hex>.tmp` of a process that no
 * longer runs), so a resumed run's folder holds what an uninterrupted one
 * does. A running process's temporary files (this one's included) are kept.
 * Returns the paths removed; a missing folder has none.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(dir, dir, 'list it', e);
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name);
    if (!m || processRuns(Number(m[1]))) continue;
    await removeQuietly(join(dir, name));
    removed.push(join(dir, name));
  }
  return removed;
}
