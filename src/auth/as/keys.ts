/**
 * The embedded authorization server's secrets: one ES256 signing key (access
 * tokens, JWKS) and the cookie signing keys, kept in `<dataDir>/oauth-keys.json`.
 * Generated on first start with mode 0600; a file readable by group or others is
 * refused, so a leaked key is not silently used.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

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

/** Throws unless the file is readable by its owner only. */
export function assertPrivateFile(path: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`,
    );
  }
}

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
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    assertPrivateFile(path);
    return parse(path, text);
  }
  if (!create) throw new Error(`${path} does not exist: start the gateway once to create it`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keys = await generate();
  try {
    writeFileSync(path, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadKeys(dataDir, { create: false });
    throw err;
  }
  return keys;
}

/** The public half of a signing JWK (what the JWKS endpoint and the token verifier use). */
export function publicJwk(jwk: JWK): JWK {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use };
}
