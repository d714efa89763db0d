#!/usr/bin/env node
// npm run leaks: calls every native entry point (ts/native/addon.ts lists
// them) --calls times (default 1,000,000) with small inputs, one call in
// eight a bad one that the addon refuses with a GenaugError (the error path
// frees what it allocated too), and checks that the process's RSS after the
// calls is within 5 % of its RSS after a warm-up (10 % of the calls, at most
// 50,000), both measured after a full GC. Every entry point is warmed up once
// before the first is measured (the Promise twins with 1.5 x --calls calls in
// all: the libuv pool's allocations take that long to reach their plateau; the Sync entries with 2 x --calls calls
// in all, for the process heap's own plateau). Then it creates and tears down
// --workers worker threads (default 200) that each load the addon and call
// it, and checks RSS the same way (warm-up: the first 10 %).
// Prints one line per entry point and exits 1 on any growth over --max
// (default 5 %). Needs dist/ (npm run build:ts) and node --expose-gc.
//
//   node --expose-gc scripts/leaks.mjs [--calls N] [--workers N] [--max PCT] [--only name,name] [--self-test]
// (--self-test adds an entry that keeps 64 bytes per call: it must fail.)
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { native } = await import(join(root, 'dist/native/load.js'));
const { GenaugError } = await import(join(root, 'dist/native/errors.js'));

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const CALLS = Number(opt('calls', 1_000_000));
const WORKERS = Number(opt('workers', 200));
const MAX = Number(opt('max', 5));
const ONLY = opt('only', '') ? new Set(opt('only', '').split(',')) : null;
if (typeof global.gc !== 'function') {
  console.error('leaks: run with node --expose-gc');
  process.exit(2);
}

const a = native();
const T = { threads: 1 };

// --- Small inputs -------------------------------------------------------------
const mat = (rows, dim, seed) => {
  const m = new Float32Array(rows * dim);
  for (let i = 0; i < m.length; i++) m[i] = Math.sin(seed + i * 0.7);
  return m;
};
const q = mat(4, 8, 1), db = mat(6, 8, 2);
const labels = new Int32Array([0, 1, 2, 0, 1, 2]);
const npy = (() => {
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const hlen = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const b = new Uint8Array(10 + hlen);
  b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, hlen & 255, hlen >> 8]);
  b.set(new TextEncoder().encode(dict.padEnd(hlen - 1, ' ') + '\n'), 10);
  return b;
})();
const bn = mat(2, 12, 3);
const cov = (d) => {
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++) c[i * d + i] = 1 + i;
  return c;
};
const H = 8, W = 8;
const masks = new Uint8Array(2 * H * W).map((_, i) => ((i % W) > 1 && (i % W) < 6 && ((i / W) | 0) % H > 2 ? 1 : 0));
const masksB = new Uint8Array(2 * H * W).map((_, i) => ((i % W) > 2 ? 1 : 0));
const img = new Uint8Array(H * W * 3).map((_, i) => (i * 37) & 255);
const mask1 = masks.subarray(0, H * W);
const str = a.rleEncodeSync(mask1, 1, H, W, { form: 'string', threads: 1 })[0];
const counts = a.rleFromString(str, H, W);
const counts2 = a.rleEncodeSync(masksB.subarray(0, H * W), 1, H, W, { form: 'counts', threads: 1 })[0];
const poly = new Float64Array([1, 1, 6, 1, 6, 5, 1, 5]);
const layoutArgs = [
  new Int32Array([0, 2]), new Int32Array([0, 1]), new Int32Array([1, 0]),
  new Float32Array([0, 0, 2, 2, 1, 1, 2, 2]), new Float32Array([2, 0, 2, 2, 3, 1, 1, 1]), new Uint8Array([0]), 2,
  new Int32Array([0, 2]), new Int32Array([0, 1]), new Float32Array([0, 0, 2, 2, 2, 1, 2, 2]),
  new Int32Array([0, 1]), new Int32Array([0]), new Int32Array([0]), new Int32Array([1]), 2,
  new Float32Array([1, 0.2, 0.2, 1]),
];
const layoutBad = [...layoutArgs];
layoutBad[15] = new Float32Array(3);
const rgba = new Uint8Array(4 * 4 * 4).map((_, i) => (i % 4 === 3 ? 255 : i * 9));
const scene = () => [{ image: img, width: W, height: H, masks: [mask1], instances: [{ rgba, width: 4, height: 4, targetWidth: 5, targetHeight: 3, cx: 4, cy: 4, flip: true }] }];
const sceneBad = () => [{ image: img.subarray(1), width: W, height: H }];

