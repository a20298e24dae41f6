/**
 * Prometheus metrics of the gateway (docs/audit.md, "Metrics, traces and OTLP
 * export"). Everything lives on a dedicated prom-client `Registry`, never the
 * global one, so two gateways in one process (tests) do not share counters.
 *
 * Hot-path methods look up a cached child metric (or, for calls, a plain
 * number cell) per label tuple: no label object is built per call. Label values that come from outside (tool names
 * reported by upstreams, stage names, reasons) are bounded: past a cap, new
 * values are counted under `other`. Tokens, user ids and arguments are never
 * labels: the methods have no parameter that could carry them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';

/** What the policy decided for a call; `none` when no decision was made (e.g. rejected earlier). */
export type CallDecision = 'allow' | 'deny' | 'approve' | 'none';

/** How a call ended: `ok` (result), `error` (upstream or gateway error), `rejected` (refused by the gateway). */
export type CallOutcome = 'ok' | 'error' | 'rejected';

/** One finished call, as recorded by {@link GatewayMetrics.callDone}. */
export interface CallDoneInput {
  /** Upstream name (from the config). */
  server: string;
  /** Tool name as the upstream knows it (not namespaced); `''` for methods that are not tool calls. */
  tool: string;
  decision: CallDecision;
  outcome: CallOutcome;
  /** Wall time of the whole call in seconds. */
  seconds: number;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Register prom-client's default process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
  /** Distinct `tool` label values before new ones become `other` (default 1000). */
  maxToolLabels?: number;
  /** Distinct `server` label values before new ones become `other` (default 256). */
  maxServerLabels?: number;
  /** Distinct values per small label (stage, kind, reason, type) before `other` (default 64). */
  maxSmallLabels?: number;
}

/** The gateway's metrics; create with {@link createMetrics}. */
export interface GatewayMetrics {
  /** The dedicated registry (for extra collectors; never the global one). */
  readonly registry: Registry;
  /** Counts a finished call (`gatehouse_calls_total`) and observes its duration (`gatehouse_call_duration_seconds`). */
  callDone(input: CallDoneInput): void;
  /** Same as {@link GatewayMetrics.callDone} without an input object, for the hot path. */
  call(server: string, tool: string, decision: CallDecision, outcome: CallOutcome, seconds: number): void;
  /** Observes one pipeline stage's run time (`gatehouse_stage_duration_seconds`). */
  stage(name: string, seconds: number): void;
  /** Sets `gatehouse_active_sessions`. */
  setActiveSessions(n: number): void;
  /** Sets `gatehouse_active_grants`. */
  setActiveGrants(n: number): void;
  /** Sets `gatehouse_pending_approvals`. */
  setPendingApprovals(n: number): void;
  /** Counts a revocation (`gatehouse_revocations_total{kind}`, e.g. `grant`, `lease`, `token`). */
  revocation(kind: string, n?: number): void;
  /** Counts sanitiser findings (`gatehouse_sanitizer_findings_total{kind}`, kind = rule id or class). */
  sanitizerFinding(kind: string, n?: number): void;
  /** Counts a failed authentication (`gatehouse_auth_failures_total{reason}`, e.g. an error code). */
  authFailure(reason: string): void;
  /** Counts an audit event written (`gatehouse_audit_events_total{type}`). */
  auditEvent(type: string): void;
  /** Counts an audit append that failed (`gatehouse_audit_write_failures_total`). */
  auditWriteFailure(): void;
  /** The exposition text for `GET /metrics`. */
  render(): Promise<{ contentType: string; body: string }>;
  /** Counter cells held for `gatehouse_calls_total`: at most servers × (tool labels + 1) × 12 (a memory bound, T31). */
  callCellCount(): number;
}

/** Label values are cut to this many characters (tool names are short; a hostile one is not). */
const MAX_LABEL_CHARS = 128;
const OTHER = 'other';

const DECISIONS: readonly CallDecision[] = ['allow', 'deny', 'approve', 'none'];
const OUTCOMES: readonly CallOutcome[] = ['ok', 'error', 'rejected'];
const DECISION_INDEX: Readonly<Record<string, number>> = { allow: 0, deny: 1, approve: 2, none: 3 };
const OUTCOME_INDEX: Readonly<Record<string, number>> = { ok: 0, error: 1, rejected: 2 };

/** Histogram buckets for stages: 10 µs to 1 s, roughly 1-2.5-5 per decade. */
export const STAGE_BUCKETS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];

/** Histogram buckets for whole calls: 1 ms to 10 min (limits.maxCallMs default). */
export const CALL_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];

