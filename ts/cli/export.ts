/**
 * `genaug export classification`: whole labelled images as an ImageFolder and WebDataset classification set.
 * `genaug export scenes`: generated scenes with one box and mask per layout object (Auto Cherry-Picker's data).
 */
import { Command } from 'commander';

import { CLASSIFICATION_FORMATS, classificationStream, exportClassification, readLabelledManifest, type ClassificationFormat } from '../augment/classification.js';
import { exportScenes, sceneStream } from '../augment/scenes.js';
import { shardFromEnvironment, writeTarStream, type StreamShard } from '../augment/stream.js';
import { epochsArg, shardArg } from './paste.js';
import { GenaugError } from '../native/errors.js';
import { readJsonObjects } from '../util/jsonl.js';
import { intArg, type GlobalOptions } from './args.js';

function formatsOf(value: string): ClassificationFormat[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of list) if (!CLASSIFICATION_FORMATS.includes(f as ClassificationFormat)) throw new GenaugError('E_ARGUMENT', `--format: '${f}' is not one of ${CLASSIFICATION_FORMATS.join(', ')}`);
  if (new Set(list).size !== list.length) throw new GenaugError('E_ARGUMENT', `--format: a format is named twice in '${value}'`);
  return list as ClassificationFormat[];
}

export function exportCommand(global: GlobalOptions): Command {
  const cmd = new Command('export').description('write a dataset in a form trainers read');
  cmd.addCommand(
    streamOptions(new Command('classification'), 'the WebDataset samples (webdataset.WebDataset("pipe:genaug export classification --stream ...") or tarfile.open(fileobj=proc.stdout, mode="r|")): each sample has the fields of the offline shards byte for byte, key <key>_<epoch>', 'the offline WebDataset order')
      .description(
        'the classification set ALIA, caption-as-prompt and "Diversify, Don\'t Fine-Tune" train on: whole generated (and optionally real) images with their class, ' +
          'as OUT/imagefolder/train/<class>/<file> (torchvision ImageFolder) and OUT/webdataset/*.tar (<key>.<ext>, .cls index, .txt class name, .json), sharing OUT/classes.txt (line i = class index i, ImageFolder\'s sorted order)',
      )
      .requiredOption('--manifest <file>', 'the generated images: JSON lines {file, category | label, id?, prompt?} (genaug generate\'s manifest.jsonl as it is)')
      .option('--images <dir>', 'folder the manifest\'s files are relative to (default: each line\'s path, or file, from the manifest\'s folder)')
      .option('--kept <file>', 'only these samples: JSON lines {"id": ...} (genaug filter --out); default: every line of the manifest')
      .option('--real <file>', 'real images to add, JSON lines {file, label | category} (ALIA trains on real + generated)')
      .option('--real-images <dir>', 'folder the --real files are relative to (default: as for --manifest)')
      .option('--format <list>', `comma-separated: ${CLASSIFICATION_FORMATS.join(', ')}`, CLASSIFICATION_FORMATS.join(','))
      .option('--shard-size <n>', 'WebDataset samples per shard', intArg('--shard-size', 1), 1000)
      .addHelpText('after', '\nExamples:\n  genaug export classification --manifest run/generate/manifest.jsonl --kept run/filter/kept.jsonl --real real.jsonl --out cls/\n  genaug export classification --manifest run/generate/manifest.jsonl --kept run/filter/kept.jsonl --stream --epochs 10 | python train.py')
      .action(async (o, cmd: Command) => {
        streamOrFolder(o, cmd, ['format', 'shardSize']);
        const kept = o.kept ? await readKept(o.kept) : undefined;
        const generated = await readLabelledManifest(o.manifest, { ...(o.images ? { images: o.images } : {}), origin: 'generated', ...(kept ? { kept } : {}) });
        const real = o.real ? await readLabelledManifest(o.real, { ...(o.realImages ? { images: o.realImages } : {}), origin: 'real' }) : [];
        if (o.stream) {
          const { shard, env, epochs } = streamShard(o, cmd);
          const say = (line: string) => {
            if (!o.quiet) process.stderr.write(`genaug export classification --stream: ${line}\n`);
          };
          say(`${real.length + generated.length} images, shard ${shard.index}/${shard.count}${env ? ` (from ${env.from})` : ''}, ${epochs === Infinity ? 'endless' : `${epochs} epoch${epochs === 1 ? '' : 's'}`}, seed ${o.seed}`);
          const r = await writeTarStream(
            classificationStream({ items: [...real, ...generated], seed: o.seed, epochs, shard, shuffle: o.shuffle !== false, onSkip: (s) => say(`skipped ${s.file} (epoch ${s.epoch}): ${s.reason}`) }),
            process.stdout,
          );
          say(r.closedByReader ? `the reader closed the stream after ${r.samples} samples` : `${r.samples} samples, ${r.bytes} bytes`);
          return;
        }
        const r = await exportClassification({ items: [...real, ...generated], out: o.out, formats: formatsOf(String(o.format)), shardSize: o.shardSize });
        global.print(`classification set: ${r.images} images (${generated.length} generated, ${real.length} real) of ${r.classes.length} classes in ${o.out} (classes.txt; ${formatsOf(String(o.format)).join(', ')})`);
      }),
  );
  cmd.addCommand(
    streamOptions(new Command('scenes'), 'the scenes: each sample is <stem>_<epoch>.<ext> (the image) + .json (its COCO image record and annotations, with category_name); the scenes are annotated once, then streamed', 'manifest order')
      .description(
        'the detection / instance-segmentation set Auto Cherry-Picker trains on: the generated scenes themselves, one box and one mask per object of the layout each was generated from, ' +
          'as OUT/annotations.json (COCO) and OUT/images/ (masks from SAM prompted with the box when --sam-encoder/--sam-decoder are given, else the box itself; mask_source says which)',
      )
      .requiredOption('--manifest <file>', "genaug generate's manifest.jsonl (each image's sidecar images/<name>.json holds its layout)")
      .option('--kept <file>', 'only these samples: JSON lines {"id": ...} (genaug filter --preset acp --out: the best of N by CLIS-I); default: every image')
      .option('--categories <coco>', "the real dataset's COCO file: layout names are matched to its categories (case, _/space, LVIS synonyms) and take their ids (default: the layout names, sorted, ids 1..)")
      .option('--add-categories', 'append layout names that match no category (new ids) instead of leaving those objects out')
      .option('--sam-encoder <onnx>', 'SAM image encoder (with --sam-decoder): masks from box prompts')
      .option('--sam-decoder <onnx>', 'SAM prompt decoder (the official segment-anything ONNX export)')
      .addHelpText('after', '\nExamples:\n  genaug export scenes --manifest gen/manifest.jsonl --kept kept.jsonl --categories train.json --sam-encoder enc.onnx --sam-decoder dec.onnx --out scenes/\n  genaug export scenes --manifest gen/manifest.jsonl --kept kept.jsonl --categories train.json --stream --epochs 12 | python train.py')
      .action(async (o, cmd: Command) => {
        if (Boolean(o.samEncoder) !== Boolean(o.samDecoder)) throw new GenaugError('E_ARGUMENT', 'give both --sam-encoder and --sam-decoder (or neither: masks are then the boxes)');
        streamOrFolder(o, cmd);
        const kept = o.kept ? await readKept(o.kept) : undefined;
        if (o.stream) {
          const { shard, env, epochs } = streamShard(o, cmd);
          const say = (line: string) => {
            if (!o.quiet) process.stderr.write(`genaug export scenes --stream: ${line}\n`);
          };
          const r = await writeTarStream(
            sceneStream({
              manifest: o.manifest,
              ...(kept ? { kept } : {}),
              ...(o.categories ? { categories: o.categories } : {}),
              addCategories: Boolean(o.addCategories),
              ...(o.samEncoder ? { sam: { encoder: o.samEncoder, decoder: o.samDecoder } } : {}),
              seed: o.seed,
              epochs,
              shard,
              shuffle: o.shuffle !== false,
              onReady: (n, a) => say(`${n} scenes, ${a} objects; shard ${shard.index}/${shard.count}${env ? ` (from ${env.from})` : ''}, ${epochs === Infinity ? 'endless' : `${epochs} epoch${epochs === 1 ? '' : 's'}`}, seed ${o.seed}`),
              onSkip: (x) => say(`skipped ${x.file}${x.epoch >= 0 ? ` (epoch ${x.epoch})` : ''}: ${x.reason}`),
            }),
            process.stdout,
          );
          say(r.closedByReader ? `the reader closed the stream after ${r.samples} samples` : `${r.samples} samples, ${r.bytes} bytes`);
          return;
        }
        const r = await exportScenes({
          manifest: o.manifest,
          out: o.out,
          ...(kept ? { kept } : {}),
          ...(o.categories ? { categories: o.categories } : {}),
          addCategories: Boolean(o.addCategories),
          ...(o.samEncoder ? { sam: { encoder: o.samEncoder, decoder: o.samDecoder } } : {}),
        });
        global.print(
          `scenes: ${r.images} images, ${r.annotations} objects (${r.maskSources.sam} SAM masks, ${r.maskSources.box} box masks) of ${r.categories.length} categories in ${o.out}/annotations.json` +
            (r.skipped ? `; ${r.skipped} objects left out (${o.out}/log.jsonl)` : ''),
        );
      }),
  );
  return cmd;
}

