/**
 * ComfyUI (server.py): an API-format workflow template with "{{...}}"
 * placeholders is filled per candidate and queued with POST /prompt under the
 * backend's client id. Its run is followed over the server's websocket
 * (/ws?clientId=...): sampler progress, execution_error with the failing node,
 * and the end of the prompt; then GET /history/{id} gives the outputs and every
 * output image is read with GET /view. A server whose websocket cannot be
 * reached (an old server, a proxy without upgrade) is polled on /history
 * instead, and while the socket is up /history is still read every few seconds
 * in case a message was lost. Source images and masks for edits go up first
 * through POST /upload/image under a content-derived name (uploading twice is harmless).
 *
 * Layout boxes: a node whose `_meta.genaug_repeat` is "boxes" is cloned once
 * per box of the job, with {{box.name}}, {{box.x}}, {{box.y}}, {{box.width}},
 * {{box.height}} (pixels, multiples of 8 as GLIGENTextBoxApply wants) and
 * {{box.index}}; the clones are chained through the input named by
 * `_meta.genaug_chain` (e.g. conditioning_to), and whatever used the node's
 * output uses the last clone's. With no boxes, users are wired to the chain
 * input directly. {{boxes}} is the whole layout as a JSON string.
 */
import { createHash, randomUUID } from 'node:crypto';

import WebSocket from 'ws';

import { GenaugError } from '../native/errors.js';
import { redactor } from '../util/secrets.js';
import { checkImage, sniffImage } from './image.js';
import { backendError, ensureOk, nodeErrorsText, readJson, splitCredentials, type Redact } from './http.js';
import { placeholders, substitute } from './template.js';
import { jobVars, type Backend, type BackendOptions, type GenerateRequest, type GenerateResult } from './types.js';

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: Record<string, unknown> }>;

/** Names a workflow may use; {{image}}/{{mask}} only in jobs that have them, params add their own. */
export const COMFY_VARS = [
  'prompt', 'negative_prompt', 'seed', 'width', 'height', 'candidate', 'job_id', 'class', 'classes', 'kind',
  'denoising_strength', 'invert_mask', 'boxes', 'image', 'mask', 'model',
];
const BOX_VARS = ['box.name', 'box.x', 'box.y', 'box.width', 'box.height', 'box.index'];

/** Checks a workflow template; returns it as a graph. E_FORMAT/E_ARGUMENT name the node and the problem. */
export function checkWorkflow(workflow: unknown, name: string, params: Record<string, unknown> = {}): Graph {
  let g = workflow as Record<string, unknown>;
  if (g && typeof g === 'object' && !Array.isArray(g) && g.prompt && typeof g.prompt === 'object' && !('class_type' in (g.prompt as object))) {
    g = g.prompt as Record<string, unknown>; // a saved {"prompt": {...}} request body
  }
  if (!g || typeof g !== 'object' || Array.isArray(g)) throw new GenaugError('E_FORMAT', `${name}: a ComfyUI API-format workflow is a JSON object of nodes`);
  if (Array.isArray((g as { nodes?: unknown }).nodes)) {
    throw new GenaugError('E_FORMAT', `${name}: this is a UI-format workflow (it has "nodes"); export it with "Save (API Format)" / "Export (API)"`);
  }
  const known = new Set([...COMFY_VARS, ...Object.keys(params)]);
  for (const [id, node] of Object.entries(g)) {
    const n = node as Graph[string];
    if (!n || typeof n !== 'object' || typeof n.class_type !== 'string' || !n.inputs || typeof n.inputs !== 'object') {
      throw new GenaugError('E_FORMAT', `${name}: node ${id} needs "class_type" (string) and "inputs" (object)`);
    }
    const repeat = n._meta?.genaug_repeat;
    if (repeat !== undefined) {
      if (repeat !== 'boxes') throw new GenaugError('E_FORMAT', `${name}: node ${id}: _meta.genaug_repeat must be "boxes", got ${JSON.stringify(repeat)}`);
      const chain = n._meta?.genaug_chain;
      if (typeof chain !== 'string' || !Array.isArray(n.inputs[chain])) {
        throw new GenaugError('E_FORMAT', `${name}: node ${id}: _meta.genaug_chain must name an input of the node that is a link [node, output]`);
      }
    }
    for (const p of placeholders(n.inputs)) {
      if (!known.has(p) && !(repeat && BOX_VARS.includes(p))) {
        throw new GenaugError('E_FORMAT', `${name}: node ${id} (${n.class_type}) uses {{${p}}}, which genaug does not fill (known: ${[...known].join(', ')}${repeat ? `, ${BOX_VARS.join(', ')}` : ''})`);
      }
    }
  }
  return g as Graph;
}

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number';

