/**
 * The durable half of the audit log: append-only segment files. Each record is
 * one line `<sha-256 hex> <canonical body>\n` (canonical JSON has no raw
 * newline); a segment is named by the seq of its first line, so a line's
 * position is its seq. An append is one `write()` of the whole batch to the
 * open segment; with `synchronous: 'full'` it is followed by `fdatasync`
 * before the batch counts as written. SQLite holds a copy as the query index
 * (src/storage/sqlite/audit-index.ts); these files are what verification reads.
 *
 * One process appends (the gateway); readers (the CLI) see what was written up
 * to the last complete line, and pick up growth on every call. Bytes after a
 * segment's last newline are a torn line (a write cut short): never a record,
 * never skipped silently: {@link AuditSegments.tornTails} reports them (verify
 * shows them) and {@link AuditSegments.repairTornTails} cuts them off at start-up,
 * saying what it cut.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { indexColumns, parseRecord } from '../audit/chain.ts';
import { makePrivateDir, openPrivateFile, writePrivateFile } from '../util/private-file.ts';
import type { AuditRow, AuditTornTail } from './types.ts';

const fdatasyncAsync = promisify(fdatasync);
const NAME = /^(\d{16})\.log$/;
const HASH_CHARS = 64;

/** Options of {@link AuditSegments}. */
export interface AuditSegmentsOptions {
  /** `normal`: a batch is written with write() (survives kill -9, not power loss); `full`: also fdatasync'd. */
  synchronous?: 'normal' | 'full';
  /** Start a new segment once the open one is at least this large (default 16 MiB). */
  segmentBytes?: number;
}

interface Segment {
  first: number;
  file: string;
  /** Complete lines (records) in the file as last read. */
  count: number;
  /** Bytes up to the end of the last complete line. */
  bytes: number;
}

/**
 * Where the lines of a segment start, cached: 8 bytes a line instead of the lines themselves, so the
 * open segment (up to `segmentBytes`) is never held in memory; lines are read from the file on demand.
 */
interface Indexed {
  file: string;
  /** File size when read. */
  size: number;
  /** Bytes of the complete lines. */
  bytes: number;
  /** Byte offset of each complete line. */
  starts: number[];
}

export class AuditSegments {
  private segments: Segment[] = [];
  private fd: number | undefined;
  private head: { seq: number; hash: string } | undefined;
  private cache: Indexed | undefined;
  private closed = false;
  private readonly full: boolean;
  private readonly segmentBytes: number;

  constructor(
    private readonly dir: string,
    opts: AuditSegmentsOptions = {},
  ) {
    // Owner-only like the rest of the data dir: the records name agents, users and arguments.
    makePrivateDir(dir);
    this.full = opts.synchronous === 'full';
    this.segmentBytes = opts.segmentBytes ?? 16 * 1024 * 1024;
    this.refresh();
  }

  /** Re-reads the directory and the growth of the last segment (cheap when nothing changed). */
  refresh(): void {
    const names = readdirSync(this.dir, { withFileTypes: true })
      .filter((e) => e.isFile() && NAME.test(e.name))
      .map((e) => e.name)
      .sort();
    const known = new Map(this.segments.map((s) => [s.file, s]));
    this.segments = names.map((n) => {
      const file = join(this.dir, n);
      return known.get(file) ?? { first: Number(n.slice(0, 16)), file, count: -1, bytes: 0 };
    });
    const last = this.segments[this.segments.length - 1];
    if (!last) {
      this.head = undefined;
      return;
    }
    if (last.count >= 0 && statSync(last.file).size === last.bytes) return;
    const loaded = this.index(last);
    const n = loaded.starts.length;
    last.count = n;
    last.bytes = loaded.bytes;
    const tail = n > 0 ? this.lines(last, n - 1, n - 1)[0] : undefined;
    this.head = tail ? { seq: last.first + n - 1, hash: tail.slice(0, HASH_CHARS) } : undefined;
    if (!tail) {
      const prev = this.segments[this.segments.length - 2];
      if (prev) {
        const pn = this.index(prev).starts.length;
        const t = pn > 0 ? this.lines(prev, pn - 1, pn - 1)[0] : undefined;
        if (t) this.head = { seq: prev.first + pn - 1, hash: t.slice(0, HASH_CHARS) };
      }
    }
  }

  /** The newest record by position. */
  headRecord(): { seq: number; hash: string } | undefined {
    return this.head ? { ...this.head } : undefined;
  }

  /** First and last position held (by file names and line counts; gaps are verify's business). */
  bounds(): { first: number; last: number } | undefined {
    const first = this.segments[0];
    if (!first || !this.head) return undefined;
    return { first: first.first, last: this.head.seq };
  }

