import { hostError, humanBytes, quote, z, type Tasks } from 'hostctl';
import { METRICS_DIR, RESTIC_SCRIPT } from './restic.js';
import { METRICS_SCRIPT, POSTGRES, RESTORE_SCRIPT, failure, rowCounts, type StackVars } from './stack.js';

// What playbooks/backup.ts proves about the restic repository after the host's backup: the
// snapshot of the set just taken (its age and size), a share of the repository's data read
// back (`restic check --read-data-subset`, a different share each night), and a restore
// drill: the snapshot's dump restored into a scratch database on the host and its row counts
// compared with the live database's. And restore.ts's way to a dump in the repository.

// A snapshot as `restic snapshots --json` lists it (what a host sends: checked, never trusted).
const snapshotSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  short_id: z.string().regex(/^[0-9a-f]{8}$/),
  time: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'a time'),
  hostname: z.string(),
  paths: z.array(z.string()),
  tags: z.array(z.string()).nullish(),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export function parseSnapshots(text: string, where: string): Snapshot[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw hostError(`${where}: restic's snapshot list is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  const parsed = z.array(snapshotSchema).safeParse(json);
  if (!parsed.success) throw hostError(`${where}: restic's snapshot list is not what restic lists: ${parsed.error.issues[0]?.message}`);
  return parsed.data.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

// A repository as messages name it: a password in its URL (rest:https://user:pw@...) masked.
export const shownRepository = (url: string) => url.replace(/(:\/\/[^:/@]*):[^@/]*@/, '$1:***@');

// The set a snapshot holds (its set= tag), e.g. authentik-20260315T031500Z.
export const setOf = (s: Snapshot) => s.tags?.find((t) => t.startsWith('set='))?.slice(4);

const restic = (args: string) => `${RESTIC_SCRIPT} ${args}`;
const stdoutOf = (r: { data?: unknown }) => (r.data as { stdout?: string } | undefined)?.stdout;
// A pipeline whose every command must succeed (/bin/sh may have no pipefail).
const pipeline = (script: string) => `bash -o pipefail -c ${quote(script)}`;

// The database snapshots of this host in the repository, oldest first: `which` is an id,
// `latest`, or a set= tag (`files` also: the set's media, certs and custom-templates).
export async function findSnapshots(h: Tasks, which: string, files = false): Promise<Snapshot[]> {
  const filter = which === 'latest' ? `--host ${quote(h.host)} --latest 1` : which.startsWith('set=') ? `--tag ${quote(`${which},${files ? 'files' : 'authentik'}`)}` : quote(which);
  const r = await h.conn.exec(restic(`snapshots --json ${files ? '' : '--path /authentik.sql '}${filter}`));
  if (r.code !== 0) throw hostError(`listing the snapshots of the restic repository on ${h.host} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return parseSnapshots(r.stdout, `restic snapshots on ${h.host}`).filter((s) => files === (s.tags ?? []).includes('files'));
}

// A files snapshot (media, certs, custom-templates of ROOT) as the archive authentik-restore
// unpacks: restored into a root-only staging directory beside the archive, tarred, removed.
export async function fetchFiles(h: Tasks, s: Snapshot, archive: string): Promise<void> {
  // The snapshot says where its folders were: from the repository, which another host holding
  // its password may have written, so only a plain absolute path leads into the staging copy.
  const root = (s.paths[0] ?? '').replace(/\/[^/]+$/, '');
  if (!/^(\/[^/\0]+)+$/.test(root) || root.split('/').some((c) => c === '..' || c === '.')) {
    throw hostError(`files snapshot ${s.short_id} names ${JSON.stringify(s.paths[0] ?? '')}: not a plain absolute path`);
  }
  const stage = `${archive}.stage`;
  await h.command({
    name: `fetch files snapshot ${s.short_id} from the restic repository`,
    cmd: pipeline(`umask 077; rm -rf -- ${quote(stage)}; trap 'rm -rf -- ${quote(stage)}' EXIT; ${restic(`restore ${s.id} --target ${quote(stage)}`)} >/dev/null && cd ${quote(`${stage}${root}`)} && tar -czf ${quote(archive)} -- $(ls -A)`),
  });
}

// The snapshot's dump, streamed out of the repository into a gzip file on the host.
export async function fetchSnapshot(h: Tasks, id: string, path: string): Promise<void> {
  await h.command({
    name: `fetch snapshot ${id.slice(0, 8)} from the restic repository`,
    cmd: pipeline(`umask 077; ${restic(`dump ${quote(id)} /authentik.sql`)} | gzip -1 >${quote(`${path}.partial`)} && mv -f -- ${quote(`${path}.partial`)} ${quote(path)}`),
  });
}

export interface DrillResult {
  tables: number;
  rows: number;
  // Tables whose row count differs from the live database's (authentik writes meanwhile).
  differ: string[];
}

// The drill: the snapshot restored into a scratch database, counted against the live one,
// the scratch database and the fetched dump removed whatever happened. Fails when the
// restored database lacks a table the live one has. Writes its metrics.
// `fetch` puts the snapshot's dump at a path on the host (default: the host's restic fetches it).
export async function restoreDrill(h: Tasks, v: StackVars, id: string, fetch = (path: string) => fetchSnapshot(h, id, path)): Promise<DrillResult | undefined> {
  const dump = `${v.authentik_backup_dir}/.authentik-drill.sql.gz`;
  const scratch = `${v.authentik_pg_db}_drill`;
  let result: DrillResult | undefined;
  try {
    await fetch(dump);
    await h.command({
      name: `restore snapshot ${id.slice(0, 8)} into the scratch database ${scratch}`,
      cmd: [RESTORE_SCRIPT, '--drill', '--container', POSTGRES, '--user', v.authentik_pg_user, '--db', v.authentik_pg_db, dump].map(quote).join(' '),
    });
    const live = await rowCounts(h, v, `database ${v.authentik_pg_db}`);
    const restored = await rowCounts(h, { ...v, authentik_pg_db: scratch }, `database ${scratch}`);
    if (!live || !restored) return undefined; // check mode
    const missing = [...live.keys()].filter((t) => !restored.has(t));
    result = {
      tables: restored.size,
      rows: [...restored.values()].reduce((a, b) => a + b, 0),
      differ: [...restored].filter(([t, n]) => live.has(t) && live.get(t) !== n).map(([t, n]) => `${t} ${n} (live ${live.get(t)})`),
    };
    if (missing.length) {
      result = undefined;
      await h.run(failure, { what: 'restore drill', message: `the restore drill of snapshot ${id.slice(0, 8)} lacks tables the live database has: ${missing.join(', ')}` });
    }
  } finally {
    await h.command({
      name: `drop the scratch database ${scratch}`,
      cmd: `rm -f -- ${quote(dump)} ${quote(`${dump}.partial`)}; podman exec -i ${POSTGRES} psql -X -q -v ON_ERROR_STOP=1 --username=${quote(v.authentik_pg_user)} --dbname=postgres -c ${quote(`DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE)`)}`,
    });
    if (!h.check) await drillMetrics(h, result);
  }
  return result;
}

async function drillMetrics(h: Tasks, r: DrillResult | undefined): Promise<void> {
  const lines = [
    '# HELP authentik_backup_drill_status 1 if the last restore drill succeeded, 0 if it failed.',
    '# TYPE authentik_backup_drill_status gauge',
    `authentik_backup_drill_status ${r ? 1 : 0}`,
    '# HELP authentik_backup_drill_timestamp_seconds When the last restore drill ended.',
    '# TYPE authentik_backup_drill_timestamp_seconds gauge',
    `authentik_backup_drill_timestamp_seconds ${Math.floor(Date.now() / 1000)}`,
    '# HELP authentik_backup_drill_rows Rows the last restore drill restored.',
    '# TYPE authentik_backup_drill_rows gauge',
    `authentik_backup_drill_rows ${r?.rows ?? 0}`,
    '',
  ];
  await h.command({ name: 'write the drill metrics', cmd: `${METRICS_SCRIPT} ${quote(METRICS_DIR)} authentik_backup_drill`, stdin: lines.join('\n') });
}

// Tonight's share of the data `restic check --read-data-subset` reads: all of it every `cycle` nights.
export const checkShare = (cycle: number) => `${(Math.floor(Date.now() / 86_400_000) % cycle) + 1}/${cycle}`;

export interface RepositoryCheck {
  snapshot: Snapshot;
  size: number;
  ageSeconds: number;
  share: string;
}

// The snapshot of `set` (its age and size), and share `(day % cycle) + 1` of the repository's
// data read back: the whole repository is read once every `cycle` nights.
export async function checkRepository(h: Tasks, set: string, cycle: number, maxAgeHours: number): Promise<RepositoryCheck | undefined> {
  const [snapshot] = (await findSnapshots(h, `set=${set}`)).reverse();
  if (h.check) return undefined;
  if (!snapshot) {
    await h.run(failure, { what: 'the new snapshot', message: `the restic repository holds no snapshot of ${set}, the set the host just took` });
    return undefined;
  }
  const ageSeconds = Math.round((Date.now() - Date.parse(snapshot.time)) / 1000);
  if (ageSeconds > maxAgeHours * 3600) {
    await h.run(failure, { what: 'the new snapshot', message: `the newest snapshot ${snapshot.short_id} is ${Math.round(ageSeconds / 3600)} hours old (more than backup_max_age_hours ${maxAgeHours})` });
  }
  const stats = stdoutOf(await h.command({ name: `size of snapshot ${snapshot.short_id}`, cmd: restic(`stats --json --mode restore-size ${snapshot.id}`), readOnly: true }));
  const size = Number((JSON.parse(stats ?? '{}') as { total_size?: unknown }).total_size ?? NaN);
  const share = checkShare(cycle);
  await h.command({ name: `restic check, reading share ${share} of the data`, cmd: restic(`check --read-data-subset=${share}`) });
  return { snapshot, size, ageSeconds, share };
}

// The recap's words for a drill.
export const drillWords = (d: DrillResult) =>
  `drill: ${d.tables} tables, ${d.rows} rows restored${d.differ.length ? `; ${d.differ.length} differ from live (${d.differ.slice(0, 3).join(', ')})` : ', row counts as live'}`;

export const checkWords = (c: Omit<RepositoryCheck, 'snapshot'> & { snapshot: { short_id: string } }) => `snapshot ${c.snapshot.short_id} (${humanBytes(c.size)}, ${c.ageSeconds} s old), check ${c.share} OK`;
