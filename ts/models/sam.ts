/**
 * Segment Anything (SAM) through onnxruntime-node: an image encoder + prompt
 * decoder pair, SamPredictor's preprocessing and coordinate transform, point
 * prompts, and DiverGen's SAM-background (four corner prompts) with a
 * documented choice among the multimask outputs.
 *
 * The pair
 * - Decoder: the official segment-anything ONNX export (scripts/export_onnx_model.py),
 *   inputs exactly `image_embeddings` float32 [1,256,64,64], `point_coords` [1,N,2],
 *   `point_labels` [1,N], `mask_input` [1,1,256,256], `has_mask_input` [1],
 *   `orig_im_size` [2]; outputs `masks` [1,C,H,W] (logits, > 0 = mask, at
 *   orig_im_size), `iou_predictions` [1,C] and optionally `low_res_masks`
 *   [1,C,256,256]. C is 4 for the default export (channel 0 is the single-mask
 *   output, 1..3 the multimask outputs), 1 with --return-single-mask, 3 for
 *   exports that return only the multimask outputs.
 * - Encoder: segment-anything exports none; the third-party exports
 *   (samexporter, the SAM export scripts of various repositories) take the
 *   normalised, padded image float32 [1,3,1024,1024] under one of
 *   SAM_ENCODER_INPUT_NAMES and return [1,256,64,64] under one of
 *   SAM_ENCODER_OUTPUT_NAMES. `encoderInput`/`encoderOutput` name others.
 *   Encoders with the preprocessing inside the graph (raw HWC uint8 input)
 *   are rejected: genaug preprocesses itself.
 *
 * Event loop: onnxruntime-node's run() blocks it (see onnx.ts); the API is
 * async so that it can move into a worker without changing callers.
 */
import { readImage, type ImageInput, type RgbImage } from '../io/images.js';
import { GenaugError } from '../native/errors.js';
import { checkInt, checkNumber } from '../native/validate.js';
import * as ort from 'onnxruntime-node';

import {
  checkOutput,
  checkSignature,
  normaliseToChw,
  openSession,
  resizeRgb,
  runSession,
  type OnnxModel,
  type OnnxValueMetadata,
  type Provider,
  type Signature,
} from './onnx.js';

export const SAM_IMAGE_SIZE = 1024;
export const SAM_EMBEDDING_DIMS = [1, 256, 64, 64] as const;
export const SAM_PIXEL_MEAN = [123.675, 116.28, 103.53] as const;
export const SAM_PIXEL_STD = [58.395, 57.12, 57.375] as const;
/** Encoder input names accepted, in order of preference. */
export const SAM_ENCODER_INPUT_NAMES = ['image', 'input_image', 'images', 'pixel_values', 'x', 'input'] as const;
/** Encoder output names accepted, in order of preference. */
export const SAM_ENCODER_OUTPUT_NAMES = ['image_embeddings', 'embeddings', 'image_embedding', 'output'] as const;
/** The default predicted-IoU floor of the SAM-background mask choice. */
export const DEFAULT_SCORE_FLOOR = 0.5;

/** A point (x, y) in pixels of the original image: x is the column, y the row. */
export type Point = readonly [x: number, y: number];

export interface SamLoadOptions {
  encoder: string;
  decoder: string;
  provider?: Provider;
  threads?: number;
  /** The encoder's input name when it is none of SAM_ENCODER_INPUT_NAMES. */
  encoderInput?: string;
  /** The encoder's output name when it is none of SAM_ENCODER_OUTPUT_NAMES. */
  encoderOutput?: string;
  /** Pixel limit for decoded images, checked from the header (default DEFAULT_MAX_PIXELS, 8192 x 8192). */
  maxPixels?: number;
}

/** An image encoded once, to prompt many times. */
export interface SamEmbedding {
  /** float32 1×256×64×64. */
  embeddings: Float32Array;
  /** Original image size. */
  width: number;
  height: number;
}

export interface SamMasks {
  width: number;
  height: number;
  /** One H×W mask per decoder output channel, row-major, 1 = inside (logit > 0). */
  masks: Uint8Array[];
  /** Pixels in each mask. */
  areas: number[];
  /** The decoder's predicted IoU of each mask. */
  scores: number[];
  /** The channels that are multimask outputs (1..3 of a 4-channel export, all otherwise). */
  multimask: number[];
}

