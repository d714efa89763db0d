// Runs corpus cases one after another in this process, through the CLI's own
// entry point (dist/cli/main.js `run`, what bin/genaug.js calls), and reports
// each on fd 3 as a JSON line: {"start": id} before, {"id", "exit", "stdout",
// "stderr"} after. A case that hangs or kills the process is seen by the
// parent (test/corpus.test.ts) from the missing second line.
//
//   node test/corpus/runner.mjs JOBS.json   (JOBS: [{id, argv} | {id, api, path}])
import { readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// GENAUG_CORPUS_ROOT: another build of genaug to run the cases against (e.g. the commit before a fix).
const root = process.env.GENAUG_CORPUS_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { run } = await import(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href);
const lib = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);

const report = (o) => writeSync(3, `${JSON.stringify(o)}\n`);
let out = '';
let err = '';
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
process.stdout.write = (s, ...a) => ((out += String(s)), typeof a.at(-1) === 'function' && a.at(-1)(), true);
process.stderr.write = (s, ...a) => ((err += String(s)), typeof a.at(-1) === 'function' && a.at(-1)(), true);
// Anything thrown past the command (a callback, a stray promise) is a crash of the case being run.
let current;
const crash = (kind) => (e) => {
  report({ id: current, crash: kind, stderr: err + String(e?.stack ?? e) });
  realErr(`${kind} in ${current}: ${e?.stack ?? e}\n`);
  process.exit(70);
};
process.on('uncaughtException', crash('uncaughtException'));
process.on('unhandledRejection', crash('unhandledRejection'));

/** What the library API reports for a file, printed as the CLI prints errors. */
async function api(job) {
  try {
    const f = await lib.readSafetensors(job.path);
    process.stdout.write(`${f.tensors.size} tensors\n`);
    return 0;
  } catch (e) {
    if (e instanceof lib.GenaugError) {
      process.stderr.write(`genaug: error [${e.code}]: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`genaug: unexpected error: ${e?.stack ?? e}\n`);
    return 1;
  }
}

for (const job of JSON.parse(readFileSync(process.argv[2], 'utf8'))) {
  current = job.id;
  out = '';
  err = '';
  process.exitCode = undefined;
  report({ start: job.id });
  const t0 = performance.now();
  const exit = job.api ? await api(job) : await run(['node', 'genaug', ...job.argv]);
  report({ id: job.id, exit, exitCode: process.exitCode ?? null, stdout: out, stderr: err, ms: Math.round(performance.now() - t0) });
}
realOut('');
process.exit(0);
