/**
 * One line of a plan (plan.jsonl): a generation job. `genaug plan` writes
 * these, `genaug generate` reads them, later stages carry `id` as provenance.
 */
import { z } from 'zod';

/** Why a box is not a valid layout box, or null: finite, w, h > 0, and x, y, x+w, y+h all inside (0, 1). */
export function boxProblem(box: readonly number[]): string | null {
  if (box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) return 'must be 4 finite numbers [x, y, w, h]';
  const [x, y, w, h] = box as [number, number, number, number];
  if (!(w > 0 && h > 0)) return `width and height must be > 0 (got w=${w}, h=${h})`;
  for (const [label, v] of [['x', x], ['y', y], ['x+w', x + w], ['y+h', y + h]] as const) {
    if (!(v > 0 && v < 1)) return `${label} = ${v} is not inside (0, 1)`;
  }
  return null;
}

/** A box in normalised xywh, top-left origin; w, h > 0 and x, y, x+w, y+h all inside (0, 1) (`boxProblem`). */
export const LayoutBoxSchema = z.object({
  name: z.string().min(1),
  box: z.tuple([z.number(), z.number(), z.number(), z.number()]).superRefine((box, ctx) => {
    const problem = boxProblem(box);
    if (problem) ctx.addIssue({ code: 'custom', message: `layout box ${JSON.stringify(box)}: ${problem}` });
  }),
  /** Optional attributes and depth layer from a scene graph (ACP). */
  attributes: z.array(z.string()).optional(),
  layer: z.number().int().optional(),
});

export const PlanJobSchema = z.object({
  /** Stable id: the same plan options give the same ids (hash of the job's content). */
  id: z.string().min(1).max(120).regex(/^[A-Za-z0-9_-]+$/),
  /** txt2img: a new image; img2img: an edit of `source_image`; inpaint: repaint outside/inside `mask`. */
  kind: z.enum(['txt2img', 'img2img', 'inpaint']),
  /** Target class name(s); the first is the main class for single-object jobs. */
  classes: z.array(z.string().min(1)).min(1),
  prompt: z.string().min(1),
  negative_prompt: z.string().default(''),
  layout: z.array(LayoutBoxSchema).optional(),
  /** Path of the real image to edit (img2img / inpaint), relative to the plan file or absolute. */
  source_image: z.string().optional(),
  /** Path of the mask for inpaint (white = the region of the object). */
  mask: z.string().optional(),
  /** Repaint the area outside the mask (a background edit) rather than inside. */
  invert_mask: z.boolean().optional(),
  /** img2img strength. */
  denoising_strength: z.number().min(0).max(1).optional(),
  /** How many candidates to generate (best-of-N picks among them later). */
  candidates: z.number().int().min(1).max(1000).default(1),
  width: z.number().int().min(8).max(8192).default(512),
  height: z.number().int().min(8).max(8192).default(512),
  /** Base seed; candidate c uses seed + c. */
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  /** Where each part came from: strategy, template/llm/wordnet, source image ids, ... */
  provenance: z.record(z.string(), z.unknown()).default({}),
}).superRefine((job, ctx) => {
  // Edits need their inputs: a line without them is invalid, not a request that fails.
  if (job.kind !== 'txt2img' && !job.source_image) ctx.addIssue({ code: 'custom', path: ['source_image'], message: `an ${job.kind} job needs source_image (the image to edit)` });
  if (job.kind === 'inpaint' && !job.mask) ctx.addIssue({ code: 'custom', path: ['mask'], message: 'an inpaint job needs mask (white = the object)' });
});

export type PlanJob = z.infer<typeof PlanJobSchema>;
export type LayoutBox = z.infer<typeof LayoutBoxSchema>;