/**
 * How SAM-background picks its mask among the multimask candidates:
 * - 'largest-passing' (default): the largest area among candidates whose
 *   predicted IoU ≥ scoreFloor; if none passes, the highest score.
 * - 'highest-score': the highest predicted IoU (SamPredictor users' habit).
 * - { index }: a fixed output channel (DiverGen's released code takes masks[2]
 *   of SamPredictor's three, i.e. channel 3 of a 4-channel export).
 * Ties go to the higher score, then the lower channel.
 */
export type MaskChoice = 'largest-passing' | 'highest-score' | { index: number };

export interface BackgroundOptions {
  choice?: MaskChoice;
  scoreFloor?: number;
}

export interface SamBackground {
  /** H×W, 1 = background (the chosen mask), row-major. */
  background: Uint8Array;
  width: number;
  height: number;
  /** The decoder output channel chosen. */
  chosen: number;
  /** The channels considered (the multimask outputs). */
  candidates: number[];
  /** Area and predicted IoU of every output channel. */
  areas: number[];
  scores: number[];
  /** True when no candidate passed the score floor and the highest score was taken. */
  fallback: boolean;
}

/** SamPredictor's ResizeLongestSide.get_preprocess_shape: long side to 1024, each side rounded half up. */
export function samResizeShape(width: number, height: number, longSide = SAM_IMAGE_SIZE): { width: number; height: number } {
  checkInt(width, 'width', 1);
  checkInt(height, 'height', 1);
  const scale = longSide / Math.max(width, height);
  return { width: Math.floor(width * scale + 0.5), height: Math.floor(height * scale + 0.5) };
}

/**
 * Points (x, y) of a width × height image into the 1024 frame, as
 * SamPredictor's ResizeLongestSide.apply_coords: x·(W'/W), y·(H'/H) where
 * W' × H' is the resized size (so the factor is 1024 / max(W, H) up to the
 * rounding of the short side). Returns interleaved x', y' as float32.
 */
export function samTransformPoints(points: readonly Point[], width: number, height: number): Float32Array {
  const r = samResizeShape(width, height);
  const fx = r.width / width;
  const fy = r.height / height;
  const out = new Float32Array(points.length * 2);
  points.forEach(([x, y], i) => {
    out[2 * i] = x * fx;
    out[2 * i + 1] = y * fy;
  });
  return out;
}

/** The SAM-background prompt: the four corners (x, y) = (0,0), (W−1,0), (0,H−1), (W−1,H−1), all positive. */
export function cornerPrompts(width: number, height: number): { points: Point[]; labels: number[] } {
  checkInt(width, 'width', 1);
  checkInt(height, 'height', 1);
  const points: Point[] = [
    [0, 0],
    [width - 1, 0],
    [0, height - 1],
    [width - 1, height - 1],
  ];
  return { points, labels: [1, 1, 1, 1] };
}

/**
 * SAM's image preprocessing: resize so the long side is 1024 (bilinear,
 * keeping the aspect), normalise with SAM's pixel mean/std, pad bottom/right
 * with zeros to 1024², CHW float32 (1×3×1024×1024).
 */
export async function samPreprocess(
  image: ImageInput | RgbImage,
  maxPixels?: number,
): Promise<{ tensor: Float32Array; width: number; height: number; resizedWidth: number; resizedHeight: number }> {
  const rgb = isRgb(image) ? image : await readImage(image, { maxPixels });
  const r = samResizeShape(rgb.width, rgb.height);
  const resized = await resizeRgb(rgb, r.width, r.height);
  const tensor = new Float32Array(3 * SAM_IMAGE_SIZE * SAM_IMAGE_SIZE);
  normaliseToChw(resized, SAM_PIXEL_MEAN, SAM_PIXEL_STD, tensor, SAM_IMAGE_SIZE, SAM_IMAGE_SIZE);
  return { tensor, width: rgb.width, height: rgb.height, resizedWidth: r.width, resizedHeight: r.height };
}

function isRgb(v: unknown): v is RgbImage {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Buffer.isBuffer(v) &&
    !('channels' in v) &&
    'data' in v &&
    (v as RgbImage).data instanceof Uint8Array &&
    (v as RgbImage).data.length === (v as RgbImage).width * (v as RgbImage).height * 3
  );
}

