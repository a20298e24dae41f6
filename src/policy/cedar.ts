/**
 * The one import of Cedar. `@cedar-policy/cedar-wasm` ships three builds; `/nodejs` is the CommonJS
 * build that loads its wasm synchronously with `fs`, which works from ESM on Node 20 (the default `esm`
 * build expects a bundler to handle the `.wasm` import).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

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
