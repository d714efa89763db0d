/**
 * The one place that finds and loads the native addon. When it cannot, it
 * throws a single GenaugError (E_NATIVE_LOAD) naming what is missing and the
 * command that fixes it.
 *
 * Two things happen here once, for every caller:
 * - A binary is first loaded in a child process (on the main thread only), so
 *   one that crashes while loading (a segfault or abort in a static
 *   initializer, an illegal instruction) gives E_NATIVE_LOAD instead of killing
 *   this process. The verdict is cached per binary (path, size, mtime) and
 *   Node ABI in a small file under os.tmpdir(), so the check costs one child
 *   process per build, not one per process start.
 * - The addon's Promise-returning functions are wrapped so that a rejection
 *   carries the stack of the JavaScript call that started the work (native
 *   errors are created on a later tick, with no JavaScript frames of their own).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import type { NativeAddon, NativeCapabilities } from './addon.js';
import { GenaugError } from './errors.js';

/** The package root (the folder holding package.json), from dist/native/ or ts/native/. */
export const packageRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeAddon | undefined;

/**
 * The libc tag of a Linux prebuilt binary's file name: '' for glibc (the
 * common case), '.musl' for musl (Alpine). Other platforms have one libc.
 */
export function libcTag(): string {
  if (libc !== undefined) return libc;
  if (process.platform !== 'linux') return (libc = '');
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return (libc = report?.header?.glibcVersionRuntime ? '' : '.musl');
}
let libc: string | undefined;

/**
 * The prebuilt binary for this platform, in the layout prebuild loaders use
 * (node-gyp-build, prebuildify): prebuilds/<platform>-<arch>/genaug.napi[.musl].node.
 * One N-API build serves every Node version with N-API 8.
 */
export function prebuiltPath(root: string = packageRoot): string {
  return join(root, 'prebuilds', `${process.platform}-${process.arch}`, `genaug.napi${libcTag()}.node`);
}

/** The local build (`npm run build:native`). */
export function localBuildPath(root: string = packageRoot): string {
  return join(root, 'build', 'Release', 'genaug.node');
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * Where the loader looks, in order. GENAUG_ADDON (a path to a .node file) is
 * the only candidate when set. Otherwise the prebuilt binary for this platform
 * comes first, then the local build (build/Release, then build/Debug); a local
 * build newer than the prebuilt binary goes first, since it was made on purpose
 * after it (a developer rebuilding the C++, or `npm rebuild --build-from-source`).
 * Each is loaded only after passing its check in a child process, so a
 * prebuilt binary this machine cannot load falls through to the local build.
 */
export function addonCandidates(): string[] {
  const env = process.env.GENAUG_ADDON;
  // An explicit path is the only candidate: silently loading another build
  // would hide the mistake (and defeat the sanitizer run).
  if (env) return [resolve(env)];
  const prebuilt = prebuiltPath();
  const release = localBuildPath();
  const debug = join(packageRoot, 'build', 'Debug', 'genaug.node');
  return mtime(release) > mtime(prebuilt) ? [release, prebuilt, debug] : [prebuilt, release, debug];
}

// --- The check in a child process ---------------------------------------------

/** What loading a binary in a child process showed. */
export interface AddonCheck {
  ok: boolean;
  /** The verdict came from the cache (no child process ran). */
  cached: boolean;
  /** Why it failed. */
  reason?: string;
}

const CHECK_MARK = 'genaug-addon-check:';
const CHECK_TIMEOUT_MS = 60_000;

// Runs in the child (CommonJS, `node -e`): load, register an error class,
// query the capabilities (CPUID, CUDA), and report on stdout.
const CHECK_SCRIPT = `
const mark = ${JSON.stringify(CHECK_MARK)};
try {
  const addon = require(process.argv[1]);
  class CheckError extends Error { constructor(code, message) { super(message); this.code = code; } }
  addon.setErrorClass(CheckError);
  const caps = addon.capabilities();
  process.stdout.write(mark + 'ok ' + JSON.stringify({ isa: caps.isa }) + '\\n');
} catch (e) {
  process.stdout.write(mark + 'error ' + JSON.stringify(String(e && e.message || e)) + '\\n');
  process.exitCode = 3;
}`;

/** The cache key of a binary: where it is, what it is, and the Node that loads it. */
function checkKey(path: string): string {
  const real = realpathSync(path);
  const st = statSync(real);
  return JSON.stringify({
    path: real,
    size: st.size,
    mtime: st.mtimeMs,
    ino: st.ino,
    node: process.version,
    modules: process.versions.modules,
    napi: process.versions.napi,
    platform: process.platform,
    arch: process.arch,
  });
}

function checkCacheFile(key: string): string {
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return join(tmpdir(), `genaug-addon-check-${user}`, `${hash}.ok`);
}

function readVerdict(file: string, key: string): boolean {
  try {
    return readFileSync(file, 'utf8') === key;
  } catch {
    return false;
  }
}

/** Records a passed check (atomically); a cache that cannot be written only costs a check per process. */
function writeVerdict(file: string, key: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, key, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // not cached
  }
}

