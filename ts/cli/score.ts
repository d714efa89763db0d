/**
 * `genaug score <kind>`: computes one kind of score and merges its columns
 * into a scores table (JSONL or CSV by extension, keyed by sample id).
 *
 * Samples come from a manifest (JSONL, one {file, category?, id?, job?,
 * label?} per line, files relative to --images or the manifest's folder) or
 * from an embeddings index (`genaug embed`'s E.index.jsonl, row-aligned with
 * E.npy). The sample id is the line's `id`, else its `file`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { Command, Option } from 'commander';

import { interSimilarity, scoreInstancesAgainstReal, duplicateGroups, aliaSemantic, ALIA_NEGATIVES, clipScores, clipTextRows, GRADE_RESPONSE_FORMAT, planToScene, clisImageClip, clisImageJudge, ImageClassifier, confidentThresholds, confidenceScores } from '../curate/score.js';
import { alphaAreaFraction, compositeOnWhite, writeRealCrops } from '../curate/crops.js';
import { examplesFromCoco, examplesFromVisualGenome, imageSizesFromVisualGenome, nameSimilarityFromEmbeddings, nameSimilarityFromFunction, nameSimilarityFromTable, readJson, readRelationPool } from '../curate/relations.js';
import { contentHash, mergeScores, openSampleJournal, type ScoreColumns } from '../curate/table.js';
import { readCoco } from '../io/coco.js';
import { imageInfo, readImage } from '../io/images.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readMatrix } from '../io/npy.js';
import { manifestImage } from '../io/roots.js';
import { buildRelationPool, clisLayout, layoutNames, poolToAcpJson } from '../kernels/layout.js';
import { ChatClient } from '../llm/chat.js';
import type { ImageTextEmbedder, RgbInput } from '../models/types.js';
import { ClipModel } from '../models/clip.js';
import { packagedWordNet } from '../plan/wordnet.js';
import { readJsonObjects } from '../util/jsonl.js';
import { maskCredentials } from '../util/url.js';
import { GenaugError, ioError } from '../native/errors.js';
import type { Device } from '../native/device.js';
import { deviceOption, intArg, numberArg, type GlobalOptions } from './args.js';

export interface ManifestLine {
  file?: string;
  id?: string;
  category?: string;
  job?: string;
  label?: string | number;
  [k: string]: unknown;
}

/** Reads a JSONL manifest or embeddings index; each line must be an object. */
export async function readJsonl(path: string): Promise<ManifestLine[]> {
  return (await readJsonObjects(path)).map((l) => l.value as ManifestLine);
}

const sampleId = (l: ManifestLine, i: number, path: string): string => {
  const id = l.id ?? l.file;
  if (typeof id !== 'string' || !id) throw new GenaugError('E_FORMAT', `${path}:${i + 1} has neither "id" nor "file"`);
  return id;
};

/** The index next to an embeddings file: E.npy → E.index.jsonl. */
const indexOf = (npy: string) => npy.replace(/\.npy$/i, '') + '.index.jsonl';

async function embeddings(npy: string, index?: string) {
  const m = await readMatrix(npy, { name: npy });
  const ip = index ?? indexOf(npy);
  const lines = await readJsonl(ip);
  if (lines.length !== m.rows) throw new GenaugError('E_SHAPE', `${ip} has ${lines.length} lines but ${npy} has ${m.rows} rows; they must be row-aligned`);
  return { m, lines, ids: lines.map((l, i) => sampleId(l, i, ip)), indexPath: ip };
}

/** Opens a CLIP model folder (split or combined ONNX layout, see ts/models/clip.ts). */
export async function openEmbedder(dir: string): Promise<ImageTextEmbedder> {
  return ClipModel.open(dir);
}

const resolveFile = (file: string, base: string) => (isAbsolute(file) ? file : join(base, file));

type Loaded = { img: RgbInput; area?: number; areaSource?: AreaSource } | { error: string };

/**
 * Where an instance's area fraction comes from, best first (ALGORITHMS.md §2.2/2.3 measure the foreground's share
 * of the *generated image*): 'manifest' (the line's area_fraction / areaFraction, as `genaug annotate` records it),
 * 'pool-index' (annotate's index.json, by file), 'source-image' (the crop's alpha > 128 pixels over the size of the
 * line's `source` image), else 'crop' (alpha > 128 share of the tight crop itself: NOT the reference quantity; a
 * fully opaque rectangular crop scores 1.0).
 */
export type AreaSource = 'manifest' | 'pool-index' | 'source-image' | 'crop';

const givenArea = (l: ManifestLine): number | undefined => {
  const v = l.area_fraction ?? l.areaFraction;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};

