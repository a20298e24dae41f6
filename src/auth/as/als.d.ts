// oidc-provider keeps its request context in one AsyncLocalStorage (lib/helpers/als.js);
// the package has no type for this internal module.
declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';

  const als: AsyncLocalStorage<unknown>;
  export default als;
}
