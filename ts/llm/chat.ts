/**
 * A client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM,
 * llama.cpp server, Ollama, LM Studio, ...), used by planning (prompts, scene
 * graphs, captions, domain descriptions) and scoring (the CLIS-I judge).
 *
 * Structured answers: the request carries a JSON schema
 * (`response_format: {type: "json_schema"}`, made from a zod schema), and the
 * answer is validated here again, because many servers ignore the schema. An
 * answer that is not JSON, does not match, or was cut off
 * (`finish_reason: "length"`) is retried; so are HTTP 429/5xx, timeouts and
 * connection errors, with exponential backoff and jitter (util/retry.ts); a
 * Retry-After header (seconds or HTTP-date) is waited out first. 4xx other
 * than 429 fail at once.
 *
 * The API key comes from the options or the environment (GENAUG_LLM_API_KEY,
 * then OPENAI_API_KEY); it is sent only in the Authorization header and never
 * appears in errors, logs or results. A URL with credentials
 * (http://user:pass@host/v1) is sent as HTTP Basic auth (unless an API key is
 * set, whose Bearer header wins); `url` and every message hold the URL without
 * them.
 */
import { z } from 'zod';

import { GenaugError } from '../native/errors.js';
import { backoffDelay, parseRetryAfter } from '../util/retry.js';
import { redactor } from '../util/secrets.js';
import { maskCredentials, splitCredentials } from '../util/url.js';

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'low' | 'high' | 'auto' } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}

export interface ChatClientOptions {
  /** Base URL, e.g. http://localhost:8000/v1 (a trailing /chat/completions is accepted too). */
  baseUrl: string;
  model: string;
  /** Default: $GENAUG_LLM_API_KEY, then $OPENAI_API_KEY, else none. */
  apiKey?: string;
  /** Per-request timeout (default 120 s). */
  timeoutMs?: number;
  /** Attempts after the first one, for transient errors and invalid answers (default 3). */
  retries?: number;
  /** First backoff delay, doubled per attempt (default 500 ms), with jitter, capped at maxBackoffMs (default 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Longest Retry-After waited out (default 300 s); a server asking for more fails the request at once. */
  maxRetryAfterMs?: number;
  temperature?: number;
  maxTokens?: number;
  /** Send `response_format` with the JSON schema (default true; some servers reject it). */
  jsonSchemaFormat?: boolean;
  /** Extra fields merged into every request body (e.g. {seed: 1}). */
  extraBody?: Record<string, unknown>;
}

export interface ChatResult {
  text: string;
  finishReason: string | null;
  /** Attempts it took (1 = first try). */
  attempts: number;
  model: string | null;
}

export interface JsonResult<T> extends ChatResult {
  value: T;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new GenaugError('E_ABORTED', 'the request was cancelled'));
      },
      { once: true },
    );
  });

