/** `genaug priors`: class counts, frequency groups, size prior, co-occurring object sets and real layouts from a COCO/LVIS file. */
import { Command } from 'commander';

import { writeFileAtomic } from '../io/atomic.js';
import { readCoco } from '../io/coco.js';
import { GenaugError } from '../native/errors.js';
import { buildPriors, sizePriorTable } from '../plan/priors.js';
import { intArg, numberArg, type GlobalOptions } from './args.js';

const json = (v: unknown, pretty = false) => new TextEncoder().encode(JSON.stringify(v, null, pretty ? 2 : undefined) + '\n');

export function priorsCommand(global: GlobalOptions): Command {
  return new Command('priors')
    .description('real-data priors from a COCO/LVIS file: per-class image/instance counts, r/c/f group, repeat factor and size prior; the object sets that co-occur in real images with their real layouts')
    .requiredOption('--coco <file>', 'COCO/LVIS instances JSON')
    .requiredOption('--out <file>', 'priors.json (schema in the README, "genaug priors")')
    .option('--size-table <file>', 'also write the X-Paste/DiverGen area_mean_std2.json table {"<category id>": [mean, std]}')
    .option('--rare-max <n>', 'classes in at most this many images are "r"', intArg('--rare-max', 0), 10)
    .option('--common-max <n>', 'classes in at most this many images (and more than --rare-max) are "c"; more are "f"', intArg('--common-max', 0), 100)
    .option('--max-objects <n>', 'longest object list per image; a larger image keeps its largest boxes', intArg('--max-objects', 1, 10000), 26)
    .option('--min-objects <n>', 'images with fewer objects are left out of the sets', intArg('--min-objects', 1, 10000), 1)
    .option('--max-layouts <n>', 'real layouts stored per object set', intArg('--max-layouts', 0, 100000), 16)
    .option('--rfs-threshold <t>', 'repeat-factor threshold t in r_c = max(1, sqrt(t / f_c)) (LVIS RFS: 0.001)', numberArg('--rfs-threshold'), 0.001)
    .option('--pretty', 'indent the JSON')
    .action(async (o) => {
      if (!(o.rfsThreshold > 0 && o.rfsThreshold <= 1)) throw new GenaugError('E_ARGUMENT', `--rfs-threshold must be in (0, 1], got ${o.rfsThreshold}`);
      const coco = await readCoco(o.coco, { polygons: 'packed' });
      const priors = buildPriors(coco, {
        rareMax: o.rareMax,
        commonMax: Math.max(o.commonMax, o.rareMax),
        maxObjects: o.maxObjects,
        minObjects: o.minObjects,
        maxLayouts: o.maxLayouts,
        rfsThreshold: o.rfsThreshold,
      });
      if (priors.categories.length === 0 || priors.sets.length === 0) {
        // Nothing a plan could use: no priors file rather than an empty one.
        const skipped = coco.problems.length ? `; ${coco.problems.length} annotations were unusable (first: ${coco.problems[0]!.where}: ${coco.problems[0]!.message})` : '';
        throw new GenaugError(
          'E_FORMAT',
          `${o.coco} gives no priors: ${priors.categories.length === 0 ? 'it has no categories' : `no image has an annotation that counts (${priors.images} images, ${priors.annotations} annotations; crowd and empty boxes do not count, nor images with fewer than --min-objects ${o.minObjects})`}${skipped}`,
          { path: o.coco },
        );
      }
      await writeFileAtomic(o.out, json(priors, Boolean(o.pretty)));
      if (o.sizeTable) await writeFileAtomic(o.sizeTable, json(sizePriorTable(priors.categories)));
      const groups = { r: 0, c: 0, f: 0 };
      for (const c of priors.categories) groups[c.frequency] += 1;
      if (coco.problems.length) global.print(`skipped ${coco.problems.length} unusable annotations (first: ${coco.problems[0]!.where}: ${coco.problems[0]!.message})`);
      global.print(`${priors.categories.length} classes (r ${groups.r}, c ${groups.c}, f ${groups.f}), ${priors.sets.length} object sets from ${priors.images} images`);
      global.print(`wrote ${o.out}${o.sizeTable ? ` and ${o.sizeTable}` : ''}`);
    });
}
