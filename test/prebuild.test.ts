/**
 * Install without a compiler (issue 22): the packed tarball, with its
 * prebuilt binary, installs into a clean folder whose PATH has node and npm
 * but no cmake, make or C/C++ compiler, and runs `genaug demo` from there.
 *
 * Nothing is fetched: npm runs with --offline and an empty cache of its own.
 * The dependencies (sharp with its @img binaries, onnxruntime-node, ...) are
 * the ones already installed for this repository, hard-linked into the clean
 * folder's node_modules before the install (the npm cache of this machine
 * lacks some of their registry documents, so a cold offline resolve cannot
 * work here), with their node_modules/.bin links; npm sees them satisfy
 * genaug's ranges and adds only genaug, whose own install step is what this
 * test is about.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

import { libcTag, prebuiltPath } from '../ts/native/load.js';

const exec = promisify(execFile);
const repo = join(__dirname, '..');
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The environment of the clean machine: PATH = a folder with links to node, npm and a shell only; no npm_* settings of the parent. */
async function cleanEnv(root: string): Promise<NodeJS.ProcessEnv> {
  const bin = join(root, 'bin');
  await mkdir(bin);
  const npmCli = await realpath(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());
  await symlink(process.execPath, join(bin, 'node'));
  await symlink(npmCli, join(bin, 'npm'));
  for (const tool of ['sh', 'env', 'cat', 'ls']) {
    const p = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (p) await symlink(p, join(bin, tool));
  }
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_|^GENAUG_|^NODE_OPTIONS$|^VITEST/i.test(k)) env[k] = v;
  env.PATH = bin;
  env.HOME = join(root, 'home');
  env.npm_config_cache = join(root, 'npm-cache'); // empty: nothing can come from a cache either
  env.npm_config_update_notifier = 'false';
  await mkdir(env.HOME);
  return env;
}

/** genaug's production dependency tree as installed for this repository (package-lock.json, dev packages left out). */
function installedDependencies(): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.devOptional)
    .map(([path]) => path)
    .filter((path) => existsSync(join(repo, path)));
}

