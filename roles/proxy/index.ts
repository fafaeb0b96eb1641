import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { defineRole, quote, type Tasks } from 'hostctl';
import { caddyConfig, nginxConfig, oidcClients, sites, traefikYaml } from './render.js';
import { smoke } from './smoke.js';
import { vars, type Vars } from './vars.js';

const LIBEXEC = '/usr/local/libexec/hostctl';
const NGINX_CHECK = `${LIBEXEC}/nginx-check`;
const NGINX_RELOAD = `${LIBEXEC}/nginx-reload`;
// Debian's caddy.service reloads this file (ExecReload=caddy reload --config /etc/caddy/Caddyfile).
export const CADDYFILE = '/etc/caddy/Caddyfile';
export const CADDY_CHECK = 'caddy validate --adapter caddyfile --config %s';
export const nginxCheck = (target: string) => `${NGINX_CHECK} %s ${quote(target)}`;
const file = (name: string) => fileURLToPath(new URL(`./files/${name}`, import.meta.url));

// The reverse proxy in front of authentik's forward-auth applications, from the same
// authentik_applications the authentik role turns into a blueprint: nginx or Caddy installed
// and configured (each change checked by the proxy itself before it replaces the old file,
// then a reload), or a Traefik file-provider file; then requests that prove the wiring.
export const proxy = defineRole({
  name: 'proxy',
  vars,
  // A reload, not a restart: open connections finish. Notified ahead of the change, so a run
  // killed after the new file and before the reload leaves the reload to the next run.
  handlers: {
    // Returns once the workers run the new configuration: the smoke test after it judges the
    // new wiring, never the old one still being served.
    'reload nginx': (h) => h.command({ name: 'reload nginx', cmd: NGINX_RELOAD }),
    'reload caddy': (h) => h.service({ name: 'caddy.service', state: 'reloaded' }),
  },
  // The Traefik file is checked against its schema before any host is touched.
  async preflight(_h, v) {
    if (v.proxy_server === 'traefik') traefikYaml(v);
  },
  async run(h, v) {
    if (v.proxy_server === 'nginx') {
      await h.apt({ packages: ['nginx', 'curl'] });
      await h.directory({ path: LIBEXEC, mode: '0755' });
      await h.file({ path: NGINX_CHECK, source: file('nginx-check'), mode: '0755' });
      await h.file({ path: NGINX_RELOAD, source: file('nginx-reload'), mode: '0755' });
      await h.file({ path: v.nginx_config, content: nginxConfig(v), mode: '0644', validate: nginxCheck(v.nginx_config), notify: 'reload nginx' });
      await h.service({ name: 'nginx.service', state: 'started', enabled: true });
    } else if (v.proxy_server === 'caddy') {
      await h.apt({ packages: ['caddy', 'curl'] });
      await h.file({ path: CADDYFILE, content: caddyConfig(v), mode: '0644', validate: CADDY_CHECK, notify: 'reload caddy' });
      await h.service({ name: 'caddy.service', state: 'started', enabled: true });
    } else {
      // Traefik watches the file and takes a new one by itself.
      await h.apt({ packages: ['curl'] });
      await h.directory({ path: dirname(v.traefik_config), mode: '0755' });
      await h.file({ path: v.traefik_config, content: traefikYaml(v), mode: '0644' });
    }
    await oidcInfo(h, v);
    await h.flushHandlers();
    // Against what runs now; in --check nothing was applied, so there is nothing new to prove.
    if (v.proxy_smoke && !h.check) for (const site of sites(v)) await h.run(smoke, { site });
  },
});

// OIDC applications need no proxy glue: what their client side needs, printed or written
// to the file the user names. The client secret stays in the vault.
async function oidcInfo(h: Tasks, v: Vars): Promise<void> {
  const clients = oidcClients(v);
  if (!clients.length) return;
  if (v.proxy_oidc_info_file) {
    const text = stringify(Object.fromEntries(clients.map(({ key, ...c }) => [key, c])));
    await h.file({ path: v.proxy_oidc_info_file, content: `# OIDC clients of authentik (hostctl, the proxy role); the secrets are in the vault.\n${text}`, mode: '0644' });
  } else {
    for (const c of clients) h.note(`OIDC ${c.key}: issuer ${c.issuer}, client_id ${c.client_id}, discovery ${c.discovery}`);
  }
}
