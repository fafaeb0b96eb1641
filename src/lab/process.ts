import { readFile, readdir } from 'node:fs/promises';
import { sleep } from './exec.js';

// A PID plus its start time (clock ticks since boot, /proc/PID/stat field 22): a recycled PID
// has another start time, so a stale record never makes us signal a stranger.
export interface ProcessRecord {
  pid: number;
  startTime: string;
}

interface Stat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: string;
}

export async function procStat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), startTime: f[19]! };
  } catch {
    return undefined;
  }
}

export async function recordOf(pid: number): Promise<ProcessRecord | undefined> {
  const s = await procStat(pid);
  return s ? { pid, startTime: s.startTime } : undefined;
}

// kill -0 says yes to a zombie, and this host's PID 1 reaps orphans late: read the state.
export async function isAlive(record: ProcessRecord | undefined): Promise<boolean> {
  if (!record) return false;
  const s = await procStat(record.pid);
  return !!s && s.startTime === record.startTime && s.state !== 'Z' && s.state !== 'X';
}

export async function pidsInGroup(pgrp: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await procStat(Number(entry));
    if (s && s.pgrp === pgrp && s.state !== 'Z') out.push(Number(entry));
  }
  return out;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: that is what we wanted.
  }
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}
