import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { HostctlError, unreachableError } from '../core/errors.js';
import { labCgroups, removeCgroupTree } from './cgroup.js';
import { exec, requireRoot } from './exec.js';
import { writeInventory } from './inventory.js';
import { defaults, resolveConfig, targetConfig, type LabConfig, type LabOptions } from './options.js';
import { isAlive, type ProcessRecord } from './process.js';
import { ensureHostLimits, releaseHostLimits } from './limits.js';
import {
  ensureBridge, ensureFirewall, ensureTargetNetwork, removeBridge, removeFirewall, removeTargetNetwork, strayNamespaces,
} from './network.js';
import { ensureRelay, relayAlive, relayUrl, stopRelay } from './relay.js';
import { ensureRootfs } from './rootfs.js';
import { sshRun, waitForSsh } from './ssh.js';
import { loadConfig, saveConfig, statePaths, targetPaths } from './state.js';
import { bootTarget, consoleTail, hostKey, prepareTarget, removeTargetFiles, stopTarget, targetRecord } from './target.js';

// What tests, benches and the CLI get back from `up`: enough to build a transport or an
// inventory without reading the state dir.
export interface Lab {
  stateDir: string;
  bridgeAddress: string;
  relayUrl: string;
  targets: { name: string; address: string; pid: number }[];
  inventoryPath: string;
  keyPath: string;
  knownHostsPath: string;
}

export interface TargetStatus {
  name: string;
  address: string;
  pid: number | undefined;
  alive: boolean;
  ssh: boolean;
  // `systemctl is-system-running`: running, degraded, starting, ... or undefined without ssh.
  systemState: string | undefined;
  failedUnits: string[];
  healthy: boolean;
}

export interface LabStatus {
  stateDir: string;
  exists: boolean;
  relay: { url: string; pids: number[]; alive: boolean } | undefined;
  targets: TargetStatus[];
  healthy: boolean;
}

const quiet = () => {};

async function ensureKey(config: LabConfig): Promise<string> {
  const key = statePaths(config.stateDir).key;
  if (!existsSync(key)) {
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `hostctl-lab@${config.bridge}`, '-f', key]);
  }
  return readFile(`${key}.pub`, 'utf8');
}

function labOf(config: LabConfig, records: Map<string, ProcessRecord>): Lab {
  const p = statePaths(config.stateDir);
  return {
    stateDir: config.stateDir,
    bridgeAddress: config.bridgeAddress,
    relayUrl: relayUrl(config),
    targets: config.targets.map((t) => ({ name: t.name, address: t.address, pid: records.get(t.name)?.pid ?? 0 })),
    inventoryPath: p.inventory,
    keyPath: p.key,
    knownHostsPath: p.knownHosts,
  };
}

