/**
 * report.html: one self-contained page (inline CSS, JS and SVG; images as
 * data: URLs of small thumbnails; nothing fetched) showing what a run did:
 * the funnel of samples per class through the stages, score histograms with
 * the thresholds, kept and rejected samples with each rejection's reason,
 * near-duplicate groups, the domain gap and diversity per class, pasted
 * training images with their masks outlined, and the time of every stage.
 * The numbers shown are also written to report.json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';

import { writeFileAtomic } from '../io/atomic.js';
import { readCoco } from '../io/coco.js';
import { readImage } from '../io/images.js';
import { indexShards, readShardMember, type ShardMember } from '../io/webdataset.js';
import { decodeRleSync, type Rle } from '../kernels/mask.js';
import type { PasteJournalLine } from '../augment/paste.js';
import { categoryMatcher } from '../augment/pool.js';
import { ownSimilarity, type LedgerEntry as Decision } from '../curate/filters.js';
import { GAP_DIM, instanceGap } from '../curate/gap.js';
import { readInstanceEmbeddings } from '../curate/score.js';
import { readJson, readJsonl, writeJson } from '../util/jsonl.js';
import { colour, esc, groupedBars, histogram } from './svg.js';

async function thumb(path: string, size: number): Promise<string> {
  const im = await readImage(path, { channels: 3 });
  const buf = await sharp(im.data, { raw: { width: im.width, height: im.height, channels: 3 } }).resize(size, size, { fit: 'contain', background: { r: 255, g: 255, b: 255 } }).jpeg({ quality: 70 }).toBuffer();
  return `data:image/jpeg;base64,${buf.toString('base64')}`;
}

interface PasteCoco {
  images: Array<{ id: number; file_name: string; width: number; height: number }>;
  annotations: Array<{ image_id: number; category_id: number; segmentation?: Rle; instance_source: string }>;
  categories: Array<{ id: number; name: string }>;
}

/**
 * The pasted images and their annotations from whichever export the run wrote:
 * the COCO file when there is one, else the paste journal (progress.jsonl) of
 * the first format, which every format keeps and which holds the same instances.
 */
type ImageSource = (file: string) => Promise<string | Buffer>;

/** The shard members of an export folder (a WebDataset export keeps its images only there). */
const shardMembers = async (dir: string) => (existsSync(join(dir, 'shards')) ? indexShards(join(dir, 'shards')) : new Map<string, ShardMember>());

/** A pasted image by file name: DIR/images/FILE, else its member in the shards. */
function pastedImages(dir: string, members: Map<string, ShardMember>): ImageSource {
  return async (file) => {
    const member = members.get(file);
    if (member && !existsSync(join(dir, 'images', file))) return Buffer.from(await readShardMember(member));
    return join(dir, 'images', file);
  };
}

async function readPasted(R: string, formats: readonly string[], realCoco: string): Promise<{ doc: PasteCoco; image: ImageSource }> {
  const cocoPath = join(R, 'paste', 'coco', 'annotations.json');
  if (existsSync(cocoPath)) return { doc: await readJson<PasteCoco>(cocoPath), image: pastedImages(join(R, 'paste', 'coco'), new Map()) };
  for (const format of formats) {
    const dir = join(R, 'paste', format);
    const journal = join(dir, 'progress.jsonl');
    if (!existsSync(journal)) continue;
    // The last line of an item wins (a retried item is journalled again).
    const last = new Map<string, PasteJournalLine>();
    for (const l of await readJsonl<PasteJournalLine>(journal)) last.set(`${l.image_index}:${l.copy}`, l);
    const ok = [...last.values()].filter((l) => l.status === 'ok').sort((a, b) => a.image_index - b.image_index || a.copy - b.copy);
    // The streaming reader, packed: the real file may be LVIS-sized (over what JSON.parse of one string can read).
    const { categories } = (await readCoco(realCoco, { polygons: 'packed' })).dataset;
    const doc: PasteCoco = { images: [], annotations: [], categories: categories.map((k) => ({ id: k.id, name: k.name })) };
    const members = await shardMembers(dir);
    const image = pastedImages(dir, members);
    ok.forEach((l, i) => {
      const file = ['jpg', 'png'].map((e) => `${l.key}.${e}`).find((f) => members.has(f) || existsSync(join(dir, 'images', f))) ?? `${l.key}.jpg`;
      doc.images.push({ id: i + 1, file_name: file, width: l.width as number, height: l.height as number });
      for (const inst of l.instances ?? []) {
        const seg = inst.counts !== undefined && !(inst.source === 'real' && (l.box_only || inst.box_only));
        doc.annotations.push({ image_id: i + 1, category_id: inst.category_id, instance_source: inst.source, ...(seg ? { segmentation: { size: [l.height as number, l.width as number], counts: inst.counts as string } } : {}) });
      }
    });
    return { doc, image };
  }
  return { doc: { images: [], annotations: [], categories: [] }, image: async (file) => file };
}

