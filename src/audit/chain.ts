/**
 * The hash chain: how an event becomes a stored record, and how a checkpoint
 * payload looks. Shared by the writer and the verifier so both compute exactly
 * the same bytes.
 */
import type { AuditRow } from '../storage/types.ts';
import { sha256 } from '../util/hash.ts';
import { canonicalJson, indexText, RawJson } from './canonical.ts';
import type { AuditEvent } from './event.ts';

/** The `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Version of the record envelope `{ v, seq, prev, event }`. */
export const RECORD_VERSION = 1;

/** A stored record, parsed. */
export interface AuditRecord {
  v: number;
  seq: number;
  prev: string;
  hash: string;
  event: AuditEvent;
}

/** Lower-case hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return sha256(text);
}

/**
 * The canonical body of a record, from the event's canonical JSON. Built by
 * concatenation (keys already in canonical order: event, prev, seq, v) so the
 * event is serialised once per append.
 */
export function recordBody(seq: number, prev: string, eventJson: string): string {
  return `{"event":${eventJson},"prev":"${prev}","seq":${seq},"v":${RECORD_VERSION}}`;
}

/**
 * The stored row of an event (query columns copied from the event). The body is the one byte form
 * of the record: its UTF-8 bytes are what is hashed, written to the segment, copied into the index
 * and verified. INVARIANT: `eventJson` is well-formed (canonical JSON escapes lone surrogates; the
 * writer checks each event before it joins a batch), so that encoding is lossless.
 */
export function toRow(seq: number, prev: string, event: AuditEvent, eventJson: string): AuditRow {
  const body = recordBody(seq, prev, eventJson);
  return {
    seq,
    prevHash: prev,
    hash: sha256Hex(body),
    body,
    ...indexColumns(event),
  };
}

/**
 * The query columns of an event; verification checks stored columns against these. A pure
 * function of the record: the writer computes it from the event it writes, the reader from the
 * record it parses back, and both give the same text, which SQLite stores losslessly (see
 * {@link indexText}: a lone surrogate a client put into an id is spelled as its escape).
 */
export function indexColumns(event: AuditEvent): Omit<AuditRow, 'seq' | 'prevHash' | 'hash' | 'body'> {
  return {
    eventId: column(event.id) ?? '',
    time: event.time,
    type: column(event.type) ?? '',
    requestId: column(event.requestId),
    grantId: column(event.grantId),
    sessionId: column(event.sessionId),
    agent: column(event.principal?.agent),
    user: column(event.principal?.user),
    jti: column(event.principal?.jti),
    server: column(event.server),
    tool: column(event.tool),
    decision: column(event.decision?.effect),
  };
}

/** One text column: the value as text (an index column holds text, whatever a record claims). */
function column(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return indexText(typeof v === 'string' ? v : JSON.stringify(v));
}

/** Parses a row's body; throws on anything that is not a record envelope. */
export function parseRecord(row: Pick<AuditRow, 'body' | 'hash'>): AuditRecord {
  const data = JSON.parse(row.body) as Partial<AuditRecord>;
  if (
    typeof data !== 'object' ||
    data === null ||
    typeof data.seq !== 'number' ||
    typeof data.prev !== 'string' ||
    typeof data.event !== 'object' ||
    data.event === null
  ) {
    throw new Error('record body is not an audit record');
  }
  return { v: data.v ?? 0, seq: data.seq, prev: data.prev, hash: row.hash, event: data.event };
}

/** What a checkpoint signs. */
export interface CheckpointPayload {
  kind: 'gatehouse.audit.checkpoint';
  v: 1;
  /** Head sequence number. */
  seq: number;
  /** Hash of the record at `seq`. */
  hash: string;
  /** The oldest retained seq when the checkpoint was written (retention moves it up). */
  floor: number;
  time: number;
  instance: string;
  keyId: string;
}

/** The canonical text of a checkpoint payload (the signed bytes). */
export function checkpointPayload(p: Omit<CheckpointPayload, 'kind' | 'v'>): string {
  return canonicalJson({ kind: 'gatehouse.audit.checkpoint', v: 1, ...p } satisfies CheckpointPayload);
}

/**
 * Applies `redact` to every string of a JSON-like value, object keys included. Copies go onto a
 * null prototype: assigning a `__proto__` key on a plain object sets its prototype instead, and
 * the key (with whatever the client put under it) silently vanished from the stored copy.
 */
export function redactDeep(value: unknown, redact: (value: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact));
  if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of Object.entries(value)) out[redact(k)] = redactDeep(v, redact);
    return out;
  }
  return value;
}
