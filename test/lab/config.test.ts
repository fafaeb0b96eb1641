import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { bootScript, inventoryYaml, knownHostsText, relayConfig, resolveConfig } from '../../src/lab/index.js';
import { macFor, maxTargets } from '../../src/lab/options.js';
import { perTarget, planLimits, type HostUsage } from '../../src/lab/limits.js';
import { relayVerdict } from '../../src/lab/relay-server.js';
import { isHostctlError } from '../../src/core/errors.js';

// Pure parts of the lab: no root, no network, runs anywhere.
describe('lab config', () => {
  it('defaults to one target lab1 at .2 behind a bridge at .1', () => {
    const c = resolveConfig({ stateDir: '/tmp/x' });
    assert.equal(c.bridge, 'hlbr0');
    assert.equal(c.bridgeAddress, '10.200.0.1');
    assert.equal(c.prefix, 24);
    assert.deepEqual(c.targets.map((t) => [t.name, t.address]), [['lab1', '10.200.0.2']]);
    assert.equal(c.targets[0]!.netns, 'hlbr0.lab1');
    assert.equal(c.stateDir, '/tmp/x');
  });

  it('names targets, numbers addresses and keeps interface names short', () => {
    const c = resolveConfig({ names: ['web', 'db'], subnet: '10.201.0.0/24', bridge: 'a-very-long-br0' });
    assert.deepEqual(c.targets.map((t) => t.address), ['10.201.0.2', '10.201.0.3']);
    for (const t of c.targets) assert.ok(t.hostVeth.length <= 15, t.hostVeth);
    assert.notEqual(c.targets[0]!.hostVeth, c.targets[1]!.hostVeth);
  });

  it('gives a fixed MAC per address', () => {
    assert.equal(macFor('10.200.0.2'), '02:68:0a:c8:00:02');
    assert.equal(macFor('10.200.0.2'), macFor('10.200.0.2'));
  });

  it('keeps recorded addresses when a lab grows', () => {
    const one = resolveConfig({ names: ['b'], stateDir: '/tmp/x' });
    const grown = resolveConfig({ names: ['a', 'b'], stateDir: '/tmp/x' }, one);
    assert.deepEqual(grown.targets.map((t) => [t.name, t.address]), [['b', '10.200.0.2'], ['a', '10.200.0.3']]);
  });

  it('refuses bad input with a hint', () => {
    for (const bad of [
      { subnet: '10.200.0.1/24' },
      { subnet: 'nope' },
      { count: 0 },
      { count: maxTargets + 1 },
      { count: 2, names: ['a'] },
      { names: ['Bad_Name'] },
      { bridge: 'much-too-long-bridge' },
      { subnet: '10.0.0.0/30', count: 2 },
    ]) {
      assert.throws(() => resolveConfig(bad), (e: unknown) => isHostctlError(e, 'input') && !!e.hint, JSON.stringify(bad));
    }
    const recorded = resolveConfig({});
    assert.throws(() => resolveConfig({ subnet: '10.9.0.0/24' }, recorded), /uses bridge/);
  });
});

describe('lab host limits', () => {
  // This kind of machine: 2 cores, 24 GiB, Debian's defaults.
  const host: HostUsage = {
    limits: {
      'fs.inotify.max_user_instances': 128,
      'fs.inotify.max_user_watches': 192_536,
      'fs.file-max': 2_466_177,
      'kernel.pid_max': 32_768,
      'kernel.threads-max': 192_730,
    },
    inotifyInstances: 20,
    inotifyWatches: 100,
    files: 1000,
    tasks: 200,
    memAvailableMiB: 23_000,
    nofile: { soft: 20_000, hard: 20_000 },
  };
  const step = (usage: HostUsage, n: number, limit: string) => planLimits(usage, n).find((s) => s.limit === limit)!;

  it('needs nothing for a few targets', () => {
    assert.deepEqual(planLimits(host, 2).filter((s) => s.action !== 'ok'), []);
  });

  it('raises inotify instances for 60 targets to a power of two, with the command that does it', () => {
    const s = step(host, 60, 'fs.inotify.max_user_instances');
    assert.deepEqual(s, {
      limit: 'fs.inotify.max_user_instances', inUse: 20, have: 128, need: 20 + 60 * perTarget.inotifyInstances,
      action: 'raise', to: 1024, fix: 'sysctl -w fs.inotify.max_user_instances=1024',
    });
    assert.deepEqual(planLimits(host, 60).filter((x) => x.action !== 'ok').map((x) => x.limit), ['fs.inotify.max_user_instances']);
  });

  it('raises the soft open-files limit of the lab process up to its hard limit, and refuses beyond', () => {
    const low = { ...host, nofile: { soft: 1024, hard: 4096 } };
    assert.equal(step(low, 100, 'nofile').action, 'raise');
    assert.equal(step(low, 100, 'nofile').to, 1024 + 100 * 16);
    const r = step(low, 500, 'nofile');
    assert.equal(r.action, 'refuse');
    assert.match(r.fix!, /ulimit -n 9024/);
  });

  it('refuses what cannot be raised: memory, and pid_max past the kernel ceiling', () => {
    const m = step({ ...host, memAvailableMiB: 1000 }, 60, 'memory');
    assert.equal(m.action, 'refuse');
    assert.equal(m.need, 60 * perTarget.memoryMiB);
    assert.match(m.fix!, /fewer targets/);
    const p = step({ ...host, tasks: 4_190_000 }, 60, 'kernel.pid_max');
    assert.equal(p.action, 'refuse');
    assert.match(p.fix!, /cannot exceed 4194304/);
  });
});

