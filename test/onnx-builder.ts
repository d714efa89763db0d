/**
 * Builds tiny ONNX models in the tests themselves (no weights can be fetched):
 * a ModelProto (IR 8, opset 17) from standard operators, written with
 * onnx-proto. The weights are not the point; the names, shapes and the wiring
 * around the model are.
 *
 *   const g = new GraphBuilder('toy');
 *   const x = g.input('x', 'float32', [1, 3, 'H', 'W']);
 *   const y = g.node('ReduceMean', [x], { axes: [1], keepdims: 1 });
 *   g.output(g.node('Identity', [y], {}, 'y'), 'float32', [1, 1, 'H', 'W']);
 *   await g.write(path);
 */
import { writeFile } from 'node:fs/promises';

import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'int64' | 'int32' | 'bool' | 'uint8';

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/** A float attribute (plain numbers are INT attributes, number[] INTS, strings STRING). */
export function float(value: number): { float: number } {
  return { float: value };
}

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** A value info dim: a number is static, a string a symbolic (dynamic) dimension. */
export type Dim = number | string;

function valueInfo(name: string, elem: ElemType, dims: readonly Dim[] | null): O.IValueInfoProto {
  const tensorType: O.TypeProto.ITensor = { elemType: ELEM[elem] };
  if (dims !== null) {
    tensorType.shape = { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  }
  return { name, type: { tensorType } };
}

function attribute(name: string, v: AttrValue): O.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use float(${v}) for a float attribute`);
    return { name, type: T.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}

export class GraphBuilder {
  private readonly nodes: O.INodeProto[] = [];
  private readonly inputs: O.IValueInfoProto[] = [];
  private readonly outputs: O.IValueInfoProto[] = [];
  private readonly initializers: O.ITensorProto[] = [];
  private counter = 0;

  constructor(readonly name = 'genaug_test_graph') {}

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Declares a graph input; dims null leaves the shape unknown. */
  input(name: string, elem: ElemType, dims: readonly Dim[] | null): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares a graph output (the value must be produced by a node of that name). */
  output(name: string, elem: ElemType, dims: readonly Dim[] | null): string {
    this.outputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** A float32 initializer; dims [] makes a scalar. */
  constF(values: readonly number[], dims: readonly number[] = [values.length], name?: string): string {
    const n = name ?? this.fresh('cf');
    const raw = new Uint8Array(new Float32Array(values).buffer);
    this.initializers.push({ name: n, dataType: ELEM.float32, dims: [...dims], rawData: raw });
    return n;
  }

  /** An int64 initializer; dims [] makes a scalar. */
  constI64(values: readonly number[], dims: readonly number[] = [values.length], name?: string): string {
    const n = name ?? this.fresh('ci');
    const raw = new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
    this.initializers.push({ name: n, dataType: ELEM.int64, dims: [...dims], rawData: raw });
    return n;
  }

  /**
   * Adds a node and returns its first output name (or `outputs` names when
   * given as an array). `output` names the result, e.g. a graph output.
   */
  node(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(op.toLowerCase());
    this.nodes.push({
      opType: op,
      name: this.fresh(`n_${op}`),
      input: [...inputs],
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  toBytes(opset = 17): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'genaug-tests',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  async write(path: string, opset = 17): Promise<string> {
    await writeFile(path, this.toBytes(opset));
    return path;
  }
}

// ---------------------------------------------------------------------------
// The tiny SAM pair and segmenter the tests use.

export interface EncoderOptions {
  inputName?: string;
  outputName?: string;
  /** Input dims (default [1, 3, 1024, 1024]). */
  inputDims?: Dim[];
  outputDims?: Dim[];
}

/**
 * A toy SAM image encoder: 16×16 average pooling of the 1×3×1024×1024 input
 * to 1×3×64×64, then channels tiled so embedding channel c = input channel c % 3.
 * It keeps the spatial layout, so a test can read the preprocessing back.
 */
export function samEncoder(opts: EncoderOptions = {}): GraphBuilder {
  const g = new GraphBuilder('toy_sam_encoder');
  const x = g.input(opts.inputName ?? 'image', 'float32', opts.inputDims ?? [1, 3, 1024, 1024]);
  const pooled = g.node('AveragePool', [x], { kernel_shape: [16, 16], strides: [16, 16] });
  const tiled = g.node('Tile', [pooled, g.constI64([1, 86, 1, 1])]);
  const outName = opts.outputName ?? 'image_embeddings';
  g.node('Slice', [tiled, g.constI64([0]), g.constI64([256]), g.constI64([1])], {}, outName);
  g.output(outName, 'float32', opts.outputDims ?? [1, 256, 64, 64]);
  return g;
}

export interface DecoderOptions {
  /**
   * Half-sizes of the boxes of the masks (one mask per entry, default
   * [5.5, 10.5, 20.5]): mask k covers the original-frame pixels whose Chebyshev
   * distance to some positive point (label 1) is below radii[k].
   */
  radii?: number[];
  /** The fixed iou_predictions (default 0.9 for every mask). */
  scores?: number[];
  /** Rename or drop inputs/outputs, change ranks, to test the signature check. */
  rename?: Record<string, string>;
  omitOutputs?: string[];
  pointCoordsDims?: Dim[];
  masksElem?: ElemType;
}

/**
 * The decoder's point coordinates ([1, N, 2] in the 1024 frame) taken back to the original image, as the official
 * export's mask post-processing does: the image was resized to round(H·s) × round(W·s), s = 1024 / max(H, W); the
 * points are mapped back per axis. Returns H, W (scalars from orig_im_size), the constant 0.5 and the [N, 2] points.
 */
function originalFrame(g: GraphBuilder, pc: string, size: string): { H: string; W: string; half: string; orig: string } {
  const H = g.node('Gather', [size, g.constI64([0], [])], { axis: 0 });
  const W = g.node('Gather', [size, g.constI64([1], [])], { axis: 0 });
  const scale = g.node('Div', [g.constF([1024], []), g.node('Max', [H, W])]);
  const half = g.constF([0.5], []);
  const newH = g.node('Floor', [g.node('Add', [g.node('Mul', [H, scale]), half])]);
  const newW = g.node('Floor', [g.node('Add', [g.node('Mul', [W, scale]), half])]);
  const back = g.node('Concat', [g.node('Unsqueeze', [g.node('Div', [W, newW]), g.constI64([0])]), g.node('Unsqueeze', [g.node('Div', [H, newH]), g.constI64([0])])], { axis: 0 }); // [2]: x, y factors
  const orig = g.node('Mul', [g.node('Reshape', [pc, g.constI64([-1, 2])]), back]); // [N, 2]
  return { H, W, half, orig };
}

/**
 * A toy SAM decoder with the official segment-anything ONNX signature.
 * Its masks are computed from `point_coords` and `point_labels`: the points
 * are taken back to the original frame as the official export's
 * post-processing does (x·W/round(W·s), y·H/round(H·s), s = 1024 / max(H, W),
 * H, W from `orig_im_size`), and mask k (logits, > 0 inside) is the set of
 * pixels (row r, column c) with max(|c − x|, |r − y|) < radii[k] for some
 * point (x, y) of label 1. The output is H × W: the original size.
 * `iou_predictions` are the constants `scores`; `low_res_masks` is mask_input
 * expanded to C channels.
 */
export function samDecoder(opts: DecoderOptions = {}): GraphBuilder {
  const radii = opts.radii ?? [5.5, 10.5, 20.5];
  const scores = opts.scores ?? radii.map(() => 0.9);
  const C = radii.length;
  const nm = (s: string): string => opts.rename?.[s] ?? s;
  const g = new GraphBuilder('toy_sam_decoder');
  g.input(nm('image_embeddings'), 'float32', [1, 256, 64, 64]);
  const pc = g.input(nm('point_coords'), 'float32', opts.pointCoordsDims ?? [1, 'num_points', 2]);
  const pl = g.input(nm('point_labels'), 'float32', [1, 'num_points']);
  const mi = g.input(nm('mask_input'), 'float32', [1, 1, 256, 256]);
  g.input(nm('has_mask_input'), 'float32', [1]);
  const size = g.input(nm('orig_im_size'), 'float32', [2]);

  const { H, W, half, orig } = originalFrame(g, pc, size);
  const px = g.node('Reshape', [g.node('Slice', [orig, g.constI64([0]), g.constI64([1]), g.constI64([1])]), g.constI64([-1, 1, 1])]);
  const py = g.node('Reshape', [g.node('Slice', [orig, g.constI64([1]), g.constI64([2]), g.constI64([1])]), g.constI64([-1, 1, 1])]);
  const zero = g.constF([0], []);
  const one = g.constF([1], []);
  const cols = g.node('Reshape', [g.node('Range', [zero, W, one]), g.constI64([1, 1, -1])]); // [1, 1, W]
  const rows = g.node('Reshape', [g.node('Range', [zero, H, one]), g.constI64([1, -1, 1])]); // [1, H, 1]
  const dx = g.node('Abs', [g.node('Sub', [cols, px])]); // [N, 1, W]
  const dy = g.node('Abs', [g.node('Sub', [rows, py])]); // [N, H, 1]
  const d = g.node('Max', [dx, dy]); // [N, H, W]
  const lab = g.node('Reshape', [pl, g.constI64([-1, 1, 1])]);
  const pos = g.node('Cast', [g.node('Equal', [lab, one])], { to: ELEM.float32 });
  const penalty = g.node('Mul', [g.node('Sub', [one, pos]), g.constF([1e6], [])]);
  const dmin = g.node('ReduceMin', [g.node('Add', [d, penalty])], { axes: [0], keepdims: 1 }); // [1, H, W]
  const logits = g.node('Sub', [g.constF(radii, [C, 1, 1]), dmin]); // [C, H, W]
  const masksName = nm('masks');
  if (opts.masksElem === 'uint8') {
    g.node('Cast', [g.node('Unsqueeze', [logits, g.constI64([0])])], { to: ELEM.uint8 }, masksName);
  } else {
    g.node('Unsqueeze', [logits, g.constI64([0])], {}, masksName);
  }
  g.node('Identity', [g.constF(scores, [1, C])], {}, nm('iou_predictions'));
  g.node('Expand', [mi, g.constI64([1, C, 256, 256])], {}, nm('low_res_masks'));

  const omit = new Set(opts.omitOutputs ?? []);
  if (!omit.has('masks')) g.output(masksName, opts.masksElem ?? 'float32', [1, C, 'H', 'W']);
  if (!omit.has('iou_predictions')) g.output(nm('iou_predictions'), 'float32', [1, C]);
  if (!omit.has('low_res_masks')) g.output(nm('low_res_masks'), 'float32', [1, C, 256, 256]);
  return g;
}

/**
 * A toy SAM decoder for box prompts, with the official signature: the box is the point of label 2 (top left) and
 * the point of label 3 (bottom right), mapped back to the original frame as samDecoder does; every output channel
 * is the box shrunk by `inset` pixels on each side (logit > 0 inside: pixel centres c + 0.5 with
 * x0 + inset < c + 0.5 < x1 − inset, likewise rows). A prompt without box corners gives an empty mask.
 */
export function samBoxDecoder(inset = 2, channels = 4): GraphBuilder {
  const g = new GraphBuilder('toy_sam_box_decoder');
  g.input('image_embeddings', 'float32', [1, 256, 64, 64]);
  const pc = g.input('point_coords', 'float32', [1, 'num_points', 2]);
  const pl = g.input('point_labels', 'float32', [1, 'num_points']);
  const mi = g.input('mask_input', 'float32', [1, 1, 256, 256]);
  g.input('has_mask_input', 'float32', [1]);
  const size = g.input('orig_im_size', 'float32', [2]);
  const { H, W, half, orig } = originalFrame(g, pc, size);
  const lab = g.node('Reshape', [pl, g.constI64([-1, 1])]); // [N, 1]
  // The coordinates of the label-2 and label-3 points (sums over the points, weighted by the label match).
  const corner = (label: number) => g.node('ReduceSum', [g.node('Mul', [orig, g.node('Cast', [g.node('Equal', [lab, g.constF([label], [])])], { to: ELEM.float32 })]), g.constI64([0])], { keepdims: 0 }); // [2]
  const tl = corner(2);
  const br = corner(3);
  const at = (v: string, i: number) => g.node('Gather', [v, g.constI64([i], [])], { axis: 0 });
  const inset_ = g.constF([inset], []);
  const x0 = g.node('Add', [at(tl, 0), inset_]);
  const y0 = g.node('Add', [at(tl, 1), inset_]);
  const x1 = g.node('Sub', [at(br, 0), inset_]);
  const y1 = g.node('Sub', [at(br, 1), inset_]);
  const zero = g.constF([0], []);
  const one = g.constF([1], []);
  const cols = g.node('Add', [g.node('Reshape', [g.node('Range', [zero, W, one]), g.constI64([1, -1])]), half]); // [1, W] pixel centres
  const rows = g.node('Add', [g.node('Reshape', [g.node('Range', [zero, H, one]), g.constI64([-1, 1])]), half]); // [H, 1]
  const inX = g.node('Min', [g.node('Sub', [cols, x0]), g.node('Sub', [x1, cols])]); // [1, W]
  const inY = g.node('Min', [g.node('Sub', [rows, y0]), g.node('Sub', [y1, rows])]); // [H, 1]
  const logit = g.node('Min', [inX, inY]); // [H, W]
  g.node('Expand', [g.node('Unsqueeze', [logit, g.constI64([0, 1])]), g.node('Concat', [g.constI64([1, channels]), g.node('Shape', [logit])], { axis: 0 })], {}, 'masks');
  g.node('Identity', [g.constF(Array.from({ length: channels }, () => 0.9), [1, channels])], {}, 'iou_predictions');
  g.node('Expand', [mi, g.constI64([1, channels, 256, 256])], {}, 'low_res_masks');
  g.output('masks', 'float32', [1, channels, 'H', 'W']);
  g.output('iou_predictions', 'float32', [1, channels]);
  g.output('low_res_masks', 'float32', [1, channels, 256, 256]);
  return g;
}

export interface SegmenterModelOptions {
  height: number;
  width: number;
  /** Output is downsampled by this integer factor (average pooling). */
  outputStride?: number;
  /** 'probability' outputs 0/1 (channel 0 of the normalised input > 0); 'logits' outputs channel 0 itself. */
  kind?: 'probability' | 'logits';
  inputName?: string;
  outputName?: string;
  inputDims?: Dim[];
  outputChannels?: number;
  /** The input channel the foreground is read from (default 0, red). */
  channel?: number;
}

/**
 * A toy foreground segmenter: 1×3×H×W → 1×1×H'×W'. The foreground is where
 * channel 0 (red) of the normalised input is > 0, i.e. where red > the mean
 * (`channel` picks another one: 1 = green).
 */
export function segmenterModel(o: SegmenterModelOptions): GraphBuilder {
  const g = new GraphBuilder('toy_segmenter');
  const s = o.outputStride ?? 1;
  const x = g.input(o.inputName ?? 'input', 'float32', o.inputDims ?? [1, 3, o.height, o.width]);
  const ch = o.outputChannels ?? 1;
  const c0 = o.channel ?? 0;
  let r = g.node('Slice', [x, g.constI64([c0]), g.constI64([c0 + ch]), g.constI64([1])]);
  if (s > 1) r = g.node('AveragePool', [r], { kernel_shape: [s, s], strides: [s, s] });
  const outName = o.outputName ?? 'output';
  if ((o.kind ?? 'probability') === 'probability') {
    g.node('Cast', [g.node('Greater', [r, g.constF([0], [])])], { to: ELEM.float32 }, outName);
  } else {
    g.node('Identity', [r], {}, outName);
  }
  g.output(outName, 'float32', [1, ch, o.height / s, o.width / s]);
  return g;
}
