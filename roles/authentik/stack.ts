import { defineResource, hostError, quote, unitJournalCommand, type Tasks } from 'hostctl';

// What the authentik role installs for backups, and the steps the role and the backup,
// restore and postgres-upgrade playbooks share: stop the app, make sure Postgres answers,
// take a dump, restore one, start the app and wait until it is ready.

export const LIBEXEC = '/usr/local/libexec/hostctl';
export const BACKUP_SCRIPT = `${LIBEXEC}/authentik-backup`;
export const RESTORE_SCRIPT = `${LIBEXEC}/authentik-restore`;
export const METRICS_SCRIPT = `${LIBEXEC}/authentik-metrics`;
export const CLEANUP = `${LIBEXEC}/netavark-dnat-cleanup`;
export const BACKUP_SERVICE = 'authentik-backup.service';
export const BACKUP_TIMER = 'authentik-backup.timer';
export const POSTGRES = 'authentik-postgresql';
export const APP_SERVICES = ['authentik-server.service', 'authentik-worker.service'] as const;
// A server unit that systemd gave up on will not become ready: say why instead of waiting.
export const SERVER_FAILED = `systemctl is-failed --quiet authentik-server.service && { ${unitJournalCommand('authentik-server.service')}; }`;

// The variables these steps read (a subset of the role's).
export interface StackVars {
  authentik_root: string;
  authentik_backup_dir: string;
  authentik_pg_db: string;
  authentik_pg_user: string;
  authentik_pg_health_retries: number;
  authentik_pg_health_delay: number;
  authentik_ready_timeout: number;
  authentik_ready_delay: number;
  authentik_http_port: number;
  // Set: dumps go into this restic repository too (see restic.ts).
  authentik_backup_repository?: string;
}

// The keys of StackVars, to pick them from the role's variables: fields.pick(STACK_VARS).
export const STACK_VARS = {
  authentik_root: true,
  authentik_backup_dir: true,
  authentik_pg_db: true,
  authentik_pg_user: true,
  authentik_pg_health_retries: true,
  authentik_pg_health_delay: true,
  authentik_ready_timeout: true,
  authentik_ready_delay: true,
  authentik_http_port: true,
  authentik_backup_repository: true,
} as const;

// A dump's time, from its name: authentik-20260315T031500Z... -> 2026-03-15 03:15:00 UTC.
export function dumpTime(name: string): string | undefined {
  const m = /authentik-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(name);
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]} UTC` : undefined;
}

// Server and worker stopped: nothing writes to the database any more.
export async function stopApp(h: Tasks): Promise<void> {
  for (const name of APP_SERVICES) await h.service({ name, state: 'stopped' });
}

// Server and worker stopped and a verified dump taken of the database nothing writes to any
// more, e.g. before an upgrade. The backup script does both under the backup directory's lock,
// the one the nightly authentik-backup.service takes: a backup the timer starts meanwhile
// waits for this one, never this one for it with authentik already down. A backup running
// now is waited for first, with a line naming it, while authentik still serves. Returns the
// dump's path on the host, or undefined in check mode (and in a recording pass).
export async function stopAndDump(h: Tasks, v: StackVars, label: string): Promise<string | undefined> {
  await h.wait({ what: 'the running backup to finish', lock: `${v.authentik_backup_dir}/.lock`, retries: 719, delaySeconds: 5 });
  await ensurePostgres(h, v);
  const r = await h.command({
    name: `stop ${APP_SERVICES.join(', ')} and dump database ${v.authentik_pg_db} (${label})`,
    cmd: [BACKUP_SCRIPT, '--dir', v.authentik_backup_dir, '--root', v.authentik_root, '--container', POSTGRES,
      '--user', v.authentik_pg_user, '--db', v.authentik_pg_db, '--label', label, '--no-files', '--keep-days', '0',
      ...APP_SERVICES.flatMap((unit) => ['--stop', unit]), ...(v.authentik_backup_repository ? ['--restic'] : [])].map(quote).join(' '),
  });
  const out = (r.data as { stdout?: string } | undefined)?.stdout?.trim();
  return out ? out.split('\n').pop() : undefined;
}

// Postgres running and answering pg_isready (its health check).
export async function ensurePostgres(h: Tasks, v: StackVars): Promise<void> {
  const started = await h.service({ name: `${POSTGRES}.service`, state: 'started' });
  await postgresHealthy(h, v, started.changed);
}

// Postgres answers its health check: a real check when it was (re)started just now,
// otherwise podman's own record, when fresh (see the wait resource's recordedHealth).
export async function postgresHealthy(h: Tasks, v: StackVars, startedNow: boolean): Promise<void> {
  await h.wait({
    what: 'postgres healthy',
    container: POSTGRES,
    recordedHealth: !startedNow,
    retries: v.authentik_pg_health_retries,
    delaySeconds: v.authentik_pg_health_delay,
  });
}

// authentik's HTTP port as the host itself reaches it.
export const appUrl = (v: Pick<StackVars, 'authentik_http_port'>) => `http://127.0.0.1:${v.authentik_http_port}`;

