import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import type { DecideOptions, PolicyAction } from '../policy/engine.ts';
import type { ListMethod } from '../protocol/lists.ts';
import { heldApproval } from '../rev2026/mrtr.ts';
import type { ListFilter } from '../session/router.ts';
import { awaitApproval } from './await-approval.ts';
import { callFacts } from './record-intent.ts';

/** Methods answered by the gateway itself or carrying no tool, prompt or resource: nothing to decide. */
const UNDECIDED = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/unsubscribe',
]);

/** A reference that finds the decision in logs and audit, without revealing anything to the client. */
function reference(): string {
  return `dec_${randomBytes(9).toString('base64url')}`;
}

/**
 * Least privilege per task (docs/policy.md): every operation on a tool, prompt or resource is decided
 * against the session's grant and the Cedar policies, deny by default.
 *
 * For `tools/call`, in this order: the grant must cover the tool; the arguments must match the tool's
 * `inputSchema` and the grant's argument constraints; then policy decides with the arguments. A
 * denial is `tool_not_permitted` (not "unknown tool", not invalid params) with a reference id.
 * `approval_required` holds the call for a human (stage await-approval, run from this branch only)
 * when approvers are configured, and fails closed otherwise. Methods the gateway cannot attribute to
 * a tool, prompt or resource are refused (fail closed).
 */
export function authorize(ctx: MessageContext): Outcome | Promise<Outcome> {
  const { session, msg } = ctx;
  const grant = session.grant;
  if (grant.ended) return new GatehouseError('grant_ended');
  grant.lastUsed = Date.now();
  if (UNDECIDED.has(msg.method)) return undefined;
  const target = ctx.target;
  if (target?.kind !== 'upstream') return undefined;
  const gw = ctx.http.gw;
  const principal = session.principal;
  const server = target.server;
  const exposed = target.target;

  const decideOn = (
    action: PolicyAction,
    name: string,
    args: unknown,
    opts?: DecideOptions,
  ): Outcome | Promise<Outcome> => {
    const attrs =
      action === 'call_tool'
        ? gw.authorizer.toolAttributes(server, exposed ?? name, session.toolDefs.get(server)?.get(name))
        : undefined;
    const d = gw.authorizer.decide(principal, grant, action, server, name, attrs, args, opts);
    if (d.effect === 'allow') {
      ctx.decision = { effect: 'allow', policies: d.policies };
      return undefined;
    }
    // ORDER: await-approval runs here, on this branch only: a call that needs no approval never pays
    // for it. A name no upstream offers (transient) is never held: nobody could approve what it is.
    if (
      d.effect === 'approval_required' &&
      action === 'call_tool' &&
      !opts?.transient &&
      gw.approvals?.enabled
    ) {
      // MCP 2026-07-28: the retry of a held call (its requestState checked) continues the call a human
      // already approved; policy decides again with context.approved, as at an approval's release.
      const carried = session.modern ? heldApproval(session, msg, exposed ?? '') : undefined;
      if (carried) {
        const again = gw.authorizer.decide(principal, grant, action, server, name, attrs, args, opts, true);
        if (again.effect === 'allow') {
          ctx.decision = { effect: 'allow', policies: again.policies, approval: carried };
          return undefined;
        }
      }
      return awaitApproval(ctx, { name, args, policies: d.policies }, (policies) =>
        deny(ctx, 'tool_not_permitted', { action, name: exposed ?? name, policies }),
      );
    }
    return deny(ctx, d.effect === 'deny' ? 'tool_not_permitted' : 'approval_required', {
      action,
      name: exposed ?? name,
      policies: d.policies,
      errors: d.errors,
    });
  };

  switch (msg.method) {
    case 'tools/call': {
      const name = target.params?.name as string;
      if (!grant.coversTool(exposed as string)) {
        return deny(ctx, 'tool_not_permitted', {
          action: 'call_tool',
          name: exposed,
          policies: ['grant:tools'],
        });
      }
      const args = target.params?.arguments;
      const defs = session.toolDefs.get(server);
      if (defs === undefined) {
        // First call on this server without a listing: learn the definitions, then decide.
        return gw.router.loadToolDefs(session, server).then(
          () => checkCall(ctx, name, args, decideOn),
          (err: unknown) => (err instanceof GatehouseError ? err : new GatehouseError('upstream_failed')),
        );
      }
      return checkCall(ctx, name, args, decideOn);
    }
    case 'prompts/get': {
      const name = target.params?.name as string;
      const out = decideOn('get_prompt', name, target.params?.arguments);
      // T14: a prompt whose newest listing is not the approved pin is refused until approved (said only
      // to a principal policy allows the prompt to: anyone else got the denial above).
      const pins = gw.router.pins;
      if (out === undefined && pins !== undefined && !pins.promptUsable(server, name))
        return new GatehouseError(
          'tool_quarantined',
          `prompt \`${exposed ?? name}\` is quarantined: its definition is new or changed and waits for approval`,
        );
      return out;
    }
    case 'resources/read':
    case 'resources/subscribe':
      return decideOn('read_resource', exposed as string, undefined);
    case 'completion/complete': {
      const ref = target.params?.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
      if (ref?.type === 'ref/prompt') return decideOn('get_prompt', ref.name as string, undefined);
      return decideOn('read_resource', exposed as string, undefined);
    }
    default:
      return deny(ctx, 'tool_not_permitted', {
        action: msg.method,
        name: undefined,
        policies: ['gateway:unknown-method'],
      });
  }
}

