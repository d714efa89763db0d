/** CLIS-L layouts: relation pools and layout scoring. */
export {
  clisLayout, clisLayoutSync, buildRelationPool, packLayouts, poolExamples, poolToAcpJson, poolFromAcpJson,
  layoutNames, normalizeName, normalizePredicate, isSymmetricPredicate, LAYOUT_STATUS, type Box,
  type RelationExample, type RelationPool, type NameSimilarity, type SceneLayout, type LayoutRelation,
  type ClisLayoutOptions, type ClisLayoutResult, type LayoutStatus, type PackedLayouts,
} from '../kernels/layout.js';