/** The last meaningful line a crashed child wrote (stack frames and Node's banner left out). */
function lastWords(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('at ') && !/^Node\.js v\d/.test(l));
  const last = lines[lines.length - 1];
  return last === undefined ? '' : `: ${last.length > 300 ? `${last.slice(0, 300)}...` : last}`;
}

/**
 * Loads the binary at `path` in a child process and reports whether that
 * worked. Passed checks are cached (see the file comment); failures are not,
 * so a fixed binary, or a failure of the moment, is checked again.
 */
export function checkAddonBinary(path: string): AddonCheck {
  let key: string;
  try {
    key = checkKey(path);
  } catch (e) {
    return { ok: false, cached: false, reason: `cannot be read (${(e as Error).message})` };
  }
  const file = checkCacheFile(key);
  if (readVerdict(file, key)) return { ok: true, cached: true };
  const r = spawnSync(process.execPath, ['-e', CHECK_SCRIPT, path], {
    encoding: 'utf8',
    timeout: CHECK_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
    windowsHide: true,
  });
  const stdout = r.stdout ?? '';
  const line = stdout.split('\n').find((l) => l.startsWith(CHECK_MARK));
  if (r.status === 0 && line?.startsWith(`${CHECK_MARK}ok`)) {
    writeVerdict(file, key);
    return { ok: true, cached: false };
  }
  if (line?.startsWith(`${CHECK_MARK}error `)) {
    let message = line.slice(`${CHECK_MARK}error `.length);
    try {
      message = String(JSON.parse(message));
    } catch {
      // as written
    }
    return { ok: false, cached: false, reason: message };
  }
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ETIMEDOUT') {
    return { ok: false, cached: false, reason: `loading it in a check process did not finish within ${CHECK_TIMEOUT_MS / 1000} s` };
  }
  if (err) {
    // The check itself could not run (no process could be started): that says
    // nothing about the binary, so it is loaded here as it would be without the check.
    return { ok: true, cached: false, reason: `not checked: ${err.message}` };
  }
  const how = r.signal ? `crashed with ${r.signal}` : `exited with code ${r.status}`;
  return { ok: false, cached: false, reason: `loading it in a check process ${how}${lastWords(r.stderr ?? '')}` };
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

// --- Loading -------------------------------------------------------------------

export function native(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    // Only the main thread checks: worker threads start after it loaded the addon.
    if (isMainThread) {
      const check = checkAddonBinary(path);
      if (!check.ok) {
        failures.push(`${path}: ${check.reason ?? 'failed its load check'}`);
        continue;
      }
    }
    try {
      const addon = require(path) as NativeAddon;
      addon.setErrorClass(GenaugError);
      cached = withCallerStacks(addon);
      return cached;
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  const rebuild = `cd ${packageRoot} && npm run build:native (needs CMake >= 3.18 and a C++17 compiler; no download is needed; there is no working prebuilt binary for ${process.platform}-${process.arch}${libcTag()})`;
  const env = process.env.GENAUG_ADDON
    ? `GENAUG_ADDON is set to ${process.env.GENAUG_ADDON}; point it at a working genaug.node or unset it. `
    : '';
  if (failures.length > 0) {
    throw new GenaugError(
      'E_NATIVE_LOAD',
      `genaug's native addon was found but failed to load:\n  ${failures.join('\n  ')}\n${env}Rebuild it with: ${rebuild}`,
      { candidates },
    );
  }
  throw new GenaugError(
    'E_NATIVE_LOAD',
    `genaug's native addon was not found (looked for ${candidates.join(', ')}).\n${env}Build it with: ${rebuild}`,
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
