/**
 * `oauth`: every endpoint of the embedded authorization server, discovered from
 * /.well-known/oauth-authorization-server (token, authorization, registration, revocation,
 * introspection, jwks, userinfo, logout) plus the interaction pages (/oauth/interaction/<uid>,
 * /login, /confirm, /abort) with real interactions and CSRF tokens: hostile forms (grant types,
 * client authentication, PKCE, redirect URIs, resources, huge and duplicate parameters), malformed
 * JSON for registration, odd methods and content types; partial bodies are stall probes.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Family, FuzzContext, Probe, StallProbe } from '../core.ts';
import { FUZZ_PASSWORD } from '../gateway.ts';
import { deepNest, fromPlain, type Json, type ObjJson, obj, raw, set, slots, toText } from '../json.ts';
import type { Rng } from '../rng.ts';
import { bigString, hostileString, hostileValue, NASTY_STRINGS, PROTO_NAMES, SURROGATES } from '../values.ts';
import { buildRequest } from '../wire.ts';

/** Endpoints from the metadata (paths), with fallbacks from docs/auth-server.md. */
interface Endpoints {
  token: string;
  authorization: string;
  registration: string;
  revocation: string;
  introspection: string;
  jwks: string;
  userinfo: string;
  logout: string;
}

/** An interaction in progress: its uid, the cookies that go with it, its CSRF token. */
interface Interaction {
  uid: string;
  path: string;
  cookies: string;
  csrf: string;
}

const state: {
  /** The gateway these belong to (a new one after a crash needs its own client and interactions). */
  pid: number;
  endpoints: Endpoints | undefined;
  dcrClient: { id: string; redirect: string } | undefined;
  interactions: Map<number, Promise<Interaction | undefined>>;
} = { pid: -1, endpoints: undefined, dcrClient: undefined, interactions: new Map() };

const REDIRECT = 'http://127.0.0.1:9/callback';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function pathOf(url: unknown, fallback: string): string {
  if (typeof url !== 'string') return fallback;
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return fallback;
  }
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Starts an authorization request with the registered client and reads its login page (uid, cookies, csrf). */
async function newInteraction(ctx: FuzzContext): Promise<Interaction | undefined> {
  const ep = state.endpoints;
  const client = state.dcrClient;
  if (!ep || !client) return undefined;
  const { challenge } = pkce();
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: client.id,
    redirect_uri: client.redirect,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'mcp',
    state: 's',
    resource: ctx.gw.resource,
  });
  const res = await fetch(`${ctx.gw.origin}${ep.authorization}?${q}`, { redirect: 'manual' });
  await res.arrayBuffer();
  const location = res.headers.get('location');
  if (!location) return undefined;
  const path = new URL(location, ctx.gw.origin).pathname;
  const cookies = res.headers
    .getSetCookie()
    .map((c) => c.split(';', 1)[0])
    .join('; ');
  const page = await fetch(`${ctx.gw.origin}${path}`, { headers: { cookie: cookies } });
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  return { uid: path.split('/').pop() ?? '', path, cookies, csrf };
}

/** The interaction in pool slot `i` (re-created after it was used up). */
function interaction(ctx: FuzzContext, i: number): Promise<Interaction | undefined> {
  let p = state.interactions.get(i);
  if (!p) {
    p = newInteraction(ctx).catch(() => undefined);
    state.interactions.set(i, p);
  }
  return p;
}

/** Percent-encodes text as UTF-8; a lone surrogate becomes its 3-byte (WTF-8) form, which no decoder should accept silently. */
function pct(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += encodeURIComponent(s.slice(i, i + 2));
        i++;
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      out += `%${(0xe0 | (c >> 12)).toString(16).toUpperCase()}%${(0x80 | ((c >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (c & 0x3f)).toString(16).toUpperCase()}`;
      continue;
    }
    out += encodeURIComponent(s[i] ?? '');
  }
  return out;
}

/** URL-encodes a form from pairs (duplicates kept). */
function form(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&');
}

/** A value for a form field: sometimes the good one, often hostile. */
function field(rng: Rng, good: string, maxBig: number): string {
  return rng.weighted<() => string>([
    [5, () => good],
    [2, () => rng.pick(PROTO_NAMES)],
    [2, () => rng.pick(NASTY_STRINGS)],
    [1, () => bigString(rng, rng.size(maxBig))],
    [1, () => rng.string(rng.range(1, 30))],
    [1, () => `${good}\u0000`],
    [1, () => `${good}${rng.pick(['\ud800', '\udfff'])}`],
  ])();
}