function checkCall(
  ctx: MessageContext,
  name: string,
  args: unknown,
  decideOn: (
    action: PolicyAction,
    name: string,
    args: unknown,
    opts?: DecideOptions,
  ) => Outcome | Promise<Outcome>,
): Outcome | Promise<Outcome> {
  const { session } = ctx;
  const target = ctx.target as { server: string; target: string | undefined };
  const exposed = target.target as string;
  const def = session.toolDefs.get(target.server)?.get(name);
  if (def === undefined) {
    // The upstream does not offer it. Say so only to a principal policy could allow it to: to anyone
    // else "not found" and "not permitted" look the same, so names cannot be probed (T-list oracle).
    const gw = ctx.http.gw;
    const attrs = gw.authorizer.toolAttributes(target.server, exposed, undefined);
    // A made-up name's decisions go to the engine's small transient cache (never evicting real ones).
    const transient = { transient: true };
    if (
      gw.authorizer.mayAllow(
        session.principal,
        session.grant.id,
        'call_tool',
        target.server,
        name,
        attrs,
        transient,
      )
    )
      return new GatehouseError('unknown_tool', `tool \`${exposed}\` not found`);
    return decideOn('call_tool', name, args, transient);
  }
  // T13/T14: a definition that is not the approved pin (new or changed) is refused until an admin approves
  // it. Said only to a principal policy could allow the tool to; anyone else gets the usual denial.
  const pins = ctx.http.gw.router.pins;
  if (pins !== undefined && !pins.callable(target.server, name, def)) {
    const gw = ctx.http.gw;
    const quarantined = new GatehouseError(
      'tool_quarantined',
      `tool \`${exposed}\` is quarantined: its definition is new or changed and waits for approval`,
    );
    const attrs = gw.authorizer.toolAttributes(target.server, exposed, def);
    if (gw.authorizer.mayAllow(session.principal, session.grant.id, 'call_tool', target.server, name, attrs))
      return quarantined;
    // INVARIANT: never forwarded, whatever policy says about these arguments.
    const out = decideOn('call_tool', name, args);
    return out instanceof Promise ? out.then((o) => o ?? quarantined) : (out ?? quarantined);
  }
  if (args !== undefined && (args === null || typeof args !== 'object' || Array.isArray(args))) {
    return new GatehouseError('invalid_arguments', 'params.arguments must be an object');
  }
  const problems = ctx.http.gw.authorizer.checkArguments(def, args);
  if (problems) {
    const first = problems[0];
    return new GatehouseError(
      'invalid_arguments',
      `invalid arguments for ${exposed}: ${first ? `${first.path} ${first.message}` : 'rejected'}`,
      { data: { problems } },
    );
  }
  const violated = session.grant.violatedConstraint(exposed, args as Record<string, unknown> | undefined);
  if (violated !== undefined) {
    return deny(ctx, 'tool_not_permitted', {
      action: 'call_tool',
      name: exposed,
      policies: [`grant:arguments.${violated}`],
    });
  }
  return decideOn('call_tool', name, args);
}

