/**
 * Fuzzing the parsers written in TypeScript (safetensors, COCO) with the
 * deterministic mutation fuzzer of test/fuzz/engine.ts: every input gives a
 * result or a GenaugError with a listed code, never another exception, and
 * what is accepted passes each target's invariants. GENAUG_FUZZ_RUNS sets
 * the runs per target (default 10,000 here; `npm run fuzz` runs 1 M each).
 */
import { writeFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { readSafetensors, decodeSafetensors } from '../ts/io/safetensors.js';
import { parseCocoBuffer } from '../ts/io/coco.js';
import { GenaugError } from '../ts/native/errors.js';
import { cocoTarget } from './fuzz/coco.js';
import { runFuzz, summary, type FuzzTarget } from './fuzz/engine.js';
import { safetensorsTarget } from './fuzz/safetensors.js';
import { tempFolder } from './helpers.js';

const RUNS = Number(process.env.GENAUG_FUZZ_RUNS ?? 10_000);
const tmp = tempFolder('genaug-fuzz-io-');

function fuzz(target: FuzzTarget) {
  const r = runFuzz(target, RUNS, Number(process.env.GENAUG_FUZZ_SEED ?? 1));
  console.log(summary(r));
  for (const c of r.examples) console.log(`  run ${c.run}: ${c.error}\n  input: ${Buffer.from(c.input.subarray(0, 400)).toString('latin1')}`);
  return r;
}

describe('fuzzing the TypeScript parsers', () => {
  it('safetensors: every mutated file is decoded or refused with a code', () => {
    const r = fuzz(safetensorsTarget);
    expect(r.examples).toEqual([]);
    expect(r.crashes).toBe(0);
    // The mutations reach past the length check: some files are accepted, some refused by the JSON and layout checks.
    expect(r.accepted).toBeGreaterThan(RUNS / 100);
    expect(r.codes.E_FORMAT).toBeGreaterThan(RUNS / 10);
    expect(r.codes.E_SHAPE ?? 0).toBeGreaterThan(0);
  }, 600_000);

  it('COCO: every mutated annotation file is read or refused with a code, and agrees with parseCoco', () => {
    const r = fuzz(cocoTarget);
    expect(r.examples).toEqual([]);
    expect(r.crashes).toBe(0);
    expect(r.accepted).toBeGreaterThan(RUNS / 10);
    expect(r.codes.E_FORMAT).toBeGreaterThan(RUNS / 100);
  }, 600_000);

  it('decodeSafetensors and readSafetensors give the same outcome (the fuzzed path is the file reader)', async () => {
    const rng = (() => {
      let s = 7;
      return () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    })();
    let agreed = 0;
    for (let i = 0; i < 150; i++) {
      let input = safetensorsTarget.seeds[i % safetensorsTarget.seeds.length]!;
      for (let k = 0; k < 1 + (i % 3); k++) input = safetensorsTarget.mutate(input, rng);
      const path = tmp.fresh(`f${i}.safetensors`);
      await writeFile(path, input);
      const norm = (f: () => unknown) => {
        try {
          const v = f() as { tensors: Map<string, { dtype: string; shape: number[]; data: ArrayBufferView }>; metadata: unknown };
          return JSON.stringify([[...v.tensors].map(([k, t]) => [k, t.dtype, t.shape, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex')]), v.metadata]);
        } catch (e) {
          return e instanceof GenaugError ? `${e.code}: ${e.message}` : `crash: ${String(e)}`;
        }
      };
      const fromBytes = norm(() => decodeSafetensors(input, path));
      let fromFile: string;
      try {
        fromFile = norm(() => undefined);
        const f = await readSafetensors(path);
        fromFile = norm(() => f);
      } catch (e) {
        fromFile = e instanceof GenaugError ? `${e.code}: ${e.message}` : `crash: ${String(e)}`;
      }
      expect(fromFile).toBe(fromBytes);
      agreed++;
    }
    expect(agreed).toBe(150);
  });

  it('regressions: inputs the fuzzer found', () => {
    const deep = (d: number) => `${'['.repeat(d)}1${']'.repeat(d)}`;
    const coco = (ann: string) =>
      Buffer.from(`{"images":[{"id":1,"file_name":"a.jpg","width":8,"height":8}],"categories":[{"id":1,"name":"a"}],"annotations":[${ann}]}`);
    // A value nested 100,000 deep where a message quotes it (String / JSON.stringify overflow the stack).
    for (const ann of [
      `{"id":1,"image_id":${deep(100_000)},"category_id":1,"bbox":[0,0,1,1]}`,
      `{"id":1,"image_id":1,"category_id":${deep(100_000)},"bbox":[0,0,1,1]}`,
      `{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"iscrowd":${deep(100_000)}}`,
    ]) {
      const idx = parseCocoBuffer(coco(ann), 'deep.json');
      expect(idx.dataset.annotations).toHaveLength(0);
      expect(idx.problems).toHaveLength(1);
      expect(idx.problems[0]!.message.length).toBeLessThan(300);
    }
    // A top-level "__proto__" key is a key like any other: it does not lend "images" to the document.
    const proto = Buffer.from('{"__proto__":{"images":[],"categories":[]}}');
    expect(() => parseCocoBuffer(proto, 'proto.json')).toThrow(/"images" must be an array/);
  });
});
