/**
 * The demo's tiny models, built at run time (no weights can be downloaded): small ONNX graphs with hand-set
 * weights that read the procedural world's shape colours, so the classification methods run through the same
 * model code a real run uses (models/clip.ts, curate/score.ts ImageClassifier, curate/auxbn.ts), with numbers
 * that mean something on procedural shapes.
 *
 * Both models see an image as per-pixel colour memberships: for a reference colour c (0..1 RGB) a pixel x gets
 * max(0, 1 - |x - c|² / tau), computed with standard operators (Conv for 2c·x - |c|², ReduceSum of x·x for |x|²).
 *
 * - classifier (ALIA's confidence filter, DDFT's aux-BN): input [N, 3, S, S] normalised with ImageNet's mean/std,
 *   memberships of the six class colours → BatchNormalization (state-dict name `bn1`, identity statistics) →
 *   GlobalAveragePool → Gemm → logits [N, 6]: the logit of class k is `gain` times the image's share of pixels of
 *   colour k, so a picture filled with one class's colour is a confident prediction, a small or empty one is not.
 * - CLIP-like pair (ALIA's semantic filter, DDFT's label-ambiguity scoring): image embedding = [the six colour
 *   shares, their sum (any coloured shape), the share of white pixels] (x gain, + a small floor so no row is
 *   zero); text embedding = the sum of its tokens' rows, where a class name or its colour word points at that
 *   class's dimension, "coloured" at the any-colour one, "blank"/"empty"/"white" at the
 *   white one, and every other word at nothing (a tiny floor). A BPE tokenizer.json of single-byte tokens plus one
 *   token per known word goes with it, in the format of a CLIP export.
 *
 * These are stand-ins with hand-set weights, not trained models: they exist so the demo's filters are the method's
 * own code on numbers that can be checked by eye.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../io/atomic.js';
import { SHAPE_CLASSES } from '../generate/procedural-world.js';
import { bytesToUnicode } from '../models/tokenizer.js';

// --- a minimal ONNX (protobuf) writer -------------------------------------------------------------

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

class Proto {
  readonly parts: number[] = [];
  int(field: number, v: number | bigint): this {
    this.parts.push(...varint((field << 3) | 0), ...varint(v));
    return this;
  }
  bytes(field: number, b: Uint8Array | number[]): this {
    this.parts.push(...varint((field << 3) | 2), ...varint(b.length));
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, [...new TextEncoder().encode(s)]);
  }
  msg(field: number, m: Proto): this {
    return this.bytes(field, m.parts);
  }
  f32(field: number, v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.parts.push(...varint((field << 3) | 5), ...b);
    return this;
  }
}

type Attr = number | number[] | { float: number };
type Dim = number | string;

const FLOAT = 1;
const INT64 = 7;

function valueInfo(name: string, elem: number, dims: readonly Dim[]): Proto {
  const shape = new Proto();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().str(2, d));
  return new Proto().str(1, name).msg(2, new Proto().msg(1, new Proto().int(1, elem).msg(2, shape)));
}

/** An ONNX graph (IR 8, opset 17) from standard operators. */
export class OnnxGraph {
  private readonly nodes: Proto[] = [];
  private readonly inits: Proto[] = [];
  private readonly ins: Proto[] = [];
  private readonly outs: Proto[] = [];
  private n = 0;

  constructor(private readonly name: string) {}

  input(name: string, elem: 'float32' | 'int64', dims: readonly Dim[]): string {
    this.ins.push(valueInfo(name, elem === 'float32' ? FLOAT : INT64, dims));
    return name;
  }

  output(name: string, dims: readonly Dim[]): void {
    this.outs.push(valueInfo(name, FLOAT, dims));
  }

  constF(values: readonly number[], dims: readonly number[], name?: string): string {
    const n = name ?? `c${this.n++}`;
    const t = new Proto();
    for (const d of dims) t.int(1, d);
    t.int(2, FLOAT).str(8, n).bytes(9, new Uint8Array(new Float32Array(values).buffer));
    this.inits.push(t);
    return n;
  }

