/** `approvals`: who may release a call that policy holds for a human approval, and how long it waits. */
import { z } from 'zod';
import { secretRef } from './auth.ts';

const webhook = z
  .object({
    url: z
      .url()
      .describe(
        'Where each approval event is POSTed as signed JSON (docs/approvals.md, Webhook). HTTPS; private ' +
          'and loopback addresses are refused (SSRF guard), redirects are not followed.',
      ),
    secret: secretRef.describe(
      'HMAC-SHA256 key: gatehouse-signature is v1=<hex HMAC(secret, "<gatehouse-timestamp>.<body>")>.',
    ),
    allowLoopbackHttp: z
      .boolean()
      .default(false)
      .describe('Development only: allow http:// and loopback addresses (nothing else private).'),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (!w.allowLoopbackHttp && !w.url.startsWith('https://'))
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be https (or set allowLoopbackHttp)' });
  });

export const approvalsSection = z
  .object({
    approvers: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Who may approve or deny: user names (token subjects, or the name an operator gives the CLI with --as), ' +
          'or `role:<name>` for every user of policy.roles.users.<name>, or `group:<name>` for console logins ' +
          'whose groups claim has it (admin.external.groupsClaim). Empty (the default): nobody can ' +
          'approve, so a call policy marks @approval("required") fails closed with approval_required.',
      ),
    allowSelfApproval: z
      .boolean()
      .default(false)
      .describe(
        'Separation of duties: false (the default) refuses an approver who is the user (or agent) that ' +
          'made the request. Set true only where one person is both requester and approver.',
      ),
    holdSec: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(30)
      .describe(
        'How long a call waits for the decision before it is answered approval_pending (the request stays ' +
          'open until ttlSec: the identical call retried later consumes the approval). 0: answer at once.',
      ),
    ttlSec: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600)
      .describe(
        'Life of an approval request from its creation: past it, a pending request can no longer be decided ' +
          'and an approval not yet used can no longer be consumed (approval_expired).',
      ),
    webhooks: z
      .array(webhook)
      .default([])
      .describe(
        'Receivers of approval events (requested, granted, denied, expired) for chat or ticketing. A ' +
          'message informs and never approves: decisions are made through the CLI (or the console).',
      ),
    webhookRetry: z
      .object({
        attempts: z
          .number()
          .int()
          .min(1)
          .max(20)
          .default(5)
          .describe('Tries per message, the first included.'),
        baseMs: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('Wait before the second try; doubled for each later one (each try is signed anew).'),
      })
      .strict()
      .prefault({})
      .describe('Retries of a webhook message that failed (network error or a status other than 2xx).'),
    progressIntervalSec: z
      .number()
      .int()
      .positive()
      .default(5)
      .describe(
        'While a call waits and the client sent a progressToken, a notifications/progress this often ' +
          '(and one at once, naming the approval id) keeps the client from timing out.',
      ),
  })
  .strict()
  .prefault({})
  .describe('Human approval of calls that policy marks @approval("required") (docs/approvals.md).');
