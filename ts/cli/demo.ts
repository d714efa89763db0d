/**
 * `genaug demo`: runs what genaug has so far on generated data, with no model
 * or server. It draws a "real" embedding set (several classes, one rare) and a
 * "synthetic" set with the failure cases generative data has (off-class
 * samples, near-duplicates), then removes near-duplicates, scores every
 * synthetic sample against the real classes (DiverGen-style inter-similarity)
 * and checks its nearest real neighbours, and reports how well the filters
 * caught the planted failures. Later stages join this demo as they land.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { writeFileAtomic } from '../io/atomic.js';
import { readMatrix, readNpy, writeNpy } from '../io/npy.js';
import { classFiles, topkFiles } from '../kernels/files.js';
import { groupPairs, pairs } from '../kernels/similarity.js';
import { datasetGap } from '../curate/gap.js';
import { capabilities } from '../native/load.js';
import { gaussian, seededRandom } from '../util/random.js';
import type { GlobalOptions } from './args.js';

export interface DemoOptions {
  out: string;
  seed: number;
  dim: number;
  quiet?: boolean;
}

export const DEMO_CLASSES = ['cat', 'dog', 'car', 'bicycle', 'chair', 'bottle', 'umbrella', 'unicycle'];
const REAL_PER_CLASS = [400, 400, 400, 400, 300, 300, 200, 12]; // the last class is rare

export async function runDemo(o: DemoOptions, global: GlobalOptions) {
  const out = resolve(o.out);
  await mkdir(out, { recursive: true });
  const r = seededRandom(o.seed);
  const D = o.dim;
  const C = DEMO_CLASSES.length;
  const centroids: Float64Array[] = [];
  for (let c = 0; c < C; c++) centroids.push(Float64Array.from({ length: D }, () => gaussian(r)));
  const sample = (c: number, spread: number, into: Float32Array, row: number) => {
    const cen = centroids[c] as Float64Array;
    for (let k = 0; k < D; k++) into[row * D + k] = (cen[k] as number) + spread * gaussian(r);
  };

  // Real set.
  const nReal = REAL_PER_CLASS.reduce((a, b) => a + b, 0);
  const real = new Float32Array(nReal * D);
  const realLabels = new Int32Array(nReal);
  let row = 0;
  REAL_PER_CLASS.forEach((n, c) => {
    for (let i = 0; i < n; i++, row++) {
      sample(c, 1.1, real, row);
      realLabels[row] = c;
    }
  });

  // Synthetic set: 120 per class; 10 % drawn from another class (off-class
  // generations), 8 % near-copies of an earlier sample (mode collapse).
  const perClass = 120;
  const nSyn = perClass * C;
  const syn = new Float32Array(nSyn * D);
  const synLabels = new Int32Array(nSyn);
  const truth: Array<'ok' | 'off-class' | 'near-duplicate'> = [];
  row = 0;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < perClass; i++, row++) {
      synLabels[row] = c;
      const u = r();
      if (u < 0.1) {
        sample((c + 1 + Math.floor(r() * (C - 1))) % C, 0.9, syn, row);
        truth.push('off-class');
      } else if (u < 0.18 && i > 0) {
        const src = row - 1 - Math.floor(r() * i);
        for (let k = 0; k < D; k++) syn[row * D + k] = (syn[src * D + k] as number) + 0.01 * gaussian(r);
        truth.push('near-duplicate');
      } else {
        sample(c, 0.9, syn, row);
        truth.push('ok');
      }
    }
  }

  const f = (name: string) => join(out, name);
  await writeNpy(f('real.npy'), real, [nReal, D]);
  await writeNpy(f('real_labels.npy'), realLabels, [nReal]);
  await writeNpy(f('synthetic.npy'), syn, [nSyn, D]);
  await writeNpy(f('synthetic_labels.npy'), synLabels, [nSyn]);
  const say = (s: string) => {
    if (!o.quiet) process.stderr.write(`${s}\n`);
  };
  say(`demo: ${nReal} real embeddings (${C} classes, '${DEMO_CLASSES[C - 1]}' rare with ${REAL_PER_CLASS[C - 1]}), ${nSyn} synthetic, D = ${D}`);

  // 1. Near-duplicates within the synthetic set.
  const t0 = Date.now();
  const synM = await readMatrix(f('synthetic.npy'));
  const dup = await pairs(synM, undefined, { threshold: 0.98 });
  const groups = groupPairs(nSyn, dup, 'greedy');
  await writeNpy(f('dedup.keep.npy'), groups.keep, [nSyn], { dtype: 'bool' });
  say(`near-duplicates: ${dup.scores.length} pairs >= 0.98, ${nSyn - groups.keep.reduce((s, v) => s + v, 0)} dropped`);

  // 2. Inter-similarity: mean cosine of each synthetic sample to each real class.
  await classFiles('mean', f('synthetic.npy'), f('real.npy'), f('real_labels.npy'), f('inter'), { chunkRows: 256 });
  const inter = await readNpy(f('inter.scores.npy'));
  const interScores = inter.data as Float32Array;

  // 3. Nearest real neighbours of every synthetic sample.
  await topkFiles(f('synthetic.npy'), f('real.npy'), 5, f('knn'), { chunkRows: 256 });
  const knn = await readNpy(f('knn.indices.npy'));
  const knnIdx = knn.data as BigInt64Array;

  // Filter: keep a sample when its own class has the highest mean similarity
  // and most of its 5 nearest real neighbours share its label; drop kept-out duplicates.
  const reasons: string[] = [];
  const keep = new Uint8Array(nSyn);
  for (let i = 0; i < nSyn; i++) {
    const own = synLabels[i] as number;
    let best = 0;
    for (let c = 1; c < C; c++) if ((interScores[i * C + c] as number) > (interScores[i * C + best] as number)) best = c;
    let agree = 0;
    for (let x = 0; x < 5; x++) agree += realLabels[Number(knnIdx[i * 5 + x])] === own ? 1 : 0;
    if (groups.keep[i] === 0) reasons.push('near-duplicate');
    else if (best !== own) reasons.push(`closer to '${DEMO_CLASSES[best]}' than to its own class`);
    else if (agree < 3) reasons.push(`only ${agree}/5 nearest real neighbours share its class`);
    else {
      reasons.push('kept');
      keep[i] = 1;
    }
  }
  await writeNpy(f('filter.keep.npy'), keep, [nSyn], { dtype: 'bool' });

  // How well did the filters catch the planted failures?
  const caught = { 'off-class': 0, 'near-duplicate': 0 };
  const planted = { 'off-class': 0, 'near-duplicate': 0 };
  let falseDrops = 0;
  for (let i = 0; i < nSyn; i++) {
    const t = truth[i];
    if (t === 'ok') {
      if (keep[i] === 0) falseDrops++;
    } else if (t !== undefined) {
      planted[t]++;
      if (keep[i] === 0) caught[t]++;
    }
  }
  const perClassKept = DEMO_CLASSES.map((name, c) => ({
    class: name,
    realImages: REAL_PER_CLASS[c],
    synthetic: perClass,
    kept: Array.from(keep).filter((v, i) => v === 1 && synLabels[i] === c).length,
  }));
  // Domain gap and diversity before and after filtering.
  const keptRows = Array.from(keep).flatMap((v, i) => (v ? [i] : []));
  const keptM = { data: new Float32Array(keptRows.length * D), rows: keptRows.length, dim: D };
  keptRows.forEach((r0, o) => keptM.data.set(syn.subarray(r0 * D, (r0 + 1) * D), o * D));
  const keptLabels = Int32Array.from(keptRows, (r0) => synLabels[r0] as number);
  const realM = { data: real, rows: nReal, dim: D };
  const gapAll = await datasetGap(realM, synM, undefined);
  const gapKept = await datasetGap(realM, keptM, { real: realLabels, synthetic: keptLabels });
  say(
    `domain gap (Fréchet, real vs synthetic): ${gapAll.overall.frechet?.toFixed(4)} before filtering, ${gapKept.overall.frechet?.toFixed(4)} after; ` +
      `Vendi of the synthetic set ${gapAll.overall.vendiSynthetic?.toFixed(1)} -> ${gapKept.overall.vendiSynthetic?.toFixed(1)}`,
  );

  const summary = {
    seed: o.seed,
    dim: D,
    real: nReal,
    synthetic: nSyn,
    kept: keep.reduce((s, v) => s + v, 0),
    planted,
    caught,
    falseDrops,
    perClass: perClassKept,
    reasons: reasons.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {}),
    gap: {
      beforeFiltering: gapAll.overall,
      afterFiltering: gapKept.overall,
      perClassAfterFiltering: gapKept.perClass?.map((g) => ({ ...g, name: DEMO_CLASSES[g.class] })),
    },
    seconds: (Date.now() - t0) / 1000,
    isa: capabilities().isa,
    files: ['real.npy', 'real_labels.npy', 'synthetic.npy', 'synthetic_labels.npy', 'dedup.keep.npy', 'inter.scores.npy', 'inter.counts.npy', 'knn.indices.npy', 'knn.scores.npy', 'filter.keep.npy', 'summary.json'],
  };
  await writeFileAtomic(f('summary.json'), new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
  global.print(
    `kept ${summary.kept} of ${nSyn} synthetic samples; caught ${caught['off-class']}/${planted['off-class']} off-class and ` +
      `${caught['near-duplicate']}/${planted['near-duplicate']} near-duplicates, ${falseDrops} good samples dropped`,
  );
  global.print(`outputs in ${out} (summary.json lists them)`);
  return summary;
}
