import { z } from 'hostctl';
import { declarationVars, isForward, plainHost, type Application, type ForwardApplication } from '../authentik/applications.js';

// The proxy role's variables: the same `authentik_applications` the authentik role turns into
// a blueprint, how this host reaches authentik, and which proxy it runs.

// Paths go into nginx, Caddy and Traefik files unquoted: plain characters only, so no value
// can add a directive.
const path = () => z.string().regex(/^\/[A-Za-z0-9._/@+-]+$/, 'an absolute path of letters, digits and . _ / @ + -');
const origin = (what: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && u.pathname === '/' && !u.search && !u.hash && plainHost(u.hostname);
    } catch {
      return false;
    }
  }, `${what}: scheme://host[:port] only, e.g. http://10.0.0.5:9000 (no path, query or credentials)`);

const tls = z.strictObject({ certificate: path(), key: path() });

export const vars = z
  .object({
    authentik_applications: declarationVars.authentik_applications,
    // How this proxy reaches authentik's embedded outpost, e.g. http://10.0.0.5:9000.
    authentik_url: origin('authentik_url'),
    // authentik as users and OIDC clients see it (the issuer's base); authentik_url by default.
    authentik_public_url: origin('authentik_public_url').optional(),
    proxy_server: z.enum(['nginx', 'caddy', 'traefik']),
    // The forward-auth applications this host serves, by key; every one by default.
    proxy_applications: z.array(z.string()).optional(),
    // Certificate and key for https:// external hosts, per application key, or one pair for all.
    proxy_tls: z.record(z.string(), tls).default({}),
    proxy_tls_certificate: path().optional(),
    proxy_tls_key: path().optional(),
    // The host nginx's outpost location names to authentik (Host and X-Forwarded-Host), which
    // picks the provider by it: `external_host` is the application's own, port included
    // (authentik's external_host keeps a non-default port, so it must arrive); `hostname`
    // drops the port, as guides writing `$host` have it. Always the server block's own
    // literal, never the client's Host or X-Forwarded-Host: a client naming another
    // application there would be judged by that application's policy.
    nginx_outpost_host: z.enum(['external_host', 'hostname']).default('external_host'),
    nginx_config: path().default('/etc/nginx/conf.d/hostctl-proxy.conf'),
    // Where Traefik's file provider watches (`providers.file.directory` or `.filename`).
    traefik_config: path().default('/etc/traefik/dynamic/hostctl-authentik.yml'),
    // Where the role writes what OIDC clients need (issuer, client id, discovery URL) on this
    // host; printed as notes only when unset.
    proxy_oidc_info_file: path().optional(),
    // The requests after every change that prove the wiring (see smoke.ts).
    proxy_smoke: z.boolean().default(true),
  })
  .superRefine((v, ctx) => {
    const apps = v.authentik_applications as Record<string, Application>;
    for (const key of v.proxy_applications ?? []) {
      const app = apps[key];
      if (!app || !isForward(app)) ctx.addIssue({ code: 'custom', path: ['proxy_applications'], message: `${key} is not a forward-auth application in authentik_applications` });
    }
    for (const [key, app] of served(v)) {
      if (!app.upstream) {
        ctx.addIssue({ code: 'custom', path: ['authentik_applications', key, 'upstream'], message: `${key} is served by this ${v.proxy_server} host and needs upstream: where its requests go, e.g. http://10.0.0.7:3923` });
      } else if (!origin('').safeParse(app.upstream).success) {
        ctx.addIssue({ code: 'custom', path: ['authentik_applications', key, 'upstream'], message: 'scheme://host[:port] only (no path or query)' });
      }
      // Caddy gets a certificate by itself; nginx and Traefik need one named.
      if (new URL(app.external_host).protocol === 'https:' && v.proxy_server !== 'caddy' && !tlsOf(v, key)) {
        ctx.addIssue({ code: 'custom', path: ['proxy_tls', key], message: `${app.external_host} is https: set proxy_tls.${key} (certificate, key) or proxy_tls_certificate and proxy_tls_key` });
      }
    }
  });

export type Vars = z.infer<typeof vars>;

// The forward-auth applications this host serves, in declaration order.
export function served(v: Pick<Vars, 'authentik_applications' | 'proxy_applications'>): [string, ForwardApplication][] {
  const apps = Object.entries(v.authentik_applications as Record<string, Application>).filter((e): e is [string, ForwardApplication] => isForward(e[1]));
  return v.proxy_applications ? apps.filter(([key]) => v.proxy_applications!.includes(key)) : apps;
}

export function tlsOf(v: Pick<Vars, 'proxy_tls' | 'proxy_tls_certificate' | 'proxy_tls_key'>, key: string): { certificate: string; key: string } | undefined {
  if (v.proxy_tls[key]) return v.proxy_tls[key];
  return v.proxy_tls_certificate && v.proxy_tls_key ? { certificate: v.proxy_tls_certificate, key: v.proxy_tls_key } : undefined;
}
