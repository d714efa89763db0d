/**
 * safetensors files (huggingface/safetensors README and tensor.rs).
 *
 * Layout: a u64 little-endian header length N, N bytes of UTF-8 JSON starting
 * with '{' (space-padded), then the byte buffer. The header maps tensor names
 * to {dtype, shape, data_offsets: [begin, end)} relative to the buffer, plus an
 * optional `__metadata__` string-to-string map. Tensors must tile the buffer
 * exactly: no holes, no overlaps, nothing left over.
 *
 * The reader validates all of that (and duplicate keys, which JSON.parse would
 * silently drop), then copies each tensor into a fresh, aligned typed array.
 * The writer sorts tensors by name, pads the header to a multiple of 8 with
 * spaces, and writes atomically.
 */
import { GenaugError } from '../native/errors.js';
import { openForReading, readExactly, requireLittleEndianHost, typeName, writeFileAtomic } from './atomic.js';

export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** The typed array holding each dtype: 8-bit floats as raw bytes, F16 and BF16 as raw 16-bit patterns, BOOL as 0/1 bytes. */
export interface SafetensorsDataTypes {
  BOOL: Uint8Array;
  U8: Uint8Array;
  I8: Int8Array;
  F8_E5M2: Uint8Array;
  F8_E4M3: Uint8Array;
  I16: Int16Array;
  U16: Uint16Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I32: Int32Array;
  U32: Uint32Array;
  F32: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
}

export type SafetensorsTypedArray = SafetensorsDataTypes[SafetensorsDtype];

export type SafeTensor = { [K in SafetensorsDtype]: { dtype: K; shape: number[]; data: SafetensorsDataTypes[K] } }[SafetensorsDtype];

export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** Tensors in the order the header lists them. */
  tensors: Map<string, SafeTensor>;
}

interface TypedArrayCtor {
  new (length: number): SafetensorsTypedArray;
  readonly name: string;
}

const DTYPES: Record<SafetensorsDtype, { itemsize: number; ctor: TypedArrayCtor }> = {
  BOOL: { itemsize: 1, ctor: Uint8Array },
  U8: { itemsize: 1, ctor: Uint8Array },
  I8: { itemsize: 1, ctor: Int8Array },
  F8_E5M2: { itemsize: 1, ctor: Uint8Array },
  F8_E4M3: { itemsize: 1, ctor: Uint8Array },
  I16: { itemsize: 2, ctor: Int16Array },
  U16: { itemsize: 2, ctor: Uint16Array },
  F16: { itemsize: 2, ctor: Uint16Array },
  BF16: { itemsize: 2, ctor: Uint16Array },
  I32: { itemsize: 4, ctor: Int32Array },
  U32: { itemsize: 4, ctor: Uint32Array },
  F32: { itemsize: 4, ctor: Float32Array },
  F64: { itemsize: 8, ctor: Float64Array },
  I64: { itemsize: 8, ctor: BigInt64Array },
  U64: { itemsize: 8, ctor: BigUint64Array },
};

export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.keys(DTYPES) as SafetensorsDtype[];

/** The reference implementation's cap on the header length (tensor.rs MAX_HEADER_SIZE). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

function isDtype(v: unknown): v is SafetensorsDtype {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, v);
}



// ---------------------------------------------------------------------------
// A small JSON parser that reports duplicate keys (JSON.parse keeps the last one).

class JsonNumber {
  constructor(readonly text: string) {}
}
type Json = null | boolean | string | JsonNumber | Json[] | JsonObject;
/** Objects keep their keys in order, and `__proto__` is just a key. */
type JsonObject = Map<string, Json>;