/** The public message of a refusal whose record could not be written (the usual one says "quote data.reference"). */
const NO_RECORD = {
  tool_not_permitted: 'this call is outside the grant or denied by policy; no audit record could be written',
  approval_required: 'policy requires a human approval for this call; no audit record could be written',
} as const;

/**
 * The denial: logged and audited with everything an investigator needs; the client learns only the
 * reference, and only once the decision record is written (T32): a reference whose record never
 * made it would send an investigator looking for nothing. When the audit cannot write it, the
 * answer carries no reference and says `audit: 'unavailable'` (the call is refused either way).
 */
function deny(
  ctx: MessageContext,
  code: 'tool_not_permitted' | 'approval_required',
  d: { action: string; name: string | undefined; policies: readonly string[]; errors?: readonly string[] },
): GatehouseError | Promise<GatehouseError> {
  const ref = reference();
  const { session } = ctx;
  const p = session.principal;
  const effect = code === 'tool_not_permitted' ? 'deny' : 'approval_required';
  ctx.http.log.info(
    {
      reference: ref,
      requestId: ctx.http.requestId,
      grant: session.grant.id,
      session: session.id,
      agent: p.agent,
      user: p.user,
      action: d.action,
      tool: d.name,
      decision: effect,
      policies: d.policies,
      ...(d.errors?.length ? { policyErrors: d.errors } : {}),
    },
    'call refused by policy',
  );
  const target = ctx.target;
  // Unreachable today (authorize decides upstream targets only); nothing is recorded, so no reference.
  if (target?.kind !== 'upstream')
    return new GatehouseError(code, NO_RECORD[code], { data: { audit: 'unavailable' } });
  ctx.http.gw.metrics.call(
    target.server,
    target.target ?? ctx.msg.method,
    effect === 'deny' ? 'deny' : 'approve',
    'rejected',
    0,
  );
  return ctx.http.gw.audit
    .refused(callFacts(ctx, target), { effect, policies: d.policies, reference: ref })
    .then(
      () => new GatehouseError(code, undefined, { data: { reference: ref } }),
      () => new GatehouseError(code, NO_RECORD[code], { data: { audit: 'unavailable' } }),
    );
}

/**
 * What a list shows (tools/list, prompts/list, resources/list, resources/templates/list): only what the
 * grant could use. A tool is shown when the grant covers it, `list_tools` allows it, and `call_tool`
 * can allow it for some arguments, so an agent never sees a tool that would always be refused.
 */
export function visibleTo(ctx: MessageContext, method: ListMethod): ListFilter {
  const { session } = ctx;
  const { authorizer } = ctx.http.gw;
  const grant = session.grant;
  const p = session.principal;
  switch (method) {
    case 'tools/list':
      return (server, item, exposed) => {
        const name = item.name as string;
        const exposedName = exposed.name as string;
        if (!grant.coversTool(exposedName)) return false;
        const attrs = authorizer.toolAttributes(server, exposedName, item);
        return (
          authorizer.decide(p, grant, 'list_tools', server, name, attrs, undefined).effect === 'allow' &&
          authorizer.mayAllow(p, grant.id, 'call_tool', server, name, attrs)
        );
      };
    case 'prompts/list':
      return (server, item) =>
        authorizer.mayAllow(p, grant.id, 'get_prompt', server, String(item.name), undefined);
    case 'resources/list':
      return (server, item) =>
        authorizer.mayAllow(p, grant.id, 'read_resource', server, String(item.uri), undefined);
    case 'resources/templates/list':
      return (server, item) =>
        authorizer.mayAllow(p, grant.id, 'read_resource', server, String(item.uriTemplate), undefined);
  }
}
