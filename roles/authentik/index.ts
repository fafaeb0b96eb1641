import { fileURLToPath } from 'node:url';
import { HostctlError, commandFact, defineRole, hostError, quote, secret, z, type Tasks } from 'hostctl';
import { clientSecretEnv, declarationVars, declaredGroupsOnly, isForward } from './applications.js';
import { APPLY_BLUEPRINT, applyBlueprint, planBlueprint, writeBlueprint, type BlueprintPlan } from './blueprint-apply.js';
import { dnatCleanup } from './dnat-cleanup.js';
import { dataMajor, postgresMajorGuard } from './postgres-major.js';
import { postgresPassword, type PasswordCheck } from './postgres-password.js';
import { METRICS_DIR, installRestic, resticChecks, resticVars } from './restic.js';
import { APP_SERVICES, BACKUP_SCRIPT, BACKUP_SERVICE, BACKUP_TIMER, CLEANUP, LIBEXEC, METRICS_SCRIPT, RESTORE_SCRIPT, appUrl, postgresHealthy, waitReady } from './stack.js';
import { UPGRADE, finishUpgrade, prepareUpgrade, readDeployed, rollback, saveDeployed, type Upgrade } from './upgrade.js';
import { calendarVersion, usesRedis } from './version.js';

const NETWORK = 'authentik-internal';
// The authentik user of ghcr.io/goauthentik/server (`adduser --uid 1000` in its Dockerfile).
const AUTHENTIK_UID = '1000';
const file = (name: string) => fileURLToPath(new URL(`./files/${name}`, import.meta.url));
// The timer's calendar, checked by systemd itself on the uploaded file before it replaces the old one.
const CALENDAR_CHECK = `systemd-analyze calendar -- "$(sed -n 's/^OnCalendar=//p' %s)" >/dev/null`;

// A value written into .env must be one line: podman's env-file format has no quoting.
const envSecret = () => secret().refine((v) => !/[\r\n]/.test(v.reveal()), 'must be a single line');

