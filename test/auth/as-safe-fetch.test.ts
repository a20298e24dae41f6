/**
 * The SSRF guard (src/auth/as/safe-fetch.ts). Blocked targets must be refused
 * BEFORE any connection: every test observes connection attempts through
 * `onConnect` and asserts none went to a refused address. Only 127.0.0.1 test
 * servers are ever contacted.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import {
  isBlockedAddress,
  SafeFetchError,
  type SafeFetchOptions,
  safeFetch,
} from '../../src/auth/as/safe-fetch.ts';

async function server(
  handler: http.RequestListener,
): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const s = http.createServer((req, res) => {
    hits.push(`${req.headers.host} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => {
      s.closeAllConnections();
      return new Promise((r) => s.close(() => r()));
    },
  };
}

/** Records connection attempts; the default policy (no dev flags). */
function watched(extra: SafeFetchOptions = {}): { opts: SafeFetchOptions; connects: string[] } {
  const connects: string[] = [];
  return { connects, opts: { ...extra, onConnect: (ip, port) => void connects.push(`${ip}:${port}`) } };
}

async function refused(
  url: string,
  code: SafeFetchError['code'],
  extra: SafeFetchOptions = {},
): Promise<void> {
  const w = watched(extra);
  await assert.rejects(safeFetch(url, w.opts), (err: unknown) => {
    assert.ok(err instanceof SafeFetchError, String(err));
    assert.equal(err.code, code, `${url}: ${err.message}`);
    return true;
  });
  assert.deepEqual(w.connects, [], `${url}: refused before connecting`);
}

test('T07 CIMD draft §6 / SSRF: loopback 127.0.0.1 is refused before connecting', async () => {
  await refused('https://127.0.0.1/client.json', 'blocked_address');
  await refused('https://127.8.9.10:8443/client.json', 'blocked_address');
});

test('T07 CIMD draft §6 / SSRF: the cloud metadata address 169.254.169.254 is refused before connecting', async () => {
  await refused('https://169.254.169.254/latest/meta-data/', 'blocked_address');
});

test('T07 CIMD draft §6 / SSRF: private 10.0.0.1, 172.16/12, 192.168/16 and CGNAT are refused before connecting', async () => {
  await refused('https://10.0.0.1/c.json', 'blocked_address');
  await refused('https://172.20.1.1/c.json', 'blocked_address');
  await refused('https://192.168.1.1/c.json', 'blocked_address');
  await refused('https://100.64.0.1/c.json', 'blocked_address');
});

test('T07 CIMD draft §6 / SSRF: IPv6 loopback [::1] and IPv4-mapped ::ffff:127.0.0.1 are refused before connecting', async () => {
  await refused('https://[::1]/c.json', 'blocked_address');
  await refused('https://[::ffff:127.0.0.1]/c.json', 'blocked_address');
  await refused('https://[::ffff:a9fe:a9fe]/c.json', 'blocked_address');
  await refused('https://[fd00::1]/c.json', 'blocked_address');
  await refused('https://[fe80::1]/c.json', 'blocked_address');
});

test('T07 CIMD draft §6 / SSRF: a host name resolving to a private address is refused (any of its addresses)', async () => {
  await refused('https://metadata.example/c.json', 'blocked_address', {
    resolve: async () => ['169.254.169.254'],
  });
  await refused('https://mixed.example/c.json', 'blocked_address', {
    resolve: async () => ['93.184.216.34', '10.0.0.1'],
  });
});

test('T07 CIMD draft §3: non-https URLs are refused before connecting', async () => {
  await refused('http://example.com/c.json', 'scheme');
  await refused('ftp://example.com/c.json', 'scheme');
  await refused('file:///etc/passwd', 'scheme');
  await refused('https://user:pw@example.com/c.json', 'bad_url');
});

test('T07 CIMD draft §6 / SSRF: a redirect to a private address is refused before connecting to it', async () => {
  const s = await server((_req, res) => res.writeHead(302, { location: 'http://10.0.0.1/steal' }).end());
  try {
    const only127 = (ip: string) => ip !== '127.0.0.1';
    const w = watched({ allowHttp: true, isBlocked: only127, maxRedirects: 3 });
    await assert.rejects(safeFetch(`${s.url}/c.json`, w.opts), (e: unknown) => {
      assert.ok(e instanceof SafeFetchError);
      assert.equal(e.code, 'blocked_address');
      return true;
    });
    assert.equal(w.connects.length, 1, 'only the first hop connected');
    assert.match(w.connects[0] ?? '', /^127\.0\.0\.1:/);
    // Default: redirects are not followed at all.
    const w0 = watched({ allowHttp: true, isBlocked: only127 });
    await assert.rejects(safeFetch(`${s.url}/c.json`, w0.opts), /not followed/);
  } finally {
    await s.close();
  }
});

