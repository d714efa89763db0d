/**
 * Just enough of the ONNX protobuf to find a model's BatchNormalization nodes and to make onnxruntime return
 * their inputs: a wire-format reader over the model bytes (initializers are skipped, never copied) and an
 * appender that adds graph outputs by protobuf's merge rule (a second `graph` field of ModelProto merges into the
 * first; its repeated `output` entries are appended), so the model's own bytes are left as they are.
 *
 * Field numbers (onnx.proto3): ModelProto.graph = 7; GraphProto.node = 1, input = 11, output = 12;
 * NodeProto.input = 1, output = 2, name = 3, op_type = 4, domain = 7; ValueInfoProto.name = 1.
 */
import { GenaugError } from '../native/errors.js';

export interface OnnxNodeInfo {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
}

export interface OnnxGraphInfo {
  nodes: OnnxNodeInfo[];
  inputs: string[];
  outputs: string[];
}

/** One BatchNormalization node: the tensor it normalises and the module name PyTorch gave it. */
export interface BnTap {
  /** The node's input X (N x C x ...), fetched as an extra graph output. */
  tensor: string;
  /** The state-dict prefix: the scale initializer's name without `.weight` (torch.onnx keeps `layer1.0.bn1.weight`). */
  layer: string;
  node: string;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.bad('a varint runs past the end');
      const b = this.buf[this.pos++] as number;
      // Lengths and tags fit in 2^53; the high bits of larger varints (int64 values) are not needed here.
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return result;
    }
    throw this.bad('a varint is longer than 10 bytes');
  }

  /** Skips a field of the given wire type; returns [start, end) of a length-delimited one. */
  field(wire: number): [number, number] | undefined {
    switch (wire) {
      case 0:
        this.varint();
        return undefined;
      case 1:
        this.skip(8);
        return undefined;
      case 5:
        this.skip(4);
        return undefined;
      case 2: {
        const len = this.varint();
        const start = this.pos;
        this.skip(len);
        return [start, start + len];
      }
      default:
        throw this.bad(`wire type ${wire} is not used by ONNX`);
    }
  }

  skip(n: number): void {
    if (n > this.end - this.pos) throw this.bad('a field runs past the end');
    this.pos += n;
  }

  bad(why: string): GenaugError {
    return new GenaugError('E_MODEL', `${this.what} is not a valid ONNX model: ${why} (byte ${this.pos})`);
  }
}

/** Each (field number, [start, end)) of the length-delimited fields of a message. */
function* messageFields(buf: Uint8Array, start: number, end: number, what: string): Generator<[number, number, number]> {
  const r = new Reader(buf, start, end, what);
  while (r.pos < end) {
    const tag = r.varint();
    const no = Math.floor(tag / 8);
    const span = r.field(tag & 7);
    if (span && no > 0) yield [no, span[0], span[1]];
  }
}

const text = (buf: Uint8Array, s: number, e: number) => decoder.decode(buf.subarray(s, e));

/** The nodes, inputs and outputs of a model's main graph (subgraphs of If/Loop are not looked into). */
export function readOnnxGraph(bytes: Uint8Array, what = 'model'): OnnxGraphInfo {
  const info: OnnxGraphInfo = { nodes: [], inputs: [], outputs: [] };
  let graphs = 0;
  for (const [no, s, e] of messageFields(bytes, 0, bytes.length, what)) {
    if (no !== 7) continue;
    graphs++;
    for (const [gno, gs, ge] of messageFields(bytes, s, e, what)) {
      if (gno === 1) {
        const node: OnnxNodeInfo = { name: '', opType: '', domain: '', inputs: [], outputs: [] };
        for (const [nno, ns, ne] of messageFields(bytes, gs, ge, what)) {
          if (nno === 1) node.inputs.push(text(bytes, ns, ne));
          else if (nno === 2) node.outputs.push(text(bytes, ns, ne));
          else if (nno === 3) node.name = text(bytes, ns, ne);
          else if (nno === 4) node.opType = text(bytes, ns, ne);
          else if (nno === 7) node.domain = text(bytes, ns, ne);
        }
        info.nodes.push(node);
      } else if (gno === 11 || gno === 12) {
        for (const [vno, vs, ve] of messageFields(bytes, gs, ge, what)) {
          if (vno === 1) (gno === 11 ? info.inputs : info.outputs).push(text(bytes, vs, ve));
        }
      }
    }
  }
  if (graphs === 0) throw new GenaugError('E_MODEL', `${what} is not a valid ONNX model: it has no graph`);
  return info;
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  const head = [...varintBytes(field * 8 + 2), ...varintBytes(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The model with `names` added as graph outputs (type left to onnxruntime's shape inference). */
export function withGraphOutputs(bytes: Uint8Array, names: readonly string[]): Uint8Array {
  if (names.length === 0) return bytes;
  const enc = new TextEncoder();
  const graph = concat(names.map((n) => lengthDelimited(12, lengthDelimited(1, enc.encode(n)))));
  return concat([bytes, lengthDelimited(7, graph)]);
}

/** The BatchNormalization nodes of a graph with their inputs and state-dict names, in graph order. */
export function batchNormTaps(g: OnnxGraphInfo): BnTap[] {
  const taps: BnTap[] = [];
  const used = new Set<string>();
  g.nodes.forEach((n, i) => {
    if (n.opType !== 'BatchNormalization' || (n.domain !== '' && n.domain !== 'ai.onnx')) return;
    const x = n.inputs[0];
    if (!x) return;
    const scale = n.inputs[1] ?? '';
    const base = scale.endsWith('.weight') ? scale.slice(0, -'.weight'.length) : n.name || `batchnorm${i}`;
    // Two nodes with one name (shared weights, or unnamed exports) keep apart.
    let layer = base;
    for (let k = 2; used.has(layer); k++) layer = `${base}_${k}`;
    used.add(layer);
    taps.push({ tensor: x, layer, node: n.name || `#${i}` });
  });
  return taps;
}
