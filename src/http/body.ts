/** Reading the small bodies of HTML forms and JSON admin requests (the connect flow, the console). */
import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../errors.ts';

/** The body as UTF-8 text; over `max` bytes the request is destroyed and the promise rejects (body_too_large). */
export function readSmallBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new GatehouseError('body_too_large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
