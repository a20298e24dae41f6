/**
 * The outgoing approval webhook (docs/approvals.md, *Webhook*): a JSON message per approval event
 * (requested, granted, denied, expired), so a team can wire chat or ticketing. A message informs; it
 * never carries the power to approve (no token, no link that decides): decisions are made through an
 * authenticated channel only.
 *
 * Each delivery is signed: `gatehouse-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
 * with `gatehouse-timestamp` (epoch seconds), so a receiver checks both who sent it and when (a replay
 * of an old signed body fails {@link verifyWebhook}'s tolerance). Sent through the SSRF-guarded
 * outbound client (HTTPS only; private and loopback addresses refused unless `allowLoopbackHttp`, for
 * development), never following redirects, retried with exponential backoff, re-signed per attempt.
 * Delivery never delays or fails a call.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { OutboundClient, OutboundError } from '../secrets/outbound.ts';
import type { ApprovalRecord } from '../storage/types.ts';

/** The approval events a webhook receives. */
export type WebhookEventType =
  | 'approval.requested'
  | 'approval.granted'
  | 'approval.denied'
  | 'approval.expired';

/** One configured receiver (config `approvals.webhooks[]`, secret resolved). */
export interface WebhookTarget {
  readonly url: string;
  readonly secret: string;
  /** Development only: plain http and loopback addresses (nothing else private). */
  readonly allowLoopbackHttp: boolean;
}

/** Delivery options. */
export interface WebhookOptions {
  /** Attempts per message (the first included). */
  readonly attempts: number;
  /** Wait before the second attempt; doubled for each later one. */
  readonly retryBaseMs: number;
  /** Applied to the body before it is signed (the leak guard: brokered secrets never leave in a message). */
  readonly redact?: (text: string) => string;
  /** Name resolution (tests). */
  readonly resolve?: (hostname: string) => Promise<string[]>;
}

/** Header names of a delivery. */
export const WEBHOOK_HEADERS = {
  signature: 'gatehouse-signature',
  timestamp: 'gatehouse-timestamp',
  event: 'gatehouse-event',
  delivery: 'gatehouse-delivery',
} as const;

/** `v1=<hex>`: HMAC-SHA256 under `secret` of `<timestamp>.<body>`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What {@link verifyWebhook} concluded. */
export type WebhookVerdict = 'ok' | 'malformed' | 'bad_signature' | 'stale';

/**
 * The receiver's check: the signature over the timestamp and the raw body, in constant time, and the
 * timestamp within `toleranceSec` (default 300) of `now` (epoch seconds): an old signed body replayed
 * later is `stale`.
 */
export function verifyWebhook(
  secret: string,
  body: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  opts: { now?: number; toleranceSec?: number } = {},
): WebhookVerdict {
  const ts = headers.timestamp;
  if (ts === undefined || !/^\d{1,12}$/.test(ts) || headers.signature === undefined) return 'malformed';
  const expected = Buffer.from(signWebhook(secret, Number(ts), body));
  const given = Buffer.from(headers.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad_signature';
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(ts)) > (opts.toleranceSec ?? 300)) return 'stale';
  return 'ok';
}

/** The message body of an approval event: what the approver would see, never a way to decide. */
export function webhookMessage(type: WebhookEventType, r: ApprovalRecord, id: string, time: number): string {
  let args: unknown;
  try {
    args = JSON.parse(r.arguments);
  } catch {
    args = r.arguments;
  }
  return JSON.stringify({
    v: 1,
    id,
    type,
    time,
    approval: {
      id: r.id,
      state: r.state,
      server: r.server,
      tool: r.tool,
      grant: r.grantId,
      requester: { agent: r.agent, user: r.user, tenant: r.tenant, actors: r.actors },
      owner: r.owner,
      arguments: args,
      definitionHash: r.definitionHash,
      policies: r.policies,
      attributes: r.attributes,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      decision: r.decision,
      approver: r.decidedBy,
      reason: r.reason,
      channel: r.channel,
    },
  });
}

