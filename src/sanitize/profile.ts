/**
 * Profiles from configuration: the `sanitize` config section (src/config/sections/sanitize.ts) gives
 * default actions and per-tool overrides keyed by exposed tool name or glob (`github__*`), the first
 * matching key in file order winning, as in `policy.tools`. Resolved profiles are cached per name.
 */
import {
  type Action,
  DEFAULT_PROFILE,
  type FamilyActions,
  type FindingType,
  type PiiKind,
  type SanitizeProfile,
} from './types.ts';

/** Per-family actions as written in config (any may be left out). */
export type ActionOverrides = { readonly [K in keyof FamilyActions]?: Action | undefined };

/** The `sanitize` config section, structurally (so this library does not import the config layer). */
export interface SanitizeSettings {
  readonly enabled: boolean;
  readonly defaults: ActionOverrides;
  readonly injectionThreshold: number;
  readonly pii: readonly PiiKind[];
  readonly secrets: { readonly allow: readonly string[]; readonly disable: readonly string[] };
  readonly maxTextChars: number;
  readonly maxImageBytes: number;
  readonly maxResourceBytes: number;
  readonly tools: Readonly<
    Record<string, ActionOverrides & { readonly injectionThreshold?: number | undefined }>
  >;
  /** What taints a grant (config `sanitize.taint`); absent: nothing by source, injection and invisible-unicode findings. */
  readonly taint?: {
    readonly sources: readonly string[];
    readonly findings: readonly FindingType[];
  };
}

/** Finding families that taint by default (config `sanitize.taint.findings`). */
const DEFAULT_TAINT_FINDINGS: readonly FindingType[] = ['injection', 'invisible-unicode'];

/** `/re/flags` is a regular expression; anything else an exact value. */
export function parseAllow(entry: string): string | RegExp {
  const m = /^\/(.+)\/([dimsuy]*)$/s.exec(entry);
  if (!m) return entry;
  try {
    return new RegExp(m[1] ?? '', m[2]);
  } catch {
    return entry;
  }
}

function globToRegExp(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

function merge(base: FamilyActions, o: ActionOverrides): FamilyActions {
  const out: Record<keyof FamilyActions, Action> = { ...base };
  for (const k of Object.keys(base) as (keyof FamilyActions)[]) {
    const v = o[k];
    if (v !== undefined) out[k] = v;
  }
  return Object.freeze(out);
}

/** Resolves profiles for tool names from one settings object. */
export class ProfileResolver {
  readonly #settings: SanitizeSettings;
  readonly #base: SanitizeProfile;
  readonly #keys: Array<[RegExp | string, SanitizeSettings['tools'][string]]>;
  readonly #cache = new Map<string, SanitizeProfile>();
  readonly #taintSources: Array<RegExp | string>;
  readonly #taintCache = new Map<string, boolean>();
  readonly #taintFindings: ReadonlySet<FindingType>;

  constructor(settings: SanitizeSettings) {
    this.#settings = settings;
    const off: FamilyActions = {
      controlChars: 'off',
      invisibleUnicode: 'off',
      injection: 'off',
      secrets: 'off',
      pii: 'off',
      structure: 'off',
    };
    this.#base = Object.freeze({
      actions: settings.enabled ? merge(DEFAULT_PROFILE.actions, settings.defaults) : off,
      injectionThreshold: settings.injectionThreshold,
      piiKinds: Object.freeze([...settings.pii]),
      secretAllow: Object.freeze(settings.secrets.allow.map(parseAllow)),
      secretRulesOff: Object.freeze([...settings.secrets.disable]),
    });
    this.#keys = Object.entries(settings.tools).map(([k, v]) => [k.includes('*') ? globToRegExp(k) : k, v]);
    this.#taintSources = (settings.taint?.sources ?? []).map((k) => (k.includes('*') ? globToRegExp(k) : k));
    this.#taintFindings = new Set(settings.taint?.findings ?? DEFAULT_TAINT_FINDINGS);
  }

  /**
   * Whether results of this exposed tool name (or prompt name, resource URI) are external content
   * (`sanitize.taint.sources`): receiving one taints the grant, findings or not.
   */
  externalSource(name: string | undefined): boolean {
    if (name === undefined || this.#taintSources.length === 0) return false;
    let hit = this.#taintCache.get(name);
    if (hit === undefined) {
      hit = this.#taintSources.some((k) => (typeof k === 'string' ? k === name : k.test(name)));
      if (this.#taintCache.size < 10_000) this.#taintCache.set(name, hit);
    }
    return hit;
  }

  /** Whether a finding of this family taints the grant that receives it (`sanitize.taint.findings`). */
  taints(type: FindingType): boolean {
    return this.#taintFindings.has(type);
  }

  /** Whether any sanitiser runs at all. */
  get enabled(): boolean {
    return this.#settings.enabled;
  }

  /** Size caps of the structure checks. */
  get caps(): { maxTextChars: number; maxImageBytes: number; maxResourceBytes: number } {
    const s = this.#settings;
    return {
      maxTextChars: s.maxTextChars,
      maxImageBytes: s.maxImageBytes,
      maxResourceBytes: s.maxResourceBytes,
    };
  }

  /** The profile for an exposed tool name (or prompt name, resource URI); `undefined` → the defaults. */
  profileFor(name: string | undefined): SanitizeProfile {
    if (name === undefined || !this.#settings.enabled) return this.#base;
    let p = this.#cache.get(name);
    if (p !== undefined) return p;
    const hit = this.#keys.find(([k]) => (typeof k === 'string' ? k === name : k.test(name)))?.[1];
    p = hit
      ? Object.freeze({
          ...this.#base,
          actions: merge(this.#base.actions, hit),
          injectionThreshold: hit.injectionThreshold ?? this.#base.injectionThreshold,
        })
      : this.#base;
    if (this.#cache.size < 10_000) this.#cache.set(name, p);
    return p;
  }
}
