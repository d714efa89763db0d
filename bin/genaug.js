#!/usr/bin/env node
// The genaug command. The implementation is compiled TypeScript in dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
if (!existsSync(main)) {
  console.error(`genaug is not built (${main} is missing). Run: npm install   (or npm run build:all)`);
  process.exit(2);
}
// `genaug ... | head` closes stdout early: that is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const { run } = await import(pathToFileURL(main).href);
process.exitCode = await run(process.argv);
