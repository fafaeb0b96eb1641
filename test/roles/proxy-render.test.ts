import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { caddyConfig, checkTraefik, IDENTITY_HEADERS, nginxConfig, oidcClients, traefikConfig, traefikYaml } from '../../roles/proxy/render.js';
import { vars, type Vars } from '../../roles/proxy/vars.js';
import { hostctl, repo, tempDir } from '../helpers/cli.js';

// A host name whose Host rule is 120 characters: Traefik's default priority (the rule's
// length) would put it above a shorter outpost rule.
const long = `${'a'.repeat(50)}.${'b'.repeat(49)}.example.org`;
const declaration = {
  authentik_url: 'http://10.0.0.5:9000',
  authentik_applications: {
    files: { protect: 'forward_single', name: 'Files', external_host: 'http://files.lab', upstream: 'http://10.0.0.7:3923' },
    long: { protect: 'forward_single', name: 'Long', external_host: `https://${long}`, upstream: 'http://10.0.0.8:80' },
    domain: { protect: 'forward_domain', name: 'Domain', external_host: 'http://auth.lab:8080', cookie_domain: 'lab', upstream: 'http://10.0.0.9:8000' },
    grafana: { protect: 'oidc', name: 'Grafana', client_id: 'grafana-client', client_type: 'public', redirect_uris: ['https://grafana.lab/login/generic_oauth'] },
  },
  proxy_tls_certificate: '/etc/ssl/lab.pem',
  proxy_tls_key: '/etc/ssl/private/lab.key',
};
const parsed = (server: string, extra: Record<string, unknown> = {}): Vars => vars.parse({ ...declaration, proxy_server: server, ...extra });
type Router = { rule: string; priority: number; middlewares?: string[]; service: string };

