import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { HostctlError, inputError, unreachableError } from '../core/errors.js';
import { quote } from '../transport/quote.js';
import { exec } from './exec.js';
import { labConfig, type Lab } from './lab.js';
import type { LabConfig, LabOptions, TargetConfig } from './options.js';
import { withLock } from './lock.js';
import { mirror } from './rootfs.js';
import { sshArgs, sshRun } from './ssh.js';
import { baseImage, bases, imageSpecs, labelBase, labelHash, labelLab, type ImageSpec, type PlanOptions, type Suite } from './image-plan.js';

// Local container images for the lab (no registry is reachable from a target): Debian
// rootfs tarballs built once on the host, imported into each target as base images, and
// small images built FROM them with `podman build --pull=never` and no RUN step at all (crun
// cannot set its rlimits inside a target): what a RUN would do is done to the base rootfs.

// src/lab/images/ in the package; the same from dist/lab/images.js and from src/lab/images.ts
// under tsx, as both sit two levels below the package root.
export const assetsDir = fileURLToPath(new URL('../../src/lab/images/', import.meta.url));

export interface ImagesOptions extends PlanOptions {
  // Targets to work on; default every target of the lab.
  names?: string[];
  log?: (line: string) => void;
}

export interface TargetImages {
  name: string;
  installedPodman: boolean;
  imported: string[];
  built: string[];
  seconds: number;
}

export interface ImagesResult {
  // Every image the targets now hold, bases included, sorted.
  images: string[];
  seconds: number;
  targets: TargetImages[];
}

const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

// Build contexts are flat directories: a Containerfile and the files it copies.
async function contextFiles(context: string): Promise<[string, Buffer][]> {
  const dir = join(assetsDir, context);
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  return Promise.all(names.map(async (n): Promise<[string, Buffer]> => [n, await readFile(join(dir, n))]));
}

// Inputs of one image in one hash: its context files, build args and base image.
export async function specHash(spec: ImageSpec): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify({ name: spec.name, base: baseImage(spec.suite), args: spec.buildArgs }));
  for (const [path, data] of await contextFiles(spec.context)) h.update(`\0${path}\0${data.length}\0`).update(data);
  return h.digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------
// Host side: one debootstrap per suite, cached as a tarball under <cache>/images/.

export function baseTarballPaths(cacheDir: string, suite: Suite) {
  const stem = join(cacheDir, 'images', `base-${suite}-${bases[suite].version}`);
  return { tarball: `${stem}.tar.zst`, lock: `${stem}.lock`, buildLog: `${stem}.debootstrap.log`, root: `${stem}.build` };
}

