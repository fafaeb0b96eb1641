import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { execa } from 'execa';
import { labDown, labUp, sshArgs, type Lab } from '../../src/lab/index.js';
import type { Tasks } from '../../src/engine/tasks.js';
import { SshChannel } from '../../src/transport/ssh/index.js';
import type { Become } from '../../src/transport/transport.js';
import { apply, type Applied } from './apply.js';
import { loadConfig } from '../../src/lab/state.js';

// Lab tests need root and the lab's host tools; elsewhere they are skipped, saying why.
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const tools = ['systemd-nspawn', 'debootstrap', 'apt-cacher-ng', 'ssh', 'nft', 'ip', 'zstd'].every((t) => existsSync(`/usr/bin/${t}`) || existsSync(`/usr/sbin/${t}`));
export const labSkip: string | false = !root ? 'needs root' : !tools ? 'needs the lab tools (run ./scripts/setup)' : false;

export interface TestLab {
  lab: Lab;
  // Runs a shell command on a target as root over OpenSSH (independent of hostctl's transport).
  sh(name: string, command: string, options?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  // The lab's bridge-side interface of a target (to cut its link).
  hostVeth(name: string): Promise<string>;
  // Runs a role body on a target through the real engine and hostctl's SSH transport.
  apply(name: string, body: (h: Tasks) => Promise<unknown>, options?: { check?: boolean; user?: string; become?: Become }): Promise<Applied>;
}

// One lab per test file, each on its own subnet and bridge so files never collide with each
// other or with a developer's lab; torn down in `after` even when a test failed.
export function useLab(id: number, names: string[]): TestLab {
  const holder = {} as TestLab;
  let stateDir = '';
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), `hostctl-e2e-${id}-`));
    holder.lab = await labUp({ names, subnet: `10.220.${id}.0/24`, bridge: `hle2e${id}`, stateDir });
  });
  after(async () => {
    if (stateDir) await labDown({ stateDir, bridge: `hle2e${id}` });
  });
  holder.sh = async (name, command, options = {}) => {
    const config = (await loadConfig(stateDir))!;
    const target = config.targets.find((t) => t.name === name)!;
    const r = await execa('ssh', sshArgs(config, target, [command]), { reject: false, input: options.input ?? '', timeout: options.timeoutMs ?? 300_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  holder.apply = (name, body, options = {}) => {
    const target = holder.lab.targets.find((x) => x.name === name)!;
    return apply(body, {
      host: name,
      ...(options.check !== undefined ? { check: options.check } : {}),
      ...(options.become ? { become: options.become } : {}),
      channel: () => new SshChannel({ alias: name, host: target.address, user: options.user ?? 'root', privateKeyFiles: [holder.lab.keyPath], knownHostsFile: holder.lab.knownHostsPath }),
    });
  };
  holder.hostVeth = async (name) => (await loadConfig(stateDir))!.targets.find((t) => t.name === name)!.hostVeth;
  return holder;
}
