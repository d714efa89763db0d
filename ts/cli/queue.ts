/**
 * The queue's command line: the --queue options of `genaug run` and `genaug
 * demo`, and `genaug queue status`. BullMQ is loaded only when --queue is
 * given: the embedded default needs no Redis and loads nothing of it.
 */
import { Command, Option } from 'commander';

import type { LoadedConfig } from '../pipeline/config.js';
import type { QueueRun } from '../pipeline/queue.js';
import { intArg, type GlobalOptions } from './args.js';

export interface QueueCliOptions {
  queue?: string;
  localWorkers?: number;
  attempts?: number;
  shardSize?: number;
  stallInterval?: number;
}

/** --queue and its companions, for run and demo. */
export function addQueueOptions(cmd: Command): Command {
  return cmd
    .option('--queue <url>', 'hand the per-item stages (generate, annotate, embed, the CLIP scores of score, paste) to `genaug worker` processes through Redis: redis://[:password@]host:port[/db] (password also from GENAUG_QUEUE_PASSWORD); the run folder must be on storage every worker sees at the same path')
    .option('--local-workers <n>', 'with --queue: this process works on jobs too, n at a time (default 0: it only hands out and assembles)', intArg('--local-workers', 0, 256))
    .option('--attempts <n>', 'with --queue: tries per job before its items are recorded as failed (default 3, exponential backoff)', intArg('--attempts', 1, 100))
    .option('--shard-size <n>', 'with --queue: items per job (default: generate 32, annotate 64, embed 4 batches, score 4 batches, paste 32)', intArg('--shard-size', 1, 1_000_000))
    .addOption(new Option('--stall-interval <ms>', 'with --queue and --local-workers: job lock / stalled-job check interval (default 30000)').argParser(intArg('--stall-interval', 200, 600_000)));
}

/** Opens the queue of --queue (undefined without it): Redis is checked first (E_QUEUE_UNAVAILABLE). */
export async function openQueue(cfg: LoadedConfig, o: QueueCliOptions, signal: AbortSignal, log: (line: string) => void): Promise<QueueRun | undefined> {
  if (!o.queue) return undefined;
  const { QueueRun: Q } = await import('../pipeline/queue.js');
  return Q.open(cfg, {
    url: o.queue,
    signal,
    log,
    ...(o.localWorkers !== undefined ? { localWorkers: o.localWorkers } : {}),
    ...(o.attempts !== undefined ? { attempts: o.attempts } : {}),
    ...(o.stallInterval !== undefined ? { stallMs: o.stallInterval } : {}),
    ...(o.shardSize !== undefined ? { shard: { generate: o.shardSize, annotate: o.shardSize, embed: o.shardSize, score: o.shardSize, paste: o.shardSize } } : {}),
  });
}

export function queueCommand(global: GlobalOptions): Command {
  const cmd = new Command('queue').description('the Redis queue of `genaug run --queue` and `genaug worker`');
  cmd
    .command('status')
    .description('jobs waiting, active, delayed, completed and failed per stage, and the workers listening')
    .requiredOption('--queue <url>', 'redis://[:password@]host:port[/db]')
    .option('--json', 'one JSON object instead of a table')
    .action(async (o: { queue: string; json?: boolean }) => {
      const { queueStatus } = await import('../pipeline/queue.js');
      const s = await queueStatus(o.queue);
      if (o.json) return global.print(JSON.stringify(s));
      global.print(`queue ${s.url}`);
      global.print(`${'stage'.padEnd(10)}${['waiting', 'active', 'delayed', 'completed', 'failed', 'workers'].map((h) => h.padStart(11)).join('')}`);
      for (const [stage, c] of Object.entries(s.stages)) {
        global.print(`${stage.padEnd(10)}${[c.waiting, c.active, c.delayed, c.completed, c.failed, s.workers[stage as keyof typeof s.workers]].map((n) => String(n).padStart(11)).join('')}`);
      }
    });
  return cmd;
}
