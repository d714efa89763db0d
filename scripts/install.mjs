#!/usr/bin/env node
/**
 * npm's install step for genaug (package.json "install"): use the prebuilt
 * binary for this platform when it loads here, compile the addon otherwise.
 *
 * - prebuilds/<platform>-<arch>/genaug.napi[.musl].node (made by
 *   `npm run prebuild`, shipped in the tarball) is loaded in a child process
 *   first (dist/native/load.js checkAddonBinary): a binary that is corrupt, for
 *   another glibc, or crashes while loading cannot take npm down with it, and
 *   leads to a compile instead.
 * - No prebuilt binary, one that fails its check, GENAUG_BUILD_FROM_SOURCE=1 or
 *   `npm install --build-from-source`: `cmake-js compile` into build/ (needs
 *   CMake >= 3.18 and a C++17 compiler).
 * - A prebuilt binary older than the C++ sources (native/, cmake/,
 *   CMakeLists.txt) is stale: a source checkout whose C++ changed after
 *   `npm run prebuild`. A packed package has one mtime for every file, so
 *   there the binary is never older.
 * The runtime loader (ts/native/load.ts) makes the same choice again at every
 * start, so the two never disagree about which binary is used.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => console.log(`genaug: ${line}`);

/** The newest mtime of the files the addon is compiled from. */
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const e of readdirSync(path)) visit(join(path, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['native', 'cmake', 'CMakeLists.txt']) visit(join(root, p));
  return newest;
}

const fromSource = process.env.GENAUG_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';
const loader = join(root, 'dist', 'native', 'load.js');

if (fromSource) {
  say('building from source (GENAUG_BUILD_FROM_SOURCE / --build-from-source)');
} else if (!existsSync(loader)) {
  // A git checkout: dist/ is built after this step (prepare), and a checkout has no prebuilt binaries.
  say('no dist/ yet (a source checkout): compiling the native addon');
} else {
  const { prebuiltPath, checkAddonBinary } = await import(pathToFileURL(loader).href);
  const prebuilt = prebuiltPath(root);
  if (!existsSync(prebuilt)) {
    say(`no prebuilt binary for this platform (${relative(root, prebuilt)}): compiling the native addon`);
  } else if (statSync(prebuilt).mtimeMs + 1000 < newestSource()) {
    say(`the prebuilt binary ${relative(root, prebuilt)} is older than the C++ sources (native/, cmake/): compiling the native addon`);
  } else {
    const check = checkAddonBinary(prebuilt);
    if (check.ok) {
      say(`using the prebuilt binary ${relative(root, prebuilt)} (it loads on this machine; nothing to compile)`);
      process.exit(0);
    }
    say(`the prebuilt binary ${relative(root, prebuilt)} does not load here (${check.reason}): compiling the native addon`);
  }
}

const require = createRequire(import.meta.url);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    `genaug: compiling the native addon failed (${r.error ? r.error.message : `cmake-js exited with ${r.signal ?? r.status}`}).\n` +
      'genaug: it needs CMake >= 3.18 and a C++17 compiler on the PATH; or install on a platform with a prebuilt binary (see README, "Prebuilt binaries").',
  );
  process.exit(1);
}
