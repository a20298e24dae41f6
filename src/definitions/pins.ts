/**
 * Tool-definition pinning (THREATS T13 tool poisoning, T14 rug pull; docs/sanitization.md
 * "Tool-definition pinning"). Every upstream tool definition the gateway sees is hashed (SHA-256 of the
 * canonical JSON of name, title, description, inputSchema, outputSchema and annotations) and compared
 * with the one pin of its server and name (prompts, resource templates and server instructions alike,
 * each with its own fields):
 *
 * - same hash: the tool is shown and callable;
 * - never seen: pinned on first use (`pinning.newTools: trust`, when the scanner finds nothing), else
 *   quarantined;
 * - another hash (a rug pull): quarantined, audited (`definition.changed` with the old and new hash).
 *
 * A quarantined definition is hidden from `tools/list` and refused (`tool_quarantined`) until an admin
 * approves it (`gatehouse tools approve`), which makes its hash the pin. The decision is made when a
 * list arrives (router), never per call: a call costs one WeakMap and two Map lookups ({@link callable}).
 * Decisions made by the CLI or another gateway reach this one through the store, polled like grants.
 */
import type { Logger } from 'pino';
import { canonicalJson } from '../audit/canonical.ts';
import type { AuditEventInput } from '../audit/event.ts';
import type { PinningConfig, SanitizeConfig } from '../config/schema.ts';
import { scanRecord } from '../sanitize/jsonl.ts';
import { ProfileResolver } from '../sanitize/profile.ts';
import type { SanitizeProfile } from '../sanitize/types.ts';
import type {
  DefinitionFinding,
  DefinitionKind,
  DefinitionRecord,
  DefinitionRepo,
} from '../storage/types.ts';
import { sha256 } from '../util/hash.ts';

/** The fields of a tool definition that are pinned (what an agent reads, and what policy reads). */
export const PINNED_TOOL_FIELDS = [
  'name',
  'title',
  'description',
  'inputSchema',
  'outputSchema',
  'annotations',
] as const;

/** How often decisions written elsewhere (the CLI, another gateway) are read from the store. */
const POLL_MS = 250;
/** Rows re-read at each poll, in case a writer's clock or commit lags ours. */
const POLL_OVERLAP_MS = 5_000;
/** Definitions held per server (pins) and waiting (pending) at most: a hostile upstream cannot grow them for ever. */
const MAX_PINS_PER_SERVER = 10_000;
const MAX_PENDING = 10_000;

/** What is pinned of a server's instructions (its initialize result's `instructions`). */
export const INSTRUCTION_FIELDS = ['instructions'] as const;
/** What is pinned of a prompt (what `prompts/list` tells the agent about it). */
export const PINNED_PROMPT_FIELDS = ['name', 'title', 'description', 'arguments'] as const;
/** What is pinned of a resource template (what `resources/templates/list` tells the agent about it). */
export const PINNED_TEMPLATE_FIELDS = [
  'uriTemplate',
  'name',
  'title',
  'description',
  'mimeType',
  'annotations',
] as const;

/** The listed kinds pinned besides tools: their pinned fields and the member that names them. */
const LISTED: Readonly<
  Record<'prompt' | 'resource-template', { fields: readonly string[]; key: 'name' | 'uriTemplate' }>
> = {
  prompt: { fields: PINNED_PROMPT_FIELDS, key: 'name' },
  'resource-template': { fields: PINNED_TEMPLATE_FIELDS, key: 'uriTemplate' },
};

/** The pinned fields of a definition (own properties only; a tool's by default). */
export function pinnedView(
  def: Record<string, unknown>,
  fields: readonly string[] = PINNED_TOOL_FIELDS,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of fields) if (Object.hasOwn(def, k) && def[k] !== undefined) out[k] = def[k];
  return out;
}

/** The canonical JSON of a definition's pinned fields and its SHA-256 (hex); undefined when it has no canonical form. */
export function hashDefinition(
  def: Record<string, unknown>,
  fields: readonly string[] = PINNED_TOOL_FIELDS,
): { canonical: string; hash: string } | undefined {
  let canonical: string;
  try {
    canonical = canonicalJson(pinnedView(def, fields));
  } catch {
    return undefined;
  }
  return { canonical, hash: sha256(canonical) };
}

/** The definition scanner (`gatehouse scan --kind definition`) over a definition's pinned fields. */
export function scanDefinition(
  def: Record<string, unknown>,
  profile: SanitizeProfile,
  fields: readonly string[] = PINNED_TOOL_FIELDS,
): DefinitionFinding[] {
  return scanRecord({ id: null, definition: pinnedView(def, fields) }, 'definition', profile).findings;
}

