/**
 * The credential broker's secret store: named secrets encrypted at rest with
 * envelope encryption.
 *
 * - Each `set` draws a fresh 256-bit data key and encrypts the value with
 *   AES-256-GCM, a random 96-bit IV, and the secret name as additional
 *   authenticated data, so a ciphertext copied to another name does not open.
 * - The data key is wrapped by a {@link KeyProvider} (master key from the
 *   environment, a 0600 key file, or a KMS) bound to the name as well; only the
 *   wrapped form is stored (in its own database, see sqlite-repo.ts).
 * - `rotateKey` re-wraps every data key under a new master key in one
 *   transaction. Values are never decrypted for it (only data keys are unwrapped,
 *   in memory), and old master keys stay known until pruned, so a running gateway
 *   keeps reading rows during the rotation.
 *
 * Leak guard: `get` registers the value (label = name) before returning it. A
 * replaced or removed value stays registered for the life of the process: an
 * upstream that received it can still echo it.
 *
 * INVARIANT: values never appear in errors, logs or `list`; errors name the
 * secret. Values are handled as Buffers; data keys are zeroed after use (best
 * effort: V8 may have copied them).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { defaultKeyProvider, EMBEDDED_KEY_WARNING, KeyError, type KeyProvider } from './keys.ts';
import type { LeakGuard } from './leak-guard.ts';
import type { Rewrap, SecretInfo, SecretRepo } from './repo.ts';
import { SqliteSecretRepo, secretsDbPath } from './sqlite-repo.ts';

/** Secret names: lower-case, digits, `.`, `_`, `-`; 1 to 64 characters, starting with a letter or digit. */
export const SECRET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Largest secret value accepted, in bytes. */
export const MAX_SECRET_BYTES = 64 * 1024;

const FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** `last used` is written at most this often per secret (a `get` per lease would otherwise write every time). */
const TOUCH_INTERVAL_MS = 60_000;

/** Why a secret operation failed. The message names the secret, never its value. */
export class SecretError extends Error {
  constructor(
    readonly code:
      | 'invalid_name'
      | 'invalid_value'
      | 'not_found'
      | 'unknown_master_key'
      | 'decrypt_failed'
      | 'unsupported_format',
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

export interface SecretStoreOptions {
  /** Decrypted values are registered here (label = secret name) before `get` returns them. */
  leakGuard?: LeakGuard;
  /** Clock (tests). */
  now?: () => number;
}

export interface RotateResult {
  /** The master key every row is now wrapped under. */
  keyId: string;
  /** Rows re-wrapped. */
  rewrapped: number;
  /** Master keys forgotten (with `prune`). */
  pruned: string[];
}

function context(name: string): string {
  return `secret:${name}`;
}

/**
 * A row that does not open becomes a SecretError naming the secret; key-source
 * problems (missing or loose key file, malformed key) stay KeyErrors: they are
 * configuration, not this secret.
 */
function forSecret(err: unknown, name: string, prefix = ''): unknown {
  if (!(err instanceof KeyError)) return err;
  if (err.code === 'unknown_master_key')
    return new SecretError('unknown_master_key', `${prefix}secret \`${name}\`: ${err.message}`);
  if (err.code === 'unwrap_failed')
    return new SecretError('decrypt_failed', `${prefix}secret \`${name}\`: ${err.message}`);
  return err;
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new SecretError(
      'invalid_name',
      `invalid secret name \`${name.slice(0, 80)}\`: use 1-64 of a-z 0-9 . _ - starting with a letter or digit`,
    );
  }
}

/** Named secrets, encrypted at rest (see the module comment). */
export class SecretStore {
  readonly #repo: SecretRepo;
  readonly #keys: KeyProvider;
  readonly #guard: LeakGuard | undefined;
  readonly #now: () => number;
  readonly #touched = new Map<string, number>();

  constructor(repo: SecretRepo, keys: KeyProvider, opts: SecretStoreOptions = {}) {
    this.#repo = repo;
    this.#keys = keys;
    this.#guard = opts.leakGuard;
    this.#now = opts.now ?? Date.now;
  }

  /** Stores `value` under `name` (replacing a previous value), encrypted under a fresh data key. */
  async set(name: string, value: Buffer | string, opts: { service?: string } = {}): Promise<SecretInfo> {
    checkName(name);
    const plain = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (plain.length === 0) throw new SecretError('invalid_value', `secret \`${name}\`: the value is empty`);
    if (plain.length > MAX_SECRET_BYTES) {
      throw new SecretError(
        'invalid_value',
        `secret \`${name}\`: the value has ${plain.length} bytes, more than ${MAX_SECRET_BYTES}`,
      );
    }
    if (opts.service !== undefined && !/^[\x21-\x7e]{1,64}$/.test(opts.service)) {
      throw new SecretError(
        'invalid_value',
        `secret \`${name}\`: service must be 1-64 printable ASCII characters`,
      );
    }
    const dataKey = randomBytes(32);
    try {
      const iv = randomBytes(IV_BYTES);
      const c = createCipheriv('aes-256-gcm', dataKey, iv);
      c.setAAD(Buffer.from(context(name), 'utf8'));
      const ciphertext = Buffer.concat([iv, c.update(plain), c.final(), c.getAuthTag()]);
      const { keyId, wrapped } = await this.#keys.wrap(dataKey, context(name));
      const now = this.#now();
      const before = await this.#repo.get(name);
      const row = {
        name,
        service: opts.service,
        keyId,
        format: FORMAT,
        ciphertext,
        wrappedKey: wrapped,
        createdAt: before?.createdAt ?? now,
        updatedAt: now,
        lastUsedAt: before?.lastUsedAt,
      };
      await this.#repo.put(row);
      const { format: _f, ciphertext: _c, wrappedKey: _w, ...meta } = row;
      return meta;
    } finally {
      dataKey.fill(0);
    }
  }

