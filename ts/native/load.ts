/**
 * The one place that finds and loads the native addon. When it cannot, it
 * throws a single GenaugError (E_NATIVE_LOAD) naming what is missing and the
 * command that fixes it.
 *
 * The addon's Promise-returning functions are wrapped so that a rejection
 * carries the stack of the JavaScript call that started the work (native
 * errors are created on a later tick, with no JavaScript frames of their own).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeAddon, NativeCapabilities } from './addon.js';
import { GenaugError } from './errors.js';

/** The package root (the folder holding package.json), from dist/native/ or ts/native/. */
export const packageRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeAddon | undefined;

/** Where the loader looks, in order. GENAUG_ADDON (a path to a .node file) comes first. */
export function addonCandidates(): string[] {
  const env = process.env.GENAUG_ADDON;
  // An explicit path is the only candidate: silently loading another build
  // would hide the mistake (and defeat the sanitizer run).
  if (env) return [resolve(env)];
  const list: string[] = [];
  list.push(join(packageRoot, 'build', 'Release', 'genaug.node'));
  list.push(join(packageRoot, 'build', 'Debug', 'genaug.node'));
  return list;
}

// --- Caller stacks on async errors ----------------------------------------------

type AnyFn = (...args: unknown[]) => unknown;

/** Appends the frames of `caller` (captured before the native call) to a rejected error's stack. */
function attachCallerStack(e: unknown, caller: { stack?: string }): unknown {
  if (e instanceof Error && caller.stack) {
    const frames = caller.stack.split('\n').slice(1).join('\n');
    if (frames) e.stack = `${e.stack ?? `${e.name}: ${e.message}`}\n${frames}`;
  }
  return e;
}

/**
 * The addon with each Promise-returning function (every `name` that has a
 * `nameSync` twin) wrapped to capture the caller's stack before the call and
 * attach it to a rejection, as sharp does. Everything else is passed through.
 */
function withCallerStacks(addon: NativeAddon): NativeAddon {
  const raw = addon as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'function' && typeof raw[`${name}Sync`] === 'function') {
      const fn = value as AnyFn;
      const wrapped = (...args: unknown[]): Promise<unknown> => {
        const caller: { stack?: string } = {};
        Error.captureStackTrace(caller, wrapped);
        return (fn.apply(addon, args) as Promise<unknown>).catch((e: unknown) => {
          throw attachCallerStack(e, caller);
        });
      };
      Object.defineProperty(wrapped, 'name', { value: name });
      out[name] = wrapped;
    } else {
      out[name] = value;
    }
  }
  return Object.freeze(out) as unknown as NativeAddon;
}

export function native(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    try {
      const addon = require(path) as NativeAddon;
      addon.setErrorClass(GenaugError);
      cached = withCallerStacks(addon);
      return cached;
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  const fix = process.env.GENAUG_ADDON
    ? `GENAUG_ADDON is set to ${process.env.GENAUG_ADDON}; point it at a built genaug.node or unset it.`
    : `Build it with: cd ${packageRoot} && npm run build:native (needs CMake >= 3.18 and a C++17 compiler; no download is needed)`;
  if (failures.length > 0) {
    throw new GenaugError('E_NATIVE_LOAD', `genaug's native addon was found but failed to load:\n  ${failures.join('\n  ')}\n${fix}`, {
      candidates,
    });
  }
  throw new GenaugError(
    'E_NATIVE_LOAD',
    `genaug's native addon was not found (looked for ${candidates.join(', ')}).\n${fix}`,
    { candidates },
  );
}

export interface Capabilities extends NativeCapabilities {
  addonPath: string | undefined;
}

/** What this build and machine can do: the SIMD level in use, CUDA built and usable. */
export function capabilities(): Capabilities {
  const caps = native().capabilities();
  const require = createRequire(import.meta.url);
  const addonPath = addonCandidates().find((p) => require.cache[p] !== undefined);
  return { ...caps, addonPath };
}
