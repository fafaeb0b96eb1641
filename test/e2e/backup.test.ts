import assert from 'node:assert/strict';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';
import { tagMajor } from '../../roles/authentik/postgres-major.js';
import { parseManifest } from '../../roles/authentik/fetch.js';
import { dumpTime } from '../../roles/authentik/stack.js';

type Recap = { hosts: Record<string, { ok: number; changed: number; failed: number }> };
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const recapOf = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;
const notesOf = (stdout: string) => (events(stdout).find((e) => e.type === 'host-end') as { notes: string[] }).notes;

const HOST = 'authentik';
const BACKUP = '/srv/authentik/backup';
// A table of the test's own, and what it holds: row count and a checksum of its content.
const DRILL = `SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '')) FROM drill;\n`;

describe('backup helpers', () => {
  it('reads the Postgres major from an image tag, or says it cannot', () => {
    assert.equal(tagMajor('docker.io/library/postgres:16-alpine'), 16);
    assert.equal(tagMajor('postgres:17.2'), 17);
    assert.equal(tagMajor('localhost/lab-postgres:15'), 15);
    assert.equal(tagMajor('registry.local:5000/postgres'), undefined);
    assert.equal(tagMajor('postgres:latest'), undefined);
    assert.equal(tagMajor('postgres@sha256:0123abcd'), undefined);
  });
  it('reads a manifest: only the set\'s own files, else a host error naming the manifest and the name', () => {
    const set = 'authentik-20260315T031500Z';
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    assert.deepEqual(parseManifest(set, `${a}  ${set}.sql.gz\n${b} *${set}.files.tar.gz\n`, 'm'), [
      { name: `${set}.sql.gz`, sha256: a },
      { name: `${set}.files.tar.gz`, sha256: b },
    ]);
    for (const name of ['../../pwned.sh', '/etc/cron.d/pwned', `${set}.sha256`, 'authentik-20200101T000000Z.sql.gz', `../${set}.sql.gz`]) {
      assert.throws(() => parseManifest(set, `${a}  ${set}.sql.gz\n${b}  ${name}\n`, 'manifest M on h'), {
        message: `manifest M on h names a bad file name ${JSON.stringify(name)}: a set's files are ${set}.sql.gz and ${set}.files.tar.gz; nothing was copied`,
      });
    }
    assert.throws(() => parseManifest(set, 'not a sum\n', 'm'), { message: 'm: "not a sum" is not a sha256sum line' });
    assert.throws(() => parseManifest(set, '', 'm'), { message: 'm lists no file' });
  });
  it('reads a dump\'s time from its name', () => {
    assert.equal(dumpTime('authentik-20260315T031500Z-pre-2026.2.1.sql.gz'), '2026-03-15 03:15:00 UTC');
    assert.equal(dumpTime('mine.sql.gz'), undefined);
  });
});

