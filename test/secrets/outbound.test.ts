/**
 * The broker's outbound client (src/secrets/outbound.ts), THREATS T07 SSRF. Blocked
 * targets are IP literals (no DNS) and must be refused BEFORE any connection:
 * every test records connection attempts through `onConnect`. Only 127.0.0.1 test
 * servers are ever contacted, under the `allowLoopbackHttp` development flag.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isLoopbackAddress } from '../../src/auth/as/safe-fetch.ts';
import { OutboundClient, OutboundError, type OutboundOptions } from '../../src/secrets/outbound.ts';

interface Hit {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function server(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<{ url: string; hits: Hit[]; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    hits,
    close: () => {
      s.closeAllConnections();
      return new Promise((r) => s.close(() => r()));
    },
  };
}

function client(opts: OutboundOptions = {}): { c: OutboundClient; connects: string[] } {
  const connects: string[] = [];
  return {
    connects,
    c: new OutboundClient({ ...opts, onConnect: (ip, port) => void connects.push(`${ip}:${port}`) }),
  };
}

async function refused(
  url: string,
  code: OutboundError['code'],
  opts: OutboundOptions = {},
  method: 'get' | 'post' = 'get',
): Promise<void> {
  const { c, connects } = client(opts);
  const p = method === 'get' ? c.get(url) : c.postForm(url, { grant_type: 'client_credentials' });
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof OutboundError, String(err));
    assert.equal(err.code, code, `${url}: ${err.message}`);
    return true;
  });
  assert.deepEqual(connects, [], `${url}: refused before connecting`);
}

const DEV = { allowLoopbackHttp: true };

test('T07 ssrf: blocks the link-local metadata host 169.254.169.254 (also with the dev flag)', async () => {
  await refused('https://169.254.169.254/latest/meta-data/', 'blocked_address');
  await refused('https://169.254.169.254/latest/meta-data/', 'blocked_address', DEV);
  await refused('http://169.254.169.254/latest/meta-data/', 'blocked_address', DEV);
  await refused('https://169.254.169.254/token', 'blocked_address', {}, 'post');
});

test('T07 ssrf: blocks loopback 127.0.0.1 without the dev flag', async () => {
  await refused('https://127.0.0.1/.well-known/oauth-authorization-server', 'blocked_address');
  await refused('https://127.0.0.1:6379/', 'blocked_address', {}, 'post');
  await refused('http://127.0.0.1/', 'scheme');
});

test('T07 ssrf: blocks 10/8 and the other private ranges (also with the dev flag)', async () => {
  for (const ip of ['10.0.0.1', '10.255.255.254', '172.16.0.1', '192.168.1.1', '100.64.0.1', '0.0.0.0']) {
    await refused(`https://${ip}/token`, 'blocked_address');
    await refused(`http://${ip}/token`, 'blocked_address', DEV);
  }
});

test('T07 ssrf: blocks IPv6 loopback and IPv4-mapped forms (::1, ::ffff:127.0.0.1, ::ffff:7f00:1, ::ffff:a9fe:a9fe)', async () => {
  for (const host of ['[::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[0:0:0:0:0:ffff:7f00:1]']) {
    await refused(`https://${host}/token`, 'blocked_address');
  }
  // With the dev flag loopback is allowed, but a mapped link-local or private address is not.
  await refused('https://[::ffff:a9fe:a9fe]/latest/meta-data/', 'blocked_address', DEV);
  await refused('https://[::ffff:10.0.0.1]/', 'blocked_address', DEV);
  await refused('https://[fd00::1]/', 'blocked_address', DEV);
  await refused('https://[fe80::1]/', 'blocked_address', DEV);
  for (const ip of [
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '0:0:0:0:0:0:0:1',
  ]) {
    assert.equal(isLoopbackAddress(ip), true, ip);
  }
  for (const ip of ['10.0.0.1', '::', '::2', '::ffff:a9fe:a9fe', '8.8.8.8', 'localhost', 'fe80::1']) {
    assert.equal(isLoopbackAddress(ip), false, ip);
  }
});

test('T07 ssrf: a name resolving to a private address is blocked after DNS resolution', async () => {
  const resolve = async (host: string) =>
    host === 'idp.example' ? ['93.184.216.34', '10.0.0.1'] : ['127.0.0.1'];
  await refused('https://idp.example/token', 'blocked_address', { resolve });
  await refused('https://localhost.example/token', 'blocked_address', { resolve });
});

test('T07 ssrf: https only; the dev flag allows http to loopback and never to a public address', async () => {
  await refused('http://93.184.216.34/token', 'scheme');
  await refused('http://93.184.216.34/token', 'scheme', DEV);
  await refused('ftp://93.184.216.34/x', 'scheme', DEV);
  await refused('file:///etc/passwd', 'scheme', DEV);
  const s = await server((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}'),
  );
  try {
    const { c, connects } = client(DEV);
    assert.deepEqual(await c.getJson(`${s.url}/.well-known/oauth-authorization-server`), { ok: 1 });
    assert.equal(connects.length, 1);
  } finally {
    await s.close();
  }
});

test('T07 ssrf: a redirect to a private or metadata address is re-checked and refused before connecting to it', async () => {
  for (const target of [
    'http://10.0.0.1/steal',
    'http://169.254.169.254/latest/meta-data/',
    'https://[::ffff:a9fe:a9fe]/',
    'http://93.184.216.34/plain-http-public',
  ]) {
    const s = await server((_req, res) => res.writeHead(302, { location: target }).end());
    try {
      const { c, connects } = client(DEV);
      await assert.rejects(c.get(`${s.url}/meta`), (e: unknown) => {
        assert.ok(e instanceof OutboundError, String(e));
        assert.ok(e.code === 'blocked_address' || e.code === 'scheme', `${target}: ${e.code}`);
        return true;
      });
      assert.equal(connects.length, 1, `${target}: only the first hop connected`);
      assert.match(connects[0] ?? '', /^127\.0\.0\.1:/);
    } finally {
      await s.close();
    }
  }
});

test('T07 T20 a token POST never follows a redirect (its body carries client credentials)', async () => {
  const target = await server((_req, res) => res.writeHead(200).end('{}'));
  const s = await server((_req, res) => res.writeHead(307, { location: `${target.url}/token` }).end());
  try {
    const { c, connects } = client(DEV);
    await assert.rejects(
      c.postForm(`${s.url}/token`, {
        grant_type: 'client_credentials',
        client_secret: 'canary-secret-not-real-post',
      }),
      (e: unknown) => e instanceof OutboundError && e.code === 'redirect',
    );
    assert.equal(connects.length, 1);
    assert.equal(target.hits.length, 0, 'the credentials were not re-sent');
    assert.equal(s.hits[0]?.method, 'POST');
    assert.equal(s.hits[0]?.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.match(s.hits[0]?.body ?? '', /client_secret=canary-secret-not-real-post/);
  } finally {
    await s.close();
    await target.close();
  }
});

test('T20 a GET redirect to another origin does not carry the Authorization header; same origin does', async () => {
  const other = await server((_req, res) => res.writeHead(200).end('{}'));
  const s = await server((req, res) => {
    if (req.url === '/same') res.writeHead(302, { location: '/final' }).end();
    else if (req.url === '/cross') res.writeHead(302, { location: `${other.url}/final` }).end();
    else res.writeHead(200).end('{}');
  });
  try {
    const { c } = client(DEV);
    const auth = { authorization: 'Bearer canary-secret-not-real-bearer' };
    await c.get(`${s.url}/same`, { headers: auth });
    assert.equal(s.hits[1]?.headers.authorization, auth.authorization, 'same origin keeps it');
    await c.get(`${s.url}/cross`, { headers: auth });
    assert.equal(other.hits.length, 1);
    assert.equal(other.hits[0]?.headers.authorization, undefined, 'cross origin drops it');
  } finally {
    await s.close();
    await other.close();
  }
});

test('T07 T30 size cap and timeout apply; options are checked at construction', async () => {
  const s = await server((req, res) => {
    if (req.url === '/big') res.writeHead(200).end('x'.repeat(2000));
    // '/slow' never answers
  });
  try {
    const { c } = client({ ...DEV, maxBytes: 1000, timeoutMs: 300 });
    await assert.rejects(c.get(`${s.url}/big`), (e: unknown) => (e as OutboundError).code === 'too_large');
    await assert.rejects(c.get(`${s.url}/slow`), (e: unknown) => (e as OutboundError).code === 'timeout');
    assert.equal((await c.get(`${s.url}/big`, { maxBytes: 4096 })).body.length, 2000);
  } finally {
    await s.close();
  }
  assert.throws(() => new OutboundClient({ timeoutMs: 0 }), /timeoutMs/);
  assert.throws(() => new OutboundClient({ maxBytes: -1 }), /maxBytes/);
  assert.throws(() => new OutboundClient({ maxRedirects: 1.5 }), /maxRedirects/);
});

test('getJson reports the status, never the body (it may echo credentials)', async () => {
  const s = await server((_req, res) => res.writeHead(400).end('{"error":"canary-secret-not-real-echo"}'));
  try {
    const { c } = client(DEV);
    await assert.rejects(c.getJson(`${s.url}/x`), (e: unknown) => {
      assert.match((e as Error).message, /status 400/);
      assert.ok(!(e as Error).message.includes('canary'));
      return true;
    });
  } finally {
    await s.close();
  }
});
