/** genaug's public surface. */
export { GenaugError, isGenaugError, ERROR_CODES, type ErrorCode } from './native/errors.js';
export { capabilities, type Capabilities } from './native/load.js';
export * from './kernels/similarity.js';
export { matrix, sliceRows } from './native/validate.js';
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
export { readSafetensors, decodeSafetensors, writeSafetensors, encodeSafetensors, SAFETENSORS_DTYPES } from './io/safetensors.js';
export { writeFileAtomic, AtomicWriter } from './io/atomic.js';
export {
  readImage, imageInfo, compositeAlpha, DEFAULT_MAX_PIXELS,
  type ImageInput, type RawImage, type DecodedImage, type ReadImageOptions, type ImageInfo, type AlphaBackground,
} from './io/images.js';
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
export {
  repeatFactors, realLayout, objectSets, buildPriors,
  type RealObject, type RealLayout, type ObjectSet, type SetOptions, type PriorsCategory, type PriorsFile, type PriorOptions,
} from './plan/priors.js';
export { WordNet, packagedWordNet, defaultWordNetDir, lemmaText, type Synset, type SimilarityMeasure } from './plan/wordnet.js';
export {
  planClasses, makeJob, normalizeText, dedupeTexts, dedupeJobs, askJson, AnswerCache, STRATEGIES, DEFAULT_JOB,
  type Strategy, type PlanClass, type ClassFilter, type JobDefaults, type JobContent, type PlanFailure, type StrategyResult, type LlmSource, type AskResult,
} from './plan/core.js';
export {
  xpastePrompt, divergenPrompt, classDefinition, planTemplates, planLlmPrompts, mentionsClass, DIVERSITY_MODES, DIVERGEN_OPENINGS, FALLBACK_STYLES, FALLBACK_CONTEXTS,
  type DiversityMode, type Definition, type DefinitionSource, type Meanings, type LlmPromptOptions,
} from './plan/prompts.js';
export {
  boxProblem, insideUnit, drawObjectSets, objectIds, sceneGraphProblem, layoutProblem, untagCaption, templateSceneCaption, planScenes,
  SceneGraphSchema, LayoutAnswerSchema, DEPTH_LAYERS, type SceneGraph, type LayoutAnswer, type DrawnSet, type ScenePlanOptions,
} from './plan/scenes.js';
export { CaptionStore, captionImages, captionPrompt, planCaptions, imagePath, sampleClassImages, type StoredCaption, type CaptionOptions, type CaptionPlanOptions } from './plan/captions.js';
export { summariseDomains, domainPrompt, planDomains, type DomainSummary, type DomainPlanOptions } from './plan/domains.js';
export {
  candidateMeanings, meaningText, scoreMeanings, resolveAmbiguity, meaningsOf, extraCategories, classSynset, planAmbiguity, openClipEmbedder,
  type MeaningCandidate, type Resolution, type ResolveOptions, type ExtraCategoryOptions, type AmbiguityPlanOptions,
} from './plan/ambiguity.js';
export { plan, readMeanings, type PlanOptions, type PlanSummary, type EndpointOptions } from './plan/plan.js';
export {
  clisLayout, clisLayoutSync, buildRelationPool, packLayouts, poolExamples, poolToAcpJson, poolFromAcpJson, layoutNames, normalizeName,
  normalizePredicate, isSymmetricPredicate, LAYOUT_STATUS,
  type Box, type RelationExample, type RelationPool, type NameSimilarity, type SceneLayout, type LayoutRelation, type ClisLayoutOptions,
  type ClisLayoutResult, type LayoutStatus, type PackedLayouts,
} from './kernels/layout.js';
export {
  examplesFromVisualGenome, examplesFromCoco, spatialRelation, SPATIAL_RELATIONS, capExamples, readRelationPool, nameSimilarityFromFunction,
  nameSimilarityFromTable, nameSimilarityFromEmbeddings, poolFromExamples,
  type PoolCapOptions, type VisualGenomeOptions, type CocoRelationOptions, type PoolBuildReport,
} from './curate/relations.js';
export {
  clipScores, interSimilarity, duplicateGroups, zeroShot, aliaSemantic, ALIA_NEGATIVES, ImageClassifier, softmaxRows, confidentThresholds,
  confidenceScores, planToScene, clisImageClip, clisImageJudge, cropBox, regionImage, gridBox, GradeSchema, JUDGE_PROMPTS,
  type InterSimilarity, type InterSimilarityOptions, type ZeroShot, type ClassifierOptions, type ClisObject, type ClisImageInput, type ClisImageResult,
} from './curate/score.js';
export { paddingCrop, maskBounds, annotationMask, compositeOnWhite, alphaAreaFraction, writeRealCrops, type PaddingCropOptions } from './curate/crops.js';
export { readScores, mergeScores, formatScores, type ScoreTable, type ScoreColumns, type ScoreValue } from './curate/table.js';
export { applyFilters, PRESETS, FILTER_DEFAULTS, type Decision, type FilterOptions, type Rule } from './curate/filters.js';
export { ClipModel, type ClipOpenOptions, type ClipLayout } from './models/clip.js';
export { ClipTokenizer, CLIP_CONTEXT_LENGTH, type EncodedBatch, type EncodeOptions } from './models/tokenizer.js';
export {
  clipPreprocess, clipResizeCrop, pilResize, centerCrop, resizeOutputSize, parsePreprocessorConfig, readPreprocessorConfig,
  OPENAI_CLIP_PREPROCESS, type ClipPreprocessConfig, type ResampleFilter,
} from './models/clip-preprocess.js';
export { FeatureEmbedder } from './models/features.js';
export {
  embedImages, embedTexts, readTextLines, type EmbedImagesOptions, type EmbedTextsOptions, type EmbedRunResult, type EmbedderSpec,
} from './curate/embed.js';
export { generate, assignBackend, createBackend } from './generate/runner.js';
export type { BackendSpec, GenerateOptions, GenerateSummary, GenerateProgress, GenerateJournalLine } from './generate/runner.js';
export { A1111Backend } from './generate/a1111.js';
export { ComfyBackend, checkWorkflow, expandBoxes } from './generate/comfyui.js';
export { OpenAIBackend } from './generate/openai.js';
export { readPlan, parsePlan } from './generate/plan.js';
export type { Backend, BackendOptions, BackendType, GenerateRequest, GenerateResult } from './generate/types.js';
export { compositeBatch, compositeBatchSync, compositeSync, CompositeOutputPool, compositeMemory } from './kernels/composite.js';
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
  paste, preparePaste, planItem, renderItem, imageKeys, resolvePasteFormats, PASTE_FORMATS,
  type PasteOptions, type PasteSourceOptions, type PasteContext, type PasteFormat, type PasteSummary, type PasteJournalLine, type RenderTask, type RenderResult,
} from './augment/paste.js';
export { pasteLoader, type PasteLoader, type PasteLoaderOptions, type PasteSample, type PasteSampleAnnotation } from './augment/loader.js';
export { joinRings, maskToPolygon, traceBoundaries } from './augment/contour.js';
export { indexShards, readShardMember, ShardWriter, tarHeader, type ShardMember, type ShardWriterOptions } from './io/webdataset.js';
export { uniqueness, diverseSubset, type UniquenessOptions, type UniquenessResult, type DiverseSubsetOptions, type DiverseSubset } from './curate/unique.js';
export {
  loadConfig, validateConfig, parseConfigText, mergeConfig, readPreset, presetPath, checkReachable, RunConfigSchema, PresetSchema, STAGES, BUNDLED_PRESETS,
  type RunConfig, type LoadedConfig, type StageName,
} from './pipeline/config.js';
export { runPipeline, readManifest, type RunOptions, type RunResult, type Manifest, type StageRecord, type OutputRecord } from './pipeline/run.js';
export { STAGE_DEFS, filterRules, filterOptions, type StageDef, type StageContext } from './pipeline/stages.js';
export { ProceduralBackend } from './generate/procedural.js';
export {
  writeRealDataset, generateProcedural, proceduralTruth, SHAPE_CLASSES, DEFAULT_FAILURE_RATES,
  type RealDatasetOptions, type RealDataset, type FailureRates, type GeneratedTruth, type ShapeClass,
} from './generate/procedural-world.js';
export { splitCredentials, maskCredentials } from './util/url.js';
export { readAppendLog } from './util/jsonl.js';
