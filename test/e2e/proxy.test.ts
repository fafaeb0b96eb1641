import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { declarationVars } from '../../roles/authentik/applications.js';
import { renderBlueprint } from '../../roles/authentik/blueprint.js';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';

type Recap = { hosts: Record<string, { ok: number; changed: number; failed: number }> };
const recapOf = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;

// The backend behind the proxies: answers every request with what it received, as JSON, and
// logs each path (to prove which requests never reached it).
const ECHO = `
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        with open("/var/log/echo.log", "a") as f:
            f.write(f"{self.server.server_port} {self.path}\\n")
        body = json.dumps({"port": self.server.server_port, "path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
servers = [ThreadingHTTPServer(("0.0.0.0", int(p)), H) for p in sys.argv[1:]]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
`;

// Three forward-auth applications, one on a non-default port, one domain-level, behind nginx
// on one target and Caddy on the other; the outpost stand-in (outpost.py, standalone) and the
// echo backend run on the nginx target.
describe('the proxy playbook: nginx and Caddy in front of forward-auth applications', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(17, ['ngx', 'cdy']);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let inventory = '';
  const address = (host: string) => t.lab.targets.find((x) => x.name === host)!.address;
  const apps = {
    app1: { url: 'http://app1.lab', port: 80, upstreamPort: 3001 },
    app2: { url: 'http://app2.lab', port: 80, upstreamPort: 3002 },
    app3: { url: 'http://app3.lab:8080', port: 8080, upstreamPort: 3003 },
  };

  const run = (limit: string, ...args: string[]) =>
    hostctl(['run', join(repo, 'playbooks', 'proxy.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '--limit', limit, '--json', ...args]);
  // curl from the controller to a proxy target, the app's host name resolved to it.
  const curl = async (proxy: string, app: keyof typeof apps, path: string, args: string[] = []) => {
    const { url, port } = apps[app];
    const host = new URL(url).hostname;
    const r = await execa('curl', ['-sS', '--max-time', '10', '--resolve', `${host}:${port}:${address(proxy)}`, '-o', '-', '-w', '\n%{http_code} %{redirect_url}', ...args, `${url}${path}`], { reject: false });
    const lines = String(r.stdout).split('\n');
    const [code = '', location = ''] = lines.pop()!.split(' ');
    return { code, location, body: lines.join('\n') };
  };

  before(async () => {
    dir = await tempDir('hostctl-proxy-');
    inventory = join(dir.path, 'inventory');
    await mkdir(join(inventory, 'group_vars'), { recursive: true });
    await writeFile(
      join(inventory, 'hosts.yml'),
      'all:\n  children:\n    proxy:\n      hosts:\n        ngx:\n          proxy_server: nginx\n        cdy:\n          proxy_server: caddy\n',
    );
    const backend = address('ngx');
    const declared = {
      app1: { protect: 'forward_single', name: 'App 1', external_host: apps.app1.url, upstream: `http://${backend}:3001` },
      app2: { protect: 'forward_domain', name: 'App 2', external_host: apps.app2.url, cookie_domain: 'app2.lab', upstream: `http://${backend}:3002` },
      app3: { protect: 'forward_single', name: 'App 3', external_host: apps.app3.url, upstream: `http://${backend}:3003` },
      grafana: { protect: 'oidc', name: 'Grafana', client_id: 'grafana-lab', client_type: 'public', redirect_uris: ['http://grafana.lab/login/generic_oauth'] },
    };
    await writeFile(join(inventory, 'group_vars', 'proxy.yml'), JSON.stringify({ authentik_url: `http://${backend}:9000`, authentik_applications: declared }));
    // The stand-in reads the blueprint the authentik role renders from the same declaration.
    const { text: blueprint } = renderBlueprint({ authentik_version: '2026.2.1', authentik_groups: {}, authentik_applications: declarationVars.authentik_applications.parse(declared) });
    const outpost = await readFile(join(repo, 'src', 'lab', 'images', 'authentik', 'outpost.py'), 'utf8');
    for (const [path, content] of [['/srv/outpost/outpost.py', outpost], ['/srv/outpost/blueprints/hostctl.yaml', blueprint], ['/srv/outpost/echo.py', ECHO]] as const) {
      const r = await t.sh('ngx', `mkdir -p /srv/outpost/blueprints && cat > ${path}`, { input: content });
      assert.equal(r.code, 0, r.stderr);
    }
    const started = await t.sh(
      'ngx',
      'systemd-run --unit=lab-outpost python3 /srv/outpost/outpost.py --blueprints /srv/outpost/blueprints --listen 0.0.0.0:9000 && systemd-run --unit=lab-echo python3 /srv/outpost/echo.py 3001 3002 3003',
    );
    assert.equal(started.code, 0, started.stderr);
  });
  after(async () => {
    await dir?.[Symbol.asyncDispose]();
  });

  it('a first run installs and configures nginx and Caddy, and its own smoke test passes on both', async () => {
    const r = await run('proxy');
    assert.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr);
    const smokes = events(r.stdout).filter((e) => e.type === 'task-end' && String(e.task).startsWith('smoke test'));
    assert.equal(smokes.length, 6, JSON.stringify(smokes));
    const notes = events(r.stdout).filter((e) => e.type === 'host-end').flatMap((e) => e.notes as string[]);
    assert.ok(notes.includes('OIDC grafana: issuer http://' + address('ngx') + ':9000/application/o/grafana/, client_id grafana-lab, discovery http://' + address('ngx') + ':9000/application/o/grafana/.well-known/openid-configuration'), notes.join('\n'));
  });

  for (const proxy of ['ngx', 'cdy']) {
    for (const app of Object.keys(apps) as (keyof typeof apps)[]) {
      it(`${proxy} ${app}: a 302 to the start URL with rd; after the stand-in's sign-in the backend sees the user, never a forged identity`, async () => {
        const { url, upstreamPort } = apps[app];
        const first = await curl(proxy, app, '/some/page');
        assert.equal(first.code, '302', first.body);
        const start = new URL(first.location);
        assert.equal(start.origin + start.pathname, `${url}/outpost.goauthentik.io/start`);
        assert.equal(start.searchParams.get('rd'), `${url}/some/page`);

        const jar = join(dir.path, `jar-${proxy}-${app}`);
        const forged = ['-H', 'X-authentik-username: forged-admin', '-H', 'X-Authentik-Meta-Jwks: forged-jwks'];
        const signedIn = await curl(proxy, app, '/some/page', ['-L', '-c', jar, '-b', jar, ...forged]);
        assert.equal(signedIn.code, '200', signedIn.body);
        const echoed = JSON.parse(signedIn.body) as { port: number; path: string; headers: [string, string][] };
        assert.equal(echoed.port, upstreamPort);
        assert.equal(echoed.path, '/some/page');
        const seen = (name: string) => echoed.headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
        assert.deepEqual(seen('X-authentik-username'), ['akadmin']);
        assert.deepEqual(seen('X-authentik-meta-jwks'), ['http://authentik.lab/application/o/standin/jwks/']);
        assert.ok(!signedIn.body.includes('forged'), signedIn.body);

        // Without the session, the forged header gets the sign-in redirect, not the app.
        const noSession = await curl(proxy, app, '/', forged);
        assert.equal(noSession.code, '302');
      });
    }
  }

  for (const proxy of ['ngx', 'cdy']) {
    it(`${proxy}: a session for app1 does not open app3 by naming app1 in X-Forwarded-Host or the Host header`, async () => {
      // Signed in to app1 above; its session cookie, sent by hand to app3's host.
      const jar = await readFile(join(dir.path, `jar-${proxy}-app1`), 'utf8');
      const [name, value] = jar.split('\n').filter((l) => l.includes('authentik_proxy_')).at(-1)!.split('\t').slice(5);
      const cookie = ['-H', `Cookie: ${name}=${value}`];
      for (const extra of [['-H', 'X-Forwarded-Host: app1.lab'], ['-H', 'X-Forwarded-Host: app1.lab', '-H', 'X-Original-URL: http://app1.lab/']]) {
        const r = await curl(proxy, 'app3', '/private', [...cookie, ...extra]);
        assert.equal(r.code, '302', `${proxy}: app3 opened with app1's session: ${r.body}`);
      }
      // The request line names app3 while Host says app1: nginx picks app3's block by the
      // request line; authentik must judge app3 too.
      const absolute = await execa('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '--request-target', 'http://app3.lab:8080/private', '-H', 'Host: app1.lab', ...cookie, `http://${address(proxy)}:8080/`], { reject: false });
      assert.notEqual(String(absolute.stdout), '200', `${proxy}: app3 opened with app1's session through an absolute request line`);
    });
  }

  it('the outpost path is answered by authentik on every app host, never by the app', async () => {
    await t.sh('ngx', ': > /var/log/echo.log');
    for (const proxy of ['ngx', 'cdy']) {
      for (const app of Object.keys(apps) as (keyof typeof apps)[]) {
        assert.equal((await curl(proxy, app, '/outpost.goauthentik.io/ping')).code, '204', `${proxy} ${app}`);
        const other = await curl(proxy, app, '/outpost.goauthentik.io/anything');
        assert.equal(other.code, '404', `${proxy} ${app}: ${other.body}`);
      }
    }
    assert.equal((await t.sh('ngx', 'cat /var/log/echo.log')).stdout, '');
  });

  it('a second run changes nothing', async () => {
    const r = await run('proxy');
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const recap = recapOf(r.stdout);
    assert.equal(recap.hosts.ngx!.changed, 0, r.stdout.split('\n').filter((l) => l.includes('"changed":true')).join('\n'));
    assert.equal(recap.hosts.cdy!.changed, 0, r.stdout.split('\n').filter((l) => l.includes('"changed":true')).join('\n'));
  });

  it("nginx's outpost Host is a tested parameter: hostname drops app3's port, authentik finds no provider, the smoke test names app3; changes are reloads", async () => {
    const pid = async () => (await t.sh('ngx', 'systemctl show -p MainPID --value nginx')).stdout.trim();
    const master = await pid();
    const r = await run('ngx', '-e', JSON.stringify({ nginx_outpost_host: 'hostname' }));
    assert.notEqual(r.code, 0);
    const failed = events(r.stdout).filter((e) => e.type === 'task-end' && e.status === 'failed');
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.match(JSON.stringify(failed[0]), /app3 \(http:\/\/app3\.lab:8080\): without a session http:\/\/app3\.lab:8080\/ answered 500/);
    // app1 and app2 (default port) pass with either.
    assert.equal((await curl('ngx', 'app1', '/')).code, '302');
    const back = await run('ngx');
    assert.equal(back.code, 0, back.stdout.slice(-3000));
    assert.equal((await curl('ngx', 'app3', '/')).code, '302');
    // Two configuration changes, two reloads: the same nginx master all along.
    assert.equal(events(back.stdout).filter((e) => e.type === 'task-end' && e.task === 'reload nginx' && e.status === 'changed').length, 1);
    assert.equal(await pid(), master);
  });

  it('Traefik: the checked file is written where traefik_config says (Traefik itself is not run here)', async () => {
    const r = await run('cdy', '-e', JSON.stringify({ proxy_server: 'traefik', proxy_smoke: false, traefik_config: '/etc/traefik/dynamic/apps.yml' }));
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    const file = await t.sh('cdy', 'cat /etc/traefik/dynamic/apps.yml');
    assert.match(file.stdout, /^ {4}hostctl-app3-outpost:\n {6}rule: Host\(`app3\.lab`\) && PathPrefix\(`\/outpost\.goauthentik\.io\/`\)\n {6}priority: 59\n/m);
  });

  const broken = [
    ['ngx', 'nginx -t', '/etc/nginx/conf.d/hostctl-proxy.conf', [/cannot load certificate[^/]*\/etc\/ssl\/missing\.pem/, /validation failed: \/usr\/local\/libexec\/hostctl\/nginx-check/]],
    ['cdy', 'caddy validate', '/etc/caddy/Caddyfile', [/open \/etc\/ssl\/missing\.pem: no such file/, /validation failed: caddy validate/]],
  ] as const;
  for (const [proxy, checker, conf, refusal] of broken) {
    it(`a broken configuration is refused by ${checker}; the old file stays and ${proxy} keeps serving`, async () => {
      const before = (await t.sh(proxy, `sha256sum ${conf}`)).stdout;
      // A certificate that does not exist: the configuration renders, the proxy cannot load it.
      const vars = join(dir.path, `broken-${proxy}.json`);
      const current = JSON.parse(await readFile(join(inventory, 'group_vars', 'proxy.yml'), 'utf8')) as { authentik_applications: Record<string, Record<string, unknown>> };
      current.authentik_applications.app1 = { ...current.authentik_applications.app1, external_host: 'https://app1.lab' };
      await writeFile(vars, JSON.stringify({ authentik_applications: current.authentik_applications, proxy_tls: { app1: { certificate: '/etc/ssl/missing.pem', key: '/etc/ssl/missing.key' } } }));
      const r = await run(proxy, '-e', `@${vars}`);
      assert.notEqual(r.code, 0);
      for (const said of refusal) assert.match(r.stdout + r.stderr, said);
      assert.equal((await t.sh(proxy, `sha256sum ${conf}`)).stdout, before);
      const still = await curl(proxy, 'app2', '/');
      assert.equal(still.code, '302');
      assert.equal((await t.sh(proxy, `systemctl is-active ${proxy === 'ngx' ? 'nginx' : 'caddy'}`)).stdout.trim(), 'active');
    });
  }
});
