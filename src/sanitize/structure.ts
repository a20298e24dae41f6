/**
 * Structure of a tool result: `structuredContent` against the tool's `outputSchema` (MCP 2025-06-18
 * "Structured Content": "Servers MUST provide structured results that conform to this schema"), and
 * size caps on text, images/audio and embedded resources. Findings carry no span (`start = end = 0`)
 * and name the place in the message instead.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** Size caps (characters of text; decoded bytes of base64 payloads). */
export interface SizeCaps {
  readonly maxTextChars: number;
  readonly maxImageBytes: number;
  readonly maxResourceBytes: number;
}

const ajv2020 = new Ajv2020({ allErrors: false, strict: false, validateFormats: false });
const ajv07 = new Ajv({ allErrors: false, strict: false, validateFormats: false });
/** Compiled validators by schema object (tool definitions are kept per session and reused). */
const validators = new WeakMap<object, ValidateFunction | Error>();

/**
 * Checks `structuredContent` against `outputSchema`. Returns undefined when it conforms (or there is no
 * schema), else a short problem description. A schema Ajv cannot compile is reported, not trusted.
 */
export function checkOutputSchema(
  outputSchema: unknown,
  result: Record<string, unknown>,
): string | undefined {
  if (outputSchema === null || typeof outputSchema !== 'object') return undefined;
  if (result.isError === true) return undefined; // an error result need not carry structured content
  let v = validators.get(outputSchema);
  if (v === undefined) {
    try {
      const dialect = (outputSchema as { $schema?: unknown }).$schema;
      v = (typeof dialect === 'string' && /draft-0[4-7]/.test(dialect) ? ajv07 : ajv2020).compile(
        outputSchema,
      );
    } catch (err) {
      v = err instanceof Error ? err : new Error(String(err));
    }
    validators.set(outputSchema, v);
  }
  if (v instanceof Error) return `the tool's outputSchema is invalid: ${v.message}`;
  if (!Object.hasOwn(result, 'structuredContent'))
    return 'the tool declares an outputSchema but the result has no structuredContent';
  if (v(result.structuredContent)) return undefined;
  const e = v.errors?.[0];
  return `structuredContent does not match the outputSchema: ${e ? `${e.instancePath || '/'} ${e.message ?? e.keyword}` : 'invalid'}`;
}

/** Decoded size of a base64 string, without decoding it. */
export function base64Bytes(b64: string): number {
  let pad = 0;
  if (b64.endsWith('==')) pad = 2;
  else if (b64.endsWith('=')) pad = 1;
  return Math.floor((b64.length * 3) / 4) - pad;
}
