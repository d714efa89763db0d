#!/usr/bin/env node
// CLIS-L throughput: layouts/s of the native scorer on random layouts against
// a random relation pool (--layouts, --examples per call, --objects per
// layout, --relations per layout), on 1 thread and on every core, both modes.
// Prints one JSON line. Usage: node benchmarks/clis.bench.js [--layouts 5000] [--examples 20000]
import { args, emit, loadGenaug, machine, time } from './lib.js';

const o = args({ layouts: 5000, examples: 20000, objects: 5, relations: 3, names: 200, predicates: 20, reps: 3 });
const g = await loadGenaug();
const { seededRandom } = await import('../dist/util/random.js');
const r = seededRandom(1);
const names = Array.from({ length: o.names }, (_, i) => `name${i}`);
const preds = Array.from({ length: o.predicates }, (_, i) => (i % 5 === 0 ? `left of ${i}` : `pred ${i}`));
const box = () => [r() * 0.6, r() * 0.6, 0.05 + r() * 0.35, 0.05 + r() * 0.35];
const pick = (a) => a[Math.floor(r() * a.length)];
const examples = Array.from({ length: o.examples }, () => ({ predicate: pick(preds), subject: pick(names), object: pick(names), subjectBox: box(), objectBox: box() }));
const pool = g.buildRelationPool(examples);
// Names cluster in groups of 10 with high similarity inside a group (so each pair has candidates).
const sim = g.nameSimilarityFromFunction(names, pool.names, (a, b) => (Math.floor(+a.slice(4) / 10) === Math.floor(+b.slice(4) / 10) ? 0.85 : 0.1));
const layouts = Array.from({ length: o.layouts }, () => ({
  objects: Array.from({ length: o.objects }, () => ({ name: pick(names), box: box() })),
  relations: Array.from({ length: o.relations }, () => ({ subject: Math.floor(r() * o.objects), predicate: pick(preds), object: Math.floor(r() * o.objects) })),
}));
const results = {};
for (const faithful of [false, true]) {
  for (const threads of [1, 0]) {
    const t = await time(() => g.clisLayout(layouts, pool, sim, { faithful, threads }), o.reps);
    results[`${faithful ? 'faithful' : 'intended'}_${threads === 1 ? '1thread' : 'allcores'}_layouts_per_s`] = Math.round(o.layouts / t.median_s);
  }
}
const pack = await time(() => g.packLayouts(layouts, pool, sim), o.reps);
emit({ bench: 'clis-layout', layouts: o.layouts, examples: o.examples, objects: o.objects, relations: o.relations, ...results, pack_s: +pack.median_s.toFixed(4), machine: machine() });
