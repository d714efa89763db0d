/** `genaug paste`: copy-paste pool instances into real images; writes COCO, WebDataset and/or YOLO datasets from one render, resumably. */
import { Command, InvalidArgumentError, Option } from 'commander';

import { paste, PASTE_FORMATS, type PasteFormat } from '../augment/paste.js';
import { parseShard, shardFromEnvironment, writePasteStream, type StreamShard } from '../augment/stream.js';
import { GenaugError } from '../native/errors.js';
import { deviceOption, intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';
import { withStopSignals } from './signals.js';

/** "lo,hi" with min ≤ lo ≤ hi (a range option). */
export function rangeArg(name: string, min: number) {
  return (value: string): [number, number] => {
    const parts = value.split(',').map((v) => v.trim());
    const [lo, hi] = parts.map(Number) as [number, number];
    if (parts.length !== 2 || parts.some((v) => v === '') || !Number.isFinite(lo) || !Number.isFinite(hi)) {
      throw new InvalidArgumentError(`${name} must be two numbers "low,high", got '${value}'.`);
    }
    if (lo < min || lo > hi) throw new InvalidArgumentError(`${name} must satisfy ${min} ≤ low ≤ high, got ${lo},${hi}.`);
    return [lo, hi];
  };
}

function probabilityArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1], got '${value}'.`);
    return n;
  };
}

function nonNegativeArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a finite number ≥ 0, got '${value}'.`);
    return n;
  };
}

/** "coco" (one format, written into OUT) or "coco,webdataset" (a list, each written into OUT/<format>/); names the bad one. */
export function formatsArg(value: string): PasteFormat | PasteFormat[] {
  const names = value.split(',').map((v) => v.trim());
  for (const n of names) {
    if (!(PASTE_FORMATS as readonly string[]).includes(n)) throw new InvalidArgumentError(`--format: '${n}' is not one of ${PASTE_FORMATS.join(', ')} (in '${value}').`);
    if (names.indexOf(n) !== names.lastIndexOf(n)) throw new InvalidArgumentError(`--format: '${n}' is named twice (in '${value}').`);
  }
  return names.length === 1 ? (names[0] as PasteFormat) : (names as PasteFormat[]);
}

