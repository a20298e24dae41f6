/**
 * A resumable SSE stream: every event gets an id `<streamId>_<seq>` and is kept
 * (bounded) so a client that lost the connection can resume with GET +
 * Last-Event-ID. A stream outlives its HTTP connection: messages written while
 * no connection is attached are queued and sent on the next attach.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#resumability-and-redelivery
 */
import type { ServerResponse } from 'node:http';

/** Events kept per stream for replay. */
const MAX_EVENTS = 1000;
/** Bytes kept per stream for replay (at least the last event is kept, however large). */
const MAX_BYTES = 1024 * 1024;
/**
 * The `retry` (ms) of the priming event: how long a client waits before reconnecting with
 * Last-Event-ID after it lost the connection (2025-11-25: "The client MUST respect the retry field").
 */
export const SSE_RETRY_MS = 1000;

/**
 * Replay kept, across all sessions, by finished streams whose every event was handed to a connection.
 * Handed to the socket is not received: a client whose connection died without a reset resumes with
 * Last-Event-ID and must still get the answer. Kept until the stream expires (the session drops it
 * 60 s after it finished) or, past this many bytes in all, oldest first.
 */
export const RETAINED_REPLAY_MAX_BYTES = 8 * 1024 * 1024;

/** Finished, flushed streams still holding their replay, oldest first, with the bytes each holds. */
const retained = new Map<SseStream, number>();
let retainedBytes = 0;

/** Bytes of replay held by finished streams now (tests, soak). */
export function retainedReplayBytes(): number {
  return retainedBytes;
}

interface StoredEvent {
  seq: number;
  frame: string;
}

export class SseStream {
  private seq = 0;
  private readonly events: StoredEvent[] = [];
  private bytes = 0;
  /** Highest seq written to a live connection. */
  private sentSeq = 0;
  private res: ServerResponse | undefined;
  /** True once the stream will carry nothing more (its requests are answered). */
  finished = false;
  /** Called when the stream is finished and its connection ended. */
  onfinish: () => void = () => {};

  constructor(
    readonly id: string,
    private readonly priming: boolean,
  ) {}

  get attached(): boolean {
    return this.res !== undefined;
  }

  /** Starts sending on `res` (a new POST response or a resuming GET). */
  attach(res: ServerResponse, headers: Record<string, string>, afterSeq?: number): void {
    this.res?.end();
    this.res = res;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    res.once('close', () => {
      if (this.res === res) this.res = undefined;
    });
    if (afterSeq === undefined && this.seq === 0 && this.priming) {
      // 2025-11-25: "the server SHOULD immediately send an SSE event consisting
      // of an event ID and an empty data field in order to prime the client to reconnect".
      this.seq++;
      this.store(`id: ${this.id}_${this.seq}\nretry: ${SSE_RETRY_MS}\ndata: \n\n`);
    }
    const from = afterSeq ?? this.sentSeq;
    let out = '';
    for (const ev of this.events) if (ev.seq > from) out += ev.frame;
    if (out) res.write(out);
    this.sentSeq = this.seq;
    if (this.finished) this.endConnection();
    else res.flushHeaders();
  }

  /** Writes one JSON-RPC message as an event. */
  write(json: string): void {
    this.seq++;
    const frame = `id: ${this.id}_${this.seq}\ndata: ${json}\n\n`;
    this.store(frame);
    if (this.res) {
      this.res.write(frame);
      this.sentSeq = this.seq;
    }
  }

  private store(frame: string): void {
    this.events.push({ seq: this.seq, frame });
    this.bytes += frame.length;
    while (this.events.length > MAX_EVENTS || (this.bytes > MAX_BYTES && this.events.length > 1)) {
      const dropped = this.events.shift();
      if (dropped) this.bytes -= dropped.frame.length;
    }
  }

  /** No more messages: end the connection once everything is written. */
  finish(): void {
    this.finished = true;
    if (this.res) this.endConnection();
  }

  private endConnection(): void {
    const res = this.res;
    this.res = undefined;
    // A finished stream whose every event reached the connection needs no replay: the buffer is
    // dropped once the response is flushed (a stream cut before that keeps it for resumption).
    res?.end(() => {
      if (this.sentSeq === this.seq) this.retain();
    });
    this.onfinish();
  }

  /** Keeps this finished stream's replay under the shared budget, evicting the oldest beyond it. */
  private retain(): void {
    this.unaccount();
    retained.set(this, this.bytes);
    retainedBytes += this.bytes;
    for (const [old, bytes] of retained) {
      if (retainedBytes <= RETAINED_REPLAY_MAX_BYTES) break;
      retained.delete(old);
      retainedBytes -= bytes;
      old.events.length = 0;
      old.bytes = 0;
    }
  }

  /** Drops the replay (the stream expired or its session ended). */
  release(): void {
    this.unaccount();
    this.events.length = 0;
    this.bytes = 0;
  }

  /** Takes this stream out of the shared budget (its events stay). */
  private unaccount(): void {
    const bytes = retained.get(this);
    if (bytes !== undefined) {
      retained.delete(this);
      retainedBytes -= bytes;
    }
  }

  /** Closes the connection without finishing (session end) and drops the replay. */
  close(): void {
    const res = this.res;
    this.res = undefined;
    res?.end();
    this.release();
  }
}

/** Parses `<streamId>_<seq>` from a Last-Event-ID header. */
export function parseEventId(v: string): { streamId: string; seq: number } | undefined {
  const i = v.lastIndexOf('_');
  if (i <= 0) return undefined;
  const seq = Number(v.slice(i + 1));
  if (!Number.isInteger(seq) || seq < 0) return undefined;
  return { streamId: v.slice(0, i), seq };
}
