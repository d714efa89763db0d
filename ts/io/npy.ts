/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0; numpy/lib/format.py).
 *
 * Reading: the header is parsed by the native parser (native/core/npy.cc),
 * which is strict and never trusts an unchecked length; this module checks the
 * file size against the header (strictly: no missing and no extra bytes) and
 * copies the data into a fresh, aligned typed array.
 *
 * Writing: the exact bytes numpy writes (C order, little-endian, header padded
 * so the data starts at a multiple of 64), always atomically.
 */
import type { FileHandle } from 'node:fs/promises';

import type { NativeAddon, NativeNpyHeader } from '../native/addon.js';
import { native } from '../native/load.js';
import { GenaugError } from '../native/errors.js';
import { checkInt, type Matrix } from '../native/validate.js';
import { AtomicWriter, openForReading, readExactly, requireLittleEndianHost, typeName, writeFileAtomic } from './atomic.js';

// ---------------------------------------------------------------------------
// Data types

export type NpyDtype =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool';

/** The typed array that holds each dtype (float16 as its raw IEEE bits, bool as 0/1 bytes). */
export interface NpyDataTypes {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

export type NpyTypedArray = NpyDataTypes[NpyDtype];

/** An array read from or written to a .npy file; `dtype` always describes `data`. */
export type NpyArray = { [K in NpyDtype]: { dtype: K; shape: number[]; data: NpyDataTypes[K] } }[NpyDtype];

interface TypedArrayCtor {
  new (length: number): NpyTypedArray;
  readonly name: string;
}

interface DtypeInfo {
  descr: string;
  itemsize: number;
  ctor: TypedArrayCtor;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  float32: { descr: '<f4', itemsize: 4, ctor: Float32Array },
  float16: { descr: '<f2', itemsize: 2, ctor: Uint16Array },
  float64: { descr: '<f8', itemsize: 8, ctor: Float64Array },
  int8: { descr: '|i1', itemsize: 1, ctor: Int8Array },
  int16: { descr: '<i2', itemsize: 2, ctor: Int16Array },
  int32: { descr: '<i4', itemsize: 4, ctor: Int32Array },
  int64: { descr: '<i8', itemsize: 8, ctor: BigInt64Array },
  uint8: { descr: '|u1', itemsize: 1, ctor: Uint8Array },
  uint16: { descr: '<u2', itemsize: 2, ctor: Uint16Array },
  uint32: { descr: '<u4', itemsize: 4, ctor: Uint32Array },
  uint64: { descr: '<u8', itemsize: 8, ctor: BigUint64Array },
  bool: { descr: '|b1', itemsize: 1, ctor: Uint8Array },
};

export const NPY_DTYPES: readonly NpyDtype[] = Object.keys(DTYPES) as NpyDtype[];

function isNpyDtype(v: unknown): v is NpyDtype {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, v);
}

function dtypeInfo(dtype: NpyDtype): DtypeInfo {
  return DTYPES[dtype];
}

/** The dtype a typed array is written as when none is given (Uint16Array is taken as float16 bits). */
function inferDtype(a: unknown): NpyDtype | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Uint16Array) return 'float16';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof BigUint64Array) return 'uint64';
  return undefined;
}



function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Python's repr of a shape tuple: `()`, `(5,)`, `(2, 3)`. */
export function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

// ---------------------------------------------------------------------------
// float16 <-> float32

let halfTable: Uint32Array | undefined;

/** float32 bit pattern of a float16 bit pattern (exact: every half is a float). NaN payloads and signs are kept. */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, nan
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // +-0
  // Subnormal: value = mant * 2^-24. Shift the leading one up to bit 10.
  let e = 1;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e -= 1;
  }
  return (sign | ((e + 112) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

function table(): Uint32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloatBits(h);
  }
  return halfTable;
}

/** Converts IEEE float16 bit patterns to float32 values, exactly (subnormals, infinities and NaNs included). */
export function float16BitsToFloat32(bits: Uint16Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(bits.length);
  if (dst.length !== bits.length) {
    throw new GenaugError('E_SHAPE', `out has ${dst.length} elements but bits has ${bits.length}`);
  }
  const t = table();
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < bits.length; i++) d32[i] = t[bits[i] as number] as number;
  return dst;
}

