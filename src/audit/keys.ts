/**
 * The audit checkpoint signing key: Ed25519, `<dataDir>/audit-key.pem` (PKCS#8).
 * Generated on first use with mode 0600 and exclusive create; a file readable by
 * group or others is refused, as for the authorization server's keys, so a key
 * that may have leaked is never silently trusted.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { join } from 'node:path';
import { createPrivateFile, readPrivateFile } from '../util/private-file.ts';

/** A loaded signing key (the private half is absent for verify-only use). */
export interface AuditKey {
  readonly privateKey: KeyObject | undefined;
  readonly publicKey: KeyObject;
  /** First 16 hex of the SHA-256 of the public key (SPKI DER); recorded in each checkpoint. */
  readonly keyId: string;
}

/** Path of the audit key inside a data directory. */
export function auditKeyPath(dataDir: string): string {
  return join(dataDir, 'audit-key.pem');
}

function fromPublic(publicKey: KeyObject, privateKey: KeyObject | undefined): AuditKey {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const keyId = createHash('sha256').update(der).digest('hex').slice(0, 16);
  return { privateKey, publicKey, keyId };
}

/** Builds a key from PKCS#8 PEM text. */
export function auditKeyFromPem(pem: string): AuditKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('audit key is not an ed25519 key');
  return fromPublic(createPublicKey(privateKey), privateKey);
}

/** A verify-only key from an SPKI PEM (an operator's pinned copy of the public key). */
export function auditPublicKeyFromPem(pem: string): AuditKey {
  const publicKey = createPublicKey(pem);
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('audit public key is not an ed25519 key');
  return fromPublic(publicKey, undefined);
}

/**
 * Loads `<dataDir>/audit-key.pem`, creating it (0600, exclusive) when missing
 * and `create` is true. Resolves to undefined when missing and `create` is false
 * (the CLI verifies without inventing a key the gateway never had).
 */
export function loadAuditKey(dataDir: string, { create = true } = {}): AuditKey | undefined {
  const path = auditKeyPath(dataDir);
  const text = readPrivateFile(path);
  if (text !== undefined) return auditKeyFromPem(text);
  if (!create) return undefined;
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = String(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  // Another process created it first: use theirs.
  if (!createPrivateFile(path, pem)) return loadAuditKey(dataDir, { create: false });
  return auditKeyFromPem(pem);
}

/** The public key as SPKI PEM (for pinning outside the data directory). */
export function auditPublicKeyPem(key: AuditKey): string {
  return String(key.publicKey.export({ format: 'pem', type: 'spki' }));
}

/** Base64url Ed25519 signature of `payload`. */
export function signPayload(key: AuditKey, payload: string): string {
  if (!key.privateKey) throw new Error('audit key has no private half');
  return sign(null, Buffer.from(payload), key.privateKey).toString('base64url');
}

/** True when `signature` is a valid Ed25519 signature of `payload`. */
export function verifyPayload(key: AuditKey, payload: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(payload), key.publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
