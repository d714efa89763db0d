/**
 * The demo's image server: genaug generate's Backend interface over the
 * procedural generator (procedural-world.ts), so `genaug run` drives it
 * through the same resumable, journaled runner as a real A1111/ComfyUI/OpenAI
 * server.
 */
import { DEFAULT_FAILURE_RATES, generateProcedural, proceduralTruth, type FailureRates } from './procedural-world.js';
import type { Backend, BackendType, GenerateRequest, GenerateResult } from './types.js';
import { GenaugError } from '../native/errors.js';

export class ProceduralBackend implements Backend {
  // Not one of the server types; recorded as 'procedural' in the sidecars.
  readonly type = 'procedural' as unknown as BackendType;
  readonly display = 'procedural://genaug';
  readonly secrets: string[] = [];
  readonly rates: FailureRates;

  constructor(rates: Partial<FailureRates> = {}) {
    this.rates = { ...DEFAULT_FAILURE_RATES, ...rates };
  }

  /** What the generator drew for a (job candidate, seed): the ground truth the demo's report counts. */
  truth(candidate: number, seed: number) {
    return proceduralTruth(seed, this.rates, candidate > 0);
  }

  async generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult> {
    if (signal.aborted) throw new GenaugError('E_ABORTED', 'stopped');
    const cls = req.job.classes[0] as string;
    const r = await generateProcedural(cls, req.seed, { width: req.job.width, height: req.job.height, rates: this.rates, allowDuplicate: req.candidate > 0 });
    return {
      images: [Buffer.from(r.png.buffer, r.png.byteOffset, r.png.byteLength)],
      seeds: [req.seed],
      model: 'procedural-v1',
      parameters: { class: cls, seed: req.seed, width: req.job.width, height: req.job.height },
      info: { drawn: r.drawn, truth: r.truth },
    };
  }
}
