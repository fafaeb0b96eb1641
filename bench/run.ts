// hostctl and Ansible side by side on fresh lab targets: the same jobs, timed, with their SSH
// sessions counted by the targets' own sshd and their controller CPU and memory measured.
// Run it through bench/run (see bench/README.md); it prints a markdown report on stdout and
// its progress on stderr, and tears its labs down at the end, also after a failure or Ctrl-C.
// This file is the command: its options and the order of things; bench/lib/ holds the rest.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { labImages } from '../src/lab/index.js';
import { bringUp, labsLeftOver, tearDown, warmRelay, type LiveLab } from './lib/labs.js';
import { compareFiles, measure, TIME } from './lib/measure.js';
import { log, runningGroup } from './lib/process.js';
import { comparisonText, distStamp, footnotes, header, isoSeconds, table, type ScenarioResult } from './lib/report.js';
import { authentikVersion, MAX_HOSTS, repo, scenarioFor, STATE, type Mode, type Scenario, type Tool } from './lib/scenarios.js';

const usage = `Usage: bench/run [options]

Boots fresh lab targets (10.230.x.0/24, bridges hlbench1-4, state in ${STATE}), runs the same
jobs with hostctl and with Ansible (bench/ansible/), prints a markdown report, and removes
the labs again. Needs root and ./scripts/setup's packages (ansible-core, time).

  --only hostctl|ansible   run one tool only (no ratios, no file comparison)
  --hosts N[,N...]         scenarios: 1 = the authentik job on one host, N > 1 =
                           test/fixtures/e2e (files + package + unit) on N hosts, forks = N
                           for both tools (default 1,6; up to ${MAX_HOSTS})
  --reruns N               converged re-runs per tool, the median is reported (default 5)
  --checks N               --check runs on the converged hosts (default 3)
  --out FILE               also write the report to FILE
  -h, --help               this text
`;

interface Options {
  tools: Tool[];
  hostCounts: number[];
  reruns: number;
  checks: number;
  out: string | undefined;
}

const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(5);
};

function parseOptions(): Options {
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
  if (values.only && values.only !== 'hostctl' && values.only !== 'ansible') fail('--only takes hostctl or ansible');
  const hostCounts = values.hosts.split(',').map((s) => Number(s.trim()));
  if (hostCounts.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_HOSTS)) fail(`--hosts takes whole numbers 1..${MAX_HOSTS}, comma-separated (1,6,20)`);
  const reruns = Number(values.reruns);
  const checks = Number(values.checks);
  if (!(Number.isInteger(reruns) && reruns >= 1) || !(Number.isInteger(checks) && checks >= 0)) fail('--reruns needs N >= 1, --checks N >= 0');
  if (process.getuid?.() !== 0) fail('needs root (the lab boots containers)');
  if (!existsSync(TIME)) fail(`${TIME} is missing: apt-get install time (or ./scripts/setup)`);
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) fail('the CLI is not built: npm run build');
  return {
    tools: values.only ? [values.only as Tool] : ['hostctl', 'ansible'],
    hostCounts,
    reruns,
    checks,
    out: values.out,
  };
}

const options = parseOptions();
const { tools } = options;
const distAtStart = distStamp();
let interrupted = false;

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
    for (let i = 0; i < options.reruns; i++) for (const t of tools) await record(t, 'rerun');
    for (let i = 0; i < options.checks; i++) for (const t of tools) await record(t, 'check');
    if (tools.length === 2) result.comparison = await compareFiles(s, labs);
  } catch (error) {
    result.error = (error as Error).stack ?? String(error);
    if (!interrupted) log(`${s.title}: FAILED: ${result.error}`);
  } finally {
    await tearDown();
  }
  return result;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping, removing the labs`);
    const running = runningGroup();
    if (running) {
      try {
        process.kill(-running, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    void tearDown().finally(() => {
      if (!labsLeftOver()) void rm(STATE, { recursive: true, force: true }).finally(() => process.exit(130));
      else process.exit(130);
    });
  });
}

async function main(): Promise<number> {
  await mkdir(STATE, { recursive: true });
  const head = await header(distAtStart);
  const results: ScenarioResult[] = [];
  for (const n of options.hostCounts) {
    if (interrupted) break;
    results.push(await runScenario(scenarioFor(n)));
  }
  if (interrupted) return 130;
  const parts = [head];
  for (const r of results) {
    const cmd = r.scenario.hosts === 1
      ? '`playbooks/authentik.ts` vs `bench/ansible/authentik.yml`, `-e @lab/authentik.yml`, the vault of `inventory/`'
      : '`test/fixtures/e2e/playbook.ts` vs `bench/ansible/demo.yml`';
    parts.push(`## ${r.scenario.title}\n\n${cmd}\n\n${table(r, tools)}`);
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
  if (options.out) await writeFile(options.out, report);
  await tearDown();
  // The state dirs record what a failed `lab down` left behind: kept then, for a second try.
  if (!labsLeftOver() && !interrupted) await rm(STATE, { recursive: true, force: true }).catch(() => {});
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
