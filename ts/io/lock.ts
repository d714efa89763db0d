/**
 * One writer per output. A command that writes a folder locks FOLDER/.lock;
 * a command that writes a file (and the sidecars named after it) locks
 * FILE.lock beside it. The lock holds the writer's pid (and, on Linux, the
 * start time of that process, so a recycled pid is not mistaken for the
 * writer). It is created whole and exclusively (written to a temporary file,
 * then hard-linked into place) before anything else is written, so a second
 * writer is refused with E_LOCKED naming the pid, and changes nothing.
 *
 * A lock whose process is gone (a killed run) is taken over. Taking over is
 * itself serialised by LOCK.takeover (a folder made with mkdir, which only one
 * process can make): inside it the lock is read again and removed only if it
 * is still the stale one, so two processes taking over at once never both
 * end up holding it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { GenaugError, ioError } from '../native/errors.js';

const heldHere = new Set<string>();

/** A process's start time in clock ticks after boot (Linux /proc), or '' where unknown. */
function startTime(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name (field 2) may hold spaces and ')' so count from its last ')'.
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

const MY_START = startTime(process.pid);

/** Whether the process that wrote `content` still runs. */
function holderRuns(content: string): { pid: number; alive: boolean; name: string } {
  const [pidText, start, held] = content.split('\n');
  const name = held?.startsWith('genaug') ? held : 'genaug process';
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return { pid: NaN, alive: false, name };
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return { pid, alive: false, name };
  }
  // The pid runs; it is the writer unless its start time says it is a later process with a recycled pid.
  const now = start ? startTime(pid) : '';
  return { pid, alive: !start || !now || now === start, name };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates `path` holding `content`, whole, or fails with EEXIST. */
async function createExclusive(path: string, content: string): Promise<void> {
  // Named like an atomic write's temporary file, so a killed process's leftover is recognised and removed.
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(temp, content, { flag: 'wx' });
  try {
    await link(temp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // A file system without hard links: create exclusively and write (a reader may briefly see it empty).
    const fh = await open(path, 'wx');
    try {
      await fh.writeFile(content);
    } finally {
      await fh.close();
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Runs `fn` holding LOCK.takeover; a takeover folder older than 10 s was left by a killed process and is removed. */
async function withTakeover<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const mutex = `${lockPath}.takeover`;
  for (let i = 0; ; i++) {
    try {
      await mkdir(mutex);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = await stat(mutex).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 10_000) await rmdir(mutex).catch(() => undefined);
      else if (i > 500) throw new GenaugError('E_LOCKED', `${mutex} is held by another process taking over the lock; try again`, { path: lockPath });
      else await sleep(10);
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(mutex).catch(() => undefined);
  }
}

/**
 * `takeLock`, and on release (or refusal) the folders that taking it created
 * are removed again when they are still empty: a command refused, or stopped
 * by a bad argument after its lock, leaves no empty output folder behind.
 */
async function takeLockIn(dir: string, lockPath: string, target: string, what: string): Promise<() => Promise<void>> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError(dir, dir, 'create the folder', e);
  }
  const tidy = async () => {
    if (!created) return;
    for (let d = dir; d.length >= created.length; d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) break;
    }
  };
  let release: () => Promise<void>;
  try {
    release = await takeLock(lockPath, target, what);
  } catch (e) {
    await tidy();
    throw e;
  }
  return async () => {
    await release();
    await tidy();
  };
}

async function takeLock(lockPath: string, target: string, what: string): Promise<() => Promise<void>> {
  // pid, start time, and who: the refusal names the writer that holds it.
  const ME = `${process.pid}\n${MY_START}\n${what.replace(/\n/g, ' ')}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await createExclusive(lockPath, ME);
      heldHere.add(lockPath);
      // A takeover folder a killed process left (it holds one for microseconds) is cleared by the holder.
      const mutex = `${lockPath}.takeover`;
      if (await stat(mutex).then((s) => Date.now() - s.mtimeMs > 10_000, () => false)) await rmdir(mutex).catch(() => undefined);
      return async () => {
        heldHere.delete(lockPath);
        // Only our own lock is removed (never one another process holds).
        if ((await readFile(lockPath, 'utf8').catch(() => '')) === ME) await unlink(lockPath).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(lockPath, lockPath, `create the lock of ${target}`, e);
    }
    const content = await readFile(lockPath, 'utf8').catch(() => undefined);
    if (content === undefined) continue; // released meanwhile: try again
    const holder = holderRuns(content);
    const pid = holder.pid;
    let alive = holder.alive;
    if (pid === process.pid) alive = heldHere.has(lockPath);
    if (!alive && content === '') {
      // Being created without hard links (see createExclusive): stale only when old.
      alive = await stat(lockPath).then((s) => Date.now() - s.mtimeMs < 5000, () => false);
    }
    if (alive) {
      throw new GenaugError('E_LOCKED', `another ${holder.name} (pid ${pid}) is writing ${target}; wait for it to finish, or stop it (a stopped run resumes)`, { path: lockPath, pid });
    }
    // Stale: remove it, but only if it is still the same stale lock once we hold the takeover.
    await withTakeover(lockPath, async () => {
      if ((await readFile(lockPath, 'utf8').catch(() => undefined)) === content) await unlink(lockPath).catch(() => undefined);
    });
  }
  throw new GenaugError('E_LOCKED', `could not lock ${target}: its lock ${lockPath} keeps changing hands`, { path: lockPath });
}

/**
 * Takes `dir`'s lock (DIR/.lock, creating `dir`, removed again on release if
 * it is then empty); returns the function that
 * releases it. `what` names this writer ("genaug run") in the lock, so that a
 * later writer's refusal names it.
 */
export async function lockFolder(dir: string, what: string): Promise<() => Promise<void>> {
  const abs = resolve(dir);
  return takeLockIn(abs, join(abs, '.lock'), dir, what);
}

/**
 * Takes the lock of an output file (FILE.lock beside it, creating its folder);
 * it covers the file and the sidecars named after it (FILE.partial/, ...).
 */
export async function lockFile(file: string, what: string): Promise<() => Promise<void>> {
  const abs = resolve(file);
  return takeLockIn(dirname(abs), `${abs}.lock`, file, what);
}

export type LockTarget = { folder: string } | { file: string };

/**
 * Refuses an output inside a folder another live process holds the lock of
 * (`genaug paste --out RUN/paste` while `genaug run` writes RUN): E_LOCKED
 * naming that writer. Locks this process holds do not count.
 */
async function checkAncestors(path: string, target: string): Promise<void> {
  for (let d = dirname(resolve(path)); ; d = dirname(d)) {
    const lockPath = join(d, '.lock');
    const content = heldHere.has(lockPath) ? undefined : await readFile(lockPath, 'utf8').catch(() => undefined);
    if (content) {
      const holder = holderRuns(content);
      if (holder.alive && holder.pid !== process.pid) {
        throw new GenaugError('E_LOCKED', `${target} is inside ${d}, which another ${holder.name} (pid ${holder.pid}) is writing; wait for it to finish, or write elsewhere`, { path: lockPath, pid: holder.pid });
      }
    }
    if (dirname(d) === d) return;
  }
}

/**
 * Takes the locks of every output of a command (a refusal releases those
 * already taken); returns the function that releases them all.
 */
export async function lockOutputs(targets: ReadonlyArray<LockTarget | undefined>, what: string): Promise<() => Promise<void>> {
  const held: Array<() => Promise<void>> = [];
  const seen = new Set<string>();
  const releaseAll = async () => {
    for (const r of held.splice(0).reverse()) await r();
  };
  try {
    for (const t of targets) {
      if (!t) continue;
      const key = 'folder' in t ? `d:${resolve(t.folder)}` : `f:${resolve(t.file)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await checkAncestors('folder' in t ? t.folder : t.file, 'folder' in t ? t.folder : t.file);
      held.push('folder' in t ? await lockFolder(t.folder, what) : await lockFile(t.file, what));
    }
  } catch (e) {
    await releaseAll();
    throw e;
  }
  return releaseAll;
}