/** --out and the stream options every export command has (`what`: the samples; `order`: the order without shuffle). */
function streamOptions(c: Command, what: string, order: string): Command {
  return c
    .option('--out <dir>', 'output folder (required unless --stream)')
    .option('--stream', `write ${what} as a WebDataset tar stream to stdout instead of a folder; nothing is written to disk`)
    .option('--epochs <n>', "--stream: passes over the set (default: endless; 'inf' says so)", epochsArg)
    .option('--shard <i/n>', "--stream: this stream's shard I of N (sample g goes to shard g mod N), one per DataLoader worker. Default: from RANK/WORLD_SIZE and WORKER/NUM_WORKERS when set, else 0/1", shardArg)
    .option('--no-shuffle', `--stream: ${order} every epoch (default: shuffled by seed and epoch)`)
    .option('--seed <n>', '--stream: seed of the per-epoch shuffle', intArg('--seed', 0), 0)
    .option('-q, --quiet', '--stream: no progress lines on stderr');
}

/** The stream's shard (--shard, else the environment's, else 0/1) and epochs (--epochs, else endless). */
function streamShard(o: Record<string, unknown>, cmd: Command): { shard: StreamShard; env: ReturnType<typeof shardFromEnvironment>; epochs: number } {
  const given = cmd.getOptionValueSource('shard') === 'cli';
  const env = given ? undefined : shardFromEnvironment();
  return { shard: given ? (o.shard as StreamShard) : (env ?? { index: 0, count: 1 }), env, epochs: (o.epochs as number | undefined) ?? Infinity };
}

