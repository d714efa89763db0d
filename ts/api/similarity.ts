/** Cosine similarity over embedding matrices: top-k, per-class scores, pairs above a threshold, near-duplicate groups, and the same over .npy files. */
export {
  type Matrix, type SimilarityOptions, type TopKResult, type ClassScores, type PairList, topk, topkSync,
  type ClassOptions, classMean, classMeanSync, classMax, classMaxSync, rowDot, rowDotSync, type PairsOptions,
  pairs, type GroupResult, groupPairs, type NearDuplicateOptions, nearDuplicates, mergeTopk, engineStats,
} from '../kernels/similarity.js';
export {
  matrix, sliceRows,
} from '../native/validate.js';
export {
  topkFiles, classFiles, readLabels, type FileRunOptions,
} from '../kernels/files.js';
