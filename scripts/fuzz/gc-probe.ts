/**
 * Preloaded into the gateway under test (`node --expose-gc --import …/gc-probe.ts`): on SIGUSR2 it
 * collects garbage and writes `process.memoryUsage()` to GATEHOUSE_FUZZ_GC_FILE, so the fuzzer can
 * compare live heap after GC (a leak signal much less noisy than RSS). It changes nothing else.
 */
import { renameSync, writeFileSync } from 'node:fs';

const out = process.env.GATEHOUSE_FUZZ_GC_FILE;
if (out && typeof globalThis.gc === 'function') {
  const collect = globalThis.gc;
  process.on('SIGUSR2', () => {
    collect();
    const tmp = `${out}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...process.memoryUsage(), time: Date.now() }));
    renameSync(tmp, out);
  });
}