const GRANT_TYPES = [
  'client_credentials',
  'authorization_code',
  'refresh_token',
  TOKEN_EXCHANGE,
  'password',
  'implicit',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:openid:params:grant-type:ciba',
  '',
];

/** Client authentication variants: headers and form pairs. */
function clientAuth(
  rng: Rng,
  ctx: FuzzContext,
): { label: string; headers: [string, string][]; pairs: [string, string][] } {
  const { id, secret } = ctx.gw.clients.agent;
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  const kind = rng.pick([
    'basic',
    'basic',
    'basic-wrong',
    'basic-malformed',
    'basic-nocolon',
    'basic-huge',
    'basic-encoded',
    'post',
    'post-wrong',
    'none',
    'both',
    'assertion',
    'narrow',
    'dcr',
  ]);
  switch (kind) {
    case 'basic':
      return { label: kind, headers: [['Authorization', `Basic ${b64(`${id}:${secret}`)}`]], pairs: [] };
    case 'basic-wrong':
      return { label: kind, headers: [['Authorization', `Basic ${b64(`${id}:${secret}x`)}`]], pairs: [] };
    case 'basic-malformed':
      return {
        label: kind,
        headers: [
          [
            'Authorization',
            rng.pick([
              'Basic !!!',
              'Basic',
              'Basic ',
              'Basic =',
              `Basic ${b64(':')}`,
              `Basic ${b64('a:b:c')}`,
            ]),
          ],
        ],
        pairs: [],
      };
    case 'basic-nocolon':
      return { label: kind, headers: [['Authorization', `Basic ${b64(id)}`]], pairs: [] };
    case 'basic-huge':
      return {
        label: kind,
        headers: [['Authorization', `Basic ${b64(`${'u'.repeat(6000)}:${'p'.repeat(6000)}`)}`]],
        pairs: [],
      };
    case 'basic-encoded':
      return {
        label: kind,
        headers: [['Authorization', `Basic ${b64(`${encodeURIComponent(rng.pick(PROTO_NAMES))}:%zz%00`)}`]],
        pairs: [],
      };
    case 'post':
      return {
        label: kind,
        headers: [],
        pairs: [
          ['client_id', id],
          ['client_secret', secret],
        ],
      };
    case 'post-wrong':
      return {
        label: kind,
        headers: [],
        pairs: [
          ['client_id', rng.pick([id, ...PROTO_NAMES])],
          ['client_secret', 'x'],
        ],
      };
    case 'none':
      return {
        label: kind,
        headers: [],
        pairs: [['client_id', rng.pick([id, 'fuzz-narrow', 'unknown', ...PROTO_NAMES])]],
      };
    case 'both':
      return {
        label: kind,
        headers: [['Authorization', `Basic ${b64(`${id}:${secret}`)}`]],
        pairs: [
          ['client_id', id],
          ['client_secret', secret],
        ],
      };
    case 'assertion':
      return {
        label: kind,
        headers: [],
        pairs: [
          ['client_id', id],
          ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
          [
            'client_assertion',
            rng.pick(['eyJhbGciOiJub25lIn0.eyJzdWIiOiJmdXp6LWFnZW50In0.', 'x.y.z', 'garbage', '']),
          ],
        ],
      };
    case 'narrow': {
      const n = ctx.gw.clients.narrow;
      return { label: kind, headers: [['Authorization', `Basic ${b64(`${n.id}:${n.secret}`)}`]], pairs: [] };
    }
    default:
      return { label: kind, headers: [], pairs: [['client_id', state.dcrClient?.id ?? 'x']] };
  }
}

function resourceValue(rng: Rng, ctx: FuzzContext): string {
  return rng.pick([
    ctx.gw.resource,
    ctx.gw.resource,
    `${ctx.gw.resource}/`,
    `${ctx.gw.resource}#frag`,
    'https://evil.example/mcp',
    ctx.gw.origin,
    'not a url',
    '',
    '/mcp',
    `${ctx.gw.resource}?x=1`,
    `urn:${rng.pick(PROTO_NAMES)}`,
  ]);
}