/** The multimask channels of a decoder with C outputs. */
export function multimaskChannels(c: number): number[] {
  if (c === 4) return [1, 2, 3];
  return Array.from({ length: c }, (_, i) => i);
}

/** Applies a MaskChoice (see its doc) to per-channel scores and areas. */
export function chooseMask(
  scores: readonly number[],
  areas: readonly number[],
  candidates: readonly number[],
  choice: MaskChoice = 'largest-passing',
  scoreFloor = DEFAULT_SCORE_FLOOR,
): { index: number; fallback: boolean } {
  checkNumber(scoreFloor, 'scoreFloor');
  if (candidates.length === 0) throw new GenaugError('E_RANGE', 'no candidate masks to choose from');
  if (typeof choice === 'object' && choice !== null) {
    checkInt(choice.index, 'choice.index', 0, scores.length - 1);
    return { index: choice.index, fallback: false };
  }
  const s = (i: number): number => scores[i] as number;
  const a = (i: number): number => areas[i] as number;
  const byScore = (best: number, i: number): number => (s(i) > s(best) ? i : best);
  if (choice === 'highest-score') return { index: candidates.reduce(byScore), fallback: false };
  if (choice !== 'largest-passing') {
    throw new GenaugError('E_RANGE', `choice must be 'largest-passing', 'highest-score' or { index }, got ${JSON.stringify(choice)}`);
  }
  const passing = candidates.filter((i) => s(i) >= scoreFloor);
  if (passing.length === 0) return { index: candidates.reduce(byScore), fallback: true };
  const index = passing.reduce((best, i) => (a(i) > a(best) || (a(i) === a(best) && s(i) > s(best)) ? i : best));
  return { index, fallback: false };
}

const DECODER_SIGNATURE: Signature = {
  inputs: [
    { name: 'image_embeddings', type: 'float32', dims: [...SAM_EMBEDDING_DIMS] },
    { name: 'point_coords', type: 'float32', dims: [1, null, 2] },
    { name: 'point_labels', type: 'float32', dims: [1, null] },
    { name: 'mask_input', type: 'float32', dims: [1, 1, 256, 256] },
    { name: 'has_mask_input', type: 'float32', dims: [1] },
    { name: 'orig_im_size', type: 'float32', dims: [2] },
  ],
  outputs: [
    { name: 'masks', type: 'float32', dims: [1, null, null, null] },
    { name: 'iou_predictions', type: 'float32', dims: [1, null] },
    { name: 'low_res_masks', type: 'float32', dims: [1, null, 256, 256], optional: true },
  ],
};

function encoderSignature(input: readonly string[], output: readonly string[]): Signature {
  return {
    inputs: [{ name: 'image', names: input, type: 'float32', dims: [1, 3, SAM_IMAGE_SIZE, SAM_IMAGE_SIZE] }],
    outputs: [{ name: 'image_embeddings', names: output, type: 'float32', dims: [...SAM_EMBEDDING_DIMS] }],
  };
}

function staticDim(meta: OnnxValueMetadata | undefined, i: number): number | undefined {
  if (!meta || !meta.isTensor) return undefined;
  const d = meta.shape[i];
  return typeof d === 'number' ? d : undefined;
}

export class SamModel {
  /** The encoder's input and output names that were found. */
  readonly encoderNames: { input: string; output: string };
  /** C when the decoder declares it statically. */
  readonly numMasks: number | undefined;
  /** N when the decoder was exported with a fixed number of points. */
  readonly fixedPoints: number | undefined;

  private constructor(
    readonly encoder: OnnxModel,
    readonly decoder: OnnxModel,
    names: { input: string; output: string },
    private readonly maxPixels: number | undefined,
  ) {
    this.encoderNames = names;
    const masksMeta = decoder.session.outputMetadata.find((m) => m.name === 'masks');
    const iouMeta = decoder.session.outputMetadata.find((m) => m.name === 'iou_predictions');
    this.numMasks = staticDim(masksMeta, 1) ?? staticDim(iouMeta, 1);
    this.fixedPoints = staticDim(
      decoder.session.inputMetadata.find((m) => m.name === 'point_coords'),
      1,
    );
  }