/** One label tuple of `gatehouse_calls_total` and the calls not yet handed to the counter. */
interface CallCell {
  readonly labels: { server: string; tool: string; decision: CallDecision; outcome: CallOutcome };
  pending: number;
}

function labelValue(raw: string): string {
  return raw.length > MAX_LABEL_CHARS ? raw.slice(0, MAX_LABEL_CHARS) : raw;
}

/**
 * A bounded cache from a raw label value to something built from it. The first
 * `max` distinct values get their own entry; later ones share the `other` entry.
 * Lookups of known values allocate nothing.
 */
class BoundedCache<T> {
  private readonly map = new Map<string, T>();
  private other: T | undefined;
  constructor(
    private readonly max: number,
    private readonly make: (label: string) => T,
  ) {}

  get(raw: string): T {
    const hit = this.map.get(raw);
    if (hit !== undefined) return hit;
    if (this.map.size >= this.max) {
      if (this.other === undefined) this.other = this.make(OTHER);
      return this.other;
    }
    const made = this.make(labelValue(raw));
    this.map.set(raw, made);
    return made;
  }
}

/** One label value's buckets, sum and count: an observation adds to plain numbers. */
class HistogramCell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly label: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] ?? 0) + 1;
        return;
      }
    }
  }
}

/**
 * A histogram with one label whose observations cost a loop over the buckets and three additions:
 * the stage histogram takes a dozen observations per call, and prom-client's own observe (label
 * object, validation, hashing per call) cost about 2% of the gateway's CPU under load. It is exposed
 * through prom-client's registry with the same exposition as a prom-client Histogram.
 */
class CellHistogram {
  private readonly cells: HistogramCell[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
  ) {}

  /** The cell of one label value (callers cache it: BoundedCache). */
  cell(label: string): HistogramCell {
    const c = new HistogramCell(labelValue(label), this.bounds);
    this.cells.push(c);
    return c;
  }

  private values(): { value: number; labels: Record<string, string | number>; metricName: string }[] {
    const out: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
    for (const c of this.cells) {
      if (c.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += c.counts[i] ?? 0;
        out.push({
          value: cumulative,
          labels: { le, [this.labelName]: c.label },
          metricName: `${this.name}_bucket`,
        });
      });
      out.push({
        value: c.count,
        labels: { le: '+Inf', [this.labelName]: c.label },
        metricName: `${this.name}_bucket`,
      });
      out.push({ value: c.sum, labels: { [this.labelName]: c.label }, metricName: `${this.name}_sum` });
      out.push({ value: c.count, labels: { [this.labelName]: c.label }, metricName: `${this.name}_count` });
    }
    return out;
  }

  /** What prom-client's registry reads: name, help, type and the sample values at scrape time. */
  asMetric(): Metric {
    const metric = {
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({
        name: this.name,
        help: this.help,
        type: 'histogram',
        aggregator: 'sum',
        values: this.values(),
      }),
      reset: () => {
        this.cells.length = 0;
      },
    };
    // The registry needs only these members of a Metric (name, help, type, aggregator, get, reset).
    return metric as unknown as Metric;
  }
}

/**
 * Creates the gateway's metrics on a new registry, with the instruments listed
 * in docs/audit.md. Throws when an option is not a positive integer.
 */