/**
 * The options of one mode refused in the other: folder options (--out and `folderOnly`) with --stream, stream options
 * without it; --out required without --stream; a terminal on stdout refused for a stream.
 */
function streamOrFolder(o: Record<string, unknown>, cmd: Command, folderOnly: string[] = []): void {
  const given = (name: string) => cmd.getOptionValueSource(name) === 'cli' || cmd.getOptionValueSource(name) === 'env';
  const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (o.stream) {
    for (const name of ['out', ...folderOnly]) if (given(name)) throw new GenaugError('E_ARGUMENT', `${flag(name)} is for a dataset folder; --stream writes WebDataset samples to stdout`);
    if (process.stdout.isTTY) throw new GenaugError('E_ARGUMENT', '--stream writes a binary tar stream and stdout is a terminal: pipe it into a reader or redirect it (> samples.tar)');
  } else {
    for (const name of ['epochs', 'shard', 'shuffle', 'seed']) if (given(name)) throw new GenaugError('E_ARGUMENT', `${name === 'shuffle' ? '--no-shuffle' : flag(name)} is for --stream`);
    if (!o.out) throw new GenaugError('E_ARGUMENT', "required option '--out <dir>' not specified (or write a stream to stdout with --stream)");
  }
}

/** The ids of a kept list (genaug filter --out): JSON lines {"id": ...}. */
async function readKept(path: string): Promise<Set<string>> {
  const kept = new Set<string>();
  for (const { line, value } of await readJsonObjects(path, 'the kept samples')) {
    if (typeof value.id !== 'string') throw new GenaugError('E_FORMAT', `${path}:${line}: each line needs an "id" string`, { path, line });
    kept.add(value.id);
  }
  return kept;
}
