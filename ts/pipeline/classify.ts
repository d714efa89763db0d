/**
 * The classification methods inside `genaug run` (output: classification): ALIA, caption prompts and
 * "Diversify, Don't Fine-Tune". The sample is the whole generated image with the class it was asked for:
 *
 * - annotate does not apply (no mask is cut; an image is not dropped for lacking a foreground);
 * - embed embeds each generated image whole (a COCO file of one full-image box per image, embed/whole-images.json,
 *   through the same instance embedder, padding 0), so near-duplicates and the real-crop similarities are
 *   computed on what the classifier will see;
 * - score adds ALIA's columns when filter.rules has 'alia': the semantic filter (zero-shot CLIP over
 *   [score.alia_positive, ...score.alia_negatives], columns alia_pos_prob / alia_winner) and the confidence filter
 *   (score.classifier over the real images of one class for the per-class thresholds, then over every generated
 *   image: alia_max_prob / alia_pred / alia_threshold / alia_label);
 * - plan with plan.resolve_meanings runs DDFT's label-ambiguity resolution first (plan/meanings.jsonl and its
 *   .meanings.json) and the llm strategy's contextual / style prompts then carry each class's meaning.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import { aliaSemantic, ALIA_NEGATIVES, confidenceScores, confidentThresholds, ImageClassifier, readInstanceEmbeddings } from '../curate/score.js';
import { round6, type ScoreTable } from '../curate/table.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readImage } from '../io/images.js';
import { readCoco } from '../io/coco.js';
import { checkWithin } from '../io/roots.js';
import { ClipModel } from '../models/clip.js';
import type { ImageTextEmbedder, RgbInput } from '../models/types.js';
import type { CocoIndex } from '../io/coco.js';
import { plan, type EndpointOptions } from '../plan/plan.js';
import { GenaugError } from '../native/errors.js';
import { readJsonl } from '../util/jsonl.js';
import type { LoadedConfig } from './config.js';

/** What these functions need of a stage's context (stages.ts StageContext has it). */
export interface StageContext {
  cfg: LoadedConfig;
  runDir: string;
  /** The stage's folder. */
  dir: string;
  log: (line: string) => void;
}

/** A generated image the run produced (generate/generated.jsonl, status ok). */
interface OkLine {
  file: string;
  category: string;
  status: string;
}

/**
 * embed/whole-images.json: every generated image as one annotation covering the whole image (its asked class), so
 * the instance embedder embeds the image as it is (mode crop, padding 0). Categories in `classes` order.
 */
export async function wholeImageCoco(ctx: StageContext, classes: string[]): Promise<string> {
  const gen = (await readJsonl<OkLine>(join(ctx.runDir, 'generate', 'generated.jsonl'))).filter((g) => g.status === 'ok');
  const images: unknown[] = [];
  const annotations: unknown[] = [];
  const catId = new Map(classes.map((k, i) => [k, i + 1]));
  let id = 0;
  for (const g of gen) {
    const k = catId.get(g.category);
    if (k === undefined) continue;
    let width: number | undefined;
    let height: number | undefined;
    try {
      const meta = await sharp(join(ctx.runDir, 'generate', 'images', g.file)).metadata();
      width = meta.width;
      height = meta.height;
    } catch {
      /* unreadable: the embedder records it as failed */
    }
    id++;
    const W = width ?? 1;
    const H = height ?? 1;
    images.push({ id, file_name: g.file, width: W, height: H });
    annotations.push({ id, image_id: id, category_id: k, bbox: [0, 0, W, H], area: W * H, segmentation: [[0, 0, W, 0, W, H, 0, H]], iscrowd: 0 });
  }
  const out = join(ctx.dir, 'whole-images.json');
  await mkdir(ctx.dir, { recursive: true });
  await writeFileAtomic(out, new TextEncoder().encode(JSON.stringify({ images, annotations, categories: classes.map((name, i) => ({ id: i + 1, name })) }) + '\n'));
  return out;
}

