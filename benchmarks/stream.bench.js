// `genaug paste --stream` into Python vs the offline WebDataset export: images
// per second delivered to a Python process that reads the stream with
// tarfile in stream mode (reading every member's bytes, as a loader would
// before decoding), against `genaug paste --format webdataset` writing the
// same samples to disk (and Python then reading the shards). Same data, seed,
// worker threads and sample count; generated 640 x 480 JPEG images with 4
// polygon instances each and a pool of 3 x 4 RGBA crops (as paste-loader).
// Also the stream's peak RSS (bounded by the prefetch, whatever the length).
//   npm run bench -- stream [--images 16 --epochs 8 --workers 2 --quick]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


import { args, emit, findPython, machine, root, writePasteFixture } from './lib.js';

const a = args({ images: 16, size: 640, epochs: 8, crops: 4, workers: 2 });
if (a.quick) Object.assign(a, { images: 4, size: 320, epochs: 2 });
const py = findPython(['tarfile']);
const { seededRandom } = await import(join(root, 'dist', 'util', 'random.js'));
const bin = join(root, 'bin', 'genaug.js');

const dir = await mkdtemp(join(tmpdir(), 'genaug-stream-bench-'));
try {
  const rnd = seededRandom(1);
  const W = Number(a.size), H = Math.round((W * 3) / 4);
  const { images, pool } = await writePasteFixture(dir, { images: a.images, crops: a.crops, W, H, rnd });

  const common = ['paste', '--coco', join(dir, 'real.json'), '--images', images, '--pool', pool, '--seed', '1', '--workers', String(a.workers), '-q'];
  const samples = a.images * a.epochs;

  // Offline: render + write the shards, then Python reads them.
  const out = join(dir, 'offline');
  let t0 = process.hrtime.bigint();
  execFileSync(process.execPath, [bin, ...common, '--format', 'webdataset', '--copies', String(a.epochs), '--out', out]);
  const exportS = Number(process.hrtime.bigint() - t0) / 1e9;
  const readShards = `
import os, sys, tarfile, time
t = time.perf_counter(); n = 0; b = 0
for f in sorted(os.listdir(sys.argv[1])):
    with tarfile.open(os.path.join(sys.argv[1], f), "r|") as tar:
        for m in tar:
            b += len(tar.extractfile(m).read()); n += 1
print(n, b, time.perf_counter() - t)`;
  let offlineReadS = null;
  if (py) {
    const r = execFileSync(py, ['-c', readShards, join(out, 'shards')], { encoding: 'utf8' }).trim().split(' ');
    offlineReadS = Number(r[2]);
  }

  // Stream: Python starts genaug and reads the pipe to its end.
  const readStream = `
import json, resource, subprocess, sys, tarfile, time
t = time.perf_counter(); n = 0; b = 0
p = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.PIPE)
with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
    for m in tar:
        b += len(tar.extractfile(m).read()); n += 1
rc = p.wait()
print(json.dumps({"members": n, "bytes": b, "s": time.perf_counter() - t, "rc": rc, "child_max_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))`;
  let stream = null;
  if (py) {
    const cmd = [process.execPath, bin, ...common, '--stream', '--epochs', String(a.epochs)];
    const r = spawnSync(py, ['-c', readStream, JSON.stringify(cmd)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`stream reader failed: ${r.stderr}`);
    stream = JSON.parse(r.stdout.trim().split('\n').pop());
    if (stream.rc !== 0 || stream.members !== 2 * samples) throw new Error(`stream: ${JSON.stringify(stream)}`);
  }
  const offlineS = exportS + (offlineReadS ?? 0);
  const offlineIps = samples / offlineS;
  const streamIps = stream ? samples / stream.s : null;
  emit({
    benchmark: 'stream',
    machine: machine(),
    image: `${W}x${H} jpeg, 4 polygon instances`,
    samples,
    workers: a.workers,
    offline: { export_s: +exportS.toFixed(3), python_read_s: offlineReadS === null ? null : +offlineReadS.toFixed(3), images_per_s: +offlineIps.toFixed(1) },
    stream: stream ? { s: +stream.s.toFixed(3), images_per_s: +streamIps.toFixed(1), bytes: stream.bytes, child_max_rss_mib: +(stream.child_max_rss_kib / 1024).toFixed(1) } : { skipped: 'no python3' },
    summary: { stream_vs_offline: streamIps === null ? null : +(streamIps / offlineIps).toFixed(2) },
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
