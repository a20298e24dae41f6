/**
 * `http`: headers and framing over raw sockets. Bad, duplicated and oversized headers; wrong
 * Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Origin, Host and Authorization values;
 * Content-Length mismatches and chunked-encoding abuse; pipelined requests; odd request lines; every
 * HTTP method on odd paths (/mcp/../, %2e, long paths) of /mcp, /healthz, /readyz, /metrics and
 * /.well-known/*; GET streams with Last-Event-ID; DELETE. Partial requests (headers or body never
 * finished, slowloris) are stall probes: the oracle is how long the gateway keeps them open.
 */
import { type Family, type FuzzContext, type Probe, SLOTS, type StallProbe } from '../core.ts';
import { requestIdsOf } from '../oracles.ts';
import type { Rng } from '../rng.ts';
import { PROTO_NAMES } from '../values.ts';
import { buildRequest, type WireChunk } from '../wire.ts';
import { upstreamMayBeSlow } from './jsonrpc.ts';

const METHODS = [
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'get',
  'post',
  'FOO',
  'M-SEARCH',
  'LINK',
  'PURGE',
  'QUERY',
];

/** Paths of the gateway and odd spellings of them (the port is filled in). */
function paths(port: number): string[] {
  return [
    '/mcp',
    '/mcp/',
    '/mcp/../mcp',
    '/x/../mcp',
    '/%6dcp',
    '/%2e/mcp',
    '/mcp%2f',
    '/mcp%00',
    '/MCP',
    '/mcp?x=1',
    '/mcp?access_token=abc',
    '//mcp',
    '/./mcp',
    '/mcp;a=b',
    '/mcp#frag',
    `/${'a'.repeat(8000)}`,
    `/mcp?${'q'.repeat(8000)}`,
    '/healthz',
    '/healthz/',
    '/healthz?x',
    '/readyz',
    '/metrics',
    '/metrics/',
    '/.well-known/oauth-protected-resource',
    '/.well-known/oauth-protected-resource/mcp',
    '/.well-known/oauth-protected-resource/mcp/',
    '/.well-known/oauth-protected-resource/../mcp',
    '/.well-known/oauth-protected-resource/x',
    '/.well-known/oauth-authorization-server',
    '/.well-known/oauth-authorization-server/mcp',
    '/.well-known/openid-configuration',
    '/.well-known/%2e%2e/mcp',
    '/.well-known/',
    '/oauth/jwks',
    '/oauth/%2e%2e/mcp',
    '/oauth/../mcp',
    '/connect/',
    '/connect/x',
    '/',
    '*',
    `http://127.0.0.1:${port}/mcp`,
    'http://evil.example/mcp',
    '/%',
    '/%zz',
    '/..%2f..%2fetc/passwd',
    '/\u00e9',
    `/${PROTO_NAMES[0] ?? 'constructor'}`,
    '/__proto__',
    '/mcp/__proto__',
  ];
}

