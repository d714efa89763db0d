import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { AtomicWriter, writeFileAtomic } from '../ts/io/atomic.js';
import {
  encodeNpy,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  NPY_DTYPES,
  npyHeader,
  NpyRowReader,
  NpyStreamWriter,
  readMatrix,
  readNpy,
  readNpyHeader,
  wrapNpyHeader,
  writeNpy,
  type NpyDtype,
  type NpyTypedArray,
} from '../ts/io/npy.js';
import { GenaugError } from '../ts/native/errors.js';
import { caught, expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-npy-');
const fresh = tmp.fresh;

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * An .npy file built by hand, independently of the code under test: magic,
 * version, HEADER_LEN (u16 for 1.0, u32 for 2.0/3.0), the dict text, spaces and
 * '\n' up to a multiple of `align`, then the data.
 */
function handNpy(dict: string, data: Uint8Array, major = 1, align = 64): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const text = major === 3 ? new TextEncoder().encode(dict) : latin1(dict);
  let hlen = text.length + 1;
  hlen += (align - ((prefix + hlen) % align)) % align;
  const head = new Uint8Array(prefix + hlen).fill(0x20);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(head.buffer);
  if (major === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  head.set(text, prefix);
  head[head.length - 1] = 0x0a;
  return concat(head, data);
}

const dictOf = (descr: string, shape: string, fortran = 'False'): string =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;


function expectThrowsSync(fn: () => unknown, code: string, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GenaugError);
  expect((err as GenaugError).code, (err as GenaugError).message).toBe(code);
  for (const f of fragments) expect((err as GenaugError).message).toContain(f);
}

// Deterministic sample data for each dtype.
function sample(dtype: NpyDtype, n: number, seed = 1): NpyTypedArray {
  let s = seed * 2654435761;
  const next = (): number => {
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    return s;
  };
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * 1e3);
    case 'float64':
      return Float64Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * 1e300);
    case 'float16':
    case 'uint16':
      return Uint16Array.from({ length: n }, () => next() & 0xffff);
    case 'int8':
      return Int8Array.from({ length: n }, () => (next() & 0xff) - 128);
    case 'int16':
      return Int16Array.from({ length: n }, () => (next() & 0xffff) - 32768);
    case 'int32':
      return Int32Array.from({ length: n }, () => next() | 0);
    case 'uint32':
      return Uint32Array.from({ length: n }, () => next());
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => (i === 0 ? -(2n ** 63n) : BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next()))));
    case 'uint64':
      return BigUint64Array.from({ length: n }, (_, i) => (i === 0 ? 2n ** 64n - 1n : (BigInt(next()) << 32n) | BigInt(next())));
    case 'uint8':
      return Uint8Array.from({ length: n }, () => next() & 0xff);
    case 'bool':
      return Uint8Array.from({ length: n }, () => next() & 1);
  }
}

const DESCR: Record<NpyDtype, string> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  int8: '|i1',
  int16: '<i2',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  uint16: '<u2',
  uint32: '<u4',
  uint64: '<u8',
  bool: '|b1',
};

