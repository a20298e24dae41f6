/**
 * The sanitize-result stage through a real gateway: a stdio upstream (test/fixtures/untrusted-server.ts)
 * returns ANSI escapes, tag-character smuggling, an example AWS key and an `<IMPORTANT>` injection; the
 * agent (the SDK client) gets them stripped, redacted, flagged, wrapped or blocked as configured.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { WRAP_NOTE } from '../../src/sanitize/index.ts';
import { HIDDEN } from '../fixtures/untrusted-payloads.ts';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'untrusted-server.ts');
let gw: TestGateway;
let client: Client;

before(async () => {
  gw = await startTestGateway({
    upstreams: {
      untrusted: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', FIXTURE] },
    },
    sanitize: {
      tools: {
        'untrusted__blocked_*': { injection: 'block' },
        'untrusted__wrapped_*': { injection: 'wrap' },
      },
    },
  });
  client = await connectClient(gw.url);
});

after(async () => {
  await client?.close();
  await gw?.close();
});

interface Flagged {
  type: string;
  rule: string;
  path: string;
  start: number;
  end: number;
  detail: string;
}

async function call(name: string): Promise<{ text: string; findings: Flagged[] }> {
  const r = await client.callTool({ name: `untrusted__${name}`, arguments: {} });
  const content = r.content as { type: string; text: string }[];
  const meta = r._meta as Record<string, unknown> | undefined;
  return {
    text: content[0]?.text ?? '',
    findings: (meta?.['gatehouse/findings'] as Flagged[] | undefined) ?? [],
  };
}

test('T21 ansi: escape sequences and BEL are stripped from the result and flagged', async () => {
  const { text, findings } = await call('ansi');
  assert.equal(text, 'Build OK click done');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting no control character is left
  assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  assert.ok(findings.some((f) => f.type === 'control-chars' && f.rule === 'ansi-csi'));
  assert.ok(
    findings.some((f) => f.rule === 'ansi-osc' && f.detail.includes('hyperlink to https://evil.example/')),
  );
  assert.ok(findings.every((f) => f.path === '/result/content/0/text'));
});

test('T22 invisible: tag characters are removed and their hidden text decoded into the finding', async () => {
  const { text, findings } = await call('tags');
  assert.equal(text, 'The forecast is sunny.');
  const tag = findings.find((f) => f.rule === 'tag-characters');
  assert.ok(tag, 'a tag-characters finding');
  assert.equal(tag.type, 'invisible-unicode');
  assert.ok(tag.detail.includes(HIDDEN), tag.detail);
});

test('T20 secrets: an AWS access key id in a result is redacted by the pattern rules', async () => {
  const { text, findings } = await call('aws');
  assert.equal(text, 'config: aws_access_key_id = [REDACTED:aws-access-key-id]');
  assert.ok(!JSON.stringify(findings).includes('AKIAIOSFODNN7EXAMPLE'), 'the findings never carry the value');
  assert.deepEqual(
    findings.map((f) => [f.type, f.rule, f.start, f.end]),
    [['secret', 'aws-access-key-id', 28, 48]],
  );
});

test('T18 injection: an <IMPORTANT> block is flagged in _meta with spans, the text left as sent', async () => {
  const { text, findings } = await call('important');
  assert.ok(text.includes('<IMPORTANT>'), 'flag does not rewrite');
  const inj = findings.filter((f) => f.type === 'injection');
  assert.ok(inj.some((f) => f.rule === 'fake-tag' && text.slice(f.start, f.end) === '<IMPORTANT>'));
  assert.ok(inj.some((f) => f.rule === 'conceal-from-user'));
});

test('T18 injection: a tool configured to block gets result_blocked (-32030) instead of the result', async () => {
  await assert.rejects(
    client.callTool({ name: 'untrusted__blocked_important', arguments: {} }),
    (err: unknown) => err instanceof McpError && err.code === -32030,
  );
});

test('T18 injection: a tool configured to wrap gets the text quoted as data with its tags defanged', async () => {
  const { text, findings } = await call('wrapped_important');
  assert.ok(text.startsWith(WRAP_NOTE), text);
  assert.ok(!text.includes('<IMPORTANT>'), 'the fake tag no longer parses as a tag');
  assert.ok(text.includes('‹IMPORTANT›'));
  assert.ok(findings.some((f) => f.type === 'injection'));
});

test('a clean result is untouched and carries no findings', async () => {
  const { text, findings } = await call('clean');
  assert.equal(text, 'The forecast is sunny.');
  assert.deepEqual(findings, []);
});

test('findings are counted by family and audited (sanitiser.finding)', async () => {
  const body = await (await fetch(new URL('/metrics', gw.url))).text();
  for (const kind of ['control-chars', 'invisible-unicode', 'secret', 'injection'])
    assert.match(body, new RegExp(`gatehouse_sanitizer_findings_total\\{kind="${kind}"\\} [1-9]`), kind);
  assert.match(body, /gatehouse_audit_events_total\{type="sanitiser.finding"\} [1-9]/);
});
