import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, basename } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { connectionFromVars, expandUserPath, HONOURED, NO_EFFECT, REFUSED } from '../../src/inventory/connection-vars.js';
import type { Sourced } from '../../src/inventory/model.js';
import { parseSshArgs, shellSplit } from '../../src/transport/ssh/config.js';
import { fixture, hostctl, tempDir } from '../helpers/cli.js';
import { startSshd, type Sshd } from '../ssh/sshd.js';

const vars = (entries: Record<string, unknown>, source = 'inventory/host_vars/box/vars.yml') =>
  new Map<string, Sourced>(Object.entries(entries).map(([k, value]) => [k, { value, source }]));
const playbook = fixture('habits', 'playbook.ts');

describe('Ansible connection variables', () => {
  it('every variable ansible-core documents for the ssh connection and become is honoured, without effect, or refused', async () => {
    // Read from the installed ansible-core's own plugin documentation.
    const script = `
import re, yaml, json, ansible, os
base = os.path.join(os.path.dirname(ansible.__file__), 'plugins')
names = set()
for f in ['connection/ssh.py', 'become/sudo.py', 'become/su.py']:
    src = open(os.path.join(base, f)).read()
    doc = re.search(r'DOCUMENTATION\\s*=\\s*r?("""|\\'\\'\\')(.*?)\\1', src, re.S).group(2)
    for opt in yaml.safe_load(doc)['options'].values():
        names.update(v['name'] for v in opt.get('vars', []) if v['name'].startswith('ansible_'))
print(json.dumps(sorted(names)))`;
    const documented = JSON.parse((await execa('/usr/bin/python3', ['-c', script])).stdout) as string[];
    assert.ok(documented.length > 40, `read ${documented.length} names`);
    const known = new Set<string>([...HONOURED, ...NO_EFFECT, ...Object.keys(REFUSED)]);
    // The play-level ones the become plugins rely on.
    for (const name of [...documented, 'ansible_become', 'ansible_become_method', 'ansible_connection']) assert.ok(known.has(name), name);
  });

  it('~ and $HOME in paths are expanded as Ansible does, relative ones taken from the working directory', () => {
    const c = connectionFromVars('box', vars({ ansible_ssh_private_key_file: '~/.ssh/id_ed25519', hostctl_known_hosts_file: '$HOME/kh' }));
    assert.deepEqual(c.privateKeyFiles, [join(homedir(), '.ssh/id_ed25519')]);
    assert.equal(c.knownHostsFile, join(homedir(), 'kh'));
    assert.equal(expandUserPath('${HOME}/a', { HOME: '/h' }, '/x'), '/h/a');
    assert.equal(expandUserPath('$UNSET_THING/a', {}, '/x'), join(process.cwd(), '$UNSET_THING/a'));
    assert.equal(expandUserPath('~', {}, '/x'), '/x');
    assert.equal(expandUserPath('keys/k', {}, '/x'), join(process.cwd(), 'keys/k'));
  });

  it('ansible_ssh_user/_host/_port and ansible_become_pass/ansible_sudo_pass are honoured; the last alias set wins, as in ansible-core', () => {
    const c = connectionFromVars('box', vars({ ansible_user: 'a', ansible_ssh_user: 'b', ansible_ssh_host: '10.0.0.9', ansible_ssh_port: '2202', ansible_become: 'yes', ansible_become_pass: 'pw1', ansible_sudo_user: 'svc' }));
    assert.equal(c.user, 'b');
    assert.equal(c.address, '10.0.0.9');
    assert.equal(c.port, 2202);
    assert.equal(c.become?.user, 'svc');
    assert.equal(c.become?.password?.reveal(), 'pw1');
    assert.equal(connectionFromVars('box', vars({ ansible_become: true, ansible_become_password: 'x', ansible_sudo_pass: 'y' })).become?.password?.reveal(), 'y');
  });

  it('ansible_ssh_common_args / _extra_args: ProxyJump, Port, User, IdentityFile, host key settings, ServerAliveInterval', () => {
    const c = connectionFromVars(
      'box',
      vars({
        ansible_ssh_common_args: `-o ProxyJump=jump@bastion:2222 -o 'Port 2200' -oUser=deploy -i ~/k1 -o StrictHostKeyChecking=yes`,
        ansible_ssh_extra_args: '-o ServerAliveInterval=5 -o UserKnownHostsFile=~/kh -J other -p 1',
      }),
    );
    assert.equal(c.proxyJump, 'jump@bastion:2222');
    assert.equal(c.port, 2200);
    assert.equal(c.user, 'deploy');
    assert.deepEqual(c.privateKeyFiles, [join(homedir(), 'k1')]);
    assert.equal(c.acceptNewHostKeys, false);
    assert.equal(c.knownHostsFile, join(homedir(), 'kh'));
    assert.equal(c.keepaliveMs, 5000);
    // Ansible puts ansible_port and ansible_user before the args on ssh's command line: they win.
    const both = connectionFromVars('box', vars({ ansible_port: 22, ansible_user: 'root', ansible_ssh_common_args: '-p 2200 -l deploy' }));
    assert.equal(both.port, 22);
    assert.equal(both.user, 'root');
    // The command line's flags sit below the inventory.
    const flags = vars({ ansible_user: 'from-flag', ansible_ssh_timeout: 7 }, '-u/--user');
    assert.equal(connectionFromVars('box', vars({ ansible_user: 'inv' }), flags).user, 'inv');
    assert.equal(connectionFromVars('box', vars({}), flags).connectTimeoutMs, 7000);
  });

  it('StrictHostKeyChecking=no (or host key checking off) is taken as accept-new, and the recap says so', () => {
    for (const v of [{ ansible_ssh_common_args: '-o StrictHostKeyChecking=no' }, { ansible_host_key_checking: false }]) {
      const c = connectionFromVars('box', vars(v));
      assert.equal(c.acceptNewHostKeys, true);
      assert.match(c.notes.join('\n'), /taken as accept-new: a new host key is recorded, a changed one is refused/);
    }
    assert.equal(connectionFromVars('box', vars({ ansible_ssh_common_args: '-o StrictHostKeyChecking=accept-new' })).notes.length, 0);
  });

  it('ssh arguments are split like a shell; the first value of an option wins; -o takes Key=Value or "Key Value"', () => {
    assert.deepEqual(shellSplit(`-o "ProxyJump=a b" -o'Port'=2 x\\ y ""`, 'w'), ['-o', 'ProxyJump=a b', '-oPort=2', 'x y', '']);
    assert.throws(() => shellSplit(`-o 'x`, 'f.yml: ansible_ssh_common_args'), /f\.yml: ansible_ssh_common_args: unclosed ' quote/);
    const a = parseSshArgs([{ text: '-oPort=1 -o Port=2 -C -o ControlMaster=auto -o ControlPersist=60s', where: 'w' }]);
    assert.equal(a.port, 1);
  });

  for (const [args, pattern, hint] of [
    ['-o ProxyCommand="ssh -W %h:%p bastion"', /ansible_ssh_common_args: -o ProxyCommand is not supported/, /ProxyJump/],
    ['-o UserKnownHostsFile=/dev/null', /would make hostctl trust whatever key a host presents on every run/, /refuses a changed one/],
    ['-o ForwardAgent=yes', /-o ForwardAgent is not supported by hostctl/, /supported: ProxyJump/],
    ['-A', /ssh argument "-A" is not supported/, /-o Key=Value/],
    ['-o ProxyJump=a:notaport', /bad port/, undefined],
  ] as const) {
    it(`refused by name: ${args}`, () => {
      assert.throws(
        () => connectionFromVars('box', vars({ ansible_ssh_common_args: args }, 'inv/group_vars/all.yml')),
        (e: Error & { where?: string; hint?: string }) => {
          assert.match(`${e.where ?? ''} ${e.message}`, /inv\/group_vars\/all\.yml: ansible_ssh_common_args/);
          assert.match(e.message, pattern);
          if (hint) assert.match(e.hint ?? '', hint);
          return true;
        },
      );
    });
  }
});

// Before issue 14 these were read past without a word: the run went on (here on the local
// connection, so it succeeded); now the run stops before touching anything (exit 5) naming the file.
describe('refused variables stop the run before any host, naming the file', () => {
  for (const [yaml, pattern, hint] of [
    ['ansible_become: yes\nansible_become_method: su', /ansible_become_method su is not supported by hostctl: su reads its password/, /ansible_become_method: sudo/],
    ['ansible_password: hunter2', /ansible_password is not supported by hostctl: hostctl logs in with keys only/, /ssh-copy-id/],
    ['ansible_ssh_common_args: -o ProxyCommand="nc bastion 22"', /ProxyCommand is not supported/, /ProxyJump/],
    ['ansible_become: yes\nansible_become_flags: -i', /ansible_become_flags "-i" is not supported/, /-H -S -n/],
  ] as const) {
    it(yaml.split('\n').at(-1)!, async () => {
      await using d = await tempDir();
      await mkdir(join(d.path, 'group_vars'));
      await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    here:\n      ansible_connection: local\n      habits_dir: ${d.path}\n`);
      await writeFile(join(d.path, 'group_vars', 'all.yml'), `${yaml}\n`);
      const r = await hostctl(['run', playbook, '-i', join(d.path, 'hosts.yml'), '--plain']);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      // Named as the user's shell would: relative to the working directory (the test's temp
      // folder and the file under it, wherever the repository is).
      assert.match(r.stderr, new RegExp(`\\b${basename(d.path)}/group_vars/all\\.yml: ansible_`));
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, hint);
      assert.deepEqual(await readdir(d.path), ['group_vars', 'hosts.yml'], 'nothing ran');
    });
  }
});

describe('over a real sshd: paths with ~, ssh_* aliases and ansible-playbook flags', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.stop();
  });

  // A HOME of its own (no agent, no ~/.ssh/config of the machine) holding the key and known_hosts.
  async function home(d: string) {
    await mkdir(join(d, 'home', '.ssh'), { recursive: true });
    await copyFile(sshd.clientKey, join(d, 'home', '.ssh', 'id_ed25519'));
    await writeFile(join(d, 'home', 'kh'), `${sshd.knownHostsLine()}\n`);
    await mkdir(join(d, 'out'));
    return { HOME: join(d, 'home'), SSH_AUTH_SOCK: '' };
  }

  it('ansible_ssh_private_key_file: ~/.ssh/id_ed25519 and hostctl_known_hosts_file: ~/kh', async () => {
    await using d = await tempDir();
    const env = await home(d.path);
    await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    box:\n      ansible_host: 127.0.0.1\n      ansible_port: ${sshd.port}\n      ansible_user: root\n      ansible_ssh_private_key_file: ~/.ssh/id_ed25519\n      hostctl_known_hosts_file: ~/kh\n      habits_dir: ${d.path}/out\n`);
    const r = await hostctl(['run', playbook, '-i', join(d.path, 'hosts.yml'), '--plain'], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await readFile(join(d.path, 'out', 'two'), 'utf8'), 'two\n');
  });

  it('ansible_ssh_host, ansible_ssh_port, ansible_ssh_user are honoured', async () => {
    await using d = await tempDir();
    const env = await home(d.path);
    await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    box:\n      ansible_ssh_host: 127.0.0.1\n      ansible_ssh_port: ${sshd.port}\n      ansible_ssh_user: root\n      ansible_private_key_file: ${env.HOME}/.ssh/id_ed25519\n      hostctl_known_hosts_file: ${env.HOME}/kh\n      habits_dir: ${d.path}/out\n`);
    const r = await hostctl(['run', playbook, '-i', join(d.path, 'hosts.yml'), '--plain', '-T', '5'], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('-u and --private-key, or --ssh-common-args "-p PORT -l USER -i KEY", when the inventory gives only the address', async () => {
    await using d = await tempDir();
    const env = await home(d.path);
    await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    box:\n      ansible_host: 127.0.0.1\n      hostctl_known_hosts_file: ~/kh\n      habits_dir: ${d.path}/out\n`);
    const inv = ['-i', join(d.path, 'hosts.yml'), '--plain'];
    const flags = await hostctl(['run', playbook, ...inv, '-u', 'root', '--private-key', '~/.ssh/id_ed25519', `--ssh-common-args=-o Port=${sshd.port}`], { env });
    assert.equal(flags.code, 0, flags.stdout + flags.stderr);
    const args = await hostctl(['run', playbook, ...inv, `--ssh-common-args=-p ${sshd.port} -l root -i ~/.ssh/id_ed25519`], { env });
    assert.equal(args.code, 0, args.stdout + args.stderr);
  });

  it('--list-hosts, --list-tasks and --syntax-check touch no host', async () => {
    await using d = await tempDir();
    const env = await home(d.path);
    await writeFile(join(d.path, 'hosts.yml'), `all:\n  hosts:\n    box:\n      ansible_host: 127.0.0.1\n      ansible_port: ${sshd.port}\n      ansible_user: root\n      ansible_ssh_private_key_file: ~/.ssh/id_ed25519\n      hostctl_known_hosts_file: ~/kh\n      habits_dir: ${d.path}/out\n    other:\n      ansible_host: 127.0.0.1\n      habits_dir: /x\n`);
    const inv = ['-i', join(d.path, 'hosts.yml')];
    const before = sshd.connections();
    const hosts = await hostctl(['run', playbook, ...inv, '--list-hosts', '-l', 'box'], { env });
    assert.equal(hosts.code, 0, hosts.stderr);
    assert.equal(hosts.stdout, `playbook: test/fixtures/habits/playbook.ts\n  hosts (1):\n    box`); // execa strips the final newline
    const tasks = await hostctl(['run', playbook, ...inv, '--list-tasks', '-l', 'box'], { env });
    assert.equal(tasks.code, 0, tasks.stderr);
    assert.equal(
      tasks.stdout,
      [
        'playbook: test/fixtures/habits/playbook.ts',
        '  host box:',
        '    role steps:',
        '      first step',
        '      second step',
        '      who runs',
        '    role probing:',
        '      before the probe',
        '      ... and the tasks that depend on what the host answers (not known before the run)',
      ].join('\n'),
    );
    const syntax = await hostctl(['run', playbook, ...inv, '--syntax-check'], { env });
    assert.equal(syntax.code, 0, syntax.stderr);
    assert.match(syntax.stdout, /of 2 host\(s\) are valid; no host was contacted/);
    const bad = await hostctl(['run', playbook, ...inv, '--syntax-check', '-e', '{"habits_dir": 1}'], { env });
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /habits_dir \(host box, role steps\): Invalid input: expected string/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sshd.connections(), before, 'sshd saw no connection');
    assert.deepEqual(await readdir(join(d.path, 'out')), []);
  });
});

