/**
 * The shape of ts/: imports point down the layers (README "Folders"), no
 * file imports itself back through others (no circles), and the README's
 * folder map names every ts/ folder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const tsRoot = join(root, 'ts');

/** Bottom first; a folder may import only folders of a lower rank (and its own files). */
const RANK: Record<string, number> = {
  native: 0,
  io: 1,
  util: 2,
  kernels: 3,
  models: 4,
  llm: 5,
  plan: 6,
  generate: 7,
  curate: 7,
  augment: 7,
  report: 8,
  demo: 8,
  pipeline: 9,
  workers: 10,
  cli: 10,
  api: 11,
};

function sources(): string[] {
  return readdirSync(tsRoot, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative imports of a file (static and dynamic), resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) out.push(resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts')));
  return out;
}

const folderOf = (file: string) => relative(tsRoot, file).split('/')[0] as string;

describe('ts/ layers', () => {
  it('every folder has a layer, and imports point down only', () => {
    const upward: string[] = [];
    for (const f of sources()) {
      if (relative(tsRoot, f) === 'index.ts') continue;
      const from = folderOf(f);
      expect(RANK[from], `ts/${from}/ has no layer in test/layers.test.ts`).toBeDefined();
      for (const to of importsOf(f).map(folderOf)) {
        if (to === from || to === 'index.ts') continue;
        if (!((RANK[from] as number) > (RANK[to] as number))) upward.push(`${relative(root, f)} imports ts/${to}/`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('no import circles between files', () => {
    const graph = new Map(sources().map((f) => [f, importsOf(f)]));
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        circles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(tsRoot, p)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(circles).toEqual([]);
  });

  it("the README's folder map names every ts/ folder, and only folders that exist", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const map = readme.slice(readme.indexOf('## Folders'), readme.indexOf('## Development'));
    const listed = new Set([...map.matchAll(/^ts\/([a-z-]+)\//gm)].map((m) => m[1] as string));
    const actual = readdirSync(tsRoot, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect([...listed].sort()).toEqual([...actual].sort());
  });
});