/** A positive integer, or inf / infinite / endless. */
export function epochsArg(value: string): number {
  if (/^(inf|infinite|infinity|endless)$/i.test(value.trim())) return Infinity;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--epochs must be a positive integer or 'inf', got '${value}'.`);
  return n;
}

export function shardArg(value: string): StreamShard {
  try {
    return parseShard(value);
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
}

/** Options of the offline run that mean nothing for a stream (it has --epochs, and no folder). */
const OFFLINE_ONLY = ['out', 'copies', 'shardSize', 'yoloVal', 'valFraction', 'retryFailed'] as const;
/** Options of the stream that mean nothing offline. */
const STREAM_ONLY = ['epochs', 'shard', 'shuffle'] as const;
const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function pasteCommand(global: GlobalOptions): Command {
  return new Command('paste')
    .description(
      'paste instance-pool cut-outs into real images (X-Paste/DiverGen rules: n ~ U{0..max-1}, category-uniform choice, size prior, aspect jitter, flip, uniform centre, occlusion keep rule); ' +
        'writes OUT/images and the annotations; resumable; same seed, same bytes whatever --workers',
    )
    .requiredOption('--coco <file>', 'real dataset, COCO/LVIS instances json (polygons or RLE; annotations without segmentation make a box-only image)')
    .requiredOption('--images <dir>', 'folder of the real images (COCO file_name is relative to it)')
    .requiredOption('--pool <path>', 'instance pool: a folder with index.json (genaug annotate) or an X-Paste/DiverGen {"<cat_id_0based>": ["*crop.png"]} json')
    .option('--out <dir>', 'output folder (required unless --stream): images/, annotations.json | shards/ | labels/ + data.yaml, log.jsonl, progress.jsonl, run.json (several formats: one such folder per format, OUT/<format>/)')
    .option('--stream', 'write a WebDataset tar stream of online samples to stdout instead of a dataset folder (for `tarfile.open(fileobj=proc.stdout, mode="r|")` or `webdataset.WebDataset("pipe:genaug paste --stream ...")`): each sample is the <key>.jpg + <key>.json pair of --format webdataset; with --epochs N the samples are those of --copies N; nothing is written to disk')
    .option('--epochs <n>', "--stream: passes over the real images, epoch e being copy e (default: endless; 'inf' says so)", epochsArg)
    .option('--shard <i/n>', "--stream: this stream's shard I of N of the sample sequence (sample g goes to shard g mod N): one per DataLoader worker, disjoint, the same samples whatever the worker count. Default: from RANK/WORLD_SIZE and WORKER/NUM_WORKERS when set (webdataset's variables; shard = rank x num_workers + worker), else 0/1", shardArg)
    .option('--no-shuffle', '--stream: visit the images in COCO file order every epoch (default: an order shuffled by seed and epoch)')
    .option('--seed <n>', 'random seed: every draw is seeded from (seed, image id, copy)', intArg('--seed', 0), 0)
    .option('--copies <n>', 'augmented copies of every real image', intArg('--copies', 1, 100000), 1)
    .addOption(
      new Option(
        '--format <list>',
        'annotation format, or a comma list written from one render (each image composited and encoded once): ' +
          'coco (OUT/images + OUT/annotations.json, compressed RLE, instance_source real/pasted), webdataset (OUT/shards/*.tar of jpg + json, OUT/categories.json; images are staged in OUT/images while rendering and removed once in the shards), ' +
          'yolo (OUT/images + OUT/labels/*.txt segmentation polygons, OUT/data.yaml). One format writes into OUT; a list such as coco,webdataset writes each into OUT/<format>/ ' +
          '(OUT/coco/annotations.json, OUT/webdataset/shards/, OUT/yolo/labels/), each folder the dataset that format alone would write there',
      )
        .argParser(formatsArg)
        .default('coco'),
    )
    .addOption(new Option('--blend <mode>', 'basic: hard paste (the reference); alpha: by the crop alpha; gaussian: feathered edge').choices(['basic', 'alpha', 'gaussian']).default('basic'))
    .option('--sigma <px>', 'gaussian feather sigma in pixels', numberArg('--sigma'), 2)
    .option('--mask-threshold <a>', "a pasted instance's mask is its resized alpha >= this, 1..255 (1: alpha > 0, the reference rule; 128: half-opaque); every blend paints only inside the mask", intArg('--mask-threshold', 1, 255), 1)
    .addOption(deviceOption('the compositing'))
    .option('--max-samples <n>', 'paste attempts per image are uniform in 0..max-1', intArg('--max-samples', 1, 10000), 20)
    .addOption(new Option('--sampling <mode>', 'cas_random: uniform category, then uniform instance; random: uniform over all instances').choices(['cas_random', 'random']).default('cas_random'))
    .option('--priors <file>', 'size priors {"<category id>": [mean, std]} of sqrt(box area / image area) (X-Paste area_mean_std2.json); default: computed from --coco')
    .option('--min-size-px <px>', 'size prior: s is clipped below at this many pixels of the image height (s >= px / H)', nonNegativeArg('--min-size-px'), 10)
    .option('--max-scale <s>', 'size prior: s = sqrt(box area / image area) is clipped above at this', nonNegativeArg('--max-scale'), 0.5)
    .addOption(new Option('--aspect-jitter <lo,hi>', 'size prior: the crop aspect ratio is multiplied by U(lo, hi)').argParser(rangeArg('--aspect-jitter', Number.MIN_VALUE)).default([0.8, 1.2], '0.8,1.2'))
    .option('--min-side <px>', 'size prior: an instance with a side below this is rejected (as is one not smaller than the image)', nonNegativeArg('--min-side'), 5)
    .option('--random-scale', 'size every instance by the random-scale rule (crop size x U(--random-scale-range)) instead of the prior; categories without a prior always use it')
    .addOption(new Option('--random-scale-range <lo,hi>', 'random-scale rule: the crop size is multiplied by U(lo, hi) (DiverGen)').argParser(rangeArg('--random-scale-range', 0)).default([0.05, 0.3], '0.05,0.3'))
    .option('--random-scale-min-side <px>', 'random-scale rule: an instance with a side below this is rejected', nonNegativeArg('--random-scale-min-side'), 3)
    .option('--flip-prob <p>', 'horizontal flip probability of each pasted instance', probabilityArg('--flip-prob'), 0.5)
    .option('--keep-max-shift <px>', 'occlusion keep rule: keep an occluded instance whose box coordinates all moved at most this', intArg('--keep-max-shift', 0), 10)
    .option('--keep-min-area <px>', '... or whose visible area is more than this', intArg('--keep-min-area', 0), 300)
    .option('--add-categories', 'append pool categories the real dataset lacks (new ids) instead of skipping them')
    .option('--pool-root <dir>', "folder the pool's crop files must lie in (default: the pool index's folder); an X-Paste index naming crops by absolute path needs it")
    .addOption(new Option('--image-format <f>', 'encoding of the output images').choices(['jpeg', 'png']).default('jpeg'))
    .option('--jpeg-quality <q>', 'JPEG quality', intArg('--jpeg-quality', 1, 100), 95)
    .option('--shard-size <n>', 'WebDataset samples per shard', intArg('--shard-size', 1), 1000)
    .option('--yolo-val <path>', "YOLO: your real validation set for data.yaml's val: (a folder or list file Ultralytics reads); every output image is then for training")
    .option('--val-fraction <f>', 'YOLO without --yolo-val: fraction of source images (all their copies) held out as val.txt, drawn by seed; 0 = no split (val is the training list)', numberArg('--val-fraction'), 0.1)
    .option('--workers <n>', 'worker threads (default: the number of cores; 0 = the main thread)', intArg('--workers', 0, 256))
    .option('--max-pixels <n>', 'record real images with more pixels than this (read from the header, before decoding) as failed (default 67108864 = 8192 x 8192)', intArg('--max-pixels', 1))
    .option('--retry-failed', 'render again the items that failed in an earlier run')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nEvery finished (image, copy) is one line of OUT/progress.jsonl (of every OUT/<format>/ with several formats: an item is done when each folder has it); run the same command again to resume. ' +
        'Skipped inputs (missing or undecodable images, dangling ids, unknown or empty pool categories, crops with an empty alpha, ' +
        'instances too small or larger than the image) are recorded in OUT/log.jsonl and the run goes on.',
    )
    .action(async (o, cmd: Command) => {
      const given = (name: string) => cmd.getOptionValueSource(name) === 'cli' || cmd.getOptionValueSource(name) === 'env';
      if (o.stream) {
        for (const name of OFFLINE_ONLY) if (given(name)) throw new GenaugError('E_ARGUMENT', `${flag(name)} is for a dataset folder; --stream writes to stdout${name === 'copies' ? ' (use --epochs)' : ''}`);
        if (given('format') && o.format !== 'webdataset') throw new GenaugError('E_ARGUMENT', '--stream writes WebDataset samples: --format must be webdataset (or left out)');
        await pasteStreamAction(o, given('shard'));
        return;
      }
      for (const name of STREAM_ONLY) if (given(name)) throw new GenaugError('E_ARGUMENT', `${flag(name === 'shuffle' ? 'noShuffle' : name)} is for --stream`);
      if (!o.out) throw new GenaugError('E_ARGUMENT', "required option '--out <dir>' not specified (or write a stream to stdout with --stream)");
      let bar: Progress | undefined;
      const r = await withStopSignals('genaug paste', (signal) => paste({
        signal,
        coco: o.coco,
        images: o.images,
        pool: o.pool,
        out: o.out,
        seed: o.seed,
        copies: o.copies,
        format: o.format,
        ...renderOptions(o),
        shardSize: o.shardSize,
        ...(o.yoloVal !== undefined ? { yoloVal: String(o.yoloVal) } : {}),
        valFraction: o.valFraction,
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}),
        retryFailed: Boolean(o.retryFailed),
        onProgress: (done, total) => {
          bar ??= new Progress('paste', total, 'images', o.quiet);
          bar.update(done);
        },
      }), { quiet: o.quiet });
      global.print(
        `${r.items} items: ${r.ok} written, ${r.failed} failed; ${r.realInstances} real and ${r.pastedInstances} pasted instances, ${r.dropped} dropped by occlusion (details in log.jsonl)`,
      );
      global.print(`output in ${Array.isArray(o.format) ? Object.values(r.formats).map((f) => f.out).join(', ') : o.out}`);
    });
}

/** The sampling, compositing and encoding options the offline export and the stream share (one list: the two cannot drift). */
function renderOptions(o: Record<string, any>) {  // eslint-disable-line @typescript-eslint/no-explicit-any
  return {
    blend: o.blend,
    sigma: o.sigma,
    maskThreshold: o.maskThreshold,
    maxSamples: o.maxSamples,
    sampling: o.sampling,
    ...(o.priors ? { priors: o.priors as string } : {}),
    randomScale: Boolean(o.randomScale),
    minSizePixels: o.minSizePx,
    maxScale: o.maxScale,
    aspectJitter: o.aspectJitter,
    minSide: o.minSide,
    randomScaleRange: o.randomScaleRange,
    randomScaleMinSide: o.randomScaleMinSide,
    flipProbability: o.flipProb,
    keepMaxShift: o.keepMaxShift,
    keepMinArea: o.keepMinArea,
    ...(o.device !== undefined && o.device !== 'cpu' ? { device: o.device } : {}),
    addCategories: Boolean(o.addCategories),
    ...(o.poolRoot !== undefined ? { poolRoot: o.poolRoot as string } : {}),
    imageFormat: o.imageFormat,
    jpegQuality: o.jpegQuality,
  };
}

/** `genaug paste --stream`: the samples of this shard as a tar stream on stdout. */
async function pasteStreamAction(o: Record<string, any>, shardGiven: boolean): Promise<void> {  // eslint-disable-line @typescript-eslint/no-explicit-any
  if (process.stdout.isTTY) {
    throw new GenaugError('E_ARGUMENT', '--stream writes a binary tar stream and stdout is a terminal: pipe it into a reader (genaug paste --stream ... | python train.py) or redirect it (> samples.tar)');
  }
  const env = shardGiven ? undefined : shardFromEnvironment();
  const shard: StreamShard = shardGiven ? o.shard : (env ?? { index: 0, count: 1 });
  const epochs: number = o.epochs ?? Infinity;
  const say = (line: string) => {
    if (!o.quiet) process.stderr.write(`genaug paste --stream: ${line}\n`);
  };
  say(`shard ${shard.index}/${shard.count}${shardGiven ? '' : env ? ` (from ${env.from})` : ''}, ${epochs === Infinity ? 'endless' : `${epochs} epoch${epochs === 1 ? '' : 's'}`}, seed ${o.seed}`);
  const r = await writePasteStream(
    {
      coco: o.coco,
      images: o.images,
      pool: o.pool,
      seed: o.seed,
      epochs,
      shard,
      shuffle: o.shuffle !== false,
      ...renderOptions(o),
      ...(o.workers !== undefined ? { workers: o.workers } : {}),
      ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}),
      onSkip: (s) => say(`skipped image ${s.imageId} (epoch ${s.copy})${s.file ? ` crop ${s.file}` : ''}: ${s.reason}`),
    },
    process.stdout,
  );
  say(r.closedByReader ? `the reader closed the stream after ${r.samples} samples` : `${r.samples} samples, ${r.bytes} bytes`);
}
