/**
 * `gatehouse policy validate FILE...`, `gatehouse policy test FILE` (table-driven decisions, exit 1 on a
 * mismatch, like `opa test`) and `gatehouse policy explain` (one decision and the policies behind it,
 * with the policies, roles and tool attributes of a config).
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Principal } from '../auth/principal.ts';
import { parseConfig } from '../config/load.ts';
import { resolveName } from '../federation/names.ts';
import { Authorizer } from '../policy/authorizer.ts';
import { loadPolicySet, type PolicyAction, PolicyLoadError, policyTestCommand } from '../policy/index.ts';
import { Router } from '../session/router.ts';
import { demoConfig } from './demo.ts';
import { configFor } from './shared.ts';

export const POLICY_USAGE = `  policy validate FILE...
        parse and validate Cedar policy files against the Gatehouse schema
  policy test FILE
        run a YAML table of decisions (principal, action, tool, args → expected); exit 1 on a mismatch
  policy explain --agent A [--user U] [--tenant T] [--scope S]... --tool SERVER__TOOL [--args JSON]
                 [--action call_tool|list_tools|read_resource|get_prompt] [--approved] [--json] [--config FILE]
        the decision for one call and the policies that produced it (config: policies, roles, tool
        attributes; default: the embedded demo)
`;

function printProblems(err: PolicyLoadError): void {
  for (const p of err.problems) {
    process.stderr.write(
      `${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.policyId ? `${p.policyId}: ` : ''}${p.message}\n`,
    );
  }
}

export function policyCommand(argv: string[]): number {
  const [verb, ...rest] = argv;
  try {
    if (verb === 'test' && rest.length === 1 && rest[0])
      return policyTestCommand(rest[0], (l) => process.stdout.write(`${l}\n`));
    if (verb === 'validate' && rest.length > 0) {
      const set = loadPolicySet({ files: rest });
      process.stdout.write(`${rest.length} file(s), ${set.policies.length} policies: ok\n`);
      return 0;
    }
    if (verb === 'explain') return explain(rest);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    printProblems(err);
    return 1;
  }
  process.stderr.write(`usage:\n${POLICY_USAGE}`);
  return 2;
}

const ACTIONS: readonly PolicyAction[] = ['call_tool', 'list_tools', 'read_resource', 'get_prompt'];

function explain(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      agent: { type: 'string' },
      user: { type: 'string' },
      tenant: { type: 'string' },
      scope: { type: 'string', multiple: true },
      tool: { type: 'string' },
      args: { type: 'string' },
      action: { type: 'string', default: 'call_tool' },
      approved: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
    },
  });
  const action = values.action as PolicyAction;
  if (!values.agent || !values.tool || !ACTIONS.includes(action)) {
    process.stderr.write(`usage:\n${POLICY_USAGE}`);
    return 2;
  }
  let args: unknown;
  if (values.args !== undefined) {
    try {
      args = JSON.parse(values.args);
    } catch {
      process.stderr.write('gatehouse policy explain: --args is not valid JSON\n');
      return 2;
    }
  }
  const config = values.config ? configFor(values.config) : parseConfig(demoConfig());
  const log = pino({ level: 'silent' });
  const names = new Router(config, new Map(), log).names;
  const target = resolveName(names, values.tool);
  if (!target) {
    process.stderr.write(
      `gatehouse policy explain: no upstream serves \`${values.tool}\` (want <server>__<name>)\n`,
    );
    return 2;
  }
  const authorizer = new Authorizer(config, log);
  const principal: Principal = {
    agent: values.agent,
    user: values.user,
    subject: values.user ?? values.agent,
    actors: [],
    tenant: values.tenant,
    tokenId: undefined,
    issuer: 'explain',
    scopes: new Set(values.scope ?? []),
    authMethod: 'jwt',
    expiresAt: 0,
  };
  const attrs =
    action === 'call_tool' || action === 'list_tools'
      ? authorizer.toolAttributes(target.server, values.tool, undefined)
      : undefined;
  const d = authorizer.engine.decide({
    principal,
    grantId: 'explain',
    action,
    server: target.server,
    tool: target.name,
    approved: values.approved,
    ...(attrs ? { toolAttrs: attrs } : {}),
    ...(args !== undefined ? { args } : {}),
  });
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ ...d, tool: values.tool, server: target.server, attributes: attrs })}\n`,
    );
    return 0;
  }
  const lines = [
    `decision: ${d.effect}`,
    `policies: ${d.policies.length ? d.policies.join(', ') : d.effect === 'deny' ? '(none: deny by default)' : '-'}`,
  ];
  for (const id of d.policies) {
    const p = authorizer.engine.policySet.byId.get(id);
    if (p) lines.push(`  ${id}: ${p.effect}${p.approval ? ' (@approval)' : ''} at ${p.file}:${p.line}`);
  }
  if (d.errors.length) lines.push(`errors: ${d.errors.join('; ')}`);
  if (attrs) {
    lines.push(
      `tool: ${values.tool} on ${target.server}: risk ${attrs.risk ?? 'unknown'}, sideEffect ${attrs.sideEffect ?? 'unknown'}, ` +
        `owner ${attrs.owner ?? '-'}, server trusted ${attrs.serverTrusted === true}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
