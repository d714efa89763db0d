/**
 * Checks that bytes a server sent are a whole image: PNG chunks walked to
 * IEND, JPEG ending in EOI, WebP's RIFF size matching. Truncated base64
 * decodes to a cut image that these checks catch.
 */
import { backendError } from './http.js';

export type ImageExt = 'png' | 'jpg' | 'webp';

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The image type of `b` from its magic bytes, or undefined. */
export function sniffImage(b: Uint8Array): ImageExt | undefined {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length >= 8 && buf.subarray(0, 8).equals(PNG_SIG)) return 'png';
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpg';
  if (buf.length >= 12 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/** Returns the extension, or throws a retryable E_BACKEND naming what is wrong with the bytes. */
export function checkImage(b: Buffer, what: string): ImageExt {
  const ext = sniffImage(b);
  if (!ext) {
    throw backendError(`${what}: the ${b.length} bytes are not a PNG, JPEG or WebP image (first bytes ${b.subarray(0, 8).toString('hex')})`, { retryable: true });
  }
  const cut = (why: string) => backendError(`${what}: truncated ${ext.toUpperCase()} image (${b.length} bytes): ${why}`, { retryable: true });
  if (ext === 'png') {
    let p = 8;
    for (;;) {
      if (p + 12 > b.length) throw cut(`chunk header at byte ${p} runs past the end`);
      const len = b.readUInt32BE(p);
      const type = b.toString('latin1', p + 4, p + 8);
      if (p + 12 + len > b.length) throw cut(`chunk ${type} at byte ${p} needs ${len} bytes`);
      p += 12 + len;
      if (type === 'IEND') break;
    }
  } else if (ext === 'jpg') {
    let end = b.length;
    while (end > 2 && b[end - 1] === 0) end--; // some encoders pad
    if (!(b[end - 2] === 0xff && b[end - 1] === 0xd9)) throw cut('no end-of-image marker');
  } else if (b.readUInt32LE(4) + 8 > b.length) {
    throw cut(`RIFF says ${b.readUInt32LE(4) + 8} bytes`);
  }
  return ext;
}
