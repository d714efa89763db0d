#!/usr/bin/env node
// Writes the hostile input corpus: test/corpus/files/<kind>/<name> (the
// malformed inputs), test/corpus/good/ (the well-formed inputs each case is
// run beside) and test/corpus/cases.json (what each case runs and what must
// come out). Deterministic: run it again and `git diff` shows nothing.
// Symlinks, FIFOs and device paths are not files in git: test/corpus.test.ts
// makes them at test time (cases with "make").
//
//   node test/corpus/make.mjs
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, gzipSync } from 'node:zlib';

import sharp from 'sharp';

const here = dirname(fileURLToPath(import.meta.url));
const filesDir = join(here, 'files');
const goodDir = join(here, 'good');
rmSync(filesDir, { recursive: true, force: true });
rmSync(goodDir, { recursive: true, force: true });

const cases = [];
const put = (dir, rel, bytes) => {
  const p = join(dir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, bytes);
};
/**
 * One case. scenario: how the test runs it (test/corpus.test.ts); file: the
 * corpus file (under files/); make: a link, FIFO or device made at test time
 * instead; expect: 'error' (exit 1, `genaug: error [code]`), 'rejected' (the
 * item is recorded as failed and the good items beside it are kept), or 'ok'
 * (odd but valid: accepted).
 */
/** What each scenario runs (FILE: the case's input; GOOD: test/corpus/good; the test builds the exact command line). */
const COMMANDS = {
  'topk-query': 'genaug similarity topk --query FILE --db GOOD/d.npy --out OUT -q',
  'topk-db': 'genaug similarity topk --query GOOD/q.npy --db FILE --out OUT -q',
  'class-labels': 'genaug similarity class-mean --query GOOD/q.npy --db GOOD/d.npy --labels FILE --out OUT -q',
  'gap-real': 'genaug gap --real FILE --synthetic GOOD/d.npy --out OUT/gap.json -q',
  'unique-emb': 'genaug similarity unique --emb FILE --out OUT -q',
  'bnstats-act': 'genaug bnstats --activations FILE --out OUT.safetensors -q',
  'bnstats-domains': 'genaug bnstats --activations GOOD/act.npy --domains FILE --out OUT.safetensors -q',
  'bnstats-model': 'genaug bnstats --model FILE --real IMAGES --synthetic IMAGES --out OUT.safetensors -q',
  'safetensors-api': 'readSafetensors(FILE) (library)',
  priors: 'genaug priors --coco FILE --out OUT/priors.json',
  plan: 'genaug plan --coco FILE --out OUT/plan.jsonl --strategy template --per-class 1 -q',
  paste: 'genaug paste --coco FILE --images IMAGES --pool GOOD/pool/pool.json --out OUT --workers 0 --seed 1 -q',
  'paste-image': 'genaug paste --coco COCO(images[1] = FILE) --images IMAGES --pool GOOD/pool/pool.json --out OUT --workers 0 --seed 1 -q',
  'paste-pool': 'genaug paste --coco GOOD/coco.json --images IMAGES --pool FILE --out OUT --workers 0 --seed 1 -q',
  'embed-coco': 'genaug embed --features --coco FILE --images IMAGES --out OUT/e.npy --workers 0 -q',
  'real-crops': 'genaug score real-crops --coco FILE --images IMAGES --out OUT',
  'real-crops-image': 'genaug score real-crops --coco COCO(images[1] = FILE) --images IMAGES --out OUT',
  'score-pool': 'genaug score pool --coco FILE --out OUT/pool.json',
  'embed-manifest': 'genaug embed --features --manifest FILE --images IMAGES --out OUT/e.npy --workers 0 -q',
  'annotate-manifest': 'genaug annotate --images IMAGES --manifest FILE --out OUT --workers 0 -q',
  'filter-scores': 'genaug filter --scores FILE --preset xpaste --out OUT/kept.jsonl',
  'run-config': 'genaug run FILE --until plan --no-check-servers -q',
  'embed-image': 'genaug embed --features --images IMAGES(+ FILE) --out OUT/e.npy --workers 0 -q',
  'annotate-image': 'genaug annotate --images IMAGES(cat/ + FILE) --out OUT --workers 0 -q',
  'embed-model': 'genaug embed --model DIR(model.onnx = FILE) --images IMAGES --out OUT/e.npy --workers 0 -q',
  'annotate-segmenter': 'genaug annotate --segmenter FILE --images IMAGES --out OUT --workers 0 -q',
  'annotate-sam': 'genaug annotate --sam-encoder FILE --sam-decoder FILE --images IMAGES --out OUT --workers 0 -q',
  'generate-plan': 'genaug generate --plan FILE --backend a1111=LOCAL_STAND_IN --out OUT --retries 0 --timeout 10 -q',
};

function add(kind, name, bytes, scenario, expect, extra = {}) {
  // Large inputs are kept gzipped (the test unpacks them): the corpus stays small.
  if (bytes !== null && bytes.length > 16384 && !extra.gunzip) return add(kind, `${name}.gz`, gzipSync(bytes, { level: 9 }), scenario, expect, { ...extra, gunzip: name });
  const file = bytes === null ? undefined : `${kind}/${name}`;
  if (bytes !== null) put(filesDir, file, bytes);
  const command = scenario === 'argv' ? `genaug ${extra.argv.join(' ')}` : COMMANDS[scenario];
  if (!command) throw new Error(`no command for scenario ${scenario}`);
  cases.push({ id: `${kind}/${name}`, kind, scenario, command: command + (extra.args ? ` ${extra.args.join(' ')}` : ''), ...(file ? { file } : {}), expect, ...extra });
}
const err = (code) => ({ outcome: 'error', code });
const REJECTED = { outcome: 'rejected' };
const OK = { outcome: 'ok' };
const b = (s) => Buffer.from(s, 'latin1');
const u8 = (...a) => Buffer.from(a);
const f32 = (...v) => Buffer.from(new Float32Array(v).buffer);

// ---------------------------------------------------------------------------
// .npy

