/**
 * The demo's stand-in for an OpenAI-compatible chat / vision server: an HTTP server on a random loopback port that
 * answers `POST .../chat/completions` with what a real LLM or VLM would answer, deterministically from the seed,
 * so that `genaug demo --preset NAME` runs a method that needs an LLM (ACP's scene graphs and judgements, ALIA's
 * domain summaries, captions) through the same clients a real run uses, with no model anywhere.
 *
 * What it answers is a list of answerers (one per kind of request, in the files beside this one): the first that
 * recognises a request answers it. A request none recognises gets HTTP 400 with a message saying so, as a real
 * server answers a request it cannot serve; the run then records it as that item's failure.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { GenaugError } from '../native/errors.js';

export interface ChatContentPart {
  type: string;
  text?: string;
  image_url?: { url: string };
}

export interface ChatMessage {
  role: string;
  content: string | ChatContentPart[];
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  response_format?: unknown;
  [key: string]: unknown;
}

/** The text of a message (a string, or the text parts of a multimodal message joined by newlines). */
export function messageText(m: ChatMessage | undefined): string {
  if (!m) return '';
  if (typeof m.content === 'string') return m.content;
  return m.content
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

/** The image data URLs of a message, in order. */
export function messageImages(m: ChatMessage | undefined): string[] {
  if (!m || typeof m.content === 'string') return [];
  return m.content.filter((p) => p.type === 'image_url' && typeof p.image_url?.url === 'string').map((p) => p.image_url!.url);
}

/** Answers a request it recognises (the assistant message's text), or returns undefined. */
export type Answerer = (req: ChatRequest, seed: number) => string | undefined | Promise<string | undefined>;

export interface Standin {
  /** Base URL (http://127.0.0.1:PORT/v1), as a run config's llm.url / vlm.url takes it. */
  url: string;
  /** Requests answered and refused so far. */
  counts: { answered: number; refused: number };
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024 * 1024;

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new Error('request body over 64 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Starts the stand-in on 127.0.0.1 (a random port) with these answerers. */
export async function startStandin(o: { seed: number; answerers: readonly Answerer[] }): Promise<Standin> {
  const counts = { answered: 0, refused: 0 };
  let n = 0;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] as string;
      if (req.method === 'GET') {
        // Reachability checks and model listings, as an OpenAI-compatible server answers them.
        return send(res, 200, path.endsWith('/models') ? { object: 'list', data: [{ id: 'genaug-standin', object: 'model' }] } : { ok: true, server: 'genaug demo stand-in' });
      }
      if (req.method !== 'POST' || !path.endsWith('/chat/completions')) return send(res, 404, { error: { message: `the stand-in serves POST /v1/chat/completions, not ${req.method} ${path}` } });
      let parsed: ChatRequest;
      try {
        parsed = JSON.parse(await body(req)) as ChatRequest;
        if (!parsed || !Array.isArray(parsed.messages)) throw new Error('no "messages" list');
      } catch (e) {
        counts.refused++;
        return send(res, 400, { error: { message: `not a chat request: ${(e as Error).message}`, type: 'invalid_request_error' } });
      }
      for (const a of o.answerers) {
        const content = await a(parsed, o.seed);
        if (content === undefined) continue;
        counts.answered++;
        return send(res, 200, {
          id: `chatcmpl-standin-${++n}`,
          object: 'chat.completion',
          created: 0,
          model: parsed.model,
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
        });
      }
      counts.refused++;
      return send(res, 400, { error: { message: 'the demo stand-in does not know how to answer this request', type: 'invalid_request_error' } });
    })().catch((e) => {
      if (!res.headersSent) send(res, 500, { error: { message: `stand-in error: ${(e as Error).message}` } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new GenaugError('E_IO', `the demo stand-in server could not listen on 127.0.0.1: ${e.message}`)));
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
