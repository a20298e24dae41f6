/**
 * What every family shares: the probe an input becomes, what its oracles expect, and the context
 * (tokens, sessions in fixed slots, limits) generators draw on. A generator takes its randomness only
 * from its Rng, so the same (seed, family, index) gives the same input against any gateway.
 */
import type { FuzzLimits, GatewayUnderTest, TokenKind } from './gateway.ts';
import type { Rng } from './rng.ts';
import { buildRequest, exchange, type WireRequest, type WireResult } from './wire.ts';

/** What the oracles expect of one probe's answer. */
export interface Expect {
  /** Give up (and fail `hang`) after this long. */
  deadlineMs: number;
  /** The target is /mcp: every error must be a documented Gatehouse error. */
  mcp: boolean;
  /** The request is well-framed HTTP (so Node's own parser must not reject it, and it must be answered). */
  wellFormed: boolean;
  /** JSON-RPC requests in the body that must each get an answer (JSON values as sent). */
  requestIds?: unknown[];
  /** The body holds only notifications/responses: 202 expected when the exchange succeeds. */
  onlyNotifications?: boolean;
  /** upstream_timeout / upstream_failed / upstream_unavailable are legitimate (slow tool, client never answers). */
  upstreamErrorsOk?: boolean;
  /** Sent without a valid token (a 401 is the expected answer; counted for the audit-amplification oracle). */
  unauthenticated?: boolean;
  /** 5xx allowed here (e.g. the gateway is documented to answer 503 for this). */
  allow5xx?: readonly string[];
}

/** One input on the wire. */
export interface Probe {
  /** Generator label, e.g. `tools/call name=proto` (findings are deduplicated on it). */
  label: string;
  wire: WireRequest;
  expect: Expect;
  /** Runs after the answer (e.g. DELETE a session the input created). */
  after?: (res: WireResult) => Promise<void>;
  /** The session slot used, so a lost session is re-opened. */
  slot?: number;
  /** The session id sent (with `slot`). */
  sessionId?: string;
}

/** A request held partial on purpose: the oracle is how long the gateway keeps it open. */
export interface StallProbe {
  label: string;
  /** Bytes sent; the rest never comes. */
  wire: WireRequest;
}

/** A family: an input generator and its sender. */
export interface Family {
  readonly name: string;
  /** Measure heap after GC before and after the family against the bytes it sent (oracle `heap`). */
  readonly measureRetention?: boolean;
  /** One-time setup before the family's inputs (discover endpoints, open interactions). */
  prepare?(ctx: FuzzContext): Promise<void>;
  /** Input `index`: one probe, or several sent at the same moment. */
  generate(rng: Rng, ctx: FuzzContext, index: number): Promise<Probe[]>;
  /** Partial requests launched at the start of the run (answered or closed within the stall bound). */
  stalls?(ctx: FuzzContext): Promise<StallProbe[]>;
}

/** A session the fuzzer keeps open for generators to use. */
export interface SessionSlot {
  id: string;
  protocolVersion: string;
  token: TokenKind;
}

/** Fixed session slots: which token and protocol revision each uses. */
export const SLOTS: readonly { token: TokenKind; version: string }[] = [
  { token: 'agent', version: '2025-11-25' },
  { token: 'agent', version: '2025-06-18' },
  { token: 'agent', version: '2025-03-26' },
  { token: 'narrow', version: '2025-11-25' },
  { token: 'admin', version: '2025-11-25' },
];

/** The slot whose protocol revision still allows batches. */
export const BATCH_SLOT = 2;

/** Client capabilities the fuzzer declares (so upstreams send sampling/elicitation/roots requests). */
export const CLIENT_CAPABILITIES = {
  sampling: {},
  elicitation: { form: {}, url: {} },
  roots: { listChanged: true },
};

/** Everything a generator may use. */
export class FuzzContext {
  private sessions = new Map<number, Promise<SessionSlot>>();
  /** Sessions opened, for the summary. */
  sessionsOpened = 0;
  private checks = 0;
  /** AS metadata (filled by the oauth family's prepare, or lazily). */
  asMetadata: Record<string, unknown> | undefined;

  constructor(
    readonly gw: GatewayUnderTest,
    /** Added to every configured limit to get a deadline. */
    readonly slackMs: number,
  ) {}

  /** The limits the gateway runs with. */
  get limits(): FuzzLimits {
    return this.gw.limits;
  }

  /** Largest "huge" string a generator makes (fits in maxRequestBytes with room to spare). */
  get maxBig(): number {
    return Math.floor(this.limits.maxRequestBytes * 0.6);
  }

  /** Deadline of a /mcp POST: a call may run maxCallMs when it reports progress. */
  get mcpDeadline(): number {
    return this.limits.maxCallMs + this.slackMs;
  }

  /** Deadline of an initialize (a cold upstream start). */
  get initDeadline(): number {
    return this.limits.initializeTimeoutMs + this.slackMs;
  }

  /** Deadline of anything that does no upstream work (errors, metadata, the authorization server). */
  get quickDeadline(): number {
    return 2000 + this.slackMs;
  }

