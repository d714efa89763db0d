/** `genaug pool`: the kept instances of an annotated pool (genaug filter's kept.jsonl) as the pool genaug paste reads. */
import { Command } from 'commander';

import { selectPool } from '../curate/pool.js';
import { readScores } from '../curate/table.js';
import { readCoco } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { readJsonObjects } from '../util/jsonl.js';
import { intArg, type GlobalOptions } from './args.js';

export function poolCommand(global: GlobalOptions): Command {
  return new Command('pool')
    .description('build the pool genaug paste reads from the kept instances: copies each kept cut-out of an annotated pool into OUT/instances/<class>/, writes OUT/index.json and OUT/size_prior.json (X-Paste area_mean_std2.json from the real dataset)')
    .requiredOption('--annotated <dir>', 'the folder genaug annotate wrote (index.json + instances/)')
    .requiredOption('--kept <file>', 'kept samples, JSON lines {"id": <generated file>} (genaug filter --out)')
    .requiredOption('--scores <file>', 'the scores table the filter read (category, similarity, area fraction of each sample)')
    .requiredOption('--coco <file>', 'the real COCO/LVIS file (size priors; classes in id order unless --categories)')
    .option('--categories <list>', 'comma-separated class names of the pool, in order (default: every real category by id)')
    .option('--max-per-class <n>', 'keep at most n per class, the most similar to the real crops first (0 = all)', intArg('--max-per-class', 0), 0)
    .requiredOption('--out <dir>', 'the pool folder')
    .option('--allow-empty', 'write a pool with no instance instead of failing (E_EMPTY) when nothing kept is in the annotated pool', false)
    .action(async (o) => {
      const kept: string[] = [];
      for (const { line, value } of await readJsonObjects(o.kept, 'the kept samples')) {
        if (typeof value.id !== 'string') throw new GenaugError('E_FORMAT', `${o.kept}:${line}: each line needs an "id" string`, { path: o.kept, line });
        kept.push(value.id);
      }
      const r = await selectPool({
        annotated: o.annotated,
        kept,
        scores: await readScores(o.scores),
        coco: await readCoco(o.coco, { polygons: 'packed' }),
        ...(o.categories ? { classes: String(o.categories).split(',').map((c: string) => c.trim()) } : {}),
        maxPerClass: o.maxPerClass,
        out: o.out,
        allowEmpty: o.allowEmpty === true,
      });
      global.print(`pool: ${r.instances} instances (${Object.entries(r.perClass).map(([k, v]) => `${k} ${v}`).join(', ')}) in ${o.out}`);
    });
}