// Each entry: [name, arguments of a good call, arguments of a bad call that the
// addon refuses with a GenaugError (null: none)]; `twin`: it also has a
// Promise form (name without Sync) taking the same arguments.
const S = (xs) => () => xs; // fixed arguments
const entries = [
  ['setErrorClass', S([GenaugError]), null],
  ['capabilities', S([]), null],
  ['topkSync', S([q, 4, 8, db, 6, 8, 2, T]), S([q, 4, 8, db, 6, 9, 2, T])],
  ['classMeanSync', S([q, 4, 8, db, 6, 8, labels, 3, T]), S([q, 4, 8, db, 6, 8, labels.subarray(1), 3, T])],
  ['classMaxSync', S([q, 4, 8, db, 6, 8, labels, 3, T]), S([q, 4, 8, db, 6, 8, labels.subarray(1), 3, T])],
  ['pairsSync', S([q, 4, 8, db, 6, 8, 0.1, -1, 100, T]), S([q, 4, 8, db, 6, 8, 0.1, -1, 100, { threads: -1 }])],
  ['rowDotSync', S([q, 4, 8, q, 4, 8, T]), S([q, 4, 8, db, 6, 8, T])],
  ['setEngineTuning', S([{}]), S([{ mc: 'x' }])],
  ['parseNpyHeader', S([npy, 'x.npy']), S([npy.slice(0, 9), 'x.npy'])],
  ['bnStatsSync', S([bn, 2, 3, 4, 'nchw', null, 1, T]), S([bn, 2, 3, 5, 'nchw', null, 1, T])],
  ['gaussianStatsSync', S([q, 4, 8, T]), S([q, 5, 8, T])],
  ['frechetSync', S([new Float64Array(4), cov(4), cov(4), 4, T]), S([new Float64Array(4), cov(3), cov(4), 4, T])],
  ['vendiSync', S([q, 4, 8, T]), S([q, 4, 9, T])],
  ['maskInvertSync', S([masks, 2, H, W, T]), S([masks, 3, H, W, T])],
  ['maskLargestComponentSync', S([masks, 2, H, W, T]), S([masks, 2, H, W, { connectivity: 5 }])],
  ['maskFillHolesSync', S([masks, 2, H, W, T]), S([masks, 2, H, 9, T])],
  ['maskStatsSync', S([masks, 2, H, W, T]), S([masks, 2, 9, W, T])],
  ['maskIouSync', S([masks, masksB, 2, H, W, T]), S([masks.subarray(1), masksB, 2, H, W, T])],
  ['maskCropSync', S([img, H, W, 3, mask1, null]), S([img, H, W, 3, mask1, new Float64Array([0, 0, 9, 9])])],
  ['maskCornerBackgroundSync', S([img, H, W, 3, { tolerance: 10 }]), S([img, H, W, 5, {}])],
  ['maskPostProcessSync', S([masks, 2, H, W, { rle: 'string', threads: 1 }]), S([masks, 2, H, W, { rle: 'nope' }])],
  ['maskCornerForegroundSync', S([img, H, W, 3, { rle: 'counts', background: true, threads: 1 }]), S([img, H, W, 3, { tolerance: 300 }])],
  ['rleEncodeSync', S([masks, 2, H, W, { form: 'string', threads: 1 }]), S([masks, 2, H, 7, T])],
  ['rleDecodeSync', S([[str, counts], H, W, T]), S([[str + '~'], H, W, T])],
  ['rleIouSync', S([[str, counts2], [counts], H, W, null, T]), S([[str], [counts], H, W + 1, null, T])],
  ['rleFromString', S([str, H, W]), S(['~~', H, W])],
  ['rleToString', S([counts]), S([new Float32Array(2)])],
  ['rleArea', S([str, H, W]), S([counts, H, W + 1])],
  ['rleToBbox', S([counts, H, W]), S([str, H + 1, W])],
  ['rleMerge', S([[str, counts2], H, W, false]), S([[], H, W, true])],
  ['rleFromPolygons', S([[poly], H, W, { form: 'counts' }]), S([[poly.subarray(1)], H, W])],
  ['clisLayoutSync', S([...layoutArgs, T]), S([...layoutBad, T])],
  ['compositeBatchSync', () => [scene(), T], () => [sceneBad(), T]],
  ['compositeMemory', S([false]), null],
  ['engineStats', S([]), null],
  ['frechetRowsSync', S([q, 4, 8, db, 6, 8, T]), S([q, 4, 8, db, 6, 9, T])],
  ['pilResizeRgbSync', S([img, H, W, null, null, 0, 0, W, H]), S([img, H, W, null, null, 0, 0, W + 1, H + 1])],
];
// --self-test: one more entry that keeps 64 bytes per call alive, to show the check catches a leak that size.
const kept = [];
if (args.includes('--self-test')) entries.push(['selfTestLeak', S([]), null]);
const selfTestLeak = () => kept.push(new ArrayBuffer(64));
const twins = entries.filter(([n]) => n.endsWith('Sync')).map(([n, g, b]) => [n.slice(0, -4), g, b]).filter(([n]) => typeof a[n] === 'function'); // a Sync entry without a Promise twin (pilResizeRgbSync) has none