  /** `host:port` of the gateway. */
  get host(): string {
    return `127.0.0.1:${this.gw.port}`;
  }

  token(kind: TokenKind): Promise<string> {
    return this.gw.token(kind);
  }

  /** The session in `slot`, opened (initialize + initialized) on first use or after it was lost. */
  session(slot: number): Promise<SessionSlot> {
    let s = this.sessions.get(slot);
    if (!s) {
      const spec = SLOTS[slot];
      if (!spec) throw new Error(`no session slot ${slot}`);
      s = this.open(spec.token, spec.version);
      this.sessions.set(slot, s);
      s.catch(() => this.sessions.delete(slot));
    }
    return s;
  }

  /** Forgets a slot's session (it ended or was refused); the next use opens a new one. */
  async invalidate(slot: number, id?: string): Promise<void> {
    const s = this.sessions.get(slot);
    if (!s) return;
    const cur = await s.catch(() => undefined);
    if (id === undefined || cur?.id === id) {
      this.sessions.delete(slot);
      // It may still exist (grant ended): end it, so lost slots do not pile up sessions.
      if (cur) await this.deleteSession(cur.id, cur.token).catch(() => {});
    }
  }

  /** After an answer that says the session is gone: a ping with the slot's own token decides; re-open if so. */
  async checkSlot(slot: number, id?: string): Promise<void> {
    const cur = await this.sessions.get(slot)?.catch(() => undefined);
    if (!cur || (id !== undefined && cur.id !== id)) return;
    // A fresh id: two checks at once must not be duplicate ids in flight (a finding of their own).
    this.checks++;
    const body = Buffer.from(`{"jsonrpc":"2.0","id":"fuzz-check-${this.checks}","method":"ping"}`);
    const r = await exchange(this.gw.port, {
      chunks: [{ data: await this.mcpPost(body, { slot }) }],
      methods: ['POST'],
      deadlineMs: this.mcpDeadline,
    });
    const alive = r.responses.some((x) => x.status === 200);
    if (!alive) await this.invalidate(slot, cur.id);
  }

  /** Every slot session currently open. */
  async openSessions(): Promise<SessionSlot[]> {
    const out: SessionSlot[] = [];
    for (const s of this.sessions.values()) {
      const v = await s.catch(() => undefined);
      if (v) out.push(v);
    }
    return out;
  }

  /** Opens a session with a real initialize; throws when the gateway refuses. */
  async open(kind: TokenKind, version: string): Promise<SessionSlot> {
    const token = await this.token(kind);
    const res = await fetch(this.gw.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: version,
          capabilities: CLIENT_CAPABILITIES,
          clientInfo: { name: 'gatehouse-fuzz', version: '1' },
        },
      }),
      signal: AbortSignal.timeout(this.initDeadline),
    });
    const text = await res.text();
    const id = res.headers.get('mcp-session-id');
    if (res.status !== 200 || !id) throw new Error(`initialize refused: ${res.status} ${text.slice(0, 300)}`);
    const ack = await fetch(this.gw.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': id,
        'mcp-protocol-version': version,
      },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      signal: AbortSignal.timeout(this.mcpDeadline),
    });
    await ack.arrayBuffer();
    this.sessionsOpened++;
    return { id, protocolVersion: version, token: kind };
  }

  /** Ends a session (DELETE), ignoring the answer. */
  async deleteSession(id: string, kind: TokenKind): Promise<void> {
    const token = await this.token(kind);
    await exchange(this.gw.port, {
      chunks: [
        {
          data: buildRequest('DELETE', '/mcp', [
            ['Host', this.host],
            ['Authorization', `Bearer ${token}`],
            ['Mcp-Session-Id', id],
            ['Content-Length', '0'],
          ]),
        },
      ],
      methods: ['DELETE'],
      deadlineMs: this.mcpDeadline,
    });
  }

  /** Headers of a well-formed /mcp POST in a slot's session (or none) with `body`. */
  async mcpPost(
    body: Buffer,
    opts: { slot?: number; token?: TokenKind; extra?: [string, string][]; omit?: string[] } = {},
  ): Promise<Buffer> {
    const s = opts.slot === undefined ? undefined : await this.session(opts.slot);
    const token = await this.token(opts.token ?? s?.token ?? 'agent');
    const headers: [string, string][] = [
      ['Host', this.host],
      ['Authorization', `Bearer ${token}`],
      ['Content-Type', 'application/json'],
      ['Accept', 'application/json, text/event-stream'],
    ];
    if (s) {
      headers.push(['Mcp-Session-Id', s.id]);
      headers.push(['MCP-Protocol-Version', s.protocolVersion]);
    }
    headers.push(...(opts.extra ?? []));
    headers.push(['Content-Length', String(body.length)]);
    const omit = new Set((opts.omit ?? []).map((h) => h.toLowerCase()));
    return buildRequest(
      'POST',
      '/mcp',
      headers.filter(([k]) => !omit.has(k.toLowerCase())),
      body,
    );
  }
}
