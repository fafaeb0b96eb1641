import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

// A real OpenSSH server for the transport tests: its own host key, config and authorized
// keys in a temp dir, listening on 127.0.0.1 on a free port, logging to our pipe.

export interface Sshd {
  port: number;
  dir: string;
  // A private key (ed25519, no passphrase) the server accepts for root.
  clientKey: string;
  // The server's public host key, "ssh-ed25519 AAAA...".
  hostKeyPublic: string;
  // `ssh-keygen -lf` of the host key: "SHA256:...".
  hostKeyFingerprint: string;
  // A plain known_hosts line for this server as OpenSSH would write it.
  knownHostsLine(name?: string): string;
  // Accept another public key file for root.
  authorize(publicKeyFile: string): Promise<void>;
  // Everything sshd logged so far.
  log(): string;
  // TCP connections sshd accepted so far (its "Connection from" log lines).
  connections(): number;
  // Waits until the log matches.
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  // SIGKILL the listener and every session process it forked: the connection drops
  // without a goodbye, like a crashed or rebooted host.
  killHard(): void;
  // SIGSTOP the session processes: the TCP connection stays up but nothing answers, like
  // a host that froze or a network path that silently drops packets.
  freeze(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function tempDir(prefix = 'hostctl-ssh-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function keygen(path: string, options: { passphrase?: string; type?: string } = {}): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', options.type ?? 'ed25519', '-N', options.passphrase ?? '', '-C', 'hostctl-test', '-f', path]);
  return path;
}

export async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const { stdout } = await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyFile]);
  const fp = stdout.split(' ')[1];
  if (!fp) throw new Error(`no fingerprint in ${stdout}`);
  return fp;
}

// Pids of every descendant of `pid`, from /proc.
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parens, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export async function startSshd(options: { extraConfig?: string[] } = {}): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  const dir = await tempDir('hostctl-sshd-');
  const hostKey = await keygen(join(dir, 'host_ed25519'));
  const clientKey = await keygen(join(dir, 'client_ed25519'));
  const authorized = join(dir, 'authorized_keys');
  await writeFile(authorized, await readFile(`${clientKey}.pub`));
  const hostKeyPublic = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const hostKeyFingerprint = await fingerprintOf(`${hostKey}.pub`);

  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 5 && !child; attempt += 1) {
    port = await freePort();
    const config = join(dir, 'sshd_config');
    await writeFile(
      config,
      sshdConfig({ listen: [`Port ${port}`, 'ListenAddress 127.0.0.1'], hostKey, authorized, extra: options.extraConfig ?? [] }),
    );
    const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    output = '';
    const started = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (chunk: string) => {
        output += chunk.replace(/\r/g, ''); // sshd -e ends lines with \r\n
        if (output.includes('Server listening on')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (started) child = proc;
    else proc.kill('SIGKILL');
  }
  if (!child) throw new Error(`sshd did not start:\n${output}`);
  const proc = child;
  const pid = proc.pid ?? 0;

  const sshd: Sshd = {
    port,
    dir,
    clientKey,
    hostKeyPublic,
    hostKeyFingerprint,
    knownHostsLine: (name = `[127.0.0.1]:${port}`) => `${name} ${hostKeyPublic}`,
    authorize: async (publicKeyFile) => appendFile(authorized, await readFile(publicKeyFile)),
    log: () => output,
    connections: () => output.split('\n').filter((l) => l.startsWith('Connection from ')).length,
    waitForLog: async (pattern, timeoutMs = 5000) => {
      const end = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (Date.now() > end) throw new Error(`sshd log never matched ${pattern}:\n${output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    killHard: () => {
      for (const p of [pid, ...descendants(pid)]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
    freeze: () => {
      for (const p of descendants(pid)) {
        try {
          process.kill(p, 'SIGSTOP');
        } catch {
          // Already gone.
        }
      }
    },
    stop: async () => {
      // Session processes outlive the listener; they are ours too.
      const all = [...descendants(pid), pid];
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        for (const p of all) {
          try {
            process.kill(p, 'SIGTERM');
            process.kill(p, 'SIGCONT'); // a frozen process acts on SIGTERM only once continued
          } catch {
            // Already gone.
          }
        }
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}

// A private sshd's configuration: keys only, root by key, no PAM, its own host key and
// authorized keys; the bench's fleet of sshds uses it too.
export function sshdConfig(o: { listen: string[]; hostKey: string; authorized: string; extra?: string[] }): string {
  return [
    ...o.listen,
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${o.authorized}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PidFile none',
    'StrictModes no',
    'LogLevel VERBOSE',
    ...(o.extra ?? []),
    '',
  ].join('\n');
}
