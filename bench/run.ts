// hostctl and Ansible side by side on fresh lab targets: the same jobs, timed, with their SSH
// sessions counted by the targets' own sshd and their controller CPU and memory measured.
// Run it through bench/run (see bench/README.md); it prints a markdown report on stdout and
// its progress on stderr, and tears its labs down at the end, also after a failure or Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { labConfig, labDown, labImages, labUp, sshRun } from '../src/lab/index.js';

const repo = fileURLToPath(new URL('../', import.meta.url));
const STATE = '/var/tmp/hostctl-bench';
const TIME = '/usr/bin/time';
const CLK_TCK = 100;

type Tool = 'hostctl' | 'ansible';
type Mode = 'first' | 'rerun' | 'check';

const usage = `Usage: bench/run [options]

Boots fresh lab targets (10.230.x.0/24, bridges hlbench1-4, state in ${STATE}), runs the same
jobs with hostctl and with Ansible (bench/ansible/), prints a markdown report, and removes
the labs again. Needs root and ./scripts/setup's packages (ansible-core, time).

  --only hostctl|ansible   run one tool only (no ratios, no file comparison)
  --hosts 1|6|1,6          scenarios: 1 = the authentik job on one host,
                           6 = test/fixtures/e2e (files + unit) on six hosts (default 1,6)
  --reruns N               converged re-runs per tool, the median is reported (default 5)
  --checks N               --check runs on the converged hosts (default 3)
  --out FILE               also write the report to FILE
  -h, --help               this text
`;

// ---------------------------------------------------------------------------------------
// Options

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    hosts: { type: 'string', default: '1,6' },
    reruns: { type: 'string', default: '5' },
    checks: { type: 'string', default: '3' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(5);
};
if (values.only && values.only !== 'hostctl' && values.only !== 'ansible') fail('--only takes hostctl or ansible');
const tools: Tool[] = values.only ? [values.only as Tool] : ['hostctl', 'ansible'];
const hostCounts = values.hosts.split(',').map((s) => Number(s.trim()));
if (hostCounts.some((n) => n !== 1 && n !== 6)) fail('--hosts takes 1, 6 or 1,6');
const reruns = Number(values.reruns);
const checks = Number(values.checks);
if (!(Number.isInteger(reruns) && reruns >= 1) || !(Number.isInteger(checks) && checks >= 0)) fail('--reruns needs N >= 1, --checks N >= 0');
if (process.getuid?.() !== 0) fail('needs root (the lab boots containers)');
if (!existsSync(TIME)) fail(`${TIME} is missing: apt-get install time (or ./scripts/setup)`);
if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) fail('the CLI is not built: npm run build');

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

// ---------------------------------------------------------------------------------------
// Scenarios: one lab per tool, so each tool gets its own fresh targets with the same names.

interface LabSpec {
  tool: Tool;
  stateDir: string;
  bridge: string;
  subnet: string;
}

interface Scenario {
  hosts: 1 | 6;
  title: string;
  names: string[];
  images: boolean;
  // What the job installs with apt: fetched through the apt relay before the first runs, so
  // neither tool's first run pays for a cold relay cache.
  packages: string[];
  labs: Record<Tool, LabSpec>;
  command(tool: Tool, inventory: string, mode: Mode): [string, string[]];
  // Files both tools manage, compared by sha256, mode and owner after the runs.
  files: string[];
}

const authentikVersion = String((parseYaml(readFileSync(join(repo, 'inventory/host_vars/authentik/vars.yml'), 'utf8')) as Record<string, unknown>).authentik_version);

const labSpec = (tool: Tool, n: number): LabSpec => ({ tool, stateDir: join(STATE, `lab${n}`), bridge: `hlbench${n}`, subnet: `10.230.${n}.0/24` });

