/** Test helpers: deterministic data and a plain double-precision oracle. */
import type { Matrix } from '../ts/index.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

export function randomMatrix(rows: number, dim: number, seed: number): Matrix {
  const r = rng(seed);
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