/** The hostile-form generator for the token endpoint. */
async function tokenForm(
  rng: Rng,
  ctx: FuzzContext,
): Promise<{ pairs: [string, string][]; label: string; headers: [string, string][] }> {
  const maxBig = 8 * 1024;
  const grant = rng.chance(0.85) ? rng.pick(GRANT_TYPES) : field(rng, 'client_credentials', maxBig);
  const auth = clientAuth(rng, ctx);
  const pairs: [string, string][] = [['grant_type', grant], ...auth.pairs];
  const scope = rng.weighted<string | undefined>([
    [5, 'mcp'],
    [2, 'mcp mcp:admin'],
    [1, 'openid offline_access'],
    [1, 'mcp mcp mcp'],
    [1, undefined],
    [1, `tool:${rng.pick(['github__search_code', '__proto__', 'constructor'])}`],
    [1, field(rng, 'mcp', maxBig)],
  ]);
  if (scope !== undefined) pairs.push(['scope', scope]);
  if (rng.chance(0.7)) pairs.push(['resource', resourceValue(rng, ctx)]);
  if (rng.chance(0.15)) pairs.push(['resource', resourceValue(rng, ctx)]);
  switch (grant) {
    case 'authorization_code':
      pairs.push(['code', field(rng, rng.string(43), maxBig)]);
      if (rng.chance(0.8))
        pairs.push(['code_verifier', rng.pick([rng.string(43), rng.string(10), rng.string(200), '!!!', ''])]);
      if (rng.chance(0.8))
        pairs.push([
          'redirect_uri',
          rng.pick([REDIRECT, 'http://evil.example/cb', 'javascript:alert(1)', '']),
        ]);
      break;
    case 'refresh_token':
      pairs.push(['refresh_token', field(rng, rng.string(43), maxBig)]);
      break;
    case TOKEN_EXCHANGE: {
      const subject = rng.weighted<() => Promise<string>>([
        [3, () => ctx.token('agent')],
        [1, () => ctx.token('narrow')],
        [1, () => ctx.token('admin')],
        [2, async () => field(rng, 'eyJhbGciOiJub25lIn0.e30.', maxBig)],
      ]);
      pairs.push(['subject_token', await subject()]);
      pairs.push([
        'subject_token_type',
        rng.pick([
          'urn:ietf:params:oauth:token-type:access_token',
          'urn:ietf:params:oauth:token-type:access_token',
          'urn:ietf:params:oauth:token-type:id_token',
          'urn:ietf:params:oauth:token-type:jwt',
          'urn:ietf:params:oauth:token-type:refresh_token',
          '',
          rng.pick(PROTO_NAMES),
        ]),
      ]);
      if (rng.chance(0.2))
        pairs.push(
          ['actor_token', await ctx.token('agent')],
          ['actor_token_type', 'urn:ietf:params:oauth:token-type:access_token'],
        );
      if (rng.chance(0.2))
        pairs.push(['audience', rng.pick([ctx.gw.resource, 'https://evil.example', rng.pick(PROTO_NAMES)])]);
      if (rng.chance(0.2))
        pairs.push([
          'requested_token_type',
          rng.pick(['urn:ietf:params:oauth:token-type:refresh_token', 'x']),
        ]);
      break;
    }
    case 'password':
      pairs.push(['username', 'fuzz-user'], ['password', 'x']);
      break;
    default:
      break;
  }
  // Duplicates and extras.
  if (rng.chance(0.15)) pairs.push(['grant_type', rng.pick(GRANT_TYPES)]);
  if (rng.chance(0.1)) pairs.push([rng.pick(PROTO_NAMES), 'x']);
  if (rng.chance(0.05)) for (let i = 0; i < rng.pick([100, 1000]); i++) pairs.push([`p${i}`, 'v']);
  return { pairs, label: `token grant=${grant.slice(0, 50)} auth=${auth.label}`, headers: auth.headers };
}

