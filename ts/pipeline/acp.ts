/**
 * Auto Cherry-Picker (ACP, spec ALGORITHMS.md §1) inside `genaug run` (`output: scenes`): the stages that differ
 * from an instance run.
 *
 * - annotate: every generated scene's layout objects as COCO annotations over the generated image (the layout box
 *   scaled to the image, the category matched by name to the real data's), so that embed embeds each object's box
 *   crop and the report counts objects. These are boxes: the masks of the kept scenes are made by the dataset stage
 *   (SAM prompted with each box when annotate.method is sam, else the box polygon; augment/scenes.ts), so SAM runs
 *   on the scenes best-of-N keeps, not on all N candidates.
 * - score: per generated image (keyed by its file) CLIS-I, ACP's image score, and CLIS-L of its plan job's layout
 *   against a relation pool built from the real data's boxes (kept as a score; ACP's filter does not use it).
 *   CLIS-I (score.clis_i) is
 *   - judge: the paper's (clisImageJudge): the vlm describes the whole image, each box region and each crop, the llm
 *     (else the vlm) grades each description 0-5 against the plan's caption and object attributes; −1 when a grade
 *     stays unparseable;
 *   - clip: the CLIP proxy (clisImageClip) with embed.clip;
 *   - features: a weight-free proxy: 100 × the mean over the layout's objects of the object's margin, its box crop's
 *     mean cosine to the real crops of its class minus the highest mean cosine to another class's (the embed stage's
 *     rows; an object without a row or whose class has no real crop counts 0). A box holding its class scores above
 *     0, a blank or empty box near 0, a box holding another class below 0.
 *   The `acp` filter rule then keeps the argmax CLIS-I per plan job (scene graph); the −1 sentinel rejects.
 */
import { join } from 'node:path';

import { readCoco, type CocoCategory } from '../io/coco.js';
import { imageInfo, readImage } from '../io/images.js';
import { checkWithin, manifestImage } from '../io/roots.js';
import { writeFileAtomic } from '../io/atomic.js';
import { buildRelationPool, clisLayout, layoutNames } from '../kernels/layout.js';
import { ChatClient } from '../llm/chat.js';
import { ClipModel } from '../models/clip.js';
import { GenaugError } from '../native/errors.js';
import { categoryMatcher } from '../augment/pool.js';
import { examplesFromCoco, nameSimilarityFromFunction } from '../curate/relations.js';
import { classMean } from '../kernels/similarity.js';
import { clisImageClip, clisImageJudge, GRADE_RESPONSE_FORMAT, planToScene, readInstanceEmbeddings, type ClisImageInput, type ClisImageResult } from '../curate/score.js';
import { contentHash, mergeScores, openSampleJournal, round6, type SampleJournal, type ScoreColumns } from '../curate/table.js';
import type { PlanJob } from '../plan/job.js';
import { readJsonObjects, readJsonl, writeJsonl } from '../util/jsonl.js';
import type { RunConfig } from './config.js';
import type { GenLine, StageContext, StageResult } from './stage-types.js';

/** The CLIS-I mode of a run: score.clis_i, else judge with a vlm, clip with a CLIP model, features otherwise. */
export function clisImageMode(c: RunConfig): 'judge' | 'clip' | 'features' {
  return c.score.clis_i ?? (c.vlm ? 'judge' : c.embed.model === 'clip' ? 'clip' : 'features');
}

/** A layout box (normalised xywh) in pixels of a W x H image, clamped to it, to 2 decimals. */
export function layoutBoxPixels(box: readonly number[], W: number, H: number): [number, number, number, number] {
  const [x, y, w, h] = box as [number, number, number, number];
  const bx = Math.max(0, x * W);
  const by = Math.max(0, y * H);
  const bw = Math.min(W, (x + w) * W) - bx;
  const bh = Math.min(H, (y + h) * H) - by;
  const r = (v: number) => Math.round(v * 100) / 100;
  return [r(bx), r(by), r(bw), r(bh)];
}

interface SceneItem {
  gen: GenLine;
  job: PlanJob;
  path: string;
}

/** The generated scenes of the run (ok lines of generate/generated.jsonl) with their plan job and image path. */
async function scenes(runDir: string): Promise<{ items: SceneItem[]; jobs: Map<string, PlanJob> }> {
  const jobs = new Map((await readJsonl<PlanJob>(join(runDir, 'plan', 'plan.jsonl'))).map((j) => [j.id, j]));
  const manifest = join(runDir, 'generate', 'manifest.jsonl');
  const paths = new Map<string, string>();
  for (const { line, value } of await readJsonObjects(manifest, 'the manifest')) {
    const { root, name } = manifestImage(value, manifest);
    if (typeof value.file === 'string' && name) paths.set(value.file, await checkWithin(root, name, `${manifest}:${line}: image`));
  }
  const items: SceneItem[] = [];
  for (const g of await readJsonl<GenLine>(join(runDir, 'generate', 'generated.jsonl'))) {
    const job = jobs.get(g.job);
    const path = paths.get(g.file);
    if (g.status === 'ok' && job && path) items.push({ gen: g, job, path });
  }
  return { items, jobs };
}

