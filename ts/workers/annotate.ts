/** piscina worker for `annotate`: one image per task (see ts/curate/annotate.ts). */
import { annotateOne, type AnnotateTask, type JournalLine } from '../curate/annotate.js';

export default async function run(task: AnnotateTask): Promise<JournalLine> {
  return annotateOne(task.file, task.category, task.options);
}
