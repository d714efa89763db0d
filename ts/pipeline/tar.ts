/**
 * A minimal POSIX ustar writer for WebDataset shards: regular files only,
 * fixed owner, mode and modification time (0), so the same members give the
 * same bytes. Names must be ASCII and at most 100 bytes.
 */
import { GenaugError } from '../native/errors.js';

export interface TarMember {
  name: string;
  data: Uint8Array;
}

function field(h: Uint8Array, offset: number, length: number, value: string): void {
  for (let i = 0; i < value.length && i < length; i++) h[offset + i] = value.charCodeAt(i);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

export function tarHeader(name: string, size: number): Uint8Array {
  if (!/^[\x21-\x7e]+$/.test(name) || name.length > 100) {
    throw new GenaugError('E_ARGUMENT', `tar member name '${name}' must be printable ASCII without spaces, at most 100 bytes`);
  }
  const h = new Uint8Array(512);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(0, 12));
  field(h, 148, 8, '        ');
  h[156] = 0x30; // '0': a regular file
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 265, 32, 'genaug');
  field(h, 297, 32, 'genaug');
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** The bytes of a tar archive holding `members` in the given order. */
export function tarBytes(members: TarMember[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (const m of members) {
    parts.push(tarHeader(m.name, m.data.byteLength), m.data);
    const pad = (512 - (m.data.byteLength % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return parts;
}