const hostctlBin = join(repo, 'bin', 'hostctl.js');
const ansibleEnv = (stateDir: string): Record<string, string> => ({
  ANSIBLE_CONFIG: join(repo, 'bench', 'ansible', 'ansible.cfg'),
  ANSIBLE_SSH_CONTROL_PATH_DIR: join(stateDir, 'cp'),
  // The lab pins each target's host key in its known_hosts; only the lab key is offered.
  ANSIBLE_SSH_COMMON_ARGS: `-o UserKnownHostsFile=${join(stateDir, 'known_hosts')} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
  ANSIBLE_LOCAL_TEMP: join(stateDir, 'ansible-tmp'),
  ANSIBLE_NOCOLOR: '1',
});

const scenarios: Record<1 | 6, Scenario> = {
  1: {
    hosts: 1,
    title: '1 host: the authentik job',
    names: ['authentik'],
    images: true,
    packages: ['ca-certificates', 'curl', 'unattended-upgrades', 'apt-listchanges', 'less', 'openssh-server', 'sudo', 'podman', 'crun', 'netavark', 'aardvark-dns', 'passt'],
    labs: { hostctl: labSpec('hostctl', 1), ansible: labSpec('ansible', 2) },
    command(tool, inventory, mode) {
      const common = ['-i', 'inventory', '-i', inventory, '-e', '@lab/authentik.yml', '--vault-password-file', 'lab/vault-password', ...(mode === 'check' ? ['--check'] : [])];
      return tool === 'hostctl'
        ? ['node', [hostctlBin, 'run', 'playbooks/authentik.ts', ...common, '--json']]
        : ['ansible-playbook', ['bench/ansible/authentik.yml', ...common]];
    },
    files: [
      '/srv/authentik/.env',
      '/etc/containers/systemd/authentik-internal.network',
      '/etc/containers/systemd/authentik-postgresql.container',
      '/etc/containers/systemd/authentik-server.container',
      '/etc/containers/systemd/authentik-worker.container',
      '/etc/apt/apt.conf.d/20auto-upgrades',
      '/etc/systemd/journald.conf.d/50-hostctl.conf',
      '/etc/sysctl.d/60-hostctl-common.conf',
      '/etc/ssh/sshd_config.d/50-hostctl.conf',
      '/etc/sudoers.d/90-hostctl-admin',
      '/home/admin/.ssh/authorized_keys',
      '/usr/local/libexec/hostctl/netavark-dnat-cleanup',
      '/usr/local/libexec/hostctl/authentik-backup',
      '/usr/local/libexec/hostctl/authentik-restore',
      '/etc/systemd/system/authentik-backup.service',
      '/etc/systemd/system/authentik-backup.timer',
      '/srv/authentik', '/srv/authentik/database', '/srv/authentik/media', '/srv/authentik/certs',
      '/srv/authentik/custom-templates', '/srv/authentik/backup', '/home/admin/.ssh',
    ],
  },
  6: {
    hosts: 6,
    title: '6 hosts: files, a package and a unit (test/fixtures/e2e)',
    names: ['lab1', 'lab2', 'lab3', 'lab4', 'lab5', 'lab6'],
    images: false,
    packages: ['hello'],
    labs: { hostctl: labSpec('hostctl', 3), ansible: labSpec('ansible', 4) },
    command(tool, inventory, mode) {
      const check = mode === 'check' ? ['--check'] : [];
      return tool === 'hostctl'
        ? ['node', [hostctlBin, 'run', 'test/fixtures/e2e/playbook.ts', '-i', inventory, ...check, '--json']]
        : ['ansible-playbook', ['bench/ansible/demo.yml', '-i', inventory, ...check]];
    },
    files: ['/srv/demo/index.html', '/etc/systemd/system/hostctl-demo.service', '/srv/demo'],
  },
};

// ---------------------------------------------------------------------------------------
// Processes

// The running child's process group, killed on Ctrl-C before the labs go down.
let running: number | undefined;

interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  peakTreeRssKb: number;
}

// Descendants of pid (itself included), through /proc/<pid>/task/<tid>/children.
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

const rssKb = (pid: number): number => {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

// A child in its own process group; while it runs, the RSS of its whole tree is summed every
// 100 ms (pages that forked workers share with their parent count once per process: an upper
// bound; GNU time's maximum RSS of the largest process is the lower one).
function run(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 1_800_000): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: repo, env: { ...process.env, NO_COLOR: '1', ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running = child.pid;
    let stdout = '';
    let stderr = '';
    let peakTreeRssKb = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sampler = setInterval(() => {
      if (child.pid === undefined) return;
      const total = processTree(child.pid).reduce((sum, p) => sum + rssKb(p), 0);
      peakTreeRssKb = Math.max(peakTreeRssKb, total);
    }, 100);
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGTERM'), timeoutMs);
    child.on('error', (e) => {
      clearInterval(sampler);
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      running = undefined;
      resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - started, peakTreeRssKb });
    });
  });
}

async function output(file: string, args: string[]): Promise<string> {
  const r = await run(file, args, {}, 60_000).catch(() => undefined);
  return r && r.code === 0 ? r.stdout.trim() : '';
}

// ---------------------------------------------------------------------------------------
// Labs

interface Target {
  name: string;
  address: string;
}

interface LiveLab {
  spec: LabSpec;
  inventory: string;
  targets: Target[];
  sh(target: string, command: string): Promise<string>;
}

const started: LabSpec[] = [];

async function bringUp(spec: LabSpec, names: string[]): Promise<LiveLab> {
  // A bench killed hard leaves its lab behind: remove it before booting fresh targets.
  await labDown({ stateDir: spec.stateDir, bridge: spec.bridge }).catch(() => {});
  started.push(spec);
  const lab = await labUp({ names, subnet: spec.subnet, bridge: spec.bridge, stateDir: spec.stateDir });
  const config = (await labConfig({ stateDir: spec.stateDir }))!;
  const sh = async (target: string, command: string) => {
    const t = config.targets.find((x) => x.name === target)!;
    const r = await sshRun(config, t, command, 120_000);
    if (r.code !== 0) throw new Error(`${spec.bridge}/${target}: \`${command.slice(0, 80)}\` exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  // sshd logs one "Starting session:" line per session (exec or sftp) at LogLevel VERBOSE:
  // the meter both tools are read with.
  await Promise.all(names.map((n) => sh(n, 'echo "LogLevel VERBOSE" >/etc/ssh/sshd_config.d/00-hostctl-bench.conf && systemctl reload ssh.service')));
  return { spec, inventory: lab.inventoryPath, targets: lab.targets.map((t) => ({ name: t.name, address: t.address })), sh };
}

// Downloads the packages through the relay and leaves the target's apt state as it was
// (package lists put back, downloaded .debs removed): the target stays fresh.
const warmRelay = (packages: string[]) => `set -e
keep=$(mktemp -d); cp -a /var/lib/apt/lists "$keep/"
trap 'apt-get clean; rm -rf /var/lib/apt/lists; mv "$keep/lists" /var/lib/apt/lists; rmdir "$keep"' EXIT
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only ${packages.join(' ')} >/dev/null`;

let leftovers = false;
let tearing: Promise<void> = Promise.resolve();
// Every caller (a scenario's end, Ctrl-C, a crash) waits for the same teardown, so the
// process never exits while a `lab down` is still running.
function tearDown(): Promise<void> {
  tearing = tearing.then(async () => {
    for (const spec of started.splice(0).reverse()) {
      log(`removing lab ${spec.bridge}`);
      await labDown({ stateDir: spec.stateDir, bridge: spec.bridge }).catch((e: Error) => {
        leftovers = true;
        log(`lab down ${spec.bridge}: ${e.message}`);
      });
    }
  });
  return tearing;
}

const cursorOf = (lab: LiveLab, target: string) =>
  lab.sh(target, `p=\${SSH_CLIENT#* }; p=\${p%% *}
for i in $(seq 200); do journalctl -q -n 20 -o cat | grep -q "^Starting session: .* port $p id" && break; sleep 0.05; done
journalctl -q -n 0 --show-cursor`).then((s) => /-- cursor: (\S+)/.exec(s)?.[1] ?? '');

// Sessions and connections sshd logged since the cursor, without this probe's own: it waits
// until its own session line is in the journal, so every earlier line is too.
async function sshdCounts(lab: LiveLab, target: string, cursor: string): Promise<{ sessions: number; connections: number }> {
  const c = `--after-cursor='${cursor}'`;
  const out = await lab.sh(target, `p=\${SSH_CLIENT#* }; p=\${p%% *}
for i in $(seq 200); do journalctl -q ${c} -o cat | grep -q "^Starting session: .* port $p id" && break; sleep 0.05; done
journalctl -q ${c} -o cat | grep -c '^Starting session: ' || true
journalctl -q ${c} -o cat | grep -c '^Connection from ' || true`);
  const [sessions = 0, connections = 0] = out.trim().split('\n').map(Number);
  return { sessions: sessions - 1, connections: connections - 1 };
}

// ---------------------------------------------------------------------------------------
// One measured run

interface Measured {
  tool: Tool;
  mode: Mode;
  ms: number;
  cpuS: number;
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
async function closeMasters(stateDir: string): Promise<{ cpuS: number; rssKb: number }> {
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

async function measure(s: Scenario, lab: LiveLab, mode: Mode): Promise<Measured> {
  const tool = lab.spec.tool;
  const cursors = await Promise.all(lab.targets.map((t) => cursorOf(lab, t.name)));
  const [cmd, args] = s.command(tool, lab.inventory, mode);
  const timeFile = join(lab.spec.stateDir, 'time.txt');
  const env = tool === 'ansible' ? ansibleEnv(lab.spec.stateDir) : {};
  const r = await run(TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], env);
  const masters = tool === 'ansible' ? await closeMasters(lab.spec.stateDir) : { cpuS: 0, rssKb: 0 };
  const [user = 0, sys = 0, rss = 0] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  const counts = await Promise.all(lab.targets.map((t, i) => sshdCounts(lab, t.name, cursors[i]!)));
  const m: Measured = {
    tool,
    mode,
    ms: r.ms,
    cpuS: user + sys + masters.cpuS,
    maxRssKb: Math.max(rss, masters.rssKb),
    peakTreeRssKb: r.peakTreeRssKb,
    sessions: counts.reduce((n, c) => n + c.sessions, 0),
    connections: counts.reduce((n, c) => n + c.connections, 0),
    ...(tool === 'hostctl' ? { roundTrips: roundTripsOf(r.stdout) } : {}),
    changed: changedCount(tool, r.stdout),
    ok: r.code === 0,
  };
  const label = `${tool} ${mode}`.padEnd(16);
  log(`${label} ${(m.ms / 1000).toFixed(2)} s, cpu ${m.cpuS.toFixed(2)} s${tool === 'ansible' ? ` (ssh master ${masters.cpuS.toFixed(2)} s)` : ''}, ${m.sessions} sessions / ${m.connections} connections${m.roundTrips !== undefined ? ` (roundTrips ${m.roundTrips})` : ''}, changed=${m.changed}, exit ${r.code}`);
  if (!m.ok) {
    const tail = (r.stdout + r.stderr).trim().split('\n').slice(-25).join('\n');
    throw new Error(`${tool} ${mode} run failed (exit ${r.code}):\n${tail}`);
  }
  return m;
}

// ---------------------------------------------------------------------------------------
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

interface Comparison {
  same: string[];
  differ: { target: string; path: string; hostctl: string; ansible: string }[];
}

async function compareFiles(s: Scenario, labs: Record<Tool, LiveLab>): Promise<Comparison> {
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

// ---------------------------------------------------------------------------------------
// The report

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const secs = (ms: number) => (ms >= 10_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(2));
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;
const ratio = (a: number | undefined, h: number | undefined) => (a !== undefined && h ? `${(a / h).toFixed(a / h >= 10 ? 0 : 1)}×` : '');

interface ScenarioResult {
  scenario: Scenario;
  runs: Partial<Record<Tool, Measured[]>>;
  comparison?: Comparison;
  error?: string;
}

function table(r: ScenarioResult): string {
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

function comparisonText(c: Comparison | undefined): string {
  if (!c) return '';
  const lines = [`**Same files?** Compared sha256, mode and owner on every target pair (hostctl's vs Ansible's):`];
  if (c.same.length) lines.push(`identical: ${c.same.map((p) => `\`${p}\``).join(', ')}.`);
  if (c.differ.length) {
    lines.push('', '| target | path | hostctl | Ansible |', '|---|---|---|---|');
    for (const d of c.differ) lines.push(`| ${d.target} | \`${d.path}\` | ${d.hostctl} | ${d.ansible} |`);
  } else lines.push('No differences.');
  return lines.join('\n');
}

const footnotes = `
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
function distStamp(): number {
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
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
const distAtStart = distStamp();

async function header(): Promise<string> {
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

// ---------------------------------------------------------------------------------------
// Main

async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const result: ScenarioResult = { scenario: s, runs: {} };
  try {
    log(`${s.title}: lab up (${tools.map((t) => s.labs[t].bridge).join(', ')})`);
    const labs = {} as Record<Tool, LiveLab>;
    for (const t of tools) labs[t] = await bringUp(s.labs[t], s.names);
    if (s.images) {
      log(`${s.title}: lab images (authentik ${authentikVersion}, Postgres 17, Redis)`);
      await Promise.all(tools.map((t) => labImages({ stateDir: s.labs[t].stateDir }, { authentikTags: [authentikVersion], postgresMajors: [17] })));
    }
    log(`${s.title}: warming the apt relay (${s.packages.join(' ')})`);
    for (const t of tools) await labs[t].sh(s.names[0]!, warmRelay(s.packages));
    const record = async (t: Tool, mode: Mode) => {
      const m = await measure(s, labs[t], mode);
      (result.runs[t] ??= []).push(m);
    };
    for (const t of tools) await record(t, 'first');
    for (let i = 0; i < reruns; i++) for (const t of tools) await record(t, 'rerun');
    for (let i = 0; i < checks; i++) for (const t of tools) await record(t, 'check');
    if (tools.length === 2) result.comparison = await compareFiles(s, labs);
  } catch (error) {
    result.error = (error as Error).stack ?? String(error);
    if (!interrupted) log(`${s.title}: FAILED: ${result.error}`);
  } finally {
    await tearDown();
  }
  return result;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping, removing the labs`);
    if (running) {
      try {
        process.kill(-running, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    void tearDown().finally(() => {
      if (!leftovers) void rm(STATE, { recursive: true, force: true }).finally(() => process.exit(130));
      else process.exit(130);
    });
  });
}

