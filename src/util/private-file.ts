/**
 * Files that hold key material in the data directory: readable by their owner
 * only (0600, refused otherwise), created exclusively so two processes starting
 * at once end up with one file.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

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
 * Creates the file (mode 0600, its directory 0700) unless it exists. Returns
 * false when another process created it first: the caller then reads theirs.
 */
export function createPrivateFile(path: string, data: string): boolean {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
