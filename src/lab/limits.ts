import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inputError } from '../core/errors.js';
import { exec } from './exec.js';
import { withLock } from './lock.js';
import type { LabConfig } from './options.js';
import { statePaths, writeFileAtomic } from './state.js';

// What one target costs the host. Measured over 60 booted Debian 13 targets (systemd 257,
// journald, logind, sshd): per target ~7 inotify instances, ~25 watches, ~7 processes,
// ~130 open files, ~15 MiB. The budget is twice that or more, for podman and a few
// containers inside; memory is about the bare boot, as what runs inside later is the
// user's business.
export const perTarget = { inotifyInstances: 16, inotifyWatches: 1024, files: 2048, tasks: 256, memoryMiB: 64 } as const;

// The lab process itself holds a socket and ssh's pipes per target while it waits for them.
const nofilePerTarget = 16;
const nofileBase = 1024;

export const sysctls = [
  'fs.inotify.max_user_instances',
  'fs.inotify.max_user_watches',
  'fs.file-max',
  'kernel.pid_max',
  'kernel.threads-max',
] as const;
export type Sysctl = (typeof sysctls)[number];

// What the host has and uses now; the input of the pure plan below.
export interface HostUsage {
  limits: Record<Sysctl, number>;
  // inotify counts are per user: every target runs as the host's root.
  inotifyInstances: number;
  inotifyWatches: number;
  files: number;
  tasks: number;
  memAvailableMiB: number;
  nofile: { soft: number; hard: number };
}

export interface LimitStep {
  limit: Sysctl | 'nofile' | 'memory';
  inUse: number;
  have: number;
  need: number;
  // raise: to `to`; refuse: `fix` says what the user can do.
  action: 'ok' | 'raise' | 'refuse';
  to?: number;
  fix?: string;
}

// The kernel's own ceilings (64-bit): asking for more than these fails, so refuse instead.
const ceilings: Partial<Record<Sysctl, number>> = { 'kernel.pid_max': 4_194_304, 'kernel.threads-max': 0x3fffffff };

// A power of two at or above need: headroom for the targets' later work and for other labs
// booting meanwhile, without raising a limit by orders of magnitude.
const roundUp = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

// Decides, for `booting` more targets, which limits are fine, which to raise and which only
// the user can fix. Pure, so every branch is tested without touching the host.
export function planLimits(usage: HostUsage, booting: number): LimitStep[] {
  const steps: LimitStep[] = [];
  const sysctl = (limit: Sysctl, inUse: number, each: number) => {
    const have = usage.limits[limit];
    const need = inUse + booting * each;
    if (need <= have) return steps.push({ limit, inUse, have, need, action: 'ok' });
    const ceiling = ceilings[limit] ?? Number.MAX_SAFE_INTEGER;
    const to = Math.min(roundUp(need), ceiling);
    if (need > ceiling) {
      return steps.push({ limit, inUse, have, need, action: 'refuse', fix: `boot fewer targets: ${limit} cannot exceed ${ceiling}` });
    }
    return steps.push({ limit, inUse, have, need, action: 'raise', to, fix: `sysctl -w ${limit}=${to}` });
  };
  sysctl('fs.inotify.max_user_instances', usage.inotifyInstances, perTarget.inotifyInstances);
  sysctl('fs.inotify.max_user_watches', usage.inotifyWatches, perTarget.inotifyWatches);
  sysctl('fs.file-max', usage.files, perTarget.files);
  sysctl('kernel.pid_max', usage.tasks, perTarget.tasks);
  sysctl('kernel.threads-max', usage.tasks, perTarget.tasks);

  const nofile = nofileBase + booting * nofilePerTarget;
  if (nofile <= usage.nofile.soft) steps.push({ limit: 'nofile', inUse: 0, have: usage.nofile.soft, need: nofile, action: 'ok' });
  else if (nofile <= usage.nofile.hard) {
    steps.push({ limit: 'nofile', inUse: 0, have: usage.nofile.soft, need: nofile, action: 'raise', to: nofile, fix: `ulimit -n ${nofile}` });
  } else {
    steps.push({ limit: 'nofile', inUse: 0, have: usage.nofile.hard, need: nofile, action: 'refuse', fix: `run it from a shell after \`ulimit -n ${nofile}\`` });
  }

  const memory = booting * perTarget.memoryMiB;
  steps.push(memory <= usage.memAvailableMiB
    ? { limit: 'memory', inUse: 0, have: usage.memAvailableMiB, need: memory, action: 'ok' }
    : { limit: 'memory', inUse: 0, have: usage.memAvailableMiB, need: memory, action: 'refuse', fix: 'boot fewer targets, or stop other labs (`hostctl lab down --state DIR`)' });
  return steps;
}

const sysctlPath = (key: Sysctl) => `/proc/sys/${key.replaceAll('.', '/')}`;
const readSysctl = async (key: Sysctl) => Number((await readFile(sysctlPath(key), 'utf8')).trim());

// Every inotify instance of a root process, and its watches (one "inotify wd:" line each in
// fdinfo). A descriptor shared after fork counts twice: the estimate errs on the safe side.
async function inotifyUse(): Promise<{ instances: number; watches: number }> {
  let instances = 0;
  let watches = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] !== '0') continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== 'anon_inode:inotify') continue;
      instances++;
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
      watches += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    }
  }
  return { instances, watches };
}

