/** ONNX models: CLIP (image/text), SAM, foreground segmenters, the weight-free feature embedder. */
export {
  SamModel,
} from '../models/sam.js';
export {
  Segmenter,
} from '../models/segmenter.js';
export {
  openSession, checkSignature, providerStatus, providerForDevice, type OnnxModel, type OnnxSession, type OnnxTensor, type OnnxValueMetadata,
  type OnnxElementType, type SessionOptions, type Provider, type Signature, type SignatureMatch, type TensorSpec, type DimSpec,
} from '../models/onnx.js';
export {
  type ImageEmbedder, type TextEmbedder, type ImageTextEmbedder, type RgbInput,
} from '../models/types.js';
export {
  ClipModel, type ClipOpenOptions, type ClipLayout,
} from '../models/clip.js';
export {
  ClipTokenizer, CLIP_CONTEXT_LENGTH, type EncodedBatch, type EncodeOptions,
} from '../models/tokenizer.js';
export {
  clipPreprocess, clipResizeCrop, pilResize, centerCrop, resizeOutputSize, parsePreprocessorConfig,
  readPreprocessorConfig, OPENAI_CLIP_PREPROCESS, type ClipPreprocessConfig, type ResampleFilter,
} from '../models/clip-preprocess.js';
export {
  FeatureEmbedder,
} from '../models/features.js';
export {
  readOnnxGraph, withGraphOutputs, batchNormTaps, type OnnxGraphInfo, type OnnxNodeInfo, type BnTap,
} from '../models/onnx-graph.js';
