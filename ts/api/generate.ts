/** Generate stage: image generation backends (A1111, ComfyUI, OpenAI-compatible, procedural) and the resumable runner. */
export {
  generate, assignBackend, createBackend, type BackendSpec, type GenerateOptions, type GenerateSummary,
  type GenerateProgress, type GenerateJournalLine,
} from '../generate/runner.js';
export {
  A1111Backend,
} from '../generate/a1111.js';
export {
  ComfyBackend, checkWorkflow, expandBoxes,
} from '../generate/comfyui.js';
export {
  OpenAIBackend,
} from '../generate/openai.js';
export {
  readPlan, parsePlan,
} from '../generate/plan.js';
export {
  type Backend, type BackendOptions, type BackendType, type GenerateRequest, type GenerateResult,
} from '../generate/types.js';
export {
  ProceduralBackend,
} from '../generate/procedural.js';
export {
  writeRealDataset, generateProcedural, proceduralTruth, SHAPE_CLASSES, DEFAULT_FAILURE_RATES,
  generateProceduralScene, sceneTruthOf, DEFAULT_SCENE_FAILURE_RATES,
  type RealDatasetOptions, type RealDataset, type FailureRates, type GeneratedTruth, type ShapeClass,
  type SceneFailureRates, type SceneTruth, type SceneImage,
} from '../generate/procedural-world.js';
export { generate as run } from '../generate/runner.js';