  constI64(values: readonly number[]): string {
    const n = `c${this.n++}`;
    const t = new Proto().int(1, values.length).int(2, INT64).str(8, n).bytes(9, new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer));
    this.inits.push(t);
    return n;
  }

  node(op: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? `${op.toLowerCase()}${this.n++}`;
    const p = new Proto();
    for (const i of inputs) p.str(1, i);
    p.str(2, out).str(3, `${op}_${this.n++}`).str(4, op);
    for (const [k, v] of Object.entries(attrs)) {
      const a = new Proto().str(1, k);
      if (typeof v === 'number') a.int(3, v).int(20, 2);
      else if (Array.isArray(v)) {
        for (const x of v) a.int(8, x);
        a.int(20, 7);
      } else a.f32(2, v.float).int(20, 1);
      p.msg(5, a);
    }
    this.nodes.push(p);
    return out;
  }

  toBytes(): Uint8Array {
    const g = new Proto();
    for (const nd of this.nodes) g.msg(1, nd);
    g.str(2, this.name);
    for (const t of this.inits) g.msg(5, t);
    for (const i of this.ins) g.msg(11, i);
    for (const o of this.outs) g.msg(12, o);
    const m = new Proto().int(1, 8).str(2, 'genaug-demo').msg(7, g).msg(8, new Proto().str(1, '').int(2, 17));
    return Uint8Array.from(m.parts);
  }
}

// --- colour memberships ---------------------------------------------------------------------------

/** The reference colours (0..1) of the procedural classes, in SHAPE_CLASSES order. */
export const CLASS_COLOURS: Array<[number, number, number]> = SHAPE_CLASSES.map((c) => c.colour.map((v) => v / 255) as [number, number, number]);
export const WHITE: [number, number, number] = [1, 1, 1];
/** Squared RGB distance (0..1 scale) at which a membership reaches 0. */
export const MEMBERSHIP_TAU = 0.08;

/** [N, K, S, S] memberships of the pixels (normalised input: x = x' · std + mean) to each colour. */
function memberships(g: OnnxGraph, input: string, mean: readonly number[], std: readonly number[], colours: ReadonlyArray<readonly number[]>): string {
  // Back to 0..1 pixels: a per-channel 1x1 convolution (diagonal weight std, bias mean).
  const diag = [std[0]!, 0, 0, 0, std[1]!, 0, 0, 0, std[2]!];
  const x = g.node('Conv', [input, g.constF(diag, [3, 3, 1, 1]), g.constF([...mean], [3])]);
  const sq = g.node('ReduceSum', [g.node('Mul', [x, x]), g.constI64([1])], { keepdims: 1 });
  const K = colours.length;
  const w: number[] = [];
  const b: number[] = [];
  for (const c of colours) {
    w.push(2 * c[0]!, 2 * c[1]!, 2 * c[2]!);
    b.push(-(c[0]! ** 2 + c[1]! ** 2 + c[2]! ** 2));
  }
  const lin = g.node('Conv', [x, g.constF(w, [K, 3, 1, 1]), g.constF(b, [K])]);
  const neg = g.node('Sub', [lin, sq]); // -|x - c|²
  return g.node('Relu', [g.node('Add', [g.node('Mul', [neg, g.constF([1 / MEMBERSHIP_TAU], [])]), g.constF([1], [])])]);
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** The classifier's logit gain: logit_k = gain · (share of pixels of class k's colour). */
export const CLASSIFIER_GAIN = 12;
export const CLASSIFIER_SIZE = 32;

/** The demo's tiny classifier (see the file comment); class order = SHAPE_CLASSES. */
export function tinyClassifier(size = CLASSIFIER_SIZE, gain = CLASSIFIER_GAIN): Uint8Array {
  const K = CLASS_COLOURS.length;
  const g = new OnnxGraph('genaug_demo_classifier');
  const x = g.input('input', 'float32', ['batch', 3, size, size]);
  const m = memberships(g, x, IMAGENET_MEAN, IMAGENET_STD, CLASS_COLOURS);
  const ones = new Array<number>(K).fill(1);
  const zeros = new Array<number>(K).fill(0);
  const bn = g.node('BatchNormalization', [m, g.constF(ones, [K], 'bn1.weight'), g.constF(zeros, [K], 'bn1.bias'), g.constF(zeros, [K], 'bn1.running_mean'), g.constF(ones, [K], 'bn1.running_var')], { epsilon: { float: 0 } });
  const flat = g.node('Flatten', [g.node('GlobalAveragePool', [bn])], { axis: 1 });
  const eye: number[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) eye.push(i === j ? gain : 0);
  g.node('Gemm', [flat, g.constF(eye, [K, K], 'fc.weight'), g.constF(zeros, [K], 'fc.bias')], { transB: 1 }, 'logits');
  g.output('logits', ['batch', K]);
  return g.toBytes();
}

