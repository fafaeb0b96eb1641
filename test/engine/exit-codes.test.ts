import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
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
      [['-e', '{bad'], /^hostctl: -e \{bad \(--extra-vars\) is not valid JSON\/YAML: Flow map must end with a \} at line 1, column 5(\n|$)/],
      [['-e', `@${join(root.path, 'missing.yml')}`], /^hostctl: -e @\S+\/missing\.yml \(--extra-vars\): cannot read \S+\/missing\.yml: ENOENT(\n|$)/],
      [['-e', `@${bad}`], /^hostctl: -e @\S+\/bad\.yml \(--extra-vars\) is not valid JSON\/YAML: .* at line 2, column 1(\n|$)/],
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
    await writeFile(inv, `all:\n  hosts:\n    here:\n      ansible_connection: local\n    gone:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n`);
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
    assert.deepEqual((await readdir(root.path)).sort(), ['before']);
    assert.equal((await readFile(join(root.path, 'before'), 'utf8')).length, 100_000);
  });
});
