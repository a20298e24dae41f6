/**
 * The write-ahead audit writer. `append` resolves only once the record is
 * committed (the caller proceeds only after that, and fails closed when it
 * rejects). Concurrent appends are grouped: everything appended while a commit
 * is running goes into the next transaction, so throughput grows with
 * concurrency while each append still waits for a real commit.
 */
import { randomUUID } from 'node:crypto';
import type { AuditCheckpointRow, AuditRepo, AuditRow } from '../storage/types.ts';
import { CanonicalError, canonicalJson, isWellFormed, toAuditValue } from './canonical.ts';
import { checkpointPayload, GENESIS_HASH, redactDeep, sha256Hex, toRow } from './chain.ts';
import {
  AUDIT_EVENT_KEYS,
  AUDIT_SCHEMA_VERSION,
  type AuditEvent,
  type AuditEventInput,
  validateAuditEvent,
} from './event.ts';
import { type AuditKey, signPayload } from './keys.ts';
import { type VerifyOptions, type VerifyResult, verifyAuditLog } from './verify.ts';

/** A redaction hook: returns the string with any secret it knows replaced. */
export type Redactor = (value: string) => string;

/** Options of {@link openAuditWriter}. */
export interface AuditWriterOptions {
  repo: AuditRepo;
  /** Checkpoint signing key (see loadAuditKey). */
  key: AuditKey;
  /** Gateway instance id, recorded in every event and checkpoint. */
  instance: string;
  /** Applied to every string of every event before it is hashed or written. */
  redact?: Redactor;
  /** Write a signed checkpoint at least every this many records (default 1000). */
  checkpointEvery?: number;
  /** ... and at least this often while records arrive, in ms (default 10000; 0 disables the timer). */
  checkpointIntervalMs?: number;
  /** Largest number of records in one transaction (default 4096). */
  maxBatch?: number;
  /** Redacted arguments larger than this (canonical bytes) are stored as digest only (default 8192). */
  maxArgumentBytes?: number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
  /** Called with the events of each written batch, after they are written (e.g. OTLP export); must not throw. */
  onWritten?: (events: readonly AuditEvent[]) => void;
}

/** What a resolved append tells the caller. */
export interface AppendResult {
  seq: number;
  hash: string;
  eventId: string;
}

/** Retention limits; either or both. */
export interface RetentionOptions {
  /** Delete records older than this many ms. */
  maxAgeMs?: number;
  /** Keep at most this many records. */
  maxCount?: number;
}

/** Why an append was rejected after it was accepted for writing. */
export class AuditWriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditWriteError';
  }
}

interface Pending {
  event: AuditEvent;
  json: string;
  resolve: (r: AppendResult) => void;
  reject: (err: Error) => void;
}

/** The audit writer; create with {@link openAuditWriter}. */
export class AuditWriter {
  private readonly repo: AuditRepo;
  private readonly key: AuditKey;
  private readonly instance: string;
  private readonly redactors: { redact: Redactor; active: () => boolean }[] = [];
  private readonly checkpointEvery: number;
  private readonly maxBatch: number;
  private readonly maxArgumentBytes: number;
  private readonly now: () => number;
  private readonly onWritten: ((events: readonly AuditEvent[]) => void) | undefined;
  private pending: Pending[] = [];
  private scheduled = false;
  /** Every write (batch, checkpoint, prune) runs in this order, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  private head: { seq: number; hash: string };
  private headStale = false;
  private floor: number;
  private lastCheckpointSeq: number;
  private closed = false;
  private readonly timer: NodeJS.Timeout | undefined;

  /** @internal use {@link openAuditWriter}. */
  constructor(
    opts: AuditWriterOptions,
    state: { head: { seq: number; hash: string }; floor: number; lastCheckpointSeq: number },
  ) {
    this.repo = opts.repo;
    this.key = opts.key;
    this.instance = opts.instance;
    if (opts.redact) this.redactors.push({ redact: opts.redact, active: () => true });
    this.checkpointEvery = positive(opts.checkpointEvery ?? 1000, 'checkpointEvery');
    this.maxBatch = positive(opts.maxBatch ?? 4096, 'maxBatch');
    this.maxArgumentBytes = opts.maxArgumentBytes ?? 8192;
    this.now = opts.now ?? Date.now;
    this.onWritten = opts.onWritten;
    this.head = state.head;
    this.floor = state.floor;
    this.lastCheckpointSeq = state.lastCheckpointSeq;
    const interval = opts.checkpointIntervalMs ?? 10_000;
    if (interval > 0) {
      this.timer = setInterval(() => {
        if (this.head.seq > this.lastCheckpointSeq) this.checkpoint().catch(() => {});
      }, interval);
      // Checkpoints must not keep a stopping process alive; close() writes the last one.
      this.timer.unref();
    }
  }

