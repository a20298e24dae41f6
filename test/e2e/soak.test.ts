/**
 * T31 memory bounded by bytes: a sustained mix of valid and hostile traffic (large distinct names,
 * large refused arguments, hostile bodies, anonymous 401s, sessions opened and closed) against a real
 * `gatehouse start` child; what it retains (heap + external after a full GC, sampled every second)
 * must level off once the bounded tables are warm, and no request may get a 5xx or `internal`.
 * scripts/soak.ts is the harness (and the long run for the closing note).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../../scripts/soak.ts';

test('T31 soak: retained memory levels off under sustained hostile traffic, no 5xx, no internal', {
  timeout: 180_000,
}, async (t) => {
  const r = await runSoak({ seconds: 60, workers: 4, warmupFraction: 0.5 });
  const kb = (mbPerSec: number): string => (mbPerSec * 1024).toFixed(0);
  t.diagnostic(
    `${r.requests} requests; retained heap ${r.heap[0]?.mb.toFixed(1)} → ${r.heap.at(-1)?.mb.toFixed(1)} MB, slope after warm-up ${kb(r.heapSlopeMbPerSec)} KB/s; RSS ${r.startMb.toFixed(1)} → ${r.endMb.toFixed(1)} MB (peak ${r.peakMb.toFixed(1)}), slope ${kb(r.slopeMbPerSec)} KB/s`,
  );
  assert.equal(r.serverErrors, 0);
  assert.ok(r.requests > 1000, `enough traffic to mean something (${r.requests})`);
  assert.ok(r.heap.length >= 20, `the heap was sampled (${r.heap.length} samples)`);
  // Bounded tables still filling (a 1,024-entry cache of made-up tool names fills in about 30 s) add
  // 60-120 KB/s in the first 40 s and ~15 KB/s after; the unbounded tables this test was written for
  // grew about 1 MB/s. RSS is reported, not judged: at this scale it is allocator noise (it went up
  // 900 KB/s and down 900 KB/s in runs with the same retained heap).
  assert.ok(
    r.heapSlopeMbPerSec < 0.25,
    `retained heap still growing ${kb(r.heapSlopeMbPerSec)} KB/s after warm-up`,
  );
});