/** Clones the box-repeat nodes once per box and rewires their users (see the file comment). */
export function expandBoxes(graph: Graph, req: GenerateRequest): Graph {
  const g: Graph = structuredClone(graph);
  const j = req.job;
  const boxes = j.layout ?? [];
  const snap = (v: number) => Math.max(0, Math.round(v / 8) * 8);
  for (const [id, node] of Object.entries(graph)) {
    if (node._meta?.genaug_repeat !== 'boxes') continue;
    const chain = node._meta.genaug_chain as string;
    const upstream = node.inputs[chain] as [string, number];
    delete g[id];
    let last: [string, number] | undefined;
    boxes.forEach((b, i) => {
      const vars = {
        'box.name': b.name,
        'box.x': snap(b.box[0] * j.width),
        'box.y': snap(b.box[1] * j.height),
        'box.width': Math.max(8, snap(b.box[2] * j.width)),
        'box.height': Math.max(8, snap(b.box[3] * j.height)),
        'box.index': i,
      };
      const inputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node.inputs)) inputs[k] = k === chain ? (last ?? upstream) : substituteBox(v, vars);
      const meta = { ...node._meta };
      delete meta.genaug_repeat;
      delete meta.genaug_chain;
      g[`${id}_${i}`] = { class_type: node.class_type, inputs, _meta: meta };
      last = [`${id}_${i}`, 0];
    });
    for (const n of Object.values(g)) {
      for (const [k, v] of Object.entries(n.inputs)) {
        if (isLink(v) && v[0] === id) n.inputs[k] = last ? [last[0], v[1]] : upstream;
      }
    }
  }
  return g;
}

function substituteBox(v: unknown, vars: Record<string, unknown>): unknown {
  if (typeof v === 'string') {
    const whole = /^\{\{\s*(box\.[a-z]+)\s*\}\}$/.exec(v);
    if (whole) return vars[whole[1] as string];
    return v.replace(/\{\{\s*(box\.[a-z]+)\s*\}\}/g, (_m, k: string) => String(vars[k]));
  }
  if (Array.isArray(v)) return v.map((x) => substituteBox(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteBox(x, vars)]));
  return v;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** How a prompt ended, as the websocket told it. */
type SocketEnd = { kind: 'done' } | { kind: 'error'; message: string } | { kind: 'lost' };

interface SocketWaiter {
  end: (e: SocketEnd) => void;
  progress?: (p: { value: number; max: number; node?: string }) => void;
}

/**
 * One websocket per backend, opened on first use with the backend's client id, its messages routed to the prompt
 * they name. Messages for a prompt nobody waits for yet (it can finish before POST /prompt has answered) are kept
 * (the last 256 prompts) until its waiter comes.
 */