const MAX_DEPTH = 16;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class JsonParser {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly where: string,
  ) {}

  private fail(what: string, detail: Record<string, unknown> = {}): never {
    throw new GenaugError('E_FORMAT', `${this.where}: header is not valid JSON: ${what} at character ${this.pos}`, {
      path: this.where,
      field: 'header',
      ...detail,
    });
  }

  private ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  parseDocument(): Json {
    const v = this.value(0, 'the header');
    this.ws();
    if (this.pos !== this.s.length) this.fail('unexpected characters after the top-level object');
    return v;
  }

  private value(depth: number, context: string): Json {
    this.ws();
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const c = this.s[this.pos];
    switch (c) {
      case '{':
        return this.object(depth, context);
      case '[':
        return this.array(depth, context);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default: {
        NUMBER.lastIndex = this.pos;
        const m = NUMBER.exec(this.s);
        if (!m) this.fail(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
        this.pos += m[0].length;
        return new JsonNumber(m[0]);
      }
    }
  }

  private literal<T extends Json>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail(`unexpected character ${JSON.stringify(this.s[this.pos])}`);
    this.pos += word.length;
    return v;
  }

  private string(): string {
    const s = this.s;
    const start = this.pos;
    this.pos++; // opening quote
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        try {
          return JSON.parse(s.slice(start, this.pos)) as string;
        } catch {
          this.pos = start;
          this.fail('invalid escape in a string');
        }
      }
      if (c < 0x20) this.fail('control character in a string');
      this.pos += c === 0x5c ? 2 : 1; // a backslash escapes the next character
    }
    this.pos = start;
    return this.fail('unterminated string');
  }

  private array(depth: number, context: string): Json[] {
    this.pos++;
    const out: Json[] = [];
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1, context));
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  private object(depth: number, context: string): JsonObject {
    this.pos++;
    const out: JsonObject = new Map();
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expected a quoted key');
      const keyPos = this.pos;
      const key = this.string();
      if (out.has(key)) {
        this.pos = keyPos;
        throw new GenaugError(
          'E_FORMAT',
          `${this.where}: duplicate key ${JSON.stringify(key)} in ${context} (at character ${keyPos}); a safetensors header must not repeat keys`,
          { path: this.where, field: key },
        );
      }
      this.ws();
      if (this.s[this.pos] !== ':') this.fail("expected ':' after a key");
      this.pos++;
      out.set(key, this.value(depth + 1, depth === 0 ? (key === METADATA_KEY ? '__metadata__' : `tensor ${JSON.stringify(key)}`) : context));
      this.ws();
      const c = this.s[this.pos];
      this.pos++;
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Reading

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/** A JSON value as a message shows it: the number or string itself, else its kind. */
function shown(v: Json | undefined): string {
  if (v === undefined) return 'nothing';
  if (v instanceof JsonNumber) return v.text;
  if (v instanceof Map) return 'an object';
  if (Array.isArray(v)) return 'an array';
  return JSON.stringify(v);
}

/** A JSON integer >= 0 that is exactly representable. */
function nonNegativeInt(v: Json | undefined, path: string, where: string): number {
  if (v instanceof JsonNumber && /^(?:0|[1-9][0-9]*)$/.test(v.text)) {
    const n = Number(v.text);
    if (Number.isSafeInteger(n)) return n;
    throw new GenaugError('E_FORMAT', `${path}: ${where} is ${v.text}, which is too large`, { path });
  }
  throw new GenaugError('E_FORMAT', `${path}: ${where} must be a non-negative integer, got ${shown(v)}`, { path });
}

function entryOf(name: string, v: Json, path: string): Entry {
  const t = `tensor ${JSON.stringify(name)}`;
  if (!(v instanceof Map)) {
    throw new GenaugError('E_FORMAT', `${path}: ${t} must be an object {dtype, shape, data_offsets}, got ${shown(v)}`, {
      path,
      tensor: name,
    });
  }
  for (const key of v.keys()) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw new GenaugError('E_FORMAT', `${path}: ${t} has an unexpected field ${JSON.stringify(key)} (expected dtype, shape, data_offsets)`, {
        path,
        tensor: name,
        field: key,
      });
    }
  }
  const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => !v.has(k));
  if (missing.length > 0) {
    throw new GenaugError('E_FORMAT', `${path}: ${t} has no ${missing.join(', ')} field`, { path, tensor: name, field: missing[0] });
  }
  const dtype = v.get('dtype');
  if (!isDtype(dtype)) {
    throw new GenaugError('E_DTYPE', `${path}: ${t} has dtype ${shown(dtype)}, which is not one of ${SAFETENSORS_DTYPES.join(', ')}`, {
      path,
      tensor: name,
      field: 'dtype',
    });
  }
  const rawShape = v.get('shape');
  if (!Array.isArray(rawShape)) {
    throw new GenaugError('E_FORMAT', `${path}: ${t} field shape must be an array of integers, got ${shown(rawShape)}`, { path, tensor: name, field: 'shape' });
  }
  const shape = rawShape.map((d, i) => nonNegativeInt(d, path, `${t} shape[${i}]`));
  const offsets = v.get('data_offsets');
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new GenaugError('E_FORMAT', `${path}: ${t} field data_offsets must be [begin, end], got ${Array.isArray(offsets) ? `${offsets.length} values` : shown(offsets)}`, { path, tensor: name, field: 'data_offsets' });
  }
  const begin = nonNegativeInt(offsets[0], path, `${t} data_offsets[0]`);
  const end = nonNegativeInt(offsets[1], path, `${t} data_offsets[1]`);
  if (end < begin) {
    throw new GenaugError('E_FORMAT', `${path}: ${t} data_offsets [${begin}, ${end}] end before they begin`, {
      path,
      tensor: name,
      field: 'data_offsets',
    });
  }
  const count = shape.reduce((a, d) => a * BigInt(d), 1n);
  const need = count * BigInt(DTYPES[dtype].itemsize);
  if (need !== BigInt(end - begin)) {
    throw new GenaugError(
      'E_SHAPE',
      `${path}: ${t} data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape [${shape.join(', ')}] of ${dtype} needs ${need}`,
      { path, tensor: name, field: 'data_offsets' },
    );
  }
  return { name, dtype, shape, count: Number(count), begin, end };
}