/** A picture for the classifier: a whole image, or the box [x, y, w, h] of one (a real instance). */
interface Picture {
  path: string;
  box?: [number, number, number, number];
}

async function loadRgb(p: Picture): Promise<RgbInput | string> {
  try {
    const im = await readImage(p.path, { channels: 3 });
    if (!p.box) return { data: im.data, width: im.width, height: im.height };
    const x0 = Math.max(0, Math.floor(p.box[0]));
    const y0 = Math.max(0, Math.floor(p.box[1]));
    const x1 = Math.min(im.width, Math.ceil(p.box[0] + p.box[2]));
    const y1 = Math.min(im.height, Math.ceil(p.box[1] + p.box[3]));
    if (x1 <= x0 || y1 <= y0) return `box ${JSON.stringify(p.box)} is outside the ${im.width}x${im.height} image`;
    const w = x1 - x0;
    const data = new Uint8Array(w * (y1 - y0) * 3);
    for (let y = y0; y < y1; y++) data.set(im.data.subarray((y * im.width + x0) * 3, (y * im.width + x1) * 3), (y - y0) * w * 3);
    return { data, width: w, height: y1 - y0 };
  } catch (e) {
    return (e as Error).message;
  }
}

/** Class probabilities of images (in batches); a file that cannot be read gets its error instead. */
async function predictAll(clf: ImageClassifier, files: Picture[], batch: number, K: number): Promise<Array<Float32Array | string>> {
  const out: Array<Float32Array | string> = [];
  for (let i = 0; i < files.length; i += batch) {
    const loaded = await Promise.all(files.slice(i, i + batch).map(loadRgb));
    const ok = loaded.filter((x): x is RgbInput => typeof x !== 'string');
    const pr = ok.length ? await clf.predict(ok) : { probs: new Float32Array(0), classes: K };
    if (ok.length && pr.classes !== K) throw new GenaugError('E_SHAPE', `score.classifier has ${pr.classes} outputs but the run has ${K} classes (its outputs must be the run's classes, in order)`);
    let k = 0;
    for (const x of loaded) out.push(typeof x === 'string' ? x : pr.probs.slice(k * K, ++k * K));
  }
  return out;
}

/**
 * ALIA's scores on whole generated images, merged into `table` (rows by generated file): the semantic filter with
 * the run's CLIP (embed.clip) and, with score.classifier, the confidence filter. The per-class thresholds are the
 * classifier's mean probability of the class over the real instances of that class, each cropped to its box: the
 * "training images labelled k" of ALIA's cleanlab thresholds when the real data is a detection set (for a
 * classification-style COCO, one box per image around its object, the crop is about the image).
 */
