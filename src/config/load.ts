/**
 * Loads and validates configuration once, at start-up. Problems are reported
 * all at once, each naming the YAML path, the line when known, and what was
 * expected.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatehouseConfig } from './schema.ts';

/** One configuration problem: where and what. */
export interface ConfigProblem {
  /** Dotted YAML path, e.g. `upstreams.github.command`; empty for the root. */
  path: string;
  /** 1-based line in the file, when the path exists in it. */
  line: number | undefined;
  message: string;
}

/** Thrown when configuration is invalid; carries every problem found. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  readonly file: string | undefined;

  constructor(problems: ConfigProblem[], file?: string) {
    super(`invalid configuration${file ? ` in ${file}` : ''}:\n${formatProblems(problems, file)}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.file = file;
  }
}

/** One problem per line: `file:line: path: message`. */
export function formatProblems(problems: ConfigProblem[], file?: string): string {
  return problems
    .map((p) => {
      const where = `${file ?? '<config>'}${p.line !== undefined ? `:${p.line}` : ''}`;
      return `${where}: ${p.path || '(root)'}: ${p.message}`;
    })
    .join('\n');
}

function joinPath(path: readonly PropertyKey[]): string {
  return path.map((k) => String(k)).join('.');
}

/** Turns zod issues into problems, one per unknown key. */
function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  lineOf: (path: readonly PropertyKey[]) => number | undefined,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        out.push({ path: joinPath(path), line: lineOf(path), message: 'unknown key' });
      }
      continue;
    }
    if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) {
      const path =
        issue.path.at(-1) === issue.discriminator ? issue.path : [...issue.path, issue.discriminator];
      out.push({
        path: joinPath(path),
        line: lineOf(path),
        message: 'expected one of "stdio", "http", "sse"',
      });
      continue;
    }
    out.push({ path: joinPath(issue.path), line: lineOf(issue.path), message: describeIssue(issue) });
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') return `invalid name: ${issue.issues[0]?.message ?? 'not allowed'}`;
  if (issue.code === 'invalid_type') {
    const got = issue.input === undefined ? 'nothing (required key missing)' : typeName(issue.input);
    return `expected ${issue.expected}, got ${got}`;
  }
  return issue.message;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Validates an in-memory configuration object (defaults applied). */
export function parseConfig(input: unknown, file?: string): GatehouseConfig {
  const result = configSchema.safeParse(input ?? {}, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(
    issuesToProblems(result.error.issues, () => undefined),
    file,
  );
}

/** Parses YAML text and validates it; problems carry line numbers. */
export function parseConfigYaml(text: string, file?: string): GatehouseConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: '',
        line: e.linePos?.[0]?.line,
        message: `yaml syntax: ${e.message.split('\n')[0] ?? e.code}`,
      })),
      file,
    );
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    // Walk up until a node exists: a missing key is reported at its parent.
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const result = configSchema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(issuesToProblems(result.error.issues, lineOf), file);
}

/** Reads, parses and validates a YAML config file. */
export function loadConfigFile(file: string): GatehouseConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new ConfigError([{ path: '', line: undefined, message: `cannot read file (${reason})` }], file);
  }
  const config = parseConfigYaml(text, file);
  // Policy paths are relative to the config file, like every path an operator writes next to it.
  config.policy.files = config.policy.files.map((f) => resolve(dirname(file), f));
  return config;
}