// --- annotate ---------------------------------------------------------------------

/** annotate/annotations.json: one box annotation per layout object of every generated scene; rejected.jsonl: scenes without a layout. */
export async function annotateScenes(ctx: StageContext): Promise<StageResult> {
  const { items } = await scenes(ctx.runDir);
  const real = await readCoco(ctx.cfg.paths.realCoco, { polygons: 'packed' });
  const categories: CocoCategory[] = [...real.categoryById.values()].sort((a, b) => a.id - b.id);
  const match = categoryMatcher(categories);
  const images: Array<Record<string, unknown>> = [];
  const annotations: Array<Record<string, unknown>> = [];
  const rejected: Array<{ file: string; status: 'rejected'; reason: string }> = [];
  const unknown: Record<string, number> = {};
  const seen = new Set<string>();
  for (const [i, it] of items.entries()) {
    ctx.progress(i, items.length);
    if (seen.has(it.gen.file)) continue;
    seen.add(it.gen.file);
    const layout = it.job.layout ?? [];
    if (layout.length === 0) {
      rejected.push({ file: it.gen.file, status: 'rejected', reason: `no layout: job ${it.job.id} is not a scene plan (plan.strategy scene)` });
      continue;
    }
    const info = await imageInfo(it.path);
    const imageId = images.length + 1;
    images.push({ id: imageId, file_name: it.gen.file, width: info.width, height: info.height, job: it.job.id });
    for (const [k, o] of layout.entries()) {
      const cat = match(o.name);
      if (!cat) {
        unknown[o.name] = (unknown[o.name] ?? 0) + 1;
        continue;
      }
      const [x, y, w, h] = layoutBoxPixels(o.box, info.width, info.height);
      annotations.push({ id: annotations.length + 1, image_id: imageId, category_id: cat.id, bbox: [x, y, w, h], area: Math.round(w * h * 100) / 100, iscrowd: 0, segmentation: [[x, y, x + w, y, x + w, y + h, x, y + h]], layout_index: k, mask_source: 'box' });
    }
  }
  ctx.progress(items.length, items.length);
  const coco = { info: { description: 'generated scenes: one box per layout object (genaug run, output scenes)', version: '1' }, images, annotations, categories };
  await writeFileAtomic(join(ctx.dir, 'annotations.json'), new TextEncoder().encode(JSON.stringify(coco) + '\n'));
  await writeJsonl(join(ctx.dir, 'rejected.jsonl'), rejected);
  if (Object.keys(unknown).length) ctx.log(`layout objects of no real category left out: ${Object.entries(unknown).map(([n, k]) => `${n} ${k}`).join(', ')}`);
  return { summary: { scenes: images.length, objects: annotations.length, rejected: rejected.length, unknown_objects: unknown } };
}

// --- score ------------------------------------------------------------------------

function clisInput(job: PlanJob, image: ClisImageInput['image']): ClisImageInput {
  return {
    image,
    caption: job.prompt,
    objects: (job.layout ?? []).map((b) => ({ name: b.name, box: b.box, text: b.attributes?.length ? `${b.name}: ${b.attributes.join(', ')}` : b.name })),
  };
}

type Scored = ClisImageResult | { error: string };

/** The journal of finished CLIS-I scores (judge and clip modes): a killed score stage resumes without asking again. */
async function scoreJournal(ctx: StageContext, mode: string): Promise<SampleJournal<ClisImageResult>> {
  const c = ctx.cfg.config;
  const settings = {
    mode,
    inputs: await contentHash(join(ctx.runDir, 'plan', 'plan.jsonl'), join(ctx.runDir, 'generate', 'generated.jsonl')),
    ...(mode === 'judge' ? { vlm: c.vlm?.model, llm: (c.llm ?? c.vlm)?.model, retries: c.generate.retries } : { clip: ctx.cfg.paths.clip }),
  };
  return openSampleJournal<ClisImageResult>(join(ctx.dir, 'clis-i.progress.jsonl'), settings);
}

