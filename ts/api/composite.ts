/** The native copy-paste compositor. */
export {
  compositeBatch, compositeBatchSync, compositeSync, CompositeOutputPool, compositeMemory, type BlendMode, type CompositeBbox,
  type DropReason, type InstanceSource, type RgbFrame, type PasteInstance, type CompositeScene,
  type CompositeOptions, type CompositeInstance, type CompositeDrop, type CompositeResult,
} from '../kernels/composite.js';
