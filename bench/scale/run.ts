// The controller-scale bench: one controller against N real OpenSSH servers on this machine
// (bench/scale/fleet.ts), a small file-and-command job, N = 100, 500, 1,000. What it measures
// is the controller: wall, CPU, peak RSS, open descriptors, SSH handshakes per second, and
// whether every host was reached. Run it through bench/scale/run; markdown on stdout.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closeMasters, TIME } from '../lib/measure.js';
import { log, run } from '../lib/process.js';
import { distStamp, header } from '../lib/report.js';
import { ansibleEnv, repo, type Tool } from '../lib/scenarios.js';
import { startFleet, writeInventory, type Fleet } from './fleet.js';

const STATE = '/var/tmp/hostctl-scale-bench';
const usage = `Usage: bench/scale/run [options]

Starts N OpenSSH servers on loopback addresses 127.77.x.y:22 (state in ${STATE}), runs
bench/scale/playbook.ts (hostctl) and bench/scale/ansible.yml (Ansible) against them, first
run then converged re-runs, and prints a markdown table. Needs root.

  --hosts N[,N...]      fleet sizes (default 100,500,1000)
  --only hostctl|ansible
  --reruns N            converged re-runs per size and tool, median reported (default 3)
  --ansible-up-to N     largest size Ansible runs at (default 500)
  --ansible-forks N     Ansible's forks: min(hosts, this) (default 100)
  --timeout S           a run that takes longer is stopped and reported (default 600)
  --out FILE            also write the report to FILE
`;

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100,500,1000' },
    only: { type: 'string' },
    reruns: { type: 'string', default: '3' },
    'ansible-up-to': { type: 'string', default: '500' },
    'ansible-forks': { type: 'string', default: '100' },
    timeout: { type: 'string', default: '600' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
const fail = (message: string): never => {
  process.stderr.write(`bench/scale: ${message}\n`);
  process.exit(5);
};
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const sizes = values.hosts.split(',').map(Number);
const whole = (n: number, min: number) => Number.isInteger(n) && n >= min;
if (!sizes.every((n) => whole(n, 1) && n <= 1000)) fail('--hosts takes whole numbers 1..1000 (the fleet lives on 127.77.0-3.x)');
const reruns = Number(values.reruns);
const ansibleUpTo = Number(values['ansible-up-to']);
const ansibleForks = Number(values['ansible-forks']);
const timeoutS = Number(values.timeout);
if (![reruns, ansibleForks, timeoutS].every((n) => whole(n, 1)) || !whole(ansibleUpTo, 0)) fail('--reruns, --ansible-forks, --timeout take whole numbers >= 1');
if (values.only && values.only !== 'hostctl' && values.only !== 'ansible') fail('--only takes hostctl or ansible');
if (process.getuid?.() !== 0) fail('needs root (sshd runs as root, one per host)');
if (!existsSync(TIME)) fail(`${TIME} is missing: apt-get install time (or ./scripts/setup)`);
const tools: Tool[] = values.only ? [values.only as Tool] : ['hostctl', 'ansible'];

// A fresh machine's soft limit of 1,024 descriptors is too few for 1,000 connections: the
// runs get the hard limit (raising that needs more than root in a container).
const nofile = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 1024);

type Mode = 'first' | 'rerun';
interface Row {
  tool: Tool;
  hosts: number;
  forks: number;
  mode: Mode;
  ms: number;
  cpuS: number;
  maxRssKb: number;
  peakFds: number;
  connections: number;
  sshdCpuS: number;
  reached: number;
  changed: number;
  code: number;
  timedOut: boolean;
}

