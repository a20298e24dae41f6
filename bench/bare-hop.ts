// A bare node:http keep-alive reverse proxy: the cheapest possible extra hop, used as
// the baseline Gatehouse is compared against. Usage: bare-hop --target URL [--port PORT]
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// Hop-by-hop headers are per connection and must not be forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const targetArg = arg('--target');
if (!targetArg) {
  process.stderr.write('usage: bare-hop --target URL [--port PORT]\n');
  process.exit(2);
}
const target = new URL(targetArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

const server = http.createServer((req, res) => {
  const headers = forwardable(req.headers);
  headers.host = target.host;
  const upstream = http.request(
    {
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
      upRes.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bare-hop: ${err.message}`);
    } else {
      res.destroy(err);
    }
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(arg('--port') ?? '0'), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`LISTENING http://127.0.0.1:${port}${target.pathname}\n`);
});
