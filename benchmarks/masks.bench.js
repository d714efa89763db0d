// Mask kernels and COCO RLE on the realistic 1024² blob mask of
// ../shared/peers/masks.py (one large irregular object with holes and a few
// islands): each kernel, and the whole chain (largest component + holes + box
// + area + compressed RLE) on 1 thread and on 2 threads (a batch of masks),
// beside ../shared/peers/mask_bench.py (OpenCV, scipy, skimage; pycocotools
// when installed) and an OpenCV chain run in the same process as the peer
// (with pycocotools' encode when importable, else a numpy RLE including the
// Fortran-order copy: the output says which).
//   node benchmarks/masks.bench.js [--min-time 0.5 --batch 16 --quick --no-peer]
// The mask comes from the peer's own generator when Python with numpy and
// OpenCV is there; otherwise from the same recipe in JS (same shape and
// statistics, not the same pixels; `mask.source` says which).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { args, emit, findPython, loadGenaug, machine, root, runPeer, shared } from './lib.js';

const a = args({ 'min-time': 0.5, batch: 16, peer: true });
if (a.quick) Object.assign(a, { 'min-time': 0.05, batch: 4 });
const MIN_TIME = Number(a['min-time']);
const H = 1024, W = 1024;

/** Median and min in microseconds of fn() run for at least MIN_TIME seconds (and 5 times). */
function timeUs(fn, minTime = MIN_TIME) {
  for (let i = 0; i < 3; i++) fn();
  const ts = [];
  const start = process.hrtime.bigint();
  while (ts.length < 5 || Number(process.hrtime.bigint() - start) / 1e9 < minTime) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (ts.length > 100000) break;
  }
  ts.sort((x, y) => x - y);
  return { us: +ts[Math.floor(ts.length / 2)].toFixed(2), us_min: +ts[0].toFixed(2), n: ts.length };
}

async function timeUsAsync(fn, minTime = MIN_TIME) {
  for (let i = 0; i < 2; i++) await fn();
  const ts = [];
  const start = process.hrtime.bigint();
  while (ts.length < 5 || Number(process.hrtime.bigint() - start) / 1e9 < minTime) {
    const t0 = process.hrtime.bigint();
    await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  ts.sort((x, y) => x - y);
  return { us: +ts[Math.floor(ts.length / 2)].toFixed(2), us_min: +ts[0].toFixed(2), n: ts.length };
}

function maskFromPython() {
  const py = findPython(['numpy', 'cv2']);
  if (!py) return null;
  try {
    const code = `import sys; sys.path.insert(0, ${JSON.stringify(join(shared, 'peers'))}); from masks import blob_mask; sys.stdout.buffer.write(blob_mask(seed=0).tobytes())`;
    const out = execFileSync(py, ['-c', code], { maxBuffer: 1 << 24 });
    if (out.length !== H * W) return null;
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch {
    return null;
  }
}

/** The masks.py recipe in JS: blurred noise + an ellipse, thresholded, with 6 round holes. */
async function maskFromJs(seed = 0) {
  const { seededRandom } = await import(join(root, 'dist', 'util', 'random.js'));
  const r = seededRandom(seed + 1);
  const radius = 280, noise = 0.45, sigma = 24;
  let f = new Float32Array(H * W);
  for (let i = 0; i < f.length; i++) f[i] = r();
  // Separable Gaussian blur (OpenCV's kernel size for float: 8 sigma + 1), reflect-101 borders.
  const k = 8 * sigma + 1, half = (k - 1) / 2;
  const g = new Float32Array(k);
  let gs = 0;
  for (let i = 0; i < k; i++) gs += g[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < k; i++) g[i] /= gs;
  const refl = (i, n) => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const tmp = new Float32Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += g[t] * f[y * W + refl(x + t - half, W)];
    tmp[y * W + x] = s;
  }
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += g[t] * tmp[refl(y + t - half, H) * W + x];
    f[y * W + x] = s;
  }
  let mean = 0, sq = 0;
  for (const v of f) mean += v;
  mean /= f.length;
  for (const v of f) sq += (v - mean) ** 2;
  const sd = Math.sqrt(sq / f.length) + 1e-9;
  const cy = H * (0.45 + 0.1 * r()), cx = W * (0.45 + 0.1 * r());
  const m = new Uint8Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const d = Math.sqrt((y - cy) ** 2 + ((x - cx) / 1.3) ** 2) / radius;
    m[y * W + x] = 1 - d + (noise * (f[y * W + x] - mean)) / sd > 0 ? 1 : 0;
  }
  for (let i = 0; i < 6; i++) {
    const rr = 6 + Math.floor(r() * 24);
    const hy = Math.floor(cy + (Math.floor(r() * radius) - radius / 2)), hx = Math.floor(cx + (Math.floor(r() * radius) - radius / 2));
    for (let y = Math.max(0, hy - rr); y <= Math.min(H - 1, hy + rr); y++)
      for (let x = Math.max(0, hx - rr); x <= Math.min(W - 1, hx + rr); x++) if ((y - hy) ** 2 + (x - hx) ** 2 <= rr * rr) m[y * W + x] = 0;
  }
  return m;
}