describe('the prebuilt binary', () => {
  it('the packed tarball installs with no compiler or CMake on the PATH, offline, and runs genaug demo', async () => {
    dir = await mkdtemp(join(tmpdir(), 'genaug-prebuild-'));
    const prebuilt = prebuiltPath(repo);
    if (!existsSync(prebuilt)) {
      // `npm run prebuild` compiles (minutes); staging the addon this checkout built is the same binary.
      const r = spawnSync(process.execPath, [join(repo, 'scripts', 'prebuild.mjs'), '--from', join(repo, 'build', 'Release', 'genaug.node')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    const key = `prebuilds/${process.platform}-${process.arch}/genaug.napi${libcTag()}.node`;
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const packed = await exec(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 1 << 26 });
    const info = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info[0]!.files.map((f) => f.path);
    expect(files).toContain(key);
    expect(files).toContain('scripts/install.mjs');
    const tarball = join(dir, info[0]!.filename);

    const env = await cleanEnv(dir);
    const noTools = spawnSync('sh', ['-c', 'for t in cmake make c++ g++ gcc cc clang nvcc; do command -v $t; done; exit 0'], { env, encoding: 'utf8' });
    expect(noTools.stdout, 'the clean PATH must not reach a build tool').toBe('');

    const app = join(dir, 'app');
    await mkdir(join(app, 'node_modules'), { recursive: true });
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await writeFile(join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
    for (const path of installedDependencies()) {
      await mkdir(dirname(join(app, path)), { recursive: true });
      if (existsSync(join(app, path))) continue; // a nested package already came with its parent
      const cp = spawnSync('cp', ['-al', join(repo, path), join(app, path)]);
      if (cp.status !== 0) expect(spawnSync('cp', ['-a', join(repo, path), join(app, path)]).status).toBe(0);
    }
    // Their command links too: npm reinstalls a package whose bin links are missing.
    expect(spawnSync('cp', ['-a', join(repo, 'node_modules', '.bin'), join(app, 'node_modules', '.bin')]).status).toBe(0);
    spawnSync('find', [join(app, 'node_modules', '.bin'), '-xtype', 'l', '-delete']); // links to dev packages

    const install = spawnSync('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const said = `${install.stdout}\n${install.stderr}`;
    expect(install.status, said).toBe(0);
    expect(said).toContain(`genaug: using the prebuilt binary ${key}`);
    const pkg = join(app, 'node_modules', 'genaug');
    expect(existsSync(join(pkg, 'build')), 'nothing was compiled').toBe(false);

    const genaug = join(app, 'node_modules', '.bin', 'genaug');
    const info2 = spawnSync(genaug, ['info'], { cwd: app, env, encoding: 'utf8' });
    expect(info2.status, info2.stderr).toBe(0);
    expect(JSON.parse(info2.stdout).addonPath).toBe(join(await realpath(pkg), key));

    const demo = spawnSync(genaug, ['demo', '--images', '4', '--out', 'demo', '--quiet'], { cwd: app, env, encoding: 'utf8', timeout: 120_000 });
    expect(demo.status, demo.stderr).toBe(0);
    const summary = JSON.parse(await readFile(join(app, 'demo', 'summary.json'), 'utf8')) as { totals: { kept: number; pastedImages: number } };
    expect(summary.totals.kept).toBeGreaterThan(0);
    expect(summary.totals.pastedImages).toBe(4);

    // A prebuilt binary that does not load (corrupt, another glibc, ...) must not take the process down.
    const installed = join(pkg, key);
    await writeFile(installed, 'not a shared object');
    const broken = spawnSync(genaug, ['info'], { cwd: app, env, encoding: 'utf8' });
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/genaug: error \[E_NATIVE_LOAD\].*found but failed to load/s);
    expect(broken.stderr).toContain(installed);
    expect(broken.stderr).not.toMatch(/\n\s+at /); // one error, no stack trace

    // ... the install step then compiles, and with no compiler says what is missing.
    const reinstall = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.mjs')], { cwd: pkg, env, encoding: 'utf8', timeout: 60_000 });
    expect(reinstall.status).toBe(1);
    expect(reinstall.stdout).toMatch(/does not load here .*: compiling the native addon/);
    expect(reinstall.stderr).toMatch(/needs CMake >= 3\.18 and a C\+\+17 compiler/);

    // A prebuilt binary older than the C++ sources (a checkout whose C++ changed) is not used either.
    await copyFile(join(repo, 'build', 'Release', 'genaug.node'), installed);
    const later = new Date(statSync(installed).mtimeMs + 60_000);
    await utimes(join(pkg, 'native', 'core', 'npy.cc'), later, later);
    const stale = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.mjs')], { cwd: pkg, env, encoding: 'utf8', timeout: 60_000 });
    expect(stale.status).toBe(1);
    expect(stale.stdout).toMatch(/is older than the C\+\+ sources .*: compiling the native addon/);
    await writeFile(installed, 'not a shared object');

    // ... and the loader falls back to a local build (older than the prebuilt binary, so tried after it).
    const local = join(pkg, 'build', 'Release', 'genaug.node');
    await mkdir(dirname(local), { recursive: true });
    await copyFile(join(repo, 'build', 'Release', 'genaug.node'), local);
    const past = new Date(statSync(installed).mtimeMs - 60_000);
    await utimes(local, past, past);
    const fallback = spawnSync(genaug, ['info'], { cwd: app, env, encoding: 'utf8' });
    expect(fallback.status, fallback.stderr).toBe(0);
    expect(JSON.parse(fallback.stdout).addonPath).toBe(join(await realpath(pkg), 'build', 'Release', 'genaug.node'));
  }, 180_000);
});

describe('npm run prebuild', () => {
  it('refuses a build whose compile commands would not run on every CPU of the architecture', async () => {
    const b = await mkdtemp(join(tmpdir(), 'genaug-prebuild-flags-'));
    try {
      await mkdir(join(b, 'Release'));
      await copyFile(join(repo, 'build', 'Release', 'genaug.node'), join(b, 'Release', 'genaug.node'));
      const cases: Array<[string, string, RegExp]> = [
        ['native/core/npy.cc', 'c++ -O3 -march=native -c npy.cc', /npy\.cc: -march\/-mtune=native/],
        ['native/core/similarity.cc', 'c++ -O3 -mavx2 -mfma -c similarity.cc', /similarity\.cc: -mavx2 -mfma outside the per-ISA kernel files/],
      ];
      for (const [file, command, error] of cases) {
        const commands = [{ file: join(repo, 'native/core/kernels_avx2.cc'), command: 'c++ -O3 -mavx2 -mfma -c kernels_avx2.cc' }, { file: join(repo, file), command }];
        await writeFile(join(b, 'compile_commands.json'), JSON.stringify(commands));
        const r = spawnSync(process.execPath, [join(repo, 'scripts', 'prebuild.mjs'), '--from', join(b, 'Release', 'genaug.node')], { encoding: 'utf8' });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(error);
      }
    } finally {
      await rm(b, { recursive: true, force: true });
    }
  });
});
