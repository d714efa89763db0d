/** Distribution metrics: Gaussian statistics, Fréchet distance, Vendi score. */
export {
  gaussianStats, gaussianStatsSync, emptyGaussianStats, mergeGaussianStats, gaussianMean, gaussianCovariance,
  checkGaussianStats, frechetDistance, frechetDistanceSync, frechetDistanceRows, frechetDistanceRowsSync, vendiScore, vendiScoreSync, MAX_DENSE_DIM,
  type GaussianStats, type MetricsOptions, type VendiOptions, type FrechetResult, type VendiResult,
} from '../kernels/metrics.js';