/** The tiny CLIP's embedding width: six class colours, any colour, white, then where the colour is (a 4 x 4 grid). */
export const CLIP_GRID = 4;
export const CLIP_DIM = 8 + CLIP_GRID * CLIP_GRID;
const CLIP_GAIN = 30;
const CLIP_FLOOR = 1e-3;
// Small beside the colour dimensions, so the class decides the similarity to real crops; enough to part two drawings.
const CLIP_GRID_GAIN = 6;

function clipVision(size: number): Uint8Array {
  const K = CLASS_COLOURS.length;
  const g = new OnnxGraph('genaug_demo_clip_vision');
  const x = g.input('pixel_values', 'float32', ['batch', 3, size, size]);
  const m = memberships(g, x, CLIP_MEAN, CLIP_STD, [...CLASS_COLOURS, WHITE]);
  const shares = g.node('Flatten', [g.node('GlobalAveragePool', [m])], { axis: 1 }); // N, K + 1
  // [K + 1, 8]: colours to themselves and to the any-colour dimension (x gain), white to the last.
  const proj: number[] = [];
  for (let i = 0; i <= K; i++) for (let j = 0; j < 8; j++) proj.push(i < K ? (j === i || j === K ? CLIP_GAIN : 0) : j === K + 1 ? 1 : 0);
  const y = g.node('MatMul', [shares, g.constF(proj, [K + 1, 8])]);
  // Where the coloured pixels are: their share in each cell of a grid (no text points there; it tells two
  // drawings of one class apart, as a real CLIP embedding does, so near-duplicates stand out).
  const any = g.node('Conv', [m, g.constF([...new Array<number>(K).fill(1), 0], [1, K + 1, 1, 1])]);
  const cell = size / CLIP_GRID;
  const grid = g.node('Flatten', [g.node('AveragePool', [any], { kernel_shape: [cell, cell], strides: [cell, cell] })], { axis: 1 });
  const where = g.node('Mul', [grid, g.constF([CLIP_GRID_GAIN], [])]);
  const all = g.node('Concat', [y, where], { axis: 1 });
  g.node('Add', [all, g.constF(new Array<number>(CLIP_DIM).fill(CLIP_FLOOR), [CLIP_DIM])], {}, 'image_embeds');
  g.output('image_embeds', ['batch', CLIP_DIM]);
  return g.toBytes();
}

/** Words the tiny CLIP's text tower knows, and the dimension each points at. */
export function clipWords(): Map<string, number> {
  const words = new Map<string, number>();
  const colourWords = ['magenta', 'blue', 'green', 'orange', 'purple', 'yellow'];
  SHAPE_CLASSES.forEach((c, k) => {
    words.set(c.name, k);
    words.set(`${c.name}s`, k);
    words.set(colourWords[k]!, k);
  });
  words.set('coloured', CLASS_COLOURS.length);
  for (const w of ['blank', 'empty', 'white']) words.set(w, CLASS_COLOURS.length + 1);
  return words;
}