// The OpenCV chain (the peer's `pipeline` with the RLE it can import), timed
// in the peer's Python; 1 and 2 OpenCV threads.
const CHAIN_PY = `
import json, os, sys, statistics, time
sys.path.insert(0, sys.argv[1])
import numpy as np, cv2
from masks import blob_mask
threads, min_time = int(sys.argv[2]), float(sys.argv[3])
cv2.setNumThreads(threads)
m01 = blob_mask(seed=0); H, W = m01.shape
ffmask = np.zeros((H + 4, W + 4), np.uint8)
def lcc(m):
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1: return np.zeros_like(m)
    return cv2.compare(lab, 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA])), cv2.CMP_EQ)
def fill(src255):
    pad = cv2.copyMakeBorder(src255, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    ffmask[:] = 0
    cv2.floodFill(pad, ffmask, (0, 0), 255)
    return cv2.bitwise_or(src255, cv2.bitwise_not(pad[1:-1, 1:-1]))
try:
    import pycocotools.mask as mu
    rle_kind = "pycocotools.mask.encode(np.asfortranarray(m)) (compressed string)"
    def rle(m): return mu.encode(np.asfortranarray(m))
except ImportError:
    rle_kind = "numpy: Fortran-order copy + run counts (uncompressed list; pycocotools is not installed)"
    def rle(m):
        f = np.asfortranarray(m).ravel(order="K")
        pos = np.flatnonzero(f[1:] != f[:-1]) + 1
        pos = np.concatenate(([0] if f[0] else [], pos, [f.size]))
        return np.diff(np.concatenate(([0], pos))).astype(np.uint32)
def chain():
    f = fill(lcc(m01))
    x, y, w, h = cv2.boundingRect(f)
    area = cv2.countNonZero(f)
    return x, y, w, h, area, rle((f >> 7).astype(np.uint8))
def bench(fn):
    for _ in range(3): fn()
    ts = []; t0 = time.perf_counter()
    while len(ts) < 5 or time.perf_counter() - t0 < min_time:
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
    return {"us": round(statistics.median(ts) * 1e6, 2), "us_min": round(min(ts) * 1e6, 2), "n": len(ts)}
r = chain()
print(json.dumps({"threads": threads, "rle": rle_kind, "chain": bench(chain),
                  "rle_encode_incl_fortran_copy": bench(lambda: rle(m01)),
                  "chain_area": int(r[4]), "chain_bbox": [int(v) for v in r[:4]]}))
`;

