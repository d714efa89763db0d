/**
 * OpenAI-compatible image servers: POST /v1/images/generations (JSON) and,
 * for jobs with a source image, POST /v1/images/edits (multipart). Always asks
 * for b64_json (except gpt-image models, which only answer base64 and reject
 * the field). The API key goes in the Authorization header only.
 *
 * The base URL may end in /v1 or not. The plan's mask (white = the object)
 * becomes OpenAI's (transparent = the area to repaint): for a background edit
 * (invert_mask) the object stays opaque, otherwise the object is cleared.
 */
import { imageInfo, readImage } from '../io/images.js';
import { redactor } from '../util/secrets.js';
import { checkImage } from './image.js';
import { backendError, decodeBase64, ensureOk, readJson, splitCredentials, type Redact } from './http.js';
import { substitute } from './template.js';
import { jobVars, type Backend, type BackendOptions, type GenerateRequest, type GenerateResult } from './types.js';

export class OpenAIBackend implements Backend {
  readonly type = 'openai' as const;
  readonly display: string;
  readonly secrets: string[];
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly redact: Redact;

  constructor(private readonly o: BackendOptions) {
    const c = splitCredentials(o.url);
    this.base = c.url.endsWith('/v1') ? c.url : `${c.url}/v1`;
    this.display = c.display;
    this.headers = { ...c.headers };
    if (o.apiKey) this.headers.authorization = `Bearer ${o.apiKey}`;
    this.secrets = [...(o.apiKey ? [o.apiKey] : []), ...c.secrets];
    this.redact = redactor(this.secrets);
  }

  fields(req: GenerateRequest): Record<string, unknown> {
    const j = req.job;
    const extra = substitute(this.o.params ?? {}, jobVars(req, this.o.model ? { model: this.o.model } : {}), 'openai params') as Record<string, unknown>;
    const model = this.o.model;
    const f: Record<string, unknown> = { prompt: j.prompt, n: 1, size: `${j.width}x${j.height}` };
    if (model) f.model = model;
    if (!model?.startsWith('gpt-image')) f.response_format = 'b64_json';
    return { ...f, ...extra };
  }

  async generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult> {
    const fields = this.fields(req);
    const edit = Boolean(req.sourceImage);
    const route = edit ? 'images/edits' : 'images/generations';
    const what = `openai ${this.display}/${route}`;
    let res: Response;
    if (!edit) {
      res = await fetch(`${this.base}/${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers },
        body: JSON.stringify(fields),
        signal,
      });
    } else {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
      const src = req.sourceImage as Buffer;
      const ext = checkImage(src, `job ${req.job.id}: source_image`);
      form.append('image', new Blob([src], { type: ext === 'jpg' ? 'image/jpeg' : `image/${ext}` }), `image.${ext}`);
      if (req.mask) form.append('mask', new Blob([await alphaMask(src, req.mask, Boolean(req.job.invert_mask))], { type: 'image/png' }), 'mask.png');
      res = await fetch(`${this.base}/${route}`, { method: 'POST', headers: this.headers, body: form, signal });
    }
    await ensureOk(res, what, this.redact);
    const r = (await readJson(res, what, this.redact)) as { data?: Array<{ b64_json?: unknown; url?: unknown; revised_prompt?: unknown }>; created?: unknown };
    const d = Array.isArray(r.data) ? r.data[0] : undefined;
    if (!d) throw backendError(`${what}: the response has no data[0]`, { retryable: true });
    let image: Buffer;
    if (d.b64_json !== undefined) image = decodeBase64(d.b64_json, `${what}: data[0].b64_json`);
    else if (typeof d.url === 'string') {
      const u = await fetch(d.url, { signal });
      await ensureOk(u, `${what}: data[0].url`, this.redact);
      image = Buffer.from(await u.arrayBuffer());
    } else throw backendError(`${what}: data[0] has neither b64_json nor url`, { retryable: true });
    checkImage(image, `${what}: data[0]`);
    const info: Record<string, unknown> = {};
    if (typeof d.revised_prompt === 'string') info.revised_prompt = d.revised_prompt;
    if (typeof r.created === 'number') info.created = r.created;
    // OpenAI takes no seed: none is recorded unless --params sent one (local servers that take "seed": "{{seed}}").
    const sent = typeof fields.seed === 'number' && Number.isInteger(fields.seed) ? [fields.seed] : [];
    return { images: [image], seeds: sent, model: this.o.model ?? 'openai', parameters: { route, ...fields }, info };
  }
}

/** RGBA PNG the size of the source: alpha 0 where the server may repaint. */
async function alphaMask(source: Buffer, mask: Buffer, invert: boolean): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const { width: w, height: h } = await imageInfo(source);
  const m = await readImage(mask);
  const gray = await sharp(m.data, { raw: { width: m.width, height: m.height, channels: 3 } }).resize(w, h, { fit: 'fill', kernel: 'nearest' }).greyscale().raw().toBuffer();
  const rgba = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const object = (gray[i] as number) >= 128;
    rgba[4 * i + 3] = object === invert ? 255 : 0;
  }
  return sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
}
