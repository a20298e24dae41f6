/**
 * Master keys of the secret store (envelope encryption): each secret has its own
 * random data key; a {@link KeyProvider} wraps and unwraps data keys under a
 * master key that never leaves it. The store never sees a master key, so a KMS or
 * Vault transit engine can replace the providers here without touching it.
 *
 * Providers in this file:
 * - {@link EnvKeyProvider}: `GATEHOUSE_MASTER_KEY` (32 bytes, base64 or hex), plus
 *   `GATEHOUSE_MASTER_KEY_PREVIOUS` (comma-separated) during a rotation;
 * - {@link FileKeyProvider}: a key ring in a 0600 file (`<dataDir>/master-keys.json`
 *   by default), generated on first use, that can mint a new key (`rotate`).
 *
 * Wrapping is AES-256-GCM with a random 96-bit IV and the caller's context as
 * additional authenticated data (the store passes the secret name), so a wrapped
 * data key copied to another secret does not open. Master keys are identified by
 * `mk_` + the first 16 hex digits of SHA-256("gatehouse master key id" || key): the
 * id says which key a row needs without revealing anything usable about the key,
 * and a wrong key is reported as such instead of as a generic decryption failure.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateFile, readPrivateFile } from '../util/private-file.ts';

/** Why a key operation failed. Messages never contain key material or secret values. */
export class KeyError extends Error {
  constructor(
    readonly code: 'invalid_master_key' | 'unknown_master_key' | 'unwrap_failed' | 'key_file',
    message: string,
  ) {
    super(message);
    this.name = 'KeyError';
  }
}

/** A data key wrapped under the master key `keyId`. */
export interface WrappedKey {
  keyId: string;
  wrapped: Buffer;
}

/**
 * Wraps and unwraps data keys. Implementations keep every master key they still
 * know by id, so rows wrapped before a rotation keep opening while they are
 * re-wrapped (online rotation).
 */
export interface KeyProvider {
  /** What kind of provider this is (`env`, `file`, `kms:…`), for logs and `list`. */
  readonly kind: string;
  /** Id of the master key that {@link wrap} uses now. */
  currentKeyId(): Promise<string>;
  /** Wraps `dataKey` under the current master key, bound to `context` (AAD). */
  wrap(dataKey: Buffer, context: string): Promise<WrappedKey>;
  /** Unwraps a data key; `unknown_master_key` when the key is not known, `unwrap_failed` when it does not open. */
  unwrap(key: WrappedKey, context: string): Promise<Buffer>;
  /** Creates a new current master key and keeps the old ones; returns its id. Absent when keys come from outside. */
  rotate?(): Promise<string>;
  /** Forgets master keys other than the current one and those in `keep`; returns the ids dropped. */
  prune?(keep: ReadonlySet<string>): Promise<string[]>;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The public id of a master key. */
export function masterKeyId(key: Buffer): string {
  return `mk_${createHash('sha256').update('gatehouse master key id\0').update(key).digest('hex').slice(0, 16)}`;
}

/**
 * Parses a 32-byte key given as 64 hex digits or base64/base64url (44 or 43
 * characters). `source` names where it came from; the message never echoes the key.
 */
export function parseMasterKey(text: string, source: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const key = Buffer.from(t, 'base64');
    if (key.length === KEY_BYTES) return key;
    throw new KeyError(
      'invalid_master_key',
      `${source} must be 32 bytes as base64 (44 characters) or hex (64 digits); got ${t.length} characters that decode to ${key.length} bytes (generate one with: openssl rand -base64 32)`,
    );
  }
  throw new KeyError(
    'invalid_master_key',
    `${source} must be 32 bytes as base64 (44 characters) or hex (64 digits); got ${t.length} characters that are neither (generate one with: openssl rand -base64 32)`,
  );
}

function aad(context: string): Buffer {
  return Buffer.from(`gatehouse data key v1\0${context}`, 'utf8');
}

/** AES-256-GCM wrap: iv (12) || ciphertext (32) || tag (16). */
function wrapWith(master: Buffer, dataKey: Buffer, context: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', master, iv);
  c.setAAD(aad(context));
  return Buffer.concat([iv, c.update(dataKey), c.final(), c.getAuthTag()]);
}

function unwrapWith(master: Buffer, key: WrappedKey, context: string): Buffer {
  const w = key.wrapped;
  if (w.length !== IV_BYTES + KEY_BYTES + TAG_BYTES) {
    throw new KeyError('unwrap_failed', `wrapped data key has ${w.length} bytes, expected 60`);
  }
  try {
    const d = createDecipheriv('aes-256-gcm', master, w.subarray(0, IV_BYTES));
    d.setAAD(aad(context));
    d.setAuthTag(w.subarray(IV_BYTES + KEY_BYTES));
    return Buffer.concat([d.update(w.subarray(IV_BYTES, IV_BYTES + KEY_BYTES)), d.final()]);
  } catch {
    throw new KeyError(
      'unwrap_failed',
      `data key does not open under master key ${key.keyId} (tampered, or moved from another secret)`,
    );
  }
}