// Backups, restores, upgrades with rollback and a Postgres major upgrade, on one lab target
// that starts on Postgres 15 and authentik 2026.1.1 (the lab's stand-in), in the order a
// user meets them; the last tests move it to Postgres 17.
describe('backup, restore and upgrade of authentik', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(6, [HOST]);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let inventory = '';
  let pg15 = '';
  let pg17 = '';

  before(async () => {
    dir = await tempDir('hostctl-backup-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    await setVersion('2026.1.1');
    // The lab's overrides, first with Postgres 15 (the upgrade tests move to 17), and
    // probing every second rather than every two.
    const lab = (await readFile(join(repo, 'lab', 'authentik.yml'), 'utf8')).replace(/_delay: \d+/g, '_delay: 1');
    pg15 = join(dir.path, 'lab-pg15.yml');
    pg17 = join(dir.path, 'lab-pg17.yml');
    await writeFile(pg15, lab.replace('lab-postgres:17', 'lab-postgres:15'));
    await writeFile(pg17, lab);
    await labImages(t.lab, { authentikTags: ['2026.1.1', '2026.2.1'], brokenTags: ['2026.3.0'], postgresMajors: [15, 17] });
  });
  after(async () => {
    await dir?.[Symbol.asyncDispose]();
  });

  let labVars = () => pg15;
  const run = (playbook: string, args: string[] = [], cwd = dir.path) =>
    hostctl(
      ['run', join(repo, 'playbooks', `${playbook}.ts`), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${labVars()}`,
        '--vault-password-file', join(repo, 'lab', 'vault-password'), ...args],
      { cwd },
    );
  const sh = async (command: string, input?: string) => {
    const r = await t.sh(HOST, command, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const psql = (sql: string) => sh('podman exec -i authentik-postgresql psql -X -q -At -v ON_ERROR_STOP=1 -U authentik -d authentik', sql);
  const address = () => t.lab.targets.find((x) => x.name === HOST)!.address;
  const version = async () => {
    const r = await fetch(`http://${address()}:9000/-/version/`).catch(() => undefined);
    return r?.ok ? (await r.text()).trim() : undefined;
  };
  const ready = async () => (await fetch(`http://${address()}:9000/-/health/ready/`).catch(() => ({ status: 0 }))).status;
  async function setVersion(v: string) {
    const file = join(inventory, 'host_vars', HOST, 'vars.yml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/authentik_version: "[^"]+"/, `authentik_version: "${v}"`));
  }
  // playbooks/backup.ts run now: the name of the set it took.
  const backupNow = async () => {
    const b = await run('backup', ['--json']);
    assert.equal(b.code, 0, b.stdout.slice(-2000));
    return /(authentik-\d{8}T\d{6}Z)/.exec(notesOf(b.stdout)[0]!)![1]!;
  };
  const backups = async () => (await sh(`ls -A ${BACKUP}`)).split('\n').filter((n) => n.startsWith('authentik-') || n.endsWith('.partial'));

  it('deploys on Postgres 15 with the backup timer listed, and a second run changes nothing', async () => {
    const first = await run('authentik', ['--json']);
    assert.equal(first.code, 0, first.stdout.slice(-3000) + first.stderr);
    assert.equal(await version(), '2026.1.1');
    const again = await run('authentik', ['--json']);
    assert.equal(recapOf(again.stdout).hosts[HOST]!.changed, 0, again.stdout.slice(-3000));
    const timers = await sh('systemctl list-timers authentik-backup.timer --no-pager --no-legend');
    assert.match(timers, /^\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+ .* authentik-backup\.timer +authentik-backup\.service$/);
    assert.equal(await sh('systemctl show -p Persistent,RandomizedDelayUSec --value authentik-backup.timer'), '30min\nyes');
    await psql(`CREATE TABLE drill (id int PRIMARY KEY, body text);
INSERT INTO drill SELECT g, md5(g::text) FROM generate_series(1, 20000) g;\n`);
  });

  it('a calendar systemd does not accept is refused before anything is written', async () => {
    const r = await run('authentik', ['--plain', '-e', '{"authentik_backup_calendar": "every full moon"}']);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /authentik_backup_calendar "every full moon" is not a calendar expression systemd accepts/);
    assert.ok(!/\| changed/.test(r.stdout), r.stdout);
    assert.match(await sh('grep OnCalendar /etc/systemd/system/authentik-backup.timer'), /^OnCalendar=\*-\*-\* 03:15:00$/);
  });

  it('the service started by hand writes a verified set; old sets are pruned, the new one kept', async () => {
    // Two sets from three weeks ago, as if the timer had run then.
    await sh(`cd ${BACKUP} && for n in authentik-20200101T031500Z authentik-20200102T031500Z; do
  echo x | gzip > $n.sql.gz; sha256sum $n.sql.gz > $n.sha256; touch -d '21 days ago' $n.*; done`);
    await sh('systemctl start authentik-backup.service');
    const files = await backups();
    assert.equal(files.length, 3, files.join(' '));
    const name = files.find((f) => f.endsWith('.sha256'))!.replace(/\.sha256$/, '');
    assert.match(name, /^authentik-\d{8}T\d{6}Z$/);
    assert.deepEqual(files.sort(), [`${name}.files.tar.gz`, `${name}.sha256`, `${name}.sql.gz`]);
    assert.equal(await sh(`cd ${BACKUP} && sha256sum -c --quiet ${name}.sha256 && gzip -t ${name}.sql.gz && gzip -dc ${name}.sql.gz | grep -c '^CREATE TABLE public.drill '`), '1');
    assert.match(await sh(`tar -tzf ${BACKUP}/${name}.files.tar.gz | sort | head -3`), /^certs\/\ncustom-templates\/\nmedia\/$/);
  });

  it('a dump that cannot be made leaves no file that looks like a backup, and the unit failed', async () => {
    const before = await backups();
    // Postgres stopped.
    await sh('systemctl stop authentik-postgresql.service');
    const stopped = await t.sh(HOST, 'systemctl start authentik-backup.service');
    assert.notEqual(stopped.code, 0);
    assert.equal(await sh('systemctl is-failed authentik-backup.service || true'), 'failed');
    assert.match(await sh('journalctl -u authentik-backup.service -p err -n 3 -o cat --no-pager'), /authentik-backup: FAILED: the postgres container authentik-postgresql is not running/);
    await sh('systemctl start authentik-postgresql.service && until podman healthcheck run authentik-postgresql >/dev/null 2>&1; do sleep 0.5; done');
    // A full disk: the backup directory on a 64 KiB tmpfs (the dump is larger).
    await sh(`mount -t tmpfs -o size=64k,mode=0700 hostctl-full ${BACKUP}`);
    try {
      const full = await t.sh(HOST, 'systemctl start authentik-backup.service');
      assert.notEqual(full.code, 0);
      assert.equal(await sh('systemctl is-failed authentik-backup.service || true'), 'failed');
      assert.match(await sh('journalctl -u authentik-backup.service -p err -n 3 -o cat --no-pager'), /FAILED: writing the dump into \/srv\/authentik\/backup failed .*disk full/);
      assert.deepEqual(await backups(), []);
    } finally {
      await sh(`umount ${BACKUP}`);
    }
    assert.deepEqual(await backups(), before);
  });

  it('playbooks/backup.ts leaves verified copies on the controller and keeps the newest N', async () => {
    const controller = join(dir.path, 'backups', HOST);
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await run('backup', ['--json', '-e', '{"backup_controller_keep": 2}']);
      assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr);
      const [note] = notesOf(r.stdout);
      assert.match(note!, new RegExp(`^backup OK: ${HOST} (authentik-\\d{8}T\\d{6}Z) \\(db [\\d.]+ KiB \\+ files [\\d.]+ (?:B|KiB), sha256 verified\\) in ${escape(controller)}; \\d kept`));
      names.push(/(authentik-\d{8}T\d{6}Z)/.exec(note!)![1]!);
    }
    const local = (await readdir(controller)).sort();
    // The oldest of three went; the two newest stay, complete.
    assert.deepEqual(local, names.slice(1).flatMap((n) => [`${n}.files.tar.gz`, `${n}.sha256`, `${n}.sql.gz`]));
    for (const n of names.slice(1)) {
      const manifest = await readFile(join(controller, `${n}.sha256`), 'utf8');
      for (const line of manifest.trim().split('\n')) {
        const [sum, file] = line.split(/\s+\*?/);
        assert.equal(createHash('sha256').update(await readFile(join(controller, file!))).digest('hex'), sum);
      }
      // The copy is the host's file, byte for byte.
      assert.equal(await sh(`cat ${BACKUP}/${n}.sha256`), manifest.trim());
    }
    // A failing backup exits 2 and removes nothing on the controller.
    await sh('systemctl stop authentik-postgresql.service');
    const failed = await run('backup', ['--plain', '-e', '{"backup_controller_keep": 1}']);
    await sh('systemctl start authentik-postgresql.service && until podman healthcheck run authentik-postgresql >/dev/null 2>&1; do sleep 0.5; done');
    assert.equal(failed.code, 2, failed.stdout);
    assert.match(failed.stdout, /authentik-backup\.service failed[\s\S]*the postgres container authentik-postgresql is not running/);
    assert.deepEqual((await readdir(controller)).sort(), local);
  });

  it('a host whose manifest names ../../pwned.sh or an absolute path gets nothing written outside the backup folder', async () => {
    const controller = join(dir.path, 'backups', HOST);
    const before = (await readdir(controller)).sort();
    // A compromised host: its backup service writes a set whose manifest also lists a file
    // outside the set (with the right sha256 and size, so only the name can stop it).
    const hostile = async (name: string) => {
      // The previous round's set goes first: two rounds in one second would name theirs alike,
      // and the run would see no new set.
      await sh(`rm -f ${BACKUP}/authentik-*-hostile.* && mkdir -p /etc/systemd/system/authentik-backup.service.d && cat > /usr/local/sbin/hostile-backup <<'EOS'
#!/bin/sh
set -e
cd ${BACKUP}
n=authentik-$(date -u +%Y%m%dT%H%M%SZ)-hostile
echo 'echo pwned' > /srv/pwned.sh
echo 'echo pwned' > /tmp/hostctl-pwned-abs
echo x | gzip > $n.sql.gz
{ sha256sum $n.sql.gz; sha256sum '${name}'; } > $n.sha256
EOS
chmod 0755 /usr/local/sbin/hostile-backup
printf '[Service]\nExecStart=\nExecStart=/usr/local/sbin/hostile-backup\n' > /etc/systemd/system/authentik-backup.service.d/hostile.conf
systemctl daemon-reload`);
      return run('backup', ['--plain']);
    };
    try {
      for (const name of ['../../pwned.sh', '/tmp/hostctl-pwned-abs']) {
        const r = await hostile(name);
        assert.equal(r.code, 2, r.stdout);
        assert.match(r.stdout, new RegExp(`manifest ${escape(BACKUP)}/authentik-\\d{8}T\\d{6}Z-hostile\\.sha256 on ${HOST} names a bad file name ${escape(JSON.stringify(name))}: a set's files are .*; nothing was copied`));
        assert.match(r.stdout, /hint: the host may be compromised/);
        // Nothing outside the folder (../../pwned.sh from backups/authentik is the run's own
        // directory), and nothing of the hostile set inside it either.
        assert.deepEqual((await readdir(dir.path)).filter((n) => n.includes('pwned')), []);
        assert.deepEqual((await readdir(controller)).sort(), before);
      }
    } finally {
      await sh(`rm -rf /etc/systemd/system/authentik-backup.service.d /usr/local/sbin/hostile-backup /srv/pwned.sh /tmp/hostctl-pwned-abs ${BACKUP}/authentik-*-hostile.* && systemctl daemon-reload`);
    }
  });

  it('restore drill: rows destroyed after a backup are back after the restore, which first refuses without confirmation', async () => {
    const written = await psql(DRILL);
    assert.match(written, /^20000 [0-9a-f]{32}$/);
    const dump = `${await backupNow()}.sql.gz`;
    await psql('DELETE FROM drill WHERE id % 3 = 0; UPDATE drill SET body = \'lost\' WHERE id < 100;\n');
    const destroyed = await psql(DRILL);
    assert.notEqual(destroyed, written);

    const server = await sh('systemctl show -p InvocationID --value authentik-server.service');
    const refused = await run('restore', ['--plain']);
    assert.equal(refused.code, 2);
    assert.match(refused.stdout, new RegExp(`refusing to restore without confirmation\\. It would replace database "authentik" on ${HOST} with the dump ${BACKUP}/${dump} \\(taken \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, [\\d.]+ KiB\\)`));
    assert.match(refused.stdout, /hint: run again with -e confirm_restore=yes/);
    assert.equal(await psql(DRILL), destroyed);
    assert.equal(await sh('systemctl show -p InvocationID --value authentik-server.service'), server);

    const restored = await run('restore', ['--plain', '-e', 'confirm_restore=yes']);
    assert.equal(restored.code, 0, restored.stdout.slice(-3000));
    assert.match(restored.stdout, new RegExp(`restored database authentik from ${dump}`));
    assert.equal(await psql(DRILL), written);
    assert.equal(await ready(), 200);
    // Only the restored database is left: no scratch or replaced copy.
    assert.equal(await psql("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname LIKE 'authentik%';\n"), 'authentik');
  });

  it('a controller copy restores onto the host too', async () => {
    const controller = join(dir.path, 'backups', HOST);
    const newest = (await readdir(controller)).filter((n) => n.endsWith('.sql.gz')).sort().pop()!;
    await psql('DELETE FROM drill;\n');
    const r = await run('restore', ['--plain', '-e', `{"confirm_restore": true, "restore_controller_file": "backups/${HOST}/${newest}"}`]);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.match(await psql(DRILL), /^20000 /);
  });

  it('restore_files puts media, certs and custom-templates back from the set\'s archive', async () => {
    await sh('echo kept > /srv/authentik/media/kept.txt && echo cert > /srv/authentik/certs/site.pem');
    const set = await backupNow();
    await sh('rm /srv/authentik/media/kept.txt && echo changed > /srv/authentik/certs/site.pem');
    // From the controller's copy: the archive beside the dump is uploaded with it.
    const r = await run('restore', ['--plain', '-e', `{"confirm_restore": true, "restore_files": true, "restore_controller_file": "backups/${HOST}/${set}.sql.gz"}`]);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.match(r.stdout, /and media, certs and custom-templates in \/srv\/authentik from /);
    assert.equal(await sh('cat /srv/authentik/media/kept.txt /srv/authentik/certs/site.pem'), 'kept\ncert');
    assert.match(await psql(DRILL), /^20000 /);
    assert.equal(await ready(), 200);
  });

  it('restore_files gives back exactly the set\'s trees, never through a link the containers\' user planted', async () => {
    // media belongs to uid 1000 (the authentik image's user; on many hosts a login user).
    await sh('mkdir -p /srv/authentik/media/uploads /root/victim && echo v1 > /srv/authentik/media/uploads/a.txt && chown -R 1000:1000 /srv/authentik/media/uploads && chmod 700 /root/victim');
    const set = await backupNow();
    // As uid 1000: the uploads directory becomes a link to a root-only directory, and a link
    // to it is planted beside.
    await sh('setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "rm -rf /srv/authentik/media/uploads && ln -s /root/victim /srv/authentik/media/uploads && ln -s /root/victim /srv/authentik/media/planted"');
    const r = await run('restore', ['--plain', '-e', `{"confirm_restore": true, "restore_files": true, "restore_file": "${set}.sql.gz"}`]);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.equal(await sh('ls -A /root/victim | wc -l'), '0', 'nothing was written through the link');
    assert.equal(await sh('stat -c %F /srv/authentik/media/uploads && cat /srv/authentik/media/uploads/a.txt'), 'directory\nv1');
    assert.equal(await sh('test -e /srv/authentik/media/planted || test -L /srv/authentik/media/planted; echo $?'), '1', 'the planted link is gone');
    assert.equal(await sh('stat -c %u:%g /srv/authentik/media/uploads/a.txt; ls -A /srv/authentik | grep -c restoring || true'), '1000:1000\n0');
    assert.equal(await ready(), 200);
  });

  it('a version bump takes a pre-upgrade dump and comes up on the new tag, the server stopped under the backup lock', async () => {
    await setVersion('2026.2.1');
    // Whether the nightly backup's lock is held when the server stops: it must be, from before
    // the stop through the dump, or a backup the timer starts in between keeps authentik down.
    const dropIn = '/etc/systemd/system/authentik-server.service.d';
    await sh(`mkdir -p ${dropIn} && rm -f /run/stop-probe && printf '%s\\n' '[Service]' 'ExecStopPost=/bin/sh -c "flock -n ${BACKUP}/.lock true && echo free >>/run/stop-probe || echo held >>/run/stop-probe"' >${dropIn}/probe.conf && systemctl daemon-reload`);
    const r = await run('authentik', ['--json']);
    const probe = await sh(`cat /run/stop-probe; rm -rf ${dropIn} /run/stop-probe; systemctl daemon-reload`);
    assert.equal(probe.split('\n')[0], 'held', 'the backup lock was not held when the server stopped');
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.equal(await version(), '2026.2.1');
    assert.equal(await ready(), 200);
    const notes = notesOf(r.stdout);
    const dump = /^pre-upgrade dump \(localhost\/lab-authentik:2026\.1\.1\): (\S+)$/.exec(notes[0] ?? '')?.[1];
    assert.match(dump ?? '', /^\/srv\/authentik\/backup\/authentik-\d{8}T\d{6}Z-pre-2026\.2\.1\.sql\.gz$/, notes.join('\n'));
    assert.equal(await sh(`gzip -t ${dump} && ls ${dump}`), dump);
    assert.ok(notes.includes('upgraded authentik from localhost/lab-authentik:2026.1.1 to localhost/lab-authentik:2026.2.1'), notes.join('\n'));
    const again = await run('authentik', ['--json']);
    assert.equal(recapOf(again.stdout).hosts[HOST]!.changed, 0);
  });

  it('a version that never becomes ready is rolled back: old tag healthy, database as before, exit 2 with the journal', async () => {
    const data = await psql(DRILL);
    await setVersion('2026.3.0');
    const r = await run('authentik', ['--plain', '-e', '{"authentik_ready_timeout": 6}']);
    assert.equal(r.code, 2, r.stdout.slice(-3000));
    assert.match(r.stdout, /upgrade to authentik 2026\.3\.0 \| failed .*upgrade to authentik 2026\.3\.0 \(localhost\/lab-authentik:2026\.3\.0\) failed: .*authentik ready not ready/);
    assert.match(r.stdout, /rolled back to localhost\/lab-authentik:2026\.2\.1: ready again; database restored from the pre-upgrade dump \/srv\/authentik\/backup\/authentik-\d{8}T\d{6}Z-pre-2026\.3\.0\.sql\.gz/);
    // The tail of the failed version's own log.
    assert.match(r.stdout, /--- last lines of authentik-server's journal \(2026\.3\.0\) ---\n[\s\S]*"version": "2026\.3\.0"[\s\S]*broken build \(STANDIN_BROKEN=1\): never ready/);
    assert.equal(await version(), '2026.2.1');
    assert.equal(await ready(), 200);
    assert.match(await sh('grep -h ^Image= /etc/containers/systemd/authentik-server.container /etc/containers/systemd/authentik-worker.container'), /^Image=localhost\/lab-authentik:2026\.2\.1\nImage=localhost\/lab-authentik:2026\.2\.1$/);
    // The broken version wrote its mark into the database; the restore took it out again.
    assert.equal(await psql('SELECT string_agg(version, \' \' ORDER BY version) FROM standin_version_history;\n'), '2026.1.1 2026.2.1');
    assert.equal(await psql(DRILL), data);
    await setVersion('2026.2.1');
    const back = await run('authentik', ['--json']);
    assert.equal(recapOf(back.stdout).hosts[HOST]!.changed, 0, back.stdout.slice(-2000));
  });

  it('a Postgres image of another major version is refused with the way forward, nothing touched', async () => {
    labVars = () => pg17;
    const units = await sh('sha256sum /etc/containers/systemd/*.* /srv/authentik/.env');
    const server = await sh('systemctl show -p InvocationID --value authentik-server.service authentik-postgresql.service');
    const r = await run('authentik', ['--plain']);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /postgres_image localhost\/lab-postgres:17 is Postgres 17, but the data directory \/srv\/authentik\/database on authentik was made by Postgres 15 \(its PG_VERSION\): a new major version cannot start on an old major's data directory\. Nothing was changed\./);
    assert.match(r.stdout, /hint: to move the database to Postgres 17, run playbooks\/postgres-upgrade\.ts/);
    assert.ok(!/\| changed/.test(r.stdout), r.stdout);
    assert.equal(await sh('sha256sum /etc/containers/systemd/*.* /srv/authentik/.env'), units);
    assert.equal(await sh('systemctl show -p InvocationID --value authentik-server.service authentik-postgresql.service'), server);
  });

  // Postgres 17 serves the drill table as it was, authentik is ready, and the authentik
  // playbook with Postgres 17 finds everything as it wants it.
  const onPostgres17With = async (data: string) => {
    assert.match(await psql('SELECT version();\n'), /^PostgreSQL 17\./);
    assert.equal(await psql(DRILL), data);
    assert.equal(await ready(), 200);
    const after = await run('authentik', ['--json']);
    assert.equal(after.code, 0, after.stdout.slice(-2000));
    assert.equal(recapOf(after.stdout).hosts[HOST]!.changed, 0, after.stdout.slice(-2000));
  };

  it('playbooks/postgres-upgrade.ts moves the data to Postgres 17 intact and keeps the old directory', async () => {
    const data = await psql(DRILL);
    const r = await run('postgres-upgrade', ['--json']);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const [note] = notesOf(r.stdout);
    assert.match(note!, /^Postgres 15 -> 17: 2 tables, 20002 rows, every count as before; dump \S+-pre-pg17\.sql\.gz; old data directory kept as (\/srv\/authentik\/database\.pg15-\d{8}T\d{6}Z)/);
    const kept = /kept as (\S+)/.exec(note!)![1]!;
    assert.equal(await sh(`cat /srv/authentik/database/PG_VERSION ${kept}/PG_VERSION`), '17\n15');
    await onPostgres17With(data);
  });

  it('a Postgres upgrade whose new server never starts puts the old data directory back', async () => {
    const data = await psql(DRILL);
    // No such image anywhere: the new unit cannot start.
    const r = await run('postgres-upgrade', ['--plain', '-e', '{"postgres_image": "localhost/lab-postgres:18"}']);
    assert.equal(r.code, 2, r.stdout.slice(-3000));
    assert.match(r.stdout, /postgres upgrade failed: the Postgres 17 data directory is back in \/srv\/authentik\/database; the new one is kept as \/srv\/authentik\/database\.failed-pg18-\d{8}T\d{6}Z/);
    assert.equal(await sh('cat /srv/authentik/database/PG_VERSION'), '17');
    await onPostgres17With(data);
  });
});
