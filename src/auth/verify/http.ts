/**
 * Small HTTP helpers shared by discovery and introspection: URL policy,
 * timeouts and bounded JSON bodies. Nothing here ever sees a token in a
 * message.
 */

/** Default timeout for metadata, JWKS and introspection requests. */
export const HTTP_TIMEOUT_MS = 5_000;
/** Largest metadata or introspection response we read (bytes). */
const MAX_BODY_BYTES = 256 * 1024;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Parses an endpoint URL and enforces TLS.
 * RFC 8414 §2 (https://www.rfc-editor.org/rfc/rfc8414#section-2): the issuer is
 * "a URL that uses the "https" scheme"; RFC 7662 §4
 * (https://www.rfc-editor.org/rfc/rfc7662#section-4): the introspection endpoint
 * "MUST be protected by a transport-layer security mechanism".
 * Plain http is accepted only for loopback hosts (local development, tests,
 * an authorization server on the same host).
 */
export function secureUrl(raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`${what} is not a valid url`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) return url;
  throw new TypeError(`${what} must use https (plain http only for loopback hosts)`);
}

/** Reads a JSON object body of at most {@link MAX_BODY_BYTES}; throws on anything else. */
export async function readJsonObject(res: Response): Promise<Record<string, unknown>> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw new Error('response too large');
  const body = res.body;
  if (!body) throw new Error('empty response');
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new Error('response too large');
    }
    chunks.push(value);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('response is not a json object');
  }
  return parsed as Record<string, unknown>;
}
