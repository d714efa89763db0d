/**
 * Local image servers for the generate tests: each speaks its protocol as
 * FORMATS.md documents it (A1111 /sdapi/v1, ComfyUI /prompt /history /view
 * /upload/image, OpenAI /v1/images/*), checks the requests it gets, returns
 * procedurally drawn images (a function of the request: the oracle), and
 * misbehaves on demand.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';

import { seededRandom } from '../ts/util/random.js';

/** The image a server draws for `key`: white, with one coloured rectangle placed and coloured from the key. */
export async function drawImage(key: string, width: number, height: number): Promise<Buffer> {
  const r = seededRandom(createHash('sha256').update(key).digest().readUInt32LE(0));
  const px = Buffer.alloc(width * height * 3, 255);
  const x0 = Math.floor(r() * width * 0.3) + 1;
  const y0 = Math.floor(r() * height * 0.3) + 1;
  const x1 = x0 + Math.max(2, Math.floor(width * (0.3 + r() * 0.3)));
  const y1 = y0 + Math.max(2, Math.floor(height * (0.3 + r() * 0.3)));
  const c = [Math.floor(r() * 200), Math.floor(r() * 200), Math.floor(r() * 200)];
  for (let y = y0; y < Math.min(y1, height - 1); y++) {
    for (let x = x0; x < Math.min(x1, width - 1); x++) px.set(c, 3 * (y * width + x));
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface Hit {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  json?: any;
}

export interface TestServer {
  url: string;
  hits: Hit[];
  close(): Promise<void>;
  /** Closes the listener and cuts every open connection (a server that dies). */
  kill(): void;
  /** The listening server (to attach a websocket server to). */
  http: Server;
}

type Handler = (hit: Hit, res: ServerResponse) => Promise<void> | void;

async function serve(handler: Handler, port = 0): Promise<TestServer> {
  const hits: Hit[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const hit: Hit = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
        try {
          hit.json = JSON.parse(body.toString('utf8'));
        } catch {
          // left undefined: the handler answers 422
        }
      }
      hits.push(hit);
      Promise.resolve(handler(hit, res)).catch((e) => {
        if (!res.headersSent) send(res, 500, { error: 'TestServerError', errors: String(e?.stack ?? e) });
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const addr = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    http: server,
    hits,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
    kill: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
  res.end(text);
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a misbehaving server does for one request (decided from the request; `attempt` counts the hits for the same seed). */
export type Misbehave = (o: { seed: number; prompt: string; attempt: number }) => 'ok' | '500' | 'nan' | 'hang' | 'truncate' | '400' | '429' | 'cut' | 'badjson' | undefined;

export interface A1111Options {
  delayMs?: number;
  misbehave?: Misbehave;
  model?: string;
  /** Listen on this port (0: any free one). */
  port?: number;
  /** Called on every request before it is answered (e.g. to kill the server mid-run). */
  onRequest?: (n: number) => void;
}

/** The key the fake A1111 draws from: seed, prompt and (img2img) the source and mask bytes. */
export function a1111Key(body: any): string {
  const src = body.init_images ? sha(Buffer.from(body.init_images[0], 'base64')) : '';
  const mask = body.mask ? `${sha(Buffer.from(body.mask, 'base64'))}:${body.inpainting_mask_invert}` : '';
  return `a1111|${body.seed}|${body.prompt}|${src}|${mask}`;
}

export async function a1111Server(o: A1111Options = {}): Promise<TestServer & { attempts: Map<number, number> }> {
  const attempts = new Map<number, number>();
  const s: TestServer = await serve(async (hit, res) => {
    const route = hit.path.replace(/\?.*$/, '');
    if (hit.method !== 'POST' || (route !== '/sdapi/v1/txt2img' && route !== '/sdapi/v1/img2img')) return send(res, 404, { detail: 'Not Found' });
    const b = hit.json;
    // FastAPI answers a body that does not fit the model with 422 and a detail list.
    const bad: string[] = [];
    if (!b || typeof b !== 'object') return send(res, 422, { detail: [{ loc: ['body'], msg: 'field required', type: 'value_error.missing' }] });
    if (typeof b.prompt !== 'string') bad.push('prompt');
    if (!Number.isInteger(b.seed)) bad.push('seed');
    if (!Number.isInteger(b.width) || !Number.isInteger(b.height)) bad.push('width/height');
    if (route === '/sdapi/v1/img2img' && (!Array.isArray(b.init_images) || typeof b.init_images[0] !== 'string')) bad.push('init_images');
    if (bad.length) return send(res, 422, { detail: bad.map((f) => ({ loc: ['body', f], msg: 'value is not valid', type: 'type_error' })) });
    const attempt = (attempts.get(b.seed) ?? 0) + 1;
    attempts.set(b.seed, attempt);
    o.onRequest?.(s.hits.length);
    if (o.delayMs) await wait(o.delayMs);
    const m = o.misbehave?.({ seed: b.seed, prompt: b.prompt, attempt }) ?? 'ok';
    if (m === 'hang') return; // never answers
    if (m === 'cut') return void res.socket?.destroy();
    if (m === 'nan') {
      // modules/api/api.py's exception handler: {error: type name, detail, body, errors: str(e)}
      return send(res, 500, {
        error: 'NansException',
        detail: '',
        body: '',
        errors: 'A tensor with all NaNs was produced in Unet. This could be either because there\'s not enough precision to represent the picture, or because your video card does not support half type. Try setting the "Upcast cross attention layer to float32" option in Settings > Stable Diffusion or using the --no-half commandline argument to fix this. Use --disable-nan-check commandline argument to disable this check.',
      });
    }
    if (m === '500') return send(res, 500, 'Internal Server Error');
    if (m === '429') return send(res, 429, { detail: 'busy' }, { 'retry-after': '0' });
    if (m === '400') return send(res, 400, { detail: `Invalid prompt: ${b.prompt}` });
    // A 200 whose JSON body breaks off (a proxy that cut it, a server that crashed mid-write).
    if (m === 'badjson') return send(res, 200, '{"images": ["iVBORw0KGgo', { 'content-type': 'application/json' });
    const png = await drawImage(a1111Key(b), b.width, b.height);
    let b64 = png.toString('base64');
    if (m === 'truncate') b64 = b64.slice(0, Math.floor(b64.length / 2 / 4) * 4);
    const { init_images: _i, mask: _m, ...params } = b;
    send(res, 200, {
      images: [b64],
      parameters: params,
      info: JSON.stringify({ prompt: b.prompt, seed: b.seed, all_seeds: [b.seed], subseed: 1, all_subseeds: [1], sd_model_name: b.override_settings?.sd_model_checkpoint ?? o.model ?? 'v1-5-pruned-emaonly', infotexts: [`${b.prompt}\nSteps: ${b.steps ?? 20}, Seed: ${b.seed}`] }),
    });
  }, o.port);
  return Object.assign(s, { attempts });
}

export interface ComfyOptions {
  /** How many /history polls answer {} before the outputs appear (without a websocket). */
  pendingPolls?: number;
  /**
   * Serve /ws?clientId= as ComfyUI does: a prompt then runs after POST /prompt answers, sends execution_start,
   * `steps` progress messages, executed, execution_success and executing {node: null} to the client that queued
   * it (or execution_error for a prompt whose key holds "explode"), and reaches /history only when it ends.
   */
  websocket?: boolean;
  /** Sampler steps reported per prompt (default 3). */
  steps?: number;
  /** Images per prompt (a batch), default 1. */
  images?: number;
  /** Close every websocket after this many messages in all (a socket lost mid-run). */
  dropSocketAfter?: number;
  /**
   * What POST /prompt does for a valid prompt (seed: the KSampler's, prompt: the sorted texts joined by "|"):
   * '500' answers 500, 'badjson' a cut JSON body, 'hang' queues it but never runs it (no message, no history).
   */
  misbehave?: Misbehave;
}

/** Nodes the fake ComfyUI knows, with the inputs it type-checks (as /object_info would describe them). */
const COMFY_NODES: Record<string, Record<string, 'INT' | 'FLOAT' | 'STRING' | 'LINK'>> = {
  CheckpointLoaderSimple: { ckpt_name: 'STRING' },
  CLIPTextEncode: { text: 'STRING', clip: 'LINK' },
  EmptyLatentImage: { width: 'INT', height: 'INT', batch_size: 'INT' },
  KSampler: { seed: 'INT', steps: 'INT', cfg: 'FLOAT', sampler_name: 'STRING', scheduler: 'STRING', denoise: 'FLOAT', model: 'LINK', positive: 'LINK', negative: 'LINK', latent_image: 'LINK' },
  VAEDecode: { samples: 'LINK', vae: 'LINK' },
  VAEEncode: { pixels: 'LINK', vae: 'LINK' },
  SaveImage: { images: 'LINK', filename_prefix: 'STRING' },
  LoadImage: { image: 'STRING' },
  GLIGENLoader: { gligen_name: 'STRING' },
  GLIGENTextBoxApply: { conditioning_to: 'LINK', clip: 'LINK', gligen_textbox_model: 'LINK', text: 'STRING', width: 'INT', height: 'INT', x: 'INT', y: 'INT' },
};

/** The key the fake ComfyUI draws from: what reached the sampler (seed, texts, GLIGEN boxes, loaded image). */
export function comfyKey(prompt: Record<string, any>): { key: string; width: number; height: number } {
  const nodes = Object.values(prompt);
  const ks = nodes.find((n) => n.class_type === 'KSampler');
  const texts = nodes.filter((n) => n.class_type === 'CLIPTextEncode').map((n) => n.inputs.text).sort();
  const boxes = nodes.filter((n) => n.class_type === 'GLIGENTextBoxApply').map((n) => `${n.inputs.text}@${n.inputs.x},${n.inputs.y},${n.inputs.width},${n.inputs.height}`).sort();
  const load = nodes.filter((n) => n.class_type === 'LoadImage').map((n) => n.inputs.image);
  const lat = nodes.find((n) => n.class_type === 'EmptyLatentImage');
  return { key: `comfy|${ks?.inputs.seed}|${texts.join('|')}|${boxes.join(';')}|${load.join(',')}`, width: lat?.inputs.width ?? 16, height: lat?.inputs.height ?? 16 };
}

export async function comfyServer(
  o: ComfyOptions = {},
): Promise<TestServer & { uploads: Map<string, Buffer>; prompts: Map<string, any>; socketMessages: Array<{ client: string; type: string; data: any }>; clients: Map<string, WebSocket> }> {
  const uploads = new Map<string, Buffer>();
  const prompts = new Map<string, any>();
  const history = new Map<string, { polls: number; entry: any; ready: boolean }>();
  const files = new Map<string, Buffer>();
  const clients = new Map<string, WebSocket>();
  const socketMessages: Array<{ client: string; type: string; data: any }> = [];
  const promptAttempts = new Map<number, number>();
  let counter = 0;
  let sent = 0;
  const emit = (client: string, type: string, data: any) => {
    const ws = clients.get(client);
    if (!ws || ws.readyState !== ws.OPEN) return;
    socketMessages.push({ client, type, data });
    ws.send(JSON.stringify({ type, data }));
    if (o.dropSocketAfter !== undefined && ++sent >= o.dropSocketAfter) for (const c of clients.values()) c.terminate();
  };
  /** The prompt's run as ComfyUI's websocket tells it, one message per tick. */
  const run = async (client: string, id: string, saveId: string, failing: boolean) => {
    const tick = () => new Promise((r) => setTimeout(r, 2));
    const h = history.get(id)!;
    await tick();
    emit(client, 'execution_start', { prompt_id: id, timestamp: 1 });
    emit(client, 'execution_cached', { nodes: [], prompt_id: id, timestamp: 1 });
    if (failing) {
      emit(client, 'executing', { node: '3', display_node: '3', prompt_id: id });
      await tick();
      h.ready = true;
      emit(client, 'execution_error', h.entry.status.messages[1][1]);
      return;
    }
    emit(client, 'executing', { node: '3', display_node: '3', prompt_id: id });
    for (let v = 1; v <= (o.steps ?? 3); v++) {
      await tick();
      emit(client, 'progress', { value: v, max: o.steps ?? 3, prompt_id: id, node: '3' });
    }
    // A preview frame, as binary (type 1, PNG): the client must ignore it.
    clients.get(client)?.send(Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.from('not-a-real-png')]));
    emit(client, 'executed', { node: saveId, display_node: saveId, output: h.entry.outputs[saveId], prompt_id: id });
    emit(client, 'execution_success', { prompt_id: id, timestamp: 2 });
    // ComfyUI moves the prompt to the history between execution_success and executing {node: null}.
    await tick();
    h.ready = true;
    emit(client, 'executing', { node: null, prompt_id: id });
  };
  const s = await serve(async (hit, res) => {
    const url = new URL(hit.path, 'http://x');
    const route = url.pathname.replace(/^\/api(?=\/)/, '');
    if (hit.method === 'POST' && route === '/upload/image') {
      const form = await new Response(hit.body, { headers: { 'content-type': String(hit.headers['content-type']) } }).formData();
      const f = form.get('image');
      if (!(f instanceof Blob)) return send(res, 400, 'no image');
      const name = (f as File).name;
      uploads.set(name, Buffer.from(await f.arrayBuffer()));
      return send(res, 200, { name, subfolder: '', type: String(form.get('type') ?? 'input') });
    }
    if (hit.method === 'POST' && route === '/prompt') {
      const prompt = hit.json?.prompt;
      if (!prompt || typeof prompt !== 'object') return send(res, 400, { error: { type: 'no_prompt', message: 'No prompt provided', details: '', extra_info: {} }, node_errors: {} });
      if (typeof hit.json.client_id !== 'string') return send(res, 400, { error: { type: 'invalid_prompt', message: 'client_id missing', details: '' }, node_errors: {} });
      // validate_prompt: every node known, every input of the right type, links to existing nodes.
      const nodeErrors: Record<string, any> = {};
      for (const [id, n] of Object.entries<any>(prompt)) {
        const spec = COMFY_NODES[n.class_type];
        if (!spec) {
          return send(res, 400, { error: { type: 'invalid_prompt', message: `Cannot execute because node ${n.class_type} does not exist.`, details: `Node ID '#${id}'`, extra_info: {} }, node_errors: {} });
        }
        const errs: any[] = [];
        for (const [k, t] of Object.entries(spec)) {
          const v = n.inputs?.[k];
          if (v === undefined) continue;
          if (Array.isArray(v)) {
            if (t !== 'LINK' && !(typeof v[0] === 'string' && typeof v[1] === 'number')) errs.push({ type: 'bad_link', message: 'Bad linked input', details: k });
            else if (!prompt[v[0]]) errs.push({ type: 'bad_link', message: `Required input is missing a link target ${v[0]}`, details: k });
          } else if (t === 'INT' && !Number.isInteger(v)) {
            errs.push({ type: 'invalid_input_type', message: 'Failed to convert an input value to a INT value', details: `${k}, ${JSON.stringify(v)}` });
          } else if (t === 'FLOAT' && typeof v !== 'number') {
            errs.push({ type: 'invalid_input_type', message: 'Failed to convert an input value to a FLOAT value', details: `${k}, ${JSON.stringify(v)}` });
          } else if (t === 'STRING' && typeof v !== 'string') {
            errs.push({ type: 'invalid_input_type', message: 'Failed to convert an input value to a STRING value', details: `${k}, ${JSON.stringify(v)}` });
          } else if (t === 'LINK') {
            errs.push({ type: 'bad_link', message: 'Required input is not a link', details: k });
          }
        }
        if (n.class_type === 'LoadImage' && !uploads.has(n.inputs.image)) errs.push({ type: 'value_not_in_list', message: 'Value not in list', details: `image: '${n.inputs.image}' not in (list of length ${uploads.size})` });
        if (errs.length) nodeErrors[id] = { errors: errs, dependent_outputs: [], class_type: n.class_type };
      }
      if (Object.keys(nodeErrors).length) {
        return send(res, 400, { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: nodeErrors });
      }
      const { key, width, height } = comfyKey(prompt);
      const ks = Object.values<any>(prompt).find((n) => n.class_type === 'KSampler');
      const texts = Object.values<any>(prompt).filter((n) => n.class_type === 'CLIPTextEncode').map((n) => n.inputs.text).sort().join('|');
      const seedKey = Number(ks?.inputs.seed ?? 0);
      const attempt = (promptAttempts.get(seedKey) ?? 0) + 1;
      promptAttempts.set(seedKey, attempt);
      const mb = o.misbehave?.({ seed: seedKey, prompt: texts, attempt }) ?? 'ok';
      if (mb === '500') return send(res, 500, '500 Internal Server Error');
      if (mb === 'badjson') return send(res, 200, '{"prompt_id": "p-', { 'content-type': 'application/json' });
      const number = ++counter;
      const id = `p-${number}`;
      prompts.set(id, prompt);
      if (mb === 'hang') {
        history.set(id, { polls: 0, entry: {}, ready: false });
        return send(res, 200, { prompt_id: id, number, node_errors: {} });
      }
      const saveId = Object.entries<any>(prompt).find(([, n]) => n.class_type === 'SaveImage')?.[0] as string;
      let entry: any;
      if (key.includes('explode')) {
        entry = {
          prompt: [number, id, prompt, {}, [saveId]],
          outputs: {},
          status: {
            status_str: 'error',
            completed: false,
            messages: [
              ['execution_start', { prompt_id: id, timestamp: 1 }],
              ['execution_error', { prompt_id: id, node_id: '3', node_type: 'KSampler', executed: [], exception_message: 'CUDA out of memory. Tried to allocate 2.00 GiB\n', exception_type: 'torch.OutOfMemoryError', traceback: [], current_inputs: {}, current_outputs: {} }],
            ],
          },
        };
      } else {
        const images: Array<{ filename: string; subfolder: string; type: string }> = [];
        for (let k = 0; k < (o.images ?? 1); k++) {
          const png = await drawImage(k === 0 ? key : `${key} #${k}`, width, height);
          const filename = `ComfyUI_${String(number).padStart(5, '0')}_${k ? `${k}_` : ''}.png`;
          files.set(`output/${filename}`, png);
          images.push({ filename, subfolder: '', type: 'output' });
        }
        entry = {
          prompt: [number, id, prompt, {}, [saveId]],
          outputs: { [saveId]: { images } },
          status: { status_str: 'success', completed: true, messages: [['execution_start', { prompt_id: id }], ['execution_success', { prompt_id: id }]] },
        };
      }
      const live = o.websocket && clients.has(hit.json.client_id);
      history.set(id, { polls: 0, entry, ready: !live });
      send(res, 200, { prompt_id: id, number, node_errors: {} });
      if (live) void run(hit.json.client_id, id, saveId, key.includes('explode'));
      return;
    }
    const hm = /^\/history\/(.+)$/.exec(route);
    if (hit.method === 'GET' && hm) {
      const h = history.get(decodeURIComponent(hm[1] as string));
      if (!h || !h.ready || h.polls++ < (o.pendingPolls ?? 2)) return send(res, 200, {});
      return send(res, 200, { [hm[1] as string]: h.entry });
    }
    if (hit.method === 'GET' && route === '/view') {
      const f = files.get(`${url.searchParams.get('type')}/${url.searchParams.get('subfolder') ? `${url.searchParams.get('subfolder')}/` : ''}${url.searchParams.get('filename')}`);
      if (!f) return send(res, 404, '404: Not Found');
      res.writeHead(200, { 'content-type': 'image/png' });
      return void res.end(f);
    }
    if (hit.method === 'POST' && route === '/queue') return send(res, 200, {});
    return send(res, 404, '404: Not Found');
  });
  if (o.websocket) {
    const wss = new WebSocketServer({ server: s.http, path: '/ws' });
    wss.on('connection', (ws, req) => {
      const client = new URL(req.url ?? '', 'http://x').searchParams.get('clientId') ?? 'anonymous';
      clients.set(client, ws);
      ws.on('close', () => clients.get(client) === ws && clients.delete(client));
      ws.send(JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: client } }));
    });
    const close = s.close;
    s.close = async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await close();
    };
  }
  return Object.assign(s, { uploads, prompts, socketMessages, clients });
}

