import { existsSync, readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cursorOf, sshdCounts, targetCpuS, type LiveLab } from './labs.js';
import { log, run } from './process.js';
import { ansibleEnv, type Mode, type Scenario, type Tool } from './scenarios.js';

// One measured run of a tool (wall time, controller CPU and memory, SSH sessions counted by
// the target's sshd, changes reported), and what both tools left on the targets.

export const TIME = '/usr/bin/time';
const CLK_TCK = 100;

export interface Measured {
  tool: Tool;
  mode: Mode;
  ms: number;
  cpuS: number;
  // CPU all targets spent during the run (their cgroups), when the lab can tell.
  targetCpuS?: number;
  maxRssKb: number;
  peakTreeRssKb: number;
  sessions: number;
  connections: number;
  // hostctl's own count (host-end events), summed over hosts.
  roundTrips?: number;
  changed: number;
  ok: boolean;
}

// Ansible's ssh masters (ControlPersist) detach from the run: their CPU is read from /proc
// and they are closed, so every run opens its connections afresh, as hostctl does.
export async function closeMasters(stateDir: string): Promise<{ cpuS: number; rssKb: number }> {
  const dir = join(stateDir, 'cp');
  let cpuS = 0;
  let rssKb = 0;
  const sockets = existsSync(dir) ? await readdir(dir) : [];
  for (const s of sockets) {
    const path = join(dir, s);
    const check = await run('ssh', ['-o', `ControlPath=${path}`, '-O', 'check', 'bench'], {}, 10_000);
    const pid = /pid=(\d+)/.exec(check.stderr)?.[1];
    if (pid) {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
        cpuS += (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
        rssKb = Math.max(rssKb, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0));
      } catch {
        // exited meanwhile
      }
    }
    await run('ssh', ['-o', `ControlPath=${path}`, '-O', 'exit', 'bench'], {}, 10_000);
    await rm(path, { force: true });
  }
  return { cpuS, rssKb };
}

function changedCount(tool: Tool, stdout: string): number {
  if (tool === 'hostctl') {
    const recap = stdout.trim().split('\n').map((l) => { try { return JSON.parse(l) as { type?: string; hosts?: Record<string, { changed: number }> }; } catch { return {}; } }).find((e) => e.type === 'recap');
    return Object.values(recap?.hosts ?? {}).reduce((n, h) => n + h.changed, 0);
  }
  return [...stdout.matchAll(/^\S+\s+: ok=\d+\s+changed=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

function roundTripsOf(stdout: string): number {
  let n = 0;
  for (const l of stdout.split('\n')) {
    if (!l.includes('"host-end"')) continue;
    n += (JSON.parse(l) as { roundTrips: number }).roundTrips;
  }
  return n;
}

export async function measure(s: Scenario, lab: LiveLab, mode: Mode): Promise<Measured> {
  const tool = lab.spec.tool;
  const cursors = await Promise.all(lab.targets.map((t) => cursorOf(lab, t.name)));
  const [cmd, args] = s.command(tool, lab.inventory, mode);
  const timeFile = join(lab.spec.stateDir, 'time.txt');
  const env = tool === 'ansible' ? ansibleEnv(lab.spec.stateDir) : {};
  const targetBefore = await targetCpuS(lab);
  const r = await run(TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], env);
  const targetAfter = await targetCpuS(lab);
  const masters = tool === 'ansible' ? await closeMasters(lab.spec.stateDir) : { cpuS: 0, rssKb: 0 };
  const [user = 0, sys = 0, rss = 0] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  const counts = await Promise.all(lab.targets.map((t, i) => sshdCounts(lab, t.name, cursors[i]!)));
  const m: Measured = {
    tool,
    mode,
    ms: r.ms,
    cpuS: user + sys + masters.cpuS,
    ...(targetBefore !== undefined && targetAfter !== undefined ? { targetCpuS: targetAfter - targetBefore } : {}),
    maxRssKb: Math.max(rss, masters.rssKb),
    peakTreeRssKb: r.peakTreeRssKb,
    sessions: counts.reduce((n, c) => n + c.sessions, 0),
    connections: counts.reduce((n, c) => n + c.connections, 0),
    ...(tool === 'hostctl' ? { roundTrips: roundTripsOf(r.stdout) } : {}),
    changed: changedCount(tool, r.stdout),
    ok: r.code === 0,
  };
  const label = `${tool} ${mode}`.padEnd(16);
  log(`${label} ${(m.ms / 1000).toFixed(2)} s, cpu ${m.cpuS.toFixed(2)} s${m.targetCpuS !== undefined ? `, targets ${m.targetCpuS.toFixed(2)} s` : ''}${tool === 'ansible' ? ` (ssh master ${masters.cpuS.toFixed(2)} s)` : ''}, ${m.sessions} sessions / ${m.connections} connections${m.roundTrips !== undefined ? ` (roundTrips ${m.roundTrips})` : ''}, changed=${m.changed}, exit ${r.code}`);
  if (!m.ok) {
    const tail = (r.stdout + r.stderr).trim().split('\n').slice(-25).join('\n');
    throw new Error(`${tool} ${mode} run failed (exit ${r.code}):\n${tail}`);
  }
  return m;
}

// Comparing what both tools left on the targets

interface FileState {
  path: string;
  line: string;
}

async function fileStates(lab: LiveLab, target: string, files: string[]): Promise<FileState[]> {
  const script = files.map((f) => `f='${f}'; if [ -f "$f" ]; then echo "$f $(sha256sum <"$f" | cut -c1-16) $(stat -c '%a %U:%G' "$f")"; elif [ -d "$f" ]; then echo "$f dir $(stat -c '%a %U:%G' "$f")"; else echo "$f missing"; fi`).join('\n');
  const out = await lab.sh(target, script);
  return out.trim().split('\n').map((l) => ({ path: l.split(' ')[0]!, line: l.split(' ').slice(1).join(' ') }));
}

export interface Comparison {
  same: string[];
  differ: { target: string; path: string; hostctl: string; ansible: string }[];
}

export async function compareFiles(s: Scenario, labs: Record<Tool, LiveLab>): Promise<Comparison> {
  const result: Comparison = { same: [], differ: [] };
  const sameEverywhere = new Set(s.files);
  for (const name of s.names) {
    const [h, a] = await Promise.all([fileStates(labs.hostctl, name, s.files), fileStates(labs.ansible, name, s.files)]);
    for (const [i, f] of h.entries()) {
      if (f.line !== a[i]?.line) {
        sameEverywhere.delete(f.path);
        result.differ.push({ target: name, path: f.path, hostctl: f.line, ansible: a[i]?.line ?? '?' });
      }
    }
  }
  result.same = [...sameEverywhere];
  return result;
}