/** float16 bit pattern of a float32 bit pattern, rounding to nearest, ties to even (as numpy's astype(float16)). */
function floatBitsToHalfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00; // inf
    const top = mant >>> 13; // NaN: keep the top payload bits, as numpy does, but never turn it into inf
    return sign | 0x7c00 | (top === 0 ? 1 : top);
  }
  const he = exp - 112; // the half's biased exponent
  if (he >= 0x1f) return sign | 0x7c00; // overflow
  if (he <= 0) {
    // Result is subnormal or zero: round (1.mant * 2^(exp-127)) / 2^-24 to an integer.
    const shift = 14 - he;
    if (shift > 24) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (r & 1) === 1)) r += 1;
    return sign | r; // r may carry into the smallest normal, which is the right encoding
  }
  let r = (he << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r += 1; // a carry into the exponent (and to inf) is correct
  return sign | r;
}

/**
 * Converts float32 values to IEEE float16 bit patterns the way numpy's
 * astype(np.float16) does: round to nearest, ties to even; overflow gives
 * infinity; NaNs keep their sign and the top bits of their payload.
 */
export function float32ToFloat16Bits(values: Float32Array, out?: Uint16Array): Uint16Array {
  const dst = out ?? new Uint16Array(values.length);
  if (dst.length !== values.length) {
    throw new GenaugError('E_SHAPE', `out has ${dst.length} elements but values has ${values.length}`);
  }
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < src.length; i++) dst[i] = floatBitsToHalfBits(src[i] as number);
  return dst;
}

// ---------------------------------------------------------------------------
// Reading

/** A parsed .npy header (see NativeNpyHeader), with the dtype narrowed to what genaug reads. */
export type NpyHeader = Omit<NativeNpyHeader, 'dtype'> & { dtype: NpyDtype };

export interface NpyReadOptions {
  /** What to call the file in messages (the path is always named too). */
  name?: string;
}

