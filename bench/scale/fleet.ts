import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keygen, sshdConfig } from '../../test/ssh/sshd.js';

// N real OpenSSH servers on this machine, one per inventory host: each its own process, host
// key, config and log, listening on its own loopback address (127.77.x.y:22), so no single
// sshd's MaxStartups throttles the fleet and every host is a separate TCP endpoint, as in a
// real fleet. Only loopback addresses are used. A watchdog ends them all after maxSeconds
// even if the bench itself is killed hard.

export interface Endpoint {
  name: string;
  address: string;
  pid: number;
  log: string;
  // Where this host's job writes (all sshds run on the same machine).
  root: string;
}

export interface Fleet {
  dir: string;
  clientKey: string;
  knownHosts: string;
  endpoints: Endpoint[];
  // Connections the sshds accepted so far (their "Connection from" log lines), summed.
  connections(): Promise<number>;
  // CPU the sshds and everything they forked and reaped spent so far (utime, stime, cutime,
  // cstime of each listener: the sessions and the commands they ran), in seconds.
  cpuS(): number;
  stop(): Promise<void>;
}

const CLK_TCK = 100;
// 127.77.0.1 .. 127.77.3.232 for 1,000 hosts: clear of 127.0.0.1 and of anything else.
export const addressOf = (i: number) => `127.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;
export const nameOf = (i: number) => `h${String(i + 1).padStart(4, '0')}`;

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

// Host keys are kept between bench runs: a key already there is not made again.
async function keyOnce(path: string): Promise<void> {
  if (!existsSync(path)) await keygen(path);
}

const listening = async (log: string, timeoutMs: number) => {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await readFile(log, 'utf8').catch(() => '')).includes('Server listening on')) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
};

export async function startFleet(n: number, dir: string, maxSeconds: number): Promise<Fleet> {
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  const clientKey = join(dir, 'client_ed25519');
  await keyOnce(clientKey);
  const authorized = join(dir, 'authorized_keys');
  await writeFile(authorized, await readFile(`${clientKey}.pub`));
  const endpoints: Endpoint[] = Array.from({ length: n }, (_, i) => {
    const name = nameOf(i);
    return { name, address: addressOf(i), pid: 0, log: join(dir, 'hosts', name, 'sshd.log'), root: join(dir, 'hosts', name, 'root') };
  });
  // Host keys are kept between bench runs (dir persists): only new hosts pay ssh-keygen.
  await inBatches(endpoints, 16, async (e) => {
    mkdirSync(join(dir, 'hosts', e.name), { recursive: true });
    await keyOnce(join(dir, 'hosts', e.name, 'host_ed25519'));
  });
  const lines: string[] = [];
  for (const e of endpoints) {
    const hostDir = join(dir, 'hosts', e.name);
    const config = join(hostDir, 'sshd_config');
    mkdirSync(join(hostDir, 'home'), { recursive: true });
    await writeFile(config, sshdConfig({
      listen: [`ListenAddress ${e.address}:22`],
      hostKey: join(hostDir, 'host_ed25519'),
      authorized,
      extra: [
        // Ansible's forks each open their own session on the one connection a ControlMaster holds.
        'MaxSessions 100',
        // root's login shell is bash, which sources ~/.bashrc for ssh commands: this machine's
        // (pyenv init: ~0.35 s of CPU and a lock per session) is no target's. Each host gets
        // an empty home of its own, as a fresh target's root has.
        `SetEnv HOME=${join(hostDir, 'home')}`,
      ],
    }));
    lines.push(`${e.address} ${(await readFile(join(hostDir, 'host_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ')}`);
  }
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `${lines.join('\n')}\n`);
  await inBatches(endpoints, 50, async (e) => {
    await writeFile(e.log, '');
    const child = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'hosts', e.name, 'sshd_config'), '-E', e.log], { stdio: 'ignore' });
    e.pid = child.pid ?? 0;
    if (!(await listening(e.log, 10_000))) throw new Error(`sshd ${e.name} on ${e.address}:22 did not start: ${await readFile(e.log, 'utf8')}`);
  });
  // Ends the sshds after maxSeconds whatever happens to the bench; stopped with them.
  const watchdog = spawn('sh', ['-c', `sleep ${maxSeconds}; kill ${endpoints.map((e) => e.pid).join(' ')}`], { stdio: 'ignore', detached: true });
  watchdog.unref();

  const procCpu = (pid: number) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
    } catch {
      return 0;
    }
  };
  return {
    dir,
    clientKey,
    knownHosts,
    endpoints,
    connections: async () => {
      const counts: number[] = [];
      await inBatches(endpoints, 100, async (e) => {
        counts.push((await readFile(e.log, 'utf8')).split('\n').filter((l) => l.startsWith('Connection from ')).length);
      });
      return counts.reduce((a, b) => a + b, 0);
    },
    cpuS: () => endpoints.reduce((sum, e) => sum + procCpu(e.pid), 0),
    stop: async () => {
      for (const pid of [...endpoints.map((e) => e.pid), watchdog.pid ?? 0]) {
        try {
          if (pid) process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    },
  };
}

// The inventory both tools read: every endpoint as a host with its own job root.
export async function writeInventory(fleet: Fleet, path: string): Promise<void> {
  const hosts = fleet.endpoints.map((e) =>
    `    ${e.name}: { ansible_host: ${e.address}, ansible_port: 22, ansible_user: root, ansible_ssh_private_key_file: ${fleet.clientKey}, scale_root: ${e.root} }`);
  await writeFile(path, `all:\n  hosts:\n${hosts.join('\n')}\n`);
}
