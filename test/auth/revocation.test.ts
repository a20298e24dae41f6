/**
 * The token revocation list (src/auth/revocation.ts) on a real SQLite store: what an entry revokes,
 * entries written by another process picked up by the poll, merging, and forgetting. The end-to-end
 * feeds (RFC 7009, the CLI, removed users and clients) are in test/e2e/revocation.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import {
  type RevocationLifetimes,
  RevocationList,
  type RevocationSubject,
  revocationLifetimes,
  revocationRecord,
} from '../../src/auth/revocation.ts';
import { parseConfig } from '../../src/config/load.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import type { RevocationRecord } from '../../src/storage/types.ts';
import { eventually } from '../helpers/gateway.ts';

const log = pino({ level: 'silent' });
const LIFETIMES: RevocationLifetimes = { tokenLifetimeSec: 300, retentionSec: 3600 };
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const nowSec = (): number => Math.floor(Date.now() / 1000);

function subject(o: Partial<RevocationSubject> = {}): RevocationSubject {
  return {
    agent: 'agent-a',
    user: 'alice',
    actors: [],
    tokenId: randomUUID(),
    issuedAt: nowSec() - 10,
    ...o,
  };
}

async function list(
  storage = new SqliteStorage(':memory:'),
  pollMs = 10,
): Promise<{ l: RevocationList; storage: SqliteStorage; added: RevocationRecord[]; close(): Promise<void> }> {
  const l = new RevocationList(storage, { lifetimes: LIFETIMES, log, pollMs });
  const added: RevocationRecord[] = [];
  l.onAdded = (rec) => added.push(rec);
  await l.start();
  return {
    l,
    storage,
    added,
    async close() {
      l.close();
      await storage.close();
    },
  };
}

describe('what an entry revokes', () => {
  test('T26 an empty list revokes nothing', async () => {
    const { l, close } = await list();
    assert.equal(l.size, 0);
    assert.equal(l.isRevoked(subject()), false);
    await close();
  });

  test('T26 by jti: exactly that token, whenever it was issued', async () => {
    const { l, close } = await list();
    await l.revoke({ kind: 'jti', jti: 'tok-1' }, 'test');
    assert.equal(l.isRevoked(subject({ tokenId: 'tok-1', issuedAt: nowSec() + 5 })), true);
    assert.equal(l.isRevoked(subject({ tokenId: 'tok-2' })), false);
    assert.equal(l.isRevoked(subject({ tokenId: undefined })), false);
    await close();
  });

  test('T26 by agent, user and agent+user: tokens issued at or before the revocation second, or without iat', async () => {
    const { l, close } = await list();
    const now = nowSec();
    await l.revoke({ kind: 'agent', agent: 'agent-x' }, 'test');
    await l.revoke({ kind: 'user', user: 'bob' }, 'test');
    await l.revoke({ kind: 'agent+user', agent: 'agent-y', user: 'carol' }, 'test');
    await l.revoke({ kind: 'agent+user', agent: 'agent-z', user: undefined }, 'test');
    const cases: [Partial<RevocationSubject>, boolean, string][] = [
      [{ agent: 'agent-x', issuedAt: now - 100 }, true, 'agent, older token'],
      [{ agent: 'agent-x', issuedAt: now }, true, 'agent, same second'],
      [{ agent: 'agent-x', issuedAt: now + 2 }, false, 'agent, token issued after'],
      [{ agent: 'agent-x', issuedAt: undefined }, true, 'agent, no iat: counts as issued before'],
      [{ agent: 'agent-b', actors: ['agent-b', 'agent-x'] }, true, 'a delegation chain through the agent'],
      [{ user: 'bob' }, true, 'user'],
      [{ user: 'bob', agent: 'other' }, true, 'user, any agent'],
      [{ user: 'bob', issuedAt: now + 2 }, false, 'user, token issued after'],
      [{ agent: 'agent-y', user: 'carol' }, true, 'agent+user'],
      [{ agent: 'agent-y', user: 'dave' }, false, 'agent+user, another user'],
      [{ agent: 'agent-w', user: 'carol' }, false, 'agent+user, another agent'],
      [{ agent: 'agent-y', user: undefined }, false, "agent+user, the agent's own token"],
      [{ agent: 'agent-z', user: undefined }, true, "agent with no user: the agent's own token"],
      [{ agent: 'agent-z', user: 'erin' }, false, 'agent with no user: not its tokens for users'],
      [{ user: undefined }, false, 'nothing else'],
    ];
    for (const [o, revoked, why] of cases) assert.equal(l.isRevoked(subject(o)), revoked, why);
    await close();
  });

  test('revoking again raises notBefore and never lowers it; listeners hear only what revokes more', async () => {
    const { l, added, storage, close } = await list();
    const now = Date.now();
    const older = revocationRecord(
      { kind: 'user', user: 'frank' },
      { now: now - 60_000, reason: 'a', lifetimes: LIFETIMES },
    );
    // Written now (pollers read by record time), revoking tokens issued until a minute ago.
    await storage.revocations.add({ ...older, recordedAt: now });
    await eventually('the entry is read from the store', () => added.length === 1);
    assert.equal(l.isRevoked(subject({ user: 'frank', issuedAt: older.notBefore + 10 })), false);
    await l.revoke({ kind: 'user', user: 'frank' }, 'b');
    assert.equal(l.isRevoked(subject({ user: 'frank', issuedAt: older.notBefore + 10 })), true, 'raised');
    assert.equal(added.length, 2);
    await storage.revocations.add({ ...older, recordedAt: Date.now() });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(added.length, 2, 'an older notBefore read again changes nothing');
    assert.equal(l.isRevoked(subject({ user: 'frank', issuedAt: older.notBefore + 10 })), true);
    assert.equal(l.size, 1);
    await close();
  });
});

describe('across processes and restarts', () => {
  test('T26 an entry written by another process (the CLI) is picked up by the poll; an in-process one applies at once', async () => {
    const path = join(dir, 'poll.db');
    const gateway = await list(new SqliteStorage(path));
    const cli = new SqliteStorage(path);
    const p = subject({ agent: 'agent-poll', issuedAt: nowSec() - 5 });
    assert.equal(gateway.l.isRevoked(p), false);
    await cli.revocations.add(
      revocationRecord(
        { kind: 'agent', agent: 'agent-poll' },
        { now: Date.now(), reason: 'cli', lifetimes: LIFETIMES },
      ),
    );
    await eventually('the gateway refuses the agent', () => gateway.l.isRevoked(p));
    assert.deepEqual(
      gateway.added.map((r) => [r.kind, r.value]),
      [['agent', 'agent-poll']],
    );
    const local = subject({ tokenId: 'tok-local' });
    await gateway.l.revoke({ kind: 'jti', jti: 'tok-local' }, 'rfc7009');
    assert.equal(gateway.l.isRevoked(local), true, 'no poll needed in-process');
    await cli.close();
    await gateway.close();
    const restarted = await list(new SqliteStorage(path));
    assert.equal(restarted.l.isRevoked(p), true, 'loaded at start');
    assert.equal(restarted.l.isRevoked(local), true);
    assert.equal(restarted.added.length, 0, 'loading is not a new revocation');
    await restarted.close();
  });

  test('entries are forgotten once every token they cover has expired, whatever lifetime the writer assumed', async () => {
    const { l, storage, close } = await list();
    const now = Date.now();
    // Written by a CLI that assumed a 1 s lifetime: this gateway keeps it for its own lifetimes.
    const short = revocationRecord(
      { kind: 'agent', agent: 'agent-short' },
      { now, reason: 'cli', lifetimes: { tokenLifetimeSec: 1, retentionSec: 1 } },
    );
    const expired = revocationRecord(
      { kind: 'agent', agent: 'agent-old' },
      { now: now - (LIFETIMES.retentionSec + 120) * 1000, reason: 'long ago', lifetimes: LIFETIMES },
    );
    await storage.revocations.add(short);
    await storage.revocations.add(expired);
    await eventually('the short entry is read', () => l.isRevoked(subject({ agent: 'agent-short' })));
    assert.equal(l.isRevoked(subject({ agent: 'agent-old', issuedAt: undefined })), false, 'forgotten');
    assert.equal(l.size, 1);
    await close();
  });

  test('a jti entry keeps to the token expiry it was given, within the token lifetime', () => {
    const now = Date.now();
    const exp = Math.floor(now / 1000) + 100;
    const rec = revocationRecord(
      { kind: 'jti', jti: 't', expiresAt: exp },
      { now, reason: 'r', lifetimes: LIFETIMES },
    );
    assert.equal(rec.expiresAt, (exp + 60) * 1000);
    assert.equal(rec.notBefore, Math.floor(now / 1000));
    const user = revocationRecord({ kind: 'user', user: 'u' }, { now, reason: 'r', lifetimes: LIFETIMES });
    assert.equal(user.expiresAt, now + (LIFETIMES.retentionSec + 60) * 1000);
  });

  test('lifetimes follow the configuration: embedded access and refresh tokens, external maxTokenLifetimeSec', () => {
    const up = { upstreams: { x: { type: 'http' as const, url: 'http://127.0.0.1:1/mcp' } } };
    assert.deepEqual(
      revocationLifetimes(
        parseConfig({ ...up, auth: { embedded: { accessTokenTtlSec: 600, refreshTokenTtlSec: 86_400 } } }),
      ),
      { tokenLifetimeSec: 600, retentionSec: 86_400 },
    );
    assert.deepEqual(
      revocationLifetimes(parseConfig({ ...up, auth: { embedded: { accessTokenTtlSec: 30 } } }))
        .tokenLifetimeSec,
      60,
      '`gatehouse token --user` subject tokens live 60 s',
    );
    assert.deepEqual(
      revocationLifetimes(
        parseConfig({
          ...up,
          auth: { mode: 'external', external: { issuer: 'https://idp.example', maxTokenLifetimeSec: 7200 } },
        }),
      ),
      { tokenLifetimeSec: 7200, retentionSec: 7200 },
    );
  });
});
