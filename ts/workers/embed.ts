/** piscina worker for the embedding runs: one batch per task (see ts/curate/embed.ts). */
import { embedBatch, type BatchResult, type BatchTask } from '../curate/embed.js';

export default async function run(task: BatchTask): Promise<BatchResult> {
  return embedBatch(task);
}
