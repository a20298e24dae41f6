/**
 * `memory`: many refused or unknown requests, each carrying a large distinct string (a tool or prompt
 * name, a resource URI, a method, an argument key, a progressToken), sent as fast as the gateway takes
 * them. The family is measured on its own: heap after GC before and after, against the bytes sent,
 * so memory kept per refused request shows as retained bytes (oracle `heap`).
 */
import type { Family } from '../core.ts';
import { leakProbe, pickSlot } from './jsonrpc.ts';

/** The `memory` family. */
export const memoryFamily: Family = {
  name: 'memory',
  measureRetention: true,
  async generate(rng, ctx, index) {
    return [await leakProbe(rng, ctx, index * 8 + 1, 128 * 1024, pickSlot(rng))];
  },
};