function metadataOf(v: Json, path: string): Record<string, string> {
  if (!(v instanceof Map)) {
    throw new GenaugError('E_FORMAT', `${path}: __metadata__ must be an object of strings, got ${shown(v)}`, {
      path,
      field: METADATA_KEY,
    });
  }
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, val] of v) {
    if (typeof val !== 'string') {
      throw new GenaugError('E_FORMAT', `${path}: __metadata__ field ${JSON.stringify(k)} must be a string, got ${shown(val)}`, {
        path,
        field: `${METADATA_KEY}.${k}`,
      });
    }
    out[k] = val;
  }
  return out;
}

/** Checks that the tensors tile [0, bufferBytes) exactly. */
function checkLayout(entries: Entry[], bufferBytes: number, path: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    const t = `tensor ${JSON.stringify(e.name)}`;
    if (e.begin > at) {
      throw new GenaugError(
        'E_FORMAT',
        `${path}: ${t} data_offsets [${e.begin}, ${e.end}] leave a hole of ${e.begin - at} bytes at buffer offset ${at}${prev ? ` after tensor ${JSON.stringify(prev.name)}` : ''}`,
        { path, tensor: e.name, field: 'data_offsets' },
      );
    }
    if (e.begin < at) {
      throw new GenaugError(
        'E_FORMAT',
        `${path}: ${t} data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(prev?.name)}, which ends at ${at}`,
        { path, tensor: e.name, field: 'data_offsets' },
      );
    }
    if (e.end > bufferBytes) {
      throw new GenaugError(
        'E_FORMAT',
        `${path}: ${t} data_offsets [${e.begin}, ${e.end}] run past the end of the ${bufferBytes}-byte buffer (truncated file?)`,
        { path, tensor: e.name, field: 'data_offsets' },
      );
    }
    at = e.end;
    prev = e;
  }
  if (at !== bufferBytes) {
    throw new GenaugError(
      'E_FORMAT',
      `${path}: the last ${bufferBytes - at} bytes of the ${bufferBytes}-byte buffer belong to no tensor (data_offsets end at ${at})`,
      { path, field: 'data_offsets' },
    );
  }
}

