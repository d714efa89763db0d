/**
 * The one error class of genaug. Every failure a caller can act on carries a
 * stable `code`; the message says what was wrong, what was expected and where.
 * The native addon receives this class at load time (see load.ts) and throws
 * it too, so JS and C++ errors look the same to callers.
 */

export const ERROR_CODES = {
  E_TYPE: 'an argument has the wrong JavaScript type',
  E_DTYPE: 'an array or file has the wrong element type',
  E_SHAPE: 'array lengths, rows or columns do not agree',
  E_RANGE: 'a number is outside its allowed range',
  E_NONFINITE: 'the data contains NaN or infinity',
  E_FORMAT: 'a file is malformed or truncated',
  E_IO: 'a file could not be read or written',
  E_LIMIT: 'a result would exceed a configured limit',
  E_EMPTY: 'a step would produce nothing (everything was filtered out or failed) and emptiness was not allowed',
  E_LOCKED: 'another genaug process is writing to the same folder',
  E_ARGUMENT: 'a command-line argument is missing or invalid',
  E_NOMEM: 'the native code could not allocate memory',
  E_NATIVE_LOAD: 'the native addon could not be loaded',
  E_CUDA_UNAVAILABLE: 'CUDA was requested but is not built or has no device',
  E_MODEL: 'a model file is missing or does not have the expected inputs/outputs',
  E_BACKEND: 'a server or backend failed',
  E_ABORTED: 'the operation was cancelled',
  E_QUEUE_UNAVAILABLE: 'the Redis server of --queue cannot be reached, refuses the password, or went away',
  E_QUEUE_JOB: 'a queued job failed on every attempt (its items are recorded as failed)',
  E_INTERNAL: 'a bug in genaug (please report it)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GenaugError extends Error {
  readonly code: ErrorCode;
  /** Extra structured detail (file name, field, index) when there is any. */
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GenaugError';
    this.code = code;
    this.detail = detail;
  }

  override toString(): string {
    return `GenaugError [${this.code}]: ${this.message}`;
  }
}

export function isGenaugError(e: unknown, code?: ErrorCode): e is GenaugError {
  return e instanceof GenaugError && (code === undefined || e.code === code);
}

/**
 * A GenaugError E_IO for a failed file operation: "<what>: could not <action>
 * (<errno>: <message>)". `what` names the file in messages (the path, or a
 * caller's name for it); `path` goes into the detail. GenaugErrors pass through.
 */
export function ioError(what: string, path: string, action: string, e: unknown): GenaugError {
  if (e instanceof GenaugError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  const message = String(err?.message ?? e);
  const why = err?.code && !message.startsWith(err.code) ? `${err.code}: ${message}` : message;
  return new GenaugError('E_IO', `${what}: could not ${action} (${why})`, { path, errno: err?.code }, { cause: e });
}
