/** Test helpers: a real gateway in-process and a real SDK client connected to it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pino from 'pino';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';

export interface TestGateway extends RunningGateway {
  dataDir: string;
}

/** Starts a gateway on an ephemeral loopback port with a temp data dir. */
export async function startTestGateway(
  config: GatehouseConfigInput,
  opts: { dataDir?: string } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const level = process.env.GATEHOUSE_TEST_LOG ?? 'silent';
  let policy = config.policy;
  if (policy === undefined) {
    // Tests that are not about policy allow everything; policy tests pass their own files.
    const file = join(dataDir, 'allow-all.cedar');
    writeFileSync(file, '@id("test-allow-all")\npermit (principal, action, resource);\n');
    policy = { files: [file] };
  }
  const gw = await startGateway({
    // Tests that are not about identity run without it; identity tests pass their own auth config.
    config: {
      auth: { mode: 'none' },
      ...config,
      policy,
      server: { host: '127.0.0.1', port: 0, ...config.server },
    },
    dataDir,
    logger: pino({ level }, pino.destination(2)),
  });
  const close = gw.close;
  return Object.assign(gw, {
    dataDir,
    close: async () => {
      await close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** A connected MCP SDK client; `setup` may register request handlers before connecting. */
export async function connectClient(
  url: string,
  opts: { capabilities?: Record<string, unknown>; setup?: (c: Client) => void } = {},
): Promise<Client> {
  const client = new Client(
    { name: 'gatehouse-test', version: '1.0.0' },
    { capabilities: opts.capabilities ?? {} },
  );
  opts.setup?.(client);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Node executable + args for a stdio server shipped as an npm bin script. */
export function nodeServer(modulePath: string, ...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [modulePath, ...args] };
}