class ComfySocket {
  #ws: WebSocket | undefined;
  #opening: Promise<boolean> | undefined;
  #downUntil = 0;
  readonly #waiters = new Map<string, SocketWaiter>();
  readonly #ended = new Map<string, SocketEnd>();
  #closed = false;

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly openTimeoutMs = 10_000,
  ) {}

  /** Whether the socket is up (opening it if needed); false when it cannot be reached (then: poll). */
  async ready(): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#ws?.readyState === WebSocket.OPEN) return true;
    if (Date.now() < this.#downUntil) return false;
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  #open(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!ok) {
          this.#downUntil = Date.now() + 30_000; // poll for a while before trying again
          ws.removeAllListeners();
          ws.on('error', () => undefined);
          ws.terminate();
        }
        resolve(ok);
      };
      const ws = new WebSocket(this.url, { headers: this.headers, handshakeTimeout: this.openTimeoutMs, maxPayload: 64 * 2 ** 20 });
      const timer = setTimeout(() => settle(false), this.openTimeoutMs + 1000);
      ws.once('open', () => {
        this.#ws = ws;
        settle(true);
      });
      ws.on('error', () => settle(false));
      ws.on('unexpected-response', () => settle(false));
      ws.on('message', (data, isBinary) => {
        if (!isBinary) this.#message(String(data));
      });
      ws.on('close', () => {
        settle(false);
        if (this.#ws === ws) this.#ws = undefined;
        // The waiters fall back to polling /history.
        for (const [id, w] of this.#waiters) {
          this.#waiters.delete(id);
          w.end({ kind: 'lost' });
        }
      });
    });
  }

  #message(text: string): void {
    let m: { type?: unknown; data?: Record<string, unknown> };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return; // not ours to judge: ComfyUI extensions send their own messages
    }
    const d = m.data;
    if (!d || typeof d !== 'object' || typeof d.prompt_id !== 'string') return;
    const id = d.prompt_id;
    let end: SocketEnd | undefined;
    switch (m.type) {
      case 'progress':
        if (typeof d.value === 'number' && typeof d.max === 'number') {
          this.#waiters.get(id)?.progress?.({ value: d.value, max: d.max, ...(typeof d.node === 'string' ? { node: d.node } : {}) });
        }
        return;
      case 'executing':
        // The end: ComfyUI sends it once the prompt is in /history (execution_success comes just before that).
        if (d.node === null) end = { kind: 'done' };
        break;
      case 'execution_error':
        end = { kind: 'error', message: executionErrorText(d) };
        break;
      case 'execution_interrupted':
        end = { kind: 'error', message: `interrupted at node ${String(d.node_id ?? '?')} (${String(d.node_type ?? '?')})` };
        break;
      default:
        return;
    }
    if (!end) return;
    const w = this.#waiters.get(id);
    if (w) {
      this.#waiters.delete(id);
      w.end(end);
    } else if (!this.#ended.has(id) || end.kind === 'error') {
      this.#ended.set(id, end);
      if (this.#ended.size > 256) this.#ended.delete(this.#ended.keys().next().value as string);
    }
  }

  /** Resolves when the socket says the prompt ended (or the socket is lost: then `lost`). */
  wait(id: string, progress?: SocketWaiter['progress']): { ended: Promise<SocketEnd>; cancel: () => void } {
    const early = this.#ended.get(id);
    if (early) {
      this.#ended.delete(id);
      return { ended: Promise.resolve(early), cancel: () => undefined };
    }
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return { ended: Promise.resolve({ kind: 'lost' }), cancel: () => undefined };
    let cancel = () => undefined as void;
    const ended = new Promise<SocketEnd>((resolve) => {
      this.#waiters.set(id, { end: resolve, ...(progress ? { progress } : {}) });
      cancel = () => {
        if (this.#waiters.get(id)?.end === resolve) this.#waiters.delete(id);
      };
    });
    return { ended, cancel };
  }

  close(): void {
    this.#closed = true;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      ws.removeAllListeners('close');
      ws.on('error', () => undefined);
      ws.close();
      // A server that never answers the close handshake does not hold the process.
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    for (const [id, w] of this.#waiters) {
      this.#waiters.delete(id);
      w.end({ kind: 'lost' });
    }
  }
}

/** While the websocket follows a prompt, /history is still read this often (a lost message costs at most this). */
const HISTORY_CHECK_MS = 5000;

interface HistoryImage {
  filename: string;
  subfolder?: string;
  type?: string;
}

export class ComfyBackend implements Backend {
  readonly type = 'comfyui' as const;
  readonly display: string;
  readonly secrets: string[] = [];
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly graph: Graph;
  private readonly clientId = randomUUID();
  private readonly uses: Set<string>;
  private readonly redact: Redact;
  private readonly socket: ComfySocket;

  constructor(private readonly o: BackendOptions) {
    const c = splitCredentials(o.url);
    this.base = c.url;
    this.display = c.display;
    this.headers = c.headers;
    this.secrets.push(...c.secrets);
    this.redact = redactor(this.secrets);
    if (o.workflow === undefined) throw new GenaugError('E_ARGUMENT', `the comfyui backend ${c.display} needs a workflow template (--workflow FILE)`);
    this.graph = checkWorkflow(o.workflow, o.workflowName ?? 'workflow', o.params);
    this.uses = placeholders(Object.values(this.graph).map((n) => n.inputs));
    const ws = new URL(`${this.base}/ws`);
    ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
    ws.searchParams.set('clientId', this.clientId);
    this.socket = new ComfySocket(ws.toString(), this.headers);
  }