  /**
   * Opens and validates an encoder/decoder pair. Missing files → E_IO; not
   * ONNX → E_MODEL; wrong inputs/outputs → one E_MODEL per model listing every
   * mismatch; provider 'cuda' without CUDA → E_CUDA_UNAVAILABLE.
   */
  static async load(opts: SamLoadOptions): Promise<SamModel> {
    if (typeof opts !== 'object' || opts === null) throw new GenaugError('E_TYPE', 'SamModel.load needs { encoder, decoder }');
    const sessionOpts = { provider: opts.provider ?? 'cpu', ...(opts.threads !== undefined ? { threads: opts.threads } : {}) };
    const encoder = await openSession(opts.encoder, 'SAM encoder', sessionOpts);
    let decoder: OnnxModel;
    try {
      decoder = await openSession(opts.decoder, 'SAM decoder', sessionOpts);
    } catch (e) {
      await encoder.session.release();
      throw e;
    }
    try {
      const inNames = opts.encoderInput !== undefined ? [opts.encoderInput] : SAM_ENCODER_INPUT_NAMES;
      const outNames = opts.encoderOutput !== undefined ? [opts.encoderOutput] : SAM_ENCODER_OUTPUT_NAMES;
      const problems: string[] = [];
      let names = { input: '', output: '' };
      try {
        const m = checkSignature(encoder, encoderSignature(inNames, outNames));
        names = { input: m.inputs['image'] as string, output: m.outputs['image_embeddings'] as string };
      } catch (e) {
        if (!(e instanceof GenaugError)) throw e;
        problems.push(
          `${e.message}\n(a SAM encoder takes the normalised, padded image float32 [1, 3, 1024, 1024] as one of ` +
            `${inNames.join(', ')} and returns [1, 256, 64, 64] as one of ${outNames.join(', ')}; ` +
            'pass encoderInput/encoderOutput for other names)',
        );
      }
      try {
        checkSignature(decoder, DECODER_SIGNATURE);
      } catch (e) {
        if (!(e instanceof GenaugError)) throw e;
        problems.push(`${e.message}\n(the decoder must have the official segment-anything ONNX export signature)`);
      }
      if (problems.length > 0) throw new GenaugError('E_MODEL', problems.join('\n'));
      const model = new SamModel(encoder, decoder, names, opts.maxPixels);
      const masksMeta = decoder.session.outputMetadata.find((m) => m.name === 'masks');
      const iouMeta = decoder.session.outputMetadata.find((m) => m.name === 'iou_predictions');
      const cm = staticDim(masksMeta, 1);
      const ci = staticDim(iouMeta, 1);
      if (cm !== undefined && ci !== undefined && cm !== ci) {
        throw new GenaugError('E_MODEL', `SAM decoder (${decoder.path}): masks has ${cm} channels but iou_predictions has ${ci} scores`);
      }
      return model;
    } catch (e) {
      await Promise.allSettled([encoder.session.release(), decoder.session.release()]);
      throw e;
    }
  }

  /** Encodes an image (path, encoded bytes or raw pixels) once for any number of prompts. */
  async embed(image: ImageInput): Promise<SamEmbedding> {
    const pre = await samPreprocess(image, this.maxPixels);
    const input = new ort.Tensor('float32', pre.tensor, [1, 3, SAM_IMAGE_SIZE, SAM_IMAGE_SIZE]);
    const out = await runSession(this.encoder, { [this.encoderNames.input]: input }, [this.encoderNames.output]);
    const emb = checkOutput(this.encoder, this.encoderNames.output, out[this.encoderNames.output], 4, [...SAM_EMBEDDING_DIMS]);
    return { embeddings: emb, width: pre.width, height: pre.height };
  }

