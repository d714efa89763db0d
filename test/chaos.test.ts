/**
 * The short chaos run for CI (the long one: `npm run chaos`, figures in
 * docs/reliability.md): `genaug demo --images 48` SIGKILLed once in each of
 * generate, embed and paste and SIGTERMed once in annotate, at random points
 * within those stages (delays from an uninterrupted run's stage timings),
 * run again after each. It must end with the same bytes as the uninterrupted
 * run, no temporary file, lock or journal folder left, every journal holding
 * each item once; the SIGTERM exits 143 with the locks released and whole
 * journals. The driver (scripts/chaos.mjs) reads where each signal landed
 * from the killed process's own output.
 */
import { describe, expect, it } from 'vitest';

import { chaos } from '../scripts/chaos.mjs';
import { tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-chaos-');

describe('chaos (short)', () => {
  it('demo of 48 images: 3 SIGKILLs and 1 SIGTERM over generate, annotate, embed, paste, then the same bytes as an uninterrupted run', async () => {
    const r = await chaos({ images: 48, kills: 3, sigterms: 1, phases: ['generate', 'embed', 'paste'], termStages: ['annotate'], seed: Number(process.env.GENAUG_CHAOS_SEED ?? 11), work: tmp.fresh('w') });
    expect(r.failures).toEqual([]);
    expect(r.kills).toBe(3);
    expect(r.sigterms).toBe(1);
    for (const s of ['generate', 'embed', 'paste']) expect(r.perPhase[s]?.SIGKILL, s).toBeGreaterThanOrEqual(1);
    expect(r.perPhase.annotate?.SIGTERM).toBe(1);
    expect(r.record.find((e) => e.signal === 'SIGTERM')?.code).toBe(143);
    expect(r.compare?.differing).toBe(0);
    expect(r.compare?.files).toBeGreaterThan(300);
  }, 180_000);
});
