/**
 * The safetensors fuzz target: decodeSafetensors (the same checks as
 * readSafetensors, on bytes in memory) on mutated files. Mutations work on
 * the header's JSON text (tokens a header is made of), on the tensor bytes,
 * or on the whole file, and the 8-byte header length is usually rewritten to
 * match the mutated header (so mutations reach the JSON and the layout
 * checks rather than stopping at the length). Whatever is accepted must hold
 * typed arrays that match each shape, and survive encode -> decode unchanged.
 */
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../../ts/io/safetensors.js';
import { type FuzzTarget, type Rng, int, invariant, mutateBytes, pick } from './engine.js';

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function seeds(): Uint8Array[] {
  const t = (dtype: SafeTensor['dtype'], shape: number[], data: SafeTensor['data']) => ({ dtype, shape, data }) as SafeTensor;
  const files: Array<[Record<string, SafeTensor>, Record<string, string> | undefined]> = [
    [{}, undefined],
    [{}, { format: 'pt', note: 'é' }],
    [{ w: t('F32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6])) }, { format: 'pt' }],
    [{ a: t('I64', [2], new BigInt64Array([1n, -2n])), b: t('U8', [0], new Uint8Array(0)), c: t('BOOL', [3], new Uint8Array([0, 1, 1])) }, undefined],
    [{ s: t('F64', [], new Float64Array([Math.PI])), h: t('F16', [1, 1], new Uint16Array([0x3c00])), z: t('BF16', [2, 0, 4], new Uint16Array(0)) }, undefined],
    [{ 'model.layer.0.weight': t('I32', [4], new Int32Array([1, -1, 2 ** 31 - 1, -(2 ** 31)])), x8: t('F8_E4M3', [2], new Uint8Array([1, 255])) }, { k: '' }],
    [{ u: t('U64', [1], new BigUint64Array([2n ** 64n - 1n])), i: t('I8', [2], new Int8Array([-128, 127])), q: t('U16', [1], new Uint16Array([7])) }, undefined],
  ];
  return files.map(([tensors, metadata]) => concat(encodeSafetensors(tensors, metadata)));
}

const TOKENS = [
  '{', '}', '[', ']', ',', ':', '"', '\\', '\\u0000', '\\ud800', 'é', '\u0000', ' ', '\n', 'null', 'true', '0', '1', '-1', '1.5', '1e3',
  '"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"BOOL"', '"I64"', '"F16"', '"f32"', '"x"', '"__proto__"',
  '[0,0]', '[0,4]', '[4,0]', '[]', '[1]', '[0]', '[2,3]', '{}', '"data_offsets":[0,1]', '"shape":[9007199254740993]',
  '[[[[[[[[[[[[[[[[[[[[', '"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}',
];

function split(b: Uint8Array): { header: Uint8Array; data: Uint8Array } | undefined {
  if (b.length < 8) return undefined;
  const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(b.length - 8)) return undefined;
  return { header: b.subarray(8, 8 + Number(n)), data: b.subarray(8 + Number(n)) };
}

function assemble(header: Uint8Array, data: Uint8Array, length: bigint): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

function mutate(b: Uint8Array, rng: Rng): Uint8Array {
  const parts = split(b);
  const what = int(rng, 10);
  if (!parts || what === 0) return mutateBytes(b, rng, TOKENS); // the whole file
  let { header, data } = parts;
  if (what <= 6) header = mutateBytes(header, rng, TOKENS);
  else if (what <= 8) data = mutateBytes(data, rng, ['\u0000', '\u0001', '\u0002', '\u00ff']);
  // The length: usually the mutated header's, sometimes one that lies.
  const lie = int(rng, 8) === 0;
  const length = lie
    ? pick(rng, [0n, 1n, 7n, 2n ** 64n - 1n, 100_000_001n, BigInt(header.length + 1), BigInt(Math.max(0, header.length - 1)), BigInt(header.length + data.length)])
    : BigInt(header.length);
  return assemble(header, data, length);
}

function same(a: SafeTensor['data'], b: SafeTensor['data']): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function run(input: Uint8Array): void {
  const f = decodeSafetensors(input, 'fuzz.safetensors');
  for (const [name, t] of f.tensors) {
    invariant(name !== '__metadata__', 'no tensor is called __metadata__');
    invariant(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `tensor ${name}: a shape of non-negative integers`);
    invariant(t.data.length === t.shape.reduce((a, d) => a * d, 1), `tensor ${name}: data length matches the shape`);
    if (t.dtype === 'BOOL') invariant((t.data as Uint8Array).every((v) => v <= 1), `tensor ${name}: BOOL holds 0 and 1`);
  }
  for (const v of Object.values(f.metadata)) invariant(typeof v === 'string', 'metadata values are strings');
  // Round trip: what was accepted encodes, and decodes to the same tensors.
  const again = decodeSafetensors(concat(encodeSafetensors(f.tensors, f.metadata)), 'again.safetensors');
  invariant(again.tensors.size === f.tensors.size, 'round trip keeps every tensor');
  for (const [name, t] of f.tensors) {
    const u = again.tensors.get(name);
    invariant(u && u.dtype === t.dtype && u.shape.join() === t.shape.join() && same(u.data, t.data), `round trip keeps tensor ${name}`);
  }
  invariant(JSON.stringify(Object.entries(again.metadata).sort()) === JSON.stringify(Object.entries(f.metadata).sort()), 'round trip keeps the metadata');
}

export const safetensorsTarget: FuzzTarget = { name: 'safetensors', seeds: seeds(), mutate, run };
