/**
 * One writer per folder: FOLDER/.lock holds the pid of the process writing
 * there, created exclusively (O_EXCL) before anything else is written. A
 * second writer is refused with E_LOCKED naming the pid, and changes nothing;
 * a lock whose process is gone (a killed run) is taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { GenaugError } from '../native/errors.js';

const heldHere = new Set<string>();

/**
 * Takes `dir`'s lock (creating `dir`); returns the function that releases it.
 * `what` names the writer in the refusal ("genaug run", "genaug demo").
 */
export async function lockFolder(dir: string, what: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      heldHere.add(path);
      return async () => {
        heldHere.delete(path);
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new GenaugError('E_IO', `could not create ${path}: ${(e as Error).message}`, { path });
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      let alive = pid === process.pid && heldHere.has(path);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (k) {
          alive = (k as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) throw new GenaugError('E_LOCKED', `another ${what} (pid ${pid}) is using ${dir}; wait for it to finish, or stop it (a stopped run resumes)`, { path, pid });
      await rm(path, { force: true });
    }
  }
  throw new GenaugError('E_LOCKED', `could not lock ${dir}`, { path });
}
