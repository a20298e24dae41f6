import pino, { type Logger } from 'pino';

/** Structured JSON logs on stderr (stdout stays free for the CLI's own output). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { svc: 'gatehouse' } }, pino.destination({ fd: 2, sync: false }));
}

export type { Logger };
