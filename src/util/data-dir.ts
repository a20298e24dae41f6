/**
 * The data directory (`--data-dir`, default `./.gatehouse`) holds the gateway's
 * databases and their `-wal`/`-shm` files, the audit segments, the signing and
 * master keys, the demo client secret and, through the database, sessions and
 * OAuth state. All of it is owner-only: whoever else can read it can mint
 * tokens, open the secret store or read what agents did (T20, T27).
 *
 * New entries are created owner-only by ./private-file.ts whatever the umask;
 * this module checks the directory as a whole when the gateway or a CLI verb
 * opens it, because a directory made by hand, restored from a backup or left by
 * an older version can have looser modes than Gatehouse would create. It repairs
 * rather than refuses (the owner running Gatehouse may fix its own files), says
 * what it changed, and refuses only when it cannot repair.
 */
import { chmodSync, type Dirent, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GROUP_OTHER_BITS, makePrivateDir, restrictExisting } from './private-file.ts';

/** One entry whose mode was tightened: path, old and new permission bits. */
export interface DataDirRepair {
  path: string;
  from: number;
  to: number;
}

/** The data directory is not usable as Gatehouse's owner-only state (not a directory, or cannot be repaired). */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

/** Options of {@link secureDataDir}. */
export interface SecureDataDirOptions {
  /**
   * Create a missing directory (0700); default true. Verbs that only read the
   * state pass false, so a mistyped `--data-dir` stays an error of theirs rather
   * than an empty directory.
   */
  create?: boolean;
}

/**
 * Makes the data directory owner-only: creates it 0700 when missing, else removes
 * group/other bits from it and from every entry below it (directories keep
 * 0700-style owner bits, files 0600-style), recursively. Symlinks are neither
 * followed nor changed: what they point at is outside what Gatehouse owns (the
 * directory itself may be a symlink the operator named). Returns what it
 * changed, for the caller to warn about. Throws {@link DataDirError} when the path
 * is not a directory or an entry cannot be repaired (owned by another user, a
 * read-only file system).
 */
export function secureDataDir(dir: string, opts: SecureDataDirOptions = {}): DataDirRepair[] {
  // POSIX modes only: on Windows the ACLs of the user's profile apply.
  if (process.platform === 'win32') return [];
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw refusal(dir, err);
    if (opts.create !== false) makePrivateDir(dir);
    return [];
  }
  if (!st.isDirectory()) throw new DataDirError(`data dir ${dir} is not a directory`);
  const repairs: DataDirRepair[] = [];
  const from = st.mode & 0o777;
  if ((from & GROUP_OTHER_BITS) !== 0) {
    try {
      chmodSync(dir, from & 0o700);
    } catch (err) {
      throw refusal(dir, err);
    }
    repairs.push({ path: dir, from, to: from & 0o700 });
  }
  walk(dir, repairs);
  return repairs;
}

/** Tightens every entry below `dir` (depth first, no symlinks followed). */
function walk(dir: string, repairs: DataDirRepair[]): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    // A directory removed while a gateway prunes or closes: nothing left to repair.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw refusal(dir, err);
  }
  for (const e of entries) {
    if (e.isSymbolicLink()) continue;
    const path = join(dir, e.name);
    let changed: ReturnType<typeof restrictExisting>;
    try {
      changed = restrictExisting(path);
    } catch (err) {
      throw refusal(path, err);
    }
    if (changed) repairs.push({ path, ...changed });
    if (e.isDirectory()) walk(path, repairs);
  }
}

function refusal(path: string, err: unknown): DataDirError {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  let owner = '';
  try {
    const uid = statSync(path).uid;
    if (uid !== process.getuid?.())
      owner = `; it belongs to uid ${uid}, not to this user (uid ${process.getuid?.()})`;
  } catch {
    // the mode or owner cannot be read either: the code says why
  }
  return new DataDirError(
    `data dir: cannot make ${path} readable by its owner only (${code})${owner}: ` +
      'Gatehouse keeps keys and secrets there; fix its owner, or chmod -R go-rwx it',
  );
}

/** The warning for what {@link secureDataDir} changed: paths relative to the data dir, old → new mode. */
export function describeRepairs(dir: string, repairs: readonly DataDirRepair[]): string {
  const shown = repairs
    .slice(0, 10)
    .map((r) => `${relative(dir, r.path) || '.'} (${octal(r.from)} -> ${octal(r.to)})`);
  const more = repairs.length > shown.length ? `, and ${repairs.length - shown.length} more` : '';
  return `data dir ${dir} was open to group or others; made owner-only: ${shown.join(', ')}${more}`;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