export async function aliaColumns(ctx: StageContext, table: ScoreTable, classes: string[]): Promise<Record<string, unknown>> {
  const c = ctx.cfg.config;
  const summary: Record<string, unknown> = {};
  const gen = await readInstanceEmbeddings(join(ctx.runDir, 'embed', 'generated.npy'));
  if (c.embed.model === 'clip' && gen.m.rows > 0) {
    const model = await ClipModel.open(ctx.cfg.paths.clip as string, { provider: c.embed.provider, batchSize: c.embed.batch, require: 'text' });
    try {
      const negatives = c.score.alia_negatives ?? ALIA_NEGATIVES;
      const r = await aliaSemantic(model, gen.m, c.score.alia_positive as string, negatives);
      gen.rows.forEach((row, i) => {
        const t = table.get(row.file);
        if (t) Object.assign(t, { alia_pos_prob: round6(r.positiveProb[i]!), alia_winner: r.winner[i]! });
      });
      summary.semantic = { positive: c.score.alia_positive, negatives, negative_wins: Array.from(r.winner).filter((w) => w > 0).length };
    } finally {
      await model.close();
    }
  }
  if (!ctx.cfg.paths.classifier) ctx.log('alia: no score.classifier, so only the semantic filter runs (the confidence filter needs a classifier of the real data)');
  if (ctx.cfg.paths.classifier) {
    const K = classes.length;
    const clf = await ImageClassifier.open(ctx.cfg.paths.classifier, { provider: c.embed.provider });
    const coco = await readCoco(ctx.cfg.paths.realCoco, { polygons: 'packed' });
    const real: Array<Picture & { label: string }> = [];
    for (const a of coco.dataset.annotations) {
      const label = coco.categoryById.get(a.category_id)?.name;
      const im = coco.imageById.get(a.image_id);
      if (a.iscrowd || !label || !classes.includes(label) || !im || !a.bbox) continue;
      real.push({ path: await checkWithin(ctx.cfg.paths.realImages, im.file_name, `${ctx.cfg.paths.realCoco}: image ${im.id}`), box: a.bbox as [number, number, number, number], label });
    }
    const realProbs = await predictAll(clf, real, c.embed.batch, K);
    const good = real.map((_, i) => i).filter((i) => typeof realProbs[i] !== 'string');
    if (good.length < real.length) ctx.log(`alia confidence: ${real.length - good.length} real instances could not be read and are not in the thresholds`);
    const probs = new Float32Array(good.length * K);
    good.forEach((i, k) => probs.set(realProbs[i] as Float32Array, k * K));
    const thr = confidentThresholds(probs, Int32Array.from(good, (i) => classes.indexOf(real[i]!.label)), K);
    const ids = [...table.keys()].filter((id) => classes.includes(String(table.get(id)?.category)));
    const genProbs = await predictAll(clf, ids.map((id) => ({ path: join(ctx.runDir, 'generate', 'images', id) })), c.embed.batch, K);
    ids.forEach((id, i) => {
      const row = table.get(id)!;
      const label = String(row.category);
      const p = genProbs[i]!;
      if (typeof p === 'string') {
        Object.assign(row, { alia_max_prob: null, alia_pred: null, alia_threshold: null, alia_label: label, alia_error: p });
        return;
      }
      const s = confidenceScores(p, Int32Array.of(classes.indexOf(label)), K, thr);
      Object.assign(row, { alia_max_prob: round6(s.maxProb[0]!), alia_pred: classes[s.pred[0]!]!, alia_threshold: Number.isNaN(s.threshold[0]!) ? null : round6(s.threshold[0]!), alia_label: label });
    });
    summary.confidence = { real_instances: good.length, thresholds: Object.fromEntries(classes.map((k, i) => [k, Number.isNaN(thr[i]!) ? null : round6(thr[i]!)])) };
  }
  return summary;
}

/**
 * "Diversify, Don't Fine-Tune"'s label-ambiguity resolution before the llm strategy's prompts: the ambiguity
 * strategy into plan/meanings.jsonl (its resolutions in plan/meanings.jsonl.meanings.json, each class's candidate
 * meanings with their CLIP scores against real images of the class). Returns the meanings file.
 */
export async function resolveMeanings(
  ctx: StageContext,
  a: { coco: CocoIndex; classes: string[]; llm?: EndpointOptions; embedder?: ImageTextEmbedder },
): Promise<string> {
  const c = ctx.cfg.config;
  const out = join(ctx.dir, 'meanings.jsonl');
  const r = await plan({
    coco: a.coco,
    out,
    strategy: 'ambiguity',
    classes: a.classes,
    seed: c.seed,
    candidates: 1,
    width: c.plan.width,
    height: c.plan.height,
    imageRoot: ctx.cfg.paths.realImages,
    cache: join(ctx.dir, 'answers.jsonl'),
    ...(a.llm ? { llm: a.llm } : {}),
    ...(a.embedder ? { embedder: a.embedder } : {}),
    onNote: ctx.log,
  });
  const file = `${out}.meanings.json`;
  const doc = JSON.parse(await readFile(file, 'utf8')) as { meanings: Array<{ class: string; meaning: string | null; method: string }> };
  ctx.log(`meanings: ${doc.meanings.map((m) => `${m.class}: ${m.meaning ?? '(none)'} [${m.method}]`).join('; ')}${r.failures ? ` (${r.failures} failures)` : ''}`);
  return file;
}
