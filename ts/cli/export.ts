/**
 * `genaug export classification`: whole labelled images as an ImageFolder and WebDataset classification set.
 * `genaug export scenes`: generated scenes with one box and mask per layout object (Auto Cherry-Picker's data).
 */
import { Command } from 'commander';

import { CLASSIFICATION_FORMATS, exportClassification, readLabelledManifest, type ClassificationFormat } from '../augment/classification.js';
import { exportScenes } from '../augment/scenes.js';
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
    new Command('classification')
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
      .requiredOption('--out <dir>', 'output folder')
      .addHelpText('after', '\nExample:\n  genaug export classification --manifest run/generate/manifest.jsonl --kept run/filter/kept.jsonl --real real.jsonl --out cls/')
      .action(async (o) => {
        const kept = o.kept ? await readKept(o.kept) : undefined;
        const generated = await readLabelledManifest(o.manifest, { ...(o.images ? { images: o.images } : {}), origin: 'generated', ...(kept ? { kept } : {}) });
        const real = o.real ? await readLabelledManifest(o.real, { ...(o.realImages ? { images: o.realImages } : {}), origin: 'real' }) : [];
        const r = await exportClassification({ items: [...real, ...generated], out: o.out, formats: formatsOf(String(o.format)), shardSize: o.shardSize });
        global.print(`classification set: ${r.images} images (${generated.length} generated, ${real.length} real) of ${r.classes.length} classes in ${o.out} (classes.txt; ${formatsOf(String(o.format)).join(', ')})`);
      }),
  );
  cmd.addCommand(
    new Command('scenes')
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
      .requiredOption('--out <dir>', 'output folder')
      .addHelpText('after', '\nExample:\n  genaug export scenes --manifest gen/manifest.jsonl --kept kept.jsonl --categories train.json --sam-encoder enc.onnx --sam-decoder dec.onnx --out scenes/')
      .action(async (o) => {
        if (Boolean(o.samEncoder) !== Boolean(o.samDecoder)) throw new GenaugError('E_ARGUMENT', 'give both --sam-encoder and --sam-decoder (or neither: masks are then the boxes)');
        const kept = o.kept ? await readKept(o.kept) : undefined;
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

/** The ids of a kept list (genaug filter --out): JSON lines {"id": ...}. */
async function readKept(path: string): Promise<Set<string>> {
  const kept = new Set<string>();
  for (const { line, value } of await readJsonObjects(path, 'the kept samples')) {
    if (typeof value.id !== 'string') throw new GenaugError('E_FORMAT', `${path}:${line}: each line needs an "id" string`, { path, line });
    kept.add(value.id);
  }
  return kept;
}
