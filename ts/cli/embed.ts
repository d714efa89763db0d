/** `genaug embed`: images (or texts) → an .npy of L2-normalised embeddings with an index; cached, resumable. */
import { availableParallelism } from 'node:os';

import { Command, Option } from 'commander';

import { embedImages, embedInstances, embedTexts } from '../curate/embed.js';
import { GenaugError } from '../native/errors.js';
import { providerForDevice } from '../models/onnx.js';
import { deviceOption, intArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';
import { withStopSignals } from './signals.js';

export function embedCommand(global: GlobalOptions): Command {
  return new Command('embed')
    .description('embed images (CLIP or the weight-free features-v1) or texts (CLIP) into an .npy of L2-normalised float32 rows')
    .option('--model <dir>', 'CLIP model folder: vision_model.onnx + text_model.onnx (split, Transformers.js; also under onnx/) or model.onnx (combined, optimum), with tokenizer.json and preprocessor_config.json')
    .option('--features', 'use the weight-free features-v1 embedder (colour + gradient histograms; not semantic: for near-duplicates and runs without a model)')
    .option('--images <dir>', 'folder of images (searched recursively, sorted); index paths are relative to it')
    .option('--manifest <file>', 'JSON lines {"file": ..., other fields}: these images in this order (file relative to --images; without it the line\'s "path" (genaug generate writes one) or "file", relative to the manifest\'s folder); the other fields are copied into the index')
    .option('--coco <file>', 'embed the instances of this COCO/LVIS file (one row per annotation with a mask; images from --images) instead of whole images; see --instances')
    .addOption(new Option('--instances <view>', 'with --coco: crop = the mask box padded by --padding px, the background outside the mask box-blurred (DiverGen real crops); masked = the whole image, black outside the mask (DiverGen generated instances)').choices(['crop', 'masked']).default('crop'))
    .option('--padding <px>', 'with --instances crop: pixels on each side of the mask box', intArg('--padding', 0), 40)
    .option('--blur <px>', 'with --instances crop: box-blur kernel side', intArg('--blur', 1), 10)
    .option('--categories <list>', 'with --coco: comma-separated category names, in label order (default every category, by id)')
    .option('--max-per-category <n>', 'with --coco: at most n instances per category, a seeded choice (0 = all)', intArg('--max-per-category', 0), 0)
    .option('--seed <n>', 'with --coco: seed of that choice', intArg('--seed', 0), 0)
    .option('--order <file>', 'with --coco: JSON lines {"file"}: the images in this order (the rest after, by id)')
    .option('--texts <file>', 'UTF-8 text file, one text per line: one row per line, in order (needs --model)')
    .requiredOption('--out <file>', 'the .npy to write (N x D float32); beside it OUT.index.jsonl ({"file", "sha256", "row", ...}) and OUT.failed.jsonl (images that could not be read, with the reason)')
    .option('--batch-size <n>', 'images (or texts) per inference call (default 16 for images, 64 for texts)', intArg('--batch-size', 1, 4096))
    .option('--workers <n>', `worker threads, each with its own model session (default min(cores, 4) = ${Math.min(4, availableParallelism())} for images, 1 for texts; 0 = the main thread)`, intArg('--workers', 0, 256))
    .option('--threads <n>', 'onnxruntime intra-op threads per session (default: 1 in workers, every core on the main thread)', intArg('--threads', 1, 1024))
    .addOption(deviceOption('CLIP (onnxruntime\'s CUDA execution provider)', false))
    .addOption(new Option('--provider <p>', 'onnxruntime execution provider (the older name of --device; default cpu); cuda fails with E_CUDA_UNAVAILABLE when onnxruntime-node cannot use it').choices(['cpu', 'cuda']))
    .option('--cache <dir>', 'content-hash cache of rows per model: unchanged images are not embedded again (default: no cache)')
    .addOption(
      new Option('--background <colour>', 'images with an alpha channel are composited onto this colour before embedding; none drops alpha and keeps the RGB under it (RGB images are unchanged). DiverGen embeds generated instances on black')
        .choices(['none', 'black', 'white'])
        .default('none'),
    )
    .option('--max-pixels <n>', 'record images with more pixels than this (read from the header, before decoding) as failed (default 67108864 = 8192 x 8192)', intArg('--max-pixels', 1))
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nFinished batches are journaled in OUT.partial/: run the same command again to resume after an interruption (same bytes).' +
        '\nExamples:\n  genaug embed --model clip-vit-b32 --images gen/ --out gen.npy --cache ~/.cache/genaug-emb\n  genaug embed --features --manifest real.jsonl --out real.npy\n  genaug embed --model clip-vit-b32 --texts prompts.txt --out prompts.npy',
    )
    .action(async (o) => {
      o.provider = providerForDevice(o.device, o.provider);
      if (o.texts) {
        if (!o.model) throw new GenaugError('E_ARGUMENT', '--texts needs --model (features-v1 has no text side)');
        if (o.images || o.manifest || o.features) throw new GenaugError('E_ARGUMENT', '--texts cannot be combined with --images, --manifest or --features');
        let bar: Progress | undefined;
        const r = await embedTexts({
          model: o.model,
          provider: o.provider,
          texts: o.texts,
          out: o.out,
          ...(o.batchSize ? { batchSize: o.batchSize } : {}),
          ...(o.workers !== undefined ? { workers: o.workers } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          onProgress: (done, total) => {
            bar ??= new Progress('embed', total, 'texts', o.quiet);
            bar.update(done);
          },
        });
        global.print(`${r.rows} texts embedded (${r.dim} wide) into ${r.out}`);
        return;
      }
      if (!o.images && !o.manifest) throw new GenaugError('E_ARGUMENT', 'give --images DIR or --manifest FILE (or --texts FILE)');
      if (Boolean(o.model) === Boolean(o.features)) throw new GenaugError('E_ARGUMENT', 'give exactly one of --model DIR and --features');
      if (o.coco && (o.manifest || !o.images)) throw new GenaugError('E_ARGUMENT', '--coco needs --images (the folder its file names are relative to) and cannot be combined with --manifest');
      let bar: Progress | undefined;
      const common = {
        out: o.out,
        embedder: o.features ? ({ kind: 'features' } as const) : ({ kind: 'clip', model: o.model, provider: o.provider, ...(o.threads ? { threads: o.threads } : {}) } as const),
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...(o.cache ? { cache: o.cache } : {}),
        ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}),
        onNote: (note: string) => {
          if (!o.quiet) process.stderr.write(`${note}\n`);
        },
        onProgress: (done: number, total: number) => {
          bar ??= new Progress('embed', total, o.coco ? 'instances' : 'images', o.quiet);
          bar.update(done);
        },
      };
      const r = await withStopSignals('genaug embed', (signal) => o.coco
        ? embedInstances({
            signal,
            ...common,
            coco: o.coco,
            images: o.images,
            mode: o.instances,
            padding: o.padding,
            blur: o.blur,
            maxPerCategory: o.maxPerCategory,
            seed: o.seed,
            ...(o.categories ? { categories: String(o.categories).split(',').map((c: string) => c.trim()) } : {}),
            ...(o.order ? { order: o.order } : {}),
          })
        : embedImages({ ...common, signal, ...(o.images ? { images: o.images } : {}), ...(o.manifest ? { manifest: o.manifest } : {}), background: o.background }), { quiet: o.quiet });
      const what = o.coco ? 'instances' : 'images';
      const total = o.coco ? r.rows + r.failures : r.images;
      global.print(
        `${r.rows} of ${total} ${what} embedded with ${r.name} (${r.dim} wide) into ${r.out}; ${r.cached} from the cache, ${r.failures} failed` +
          (r.failures ? ` (reasons in ${r.failed})` : ''),
      );
      if (r.skipped) global.print(`skipped ${r.skipped.count} unusable annotations of ${o.coco} (first: ${r.skipped.first})`);
      if (r.rows === 0) throw new GenaugError('E_IO', `no ${what} could be embedded; the reasons are in ${r.failed}`, { path: r.failed });
      global.print(`index: ${r.index}`);
    });
}
