/**
 * T31 memory bounded by bytes: a sustained mix of valid and hostile traffic (large distinct names,
 * large refused arguments, hostile bodies, anonymous 401s, sessions opened and closed) against a real
 * `gatehouse start` child; its RSS must level off once the bounded tables are warm, and no request may
 * get a 5xx or `internal`. scripts/soak.ts is the harness (and the long run for the closing note).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../../scripts/soak.ts';

test('T31 soak: RSS levels off under sustained hostile traffic, no 5xx, no internal', {
  timeout: 180_000,
}, async (t) => {
  const r = await runSoak({ seconds: 40, workers: 4, warmupFraction: 0.4 });
  t.diagnostic(
    `${r.requests} requests; RSS ${r.startMb.toFixed(1)} → ${r.endMb.toFixed(1)} MB (peak ${r.peakMb.toFixed(1)}); slope after warm-up ${(r.slopeMbPerSec * 1024).toFixed(0)} KB/s`,
  );
  assert.equal(r.serverErrors, 0);
  assert.ok(r.requests > 1000, `enough traffic to mean something (${r.requests})`);
  // Unbounded tables keyed by those names grew about 1 MB/s; bounded ones level off.
  assert.ok(
    r.slopeMbPerSec < 0.5,
    `RSS still growing ${(r.slopeMbPerSec * 1024).toFixed(0)} KB/s after warm-up`,
  );
});
