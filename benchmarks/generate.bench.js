// genaug generate's own overhead per image: a local AUTOMATIC1111-style server that answers at once with a
// 512x512 PNG (~770 KB of noise, as large as a real output; a tEXt chunk carries the seed so every image differs),
// and the runner doing everything it does for a real server: base64 decode, image check, sha256, atomic writes
// (fsync) of the image and its sidecar, the journal line. Then the same plan again, all found in the journal.
// npm run bench -- generate [--items 200] [--concurrency 1,4,16]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';

import { args, root } from './lib.js';

const o = args({ items: 200, concurrency: '1,4,16' });
const { generate } = await import(join(root, 'dist', 'index.js'));
const { seededRandom } = await import(join(root, 'dist', 'util', 'random.js'));

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
// A 512x512 RGB PNG of noise, written by hand (no encoder in the timed path).
const W = 512;
const rnd = seededRandom(1);
const raw = Buffer.alloc((W * 3 + 1) * W);
for (let i = 0; i < raw.length; i++) raw[i] = i % (W * 3 + 1) === 0 ? 0 : Math.floor(rnd() * 256);
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(W, 0);
ihdr.writeUInt32BE(W, 4);
ihdr[8] = 8;
ihdr[9] = 2;
const head = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 1 }))]);
const iend = chunk('IEND', Buffer.alloc(0));

const server = createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const b = JSON.parse(Buffer.concat(parts).toString('utf8'));
    const png = Buffer.concat([head, chunk('tEXt', Buffer.from(`seed\0${b.seed}`, 'latin1')), iend]);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ images: [png.toString('base64')], parameters: {}, info: JSON.stringify({ seed: b.seed, all_seeds: [b.seed] }) }));
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;

const dir = await mkdtemp(join(tmpdir(), 'genaug-bench-gen-'));
const plan = join(dir, 'plan.jsonl');
const jobs = Math.ceil(o.items / 4);
await writeFile(plan, Array.from({ length: jobs }, (_, i) => JSON.stringify({ id: `j${i}`, kind: 'txt2img', classes: ['cup'], prompt: `a cup ${i}`, candidates: 4, width: W, height: W, seed: i * 10 })).join('\n') + '\n');
try {
  for (const c of String(o.concurrency).split(',').map(Number)) {
    const out = join(dir, `out-${c}`);
    const t0 = process.hrtime.bigint();
    const r = await generate(plan, { out, backends: [{ type: 'a1111', url }], concurrency: c });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const t1 = process.hrtime.bigint();
    const again = await generate(plan, { out, backends: [{ type: 'a1111', url }], concurrency: c });
    const s2 = Number(process.hrtime.bigint() - t1) / 1e9;
    console.log(JSON.stringify({
      bench: 'generate', items: r.items, ok: r.ok, png_bytes: head.length + iend.length + 20, concurrency: c,
      seconds: +s.toFixed(3), images_per_s: +(r.ok / s).toFixed(1), ms_per_image: +((1000 * s) / r.ok).toFixed(2),
      resume_all_done_s: +s2.toFixed(3), resumed: again.resumed,
    }));
  }
} finally {
  server.close();
  await rm(dir, { recursive: true, force: true });
}
