import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { after, before, describe, it } from 'node:test';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';
import { knownHostsLine, sftpTarget } from '../../roles/authentik/restic.js';
import { parseSnapshots, shownRepository } from '../../roles/authentik/restic-backup.js';

const HOST = 'authentik';
const NAS = 'nas';
const REPO_DIR = '/srv/restic/authentik';
const notesOf = (stdout: string) => (events(stdout).find((e) => e.type === 'host-end') as { notes: string[] }).notes;
// A table of the test's own: its row count and a checksum of its content.
const DRILL = `SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '')) FROM drill;\n`;
// Text only the drill table holds: it must never appear in the repository's files.
const MARKER = 'hostctl-restic-marker-7f3a';

describe('restic helpers', () => {
  it('reads user, host and port of an sftp repository', () => {
    assert.deepEqual(sftpTarget('sftp:backup@nas:/srv/restic/authentik'), { user: 'backup', host: 'nas', port: undefined });
    assert.deepEqual(sftpTarget('sftp://backup@nas.lan:2222//srv/restic'), { user: 'backup', host: 'nas.lan', port: 2222 });
    assert.deepEqual(sftpTarget('sftp:nas:restic'), { user: undefined, host: 'nas', port: undefined });
    assert.equal(sftpTarget('rest:https://nas:8000/authentik'), undefined);
    assert.equal(sftpTarget('/srv/restic'), undefined);
  });
  it('pins a known_hosts line under the repository alias, with or without its host field', () => {
    assert.equal(knownHostsLine('nas ssh-ed25519 AAAAkey'), 'restic-repository ssh-ed25519 AAAAkey\n');
    assert.equal(knownHostsLine('ecdsa-sha2-nistp256 AAAAkey comment'), 'restic-repository ecdsa-sha2-nistp256 AAAAkey\n');
    assert.equal(knownHostsLine('nas'), undefined);
  });
  it('names a repository without the password its URL may hold', () => {
    assert.equal(shownRepository('rest:https://user:s3cret@nas:8000/authentik'), 'rest:https://user:***@nas:8000/authentik');
    assert.equal(shownRepository('sftp:backup@nas:/srv/restic'), 'sftp:backup@nas:/srv/restic');
  });
  it('takes from a host only a snapshot list as restic makes it', () => {
    const good = { id: 'a'.repeat(64), short_id: 'aaaaaaaa', time: '2026-03-15T03:15:00.1234+01:00', hostname: 'h', paths: ['/authentik.sql'], tags: ['authentik'] };
    assert.deepEqual(parseSnapshots(JSON.stringify([good]), 'w').map((s) => s.short_id), ['aaaaaaaa']);
    assert.throws(() => parseSnapshots(JSON.stringify([{ ...good, id: '../../x' }]), 'restic on h'), /^HostctlError: restic on h: restic's snapshot list is not what restic lists/);
    assert.throws(() => parseSnapshots(JSON.stringify([{ ...good, time: 'yesterday' }]), 'w'), /not what restic lists: a time/);
    assert.throws(() => parseSnapshots('Fatal: oops', 'w'), /w: restic's snapshot list is not JSON/);
  });
});

// The nightly backup into a restic repository over SFTP on a second target, what
// playbooks/backup.ts verifies, restores from the repository, retention, the controller-side
// mode, metrics and failures: one deployed authentik for the whole file.
describe('authentik backups in a restic repository', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(19, [HOST, NAS]);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let inventory = '';
  let labVars = '';

  const sh = async (host: string, command: string, input?: string) => {
    const r = await t.sh(host, command, input === undefined ? {} : { input });
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const psql = (sql: string) => sh(HOST, 'podman exec -i authentik-postgresql psql -X -q -At -v ON_ERROR_STOP=1 -U authentik -d authentik', sql);
  const address = (name: string) => t.lab.targets.find((x) => x.name === name)!.address;
  const restic = (args: string) => sh(HOST, `/usr/local/libexec/hostctl/authentik-restic ${args}`);
  const run = (playbook: string, args: string[] = []) =>
    hostctl(
      ['run', join(repo, 'playbooks', `${playbook}.ts`), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${labVars}`,
        '--vault-password-file', join(repo, 'lab', 'vault-password'), ...args],
      { cwd: dir.path },
    );
  // The nightly unit started now; its journal in the message if it failed.
  const nightly = async () => {
    const r = await t.sh(HOST, 'systemctl start authentik-backup.service');
    if (r.code !== 0) assert.fail((await t.sh(HOST, 'journalctl -u authentik-backup.service -n 15 -o cat --no-pager')).stdout);
  };
  async function setVersion(v: string) {
    const file = join(inventory, 'host_vars', HOST, 'vars.yml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/authentik_version: "[^"]+"/, `authentik_version: "${v}"`));
  }
  const dbSnapshots = async () =>
    (JSON.parse(await restic('snapshots --json --path /authentik.sql')) as { short_id: string; tags: string[]; time: string }[]);

  before(async () => {
    dir = await tempDir('hostctl-restic-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    await labImages(t.lab, { names: [HOST], authentikTags: ['2026.1.1', '2026.2.1'], postgresMajors: [17] });
    await setVersion('2026.1.1');
    // The NAS: a `backup` user who may log in with the authentik host's key only.
    const key = join(dir.path, 'backup_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'authentik-backup', '-f', key]);
    const pub = (await readFile(`${key}.pub`, 'utf8')).trim();
    // (The lab's minimal Debian has sshd but not its SFTP server.)
    await sh(NAS, `test -x /usr/lib/openssh/sftp-server || DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-sftp-server >/dev/null
# Debian's own backup user (uid 34) may log in, with a shell sftp-server can run under.
id backup >/dev/null 2>&1 || useradd -m backup; usermod -s /bin/sh backup
install -d -o backup -g backup -m 0700 /srv/restic ~backup/.ssh
printf '%s\\n' '${pub}' > ~backup/.ssh/authorized_keys && chown backup: ~backup/.ssh/authorized_keys`);
    const hostKey = await sh(NAS, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
    const lab = (await readFile(join(repo, 'lab', 'authentik.yml'), 'utf8')).replace(/_delay: \d+/g, '_delay: 1');
    labVars = join(dir.path, 'lab.yml');
    await writeFile(labVars, `${lab}
authentik_backup_repository: "sftp:backup@${address(NAS)}:${REPO_DIR}"
authentik_backup_repository_password: "correct horse battery staple"
authentik_backup_repository_init: true
authentik_backup_sftp_known_hosts: "${address(NAS)} ${hostKey.split(' ').slice(0, 2).join(' ')}"
authentik_backup_sftp_key: |
${(await readFile(key, 'utf8')).trim().split('\n').map((l) => `  ${l}`).join('\n')}
authentik_backup_node_exporter: true
authentik_backup_keep_daily: 3
authentik_backup_keep_weekly: 0
authentik_backup_keep_monthly: 2
`);
  });
  after(async () => {
    await dir?.[Symbol.asyncDispose]();
  });

  it('the nightly unit stores the dump in the sftp repository: encrypted, and a second backup adds little', async () => {
    const deployed = await run('authentik', ['--plain']);
    assert.equal(deployed.code, 0, deployed.stdout.slice(-3000) + deployed.stderr);
    // No secret in the unit (nothing in argv), the configuration root's only.
    const unit = await sh(HOST, 'systemctl cat authentik-backup.service');
    assert.ok(!unit.includes('correct horse'), unit);
    assert.equal(await sh(HOST, 'stat -c %a:%U /etc/hostctl/authentik-restic /etc/hostctl/authentik-restic/*'), Array(6).fill('').map((_, i) => (i === 0 ? '700:root' : '600:root')).join('\n'));
    await psql(`CREATE TABLE drill (id int PRIMARY KEY, body text);
INSERT INTO drill SELECT g, '${MARKER}-' || md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE bulk (id int PRIMARY KEY, body text);
INSERT INTO bulk SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 300000) g;\n`);

    await nightly();
    const [first] = await dbSnapshots();
    assert.ok(first, 'one snapshot of the dump');
    assert.ok(first.tags.includes('authentik-version=2026.1.1') && first.tags.includes(`host=${HOST}`), first.tags.join(','));
    assert.match(await restic(`dump ${first.short_id} /authentik.sql | grep -c '^CREATE TABLE public.drill '`), /^1$/);
    assert.match(await restic(`dump ${first.short_id} /authentik.sql | grep -c '${MARKER}'`), /^20000$/);
    // Not one byte of the marker in any file of the repository: restic encrypted it.
    assert.equal((await t.sh(NAS, `grep -rlF '${MARKER}' ${REPO_DIR}; echo $?`)).stdout.trim(), '1');
    assert.equal((await t.sh(NAS, `grep -rlF 'CREATE TABLE' ${REPO_DIR}; echo $?`)).stdout.trim(), '1');

    // Deduplicated: the second dump, of the same data, adds a small part of what the first did
    // (restic's own count, data_added, which the script logs). Not nothing: pg_dump opens and
    // closes each dump with a random \\restrict key, so its first and last chunks are new.
    await nightly();
    const added = (await sh(HOST, 'journalctl -u authentik-backup.service -o cat --no-pager | sed -n "s/.*: snapshot [0-9a-f]*, \\([0-9]*\\) bytes added$/\\1/p"')).split('\n').map(Number);
    assert.equal(added.length, 2, added.join(' '));
    assert.ok(added[1]! < added[0]! / 5, `the first backup added ${added[0]} bytes, the second ${added[1]}`);
    // (Both stay: restic 0.17+ keeps the oldest too while the policy's days are not filled.)
    assert.notEqual((await dbSnapshots()).at(-1)!.short_id, first.short_id);
  });

  it('playbooks/backup.ts proves the snapshot: its age and size, a share of restic check, a restore drill; metrics on :9100', async () => {
    const r = await run('backup', ['--json']);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const [note] = notesOf(r.stdout);
    assert.match(note!, new RegExp(`^backup OK: ${HOST} authentik-\\d{8}T\\d{6}Z in sftp:backup@[\\d.]+:${REPO_DIR}: snapshot ([0-9a-f]{8}) \\([\\d.]+ (?:KiB|MiB), \\d+ s old\\), check \\d+/30 OK; drill: 3 tables, 32000\\d rows restored`));
    const id = /snapshot ([0-9a-f]{8})/.exec(note!)![1]!;
    assert.equal((await dbSnapshots()).at(-1)!.short_id, id);
    // The scratch database and the fetched dump are gone.
    assert.equal(await psql("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname LIKE 'authentik%';\n"), 'authentik');
    assert.equal(await sh(HOST, 'ls -A /srv/authentik/backup | grep -c drill || true'), '0');
    const metrics = await (await fetch(`http://${address(HOST)}:9100/metrics`)).text();
    // node_exporter prints its values as floats (1.795668013e+09).
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    assert.equal(metric('authentik_backup_status'), 1);
    const last = metric('authentik_backup_last_success_timestamp_seconds');
    assert.ok(Date.now() / 1000 - last < 300, `last success ${last}`);
    assert.ok(metric('authentik_backup_size_bytes') > 10e6, metrics);
    assert.ok(metric('authentik_backup_duration_seconds') >= 0);
    assert.equal(metric('authentik_backup_drill_status'), 1);
    assert.ok(Math.abs(metric('authentik_backup_drill_rows') - 320000) < 10, metrics);
  });

  it('restores a snapshot from the repository: a dropped table comes back, rows identical', async () => {
    const written = await psql(DRILL);
    const r = await run('backup', ['--json']);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const id = /snapshot ([0-9a-f]{8})/.exec(notesOf(r.stdout)[0]!)![1]!;
    await psql('DROP TABLE drill;\n');
    const refused = await run('restore', ['--plain', '-e', `restore_snapshot=${id}`]);
    assert.equal(refused.code, 2);
    assert.match(refused.stdout, new RegExp(`refusing to restore without confirmation\\. It would replace database "authentik" on ${HOST} with the dump snapshot ${id} of sftp:`));
    const restored = await run('restore', ['--plain', '-e', `restore_snapshot=${id}`, '-e', 'confirm_restore=yes']);
    assert.equal(restored.code, 0, restored.stdout.slice(-3000));
    assert.equal(await psql(DRILL), written);
    // latest: this host's newest, the same one.
    await psql('DELETE FROM drill WHERE id > 100;\n');
    const latest = await run('restore', ['--plain', '-e', 'restore_snapshot=latest', '-e', 'confirm_restore=yes']);
    assert.equal(latest.code, 0, latest.stdout.slice(-3000));
    assert.equal(await psql(DRILL), written);
    assert.equal(await sh(HOST, 'ls /srv/authentik/backup | grep -c snapshot || true'), '0');
  });

  it('retention: of backups on faked days, forget keeps what the policy says', async () => {
    // Snapshots of earlier days, as the nightly unit tags them (restic backup --time).
    for (const day of ['2026-01-10', '2026-01-11', '2026-01-12', '2026-01-13', '2026-01-14', '2025-12-15', '2025-11-20']) {
      await restic(`backup --quiet --stdin --stdin-filename authentik.sql --host ${HOST} --tag authentik --time '${day} 03:15:00' <<<'${day}'`);
    }
    await nightly();
    const days = (await dbSnapshots()).map((s) => s.time.slice(0, 10));
    const today = new Date().toISOString().slice(0, 10);
    // keep_daily 3: today, 01-14, 01-13; keep_monthly 2: today's month and January's newest
    // (01-14, already kept); December and November go.
    assert.deepEqual(days, ['2026-01-13', '2026-01-14', today]);
  });

  it('the controller-side mode stores the set in a local repository, encrypted, and drills it', async () => {
    const local = join(dir.path, 'controller-repo');
    const extra = JSON.stringify({ backup_controller_repository: local, backup_controller_repository_password: 'controller secret', backup_controller_repository_init: true });
    const r = await run('backup', ['--json', '-e', extra]);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const [note] = notesOf(r.stdout);
    assert.match(note!, new RegExp(`^backup OK: ${HOST} authentik-\\d{8}T\\d{6}Z in ${local} \\(controller\\): snapshot ([0-9a-f]{8}) .*check \\d+/30 OK.*; drill: 3 tables, 32000\\d rows restored`));
    const env = { ...process.env, RESTIC_REPOSITORY: local, RESTIC_PASSWORD: 'controller secret' };
    const dump = await execa('restic', ['dump', '--path', '/authentik.sql', 'latest', '/authentik.sql'], { env });
    assert.match(String(dump.stdout), /^CREATE TABLE public\.drill /m);
    assert.equal((await execa('grep', ['-rlF', MARKER, local], { reject: false })).exitCode, 1);
    // A wrong password: exit 2, a clear message, the snapshot still there.
    const wrong = await run('backup', ['--plain', '-e', JSON.stringify({ ...JSON.parse(extra), backup_controller_repository_password: 'wrong' })]);
    assert.equal(wrong.code, 2, wrong.stdout.slice(-2000));
    assert.match(wrong.stdout, new RegExp(`restic repository ${local} does not accept the password \\(backup_controller_repository_password\\)`));
    assert.equal(JSON.parse(String((await execa('restic', ['snapshots', '--json', '--path', '/authentik.sql'], { env })).stdout)).length, 1);
  });

  it('a wrong password or an unreachable repository: exit 2, a clear message, no snapshot lost', async () => {
    const before = (await dbSnapshots()).map((s) => s.short_id);
    await sh(HOST, 'cp -p /etc/hostctl/authentik-restic/password /root/password && echo wrong > /etc/hostctl/authentik-restic/password');
    const wrong = await run('backup', ['--plain']);
    await sh(HOST, 'mv /root/password /etc/hostctl/authentik-restic/password');
    assert.equal(wrong.code, 2, wrong.stdout.slice(-2000));
    assert.match(wrong.stdout, /authentik-backup: FAILED: restic repository sftp:\S+ does not accept the password \(authentik_backup_repository_password\)/);
    assert.ok(!wrong.stdout.includes('correct horse'));

    await sh(HOST, `nft add table inet cut && nft add chain inet cut out '{ type filter hook output priority 0; }' && nft add rule inet cut out ip daddr ${address(NAS)} tcp dport 22 reject with tcp reset`);
    const cut = await run('backup', ['--plain']);
    await sh(HOST, 'nft delete table inet cut');
    assert.equal(cut.code, 2, cut.stdout.slice(-2000));
    assert.match(cut.stdout, /authentik-backup: FAILED: cannot open restic repository sftp:\S+: .*(refused|reset|unable to start the sftp session)/);
    assert.deepEqual((await dbSnapshots()).map((s) => s.short_id), before);
    const metrics = await (await fetch(`http://${address(HOST)}:9100/metrics`)).text();
    assert.match(metrics, /^authentik_backup_status 0$/m);
    assert.ok(Number(/^authentik_backup_last_success_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]) > 0, 'the last success stays');
  });

  it('an upgrade\'s dump goes into the repository too, tagged pre-upgrade', async () => {
    await setVersion('2026.2.1');
    const r = await run('authentik', ['--json']);
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    const dump = /^pre-upgrade dump \([^)]*\): \S+\/(authentik-\d{8}T\d{6}Z-pre-2026\.2\.1)\.sql\.gz$/m.exec(notesOf(r.stdout).join('\n'))?.[1];
    assert.ok(dump, notesOf(r.stdout).join('\n'));
    const [snapshot] = (await dbSnapshots()).filter((s) => s.tags.includes(`set=${dump}`));
    assert.ok(snapshot?.tags.includes('pre-upgrade'), JSON.stringify(snapshot));
    assert.match(await restic(`dump ${snapshot!.short_id} /authentik.sql | grep -c '^CREATE TABLE public.drill '`), /^1$/);
    // restic, its configuration and node_exporter as the role wants them: a second run changes nothing.
    const again = await run('authentik', ['--json']);
    const recap = events(again.stdout).find((e) => e.type === 'recap') as unknown as { hosts: Record<string, { changed: number }> };
    assert.equal(recap.hosts[HOST]!.changed, 0, again.stdout.slice(-3000));
  });
});