/** A CLIP-format BPE tokenizer.json: every byte (alone and word-final), and each known word as one token. */
function clipTokenizer(words: readonly string[]): { json: unknown; ids: Map<string, number> } {
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  for (const c of bytesToUnicode()) add(c);
  for (const c of bytesToUnicode()) add(`${c}</w>`);
  const merges: string[] = [];
  // Each word merged left to right: "s h", "sh a", ..., "shap e</w>"; then shared prefixes do not conflict.
  for (const w of words) {
    let prefix = w[0]!;
    for (let i = 1; i < w.length; i++) {
      const last = i === w.length - 1;
      const next = last ? `${w[i]}</w>` : w[i]!;
      const m = `${prefix} ${next}`;
      if (!merges.includes(m)) merges.push(m);
      prefix = prefix + next;
      add(prefix);
      // The non-final form too, so a longer word ("shapes") can continue from "shape".
      if (last) add(prefix.replace(/<\/w>$/, ''));
    }
    if (w.length > 1) {
      // "shape" as a prefix of "shapes": merge chain without the end-of-word marker.
      let p = w[0]!;
      for (let i = 1; i < w.length; i++) {
        const m = `${p} ${w[i]}`;
        if (!merges.includes(m)) merges.push(m);
        p += w[i];
        add(p);
      }
    }
  }
  add('<|startoftext|>');
  add('<|endoftext|>');
  const json = {
    version: '1.0',
    added_tokens: [
      { id: vocab['<|startoftext|>'], content: '<|startoftext|>', special: true },
      { id: vocab['<|endoftext|>'], content: '<|endoftext|>', special: true },
    ],
    model: { type: 'BPE', unk_token: '<|endoftext|>', end_of_word_suffix: '</w>', vocab, merges },
  };
  return { json, ids: new Map(Object.entries(vocab)) };
}

function clipText(vocab: Map<string, number>, words: Map<string, number>): Uint8Array {
  const V = Math.max(...vocab.values()) + 1;
  const emb = new Array<number>(V * CLIP_DIM).fill(CLIP_FLOOR);
  for (const [w, d] of words) {
    const id = vocab.get(`${w}</w>`);
    if (id !== undefined) emb[id * CLIP_DIM + d] = 1;
  }
  // The special tokens carry nothing.
  for (const t of ['<|startoftext|>', '<|endoftext|>']) for (let d = 0; d < CLIP_DIM; d++) emb[vocab.get(t)! * CLIP_DIM + d] = 0;
  const g = new OnnxGraph('genaug_demo_clip_text');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'seq']);
  const e = g.node('Gather', [g.constF(emb, [V, CLIP_DIM]), ids], { axis: 0 });
  const masked = g.node('Mul', [e, g.node('Unsqueeze', [g.node('Cast', [mask], { to: 1 }), g.constI64([2])])]);
  g.node('ReduceSum', [masked, g.constI64([1])], { keepdims: 0 }, 'text_embeds');
  g.output('text_embeds', ['batch', CLIP_DIM]);
  return g.toBytes();
}

/** Writes the tiny CLIP as an export folder (split layout) into `dir`. */
export async function writeTinyClip(dir: string, size = 32): Promise<string> {
  await mkdir(dir, { recursive: true });
  const words = clipWords();
  const tok = clipTokenizer([...words.keys()]);
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v) + '\n');
  await writeFileAtomic(join(dir, 'tokenizer.json'), enc(tok.json));
  await writeFileAtomic(join(dir, 'tokenizer_config.json'), enc({ tokenizer_class: 'CLIPTokenizer', model_max_length: 77, bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>', do_lower_case: true }));
  await writeFileAtomic(
    join(dir, 'preprocessor_config.json'),
    enc({ do_convert_rgb: true, do_resize: true, size: { shortest_edge: size }, resample: 3, do_center_crop: true, crop_size: { height: size, width: size }, do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: CLIP_MEAN, image_std: CLIP_STD, image_processor_type: 'CLIPImageProcessor' }),
  );
  // logit scale exp(4.6052) = 100, CLIP's trained value.
  await writeFileAtomic(join(dir, 'config.json'), enc({ model_type: 'clip', projection_dim: CLIP_DIM, logit_scale_init_value: 4.6052 }));
  await writeFileAtomic(join(dir, 'vision_model.onnx'), clipVision(size));
  await writeFileAtomic(join(dir, 'text_model.onnx'), clipText(tok.ids, words));
  return dir;
}

/** Writes the tiny classifier to `path`. */
export async function writeTinyClassifier(path: string): Promise<string> {
  await writeFileAtomic(path, tinyClassifier());
  return path;
}
