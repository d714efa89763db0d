/**
 * `genaug demo`: the whole pipeline on a fresh machine with no model or
 * server. It draws a small "real" dataset (procedural scenes of six shape
 * classes, one rare, with COCO annotations), then runs `genaug run` on it with
 * the built-in procedural generator standing in for a diffusion server (with
 * planted failures: off-class drawings, empty images, near-duplicates, objects
 * cut off by the border), annotates with the corner method, embeds with the
 * weight-free embedder, filters, builds the pool, pastes into the real images,
 * exports COCO and WebDataset, and writes the HTML report.
 */
import { join, resolve } from 'node:path';

import { Command } from 'commander';
import { stringify } from 'yaml';

import { writeRealDataset } from '../generate/procedural-world.js';
import { removeStaleTemporaries, writeFileAtomic } from '../io/atomic.js';
import { lockFolder } from '../io/lock.js';
import { capabilities } from '../native/load.js';
import { loadConfig } from '../pipeline/config.js';
import { runPipeline } from '../pipeline/run.js';
import { readJson, readJsonl } from '../util/jsonl.js';
import { intArg, type GlobalOptions } from './args.js';
import { addQueueOptions, openQueue, type QueueCliOptions } from './queue.js';
import { withStopSignals } from './signals.js';
import { DEMO_PRESETS, demoPresetNames, divergenDemoConfig, type DemoContext, type DemoPreset } from '../demo/presets.js';
import { startStandin } from '../demo/standin.js';
import { GenaugError } from '../native/errors.js';

export interface DemoOptions {
  out: string;
  seed: number;
  /** Real scenes to draw. */
  images?: number;
  quiet?: boolean;
  /** Stops the demo (SIGTERM/SIGINT): the stage in hand journals what it finished, and the demo rejects with E_ABORTED. */
  signal?: AbortSignal;
  /** --queue and its companions: the run's per-item stages go to queue workers (same bytes). */
  queue?: QueueCliOptions;
  /** The method to run (default divergen): a name of DEMO_PRESETS. */
  preset?: string;
}

/** The default demo's run config (DiverGen; paths relative to DIR/run.yaml). */
export function demoConfig(seed: number) {
  return divergenDemoConfig(seed);
}

export async function runDemo(o: DemoOptions, global: GlobalOptions) {
  const out = resolve(o.out);
  demoPreset(o.preset);
  const t0 = Date.now();
  // The folder's lock before anything is written: a second demo into it is refused and changes nothing.
  // --queue: Redis answers (and takes the password) before anything is written.
  if (o.queue?.queue) {
    const q = await import('../pipeline/queue.js');
    await q.checkRedis(q.parseQueueUrl(o.queue.queue));
  }
  const unlock = await lockFolder(out, 'genaug demo');
  try {
    await demoLocked(o, global, out, t0);
  } finally {
    await unlock();
  }
}