export const fields = z.object({
  authentik_version: z.string().refine((v) => calendarVersion(v) !== undefined, 'expected a calendar version like 2026.2.1'),
  authentik_image: z.string().default('ghcr.io/goauthentik/server'),
  postgres_image: z.string().default('docker.io/library/postgres:16-alpine'),
  redis_image: z.string().default('docker.io/library/redis:alpine'),
  // As the Ansible role's defaults: the seed inventory keeps only the vault_* names, in
  // host_vars/<host>/vault.yml; setting these two directly works too.
  authentik_pg_pass: envSecret().meta({ default: '{{ vault_authentik_pg_pass }}' }),
  authentik_secret_key: envSecret().meta({ default: '{{ vault_authentik_secret_key }}' }),
  authentik_pg_db: z.string().regex(/^\w+$/).default('authentik'),
  authentik_pg_user: z.string().regex(/^\w+$/).default('authentik'),
  authentik_pg_health_retries: z.number().int().min(0).default(15),
  authentik_pg_health_delay: z.number().min(0).default(10),
  // Days between comparisons of the database password with the vault's when .env did not
  // change (see postgres-password.ts); 0: every run.
  authentik_pg_password_check_days: z.number().int().min(0).default(7),
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
  // The host's podman API, for authentik's Docker outpost integration (it deploys outposts as
  // containers). Whoever controls the worker then controls podman, i.e. root on the host: a
  // socket mounted :ro still serves the whole API. Empty: not mounted.
  authentik_podman_socket: z.string().refine((p) => p === '' || p.startsWith('/'), 'an absolute path, or empty for none').default('/run/podman/podman.sock'),
  // The on-host nightly backup (authentik-backup.timer): a systemd calendar expression,
  // a random delay in seconds on top, and how many days of backup sets stay on the host.
  authentik_backup_calendar: z.string().regex(/^[^\r\n]+$/, 'must be one line').default('*-*-* 03:15:00'),
  authentik_backup_randomized_delay: z.number().int().min(0).default(1800),
  authentik_backup_keep_days: z.number().int().min(1).default(14),
  // Also archive media, certs and custom-templates with each nightly dump.
  authentik_backup_files: z.boolean().default(true),
  // An API token (a vault value): written to .env as AUTHENTIK_BOOTSTRAP_TOKEN, which creates
  // it at authentik's first start; the role asks the API whether the blueprint applied. It
  // goes into curl's config file format: no quotes, backslashes or spaces.
  authentik_api_token: envSecret()
    .refine((v) => /^[\x21-\x7e]+$/.test(v.reveal()) && !/["\\]/.test(v.reveal()), 'printable ASCII without spaces, quotes or backslashes')
    .optional(),
  // Applications, providers and groups, rendered as a blueprint (applications.ts, blueprint.ts).
  ...declarationVars,
  // Off-host copies in a restic repository, and the backup's metrics (restic.ts).
  ...resticVars,
});
// The role's variables with the checks across them. Other playbooks' roles (backup, restore,
// postgres-upgrade) pick from or extend `fields`: zod refuses that on a refined object.
export const vars = fields.superRefine((v, ctx) => {
  declaredGroupsOnly(v, ctx);
  resticChecks(v, ctx);
});

export function derive(v: z.infer<typeof vars>) {
  return {
    authentik_uses_redis: usesRedis(v.authentik_version),
    authentik_bind: v.authentik_bind_address ? `${v.authentik_bind_address}:` : '',
    authentik_dnat_cleanup: CLEANUP,
    authentik_backup_script: BACKUP_SCRIPT,
    // The OIDC client secrets, for .env: the blueprint reads them with !Env.
    authentik_client_secrets: Object.entries(v.authentik_applications).flatMap(([slug, a]) =>
      !isForward(a) && a.client_secret ? [{ name: clientSecretEnv(slug), value: a.client_secret }] : [],
    ),
    authentik_backup_metrics_dir: METRICS_DIR,
  };
}

const service = (unit: string) => unit.replace(/\.container$/, '.service');

// authentik as Podman Quadlet units: Postgres (and Redis before 2025.10), server and worker,
// their .env, and the order and checks that make a start, a restart or an upgrade reliable;
// a nightly verified backup; and an upgrade that rolls itself back when the new version
// does not become ready.
export const authentik = defineRole({
  name: 'authentik',
  vars,
  derive,
  templates: new URL('./templates/', import.meta.url),
  prefetch: true,
  // Before anything on any host is written: a calendar systemd understands, a Postgres
  // image of the data directory's major version, and a blueprint authentik's schema accepts.
  async preflight(h, v): Promise<{ blueprint: BlueprintPlan | undefined }> {
    // Asked together, so all are read in the host's first round trip.
    const [cal, , blueprint] = await Promise.all([
      h.fact(commandFact(`systemd-analyze calendar -- ${quote(v.authentik_backup_calendar)} 2>&1`)),
      h.fact(dataMajor(v.authentik_root)),
      planBlueprint(h, v),
    ]);
    if (cal.code !== 0) {
      throw hostError(`authentik_backup_calendar "${v.authentik_backup_calendar}" is not a calendar expression systemd accepts on ${h.host}: ${cal.stdout.trim().split('\n').pop()}`, {
        hint: 'e.g. "*-*-* 03:15:00" or "daily"; try it with: systemd-analyze calendar --iterations=3 "EXPR"',
      });
    }
    await postgresMajorGuard(h, v.authentik_root, v.postgres_image);
    return { blueprint };
  },
  async run(h, v, checked) {
    const root = v.authentik_root;
    for (const dir of ['', '/custom-templates']) await h.directory({ path: `${root}${dir}`, mode: '0755', owner: 'root', group: 'root' });
    // The containers own the rest, each image's entrypoint chowning its directories on every
    // start as root: created as the image leaves them, then left to it. media and certs go to
    // authentik (uid 1000; the worker's `ak` does chown -R, chmod ug+rwx media), so the server,
    // which runs as 1000 and never chowns, can write /media from its first start on.
    for (const [dir, mode] of [['/media', '0775'], ['/certs', '0755']] as const) {
      await h.directory({ path: `${root}${dir}`, mode, owner: AUTHENTIK_UID, group: AUTHENTIK_UID, createOnly: true });
    }
    // Postgres (70 in the alpine image, 999 in the Debian one) and Redis (999) take the owner
    // only and keep the group; Postgres makes its data 0700.
    await h.directory({ path: `${root}/database`, mode: '0700', owner: 'root', group: 'root', createOnly: true });
    if (v.authentik_uses_redis) await h.directory({ path: `${root}/redis`, mode: '0755', owner: 'root', group: 'root', createOnly: true });
    await h.directory({ path: v.authentik_backup_dir, mode: '0700', owner: 'root', group: 'root' });
    await h.directory({ path: LIBEXEC, mode: '0755' });
    await h.file({ path: CLEANUP, source: file('netavark-dnat-cleanup'), mode: '0755' });
    await h.file({ path: BACKUP_SCRIPT, source: file('authentik-backup'), mode: '0755' });
    await h.file({ path: RESTORE_SCRIPT, source: file('authentik-restore'), mode: '0755' });
    await h.file({ path: METRICS_SCRIPT, source: file('authentik-metrics'), mode: '0755' });
    await installRestic(h, v);
    await h.unit({ name: BACKUP_SERVICE, content: h.rendered('authentik-backup.service.hbs') });
    await h.unit({ name: BACKUP_TIMER, content: h.rendered('authentik-backup.timer.hbs'), validate: CALENDAR_CHECK });
    await writeBlueprint(h, v, checked?.blueprint, checked === undefined);

    // A different image than the server runs is an upgrade: a dump first, a rollback if the
    // new version does not become ready. One a killed run began is finished first.
    const wanted = `${v.authentik_image}:${v.authentik_version}`;
    const interrupted = await h.pending(UPGRADE);
    if (interrupted) {
      await finishUpgrade(h, v, interrupted, wanted, deploy);
      return applyBlueprint(h, v, checked?.blueprint);
    }
    const deployed = await readDeployed(h, root);
    const upgrade: Upgrade | undefined =
      deployed.image && deployed.image !== wanted ? { from: deployed.image, to: wanted, version: v.authentik_version, deployed } : undefined;
    try {
      if (upgrade) {
        await saveDeployed(h, upgrade);
        await prepareUpgrade(h, v, upgrade);
      }
      await deploy(h, v);
    } catch (error) {
      const gone = error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable');
      if (!upgrade || h.check || gone) throw error;
      await rollback(h, v, upgrade, error);
    }
    if (upgrade && !h.check) {
      h.clearPending(UPGRADE);
      h.note(`upgraded authentik from ${upgrade.from} to ${upgrade.to}`);
    }
    await applyBlueprint(h, v, checked?.blueprint);
  },
});

type Vars = z.infer<typeof vars> & ReturnType<typeof derive>;

// A restart a change makes due, recorded ahead of the change (see TaskOptions.pending): a
// run killed before the restart leaves it to the next.
const restartOf = (unit: string) => `restart ${unit}`;

// A comparison of the database password with .env's, due after .env changed (recorded ahead
// of the change, like the restarts: a run killed before the comparison leaves it to the next).
const CHECK_PASSWORD = 'compare the postgres password';

async function deploy(h: Tasks, v: Vars): Promise<void> {
  const root = v.authentik_root;
  const app = APP_SERVICES.map(restartOf);
  // A changed client secret reaches authentik with the next apply of the blueprint.
  await h.template({ src: 'authentik.env.hbs', dest: `${root}/.env`, mode: '0600', owner: 'root', group: 'root', pending: [...app, CHECK_PASSWORD, APPLY_BLUEPRINT] });

  const names = ['authentik-internal.network', 'authentik-postgresql.container', ...(v.authentik_uses_redis ? ['authentik-redis.container'] : []), 'authentik-server.container', 'authentik-worker.container'];
  const units = Object.fromEntries(names.map((n) => [n, h.rendered(`${n}.hbs`)]));
  // An older version's Redis goes: stopped while its unit still exists, then removed.
  if (!v.authentik_uses_redis) await stopRetiredRedis(h);
  const containers = names.filter((n) => n.endsWith('.container'));
  await h.quadlet({
    units,
    absent: v.authentik_uses_redis ? [] : ['authentik-redis.container'],
    pending: Object.fromEntries(containers.map((n) => [n, [restartOf(service(n))]])),
  });

  const services = containers.map(service);
  // A masked unit cannot start; unmask before systemd re-reads the units. (The states come
  // from the role's prefetch when nothing changed.)
  const masked = (await h.units(services)).filter((u) => u.load === 'masked').map((u) => u.id);
  if (masked.length) await h.command({ name: 'unmask authentik units', cmd: `systemctl unmask ${masked.join(' ')}` });
  await h.daemonReload({});
  await h.units([...services, BACKUP_TIMER]);
  await h.service({ name: BACKUP_TIMER, state: 'started', enabled: true });

  // Restarted when this run's change, or a killed run's, made it due; the restart clears it.
  const start = async (unit: string, noBlock = false) => {
    const due = (await h.pending(restartOf(unit))) !== undefined;
    return h.service({ name: unit, state: due ? 'restarted' : 'started', clears: restartOf(unit), ...(noBlock ? { noBlock } : {}) });
  };
  const postgres = await start('authentik-postgresql.service');
  if (v.authentik_uses_redis) await start('authentik-redis.service');
  await postgresHealthy(h, v, postgres.changed);
  const password = await h.run(postgresPassword, {
    container: 'authentik-postgresql', user: v.authentik_pg_user, db: v.authentik_pg_db, password: v.authentik_pg_pass, pending: app,
    // Also when server and worker are to restart: a password that drifted unnoticed while
    // their connections stayed open would lock them out now.
    due: (await Promise.all([CHECK_PASSWORD, ...app].map((name) => h.pending(name)))).some((p) => p !== undefined),
    stamp: `${h.stateDir}/authentik-postgres-password-checked`,
    everyDays: v.authentik_pg_password_check_days,
    scheduledWhile: `curl -sf -o /dev/null --max-time 5 ${quote(`${appUrl(v)}/-/health/ready/`)}`,
  });
  if ((password.data as PasswordCheck | undefined)?.compared) h.clearPending(CHECK_PASSWORD);
  await h.run(dnatCleanup, { script: CLEANUP, network: NETWORK });

  // --no-block: a first start pulls images for minutes; the wait below says when it is up,
  // and other hosts are not held up meanwhile.
  for (const unit of APP_SERVICES) await start(unit, true);
  const ready = await waitReady(h, v);
  if (ready.status === 'ok') h.note(`authentik ${v.authentik_version}: live and ready on port ${v.authentik_http_port}`);
}

async function stopRetiredRedis(h: Tasks): Promise<void> {
  const [redis] = await h.units(['authentik-redis.service']);
  if (redis && redis.load !== 'not-found' && redis.active !== 'inactive') {
    await h.service({ name: 'authentik-redis.service', state: 'stopped' });
  }
}