const pyRepr = (shape: number[]): string => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`);

describe('writeNpy header bytes', () => {
  it('matches hand-written bytes for a (2, 3) <f4 array', async () => {
    const path = fresh('hand.npy');
    await writeNpy(path, new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
    const got = new Uint8Array(await readFile(path));
    // The dict is 59 characters. numpy adds 21 - len('2') = 20 spaces so the
    // first axis can grow, then pads so that 10 (magic, version, HEADER_LEN) +
    // 79 + 1 ('\n') reaches 128: 38 more spaces. HEADER_LEN = 128 - 10 = 118 = 'v'.
    const header =
      "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(20 + 38) + '\n';
    expect(header.length).toBe(128);
    // 0, 1, 2, 3, 4, 5 as little-endian IEEE float32.
    const data = [
      [0x00, 0x00, 0x00, 0x00],
      [0x00, 0x00, 0x80, 0x3f],
      [0x00, 0x00, 0x00, 0x40],
      [0x00, 0x00, 0x40, 0x40],
      [0x00, 0x00, 0x80, 0x40],
      [0x00, 0x00, 0xa0, 0x40],
    ].flat();
    expect(Buffer.from(got).toString('latin1', 0, 128)).toBe(header);
    expect([...got.subarray(128)]).toEqual(data);
    expect(got.length).toBe(128 + 24);
  });

  it('follows the format rules for every dtype and shape', () => {
    const shapes = [[], [0], [5], [1, 7], [7, 1], [0, 3], [2, 3, 4], [123456789012, 0], [1, 1, 1, 1, 1, 1, 1, 1]];
    for (const dtype of NPY_DTYPES) {
      for (const shape of shapes) {
        const h = npyHeader(dtype, shape);
        expect([...h.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
        const hlen = (h[8] as number) | ((h[9] as number) << 8);
        expect(hlen).toBe(h.length - 10);
        expect(h.length % 64).toBe(0);
        expect(h[h.length - 1]).toBe(0x0a);
        const text = Buffer.from(h).toString('latin1', 10, h.length - 1);
        const dict = dictOf(DESCR[dtype], pyRepr(shape));
        expect(text.startsWith(dict)).toBe(true);
        const pad = text.slice(dict.length);
        expect(pad).toMatch(/^ *$/);
        // Spare room for the first axis to grow to 21 digits.
        if (shape.length > 0) expect(pad.length).toBeGreaterThanOrEqual(21 - String(shape[0]).length);
        expect(pad.length).toBeLessThan(21 + 64);
      }
    }
  });

  it('switches to version 2.0 only when HEADER_LEN does not fit in 16 bits', () => {
    const small = wrapNpyHeader(dictOf('<f4', '(1,)'));
    expect(small[6]).toBe(1);
    const big = wrapNpyHeader(dictOf('<f4', '(1,)') + ' '.repeat(70000));
    expect([...big.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
    const hlen = new DataView(big.buffer, big.byteOffset).getUint32(8, true);
    expect(hlen).toBe(big.length - 12);
    expect(big.length % 64).toBe(0);
    expect(big[big.length - 1]).toBe(0x0a);
  });

  it('encodeNpy returns the header and a view of the data (no copy)', () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const [header, data] = encodeNpy(a, [2, 2]);
    expect(header).toEqual(npyHeader('float32', [2, 2]));
    expect(data?.buffer).toBe(a.buffer);
  });

  it('rejects bad arguments', () => {
    expectThrowsSync(() => encodeNpy(new Float32Array(6), [4, 2]), 'E_SHAPE', '(4, 2)', '6');
    expectThrowsSync(() => encodeNpy(new Float32Array(2), [2], { dtype: 'float64' }), 'E_DTYPE', 'Float64Array', 'Float32Array');
    expectThrowsSync(() => encodeNpy(new Uint8Array([0, 1, 2]), [3], { dtype: 'bool' }), 'E_RANGE', 'element 2');
    expectThrowsSync(() => encodeNpy(new Float32Array(1), new Array<number>(33).fill(1)), 'E_SHAPE', '33');
    expectThrowsSync(() => encodeNpy([1, 2] as unknown as Float32Array, [2]), 'E_DTYPE');
    expectThrowsSync(() => encodeNpy(new Float32Array(2), [-2]), 'E_RANGE');
  });
});

describe('npy round trips', () => {
  const shapes = [[0, 3], [1, 6], [6, 1], [3, 4], [7], [0], [], [2, 3, 4]];
  for (const dtype of NPY_DTYPES) {
    it(`${dtype}: every shape`, async () => {
      for (const shape of shapes) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = sample(dtype, n, n + 1);
        const path = fresh(`${dtype}.npy`);
        await writeNpy(path, data, shape, { dtype });
        const back = await readNpy(path);
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(shape);
        expect(back.data.constructor).toBe(data.constructor);
        expect(bytesOf(back.data)).toEqual(bytesOf(data));
        const h = await readNpyHeader(path);
        expect(h).toMatchObject({ major: 1, minor: 0, descr: DESCR[dtype], dtype, fortranOrder: false, shape, count: n });
        expect(h.dataOffset % 64).toBe(0);
      }
    });
  }

  it('infers the dtype from the typed array', async () => {
    const path = fresh('infer.npy');
    await writeNpy(path, new Uint16Array([0x3c00]), [1]);
    expect((await readNpyHeader(path)).descr).toBe('<f2');
    await writeNpy(path, new BigInt64Array([5n]), [1]);
    expect((await readNpyHeader(path)).descr).toBe('<i8');
  });

  it('converts float16 to float32 on request', async () => {
    const path = fresh('half.npy');
    await writeNpy(path, new Uint16Array([0x3c00, 0xc000]), [2]);
    const raw = await readNpy(path);
    expect(raw.dtype).toBe('float16');
    expect(raw.data).toEqual(new Uint16Array([0x3c00, 0xc000]));
    const conv = await readNpy(path, { convertFloat16: true });
    expect(conv.dtype).toBe('float32');
    expect(conv.data).toEqual(new Float32Array([1, -2]));
  });

  it('writes atomically and leaves no temporary files', async () => {
    const sub = join(tmp.dir(), 'atomic-npy');
    await mkdir(sub);
    await writeNpy(join(sub, 'a.npy'), new Float32Array(4), [2, 2]);
    await writeNpy(join(sub, 'a.npy'), new Float32Array(6), [2, 3]);
    expect(await readdir(sub)).toEqual(['a.npy']);
    expect((await readNpyHeader(join(sub, 'a.npy'))).shape).toEqual([2, 3]);
  });
});

describe('reading files written by hand', () => {
  it('reads version 2.0 and 3.0 files', async () => {
    const values = new Float64Array([1.5, -2.25, 1e-300]);
    for (const major of [2, 3]) {
      const path = fresh(`v${major}.npy`);
      const file = handNpy(dictOf('<f8', '(3,)'), bytesOf(values), major);
      await writeFile(path, file);
      const a = await readNpy(path);
      expect(a.dtype).toBe('float64');
      expect(a.data).toEqual(values);
      const h = await readNpyHeader(path);
      expect(h.major).toBe(major);
      expect(h.dataOffset).toBe(file.length - 24);
      expect(h.dataOffset % 64).toBe(0);
    }
  });

  it('reads a v2.0 header longer than 64 KiB', async () => {
    const path = fresh('v2big.npy');
    await writeFile(path, handNpy(dictOf('<i4', '(2,)') + ' '.repeat(70000), bytesOf(new Int32Array([7, -7])), 2));
    const a = await readNpy(path);
    expect(a.data).toEqual(new Int32Array([7, -7]));
  });

  it('copies data at an unaligned offset into an aligned array', async () => {
    // Alignment 1: the data starts right after '\n', at an odd offset.
    const values = new Float64Array([Math.PI, -0, Infinity]);
    const file = handNpy(dictOf('<f8', '(3,)'), bytesOf(values), 1, 1);
    const path = fresh('unaligned.npy');
    await writeFile(path, file);
    const h = await readNpyHeader(path);
    expect(h.dataOffset % 8).not.toBe(0);
    const a = await readNpy(path);
    expect(a.data.byteOffset % 8).toBe(0);
    expect(a.data).toEqual(values);
    expect(Object.is((a.data as Float64Array)[1], -0)).toBe(true);
  });

  it('reads the float16 values exactly (0, -0, 1, -2, 65504, 2^-24, subnormals, inf, nan)', async () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x8000, -0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x0400, 2 ** -14], // smallest normal
      [0x3555, 0.333251953125],
      [0x3bff, 0.99951171875],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x7e00, NaN],
    ];
    const bits = Uint16Array.from(cases, (c) => c[0]);
    const path = fresh('f16.npy');
    await writeFile(path, handNpy(dictOf('<f2', `(${cases.length}, 1)`), bytesOf(bits)));
    const m = await readMatrix(path);
    expect(m.rows).toBe(cases.length);
    expect(m.dim).toBe(1);
    cases.forEach(([, want], i) => expect(Object.is(m.data[i], want), `case ${i}: ${m.data[i]} vs ${want}`).toBe(true));
    expect(float16BitsToFloat32(bits)).toEqual(m.data);
  });
});

describe('float16 conversions', () => {
  it('half -> float -> half is the identity on all 65536 patterns (NaNs stay NaN)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = float16BitsToFloat32(all);
    const back = float32ToFloat16Bits(f);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(f[i])) {
        expect(((back[i] as number) & 0x7c00) === 0x7c00 && ((back[i] as number) & 0x3ff) !== 0).toBe(true);
      } else if (back[i] !== i) {
        expect.fail(`0x${i.toString(16)} came back as 0x${(back[i] as number).toString(16)}`);
      }
    }
  });

  it('float -> half rounds to nearest even and overflows to infinity', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff], // below the midpoint to 65536
      [65520, 0x7c00], // the midpoint rounds to even: infinity
      [1e10, 0x7c00],
      [-1e10, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 (x 2^-24): even is 2
      [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00], // tie: stays at 1 (even)
      [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds up to even
      [1023 * 2 ** -24 + 2 ** -25, 0x0400], // rounds up into the smallest normal
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    const got = float32ToFloat16Bits(Float32Array.from(cases, (c) => c[0]));
    cases.forEach(([x, want], i) => expect(got[i], `${x}`).toBe(want));
    const nan = float32ToFloat16Bits(new Float32Array([NaN]))[0] as number;
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });
});

describe('readMatrix', () => {
  it('reads float32 and float16 (N, D) files, including 0 rows, 1 x N and N x 1', async () => {
    for (const [rows, dim] of [
      [0, 4],
      [1, 9],
      [9, 1],
      [5, 3],
    ] as const) {
      const values = Float32Array.from({ length: rows * dim }, (_, i) => i * 0.25 - 1);
      const p32 = fresh('m32.npy');
      await writeNpy(p32, values, [rows, dim]);
      expect(await readMatrix(p32)).toEqual({ data: values, rows, dim });
      const p16 = fresh('m16.npy');
      await writeNpy(p16, float32ToFloat16Bits(values), [rows, dim]);
      expect(await readMatrix(p16)).toEqual({ data: values, rows, dim }); // multiples of 0.25 are exact in float16
    }
  });

  it('rejects a 1-D array, saying it expects (N, D)', async () => {
    const path = fresh('vec.npy');
    await writeNpy(path, new Float32Array(5), [5]);
    await expectError(readMatrix(path), 'E_SHAPE', path, '(5,)', '(N, D)');
    const p3 = fresh('cube.npy');
    await writeNpy(p3, new Float32Array(8), [2, 2, 2]);
    await expectError(readMatrix(p3), 'E_SHAPE', p3, '(2, 2, 2)');
    const p0 = fresh('nocols.npy');
    await writeNpy(p0, new Float32Array(0), [3, 0]);
    await expectError(readMatrix(p0), 'E_SHAPE', p0, '(3, 0)');
  });

  it('rejects other dtypes with E_DTYPE naming the file and the dtype', async () => {
    const path = fresh('ints.npy');
    await writeNpy(path, new Int32Array(6), [2, 3]);
    await expectError(readMatrix(path), 'E_DTYPE', path, 'int32', '<i4');
    const p64 = fresh('f64.npy');
    await writeNpy(p64, new Float64Array(6), [2, 3]);
    await expectError(readMatrix(p64, { name: 'query embeddings' }), 'E_DTYPE', p64, 'query embeddings', 'float64');
  });
});

describe('rejecting bad files', () => {
  it('not an .npy file', async () => {
    const path = fresh('text.npy');
    await writeFile(path, 'hello, this is not numpy data at all');
    await expectError(readNpy(path), 'E_FORMAT', path, 'not an .npy file');
    const empty = fresh('empty.npy');
    await writeFile(empty, '');
    await expectError(readNpy(empty), 'E_FORMAT', empty, 'empty');
  });

  it('truncated header', async () => {
    const full = handNpy(dictOf('<f4', '(2, 3)'), new Uint8Array(24));
    const path = fresh('trunc-header.npy');
    await writeFile(path, full.subarray(0, 50));
    await expectError(readNpy(path), 'E_FORMAT', path, 'truncated');
    await writeFile(path, full.subarray(0, 7));
    await expectError(readNpyHeader(path), 'E_FORMAT', path, 'truncated');
  });

  it('truncated data', async () => {
    const path = fresh('trunc-data.npy');
    await writeFile(path, handNpy(dictOf('<f4', '(2, 3)'), new Uint8Array(20)));
    await expectError(readNpy(path), 'E_FORMAT', path, 'truncated: expected 24 data bytes, found 20');
    await expectError(readNpyHeader(path), 'E_FORMAT', path, 'truncated');
    await expectError(readMatrix(path), 'E_FORMAT', path, 'truncated');
    await expectError(NpyRowReader.open(path), 'E_FORMAT', path, 'truncated');
  });

  it('extra data after the array', async () => {
    const path = fresh('extra.npy');
    await writeFile(path, handNpy(dictOf('<f4', '(2, 3)'), new Uint8Array(28)));
    await expectError(readNpy(path), 'E_FORMAT', path, 'expected 24 data bytes, found 28', '4 extra bytes');
  });

  it('big-endian data', async () => {
    const path = fresh('be.npy');
    await writeFile(path, handNpy(dictOf('>f4', '(2,)'), new Uint8Array(8)));
    await expectError(readNpy(path), 'E_DTYPE', path, 'big-endian');
  });

  it('Fortran order is read as the same array as C order (hand case: column-major 2 x 3 and 2 x 2 x 2)', async () => {
    const path = fresh('fortran.npy');
    // Column-major (2, 3): a[0,0]=1 a[1,0]=2 a[0,1]=3 a[1,1]=4 a[0,2]=5 a[1,2]=6.
    await writeFile(path, handNpy(dictOf('<f4', '(2, 3)', 'True'), new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6).buffer)));
    expect((await readNpyHeader(path)).fortranOrder).toBe(true);
    expect([...(await readNpy(path)).data as Float32Array]).toEqual([1, 3, 5, 2, 4, 6]);
    expect([...(await readMatrix(path)).data]).toEqual([1, 3, 5, 2, 4, 6]);
    const r = await NpyRowReader.open(path);
    try {
      expect([...(await r.readRows(1, 1)).data]).toEqual([2, 4, 6]);
      expect([...(await r.readRows(0, 2)).data]).toEqual([1, 3, 5, 2, 4, 6]);
    } finally {
      await r.close();
    }
    // (2, 2, 2) int16, Fortran: flat f = i + 2j + 4k holds 100i + 10j + k.
    const f = new Int16Array(8);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) f[i + 2 * j + 4 * k] = 100 * i + 10 * j + k;
    const p3 = fresh('fortran3.npy');
    await writeFile(p3, handNpy(dictOf('<i2', '(2, 2, 2)', 'True'), new Uint8Array(f.buffer)));
    expect([...(await readNpy(p3)).data as Int16Array]).toEqual([0, 1, 10, 11, 100, 101, 110, 111]);
    // A 1-D or 0-d array is the same in both orders; a truncated Fortran file is still E_FORMAT.
    const p1 = fresh('fortran1.npy');
    await writeFile(p1, handNpy(dictOf('<f4', '(3,)', 'True'), new Uint8Array(Float32Array.of(7, 8, 9).buffer)));
    expect([...(await readNpy(p1)).data as Float32Array]).toEqual([7, 8, 9]);
    const short = fresh('fortran-short.npy');
    await writeFile(short, handNpy(dictOf('<f4', '(2, 3)', 'True'), new Uint8Array(20)));
    await expectError(readNpy(short), 'E_FORMAT', short, 'truncated');
  });

  it('unsupported dtype', async () => {
    const path = fresh('complex.npy');
    await writeFile(path, handNpy(dictOf('<c8', '(2,)'), new Uint8Array(16)));
    await expectError(readNpy(path), 'E_DTYPE', path, '<c8');
    const obj = fresh('object.npy');
    await writeFile(obj, handNpy(dictOf('|O', '(2,)'), new Uint8Array(16)));
    await expectError(readNpy(obj), 'E_DTYPE', obj, '|O');
  });

  it('oversized header length', async () => {
    const path = fresh('huge-header.npy');
    const file = handNpy(dictOf('<f4', '(1,)'), new Uint8Array(4), 2);
    new DataView(file.buffer).setUint32(8, 0x7fffffff, true);
    await writeFile(path, file);
    await expectError(readNpyHeader(path), 'E_FORMAT', path, 'limit');
    // A v1 HEADER_LEN pointing past the end of the file is a truncated header.
    const v1 = handNpy(dictOf('<f4', '(1,)'), new Uint8Array(4));
    new DataView(v1.buffer).setUint16(8, 0xffff, true);
    const p1 = fresh('long-v1.npy');
    await writeFile(p1, v1);
    await expectError(readNpyHeader(p1), 'E_FORMAT', p1, 'truncated');
  });

  it('malformed header dict', async () => {
    const path = fresh('dup.npy');
    await writeFile(path, handNpy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)));
    await expectError(readNpy(path), 'E_FORMAT', path, 'duplicate');
  });

  it('not a file, or no file', async () => {
    await expectError(readNpy(tmp.dir()), 'E_IO', tmp.dir(), 'not a regular file');
    const missing = join(tmp.dir(), 'missing.npy');
    await expectError(readNpy(missing), 'E_IO', missing, 'ENOENT');
    await expectError(NpyRowReader.open(missing), 'E_IO', missing);
  });
});

describe('NpyRowReader', () => {
  it('reads a slice of rows equal to the same slice of readMatrix', async () => {
    const rows = 37;
    const dim = 5;
    const values = sample('float32', rows * dim) as Float32Array;
    for (const half of [false, true]) {
      const path = fresh('rows.npy');
      await writeNpy(path, half ? float32ToFloat16Bits(values) : values, [rows, dim]);
      const whole = await readMatrix(path);
      const r = await NpyRowReader.open(path);
      try {
        expect(r.rows).toBe(rows);
        expect(r.dim).toBe(dim);
        expect(r.dtype).toBe(half ? 'float16' : 'float32');
        for (const [start, count] of [
          [10, 7],
          [0, 1],
          [36, 1],
          [0, 37],
          [5, 0],
          [37, 0],
        ] as const) {
          const m = await r.readRows(start, count);
          expect(m.rows).toBe(count);
          expect(m.dim).toBe(dim);
          expect(m.data).toEqual(whole.data.subarray(start * dim, (start + count) * dim));
        }
        const parallel = await Promise.all([r.readRows(0, 10), r.readRows(10, 10), r.readRows(20, 17)]);
        expect(Float32Array.from(parallel.flatMap((m) => [...m.data]))).toEqual(whole.data);
        await expectError(r.readRows(30, 8), 'E_RANGE', path, 'count');
        await expectError(r.readRows(38, 0), 'E_RANGE', path, 'start');
        await expectError(r.readRows(1.5, 1), 'E_RANGE');
      } finally {
        await r.close();
      }
      await expectError(r.readRows(0, 1), 'E_IO', path, 'close');
    }
  });

  it('refuses files that are not (N, D) float32/float16', async () => {
    const p1 = fresh('rows-1d.npy');
    await writeNpy(p1, new Float32Array(3), [3]);
    await expectError(NpyRowReader.open(p1), 'E_SHAPE', p1, '(N, D)');
    const p2 = fresh('rows-int.npy');
    await writeNpy(p2, new Int8Array(4), [2, 2]);
    await expectError(NpyRowReader.open(p2, { name: 'db' }), 'E_DTYPE', p2, 'db', 'int8');
  });
});

describe('NpyStreamWriter', () => {
  it('produces the same bytes as writeNpy', async () => {
    for (const dtype of ['float32', 'float16', 'int64', 'bool'] as const) {
      const rows = 10;
      const dim = 3;
      const data = sample(dtype, rows * dim, 7);
      const ref = fresh(`ref-${dtype}.npy`);
      await writeNpy(ref, data, [rows, dim], { dtype });
      const out = fresh(`stream-${dtype}.npy`);
      const w = await NpyStreamWriter.create(out, dtype, rows, dim);
      await w.append(data.subarray(0, 4 * dim) as NpyTypedArray);
      await w.append(data.subarray(4 * dim, 4 * dim) as NpyTypedArray); // zero rows
      await w.append(data.subarray(4 * dim) as NpyTypedArray);
      expect(w.rowsWritten).toBe(rows);
      await w.close();
      expect(await readFile(out)).toEqual(await readFile(ref));
    }
  });

  it('keeps rows in call order when appends are not awaited one by one', async () => {
    const rows = 64;
    const dim = 8;
    const data = sample('float32', rows * dim, 3) as Float32Array;
    const out = fresh('stream-parallel.npy');
    const w = await NpyStreamWriter.create(out, 'float32', rows, dim);
    await Promise.all(Array.from({ length: rows }, (_, i) => w.append(data.subarray(i * dim, (i + 1) * dim))));
    await w.close();
    expect((await readMatrix(out)).data).toEqual(data);
  });

  it('with atMost, writes the header of the rows appended (the bytes writeNpy gives for them), and still refuses more', async () => {
    const data = sample('float32', 7 * 3, 9) as Float32Array;
    for (const [max, rows] of [[10, 7], [1234567, 7], [7, 7], [5, 0]] as const) {
      const out = fresh(`atmost-${max}-${rows}.npy`);
      const w = await NpyStreamWriter.create(out, 'float32', max, 3, { atMost: true });
      if (rows) await w.append(data);
      await w.close();
      const ref = fresh(`atmost-ref-${max}-${rows}.npy`);
      await writeNpy(ref, rows ? data : new Float32Array(0), [rows, 3]);
      expect(await readFile(out)).toEqual(await readFile(ref));
    }
    const w = await NpyStreamWriter.create(fresh('atmost-over.npy'), 'float32', 2, 3, { atMost: true });
    await expectError(w.append(data), 'E_SHAPE', '7 more rows', 'created for 2');
    await w.abort();
  });

  it('writes nothing and leaves no temporary file when the row count is short', async () => {
    const sub = join(tmp.dir(), 'stream-short');
    await mkdir(sub);
    const out = join(sub, 'short.npy');
    const w = await NpyStreamWriter.create(out, 'float32', 4, 2);
    await w.append(new Float32Array(6));
    await expectError(w.close(), 'E_SHAPE', out, '3 rows', '4');
    expect(await readdir(sub)).toEqual([]);
  });

  it('rejects too many rows, partial rows and the wrong array type', async () => {
    const out = fresh('stream-bad.npy');
    const w = await NpyStreamWriter.create(out, 'float32', 2, 3);
    await expectError(w.append(new Float32Array(9)), 'E_SHAPE', out, 'created for 2');
    await expectError(w.append(new Float32Array(4)), 'E_SHAPE', out, 'whole number of rows');
    await expectError(w.append(new Float64Array(3) as unknown as Float32Array), 'E_DTYPE', out, 'Float32Array');
    await w.append(new Float32Array(6));
    await w.close();
    expect((await readMatrix(out)).rows).toBe(2);
    await expectError(w.append(new Float32Array(3)), 'E_IO', out);
  });

  it('abort discards the file', async () => {
    const sub = join(tmp.dir(), 'stream-abort');
    await mkdir(sub);
    const w = await NpyStreamWriter.create(join(sub, 'x.npy'), 'uint8', 1, 1);
    await w.append(new Uint8Array(1));
    await w.abort();
    expect(await readdir(sub)).toEqual([]);
  });
});

describe('atomic writes', () => {
  it('writeFileAtomic writes one or several chunks and replaces the old file', async () => {
    const sub = join(tmp.dir(), 'atomic');
    await mkdir(sub);
    const path = join(sub, 'f.bin');
    await writeFileAtomic(path, latin1('old'));
    await writeFileAtomic(path, [latin1('ab'), new Uint8Array(0), latin1('cd')]);
    expect((await readFile(path)).toString()).toBe('abcd');
    expect(await readdir(sub)).toEqual(['f.bin']);
  });

  it('fails with E_IO naming the path', async () => {
    const path = join(tmp.dir(), 'no-such-folder', 'f.bin');
    await expectError(writeFileAtomic(path, latin1('x')), 'E_IO', path);
    // Renaming a file over a folder fails: the temporary file must be removed.
    const sub = join(tmp.dir(), 'atomic-fail');
    await mkdir(join(sub, 'target'), { recursive: true });
    await expectError(writeFileAtomic(join(sub, 'target'), latin1('x')), 'E_IO', join(sub, 'target'));
    expect(await readdir(sub)).toEqual(['target']);
  });

  it('AtomicWriter commits on commit() and removes everything on abort()', async () => {
    const sub = join(tmp.dir(), 'atomic-writer');
    await mkdir(sub);
    const w = await AtomicWriter.open(join(sub, 'a.bin'));
    await w.write(latin1('12'));
    expect((await readdir(sub)).length).toBe(1); // the temporary file
    expect(await readdir(sub)).not.toContain('a.bin');
    await w.commit();
    expect(await readdir(sub)).toEqual(['a.bin']);
    const v = await AtomicWriter.open(join(sub, 'b.bin'));
    await v.write(latin1('34'));
    await v.abort();
    await v.abort();
    expect(await readdir(sub)).toEqual(['a.bin']);
    await expectError(v.write(latin1('5')), 'E_IO', 'b.bin');
  });
});

// --- Interoperability with numpy (skipped when numpy is not installed) ---------

const PYTHON = '/usr/bin/python3';
const numpyCheck = spawnSync(PYTHON, ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
const numpyVersion = numpyCheck.status === 0 ? numpyCheck.stdout.trim() : undefined;
if (!numpyVersion) {
  console.warn(`npy.test.ts: skipping the numpy interop tests: '${PYTHON} -c "import numpy"' failed (${numpyCheck.error?.message ?? numpyCheck.stderr?.trim()})`);
}

function python(script: string, ...args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

describe('numpy interop', () => {
  it.skipIf(!numpyVersion)('reads what numpy writes', async () => {
    const sub = join(tmp.dir(), 'from-numpy');
    await mkdir(sub);
    const listing = python(
      `
