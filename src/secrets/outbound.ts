/**
 * The gateway's one outbound HTTP client (the credential broker's token endpoints and metadata
 * discovery, approval webhooks): a thin wrapper over the SSRF-guarded fetch of the authorization
 * server (src/auth/as/safe-fetch.ts), with the broker's defaults. THREATS T07.
 *
 * - HTTPS only; with the `allowLoopbackHttp` development flag, plain http and
 *   loopback addresses (127/8, ::1, ::ffff:127.x) are allowed, and nothing else
 *   private: 10/8, 169.254.169.254 and friends stay blocked, and http to a
 *   public address is refused.
 * - Targets are resolved once, every address checked, the socket pinned to it.
 * - GET follows up to 3 redirects, each re-checked; a POST (it carries client
 *   credentials) follows none; credentials headers are not replayed across origins.
 * - 5 s deadline for the whole exchange; responses capped at 256 KiB.
 */
import {
  isBlockedAddress,
  isLoopbackAddress,
  type SafeFetchOptions,
  type SafeResponse,
  safeFetch,
} from '../auth/as/safe-fetch.ts';

export { SafeFetchError as OutboundError } from '../auth/as/safe-fetch.ts';

export interface OutboundOptions {
  /** Development only: allow http and loopback targets (never other private ranges). Default false. */
  allowLoopbackHttp?: boolean;
  /** Deadline per exchange, redirects included. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest response body. Default 256 KiB. */
  maxBytes?: number;
  /** Redirects a GET follows (each re-checked). Default 3. */
  maxRedirects?: number;
  /** Name resolution (tests). Default: the system resolver. */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Observes every connection attempt (tests, metrics). */
  onConnect?: (ip: string, port: number) => void;
}

export interface OutboundRequest {
  headers?: Record<string, string>;
  timeoutMs?: number;
  maxBytes?: number;
}

/** The broker's client. Options are checked once, at construction. */
export class OutboundClient {
  readonly #base: SafeFetchOptions;
  readonly #maxRedirects: number;

  constructor(opts: OutboundOptions = {}) {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const maxBytes = opts.maxBytes ?? 256 * 1024;
    this.#maxRedirects = opts.maxRedirects ?? 3;
    for (const [k, v] of [
      ['timeoutMs', timeoutMs],
      ['maxBytes', maxBytes],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new TypeError(`outbound: ${k} must be a positive integer`);
    }
    if (!Number.isInteger(this.#maxRedirects) || this.#maxRedirects < 0)
      throw new TypeError('outbound: maxRedirects must be a non-negative integer');
    const loopback = opts.allowLoopbackHttp === true;
    this.#base = {
      timeoutMs,
      maxBytes,
      allowHttp: loopback,
      // http only where it cannot leave the machine.
      allowHttpAddress: isLoopbackAddress,
      isBlocked: loopback ? (ip) => !isLoopbackAddress(ip) && isBlockedAddress(ip) : isBlockedAddress,
      resolve: opts.resolve,
      onConnect: opts.onConnect,
    };
  }

  /** GET (metadata discovery, JWKS); redirects re-checked. Any status resolves; the caller decides. */
  get(url: string, req: OutboundRequest = {}): Promise<SafeResponse> {
    return safeFetch(url, { ...this.#opts(req), method: 'GET', maxRedirects: this.#maxRedirects });
  }

  /** POST of a form (token endpoint, RFC 6749 §4.1.3 / RFC 8693). Never follows a redirect. */
  postForm(
    url: string,
    form: Record<string, string> | URLSearchParams,
    req: OutboundRequest = {},
  ): Promise<SafeResponse> {
    const body = (form instanceof URLSearchParams ? form : new URLSearchParams(form)).toString();
    return this.#post(url, 'application/x-www-form-urlencoded', body, req);
  }

  /** POST of a JSON body (approval webhooks). Never follows a redirect. */
  postJson(url: string, body: string, req: OutboundRequest = {}): Promise<SafeResponse> {
    return this.#post(url, 'application/json', body, req);
  }

  /** A POST never follows a redirect: its body (credentials, a signed message) must not go elsewhere. */
  #post(url: string, contentType: string, body: string, req: OutboundRequest): Promise<SafeResponse> {
    return safeFetch(url, {
      ...this.#opts(req),
      headers: { 'content-type': contentType, ...req.headers },
      method: 'POST',
      body,
      maxRedirects: 0,
    });
  }

  /** GET and parse JSON; a non-2xx status or a body that is not JSON is an error (status only, never the body). */
  async getJson(url: string, req: OutboundRequest = {}): Promise<unknown> {
    const res = await this.get(url, req);
    if (res.status < 200 || res.status >= 300)
      throw new Error(`GET ${new URL(url).origin}: status ${res.status}`);
    try {
      return JSON.parse(res.body.toString('utf8')) as unknown;
    } catch {
      throw new Error(`GET ${new URL(url).origin}: response is not JSON`);
    }
  }

  #opts(req: OutboundRequest): SafeFetchOptions {
    return {
      ...this.#base,
      headers: req.headers,
      timeoutMs: req.timeoutMs ?? this.#base.timeoutMs,
      maxBytes: req.maxBytes ?? this.#base.maxBytes,
    };
  }
}
