/**
 * The embedded authorization server's secrets: one ES256 signing key (access
 * tokens, JWKS) and the cookie signing keys, kept in `<dataDir>/oauth-keys.json`.
 * Generated on first start with mode 0600; a file readable by group or others is
 * refused, so a leaked key is not silently used.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createPrivateFile, readPrivateFile } from '../../util/private-file.ts';

/** The signing algorithm of every token the embedded AS issues. */
export const SIGNING_ALG = 'ES256';

export interface AsKeys {
  /** Private signing keys (JWK with kid, alg, use); the first one signs. */
  signing: JWK[];
  /** Cookie signing keys (Keygrip), newest first. */
  cookies: string[];
}

/** Path of the key file inside a data directory. */
export function keysPath(dataDir: string): string {
  return join(dataDir, 'oauth-keys.json');
}

export { assertPrivateFile } from '../../util/private-file.ts';

async function generate(): Promise<AsKeys> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return {
    signing: [{ ...jwk, kid, alg: SIGNING_ALG, use: 'sig' }],
    cookies: [randomBytes(32).toString('base64url')],
  };
}

function parse(path: string, text: string): AsKeys {
  const data = JSON.parse(text) as Partial<AsKeys>;
  if (
    !Array.isArray(data.signing) ||
    data.signing.length === 0 ||
    !Array.isArray(data.cookies) ||
    data.cookies.length === 0
  ) {
    throw new Error(`${path}: expected { signing: [JWK, ...], cookies: [string, ...] }`);
  }
  return { signing: data.signing, cookies: data.cookies };
}

/**
 * Loads the keys from `<dataDir>/oauth-keys.json`, generating the file (mode
 * 0600, exclusive create) when it does not exist. With `create: false` a missing
 * file is an error (used by the CLI, which must not invent keys a gateway does not have).
 */
export async function loadKeys(dataDir: string, { create = true } = {}): Promise<AsKeys> {
  const path = keysPath(dataDir);
  const text = readPrivateFile(path);
  if (text !== undefined) return parse(path, text);
  if (!create) throw new Error(`${path} does not exist: start the gateway once to create it`);
  const keys = await generate();
  // Another process created it first: use theirs.
  if (!createPrivateFile(path, `${JSON.stringify(keys, null, 2)}\n`))
    return loadKeys(dataDir, { create: false });
  return keys;
}

/** The public half of a signing JWK (what the JWKS endpoint and the token verifier use). */
export function publicJwk(jwk: JWK): JWK {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use };
}
