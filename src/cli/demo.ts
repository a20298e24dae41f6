import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { demoAuthClients } from '../auth/as/clients.ts';
import type { GatehouseConfigInput } from '../config/schema.ts';

/**
 * The embedded demo: @modelcontextprotocol/server-everything over stdio behind
 * the embedded authorization server, with a pre-registered headless agent
 * `demo-agent` (client credentials, secret generated into the data dir) that may
 * call the ordinary tools; `everything__get-env` needs the wider `mcp:admin`
 * scope (a step-up example); `everything__gzip-file-as-resource` (it fetches any
 * URL) waits for a human approval by the demo user `alice` (`gatehouse users add
 * alice`), who is also the console's admin (/admin).
 */

/** The demo's approver and console admin (a local user the README creates). */
export const DEMO_APPROVER = 'alice';

/** The demo tool that needs an approval. */
export const DEMO_APPROVAL_TOOL = 'everything__gzip-file-as-resource';

export function demoConfig(dataDir?: string): GatehouseConfigInput {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
  return {
    policy: {
      files: [fileURLToPath(new URL('../../examples/policies/demo.cedar', import.meta.url))],
      tools: { [DEMO_APPROVAL_TOOL]: { risk: 'high', sideEffect: 'external' } },
    },
    approvals: { approvers: [DEMO_APPROVER] },
    admin: { admins: [DEMO_APPROVER] },
    auth: {
      mode: 'embedded',
      requiredScopes: ['mcp'],
      toolScopes: { 'everything__get-env': 'mcp:admin' },
      embedded: { clients: dataDir ? demoAuthClients(dataDir) : [] },
    },
    // Trust on first use: the demo's one server is pinned as it starts; a later change is quarantined.
    pinning: { newTools: 'trust' },
    upstreams: {
      everything: { type: 'stdio', command: process.execPath, args: [entry, 'stdio'] },
    },
  };
}
