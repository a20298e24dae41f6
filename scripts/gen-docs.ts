/**
 * Generates docs/config.md (from the zod schema) and docs/errors.md (from the
 * error table). `npm run docs` writes them; test/unit/docs.test.ts fails when
 * the committed files drift.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.ts';
import { ERRORS } from '../src/errors.ts';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  required?: string[];
  minimum?: number;
  maximum?: number;
  format?: string;
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((e) => `\`${JSON.stringify(e)}\``).join(' \\| ');
  if (s.type === 'array') return `array of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && !s.properties && typeof s.additionalProperties === 'object') {
    return `map of ${typeOf(s.additionalProperties)}`;
  }
  if (s.format === 'uri') return 'URL';
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'object');
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  const range = s.minimum !== undefined || max !== undefined ? ` (${s.minimum ?? ''}..${max ?? ''})` : '';
  return t + range;
}

function rows(s: JsonSchema, path: string, out: string[]): void {
  const required = new Set(s.required ?? []);
  for (const [key, prop] of Object.entries(s.properties ?? {})) {
    const p = path ? `${path}.${key}` : key;
    const def =
      prop.default !== undefined
        ? `\`${JSON.stringify(prop.default)}\``
        : required.has(key)
          ? '**required**'
          : '';
    out.push(`| \`${p}\` | ${typeOf(prop)} | ${def} | ${(prop.description ?? '').replace(/\|/g, '\\|')} |`);
    if (prop.properties) rows(prop, p, out);
    const variants =
      prop.oneOf ??
      prop.anyOf ??
      (typeof prop.additionalProperties === 'object'
        ? (prop.additionalProperties.oneOf ?? prop.additionalProperties.anyOf)
        : undefined);
    if (variants) {
      for (const v of variants) {
        const kind = v.properties?.type?.const;
        rows(v, `${p}.<name>${kind ? ` (type: ${String(kind)})` : ''}`, out);
      }
    }
  }
}

export function configDoc(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs`. Do not edit: test/unit/docs.test.ts fails when this drifts. -->',
    '',
    'Gatehouse reads one YAML file (`gatehouse start --config FILE`). Validate it with `gatehouse check-config FILE`:',
    'every problem is printed on its own line with the YAML path and line. Unknown keys are errors.',
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
  ];
  rows(schema, '', out);
  out.push(
    '',
    '## Example',
    '',
    '```yaml',
    'server:',
    '  host: 127.0.0.1',
    '  port: 8080',
    'limits:',
    '  callTimeoutMs: 30000',
    'upstreams:',
    '  github:',
    '    type: stdio',
    '    command: npx',
    '    args: ["-y", "@modelcontextprotocol/server-github"]',
    '  docs:',
    '    type: http',
    '    url: https://docs.example.com/mcp',
    '```',
    '',
  );
  return out.join('\n');
}

export function errorsDoc(): string {
  const out = [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `npm run docs`. Do not edit: test/unit/docs.test.ts fails when this drifts. -->',
    '',
    'Every failure carries a typed code. Transport-level failures (the HTTP exchange cannot go on) answer with the',
    'HTTP status below and a JSON-RPC error body; failures of one JSON-RPC request answer that request with the',
    'JSON-RPC code below (HTTP 200 when the exchange itself succeeded). The code is in `error.data.gatehouse`.',
    '',
    '| code | HTTP | JSON-RPC | stage | meaning |',
    '|---|---|---|---|---|',
  ];
  for (const [code, e] of Object.entries(ERRORS)) {
    out.push(`| \`${code}\` | ${e.http} | ${e.jsonrpc} | ${e.stage} | ${e.description} |`);
  }
  out.push('');
  return out.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../docs/config.md', import.meta.url), configDoc());
  writeFileSync(new URL('../docs/errors.md', import.meta.url), errorsDoc());
  process.stdout.write('wrote docs/config.md and docs/errors.md\n');
}
