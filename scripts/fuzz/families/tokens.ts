/**
 * `tokens`: hostile bearer tokens on /mcp. Forged and malformed tokens (alg none, HS256 keyed with
 * the public key, a stranger's key, wrong aud/iss, expired, not yet valid, huge, malformed base64url,
 * header injection: kid, jku, x5u, jwk, crit, b64, zip), the token in the query string, several
 * Authorization headers; and tokens signed with the authorization server's real key (read from the
 * data dir) whose claims are hostile: Object.prototype names, lone surrogates, 1e999, huge values,
 * deep `act` chains, wrong types. Those authenticate, so they reach sessions, grants, policy and audit.
 */
import {
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
} from 'node:crypto';
import type { Family, FuzzContext, Probe } from '../core.ts';
import { CLIENT_CAPABILITIES } from '../core.ts';
import type { Rng } from '../rng.ts';
import { bigString, PROTO_NAMES, RAW_NUMBERS, SURROGATES } from '../values.ts';
import { buildRequest, exchange } from '../wire.ts';

const keys: {
  /** The gateway whose key `real` is (a new one after a crash has its own). */
  pid: number;
  real: KeyObject | undefined;
  realKid: string;
  stranger: KeyObject | undefined;
  publicJwk: string;
} = {
  pid: -1,
  real: undefined,
  realKid: '',
  stranger: undefined,
  publicJwk: '',
};

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** Signs `header.payload` (both raw JSON text, so any bytes can be in them). */
function jws(
  header: string,
  payload: string,
  alg: 'ES256' | 'HS256' | 'none' | 'bad',
  key?: KeyObject | string,
): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  if (alg === 'none') return `${input}.`;
  if (alg === 'bad') return `${input}.${b64u('not a signature')}`;
  if (alg === 'HS256')
    return `${input}.${createHmac('sha256', key as string)
      .update(input)
      .digest('base64url')}`;
  const sig = sign('sha256', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** The claims of a good access token, as JSON text fragments (values are raw JSON). */
function goodClaims(ctx: FuzzContext, client = 'fuzz-agent'): [string, string][] {
  const now = Math.floor(Date.now() / 1000);
  return [
    ['iss', JSON.stringify(ctx.gw.origin)],
    ['sub', JSON.stringify(client)],
    ['aud', JSON.stringify(ctx.gw.resource)],
    ['client_id', JSON.stringify(client)],
    ['scope', '"mcp"'],
    ['jti', JSON.stringify(`fuzz-${now}-${Math.random().toString(36).slice(2)}`)],
    ['iat', String(now)],
    ['exp', String(now + 600)],
  ];
}

function claimsText(claims: [string, string][]): string {
  return `{${claims.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

function setClaim(claims: [string, string][], key: string, value: string | undefined): void {
  const i = claims.findIndex(([k]) => k === key);
  if (value === undefined) {
    if (i >= 0) claims.splice(i, 1);
  } else if (i >= 0) claims[i] = [key, value];
  else claims.push([key, value]);
}

/** A hostile JSON value (as text) for a claim. */
function hostileClaim(rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => JSON.stringify(rng.pick(PROTO_NAMES))],
    [2, () => `"x${rng.pick(SURROGATES)}"`],
    [2, () => JSON.stringify(bigString(rng, rng.size(6000)))],
    [1, () => rng.pick(RAW_NUMBERS)],
    [1, () => rng.pick(['null', 'true', '0', '[]', '{}', '""', '["a","b"]', '{"__proto__":{"polluted":1}}'])],
    [1, () => JSON.stringify(rng.pick(['', ' ', 'a\u0000b', '../../x', 'fuzz-agent ', 'FUZZ-AGENT']))],
  ])();
}

/** A token and what it is. */
interface Forged {
  token: string;
  label: string;
  /** Signed with the real key and otherwise valid: the gateway may accept it. */
  mayAuthenticate: boolean;
}

function forge(rng: Rng, ctx: FuzzContext): Forged {
  const real = keys.real as KeyObject;
  const kid = keys.realKid;
  const header = (extra: Record<string, unknown> = {}, alg = 'ES256'): string =>
    JSON.stringify({ alg, typ: 'at+jwt', kid, ...extra });
  const claims = goodClaims(ctx);
  const kind = rng.weighted<string>([
    [4, 'alg-none'],
    [2, 'hs256-pubkey'],
    [2, 'stranger-key'],
    [2, 'bad-signature'],
    [3, 'wrong-aud-iss'],
    [3, 'time'],
    [3, 'header-injection'],
    [3, 'malformed'],
    [2, 'huge'],
    [12, 'hostile-claims'],
    [3, 'claim-types'],
    [2, 'deep-act'],
    [2, 'raw-payload'],
  ]);
  switch (kind) {
    case 'alg-none': {
      const alg = rng.pick(['none', 'None', 'NONE', 'nOnE']);
      return {
        token: jws(JSON.stringify({ alg, typ: 'at+jwt', kid }), claimsText(claims), 'none'),
        label: `alg ${alg}`,
        mayAuthenticate: false,
      };
    }
    case 'hs256-pubkey':
      return {
        token: jws(header({}, 'HS256'), claimsText(claims), 'HS256', rng.chance(0.5) ? keys.publicJwk : ''),
        label: 'HS256 keyed with the public JWK',
        mayAuthenticate: false,
      };
    case 'stranger-key': {
      const k = rng.pick([kid, 'other-kid', '']);
      return {
        token: jws(
          JSON.stringify({ alg: 'ES256', typ: 'at+jwt', ...(k ? { kid: k } : {}) }),
          claimsText(claims),
          'ES256',
          keys.stranger,
        ),
        label: `another key, kid=${k === kid ? 'real' : k || 'none'}`,
        mayAuthenticate: false,
      };
    }
    case 'bad-signature':
      return {
        token: jws(header(), claimsText(claims), 'bad'),
        label: 'garbage signature',
        mayAuthenticate: false,
      };
    case 'wrong-aud-iss': {
      const which = rng.pick([
        'aud-other',
        'aud-array-other',
        'aud-empty-array',
        'aud-array-many',
        'aud-missing',
        'iss-other',
        'iss-slash',
        'iss-missing',
        'aud-origin',
      ]);
      switch (which) {
        case 'aud-other':
          setClaim(claims, 'aud', '"https://evil.example/mcp"');
          break;
        case 'aud-array-other':
          setClaim(claims, 'aud', '["https://evil.example/mcp"]');
          break;
        case 'aud-empty-array':
          setClaim(claims, 'aud', '[]');
          break;
        case 'aud-array-many':
          setClaim(
            claims,
            'aud',
            JSON.stringify([
              ...Array.from({ length: 2000 }, (_, i) => `https://x${i}.example`),
              ctx.gw.resource,
            ]),
          );
          break;
        case 'aud-missing':
          setClaim(claims, 'aud', undefined);
          break;
        case 'iss-other':
          setClaim(claims, 'iss', '"https://evil.example"');
          break;
        case 'iss-slash':
          setClaim(claims, 'iss', JSON.stringify(`${ctx.gw.origin}/`));
          break;
        case 'iss-missing':
          setClaim(claims, 'iss', undefined);
          break;
        default:
          setClaim(claims, 'aud', JSON.stringify(ctx.gw.origin));
      }
      return {
        token: jws(header(), claimsText(claims), 'ES256', real),
        label: which,
        mayAuthenticate: which === 'aud-array-many',
      };
    }
    case 'time': {
      const now = Math.floor(Date.now() / 1000);
      const which = rng.pick([
        'expired',
        'expired-long',
        'nbf-future',
        'iat-future',
        'exp-missing',
        'exp-string',
        'exp-float',
        'exp-huge',
        'exp-negative',
        'exp-1e999',
        'nbf-1e999',
        'iat-1e999',
        'exp-array',
      ]);
      const v: Record<string, [string, string | undefined]> = {
        expired: ['exp', String(now - 120)],
        'expired-long': ['exp', String(now - 86_400 * 365)],
        'nbf-future': ['nbf', String(now + 3600)],
        'iat-future': ['iat', String(now + 86_400)],
        'exp-missing': ['exp', undefined],
        'exp-string': ['exp', JSON.stringify(String(now + 600))],
        'exp-float': ['exp', `${now + 600}.5`],
        'exp-huge': ['exp', '99999999999999999999'],
        'exp-negative': ['exp', '-1'],
        'exp-1e999': ['exp', '1e999'],
        'nbf-1e999': ['nbf', '-1e999'],
        'iat-1e999': ['iat', '1e999'],
        'exp-array': ['exp', `[${now + 600}]`],
      };
      const [k, val] = v[which] ?? ['exp', undefined];
      setClaim(claims, k, val);
      return {
        token: jws(header(), claimsText(claims), 'ES256', real),
        label: which,
        mayAuthenticate: ['exp-float', 'exp-huge', 'iat-future'].includes(which),
      };
    }
    case 'header-injection': {
      const which = rng.pick([
        'kid-traversal',
        'kid-huge',
        'kid-proto',
        'jku',
        'x5u',
        'jwk-embedded',
        'crit-unknown',
        'crit-exp',
        'b64-false',
        'zip',
        'cty-jwt',
        'typ-jwt',
        'typ-missing',
        'x5c',
        'alg-es512',
        'alg-eddsa',
        'alg-rs256',
        'header-proto',
        'kid-surrogate',
      ]);
      let h: string;
      switch (which) {
        case 'kid-traversal':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: '../../../../../dev/null' });
          break;
        case 'kid-huge':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'k'.repeat(8000) });
          break;
        case 'kid-proto':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: rng.pick(PROTO_NAMES) });
          break;
        case 'kid-surrogate':
          h = `{"alg":"ES256","typ":"at+jwt","kid":"${kid}\\ud800"}`;
          break;
        case 'jku':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'x', jku: 'http://127.0.0.1:1/jwks' });
          break;
        case 'x5u':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', x5u: 'https://127.0.0.1/x5u.pem' });
          break;
        case 'jwk-embedded': {
          const jwk = (keys.stranger as KeyObject).export({ format: 'jwk' });
          const pub = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
          return {
            token: jws(
              JSON.stringify({ alg: 'ES256', typ: 'at+jwt', jwk: pub }),
              claimsText(claims),
              'ES256',
              keys.stranger,
            ),
            label: 'jwk embedded in the header (attacker key)',
            mayAuthenticate: false,
          };
        }
        case 'crit-unknown':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, crit: ['x-unknown'], 'x-unknown': 1 });
          break;
        case 'crit-exp':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, crit: ['exp'] });
          break;
        case 'b64-false':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, b64: false, crit: ['b64'] });
          break;
        case 'zip':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, zip: 'DEF' });
          break;
        case 'cty-jwt':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid, cty: 'JWT' });
          break;
        case 'typ-jwt':
          h = JSON.stringify({ alg: 'ES256', typ: 'JWT', kid });
          break;
        case 'typ-missing':
          h = JSON.stringify({ alg: 'ES256', kid });
          break;
        case 'x5c':
          h = JSON.stringify({ alg: 'ES256', typ: 'at+jwt', x5c: ['MIIB'] });
          break;
        case 'alg-es512':
          h = JSON.stringify({ alg: 'ES512', typ: 'at+jwt', kid });
          break;
        case 'alg-eddsa':
          h = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid });
          break;
        case 'alg-rs256':
          h = JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid });
          break;
        default:
          h = `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","__proto__":{"alg":"none"}}`;
      }
      return {
        token: jws(h, claimsText(claims), 'ES256', real),
        label: `header ${which}`,
        mayAuthenticate: ['zip', 'cty-jwt', 'typ-jwt', 'typ-missing', 'header-proto', 'crit-exp'].includes(
          which,
        ),
      };
    }
    case 'malformed': {
      const good = jws(header(), claimsText(claims), 'ES256', real);
      const [h, p, s] = good.split('.');
      const which = rng.pick([
        'two-segments',
        'four-segments',
        'five-segments',
        'padding',
        'std-base64',
        'bad-chars',
        'empty-segments',
        'whitespace',
        'opaque',
        'empty',
        'dots',
        'header-not-json',
        'payload-not-json',
        'payload-array',
        'utf16-payload',
      ]);
      const t: Record<string, string> = {
        'two-segments': `${h}.${p}`,
        'four-segments': `${good}.x`,
        'five-segments': `${h}.${p}.${s}.a.b`,
        padding: `${h}==.${p}=.${s}`,
        'std-base64': good.replace(/-/g, '+').replace(/_/g, '/'),
        'bad-chars': `${h}.${p}!.${s}`,
        'empty-segments': '..',
        whitespace: `${h} .${p}.${s}`,
        opaque: rng.string(43),
        empty: '',
        dots: '.'.repeat(rng.pick([3, 100])),
        'header-not-json': `${b64u('not json')}.${p}.${s}`,
        'payload-not-json': jws(header(), 'not json', 'ES256', real),
        'payload-array': jws(header(), '[1,2,3]', 'ES256', real),
        'utf16-payload': `${h}.${Buffer.from(claimsText(claims), 'utf16le').toString('base64url')}.${s}`,
      };
      return { token: t[which] ?? good, label: `malformed ${which}`, mayAuthenticate: false };
    }
    case 'huge': {
      const which = rng.pick(['claim', 'garbage']);
      if (which === 'claim') {
        setClaim(claims, 'x-pad', JSON.stringify('p'.repeat(rng.pick([6000, 12_000, 40_000]))));
        return {
          token: jws(header(), claimsText(claims), 'ES256', real),
          label: 'huge valid token',
          mayAuthenticate: true,
        };
      }
      return {
        token: rng.string(
          rng.pick([6000, 15_000, 60_000]),
          'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.',
        ),
        label: 'huge garbage',
        mayAuthenticate: false,
      };
    }
    case 'hostile-claims': {
      const claim = rng.pick([
        'client_id',
        'client_id',
        'sub',
        'sub',
        'jti',
        'scope',
        'tenant',
        'gatehouse_grant',
        'azp',
        'act',
        'scp',
      ]);
      let value = hostileClaim(rng);
      if (claim === 'act') value = `{"sub":${hostileClaim(rng)}}`;
      if (claim === 'client_id') {
        // Either a new agent (client_id and sub agree) or a user token (sub differs).
        setClaim(claims, 'client_id', value);
        if (rng.chance(0.6)) setClaim(claims, 'sub', value);
      } else setClaim(claims, claim, value);
      return {
        token: jws(header(), claimsText(claims), 'ES256', real),
        label: `claim ${claim}=${value.slice(0, 24).replace(/\d+/g, 'N')}`,
        mayAuthenticate: true,
      };
    }
    case 'claim-types': {
      const claim = rng.pick(['scope', 'scp', 'client_id', 'sub', 'act', 'tenant', 'gatehouse_grant']);
      const value = rng.pick([
        '["mcp"]',
        '"mcp mcp:admin"',
        '"mcp\\u0000"',
        '1',
        '{"a":1}',
        '"  mcp  "',
        `"${'mcp '.repeat(3000)}"`,
        '"tool:github__search_code mcp"',
        '["mcp","mcp:admin"]',
      ]);
      setClaim(claims, claim, value);
      return {
        token: jws(header(), claimsText(claims), 'ES256', real),
        label: `claim ${claim} type ${value.slice(0, 16)}`,
        mayAuthenticate: true,
      };
    }
    case 'deep-act': {
      const depth = rng.pick([10, 100, 1000, 5000]);
      const act = `${'{"sub":"a","act":'.repeat(depth)}{"sub":"z"}${'}'.repeat(depth)}`;
      setClaim(claims, 'act', act);
      setClaim(claims, 'sub', '"fuzz-user"');
      return {
        token: jws(header(), claimsText(claims), 'ES256', real),
        label: `act chain depth ${depth}`,
        mayAuthenticate: true,
      };
    }
    default: {
      // Raw payload text: duplicate keys, __proto__ as a key, lone surrogates.
      const which = rng.pick(['dup-client', 'proto-key', 'surrogate-everywhere', 'dup-aud']);
      let text = claimsText(claims);
      if (which === 'dup-client')
        text = text.replace(
          /}$/,
          `,"client_id":${JSON.stringify(rng.pick(['fuzz-narrow', ...PROTO_NAMES]))}}`,
        );
      else if (which === 'proto-key')
        text = text.replace(/}$/, ',"__proto__":{"client_id":"fuzz-narrow","scope":"mcp mcp:admin"}}');
      else if (which === 'dup-aud') text = text.replace(/}$/, ',"aud":"https://evil.example"}');
      else text = text.replace(/"fuzz-agent"/g, '"fuzz-agent\\udc00"');
      return { token: jws(header(), text, 'ES256', real), label: `payload ${which}`, mayAuthenticate: true };
    }
  }
}

