/** Argument checks shared by every typed wrapper: each throws GenaugError with a precise message. */
import { markAsUntransferable } from 'node:worker_threads';

import { GenaugError } from './errors.js';

/** The widest embeddings accepted (the native engine's limit too). */
export const MAX_DIM = 65536;

/** A row-major float32 matrix: `rows` x `dim` values in `data`. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  dim: number;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

export function checkInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw new GenaugError('E_TYPE', `${name} must be a number, got ${typeName(value)}`);
  if (!Number.isInteger(value)) throw new GenaugError('E_RANGE', `${name} must be an integer, got ${value}`);
  if (value < min || value > max) throw new GenaugError('E_RANGE', `${name} must be in [${min}, ${max}], got ${value}`);
  return value;
}

export function checkNumber(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new GenaugError('E_TYPE', `${name} must be a number, got ${typeName(value)}`);
  if (!Number.isFinite(value)) throw new GenaugError('E_RANGE', `${name} must be a finite number, got ${value}`);
  return value;
}

export function checkMatrix(m: unknown, name: string): Matrix {
  if (typeof m !== 'object' || m === null) {
    throw new GenaugError('E_TYPE', `${name} must be a matrix { data: Float32Array, rows, dim }, got ${typeName(m)}`);
  }
  const { data, rows, dim } = m as Partial<Matrix>;
  if (!(data instanceof Float32Array)) {
    throw new GenaugError('E_DTYPE', `${name}.data must be a Float32Array, got ${typeName(data)}`);
  }
  checkInt(rows, `${name}.rows`, 0);
  checkInt(dim, `${name}.dim`, 1, MAX_DIM);
  if (data.length !== (rows as number) * (dim as number)) {
    throw new GenaugError(
      'E_SHAPE',
      `${name}.data has ${data.length} elements but ${name} is ${rows} rows x ${dim} columns = ${(rows as number) * (dim as number)}`,
    );
  }
  return m as Matrix;
}

export function checkSameDim(a: Matrix, b: Matrix, an: string, bn: string): void {
  if (a.dim !== b.dim) {
    throw new GenaugError('E_SHAPE', `${an} has ${a.dim} columns but ${bn} has ${b.dim}: embeddings must have the same width`);
  }
}

/** Wraps a flat Float32Array as a matrix of the given width. */
export function matrix(data: Float32Array, dim: number): Matrix {
  if (!(data instanceof Float32Array)) throw new GenaugError('E_DTYPE', `data must be a Float32Array, got ${typeName(data)}`);
  checkInt(dim, 'dim', 1, MAX_DIM);
  if (data.length % dim !== 0) {
    throw new GenaugError('E_SHAPE', `data has ${data.length} elements, which is not a multiple of dim ${dim}`);
  }
  return { data, rows: data.length / dim, dim };
}

/** Rows [start, end) of a matrix, without copying. */
export function sliceRows(m: Matrix, start: number, end: number): Matrix {
  return { data: m.data.subarray(start * m.dim, end * m.dim), rows: end - start, dim: m.dim };
}

/**
 * Native code reads the inputs of an async call while JavaScript runs on, so
 * their memory must not be detached meanwhile (transferring an ArrayBuffer to
 * a worker detaches it). Marking a buffer untransferable makes a later
 * transfer copy it instead of moving it, so the native side never reads freed
 * memory. SharedArrayBuffers cannot be detached and are left alone.
 */
export function pinInputs(...arrays: Array<ArrayBufferView | null | undefined>): void {
  for (const a of arrays) if (a && a.buffer instanceof ArrayBuffer) markAsUntransferable(a.buffer);
}
