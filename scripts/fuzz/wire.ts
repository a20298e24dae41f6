/**
 * A raw HTTP/1.1 client over node:net: it writes exactly the bytes a generator made (so malformed
 * requests and repro files are byte-exact), reads as many responses as were pipelined, and measures
 * how long the server took to answer or to close the connection.
 */
import net from 'node:net';

/** One piece of what is written to the socket; `delayMs` waits before writing it (slow clients). */
export interface WireChunk {
  data: Buffer;
  delayMs?: number;
}

/** What to send and how long to wait for it. */
export interface WireRequest {
  chunks: WireChunk[];
  /** Methods of the pipelined requests, in order (HEAD answers have no body). */
  methods: string[];
  /** Give up after this many milliseconds (counted from the first byte written). */
  deadlineMs: number;
  /** A GET that may open a long-lived SSE stream: stop reading this long after its headers. */
  streamGraceMs?: number;
  /** Close our side after the last chunk (half-close), as a client that sends a body without framing would. */
  halfClose?: boolean;
  /** Keep reading after the responses until the server closes (or the deadline): stall probes. */
  waitForClose?: boolean;
}

/** One parsed response. */
export interface WireResponse {
  status: number;
  headers: Map<string, string[]>;
  body: Buffer;
  /** False when the connection ended (or we stopped) before the whole body came. */
  complete: boolean;
  /** True for an SSE stream we stopped reading on purpose. */
  streaming: boolean;
  /** Milliseconds from the first byte written to the end of this response. */
  ms: number;
}

/** Everything the exchange produced. */
export interface WireResult {
  responses: WireResponse[];
  /** The server closed (or reset) the connection. */
  closedByServer: boolean;
  /** Socket error text (e.g. ECONNRESET), if any. */
  error: string | undefined;
  /** The deadline passed before every response came and before the server closed. */
  timedOut: boolean;
  /** Milliseconds until the exchange ended (responses complete, close, or deadline). */
  ms: number;
  /** Bytes received in total. */
  received: number;
}

/** A header value (the first one) of a response, lower-case name. */
export function header(res: WireResponse, name: string): string | undefined {
  return res.headers.get(name)?.[0];
}

class Parser {
  private buf: Buffer = Buffer.alloc(0);
  readonly done: WireResponse[] = [];
  current: WireResponse | undefined;
  private mode: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailer' | 'close' | 'none' = 'head';
  private remaining = 0;
  private bodyParts: Buffer[] = [];

  constructor(
    private readonly methods: string[],
    private readonly started: number,
  ) {}

  push(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    this.run();
  }

