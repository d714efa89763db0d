/** `genaug paste`: copy-paste pool instances into real images; writes a COCO, WebDataset or YOLO dataset, resumably. */
import { Command, Option } from 'commander';

import { paste } from '../augment/paste.js';
import { intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

export function pasteCommand(global: GlobalOptions): Command {
  return new Command('paste')
    .description(
      'paste instance-pool cut-outs into real images (X-Paste/DiverGen rules: n ~ U{0..max-1}, category-uniform choice, size prior, aspect jitter, flip, uniform centre, occlusion keep rule); ' +
        'writes OUT/images and the annotations; resumable; same seed, same bytes whatever --workers',
    )
    .requiredOption('--coco <file>', 'real dataset, COCO/LVIS instances json (polygons or RLE; annotations without segmentation make a box-only image)')
    .requiredOption('--images <dir>', 'folder of the real images (COCO file_name is relative to it)')
    .requiredOption('--pool <path>', 'instance pool: a folder with index.json (genaug annotate) or an X-Paste/DiverGen {"<cat_id_0based>": ["*crop.png"]} json')
    .requiredOption('--out <dir>', 'output folder: images/, annotations.json | shards/ | labels/ + data.yaml, log.jsonl, progress.jsonl')
    .option('--seed <n>', 'random seed: every draw is seeded from (seed, image id, copy)', intArg('--seed', 0), 0)
    .option('--copies <n>', 'augmented copies of every real image', intArg('--copies', 1, 100000), 1)
    .addOption(new Option('--format <f>', 'annotation format: coco (compressed RLE, instance_source real/pasted), webdataset (tar shards of jpg + json), yolo (segmentation polygons + data.yaml)').choices(['coco', 'webdataset', 'yolo']).default('coco'))
    .addOption(new Option('--blend <mode>', 'basic: hard paste (the reference); alpha: by the crop alpha; gaussian: feathered edge').choices(['basic', 'alpha', 'gaussian']).default('basic'))
    .option('--sigma <px>', 'gaussian feather sigma in pixels', numberArg('--sigma'), 2)
    .option('--max-samples <n>', 'paste attempts per image are uniform in 0..max-1', intArg('--max-samples', 1, 10000), 20)
    .addOption(new Option('--sampling <mode>', 'cas_random: uniform category, then uniform instance; random: uniform over all instances').choices(['cas_random', 'random']).default('cas_random'))
    .option('--priors <file>', 'size priors {"<category id>": [mean, std]} of sqrt(box area / image area) (X-Paste area_mean_std2.json); default: computed from --coco')
    .option('--random-scale', 'size every instance by the random-scale rule (crop size x U(0.05, 0.3)) instead of the prior')
    .option('--keep-max-shift <px>', 'occlusion keep rule: keep an occluded instance whose box coordinates all moved at most this', intArg('--keep-max-shift', 0), 10)
    .option('--keep-min-area <px>', '... or whose visible area is more than this', intArg('--keep-min-area', 0), 300)
    .option('--add-categories', 'append pool categories the real dataset lacks (new ids) instead of skipping them')
    .addOption(new Option('--image-format <f>', 'encoding of the output images').choices(['jpeg', 'png']).default('jpeg'))
    .option('--jpeg-quality <q>', 'JPEG quality', intArg('--jpeg-quality', 1, 100), 95)
    .option('--shard-size <n>', 'WebDataset samples per shard', intArg('--shard-size', 1), 1000)
    .option('--workers <n>', 'worker threads (default: the number of cores; 0 = the main thread)', intArg('--workers', 0, 256))
    .option('--retry-failed', 'render again the items that failed in an earlier run')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nEvery finished (image, copy) is one line of OUT/progress.jsonl; run the same command again to resume. ' +
        'Skipped inputs (missing or undecodable images, dangling ids, unknown or empty pool categories, crops with an empty alpha, ' +
        'instances too small or larger than the image) are recorded in OUT/log.jsonl and the run goes on.',
    )
    .action(async (o) => {
      let bar: Progress | undefined;
      const r = await paste({
        coco: o.coco,
        images: o.images,
        pool: o.pool,
        out: o.out,
        seed: o.seed,
        copies: o.copies,
        format: o.format,
        blend: o.blend,
        sigma: o.sigma,
        maxSamples: o.maxSamples,
        sampling: o.sampling,
        ...(o.priors ? { priors: o.priors } : {}),
        randomScale: Boolean(o.randomScale),
        keepMaxShift: o.keepMaxShift,
        keepMinArea: o.keepMinArea,
        addCategories: Boolean(o.addCategories),
        imageFormat: o.imageFormat,
        jpegQuality: o.jpegQuality,
        shardSize: o.shardSize,
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        retryFailed: Boolean(o.retryFailed),
        onProgress: (done, total) => {
          bar ??= new Progress('paste', total, 'images', o.quiet);
          bar.update(done);
        },
      });
      global.print(
        `${r.items} items: ${r.ok} written, ${r.failed} failed; ${r.realInstances} real and ${r.pastedInstances} pasted instances, ${r.dropped} dropped by occlusion (details in log.jsonl)`,
      );
      global.print(`output in ${o.out}`);
    });
}