/** Parses and validates a header, given the file's total size. */
function parseHeader(headerBytes: Uint8Array, bufferBytes: number, path: string): { metadata: Record<string, string>; entries: Entry[] } {
  if (headerBytes[0] !== 0x7b) {
    throw new GenaugError('E_FORMAT', `${path}: the header must be a JSON object starting with '{'`, { path, field: 'header' });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new GenaugError('E_FORMAT', `${path}: the header is not valid UTF-8`, { path, field: 'header' });
  }
  const doc = new JsonParser(text, path).parseDocument();
  if (!(doc instanceof Map)) throw new GenaugError('E_FORMAT', `${path}: the header must be a JSON object`, { path, field: 'header' });
  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const entries: Entry[] = [];
  for (const [key, v] of doc) {
    if (key === METADATA_KEY) metadata = metadataOf(v, path);
    else entries.push(entryOf(key, v, path));
  }
  checkLayout(entries, bufferBytes, path);
  return { metadata, entries };
}

/** Checks the file size and the header length read from its first 8 bytes; returns the header length. */
function headerLength(n: bigint, size: number, path: string): number {
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new GenaugError(
      'E_FORMAT',
      `${path}: header length ${n} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`,
      { path, field: 'header length' },
    );
  }
  const headerLen = Number(n);
  if (8 + headerLen > size) {
    throw new GenaugError('E_FORMAT', `${path}: header length ${headerLen} is larger than the ${size - 8} bytes after it (truncated file?)`, {
      path,
      field: 'header length',
    });
  }
  if (headerLen === 0) {
    throw new GenaugError('E_FORMAT', `${path}: the header is empty; it must be a JSON object starting with '{'`, { path, field: 'header' });
  }
  return headerLen;
}

function checkSize(size: number, path: string): void {
  if (size < 8) {
    throw new GenaugError('E_FORMAT', `${path}: not a safetensors file: ${size} bytes is too short for the 8-byte header length`, {
      path,
      field: 'header length',
    });
  }
}

/** A fresh typed array for a tensor's elements. */
function allocate(e: Entry, path: string): SafetensorsTypedArray {
  try {
    return new DTYPES[e.dtype].ctor(e.count);
  } catch (err) {
    if (err instanceof RangeError) {
      throw new GenaugError('E_LIMIT', `${path}: tensor ${JSON.stringify(e.name)} (${e.count} elements) does not fit in one typed array`, {
        path,
        tensor: e.name,
      });
    }
    throw err;
  }
}

/** The tensor, once its bytes are in `data`: BOOL values must be 0 or 1. */
function tensorOf(e: Entry, data: SafetensorsTypedArray, path: string): SafeTensor {
  if (e.dtype === 'BOOL') {
    const bad = (data as Uint8Array).findIndex((b) => b > 1);
    if (bad >= 0) {
      throw new GenaugError('E_FORMAT', `${path}: tensor ${JSON.stringify(e.name)} is BOOL but element ${bad} is ${(data as Uint8Array)[bad]} (not 0 or 1)`, {
        path,
        tensor: e.name,
      });
    }
  }
  return { dtype: e.dtype, shape: e.shape, data } as SafeTensor;
}

/**
 * Reads a safetensors file, validating its header strictly. Every tensor's data
 * is copied into a fresh typed array of its dtype (see SafetensorsDataTypes).
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  requireLittleEndianHost('safetensors');
  const { fh, size } = await openForReading(path);
  try {
    checkSize(size, path);
    const lenBytes = new Uint8Array(8);
    await readExactly(fh, lenBytes, 0, path, path);
    const headerLen = headerLength(new DataView(lenBytes.buffer).getBigUint64(0, true), size, path);
    const headerBytes = new Uint8Array(headerLen);
    await readExactly(fh, headerBytes, 8, path, path);
    const bufferStart = 8 + headerLen;
    const { metadata, entries } = parseHeader(headerBytes, size - bufferStart, path);
    const tensors = new Map<string, SafeTensor>();
    for (const e of entries) {
      const data = allocate(e, path);
      await readExactly(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), bufferStart + e.begin, path, path);
      tensors.set(e.name, tensorOf(e, data, path));
    }
    return { metadata, tensors };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * The same reading and checks as readSafetensors, on the bytes of a whole
 * file held in memory (`path` names it in messages). Tensors are copies.
 */
