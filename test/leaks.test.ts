/**
 * The leak harness (scripts/leaks.mjs, `npm run leaks`) in short: every
 * function the addon exports is called (the harness refuses to run when one
 * is missing from its list), its good calls return and its bad calls are
 * refused with a GenaugError, worker threads load and call the addon; and the
 * harness's RSS check does catch a leak of 64 bytes per call. The 1 M-call
 * RSS figures are in docs/reliability.md (too slow for CI: about 40 minutes).
 */
import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

const run = (args: string[]) =>
  spawnSync(process.execPath, ['--expose-gc', 'scripts/leaks.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('npm run leaks (short)', () => {
  it('calls every native entry point, good and bad arguments, and worker threads', () => {
    // --max 1000: a few thousand calls are too few for a 5 % RSS bound (the heap is still growing); this checks the calls.
    const r = run(['--calls', '500', '--workers', '3', '--max', '1000']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => /^leaks \w+: \d+ calls/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(56);
    for (const name of ['compositeBatchSync', 'compositeBatch', 'clisLayout', 'rleFromPolygons', 'parseNpyHeader', 'maskCornerForeground'])
      expect(lines.some((l) => l.startsWith(`leaks ${name}: `))).toBe(true);
    expect(r.stdout).toMatch(/^leaks workers: 4 worker threads created and ended/m); // 1 warm-up + 3
  });

  it('fails on a leak of 64 bytes per call', () => {
    const r = run(['--self-test', '--only', 'selfTestLeak', '--calls', '100000', '--workers', '0']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^leaks selfTestLeak: .* over 5 %/m);
  });
});