/** Thrown inside one attempt; `retry` says whether another attempt may help. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    /** The server's Retry-After, ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Pulls the first JSON object or array out of an answer (models like to wrap it in ```json fences or prose). */
export function extractJson(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    // fall through
  }
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(trimmed);
  if (fenced?.[1]) {
    try {
      return JSON.parse(fenced[1].trim());
    } catch {
      // fall through
    }
  }
  const start = trimmed.search(/[[{]/);
  if (start >= 0) {
    const open = trimmed[start];
    const close = open === '{' ? '}' : ']';
    const end = trimmed.lastIndexOf(close);
    if (end > start) {
      try {
        return JSON.parse(trimmed.slice(start, end + 1));
      } catch {
        // fall through
      }
    }
  }
  throw new SyntaxError('the answer holds no parseable JSON');
}

export class ChatClient {
  readonly url: string;
  readonly model: string;
  readonly #apiKey: string | undefined;
  readonly #basic: Record<string, string>;
  readonly #redactSecrets: (text: string) => string;
  readonly #o: Required<Pick<ChatClientOptions, 'timeoutMs' | 'retries' | 'backoffMs' | 'maxBackoffMs' | 'maxRetryAfterMs' | 'jsonSchemaFormat'>> & ChatClientOptions;

  constructor(options: ChatClientOptions) {
    if (typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new GenaugError('E_ARGUMENT', `the LLM endpoint must be an http(s) URL, got ${JSON.stringify(typeof options.baseUrl === 'string' ? maskCredentials(options.baseUrl) : options.baseUrl)}`);
    }
    if (typeof options.model !== 'string' || !options.model) throw new GenaugError('E_ARGUMENT', 'the LLM endpoint needs a model name');
    const c = splitCredentials(options.baseUrl);
    const base = c.url.replace(/\/+$/, '');
    this.url = base.endsWith('/chat/completions') ? base : `${base}/chat/completions`;
    this.model = options.model;
    // An empty variable (exported but unset, e.g. `GENAUG_LLM_API_KEY= genaug ...`) does not hide the next one.
    this.#apiKey = options.apiKey ?? (process.env.GENAUG_LLM_API_KEY || process.env.OPENAI_API_KEY || undefined);
    this.#basic = c.headers;
    this.#redactSecrets = redactor([...(this.#apiKey ? [this.#apiKey] : []), ...c.secrets]);
    const { baseUrl: _credentials, ...rest } = options;
    this.#o = { timeoutMs: 120_000, retries: 3, backoffMs: 500, maxBackoffMs: 30_000, maxRetryAfterMs: 300_000, jsonSchemaFormat: true, ...rest, baseUrl: this.url };
  }

  /** Strips the key and URL password (in every form, util/secrets.ts) from any text that might carry them (a server echoing headers, say). */
  #redact(text: string): string {
    return this.#redactSecrets(text);
  }

  async #attempt(body: Record<string, unknown>, signal?: AbortSignal): Promise<{ text: string; finishReason: string | null; model: string | null }> {
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : this.#basic) },
        body: JSON.stringify(body),
        signal: combined,
      });
    } catch (e) {
      if (signal?.aborted) throw new GenaugError('E_ABORTED', 'the request was cancelled');
      if (timeout.aborted) throw new AttemptError(`no answer within ${this.#o.timeoutMs} ms`, true);
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new AttemptError(this.#redact(maskCredentials(`could not connect (${cause?.code ?? cause?.message ?? (e as Error).message})`)), true);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (e) {
      throw new AttemptError(this.#redact(`the answer was cut off (${(e as Error).message})`), true);
    }
    if (!response.ok) {
      const retry = response.status === 429 || response.status >= 500;
      throw new AttemptError(`HTTP ${response.status}: ${this.#redact(text).slice(0, 500)}`, retry, parseRetryAfter(response.headers.get('retry-after')));
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AttemptError(`the server's answer is not JSON: ${this.#redact(text).slice(0, 200)}`, true);
    }
    const choice = (parsed as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: string | null }> }).choices?.[0];
    const content = choice?.message?.content;
    if (typeof content !== 'string') throw new AttemptError('the answer has no choices[0].message.content string', true);
    return { text: content, finishReason: choice?.finish_reason ?? null, model: (parsed as { model?: string }).model ?? null };
  }

  async #withRetries<T>(build: () => Record<string, unknown>, check: (r: { text: string; finishReason: string | null }) => T, signal?: AbortSignal) {
    const attempts = this.#o.retries + 1;
    let last = '';
    let retryAfterMs: number | undefined;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(Math.max(retryAfterMs ?? 0, backoffDelay(i, this.#o.backoffMs, this.#o.maxBackoffMs)), signal);
      try {
        const r = await this.#attempt(build(), signal);
        return { ...r, value: check(r), attempts: i + 1 };
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        last = e.message;
        retryAfterMs = e.retryAfterMs;
        if (!e.retry) break;
        if (retryAfterMs !== undefined && retryAfterMs > this.#o.maxRetryAfterMs) {
          last += ` (the server asks to wait ${Math.ceil(retryAfterMs / 1000)} s, more than the ${this.#o.maxRetryAfterMs / 1000} s allowed)`;
          break;
        }
      }
    }
    throw new GenaugError('E_BACKEND', `${this.url} (model ${this.model}): ${last}`, { url: this.url, model: this.model });
  }

  #body(messages: ChatMessage[], extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      model: this.model,
      messages,
      ...(this.#o.temperature !== undefined ? { temperature: this.#o.temperature } : {}),
      ...(this.#o.maxTokens !== undefined ? { max_tokens: this.#o.maxTokens } : {}),
      ...this.#o.extraBody,
      ...extra,
    };
  }

  /** A plain text answer. A cut-off answer (finish_reason "length") is retried, then returned as it is. */
  async complete(messages: ChatMessage[], options: { signal?: AbortSignal } = {}): Promise<ChatResult> {
    const r = await this.#withRetries(() => this.#body(messages), () => undefined, options.signal);
    return { text: r.text, finishReason: r.finishReason, attempts: r.attempts, model: r.model };
  }

  /**
   * A structured answer checked against `schema`. The answer may be wrapped in
   * prose or code fences. After all attempts fail, throws E_BACKEND saying why
   * (the caller decides whether that item becomes −1, a skip or a failure).
   */
  async completeJson<S extends z.ZodType>(
    messages: ChatMessage[],
    schema: S,
    options: { name?: string; signal?: AbortSignal } = {},
  ): Promise<JsonResult<z.infer<S>>> {
    const name = (options.name ?? 'answer').replace(/[^A-Za-z0-9_-]/g, '_');
    const format = this.#o.jsonSchemaFormat
      ? { response_format: { type: 'json_schema', json_schema: { name, strict: true, schema: z.toJSONSchema(schema) } } }
      : {};
    const r = await this.#withRetries(
      () => this.#body(messages, format),
      ({ text, finishReason }) => {
        if (finishReason === 'length') throw new AttemptError('the answer was cut off (finish_reason "length")', true);
        let json: unknown;
        try {
          json = extractJson(text);
        } catch {
          throw new AttemptError(`the answer is not JSON: ${JSON.stringify(text.slice(0, 200))}`, true);
        }
        const checked = schema.safeParse(json);
        if (!checked.success) {
          const issue = checked.error.issues[0];
          throw new AttemptError(`the answer does not match the schema at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, true);
        }
        return checked.data as z.infer<S>;
      },
      options.signal,
    );
    return { text: r.text, finishReason: r.finishReason, attempts: r.attempts, model: r.model, value: r.value };
  }
}

/** A data: URL for an image, as vision endpoints take it. */
export function imageDataUrl(bytes: Uint8Array, mime = 'image/png'): string {
  return `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;
}