/** CLIS-I of every scene by the judge (vlm + llm), `concurrency` scenes at once; results by item index. */
async function judgeAll(ctx: StageContext, items: SceneItem[], journal: SampleJournal<ClisImageResult>): Promise<Scored[]> {
  const c = ctx.cfg.config;
  const key = (e: { api_key_env?: string | undefined } | undefined) => (e?.api_key_env ? process.env[e.api_key_env] : undefined);
  const vlmCfg = c.vlm!;
  const llmCfg = c.llm ?? c.vlm!;
  const retries = c.generate.retries;
  const vlm = new ChatClient({ baseUrl: vlmCfg.url, model: vlmCfg.model, retries, ...(key(vlmCfg) ? { apiKey: key(vlmCfg)! } : {}) });
  const llm = new ChatClient({ baseUrl: llmCfg.url, model: llmCfg.model, retries, extraBody: { response_format: GRADE_RESPONSE_FORMAT }, ...(key(llmCfg) ? { apiKey: key(llmCfg)! } : {}) });
  const out = new Array<Scored>(items.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) {
      if (ctx.signal?.aborted) throw new GenaugError('E_ABORTED', 'score was stopped; run again to score the scenes again');
      const it = items[i]!;
      const before = journal.done.get(it.gen.file);
      try {
        if (before) out[i] = before;
        else {
          const img = await readImage(it.path);
          const r = await clisImageJudge(vlm, llm, clisInput(it.job, img), { retries, ...(ctx.signal ? { signal: ctx.signal } : {}) });
          await journal.append(it.gen.file, r);
          out[i] = r;
        }
      } catch (e) {
        // A server that is down or answers HTTP errors fails the item (recorded), it does not score it −1.
        if (!(e instanceof GenaugError) || (e.code !== 'E_BACKEND' && e.code !== 'E_FORMAT' && e.code !== 'E_IO')) throw e;
        out[i] = { error: `[${e.code}] ${e.message}` };
      }
      ctx.progress(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.score.judge_concurrency, Math.max(1, items.length)) }, lane));
  return out;
}

/** The features proxy: per scene, 100 × the mean over its layout objects of their own-class margin (see the file header). */
async function featuresAll(ctx: StageContext, items: SceneItem[]): Promise<Scored[]> {
  const e = join(ctx.runDir, 'embed');
  const gen = await readInstanceEmbeddings(join(e, 'generated.npy'));
  const real = await readInstanceEmbeddings(join(e, 'real.npy'));
  // Per object: its mean cosine to its own class's real crops minus the highest mean cosine to another class's, so a
  // crop that looks like nothing in particular (a blank or empty box) scores near 0 and a wrong class below it.
  const realLabels = Int32Array.from(real.rows, (r) => r.label);
  const C = Math.max(0, ...gen.rows.map((r) => r.label), ...realLabels) + 1;
  const sim = new Float32Array(gen.m.rows).fill(Number.NaN);
  if (gen.m.rows && real.m.rows) {
    const byClass = await classMean(gen.m, real.m, realLabels, { numClasses: C });
    gen.rows.forEach((r, i) => {
      const own = byClass.values[i * C + r.label] as number;
      let other = -Infinity;
      for (let q = 0; q < C; q++) if (q !== r.label && Number.isFinite(byClass.values[i * C + q] as number)) other = Math.max(other, byClass.values[i * C + q] as number);
      if (Number.isFinite(own)) sim[i] = Number.isFinite(other) ? own - other : own;
    });
  }
  // The rows of one image, by their box (rows follow annotate's annotations, whose boxes are the layout's).
  const byImage = new Map<string, Array<{ bbox: number[]; sim: number }>>();
  gen.rows.forEach((r, i) => {
    let l = byImage.get(r.file);
    if (!l) byImage.set(r.file, (l = []));
    l.push({ bbox: r.bbox, sim: sim[i] as number });
  });
  const out: Scored[] = [];
  for (const it of items) {
    const rows = byImage.get(it.gen.file) ?? [];
    const info = await imageInfo(it.path);
    const notes: string[] = [];
    const objects = (it.job.layout ?? []).map((b, k) => {
      const want = layoutBoxPixels(b.box, info.width, info.height);
      const row = rows.find((r) => r.bbox.every((v, q) => Math.abs(v - (want[q] as number)) <= 1));
      if (!row || !Number.isFinite(row.sim)) {
        notes.push(`object ${k} (${b.name}): no embedding or no real crop of its class, scored 0`);
        return 0;
      }
      return 100 * row.sim;
    });
    const score = objects.length ? objects.reduce((a, b) => a + b, 0) / objects.length : 0;
    out.push({ score, global: score, objects, notes });
  }
  ctx.progress(items.length, items.length);
  return out;
}

