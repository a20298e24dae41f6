/**
 * The gateway's side of approvals: makes approval requests for held calls, waits for their decision,
 * consumes approvals (single use), and keeps the store, the audit log and the metric in step.
 *
 * Decisions are made in the store by any channel (the CLI, another gateway, later the console), so
 * this gateway learns of them by polling it every 250 ms, as grants and token revocations do: expired
 * requests are marked and recorded, decisions not yet announced by any gateway are claimed (once),
 * recorded with their approver, and the calls waiting for them are woken. Nothing here runs for calls
 * that need no approval.
 */
import type { Logger } from 'pino';
import type { AuditRecorder, CallFacts } from '../audit/recorder.ts';
import type { ApprovalsConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { ApprovalRecord, ApprovalRepo } from '../storage/types.ts';
import {
  type ApprovalBinding,
  type ApprovalSubject,
  bindApproval,
  newApprovalId,
  UNDECIDED,
} from './binding.ts';
import type { WebhookEventType } from './webhook.ts';

/** How often the store is read for decisions and expiry. */
const POLL_MS = 250;

/** How a wait for a decision ended. */
export type WaitResult =
  | { readonly kind: 'decided'; readonly record: ApprovalRecord }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'aborted' };

/** What {@link ApprovalManager.lookup} found for a call's binding. */
export type Lookup =
  /** An approval for exactly this call, consumed now by this caller. */
  | { readonly kind: 'consumed'; readonly record: ApprovalRecord }
  /** A denial of exactly this call that has not expired. */
  | { readonly kind: 'denied'; readonly record: ApprovalRecord }
  /** A request for exactly this call is waiting (made now, or earlier by the same call). */
  | { readonly kind: 'pending'; readonly record: ApprovalRecord; readonly created: boolean };

interface Waiter {
  readonly resolve: (r: WaitResult) => void;
  /** True when the wait should end early (the grant ended, the client went away). */
  readonly aborted: () => boolean;
}