async function nofileOf(pid: number): Promise<{ soft: number; hard: number }> {
  const line = (await readFile(`/proc/${pid}/limits`, 'utf8')).split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').trim().split(/\s+/).slice(3, 5).map((v) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v)));
  return { soft: soft ?? 0, hard: hard ?? 0 };
}

export async function hostUsage(): Promise<HostUsage> {
  const limits = {} as Record<Sysctl, number>;
  for (const key of sysctls) limits[key] = await readSysctl(key);
  const inotify = await inotifyUse();
  const files = Number((await readFile('/proc/sys/fs/file-nr', 'utf8')).split(/\s+/)[0]);
  // "running/total" scheduling entities: every thread has a PID.
  const tasks = Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[3]!.split('/')[1]);
  const mem = /^MemAvailable:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8'));
  return {
    limits, inotifyInstances: inotify.instances, inotifyWatches: inotify.watches, files, tasks,
    memAvailableMiB: Math.floor(Number(mem?.[1] ?? 0) / 1024), nofile: await nofileOf(process.pid),
  };
}

// Limits are host-wide and shared by every lab on the machine, so the values from before
// the first raise and the labs that rely on a raise are kept in one host-wide record (not
// in one lab's state): the last lab to go down puts the old values back.
const registryDir = '/run/hostctl-lab';
export const registryPath = join(registryDir, 'host-limits.json');
const registryLock = join(registryDir, 'host-limits.lock');

interface Registry {
  // The value each sysctl had before a lab first raised it, and the value the lab wrote.
  original: Partial<Record<Sysctl, number>>;
  set: Partial<Record<Sysctl, number>>;
  // State dirs of the labs that were up while the raise held.
  labs: string[];
}

async function loadRegistry(): Promise<Registry | undefined> {
  if (!existsSync(registryPath)) return undefined;
  return JSON.parse(await readFile(registryPath, 'utf8')) as Registry;
}

const describe = (s: LimitStep) =>
  `${s.limit}: ${s.limit === 'memory' ? `${s.need} MiB needed, ${s.have} MiB available` : `${s.need} needed (${s.inUse} in use), limit ${s.have}`}`;

// Before any target boots: raise what the targets need, or refuse naming the limit, the
// need and the fix, with nothing on the host changed.
export async function ensureHostLimits(config: LabConfig, booting: number, log: (line: string) => void): Promise<void> {
  if (booting === 0) return;
  await mkdir(registryDir, { recursive: true });
  await withLock(registryLock, 60_000, async () => {
    const steps = planLimits(await hostUsage(), booting);
    const refused = steps.filter((s) => s.action === 'refuse');
    if (refused.length) {
      throw inputError(`the host cannot hold ${booting} more lab targets: ${refused.map(describe).join('; ')}`, {
        hint: refused.map((s) => s.fix).join('; '),
      });
    }
    const raises = steps.filter((s) => s.action === 'raise');
    for (const s of raises.filter((s) => s.limit === 'nofile')) {
      // Ours alone (the targets' nspawn sets its own): nothing to restore.
      // "soft:" leaves the hard limit as it is.
      await exec('prlimit', ['--pid', String(process.pid), `--nofile=${s.to}:`]);
      log(`nofile of this process raised to ${s.to}`);
    }
    const registry = (await loadRegistry()) ?? { original: {}, set: {}, labs: [] };
    for (const s of raises) {
      if (s.limit === 'nofile' || s.limit === 'memory') continue;
      try {
        await writeFile(sysctlPath(s.limit), `${s.to}\n`);
      } catch (cause) {
        throw inputError(`cannot raise ${s.limit} from ${s.have} to ${s.to}: ${(cause as Error).message}`, {
          cause, hint: `${describe(s)}; as root on the host: ${s.fix}`,
        });
      }
      registry.original[s.limit] ??= s.have;
      registry.set[s.limit] = s.to;
      log(`${s.limit} raised from ${s.have} to ${s.to} (${s.need} needed); \`lab down\` of the last lab puts it back`);
    }
    if (Object.keys(registry.set).length === 0) return;
    if (!registry.labs.includes(config.stateDir)) registry.labs.push(config.stateDir);
    await writeFileAtomic(registryPath, JSON.stringify(registry, null, 2) + '\n');
  });
}

// After a lab is gone: when no lab that relied on a raise is left, each raised sysctl goes
// back to its old value, unless someone changed it since (then theirs stays).
export async function releaseHostLimits(config: LabConfig, log: (line: string) => void): Promise<void> {
  if (!existsSync(registryPath)) return;
  await withLock(registryLock, 60_000, async () => {
    const registry = await loadRegistry();
    if (!registry) return;
    // A lab whose state has no lab.json any more was removed by hand: it relies on nothing.
    registry.labs = registry.labs.filter((dir) => dir !== config.stateDir && existsSync(statePaths(dir).config));
    if (registry.labs.length) {
      await writeFileAtomic(registryPath, JSON.stringify(registry, null, 2) + '\n');
      log(`host limits stay raised for ${registry.labs.join(', ')}`);
      return;
    }
    for (const key of sysctls) {
      const old = registry.original[key];
      if (old === undefined) continue;
      const now = await readSysctl(key);
      if (now !== registry.set[key]) {
        log(`${key} is ${now}, not the ${registry.set[key]} the lab set: left as it is`);
        continue;
      }
      await writeFile(sysctlPath(key), `${old}\n`);
      log(`${key} restored to ${old}`);
    }
    await rm(registryPath, { force: true });
  });
}
