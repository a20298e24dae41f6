/**
 * The policy enforcement point: turns what the gateway knows about a request (principal, grant, routed
 * tool, its definition, the configured tool attributes) into engine questions, for calls and for lists.
 * Tool arguments are validated against the tool's inputSchema (Ajv) before policy sees them.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { type Grant, globMatch } from '../grants/grant.ts';
import { boundedKey, CappedMap } from '../util/bounded.ts';
import {
  type DecideOptions,
  type Decision,
  type PolicyAction,
  PolicyEngine,
  type ToolAttributes,
} from './engine.ts';
import { loadPolicySet, type PolicySet } from './load.ts';

/** Policy files named by `policy.files`: files as given, directories expanded to their *.cedar files. */
export function expandPolicyFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      // A missing file is reported by the loader, with its name.
    }
    if (!isDir) out.push(p);
    else for (const f of readdirSync(p).sort()) if (f.endsWith('.cedar')) out.push(join(p, f));
  }
  return out;
}

/** Loads the configured policies; with none configured, an empty set (everything is denied). */
export function loadConfiguredPolicies(config: GatehouseConfig): PolicySet {
  const files = expandPolicyFiles(config.policy.files);
  if (files.length === 0) return { policies: [], byId: new Map(), warnings: [] };
  return loadPolicySet({ files });
}

/** The parts of a tool definition policy and validation use. */
export interface ToolDefinition {
  readonly inputSchema?: unknown;
  readonly annotations?: { readonly readOnlyHint?: unknown; readonly destructiveHint?: unknown };
  /** Checked against a result's structuredContent (stage sanitize-result). */
  readonly outputSchema?: unknown;
}

/** One argument problem, for the client. */
export interface ArgumentProblem {
  readonly path: string;
  readonly message: string;
}

export class Authorizer {
  readonly engine: PolicyEngine;
  /** Attributes per (server, tool, annotations), keys bounded: a hostile stream of names costs at most this. */
  private readonly attrs = new CappedMap<string, ToolAttributes>(10_000);
  // MCP 2025-11-25: inputSchema defaults to JSON Schema 2020-12; older servers declare draft-07.
  private readonly ajv2020 = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  private readonly ajv07 = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  /** Validators by schema object (the hot path), then by schema content (bounded). */
  private readonly validators = new WeakMap<object, ValidateFunction | Error>();
  private readonly compiled = new CappedMap<string, ValidateFunction | Error>(2000);
  private compilations = 0;

  constructor(
    private readonly config: GatehouseConfig,
    private readonly log: Logger,
    set: PolicySet = loadConfiguredPolicies(config),
  ) {
    this.engine = new PolicyEngine(set, { roles: config.policy.roles });
    if (set.policies.length === 0)
      log.warn('no policies loaded (policy.files): deny by default, every tool call will be refused');
  }

  /** Reloads the policy files atomically; on any error the current policies stay and the error is thrown. */
  reload(): void {
    this.engine.replace(loadConfiguredPolicies(this.config));
    this.log.info(
      { generation: this.engine.generation, policies: this.engine.policySet.policies.length },
      'policies reloaded',
    );
  }

  /**
   * Attributes of a tool: the operator's (policy.tools, first matching key), whether its server is
   * trusted, and its (untrusted unless the server is trusted) annotations. One object per distinct
   * value, so the engine's decision cache keys stay cheap.
   */
  toolAttributes(server: string, exposed: string, def: ToolDefinition | undefined): ToolAttributes {
    const ann = def?.annotations;
    const ro = typeof ann?.readOnlyHint === 'boolean' ? ann.readOnlyHint : undefined;
    const de = typeof ann?.destructiveHint === 'boolean' ? ann.destructiveHint : undefined;
    const key = boundedKey(`${server}\u0000${exposed}\u0000${ro}\u0000${de}`);
    let a = this.attrs.get(key);
    if (a === undefined) {
      const op = Object.entries(this.config.policy.tools).find(([k]) => globMatch(k, exposed))?.[1];
      a = Object.freeze({
        ...(op?.risk !== undefined ? { risk: op.risk } : {}),
        ...(op?.sideEffect !== undefined ? { sideEffect: op.sideEffect } : {}),
        ...(op?.owner !== undefined ? { owner: op.owner } : {}),
        serverTrusted: this.config.upstreams[server]?.trusted === true,
        annotations: {
          ...(ro !== undefined ? { readOnlyHint: ro } : {}),
          ...(de !== undefined ? { destructiveHint: de } : {}),
        },
      });
      this.attrs.set(key, a);
    }
    return a;
  }

