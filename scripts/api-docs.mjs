#!/usr/bin/env node
/**
 * `npm run api:docs [-- --check]`: writes docs/api.md, the API reference,
 * from the exports themselves: ts/index.ts's namespaces (`export * as NS from
 * './api/NS.js'`) and top-level names, each name's kind, call shape and the
 * first sentence of its JSDoc, read from its declaration in ts/ (followed
 * through re-exports). Parsing only (TypeScript's parser, a devDependency), no
 * type checking: it takes well under a second.
 * --check: exits 1 when docs/api.md is not what it would write (a test runs this).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'docs', 'api.md');

const parsed = new Map();
function parse(file) {
  let sf = parsed.get(file);
  if (!sf) {
    sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    parsed.set(file, sf);
  }
  return sf;
}

const moduleFile = (from, spec) => resolve(dirname(from), spec.replace(/\.js$/, '.ts'));

/** The first sentence of a node's JSDoc, on one line. */
function summary(node) {
  const sf = node.getSourceFile();
  // The file's own header comment sits in front of its first statement: not that statement's doc.
  const docs = ts.getJSDocCommentsAndTags(node).filter((d) => ts.isJSDoc(d) && !(d.pos === 0 && sf.statements[0] === node));
  const doc = docs[docs.length - 1];
  if (!doc || !doc.comment) return '';
  const text = (typeof doc.comment === 'string' ? doc.comment : doc.comment.map((c) => c.text ?? '').join('')).replace(/\s+/g, ' ').trim();
  const m = text.match(/^(.*?(?<!e\.g|i\.e|etc|vs)\.)(\s|$)/);
  return (m ? m[1] : text).replace(/\|/g, '\\|');
}

function params(node, sf) {
  return node.parameters.map((p) => `${p.dotDotDotToken ? '...' : ''}${p.name.getText(sf)}${p.questionToken || p.initializer ? '?' : ''}`).join(', ');
}

/** { kind, shape, summary } of `name` declared or re-exported by `file`. */
function describe(file, name, depth = 0) {
  if (depth > 8) throw new Error(`${file}: re-export chain of ${name} too deep`);
  const sf = parse(file);
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) {
        if (el.name.text === name) return describe(moduleFile(file, st.moduleSpecifier.text), (el.propertyName ?? el.name).text, depth + 1);
      }
    }
    if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      const el = st.exportClause.elements.find((e) => e.name.text === name);
      if (el) {
        // `export { x }` of an imported x: follow the import.
        const local = (el.propertyName ?? el.name).text;
        for (const im of sf.statements) {
          if (!ts.isImportDeclaration(im) || !im.importClause?.namedBindings || !ts.isNamedImports(im.importClause.namedBindings)) continue;
          const b = im.importClause.namedBindings.elements.find((e) => e.name.text === local);
          if (b) return describe(moduleFile(file, im.moduleSpecifier.text), (b.propertyName ?? b.name).text, depth + 1);
        }
      }
    }
    const exported = ts.getCombinedModifierFlags(st) & ts.ModifierFlags.Export;
    if (!exported && !ts.isVariableStatement(st)) continue;
    if (ts.isFunctionDeclaration(st) && st.name?.text === name) {
      return { kind: 'function', shape: `${name}(${params(st, sf)})`, summary: summary(st) };
    }
    if (ts.isClassDeclaration(st) && st.name?.text === name) return { kind: 'class', shape: name, summary: summary(st) };
    if (ts.isInterfaceDeclaration(st) && st.name.text === name) return { kind: 'interface', shape: name, summary: summary(st) };
    if (ts.isTypeAliasDeclaration(st) && st.name.text === name) return { kind: 'type', shape: name, summary: summary(st) };
    if (ts.isEnumDeclaration(st) && st.name.text === name) return { kind: 'enum', shape: name, summary: summary(st) };
    if (ts.isVariableStatement(st) && st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      for (const d of st.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.name.text === name) {
          const fn = d.initializer && (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer)) ? d.initializer : undefined;
          return { kind: fn ? 'function' : 'const', shape: fn ? `${name}(${params(fn, sf)})` : name, summary: summary(st) };
        }
      }
    }
  }
  throw new Error(`${relative(root, file)} does not declare or re-export ${name}`);
}

