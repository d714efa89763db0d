/**
 * What `npm pack` ships is enough to run: the packed tarball, extracted into
 * a fresh folder with the built addon beside it (npm install would build it
 * there), runs `genaug demo` end to end. This catches files the package needs
 * at run time (presets, worker scripts, examples) but does not list.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(__dirname, '..');
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships what the demo needs: the tarball alone (plus its built addon) runs genaug demo', async () => {
    dir = await mkdtemp(join(tmpdir(), 'genaug-pack-'));
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    // --ignore-scripts: dist/ is already built by `npm test`; packing must not rebuild it.
    const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 1 << 26 });
    const info = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info[0]!.files.map((f) => f.path);
    for (const needed of ['bin/genaug.js', 'dist/cli/main.js', 'dist/workers/paste.js', 'presets/divergen.yaml', 'presets/xpaste.yaml', 'examples/comfyui-txt2img.json', 'CMakeLists.txt']) {
      expect(files, `the package must ship ${needed}`).toContain(needed);
    }
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('build/')), 'tests and build outputs stay out').toBe(false);
    await run('tar', ['-xzf', join(dir, info[0]!.filename), '-C', dir]);
    const pkg = join(dir, 'package');
    // What `npm install` would have made: the compiled addon and the dependencies.
    const addon = join(repo, 'build', 'Release', 'genaug.node');
    expect(existsSync(addon), 'the addon must be built (npm install)').toBe(true);
    await mkdir(join(pkg, 'build', 'Release'), { recursive: true });
    await copyFile(addon, join(pkg, 'build', 'Release', 'genaug.node'));
    await symlink(join(repo, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    const out = join(dir, 'demo');
    const r = await run(process.execPath, [join(pkg, 'bin', 'genaug.js'), 'demo', '--out', out, '--quiet'], { cwd: dir, maxBuffer: 1 << 26 });
    expect(r.stdout).toMatch(/demo|outputs/i);
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
    expect((await readdir(out)).length).toBeGreaterThan(1);
  }, 240_000);
});