describe('--start-at-task', () => {
  const local = async (dir: string) => {
    await mkdir(join(dir, 'out'));
    await writeFile(join(dir, 'hosts.yml'), `all:\n  hosts:\n    here:\n      ansible_connection: local\n      habits_dir: ${dir}/out\n`);
    return ['-i', join(dir, 'hosts.yml'), '--plain'];
  };

  it('skips what comes before the first task with that name, and says so; the later tasks and roles run', async () => {
    await using d = await tempDir();
    const r = await hostctl(['run', playbook, ...(await local(d.path)), '--start-at-task', 'who runs']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /--start-at-task: skipped 2 task\(s\) before "who runs"/);
    assert.deepEqual((await readdir(join(d.path, 'out'))).sort(), ['four', 'three', 'who']);
  });

  it('a name no task has: refused before any host when the tasks can all be listed, else the host fails having done nothing', async () => {
    await using d = await tempDir();
    const inv = await local(d.path);
    const listed = await hostctl(['run', fixture('habits', 'steps.ts'), ...inv, '--start-at-task', 'who run']);
    assert.equal(listed.code, 5, listed.stdout + listed.stderr);
    assert.match(listed.stderr, /--start-at-task "who run": no task has that title/);
    const unlisted = await hostctl(['run', playbook, ...inv, '--start-at-task', 'who run']);
    assert.equal(unlisted.code, 2, unlisted.stdout + unlisted.stderr);
    assert.match(unlisted.stdout, /no task "who run" came on this host: all 5 task\(s\) were skipped, nothing was done/);
    assert.deepEqual(await readdir(join(d.path, 'out')), []);
  });
});
