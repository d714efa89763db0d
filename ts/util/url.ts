/**
 * URLs that may carry credentials (http://user:pass@host): fetch refuses them,
 * and they must never reach a message or a file. `splitCredentials` turns the
 * user info into an HTTP Basic header and returns the URL without it;
 * `maskCredentials` hides the user info in any text that might hold such a URL.
 */
import { GenaugError } from '../native/errors.js';

/** `scheme://user:pass@` in text becomes `scheme://***@`. */
export function maskCredentials(text: string): string {
  return text.replace(/\/\/[^@/\s]*@/g, '//***@');
}

/** HTTP Basic credentials in a URL (http://user:pass@host) become a header; the URL used and recorded has none. */
export function splitCredentials(url: string): { url: string; headers: Record<string, string>; display: string; secrets: string[] } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GenaugError('E_ARGUMENT', `not a URL: '${maskCredentials(url)}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new GenaugError('E_ARGUMENT', `the URL '${maskCredentials(url)}' must be http or https, got ${u.protocol}`);
  const headers: Record<string, string> = {};
  const secrets: string[] = [];
  if (u.username || u.password) {
    const token = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    headers.authorization = `Basic ${token}`;
    // What must never be written: the header's token and the password as typed and decoded; a user name without
    // a password is a token itself (http://TOKEN@host).
    secrets.push(token, u.password, decodeURIComponent(u.password));
    if (!u.password) secrets.push(u.username, decodeURIComponent(u.username));
    u.username = '';
    u.password = '';
  }
  const clean = u.toString().replace(/\/+$/, '');
  return { url: clean, headers, display: `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`, secrets: [...new Set(secrets.filter((s) => s.length >= 4))] };
}
