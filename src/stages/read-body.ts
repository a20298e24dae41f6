import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';

/** Reads the request body under limits.maxRequestBytes (T30: bounded input). */
export function readBody(ctx: HttpContext): Outcome | Promise<Outcome> {
  const max = ctx.gw.config.limits.maxRequestBytes;
  const declared = Number(ctx.req.headers['content-length'] ?? '0');
  if (declared > max) return tooLarge(ctx, declared);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    ctx.req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        resolve(tooLarge(ctx, size));
        return;
      }
      chunks.push(c);
    });
    ctx.req.once('end', () => {
      if (done) return;
      done = true;
      ctx.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      resolve(undefined);
    });
    ctx.req.once('error', () => {
      if (done) return;
      done = true;
      resolve(new GatehouseError('invalid_request', 'the request body could not be read'));
    });
  });
}

function tooLarge(ctx: HttpContext, size: number): GatehouseError {
  // Stop reading; the connection closes after the 413 answer.
  ctx.res.setHeader('connection', 'close');
  return new GatehouseError(
    'body_too_large',
    `request body exceeds ${ctx.gw.config.limits.maxRequestBytes} bytes`,
    {
      detail: `${size} bytes`,
    },
  );
}
