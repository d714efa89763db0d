/**
 * Similarity over .npy files of any size: the query streams through in
 * chunks of rows, and the database is read whole when it fits the memory
 * budget or in chunks (merged exactly with mergeTopk64: int64 indices) when it does not.
 * Outputs are written row by row through atomic stream writers.
 */
import { ChunkJournal } from '../io/journal.js';
import { NpyRowReader, NpyStreamWriter, readNpy, writeNpy } from '../io/npy.js';
import { GenaugError } from '../native/errors.js';
import { capabilities } from '../native/load.js';
import {
  classMax,
  classMean,
  mergeTopk64,
  topk64,
  type SimilarityOptions,
  type TopK64,
} from './similarity.js';
import { checkInt, type Matrix } from '../native/validate.js';

export interface FileRunOptions extends SimilarityOptions {
  /** Query rows per step (default 8192). */
  chunkRows?: number;
  /** Bytes of database held in memory at once (default 2 GiB). */
  dbBudgetBytes?: number;
  onProgress?: (done: number, total: number) => void;
  /** Hears about resumed or discarded partial runs. */
  onNote?: (note: string) => void;
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

/**
 * Top-k of every row of `queryPath` against `dbPath`; writes
 * PREFIX.indices.npy (int64) and PREFIX.scores.npy (float32). Finished chunks
 * of query rows are journaled in PREFIX.partial/, so a killed run started
 * again with the same inputs and options resumes where it stopped.
 */
export async function topkFiles(queryPath: string, dbPath: string, k: number, outPrefix: string, options: FileRunOptions = {}) {
  checkInt(k, 'k', 1, 2 ** 31);
  const chunk = checkInt(options.chunkRows ?? 8192, 'chunkRows', 1);
  const budget = checkInt(options.dbBudgetBytes ?? 2 ** 31, 'dbBudgetBytes', 1);
  const q = await NpyRowReader.open(queryPath, { name: queryPath });
  try {
    const dbHeader = await NpyRowReader.open(dbPath, { name: dbPath });
    const dbRows = dbHeader.rows;
    await dbHeader.close();
    sameDim(q.dim, dbHeader.dim, queryPath, dbPath);
    // No neighbour to find: said here, naming the file (the k = 0 output writer would otherwise refuse a width of 0).
    if (dbRows === 0) throw new GenaugError('E_SHAPE', `${dbPath} has 0 rows: top-k needs at least one database row`, { path: dbPath });
    const kk = Math.min(k, dbRows);
    const journal = await ChunkJournal.open(
      `${outPrefix}.partial`,
      { inputs: [queryPath, dbPath], params: { op: 'topk', k, chunkRows: chunk, normalize: options.normalize ?? true, isa: isaOf(options), ...(options.precision === 'bf16' ? { precision: 'bf16' } : {}) } },
      options.onNote,
    );
    const rowBytes = kk * 12;
    let db: DbSource | undefined;
    try {
      for (let s = 0; s < q.rows; s += chunk) {
        const rows = Math.min(chunk, q.rows - s);
        const key = `rows-${s}`;
        if (!journal.has(key) && kk > 0) {
          db ??= await openDb(dbPath, budget);
          const m = await q.readRows(s, rows);
          let acc: TopK64 | undefined;
          for await (const part of db.chunks()) {
            const describe = { query: queryPath, database: dbPath, queryRowOffset: s, databaseRowOffset: part.start };
            const r = await topk64(m, part.m, k, { ...options, describe });
            acc = acc === undefined ? shift(r, part.start) : mergeTopk64(acc, r, part.start, k);
          }
          if (!acc) throw new GenaugError('E_INTERNAL', 'topkFiles: no database chunk was read');
          await journal.put(key, [bytes(acc.indices), bytes(acc.scores)]);
        }
        options.onProgress?.(s + rows, q.rows);
      }
    } finally {
      await db?.close();
    }
    // Every chunk is in the journal: write the final files from it.
    const idxOut = await NpyStreamWriter.create(`${outPrefix}.indices.npy`, 'int64', q.rows, kk);
    const scoreOut = await NpyStreamWriter.create(`${outPrefix}.scores.npy`, 'float32', q.rows, kk);
    try {
      for (let s = 0; s < q.rows && kk > 0; s += chunk) {
        const rows = Math.min(chunk, q.rows - s);
        const data = await journal.get(`rows-${s}`, rows * rowBytes);
        await idxOut.append(new BigInt64Array(data.buffer, 0, rows * kk));
        await scoreOut.append(new Float32Array(data.buffer, rows * kk * 8, rows * kk));
      }
      await idxOut.close();
      await scoreOut.close();
    } catch (e) {
      await idxOut.abort();
      await scoreOut.abort();
      throw e;
    }
    await journal.remove();
    return { rows: q.rows, k: kk, resumedChunks: journal.resumed, files: [`${outPrefix}.indices.npy`, `${outPrefix}.scores.npy`] };
  } finally {
    await q.close();
  }
}

function bytes(a: BigInt64Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function shift(r: TopK64, offset: number): TopK64 {
  if (offset === 0) return r;
  const o = BigInt(offset);
  for (let x = 0; x < r.indices.length; x++) {
    const v = r.indices[x] as bigint;
    if (v >= 0n) r.indices[x] = v + o;
  }
  return r;
}

/** The SIMD level a run uses: part of a journal's identity, since scores differ in the last bits across levels. */
function isaOf(options: SimilarityOptions): string {
  const caps = capabilities();
  if (!options.isa || options.isa === 'auto') return caps.isa;
  const order = ['scalar', 'avx2', 'avx512'];
  return order[Math.min(order.indexOf(options.isa), order.indexOf(caps.isaBest))] ?? caps.isa;
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

/**
 * Per-class mean or max of every query row; writes PREFIX.scores.npy
 * (float32, M x C) and PREFIX.counts.npy. Journaled and resumable like topkFiles.
 */
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
  let dbReader: NpyRowReader | undefined;
  try {
    dbReader = await NpyRowReader.open(dbPath, { name: dbPath });
    sameDim(q.dim, dbReader.dim, queryPath, dbPath);
    const labels = await readLabels(labelsPath, dbReader.rows);
    const maxLabel = labels.reduce((m, v) => Math.max(m, v), -1);
    const C = options.numClasses ?? Math.max(1, maxLabel + 1);
    if (maxLabel >= C) {
      const at = labels.findIndex((l) => l >= C);
      throw new GenaugError('E_RANGE', `${labelsPath}: label[${at}] = ${labels[at]} is outside [0, ${C}) (numClasses ${C})`);
    }
    const journal = await ChunkJournal.open(
      `${outPrefix}.partial`,
      { inputs: [queryPath, dbPath, labelsPath], params: { op: `class-${op}`, numClasses: C, chunkRows: chunk, normalize: options.normalize ?? true, isa: isaOf(options) } },
      options.onNote,
    );
    let db: Matrix | undefined;
    for (let s = 0; s < q.rows; s += chunk) {
      const rows = Math.min(chunk, q.rows - s);
      const key = `rows-${s}`;
      if (!journal.has(key)) {
        db ??= await dbReader.readRows(0, dbReader.rows);
        const m = await q.readRows(s, rows);
        const opts = { ...options, numClasses: C, describe: { query: queryPath, database: dbPath, queryRowOffset: s } };
        const r = op === 'mean' ? await classMean(m, db, labels, opts) : await classMax(m, db, labels, opts);
        await journal.put(key, [new Uint8Array(r.values.buffer, r.values.byteOffset, r.values.byteLength)]);
      }
      options.onProgress?.(s + rows, q.rows);
    }
    const out = await NpyStreamWriter.create(`${outPrefix}.scores.npy`, 'float32', q.rows, C);
    try {
      for (let s = 0; s < q.rows; s += chunk) {
        const rows = Math.min(chunk, q.rows - s);
        const data = await journal.get(`rows-${s}`, rows * C * 4);
        await out.append(new Float32Array(data.buffer, 0, rows * C));
      }
      await out.close();
    } catch (e) {
      await out.abort();
      throw e;
    }
    const counts = new BigInt64Array(C);
    for (const l of labels) counts[l] = (counts[l] as bigint) + 1n;
    await writeNpy(`${outPrefix}.counts.npy`, counts, [C]);
    await journal.remove();
    return { rows: q.rows, classes: C, resumedChunks: journal.resumed, files: [`${outPrefix}.scores.npy`, `${outPrefix}.counts.npy`] };
  } finally {
    await q.close();
    await dbReader?.close();
  }
}