// What a container needs and a VM does not: no docs, man pages or translations (also for
// anything installed later), no apt lists, no Postgres cluster (the entrypoint makes one
// on first start, like the official image), no identity of the build machine.
const tidyScript = `set -eu
root=$1; major=$2
chroot "$root" pg_dropcluster "$major" main >/dev/null 2>&1 || true
rm -rf "$root/etc/postgresql/$major" "$root/var/lib/postgresql/$major"
conf=$root/etc/postgresql-common/createcluster.conf
if grep -q '^[#[:space:]]*create_main_cluster' "$conf"; then
  sed -i 's/^[#[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
else
  echo 'create_main_cluster = false' >>"$conf"
fi
# The accounts of the official images, with their numbers: what a container does to a
# mounted directory then shows on the host as it would in production (postgres 70:70 as in
# postgres:*-alpine, redis 999:999 as in redis (Debian), authentik 1000:1000 as in
# ghcr.io/goauthentik/server). No image build can do it: RUN fails inside a lab target.
renumber() { # name uid gid; the files of the old ids follow
  u=$(chroot "$root" id -u "$1" 2>/dev/null) || return 0
  g=$(chroot "$root" id -g "$1")
  chroot "$root" groupmod -g "$3" "$1"
  chroot "$root" usermod -u "$2" -g "$3" "$1"
  find "$root" -xdev -uid "$u" -exec chown -h "$2" {} +
  find "$root" -xdev -gid "$g" -exec chgrp -h "$3" {} +
}
renumber postgres 70 70
renumber redis 999 999
chroot "$root" groupadd -g 1000 authentik
chroot "$root" useradd --system --no-create-home --uid 1000 --gid 1000 --home-dir /authentik --shell /usr/sbin/nologin authentik
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-hostctl-lab-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$root/usr/share/doc" -mindepth 1 -delete
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" \\
  "$root/var/lib/apt/lists"/* "$root/var/cache/apt"/*.bin "$root/var/cache/apt/archives"/*.deb \\
  "$root/var/cache/debconf"/*-old "$root/var/log"/*.log "$root/var/log/apt"/* "$root/var/log/postgresql"/* \\
  "$root/etc/resolv.conf" "$root/etc/hostname" "$root/var/lib/dbus/machine-id" \\
  "$root/usr/share/i18n"
# Postgres's JIT provider and LLVM behind it are half the image; without llvmjit.so the
# server just never JIT-compiles (pg_jit_available() is false), which a lab does not miss.
rm -rf "$root/usr/lib/postgresql/$major/lib/llvmjit"* "$root/usr/lib/postgresql/$major/lib/bitcode" \\
  "$root/usr/lib/x86_64-linux-gnu"/libLLVM* "$root/usr/lib/x86_64-linux-gnu"/libz3.so*
: >"$root/etc/machine-id"
`;

const tarFlags = ['--numeric-owner', '--xattrs', '--xattrs-include=*'];

async function buildBase(cacheDir: string, suite: Suite, log: (line: string) => void): Promise<void> {
  const spec = bases[suite];
  const p = baseTarballPaths(cacheDir, suite);
  await rm(p.root, { recursive: true, force: true });
  log(`building the ${suite} base image rootfs with debootstrap (${spec.packages.join(' ')})`);
  const started = Date.now();
  const r = await exec('debootstrap', ['--variant=minbase', `--include=${spec.packages.join(',')}`, suite, p.root, mirror], {
    allowFail: true,
    timeoutMs: 1_200_000,
  });
  await writeFile(p.buildLog, r.stdout + r.stderr);
  if (r.code !== 0) {
    throw new HostctlError('internal', `debootstrap of ${suite} failed (exit ${r.code}); log in ${p.buildLog}`, {
      hint: `check that the mirror answers: curl -I ${mirror}/dists/${suite}/Release`,
    });
  }
  await exec('sh', ['-c', tidyScript, 'sh', p.root, String(spec.pgMajor)]);
  const tmp = `${p.tarball}.tmp`;
  await exec('tar', [...tarFlags, '-I', 'zstd -T0 -10', '-C', p.root, '-cf', tmp, '.']);
  await rename(tmp, p.tarball);
  await rm(p.root, { recursive: true, force: true });
  log(`${suite} base built in ${since(started)}: ${p.tarball}`);
}

// The cached tarball of a suite's base, built when missing.
export async function ensureBaseTarball(cacheDir: string, suite: Suite, log: (line: string) => void = () => {}): Promise<string> {
  const p = baseTarballPaths(cacheDir, suite);
  if (existsSync(p.tarball)) return p.tarball;
  await mkdir(join(cacheDir, 'images'), { recursive: true });
  return withLock(p.lock, 1_200_000, async () => {
    if (!existsSync(p.tarball)) await buildBase(cacheDir, suite, log);
    return p.tarball;
  });
}

// ---------------------------------------------------------------------------------------
// Target side: podman, the base images, the builds.

interface PodmanImage {
  Names?: string[] | null;
  Labels?: Record<string, string> | null;
}