function labelOf(path: string, name: string | undefined): string {
  return name && name !== path ? `${name} (${path})` : path;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const FIRST_READ = 256;

/** Parses the header of an open file of `size` bytes and checks the file size against it. */
async function headerOf(fh: FileHandle, size: number, label: string, path: string): Promise<NpyHeader> {
  if (size < 10) {
    const head = new Uint8Array(size);
    await readExactly(fh, head, 0, label, path);
    const magicPrefix = size > 0 && head.every((b, i) => i >= 6 || b === MAGIC[i]);
    throw new GenaugError(
      'E_FORMAT',
      magicPrefix
        ? `${label}: truncated .npy header: the file has only ${size} bytes`
        : `${label}: not an .npy file (${size === 0 ? 'it is empty' : 'it does not start with the \\x93NUMPY magic'})`,
      { path, field: 'magic' },
    );
  }
  let want = Math.min(size, FIRST_READ);
  for (let attempt = 0; attempt < 4; attempt++) {
    const bytes = new Uint8Array(want);
    await readExactly(fh, bytes, 0, label, path);
    let r: ReturnType<NativeAddon['parseNpyHeader']>;
    try {
      r = native().parseNpyHeader(bytes, label);
    } catch (e) {
      // The parser's message already names the file; add it to the detail too.
      if (e instanceof GenaugError && e.detail === undefined) throw new GenaugError(e.code, e.message, { path }, { cause: e });
      throw e;
    }
    if ('needed' in r) {
      if (r.needed > size) {
        throw new GenaugError(
          'E_FORMAT',
          `${label}: truncated .npy header: HEADER_LEN announces ${r.needed} header bytes but the file has only ${size}`,
          { path, field: 'HEADER_LEN' },
        );
      }
      if (r.needed <= want) break; // cannot happen with a consistent parser
      want = r.needed;
      continue;
    }
    if (!isNpyDtype(r.dtype)) {
      throw new GenaugError('E_INTERNAL', `${label}: the header parser returned an unknown dtype '${r.dtype}'`, { path });
    }
    const header: NpyHeader = { ...r, dtype: r.dtype, shape: [...r.shape] };
    const expected = header.dataOffset + header.dataBytes;
    const found = size - header.dataOffset;
    const what = `shape ${shapeRepr(header.shape)} of '${header.descr}'`;
    if (size < expected) {
      throw new GenaugError(
        'E_FORMAT',
        `${label}: truncated: expected ${header.dataBytes} data bytes, found ${found} (${what})`,
        { path, field: 'data', expected: header.dataBytes, found },
      );
    }
    if (size > expected) {
      throw new GenaugError(
        'E_FORMAT',
        `${label}: expected ${header.dataBytes} data bytes, found ${found}: ${size - expected} extra bytes after the data (${what})`,
        { path, field: 'data', expected: header.dataBytes, found },
      );
    }
    return header;
  }
  throw new GenaugError('E_INTERNAL', `${label}: the .npy header parser kept asking for more bytes`, { path });
}

async function withNpy<T>(path: string, name: string | undefined, fn: (fh: FileHandle, h: NpyHeader, label: string) => Promise<T>): Promise<T> {
  const label = labelOf(path, name);
  const { fh, size } = await openForReading(path, label);
  try {
    const h = await headerOf(fh, size, label, path);
    return await fn(fh, h, label);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Reads and checks the header of an .npy file, reading only the header bytes.
 * Throws E_FORMAT when the file is not an .npy file, its header is malformed,
 * or its size does not match the header exactly; E_DTYPE for an unsupported or
 * big-endian dtype; E_IO when it cannot be read.
 */
export async function readNpyHeader(path: string, options: NpyReadOptions = {}): Promise<NpyHeader> {
  return withNpy(path, options.name, async (_fh, h) => h);
}

function allocate<T>(label: string, path: string, count: number, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof RangeError) {
      throw new GenaugError(
        'E_LIMIT',
        `${label}: ${count} elements do not fit in one JavaScript typed array; read it in slices with NpyRowReader`,
        { path },
        { cause: e },
      );
    }
    throw e;
  }
}

export interface NpyReadArrayOptions extends NpyReadOptions {
  /** Return float16 data as a Float32Array (dtype 'float32') instead of its raw bits in a Uint16Array. */
  convertFloat16?: boolean;
}

/** For an array stored in Fortran order: the C-order flat index of each Fortran-order flat index. */
function fortranToC(shape: readonly number[]): Float64Array {
  const total = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(total);
  const stride = shape.map((_, j) => shape.slice(j + 1).reduce((a, b) => a * b, 1));
  const at = new Array<number>(shape.length).fill(0);
  let c = 0;
  for (let f = 0; f < total; f++) {
    out[f] = c;
    // Fortran order: the first axis runs fastest.
    for (let j = 0; j < shape.length; j++) {
      at[j]!++;
      c += stride[j]!;
      if (at[j]! < shape[j]!) break;
      c -= at[j]! * stride[j]!;
      at[j] = 0;
    }
  }
  return out;
}

/** Element copies of `itemsize` bytes as whole words (no float conversion, so every bit pattern survives). */
function wordsOf(buf: Uint8Array, itemsize: number): { words: Uint8Array | Uint16Array | Uint32Array; per: number } {
  const w = Math.min(4, itemsize);
  const per = itemsize / w;
  const words = w === 4 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) : w === 2 ? new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2) : buf;
  return { words, per };
}

/**
 * The raw bytes of rows [start, start + count) of the first axis, in C order, whichever order the file
 * stores: a Fortran-order file (numpy's layout for a transposed array) is read column by column and
 * reordered, so every reader gives the same values for both layouts.
 */
