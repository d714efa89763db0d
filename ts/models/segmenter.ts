/**
 * A generic ONNX foreground (salient object) segmenter, the U²-Net / ISNet
 * family X-Paste used: a model taking float32 1×3×H×W and returning a
 * 1×1×H'×W' foreground probability (or logits). The image is resized to H×W
 * (the model's static input size, aspect not kept, as those models are
 * trained), scaled to [0, 1], normalised with mean/std (ImageNet by default),
 * and the output is resized back to the image size (bilinear, half-pixel
 * centres) and thresholded.
 *
 * Event loop: onnxruntime-node's run() blocks it (see onnx.ts).
 */
import { readImage, type ImageInput } from '../io/images.js';
import { GenaugError } from '../native/errors.js';
import { checkInt, checkNumber } from '../native/validate.js';
import * as ort from 'onnxruntime-node';

import {
  checkOutput,
  checkSignature,
  normaliseToChw,
  openSession,
  resizeBilinear,
  resizeRgb,
  runSession,
  type OnnxModel,
  type Provider,
} from './onnx.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface SegmenterOptions {
  model: string;
  provider?: Provider;
  threads?: number;
  /** Per-channel mean and std on [0, 1] pixels (default ImageNet's). */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** What the output holds (default 'probability'); 'logits' goes through a sigmoid. */
  output?: 'probability' | 'logits';
  /**
   * 'minmax' rescales the output map to [0, 1] by its own min and max before
   * thresholding (U²-Net's and ISNet's reference inference, normPRED); default 'none'.
   */
  normalize?: 'none' | 'minmax';
  /** Foreground where probability > threshold (default 0.5). */
  threshold?: number;
  /** Input/output names, needed only when the model has several inputs; the output defaults to the first (U²-Net's d0). */
  inputName?: string;
  outputName?: string;
  /** Input size for a model with dynamic H, W (ignored, or checked, when static). */
  inputSize?: { width: number; height: number };
  /** Pixel limit for decoded images, checked from the header (default DEFAULT_MAX_PIXELS, 8192 x 8192). */
  maxPixels?: number;
}

export interface ForegroundResult {
  /** H×W, 1 = foreground, row-major, at the image's size. */
  mask: Uint8Array;
  /** H×W foreground probability at the image's size. */
  probability: Float32Array;
  width: number;
  height: number;
  /** Foreground pixels. */
  area: number;
}

function checkTriple(v: unknown, name: string, positive: boolean): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) throw new GenaugError('E_SHAPE', `${name} must be 3 numbers (R, G, B)`);
  return v.map((x, i) => {
    const n = checkNumber(x, `${name}[${i}]`);
    if (positive && n <= 0) throw new GenaugError('E_RANGE', `${name}[${i}] must be > 0, got ${n}`);
    return n;
  }) as [number, number, number];
}

export class Segmenter {
  private constructor(
    readonly model: OnnxModel,
    readonly inputName: string,
    readonly outputName: string,
    /** The size images are resized to. */
    readonly inputWidth: number,
    readonly inputHeight: number,
    private readonly opts: Required<Pick<SegmenterOptions, 'output' | 'normalize' | 'threshold'>> & {
      mean: [number, number, number];
      std: [number, number, number];
      maxPixels: number | undefined;
    },
  ) {}