// What a target has: podman or not, and each lab image with its input hash.
async function probe(config: LabConfig, t: TargetConfig): Promise<{ podman: boolean; images: Map<string, string> }> {
  const r = await sshRun(config, t, `command -v podman >/dev/null || { echo no-podman; exit 0; }
podman images --filter label=${labelLab}=1 --format json`, 60_000);
  if (r.code === 255) throw unreachableError(`${t.name} (${t.address}): ssh failed: ${r.stderr.trim()}`, { hint: 'is the lab up? `hostctl lab status`' });
  if (r.code !== 0) throw new HostctlError('internal', `${t.name}: podman images failed (exit ${r.code}): ${r.stderr.trim()}`);
  const images = new Map<string, string>();
  if (r.stdout.trim() === 'no-podman') return { podman: false, images };
  for (const image of (JSON.parse(r.stdout || '[]') ?? []) as PodmanImage[]) {
    for (const name of image.Names ?? []) images.set(name, image.Labels?.[labelHash] ?? image.Labels?.[labelBase] ?? '');
  }
  return { podman: true, images };
}

// One command on a target; `input` feeds its stdin: bytes, or a .tar.zst unpacked on the
// way (podman import takes a zstd stream but then records a wrong layer digest).
async function remote(
  config: LabConfig,
  t: TargetConfig,
  what: string,
  command: string,
  timeoutMs: number,
  input?: { zstdFile?: string; data?: Buffer },
): Promise<string> {
  const args = sshArgs(config, t, [command]);
  let r;
  if (input?.zstdFile) {
    const source = execa('zstd', ['-dcq', '--', input.zstdFile], { reject: false, buffer: false, timeout: timeoutMs });
    r = await source.pipe('ssh', args, { reject: false, timeout: timeoutMs });
    const s = await source;
    if (s.exitCode !== 0 && r.exitCode === 0) {
      throw new HostctlError('internal', `${t.name}: ${what}: zstd -dc ${input.zstdFile} failed (exit ${s.exitCode}): ${String(s.stderr).trim()}`, {
        hint: `remove ${input.zstdFile} to have it built again`,
      });
    }
  } else {
    r = await execa('ssh', args, { reject: false, timeout: timeoutMs, input: input?.data ?? '' });
  }
  if (r.exitCode !== 0) {
    const said = (String(r.stderr).trim() || String(r.stdout).trim()).split('\n').slice(-5).join(' | ');
    throw new HostctlError('internal', `${t.name}: ${what} ${r.timedOut ? 'timed out' : `failed (exit ${r.exitCode})`}${said ? `: ${said}` : ''}`, {
      hint: `try by hand: hostctl lab ssh ${t.name} -- ${command.split('\n')[0]}`,
    });
  }
  return String(r.stdout);
}

