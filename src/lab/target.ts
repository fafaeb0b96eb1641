import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostctlError } from '../core/errors.js';
import { quote } from '../transport/quote.js';
import { cgroupPids, removeCgroupTree, targetCgroups } from './cgroup.js';
import { exec } from './exec.js';
import type { LabConfig, TargetConfig } from './options.js';
import { isAlive, pidsInGroup, recordOf, signal, waitUntil, type ProcessRecord } from './process.js';
import { relayUrl } from './relay.js';
import { loadPid, removeFile, savePid, targetPaths } from './state.js';

// Mount points as the kernel sees them (octal escapes decoded), to know what is mounted
// before mounting again or deleting anything below it.
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

// The target's / : the shared rootfs as overlayfs lower dir (under a second to set up)
// with the target's own upper dir.
async function mountRoot(config: LabConfig, t: TargetConfig, lower: string): Promise<void> {
  const p = targetPaths(config.stateDir, t.name);
  for (const d of [p.upper, p.work, p.root, p.containers]) await mkdir(d, { recursive: true });
  if ((await mountPoints()).includes(p.root)) return;
  await exec('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${p.upper},workdir=${p.work}`, p.root], {
    hint: 'the state dir must be on a filesystem that can hold an overlayfs upper dir (ext4, xfs; not overlayfs or tmpfs-in-overlay)',
  });
}

export async function unmountRoot(config: LabConfig, name: string): Promise<void> {
  const root = targetPaths(config.stateDir, name).root;
  const mounts = await mountPoints();
  // Deepest first, should anything have been mounted inside.
  for (const m of mounts.filter((m) => m === root || m.startsWith(`${root}/`)).sort((a, b) => b.length - a.length)) {
    const r = await exec('umount', [m], { allowFail: true });
    if (r.code !== 0) await exec('umount', ['-l', m]);
  }
}

const debianSources = `Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp
`;

const write = async (root: string, path: string, text: string, mode = 0o644) => {
  const full = join(root, path);
  await mkdir(join(full, '..'), { recursive: true });
  await writeFile(full, text, { mode });
  await chmod(full, mode);
};

// First-boot identity of a target: its own machine-id and host key, root's key, names and
// the lab-only settings (apt through the relay, podman without cgroup controllers).
async function personalise(config: LabConfig, t: TargetConfig, publicKey: string): Promise<void> {
  const root = targetPaths(config.stateDir, t.name).root;
  await write(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  await exec('sh', ['-c', 'rm -f "$1"/etc/ssh/ssh_host_*', 'sh', root]);
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${t.name}`, '-f', join(root, 'etc/ssh/ssh_host_ed25519_key')]);
  // Only the key we pin in known_hosts, so no client can negotiate an unpinned one.
  await write(root, 'etc/ssh/sshd_config.d/hostctl-lab.conf', 'HostKey /etc/ssh/ssh_host_ed25519_key\n');
  await mkdir(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await chmod(join(root, 'root/.ssh'), 0o700);
  await write(root, 'root/.ssh/authorized_keys', publicKey.trim() + '\n', 0o600);
  await write(root, 'etc/hostname', `${t.name}\n`);
  await write(root, 'etc/hosts', `127.0.0.1\tlocalhost\n${t.address}\t${t.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  // Debian 13's own default sources (debootstrap writes trixie main only), so the lab
  // gets the same updates and security fixes a fresh Debian 13 host would.
  await rm(join(root, 'etc/apt/sources.list'), { force: true });
  await write(root, 'etc/apt/sources.list.d/debian.sources', debianSources);
  await write(root, 'etc/apt/apt.conf.d/01hostctl-lab-proxy', `Acquire::http::Proxy "${relayUrl(config)}";\n`);
  // Lab-only: no cgroup controllers are delegated here (a real Proxmox LXC has them).
  await write(root, 'etc/containers/containers.conf.d/lab.conf', '[containers]\npids_limit = 0\n');
}

export async function prepareTarget(config: LabConfig, t: TargetConfig, lower: string, publicKey: string): Promise<void> {
  const p = targetPaths(config.stateDir, t.name);
  await mountRoot(config, t, lower);
  const marker = join(p.dir, 'prepared');
  if (existsSync(marker)) return;
  await personalise(config, t, publicKey);
  await writeFile(marker, `${new Date().toISOString()}\n`);
}

export async function hostKey(config: LabConfig, t: TargetConfig): Promise<string> {
  const file = join(targetPaths(config.stateDir, t.name).root, 'etc/ssh/ssh_host_ed25519_key.pub');
  const [type, key] = (await readFile(file, 'utf8')).trim().split(/\s+/);
  if (type !== 'ssh-ed25519' || !key) throw new HostctlError('internal', `${file} is not an ed25519 public key`);
  return `${type} ${key}`;
}

// The wrapper that runs detached: joins the target's own cgroup, then boots the container
// again and again while it asks for a reboot (nspawn exits 133 for `systemctl reboot`).
export function bootScript(config: LabConfig, t: TargetConfig): string {
  const p = targetPaths(config.stateDir, t.name);
  const cgroups = targetCgroups(config.bridge, t.name);
  const nspawn = [
    'systemd-nspawn', '-b', '-D', p.root, '-M', t.name,
    `--network-namespace-path=/run/netns/${t.netns}`,
    '--capability=CAP_NET_ADMIN',
    '--system-call-filter=@keyring bpf',
    // The host's PID 1 is not systemd: no machined to register with, no unit to create.
    '--register=no', '--keep-unit',
    '--resolv-conf=off', '--timezone=off', '--link-journal=no', '--console=read-only',
    `--bind=${p.containers}:/var/lib/containers`,
  ];
  return `#!/bin/sh
# Written by hostctl lab for target ${t.name}; started detached by \`hostctl lab up\`.
set -u
for cg in ${cgroups.map(quote).join(' ')}; do
  mkdir -p "$cg" && echo $$ > "$cg/cgroup.procs" || { echo "cannot join cgroup $cg" >&2; exit 1; }
done
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_NSPAWN_API_VFS_WRITABLE=network
while :; do
  echo "hostctl-lab: booting ${t.name} at $(date -Is)"
  ${nspawn.map(quote).join(' ')}
  rc=$?
  echo "hostctl-lab: ${t.name} exited $rc at $(date -Is)"
  [ "$rc" -eq 133 ] || exit "$rc"
done
`;
}

// The last lines of a target's console since its latest boot, for an error message. What the
// target printed is not ours: control characters (terminal escapes) are dropped.
export async function consoleTail(config: LabConfig, name: string, lines = 15): Promise<string[]> {
  const text = await readFile(targetPaths(config.stateDir, name).log, 'utf8').catch(() => '');
  const all = text.split('\n');
  const start = all.findLastIndex((l) => l.startsWith(`hostctl-lab: booting ${name} `));
  return all
    .slice(Math.max(start, 0))
    .map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd())
    .filter(Boolean)
    .slice(-lines);
}

export async function targetRecord(config: LabConfig, name: string): Promise<ProcessRecord | undefined> {
  return loadPid(targetPaths(config.stateDir, name).pid);
}

export async function bootTarget(config: LabConfig, t: TargetConfig): Promise<ProcessRecord> {
  const p = targetPaths(config.stateDir, t.name);
  await writeFile(p.bootScript, bootScript(config, t), { mode: 0o755 });
  const out = openSync(p.log, 'a');
  // Its own process group and session: survives the CLI that started it, and `down` can
  // signal the whole group without touching anyone else.
  const child = spawn('/bin/sh', [p.bootScript], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', reject);
  });
  child.unref();
  const record = await recordOf(pid);
  if (!record) throw new HostctlError('internal', `the boot wrapper of ${t.name} died at once`, { hint: `see ${p.log}` });
  await savePid(p.pid, record);
  return record;
}