/** annotate's index.json ({category: [{file, areaFraction, ...}]}) → area fraction by file (as written there). */
async function poolIndexAreas(path: string): Promise<Map<string, number>> {
  const j = (await readJson(path)) as Record<string, unknown>;
  const out = new Map<string, number>();
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new GenaugError('E_FORMAT', `${path}: expected annotate's index.json ({category: [{file, areaFraction}]})`);
  for (const [cat, list] of Object.entries(j)) {
    if (!Array.isArray(list)) throw new GenaugError('E_FORMAT', `${path}: category ${JSON.stringify(cat)} is not a list`);
    for (const e of list as Array<Record<string, unknown>>) {
      const a = e?.areaFraction ?? e?.area_fraction;
      if (typeof e?.file === 'string' && typeof a === 'number') out.set(e.file, a);
    }
  }
  return out;
}

/** A manifest line's image (see manifestImage: --images, else the line's `path` or `file` from the manifest's folder). */
async function loadImage(l: ManifestLine, i: number, images: string | undefined, path: string, rgba = false, areas?: Map<string, number>): Promise<Loaded> {
  if (typeof l.file !== 'string') throw new GenaugError('E_FORMAT', `${path}:${i + 1} has no "file"`);
  const { root: base, name } = manifestImage(l, path, images);
  const f = resolveFile(name ?? l.file, base);
  try {
    if (!rgba) return { img: await readImage(f) };
    const crop = await readImage(f, { channels: 4 });
    const px = crop.data;
    const img = compositeOnWhite(px, crop.width, crop.height);
    const given = givenArea(l);
    if (given !== undefined) return { img, area: given, areaSource: 'manifest' };
    const indexed = areas?.get(l.file);
    if (indexed !== undefined) return { img, area: indexed, areaSource: 'pool-index' };
    const fg = alphaAreaFraction(px, crop.width, crop.height) * crop.width * crop.height;
    const src = typeof l.source === 'string' ? l.source : typeof l.image === 'string' ? l.image : undefined;
    if (src) {
      const m = await imageInfo(resolveFile(src, base));
      return { img, area: fg / (m.width * m.height), areaSource: 'source-image' };
    }
    return { img, area: fg / (crop.width * crop.height), areaSource: 'crop' };
  } catch (e) {
    return { error: `${f}: ${(e as Error).message}` };
  }
}

/** Images are decoded and scored `batch` at a time: memory holds one batch of images, never the whole manifest. */
const DEFAULT_BATCH = 64;

/** Runs `fn` over consecutive batches of lines with their decoded images (an undecodable image is an { error }). */
async function forBatches(
  lines: ManifestLine[],
  batch: number,
  load: (l: ManifestLine, i: number) => Promise<Loaded>,
  fn: (items: Array<{ line: ManifestLine; index: number; loaded: Loaded }>) => Promise<void>,
): Promise<void> {
  for (let s = 0; s < lines.length; s += batch) {
    const items: Array<{ line: ManifestLine; index: number; loaded: Loaded }> = [];
    for (let i = s; i < Math.min(lines.length, s + batch); i++) items.push({ line: lines[i]!, index: i, loaded: await load(lines[i]!, i) });
    await fn(items);
  }
}

const batchOption = () => ['--batch-size <n>', `images decoded and scored per model call (default ${DEFAULT_BATCH}); the scores do not depend on it`, intArg('--batch-size', 1, 65536), DEFAULT_BATCH] as const;

/**
 * Why pixel boxes in a VG pool are mostly harmless (ALGORITHMS.md §1.3): an example's terms only compare its two
 * boxes, which share one image. Size (area ratio) and IoU are invariant to any per-image axis scaling, uniform or not;
 * ρ (centre distance / mean diagonal) and the direction cosine are invariant to a uniform scale only. So pixel boxes
 * score exactly like boxes normalised by one uniform factor, and differ from boxes normalised by (width, height) only
 * in ρ and direction, and only for non-square images (the aspect ratio stretches them).
 */
export const VG_PIXELS_NOTE =
  'pool: VG boxes are in pixels (no --image-data): CLIS-L size and IoU terms are unaffected (invariant to any per-image x/y scale); ' +
  'rho and direction are invariant to a uniform scale only, so for non-square images they differ from normalised boxes (give --image-data image_data.json to normalise)';

/** inter-sim's category key: lower case, `_` and runs of white space as one space, trimmed (LVIS senses kept apart). */
export function interSimKey(name: string): string {
  return name.replace(/[_\s]+/g, ' ').trim().toLowerCase();
}

async function write(global: GlobalOptions, table: string, cols: Map<string, ScoreColumns>, what: string) {
  const t = await mergeScores(table, cols);
  global.print(`${what}: ${cols.size} samples scored; ${table} now has ${t.size} rows`);
}