/** The key of a kind's pin table on a server: the server itself for tools (the per-call lookup). */
function pinKey(kind: DefinitionKind, server: string): string {
  return kind === 'tool' ? server : `${kind}\0${server}`;
}

function pendingKey(kind: DefinitionKind, server: string, name: string): string {
  return `${kind}\0${server}\0${name}`;
}

/** The profile definitions are scanned with: the sanitize config's detectors, PII aside (an address in a description is not poisoning). */
export function definitionProfile(sanitize: SanitizeConfig): SanitizeProfile {
  const p = new ProfileResolver({ ...sanitize, enabled: true }).profileFor(undefined);
  return { ...p, actions: { ...p.actions, pii: 'off' } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Audit findings of a definition (`rule: <family>/definition`, the scan line's detail as the location). */
function auditFindings(findings: readonly DefinitionFinding[]): NonNullable<AuditEventInput['findings']> {
  return findings.slice(0, 50).map((f) => ({
    rule: `${f.type}/definition`,
    severity: 'high',
    action: 'flagged',
    location: `[${f.start},${f.end}) ${f.detail}`.slice(0, 1024),
  }));
}

/** What the pins need from the rest of the gateway. */
export interface PinDeps {
  readonly repo: DefinitionRepo;
  readonly config: PinningConfig;
  readonly sanitize: SanitizeConfig;
  /** Best-effort audit records (AuditRecorder.record). */
  readonly audit: { record(event: AuditEventInput): void };
  readonly log: Logger;
  /** The name the agent sees (`server__tool`), for audit records. */
  readonly expose: (server: string, name: string) => string | undefined;
}

/** The pins of every upstream's tools, in memory, kept in step with the store. */
export class DefinitionPins {
  /** server → tool name → the approved hash: the one table a call reads (other kinds: {@link pinKey} → '' → hash). */
  private readonly pinned = new Map<string, Map<string, string>>();
  /** {@link pendingKey} → the hash waiting for approval (the newest seen). */
  private readonly pending = new Map<string, string>();
  /** {@link pendingKey} → hashes an admin rejected (seen again: still quarantined, not recorded again). */
  private readonly rejected = new Map<string, Set<string>>();
  /** Definitions seen by {@link observe} → their hash: the objects a session keeps as its tool definitions. */
  private readonly hashes = new WeakMap<object, string>();
  /** {@link pendingKey} of a prompt → the hash of its newest listing (what agents were last shown). */
  private readonly latestPrompt = new Map<string, string>();
  private readonly profile: SanitizeProfile;
  /**
   * Called when what `server`'s tools/list shows may have changed for sessions that listed it before: a
   * definition was quarantined here, or an approval or rejection was read from the store. The gateway
   * sends `notifications/tools/list_changed` to the sessions on that server.
   */
  onListChanged: ((server: string) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private since = 0;

  constructor(private readonly deps: PinDeps) {
    this.profile = definitionProfile(deps.sanitize);
  }

  /** Whether pinning is on (`pinning.enabled`). */
  get enabled(): boolean {
    return this.deps.config.enabled;
  }

  /** Loads the store's pins and decisions (a restart keeps them), then polls for decisions made elsewhere. */
  async start(): Promise<void> {
    if (!this.enabled) return;
    const started = Date.now();
    for (const r of await this.deps.repo.list()) this.apply(r, false);
    this.since = started - POLL_OVERLAP_MS;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads decisions written since the last poll (approve, reject; pins and pending entries of other gateways). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const started = Date.now();
    try {
      for (const r of await this.deps.repo.changedSince(this.since)) this.apply(r, true);
      this.since = started - POLL_OVERLAP_MS;
    } catch (err) {
      this.deps.log.error({ err }, 'reading tool-definition pins failed');
    } finally {
      this.polling = false;
    }
  }

  /**
   * Whether the tool `name` of `server`, as defined by `def` (an object {@link observe} saw), may be
   * listed and called: its hash is the pin. A definition never observed is not callable (fail closed).
   */
  callable(server: string, name: string, def: object): boolean {
    if (!this.deps.config.enabled) return true;
    const h = this.hashes.get(def);
    return h !== undefined && this.pinned.get(server)?.get(name) === h;
  }

  /**
   * Checks a page of `tools/list` of `server` against the pins: remembers each definition's hash (for
   * {@link callable}), pins never-seen clean tools when trusted on first use, quarantines the rest (new
   * untrusted, changed, or with scanner findings), recording and auditing each once.
   */
  observe(server: string, tools: readonly unknown[]): void {
    if (!this.deps.config.enabled) return;
    for (const t of tools) {
      if (!isObject(t) || typeof t.name !== 'string') continue;
      const h = hashDefinition(t);
      // No canonical form (NaN cannot come from JSON; a depth past 256 can): never callable.
      if (h === undefined) continue;
      this.hashes.set(t, h.hash);
      if (this.pinned.get(server)?.get(t.name) === h.hash) continue;
      this.check(server, 'tool', t.name, h, () =>
        this.deps.config.scan ? scanDefinition(t, this.profile) : [],
      );
    }
  }

  /**
   * Checks a page of `prompts/list` or `resources/templates/list` of `server` like tools: remembers each
   * item's hash (for {@link listable}), pins never-seen clean ones when trusted on first use, quarantines
   * the rest. A prompt is named by its name, a template by its `uriTemplate`.
   */
  observeListed(server: string, kind: 'prompt' | 'resource-template', items: readonly unknown[]): void {
    if (!this.deps.config.enabled) return;
    const { fields, key } = LISTED[kind];
    for (const item of items) {
      if (!isObject(item) || typeof item[key] !== 'string') continue;
      const name = item[key];
      const h = hashDefinition(item, fields);
      if (h === undefined) continue;
      this.hashes.set(item, h.hash);
      if (kind === 'prompt') {
        const k = pendingKey(kind, server, name);
        if (this.latestPrompt.has(k) || this.latestPrompt.size < MAX_PENDING)
          this.latestPrompt.set(k, h.hash);
      }
      if (this.pinned.get(pinKey(kind, server))?.get(name) === h.hash) continue;
      this.check(server, kind, name, h, () =>
        this.deps.config.scan ? scanDefinition(item, this.profile, fields) : [],
      );
    }
  }

  /** Whether a prompt or template item of a list (an object {@link observeListed} saw) is the pin: shown. */
  listable(server: string, kind: 'prompt' | 'resource-template', name: string, item: object): boolean {
    if (!this.deps.config.enabled) return true;
    const h = this.hashes.get(item);
    return h !== undefined && this.pinned.get(pinKey(kind, server))?.get(name) === h;
  }

  /**
   * Whether `prompts/get` of `name` may run: refused while the prompt's newest listing is not the pin.
   * A prompt never listed through this gateway was never described to an agent by it: allowed (its
   * content is a result, and goes through the result sanitisers).
   */
  promptUsable(server: string, name: string): boolean {
    if (!this.deps.config.enabled) return true;
    const latest = this.latestPrompt.get(pendingKey('prompt', server, name));
    return latest === undefined || this.pinned.get(pinKey('prompt', server))?.get(name) === latest;
  }

  /**
   * Whether `server`'s instructions (its initialize result's) may reach the agent: none, or the pinned
   * text. Checks them first (pinned on first use, or quarantined like a tool): instructions that are
   * not the pin are withheld from the client's initialize result until approved (THREATS T14).
   */
  instructionsApproved(server: string, instructions: string | undefined): boolean {
    if (!this.deps.config.enabled || instructions === undefined || instructions === '') return true;
    const def = { instructions };
    const h = hashDefinition(def, INSTRUCTION_FIELDS);
    if (h === undefined) return false;
    const key = pinKey('instructions', server);
    if (this.pinned.get(key)?.get('') === h.hash) return true;
    this.check(server, 'instructions', '', h, () =>
      this.deps.config.scan ? scanDefinition(def, this.profile, INSTRUCTION_FIELDS) : [],
    );
    return this.pinned.get(key)?.get('') === h.hash;
  }

  /** A definition that is not the pin: pinned on first use, or quarantined (recorded and audited once). */
  private check(
    server: string,
    kind: DefinitionKind,
    name: string,
    h: { canonical: string; hash: string },
    scan: () => DefinitionFinding[],
  ): void {
    const own = Object.hasOwn(this.deps.config.upstreams, server)
      ? this.deps.config.upstreams[server]
      : undefined;
    const mode = own?.newTools ?? this.deps.config.newTools;
    const names = this.pinned.get(pinKey(kind, server));
    const pin = names?.get(name);
    const key = pendingKey(kind, server, name);
    if (this.pending.get(key) === h.hash || this.rejected.get(key)?.has(h.hash)) return;
    const findings = scan();
    const now = Date.now();
    const rec: DefinitionRecord = {
      server,
      kind,
      name,
      hash: h.hash,
      definition: h.canonical,
      status: 'pending',
      findings,
      firstSeen: now,
      updatedAt: now,
      decidedBy: undefined,
    };
    const tool = kind === 'tool' ? this.deps.expose(server, name) : undefined;
    const what = kind === 'instructions' ? { kind } : { kind, name };
    // Instructions address the model by design (the reference servers' do): their findings are recorded
    // and shown, but do not stop trust on first use as a tool's do.
    if (pin === undefined && mode === 'trust' && (findings.length === 0 || kind === 'instructions')) {
      if ((names?.size ?? 0) >= MAX_PINS_PER_SERVER) {
        this.deps.log.warn(
          { upstream: server, kind, name },
          'definition not pinned: too many pins for this server',
        );
        return;
      }
      this.setPin(pinKey(kind, server), name, h.hash);
      this.deps.repo
        .pin({ ...rec, status: 'pinned' })
        .catch((err: unknown) => this.deps.log.error({ err, upstream: server }, 'recording a pin failed'));
      this.deps.audit.record({
        type: 'definition.pinned',
        server,
        ...(tool !== undefined ? { tool } : {}),
        detail: { ...what, hash: h.hash, source: 'first-use' },
        ...(findings.length > 0 ? { findings: auditFindings(findings) } : {}),
      });
      return;
    }
    if (this.pending.size >= MAX_PENDING && !this.pending.has(key)) {
      this.deps.log.warn(
        { upstream: server, kind, name },
        'definition quarantined, not recorded: too many pending',
      );
      return;
    }
    this.pending.set(key, h.hash);
    this.deps.repo
      .propose(rec)
      .catch((err: unknown) =>
        this.deps.log.error({ err, upstream: server }, 'recording a quarantine failed'),
      );
    const reason = pin !== undefined ? 'changed' : findings.length > 0 ? 'findings' : 'new';
    this.deps.audit.record({
      type: 'definition.changed',
      server,
      ...(tool !== undefined ? { tool } : {}),
      detail: {
        ...what,
        ...(pin !== undefined ? { oldHash: pin } : {}),
        newHash: h.hash,
        reason,
        status: 'quarantined',
      },
      ...(findings.length > 0 ? { findings: auditFindings(findings) } : {}),
    });
    this.deps.log.warn(
      { upstream: server, kind, name, oldHash: pin, newHash: h.hash, reason, findings: findings.length },
      'definition quarantined until approved (gatehouse tools pending)',
    );
    if (kind === 'tool') this.onListChanged?.(server);
  }

  /** `key`: the server for tools, {@link pinKey} for other kinds. */
  private setPin(key: string, name: string, hash: string): void {
    let names = this.pinned.get(key);
    if (names === undefined) {
      names = new Map();
      this.pinned.set(key, names);
    }
    names.set(name, hash);
  }

  /** Takes one stored row into memory; `audit`: a decision noticed while running (not at start-up). */
  private apply(r: DefinitionRecord, audit: boolean): void {
    const key = pendingKey(r.kind, r.server, r.name);
    const pins = pinKey(r.kind, r.server);
    const what = r.kind === 'instructions' ? { kind: r.kind } : { kind: r.kind, name: r.name };
    // Only while running (`audit`): at start-up the router that names tools does not exist yet.
    const tool = audit && r.kind === 'tool' ? this.deps.expose(r.server, r.name) : undefined;
    switch (r.status) {
      case 'pinned': {
        const old = this.pinned.get(pins)?.get(r.name);
        if (old === r.hash) return;
        this.setPin(pins, r.name, r.hash);
        if (this.pending.get(key) === r.hash) this.pending.delete(key);
        this.rejected.get(key)?.delete(r.hash);
        if (audit && r.decidedBy !== undefined) {
          this.deps.audit.record({
            type: 'definition.pinned',
            server: r.server,
            ...(tool !== undefined ? { tool } : {}),
            detail: {
              ...what,
              hash: r.hash,
              ...(old !== undefined ? { oldHash: old } : {}),
              source: 'approved',
              approvedBy: r.decidedBy,
            },
          });
          this.deps.log.info({ upstream: r.server, kind: r.kind, name: r.name }, 'definition approved');
          if (r.kind === 'tool') this.onListChanged?.(r.server);
        }
        return;
      }
      case 'pending':
        if (this.pinned.get(pins)?.get(r.name) !== r.hash && !this.rejected.get(key)?.has(r.hash))
          this.pending.set(key, r.hash);
        return;
      case 'rejected': {
        let set = this.rejected.get(key);
        if (set?.has(r.hash)) return;
        if (set === undefined) {
          set = new Set();
          this.rejected.set(key, set);
        }
        set.add(r.hash);
        if (this.pending.get(key) === r.hash) this.pending.delete(key);
        if (audit) {
          this.deps.audit.record({
            type: 'admin.action',
            server: r.server,
            ...(tool !== undefined ? { tool } : {}),
            detail: {
              action: 'definition.rejected',
              ...what,
              hash: r.hash,
              ...(r.decidedBy !== undefined ? { rejectedBy: r.decidedBy } : {}),
            },
          });
          if (r.kind === 'tool') this.onListChanged?.(r.server);
        }
        return;
      }
      case 'superseded':
        return;
    }
  }
}