/** A provider over an in-memory key ring: the current key and older ones by id. */
abstract class RingProvider implements KeyProvider {
  abstract readonly kind: string;
  protected abstract ring(): { current: string; keys: Map<string, Buffer> };
  /** Called once when a key id is unknown, so a ring changed by another process is picked up. */
  protected reload(): boolean {
    return false;
  }

  async currentKeyId(): Promise<string> {
    return this.ring().current;
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    const { current, keys } = this.ring();
    const master = keys.get(current);
    if (!master) throw new KeyError('unknown_master_key', `current master key ${current} is missing`);
    return { keyId: current, wrapped: wrapWith(master, dataKey, context) };
  }

  async unwrap(key: WrappedKey, context: string): Promise<Buffer> {
    let master = this.ring().keys.get(key.keyId);
    if (!master && this.reload()) master = this.ring().keys.get(key.keyId);
    if (!master) {
      throw new KeyError(
        'unknown_master_key',
        `wrapped under master key ${key.keyId}, which this ${this.kind} provider does not have (it has ${[...this.ring().keys.keys()].join(', ')}): wrong GATEHOUSE_MASTER_KEY or key file?`,
      );
    }
    return unwrapWith(master, key, context);
  }
}

/**
 * The master key from the environment: `GATEHOUSE_MASTER_KEY` (current) and, while
 * rotating, `GATEHOUSE_MASTER_KEY_PREVIOUS` (comma-separated older keys). Rotation
 * is the operator's: set the new key, move the old one to `_PREVIOUS`, run
 * `gatehouse secrets rotate-key` (re-wraps every row under the new key), then drop `_PREVIOUS`.
 */
export class EnvKeyProvider extends RingProvider {
  readonly kind = 'env';
  readonly #ring: { current: string; keys: Map<string, Buffer> };

  constructor(env: NodeJS.ProcessEnv = process.env) {
    super();
    const raw = env['GATEHOUSE_MASTER_KEY'];
    if (raw === undefined || raw.trim() === '')
      throw new KeyError('invalid_master_key', 'GATEHOUSE_MASTER_KEY is not set');
    const current = parseMasterKey(raw, 'GATEHOUSE_MASTER_KEY');
    const keys = new Map([[masterKeyId(current), current]]);
    const previous = (env['GATEHOUSE_MASTER_KEY_PREVIOUS'] ?? '').split(',').filter((s) => s.trim() !== '');
    previous.forEach((p, i) => {
      const k = parseMasterKey(p, `GATEHOUSE_MASTER_KEY_PREVIOUS (entry ${i + 1})`);
      keys.set(masterKeyId(k), k);
    });
    this.#ring = { current: masterKeyId(current), keys };
  }

  protected ring(): { current: string; keys: Map<string, Buffer> } {
    return this.#ring;
  }
}

interface RingFile {
  version: 1;
  current: string;
  /** id → base64 key; ids are recomputed on load, a mismatch is refused. */
  keys: Record<string, string>;
}

/** Default path of the generated key ring. */
export function masterKeyFilePath(dataDir: string): string {
  return join(dataDir, 'master-keys.json');
}

/**
 * A key ring in a file readable by its owner only (0600; a file readable by group
 * or others is refused). Accepts either the JSON ring this class writes or a single
 * 32-byte key (base64 or hex) an operator provisioned. Loaded lazily (listing
 * secrets needs no key); re-read when it changed on disk, so a gateway picks up a
 * rotation done by the CLI without restarting.
 */
export class FileKeyProvider extends RingProvider {
  readonly kind = 'file';
  readonly path: string;
  readonly #create: boolean;
  #loaded: { current: string; keys: Map<string, Buffer>; stamp: string } | undefined;
  /** True when this process generated the file (the caller warns: production should supply its own key). */
  generated = false;

  constructor(path: string, { create = true }: { create?: boolean } = {}) {
    super();
    this.path = path;
    this.#create = create;
  }