const installPodman = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q podman >/dev/null
podman --version`;

function buildCommand(spec: ImageSpec, hash: string, dir: string): string {
  const ctx = `${dir}/${spec.context}`;
  return [
    // Docker's format keeps HEALTHCHECK, as in the registry's images (OCI has no field for it).
    'podman', 'build', '--pull=never', '--quiet', '--format', 'docker',
    '-f', `${ctx}/Containerfile`,
    '--build-arg', `BASE=${baseImage(spec.suite)}`,
    ...Object.entries(spec.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    '--label', `${labelLab}=1`,
    '--label', `${labelHash}=${hash}`,
    '-t', spec.name,
    ctx,
  ].map(quote).join(' ');
}

function importCommand(suite: Suite): string {
  const changes = [`LABEL ${labelLab}=1`, `LABEL ${labelBase}=${suite}-${bases[suite].version}`, 'ENV LANG=C.UTF-8', 'CMD ["/bin/bash"]'];
  return ['podman', 'import', '--quiet', ...changes.flatMap((c) => ['--change', c]), '-', baseImage(suite)].map(quote).join(' ');
}

async function packAssets(): Promise<Buffer> {
  const r = await execa('tar', ['-C', assetsDir, '--owner=0', '--group=0', '-cf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(r.stdout);
}

// Brings every named target to the requested images: podman installed, bases imported,
// images built; anything already there with the same inputs is left alone.
export async function labImages(lab: Lab | LabOptions, options: ImagesOptions = {}): Promise<ImagesResult> {
  const started = Date.now();
  const log = options.log ?? ('log' in lab && lab.log ? lab.log : () => {});
  const config = await labConfig({ stateDir: lab.stateDir });
  if (!config) throw inputError(`no lab in ${lab.stateDir ?? '.lab'}`, { hint: 'run `hostctl lab up` first, or give --state' });
  let targets = config.targets;
  if (options.names?.length) {
    const unknown = options.names.filter((n) => !config.targets.some((t) => t.name === n));
    if (unknown.length) throw inputError(`no target ${unknown.join(', ')} in the lab`, { hint: `targets: ${config.targets.map((t) => t.name).join(', ')}` });
    targets = config.targets.filter((t) => options.names!.includes(t.name));
  }
  const specs = imageSpecs(options);
  const hashes = new Map<string, string>();
  for (const s of specs) hashes.set(s.name, await specHash(s));
  const suites = [...new Set(specs.map((s) => s.suite))];

  // One build per suite for all targets, started as soon as the first target needs it.
  const tarballs = new Map<Suite, Promise<string>>();
  const tarball = (suite: Suite) => {
    let p = tarballs.get(suite);
    if (!p) tarballs.set(suite, (p = ensureBaseTarball(config.cacheDir, suite, log)));
    return p;
  };
  let assets: Promise<Buffer> | undefined;

  const perTarget = async (t: TargetConfig): Promise<TargetImages & { images: string[] }> => {
    const began = Date.now();
    const state = await probe(config, t);
    const stale = specs.filter((s) => state.images.get(s.name) !== hashes.get(s.name));
    const missingBases = suites.filter((s) => !state.images.has(baseImage(s)));
    // Host builds start now, in parallel with the podman install below.
    for (const s of missingBases) tarball(s).catch(() => {});
    let installedPodman = false;
    if (!state.podman) {
      log(`${t.name}: installing podman`);
      const t0 = Date.now();
      const version = await remote(config, t, 'apt-get install podman', installPodman, 1_200_000);
      log(`${t.name}: ${version.trim()} installed in ${since(t0)}`);
      installedPodman = true;
    }
    // Both bases at once: each is mostly waiting on its own unpack and write.
    const imported = await Promise.all(missingBases.map(async (suite) => {
      const file = await tarball(suite);
      const name = baseImage(suite);
      const t0 = Date.now();
      await remote(config, t, `podman import ${name}`, importCommand(suite), 900_000, { zstdFile: file });
      log(`${t.name}: imported ${name} in ${since(t0)}`);
      return name;
    }));
    const built: string[] = [];
    if (stale.length) {
      const dir = `/var/tmp/hostctl-lab-images.${process.pid}.${Date.now()}`;
      await remote(config, t, 'upload of the build contexts', `mkdir -p ${dir} && tar -x -C ${dir}`, 120_000, { data: await (assets ??= packAssets()) });
      try {
        for (const spec of stale) {
          const t0 = Date.now();
          await remote(config, t, `podman build ${spec.name}`, buildCommand(spec, hashes.get(spec.name)!, dir), 600_000);
          log(`${t.name}: built ${spec.name} in ${since(t0)}`);
          built.push(spec.name);
        }
      } finally {
        await sshRun(config, t, `rm -rf ${dir}`).catch(() => {});
      }
      // Images a rebuild replaced are left untagged: drop them (only ours, by label).
      await sshRun(config, t, `podman image prune -f --filter label=${labelLab}=1 >/dev/null`, 120_000).catch(() => {});
    }
    const images = [...suites.map(baseImage), ...specs.map((s) => s.name)];
    return { name: t.name, installedPodman, imported, built, seconds: (Date.now() - began) / 1000, images };
  };

  const results = await Promise.all(targets.map(perTarget));
  return {
    images: [...new Set(results.flatMap((r) => r.images))].sort(),
    seconds: (Date.now() - started) / 1000,
    targets: results.map(({ images: _, ...r }) => r),
  };
}