/** A dynamic client registration document, valid, then mutated. */
function registration(rng: Rng, maxBig: number): { body: string; label: string } {
  const doc = fromPlain({
    client_name: 'fuzz client',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  }) as ObjJson;
  const ops: string[] = [];
  const n = rng.weighted([
    [2, 0],
    [4, 1],
    [3, 2],
    [1, 4],
  ]);
  for (let i = 0; i < n; i++) {
    const op = rng.pick([
      'redirect',
      'grants',
      'auth',
      'field',
      'value',
      'remove',
      'proto',
      'jwks',
      'deep',
      'uri',
      'app',
    ]);
    ops.push(op);
    switch (op) {
      case 'redirect':
        set(
          doc,
          'redirect_uris',
          rng.pick<Json>([
            [],
            'http://127.0.0.1:9/cb',
            ['javascript:alert(1)'],
            ['http://evil.example/cb'],
            ['https://ok.example/cb#frag'],
            ['https://user:pw@ok.example/cb'],
            ['myapp://cb'],
            ['file:///etc/passwd'],
            ['http://[::1]:9/cb', 'http://localhost/cb'],
            Array.from({ length: 500 }, (_, k) => `https://ok.example/cb${k}`),
            [`https://ok.example/${bigString(rng, rng.size(maxBig))}`],
            [raw(`"https://ok.example/cb${rng.pick(SURROGATES)}"`)],
            [null],
            [1],
          ]),
        );
        break;
      case 'grants':
        set(
          doc,
          'grant_types',
          rng.pick<Json>([
            ['client_credentials'],
            [TOKEN_EXCHANGE],
            ['implicit'],
            ['password'],
            ['authorization_code', 'authorization_code'],
            [],
            'authorization_code',
            [rng.pick(PROTO_NAMES)],
          ]),
        );
        break;
      case 'auth':
        set(
          doc,
          'token_endpoint_auth_method',
          rng.pick<Json>([
            'client_secret_basic',
            'client_secret_post',
            'private_key_jwt',
            'client_secret_jwt',
            'tls_client_auth',
            'self_signed_tls_client_auth',
            '',
            'x',
            null,
          ]),
        );
        break;
      case 'field':
        set(
          doc,
          rng.pick([
            'client_name',
            'scope',
            'contacts',
            'software_id',
            'software_version',
            'software_statement',
            'client_uri',
            'logo_uri',
            'policy_uri',
            'tos_uri',
            'sector_identifier_uri',
            'initiate_login_uri',
            'post_logout_redirect_uris',
            'default_max_age',
            'id_token_signed_response_alg',
            'userinfo_signed_response_alg',
            'require_auth_time',
          ]),
          hostileValue(rng, maxBig),
        );
        break;
      case 'value': {
        const all = slots(doc);
        const s = all.length > 0 ? rng.pick(all) : undefined;
        s?.replace(hostileValue(rng, maxBig));
        break;
      }
      case 'remove': {
        const all = slots(doc);
        const s = all.length > 0 ? rng.pick(all) : undefined;
        s?.remove();
        break;
      }
      case 'proto':
        doc.obj.push([
          rng.pick(PROTO_NAMES),
          rng.chance(0.5) ? obj([['polluted', true]]) : hostileValue(rng, 256),
        ]);
        break;
      case 'jwks':
        set(
          doc,
          rng.pick(['jwks', 'jwks_uri']),
          rng.pick<Json>([
            obj([['keys', []]]),
            obj([
              [
                'keys',
                [
                  obj([
                    ['kty', 'EC'],
                    ['crv', 'P-256'],
                    ['x', 'AAAA'],
                    ['y', 'AAAA'],
                  ]),
                ],
              ],
            ]),
            obj([['keys', 'x']]),
            'https://127.0.0.1/jwks',
            'https://169.254.169.254/latest/meta-data/',
            'http://127.0.0.1:1/jwks',
            'https://10.0.0.1/jwks',
          ]),
        );
        break;
      case 'deep':
        set(
          doc,
          rng.pick(['client_name', 'redirect_uris', 'jwks', 'contacts']),
          deepNest(rng.pick([1000, 10_000, 40_000]), rng.pick(['array', 'object', 'mixed'] as const)),
        );
        break;
      case 'uri': {
        const key = rng.pick(['client_uri', 'logo_uri', 'tos_uri', 'policy_uri']);
        set(
          doc,
          key,
          rng.pick<Json>([
            'javascript:alert(1)',
            'http://127.0.0.1:1/',
            'https://169.254.169.254/',
            `https://ok.example/${'x'.repeat(5000)}`,
            hostileString(rng, 256),
          ]),
        );
        break;
      }
      default:
        set(
          doc,
          'application_type',
          rng.pick<Json>(['native', 'web', 'browser', '', 1, rng.pick(PROTO_NAMES)]),
        );
    }
  }
  let text = toText(doc);
  if (rng.chance(0.1)) {
    // Byte-level damage: malformed JSON.
    const cut = rng.int(text.length);
    text = rng.pick([
      text.slice(0, cut),
      `${text.slice(0, cut)}\u0000${text.slice(cut)}`,
      `${text},`,
      `\ufeff${text}`,
      `[${text}]`,
      text.replace(/"/, "'"),
    ]);
    ops.push('malformed');
  }
  return { body: text, label: `register [${ops.join(',')}]` };
}

function asProbe(ctx: FuzzContext, label: string, data: Buffer, method: string, wellFormed = true): Probe {
  return {
    label,
    wire: { chunks: [{ data }], methods: [method], deadlineMs: ctx.quickDeadline },
    expect: { deadlineMs: ctx.quickDeadline, mcp: false, wellFormed },
  };
}

function post(
  ctx: FuzzContext,
  path: string,
  type: string | undefined,
  body: string | Buffer,
  extra: [string, string][] = [],
): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: [string, string][] = [['Host', ctx.host]];
  if (type !== undefined) headers.push(['Content-Type', type]);
  headers.push(...extra, ['Content-Length', String(b.length)]);
  return buildRequest('POST', path, headers, b);
}

