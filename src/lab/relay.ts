import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostctlError } from '../core/errors.js';
import { relayPort } from './network.js';
import type { LabConfig } from './options.js';
import { isAlive, recordOf, signal, waitUntil, type ProcessRecord } from './process.js';
import { loadPid, removeFile, savePid, statePaths } from './state.js';

// The relay is two daemons: apt-cacher-ng (the cache) on a loopback address of its own, and
// relay-server (the filter) on the bridge address that the targets use.
export function relayPaths(config: LabConfig) {
  const dir = statePaths(config.stateDir).relayDir;
  const run = statePaths(config.stateDir).run;
  return {
    dir,
    confDir: join(dir, 'conf'),
    acngLog: join(dir, 'acng.out'),
    filterLog: join(dir, 'filter.log'),
    acngPid: join(run, 'acng.json'),
    filterPid: join(run, 'relay.json'),
    // Per bridge: two acng daemons must not share one cache dir, but each lab's cache
    // outlives `down` so the next `apt-get install podman` is served locally.
    cacheDir: join(config.cacheDir, 'apt-cacher-ng', config.bridge),
  };
}

// 127.B.C.D for bridge A.B.C.D: a loopback address per lab (labs differ in subnet), so
// two labs' caches never fight over a port, and no target can reach it.
export const acngAddress = (config: LabConfig) => `127.${config.bridgeAddress.split('.').slice(1).join('.')}`;

export const relayUrl = (config: LabConfig) => `http://${config.bridgeAddress}:${relayPort}`;

export function relayConfig(config: LabConfig): string {
  const p = relayPaths(config);
  return `# Written by hostctl lab: the apt cache behind the relay filter of the lab on ${config.bridge}.
CacheDir: ${p.cacheDir}
LogDir: ${p.dir}
SupportDir: /usr/lib/apt-cacher-ng
SocketPath: ${join(p.dir, 'socket')}
BindAddress: ${acngAddress(config)}
Port: ${relayPort}
ForeGround: 1
# Defence in depth behind the filter: remapped Debian URLs only, no tunnels, no redirects.
ForceManaged: 1
PassThroughPattern: ^hostctl-lab-no-tunnel\\.invalid:1$
RedirMax: 0
Remap-debrep: deb.debian.org/debian /debian ; http://deb.debian.org/debian/
Remap-secdeb: security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; http://deb.debian.org/debian-security/
ExThreshold: 4
UnbufferLogs: 1
VerboseLog: 1
`;
}

export function tcpAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

// Detached in its own process group with output to a file: it outlives a CLI `up`, and
// `down` ends it alone by its recorded PID.
async function daemon(file: string, args: string[], logPath: string, pidPath: string, hint: string): Promise<ProcessRecord> {
  const out = openSync(logPath, 'a');
  const child = spawn(file, args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (cause) => reject(new HostctlError('internal', `cannot start ${file}`, { cause, hint })));
  });
  child.unref();
  const record = await recordOf(pid);
  if (!record) throw new HostctlError('internal', `${file} died at once`, { hint: `see ${logPath}` });
  await savePid(pidPath, record);
  return record;
}

async function waitForPort(host: string, port: number, record: ProcessRecord, what: string, logPath: string): Promise<void> {
  const up = await waitUntil(async () => (await tcpAnswers(host, port, 500)) || !(await isAlive(record)), 15_000, 100);
  if (!up || !(await tcpAnswers(host, port, 500))) {
    throw new HostctlError('internal', `${what} did not answer on ${host}:${port}`, { hint: `see ${logPath}` });
  }
}

// The filter runs from this same build: .js under dist, .ts (through tsx) in development.
function filterCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const script = join(self, '..', `relay-server${extname(self)}`);
  return script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), script] : [script];
}

export async function ensureRelay(config: LabConfig, log: (line: string) => void = () => {}): Promise<void> {
  const p = relayPaths(config);
  await mkdir(p.confDir, { recursive: true });
  await mkdir(p.cacheDir, { recursive: true });
  if (!(await isAlive(await loadPid(p.acngPid)))) {
    await writeFile(join(p.confDir, 'acng.conf'), relayConfig(config));
    const record = await daemon('apt-cacher-ng', ['-c', p.confDir], p.acngLog, p.acngPid, 'apt-get install apt-cacher-ng');
    await waitForPort(acngAddress(config), relayPort, record, 'apt-cacher-ng', join(p.dir, 'apt-cacher.err'));
  }
  if (!(await isAlive(await loadPid(p.filterPid)))) {
    const args = [...filterCommand(), config.bridgeAddress, String(relayPort), acngAddress(config), String(relayPort)];
    const record = await daemon(process.execPath, args, p.filterLog, p.filterPid, 'node must be able to run the relay filter');
    await waitForPort(config.bridgeAddress, relayPort, record, 'the relay filter', p.filterLog);
    log(`apt relay on ${relayUrl(config)}`);
  }
}

export async function relayAlive(config: LabConfig): Promise<{ pids: number[]; alive: boolean }> {
  const p = relayPaths(config);
  const records = [await loadPid(p.acngPid), await loadPid(p.filterPid)];
  const alive = (await Promise.all(records.map(isAlive))).every(Boolean);
  return { pids: records.flatMap((r) => (r ? [r.pid] : [])), alive };
}

async function stop(pidPath: string): Promise<void> {
  const record = await loadPid(pidPath);
  if (record && (await isAlive(record))) {
    const dead = () => isAlive(record).then((a) => !a);
    signal(record.pid, 'SIGTERM');
    if (!(await waitUntil(dead, 5000))) signal(record.pid, 'SIGKILL');
    await waitUntil(dead, 5000);
  }
  await removeFile(pidPath);
}

export async function stopRelay(config: LabConfig): Promise<void> {
  const p = relayPaths(config);
  await stop(p.filterPid);
  await stop(p.acngPid);
}
