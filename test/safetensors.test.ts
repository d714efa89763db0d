import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  encodeSafetensors,
  readSafetensors,
  SAFETENSORS_DTYPES,
  writeSafetensors,
  type SafeTensor,
  type SafetensorsDtype,
  type SafetensorsTypedArray,
} from '../ts/io/safetensors.js';
import { GenaugError } from '../ts/native/errors.js';
import { caught, expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-safetensors-');
const fresh = tmp.fresh;
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A safetensors file built by hand: u64 LE length, the header text as given (no padding added), the buffer. */
function handFile(header: string, buffer: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(buffer, 8 + text.length);
  return out;
}


/** Writes `header` + `buffer` by hand and expects readSafetensors to reject it with `code`, naming the file. */
async function rejects(header: string, buffer: Uint8Array, code: string, ...fragments: string[]): Promise<void> {
  const path = fresh('bad.safetensors');
  await writeFile(path, handFile(header, buffer));
  await expectError(readSafetensors(path), code, path, ...fragments);
}

const ITEMSIZE: Record<SafetensorsDtype, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

function sample(dtype: SafetensorsDtype, n: number): SafetensorsTypedArray {
  const ints = Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 0);
  switch (dtype) {
    case 'BOOL':
      return Uint8Array.from(ints, (v) => v & 1);
    case 'U8':
    case 'F8_E5M2':
    case 'F8_E4M3':
      return Uint8Array.from(ints, (v) => v & 0xff);
    case 'I8':
      return Int8Array.from(ints, (v) => (v & 0xff) - 128);
    case 'I16':
      return Int16Array.from(ints, (v) => (v & 0xffff) - 32768);
    case 'U16':
    case 'F16':
    case 'BF16':
      return Uint16Array.from(ints, (v) => v & 0xffff);
    case 'I32':
      return Int32Array.from(ints, (v) => v | 0);
    case 'U32':
      return Uint32Array.from(ints);
    case 'F32':
      return Float32Array.from(ints, (v) => v / 7 - 1e8);
    case 'F64':
      return Float64Array.from(ints, (v) => v / 3 - 1e300);
    case 'I64':
      return BigInt64Array.from(ints, (v, i) => (i === 0 ? -(2n ** 63n) : BigInt(v) * -3n));
    case 'U64':
      return BigUint64Array.from(ints, (v, i) => (i === 0 ? 2n ** 64n - 1n : BigInt(v) << 20n));
  }
}

const tensor = (dtype: SafetensorsDtype, shape: number[]): SafeTensor =>
  ({ dtype, shape, data: sample(dtype, shape.reduce((a, b) => a * b, 1)) }) as SafeTensor;

