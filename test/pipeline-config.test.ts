import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { writeRealDataset } from '../ts/generate/procedural-world.js';
import { packageRoot } from '../ts/native/load.js';
import { BUNDLED_PRESETS, loadConfig, mergeConfig, readPreset, validateConfig } from '../ts/pipeline/config.js';
import { runPipeline } from '../ts/pipeline/run.js';
import { expectError, tempFolder } from './helpers.js';

const tmp = tempFolder('genaug-pipeline-config-');
let root: string;
let server: Server;
let liveUrl: string;
let deadUrl: string;

const base = () => ({ name: 't', seed: 3, run_dir: 'run', real: { coco: 'data/annotations.json', images: 'data/images' } });

async function writeConfig(name: string, config: unknown, asJson = false): Promise<string> {
  const p = join(root, name);
  await writeFile(p, asJson ? JSON.stringify(config) : stringify(config));
  return p;
}

beforeAll(async () => {
  root = tmp.dir();
  await writeRealDataset({ out: join(root, 'data'), seed: 5, images: 4 });
  server = createServer((_req, res) => {
    res.statusCode = 404; // any HTTP answer means the server is there
    res.end('not here');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  liveUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nothing listens on: open a server, note its port, close it.
  const s2 = createServer();
  await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
  deadUrl = `http://127.0.0.1:${(s2.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s2.close(() => r()));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('run config validation', () => {
  it('loads YAML and JSON, fills defaults and resolves paths relative to the config file', async () => {
    for (const asJson of [false, true]) {
      const f = await writeConfig(asJson ? 'ok.json' : 'ok.yaml', base(), asJson);
      const c = await loadConfig(f);
      expect(c.paths.runDir).toBe(join(root, 'run'));
      expect(c.paths.realCoco).toBe(join(root, 'data', 'annotations.json'));
      expect(c.config.paste.max_samples).toBe(20);
      expect(c.config.paste.aspect_jitter).toEqual([0.8, 1.2]);
      expect(c.config.generate.backend).toBe('procedural');
    }
  });

  it('names an unknown key with its full path', async () => {
    await expectError(loadConfig(await writeConfig('typo1.yaml', { ...base(), plann: {} })), 'E_FORMAT', "unknown key 'plann'");
    const nested = { ...base(), filter: { dedup_treshold: 0.9 } };
    await expectError(loadConfig(await writeConfig('typo2.yaml', nested)), 'E_FORMAT', "unknown key 'filter.dedup_treshold'");
    const deep = { ...base(), generate: { failure_rates: { offclass: 0.1 } } };
    await expectError(loadConfig(await writeConfig('typo3.yaml', deep)), 'E_FORMAT', "'generate.failure_rates.offclass'");
  });

  it('names a key with the wrong type or range', async () => {
    await expectError(loadConfig(await writeConfig('type1.yaml', { ...base(), plan: { per_class: 'ten' } })), 'E_FORMAT', 'plan.per_class');
    await expectError(loadConfig(await writeConfig('type2.yaml', { ...base(), paste: { aspect_jitter: [0.8] } })), 'E_FORMAT', 'paste.aspect_jitter');
    await expectError(loadConfig(await writeConfig('type3.yaml', { ...base(), paste: { flip: 1.5 } })), 'E_FORMAT', 'paste.flip');
    await expectError(loadConfig(await writeConfig('type4.yaml', { ...base(), generate: { backend: 'dalle' } })), 'E_FORMAT', 'generate.backend');
    const { real: _r, ...noReal } = base();
    await expectError(loadConfig(await writeConfig('type5.yaml', noReal)), 'E_FORMAT', 'real');
  });

  it('reports a YAML syntax error with the file', async () => {
    const p = join(root, 'broken.yaml');
    await writeFile(p, 'name: [unclosed\nseed: 1\n');
    await expectError(loadConfig(p), 'E_FORMAT', p);
  });

  it('names the key and the resolved path of a missing file', async () => {
    const f = await writeConfig('missing.yaml', { ...base(), real: { coco: 'data/nope.json', images: 'data/images' } });
    await expectError(loadConfig(f), 'E_IO', 'real.coco', join(root, 'data', 'nope.json'));
    const g = await writeConfig('missing2.yaml', { ...base(), annotate: { method: 'segmenter', segmenter: 'models/u2net.onnx' } });
    await expectError(loadConfig(g), 'E_IO', 'annotate.segmenter', join(root, 'models', 'u2net.onnx'));
  });

  it('opens the models it names before any work: a file that is not a model fails, naming the key', async () => {
    await mkdir(join(root, 'models'), { recursive: true });
    await writeFile(join(root, 'models', 'junk.onnx'), 'not an onnx model');
    const f = await writeConfig('junk.yaml', { ...base(), run_dir: 'never-junk', annotate: { method: 'segmenter', segmenter: 'models/junk.onnx' } });
    const e = await expectError(loadConfig(f), 'E_MODEL', 'annotate.segmenter');
    expect(e.message).toContain('junk.onnx');
    expect(existsSync(join(root, 'never-junk'))).toBe(false);
  });

  it('names the key and the URL of an unreachable server, and accepts one that answers', async () => {
    const dead = await writeConfig('dead.yaml', { ...base(), generate: { backend: 'a1111', url: deadUrl } });
    await expectError(loadConfig(dead), 'E_BACKEND', 'generate.url', deadUrl);
    const deadLlm = await writeConfig('deadllm.yaml', { ...base(), llm: { url: deadUrl, model: 'm' } });
    await expectError(loadConfig(deadLlm), 'E_BACKEND', 'llm.url', deadUrl);
    const live = await writeConfig('live.yaml', { ...base(), generate: { backend: 'a1111', url: liveUrl } });
    expect((await loadConfig(live)).config.generate.url).toBe(liveUrl);
    // A server backend without a URL is a config error, not a network one.
    await expectError(loadConfig(await writeConfig('nourl.yaml', { ...base(), generate: { backend: 'openai' } })), 'E_FORMAT', 'generate.url');
  });

  it('fails before any work: no run folder is created', async () => {
    const f = await writeConfig('early.yaml', { ...base(), run_dir: 'never', generate: { backend: 'a1111', url: deadUrl } });
    await expectError(loadConfig(f).then((c) => runPipeline(c)), 'E_BACKEND', deadUrl);
    expect(existsSync(join(root, 'never'))).toBe(false);
  });
});

describe('presets', () => {
  it('every bundled preset file validates and is listed', async () => {
    const files = (await readdir(join(packageRoot, 'presets'))).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
    expect(files.sort()).toEqual([...BUNDLED_PRESETS].sort());
    for (const name of files) {
      const preset = await readPreset(join(packageRoot, 'presets', `${name}.yaml`));
      // A preset plus the run-specific keys is a complete, valid config.
      const merged = validateConfig(mergeConfig(preset, base()), name);
      expect(merged.paste.max_samples, name).toBeGreaterThan(0);
    }
  });

  it('a config takes its preset\'s settings and overrides them', async () => {
    const f = await writeConfig('preset.yaml', { ...base(), preset: 'divergen', embed: { model: 'features' }, plan: { per_class: 2 }, generate: { url: liveUrl } });
    const c = await loadConfig(f);
    expect(c.config.filter.inter_similarity_min).toBe(0.6); // from DiverGen
    expect(c.config.embed.real_crop_padding).toBe(40); // from DiverGen
    expect(c.config.plan.per_class).toBe(2); // the config wins
    expect(c.config.plan.strategy).toBe('divergen');
    expect(c.config.generate.backend).toBe('a1111');
    // X-Paste's rule needs CLIP's text side: without it the config is refused up front, naming the key.
    await expectError(loadConfig(await writeConfig('xp0.yaml', { ...base(), preset: 'xpaste', embed: { model: 'features' }, generate: { url: liveUrl } })), 'E_FORMAT', 'filter.rules', 'embed.model: clip');
    const x = await loadConfig(await writeConfig('xp.yaml', { ...base(), preset: 'xpaste', embed: { model: 'features' }, filter: { rules: [] }, generate: { url: liveUrl } }));
    expect([x.config.annotate.min_area_fraction, x.config.annotate.max_area_fraction]).toEqual([0.05, 0.95]);
  });

  it('checks only the stages the run reaches: ALIA up to generate needs no CLIP or filter scores', async () => {
    const f = await writeConfig('alia.yaml', { ...base(), preset: 'alia', plan: { domains: ['in the snow'] }, generate: { url: liveUrl } });
    await expectError(loadConfig(f), 'E_FORMAT', 'embed.clip');
    const c = await loadConfig(f, { until: 'generate' });
    expect(c.config.plan.strategy).toBe('alia');
    expect(c.config.generate.cfg_scale).toBe(7.5);
    // A missing model of a later stage is not looked for either; one of a reached stage is.
    const g = await writeConfig('late.yaml', { ...base(), embed: { model: 'clip', clip: 'models/none' } });
    expect((await loadConfig(g, { until: 'annotate' })).config.embed.model).toBe('clip');
    await expectError(loadConfig(g, { until: 'embed' }), 'E_IO', 'embed.clip');
  });

  it("ALIA's rule is for whole images with a positive text; DDFT's meaning resolution goes before the llm strategy", async () => {
    const clip = join(root, 'clip-folder');
    await mkdir(clip, { recursive: true });
    const alia = (over: Record<string, unknown>) => ({ ...base(), preset: 'alia', plan: { domains: ['in the snow'] }, generate: { url: liveUrl }, embed: { clip: 'clip-folder' }, ...over });
    const opts = { checkModels: false } as const;
    await expectError(loadConfig(await writeConfig('a1.yaml', alia({ output: 'instances' })), opts), 'E_FORMAT', 'filter.rules', 'output: classification');
    const bare = { ...base(), output: 'classification', plan: { strategy: 'alia', domains: ['at night'] }, embed: { model: 'clip', clip: 'clip-folder' }, filter: { rules: ['alia'] } };
    await expectError(loadConfig(await writeConfig('a2.yaml', bare), opts), 'E_FORMAT', 'score.alia_positive');
    await expectError(loadConfig(await writeConfig('a3.yaml', alia({ filter: { rules: ['alia'], reject_border: true } })), opts), 'E_FORMAT', 'filter.reject_border');
    await expectError(loadConfig(await writeConfig('a4.yaml', alia({ score: { alia_positive: 'a photo of a shape', classifier: 'none.onnx' } })), opts), 'E_IO', 'score.classifier');
    const ok = await loadConfig(await writeConfig('a5.yaml', alia({})), opts);
    expect([ok.config.output, ok.config.filter.rules, ok.config.dataset.include_real]).toEqual(['classification', ['alia'], true]);
    const d = await loadConfig(await writeConfig('d1.yaml', { ...base(), preset: 'ddft', generate: { url: liveUrl }, llm: { url: liveUrl, model: 'l' }, embed: { clip: 'clip-folder' } }), opts);
    expect([d.config.plan.strategy, d.config.plan.resolve_meanings, d.config.plan.modes]).toEqual(['llm', true, ['context', 'style']]);
    await expectError(loadConfig(await writeConfig('d2.yaml', { ...base(), plan: { strategy: 'template', resolve_meanings: true } }), opts), 'E_FORMAT', 'plan.resolve_meanings');
  });

  it('a strategy that needs a caption or LLM server it has no source for is refused up front, naming the key', async () => {
    const captions = join(root, 'captions.json');
    await writeFile(captions, JSON.stringify({ annotations: [{ image_id: 1, caption: 'a red square on grass' }] }));
    await expectError(loadConfig(await writeConfig('cap0.yaml', { ...base(), plan: { strategy: 'caption' } })), 'E_FORMAT', ': vlm:', 'plan.captions');
    // A captions file or a VLM is a caption source.
    expect((await loadConfig(await writeConfig('cap1.yaml', { ...base(), plan: { strategy: 'caption', captions: ['captions.json'] } }))).paths.captions).toEqual([captions]);
    expect((await loadConfig(await writeConfig('cap2.yaml', { ...base(), plan: { strategy: 'caption' }, vlm: { url: liveUrl, model: 'v' } }))).config.plan.strategy).toBe('caption');
    await expectError(loadConfig(await writeConfig('cap3.yaml', { ...base(), plan: { strategy: 'caption', captions: ['nosuch.json'] } })), 'E_IO', 'plan.captions[0]');
    // ALIA: without domains it needs an LLM, and captions for it to summarise.
    await expectError(loadConfig(await writeConfig('alia0.yaml', { ...base(), plan: { strategy: 'alia' }, vlm: { url: liveUrl, model: 'v' } })), 'E_FORMAT', ': llm:', 'plan.domains');
    await expectError(loadConfig(await writeConfig('alia1.yaml', { ...base(), plan: { strategy: 'alia' }, llm: { url: liveUrl, model: 'l' } })), 'E_FORMAT', ': vlm:');
    expect((await loadConfig(await writeConfig('alia2.yaml', { ...base(), plan: { strategy: 'alia', domains: ['at night'] } }))).config.plan.domains).toEqual(['at night']);
  });

  it('names an unknown preset, and a typo inside a preset file', async () => {
    await expectError(loadConfig(await writeConfig('nopreset.yaml', { ...base(), preset: 'nosuch' })), 'E_IO', 'preset', 'nosuch');
    await mkdir(join(root, 'mine'), { recursive: true });
    await writeFile(join(root, 'mine', 'p.yaml'), stringify({ paste: { max_sample: 3 } }));
    await expectError(loadConfig(await writeConfig('badpreset.yaml', { ...base(), preset: 'mine/p.yaml' })), 'E_FORMAT', "'paste.max_sample'", join(root, 'mine', 'p.yaml'));
  });
});
