/**
 * Similarity over .npy files of any size: the query streams through in
 * chunks of rows, and the database is read whole when it fits the memory
 * budget or in chunks (merged exactly with mergeTopk) when it does not.
 * Outputs are written row by row through atomic stream writers.
 */
import { NpyRowReader, NpyStreamWriter, readNpy, writeNpy } from '../io/npy.js';
import { GenaugError } from '../native/errors.js';
import {
  classMax,
  classMean,
  mergeTopk,
  topk,
  type SimilarityOptions,
  type TopKResult,
} from './similarity.js';
import { checkInt, type Matrix } from './validate.js';

export interface FileRunOptions extends SimilarityOptions {
  /** Query rows per step (default 8192). */
  chunkRows?: number;
  /** Bytes of database held in memory at once (default 2 GiB). */
  dbBudgetBytes?: number;
  onProgress?: (done: number, total: number) => void;
}

interface DbSource {
  rows: number;
  dim: number;
  /** Yields consecutive database chunks with their first row. */
  chunks(): AsyncGenerator<{ start: number; m: Matrix }>;
  close(): Promise<void>;
}

async function openDb(path: string, budget: number): Promise<DbSource> {
  const reader = await NpyRowReader.open(path, { name: path });
  const rowsPerChunk = Math.max(1, Math.floor(budget / (reader.dim * 4)));
  let whole: Matrix | undefined;
  if (reader.rows <= rowsPerChunk) whole = await reader.readRows(0, reader.rows);
  return {
    rows: reader.rows,
    dim: reader.dim,
    async *chunks() {
      if (whole) {
        yield { start: 0, m: whole };
        return;
      }
      for (let s = 0; s < reader.rows; s += rowsPerChunk) yield { start: s, m: await reader.readRows(s, Math.min(rowsPerChunk, reader.rows - s)) };
    },
    close: () => reader.close(),
  };
}

function sameDim(qDim: number, dDim: number, q: string, d: string): void {
  if (qDim !== dDim) throw new GenaugError('E_SHAPE', `${q} has ${qDim} columns but ${d} has ${dDim}: embeddings must have the same width`);
}

/** Top-k of every row of `queryPath` against `dbPath`; writes PREFIX.indices.npy (int64) and PREFIX.scores.npy (float32). */
export async function topkFiles(queryPath: string, dbPath: string, k: number, outPrefix: string, options: FileRunOptions = {}) {
  checkInt(k, 'k', 1, 2 ** 31);
  const chunk = checkInt(options.chunkRows ?? 8192, 'chunkRows', 1);
  const budget = checkInt(options.dbBudgetBytes ?? 2 ** 31, 'dbBudgetBytes', 1);
  const q = await NpyRowReader.open(queryPath, { name: queryPath });
  const db = await openDb(dbPath, budget);
  try {
    sameDim(q.dim, db.dim, queryPath, dbPath);
    const kk = Math.min(k, db.rows);
    const idxOut = await NpyStreamWriter.create(`${outPrefix}.indices.npy`, 'int64', q.rows, kk);
    const scoreOut = await NpyStreamWriter.create(`${outPrefix}.scores.npy`, 'float32', q.rows, kk);
    try {
      for (let s = 0; s < q.rows; s += chunk) {
        const m = await q.readRows(s, Math.min(chunk, q.rows - s));
        let acc: TopKResult | undefined;
        for await (const part of db.chunks()) {
          const r = await topk(m, part.m, k, options);
          acc = acc === undefined ? shift(r, part.start) : mergeTopk(acc, r, part.start, k);
        }
        if (acc && kk > 0) {
          await idxOut.append(acc.indices);
          await scoreOut.append(acc.scores);
        }
        options.onProgress?.(s + m.rows, q.rows);
      }
      await idxOut.close();
      await scoreOut.close();
    } catch (e) {
      await idxOut.abort();
      await scoreOut.abort();
      throw e;
    }
    return { rows: q.rows, k: kk, files: [`${outPrefix}.indices.npy`, `${outPrefix}.scores.npy`] };
  } finally {
    await q.close();
    await db.close();
  }
}

function shift(r: TopKResult, offset: number): TopKResult {
  if (offset === 0) return r;
  const o = BigInt(offset);
  for (let x = 0; x < r.indices.length; x++) r.indices[x] = (r.indices[x] as bigint) + o;
  return r;
}

/** Reads a 1-D integer .npy file as Int32 class labels. */
export async function readLabels(path: string, rows: number): Promise<Int32Array> {
  const a = await readNpy(path, { name: path });
  if (a.shape.length !== 1) throw new GenaugError('E_SHAPE', `${path}: labels must be 1-D (N,), got shape (${a.shape.join(', ')})`);
  if (a.shape[0] !== rows) throw new GenaugError('E_SHAPE', `${path}: ${a.shape[0]} labels for ${rows} database rows`);
  if (a.dtype === 'int32') return a.data;
  if (a.dtype === 'int64' || a.dtype === 'uint8' || a.dtype === 'int16' || a.dtype === 'uint16' || a.dtype === 'int8') {
    const out = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      const v = Number(a.data[i]);
      if (v < 0 || v > 2 ** 31 - 1) throw new GenaugError('E_RANGE', `${path}: label[${i}] = ${v} is not a class index`);
      out[i] = v;
    }
    return out;
  }
  throw new GenaugError('E_DTYPE', `${path}: labels must be integers (int32/int64), got ${a.dtype}`);
}

/** Per-class mean or max of every query row; writes PREFIX.scores.npy (float32, M x C) and PREFIX.counts.npy. */
export async function classFiles(
  op: 'mean' | 'max',
  queryPath: string,
  dbPath: string,
  labelsPath: string,
  outPrefix: string,
  options: FileRunOptions & { numClasses?: number } = {},
) {
  const chunk = checkInt(options.chunkRows ?? 8192, 'chunkRows', 1);
  const q = await NpyRowReader.open(queryPath, { name: queryPath });
  const dbReader = await NpyRowReader.open(dbPath, { name: dbPath });
  try {
    sameDim(q.dim, dbReader.dim, queryPath, dbPath);
    const db = await dbReader.readRows(0, dbReader.rows);
    const labels = await readLabels(labelsPath, db.rows);
    let numClasses = options.numClasses;
    if (numClasses === undefined) numClasses = Math.max(1, labels.reduce((m, v) => Math.max(m, v), -1) + 1);
    const out = await NpyStreamWriter.create(`${outPrefix}.scores.npy`, 'float32', q.rows, numClasses);
    let counts: BigInt64Array | undefined;
    try {
      for (let s = 0; s < q.rows; s += chunk) {
        const m = await q.readRows(s, Math.min(chunk, q.rows - s));
        const r = op === 'mean' ? await classMean(m, db, labels, { ...options, numClasses }) : await classMax(m, db, labels, { ...options, numClasses });
        counts = r.counts;
        await out.append(r.values);
        options.onProgress?.(s + m.rows, q.rows);
      }
      await out.close();
    } catch (e) {
      await out.abort();
      throw e;
    }
    if (!counts) {
      counts = new BigInt64Array(numClasses);
      for (const l of labels) counts[l] = (counts[l] as bigint) + 1n;
    }
    await writeNpy(`${outPrefix}.counts.npy`, counts, [numClasses]);
    return { rows: q.rows, classes: numClasses, files: [`${outPrefix}.scores.npy`, `${outPrefix}.counts.npy`] };
  } finally {
    await q.close();
    await dbReader.close();
  }
}
