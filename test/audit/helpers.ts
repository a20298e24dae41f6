/** Shared fixtures of the audit tests: a temp data dir, a real SQLite file and a writer. */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEventInput } from '../../src/audit/event.ts';
import { type AuditWriter, type AuditWriterOptions, createAuditWriter } from '../../src/audit/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

export interface Fixture {
  dir: string;
  dbPath: string;
  storage: SqliteStorage;
  writer: AuditWriter;
}

/** A fresh data dir with a SQLite database and an audit writer on it. */
export async function openFixture(
  opts: Partial<Omit<AuditWriterOptions, 'repo' | 'key'>> = {},
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-')),
): Promise<Fixture> {
  const dbPath = join(dir, 'gatehouse.db');
  const storage = new SqliteStorage(dbPath);
  const writer = await createAuditWriter({
    repo: storage.audit,
    dataDir: dir,
    instance: 'gw-test',
    checkpointIntervalMs: 0,
    ...opts,
  });
  return { dir, dbPath, storage, writer };
}

/** A realistic tool call event. */
export function callEvent(i: number, overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    type: 'call.attempted',
    requestId: `req-${i}`,
    grantId: `grant-${i % 3}`,
    sessionId: `sess-${i % 2}`,
    principal: {
      agent: 'agent-a',
      user: 'alice',
      tenant: 'acme',
      actors: ['orchestrator'],
      jti: `jti-${i % 4}`,
      issuer: 'https://as.example',
      authMethod: 'jwt',
    },
    server: 'files',
    method: 'tools/call',
    tool: 'read_file',
    args: { path: `/tmp/${i}.txt`, n: i },
    decision: { effect: 'allow', policies: ['p-read'] },
    ...overrides,
  };
}

/** Runs `sql` directly on the database file (what an attacker with file access can do). */
export function tamper(dbPath: string, fn: (db: Database.Database) => void): void {
  const db = new Database(dbPath);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

/**
 * Edits the audit segment file in `dir` (what an attacker with file access can
 * do): `fn` gets the lines (`<hash> <body>`) and returns the new ones.
 */
export function editLog(dir: string, fn: (lines: string[]) => string[]): void {
  const segDir = join(dir, 'audit');
  const [name, ...more] = readdirSync(segDir).filter((n) => n.endsWith('.log'));
  if (!name || more.length > 0) throw new Error('expected one segment file');
  const file = join(segDir, name);
  const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
  const out = fn(lines);
  writeFileSync(file, out.map((l) => `${l}\n`).join(''));
}

/** The body of a segment line. */
export function bodyOf(line: string | undefined): string {
  if (line === undefined) throw new Error('no such line');
  return line.slice(65);
}
