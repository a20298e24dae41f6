/**
 * A store that pokes the cluster bus after the writes other replicas must learn of at once: a grant
 * ended, a token revoked, an approval decided, a lease ended or a secret blocked. Whoever writes them
 * (the grant manager, the admin console, the embedded authorization server, the CLI) goes through
 * this one wrapper, so no writer can forget to tell the cluster. The poke is sent after the write
 * committed (inside a transaction: after the transaction), never before.
 */
import type { Repos, Storage } from '../storage/types.ts';
import type { PokeKind } from './bus.ts';

/** A write's poke: a kind, or a function of the write's arguments (undefined: no poke). */
type Poke = PokeKind | ((args: unknown[]) => PokeKind | undefined);

/** The writes that poke, per repository. */
const WRITES: Partial<Record<keyof Repos, Readonly<Record<string, Poke>>>> = {
  // A task grant is used from any replica (its token names it): the others load it at once.
  grants: {
    end: 'grants',
    insert: (args) =>
      (args[0] as { kind?: unknown } | undefined)?.kind === 'task' ? 'task-grants' : undefined,
  },
  revocations: { add: 'revocations' },
  approvals: { decide: 'approvals' },
  leases: { end: 'leases', block: 'leases' },
};

function wrapRepo<R extends object>(
  repo: R,
  writes: Readonly<Record<string, Poke>>,
  poke: (k: PokeKind) => void,
): R {
  return new Proxy(repo, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const kind = typeof prop === 'string' && Object.hasOwn(writes, prop) ? writes[prop] : undefined;
      if (kind === undefined) return v.bind(target);
      return async (...args: unknown[]) => {
        const out: unknown = await v.apply(target, args);
        const k = typeof kind === 'function' ? kind(args) : kind;
        if (k !== undefined) poke(k);
        return out;
      };
    },
  });
}

function wrapRepos<T extends Repos>(repos: T, poke: (k: PokeKind) => void): Map<keyof Repos, unknown> {
  const out = new Map<keyof Repos, unknown>();
  for (const [name, writes] of Object.entries(WRITES) as [keyof Repos, Record<string, Poke>][])
    out.set(name, wrapRepo(repos[name], writes, poke));
  return out;
}

/** `storage` with pokes after the writes in {@link WRITES}. */
export function notifyingStorage(storage: Storage, poke: (k: PokeKind) => void): Storage {
  const wrapped = wrapRepos(storage, poke);
  return new Proxy(storage, {
    get(target, prop) {
      if (typeof prop === 'string' && wrapped.has(prop as keyof Repos))
        return wrapped.get(prop as keyof Repos);
      if (prop === 'transaction') {
        return async <T>(fn: (tx: Repos) => Promise<T>): Promise<T> => {
          const kinds = new Set<PokeKind>();
          const result = await target.transaction((tx) => {
            const inner = wrapRepos(tx, (k) => kinds.add(k));
            const txView = new Proxy(tx, {
              get: (t, p) =>
                typeof p === 'string' && inner.has(p as keyof Repos)
                  ? inner.get(p as keyof Repos)
                  : Reflect.get(t, p, t),
            });
            return fn(txView);
          });
          for (const k of kinds) poke(k);
          return result;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * For a short-lived process (the CLI): the store, and when `close()` is called after writes that
 * other replicas must learn of at once, one message on the bus (best effort: the replicas' store poll
 * is the fallback, so a Redis outage only costs the poll interval).
 */
export function pokingOnClose(
  storage: Storage,
  publish: (kinds: readonly PokeKind[]) => Promise<void>,
  onError: (err: unknown) => void,
): Storage {
  const kinds = new Set<PokeKind>();
  const wrapped = notifyingStorage(storage, (k) => kinds.add(k));
  return new Proxy(wrapped, {
    get(target, prop) {
      if (prop !== 'close') return Reflect.get(target, prop);
      return async () => {
        await storage.close();
        if (kinds.size > 0) await publish([...kinds]).catch(onError);
      };
    },
  });
}