async function main(): Promise<number> {
  await mkdir(STATE, { recursive: true });
  const head = await header();
  const results: ScenarioResult[] = [];
  for (const n of hostCounts) {
    if (interrupted) break;
    results.push(await runScenario(scenarios[n as 1 | 6]));
  }
  if (interrupted) return 130;
  const parts = [head];
  for (const r of results) {
    const cmd = r.scenario.hosts === 1
      ? '`playbooks/authentik.ts` vs `bench/ansible/authentik.yml`, `-e @lab/authentik.yml`, the vault of `inventory/`'
      : '`test/fixtures/e2e/playbook.ts` vs `bench/ansible/demo.yml`';
    parts.push(`## ${r.scenario.title}\n\n${cmd}\n\n${table(r)}`);
    if (r.error) parts.push(`**This scenario failed:**\n\n\`\`\`\n${r.error.split('\n').slice(0, 30).join('\n')}\n\`\`\``);
    if (r.comparison) parts.push(comparisonText(r.comparison));
    for (const t of tools) {
      const first = r.runs[t]?.find((m) => m.mode === 'first');
      const notConverged = (r.runs[t] ?? []).filter((m) => m.mode !== 'first' && m.changed !== 0);
      if (first && notConverged.length) parts.push(`**Warning:** ${t} reported changes on a converged host (${notConverged.map((m) => `${m.mode} changed=${m.changed}`).join(', ')}).`);
    }
  }
  parts.push(footnotes);
  parts[0] += `\n- load at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
  const distAtEnd = distStamp();
  if (distAtEnd !== distAtStart) parts[0] += `\n- **dist/ was rebuilt during the bench (${isoSeconds(distAtEnd)}): later hostctl runs used other code than earlier ones**`;
  const report = `${parts.join('\n\n')}\n`;
  process.stdout.write(report);
  if (values.out) await writeFile(values.out, report);
  await tearDown();
  // The state dirs record what a failed `lab down` left behind: kept then, for a second try.
  if (!leftovers && !interrupted) await rm(STATE, { recursive: true, force: true }).catch(() => {});
  return results.some((r) => r.error) ? 1 : 0;
}

// After Ctrl-C the signal handler exits, once the labs are down.
main().then(
  (code) => {
    if (!interrupted) process.exit(code);
  },
  async (error: Error) => {
    log(error.stack ?? String(error));
    await tearDown();
    if (!interrupted) process.exit(1);
  },
);
