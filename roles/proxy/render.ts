import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { stringify } from 'yaml';
import { inputError } from 'hostctl';
import { isForward, type Application } from '../authentik/applications.js';
import { served, tlsOf, type Vars } from './vars.js';

// The proxy configurations, rendered on the controller from the declaration: pure functions,
// so what each proxy gets is tested without a proxy (test/roles/proxy-render.test.ts).

export const OUTPOST = '/outpost.goauthentik.io';
// The identity headers authentik's outpost answers an allowed request with (authentik docs,
// "Proxy provider > Server configuration"); Caddy needs them capitalised as here.
export const IDENTITY_HEADERS = [
  'X-Authentik-Username', 'X-Authentik-Groups', 'X-Authentik-Entitlements', 'X-Authentik-Email', 'X-Authentik-Name', 'X-Authentik-Uid',
  'X-Authentik-Jwt', 'X-Authentik-Meta-Jwks', 'X-Authentik-Meta-Outpost', 'X-Authentik-Meta-Provider', 'X-Authentik-Meta-App', 'X-Authentik-Meta-Version',
];
const HEADER = '# Managed by hostctl (the proxy role) from authentik_applications: edits are overwritten.';

// One forward-auth application as a proxy serves it.
export interface Site {
  key: string;
  // Where it is reached: the external host's URL, its host name and port.
  url: string;
  hostname: string;
  port: number;
  https: boolean;
  tls: { certificate: string; key: string } | undefined;
  upstream: string;
}

export function sites(v: Vars): Site[] {
  return served(v).map(([key, app]) => {
    const u = new URL(app.external_host);
    const https = u.protocol === 'https:';
    return { key, url: u.origin, hostname: u.hostname, port: Number(u.port || (https ? 443 : 80)), https, tls: https ? tlsOf(v, key) : undefined, upstream: new URL(app.upstream!).origin };
  });
}

// nginx: authentik's documented auth_request setup, one server block per application.
export function nginxConfig(v: Vars): string {
  const authentik = new URL(v.authentik_url).origin;
  const blocks = sites(v).map((s) => {
    const listen = s.https ? `${s.port} ssl` : `${s.port}`;
    const tls = s.tls ? [`    ssl_certificate     ${s.tls.certificate};`, `    ssl_certificate_key ${s.tls.key};`] : [];
    const identity = IDENTITY_HEADERS.map((h) => h.toLowerCase().replace(/-/g, '_'));
    const outpostHost = v.nginx_outpost_host === 'hostname' ? s.hostname : new URL(s.url).host;
    return [
      `# ${s.key}: ${s.url}`,
      'server {',
      `    listen ${listen};`,
      `    listen [::]:${listen};`,
      `    server_name ${s.hostname};`,
      ...tls,
      '    # authentik answers with large headers (a JWT among them).',
      '    proxy_buffers 8 16k;',
      '    proxy_buffer_size 32k;',
      // The sign-in redirect stays relative, so the browser keeps the host and port it used
      // (authentik's snippet has port_in_redirect off, which drops a non-default port).
      '    absolute_redirect off;',
      '',
      '    location / {',
      `        proxy_pass ${s.upstream};`,
      '        proxy_set_header Host $http_host;',
      '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      '        proxy_set_header X-Forwarded-Proto $scheme;',
      '        proxy_set_header Upgrade $http_upgrade;',
      '        proxy_set_header Connection $http_connection;',
      '',
      `        auth_request ${OUTPOST}/auth/nginx;`,
      '        error_page 401 = @goauthentik_proxy_signin;',
      '        auth_request_set $auth_cookie $upstream_http_set_cookie;',
      '        add_header Set-Cookie $auth_cookie;',
      '        # Identity from the auth response only: a header named in proxy_set_header is never',
      "        # copied from the client, and an empty value sends none.",
      ...identity.map((h) => `        auth_request_set $${h} $upstream_http_${h};`),
      ...IDENTITY_HEADERS.map((h, i) => `        proxy_set_header ${h} $${identity[i]};`),
      '    }',
      '',
      `    location ${OUTPOST} {`,
      `        proxy_pass ${authentik};`,
      '        # authentik picks the provider by these (nginx_outpost_host): this block\'s own,',
      '        # never what the client sent.',
      `        proxy_set_header Host ${outpostHost};`,
      `        proxy_set_header X-Forwarded-Host ${outpostHost};`,
      `        proxy_set_header X-Original-URL ${s.url}$request_uri;`,
      '        add_header Set-Cookie $auth_cookie;',
      '        auth_request_set $auth_cookie $upstream_http_set_cookie;',
      '        proxy_pass_request_body off;',
      '        proxy_set_header Content-Length "";',
      '    }',
      '',
      '    location @goauthentik_proxy_signin {',
      '        internal;',
      '        add_header Set-Cookie $auth_cookie;',
      `        return 302 ${OUTPOST}/start?rd=${s.url}$request_uri;`,
      '    }',
      '}',
    ].join('\n');
  });
  return `${HEADER}\n\n${blocks.join('\n\n')}\n`;
}

