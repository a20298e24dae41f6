/**
 * A JSON tree the generators can mutate into anything a client could send: duplicate and
 * `__proto__` keys (objects are entry lists, never JS objects), and raw fragments that
 * JSON.stringify cannot produce (`1e999`, `-0`, lone surrogate escapes, 10k-deep nesting).
 */

/** A JSON fragment written verbatim. */
export interface RawJson {
  readonly raw: string;
}

/** An object as written: entries in order, duplicates and any key allowed. */
export interface ObjJson {
  readonly obj: [string, Json][];
}

/** A JSON value tree. */
export type Json = null | boolean | number | string | RawJson | ObjJson | Json[];

/** A verbatim fragment. */
export function raw(text: string): RawJson {
  return { raw: text };
}

/** An object from entries (keys may repeat). */
export function obj(entries: [string, Json][]): ObjJson {
  return { obj: entries };
}

/** Whether `v` is an object node. */
export function isObj(v: Json): v is ObjJson {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'obj' in v;
}

/** Whether `v` is a raw fragment. */
export function isRaw(v: Json): v is RawJson {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'raw' in v;
}

/** Converts a plain value (templates) to a tree; `undefined` members are dropped. */
export function fromPlain(v: unknown): Json {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(fromPlain);
  if (typeof v === 'object') {
    const entries: [string, Json][] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x !== undefined) entries.push([k, fromPlain(x)]);
    }
    return obj(entries);
  }
  return null;
}

/** Looks a key up (the last entry wins, as in JSON.parse). */
export function get(o: ObjJson, key: string): Json | undefined {
  for (let i = o.obj.length - 1; i >= 0; i--) {
    const e = o.obj[i];
    if (e && e[0] === key) return e[1];
  }
  return undefined;
}

/** Sets a key (replaces every entry of it, or appends). */
export function set(o: ObjJson, key: string, value: Json): void {
  let found = false;
  for (const e of o.obj) {
    if (e[0] === key) {
      e[1] = value;
      found = true;
    }
  }
  if (!found) o.obj.push([key, value]);
}

/** Serializes a tree to JSON text (iterative enough: deep nesting comes as raw fragments). */
export function toText(v: Json): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toText).join(',')}]`;
  if (isRaw(v)) return v.raw;
  return `{${v.obj.map(([k, x]) => `${JSON.stringify(k)}:${toText(x)}`).join(',')}}`;
}

/** A deep copy. */
export function clone(v: Json): Json {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone);
  if (isRaw(v)) return v;
  return obj(v.obj.map(([k, x]) => [k, clone(x)]));
}

/** Every container node with a way to replace each of its children (for random mutation). */
export interface Slot {
  /** Path for labels, e.g. `params.arguments.q`. */
  path: string;
  get(): Json;
  replace(v: Json): void;
  /** Removes the member (objects and arrays only). */
  remove(): void;
}

/** All slots of a tree, depth-first (the root itself is not a slot). */
export function slots(root: Json, path = ''): Slot[] {
  const out: Slot[] = [];
  if (Array.isArray(root)) {
    root.forEach((x, i) => {
      const p = `${path}[${i}]`;
      out.push({
        path: p,
        get: () => root[i] ?? null,
        replace: (v) => {
          root[i] = v;
        },
        remove: () => {
          root.splice(i, 1);
        },
      });
      out.push(...slots(x, p));
    });
  } else if (isObj(root)) {
    root.obj.forEach((e, i) => {
      const p = path ? `${path}.${e[0]}` : e[0];
      out.push({
        path: p,
        get: () => e[1],
        replace: (v) => {
          e[1] = v;
        },
        remove: () => {
          const at = root.obj.indexOf(e);
          if (at >= 0) root.obj.splice(at, 1);
        },
      });
      out.push(...slots(e[1], p));
      void i;
    });
  }
  return out;
}

/** Nested arrays/objects `depth` levels deep around `inner`, as text (no recursion on either side). */
export function deepNest(depth: number, kind: 'array' | 'object' | 'mixed', inner = '1'): RawJson {
  if (kind === 'array') return raw('['.repeat(depth) + inner + ']'.repeat(depth));
  if (kind === 'object') return raw('{"a":'.repeat(depth) + inner + '}'.repeat(depth));
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < depth; i++) {
    if (i % 2 === 0) {
      open.push('[');
      close.push(']');
    } else {
      open.push('{"k":');
      close.push('}');
    }
  }
  return raw(open.join('') + inner + close.reverse().join(''));
}
