/** `genaug plan`: generation jobs (plan.jsonl) from a real dataset, by one of the seed methods' strategies. */
import { Command, InvalidArgumentError, Option } from 'commander';

import { readTextFile } from '../io/atomic.js';
import { GenaugError } from '../native/errors.js';
import { openClipEmbedder } from '../plan/ambiguity.js';
import { STRATEGIES } from '../plan/core.js';
import { plan, type EndpointOptions } from '../plan/plan.js';
import { DIVERSITY_MODES, type DiversityMode } from '../plan/prompts.js';
import type { FrequencyGroup } from '../plan/priors.js';
import { groupOptions, intArg, numberArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

const list = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function choiceList<T extends string>(name: string, allowed: readonly T[]) {
  return (value: string): T[] => {
    const items = list(value);
    const bad = items.filter((x) => !allowed.includes(x as T));
    if (bad.length || !items.length) throw new InvalidArgumentError(`${name} takes a comma-separated list of ${allowed.join(', ')}; got '${value}'.`);
    return items as T[];
  };
}

async function readLines(path: string, what: string): Promise<string[]> {
  try {
    return (await readTextFile(path, `${what} ${path}`))
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s && !s.startsWith('#'));
  } catch (e) {
    throw new GenaugError('E_IO', `could not read ${what} ${path}: ${(e as Error).message}`, { path });
  }
}

/** plan --help: the options by strategy, the shared ones first. */
const PLAN_GROUPS = [
  ['Input, output and every strategy:', ['--coco', '--out', '--strategy', '--classes', '--frequency', '--seed', '--candidates', '--width', '--height', '--negative-prompt', '--per-class', '--meanings', '--quiet']],
  ['llm strategy:', ['--modes']],
  ['scene strategy (ACP):', ['--priors', '--scenes', '--no-rebalance']],
  ['caption and alia strategies:', ['--images', '--captions', '--coco-captions', '--domains', '--strength', '--alia-template', '--domain-prefix']],
  ['ambiguity strategy:', ['--clip', '--provider', '--llm-candidates']],
  ['Extra categories (template, divergen, llm, ambiguity; DiverGen):', ['--extra-categories', '--extra-measure', '--extra-max-similarity', '--extra-candidates']],
  ['LLM and VLM endpoints (optional: without them the strategies fall back as said below):', ['--llm-url', '--llm-model', '--vlm-url', '--vlm-model', '--llm-timeout', '--llm-retries', '--temperature', '--cache', '--no-cache', '--concurrency']],
] as const;

export function planCommand(global: GlobalOptions): Command {
  return groupOptions(planCommandUngrouped(global), PLAN_GROUPS);
}

