import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { capabilities } from '../ts/index.js';
import { GenaugError } from '../ts/native/errors.js';
import { checkAddonBinary, native } from '../ts/native/load.js';

const dist = join(__dirname, '..', 'dist', 'index.js');

/** Runs a snippet in a fresh node process (the loader caches per process). */
function node(code: string, env: Record<string, string>): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const probe = `
  const g = await import(${JSON.stringify(dist)});
  try { console.log(JSON.stringify(g.capabilities())); }
  catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`;

describe('the loader', () => {
  it('reports capabilities: the ISA in use, CUDA built/usable with a reason', () => {
    const c = capabilities();
    expect(['scalar', 'avx2', 'avx512']).toContain(c.isa);
    expect(['scalar', 'avx2', 'avx512']).toContain(c.isaBest);
    expect(c.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(typeof c.cuda.built).toBe('boolean');
    expect(c.cuda.usable).toBe(c.cuda.devices > 0);
    if (!c.cuda.usable) expect(c.cuda.reason).toMatch(/CUDA/);
    // GENAUG_ADDON (the sanitizer run's build-asan binary) overrides the search; otherwise a prebuilt or build/Release.
    if (process.env.GENAUG_ADDON) expect(c.addonPath).toBe(resolve(process.env.GENAUG_ADDON));
    else expect(c.addonPath).toMatch(/(build\/Release\/genaug|prebuilds\/[a-z0-9]+-[a-z0-9]+\/genaug\.napi(\.musl)?)\.node$/);
  });

  it('GENAUG_ISA lowers the SIMD level for the process', () => {
    const r = node(probe, { GENAUG_ISA: 'scalar' });
    expect(r.status, r.err).toBe(0);
    expect(JSON.parse(r.out).isa).toBe('scalar');
  });

  it('a missing addon gives one E_NATIVE_LOAD error naming the path and the fix', () => {
    const r = node(probe, { GENAUG_ADDON: '/nonexistent/genaug.node' });
    const e = JSON.parse(r.out);
    expect(e.name).toBe('GenaugError');
    expect(e.code).toBe('E_NATIVE_LOAD');
    expect(e.message).toMatch(/was not found.*\/nonexistent\/genaug\.node/s);
    expect(e.message).toMatch(/GENAUG_ADDON/);
  });

  it('a broken addon file gives E_NATIVE_LOAD with the loader error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'genaug-load-'));
    const bad = join(dir, 'genaug.node');
    writeFileSync(bad, 'this is not a shared object');
    const r = node(probe, { GENAUG_ADDON: bad });
    const e = JSON.parse(r.out);
    expect(e.code).toBe('E_NATIVE_LOAD');
    expect(e.message).toMatch(/found but failed to load/);
    expect(e.message).toContain(bad);
  });

  const hasGxx = spawnSync('g++', ['--version']).status === 0;

  it.skipIf(!hasGxx)('a binary that aborts while loading gives E_NATIVE_LOAD with the rebuild command, not a dead process', () => {
    // A shared object whose static initializer calls abort(): loading it in
    // this process would kill it; the loader tries it in a child first.
    const dir = mkdtempSync(join(tmpdir(), 'genaug-load-'));
    const src = join(dir, 'crash.cc');
    const lib = join(dir, 'crash.node');
    writeFileSync(src, '#include <cstdlib>\n__attribute__((constructor)) static void crash_on_load() { std::abort(); }\n');
    const cc = spawnSync('g++', ['-shared', '-fPIC', '-o', lib, src], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const r = node(probe, { GENAUG_ADDON: lib });
    expect(r.status, r.err).toBe(0);
    const e = JSON.parse(r.out);
    expect(e.code).toBe('E_NATIVE_LOAD');
    expect(e.message).toContain(lib);
    expect(e.message).toMatch(/crashed with SIGABRT/);
    expect(e.message).toMatch(/npm run build:native/);
  });

  it('the load check runs once per binary: a passed check is cached', () => {
    // A copy of the built addon is a binary the cache has not seen.
    const dir = mkdtempSync(join(tmpdir(), 'genaug-load-'));
    const copy = join(dir, 'genaug.node');
    copyFileSync(capabilities().addonPath as string, copy);
    expect(checkAddonBinary(copy)).toEqual({ ok: true, cached: false });
    expect(checkAddonBinary(copy)).toEqual({ ok: true, cached: true });
    const bad = join(dir, 'bad.node');
    writeFileSync(bad, 'not a shared object');
    for (let i = 0; i < 2; ++i) {
      const c = checkAddonBinary(bad);
      expect(c.ok).toBe(false);
      expect(c.cached).toBe(false); // failures are checked again
      expect(c.reason).toMatch(/invalid ELF header|not a valid|file too short/i);
    }
  });
});

describe('errors of async native calls', () => {
  it('carry the stack of the caller (captured before the call, as sharp does)', async () => {
    // The string is parsed on the worker, so the error is created there, with
    // no JavaScript frames of its own.
    async function decodeAMalformedRle(): Promise<unknown> {
      return native().rleDecode(['!!'], 2, 2);
    }
    const e = await decodeAMalformedRle().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(GenaugError);
    expect((e as GenaugError).code).toBe('E_FORMAT');
    const stack = (e as GenaugError).stack ?? '';
    expect(stack.split('\n')[0]).toBe(`GenaugError: ${(e as GenaugError).message}`);
    expect(stack).toContain('decodeAMalformedRle');
    expect(stack).toContain('load.test.ts');
  });

  it('leave resolved results and synchronous twins as they were', async () => {
    const a = native();
    const counts = await a.rleEncode(new Uint8Array([0, 1, 1, 0]), 1, 2, 2, { form: 'counts' });
    expect(Array.from(counts[0] as Uint32Array)).toEqual([1, 2, 1]);
    expect(() => a.rleDecodeSync(['!!'], 2, 2)).toThrow(/RLE string: byte 0/);
  });
});
