/**
 * ONNX models through onnxruntime-node: opening a session with clear errors,
 * choosing the execution provider (never a silent CPU fallback), checking a
 * model's inputs and outputs against what genaug feeds it, and the image
 * helpers the model wrappers share (resize, bilinear maps; images are decoded
 * by io/images.ts).
 *
 * Event loop: onnxruntime-node's `session.run()` (and session creation) is a
 * synchronous native call scheduled with `setImmediate` (USERS.md 21): the
 * Promise it returns does not make it run off the main thread, and the event
 * loop is blocked for the whole inference. genaug keeps every model API async
 * so that a worker-pool implementation can replace it without changing
 * callers; until then run models from a worker thread (piscina) when the
 * process must stay responsive (the annotate pipeline does this).
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

import type { RgbImage } from '../io/images.js';
import { GenaugError } from '../native/errors.js';
import { checkInt } from '../native/validate.js';

// --- What the public API shows of onnxruntime -----------------------------------
// Re-declared here, structurally: onnxruntime's own .d.ts files need the DOM
// lib (WebGL, ImageData, ...), so a declaration of genaug that imported them
// would not compile for a Node project under skipLibCheck: false. onnxruntime's
// InferenceSession and Tensor satisfy these; the implementation keeps using them.

/** An onnxruntime element type name ('float32', 'int64', 'bool', ...). */
export type OnnxElementType = string;

/** A model input or output, as onnxruntime describes it. */
export type OnnxValueMetadata =
  | { readonly name: string; readonly isTensor: false }
  | { readonly name: string; readonly isTensor: true; readonly type: OnnxElementType; readonly shape: ReadonlyArray<number | string> };

/** The fields of an onnxruntime Tensor genaug reads and writes. */
export interface OnnxTensor {
  readonly type: OnnxElementType;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly size: number;
}

/** The part of an onnxruntime InferenceSession genaug uses. */
export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly OnnxValueMetadata[];
  readonly outputMetadata: readonly OnnxValueMetadata[];
  run(feeds: Record<string, OnnxTensor>): Promise<Record<string, OnnxTensor>>;
  run(feeds: Record<string, OnnxTensor>, fetches: readonly string[]): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

/** Where a model runs. 'cuda' fails with E_CUDA_UNAVAILABLE when onnxruntime-node cannot use CUDA. */
export type Provider = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Execution provider (default 'cpu'). */
  provider?: Provider;
  /** Intra-op threads (default: onnxruntime's, every physical core). */
  threads?: number;
  /** CUDA device id with provider 'cuda' (default 0). */
  deviceId?: number;
  /** The model's bytes, changed from the file's (e.g. with extra graph outputs); the path then names it in messages. */
  bytes?: Uint8Array;
}

