/**
 * genaug's public surface: one namespace per stage or layer, as README "Folders" orders them
 * (`similarity.topk`, `masks.postProcessMask`, `io.readNpy`, `pipeline.run`, ...), plus the error class and
 * `capabilities()`. docs/api.md lists every name (npm run api:docs writes it from these exports).
 *
 * The flat names of 0.1 (`topk`, `readNpy`, ...) stay exported for one release as deprecated aliases of the
 * same functions, classes and types.
 */
export { GenaugError, isGenaugError, ERROR_CODES, type ErrorCode } from './native/errors.js';
export { capabilities, type Capabilities } from './native/load.js';
export * as similarity from './api/similarity.js';
export * as io from './api/io.js';
export * as metrics from './api/metrics.js';
export * as bnstats from './api/bnstats.js';
export * as masks from './api/masks.js';
export * as models from './api/models.js';
export * as plan from './api/plan.js';
export * as llm from './api/llm.js';
export * as layout from './api/layout.js';
export * as curate from './api/curate.js';
export * as generate from './api/generate.js';
export * as composite from './api/composite.js';
export * as augment from './api/augment.js';
export * as pipeline from './api/pipeline.js';
export * as util from './api/util.js';

// --- Deprecated flat aliases (0.1); remove in 0.3 ---------------------------------------
export {
  /** @deprecated use `similarity.Matrix` */
  type Matrix,
  /** @deprecated use `similarity.SimilarityOptions` */
  type SimilarityOptions,
  /** @deprecated use `similarity.TopKResult` */
  type TopKResult,
  /** @deprecated use `similarity.ClassScores` */
  type ClassScores,
  /** @deprecated use `similarity.PairList` */
  type PairList,
  /** @deprecated use `similarity.topk` */
  topk,
  /** @deprecated use `similarity.topkSync` */
  topkSync,
  /** @deprecated use `similarity.ClassOptions` */
  type ClassOptions,
  /** @deprecated use `similarity.classMean` */
  classMean,
  /** @deprecated use `similarity.classMeanSync` */
  classMeanSync,
  /** @deprecated use `similarity.classMax` */
  classMax,
  /** @deprecated use `similarity.classMaxSync` */
  classMaxSync,
  /** @deprecated use `similarity.rowDot` */
  rowDot,
  /** @deprecated use `similarity.rowDotSync` */
  rowDotSync,
  /** @deprecated use `similarity.PairsOptions` */
  type PairsOptions,
  /** @deprecated use `similarity.pairs` */
  pairs,
  /** @deprecated use `similarity.GroupResult` */
  type GroupResult,
  /** @deprecated use `similarity.groupPairs` */
  groupPairs,
  /** @deprecated use `similarity.NearDuplicateOptions` */
  type NearDuplicateOptions,
  /** @deprecated use `similarity.nearDuplicates` */
  nearDuplicates,
  /** @deprecated use `similarity.mergeTopk` */
  mergeTopk,
  /** @deprecated use `similarity.matrix` */
  matrix,
  /** @deprecated use `similarity.sliceRows` */
  sliceRows,
  /** @deprecated use `similarity.topkFiles` */
  topkFiles,
  /** @deprecated use `similarity.classFiles` */
  classFiles,
  /** @deprecated use `similarity.readLabels` */
  readLabels,
  /** @deprecated use `similarity.FileRunOptions` */
  type FileRunOptions,
} from './api/similarity.js';
export {
  /** @deprecated use `io.readNpy` */
  readNpy,
  /** @deprecated use `io.readNpyHeader` */
  readNpyHeader,
  /** @deprecated use `io.readMatrix` */
  readMatrix,
  /** @deprecated use `io.writeNpy` */
  writeNpy,
  /** @deprecated use `io.encodeNpy` */
  encodeNpy,
  /** @deprecated use `io.NpyRowReader` */
  NpyRowReader,
  /** @deprecated use `io.NpyStreamWriter` */
  NpyStreamWriter,
  /** @deprecated use `io.float16BitsToFloat32` */
  float16BitsToFloat32,
  /** @deprecated use `io.float32ToFloat16Bits` */
  float32ToFloat16Bits,
  /** @deprecated use `io.NpyDtype` */
  type NpyDtype,
  /** @deprecated use `io.NpyArray` */
  type NpyArray,
  /** @deprecated use `io.NpyHeader` */
  type NpyHeader,
  /** @deprecated use `io.readSafetensors` */
  readSafetensors,
  /** @deprecated use `io.decodeSafetensors` */
  decodeSafetensors,
  /** @deprecated use `io.writeSafetensors` */
  writeSafetensors,
  /** @deprecated use `io.encodeSafetensors` */
  encodeSafetensors,
  /** @deprecated use `io.SAFETENSORS_DTYPES` */
  SAFETENSORS_DTYPES,
  /** @deprecated use `io.writeFileAtomic` */
  writeFileAtomic,
  /** @deprecated use `io.AtomicWriter` */
  AtomicWriter,
  /** @deprecated use `io.readImage` */
  readImage,
  /** @deprecated use `io.imageInfo` */
  imageInfo,
  /** @deprecated use `io.compositeAlpha` */
  compositeAlpha,
  /** @deprecated use `io.DEFAULT_MAX_PIXELS` */
  DEFAULT_MAX_PIXELS,
  /** @deprecated use `io.ImageInput` */
  type ImageInput,
  /** @deprecated use `io.RawImage` */
  type RawImage,
  /** @deprecated use `io.DecodedImage` */
  type DecodedImage,
  /** @deprecated use `io.ReadImageOptions` */
  type ReadImageOptions,
  /** @deprecated use `io.ImageInfo` */
  type ImageInfo,
  /** @deprecated use `io.AlphaBackground` */
  type AlphaBackground,
  /** @deprecated use `io.readCoco` */
  readCoco,
  /** @deprecated use `io.parseCoco` */
  parseCoco,
  /** @deprecated use `io.writeCoco` */
  writeCoco,
  /** @deprecated use `io.displayName` */
  displayName,
  /** @deprecated use `io.CocoDataset` */
  type CocoDataset,
  /** @deprecated use `io.CocoIndex` */
  type CocoIndex,
  /** @deprecated use `io.CocoImage` */
  type CocoImage,
  /** @deprecated use `io.CocoAnnotation` */
  type CocoAnnotation,
  /** @deprecated use `io.CocoCategory` */
  type CocoCategory,
  /** @deprecated use `io.CocoProblem` */
  type CocoProblem,
  /** @deprecated use `io.CocoRle` */
  type CocoRle,
  /** @deprecated use `io.ReadCocoOptions` */
  type ReadCocoOptions,
  /** @deprecated use `io.indexShards` */
  indexShards,
  /** @deprecated use `io.readShardMember` */
  readShardMember,
  /** @deprecated use `io.ShardWriter` */
  ShardWriter,
  /** @deprecated use `io.tarHeader` */
  tarHeader,
  /** @deprecated use `io.ShardMember` */
  type ShardMember,
  /** @deprecated use `io.ShardWriterOptions` */
  type ShardWriterOptions,
} from './api/io.js';
export {
  /** @deprecated use `metrics.gaussianStats` */
  gaussianStats,
  /** @deprecated use `metrics.gaussianStatsSync` */
  gaussianStatsSync,
  /** @deprecated use `metrics.emptyGaussianStats` */
  emptyGaussianStats,
  /** @deprecated use `metrics.mergeGaussianStats` */
  mergeGaussianStats,
  /** @deprecated use `metrics.gaussianMean` */
  gaussianMean,
  /** @deprecated use `metrics.gaussianCovariance` */
  gaussianCovariance,
  /** @deprecated use `metrics.checkGaussianStats` */
  checkGaussianStats,
  /** @deprecated use `metrics.frechetDistance` */
  frechetDistance,
  /** @deprecated use `metrics.frechetDistanceSync` */
  frechetDistanceSync,
  /** @deprecated use `metrics.vendiScore` */
  vendiScore,
  /** @deprecated use `metrics.vendiScoreSync` */
  vendiScoreSync,
  /** @deprecated use `metrics.MAX_DENSE_DIM` */
  MAX_DENSE_DIM,
  /** @deprecated use `metrics.GaussianStats` */
  type GaussianStats,
  /** @deprecated use `metrics.MetricsOptions` */
  type MetricsOptions,
  /** @deprecated use `metrics.VendiOptions` */
  type VendiOptions,
  /** @deprecated use `metrics.FrechetResult` */
  type FrechetResult,
  /** @deprecated use `metrics.VendiResult` */
  type VendiResult,
} from './api/metrics.js';
export {
  /** @deprecated use `bnstats.bnStats` */
  bnStats,
  /** @deprecated use `bnstats.bnStatsSync` */
  bnStatsSync,
  /** @deprecated use `bnstats.mergeBnStats` */
  mergeBnStats,
  /** @deprecated use `bnstats.emptyBnStats` */
  emptyBnStats,
  /** @deprecated use `bnstats.bnVariance` */
  bnVariance,
  /** @deprecated use `bnstats.bnStatsToJSON` */
  bnStatsToJSON,
  /** @deprecated use `bnstats.bnStatsFromJSON` */
  bnStatsFromJSON,
  /** @deprecated use `bnstats.channelsOf` */
  channelsOf,
  /** @deprecated use `bnstats.BnStatsAccumulator` */
  BnStatsAccumulator,
  /** @deprecated use `bnstats.Activations` */
  type Activations,
  /** @deprecated use `bnstats.BnStatsOptions` */
  type BnStatsOptions,
  /** @deprecated use `bnstats.BnStatsState` */
  type BnStatsState,
  /** @deprecated use `bnstats.AccumulatorOptions` */
  type AccumulatorOptions,
  /** @deprecated use `bnstats.Layout` */
  type Layout,
} from './api/bnstats.js';
export {
  /** @deprecated use `masks.invertMask` */
  invertMask,
  /** @deprecated use `masks.invertMaskBatch` */
  invertMaskBatch,
  /** @deprecated use `masks.invertMaskBatchSync` */
  invertMaskBatchSync,
  /** @deprecated use `masks.largestComponent` */
  largestComponent,
  /** @deprecated use `masks.largestComponentSync` */
  largestComponentSync,
  /** @deprecated use `masks.largestComponentBatch` */
  largestComponentBatch,
  /** @deprecated use `masks.largestComponentBatchSync` */
  largestComponentBatchSync,
  /** @deprecated use `masks.fillHoles` */
  fillHoles,
  /** @deprecated use `masks.fillHolesSync` */
  fillHolesSync,
  /** @deprecated use `masks.fillHolesBatch` */
  fillHolesBatch,
  /** @deprecated use `masks.fillHolesBatchSync` */
  fillHolesBatchSync,
  /** @deprecated use `masks.maskArea` */
  maskArea,
  /** @deprecated use `masks.maskBbox` */
  maskBbox,
  /** @deprecated use `masks.maskStatsBatch` */
  maskStatsBatch,
  /** @deprecated use `masks.maskStatsBatchSync` */
  maskStatsBatchSync,
  /** @deprecated use `masks.maskIou` */
  maskIou,
  /** @deprecated use `masks.maskIouBatch` */
  maskIouBatch,
  /** @deprecated use `masks.cropToMask` */
  cropToMask,
  /** @deprecated use `masks.cropToMaskSync` */
  cropToMaskSync,
  /** @deprecated use `masks.cornerBackground` */
  cornerBackground,
  /** @deprecated use `masks.cornerBackgroundSync` */
  cornerBackgroundSync,
  /** @deprecated use `masks.foregroundFromCorners` */
  foregroundFromCorners,
  /** @deprecated use `masks.foregroundFromCornersSync` */
  foregroundFromCornersSync,
  /** @deprecated use `masks.postProcessMask` */
  postProcessMask,
  /** @deprecated use `masks.postProcessMaskSync` */
  postProcessMaskSync,
  /** @deprecated use `masks.postProcessBatch` */
  postProcessBatch,
  /** @deprecated use `masks.postProcessBatchSync` */
  postProcessBatchSync,
  /** @deprecated use `masks.encodeRle` */
  encodeRle,
  /** @deprecated use `masks.encodeRleSync` */
  encodeRleSync,
  /** @deprecated use `masks.encodeRleBatch` */
  encodeRleBatch,
  /** @deprecated use `masks.encodeRleBatchSync` */
  encodeRleBatchSync,
  /** @deprecated use `masks.decodeRle` */
  decodeRle,
  /** @deprecated use `masks.decodeRleSync` */
  decodeRleSync,
  /** @deprecated use `masks.decodeRleBatch` */
  decodeRleBatch,
  /** @deprecated use `masks.decodeRleBatchSync` */
  decodeRleBatchSync,
  /** @deprecated use `masks.rleArea` */
  rleArea,
  /** @deprecated use `masks.rleToBbox` */
  rleToBbox,
  /** @deprecated use `masks.compressRle` */
  compressRle,
  /** @deprecated use `masks.uncompressRle` */
  uncompressRle,
  /** @deprecated use `masks.mergeRles` */
  mergeRles,
  /** @deprecated use `masks.rleIou` */
  rleIou,
  /** @deprecated use `masks.rleIouSync` */
  rleIouSync,
  /** @deprecated use `masks.polygonsToRle` */
  polygonsToRle,
  /** @deprecated use `masks.segmentationToRle` */
  segmentationToRle,
  /** @deprecated use `masks.checkMask` */
  checkMask,
  /** @deprecated use `masks.checkMaskBatch` */
  checkMaskBatch,
  /** @deprecated use `masks.checkImage` */
  checkImage,
  /** @deprecated use `masks.checkRle` */
  checkRle,
  /** @deprecated use `masks.Mask` */
  type Mask,
  /** @deprecated use `masks.MaskBatch` */
  type MaskBatch,
  /** @deprecated use `masks.RgbImage` */
  type RgbImage,
  /** @deprecated use `masks.Connectivity` */
  type Connectivity,
  /** @deprecated use `masks.Bbox` */
  type Bbox,
  /** @deprecated use `masks.Rle` */
  type Rle,
  /** @deprecated use `masks.RleForm` */
  type RleForm,
  /** @deprecated use `masks.MaskOptions` */
  type MaskOptions,
  /** @deprecated use `masks.ComponentOptions` */
  type ComponentOptions,
  /** @deprecated use `masks.PostProcessOptions` */
  type PostProcessOptions,
  /** @deprecated use `masks.PostProcessResult` */
  type PostProcessResult,
  /** @deprecated use `masks.CornerOptions` */
  type CornerOptions,
  /** @deprecated use `masks.CornerResult` */
  type CornerResult,
  /** @deprecated use `masks.Crop` */
  type Crop,
  /** @deprecated use `masks.LargestComponent` */
  type LargestComponent,
  /** @deprecated use `masks.LargestComponentBatch` */
  type LargestComponentBatch,
  /** @deprecated use `masks.MaskStats` */
  type MaskStats,
  /** @deprecated use `masks.joinRings` */
  joinRings,
  /** @deprecated use `masks.maskToPolygon` */
  maskToPolygon,
  /** @deprecated use `masks.traceBoundaries` */
  traceBoundaries,
} from './api/masks.js';
export {
  /** @deprecated use `models.SamModel` */
  SamModel,
  /** @deprecated use `models.Segmenter` */
  Segmenter,
  /** @deprecated use `models.openSession` */
  openSession,
  /** @deprecated use `models.checkSignature` */
  checkSignature,
  /** @deprecated use `models.providerStatus` */
  providerStatus,
  /** @deprecated use `models.ImageEmbedder` */
  type ImageEmbedder,
  /** @deprecated use `models.TextEmbedder` */
  type TextEmbedder,
  /** @deprecated use `models.ImageTextEmbedder` */
  type ImageTextEmbedder,
  /** @deprecated use `models.RgbInput` */
  type RgbInput,
  /** @deprecated use `models.ClipModel` */
  ClipModel,
  /** @deprecated use `models.ClipOpenOptions` */
  type ClipOpenOptions,
  /** @deprecated use `models.ClipLayout` */
  type ClipLayout,
  /** @deprecated use `models.ClipTokenizer` */
  ClipTokenizer,
  /** @deprecated use `models.CLIP_CONTEXT_LENGTH` */
  CLIP_CONTEXT_LENGTH,
  /** @deprecated use `models.EncodedBatch` */
  type EncodedBatch,
  /** @deprecated use `models.EncodeOptions` */
  type EncodeOptions,
  /** @deprecated use `models.clipPreprocess` */
  clipPreprocess,
  /** @deprecated use `models.clipResizeCrop` */
  clipResizeCrop,
  /** @deprecated use `models.pilResize` */
  pilResize,
  /** @deprecated use `models.centerCrop` */
  centerCrop,
  /** @deprecated use `models.resizeOutputSize` */
  resizeOutputSize,
  /** @deprecated use `models.parsePreprocessorConfig` */
  parsePreprocessorConfig,
  /** @deprecated use `models.readPreprocessorConfig` */
  readPreprocessorConfig,
  /** @deprecated use `models.OPENAI_CLIP_PREPROCESS` */
  OPENAI_CLIP_PREPROCESS,
  /** @deprecated use `models.ClipPreprocessConfig` */
  type ClipPreprocessConfig,
  /** @deprecated use `models.ResampleFilter` */
  type ResampleFilter,
  /** @deprecated use `models.FeatureEmbedder` */
  FeatureEmbedder,
} from './api/models.js';
export {
  /** @deprecated use `plan.categoryPriors` */
  categoryPriors,
  /** @deprecated use `plan.frequencyGroup` */
  frequencyGroup,
  /** @deprecated use `plan.sizePriorTable` */
  sizePriorTable,
  /** @deprecated use `plan.CategoryPrior` */
  type CategoryPrior,
  /** @deprecated use `plan.SizePrior` */
  type SizePrior,
  /** @deprecated use `plan.FrequencyGroup` */
  type FrequencyGroup,
  /** @deprecated use `plan.repeatFactors` */
  repeatFactors,
  /** @deprecated use `plan.realLayout` */
  realLayout,
  /** @deprecated use `plan.objectSets` */
  objectSets,
  /** @deprecated use `plan.buildPriors` */
  buildPriors,
  /** @deprecated use `plan.RealObject` */
  type RealObject,
  /** @deprecated use `plan.RealLayout` */
  type RealLayout,
  /** @deprecated use `plan.ObjectSet` */
  type ObjectSet,
  /** @deprecated use `plan.SetOptions` */
  type SetOptions,
  /** @deprecated use `plan.PriorsCategory` */
  type PriorsCategory,
  /** @deprecated use `plan.PriorsFile` */
  type PriorsFile,
  /** @deprecated use `plan.PriorOptions` */
  type PriorOptions,
  /** @deprecated use `plan.PlanJobSchema` */
  PlanJobSchema,
  /** @deprecated use `plan.LayoutBoxSchema` */
  LayoutBoxSchema,
  /** @deprecated use `plan.PlanJob` */
  type PlanJob,
  /** @deprecated use `plan.LayoutBox` */
  type LayoutBox,
  /** @deprecated use `plan.WordNet` */
  WordNet,
  /** @deprecated use `plan.packagedWordNet` */
  packagedWordNet,
  /** @deprecated use `plan.defaultWordNetDir` */
  defaultWordNetDir,
  /** @deprecated use `plan.lemmaText` */
  lemmaText,
  /** @deprecated use `plan.Synset` */
  type Synset,
  /** @deprecated use `plan.SimilarityMeasure` */
  type SimilarityMeasure,
  /** @deprecated use `plan.planClasses` */
  planClasses,
  /** @deprecated use `plan.makeJob` */
  makeJob,
  /** @deprecated use `plan.normalizeText` */
  normalizeText,
  /** @deprecated use `plan.dedupeTexts` */
  dedupeTexts,
  /** @deprecated use `plan.dedupeJobs` */
  dedupeJobs,
  /** @deprecated use `plan.askJson` */
  askJson,
  /** @deprecated use `plan.AnswerCache` */
  AnswerCache,
  /** @deprecated use `plan.STRATEGIES` */
  STRATEGIES,
  /** @deprecated use `plan.DEFAULT_JOB` */
  DEFAULT_JOB,
  /** @deprecated use `plan.Strategy` */
  type Strategy,
  /** @deprecated use `plan.PlanClass` */
  type PlanClass,
  /** @deprecated use `plan.ClassFilter` */
  type ClassFilter,
  /** @deprecated use `plan.JobDefaults` */
  type JobDefaults,
  /** @deprecated use `plan.JobContent` */
  type JobContent,
  /** @deprecated use `plan.PlanFailure` */
  type PlanFailure,
  /** @deprecated use `plan.StrategyResult` */
  type StrategyResult,
  /** @deprecated use `plan.LlmSource` */
  type LlmSource,
  /** @deprecated use `plan.AskResult` */
  type AskResult,
  /** @deprecated use `plan.xpastePrompt` */
  xpastePrompt,
  /** @deprecated use `plan.divergenPrompt` */
  divergenPrompt,
  /** @deprecated use `plan.classDefinition` */
  classDefinition,
  /** @deprecated use `plan.planTemplates` */
  planTemplates,
  /** @deprecated use `plan.planLlmPrompts` */
  planLlmPrompts,
  /** @deprecated use `plan.mentionsClass` */
  mentionsClass,
  /** @deprecated use `plan.DIVERSITY_MODES` */
  DIVERSITY_MODES,
  /** @deprecated use `plan.DIVERGEN_OPENINGS` */
  DIVERGEN_OPENINGS,
  /** @deprecated use `plan.FALLBACK_STYLES` */
  FALLBACK_STYLES,
  /** @deprecated use `plan.FALLBACK_CONTEXTS` */
  FALLBACK_CONTEXTS,
  /** @deprecated use `plan.DiversityMode` */
  type DiversityMode,
  /** @deprecated use `plan.Definition` */
  type Definition,
  /** @deprecated use `plan.DefinitionSource` */
  type DefinitionSource,
  /** @deprecated use `plan.Meanings` */
  type Meanings,
  /** @deprecated use `plan.LlmPromptOptions` */
  type LlmPromptOptions,
  /** @deprecated use `plan.boxProblem` */
  boxProblem,
  /** @deprecated use `plan.insideUnit` */
  insideUnit,
  /** @deprecated use `plan.drawObjectSets` */
  drawObjectSets,
  /** @deprecated use `plan.objectIds` */
  objectIds,
  /** @deprecated use `plan.sceneGraphProblem` */
  sceneGraphProblem,
  /** @deprecated use `plan.layoutProblem` */
  layoutProblem,
  /** @deprecated use `plan.untagCaption` */
  untagCaption,
  /** @deprecated use `plan.templateSceneCaption` */
  templateSceneCaption,
  /** @deprecated use `plan.planScenes` */
  planScenes,
  /** @deprecated use `plan.SceneGraphSchema` */
  SceneGraphSchema,
  /** @deprecated use `plan.LayoutAnswerSchema` */
  LayoutAnswerSchema,
  /** @deprecated use `plan.DEPTH_LAYERS` */
  DEPTH_LAYERS,
  /** @deprecated use `plan.SceneGraph` */
  type SceneGraph,
  /** @deprecated use `plan.LayoutAnswer` */
  type LayoutAnswer,
  /** @deprecated use `plan.DrawnSet` */
  type DrawnSet,
  /** @deprecated use `plan.ScenePlanOptions` */
  type ScenePlanOptions,
  /** @deprecated use `plan.CaptionStore` */
  CaptionStore,
  /** @deprecated use `plan.captionImages` */
  captionImages,
  /** @deprecated use `plan.captionPrompt` */
  captionPrompt,
  /** @deprecated use `plan.planCaptions` */
  planCaptions,
  /** @deprecated use `plan.imagePath` */
  imagePath,
  /** @deprecated use `plan.sampleClassImages` */
  sampleClassImages,
  /** @deprecated use `plan.StoredCaption` */
  type StoredCaption,
  /** @deprecated use `plan.CaptionOptions` */
  type CaptionOptions,
  /** @deprecated use `plan.CaptionPlanOptions` */
  type CaptionPlanOptions,
  /** @deprecated use `plan.summariseDomains` */
  summariseDomains,
  /** @deprecated use `plan.domainPrompt` */
  domainPrompt,
  /** @deprecated use `plan.planDomains` */
  planDomains,
  /** @deprecated use `plan.DomainSummary` */
  type DomainSummary,
  /** @deprecated use `plan.DomainPlanOptions` */
  type DomainPlanOptions,
  /** @deprecated use `plan.candidateMeanings` */
  candidateMeanings,
  /** @deprecated use `plan.meaningText` */
  meaningText,
  /** @deprecated use `plan.scoreMeanings` */
  scoreMeanings,
  /** @deprecated use `plan.resolveAmbiguity` */
  resolveAmbiguity,
  /** @deprecated use `plan.meaningsOf` */
  meaningsOf,
  /** @deprecated use `plan.extraCategories` */
  extraCategories,
  /** @deprecated use `plan.classSynset` */
  classSynset,
  /** @deprecated use `plan.planAmbiguity` */
  planAmbiguity,
  /** @deprecated use `plan.openClipEmbedder` */
  openClipEmbedder,
  /** @deprecated use `plan.MeaningCandidate` */
  type MeaningCandidate,
  /** @deprecated use `plan.Resolution` */
  type Resolution,
  /** @deprecated use `plan.ResolveOptions` */
  type ResolveOptions,
  /** @deprecated use `plan.ExtraCategoryOptions` */
  type ExtraCategoryOptions,
  /** @deprecated use `plan.AmbiguityPlanOptions` */
  type AmbiguityPlanOptions,
  /** @deprecated use `plan.readMeanings` */
  readMeanings,
  /** @deprecated use `plan.PlanOptions` */
  type PlanOptions,
  /** @deprecated use `plan.PlanSummary` */
  type PlanSummary,
  /** @deprecated use `plan.EndpointOptions` */
  type EndpointOptions,
} from './api/plan.js';
export {
  /** @deprecated use `llm.ChatClient` */
  ChatClient,
  /** @deprecated use `llm.extractJson` */
  extractJson,
  /** @deprecated use `llm.imageDataUrl` */
  imageDataUrl,
  /** @deprecated use `llm.ChatMessage` */
  type ChatMessage,
  /** @deprecated use `llm.ChatClientOptions` */
  type ChatClientOptions,
  /** @deprecated use `llm.ChatResult` */
  type ChatResult,
  /** @deprecated use `llm.JsonResult` */
  type JsonResult,
} from './api/llm.js';
export {
  /** @deprecated use `layout.clisLayout` */
  clisLayout,
  /** @deprecated use `layout.clisLayoutSync` */
  clisLayoutSync,
  /** @deprecated use `layout.buildRelationPool` */
  buildRelationPool,
  /** @deprecated use `layout.packLayouts` */
  packLayouts,
  /** @deprecated use `layout.poolExamples` */
  poolExamples,
  /** @deprecated use `layout.poolToAcpJson` */
  poolToAcpJson,
  /** @deprecated use `layout.poolFromAcpJson` */
  poolFromAcpJson,
  /** @deprecated use `layout.layoutNames` */
  layoutNames,
  /** @deprecated use `layout.normalizeName` */
  normalizeName,
  /** @deprecated use `layout.normalizePredicate` */
  normalizePredicate,
  /** @deprecated use `layout.isSymmetricPredicate` */
  isSymmetricPredicate,
  /** @deprecated use `layout.LAYOUT_STATUS` */
  LAYOUT_STATUS,
  /** @deprecated use `layout.Box` */
  type Box,
  /** @deprecated use `layout.RelationExample` */
  type RelationExample,
  /** @deprecated use `layout.RelationPool` */
  type RelationPool,
  /** @deprecated use `layout.NameSimilarity` */
  type NameSimilarity,
  /** @deprecated use `layout.SceneLayout` */
  type SceneLayout,
  /** @deprecated use `layout.LayoutRelation` */
  type LayoutRelation,
  /** @deprecated use `layout.ClisLayoutOptions` */
  type ClisLayoutOptions,
  /** @deprecated use `layout.ClisLayoutResult` */
  type ClisLayoutResult,
  /** @deprecated use `layout.LayoutStatus` */
  type LayoutStatus,
  /** @deprecated use `layout.PackedLayouts` */
  type PackedLayouts,
} from './api/layout.js';
export {
  /** @deprecated use `curate.examplesFromVisualGenome` */
  examplesFromVisualGenome,
  /** @deprecated use `curate.examplesFromCoco` */
  examplesFromCoco,
  /** @deprecated use `curate.spatialRelation` */
  spatialRelation,
  /** @deprecated use `curate.SPATIAL_RELATIONS` */
  SPATIAL_RELATIONS,
  /** @deprecated use `curate.capExamples` */
  capExamples,
  /** @deprecated use `curate.readRelationPool` */
  readRelationPool,
  /** @deprecated use `curate.nameSimilarityFromFunction` */
  nameSimilarityFromFunction,
  /** @deprecated use `curate.nameSimilarityFromTable` */
  nameSimilarityFromTable,
  /** @deprecated use `curate.nameSimilarityFromEmbeddings` */
  nameSimilarityFromEmbeddings,
  /** @deprecated use `curate.poolFromExamples` */
  poolFromExamples,
  /** @deprecated use `curate.PoolCapOptions` */
  type PoolCapOptions,
  /** @deprecated use `curate.VisualGenomeOptions` */
  type VisualGenomeOptions,
  /** @deprecated use `curate.CocoRelationOptions` */
  type CocoRelationOptions,
  /** @deprecated use `curate.PoolBuildReport` */
  type PoolBuildReport,
  /** @deprecated use `curate.clipScores` */
  clipScores,
  /** @deprecated use `curate.interSimilarity` */
  interSimilarity,
  /** @deprecated use `curate.duplicateGroups` */
  duplicateGroups,
  /** @deprecated use `curate.zeroShot` */
  zeroShot,
  /** @deprecated use `curate.aliaSemantic` */
  aliaSemantic,
  /** @deprecated use `curate.ALIA_NEGATIVES` */
  ALIA_NEGATIVES,
  /** @deprecated use `curate.ImageClassifier` */
  ImageClassifier,
  /** @deprecated use `curate.softmaxRows` */
  softmaxRows,
  /** @deprecated use `curate.confidentThresholds` */
  confidentThresholds,
  /** @deprecated use `curate.confidenceScores` */
  confidenceScores,
  /** @deprecated use `curate.planToScene` */
  planToScene,
  /** @deprecated use `curate.clisImageClip` */
  clisImageClip,
  /** @deprecated use `curate.clisImageJudge` */
  clisImageJudge,
  /** @deprecated use `curate.cropBox` */
  cropBox,
  /** @deprecated use `curate.regionImage` */
  regionImage,
  /** @deprecated use `curate.gridBox` */
  gridBox,
  /** @deprecated use `curate.GradeSchema` */
  GradeSchema,
  /** @deprecated use `curate.JUDGE_PROMPTS` */
  JUDGE_PROMPTS,
  /** @deprecated use `curate.InterSimilarity` */
  type InterSimilarity,
  /** @deprecated use `curate.InterSimilarityOptions` */
  type InterSimilarityOptions,
  /** @deprecated use `curate.ZeroShot` */
  type ZeroShot,
  /** @deprecated use `curate.ClassifierOptions` */
  type ClassifierOptions,
  /** @deprecated use `curate.ClisObject` */
  type ClisObject,
  /** @deprecated use `curate.ClisImageInput` */
  type ClisImageInput,
  /** @deprecated use `curate.ClisImageResult` */
  type ClisImageResult,
  /** @deprecated use `curate.paddingCrop` */
  paddingCrop,
  /** @deprecated use `curate.maskBounds` */
  maskBounds,
  /** @deprecated use `curate.annotationMask` */
  annotationMask,
  /** @deprecated use `curate.compositeOnWhite` */
  compositeOnWhite,
  /** @deprecated use `curate.alphaAreaFraction` */
  alphaAreaFraction,
  /** @deprecated use `curate.writeRealCrops` */
  writeRealCrops,
  /** @deprecated use `curate.PaddingCropOptions` */
  type PaddingCropOptions,
  /** @deprecated use `curate.readScores` */
  readScores,
  /** @deprecated use `curate.mergeScores` */
  mergeScores,
  /** @deprecated use `curate.formatScores` */
  formatScores,
  /** @deprecated use `curate.ScoreTable` */
  type ScoreTable,
  /** @deprecated use `curate.ScoreColumns` */
  type ScoreColumns,
  /** @deprecated use `curate.ScoreValue` */
  type ScoreValue,
  /** @deprecated use `curate.applyFilters` */
  applyFilters,
  /** @deprecated use `curate.PRESETS` */
  PRESETS,
  /** @deprecated use `curate.FILTER_DEFAULTS` */
  FILTER_DEFAULTS,
  /** @deprecated use `curate.Decision` */
  type Decision,
  /** @deprecated use `curate.FilterOptions` */
  type FilterOptions,
  /** @deprecated use `curate.Rule` */
  type Rule,
  /** @deprecated use `curate.embedImages` */
  embedImages,
  /** @deprecated use `curate.embedTexts` */
  embedTexts,
  /** @deprecated use `curate.readTextLines` */
  readTextLines,
  /** @deprecated use `curate.EmbedImagesOptions` */
  type EmbedImagesOptions,
  /** @deprecated use `curate.EmbedTextsOptions` */
  type EmbedTextsOptions,
  /** @deprecated use `curate.EmbedRunResult` */
  type EmbedRunResult,
  /** @deprecated use `curate.EmbedderSpec` */
  type EmbedderSpec,
  /** @deprecated use `curate.uniqueness` */
  uniqueness,
  /** @deprecated use `curate.diverseSubset` */
  diverseSubset,
  /** @deprecated use `curate.UniquenessOptions` */
  type UniquenessOptions,
  /** @deprecated use `curate.UniquenessResult` */
  type UniquenessResult,
  /** @deprecated use `curate.DiverseSubsetOptions` */
  type DiverseSubsetOptions,
  /** @deprecated use `curate.DiverseSubset` */
  type DiverseSubset,
} from './api/curate.js';
export {
  /** @deprecated use `generate.assignBackend` */
  assignBackend,
  /** @deprecated use `generate.createBackend` */
  createBackend,
  /** @deprecated use `generate.BackendSpec` */
  type BackendSpec,
  /** @deprecated use `generate.GenerateOptions` */
  type GenerateOptions,
  /** @deprecated use `generate.GenerateSummary` */
  type GenerateSummary,
  /** @deprecated use `generate.GenerateProgress` */
  type GenerateProgress,
  /** @deprecated use `generate.GenerateJournalLine` */
  type GenerateJournalLine,
  /** @deprecated use `generate.A1111Backend` */
  A1111Backend,
  /** @deprecated use `generate.ComfyBackend` */
  ComfyBackend,
  /** @deprecated use `generate.checkWorkflow` */
  checkWorkflow,
  /** @deprecated use `generate.expandBoxes` */
  expandBoxes,
  /** @deprecated use `generate.OpenAIBackend` */
  OpenAIBackend,
  /** @deprecated use `generate.readPlan` */
  readPlan,
  /** @deprecated use `generate.parsePlan` */
  parsePlan,
  /** @deprecated use `generate.Backend` */
  type Backend,
  /** @deprecated use `generate.BackendOptions` */
  type BackendOptions,
  /** @deprecated use `generate.BackendType` */
  type BackendType,
  /** @deprecated use `generate.GenerateRequest` */
  type GenerateRequest,
  /** @deprecated use `generate.GenerateResult` */
  type GenerateResult,
  /** @deprecated use `generate.ProceduralBackend` */
  ProceduralBackend,
  /** @deprecated use `generate.writeRealDataset` */
  writeRealDataset,
  /** @deprecated use `generate.generateProcedural` */
  generateProcedural,
  /** @deprecated use `generate.proceduralTruth` */
  proceduralTruth,
  /** @deprecated use `generate.SHAPE_CLASSES` */
  SHAPE_CLASSES,
  /** @deprecated use `generate.DEFAULT_FAILURE_RATES` */
  DEFAULT_FAILURE_RATES,
  /** @deprecated use `generate.RealDatasetOptions` */
  type RealDatasetOptions,
  /** @deprecated use `generate.RealDataset` */
  type RealDataset,
  /** @deprecated use `generate.FailureRates` */
  type FailureRates,
  /** @deprecated use `generate.GeneratedTruth` */
  type GeneratedTruth,
  /** @deprecated use `generate.ShapeClass` */
  type ShapeClass,
} from './api/generate.js';
export {
  /** @deprecated use `composite.compositeBatch` */
  compositeBatch,
  /** @deprecated use `composite.compositeBatchSync` */
  compositeBatchSync,
  /** @deprecated use `composite.compositeSync` */
  compositeSync,
  /** @deprecated use `composite.CompositeOutputPool` */
  CompositeOutputPool,
  /** @deprecated use `composite.BlendMode` */
  type BlendMode,
  /** @deprecated use `composite.CompositeBbox` */
  type CompositeBbox,
  /** @deprecated use `composite.DropReason` */
  type DropReason,
  /** @deprecated use `composite.InstanceSource` */
  type InstanceSource,
  /** @deprecated use `composite.RgbFrame` */
  type RgbFrame,
  /** @deprecated use `composite.PasteInstance` */
  type PasteInstance,
  /** @deprecated use `composite.CompositeScene` */
  type CompositeScene,
  /** @deprecated use `composite.CompositeOptions` */
  type CompositeOptions,
  /** @deprecated use `composite.CompositeInstance` */
  type CompositeInstance,
  /** @deprecated use `composite.CompositeDrop` */
  type CompositeDrop,
  /** @deprecated use `composite.CompositeResult` */
  type CompositeResult,
} from './api/composite.js';
export {
  /** @deprecated use `augment.sampleInstances` */
  sampleInstances,
  /** @deprecated use `augment.resolveSampleOptions` */
  resolveSampleOptions,
  /** @deprecated use `augment.itemSeed` */
  itemSeed,
  /** @deprecated use `augment.itemRandom` */
  itemRandom,
  /** @deprecated use `augment.shuffledIndices` */
  shuffledIndices,
  /** @deprecated use `augment.SAMPLE_DEFAULTS` */
  SAMPLE_DEFAULTS,
  /** @deprecated use `augment.SampleOptions` */
  type SampleOptions,
  /** @deprecated use `augment.SamplingMode` */
  type SamplingMode,
  /** @deprecated use `augment.SamplingCategory` */
  type SamplingCategory,
  /** @deprecated use `augment.SamplingInstance` */
  type SamplingInstance,
  /** @deprecated use `augment.SizePriorEntry` */
  type SizePriorEntry,
  /** @deprecated use `augment.Placement` */
  type Placement,
  /** @deprecated use `augment.SampleResult` */
  type SampleResult,
  /** @deprecated use `augment.readInstancePool` */
  readInstancePool,
  /** @deprecated use `augment.normalizeCategoryName` */
  normalizeCategoryName,
  /** @deprecated use `augment.decodeCrop` */
  decodeCrop,
  /** @deprecated use `augment.CropCache` */
  CropCache,
  /** @deprecated use `augment.LruCache` */
  LruCache,
  /** @deprecated use `augment.InstancePool` */
  type InstancePool,
  /** @deprecated use `augment.PoolCategory` */
  type PoolCategory,
  /** @deprecated use `augment.PoolInstance` */
  type PoolInstance,
  /** @deprecated use `augment.PoolSkip` */
  type PoolSkip,
  /** @deprecated use `augment.ReadPoolOptions` */
  type ReadPoolOptions,
  /** @deprecated use `augment.RgbaCrop` */
  type RgbaCrop,
  /** @deprecated use `augment.paste` */
  paste,
  /** @deprecated use `augment.preparePaste` */
  preparePaste,
  /** @deprecated use `augment.planItem` */
  planItem,
  /** @deprecated use `augment.renderItem` */
  renderItem,
  /** @deprecated use `augment.imageKeys` */
  imageKeys,
  /** @deprecated use `augment.resolvePasteFormats` */
  resolvePasteFormats,
  /** @deprecated use `augment.PASTE_FORMATS` */
  PASTE_FORMATS,
  /** @deprecated use `augment.PasteOptions` */
  type PasteOptions,
  /** @deprecated use `augment.PasteSourceOptions` */
  type PasteSourceOptions,
  /** @deprecated use `augment.PasteContext` */
  type PasteContext,
  /** @deprecated use `augment.PasteFormat` */
  type PasteFormat,
  /** @deprecated use `augment.PasteSummary` */
  type PasteSummary,
  /** @deprecated use `augment.PasteJournalLine` */
  type PasteJournalLine,
  /** @deprecated use `augment.RenderTask` */
  type RenderTask,
  /** @deprecated use `augment.RenderResult` */
  type RenderResult,
  /** @deprecated use `augment.pasteLoader` */
  pasteLoader,
  /** @deprecated use `augment.PasteLoader` */
  type PasteLoader,
  /** @deprecated use `augment.PasteLoaderOptions` */
  type PasteLoaderOptions,
  /** @deprecated use `augment.PasteSample` */
  type PasteSample,
  /** @deprecated use `augment.PasteSampleAnnotation` */
  type PasteSampleAnnotation,
} from './api/augment.js';
export {
  /** @deprecated use `pipeline.loadConfig` */
  loadConfig,
  /** @deprecated use `pipeline.validateConfig` */
  validateConfig,
  /** @deprecated use `pipeline.parseConfigText` */
  parseConfigText,
  /** @deprecated use `pipeline.mergeConfig` */
  mergeConfig,
  /** @deprecated use `pipeline.readPreset` */
  readPreset,
  /** @deprecated use `pipeline.presetPath` */
  presetPath,
  /** @deprecated use `pipeline.checkReachable` */
  checkReachable,
  /** @deprecated use `pipeline.RunConfigSchema` */
  RunConfigSchema,
  /** @deprecated use `pipeline.PresetSchema` */
  PresetSchema,
  /** @deprecated use `pipeline.STAGES` */
  STAGES,
  /** @deprecated use `pipeline.BUNDLED_PRESETS` */
  BUNDLED_PRESETS,
  /** @deprecated use `pipeline.RunConfig` */
  type RunConfig,
  /** @deprecated use `pipeline.LoadedConfig` */
  type LoadedConfig,
  /** @deprecated use `pipeline.StageName` */
  type StageName,
  /** @deprecated use `pipeline.runPipeline` */
  runPipeline,
  /** @deprecated use `pipeline.readManifest` */
  readManifest,
  /** @deprecated use `pipeline.RunOptions` */
  type RunOptions,
  /** @deprecated use `pipeline.RunResult` */
  type RunResult,
  /** @deprecated use `pipeline.Manifest` */
  type Manifest,
  /** @deprecated use `pipeline.StageRecord` */
  type StageRecord,
  /** @deprecated use `pipeline.OutputRecord` */
  type OutputRecord,
  /** @deprecated use `pipeline.STAGE_DEFS` */
  STAGE_DEFS,
  /** @deprecated use `pipeline.filterRules` */
  filterRules,
  /** @deprecated use `pipeline.filterOptions` */
  filterOptions,
  /** @deprecated use `pipeline.StageDef` */
  type StageDef,
  /** @deprecated use `pipeline.StageContext` */
  type StageContext,
} from './api/pipeline.js';
export {
  /** @deprecated use `util.splitCredentials` */
  splitCredentials,
  /** @deprecated use `util.maskCredentials` */
  maskCredentials,
  /** @deprecated use `util.readAppendLog` */
  readAppendLog,
} from './api/util.js';
