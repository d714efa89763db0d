/** Per-domain BatchNorm statistics (mean, variance) of activations, exact and mergeable. */
export {
  bnStats, bnStatsSync, mergeBnStats, emptyBnStats, bnVariance, bnStatsToJSON, bnStatsFromJSON, channelsOf,
  BnStatsAccumulator, type Activations, type BnStatsOptions, type BnStatsState, type AccumulatorOptions,
  type Layout,
} from '../kernels/bnstats.js';
