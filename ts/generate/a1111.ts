/**
 * AUTOMATIC1111 / Forge: POST /sdapi/v1/txt2img and /sdapi/v1/img2img
 * (modules/api/models.py). One image per request (batch_size 1, n_iter 1) so
 * each candidate succeeds or fails alone; `info` is a JSON string holding the
 * seed(s) actually used.
 */
import { redactor } from '../util/secrets.js';
import { checkImage } from './image.js';
import { backendError, decodeBase64, ensureOk, readJson, splitCredentials, type Redact } from './http.js';
import { substitute } from './template.js';
import { jobVars, type Backend, type BackendOptions, type GenerateRequest, type GenerateResult } from './types.js';

export class A1111Backend implements Backend {
  readonly type = 'a1111' as const;
  readonly display: string;
  readonly secrets: string[];
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly redact: Redact;

  constructor(private readonly o: BackendOptions) {
    const c = splitCredentials(o.url);
    this.base = c.url;
    this.display = c.display;
    this.headers = c.headers;
    this.secrets = c.secrets;
    this.redact = redactor(this.secrets);
  }

  /** The request body for a job (without the image fields), as recorded in the sidecar. */
  body(req: GenerateRequest): Record<string, unknown> {
    const j = req.job;
    const extra = (substitute(this.o.params ?? {}, jobVars(req, this.o.model ? { model: this.o.model } : {}), 'a1111 params') ?? {}) as Record<string, unknown>;
    const body: Record<string, unknown> = {
      prompt: j.prompt,
      negative_prompt: j.negative_prompt,
      seed: req.seed,
      width: j.width,
      height: j.height,
      batch_size: 1,
      n_iter: 1,
      send_images: true,
      save_images: false,
      ...extra,
    };
    if (this.o.model) {
      const os = (body.override_settings ?? {}) as Record<string, unknown>;
      body.override_settings = { ...os, sd_model_checkpoint: this.o.model };
      // A1111 restores its settings after each overridden request by default, which reloads the weights
      // twice per image; keep the model loaded (unless the user says otherwise in --params).
      if (!('override_settings_restore_afterwards' in body)) body.override_settings_restore_afterwards = false;
    }
    if (j.kind !== 'txt2img') {
      body.denoising_strength = j.denoising_strength ?? extra.denoising_strength ?? 0.75;
      if (j.kind === 'inpaint') {
        body.inpainting_mask_invert = j.invert_mask ? 1 : 0;
        body.inpainting_fill ??= 1; // start from the original pixels
      }
    }
    return body;
  }

  async generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult> {
    const j = req.job;
    const parameters = this.body(req);
    const body: Record<string, unknown> = { ...parameters };
    let route = 'txt2img';
    if (j.kind !== 'txt2img') {
      route = 'img2img';
      if (!req.sourceImage) throw backendError(`job ${j.id}: ${j.kind} needs source_image`, { retryable: false });
      body.init_images = [req.sourceImage.toString('base64')];
      if (j.kind === 'inpaint') {
        if (!req.mask) throw backendError(`job ${j.id}: inpaint needs mask`, { retryable: false });
        body.mask = req.mask.toString('base64');
      }
    }
    const what = `a1111 ${this.display}/sdapi/v1/${route}`;
    const res = await fetch(`${this.base}/sdapi/v1/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...this.headers },
      body: JSON.stringify(body),
      signal,
    });
    await ensureOk(res, what, this.redact);
    const r = (await readJson(res, what, this.redact)) as { images?: unknown; info?: unknown };
    if (!Array.isArray(r.images) || r.images.length === 0) throw backendError(`${what}: the response has no images`, { retryable: true });
    // With batch_size 1 the first image is the result; extensions may append previews after it.
    const image = decodeBase64(r.images[0], `${what}: images[0]`);
    checkImage(image, `${what}: images[0]`);
    let info: Record<string, unknown> = {};
    if (typeof r.info === 'string' && r.info) {
      try {
        info = JSON.parse(r.info) as Record<string, unknown>;
      } catch {
        info = { raw: r.info };
      }
    } else if (r.info && typeof r.info === 'object') info = r.info as Record<string, unknown>;
    const seeds = Array.isArray(info.all_seeds) && typeof info.all_seeds[0] === 'number' ? [info.all_seeds[0] as number] : typeof info.seed === 'number' ? [info.seed] : [req.seed];
    const model = typeof info.sd_model_name === 'string' && info.sd_model_name ? info.sd_model_name : this.o.model ?? 'a1111';
    return { images: [image], seeds, model, parameters: { route, ...parameters }, info };
  }
}
