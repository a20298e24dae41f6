// Token verification cost: `node --import tsx bench/token-verify.ts`.
// First sight (signature verification + claim checks + principal mapping) for ES256 and EdDSA over
// N fresh tokens, and the verified-token cache hit for one token seen before. Keys are in-process
// (localJwks): this measures the verifier, not the network. A raw jose jwtVerify is measured as the
// reference. Writes bench/token-verify.json (flat keys). Env: BENCH_TOKENS (2000), BENCH_CACHED (50000).
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT } from 'jose';
import { createTokenVerifier } from '../src/auth/verify/index.ts';

const N = envInt('BENCH_TOKENS', 2000);
const CACHED = envInt('BENCH_CACHED', 50_000);
const WARMUP = Math.min(200, N);
const ISSUER = 'https://as.bench.example';
const AUDIENCE = 'https://gatehouse.bench.example/mcp';

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

type Alg = 'ES256' | 'EdDSA';

interface Signer {
  alg: Alg;
  kid: string;
  sign: (i: number) => Promise<string>;
  jwk: JWK;
}

async function signer(alg: Alg): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-1`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  return {
    alg,
    kid,
    jwk,
    sign: (i) =>
      new SignJWT({
        iss: ISSUER,
        aud: AUDIENCE,
        sub: `user-${i}`,
        client_id: 'agent-bench',
        scope: 'tools:read tools:call',
        tenant: 'acme',
        act: { sub: 'orchestrator' },
        jti: randomUUID(),
        iat: now,
        exp: now + 3600,
      })
        .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
        .sign(privateKey),
  };
}

function stats(samples: number[]): { p50: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number =>
    s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
  const round = (v: number): number => Math.round(v * 100) / 100;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}

/** Times each call in µs, sequentially. */
async function timeEach(items: readonly string[], fn: (t: string) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (const t of items) {
    const t0 = process.hrtime.bigint();
    await fn(t);
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

async function main(): Promise<void> {
  const signers = await Promise.all([signer('ES256'), signer('EdDSA')]);
  const jwks = { keys: signers.map((s) => s.jwk) };
  const results: Record<string, number | string> = {
    token_first_sight_n: N,
    token_cached_n: CACHED,
  };
  const rows: [string, { p50: number; p99: number }][] = [];

  for (const s of signers) {
    const warm = await Promise.all(Array.from({ length: WARMUP }, (_, i) => s.sign(i)));
    const fresh = await Promise.all(Array.from({ length: N }, (_, i) => s.sign(WARMUP + i)));
    const key = s.alg.toLowerCase();

    // Reference: jose alone, same checks, no cache, no mapping.
    const local = createLocalJWKSet(jwks);
    const raw = (t: string) =>
      jwtVerify(t, local, { issuer: ISSUER, audience: AUDIENCE, algorithms: [s.alg] });
    await timeEach(warm, raw);
    const rawStats = stats(await timeEach(fresh, raw));
    results[`token_jose_jwtverify_${key}_us_p50`] = rawStats.p50;
    results[`token_jose_jwtverify_${key}_us_p99`] = rawStats.p99;
    rows.push([`jose jwtVerify (${s.alg}, reference)`, rawStats]);

    const verifier = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, localJwks: () => jwks });
    await timeEach(warm, (t) => verifier.verify(t));
    const first = stats(await timeEach(fresh, (t) => verifier.verify(t)));
    results[`token_first_sight_${key}_us_p50`] = first.p50;
    results[`token_first_sight_${key}_us_p99`] = first.p99;
    rows.push([`first sight (${s.alg})`, first]);
    await verifier.close?.();
  }

  // Cache hit: one token, seen before, with an isRevoked check as the gateway would configure.
  const es = signers[0];
  if (!es) throw new Error('no signer');
  const revoked = new Set<string>();
  const verifier = createTokenVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    localJwks: () => jwks,
    isRevoked: (p) => p.tokenId !== undefined && revoked.has(p.tokenId),
  });
  const token = await es.sign(0);
  await verifier.verify(token);
  const same = Array.from({ length: CACHED }, () => token);
  await timeEach(same.slice(0, 5_000), (t) => verifier.verify(t));
  const cached = stats(await timeEach(same, (t) => verifier.verify(t)));
  results['token_cached_us_p50'] = cached.p50;
  results['token_cached_us_p99'] = cached.p99;
  rows.push(['cached (same token, isRevoked checked)', cached]);
  await verifier.close?.();

  const w = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`${'case'.padEnd(w)}  ${'p50 µs'.padStart(9)}  ${'p99 µs'.padStart(9)}\n`);
  for (const [name, st] of rows) {
    process.stdout.write(
      `${name.padEnd(w)}  ${st.p50.toFixed(2).padStart(9)}  ${st.p99.toFixed(2).padStart(9)}\n`,
    );
  }
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'token-verify.json');
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`token-verify bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
