/** `approvals`: who may release a call that policy holds for a human approval, and how long it waits. */
import { z } from 'zod';

export const approvalsSection = z
  .object({
    approvers: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Who may approve or deny: user names (token subjects, or the name an operator gives the CLI with --as), ' +
          'or `role:<name>` for every user of policy.roles.users.<name>. Empty (the default): nobody can ' +
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