/** The header text of a file (between the length and the buffer). */
async function headerText(path: string): Promise<string> {
  const bytes = await readFile(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return bytes.toString('utf8', 8, 8 + n);
}

describe('safetensors round trips', () => {
  it('every dtype and shape, with metadata', async () => {
    const shapes = [[0, 3], [1, 5], [5, 1], [3, 4], [7], [0], [], [2, 3, 4]];
    const tensors = new Map<string, SafeTensor>();
    for (const dtype of SAFETENSORS_DTYPES) {
      shapes.forEach((shape, i) => tensors.set(`${dtype.toLowerCase()}.${i}`, tensor(dtype, shape)));
    }
    const metadata = { format: 'pt', 'genaug.note': 'émbeddings ✓', empty: '' };
    const path = fresh('all.safetensors');
    await writeSafetensors(path, tensors, metadata);
    const back = await readSafetensors(path);
    expect({ ...back.metadata }).toEqual(metadata);
    expect(back.tensors.size).toBe(tensors.size);
    for (const [name, t] of tensors) {
      const b = back.tensors.get(name);
      expect(b, name).toBeDefined();
      expect(b?.dtype).toBe(t.dtype);
      expect(b?.shape).toEqual(t.shape);
      expect(b?.data.constructor).toBe(t.data.constructor);
      expect(bytesOf(b?.data ?? new Uint8Array(1))).toEqual(bytesOf(t.data));
      expect((b?.data.byteOffset ?? 1) % ITEMSIZE[t.dtype]).toBe(0);
    }
  });

  it('accepts a plain object and no metadata; an empty file of tensors', async () => {
    const path = fresh('obj.safetensors');
    await writeSafetensors(path, { w: tensor('F32', [2, 2]) });
    const back = await readSafetensors(path);
    expect(Object.keys(back.metadata)).toEqual([]);
    expect([...back.tensors.keys()]).toEqual(['w']);
    const empty = fresh('empty.safetensors');
    await writeSafetensors(empty, {});
    expect(await headerText(empty)).toBe('{}      ');
    expect((await readSafetensors(empty)).tensors.size).toBe(0);
  });

  it('pads the header with spaces to a multiple of 8', async () => {
    for (let len = 1; len <= 17; len++) {
      const path = fresh('pad.safetensors');
      await writeSafetensors(path, { ['x'.repeat(len)]: tensor('U8', [3]) });
      const bytes = await readFile(path);
      const n = Number(bytes.readBigUInt64LE(0));
      expect(n % 8).toBe(0);
      const text = bytes.toString('utf8', 8, 8 + n);
      const json = `{"${'x'.repeat(len)}":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}`;
      expect(text).toBe(json + ' '.repeat(n - json.length));
      expect(n - json.length).toBeLessThan(8);
      expect(bytes.length).toBe(8 + n + 3);
    }
  });

  it('sorts tensors by name and lays them out in that order', async () => {
    const path = fresh('sorted.safetensors');
    await writeSafetensors(path, { b: tensor('F32', [2]), c: tensor('U8', [1]), a: tensor('F64', [1]), '10': tensor('I8', [1]), '9': tensor('I8', [1]) });
    const text = await headerText(path);
    const order = [...text.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['10', '9', 'a', 'b', 'c']);
    expect(text).toContain('"a":{"dtype":"F64","shape":[1],"data_offsets":[2,10]}');
    expect(text).toContain('"b":{"dtype":"F32","shape":[2],"data_offsets":[10,18]}');
  });

  it('writes atomically and leaves no temporary files', async () => {
    const sub = join(tmp.dir(), 'atomic-st');
    await mkdir(sub);
    await writeSafetensors(join(sub, 'm.safetensors'), { a: tensor('F32', [1]) });
    await writeSafetensors(join(sub, 'm.safetensors'), { a: tensor('F32', [2]) });
    expect(await readdir(sub)).toEqual(['m.safetensors']);
    await expect(writeSafetensors(join(sub, 'n.safetensors'), { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).rejects.toThrow(
      GenaugError,
    );
    expect(await readdir(sub)).toEqual(['m.safetensors']);
  });
});

describe('the reference layout (huggingface/safetensors test_simple.py)', () => {
  it('writes {"test": zeros((2, 2), int32)} byte for byte', async () => {
    const path = fresh('ref.safetensors');
    await writeSafetensors(path, { test: { dtype: 'I32', shape: [2, 2], data: new Int32Array(4) } });
    const want = Buffer.concat([
      Buffer.from('@\x00\x00\x00\x00\x00\x00\x00', 'latin1'), // 64
      Buffer.from('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ', 'latin1'),
      Buffer.alloc(16),
    ]);
    expect(await readFile(path)).toEqual(want);
    expect(Buffer.concat(encodeSafetensors({ test: { dtype: 'I32', shape: [2, 2], data: new Int32Array(4) } }))).toEqual(want);
  });

  it('reads the unpadded example with metadata', async () => {
    const header = '{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}       ';
    const path = fresh('ref-meta.safetensors');
    await writeFile(path, handFile(header, bytesOf(new Int32Array([1, 2, 3, 4]))));
    expect((await readFile(path)).readBigUInt64LE(0)).toBe(102n); // 'f'
    const back = await readSafetensors(path);
    expect({ ...back.metadata }).toEqual({ framework: 'pt' });
    expect(back.tensors.get('test1')).toEqual({ dtype: 'I32', shape: [2, 2], data: new Int32Array([1, 2, 3, 4]) });
  });

  it('writes the metadata first, then the tensors', async () => {
    const path = fresh('ref-meta-w.safetensors');
    await writeSafetensors(path, { test1: { dtype: 'I32', shape: [2, 2], data: new Int32Array(4) } }, { framework: 'pt' });
    expect(await headerText(path)).toBe('{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}' + ' '.repeat(1));
  });

  it('accepts tensors listed out of buffer order, and zero-size tensors', async () => {
    const header =
      '{"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},' +
      '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"I64","shape":[0],"data_offsets":[6,6]}}';
    const path = fresh('order.safetensors');
    await writeFile(path, handFile(header, new Uint8Array([0, 0, 0x80, 0x3f, 7, 9])));
    const back = await readSafetensors(path);
    expect([...back.tensors.keys()]).toEqual(['b', 'e', 'a', 'z']);
    expect(back.tensors.get('a')?.data).toEqual(new Float32Array([1]));
    expect(back.tensors.get('b')?.data).toEqual(new Uint8Array([7, 9]));
    expect(back.tensors.get('e')?.shape).toEqual([0, 5]);
  });
});

describe('rejecting malformed safetensors files', () => {
  const f32 = (name: string, begin: number, end: number, shape = '[1]'): string =>
    `"${name}":{"dtype":"F32","shape":${shape},"data_offsets":[${begin},${end}]}`;

  it('a file too short for the length', async () => {
    const path = fresh('short.safetensors');
    await writeFile(path, new Uint8Array([1, 2, 3]));
    await expectError(readSafetensors(path), 'E_FORMAT', path, 'too short');
  });

  it('a header length over 100 MB', async () => {
    const path = fresh('huge.safetensors');
    await writeFile(path, handFile('{}', new Uint8Array(0), 100_000_001n));
    await expectError(readSafetensors(path), 'E_FORMAT', path, '100000001', 'limit');
    await writeFile(path, handFile('{}', new Uint8Array(0), 2n ** 64n - 1n));
    await expectError(readSafetensors(path), 'E_FORMAT', path, 'limit');
  });

  it('a header length larger than the file', async () => {
    const path = fresh('long.safetensors');
    await writeFile(path, handFile('{}', new Uint8Array(0), 3000n));
    await expectError(readSafetensors(path), 'E_FORMAT', path, 'header length 3000');
  });

  it('a header that does not start with {', async () => {
    await rejects(' {}', new Uint8Array(0), 'E_FORMAT', "'{'");
    await rejects('[]', new Uint8Array(0), 'E_FORMAT', "'{'");
    await rejects('\ufeff{}', new Uint8Array(0), 'E_FORMAT', "'{'");
    const path = fresh('zero.safetensors');
    await writeFile(path, handFile(''));
    await expectError(readSafetensors(path), 'E_FORMAT', path, 'empty');
  });

  it('invalid JSON and invalid UTF-8', async () => {
    await rejects('{"a":}', new Uint8Array(0), 'E_FORMAT', 'not valid JSON');
    await rejects(`{${f32('a', 0, 4)}`, new Uint8Array(4), 'E_FORMAT', 'not valid JSON');
    await rejects(`{${f32('a', 0, 4)}} x`, new Uint8Array(4), 'E_FORMAT', 'after the top-level object');
    await rejects(`{${f32('a', 0, 4)},}`, new Uint8Array(4), 'E_FORMAT', 'not valid JSON');
    await rejects('{"a\\q":1}', new Uint8Array(0), 'E_FORMAT', 'escape');
    const path = fresh('utf8.safetensors');
    const file = handFile('{"ab":1}');
    file[10] = 0xff;
    await writeFile(path, file);
    await expectError(readSafetensors(path), 'E_FORMAT', path, 'UTF-8');
  });

  it('duplicate keys, which JSON.parse would hide', async () => {
    await rejects(`{${f32('w', 0, 4)},${f32('w', 4, 8)}}`, new Uint8Array(8), 'E_FORMAT', 'duplicate', '"w"');
    // The same key spelled with an escape is still the same key.
    await rejects(`{${f32('w', 0, 4)},${f32('\\u0077', 4, 8)}}`, new Uint8Array(8), 'E_FORMAT', 'duplicate', '"w"');
    await rejects(
      '{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
      new Uint8Array(4),
      'E_FORMAT',
      'duplicate',
      '"dtype"',
      'tensor "w"',
    );
    await rejects(`{"__metadata__":{"k":"1","k":"2"},${f32('w', 0, 4)}}`, new Uint8Array(4), 'E_FORMAT', 'duplicate', '"k"', '__metadata__');
    await rejects(`{"__metadata__":{},"__metadata__":{},${f32('w', 0, 4)}}`, new Uint8Array(4), 'E_FORMAT', 'duplicate', '__metadata__');
  });

  it('__metadata__ that is not a map of strings', async () => {
    await rejects(`{"__metadata__":{"epoch":3},${f32('w', 0, 4)}}`, new Uint8Array(4), 'E_FORMAT', '__metadata__', '"epoch"', 'string');
    await rejects(`{"__metadata__":{"a":{"b":"c"}}}`, new Uint8Array(0), 'E_FORMAT', '__metadata__', '"a"');
    await rejects(`{"__metadata__":["a"]}`, new Uint8Array(0), 'E_FORMAT', '__metadata__');
    await rejects(`{"__metadata__":"a"}`, new Uint8Array(0), 'E_FORMAT', '__metadata__');
  });

  it('an unknown dtype', async () => {
    await rejects('{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}', new Uint8Array(16), 'E_DTYPE', 'tensor "w"', 'F128');
    await rejects('{"w":{"dtype":"float32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4), 'E_DTYPE', 'tensor "w"', 'float32');
    await rejects('{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4), 'E_DTYPE', 'tensor "w"');
  });

  it('a byte range that does not match shape x itemsize', async () => {
    await rejects(`{${f32('w', 0, 8, '[3]')}}`, new Uint8Array(8), 'E_SHAPE', 'tensor "w"', '[3]', '12');
    await rejects('{"w":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}}', new Uint8Array(16), 'E_SHAPE', 'tensor "w"', '32');
  });

  it('holes, overlaps, and buffers not covered exactly', async () => {
    await rejects(`{${f32('a', 0, 4)},${f32('b', 8, 12)}}`, new Uint8Array(12), 'E_FORMAT', 'tensor "b"', 'hole of 4 bytes');
    await rejects(`{${f32('a', 4, 8)}}`, new Uint8Array(8), 'E_FORMAT', 'tensor "a"', 'hole');
    await rejects(`{${f32('a', 0, 8, '[2]')},${f32('b', 4, 8)}}`, new Uint8Array(8), 'E_FORMAT', 'tensor "b"', 'overlap', '"a"');
    await rejects(`{${f32('a', 0, 4)},${f32('b', 0, 4)}}`, new Uint8Array(4), 'E_FORMAT', 'overlap');
    await rejects(`{${f32('a', 0, 4)}}`, new Uint8Array(6), 'E_FORMAT', 'last 2 bytes');
    await rejects(`{${f32('a', 0, 4)}}`, new Uint8Array(2), 'E_FORMAT', 'tensor "a"', 'past the end');
    await rejects('{}', new Uint8Array(3), 'E_FORMAT', 'last 3 bytes');
  });

  it('bad data_offsets, shape and fields', async () => {
    await rejects('{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'end before');
    await rejects('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'data_offsets');
    await rejects('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'data_offsets[0]');
    await rejects('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}', new Uint8Array(4), 'E_FORMAT', 'data_offsets[1]');
    await rejects('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'shape[0]');
    await rejects('{"w":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'shape[0]');
    await rejects('{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'too large');
    await rejects('{"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'shape');
    await rejects('{"w":{"dtype":"F32","data_offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'tensor "w"', 'no shape');
    await rejects('{"w":{"dtype":"F32","shape":[1]}}', new Uint8Array(4), 'E_FORMAT', 'no data_offsets');
    await rejects('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offsets":[0,4]}}', new Uint8Array(4), 'E_FORMAT', 'unexpected field "offsets"');
    await rejects('{"w":[1,2]}', new Uint8Array(0), 'E_FORMAT', 'tensor "w"', 'must be an object');
  });

  it('a BOOL tensor holding something other than 0 and 1', async () => {
    await rejects('{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}', new Uint8Array([1, 0, 2]), 'E_FORMAT', 'tensor "m"', 'element 2');
  });

  it('no file, or not a file', async () => {
    const missing = join(tmp.dir(), 'missing.safetensors');
    await expectError(readSafetensors(missing), 'E_IO', missing, 'ENOENT');
    await expectError(readSafetensors(tmp.dir()), 'E_IO', tmp.dir(), 'not a regular file');
  });
});

describe('writeSafetensors argument checks', () => {
  it('rejects mismatched arrays, shapes, names and metadata, naming the file and the tensor', async () => {
    const path = fresh('w.safetensors');
    await expectError(
      writeSafetensors(path, { w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } as unknown as SafeTensor }),
      'E_DTYPE',
      path,
      'tensor "w"',
      'Float32Array',
    );
    await expectError(writeSafetensors(path, { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), 'E_SHAPE', path, 'tensor "w"');
    await expectError(writeSafetensors(path, { w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } }), 'E_SHAPE', path, 'shape[0]');
    await expectError(writeSafetensors(path, { w: { dtype: 'X', shape: [1], data: new Float32Array(1) } as unknown as SafeTensor }), 'E_DTYPE', path);
    await expectError(writeSafetensors(path, { __metadata__: tensor('U8', [1]) }), 'E_FORMAT', path, '__metadata__');
    await expectError(writeSafetensors(path, { m: { dtype: 'BOOL', shape: [1], data: new Uint8Array([3]) } }), 'E_RANGE', path, 'tensor "m"');
    await expectError(writeSafetensors(path, {}, { a: 1 } as unknown as Record<string, string>), 'E_TYPE', path, '"a"');
  });
});