export function decodeSafetensors(bytes: Uint8Array, path = '<safetensors>'): SafetensorsFile {
  requireLittleEndianHost('safetensors');
  checkSize(bytes.length, path);
  const headerLen = headerLength(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true), bytes.length, path);
  const bufferStart = 8 + headerLen;
  const { metadata, entries } = parseHeader(bytes.subarray(8, bufferStart), bytes.length - bufferStart, path);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const data = allocate(e, path);
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes.subarray(bufferStart + e.begin, bufferStart + e.end));
    tensors.set(e.name, tensorOf(e, data, path));
  }
  return { metadata, tensors };
}

// ---------------------------------------------------------------------------
// Writing

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The bytes of a safetensors file: [8-byte length + header, tensor data...].
 * Tensors are laid out in name order (UTF-8 byte order); the data chunks are
 * views of the given arrays, not copies.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafeTensor> | Readonly<Record<string, SafeTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array[] {
  return encode(tensors, metadata, 'encodeSafetensors');
}

function encode(
  tensors: ReadonlyMap<string, SafeTensor> | Readonly<Record<string, SafeTensor>>,
  metadata: Readonly<Record<string, string>> | undefined,
  where: string,
): Uint8Array[] {
  requireLittleEndianHost('safetensors');
  if (typeof tensors !== 'object' || tensors === null) {
    throw new GenaugError('E_TYPE', `${where}: tensors must be a Map or an object of {dtype, shape, data}, got ${typeName(tensors)}`);
  }
  const list: [string, SafeTensor][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  list.sort((a, b) => utf8Compare(a[0], b[0]));
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new GenaugError('E_TYPE', `${where}: metadata must be an object of strings, got ${typeName(metadata)}`);
    }
    const fields = Object.entries(metadata).sort((a, b) => utf8Compare(a[0], b[0]));
    for (const [k, v] of fields) {
      if (typeof v !== 'string') throw new GenaugError('E_TYPE', `${where}: __metadata__ field ${JSON.stringify(k)} must be a string, got ${typeName(v)}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    const what = `${where}: tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) throw new GenaugError('E_FORMAT', `${where}: ${METADATA_KEY} is reserved and cannot be a tensor name`);
    if (typeof t !== 'object' || t === null) throw new GenaugError('E_TYPE', `${what} must be {dtype, shape, data}, got ${typeName(t)}`);
    const { dtype, shape, data } = t as { dtype: unknown; shape: unknown; data: unknown };
    if (!isDtype(dtype)) throw new GenaugError('E_DTYPE', `${what}: dtype '${String(dtype)}' is not one of ${SAFETENSORS_DTYPES.join(', ')}`);
    const { ctor, itemsize } = DTYPES[dtype];
    if (!(data instanceof ctor)) throw new GenaugError('E_DTYPE', `${what}: dtype ${dtype} needs its data in a ${ctor.name}, got ${typeName(data)}`);
    if (!Array.isArray(shape)) throw new GenaugError('E_TYPE', `${what}: shape must be an array of integers, got ${typeName(shape)}`);
    let count = 1;
    shape.forEach((d: unknown, i) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw new GenaugError('E_SHAPE', `${what}: shape[${i}] must be a non-negative integer, got ${String(d)}`);
      }
      count *= d;
    });
    if (count !== data.length) {
      throw new GenaugError('E_SHAPE', `${what}: shape [${shape.join(', ')}] holds ${count} elements but the data has ${data.length}`);
    }
    if (dtype === 'BOOL') {
      const bad = (data as Uint8Array).findIndex((b) => b > 1);
      if (bad >= 0) throw new GenaugError('E_RANGE', `${what}: a BOOL tensor may hold only 0 and 1, but element ${bad} is ${(data as Uint8Array)[bad]}`);
    }
    const bytes = count * itemsize;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);
  return [head, ...chunks];
}

/** Writes tensors (and optional string metadata) to a safetensors file, atomically. */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, SafeTensor> | Readonly<Record<string, SafeTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, encode(tensors, metadata, path));
}
