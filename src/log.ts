import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout stays free for the CLI's own output). `redact` sees every
 * serialised line before it is written: the gateway passes its leak guard, so a stored secret or a
 * minted token that reaches a log line (an upstream's error text, say) is written as `[REDACTED:name]`.
 */
export function createLogger(
  level: string,
  opts: { redact?: (line: string) => string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const { redact } = opts;
  return pino(
    { level, base: { svc: 'gatehouse' }, ...(redact ? { hooks: { streamWrite: redact } } : {}) },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

export type { Logger };
