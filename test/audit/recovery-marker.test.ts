/**
 * Crash recovery finds the clean-stop marker by its `detail.action`, not by searching record text: other
 * `admin.action` events carry operator or token text (a token revocation names the user it revokes),
 * and one that merely contains `gateway.stopped` must not hide calls left without an outcome.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import pino from 'pino';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { callEvent, openFixture } from './helpers.ts';

test('T27 an admin action whose text contains the stop marker does not close the recovery window', async () => {
  const f = await openFixture();
  const recorder = new AuditRecorder(f.writer, pino({ level: 'silent' }), createMetrics());
  try {
    await recorder.append(callEvent(1));
    // A user named like the marker, revoked by `gatehouse users rm`, as the gateway audits it.
    recorder.tokensRevoked(
      {
        kind: 'user',
        value: 'gateway.stopped',
        notBefore: 1,
        expiresAt: 2,
        recordedAt: 3,
        reason: 'user removed',
      },
      'store',
    );
    await recorder.append({ type: 'list', method: 'tools/list' });
    assert.equal(
      await recorder.recoverUnknownOutcomes(f.storage.audit),
      1,
      'the call gets "outcome unknown"',
    );
    await recorder.append({ type: 'admin.action', detail: { action: 'gateway.stopped' } });
    assert.equal(await recorder.recoverUnknownOutcomes(f.storage.audit), 0, 'the real marker still counts');
  } finally {
    await f.writer.close();
    await f.storage.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});
