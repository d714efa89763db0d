/** `genaug generate`: a plan on real image servers (AUTOMATIC1111/Forge, ComfyUI, OpenAI-compatible), resumable. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

import { Command } from 'commander';

import { generate, type BackendSpec } from '../generate/runner.js';
import type { BackendType } from '../generate/types.js';
import { GenaugError } from '../native/errors.js';
import { maskCredentials } from '../util/url.js';
import { intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';
import { withStopSignals } from './signals.js';

const TYPES: BackendType[] = ['a1111', 'comfyui', 'openai'];

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new GenaugError('E_IO', `${what} ${path}: could not read it (${(e as Error).message})`, { path });
  }
}

/** A JSON object given inline or as @FILE (or a path to a .json file). */
function jsonObject(value: string, what: string): Record<string, unknown> {
  const fromFile = value.startsWith('@') || (!value.trim().startsWith('{') && value.endsWith('.json'));
  const text = fromFile ? readText(value.replace(/^@/, ''), what) : value;
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new GenaugError('E_ARGUMENT', `${what}: not JSON (${(e as Error).message})`);
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new GenaugError('E_ARGUMENT', `${what}: expected a JSON object`);
  return o as Record<string, unknown>;
}

function readKeyFile(path: string): string {
  const key = readText(path, 'API key file').split('\n').map((s) => s.trim()).find((s) => s.length > 0);
  if (!key) throw new GenaugError('E_ARGUMENT', `API key file ${path} is empty`);
  return key;
}

export interface BackendDefaults {
  workflow?: string;
  model?: string;
  params?: Record<string, unknown>;
  apiKey?: string;
  pollMs?: number;
}

/**
 * TYPE[:LABEL]=URL[,WEIGHT][,key=value...] with keys workflow, model, params,
 * concurrency, timeout (seconds), key-env, key-file.
 */
export function parseBackendSpec(spec: string, d: BackendDefaults = {}): BackendSpec {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new GenaugError('E_ARGUMENT', `--backend '${maskCredentials(spec)}': expected TYPE[:LABEL]=URL[,WEIGHT][,key=value...], e.g. a1111=http://127.0.0.1:7860,2`);
  const [type, label] = spec.slice(0, eq).split(':', 2) as [string, string | undefined];
  if (!TYPES.includes(type as BackendType)) throw new GenaugError('E_ARGUMENT', `--backend: unknown type '${maskCredentials(type)}' (expected ${TYPES.join(', ')})`);
  const [url, ...rest] = spec.slice(eq + 1).split(',');
  if (!url) throw new GenaugError('E_ARGUMENT', `--backend ${type}: missing URL`);
  const s: BackendSpec = { type: type as BackendType, url, ...(label ? { label } : {}) };
  let workflow = d.workflow;
  let params = d.params;
  let apiKey = d.apiKey;
  let model = d.model;
  for (const tok of rest) {
    const k = tok.indexOf('=');
    if (k < 0) {
      const w = Number(tok);
      if (!tok.trim() || !Number.isFinite(w) || w <= 0) throw new GenaugError('E_ARGUMENT', `--backend ${type}: weight must be a number > 0, got '${tok}'`);
      s.weight = w;
      continue;
    }
    const key = tok.slice(0, k);
    const val = tok.slice(k + 1);
    switch (key) {
      case 'weight':
        s.weight = numberArg('weight')(val);
        break;
      case 'workflow':
        workflow = val;
        break;
      case 'model':
        model = val;
        break;
      case 'params':
        params = jsonObject(val.startsWith('@') ? val : `@${val}`, `--backend ${type} params`);
        break;
      case 'concurrency':
        s.concurrency = intArg('concurrency', 1, 1024)(val);
        break;
      case 'timeout':
        s.timeoutMs = numberArg('timeout')(val) * 1000;
        break;
      case 'key-env': {
        const v = process.env[val];
        if (!v) throw new GenaugError('E_ARGUMENT', `--backend ${type}: the environment variable ${val} (key-env) is not set`);
        apiKey = v;
        break;
      }
      case 'key-file':
        apiKey = readKeyFile(val);
        break;
      default:
        throw new GenaugError('E_ARGUMENT', `--backend ${type}: unknown option '${key}' (expected weight, workflow, model, params, concurrency, timeout, key-env, key-file)`);
    }
  }
  if (model) s.model = model;
  if (params) s.params = params;
  if (d.pollMs !== undefined) s.pollMs = d.pollMs;
  if (type === 'comfyui') {
    if (!workflow) throw new GenaugError('E_ARGUMENT', `--backend comfyui needs a workflow template: --workflow FILE or ,workflow=FILE`);
    s.workflow = jsonObject(`@${workflow}`, `workflow`);
    s.workflowName = basename(workflow);
  }
  if (type === 'openai' && apiKey) s.apiKey = apiKey;
  return s;
}