  /**
   * Registers another redaction hook (e.g. the leak guard). Hooks run in registration order on every
   * string. `active` says whether the hook can change anything right now (the leak guard holds no
   * secret: it cannot): while no hook is active, events are not walked at all.
   */
  addRedactor(redact: Redactor, active: () => boolean = () => true): void {
    this.redactors.push({ redact, active });
  }

  /** Whether some redaction hook can change a value now. */
  private redacting(): boolean {
    for (const r of this.redactors) if (r.active()) return true;
    return false;
  }

  /** The newest committed record (seq 0 and the genesis hash for an empty log). */
  get committedHead(): { seq: number; hash: string } {
    return { ...this.head };
  }

  /**
   * Appends one event. Resolves when the record is committed; rejects when the
   * event is invalid (schema, or a value without a canonical form), the writer
   * is closed, or the store could not write it.
   */
  append(input: AuditEventInput): Promise<AppendResult> {
    return this.enter(input, true);
  }

  /**
   * {@link append} for events built by type-checked code (the gateway's
   * recorder): skips the schema check, the one part of an append that costs
   * more than the write itself. Redaction, digests and size caps still apply.
   * Total over the values those events carry from outside: what has no
   * canonical form is recorded in its audit form (`toAuditValue`, flagged
   * `normalised`) instead of rejecting, so a client value cannot leave a
   * decision unrecorded. Rejects only when the store cannot write.
   */
  appendTrusted(input: AuditEventInput): Promise<AppendResult> {
    return this.enter(input, false);
  }

