/** `bus`: the message bus between replicas of one cluster (docs/deploy.md). */
import { z } from 'zod';
import { secretRef } from './auth.ts';

export const busSection = z
  .object({
    kind: z
      .enum(['none', 'redis'])
      .default('none')
      .describe(
        'none: one process (the default). redis: replicas share revocations, grant ends, approval decisions and a session directory through Redis (pub/sub + keys), and forward a request to the replica that owns its session.',
      ),
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe('Redis URL (redis://host:6379/0, rediss:// for TLS); required when kind is redis.'),
    password: secretRef
      .optional()
      .describe(
        'Redis password (AUTH / ACL), kept out of the URL: {env: …} or {file: …}. A user name goes in the URL (redis://gatehouse@host:6379).',
      ),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{1,64}$/, 'letters, digits and : . _ - only (at most 64)')
      .default('gatehouse:')
      .describe(
        'Prefix of every Redis key and channel, so several clusters (or test runs) can share one Redis.',
      ),
    replicaId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits and . _ - only (at most 64)')
      .optional()
      .describe(
        "This replica's name in the cluster (audit chain, session directory); default: the host name and a random suffix. Use the pod name in Kubernetes.",
      ),
    advertiseUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'The URL other replicas use to reach this one (its pod address and port, never the load balancer); default: http://<server.host>:<bound port>.',
      ),
    secret: secretRef
      .optional()
      .describe(
        'Shared cluster secret (at least 32 characters) that authenticates forwarded requests between replicas (HMAC); required when kind is redis. Use {env: …} or {file: …}.',
      ),
  })
  .strict()
  .prefault({})
  .superRefine((b, ctx) => {
    if (b.kind !== 'redis') return;
    if (b.url === undefined)
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when kind is redis' });
    if (b.secret === undefined)
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'required when kind is redis' });
    else if (typeof b.secret === 'string' && b.secret.length < 32)
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'must be at least 32 characters' });
  })
  .describe('The message bus between replicas of one cluster (docs/deploy.md).');