function npy(dict, data = Buffer.alloc(0), o = {}) {
  const major = o.major ?? 1;
  const lenBytes = major === 1 ? 2 : 4;
  let head = b(dict);
  const pre = 6 + 2 + lenBytes;
  if (!o.noPad) {
    const total = Math.ceil((pre + head.length + 1) / 64) * 64;
    head = Buffer.concat([head, Buffer.alloc(total - pre - head.length - 1, 0x20), b('\n')]);
  }
  const len = Buffer.alloc(lenBytes);
  const hl = o.hlen ?? head.length;
  if (lenBytes === 2) len.writeUInt16LE(hl);
  else len.writeUInt32LE(hl);
  return Buffer.concat([o.magic ?? b('\x93NUMPY'), u8(major, o.minor ?? 0), len, head, data]);
}
const dict = (descr, shape, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
const rows = (n, d) => Buffer.from(new Float32Array(n * d).map((_, i) => Math.sin(i + 1)).buffer);

const npyQ = (name, bytes, expect = err('E_FORMAT')) => add('npy', name, bytes, 'topk-query', expect);
npyQ('empty.npy', Buffer.alloc(0));
npyQ('text.npy', b('hello, not numpy\n'));
npyQ('magic-only.npy', b('\x93NUMPY'));
npyQ('bad-magic.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { magic: b('\x93NUMPZ') }));
npyQ('version-0.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { major: 0 }));
npyQ('version-4.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { major: 4 }));
npyQ('version-1-minor-9.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { minor: 9 }));
npyQ('version-2-ok.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { major: 2 }), OK);
npyQ('version-3-ok.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { major: 3 }), OK);
npyQ('header-len-past-end.npy', npy(dict('<f4', '(4, 8)'), Buffer.alloc(0), { hlen: 65535 }));
npyQ('header-len-zero.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { hlen: 0 }));
npyQ('header-len-4g-v2.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { major: 2, hlen: 0xffffffff }));
npyQ('header-not-dict.npy', npy('[1, 2, 3]', rows(4, 8)));
npyQ('header-no-descr.npy', npy("{'fortran_order': False, 'shape': (4, 8), }", rows(4, 8)));
npyQ('header-no-shape.npy', npy("{'descr': '<f4', 'fortran_order': False, }", rows(4, 8)));
npyQ('header-no-fortran.npy', npy("{'descr': '<f4', 'shape': (4, 8), }", rows(4, 8)));
npyQ('header-python-code.npy', npy("{'descr': __import__('os').system('touch /tmp/genaug-pwned'), 'fortran_order': False, 'shape': (4, 8), }", rows(4, 8)));
npyQ('header-unterminated.npy', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8", rows(4, 8)));
npyQ('header-binary-garbage.npy', npy('\x00\xff\xfe{\x01\x02', rows(4, 8)));
npyQ('header-duplicate-key.npy', npy("{'descr': '<f4', 'descr': '<i8', 'fortran_order': False, 'shape': (4, 8), }", rows(4, 8)));
npyQ('header-extra-key.npy', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), 'evil': 1, }", rows(4, 8)));
npyQ('header-no-newline.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8), { noPad: true }), OK);
npyQ('dtype-object.npy', npy(dict('|O', '(4, 8)'), rows(4, 8)), err('E_DTYPE'));
npyQ('dtype-unicode.npy', npy(dict('<U10', '(4, 8)'), rows(4, 8)), err('E_DTYPE'));
npyQ('dtype-complex.npy', npy(dict('<c8', '(4, 8)'), rows(4, 16)), err('E_DTYPE'));
npyQ('dtype-void.npy', npy(dict('|V8', '(4, 8)'), rows(4, 16)), err('E_DTYPE'));
npyQ('dtype-big-endian.npy', npy(dict('>f4', '(4, 8)'), rows(4, 8)), err('E_DTYPE'));
npyQ('dtype-garbage.npy', npy(dict('<zz', '(4, 8)'), rows(4, 8)), err('E_DTYPE'));
npyQ('dtype-structured.npy', npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 8), }", rows(4, 8)));
npyQ('dtype-int8.npy', npy(dict('|i1', '(4, 8)'), Buffer.alloc(32)), err('E_DTYPE'));
npyQ('fortran-order.npy', npy(dict('<f4', '(4, 8)', 'True'), rows(4, 8)), OK); // numpy's layout for a transposed array: read as the same array in C order
npyQ('shape-negative.npy', npy(dict('<f4', '(-4, 8)'), rows(4, 8)));
npyQ('shape-string.npy', npy(dict('<f4', "('4', 8)"), rows(4, 8)));
npyQ('shape-float.npy', npy(dict('<f4', '(4.5, 8)'), rows(4, 8)));
npyQ('shape-overflow.npy', npy(dict('<f4', '(4611686018427387904, 4611686018427387904)'), rows(4, 8)));
npyQ('shape-2-63.npy', npy(dict('<f4', '(9223372036854775807, 1)'), rows(4, 8)));
npyQ('shape-huge-small-data.npy', npy(dict('<f4', '(1000000, 1000000)'), rows(4, 8)));
npyQ('shape-3d.npy', npy(dict('<f4', '(2, 2, 8)'), rows(4, 8)), err('E_SHAPE'));
npyQ('shape-scalar.npy', npy(dict('<f4', '()'), f32(1)), err('E_SHAPE'));
npyQ('shape-zero-width.npy', npy(dict('<f4', '(4, 0)'), Buffer.alloc(0)), err('E_SHAPE'));
npyQ('truncated-data.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8).subarray(0, 10)));
npyQ('trailing-data.npy', npy(dict('<f4', '(4, 8)'), Buffer.concat([rows(4, 8), Buffer.alloc(7)])));
npyQ('nan-rows.npy', npy(dict('<f4', '(4, 8)'), Buffer.from(new Float32Array(32).fill(NaN).buffer)), err('E_NONFINITE'));
npyQ('inf-rows.npy', npy(dict('<f4', '(4, 8)'), Buffer.from(new Float32Array(32).fill(Infinity).buffer)), err('E_NONFINITE'));
npyQ('float16-ok.npy', npy(dict('<f2', '(4, 8)'), Buffer.from(new Uint16Array(32).fill(0x3c00).buffer)), OK);
add('npy', 'db-wider.npy', npy(dict('<f4', '(10, 9)'), rows(10, 9)), 'topk-db', err('E_SHAPE'));
add('npy', 'db-truncated.npy', npy(dict('<f4', '(10, 8)'), rows(10, 8).subarray(0, 100)), 'topk-db', err('E_FORMAT'));
add('npy', 'db-zero-rows.npy', npy(dict('<f4', '(0, 8)'), Buffer.alloc(0)), 'topk-db', err('E_SHAPE'));
const i64 = (...v) => Buffer.from(new BigInt64Array(v.map(BigInt)).buffer);
add('npy', 'labels-negative.npy', npy(dict('<i8', '(10,)'), i64(0, 1, 0, 1, -1, 0, 1, 0, 1, 0)), 'class-labels', err('E_RANGE'));
add('npy', 'labels-huge.npy', npy(dict('<i8', '(10,)'), i64(0, 1, 0, 1, 2 ** 40, 0, 1, 0, 1, 0)), 'class-labels', err('E_RANGE'));
add('npy', 'labels-float.npy', npy(dict('<f4', '(10,)'), f32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)), 'class-labels', err('E_DTYPE'));
add('npy', 'labels-short.npy', npy(dict('<i8', '(9,)'), i64(0, 1, 0, 1, 0, 1, 0, 1, 0)), 'class-labels', err('E_SHAPE'));
add('npy', 'labels-2d.npy', npy(dict('<i8', '(5, 2)'), i64(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)), 'class-labels', err('E_SHAPE'));
add('npy', 'gap-real-text.npy', b('{"not": "npy"}'), 'gap-real', err('E_FORMAT'));
add('npy', 'gap-real-1-row.npy', npy(dict('<f4', '(1, 8)'), rows(1, 8)), 'gap-real', OK);
add('npy', 'gap-real-nan.npy', npy(dict('<f4', '(4, 8)'), Buffer.from(new Float32Array(32).fill(NaN).buffer)), 'gap-real', err('E_NONFINITE'));
add('npy', 'unique-truncated.npy', npy(dict('<f4', '(40, 8)'), rows(4, 8)), 'unique-emb', err('E_FORMAT'));
add('npy', 'bnstats-1d.npy', npy(dict('<f4', '(8,)'), rows(1, 8)), 'bnstats-act', err('E_SHAPE'));
add('npy', 'bnstats-int.npy', npy(dict('<i8', '(2, 4)'), i64(1, 2, 3, 4, 5, 6, 7, 8)), 'bnstats-act', err('E_DTYPE'));
add('npy', 'bnstats-nan.npy', npy(dict('<f4', '(2, 4)'), f32(1, 2, NaN, 4, 5, 6, 7, 8)), 'bnstats-act', err('E_NONFINITE'));
add('npy', 'bnstats-truncated.npy', npy(dict('<f4', '(200, 3, 8, 8)'), rows(4, 8)), 'bnstats-act', err('E_FORMAT'));
add('npy', 'bnstats-huge-channels.npy', npy(dict('<f4', '(1, 4294967296)'), rows(1, 8)), 'bnstats-act', err('E_FORMAT'));
add('npy', 'domains-short.npy', npy(dict('<i8', '(3,)'), i64(0, 1, 0)), 'bnstats-domains', err('E_SHAPE'));
add('npy', 'domains-negative.npy', npy(dict('<i8', '(4,)'), i64(0, 1, -3, 0)), 'bnstats-domains', err('E_RANGE'));
add('npy', 'domains-float.npy', npy(dict('<f4', '(4,)'), f32(0, 1, 0, 1)), 'bnstats-domains', err('E_DTYPE'));
add('npy', 'domains-stray-tag.npy', npy(dict('<i8', '(4,)'), i64(0, 1, 7, 0)), 'bnstats-domains', err('E_RANGE'));
add('npy', 'fifo.npy', null, 'topk-query', err('E_IO'), { make: 'fifo' });
add('npy', 'dev-zero.npy', null, 'topk-query', err('E_IO'), { make: 'link:/dev/zero' });
add('npy', 'folder.npy', null, 'topk-query', err('E_IO'), { make: 'dir' });

// ---------------------------------------------------------------------------
// safetensors (no command reads them; the library's readSafetensors does)

function st(header, data = Buffer.alloc(0), o = {}) {
  const h = typeof header === 'string' ? b(header) : Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(o.hlen ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}
const stE = (name, bytes, code = 'E_FORMAT') => add('safetensors', name, bytes, 'safetensors-api', err(code));
const t = (dtype, shape, a, z) => ({ dtype, shape, data_offsets: [a, z] });
stE('empty.safetensors', Buffer.alloc(0));
stE('short.safetensors', u8(1, 2, 3));
stE('header-len-huge.safetensors', st({ a: t('F32', [2], 0, 8) }, f32(1, 2), { hlen: 1n << 60n }));
stE('header-len-negative.safetensors', st({ a: t('F32', [2], 0, 8) }, f32(1, 2), { hlen: 0xffffffffffffffffn }));
stE('header-len-past-end.safetensors', st({ a: t('F32', [2], 0, 8) }, Buffer.alloc(0), { hlen: 4096n }));
stE('header-len-zero.safetensors', st({ a: t('F32', [2], 0, 8) }, f32(1, 2), { hlen: 0n }));
stE('header-bad-json.safetensors', st('{"a": {"dtype": "F32", ', f32(1, 2)));
stE('header-array.safetensors', st([1, 2, 3]));
stE('header-null.safetensors', st('null'));
stE('header-not-utf8.safetensors', st('\xff\xfe{}'));
stE('tensor-not-object.safetensors', st({ a: 5 }));
stE('tensor-no-dtype.safetensors', st({ a: { shape: [2], data_offsets: [0, 8] } }, f32(1, 2)));
stE('tensor-bad-dtype.safetensors', st({ a: t('F128', [2], 0, 32) }, Buffer.alloc(32)), 'E_DTYPE');
stE('tensor-shape-negative.safetensors', st({ a: t('F32', [-2], 0, 8) }, f32(1, 2)));
stE('tensor-shape-float.safetensors', st({ a: t('F32', [1.5], 0, 8) }, f32(1, 2)));
stE('tensor-shape-overflow.safetensors', st({ a: t('F32', [2 ** 40, 2 ** 40], 0, 8) }, f32(1, 2)), 'E_SHAPE');
stE('offsets-reversed.safetensors', st({ a: t('F32', [2], 8, 0) }, f32(1, 2)));
stE('offsets-past-end.safetensors', st({ a: t('F32', [2], 0, 8), b: t('F32', [2], 8, 16) }, f32(1, 2)));
stE('offsets-overlap.safetensors', st({ a: t('F32', [2], 0, 8), b: t('F32', [2], 4, 12) }, f32(1, 2, 3)));
stE('offsets-gap.safetensors', st({ a: t('F32', [2], 0, 8), b: t('F32', [2], 12, 20) }, f32(1, 2, 3, 4, 5)));
stE('offsets-strings.safetensors', st({ a: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, f32(1, 2)));
stE('offsets-missing.safetensors', st({ a: { dtype: 'F32', shape: [2] } }, f32(1, 2)));
stE('dtype-size-mismatch.safetensors', st({ a: t('F32', [3], 0, 8) }, f32(1, 2)), 'E_SHAPE');
stE('metadata-not-strings.safetensors', st({ __metadata__: { n: 5 }, a: t('F32', [2], 0, 8) }, f32(1, 2)));
stE('duplicate-tensor.safetensors', st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32(1, 2)));
stE('trailing-data.safetensors', st({ a: t('F32', [2], 0, 8) }, f32(1, 2, 3)));
add('safetensors', 'fifo.safetensors', null, 'safetensors-api', err('E_IO'), { make: 'fifo' });
add('safetensors', 'ok-f16.safetensors', st({ __metadata__: { producer: 'x' }, a: t('F16', [2], 0, 4) }, u8(0, 0x3c, 0, 0x3c)), 'safetensors-api', OK);

// ---------------------------------------------------------------------------
// COCO / LVIS

const goodImages = [
  { id: 1, file_name: 'a.png', width: 64, height: 48 },
  { id: 2, file_name: 'b.jpg', width: 64, height: 48 },
];
const goodCats = [
  { id: 1, name: 'cat' },
  { id: 2, name: 'dog' },
];
const poly = (x, y, w, h) => [[x, y, x + w, y, x + w, y + h, x, y + h]];
const goodAnns = [
  { id: 1, image_id: 1, category_id: 1, bbox: [8, 8, 20, 16], area: 320, iscrowd: 0, segmentation: poly(8, 8, 20, 16) },
  { id: 2, image_id: 2, category_id: 2, bbox: [30, 10, 24, 24], area: 576, iscrowd: 0, segmentation: poly(30, 10, 24, 24) },
  { id: 3, image_id: 1, category_id: 2, bbox: [36, 20, 16, 16], area: 256, iscrowd: 0, segmentation: poly(36, 20, 16, 16) },
];
const goodCoco = { images: goodImages, annotations: goodAnns, categories: goodCats };
const J = (v) => Buffer.from(JSON.stringify(v));
/** The good dataset with one annotation replaced or added (a bad one beside good ones). */
const withAnn = (ann) => ({ ...goodCoco, annotations: [...goodAnns, { id: 99, image_id: 1, category_id: 1, iscrowd: 0, ...ann }] });
const coco = (name, v, scenario, expect) => add('coco', name, Buffer.isBuffer(v) ? v : J(v), scenario, expect);
const priorsE = (name, v, code = 'E_FORMAT') => coco(name, v, 'priors', err(code));
const priorsR = (name, ann) => coco(name, withAnn(ann), 'priors', REJECTED);

priorsE('empty.json', Buffer.alloc(0));
priorsE('not-json.json', b('images: []\n'));
priorsE('array.json', []);
priorsE('null.json', b('null'));
priorsE('string.json', 'coco');
priorsE('truncated.json', J(goodCoco).subarray(0, 150));
priorsE('trailing-garbage.json', Buffer.concat([J(goodCoco), b('}}')]));
priorsE('no-images.json', { annotations: goodAnns, categories: goodCats });
priorsE('no-annotations.json', { images: goodImages, categories: goodCats });
priorsE('no-categories.json', { images: goodImages, annotations: goodAnns });
priorsE('images-object.json', { ...goodCoco, images: { 1: goodImages[0] } });
priorsE('images-null-entry.json', { ...goodCoco, images: [null, ...goodImages] });
priorsE('image-id-string.json', { ...goodCoco, images: [{ ...goodImages[0], id: '1' }, goodImages[1]] });
coco('image-width-zero.json', { ...goodCoco, images: [{ ...goodImages[0], width: 0 }, goodImages[1]] }, 'priors', REJECTED);
coco('image-width-1e308.json', { ...goodCoco, images: [{ ...goodImages[0], width: 1e308 }, goodImages[1]] }, 'priors', REJECTED);
coco('image-height-negative.json', { ...goodCoco, images: [{ ...goodImages[0], height: -48 }, goodImages[1]] }, 'priors', REJECTED);
coco('image-file-name-number.json', { ...goodCoco, images: [{ ...goodImages[0], file_name: 7 }, goodImages[1]] }, 'priors', REJECTED);
priorsE('duplicate-image-ids.json', { ...goodCoco, images: [goodImages[0], { ...goodImages[1], id: 1 }] });
priorsE('duplicate-category-ids.json', { ...goodCoco, categories: [goodCats[0], { ...goodCats[1], id: 1 }] });
priorsE('duplicate-annotation-ids.json', { ...goodCoco, annotations: [goodAnns[0], { ...goodAnns[1], id: 1 }] });
priorsE('category-id-float.json', { ...goodCoco, categories: [{ id: 1.5, name: 'cat' }, goodCats[1]] });
priorsE('category-name-missing.json', { ...goodCoco, categories: [{ id: 1 }, goodCats[1]] });
priorsE('category-id-1e308.json', { ...goodCoco, categories: [{ id: 1e308, name: 'cat' }, goodCats[1]] });
coco('lvis-neg-ids-string.json', { ...goodCoco, images: [{ ...goodImages[0], neg_category_ids: 'all' }, goodImages[1]] }, 'priors', OK); // LVIS fields are kept as they are, unused
priorsE('deep-nesting.json', b(`{"images": ${'['.repeat(100000)}${']'.repeat(100000)}, "annotations": [], "categories": []}`));
priorsE('bom-utf16.json', Buffer.concat([u8(0xff, 0xfe), Buffer.from(JSON.stringify(goodCoco), 'utf16le')]));
priorsE('only-crowd.json', { ...goodCoco, annotations: goodAnns.map((a) => ({ ...a, iscrowd: 1 })) });
coco('bom-utf8.json', Buffer.concat([u8(0xef, 0xbb, 0xbf), J(goodCoco)]), 'priors', OK);
coco('lvis-extra-fields.json', { ...goodCoco, images: goodImages.map((i) => ({ ...i, neg_category_ids: [2], not_exhaustive_category_ids: [] })), categories: goodCats.map((c) => ({ ...c, frequency: 'r', synonyms: [c.name] })) }, 'priors', OK);
priorsR('ann-missing-image.json', { image_id: 777, bbox: [1, 1, 5, 5] });
// 20,000 annotations of an image that is not there: all skipped and counted, in well under the hang limit.
coco('ann-20000-dangling.json', { ...goodCoco, annotations: [...goodAnns, ...Array.from({ length: 20000 }, (_, i) => ({ id: 1000 + i, image_id: 777, category_id: 1, bbox: [1, 1, 5, 5] }))] }, 'priors', REJECTED);
priorsR('ann-missing-category.json', { category_id: 777, bbox: [1, 1, 5, 5] });
priorsR('ann-bbox-1e308.json', { bbox: [1, 1, 1e308, 5] });
priorsR('ann-bbox-nan-string.json', { bbox: [1, 1, 'NaN', 5] });
priorsR('ann-bbox-null.json', { bbox: [1, 1, null, 5] });
priorsR('ann-bbox-negative.json', { bbox: [1, 1, -5, 5] });
priorsR('ann-bbox-short.json', { bbox: [1, 1, 5] });
priorsR('ann-bbox-object.json', { bbox: { x: 1, y: 1, w: 5, h: 5 } });
priorsR('ann-no-bbox.json', {});
priorsR('ann-iscrowd-yes.json', { bbox: [1, 1, 5, 5], iscrowd: 'yes' });
priorsR('ann-image-id-string.json', { image_id: '1', bbox: [1, 1, 5, 5] });
priorsR('ann-category-id-null.json', { category_id: null, bbox: [1, 1, 5, 5] });
priorsR('ann-poly-odd.json', { bbox: [1, 1, 5, 5], segmentation: [[1, 1, 6, 1, 6]] });
priorsR('ann-poly-strings.json', { bbox: [1, 1, 5, 5], segmentation: [['a', 'b', 'c', 'd', 'e', 'f']] });
priorsR('ann-rle-garbage.json', { bbox: [1, 1, 5, 5], iscrowd: 1, segmentation: { size: [48, 64], counts: '\u0000\u00ff~~~' } });
priorsR('ann-rle-sum-wrong.json', { bbox: [1, 1, 5, 5], iscrowd: 1, segmentation: { size: [48, 64], counts: [5, 10, 99999] } });
priorsR('ann-rle-huge-size.json', { bbox: [1, 1, 5, 5], iscrowd: 1, segmentation: { size: [1e9, 1e9], counts: [1e18] } });
priorsR('ann-rle-size-mismatch.json', { bbox: [1, 1, 5, 5], iscrowd: 1, segmentation: { size: [4, 4], counts: [16] } });
priorsR('ann-rle-negative-counts.json', { bbox: [1, 1, 5, 5], iscrowd: 1, segmentation: { size: [48, 64], counts: [-5, 3077] } });
// The other commands that read COCO: a broken file is a typed error, a broken annotation a recorded one.
coco('plan-not-json.json', b('{"images": [,]}'), 'plan', err('E_FORMAT'));
coco('plan-no-categories.json', { images: goodImages, annotations: goodAnns }, 'plan', err('E_FORMAT'));
coco('plan-ann-bad-bbox.json', withAnn({ bbox: [1, 1, 'x', 5] }), 'plan', REJECTED);
coco('paste-image-id-string.json', { ...goodCoco, images: [{ ...goodImages[0], id: 'one' }, goodImages[1]] }, 'paste', err('E_FORMAT'));
const ROOTS = { reason: 'must lie inside their folder' };
add('coco', 'paste-file-name-dotdot.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '../outside.jpg' }] }), 'paste', REJECTED, ROOTS);
add('coco', 'paste-file-name-absolute.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '/etc/passwd' }] }), 'paste', REJECTED, ROOTS);
coco('paste-file-name-missing.json', { ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: 'nope.png' }] }, 'paste', REJECTED);
coco('paste-file-name-nul.json', { ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: 'b.jpg\u0000.png' }] }, 'paste', REJECTED);
coco('paste-ann-rle-garbage.json', withAnn({ bbox: [1, 1, 5, 5], segmentation: { size: [48, 64], counts: '!!!!' } }), 'paste', REJECTED);
coco('paste-size-mismatch.json', { ...goodCoco, images: [goodImages[0], { ...goodImages[1], width: 640, height: 480 }] }, 'paste', REJECTED);
add('coco', 'embed-coco-dotdot.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '../outside.jpg' }] }), 'embed-coco', REJECTED, ROOTS);
add('coco', 'embed-coco-absolute.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '/dev/zero' }] }), 'embed-coco', REJECTED, ROOTS);
coco('embed-coco-bad-poly.json', withAnn({ bbox: [1, 1, 5, 5], segmentation: [[1, 1, 'x', 2, 3, 3]] }), 'embed-coco', REJECTED);
add('coco', 'real-crops-dotdot.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '../outside.jpg' }] }), 'real-crops', REJECTED, ROOTS);
add('coco', 'real-crops-absolute.json', J({ ...goodCoco, images: [goodImages[0], { ...goodImages[1], file_name: '/dev/zero' }] }), 'real-crops', REJECTED, ROOTS);
coco('real-crops-not-json.json', b('<xml/>'), 'real-crops', err('E_FORMAT'));
coco('score-pool-no-images.json', { annotations: goodAnns, categories: goodCats }, 'score-pool', err('E_FORMAT'));
coco('score-pool-bbox-1e308.json', withAnn({ bbox: [1, 1, 1e308, 1e308] }), 'score-pool', REJECTED);
add('coco', 'fifo.json', null, 'priors', err('E_IO'), { make: 'fifo' });
add('coco', 'dev-zero.json', null, 'priors', err('E_IO'), { make: 'link:/dev/zero' });

// ---------------------------------------------------------------------------
// JSON lines manifests and tables (embed --manifest, annotate --manifest, filter --scores)

const L = (...lines) => b(lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
const goodLines = [{ file: 'a.png' }, { file: 'b.jpg' }];
const manifest = (name, bytes, expect, scenario = 'embed-manifest') => add('jsonl', name, bytes, scenario, expect);
manifest('empty.jsonl', Buffer.alloc(0), err('E_IO'));
manifest('blank-lines.jsonl', b('\n\n   \n\t\n'), err('E_IO'));
manifest('bad-json-line.jsonl', L(goodLines[0], '{"file": "b.jpg"', goodLines[1]), err('E_FORMAT'));
manifest('array-line.jsonl', L(goodLines[0], ['b.jpg']), err('E_FORMAT'));
manifest('null-line.jsonl', L(goodLines[0], 'null'), err('E_FORMAT'));
manifest('file-number.jsonl', L(goodLines[0], { file: 7 }), err('E_FORMAT'));
manifest('file-empty.jsonl', L(goodLines[0], { file: '' }), err('E_FORMAT'));
manifest('no-file-key.jsonl', L(goodLines[0], { path: 'b.jpg' }), err('E_FORMAT'));
manifest('binary.jsonl', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) % 256)), err('E_FORMAT'));
manifest('utf16.jsonl', Buffer.concat([u8(0xff, 0xfe), Buffer.from(JSON.stringify(goodLines[0]) + '\n', 'utf16le')]), err('E_FORMAT'));
manifest('bom.jsonl', Buffer.concat([u8(0xef, 0xbb, 0xbf), L(...goodLines)]), OK);
manifest('crlf.jsonl', b(goodLines.map((l) => JSON.stringify(l)).join('\r\n') + '\r\n'), OK);
manifest('no-final-newline.jsonl', b(goodLines.map((l) => JSON.stringify(l)).join('\n')), OK);
manifest('extra-fields.jsonl', L({ file: 'a.png', category: 'cat', score: 1e308, nested: { deep: [1, 2, { x: null }] } }, goodLines[1]), OK);
manifest('duplicate-lines.jsonl', L(goodLines[0], goodLines[0], goodLines[1]), OK);
manifest('huge-line.jsonl', L(goodLines[0], goodLines[1], { file: 'c.png', pad: 'x'.repeat(200000) }), REJECTED);
add('jsonl', 'dotdot.jsonl', L(...goodLines, { file: '../../../../etc/passwd' }), 'embed-manifest', REJECTED, ROOTS);
manifest('dotdot-inside.jsonl', L(...goodLines, { file: 'sub/../../images/a.png' }), OK); // resolves inside the folder
add('jsonl', 'absolute.jsonl', L(...goodLines, { file: '/etc/passwd' }), 'embed-manifest', REJECTED, ROOTS);
add('jsonl', 'dev-zero.jsonl', L(...goodLines, { file: '/dev/zero' }), 'embed-manifest', REJECTED, ROOTS);
manifest('missing-file.jsonl', L(...goodLines, { file: 'nope.png' }), REJECTED);
manifest('nul-byte.jsonl', L(...goodLines, { file: 'a.png\u0000.txt' }), REJECTED);
manifest('folder.jsonl', L(...goodLines, { file: 'sub' }), REJECTED);
add('jsonl', 'link-out.jsonl', L(...goodLines, { file: 'link-out.png' }), 'embed-manifest', REJECTED, ROOTS);
add('jsonl', 'link-dev-zero.jsonl', L(...goodLines, { file: 'link-zero.png' }), 'embed-manifest', REJECTED, ROOTS);
add('jsonl', 'dotdot-outside-image.jsonl', L(...goodLines, { file: '../outside.jpg' }), 'embed-manifest', REJECTED, ROOTS);
manifest('fifo-line.jsonl', L(...goodLines, { file: 'fifo.png' }), REJECTED, 'embed-manifest');
manifest('not-an-image.jsonl', L(...goodLines, { file: 'notes.txt' }), REJECTED, 'embed-manifest');
add('jsonl', 'manifest-fifo.jsonl', null, 'embed-manifest', err('E_IO'), { make: 'fifo' });
add('jsonl', 'manifest-dev-zero.jsonl', null, 'embed-manifest', err('E_IO'), { make: 'link:/dev/zero' });
const annot = (name, bytes, expect) => add('jsonl', name, bytes, 'annotate-manifest', expect);
const annGood = [{ file: 'a.png', category: 'cat' }, { file: 'b.jpg', category: 'dog' }];
annot('annotate-bad-line.jsonl', L(annGood[0], 'nope'), err('E_FORMAT'));
annot('annotate-no-category.jsonl', L(annGood[0], { file: 'b.jpg' }), err('E_FORMAT'));
annot('annotate-dotdot.jsonl', L(...annGood, { file: '../../../../etc/hostname', category: 'cat' }), OK); // not an image of the folder: never read
annot('annotate-absolute.jsonl', L(...annGood, { file: '/dev/zero', category: 'cat' }), OK); // not an image of the folder: never read
annot('annotate-category-dotdot.jsonl', L(annGood[0], { file: 'b.jpg', category: '..' }), OK);
add('jsonl', 'annotate-link-out.jsonl', L(...annGood, { file: 'link-out.png', category: 'cat' }), 'annotate-manifest', REJECTED, ROOTS); // a link in the folder to a file outside it
const scores = (name, bytes, expect) => add('jsonl', name, bytes, 'filter-scores', expect);
scores('scores-bad-json.jsonl', L({ id: 'a', category: 'cat', clip: 30, area_fraction: 0.5 }, '{"id":'), err('E_FORMAT'));
scores('scores-no-id.jsonl', L({ category: 'cat', clip: 30 }), err('E_FORMAT'));
scores('scores-id-number.jsonl', L({ id: 5, category: 'cat', clip: 30 }), err('E_FORMAT'));
scores('scores-empty.jsonl', Buffer.alloc(0), OK);
scores('scores-nan-strings.jsonl', L({ id: 'a.png', category: 'cat', clip_score: 'NaN', area_fraction: 'x' }, { id: 'b.png', category: 'cat', clip_score: 30, area_fraction: 0.5 }), REJECTED);
add('jsonl', 'scores-bad-quote.csv', b('id,category,clip_score\n"a.png,cat,30\n'), 'filter-scores', err('E_FORMAT'));
add('jsonl', 'scores-ragged.csv', b('id,category,clip_score\na.png,cat\n'), 'filter-scores', err('E_FORMAT'));
add('jsonl', 'scores-no-id.csv', b('name,category\na.png,cat\n'), 'filter-scores', err('E_FORMAT'));
add('jsonl', 'scores-fifo.jsonl', null, 'filter-scores', err('E_IO'), { make: 'fifo' });

// ---------------------------------------------------------------------------
// YAML run configs (genaug run CONFIG --until plan)

const base = 'name: corpus\nrun_dir: run\nreal:\n  coco: coco.json\n  images: images\n';
const yaml = (name, text, code = 'E_FORMAT') => add('yaml', name, b(text), 'run-config', err(code));
yaml('empty.yaml', '');
yaml('scalar.yaml', 'just a string\n');
yaml('list.yaml', '- a\n- b\n');
yaml('tabs.yaml', 'name: x\n\treal: y\n');
yaml('unclosed-quote.yaml', 'name: "x\nreal: y\n');
yaml('unknown-key.yaml', `${base}colour: blue\n`);
yaml('unknown-nested-key.yaml', `${base}plan:\n  strategy: template\n  prompt_colour: red\n`);
yaml('wrong-type-string.yaml', `${base}plan:\n  per_class: many\n`);
yaml('wrong-type-list.yaml', `${base}plan: [1, 2]\n`);
yaml('negative-count.yaml', `${base}plan:\n  per_class: -5\n`);
yaml('huge-number.yaml', `${base}plan:\n  width: 1e308\n`);
yaml('nan.yaml', `${base}paste:\n  flip: .nan\n`);
yaml('unknown-strategy.yaml', `${base}plan:\n  strategy: rm -rf /\n`);
yaml('missing-real.yaml', 'name: corpus\nrun_dir: run\n');
yaml('duplicate-keys.yaml', `${base}name: again\n`);
yaml('js-function-tag.yaml', `${base}plan: !!js/function "function () { process.exit(7) }"\n`);
yaml('custom-tag.yaml', `${base}plan: !evil\n  strategy: template\n`);
yaml('binary-tag.yaml', `${base}plan:\n  strategy: !!binary aGVsbG8=\n`);
yaml('python-tag.yaml', `${base}plan: !!python/object/apply:os.system ["touch /tmp/genaug-pwned"]\n`);
const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
for (let i = 1; i < 10; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
yaml('billion-laughs.yaml', `${laughs.join('\n')}\n${base}`);
yaml('alias-merge-bomb.yaml', `${base}x: &x {a: 1}\nplan:\n  <<: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n`);
yaml('deep-nesting.yaml', `${base}plan: ${'['.repeat(20000)}${']'.repeat(20000)}\n`);
yaml('deep-block-nesting.yaml', `${base}plan:\n${Array.from({ length: 400 }, (_, i) => `${' '.repeat(2 * (i + 1))}k${i}:`).join('\n')} 1\n`);
yaml('huge-string.yaml', `${base}plan:\n  negative_prompt: "${'x'.repeat(300000)}"\n  per_class: bad\n`);
yaml('control-chars.yaml', `${base}plan:\n  strategy: "\u0000\u0007"\n`);
yaml('preset-dotdot.yaml', `preset: ../../../../etc/passwd.yaml\n${base}`, 'E_IO');
yaml('preset-unknown.yaml', `preset: nosuch\n${base}`, 'E_IO');
yaml('preset-absolute-dev.yaml', `preset: /dev/zero.yaml\n${base}`, 'E_IO');
yaml('real-coco-missing.yaml', 'name: corpus\nrun_dir: run\nreal:\n  coco: nope.json\n  images: images\n', 'E_IO');
yaml('real-coco-dev-zero.yaml', 'name: corpus\nrun_dir: run\nreal:\n  coco: /dev/zero\n  images: images\n', 'E_IO');
yaml('real-coco-fifo.yaml', 'name: corpus\nrun_dir: run\nreal:\n  coco: fifo.json\n  images: images\n', 'E_IO');
yaml('json-config-bad.json', '{"name": "x", "real": {"coco": 5}}');
add('yaml', 'fifo.yaml', null, 'run-config', err('E_IO'), { make: 'fifo' });
add('yaml', 'dev-zero.yaml', null, 'run-config', err('E_IO'), { make: 'link:/dev/zero' });

// ---------------------------------------------------------------------------
// Images: each one beside two good images in a folder (embed --features --images,
// annotate --images): a broken one is a recorded failure, an odd one is read.

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([b(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}
const PNG_SIG = u8(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
function ihdr(w, h, depth = 8, colour = 2) {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = depth;
  d[9] = colour;
  return d;
}
/** A PNG whose scanlines are all zero (filter 0): an honest file of any size, tiny compressed for small ones. */
function zeroPng(w, h, depth = 8, colour = 2, level = 9) {
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colour];
  const rowBytes = 1 + Math.ceil((w * ch * depth) / 8);
  const raw = Buffer.alloc(rowBytes * h);
  const parts = [PNG_SIG, chunk('IHDR', ihdr(w, h, depth, colour))];
  if (colour === 3) parts.push(chunk('PLTE', u8(0, 0, 0, 255, 255, 255)));
  parts.push(chunk('IDAT', deflateSync(raw, { level })), chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
/** A PNG header claiming w x h with a few bytes of data: refused from the header, never decoded. */
const claimPng = (w, h) => Buffer.concat([PNG_SIG, chunk('IHDR', ihdr(w, h)), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);

// The good images: a square on a plain background (annotate's corner method cuts it out).
async function scene(w, h, bg, fg, fmt) {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const inside = x >= w / 4 && x < (3 * w) / 4 && y >= h / 4 && y < (3 * h) / 4;
      px.set(inside ? fg : bg, (y * w + x) * 3);
    }
  const s = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return fmt === 'jpeg' ? s.jpeg({ quality: 90 }).toBuffer() : s.png().toBuffer();
}
const goodPng = await scene(64, 48, [240, 240, 240], [200, 30, 30], 'png');
const goodJpg = await scene(64, 48, [20, 20, 20], [40, 200, 60], 'jpeg');
const crop = await sharp(Buffer.alloc(16 * 16 * 4, 200), { raw: { width: 16, height: 16, channels: 4 } }).png().toBuffer();

const img = (name, bytes, expect) => add('image', name, bytes, 'embed-image', expect);
const imgA = (name, bytes, expect) => add('image', name, bytes, 'annotate-image', expect);
img('empty.png', Buffer.alloc(0), REJECTED);
img('empty.jpg', Buffer.alloc(0), REJECTED);
img('text-renamed.png', b('this is not an image\n'), REJECTED);
img('html-renamed.jpg', b('<html><body>404 Not Found</body></html>\n'), REJECTED);
img('truncated-half.png', goodPng.subarray(0, goodPng.length >> 1), REJECTED);
img('truncated-header.png', goodPng.subarray(0, 20), REJECTED);
img('signature-only.png', PNG_SIG, REJECTED);
img('truncated-half.jpg', goodJpg.subarray(0, goodJpg.length >> 1), REJECTED);
img('soi-only.jpg', u8(0xff, 0xd8), REJECTED);
{
  const bad = Buffer.from(goodPng);
  bad[29] ^= 0xff; // IHDR CRC
  img('bad-crc.png', bad, REJECTED);
  const idat = Buffer.from(goodPng);
  idat.fill(0x55, 60, 90); // inside IDAT: corrupt deflate stream
  img('corrupt-idat.png', idat, REJECTED);
  const jpg = Buffer.from(goodJpg);
  jpg.fill(0xaa, 200, 400);
  img('corrupt-scan.jpg', jpg, REJECTED);
}
img('zero-width.png', Buffer.concat([PNG_SIG, chunk('IHDR', ihdr(0, 48)), chunk('IEND', Buffer.alloc(0))]), REJECTED);
img('bad-bit-depth.png', Buffer.concat([PNG_SIG, chunk('IHDR', ihdr(64, 48, 7, 2)), chunk('IDAT', deflateSync(Buffer.alloc(100))), chunk('IEND', Buffer.alloc(0))]), REJECTED);
img('claims-16000x16000.png', claimPng(16000, 16000), REJECTED);
img('claims-1x100000000.png', claimPng(1, 100000000), REJECTED);
img('claims-2-31.png', claimPng(0x7fffffff, 0x7fffffff), REJECTED);
add('image', 'bomb-16000x16000.png.gz', gzipSync(zeroPng(16000, 16000, 8, 2), { level: 9 }), 'embed-image', REJECTED, { gunzip: 'bomb-16000x16000.png' });
add('image', 'bomb-60000x60000-1bit.png.gz', gzipSync(zeroPng(60000, 60000, 1, 0), { level: 9 }), 'embed-image', REJECTED, { gunzip: 'bomb-60000x60000-1bit.png' });
add('image', 'bomb-annotate-16000x16000.png.gz', gzipSync(zeroPng(16000, 16000, 8, 2), { level: 9 }), 'annotate-image', REJECTED, { gunzip: 'bomb-annotate-16000x16000.png' });
img('jpeg-claims-65500x65500.jpg', Buffer.concat([goodJpg.subarray(0, 2), u8(0xff, 0xc0, 0, 17, 8, 0xff, 0xdc, 0xff, 0xdc, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1), u8(0xff, 0xd9)]), REJECTED);
img('svg-huge.svg.png', b('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="100%" height="100%"/></svg>'), REJECTED);
img('svg-external-file.png', b('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="48"><image xlink:href="file:///etc/hostname" width="64" height="48"/></svg>'), REJECTED);
img('svg-entities.png', b('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">]><svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><text>&g;</text></svg>'), REJECTED);
img('svg-plain.png', b('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48" fill="red"/></svg>'), REJECTED);
img('gzip-renamed.png', gzipSync(goodPng), REJECTED);
img('pdf-renamed.png', b('%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n'), REJECTED);
img('bmp.png', Buffer.concat([b('BM'), Buffer.alloc(52)]), REJECTED);
// Odd but valid: read, converted to 8-bit sRGB.
img('grey-16bit.png', await sharp(Buffer.alloc(64 * 48 * 2, 0x80), { raw: { width: 64, height: 48, channels: 1 } }).toColourspace('grey16').png().toBuffer(), OK);
img('rgb-16bit.png', zeroPng(64, 48, 16, 2), OK);
img('palette.png', zeroPng(64, 48, 8, 3), OK);
img('grey-alpha.png', zeroPng(64, 48, 8, 4), OK);
img('rgba.png', zeroPng(64, 48, 8, 6), OK);
img('1bit.png', zeroPng(64, 48, 1, 0), OK);
img('cmyk.jpg', await sharp(goodJpg).toColourspace('cmyk').jpeg().toBuffer(), OK);
img('grey.jpg', await sharp(goodJpg).greyscale().jpeg().toBuffer(), OK);
img('progressive.jpg', await sharp(goodJpg).jpeg({ progressive: true }).toBuffer(), OK);
img('exif-rotated.jpg', await sharp(goodJpg).withMetadata({ orientation: 6 }).jpeg().toBuffer(), OK);
img('png-renamed.jpg', goodPng, OK);
img('webp.png', await sharp(goodPng).webp().toBuffer(), OK);
img('animated.gif', await sharp(Buffer.alloc(16 * 32 * 3, 90), { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif({ loop: 0 }).toBuffer(), OK);
img('tiff.tif', await sharp(goodPng).tiff().toBuffer(), OK);
img('one-pixel.png', zeroPng(1, 1), OK);
{
  // EXIF garbage: an APP1 segment of random bytes after SOI, and one claiming orientation 9.
  const garbage = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 97 + 13) % 256));
  const app1 = Buffer.concat([u8(0xff, 0xe1), u8((garbage.length + 8) >> 8, (garbage.length + 8) & 0xff), b('Exif\0\0'), garbage]);
  img('exif-garbage.jpg', Buffer.concat([goodJpg.subarray(0, 2), app1, goodJpg.subarray(2)]), OK);
  const tiff = Buffer.concat([b('II'), u8(42, 0, 8, 0, 0, 0), u8(1, 0), u8(0x12, 0x01, 3, 0, 1, 0, 0, 0, 9, 0, 0, 0), u8(0, 0, 0, 0)]);
  const app1o = Buffer.concat([u8(0xff, 0xe1), u8(0, tiff.length + 8), b('Exif\0\0'), tiff]);
  img('exif-orientation-9.jpg', Buffer.concat([goodJpg.subarray(0, 2), app1o, goodJpg.subarray(2)]), OK);
  const huge = Buffer.concat([b('II'), u8(42, 0, 8, 0, 0, 0), u8(1, 0), u8(0x0e, 0x01, 2, 0, 0xff, 0xff, 0xff, 0x7f, 0x20, 0, 0, 0), u8(0, 0, 0, 0)]);
  const app1h = Buffer.concat([u8(0xff, 0xe1), u8(0, huge.length + 8), b('Exif\0\0'), huge]);
  img('exif-huge-count.jpg', Buffer.concat([goodJpg.subarray(0, 2), app1h, goodJpg.subarray(2)]), OK);
}
add('image', 'fifo.png', null, 'embed-image', REJECTED, { make: 'fifo' });
add('image', 'dev-zero.png', null, 'embed-image', REJECTED, { make: 'link:/dev/zero', ...ROOTS });
add('image', 'link-out.png', null, 'embed-image', REJECTED, { make: 'link:outside', ...ROOTS });
imgA('annotate-truncated.png', goodPng.subarray(0, 100), REJECTED);
imgA('annotate-text.jpg', b('nope'), REJECTED);
imgA('annotate-claims-16000.png', claimPng(16000, 16000), REJECTED);
imgA('annotate-svg.png', b('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48" fill="red"/></svg>'), REJECTED);
imgA('annotate-cmyk.jpg', await sharp(goodJpg).toColourspace('cmyk').jpeg().toBuffer(), OK);
imgA('annotate-16bit.png', await sharp(goodPng).toColourspace('rgb16').png().toBuffer(), OK);
add('image', 'annotate-fifo.png', null, 'annotate-image', REJECTED, { make: 'fifo' });
add('image', 'annotate-link-out.png', null, 'annotate-image', REJECTED, { make: 'link:outside', ...ROOTS });
add('image', 'annotate-dev-zero.png', null, 'annotate-image', REJECTED, { make: 'link:/dev/zero', ...ROOTS });
// The pixel limit names the option that raises it, and the option does raise it.
const big = await scene(128, 96, [240, 240, 240], [30, 30, 200], 'png');
add('image', 'limit-128x96.png', big, 'embed-image', REJECTED, { args: ['--max-pixels', '4000'], stdout: '--max-pixels' });
add('image', 'limit-raised-128x96.png', big, 'embed-image', OK, { args: ['--max-pixels', '12288'] });
add('image', 'annotate-limit-128x96.png', big, 'annotate-image', REJECTED, { args: ['--max-pixels', '4000'], stdout: '--max-pixels' });
// The same through worker threads (the default outside these tests): a failure in a worker is recorded as well.
add('image', 'workers-truncated.png', goodPng.subarray(0, goodPng.length >> 1), 'embed-image', REJECTED, { args: ['--workers', '2'] });
add('image', 'workers-claims-16000.png', claimPng(16000, 16000), 'embed-image', REJECTED, { args: ['--workers', '2'] });
add('image', 'workers-annotate-text.png', b('nope'), 'annotate-image', REJECTED, { args: ['--workers', '2'] });
add('image', 'workers-annotate-bomb.png.gz', gzipSync(zeroPng(16000, 16000, 8, 2), { level: 9 }), 'annotate-image', REJECTED, { gunzip: 'workers-annotate-bomb.png', args: ['--workers', '2'] });
// Real images under a COCO file: paste records the broken one and renders the other.
add('image', 'paste-truncated.jpg', goodJpg.subarray(0, 300), 'paste-image', REJECTED);
add('image', 'paste-claims-16000.png', claimPng(16000, 16000), 'paste-image', REJECTED);
add('image', 'real-crops-text.jpg', b('nope'), 'real-crops-image', REJECTED);
add('image', 'paste-limit-128x96.png', big, 'paste-image', REJECTED, { args: ['--max-pixels', '4000'], reason: '--max-pixels' });
add('image', 'real-crops-limit-128x96.png', big, 'real-crops-image', REJECTED, { args: ['--max-pixels', '4000'], reason: '--max-pixels' });

// ---------------------------------------------------------------------------
// Instance pools (paste --pool): X-Paste's {"<category>": ["*crop.png"]} JSON. The pool folder also holds
// text.png (text), fifo.png (a FIFO) and zero.png (a link to /dev/zero), made at test time.

const pool = (name, v, expect) => add('pool', name, Buffer.isBuffer(v) ? v : J(v), 'paste-pool', expect);
pool('not-json.json', b('{"0": ["*crop-cat.png"'), err('E_FORMAT'));
pool('array.json', [['*crop-cat.png']], err('E_FORMAT'));
pool('null.json', b('null'), err('E_FORMAT'));
pool('entries-not-list.json', { 0: '*crop-cat.png' }, err('E_FORMAT'));
pool('entries-numbers.json', { 0: [1, 2] }, err('E_FORMAT'));
pool('empty.json', {}, err('E_FORMAT'));
pool('all-unusable.json', { 0: ['*text.png', '*fifo.png'], 1: ['*zero.png', 'crop-dog.png'] }, err('E_FORMAT'));
pool('text-crop.json', { 0: ['*crop-cat.png', '*text.png'], 1: ['*crop-dog.png'] }, REJECTED);
pool('fifo-crop.json', { 0: ['*crop-cat.png', '*fifo.png'], 1: ['*crop-dog.png'] }, REJECTED);
pool('dev-zero-crop.json', { 0: ['*crop-cat.png', '*zero.png'], 1: ['*crop-dog.png'] }, REJECTED);
pool('absolute-dev-zero.json', { 0: ['*crop-cat.png', '*/dev/zero'], 1: ['*crop-dog.png'] }, REJECTED);
pool('missing-crop.json', { 0: ['*crop-cat.png', '*nope.png'], 1: ['*crop-dog.png'] }, REJECTED);
pool('svg-crop.json', { 0: ['*crop-cat.png', '*vector.png'], 1: ['*crop-dog.png'] }, REJECTED);
pool('unknown-category.json', { 0: ['*crop-cat.png'], 1: ['*crop-dog.png'], 77: ['*crop-dog.png'] }, REJECTED);
add('pool', 'fifo.json', null, 'paste-pool', err('E_IO'), { make: 'fifo' });

// ---------------------------------------------------------------------------
// Model files (embed --model DIR/model.onnx, annotate --segmenter, --sam-encoder): never a crash or a hang.

const model = (name, bytes, scenario = 'embed-model', code = 'E_MODEL') => add('model', name, bytes, scenario, err(code));
model('empty.onnx', Buffer.alloc(0));
model('text.onnx', b('this is not a model\n'));
model('protobuf-no-graph.onnx', u8(0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73, 0x74));
model('protobuf-truncated.onnx', u8(0x08, 0x07, 0x3a, 0xff, 0xff, 0x03, 0x0a));
model('random.onnx', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
add('model', 'fifo.onnx', null, 'embed-model', err('E_IO'), { make: 'fifo' });
add('model', 'dev-zero.onnx', null, 'embed-model', err('E_IO'), { make: 'link:/dev/zero' });
model('segmenter-text.onnx', b('not a model'), 'annotate-segmenter');
model('segmenter-no-graph.onnx', u8(0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73, 0x74), 'annotate-segmenter');
add('model', 'segmenter-fifo.onnx', null, 'annotate-segmenter', err('E_IO'), { make: 'fifo' });
model('sam-encoder-text.onnx', b('not a model'), 'annotate-sam');
add('model', 'sam-encoder-dev-zero.onnx', null, 'annotate-sam', err('E_IO'), { make: 'link:/dev/zero' });

// ---------------------------------------------------------------------------
// The other files commands read: priors, meanings and candidate lists of plan, relation sources of score pool,
// plans and relation pools of score clis-l, indexes of score near-dup and inter-sim, labels of gap.

const other = (name, bytes, argv, expect) => add('other', name, bytes, 'argv', expect, { argv });
const planWith = (opt, strategy = 'template') => ['plan', '--coco', '{good}/coco.json', '--out', '{ws}/plan.jsonl', '--strategy', strategy, ...opt, '-q'];
const scenePriors = planWith(['--priors', '{file}'], 'scene');
other('priors-not-json.json', b('{"categories": ['), scenePriors, err('E_FORMAT'));
other('priors-array.json', J([1, 2]), scenePriors, err('E_FORMAT'));
other('priors-wrong-types.json', J({ categories: 'all', sets: 7 }), scenePriors, err('E_FORMAT'));
add('other', 'priors-fifo.json', null, 'argv', err('E_IO'), { make: 'fifo', argv: scenePriors });
add('other', 'priors-dev-zero.json', null, 'argv', err('E_IO'), { make: 'link:/dev/zero', argv: scenePriors });
const meanings = planWith(['--meanings', '{file}']);
other('meanings-not-json.json', b('meanings:'), meanings, err('E_FORMAT'));
other('meanings-wrong-shape.json', J({ meanings: [1, 2, 3] }), meanings, err('E_FORMAT'));
add('other', 'meanings-fifo.json', null, 'argv', err('E_IO'), { make: 'fifo', argv: meanings });
const extra = planWith(['--extra-categories', '1', '--extra-candidates', '{file}']);
add('other', 'extra-candidates-fifo.txt', null, 'argv', err('E_IO'), { make: 'fifo', argv: extra });
add('other', 'extra-candidates-dev-zero.txt', null, 'argv', err('E_IO'), { make: 'link:/dev/zero', argv: extra });
const vg = ['score', 'pool', '--vg', '{file}', '--out', '{ws}/pool.json'];
other('vg-not-json.json', b('[{"relationships": ['), vg, err('E_FORMAT'));
other('vg-object.json', J({ relationships: [] }), vg, err('E_FORMAT'));
add('other', 'vg-fifo.json', null, 'argv', err('E_IO'), { make: 'fifo', argv: vg });
const clisPlan = ['score', 'clis-l', '--plan', '{file}', '--pool', '{good}/relations.json', '--exact-names', '--table', '{ws}/t.jsonl'];
other('clis-plan-not-json.jsonl', b('{"id": "a", \n'), clisPlan, err('E_FORMAT'));
add('other', 'clis-plan-fifo.jsonl', null, 'argv', err('E_IO'), { make: 'fifo', argv: clisPlan });
const clisPool = ['score', 'clis-l', '--plan', '{good}/plan.jsonl', '--pool', '{file}', '--exact-names', '--table', '{ws}/t.jsonl'];
other('clis-pool-not-json.json', b('{"left of": '), clisPool, err('E_FORMAT'));
other('clis-pool-array.json', J([1, 2, 3]), clisPool, err('E_FORMAT'));
add('other', 'clis-pool-fifo.json', null, 'argv', err('E_IO'), { make: 'fifo', argv: clisPool });
const nearDup = ['score', 'near-dup', '--emb', '{good}/d.npy', '--index', '{file}', '--table', '{ws}/t.jsonl'];
other('index-short.jsonl', L({ file: 'a.png', category: 'cat' }), nearDup, err('E_SHAPE'));
other('index-bad-line.jsonl', b('{"file": "a.png"\n'), nearDup, err('E_FORMAT'));
add('other', 'index-fifo.jsonl', null, 'argv', err('E_IO'), { make: 'fifo', argv: nearDup });
const gapLabels = ['gap', '--real', '{good}/d.npy', '--synthetic', '{good}/d.npy', '--real-labels', '{file}', '--synthetic-labels', '{good}/labels.npy', '--out', '{ws}/gap.json', '-q'];
other('gap-labels-text.npy', b('0 1 0 1'), gapLabels, err('E_FORMAT'));
other('gap-labels-short.npy', npy(dict('<i8', '(3,)'), i64(0, 1, 0)), gapLabels, err('E_SHAPE'));
add('other', 'gap-labels-fifo.npy', null, 'argv', err('E_IO'), { make: 'fifo', argv: gapLabels });

// ---------------------------------------------------------------------------
// Plans (generate --plan, against a local A1111 stand-in): a bad line is a recorded invalid line, a job whose
// input image cannot be read a recorded failure; the good job beside it is generated. The plan's folder holds
// src.png (a good image), fifo.png (a FIFO) and zero.png (a link to /dev/zero), made at test time.

const goodJob = { id: 'good', kind: 'txt2img', classes: ['cat'], prompt: 'a photo of a cat', seed: 1, width: 64, height: 48 };
const edit = (id, extra) => ({ id, kind: 'img2img', classes: ['dog'], prompt: 'a photo of a dog', seed: 2, width: 64, height: 48, source_image: 'src.png', ...extra });
const genPlan = (name, bytes, expect) => add('plan', name, bytes, 'generate-plan', expect);
genPlan('empty.jsonl', Buffer.alloc(0), err('E_FORMAT'));
genPlan('all-invalid.jsonl', L({ id: 'x' }, 'not json'), err('E_FORMAT'));
genPlan('bad-json-line.jsonl', L(goodJob, '{"id": "broken"'), REJECTED);
genPlan('array-line.jsonl', L(goodJob, [1, 2]), REJECTED);
genPlan('missing-prompt.jsonl', L(goodJob, { ...goodJob, id: 'np', prompt: '' }), REJECTED);
genPlan('bad-id.jsonl', L(goodJob, { ...goodJob, id: '../../etc/passwd' }), REJECTED);
genPlan('huge-size.jsonl', L(goodJob, { ...goodJob, id: 'big', width: 100000, height: 100000 }), REJECTED);
genPlan('negative-seed.jsonl', L(goodJob, { ...goodJob, id: 'neg', seed: -1 }), REJECTED);
genPlan('img2img-no-source.jsonl', L(goodJob, { ...edit('ns'), source_image: undefined }), REJECTED);
genPlan('source-missing.jsonl', L(goodJob, edit('sm', { source_image: 'nope.png' })), REJECTED);
genPlan('source-dev-zero.jsonl', L(goodJob, edit('sz', { source_image: '/dev/zero' })), REJECTED);
genPlan('source-link-dev-zero.jsonl', L(goodJob, edit('sl', { source_image: 'zero.png' })), REJECTED);
genPlan('source-fifo.jsonl', L(goodJob, edit('sf', { source_image: 'fifo.png' })), REJECTED);
genPlan('source-folder.jsonl', L(goodJob, edit('sd', { source_image: '.' })), REJECTED);
genPlan('mask-fifo.jsonl', L(goodJob, edit('mf', { kind: 'inpaint', mask: 'fifo.png' })), REJECTED);
genPlan('bom.jsonl', Buffer.concat([u8(0xef, 0xbb, 0xbf), L(goodJob)]), OK);
genPlan('crlf.jsonl', b(JSON.stringify(goodJob) + '\r\n'), OK);
add('plan', 'fifo.jsonl', null, 'generate-plan', err('E_IO'), { make: 'fifo' });
add('plan', 'dev-zero.jsonl', null, 'generate-plan', err('E_IO'), { make: 'link:/dev/zero' });

// ---------------------------------------------------------------------------
// ONNX models for bnstats --model: the protobuf wire format written by hand (field numbers of onnx.proto3).

const pbVarint = (n) => {
  const out = [];
  do {
    let x = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) x |= 0x80;
    out.push(x);
  } while (n > 0);
  return Buffer.from(out);
};
const pbLen = (field, payload) => Buffer.concat([pbVarint(field * 8 + 2), pbVarint(payload.length), payload]);
const pbInt = (field, v) => Buffer.concat([pbVarint(field * 8), pbVarint(v)]);
const pbStr = (field, s) => pbLen(field, Buffer.from(s, 'utf8'));
const pbNode = (op, inputs, outputs) => pbLen(1, Buffer.concat([...inputs.map((i) => pbStr(1, i)), ...outputs.map((o) => pbStr(2, o)), pbStr(4, op)]));
// ValueInfo with a float tensor type of rank 4 (TypeProto.tensor_type = 1: elem_type = 1, shape = 2 of dims with dim_param = 2).
const pbValue = (field, name) =>
  pbLen(field, Buffer.concat([pbStr(1, name), pbLen(2, pbLen(1, Buffer.concat([pbInt(1, 1), pbLen(2, Buffer.concat(['N', 'C', 'H', 'W'].map((d) => pbLen(1, pbStr(2, d)))))])))]));
const pbModel = (graph) => Buffer.concat([pbInt(1, 8), pbLen(8, Buffer.concat([pbStr(1, ''), pbInt(2, 17)])), pbLen(7, graph)]);

add('onnx', 'empty.onnx', Buffer.alloc(0), 'bnstats-model', err('E_MODEL'));
add('onnx', 'text.onnx', b('this is not a model\n'), 'bnstats-model', err('E_MODEL'));
add('onnx', 'truncated-varint.onnx', u8(0x3a, 0xff, 0xff), 'bnstats-model', err('E_MODEL'));
add('onnx', 'graph-length-past-end.onnx', Buffer.concat([u8(0x3a), pbVarint(2 ** 40), b('xx')]), 'bnstats-model', err('E_MODEL'));
add('onnx', 'wire-type-7.onnx', u8(0x3f, 0x00), 'bnstats-model', err('E_MODEL'));
add('onnx', 'varint-11-bytes.onnx', u8(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 'bnstats-model', err('E_MODEL'));
add('onnx', 'no-graph.onnx', Buffer.concat([pbInt(1, 8), pbStr(2, 'producer')]), 'bnstats-model', err('E_MODEL'));
add('onnx', 'no-batchnorm.onnx', pbModel(Buffer.concat([pbNode('Relu', ['x'], ['y']), pbStr(2, 'g'), pbValue(11, 'x'), pbValue(12, 'y')])), 'bnstats-model', err('E_MODEL'));
add('onnx', 'batchnorm-without-inputs.onnx', pbModel(Buffer.concat([pbNode('BatchNormalization', [], ['y']), pbStr(2, 'g'), pbValue(11, 'x'), pbValue(12, 'y')])), 'bnstats-model', err('E_MODEL'));
add(
  'onnx',
  'batchnorm-dangling-params.onnx',
  pbModel(Buffer.concat([pbNode('BatchNormalization', ['x', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], ['y']), pbStr(2, 'g'), pbValue(11, 'x'), pbValue(12, 'y')])),
  'bnstats-model',
  err('E_MODEL'),
);
add('onnx', 'batchnorm-in-other-domain.onnx', pbModel(Buffer.concat([pbLen(1, Buffer.concat([pbStr(1, 'x'), pbStr(2, 'y'), pbStr(4, 'BatchNormalization'), pbStr(7, 'com.example')])), pbStr(2, 'g'), pbValue(11, 'x'), pbValue(12, 'y')])), 'bnstats-model', err('E_MODEL'));

// ---------------------------------------------------------------------------
// The good inputs every case runs beside.

put(goodDir, 'q.npy', npy(dict('<f4', '(4, 8)'), rows(4, 8)));
put(goodDir, 'd.npy', npy(dict('<f4', '(10, 8)'), rows(10, 8)));
put(goodDir, 'labels.npy', npy(dict('<i8', '(10,)'), i64(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)));
put(goodDir, 'act.npy', npy(dict('<f4', '(4, 3, 2, 2)'), rows(4, 12)));
put(goodDir, 'images/a.png', goodPng);
put(goodDir, 'images/b.jpg', goodJpg);
put(goodDir, 'coco.json', J(goodCoco));
put(goodDir, 'pool/crop-cat.png', crop);
put(goodDir, 'pool/crop-dog.png', crop);
put(goodDir, 'pool/pool.json', J({ 0: ['*crop-cat.png'], 1: ['*crop-dog.png'] }));
put(goodDir, 'relations.json', J({ 'left of': [{ subject: 'cat', object: 'dog', subject_box: [0.1, 0.1, 0.3, 0.3], object_box: [0.5, 0.1, 0.3, 0.3] }] }));
put(goodDir, 'plan.jsonl', L({ id: 'j1', kind: 'txt2img', prompt: 'a cat left of a dog', seed: 1, width: 64, height: 64, classes: ['cat', 'dog'] }));
put(goodDir, 'scores.jsonl', L({ id: 'a.png', category: 'cat', clip_score: 30, area_fraction: 0.5 }, { id: 'b.png', category: 'cat', clip_score: 31, area_fraction: 0.4 }));

writeFileSync(join(here, 'cases.json'), JSON.stringify(cases, null, 1) + '\n');
const kinds = {};
for (const c of cases) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
console.log(`${cases.length} cases`, kinds);