  private enter(input: AuditEventInput, validate: boolean): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new AuditWriteError('audit writer is closed'));
    let event: AuditEvent;
    let json: string;
    try {
      // A validated append refuses what has no canonical form; a trusted one (the gateway's
      // recorder, carrying client values) records it in its audit form instead.
      ({ event, json } = this.serialise(this.prepare(input, validate), !validate));
      // INVARIANT: the record's UTF-8 bytes are what is hashed, written and read back, so the text
      // must be well-formed. Canonical JSON always is; checked here, per event, so a producer that
      // embeds non-canonical RawJson fails its own append and never the batch it would have joined.
      if (!isWellFormed(json)) throw new CanonicalError('event json is not well-formed unicode');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ event, json, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: lets every append of this turn of the
        // event loop (and the I/O callbacks that produce more) join the batch.
        setImmediate(() => {
          this.scheduled = false;
          void this.enqueue(() => this.flush());
        });
      }
    });
  }

  /** Writes a signed checkpoint at the current head now (no-op on an empty log). */
  checkpoint(): Promise<AuditCheckpointRow | undefined> {
    return this.enqueue(async () => {
      await this.reloadIfStale();
      if (this.head.seq === 0) return undefined;
      const cp = this.makeCheckpoint(this.head.seq, this.head.hash, this.floor);
      await this.repo.addCheckpoint(cp);
      this.lastCheckpointSeq = cp.seq;
      return cp;
    });
  }

  /**
   * Deletes old records by age and/or count, keeping the chain verifiable: a
   * checkpoint at the head (carrying the new floor) is written in the same
   * transaction, and the newest record is never deleted so the chain continues.
   * Records the pruning itself as an `admin.action` event. Resolves to the number deleted.
   */
  async prune(opts: RetentionOptions): Promise<number> {
    const deleted = await this.enqueue(async () => {
      await this.reloadIfStale();
      const last = this.head.seq;
      if (last === 0) return 0;
      let floor = this.floor;
      if (opts.maxCount !== undefined) floor = Math.max(floor, last - Math.max(1, opts.maxCount) + 1);
      if (opts.maxAgeMs !== undefined) {
        const first = await this.repo.firstSeqAtOrAfter(this.now() - opts.maxAgeMs);
        floor = Math.max(floor, first ?? last);
      }
      floor = Math.min(floor, last);
      if (floor <= this.floor) return 0;
      const cp = this.makeCheckpoint(last, this.head.hash, floor);
      const n = await this.repo.prune(floor, cp);
      this.floor = floor;
      this.lastCheckpointSeq = cp.seq;
      return n;
    });
    if (deleted > 0) {
      await this.append({
        type: 'admin.action',
        detail: { action: 'audit.prune', floor: this.floor, deleted, ...opts },
      });
    }
    return deleted;
  }

  /** Verifies the log, also checking that nothing this writer committed was cut off. */
  async verify(opts: Omit<VerifyOptions, 'key' | 'expectHead'> = {}): Promise<VerifyResult> {
    await this.enqueue(async () => {});
    return verifyAuditLog(this.repo, {
      ...opts,
      key: this.key,
      expectHead: this.head.seq > 0 ? this.head : undefined,
    });
  }

  /** Flushes pending appends, writes a final checkpoint and stops the timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.enqueue(() => this.flush());
    if (this.head.seq > this.lastCheckpointSeq) await this.checkpoint();
  }

  private prepare(input: AuditEventInput, validate: boolean): AuditEvent {
    const redacting = this.redacting();
    if (!validate && !redacting) {
      const event = this.prepareTrusted(input);
      if (event) return event;
    }
    // A copy without `args`. Not `const { args, ...rest } = input`: V8 takes a slow path for object rest
    // (about 20 µs per event, measured), and every call writes two events.
    const raw: Record<string, unknown> = {};
    for (const key of Object.keys(input))
      if (key !== 'args') raw[key] = (input as Record<string, unknown>)[key];
    raw.v = AUDIT_SCHEMA_VERSION;
    raw.id = input.id ?? randomUUID();
    raw.time = input.time ?? this.now();
    raw.instance = input.instance ?? this.instance;
    const args = input.args;
    // Validate what the producer gave, then redact every string before anything is hashed or written.
    let event = validate ? validateAuditEvent(raw) : (raw as AuditEvent);
    if (redacting) event = this.redact(event) as AuditEvent;
    if (args !== undefined) event.arguments = this.argumentsOf(args, !validate, redacting);
    return sortedMembers(event);
  }

  /**
   * {@link prepare} for a trusted event while no redaction hook is active (every call's two events,
   * unless the leak guard holds a secret): the event built once, its members inserted in canonical
   * order, instead of a copy and then a sorted copy. Undefined when the input has a member the schema
   * does not name (then the general path sorts it in).
   */
  private prepareTrusted(input: AuditEventInput): AuditEvent | undefined {
    const from = input as Record<string, unknown>;
    let members = 0;
    for (const key in from) {
      if (!Object.hasOwn(from, key) || from[key] === undefined || key === 'args') continue;
      if (!EVENT_KEY_SET.has(key)) return undefined;
      members++;
    }
    const out: Record<string, unknown> = {};
    let used = 0;
    for (const key of AUDIT_EVENT_KEYS) {
      // An inherited value (a polluted prototype) is counted but was not in `members`: the general path.
      const given = from[key];
      if (given !== undefined) used++;
      let v: unknown;
      switch (key) {
        case 'v':
          v = AUDIT_SCHEMA_VERSION;
          break;
        case 'id':
          v = given ?? randomUUID();
          break;
        case 'time':
          v = given ?? this.now();
          break;
        case 'instance':
          v = given ?? this.instance;
          break;
        case 'arguments':
          v = input.args === undefined ? given : this.argumentsOf(input.args, true, false);
          break;
        default:
          v = given;
      }
      if (v !== undefined) out[key] = v;
    }
    if (used !== members) return undefined;
    return out as AuditEvent;
  }

  /**
   * The digest is over the original arguments, so an investigator holding them can prove what
   * was sent; the stored copy is the redacted one. Each is serialised once and embedded as text.
   * Arguments are the client's: a value canonical JSON cannot carry (a non-finite number from
   * `1e309`, nesting deeper than the canonical bound) must not make the record fail, since a
   * failed record is a refusal without its record or a call refused as `audit_unavailable`.
   * Such arguments are recorded in their audit form (`toAuditValue`, deterministic) with
   * `normalised: true`, and the digest is over that form.
   */
  private argumentsOf(
    args: unknown,
    total: boolean,
    redacting: boolean,
  ): NonNullable<AuditEvent['arguments']> {
    let value = args;
    let normalised = false;
    let original: string;
    let redacted: string;
    try {
      original = canonicalJson(value);
      redacted = redacting ? canonicalJson(this.redact(value)) : original;
    } catch (err) {
      if (!total) throw err;
      value = toAuditValue(args).value;
      normalised = true;
      original = canonicalJson(value);
      redacted = redacting ? canonicalJson(this.redact(value)) : original;
    }
    const out: NonNullable<AuditEvent['arguments']> =
      Buffer.byteLength(redacted) <= this.maxArgumentBytes
        ? // The parsed canonical text, not a RawJson: its keys come back sorted, so the whole event is
          // written by the native serialiser with the same bytes (canonicalJson sorts what JSON.parse
          // reorders, integer-like keys).
          { digest: sha256Hex(original), redacted: JSON.parse(redacted) as unknown }
        : { digest: sha256Hex(original), truncated: true };
    if (normalised) out.normalised = true;
    return out;
  }

  /**
   * The canonical JSON of a prepared event. Events are built by code, but they carry values that
   * came from outside (clientInfo, token claims, upstream data); when one has no canonical form,
   * the event is recorded in its audit form with `detail.normalised: true` rather than lost.
   */
  private serialise(event: AuditEvent, total: boolean): { event: AuditEvent; json: string } {
    try {
      return { event, json: canonicalJson(event) };
    } catch (err) {
      if (!total) throw err;
      const safe = toAuditValue(event).value as AuditEvent;
      safe.detail = { ...safe.detail, normalised: true };
      return { event: safe, json: canonicalJson(safe) };
    }
  }

  private redact(value: unknown): unknown {
    if (this.redactors.length === 0) return value;
    return redactDeep(value, (s) => this.redactors.reduce((acc, r) => r.redact(acc), s));
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch(() => {});
    return p;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      await this.writeBatch(batch);
    }
  }

  private async reloadIfStale(): Promise<void> {
    if (!this.headStale) return;
    this.head = (await this.repo.head()) ?? { seq: 0, hash: GENESIS_HASH };
    this.headStale = false;
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    let rows: AuditRow[];
    let checkpoint: AuditCheckpointRow | undefined;
    try {
      await this.reloadIfStale();
      let seq = this.head.seq;
      let prev = this.head.hash;
      rows = batch.map((p) => {
        seq += 1;
        const row = toRow(seq, prev, p.event, p.json);
        prev = row.hash;
        return row;
      });
      if (seq - this.lastCheckpointSeq >= this.checkpointEvery) {
        checkpoint = this.makeCheckpoint(seq, prev, this.floor);
      }
      await this.repo.appendBatch(rows, checkpoint);
    } catch (err) {
      // The store's state is unknown to us now: re-read the head before the next batch.
      this.headStale = true;
      const msg = err instanceof Error ? err.message : String(err);
      const e = new AuditWriteError(`audit write failed: ${msg}`, { cause: err });
      for (const p of batch) p.reject(e);
      return;
    }
    const last = rows[rows.length - 1];
    if (last) this.head = { seq: last.seq, hash: last.hash };
    if (checkpoint) this.lastCheckpointSeq = checkpoint.seq;
    this.onWritten?.(batch.map((p) => p.event));
    batch.forEach((p, i) => {
      const row = rows[i];
      if (row) p.resolve({ seq: row.seq, hash: row.hash, eventId: row.eventId });
    });
  }

  private makeCheckpoint(seq: number, hash: string, floor: number): AuditCheckpointRow {
    const time = this.now();
    const payload = checkpointPayload({
      seq,
      hash,
      floor,
      time,
      instance: this.instance,
      keyId: this.key.keyId,
    });
    return { seq, hash, payload, signature: signPayload(this.key, payload), keyId: this.key.keyId, time };
  }
}

