/**
 * `genaug run` is the stand-alone commands chained: the demo run, then the
 * same stages as `genaug annotate`, `genaug embed --coco`, `genaug score
 * against-real`, `genaug filter --rules` and `genaug paste` with the run's
 * settings (read back from the run.yaml the demo wrote), give byte-identical
 * files. A stage that did its work its own way would differ here.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';

const exec = promisify(execFile);
const bin = join(__dirname, '..', 'bin', 'genaug.js');
const genaug = (...args: string[]) => exec(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });

async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out.set(relative(dir, p), createHash('sha256').update(await readFile(p)).digest('hex'));
  }
  return out;
}

/** The files of `a` and `b` by name and content, journals (progress/run records) left out. */
async function sameFiles(a: string, b: string, skip: RegExp = /^(progress\.jsonl|run\.json)$/) {
  const fa = await files(a);
  const fb = await files(b);
  for (const k of [...fa.keys()]) if (skip.test(k)) fa.delete(k);
  for (const k of [...fb.keys()]) if (skip.test(k)) fb.delete(k);
  expect([...fb.keys()].sort()).toEqual([...fa.keys()].sort());
  for (const [k, h] of fa) expect(fb.get(k), k).toBe(h);
}

describe('genaug run = the stand-alone commands chained', () => {
  let root: string;
  let run: string;
  let data: string;
  let chain: string;
  let cfg: Record<string, any>;
  let classes: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'genaug-chain-'));
    await genaug('demo', '--out', join(root, 'demo'), '--images', '16');
    run = join(root, 'demo', 'run');
    data = join(root, 'demo', 'data');
    chain = join(root, 'chain');
    cfg = YAML.parse(await readFile(join(root, 'demo', 'run.yaml'), 'utf8'));
    const coco = JSON.parse(await readFile(join(data, 'annotations.json'), 'utf8')) as { categories: Array<{ id: number; name: string }> };
    classes = coco.categories.sort((x, y) => x.id - y.id).map((c) => c.name).join(',');
  }, 120_000);

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('annotate', async () => {
    const a = cfg.annotate;
    await genaug('annotate', '--images', join(run, 'generate', 'images'), '--manifest', join(run, 'generate', 'manifest.jsonl'), '--out', join(chain, 'annotate'),
      '--method', a.method, '--tolerance', String(a.tolerance), '--min-area-fraction', String(a.min_area_fraction), '--max-area-fraction', String(a.max_area_fraction), '--workers', '0');
    await sameFiles(join(run, 'annotate'), join(chain, 'annotate'));
  }, 120_000);

  it('embed (real crops and generated instances), score against-real, filter --rules', async () => {
    const e = cfg.embed;
    await genaug('embed', '--features', '--coco', join(data, 'annotations.json'), '--images', data + '/images', '--instances', 'crop', '--padding', String(e.real_crop_padding), '--blur', '10',
      '--categories', classes, '--seed', String(cfg.seed), '--out', join(chain, 'embed', 'real.npy'), '--workers', '1');
    await genaug('embed', '--features', '--coco', join(run, 'annotate', 'annotations.json'), '--images', join(run, 'generate', 'images'), '--instances', 'masked',
      '--order', join(run, 'generate', 'generated.jsonl'), '--categories', classes, '--out', join(chain, 'embed', 'generated.npy'), '--workers', '0', '--batch-size', '5');
    await sameFiles(join(run, 'embed'), join(chain, 'embed'));

    await genaug('score', 'against-real', '--gen', join(chain, 'embed', 'generated.npy'), '--real', join(chain, 'embed', 'real.npy'), '--inter', cfg.score.inter, '--knn', String(cfg.score.knn),
      '--dedup-threshold', String(cfg.filter.dedup_threshold), '--categories', classes, '--table', join(chain, 'score', 'scores.jsonl'));
    await sameFiles(join(run, 'score'), join(chain, 'score'));

    const f = cfg.filter;
    await genaug('filter', '--scores', join(chain, 'score', 'scores.jsonl'), '--rules', 'dedup,border,divergen,own-class,knn', '--threshold', String(f.inter_similarity_min),
      '--knn-min', String(f.knn_agreement_min), '--out', join(chain, 'filter', 'kept.jsonl'), '--rejected', join(chain, 'filter', 'rejected.jsonl'));
    await sameFiles(join(run, 'filter'), join(chain, 'filter'), /^decisions\.jsonl$/);
  }, 120_000);

  it('pool, then paste (every export format from one render)', async () => {
    await genaug('pool', '--annotated', join(chain, 'annotate'), '--kept', join(chain, 'filter', 'kept.jsonl'), '--scores', join(chain, 'score', 'scores.jsonl'),
      '--coco', join(data, 'annotations.json'), '--max-per-class', String(cfg.pool.max_per_class), '--out', join(chain, 'pool'));
    await sameFiles(join(run, 'pool'), join(chain, 'pool'));
    const p = cfg.paste;
    await genaug('paste', '--coco', join(data, 'annotations.json'), '--images', join(data, 'images'), '--pool', join(chain, 'pool'), '--priors', join(chain, 'pool', 'size_prior.json'),
      '--out', join(chain, 'paste'), '--seed', String(cfg.seed), '--copies', String(p.copies_per_image), '--max-samples', String(p.max_samples), '--format', (cfg.export.formats as string[]).join(','),
      '--shard-size', String(cfg.export.shard_size), '--workers', '0');
    await sameFiles(join(run, 'paste'), join(chain, 'paste'), /(^|\/)(progress\.jsonl)$/);
  }, 120_000);
});
