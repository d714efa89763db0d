/**
 * Where a hot path runs: `--device auto|cpu|cuda` on the commands and the
 * `device` option of the library calls that have a CUDA path.
 *
 * - 'cpu' (the default): the CPU kernels, whose outputs never depend on
 *   whether a GPU exists.
 * - 'cuda': the CUDA kernels; E_CUDA_UNAVAILABLE naming why (no CUDA build,
 *   no device, the driver's error) when this build or machine has none.
 * - 'auto': CUDA when it is usable, otherwise the CPU, silently.
 */
import { GenaugError } from './errors.js';
import { capabilities } from './load.js';

export type Device = 'auto' | 'cpu' | 'cuda';

export const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

/** Checks a device name (E_RANGE otherwise). */
export function checkDevice(v: unknown, what = 'device'): Device {
  if (v === 'auto' || v === 'cpu' || v === 'cuda') return v;
  throw new GenaugError('E_RANGE', `${what} must be 'auto', 'cpu' or 'cuda', got ${JSON.stringify(v)}`);
}

/** Why the addon's CUDA kernels cannot run here, or undefined when they can. */
export function cudaUnavailableReason(): string | undefined {
  const c = capabilities().cuda;
  if (c.usable) return undefined;
  return c.reason ?? (c.built ? 'no usable CUDA device' : 'genaug was built without CUDA');
}

/**
 * The device a call runs on: 'cuda' for 'cuda' (E_CUDA_UNAVAILABLE with the
 * reason when the addon's CUDA kernels cannot run) and for 'auto' where they
 * can; 'cpu' otherwise.
 */
export function resolveDevice(device: Device | undefined, what = 'device'): 'cpu' | 'cuda' {
  if (device === undefined || device === 'cpu') return 'cpu';
  const d = checkDevice(device, what);
  const why = cudaUnavailableReason();
  if (d === 'auto') return why === undefined ? 'cuda' : 'cpu';
  if (why !== undefined) throw new GenaugError('E_CUDA_UNAVAILABLE', `${what} 'cuda' was requested but ${why}`);
  return 'cuda';
}
