/**
 * `rev2026`: MCP 2026-07-28 requests (no session; `MCP-Protocol-Version: 2026-07-28`; the version,
 * client info and capabilities in `params._meta`) built from the `jsonrpc` family's messages and
 * mutations, with the revision's own attack surface varied: `Mcp-Method`/`Mcp-Name` headers that
 * match, differ from, or are missing for the body (plain and base64 forms, hostile strings), `_meta`
 * missing, of the wrong type or naming another version, removed methods (initialize, ping), a
 * session id or an old version header mixed in, and forged `requestState` values on retries.
 * Every answer must be a documented error or a result, with the request's id when the body could
 * be read (the family's oracles are the shared ones in ../oracles.ts).
 */
import type { Family, FuzzContext, Probe } from '../core.ts';
import { get, isObj, type Json, toText } from '../json.ts';
import { requestIdsOf } from '../oracles.ts';
import type { Rng } from '../rng.ts';
import { hostileString } from '../values.ts';
import { message, mutationCount, upstreamMayBeSlow } from './jsonrpc.ts';

const REV = '2026-07-28';
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
const META_CLIENT = 'io.modelcontextprotocol/clientInfo';
const META_CAPS = 'io.modelcontextprotocol/clientCapabilities';

/** The name a request's `Mcp-Name` header carries for its method, if any. */
function nameOf(msg: Json): string | undefined {
  if (!isObj(msg)) return undefined;
  const params = get(msg, 'params');
  if (params === undefined || !isObj(params)) return undefined;
  const v = get(params, 'name') ?? get(params, 'uri');
  return typeof v === 'string' ? v : undefined;
}

function methodOf(msg: Json): string | undefined {
  if (!isObj(msg)) return undefined;
  const m = get(msg, 'method');
  return typeof m === 'string' ? m : undefined;
}

/** A hostile string as text (the generator gives a JSON tree; its text form, quotes dropped). */
function hostileText(rng: Rng, maxBig: number): string {
  return toText(hostileString(rng, maxBig)).replace(/^"|"$/g, '');
}

/** Puts the 2026-07-28 `_meta` into params (unless the input is about its absence or shape). */
function withMeta(rng: Rng, text: string, variant: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return text; // not JSON (a text-level mutation): sent as is
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return text;
  const m = v as { params?: unknown };
  const params =
    typeof m.params === 'object' && m.params !== null && !Array.isArray(m.params) ? m.params : {};
  const meta: Record<string, unknown> = {
    [META_VERSION]: REV,
    [META_CLIENT]: { name: 'fuzz-2026', version: '1' },
    [META_CAPS]: rng.chance(0.5) ? {} : { sampling: {}, elicitation: {}, roots: {} },
  };
  try {
    return withMetaOf(rng, m, params, meta, variant);
  } catch {
    return text; // nesting too deep to re-serialise: sent as is (the edge refuses it)
  }
}

function withMetaOf(
  rng: Rng,
  m: { params?: unknown },
  params: object,
  meta: Record<string, unknown>,
  variant: string,
): string {
  switch (variant) {
    case 'no-meta':
      return JSON.stringify({ ...m, params });
    case 'meta-null':
      return JSON.stringify({ ...m, params: { ...params, _meta: null } });
    case 'meta-old-version':
      meta[META_VERSION] = rng.pick(['2025-11-25', '2025-03-26', '', 'x'.repeat(300)]);
      break;
    case 'meta-bad-caps':
      meta[META_CAPS] = rng.pick([null, [], 'all', 1]);
      break;
    case 'request-state':
      (params as Record<string, unknown>).requestState = rng.pick([
        '',
        'AAAA',
        'x'.repeat(5000),
        rng.bytes(64).toString('base64url'),
        hostileText(rng, 256),
      ]);
      (params as Record<string, unknown>).inputResponses = rng.pick([{}, [], { a: { result: {} } }, null]);
      break;
  }
  return JSON.stringify({ ...m, params: { ...params, _meta: meta } });
}

/**
 * A header value HTTP can carry (visible ASCII, inner spaces): as is, else in the revision's base64
 * form. The input is then well-framed, so what it tests is the gateway, not Node's header parser.
 */
function headerValue(v: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(v)
    ? v
    : `=?base64?${Buffer.from(v).toString('base64')}?=`;
}

/** The `rev2026` family. */
export const rev2026Family: Family = {
  name: 'rev2026',
  async generate(rng: Rng, ctx: FuzzContext, index: number): Promise<Probe[]> {
    const { msg, label } = message(rng, index + 1, 4096, mutationCount(rng));
    const method = methodOf(msg) ?? '';
    const name = nameOf(msg);
    const metaVariant = rng.weighted<string>([
      [10, 'meta'],
      [1, 'no-meta'],
      [1, 'meta-null'],
      [1, 'meta-old-version'],
      [1, 'meta-bad-caps'],
      [2, 'request-state'],
    ]);
    const headerVariant = rng.weighted<string>([
      [8, 'match'],
      [2, 'method-differs'],
      [2, 'name-differs'],
      [1, 'no-method'],
      [1, 'no-name'],
      [1, 'base64-name'],
      [1, 'hostile'],
      [1, 'mixed-session'],
      [1, 'old-version-header'],
    ]);
    const text = withMeta(rng, toText(msg), metaVariant);
    const extra: [string, string][] = [
      ['MCP-Protocol-Version', headerVariant === 'old-version-header' ? '2025-11-25' : REV],
    ];
    const methodHeader =
      headerVariant === 'method-differs' ? rng.pick(['tools/list', 'ping', 'initialize']) : method;
    if (headerVariant !== 'no-method' && methodHeader) extra.push(['Mcp-Method', headerValue(methodHeader)]);
    if (name !== undefined && headerVariant !== 'no-name') {
      if (headerVariant === 'name-differs') extra.push(['Mcp-Name', headerValue(`${name}x`)]);
      else if (headerVariant === 'base64-name')
        extra.push(['Mcp-Name', `=?base64?${Buffer.from(name).toString('base64')}?=`]);
      else extra.push(['Mcp-Name', headerValue(name)]);
    }
    if (headerVariant === 'hostile') extra.push(['Mcp-Name', headerValue(hostileText(rng, 64))]);
    if (headerVariant === 'mixed-session') extra.push(['Mcp-Session-Id', 'not-a-session-of-this-revision']);
    const body = Buffer.from(text);
    const ids = requestIdsOf(body);
    return [
      {
        label: `2026 ${metaVariant} ${headerVariant} ${label}`,
        wire: {
          chunks: [{ data: await ctx.mcpPost(body, { extra }) }],
          methods: ['POST'],
          deadlineMs: ctx.mcpDeadline,
        },
        expect: {
          deadlineMs: ctx.mcpDeadline,
          mcp: true,
          wellFormed: true,
          ...(ids ? { requestIds: ids.ids, onlyNotifications: ids.notificationsOnly } : {}),
          upstreamErrorsOk: upstreamMayBeSlow(body),
        },
      },
    ];
  },
};
