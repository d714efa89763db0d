/** `genaug export classification`: whole labelled images as an ImageFolder and WebDataset classification set. */
import { Command } from 'commander';

import { CLASSIFICATION_FORMATS, exportClassification, readLabelledManifest, type ClassificationFormat } from '../augment/classification.js';
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
        let kept: Set<string> | undefined;
        if (o.kept) {
          kept = new Set();
          for (const { line, value } of await readJsonObjects(o.kept, 'the kept samples')) {
            if (typeof value.id !== 'string') throw new GenaugError('E_FORMAT', `${o.kept}:${line}: each line needs an "id" string`, { path: o.kept, line });
            kept.add(value.id);
          }
        }
        const generated = await readLabelledManifest(o.manifest, { ...(o.images ? { images: o.images } : {}), origin: 'generated', ...(kept ? { kept } : {}) });
        const real = o.real ? await readLabelledManifest(o.real, { ...(o.realImages ? { images: o.realImages } : {}), origin: 'real' }) : [];
        const r = await exportClassification({ items: [...real, ...generated], out: o.out, formats: formatsOf(String(o.format)), shardSize: o.shardSize });
        global.print(`classification set: ${r.images} images (${generated.length} generated, ${real.length} real) of ${r.classes.length} classes in ${o.out} (classes.txt; ${formatsOf(String(o.format)).join(', ')})`);
      }),
  );
  return cmd;
}