  private run(): void {
    for (;;) {
      if (this.mode === 'head') {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        const lines = head.split('\r\n');
        const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(lines[0] ?? '');
        const status = m?.[1] ? Number(m[1]) : 0;
        const headers = new Map<string, string[]>();
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          if (i < 0) continue;
          const k = line.slice(0, i).trim().toLowerCase();
          const list = headers.get(k) ?? [];
          list.push(line.slice(i + 1).trim());
          headers.set(k, list);
        }
        if (status >= 100 && status < 200 && status !== 101) continue; // 100 Continue: the real answer follows
        this.current = { status, headers, body: Buffer.alloc(0), complete: false, streaming: false, ms: 0 };
        this.bodyParts = [];
        const method = this.methods[this.done.length] ?? 'GET';
        const te = headers.get('transfer-encoding')?.join(',').toLowerCase() ?? '';
        const cl = headers.get('content-length')?.[0];
        if (method === 'HEAD' || status === 204 || status === 304 || status === 101) this.mode = 'none';
        else if (te.includes('chunked')) this.mode = 'chunk-size';
        else if (cl !== undefined) {
          this.remaining = Number(cl);
          this.mode = 'length';
        } else this.mode = 'close';
        if (this.mode === 'none' || (this.mode === 'length' && this.remaining === 0)) {
          this.finish();
          continue;
        }
      }
      if (this.mode === 'length') {
        const take = Math.min(this.remaining, this.buf.length);
        if (take > 0) this.bodyParts.push(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.finish();
        continue;
      }
      if (this.mode === 'chunk-size') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return;
        const size = Number.parseInt(this.buf.subarray(0, eol).toString('latin1').split(';')[0] ?? '', 16);
        this.buf = this.buf.subarray(eol + 2);
        if (!Number.isFinite(size) || size === 0) {
          this.mode = 'trailer';
          continue;
        }
        this.remaining = size;
        this.mode = 'chunk-data';
        continue;
      }
      if (this.mode === 'chunk-data') {
        if (this.buf.length < this.remaining + 2) {
          // Keep what we have so a stopped stream still shows its events.
          return;
        }
        this.bodyParts.push(this.buf.subarray(0, this.remaining));
        this.buf = this.buf.subarray(this.remaining + 2);
        this.mode = 'chunk-size';
        continue;
      }
      if (this.mode === 'trailer') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = this.buf.subarray(0, eol);
        this.buf = this.buf.subarray(eol + 2);
        if (line.length === 0) this.finish();
        continue;
      }
      if (this.mode === 'close') {
        if (this.buf.length > 0) this.bodyParts.push(this.buf);
        this.buf = Buffer.alloc(0);
        return;
      }
      return;
    }
  }

  /** Partial body of an unfinished response, including a chunk not yet complete. */
  partialBody(): Buffer {
    const parts = [...this.bodyParts];
    if (this.mode === 'chunk-data' && this.buf.length > 0) parts.push(this.buf.subarray(0, this.remaining));
    return Buffer.concat(parts);
  }

  private finish(): void {
    const cur = this.current;
    if (!cur) return;
    cur.body = Buffer.concat(this.bodyParts);
    cur.complete = true;
    cur.ms = Date.now() - this.started;
    this.done.push(cur);
    this.current = undefined;
    this.mode = 'head';
  }

  /** The connection ended: a read-until-close body is complete, anything else is cut short. */
  end(stopped: boolean): void {
    const cur = this.current;
    if (!cur) return;
    cur.body = this.partialBody();
    cur.complete = this.mode === 'close' && !stopped;
    cur.ms = Date.now() - this.started;
    this.done.push(cur);
    this.current = undefined;
  }
}

/** Sends `req` to `port` on 127.0.0.1 and reads the answers. Never rejects. */
export function exchange(port: number, req: WireRequest): Promise<WireResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const parser = new Parser(req.methods, started);
    const expected = req.methods.length;
    let received = 0;
    let closedByServer = false;
    let error: string | undefined;
    let settled = false;
    let streamTimer: NodeJS.Timeout | undefined;
    const timers: NodeJS.Timeout[] = [];
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);

    const settle = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      if (streamTimer) clearTimeout(streamTimer);
      clearTimeout(deadline);
      parser.end(!closedByServer);
      socket.destroy();
      resolve({
        responses: parser.done,
        closedByServer,
        error,
        timedOut,
        ms: Date.now() - started,
        received,
      });
    };
    const deadline = setTimeout(() => settle(true), req.deadlineMs);

    socket.on('data', (d: Buffer) => {
      received += d.length;
      parser.push(d);
      if (parser.done.length >= expected && !req.waitForClose) {
        settle(false);
        return;
      }
      const cur = parser.current;
      if (
        cur &&
        req.streamGraceMs !== undefined &&
        !streamTimer &&
        (cur.headers.get('content-type')?.[0] ?? '').startsWith('text/event-stream')
      ) {
        cur.streaming = true;
        streamTimer = setTimeout(() => settle(false), req.streamGraceMs);
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      closedByServer = true;
      settle(false);
    });
    socket.on('end', () => {
      closedByServer = true;
      settle(false);
    });
    socket.on('close', () => {
      closedByServer = true;
      settle(false);
    });

    socket.once('connect', () => {
      let at = 0;
      req.chunks.forEach((c, i) => {
        at += c.delayMs ?? 0;
        const write = (): void => {
          if (settled || socket.destroyed) return;
          socket.write(c.data);
          if (i === req.chunks.length - 1 && req.halfClose) socket.end();
        };
        if (at === 0) write();
        else timers.push(setTimeout(write, at));
      });
    });
  });
}

/** Assembles a request: request line, headers in order (duplicates allowed), body. */
export function buildRequest(
  method: string,
  target: string,
  headers: readonly (readonly [string, string])[],
  body?: Buffer,
  version = 'HTTP/1.1',
): Buffer {
  let head = `${method} ${target} ${version}\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += '\r\n';
  const h = Buffer.from(head, 'utf8');
  return body ? Buffer.concat([h, body]) : h;
}
