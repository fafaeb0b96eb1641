import { HostctlError, defineRole, hostError, quote, z, type Tasks } from 'hostctl';
import { derive, fields } from './index.js';
import { currentPostgresImage, dataMajor, imageMajor, unknownMajor } from './postgres-major.js';
import { POSTGRES, ensurePostgres, failure, restoreDump, rowCounts, startApp, stopAndDump } from './stack.js';

// playbooks/postgres-upgrade.ts: moves authentik's database to the major version of
// postgres_image the only way Postgres allows in containers: a dump made by the old major,
// a new data directory initialised by the new one, the dump restored, every table's row
// count compared. The old data directory stays (database.pg<old>-<time>) until you remove it.

export const upgradeVars = fields.extend({
  // The image to dump with when the current unit does not run the data directory's major
  // (e.g. the unit was already pointed at the new image by hand).
  postgres_upgrade_from_image: z.string().default(''),
});

interface Plan {
  from: number;
  to: number;
  fromImage: string;
}

const NETWORK_UNIT = 'authentik-internal.network';
const POSTGRES_UNIT = 'authentik-postgresql.container';

export const postgresUpgrade = defineRole({
  name: 'postgres-upgrade',
  vars: upgradeVars,
  derive,
  templates: new URL('./templates/', import.meta.url),
  // Which majors, and an image of the old one to dump with: known before anything changes.
  // The plan, or why there is nothing to do, for the body.
  async preflight(h, v): Promise<Plan | string> {
    const from = await h.fact(dataMajor(v.authentik_root));
    if (from === undefined) return `no data directory in ${v.authentik_root}/database: nothing to upgrade`;
    const to = await imageMajor(h, v.postgres_image);
    if (to === undefined) return unknownMajor(v.postgres_image, h.host);
    if (to === from) return `the data directory is already Postgres ${to}: nothing to do`;
    if (to < from) throw hostError(`postgres_image ${v.postgres_image} is Postgres ${to}, older than the data directory's ${from}: a downgrade is not supported`);
    const fromImage = v.postgres_upgrade_from_image || (await currentPostgresImage(h.conn));
    const fromMajor = fromImage ? await imageMajor(h, fromImage) : undefined;
    if (fromImage && fromMajor === undefined) return unknownMajor(fromImage, h.host);
    if (!fromImage || fromMajor !== from) {
      throw hostError(`to dump the Postgres ${from} data directory an image of Postgres ${from} is needed; the postgresql unit runs ${fromImage ?? 'nothing'}${fromMajor ? ` (Postgres ${fromMajor})` : ''}`, {
        hint: `give one with -e postgres_upgrade_from_image=docker.io/library/postgres:${from}-alpine`,
      });
    }
    return { from, to, fromImage };
  },
  async run(h, v, plan) {
    if (plan === undefined || typeof plan === 'string') return void h.note(plan ?? 'nothing to do');
    const { from, to, fromImage } = plan;
    const db = `${v.authentik_root}/database`;
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const kept = `${db}.pg${from}-${stamp}`;
    const network = h.rendered(`${NETWORK_UNIT}.hbs`);
    const newUnit = h.rendered(`${POSTGRES_UNIT}.hbs`);
    const oldUnit = newUnit.replace(/^Image=.*$/m, `Image=${fromImage}`);
    const usePostgres = async (unit: string, what: string) => {
      const q = await h.quadlet({ name: `postgres unit with ${what}`, units: { [NETWORK_UNIT]: network, [POSTGRES_UNIT]: unit } });
      const changed = ((q.data as { changed: string[] } | undefined)?.changed ?? []).includes(POSTGRES_UNIT);
      await h.daemonReload({});
      return changed;
    };

    // 1. The old major: server and worker stopped and the database dumped (under the backup
    // lock, see stopAndDump), then counted: nothing writes any more, so these are the dump's.
    if (await usePostgres(oldUnit, fromImage)) await h.service({ name: `${POSTGRES}.service`, state: 'restarted' });
    const dump = await stopAndDump(h, v, `pre-pg${to}`);
    const before = await rowCounts(h, v, `Postgres ${from}`);
    if (h.check) return;
    if (!before || !dump) throw hostError('no row counts or no dump: cannot go on');

    // 2. A new data directory for the new major, the dump restored into it, counts compared.
    let moved = false;
    try {
      await h.service({ name: `${POSTGRES}.service`, state: 'stopped' });
      await h.command({ name: `keep the Postgres ${from} data directory as ${kept}`, cmd: `mv -- ${quote(db)} ${quote(kept)} && mkdir -m 0755 -- ${quote(db)}` });
      moved = true;
      await usePostgres(newUnit, v.postgres_image);
      await h.service({ name: `${POSTGRES}.service`, state: 'started' });
      // The image initialises the new directory with a server on the local socket only, then
      // restarts: ready means reachable over TCP, with the new PG_VERSION.
      await h.wait({
        what: `Postgres ${to} initialised`,
        command: `[ "$(cat ${quote(`${db}/PG_VERSION`)} 2>/dev/null)" = ${to} ] && podman exec ${POSTGRES} pg_isready -q -h 127.0.0.1`,
        retries: Math.max(v.authentik_pg_health_retries, 30),
        delaySeconds: Math.min(v.authentik_pg_health_delay, 2),
      });
      await restoreDump(h, v, dump);
      const after = (await rowCounts(h, v, `Postgres ${to}`))!;
      const diffs = [...new Set([...before.keys(), ...after.keys()])]
        .filter((t) => before.get(t) !== after.get(t))
        .map((t) => `${t}: ${before.get(t) ?? 'missing'} before, ${after.get(t) ?? 'missing'} after`);
      if (diffs.length) await h.run(failure, { what: 'row counts after the restore', message: `row counts differ:\n${diffs.join('\n')}` });
      const rows = [...after.values()].reduce((a, b) => a + b, 0);
      h.note(`Postgres ${from} -> ${to}: ${after.size} tables, ${rows} rows, every count as before; dump ${dump}; old data directory kept as ${kept} (remove it when satisfied)`);
    } catch (error) {
      const gone = error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable');
      if (moved && !gone) await putBack(h, v, { db, kept, failed: `${db}.failed-pg${to}-${stamp}`, oldUnit, usePostgres, from });
      throw error;
    }
    await startApp(h, v);
  },
});

// The upgrade did not work: the old directory and unit back, Postgres and authentik started.
async function putBack(
  h: Tasks,
  v: z.infer<typeof upgradeVars>,
  p: { db: string; kept: string; failed: string; oldUnit: string; usePostgres: (unit: string, what: string) => Promise<boolean>; from: number },
): Promise<void> {
  h.note(`postgres upgrade failed: the Postgres ${p.from} data directory is back in ${p.db}; the new one is kept as ${p.failed}`);
  await h.service({ name: `${POSTGRES}.service`, state: 'stopped' });
  await h.command({ name: `put the Postgres ${p.from} data directory back`, cmd: `mv -- ${quote(p.db)} ${quote(p.failed)} && mv -- ${quote(p.kept)} ${quote(p.db)}` });
  await p.usePostgres(p.oldUnit, `Postgres ${p.from}`);
  await ensurePostgres(h, v);
  await startApp(h, v);
}