/**
 * The outline of a mask, `thickness` pixels wide, inside it: the mask pixels
 * within thickness - 1 pixels (Chebyshev) of a pixel outside it or of the
 * image border. 1 marks an outline pixel.
 */
export function maskOutline(mask: Uint8Array, W: number, H: number, thickness: number): Uint8Array {
  const out = new Uint8Array(W * H);
  const r = Math.max(1, Math.round(thickness)) - 1;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const q = y * W + x;
      if (!mask[q]) continue;
      const edge = x === 0 || y === 0 || x === W - 1 || y === H - 1 || !mask[q - 1] || !mask[q + 1] || !mask[q - W] || !mask[q + W];
      if (!edge) continue;
      // Grow each 1-pixel edge pixel into the mask by r pixels.
      for (let yy = Math.max(0, y - r); yy <= Math.min(H - 1, y + r); yy++)
        for (let xx = Math.max(0, x - r); xx <= Math.min(W - 1, x + r); xx++) if (mask[yy * W + xx]) out[yy * W + xx] = 1;
    }
  return out;
}

/**
 * A pasted image with the outline of every mask drawn (pasted: solid colour,
 * real: white), about 2.5 pixels wide once the image is shrunk to `width`
 * (a 1-pixel outline at full size all but vanishes in a thumbnail), with a
 * dark line just inside it so that it shows on light and dark backgrounds.
 */
async function outlined(path: string | Buffer, anns: PasteCoco['annotations'], width: number): Promise<string> {
  const { data, width: W, height: H } = await readImage(path, { channels: 3 });
  const scale = Math.max(1, W / width);
  const thick = Math.max(2, Math.round(2.5 * scale));
  anns.forEach((a, i) => {
    if (!a.segmentation) return;
    const m = decodeRleSync(a.segmentation).data;
    const rgb = a.instance_source === 'pasted' ? hex(colour(i)) : [255, 255, 255];
    const outer = maskOutline(m, W, H, thick);
    const inner = maskOutline(m, W, H, thick + Math.max(1, Math.round(scale)));
    for (let q = 0; q < W * H; q++) {
      if (outer[q]) for (let k = 0; k < 3; k++) data[3 * q + k] = rgb[k] as number;
      else if (inner[q]) for (let k = 0; k < 3; k++) data[3 * q + k] = 32;
    }
  });
  const buf = await sharp(data, { raw: { width: W, height: H, channels: 3 } }).resize({ width }).jpeg({ quality: 80 }).toBuffer();
  return `data:image/jpeg;base64,${buf.toString('base64')}`;
}

/** A scored ledger entry's own-class similarity, and any numeric column (NaN when missing). */
const own = (d: Decision) => ownSimilarity(d.score) ?? Number.NaN;
const col = (d: Decision, name: string) => (typeof d.score?.[name] === 'number' ? (d.score[name] as number) : Number.NaN);

