/**
 * What scorers and filters need from an image-text model. CLIP (models/clip.ts)
 * and the weight-free feature embedder (image side only) implement it, so the
 * scores in curate/ run with whichever the user has.
 */
export interface RgbInput {
  /** Interleaved RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface ImageEmbedder {
  /** Output width of one embedding row. */
  readonly dim: number;
  /** A short name for provenance (model folder, "features-v1", ...). */
  readonly name: string;
  /** One L2-normalised row per image, row-major (images.length x dim). */
  embedImages(images: RgbInput[]): Promise<Float32Array>;
}

export interface TextEmbedder {
  readonly dim: number;
  readonly name: string;
  /** One L2-normalised row per text, row-major (texts.length x dim). */
  embedTexts(texts: string[]): Promise<Float32Array>;
}

/** A joint image-text model such as CLIP: both embeddings live in one space. */
export interface ImageTextEmbedder extends ImageEmbedder, TextEmbedder {
  /** CLIP's logit scale (exp of the learned temperature), 100 for OpenAI CLIP. */
  readonly logitScale: number;
  close?(): Promise<void>;
}