// Hosts that ended without failure or unreachability, and the changes reported.
function outcome(tool: Tool, stdout: string): { reached: number; changed: number } {
  if (tool === 'hostctl') {
    const recap = stdout.trim().split('\n').map((l) => { try { return JSON.parse(l) as { type?: string; hosts?: Record<string, { changed: number; failed: number; unreachable: boolean }> }; } catch { return {}; } }).find((e) => e.type === 'recap');
    const hosts = Object.values(recap?.hosts ?? {});
    return { reached: hosts.filter((h) => !h.unreachable && h.failed === 0).length, changed: hosts.reduce((n, h) => n + h.changed, 0) };
  }
  const recaps = [...stdout.matchAll(/^\S+\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
  return { reached: recaps.filter((m) => m[2] === '0' && m[3] === '0').length, changed: recaps.reduce((n, m) => n + Number(m[1]), 0) };
}

async function measure(fleet: Fleet, inventory: string, tool: Tool, hosts: number, mode: Mode): Promise<Row> {
  const forks = tool === 'hostctl' ? hosts : Math.min(hosts, ansibleForks);
  const [cmd, args]: [string, string[]] = tool === 'hostctl'
    ? ['node', [join(repo, 'bin', 'hostctl.js'), 'run', 'bench/scale/playbook.ts', '-i', inventory, '--known-hosts', fleet.knownHosts, '--forks', String(forks), '--json']]
    : ['ansible-playbook', ['bench/scale/ansible.yml', '-i', inventory, '--forks', String(forks)]];
  const env = tool === 'ansible' ? ansibleEnv(fleet.dir) : {};
  const timeFile = join(fleet.dir, 'time.txt');
  await rm(timeFile, { force: true });
  const connectionsBefore = await fleet.connections();
  const sshdBefore = fleet.cpuS();
  const r = await run('prlimit', [`--nofile=${nofile}`, '--', TIME, '-f', '%U %S %M', '-o', timeFile, cmd, ...args], env, timeoutS * 1000);
  const masters = tool === 'ansible' ? await closeMasters(fleet.dir) : { cpuS: 0, rssKb: 0 };
  const timedOut = r.ms >= timeoutS * 1000;
  const [user = 0, sys = 0, rss = 0] = existsSync(timeFile) ? readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) : [];
  const row: Row = {
    tool, hosts, forks, mode,
    ms: r.ms,
    cpuS: user + sys + masters.cpuS,
    maxRssKb: Math.max(rss, masters.rssKb),
    peakFds: r.peakTreeFds,
    connections: (await fleet.connections()) - connectionsBefore,
    sshdCpuS: fleet.cpuS() - sshdBefore,
    ...outcome(tool, r.stdout),
    code: r.code,
    timedOut,
  };
  log(`${tool} ${hosts} ${mode}: ${(row.ms / 1000).toFixed(1)} s, cpu ${row.cpuS.toFixed(2)} s, rss ${Math.round(row.maxRssKb / 1024)} MB, fds ${row.peakFds}, ${row.connections} connections, sshd cpu ${row.sshdCpuS.toFixed(1)} s, reached ${row.reached}/${hosts}, changed ${row.changed}, exit ${r.code}${timedOut ? ' (timed out)' : ''}, load ${os.loadavg()[0]!.toFixed(2)}`);
  if (r.code !== 0 && !timedOut) log((r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n'));
  return row;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function table(rows: Row[]): string {
  const out = [
    '| tool | hosts | forks | run | wall | controller CPU | CPU per host | peak RSS | RSS per host | peak fds | handshakes/s | sshd CPU per host | reached | changed | load (1 min) |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const tool of tools) {
    const mine = rows.filter((r) => r.tool === tool);
    const base = mine.find((r) => r.mode === 'rerun');
    for (const hosts of sizes) {
      for (const mode of ['first', 'rerun'] as Mode[]) {
        const rs = mine.filter((r) => r.hosts === hosts && r.mode === mode);
        if (!rs.length) continue;
        const pick = (f: (r: Row) => number) => median(rs.map(f));
        const ms = pick((r) => r.ms);
        const cpu = pick((r) => r.cpuS);
        const rss = Math.max(...rs.map((r) => r.maxRssKb));
        const growth = base && mode === 'rerun' && hosts > base.hosts ? `${((rss - Math.max(...mine.filter((r) => r.hosts === base.hosts && r.mode === 'rerun').map((r) => r.maxRssKb))) / 1024 / (hosts - base.hosts)).toFixed(3)} MB` : '–';
        const timedOut = rs.some((r) => r.timedOut);
        out.push(`| ${tool} | ${hosts} | ${rs[0]!.forks} | ${mode === 'first' ? 'first' : `converged, median of ${rs.length}`} | ${timedOut ? `> ${timeoutS} s (stopped)` : `${(ms / 1000).toFixed(1)} s`} | ${cpu.toFixed(2)} s | ${((cpu / hosts) * 1000).toFixed(1)} ms | ${Math.round(rss / 1024)} MB | ${growth} | ${Math.max(...rs.map((r) => r.peakFds))} | ${(pick((r) => r.connections) / (ms / 1000)).toFixed(0)} | ${((pick((r) => r.sshdCpuS) / hosts) * 1000).toFixed(0)} ms | ${Math.min(...rs.map((r) => r.reached))}/${hosts} | ${rs.map((r) => r.changed).join(',')} | ${(rs as Array<Row & { load?: number }>).map((r) => r.load?.toFixed(1)).join(', ')} |`);
      }
    }
  }
  return out.join('\n');
}

const footnotes = `Columns: wall from spawn to exit; controller CPU = user+sys of the command and all it
waited for (\`/usr/bin/time\`; Ansible: its workers and ssh clients, plus its ControlPersist
masters, read from /proc and closed after each run so every run connects afresh); peak RSS of
the largest process (GNU time \`%M\`; for Ansible each fork is its own process); RSS per host =
(peak RSS at N - peak RSS at the smallest N) / (N - smallest N), converged runs; peak fds =
open descriptors of the whole process tree, sampled every 100 ms; handshakes/s = TCP
connections the sshds accepted (their \`Connection from\` lines) / wall; sshd CPU = CPU of the
sshds and everything they forked (sessions, shells, the job's commands: the targets' side,
on the same 2 cores as the controller); reached = hosts that ended neither failed nor
unreachable (the JSON recap / PLAY RECAP); load = the 1-minute load average after the run.
Every sshd is a real OpenSSH server (\`/usr/sbin/sshd -D\`, its own host key and config,
\`UsePAM no\`, root, key authentication) on its own loopback address 127.77.x.y:22; both
tools verify host keys against the bench's known_hosts.`;

async function main(): Promise<void> {
  await mkdir(STATE, { recursive: true });
  const head = (await header(distStamp())).replace('# hostctl vs Ansible', '# Controller scale: one controller, N OpenSSH servers');
  const max = Math.max(...sizes);
  log(`starting ${max} sshds on 127.77.x.y:22`);
  const started = performance.now();
  const fleet = await startFleet(max, STATE, 3 * 3600);
  const upS = (performance.now() - started) / 1000;
  log(`${max} sshds up in ${upS.toFixed(1)} s`);
  const rows: Array<Row & { load: number }> = [];
  try {
    for (const hosts of sizes) {
      const inventory = join(STATE, `inventory-${hosts}.yml`);
      await writeInventory({ ...fleet, endpoints: fleet.endpoints.slice(0, hosts) }, inventory);
      for (const tool of tools) {
        if (tool === 'ansible' && hosts > ansibleUpTo) continue;
        // Every tool's first run starts from hosts the job never touched.
        await Promise.all(fleet.endpoints.map((e) => rm(e.root, { recursive: true, force: true })));
        const modes: Mode[] = ['first', ...Array<Mode>(reruns).fill('rerun')];
        for (const mode of modes) {
          const row = await measure(fleet, inventory, tool, hosts, mode);
          rows.push({ ...row, load: os.loadavg()[0]! });
          if (row.timedOut) break;
        }
      }
    }
  } finally {
    await fleet.stop();
  }
  const report = `${head}\n- open files limit of the runs: ${nofile}\n- sshds: ${max}, started in ${upS.toFixed(0)} s; load at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n\n${table(rows)}\n\n${footnotes}\n`;
  process.stdout.write(report);
  if (values.out) await writeFile(values.out, report);
}

await main();
