import type { Lookup } from '../approvals/manager.ts';
import { GatehouseError } from '../errors.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import type { ToolDefinition } from '../policy/authorizer.ts';
import type { ToolAttributes } from '../policy/engine.ts';
import { callFacts } from './record-intent.ts';

/** What authorize knows of a call that policy holds for approval. */
export interface HeldCall {
  /** The tool as the upstream knows it. */
  readonly name: string;
  readonly args: unknown;
  /** The deciding policies (the `@approval` forbids, then the permits that allow once approved). */
  readonly policies: readonly string[];
}

/** How authorize refuses a call (logged, audited, with a reference): handed in, so stages never import each other in a circle. */
export type Refuse = (policies: readonly string[]) => GatehouseError | Promise<GatehouseError>;

/**
 * Stage `await-approval`, run by authorize only on its `approval_required` branch (so calls that need
 * no approval never pay for it): holds the call until a human decides (docs/approvals.md).
 *
 * The call is bound to a digest of (grant, server, tool, the tool's definition hash, canonical
 * arguments). An approval of exactly that digest, not expired and not yet used, is consumed (single
 * use) and the call goes on, after policy decides again with `context.approved = true`. Otherwise the
 * pending request for that digest is found or made (audited first) and the call waits up to
 * `approvals.holdSec`, with progress notifications when the client sent a progressToken. Denied:
 * `approval_denied`; expired: `approval_expired`; still undecided when the hold ends (or the client
 * went away): `approval_pending`, and the identical call retried later under the same grant consumes
 * the approval once given. Each error carries `data.approval`, the request's id.
 */
export async function awaitApproval(ctx: MessageContext, held: HeldCall, refuse: Refuse): Promise<Outcome> {
  const { session, http } = ctx;
  const gw = http.gw;
  const approvals = gw.approvals;
  const target = ctx.target;
  if (approvals === undefined || target?.kind !== 'upstream')
    return new GatehouseError('internal', undefined, { detail: 'await-approval without approvals' });
  const server = target.server;
  const exposed = target.target ?? held.name;
  const facts = callFacts(ctx, target);
  const deadline = Date.now() + approvals.config.holdSec * 1000;
  const progress = new Progress(ctx, approvals.config.progressIntervalSec * 1000);
  let gone = false;
  const onClose = (): void => {
    gone = true;
  };
  http.res.once('close', onClose);
  const stopped = (): boolean => gone || session.grant.ended || session.closed !== undefined;
  try {
    for (;;) {
      if (session.grant.ended) return new GatehouseError('grant_ended');
      // The definition as the gateway knows it now: a list_changed notification forgets it, and an
      // approval given for the old definition no longer applies (T25).
      if (!session.toolDefs.has(server)) {
        const failed = await gw.router.loadToolDefs(session, server).then(
          () => undefined,
          (err: unknown) => (err instanceof GatehouseError ? err : new GatehouseError('upstream_failed')),
        );
        if (failed) return failed;
      }
      const def = session.toolDefs.get(server)?.get(held.name);
      if (def === undefined) return new GatehouseError('unknown_tool', `tool \`${exposed}\` not found`);
      const attrs = gw.authorizer.toolAttributes(server, exposed, def);
      const found: Lookup = await approvals.lookup(
        { grantId: session.grant.id, server, tool: exposed, definition: def, args: held.args },
        facts,
        { policies: held.policies, attributes: attributesOf(attrs) },
      );
      const id = found.record.id;
      if (found.kind === 'consumed') return release(ctx, held, attrs, def, found, refuse);
      if (found.kind === 'denied') return approvalError('approval_denied', id);
      progress.start(`waiting for approval ${id}`);
      const r = await approvals.wait(id, deadline - Date.now(), stopped);
      if (r.kind !== 'decided') {
        if (session.grant.ended) return new GatehouseError('grant_ended');
        return approvalError('approval_pending', id, { expiresAt: found.record.expiresAt });
      }
      if (r.record.state === 'denied') return approvalError('approval_denied', id);
      if (r.record.state === 'expired') return approvalError('approval_expired', id);
      // Approved (or used by an identical call meanwhile): look again, which consumes it or asks anew.
    }
  } finally {
    progress.stop();
    http.res.off('close', onClose);
  }
}

/** The approved call goes on: its arguments still fit the definition, and policy allows it as approved. */
function release(
  ctx: MessageContext,
  held: HeldCall,
  attrs: ToolAttributes,
  def: ToolDefinition,
  found: Extract<Lookup, { kind: 'consumed' }>,
  refuse: Refuse,
): Outcome | Promise<Outcome> {
  const { session } = ctx;
  const gw = ctx.http.gw;
  const target = ctx.target as { server: string };
  if (gw.authorizer.checkArguments(def, held.args))
    return new GatehouseError(
      'invalid_arguments',
      "the tool arguments no longer match the tool's inputSchema",
    );
  // ORDER: re-checked at release with context.approved = true: a policy reloaded while the call waited,
  // or a forbid that an approval does not lift, still refuses it.
  const d = gw.authorizer.decide(
    session.principal,
    session.grant,
    'call_tool',
    target.server,
    held.name,
    attrs,
    held.args,
    undefined,
    true,
  );
  if (d.effect !== 'allow') return refuse(d.policies);
  const r = found.record;
  ctx.decision = {
    effect: 'allow',
    policies: d.policies,
    approval: { id: r.id, approver: r.decidedBy, reason: r.reason },
  };
  return undefined;
}

function approvalError(
  code: 'approval_pending' | 'approval_denied' | 'approval_expired',
  id: string,
  extra: Record<string, unknown> = {},
): GatehouseError {
  const e = new GatehouseError(code, undefined, { data: { approval: id, ...extra } });
  e.stage = 'await-approval';
  return e;
}

/** Tool attributes as a plain record for the request (what the approver sees). */
function attributesOf(a: ToolAttributes): Record<string, unknown> {
  return { ...a, annotations: { ...a.annotations } };
}

/**
 * MCP progress while a call waits ("The receiver MAY send progress notifications"; each `progress`
 * value increases): one at once naming the approval, then one per interval, only when the client
 * sent a progressToken and is still waiting for this answer.
 */
class Progress {
  readonly #token: string | number | undefined;
  #n = 0;
  #timer: NodeJS.Timeout | undefined;
  #message = '';

  constructor(
    private readonly ctx: MessageContext,
    private readonly everyMs: number,
  ) {
    const meta = ctx.msg.params?._meta as { progressToken?: unknown } | undefined;
    const t = meta?.progressToken;
    this.#token = typeof t === 'string' || typeof t === 'number' ? t : undefined;
  }

  start(message: string): void {
    if (this.#token === undefined) return;
    if (message !== this.#message) {
      this.#message = message;
      this.#send();
    }
    this.#timer ??= setInterval(() => this.#send(), this.everyMs);
  }

  #send(): void {
    const { exchange, session } = this.ctx;
    if (this.#token === undefined || !exchange.open) return;
    const out = session.serialize({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: this.#token, progress: ++this.#n, message: this.#message },
    });
    if (out.json) exchange.deliver(out.msg, out.json);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
