/** genaug's public surface. */
export { GenaugError, isGenaugError, ERROR_CODES, type ErrorCode } from './native/errors.js';
export { capabilities, type Capabilities } from './native/load.js';
export * from './kernels/similarity.js';
export { matrix, sliceRows } from './kernels/validate.js';
export { mergeTopk } from './kernels/similarity.js';
export { topkFiles, classFiles, readLabels, type FileRunOptions } from './kernels/files.js';
export {
  readNpy,
  readNpyHeader,
  readMatrix,
  writeNpy,
  encodeNpy,
  NpyRowReader,
  NpyStreamWriter,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  type NpyDtype,
  type NpyArray,
  type NpyHeader,
} from './io/npy.js';
export { readSafetensors, writeSafetensors, encodeSafetensors, SAFETENSORS_DTYPES } from './io/safetensors.js';
export { writeFileAtomic, AtomicWriter } from './io/atomic.js';
export {
  gaussianStats, gaussianStatsSync, emptyGaussianStats, mergeGaussianStats, gaussianMean, gaussianCovariance,
  checkGaussianStats, frechetDistance, frechetDistanceSync, vendiScore, vendiScoreSync, MAX_DENSE_DIM,
  type GaussianStats, type MetricsOptions, type VendiOptions, type FrechetResult, type VendiResult,
} from './kernels/metrics.js';
export {
  bnStats, bnStatsSync, mergeBnStats, emptyBnStats, bnVariance, bnStatsToJSON, bnStatsFromJSON, channelsOf, BnStatsAccumulator,
  type Activations, type BnStatsOptions, type BnStatsState, type AccumulatorOptions, type Layout,
} from './kernels/bnstats.js';
export {
  invertMask, invertMaskBatch, invertMaskBatchSync, largestComponent, largestComponentSync, largestComponentBatch, largestComponentBatchSync,
  fillHoles, fillHolesSync, fillHolesBatch, fillHolesBatchSync, maskArea, maskBbox, maskStatsBatch, maskStatsBatchSync, maskIou, maskIouBatch,
  cropToMask, cropToMaskSync, cornerBackground, cornerBackgroundSync, foregroundFromCorners, foregroundFromCornersSync, postProcessMask,
  postProcessMaskSync, postProcessBatch, postProcessBatchSync, encodeRle, encodeRleSync, encodeRleBatch, encodeRleBatchSync, decodeRle,
  decodeRleSync, decodeRleBatch, decodeRleBatchSync, rleArea, rleToBbox, compressRle, uncompressRle, mergeRles, rleIou, rleIouSync,
  polygonsToRle, segmentationToRle, checkMask, checkMaskBatch, checkImage, checkRle,
} from './kernels/mask.js';
export type {
  Mask, MaskBatch, Image as RgbImage, Connectivity, Bbox, Rle, RleForm, MaskOptions, ComponentOptions, PostProcessOptions,
  PostProcessResult, CornerOptions, CornerResult, Crop, LargestComponent, LargestComponentBatch, MaskStats,
} from './kernels/mask.js';
export { SamModel } from './models/sam.js';
export { Segmenter } from './models/segmenter.js';
export { openSession, checkSignature, providerStatus } from './models/onnx.js';
export {
  readCoco, parseCoco, writeCoco, displayName,
  type CocoDataset, type CocoIndex, type CocoImage, type CocoAnnotation, type CocoCategory, type CocoProblem, type CocoRle, type ReadCocoOptions,
} from './io/coco.js';
export { categoryPriors, frequencyGroup, sizePriorTable, type CategoryPrior, type SizePrior, type FrequencyGroup } from './plan/priors.js';
export { ChatClient, extractJson, imageDataUrl, type ChatMessage, type ChatClientOptions, type ChatResult, type JsonResult } from './llm/chat.js';
export type { ImageEmbedder, TextEmbedder, ImageTextEmbedder, RgbInput } from './models/types.js';
export { PlanJobSchema, LayoutBoxSchema, type PlanJob, type LayoutBox } from './plan/job.js';
export { compositeBatch, compositeBatchSync, compositeSync } from './kernels/composite.js';
export type {
  BlendMode, CompositeBbox, DropReason, InstanceSource, RgbFrame, PasteInstance, CompositeScene, CompositeOptions, CompositeInstance,
  CompositeDrop, CompositeResult,
} from './kernels/composite.js';
export {
  sampleInstances, resolveSampleOptions, itemSeed, itemRandom, shuffledIndices, SAMPLE_DEFAULTS,
  type SampleOptions, type SamplingMode, type SamplingCategory, type SamplingInstance, type SizePriorEntry, type Placement, type SampleResult,
} from './augment/sample.js';
export {
  readInstancePool, normalizeCategoryName, decodeCrop, CropCache, LruCache,
  type InstancePool, type PoolCategory, type PoolInstance, type PoolSkip, type ReadPoolOptions, type RgbaCrop,
} from './augment/pool.js';
export {
  paste, preparePaste, planItem, renderItem, imageKeys,
  type PasteOptions, type PasteSourceOptions, type PasteContext, type PasteFormat, type PasteSummary, type PasteJournalLine, type RenderTask, type RenderResult,
} from './augment/paste.js';
export { pasteLoader, type PasteLoader, type PasteLoaderOptions, type PasteSample, type PasteSampleAnnotation } from './augment/loader.js';
export { maskToPolygon, traceOuterBoundary } from './augment/contour.js';
export { ShardWriter, tarHeader, type ShardWriterOptions } from './io/webdataset.js';
