/**
 * A deterministic, in-process, coverage-free mutation fuzzer for the parsers
 * written in TypeScript (safetensors, COCO): the JavaScript twin of the
 * native replay/mutation driver (native/tests/fuzz_driver_common.h).
 *
 * Runs `runs` inputs: the seeds as they are, then each a seed with one to
 * four mutations. An input passes when the target returns, or throws a
 * GenaugError whose code is listed in ERROR_CODES (a refusal). Anything else
 * is a crash: another exception type (TypeError, RangeError, a stack
 * overflow), a GenaugError with an unlisted code, or a failed invariant
 * (the target throws InvariantError). The same seed gives the same inputs.
 */
import { ERROR_CODES, GenaugError } from '../../ts/native/errors.js';
import { seededRandom } from '../../ts/util/random.js';

export type Rng = () => number;

export class InvariantError extends Error {}

export function invariant(cond: unknown, what: string): asserts cond {
  if (!cond) throw new InvariantError(`invariant violated: ${what}`);
}

export interface Crash {
  run: number;
  input: Uint8Array;
  error: string;
}

export interface FuzzReport {
  name: string;
  execs: number;
  accepted: number;
  /** Refusals by code. */
  codes: Record<string, number>;
  crashes: number;
  /** The first few crashes, with their inputs. */
  examples: Crash[];
}

export interface FuzzTarget {
  name: string;
  seeds: Uint8Array[];
  /** Returns a mutated copy (or the same array changed in place). */
  mutate(input: Uint8Array, rng: Rng): Uint8Array;
  /** Runs the code under test; throws InvariantError when an accepted result is wrong. */
  run(input: Uint8Array): void;
}

const ENC = new TextEncoder();

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)] as T;

/** Byte-level mutations shared by the targets; `tokens` are spliced in as UTF-8. */
export function mutateBytes(b: Uint8Array, rng: Rng, tokens: readonly string[]): Uint8Array {
  const at = (n: number) => int(rng, n + 1);
  switch (int(rng, 8)) {
    case 0: {
      if (b.length === 0) return b;
      const c = b.slice();
      c[int(rng, c.length)]! ^= 1 << int(rng, 8);
      return c;
    }
    case 1: {
      if (b.length === 0) return b;
      const c = b.slice();
      c[int(rng, c.length)] = int(rng, 256);
      return c;
    }
    case 2:
      return b.slice(0, at(b.length));
    case 3:
    case 4: {
      const t = ENC.encode(pick(rng, tokens));
      const i = at(b.length);
      const c = new Uint8Array(b.length + t.length);
      c.set(b.subarray(0, i));
      c.set(t, i);
      c.set(b.subarray(i), i + t.length);
      return c;
    }
    case 5: {
      if (b.length === 0) return b;
      const i = int(rng, b.length);
      const n = 1 + int(rng, Math.min(16, b.length - i));
      const c = new Uint8Array(b.length - n);
      c.set(b.subarray(0, i));
      c.set(b.subarray(i + n), i);
      return c;
    }
    case 6: {
      if (b.length === 0 || b.length > 65536) return b;
      const i = int(rng, b.length);
      const piece = b.slice(i, i + 1 + int(rng, Math.min(32, b.length - i)));
      const j = at(b.length);
      const c = new Uint8Array(b.length + piece.length);
      c.set(b.subarray(0, j));
      c.set(piece, j);
      c.set(b.subarray(j), j + piece.length);
      return c;
    }
    default: {
      // a digit run: numbers that overflow, lose precision or go negative
      const s = ENC.encode(pick(rng, ['9'.repeat(20), '1e309', '-1', '0.5', '4294967296', '9007199254740993', '-0', '1e-400']));
      const i = at(b.length);
      const c = new Uint8Array(b.length + s.length);
      c.set(b.subarray(0, i));
      c.set(s, i);
      c.set(b.subarray(i), i + s.length);
      return c;
    }
  }
}

export function runFuzz(target: FuzzTarget, runs: number, seed = 1): FuzzReport {
  const rng = seededRandom(seed);
  const report: FuzzReport = { name: target.name, execs: 0, accepted: 0, codes: {}, crashes: 0, examples: [] };
  for (let r = 0; r < runs; r++) {
    let input: Uint8Array;
    if (r < target.seeds.length) input = target.seeds[r]!;
    else {
      input = target.seeds[int(rng, target.seeds.length)]!;
      const n = 1 + int(rng, 4);
      for (let k = 0; k < n; k++) input = target.mutate(input, rng);
    }
    report.execs++;
    try {
      target.run(input);
      report.accepted++;
    } catch (e) {
      if (e instanceof GenaugError && !(e instanceof InvariantError) && Object.prototype.hasOwnProperty.call(ERROR_CODES, e.code)) {
        report.codes[e.code] = (report.codes[e.code] ?? 0) + 1;
      } else {
        report.crashes++;
        if (report.examples.length < 5) {
          const error = e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : String(e);
          report.examples.push({ run: r, input: input.slice(), error });
        }
      }
    }
  }
  return report;
}

export function summary(r: FuzzReport): string {
  const codes = Object.entries(r.codes)
    .sort()
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return `fuzz ${r.name}: ${r.execs} execs, ${r.crashes} crashes (${r.accepted} accepted; refused: ${codes || 'none'})`;
}
