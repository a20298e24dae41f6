/**
 * Loading Cedar policy files: split each file into policies (keeping their position), parse them,
 * assign ids, and validate the whole set against the Gatehouse schema. Every problem names the file,
 * the line and, when known, the policy id.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cedar, type DetailedError, type Expr, type PolicyJson } from './cedar.ts';
import { GATEHOUSE_SCHEMA, NAMESPACE } from './schema.ts';

/** Context fields whose value changes from call to call; a policy reading one cannot be cached per grant. */
export const DYNAMIC_CONTEXT_FIELDS: ReadonlySet<string> = new Set(['args', 'numbers', 'time', 'read']);

/** One problem found while loading policies. */
export interface PolicyProblem {
  readonly file: string;
  /** 1-based line, when the problem has a position. */
  readonly line?: number;
  readonly policyId?: string;
  readonly message: string;
}

/** Thrown by {@link loadPolicySet} when any file cannot be read, parsed or validated. */
export class PolicyLoadError extends Error {
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(
      `invalid policies: ${problems
        .map(
          (p) =>
            `${p.file}${p.line === undefined ? '' : `:${p.line}`}${p.policyId === undefined ? '' : ` (${p.policyId})`}: ${p.message}`,
        )
        .join('; ')}`,
    );
    this.name = 'PolicyLoadError';
  }
}

/** One parsed and validated policy. */
export interface LoadedPolicy {
  /** `@id("…")` when given, else `<file name>#<n>` (n counts policies in the file from 1). */
  readonly id: string;
  readonly file: string;
  /** Line of the policy's first character (its first annotation, if any). */
  readonly line: number;
  readonly effect: 'permit' | 'forbid';
  /** Source text of the policy, including the final `;`. */
  readonly text: string;
  readonly json: PolicyJson;
  /** Carries `@approval("required")`: when only such policies deny, the decision is approval_required. */
  readonly approval: boolean;
  /** Context fields among {@link DYNAMIC_CONTEXT_FIELDS} the policy reads; non-empty means not cacheable. */
  readonly dynamicFields: readonly string[];
}

/** A validated set of policies, ready for {@link PolicyEngine}. */
export interface PolicySet {
  readonly policies: readonly LoadedPolicy[];
  readonly byId: ReadonlyMap<string, LoadedPolicy>;
  /** Validator warnings (not fatal). */
  readonly warnings: readonly PolicyProblem[];
}

interface Chunk {
  text: string;
  /** Character offset of the chunk in the file. */
  start: number;
}

/**
 * Splits Cedar policy text after each top-level `;`, outside string literals and `//` comments. Chunks that hold
 * only whitespace and comments are dropped. Exported for tests.
 */
export function splitPolicies(source: string): { text: string; start: number }[] {
  const chunks: Chunk[] = [];
  let start = 0;
  let i = 0;
  let meaningful = false;
  while (i < source.length) {
    const ch = source[i];
    if (ch === '/' && source[i + 1] === '/') {
      while (i < source.length && source[i] !== '\n') i++;
      continue;
    }
    if (ch === '"') {
      meaningful = true;
      i++;
      while (i < source.length && source[i] !== '"') i += source[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (ch === ';') {
      chunks.push({ text: source.slice(start, i + 1), start });
      start = i + 1;
      meaningful = false;
    } else if (ch !== undefined && !/\s/.test(ch)) {
      meaningful = true;
    }
    i++;
  }
  if (meaningful) chunks.push({ text: source.slice(start), start });
  // Move each chunk's start past leading whitespace and comments so its line is the policy's first line.
  return chunks.map((c) => {
    const m = /^(?:\s|\/\/[^\n]*)*/.exec(c.text);
    const skip = m ? m[0].length : 0;
    return { text: c.text.slice(skip), start: c.start + skip };
  });
}

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

/** Cedar reports byte offsets; convert one, relative to `text`, into a character offset. */
function byteToChar(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
}

function describe(e: DetailedError): string {
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  const help = e.help ? ` (${e.help})` : '';
  return `${e.message}${label ? `: ${label}` : ''}${help}`;
}

/**
 * Per-call entities and the context field that names each: the same data is reachable through an entity
 * literal (`Gatehouse::Args::"call".getTag("repo")`), which must count as reading the field.
 */
const CALL_ENTITY_FIELDS: ReadonlyMap<string, string> = new Map([
  [`${NAMESPACE}::Args`, 'args'],
  [`${NAMESPACE}::Numbers`, 'numbers'],
]);

/**
 * Which context fields an expression reads. Any use of `context` other than reading or testing a named
 * field (e.g. `context == {...}`) counts as reading all of them (`grant` and `approved` included), to stay
 * safe; so does any literal of a per-call entity type (`Gatehouse::Args::"call"`), which reads the same tags
 * as `context.args`.
 */
export function contextFieldsRead(json: PolicyJson): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const rec = node as Record<string, unknown>;
    for (const op of ['.', 'has'] as const) {
      const inner = rec[op] as { left?: Expr; attr?: unknown } | undefined;
      if (inner && typeof inner === 'object' && isContextVar(inner.left)) {
        const attrs = Array.isArray(inner.attr) ? inner.attr : [inner.attr];
        const first = attrs[0];
        if (typeof first === 'string') found.add(first);
        return;
      }
    }
    if (isContextVar(node)) {
      for (const f of DYNAMIC_CONTEXT_FIELDS) found.add(f);
      found.add('approved');
      found.add('grant');
      return;
    }
    const entity = rec['__entity'] as { type?: unknown } | undefined;
    if (entity && typeof entity === 'object' && typeof entity.type === 'string') {
      const field = CALL_ENTITY_FIELDS.get(entity.type);
      if (field !== undefined) found.add(field);
    }
    for (const v of Object.values(rec)) visit(v);
  };
  visit(json.conditions);
  return found;
}

