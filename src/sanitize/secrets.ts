/**
 * Secret patterns (THREATS T19, T20): keys, tokens, private keys and connection strings, from the rule
 * set in `rules/secrets.json` (coverage of the secretlint recommended preset; see that file's `source`
 * and docs/data-attributions.md). Exact-match redaction of the secrets the gateway itself holds is the
 * leak guard's job (`src/secrets/leak-guard.ts`, stage `redact-secrets`); this detector finds secrets
 * the gateway never saw.
 *
 * Cost: running 36 regular expressions over every result would cost more than the request path can
 * pay, so each rule names keywords and only candidate rules run. A `token` rule is a candidate when one
 * of its keywords occurs inside a run of 16+ token characters (`[A-Za-z0-9_+/=.-]`: found with one
 * simple regex); a `text` rule (key names, URLs with credentials, PEM armour) when one of its keywords
 * occurs anywhere (one case-insensitive regex of the few text keywords).
 */
import rules from './rules/secrets.json' with { type: 'json' };
import type { Finding } from './types.ts';

/** One rule as stored in rules/secrets.json. */
interface RuleData {
  readonly id: string;
  readonly title: string;
  readonly trigger: string;
  readonly keywords: readonly string[];
  readonly pattern: string;
  readonly flags: string;
  readonly group: number;
  readonly check?: string;
}

interface Rule extends RuleData {
  readonly re: RegExp;
}

/** Values that mark an example, not a credential (compared lower-case, whole value). */
const PLACEHOLDERS = new Set([
  'password',
  'passwd',
  'pass',
  'pwd',
  'secret',
  'username',
  'user',
  'usr',
  'admin',
  'root',
  'mypassword',
  'myusername',
  'your_password',
  'your_username',
  'yourpassword',
  'yourusername',
  'replace_with_password',
  'changeme',
  'example',
  'xxx',
  'xxxx',
  'xxxxxx',
  'xxxxxxxx',
  '...',
  '***',
  '****',
  '******',
  '********',
  'token',
  'apikey',
  'api_key',
  'dummy',
  'test',
]);

/** Template variables: `${X}`, `{{x}}`, `{x}`, `%X%`, `$X`, `$(x)`, `<x>`. */
const VARIABLE =
  /\$\{[^}]{1,80}\}|\{\{[^}]{1,80}\}\}|\{[^}]{1,80}\}|%[A-Za-z_]{1,40}%|\$[A-Z_]{1,40}|\$\([^)]{1,80}\)|<[^>]{1,40}>/;

function isPlaceholder(v: string): boolean {
  const l = v.toLowerCase();
  return (
    PLACEHOLDERS.has(l) ||
    VARIABLE.test(v) ||
    /^(.)\1{3,}$/.test(v) ||
    /^(?:your|my|example|sample|dummy|fake|placeholder)(?:[_-]|(?=pass|user|secret|token|key|name))/i.test(v)
  );
}

/** Extra checks on a match, by name (the rule file names them). */
const CHECKS = new Map<string, (m: RegExpExecArray) => boolean>([
  // user:password pairs: skip placeholders, templates and user == password (documentation examples).
  [
    'credential-pair',
    (m) => {
      const user = decodeURIComponentSafe(m[1] ?? '');
      const pass = decodeURIComponentSafe(m[2] ?? '');
      if (pass.length < 3 || user === pass) return false;
      return (
        !isPlaceholder(pass) && !(isPlaceholder(user) && /^(?:pass(?:word)?|secret|pwd)\w*$/i.test(pass))
      );
    },
  ],
  // Credentials in a URL: as above, but `user:pass` in a URL is a real (if weak) credential.
  [
    'url-credentials',
    (m) => {
      const user = decodeURIComponentSafe(m[1] ?? '');
      const pass = decodeURIComponentSafe(m[2] ?? '');
      if (pass.length < 4 || user === pass || VARIABLE.test(user) || VARIABLE.test(pass)) return false;
      if (/^(.)\1{3,}$/.test(pass)) return false;
      if (/^(?:your|my|replace|example|sample|dummy|fake|placeholder|insert|enter)[_-]?/i.test(pass))
        return false;
      return !/^(?:password|passwd|changeme|secret|xxx+|\*+|\.+)$/i.test(pass);
    },
  ],
  ['not-variable', (m) => !isPlaceholder(m[1] ?? '')],
  // A PEM body must look like key material: enough base64 after removing whitespace and escaped newlines.
  [
    'pem-body',
    (m) => {
      const body = (m[1] ?? '').replace(/\\[nr]|\s|[A-Za-z-]+:[^\n\\]*/g, '');
      return /^[A-Za-z0-9+/=]{64,}$/.test(body) && !/^(?:[A-Za-z0-9+/]{1,4}={0,2})$/.test(body);
    },
  ],
  // 1Password service account tokens are base64url JSON: the decoded payload must be JSON.
  [
    'ops-json',
    (m) => {
      try {
        JSON.parse(Buffer.from(m[0].slice(4), 'base64url').toString('utf8'));
        return true;
      } catch {
        return false;
      }
    },
  ],
]);

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const RULES: readonly Rule[] = (rules.rules as readonly RuleData[]).map((r) => {
  if (r.check !== undefined && !CHECKS.has(r.check))
    throw new Error(`rules/secrets.json: rule ${r.id} names an unknown check \`${r.check}\``);
  // `d` gives group indices, for rules whose finding is one capture group.
  return { ...r, re: new RegExp(r.pattern, `g${r.flags}${r.group > 0 ? 'd' : ''}`) };
});

