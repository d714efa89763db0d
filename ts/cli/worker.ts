/**
 * `genaug worker --queue URL`: takes jobs of `genaug run --queue` until
 * stopped. SIGINT/SIGTERM: no new job is taken, the active ones finish (their
 * results are written), then it exits 0; a second signal hands the active jobs
 * back at once (another worker gets them after the stall interval) and exits 0.
 */
import { Command } from 'commander';

import { GenaugError } from '../native/errors.js';
import type { DistributedKind } from '../util/distribute.js';
import { intArg, type GlobalOptions } from './args.js';

const KINDS: readonly DistributedKind[] = ['generate', 'annotate', 'embed', 'score', 'paste'];

export function workerCommand(global: GlobalOptions): Command {
  return new Command('worker')
    .description('take jobs of `genaug run --queue` (generate, annotate, embed, score, paste shards) until stopped; the run folder must be at the same path here as on the coordinator')
    .requiredOption('--queue <url>', 'redis://[:password@]host:port[/db] (password also from GENAUG_QUEUE_PASSWORD)')
    .option('--concurrency <n>', 'jobs at once (default 1)', intArg('--concurrency', 1, 256), 1)
    .option('--id <name>', "this worker's name in run.json's byWorker (default host:pid)")
    .option('--stages <list>', `stages to take, comma-separated (default all: ${KINDS.join(',')})`)
    .option('--stall-interval <ms>', 'job lock and stalled-job check interval: a killed worker\'s job is handed out again after about this long (default 30000)', intArg('--stall-interval', 200, 600_000), 30_000)
    .option('-q, --quiet', 'no log lines')
    .action(async (o: { queue: string; concurrency: number; id?: string; stages?: string; stallInterval: number; quiet?: boolean }) => {
      const stages = o.stages ? o.stages.split(',').map((s) => s.trim()).filter(Boolean) : [...KINDS];
      for (const s of stages) if (!(KINDS as readonly string[]).includes(s)) throw new GenaugError('E_ARGUMENT', `--stages: unknown stage '${s}'; queue stages: ${KINDS.join(', ')}`);
      const log = (line: string) => {
        if (!o.quiet) process.stderr.write(`${line}\n`);
      };
      const { startWorkers } = await import('../pipeline/queue.js');
      const w = await startWorkers({ url: o.queue, concurrency: o.concurrency, stages: stages as DistributedKind[], stallMs: o.stallInterval, log, ...(o.id ? { id: o.id } : {}) });
      const { parseQueueUrl } = await import('../pipeline/queue.js');
      log(`genaug worker ${w.id}: taking ${stages.join(', ')} jobs from ${parseQueueUrl(o.queue).display} (concurrency ${o.concurrency}); Ctrl-C finishes the job in hand and stops`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) {
            log(`genaug worker ${w.id}: ${sig} again: handing the active jobs back`);
            void w.close(true).then(resolve);
            return;
          }
          stopping = true;
          log(`genaug worker ${w.id}: ${sig}: finishing the active job, then stopping (${sig} again hands it back at once)`);
          void w.close(false).then(resolve);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
      global.print(`genaug worker ${w.id}: stopped after ${w.processed()} jobs`);
      // A Redis that went away leaves reconnect timers behind: they do not hold the exit.
      setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
    });
}