// Waits for /-/health/live/ and /-/health/ready/ within authentik_ready_timeout; the ready
// wait's result.
export async function waitReady(h: Tasks, v: StackVars) {
  const delay = v.authentik_ready_delay;
  const patience = { retries: Math.max(1, Math.ceil(v.authentik_ready_timeout / delay)), delaySeconds: delay, giveUpWhen: SERVER_FAILED };
  await h.wait({ what: 'authentik live', url: `${appUrl(v)}/-/health/live/`, ...patience });
  return h.wait({ what: 'authentik ready', url: `${appUrl(v)}/-/health/ready/`, ...patience });
}

// Server and worker started (without blocking: a first start pulls images), then ready.
export async function startApp(h: Tasks, v: StackVars): Promise<void> {
  for (const name of APP_SERVICES) await h.service({ name, state: 'started', noBlock: true });
  await waitReady(h, v);
}

// Restores a dump (verified first) into the database; see files/authentik-restore.
export async function restoreDump(h: Tasks, v: StackVars, dump: string, archive?: string): Promise<void> {
  await h.command({
    name: `restore ${dump.split('/').pop()} into database ${v.authentik_pg_db}`,
    cmd: [RESTORE_SCRIPT, '--container', POSTGRES, '--user', v.authentik_pg_user, '--db', v.authentik_pg_db,
      ...(archive ? ['--files', archive, '--root', v.authentik_root] : []), dump].map(quote).join(' '),
  });
}

// Exact row counts of every table in the database, "schema.table=N" per line, sorted.
export async function rowCounts(h: Tasks, v: StackVars, what: string): Promise<Map<string, number> | undefined> {
  const sql = `SELECT format('%I.%I', table_schema, table_name) || '=' ||
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text
FROM information_schema.tables
WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1;\n`;
  const r = await h.command({
    name: `count the rows of every table (${what})`,
    cmd: `podman exec -i ${POSTGRES} psql -X -At -v ON_ERROR_STOP=1 --username=${quote(v.authentik_pg_user)} --dbname=${quote(v.authentik_pg_db)}`,
    stdin: sql,
    readOnly: true,
  });
  const out = (r.data as { stdout?: string } | undefined)?.stdout;
  if (out === undefined) return undefined;
  return new Map(out.trim().split('\n').filter(Boolean).map((l) => {
    const i = l.lastIndexOf('=');
    return [l.slice(0, i), Number(l.slice(i + 1))] as const;
  }));
}

// A task that fails with a message: how a role reports "this did not work" as a result,
// after it has cleaned up (e.g. an upgrade rolled back).
export const failure = defineResource<{ what: string; message: string; hint?: string }>({
  kind: 'failure',
  title: (a) => a.what,
  async plan(_ctx, a) {
    throw hostError(a.message, a.hint ? { hint: a.hint } : {});
  },
});

