/**
 * Task grants: made when the embedded authorization server mints a task token (token exchange with a
 * requested tool list). The grant is the intersection of the request and what policy can allow the
 * token's principal, never wider; the token carries its id (`gatehouse_grant`).
 *
 * A request names tools two ways (both may be used):
 * - `scope` values `tool:<exposed name>`;
 * - RFC 9396 `authorization_details` entries `{ "type": "gatehouse_tools", "tools": [...],
 *   "arguments": { "<arg>": ["allowed", ...] } }`, where `arguments` constrains every tool of the entry.
 */
import type { Principal } from '../auth/principal.ts';
import { GatehouseError } from '../errors.ts';
import { type NameTable, resolveName } from '../federation/names.ts';
import type { Authorizer } from '../policy/authorizer.ts';
import type { GrantRecord } from '../storage/types.ts';
import { getOwn, setOwn } from '../util/own.ts';
import type { Grant, GrantManager } from './grant.ts';

export const TOOL_SCOPE_PREFIX = 'tool:';
export const AUTHORIZATION_DETAILS_TYPE = 'gatehouse_tools';

/** What the AS needs from the gateway to make task grants. */
export interface TaskGrantDeps {
  /** The gateway's router (`session/router.ts`); only its name table, to resolve exposed tool names. */
  readonly router: { readonly names: NameTable };
  readonly authorizer: Authorizer;
  readonly grants: GrantManager;
}

/** A parsed task request: tools and their argument constraints. */
export interface TaskRequest {
  readonly tools: string[];
  readonly constraints: GrantRecord['constraints'];
}

/** Thrown for a malformed or unsatisfiable request; the AS maps it to invalid_scope / invalid_request. */
export class TaskRequestError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid_request' | 'invalid_scope',
  ) {
    super(message);
  }
}

/** Splits `tool:` scopes from ordinary scopes and parses `authorization_details`; undefined when no tools were asked for. */
export function parseTaskRequest(
  scopes: readonly string[],
  authorizationDetails: unknown,
): TaskRequest | undefined {
  const tools = scopes
    .filter((s) => s.startsWith(TOOL_SCOPE_PREFIX))
    .map((s) => s.slice(TOOL_SCOPE_PREFIX.length));
  const constraints: Record<string, Record<string, string[]>> = {};
  if (authorizationDetails !== undefined) {
    let details: unknown = authorizationDetails;
    if (typeof details === 'string') {
      try {
        details = JSON.parse(details);
      } catch {
        throw new TaskRequestError('authorization_details is not valid JSON', 'invalid_request');
      }
    }
    if (!Array.isArray(details))
      throw new TaskRequestError('authorization_details must be a JSON array', 'invalid_request');
    for (const d of details) {
      if (
        typeof d !== 'object' ||
        d === null ||
        (d as { type?: unknown }).type !== AUTHORIZATION_DETAILS_TYPE
      ) {
        // RFC 9396 §5: "invalid_authorization_details" for unknown types; reported as invalid_request here.
        throw new TaskRequestError(
          `authorization_details entries must have type "${AUTHORIZATION_DETAILS_TYPE}"`,
          'invalid_request',
        );
      }
      const entry = d as { tools?: unknown; arguments?: unknown };
      if (
        !Array.isArray(entry.tools) ||
        entry.tools.length === 0 ||
        !entry.tools.every((t) => typeof t === 'string' && t !== '')
      ) {
        throw new TaskRequestError(
          'authorization_details[].tools must be a non-empty array of tool names',
          'invalid_request',
        );
      }
      let args: Record<string, string[]> | undefined;
      if (entry.arguments !== undefined) {
        const a = entry.arguments;
        if (
          typeof a !== 'object' ||
          a === null ||
          Array.isArray(a) ||
          !Object.values(a).every(
            (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'),
          )
        ) {
          throw new TaskRequestError(
            'authorization_details[].arguments must map argument names to non-empty arrays of strings',
            'invalid_request',
          );
        }
        args = a as Record<string, string[]>;
      }
      for (const t of entry.tools as string[]) {
        tools.push(t);
        if (args) setOwn(constraints, t, { ...getOwn(constraints, t), ...args });
      }
    }
  }
  if (tools.length === 0) return undefined;
  return { tools: [...new Set(tools)], constraints };
}

/**
 * Makes the task grant for `principal`: requested tools that exist behind the gateway and that policy
 * can allow this principal (for some arguments). Throws TaskRequestError when none remain.
 */
export async function makeTaskGrant(
  deps: TaskGrantDeps,
  principal: Principal,
  req: TaskRequest,
  expiresAt: number,
  createdBy: string,
): Promise<{ grant: Grant; tools: string[] }> {
  const granted: string[] = [];
  for (const exposed of req.tools) {
    const r = resolveName(deps.router.names, exposed);
    if (!r) continue; // no such server: nothing to grant
    const attrs = deps.authorizer.toolAttributes(r.server, exposed, undefined);
    if (deps.authorizer.mayAllow(principal, 'task-request', 'call_tool', r.server, r.name, attrs))
      granted.push(exposed);
  }
  if (granted.length === 0) {
    throw new TaskRequestError('policy allows none of the requested tools to this agent', 'invalid_scope');
  }
  const constraints: GrantRecord['constraints'] = {};
  for (const t of granted) {
    const c = getOwn(req.constraints, t);
    if (c) setOwn(constraints, t, c);
  }
  const made = deps.grants.create({
    kind: 'task',
    principal,
    tools: granted,
    constraints,
    expiresAt,
    createdBy,
  });
  if (made instanceof GatehouseError) throw new TaskRequestError(made.message, 'invalid_request');
  await made.persisted;
  return { grant: made.grant, tools: made.grant.record.tools ?? granted };
}
