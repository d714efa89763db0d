/** `genaug embed`: images (or texts) → an .npy of L2-normalised embeddings with an index; cached, resumable. */
import { availableParallelism } from 'node:os';

import { Command, Option } from 'commander';

import { embedImages, embedTexts } from '../curate/embed.js';
import { GenaugError } from '../native/errors.js';
import { intArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

export function embedCommand(global: GlobalOptions): Command {
  return new Command('embed')
    .description('embed images (CLIP or the weight-free features-v1) or texts (CLIP) into an .npy of L2-normalised float32 rows')
    .option('--model <dir>', 'CLIP model folder: vision_model.onnx + text_model.onnx (split, Transformers.js; also under onnx/) or model.onnx (combined, optimum), with tokenizer.json and preprocessor_config.json')
    .option('--features', 'use the weight-free features-v1 embedder (colour + gradient histograms; not semantic: for near-duplicates and runs without a model)')
    .option('--images <dir>', 'folder of images (searched recursively, sorted); index paths are relative to it')
    .option('--manifest <file>', 'JSON lines {"file": ..., other fields}: these images in this order (paths relative to --images, else to the manifest\'s folder); the other fields are copied into the index')
    .option('--texts <file>', 'UTF-8 text file, one text per line: one row per line, in order (needs --model)')
    .requiredOption('--out <file>', 'the .npy to write (N x D float32); beside it OUT.index.jsonl ({"file", "sha256", "row", ...}) and OUT.failed.jsonl (images that could not be read, with the reason)')
    .option('--batch-size <n>', 'images (or texts) per inference call (default 16 for images, 64 for texts)', intArg('--batch-size', 1, 4096))
    .option('--workers <n>', `worker threads, each with its own model session (default min(cores, 4) = ${Math.min(4, availableParallelism())} for images, 1 for texts; 0 = the main thread)`, intArg('--workers', 0, 256))
    .option('--threads <n>', 'onnxruntime intra-op threads per session (default: 1 in workers, every core on the main thread)', intArg('--threads', 1, 1024))
    .addOption(new Option('--provider <p>', 'onnxruntime execution provider; cuda fails with E_CUDA_UNAVAILABLE when onnxruntime-node cannot use it').choices(['cpu', 'cuda']).default('cpu'))
    .option('--cache <dir>', 'content-hash cache of rows per model: unchanged images are not embedded again (default: no cache)')
    .addOption(
      new Option('--background <colour>', 'images with an alpha channel are composited onto this colour before embedding; none drops alpha and keeps the RGB under it (RGB images are unchanged). DiverGen embeds generated instances on black')
        .choices(['none', 'black', 'white'])
        .default('none'),
    )
    .option('--max-pixels <n>', 'record images with more pixels than this as failed (default 0x3FFF^2)', intArg('--max-pixels', 1))
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nFinished batches are journaled in OUT.partial/: run the same command again to resume after an interruption (same bytes).' +
        '\nExamples:\n  genaug embed --model clip-vit-b32 --images gen/ --out gen.npy --cache ~/.cache/genaug-emb\n  genaug embed --features --manifest real.jsonl --out real.npy\n  genaug embed --model clip-vit-b32 --texts prompts.txt --out prompts.npy',
    )
    .action(async (o) => {
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
      let bar: Progress | undefined;
      const r = await embedImages({
        ...(o.images ? { images: o.images } : {}),
        ...(o.manifest ? { manifest: o.manifest } : {}),
        out: o.out,
        embedder: o.features ? { kind: 'features' } : { kind: 'clip', model: o.model, provider: o.provider, ...(o.threads ? { threads: o.threads } : {}) },
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...(o.cache ? { cache: o.cache } : {}),
        ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}),
        background: o.background,
        onNote: (note) => {
          if (!o.quiet) process.stderr.write(`${note}\n`);
        },
        onProgress: (done, total) => {
          bar ??= new Progress('embed', total, 'images', o.quiet);
          bar.update(done);
        },
      });
      global.print(
        `${r.rows} of ${r.images} images embedded with ${r.name} (${r.dim} wide) into ${r.out}; ${r.cached} from the cache, ${r.failures} failed` +
          (r.failures ? ` (reasons in ${r.failed})` : ''),
      );
      global.print(`index: ${r.index}`);
    });
}
