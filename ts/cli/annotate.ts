/** `genaug annotate`: generated object images -> an instance pool (RGBA cut-outs, COCO RLE, index, rejections). */
import { Command, Option } from 'commander';

import { annotate } from '../curate/annotate.js';
import { ClipModel } from '../models/clip.js';
import { SamModel } from '../models/sam.js';
import { Segmenter } from '../models/segmenter.js';
import { GenaugError } from '../native/errors.js';
import { providerForDevice } from '../models/onnx.js';
import { deviceOption, intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';
import { withStopSignals } from './signals.js';

export function annotateCommand(global: GlobalOptions): Command {
  return new Command('annotate')
    .description('cut the object out of every generated image into an instance pool: largest component, holes filled, tight RGBA crop, COCO RLE mask, area-fraction check; resumable')
    .requiredOption('--images <dir>', 'folder of generated images (searched recursively; the folder name is the category)')
    .requiredOption('--out <dir>', 'pool folder: instances/<category>/*.png, index.json, annotations.json (COCO, compressed RLE), rejected.jsonl')
    .addOption(new Option('--method <method>', 'corners: flood fill from the four corners within --tolerance (exact on white-background prompts); sam: SAM-background; segmenter: an ONNX foreground model').choices(['corners', 'sam', 'segmenter']))
    .option('--tolerance <n>', 'corner colour tolerance, max difference per channel 0..255', intArg('--tolerance', 0, 255), 10)
    .option('--sam-encoder <file>', 'SAM image encoder .onnx (1x3x1024x1024 -> 1x256x64x64)')
    .option('--sam-decoder <file>', 'SAM mask decoder .onnx (the official segment-anything export signature)')
    .option(
      '--segmenter <file>',
      'foreground segmenter .onnx (1x3xHxW -> 1x1xHxW probability, U2-Net/ISNet style); repeat for X-Paste\'s pick: each one\'s mask is scored with --clip and the best kept per image',
      (v: string, acc: string[] | undefined) => [...(acc ?? []), v],
    )
    .option('--clip <dir>', 'CLIP model folder scoring the masks of several --segmenter (the image on white outside the mask against --clip-template; needed with two or more)')
    .option('--clip-template <text>', 'the pick\'s CLIP text, {} = the class name with _ as spaces', 'a photo of {}')
    .addOption(deviceOption('SAM / the segmenter (onnxruntime\'s CUDA execution provider)', false))
    .addOption(new Option('--provider <p>', 'onnxruntime execution provider (the older name of --device; default cpu)').choices(['cpu', 'cuda']))
    .option('--manifest <file>', 'JSON lines {"file": ..., "category": ...} instead of folder names')
    .option('--category-from-dirname', 'category = the image\'s folder name (the default without --manifest)')
    .option('--min-area-fraction <f>', 'reject instances smaller than this fraction of the image (X-Paste: 0.05)', numberArg('--min-area-fraction'), 0.05)
    .option('--max-area-fraction <f>', 'reject instances larger than this fraction of the image (X-Paste: 0.95)', numberArg('--max-area-fraction'), 0.95)
    .option('--max-pixels <n>', 'reject images with more pixels than this', intArg('--max-pixels', 1))
    .option('--concurrency <n>', 'images processed at once (default: the number of cores)', intArg('--concurrency', 1, 256))
    .option('--workers <n>', 'worker threads of the pool, each with its own copy of the models (default: the number of cores; 0 = the main thread)', intArg('--workers', 0, 256))
    .option('--retry-failed', 'process again the images that failed in an earlier run')
    .option('-q, --quiet', 'no progress output')
    .addHelpText('after', '\nEvery image gets one line in OUT/progress.jsonl; run the same command again to resume after an interruption.')
    .action(async (o) => {
      o.provider = providerForDevice(o.device, o.provider);
      const method = o.method ?? (o.samEncoder || o.samDecoder ? 'sam' : o.segmenter ? 'segmenter' : 'corners');
      let sam: SamModel | undefined;
      let segmenter: Segmenter | undefined;
      const segPaths: string[] = o.segmenter ?? [];
      let segmenters: Segmenter[] | undefined;
      let clip: ClipModel | undefined;
      // With a worker pool (the default) the models load in the workers, where they run: nothing heavy on the
      // event loop (annotate checks that they load before the first image). --workers 0 loads them here.
      const inProcess = o.workers === 0;
      if (method === 'sam') {
        if (!o.samEncoder || !o.samDecoder) throw new GenaugError('E_ARGUMENT', 'SAM needs both --sam-encoder and --sam-decoder');
        if (inProcess) sam = await SamModel.load({ encoder: o.samEncoder, decoder: o.samDecoder, provider: o.provider });
      } else if (method === 'segmenter') {
        if (segPaths.length === 0) throw new GenaugError('E_ARGUMENT', '--method segmenter needs --segmenter MODEL.onnx');
        if (new Set(segPaths).size !== segPaths.length) throw new GenaugError('E_ARGUMENT', `--segmenter names the same file twice (${segPaths.join(', ')})`);
        if (segPaths.length >= 2 && !o.clip) {
          throw new GenaugError('E_ARGUMENT', `${segPaths.length} --segmenter models need --clip DIR: X-Paste keeps, per image, the mask whose cut-out CLIP scores best against the class text`);
        }
        if (inProcess && segPaths.length === 1) segmenter = await Segmenter.load({ model: segPaths[0] as string, provider: o.provider });
        if (inProcess && segPaths.length >= 2) {
          segmenters = [];
          for (const m of segPaths) segmenters.push(await Segmenter.load({ model: m, provider: o.provider }));
          clip = await ClipModel.open(o.clip, { provider: o.provider, require: 'both' });
        }
      }
      let bar: Progress | undefined;
      const r = await withStopSignals('genaug annotate', (signal) => annotate({
        signal,
        images: o.images,
        out: o.out,
        method,
        tolerance: o.tolerance,
        ...(method === 'sam' ? { ...(sam ? { sam } : {}), models: { samEncoder: o.samEncoder, samDecoder: o.samDecoder, provider: o.provider } } : {}),
        ...(method === 'segmenter' && segPaths.length === 1 ? { ...(segmenter ? { segmenter } : {}), models: { segmenter: segPaths[0], provider: o.provider } } : {}),
        ...(method === 'segmenter' && segPaths.length >= 2
          ? { ...(segmenters ? { segmenters } : {}), ...(clip ? { clip } : {}), clipTemplate: o.clipTemplate, models: { segmenters: segPaths, clip: o.clip, provider: o.provider } }
          : {}),
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...(o.manifest ? { manifest: o.manifest } : {}),
        minFraction: o.minAreaFraction,
        maxFraction: o.maxAreaFraction,
        ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}),
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        retryFailed: Boolean(o.retryFailed),
        onProgress: (done, total) => {
          bar ??= new Progress('annotate', total, 'images', o.quiet);
          bar.update(done);
        },
      }), { quiet: o.quiet });
      global.print(`${r.images} images: ${r.kept} instances kept in ${r.categories} categories, ${r.rejected} rejected, ${r.failed} failed (reasons in rejected.jsonl)`);
      if (r.picks) global.print(`masks picked per segmenter (best CLIP score): ${Object.entries(r.picks).map(([m, n]) => `${m} ${n}`).join(', ')}`);
      global.print(`pool in ${o.out}`);
    });
}
