import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statuses } from '../helpers/apply.js';
import { labSkip, useLab } from '../helpers/lab.js';
import type { Tasks } from '../../src/engine/tasks.js';

// The resources that need a real Debian with systemd: apt, units and services, users,
// groups, authorized keys, sysctl. Each: changed, then ok, check mode, diff, bad input.
describe('resources on a lab target', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(2, ['r1']);
  const on = (body: (h: Tasks) => Promise<unknown>, options: { check?: boolean } = {}) => t.apply('r1', body, options);

  it('apt: installs many packages in one transaction, then ok; check changes nothing; absent removes', async () => {
    await t.sh('r1', 'apt-get remove -y -q hello cowsay >/dev/null 2>&1; rm -f /var/lib/apt/periodic/update-success-stamp');
    const checked = await on((h) => h.apt({ packages: ['hello', 'cowsay'] }), { check: true });
    assert.deepEqual(statuses(checked), ['changed']);
    assert.equal(checked.ends[0]!.reason, 'would install hello cowsay');
    assert.notEqual((await t.sh('r1', 'dpkg -s hello')).code, 0);
    const installed = await on((h) => h.apt({ packages: ['hello', 'cowsay'] }));
    assert.deepEqual(statuses(installed), ['changed']);
    assert.equal(installed.ends[0]!.diff, '+ hello\n+ cowsay');
    // One apt-get install for both (and one update, since the lists were stale).
    const log = (await t.sh('r1', 'grep -c "^Commandline: apt-get .* install -- hello cowsay$" /var/log/apt/history.log')).stdout.trim();
    assert.equal(log, '1');
    assert.deepEqual(statuses(await on((h) => h.apt({ packages: ['hello', 'cowsay'] }))), ['ok']);
    assert.deepEqual(statuses(await on((h) => h.apt({ packages: ['hello'], state: 'latest' }))), ['ok']);
    assert.deepEqual(statuses(await on((h) => h.apt({ packages: ['cowsay'], state: 'absent' }))), ['changed']);
    assert.deepEqual(statuses(await on((h) => h.apt({ packages: ['cowsay'], state: 'absent' }))), ['ok']);
    const bad = await on((h) => h.apt({ packages: ['no-such-package-hostctl'] }));
    assert.deepEqual(statuses(bad), ['failed']);
    assert.match(bad.ends[0]!.reason, /Unable to locate package no-such-package-hostctl/);
  });

  it('unit and service: daemon-reload once, start, enable; then ok; restart only when asked', async () => {
    const unit = '[Unit]\nDescription=t\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n';
    const first = await on(async (h) => {
      await h.unit({ name: 'hostctl-t1.service', content: unit });
      await h.unit({ name: 'hostctl-t2.service', content: unit });
      await h.service({ name: 'hostctl-t1.service', state: 'started', enabled: true });
      await h.service({ name: 'hostctl-t2.service', state: 'started' });
    });
    // The daemon-reload is its own task, run once before the first service task (planning a
    // service never acts).
    assert.deepEqual(statuses(first), ['changed', 'changed', 'changed', 'changed', 'changed']);
    assert.equal(first.ends[2]!.task, 'systemd daemon-reload');
    assert.equal(first.ends[3]!.reason, 'enable, start');
    assert.equal((await t.sh('r1', 'systemctl is-active hostctl-t1 hostctl-t2; systemctl is-enabled hostctl-t1')).stdout, 'active\nactive\nenabled');
    const again = await on(async (h) => {
      await h.unit({ name: 'hostctl-t1.service', content: unit });
      await h.service({ name: 'hostctl-t1.service', state: 'started', enabled: true });
    });
    assert.deepEqual(statuses(again), ['ok', 'ok']);
    const checkStop = await on((h) => h.service({ name: 'hostctl-t1.service', state: 'stopped' }), { check: true });
    assert.equal(checkStop.ends[0]!.reason, 'would stop');
    assert.equal((await t.sh('r1', 'systemctl is-active hostctl-t1')).stdout, 'active');
    assert.deepEqual(statuses(await on((h) => h.service({ name: 'hostctl-t1.service', state: 'restarted' }))), ['changed']);
    const missing = await on((h) => h.service({ name: 'no-such-unit.service', state: 'started' }));
    assert.match(missing.ends[0]!.reason, /unit no-such-unit.service not found/);
  });

  it('service: a failed start quotes the journal of that run only, not of earlier runs', async () => {
    const unit = '[Service]\nType=oneshot\nExecStart=/bin/sh -c \'echo "run-$(cat /etc/hostctl-t3-mode)"; [ "$(cat /etc/hostctl-t3-mode)" = good ]\'\n';
    await t.sh('r1', 'echo good > /etc/hostctl-t3-mode');
    const good = await on(async (h) => {
      await h.unit({ name: 'hostctl-t3.service', content: unit });
      await h.service({ name: 'hostctl-t3.service', state: 'restarted' });
    });
    assert.deepEqual(statuses(good), ['changed', 'changed', 'changed']); // unit, daemon-reload, restart
    await t.sh('r1', 'echo bad > /etc/hostctl-t3-mode');
    const bad = await on((h) => h.service({ name: 'hostctl-t3.service', state: 'restarted' }));
    assert.deepEqual(statuses(bad), ['failed']);
    assert.match(bad.ends[0]!.reason, /--- journal ---\n(.*\n)*run-bad/);
    assert.doesNotMatch(bad.ends[0]!.reason, /run-good/);
  });

  it('service: a masked unit is unmasked; a generated unit cannot be enabled and says to use [Install]', async () => {
    // Only a unit outside /etc can be masked (the mask is a symlink in /etc).
    await t.sh('r1', 'printf "[Service]\\nExecStart=/bin/sleep infinity\\n" > /usr/lib/systemd/system/hostctl-vendor.service && systemctl daemon-reload && systemctl mask hostctl-vendor.service');
    const unmasked = await on((h) => h.service({ name: 'hostctl-vendor.service', state: 'started', masked: false }));
    assert.deepEqual(statuses(unmasked), ['changed'], unmasked.ends[0]!.reason);
    assert.equal(unmasked.ends[0]!.reason, 'unmask, start');
    await t.sh('r1', 'mkdir -p /etc/systemd/system-generators && printf "#!/bin/sh\\nprintf \\"[Service]\\\\nExecStart=/bin/sleep infinity\\\\n\\" > \\"\\$1/hostctl-gen.service\\"\\n" > /etc/systemd/system-generators/hostctl-gen && chmod +x /etc/systemd/system-generators/hostctl-gen && systemctl daemon-reload');
    const generated = await on((h) => h.service({ name: 'hostctl-gen.service', enabled: true }));
    assert.deepEqual(statuses(generated), ['failed']);
    assert.match(generated.ends[0]!.reason, /generated unit .*cannot enable it/);
  });

  it('user, group, authorized keys: create, then ok; modify groups; exclusive keys', async () => {
    const key1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q one';
    const key2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8ZbTgPzU7OujiBSEW8sJQ2h4H3v7FmbzlqzCEkmxDf two';
    const body = (keys: string[], groups: string[]) => async (h: Tasks) => {
      await h.group({ name: 'ops' });
      await h.user({ name: 'alice', groups });
      await h.authorizedKey({ user: 'alice', keys, exclusive: true });
    };
    assert.deepEqual(statuses(await on(body([key1], ['ops']))), ['changed', 'changed', 'changed']);
    assert.equal((await t.sh('r1', 'id -Gn alice; stat -c "%a %U" /home/alice/.ssh /home/alice/.ssh/authorized_keys')).stdout, 'alice ops\n700 alice\n600 alice');
    assert.deepEqual(statuses(await on(body([key1], ['ops']))), ['ok', 'ok', 'ok']);
    const swap = await on(body([key2], ['ops', 'adm']));
    assert.deepEqual(statuses(swap), ['ok', 'changed', 'changed']);
    assert.match(swap.ends[1]!.reason, /groups \+adm/);
    assert.match(swap.ends[2]!.diff!, /-ssh-ed25519 .* one\n\+ssh-ed25519 .* two/);
    assert.equal((await t.sh('r1', 'cat /home/alice/.ssh/authorized_keys')).stdout, key2);
    const noUser = await on((h) => h.authorizedKey({ user: 'nobody-here', keys: [key1] }));
    assert.match(noUser.ends[0]!.reason, /user nobody-here does not exist/);
  });

  it('sysctl: persists in a file and sets the live value; then ok', async () => {
    await t.sh('r1', 'sysctl -q -w net.ipv4.conf.all.accept_redirects=1; rm -f /etc/sysctl.d/90-hostctl.conf');
    const set = await on((h) => h.sysctl({ name: 'net.ipv4.conf.all.accept_redirects', value: 0 }));
    assert.deepEqual(statuses(set), ['changed']);
    assert.match(set.ends[0]!.reason, /write \/etc\/sysctl.d\/90-hostctl.conf, set live value \(was 1\)/);
    assert.equal((await t.sh('r1', 'sysctl -n net.ipv4.conf.all.accept_redirects; cat /etc/sysctl.d/90-hostctl.conf')).stdout, '0\nnet.ipv4.conf.all.accept_redirects = 0');
    assert.deepEqual(statuses(await on((h) => h.sysctl({ name: 'net.ipv4.conf.all.accept_redirects', value: 0 }))), ['ok']);
  });
});
