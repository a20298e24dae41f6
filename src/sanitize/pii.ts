/**
 * Personal data (THREATS T19): e-mail addresses, phone numbers, payment card numbers (Luhn-checked),
 * US social security numbers (area/group/serial rules), IBANs (ISO 13616 mod-97 checked) and,
 * when asked for, IPv4 addresses. Pattern-based: names, street addresses and other free-text PII need
 * a language model and are not found (docs/sanitization.md gives the measured recall per kind).
 */
import type { Finding, PiiKind } from './types.ts';

/**
 * The domain part of an e-mail address, from its `@` (a literal first character lets the regex engine
 * skip ahead; the local part is then read backwards by {@link localPartStart}).
 */
const EMAIL_DOMAIN = /@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;

function isLocalChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x25 ||
    c === 0x2b ||
    c === 0x2d
  );
}

/** Start of the local part ending before `at`, or `at` when there is none (at most 64 characters). */
function localPartStart(text: string, at: number): number {
  let i = at;
  while (i > 0 && at - i < 64 && isLocalChar(text.charCodeAt(i - 1))) i--;
  return i;
}
/**
 * Phone numbers with separators (a bare run of digits is more often an id than a phone): NANP
 * `(555) 123-4567`, `555.123.4567`, `+1 555 123 4567`, international `+CC` forms with 2–5 groups, and
 * national numbers with a trunk `0` in 3–5 groups separated by spaces or dots (`0490 75 40 81`,
 * `01.84.17.61.18`; dashes are left to the US forms, so `000-12-3456` is not a phone number).
 */
const PHONE =
  /(?<![\w+.-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-])|(?<![\w+])\+\d{1,3}(?:\s?\(0\))?(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])|(?<![\w+.-])0\d{1,4}(?:[ .]\d{2,4}){2,4}(?![\w.-])|(?<![\w+.-])\d{3}[ .-]\d{3}[ .-]\d{4}(?![\w-])/g;
const CARD = /(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])/g;
const SSN = /(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])/g;
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g;
const IPV4 = /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])/g;

function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function ibanValid(raw: string): boolean {
  const s = raw.replace(/ /g, '');
  if (s.length < 15 || s.length > 34) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const v = ch >= 'A' && ch <= 'Z' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

const PRECHECK = /@|\d/;

/** Finds PII of the given kinds in `text`; spans are UTF-16 offsets into it. */
export function detectPii(text: string, kinds: readonly PiiKind[]): Finding[] {
  if (kinds.length === 0 || !PRECHECK.test(text)) return [];
  const out: Finding[] = [];
  const add = (rule: PiiKind, start: number, end: number, detail: string): void => {
    out.push({ type: 'pii', rule, start, end, detail });
  };
  const want = new Set(kinds);
  if (want.has('email') && text.includes('@'))
    for (const m of text.matchAll(EMAIL_DOMAIN)) {
      const start = localPartStart(text, m.index);
      if (start < m.index) add('email', start, m.index + m[0].length, 'e-mail address');
    }
  if (want.has('credit-card'))
    for (const m of text.matchAll(CARD)) {
      const digits = m[0].replace(/[ -]/g, '');
      if (digits.length >= 13 && digits.length <= 19 && luhn(digits) && !/^(\d)\1+$/.test(digits))
        add('credit-card', m.index, m.index + m[0].length, 'payment card number (Luhn-valid)');
    }
  if (want.has('us-ssn'))
    for (const m of text.matchAll(SSN)) {
      const [area, group, serial] = [m[1] ?? '', m[2] ?? '', m[3] ?? ''];
      if (area === '000' || area === '666' || area.startsWith('9') || group === '00' || serial === '0000')
        continue;
      add('us-ssn', m.index, m.index + m[0].length, 'US social security number');
    }
  if (want.has('iban'))
    for (const m of text.matchAll(IBAN))
      if (ibanValid(m[0])) add('iban', m.index, m.index + m[0].length, 'IBAN (checksum valid)');
  if (want.has('phone'))
    for (const m of text.matchAll(PHONE)) {
      const digits = m[0].replace(/\D/g, '').length;
      // Fewer than 9 digits is a date or a code more often than a phone number.
      if (digits >= 9 && digits <= 15) add('phone', m.index, m.index + m[0].length, 'phone number');
    }
  if (want.has('ip-address'))
    for (const m of text.matchAll(IPV4)) add('ip-address', m.index, m.index + m[0].length, 'IPv4 address');
  if (out.length < 2) return out;
  // A card or SSN also matches the phone pattern's digit groups: keep the first, longest span.
  out.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Finding[] = [];
  for (const f of out) {
    const last = kept[kept.length - 1];
    if (last && f.start < last.end) continue;
    kept.push(f);
  }
  return kept;
}
