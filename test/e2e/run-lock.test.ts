import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { events, fixture, hostctl, repo } from '../helpers/cli.js';
import { labSkip, useLab } from '../helpers/lab.js';
import type { EventOf, RunEvent } from '../../src/core/events.js';

const playbook = fixture('lock', 'playbook.ts');
type Recap = { hosts: Record<string, { changed: number; unreachable: boolean }> };
const recap = (stdout: string) => events(stdout).find((e) => e.type === 'recap') as unknown as Recap;
const waits = (stdout: string) => (events(stdout) as unknown as RunEvent[]).filter((e): e is EventOf<'waiting'> => e.type === 'waiting');
const hostEnd = (stdout: string) => (events(stdout) as unknown as RunEvent[]).find((e): e is EventOf<'host-end'> => e.type === 'host-end')!;

// A hostctl run in a child process whose pid the test knows (to name it, and to kill it).
function start(args: string[]) {
  const child = execa('node', ['bin/hostctl.js', 'run', playbook, ...args, '--json'], { reject: false, cwd: repo, env: { NO_COLOR: '1' } });
  return { pid: child.pid!, child, done: child.then((r) => ({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) })) };
}

describe('one run per host at a time', { skip: labSkip, timeout: 900_000 }, () => {
  const t = useLab(10, ['l1']);
  const inv = () => ['-i', t.lab.inventoryPath];

  it('two runs started together: one waits for the other, saying whose run it is, then finds nothing to do', async () => {
    const a = start(inv());
    const b = start(inv());
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.code, 0, ra.stderr + ra.stdout.slice(-2000));
    assert.equal(rb.code, 0, rb.stderr + rb.stdout.slice(-2000));
    const [first, second, firstPid] = waits(ra.stdout).length > 0 ? [rb, ra, b.pid] : [ra, rb, a.pid];
    assert.equal(waits(first.stdout).length, 0);
    const [w] = waits(second.stdout);
    assert.equal(w?.what, 'run-lock');
    assert.match(w!.message, new RegExp(`^waiting for the run started by root@\\S+ at \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\(pid ${firstPid}\\)`));
    assert.equal(recap(first.stdout).hosts.l1!.changed, 2);
    // Its read came after the lock: the first run's work is seen, nothing is done twice.
    assert.equal(recap(second.stdout).hosts.l1!.changed, 0);
    // The lock and who held it last, root-only.
    assert.equal((await t.sh('l1', 'stat -c %a /var/lib/hostctl; stat -c %a /var/lib/hostctl/lock')).stdout.trim(), '700\n600');
    // A converged host is still one round trip: the lock carries the first read.
    assert.equal(hostEnd(second.stdout).roundTrips, 1);
  });

  it('a short --lock-timeout gives up with exit 4 naming the holder; kill -9 of the holder frees the lock at once', async () => {
    const holder = start([...inv(), '-e', '{"lock_content": "two", "lock_sleep": 60}']);
    // The holder is in its slow step once the fixture file has its content.
    for (let i = 0; i < 100 && (await t.sh('l1', 'cat /root/lock-fixture')).stdout !== 'two'; i++) await new Promise((r) => setTimeout(r, 200));
    const late = await hostctl(['run', playbook, ...inv(), '--lock-timeout', '2', '--json']);
    assert.equal(late.code, 4, late.stderr + late.stdout);
    const end = hostEnd(late.stdout);
    assert.equal(end.unreachable, true);
    assert.match(end.error ?? '', new RegExp(`is locked by the run started by root@\\S+ at \\S+ \\(pid ${holder.pid}\\): gave up after --lock-timeout 2s; nothing was done on this host`));
    assert.equal((await t.sh('l1', 'cat /root/lock-fixture')).stdout, 'two');

    holder.child.kill('SIGKILL');
    await holder.done;
    const next = await hostctl(['run', playbook, ...inv(), '-e', '{"lock_content": "three", "lock_sleep": 0}', '--lock-timeout', '0', '--json']);
    assert.equal(next.code, 0, next.stderr + next.stdout.slice(-2000));
    assert.equal(waits(next.stdout).length, 0);
    assert.equal((await t.sh('l1', 'cat /root/lock-fixture')).stdout, 'three');
  });

  it('apt waiting for the dpkg lock says so and names the holder', async () => {
    await t.sh('l1', 'apt-get remove -y -q hello >/dev/null 2>&1; true');
    // An fcntl lock on lock-frontend, as apt and unattended-upgrades take it, by a process
    // whose command name is unattended-upgr (the kernel keeps 15 characters).
    const lock = `use Fcntl; open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die; my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLKW, $l) or die "lock: $!"; sleep 15;\n`;
    const held = await t.sh('l1', 'cat > /root/holder.pl && cp /usr/bin/perl /root/unattended-upgrade && { setsid /root/unattended-upgrade /root/holder.pl >/dev/null 2>&1 </dev/null & } ; sleep 1; cat /proc/locks', { input: lock });
    assert.match(held.stdout, /POSIX/, held.stderr);
    const started = Date.now();
    const r = await t.apply('l1', (h) => h.apt({ packages: ['hello'] }));
    assert.equal(r.code, 0, r.error);
    // apt waited for the holder (about 14 s more) and a line said for whom while it did.
    assert.ok(Date.now() - started > 8000);
    const w = r.events.filter((e): e is EventOf<'waiting'> => e.type === 'waiting' && e.what === 'dpkg-lock');
    assert.equal(w.length, 1, JSON.stringify(r.events));
    assert.equal(w[0]!.what, 'dpkg-lock');
    assert.equal(w[0]!.task, 'apt present: hello');
    assert.match(w[0]!.message, /^waiting for the dpkg lock: \/var\/lib\/dpkg\/lock-frontend is held by process \d+ \(unattended-upgr\)( of \S+\.service)? since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  });

  it('a wait for a lock names the unit holding it and since when (the backup before an upgrade stops authentik)', async () => {
    // As the nightly backup holds its directory's lock (authentik-backup's flock).
    const held = await t.sh('l1', 'mkdir -p /srv/backup && systemd-run --quiet --unit=authentik-backup --service-type=exec flock /srv/backup/.lock sleep 8 && sleep 1');
    assert.equal(held.code, 0, held.stderr);
    const started = Date.now();
    const r = await t.apply('l1', (h) => h.wait({ what: 'the running backup to finish', lock: '/srv/backup/.lock', retries: 10, delaySeconds: 2 }));
    assert.equal(r.code, 0, r.error);
    assert.ok(Date.now() - started > 4000);
    assert.equal(r.ends[0]!.reason, '/srv/backup/.lock is free');
    const w = r.events.filter((e): e is EventOf<'waiting'> => e.type === 'waiting');
    assert.equal(w.length, 1, JSON.stringify(r.events));
    assert.equal(w[0]!.what, 'lock');
    assert.match(w[0]!.message, /^waiting for the running backup to finish: \/srv\/backup\/\.lock is held by process \d+ \(flock\) of authentik-backup\.service since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  });
});