describe('lab files', () => {
  const c = resolveConfig({ count: 2, stateDir: '/srv/lab' });

  it('writes an Ansible YAML inventory', () => {
    const inv = parse(inventoryYaml(c));
    assert.deepEqual(inv.all.hosts.lab2, {
      ansible_host: '10.200.0.3',
      ansible_user: 'root',
      ansible_ssh_private_key_file: '/srv/lab/id_ed25519',
      hostctl_known_hosts_file: '/srv/lab/known_hosts',
    });
    assert.deepEqual(inv.all.children.lab.hosts, { lab1: {}, lab2: {} });
  });

  it('pins each host key under its address and its name', () => {
    const text = knownHostsText([{ name: 'lab1', address: '10.200.0.2', key: 'ssh-ed25519 AAAAkey' }]);
    assert.equal(text, '10.200.0.2 ssh-ed25519 AAAAkey\nlab1 ssh-ed25519 AAAAkey\n');
  });

  it('boots with the flags LAB-NOTES measured, in its own cgroup, looping on 133', () => {
    const s = bootScript(c, c.targets[0]!);
    for (const want of [
      'SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1', 'SYSTEMD_NSPAWN_API_VFS_WRITABLE=network', '--network-namespace-path=/run/netns/hlbr0.lab1',
      '--capability=CAP_NET_ADMIN', "'--system-call-filter=@keyring bpf'", '--register=no', '--keep-unit', '--resolv-conf=off',
      '--timezone=off', '--link-journal=no', '--console=read-only', '-eq 133', 'hostctl-lab-hlbr0/lab1',
      '--bind=/srv/lab/targets/lab1/containers:/var/lib/containers',
    ]) {
      assert.ok(s.includes(want), `boot script lacks ${want}`);
    }
  });

  it('keeps apt-cacher-ng off the bridge and on the Debian mirror', () => {
    const conf = relayConfig(c);
    assert.match(conf, /^BindAddress: 127\.200\.0\.1$/m);
    assert.match(conf, /^ForceManaged: 1$/m);
    assert.match(conf, /^CacheDir: \/var\/cache\/hostctl-lab\/apt-cacher-ng\/hlbr0$/m);
  });
});

describe('relay filter', () => {
  it('lets Debian archive GETs through', () => {
    assert.deepEqual(relayVerdict('GET', 'http://deb.debian.org/debian/dists/trixie/InRelease'), {
      ok: true,
      url: 'http://deb.debian.org/debian/dists/trixie/InRelease',
    });
    assert.equal(relayVerdict('HEAD', 'http://security.debian.org/debian-security/pool/x.deb').ok, true);
  });

  it('refuses everything else', () => {
    for (const [method, url] of [
      ['GET', 'http://registry.npmjs.org/'],
      ['GET', 'http://deb.debian.org/debian/../etc/passwd'],
      ['GET', 'http://deb.debian.org:8080/debian/x'],
      ['GET', 'http://user@deb.debian.org/debian/x'],
      ['GET', 'https://deb.debian.org/debian/x'],
      ['GET', '/debian/dists/trixie/Release'],
      ['POST', 'http://deb.debian.org/debian/x'],
      ['CONNECT', 'deb.debian.org:443'],
    ] as const) {
      assert.equal(relayVerdict(method, url).ok, false, `${method} ${url}`);
    }
  });
});
