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
export { compositeBatch, compositeBatchSync, compositeSync, CompositeOutputPool } from './kernels/composite.js';
export type {
  BlendMode, CompositeBbox, DropReason, InstanceSource, RgbFrame, PasteInstance, CompositeScene, CompositeOptions, CompositeInstance,
  CompositeDrop, CompositeResult,
} from './kernels/composite.js';
