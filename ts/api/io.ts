/** Files: .npy, safetensors, images, COCO, WebDataset shards, atomic writes. */
export {
  readNpy, readNpyHeader, readMatrix, writeNpy, encodeNpy, NpyRowReader, NpyStreamWriter,
  float16BitsToFloat32, float32ToFloat16Bits, type NpyDtype, type NpyArray, type NpyHeader,
} from '../io/npy.js';
export {
  readSafetensors, decodeSafetensors, writeSafetensors, encodeSafetensors, SAFETENSORS_DTYPES,
} from '../io/safetensors.js';
export {
  writeFileAtomic, AtomicWriter,
} from '../io/atomic.js';
export {
  readImage, imageInfo, compositeAlpha, DEFAULT_MAX_PIXELS, type ImageInput, type RawImage,
  type DecodedImage, type ReadImageOptions, type ImageInfo, type AlphaBackground,
} from '../io/images.js';
export {
  readCoco, parseCoco, writeCoco, displayName, type CocoDataset, type CocoIndex, type CocoImage,
  type CocoAnnotation, type CocoCategory, type CocoProblem, type CocoRle, type ReadCocoOptions, type CocoSegmentation,
  PackedPolygons, packPolygons, polygonRings, polygonFloat64Rings, isPolygons,
} from '../io/coco.js';
export {
  indexShards, readShardMember, ShardWriter, tarHeader, type ShardMember, type ShardWriterOptions,
} from '../io/webdataset.js';