async function readLeadingRows(fh: FileHandle, h: NpyHeader, start: number, count: number, label: string, path: string): Promise<Uint8Array> {
  const d0 = h.shape.length ? (h.shape[0] as number) : 1;
  const rest = d0 ? h.count / d0 : 0;
  const bytes = allocate(label, path, count * rest * h.itemsize, () => new Uint8Array(count * rest * h.itemsize));
  if (!h.fortranOrder || h.shape.length <= 1 || count === 0) {
    await readExactly(fh, bytes, h.dataOffset + start * rest * h.itemsize, label, path);
    return bytes;
  }
  // Stored as `rest` columns of d0 contiguous elements, the columns in Fortran order of the other axes.
  const cOf = fortranToC(h.shape.slice(1));
  const out = wordsOf(bytes, h.itemsize);
  const per = out.per;
  // Whole columns in blocks of ~16 MiB when most of each column is wanted, else only the wanted run of each.
  const wholeColumns = count * 2 >= d0;
  const colsPerRead = wholeColumns ? Math.max(1, Math.floor((16 * 2 ** 20) / (d0 * h.itemsize))) : 1;
  for (let f0 = 0; f0 < rest; f0 += colsPerRead) {
    const cols = Math.min(colsPerRead, rest - f0);
    const span = wholeColumns ? d0 : count;
    const buf = new Uint8Array(cols * span * h.itemsize);
    const first = wholeColumns ? f0 * d0 : f0 * d0 + start;
    await readExactly(fh, buf, h.dataOffset + first * h.itemsize, label, path);
    const src = wordsOf(buf, h.itemsize).words;
    const skip = wholeColumns ? start : 0;
    for (let k = 0; k < cols; k++) {
      const c = cOf[f0 + k] as number;
      for (let i = 0; i < count; i++) {
        const from = (k * span + skip + i) * per;
        const to = (i * rest + c) * per;
        for (let w = 0; w < per; w++) out.words[to + w] = src[from + w] as number;
      }
    }
  }
  return bytes;
}

/** Reads a whole .npy file into a fresh typed array of the file's dtype (see NpyDataTypes). */
export async function readNpy(path: string, options: NpyReadArrayOptions = {}): Promise<NpyArray> {
  requireLittleEndianHost('.npy');
  return withNpy(path, options.name, async (fh, h, label) => {
    const info = dtypeInfo(h.dtype);
    const raw = await readLeadingRows(fh, h, 0, h.shape.length ? (h.shape[0] as number) : 1, label, path);
    const View = info.ctor as unknown as new (buffer: ArrayBufferLike, offset: number, length: number) => NpyTypedArray;
    const data = new View(raw.buffer, raw.byteOffset, h.count);
    if (h.dtype === 'float16' && options.convertFloat16) {
      return { dtype: 'float32', shape: h.shape, data: float16BitsToFloat32(data as Uint16Array) };
    }
    return { dtype: h.dtype, shape: h.shape, data } as NpyArray;
  });
}

/** Checks that a header describes a float32 or float16 (N, D) matrix; returns [rows, dim]. */
function matrixShape(h: NpyHeader, label: string, path: string): [number, number] {
  if (h.dtype !== 'float32' && h.dtype !== 'float16') {
    throw new GenaugError(
      'E_DTYPE',
      `${label}: dtype is ${h.dtype} ('${h.descr}'); a matrix must be float32 ('<f4') or float16 ('<f2') (numpy: a.astype(np.float32))`,
      { path, field: 'descr', dtype: h.dtype },
    );
  }
  if (h.shape.length !== 2) {
    throw new GenaugError(
      'E_SHAPE',
      `${label}: shape is ${shapeRepr(h.shape)}; expected a 2-D array of shape (N, D)${h.shape.length === 1 ? ' (numpy: a.reshape(1, -1) for one row)' : ''}`,
      { path, field: 'shape', shape: h.shape },
    );
  }
  const [rows, dim] = h.shape as [number, number];
  if (dim < 1) {
    throw new GenaugError('E_SHAPE', `${label}: shape is ${shapeRepr(h.shape)}; a matrix needs at least one column (D >= 1)`, {
      path,
      field: 'shape',
      shape: h.shape,
    });
  }
  return [rows, dim];
}

/** Rows [start, start + count) of a float32 or float16 matrix as float32 values (C order, whatever the file's order). */
async function readAsFloat32(fh: FileHandle, h: NpyHeader, start: number, count: number, label: string, path: string): Promise<Float32Array> {
  const raw = await readLeadingRows(fh, h, start, count, label, path);
  if (h.dtype === 'float32') return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  return allocate(label, path, bits.length, () => float16BitsToFloat32(bits));
}

