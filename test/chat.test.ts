import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import { ChatClient, extractJson } from '../ts/llm/chat.js';
import { expectError, readBody } from './helpers.js';

type Reply = { status?: number; body?: string; content?: string; finish?: string; hang?: boolean };
let queue: Reply[] = [];
const seen: Array<{ body: Record<string, unknown>; auth: string | undefined }> = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    seen.push({ body, auth: req.headers.authorization });
    const r = queue.shift() ?? { content: '{}' };
    if (r.hang) return; // never answers: the client's timeout must fire
    res.writeHead(r.status ?? 200, { 'content-type': 'application/json' });
    res.end(r.body ?? JSON.stringify({ model: 'm', choices: [{ message: { role: 'assistant', content: r.content }, finish_reason: r.finish ?? 'stop' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const Answer = z.object({ score: z.number().int().min(0).max(5), why: z.string() });
const client = (o: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}) =>
  new ChatClient({ baseUrl: base, model: 'judge', backoffMs: 1, retries: 3, ...o });

describe('OpenAI-compatible chat client', () => {
  it('sends the JSON schema, validates the answer and retries past malformed, cut-off and failing answers', async () => {
    seen.length = 0;
    queue = [
      { content: 'I think the score is four.' },
      { content: '{"score": 4, "why": "tr', finish: 'length' },
      { status: 500, body: 'overloaded' },
      { content: 'Sure!\n```json\n{"score": 4, "why": "matches"}\n```' },
    ];
    const r = await client().completeJson([{ role: 'user', content: 'grade' }], Answer, { name: 'grade' });
    expect(r.value).toEqual({ score: 4, why: 'matches' });
    expect(r.attempts).toBe(4);
    const format = seen[0]!.body.response_format as { type: string; json_schema: { name: string; schema: { properties: object } } };
    expect(format.type).toBe('json_schema');
    expect(format.json_schema.name).toBe('grade');
    expect(Object.keys(format.json_schema.schema.properties)).toEqual(['score', 'why']);
    expect(seen[0]!.body.model).toBe('judge');
  });

  it('takes the key from $GENAUG_LLM_API_KEY, then $OPENAI_API_KEY; an empty variable does not hide the next', async () => {
    const saved = { g: process.env.GENAUG_LLM_API_KEY, o: process.env.OPENAI_API_KEY };
    try {
      const authOf = async () => {
        seen.length = 0;
        queue = [{ content: '{"score": 1, "why": "x"}' }];
        await client().completeJson([{ role: 'user', content: 'grade' }], Answer, { name: 'grade' });
        return seen[0]!.auth;
      };
      process.env.GENAUG_LLM_API_KEY = 'first-key';
      process.env.OPENAI_API_KEY = 'second-key';
      expect(await authOf()).toBe('Bearer first-key');
      process.env.GENAUG_LLM_API_KEY = '';
      expect(await authOf()).toBe('Bearer second-key');
      process.env.OPENAI_API_KEY = '';
      expect(await authOf()).toBeUndefined();
    } finally {
      for (const [k, v] of [['GENAUG_LLM_API_KEY', saved.g], ['OPENAI_API_KEY', saved.o]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('gives up with E_BACKEND naming the last problem; a schema mismatch is named by path', async () => {
    queue = [{ content: '{"score": 9, "why": "x"}' }, { content: '{"score": 9, "why": "x"}' }];
    await expectError(client({ retries: 1 }).completeJson([{ role: 'user', content: 'g' }], Answer), 'E_BACKEND', 'score');
  });

  it('does not retry a 400, and never puts the key in an error', async () => {
    seen.length = 0;
    queue = [{ status: 400, body: 'bad key sk-SECRET-123 rejected' }];
    const e = await expectError(client({ apiKey: 'sk-SECRET-123' }).complete([{ role: 'user', content: 'x' }]), 'E_BACKEND', 'HTTP 400');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.auth).toBe('Bearer sk-SECRET-123');
    expect(e.message).not.toContain('sk-SECRET-123');
    expect(JSON.stringify(e.detail)).not.toContain('sk-SECRET-123');
  });

  it('sends the credentials of the URL as Basic auth and never puts the password in url, errors or details', async () => {
    const PASS = 'pa55-word-XYZ';
    const withCreds = base.replace('http://', `http://alice:${PASS}@`);
    seen.length = 0;
    queue = [{ content: '{"score": 3, "why": "fine"}' }, { status: 400, body: `user alice:${PASS} is not allowed` }];
    const c = client({ baseUrl: withCreds });
    expect(c.url).toBe(`${base}/chat/completions`);
    const ok = await c.completeJson([{ role: 'user', content: 'x' }], Answer);
    expect(ok.value.score).toBe(3);
    expect(seen[0]!.auth).toBe(`Basic ${Buffer.from(`alice:${PASS}`).toString('base64')}`);
    const e = await expectError(c.complete([{ role: 'user', content: 'x' }]), 'E_BACKEND', 'HTTP 400');
    expect(`${e.message} ${JSON.stringify(e.detail)}`).not.toContain(PASS);
    // An unreachable server with credentials in its URL.
    const down = await expectError(new ChatClient({ baseUrl: `http://alice:${PASS}@127.0.0.1:1/v1`, model: 'm', retries: 0, apiKey: 'k' }).complete([{ role: 'user', content: 'x' }]), 'E_BACKEND', 'could not connect');
    expect(`${down.message} ${JSON.stringify(down.detail)}`).not.toContain(PASS);
    expect(down.message).toContain('http://127.0.0.1:1/v1/chat/completions');
    const refused = (() => {
      try {
        new ChatClient({ baseUrl: `ftp://alice:${PASS}@localhost/v1`, model: 'm' });
        return null;
      } catch (err) {
        return err as Error;
      }
    })();
    expect(refused?.message).toMatch(/http\(s\) URL, got "ftp:\/\/\*\*\*@localhost\/v1"/);
  });

  it('times out a server that never answers, and reports an unreachable one', async () => {
    queue = [{ hang: true }, { hang: true }];
    await expectError(client({ timeoutMs: 100, retries: 1 }).complete([{ role: 'user', content: 'x' }]), 'E_BACKEND', 'no answer within 100 ms');
    await expectError(new ChatClient({ baseUrl: 'http://127.0.0.1:1/v1', model: 'm', retries: 0 }).complete([{ role: 'user', content: 'x' }]), 'E_BACKEND', 'could not connect');
  });

  it('rejects a bad endpoint up front', () => {
    expect(() => new ChatClient({ baseUrl: 'localhost:8000', model: 'm' })).toThrow(/http\(s\) URL/);
  });

  it('finds JSON inside prose and fences', () => {
    expect(extractJson(' {"a": 1} ')).toEqual({ a: 1 });
    expect(extractJson('Here: [1, 2] done')).toEqual([1, 2]);
    expect(() => extractJson('no json here')).toThrow(SyntaxError);
  });
});