export interface OnnxModel {
  /** The model file. */
  readonly path: string;
  /** A name for messages, e.g. 'SAM decoder'. */
  readonly name: string;
  readonly provider: Provider;
  readonly session: OnnxSession;
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The folder holding onnxruntime-node's native binding and provider libraries. */
function ortBinaryFolder(): string | undefined {
  try {
    const req = createRequire(import.meta.url);
    const main = req.resolve('onnxruntime-node'); // .../onnxruntime-node/dist/index.js
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

function cudaLibraryName(): string {
  if (process.platform === 'win32') return 'onnxruntime_providers_cuda.dll';
  return 'libonnxruntime_providers_cuda.so';
}

/**
 * Whether onnxruntime-node can use `provider` here, and if not why. The check
 * is static (the binding lists the provider, its library is installed); a
 * CUDA library that is present but fails to load (driver, cuDNN) is reported
 * when the session is created.
 */
export function providerStatus(provider: Provider): { usable: boolean; reason: string } {
  if (provider === 'cpu') return { usable: true, reason: 'the CPU provider is always built in' };
  let backends: Array<{ name: string; bundled: boolean }> = [];
  try {
    backends = ort.listSupportedBackends();
  } catch (e) {
    return { usable: false, reason: `onnxruntime-node could not list its execution providers: ${messageOf(e)}` };
  }
  const cuda = backends.find((b) => b.name === 'cuda');
  if (!cuda) {
    return {
      usable: false,
      reason: `this onnxruntime-node build (${process.platform}-${process.arch}) has no CUDA execution provider (it supports: ${backends.map((b) => b.name).join(', ')})`,
    };
  }
  if (!cuda.bundled) {
    const folder = ortBinaryFolder();
    const lib = cudaLibraryName();
    if (folder === undefined || !existsSync(join(folder, lib))) {
      return {
        usable: false,
        reason:
          `onnxruntime-node's CUDA execution provider is not installed: ${lib} is missing from ${folder ?? 'the onnxruntime-node package'}. ` +
          'onnxruntime-node downloads it at install time only when asked (this project installs with onnxruntime-node-install=skip); ' +
          'on a machine with CUDA 12 and cuDNN 9, reinstall onnxruntime-node with --onnxruntime-node-install=cuda12, or use provider "cpu"',
      };
    }
  }
  return { usable: true, reason: 'the CUDA execution provider library is installed' };
}

/**
 * The onnxruntime provider for `--device` (auto|cpu|cuda) on the commands
 * that run CLIP or SAM: cuda → 'cuda' (E_CUDA_UNAVAILABLE at session start
 * when onnxruntime-node cannot use it), auto → 'cuda' where the CUDA provider
 * is installed, else 'cpu', silently. `provider`, the older `--provider`
 * flag, is used when no device is given; the two must agree when both are.
 */
export function providerForDevice(device: 'auto' | 'cpu' | 'cuda' | undefined, provider?: Provider): Provider {
  if (device === undefined) return provider ?? 'cpu';
  if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') {
    throw new GenaugError('E_RANGE', `device must be 'auto', 'cpu' or 'cuda', got ${JSON.stringify(device)}`);
  }
  const chosen: Provider = device === 'auto' ? (providerStatus('cuda').usable ? 'cuda' : 'cpu') : device;
  if (provider !== undefined && provider !== chosen && device !== 'auto') {
    throw new GenaugError('E_ARGUMENT', `--device ${device} and --provider ${provider} disagree; --provider is the older name of --device (give one)`);
  }
  return chosen;
}

/**
 * Opens an ONNX model. Missing or unreadable file → E_IO naming it; a file
 * that is not an ONNX model (or uses operators onnxruntime lacks) → E_MODEL;
 * provider 'cuda' without a usable CUDA provider → E_CUDA_UNAVAILABLE.
 */
export async function openSession(path: string, name: string, opts: SessionOptions = {}): Promise<OnnxModel> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new GenaugError('E_TYPE', `${name}: the model path must be a non-empty string, got ${typeof path === 'string' ? 'an empty string' : typeof path}`);
  }
  const provider = opts.provider ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') {
    throw new GenaugError('E_RANGE', `${name}: provider must be 'cpu' or 'cuda', got ${JSON.stringify(provider)}`);
  }
  if (opts.threads !== undefined) checkInt(opts.threads, `${name}: threads`, 1, 1024);
  if (opts.deviceId !== undefined) checkInt(opts.deviceId, `${name}: deviceId`, 0, 1024);

  let info;
  try {
    info = await stat(path);
    await access(path, fsConstants.R_OK);
  } catch (e) {
    const code = errno(e);
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : messageOf(e);
    throw new GenaugError('E_IO', `${name}: model file ${path} ${why}`, { path }, { cause: e });
  }
  if (!info.isFile()) throw new GenaugError('E_IO', `${name}: model path ${path} is not a file`, { path });

  if (provider === 'cuda') {
    const st = providerStatus('cuda');
    if (!st.usable) throw new GenaugError('E_CUDA_UNAVAILABLE', `${name}: provider 'cuda' was requested but ${st.reason}`, { path });
  }

  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId ?? 0 }] : ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;

  let session: ort.InferenceSession;
  try {
    session = opts.bytes ? await ort.InferenceSession.create(opts.bytes, options) : await ort.InferenceSession.create(path, options);
  } catch (e) {
    const msg = messageOf(e);
    if (provider === 'cuda' && /cuda|shared librar|provider/i.test(msg) && !/protobuf/i.test(msg)) {
      throw new GenaugError('E_CUDA_UNAVAILABLE', `${name}: onnxruntime could not start its CUDA provider for ${path}: ${msg}`, { path }, { cause: e });
    }
    if (/protobuf parsing failed|no graph|model_path|invalid model|ModelProto/i.test(msg)) {
      throw new GenaugError('E_MODEL', `${name}: ${path} is not a valid ONNX model (${msg})`, { path }, { cause: e });
    }
    throw new GenaugError('E_MODEL', `${name}: onnxruntime could not load ${path}: ${msg}`, { path }, { cause: e });
  }
  return { path, name, provider, session };
}

// ---------------------------------------------------------------------------
// Signatures

/** A dimension in a spec: a number must match (a symbolic model dim is accepted), null accepts anything. */
export type DimSpec = number | null;

