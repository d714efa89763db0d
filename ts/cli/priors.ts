/** `genaug priors`: per-category counts, frequency group and the X-Paste size prior from a COCO/LVIS file. */
import { Command } from 'commander';

import { writeFileAtomic } from '../io/atomic.js';
import { readCoco } from '../io/coco.js';
import { categoryPriors, sizePriorTable } from '../plan/priors.js';
import type { GlobalOptions } from './args.js';

export function priorsCommand(global: GlobalOptions): Command {
  return new Command('priors')
    .description('size prior per category: mean and population std of sqrt(box area / image area) (crowd and empty boxes left out), with image/instance counts and the r/c/f group')
    .requiredOption('--coco <file>', 'COCO/LVIS instances json')
    .requiredOption('--out <file>', 'priors json {"<category id>": [mean, std]} (X-Paste area_mean_std2.json form; genaug paste --priors reads it)')
    .option('--details <file>', 'also write every category\'s counts, frequency group and prior as a json list')
    .action(async (o) => {
      const coco = await readCoco(o.coco);
      const priors = categoryPriors(coco);
      const table = sizePriorTable(priors);
      await writeFileAtomic(o.out, new TextEncoder().encode(JSON.stringify(table, null, 1) + '\n'));
      if (o.details) await writeFileAtomic(o.details, new TextEncoder().encode(JSON.stringify(priors, null, 1) + '\n'));
      global.print(`${Object.keys(table).length} of ${priors.length} categories have a size prior (${coco.problems.length} annotations skipped as unusable)`);
    });
}
