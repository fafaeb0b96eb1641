import { fileURLToPath } from 'node:url';
import { defineRole, secret, z, type Tasks } from 'hostctl';
import { dnatCleanup } from './dnat-cleanup.js';
import { postgresPassword } from './postgres-password.js';
import { calendarVersion, usesRedis } from './version.js';

const CLEANUP = '/usr/local/libexec/hostctl/netavark-dnat-cleanup';
const NETWORK = 'authentik-internal';
// A server unit that systemd gave up on will not become ready: say why instead of waiting.
const SERVER_FAILED = 'systemctl is-failed --quiet authentik-server.service && journalctl -u authentik-server.service -n 15 --no-pager -o cat';

// A value written into .env must be one line: podman's env-file format has no quoting.
const envSecret = () => secret().refine((v) => !/[\r\n]/.test(v.reveal()), 'must be a single line');

export const vars = z.object({
  authentik_version: z.string().refine((v) => calendarVersion(v) !== undefined, 'expected a calendar version like 2026.2.1'),
  authentik_image: z.string().default('ghcr.io/goauthentik/server'),
  postgres_image: z.string().default('docker.io/library/postgres:16-alpine'),
  redis_image: z.string().default('docker.io/library/redis:alpine'),
  authentik_pg_pass: envSecret(),
  authentik_secret_key: envSecret(),
  authentik_pg_db: z.string().regex(/^\w+$/).default('authentik'),
  authentik_pg_user: z.string().regex(/^\w+$/).default('authentik'),
  authentik_pg_health_retries: z.number().int().min(0).default(15),
  authentik_pg_health_delay: z.number().min(0).default(10),
  // Seconds to wait for /-/health/ready/ after a start (the first start pulls images).
  authentik_ready_timeout: z.number().int().positive().default(600),
  authentik_ready_delay: z.number().positive().default(5),
  authentik_http_port: z.number().int().min(1).max(65535).default(9000),
  authentik_https_port: z.number().int().min(1).max(65535).default(9443),
  authentik_publish_https: z.boolean().default(false),
  // Publish on one address only (e.g. a reverse proxy in front on 127.0.0.1); empty: all.
  authentik_bind_address: z.string().default(''),
  authentik_network_subnet: z.string().default(''),
  authentik_root: z.string().startsWith('/').default('/srv/authentik'),
  authentik_backup_dir: z.string().startsWith('/').default('/srv/authentik/backup'),
  authentik_podman_socket: z.string().default('/run/podman/podman.sock'),
});

function derive(v: z.infer<typeof vars>) {
  return {
    authentik_uses_redis: usesRedis(v.authentik_version),
    authentik_bind: v.authentik_bind_address ? `${v.authentik_bind_address}:` : '',
    authentik_dnat_cleanup: CLEANUP,
  };
}

const service = (unit: string) => unit.replace(/\.container$/, '.service');

// authentik as Podman Quadlet units: Postgres (and Redis before 2025.10), server and worker,
// their .env, and the order and checks that make a start, a restart or an upgrade reliable.
export const authentik = defineRole({
  name: 'authentik',
  vars,
  derive,
  templates: new URL('./templates/', import.meta.url),
  async run(h, v) {
    const root = v.authentik_root;
    for (const dir of ['', '/media', '/certs', '/custom-templates']) await h.directory({ path: `${root}${dir}`, mode: '0755', owner: 'root', group: 'root' });
    // Postgres and Redis chown their data directories inside the container: create, then leave.
    for (const dir of ['/database', ...(v.authentik_uses_redis ? ['/redis'] : [])]) {
      await h.directory({ path: `${root}${dir}`, mode: '0755', owner: 'root', group: 'root', createOnly: true });
    }
    await h.directory({ path: v.authentik_backup_dir, mode: '0700', owner: 'root', group: 'root' });
    await h.directory({ path: '/usr/local/libexec/hostctl', mode: '0755' });
    await h.file({ path: CLEANUP, source: fileURLToPath(new URL('./files/netavark-dnat-cleanup', import.meta.url)), mode: '0755' });

    const env = await h.template({ src: 'authentik.env.hbs', dest: `${root}/.env`, mode: '0600', owner: 'root', group: 'root' });

    const names = ['authentik-internal.network', 'authentik-postgresql.container', ...(v.authentik_uses_redis ? ['authentik-redis.container'] : []), 'authentik-server.container', 'authentik-worker.container'];
    const units = Object.fromEntries(names.map((n) => [n, h.rendered(`${n}.hbs`)]));
    // An older version's Redis goes: stopped while its unit still exists, then removed.
    if (!v.authentik_uses_redis) await stopRetiredRedis(h);
    const quadlet = await h.quadlet({ units, absent: v.authentik_uses_redis ? [] : ['authentik-redis.container'] });
    const changedUnits = (quadlet.data as { changed: string[] } | undefined)?.changed ?? [];

    const services = names.filter((n) => n.endsWith('.container')).map(service);
    // A masked unit cannot start; unmask before systemd re-reads the units.
    await h.command({
      name: 'unmask authentik units',
      cmd: `systemctl unmask ${services.join(' ')}`,
      onlyIf: `systemctl show -p LoadState --value ${services.join(' ')} | grep -qx masked`,
    });
    await h.daemonReload({});
    await h.units(services);

    const restart = (unit: string, onEnv: boolean) => changedUnits.includes(unit) || (onEnv && env.changed);
    await h.service({ name: 'authentik-postgresql.service', state: restart('authentik-postgresql.container', false) ? 'restarted' : 'started' });
    if (v.authentik_uses_redis) await h.service({ name: 'authentik-redis.service', state: restart('authentik-redis.container', false) ? 'restarted' : 'started' });
    await h.wait({
      what: 'postgres healthy',
      command: 'podman healthcheck run authentik-postgresql',
      retries: v.authentik_pg_health_retries,
      delaySeconds: v.authentik_pg_health_delay,
    });
    const password = await h.run(postgresPassword, { container: 'authentik-postgresql', user: v.authentik_pg_user, db: v.authentik_pg_db, password: v.authentik_pg_pass });
    await h.run(dnatCleanup, { script: CLEANUP, network: NETWORK });

    // --no-block: a first start pulls images for minutes; the wait below says when it is up,
    // and other hosts are not held up meanwhile.
    for (const unit of ['authentik-server.container', 'authentik-worker.container']) {
      const again = restart(unit, true) || password.changed;
      await h.service({ name: service(unit), state: again ? 'restarted' : 'started', noBlock: true });
    }
    const delay = v.authentik_ready_delay;
    const url = `http://127.0.0.1:${v.authentik_http_port}`;
    const patience = { retries: Math.ceil(v.authentik_ready_timeout / delay), delaySeconds: delay, giveUpWhen: SERVER_FAILED };
    await h.wait({ what: 'authentik live', url: `${url}/-/health/live/`, ...patience });
    const ready = await h.wait({ what: 'authentik ready', url: `${url}/-/health/ready/`, ...patience });
    if (ready.status === 'ok') h.note(`authentik ${v.authentik_version}: live and ready on port ${v.authentik_http_port}`);
  },
});

async function stopRetiredRedis(h: Tasks): Promise<void> {
  const [redis] = await h.units(['authentik-redis.service']);
  if (redis && redis.load !== 'not-found' && redis.active !== 'inactive') {
    await h.service({ name: 'authentik-redis.service', state: 'stopped' });
  }
}
