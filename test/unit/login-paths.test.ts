/**
 * T33, the whole class (issue #11): every place in `src/` that checks a password or a client secret, or
 * logs a user in, is throttled and reports its failures (audited as `authn.failure`). A new login path
 * that skips either fails here, naming the file and the function; see docs/threats.md.
 *
 * Read from the TypeScript syntax tree of every source file:
 * - `verifyPassword` (scrypt compare) is called only by `checkLocalPassword` (passwords.ts), the one
 *   constant-cost password check;
 * - `checkLocalPassword` is called only by functions that also call the throttle (`.attempt(`) and
 *   report failures (`onFailure(`);
 * - a login result (`{ login: { accountId } }`, what oidc-provider turns into a session) is built only
 *   in functions that report failures (`onFailure(`);
 * - oidc-provider's client secret comparison (`compareClientSecret`) is replaced once, by a function
 *   that calls the throttle and reports failures (`onLoginFailure(`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

interface Site {
  /** `src/…:line`. */
  where: string;
  /** The outermost named function (or method) around the site. */
  fn: string;
  /** Every name called anywhere in that outermost function, nested closures included. */
  calls: Set<string>;
}

function calleeName(e: ts.Expression): string | undefined {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

function callsIn(node: ts.Node): Set<string> {
  const out = new Set<string>();
  const walk = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const name = calleeName(n.expression);
      if (name) out.add(name);
    }
    ts.forEachChild(n, walk);
  };
  walk(node);
  return out;
}

function functionName(n: ts.Node): string | undefined {
  if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name) return n.name.getText();
  if ((ts.isFunctionExpression(n) || ts.isArrowFunction(n)) && ts.isVariableDeclaration(n.parent))
    return n.parent.name.getText();
  if ((ts.isFunctionExpression(n) || ts.isArrowFunction(n)) && ts.isBinaryExpression(n.parent))
    return n.parent.left.getText();
  return undefined;
}

/** Every site matching `match`, with its outermost enclosing named function. */
function sites(match: (n: ts.Node) => boolean): Site[] {
  const out: Site[] = [];
  for (const file of sourceFiles(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const walk = (n: ts.Node): void => {
      if (match(n)) {
        let outer: ts.Node | undefined;
        let name = '(module)';
        for (let p: ts.Node | undefined = n.parent; p; p = p.parent) {
          const fn = functionName(p);
          if (fn) {
            outer = p;
            name = fn;
          }
        }
        const line = sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
        out.push({ where: `${relative(ROOT, file)}:${line}`, fn: name, calls: callsIn(outer ?? sf) });
      }
      ts.forEachChild(n, walk);
    };
    walk(sf);
  }
  return out;
}

const isCallOf =
  (name: string) =>
  (n: ts.Node): boolean =>
    ts.isCallExpression(n) && calleeName(n.expression) === name;

test('T33 every password compare is checkLocalPassword (one constant-cost check)', () => {
  const found = sites(isCallOf('verifyPassword'));
  assert.ok(found.length > 0, 'the scan finds the password check');
  for (const s of found) {
    assert.equal(
      s.fn,
      'checkLocalPassword',
      `${s.where}: verifyPassword in ${s.fn}; check passwords with checkLocalPassword behind the login throttle`,
    );
  }
});

test('T33 every checkLocalPassword caller is throttled and reports failures', () => {
  const found = sites(isCallOf('checkLocalPassword'));
  assert.ok(found.length > 0);
  for (const s of found) {
    assert.ok(
      s.calls.has('attempt'),
      `${s.where}: ${s.fn} checks a password without the throttle (.attempt)`,
    );
    assert.ok(s.calls.has('onFailure'), `${s.where}: ${s.fn} checks a password without reporting failures`);
  }
});

test('T33 every place that logs a user in reports its failures', () => {
  const isLoginResult = (n: ts.Node): boolean =>
    ts.isPropertyAssignment(n) &&
    n.name.getText() === 'login' &&
    ts.isObjectLiteralExpression(n.initializer) &&
    n.initializer.properties.some((p) => p.name?.getText() === 'accountId');
  const found = sites(isLoginResult);
  assert.deepEqual(
    found.map((s) => s.fn).sort(),
    ['handleIdpCallback', 'passwordLogin'],
    `login paths: ${found.map((s) => `${s.where} (${s.fn})`).join(', ')}; a new one needs the throttle or a reason in docs/threats.md, and its failures audited`,
  );
  for (const s of found) assert.ok(s.calls.has('onFailure'), `${s.where}: ${s.fn} does not report failures`);
});

test('T33 client secrets: the compare is replaced once, throttled and reported', () => {
  const found: { where: string; calls: Set<string> }[] = [];
  for (const file of sourceFiles(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const walk = (n: ts.Node): void => {
      if (
        ts.isBinaryExpression(n) &&
        n.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
        n.left.getText().endsWith('.compareClientSecret')
      ) {
        const line = sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
        found.push({ where: `${relative(ROOT, file)}:${line}`, calls: callsIn(n.right) });
      }
      ts.forEachChild(n, walk);
    };
    walk(sf);
  }
  assert.equal(found.length, 1, found.map((s) => s.where).join(', '));
  const [s] = found;
  assert.ok(s?.calls.has('attempt'), `${s?.where}: the client secret check is not throttled`);
  assert.ok(s?.calls.has('onLoginFailure'), `${s?.where}: client authentication failures are not reported`);
});
