import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { change, defineResource, defineRole, hostError, humanBytes, inputError, inside, quote, secret, unitJournalCommand, writeFileAtomic, z, type Connection } from 'hostctl';
import { fields } from './index.js';
import { checkRepository, checkWords, drillWords, restoreDrill, shownRepository } from './restic-backup.js';
import { feedController, pushSnapshot, type ControllerBackup } from './restic-controller.js';
import { BACKUP_SERVICE, STACK_VARS } from './stack.js';

// playbooks/backup.ts: a fresh backup set taken on the host now (the role's
// authentik-backup.service, so the host's own journal and unit state tell the same story),
// then either proven in the host's restic repository (authentik_backup_repository: the
// snapshot, a share of `restic check`, a restore drill), or copied to the controller,
// checked by size and sha256 against the host's manifest, the controller's copies pruned to
// the newest N sets. One summary line for the recap.

export const backupVars = fields.pick({
  ...STACK_VARS,
  authentik_backup_keep_daily: true,
  authentik_backup_keep_weekly: true,
  authentik_backup_keep_monthly: true,
}).extend({
  // A restic repository the controller reaches (a local path, or any backend): the controller
  // pulls each set over SSH and stores it with its own restic (see restic-controller.ts).
  backup_controller_repository: z.string().default(''),
  backup_controller_repository_password: secret().optional(),
  backup_controller_repository_env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), secret()).default({}),
  backup_controller_repository_init: z.boolean().default(false),
  // restic check reads share n/N of the repository's data each night: all of it every N nights.
  backup_check_cycle: z.number().int().min(1).default(30),
  // The newest snapshot may be this old at most.
  backup_max_age_hours: z.number().positive().default(26),
  // Where the copies go on the controller; relative paths are relative to the directory
  // hostctl runs in. Default: backups/<inventory hostname>.
  backup_controller_dir: z.string().default(''),
  // Sets kept on the controller (the newest; the one just copied is never removed).
  backup_controller_keep: z.number().int().min(1).default(14),
});

export interface BackupFile {
  name: string;
  sha256: string;
  size: number;
}

export interface BackupSet {
  // authentik-20260315T031500Z: the stem of its files and of its manifest (.sha256).
  name: string;
  dir: string;
  manifest: string;
  files: BackupFile[];
}

// A set's name as roles/authentik/files/authentik-backup makes it: authentik-<UTC time>, with
// -<label> (letters, digits, . _ -) for a labelled dump. The one rule for the host's listing,
// its manifests' lines and the controller's pruning: anything else a host sends is refused.
const SET = 'authentik-\\d{8}T\\d{6}Z(?:-[A-Za-z0-9._-]+)?';
const MANIFEST = new RegExp(`^(${SET})\\.sha256$`);

