/** Reads plan.jsonl: every line checked against PlanJobSchema; a bad line is reported with its number and field, the rest go on. */

import { readTextFile } from '../io/atomic.js';
import { ioError } from '../native/errors.js';
import { PlanJobSchema, type PlanJob } from '../plan/job.js';

export interface PlanEntry {
  job: PlanJob;
  /** 1-based line number in the plan file (or index + 1 for a job list). */
  line: number;
}

export interface InvalidPlanLine {
  line: number;
  /** The job id when the line had one. */
  job?: string;
  field?: string;
  message: string;
}

/** Validates one parsed line; returns the job or what is wrong (the first issue names its field). */
export function checkJob(value: unknown, line: number, where: string): PlanEntry | InvalidPlanLine {
  const r = PlanJobSchema.safeParse(value);
  const id = value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined;
  if (r.success) return { job: r.data, line };
  const issue = r.error.issues[0];
  const field = issue && issue.path.length ? issue.path.map(String).join('.') : undefined;
  const all = r.error.issues.map((i) => `${i.path.length ? `field "${i.path.map(String).join('.')}"` : 'the line'}: ${i.message}`).join('; ');
  return { line, ...(id !== undefined ? { job: id } : {}), ...(field !== undefined ? { field } : {}), message: `${where}:${line}: ${all}` };
}

/** Parses plan text; duplicate ids after the first are invalid lines too. */
export function parsePlan(text: string, where: string): { jobs: PlanEntry[]; invalid: InvalidPlanLine[] } {
  const jobs: PlanEntry[] = [];
  const invalid: InvalidPlanLine[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      invalid.push({ line, message: `${where}:${line}: not a JSON line (${(e as Error).message})` });
      return;
    }
    const r = checkJob(value, line, where);
    if ('job' in r && typeof r.job === 'object') {
      const first = seen.get(r.job.id);
      if (first !== undefined) {
        invalid.push({ line, job: r.job.id, field: 'id', message: `${where}:${line}: field "id": ${r.job.id} is already the id of line ${first}` });
        return;
      }
      seen.set(r.job.id, line);
      jobs.push(r as PlanEntry);
    } else invalid.push(r as InvalidPlanLine);
  });
  return { jobs, invalid };
}

export async function readPlan(path: string): Promise<{ jobs: PlanEntry[]; invalid: InvalidPlanLine[] }> {
  let text: string;
  try {
    // A regular file only (a FIFO or /dev/zero is E_IO, not a wait or an endless read); a byte-order mark is dropped.
    text = await readTextFile(path);
  } catch (e) {
    throw ioError(path, path, 'read the plan', e);
  }
  return parsePlan(text, path);
}
