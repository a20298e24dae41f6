/**
 * One-shot SHA-256 (`crypto.hash`, Node ≥ 20.12): no Hash object per digest, about half the CPU of
 * `createHash().update().digest()` for the short texts hashed on every call (token cache key, audit
 * records, argument digests).
 */
import { hash } from 'node:crypto';

/** SHA-256 of a UTF-8 string (or bytes), as lower-case hex, base64 or base64url. */
export function sha256(data: string | Uint8Array, encoding: 'hex' | 'base64' | 'base64url' = 'hex'): string {
  return hash('sha256', data, encoding);
}
