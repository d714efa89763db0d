/** Binary masks and COCO RLE: post-processing, components, holes, boxes, IoU, polygons. */
export {
  invertMask, invertMaskBatch, invertMaskBatchSync, largestComponent, largestComponentSync,
  largestComponentBatch, largestComponentBatchSync, fillHoles, fillHolesSync, fillHolesBatch,
  fillHolesBatchSync, maskArea, maskBbox, maskStatsBatch, maskStatsBatchSync, maskIou, maskIouBatch,
  cropToMask, cropToMaskSync, cornerBackground, cornerBackgroundSync, foregroundFromCorners,
  foregroundFromCornersSync, postProcessMask, postProcessMaskSync, postProcessBatch, postProcessBatchSync,
  encodeRle, encodeRleSync, encodeRleBatch, encodeRleBatchSync, decodeRle, decodeRleSync, decodeRleBatch,
  decodeRleBatchSync, rleArea, rleToBbox, compressRle, uncompressRle, mergeRles, rleIou, rleIouSync,
  polygonsToRle, segmentationToRle, checkMask, checkMaskBatch, checkImage, checkRle, type Mask,
  type MaskBatch, type Image as RgbImage, type Connectivity, type Bbox, type Rle, type RleForm,
  type MaskOptions, type ComponentOptions, type PostProcessOptions, type PostProcessResult,
  type CornerOptions, type CornerResult, type Crop, type LargestComponent, type LargestComponentBatch,
  type MaskStats,
} from '../kernels/mask.js';
export {
  joinRings, maskToPolygon, traceBoundaries,
} from '../augment/contour.js';