  /** Closes the websocket (the runner calls it when the batch ends). */
  close(): void {
    this.socket.close();
  }

  /** The filled-in API-format graph for a request (`uploads` gives the server names of the source image and mask). */
  fill(req: GenerateRequest, uploads: { image?: string; mask?: string } = {}): Graph {
    const vars = jobVars(req, { ...(this.o.params ?? {}), ...uploads, ...(this.o.model ? { model: this.o.model } : {}) });
    const missing = (name: string) =>
      name === 'image' || name === 'mask'
        ? `the workflow uses {{${name}}} but job ${req.job.id} has no ${name === 'image' ? 'source_image' : 'mask'}`
        : undefined;
    const g = substitute(expandBoxes(this.graph, req), vars, `${this.o.workflowName ?? 'workflow'} for job ${req.job.id}`, missing) as Graph;
    for (const n of Object.values(g)) {
      if (n._meta) {
        delete n._meta.genaug_repeat;
        delete n._meta.genaug_chain;
      }
    }
    return g;
  }

  private async upload(bytes: Buffer, signal: AbortSignal): Promise<string> {
    const ext = sniffImage(bytes) ?? 'png';
    const name = `genaug_${createHash('sha256').update(bytes).digest('hex').slice(0, 24)}.${ext}`;
    const form = new FormData();
    form.append('image', new Blob([bytes], { type: ext === 'jpg' ? 'image/jpeg' : `image/${ext}` }), name);
    form.append('overwrite', 'true');
    form.append('type', 'input');
    const what = `comfyui ${this.display}/upload/image`;
    const res = await fetch(`${this.base}/upload/image`, { method: 'POST', body: form, headers: this.headers, signal });
    await ensureOk(res, what, this.redact);
    const r = (await readJson(res, what, this.redact)) as { name?: unknown; subfolder?: unknown };
    if (typeof r.name !== 'string') throw backendError(`${what}: the response has no "name"`, { retryable: true });
    return typeof r.subfolder === 'string' && r.subfolder ? `${r.subfolder}/${r.name}` : r.name;
  }

