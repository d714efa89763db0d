/**
 * Throws random arguments at every native entry point: each call must either
 * return or throw a GenaugError with a listed code — never crash the process
 * (a crash kills this forked test worker and fails the run) and never throw
 * anything else.
 */
import { describe, expect, it } from 'vitest';

import { ERROR_CODES, GenaugError } from '../ts/index.js';
import { native } from '../ts/native/load.js';
import { seededRandom } from '../ts/util/random.js';

const r = seededRandom(2024);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

function anyNumber(): unknown {
  return pick([0, 1, 2, 3, 4, 7, 16, -1, -(2 ** 31), 2 ** 31, 2 ** 40, 2 ** 53, 1.5, Number.NaN, Infinity, -Infinity, 65536, 65537, 1e-300]);
}

function anyArray(): unknown {
  const n = pick([0, 1, 3, 4, 12, 16, 48, 64]);
  const kind = pick(['f32', 'f32', 'f32', 'i32', 'f64', 'u8', 'i64', 'shared', 'view', 'nan']);
  switch (kind) {
    case 'f32':
      return new Float32Array(n).map(() => r() - 0.5);
    case 'nan':
      return new Float32Array(n).map(() => (r() < 0.2 ? Number.NaN : r()));
    case 'i32':
      return new Int32Array(n).map(() => Math.floor(r() * 5) - 1);
    case 'f64':
      return new Float64Array(n);
    case 'u8':
      return new Uint8Array(n);
    case 'i64':
      return new BigInt64Array(n);
    case 'shared':
      return new Float32Array(new SharedArrayBuffer(4 * n)).fill(0.25);
    default: {
      const base = new Float32Array(n + 3).fill(0.5);
      return base.subarray(3);
    }
  }
}

function anyValue(): unknown {
  return pick([anyNumber, anyArray, anyArray, () => undefined, () => null, () => 'x', () => ({}), () => [1, 2], () => true, anyOptions])();
}

function anyOptions(): unknown {
  const o: Record<string, unknown> = {};
  for (const key of ['normalize', 'threads', 'isa', 'blockBytes', 'cancel', 'queryName', 'dbName', 'queryRowOffset', 'dbRowOffset']) {
    if (r() < 0.3) o[key] = pick([anyNumber(), 'auto', 'avx2', 'nope', true, new Int32Array(1), new Float32Array(1), null, {}]);
  }
  if (r() < 0.1) {
    Object.defineProperty(o, 'threads', {
      get() {
        throw new Error('getter');
      },
      enumerable: true,
    });
  }
  return o;
}

/** Arguments shaped like a real call, with some fields perturbed. */
function plausible(kind: 'topk' | 'class' | 'pairs' | 'rowDot'): unknown[] {
  const opts = () => (r() < 0.5 ? { threads: pick([0, 1, 2]) } : anyOptions());
  const dim = pick([1, 3, 4, 16]);
  const m = pick([0, 1, 2, 3]);
  const n = pick([0, 1, 3, 4]);
  const q = new Float32Array(m * dim).map(() => r() - 0.5);
  const d = new Float32Array(n * dim).map(() => r() - 0.5);
  const args: unknown[] = [q, m, dim, d, n, dim];
  if (kind === 'topk') args.push(pick([1, 2, 5]), opts());
  if (kind === 'class') args.push(new Int32Array(n).map(() => Math.floor(r() * 3)), pick([3, 3, 2]), opts());
  if (kind === 'pairs') args.push(pick([0.5, -1, 2, 0.9, Number.NaN, 1e40]), pick([-1, -1, 0]), pick([0, 100, 100]), opts());
  if (kind === 'rowDot') args.push(opts());
  for (let i = 0; i < args.length; i++) if (r() < 0.05) args[i] = anyValue();
  return args;
}