export interface OpenAIOptions {
  apiKey?: string;
  /** Answer errors that echo the Authorization header (a careless proxy), to check the key never reaches a file. */
  echoKey?: boolean;
  misbehave?: Misbehave;
}

export async function openaiServer(o: OpenAIOptions = {}): Promise<TestServer & { edits: Array<{ fields: Record<string, string>; image: Buffer; mask?: Buffer }> }> {
  const edits: Array<{ fields: Record<string, string>; image: Buffer; mask?: Buffer }> = [];
  const attempts = new Map<string, number>();
  const s = await serve(async (hit, res) => {
    const route = hit.path.replace(/\?.*$/, '');
    const auth = String(hit.headers.authorization ?? '');
    if (o.apiKey && auth !== `Bearer ${o.apiKey}`) {
      return send(res, 401, { error: { message: `Incorrect API key provided: ${o.echoKey ? auth : '***'}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    }
    let fields: Record<string, any>;
    let image: Buffer | undefined;
    let mask: Buffer | undefined;
    if (hit.method === 'POST' && route === '/v1/images/generations') {
      fields = hit.json ?? {};
    } else if (hit.method === 'POST' && route === '/v1/images/edits') {
      const form = await new Response(hit.body, { headers: { 'content-type': String(hit.headers['content-type']) } }).formData();
      fields = {};
      for (const [k, v] of form.entries()) if (typeof v === 'string') fields[k] = v;
      const im = form.get('image');
      const mk = form.get('mask');
      if (!(im instanceof Blob)) return send(res, 400, { error: { message: "Missing required parameter: 'image'.", type: 'invalid_request_error' } });
      image = Buffer.from(await im.arrayBuffer());
      if (mk instanceof Blob) mask = Buffer.from(await mk.arrayBuffer());
      edits.push({ fields, image, ...(mask ? { mask } : {}) });
    } else return send(res, 404, { error: { message: 'Not found', type: 'invalid_request_error' } });
    if (typeof fields.prompt !== 'string' || !fields.prompt) return send(res, 400, { error: { message: "Missing required parameter: 'prompt'.", type: 'invalid_request_error' } });
    const m = /^(\d+)x(\d+)$/.exec(String(fields.size ?? ''));
    if (!m) return send(res, 400, { error: { message: `Invalid value: '${fields.size}'. Supported values are: '256x256', '512x512', and '1024x1024'.`, type: 'invalid_request_error', param: 'size' } });
    const seed = Number(fields.seed ?? 0);
    const a = (attempts.get(`${seed}|${fields.prompt}`) ?? 0) + 1;
    attempts.set(`${seed}|${fields.prompt}`, a);
    const mb = o.misbehave?.({ seed, prompt: fields.prompt, attempt: a }) ?? 'ok';
    if (mb === '400') return send(res, 400, { error: { message: `Your request was rejected as a result of our safety system. ${o.echoKey ? auth : ''}`, type: 'image_generation_user_error', code: 'moderation_blocked' } });
    if (mb === '500') return send(res, 500, { error: { message: `The server had an error while processing your request. ${o.echoKey ? auth : ''}`, type: 'server_error' } });
    if (mb === 'hang') return;
    if (mb === 'badjson') return send(res, 200, '{"created": 1700000000, "data": [{"b64_json": "iVBOR', { 'content-type': 'application/json' });
    const png = await drawImage(`openai|${fields.model ?? ''}|${seed}|${fields.prompt}|${image ? sha(image) : ''}`, Number(m[1]), Number(m[2]));
    let b64 = png.toString('base64');
    if (mb === 'truncate') b64 = b64.slice(0, b64.length - 40);
    return send(res, 200, { created: 1700000000, data: [{ b64_json: b64, revised_prompt: `${fields.prompt}, detailed` }] });
  });
  return Object.assign(s, { edits });
}
