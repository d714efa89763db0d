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