import json, sys, os
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(5)
cases = []
def save(name, a, version=None):
    path = os.path.join(out, name + '.npy')
    if version is None:
        np.save(path, a)
    else:
        with open(path, 'wb') as f:
            np.lib.format.write_array(f, a, version=version)
    with open(os.path.join(out, name + '.bin'), 'wb') as f:
        f.write(np.ascontiguousarray(a).tobytes())
    cases.append({'name': name, 'shape': list(a.shape), 'descr': np.lib.format.dtype_to_descr(a.dtype)})
for dt in ['<f4', '<f2', '<f8', '<i4', '<i8', '|u1', '|i1', '|b1', '<i2', '<u2', '<u4', '<u8']:
    for shape in [(0, 3), (1, 5), (5, 1), (3, 4), (6,), (), (2, 3, 4)]:
        a = (rng.standard_normal(shape) * 100).astype(dt) if dt != '|b1' else rng.random(shape) > 0.5
        save(f'{dt[1:]}_{"x".join(map(str, shape)) or "scalar"}', a)
save('v2', np.arange(12, dtype='<f4').reshape(3, 4), (2, 0))
save('v3', np.arange(12, dtype='<f4').reshape(3, 4), (3, 0))
save('sliced', np.arange(40, dtype='<f4').reshape(8, 5)[::2])
save('allhalf', np.arange(65536, dtype=np.uint16).view(np.float16).reshape(-1, 1))
# Fortran order: numpy writes it for a Fortran-contiguous array (a transposed one); the .bin is C order.
for dt in ['<f4', '<f2', '<f8', '<i8', '|u1', '<i2']:
    for shape in [(3, 4), (5, 1), (1, 5), (0, 3), (2, 3, 4), (4, 3, 2, 2), (40, 7)]:
        a = (rng.standard_normal(shape) * 100).astype(dt)
        save(f'F_{dt[1:]}_{"x".join(map(str, shape))}', np.asfortranarray(a))