// Caddy: authentik's documented forward_auth with copy_headers, inside `route` so the
// directives run in the order written.
export function caddyConfig(v: Vars): string {
  const authentik = new URL(v.authentik_url).origin;
  const blocks = sites(v).map((s) => {
    // http:// sites: Caddy serves them without TLS and never asks for a certificate.
    const address = s.https ? `https://${s.hostname}:${s.port}` : `http://${s.hostname}:${s.port}`;
    return [
      `# ${s.key}: ${s.url}`,
      `${address} {`,
      ...(s.tls ? [`\ttls ${s.tls.certificate} ${s.tls.key}`] : []),
      '\troute {',
      // A client never sends identity: copy_headers leaves a header the outpost did not
      // answer with as the client sent it.
      '\t\trequest_header -X-Authentik-*',
      `\t\treverse_proxy ${OUTPOST}/* ${authentik}`,
      `\t\tforward_auth ${authentik} {`,
      `\t\t\turi ${OUTPOST}/auth/caddy`,
      `\t\t\tcopy_headers ${IDENTITY_HEADERS.join(' ')}`,
      '\t\t}',
      `\t\treverse_proxy ${s.upstream}`,
      '\t}',
      '}',
    ].join('\n');
  });
  return `${HEADER}\n\n${blocks.join('\n\n')}\n`;
}

const ruleOf = (s: Site) => `Host(\`${s.hostname}\`)`;
const outpostRuleOf = (s: Site) => `${ruleOf(s)} && PathPrefix(\`${OUTPOST}/\`)`;

// Traefik: a file-provider configuration. Traefik ranks routers by rule length unless given
// a priority, so a longer app rule would win over the outpost route and logins would loop:
// every router gets an explicit one, each app its rule's length (what Traefik would have
// used), each outpost router one above the longest rule here.
export function traefikConfig(v: Vars): Record<string, unknown> {
  const all = sites(v);
  const outpostPriority = Math.max(0, ...all.flatMap((s) => [ruleOf(s).length, outpostRuleOf(s).length])) + 1;
  const routers: Record<string, unknown> = {};
  const services: Record<string, unknown> = { 'hostctl-authentik': { loadBalancer: { servers: [{ url: new URL(v.authentik_url).origin }] } } };
  const certificates: { certFile: string; keyFile: string }[] = [];
  for (const s of all) {
    const tls = s.https ? { tls: {} } : {};
    routers[`hostctl-${s.key}`] = { rule: ruleOf(s), priority: ruleOf(s).length, middlewares: ['hostctl-authentik'], service: `hostctl-${s.key}`, ...tls };
    routers[`hostctl-${s.key}-outpost`] = { rule: outpostRuleOf(s), priority: outpostPriority, service: 'hostctl-authentik', ...tls };
    services[`hostctl-${s.key}`] = { loadBalancer: { servers: [{ url: s.upstream }] } };
    if (s.tls) certificates.push({ certFile: s.tls.certificate, keyFile: s.tls.key });
  }
  return {
    http: {
      middlewares: {
        'hostctl-authentik': {
          forwardAuth: {
            address: `${new URL(v.authentik_url).origin}${OUTPOST}/auth/traefik`,
            trustForwardHeader: true,
            authResponseHeaders: IDENTITY_HEADERS,
          },
        },
      },
      routers,
      services,
    },
    ...(certificates.length ? { tls: { certificates } } : {}),
  };
}

// Refuses (exit 5) a Traefik configuration that does not validate against Traefik's
// published file-provider schema.
export function checkTraefik(config: unknown): void {
  // Read and compiled per check (a role keeps no module state; a run checks once per host).
  const schema = createRequire(import.meta.url)('./schemas/traefik-v3-file-provider.json') as object;
  // strict: false: SchemaStore's schema carries keywords Ajv does not know (it uses no formats).
  const validator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  if (!validator(config)) {
    const errors = (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw inputError(`the Traefik configuration rendered from authentik_applications does not validate against Traefik's file-provider schema: ${errors}`);
  }
}

export function traefikYaml(v: Vars): string {
  const config = traefikConfig(v);
  checkTraefik(config);
  return `${HEADER}\n${stringify(config)}`;
}

// What an OIDC client needs; the secret stays in the vault.
export function oidcClients(v: Vars): { key: string; issuer: string; client_id: string; discovery: string }[] {
  const base = new URL(v.authentik_public_url ?? v.authentik_url).origin;
  return Object.entries(v.authentik_applications as Record<string, Application>)
    .filter(([, app]) => !isForward(app))
    .map(([key, app]) => {
      const issuer = `${base}/application/o/${key}/`;
      return { key, issuer, client_id: (app as Extract<Application, { protect: 'oidc' }>).client_id, discovery: `${issuer}.well-known/openid-configuration` };
    });
}
