import net from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { isHostctlError } from '../../core/errors.js';
import { AuthSequence } from './auth.js';
import type { Endpoint, ResolvedTarget } from './config.js';
import { hostKeyName, verifyHostKey, type HostIdentity, type HostKeyPolicy } from './host-key.js';
import { hostFieldMatches, knownHostName, preferredHostKeyAlgorithms, readKnownHosts } from './known-hosts.js';
import type { Prompter } from './prompt.js';

// Establishing authenticated ssh2 Clients: a TCP socket made here (Nagle off: ~4 ms per
// command instead of ~47 ms), or a channel forwarded by the previous ProxyJump hop, then
// host key check and authentication. Retrying is the caller's business; this module only
// says whether a failure is worth retrying.

export interface ConnectContext {
  agentSocket: string | undefined;
  interactive: boolean;
  prompter: Prompter;
  hostKeys: Omit<HostKeyPolicy, 'interactive' | 'prompter'>;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
}

// A failed attempt. `retryable` is true for network trouble (refused, reset, timed out,
// closed before the handshake), false for answers that will not change (bad credentials).
export class ConnectFailure extends Error {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, cause?: unknown) {
    super(message, { cause });
    this.name = 'ConnectFailure';
    this.retryable = retryable;
  }
}

// The time budget of one connection attempt (TCP connect + SSH handshake + auth), with
// the clock stopped while a human answers a prompt: ssh2's own readyTimeout would run on
// and kill a connection whose passphrase is being typed.
class Deadline {
  readonly ms: number;
  #remaining: number;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #paused = 0;
  #done = false;
  onExpire: () => void = () => {};

  constructor(ms: number) {
    this.ms = ms;
    this.#remaining = ms;
    this.#arm();
  }

  #arm(): void {
    this.#startedAt = Date.now();
    this.#timer = setTimeout(() => {
      this.#done = true;
      this.onExpire();
    }, this.#remaining);
  }

  async around<T>(ask: () => Promise<T>): Promise<T> {
    if (this.#paused++ === 0 && !this.#done) {
      clearTimeout(this.#timer);
      this.#remaining -= Date.now() - this.#startedAt;
    }
    try {
      return await ask();
    } finally {
      if (--this.#paused === 0 && !this.#done) this.#arm();
    }
  }

  stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
  }
}

// Socket errors that retrying cannot fix.
const PERMANENT_SOCKET_ERRORS = new Set(['ENOTFOUND', 'EACCES', 'EINVAL']);

function tcpConnect(host: string, port: number, deadline: Deadline): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, noDelay: true });
    sock.setNoDelay(true);
    const done = () => {
      sock.off('error', onError);
      sock.off('connect', onConnect);
    };
    const onError = (error: NodeJS.ErrnoException) => {
      done();
      sock.destroy();
      reject(new ConnectFailure(error.message, !PERMANENT_SOCKET_ERRORS.has(error.code ?? ''), error));
    };
    const onConnect = () => {
      done();
      resolve(sock);
    };
    deadline.onExpire = () => {
      done();
      sock.destroy();
      reject(new ConnectFailure(`no TCP connection within ${deadline.ms} ms`, true));
    };
    sock.once('error', onError);
    sock.once('connect', onConnect);
  });
}

// A direct-tcpip channel through the previous hop: what `ssh -J` does with `-W host:port`.
function forwardThrough(via: SshClient, host: string, port: number, deadline: Deadline): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    let settled = false;
    deadline.onExpire = () => {
      settled = true;
      reject(new ConnectFailure(`the jump host opened no channel to ${host}:${port} within ${deadline.ms} ms`, true));
    };
    try {
      via.forwardOut('127.0.0.1', 0, host, port, (error, stream) => {
        if (settled) {
          stream?.close();
          return;
        }
        settled = true;
        if (error) reject(new ConnectFailure(`the jump host could not reach ${host}:${port}: ${error.message}`, true, error));
        else resolve(stream);
      });
    } catch (error) {
      settled = true;
      reject(new ConnectFailure(`the jump host connection is gone: ${(error as Error).message}`, true, error));
    }
  });
}

// The address to hold CheckHostIP against, in known_hosts form; none where OpenSSH skips
// the check: through a jump (no address of our own), to a loopback address (many servers
// behind one address), or when the HostName is the address itself (then it IS the identity).
function checkedAddress(endpoint: Endpoint, address: string | undefined): string | undefined {
  if (!endpoint.checkHostIp || address === undefined || net.isIP(endpoint.host) !== 0) return undefined;
  if (address === '::1' || address.startsWith('127.')) return undefined;
  return knownHostName(address, endpoint.port);
}

