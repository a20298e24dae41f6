/**
 * Where the secret store keeps its rows. Deliberately tiny and separate from the
 * gateway's `Storage` (src/storage/types.ts): the ciphertexts live in their own
 * database (`<dataDir>/secrets.db`, see sqlite-repo.ts), so the main database and
 * its backups never hold them, the main schema keeps a single migration writer,
 * and a KMS- or Vault-backed repository can replace this one without touching it.
 */

/** Metadata of one secret: everything `list` may show. Never the value. */
export interface SecretInfo {
  name: string;
  /** The service the secret is for (free text, e.g. `github`), if given. */
  service: string | undefined;
  /** Id of the master key its data key is wrapped under. */
  keyId: string;
  /** First `set` (ms since epoch); a later `set` of the same name keeps it. */
  createdAt: number;
  /** Last `set`. */
  updatedAt: number;
  /** Last successful `get`, if any. */
  lastUsedAt: number | undefined;
}

/** One stored secret. `ciphertext` is iv (12) || AES-256-GCM ciphertext || tag (16). */
export interface SecretRow extends SecretInfo {
  /** Row format version (1: AES-256-GCM, AAD = secret name). */
  format: number;
  ciphertext: Buffer;
  /** The data key, wrapped under `keyId`. */
  wrappedKey: Buffer;
}

/** A data key re-wrapped during rotation; applied only if the row still holds `old`. */
export interface Rewrap {
  name: string;
  old: { keyId: string; wrappedKey: Buffer };
  keyId: string;
  wrappedKey: Buffer;
}

/** Storage of secret rows. Every backend must pass test/secrets/repo-contract.ts. */
export interface SecretRepo {
  get(name: string): Promise<SecretRow | undefined>;
  /** Inserts or replaces the row; a replacement keeps the original `createdAt`. */
  put(row: SecretRow): Promise<void>;
  /** True when a row was removed. */
  remove(name: string): Promise<boolean>;
  /** Metadata of every secret, by name. */
  list(): Promise<SecretInfo[]>;
  touch(name: string, at: number): Promise<void>;
  /** Name, key id and wrapped data key of every row (what rotation re-wraps). */
  wrappedKeys(): Promise<Array<{ name: string; keyId: string; wrappedKey: Buffer }>>;
  /**
   * Applies re-wrapped data keys in ONE transaction; a row changed since it was
   * read (compare-and-set on the old wrapped key) is skipped. Returns rows updated.
   */
  rewrap(updates: readonly Rewrap[]): Promise<number>;
  close(): Promise<void>;
}