function expectCleanFailure(e: unknown, where: string): void {
  if (e instanceof GenaugError) {
    expect(Object.keys(ERROR_CODES), where).toContain(e.code);
    return;
  }
  // Our own getter's error propagates as itself: that is the caller's exception, not a crash.
  expect((e as Error).message, `${where}: ${String(e)}`).toBe('getter');
}

describe('native entry points under random arguments', () => {
  it('never crash and only throw GenaugError', async () => {
    const addon = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const fns: Array<[string, 'topk' | 'class' | 'pairs' | 'rowDot']> = [
      ['topk', 'topk'], ['topkSync', 'topk'], ['classMean', 'class'], ['classMeanSync', 'class'], ['classMax', 'class'],
      ['classMaxSync', 'class'], ['pairs', 'pairs'], ['pairsSync', 'pairs'], ['rowDot', 'rowDot'], ['rowDotSync', 'rowDot'],
    ];
    let ok = 0;
    let rejected = 0;
    for (let iter = 0; iter < 3000; iter++) {
      const [name, kind] = pick(fns);
      const args = r() < 0.8 ? plausible(kind) : Array.from({ length: Math.floor(r() * 11) }, anyValue);
      const where = `${name}(${args.map((a) => (ArrayBuffer.isView(a) ? a.constructor.name : typeof a)).join(', ')})`;
      try {
        const out = addon[name]!(...args);
        if (out instanceof Promise) await out;
        ok++;
      } catch (e) {
        expectCleanFailure(e, where);
        rejected++;
      }
    }
    for (let iter = 0; iter < 1000; iter++) {
      const sync = r() < 0.5;
      const n = pick([0, 1, 2, 3]);
      const c = pick([1, 2, 3]);
      const sp = pick([1, 4]);
      const data = r() < 0.7 ? new Float32Array(n * c * sp).map(() => (r() < 0.05 ? Number.NaN : r())) : r() < 0.5 ? new Uint16Array(n * c * sp) : anyArray();
      const args: unknown[] = [data, n, c, sp, pick(['nchw', 'nhwc', 'nchw', 'x']), pick([null, Int32Array.from({ length: n }, () => pick([0, 1])), anyArray()]), pick([1, 2, 2, 0]), r() < 0.5 ? { nonfinite: pick(['skip', 'reject']) } : anyOptions()];
      for (let i = 0; i < args.length; i++) if (r() < 0.05) args[i] = anyValue();
      try {
        const out = (sync ? native().bnStatsSync : native().bnStats) as (...a: unknown[]) => unknown;
        const v = out(...args);
        if (v instanceof Promise) await v;
        ok++;
      } catch (e) {
        expectCleanFailure(e, 'bnStats');
        rejected++;
      }
    }
    const maskFns = ['maskInvert', 'maskLargestComponent', 'maskFillHoles', 'maskStats', 'maskPostProcess', 'rleEncode'] as const;
    for (let iter = 0; iter < 1200; iter++) {
      const h = pick([0, 1, 3, 5]);
      const w = pick([1, 2, 7]);
      const n = pick([1, 2]);
      const masks = new Uint8Array(n * h * w).map(() => (r() < 0.5 ? 1 : 0));
      const kind = r();
      let args: unknown[];
      let name: string;
      if (kind < 0.5) {
        name = pick(maskFns);
        args = [masks, n, h, w, r() < 0.5 ? { connectivity: pick([4, 8, 6]), minFraction: pick([0, 0.5, 2]), rle: pick(['none', 'string', 'counts', 'bad']) } : anyOptions()];
      } else if (kind < 0.7) {
        name = 'maskCornerForeground';
        const c = pick([3, 4, 2]);
        args = [new Uint8Array(h * w * c).map(() => Math.floor(r() * 256)), h, w, c, { tolerance: pick([0, 10, 300, -1]) }];
      } else if (kind < 0.85) {
        name = 'rleDecode';
        args = [[pick(['', '0', 'PP0', '1', 'oo', String.fromCharCode(200)]), Uint32Array.from([h * w]), anyArray()].slice(0, pick([1, 2, 3])), h, w];
      } else {
        name = pick(['rleFromString', 'rleArea', 'rleToBbox']);
        args = [pick(['', '52', 'a1', '0000', Uint32Array.from([1, 2]), anyValue()]), h, w];
      }
      if (name === 'maskCornerForeground' || kind < 0.5) for (let i = 0; i < args.length; i++) if (r() < 0.05) args[i] = anyValue();
      const sync = r() < 0.5 || name.startsWith('rleFrom') || name === 'rleArea' || name === 'rleToBbox';
      const fn = (native() as unknown as Record<string, (...a: unknown[]) => unknown>)[sync && !name.startsWith('rleFrom') && name !== 'rleArea' && name !== 'rleToBbox' ? `${name}Sync` : name]!;
      try {
        const v = fn(...args);
        if (v instanceof Promise) await v;
        ok++;
      } catch (e) {
        expectCleanFailure(e, name);
        rejected++;
      }
    }
    for (let iter = 0; iter < 500; iter++) {
      const bytes = new Uint8Array(Math.floor(r() * 40)).map(() => Math.floor(r() * 256));
      try {
        (native().parseNpyHeader as (...a: unknown[]) => unknown)(r() < 0.9 ? bytes : anyValue(), r() < 0.9 ? 'f.npy' : anyValue());
        ok++;
      } catch (e) {
        expectCleanFailure(e, 'parseNpyHeader');
        rejected++;
      }
    }
    for (let iter = 0; iter < 600; iter++) {
      const h = pick([0, 1, 3, 8]);
      const w = pick([0, 1, 5, 8]);
      const inst = (): Record<string, unknown> => {
        const cw = pick([0, 1, 2, 3]), ch = pick([0, 1, 3]);
        const o: Record<string, unknown> = {
          rgba: new Uint8Array(cw * ch * 4).map(() => Math.floor(r() * 256)), width: cw, height: ch,
          targetWidth: pick([0, 1, 4, 9, -1, 2 ** 21, 1.5]), targetHeight: pick([0, 1, 4, 9]), flip: pick([true, false, undefined, 1]),
          cx: pick([0, 3, -5, 100, 2.5, Number.NaN, 1e13]), cy: pick([0, 3, 7, -2]),
        };
        for (const k of Object.keys(o)) if (r() < 0.04) o[k] = anyValue();
        return o;
      };
      const scene: Record<string, unknown> = {
        image: new Uint8Array(h * w * 3), width: w, height: h,
        instances: Array.from({ length: pick([0, 1, 3]) }, inst),
      };
      if (r() < 0.5) scene.masks = Array.from({ length: pick([0, 1, 2]) }, () => new Uint8Array(h * w).map(() => (r() < 0.5 ? 1 : 0)));
      else if (r() < 0.5) scene.boxes = Float64Array.from({ length: pick([0, 4, 8, 3]) }, () => pick([0, 1, 2.5, -3, 20, Number.NaN]));
      for (const k of Object.keys(scene)) if (r() < 0.04) scene[k] = anyValue();
      const opts = r() < 0.6 ? { blend: pick(['basic', 'alpha', 'gaussian', 'x']), sigma: pick([undefined, 1, 0, 100]), threads: pick([1, 2]) } : anyOptions();
      const args: unknown[] = r() < 0.9 ? [pick([[scene], [scene, scene], scene]), opts] : [anyValue(), anyValue()];
      try {
        const v = (r() < 0.5 ? native().compositeBatchSync : native().compositeBatch)(...(args as [never, never]));
        if (v instanceof Promise) await v;
        ok++;
      } catch (e) {
        expectCleanFailure(e, 'compositeBatch');
        rejected++;
      }
    }
    // Both outcomes occur: the generator reaches valid calls and invalid ones.
    expect(ok).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});
