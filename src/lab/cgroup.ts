import { existsSync } from 'node:fs';
import { readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

// The hierarchies a target's processes must be placed in. On this hybrid host nspawn runs
// the container on the unified (v2) tree and the named systemd v1 tree must agree, or every
// target lands in the cgroup of whoever started it and they collide.
export function cgroupRoots(): string[] {
  if (existsSync('/sys/fs/cgroup/unified/cgroup.procs')) {
    return ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].filter((d) => existsSync(join(d, 'cgroup.procs')));
  }
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return ['/sys/fs/cgroup/systemd'].filter((d) => existsSync(d));
}

export const labCgroupName = (bridge: string) => `hostctl-lab-${bridge}`;

export const labCgroups = (bridge: string) => cgroupRoots().map((r) => join(r, labCgroupName(bridge)));

export const targetCgroups = (bridge: string, name: string) => labCgroups(bridge).map((d) => join(d, name));

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

// Every PID anywhere below dir: the container's systemd makes its own sub-cgroups.
export async function cgroupPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  try {
    for (const line of (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n')) if (line) pids.push(Number(line));
  } catch {
    return pids;
  }
  for (const sub of await subdirs(dir)) pids.push(...(await cgroupPids(sub)));
  return pids;
}

// rmdir depth-first; a cgroup that still holds a process stays and is reported.
export async function removeCgroupTree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const left: string[] = [];
  for (const sub of await subdirs(dir)) left.push(...(await removeCgroupTree(sub)));
  try {
    await rmdir(dir);
  } catch {
    left.push(dir);
  }
  return left;
}