  /**
   * Appends rows that continue the head's seq (one write; fdatasync when
   * synchronous is full). Throws, writing nothing, when they do not. Chaining
   * the hashes is the writer's job; verification checks it.
   */
  async append(rows: readonly AuditRow[]): Promise<void> {
    const fd = this.write(rows);
    if (this.full && fd !== undefined) await fdatasyncAsync(fd);
  }

  /** The write() half of {@link append}; returns the file it wrote to. */
  write(rows: readonly AuditRow[]): number | undefined {
    if (this.closed) throw new Error('audit log is closed');
    const firstRow = rows[0];
    if (!firstRow) return undefined;
    // An empty log starts where its first batch says (seq 1, or a migrated log's first retained seq).
    const expected = this.head ? this.head.seq + 1 : firstRow.seq;
    rows.forEach((r, i) => {
      if (r.seq !== expected + i)
        throw new Error(`audit append out of order: seq ${r.seq}, expected ${expected + i}`);
    });
    const fd = this.openForAppend(firstRow.seq);
    let text = '';
    for (const r of rows) text += `${r.hash} ${r.body}\n`;
    const buf = Buffer.from(text);
    const seg = this.segments[this.segments.length - 1] as Segment;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(fd, buf, off);
    } catch (err) {
      // A write cut short (ENOSPC, EIO, EFBIG) left part of the batch in the file. The batch is
      // rejected, so those bytes are no record: cut them off now, or the next batch would land
      // after them and its first record would be garbage (bad_record, a shifted chain) for good.
      // Closing makes the next write reopen the file, which cuts whatever is still there.
      if (off > 0) this.cutQuietly(fd, seg.bytes);
      this.closeFd();
      throw err;
    }
    seg.count += rows.length;
    seg.bytes += buf.length;
    const last = rows[rows.length - 1] as AuditRow;
    this.head = { seq: last.seq, hash: last.hash };
    return fd;
  }

  /** Flushes written records to stable storage (what `full` does per batch; `normal` before each checkpoint). */
  async sync(): Promise<void> {
    if (this.fd !== undefined) await fdatasyncAsync(this.fd);
  }

  /** Rows at positions `from..to`, ascending, at most `limit`; query columns are read from each body. */
  range(from: number, to: number, limit: number): AuditRow[] {
    const out: AuditRow[] = [];
    for (let i = 0; i < this.segments.length && out.length < limit; i++) {
      const seg = this.segments[i] as Segment;
      const next = this.segments[i + 1];
      if (next && next.first <= from) continue;
      if (seg.first > to) break;
      const n = this.index(seg).starts.length;
      const first = Math.max(0, from - seg.first);
      const last = Math.min(n - 1, to - seg.first, first + (limit - out.length) - 1);
      if (first > last) continue;
      const lines = this.lines(seg, first, last);
      for (let j = 0; j < lines.length; j++) out.push(toRow(seg.first + first + j, lines[j] as string));
    }
    return out;
  }

  /**
   * Drops positions below `floor`: whole segments are deleted, the one holding
   * `floor` is rewritten (new file first, then the old one goes). Returns how many.
   */
  prune(floor: number): number {
    let deleted = 0;
    for (const seg of [...this.segments]) {
      if (seg.first >= floor) break;
      const n = this.index(seg).starts.length;
      const keep = n > 0 ? this.lines(seg, 0, n - 1).slice(Math.max(0, floor - seg.first)) : [];
      deleted += n - keep.length;
      const active = seg === this.segments[this.segments.length - 1];
      if (active) this.closeFd();
      if (keep.length > 0) {
        const file = join(this.dir, name(floor));
        writePrivateFile(file, keep.map((l) => `${l}\n`).join(''), { flush: true });
      }
      unlinkSync(seg.file);
    }
    this.cache = undefined;
    this.segments = [];
    this.refresh();
    return deleted;
  }

  close(): void {
    this.closed = true;
    this.closeFd();
  }

  /**
   * Bytes after the last complete line of each segment: a torn line, what a write cut short by a
   * crash or power loss leaves. Never acknowledged (an append resolves after its write), so no
   * record is lost with them; they are reported, never skipped silently.
   */
  tornTails(): AuditTornTail[] {
    const out: AuditTornTail[] = [];
    for (const seg of this.segments) {
      const size = statSync(seg.file).size;
      const end = seg.count >= 0 && size === seg.bytes ? size : completeBytes(seg.file, size);
      if (end < size) out.push({ segment: basename(seg.file), offset: end, bytes: size - end });
    }
    return out;
  }

  /**
   * Cuts every torn line off (start-up, before the first append) and returns what was cut, with
   * the SHA-256 of the bytes removed, so the caller can log and record the repair.
   */
  repairTornTails(): (AuditTornTail & { sha256: string })[] {
    if (this.closed) throw new Error('audit log is closed');
    const out: (AuditTornTail & { sha256: string })[] = [];
    for (const torn of this.tornTails()) {
      const seg = this.segments.find((s) => basename(s.file) === torn.segment);
      if (!seg) continue;
      if (this.fd !== undefined && seg === this.segments[this.segments.length - 1]) this.closeFd();
      const fd = openSync(seg.file, 'r+');
      try {
        const cut = Buffer.alloc(torn.bytes);
        readSync(fd, cut, 0, torn.bytes, torn.offset);
        ftruncateSync(fd, torn.offset);
        out.push({ ...torn, sha256: createHash('sha256').update(cut).digest('hex') });
      } finally {
        closeSync(fd);
      }
    }
    if (out.length > 0) {
      this.cache = undefined;
      for (const seg of this.segments) seg.count = -1;
      this.refresh();
    }
    return out;
  }

  /** Best-effort truncation after a failed write; the reopen path cuts again if this fails too. */
  private cutQuietly(fd: number, bytes: number): void {
    try {
      ftruncateSync(fd, bytes);
      this.cache = undefined;
    } catch {
      // The disk refuses even this (read-only now): openForAppend cuts before the next write.
    }
  }

  private openForAppend(seq: number): number {
    const seg = this.segments[this.segments.length - 1];
    if (this.fd !== undefined && seg && seg.bytes < this.segmentBytes) return this.fd;
    this.closeFd();
    if (!seg || seg.bytes >= this.segmentBytes) {
      const file = join(this.dir, name(seq));
      this.fd = openPrivateFile(file, 'a');
      this.segments.push({ first: seq, file, count: 0, bytes: 0 });
      return this.fd;
    }
    // Reopening the last segment: cut a torn final line (a write cut short by a
    // crash or power loss; never acknowledged, since acks follow the write).
    this.fd = openSync(seg.file, 'r+');
    if (fstatSync(this.fd).size !== seg.bytes) ftruncateSync(this.fd, seg.bytes);
    closeSync(this.fd);
    this.fd = openPrivateFile(seg.file, 'a');
    return this.fd;
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Where the complete lines of a segment start (cached). A segment that grew since (the open one: the
   * query index catches up after every batch) is scanned from where the cache ended, not again from its
   * start: catching up costs the new bytes only, whatever the segment's size.
   */
  private index(seg: Segment): Indexed {
    const size = statSync(seg.file).size;
    let c = this.cache;
    if (c && c.file === seg.file && c.size === size) return c;
    if (!c || c.file !== seg.file || size < c.bytes) {
      c = { file: seg.file, size: 0, bytes: 0, starts: [] };
      this.cache = c;
    }
    const fd = openSync(seg.file, 'r');
    try {
      const chunk = Buffer.allocUnsafe(1024 * 1024);
      let pos = c.bytes;
      let lineStart = c.bytes;
      while (pos < size) {
        const got = readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
        if (got <= 0) break;
        for (let i = chunk.indexOf(0x0a, 0); i !== -1 && i < got; i = chunk.indexOf(0x0a, i + 1)) {
          c.starts.push(lineStart);
          lineStart = pos + i + 1;
        }
        pos += got;
      }
      c.bytes = lineStart;
      c.size = size;
    } finally {
      closeSync(fd);
    }
    return c;
  }

  /** Lines `first..last` (0-based, inclusive) of an indexed segment, read from its file. */
  private lines(seg: Segment, first: number, last: number): string[] {
    const c = this.index(seg);
    const start = c.starts[first];
    if (start === undefined || last < first) return [];
    const end = last + 1 < c.starts.length ? (c.starts[last + 1] as number) : c.bytes;
    const buf = Buffer.allocUnsafe(end - start);
    const fd = openSync(seg.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8', 0, buf.length - 1).split('\n');
  }
}

/** Bytes up to the end of the last complete line of a file, read backwards in chunks. */
function completeBytes(file: string, size: number): number {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

function name(seq: number): string {
  return `${String(seq).padStart(16, '0')}.log`;
}

/** A stored line as a row: position, hash, body, and the query columns of the body (when it parses). */
function toRow(seq: number, line: string): AuditRow {
  const hash = line.slice(0, HASH_CHARS);
  const body = line.slice(HASH_CHARS + 1);
  const row: AuditRow = {
    seq,
    prevHash: '',
    hash,
    body,
    eventId: '',
    time: 0,
    type: '',
    requestId: undefined,
    grantId: undefined,
    sessionId: undefined,
    agent: undefined,
    user: undefined,
    jti: undefined,
    server: undefined,
    tool: undefined,
    decision: undefined,
  };
  try {
    const rec = parseRecord(row);
    return { ...row, prevHash: rec.prev, ...indexColumns(rec.event) };
  } catch {
    return row; // verify reports it as bad_record
  }
}