/** The CLIP proxy (clisImageClip) of every scene. */
async function clipAll(ctx: StageContext, items: SceneItem[], journal: SampleJournal<ClisImageResult>): Promise<Scored[]> {
  const c = ctx.cfg.config;
  const model = await ClipModel.open(ctx.cfg.paths.clip as string, { provider: c.embed.provider, batchSize: c.embed.batch, require: 'both' });
  const out: Scored[] = [];
  try {
    for (const [i, it] of items.entries()) {
      if (ctx.signal?.aborted) throw new GenaugError('E_ABORTED', 'score was stopped; run again to score the scenes again');
      const before = journal.done.get(it.gen.file);
      const r = before ?? (await clisImageClip(model, clisInput(it.job, await readImage(it.path))));
      if (!before) await journal.append(it.gen.file, r);
      out.push(r);
      ctx.progress(i + 1, items.length);
    }
  } finally {
    await model.close();
  }
  return out;
}

/** CLIS-L of each plan job's layout against the real data's relation pool (exact names), by job id. */
async function layoutScores(ctx: StageContext, jobs: PlanJob[]): Promise<Map<string, { clis_l: number; clis_l_conf: number; clis_l_status: string }>> {
  const real = await readCoco(ctx.cfg.paths.realCoco, { polygons: 'packed' });
  const pool = buildRelationPool(examplesFromCoco(real, { seed: ctx.cfg.config.seed }).examples);
  const layouts = jobs.map((j) => planToScene(j as never));
  const out = new Map<string, { clis_l: number; clis_l_conf: number; clis_l_status: string }>();
  if (jobs.length === 0) return out;
  const sim = nameSimilarityFromFunction(layoutNames(layouts), pool.names, () => 0);
  const r = await clisLayout(layouts, pool, sim, { tau: ctx.cfg.config.score.clis_l_tau });
  jobs.forEach((j, i) => out.set(j.id, { clis_l: round6(r.score[i]!), clis_l_conf: round6(r.confidence[i]!), clis_l_status: r.status[i]! }));
  return out;
}

/** score/scores.jsonl of a scene run: CLIS-I and CLIS-L per generated image, keyed by its file. */
export async function scoreScenes(ctx: StageContext): Promise<StageResult> {
  const c = ctx.cfg.config;
  const mode = clisImageMode(c);
  const rejected = new Set((await readJsonl<{ file: string }>(join(ctx.runDir, 'annotate', 'rejected.jsonl'))).map((r) => r.file));
  const all = (await scenes(ctx.runDir)).items;
  // One row per image file (the same bytes twice are one image), scenes without a layout left to the ledger's annotate reason.
  const seen = new Set<string>();
  const items = all.filter((it) => !rejected.has(it.gen.file) && !seen.has(it.gen.file) && (seen.add(it.gen.file), true));
  const usedJobs = [...new Map(items.map((it) => [it.job.id, it.job])).values()];
  const layout = await layoutScores(ctx, usedJobs);
  const results = mode === 'features' ? await featuresAll(ctx, items) : mode === 'judge' ? await judgeAll(ctx, items, await scoreJournal(ctx, mode)) : await clipAll(ctx, items, await scoreJournal(ctx, mode));
  const table = new Map<string, ScoreColumns>();
  let failed = 0;
  let sentinel = 0;
  items.forEach((it, i) => {
    const r: Scored = results[i]!;
    const base = { category: it.gen.category, job: it.job.id, objects: it.job.layout?.length ?? 0, clis_i_mode: mode, ...layout.get(it.job.id) };
    if ('error' in r) {
      failed++;
      table.set(it.gen.file, { ...base, clis_i: null, clis_i_global: null, clis_i_error: r.error });
      return;
    }
    if (r.score === -1 && mode === 'judge') sentinel++;
    // −1 is the judge's sentinel (an unparseable grade) only: a proxy score that rounds to −1 is moved off it.
    const rounded = mode === 'judge' && r.score === -1 ? -1 : round6(r.score);
    table.set(it.gen.file, {
      ...base,
      clis_i: mode !== 'judge' && rounded === -1 ? -1.000001 : rounded,
      clis_i_global: round6(r.global),
      clis_i_objects: r.objects.map((v) => round6(v)).join(' '),
      ...(r.notes.length ? { clis_i_notes: r.notes.join('; ') } : {}),
    });
  });
  await mergeScores(join(ctx.dir, 'scores.jsonl'), table);
  if (items.length > 0 && failed === items.length) throw new GenaugError('E_BACKEND', `score: CLIS-I failed for all ${failed} scenes (first: ${(results[0] as { error: string }).error}); is the vlm/llm server up?`);
  ctx.log(`CLIS-I (${mode}) of ${items.length} scenes of ${usedJobs.length} scene graphs; ${sentinel} unparseable (−1), ${failed} failed`);
  return { summary: { scored: items.length, clis_i: mode, unparseable: sentinel, failed, scene_graphs: usedJobs.length } };
}