/** Approval requests, decisions and single-use consumption for one gateway (see the module comment). */
export class ApprovalManager {
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Lookups in progress by binding digest: identical calls at once share one request, never make two. */
  readonly #looking = new Map<string, Promise<Lookup>>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(
    private readonly repo: ApprovalRepo,
    readonly config: ApprovalsConfig,
    private readonly audit: AuditRecorder,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    /** Told of every request made here, decision announced here and expiry found here (the webhooks). */
    private readonly notify: (type: WebhookEventType, record: ApprovalRecord) => void = () => {},
  ) {}

  /** Whether anyone can approve: without approvers a held call fails closed with approval_required. */
  get enabled(): boolean {
    return this.config.approvers.length > 0;
  }

  /**
   * Starts polling the store (decisions made elsewhere, expiry); announces what happened while stopped.
   * Without approvers nothing is ever requested or decided, so nothing is polled.
   */
  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.poll();
    this.#timer = setInterval(() => void this.poll(), POLL_MS);
    this.#timer.unref();
  }

  /** Stops polling; waiting calls end as if their hold ran out (the requests stay in the store). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const set of this.#waiters.values()) for (const w of set) w.resolve({ kind: 'timeout' });
    this.#waiters.clear();
  }

  /**
   * The approval state of one call: consumes an approval bound to exactly this call if there is one
   * (single use: of two identical calls, one gets it), reports a live denial, or finds or makes the
   * pending request (recorded in the audit log before anyone is told of it).
   */
  async lookup(
    subject: ApprovalSubject,
    facts: CallFacts,
    why: { policies: readonly string[]; attributes: Record<string, unknown> },
  ): Promise<Lookup> {
    const binding = bindApproval(subject);
    // Identical calls at the same moment: the second waits for the first's lookup, then looks again
    // (it then finds the first's request, or an approval the first did not use).
    for (let busy = this.#looking.get(binding.digest); busy; busy = this.#looking.get(binding.digest))
      await busy.catch(() => undefined);
    const p = this.#lookup(binding, subject, facts, why);
    this.#looking.set(binding.digest, p);
    try {
      return await p;
    } finally {
      if (this.#looking.get(binding.digest) === p) this.#looking.delete(binding.digest);
    }
  }

  async #lookup(
    binding: ApprovalBinding,
    subject: ApprovalSubject,
    facts: CallFacts,
    why: { policies: readonly string[]; attributes: Record<string, unknown> },
  ): Promise<Lookup> {
    const now = Date.now();
    const latest = await this.repo.latestByDigest(binding.digest);
    if (latest !== undefined && latest.expiresAt > now) {
      if (latest.state === 'approved' && (await this.repo.consume(latest.id, now))) {
        const record = { ...latest, state: 'consumed' as const, consumedAt: now };
        // ORDER: the decision is recorded before its use (it may not have been announced yet).
        await audited(this.announce(record));
        await audited(this.audit.approvalConsumed(facts, record));
        return { kind: 'consumed', record };
      }
      if (latest.state === 'denied') {
        await audited(this.announce(latest));
        return { kind: 'denied', record: latest };
      }
      if (latest.state === 'pending') return { kind: 'pending', record: latest, created: false };
    }
    const p = facts.principal;
    const record: ApprovalRecord = {
      id: newApprovalId(),
      digest: binding.digest,
      state: 'pending',
      grantId: subject.grantId,
      sessionId: facts.sessionId,
      agent: p.agent,
      user: p.user,
      tenant: p.tenant,
      actors: [...p.actors],
      owner: facts.owner,
      server: subject.server,
      tool: subject.tool,
      arguments: binding.arguments,
      definitionHash: binding.definitionHash,
      policies: [...why.policies],
      attributes: why.attributes,
      createdAt: now,
      expiresAt: now + this.config.ttlSec * 1000,
      ...UNDECIDED,
    };
    // ORDER: audit first: a request that is not in the audit log is never offered to an approver.
    await audited(this.audit.approvalRequested(facts, record));
    await this.repo.insert(record);
    this.notify('approval.requested', record);
    this.log.info(
      {
        approval: record.id,
        grant: record.grantId,
        agent: record.agent,
        user: record.user,
        tool: record.tool,
      },
      'call held for approval',
    );
    void this.refreshPending();
    return { kind: 'pending', record, created: true };
  }

  /**
   * Waits until request `id` is decided or expires (then `decided` with its record), the hold of `ms`
   * ends (`timeout`), or `aborted()` holds at a poll (`aborted`).
   */
  wait(id: string, ms: number, aborted: () => boolean): Promise<WaitResult> {
    if (ms <= 0) return Promise.resolve({ kind: 'timeout' });
    return new Promise<WaitResult>((resolve) => {
      let set = this.#waiters.get(id);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      const waiters = set;
      const timer = setTimeout(() => done({ kind: 'timeout' }), ms);
      const waiter: Waiter = { resolve: (r) => done(r), aborted };
      const done = (r: WaitResult): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.#waiters.get(id) === waiters) this.#waiters.delete(id);
        resolve(r);
      };
      waiters.add(waiter);
    });
  }

  /** Wakes the calls waiting for `record` (it is no longer pending). */
  #wake(record: ApprovalRecord): void {
    const set = this.#waiters.get(record.id);
    if (set === undefined) return;
    for (const w of [...set]) w.resolve({ kind: 'decided', record });
  }

  /** Records a decision once across gateways (the one that claims it writes the audit event). */
  async announce(record: ApprovalRecord): Promise<void> {
    if (record.decision === undefined) return;
    if (!(await this.repo.announce(record.id))) return;
    await this.audit.approvalDecided(record);
    this.notify(record.decision === 'approved' ? 'approval.granted' : 'approval.denied', record);
    this.log.info(
      { approval: record.id, decision: record.decision, approver: record.decidedBy, channel: record.channel },
      'approval decided',
    );
  }

  /** One round: expiry, decisions made elsewhere, waiting calls, the pending gauge. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const now = Date.now();
      for (const id of await this.repo.expire(now)) {
        const r = await this.repo.get(id);
        if (r === undefined) continue;
        this.audit.approvalExpired(r);
        this.notify('approval.expired', r);
        this.#wake(r);
      }
      for (const r of await this.repo.unannounced()) {
        await this.announce(r).catch((err: unknown) =>
          this.log.error({ err, approval: r.id }, 'approval decision could not be recorded'),
        );
      }
      for (const [id, set] of [...this.#waiters]) {
        for (const w of [...set]) if (w.aborted()) w.resolve({ kind: 'aborted' });
        if (!this.#waiters.has(id)) continue;
        const r = await this.repo.get(id);
        if (r !== undefined && r.state !== 'pending') this.#wake(r);
      }
      await this.refreshPending();
    } catch (err) {
      this.log.error({ err }, 'approval poll failed');
    } finally {
      this.#polling = false;
    }
  }

  async refreshPending(): Promise<void> {
    this.metrics.setPendingApprovals(await this.repo.countPending());
  }
}

/** An awaited audit append; a failure refuses the call as audit_unavailable (fail closed). */
async function audited(append: Promise<void>): Promise<void> {
  try {
    await append;
  } catch (err) {
    throw new GatehouseError('audit_unavailable', undefined, {
      detail: err instanceof Error ? err.message : String(err),
    });
  }
}
