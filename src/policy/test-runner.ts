/**
 * Table-driven policy tests (`gatehouse policy test FILE`, like `opa test`): a YAML file lists the
 * policy files, tool attributes and cases (principal, action, server, tool, args → expected decision).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import { type Decision, PolicyEngine, resourceEntityId } from './engine.ts';

const toolAttrs = z
  .object({
    risk: z.string().optional(),
    sideEffect: z.string().optional(),
    owner: z.string().optional(),
    serverTrusted: z.boolean().optional(),
    annotations: z
      .object({ readOnlyHint: z.boolean().optional(), destructiveHint: z.boolean().optional() })
      .strict()
      .optional(),
  })
  .strict();

const effect = z.enum(['allow', 'deny', 'approval_required']);

const testCase = z
  .object({
    name: z.string().min(1),
    principal: z
      .object({
        agent: z.string().min(1),
        user: z.string().optional(),
        tenant: z.string().optional(),
        actors: z.array(z.string()).optional(),
        scopes: z.array(z.string()).optional(),
        issuer: z.string().optional(),
      })
      .strict(),
    action: z.enum(['call_tool', 'list_tools', 'read_resource', 'get_prompt']).default('call_tool'),
    server: z.string().min(1),
    tool: z.string().min(1),
    toolAttrs: toolAttrs.optional(),
    args: z.unknown().optional(),
    approved: z.boolean().optional(),
    grant: z.string().optional(),
    time: z.number().optional(),
    read: z.array(z.string()).optional(),
    expect: effect,
  })
  .strict();

const testFile = z
  .object({
    policies: z.array(z.string()).optional(),
    tools: z.record(z.string(), toolAttrs).optional(),
    roles: z
      .object({
        agents: z.record(z.string(), z.array(z.string())).optional(),
        users: z.record(z.string(), z.array(z.string())).optional(),
      })
      .strict()
      .optional(),
    cases: z.array(testCase).min(1),
  })
  .strict();

/** One case whose decision differed from its expectation. */
export interface PolicyTestFailure {
  readonly case: string;
  readonly expected: Decision['effect'];
  readonly got: Decision['effect'];
  readonly policies: readonly string[];
  readonly errors: readonly string[];
}

/** Outcome of {@link runPolicyTests}. */
export interface PolicyTestResult {
  /** Number of cases that matched. */
  readonly passed: number;
  readonly failed: readonly PolicyTestFailure[];
}

/**
 * Runs a YAML policy test table. Policy paths are relative to the test file; without `policies`, every
 * `*.cedar` file next to it is loaded. Throws PolicyLoadError when the policies are invalid, and an Error
 * naming the file when the table itself is malformed.
 */
export function runPolicyTests(file: string): PolicyTestResult {
  const raw: unknown = parse(readFileSync(file, 'utf8'));
  const parsed = testFile.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid policy test file ${file}: ${issues}`);
  }
  const spec = parsed.data;
  const dir = path.dirname(file);
  const files = (
    spec.policies ??
    readdirSync(dir)
      .filter((f) => f.endsWith('.cedar'))
      .sort()
  ).map((f) => path.resolve(dir, f));
  const engine = PolicyEngine.fromFiles(files, { roles: spec.roles ?? {} });
  let passed = 0;
  const failed: PolicyTestFailure[] = [];
  for (const c of spec.cases) {
    const principal: Principal = {
      agent: c.principal.agent,
      user: c.principal.user,
      subject: c.principal.user ?? c.principal.agent,
      actors: c.principal.actors ?? [],
      tenant: c.principal.tenant,
      tokenId: undefined,
      issuer: c.principal.issuer ?? 'https://issuer.test',
      scopes: new Set(c.principal.scopes ?? []),
      authMethod: 'jwt',
      expiresAt: 0,
    };
    const d = engine.decide({
      principal,
      action: c.action,
      server: c.server,
      tool: c.tool,
      toolAttrs: c.toolAttrs ?? spec.tools?.[resourceEntityId(c.server, c.tool)],
      args: c.args,
      grantId: c.grant ?? 'test',
      approved: c.approved,
      time: c.time,
      read: c.read,
    });
    if (d.effect === c.expect) passed++;
    else
      failed.push({
        case: c.name,
        expected: c.expect,
        got: d.effect,
        policies: d.policies,
        errors: d.errors,
      });
  }
  return { passed, failed };
}

/**
 * `gatehouse policy test FILE`: runs the table, prints one line per failure and a summary to `out`, and
 * returns the process exit code (0 all passed, 1 a mismatch, 2 the file or policies are invalid).
 */
export function policyTestCommand(file: string, out: (line: string) => void = (l) => console.log(l)): number {
  let result: PolicyTestResult;
  try {
    result = runPolicyTests(file);
  } catch (err) {
    out(`error: ${(err as Error).message}`);
    return 2;
  }
  for (const f of result.failed) {
    out(
      `FAIL ${f.case}: expected ${f.expected}, got ${f.got} (policies: ${f.policies.join(', ') || 'none'})${f.errors.length ? ` errors: ${f.errors.join('; ')}` : ''}`,
    );
  }
  out(`${result.passed} passed, ${result.failed.length} failed`);
  return result.failed.length === 0 ? 0 : 1;
}
