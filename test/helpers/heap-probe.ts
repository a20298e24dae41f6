/**
 * Test-only preload (`node --expose-gc --import ./test/helpers/heap-probe.ts ...`): on SIGUSR2 the
 * process runs a full garbage collection and appends `<ms since epoch> <heapUsed+external bytes>` to
 * the file named by GATEHOUSE_HEAP_PROBE. The soak (scripts/soak.ts) samples what a process retains
 * this way: RSS alone is allocator noise at the scale of a short run.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.GATEHOUSE_HEAP_PROBE;
const gc = (globalThis as { gc?: () => void }).gc;
if (file && gc) {
  process.on('SIGUSR2', () => {
    gc();
    gc(); // a second pass frees what finalizers of the first released
    const m = process.memoryUsage();
    appendFileSync(file, `${Date.now()} ${m.heapUsed + m.external}\n`);
  });
}
