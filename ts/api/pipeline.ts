/** The whole pipeline: config, presets, stages; `pipeline.run` runs a config. */
export {
  loadConfig, validateConfig, parseConfigText, mergeConfig, readPreset, presetPath, checkReachable,
  RunConfigSchema, PresetSchema, STAGES, BUNDLED_PRESETS, type RunConfig, type LoadedConfig, type StageName,
} from '../pipeline/config.js';
export {
  runPipeline, readManifest, type RunOptions, type RunResult, type Manifest, type StageRecord,
  type OutputRecord,
} from '../pipeline/run.js';
export {
  STAGE_DEFS, filterRules, filterOptions, type StageDef, type StageContext,
} from '../pipeline/stages.js';
export { runPipeline as run } from '../pipeline/run.js';