// One authenticated Client for `endpoint`, directly or through `via`.
export async function connectEndpoint(endpoint: Endpoint, via: SshClient | undefined, ctx: ConnectContext): Promise<SshClient> {
  const deadline = new Deadline(ctx.connectTimeoutMs);
  try {
    let sock: Duplex;
    let address: string | undefined;
    if (via) {
      sock = await forwardThrough(via, endpoint.host, endpoint.port, deadline);
    } else {
      const tcp = await tcpConnect(endpoint.host, endpoint.port, deadline);
      address = tcp.remoteAddress?.replace(/^::ffff:/, '');
      sock = tcp;
    }
    return await handshake(endpoint, sock, address, ctx, deadline);
  } finally {
    deadline.stop();
  }
}

async function handshake(
  endpoint: Endpoint,
  sock: Duplex,
  address: string | undefined,
  ctx: ConnectContext,
  deadline: Deadline,
): Promise<SshClient> {
  const host: HostIdentity = {
    label: endpoint.label,
    host: endpoint.host,
    port: endpoint.port,
    name: hostKeyName(endpoint),
    address: checkedAddress(endpoint, address),
  };
  // Only what is filed under the name or the address is ever matched (host-key.ts).
  const entries = await readKnownHosts(ctx.hostKeys.knownHostsFiles, [host.name, ...(host.address ? [host.address] : [])]);
  const knownTypes = new Set(
    entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, host.name)).map((e) => e.keyType),
  );
  const whilePrompting = <T>(ask: () => Promise<T>) => deadline.around(ask);
  const prompter: Prompter = {
    secret: (q) => whilePrompting(() => ctx.prompter.secret(q)),
    confirm: (q) => whilePrompting(() => ctx.prompter.confirm(q)),
  };
  const auth = new AuthSequence({
    user: endpoint.user,
    identityFiles: endpoint.identityFiles,
    agentSocket: ctx.agentSocket,
    interactive: ctx.interactive,
    prompter: ctx.prompter,
    whilePrompting,
  });
  const client = new ssh2.Client();
  // Why we refused the host key; ssh2 itself only reports "Host denied".
  let refusal: Error | undefined;

  return new Promise<SshClient>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      deadline.stop();
      client.destroy();
      sock.destroy();
      reject(error);
    };
    deadline.onExpire = () => fail(new ConnectFailure(`no SSH handshake within ${deadline.ms} ms`, true));
    client.once('ready', () => {
      if (settled) {
        client.end();
        return;
      }
      settled = true;
      deadline.stop();
      resolve(client);
    });
    client.on('error', (error: Error & { level?: string }) => {
      if (settled) return;
      if (refusal) return fail(refusal);
      if (auth.fatal) return fail(auth.fatal);
      switch (error.level) {
        case 'agent':
          // ssh2 goes on with the next method; note it for the final message.
          auth.unusable.push(`ssh-agent (${error.message})`);
          return;
        case 'client-authentication':
          if (/all configured authentication methods failed/i.test(error.message)) {
            const why = auth.failure(`host ${endpoint.label}`);
            return fail(isHostctlError(why) ? why : new ConnectFailure(why.message, false));
          }
          auth.unusable.push(error.message);
          return;
        case 'client-socket':
        case 'client-timeout':
        case 'protocol':
          return fail(new ConnectFailure(error.message, true, error));
        default:
          // Handshake errors (no common algorithm, bad packets): not fixed by retrying.
          return fail(new ConnectFailure(error.message, false, error));
      }
    });
    client.on('close', () => fail(refusal ?? new ConnectFailure('the server closed the connection during the SSH handshake', true)));
    client.connect({
      sock: sock as unknown as net.Socket,
      username: endpoint.user,
      // The Deadline above is the ready timeout, paused while a human answers.
      readyTimeout: 0,
      keepaliveInterval: ctx.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      algorithms: { serverHostKey: preferredHostKeyAlgorithms(knownTypes) },
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        verifyHostKey(key, entries, host, { ...ctx.hostKeys, interactive: ctx.interactive, prompter }).then(
          () => verify(true),
          (error: unknown) => {
            refusal = error instanceof Error ? error : new Error(String(error));
            verify(false);
          },
        );
      },
      authHandler: auth.handler,
    });
  });
}

// Every hop of `target`, outermost ProxyJump first and the target last, each one tunnelled
// through the one before. On failure the hops already open are closed again.
export async function connectChain(target: ResolvedTarget, ctx: ConnectContext): Promise<SshClient[]> {
  const clients: SshClient[] = [];
  try {
    let via: SshClient | undefined;
    for (const endpoint of [...target.jumps, target]) {
      try {
        via = await connectEndpoint(endpoint, via, ctx);
      } catch (error) {
        if (endpoint !== target && error instanceof ConnectFailure) {
          throw new ConnectFailure(
            `jump host ${endpoint.label} (${endpoint.host}:${endpoint.port}): ${error.message}`,
            error.retryable,
            error.cause,
          );
        }
        throw error;
      }
      clients.push(via);
    }
    return clients;
  } catch (error) {
    for (const client of clients.reverse()) client.end();
    throw error;
  }
}