save('F_transposed', np.arange(60, dtype='<f4').reshape(6, 10).T)
print(json.dumps(cases))
`,
      sub,
    );
    const cases = JSON.parse(listing) as { name: string; shape: number[]; descr: string }[];
    expect(cases.length).toBeGreaterThan(80);
    for (const c of cases) {
      const path = join(sub, `${c.name}.npy`);
      const a = await readNpy(path);
      expect(a.shape, c.name).toEqual(c.shape);
      expect((await readNpyHeader(path)).descr, c.name).toBe(c.descr);
      expect(Buffer.from(bytesOf(a.data)).equals(await readFile(join(sub, `${c.name}.bin`))), c.name).toBe(true);
      if (c.name.startsWith('F_') && c.shape.length > 1 && c.shape.every((d) => d > 1)) expect((await readNpyHeader(path)).fortranOrder, c.name).toBe(true);
      // Matrices by rows too: every row range of the row reader equals the C-order bytes (few rows: strided reads; many: whole columns).
      if (c.shape.length === 2 && (c.descr === '<f4' || c.descr === '<f2') && c.shape[0]! > 0) {
        const m = await readMatrix(path);
        const r = await NpyRowReader.open(path);
        try {
          for (const [start, count] of [[0, c.shape[0]!], [c.shape[0]! - 1, 1], [Math.floor(c.shape[0]! / 3), Math.ceil(c.shape[0]! / 3)]] as const) {
            const rows = await r.readRows(start, count);
            expect([...rows.data], `${c.name} rows ${start}+${count}`).toEqual([...m.data.subarray(start * m.dim, (start + count) * m.dim)]);
          }
        } finally {
          await r.close();
        }
      }
    }
    // numpy's own float16 -> float32 conversion, for every bit pattern.
    const conv = python(
      `
