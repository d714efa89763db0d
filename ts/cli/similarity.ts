/** `genaug similarity ...`: top-k, per-class scores and near-duplicate pairs over .npy embedding files. */

import { Command, Option } from 'commander';

import { writeFileAtomic } from '../io/atomic.js';
import { readMatrix, writeNpy } from '../io/npy.js';
import { classFiles, topkFiles } from '../kernels/files.js';
import { groupPairs, pairs, rowDot, type SimilarityOptions } from '../kernels/similarity.js';
import { diverseSubset, uniqueness } from '../curate/unique.js';
import { GenaugError } from '../native/errors.js';
import type { Device } from '../native/device.js';
import { deviceOption, intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

interface EngineFlags {
  normalize: boolean;
  device?: Device;
  threads?: number;
  blockMib?: number;
  quiet?: boolean;
}

function engineOptions(o: EngineFlags): SimilarityOptions {
  const out: SimilarityOptions = { normalize: o.normalize };
  if (o.threads !== undefined) out.threads = o.threads;
  if (o.blockMib !== undefined) out.blockBytes = Math.round(o.blockMib * 2 ** 20);
  if (o.device !== undefined && o.device !== 'cpu') out.device = o.device;
  return out;
}

function engineFlags(cmd: Command): Command {
  return cmd
    .option('--no-normalize', 'use raw dot products instead of cosine similarity (rows are L2-normalised by default)')
    .addOption(deviceOption())
    .option('--threads <n>', 'threads to use (default: every core); results do not depend on it', intArg('--threads', 0))
    .option('--block-mib <n>', 'MiB of database packed at a time: the engine memory bound (default 64)', numberArg('--block-mib'))
    .option('--chunk-rows <n>', 'query rows per step (default 8192)', intArg('--chunk-rows', 1))
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nLong runs journal finished chunks in PREFIX.partial/; run the same command again to resume. A partial folder from\na run with other inputs or options is discarded. Inputs: .npy, float32 or float16, C order.',
    );
}

/**
 * Counts of pair scores in `bins` equal bins from the threshold up to the
 * largest score: where the mass sits tells whether the threshold cuts through
 * true duplicates or through merely similar items.
 */
export function histogram(scores: Float32Array, from: number, bins: number): { edges: number[]; counts: number[] } {
  let hi = from;
  for (const s of scores) if (s > hi) hi = s;
  if (hi <= from) hi = from + 1e-6;
  const width = (hi - from) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const s of scores) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor((s - from) / width)));
    counts[b] = (counts[b] as number) + 1;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => +(from + i * width).toFixed(6));
  return { edges, counts };
}

