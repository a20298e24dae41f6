/**
 * The one import of Cedar. `@cedar-policy/cedar-wasm` ships three builds; `/nodejs` is the CommonJS
 * build that loads its wasm synchronously with `fs`, which works from ESM on Node 20 (the default `esm`
 * build expects a bundler to handle the `.wasm` import).
 */
import { setFlagsFromString } from 'node:v8';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

// V8 11.3 (Node 20) can abort the process ("Fatal error ... unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when optimized code that inlined a JS-to-Wasm call is lazily
// deoptimized while that wasm call runs: the Cedar glue JSON-parses inside the call, which can invalidate
// the caller's optimized code. Seen reliably with bench/policy.ts; gone with the inlining off. The inlining
// saves nanoseconds on a ~150 µs call, so it is turned off for the whole process, before any caller of
// Cedar is optimized.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

export type {
  AuthorizationAnswer,
  DetailedError,
  EntityJson,
  EntityUidJson,
  Expr,
  PolicyJson,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs';
/** The Cedar wasm API (Node build). */
export { cedar };
