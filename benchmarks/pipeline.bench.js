// The whole pipeline (`genaug run`) on the procedural world: seconds per stage
// for a cold run, then a warm re-run (every stage up to date: the cost of the
// fingerprint and output checks), then a re-run after changing one filter
// option (filter, pool, paste and report again).
//   node benchmarks/pipeline.bench.js [--images 48 --per-class 20 --size 128 --quick]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { args, emit, loadGenaug, machine } from './lib.js';

const a = args({ images: 48, 'per-class': 20, size: 128 });
if (a.quick) Object.assign(a, { images: 12, 'per-class': 6, size: 96 });
const g = await loadGenaug();
const dir = mkdtempSync(join(tmpdir(), 'genaug-bench-pipeline-'));
try {
  await g.writeRealDataset({ out: join(dir, 'data'), seed: 1, images: a.images });
  const config = (min) => ({
    name: 'bench',
    seed: 1,
    run_dir: 'run',
    real: { coco: 'data/annotations.json', images: 'data/images' },
    plan: { strategy: 'template', per_class: a['per-class'], rare_per_class: 2 * a['per-class'], width: a.size, height: a.size },
    generate: { backend: 'procedural', concurrency: 2 },
    annotate: { workers: 0 },
    embed: { model: 'features', real_crop_padding: 4 },
    filter: { rules: ['divergen'], inter_similarity_min: min, dedup_threshold: 0.995, reject_border: true, require_own_class_best: true },
    paste: { max_samples: 8, workers: 0 },
    export: { formats: ['coco', 'webdataset'], shard_size: 16 },
  });
  const file = join(dir, 'run.yaml');
  const runOnce = async (label, min) => {
    writeFileSync(file, JSON.stringify(config(min)));
    const t0 = process.hrtime.bigint();
    const r = await g.runPipeline(await g.loadConfig(file));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const stages = Object.fromEntries(r.ran.map((s) => [s, r.manifest.stages[s].seconds]));
    const gen = r.manifest.stages.generate.summary;
    emit({ bench: 'pipeline', run: label, wall_s: Number(wall.toFixed(3)), ran: r.ran.length, skipped: r.skipped.length, stages, generated: gen.images, kept: r.manifest.stages.filter.summary.kept, real_images: a.images, size: a.size, ...machine() });
  };
  await runOnce('cold', 0.28);
  await runOnce('warm (all up to date)', 0.28);
  await runOnce('filter changed', 0.3);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