function isContextVar(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { Var?: unknown }).Var === 'context';
}

/**
 * Reads, parses and validates policy files (Cedar text, `.cedar`). Throws {@link PolicyLoadError} listing
 * every problem (file, line, policy id, message) when any file is unreadable, a policy does not parse,
 * ids collide, an `@approval` annotation is misused, or the set does not validate against the schema.
 */
export function loadPolicySet(opts: { files: readonly string[] }): PolicySet {
  const problems: PolicyProblem[] = [];
  const policies: LoadedPolicy[] = [];
  const byId = new Map<string, LoadedPolicy>();
  if (opts.files.length === 0) problems.push({ file: '(none)', message: 'no policy files given' });
  for (const file of opts.files) {
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ file, message: `cannot read file: ${(err as Error).message}` });
      continue;
    }
    let n = 0;
    for (const chunk of splitPolicies(source)) {
      n++;
      const line = lineAt(source, chunk.start);
      const parsed = cedar.policyToJson(chunk.text);
      if (parsed.type === 'failure') {
        for (const e of parsed.errors) {
          const loc = e.sourceLocations?.[0];
          const at = loc ? chunk.start + byteToChar(chunk.text, loc.start) : chunk.start;
          problems.push({ file, line: lineAt(source, at), message: describe(e) });
        }
        continue;
      }
      const json = parsed.json;
      const id = json.annotations?.['id'] ?? `${path.basename(file)}#${n}`;
      const fields = contextFieldsRead(json);
      const approvalValue = json.annotations?.['approval'];
      const approval = approvalValue !== undefined;
      if (approval) {
        if (approvalValue !== 'required') {
          problems.push({ file, line, policyId: id, message: '@approval must be "required"' });
        } else if (json.effect !== 'forbid') {
          problems.push({
            file,
            line,
            policyId: id,
            message: '@approval is only allowed on forbid policies',
          });
        } else if (!fields.has('approved')) {
          problems.push({
            file,
            line,
            policyId: id,
            message: '@approval policy must test context.approved (e.g. unless { context.approved })',
          });
        }
      }
      const existing = byId.get(id);
      if (existing) {
        problems.push({
          file,
          line,
          policyId: id,
          message: `duplicate policy id (also ${existing.file}:${existing.line}); set a unique @id`,
        });
        continue;
      }
      const policy: LoadedPolicy = {
        id,
        file,
        line,
        effect: json.effect,
        text: chunk.text,
        json,
        approval,
        dynamicFields: [...fields].filter((f) => DYNAMIC_CONTEXT_FIELDS.has(f)).sort(),
      };
      byId.set(id, policy);
      policies.push(policy);
    }
  }
  const warnings: PolicyProblem[] = [];
  if (problems.length === 0 && policies.length > 0) {
    const staticPolicies: Record<string, string> = {};
    for (const p of policies) staticPolicies[p.id] = p.text;
    const answer = cedar.validate({ schema: GATEHOUSE_SCHEMA, policies: { staticPolicies } });
    if (answer.type === 'failure') {
      for (const e of answer.errors) problems.push({ file: opts.files[0] ?? '(none)', message: describe(e) });
    } else {
      collect(answer.validationErrors, byId, problems);
      collect(answer.validationWarnings, byId, warnings);
    }
  }
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return { policies, byId, warnings };
}

/** Maps validator errors (positions relative to one policy's text) to file and line; one per position. */
function collect(
  errors: readonly { policyId: string; error: DetailedError }[],
  byId: ReadonlyMap<string, LoadedPolicy>,
  out: PolicyProblem[],
): void {
  const seen = new Set<string>();
  for (const { policyId, error } of errors) {
    const p = byId.get(policyId);
    const loc = error.sourceLocations?.[0];
    let line: number | undefined = p?.line;
    if (p && loc) {
      const offset = byteToChar(p.text, loc.start);
      line = p.line + lineAt(p.text, offset) - 1;
    }
    // The validator repeats an error once per action the policy applies to; keep the first.
    const message = describe(error).replace(/ for Gatehouse::Action::"[a-z_]+"/, '');
    const key = `${policyId}\u0000${line}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file: p?.file ?? '(unknown)', line, policyId, message });
  }
}
