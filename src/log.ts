import pino, { type Logger } from 'pino';
import { clip } from './util/clip.ts';

/** Longest string a log field keeps (T31: a client-chosen value never fills the log). */
const MAX_FIELD_CHARS = 1024;
/** Longest stack trace kept. */
const MAX_STACK_CHARS = 4096;
/** Elements kept of an array field. */
const MAX_ITEMS = 32;
/** Nesting kept below a line's top level. */
const MAX_DEPTH = 3;

/**
 * A log line's fields with long strings cut (marked with their length), long arrays shortened and
 * deep nesting summarised: whatever a client sends, one line stays a few KB. Errors keep type,
 * message and a bounded stack.
 */
export function boundLogFields(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return clip(value, MAX_FIELD_CHARS);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return {
      type: value.name,
      message: clip(value.message, MAX_FIELD_CHARS),
      ...(code !== undefined ? { code } : {}),
      ...(value.stack ? { stack: clip(value.stack, MAX_STACK_CHARS) } : {}),
    };
  }
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[array of ${value.length}]` : '[object]';
  if (Array.isArray(value)) {
    // Plain loops, no array callbacks: this runs inside pino's formatter on every line.
    const items: unknown[] = [];
    const n = Math.min(value.length, MAX_ITEMS);
    for (let i = 0; i < n; i++) items.push(boundLogFields(value[i], depth + 1));
    if (value.length > MAX_ITEMS) items.push(`…(${value.length} items)`);
    return items;
  }
  // Sets, Maps, Buffers and class instances other than errors are logged by pino as they are.
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null)
    return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, clip(k, 128), {
      value: boundLogFields(v, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Structured JSON logs on stderr (stdout stays free for the CLI's own output). Every line's fields go
 * through {@link boundLogFields}; messages are the gateway's own (a message built from client input is
 * clipped where it is logged, see http/server.ts `logReject`). `redact` sees every serialised line before it is written: the gateway
 * passes its leak guard, so a stored secret or a minted token that reaches a log line (an upstream's
 * error text, say) is written as `[REDACTED:name]`.
 */
export function createLogger(
  level: string,
  opts: { redact?: (line: string) => string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const { redact } = opts;
  return pino(
    {
      level,
      base: { svc: 'gatehouse' },
      formatters: { log: (fields) => boundLogFields(fields) as Record<string, unknown> },
      ...(redact ? { hooks: { streamWrite: redact } } : {}),
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

export type { Logger };