function runChainPeer(threads) {
  const py = findPython(['numpy', 'cv2']);
  if (!py) return { skipped: 'no Python with numpy and cv2 (apt-get install -y python3-opencv)' };
  try {
    const out = execFileSync(py, ['-c', CHAIN_PY, join(shared, 'peers'), String(threads), String(Math.max(MIN_TIME, 0.2))], { encoding: 'utf8' });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return { skipped: `OpenCV chain failed: ${String(e.stderr ?? e.message).slice(-300)}` };
  }
}

async function main() {
  const g = await loadGenaug();
  const M = await import(join(root, 'dist', 'kernels', 'mask.js'));
  let data = maskFromPython();
  const source = data ? 'masks.py blob_mask(seed=0) via Python' : 'JS port of the masks.py recipe (Python with numpy+cv2 not found)';
  if (!data) data = await maskFromJs(0);
  const mask = { data, height: H, width: W };

  const lc = M.largestComponentSync(mask);
  const chainRes = M.postProcessMaskSync(mask);
  const fill = M.fillHolesSync(mask);
  const describe = {
    source, fill_frac: +(M.maskArea(mask) / (H * W)).toFixed(4), components: lc.components,
    largest_cc_frac_of_fg: +(lc.area / M.maskArea(mask)).toFixed(4), holes_filled_px: M.maskArea(fill) - M.maskArea(mask),
    chain_area: chainRes.area, chain_bbox: chainRes.bbox, rle_string_bytes: chainRes.rle.counts.length,
  };

  const rleS = M.encodeRleSync(mask);
  const rleC = M.encodeRleSync(mask, { form: 'counts' });
  const ours = {
    invert: timeUs(() => M.invertMask(mask)),
    largest_component_8conn: timeUs(() => M.largestComponentSync(mask)),
    largest_component_4conn: timeUs(() => M.largestComponentSync(mask, { connectivity: 4 })),
    fill_holes: timeUs(() => M.fillHolesSync(mask)),
    area: timeUs(() => M.maskArea(mask)),
    bbox: timeUs(() => M.maskBbox(mask)),
    rle_encode_string: timeUs(() => M.encodeRleSync(mask)),
    rle_encode_counts: timeUs(() => M.encodeRleSync(mask, { form: 'counts' })),
    rle_decode_string: timeUs(() => M.decodeRleSync(rleS)),
    rle_decode_counts: timeUs(() => M.decodeRleSync(rleC)),
    rle_area: timeUs(() => M.rleArea(rleS)),
    rle_toBbox: timeUs(() => M.rleToBbox(rleS)),
    chain_1thread: timeUs(() => M.postProcessMaskSync(mask)),
    chain_1thread_no_mask_output: timeUs(() => M.postProcessMaskSync(mask, { mask: false })),
    chain_1thread_async: await timeUsAsync(() => M.postProcessMask(mask)),
  };
  // 2 threads: a batch of masks (each mask is one task), time per mask.
  const B = Number(a.batch);
  const batch = { data: new Uint8Array(B * H * W), count: B, height: H, width: W };
  for (let i = 0; i < B; i++) batch.data.set(data, i * H * W);
  for (const threads of [1, 2]) {
    const t = timeUs(() => M.postProcessBatchSync(batch, { threads }), Math.max(MIN_TIME, 0.3));
    ours[`chain_batch${B}_${threads}threads_per_mask`] = { us: +(t.us / B).toFixed(2), us_min: +(t.us_min / B).toFixed(2), n: t.n };
  }
  const tb = timeUs(() => M.encodeRleBatchSync(batch, { threads: 2 }), Math.max(MIN_TIME, 0.3));
  ours[`rle_encode_string_batch${B}_2threads_per_mask`] = { us: +(tb.us / B).toFixed(2), us_min: +(tb.us_min / B).toFixed(2), n: tb.n };

  const noPeer = a.peer === false || a['no-peer'];
  const peerArgs = ['--min-time', String(Math.max(MIN_TIME, 0.2))];
  const peer1 = noPeer ? { skipped: 'disabled with --no-peer' } : runPeer('mask_bench.py', ['--threads', '1', ...peerArgs], ['numpy', 'cv2']);
  const chain1 = noPeer ? { skipped: 'disabled with --no-peer' } : runChainPeer(1);
  const chain2 = noPeer ? { skipped: 'disabled with --no-peer' } : runChainPeer(2);
  const R = peer1.results ?? {};
  const ratio = (peerUs, oursUs) => (peerUs && oursUs ? +(peerUs / oursUs).toFixed(1) : null);
  const us = (k) => ours[k].us;
  const speedup = {
    largest_component_vs_cv2_lcc_full: ratio(R.lcc_cv2_full?.us, us('largest_component_8conn')),
    largest_component_vs_cv2_cc_labels_only: ratio(R.cc_cv2_labels_only_8conn?.us, us('largest_component_8conn')),
    fill_holes_vs_cv2_floodfill: ratio(R.fill_holes_cv2_floodfill?.us, us('fill_holes')),
    fill_holes_vs_scipy: ratio(R.fill_holes_scipy_ndimage?.us, us('fill_holes')),
    invert_vs_cv2_bitwise_not: ratio(R.invert_cv2_bitwise_not_255?.us, us('invert')),
    bbox_vs_cv2_boundingRect: ratio(R.bbox_cv2_boundingRect?.us, us('bbox')),
    area_vs_cv2_countNonZero: ratio(R.area_cv2_countNonZero?.us, us('area')),
    rle_encode_vs_pycocotools_incl_fortran_copy: ratio(R.rle_encode_pycocotools_incl_fortran_copy?.us, us('rle_encode_string')),
    rle_decode_vs_pycocotools: ratio(R.rle_decode_pycocotools?.us, us('rle_decode_string')),
    rle_encode_vs_peer_chain_rle_incl_fortran_copy: ratio(chain1.rle_encode_incl_fortran_copy?.us, us('rle_encode_string')),
    chain_1thread_vs_opencv_chain_1thread: ratio(chain1.chain?.us, us('chain_1thread')),
    chain_2threads_vs_opencv_chain_2threads: ratio(chain2.chain?.us, ours[`chain_batch${B}_2threads_per_mask`].us),
  };
  const agree = chain1.chain_area !== undefined
    ? { same_area: chain1.chain_area === chainRes.area, same_bbox: JSON.stringify(chain1.chain_bbox) === JSON.stringify(chainRes.bbox) }
    : null;
  emit({
    bench: 'masks', shape: [H, W], mask: describe, isa: g.capabilities().isa,
    genaug_us: ours,
    peer: {
      mask_bench: peer1.skipped ? { skipped: peer1.skipped } : { threads_cv2: peer1.threads_cv2, mask: peer1.mask, results: R, pycocotools: R.pycocotools ?? 'installed', versions: { cv2: peer1.versions?.cv2, numpy: peer1.versions?.numpy } },
      opencv_chain_1thread: chain1, opencv_chain_2threads: chain2, chain_agrees_with_genaug: agree,
    },
    speedup,
    targets: {
      'chain >= 10x the OpenCV chain (2 threads)': speedup.chain_2threads_vs_opencv_chain_2threads === null ? null : speedup.chain_2threads_vs_opencv_chain_2threads >= 10,
      'chain >= 10x the OpenCV chain (1 thread)': speedup.chain_1thread_vs_opencv_chain_1thread === null ? null : speedup.chain_1thread_vs_opencv_chain_1thread >= 10,
      'RLE encode >= 3x the peer encode incl. Fortran copy':
        (speedup.rle_encode_vs_pycocotools_incl_fortran_copy ?? speedup.rle_encode_vs_peer_chain_rle_incl_fortran_copy) === null
          ? null
          : (speedup.rle_encode_vs_pycocotools_incl_fortran_copy ?? speedup.rle_encode_vs_peer_chain_rle_incl_fortran_copy) >= 3,
    },
    machine: machine(),
  });
}

await main();