/** Header values worth trying, per header. */
function values(
  ctx: FuzzContext,
  token: string,
  otherSession: string,
  sid: string,
): Record<string, string[]> {
  const port = ctx.gw.port;
  return {
    host: [
      '',
      'evil.example',
      `evil.example:${port}`,
      '127.0.0.1',
      `localhost:${port}`,
      `[::1]:${port}`,
      `127.0.0.1:${port}.`,
      `127.0.0.1:${port}, evil.example`,
      `127.0.0.1:${port}@evil.example`,
      'h'.repeat(8000),
      `LOCALHOST:${port}`,
      `127.0.0.1:${port}\u0000`,
    ],
    'content-type': [
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'text/plain',
      'application/json-patch+json',
      'APPLICATION/JSON',
      'application/json;',
      'application/jsonx',
      '',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/json, text/plain',
      ' application/json',
      `application/json; ${'p=1;'.repeat(2000)}`,
    ],
    accept: [
      'application/json',
      'text/event-stream',
      '*/*',
      '',
      'application/*',
      'text/event-stream, application/json;q=0',
      'APPLICATION/JSON, TEXT/EVENT-STREAM',
      `application/json, text/event-stream, ${'x/y, '.repeat(1500)}`,
      'application/jsontext/event-stream',
    ],
    'mcp-protocol-version': [
      '1999-01-01',
      '',
      '2025-11-25 ',
      '2024-11-05',
      '2025-03-26',
      '2025-06-18',
      'v'.repeat(5000),
      ...PROTO_NAMES.slice(0, 4),
    ],
    'mcp-session-id': [
      '',
      otherSession,
      `${sid} `,
      `${sid},${sid}`,
      's'.repeat(10_000),
      '__proto__',
      'constructor',
      'toString',
      '\u00e9\u00e9',
      sid.toUpperCase(),
      `${sid}\t`,
    ],
    authorization: [
      'Bearer',
      'Bearer ',
      `bearer ${token}`,
      `BEARER ${token}`,
      'Basic Zm9vOmJhcg==',
      `Bearer ${token} ${token}`,
      `Bearer  ${token}`,
      `Bearer\t${token}`,
      `Bearer ${token}x`,
      `Bearer ${'A'.repeat(12_000)}`,
      `Bearer ${token}, Bearer ${token}`,
      `Token ${token}`,
      `Bearer ${token.slice(0, -3)}`,
    ],
    origin: [
      'null',
      'https://evil.example',
      `http://127.0.0.1:${port}`,
      'http://localhost:1',
      'o'.repeat(6000),
      'file://',
      `http://127.0.0.1:${port}/`,
      '',
    ],
  };
}

/** Extra headers that should change nothing (or be refused cleanly). */
const EXTRA: readonly (readonly [string, string])[] = [
  ['X-Forwarded-For', '10.0.0.1, 127.0.0.1'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Host', 'evil.example'],
  ['Forwarded', 'for=10.0.0.1;proto=https;host=evil.example'],
  ['Cookie', `a=${'c'.repeat(4000)}`],
  ['Connection', 'close'],
  ['Connection', 'keep-alive, Upgrade'],
  ['Upgrade', 'h2c'],
  ['Expect', '100-continue'],
  ['TE', 'trailers'],
  ['Range', 'bytes=0-1'],
  ['If-None-Match', '*'],
  ['X-Request-Id', 'r'.repeat(2000)],
  ['Last-Event-ID', 'abc_1'],
  ['Accept-Encoding', 'gzip, br, zstd'],
  ['Content-Encoding', 'gzip'],
  ['X-\u00dc', 'v'],
  ['__proto__', 'x'],
  ['constructor', 'x'],
  ['X-Empty', ''],
];

/** A header set for a /mcp POST in a session; returned as a mutable list. */
async function mcpHeaders(
  ctx: FuzzContext,
  slot: number,
  body: Buffer,
): Promise<{ headers: [string, string][]; token: string; sid: string }> {
  const s = await ctx.session(slot);
  const token = await ctx.token(s.token);
  return {
    headers: [
      ['Host', ctx.host],
      ['Authorization', `Bearer ${token}`],
      ['Content-Type', 'application/json'],
      ['Accept', 'application/json, text/event-stream'],
      ['Mcp-Session-Id', s.id],
      ['MCP-Protocol-Version', s.protocolVersion],
      ['Content-Length', String(body.length)],
    ],
    token,
    sid: s.id,
  };
}

function validBody(rng: Rng, index: number): Buffer {
  const m = rng.pick([
    { jsonrpc: '2.0', id: index, method: 'ping' },
    { jsonrpc: '2.0', id: index, method: 'tools/list' },
    {
      jsonrpc: '2.0',
      id: index,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: { message: 'x' } },
    },
    {
      jsonrpc: '2.0',
      id: index,
      method: 'tools/call',
      params: { name: 'github__delete_repo', arguments: { repo: 'x' } },
    },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
  ]);
  return Buffer.from(JSON.stringify(m));
}