/**
 * Rows [start, start + count) of the first axis of any .npy array as raw bytes in C order (a Fortran-order
 * file reordered), for readers that stream a big array in slabs (bnstats' activations).
 */
export async function readNpyRows(fh: FileHandle, h: NpyHeader, start: number, count: number, label: string): Promise<Uint8Array> {
  return readLeadingRows(fh, h, start, count, label, label);
}

/** Reads a 2-D float32 or float16 .npy file as a float32 Matrix (float16 is converted exactly). */
export async function readMatrix(path: string, options: NpyReadOptions = {}): Promise<Matrix> {
  requireLittleEndianHost('.npy');
  return withNpy(path, options.name, async (fh, h, label) => {
    const [rows, dim] = matrixShape(h, label, path);
    return { data: await readAsFloat32(fh, h, 0, rows, label, path), rows, dim };
  });
}

/**
 * Reads rows of a 2-D float32/float16 .npy file on demand, for files larger
 * than memory. Each `readRows` reads only the bytes of those rows.
 */
export class NpyRowReader {
  readonly path: string;
  readonly header: NpyHeader;
  readonly rows: number;
  readonly dim: number;
  readonly dtype: 'float32' | 'float16';
  private fh: FileHandle | undefined;
  private readonly label: string;

  private constructor(path: string, label: string, fh: FileHandle, header: NpyHeader, rows: number, dim: number) {
    this.path = path;
    this.label = label;
    this.fh = fh;
    this.header = header;
    this.rows = rows;
    this.dim = dim;
    this.dtype = header.dtype as 'float32' | 'float16';
  }

