import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import { encrypt } from '../../src/vault/index.js';
import { events, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labImages } from '../../src/lab/images.js';
import { labSkip, useLab } from '../helpers/lab.js';

const PASSWORD = 'lab-only-example-password';
type Recap = { hosts: Record<string, { ok: number; changed: number; failed: number }> };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const recapOf = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;

// playbooks/authentik.ts on fresh lab targets with the users' inventory (copied, so the
// tests can edit vars and vault as a user would).
describe('the authentik playbook', { skip: labSkip, timeout: 1_800_000 }, () => {
  const t = useLab(5, ['authentik', 'authentik2']);
  let inventory = '';
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir('hostctl-authentik-');
    inventory = join(dir.path, 'inventory');
    await cp(join(repo, 'inventory'), inventory, { recursive: true });
    await writeFile(join(inventory, 'hosts.yml'), 'all:\n  children:\n    authentik:\n      hosts:\n        authentik:\n        authentik2:\n');
    await cp(join(inventory, 'host_vars', 'authentik'), join(inventory, 'host_vars', 'authentik2'), { recursive: true });
    await labImages(t.lab, { authentikTags: ['2025.8.1', '2026.2.1'], postgresMajors: [17] });
  });

  const run = (host: string, ...args: string[]) =>
    hostctl([
      'run', join(repo, 'playbooks', 'authentik.ts'), '-i', inventory, '-i', t.lab.inventoryPath, '-e', `@${join(repo, 'lab', 'authentik.yml')}`,
      // "authentik" is also the group's name, which as a pattern means every host in it.
      '--vault-password-file', join(repo, 'lab', 'vault-password'), '--limit', host === 'authentik' ? 'authentik:!authentik2' : host, ...args,
    ]);
  const address = (host: string) => t.lab.targets.find((x) => x.name === host)!.address;
  const ready = async (host: string) => (await fetch(`http://${address(host)}:9000/-/health/ready/`).catch(() => ({ status: 0 }))).status;
  const invocation = async (host: string, unit: string) => (await t.sh(host, `systemctl show -p InvocationID --value ${unit}`)).stdout.trim();
  const setVar = async (host: string, from: RegExp, to: string) => {
    const file = join(inventory, 'host_vars', host, 'vars.yml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(from, to));
  };

  it('a fresh target: the stack becomes healthy and answers ready through port 9000', async () => {
    const r = await run('authentik', '--json');
    assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
    assert.equal(await ready('authentik'), 200);
    const end = events(r.stdout).find((e) => e.type === 'host-end') as { notes: string[] };
    assert.deepEqual(end.notes, ['authentik 2026.2.1: live and ready on port 9000']);
    const env = await t.sh('authentik', 'stat -c "%a %U" /srv/authentik/.env; grep -c REDIS /srv/authentik/.env; cd /etc/containers/systemd && ls *.*');
    assert.equal(env.stdout, '600 root\n0\nauthentik-internal.network\nauthentik-postgresql.container\nauthentik-server.container\nauthentik-worker.container');
  });

  it('the worker hands media and certs to authentik as the real image does, and the second run changes nothing, in one round trip', async () => {
    // What the images do to the host: the worker (root) runs `chown -R authentik:authentik
    // /media /certs`, `chmod ug+rwx /media` and then runs as 1000 with the socket's group;
    // Postgres (70, as postgres:16-alpine) takes PGDATA's owner, not its group, and makes it 0700.
    // Left as an older hostctl left them (root:root 0755), they are the worker's on its next start.
    await t.sh('authentik', 'cd /srv/authentik && touch media/planted certs/planted && chown 0:0 media certs && chmod 0755 media certs && systemctl restart authentik-worker.service');
    const owners = 'cd /srv/authentik && stat -c "%n %u:%g %a" media media/planted certs certs/planted database';
    let seen = '';
    for (let i = 0; i < 60 && !(seen = (await t.sh('authentik', owners)).stdout).includes('certs/planted 1000:1000'); i++) await sleep(1000);
    const taken = 'media 1000:1000 775\nmedia/planted 1000:1000 644\ncerts 1000:1000 755\ncerts/planted 1000:1000 644\ndatabase 70:0 700';
    assert.equal(seen, taken);
    const worker = await t.sh('authentik', `grep -E '^(Uid|Gid|Groups):' /proc/"$(podman inspect -f '{{.State.Pid}}' authentik-worker)"/status; stat -c %g /run/podman/podman.sock`);
    const [uids, gids, groups, socket] = worker.stdout.trim().split('\n').map((l) => l.replace(/^\w+:\s*/, '').split(/\s+/));
    assert.deepEqual([uids, gids], [['1000', '1000', '1000', '1000'], ['1000', '1000', '1000', '1000']], worker.stdout);
    assert.ok(groups!.includes(socket![0]!), worker.stdout);

    const r = await run('authentik', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(recapOf(r.stdout).hosts.authentik!.changed, 0, r.stdout.split('\n').filter((l) => l.includes('"changed"')).join('\n'));
    // Every role's reads and the preflight checks, in one command.
    const end = events(r.stdout).find((e) => e.type === 'host-end') as { roundTrips: number };
    assert.equal(end.roundTrips, 1);
    assert.equal((await t.sh('authentik', owners)).stdout, taken);
  });

  it('after the second run the server, as uid 1000 like the real one, writes to /media', async () => {
    const w = await t.sh('authentik', 'podman exec authentik-server sh -c "id -u && echo upload > /media/from-server" && stat -c "%u:%g %s" /srv/authentik/media/from-server');
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, '1000\n1000:1000 7');
  });

  it('--check --diff after editing a variable shows exactly the changed unit lines and changes nothing', async () => {
    const before = (await t.sh('authentik', 'sha256sum /etc/containers/systemd/* /srv/authentik/.env')).stdout;
    const r = await run('authentik', '--check', '--diff', '--plain', '-e', '{"authentik_http_port": 9100}');
    assert.equal(r.code, 0, r.stdout.slice(-2000));
    assert.match(r.stdout, /-PublishPort=9000:9000\n\s+\+PublishPort=9100:9000/);
    assert.equal((r.stdout.match(/^\s+[-+][^-+]/gm) ?? []).length, 2, r.stdout);
    assert.equal((await t.sh('authentik', 'sha256sum /etc/containers/systemd/* /srv/authentik/.env')).stdout, before);
  });

  it('a comment in vars changes and restarts nothing', async () => {
    const server = await invocation('authentik', 'authentik-server.service');
    await setVar('authentik', /^/, '# a comment only\n');
    const r = await run('authentik', '--json');
    assert.equal(recapOf(r.stdout).hosts.authentik!.changed, 0);
    assert.equal(await invocation('authentik', 'authentik-server.service'), server);
  });

  it('rotating the database password in the vault changes it in Postgres; server and worker restart once', async () => {
    const server = await invocation('authentik', 'authentik-server.service');
    const worker = await invocation('authentik', 'authentik-worker.service');
    const postgres = await invocation('authentik', 'authentik-postgresql.service');
    const vaultFile = join(inventory, 'host_vars', 'authentik', 'vault.yml');
    const secretKey = /vault_authentik_secret_key: (\S+)/.exec((await hostctl(['vault', 'view', '--vault-password-file', join(repo, 'lab', 'vault-password'), vaultFile])).stdout)![1]!;
    await writeFile(vaultFile, encrypt(`vault_authentik_pg_pass: rotated-pg-password-1\nvault_authentik_secret_key: ${secretKey}\n`, PASSWORD));
    const since = (await t.sh('authentik', 'date +%s')).stdout.trim();
    const r = await run('authentik', '--diff', '--plain');
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.match(r.stdout, /postgres password of role authentik \| changed/);
    assert.match(r.stdout, /-POSTGRES_PASSWORD=\*{8}/);
    assert.ok(!r.stdout.includes('rotated-pg-password-1'));
    assert.equal(await ready('authentik'), 200);
    assert.notEqual(await invocation('authentik', 'authentik-server.service'), server);
    assert.notEqual(await invocation('authentik', 'authentik-worker.service'), worker);
    assert.equal(await invocation('authentik', 'authentik-postgresql.service'), postgres);
    const starts = await t.sh('authentik', `journalctl --since @${since} -u authentik-server.service -u authentik-worker.service -o cat | grep -c '^Started authentik'`);
    assert.equal(starts.stdout.trim(), '2');
    const login = await t.sh('authentik', `podman exec -e PGPASSWORD=rotated-pg-password-1 authentik-postgresql psql -h 127.0.0.1 -U authentik -d authentik -tAc 'select 1'`);
    assert.equal(login.stdout.trim(), '1');
  });

  it('a stale DNAT rule planted in the network\'s chain is removed by the next run, and port 9000 answers again', async () => {
    const plant = `c=$(nft list table inet netavark | grep -o 'nv_[0-9a-f]*_[0-9a-z_]*_dnat' | head -1); nft insert rule inet netavark $c tcp dport 9000 dnat ip to 10.89.250.250:9000 && echo $c`;
    assert.match((await t.sh('authentik', plant)).stdout, /^nv_[0-9a-f]{8}_.*_dnat$/);
    assert.equal(await ready('authentik'), 0);
    const r = await run('authentik', '--plain');
    assert.equal(r.code, 0, r.stdout.slice(-2000));
    assert.match(r.stdout, /stale netavark DNAT rules of authentik-internal \| changed .*remove 1 stale rule/);
    assert.equal(await ready('authentik'), 200);

    // Podman before 5 has no containers in `network inspect`: the script's other path, tried
    // with a podman that refuses that field, finds the same stale rule and no live one.
    const older = `d=$(mktemp -d); printf '%s\\n' '#!/bin/sh' "echo \\"\\$*\\" >> $d/calls" 'case "$*" in *.Containers*) echo "no field Containers" >&2; exit 125;; esac' 'exec /usr/bin/podman "$@"' > $d/podman; chmod +x $d/podman; PATH=$d:$PATH`;
    await t.sh('authentik', plant);
    const listed = await t.sh('authentik', `${older} /usr/local/libexec/hostctl/netavark-dnat-cleanup --list authentik-internal; grep -q '^ps -q' $d/calls && echo 'asked podman ps'`);
    assert.match(listed.stdout, /^stale DNAT to 10\.89\.250\.250 in nv_[0-9a-f]{8}_\S+_dnat \(handle \d+\)\nasked podman ps$/);
    await t.sh('authentik', `${older} /usr/local/libexec/hostctl/netavark-dnat-cleanup authentik-internal`);
    assert.equal(await ready('authentik'), 200);
  });

  it('after a reboot of the target the stack comes back healthy by itself', async () => {
    const boot = (await t.sh('authentik', 'cat /proc/sys/kernel/random/boot_id')).stdout;
    await t.sh('authentik', 'systemctl reboot');
    let status = 0;
    for (let i = 0; i < 120 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      status = await ready('authentik');
    }
    assert.equal(status, 200);
    assert.notEqual((await t.sh('authentik', 'cat /proc/sys/kernel/random/boot_id')).stdout, boot);
  });

  it('podman below 4.4 is refused with the clear message and nothing is written', async () => {
    const r = await run('authentik2', '--plain', '-e', '{"hostctl_fact_overrides": {"podman-version": {"version": "4.3.1", "installed": true}}}');
    assert.equal(r.code, 2);
    assert.match(r.stdout, /podman 4\.3\.1 on authentik2 has no Quadlet \(needs 4\.4 or later\)/);
    assert.match(r.stdout, /Debian 12 ships podman 4\.3\.1: upgrade the container to Debian 13/);
    assert.ok(!/\| changed/.test(r.stdout), r.stdout);
    const written = await t.sh('authentik2', 'ls /srv/authentik /etc/apt/apt.conf.d/20auto-upgrades /etc/ssh/sshd_config.d/50-hostctl.conf 2>&1 | grep -vc "No such file"');
    assert.equal(written.stdout.trim(), '0');
  });

  it('an upgrade across 2025.10 removes the Redis unit and env line, and the stack is healthy', async () => {
    await setVar('authentik2', /authentik_version: "[^"]+"/, 'authentik_version: "2025.8.1"');
    const old = await run('authentik2', '--plain');
    assert.equal(old.code, 0, old.stdout.slice(-3000));
    assert.equal((await t.sh('authentik2', 'systemctl is-active authentik-redis.service; grep -c AUTHENTIK_REDIS__HOST /srv/authentik/.env')).stdout, 'active\n1');
    // Redis's entrypoint (999, as in the official image) took /data's owner, not its group.
    assert.equal((await t.sh('authentik2', 'stat -c "%u:%g %a" /srv/authentik/redis')).stdout, '999:0 755');
    assert.equal(await ready('authentik2'), 200);
    await setVar('authentik2', /authentik_version: "[^"]+"/, 'authentik_version: "2026.2.1"');
    const up = await run('authentik2', '--plain');
    assert.equal(up.code, 0, up.stdout.slice(-3000));
    assert.match(up.stdout, /remove authentik-redis\.container/);
    const gone = await t.sh('authentik2', 'cd /etc/containers/systemd && ls *.*; grep -c REDIS /srv/authentik/.env; systemctl is-active authentik-redis.service; podman ps --format "{{.Names}}" | sort');
    assert.equal(gone.stdout, 'authentik-internal.network\nauthentik-postgresql.container\nauthentik-server.container\nauthentik-worker.container\n0\ninactive\nauthentik-postgresql\nauthentik-server\nauthentik-worker');
    assert.equal(await ready('authentik2'), 200);
    const again = await run('authentik2', '--json');
    assert.equal(recapOf(again.stdout).hosts.authentik2!.changed, 0);
  });
});