  /** Opens and validates a segmenter (E_IO, E_MODEL with every mismatch, E_CUDA_UNAVAILABLE). */
  static async load(opts: SegmenterOptions): Promise<Segmenter> {
    if (typeof opts !== 'object' || opts === null) throw new GenaugError('E_TYPE', 'Segmenter.load needs { model }');
    const mean = checkTriple(opts.mean ?? IMAGENET_MEAN, 'mean', false);
    const std = checkTriple(opts.std ?? IMAGENET_STD, 'std', true);
    const threshold = checkNumber(opts.threshold ?? 0.5, 'threshold');
    if (threshold < 0 || threshold >= 1) throw new GenaugError('E_RANGE', `threshold must be in [0, 1), got ${threshold}`);
    const output = opts.output ?? 'probability';
    if (output !== 'probability' && output !== 'logits') {
      throw new GenaugError('E_RANGE', `output must be 'probability' or 'logits', got ${JSON.stringify(output)}`);
    }
    const normalize = opts.normalize ?? 'none';
    if (normalize !== 'none' && normalize !== 'minmax') {
      throw new GenaugError('E_RANGE', `normalize must be 'none' or 'minmax', got ${JSON.stringify(normalize)}`);
    }
    if (opts.inputSize !== undefined) {
      checkInt(opts.inputSize.width, 'inputSize.width', 1, 16384);
      checkInt(opts.inputSize.height, 'inputSize.height', 1, 16384);
    }

    const model = await openSession(opts.model, 'segmenter', {
      provider: opts.provider ?? 'cpu',
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
    try {
      const s = model.session;
      let inputName = opts.inputName;
      if (inputName === undefined) {
        if (s.inputNames.length !== 1) {
          throw new GenaugError(
            'E_MODEL',
            `segmenter (${model.path}) has ${s.inputNames.length} inputs (${s.inputNames.join(', ')}); expected one image input 1x3xHxW, or pass inputName`,
          );
        }
        inputName = s.inputNames[0] as string;
      }
      const outputName = opts.outputName ?? s.outputNames[0];
      if (outputName === undefined) throw new GenaugError('E_MODEL', `segmenter (${model.path}) has no outputs`);
      checkSignature(model, {
        inputs: [{ name: inputName, type: 'float32', dims: [1, 3, null, null] }],
        outputs: [{ name: outputName, type: 'float32', dims: [1, 1, null, null] }],
        allowExtraInputs: false,
      });
      const meta = s.inputMetadata.find((m) => m.name === inputName);
      const shape = meta && meta.isTensor ? meta.shape : [];
      const h = shape[2];
      const w = shape[3];
      let width: number;
      let height: number;
      if (typeof h === 'number' && typeof w === 'number') {
        if (opts.inputSize && (opts.inputSize.width !== w || opts.inputSize.height !== h)) {
          throw new GenaugError(
            'E_SHAPE',
            `segmenter (${model.path}) takes a static ${w} x ${h} input, but inputSize is ${opts.inputSize.width} x ${opts.inputSize.height}`,
          );
        }
        width = w;
        height = h;
      } else if (opts.inputSize) {
        width = opts.inputSize.width;
        height = opts.inputSize.height;
      } else {
        throw new GenaugError(
          'E_MODEL',
          `segmenter (${model.path}) input '${inputName}' has dynamic height/width [${shape.join(', ')}]: pass inputSize { width, height } (320 for U²-Net, 1024 for ISNet)`,
        );
      }
      return new Segmenter(model, inputName, outputName, width, height, {
        output,
        normalize,
        threshold,
        mean,
        std,
        maxPixels: opts.maxPixels,
      });
    } catch (e) {
      await model.session.release();
      throw e;
    }
  }

  /** Foreground mask and probability of an image at its own size. */
  async segment(image: ImageInput): Promise<ForegroundResult> {
    const rgb = await readImage(image, { maxPixels: this.opts.maxPixels });
    const W = this.inputWidth;
    const H = this.inputHeight;
    const resized = await resizeRgb(rgb, W, H);
    const tensor = new Float32Array(3 * W * H);
    // (v / 255 − mean) / std = (v − 255·mean) / (255·std)
    normaliseToChw(
      resized,
      this.opts.mean.map((m) => m * 255),
      this.opts.std.map((s) => s * 255),
      tensor,
      W,
      H,
    );
    const out = await runSession(this.model, { [this.inputName]: new ort.Tensor('float32', tensor, [1, 3, H, W]) }, [this.outputName]);
    const t = out[this.outputName];
    const data = checkOutput(this.model, this.outputName, t, 4, [1, 1, null, null]);
    const oh = (t as ort.Tensor).dims[2] as number;
    const ow = (t as ort.Tensor).dims[3] as number;
    if (oh < 1 || ow < 1) throw new GenaugError('E_MODEL', `segmenter (${this.model.path}) returned an empty ${ow} x ${oh} map`);

    const prob = new Float32Array(data.length);
    if (this.opts.output === 'logits') {
      for (let i = 0; i < data.length; i++) prob[i] = 1 / (1 + Math.exp(-(data[i] as number)));
    } else {
      prob.set(data);
    }
    if (this.opts.normalize === 'minmax') {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of prob) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const span = hi - lo;
      for (let i = 0; i < prob.length; i++) prob[i] = span > 0 ? ((prob[i] as number) - lo) / span : 0;
    }
    for (const v of prob) {
      if (!Number.isFinite(v)) throw new GenaugError('E_NONFINITE', `segmenter (${this.model.path}) returned NaN or infinity`);
    }
    const probability = resizeBilinear(prob, ow, oh, rgb.width, rgb.height);
    const mask = new Uint8Array(probability.length);
    let area = 0;
    const thr = this.opts.threshold;
    for (let i = 0; i < probability.length; i++) {
      if ((probability[i] as number) > thr) {
        mask[i] = 1;
        area++;
      }
    }
    return { mask, probability, width: rgb.width, height: rgb.height, area };
  }

  async release(): Promise<void> {
    await this.model.session.release();
  }
}
