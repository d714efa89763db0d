#!/usr/bin/env node
// npm run bench            runs every benchmark in this folder
// npm run bench -- NAME    runs benchmarks/NAME.bench.js (extra arguments are passed on)
// Each benchmark prints one JSON object per line on stdout.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here).filter((f) => f.endsWith('.bench.js')).map((f) => f.replace(/\.bench\.js$/, '')).sort();
const [name, ...rest] = process.argv.slice(2);
if (name === '--help' || name === '-h') {
  console.log(`usage: npm run bench [-- NAME [options]]\nbenchmarks: ${all.join(', ')}`);
  process.exit(0);
}
const chosen = name && !name.startsWith('--') ? [name] : all;
const passOn = name && !name.startsWith('--') ? rest : process.argv.slice(2);
let failed = 0;
for (const b of chosen) {
  if (!all.includes(b)) {
    console.error(`unknown benchmark '${b}'; available: ${all.join(', ')}`);
    process.exit(2);
  }
  console.error(`== ${b}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, `${b}.bench.js`), ...passOn], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
