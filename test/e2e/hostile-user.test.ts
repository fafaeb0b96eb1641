import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Secret } from '../../src/core/secret.js';
import type { Become } from '../../src/transport/transport.js';
import { statuses } from '../helpers/apply.js';
import { labSkip, useLab } from '../helpers/lab.js';
import type { Tasks } from '../../src/engine/tasks.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q one';

// A non-root user on a managed host is not trusted: nothing hostctl writes as root may follow
// a name that user controls, and nothing of a secret (not even its hash) may show in the
// host's process list, nor may the become password reach a command's input.
describe('a hostile non-root user on a lab target', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(7, ['h1']);
  const on = (body: (h: Tasks) => Promise<unknown>, options: { user?: string; become?: Become } = {}) => t.apply('h1', body, options);
  const sh = async (command: string) => {
    const r = await t.sh('h1', command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout;
  };
  const victim = () => sh('stat -c "%U:%G %a" /srv/victim; ls -A /srv/victim');
  // The user admin, and /srv/victim as root made it (each test starts from there).
  const setUpVictim = () =>
    sh('id admin >/dev/null 2>&1 || useradd -m -s /bin/bash admin; rm -rf /srv/victim /home/admin/.ssh /home/admin/real /home/admin/link; install -d -m 755 -o root -g root /srv/victim');

  it('~/.ssh linked to a root directory: authorized keys fail clearly, the directory keeps root:root and its mode', async () => {
    await setUpVictim();
    await sh('ln -s /srv/victim /home/admin/.ssh && chown -h admin:admin /home/admin/.ssh');
    const r = await on((h) => h.authorizedKey({ user: 'admin', keys: [KEY] }));
    assert.deepEqual(statuses(r), ['failed']);
    assert.match(r.ends[0]!.reason, /\/home\/admin\/\.ssh is a symbolic link, not a directory: refusing to write authorized keys through it/);
    assert.equal(await victim(), 'root:root 755');
  });

  it('~/.ssh swapped between a directory and a link while keys are written: the link target is never touched', async () => {
    await setUpVictim();
    // The user flips ~/.ssh between a real directory and a link to /srv/victim as fast as it can.
    const flip = 'cd /home/admin && mkdir real && ln -s /srv/victim link && while :; do mv -T real .ssh; mv -T .ssh real; mv -T link .ssh; mv -T .ssh link; done';
    await sh(`setsid setpriv --reuid=admin --regid=admin --init-groups sh -c '${flip}' </dev/null >/dev/null 2>&1 & echo $! > /root/flip.pid`);
    try {
      for (let i = 0; i < 12; i++) await on((h) => h.authorizedKey({ user: 'admin', keys: [KEY] }));
    } finally {
      await sh('kill -- -$(cat /root/flip.pid) 2>/dev/null || kill $(cat /root/flip.pid); rm -f /root/flip.pid');
    }
    assert.equal(await victim(), 'root:root 755');
  });

  it('a directory a non-root user owns: a file task as root refuses and writes nothing; authorized keys are written as the user', async () => {
    await setUpVictim();
    await sh('rm -rf /srv/app && mkdir -p /srv/app && chown admin:admin /srv/app');
    const file = await on((h) => h.file({ path: '/srv/app/config', content: 'x\n', owner: 'root' }));
    assert.deepEqual(statuses(file), ['failed']);
    assert.match(file.ends[0]!.reason, /refusing to write under \/srv\/app: \/srv\/app is owned by admin \(mode 755\), not by root/);
    const dir = await on((h) => h.directory({ path: '/srv/app/sub' }));
    assert.match(dir.ends[0]!.reason, /\/srv\/app is owned by admin/);
    assert.equal(await sh('ls -A /srv/app'), '');
    // A root-owned ~/.ssh left by another tool is handed over, then everything is done as admin.
    await sh('install -d -m 0755 -o root -g root /home/admin/.ssh');
    const keys = await on((h) => h.authorizedKey({ user: 'admin', keys: [KEY] }));
    assert.deepEqual(statuses(keys), ['changed'], keys.ends[0]!.reason);
    assert.equal(await sh('stat -c "%U:%G %a" /home/admin/.ssh /home/admin/.ssh/authorized_keys; cat /home/admin/.ssh/authorized_keys'), `admin:admin 700\nadmin:admin 600\n${KEY}`);
    assert.deepEqual(statuses(await on((h) => h.authorizedKey({ user: 'admin', keys: [KEY] }))), ['ok']);
  });

  it('mode 4755 with an owner ends 4755 and the next run is ok', async () => {
    const suid = (h: Tasks) => h.file({ path: '/usr/local/bin/hostctl-suid', content: '#!/bin/sh\n', mode: '4755', owner: 'root', group: 'root' });
    await sh('rm -f /usr/local/bin/hostctl-suid');
    assert.deepEqual(statuses(await on(suid)), ['changed']);
    assert.equal(await sh('stat -c %a /usr/local/bin/hostctl-suid'), '4755');
    assert.deepEqual(statuses(await on(suid)), ['ok']);
  });

  it('no sha256 of an uploaded secret is in any execve of the target, the exec command included', async () => {
    await sh('command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null');
    const secret = new Secret('short-pw', 'test');
    const sha = createHash('sha256').update(secret.reveal()).digest('hex');
    // Every execve under sshd (the session's shell with the command, and all it runs).
    await sh('rm -f /root/trace.log; setsid strace -f -qq -e trace=execve -s 100000 -o /root/trace.log -p "$(systemctl show -p MainPID --value ssh)" </dev/null >/dev/null 2>&1 & echo $! > /root/strace.pid; sleep 1');
    let r;
    try {
      r = await on((h) => h.file({ path: '/root/pw', content: secret, mode: '0600' }));
    } finally {
      await sh('sleep 0.5; kill $(cat /root/strace.pid); sleep 0.5');
    }
    assert.deepEqual(statuses(r), ['changed']);
    assert.equal(await sh('cat /root/pw'), 'short-pw');
    const trace = await sh('cat /root/trace.log');
    // The trace did see the upload (so it could have seen the hash)...
    assert.match(trace, /execve\("[^"]*\/mktemp", \["mktemp", "[^"]*\.hostctl\.XXXXXX"\]/);
    // ...and no argument of any program held the hash.
    assert.ok(!trace.includes(sha), 'the sha256 of the secret is in an execve');
  });

  it('become with a password and a global sudo ticket: the command gets exactly its stdin, never the password', async () => {
    const password = 'become-pw-7f3a';
    await sh(
      [
        'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy',
        `echo 'deploy:${password}' | chpasswd`,
        "echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy",
        "echo 'Defaults timestamp_type=global' > /etc/sudoers.d/00-global",
        'install -d -m 700 -o deploy -g deploy /home/deploy/.ssh && install -m 600 -o deploy -g deploy /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys',
        'rm -f /root/got-1 /root/got-2',
      ].join(' && '),
    );
    const become: Become = { user: 'root', password: { reveal: () => password } };
    // Twice: the first run creates the ticket, the second starts with it already cached.
    for (const round of ['first', 'second']) {
      const r = await on(
        async (h) => {
          await h.command({ cmd: 'cat > /root/got-1', stdin: 'line one\n' });
          await h.command({ cmd: 'cat > /root/got-2', stdin: 'line two\n' });
        },
        { user: 'deploy', become },
      );
      assert.deepEqual(statuses(r), ['changed', 'changed'], `${round}: ${r.error ?? r.ends.map((e) => e.reason).join('; ')}`);
      assert.equal(await sh('cat /root/got-1; echo /; cat /root/got-2'), 'line one\n/\nline two', round);
    }
  });

  it('a --diff of a 0600 file masks an old secret hostctl does not know', async () => {
    await sh("printf 'user = app\\ntoken = rotated-away-token-3f9a\\n' > /root/app.conf && chmod 600 /root/app.conf");
    const r = await on((h) => h.file({ path: '/root/app.conf', content: 'user = app\ntoken = new-value\n', mode: '0600' }));
    assert.match(r.ends[0]!.diff!, /-token = \*{8}\n\+token = \*{8}/);
    assert.ok(!r.ends[0]!.diff!.includes('rotated-away-token-3f9a'));
  });
});
