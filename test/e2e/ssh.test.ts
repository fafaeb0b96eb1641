import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { events, fixture, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';

const playbook = fixture('e2e', 'playbook.ts');
type Recap = { hosts: Record<string, { ok: number; changed: number; failed: number; unreachable: boolean }> };
const recap = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;

// The real CLI with /etc/hosts replaced by `hostsFile` in a mount namespace of its own: a DNS
// name for a lab target without touching the machine's resolver.
async function hostctlResolving(hostsFile: string, args: string[], env: Record<string, string> = {}) {
  const r = await execa('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec node bin/hostctl.js "$@"', hostsFile, ...args], {
    reject: false,
    cwd: repo,
    env: { NO_COLOR: '1', ...env },
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const fingerprintOf = async (key: string) => (await execa('ssh-keygen', ['-lf', '-'], { input: `x ${key}\n` })).stdout.split(' ')[1]!;

async function retry<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i >= attempts) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('over SSH on lab targets', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(1, ['e1', 'e2']);

  it('files, a template, a package and a unit: the second run changes nothing', async () => {
    const first = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--json']);
    assert.equal(first.code, 0, first.stderr + first.stdout.slice(-2000));
    for (const host of ['e1', 'e2']) assert.ok(recap(first.stdout).hosts[host]!.changed >= 5, host);
    // The restart handler ran last, as handlers do: give the server a moment to listen again.
    const page = await retry(() => fetch(`http://${t.lab.targets[0]!.address}:8080/`));
    assert.equal(await page.text(), '<h1>hello from hostctl</h1>\n<p>e1</p>\n');
    assert.equal((await t.sh('e1', 'systemctl is-enabled hostctl-demo.service')).stdout.trim(), 'enabled');
    assert.equal((await t.sh('e1', 'hello')).stdout.trim(), 'Hello, world!');

    const second = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--json']);
    assert.equal(second.code, 0, second.stderr);
    for (const host of ['e1', 'e2']) assert.equal(recap(second.stdout).hosts[host]!.changed, 0, host);
    // A converged host costs one round trip: everything the role reads, in one command.
    const ends = events(second.stdout).filter((e) => e.type === 'host-end') as Array<{ roundTrips: number }>;
    assert.deepEqual(ends.map((e) => e.roundTrips), [1, 1]);
  });

  it('a changed host key is refused, with the fingerprint and the line to fix', async () => {
    await using d = await tempDir();
    const known = join(d.path, 'known_hosts');
    const other = join(d.path, 'other');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const forged = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    const address = t.lab.targets[0]!.address;
    await writeFile(known, `${address} ${forged}\n`);
    const r = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'e1', '--known-hosts', known, '--plain']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /SHA256:[A-Za-z0-9+/]{43}/);
    assert.match(r.stdout, /known_hosts:1/);
    assert.match(r.stdout, /ssh-keygen -R/);
    // Even --accept-new-host-keys never accepts a changed key.
    const again = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'e1', '--known-hosts', known, '--accept-new-host-keys']);
    assert.equal(again.code, 4);
  });

  describe('a host given by a DNS name', () => {
    const name = 'e1.hostkeys.test';
    let dir: { path: string; [Symbol.asyncDispose](): Promise<void> };
    let address: string;
    let real: string;
    let forged: string;
    let inv: string;
    let hosts: string;
    before(async () => {
      dir = await tempDir();
      address = t.lab.targets[0]!.address;
      // The key `lab up` pinned for the address, read from the target before it booted.
      const pinned = (await readFile(t.lab.knownHostsPath, 'utf8')).split('\n').find((l) => l.startsWith(`${address} `));
      real = pinned!.split(' ').slice(1, 3).join(' ');
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir.path, 'other')]);
      forged = (await readFile(join(dir.path, 'other.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
      hosts = join(dir.path, 'hosts');
      await writeFile(hosts, `127.0.0.1 localhost\n${address} ${name}\n`);
      inv = join(dir.path, 'by-name.yml');
      await writeFile(inv, `all:\n  hosts:\n    e1:\n      ansible_host: ${name}\n`);
    });
    after(() => dir?.[Symbol.asyncDispose]());
    const run = (known: string, extra: string[] = [], env: Record<string, string> = {}) =>
      hostctlResolving(hosts, ['run', playbook, '-i', t.lab.inventoryPath, '-i', inv, '--limit', 'e1', '--check', '--plain', '--known-hosts', known, ...extra], env);

    it('is judged by that name: the right key filed under its IP does not outvote another key recorded for the name', async () => {
      const known = join(dir.path, 'kh-changed');
      await writeFile(known, `${address} ${real}\n${name} ${forged}\n`);
      const r = await run(known);
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(r.stdout, /host key for e1 \(e1\.hostkeys\.test\) has CHANGED/);
      assert.ok(r.stdout.includes(`${known}:2`), r.stdout);
      assert.ok(r.stdout.includes(await fingerprintOf(real)) && r.stdout.includes(await fingerprintOf(forged)), r.stdout);
      assert.match(r.stdout, /ssh-keygen -R e1\.hostkeys\.test -f /);
      // Not even --accept-new-host-keys gets past it.
      assert.equal((await run(known, ['--accept-new-host-keys'])).code, 4);
    });

    it('with its own key it connects; another key filed under its IP is warned about (CheckHostIP), naming both', async () => {
      const known = join(dir.path, 'kh-stale-ip');
      await writeFile(known, `${address} ${forged}\n${name} ${real}\n`);
      const r = await run(known);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const warning = r.stdout.split('\n').find((l) => l.includes('WARNING'));
      assert.ok(warning, r.stdout);
      assert.ok(warning.includes(`${known}:1`) && warning.includes(`IP address ${address}`), warning);
      assert.ok(warning.includes(await fingerprintOf(real)) && warning.includes(await fingerprintOf(forged)), warning);
      // CheckHostIP no: silence.
      const home = join(dir.path, 'home-quiet');
      await mkdir(join(home, '.ssh'), { recursive: true });
      await writeFile(join(home, '.ssh', 'config'), `Host ${name}\n  CheckHostIP no\n`);
      const quiet = await run(known, [], { HOME: home });
      assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
      assert.ok(!quiet.stdout.includes('WARNING'), quiet.stdout);
    });

    it('HostKeyAlias from ~/.ssh/config replaces the name, and --accept-new-host-keys records under it alone', async () => {
      const home = join(dir.path, 'home-alias');
      await mkdir(join(home, '.ssh'), { recursive: true });
      await writeFile(join(home, '.ssh', 'config'), `Host ${name}\n  HostKeyAlias e1-pinned\n`);
      const known = join(dir.path, 'kh-alias');
      await writeFile(known, `${name} ${real}\n${address} ${real}\ne1-pinned ${forged}\n`);
      const r = await run(known, [], { HOME: home });
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(r.stdout, /host key for e1 \(e1-pinned\) has CHANGED/);
      assert.ok(r.stdout.includes(`${known}:3`), r.stdout);
      const fresh = join(dir.path, 'kh-fresh');
      await writeFile(fresh, '');
      const accepted = await run(fresh, ['--accept-new-host-keys'], { HOME: home });
      assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
      assert.equal(await readFile(fresh, 'utf8'), `e1-pinned ${real}\n`);
    });
  });

  it('an unknown host key is refused without a terminal, and recorded with --accept-new-host-keys', async () => {
    await using d = await tempDir();
    const known = join(d.path, 'known_hosts');
    await writeFile(known, '');
    const refused = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'e2', '--known-hosts', known, '--plain']);
    assert.equal(refused.code, 4);
    assert.match(refused.stdout, /--accept-new-host-keys/);
    const accepted = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'e2', '--known-hosts', known, '--accept-new-host-keys']);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.match(await readFile(known, 'utf8'), new RegExp(`^${t.lab.targets[1]!.address.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'));
  });

  it('an unreachable host gives exit 4 while the reachable one in the same run succeeds', async () => {
    await using d = await tempDir();
    const inv = join(d.path, 'hosts.yml');
    const base = await readFile(t.lab.inventoryPath, 'utf8');
    // A second inventory source adds a host on the lab subnet where nothing answers.
    await writeFile(inv, `all:\n  hosts:\n    ghost:\n      ansible_host: 10.220.1.250\n      ansible_ssh_timeout: 3\n`);
    const r = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '-i', inv, '--limit', 'e1:ghost', '--json']);
    assert.ok(base.includes('e1'));
    assert.equal(r.code, 4, r.stderr);
    const hosts = recap(r.stdout).hosts;
    assert.equal(hosts.ghost!.unreachable, true);
    assert.equal(hosts.e1!.unreachable, false);
    assert.equal(hosts.e1!.failed, 0);
  });

  it('become: sudo with a password (fed on stdin) and with NOPASSWD, as non-root login users', async () => {
    await using d = await tempDir();
    const pub = (await readFile(`${t.lab.keyPath}.pub`, 'utf8')).trim();
    const setup = [
      'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy',
      'id quick >/dev/null 2>&1 || useradd -m -s /bin/bash quick',
      "echo 'deploy:s3cret-sudo-pw' | chpasswd",
      "echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy",
      "echo 'quick ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/quick",
      'for u in deploy quick; do install -d -m 700 -o $u -g $u /home/$u/.ssh; echo "$PUB" > /home/$u/.ssh/authorized_keys; chown $u:$u /home/$u/.ssh/authorized_keys; done',
    ].join(' && ');
    assert.equal((await t.sh('e2', `PUB='${pub}'; ${setup}`)).code, 0);
    const lab = await readFile(t.lab.inventoryPath, 'utf8');
    const as = async (user: string, password?: string) => {
      const inv = join(d.path, `${user}.yml`);
      await writeFile(inv, `all:\n  hosts:\n    e2:\n      ansible_user: ${user}\n      ansible_become: yes\n${password ? `      ansible_become_password: ${password}\n` : ''}`);
      return hostctl(['run', playbook, '-i', t.lab.inventoryPath, '-i', inv, '--limit', 'e2', '-e', `{"demo_message": "as ${user}"}`, '--plain']);
    };
    assert.ok(lab.includes('e2'));
    const withPassword = await as('deploy', 's3cret-sudo-pw');
    assert.equal(withPassword.code, 0, withPassword.stdout + withPassword.stderr);
    assert.ok(!withPassword.stdout.includes('s3cret-sudo-pw'));
    assert.equal((await t.sh('e2', 'stat -c %U /srv/demo/index.html; cat /srv/demo/index.html')).stdout, 'root\n<h1>as deploy</h1>\n<p>e2</p>'); // execa strips the final newline
    const nopasswd = await as('quick');
    assert.equal(nopasswd.code, 0, nopasswd.stdout + nopasswd.stderr);
    assert.match((await t.sh('e2', 'cat /srv/demo/index.html')).stdout, /as quick/);
    const wrong = await as('deploy', 'not-the-password');
    assert.equal(wrong.code, 2);
    assert.match(wrong.stdout, /sudo to root refused the become password/);
    const none = await as('deploy');
    assert.equal(none.code, 2);
    assert.match(none.stdout, /needs a password/);
  });

  it('a link cut mid-run fails clearly, leaves no partial file at the target path, and the next run converges', async () => {
    await using d = await tempDir();
    const inv = join(d.path, 'keepalive.yml');
    await writeFile(inv, 'all:\n  vars:\n    hostctl_ssh_keepalive_interval: 1\n');
    const veth = await t.hostVeth('e1');
    await t.sh('e1', 'rm -f /srv/demo/blob');
    const child = execa('node', ['bin/hostctl.js', 'run', playbook, '-i', t.lab.inventoryPath, '-i', inv, '--limit', 'e1', '-e', '{"demo_blob_size": 400000000}', '--json'], { reject: false });
    let seen = '';
    let cut = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (!cut && seen.includes('"task":"file /srv/demo/blob"')) {
        cut = true;
        setTimeout(() => void execa('ip', ['link', 'set', veth, 'down']), 300);
      }
    });
    const r = await child;
    await execa('ip', ['link', 'set', veth, 'up']);
    assert.ok(cut, 'the link was cut during the upload');
    assert.equal(r.exitCode, 4, String(r.stdout).slice(-1500) + r.stderr);
    assert.match(String(r.stdout), /connection to .* lost/);
    // Never a partial file at the target path: absent, or complete (rename happens last).
    const blob = await t.sh('e1', 'stat -c %s /srv/demo/blob 2>/dev/null || echo absent');
    assert.ok(['absent', '400000000'].includes(blob.stdout.trim()), blob.stdout);
    const next = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'e1', '-e', '{"demo_blob_size": 400000000}', '--json']);
    assert.equal(next.code, 0, next.stderr);
    assert.equal((await t.sh('e1', 'stat -c %s /srv/demo/blob')).stdout.trim(), '400000000');
  });
});