  static async open(path: string, options: NpyReadOptions = {}): Promise<NpyRowReader> {
    requireLittleEndianHost('.npy');
    const label = labelOf(path, options.name);
    const { fh, size } = await openForReading(path, label);
    try {
      const h = await headerOf(fh, size, label, path);
      const [rows, dim] = matrixShape(h, label, path);
      return new NpyRowReader(path, label, fh, h, rows, dim);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Rows [start, start + count) as a float32 matrix. */
  async readRows(start: number, count: number): Promise<Matrix> {
    const fh = this.fh;
    if (!fh) throw new GenaugError('E_IO', `${this.label}: readRows() after close()`, { path: this.path });
    checkInt(start, `${this.label}: readRows start`, 0, this.rows);
    checkInt(count, `${this.label}: readRows count`, 0, this.rows - start);
    const data = await readAsFloat32(fh, this.header, start, count, this.label, this.path);
    return { data, rows: count, dim: this.dim };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------
// Writing

const ARRAY_ALIGN = 64;
/** numpy leaves room for the first axis to grow to this many digits (GROWTH_AXIS_MAX_DIGITS). */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** The reader's (and numpy < 2's) limit on dimensions. */
const MAX_DIMS = 32;

/**
 * Frames a header dictionary text the way numpy does (`_wrap_header`): magic,
 * version, HEADER_LEN, the text, spaces, and '\n' so that the data starts at a
 * multiple of 64. Version 1.0 when HEADER_LEN fits in 16 bits, else 2.0; 3.0
 * (UTF-8) when the text is not latin-1.
 */
export function wrapNpyHeader(dict: string): Uint8Array {
  // eslint-disable-next-line no-control-regex
  const latin1 = /^[\u0000-\u00ff]*$/.test(dict);
  const text = latin1 ? Uint8Array.from(dict, (c) => c.charCodeAt(0)) : new TextEncoder().encode(dict);
  const hlen = text.length + 1;
  let major = latin1 ? 1 : 3;
  let prefix = major === 1 ? 10 : 12;
  let padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
  if (major === 1 && hlen + padlen > 0xffff) {
    major = 2;
    prefix = 12;
    padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
  }
  const total = hlen + padlen;
  if (total > 0xffffffff) throw new GenaugError('E_LIMIT', `.npy header of ${total} bytes is too large`);
  const out = new Uint8Array(prefix + total);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, total, true);
  else dv.setUint32(8, total, true);
  out.set(text, prefix);
  out.fill(0x20, prefix + text.length, out.length - 1);
  out[out.length - 1] = 0x0a;
  return out;
}

/** The header numpy writes for a C-order array of this dtype and shape. */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  if (!isNpyDtype(dtype)) throw new GenaugError('E_DTYPE', `dtype '${String(dtype)}' is not one of ${NPY_DTYPES.join(', ')}`);
  checkShape(shape, 'shape');
  let dict = `{'descr': '${dtypeInfo(dtype).descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  return wrapNpyHeader(dict);
}

function checkShape(shape: unknown, name: string): number {
  if (!Array.isArray(shape)) throw new GenaugError('E_TYPE', `${name} must be an array of integers, got ${typeName(shape)}`);
  if (shape.length > MAX_DIMS) throw new GenaugError('E_SHAPE', `${name} has ${shape.length} dimensions; at most ${MAX_DIMS} are supported`);
  let count = 1;
  shape.forEach((d: unknown, i) => {
    checkInt(d, `${name}[${i}]`, 0);
    count *= d as number;
  });
  if (!Number.isSafeInteger(count)) throw new GenaugError('E_SHAPE', `${name} ${shapeRepr(shape as number[])} has too many elements`);
  return count;
}

export interface NpyWriteOptions {
  /**
   * The dtype to write. Defaults to the array's own type (Uint16Array is taken
   * as float16 bits). Needed for 'bool' (a Uint8Array of 0/1) and 'uint16'.
   */
  dtype?: NpyDtype;
}

function resolveDtype(array: unknown, option: unknown, what: string): NpyDtype {
  if (option !== undefined) {
    if (!isNpyDtype(option)) {
      throw new GenaugError('E_DTYPE', `${what}: dtype '${String(option)}' is not one of ${NPY_DTYPES.join(', ')}`);
    }
    const ctor = dtypeInfo(option).ctor;
    if (!(array instanceof ctor)) {
      throw new GenaugError('E_DTYPE', `${what}: dtype ${option} needs a ${ctor.name}, got ${typeName(array)}`);
    }
    return option;
  }
  const inferred = inferDtype(array);
  if (!inferred) {
    throw new GenaugError('E_DTYPE', `${what}: data must be a typed array (Float32Array, Uint16Array for float16, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array, ...), got ${typeName(array)}`);
  }
  return inferred;
}

function checkBool(data: Uint8Array, what: string): void {
  const bad = data.findIndex((v) => v > 1);
  if (bad >= 0) throw new GenaugError('E_RANGE', `${what}: a bool array may hold only 0 and 1, but element ${bad} is ${data[bad]}`);
}

/**
 * The bytes of an .npy file holding `array` (C order) with the given shape:
 * [header, data]. The data chunk is a view of `array`, not a copy.
 */
export function encodeNpy(array: NpyTypedArray, shape: readonly number[], options: NpyWriteOptions = {}): Uint8Array[] {
  return encode(array, shape, options, 'encodeNpy');
}

function encode(array: NpyTypedArray, shape: readonly number[], options: NpyWriteOptions, what: string): Uint8Array[] {
  requireLittleEndianHost('.npy');
  const dtype = resolveDtype(array, options.dtype, what);
  const count = checkShape(shape, `${what}: shape`);
  if (count !== array.length) {
    throw new GenaugError('E_SHAPE', `${what}: shape ${shapeRepr(shape)} holds ${count} elements but the data has ${array.length}`);
  }
  if (dtype === 'bool') checkBool(array as Uint8Array, what);
  return [npyHeader(dtype, shape), bytesOf(array)];
}

/** Writes `array` with the given shape to an .npy file, atomically, exactly as numpy.save would. */
export async function writeNpy(path: string, array: NpyTypedArray, shape: readonly number[], options: NpyWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, encode(array, shape, options, path));
}

/**
 * Streams the rows of a 2-D (rows, dim) array to an .npy file whose row count
 * is known up front. The file appears (atomically) at `close()`, which checks
 * that exactly `rows` rows were appended. `append` may be called again before
 * the previous call finished; rows land in call order. Do not modify an array
 * passed to `append` until its promise settles.
 */
export class NpyStreamWriter {
  readonly path: string;
  readonly dtype: NpyDtype;
  readonly rows: number;
  readonly dim: number;
  private writer: AtomicWriter;
  private written = 0;
  private readonly atMost: boolean;

  private constructor(path: string, dtype: NpyDtype, rows: number, dim: number, writer: AtomicWriter, atMost: boolean) {
    this.path = path;
    this.dtype = dtype;
    this.rows = rows;
    this.dim = dim;
    this.writer = writer;
    this.atMost = atMost;
  }

  /**
   * Opens the file for `rows` rows of `dim`. With `atMost`, `rows` is an upper
   * bound: close() writes the header with the number of rows appended (numpy's
   * header leaves room for the first axis to grow, so its length does not change).
   */
  static async create(path: string, dtype: NpyDtype, rows: number, dim: number, options: { atMost?: boolean } = {}): Promise<NpyStreamWriter> {
    requireLittleEndianHost('.npy');
    if (!isNpyDtype(dtype)) throw new GenaugError('E_DTYPE', `${path}: dtype '${String(dtype)}' is not one of ${NPY_DTYPES.join(', ')}`);
    checkInt(rows, 'rows', 0);
    checkInt(dim, 'dim', 1);
    const header = npyHeader(dtype, [rows, dim]);
    const writer = await AtomicWriter.open(path);
    try {
      await writer.write(header);
    } catch (e) {
      await writer.abort();
      throw e;
    }
    return new NpyStreamWriter(path, dtype, rows, dim, writer, options.atMost === true);
  }

  /** Rows appended so far. */
  get rowsWritten(): number {
    return this.written;
  }

  /** Appends whole rows (a typed array of the writer's dtype whose length is a multiple of dim). */
  async append(data: NpyTypedArray): Promise<void> {
    const what = `${this.path}: append`;
    if (!this.writer.isOpen) throw new GenaugError('E_IO', `${what} after close() or abort()`, { path: this.path });
    const ctor = dtypeInfo(this.dtype).ctor;
    if (!(data instanceof ctor)) {
      throw new GenaugError('E_DTYPE', `${what}: the file's dtype is ${this.dtype}, which needs a ${ctor.name}, got ${typeName(data)}`, {
        path: this.path,
      });
    }
    if (data.length % this.dim !== 0) {
      throw new GenaugError('E_SHAPE', `${what}: ${data.length} elements is not a whole number of rows of ${this.dim}`, { path: this.path });
    }
    const n = data.length / this.dim;
    if (this.written + n > this.rows) {
      throw new GenaugError(
        'E_SHAPE',
        `${what}: ${n} more rows would make ${this.written + n}, but the file was created for ${this.rows}`,
        { path: this.path },
      );
    }
    if (this.dtype === 'bool') checkBool(data as Uint8Array, what);
    this.written += n;
    await this.writer.write(bytesOf(data));
  }

  /** Checks that all rows were appended, then moves the file into place. On a short count the file is discarded. */
  async close(): Promise<void> {
    if (!this.writer.isOpen) throw new GenaugError('E_IO', `${this.path}: close() after close() or abort()`, { path: this.path });
    if (this.atMost && this.written !== this.rows) {
      const header = npyHeader(this.dtype, [this.written, this.dim]);
      if (header.length !== npyHeader(this.dtype, [this.rows, this.dim]).length) throw new GenaugError('E_INTERNAL', `${this.path}: the header changed length`);
      try {
        await this.writer.writeAt(header, 0);
      } catch (e) {
        await this.writer.abort();
        throw e;
      }
    } else if (this.written !== this.rows) {
      await this.writer.abort();
      throw new GenaugError(
        'E_SHAPE',
        `${this.path}: ${this.written} rows were appended, but the file was created for ${this.rows}; nothing was written`,
        { path: this.path, field: 'shape' },
      );
    }
    await this.writer.commit();
  }

  /** Discards the file. */
  async abort(): Promise<void> {
    await this.writer.abort();
  }
}
