/**
 * WebDataset shards: POSIX ustar tar files `{000000..}.tar`, a sample being
 * the consecutive members `<key>.<field>` sharing a key. Samples must be
 * added in increasing key order (byte order) and fields are written in
 * sorted order, so every shard is sorted by member name. Keys are unique,
 * dot-free and slash-free, of [A-Za-z0-9_-] only, at most 90 characters (so
 * `<key>.<field>` fits the 100-byte ustar name field and stays under
 * WebDataset's 128). Headers carry mode 0644, uid/gid 0, mtime 0 (the same
 * bytes on every run), and a correct checksum; a shard ends with two zero
 * blocks and is padded to a 10240-byte record, as tar(1) writes it. Each
 * shard is written atomically.
 */
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { GenaugError } from '../native/errors.js';
import { AtomicWriter } from './atomic.js';

const BLOCK = 512;
const RECORD = 10240;
export const MAX_KEY_LENGTH = 90;

function putString(h: Uint8Array, offset: number, length: number, s: string): void {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length > length) throw new GenaugError('E_LIMIT', `tar header field of ${length} bytes cannot hold '${s}'`);
  h.set(bytes, offset);
}

function putOctal(h: Uint8Array, offset: number, length: number, value: number): void {
  // length - 1 octal digits, then NUL.
  const s = value.toString(8).padStart(length - 1, '0');
  if (s.length > length - 1) throw new GenaugError('E_LIMIT', `tar header value ${value} does not fit ${length - 1} octal digits`);
  putString(h, offset, length, s + '\0');
}

/** A ustar header block for a regular file. */
export function tarHeader(name: string, size: number, mtime = 0): Uint8Array {
  const h = new Uint8Array(BLOCK);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, mtime);
  h[156] = 0x30;  // '0': regular file
  putString(h, 257, 6, 'ustar\0');
  putString(h, 263, 2, '00');
  putOctal(h, 329, 8, 0);
  putOctal(h, 337, 8, 0);
  // Checksum: the byte sum with the checksum field read as 8 spaces; 6 octal digits, NUL, space.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i] as number;
  putString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

export function checkKey(key: string): void {
  if (typeof key !== 'string' || !/^[A-Za-z0-9_-]+$/.test(key) || key.length > MAX_KEY_LENGTH) {
    throw new GenaugError('E_ARGUMENT', `WebDataset key '${String(key)}' must be 1..${MAX_KEY_LENGTH} characters of [A-Za-z0-9_-] (no dots)`);
  }
}

/**
 * One sample as tar members, for a stream (`genaug paste --stream`): the
 * header and padded data of each `<key>.<field>`, fields in sorted order,
 * exactly as a shard holds them.
 */
export function tarSample(key: string, fields: Record<string, Uint8Array>): Uint8Array {
  checkKey(key);
  const names = Object.keys(fields).sort();
  let size = 0;
  for (const field of names) {
    if (!/^[A-Za-z0-9_.-]+$/.test(field) || field.startsWith('.')) throw new GenaugError('E_ARGUMENT', `bad WebDataset field name '${field}'`);
    size += BLOCK + Math.ceil((fields[field] as Uint8Array).byteLength / BLOCK) * BLOCK;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const field of names) {
    const data = fields[field] as Uint8Array;
    out.set(tarHeader(`${key}.${field}`, data.byteLength), at);
    out.set(data, at + BLOCK);
    at += BLOCK + Math.ceil(data.byteLength / BLOCK) * BLOCK;
  }
  return out;
}

/** The end of a tar stream of `written` bytes: two zero blocks, then zeros up to a whole 10240-byte record. */
export function tarEnd(written: number): Uint8Array {
  const end = written + 2 * BLOCK;
  return new Uint8Array(Math.ceil(end / RECORD) * RECORD - written);
}

export interface ShardWriterOptions {
  /** Samples per shard (default 1000). */
  samplesPerShard?: number;
  /** Start a new shard once a shard holds this many bytes (default 1 GiB). */
  maxShardBytes?: number;
}

/** Writes samples into OUT/{000000..}.tar shards. */
export class ShardWriter {
  private writer: AtomicWriter | undefined;
  private shard = -1;
  private samplesInShard = 0;
  private lastKey: string | undefined;
  readonly shards: string[] = [];
  private readonly samplesPerShard: number;
  private readonly maxShardBytes: number;

  constructor(
    readonly dir: string,
    o: ShardWriterOptions = {},
  ) {
    this.samplesPerShard = o.samplesPerShard ?? 1000;
    this.maxShardBytes = o.maxShardBytes ?? 2 ** 30;
    if (!Number.isInteger(this.samplesPerShard) || this.samplesPerShard < 1) {
      throw new GenaugError('E_ARGUMENT', `samplesPerShard must be a positive integer, got ${this.samplesPerShard}`);
    }
  }

