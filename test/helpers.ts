/** Test helpers: deterministic data and a plain double-precision oracle. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

import { afterAll, beforeAll, expect } from 'vitest';

import { GenaugError, type Matrix } from '../ts/index.js';
import { seededRandom } from '../ts/util/random.js';

/**
 * A temporary folder for one test file, removed afterwards. `fresh(name)`
 * gives a new path in it each call.
 */
export function tempFolder(prefix: string): { dir: () => string; fresh: (name: string) => string } {
  let dir = '';
  let counter = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return { dir: () => dir, fresh: (name: string) => join(dir, `${counter++}-${name}`) };
}

/** Every file under a folder (relative path -> bytes), minus the names given. */
export async function tree(dir: string, skip: string[] = ['progress.jsonl']): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(d, e.name), r);
      else if (!skip.includes(e.name)) out.set(r, await readFile(join(d, e.name)));
    }
  };
  await walk(dir, '');
  return out;
}

/** The same files with the same bytes (a failure names the file). */
export function expectSameTree(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [k, v] of a) expect(Buffer.compare(v, b.get(k) as Buffer), k).toBe(0);
}

export function randomMatrix(rows: number, dim: number, seed: number): Matrix {
  const r = seededRandom(seed);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = r() * 2 - 1;
  return { data, rows, dim };
}

export function cosine(a: Matrix, i: number, b: Matrix, j: number, normalize = true): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.dim; k++) {
    const x = a.data[i * a.dim + k] as number;
    const y = b.data[j * b.dim + k] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (!normalize) return dot;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na) / Math.sqrt(nb);
}

/** Oracle top-k: [score, index] sorted by score desc, index asc. */
export function oracleTopk(q: Matrix, i: number, d: Matrix, k: number, normalize = true): Array<[number, number]> {
  const all: Array<[number, number]> = [];
  for (let j = 0; j < d.rows; j++) all.push([cosine(q, i, d, j, normalize), j]);
  all.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  return all.slice(0, k);
}

/** Awaits a promise that must reject with a GenaugError, and returns the error. */
export async function caught(p: Promise<unknown>): Promise<GenaugError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected the call to throw').toBeInstanceOf(GenaugError);
  return e as GenaugError;
}

export async function expectError(p: Promise<unknown>, code: string, ...fragments: string[]): Promise<GenaugError> {
  const e = await caught(p);
  expect(e.code, e.message).toBe(code);
  for (const f of fragments) expect(e.message).toContain(f);
  return e;
}

/** Like expectError, for a promise or a function that throws synchronously. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string, text?: RegExp): Promise<void> {
  let err: unknown;
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a GenaugError ${code}`).toBeInstanceOf(GenaugError);
  expect((err as GenaugError).code).toBe(code);
  if (text) expect((err as GenaugError).message).toMatch(text);
}

/** The whole body of a request to a test server, as text. */
export function readBody(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise<string>((resolve) => {
    let s = '';
    req.on('data', (c) => (s += c));
    req.on('end', () => resolve(s));
  });
}

/** Every file under `dir`, as sorted '/'-separated paths relative to it. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  await walk(dir);
  return out.sort();
}

/** Members of a tar archive (name → bytes, in order) by the ustar layout: 512-byte headers, octal sizes, zero blocks at the end. */
export function untar(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let p = 0;
  while (p + 512 <= buf.length) {
    const h = buf.subarray(p, p + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const prefix = h.subarray(345, 500).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    out.push([prefix ? `${prefix}/${name}` : name, buf.subarray(p + 512, p + 512 + size)]);
    p += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Samples of a tar member list: key → {ext → bytes}, in order of first appearance. */
export function tarSamples(members: Array<[string, Buffer]>): Map<string, Record<string, Buffer>> {
  const m = new Map<string, Record<string, Buffer>>();
  for (const [name, data] of members) {
    const dot = name.indexOf('.');
    const key = name.slice(0, dot);
    (m.get(key) ?? m.set(key, {}).get(key)!)[name.slice(dot + 1)] = data;
  }
  return m;
}
