/** Curate stage: embed, score, filter, deduplicate, annotate, dataset gap. */
export {
  examplesFromVisualGenome, examplesFromCoco, spatialRelation, SPATIAL_RELATIONS, capExamples,
  readRelationPool, nameSimilarityFromFunction, nameSimilarityFromTable, nameSimilarityFromEmbeddings,
  poolFromExamples, type PoolCapOptions, type VisualGenomeOptions, type CocoRelationOptions,
  type PoolBuildReport,
} from '../curate/relations.js';
export {
  clipScores, interSimilarity, duplicateGroups, zeroShot, aliaSemantic, ALIA_NEGATIVES, ImageClassifier,
  softmaxRows, confidentThresholds, confidenceScores, planToScene, clisImageClip, clisImageJudge, cropBox,
  regionImage, gridBox, GradeSchema, JUDGE_PROMPTS, type InterSimilarity, type InterSimilarityOptions,
  type ZeroShot, type ClassifierOptions, type ClisObject, type ClisImageInput, type ClisImageResult,
} from '../curate/score.js';
export {
  paddingCrop, maskBounds, annotationMask, compositeOnWhite, alphaAreaFraction, writeRealCrops,
  type PaddingCropOptions,
} from '../curate/crops.js';
export {
  readScores, mergeScores, formatScores, type ScoreTable, type ScoreColumns, type ScoreValue,
} from '../curate/table.js';
export {
  applyFilters, PRESETS, FILTER_DEFAULTS, type Decision, type FilterOptions, type Rule,
} from '../curate/filters.js';
export {
  embedImages, embedTexts, readTextLines, type EmbedImagesOptions, type EmbedTextsOptions,
  type EmbedRunResult, type EmbedderSpec,
} from '../curate/embed.js';
export {
  uniqueness, diverseSubset, type UniquenessOptions, type UniquenessResult, type DiverseSubsetOptions,
  type DiverseSubset,
} from '../curate/unique.js';
export {
  datasetGap, setGap, type GapOptions, type SetGap, type GapReport,
} from '../curate/gap.js';
export {
  annotate, type AnnotateOptions,
} from '../curate/annotate.js';
export {
  modelBnStats, classifierInput, IMAGENET_MEAN, IMAGENET_STD, type ModelBnStatsOptions, type ModelBnStatsResult,
} from '../curate/auxbn.js';