// Brings every requested target up and leaves running ones alone: safe to call again.
export async function labUp(options: LabOptions = {}, sshTimeoutMs = 120_000): Promise<Lab> {
  requireRoot();
  const log = options.log ?? quiet;
  const config = resolveConfig(options, await loadConfig(options.stateDir ?? defaults.stateDir));
  const running = new Map<string, ProcessRecord>();
  for (const t of config.targets) {
    const record = await targetRecord(config, t.name);
    if (record && (await isAlive(record))) running.set(t.name, record);
  }
  // Before anything is made: a lab the host cannot hold is refused with nothing touched.
  await ensureHostLimits(config, config.targets.length - running.size, log);
  await mkdir(statePaths(config.stateDir).run, { recursive: true });
  // Recorded before anything is built, so `down` can clean up after a failed `up`.
  await saveConfig(config);
  const publicKey = await ensureKey(config);
  const lower = await ensureRootfs(config.cacheDir, log);
  await ensureBridge(config);
  await ensureFirewall(config);
  await ensureRelay(config, log);

  const records = new Map(running);
  for (const t of config.targets) {
    if (running.has(t.name)) continue;
    // Leftovers of a crashed target (processes in its cgroup) must go before it boots again.
    await stopTarget(config, t.name, log);
    await ensureTargetNetwork(config, t);
    await prepareTarget(config, t, lower, publicKey);
    records.set(t.name, await bootTarget(config, t));
    log(`${t.name}: booting at ${t.address}`);
  }
  const keys = new Map<string, string>();
  for (const t of config.targets) keys.set(t.name, await hostKey(config, t));
  await writeInventory(config, keys);

  // One target whose container exited fails the whole `up` at once; the others stop waiting.
  const abort = new AbortController();
  const waits = await Promise.all(config.targets.map(async (t) => {
    const started = Date.now();
    const result = await waitForSsh(config, t, sshTimeoutMs, () => isAlive(records.get(t.name)), abort.signal);
    if (result === 'exited') abort.abort();
    if (result === 'ready' && !running.has(t.name)) log(`${t.name}: ssh ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { t, result };
  }));
  const exited = waits.filter((w) => w.result === 'exited').map((w) => w.t);
  if (exited.length) {
    const reports = await Promise.all(exited.map(async (t) => {
      const lines = await consoleTail(config, t.name);
      return `${t.name} (${t.address}): its container exited; last console lines:\n    ${lines.join('\n    ')}`;
    }));
    throw unreachableError(reports.join('\n  '), {
      hint: `full console: ${exited.map((t) => targetPaths(config.stateDir, t.name).log).join(', ')}; \`hostctl lab down\` cleans up`,
    });
  }
  const late = waits.filter((w) => w.result !== 'ready').map((w) => w.t);
  if (late.length) {
    throw unreachableError(`no ssh answer from ${late.map((t) => `${t.name} (${t.address})`).join(', ')} within ${sshTimeoutMs / 1000} s`, {
      hint: `see ${late.map((t) => targetPaths(config.stateDir, t.name).log).join(', ')}`,
    });
  }
  return labOf(config, records);
}

// Removes everything `up` made except the rootfs cache and the relay's apt cache. Safe to
// run twice, after a failed up, or with nothing up at all.
export async function labDown(options: LabOptions = {}): Promise<void> {
  requireRoot();
  const log = options.log ?? quiet;
  const recorded = await loadConfig(options.stateDir ?? defaults.stateDir);
  const config = recorded ?? { ...resolveConfig({ ...options, count: 1, names: [] }), targets: [] };
  const targets = [...config.targets];
  // Namespaces and cgroups of this bridge that the state no longer knows about.
  const known = new Set(targets.map((t) => t.name));
  const strays = new Set<string>();
  for (const ns of await strayNamespaces(config.bridge)) strays.add(ns.slice(config.bridge.length + 1));
  for (const dir of labCgroups(config.bridge)) {
    if (existsSync(dir)) for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) strays.add(e.name);
  }
  for (const name of strays) if (!known.has(name)) targets.push(targetConfig(config.bridge, name, '0.0.0.0'));

  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`);
    }
  };
  await Promise.all(targets.map((t) => attempt(`stop ${t.name}`, () => stopTarget(config, t.name, log))));
  for (const t of targets) {
    await attempt(`network of ${t.name}`, () => removeTargetNetwork(t));
    await attempt(`files of ${t.name}`, () => removeTargetFiles(config, t.name));
    log(`${t.name}: removed`);
  }
  await attempt('relay', () => stopRelay(config));
  await attempt('bridge', () => removeBridge(config.bridge));
  await attempt('firewall', () => removeFirewall(config.bridge));
  for (const dir of labCgroups(config.bridge)) {
    await attempt(`cgroup ${dir}`, async () => {
      const left = await removeCgroupTree(dir);
      if (left.length) throw new Error(`still busy: ${left.join(', ')}`);
    });
  }
  if (problems.length) {
    throw new HostctlError('internal', `lab down left things behind:\n  ${problems.join('\n  ')}`, {
      hint: 'run `hostctl lab down` again; the state dir is kept until everything is gone',
    });
  }
  await releaseHostLimits(config, log);
  const p = statePaths(config.stateDir);
  for (const f of [p.inventory, p.knownHosts, p.key, `${p.key}.pub`, p.relayDir, p.run, p.targetsDir, p.config]) {
    await rm(f, { recursive: true, force: true });
  }
  // The state dir itself only when we emptied it: it may be a directory the user owns.
  await rmdir(config.stateDir).catch(() => {});
}

export async function labStatus(options: LabOptions = {}): Promise<LabStatus> {
  requireRoot();
  const stateDir = resolveConfig({ ...options, count: 1, names: [] }).stateDir;
  const config = await loadConfig(stateDir);
  if (!config) return { stateDir, exists: false, relay: undefined, targets: [], healthy: false };
  const relay = await relayAlive(config);
  const targets = await Promise.all(config.targets.map(async (t): Promise<TargetStatus> => {
    const record = await targetRecord(config, t.name);
    const alive = await isAlive(record);
    let ssh = false;
    let systemState: string | undefined;
    let failedUnits: string[] = [];
    if (alive) {
      const r = await sshRun(config, t, 'systemctl is-system-running; systemctl list-units --failed --plain --no-legend', 15_000);
      // 255 is ssh's own failure; anything else means we got in and systemctl answered.
      if (r.code !== 255 && r.stdout.trim()) {
        ssh = true;
        const [state, ...units] = r.stdout.trim().split('\n');
        systemState = state?.trim();
        failedUnits = units.map((u) => u.trim().split(/\s+/)[0]!).filter(Boolean);
      }
    }
    return {
      name: t.name, address: t.address, pid: record?.pid, alive, ssh, systemState, failedUnits,
      healthy: alive && ssh && systemState === 'running',
    };
  }));
  return {
    stateDir,
    exists: true,
    relay: { url: relayUrl(config), ...relay },
    targets,
    healthy: relay.alive && targets.length > 0 && targets.every((t) => t.healthy),
  };
}

export async function labConfig(options: LabOptions = {}): Promise<LabConfig | undefined> {
  return loadConfig(resolveConfig({ ...options, count: 1, names: [] }).stateDir);
}
