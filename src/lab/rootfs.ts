import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostctlError } from '../core/errors.js';
import { exec } from './exec.js';
import { withLock } from './lock.js';

// Bump when the package list or the tidy-up changes: a new name means a new build, and an
// old cache is never mistaken for the current one.
export const rootfsVersion = 'trixie-v1';
export const mirror = 'http://deb.debian.org/debian';
export const rootfsPackages = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'iproute2', 'nftables', 'sudo', 'python3',
  'ca-certificates', 'curl', 'less', 'procps',
];

export function rootfsPaths(cacheDir: string) {
  return {
    // Unpacked once and shared read-only by every target as its overlayfs lower dir.
    lower: join(cacheDir, rootfsVersion),
    // Outside the lower dir so it does not show up in every target's /.
    complete: join(cacheDir, `${rootfsVersion}.complete`),
    tarball: join(cacheDir, `${rootfsVersion}.tar.zst`),
    lock: join(cacheDir, `${rootfsVersion}.lock`),
    buildLog: join(cacheDir, `${rootfsVersion}.debootstrap.log`),
  };
}

const tarFlags = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

// Makes the image generic: every target gets its own machine-id and host keys at prepare
// time, so none may be baked in, and the host's resolv.conf means nothing inside the lab.
async function tidy(root: string): Promise<void> {
  await exec('sh', ['-c', 'rm -f "$1"/etc/ssh/ssh_host_* "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/dbus/machine-id', 'sh', root]);
  await writeFile(join(root, 'etc/machine-id'), '');
  await writeFile(join(root, 'etc/resolv.conf'), '# lab targets have no DNS: apt reaches the mirror through the relay\n');
}

async function build(cacheDir: string, log: (line: string) => void): Promise<void> {
  const p = rootfsPaths(cacheDir);
  const tmp = `${p.lower}.build`;
  await rm(tmp, { recursive: true, force: true });
  log(`building the ${rootfsVersion} rootfs with debootstrap (about a minute)`);
  const started = Date.now();
  const r = await exec(
    'debootstrap',
    ['--variant=minbase', `--include=${rootfsPackages.join(',')}`, 'trixie', tmp, mirror],
    { allowFail: true, timeoutMs: 900_000 },
  );
  await writeFile(p.buildLog, r.stdout + r.stderr);
  if (r.code !== 0) {
    throw new HostctlError('internal', `debootstrap failed (exit ${r.code}); log in ${p.buildLog}`, {
      hint: `check that the mirror answers: curl -I ${mirror}/dists/trixie/Release`,
    });
  }
  await tidy(tmp);
  log(`debootstrap took ${((Date.now() - started) / 1000).toFixed(0)} s; packing ${p.tarball}`);
  await exec('tar', [...tarFlags, '--zstd', '-C', tmp, '-cf', `${p.tarball}.tmp`, '.']);
  await rename(`${p.tarball}.tmp`, p.tarball);
  await rm(tmp, { recursive: true, force: true });
}

// Returns the lower dir, building the tarball (debootstrap) or unpacking it only when missing.
export async function ensureRootfs(cacheDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const p = rootfsPaths(cacheDir);
  if (existsSync(p.complete)) return p.lower;
  await mkdir(cacheDir, { recursive: true });
  return withLock(p.lock, 600_000, async () => {
    if (existsSync(p.complete)) return p.lower;
    if (!existsSync(p.tarball)) await build(cacheDir, log);
    log(`unpacking ${p.tarball}`);
    const tmp = `${p.lower}.unpack`;
    await rm(tmp, { recursive: true, force: true });
    await rm(p.lower, { recursive: true, force: true });
    await mkdir(tmp);
    await exec('tar', [...tarFlags, '--zstd', '-C', tmp, '-xf', p.tarball]);
    await rename(tmp, p.lower);
    await writeFile(p.complete, `${new Date().toISOString()}\n`);
    return p.lower;
  });
}
