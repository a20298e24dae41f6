/**
 * Values are normalised once, at parse time (T31): what JSON allows but JSON-RPC, MCP or Unicode cannot
 * mean is refused before any stage, policy, audit record, log line or upstream sees it. Downstream code
 * may then assume well-formed data: finite numbers, well-formed strings (no unpaired surrogates),
 * bounded depth, lengths and sizes.
 *
 * RFC 8259 §8.2: "the ABNF [...] allows member names and string values to contain bit sequences that
 * cannot encode Unicode characters; for example, "\uDEAD" (a single unpaired UTF-16 surrogate). [...]
 * the behavior of software that receives JSON texts containing such values is unpredictable".
 * RFC 8259 §9: "An implementation may set limits on the size of texts that it accepts [...] on the
 * maximum depth of nesting [...] on the range and precision of numbers [...] on the length and
 * character contents of strings."
 */

import { clip } from '../util/clip.ts';

/** The limits values are checked against (config `limits`). */
export interface ValueLimits {
  readonly maxJsonDepth: number;
  readonly maxStringLength: number;
  readonly maxNameLength: number;
  readonly maxCollectionSize: number;
}

/** Bodies up to this size cannot nest deep enough to cost memory; larger ones are scanned before parsing. */
const PRESCAN_BYTES = 16 * 1024;

/**
 * Nesting depth of a JSON text, counted on its bytes without decoding (strings skipped), stopping as
 * soon as it exceeds `max`. JSON.parse itself is iterative, but a 4 MiB body of `[` builds two million
 * nested arrays (tens of MB) before any check could run, so large bodies are refused here first.
 */
export function exceedsDepth(body: Buffer, max: number): boolean {
  if (body.length <= PRESCAN_BYTES) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: the next byte is escaped
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/** A container being walked, with what is needed to name its path on failure. */
interface Frame {
  readonly value: object;
  readonly depth: number;
  readonly parent: Frame | undefined;
  readonly key: string | number;
}

/** Why a value is refused, and the JSON pointer (RFC 6901) of the offending value. */
export interface ValueProblem {
  readonly reason: string;
  readonly pointer: string;
}

/**
 * Checks a decoded JSON value without recursion: depth, string and key lengths, unpaired surrogates
 * (strings and member names), non-finite numbers (`1e999` parses to Infinity), and array/object sizes.
 * `depth` is the depth of `root` itself (1 for a message, 2 for its params).
 */
export function checkValue(root: unknown, limits: ValueLimits, depth = 1): ValueProblem | undefined {
  const first = checkScalar(root, limits);
  if (first !== undefined) return { reason: first, pointer: '' };
  if (typeof root !== 'object' || root === null) return undefined;
  const stack: Frame[] = [{ value: root, depth, parent: undefined, key: '' }];
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    if (frame.depth > limits.maxJsonDepth)
      return problem(frame, undefined, `nesting deeper than limits.maxJsonDepth (${limits.maxJsonDepth})`);
    if (Array.isArray(frame.value)) {
      const arr: unknown[] = frame.value;
      if (arr.length > limits.maxCollectionSize)
        return problem(
          frame,
          undefined,
          `array longer than limits.maxCollectionSize (${limits.maxCollectionSize})`,
        );
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i];
        const why = checkScalar(v, limits);
        if (why !== undefined) return problem(frame, i, why);
        if (typeof v === 'object' && v !== null)
          stack.push({ value: v, depth: frame.depth + 1, parent: frame, key: i });
      }
      continue;
    }
    const obj = frame.value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length > limits.maxCollectionSize)
      return problem(
        frame,
        undefined,
        `object larger than limits.maxCollectionSize (${limits.maxCollectionSize})`,
      );
    for (const k of keys) {
      if (k.length > limits.maxNameLength)
        return problem(
          frame,
          undefined,
          `member name longer than limits.maxNameLength (${limits.maxNameLength})`,
        );
      if (!k.isWellFormed())
        return problem(frame, undefined, 'member name with an unpaired UTF-16 surrogate');
      const v = obj[k];
      const why = checkScalar(v, limits);
      if (why !== undefined) return problem(frame, k, why);
      if (typeof v === 'object' && v !== null)
        stack.push({ value: v, depth: frame.depth + 1, parent: frame, key: k });
    }
  }
  return undefined;
}

function checkScalar(v: unknown, limits: ValueLimits): string | undefined {
  if (typeof v === 'string') {
    if (v.length > limits.maxStringLength)
      return `string longer than limits.maxStringLength (${limits.maxStringLength})`;
    if (!v.isWellFormed()) return 'string with an unpaired UTF-16 surrogate';
  } else if (typeof v === 'number' && !Number.isFinite(v)) return 'number out of range (not finite)';
  return undefined;
}

function problem(frame: Frame, key: string | number | undefined, reason: string): ValueProblem {
  const parts: (string | number)[] = key === undefined ? [] : [key];
  for (let f: Frame | undefined = frame; f?.parent !== undefined; f = f.parent) parts.push(f.key);
  const pointer = parts
    .reverse()
    .map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`)
    .join('');
  return { reason, pointer: clip(pointer, 200) };
}
