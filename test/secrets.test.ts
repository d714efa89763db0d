/**
 * Secrets reach no file and no log (issue 21, secrets). A distinctive key is
 * planted in every place genaug reads one from: the API-key environment
 * variables (GENAUG_OPENAI_API_KEY, OPENAI_API_KEY, GENAUG_LLM_API_KEY,
 * GENAUG_VLM_API_KEY, a variable named by --backend key-env= and by a
 * config's api_key_env), key files (--api-key-file, --backend key-file=),
 * the user info of every server URL (--backend, --llm-url, --vlm-url, config
 * llm/vlm/generate url; user:password and a token alone as the user name).
 * Then generate, plan (LLM), score (judge) and `genaug run` talk to local
 * servers that misbehave on purpose: 401 and 500 whose bodies echo the
 * Authorization header and the decoded credentials (also past the point where
 * long messages are cut), and URLs that nothing answers. Every file under the
 * output folders (run.json, manifests, failure lists, journals, progress
 * files, sidecars, the HTML report) and every captured stdout/stderr is then
 * searched for each key, for any 12-character piece of it, and for its
 * base64 at every alignment (so `Basic base64(user:key)` is found too).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { generateProcedural, SHAPE_CLASSES, writeRealDataset } from '../ts/generate/procedural-world.js';
import { redactor } from '../ts/util/secrets.js';
import { splitCredentials } from '../ts/util/url.js';
import { tempFolder } from './helpers.js';
import { drawImage } from './generate-servers.js';

const tmp = tempFolder('genaug-secrets-');
const bin = join(__dirname, '..', 'bin', 'genaug.js');
const examples = join(__dirname, '..', 'examples');
/** The planted keys, one per place (so a hit says where it came from): a random part first, then the place. */
const keys = new Map<string, string>();
const key = (place: string): string => {
  const k = `sk-${randomBytes(12).toString('hex')}-${place}-genaug-PLANTED`;
  keys.set(place, k);
  return k;
};

/** Shorter pieces are not looked for (a 12-character piece of a key or of its base64 is as good as unique). */
const PIECE = 12;

/**
 * Every piece of text that would betray a key, with the place it came from: each 12-character window of its secret
 * part ("sk-" and 24 random characters; a key cut short still shows), and each 12-character window of the base64
 * (and base64url) characters that depend on that part alone, at each of the three alignments it can have inside a
 * longer encoded text (so `Basic base64(user:key)`, whole or cut, shows too).
 */
function needles(): Map<string, string> {
  const out = new Map<string, string>();
  const add = (text: string, place: string) => {
    for (let i = 0; i + PIECE <= text.length; i++) if (!out.has(text.slice(i, i + PIECE))) out.set(text.slice(i, i + PIECE), place);
  };
  for (const [place, k] of keys) {
    // The secret part: "sk-" and the random characters (the place and the tail are shared words).
    const secret = 3 + 24;
    add(k.slice(0, secret), place);
    for (let o = 0; o < 3; o++) {
      const bytes = Buffer.concat([Buffer.alloc(o, 0x41), Buffer.from(k)]);
      for (const enc of [bytes.toString('base64'), bytes.toString('base64url')]) add(enc.slice(Math.ceil((8 * o) / 6), Math.floor((8 * (o + secret)) / 6)), place);
    }
  }
  return out;
}

interface Hit {
  where: string;
  place: string;
  piece: string;
}

function search(where: string, data: Buffer | string, pieces: Map<string, string>, hits: Hit[]): void {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const seen = new Set<string>();
  for (let i = 0; i + PIECE <= text.length; i++) {
    const w = text.slice(i, i + PIECE);
    const place = pieces.get(w);
    if (place !== undefined && !seen.has(place)) {
      seen.add(place);
      hits.push({ where, place, piece: text.slice(Math.max(0, i - 20), i + PIECE + 20) });
    }
  }
}

async function searchTree(dir: string, pieces: Map<string, string>, hits: Hit[]): Promise<number> {
  let files = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    search(p, await readFile(p), pieces, hits);
    files++;
  }
  return files;
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

const outputs: Array<{ what: string; exit: Exit }> = [];