export function createMetrics(opts: MetricsOptions = {}): GatewayMetrics {
  const maxTools = positiveInt(opts.maxToolLabels ?? 1000, 'maxToolLabels');
  const maxServers = positiveInt(opts.maxServerLabels ?? 256, 'maxServerLabels');
  const maxSmall = positiveInt(opts.maxSmallLabels ?? 64, 'maxSmallLabels');
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  // The hottest counter: calls add to plain numbers in their cell; the counter takes the
  // pending amounts at scrape time, so a call pays no label hashing.
  const callCells: CallCell[] = [];
  // Registered through `registers`; nothing else holds it.
  new Counter({
    name: 'gatehouse_calls_total',
    help: 'Calls handled, by upstream, tool, policy decision and outcome.',
    labelNames: ['server', 'tool', 'decision', 'outcome'] as const,
    registers,
    collect() {
      for (const c of callCells) {
        if (c.pending > 0) {
          this.inc(c.labels, c.pending);
          c.pending = 0;
        }
      }
    },
  });
  const stageDuration = new CellHistogram(
    'gatehouse_stage_duration_seconds',
    'Run time of one pipeline stage.',
    'stage',
    STAGE_BUCKETS,
  );
  registry.registerMetric(stageDuration.asMetric());
  const callDuration = new Histogram({
    name: 'gatehouse_call_duration_seconds',
    help: 'Wall time of a call from request to answer, by upstream.',
    labelNames: ['server'] as const,
    buckets: [...CALL_BUCKETS],
    registers,
  });
  const activeSessions = new Gauge({
    name: 'gatehouse_active_sessions',
    help: 'Open MCP sessions.',
    registers,
  });
  const activeGrants = new Gauge({ name: 'gatehouse_active_grants', help: 'Live grants.', registers });
  const pendingApprovals = new Gauge({
    name: 'gatehouse_pending_approvals',
    help: 'Approval requests waiting for a decision.',
    registers,
  });
  const revocations = new Counter({
    name: 'gatehouse_revocations_total',
    help: 'Revocations, by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const findings = new Counter({
    name: 'gatehouse_sanitizer_findings_total',
    help: 'Sanitiser findings, by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const authFailures = new Counter({
    name: 'gatehouse_auth_failures_total',
    help: 'Failed authentications, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const auditEvents = new Counter({
    name: 'gatehouse_audit_events_total',
    help: 'Audit events written, by type.',
    labelNames: ['type'] as const,
    registers,
  });
  const auditWriteFailures = new Counter({
    name: 'gatehouse_audit_write_failures_total',
    help: 'Audit appends that failed (the request they guarded failed closed).',
    registers,
  });

  // server -> { duration child, tool -> [decision * 3 + outcome] cells }
  interface ServerCell {
    readonly label: string;
    readonly duration: Histogram.Internal<'server'>;
    readonly tools: Map<string, CallCell[]>;
    other: CallCell[] | undefined;
  }
  // Tool label values are bounded across all servers (one set of seen values).
  const toolLabels = new BoundedCache<string>(maxTools, (label) => label);
  const servers = new BoundedCache<ServerCell>(maxServers, (server) => ({
    label: server,
    duration: callDuration.labels(server),
    tools: new Map(),
    other: undefined,
  }));
  const toolCells = (cell: ServerCell, tool: string): CallCell[] => {
    const hit = cell.tools.get(tool);
    if (hit !== undefined) return hit;
    const label = toolLabels.get(tool);
    // A tool name past the cap maps to `other`: one shared set of cells, made once (cells are never
    // made for a raw name that will not keep them, or every distinct name would leak a set).
    if (label === OTHER && cell.other !== undefined) return cell.other;
    const children: CallCell[] = [];
    for (const decision of DECISIONS) {
      for (const outcome of OUTCOMES) {
        const c: CallCell = { labels: { server: cell.label, tool: label, decision, outcome }, pending: 0 };
        children.push(c);
        callCells.push(c);
      }
    }
    if (label === OTHER) cell.other = children;
    else cell.tools.set(tool, children);
    return children;
  };

  const stages = new BoundedCache(maxSmall, (s) => stageDuration.cell(s));
  const revocationKinds = new BoundedCache(maxSmall, (k) => revocations.labels(k));
  const findingKinds = new BoundedCache(maxSmall, (k) => findings.labels(k));
  const authReasons = new BoundedCache(maxSmall, (r) => authFailures.labels(r));
  const auditTypes = new BoundedCache(maxSmall, (t) => auditEvents.labels(t));

  const call = (
    server: string,
    tool: string,
    decision: CallDecision,
    outcome: CallOutcome,
    seconds: number,
  ): void => {
    const cell = servers.get(server);
    const children = toolCells(cell, tool);
    const i = (DECISION_INDEX[decision] ?? 3) * 3 + (OUTCOME_INDEX[outcome] ?? 1);
    const c = children[i];
    if (c !== undefined) c.pending++;
    if (seconds >= 0 && Number.isFinite(seconds)) cell.duration.observe(seconds);
  };

  return {
    registry,
    call,
    callDone: (c) => call(c.server, c.tool, c.decision, c.outcome, c.seconds),
    stage(name, seconds) {
      if (seconds >= 0 && Number.isFinite(seconds)) stages.get(name).observe(seconds);
    },
    setActiveSessions: (n) => activeSessions.set(n),
    setActiveGrants: (n) => activeGrants.set(n),
    setPendingApprovals: (n) => pendingApprovals.set(n),
    revocation(kind, n = 1) {
      if (n > 0) revocationKinds.get(kind).inc(n);
    },
    sanitizerFinding(kind, n = 1) {
      if (n > 0) findingKinds.get(kind).inc(n);
    },
    authFailure: (reason) => authReasons.get(reason).inc(),
    auditEvent: (type) => auditTypes.get(type).inc(),
    auditWriteFailure: () => auditWriteFailures.inc(),
    callCellCount: () => callCells.length,
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** Seconds elapsed since `start` (a `process.hrtime.bigint()` reading), for stage and call timings. */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}
