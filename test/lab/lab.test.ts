import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import { labDown, labStatus, labUp, sshArgs, type Lab, type LabConfig, type LabOptions } from '../../src/lab/index.js';
import { labCgroups } from '../../src/lab/cgroup.js';
import { firewallTable } from '../../src/lab/network.js';
import { isAlive, recordOf, waitUntil, type ProcessRecord } from '../../src/lab/process.js';
import { loadConfig } from '../../src/lab/state.js';

// End to end on real Debian 13 targets. Its own subnet, bridge and state dir, so it runs
// beside a developer's lab; `after` tears down even when a test failed.
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const tools = ['systemd-nspawn', 'debootstrap', 'apt-cacher-ng', 'ssh', 'ssh-keygen', 'nft', 'ip', 'zstd', 'curl'].every(
  (t) => existsSync(`/usr/bin/${t}`) || existsSync(`/usr/sbin/${t}`),
);
const skip = !root ? 'needs root' : !tools ? 'needs debootstrap systemd-container apt-cacher-ng openssh-client nftables zstd curl' : false;

const BRIDGE = 'hltest0';
const stateDir = await mkdtemp(join(tmpdir(), 'hostctl-lab-test-'));
// Not inside the state dir: down removes only what up made and keeps a dir holding more.
const scratch = await mkdtemp(join(tmpdir(), 'hostctl-lab-scratch-'));
const options: LabOptions = {
  count: 2,
  subnet: '10.201.0.0/24',
  bridge: BRIDGE,
  stateDir,
  log: (line) => console.log(`# lab: ${line}`),
};

let lab: Lab;
let config: LabConfig;
const records = new Map<string, ProcessRecord>();

async function ssh(name: string, command: string, timeoutMs = 120_000) {
  const t = config.targets.find((x) => x.name === name)!;
  return execa('ssh', sshArgs(config, t, [command]), { reject: false, timeout: timeoutMs });
}

async function systemState(name: string): Promise<{ state: string; failed: string }> {
  let state = '';
  // "starting" right after boot is normal: wait for the end of the boot transaction.
  await waitUntil(async () => {
    state = (await ssh(name, 'systemctl is-system-running')).stdout.trim();
    return state !== 'starting' && state !== 'initializing' && state !== '';
  }, 60_000, 500);
  const failed = (await ssh(name, 'systemctl list-units --failed --plain --no-legend')).stdout.trim();
  return { state, failed };
}

const bootId = async (name: string) => (await ssh(name, 'cat /proc/sys/kernel/random/boot_id')).stdout.trim();

