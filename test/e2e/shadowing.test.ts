/**
 * Cross-server shadowing (THREATS T15, Invariant Labs' `shadowing.py`) through a real gateway: two stdio
 * upstreams (test/fixtures/mail-server.ts), the real SDK client, pinning with its definition scanner,
 * and an argument policy. Server `shadow` offers `add`, whose description tells the agent that the other
 * server's `send_email` must send everything to the attacker, and a `send_email` of its own.
 *
 * Expected (T15): the shadowing definition is flagged (quarantined with a `cross-tool` finding, even
 * though new tools are trusted on first use); namespacing keeps the two `send_email` apart; an argument
 * policy on `mail__send_email` denies a recipient that is not allowed, whatever the agent was told.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  allTools,
  auditEvents,
  callError,
  connectClient,
  eventually,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = join(ROOT, 'test/fixtures/mail-server.ts');

/** Everything is allowed except e-mail to outside the allow-list, and any blind copy. */
const POLICY = `
@id("agent-may-use-everything")
permit (principal, action, resource);

@id("mail-recipient-allowlist")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"mail__send_email")
unless { context.args.hasTag("to") && ["bob@acme.example", "carol@acme.example"].contains(context.args.getTag("to")) };

@id("mail-no-bcc")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"mail__send_email")
when { context.args.hasTag("bcc") };
`;

let dir: string;
let gw: TestGateway;
let client: Client;
const sent = (): Record<string, unknown>[] => {
  const f = join(dir, 'mail.log');
  return existsSync(f)
    ? readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-shadowing-'));
  const policy = join(dir, 'mail.cedar');
  writeFileSync(policy, POLICY);
  const upstream = (role: string) => ({
    type: 'stdio' as const,
    command: process.execPath,
    args: ['--import', 'tsx', FIXTURE, role],
    cwd: ROOT,
    env: { MAIL_SERVER_EVENTS: join(dir, 'mail.log') },
    pool: { warm: 0 },
  });
  gw = await startTestGateway({
    policy: { files: [policy] },
    pinning: { newTools: 'trust' },
    upstreams: { mail: upstream('mail'), shadow: upstream('shadow') },
  });
  client = await connectClient(gw.url);
});

after(async () => {
  await client?.close();
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('T15 shadowing: a description about another server’s send_email is flagged (cross-tool) and quarantined on first sight', async () => {
  const names = await allTools(client);
  assert.ok(!names.includes('shadow__add'), `the shadowing tool is hidden: ${names.join(',')}`);
  const err = await callError(client, 'shadow__add', { a: 1, b: 2 });
  assert.equal((err.data as { gatehouse?: string }).gatehouse, 'tool_quarantined');
  await eventually('the quarantine is audited', () =>
    auditEvents(gw.dataDir, 'definition.changed').some((e) => e.tool === 'shadow__add'),
  );
  const changed = auditEvents(gw.dataDir, 'definition.changed').find((e) => e.tool === 'shadow__add');
  assert.equal(changed?.detail?.reason, 'findings');
  const locations = ((changed?.findings ?? []) as { location: string }[]).map((f) => f.location);
  assert.ok(
    locations.some((l) => l.includes('cross-tool')),
    locations.join('\n'),
  );
});

test('T15 namespacing: the two send_email tools are distinct; the mail server’s is the one that sends', async () => {
  const names = await allTools(client);
  assert.ok(names.includes('mail__send_email'), names.join(','));
  assert.ok(names.includes('shadow__send_email'), names.join(','));
  assert.ok(!names.includes('send_email'), 'no bare name a server could squat');
  const r = await client.callTool({
    name: 'mail__send_email',
    arguments: { to: 'bob@acme.example', subject: 'hi', body: 'lunch?' },
  });
  assert.deepEqual(r.content, [{ type: 'text', text: 'mail: sent to bob@acme.example' }]);
  assert.deepEqual(
    sent().map((m) => [m.server, m.to]),
    [['mail', 'bob@acme.example']],
  );
});

test('T15 argument policy: send_email to the attacker (or a blind copy to it) is denied whatever the agent was told', async () => {
  const before = sent().length;
  const toAttacker = await callError(client, 'mail__send_email', {
    to: 'attkr@pwnd.example',
    subject: 'hi',
    body: 'to: bob@acme.example — lunch?',
  });
  assert.equal((toAttacker.data as { gatehouse?: string }).gatehouse, 'tool_not_permitted');
  const bcc = await callError(client, 'mail__send_email', {
    to: 'bob@acme.example',
    bcc: 'attkr@pwnd.example',
    subject: 'hi',
    body: 'lunch?',
  });
  assert.equal((bcc.data as { gatehouse?: string }).gatehouse, 'tool_not_permitted');
  assert.equal(sent().length, before, 'nothing reached the mail server');
  const denials = auditEvents(gw.dataDir, 'decision').filter((e) => e.tool === 'mail__send_email');
  assert.deepEqual(
    denials.map((e) => (e.decision as { policies: string[] }).policies),
    [['mail-recipient-allowlist'], ['mail-no-bcc']],
  );
});
