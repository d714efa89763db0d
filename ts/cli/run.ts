/** `genaug run CONFIG`: the whole pipeline from one config, resumable, stage by stage. */
import { Command, Option } from 'commander';

import { STAGES } from '../pipeline/config.js';
import { loadConfig } from '../pipeline/config.js';
import { runPipeline } from '../pipeline/run.js';
import type { GlobalOptions } from './args.js';
import { Progress } from './progress.js';
import { addQueueOptions, openQueue } from './queue.js';
import { withStopSignals } from './signals.js';

export function runCommand(global: GlobalOptions): Command {
  return addQueueOptions(new Command('run'))
    .description('run the pipeline of a config (YAML or JSON): plan -> generate -> annotate -> embed -> score -> filter -> pool -> paste/export -> report, in one run folder; re-running skips finished stages and resumes an interrupted one')
    .argument('<config>', 'run config file (see presets/*.yaml and the README); paths in it are relative to it')
    .addOption(new Option('--from <stage>', 'start at this stage (the stages before it must be done)').choices([...STAGES]))
    .addOption(new Option('--until <stage>', 'stop after this stage').choices([...STAGES]))
    .option('--force', 'run the selected stages even when they are up to date (default: skip them)')
    .option('--no-check-servers', 'do not check that the configured server URLs answer before starting (default: check)')
    .option('-q, --quiet', 'no progress output')
    .addHelpText('after', `\nStages: ${STAGES.join(', ')}.\nThe run folder's run.json records every stage's inputs, options, outputs (size, SHA-256), timing and status.`)
    .action(async (file: string, o) => {
      const cfg = await loadConfig(file, { checkServers: o.checkServers !== false, ...(o.until ? { until: o.until } : {}) });
      let bar: Progress | undefined;
      let barStage = '';
      const log = (line: string) => {
        if (!o.quiet) process.stderr.write(`${line}\n`);
      };
      const r = await withStopSignals('genaug run', async (signal) => {
        const queue = await openQueue(cfg, o, signal, log);
        try {
          return await runPipeline(cfg, {
            ...(queue ? { queue } : {}),
            signal,
            from: o.from,
            until: o.until,
            force: Boolean(o.force),
            log,
            onProgress: (stage, done, total) => {
              if (stage !== barStage) ((bar = new Progress(stage, total, 'items', o.quiet)), (barStage = stage));
              bar?.update(done);
            },
          });
        } finally {
          await queue?.close();
        }
      }, { quiet: o.quiet });
      global.print(`ran ${r.ran.length ? r.ran.join(', ') : 'nothing'}${r.skipped.length ? `; up to date: ${r.skipped.join(', ')}` : ''}${r.notPart.length ? `; not part of this method: ${r.notPart.join(', ')}` : ''}`);
      const report = r.manifest.stages.report?.status === 'done' ? '; report in report/report.html' : '';
      global.print(`run folder ${r.runDir} (run.json${report})`);
    });
}