  /**
   * Decides one operation on one tool, prompt or resource (`name` as the upstream knows it).
   * `approved`: a human approved exactly this call (`context.approved`; set only when a call releases
   * a consumed approval, src/stages/await-approval.ts).
   */
  decide(
    principal: Principal,
    grant: Grant,
    action: PolicyAction,
    server: string,
    name: string,
    attrs: ToolAttributes | undefined,
    args: unknown,
    opts?: DecideOptions,
    approved?: boolean,
  ): Decision {
    return this.engine.decide(
      {
        principal,
        grantId: grant.id,
        action,
        server,
        tool: name,
        ...(attrs !== undefined ? { toolAttrs: attrs } : {}),
        ...(args !== undefined ? { args } : {}),
        ...(approved === true ? { approved } : {}),
        // Taint (docs/sanitization.md): what the grant has read, for rules on `context.read`.
        ...(grant.readLabels !== undefined ? { read: grant.readLabels } : {}),
      },
      opts,
    );
  }

  /**
   * Whether some call could be allowed (allow, approval_required, or a decision that depends on the
   * arguments): what lists show and what a task grant may include.
   */
  mayAllow(
    principal: Principal,
    grantId: string,
    action: PolicyAction,
    server: string,
    name: string,
    attrs: ToolAttributes | undefined,
    opts?: DecideOptions,
  ): boolean {
    return this.engine.mayAllow(
      {
        principal,
        grantId,
        action,
        server,
        tool: name,
        ...(attrs !== undefined ? { toolAttrs: attrs } : {}),
      },
      opts,
    );
  }

  /** Input schemas compiled so far (each distinct content once while it stays cached; for tests and diagnostics). */
  compiledSchemas(): number {
    return this.compilations;
  }

  /** Validates arguments against the tool's inputSchema; undefined when they conform (or there is no schema). */
  checkArguments(def: ToolDefinition | undefined, args: unknown): ArgumentProblem[] | undefined {
    const schema = def?.inputSchema;
    if (schema === null || typeof schema !== 'object') return undefined;
    let v = this.validators.get(schema);
    if (v === undefined) {
      // Every tools/list hands over new schema objects: compiled validators are shared by content
      // (bounded), and Ajv forgets each schema once compiled (its own cache holds schema objects for
      // ever, and refuses a second schema with the same $id).
      const key = boundedKey(JSON.stringify(schema));
      v = this.compiled.get(key);
      if (v === undefined) {
        const dialect = (schema as { $schema?: unknown }).$schema;
        const ajv = typeof dialect === 'string' && /draft-0[4-7]/.test(dialect) ? this.ajv07 : this.ajv2020;
        this.compilations++;
        try {
          v = ajv.compile(schema);
        } catch (err) {
          v = err instanceof Error ? err : new Error(String(err));
        }
        ajv.removeSchema(schema);
        this.compiled.set(key, v);
      }
      this.validators.set(schema, v);
    }
    // A schema Ajv cannot compile cannot vouch for anything: fail closed.
    if (v instanceof Error) return [{ path: '', message: `the tool's inputSchema is invalid: ${v.message}` }];
    if (v(args ?? {})) return undefined;
    return (v.errors ?? []).slice(0, 10).map((e) => ({
      path: e.instancePath === '' ? '/' : e.instancePath,
      message:
        e.keyword === 'additionalProperties'
          ? `unexpected property \`${String((e.params as { additionalProperty?: unknown }).additionalProperty)}\``
          : (e.message ?? e.keyword),
    }));
  }
}