export function generateCommand(global: GlobalOptions): Command {
  return new Command('generate')
    .description('generate the images of a plan on AUTOMATIC1111/Forge, ComfyUI or OpenAI-compatible servers, mixed by weight; resumable (journal), content-addressed outputs with sidecars')
    .requiredOption('--plan <file>', 'plan.jsonl (one job per line; see `genaug plan`)')
    .requiredOption('--out <dir>', 'output folder: images/<sha256[:16]>.<ext> + .json sidecars, journal.jsonl, manifest.jsonl, failed.jsonl')
    .option(
      '--backend <spec>',
      'TYPE[:LABEL]=URL[,WEIGHT][,key=value...]; TYPE a1111|comfyui|openai; repeat to mix servers by weight (default weight 1); keys: workflow=FILE, model=NAME, params=FILE.json, concurrency=N, timeout=SECONDS, key-env=VAR, key-file=FILE',
      (v: string, acc: string[] | undefined) => [...(acc ?? []), v],
    )
    .option('--workflow <file>', 'ComfyUI API-format workflow template with {{prompt}}, {{negative_prompt}}, {{seed}}, {{width}}, {{height}}, {{boxes}}, {{image}}, ... placeholders (for every comfyui backend without its own)')
    .option('--model <name>', 'model to ask for (A1111: override_settings.sd_model_checkpoint; OpenAI: model; ComfyUI: {{model}}) (default: the server\'s)')
    .option('--params <json>', 'extra request fields for every backend, inline JSON or @FILE (A1111: steps, cfg_scale, sampler_name, ...; ComfyUI: extra placeholders; OpenAI: quality, ...); string values may use placeholders like "{{seed}}"')
    .option('--concurrency <n>', 'requests in flight per backend', intArg('--concurrency', 1, 1024), 1)
    .option('--timeout <seconds>', 'per-request timeout', numberArg('--timeout'), 600)
    .option('--retries <n>', 'retries of a request after a 5xx, 429, timeout or connection error (other 4xx are not retried)', intArg('--retries', 0, 100), 3)
    .option('--backoff <seconds>', 'first retry delay, doubled each retry (capped at 60 s; a Retry-After header is honoured)', numberArg('--backoff'), 1)
    .option('--api-key-file <file>', 'file holding the OpenAI-compatible API key (default: $GENAUG_OPENAI_API_KEY, then $OPENAI_API_KEY); the key is sent only as a header and never written')
    .option('--poll <ms>', 'ComfyUI /history polling interval', intArg('--poll', 1, 60_000), 500)
    .option('--images <dir...>', "folders the plan's source_image and mask files may lie in besides the plan's own folder (the folder genaug plan --images read, when it was absolute or outside)")
    .option('--retry-failed', 'try again every item that failed in an earlier run (default: only failures marked retryable in the journal are tried again: 5xx, 429, timeouts, lost connections, unreadable input files; 4xx answers stand)')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nEvery (job, candidate) gets one line in OUT/journal.jsonl once its image is on disk; run the same command again to resume after a kill or Ctrl-C.\n' +
        'Candidate c uses seed job.seed + c; its backend is picked by weight from a hash of (job id, candidate, seed), so the same plan gives the same assignment.\n' +
        'OUT/manifest.jsonl has {"file", "category", ...} per image: genaug annotate --images OUT/images --manifest OUT/manifest.jsonl',
    )
    .action(async (o) => {
      if (!o.backend?.length) throw new GenaugError('E_ARGUMENT', 'give at least one --backend TYPE=URL (a1111, comfyui or openai)');
      if (!(o.timeout > 0)) throw new GenaugError('E_ARGUMENT', `--timeout must be > 0, got ${o.timeout}`);
      if (!(o.backoff >= 0)) throw new GenaugError('E_ARGUMENT', `--backoff must be ≥ 0, got ${o.backoff}`);
      const apiKey = o.apiKeyFile ? readKeyFile(o.apiKeyFile) : process.env.GENAUG_OPENAI_API_KEY || process.env.OPENAI_API_KEY || undefined;
      const defaults: BackendDefaults = {
        ...(o.workflow ? { workflow: o.workflow } : {}),
        ...(o.model ? { model: o.model } : {}),
        ...(o.params ? { params: jsonObject(o.params, '--params') } : {}),
        ...(apiKey ? { apiKey } : {}),
        pollMs: o.poll,
      };
      const backends = (o.backend as string[]).map((s) => parseBackendSpec(s, defaults));
      let bar: Progress | undefined;
      // SIGTERM/SIGINT: requests in flight are dropped (their items are not journaled and run again on resume); exit 143/130.
      await withStopSignals('genaug generate', async (signal) => {
        const r = await generate(o.plan, {
          out: o.out,
          backends,
          concurrency: o.concurrency,
          timeoutMs: o.timeout * 1000,
          retries: o.retries,
          backoffMs: o.backoff * 1000,
          retryFailed: Boolean(o.retryFailed),
          ...(o.images ? { inputRoots: o.images as string[] } : {}),
          signal,
          onNote: (n) => {
            if (!o.quiet) process.stderr.write(`${n}\n`);
          },
          onProgress: (p) => {
            bar ??= new Progress('generate', p.total, 'images', o.quiet, p.done, true);
            bar.update(p.done, p.steps ? `(steps ${p.steps.value}/${p.steps.max} in flight)` : '');
          },
        });
        const per = Object.entries(r.backends).map(([k, v]) => `${k}: ${v.ok} ok, ${v.failed} failed`).join('; ');
        global.print(`${r.items} items of ${r.jobs} jobs: ${r.images + r.duplicates === r.ok ? `${r.ok} images` : `${r.images + r.duplicates} images from ${r.ok} items`}, ${r.failed} failed, ${r.invalidLines} invalid plan lines (${r.generatedThisRun} this run, ${r.resumed} from the journal)${per ? ` [${per}]` : ''}`);
        global.print(`manifest: ${r.out}/manifest.jsonl${r.failed + r.invalidLines ? `; failures: ${r.out}/failed.jsonl` : ''}`);
        if (r.interrupted) throw new GenaugError('E_ABORTED', `interrupted with ${r.items - r.ok - r.failed} items left; run the same command again to resume`);
        const problems = [r.failed ? `${r.failed} failed item${r.failed === 1 ? '' : 's'}` : '', r.invalidLines ? `${r.invalidLines} invalid plan line${r.invalidLines === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
        if (r.ok === 0) {
          // Nothing to hand to the next stage: fail loudly rather than leave an empty manifest behind.
          if (!problems) throw new GenaugError('E_FORMAT', `no image was generated: the plan ${o.plan} has no jobs`);
          throw new GenaugError(r.failed ? 'E_BACKEND' : 'E_FORMAT', `no image was generated: ${problems}; the reasons are listed in ${r.out}/failed.jsonl`);
        }
        if (problems) process.stderr.write(`genaug generate: ${problems}: see ${r.out}/failed.jsonl\n`);
      }, { quiet: o.quiet });
    });
}
