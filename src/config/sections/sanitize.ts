/** `sanitize`: the result sanitisers (docs/sanitization.md), per family and per tool. */
import { z } from 'zod';

const action = z.enum(['off', 'flag', 'redact', 'block']);
const injectionAction = z.enum(['off', 'flag', 'wrap', 'block']);

/** Per-family actions; every key optional (unset keys keep the defaults). */
const actions = {
  controlChars: action
    .optional()
    .describe('ANSI/OSC escape sequences, C0/C1 controls (T21). redact = strip. Default redact.'),
  invisibleUnicode: action
    .optional()
    .describe(
      'Tag characters, zero-width, bidi controls, variation-selector runs (T22). redact = strip. Default redact.',
    ),
  injection: injectionAction
    .optional()
    .describe(
      'Instruction-like content (T18, T23, T24). wrap = mark the text as quoted data and defang fake tags. Default flag.',
    ),
  secrets: action
    .optional()
    .describe(
      'Keys, tokens, private keys, connection strings (T19, T20). redact = [REDACTED:<rule>]. Default redact.',
    ),
  pii: action
    .optional()
    .describe(
      'E-mail addresses, phone, card, SSN, IBAN numbers (T19), an optional profile: flag, redact = [REDACTED:pii-<kind>] or block to turn it on. Default off.',
    ),
  structure: action
    .optional()
    .describe(
      "structuredContent vs the tool's outputSchema, and the size caps. redact = drop non-conforming structuredContent. Default flag.",
    ),
};

export const sanitizeSection = z
  .object({
    enabled: z.boolean().default(true).describe('Run the result sanitisers (stage sanitize-result).'),
    defaults: z
      .object(actions)
      .strict()
      .prefault({})
      .describe('Actions for every tool: off | flag | redact | block.'),
    injectionThreshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Injection score (0..1) at or above which instruction-like signals become findings.'),
    pii: z
      .array(z.enum(['email', 'phone', 'credit-card', 'us-ssn', 'iban', 'ip-address']))
      .default(['email', 'phone', 'credit-card', 'us-ssn', 'iban'])
      .describe('PII kinds the pii detector looks for (when defaults.pii or a tool turns it on).'),
    secrets: z
      .object({
        allow: z
          .array(z.string().min(1))
          .default([])
          .describe('Matches to let through: exact values, or /regex/flags that must match the whole value.'),
        disable: z
          .array(z.string().min(1))
          .default([])
          .describe('Secret rule ids not to run (docs/sanitization.md).'),
      })
      .strict()
      .prefault({}),
    maxTextChars: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024)
      .describe('A text content longer than this is a structure finding (text-too-large).'),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024)
      .describe('Decoded bytes of an image/audio payload above which it is a structure finding.'),
    maxResourceBytes: z
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024)
      .describe('Decoded bytes of an embedded resource blob above which it is a structure finding.'),
    taint: z
      .object({
        sources: z
          .array(z.string().min(1))
          .default([])
          .describe(
            'Exposed tool names, prompt names or resource URIs (globs with "*", e.g. "github__get_issue", ' +
              '"web__*") whose results are external content: a grant that receives one is tainted (context.read ' +
              'gets "untrusted" and "untrusted:<server>"), findings or not.',
          ),
        findings: z
          .array(z.enum(['injection', 'invisible-unicode', 'control-chars', 'secret', 'pii', 'structure']))
          .default(['injection', 'invisible-unicode'])
          .describe(
            'Finding families that taint the grant that receives them, from any server (context.read also ' +
              'gets "finding:<family>"). [] for none.',
          ),
      })
      .strict()
      .prefault({})
      .describe(
        'Taint-aware gating (docs/sanitization.md "Taint"): what marks a grant as having read untrusted ' +
          'content, so policy can require approval for outward actions afterwards. Runs even when enabled is false (sources only).',
      ),
    tools: z
      .record(
        z.string().min(1),
        z.object({ ...actions, injectionThreshold: z.number().min(0).max(1).optional() }).strict(),
      )
      .default({})
      .describe(
        'Per-tool overrides by exposed tool name or glob with "*" (e.g. "github__*"); the first matching key in ' +
          'file order wins. Responses to prompts and resources use the prompt name or resource URI.',
      ),
  })
  .strict()
  .prefault({})
  .describe(
    'Result sanitisers: control and invisible characters, injection signals, secrets, PII, structure.',
  );