/** A complete chunked encoding of `body` with random chunk sizes, extensions and trailers. */
function chunked(rng: Rng, body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const n = Math.min(body.length - at, rng.range(1, 64));
    const size = n.toString(16);
    const head = rng.weighted<string>([
      [6, size],
      [1, size.toUpperCase()],
      [1, `000${size}`],
      [1, `${size};ext=1`],
      [1, `${size};${'e'.repeat(200)}`],
    ]);
    parts.push(Buffer.from(`${head}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from(rng.chance(0.2) ? '0\r\nX-Trailer: 1\r\n\r\n' : '0\r\n\r\n'));
  return Buffer.concat(parts);
}

function probe(
  ctx: FuzzContext,
  label: string,
  data: Buffer,
  methods: string[],
  opts: {
    wellFormed: boolean;
    mcp: boolean;
    body?: Buffer;
    unauthenticated?: boolean;
    stream?: boolean;
    slot?: number;
    sid?: string;
  },
): Probe {
  const ids = opts.body ? requestIdsOf(opts.body) : undefined;
  const p: Probe = {
    label,
    wire: {
      chunks: [{ data }],
      methods,
      deadlineMs: ctx.mcpDeadline,
      ...(opts.stream ? { streamGraceMs: 300 } : {}),
    },
    expect: {
      deadlineMs: ctx.mcpDeadline,
      mcp: opts.mcp,
      wellFormed: opts.wellFormed,
      ...(ids && methods.length === 1 ? { requestIds: ids.ids } : {}),
      upstreamErrorsOk: opts.body ? upstreamMayBeSlow(opts.body) : false,
      ...(opts.unauthenticated ? { unauthenticated: true } : {}),
    },
  };
  if (opts.slot !== undefined) p.slot = opts.slot;
  if (opts.sid !== undefined) p.sessionId = opts.sid;
  return p;
}

/** Whether a path is the MCP endpoint as the gateway routes it (exact `/mcp`, query allowed). */
function isMcpPath(path: string): boolean {
  return path.split('?', 1)[0] === '/mcp';
}

/** The `http` family. */
export const httpFamily: Family = {
  name: 'http',
  async generate(rng, ctx, index) {
    const kind = rng.weighted<string>([
      [35, 'headers'],
      [20, 'method-path'],
      [14, 'framing'],
      [10, 'pipeline'],
      [8, 'line'],
      [10, 'get'],
      [3, 'delete'],
    ]);
    const slot = rng.pick([0, 0, 1, 3, 4]);
    const body = validBody(rng, index + 1);
    const { headers, token, sid } = await mcpHeaders(ctx, slot, body);
    const other = await ctx.session(slot === 3 ? 0 : 3);
    switch (kind) {
      case 'headers': {
        const dict = values(ctx, token, other.id, sid);
        const ops: string[] = [];
        let wellFormed = true;
        let unauthenticated = false;
        const n = rng.range(1, 3);
        for (let i = 0; i < n; i++) {
          const op = rng.weighted<string>([
            [4, 'replace'],
            [2, 'drop'],
            [2, 'dup'],
            [2, 'extra'],
            [1, 'case'],
            [1, 'many'],
            [1, 'malformed'],
            [1, 'huge'],
          ]);
          const at = rng.int(headers.length - 1); // never Content-Length (last)
          const h = headers[at];
          if (!h) continue;
          const name = h[0].toLowerCase();
          switch (op) {
            case 'replace': {
              const options = Object.hasOwn(dict, name) ? dict[name] : undefined;
              if (!options) break;
              h[1] = rng.pick(options);
              if (name === 'authorization') unauthenticated = true;
              if (name === 'host') wellFormed = false; // Node owns the Host header's syntax
              ops.push(`${name}=${h[1].slice(0, 24)}`);
              break;
            }
            case 'drop':
              headers.splice(at, 1);
              if (name === 'authorization') unauthenticated = true;
              if (name === 'host') wellFormed = false; // HTTP/1.1 without Host: Node answers 400
              ops.push(`drop ${name}`);
              break;
            case 'dup': {
              const options = (Object.hasOwn(dict, name) ? dict[name] : undefined) ?? [h[1]];
              headers.splice(at + 1, 0, [h[0], rng.chance(0.5) ? h[1] : rng.pick(options)]);
              if (name === 'host') wellFormed = false;
              ops.push(`dup ${name}`);
              break;
            }
            case 'extra': {
              const [k, v] = rng.pick(EXTRA);
              headers.splice(rng.int(headers.length), 0, [k, v]);
              if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || k === 'Upgrade' || v.includes('Upgrade'))
                wellFormed = false;
              ops.push(`extra ${k}`);
              break;
            }
            case 'case':
              h[0] = rng.chance(0.5) ? h[0].toUpperCase() : h[0].toLowerCase();
              ops.push(`case ${name}`);
              break;
            case 'many': {
              const count = rng.pick([100, 500, 1900, 2500]);
              for (let j = 0; j < count; j++) headers.splice(1, 0, [`X-H${j}`, 'v']);
              ops.push(`many ${count}`);
              break;
            }
            case 'malformed': {
              wellFormed = false;
              const m = rng.pick(['fold', 'nocolon', 'nul', 'space-name', 'ctl', 'lf-only', 'bad-name']);
              const bad: Record<string, [string, string]> = {
                fold: ['X-Folded', 'a\r\n b'],
                nocolon: ['X-No-Colon-Here', ''],
                nul: ['X-Nul', 'a\u0000b'],
                'space-name': ['X Space', 'v'],
                ctl: ['X-Ctl', 'a\u0001b'],
                'lf-only': ['X-Lf', 'a\nX-Injected: 1'],
                'bad-name': ['X(bad)', 'v'],
              };
              const entry = bad[m] ?? ['X', 'v'];
              headers.splice(1, 0, m === 'nocolon' ? ['X-No-Colon-Here', ''] : entry);
              if (m === 'nocolon') {
                // Rebuilt below without ": ".
              }
              ops.push(`malformed ${m}`);
              break;
            }
            default: {
              const size = rng.pick([8000, 17_000, 70_000]);
              headers.splice(1, 0, ['X-Big', 'b'.repeat(size)]);
              if (size > 16_000) wellFormed = false;
              ops.push(`huge ${size}`);
            }
          }
        }
        let data = buildRequest('POST', '/mcp', headers, body);
        if (ops.includes('malformed nocolon'))
          data = Buffer.from(data.toString('utf8').replace('X-No-Colon-Here: \r\n', 'X-No-Colon-Here\r\n'));
        if (headers.reduce((s, [k, v]) => s + k.length + v.length + 4, 0) > 16_000) wellFormed = false;
        return [
          probe(ctx, `POST /mcp ${ops.join('; ')}`, data, ['POST'], {
            wellFormed,
            mcp: true,
            body,
            unauthenticated,
            slot,
            sid,
          }),
        ];
      }
      case 'method-path': {
        const method = rng.pick(METHODS);
        const path = rng.pick(paths(ctx.gw.port));
        const withBody = ['POST', 'PUT', 'PATCH', 'post', 'QUERY'].includes(method) || rng.chance(0.1);
        const hs: [string, string][] = headers.filter(([k]) => k !== 'Content-Length');
        const auth = rng.chance(0.8);
        const list = auth ? hs : hs.filter(([k]) => k !== 'Authorization');
        if (withBody) list.push(['Content-Length', String(body.length)]);
        const data = buildRequest(method, path, list, withBody ? body : undefined);
        const standard = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'].includes(method);
        const weird =
          path.includes('%') ||
          path.includes('\u00e9') ||
          path.includes('#') ||
          path === '*' ||
          !standard ||
          path.length > 7000;
        return [
          probe(
            ctx,
            `${method} ${path.slice(0, 60)}`,
            data,
            [method === 'head' ? 'HEAD' : method.toUpperCase()],
            {
              wellFormed: !weird,
              mcp: isMcpPath(path) && method.toUpperCase() !== 'HEAD',
              ...(withBody && isMcpPath(path) && method === 'POST' ? { body } : {}),
              unauthenticated: !auth,
              stream: method === 'GET',
              slot,
              sid,
            },
          ),
        ];
      }
      case 'framing': {
        const hs: [string, string][] = headers.filter(([k]) => k !== 'Content-Length');
        const f = rng.pick([
          'chunked',
          'chunked+cl',
          'cl-short',
          'cl-weird',
          'te-weird',
          'cl-dup',
          'cl-huge',
          'empty',
          'te-double',
        ]);
        let data: Buffer;
        let wellFormed = true;
        switch (f) {
          case 'chunked':
            data = buildRequest(
              'POST',
              '/mcp',
              [...hs, ['Transfer-Encoding', 'chunked']],
              chunked(rng, body),
            );
            break;
          case 'chunked+cl':
            wellFormed = false;
            data = buildRequest(
              'POST',
              '/mcp',
              [...hs, ['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']],
              chunked(rng, body),
            );
            break;
          case 'cl-short': {
            // The rest of the body is read as a second request (which Node refuses).
            const cut = rng.int(body.length);
            data = buildRequest(
              'POST',
              '/mcp',
              [...hs, ['Content-Length', String(cut)]],
              Buffer.concat([body, Buffer.from('\r\n\r\n')]),
            );
            return [
              probe(ctx, `POST /mcp ${f} ${cut}/${body.length}`, data, ['POST'], {
                wellFormed: false,
                mcp: true,
                slot,
                sid,
              }),
            ];
          }
          case 'cl-weird': {
            wellFormed = false;
            const v = rng.pick([
              `+${body.length}`,
              ` ${body.length} `,
              `0${body.length}`,
              `${body.length}.0`,
              `0x${body.length.toString(16)}`,
              `-${body.length}`,
              `${body.length}, ${body.length}`,
            ]);
            data = buildRequest('POST', '/mcp', [...hs, ['Content-Length', v]], body);
            return [
              probe(ctx, `POST /mcp content-length=${v.replace(/\d+/g, 'N')}`, data, ['POST'], {
                wellFormed: false,
                mcp: true,
                slot,
                sid,
              }),
            ];
          }
          case 'te-weird': {
            wellFormed = false;
            const v = rng.pick([
              'chunked, chunked',
              'identity',
              'gzip, chunked',
              'xchunked',
              'chunked;q=1',
              'CHUNKED',
              ' chunked',
              'chunked\t',
            ]);
            data = buildRequest('POST', '/mcp', [...hs, ['Transfer-Encoding', v]], chunked(rng, body));
            return [
              probe(ctx, `POST /mcp transfer-encoding=${v}`, data, ['POST'], {
                wellFormed: false,
                mcp: true,
                slot,
                sid,
              }),
            ];
          }
          case 'te-double':
            wellFormed = false;
            data = buildRequest(
              'POST',
              '/mcp',
              [...hs, ['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']],
              chunked(rng, body),
            );
            break;
          case 'cl-dup':
            data = buildRequest(
              'POST',
              '/mcp',
              [...hs, ['Content-Length', String(body.length)], ['Content-Length', String(body.length)]],
              body,
            );
            wellFormed = false;
            break;
          case 'cl-huge':
            data = buildRequest(
              'POST',
              '/mcp',
              [
                ...hs,
                [
                  'Content-Length',
                  rng.pick([
                    '99999999999999999999',
                    String(ctx.limits.maxRequestBytes + 1),
                    '9007199254740993',
                  ]),
                ],
              ],
              body,
            );
            return [
              probe(ctx, `POST /mcp ${f}`, data, ['POST'], { wellFormed: false, mcp: true, slot, sid }),
            ];
          default:
            data = buildRequest('POST', '/mcp', [...hs, ['Content-Length', '0']]);
            return [
              probe(ctx, `POST /mcp empty body`, data, ['POST'], { wellFormed: true, mcp: true, slot, sid }),
            ];
        }
        return [probe(ctx, `POST /mcp ${f}`, data, ['POST'], { wellFormed, mcp: true, body, slot, sid })];
      }
      case 'pipeline': {
        const n = rng.range(2, 5);
        const parts: Buffer[] = [];
        const methods: string[] = [];
        let wellFormed = true;
        const kinds: string[] = [];
        for (let i = 0; i < n; i++) {
          const k = rng.pick(['healthz', 'mcp', 'mcp', 'metrics', 'prm', 'bad', 'head']);
          kinds.push(k);
          const b = validBody(rng, 1_000_000 + index * 8 + i);
          switch (k) {
            case 'healthz':
              parts.push(buildRequest('GET', '/healthz', [['Host', ctx.host]]));
              methods.push('GET');
              break;
            case 'metrics':
              parts.push(buildRequest('GET', '/metrics', [['Host', ctx.host]]));
              methods.push('GET');
              break;
            case 'prm':
              parts.push(
                buildRequest('GET', '/.well-known/oauth-protected-resource/mcp', [['Host', ctx.host]]),
              );
              methods.push('GET');
              break;
            case 'head':
              parts.push(buildRequest('HEAD', '/mcp', [['Host', ctx.host]]));
              methods.push('HEAD');
              break;
            case 'bad':
              parts.push(Buffer.from('GARBAGE\r\n\r\n'));
              methods.push('GET');
              wellFormed = false;
              break;
            default: {
              const h = headers.filter(([x]) => x !== 'Content-Length');
              parts.push(buildRequest('POST', '/mcp', [...h, ['Content-Length', String(b.length)]], b));
              methods.push('POST');
            }
          }
        }
        return [
          {
            ...probe(ctx, `pipeline ${kinds.join(',')}`, Buffer.concat(parts), methods, {
              wellFormed,
              mcp: false,
              slot,
              sid,
            }),
            expect: { deadlineMs: ctx.mcpDeadline, mcp: false, wellFormed, upstreamErrorsOk: false },
          },
        ];
      }
      case 'line': {
        const line = rng.pick([
          'POST /mcp http/1.1',
          'POST /mcp HTTP/1.2',
          'POST /mcp HTTP/2.0',
          'POST /mcp HTTP/0.9',
          'POST /mcp HTTP/1.0',
          'POST /mcp',
          'POST  /mcp  HTTP/1.1',
          'POST\t/mcp\tHTTP/1.1',
          '\r\nPOST /mcp HTTP/1.1',
          `${'P'.repeat(5000)} /mcp HTTP/1.1`,
          'POST /m cp HTTP/1.1',
          'POST mcp HTTP/1.1',
          'PRI * HTTP/2.0',
          '\u0016\u0003\u0001\u0002\u0000',
        ]);
        const h = headers.map(([k, v]) => `${k}: ${v}\r\n`).join('');
        const lf = rng.chance(0.2);
        const text = `${line}\r\n${h}\r\n`;
        const data = Buffer.concat([Buffer.from(lf ? text.replace(/\r\n/g, '\n') : text), body]);
        const okLine = line === 'POST /mcp HTTP/1.0';
        return [
          probe(
            ctx,
            `request line ${JSON.stringify(line.slice(0, 30))}${lf ? ' LF-only' : ''}`,
            data,
            ['POST'],
            { wellFormed: okLine && !lf, mcp: true, slot, sid },
          ),
        ];
      }
      case 'get': {
        const hs: [string, string][] = headers.filter(
          ([k]) => k !== 'Content-Length' && k !== 'Content-Type',
        );
        const accept = hs.find(([k]) => k === 'Accept');
        if (accept)
          accept[1] = rng.pick(['text/event-stream', 'text/event-stream', 'application/json', '*/*', '']);
        const last = rng.weighted<string | undefined>([
          [4, undefined],
          [1, `${rng.string(8)}_1`],
          [1, 'abc'],
          [1, '_'],
          [1, `${sid}_0`],
          [1, `x_${'9'.repeat(30)}`],
          [1, `x_-1`],
          [1, `__proto___1`],
          [1, `x_1e999`],
          [1, 'l'.repeat(9000)],
        ]);
        if (last !== undefined) hs.push(['Last-Event-ID', last]);
        const data = buildRequest('GET', '/mcp', hs);
        return [
          probe(
            ctx,
            `GET /mcp accept=${accept?.[1] ?? '-'}${last !== undefined ? ` last-event-id=${last.slice(0, 16)}` : ''}`,
            data,
            ['GET'],
            {
              wellFormed: true,
              mcp: true,
              stream: true,
              slot,
              sid,
            },
          ),
        ];
      }
      default: {
        // DELETE: with a made-up or another principal's session id (a real slot session now and then).
        const hs: [string, string][] = headers.filter(
          ([k]) => k !== 'Content-Length' && k !== 'Content-Type',
        );
        const which = rng.weighted<string>([
          [4, 'other'],
          [3, 'random'],
          [1, 'proto'],
          [1, 'own'],
        ]);
        const s = hs.find(([k]) => k === 'Mcp-Session-Id');
        if (s) {
          if (which === 'other') s[1] = other.id;
          else if (which === 'random') s[1] = rng.string(32);
          else if (which === 'proto') s[1] = rng.pick(PROTO_NAMES);
        }
        const data = buildRequest('DELETE', '/mcp', hs);
        return [
          probe(ctx, `DELETE /mcp session=${which}`, data, ['DELETE'], {
            wellFormed: true,
            mcp: true,
            slot,
            sid,
          }),
        ];
      }
    }
  },
  async stalls(ctx) {
    const list: StallProbe[] = [];
    const slot = 0;
    const s = await ctx.session(slot);
    const token = await ctx.token(SLOTS[slot]?.token ?? 'agent');
    const body = Buffer.from(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'everything__echo', arguments: { message: 'x' } },
      }),
    );
    const base: [string, string][] = [
      ['Host', ctx.host],
      ['Authorization', `Bearer ${token}`],
      ['Content-Type', 'application/json'],
      ['Accept', 'application/json, text/event-stream'],
      ['Mcp-Session-Id', s.id],
      ['MCP-Protocol-Version', s.protocolVersion],
    ];
    const stall = (label: string, chunks: WireChunk[], methods = ['POST']): void => {
      list.push({ label, wire: { chunks, methods, deadlineMs: 0, waitForClose: true } });
    };
    const head = (hs: [string, string][]): string =>
      `POST /mcp HTTP/1.1\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}`;
    stall('idle connection (nothing sent)', [{ data: Buffer.alloc(0) }], ['GET']);
    stall('/mcp headers never finished', [{ data: Buffer.from(head(base)) }]);
    stall(
      '/healthz headers never finished',
      [{ data: Buffer.from(`GET /healthz HTTP/1.1\r\nHost: ${ctx.host}\r\n`) }],
      ['GET'],
    );
    // Slowloris: one header line every 4 s, never the blank line.
    const trickle: WireChunk[] = [{ data: Buffer.from(`POST /mcp HTTP/1.1\r\nHost: ${ctx.host}\r\n`) }];
    for (let i = 0; i < 40; i++) trickle.push({ data: Buffer.from(`X-Slow-${i}: ${i}\r\n`), delayMs: 4000 });
    stall('/mcp slowloris headers (a line every 4 s)', trickle);
    stall('authenticated /mcp body: Content-Length > bytes sent', [
      {
        data: Buffer.concat([
          Buffer.from(`${head([...base, ['Content-Length', String(body.length + 100)]])}\r\n`),
          body,
        ]),
      },
    ]);
    stall('authenticated /mcp body: 1 byte then nothing', [
      { data: Buffer.from(`${head([...base, ['Content-Length', String(body.length)]])}\r\n{`) },
    ]);
    // Slow body: a byte every 4 s, far past any sensible read timeout.
    const slowBody: WireChunk[] = [
      { data: Buffer.from(`${head([...base, ['Content-Length', String(body.length)]])}\r\n`) },
    ];
    for (let i = 0; i < Math.min(body.length - 1, 40); i++)
      slowBody.push({ data: body.subarray(i, i + 1), delayMs: 4000 });
    stall('authenticated /mcp body: a byte every 4 s', slowBody);
    stall('authenticated /mcp chunked body without the last chunk', [
      {
        data: Buffer.concat([
          Buffer.from(`${head([...base, ['Transfer-Encoding', 'chunked']])}\r\n`),
          Buffer.from(`5\r\n{"jso\r\n`),
        ]),
      },
    ]);
    stall('unauthenticated /mcp body: Content-Length > bytes sent', [
      {
        data: Buffer.concat([
          Buffer.from(
            `${head(base.filter(([k]) => k !== 'Authorization').concat([['Content-Length', '100000']]))}\r\n`,
          ),
          body,
        ]),
      },
    ]);
    stall('/mcp Expect: 100-continue, body never sent', [
      {
        data: Buffer.from(
          `${head([...base, ['Content-Length', String(body.length)], ['Expect', '100-continue']])}\r\n`,
        ),
      },
    ]);
    stall(
      'keep-alive idle after a /healthz answer',
      [{ data: buildRequest('GET', '/healthz', [['Host', ctx.host]]) }],
      ['GET'],
    );
    return list;
  },
};
