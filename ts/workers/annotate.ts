/** piscina worker for `annotate`: one image per task (see ts/curate/annotate.ts), or a probe that loads the models. */
import { annotateOne, probeModels, type AnnotateTask, type JournalLine, type ProbeAnswer } from '../curate/annotate.js';

export default async function run(task: AnnotateTask): Promise<JournalLine | ProbeAnswer> {
  if (task.probe) return probeModels(task.options);
  return annotateOne(task.file, task.category, task.options);
}