/** The `tokens` family. */
export const tokensFamily: Family = {
  name: 'tokens',
  async prepare(ctx) {
    if (keys.real && keys.pid === ctx.gw.pid) return;
    keys.pid = ctx.gw.pid;
    const jwk = ctx.gw.signingKey();
    keys.real = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    keys.realKid = String(jwk.kid);
    keys.stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const { kty, crv, x, y } = jwk;
    keys.publicJwk = JSON.stringify({ kty, crv, x, y, kid: jwk.kid });
  },
  async generate(rng, ctx, index) {
    const transport = rng.weighted<string>([
      [10, 'header'],
      [1, 'query'],
      [1, 'two-headers'],
      [1, 'lowercase'],
      [1, 'with-cookie'],
    ]);
    const forged = forge(rng, ctx);
    // Tokens that may authenticate start a session (initialize) part of the time: that reaches grants and audit.
    const init = forged.mayAuthenticate && rng.chance(0.06);
    const body = Buffer.from(
      init
        ? JSON.stringify({
            jsonrpc: '2.0',
            id: index + 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-11-25',
              capabilities: CLIENT_CAPABILITIES,
              clientInfo: { name: 'fuzz-tokens', version: '1' },
            },
          })
        : rng.chance(0.5)
          ? JSON.stringify({ jsonrpc: '2.0', id: index + 1, method: 'tools/list' })
          : JSON.stringify({
              jsonrpc: '2.0',
              id: index + 1,
              method: 'tools/call',
              params: { name: 'everything__echo', arguments: { message: 'x' } },
            }),
    );
    const slot = init ? undefined : rng.pick([0, 3, undefined]);
    const s = slot === undefined ? undefined : await ctx.session(slot);
    const good = await ctx.token('agent');
    const headers: [string, string][] = [
      ['Host', ctx.host],
      ['Content-Type', 'application/json'],
      ['Accept', 'application/json, text/event-stream'],
    ];
    let path = '/mcp';
    switch (transport) {
      case 'query':
        path = `/mcp?access_token=${encodeURIComponent(rng.chance(0.5) ? good : forged.token)}`;
        break;
      case 'two-headers':
        if (rng.chance(0.5))
          headers.push(['Authorization', `Bearer ${good}`], ['Authorization', `Bearer ${forged.token}`]);
        else headers.push(['Authorization', `Bearer ${forged.token}`], ['Authorization', `Bearer ${good}`]);
        break;
      case 'lowercase':
        headers.push(['authorization', `${rng.pick(['bearer', 'BEARER', 'Bearer'])} ${forged.token}`]);
        break;
      case 'with-cookie':
        headers.push(['Cookie', `access_token=${good}`], ['Authorization', `Bearer ${forged.token}`]);
        break;
      default:
        headers.push(['Authorization', `Bearer ${forged.token}`]);
    }
    if (s) headers.push(['Mcp-Session-Id', s.id], ['MCP-Protocol-Version', s.protocolVersion]);
    headers.push(['Content-Length', String(body.length)]);
    const data = buildRequest('POST', path, headers, body);
    const headerBytes = headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    const label = `${forged.label}${transport === 'header' ? '' : ` (${transport})`}${init ? ' initialize' : ''}`;
    const probe: Probe = {
      label,
      wire: { chunks: [{ data }], methods: ['POST'], deadlineMs: init ? ctx.initDeadline : ctx.mcpDeadline },
      expect: {
        deadlineMs: init ? ctx.initDeadline : ctx.mcpDeadline,
        mcp: true,
        wellFormed: headerBytes < 16_000,
        unauthenticated: !forged.mayAuthenticate && transport !== 'two-headers',
        ...(init || s ? { requestIds: [index + 1] } : {}),
      },
    };
    if (init) {
      probe.after = async (res) => {
        for (const r of res.responses) {
          const sid = r.headers.get('mcp-session-id')?.[0];
          if (sid) {
            // End it with the same (forged) token: it is the session's principal.
            const del = [
              ['Host', ctx.host],
              ['Authorization', `Bearer ${forged.token}`],
              ['Mcp-Session-Id', sid],
              ['Content-Length', '0'],
            ] as [string, string][];
            await exchange(ctx.gw.port, {
              chunks: [{ data: buildRequest('DELETE', '/mcp', del) }],
              methods: ['DELETE'],
              deadlineMs: ctx.mcpDeadline,
            });
          }
        }
      };
    }
    return [probe];
  },
};
