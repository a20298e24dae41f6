/** `server`: the front HTTP listener. */
import { z } from 'zod';

export const serverSection = z
  .object({
    host: z
      .string()
      .default('127.0.0.1')
      .describe(
        'Address to bind. Loopback by default; binding elsewhere exposes the gateway to the network.',
      ),
    port: z.number().int().min(0).max(65535).default(8080).describe('TCP port; 0 picks a free port.'),
    publicUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'External base URL when the gateway sits behind a proxy (e.g. https://mcp.example.com). Its host is allowed in Host and its origin in Origin.',
      ),
    allowedOrigins: z
      .array(z.string())
      .default([])
      .describe(
        'Extra browser origins allowed to call /mcp (exact match, e.g. https://app.example.com). Requests without Origin are allowed.',
      ),
    allowedHosts: z
      .array(z.string())
      .default([])
      .describe(
        'Extra Host header values accepted (DNS-rebinding protection). Loopback names and the bind address are always accepted.',
      ),
  })
  .strict()
  .prefault({})
  .describe('The front HTTP listener.');
