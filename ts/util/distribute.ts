/**
 * Handing a stage's per-item work to other processes (genaug worker on a
 * queue, ts/pipeline/queue.ts): the stage engines (generate, annotate, embed,
 * paste) give plain-data tasks, in their own order, and get one result per
 * task back, in the same order, whatever process or machine computed it. The
 * engine then journals and assembles the results exactly as it does its own,
 * so a distributed run writes the same bytes as a local one.
 */

/** The per-item stages that can hand out work (score: X-Paste's CLIP score of each instance). */
export type DistributedKind = 'generate' | 'annotate' | 'embed' | 'score' | 'paste';

/** One task's outcome: its result, or why the job that held it failed (every attempt). */
export type Distributed<R> = { ok: true; value: R } | { ok: false; reason: string };

export interface Distributor {
  /** Runs `tasks` elsewhere (in contiguous shards); resolves with one outcome per task, in task order. */
  run<T, R>(kind: DistributedKind, tasks: T[]): Promise<Array<Distributed<R>>>;
}
