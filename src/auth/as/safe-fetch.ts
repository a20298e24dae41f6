/**
 * A guarded HTTP GET for URLs chosen by someone else (OAuth Client ID Metadata
 * Documents, client `jwks_uri`, later the credential broker): the server-side
 * request forgery rules live here, in one place.
 *
 * "Authorization servers fetching metadata documents SHOULD consider Server-Side
 * Request Forgery (SSRF) risks" and "[...] SHOULD NOT fetch [...] documents from
 * private or loopback addresses"
 * (https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents,
 * https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/ §6).
 *
 * Rules, in order, for every hop:
 * 1. https only (http only with `allowHttp`);
 * 2. the host is resolved once; every resolved address must be public (see
 *    {@link isBlockedAddress}), else the fetch fails BEFORE any connection;
 * 3. the socket connects to the address that was checked (the resolver is not
 *    asked again, so DNS rebinding cannot swap it), TLS still verifies the name;
 * 4. redirects are not followed unless `maxRedirects` > 0, and then each target
 *    goes through the same checks;
 * 5. the body is capped at `maxBytes` and the whole exchange at `timeoutMs`;
 * 6. a request with a body (a POST to a token endpoint carries credentials) never
 *    follows a redirect, and `authorization`/`cookie` headers are dropped when a
 *    followed redirect leaves the origin (as WHATWG fetch does).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Why a guarded fetch failed. `code` is stable; the message is for logs. */
export class SafeFetchError extends Error {
  constructor(
    readonly code:
      | 'bad_url'
      | 'scheme'
      | 'blocked_address'
      | 'dns'
      | 'redirect'
      | 'too_large'
      | 'timeout'
      | 'network',
    message: string,
  ) {
    super(message);
    this.name = 'SafeFetchError';
  }
}

export interface SafeFetchOptions {
  /** Allow `http:` URLs (development only). Default false. */
  allowHttp?: boolean;
  /**
   * With `allowHttp`, plain http is allowed only to hops whose every resolved
   * address passes this test (the credential broker: loopback only). Default: any
   * address the other rules allow.
   */
  allowHttpAddress?: (ip: string) => boolean;
  /** `GET` (default) or `POST`. */
  method?: 'GET' | 'POST';
  /** Request body (sets `content-length`). A request with a body never follows redirects. */
  body?: string | Buffer;
  /** Allow loopback, private, link-local and other special-use addresses (development only). Default false. */
  allowPrivateAddresses?: boolean;
  /** Overrides the address policy: return true to refuse an address. Default {@link isBlockedAddress}. */
  isBlocked?: (ip: string) => boolean;
  /** Largest accepted body in bytes. Default 64 KiB. */
  maxBytes?: number;
  /** Deadline for the whole exchange, redirects included. Default 3000 ms. */
  timeoutMs?: number;
  /** Redirects followed (each target re-checked). Default 0: a redirect is an error. */
  maxRedirects?: number;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Resolves a host name to addresses. Default: the system resolver (all addresses). */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Observes every connection attempt (address, port) just before the socket is opened. */
  onConnect?: (ip: string, port: number) => void;
}

export interface SafeResponse {
  /** The URL that answered (after redirects). */
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const BLOCKED = new BlockList();
// IPv4 special-use ranges (RFC 6890 and the IANA registry).
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, includes the 169.254.169.254 cloud metadata service
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
// IPv6 special-use ranges. IPv4-mapped, NAT64 and 6to4 forms are unwrapped and checked as IPv4 below.
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::', 96], // IPv4-compatible (deprecated)
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (ULA)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** Expands an IPv6 address to 8 numbers (embedded dotted IPv4 allowed); undefined when malformed. */
export function ipv6Words(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const octets = dotted[1].split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const words = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((w) =>
    /^[0-9a-f]{1,4}$/.test(w) ? Number.parseInt(w, 16) : Number.NaN,
  );
  return words.some(Number.isNaN) ? undefined : words;
}

function v4FromWords(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * True when `ip` is not a public unicast address: loopback, private (10/8,
 * 172.16/12, 192.168/16), CGNAT (100.64/10), link-local (169.254/16, fe80::/10),
 * unique local (fc00::/7), multicast, documentation, reserved, and IPv6 forms
 * that embed such an IPv4 address (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16).
 * Anything that does not parse as an IP address is blocked too.
 */
export function isBlockedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return BLOCKED.check(ip, 'ipv4');
  if (family !== 6) return true;
  const w = ipv6Words(ip);
  if (!w) return true;
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = w;
  // ::ffff:a.b.c.d (IPv4-mapped)
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0xffff) {
    return BLOCKED.check(v4FromWords(w6, w7), 'ipv4');
  }
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix) and 64:ff9b:1::/48 (local-use NAT64)
  if (w0 === 0x64 && w1 === 0xff9b) {
    return w2 !== 0 || BLOCKED.check(v4FromWords(w6, w7), 'ipv4');
  }
  // 2002:AABB:CCDD::/48 (6to4)
  if (w0 === 0x2002) return BLOCKED.check(v4FromWords(w1, w2), 'ipv4');
  return BLOCKED.check(ip, 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True when `ip` is a loopback address: 127.0.0.0/8, ::1, or an IPv4-mapped 127.x (::ffff:7f00:1). */
export function isLoopbackAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return LOOPBACK.check(ip, 'ipv4');
  if (family !== 6) return false;
  const w = ipv6Words(ip);
  if (!w) return false;
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = w;
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0xffff) {
    return LOOPBACK.check(v4FromWords(w6, w7), 'ipv4');
  }
  return w.every((x, i) => x === (i === 7 ? 1 : 0));
}