// The files of set `set` its manifest lists (sha256sum's lines), each one of the set's own
// names; a line naming anything else (../../playbooks/backup.ts, /etc/passwd, another set's
// file) is a host error, before anything is copied.
export function parseManifest(set: string, text: string, where: string): { name: string; sha256: string }[] {
  const own = [`${set}.sql.gz`, `${set}.files.tar.gz`];
  const files = text.split('\n').filter((l) => l !== '').map((line) => {
    const m = /^([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (!m) throw hostError(`${where}: ${JSON.stringify(line.slice(0, 200))} is not a sha256sum line`);
    if (!own.includes(m[2]!)) {
      throw hostError(`${where} names a bad file name ${JSON.stringify(m[2])}: a set's files are ${own.join(' and ')}; nothing was copied`, {
        hint: 'the host may be compromised: look at what wrote that manifest before trusting its backups',
      });
    }
    return { name: m[2]!, sha256: m[1]! };
  });
  if (files.length === 0) throw hostError(`${where} lists no file`);
  return files;
}

async function listManifests(conn: Connection, dir: string): Promise<string[]> {
  const r = await conn.exec(`cd ${quote(dir)} && ls -1A`);
  if (r.code !== 0) throw hostError(`cannot list ${dir}: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter((n) => MANIFEST.test(n));
}

// Starts the backup service and waits for it; its result is the set it wrote.
export const backupNow = defineResource<{ dir: string }>({
  kind: 'backup',
  title: () => `backup set now (${BACKUP_SERVICE})`,
  async plan(ctx, a) {
    return change(`start ${BACKUP_SERVICE} and wait for it`, async () => {
      const before = new Set(await listManifests(ctx.conn, a.dir));
      const run = await ctx.conn.exec(`systemctl start ${BACKUP_SERVICE}`, { signal: ctx.signal });
      if (run.code !== 0) {
        const journal = await ctx.conn.exec(unitJournalCommand(BACKUP_SERVICE, { identifier: 'authentik-backup', lines: 12, until: 'FAILED' }));
        throw hostError(`${BACKUP_SERVICE} failed: ${run.stderr.trim()}\n--- journal ---\n${journal.stdout.trim()}`);
      }
      const fresh = (await listManifests(ctx.conn, a.dir)).filter((n) => !before.has(n)).sort();
      const manifest = fresh.pop();
      if (!manifest) throw hostError(`${BACKUP_SERVICE} succeeded but no new backup set appeared in ${a.dir}`);
      const name = MANIFEST.exec(manifest)![1]!;
      const path = inside(a.dir, manifest, `host ${ctx.host}`);
      const text = (await ctx.conn.get(path)).toString('utf8');
      const sums = parseManifest(name, text, `manifest ${path} on ${ctx.host}`);
      const sizes = await ctx.conn.check(`stat -c '%s' -- ${sums.map((f) => quote(inside(a.dir, f.name, `host ${ctx.host}`))).join(' ')}`);
      const files = sums.map((f, i) => ({ ...f, size: Number(sizes.trim().split('\n')[i]) }));
      const set: BackupSet = { name, dir: a.dir, manifest: text, files };
      return { data: set, reason: `wrote ${set.name} (${files.map((f) => `${f.name} ${f.size} bytes`).join(', ')})` };
    });
  },
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface CopyResult {
  dir: string;
  bytes: number;
  kept: string[];
  removed: string[];
}

// Copies a set to the controller, each file checked against the host's manifest (size and
// sha256 of what arrived, and again of what was written), the manifest last; then removes
// the oldest sets beyond `keep`. Nothing is removed unless this copy succeeded, and never
// the set just copied.
export const copyOff = defineResource<{ set: BackupSet; dir: string; keep: number }>({
  kind: 'backup-copy',
  title: (a) => `copy ${a.set.name} to ${a.dir}`,
  async plan(ctx, a) {
    const total = a.set.files.reduce((n, f) => n + f.size, 0);
    return change(`copy ${a.set.files.length + 1} files (${total} bytes)`, async () => {
      await mkdir(a.dir, { recursive: true, mode: 0o700 });
      for (const f of a.set.files) {
        const data = await ctx.conn.get(inside(a.set.dir, f.name, `host ${ctx.host}`));
        if (data.length !== f.size || sha256(data) !== f.sha256) {
          throw hostError(`${f.name} arrived damaged: ${data.length} bytes, sha256 ${sha256(data)}; the host's manifest says ${f.size} bytes, ${f.sha256}`);
        }
        const path = inside(a.dir, f.name, `host ${ctx.host}`);
        await writeFileAtomic(path, data);
        if (sha256(await readFile(path)) !== f.sha256) throw hostError(`${path} does not read back as written (sha256 differs)`);
      }
      await writeFileAtomic(inside(a.dir, `${a.set.name}.sha256`, `host ${ctx.host}`), a.set.manifest);

      // The newest sets by name (the name is the time), the one just copied always among them.
      const sets = (await readdir(a.dir)).map((n) => MANIFEST.exec(n)?.[1]).filter((n): n is string => !!n).sort().reverse();
      const kept = [a.set.name, ...sets.filter((n) => n !== a.set.name)].slice(0, a.keep);
      const removed = sets.filter((n) => !kept.includes(n));
      for (const name of removed) {
        // A set is its manifest and the two files of its name, as the host's script prunes it;
        // what an old manifest lists is not read (a name in it cannot steer a removal).
        // The manifest goes first: a set without it is no longer taken for a good one.
        for (const f of [`${name}.sha256`, `${name}.sql.gz`, `${name}.files.tar.gz`]) await rm(join(a.dir, f), { force: true });
      }
      const result: CopyResult = { dir: a.dir, bytes: total, kept, removed };
      return { data: result, reason: `copied, sha256 verified; ${kept.length} set(s) kept${removed.length ? `, removed ${removed.join(', ')}` : ''}` };
    });
  },
});


export const authentikBackup = defineRole({
  name: 'authentik-backup',
  vars: backupVars,
  async preflight(h, v) {
    if (v.backup_controller_repository && !v.backup_controller_repository_password) {
      throw inputError(`host ${h.host}: backup_controller_repository is set but backup_controller_repository_password is not`, {
        hint: 'put the repository password in the vault: backup_controller_repository_password: "{{ vault_restic_password }}"',
      });
    }
  },
  async run(h, v) {
    const taken = await h.run(backupNow, { dir: v.authentik_backup_dir });
    const set = taken.data as BackupSet | undefined;
    if (!set) return; // check mode: nothing was taken, nothing to copy
    if (v.backup_controller_repository) {
      const repo = { repository: v.backup_controller_repository, password: v.backup_controller_repository_password!, env: v.backup_controller_repository_env, init: v.backup_controller_repository_init };
      const keep = { daily: v.authentik_backup_keep_daily, weekly: v.authentik_backup_keep_weekly, monthly: v.authentik_backup_keep_monthly };
      const fed = (await h.run(feedController, { set, repo, keep, cycle: v.backup_check_cycle })).data as ControllerBackup;
      const drill = await restoreDrill(h, v, fed.snapshot.id, async (path) => void (await h.run(pushSnapshot, { repo, id: fed.snapshot.id, path })));
      if (drill) h.note(`backup OK: ${h.host} ${set.name} in ${shownRepository(repo.repository)} (controller): ${checkWords(fed)}, ${humanBytes(fed.added)} added; ${drillWords(drill)}`);
      return;
    }
    if (v.authentik_backup_repository) {
      const checked = await checkRepository(h, set.name, v.backup_check_cycle, v.backup_max_age_hours);
      const drill = checked && (await restoreDrill(h, v, checked.snapshot.id));
      if (checked && drill) h.note(`backup OK: ${h.host} ${set.name} in ${shownRepository(v.authentik_backup_repository)}: ${checkWords(checked)}; ${drillWords(drill)}`);
      return;
    }
    const dir = resolve(v.backup_controller_dir || join('backups', h.host));
    const copied = await h.run(copyOff, { set, dir, keep: v.backup_controller_keep });
    const c = copied.data as CopyResult;
    const parts = set.files.map((f) => `${f.name.endsWith('.sql.gz') ? 'db' : 'files'} ${humanBytes(f.size)}`).join(' + ');
    h.note(`backup OK: ${h.host} ${set.name} (${parts}, sha256 verified) in ${c.dir}; ${c.kept.length} kept${c.removed.length ? `, ${c.removed.length} removed` : ''}`);
  },
});
