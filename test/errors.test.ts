import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ERROR_CODES, GenaugError } from '../ts/index.js';

function sources(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p, ext));
    else if (ext.test(e.name)) out.push(p);
  }
  return out;
}

describe('GenaugError', () => {
  it('carries a code, a name and a message', () => {
    const e = new GenaugError('E_SHAPE', 'bad shape', { file: 'x.npy' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('GenaugError');
    expect(e.code).toBe('E_SHAPE');
    expect(e.detail).toEqual({ file: 'x.npy' });
    expect(String(e)).toBe('GenaugError [E_SHAPE]: bad shape');
  });

  it('lists every code the C++ and TypeScript sources use', () => {
    const root = join(__dirname, '..');
    const used = new Set<string>();
    for (const f of [...sources(join(root, 'native'), /\.(cc|h|cu)$/), ...sources(join(root, 'ts'), /\.ts$/)]) {
      for (const m of readFileSync(f, 'utf8').matchAll(/"(E_[A-Z_]+)"|'(E_[A-Z_]+)'/g)) used.add((m[1] ?? m[2]) as string);
    }
    expect(used.size).toBeGreaterThan(5);
    for (const code of used) expect(Object.keys(ERROR_CODES), `code ${code} is used but not listed`).toContain(code);
  });
});
