/**
 * HTTP plumbing the image-server backends share: server error messages pulled
 * out of their JSON shapes, failures classified as retryable or not (5xx, 429,
 * timeouts and connection errors are; other 4xx are not), strict base64.
 */
import { GenaugError } from '../native/errors.js';
import { parseRetryAfter } from '../util/retry.js';

/** Longest server message kept in an error (the rest is cut with an ellipsis). */
const MAX_MESSAGE = 2000;

export function clip(s: string, n = MAX_MESSAGE): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** An E_BACKEND error; `retryable` says whether the runner may try the same request again. */
export function backendError(message: string, detail: { status?: number; retryable: boolean; [k: string]: unknown }): GenaugError {
  return new GenaugError('E_BACKEND', message, detail);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * The human part of an error body: OpenAI's {error:{message}}, A1111's
 * {error, detail, errors} (NansException and friends), FastAPI's {detail},
 * ComfyUI's {error:{message, details}, node_errors}; plain text otherwise.
 */
export function serverMessage(text: string): string {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return clip(text.trim() || '(empty body)');
  }
  if (o === null || typeof o !== 'object') return clip(String(o));
  const r = o as Record<string, unknown>;
  const parts: string[] = [];
  const err = r.error;
  if (typeof err === 'string' && err) parts.push(err);
  else if (err && typeof err === 'object') {
    const e = err as Record<string, unknown>;
    if (typeof e.message === 'string') parts.push(e.message);
    if (typeof e.details === 'string' && e.details) parts.push(e.details);
    if (typeof e.type === 'string' && !parts.length) parts.push(e.type);
  }
  if (typeof r.detail === 'string' && r.detail) parts.push(r.detail);
  else if (Array.isArray(r.detail)) parts.push(JSON.stringify(r.detail));
  if (typeof r.errors === 'string' && r.errors) parts.push(r.errors);
  if (r.node_errors && typeof r.node_errors === 'object' && Object.keys(r.node_errors).length) parts.push(nodeErrorsText(r.node_errors));
  return clip(parts.length ? parts.join(': ') : JSON.stringify(o));
}

/** ComfyUI's node_errors {<id>: {class_type, errors: [{message, details}]}} as one line. */
export function nodeErrorsText(nodeErrors: unknown): string {
  if (!nodeErrors || typeof nodeErrors !== 'object') return '';
  const out: string[] = [];
  for (const [id, v] of Object.entries(nodeErrors as Record<string, unknown>)) {
    const n = (v ?? {}) as { class_type?: unknown; errors?: unknown };
    const errs = Array.isArray(n.errors) ? n.errors : [];
    const msgs = errs.map((e) => {
      const x = (e ?? {}) as { message?: unknown; details?: unknown };
      return [x.message, x.details].filter((s) => typeof s === 'string' && s).join(': ');
    });
    out.push(`node ${id} (${String(n.class_type ?? '?')}): ${msgs.join('; ') || 'error'}`);
  }
  return out.join('; ');
}

/** Text out of a server's answer, with secrets removed (before any cut, which could leave a piece of one). */
export type Redact = (text: string) => string;
const asIs: Redact = (t) => t;

/** Throws E_BACKEND with the server's message (secrets removed by `redact`) when the response is not 2xx. */
export async function ensureOk(res: Response, what: string, redact: Redact = asIs): Promise<void> {
  if (res.ok) return;
  const text = redact(await res.text().catch(() => ''));
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  throw backendError(`${what}: HTTP ${res.status}: ${serverMessage(text)}`, {
    status: res.status,
    retryable: isRetryableStatus(res.status),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** Reads a JSON body; a body that does not parse is a retryable E_BACKEND (a cut connection looks like this). */
export async function readJson(res: Response, what: string, redact: Redact = asIs): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw backendError(`${what}: the response is not JSON (${text.length} bytes: ${clip(redact(text), 200)})`, { status: res.status, retryable: true });
  }
}

/**
 * Decodes base64 strictly (Buffer.from(s, 'base64') silently drops bad
 * characters and decodes a truncated string to fewer bytes). A data: URL
 * prefix is accepted.
 */
export function decodeBase64(s: unknown, what: string): Buffer {
  if (typeof s !== 'string') throw backendError(`${what}: expected a base64 string, got ${s === null ? 'null' : typeof s}`, { retryable: false });
  let b = s.startsWith('data:') ? s.slice(s.indexOf(',') + 1) : s;
  b = b.replace(/\s+/g, '');
  if (b.length === 0 || b.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b)) {
    throw backendError(`${what}: not valid base64 (${b.length} characters; truncated or corrupted?)`, { retryable: true });
  }
  return Buffer.from(b, 'base64');
}

export { splitCredentials } from '../util/url.js';
export { parseRetryAfter } from '../util/retry.js';