export interface TensorSpec {
  /** The name genaug uses; `names` lists the accepted spellings (default [name]), first found wins. */
  name: string;
  names?: readonly string[];
  /** Accepted element types. */
  type: OnnxElementType | readonly OnnxElementType[];
  /** Expected dims (rank = length); undefined accepts any shape. */
  dims?: readonly DimSpec[];
  /** An output genaug does not need (checked only when present). */
  optional?: boolean;
}

export interface Signature {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  /** Inputs genaug does not feed make the model unusable: reported unless true (default false). */
  allowExtraInputs?: boolean;
}

/** For each spec name, the model's actual name (absent for a missing optional output). */
export interface SignatureMatch {
  inputs: Record<string, string>;
  outputs: Record<string, string>;
}

function fmtDims(dims: readonly (number | string | null)[] | undefined): string {
  if (dims === undefined) return '[any shape]';
  return `[${dims.map((d) => (d === null ? '?' : typeof d === 'string' ? (d === '' ? '?' : d) : String(d))).join(', ')}]`;
}

function fmtSpec(s: TensorSpec): string {
  const types = typeof s.type === 'string' ? s.type : s.type.join('|');
  return `${types} ${fmtDims(s.dims)}`;
}

function fmtMeta(m: OnnxValueMetadata): string {
  if (!m.isTensor) return `${m.name} (not a tensor)`;
  return `${m.name} ${m.type} ${fmtDims(m.shape)}`;
}

/** The model's inputs and outputs, for messages: "inputs: a float32 [1, 3]; outputs: …". */
export function describeSignature(session: OnnxSession): string {
  const ins = session.inputMetadata.map(fmtMeta).join(', ') || 'none';
  const outs = session.outputMetadata.map(fmtMeta).join(', ') || 'none';
  return `inputs: ${ins}; outputs: ${outs}`;
}

function checkOne(kind: 'input' | 'output', spec: TensorSpec, meta: OnnxValueMetadata, problems: string[]): void {
  const label = `${kind} '${meta.name}'`;
  if (!meta.isTensor) {
    problems.push(`${label} is not a tensor (expected ${fmtSpec(spec)})`);
    return;
  }
  const types = typeof spec.type === 'string' ? [spec.type] : spec.type;
  if (!types.includes(meta.type)) problems.push(`${label} has element type ${meta.type}, expected ${types.join(' or ')}`);
  if (spec.dims === undefined) return;
  const shape = meta.shape;
  // An output without shape information cannot be checked here (it is checked when the model runs).
  if (kind === 'output' && shape.length === 0 && spec.dims.length > 0) return;
  if (shape.length !== spec.dims.length) {
    problems.push(`${label} has rank ${shape.length} ${fmtDims(shape)}, expected rank ${spec.dims.length} ${fmtDims(spec.dims)}`);
    return;
  }
  for (let i = 0; i < shape.length; i++) {
    const want = spec.dims[i];
    const got = shape[i];
    if (want === null || want === undefined || typeof got !== 'number') continue;
    if (got !== want) {
      problems.push(`${label} has dim ${i} = ${got} ${fmtDims(shape)}, expected ${want} ${fmtDims(spec.dims)}`);
    }
  }
}

/**
 * Checks a session's inputs and outputs against `expected` and throws one
 * E_MODEL listing every mismatch (missing or unexpected names, element types,
 * ranks, static dims), each with what was expected, plus what the model has.
 */
