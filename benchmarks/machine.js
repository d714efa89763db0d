// The first line every benchmark of the performance issue prints: the machine
// (CPU model, the SIMD level genaug's kernels run at, hardware threads) and
// the peer it is compared with, with its version, so two runs can be told
// apart before their figures are compared.
import { spawnSync } from 'node:child_process';
import os from 'node:os';

import { findPython } from './lib.js';

/** Versions of Python modules ({ name: version }), or { skipped: why }. */
export function pythonVersions(modules) {
  const py = findPython(modules);
  if (!py) return { skipped: `no Python with ${modules.join(', ')}` };
  const code = `import json, importlib\nprint(json.dumps({m: getattr(importlib.import_module(m), '__version__', '?') for m in ${JSON.stringify(modules)}}))`;
  const r = spawnSync(py, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) return { skipped: String(r.stderr).trim().split('\n').pop() };
  return { python: py, ...JSON.parse(r.stdout.trim()) };
}

/** Prints (and returns) the machine line: { bench, machine: {...}, peer: {...} }. */
export function printMachineLine(g, bench, peer) {
  const caps = g.capabilities();
  const line = {
    bench,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      simd: caps.isa,
      simd_best: caps.isaBest,
      threads: caps.cpu.threads,
      load_avg_1m: +os.loadavg()[0].toFixed(2),
      node: process.version,
    },
    peer,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
  return line;
}