/** The webhook senders of one gateway. */
export class ApprovalWebhooks {
  readonly #targets: { target: WebhookTarget; client: OutboundClient }[];
  /** Retries waiting for their turn, and how to wake them early. */
  readonly #sleeping = new Map<NodeJS.Timeout, () => void>();
  #closed = false;

  constructor(
    targets: readonly WebhookTarget[],
    private readonly opts: WebhookOptions,
    private readonly log: Logger,
  ) {
    this.#targets = targets.map((target) => ({
      target,
      client: new OutboundClient({
        allowLoopbackHttp: target.allowLoopbackHttp,
        maxBytes: 16 * 1024,
        ...(opts.resolve ? { resolve: opts.resolve } : {}),
      }),
    }));
  }

  get size(): number {
    return this.#targets.length;
  }

  /** Sends the event to every receiver in the background (failures are logged). */
  notify(type: WebhookEventType, r: ApprovalRecord): void {
    this.send(type, r).catch(() => {});
  }

  /**
   * Sends the event to every receiver; resolves when each accepted it (2xx), rejects with the first
   * failure once every delivery settled (each failure is logged).
   */
  async send(type: WebhookEventType, r: ApprovalRecord): Promise<void> {
    if (this.#closed) return;
    const id = randomUUID();
    const raw = webhookMessage(type, r, id, Date.now());
    const body = this.opts.redact ? this.opts.redact(raw) : raw;
    const results = await Promise.allSettled(
      this.#targets.map((t) => this.#deliver(t.target, t.client, type, id, body)),
    );
    let first: unknown;
    results.forEach((res, i) => {
      if (res.status === 'fulfilled') return;
      first ??= res.reason;
      this.log.warn(
        {
          err: res.reason instanceof Error ? res.reason.message : String(res.reason),
          approval: r.id,
          type,
          webhook: origin(this.#targets[i]?.target.url ?? ''),
        },
        'approval webhook not delivered',
      );
    });
    if (first !== undefined) throw first;
  }

  /**
   * One message to one receiver: up to `attempts` tries, each signed anew, waiting `retryBaseMs`,
   * then twice that, … between them. Resolves on a 2xx answer; rejects with the last failure. A target
   * the outbound guard refuses (scheme, blocked address) is not retried: it cannot change.
   */
  async #deliver(
    target: WebhookTarget,
    client: OutboundClient,
    type: WebhookEventType,
    id: string,
    body: string,
  ): Promise<void> {
    let last: unknown;
    for (let attempt = 1; attempt <= this.opts.attempts && !this.#closed; attempt++) {
      if (attempt > 1) await this.#sleep(this.opts.retryBaseMs * 2 ** (attempt - 2));
      const timestamp = Math.floor(Date.now() / 1000);
      try {
        const res = await client.postJson(target.url, body, {
          headers: {
            [WEBHOOK_HEADERS.signature]: signWebhook(target.secret, timestamp, body),
            [WEBHOOK_HEADERS.timestamp]: String(timestamp),
            [WEBHOOK_HEADERS.event]: type,
            [WEBHOOK_HEADERS.delivery]: id,
          },
        });
        if (res.status >= 200 && res.status < 300) return;
        last = new Error(`status ${res.status}`);
      } catch (err) {
        if (err instanceof OutboundError && ['bad_url', 'scheme', 'blocked_address'].includes(err.code))
          throw err;
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error('approval webhook not delivered (gateway stopping)');
  }

  /** Stops retries: those waiting for their turn give up now. */
  close(): void {
    this.#closed = true;
    for (const [t, wake] of this.#sleeping) {
      clearTimeout(t);
      wake();
    }
    this.#sleeping.clear();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#sleeping.delete(t);
        resolve();
      }, ms);
      this.#sleeping.set(t, resolve);
    });
  }
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid url';
  }
}
