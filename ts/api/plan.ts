/** Plan stage: class priors, WordNet, prompts, scenes, captions, domains; `plan.plan` writes a plan file. */
export {
  categoryPriors, frequencyGroup, sizePriorTable, type CategoryPrior, type SizePrior, type FrequencyGroup,
  repeatFactors, realLayout, objectSets, buildPriors, type RealObject, type RealLayout, type ObjectSet,
  type SetOptions, type PriorsCategory, type PriorsFile, type PriorOptions,
} from '../plan/priors.js';
export {
  PlanJobSchema, LayoutBoxSchema, type PlanJob, type LayoutBox,
} from '../plan/job.js';
export {
  WordNet, packagedWordNet, defaultWordNetDir, lemmaText, type Synset, type SimilarityMeasure,
} from '../plan/wordnet.js';
export {
  planClasses, makeJob, normalizeText, dedupeTexts, dedupeJobs, askJson, AnswerCache, STRATEGIES,
  DEFAULT_JOB, type Strategy, type PlanClass, type ClassFilter, type JobDefaults, type JobContent,
  type PlanFailure, type StrategyResult, type LlmSource, type AskResult,
} from '../plan/core.js';
export {
  xpastePrompt, divergenPrompt, classDefinition, planTemplates, planLlmPrompts, mentionsClass,
  DIVERSITY_MODES, DIVERGEN_OPENINGS, FALLBACK_STYLES, FALLBACK_CONTEXTS, type DiversityMode,
  type Definition, type DefinitionSource, type Meanings, type LlmPromptOptions,
} from '../plan/prompts.js';
export {
  boxProblem, insideUnit, drawObjectSets, objectIds, sceneGraphProblem, layoutProblem, untagCaption,
  templateSceneCaption, planScenes, SceneGraphSchema, LayoutAnswerSchema, DEPTH_LAYERS, type SceneGraph,
  type LayoutAnswer, type DrawnSet, type ScenePlanOptions,
} from '../plan/scenes.js';
export {
  CaptionStore, captionImages, captionPrompt, planCaptions, imagePath, sampleClassImages, type StoredCaption,
  type CaptionOptions, type CaptionPlanOptions,
} from '../plan/captions.js';
export {
  summariseDomains, domainPrompt, planDomains, type DomainSummary, type DomainPlanOptions,
} from '../plan/domains.js';
export {
  candidateMeanings, meaningText, scoreMeanings, resolveAmbiguity, meaningsOf, extraCategories, classSynset,
  planAmbiguity, openClipEmbedder, type MeaningCandidate, type Resolution, type ResolveOptions,
  type ExtraCategoryOptions, type AmbiguityPlanOptions,
} from '../plan/ambiguity.js';
export {
  plan, readMeanings, type PlanOptions, type PlanSummary, type EndpointOptions,
} from '../plan/plan.js';
export { plan as run } from '../plan/plan.js';
