/**
 * Child of crash.test.ts: appends audit events forever with 16 concurrent
 * appenders and prints the seq of every append that resolved, one per line.
 * The parent kills it with SIGKILL. argv: DATA_DIR [full|normal].
 */
import { join } from 'node:path';
import { createAuditWriter } from '../../src/audit/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: crash-child.ts DATA_DIR');
const storage = new SqliteStorage(join(dir, 'gatehouse.db'), {
  synchronous: process.argv[3] === 'full' ? 'full' : 'normal',
});
const writer = await createAuditWriter({
  repo: storage.audit,
  dataDir: dir,
  instance: 'crash-child',
  checkpointEvery: 500,
  checkpointIntervalMs: 0,
});
let i = 0;
async function appender(): Promise<never> {
  for (;;) {
    const n = i++;
    const r = await writer.append({
      type: 'call.attempted',
      requestId: `req-${n}`,
      principal: { agent: 'crash-agent', jti: `jti-${n % 7}` },
      tool: 'echo',
      args: { n },
    });
    process.stdout.write(`${r.seq}\n`);
  }
}
process.stdout.write('ready\n');
await Promise.all(Array.from({ length: 16 }, appender));
