/**
 * The public API's shape (issue 22): namespaces, deprecated flat aliases of
 * the same objects, every documented library name exported, docs/api.md up
 * to date, and published types that compile in a strict Node project with
 * lib es2022 and skipLibCheck false.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import * as genaug from '../ts/index.js';

const repo = join(__dirname, '..');
const g = genaug as unknown as Record<string, unknown>;
const indexText = readFileSync(join(repo, 'ts', 'index.ts'), 'utf8');
const namespaces = [...indexText.matchAll(/^export \* as (\w+) from '\.\/api\/\1\.js';$/gm)].map((m) => m[1] as string);
const ns = (name: string) => g[name] as Record<string, unknown>;

/** Every name in a namespace or at the top level (not a deprecated alias). */
function home(name: string): string | undefined {
  if (['GenaugError', 'isGenaugError', 'ERROR_CODES', 'capabilities'].includes(name)) return '.';
  return namespaces.find((n) => name in ns(n));
}

describe('the API', () => {
  it('has one namespace per stage or layer, and the calls the issue names', () => {
    expect(namespaces).toEqual(['similarity', 'io', 'metrics', 'bnstats', 'masks', 'models', 'plan', 'llm', 'layout', 'curate', 'generate', 'composite', 'augment', 'pipeline', 'util']);
    expect(genaug.similarity.topk).toBeTypeOf('function');
    expect(genaug.masks.postProcessMask).toBeTypeOf('function');
    expect(genaug.io.readNpy).toBeTypeOf('function');
    expect(genaug.pipeline.run).toBe(genaug.pipeline.runPipeline);
    expect(genaug.plan.run).toBeTypeOf('function');
    expect(genaug.generate.run).toBeTypeOf('function');
  });

  it('keeps each flat name as a deprecated alias of the same object in its namespace', () => {
    const aliases = [...indexText.matchAll(/\/\*\* @deprecated use `(\w+)\.(\w+)` \*\/\n\s+(type )?(\w+),/g)];
    expect(aliases.length).toBeGreaterThan(300);
    let values = 0;
    for (const [, space, name, type, flat] of aliases) {
      expect(flat).toBe(name);
      expect(namespaces).toContain(space);
      if (type) continue;
      values++;
      expect(g[flat as string], `${flat} is the same object as ${space}.${name}`).toBe(ns(space as string)[name as string]);
    }
    // Every runtime export is a namespace, a top-level name, or one of these aliases.
    const runtime = Object.keys(g).filter((k) => !namespaces.includes(k) && home(k) !== '.');
    expect(runtime.length).toBe(values);
  });

  it('exports every library function the README and docs/ document', () => {
    const docs = ['README.md', ...readdirSync(join(repo, 'docs')).map((f) => join('docs', f))].filter((f) => f.endsWith('.md') && f !== join('docs', 'api.md'));
    const missing: string[] = [];
    let checked = 0;
    for (const f of docs) {
      const text = readFileSync(join(repo, f), 'utf8');
      // import { a, b } from 'genaug'
      for (const m of text.matchAll(/import \{([^}]*)\} from 'genaug'/g)) {
        for (const spec of (m[1] as string).split(',').map((s) => s.trim()).filter((s) => s && !s.startsWith('type '))) {
          checked++;
          if (!(spec in g)) missing.push(`${f}: import { ${spec} }`);
        }
      }
      // docs/library.md, the first column of its function tables: `name(...)`, `new Name(...)`, `Name.load(...)`, `name`.
      for (const line of text.split('\n').filter((l) => /^\| `/.test(l))) {
        const cell = line.split(' | ')[0] as string;
        for (const m of cell.matchAll(/`(?:new )?([A-Za-z_]\w*)[^`]*`/g)) {
          const name = m[1] as string;
          if (f !== join('docs', 'library.md') || !/^[a-zA-Z]+$/.test(name) || !/[A-Z]|\(/.test(m[0]) ) continue;
          checked++;
          if (!home(name)) missing.push(`${f}: ${name}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(60);
    expect(missing).toEqual([]);
  });

  it('docs/api.md is what scripts/api-docs.mjs writes from the exports', () => {
    const r = spawnSync(process.execPath, [join(repo, 'scripts', 'api-docs.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const api = readFileSync(join(repo, 'docs', 'api.md'), 'utf8');
    for (const space of namespaces) expect(api).toContain(`\n## ${space}\n`);
    expect(api).toContain('| `similarity.topk(query, db, k, options?)` | function |');
  });
});

describe('the published types', () => {
  it('compile in a strict Node project with lib es2022 and skipLibCheck false (dist/index.d.ts)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'genaug-types-'));
    try {
      mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
      symlinkSync(repo, join(dir, 'node_modules', 'genaug'), 'dir');
      symlinkSync(join(repo, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      const compilerOptions = { strict: true, lib: ['es2022'], types: ['node'], skipLibCheck: false, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true };
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
      writeFileSync(
        join(dir, 'consumer.ts'),
        `import { similarity, io, masks, models, pipeline, GenaugError, capabilities, topk } from 'genaug';
const m: similarity.Matrix = { data: new Float32Array(8), rows: 2, dim: 4 };
const r: similarity.TopKResult = await similarity.topk(m, m, 1);
const indices: Int32Array = r.indices;
// @ts-expect-error indices are not 64-bit any more
const big: BigInt64Array = r.indices;
const legacy: Promise<similarity.TopKResult> = topk(m, m, 1);
const spec: models.TensorSpec = { name: 'pixel_values', type: 'float32', dims: [null, 3, 224, 224] };
const run: typeof pipeline.run = pipeline.run;
const header: Promise<io.NpyHeader> = io.readNpyHeader('x.npy');
const area: number = masks.maskArea({ data: new Uint8Array(4), width: 2, height: 2 });
const e = new GenaugError('E_IO', 'x');
const code: string = e.code;
console.log(indices, big, legacy, spec, run, header, area, code, capabilities);
`,
      );
      const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', cwd: dir });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
