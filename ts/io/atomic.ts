/**
 * Atomic file writes: the bytes go to a temporary file in the destination's
 * folder, are flushed to disk (fsync), and the temporary file is renamed over
 * the destination. A reader therefore sees either the old file or the whole new
 * one, never a partial write. On failure the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { GenaugError } from '../native/errors.js';

/** Largest single write handed to the OS (Linux writes at most ~2 GiB per call). */
const MAX_WRITE = 1 << 30;

function ioError(path: string, action: string, e: unknown): GenaugError {
  if (e instanceof GenaugError) return e;
  const err = e as NodeJS.ErrnoException;
  const why = err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? e);
  return new GenaugError('E_IO', `${path}: could not ${action} (${why})`, { path, errno: err?.code }, { cause: e });
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
    const len = Math.min(chunk.byteLength - done, MAX_WRITE);
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
      throw new GenaugError('E_TYPE', `path must be a non-empty string, got ${typeof path === 'string' ? "''" : typeof path}`);
    }
    const tempPath = tempPathFor(path);
    let fh: FileHandle;
    try {
      fh = await open(tempPath, 'wx', 0o666);
    } catch (e) {
      throw ioError(path, `create a temporary file in ${dirname(path)}`, e);
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
    const p = writeAllAt(fh, chunk, position).catch((e: unknown) => {
      this.failure ??= ioError(this.path, `write ${chunk.byteLength} bytes at offset ${position} of ${this.tempPath}`, e);
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
        throw ioError(this.path, `flush ${this.tempPath} to disk`, e);
      });
      await fh.close().catch((e: unknown) => {
        throw ioError(this.path, `close ${this.tempPath}`, e);
      });
      await rename(this.tempPath, this.path).catch((e: unknown) => {
        throw ioError(this.path, `rename ${this.tempPath} to it`, e);
      });
    } catch (e) {
      await fh.close().catch(() => undefined);
      await removeQuietly(this.tempPath);
      throw ioError(this.path, 'write it', e);
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
