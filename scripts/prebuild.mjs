#!/usr/bin/env node
/**
 * `npm run prebuild [-- --from PATH]`: the N-API addon for this platform, in
 * the layout prebuild loaders use: prebuilds/<platform>-<arch>/genaug.napi[.musl].node
 * (see ts/native/load.ts prebuiltPath). `npm pack` ships it ("files"), the
 * install step (scripts/install.mjs) uses it instead of compiling when it loads.
 *
 * 1. Compiles with cmake-js into build-prebuild/ (Release; GENAUG_CUDA as in
 *    the environment, AUTO otherwise: the CUDA runtime is linked statically
 *    and used only when a driver is there). `--from PATH` stages a binary
 *    built already (e.g. build/Release/genaug.node) instead.
 * 2. Checks the compile commands (build-prebuild/compile_commands.json, or
 *    the one beside --from's build folder when there is one): the binary must
 *    run on any CPU of its architecture, so no file is built with -march/-mtune
 *    =native, and instruction-set flags (-mavx2, -mavx512*, -mfma) appear only
 *    on the per-ISA kernel files (*_avx2.cc, *_avx512.cc) that CPUID dispatch
 *    calls after checking the CPU (cmake/simd.cmake).
 * 3. Copies it into place atomically and loads it in a child process (the
 *    loader's check); a binary that fails is removed and the script exits 1.
 * Prints one JSON line: the path, its size and sha256, and what was checked.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fail = (message) => {
  console.error(`genaug prebuild: ${message}`);
  process.exit(1);
};

const args = process.argv.slice(2);
let from;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === '--from' && args[i + 1]) from = resolve(args[++i]);
  else fail(`unknown argument ${args[i]} (usage: npm run prebuild [-- --from path/to/genaug.node])`);
}

const loader = join(root, 'dist', 'native', 'load.js');
if (!existsSync(loader)) fail('dist/ is not built: run npm run build:ts first');
const { prebuiltPath, checkAddonBinary } = await import(pathToFileURL(loader).href);

let source;
let commands;
if (from) {
  if (!existsSync(from)) fail(`--from ${from}: no such file`);
  source = from;
  // build/Release/genaug.node -> build/compile_commands.json, when the build exported one.
  const candidate = join(dirname(dirname(from)), 'compile_commands.json');
  if (existsSync(candidate)) commands = candidate;
} else {
  const require = createRequire(import.meta.url);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const out = join(root, 'build-prebuild');
  const defs = ['--CDCMAKE_BUILD_TYPE=Release', '--CDCMAKE_EXPORT_COMPILE_COMMANDS=ON', `--CDGENAUG_CUDA=${process.env.GENAUG_CUDA ?? 'AUTO'}`];
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', out, ...defs], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail(`cmake-js compile failed (${r.error ? r.error.message : `exit ${r.signal ?? r.status}`})`);
  source = join(out, 'Release', 'genaug.node');
  commands = join(out, 'compile_commands.json');
  if (!existsSync(commands)) fail(`${commands} is missing: cannot check the compile flags`);
}

/** The compile flags check of step 2; returns how many commands were checked. */
function checkFlags(file) {
  const list = JSON.parse(readFileSync(file, 'utf8'));
  const problems = [];
  for (const c of list) {
    const cmd = c.command ?? (c.arguments ?? []).join(' ');
    const name = basename(c.file);
    if (/-m(arch|tune|cpu)=native\b/.test(cmd)) problems.push(`${name}: -march/-mtune=native`);
    const isa = cmd.match(/(^|\s)-m(avx\S*|fma|sse4\S*|bmi\S*|f16c|amx\S*)\b/g);
    if (isa && !/_(avx2|avx512)\.cc$/.test(c.file)) problems.push(`${name}: ${isa.map((s) => s.trim()).join(' ')} outside the per-ISA kernel files`);
  }
  if (problems.length > 0) fail(`the binary would not run on every ${process.arch} CPU:\n  ${problems.join('\n  ')}`);
  return list.length;
}
const flagsChecked = commands ? checkFlags(commands) : 0;

const dest = prebuiltPath(root);
mkdirSync(dirname(dest), { recursive: true });
const tmp = `${dest}.${process.pid}.tmp`;
copyFileSync(source, tmp);
renameSync(tmp, dest);
const check = checkAddonBinary(dest);
if (!check.ok) {
  rmSync(dest, { force: true });
  fail(`${relative(root, dest)} does not load: ${check.reason}`);
}
const bytes = readFileSync(dest);
console.log(
  JSON.stringify({
    prebuilt: relative(root, dest),
    from: relative(root, source),
    bytes: statSync(dest).size,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    compileCommandsChecked: flagsChecked,
    loadCheck: 'ok',
  }),
);
