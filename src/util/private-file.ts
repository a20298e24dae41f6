/**
 * Files and directories Gatehouse creates in its data directory (and wherever it
 * keeps state: a database path or key file set outside it): owner-only, 0700
 * directories and 0600 files, whatever the process umask (a mode passed to
 * open/mkdir can only lose bits to the umask, never gain group/other ones), and
 * an existing file opened for writing is tightened too. Key material is refused
 * when it is readable by others, and created exclusively so two processes
 * starting at once end up with one file. The data directory as a whole is
 * checked and repaired at start-up by ./data-dir.ts.
 */
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** Mode of every directory Gatehouse creates for its state. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file Gatehouse creates for its state. */
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other permission bits: none may be set on Gatehouse's state. */
export const GROUP_OTHER_BITS = 0o077;

/** Throws unless the file is readable by its owner only. */
export function assertPrivateFile(path: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & GROUP_OTHER_BITS) !== 0) {
    throw new Error(
      `${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`,
    );
  }
}

/** The file's text, or undefined when it does not exist; refuses a file others can read. */
export function readPrivateFile(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  assertPrivateFile(path);
  return text;
}

/**
 * Creates the directory and its missing parents, each 0700. An existing
 * directory is left as it is: the data directory is repaired by
 * `secureDataDir`, and a parent outside it (`/var/lib`) is not Gatehouse's.
 */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * `openSync(path, flags)` for a file Gatehouse writes: created 0600, and an
 * existing regular file with group/other bits loses them before anything is
 * written (a file left by an older version, or an `--out` target made by the
 * shell). Devices and pipes (`--out /dev/stdout`) are not touched.
 */
export function openPrivateFile(path: string, flags: 'a' | 'w'): number {
  const fd = openSync(path, flags, PRIVATE_FILE_MODE);
  try {
    const st = fstatSync(fd);
    if (st.isFile() && (st.mode & GROUP_OTHER_BITS) !== 0) fchmodSync(fd, st.mode & 0o700);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Writes the whole file through {@link openPrivateFile} (`flush`: fsync before closing). */
export function writePrivateFile(path: string, data: string, opts: { flush?: boolean } = {}): void {
  const fd = openPrivateFile(path, 'w');
  try {
    const buf = Buffer.from(data);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    if (opts.flush) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes sure the file exists and is owner-only (its directory created 0700),
 * without writing to it. For files another library creates with its own default
 * mode: SQLite creates a database 0644 (less the umask) and gives its `-wal`,
 * `-shm` and `-journal` files the database file's mode, so the database must
 * exist 0600 before it is opened.
 */
export function ensurePrivateFile(path: string): void {
  makePrivateDir(dirname(path));
  closeSync(openPrivateFile(path, 'a'));
}

/**
 * Removes group/other bits from an existing entry (never following a symlink);
 * returns the old and new mode when it changed something, undefined otherwise
 * (including when the path does not exist).
 */
export function restrictExisting(path: string): { from: number; to: number } | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // chmod would follow a symlink to whatever it points at: not ours to change.
  if (st.isSymbolicLink()) return undefined;
  const from = st.mode & 0o777;
  if ((from & GROUP_OTHER_BITS) === 0) return undefined;
  const to = from & 0o700;
  chmodSync(path, to);
  return { from, to };
}

/**
 * Creates the file (mode 0600, its directory 0700) unless it exists. Returns
 * false when another process created it first: the caller then reads theirs.
 */
export function createPrivateFile(path: string, data: string): boolean {
  makePrivateDir(dirname(path));
  try {
    writeFileSync(path, data, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
