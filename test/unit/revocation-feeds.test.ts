/**
 * T26, issue #11 ("Revoking a plain access token"): whatever takes privileges away from a principal must
 * also reach the tokens it holds, or those tokens simply open new sessions with new grants. This walks
 * the syntax of every file in `src/` (TypeScript's parser, so comments and strings do not count) and
 * finds the operations that take privileges from a principal:
 *
 * - ending grants in the store by a selector that is not a literal `{ id: … }` (`*.grants.end(sel, reason, at)`),
 * - revoking live grants the same way (`GrantManager.revoke`, `*.grants.revoke(sel, …)`),
 * - removing a local user (`*.users.remove(…)`);
 *
 * each must sit in a function that also writes the token revocation list (`*.revocations.add(…)` or
 * `*.revocations.revoke(…)`). A new verb, API or path that ends a principal's grants without revoking its
 * tokens fails here, with its file and line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');

/**
 * Where such a call is the mechanism, not a feed: the storage backends implement the repositories, and
 * `GrantManager.revoke` mirrors a store revocation in memory (its own callers are checked).
 */
const EXEMPT: readonly { file: string; function: string | undefined }[] = [
  { file: 'src/grants/grant.ts', function: 'revoke' },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return path === join(SRC, 'storage') ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `a.b.c(…)` → ['a', 'b', 'c'] (optional chaining and `this` included); undefined for other callees. */
function calleePath(call: ts.CallExpression): string[] | undefined {
  const parts: string[] = [];
  let e: ts.Expression = call.expression;
  for (;;) {
    if (ts.isPropertyAccessExpression(e)) {
      parts.unshift(e.name.text);
      e = e.expression;
    } else if (ts.isNonNullExpression(e) || ts.isParenthesizedExpression(e)) {
      e = e.expression;
    } else if (ts.isIdentifier(e)) {
      parts.unshift(e.text);
      return parts;
    } else if (e.kind === ts.SyntaxKind.ThisKeyword) {
      parts.unshift('this');
      return parts;
    } else {
      return undefined;
    }
  }
}

/** True for `{ id: … }` (exactly one grant, by id). */
function isIdLiteral(arg: ts.Expression | undefined): boolean {
  return (
    arg !== undefined &&
    ts.isObjectLiteralExpression(arg) &&
    arg.properties.length === 1 &&
    arg.properties.every((p) => p.name !== undefined && ts.isIdentifier(p.name) && p.name.text === 'id')
  );
}

/** What the call takes away from a principal, or undefined when it is not such a call. */
function removal(call: ts.CallExpression): string | undefined {
  const path = calleePath(call);
  if (!path || path.length < 2) return undefined;
  const [owner, method] = path.slice(-2);
  if (owner === 'users' && method === 'remove') return 'removes a user';
  if (owner !== 'grants') return undefined;
  const first = call.arguments[0];
  // GrantRepo.end(selector, reason, at) has three arguments; GrantManager.end(grant, reason) ends one live grant.
  if (method === 'end' && call.arguments.length === 3 && !isIdLiteral(first))
    return 'ends grants by selector';
  if (method === 'revoke' && !isIdLiteral(first)) return 'revokes grants by selector';
  return undefined;
}

function writesRevocations(node: ts.Node): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n)) {
      const path = calleePath(n);
      const [owner, method] = path?.slice(-2) ?? [];
      if (owner === 'revocations' && (method === 'add' || method === 'revoke')) {
        found = true;
        return;
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

/** The outermost function, method or arrow enclosing `node` below the file (a transaction callback's owner). */
function enclosingFunction(node: ts.Node): ts.Node | undefined {
  let outer: ts.Node | undefined;
  for (let n: ts.Node | undefined = node.parent; n && !ts.isSourceFile(n); n = n.parent) {
    if (ts.isFunctionLike(n)) outer = n;
  }
  return outer;
}

function functionName(fn: ts.Node | undefined): string | undefined {
  if (
    fn &&
    (ts.isFunctionDeclaration(fn) || ts.isMethodDeclaration(fn)) &&
    fn.name &&
    ts.isIdentifier(fn.name)
  )
    return fn.name.text;
  return undefined;
}

test('T26 every operation that takes privileges from a principal also revokes its tokens', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of sourceFiles(SRC)) {
    const rel = relative(ROOT, file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) {
        const what = removal(n);
        if (what) {
          const fn = enclosingFunction(n);
          const name = functionName(fn);
          const exempt = EXEMPT.some((e) => e.file === rel && e.function === name);
          if (!exempt) {
            checked++;
            if (!fn || !writesRevocations(fn)) {
              const { line } = source.getLineAndCharacterOfPosition(n.getStart());
              problems.push(
                `${rel}:${line + 1}: ${what} (${n.getText().split('\n')[0]}) without revoking tokens`,
              );
            }
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(source);
  }
  assert.ok(
    checked >= 3,
    `the walk found the known feeds (grants revoke, users rm, removed clients): ${checked}`,
  );
  assert.deepEqual(problems, []);
});