describe('the proxy role renders', () => {
  it('Traefik: a file that validates against the file-provider schema, for single and domain-level apps', () => {
    const v = parsed('traefik');
    const yaml = traefikYaml(v);
    const config = parse(yaml) as { http: { routers: Record<string, Router>; middlewares: Record<string, { forwardAuth: Record<string, unknown> }>; services: Record<string, unknown> }; tls: unknown };
    assert.deepEqual(Object.keys(config.http.routers).sort(), ['hostctl-domain', 'hostctl-domain-outpost', 'hostctl-files', 'hostctl-files-outpost', 'hostctl-long', 'hostctl-long-outpost']);
    assert.deepEqual(config.http.middlewares['hostctl-authentik']!.forwardAuth, {
      address: 'http://10.0.0.5:9000/outpost.goauthentik.io/auth/traefik',
      trustForwardHeader: true,
      authResponseHeaders: IDENTITY_HEADERS,
    });
    assert.deepEqual(config.http.routers['hostctl-domain'], { rule: 'Host(`auth.lab`)', priority: 16, middlewares: ['hostctl-authentik'], service: 'hostctl-domain' });
    assert.deepEqual(config.tls, { certificates: [{ certFile: '/etc/ssl/lab.pem', keyFile: '/etc/ssl/private/lab.key' }] });
    // The OIDC application needs no router.
    assert.ok(!yaml.includes('grafana'));
  });

  it('Traefik: every outpost router ranks above every app router, with a 120-character Host rule', () => {
    const { http } = traefikConfig(parsed('traefik')) as { http: { routers: Record<string, Router> } };
    const routers = Object.entries(http.routers);
    const apps = routers.filter(([n]) => !n.endsWith('-outpost')).map(([, r]) => r);
    const outposts = routers.filter(([n]) => n.endsWith('-outpost')).map(([, r]) => r);
    assert.equal(apps.find((r) => r.service === 'hostctl-long')!.rule.length, 120);
    for (const o of outposts) {
      for (const a of apps) assert.ok(o.priority > a.priority, `${o.rule} (${o.priority}) must rank above ${a.rule} (${a.priority})`);
      // Above any router of ours left to Traefik's default (its rule's length), too.
      for (const r of routers) assert.ok(o.priority > r[1].rule.length || r[1] === o);
      assert.equal(o.service, 'hostctl-authentik');
      assert.equal(o.middlewares, undefined);
    }
  });

  it('Traefik: what the schema refuses is an input error', () => {
    const config = traefikConfig(parsed('traefik')) as { http: { routers: Record<string, Router> } };
    assert.doesNotThrow(() => checkTraefik(config));
    config.http.routers['hostctl-files']!.priority = -1;
    (config.http.routers['hostctl-long'] as unknown as Record<string, unknown>).priorty = 5;
    assert.throws(() => checkTraefik(config), (e: Error & { kind: string }) => {
      assert.equal(e.kind, 'input');
      assert.match(e.message, /\/http\/routers\/hostctl-files\/priority must be >= 0/);
      assert.match(e.message, /\/http\/routers\/hostctl-long must NOT have additional properties/);
      return true;
    });
  });

  it('nginx: the documented auth_request setup, identity only from the auth response, the Host the outpost gets a parameter', () => {
    const conf = nginxConfig(parsed('nginx'));
    assert.equal((conf.match(/^server \{$/gm) ?? []).length, 3);
    assert.match(conf, /server_name files\.lab;\n/);
    assert.match(conf, /listen 443 ssl;\n {4}listen \[::\]:443 ssl;\n {4}server_name a{50}\.b{49}\.example\.org;\n {4}ssl_certificate {5}\/etc\/ssl\/lab\.pem;\n {4}ssl_certificate_key \/etc\/ssl\/private\/lab\.key;/);
    assert.match(conf, /listen 8080;\n/);
    assert.match(conf, /location \/ \{\n {8}proxy_pass http:\/\/10\.0\.0\.7:3923;/);
    assert.match(conf, /auth_request \/outpost\.goauthentik\.io\/auth\/nginx;\n {8}error_page 401 = @goauthentik_proxy_signin;/);
    // Which application authentik judges is this block's own, never what the client sent in
    // Host or X-Forwarded-Host (a client naming another application would get its policy).
    assert.match(conf, /location \/outpost\.goauthentik\.io \{\n {8}proxy_pass http:\/\/10\.0\.0\.5:9000;\n.*\n.*\n {8}proxy_set_header Host files\.lab;\n {8}proxy_set_header X-Forwarded-Host files\.lab;\n {8}proxy_set_header X-Original-URL http:\/\/files\.lab\$request_uri;/);
    assert.match(conf, /return 302 \/outpost\.goauthentik\.io\/start\?rd=http:\/\/files\.lab\$request_uri;/);
    assert.doesNotMatch(conf, /\$http_host\$request_uri|Host \$host;|X-Forwarded-Host \$/);
    // Every identity header is set from the auth response (so never copied from the client).
    for (const h of IDENTITY_HEADERS) {
      const n = h.toLowerCase().replace(/-/g, '_');
      assert.ok(conf.includes(`auth_request_set $${n} $upstream_http_${n};`), h);
      assert.ok(conf.includes(`proxy_set_header ${h} $${n};`), h);
    }
    assert.match(nginxConfig(parsed('nginx', { nginx_outpost_host: 'hostname' })), /proxy_set_header Host files\.lab;/);
  });

  it('Caddy: forward_auth with copy_headers inside route, client identity headers dropped first', () => {
    const conf = caddyConfig(parsed('caddy'));
    assert.match(conf, /^http:\/\/files\.lab:80 \{\n\troute \{\n\t\trequest_header -X-Authentik-\*\n\t\treverse_proxy \/outpost\.goauthentik\.io\/\* http:\/\/10\.0\.0\.5:9000\n\t\tforward_auth http:\/\/10\.0\.0\.5:9000 \{\n\t\t\turi \/outpost\.goauthentik\.io\/auth\/caddy\n\t\t\tcopy_headers X-Authentik-Username X-Authentik-Groups /m);
    assert.match(conf, /\n\t\treverse_proxy http:\/\/10\.0\.0\.7:3923\n/);
    assert.match(conf, /^https:\/\/a{50}\.b{49}\.example\.org:443 \{\n\ttls \/etc\/ssl\/lab\.pem \/etc\/ssl\/private\/lab\.key\n/m);
    assert.match(conf, /^http:\/\/auth\.lab:8080 \{/m);
  });

  it('OIDC: issuer, client id and discovery URL, never the secret', () => {
    const v = parsed('nginx', { authentik_public_url: 'https://auth.example.org' });
    assert.deepEqual(oidcClients(v), [
      { key: 'grafana', issuer: 'https://auth.example.org/application/o/grafana/', client_id: 'grafana-client', discovery: 'https://auth.example.org/application/o/grafana/.well-known/openid-configuration' },
    ]);
  });

  it('refuses bad declarations, naming the key', () => {
    const issues = (extra: Record<string, unknown>, server = 'nginx') => {
      const r = vars.safeParse({ ...declaration, proxy_server: server, ...extra });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const apps = declaration.authentik_applications;
    const { upstream: _, ...noUpstream } = apps.files;
    assert.deepEqual(issues({ authentik_applications: { ...apps, files: noUpstream } }), [
      'authentik_applications.files.upstream: files is served by this nginx host and needs upstream: where its requests go, e.g. http://10.0.0.7:3923',
    ]);
    // Not served here: no upstream needed.
    assert.deepEqual(issues({ authentik_applications: { ...apps, files: noUpstream }, proxy_applications: ['long', 'domain'] }), []);
    assert.deepEqual(issues({ authentik_applications: { ...apps, files: { ...apps.files, upstream: 'http://10.0.0.7:3923/app' } } }), ['authentik_applications.files.upstream: scheme://host[:port] only (no path or query)']);
    assert.deepEqual(issues({ proxy_tls_certificate: undefined }), ['proxy_tls.long: https://' + long + ' is https: set proxy_tls.long (certificate, key) or proxy_tls_certificate and proxy_tls_key']);
    // Caddy gets its own certificate.
    assert.deepEqual(issues({ proxy_tls_certificate: undefined }, 'caddy'), []);
    assert.deepEqual(issues({ proxy_tls: { long: { certificate: '/etc/ssl/x.pem;\nlisten 1', key: '/k' } } }), ['proxy_tls.long.certificate: an absolute path of letters, digits and . _ / @ + -']);
    assert.deepEqual(issues({ authentik_url: 'http://10.0.0.5:9000/x' }), ['authentik_url: authentik_url: scheme://host[:port] only, e.g. http://10.0.0.5:9000 (no path, query or credentials)']);
    // URL parsing keeps these in a host name; in a config they would open a directive or a rule.
    assert.deepEqual(issues({ authentik_url: 'http://x;}server{listen' }), ['authentik_url: authentik_url: scheme://host[:port] only, e.g. http://10.0.0.5:9000 (no path, query or credentials)']);
    assert.match(issues({ authentik_applications: { ...apps, files: { ...apps.files, external_host: 'http://a`)&&!Host(`x' } } })[0]!, /^authentik_applications\.files\.external_host: /);
    assert.deepEqual(issues({ proxy_applications: ['grafana'] }), ['proxy_applications: grafana is not a forward-auth application in authentik_applications']);
    assert.equal(issues({}, 'apache')[0]!.split(':')[0], 'proxy_server');
  });

  it('a bad declaration in an inventory exits 5 naming the file and the key, before any host is touched', async () => {
    await using dir = await tempDir('hostctl-proxy-');
    const inventory = join(dir.path, 'inventory');
    await mkdir(join(inventory, 'group_vars'), { recursive: true });
    // An address nothing answers on: the run must stop before connecting.
    await writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    proxy:\n      hosts:\n        px:\n          ansible_host: 192.0.2.1\n');
    const { upstream: _, ...noUpstream } = declaration.authentik_applications.files;
    const apps = { files: noUpstream };
    await writeFile(join(inventory, 'group_vars', 'proxy.yml'), JSON.stringify({ authentik_url: declaration.authentik_url, proxy_server: 'nginx', authentik_applications: apps }));
    const r = await hostctl(['run', join(repo, 'playbooks', 'proxy.ts'), '-i', inventory]);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /group_vars\/proxy\.yml/);
    assert.match(r.stdout + r.stderr, /authentik_applications\.files\.upstream/);
    assert.doesNotMatch(r.stdout + r.stderr, /192\.0\.2\.1.*(timed out|unreachable)/i);
  });
});