// Every function the addon exports is covered (a new one must be added here).
const covered = new Set([...entries.map((e) => e[0]), ...twins.map((e) => e[0])]);
const fnOf = (name) => (name === 'selfTestLeak' ? selfTestLeak : a[name].bind(a));
const missing = Object.keys(a).filter((k) => typeof a[k] === 'function' && !covered.has(k));
if (missing.length) {
  console.error(`leaks: entry points not exercised: ${missing.join(', ')}`);
  process.exit(2);
}

const rss = () => {
  global.gc();
  global.gc();
  return process.memoryUsage.rss();
};
const MB = (b) => (b / 2 ** 20).toFixed(1);

// Runs `n` calls; every eighth is the bad one (when there is one) and must throw a GenaugError.
function runSync(fn, good, bad, n) {
  for (let i = 0; i < n; i++) {
    if (bad && (i & 7) === 7) {
      try {
        fn(...bad());
      } catch (e) {
        if (!(e instanceof GenaugError)) throw e;
        continue;
      }
      throw new Error('the bad call did not throw');
    } else fn(...good());
  }
}

async function runAsync(fn, goodArgs, badArgs, n) {
  const batch = 64;
  for (let i = 0; i < n; i += batch) {
    const ps = [];
    for (let k = i; k < Math.min(n, i + batch); k++) {
      // A Promise entry refuses bad arguments by throwing at once (the checks run on the JS thread) or by rejecting.
      const call = (xs) => new Promise((res) => res(fn(...xs)));
      if (badArgs && (k & 7) === 7)
        ps.push(call(badArgs()).then(() => { throw new Error('the bad call did not reject'); }, (e) => { if (!(e instanceof GenaugError)) throw e; }));
      else ps.push(call(goodArgs()));
    }
    await Promise.all(ps);
  }
}

const results = [];
let failed = false;
const WARM = Math.min(50_000, Math.max(1, Math.floor(CALLS / 10)));
async function measure(name, runner) {
  if (ONLY && !ONLY.has(name)) return;
  const warm = WARM;
  const t0 = Date.now();
  await runner(warm);
  const before = rss();
  await runner(CALLS);
  const after = rss();
  const growth = ((after - before) / before) * 100;
  const ok = growth <= MAX;
  if (!ok) failed = true;
  results.push({ name, growth });
  console.log(`leaks ${name}: ${CALLS + warm} calls, RSS ${MB(before)} -> ${MB(after)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} %)${ok ? '' : ` over ${MAX} %`} [${((Date.now() - t0) / 1000).toFixed(0)} s]`);
}

