import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { HostctlError, defineRole, hostError, humanBytes, quote, z } from 'hostctl';
import { fields } from './index.js';
import { fetchFiles, fetchSnapshot, findSnapshots, setOf, shownRepository, type Snapshot } from './restic-backup.js';
import { RESTIC_SCRIPT } from './restic.js';
import { RESTORE_SCRIPT, STACK_VARS, dumpTime, ensurePostgres, restoreDump, startApp, stopApp } from './stack.js';

// playbooks/restore.ts: a chosen dump back into Postgres, with server and worker stopped
// meanwhile. Refuses, before touching anything and saying what it would replace, unless
// run with -e confirm_restore=yes.

export const restoreVars = fields
  .pick(STACK_VARS)
  .extend({
    // A dump on the host: a name in authentik_backup_dir or an absolute path. Default: the newest.
    restore_file: z.string().default(''),
    // Or a dump on the controller (e.g. a copy playbooks/backup.ts made): uploaded into
    // authentik_backup_dir first, then restored.
    restore_controller_file: z.string().default(''),
    // Or a snapshot in the host's restic repository (authentik_backup_repository): `latest`
    // (this host's newest) or a snapshot id; fetched into authentik_backup_dir first.
    restore_snapshot: z.string().regex(/^(latest|[0-9a-f]{8,64})$/, 'latest or a restic snapshot id').optional(),
    // Also unpack the set's files archive (media, certs, custom-templates) over the host's.
    restore_files: z.boolean().default(false),
    // "yes" (or YAML's yes/true): the restore may replace the database.
    confirm_restore: z.union([z.boolean(), z.string()]).optional(),
  });

interface Chosen {
  path: string;
  // The dump (and the files) come from these snapshots of the restic repository.
  snapshot?: Snapshot;
  filesSnapshot?: Snapshot;
  upload?: string;
  archive?: string;
  uploadArchive?: string;
  what: string;
  time: string;
}

const archiveOf = (dump: string) => dump.replace(/\.sql\.gz$/, '.files.tar.gz');