  /**
   * The decrypted value. Fails closed: an unknown master key, a tampered row or a
   * row moved from another name throws, naming the secret and the reason.
   */
  async get(name: string): Promise<Buffer> {
    checkName(name);
    const row = await this.#repo.get(name);
    if (!row) throw new SecretError('not_found', `no secret \`${name}\``);
    if (row.format !== FORMAT) {
      throw new SecretError(
        'unsupported_format',
        `secret \`${name}\`: row format ${row.format} is not supported`,
      );
    }
    let dataKey: Buffer;
    try {
      dataKey = await this.#keys.unwrap({ keyId: row.keyId, wrapped: row.wrappedKey }, context(name));
    } catch (err) {
      throw forSecret(err, name);
    }
    let value: Buffer;
    try {
      const ct = row.ciphertext;
      if (ct.length < IV_BYTES + TAG_BYTES) throw new Error('short');
      const d = createDecipheriv('aes-256-gcm', dataKey, ct.subarray(0, IV_BYTES));
      d.setAAD(Buffer.from(context(name), 'utf8'));
      d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
      value = Buffer.concat([d.update(ct.subarray(IV_BYTES, ct.length - TAG_BYTES)), d.final()]);
    } catch {
      throw new SecretError(
        'decrypt_failed',
        `secret \`${name}\`: the ciphertext does not open (tampered, or moved from another secret)`,
      );
    } finally {
      dataKey.fill(0);
    }
    // ORDER: registered with the leak guard before anyone can see the value.
    this.#guard?.register(value, name);
    const now = this.#now();
    if (now - (this.#touched.get(name) ?? Number.NEGATIVE_INFINITY) >= TOUCH_INTERVAL_MS) {
      this.#touched.set(name, now);
      await this.#repo.touch(name, now);
    }
    return value;
  }

  /** Metadata of every secret (never values). */
  list(): Promise<SecretInfo[]> {
    return this.#repo.list();
  }

  /** Removes a secret; false when there was none. */
  async remove(name: string): Promise<boolean> {
    checkName(name);
    this.#touched.delete(name);
    return this.#repo.remove(name);
  }

  /**
   * Re-wraps every data key under a new master key (the provider's `rotate`), or,
   * for providers whose keys come from outside (env, KMS), under the provider's
   * current key. One transaction; values are never decrypted. With `prune`, the
   * provider then forgets master keys no row uses any more.
   */
  async rotateKey({ prune = false }: { prune?: boolean } = {}): Promise<RotateResult> {
    const keyId = this.#keys.rotate ? await this.#keys.rotate() : await this.#keys.currentKeyId();
    const rows = await this.#repo.wrappedKeys();
    const updates: Rewrap[] = [];
    for (const r of rows) {
      if (r.keyId === keyId) continue;
      let dataKey: Buffer;
      try {
        dataKey = await this.#keys.unwrap({ keyId: r.keyId, wrapped: r.wrappedKey }, context(r.name));
      } catch (err) {
        // Nothing is written unless every row re-wraps: fail closed, naming the row.
        throw forSecret(err, r.name, 'rotation stopped, nothing changed: ');
      }
      try {
        const w = await this.#keys.wrap(dataKey, context(r.name));
        updates.push({
          name: r.name,
          old: { keyId: r.keyId, wrappedKey: r.wrappedKey },
          keyId: w.keyId,
          wrappedKey: w.wrapped,
        });
      } finally {
        dataKey.fill(0);
      }
    }
    // A row `set` meanwhile is skipped by the compare-and-set: it was wrapped under the new key.
    const rewrapped = await this.#repo.rewrap(updates);
    let pruned: string[] = [];
    if (prune && this.#keys.prune) {
      const inUse = new Set((await this.#repo.wrappedKeys()).map((r) => r.keyId));
      pruned = await this.#keys.prune(inUse);
    }
    return { keyId, rewrapped, pruned };
  }

  close(): Promise<void> {
    return this.#repo.close();
  }
}

/**
 * Opens the store of a data directory: `<dataDir>/secrets.db` with the default key
 * provider ({@link defaultKeyProvider}). `warnings` are for the start-up log (today:
 * the master key is the generated file in the data directory).
 */
export function openSecretStore(
  dataDir: string,
  opts: SecretStoreOptions & { env?: NodeJS.ProcessEnv; keys?: KeyProvider } = {},
): { store: SecretStore; keys: KeyProvider; warnings: string[] } {
  const chosen = opts.keys
    ? { provider: opts.keys, embeddedDefault: false }
    : defaultKeyProvider(dataDir, opts.env ?? process.env);
  const store = new SecretStore(new SqliteSecretRepo(secretsDbPath(dataDir)), chosen.provider, opts);
  return { store, keys: chosen.provider, warnings: chosen.embeddedDefault ? [EMBEDDED_KEY_WARNING] : [] };
}
