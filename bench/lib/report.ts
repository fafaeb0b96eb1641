import { readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Comparison, Measured } from './measure.js';
import { output, run } from './process.js';
import { repo, type Mode, type Scenario, type Tool } from './scenarios.js';

// The markdown report: the machine and versions, one table per scenario, the file comparison
// and the footnotes that say how each figure was measured.

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const secs = (ms: number) => (ms >= 10_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(2));
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;
const ratio = (a: number | undefined, h: number | undefined) => (a !== undefined && h ? `${(a / h).toFixed(a / h >= 10 ? 0 : 1)}×` : '');

export interface ScenarioResult {
  scenario: Scenario;
  runs: Partial<Record<Tool, Measured[]>>;
  comparison?: Comparison;
  error?: string;
}

export function table(r: ScenarioResult, tools: Tool[]): string {
  const s = r.scenario;
  const of = (tool: Tool, mode: Mode) => (r.runs[tool] ?? []).filter((m) => m.mode === mode);
  const cols = tools;
  const head = `| | ${cols.map((t) => (t === 'hostctl' ? 'hostctl' : 'Ansible')).join(' | ')} |${cols.length === 2 ? ' Ansible ÷ hostctl |' : ''}`;
  const sep = `|---|${cols.map(() => '---:').join('|')}|${cols.length === 2 ? '---:|' : ''}`;
  const rows: string[] = [];
  const row = (label: string, pick: (tool: Tool) => number | undefined, fmt: (v: number) => string, withRatio = true, extra?: (tool: Tool) => string) => {
    const v = cols.map((t) => pick(t));
    if (v.every((x) => x === undefined)) return;
    const cells = cols.map((t, i) => (v[i] === undefined ? '–' : fmt(v[i]!) + (extra ? extra(t) : '')));
    rows.push(`| ${label} | ${cells.join(' | ')} |${cols.length === 2 ? ` ${withRatio ? ratio(v[1], v[0]) : ''} |` : ''}`);
  };
  const med = (tool: Tool, mode: Mode, f: (m: Measured) => number | undefined) => {
    const xs = of(tool, mode).map(f).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const span = (tool: Tool, mode: Mode) => {
    const xs = of(tool, mode).map((m) => m.ms);
    return xs.length > 1 ? ` (${secs(Math.min(...xs))}–${secs(Math.max(...xs))})` : '';
  };
  const n = s.hosts;
  const perHost = (v: number) => (n > 1 ? `${v} (${+(v / n).toFixed(1)}/host)` : String(v));
  const nRe = Math.max(0, ...cols.map((t) => of(t, 'rerun').length));
  const nCheck = Math.max(0, ...cols.map((t) => of(t, 'check').length));

  row('first run, fresh target(s): wall', (t) => med(t, 'first', (m) => m.ms), (v) => `${secs(v)} s`);
  row(`converged re-run: wall, median of ${nRe} (min–max)`, (t) => med(t, 'rerun', (m) => m.ms), (v) => `${secs(v)} s`, true, (t) => span(t, 'rerun'));
  if (nCheck) row(`\`--check\` on converged: wall, median of ${nCheck}${nCheck > 1 ? ' (min–max)' : ''}`, (t) => med(t, 'check', (m) => m.ms), (v) => `${secs(v)} s`, true, (t) => span(t, 'check'));
  const targetCpu = (v: number) => `${v.toFixed(2)} s${n > 1 ? ` (${((v / n) * 1000).toFixed(0)} ms/host)` : ''}`;
  row('targets\' CPU⁵ (all targets): first run', (t) => med(t, 'first', (m) => m.targetCpuS), targetCpu);
  row('targets\' CPU⁵ (all targets): converged re-run, median', (t) => med(t, 'rerun', (m) => m.targetCpuS), targetCpu);
  row('SSH sessions¹: first run', (t) => med(t, 'first', (m) => m.sessions), perHost);
  row('SSH sessions¹: converged re-run', (t) => med(t, 'rerun', (m) => m.sessions), perHost);
  if (nCheck) row('SSH sessions¹: `--check`', (t) => med(t, 'check', (m) => m.sessions), perHost);
  row('hostctl `roundTrips`²: first / re-run / check', (t) => (t === 'hostctl' ? med(t, 'first', (m) => m.roundTrips) : undefined), (v) =>
    [v, med('hostctl', 'rerun', (m) => m.roundTrips), nCheck ? med('hostctl', 'check', (m) => m.roundTrips) : undefined].filter((x) => x !== undefined).join(' / '), false);
  row('SSH connections per run (re-run)', (t) => med(t, 'rerun', (m) => m.connections), perHost, false);
  row('controller CPU³ (user+sys): first run', (t) => med(t, 'first', (m) => m.cpuS), (v) => `${v.toFixed(2)} s`);
  row('controller CPU³ (user+sys): re-run, median', (t) => med(t, 'rerun', (m) => m.cpuS), (v) => `${v.toFixed(2)} s`);
  if (nCheck) row('controller CPU³ (user+sys): `--check`, median', (t) => med(t, 'check', (m) => m.cpuS), (v) => `${v.toFixed(2)} s`);
  const maxOf = (tool: Tool, f: (m: Measured) => number) => (of(tool, 'rerun').length ? Math.max(...of(tool, 'rerun').map(f)) : undefined);
  row('peak RSS⁴, largest process (re-run, max)', (t) => maxOf(t, (m) => m.maxRssKb), mb);
  row('peak RSS⁴ summed over the process tree (re-run, max)', (t) => maxOf(t, (m) => m.peakTreeRssKb), mb);
  const changed = (t: Tool) => {
    const f = of(t, 'first').map((m) => m.changed).join(',');
    const re = of(t, 'rerun').map((m) => m.changed).join(',');
    const ch = of(t, 'check').map((m) => m.changed).join(',');
    return `${f} / ${re}${nCheck ? ` / ${ch}` : ''}`;
  };
  if (cols.some((t) => of(t, 'first').length)) {
    rows.push(`| changed: first / re-runs${nCheck ? ' / checks' : ''} | ${cols.map(changed).join(' | ')} |${cols.length === 2 ? ' |' : ''}`);
  }
  return [head, sep, ...rows].join('\n');
}

export function comparisonText(c: Comparison | undefined): string {
  if (!c) return '';
  const lines = [`**Same files?** Compared sha256, mode and owner on every target pair (hostctl's vs Ansible's):`];
  if (c.same.length) lines.push(`identical: ${c.same.map((p) => `\`${p}\``).join(', ')}.`);
  if (c.differ.length) {
    lines.push('', '| target | path | hostctl | Ansible |', '|---|---|---|---|');
    for (const d of c.differ) lines.push(`| ${d.target} | \`${d.path}\` | ${d.hostctl} | ${d.ansible} |`);
  } else lines.push('No differences.');
  return lines.join('\n');
}