/**
 * The event with its members inserted in canonical (sorted) order: canonicalJson then writes it with
 * the native JSON.stringify (nested objects the recorder builds are sorted too; any that are not take
 * the slower hand-written path, with the same result).
 */
function sortedMembers(event: AuditEvent): AuditEvent {
  const from = event as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const key of AUDIT_EVENT_KEYS) {
    const v = from[key];
    if (v !== undefined) {
      out[key] = v;
      n++;
    }
  }
  if (n === Object.keys(from).length) return out as AuditEvent;
  // A member the schema does not name, or one set to undefined: sort what is there.
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(from).sort()) sorted[key] = from[key];
  return sorted as AuditEvent;
}

/** The members an event may have, for {@link AuditWriter.prepareTrusted}. */
const EVENT_KEY_SET: ReadonlySet<string> = new Set(AUDIT_EVENT_KEYS);

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/**
 * Opens the audit writer on a store: reads the chain head, the retention floor
 * and the last checkpoint. One writer per database (a second one would race
 * for sequence numbers; its appends would be rejected, never forked).
 */
export async function openAuditWriter(opts: AuditWriterOptions): Promise<AuditWriter> {
  const head = (await opts.repo.head()) ?? { seq: 0, hash: GENESIS_HASH };
  const checkpoints = await opts.repo.checkpoints();
  const lastCp = checkpoints[checkpoints.length - 1];
  // The floor comes from the last signed checkpoint, not from the table: adopting
  // MIN(seq) would let someone who deleted the oldest rows have us sign that.
  let floor = 1;
  if (lastCp) {
    const f = (JSON.parse(lastCp.payload) as { floor?: unknown }).floor;
    if (typeof f === 'number') floor = f;
  }
  return new AuditWriter(opts, { head, floor, lastCheckpointSeq: lastCp?.seq ?? 0 });
}
