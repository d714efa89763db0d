/** `genaug gap`: domain gap and diversity between real and synthetic embeddings. */
import { Command } from 'commander';

import { datasetGap, GAP_PROJECTION_SEED, randomProjection } from '../curate/gap.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readMatrix } from '../io/npy.js';
import { readLabels } from '../kernels/files.js';
import { GenaugError } from '../native/errors.js';
import { intArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

export function gapCommand(global: GlobalOptions): Command {
  return new Command('gap')
    .description('how far synthetic embeddings are from real ones and how diverse each set is, overall and per class: Fréchet distance, nearest-neighbour similarity both ways, Vendi score')
    .requiredOption('--real <file>', 'real embeddings, N x D .npy (float32/float16)')
    .requiredOption('--synthetic <file>', 'synthetic embeddings, M x D .npy')
    .option('--real-labels <file>', 'class of each real row, (N,) int .npy (with --synthetic-labels: per-class figures)')
    .option('--synthetic-labels <file>', 'class of each synthetic row, (M,) int .npy')
    .requiredOption('--out <file>', 'gap.json')
    .option('--project <dim>', `first project both sets to DIM columns by the run report's seeded Gaussian random projection (seed ${GAP_PROJECTION_SEED}; the report uses 128), so the figures match the report's; embeddings not wider than DIM are used as they are`, intArg('--project', 1, 8192))
    .option('--no-normalize', 'compute the Fréchet distance on raw rows (default: L2-normalised rows)')
    .option('--threads <n>', 'threads (default: every core)', intArg('--threads', 0))
    .option('-q, --quiet', 'no progress output')
    .action(async (o) => {
      if (Boolean(o.realLabels) !== Boolean(o.syntheticLabels)) {
        throw new GenaugError('E_ARGUMENT', 'give both --real-labels and --synthetic-labels, or neither');
      }
      let real = await readMatrix(o.real, { name: o.real });
      let synthetic = await readMatrix(o.synthetic, { name: o.synthetic });
      if (real.dim !== synthetic.dim) throw new GenaugError('E_SHAPE', `${o.real} has ${real.dim} columns but ${o.synthetic} has ${synthetic.dim}`);
      const projected = o.project !== undefined && real.dim > o.project;
      if (projected) {
        real = randomProjection(real, o.project, GAP_PROJECTION_SEED);
        synthetic = randomProjection(synthetic, o.project, GAP_PROJECTION_SEED);
      }
      const labels = o.realLabels
        ? { real: await readLabels(o.realLabels, real.rows), synthetic: await readLabels(o.syntheticLabels, synthetic.rows) }
        : undefined;
      let bar: Progress | undefined;
      const report = await datasetGap(real, synthetic, labels, {
        normalize: o.normalize,
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        onClass: (done, total) => {
          bar ??= new Progress('gap', total, 'classes', o.quiet);
          bar.update(done);
        },
      });
      const out = { real: o.real, synthetic: o.synthetic, normalize: o.normalize, project: projected ? { dim: o.project, seed: GAP_PROJECTION_SEED } : null, ...report };
      await writeFileAtomic(o.out, new TextEncoder().encode(JSON.stringify(out, null, 2) + '\n'));
      const g = report.overall;
      const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
      global.print(`overall: Fréchet ${f(g.frechet)}, synthetic->real NN ${f(g.syntheticToReal)}, real->synthetic NN ${f(g.realToSynthetic)}, Vendi real ${f(g.vendiReal)} / synthetic ${f(g.vendiSynthetic)}`);
      global.print(`wrote ${o.out}`);
    });
}
