/**
 * Local user passwords: scrypt (node:crypto) with a per-user random salt; the
 * parameters are stored with the hash so they can be raised later without
 * invalidating existing users. Format: `scrypt$N$r$p$<salt>$<hash>` (base64url).
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { UserRecord, UserRepo } from '../../storage/types.ts';

/** Smallest accepted password length. */
export const MIN_PASSWORD_LENGTH = 8;

const N = 2 ** 15;
const R = 8;
const P = 1;
const KEY_LEN = 32;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: 128 * N * r bytes are needed; leave headroom.
    scrypt(password.normalize('NFKC'), salt, KEY_LEN, { N: n, r, p, maxmem: 256 * n * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a password with fresh salt and the current parameters. */
export async function hashPassword(password: string): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new Error(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Constant-time check of a password against a stored hash; false for malformed hashes. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  if (!n || !r || !p || n > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (expected.length === 0) return false;
  const key = await derive(password, salt, n, r, p);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

let dummy: Promise<string> | undefined;

/**
 * A precomputed hash, verified against when there is no local password to check (no such user, or a
 * user of the upstream identity provider), so timing does not reveal usernames. Created with the same
 * parameters as {@link hashPassword}, so it costs the same; the embedded AS computes it at start-up.
 */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword('not-a-real-password');
  return dummy;
}

/** True when `stored` is a hash this module made (an external user has none). */
function isPasswordHash(stored: string): boolean {
  return stored.startsWith('scrypt$');
}

/**
 * The one place a local user's password is checked (login form of the embedded AS, and through it the
 * connect flow's login). Whatever the outcome, it costs one storage lookup and exactly one scrypt
 * derivation with the current parameters: an unknown user, a user without a local password (an
 * upstream-IdP user) and a wrong password are indistinguishable by time or result.
 */
export async function checkLocalPassword(
  users: UserRepo,
  username: string,
  password: string,
): Promise<UserRecord | undefined> {
  const found = await users.get(username);
  const local =
    found && found.external === undefined && isPasswordHash(found.passwordHash) ? found : undefined;
  const fallback = await dummyHash();
  const ok = await verifyPassword(password, local?.passwordHash ?? fallback);
  return local && ok ? local : undefined;
}