export const authentikRestore = defineRole({
  name: 'authentik-restore',
  vars: restoreVars,
  // What preflight chooses is what the body restores: "the newest dump" must mean the same file
  // in both, even if the nightly timer writes a new one in between.
  async preflight(h, v): Promise<Chosen> {
    const dir = v.authentik_backup_dir;
    let c: Chosen;
    if (v.restore_snapshot) {
      if (!v.authentik_backup_repository) throw hostError(`restore_snapshot: ${h.host} has no restic repository (authentik_backup_repository is not set)`);
      const [snapshot] = (await findSnapshots(h, v.restore_snapshot)).reverse();
      if (!snapshot) {
        throw hostError(`restore_snapshot ${v.restore_snapshot}: no database snapshot ${v.restore_snapshot === 'latest' ? `of host ${h.host} ` : ''}in ${shownRepository(v.authentik_backup_repository)}`, {
          hint: `list them on the host: ${RESTIC_SCRIPT} snapshots --path /authentik.sql`,
        });
      }
      // Named as the backup script names a dump, with the snapshot's time in UTC.
      const utc = new Date(snapshot.time).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
      const path = `${dir}/authentik-${utc}-snapshot-${snapshot.short_id}.sql.gz`;
      const time = dumpTime(basename(path))!;
      c = { path, snapshot, time, what: `snapshot ${snapshot.short_id} of ${shownRepository(v.authentik_backup_repository)} (set ${setOf(snapshot) ?? '?'}, taken ${time} on ${snapshot.hostname})` };
      if (v.restore_files) {
        const set = setOf(snapshot);
        const [files] = set ? (await findSnapshots(h, `set=${set}`, true)).reverse() : [];
        if (!files) throw hostError(`restore_files: the repository holds no files snapshot of set ${set ?? `of snapshot ${snapshot.short_id}`}`);
        c = { ...c, filesSnapshot: files, archive: archiveOf(path) };
      }
    } else if (v.restore_controller_file) {
      const local = resolve(v.restore_controller_file);
      const st = await stat(local).catch(() => undefined);
      if (!st?.isFile()) throw hostError(`restore_controller_file ${local} is not a file on the controller`);
      const path = `${dir}/${basename(local)}`;
      const time = dumpTime(basename(local)) ?? `file modified ${st.mtime.toISOString()}`;
      c = { path, upload: local, time, what: `${local} from the controller (taken ${time}, ${humanBytes(st.size)})` };
      if (v.restore_files) {
        const archive = archiveOf(local);
        if (!(await stat(archive).catch(() => undefined))?.isFile()) throw hostError(`restore_files: ${archive} is not a file on the controller`);
        c = { ...c, archive: archiveOf(path), uploadArchive: archive };
      }
    } else {
      const wanted = v.restore_file ? (v.restore_file.startsWith('/') ? v.restore_file : `${dir}/${v.restore_file}`) : '';
      const find = wanted
        ? `p=${quote(wanted)}`
        : `p=$(ls -1 ${quote(dir)}/authentik-*.sql.gz 2>/dev/null | sort | tail -n 1)`;
      const r = await h.conn.exec(`${find}; [ -n "$p" ] && [ -f "$p" ] && stat -c '%s %Y %n' -- "$p"; a=\${p%.sql.gz}.files.tar.gz; [ -f "$a" ] && echo "$a"; true`);
      const [first, second] = r.stdout.trim().split('\n');
      const m = /^(\d+) (\d+) (.+)$/.exec(first ?? '');
      if (!m) {
        throw hostError(wanted ? `restore_file ${wanted} does not exist on ${h.host}` : `no dump to restore on ${h.host}: ${dir} has no authentik-*.sql.gz`, {
          hint: `list them: ls -l ${dir}; or restore a controller copy with -e restore_controller_file=backups/${h.host}/authentik-....sql.gz`,
        });
      }
      const path = m[3]!;
      const time = dumpTime(basename(path)) ?? `file modified ${new Date(Number(m[2]) * 1000).toISOString()}`;
      c = { path, time, what: `${path} (taken ${time}, ${humanBytes(Number(m[1]))})` };
      if (v.restore_files) {
        if (!second) throw hostError(`restore_files: the set of ${path} has no files archive (${archiveOf(path)})`);
        c = { ...c, archive: second };
      }
    }
    const replaces = `database "${v.authentik_pg_db}" on ${h.host} with the dump ${c.what}${c.archive ? `, and media, certs and custom-templates in ${v.authentik_root} from ${c.uploadArchive ?? c.archive}` : ''}`;
    c.what = replaces;
    const confirmed = v.confirm_restore === true || v.confirm_restore === 'yes';
    if (!confirmed && !h.check) {
      throw hostError(`refusing to restore without confirmation. It would replace ${replaces}; authentik's server and worker stop meanwhile. Nothing was changed.`, {
        hint: 'run again with -e confirm_restore=yes',
      });
    }
    return c;
  },
  async run(h, v, c) {
    if (!c) return; // a prefetch recording pass: the preflight has not chosen yet
    h.note(`${h.check ? 'would replace' : 'replacing'} ${c.what}`);
    if (c.upload) await h.file({ path: c.path, source: c.upload, mode: '0600', owner: 'root', group: 'root' });
    if (c.uploadArchive && c.archive) await h.file({ path: c.archive, source: c.uploadArchive, mode: '0600', owner: 'root', group: 'root' });
    if (c.snapshot) await fetchSnapshot(h, c.snapshot.id, c.path);
    if (c.filesSnapshot && c.archive) await fetchFiles(h, c.filesSnapshot, c.archive);
    // A damaged dump is refused while authentik still runs.
    await h.command({ name: `verify ${basename(c.path)}`, cmd: `${RESTORE_SCRIPT} --check ${quote(c.path)}`, readOnly: true });
    await stopApp(h);
    try {
      await ensurePostgres(h, v);
      await restoreDump(h, v, c.path, c.archive);
    } catch (error) {
      // The restore swaps in only a complete copy: the database is as it was. Start again.
      const gone = error instanceof HostctlError && (error.kind === 'interrupted' || error.kind === 'unreachable');
      if (!gone && !h.check) await startApp(h, v).catch(() => {});
      throw error;
    }
    await startApp(h, v);
    // What was fetched from the repository stays there, not here.
    if (c.snapshot) await h.command({ name: `remove the fetched ${basename(c.path)}`, cmd: `rm -f -- ${[c.path, ...(c.archive ? [c.archive] : [])].map(quote).join(' ')}` });
    if (!h.check) h.note(`restored database ${v.authentik_pg_db} from ${basename(c.path)} (taken ${c.time}); authentik is ready`);
  },
});
