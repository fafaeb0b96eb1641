import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { statuses } from '../helpers/apply.js';
import { labSkip, useLab } from '../helpers/lab.js';
import type { Tasks } from '../../src/engine/tasks.js';
import type { EventOf } from '../../src/core/events.js';
import { postgresMajorGuard } from '../../roles/authentik/postgres-major.js';

// Names and values that would reach a command's own option parser or a path on the host
// are refused before the task reads or changes anything; check mode never pulls or runs an
// image. On a real Debian 13 target.
describe('hostile names and check mode on a lab target', { skip: labSkip, timeout: 600_000 }, () => {
  const t = useLab(8, ['h1']);
  const on = (body: (h: Tasks) => Promise<unknown>, options: { check?: boolean } = {}) => t.apply('h1', body, options);
  const sh = async (command: string) => {
    const r = await t.sh('h1', command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const roundTrips = (a: Awaited<ReturnType<typeof on>>) => a.events.find((e): e is EventOf<'host-end'> => e.type === 'host-end')!.roundTrips;

  it('apt: a package that is an apt-get option is refused before the host is touched; nothing runs', async () => {
    await sh('apt-get remove -y -q hello >/dev/null 2>&1; rm -f /tmp/pwned');
    const r = await on((h) => h.apt({ packages: ['-oDPkg::Pre-Invoke::=touch /tmp/pwned', 'hello'] }));
    assert.deepEqual(statuses(r), ['failed']);
    assert.match(r.ends[0]!.reason, /^apt: "-oDPkg::Pre-Invoke::=touch \/tmp\/pwned" is not a Debian package name .*; nothing was run on the host/);
    assert.equal(roundTrips(r), 0);
    assert.equal(await sh('ls /tmp/pwned 2>&1 || true'), "ls: cannot access '/tmp/pwned': No such file or directory");
    assert.notEqual((await t.sh('h1', 'dpkg -s hello')).code, 0);
  });

  it('unit, service, quadlet: a name that is a path or an option is refused; nothing is written', async () => {
    const content = '* * * * * root touch /tmp/pwned\n';
    // /etc/systemd/system/../../cron.d/hostctl-pwned is /etc/cron.d/hostctl-pwned.
    const unit = await on((h) => h.unit({ name: '../../cron.d/hostctl-pwned', content }));
    assert.deepEqual(statuses(unit), ['failed']);
    assert.match(unit.ends[0]!.reason, /^unit: "\.\.\/\.\.\/cron\.d\/hostctl-pwned" is not a systemd unit name/);
    const quadlet = await on((h) => h.quadlet({ units: { '../../cron.d/hostctl-pwned.container': content } }));
    assert.match(quadlet.ends[0]!.reason, /^quadlet: "\.\.\/\.\.\/cron\.d\/hostctl-pwned\.container" is not a Quadlet unit name/);
    const service = await on((h) => h.service({ name: '--global', state: 'started' }));
    assert.match(service.ends[0]!.reason, /^service: "--global" is not a systemd unit name/);
    for (const r of [unit, quadlet, service]) assert.equal(roundTrips(r), 0);
    assert.equal(await sh('ls /etc/cron.d /etc/containers/systemd 2>/dev/null | grep -c pwned || true'), '0');
  });

  it('user and group: a name that is an option is refused; no account is made', async () => {
    const accounts = await sh('getent passwd | wc -l; getent group | wc -l');
    const user = await on((h) => h.user({ name: '-ohostctl', groups: ['sudo'] }));
    assert.match(user.ends[0]!.reason, /^user: "-ohostctl" is not a user name useradd accepts/);
    const groups = await on((h) => h.user({ name: 'hostctl-ok', groups: ['sudo', '-x'] }));
    assert.match(groups.ends[0]!.reason, /^user: "-x" is not a group name groupadd accepts/);
    const group = await on((h) => h.group({ name: '--system' }));
    assert.match(group.ends[0]!.reason, /^group: "--system" is not a group name groupadd accepts/);
    for (const r of [user, groups, group]) assert.equal(roundTrips(r), 0);
    assert.equal(await sh('getent passwd | wc -l; getent group | wc -l'), accounts);
  });

  it('valid names still work with -- before every operand: apt, unit, service, user, group, sysctl', async () => {
    const unit = '[Unit]\nDescription=t\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n';
    const first = await on(async (h) => {
      await h.apt({ packages: ['hello'] });
      await h.unit({ name: 'hostctl-n1.service', content: unit });
      await h.service({ name: 'hostctl-n1.service', state: 'started', enabled: true });
      await h.service({ name: 'hostctl-n1.service', state: 'restarted' });
      await h.group({ name: 'hostctl-g1', gid: 4321 });
      await h.user({ name: 'hostctl-u1', groups: ['hostctl-g1'], shell: '/bin/sh' });
      await h.sysctl({ name: 'net.ipv4.ip_forward', value: 1 });
    });
    // apt, unit, the daemon-reload the unit made due, start+enable, restart, group, user, sysctl.
    assert.deepEqual(statuses(first), ['changed', 'changed', 'changed', 'changed', 'changed', 'changed', 'changed', 'changed'], first.error);
    assert.equal(await sh('dpkg-query -W -f=\'${Status}\' hello; echo; systemctl is-active hostctl-n1; systemctl is-enabled hostctl-n1; id -Gn hostctl-u1; getent group hostctl-g1 | cut -d: -f3; sysctl -n net.ipv4.ip_forward'),
      'install ok installed\nactive\nenabled\nhostctl-u1 hostctl-g1\n4321\n1');
    const changes = await on(async (h) => {
      await h.user({ name: 'hostctl-u1', shell: '/bin/bash' });
      await h.group({ name: 'hostctl-g1', gid: 4322 });
      await h.service({ name: 'hostctl-n1.service', state: 'stopped', enabled: false });
      await h.user({ name: 'hostctl-u1', state: 'absent', removeHome: true });
      await h.group({ name: 'hostctl-g1', state: 'absent' });
      await h.apt({ packages: ['hello'], state: 'absent' });
    });
    assert.deepEqual(statuses(changes), ['changed', 'changed', 'changed', 'changed', 'changed', 'changed'], changes.error);
    assert.equal((await t.sh('h1', 'getent passwd hostctl-u1 || getent group hostctl-g1 || dpkg -s hello >/dev/null 2>&1')).code, 1);
  });

  describe('the Postgres major of an image whose tag names none', () => {
    // Every podman call on the host, logged, then handed to the real podman.
    before(async () => {
      await sh(`DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends podman >/dev/null
cat > /usr/local/bin/podman <<'EOF'
#!/bin/sh
printf '%s\\n' "$*" >> /var/log/hostctl-podman.log
exec /usr/bin/podman "$@"
EOF
chmod 0755 /usr/local/bin/podman; mkdir -p /srv/pgtest/database; echo 15 > /srv/pgtest/database/PG_VERSION; : > /var/log/hostctl-podman.log`);
    });

    it('check mode neither pulls nor runs the image: it says the major cannot be told without pulling', async () => {
      const image = 'registry.invalid/postgres:latest';
      // The role sees hostctl's compiled types, the test its sources: the same object.
      const r = await on((h) => postgresMajorGuard(h as unknown as Parameters<typeof postgresMajorGuard>[0], '/srv/pgtest', image), { check: true });
      assert.equal(r.code, 0, r.error);
      const notes = r.events.find((e): e is EventOf<'host-end'> => e.type === 'host-end')!.notes;
      assert.deepEqual(notes, [
        `check mode: image ${image} names no Postgres major version in its tag and is not on h1: which Postgres it is cannot be told without pulling it, ` +
          'which --check does not do; the real run pulls it and checks it against the data directory first',
      ]);
      // The only podman call: asking whether the image is there.
      assert.equal(await sh('cat /var/log/hostctl-podman.log'), `image exists ${image}`);
      assert.equal(await sh('/usr/bin/podman images -q | wc -l'), '0');
    });
  });
});