test('T07 T30 CIMD draft §6: an oversized document is refused (declared length and streamed body)', async () => {
  const big = 'x'.repeat(10 * 1024);
  const s = await server((req, res) => {
    if (req.url === '/declared') res.writeHead(200, { 'content-length': String(big.length) }).end(big);
    else {
      res.writeHead(200); // chunked, no content-length
      res.write(big.slice(0, 4000));
      res.end(big.slice(4000));
    }
  });
  try {
    const opts = { allowHttp: true, isBlocked: (ip: string) => ip !== '127.0.0.1', maxBytes: 5 * 1024 };
    await assert.rejects(
      safeFetch(`${s.url}/declared`, opts),
      (e: unknown) => (e as SafeFetchError).code === 'too_large',
    );
    await assert.rejects(
      safeFetch(`${s.url}/chunked`, opts),
      (e: unknown) => (e as SafeFetchError).code === 'too_large',
    );
    const small = await safeFetch(`${s.url}/declared`, { ...opts, maxBytes: 64 * 1024 });
    assert.equal(small.body.length, big.length);
  } finally {
    await s.close();
  }
});

test('T07 SSRF: a server that never answers hits the timeout', async () => {
  const s = await server(() => {});
  try {
    const opts = { allowHttp: true, isBlocked: (ip: string) => ip !== '127.0.0.1', timeoutMs: 200 };
    await assert.rejects(
      safeFetch(`${s.url}/slow`, opts),
      (e: unknown) => (e as SafeFetchError).code === 'timeout',
    );
  } finally {
    await s.close();
  }
});

test('T07 SSRF / DNS rebinding: the name is resolved once and the socket goes to the checked address', async () => {
  const s = await server((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  try {
    let lookups = 0;
    const port = new URL(s.url).port;
    const res = await safeFetch(`http://rebind.test:${port}/c.json`, {
      allowHttp: true,
      isBlocked: (ip) => ip !== '127.0.0.1',
      resolve: async () => {
        lookups++;
        // A rebinding resolver would answer differently the second time.
        return lookups === 1 ? ['127.0.0.1'] : ['10.0.0.1'];
      },
    });
    assert.equal(res.status, 200);
    assert.equal(lookups, 1, 'resolved exactly once');
    assert.deepEqual(
      s.hits,
      [`rebind.test:${port} /c.json`],
      'reached the checked address with the original Host',
    );
  } finally {
    await s.close();
  }
});

test('T07 SSRF: address classification', () => {
  for (const ip of [
    '127.0.0.1',
    '0.0.0.0',
    '10.1.2.3',
    '100.100.0.1',
    '169.254.169.254',
    '172.31.255.255',
    '192.168.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:7f00:1',
    '64:ff9b::a9fe:a9fe',
    '2002:a00:1::1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1%eth0',
    'ff02::1',
    'not-an-ip',
  ]) {
    assert.equal(isBlockedAddress(ip), true, ip);
  }
  for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isBlockedAddress(ip), false, ip);
  }
});

test('T07 SSRF: development flags allow http and loopback explicitly', async () => {
  const s = await server((_req, res) => res.writeHead(200).end('{"ok":true}'));
  try {
    const res = await safeFetch(`${s.url}/c.json`, { allowHttp: true, allowPrivateAddresses: true });
    assert.equal(res.body.toString(), '{"ok":true}');
  } finally {
    await s.close();
  }
});

test('T07 SSRF: allowHttpAddress restricts plain http to the addresses it accepts; POST sends its body and never follows a redirect', async () => {
  const s = await server((req, res) => {
    if (req.method === 'POST') res.writeHead(302, { location: '/elsewhere' }).end();
    else res.writeHead(200).end('{}');
  });
  try {
    const loopbackOnly = {
      allowHttp: true,
      allowPrivateAddresses: true,
      allowHttpAddress: (ip: string) => ip === '127.0.0.1',
    };
    assert.equal((await safeFetch(`${s.url}/ok`, loopbackOnly)).status, 200);
    await refused('http://93.184.216.34/c.json', 'scheme', { ...loopbackOnly, allowPrivateAddresses: false });
    await assert.rejects(
      safeFetch(`${s.url}/token`, { ...loopbackOnly, method: 'POST', body: 'a=1', maxRedirects: 3 }),
      (e: unknown) => (e as SafeFetchError).code === 'redirect',
    );
    assert.deepEqual(
      s.hits.slice(1),
      [`${new URL(s.url).host} /token`],
      'the redirect target was not requested',
    );
  } finally {
    await s.close();
  }
});