import sys, numpy as np
h = np.arange(65536, dtype=np.uint16).view(np.float16)
sys.stdout.write(h.astype(np.float32).view(np.uint32).tobytes().hex())
`,
    );
    const want = new Uint32Array(new Uint8Array(Buffer.from(conv, 'hex')).buffer);
    const m = await readMatrix(join(sub, 'allhalf.npy'));
    const got = new Uint32Array(m.data.buffer, m.data.byteOffset, m.data.length);
    let mismatches = 0;
    for (let i = 0; i < 65536; i++) {
      const isNaN = ((want[i] as number) & 0x7f800000) === 0x7f800000 && ((want[i] as number) & 0x7fffff) !== 0;
      if (isNaN ? !Number.isNaN(m.data[i]) : got[i] !== want[i]) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it.skipIf(!numpyVersion)('writes what numpy reads, byte for byte as numpy.save', async () => {
    const sub = join(tmp.dir(), 'to-numpy');
    await mkdir(sub);
    const names: { name: string; dtype: NpyDtype; shape: number[] }[] = [];
    for (const dtype of NPY_DTYPES) {
      for (const shape of [[0, 3], [1, 5], [5, 1], [3, 4], [6], [], [2, 3, 4], [12345678, 0]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = sample(dtype, n, 11);
        const name = `${dtype}_${shape.join('x') || 'scalar'}`;
        await writeNpy(join(sub, `${name}.npy`), data, shape, { dtype });
        await writeFile(join(sub, `${name}.bin`), bytesOf(data));
        names.push({ name, dtype, shape });
      }
    }
    const report = python(
      `
