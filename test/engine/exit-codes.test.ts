import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { events, fixture, hostctl, repo, tempDir } from '../helpers/cli.js';

const playbook = fixture('probe', 'playbook.ts');
const inventory = fixture('probe', 'inventory');
const probe = (root: string, action: string, ...extra: string[]) =>
  hostctl(['run', playbook, '-i', inventory, '-e', `root=${root} probe_action=${action}`, ...extra]);

describe('exit codes', () => {
  it('0 when every task succeeds', async () => {
    await using root = await tempDir();
    const r = await probe(root.path, 'ok');
    assert.equal(r.code, 0, r.stderr);
  });

  it('a reader that goes away (| head) does not stop the run halfway', async () => {
    await using root = await tempDir();
    const cli = `node ${join(repo, 'bin', 'hostctl.js')} run ${playbook} -i ${inventory} -e 'root=${root.path} probe_action=ok' --json`;
    // head exits after the first event: every later write meets a closed pipe.
    const r = await execa('bash', ['-c', `${cli} | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`]);
    assert.equal(r.stdout.trim(), '0', r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(await readFile(join(root.path, 'after'), 'utf8'), 'done\n');
  });

  it('2 when a task fails; later tasks do not run; the failure names the task and stderr', async () => {
    await using root = await tempDir();
    const r = await probe(root.path, 'fail', '--plain');
    assert.equal(r.code, 2);
    assert.match(r.stdout, /here \| probe \| fails \| failed .*exited 3: boom/);
    assert.match(r.stdout, /failed=1/);
    await assert.rejects(readFile(join(root.path, 'after')));
    // Notified before the failure, but handlers run after a failure only with --force-handlers.
    await assert.rejects(readFile(join(root.path, 'handler-ran')));
  });

  it('--force-handlers runs handlers notified before the failure', async () => {
    await using root = await tempDir();
    const r = await probe(root.path, 'fail-then-handler', '--force-handlers');
    assert.equal(r.code, 2);
    assert.equal(await readFile(join(root.path, 'handler-ran'), 'utf8'), 'ran\n');
  });

  it('ignoreErrors reports the failure and goes on', async () => {
    await using root = await tempDir();
    const r = await probe(root.path, 'ignore', '--json');
    assert.equal(r.code, 2);
    assert.equal(await readFile(join(root.path, 'after'), 'utf8'), 'done\n');
  });

  it('5 for bad options, a bad inventory, a bad playbook or bad variables, and nothing is touched', async () => {
    await using root = await tempDir();
    assert.equal((await hostctl(['run', playbook, '--no-such-flag'])).code, 5);
    assert.equal((await hostctl(['run', playbook, '-i', join(root.path, 'missing')])).code, 5);
    assert.equal((await hostctl(['run', join(root.path, 'missing.ts'), '-i', inventory])).code, 5);
    const bad = await probe(root.path, 'explode');
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /extra vars \(-e\): probe_action \(host here, role probe\): .*got "explode"/);
    assert.deepEqual(await readdir(root.path), []);
  });

  it('5 naming -e/--extra-vars or --limit for a malformed value, before anything is touched', async () => {
    await using root = await tempDir();
    const bad = join(root.path, 'bad.yml');
    await writeFile(bad, 'a: [1\n');
    const cases: [string[], RegExp][] = [
      [['-e', '{bad'], /^hostctl: -e \{bad:1: invalid YAML: Flow map must end with a \} at line 1, column 5/],
      [['-e', `@${join(root.path, 'missing.yml')}`], /^hostctl: -e @\S+\/missing\.yml \(--extra-vars\): cannot read \S+\/missing\.yml: ENOENT(\n|$)/],
      [['-e', `@${bad}`], /^hostctl: -e @\S+\/bad\.yml:2: invalid YAML: .* at line 2, column 1/],
      [['-e', 'loose'], /^hostctl: -e "loose" is not key=value\n/],
      [['-e', 'a="unclosed'], /^hostctl: -e a="unclosed: an unbalanced quote or Jinja block\n/],
      [['-e', '[1, 2]'], /^hostctl: -e \[1, 2\]: expected a mapping at the top level(\n|$)/],
      [['-e', 'x="\\UFFFFFFFF"'], /^hostctl: -e: the escape \\UFFFFFFFF is beyond the last Unicode code point\n/],
      [['--limit', '~('], /^hostctl: --limit: "~\(" is not a regular expression: Invalid regular expression: \/\(\/: Unterminated group(\n|$)/],
    ];
    for (const [args, message] of cases) {
      const r = await hostctl(['run', playbook, '-i', inventory, '-e', `root=${root.path} probe_action=ok`, ...args]);
      assert.equal(r.code, 5, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.deepEqual(await readdir(root.path), ['bad.yml']);
  });

  it('5 naming the template and the expression for a value with a line break in a unit file, before any host is touched', async () => {
    // The authentik role's backup unit renders authentik_backup_dir into ExecStart=: a line
    // break would add a directive of the value's choosing. The host is unreachable: only a
    // refusal before connecting exits 5 (a connection attempt exits 4).
    const r = await hostctl(['run', join(repo, 'playbooks', 'authentik.ts'), '-i', join(repo, 'inventory'), '--vault-password-file', join(repo, 'lab', 'vault-password'),
      '-e', 'ansible_host=127.0.0.1 ansible_port=1', '-e', '{"authentik_backup_dir": "/srv/b\\nExecStartPre=/bin/touch /tmp/pwned"}']);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stderr, /template \S+\/roles\/authentik\/templates\/authentik-backup\.service\.hbs: \{\{authentik_backup_dir\}\} \(line 4\) is a value with a line break, CR or NUL: it would add lines to the file/);
    assert.match(r.stderr, /hint: nothing was changed on any host/);
  });

  it('5 naming the variable for a package or sysctl name from the inventory that is not one, before any host is touched', async () => {
    const run = (extra: string) =>
      hostctl(['run', join(repo, 'playbooks', 'authentik.ts'), '-i', join(repo, 'inventory'), '--vault-password-file', join(repo, 'lab', 'vault-password'),
        '-e', 'ansible_host=127.0.0.1 ansible_port=1', '-e', extra]);
    const pkg = await run('{"common_packages": ["curl", "-oDPkg::Pre-Invoke::=touch /tmp/pwned"]}');
    assert.equal(pkg.code, 5, pkg.stdout + pkg.stderr);
    assert.match(pkg.stderr, /common_packages\[1\] \(host authentik, role common\): expected a Debian package name/);
    const key = await run('{"common_sysctls": {"net.ipv4.ip_forward\\nkernel.x": 1}}');
    assert.equal(key.code, 5, key.stdout + key.stderr);
    assert.match(key.stderr, /common_sysctls\."net\.ipv4\.ip_forward\\nkernel\.x".*the key is not a sysctl key/);
  });

  it('1 for anything else (a bug in a role)', async () => {
    await using root = await tempDir();
    const r = await probe(root.path, 'throw');
    assert.equal(r.code, 1);
    // Where: the line in the playbook's file, through the bundle's source map.
    assert.match(r.stderr, /a bug in the role \(at test\/fixtures\/probe\/playbook\.ts:12:\d+\)/);
    assert.deepEqual(await readdir(root.path), []);
  });

  it('4 when a host is unreachable, while the reachable host in the same run succeeds', async () => {
    await using root = await tempDir();
    const inv = join(root.path, 'hosts.yml');
    await writeFile(inv, `all:\n  hosts:\n    here:\n      ansible_connection: local\n      hostctl_state_dir: ${root.path}/.hostctl\n    gone:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n`);
    const r = await hostctl(['run', playbook, '-i', inv, '-e', `root=${root.path}`, '--json']);
    assert.equal(r.code, 4, r.stderr);
    const recap = events(r.stdout).find((e) => e.type === 'recap') as { hosts: Record<string, { unreachable: boolean; failed: number; changed: number }> };
    assert.equal(recap.hosts.gone!.unreachable, true);
    assert.equal(recap.hosts.here!.unreachable, false);
    assert.equal(recap.hosts.here!.changed, 3);
    assert.equal(await readFile(join(root.path, 'after'), 'utf8'), 'done\n');
  });

  it('130 on Ctrl-C: stops the running command, leaves no temp or half-written file', async () => {
    await using root = await tempDir();
    const child = execa('node', [join(repo, 'bin/hostctl.js'), 'run', playbook, '-i', inventory, '-e', `root=${root.path} probe_action=sleep`, '--json'], {
      reject: false,
      cwd: repo,
    });
    let seen = '';
    let sent = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (!sent && seen.includes('"task":"sleeps"')) sent = child.kill('SIGINT');
    });
    const started = Date.now();
    const r = await child;
    assert.equal(r.exitCode, 130);
    assert.ok(Date.now() - started < 20_000, 'the sleep was interrupted');
    // .hostctl: the run journal (hostctl_state_dir in the fixture), which keeps the handler the
    // interrupted run owes.
    assert.deepEqual((await readdir(root.path)).sort(), ['.hostctl', 'before']);
    const [entry, ...more] = await readdir(join(root.path, '.hostctl', 'journal'));
    assert.deepEqual(more, []);
    assert.match(await readFile(join(root.path, '.hostctl', 'journal', entry!), 'utf8'), /"kind":"handler","name":"note handler"/);
    assert.equal((await readFile(join(root.path, 'before'), 'utf8')).length, 100_000);
  });
});

const typedPlaybook = fixture('extra-vars', 'playbook.ts');
const typedInventory = fixture('extra-vars', 'inventory');
const PASSWORD_FILE = join(repo, 'lab', 'vault-password');
const typed = (root: string, ...args: string[]) =>
  hostctl(['run', typedPlaybook, '-i', typedInventory, '--vault-password-file', PASSWORD_FILE, '-e', `root=${root}`, ...args]);
const seen = async (root: string) => JSON.parse(await readFile(join(root, 'seen.json'), 'utf8')) as Record<string, unknown>;

describe('-e extra vars as an Ansible user types them', () => {
  it('key=value: text becomes the number or boolean the role expects; quoted values keep their blanks', async () => {
    await using root = await tempDir();
    const r = await typed(root.path, '-e', 'retries=14 enabled=yes version=2026.2 note="two  words" mode=0.5');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await seen(root.path), { root: root.path, retries: 14, enabled: true, mode: 0.5, version: '2026.2', note: 'two  words' });
    const off = await typed(root.path, '-e', 'enabled=False note="say \\"hi\\""', '-e', 'retries=3');
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(await seen(root.path), { root: root.path, retries: 3, enabled: false, mode: 0, version: '', note: 'say "hi"' });
  });

  it('key=value that is no number where one is expected: 5, naming the variable and the flag', async () => {
    await using root = await tempDir();
    const r = await typed(root.path, '-e', 'retries=many');
    assert.equal(r.code, 5);
    assert.match(r.stderr, /extra vars \(-e\): retries \(host here, role typed\): .*expected number, received string, got "many"/);
    assert.deepEqual(await readdir(root.path), []);
  });

  it('@file and inline YAML are read as inventory files: yes/no, 0644 octal, !vault decrypted, duplicate keys refused', async () => {
    await using root = await tempDir();
    const token = await execa('ansible-vault', ['encrypt_string', '--vault-password-file', PASSWORD_FILE, 'tok-en-value-42', '--name', 'token']);
    const file = join(root.path, 'vars.yml');
    await writeFile(file, `enabled: yes\nmode: 0644\n${token.stdout}\n`);
    const r = await typed(root.path, '-e', `@${file}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await seen(root.path), { root: root.path, retries: 15, enabled: true, mode: 420, version: '', note: '', token: 'tok-en-value-42' });

    const inline = await typed(root.path, '-e', '{enabled: on, mode: 0755}');
    assert.equal(inline.code, 0, inline.stderr);
    assert.deepEqual(await seen(root.path), { root: root.path, retries: 15, enabled: true, mode: 493, version: '', note: '' });

    await writeFile(file, 'mode: 1\nmode: 2\n');
    const dup = await typed(root.path, '-e', `@${file}`);
    assert.equal(dup.code, 5);
    assert.match(dup.stderr, /^hostctl: -e @\S+\/vars\.yml:2: invalid YAML: Map keys must be unique/);

    await writeFile(file, `enabled: yes\n${token.stdout}\n`);
    const locked = await hostctl(['run', typedPlaybook, '-i', typedInventory, '-e', `root=${root.path}`, '-e', `@${file}`]);
    assert.equal(locked.code, 5);
    assert.match(locked.stderr, /-e @\S+\/vars\.yml: token/);
  });
});

// The seed layout of the Ansible job: vault.yml holds only vault_* names, which the authentik
// role's defaults refer to. The host is unreachable, so exit 4 means every variable was accepted.
describe('the authentik role reads the seed\'s vault names', () => {
  const seed = async (dir: string, vars: string, vault: string) => {
    const hostVars = join(dir, 'host_vars', 'authentik');
    await mkdir(hostVars, { recursive: true });
    await writeFile(join(dir, 'hosts.yml'), 'all:\n  children:\n    authentik:\n      hosts:\n        authentik:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n');
    await writeFile(join(hostVars, 'vars.yml'), `authentik_version: "2026.2.1"\nadmin_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPDN59QvlQTM73lgWqdlowwI+VVZgmZuju0X20/eMpCl a@b"]\n${vars}`);
    await writeFile(join(hostVars, 'vault.yml'), vault);
    await execa('ansible-vault', ['encrypt', '--vault-password-file', PASSWORD_FILE, join(hostVars, 'vault.yml')]);
    return hostctl(['run', join(repo, 'playbooks', 'authentik.ts'), '-i', dir, '--vault-password-file', PASSWORD_FILE]);
  };

  it('only vault_* keys in vault.yml, no mapping line: accepted', async () => {
    await using d = await tempDir();
    const r = await seed(d.path, '', 'vault_authentik_pg_pass: pg-pass-1\nvault_authentik_secret_key: secret-key-1\n');
    assert.equal(r.code, 4, r.stderr);
  });

  it('the explicit mapping keeps working, and wins over the default', async () => {
    await using d = await tempDir();
    const r = await seed(d.path, 'authentik_pg_pass: "{{ my_pg }}"\nauthentik_secret_key: "{{ my_key }}"\n', 'my_pg: pg-pass-1\nmy_key: secret-key-1\n');
    assert.equal(r.code, 4, r.stderr);
  });

  it('neither set: 5, naming both names and the file each is expected in', async () => {
    await using d = await tempDir();
    const r = await seed(d.path, '', 'vault_authentik_secret_key: secret-key-1\n');
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      /role authentik defaults: authentik_pg_pass \(host authentik, role authentik\) is not set, nor vault_authentik_pg_pass, which its default "\{\{ vault_authentik_pg_pass \}\}" refers to \(set vault_authentik_pg_pass in \S+\/host_vars\/authentik\/vault\.yml \(encrypted with ansible-vault or hostctl vault\), or authentik_pg_pass in \S+\/host_vars\/authentik\/vars\.yml\)/,
    );
    assert.doesNotMatch(r.stderr, /authentik_secret_key/);
  });
});
