// The COCO/LVIS reader's memory: a synthetic LVIS-like annotation file
// (1203 categories with LVIS fields, images with ~12 polygon instances each;
// --mb sets its size, default 256; LVIS v1 train is ~1100) is read in a child
// process by genaug's readCoco (streaming), once with { polygons: 'packed' }
// and once with the library default ('arrays', COCO's number[][]), and by the
// peer, JSON.parse(readFileSync(file, 'utf8')) (only up to V8's ~512 MiB
// string limit), each child reporting its peak resident memory over what it
// had before reading. summary.peak_rss_over_file = that extra / file size for
// the packed mode: it is what every genaug command reads with (the lead's
// decision on issue #14: packed polygons opt-in in the library, used by the
// CLI); peak_rss_over_file_arrays is the library default's. The parsed
// dataset itself is most of either.
// --compare DIST also runs the readCoco of another build (e.g. ../main/dist) the same way (its default mode).
//   npm run bench -- coco [--mb 256 --quick --compare ../main/dist]
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { args, emit, loadGenaug, machine } from './lib.js';
import { printMachineLine } from './machine.js';

const a = args({ mb: 256 });
if (a.quick) a.mb = 32;

// Child mode: read the file one way, print { extra_bytes, seconds }.
if (a.child) {
  const path = String(a.file);
  globalThis.gc?.();
  const before = process.memoryUsage.rss();
  const t0 = process.hrtime.bigint();
  let keep;
  if (a.child === 'packed' || a.child === 'arrays' || a.child === 'compare') {
    const g = a.child === 'compare' ? await import(join(String(a.dist), 'index.js')) : await loadGenaug();
    globalThis.gc?.();
    const base = process.memoryUsage.rss();
    keep = await g.readCoco(path, a.child === 'packed' ? { polygons: 'packed' } : {});
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const peak = process.resourceUsage().maxRSS * 1024;
    globalThis.gc?.();
    const live = process.memoryUsage.rss() - base;
    process.stdout.write(JSON.stringify({ extra_bytes: peak - base, live_after_gc_bytes: live, seconds: secs, annotations: keep.dataset.annotations.length }) + '\n');
  } else {
    keep = JSON.parse(readFileSync(path, 'utf8'));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const peak = process.resourceUsage().maxRSS * 1024;
    globalThis.gc?.();
    const live = process.memoryUsage.rss() - before;
    process.stdout.write(JSON.stringify({ extra_bytes: peak - before, live_after_gc_bytes: live, seconds: secs, annotations: keep.annotations.length }) + '\n');
  }
  process.exit(0);
}

const g = await loadGenaug();
printMachineLine(g, 'coco', { name: "JSON.parse(readFileSync(file, 'utf8'))", versions: { node: process.version, v8: process.versions.v8 } });

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

// An LVIS-shaped file of about `mb` MiB, written in pieces.
function writeLvisLike(path, mb) {
  const rnd = lcg(5);
  const fd = openSync(path, 'w');
  const put = (s) => writeSync(fd, s);
  const r2 = (x) => Math.round(x * 100) / 100;
  put('{"info":{"description":"synthetic LVIS-like","version":"1.0"},"licenses":[],"categories":[');
  for (let c = 1; c <= 1203; c++) {
    put((c > 1 ? ',' : '') + JSON.stringify({ id: c, name: `thing_${c}`, synset: `thing_${c}.n.01`, synonyms: [`thing_${c}`, `object ${c}`], def: `a synthetic category number ${c} used to size the reader`, frequency: 'rcf'[c % 3], image_count: 50 + (c % 700), instance_count: 200 + c }));
  }
  put('],"images":[');
  const target = mb * 2 ** 20;
  // Images first (ids only), then annotations: count images so that annotations fill the target.
  const perImage = 12, approxAnn = 450;
  const nImages = Math.max(1, Math.floor(target / (perImage * approxAnn + 200)));
  for (let i = 1; i <= nImages; i++) {
    put((i > 1 ? ',' : '') + JSON.stringify({ id: i, file_name: `${String(i).padStart(12, '0')}.jpg`, coco_url: `http://images.cocodataset.org/train2017/${String(i).padStart(12, '0')}.jpg`, width: 640, height: 480, neg_category_ids: [1 + (i % 1203)], not_exhaustive_category_ids: [] }));
  }
  put('],"annotations":[');
  let id = 1;
  let first = true;
  for (let i = 1; i <= nImages; i++) {
    let block = '';
    for (let k = 0; k < perImage; k++) {
      const w = 20 + rnd() * 200, h = 20 + rnd() * 200, x = rnd() * (640 - w), y = rnd() * (480 - h);
      const poly = [];
      for (let p = 0; p < 24; p++) {
        const t = (p / 24) * 2 * Math.PI;
        poly.push(r2(x + w / 2 + (w / 2) * Math.cos(t) * (0.8 + 0.2 * rnd())), r2(y + h / 2 + (h / 2) * Math.sin(t) * (0.8 + 0.2 * rnd())));
      }
      block += (first ? '' : ',') + JSON.stringify({ area: r2(w * h * 0.7), id: id++, segmentation: [poly], image_id: i, bbox: [r2(x), r2(y), r2(w), r2(h)], category_id: 1 + Math.floor(rnd() * 1203) });
      first = false;
    }
    put(block);
  }
  put(']}\n');
  closeSync(fd);
}

const dir = mkdtempSync(join(tmpdir(), 'genaug-coco-bench-'));
try {
  const file = join(dir, 'lvis_like.json');
  writeLvisLike(file, Number(a.mb));
  const size = statSync(file).size;
  const self = fileURLToPath(import.meta.url);
  const run = (who) => {
    try {
      const extra = who === 'compare' ? ['--dist', join(process.cwd(), String(a.compare))] : [];
      const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=16384', self, '--child', who, '--file', file, ...extra], { encoding: 'utf8', maxBuffer: 1 << 20 });
      const r = JSON.parse(out.trim().split('\n').pop());
      return { ...r, peak_extra_mib: +(r.extra_bytes / 2 ** 20).toFixed(1), peak_rss_over_file: +(r.extra_bytes / size).toFixed(2), live_over_file: +(r.live_after_gc_bytes / size).toFixed(2), seconds: +r.seconds.toFixed(2) };
    } catch (e) {
      return { skipped: String(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ').slice(0, 300) };
    }
  };
  const genaug = run('packed');
  const arrays = run('arrays');
  const peer = size < 2 ** 29 - 24 ? run('json') : { skipped: `the file (${size} bytes) is over V8's string limit: JSON.parse cannot read it` };
  emit({
    bench: 'coco',
    file_mib: +(size / 2 ** 20).toFixed(1),
    genaug,
    genaug_arrays: arrays,
    ...(a.compare ? { compare: { dist: String(a.compare), ...run('compare') } } : {}),
    peer,
    machine: machine(),
    summary: {
      peak_rss_over_file: genaug.peak_rss_over_file ?? null,
      live_over_file: genaug.live_over_file ?? null,
      peak_rss_over_file_arrays: arrays.peak_rss_over_file ?? null,
      live_over_file_arrays: arrays.live_over_file ?? null,
      peer_peak_rss_over_file: peer.peak_rss_over_file ?? null,
    },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