const start = Date.now();
const rssStart = rss();
// Warm-up of the whole process first (code compiled, heap and allocator arenas grown, the libuv pool
// started), so that the first entries measured do not carry the process's own start-up growth.
// The Sync path too: measured (docs/reliability.md), whichever entry point came first after a short warm-up grew by
// 4-9 % (pairsSync, then classMeanSync when it came first), while 8 M pairsSync calls after the first million stayed
// within 0.1 MB. So the Sync warm-up adds up to 2 x --calls calls in all, spread over the selected entries.
const selectedSync = entries.filter(([name]) => !ONLY || ONLY.has(name)).length;
const syncWarm = Math.max(Math.min(WARM, 5000), Math.floor((2 * CALLS) / Math.max(1, selectedSync)));
for (const [name, good, bad] of entries) if (!ONLY || ONLY.has(name)) runSync(fnOf(name), good, bad, syncWarm);
// The Promise path (libuv pool threads allocating, the JS thread freeing) takes longer: measured with 4 M topk
// calls, RSS steps up until about 1.5 M calls, then stays within a few MB (docs/reliability.md). So the twins'
// warm-up adds up to 1.5 x --calls calls in all.
const selectedTwins = twins.filter(([name]) => !ONLY || ONLY.has(name)).length;
const asyncWarm = Math.max(Math.min(WARM, 5000), Math.floor((1.5 * CALLS) / Math.max(1, selectedTwins)));
for (const [name, good, bad] of twins) if (!ONLY || ONLY.has(name)) await runAsync(a[name].bind(a), good, bad, asyncWarm);
const rssAfterWarm = rss();
for (const [name, good, bad] of entries) await measure(name, (n) => runSync(fnOf(name), good, bad, n));
for (const [name, good, bad] of twins) await measure(name, (n) => runAsync(a[name].bind(a), good, bad, n));

// Worker threads: each loads the addon, calls it, and ends.
async function workers(n) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.load).then(({ native }) => {
      const a = native();
      const m = new Uint8Array(64).fill(1);
      let s = 0;
      for (let i = 0; i < 100; i++) s += a.maskStatsSync(m, 1, 8, 8, { threads: 1 }).area[0];
      a.topk(new Float32Array(8), 1, 8, new Float32Array(16), 2, 8, 1, { threads: 1 }).then(() => parentPort.postMessage(s));
    });`;
  for (let i = 0; i < n; i++) {
    const w = new Worker(code, { eval: true, workerData: { load: join(root, 'dist/native/load.js') } });
    const got = await new Promise((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    if (got !== 6400) throw new Error(`worker ${i} computed ${got}`);
    await w.terminate();
  }
}
if (WORKERS > 0 && (!ONLY || ONLY.has('workers'))) {
  const warm = Math.max(1, Math.floor(WORKERS / 10));
  const t0 = Date.now();
  await workers(warm);
  const before = rss();
  await workers(WORKERS);
  const after = rss();
  const growth = ((after - before) / before) * 100;
  if (growth > MAX) failed = true;
  console.log(`leaks workers: ${WORKERS + warm} worker threads created and ended, RSS ${MB(before)} -> ${MB(after)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} %)${growth > MAX ? ` over ${MAX} %` : ''} [${((Date.now() - t0) / 1000).toFixed(0)} s]`);
}
const rssEnd = rss();
const worst = results.reduce((m, r) => (r.growth > m.growth ? r : m), { name: '-', growth: -Infinity });
console.log(`leaks: ${results.length} entry points x ${CALLS} calls (+ warm-up); worst ${worst.name} ${worst.growth.toFixed(2)} %; RSS ${MB(rssStart)} MB at start, ${MB(rssAfterWarm)} MB after the warm-up, ${MB(rssEnd)} MB at the end; ${((Date.now() - start) / 1000).toFixed(0)} s`);
process.exit(failed ? 1 : 0);