describe('lab', { skip, timeout: 900_000 }, () => {
  before(async () => {
    const started = Date.now();
    lab = await labUp(options);
    console.log(`# lab up (2 targets) took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    config = (await loadConfig(stateDir))!;
    for (const t of lab.targets) records.set(t.name, (await recordOf(t.pid))!);
  });

  after(async () => {
    await labDown(options);
    await rm(scratch, { recursive: true, force: true });
  });

  it('boots two targets to systemd "running"', async () => {
    assert.deepEqual(lab.targets.map((t) => [t.name, t.address]), [['lab1', '10.201.0.2'], ['lab2', '10.201.0.3']]);
    for (const t of lab.targets) {
      const { state, failed } = await systemState(t.name);
      assert.equal(state, 'running', `${t.name} is ${state}; failed units:\n${failed}`);
      assert.equal((await ssh(t.name, 'systemd-detect-virt')).stdout.trim(), 'systemd-nspawn');
      assert.equal((await ssh(t.name, 'hostname')).stdout.trim(), t.name);
    }
  });

  it('writes an inventory and pins host keys that ssh checks strictly', async () => {
    const inv = parse(await readFile(lab.inventoryPath, 'utf8'));
    assert.equal(inv.all.hosts.lab1.ansible_host, '10.201.0.2');
    assert.equal(inv.all.hosts.lab2.ansible_ssh_private_key_file, lab.keyPath);
    assert.equal(inv.all.hosts.lab2.hostctl_known_hosts_file, lab.knownHostsPath);
    assert.deepEqual(Object.keys(inv.all.children.lab.hosts), ['lab1', 'lab2']);

    const known = await readFile(lab.knownHostsPath, 'utf8');
    assert.match(known, /^10\.201\.0\.2 ssh-ed25519 AAAA\S+$/m);
    assert.match(known, /^lab2 ssh-ed25519 AAAA\S+$/m);
    const r = await ssh('lab1', 'echo ok');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'ok');

    // The same login against a known_hosts with another key must be refused.
    const wrong = join(scratch, 'wrong_known_hosts');
    const lab2Key = known.split('\n').find((l) => l.startsWith('10.201.0.3 '))!.split(' ').slice(1).join(' ');
    await writeFile(wrong, `10.201.0.2 ${lab2Key}\n`);
    const refused = await execa('ssh', [
      '-i', lab.keyPath, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${wrong}`, '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', 'root@10.201.0.2', 'true',
    ], { reject: false });
    assert.equal(refused.exitCode, 255);
    assert.match(refused.stderr, /host key/i);
  });

  it('installs a package through the relay', async () => {
    const r = await ssh('lab1', 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello && hello', 300_000);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /Hello, world!/);
  });

  it('reaches nothing but the Debian mirror through the relay', async () => {
    const relay = lab.relayUrl;
    const code = async (args: string) => (await ssh('lab2', `curl -s -m 5 -o /dev/null -w '%{http_code}' ${args}; echo " $?"`)).stdout.trim();
    assert.equal(await code(`-x ${relay} http://deb.debian.org/debian/dists/trixie/Release`), '200 0');
    // A host the relay could reach (the npm registry) is refused by the relay itself.
    assert.equal(await code(`-x ${relay} http://registry.npmjs.org/`), '403 0');
    assert.equal(await code(`-x ${relay} http://deb.debian.org/debian/../../etc/passwd`), '403 0');
    assert.notEqual((await code(`-x ${relay} https://deb.debian.org/debian/`)).split(' ')[1], '0', 'CONNECT tunnel allowed');
    // A service of the host on the bridge address, answering the host itself, is closed to targets.
    const server = createServer((s) => s.end('hello\n'));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const url = `telnet://${lab.bridgeAddress}:${port}`;
      const fromHost = await execa('curl', ['-s', '-m', '5', '-o', '/dev/null', url], { reject: false, timeout: 10_000, input: '' });
      assert.notEqual(fromHost.exitCode, 7, 'sanity: the host reaches its own listener');
      const fromTarget = await ssh('lab2', `curl -s -m 5 telnet://${lab.bridgeAddress}:${port} </dev/null; echo " $?"`);
      assert.match(fromTarget.stdout.trim(), /(^|\s)(7|28)$/, `target reached a host port: ${fromTarget.stdout}`);
    } finally {
      server.close();
    }
    // No route out: the host refuses to forward anything from the bridge but to the bridge.
    // (Checked on the ruleset, not by sending: test traffic stays inside this machine.)
    const rules = (await execa('nft', ['list', 'table', 'inet', firewallTable(BRIDGE)])).stdout;
    assert.match(rules, new RegExp(`iifname "${BRIDGE}" reject`));
    assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '0', 'the host routes: nft is then the only guard');
  });

  it('is idempotent: up again keeps the running targets', async () => {
    const again = await labUp(options);
    assert.deepEqual(again.targets.map((t) => t.pid), lab.targets.map((t) => t.pid));
  });

  it('comes back from a reboot inside the target with a new boot id', async () => {
    const before = await bootId('lab2');
    assert.match(before, /^[0-9a-f-]{36}$/);
    const r = await ssh('lab2', 'systemctl reboot');
    assert.ok(r.exitCode === 0 || r.exitCode === 255, `reboot: ${r.exitCode} ${r.stderr}`);
    let after = before;
    const back = await waitUntil(async () => {
      after = await bootId('lab2').catch(() => '');
      return after !== '' && after !== before;
    }, 90_000, 500);
    assert.ok(back, 'lab2 did not come back within 90 s');
    assert.ok(await isAlive(records.get('lab2')), 'the boot wrapper should have survived the reboot');
    assert.equal((await systemState('lab2')).state, 'running');
  });

  it('reports a healthy lab', async () => {
    const s = await labStatus(options);
    assert.equal(s.healthy, true, JSON.stringify(s, null, 2));
    assert.deepEqual(s.targets.map((t) => t.systemState), ['running', 'running']);
  });

  it('down leaves no namespace, bridge, process, cgroup, rule or state behind', async () => {
    await labDown(options);
    const netns = existsSync('/run/netns') ? (await readdir('/run/netns')).filter((n) => n.startsWith(`${BRIDGE}.`)) : [];
    assert.deepEqual(netns, []);
    assert.notEqual((await execa('ip', ['link', 'show', 'dev', BRIDGE], { reject: false })).exitCode, 0, 'bridge still there');
    for (const v of config.targets) {
      assert.notEqual((await execa('ip', ['link', 'show', 'dev', v.hostVeth], { reject: false })).exitCode, 0, `${v.hostVeth} still there`);
    }
    for (const [name, rec] of records) assert.equal(await isAlive(rec), false, `${name} still running`);
    const ps = await execa('ps', ['-eo', 'stat=,args='], { reject: false });
    const stray = ps.stdout.split('\n').filter((l) => l.includes(stateDir) && !l.trim().startsWith('Z'));
    assert.deepEqual(stray, []);
    for (const cg of labCgroups(BRIDGE)) assert.equal(existsSync(cg), false, `${cg} still there`);
    assert.notEqual((await execa('nft', ['list', 'table', 'inet', firewallTable(BRIDGE)], { reject: false })).exitCode, 0);
    assert.doesNotMatch(await readFile('/proc/self/mountinfo', 'utf8'), new RegExp(stateDir));
    assert.equal(existsSync(stateDir), false);
    // And again, with nothing up.
    await labDown(options);
  });
});
