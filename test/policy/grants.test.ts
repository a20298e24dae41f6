/** Grants against real SQLite: lifetime, idle timeout, revocation from another process, restart; mayAllow. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import type { Principal } from '../../src/auth/principal.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatehouseError } from '../../src/errors.ts';
import { type Grant, GrantManager, globMatch } from '../../src/grants/grant.ts';
import { PolicyEngine } from '../../src/policy/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-grants-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

function principal(agent: string, user?: string): Principal {
  return {
    agent,
    user,
    subject: user ?? agent,
    actors: [],
    tenant: undefined,
    tokenId: 'jti-1',
    issuer: 'https://as.example',
    scopes: new Set(['mcp']),
    authMethod: 'jwt',
    expiresAt: 0,
  };
}

function setup(name: string, grants: Record<string, unknown> = {}) {
  const path = join(dir, `${name}.db`);
  const config = parseConfig({ grants, upstreams: { a: { type: 'http', url: 'http://127.0.0.1:1/mcp' } } });
  const storage = new SqliteStorage(path);
  const manager = new GrantManager(storage, config, log, 20);
  return { path, config, storage, manager };
}

function made(m: GrantManager, req: Parameters<GrantManager['create']>[0]): Grant {
  const r = m.create(req);
  assert.ok(!(r instanceof GatehouseError), String(r));
  return r.grant;
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
}

test('coverage, argument constraints and principal binding', () => {
  const { manager, storage } = setup('cover');
  const g = made(manager, {
    kind: 'task',
    principal: principal('ops', 'alice'),
    tools: ['gh__create_issue', 'gh__search'],
    constraints: { gh__create_issue: { repo: ['acme/widgets'], count: ['3'] } },
    createdBy: 'test',
  });
  assert.ok(g.coversTool('gh__search'));
  assert.ok(!g.coversTool('gh__delete_repo'));
  assert.equal(g.violatedConstraint('gh__create_issue', { repo: 'acme/widgets', count: 3 }), undefined);
  assert.equal(g.violatedConstraint('gh__create_issue', { repo: 'acme/other', count: 3 }), 'repo');
  assert.equal(g.violatedConstraint('gh__create_issue', { count: 3 }), 'repo');
  assert.equal(g.violatedConstraint('gh__create_issue', { repo: 'acme/widgets', count: '4' }), 'count');
  assert.equal(g.violatedConstraint('gh__search', { anything: 1 }), undefined);
  assert.ok(g.boundTo(principal('ops', 'alice')));
  assert.ok(!g.boundTo(principal('ops', 'bob')), 'T26: another user');
  assert.ok(!g.boundTo(principal('dev', 'alice')), 'T26: another agent');
  assert.ok(
    !g.boundTo({ ...principal('ops', 'alice'), issuer: 'https://evil.example' }),
    'T26: another issuer',
  );
  manager.close();
  return storage.close();
});

test('globMatch: * spans any characters, everything else is literal', () => {
  assert.ok(globMatch('github__delete_*', 'github__delete_repo'));
  assert.ok(!globMatch('github__delete_*', 'github__create_issue'));
  assert.ok(globMatch('a.b', 'a.b'));
  assert.ok(!globMatch('a.b', 'axb'), 'dots are literal');
});

test('expiry and idle timeout end a grant and its members; a busy grant is not idle', async () => {
  const { manager, storage } = setup('timeouts', { idleTimeoutSec: 1 });
  const ended: string[] = [];
  const expiring = made(manager, {
    kind: 'task',
    principal: principal('a'),
    tools: ['x'],
    expiresAt: Date.now() + 50,
    createdBy: 'test',
  });
  expiring.attach({ busy: () => false, end: async (e) => void ended.push(`expiring:${e.code}`) });
  const idle = made(manager, { kind: 'session', principal: principal('b'), createdBy: 'test' });
  idle.attach({ busy: () => false, end: async () => void ended.push('idle') });
  let working = true;
  const busy = made(manager, { kind: 'session', principal: principal('c'), createdBy: 'test' });
  busy.attach({ busy: () => working, end: async () => void ended.push('busy') });
  await until('expiry', () => ended.includes('expiring:grant_ended'));
  assert.equal(manager.get(expiring.id), undefined);
  await until('idle timeout', () => ended.includes('idle'));
  assert.equal(idle.record.endReason, 'idle timeout');
  assert.ok(!ended.includes('busy'), 'a grant with a call in flight is not idle');
  working = false;
  await until('idle after the call', () => ended.includes('busy'));
  const stored = await storage.grants.listLive(Date.now());
  assert.deepEqual(stored, []);
  manager.close();
  await storage.close();
});

test('T26: a revocation written by another process (gatehouse grants revoke) ends the live grant', async () => {
  const { manager, storage, path } = setup('cross');
  const g = made(manager, { kind: 'session', principal: principal('a', 'alice'), createdBy: 'test' });
  const other = made(manager, { kind: 'session', principal: principal('b', 'bob'), createdBy: 'test' });
  let endedWith: GatehouseError | undefined;
  g.attach({
    busy: () => false,
    end: async (e) => {
      endedWith = e;
    },
  });
  await new Promise((r) => setTimeout(r, 30)); // let the inserts land
  const cli = new SqliteStorage(path);
  assert.deepEqual(await cli.grants.end({ user: 'alice' }, 'leaked token', Date.now()), [g.id]);
  await cli.close();
  await until('the gateway noticed', () => endedWith !== undefined);
  assert.equal(endedWith?.code, 'grant_ended');
  assert.match(endedWith?.message ?? '', /leaked token/);
  assert.ok(manager.get(other.id), 'other grants live on');
  manager.close();
  await storage.close();
});

test('restart: session grants of the previous run end, task grants come back', async () => {
  const { manager, storage, path, config } = setup('restart');
  const s = made(manager, { kind: 'session', principal: principal('a'), createdBy: 'test' });
  const t = made(manager, { kind: 'task', principal: principal('a'), tools: ['x'], createdBy: 'test' });
  await new Promise((r) => setTimeout(r, 30));
  manager.close();
  await storage.close();
  const storage2 = new SqliteStorage(path);
  const again = new GrantManager(storage2, config, log, 20);
  await again.start();
  assert.equal(again.get(s.id), undefined);
  assert.equal(again.get(t.id)?.record.tools?.[0], 'x');
  const rec = (await storage2.grants.listLive(Date.now())).map((r) => r.id);
  assert.deepEqual(rec, [t.id]);
  again.close();
  await storage2.close();
});

test('mayAllow: what lists show and task grants may include', () => {
  const file = join(dir, 'may.cedar');
  writeFileSync(
    file,
    [
      '@id("p") permit (principal == Gatehouse::Agent::"dev", action, resource);',
      '@id("arg-permit") permit (principal == Gatehouse::Agent::"arg", action, resource) when { context.args.hasTag("ok") };',
      '@id("arg-forbid") forbid (principal, action, resource == Gatehouse::Tool::"s__guarded") unless { context.args.hasTag("ok") };',
      '@id("never") forbid (principal, action, resource == Gatehouse::Tool::"s__never");',
    ].join('\n'),
  );
  const e = PolicyEngine.fromFiles([file]);
  const may = (agent: string, tool: string) =>
    e.mayAllow({ principal: principal(agent), grantId: 'g', action: 'call_tool', server: 's', tool });
  assert.equal(may('dev', 'open'), true, 'static allow');
  assert.equal(may('stranger', 'open'), false, 'deny by default');
  assert.equal(may('dev', 'guarded'), true, 'allowed for some arguments');
  assert.equal(may('stranger', 'guarded'), false, 'an applicable dynamic forbid does not make a permit');
  assert.equal(may('arg', 'open'), true, 'a dynamic permit may hold');
  assert.equal(may('dev', 'never'), false, 'a static forbid holds whatever the arguments');
});
