/**
 * The demo's image server: genaug generate's Backend interface over the
 * procedural generator (procedural-world.ts), so `genaug run` drives it
 * through the same resumable, journaled runner as a real A1111/ComfyUI/OpenAI
 * server.
 */
import { DEFAULT_FAILURE_RATES, DEFAULT_SCENE_FAILURE_RATES, generateProcedural, generateProceduralScene, proceduralTruth, sceneTruthOf, type FailureRates, type SceneFailureRates } from './procedural-world.js';
import type { Backend, BackendType, GenerateRequest, GenerateResult } from './types.js';
import { GenaugError } from '../native/errors.js';

export class ProceduralBackend implements Backend {
  // Not one of the server types; recorded as 'procedural' in the sidecars.
  readonly type = 'procedural' as unknown as BackendType;
  readonly display = 'procedural://genaug';
  readonly secrets: string[] = [];
  readonly rates: FailureRates;
  readonly sceneRates: SceneFailureRates;

  constructor(rates: Partial<FailureRates> = {}, sceneRates: Partial<SceneFailureRates> = {}) {
    this.rates = { ...DEFAULT_FAILURE_RATES, ...rates };
    this.sceneRates = { ...DEFAULT_SCENE_FAILURE_RATES, ...sceneRates };
  }

  /**
   * What the generator drew for a (job candidate, seed): the ground truth the demo's report counts. A job with a
   * layout (a scene plan) is drawn by the scene generator, whose failures are its own.
   */
  truth(candidate: number, seed: number, job?: { layout?: unknown[] | undefined }): string {
    if (job?.layout?.length) return sceneTruthOf(seed, this.sceneRates);
    return proceduralTruth(seed, this.rates, candidate > 0);
  }

  async generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult> {
    if (signal.aborted) throw new GenaugError('E_ABORTED', 'stopped');
    if (req.job.layout?.length) {
      // A scene plan (ACP): every layout object's class drawn in its box.
      const s = await generateProceduralScene(req.job.layout, req.seed, { width: req.job.width, height: req.job.height, rates: this.sceneRates });
      return {
        images: [Buffer.from(s.png.buffer, s.png.byteOffset, s.png.byteLength)],
        seeds: [req.seed],
        model: 'procedural-scenes-v1',
        parameters: { layout: req.job.layout.map((o) => ({ name: o.name, box: o.box })), seed: req.seed, width: req.job.width, height: req.job.height },
        info: { drawn: s.drawn, truth: s.truth, ...(s.failed !== undefined ? { failed_object: s.failed } : {}) },
      };
    }
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