async function systemResolve(hostname: string): Promise<string[]> {
  const all = await dnsLookup(hostname, { all: true, verbatim: true });
  return all.map((a) => a.address);
}

interface Hop {
  url: URL;
  ip: string;
  /** Request headers for this hop (credentials dropped after a cross-origin redirect). */
  headers?: Record<string, string>;
}

/** Checks one URL against the policy and resolves it to the one address the socket will use. */
async function checkHop(raw: string, opts: SafeFetchOptions): Promise<Hop> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SafeFetchError('bad_url', 'not an absolute url');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp)) {
    throw new SafeFetchError('scheme', `scheme ${url.protocol} is not allowed (https only)`);
  }
  if (url.username || url.password)
    throw new SafeFetchError('bad_url', 'credentials in the url are not allowed');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (opts.resolve ?? systemResolve)(host);
    } catch (err) {
      throw new SafeFetchError('dns', `cannot resolve ${host}: ${(err as Error).message}`);
    }
  }
  if (addresses.length === 0) throw new SafeFetchError('dns', `no address for ${host}`);
  const blocked = opts.isBlocked ?? isBlockedAddress;
  if (!opts.allowPrivateAddresses) {
    // Every address is checked, not only the one used: a name that mixes public and
    // private answers is refused outright.
    for (const ip of addresses) {
      if (blocked(ip))
        throw new SafeFetchError('blocked_address', `${host} resolves to a blocked address ${ip}`);
    }
  }
  if (url.protocol === 'http:' && opts.allowHttpAddress && !addresses.every(opts.allowHttpAddress)) {
    throw new SafeFetchError('scheme', `http to ${host} is not allowed (https only, http to loopback only)`);
  }
  return { url, ip: addresses[0] as string };
}

function requestOnce(
  hop: Hop,
  opts: SafeFetchOptions,
  signal: AbortSignal,
  maxBytes: number,
): Promise<SafeResponse> {
  const { url, ip } = hop;
  const family = isIP(ip);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  // Pins the connection to the address that was checked: no second resolution (DNS rebinding).
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: ip, family }]);
    else callback(null, ip, family);
  };
  opts.onConnect?.(ip, port);
  const headers: Record<string, string> = {
    'user-agent': 'gatehouse',
    accept: 'application/json',
    ...hop.headers,
  };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise<SafeResponse>((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: opts.method ?? 'GET',
        headers,
        lookup,
        signal,
        agent: false,
        // The hostname of the URL, not the pinned address, is used for SNI and certificate checks.
        servername: isIP(url.hostname.replace(/^\[|\]$/g, '')) ? undefined : url.hostname,
      },
      (res) => {
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          res.destroy();
          reject(new SafeFetchError('too_large', `response larger than ${maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            res.destroy();
            reject(new SafeFetchError('too_large', `response larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            url: url.href,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (err) => reject(new SafeFetchError('network', err.message)));
      },
    );
    req.on('error', (err) => {
      if (signal.aborted) reject(new SafeFetchError('timeout', 'request timed out'));
      else reject(new SafeFetchError('network', err.message));
    });
    req.end(opts.body);
  });
}

/**
 * GETs `url` under the SSRF rules above. Resolves with any HTTP status (the
 * caller decides what a non-200 means), except redirects: with `maxRedirects`
 * 0 (the default) a 3xx is a `redirect` error.
 */
export async function safeFetch(url: string, opts: SafeFetchOptions = {}): Promise<SafeResponse> {
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  const maxRedirects = opts.maxRedirects ?? 0;
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 3000);
  let current = url;
  let headers = opts.headers;
  let origin: string | undefined;
  for (let hops = 0; ; hops++) {
    const hop = await checkHop(current, opts);
    if (origin !== undefined && hop.url.origin !== origin && headers) {
      // Credentials meant for one origin are not replayed to another (WHATWG fetch, "HTTP-redirect fetch").
      headers = Object.fromEntries(
        Object.entries(headers).filter(([k]) => !/^(authorization|cookie|proxy-authorization)$/i.test(k)),
      );
    }
    origin ??= hop.url.origin;
    hop.headers = headers;
    if (signal.aborted) throw new SafeFetchError('timeout', 'request timed out');
    const res = await requestOnce(hop, opts, signal, maxBytes);
    if (res.status < 300 || res.status >= 400 || res.status === 304) return res;
    const location = res.headers.location;
    // A body (token request credentials) is never re-sent to a redirect target.
    if (hops >= maxRedirects || !location || opts.body !== undefined) {
      throw new SafeFetchError('redirect', `redirect to ${location ?? '(none)'} not followed`);
    }
    current = new URL(location, hop.url).href;
  }
}

/** Adapts a {@link SafeResponse} to a WHATWG `Response` (for libraries that take a `fetch`). */
export function toWebResponse(res: SafeResponse): Response {
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (Array.isArray(v)) for (const x of v) headers.append(k, x);
    else if (v !== undefined) headers.set(k, v);
  }
  return new Response(res.status === 204 || res.status === 304 ? null : new Uint8Array(res.body), {
    status: res.status,
    headers,
  });
}
