/** Augment stage: instance pools, the paste sampler, offline paste and the online paste loader. */
export {
  sampleInstances, resolveSampleOptions, itemSeed, itemRandom, shuffledIndices, SAMPLE_DEFAULTS,
  type SampleOptions, type SamplingMode, type SamplingCategory, type SamplingInstance, type SizePriorEntry,
  type Placement, type SampleResult,
} from '../augment/sample.js';
export {
  readInstancePool, normalizeCategoryName, decodeCrop, CropCache, LruCache, type InstancePool,
  type PoolCategory, type PoolInstance, type PoolSkip, type ReadPoolOptions, type RgbaCrop,
} from '../augment/pool.js';
export {
  paste, preparePaste, planItem, renderItem, imageKeys, resolvePasteFormats, PASTE_FORMATS,
  type PasteOptions, type PasteSourceOptions, type PasteContext, type PasteFormat, type PasteSummary,
  type PasteJournalLine, type RenderTask, type RenderResult,
} from '../augment/paste.js';
export {
  pasteLoader, type PasteLoader, type PasteLoaderOptions, type PasteSample, type PasteSampleAnnotation,
} from '../augment/loader.js';
export {
  exportClassification, readLabelledManifest, CLASSIFICATION_FORMATS, type ClassificationFormat, type LabelledImage,
  type ClassificationExportOptions, type ClassificationExportSummary,
} from '../augment/classification.js';
export { exportScenes, type SceneExportOptions, type SceneExportSummary } from '../augment/scenes.js';
export {
  pasteStream, parseShard, shardFromEnvironment, type PasteStreamOptions, type StreamShard, type StreamSample,
} from '../augment/stream.js';