import io, json, sys, os
import numpy as np
out = sys.argv[1]
cases = json.loads(sys.argv[2])
descr = {'float32': '<f4', 'float16': '<f2', 'float64': '<f8', 'int8': '|i1', 'int16': '<i2', 'int32': '<i4', 'int64': '<i8',
         'uint8': '|u1', 'uint16': '<u2', 'uint32': '<u4', 'uint64': '<u8', 'bool': '|b1'}
bad = []
for c in cases:
    path = os.path.join(out, c['name'] + '.npy')
    a = np.load(path, allow_pickle=False)
    raw = open(os.path.join(out, c['name'] + '.bin'), 'rb').read()
    want = np.frombuffer(raw, dtype=np.dtype(descr[c['dtype']])).reshape(c['shape'])
    if a.dtype != want.dtype or a.shape != want.shape or a.tobytes() != want.tobytes():
        bad.append(c['name'] + ': values differ')
    buf = io.BytesIO()
    np.save(buf, want)
    if buf.getvalue() != open(path, 'rb').read():
        bad.append(c['name'] + ': bytes differ from numpy.save')
sys.stdout.write(json.dumps(bad))
`,
      sub,
      JSON.stringify(names),
    );
    expect(JSON.parse(report)).toEqual([]);
  });

  it.skipIf(!numpyVersion)('rounds float32 to float16 exactly as numpy does', async () => {
    const sub = join(tmp.dir(), 'half-numpy');
    await mkdir(sub);
    // Random bit patterns (every exponent) plus the awkward cases.
    const bits = sample('uint32', 200000, 9) as Uint32Array;
    const edges = [0x477fefff, 0x477ff000, 0x477fe000, 0x33000000, 0x33000001, 0x32ffffff, 0x387fc000, 0x387fe000, 0x7f800001, 0xffc00000, 0x7fa00000];
    bits.set(edges);
    const values = new Float32Array(bits.buffer);
    await writeFile(join(sub, 'f32.bin'), bytesOf(values));
    const out = python(
      `
import sys, os, numpy as np
x = np.frombuffer(open(os.path.join(sys.argv[1], 'f32.bin'), 'rb').read(), dtype='<f4')
with np.errstate(all='ignore'):
    sys.stdout.write(x.astype(np.float16).view(np.uint16).tobytes().hex())
`,
      sub,
    );
    const want = new Uint16Array(new Uint8Array(Buffer.from(out, 'hex')).buffer);
    const got = float32ToFloat16Bits(values);
    let mismatches = 0;
    const examples: string[] = [];
    for (let i = 0; i < got.length; i++) {
      const w = want[i] as number;
      const g = got[i] as number;
      const wNaN = (w & 0x7c00) === 0x7c00 && (w & 0x3ff) !== 0;
      const ok = wNaN ? (g & 0x7c00) === 0x7c00 && (g & 0x3ff) !== 0 : g === w;
      if (!ok) {
        mismatches++;
        if (examples.length < 5) examples.push(`0x${(bits[i] as number).toString(16)}: numpy 0x${w.toString(16)}, genaug 0x${g.toString(16)}`);
      }
    }
    expect(examples).toEqual([]);
    expect(mismatches).toBe(0);
  });
});
