import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';

// apt-cacher-ng's ForceManaged still forwards some requests to any host (a plain
// `GET http://registry.npmjs.org/` went through), so this filter stands between the
// targets and acng: Debian mirror URLs go on to acng (which caches), everything else is 403.
export const allowedHosts = new Set(['deb.debian.org', 'security.debian.org']);
export const allowedPrefixes = ['/debian/', '/debian-security/'];

// The decision alone, so it can be tested without sockets.
export function relayVerdict(method: string | undefined, rawUrl: string | undefined): { ok: true; url: string } | { ok: false; why: string } {
  if (method !== 'GET' && method !== 'HEAD') return { ok: false, why: `method ${method} not allowed` };
  let url: URL;
  try {
    url = new URL(rawUrl ?? '');
  } catch {
    return { ok: false, why: 'not a proxy request (absolute http:// URL expected)' };
  }
  if (url.protocol !== 'http:') return { ok: false, why: `${url.protocol} not allowed` };
  if (url.port !== '' || url.username || url.password) return { ok: false, why: 'no ports or credentials' };
  if (!allowedHosts.has(url.hostname)) return { ok: false, why: `${url.hostname} is not the Debian mirror` };
  // URL() has already resolved any /../, so the prefix check cannot be walked around.
  if (!allowedPrefixes.some((p) => url.pathname.startsWith(p))) return { ok: false, why: `${url.pathname} is not a Debian archive path` };
  return { ok: true, url: url.href };
}

const hopByHop = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

export function startRelayServer(listen: { host: string; port: number }, upstream: { host: string; port: number }): Promise<Server> {
  const deny = (res: ServerResponse, why: string) => {
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end(`hostctl lab relay: ${why}; only the Debian mirror is reachable from the lab\n`);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const verdict = relayVerdict(req.method, req.url);
    if (!verdict.ok) {
      process.stdout.write(`deny ${req.method} ${req.url}: ${verdict.why}\n`);
      return deny(res, verdict.why);
    }
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !hopByHop.has(k)));
    const up = request({ ...upstream, method: req.method, path: verdict.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (error) => {
      process.stdout.write(`upstream error ${verdict.url}: ${error.message}\n`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end();
    });
    req.pipe(up);
  });
  // No tunnels: https through the relay would reach any host.
  server.on('connect', (req, socket) => {
    process.stdout.write(`deny CONNECT ${req.url}\n`);
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}

// Run as its own detached process by `lab up`: node relay-server.js LISTEN_HOST PORT UPSTREAM_HOST PORT
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [host, port, upHost, upPort] = process.argv.slice(2);
  const server = await startRelayServer({ host: host!, port: Number(port) }, { host: upHost!, port: Number(upPort) });
  process.stdout.write(`relay listening on ${host}:${port}, upstream ${upHost}:${upPort}\n`);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
