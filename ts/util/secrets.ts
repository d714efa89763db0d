/**
 * Keeping secrets (API keys, URL passwords and tokens) out of every message,
 * file and log: one redactor, used by the image-server backends on the bodies
 * they quote, by the generate runner on every line it writes and every note,
 * and by the chat client on its errors.
 *
 * A server may echo a key as it was sent (`Bearer KEY`), decoded
 * (`user:KEY`), URL-encoded, or inside base64 (`Basic base64(user:KEY)`); the
 * redactor removes each form, base64 at every alignment, so that no piece of
 * the encoding that depends on the key alone is left. Redact before cutting a
 * long text: a cut through a key leaves a piece that no longer matches it.
 */

/** What a secret is replaced with. */
export const REDACTED = '***';

/** Shorter strings are not treated as secrets (they would match everywhere). */
const MIN_SECRET = 4;
/** Shorter base64 pieces are not removed (too likely to match innocent text). */
const MIN_ENCODED = 8;

/** The base64 (and base64url) characters that depend on `s` alone, for each of the three alignments `s` can have. */
function base64Pieces(s: string): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(s, 'utf8');
  for (let o = 0; o < 3; o++) {
    const padded = Buffer.concat([Buffer.alloc(o), bytes]);
    const from = Math.ceil((8 * o) / 6);
    const to = Math.floor((8 * (o + bytes.length)) / 6);
    for (const enc of [padded.toString('base64'), padded.toString('base64url')]) {
      const piece = enc.slice(from, to);
      if (piece.length >= MIN_ENCODED) out.push(piece);
    }
  }
  return out;
}

/** Every form of the secrets that must not be written, longest first. */
export function secretForms(secrets: Iterable<string | undefined>): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < MIN_SECRET) continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    for (const p of base64Pieces(s)) forms.add(p);
  }
  return [...forms].filter((f) => f.length >= MIN_SECRET).sort((a, b) => b.length - a.length);
}

/** A function that replaces every form of the secrets in a text with `***` (the identity when there are none). */
export function redactor(secrets: Iterable<string | undefined>): (text: string) => string {
  const forms = secretForms(secrets);
  if (forms.length === 0) return (text) => text;
  return (text) => {
    let t = text;
    for (const f of forms) if (t.includes(f)) t = t.split(f).join(REDACTED);
    return t;
  };
}