const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.8;font-size:13px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;z-index:2}nav a{margin-right:14px;font-size:13px;color:#1565c0;text-decoration:none}
section{padding:10px 24px 18px;border-bottom:1px solid #eee}h2{font-size:17px;margin:10px 0}
table{border-collapse:collapse;font-size:12px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{background:#fff;border:1px solid #e5e5e5}
.grid{display:flex;flex-wrap:wrap;gap:6px}.cell{width:var(--t);font-size:10px;background:#fff;border:1px solid #ddd;padding:2px}.cell img{width:100%;display:block}
.cell.rejected{border-color:#e57373}.cell.kept{border-color:#81c784}.cell .why{color:#b71c1c;word-break:break-word}
.group{display:inline-flex;gap:4px;align-items:flex-start;background:#fff;border:1px solid #ddd;padding:4px;margin:4px 6px 4px 0}
.pasted{display:flex;flex-wrap:wrap;gap:10px}.pasted figure{margin:0;font-size:11px}.pasted img{display:block;border:1px solid #ccc}
.controls{font-size:12px;margin:4px 0}pre{font-size:11px;background:#fff;border:1px solid #ddd;padding:6px;overflow:auto;max-height:400px}.muted{color:#777;font-size:12px}
`;

const JS = `
(function(){
  var data = JSON.parse(document.getElementById('report-data').textContent);
  document.querySelectorAll('select[data-grid]').forEach(function(sel){
    sel.addEventListener('change', function(){
      var grid = document.getElementById(sel.getAttribute('data-grid'));
      grid.querySelectorAll('.cell').forEach(function(c){ c.style.display = (!sel.value || c.getAttribute('data-class') === sel.value) ? '' : 'none'; });
    });
  });
  var total = document.getElementById('total-kept');
  if (total) total.textContent = String(data.totals.kept);
  document.body.setAttribute('data-ready', String(document.querySelectorAll('svg.chart').length));
})();
`;

/**
 * X-Paste's per-class bars min(min_clip, best_c - tolerance) (curate/filters.ts): min_clip, plus the bar of each
 * class whose best score puts it lower (each named when there are a few, else the lowest).
 */
function xpasteBars(scored: Decision[], minClip: number, tol: number): Array<{ value: number; label: string }> {
  const best = new Map<string, number>();
  for (const d of scored) {
    const v = d.score?.clip_score;
    if (typeof v === 'number' && Number.isFinite(v)) best.set(d.category, Math.max(best.get(d.category) ?? -Infinity, v));
  }
  const lower = [...best].map(([k, b]) => ({ k, bar: b - tol })).filter((x) => x.bar < minClip).sort((a, b) => a.bar - b.bar || a.k.localeCompare(b.k));
  const out = [{ value: minClip, label: `min_clip ${minClip}` }];
  if (lower.length > 0 && lower.length <= 4) for (const x of lower) out.push({ value: x.bar, label: `${x.k} ${x.bar.toFixed(1)}` });
  else if (lower.length > 4) out.push({ value: lower[0]!.bar, label: `lowest class bar ${lower[0]!.bar.toFixed(1)} (${lower.length} classes below min_clip)` });
  return out;
}

/**
 * Per class, what the dataset stage wrote: images of the classification set (its run.json summary's per_class), or
 * objects (annotations) of the scene dataset's COCO file.
 */
async function datasetCounts(R: string, output: string): Promise<Record<string, number>> {
  if (output === 'classification') {
    const m = await readJson<{ stages?: { dataset?: { summary?: { per_class?: Record<string, number> } } } }>(join(R, 'run.json'));
    return { ...(m.stages?.dataset?.summary?.per_class ?? {}) };
  }
  const path = join(R, 'dataset', 'coco', 'annotations.json');
  if (!existsSync(path)) return {};
  const doc = await readJson<PasteCoco>(path);
  const name = new Map(doc.categories.map((k) => [k.id, k.name]));
  const out: Record<string, number> = {};
  for (const a of doc.annotations) {
    const k = name.get(a.category_id) ?? String(a.category_id);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * The layout objects of a scene run: per generated file the class names of its plan job's layout, the objects
 * planned per class (candidates x objects of the class in the layout), and every class named, in plan order.
 */
async function objectsOfScenes(R: string, known: readonly string[]): Promise<{ perFile: Map<string, string[]>; planned: Record<string, number>; classes: string[] }> {
  // Layout names are display names ('dining table'): the class of the run they match, as the dataset stage matches them.
  const match = categoryMatcher(known.map((name, i) => ({ id: i + 1, name })));
  const jobs = new Map((await readJsonl<{ id: string; candidates: number; layout?: Array<{ name: string }> }>(join(R, 'plan', 'plan.jsonl'))).map((j) => [j.id, j]));
  const planned: Record<string, number> = {};
  const classes: string[] = [];
  for (const j of jobs.values()) {
    for (const o of j.layout ?? []) o.name = match(o.name)?.name ?? o.name;
    for (const o of j.layout ?? []) {
      planned[o.name] = (planned[o.name] ?? 0) + j.candidates;
      if (!classes.includes(o.name)) classes.push(o.name);
    }
  }
  const perFile = new Map<string, string[]>();
  for (const g of await readJsonl<{ file: string; job: string }>(join(R, 'generate', 'generated.jsonl'))) perFile.set(g.file, (jobs.get(g.job)?.layout ?? []).map((o) => o.name));
  return { perFile, planned, classes };
}

/** One entry of the run's pool index (pool/index.json). */
interface PoolEntry {
  file: string;
  source: string;
}

/** The parts of a run config the report reads. */
export interface ReportConfig {
  name: string;
  preset?: string | undefined;
  /** What the run ends in (default instances: the pasted pool). */
  output?: 'instances' | 'scenes' | 'classification';
  annotate: { min_area_fraction: number; max_area_fraction: number };
  score: { knn: number; inter: 'mean' | 'max' };
  filter: { rules: string[]; min_area_fraction?: number | undefined; max_area_fraction?: number | undefined; inter_similarity_min?: number | undefined; knn_agreement_min?: number | undefined; dedup_threshold?: number | undefined; min_clip: number; clip_tolerance: number };
  export: { formats: readonly string[] };
  report: { thumbnails: number; thumb_size: number };
}

export interface ReportInput {
  /** The run folder (plan/, generate/, embed/, filter/, pool/, paste/ in it). */
  runDir: string;
  /** Where report.html and report.json go. */
  out: string;
  /** The config as the run used it (shown in the report). */
  config: ReportConfig;
  /** The real COCO file. */
  realCoco: string;
  /** The run's classes, in label order. */
  classes: string[];
  /** The embedder's name (embed stage). */
  embedder: string;
  /** The stages before the report, in order, with their last timing. */
  timings: Array<{ stage: string; seconds: number | null; status: string; resumed: number }>;
}

/** Writes report.html and report.json of a finished run. */
export async function writeReport(input: ReportInput): Promise<{ summary: Record<string, unknown> }> {
  const c = input.config;
  const R = input.runDir;
  const T = c.report.thumb_size;
  const N = c.report.thumbnails;
  const decisions = await readJsonl<Decision>(join(R, 'filter', 'decisions.jsonl'));
  const plan = await readJsonl<{ classes: string[]; candidates: number }>(join(R, 'plan', 'plan.jsonl'));
  const realEmb = await readInstanceEmbeddings(join(R, 'embed', 'real.npy'));
  const genEmb = await readInstanceEmbeddings(join(R, 'embed', 'generated.npy'));
  // The run's classes, then any other class the plan generated (DiverGen's extra categories) in plan order.
  const classes = [...input.classes];
  for (const j of plan) if (j.classes[0] !== undefined && !classes.includes(j.classes[0])) classes.push(j.classes[0]);
  for (const d of decisions) if (typeof d.category === 'string' && !classes.includes(d.category)) classes.push(d.category);
  // Instance runs end in the pool pasted into the real images; scene and classification runs in RUN/dataset.
  const pasting = (c.output ?? 'instances') === 'instances';
  const output = c.output ?? 'instances';
  const pool = pasting ? await readJson<{ categories: Record<string, PoolEntry[]> }>(join(R, 'pool', 'index.json')) : { categories: {} as Record<string, PoolEntry[]> };
  const { doc: paste, image: pastedImage } = pasting ? await readPasted(R, c.export.formats, input.realCoco) : { doc: { images: [], annotations: [], categories: [] } as PasteCoco, image: async (): Promise<string | Buffer> => Buffer.alloc(0) };
  const catName = new Map(paste.categories.map((k) => [k.id, k.name]));
  const inDataset = pasting ? {} : await datasetCounts(R, output);

  // Funnel per class.
  // A classification run cuts no mask: its images go from generated to scored whole.
  const third = output === 'classification' ? 'scored' : 'annotated';
  const stagesOfFunnel = (pasting ? ['planned', 'generated', 'annotated', 'kept by filters', 'in pool', 'pasted'] : ['planned', 'generated', third, 'kept by filters', output === 'scenes' ? 'objects in the scenes' : 'in the dataset']) as readonly string[];
  const funnel: Record<string, Record<string, number>> = {};
  // A scene run counts layout objects (a scene of a disk and two squares is one disk and two squares at every stage),
  // not scenes by their first class, so that the funnel ends in the dataset's objects of each class.
  const sceneObjects = output === 'scenes' ? await objectsOfScenes(R, classes) : undefined;
  if (sceneObjects) for (const k of sceneObjects.classes) if (!classes.includes(k)) classes.push(k);
  for (const k of classes) {
    const d = decisions.filter((x) => x.category === k);
    if (sceneObjects) {
      const n = (list: Decision[]) => list.reduce((sum, x) => sum + (sceneObjects.perFile.get(x.file)?.filter((name) => name === k).length ?? 0), 0);
      funnel[k] = {
        planned: sceneObjects.planned[k] ?? 0,
        generated: n(decisions.filter((x) => x.stage !== 'generate')),
        annotated: n(decisions.filter((x) => x.stage === 'filter')),
        'kept by filters': n(decisions.filter((x) => x.status === 'kept')),
        [stagesOfFunnel[4] as string]: inDataset[k] ?? 0,
      };
      continue;
    }
    funnel[k] = {
      planned: plan.filter((j) => j.classes[0] === k).reduce((s, j) => s + j.candidates, 0),
      generated: d.filter((x) => !(x.stage === 'generate')).length,
      [third]: d.filter((x) => x.stage === 'filter').length,
      'kept by filters': d.filter((x) => x.status === 'kept').length,
      ...(pasting
        ? {
            'in pool': pool.categories[k]?.length ?? 0,
            pasted: paste.annotations.filter((a) => a.instance_source === 'pasted' && catName.get(a.category_id) === k).length,
          }
        : { [stagesOfFunnel[4] as string]: inDataset[k] ?? 0 }),
    };
  }
  const totals = {
    generated: decisions.filter((x) => x.stage !== 'generate').length,
    kept: decisions.filter((x) => x.status === 'kept').length,
    rejected: decisions.filter((x) => x.status === 'rejected').length,
    failed: decisions.filter((x) => x.status === 'failed').length,
    pool: Object.values(pool.categories).reduce((s, v) => s + v.length, 0),
    pastedImages: paste.images.length,
    pastedInstances: paste.annotations.filter((a) => a.instance_source === 'pasted').length,
  };
  const reasons: Record<string, number> = {};
  // Reasons grouped by kind: numbers and file names replaced, class names kept.
  // A reason's kind: the rule and reason without the numbers and files after them.
  const kind = (d: Decision) => `${d.stage}: ${(d.reason ?? 'no reason').replace(/ \(.*$/, '').replace(/-?\d+(\.\d+)?/g, 'N')}`;
  for (const d of decisions) if (d.status !== 'kept') reasons[kind(d)] = (reasons[kind(d)] ?? 0) + 1;
  // X-Paste's several segmenters: how often each one's mask was kept, and how those fared in the filter.
  const picks: Record<string, { picked: number; kept: number; score: number }> = {};
  for (const d of decisions) {
    if (!d.segmenters) continue;
    for (const cand of d.segmenters.candidates) picks[cand.model] ??= { picked: 0, kept: 0, score: 0 };
    const won = d.segmenters.candidates[d.segmenters.picked];
    const e = won ? picks[won.model] : undefined;
    if (!won || !e) continue;
    e.picked++;
    e.score += won.clipScore;
    if (d.status === 'kept') e.kept++;
  }
  const picksHtml = Object.keys(picks).length
    ? `<h2>Segmenter picks (X-Paste: per image, the mask whose cut-out on white CLIP scores best)</h2><table id="segmenter-table"><tr><th>segmenter</th><th>picked</th><th>kept by the filter</th><th>mean CLIP score (x100) when picked</th></tr>${Object.entries(picks)
        .map(([m, e]) => `<tr><td>${esc(m)}</td><td>${e.picked}</td><td>${e.kept}</td><td>${e.picked ? (e.score / e.picked).toFixed(2) : '–'}</td></tr>`)
        .join('')}</table>`
    : '';
  const truth: Record<string, Record<string, number>> = {};
  for (const d of decisions) if (d.truth) ((truth[d.truth] ??= { kept: 0, rejected: 0, failed: 0 }), (truth[d.truth]![d.status] = (truth[d.truth]![d.status] ?? 0) + 1));

  // Scores.
  const scored = decisions.filter((d) => d.score);
  const f = c.filter;
  const keptS = scored.filter((d) => d.status === 'kept');
  const rejS = scored.filter((d) => d.status !== 'kept');
  // DiverGen's rule uses 0.6 when no threshold is set.
  const interMin = f.inter_similarity_min ?? (f.rules.includes('divergen') ? 0.6 : undefined);
  const hists = [
    histogram({
      title: 'similarity to own class (real crops)',
      series: [
        { name: 'kept', values: keptS.map((d) => own(d)) },
        { name: 'rejected', values: rejS.map((d) => own(d)) },
      ],
      thresholds: interMin !== undefined ? [{ value: interMin, label: `min ${interMin}` }] : [],
    }),
    histogram({
      title: 'object area fraction',
      series: [
        { name: 'kept', values: keptS.map((d) => col(d, 'area_fraction')) },
        { name: 'rejected', values: rejS.map((d) => col(d, 'area_fraction')) },
      ],
      thresholds: [
        ...(f.min_area_fraction !== undefined ? [{ value: f.min_area_fraction, label: 'min' }] : [{ value: c.annotate.min_area_fraction, label: 'min' }]),
        ...(f.max_area_fraction !== undefined ? [{ value: f.max_area_fraction, label: 'max' }] : [{ value: c.annotate.max_area_fraction, label: 'max' }]),
      ],
      range: [0, 1],
    }),
    histogram({
      title: `nearest real crops of the same class (of ${(Number(scored[0]?.score?.knn_k) || c.score.knn)})`,
      series: [
        { name: 'kept', values: keptS.map((d) => col(d, 'knn_agree')) },
        { name: 'rejected', values: rejS.map((d) => col(d, 'knn_agree')) },
      ],
      thresholds: f.knn_agreement_min !== undefined ? [{ value: f.knn_agreement_min, label: `min ${f.knn_agreement_min}` }] : [],
      integer: true,
      range: [0, Number(scored[0]?.score?.knn_k) || c.score.knn],
    }),
  ];
  if (output === 'scenes') {
    // ACP's own scores instead of the instance ones: CLIS-I (what best-of-N picks by; the judge's −1 left out) and
    // CLIS-L of each scene's layout (kept as a score).
    const clis = (d: Decision) => (col(d, 'clis_i') === -1 && d.score?.clis_i_mode === 'judge' ? Number.NaN : col(d, 'clis_i'));
    hists.splice(
      0,
      hists.length,
      histogram({ title: `CLIS-I (${String(scored[0]?.score?.clis_i_mode ?? 'judge')}; best of N per scene graph)`, series: [{ name: 'kept', values: keptS.map(clis) }, { name: 'rejected', values: rejS.map(clis) }], thresholds: [] }),
      histogram({ title: 'CLIS-L of the layouts', series: [{ name: 'kept', values: keptS.map((d) => col(d, 'clis_l')) }, { name: 'rejected', values: rejS.map((d) => col(d, 'clis_l')) }], thresholds: [], range: [0, 1] }),
    );
  }
  if (scored.some((d) => d.score!.clip_score !== undefined)) {
    hists.push(
      histogram({
        title: 'X-Paste CLIP score (x100, on white)',
        series: [
          { name: 'kept', values: keptS.map((d) => col(d, 'clip_score')) },
          { name: 'rejected', values: rejS.map((d) => col(d, 'clip_score')) },
        ],
        thresholds: f.rules.includes('xpaste') ? xpasteBars(scored, f.min_clip, f.clip_tolerance) : [],
      }),
    );
  }
  // ALIA's two filters (classification runs): the confidence relative to the class's threshold (above 0 is dropped),
  // and the semantic filter's probability of the positive text.
  if (scored.some((d) => typeof d.score!.alia_max_prob === 'number' && typeof d.score!.alia_threshold === 'number')) {
    const margin = (d: Decision) => (typeof d.score!.alia_max_prob === 'number' && typeof d.score!.alia_threshold === 'number' ? d.score!.alia_max_prob - d.score!.alia_threshold : Number.NaN);
    hists.push(
      histogram({
        title: "ALIA confidence: top probability minus the class's threshold",
        series: [
          { name: 'kept', values: keptS.map(margin) },
          { name: 'rejected', values: rejS.map(margin) },
        ],
        thresholds: [{ value: 0, label: 'threshold' }],
      }),
    );
  }
  if (scored.some((d) => d.score!.alia_pos_prob !== undefined)) {
    hists.push(
      histogram({
        title: 'ALIA semantic: probability of the positive text',
        series: [
          { name: 'kept', values: keptS.map((d) => col(d, 'alia_pos_prob')) },
          { name: 'rejected', values: rejS.map((d) => col(d, 'alia_pos_prob')) },
        ],
        thresholds: [],
        range: [0, 1],
      }),
    );
  }

  // Grids.
  const img = (file: string) => join(R, 'generate', 'images', file);
  const cells = async (list: Decision[], cls: string) => {
    const out: string[] = [];
    for (const d of list.slice(0, N)) {
      const src = existsSync(img(d.file)) ? await thumb(img(d.file), T) : '';
      out.push(
        `<div class="cell ${cls}" data-class="${esc(d.category)}" title="${esc(d.file)}">${src ? `<img alt="${esc(d.file)}" src="${src}">` : '<div class="muted">no image</div>'}<div><b>${esc(d.category)}</b>${d.score ? ` · ${own(d).toFixed(2)}` : ''}</div>${d.reason ? `<div class="why">${esc(d.stage)}: ${esc(d.reason)}</div>` : ''}</div>`,
      );
    }
    return out.join('');
  };
  const kept = decisions.filter((d) => d.status === 'kept');
  // Grids take the classes in turn, so every class shows up among the first thumbnails.
  const roundRobin = (list: Decision[]) => {
    const per = classes.map((k) => list.filter((d) => d.category === k));
    const longest = per.reduce((m, l) => Math.max(m, l.length), 0);
    const out: Decision[] = [];
    for (let i = 0; i < longest; i++) for (const l of per) if (l[i]) out.push(l[i] as Decision);
    // A sample of no known class (it cannot happen with the classes gathered above) still shows, at the end.
    if (out.length < list.length) out.push(...list.filter((d) => !classes.includes(d.category as string)));
    return out;
  };
  const rejected = decisions.filter((d) => d.status !== 'kept');
  // Rejected: spread over the reasons so every kind shows up.
  const byStage = [...rejected].sort((a, b) => (a.reason ?? '').localeCompare(b.reason ?? '') || a.file.localeCompare(b.file));
  const options = ['<option value="">all classes</option>', ...classes.map((k) => `<option>${esc(k)}</option>`)].join('');

  // Near-duplicate groups.
  const groups = new Map<string, string[]>();
  for (const d of decisions) {
    const head = d.score?.dup_of;
    if (d.status === 'rejected' && d.reason?.startsWith('dedup:') && typeof head === 'string') groups.set(head, [...(groups.get(head) ?? []), d.file]);
  }
  const groupHtml: string[] = [];
  for (const [head, members] of [...groups].slice(0, 12)) {
    const ims = [];
    for (const f2 of [head, ...members]) ims.push(`<div class="cell" style="--t:${Math.round(T * 0.8)}px"><img alt="${esc(f2)}" src="${await thumb(img(f2), Math.round(T * 0.8))}"><div>${f2 === head ? 'kept' : 'dropped'}</div></div>`);
    groupHtml.push(`<div class="group">${ims.join('')}</div>`);
  }

  // Gap and diversity.
  const gap = await instanceGap(realEmb, genEmb, new Set(kept.map((d) => d.file)));
  const gapRows = classes.map((k, i) => {
    const b = gap.before?.perClass?.find((g) => g.class === i);
    const a = gap.after?.perClass?.find((g) => g.class === i);
    return { class: k, frechetBefore: b?.frechet ?? null, frechetAfter: a?.frechet ?? null, vendiReal: a?.vendiReal ?? b?.vendiReal ?? null, vendiBefore: b?.vendiSynthetic ?? null, vendiAfter: a?.vendiSynthetic ?? null, nnAfter: a?.syntheticToReal ?? null, coverageAfter: a?.realToSynthetic ?? null };
  });
  const num = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

  // Pasted examples.
  const pasteHtml: string[] = [];
  const withPasted = paste.images.filter((im) => paste.annotations.some((a) => a.image_id === im.id && a.instance_source === 'pasted'));
  for (const im of withPasted.slice(0, Math.min(8, N))) {
    const anns = paste.annotations.filter((a) => a.image_id === im.id);
    const src = await outlined(await pastedImage(im.file_name), anns, Math.min(360, im.width));
    const n = anns.filter((a) => a.instance_source === 'pasted').length;
    pasteHtml.push(`<figure><img alt="${esc(im.file_name)}" src="${src}"><figcaption>${esc(im.file_name)}: ${n} pasted (coloured), ${anns.length - n} real (white)</figcaption></figure>`);
  }

  // Timings.
  // The report's own time is not known while it is written: the stages before it.
  const timings = input.timings;

  const data = { name: c.name, preset: c.preset ?? null, classes, funnel, totals, reasons, truth, gap: gapRows, timings, thresholds: { inter_similarity_min: interMin ?? null, knn_agreement_min: f.knn_agreement_min ?? null, dedup_threshold: f.dedup_threshold ?? (f.rules.includes('dedup') ? 0.99 : null) }, nearDuplicateGroups: groups.size };
  const funnelChart = groupedBars({ id: 'funnel-chart', title: 'samples per class through the stages', categories: classes, series: stagesOfFunnel.map((s) => ({ name: s, values: classes.map((k) => funnel[k]![s] ?? 0) })), width: Math.max(720, classes.length * 120) });
  const gapChart = groupedBars({
    id: 'gap-chart',
    title: 'Fréchet distance to the real crops per class (lower is closer)',
    categories: classes,
    series: [
      { name: 'all generated', values: gapRows.map((g) => g.frechetBefore ?? 0) },
      { name: 'kept', values: gapRows.map((g) => g.frechetAfter ?? 0) },
    ],
  });
  const timingChart = groupedBars({ id: 'timing-chart', title: 'seconds per stage', categories: timings.map((t) => t.stage), series: [{ name: 'seconds (last run)', values: timings.map((t) => t.seconds ?? 0) }], height: 220 });

  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>genaug report: ${esc(c.name)}</title><style>${CSS}</style></head>
<body style="--t:${T}px">
<header><h1>genaug run “${esc(c.name)}”${c.preset ? ` · preset ${esc(c.preset)}` : ''}</h1><p>${totals.generated} images generated, <span id="total-kept">${totals.kept}</span> kept, ${totals.rejected} rejected, ${totals.failed} failed · ${pasting ? `pool ${totals.pool} instances · ${totals.pastedImages} training images with ${totals.pastedInstances} pasted instances` : output === 'scenes' ? `${Object.values(inDataset).reduce((a, b) => a + b, 0)} objects in the generated scenes of dataset/coco` : `${Object.values(inDataset).reduce((a, b) => a + b, 0)} images in the classification set (dataset/)`}</p></header>
<nav><a href="#funnel">Funnel</a><a href="#scores">Scores</a><a href="#kept">Kept</a><a href="#rejected">Rejected</a><a href="#duplicates">Near-duplicates</a><a href="#gap">Gap &amp; diversity</a><a href="#pasted">Pasted</a><a href="#timings">Timings</a></nav>
<section id="funnel"><h2>Funnel per class</h2><div class="charts">${funnelChart}</div>
<table id="funnel-table"><tr><th>class</th>${stagesOfFunnel.map((s) => `<th>${esc(s)}</th>`).join('')}</tr>${classes.map((k) => `<tr><td>${esc(k)}</td>${stagesOfFunnel.map((s) => `<td>${funnel[k]![s]}</td>`).join('')}</tr>`).join('')}</table>
<h2>Why samples were dropped</h2><table id="reasons-table"><tr><th>reason</th><th>samples</th></tr>${Object.entries(reasons).sort((a, b) => b[1] - a[1]).map(([r, n]) => `<tr><td>${esc(r)}</td><td>${n}</td></tr>`).join('')}</table>${picksHtml}
${Object.keys(truth).length ? `<h2>Planted failures (procedural generator) and what happened to them</h2><table id="truth-table"><tr><th>drawn as</th><th>kept</th><th>rejected</th><th>failed</th></tr>${Object.entries(truth).sort().map(([t, v]) => `<tr><td>${esc(t)}</td><td>${v.kept ?? 0}</td><td>${v.rejected ?? 0}</td><td>${v.failed ?? 0}</td></tr>`).join('')}</table>` : ''}</section>
<section id="scores"><h2>Score histograms (red dashed lines: thresholds)</h2><div class="charts">${hists.join('')}</div></section>
<section id="kept"><h2>Kept samples (${kept.length}${kept.length > N ? `, first ${N}` : ''})</h2><div class="controls">show <select data-grid="kept-grid">${options}</select></div><div class="grid" id="kept-grid">${await cells(roundRobin(kept), 'kept')}</div></section>
<section id="rejected"><h2>Rejected samples with the reason (${rejected.length}${rejected.length > N ? `, first ${N}` : ''})</h2><div class="controls">show <select data-grid="rejected-grid">${options}</select></div><div class="grid" id="rejected-grid">${await cells(roundRobin(byStage), 'rejected')}</div></section>
<section id="duplicates"><h2>Near-duplicate groups (${groups.size})</h2>${groupHtml.join('') || '<p class="muted">none found</p>'}</section>
<section id="gap"><h2>Domain gap and diversity per class</h2><p class="muted">Embeddings: ${esc(input.embedder)}. Fréchet distance between real crops and generated instances (before / after filtering; embeddings wider than ${GAP_DIM} go through a seeded random projection to ${GAP_DIM} dimensions first); Vendi score = effective number of distinct samples; NN = mean cosine of each kept sample to its nearest real crop; coverage = mean cosine of each real crop to its nearest kept sample.</p>
<div class="charts">${gapChart}</div>
<table id="gap-table"><tr><th>class</th><th>Fréchet before</th><th>Fréchet after</th><th>Vendi real</th><th>Vendi generated</th><th>Vendi kept</th><th>NN kept→real</th><th>coverage real→kept</th></tr>${gapRows.map((g) => `<tr><td>${esc(g.class)}</td><td>${num(g.frechetBefore)}</td><td>${num(g.frechetAfter)}</td><td>${num(g.vendiReal, 2)}</td><td>${num(g.vendiBefore, 2)}</td><td>${num(g.vendiAfter, 2)}</td><td>${num(g.nnAfter)}</td><td>${num(g.coverageAfter)}</td></tr>`).join('')}
<tr><td><b>overall</b></td><td>${num(gap.before?.overall.frechet)}</td><td>${num(gap.after?.overall.frechet)}</td><td>${num(gap.after?.overall.vendiReal, 2)}</td><td>${num(gap.before?.overall.vendiSynthetic, 2)}</td><td>${num(gap.after?.overall.vendiSynthetic, 2)}</td><td>${num(gap.after?.overall.syntheticToReal)}</td><td>${num(gap.after?.overall.realToSynthetic)}</td></tr></table></section>
${pasting ? `<section id="pasted"><h2>Pasted training images (masks outlined)</h2><div class="pasted">${pasteHtml.join('') || '<p class="muted">no pasted images</p>'}</div></section>` : ''}
<section id="config"><h2>Run settings</h2><details><summary>the config as the run used it (preset merged, defaults filled)</summary><pre id="config-json">${esc(JSON.stringify(c, null, 1).replace(/\/\/[^/@\s"]+@/g, '//***@'))}</pre></details></section>
<section id="timings"><h2>Timings per stage</h2><div class="charts">${timingChart}</div><table id="timings-table"><tr><th>stage</th><th>seconds</th><th>status</th><th>resumed</th></tr>${timings.map((t) => `<tr><td>${t.stage}</td><td>${t.seconds === null ? '–' : t.seconds.toFixed(2)}</td><td>${t.status}</td><td>${t.resumed}</td></tr>`).join('')}</table></section>
<script type="application/json" id="report-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script>${JS}</script>
</body></html>
`;
  await writeFileAtomic(join(input.out, 'report.html'), new TextEncoder().encode(html));
  await writeJson(join(input.out, 'report.json'), data);
  return { summary: { html: 'report/report.html', kept: totals.kept, pool: totals.pool } };
}