async function demoLocked(o: DemoOptions, global: GlobalOptions, out: string, t0: number) {
  const say = (s: string) => {
    if (!o.quiet) process.stderr.write(`${s}\n`);
  };
  // A demo killed while writing leaves temporary files of atomic writes behind: gone before it writes again.
  for (const d of [out, join(out, 'data'), join(out, 'data', 'images')]) await removeStaleTemporaries(d);
  const real = await writeRealDataset({ out: join(out, 'data'), seed: o.seed, images: o.images ?? 48 });
  say(`demo: ${o.images ?? 48} real scenes in ${join(out, 'data')}: ${Object.entries(real.counts).map(([k, v]) => `${k} ${v.instances}`).join(', ')}`);
  const preset = demoPreset(o.preset);
  const standin = preset.answerers ? await startStandin({ seed: o.seed, answerers: preset.answerers }) : undefined;
  try {
    const ctx: DemoContext = { seed: o.seed, out, ...(standin ? { llmUrl: standin.url } : {}) };
    await preset.prepare?.(ctx);
    const configPath = join(out, 'run.yaml');
    await writeFileAtomic(configPath, new TextEncoder().encode(`# genaug demo run config (genaug run ${configPath})\n${stringify(preset.config(ctx))}`));
    if (o.signal?.aborted) throw new GenaugError('E_ABORTED', 'the demo was stopped before its run began; run it again to resume');
    const cfg = await loadConfig(configPath, { checkServers: false });
    const queue = o.queue?.queue ? await openQueue(cfg, o.queue, o.signal ?? new AbortController().signal, say) : undefined;
    let r: Awaited<ReturnType<typeof runPipeline>>;
    try {
      r = await runPipeline(cfg, { log: say, ...(o.signal ? { signal: o.signal } : {}), ...(queue ? { queue } : {}) });
    } finally {
      await queue?.close();
    }
    const report = await readJson<{ totals: Record<string, number>; truth: Record<string, Record<string, number>>; funnel: unknown; gap: unknown }>(join(r.runDir, 'report', 'report.json'));
    // What became of each planted failure (the procedural generator's truth): kept, or the stage and rule that dropped it.
    const fates: Record<string, Record<string, number>> = {};
    for (const d of await readJsonl<{ truth?: string; status: string; stage: string; reason?: string }>(join(r.runDir, 'filter', 'decisions.jsonl'))) {
      if (!d.truth) continue;
      const why = d.status === 'kept' ? 'kept' : `${d.stage}: ${(d.reason ?? d.status).replace(/ \(.*$/s, '')}`;
      const row = (fates[d.truth] ??= {});
      row[why] = (row[why] ?? 0) + 1;
    }
    const summary = {
      seed: o.seed,
      preset: o.preset ?? 'divergen',
      real: real.counts,
      config: configPath,
      runDir: r.runDir,
      stages: Object.fromEntries(Object.entries(r.manifest.stages).map(([k, v]) => [k, { status: v?.status, seconds: v?.seconds, summary: v?.summary, ...(v?.skipped ? { skipped: v.skipped } : {}) }])),
      totals: report.totals,
      truth: report.truth,
      fates,
      funnel: report.funnel,
      gap: report.gap,
      ...(standin ? { standin: standin.counts } : {}),
      outputs: preset.outputs(r.runDir),
      seconds: (Date.now() - t0) / 1000,
      isa: capabilities().isa,
    };
    await writeFileAtomic(join(out, 'summary.json'), new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'));
    const t = report.totals;
    const pasted = r.manifest.stages.paste?.skipped === undefined;
    global.print(`generated ${t.generated} images: kept ${t.kept}, rejected ${t.rejected}, failed ${t.failed}` + (pasted ? `; pool ${t.pool} instances; ${t.pastedImages} training images with ${t.pastedInstances} pasted instances` : ''));
    const label = (k: string) => ({ coco: 'COCO', webdataset: 'WebDataset', imagefolder: 'ImageFolder', auxbn: 'aux-BN' })[k] ?? k;
    const shown = Object.entries(summary.outputs).filter(([k]) => k !== 'manifest' && k !== 'pool');
    const width = Math.max(...shown.map(([k]) => label(k).length)) + 2;
    for (const [k, v] of shown) global.print(`${`${label(k)}:`.padEnd(width)}${v}`);
    // A demo with a stand-in server is run again by the demo (run.yaml names the stand-in, which lives only while the demo runs).
    const again = standin ? `genaug demo --preset ${o.preset} --out ${out}${o.seed !== 1 ? ` --seed ${o.seed}` : ''}${o.images !== undefined && o.images !== 48 ? ` --images ${o.images}` : ''}` : `genaug run ${configPath}`;
    global.print(`outputs in ${out} (summary.json lists them; run again with: ${again})`);
    return summary;
  } finally {
    await standin?.close();
  }
}

/** The preset of a --preset name (default divergen); E_ARGUMENT naming the ones there are. */
function demoPreset(name: string | undefined): DemoPreset {
  const p = DEMO_PRESETS[name ?? 'divergen'];
  if (!p) throw new GenaugError('E_ARGUMENT', `--preset: no demo for '${name}'; demos: ${demoPresetNames().join(', ')}`);
  return p;
}

export function demoCommand(global: GlobalOptions): Command {
  return addQueueOptions(new Command('demo'))
    .description('run the whole pipeline on procedurally drawn data with a built-in image generator (no model or server needed) and write a report')
    .option('--out <dir>', 'output folder', 'genaug-demo')
    .option('--seed <n>', 'random seed (same seed, same bytes)', intArg('--seed', 0), 1)
    .option('--images <n>', 'real scenes to draw', intArg('--images', 4, 10000), 48)
    .option('--preset <name>', `the method to run: ${demoPresetNames().join(', ')}`, 'divergen')
    .option('-q, --quiet', 'less output')
    .action(async (o) => {
      await withStopSignals('genaug demo', (signal) => runDemo({ out: o.out, seed: o.seed, images: o.images, quiet: o.quiet, preset: o.preset, signal, ...(o.queue ? { queue: o } : {}) }, global), { quiet: o.quiet });
    });
}