export function checkSignature(model: OnnxModel | OnnxSession, expected: Signature, modelName?: string): SignatureMatch {
  const session = 'session' in model ? model.session : model;
  const name = modelName ?? ('session' in model ? model.name : 'model');
  const where = 'session' in model ? ` (${model.path})` : '';
  const problems: string[] = [];
  const match: SignatureMatch = { inputs: {}, outputs: {} };

  const side = (kind: 'input' | 'output', specs: readonly TensorSpec[], metas: readonly OnnxValueMetadata[]): void => {
    const used = new Set<string>();
    for (const spec of specs) {
      const names = spec.names ?? [spec.name];
      const meta = names.map((n) => metas.find((m) => m.name === n)).find((m) => m !== undefined);
      if (!meta) {
        if (spec.optional) continue;
        const alt = names.length > 1 ? `one of ${names.map((n) => `'${n}'`).join(', ')}` : `'${spec.name}'`;
        problems.push(`missing ${kind} ${alt} (expected ${fmtSpec(spec)})`);
        continue;
      }
      used.add(meta.name);
      (kind === 'input' ? match.inputs : match.outputs)[spec.name] = meta.name;
      checkOne(kind, spec, meta, problems);
    }
    if (kind === 'input' && !expected.allowExtraInputs) {
      for (const m of metas) {
        if (!used.has(m.name)) problems.push(`unexpected input '${m.name}' (${m.isTensor ? `${m.type} ${fmtDims(m.shape)}` : 'not a tensor'}): genaug does not feed it`);
      }
    }
  };
  side('input', expected.inputs, session.inputMetadata);
  side('output', expected.outputs, session.outputMetadata);

  if (problems.length > 0) {
    throw new GenaugError(
      'E_MODEL',
      `${name}${where} does not have the expected signature (${problems.length} mismatch${problems.length > 1 ? 'es' : ''}):\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        `\nthe model has ${describeSignature(session)}`,
      { problems },
    );
  }
  return match;
}

/**
 * Runs a session and wraps a failure as E_BACKEND naming the model. Blocks
 * the event loop while onnxruntime computes (see the note at the top).
 */
export async function runSession(
  model: OnnxModel,
  feeds: Record<string, OnnxTensor>,
  fetches?: readonly string[],
): Promise<Record<string, OnnxTensor>> {
  try {
    return fetches ? await model.session.run(feeds, fetches) : await model.session.run(feeds);
  } catch (e) {
    throw new GenaugError('E_BACKEND', `${model.name} (${model.path}) failed to run: ${messageOf(e)}`, { path: model.path }, { cause: e });
  }
}

/** Checks an output tensor's type and rank at run time (models with dynamic shapes). */
export function checkOutput(model: OnnxModel, outName: string, t: OnnxTensor | undefined, rank: number, dims: readonly DimSpec[] = []): Float32Array {
  if (!t) throw new GenaugError('E_MODEL', `${model.name} (${model.path}) returned no '${outName}' output`);
  if (t.type !== 'float32' || !(t.data instanceof Float32Array)) {
    throw new GenaugError('E_MODEL', `${model.name} (${model.path}) output '${outName}' is ${t.type}, expected float32`);
  }
  const bad = t.dims.length !== rank || dims.some((d, i) => d !== null && t.dims[i] !== d);
  if (bad) {
    throw new GenaugError(
      'E_MODEL',
      `${model.name} (${model.path}) output '${outName}' has shape ${fmtDims(t.dims as number[])}, expected rank ${rank}${dims.length ? ` ${fmtDims(dims)}` : ''}`,
    );
  }
  return t.data;
}

// ---------------------------------------------------------------------------
// Images (shared by the model wrappers; decoding lives in io/images.ts)

/** Resizes RGB pixels with sharp's bilinear kernel (antialiased when shrinking, like PIL's BILINEAR). */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: 'linear', fit: 'fill', fastShrinkOnLoad: false })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
}

/**
 * Bilinear resize of a single-channel float map with half-pixel centres
 * (PyTorch's F.interpolate(mode='bilinear', align_corners=False), no antialias).
 */
export function resizeBilinear(src: Float32Array, sw: number, sh: number, dw: number, dh: number): Float32Array {
  if (src.length !== sw * sh) throw new GenaugError('E_SHAPE', `map has ${src.length} values, expected ${sw} x ${sh}`);
  if (sw === dw && sh === dh) return src.slice();
  const out = new Float32Array(dw * dh);
  const sx = sw / dw;
  const sy = sh / dh;
  const x0s = new Int32Array(dw);
  const x1s = new Int32Array(dw);
  const fxs = new Float32Array(dw);
  for (let x = 0; x < dw; x++) {
    const fx = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(fx), sw - 1);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, sw - 1);
    fxs[x] = fx - x0;
  }
  for (let y = 0; y < dh; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), sh - 1);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    const r0 = y0 * sw;
    const r1 = y1 * sw;
    for (let x = 0; x < dw; x++) {
      const a = x0s[x] as number;
      const b = x1s[x] as number;
      const wx = fxs[x] as number;
      const top = (src[r0 + a] as number) * (1 - wx) + (src[r0 + b] as number) * wx;
      const bot = (src[r1 + a] as number) * (1 - wx) + (src[r1 + b] as number) * wx;
      out[y * dw + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

/** RGB HWC bytes → normalised CHW float32 ((v − mean) / std), into `out` (width `outW`, zero padding kept). */
export function normaliseToChw(
  img: RgbImage,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  outW: number,
  outH: number,
): void {
  const plane = outW * outH;
  for (let c = 0; c < 3; c++) {
    const m = mean[c] as number;
    const s = std[c] as number;
    const base = c * plane;
    for (let y = 0; y < img.height; y++) {
      const row = y * img.width * 3;
      const orow = base + y * outW;
      for (let x = 0; x < img.width; x++) out[orow + x] = ((img.data[row + x * 3 + c] as number) - m) / s;
    }
  }
}
