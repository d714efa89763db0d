/**
 * "{{name}}" placeholders in a JSON value (a ComfyUI workflow, extra request
 * parameters): a string that is exactly one placeholder takes the value with
 * its type (a number stays a number), placeholders inside a longer string are
 * written into it as text.
 */
import { GenaugError } from '../native/errors.js';

const WHOLE = /^\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}$/;
const ANY = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

export type Vars = Record<string, unknown>;

/** Placeholder names used anywhere in `value`. */
export function placeholders(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(ANY)) out.add(m[1] as string);
  else if (Array.isArray(value)) for (const v of value) placeholders(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) placeholders(v, out);
  return out;
}

/**
 * Substitutes every placeholder. `missing(name)` explains a name without a
 * value (the error names `where` and the JSON path).
 */
export function substitute(value: unknown, vars: Vars, where: string, missing?: (name: string) => string | undefined, path = ''): unknown {
  const lookup = (name: string): unknown => {
    const v = vars[name];
    if (v === undefined) {
      const why = missing?.(name) ?? `no value for {{${name}}} (known: ${Object.keys(vars).filter((k) => vars[k] !== undefined).sort().join(', ')})`;
      throw new GenaugError('E_FORMAT', `${where}${path ? ` at ${path}` : ''}: ${why}`, { placeholder: name });
    }
    return v;
  };
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1] as string);
    if (!value.includes('{{')) return value;
    return value.replace(ANY, (_m, name: string) => {
      const v = lookup(name);
      return typeof v === 'string' ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, vars, where, missing, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) o[k] = substitute(v, vars, where, missing, path ? `${path}.${k}` : k);
    return o;
  }
  return value;
}