const FORM = 'application/x-www-form-urlencoded';

function contentType(rng: Rng, good: string): string | undefined {
  return rng.weighted<string | undefined>([
    [12, good],
    [1, 'application/json'],
    [1, `${good}; charset=utf-16`],
    [1, 'multipart/form-data; boundary=x'],
    [1, 'text/plain'],
    [1, undefined],
    [1, good.toUpperCase()],
  ]);
}

/** Raw form damage: percent-encoding garbage, empty pairs, NULs. */
function damageForm(rng: Rng, text: string): string {
  return rng.pick([
    `${text}&%zz=%`,
    `${text}&&&=`,
    `${text}&grant_type`,
    `%00${text}`,
    text.replace(/=/, '=%'),
    `${text}&${'a=b&'.repeat(rng.pick([100, 3000]))}`,
    text.replace(/%20/g, '+'),
  ]);
}

/** The `oauth` family. */
export const oauthFamily: Family = {
  name: 'oauth',
  async prepare(ctx) {
    if (state.endpoints && state.pid === ctx.gw.pid) return;
    state.pid = ctx.gw.pid;
    state.interactions.clear();
    state.dcrClient = undefined;
    const meta = (await (
      await fetch(`${ctx.gw.origin}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    ctx.asMetadata = meta;
    state.endpoints = {
      token: pathOf(meta.token_endpoint, '/oauth/token'),
      authorization: pathOf(meta.authorization_endpoint, '/oauth/authorize'),
      registration: pathOf(meta.registration_endpoint, '/oauth/register'),
      revocation: pathOf(meta.revocation_endpoint, '/oauth/revoke'),
      introspection: pathOf(meta.introspection_endpoint, '/oauth/introspect'),
      jwks: pathOf(meta.jwks_uri, '/oauth/jwks'),
      userinfo: pathOf(meta.userinfo_endpoint, '/oauth/userinfo'),
      logout: pathOf(meta.end_session_endpoint, '/oauth/logout'),
    };
    const reg = await fetch(`${ctx.gw.origin}${state.endpoints.registration}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'fuzz',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    });
    const client = (await reg.json()) as { client_id?: string };
    if (client.client_id) state.dcrClient = { id: client.client_id, redirect: REDIRECT };
  },
  async generate(rng, ctx) {
    const ep = state.endpoints;
    if (!ep) throw new Error('oauth family not prepared');
    const kind = rng.weighted<string>([
      [30, 'token'],
      [15, 'authorize'],
      [15, 'register'],
      [8, 'revoke-introspect'],
      [8, 'misc'],
      [16, 'interaction'],
      [3, 'methods'],
    ]);
    switch (kind) {
      case 'token': {
        const f = await tokenForm(rng, ctx);
        let body = form(f.pairs);
        if (rng.chance(0.1)) body = damageForm(rng, body);
        const type = contentType(rng, FORM);
        const asJson = type === 'application/json' ? JSON.stringify(Object.fromEntries(f.pairs)) : body;
        return [
          asProbe(
            ctx,
            `${f.label}${type === FORM ? '' : ` type=${type ?? '-'}`}`,
            post(ctx, ep.token, type, asJson, f.headers),
            'POST',
          ),
        ];
      }
      case 'authorize': {
        const { challenge } = pkce();
        const maxBig = 4096;
        const pairs: [string, string][] = [];
        const add = (k: string, good: string, p = 0.9): void => {
          if (rng.chance(p)) pairs.push([k, rng.chance(0.75) ? good : field(rng, good, maxBig)]);
        };
        add('response_type', rng.pick(['code', 'code', 'token', 'id_token', 'code token', 'none', '']));
        add(
          'client_id',
          rng.pick([
            state.dcrClient?.id ?? 'x',
            state.dcrClient?.id ?? 'x',
            'fuzz-agent',
            'unknown-client',
            'https://127.0.0.1/client.json',
            'https://10.0.0.1/c.json',
            'https://[::1]/c.json',
            'https://169.254.169.254/latest/meta-data/c',
            'https://localhost/cimd',
            'https://user:pw@127.0.0.1/c.json',
            'https://127.0.0.1/a/../c.json',
            'https://127.0.0.1/c.json#f',
            'http://127.0.0.1/c.json',
            'https://127.0.0.1',
          ]),
        );
        add(
          'redirect_uri',
          rng.pick([
            REDIRECT,
            REDIRECT,
            'http://evil.example/cb',
            'javascript:alert(1)',
            `${REDIRECT}#x`,
            'http://127.0.0.1:10/callback',
            `${REDIRECT}?a=b`,
          ]),
        );
        add('code_challenge', rng.pick([challenge, challenge, 'short', '!'.repeat(43), 'a'.repeat(129), '']));
        add('code_challenge_method', rng.pick(['S256', 'S256', 'plain', 'S512', '']));
        add(
          'scope',
          rng.pick(['mcp', 'mcp mcp:admin', 'openid', 'openid offline_access', 'mcp unknown', '']),
          0.7,
        );
        add('state', rng.pick(['s', 'x'.repeat(2000)]), 0.6);
        add('resource', resourceValue(rng, ctx), 0.6);
        add('prompt', rng.pick(['none', 'login', 'consent', 'create', 'select_account', 'x']), 0.2);
        add('nonce', 'n', 0.2);
        add('response_mode', rng.pick(['query', 'fragment', 'form_post', 'query.jwt', 'x']), 0.15);
        add('request', rng.pick(['eyJhbGciOiJub25lIn0.e30.', 'x']), 0.05);
        add('request_uri', rng.pick(['urn:ietf:params:oauth:request_uri:x', 'https://127.0.0.1/r']), 0.05);
        add('claims', rng.pick(['{"userinfo":{"email":null}}', '{', '[]', '{"__proto__":{"x":1}}']), 0.05);
        add('max_age', rng.pick(['0', '-1', '1e999', 'x']), 0.05);
        add('id_token_hint', 'eyJhbGciOiJub25lIn0.e30.', 0.05);
        if (rng.chance(0.1)) pairs.push([rng.pick(PROTO_NAMES), 'x']);
        if (rng.chance(0.1)) pairs.push(['client_id', 'other']);
        const query = form(pairs);
        if (rng.chance(0.2)) {
          return [
            asProbe(
              ctx,
              `POST authorize (${pairs.length} params)`,
              post(ctx, ep.authorization, FORM, query),
              'POST',
            ),
          ];
        }
        const data = buildRequest('GET', `${ep.authorization}?${query}`, [['Host', ctx.host]]);
        return [
          asProbe(
            ctx,
            `GET authorize (${pairs
              .map(([k]) => k)
              .join(',')
              .slice(0, 80)})`,
            data,
            'GET',
            query.length < 60_000,
          ),
        ];
      }
      case 'register': {
        const r = registration(rng, 16 * 1024);
        const type = contentType(rng, 'application/json');
        return [
          asProbe(
            ctx,
            `${r.label}${type === 'application/json' ? '' : ` type=${type ?? '-'}`}`,
            post(ctx, ep.registration, type, r.body),
            'POST',
          ),
        ];
      }
      case 'revoke-introspect': {
        const path = rng.chance(0.5) ? ep.revocation : ep.introspection;
        const auth = clientAuth(rng, ctx);
        const token = rng.weighted<() => Promise<string>>([
          [2, () => ctx.token('agent')],
          [2, async () => rng.string(43)],
          [1, async () => bigString(rng, rng.size(16 * 1024))],
          [1, async () => rng.pick(PROTO_NAMES)],
          [1, async () => ''],
        ]);
        const pairs: [string, string][] = [['token', await token()], ...auth.pairs];
        if (rng.chance(0.5))
          pairs.push([
            'token_type_hint',
            rng.pick(['access_token', 'refresh_token', 'x', rng.pick(PROTO_NAMES)]),
          ]);
        const type = contentType(rng, FORM);
        return [
          asProbe(
            ctx,
            `${path.split('/').pop()} auth=${auth.label}`,
            post(ctx, path, type, form(pairs), auth.headers),
            'POST',
          ),
        ];
      }
      case 'misc': {
        const which = rng.pick(['jwks', 'userinfo', 'logout', 'discovery', 'openid', 'prm']);
        let path: string;
        const headers: [string, string][] = [['Host', ctx.host]];
        switch (which) {
          case 'jwks':
            path = ep.jwks;
            break;
          case 'userinfo':
            path = ep.userinfo;
            headers.push([
              'Authorization',
              rng.pick([
                `Bearer ${await ctx.token('agent')}`,
                'Bearer x',
                'Bearer',
                `DPoP ${rng.string(20)}`,
              ]),
            ]);
            break;
          case 'logout':
            path = `${ep.logout}?${form([
              ['post_logout_redirect_uri', rng.pick([REDIRECT, 'http://evil.example', 'javascript:x'])],
              ['id_token_hint', rng.pick(['eyJhbGciOiJub25lIn0.e30.', 'x', ''])],
              ['state', rng.pick(['s', 'x'.repeat(4000)])],
              ['client_id', rng.pick([state.dcrClient?.id ?? 'x', 'unknown', ...PROTO_NAMES])],
            ])}`;
            break;
          case 'discovery':
            path = `/.well-known/oauth-authorization-server${rng.pick(['', '?x=1', '/mcp', '/', '/../mcp'])}`;
            break;
          case 'openid':
            path = `/.well-known/openid-configuration${rng.pick(['', '?x=1', '/x'])}`;
            break;
          default:
            path = rng.pick([
              '/.well-known/oauth-protected-resource',
              '/.well-known/oauth-protected-resource/mcp',
            ]);
        }
        if (rng.chance(0.3)) headers.push(['Accept', rng.pick(['text/html', 'application/jwt', '*/*', ''])]);
        if (rng.chance(0.2)) headers.push(['If-None-Match', rng.pick(['*', '"x"', 'W/"1"'])]);
        if (rng.chance(0.2)) headers.push(['Origin', rng.pick(['https://evil.example', 'null'])]);
        return [
          asProbe(ctx, `GET ${which}`, buildRequest('GET', path, headers), 'GET', path.length < 60_000),
        ];
      }
      case 'methods': {
        const method = rng.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'HEAD', 'PROPFIND']);
        const path = rng.pick(Object.values(ep));
        const headers: [string, string][] = [
          ['Host', ctx.host],
          ['Content-Length', '0'],
        ];
        if (method === 'OPTIONS')
          headers.push(['Origin', 'https://evil.example'], ['Access-Control-Request-Method', 'POST']);
        return [asProbe(ctx, `${method} ${path}`, buildRequest(method, path, headers), method)];
      }
      default: {
        const slot = rng.int(4);
        const it = await interaction(ctx, slot);
        const uid = it?.uid ?? 'none';
        const base = it?.path ?? `/oauth/interaction/${uid}`;
        const action = rng.pick(['', '', 'login', 'login', 'confirm', 'abort', 'x', '../../token']);
        const pathUid = rng.weighted<string>([
          [6, base],
          [1, `/oauth/interaction/${rng.pick(PROTO_NAMES)}`],
          [1, `/oauth/interaction/${rng.string(21)}`],
          [1, `/oauth/interaction/${'u'.repeat(5000)}`],
          [1, '/oauth/interaction/'],
        ]);
        const path = action ? `${pathUid}/${action}` : pathUid;
        const headers: [string, string][] = [['Host', ctx.host]];
        if (it && rng.chance(0.85))
          headers.push(['Cookie', rng.chance(0.9) ? it.cookies : `${it.cookies}; junk=${'j'.repeat(3000)}`]);
        if (rng.chance(0.2))
          headers.push(['Origin', rng.pick(['https://evil.example', 'null', ctx.gw.origin, ''])]);
        const method = action === '' && rng.chance(0.8) ? 'GET' : 'POST';
        let consumes = false;
        if (method === 'GET') {
          return [
            asProbe(
              ctx,
              `GET interaction${pathUid === base ? '' : ' (other uid)'}`,
              buildRequest('GET', path, headers),
              'GET',
              path.length < 60_000,
            ),
          ];
        }
        const csrf = rng.weighted<string>([
          [6, it?.csrf ?? ''],
          [1, ''],
          [1, 'x'],
          [1, (it?.csrf ?? '').slice(0, -1)],
          [1, bigString(rng, 20_000)],
        ]);
        const pairs: [string, string][] = [];
        if (rng.chance(0.9)) pairs.push(['csrf', csrf]);
        if (action === 'login') {
          // Only the valid-CSRF logins reach scrypt; they are a small share of the inputs.
          pairs.push([
            'username',
            rng.pick([
              'fuzz-user',
              'fuzz-user',
              'admin',
              '',
              rng.pick(PROTO_NAMES),
              'x'.repeat(10_000),
              'fuzz-user\u0000',
            ]),
          ]);
          pairs.push(['password', rng.pick(['wrong-password', FUZZ_PASSWORD, '', 'p'.repeat(10_000)])]);
          if (rng.chance(0.1)) pairs.push(['username', 'other']);
        }
        if (csrf === it?.csrf && (action === 'abort' || action === 'confirm' || action === 'login'))
          consumes = true;
        const type = contentType(rng, FORM);
        const p = asProbe(
          ctx,
          `POST interaction/${action} csrf=${csrf === it?.csrf ? 'valid' : 'bad'}${type === FORM ? '' : ` type=${type ?? '-'}`}`,
          post(ctx, path, type, form(pairs), headers.slice(1)),
          'POST',
        );
        if (consumes) {
          p.after = async () => {
            state.interactions.delete(slot);
          };
        }
        return [p];
      }
    }
  },
  async stalls(ctx) {
    const ep = state.endpoints;
    if (!ep) return [];
    const list: StallProbe[] = [];
    const partial = (
      label: string,
      path: string,
      type: string,
      body: string,
      extra: [string, string][] = [],
    ): void => {
      const head = `POST ${path} HTTP/1.1\r\nHost: ${ctx.host}\r\nContent-Type: ${type}\r\n${extra.map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${body.length + 500}\r\n\r\n`;
      list.push({
        label,
        wire: {
          chunks: [{ data: Buffer.from(head + body) }],
          methods: ['POST'],
          deadlineMs: 0,
          waitForClose: true,
        },
      });
    };
    const { id, secret } = ctx.gw.clients.agent;
    const basic: [string, string] = [
      'Authorization',
      `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    ];
    partial('token: partial form body', ep.token, FORM, 'grant_type=client_credentials&scope=mcp', [basic]);
    partial('token: partial body, no client auth', ep.token, FORM, 'grant_type=client_cred');
    partial(
      'register: partial JSON body',
      ep.registration,
      'application/json',
      '{"redirect_uris":["http://127.0.0.1:9/cb"],',
    );
    partial('revoke: partial form body', ep.revocation, FORM, 'token=abc', [basic]);
    partial('introspect: partial form body', ep.introspection, FORM, 'token=abc', [basic]);
    const it = await interaction(ctx, 9);
    if (it) {
      partial(
        'interaction login: partial form body',
        `${it.path}/login`,
        FORM,
        `csrf=${encodeURIComponent(it.csrf)}&username=fuzz`,
        [['Cookie', it.cookies]],
      );
    }
    partial('interaction login: partial body, unknown uid', '/oauth/interaction/nope/login', FORM, 'csrf=x');
    list.push({
      label: 'token: headers never finished',
      wire: {
        chunks: [{ data: Buffer.from(`POST ${ep.token} HTTP/1.1\r\nHost: ${ctx.host}\r\n`) }],
        methods: ['POST'],
        deadlineMs: 0,
        waitForClose: true,
      },
    });
    return list;
  },
};
