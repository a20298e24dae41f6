/**
 * `bytes`: byte-level mutations of valid /mcp bodies (bit flips, truncation, invalid UTF-8, BOMs,
 * NUL, splices, trailing garbage, whitespace floods, other encodings), sent well-framed in a real
 * session, so everything after the HTTP layer sees them.
 */
import type { Family } from '../core.ts';
import type { Rng } from '../rng.ts';
import { pickSlot, probeFor, validMessageText } from './jsonrpc.ts';

/** Byte sequences that are not valid UTF-8 (overlong, surrogates, out of range, truncated, stray). */
const INVALID_UTF8: readonly number[][] = [
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xe0, 0x80, 0xaf],
];

const INTERESTING = [
  0x00, 0xff, 0x7f, 0x80, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x0a, 0x0d, 0x20, 0x30,
];

function insert(buf: Buffer, at: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
}

/** Positions inside JSON strings (between quotes), so invalid bytes land where a decoder keeps them. */
function insideString(rng: Rng, buf: Buffer): number {
  const quotes: number[] = [];
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x22) quotes.push(i);
  if (quotes.length < 2) return rng.int(buf.length + 1);
  const k = rng.int(Math.floor(quotes.length / 2)) * 2;
  const a = quotes[k] ?? 0;
  const b = quotes[k + 1] ?? a + 1;
  return a + 1 + rng.int(Math.max(1, b - a));
}

/** One byte-level mutation; returns the new body and a label. */
function mutateBytes(rng: Rng, body: Buffer, maxBytes: number): { body: Buffer; op: string } {
  const op = rng.weighted<string>([
    [5, 'bitflip'],
    [4, 'byte'],
    [4, 'truncate'],
    [6, 'invalid-utf8'],
    [2, 'invalid-utf8-anywhere'],
    [3, 'bom'],
    [3, 'nul'],
    [2, 'splice-dup'],
    [2, 'splice-del'],
    [2, 'trailing'],
    [2, 'whitespace'],
    [1, 'utf16'],
    [1, 'oversize'],
    [1, 'random'],
  ]);
  const b = Buffer.from(body);
  switch (op) {
    case 'bitflip': {
      const n = rng.range(1, 8);
      for (let i = 0; i < n && b.length > 0; i++) {
        const at = rng.int(b.length);
        b[at] = (b[at] ?? 0) ^ (1 << rng.int(8));
      }
      return { body: b, op };
    }
    case 'byte': {
      const n = rng.range(1, 4);
      for (let i = 0; i < n && b.length > 0; i++)
        b[rng.int(b.length)] = rng.chance(0.7) ? rng.pick(INTERESTING) : rng.int(256);
      return { body: b, op };
    }
    case 'truncate':
      return { body: b.subarray(0, rng.int(b.length)), op };
    case 'invalid-utf8':
      return { body: insert(b, insideString(rng, b), Buffer.from(rng.pick(INVALID_UTF8))), op };
    case 'invalid-utf8-anywhere':
      return { body: insert(b, rng.int(b.length + 1), Buffer.from(rng.pick(INVALID_UTF8))), op };
    case 'bom':
      return {
        body: Buffer.concat([
          Buffer.from(
            rng.pick([
              [0xef, 0xbb, 0xbf],
              [0xff, 0xfe],
              [0xfe, 0xff],
              [0x00, 0x00, 0xfe, 0xff],
              [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf],
            ]),
          ),
          b,
        ]),
        op,
      };
    case 'nul': {
      const where = rng.pick(['start', 'end', 'string', 'anywhere', 'many']);
      if (where === 'start') return { body: Buffer.concat([Buffer.from([0]), b]), op: `nul-${where}` };
      if (where === 'end')
        return { body: Buffer.concat([b, Buffer.alloc(rng.range(1, 64))]), op: `nul-${where}` };
      if (where === 'many') return { body: Buffer.alloc(rng.range(1, 4096)), op: `nul-${where}` };
      return {
        body: insert(b, where === 'string' ? insideString(rng, b) : rng.int(b.length + 1), Buffer.from([0])),
        op: `nul-${where}`,
      };
    }
    case 'splice-dup': {
      const a = rng.int(b.length + 1);
      const len = rng.int(b.length - a + 1);
      return { body: insert(b, rng.int(b.length + 1), b.subarray(a, a + len)), op };
    }
    case 'splice-del': {
      const a = rng.int(b.length + 1);
      const len = rng.int(b.length - a + 1);
      return { body: Buffer.concat([b.subarray(0, a), b.subarray(a + len)]), op };
    }
    case 'trailing':
      return {
        body: Buffer.concat([
          b,
          Buffer.from(
            rng.pick([
              'x',
              '\n',
              '}',
              ']',
              ',',
              '\n' + b.toString('latin1'),
              b.toString('latin1'),
              '\u0000',
              ' \t\r\n',
            ]),
          ),
        ]),
        op,
      };
    case 'whitespace': {
      const ws = rng.pick([' ', '\t', '\r\n', '\n', '\u00a0', '\u2028', '\u3000', '\f', '\v']);
      const n = rng.size(Math.floor(maxBytes / 4));
      const pad = Buffer.from(ws.repeat(Math.max(1, Math.floor(n / Buffer.byteLength(ws)))));
      return {
        body: rng.chance(0.5) ? Buffer.concat([pad, b]) : insert(b, rng.int(b.length + 1), pad),
        op: `whitespace`,
      };
    }
    case 'utf16':
      return { body: Buffer.from(b.toString('utf8'), rng.chance(0.5) ? 'utf16le' : 'latin1'), op };
    case 'oversize': {
      const target = maxBytes + rng.range(-8, 8);
      const pad = Math.max(0, target - b.length);
      return { body: Buffer.concat([Buffer.from(' '.repeat(pad)), b]), op: `oversize ${target - maxBytes}` };
    }
    default:
      return { body: rng.bytes(rng.size(4096)), op };
  }
}

/** The `bytes` family. */
export const bytesFamily: Family = {
  name: 'bytes',
  async generate(rng, ctx, index) {
    const { text, method } = validMessageText(rng, index * 8 + 1);
    let body: Buffer = Buffer.from(text);
    const ops: string[] = [];
    const n = rng.weighted([
      [60, 1],
      [25, 2],
      [15, 4],
    ]);
    for (let i = 0; i < n; i++) {
      const m = mutateBytes(rng, body, ctx.limits.maxRequestBytes);
      body = m.body;
      ops.push(m.op);
    }
    const slot = pickSlot(rng);
    return [await probeFor(ctx, body, `${method} [${ops.join(',')}]`, slot)];
  },
};