  /** Adds one sample: `fields` maps a field name (`jpg`, `json`, `seg.png`) to its bytes. */
  async add(key: string, fields: Record<string, Uint8Array>): Promise<void> {
    checkKey(key);
    if (this.lastKey !== undefined && !(key > this.lastKey)) {
      throw new GenaugError('E_ARGUMENT', `WebDataset keys must be added in increasing order: '${key}' after '${this.lastKey}'`);
    }
    this.lastKey = key;
    if (!this.writer || this.samplesInShard >= this.samplesPerShard || this.writer.bytesWritten >= this.maxShardBytes) await this.nextShard();
    const w = this.writer as AtomicWriter;
    for (const field of Object.keys(fields).sort()) {
      if (!/^[A-Za-z0-9_.-]+$/.test(field) || field.startsWith('.')) throw new GenaugError('E_ARGUMENT', `bad WebDataset field name '${field}'`);
      const data = fields[field] as Uint8Array;
      await w.write(tarHeader(`${key}.${field}`, data.byteLength));
      await w.write(data);
      const pad = (BLOCK - (data.byteLength % BLOCK)) % BLOCK;
      if (pad) await w.write(new Uint8Array(pad));
    }
    this.samplesInShard++;
  }

  private async nextShard(): Promise<void> {
    await this.finishShard();
    this.shard++;
    this.samplesInShard = 0;
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${String(this.shard).padStart(6, '0')}.tar`);
    this.writer = await AtomicWriter.open(path);
    this.shards.push(path);
  }

  private async finishShard(): Promise<void> {
    const w = this.writer;
    if (!w) return;
    this.writer = undefined;
    const end = w.bytesWritten + 2 * BLOCK;
    const total = Math.ceil(end / RECORD) * RECORD;
    await w.write(new Uint8Array(total - w.bytesWritten));
    await w.commit();
  }

  /** Finishes the last shard. */
  async close(): Promise<string[]> {
    await this.finishShard();
    return this.shards;
  }

  async abort(): Promise<void> {
    await this.writer?.abort();
    this.writer = undefined;
  }
}

/** Where a member's bytes are in a shard. */
export interface ShardMember {
  file: string;
  offset: number;
  size: number;
}

const octal = (h: Uint8Array, offset: number, length: number): number => {
  const text = new TextDecoder().decode(h.subarray(offset, offset + length)).replace(/[\0 ]+$/, '').trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
};

/**
 * The members of every `*.tar` shard in `dir` (in file-name order), by member
 * name: reads the ustar headers only, so it costs one small read per member.
 * A header that is not ustar, a bad checksum or a size past the end of the
 * file is E_FORMAT naming the shard and offset; a missing folder is an empty map.
 */
export async function indexShards(dir: string): Promise<Map<string, ShardMember>> {
  const members = new Map<string, ShardMember>();
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.tar')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return members;
    throw e;
  }
  for (const name of names) {
    const file = join(dir, name);
    const fh = await open(file, 'r');
    try {
      const { size: fileSize } = await fh.stat();
      const h = new Uint8Array(BLOCK);
      for (let pos = 0; pos + BLOCK <= fileSize; ) {
        const { bytesRead } = await fh.read(h, 0, BLOCK, pos);
        if (bytesRead < BLOCK || h.every((b) => b === 0)) break;
        const bad = (why: string) => new GenaugError('E_FORMAT', `${file}: not a WebDataset shard genaug can read (${why} at byte ${pos})`, { path: file, offset: pos });
        if (new TextDecoder().decode(h.subarray(257, 262)) !== 'ustar') throw bad('no ustar header');
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
        if (octal(h, 148, 8) !== sum) throw bad('a bad header checksum');
        const size = octal(h, 124, 12);
        if (!Number.isFinite(size) || pos + BLOCK + size > fileSize) throw bad('a member size past the end of the file');
        const end = h.indexOf(0);
        const member = new TextDecoder().decode(h.subarray(0, end < 0 || end > 100 ? 100 : end));
        const prefixEnd = h.indexOf(0, 345);
        const prefix = new TextDecoder().decode(h.subarray(345, prefixEnd < 0 || prefixEnd > 500 ? 500 : prefixEnd));
        if (h[156] === 0x30 || h[156] === 0) members.set(prefix ? `${prefix}/${member}` : member, { file, offset: pos + BLOCK, size });
        pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
      }
    } finally {
      await fh.close();
    }
  }
  return members;
}

/** The bytes of one member found by `indexShards`. */
export async function readShardMember(m: ShardMember): Promise<Uint8Array> {
  const fh = await open(m.file, 'r');
  try {
    const out = new Uint8Array(m.size);
    const { bytesRead } = await fh.read(out, 0, m.size, m.offset);
    if (bytesRead !== m.size) throw new GenaugError('E_FORMAT', `${m.file}: truncated member at byte ${m.offset}`, { path: m.file });
    return out;
  } finally {
    await fh.close();
  }
}
