/**
 * CLI verbs of the embedded authorization server:
 *
 *   gatehouse users add NAME    (password on stdin, never an argument)
 *   gatehouse users list
 *   gatehouse users rm NAME
 *   gatehouse token --client ID [--scope S] [--user U] [--url GATEHOUSE_URL]
 *
 * All take --data-dir DIR (default ./.gatehouse) and --config FILE.
 */
import {
  ACCESS_TOKEN_TYPE,
  DEMO_CLIENT_ID,
  demoSecretPath,
  resolveSecret,
  TOKEN_EXCHANGE,
} from '../auth/as/clients.ts';
import { loadKeys } from '../auth/as/keys.ts';
import { mintAccessToken } from '../auth/as/mint.ts';
import { hashPassword, MIN_PASSWORD_LENGTH } from '../auth/as/passwords.ts';
import { LOCAL_SUBJECT_TOKEN_TTL_SEC, revocationLifetimes, revocationRecord } from '../auth/revocation.ts';
import {
  type CliIo,
  configFor,
  openDataDir,
  openStorage,
  PROCESS_IO,
  parseCli,
  readHidden,
  STATE_OPTIONS,
} from './shared.ts';

export const AUTH_USAGE = `  users add NAME | users list | users rm NAME  [--data-dir DIR] [--config FILE]
        manage local users of the embedded authorization server
        (add reads the password from stdin, at least ${MIN_PASSWORD_LENGTH} characters;
        rm also ends the user's grants and revokes the tokens issued to them)
  token --client ID [--scope S] [--user U] [--url GATEHOUSE_URL] [--data-dir DIR] [--config FILE]
        get an access token from a running gateway (client_credentials);
        with --user, a token that acts for that local user (token exchange)
`;

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;

async function users(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, STATE_OPTIONS);
  const [sub, name, ...extra] = positionals;
  if (extra.length > 0 || (sub !== 'list' && !name) || (sub === 'list' && name)) {
    io.stderr.write(`usage: gatehouse users add NAME | list | rm NAME [--data-dir DIR] [--config FILE]\n`);
    return 2;
  }
  const config = configFor(values.config);
  if (sub === 'add' && name) {
    if (!USERNAME.test(name)) {
      io.stderr.write('gatehouse: user names use letters, digits and . _ @ - (1-64 characters)\n');
      return 2;
    }
    const secret = await readHidden(io, 'password: ');
    const password = secret.toString('utf8');
    secret.fill(0);
    if (password.length < MIN_PASSWORD_LENGTH) {
      io.stderr.write(`gatehouse: password must be at least ${MIN_PASSWORD_LENGTH} characters\n`);
      return 1;
    }
    const storage = openStorage(config, values['data-dir'], io.stderr);
    try {
      if (await storage.users.get(name)) {
        io.stderr.write(`gatehouse: user ${name} already exists\n`);
        return 1;
      }
      await storage.users.add({
        username: name,
        passwordHash: await hashPassword(password),
        createdAt: Date.now(),
      });
    } finally {
      await storage.close();
    }
    io.stdout.write(`user ${name} added\n`);
    return 0;
  }
  const storage = openStorage(config, values['data-dir'], io.stderr);
  try {
    if (sub === 'list') {
      for (const u of await storage.users.list()) {
        // Users of the upstream identity provider have no local password: say where they log in.
        const source = u.external ? `idp ${u.external.issuer}` : 'local';
        io.stdout.write(`${u.username}\t${new Date(u.createdAt).toISOString()}\t${source}\n`);
      }
      return 0;
    }
    if (sub === 'rm' && name) {
      // One transaction: the user, the grants they hold and every token issued to them go together.
      // Running gateways refuse the tokens and end the grants on their next poll (250 ms).
      const now = Date.now();
      const reason = 'user removed';
      const ended = await storage.transaction(async (tx) => {
        if (!(await tx.users.remove(name))) return undefined;
        const ids = await tx.grants.end({ user: name }, reason, now);
        await tx.revocations.add(
          revocationRecord(
            { kind: 'user', user: name },
            { now, reason, lifetimes: revocationLifetimes(config) },
          ),
        );
        return ids;
      });
      if (!ended) {
        io.stderr.write(`gatehouse: no user ${name}\n`);
        return 1;
      }
      io.stdout.write(
        `user ${name} removed; tokens issued to them are revoked` +
          `${ended.length > 0 ? `, ${ended.length} grant(s) ended` : ''}\n`,
      );
      return 0;
    }
  } finally {
    await storage.close();
  }
  io.stderr.write(`gatehouse: unknown users command \`${sub}\`\n`);
  return 2;
}

