/**
 * SIGTERM and SIGINT for the long commands (run, demo, generate, annotate,
 * embed, paste): the first signal stops taking new items; the items in hand
 * finish and are journaled, the lock is released, and the command exits 143
 * (SIGTERM) or 130 (SIGINT), so running it again resumes. A second signal
 * quits at once (the journal is still whole up to its last line; the lock is
 * then stale and the next run takes it over).
 */
import { GenaugError } from '../native/errors.js';

/** The exit code of a command stopped by `signal` (128 + its number). */
export const SIGNAL_EXIT: Record<'SIGTERM' | 'SIGINT', number> = { SIGTERM: 143, SIGINT: 130 };

/**
 * Runs `work` with an AbortSignal that SIGTERM/SIGINT abort. When a signal
 * came, the command ends with E_ABORTED carrying the exit code (main.ts
 * exits with it), whether `work` stopped early or had just finished.
 */
export async function withStopSignals<T>(name: string, work: (signal: AbortSignal) => Promise<T>, opts: { quiet?: boolean } = {}): Promise<T> {
  const stop = new AbortController();
  let got: 'SIGTERM' | 'SIGINT' | undefined;
  const on = (sig: 'SIGTERM' | 'SIGINT') => () => {
    if (got) process.exit(SIGNAL_EXIT[sig]);
    got = sig;
    if (!opts.quiet) process.stderr.write(`\n${name}: ${sig}: finishing the items in hand, then stopping (${sig === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again quits at once); run the same command again to resume\n`);
    stop.abort(new GenaugError('E_ABORTED', `stopped by ${sig}`));
  };
  const onTerm = on('SIGTERM');
  const onInt = on('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  // The stage's own E_ABORTED message says how far it got; it is kept, with the signal named.
  const stopped = (sig: 'SIGTERM' | 'SIGINT', cause?: unknown) =>
    new GenaugError(
      'E_ABORTED',
      cause instanceof GenaugError && cause.code === 'E_ABORTED' ? `${cause.message} (${name} stopped by ${sig})` : `${name} stopped by ${sig}; what was finished is kept: run the same command again to resume`,
      { signal: sig, exitCode: SIGNAL_EXIT[sig] },
      { cause },
    );
  try {
    const r = await work(stop.signal);
    if (got) throw stopped(got);
    return r;
  } catch (e) {
    // Stopped as asked: the signal's exit code. Any other error (a full disk, ...) is reported as itself.
    if (got && e instanceof GenaugError && e.code === 'E_ABORTED' && e.detail?.exitCode === undefined) throw stopped(got, e);
    throw e;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
}
