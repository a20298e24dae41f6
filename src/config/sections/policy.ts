/** `policy`: Cedar policy files, role memberships and operator-assigned tool attributes. */
import { z } from 'zod';

const toolAttributes = z
  .object({
    risk: z
      .string()
      .min(1)
      .optional()
      .describe('Operator-assigned risk, e.g. low | medium | high | critical.'),
    sideEffect: z
      .string()
      .min(1)
      .optional()
      .describe('Operator-assigned side-effect class, e.g. none | read | write | destructive | external.'),
    owner: z.string().min(1).optional().describe('Team or person that owns the tool.'),
  })
  .strict();

export const policySection = z
  .object({
    files: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Cedar policy files (*.cedar) or directories of them, relative to the config file. ' +
          'Deny by default: with no policies every tool call is denied. Reloaded on SIGHUP.',
      ),
    roles: z
      .object({
        agents: z
          .record(z.string(), z.array(z.string().min(1)))
          .default({})
          .describe('Roles of agents (OAuth client ids): Gatehouse::Role parents of the Agent entity.'),
        users: z
          .record(z.string(), z.array(z.string().min(1)))
          .default({})
          .describe('Roles of users (token subjects): Gatehouse::Role parents of the User entity.'),
      })
      .strict()
      .prefault({})
      .describe('Role memberships used by policies (principal in Gatehouse::Role::"…").'),
    tools: z
      .record(z.string().min(1), toolAttributes)
      .default({})
      .describe(
        'Operator-assigned tool attributes by exposed tool name or glob with "*" (e.g. "github__delete_*"); ' +
          'the first matching key in file order wins. Missing attributes are "unknown".',
      ),
  })
  .strict()
  .prefault({})
  .describe('Least privilege: Cedar policies decide every list, call, read and prompt (docs/policy.md).');