  async generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult> {
    // An edit on a workflow that never reads the source image (or an inpaint that never reads the mask) would
    // quietly make a new image instead.
    for (const [name, has] of [['image', req.sourceImage], ['mask', req.mask]] as const) {
      if (has && !this.uses.has(name)) {
        throw backendError(`${this.o.workflowName ?? 'workflow'}: job ${req.job.id} is ${req.job.kind} but the workflow does not use {{${name}}} (use an edit workflow such as examples/comfyui-img2img.json)`, { retryable: false });
      }
    }
    const uploads: { image?: string; mask?: string } = {};
    if (req.sourceImage) uploads.image = await this.upload(req.sourceImage, signal);
    if (req.mask) uploads.mask = await this.upload(req.mask, signal);
    const prompt = this.fill(req, uploads);
    const what = `comfyui ${this.display}`;
    // The socket is opened before the prompt is queued, so that no message of it is missed.
    const live = await this.socket.ready();
    const res = await fetch(`${this.base}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.headers },
      body: JSON.stringify({ prompt, client_id: this.clientId }),
      signal,
    });
    await ensureOk(res, `${what}/prompt`, this.redact);
    const queued = (await readJson(res, `${what}/prompt`, this.redact)) as { prompt_id?: unknown; node_errors?: unknown; error?: unknown };
    if (queued.node_errors && typeof queued.node_errors === 'object' && Object.keys(queued.node_errors).length) {
      throw backendError(`${what}/prompt: node errors: ${nodeErrorsText(queued.node_errors)}`, { retryable: false });
    }
    if (typeof queued.prompt_id !== 'string') throw backendError(`${what}/prompt: the response has no prompt_id`, { retryable: true });
    const id = queued.prompt_id;
    let entry: { outputs?: Record<string, { images?: HistoryImage[] }>; status?: { status_str?: string; completed?: boolean; messages?: unknown[] } };
    // Followed over the websocket when it is up: /history is then read when the prompt ends, and every few
    // seconds meanwhile in case a message was lost; without the socket, it is polled every pollMs.
    let watch = live ? this.socket.wait(id, req.onProgress) : undefined;
    try {
      let socketEnded = false;
      for (;;) {
        if (watch && !socketEnded) {
          const r = await Promise.race([watch.ended, sleep(HISTORY_CHECK_MS, signal).then(() => undefined)]);
          if (r?.kind === 'error') {
            throw backendError(`${what}: prompt ${id} failed: ${r.message}`, { retryable: false });
          }
          if (r?.kind === 'done') socketEnded = true;
          if (r?.kind === 'lost') watch = undefined;
        }
        const h = await fetch(`${this.base}/history/${encodeURIComponent(id)}`, { headers: this.headers, signal });
        await ensureOk(h, `${what}/history/${id}`, this.redact);
        const all = (await readJson(h, `${what}/history/${id}`, this.redact)) as Record<string, typeof entry>;
        const e = all[id];
        if (e && (e.status?.status_str === 'error' || e.status?.completed || (e.outputs && Object.keys(e.outputs).length))) {
          entry = e;
          watch?.cancel();
          break;
        }
        if (!watch || socketEnded) await sleep(this.o.pollMs ?? 500, signal);
      }
    } catch (e) {
      watch?.cancel();
      // Timed out or stopped: take the prompt off the queue if it has not started (best effort).
      if (signal.aborted) {
        void fetch(`${this.base}/queue`, { method: 'POST', headers: { 'content-type': 'application/json', ...this.headers }, body: JSON.stringify({ delete: [id] }) }).catch(() => undefined);
      }
      throw e;
    }
    if (entry.status?.status_str === 'error') {
      throw backendError(`${what}: prompt ${id} failed: ${executionError(entry.status.messages)}`, { retryable: false });
    }
    const images: HistoryImage[] = [];
    const nodes = Object.keys(entry.outputs ?? {}).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (const n of nodes) for (const im of entry.outputs?.[n]?.images ?? []) images.push(im);
    const saved = images.filter((im) => (im.type ?? 'output') === 'output');
    const chosen = saved.length ? saved : images;
    if (!chosen.length) throw backendError(`${what}: prompt ${id} finished without images (does the workflow end in SaveImage?)`, { retryable: false });
    const out: Buffer[] = [];
    for (const im of chosen) {
      const q = new URLSearchParams({ filename: im.filename, subfolder: im.subfolder ?? '', type: im.type ?? 'output' });
      const v = await fetch(`${this.base}/view?${q}`, { headers: this.headers, signal });
      await ensureOk(v, `${what}/view ${im.filename}`, this.redact);
      const bytes = Buffer.from(await v.arrayBuffer());
      checkImage(bytes, `${what}/view ${im.filename}`);
      out.push(bytes);
    }
    const model = this.o.model ?? checkpointOf(prompt) ?? 'comfyui';
    return {
      images: out,
      seeds: out.map(() => req.seed),
      model,
      parameters: { workflow: this.o.workflowName ?? 'workflow', prompt },
      info: { prompt_id: id, outputs: chosen.map((im) => ({ filename: im.filename, subfolder: im.subfolder ?? '', type: im.type ?? 'output' })) },
    };
  }
}

/** An execution_error's data as one line: the failing node, its type, the exception. */
function executionErrorText(d: { node_id?: unknown; node_type?: unknown; exception_type?: unknown; exception_message?: unknown }): string {
  return `node ${String(d.node_id ?? '?')} (${String(d.node_type ?? '?')}): ${String(d.exception_type ?? 'error')}: ${String(d.exception_message ?? '').trim()}`;
}

/** The execution_error message of a failed prompt ([event, data] pairs in status.messages). */
function executionError(messages: unknown[] | undefined): string {
  for (const m of messages ?? []) {
    if (Array.isArray(m) && m[0] === 'execution_error' && m[1] && typeof m[1] === 'object') return executionErrorText(m[1] as Record<string, unknown>);
  }
  return 'execution error (no message)';
}

function checkpointOf(g: Graph): string | undefined {
  for (const n of Object.values(g)) {
    const c = n.inputs.ckpt_name ?? n.inputs.unet_name;
    if (typeof c === 'string' && c) return c;
  }
  return undefined;
}