function planCommandUngrouped(global: GlobalOptions): Command {
  return new Command('plan')
    .description('plan generation jobs (plan.jsonl, one job per line with a stable id, prompt, optional layout or source image, and provenance) from a real COCO/LVIS dataset')
    .requiredOption('--coco <file>', 'COCO/LVIS instances JSON of the real data')
    .requiredOption('--out <file>', 'plan.jsonl; failures go to OUT.failures.jsonl')
    .addOption(
      new Option(
        '--strategy <name>',
        'template: X-Paste "a photo of a single {name}"; divergen: DiverGen "..., {definition}, in a white background"; llm: LLM-diversified prompts (--modes); ' +
          'scene: ACP scene graphs + layouts from real co-occurring object sets; caption: "a photo of {class}, {caption}"; alia: ALIA domain edits of real images; ' +
          'ambiguity: label-ambiguity resolution (meaning appended; writes OUT.meanings.json)',
      )
        .choices(STRATEGIES)
        .default('template'),
    )
    .option('--classes <names>', 'only these categories (comma-separated; dataset or display names) (default: all)', list)
    .option('--frequency <groups>', 'only these frequency groups, e.g. r,c (r ≤ 10 images < c ≤ 100 < f) (default: all)', choiceList<FrequencyGroup>('--frequency', ['r', 'c', 'f']))
    .option('--seed <n>', 'plan seed: job seeds and every draw derive from it', intArg('--seed', 0, 2 ** 31 - 1), 0)
    .option('--candidates <n>', 'images to generate per job (best-of-N)', intArg('--candidates', 1, 1000), 1)
    .option('--width <n>', 'image width', intArg('--width', 8, 8192), 512)
    .option('--height <n>', 'image height', intArg('--height', 8, 8192), 512)
    .option('--negative-prompt <text>', 'negative prompt of every job', '')
    .option('--per-class <n>', 'llm: prompts per class and mode (default 8); caption: real images per class (default all); alia: real images per class (default 8); ambiguity: images scored per class (default 8)', intArg('--per-class', 1, 1_000_000))
    .option('--modes <list>', 'llm: divergen (DiverGen constrained prompts), context (contextual diversification), style (stylised diversification)', choiceList<DiversityMode>('--modes', DIVERSITY_MODES), ['divergen'])
    .option('--priors <file>', 'scene: priors.json from genaug priors (default: computed from --coco with its defaults)')
    .option('--scenes <n>', 'scene: scenes to plan', intArg('--scenes', 1, 10_000_000), 100)
    .option('--no-rebalance', 'scene: draw object sets by their image counts instead of repeat factors')
    .option('--images <dir>', 'folder the COCO file_name paths are relative to (caption, alia, ambiguity)')
    .option('--captions <file>', 'caption, alia: caption store, JSON lines {image_id, caption, source} (default OUT.captions.jsonl); new captions are appended')
    .option('--coco-captions <file>', 'caption, alia: captions to use before asking the VLM (COCO captions JSON or JSON lines)')
    .option('--domains <file>', 'alia: settings one per line instead of asking the LLM')
    .option('--strength <s>', 'alia: img2img denoising strength (ALIA: 0.5 iWildCam, 0.6 CUB)', numberArg('--strength'), 0.5)
    .option('--alia-template <text>', 'alia: edit prompt with {class} and {setting}', 'a photo of a {class}, {setting}')
    .option('--domain-prefix <text>', 'alia: how the summarised settings are framed for the LLM', 'a photo of')
    .option('--meanings <file>', 'template, divergen, llm: OUT.meanings.json of an ambiguity plan; its meaning is appended / used as the definition')
    .option('--clip <dir>', 'ambiguity: CLIP model folder to score candidate meanings against real images (default: WordNet/LVIS fallback)')
    .addOption(new Option('--provider <p>', 'ambiguity: onnxruntime execution provider for --clip').choices(['cpu', 'cuda']).default('cpu'))
    .option('--llm-candidates <n>', 'ambiguity: meanings asked of the LLM per class', intArg('--llm-candidates', 1, 20), 4)
    .option('--extra-categories <n>', 'template, divergen, llm, ambiguity: add this many WordNet-neighbour categories (DiverGen category diversity)', intArg('--extra-categories', 0, 100000), 0)
    .addOption(new Option('--extra-measure <m>', 'similarity of the extra-category rule (NLTK path or Wu-Palmer)').choices(['path', 'wup']).default('path'))
    .option('--extra-max-similarity <s>', 'keep an extra category only if its similarity to every class is below this (DiverGen: 0.4)', numberArg('--extra-max-similarity'), 0.4)
    .option('--extra-candidates <file>', 'candidate names or synsets (dog.n.01) one per line instead of WordNet neighbours, e.g. ImageNet classes')
    .option('--llm-url <url>', 'OpenAI-compatible chat endpoint, e.g. http://localhost:8000/v1 (key: $GENAUG_LLM_API_KEY or $OPENAI_API_KEY)')
    .option('--llm-model <name>', 'model name for --llm-url')
    .option('--vlm-url <url>', 'OpenAI-compatible vision chat endpoint for captions (key: $GENAUG_VLM_API_KEY, then the LLM keys)')
    .option('--vlm-model <name>', 'model name for --vlm-url')
    .option('--llm-timeout <s>', 'seconds per request', numberArg('--llm-timeout'), 120)
    .option('--llm-retries <n>', 'attempts after the first for failed, invalid or cut-off answers', intArg('--llm-retries', 0, 20), 3)
    .option('--temperature <t>', 'sampling temperature sent to the endpoints (default: the server\'s)', numberArg('--temperature'))
    .option('--cache <file>', 'answer cache: reruns reuse earlier answers and plan the same bytes (default OUT.cache.jsonl)')
    .option('--no-cache', 'ask again every time')
    .option('--concurrency <n>', 'requests at once', intArg('--concurrency', 1, 256), 4)
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nWithout --llm-url, template, divergen, ambiguity (WordNet/LVIS meanings), llm (template fallbacks) and scene (real layouts, template captions) still run;' +
        '\nevery job\'s provenance says which part came from a template, WordNet, the LLM or a real image.',
    )
    .action(async (o) => {
      const endpoint = (url: string | undefined, model: string | undefined, flag: string): EndpointOptions | undefined => {
        if (!url && !model) return undefined;
        if (!url || !model) throw new GenaugError('E_ARGUMENT', `give both --${flag}-url and --${flag}-model`);
        return {
          url,
          model,
          timeoutMs: Math.round(o.llmTimeout * 1000),
          retries: o.llmRetries,
          ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
        };
      };
      if (!(o.strength >= 0 && o.strength <= 1)) throw new GenaugError('E_ARGUMENT', `--strength must be in [0, 1], got ${o.strength}`);
      if (!(o.llmTimeout > 0)) throw new GenaugError('E_ARGUMENT', `--llm-timeout must be > 0, got ${o.llmTimeout}`);
      const llm = endpoint(o.llmUrl, o.llmModel, 'llm');
      const vlm = endpoint(o.vlmUrl, o.vlmModel, 'vlm');
      const embedder = o.clip ? await openClipEmbedder(o.clip, o.provider) : undefined;
      let bar: Progress | undefined;
      const r = await plan({
        coco: o.coco,
        out: o.out,
        strategy: o.strategy,
        ...(o.priors ? { priors: o.priors } : {}),
        ...(o.classes ? { classes: o.classes } : {}),
        ...(o.frequency ? { frequencies: o.frequency } : {}),
        seed: o.seed,
        candidates: o.candidates,
        width: o.width,
        height: o.height,
        negativePrompt: o.negativePrompt,
        ...(o.perClass !== undefined ? { perClass: o.perClass, imagesPerClass: o.perClass } : {}),
        modes: o.modes,
        scenes: o.scenes,
        rebalance: o.rebalance,
        ...(o.images ? { imageRoot: o.images } : {}),
        ...(o.captions ? { captions: o.captions } : {}),
        ...(o.cocoCaptions ? { captionSources: [o.cocoCaptions] } : {}),
        ...(o.domains ? { domains: await readLines(o.domains, 'the domains file') } : {}),
        strength: o.strength,
        aliaTemplate: o.aliaTemplate,
        domainPrefix: o.domainPrefix,
        ...(o.meanings ? { meanings: o.meanings } : {}),
        ...(embedder ? { embedder } : {}),
        llmCandidates: o.llmCandidates,
        extraCategories: o.extraCategories,
        extraMeasure: o.extraMeasure,
        extraMaxSimilarity: o.extraMaxSimilarity,
        ...(o.extraCandidates ? { extraCandidates: await readLines(o.extraCandidates, 'the extra candidates file') } : {}),
        ...(llm ? { llm } : {}),
        ...(vlm ? { vlm: { ...vlm, ...(process.env.GENAUG_VLM_API_KEY ? { apiKey: process.env.GENAUG_VLM_API_KEY } : {}) } } : {}),
        cache: o.cache === false ? null : typeof o.cache === 'string' ? o.cache : undefined,
        concurrency: o.concurrency,
        onNote: (n) => global.print(n),
        onProgress: (done, total) => {
          const [label, unit] = o.strategy === 'llm' ? ['prompts', 'classes'] : o.strategy === 'scene' ? ['scenes', 'scenes'] : ['captions', 'images'];
          bar ??= new Progress(label, total, unit, o.quiet);
          bar.update(done);
        },
      });
      await embedder?.close?.();
      global.print(`${r.jobs} jobs for ${r.classes} classes${r.extraClasses ? ` + ${r.extraClasses} extra` : ''}; ${r.failures} failures recorded in ${r.failuresPath}`);
      global.print(`wrote ${r.out}${r.written.length ? ` and ${r.written.join(', ')}` : ''}`);
      if (r.jobs === 0) {
        // An empty plan would only fail later, in generate: say so now.
        if (r.failures) throw new GenaugError('E_BACKEND', `the plan is empty: every item failed (${r.failures} failure${r.failures === 1 ? '' : 's'}); the reasons are listed in ${r.failuresPath}`);
        throw new GenaugError('E_FORMAT', `the plan is empty: ${o.coco} with these options (strategy ${o.strategy}${o.classes ? `, --classes ${o.classes.join(',')}` : ''}${o.frequency ? `, --frequency ${o.frequency.join(',')}` : ''}) gives nothing to plan`);
      }
      if (r.failures) process.stderr.write(`genaug plan: ${r.failures} item${r.failures === 1 ? '' : 's'} could not be planned: see ${r.failuresPath}\n`);
    });
}