export function similarityCommand(global: GlobalOptions): Command {
  const sim = new Command('similarity').description(
    'exact cosine similarity between embedding files (.npy, float32 or float16, N x D), memory-bounded: the full matrix is never built',
  );

  engineFlags(
    sim
      .command('topk')
      .description('for every query row, the k most similar database rows (best first; ties to the lower index)')
      .requiredOption('--query <file>', 'query embeddings, M x D .npy')
      .requiredOption('--db <file>', 'database embeddings, N x D .npy')
      .requiredOption('--out <prefix>', 'writes PREFIX.indices.npy (int64, M x k) and PREFIX.scores.npy (float32, M x k)')
      .option('--k <n>', 'neighbours per query row (clamped to N)', intArg('--k', 1), 10)
      .addOption(
        new Option(
          '--precision <p>',
          "exact: the float32 result, byte for byte (default); bf16: faster screening with a statistical margin, may miss a neighbour within ~the rounding error of the k-th (scores returned are exact); with --device cuda, a bf16 tensor-core screen with a rigorous bound: the exact result",
        )
          .choices(['exact', 'bf16'])
          .default('exact'),
      )
      .option('--db-budget-mib <n>', 'MiB of database held in memory; larger databases are streamed in chunks (default 2048)', numberArg('--db-budget-mib')),
  ).action(async (o) => {
    let bar: Progress | undefined;
    const r = await topkFiles(o.query, o.db, o.k, o.out, {
      ...engineOptions(o),
      ...(o.precision === 'bf16' ? { precision: 'bf16' as const } : {}),
      ...(o.chunkRows ? { chunkRows: o.chunkRows } : {}),
      ...(o.dbBudgetMib ? { dbBudgetBytes: Math.round(o.dbBudgetMib * 2 ** 20) } : {}),
      onProgress: (done, total) => {
        bar ??= new Progress('topk', total, 'rows', o.quiet);
        bar.update(done);
      },
      onNote: (note) => process.stderr.write(`${note}\n`),
    });
    global.print(`wrote ${r.files.join(' and ')} (${r.rows} x ${r.k})`);
  });

  for (const op of ['mean', 'max'] as const) {
    engineFlags(
      sim
        .command(`class-${op}`)
        .description(
          op === 'mean'
            ? 'for every query row, the mean similarity to each class of the database (computed from class mean vectors, no full product)'
            : 'for every query row, the max similarity to each class of the database (fused blocked product)',
        )
        .requiredOption('--query <file>', 'query embeddings, M x D .npy')
        .requiredOption('--db <file>', 'database embeddings, N x D .npy')
        .requiredOption('--labels <file>', 'class index of every database row, (N,) int32 or int64 .npy')
        .requiredOption('--out <prefix>', 'writes PREFIX.scores.npy (float32, M x C; NaN for empty classes) and PREFIX.counts.npy')
        .option('--num-classes <n>', 'number of classes C (default: largest label + 1)', intArg('--num-classes', 1)),
    ).action(async (o) => {
      let bar: Progress | undefined;
      const r = await classFiles(op, o.query, o.db, o.labels, o.out, {
        ...engineOptions(o),
        ...(o.chunkRows ? { chunkRows: o.chunkRows } : {}),
        ...(o.numClasses ? { numClasses: o.numClasses } : {}),
        onProgress: (done, total) => {
          bar ??= new Progress(`class-${op}`, total, 'rows', o.quiet);
          bar.update(done);
        },
        onNote: (note) => process.stderr.write(`${note}\n`),
      });
      global.print(`wrote ${r.files.join(' and ')} (${r.rows} x ${r.classes})`);
    });
  }

  engineFlags(
    sim
      .command('pairs')
      .description('every pair with similarity >= threshold (near-duplicates), within one set or between two, with groups and a keep mask')
      .requiredOption('--emb <file>', 'embeddings, N x D .npy')
      .option('--emb2 <file>', 'a second set: report pairs between --emb and --emb2 instead of within --emb')
      .requiredOption('--threshold <t>', 'similarity threshold, e.g. 0.95', numberArg('--threshold'))
      .requiredOption('--out <prefix>', 'writes PREFIX.pairs.npy (int64, P x 2), PREFIX.scores.npy (float32, P), PREFIX.groups.npy, PREFIX.keep.npy, PREFIX.summary.json')
      .addOption(new Option('--keep <mode>', 'which rows to keep: component = one per connected group; greedy = drop a row only if it pairs with a kept earlier row (no chaining)').choices(['component', 'greedy']).default('component'))
      .option('--max-pairs <n>', 'stop with an error past this many pairs (default 50000000)', intArg('--max-pairs', 0)),
  ).action(async (o) => {
    const a = await readMatrix(o.emb, { name: o.emb });
    const b = o.emb2 ? await readMatrix(o.emb2, { name: o.emb2 }) : undefined;
    const bar = new Progress('pairs', a.rows, 'rows', o.quiet);
    const list = await pairs(a, b, {
      ...engineOptions(o),
      threshold: o.threshold,
      ...(o.chunkRows ? { chunkRows: o.chunkRows } : {}),
      ...(o.maxPairs !== undefined ? { maxPairs: o.maxPairs } : {}),
      onProgress: (done) => bar.update(done),
    });
    const p = list.scores.length;
    const ij = new BigInt64Array(2 * p);
    for (let x = 0; x < p; x++) {
      ij[2 * x] = BigInt(list.i[x] as number);
      ij[2 * x + 1] = BigInt(list.j[x] as number);
    }
    await writeNpy(`${o.out}.pairs.npy`, ij, [p, 2]);
    await writeNpy(`${o.out}.scores.npy`, list.scores, [p]);
    const files = [`${o.out}.pairs.npy`, `${o.out}.scores.npy`];
    const summary: Record<string, unknown> = {
      threshold: o.threshold,
      normalize: o.normalize,
      pairs: p,
      rows: a.rows,
      scoreHistogram: histogram(list.scores, o.threshold, 20),
    };
    if (!b) {
      const g = groupPairs(a.rows, list, o.keep);
      await writeNpy(`${o.out}.groups.npy`, g.group, [a.rows]);
      await writeNpy(`${o.out}.keep.npy`, g.keep, [a.rows], { dtype: 'bool' });
      files.push(`${o.out}.groups.npy`, `${o.out}.keep.npy`);
      const kept = g.keep.reduce((s, v) => s + v, 0);
      Object.assign(summary, { keepMode: o.keep, duplicateGroups: g.duplicateGroups, kept, dropped: a.rows - kept });
    } else {
      summary.rows2 = b.rows;
    }
    await writeFileAtomic(`${o.out}.summary.json`, new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
    files.push(`${o.out}.summary.json`);
    global.print(`${p} pairs >= ${o.threshold}${summary.kept !== undefined ? `; keep ${summary.kept} of ${a.rows} (${summary.duplicateGroups} duplicate groups, --keep ${o.keep})` : ''}`);
    global.print(`wrote ${files.join(', ')}`);
  });

  engineFlags(
    sim
      .command('row-dot')
      .description('similarity of aligned rows (row i of --a with row i of --b), e.g. CLIP image-text scores')
      .requiredOption('--a <file>', 'N x D .npy')
      .requiredOption('--b <file>', 'N x D .npy')
      .requiredOption('--out <prefix>', 'writes PREFIX.scores.npy (float32, N)'),
  ).action(async (o) => {
    const a = await readMatrix(o.a, { name: o.a });
    const b = await readMatrix(o.b, { name: o.b });
    const r = await rowDot(a, b, engineOptions(o));
    await writeNpy(`${o.out}.scores.npy`, r, [r.length]);
    global.print(`wrote ${o.out}.scores.npy (${r.length})`);
  });

  engineFlags(
    sim
      .command('unique')
      .description(
        'uniqueness of each row against the whole set (1 - weighted similarity to its k nearest other rows), the nearest-neighbour ' +
          'similarity histogram (where a near-duplicate threshold should cut), and with --select N a mutually diverse subset (greedy max-min)',
      )
      .requiredOption('--emb <file>', 'embeddings, N x D .npy')
      .requiredOption('--out <prefix>', 'writes PREFIX.uniqueness.npy, PREFIX.nearest.npy (float32, N), PREFIX.summary.json [, PREFIX.selected.npy]')
      .option('--k <n>', 'neighbours per row', intArg('--k', 1, 1024), 3)
      .option('--weights <list>', 'weight of the 1st..kth neighbour, comma-separated (default 0.6,0.3,0.1 for k = 3, else equal)')
      .option('--select <n>', 'also pick N mutually dissimilar rows (greedy max-min, N x rows x D work); PREFIX.selected.npy lists them in pick order', intArg('--select', 0)),
  ).action(async (o) => {
    const e = await readMatrix(o.emb, { name: o.emb });
    const weights = o.weights === undefined ? undefined : String(o.weights).split(',').map((w: string) => Number(w));
    if (weights && weights.some((w: number) => !Number.isFinite(w))) throw new GenaugError('E_ARGUMENT', `--weights must be numbers separated by commas, got ${o.weights}`);
    const u = await uniqueness(e, { ...engineOptions(o), k: o.k, ...(weights ? { weights } : {}) });
    await writeNpy(`${o.out}.uniqueness.npy`, u.uniqueness, [e.rows]);
    await writeNpy(`${o.out}.nearest.npy`, u.nearest, [e.rows]);
    const files = [`${o.out}.uniqueness.npy`, `${o.out}.nearest.npy`];
    const finite = u.nearest.filter((v) => Number.isFinite(v));
    const summary: Record<string, unknown> = { rows: e.rows, k: u.k, weights: u.weights, normalize: o.normalize, nearestHistogram: histogram(finite, -1, 40) };
    if (o.select !== undefined) {
      if (o.select > e.rows) throw new GenaugError('E_ARGUMENT', `--select ${o.select} is more than the ${e.rows} rows`);
      const bar = new Progress('select', o.select, 'picks', o.quiet);
      const d = await diverseSubset(e, o.select, { normalize: o.normalize, onProgress: (done) => bar.update(done) });
      await writeNpy(`${o.out}.selected.npy`, BigInt64Array.from(d.indices, (v) => BigInt(v)), [d.indices.length]);
      files.push(`${o.out}.selected.npy`);
      summary.selected = d.indices.length;
      summary.lastPickMaxSimilarity = d.indices.length > 1 ? d.coverage[d.indices.length - 1] : null;
    }
    await writeFileAtomic(`${o.out}.summary.json`, new TextEncoder().encode(JSON.stringify(summary, null, 1) + '\n'));
    files.push(`${o.out}.summary.json`);
    global.print(`wrote ${files.join(', ')}`);
  });

  return sim;
}

