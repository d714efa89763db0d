/** The interface every image-server backend implements, and what a request and a result hold. */
import type { PlanJob } from '../plan/job.js';

export type BackendType = 'a1111' | 'comfyui' | 'openai';

/** One candidate of one job: one request to one server. */
export interface GenerateRequest {
  job: PlanJob;
  candidate: number;
  /** job.seed + candidate. */
  seed: number;
  /** Bytes of job.source_image (img2img / inpaint), read by the runner. */
  sourceImage?: Buffer;
  /** Bytes of job.mask (inpaint; white = the object). */
  mask?: Buffer;
  /** Hears the server's progress on this request where it reports it (ComfyUI: sampler steps of a node). */
  onProgress?: (p: { value: number; max: number; node?: string }) => void;
}

export interface GenerateResult {
  /** Encoded image bytes (PNG, JPEG or WebP), checked whole. */
  images: Buffer[];
  /**
   * The seed the server says it used for each image (the one sent when it does not say); empty when no seed was
   * sent (OpenAI without a seed parameter): the records then say server_seed null.
   */
  seeds: number[];
  /** The model the server says it used (or the one requested, or the backend type). */
  model: string;
  /** The request parameters sent, without image bytes or credentials. */
  parameters: Record<string, unknown>;
  /** What the server said besides the images (A1111's parsed info, ComfyUI's prompt id, OpenAI's revised prompt). */
  info: Record<string, unknown>;
}

export interface BackendOptions {
  /** Base URL, e.g. http://127.0.0.1:7860 (credentials in the URL become HTTP Basic auth and are never recorded). */
  url: string;
  /** Model to request (A1111: override_settings.sd_model_checkpoint; OpenAI: model; ComfyUI: {{model}}). */
  model?: string;
  /** Extra request fields (A1111/OpenAI body; ComfyUI placeholders); string values may hold placeholders. */
  params?: Record<string, unknown>;
  /** ComfyUI: the API-format workflow template (parsed JSON). */
  workflow?: unknown;
  /** ComfyUI: where the workflow came from, for messages. */
  workflowName?: string;
  /** ComfyUI: how often /history is polled, ms (default 500). */
  pollMs?: number;
  /** OpenAI: the API key (from the environment or a key file; sent as a Bearer token, never recorded). */
  apiKey?: string;
}

export interface Backend {
  readonly type: BackendType;
  /** The URL without credentials, for records. */
  readonly display: string;
  generate(req: GenerateRequest, signal: AbortSignal): Promise<GenerateResult>;
  /** Strings that must never be written anywhere (API keys, passwords). */
  readonly secrets: string[];
  /** Releases what the backend holds open (ComfyUI: its websocket); called once when the batch ends. */
  close?(): void | Promise<void>;
}

/** Variables a job offers to placeholders (ComfyUI workflows, extra parameters). */
export function jobVars(req: GenerateRequest, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const j = req.job;
  return {
    prompt: j.prompt,
    negative_prompt: j.negative_prompt,
    seed: req.seed,
    width: j.width,
    height: j.height,
    candidate: req.candidate,
    job_id: j.id,
    class: j.classes[0],
    classes: j.classes.join(', '),
    kind: j.kind,
    denoising_strength: j.denoising_strength ?? (j.kind === 'txt2img' ? 1 : 0.75),
    invert_mask: Boolean(j.invert_mask),
    boxes: JSON.stringify(
      (j.layout ?? []).map((b) => ({
        name: b.name,
        box: b.box,
        pixels: [Math.round(b.box[0] * j.width), Math.round(b.box[1] * j.height), Math.round(b.box[2] * j.width), Math.round(b.box[3] * j.height)],
      })),
    ),
    ...extra,
  };
}
