import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { events, fixture, hostctl, repo, tempDir } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';

// An Ansible user's connection settings and command line on lab targets: a bastion given by
// ansible_ssh_common_args (or --ssh-common-args), -T, and -u/--private-key/-b/--become-user/-K.
const playbook = fixture('habits', 'playbook.ts');
type Recap = { hosts: Record<string, { changed: number; failed: number; unreachable: boolean }> };
const recap = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;

// The real CLI on a terminal (script(1) gives it a pty), answering `answer` once `question` shows.
async function onTerminal(args: string[], question: RegExp, answer: string) {
  const command = ['node', join(repo, 'bin', 'hostctl.js'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = execa('script', ['-qec', command, '/dev/null'], { reject: false, cwd: repo, env: { NO_COLOR: '1' }, stdin: 'pipe' });
  let out = '';
  let answered = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (!answered && question.test(out)) {
      answered = true;
      child.stdin!.write(`${answer}\n`);
    }
  });
  const r = await child;
  return { code: r.exitCode ?? -1, out, answered };
}

describe('Ansible habits on lab targets', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(14, ['hb1', 'hb2']);

  it('a bastion given by ansible_ssh_common_args (or --ssh-common-args) is used; -T bounds the direct attempt', async () => {
    await using d = await tempDir();
    const first = t.lab.targets[0]!;
    const second = t.lab.targets[1]!;
    // hb2 cannot be reached from the controller, only from hb1 on the bridge.
    const table = 'hostctl_habits14';
    await execa('nft', ['-f', '-'], { input: `table ip ${table} {\n chain out {\n  type filter hook output priority 0;\n  ip daddr ${second.address} tcp dport 22 drop\n }\n}\n` });
    try {
      const direct = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'hb2', '-e', 'habits_dir=/root', '-T', '2', '--json']);
      assert.equal(direct.code, 4, direct.stdout + direct.stderr);
      assert.match(direct.stdout, /no TCP connection within 2000 ms/);

      const inv = join(d.path, 'bastion.yml');
      await writeFile(inv, `all:\n  hosts:\n    hb2:\n      ansible_ssh_common_args: '-o ProxyJump=root@${first.address}'\n`);
      const jumped = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '-i', inv, '--limit', 'hb2', '-e', 'habits_dir=/root', '--json']);
      assert.equal(jumped.code, 0, jumped.stdout + jumped.stderr);
      assert.ok(recap(jumped.stdout).hosts.hb2!.changed > 0);
      assert.match(String(events(jumped.stdout).find((e) => e.type === 'host-start')?.address), new RegExp(`^ssh root@${second.address.replace(/\./g, '\\.')}:22 via ${first.address.replace(/\./g, '\\.')}$`));

      // The same bastion from the command line.
      const flag = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'hb2', '-e', 'habits_dir=/root', `--ssh-common-args=-J root@${first.address}`, '--json']);
      assert.equal(flag.code, 0, flag.stdout + flag.stderr);
    } finally {
      await execa('nft', ['delete', 'table', 'ip', table], { reject: false });
    }
    assert.equal((await t.sh('hb2', 'cat /root/two')).stdout, 'two');
  });

  it('-u, --private-key, -b, --become-user and -K as ansible-playbook reads them; the inventory wins over -u', async () => {
    await using d = await tempDir();
    const pub = (await readFile(`${t.lab.keyPath}.pub`, 'utf8')).trim();
    const setup = [
      'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy',
      "echo 'deploy:k-flag-sudo-pw' | chpasswd",
      "echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy",
      'install -d -m 700 -o deploy -g deploy /home/deploy/.ssh',
      'echo "$PUB" > /home/deploy/.ssh/authorized_keys && chown deploy:deploy /home/deploy/.ssh/authorized_keys',
      'id svc >/dev/null 2>&1 || useradd -m -s /bin/bash svc',
      'install -d -m 755 /srv/k-root && install -d -m 755 -o svc /srv/k-svc',
    ].join(' && ');
    assert.equal((await t.sh('hb1', `PUB='${pub}'; ${setup}`)).code, 0);
    const { address } = t.lab.targets[0]!;
    // No user and no key in the inventory: they come from the flags.
    const inv = join(d.path, 'hosts.yml');
    await writeFile(inv, `all:\n  hosts:\n    hb1:\n      ansible_host: ${address}\n      hostctl_known_hosts_file: ${t.lab.knownHostsPath}\n`);
    const flags = ['-u', 'deploy', '--private-key', t.lab.keyPath, '-b', '-K', '--plain'];

    const asRoot = await onTerminal(['run', playbook, '-i', inv, '-e', 'habits_dir=/srv/k-root', ...flags], /BECOME password: /, 'k-flag-sudo-pw');
    assert.ok(asRoot.answered, asRoot.out);
    assert.equal(asRoot.code, 0, asRoot.out);
    assert.ok(!asRoot.out.includes('k-flag-sudo-pw'), 'the password is not echoed or printed');
    assert.equal((await t.sh('hb1', 'cat /srv/k-root/who; stat -c %U /srv/k-root/one')).stdout, 'root\nroot');

    const asSvc = await onTerminal(['run', playbook, '-i', inv, '-e', 'habits_dir=/srv/k-svc', ...flags, '--become-user', 'svc'], /BECOME password: /, 'k-flag-sudo-pw');
    assert.equal(asSvc.code, 0, asSvc.out);
    assert.equal((await t.sh('hb1', 'cat /srv/k-svc/who; stat -c %U /srv/k-svc/one')).stdout, 'svc\nsvc');

    // ansible_user in the inventory beats -u, as in Ansible: the login is root, not the
    // user named by the flag (who could not log in).
    const lab = await hostctl(['run', playbook, '-i', t.lab.inventoryPath, '--limit', 'hb1', '-e', 'habits_dir=/srv/k-root', '-u', 'nobody', '--json']);
    assert.equal(lab.code, 0, lab.stdout + lab.stderr);
    assert.match(String(events(lab.stdout).find((e) => e.type === 'host-start')?.address), /^ssh root@/);
  });
});