/** Keyword (lower case) → token rules it makes candidates. */
const TOKEN_KEYWORDS = new Map<string, Rule[]>();
/** Keyword (lower case) → text rules. */
const TEXT_KEYWORDS = new Map<string, Rule[]>();
for (const r of RULES) {
  const table = r.trigger === 'text' ? TEXT_KEYWORDS : TOKEN_KEYWORDS;
  for (const k of r.keywords) table.set(k, [...(table.get(k) ?? []), r]);
}
/** A run of token characters; the lookbehind makes it start only at a run's start (linear, not quadratic). */
const TOKEN_RUN = /(?<![A-Za-z0-9_+/=.-])[A-Za-z0-9_+/=.-]{16,}/g;
const TOKEN_KEYWORD_RE = new RegExp([...TOKEN_KEYWORDS.keys()].map(escapeRe).join('|'), 'gi');
const TEXT_KEYWORD_RE = new RegExp([...TEXT_KEYWORDS.keys()].map(escapeRe).join('|'), 'gi');

/** The rules that could match `text` (see the module comment). */
function candidates(text: string): Set<Rule> {
  const out = new Set<Rule>();
  for (const m of text.matchAll(TEXT_KEYWORD_RE))
    for (const r of TEXT_KEYWORDS.get(m[0].toLowerCase()) ?? []) out.add(r);
  for (const run of text.matchAll(TOKEN_RUN)) {
    for (const m of run[0].matchAll(TOKEN_KEYWORD_RE))
      for (const r of TOKEN_KEYWORDS.get(m[0].toLowerCase()) ?? []) out.add(r);
  }
  return out;
}

/** The ids and titles of every rule, for docs and `gatehouse scan`. */
export const SECRET_RULES: readonly { id: string; title: string }[] = RULES.map((r) => ({
  id: r.id,
  title: r.title,
}));

/** Which matches to let through and which rules not to run. */
export interface SecretOptions {
  readonly allow?: readonly (string | RegExp)[] | undefined;
  readonly rulesOff?: readonly string[] | undefined;
}

function allowed(value: string, allow: readonly (string | RegExp)[]): boolean {
  return allow.some((a) => {
    if (typeof a === 'string') return a === value;
    const m = a.exec(value);
    a.lastIndex = 0;
    return m !== null && m[0] === value;
  });
}

/**
 * Finds secrets in `text`; spans are UTF-16 offsets into it. Overlapping matches of different rules
 * (a JWT inside a connection string) are kept once, the earliest and longest first.
 */
export function detectSecrets(text: string, opts: SecretOptions = {}): Finding[] {
  const found: Finding[] = [];
  const allow = opts.allow ?? [];
  for (const rule of candidates(text)) {
    if (opts.rulesOff?.includes(rule.id)) continue;
    const check = rule.check === undefined ? undefined : CHECKS.get(rule.check);
    rule.re.lastIndex = 0;
    for (let m = rule.re.exec(text); m !== null; m = rule.re.exec(text)) {
      if (m[0].length === 0) {
        rule.re.lastIndex++;
        continue;
      }
      if (check && !check(m)) continue;
      const span = rule.group > 0 ? m.indices?.[rule.group] : undefined;
      const [start, end] = span ?? [m.index, m.index + m[0].length];
      if (allow.length > 0 && (allowed(text.slice(start, end), allow) || allowed(m[0], allow))) continue;
      found.push({ type: 'secret', rule: rule.id, start, end, detail: rule.title });
    }
  }
  if (found.length < 2) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  for (const f of found) {
    const last = out[out.length - 1];
    if (last && f.start < last.end) continue;
    out.push(f);
  }
  return out;
}
