/**
 * `requestState` (SEP-2322) as Gatehouse mints it: AES-256-GCM (node:crypto) over a small JSON payload,
 * so a client can neither read nor alter it. The key is 32 random bytes made when the gateway starts:
 * a state only ever resumes a call held in this process's memory, so it has no reason to outlive it.
 *
 * The payload binds the state to one held call (`s`, random, single-use: the held entry is deleted on
 * first use), the principal (`p`, a hash of its key), the grant (`g`), the request (`m` method, `n`
 * the tool, prompt or resource it names, `a` a digest of its arguments) and an expiry (`e`, epoch ms). It holds no secret: the inputs
 * and the upstream's requests stay in the gateway.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bounds what is decrypted at all: a real state is well under this. */
const MAX_STATE_CHARS = 2048;

const PayloadSchema = z.object({
  s: z.string(),
  p: z.string(),
  g: z.string(),
  m: z.string(),
  n: z.string(),
  a: z.string(),
  e: z.number(),
});
export type StatePayload = z.infer<typeof PayloadSchema>;

export class RequestStateCodec {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    if (key.length !== 32) throw new Error('requestState key must be 32 bytes');
    this.#key = key;
  }

  seal(payload: StatePayload): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The payload, or undefined when the state is malformed, altered or made with another key. */
  open(state: unknown): StatePayload | undefined {
    if (typeof state !== 'string' || state.length > MAX_STATE_CHARS) return undefined;
    const raw = Buffer.from(state, 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES + 2 || raw.toString('base64url') !== state) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const text = Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
      const parsed = PayloadSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}

/** What the state carries for a principal: never the key itself (it names issuer, agent, user). */
export function principalDigest(principalKey: string): string {
  return createHash('sha256').update(principalKey).digest('base64url').slice(0, 22);
}