interface TokenResponse {
  access_token?: string;
  error?: string;
  error_description?: string;
}

async function postToken(
  endpoint: string,
  clientId: string,
  secret: string,
  form: Record<string, string>,
): Promise<TokenResponse & { status: number }> {
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString(
    'base64',
  );
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: new URLSearchParams(form).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as TokenResponse;
  return { ...body, status: res.status };
}

async function token(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    ...STATE_OPTIONS,
    client: { type: 'string' },
    scope: { type: 'string' },
    user: { type: 'string' },
    url: { type: 'string' },
  });
  if (!values.client || positionals.length > 0) {
    io.stderr.write('usage: gatehouse token --client ID [--scope S] [--user U] [--url GATEHOUSE_URL]\n');
    return 2;
  }
  const dataDir = values['data-dir'];
  // ORDER: before reading the demo secret or the signing keys in it (refused while group-readable).
  openDataDir(dataDir, io.stderr, { create: false });
  const config = configFor(values.config);
  const clientId = values.client;
  const client = config.auth.embedded.clients.find((c) => c.clientId === clientId);
  let secret: string;
  if (client?.clientSecret !== undefined) secret = resolveSecret(client.clientSecret, `client ${clientId}`);
  else if (!client && clientId === DEMO_CLIENT_ID) secret = resolveSecret({ file: demoSecretPath(dataDir) });
  else {
    io.stderr.write(`gatehouse: client ${clientId} has no client secret in the configuration\n`);
    return 1;
  }
  const base = (
    values.url ??
    config.server.publicUrl ??
    `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${config.server.port}`
  ).replace(/\/+$/, '');
  const metaRes = await fetch(`${base}/.well-known/oauth-authorization-server`);
  if (!metaRes.ok) {
    io.stderr.write(`gatehouse: ${base} has no embedded authorization server (HTTP ${metaRes.status})\n`);
    return 1;
  }
  const meta = (await metaRes.json()) as { issuer?: string; token_endpoint?: string };
  if (!meta.issuer || !meta.token_endpoint) {
    io.stderr.write('gatehouse: authorization server metadata lacks issuer or token_endpoint\n');
    return 1;
  }
  let res: TokenResponse & { status: number };
  if (values.user) {
    // The subject token: minted locally for the local user with the AS signing key from the
    // data dir (only whoever can read oauth-keys.json can do this), then exchanged by the
    // agent (RFC 8693) so the gateway issues the token that acts for the user.
    const storage = openStorage(config, dataDir, io.stderr);
    try {
      if (!(await storage.users.get(values.user))) {
        io.stderr.write(`gatehouse: no local user ${values.user}\n`);
        return 1;
      }
    } finally {
      await storage.close();
    }
    const keys = await loadKeys(dataDir, { create: false });
    const key = keys.signing[0];
    if (!key) throw new Error('no signing key');
    const scope = values.scope ?? config.auth.requiredScopes.join(' ');
    const subjectToken = await mintAccessToken({
      key,
      issuer: meta.issuer,
      resource: `${meta.issuer}/mcp`,
      clientId: 'gatehouse-cli',
      sub: values.user,
      scope,
      ttlSec: LOCAL_SUBJECT_TOKEN_TTL_SEC,
    });
    res = await postToken(meta.token_endpoint, clientId, secret, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      scope,
    });
  } else {
    res = await postToken(meta.token_endpoint, clientId, secret, {
      grant_type: 'client_credentials',
      scope: values.scope ?? config.auth.requiredScopes.join(' '),
    });
  }
  if (!res.access_token) {
    io.stderr.write(
      `gatehouse: token request failed (HTTP ${res.status}): ${res.error ?? 'unknown'}${res.error_description ? `: ${res.error_description}` : ''}\n`,
    );
    return 1;
  }
  io.stdout.write(`${res.access_token}\n`);
  return 0;
}

/** Runs `users ...` or `token ...`; returns the exit code. */
export async function authCommand(verb: string, argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  switch (verb) {
    case 'users':
      return users(argv, io);
    case 'token':
      return token(argv, io);
    default:
      io.stderr.write(`gatehouse: unknown command \`${verb}\`\n${AUTH_USAGE}`);
      return 2;
  }
}
