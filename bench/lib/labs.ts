import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labConfig, labDown, labUp, sshRun } from '../../src/lab/index.js';
import { targetCgroups } from '../../src/lab/cgroup.js';
import { log } from './process.js';
import type { LabSpec } from './scenarios.js';

// The bench's labs: booted fresh, their sshd made to log every session (the meter both tools
// are read with), and torn down once, whoever asks first.

export interface Target {
  name: string;
  address: string;
}

export interface LiveLab {
  spec: LabSpec;
  inventory: string;
  targets: Target[];
  sh(target: string, command: string): Promise<string>;
}

const started: LabSpec[] = [];

export async function bringUp(spec: LabSpec, names: string[]): Promise<LiveLab> {
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
export const warmRelay = (packages: string[]) => `set -e
keep=$(mktemp -d); cp -a /var/lib/apt/lists "$keep/"
trap 'apt-get clean; rm -rf /var/lib/apt/lists; mv "$keep/lists" /var/lib/apt/lists; rmdir "$keep"' EXIT
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only ${packages.join(' ')} >/dev/null`;

let leftovers = false;
// Whether a `lab down` failed: its state is then kept for a second try.
export const labsLeftOver = () => leftovers;
let tearing: Promise<void> = Promise.resolve();
// Every caller (a scenario's end, Ctrl-C, a crash) waits for the same teardown, so the
// process never exits while a `lab down` is still running.
export function tearDown(): Promise<void> {
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

export const cursorOf = (lab: LiveLab, target: string) =>
  lab.sh(target, `p=\${SSH_CLIENT#* }; p=\${p%% *}
for i in $(seq 200); do journalctl -q -n 20 -o cat | grep -q "^Starting session: .* port $p id" && break; sleep 0.05; done
journalctl -q -n 0 --show-cursor`).then((s) => /-- cursor: (\S+)/.exec(s)?.[1] ?? '');

// Sessions and connections sshd logged since the cursor, without this probe's own: it waits
// until its own session line is in the journal, so every earlier line is too.
export async function sshdCounts(lab: LiveLab, target: string, cursor: string): Promise<{ sessions: number; connections: number }> {
  const c = `--after-cursor='${cursor}'`;
  const out = await lab.sh(target, `p=\${SSH_CLIENT#* }; p=\${p%% *}
for i in $(seq 200); do journalctl -q ${c} -o cat | grep -q "^Starting session: .* port $p id" && break; sleep 0.05; done
journalctl -q ${c} -o cat | grep -c '^Starting session: ' || true
journalctl -q ${c} -o cat | grep -c '^Connection from ' || true`);
  const [sessions = 0, connections = 0] = out.trim().split('\n').map(Number);
  return { sessions: sessions - 1, connections: connections - 1 };
}

// CPU the targets spent, summed over their cgroups (cgroup v2's cpu.stat, which the hybrid
// hierarchy has too): the work the lab does on this machine beside the controller, so a
// reader sees when the targets, not the tool, are the limit. undefined where there is none.
export async function targetCpuS(lab: LiveLab): Promise<number | undefined> {
  let usec = 0;
  for (const t of lab.targets) {
    const stats = await Promise.all(targetCgroups(lab.spec.bridge, t.name).map((d) => readFile(join(d, 'cpu.stat'), 'utf8').catch(() => '')));
    const used = stats.map((text) => /^usage_usec (\d+)/m.exec(text)?.[1]).find((v) => v !== undefined);
    if (used === undefined) return undefined;
    usec += Number(used);
  }
  return usec / 1e6;
}