  protected ring(): { current: string; keys: Map<string, Buffer> } {
    if (this.#loaded) {
      // Cheap freshness check: a rotation elsewhere replaces the file (new mtime).
      if (this.#stamp() === this.#loaded.stamp) return this.#loaded;
    }
    this.#loaded = this.#load();
    return this.#loaded;
  }

  protected override reload(): boolean {
    this.#loaded = this.#load();
    return true;
  }

  /** Identifies the file's version: a rotation renames a new file over it (new inode). */
  #stamp(): string {
    try {
      const st = statSync(this.path);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  }

  #load(): { current: string; keys: Map<string, Buffer>; stamp: string } {
    let text: string | undefined;
    try {
      text = readPrivateFile(this.path);
    } catch (err) {
      throw new KeyError('key_file', `master key file: ${(err as Error).message}`);
    }
    if (text === undefined) {
      if (!this.#create) throw new KeyError('key_file', `no master key file at ${this.path}`);
      const key = randomBytes(KEY_BYTES);
      const id = masterKeyId(key);
      const ring: RingFile = { version: 1, current: id, keys: { [id]: key.toString('base64') } };
      if (createPrivateFile(this.path, `${JSON.stringify(ring, null, 2)}\n`)) this.generated = true;
      return this.#load(); // ours or the one another process created first
    }
    const stamp = this.#stamp();
    if (!text.trimStart().startsWith('{')) {
      const key = parseMasterKey(text, `master key file ${this.path}`);
      return { current: masterKeyId(key), keys: new Map([[masterKeyId(key), key]]), stamp };
    }
    let data: Partial<RingFile>;
    try {
      data = JSON.parse(text) as Partial<RingFile>;
    } catch {
      throw new KeyError('key_file', `${this.path}: not valid JSON`);
    }
    if (
      data.version !== 1 ||
      typeof data.current !== 'string' ||
      typeof data.keys !== 'object' ||
      !data.keys
    ) {
      throw new KeyError('key_file', `${this.path}: expected { version: 1, current, keys }`);
    }
    const keys = new Map<string, Buffer>();
    for (const [id, b64] of Object.entries(data.keys)) {
      const key = parseMasterKey(String(b64), `${this.path} key ${id}`);
      if (masterKeyId(key) !== id)
        throw new KeyError('key_file', `${this.path}: key ${id} does not match its id`);
      keys.set(id, key);
    }
    if (!keys.has(data.current))
      throw new KeyError('key_file', `${this.path}: current key ${data.current} is not in the ring`);
    return { current: data.current, keys, stamp };
  }

  /** Replaces the file atomically (0600 temp file + rename). */
  #write(current: string, keys: Map<string, Buffer>): void {
    const ring: RingFile = {
      version: 1,
      current,
      keys: Object.fromEntries([...keys].map(([id, k]) => [id, k.toString('base64')])),
    };
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      unlinkSync(tmp);
    } catch {
      // no stale temp file
    }
    if (!createPrivateFile(tmp, `${JSON.stringify(ring, null, 2)}\n`))
      throw new KeyError('key_file', `cannot create ${tmp}`);
    renameSync(tmp, this.path);
    this.#loaded = undefined;
  }

  async rotate(): Promise<string> {
    const { keys } = this.ring();
    const key = randomBytes(KEY_BYTES);
    const id = masterKeyId(key);
    // INVARIANT: old keys stay in the ring, so rows not yet re-wrapped keep opening.
    this.#write(id, new Map([[id, key], ...keys]));
    return id;
  }

  async prune(keep: ReadonlySet<string>): Promise<string[]> {
    const { current, keys } = this.ring();
    const dropped = [...keys.keys()].filter((id) => id !== current && !keep.has(id));
    if (dropped.length > 0) this.#write(current, new Map([...keys].filter(([id]) => !dropped.includes(id))));
    return dropped;
  }
}

/**
 * The provider a gateway or CLI uses: `GATEHOUSE_MASTER_KEY` when set, else the key
 * file (`GATEHOUSE_MASTER_KEY_FILE`, else `<dataDir>/master-keys.json`, generated
 * on first use). `embeddedDefault` is true for the generated file: the caller must
 * warn that production should supply its own key (the file sits next to the
 * ciphertexts, so one backup holds both).
 */
export function defaultKeyProvider(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): { provider: KeyProvider; embeddedDefault: boolean } {
  if (env['GATEHOUSE_MASTER_KEY'] !== undefined)
    return { provider: new EnvKeyProvider(env), embeddedDefault: false };
  const file = env['GATEHOUSE_MASTER_KEY_FILE'];
  if (file) return { provider: new FileKeyProvider(file, { create: false }), embeddedDefault: false };
  return { provider: new FileKeyProvider(masterKeyFilePath(dataDir)), embeddedDefault: true };
}

/** The start-up warning for the generated key file. */
export const EMBEDDED_KEY_WARNING =
  'secrets: the master key is a file generated in the data directory, next to the encrypted secrets; production should supply its own key (GATEHOUSE_MASTER_KEY, GATEHOUSE_MASTER_KEY_FILE, or a KMS provider)';
