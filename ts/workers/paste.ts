/**
 * piscina worker for `paste` and the paste loader: one item per task (see
 * ts/augment/paste.ts). Each worker keeps its own cache of decoded crops.
 * Raw images and masks (loader) are transferred, not copied.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';

import { renderItem, type RenderResult, type RenderTask } from '../augment/paste.js';
import { CropCache } from '../augment/pool.js';

let cache: CropCache | undefined;

export default async function run(task: RenderTask): Promise<RenderResult | unknown> {
  cache ??= new CropCache(task.cacheBytes);
  const r = await renderItem(task, cache);
  const buffers = new Set<ArrayBuffer>();
  if (r.image) buffers.add(r.image.buffer as ArrayBuffer);
  if (r.encoded) buffers.add(r.encoded.buffer as ArrayBuffer);
  for (const inst of r.instances) if (inst.mask) buffers.add(inst.mask.buffer as ArrayBuffer);
  if (buffers.size === 0) return r;
  return move({
    get [transferableSymbol]() {
      return [...buffers];
    },
    get [valueSymbol]() {
      return r;
    },
  });
}