function cli(what: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Exit> {
  return new Promise((resolve, reject) => {
    // `env` adds to the planted variables; a variable given as undefined is removed.
    const all: NodeJS.ProcessEnv = { ...process.env, ...plantedEnv, ...env };
    for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
    const child = spawn(process.execPath, [bin, ...args], { env: all, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const exit = { code, stdout, stderr };
      outputs.push({ what, exit });
      resolve(exit);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// A server speaking every protocol genaug uses (A1111, ComfyUI, OpenAI images, OpenAI chat) that answers errors
// echoing what it was sent: the Authorization header, the credentials decoded from it, every header.

interface Behaviour {
  /** a1111/openai images: the seeds answered with an image (the others get the echoing error). */
  okSeed?: (seed: number) => boolean;
  /** The error status (401 or 500). */
  status?: number;
  /** Put the key across the 2000th character of the message a client quotes, where long messages are cut. */
  straddle?: boolean;
  /** chat: answer prompts after this many echoing errors. */
  chatFailures?: number;
}

/**
 * The echo, with the key starting 20 characters before `cut` in the text the client quotes (`prefix` characters
 * come before the echo there): the image backends cut a server's message at 2000 characters, the chat client at 500.
 */
function echo(req: IncomingMessage, b: Behaviour, prefix = 0, cut = 2000): string {
  const auth = String(req.headers.authorization ?? '');
  const basic = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
  const cred = auth.startsWith('Bearer ') ? auth.slice(7) : basic;
  // The key within cred: after "user:" (a password), or all of it (a token alone).
  const at = auth.startsWith('Basic ') && !basic.endsWith(':') ? basic.indexOf(':') + 1 : 0;
  const pad = b.straddle ? Math.max(0, cut - 20 - prefix - at) : 0;
  return `${'x'.repeat(pad)}${cred} denied: ${auth} (decoded: ${basic}) headers ${JSON.stringify(req.headers)} url ${req.url}`;
}

async function echoServer(b: Behaviour): Promise<{ url: string; server: Server; chat: number; auth: Set<string> }> {
  const state = { url: '', server: undefined as unknown as Server, chat: 0, auth: new Set<string>() };
  state.server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => void handle(req, res, body));
  });
  const send = (res: ServerResponse, status: number, text: string, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type });
    res.end(text);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse, body: string) => {
    state.auth.add(String(req.headers.authorization ?? ''));
    let json: any = {};
    try {
      json = JSON.parse(body);
    } catch {
      // multipart or empty
    }
    const status = b.status ?? 500;
    const url = req.url ?? '';
    if (url.endsWith('/chat/completions')) {
      if (state.chat++ < (b.chatFailures ?? Infinity)) return send(res, status, JSON.stringify({ error: { message: echo(req, b, '{"error":{"message":"'.length, 500), type: 'server_error' } }));
      const schema = json.response_format?.json_schema?.name;
      const user = JSON.stringify(json.messages ?? []);
      const cls = SHAPE_CLASSES.find((c) => user.includes(c.name))?.name ?? 'object';
      if (schema === 'prompts') {
        return send(res, 200, JSON.stringify({ model: 'm', choices: [{ message: { role: 'assistant', content: JSON.stringify({ prompts: [`A photo of a ${cls} on a table, in a white background`, `A photo of a small ${cls}, in a white background`] }) }, finish_reason: 'stop' }] }));
      }
      return send(res, status, JSON.stringify({ error: { message: echo(req, b) } }));
    }
    if (url === '/sdapi/v1/txt2img' && b.okSeed?.(json.seed)) {
      // The run's annotate stage needs the class drawn; the generate tests only need an image.
      const cls = SHAPE_CLASSES.find((c) => String(json.prompt).includes(c.name))?.name;
      const png = cls
        ? (await generateProcedural(cls, json.seed, { width: json.width, height: json.height, rates: { offClass: 0, empty: 0, nearDuplicate: 0, border: 0 } })).png
        : await drawImage(`a1111|${json.seed}|${json.prompt}`, json.width, json.height);
      return send(res, 200, JSON.stringify({ images: [Buffer.from(png).toString('base64')], parameters: {}, info: JSON.stringify({ seed: json.seed, all_seeds: [json.seed] }) }));
    }
    if (url === '/v1/images/generations' && b.okSeed?.(Number(json.seed ?? 0))) {
      const png = await drawImage(`openai|${json.prompt}`, 16, 16);
      return send(res, 200, JSON.stringify({ created: 1, data: [{ b64_json: png.toString('base64') }] }));
    }
    // A1111/FastAPI, ComfyUI and OpenAI error shapes, each echoing.
    if (url.startsWith('/sdapi')) return send(res, status, JSON.stringify({ error: 'HTTPException', detail: echo(req, b, 'HTTPException: '.length), errors: echo(req, b) }));
    if (url === '/prompt') return send(res, status, JSON.stringify({ error: { type: 'invalid_prompt', message: echo(req, b), details: echo(req, b) }, node_errors: {} }));
    return send(res, status, echo(req, b), 'text/plain');
  };
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
  return state;
}

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});
const withCreds = (url: string, user: string, pass?: string) => url.replace('http://', pass === undefined ? `http://${user}@` : `http://${user}:${pass}@`);
/** A port nothing listens on (closed right after it was opened). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let plantedEnv: NodeJS.ProcessEnv = {};
let root = '';
let inputs = '';
let outs = '';
let plan = '';

beforeAll(async () => {
  root = tmp.dir();
  inputs = join(root, 'inputs');
  outs = join(root, 'outputs');
  await mkdir(inputs, { recursive: true });
  await mkdir(outs, { recursive: true });
  plantedEnv = {
    GENAUG_OPENAI_API_KEY: key('env-GENAUG_OPENAI_API_KEY'),
    OPENAI_API_KEY: key('env-OPENAI_API_KEY'),
    GENAUG_LLM_API_KEY: key('env-GENAUG_LLM_API_KEY'),
    GENAUG_VLM_API_KEY: key('env-GENAUG_VLM_API_KEY'),
    PLANTED_KEY_ENV: key('env-key-env'),
    PLANTED_CONFIG_KEY: key('env-config-api_key_env'),
  };
  plan = join(inputs, 'plan.jsonl');
  const jobs = Array.from({ length: 24 }, (_, i) => ({ id: `s${i}`, kind: 'txt2img', classes: ['cup'], prompt: `a cup ${i}`, negative_prompt: '', candidates: 1, width: 16, height: 16, seed: 10 + i }));
  await writeFile(plan, jobs.map((j) => JSON.stringify(j)).join('\n') + '\n');
});

describe('the redactor', () => {
  it('removes a secret as typed, URL-encoded and inside base64 at any alignment; leaves other text alone', () => {
    const k = 'pa ss/wörd+12345';
    const r = redactor([k, 'ab', undefined]);
    expect(r(`x ${k} y`)).toBe('x *** y');
    expect(r(`u=${encodeURIComponent(k)}`)).toBe('u=***');
    for (const pre of ['', 'u:', 'us:', 'use:']) {
      const b64 = Buffer.from(`${pre}${k}`).toString('base64');
      const out = r(`Basic ${b64}`);
      expect(out, pre).toContain('***');
      // What is left of the encoding is at most the few characters that mix the key with its neighbours.
      expect(out.replace('Basic ', '').replace('***', '').length, pre).toBeLessThanOrEqual(Math.ceil((pre.length * 4) / 3) + 4);
    }
    expect(r('ab and abc stay')).toBe('ab and abc stay'); // shorter than 4: not a secret
    expect(redactor([])('as is')).toBe('as is');
  });

  it('a URL with a token as its user name makes that token a secret', () => {
    const c = splitCredentials('http://tok-123456789@h:1/v1');
    expect(c.secrets).toContain('tok-123456789');
    expect(c.display).toBe('http://h:1/v1');
    expect(splitCredentials('http://bob:pw-123456@h/').secrets).not.toContain('bob');
  });
});

describe('a planted key reaches no file and no log', () => {
  it('generate: env keys, key files, key-env, URL user info, against servers echoing 401/500 and an unreachable URL', async () => {
    const half = await echoServer({ okSeed: (s) => s % 2 === 0, status: 500, straddle: true });
    // The key falls across the 2000th character, where long server messages are cut.
    const denied = await echoServer({ status: 401, straddle: true });
    servers.push(half.server, denied.server);
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const keyFile = join(inputs, 'key.txt');
    await writeFile(keyFile, `${key('file-api-key-file')}\n`);
    const keyFile2 = join(inputs, 'key2.txt');
    await writeFile(keyFile2, `${key('file-backend-key-file')}\n`);
    const common = ['--plan', plan, '--retries', '1', '--backoff', '0.01', '--timeout', '5'];
    // 1. --api-key-file, a 401 echoing the header, the key across the 2000th character where messages are cut.
    const g1 = await cli('generate openai key file', ['generate', ...common, '--out', join(outs, 'gen-openai-file'), '--api-key-file', keyFile, '--backend', `openai=${denied.url},model=dall-e-2`]);
    expect(g1.code).toBe(1);
    expect(g1.stderr).toMatch(/no image was generated/);
    // 2. Five servers mixed: OpenAI with the key from the environment, from key-env= and from key-file=; A1111 with
    //    user:password in the URL; ComfyUI with a token as the user name. Half echo 500 (retried: the retry notes
    //    quote them on stderr), the others 401.
    const g2 = await cli('generate mixed', [
      'generate', ...common, '--out', join(outs, 'gen-mixed'),
      '--backend', `openai:env=${half.url}/v1,model=dall-e-2,2`,
      '--backend', `openai:keyenv=${half.url},key-env=PLANTED_KEY_ENV,2`,
      '--backend', `openai:keyfile=${denied.url},key-file=${keyFile2}`,
      '--backend', `a1111=${withCreds(half.url, 'planted-user', key('url-a1111-password'))},2`,
      '--backend', `comfyui=${withCreds(denied.url, key('url-comfyui-token-as-user'))},workflow=${join(examples, 'comfyui-txt2img.json')}`,
    ]);
    expect(g2.code, g2.stderr).toBe(0);
    const mixed = (await readFile(join(outs, 'gen-mixed', 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    for (const b of ['env', 'keyenv', 'keyfile', 'a1111', 'comfyui']) expect(mixed.some((l) => l.backend === b), b).toBe(true);
    expect(mixed.some((l) => l.status === 'ok') && mixed.some((l) => l.status === 'failed')).toBe(true);
    expect(g2.stderr).toMatch(/retry 1\/1 .*HTTP 500/);
    for (const k of ['env-GENAUG_OPENAI_API_KEY', 'env-key-env']) expect([...half.auth]).toContain(`Bearer ${keys.get(k)}`);
    expect([...half.auth]).toContain(`Basic ${Buffer.from(`planted-user:${keys.get('url-a1111-password')}`).toString('base64')}`);
    expect([...denied.auth]).toContain(`Bearer ${keys.get('file-backend-key-file')}`);
    expect([...denied.auth]).toContain(`Basic ${Buffer.from(`${keys.get('url-comfyui-token-as-user')}:`).toString('base64')}`);
    // 5. Nothing listens: user info and key-env on a dead URL; and a URL that does not parse.
    const g5 = await cli('generate unreachable', ['generate', ...common, '--out', join(outs, 'gen-dead'), '--backend', `openai=${withCreds(dead, 'u', key('url-dead-password'))},key-env=PLANTED_KEY_ENV`]);
    expect(g5.code).toBe(1);
    expect(g5.stderr).toMatch(/E_BACKEND/);
    const g6 = await cli('generate bad url', ['generate', ...common, '--out', join(outs, 'gen-bad-url'), '--backend', `a1111=http://u:${key('url-unparsable-password')}@[::1`]);
    expect(g6.code).not.toBe(0);
    expect(g6.stderr).toMatch(/E_ARGUMENT/);
  });

  it('plan (LLM) and score (judge): URL user info and env keys, servers echoing 500/401, an unreachable URL', async () => {
    const failing = await echoServer({ status: 500, straddle: true });
    const denied = await echoServer({ status: 401 });
    servers.push(failing.server, denied.server);
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const coco = join(inputs, 'real');
    await writeRealDataset({ out: coco, seed: 3, images: 4 });
    const cocoJson = join(coco, 'annotations.json');
    for (const d of ['plan-llm', 'plan-llm-basic', 'plan-vlm', 'plan-dead', 'score']) await mkdir(join(outs, d), { recursive: true });
    const p1 = await cli('plan llm', ['plan', '--coco', cocoJson, '--out', join(outs, 'plan-llm', 'plan.jsonl'), '--strategy', 'llm', '--per-class', '1', '--llm-url', `${withCreds(failing.url, 'planted-user', key('url-llm-password'))}/v1`, '--llm-model', 'm', '--llm-retries', '0']);
    // The key header: GENAUG_LLM_API_KEY wins over the URL's Basic credentials; the failures quote the server.
    expect([...failing.auth]).toContain(`Bearer ${keys.get('env-GENAUG_LLM_API_KEY')}`);
    const quoted = async (file: string, re: RegExp) => expect(await readFile(join(outs, file), 'utf8'), file).toMatch(re);
    await quoted('plan-llm/plan.jsonl.failures.jsonl', /HTTP 500: .*\*\*\* denied: Bearer \*/);
    const p2 = await cli('plan llm without env key', ['plan', '--coco', cocoJson, '--out', join(outs, 'plan-llm-basic', 'plan.jsonl'), '--strategy', 'llm', '--per-class', '1', '--llm-url', `${withCreds(denied.url, key('url-llm-token-as-user'))}/v1`, '--llm-model', 'm', '--llm-retries', '0'], { GENAUG_LLM_API_KEY: '', OPENAI_API_KEY: '' });
    await quoted('plan-llm-basic/plan.jsonl.failures.jsonl', /HTTP 401: .*denied: Basic \*\*\*/);
    const p3 = await cli('plan caption vlm', ['plan', '--coco', cocoJson, '--out', join(outs, 'plan-vlm', 'plan.jsonl'), '--strategy', 'caption', '--images', join(coco, 'images'), '--per-class', '1', '--vlm-url', `${withCreds(failing.url, 'planted-user', key('url-vlm-password'))}/v1`, '--vlm-model', 'm', '--llm-retries', '0']);
    expect(p3.code).toBe(1);
    expect([...failing.auth]).toContain(`Bearer ${keys.get('env-GENAUG_VLM_API_KEY')}`);
    await quoted('plan-vlm/plan.jsonl.failures.jsonl', /HTTP 500/);
    const p4 = await cli('plan unreachable', ['plan', '--coco', cocoJson, '--out', join(outs, 'plan-dead', 'plan.jsonl'), '--strategy', 'llm', '--per-class', '1', '--llm-url', `${withCreds(dead, 'u', key('url-llm-dead-password'))}/v1`, '--llm-model', 'm', '--llm-retries', '0']);
    await quoted('plan-dead/plan.jsonl.failures.jsonl', /could not connect \(ECONNREFUSED\)/);

    // score clis-i in judge mode on images generated above.
    const gen = join(outs, 'gen-mixed');
    const s1 = await cli('score judge', ['score', 'clis-i', '--plan', plan, '--manifest', join(gen, 'manifest.jsonl'), '--images', join(gen, 'images'), '--mode', 'judge', '--vlm-url', `${withCreds(failing.url, 'planted-user', key('url-judge-vlm-password'))}/v1`, '--vlm-model', 'v', '--llm-url', `${withCreds(denied.url, key('url-judge-llm-token'))}/v1`, '--llm-model', 'l', '--retries', '0', '--table', join(outs, 'score', 'scores.jsonl')], { GENAUG_LLM_API_KEY: undefined });
    expect(s1.code).toBe(1);
    // Without GENAUG_LLM_API_KEY the chat client falls back to OPENAI_API_KEY.
    expect([...failing.auth]).toContain(`Bearer ${keys.get('env-OPENAI_API_KEY')}`);
    await quoted('score/scores.jsonl', /HTTP 500: .*denied/);
  });

  it('genaug run: config URLs with user info, api_key_env, an LLM and an image server echoing them', async () => {
    const srv = await echoServer({ okSeed: (s) => s % 2 === 0, status: 500, chatFailures: 1 });
    servers.push(srv.server);
    const real = join(inputs, 'run-real');
    await writeRealDataset({ out: real, seed: 12, images: 6 });
    const cfg = join(inputs, 'run.yaml');
    await writeFile(
      cfg,
      stringify({
        name: 'secrets',
        seed: 5,
        run_dir: join(outs, 'run'),
        real: { coco: join(real, 'annotations.json'), images: join(real, 'images') },
        llm: { url: `${withCreds(srv.url, 'planted-user', key('config-llm-url-password'))}/v1`, model: 'm', api_key_env: 'PLANTED_CONFIG_KEY' },
        vlm: { url: `${withCreds(srv.url, key('config-vlm-url-token'))}/v1`, model: 'v', api_key_env: 'PLANTED_CONFIG_KEY' },
        // Two candidates per job (seeds s, s + 1): the odd one always fails, so every class keeps an image.
        plan: { strategy: 'llm', per_class: 1, candidates: 2, width: 64, height: 64 },
        generate: { backend: 'a1111', url: withCreds(srv.url, 'planted-user', key('config-generate-url-password')), concurrency: 2, retries: 1 },
        annotate: { workers: 0 },
        embed: { workers: 0 },
        paste: { max_samples: 2, workers: 0 },
        export: { formats: ['coco'] },
        report: { thumbnails: 4, thumb_size: 32 },
      }),
    );
    const r = await cli('run', ['run', cfg]);
    expect(r.code, r.stderr).toBe(0);
    expect([...srv.auth]).toContain(`Bearer ${keys.get('env-config-api_key_env')}`);
    expect([...srv.auth]).toContain(`Basic ${Buffer.from(`planted-user:${keys.get('config-generate-url-password')}`).toString('base64')}`);
    const report = await readFile(join(outs, 'run', 'report', 'report.html'), 'utf8');
    expect(report).toContain('***@');
    // The same config with the image server gone: the server check fails, naming the URL without its user info.
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const cfg2 = join(inputs, 'run-dead.yaml');
    await writeFile(cfg2, (await readFile(cfg, 'utf8')).replace(srv.url.replace('http://', ''), dead.replace('http://', '')).replace(`run_dir: ${join(outs, 'run')}`, `run_dir: ${join(outs, 'run-dead')}`));
    await writeFile(cfg2, (await readFile(cfg2, 'utf8')).replace(keys.get('config-generate-url-password')!, key('config-dead-url-password')));
    const r2 = await cli('run unreachable', ['run', cfg2]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/not reachable/);
  });

  it('finds no key in any output file or captured stream', async () => {
    const pieces = needles();
    const hits: Hit[] = [];
    const files = await searchTree(outs, pieces, hits);
    for (const { what, exit } of outputs) {
      search(`${what}: stdout`, exit.stdout, pieces, hits);
      search(`${what}: stderr`, exit.stderr, pieces, hits);
    }
    expect(files).toBeGreaterThan(80);
    expect(outputs.length).toBeGreaterThanOrEqual(11);
    expect(keys.size).toBeGreaterThanOrEqual(20);
    // The search finds what it looks for: the key files and configs hold keys on purpose, and so do texts that
    // quote a key cut short or inside base64.
    const control: Hit[] = [];
    await searchTree(inputs, pieces, control);
    expect(new Set(control.map((h) => h.place))).toEqual(new Set(['file-api-key-file', 'file-backend-key-file', 'config-llm-url-password', 'config-vlm-url-token', 'config-generate-url-password', 'config-dead-url-password']));
    const k = keys.get('url-a1111-password')!;
    for (const quoted of [k.slice(0, 14), Buffer.from(`planted-user:${k}`).toString('base64').slice(0, 40), `x${Buffer.from(`:${k}`).toString('base64url')}`]) {
      const h: Hit[] = [];
      search('control', `... ${quoted} ...`, pieces, h);
      expect(h.map((x) => x.place), quoted).toEqual(['url-a1111-password']);
    }
    expect(hits.map((h) => `${h.where}: ${h.place}: ${h.piece}`)).toEqual([]);
  });
});