/** The names an `export { ... } from` list of `file` exports, with where they come from. */
function exportList(file) {
  const sf = parse(file);
  const names = [];
  for (const st of sf.statements) {
    if (!ts.isExportDeclaration(st) || !st.moduleSpecifier || !st.exportClause || !ts.isNamedExports(st.exportClause)) continue;
    const from = moduleFile(file, st.moduleSpecifier.text);
    for (const el of st.exportClause.elements) {
      const deprecated = ts.getJSDocTags(el).some((t) => t.tagName.text === 'deprecated');
      names.push({ name: el.name.text, source: (el.propertyName ?? el.name).text, from, deprecated });
    }
  }
  return names;
}

function leadingDoc(file) {
  const text = readFileSync(file, 'utf8');
  const m = text.match(/^\/\*\*([\s\S]*?)\*\//);
  return m ? m[1].replace(/^\s*\* ?/gm, '').replace(/\s+/g, ' ').trim() : '';
}

function table(rows) {
  const lines = ['| name | kind | summary |', '|---|---|---|'];
  for (const r of rows) lines.push(`| \`${r.shape}\` | ${r.kind} | ${r.summary} |`);
  return lines.join('\n');
}

const index = join(root, 'ts', 'index.ts');
const indexSf = parse(index);
const namespaces = [];
for (const st of indexSf.statements) {
  if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamespaceExport(st.exportClause)) {
    namespaces.push({ name: st.exportClause.name.text, file: moduleFile(index, st.moduleSpecifier.text) });
  }
}
const all = exportList(index);
const top = all.filter((e) => !e.deprecated);
const deprecated = all.filter((e) => e.deprecated);

const md = [
  '# API reference',
  '',
  '<!-- Written by `npm run api:docs` (scripts/api-docs.mjs) from ts/index.ts and ts/api/; do not edit by hand. -->',
  '',
  "`import { similarity, io, pipeline, GenaugError } from 'genaug'`: one namespace per stage or layer of genaug",
  '(README, "Folders"). Functions that start work return a Promise and run off the event loop; most have a `...Sync`',
  'twin for worker threads. Errors are `GenaugError` with a stable `code` (docs/troubleshooting.md).',
  `The flat names of 0.1 (\`topk\`, \`readNpy\`, ...: ${deprecated.length} names) are deprecated aliases of the same`,
  'objects, kept for one release; `plan` and `generate` are namespaces now (`plan.run`, `generate.run`).',
  '',
  '## Top level',
  '',
  table(top.map((e) => ({ ...describe(e.from, e.source), shape: describe(e.from, e.source).shape.replace(e.source, e.name) }))),
  '',
];
for (const ns of namespaces) {
  md.push(`## ${ns.name}`, '', leadingDoc(ns.file), '');
  const rows = exportList(ns.file).map((e) => {
    const d = describe(e.from, e.source);
    const twin = e.source.endsWith('Sync') && !d.summary ? `The synchronous twin of \`${ns.name}.${e.name.slice(0, -4)}\` (for worker threads).` : d.summary;
    return { ...d, summary: twin, shape: `${ns.name}.${d.shape.replace(new RegExp(`^${e.source}`), e.name)}` };
  });
  const order = { function: 0, class: 1, const: 2, enum: 3, interface: 4, type: 5 };
  rows.sort((a, b) => order[a.kind] - order[b.kind]);
  md.push(table(rows), '');
}
const text = `${md.join('\n').trimEnd()}\n`;

if (process.argv.includes('--check')) {
  const now = existsSync(out) ? readFileSync(out, 'utf8') : '';
  if (now !== text) {
    console.error('docs/api.md is out of date: run npm run api:docs');
    process.exit(1);
  }
  console.log(`docs/api.md is up to date (${namespaces.length} namespaces)`);
} else {
  writeFileSync(out, text);
  console.log(`wrote docs/api.md (${namespaces.length} namespaces, ${top.length} top-level names, ${deprecated.length} deprecated aliases)`);
}
