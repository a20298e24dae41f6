/**
 * The vocabulary of the result sanitisers (`src/sanitize/`): findings, detector families and actions.
 *
 * Spans: `start`/`end` are UTF-16 code unit offsets into the string that was scanned, `end` exclusive
 * (what `String.prototype.slice` takes). A detector that looks at a normalised view of the text maps its
 * spans back, so a span always points into the ORIGINAL string.
 */

/** The detector family a finding belongs to (the `type` of a `gatehouse scan` finding). */
export type FindingType =
  | 'control-chars'
  | 'invisible-unicode'
  | 'injection'
  | 'secret'
  | 'pii'
  | 'structure'
  | 'definition';

/** Every family, in the order `gatehouse scan` and the docs list them. */
export const FINDING_TYPES: readonly FindingType[] = [
  'control-chars',
  'invisible-unicode',
  'injection',
  'secret',
  'pii',
  'structure',
  'definition',
];

/** One thing a detector found. Never carries a secret value: `detail` names the rule, not the match. */
export interface Finding {
  readonly type: FindingType;
  /** The rule within the family, e.g. `ansi-csi`, `tag-characters`, `ignore-previous`, `aws-access-key-id`. */
  readonly rule: string;
  /** UTF-16 offset of the first code unit (inclusive) in the original string. */
  readonly start: number;
  /** UTF-16 offset after the last code unit (exclusive). */
  readonly end: number;
  /** For people: what was found (e.g. the decoded text of tag characters); never a secret's value. */
  readonly detail: string;
  /** Injection signals: the weight this signal adds to the score (0..1). */
  readonly weight?: number;
}

/**
 * What to do with a family's findings:
 * - `off`: do not run the detector;
 * - `flag`: leave the text, report the findings (`_meta`, audit, metrics);
 * - `redact`: rewrite the spans (strip control and invisible characters, replace secrets and PII with a
 *   marker) and report;
 * - `wrap` (injection only): keep the text but mark it as quoted data and defang fake tags, and report;
 * - `block`: withhold the whole message (a response becomes a `result_blocked` error) and report.
 */
export type Action = 'off' | 'flag' | 'redact' | 'wrap' | 'block';

/** The detector families a profile configures (one action each). */
export interface FamilyActions {
  readonly controlChars: Action;
  readonly invisibleUnicode: Action;
  readonly injection: Action;
  readonly secrets: Action;
  readonly pii: Action;
  readonly structure: Action;
}

/** The profile key of each finding type (`definition` findings follow `injection`). */
export const FAMILY_OF: Readonly<Record<FindingType, keyof FamilyActions>> = {
  'control-chars': 'controlChars',
  'invisible-unicode': 'invisibleUnicode',
  injection: 'injection',
  secret: 'secrets',
  pii: 'pii',
  structure: 'structure',
  definition: 'injection',
};

/** PII kinds the `pii` detector knows. */
export type PiiKind = 'email' | 'phone' | 'credit-card' | 'us-ssn' | 'iban' | 'ip-address';

/** Everything that decides what the sanitisers do with one text (one server/tool). */
export interface SanitizeProfile {
  readonly actions: FamilyActions;
  /** Injection score (0..1) at or above which injection signals become findings. */
  readonly injectionThreshold: number;
  /** PII kinds looked for when `actions.pii` is not `off`. */
  readonly piiKinds: readonly PiiKind[];
  /**
   * Secret matches to let through: exact values, or regular expressions a match must match whole
   * (documented example keys, test fixtures). Compared with the matched text.
   */
  readonly secretAllow?: readonly (string | RegExp)[];
  /** Secret rule ids (rules/secrets.json) not to run. */
  readonly secretRulesOff?: readonly string[];
}

/** The default profile: flag injection and PII, strip control/invisible characters, redact secrets. */
export const DEFAULT_PROFILE: SanitizeProfile = Object.freeze({
  actions: Object.freeze({
    controlChars: 'redact',
    invisibleUnicode: 'redact',
    injection: 'flag',
    secrets: 'redact',
    // PII is an optional profile (config sanitize.defaults.pii, `gatehouse scan --pii`): addresses and
    // phone numbers are what e-mails, tickets and records legitimately carry.
    pii: 'off',
    structure: 'flag',
  }),
  injectionThreshold: 0.5,
  piiKinds: Object.freeze(['email', 'phone', 'credit-card', 'us-ssn', 'iban'] as const),
});
