/**
 * The roots rule: a file named by data (a manifest line, a COCO file_name, a
 * listed folder entry) is read only when it lies inside the folder declared
 * for it (--images, the manifest's folder), after resolving `..` and, for
 * files that exist, symlinks. An absolute path or a link elsewhere is refused
 * with E_IO naming the file and the root; the item is recorded as failed and
 * the batch goes on.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';

import { GenaugError } from '../native/errors.js';

/** realpath of each root, resolved once per process (a root is checked for every file of a batch). */
const realRoots = new Map<string, Promise<string>>();
function realRootOf(root: string): Promise<string> {
  const key = resolve(root);
  let p = realRoots.get(key);
  if (!p) {
    p = realpath(key);
    p.catch(() => realRoots.delete(key));
    realRoots.set(key, p);
  }
  return p;
}

/** Whether `path` is `root` or below it, by the names alone. */
export function isWithin(root: string, path: string): boolean {
  const r = relative(resolve(root), resolve(path));
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * `path` (absolute, or relative to `root`) checked against the roots rule;
 * returns the absolute path. A file that does not exist is checked by name
 * (the read that follows reports it missing).
 */
export async function checkWithin(root: string, path: string, what = 'file'): Promise<string> {
  const abs = resolve(root, path);
  if (!isWithin(root, abs)) throw new GenaugError('E_IO', `${what} ${path} is outside ${resolve(root)}; files named by data must lie inside their folder`, { path: abs, root });
  let real: string;
  let realRoot: string;
  try {
    [real, realRoot] = await Promise.all([realpath(abs), realRootOf(root)]);
  } catch {
    return abs;
  }
  if (!isWithin(realRoot, real)) throw new GenaugError('E_IO', `${what} ${path} is a link to ${real}, outside ${realRoot}; files named by data must lie inside their folder`, { path: abs, root });
  return abs;
}

/**
 * The image a manifest line names, and the folder it is relative to. With an images folder given (--images),
 * the line's `file` relative to it; else the line's `path` when it has one (genaug generate writes
 * `path: "images/<file>"`, relative to the manifest's own folder, next to `file` relative to images/), else
 * its `file`, both relative to the manifest's folder. So a manifest one command writes is read unchanged by the next.
 */
export function manifestImage(line: { file?: unknown; path?: unknown }, manifest: string, images?: string): { root: string; name: string | undefined } {
  if (images !== undefined) return { root: resolve(images), name: typeof line.file === 'string' ? line.file : undefined };
  const root = resolve(manifest, '..');
  const name = typeof line.path === 'string' && line.path ? line.path : typeof line.file === 'string' ? line.file : undefined;
  return { root, name };
}
