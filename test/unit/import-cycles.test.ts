/**
 * No import circle in `src/`, type imports included (issue #19).
 *
 * Every relative specifier counts: `import`, `import type`, `export … from`, side-effect imports, and
 * `import('…')` (dynamic or in a type position). TypeScript's own pre-processor reads them, so
 * comments, strings and multi-line statements are handled the way the compiler handles them.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');

/** Every `.ts` file under `dir` (declaration files included). */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The file a relative specifier names (`./x.ts`, `./x.js`, `./x`, `./dir`), or undefined. */
function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c) && statSync(c).isFile());
}

/** The relative specifiers a module imports or re-exports, in any form (value, type, dynamic). */
function relativeSpecifiers(source: string): string[] {
  const { importedFiles } = ts.preProcessFile(source, true, true);
  return importedFiles.map((f) => f.fileName).filter((f) => f.startsWith('.'));
}

/** Relative imports of every file under `dir`, as absolute paths. */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(dir)) {
    const targets = new Set<string>();
    for (const fileName of relativeSpecifiers(readFileSync(file, 'utf8'))) {
      // A data file (e.g. JSON) imports nothing back.
      if (/\.\w+$/.test(fileName) && !/\.[jt]s$/.test(fileName)) continue;
      const target = resolveSpecifier(file, fileName);
      assert.ok(target, `${relative(ROOT, file)}: cannot resolve '${fileName}'`);
      targets.add(target);
    }
    graph.set(file, [...targets]);
  }
  return graph;
}

/** Strongly connected components with a circle in them (Tarjan): more than one file, or a self-import. */
function circles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v) ?? 0);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
      onStack.delete(w);
      scc.push(w);
      if (w === v) break;
    }
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The shortest chain `start → … → start` inside `members` (breadth-first). */
function shortestCircle(graph: Map<string, string[]>, start: string, members: Set<string>): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i] as string;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path: string[] = [];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = prev.get(u)) path.unshift(u);
        return [start, ...path, start];
      }
      if (!prev.has(w) && w !== start) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [];
}

/** One readable report: each circle's files, then the shortest chain through each of them. */
function report(graph: Map<string, string[]>, found: string[][]): string {
  const name = (f: string) => relative(ROOT, f);
  return found
    .map((scc, i) => {
      const members = new Set(scc);
      const chains = new Set(scc.map((f) => shortestCircle(graph, f, members).map(name).join(' → ')));
      return [`circle ${i + 1} (${scc.length} files): ${scc.map(name).join(', ')}`, ...chains].join('\n  ');
    })
    .join('\n');
}

test('every form of import counts; comments, strings and packages do not', () => {
  const source = [
    "import type {\n  A,\n  B,\n} from './multi-line.ts';",
    "import { c } from '../value.ts';",
    "export type { D } from './re-export.ts';",
    "export * from './star.ts';",
    "import './side-effect.ts';",
    "let e: import('./type-position.ts').E;",
    "const f = await import('./dynamic.ts');",
    "// import g from './line-comment.ts';",
    "/* import('./block-comment.ts') */",
    'const h = "import(\'./string.ts\')";',
    "import pino from 'pino';",
  ].join('\n');
  assert.deepEqual(relativeSpecifiers(source), [
    './multi-line.ts',
    '../value.ts',
    './re-export.ts',
    './star.ts',
    './side-effect.ts',
    './type-position.ts',
    './dynamic.ts',
  ]);
});

test('the cycle finder reports each circle (a self-import too) with a chain back to the start', () => {
  const graph = new Map([
    ['/a.ts', ['/b.ts']],
    ['/b.ts', ['/c.ts']],
    ['/c.ts', ['/a.ts', '/d.ts']],
    ['/d.ts', []],
    ['/e.ts', ['/e.ts']],
  ]);
  const found = circles(graph);
  assert.deepEqual(found, [['/a.ts', '/b.ts', '/c.ts'], ['/e.ts']]);
  assert.deepEqual(shortestCircle(graph, '/b.ts', new Set(found[0])), ['/b.ts', '/c.ts', '/a.ts', '/b.ts']);
});

test('src/ has no import circle, type imports included', () => {
  const graph = importGraph(SRC);
  assert.ok(graph.size > 50, 'the walk found the source files');
  const found = circles(graph);
  assert.equal(found.length, 0, `import circles in src/:\n${report(graph, found)}`);
});