  /**
   * Masks for point prompts: `points` are (x, y) in pixels of the original
   * image, `labels` 1 = foreground, 0 = background (also 2/3 = box corners,
   * as the export accepts). The padding point (0, 0) with label −1 is
   * appended as in the official ONNX example. Masks come back at the
   * original size.
   */
  async segmentPoints(image: ImageInput | SamEmbedding, points: readonly Point[], labels: readonly number[]): Promise<SamMasks> {
    const emb = isEmbedding(image) ? image : await this.embed(image);
    const { width: W, height: H } = emb;
    if (!Array.isArray(points) || points.length === 0) throw new GenaugError('E_SHAPE', 'segmentPoints needs at least one point');
    if (!Array.isArray(labels) || labels.length !== points.length) {
      throw new GenaugError('E_SHAPE', `segmentPoints: ${points.length} points but ${Array.isArray(labels) ? labels.length : 'no'} labels`);
    }
    points.forEach((p, i) => {
      if (!Array.isArray(p) || p.length !== 2) throw new GenaugError('E_SHAPE', `point ${i} must be [x, y]`);
      const x = checkNumber(p[0], `point ${i} x`);
      const y = checkNumber(p[1], `point ${i} y`);
      if (x < 0 || x > W || y < 0 || y > H) {
        throw new GenaugError('E_RANGE', `point ${i} (x=${x}, y=${y}) is outside the ${W} x ${H} image (points are (x, y): x ≤ width, y ≤ height)`);
      }
      const l = checkNumber(labels[i], `label ${i}`);
      if (![0, 1, 2, 3].includes(l)) throw new GenaugError('E_RANGE', `label ${i} must be 1 (foreground), 0 (background), 2 or 3 (box corners), got ${l}`);
    });
    const n = points.length + 1;
    if (this.fixedPoints !== undefined && this.fixedPoints !== n) {
      throw new GenaugError(
        'E_SHAPE',
        `SAM decoder (${this.decoder.path}) was exported with a fixed number of points (${this.fixedPoints}); ` +
          `genaug feeds ${n} (${points.length} prompts + the padding point): export it with a dynamic num_points axis`,
      );
    }
    const coords = new Float32Array(n * 2);
    coords.set(samTransformPoints(points, W, H));
    const lab = new Float32Array(n);
    labels.forEach((l, i) => (lab[i] = l));
    lab[n - 1] = -1; // padding point (0, 0)

    const feeds = {
      image_embeddings: new ort.Tensor('float32', emb.embeddings, [...SAM_EMBEDDING_DIMS]),
      point_coords: new ort.Tensor('float32', coords, [1, n, 2]),
      point_labels: new ort.Tensor('float32', lab, [1, n]),
      mask_input: new ort.Tensor('float32', new Float32Array(256 * 256), [1, 1, 256, 256]),
      has_mask_input: new ort.Tensor('float32', new Float32Array([0]), [1]),
      orig_im_size: new ort.Tensor('float32', new Float32Array([H, W]), [2]),
    };
    const out = await runSession(this.decoder, feeds, ['masks', 'iou_predictions']);
    const masksT = out['masks'];
    const logits = checkOutput(this.decoder, 'masks', masksT, 4, [1, null, H, W]);
    const C = (masksT as ort.Tensor).dims[1] as number;
    const iou = checkOutput(this.decoder, 'iou_predictions', out['iou_predictions'], 2, [1, C]);
    const plane = H * W;
    const masks: Uint8Array[] = [];
    const areas: number[] = [];
    for (let c = 0; c < C; c++) {
      const m = new Uint8Array(plane);
      let area = 0;
      const base = c * plane;
      for (let i = 0; i < plane; i++) {
        if ((logits[base + i] as number) > 0) {
          m[i] = 1;
          area++;
        }
      }
      masks.push(m);
      areas.push(area);
    }
    return { width: W, height: H, masks, areas, scores: Array.from(iou), multimask: multimaskChannels(C) };
  }

  /**
   * DiverGen's SAM-background: the four corners as positive points, then the
   * background mask chosen among the multimask outputs (see MaskChoice;
   * default the largest whose predicted IoU ≥ 0.5). Invert it for the object.
   */
  async segmentBackground(image: ImageInput | SamEmbedding, opts: BackgroundOptions = {}): Promise<SamBackground> {
    const emb = isEmbedding(image) ? image : await this.embed(image);
    const { points, labels } = cornerPrompts(emb.width, emb.height);
    const r = await this.segmentPoints(emb, points, labels);
    const { index, fallback } = chooseMask(r.scores, r.areas, r.multimask, opts.choice ?? 'largest-passing', opts.scoreFloor ?? DEFAULT_SCORE_FLOOR);
    return {
      background: r.masks[index] as Uint8Array,
      width: r.width,
      height: r.height,
      chosen: index,
      candidates: r.multimask,
      areas: r.areas,
      scores: r.scores,
      fallback,
    };
  }

  async release(): Promise<void> {
    await Promise.allSettled([this.encoder.session.release(), this.decoder.session.release()]);
  }
}

function isEmbedding(v: unknown): v is SamEmbedding {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && 'embeddings' in v;
}
