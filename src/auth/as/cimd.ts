/**
 * OAuth Client ID Metadata Documents: a client_id that is an HTTPS URL names a
 * JSON document with the client's metadata, fetched by the authorization server.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents
 * https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
 */
import { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { type SafeFetchOptions, safeFetch } from './safe-fetch.ts';

/** Largest metadata document accepted (bytes). */
export const CIMD_MAX_BYTES = 5 * 1024;
const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 60 * 60_000;
const DEFAULT_TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 500;

/** "client authentication [...] MUST NOT use shared secrets" (draft §4.1): no secret-based methods. */
const FORBIDDEN_AUTH = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt']);

export interface CimdOptions {
  /** Development: accept http:// URLs and loopback/private addresses. */
  allowInsecure: boolean;
  log: Logger;
  /** Extra options for the guarded fetch (tests). */
  fetchOptions?: SafeFetchOptions;
}

/** Resolves client_id URLs to client metadata, with a short cache. */
export class ClientIdMetadataDocuments {
  private readonly cache = new Map<string, { meta: Record<string, unknown>; until: number }>();
  private readonly pending = new Map<string, Promise<Record<string, unknown>>>();

  constructor(private readonly opts: CimdOptions) {}

  /**
   * True when `id` has the shape of a metadata document URL: "an https scheme URL
   * [...] MUST contain a path component [...] MUST NOT contain single-dot or
   * double-dot path segments [...] MUST NOT contain a fragment [...] MUST NOT
   * contain a username or password" (draft §3). http is accepted only in development.
   */
  isCandidate(id: string): boolean {
    if (!/^https?:\/\//i.test(id)) return false;
    let u: URL;
    try {
      u = new URL(id);
    } catch {
      return false;
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && this.opts.allowInsecure)) return false;
    if (u.hash || id.includes('#') || u.username || u.password) return false;
    if (u.pathname === '/' || u.pathname === '') return false;
    const rawPath = id.replace(/^https?:\/\/[^/?#]*/i, '').split(/[?#]/)[0] ?? '';
    return !rawPath.split('/').some((seg) => {
      const s = seg.replace(/%2e/gi, '.');
      return s === '.' || s === '..';
    });
  }

  /** The validated metadata for `id`, from the cache or fetched; throws an OAuth `invalid_client` error. */
  async resolve(id: string): Promise<Record<string, unknown>> {
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit.meta;
    let p = this.pending.get(id);
    if (!p) {
      p = this.fetch(id).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  private async fetch(id: string): Promise<Record<string, unknown>> {
    let res: Awaited<ReturnType<typeof safeFetch>>;
    try {
      res = await safeFetch(id, {
        allowHttp: this.opts.allowInsecure,
        allowPrivateAddresses: this.opts.allowInsecure,
        maxBytes: CIMD_MAX_BYTES,
        timeoutMs: 3000,
        ...this.opts.fetchOptions,
      });
    } catch (err) {
      this.opts.log.info(
        { clientId: id, err: (err as Error).message },
        'client metadata document fetch refused',
      );
      throw new errors.InvalidClient('client metadata document could not be fetched');
    }
    if (res.status !== 200) {
      throw new errors.InvalidClient(`client metadata document fetch returned ${res.status}`);
    }
    let meta: unknown;
    try {
      meta = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new errors.InvalidClient('client metadata document is not json');
    }
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
      throw new errors.InvalidClient('client metadata document is not a json object');
    }
    const doc = { ...(meta as Record<string, unknown>) };
    // "The client_id property in the document MUST match the URL of the document" (draft §4.1).
    if (doc['client_id'] !== id) {
      throw new errors.InvalidClient('client metadata document client_id does not match its url');
    }
    if ('client_secret' in doc || 'client_secret_expires_at' in doc) {
      throw new errors.InvalidClient('client metadata document must not contain a client_secret');
    }
    const auth = doc['token_endpoint_auth_method'];
    if (auth === undefined) doc['token_endpoint_auth_method'] = 'none';
    else if (typeof auth !== 'string' || FORBIDDEN_AUTH.has(auth)) {
      throw new errors.InvalidClient(
        'client metadata document must not use shared-secret client authentication',
      );
    }
    this.remember(id, doc, ttlFrom(res.headers['cache-control']));
    return doc;
  }

  private remember(id: string, meta: Record<string, unknown>, ttl: number): void {
    if (this.cache.size >= MAX_ENTRIES) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(id, { meta, until: Date.now() + ttl });
  }
}

function ttlFrom(cacheControl: string | undefined): number {
  const m = cacheControl ? /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(cacheControl) : null;
  if (!m?.[1]) return DEFAULT_TTL_MS;
  return Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, Number(m[1]) * 1000));
}
