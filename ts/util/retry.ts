/**
 * Waiting before a retry, shared by the image-server runner and the chat
 * client: exponential backoff with jitter, and the server's Retry-After.
 */

/**
 * A Retry-After header (RFC 9110 10.2.3) as milliseconds from `now`: either
 * delay-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"; a
 * date in the past is 0). Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  if (!/[A-Za-z]/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/**
 * The wait before retry `attempt` (1 for the first retry): exponential from
 * `baseMs`, capped at `maxMs`, with "equal jitter": uniform in [cap/2, cap]
 * so that lanes failing together do not retry together, yet each wait still
 * grows and never exceeds the cap.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const u = Math.min(1, Math.max(0, random()));
  return cap / 2 + (cap / 2) * u;
}
