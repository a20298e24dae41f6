import { createRequire } from 'node:module';
import type { GatehouseConfigInput } from './config/schema.ts';

/** The embedded demo: @modelcontextprotocol/server-everything over stdio. */
export function demoConfig(): GatehouseConfigInput {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
  return {
    upstreams: {
      everything: { type: 'stdio', command: process.execPath, args: [entry, 'stdio'] },
    },
  };
}