export function scoreCommand(global: GlobalOptions): Command {
  const cmd = new Command('score').description('compute scores of generated samples (CLIP score, inter-similarity, near-duplicates, ALIA, CLIS-L, CLIS-I) into a scores table');

  cmd
    .command('clip-score')
    .description("X-Paste: each RGBA instance composited on white vs 'a photo of {category}', ×100 (columns clip_score, area_fraction, category)")
    .requiredOption('--model <dir>', 'CLIP model folder')
    .requiredOption('--manifest <file>', 'JSONL {file, category, id?} of RGBA instances')
    .option('--images <dir>', 'folder the files are relative to (default: the manifest folder)')
    .option('--template <text>', 'text template', 'a photo of {}')
    .option('--pool-index <file>', "annotate's index.json: area fractions of the generated images by instance file, for lines without area_fraction")
    .option(...batchOption())
    .requiredOption('--table <file>', 'scores table to merge into (.jsonl or .csv)')
    .addHelpText(
      'after',
      '\narea_fraction is the foreground share of the generated image (X-Paste keeps 0.05..0.95). It comes from, best first:\n' +
        "the line's area_fraction/areaFraction (genaug annotate records it), --pool-index, the line's source image size\n" +
        '("source": the generated image), else the tight crop itself; area_fraction_source says which (crop = not the reference quantity).',
    )
    .action(async (o) => {
      const lines = await readJsonl(o.manifest);
      const areas = o.poolIndex ? await poolIndexAreas(o.poolIndex) : undefined;
      const embedder = await openEmbedder(o.model);
      const nameOf = (l: ManifestLine) => String(l.category ?? '');
      const cols = new Map<string, ScoreColumns>();
      lines.forEach((l, i) => sampleId(l, i, o.manifest));
      try {
        const texts = await clipTextRows(embedder, lines.map(nameOf), o.template);
        await forBatches(lines, o.batchSize, (l, i) => loadImage(l, i, o.images, o.manifest, true, areas), async (items) => {
          const ok = items.filter(({ loaded }) => 'img' in loaded);
          const s = await clipScores(embedder, ok.map(({ loaded }) => (loaded as { img: RgbInput }).img), ok.map(({ line }) => nameOf(line)), o.template, texts);
          let k = 0;
          for (const { line, index, loaded } of items) {
            const id = sampleId(line, index, o.manifest);
            if ('error' in loaded) cols.set(id, { clip_score: null, clip_score_error: loaded.error, area_fraction: null, category: line.category ?? null });
            else cols.set(id, { clip_score: s[k++]!, area_fraction: loaded.area!, area_fraction_source: loaded.areaSource!, category: line.category ?? null });
          }
        });
      } finally {
        await embedder.close?.();
      }
      await write(global, o.table, cols, 'clip-score');
    });

  cmd
    .command('inter-sim')
    .description('DiverGen: cosine of each generated embedding to the real embeddings of its category: mean (class-mean shortcut), max, top-k mean (columns inter_sim_mean/max/topk); categories from the index files')
    .requiredOption('--gen <file>', 'generated embeddings .npy (index: <file>.index.jsonl with "category")')
    .requiredOption('--real <file>', 'real-crop embeddings .npy (index: <file>.index.jsonl with "category"; embed the crops of `genaug score real-crops`)')
    .option('--gen-index <file>', 'generated index (default: next to --gen)')
    .option('--real-index <file>', 'real index (default: next to --real)')
    .option('--k <n>', 'k of the top-k mean', intArg('--k', 1), 5)
    .requiredOption('--table <file>', 'scores table to merge into')
    .addHelpText(
      'after',
      '\nCategories match after lower-casing and reading `_` as a space ("Sea_Lion" = "sea lion"); LVIS senses stay apart.\n' +
        'A generated category with no real match gets null scores and an inter_sim_error column; unmatched categories of\n' +
        'both sides are listed on stdout.',
    )
    .action(async (o) => {
      const gen = await embeddings(o.gen, o.genIndex);
      const real = await embeddings(o.real, o.realIndex);
      // Both sides are matched by the same normalised key (case, `_` vs space, repeated spaces).
      const cats = new Map<string, number>();
      const seen = [new Map<string, string>(), new Map<string, string>()];  // key -> first raw name, per side
      const cat = (l: ManifestLine, i: number, p: string, side: 0 | 1) => {
        if (l.category === undefined || l.category === null) throw new GenaugError('E_FORMAT', `${p}:${i + 1} has no "category"`);
        const key = interSimKey(String(l.category));
        if (!seen[side]!.has(key)) seen[side]!.set(key, String(l.category));
        if (!cats.has(key)) cats.set(key, cats.size);
        return cats.get(key)!;
      };
      const gl = Int32Array.from(gen.lines, (l, i) => cat(l, i, gen.indexPath, 0));
      const rl = Int32Array.from(real.lines, (l, i) => cat(l, i, real.indexPath, 1));
      const r = await interSimilarity(gen.m, gl, real.m, rl, { k: o.k });
      const cols = new Map<string, ScoreColumns>();
      const v = (x: number) => (Number.isNaN(x) ? null : x);
      const noReal = [...seen[0]!].filter(([k]) => !seen[1]!.has(k)).map(([, raw]) => raw);
      const noGen = [...seen[1]!].filter(([k]) => !seen[0]!.has(k)).map(([, raw]) => raw);
      gen.ids.forEach((id, i) => {
        const c = String(gen.lines[i]!.category);
        const unmatched = !seen[1]!.has(interSimKey(c));
        cols.set(id, {
          category: c,
          inter_sim_mean: v(r.mean[i]!),
          inter_sim_max: v(r.max[i]!),
          inter_sim_topk: v(r.topk[i]!),
          ...(unmatched ? { inter_sim_error: `no real crop has a category matching ${JSON.stringify(c)}` } : {}),
        });
      });
      if (noReal.length) global.print(`inter-sim: ${noReal.length} generated categories match no real category (scores null): ${noReal.map((c) => JSON.stringify(c)).join(', ')}`);
      if (noGen.length) global.print(`inter-sim: ${noGen.length} real categories match no generated category: ${noGen.map((c) => JSON.stringify(c)).join(', ')}`);
      await write(global, o.table, cols, 'inter-sim');
    });

  cmd
    .command('against-real')
    .description("genaug run's scores of generated instances against the real crops (DiverGen inter-similarity of its own class, the closest class, k-NN agreement, same-class near-duplicates, border contact, area fraction), from `genaug embed --coco` outputs; `genaug filter --rules` reads them")
    .requiredOption('--gen <file>', 'generated instance embeddings .npy (genaug embed --coco ANNOTATE/annotations.json --instances masked; index next to it)')
    .requiredOption('--real <file>', 'real crop embeddings .npy (genaug embed --coco REAL.json --instances crop; index next to it)')
    .addOption(new Option('--inter <kind>', 'own-class similarity: mean or max over the class’s real crops').choices(['mean', 'max']).default('mean'))
    .option('--knn <n>', 'nearest real crops counted for the agreement', intArg('--knn', 1), 5)
    .option('--dedup-threshold <x>', 'cosine at or above which two generated samples of one class are near-duplicates', numberArg('--dedup-threshold'), 0.99)
    .option('--categories <list>', 'comma-separated class names in label order (default: from the two indexes)')
    .requiredOption('--table <file>', 'scores table to merge into (keyed by generated file)')
    .action(async (o) => {
      const table = await scoreInstancesAgainstReal(o.gen, o.real, {
        inter: o.inter,
        knn: o.knn,
        dedupThreshold: o.dedupThreshold,
        ...(o.categories ? { classes: String(o.categories).split(',').map((c: string) => c.trim()) } : {}),
      });
      await write(global, o.table, table, 'against-real');
    });

  cmd
    .command('real-crops')
    .description("DiverGen's real references: cut every annotation of a COCO/LVIS file with the padding-and-blur rule (mask box + 40 px, outside-mask pixels 10x10 box-blurred) into PNGs + a manifest {file, category, id}")
    .requiredOption('--coco <file>', 'COCO/LVIS annotations (train split)')
    .requiredOption('--images <dir>', 'image folder of the annotations')
    .requiredOption('--out <dir>', 'output folder (crops + manifest.jsonl)')
    .option('--padding <px>', 'pixels on each side of the mask box', intArg('--padding', 0), 40)
    .option('--blur <px>', 'box-blur kernel side', intArg('--blur', 1), 10)
    .option('--max-pixels <n>', 'record images with more pixels than this (read from the header, before decoding) as failed (default 67108864 = 8192 x 8192)', intArg('--max-pixels', 1))
    .addHelpText('after', '\nEach finished image is a line of OUT/progress.jsonl; a killed run started again skips those images and writes the same manifest.')
    .action(async (o) => {
      const coco = await readCoco(o.coco, { polygons: 'packed' });
      const r = await writeRealCrops(coco, o.images, o.out, { padding: o.padding, blur: o.blur, ...(o.maxPixels ? { maxPixels: o.maxPixels } : {}) });
      if (coco.problems.length) global.print(`skipped ${coco.problems.length} unusable annotations (first: ${coco.problems[0]!.where}: ${coco.problems[0]!.message})`);
      global.print(`real-crops: ${r.written} crops written, ${r.failed} failed${r.resumed ? ` (${r.resumed} images from an earlier run)` : ''} (see ${join(o.out, 'manifest.jsonl')} and failed.jsonl)`);
      // Nothing lost without a word: a run where every crop failed is an error (the reasons are written).
      if (r.written === 0 && r.failed > 0) throw new GenaugError('E_IO', `every one of the ${r.failed} crops failed; the reasons are in ${join(o.out, 'failed.jsonl')}`, { path: join(o.out, 'failed.jsonl') });
    });

  cmd
    .command('near-dup')
    .description('near-duplicate groups by cosine ≥ threshold (column dup_group: the id of the group’s first sample; dup_keep)')
    .requiredOption('--emb <file>', 'embeddings .npy (index next to it)')
    .option('--index <file>', 'index (default: next to --emb)')
    .option('--threshold <x>', 'cosine at or above which two samples are duplicates', numberArg('--threshold'), 0.95)
    .requiredOption('--table <file>', 'scores table to merge into')
    .action(async (o) => {
      const e = await embeddings(o.emb, o.index);
      const r = await duplicateGroups(e.m, o.threshold);
      const cols = new Map<string, ScoreColumns>();
      e.ids.forEach((id, i) => cols.set(id, { dup_group: e.ids[r.group[i]!]!, dup_keep: r.keep[i] === 1 }));
      await write(global, o.table, cols, `near-dup (${r.duplicateGroups} groups with duplicates)`);
    });

  cmd
    .command('alia-semantic')
    .description('ALIA semantic filter: zero-shot over [positive, ...negatives] with softmax(logitScale·cos) (columns alia_pos_prob, alia_winner: 0 = positive)')
    .requiredOption('--model <dir>', 'CLIP model folder (text side; images from --emb)')
    .requiredOption('--emb <file>', 'image embeddings .npy of the samples, from the same model (index next to it)')
    .requiredOption('--positive <text>', 'the domain text, e.g. "a photo of a bird"')
    .option('--negative <text...>', `negative texts (default: ${ALIA_NEGATIVES.map((t) => JSON.stringify(t)).join(', ')})`)
    .requiredOption('--table <file>', 'scores table to merge into')
    .action(async (o) => {
      const e = await embeddings(o.emb);
      const embedder = await openEmbedder(o.model);
      const r = await aliaSemantic(embedder, e.m, o.positive, o.negative ?? ALIA_NEGATIVES);
      const cols = new Map<string, ScoreColumns>();
      e.ids.forEach((id, i) => cols.set(id, { alia_pos_prob: r.positiveProb[i]!, alia_winner: r.winner[i]! }));
      await embedder.close?.();
      await write(global, o.table, cols, 'alia-semantic');
    });

  cmd
    .command('alia-confidence')
    .description('ALIA confidence filter numbers: a classifier trained on real data; per-class thresholds = mean probability of the class on its real images (columns alia_max_prob, alia_pred, alia_threshold, alia_label)')
    .requiredOption('--classifier <file>', 'ONNX classifier: float32 NCHW image in, [N, K] logits out')
    .requiredOption('--classes <file>', 'class names, one per line, in the classifier’s output order')
    .requiredOption('--real <file>', 'JSONL {file, label} of the real training images')
    .requiredOption('--manifest <file>', 'JSONL {file, label, id?} of the generated samples (label = intended class; genaug generate\'s manifest, with "category", is read as it is)')
    .option('--images <dir>', 'folder the files are relative to (default: each manifest’s folder)')
    .option(...batchOption())
    .requiredOption('--table <file>', 'scores table to merge into')
    .action(async (o) => {
      const classes = (await readFile(o.classes, 'utf8')).split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
      const clf = await ImageClassifier.open(o.classifier);
      // `label` (a class index or name), else `category` / `class` as genaug generate writes them.
      const labelOf = (l: ManifestLine, i: number, p: string) => {
        const v = l.label ?? l.category ?? (l as { class?: unknown }).class;
        if (v === undefined) throw new GenaugError('E_FORMAT', `${p}:${i + 1}: the line has no "label" (or "category") naming its class`, { path: p, line: i + 1 });
        const k = typeof v === 'number' ? v : classes.indexOf(String(v));
        if (!Number.isInteger(k) || k < 0 || k >= classes.length) throw new GenaugError('E_ARGUMENT', `${p}:${i + 1}: label ${JSON.stringify(v)} is not one of the ${classes.length} classes in ${o.classes}`);
        return k;
      };
      /** Probabilities of the images that decoded (rows in line order) and the errors of those that did not. */
      const run = async (p: string) => {
        const lines = await readJsonl(p);
        const labels = Int32Array.from(lines, (l, i) => labelOf(l, i, p));
        const K = classes.length;
        const probs = new Float32Array(lines.length * K);
        const errors = new Map<number, string>();
        await forBatches(lines, o.batchSize, (l, i) => loadImage(l, i, o.images, p), async (items) => {
          const ok = items.filter(({ loaded }) => 'img' in loaded);
          for (const { index, loaded } of items) if ('error' in loaded) errors.set(index, loaded.error);
          if (ok.length === 0) return;
          const pr = await clf.predict(ok.map(({ loaded }) => (loaded as { img: RgbInput }).img));
          if (pr.classes !== K) throw new GenaugError('E_SHAPE', `the classifier has ${pr.classes} outputs but ${o.classes} lists ${K} classes`);
          ok.forEach(({ index }, k) => probs.set(pr.probs.subarray(k * K, (k + 1) * K), index * K));
        });
        const good = lines.map((_, i) => i).filter((i) => !errors.has(i));
        const pick = new Float32Array(good.length * K);
        good.forEach((i, k) => pick.set(probs.subarray(i * K, (i + 1) * K), k * K));
        return { lines, labels, good, probs: pick, goodLabels: Int32Array.from(good, (i) => labels[i]!), errors };
      };
      const real = await run(o.real);
      // A real image that cannot be decoded only leaves the class means; it is reported, the run goes on.
      for (const [i, e] of real.errors) process.stderr.write(`genaug: ${o.real}:${i + 1}: skipped, not in the thresholds: ${e}\n`);
      const thr = confidentThresholds(real.probs, real.goodLabels, classes.length);
      const gen = await run(o.manifest);
      const c = confidenceScores(gen.probs, gen.goodLabels, classes.length, thr);
      const cols = new Map<string, ScoreColumns>();
      gen.lines.forEach((l, i) => {
        const e = gen.errors.get(i);
        if (e !== undefined) cols.set(sampleId(l, i, o.manifest), { alia_max_prob: null, alia_pred: null, alia_threshold: null, alia_label: classes[gen.labels[i]!]!, alia_error: e });
      });
      gen.good.forEach((i, k) =>
        cols.set(sampleId(gen.lines[i]!, i, o.manifest), { alia_max_prob: c.maxProb[k]!, alia_pred: classes[c.pred[k]!]!, alia_threshold: Number.isNaN(c.threshold[k]!) ? null : c.threshold[k]!, alia_label: classes[gen.labels[i]!]! }),
      );
      const ordered = new Map(gen.lines.map((l, i) => [sampleId(l, i, o.manifest), cols.get(sampleId(l, i, o.manifest))!]));
      await write(global, o.table, ordered, `alia-confidence (${real.errors.size} real and ${gen.errors.size} generated images could not be read)`);
    });

  cmd
    .command('pool')
    .description('build a CLIS-L relation pool (ACP JSON {relation: [examples]}) from Visual Genome relationships.json or a COCO file with spatial relations')
    .option('--vg <file>', 'Visual Genome relationships.json')
    .option('--image-data <file>', 'Visual Genome image_data.json ([{image_id, width, height}]): divide the VG boxes by their image size, as plan layouts are (relationships of images it lacks are skipped); without it VG boxes stay in pixels')
    .option('--coco <file>', 'COCO/LVIS annotations (relations derived from boxes)')
    .option('--relations <list>', 'COCO: comma-separated relations among left of, right of, above, below, inside, surrounding (default all)')
    .option('--max-per-predicate <n>', 'keep a seeded sample of at most n examples per predicate (default all)', intArg('--max-per-predicate', 1))
    .option('--seed <n>', 'seed of that sample', intArg('--seed', 0), 0)
    .requiredOption('--out <file>', 'pool JSON')
    .action(async (o) => {
      if (Boolean(o.vg) === Boolean(o.coco)) throw new GenaugError('E_ARGUMENT', 'give exactly one of --vg and --coco');
      const cap = { seed: o.seed, ...(o.maxPerPredicate ? { maxPerPredicate: o.maxPerPredicate } : {}) };
      if (o.imageData && !o.vg) throw new GenaugError('E_ARGUMENT', '--image-data goes with --vg (COCO boxes are normalised by their images already)');
      const sizes = o.imageData ? imageSizesFromVisualGenome(await readJson(o.imageData), o.imageData) : undefined;
      const r = o.vg
        ? examplesFromVisualGenome(await readJson(o.vg), { ...cap, ...(sizes ? { imageSizes: sizes } : {}) }, o.vg)
        : examplesFromCoco(await readCoco(o.coco, { polygons: 'packed' }), { ...cap, ...(o.relations ? { relations: String(o.relations).split(',').map((s: string) => s.trim()) } : {}) });
      const pool = buildRelationPool(r.examples);
      await writeFileAtomic(o.out, new TextEncoder().encode(JSON.stringify(poolToAcpJson(pool)) + '\n'));
      global.print(`pool: ${r.examples.length} examples over ${pool.predicates.length} predicates; skipped ${JSON.stringify(r.skipped)}; wrote ${o.out}`);
      if (o.vg && !sizes) global.print(VG_PIXELS_NOTE);
      else if (o.vg) global.print('pool: VG boxes normalised by their image size (x / width, y / height), like plan layouts');
    });

  cmd
    .command('clis-l')
    .description('CLIS-L of plan layouts (plan.jsonl lines with "layout" and relations) against a relation pool (columns clis_l, clis_l_conf, clis_l_status)')
    .requiredOption('--plan <file>', 'plan.jsonl')
    .requiredOption('--pool <file>', 'relation pool JSON (genaug score pool, or ACP’s relations_one_to_one.json)')
    .option('--name-sim <file>', "name-similarity JSON {a: {b: sim}} (ACP's sim_map)")
    .option('--model <dir>', 'CLIP model folder: name similarity = cosine of the names’ text embeddings')
    .option('--exact-names', 'name similarity 1 for equal names, 0 otherwise')
    .option('--wordnet [measure]', 'name similarity from the packaged WordNet: wup (Wu-Palmer, default) or path; unknown words score 0')
    .option('--tau <x>', 'name-similarity floor for candidate examples', numberArg('--tau'), 0.6)
    .option('--faithful', "the released code's formula (dist = IoU term only) instead of the intended ½ IoU + ½ ρ")
    .option('--balance', 'use_balance weights of the two dist terms')
    .option('--no-symmetry', 'do not mirror example directions for predicates without left/right')
    .addOption(deviceOption('the example scores (the same bytes on either)'))
    .requiredOption('--table <file>', 'scores table to merge into (keyed by job id)')
    .action(async (o) => {
      const given = [o.nameSim, o.model, o.exactNames, o.wordnet].filter(Boolean).length;
      if (given !== 1) throw new GenaugError('E_ARGUMENT', 'give exactly one of --name-sim, --model, --wordnet and --exact-names');
      const measure = o.wordnet === true ? 'wup' : o.wordnet;
      if (o.wordnet && measure !== 'wup' && measure !== 'path') throw new GenaugError('E_ARGUMENT', `--wordnet takes wup or path, not ${JSON.stringify(measure)}`);
      const jobs = await readJsonl(o.plan);
      const scenes = jobs.map((j, i) => {
        if (typeof j.id !== 'string') throw new GenaugError('E_FORMAT', `${o.plan}:${i + 1} has no "id"`);
        return planToScene(j as never);
      });
      const pool = await readRelationPool(o.pool);
      const qn = layoutNames(scenes);
      let sim;
      if (o.nameSim) sim = nameSimilarityFromTable(await readJson(o.nameSim), qn, pool.names, o.nameSim);
      else if (o.exactNames) sim = nameSimilarityFromFunction(qn, pool.names, () => 0);
      else if (o.wordnet) {
        const wn = packagedWordNet();
        sim = nameSimilarityFromFunction(qn, pool.names, (a, b) => wn.wordSimilarity(a, b, measure) ?? 0);
      } else {
        const e = await openEmbedder(o.model);
        sim = await nameSimilarityFromEmbeddings(e, qn, pool.names);
        await e.close?.();
      }
      const r = await clisLayout(scenes, pool, sim, {
        tau: o.tau,
        faithful: Boolean(o.faithful),
        balance: Boolean(o.balance),
        symmetry: o.symmetry,
        ...(o.device !== 'cpu' ? { device: o.device as Device } : {}),
      });
      const cols = new Map<string, ScoreColumns>();
      jobs.forEach((j, i) => cols.set(String(j.id), { clis_l: r.score[i]!, clis_l_conf: r.confidence[i]!, clis_l_status: r.status[i]! }));
      await write(global, o.table, cols, 'clis-l');
    });

  cmd
    .command('clis-i')
    .description('CLIS-I of generated images against their plan job (caption = prompt, objects = layout): judge mode (VLM + LLM over OpenAI-compatible endpoints) or clip mode (columns clis_i, clis_i_global, job)')
    .requiredOption('--plan <file>', 'plan.jsonl')
    .requiredOption('--manifest <file>', 'JSONL {file, job, id?}: each generated image and its plan job id')
    .option('--images <dir>', 'folder the files are relative to (default: the manifest folder)')
    .option('--mode <mode>', 'judge or clip', 'judge')
    .option('--model <dir>', 'clip mode: CLIP model folder')
    .option('--vlm-url <url>', 'judge mode: VLM endpoint base URL (…/v1)')
    .option('--vlm-model <name>', 'judge mode: VLM model name')
    .option('--llm-url <url>', 'judge mode: LLM endpoint base URL (default: the VLM’s)')
    .option('--llm-model <name>', 'judge mode: LLM model name (default: the VLM’s)')
    .option('--retries <n>', 'retries per request after the first attempt (transport errors, and re-asking after an unparseable grade)', intArg('--retries', 0, 20), 3)
    .option('--no-json-schema', 'judge mode: do not send the grade JSON schema as response_format (for servers that reject it)')
    .option('--concurrency <n>', 'samples scored at once (judge mode: requests in flight); the results do not depend on it', intArg('--concurrency', 1, 256), 1)
    .requiredOption('--table <file>', 'scores table to merge into')
    .addHelpText(
      'after',
      '\nEvery finished sample is a line of <table>.clis-i.progress.jsonl; a killed run started again with the same command skips\n' +
        'those and writes the same table. Samples that failed on transport/HTTP errors are not journaled (a rerun asks again).\n' +
        'Other inputs (plan/manifest contents), mode, model or endpoints start the journal over.',
    )
    .action(async (o) => {
      const jobs = new Map((await readJsonl(o.plan)).map((j) => [String(j.id), j]));
      const lines = await readJsonl(o.manifest);
      const base = o.images ?? dirname(resolve(o.manifest));
      let judge: { vlm: ChatClient; llm: ChatClient } | undefined;
      let embedder: ImageTextEmbedder | undefined;
      if (o.mode === 'judge') {
        if (!o.vlmUrl || !o.vlmModel) throw new GenaugError('E_ARGUMENT', 'judge mode needs --vlm-url and --vlm-model');
        const vlm = new ChatClient({ baseUrl: o.vlmUrl, model: o.vlmModel, retries: o.retries });
        const llm = new ChatClient({ baseUrl: o.llmUrl ?? o.vlmUrl, model: o.llmModel ?? o.vlmModel, retries: o.retries, ...(o.jsonSchema ? { extraBody: { response_format: GRADE_RESPONSE_FORMAT } } : {}) });
        judge = { vlm, llm };
      } else if (o.mode === 'clip') {
        if (!o.model) throw new GenaugError('E_ARGUMENT', 'clip mode needs --model');
        embedder = await openEmbedder(o.model);
      } else throw new GenaugError('E_ARGUMENT', `--mode must be judge or clip, got ${o.mode}`);
      const settings = {
        inputs: await contentHash(o.plan, o.manifest),
        images: resolve(base),
        mode: o.mode,
        // The journal's settings are written into it: endpoints without their credentials.
        ...(o.mode === 'clip' ? { model: resolve(o.model) } : { vlm: [maskCredentials(o.vlmUrl), o.vlmModel], llm: [maskCredentials(o.llmUrl ?? o.vlmUrl), o.llmModel ?? o.vlmModel], schema: Boolean(o.jsonSchema) }),
      };
      const journal = await openSampleJournal<ScoreColumns>(`${o.table}.clis-i.progress.jsonl`, settings);
      // Results by manifest index: the table does not depend on --concurrency or on the order samples finish in.
      // `unread`: the image itself could not be read (the server was never asked), so an all-failed run is not blamed on it.
      const results = new Array<{ id: string; cols: ScoreColumns; failed: boolean; unread?: boolean }>(lines.length);
      lines.forEach((l, i) => {
        if (!jobs.has(String(l.job))) throw new GenaugError('E_ARGUMENT', `${o.manifest}:${i + 1}: job ${JSON.stringify(l.job)} is not in ${o.plan}`);
      });
      const scoreOne = async (i: number): Promise<void> => {
        const l = lines[i]!;
        const id = sampleId(l, i, o.manifest);
        const key = `${i}:${id}`;
        const before = journal.done.get(key);
        if (before) {
          results[i] = { id, cols: before, failed: before.clis_i === null, unread: before.clis_i === null && before.clis_i_global === undefined };
          return;
        }
        const job = jobs.get(String(l.job))!;
        const x = await loadImage(l, i, o.images, o.manifest);
        if ('error' in x) {
          const cols = { clis_i: null, clis_i_error: x.error, job: String(l.job) };
          results[i] = { id, cols, failed: true, unread: true };
          await journal.append(key, cols);
          return;
        }
        const layout = (job.layout as Array<{ name: string; box: [number, number, number, number]; attributes?: string[] }> | undefined) ?? [];
        const input = {
          image: x.img,
          caption: String(job.prompt ?? ''),
          objects: layout.map((b) => ({ name: b.name, box: b.box, text: b.attributes?.length ? `${b.name}: ${b.attributes.join(', ')}` : b.name })),
        };
        try {
          const r = judge ? await clisImageJudge(judge.vlm, judge.llm, input, { retries: o.retries }) : await clisImageClip(embedder!, input);
          const cols = { clis_i: r.score, clis_i_global: r.global, job: String(l.job), ...(r.notes.length ? { clis_i_notes: r.notes.join('; ') } : {}) };
          results[i] = { id, cols, failed: false };
          await journal.append(key, cols);
        } catch (e) {
          // A server that is down or answers HTTP errors fails the item (recorded, not journaled), it does not score it −1.
          if (!(e instanceof GenaugError) || (e.code !== 'E_BACKEND' && e.code !== 'E_FORMAT' && e.code !== 'E_IO')) throw e;
          results[i] = { id, cols: { clis_i: null, clis_i_global: null, job: String(l.job), clis_i_error: `[${e.code}] ${e.message}` }, failed: true };
        }
      };
      let next = 0;
      let stop: unknown;
      const lane = async () => {
        for (let i = next++; stop === undefined && i < lines.length; i = next++) {
          try {
            await scoreOne(i);
          } catch (e) {
            stop ??= e;
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, lines.length)) }, lane));
      } catch (e) {
        stop ??= e;
      }
      if (stop !== undefined) {
        await embedder?.close?.();
        throw stop;
      }
      const cols = new Map<string, ScoreColumns>();
      let failed = 0;
      for (const r of results) {
        cols.set(r.id, r.cols);
        if (r.failed) failed++;
      }
      await embedder?.close?.();
      await write(global, o.table, cols, `clis-i (${o.mode}; ${failed} failed)`);
      if (lines.length > 0 && failed === lines.length) {
        const unread = results.filter((r) => r.unread);
        const first = String(unread[0]?.cols.clis_i_error ?? '');
        if (unread.length === failed) throw new GenaugError('E_IO', `clis-i: none of the ${failed} images could be read (first: ${first}); see clis_i_error in ${o.table}`, { path: o.manifest });
        const served = failed - unread.length;
        throw new GenaugError(
          'E_BACKEND',
          `clis-i: all ${failed} items failed: ${served} at the server (see clis_i_error in ${o.table}; is it up?)${unread.length ? `, ${unread.length} because the image could not be read (first: ${first})` : ''}`,
        );
      }
    });

  return cmd;
}