async function targetPids(config: LabConfig, name: string, record: ProcessRecord | undefined): Promise<number[]> {
  const pids = new Set<number>();
  for (const cg of targetCgroups(config.bridge, name)) for (const pid of await cgroupPids(cg)) pids.add(pid);
  if (record && (await isAlive(record))) for (const pid of await pidsInGroup(record.pid)) pids.add(pid);
  return [...pids];
}

// Polite first (nspawn turns SIGTERM into a clean poweroff of the container), then SIGKILL
// for whatever is left in the target's cgroups; finally the cgroups themselves go.
export async function stopTarget(config: LabConfig, name: string, log: (line: string) => void = () => {}): Promise<void> {
  const p = targetPaths(config.stateDir, name);
  const record = await loadPid(p.pid);
  const gone = async () => (await targetPids(config, name, record)).length === 0 && !(await isAlive(record));
  if (record && (await isAlive(record))) {
    signal(-record.pid, 'SIGTERM');
    if (!(await waitUntil(gone, 20_000, 200))) log(`${name}: did not power off within 20 s; killing it`);
  }
  // Without its nspawn (crashed, or killed by hand) the container is an orphan: no one to
  // ask politely, so whatever is left in its cgroups is killed outright.
  for (let round = 0; round < 10 && !(await gone()); round++) {
    if (record && (await isAlive(record))) signal(-record.pid, 'SIGKILL');
    for (const pid of await targetPids(config, name, record)) signal(pid, 'SIGKILL');
    await waitUntil(gone, 1000, 50);
  }
  const left = [];
  for (const cg of targetCgroups(config.bridge, name)) left.push(...(await removeCgroupTree(cg)));
  if (left.length) log(`${name}: cgroups still busy: ${left.join(', ')}`);
  await removeFile(p.pid);
}

// Deletes the target's directory, but never through a mount: overlay first, and refuse if
// anything is still mounted below it.
export async function removeTargetFiles(config: LabConfig, name: string): Promise<void> {
  const p = targetPaths(config.stateDir, name);
  await unmountRoot(config, name);
  const busy = (await mountPoints()).filter((m) => m === p.dir || m.startsWith(`${p.dir}/`));
  if (busy.length) {
    throw new HostctlError('internal', `still mounted under ${p.dir}: ${busy.join(', ')}`, { hint: 'umount them, then run `hostctl lab down` again' });
  }
  await rm(p.dir, { recursive: true, force: true });
}