export const footnotes = `
¹ Counted on the target, the same way for both tools: sshd runs at \`LogLevel VERBOSE\`
(a drop-in the bench adds) and logs one \`Starting session:\` line per session channel it
opens, an exec or an sftp transfer; the bench counts those between two journal cursors,
minus its own probe. Each session is at least one network round trip (channel open, request,
exit status); an sftp transfer is counted once although it takes several. Ansible runs one
session per module run (pipelining on), plus an sftp transfer and temp-dir commands for
\`template\`/\`copy\`; hostctl runs every command and upload as one exec channel. The lab's
link is a local veth (well under 1 ms): over a real network each session costs at least one
more round-trip time, so these counts say how the gap grows with latency.
² The \`roundTrips\` field of hostctl's \`host-end\` JSON events (commands and uploads its
connection made), summed over hosts; it should equal the sshd count.
³ \`/usr/bin/time -f '%U %S %M'\` around the command: user+sys CPU of the command and every
descendant it waited for (hostctl: node; Ansible: ansible-playbook, its forked workers,
ssh clients), plus, for Ansible, the CPU of its ControlPersist ssh master(s), which detach
from the run (read from /proc, then closed: every run connects afresh, as hostctl does, as
after a minute's pause or in cron).
⁴ Largest process: GNU time's maximum resident set of the largest single process in the
tree (\`%M\`; for Ansible also its ssh master). Summed: the RSS of every process of the tree,
sampled every 100 ms; pages Ansible's forked workers share with their parent count once per
process there, so the truth for Ansible lies between the two rows (hostctl is one process).
⁵ CPU the targets spent while the command ran, summed over every target's cgroup
(\`usage_usec\` of cgroup v2's \`cpu.stat\`): sshd, the shells and commands each tool starts,
apt. The targets run on the same cores as the controller: when targets' CPU + controller CPU
approach wall × cores, the machine, not the tool, sets the wall time.

Each tool runs on its own fresh lab targets (same names, same Debian 13 rootfs; for the
authentik job podman and the lab's images are installed by \`lab images\` beforehand on
both); the packages the job installs are fetched through the lab's apt relay once before
the first runs (each target's apt state is put back), so neither tool pays for a cold
cache; the first runs go hostctl first, then runs alternate between the tools, so
background load falls on both. Wall time
is the command's, from spawn to exit. hostctl runs as \`node bin/hostctl.js\` (the compiled
CLI; \`npx\` would add ~0.4 s) with \`--json\`; Ansible with bench/ansible/ansible.cfg
(pipelining, ControlPersist 60s, forks 6, \`gathering = explicit\`, a fixed interpreter,
the default callback, strategy linear: \`free\` was no faster here).`;

// The newest file of dist/: another build during the bench means later hostctl runs used
// different code than earlier ones.
export function distStamp(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.js')) newest = Math.max(newest, statSync(join(dir, e.name)).mtimeMs);
    }
  };
  walk(join(repo, 'dist'));
  return newest;
}
export const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

export async function header(distAtStart: number): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
  const sha = await output('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']);
  const dirty = (await output('git', ['-C', repo, 'status', '--porcelain', '--', 'src', 'roles', 'playbooks'])) !== '';
  const ansible = (await output('ansible-playbook', ['--version'])).split('\n')[0]?.replace(/^ansible-playbook /, '') ?? '';
  const python = await output('python3', ['--version']);
  const sshV = await run('ssh', ['-V'], {}, 10_000).then((r) => r.stderr.trim().split(',')[0]);
  return [
    `# hostctl vs Ansible`,
    '',
    `- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- machine: ${cpu}, ${os.availableParallelism()} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB memory, Linux ${os.release()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`,
    `- hostctl ${pkg.version} (git ${sha}${dirty ? ', with uncommitted changes in src/roles/playbooks' : ''}; dist built ${isoSeconds(distAtStart)}), node ${process.version}`,
    `- ansible-core ${ansible.replace(/^\[core (.*)\]$/, '$1')}, ${python}, ${sshV}`,
  ].join('\n');
}
