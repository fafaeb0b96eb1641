import { setMaxListeners } from 'node:events';
import { constants } from 'node:os';
import pRetry from 'p-retry';
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { HostctlError, hostError, isHostctlError, unreachableError } from '../../core/errors.js';
import { firstLine } from '../../core/text.js';
import type { Channel, RunOptions, RunResult, StartOptions, Started } from '../transport.js';
import { loadSshConfig, resolveTarget, type ResolvedTarget, type SshTargetOptions } from './config.js';
import { ConnectFailure, connectChain, type ConnectContext } from './connect.js';
import { ttyPrompter, type Prompter } from './prompt.js';
import { Semaphore } from './semaphore.js';

// SSH handshakes in flight at once, for the whole run. Each costs the target a process and
// key exchange CPU, and each attempt's timeout runs from its start: a thousand at once (forks
// 1,000) starve each other and time out together, however fast a single one is. Queued
// before the attempt, so the wait does not count against the connect timeout; connections
// already up are not limited.
const handshakes = new Semaphore(64);

export interface SshChannelOptions extends SshTargetOptions {
  // Extra attempts after a network failure (refused, reset, timed out); default 2.
  // Authentication and host key refusals are never retried.
  connectRetries?: number | undefined;
  // stdin is a TTY: passphrases and unknown host keys may be asked about.
  interactive?: boolean | undefined;
  // ssh-agent socket; default $SSH_AUTH_SOCK, `false` for none.
  agentSocket?: string | false | undefined;
  // Who answers questions when interactive; default the terminal.
  prompter?: Prompter | undefined;
  // Concurrent exec channels; default 8, below OpenSSH's MaxSessions 10.
  maxSessions?: number | undefined;
  // SSH-level keepalive; default 15 s (3 unanswered = connection lost).
  keepaliveIntervalMs?: number | undefined;
  // Where warnings about the connection go (a stale key for the host's IP address);
  // default stderr.
  warn?: ((message: string) => void) | undefined;
}

// The engine's Channel over one ssh2 connection per host, kept for the whole run: each
// command is an exec channel (`ssh host CMD`: the login shell runs it), up to
// `maxSessions` at a time.
export class SshChannel implements Channel {
  readonly description: string;
  readonly #options: SshChannelOptions;
  readonly #target: ResolvedTarget | undefined;
  readonly #targetError: unknown;
  readonly #sessions: Semaphore;
  // Hops of the connection, outermost ProxyJump first, the target last.
  #clients: SshClient[] = [];
  #opening: Promise<void> | undefined;
  // Aborted once the connection is gone; its reason says why.
  #lost = lostController();
  #closing = false;

  constructor(options: SshChannelOptions) {
    this.#options = options;
    this.#sessions = new Semaphore(options.maxSessions ?? 8);
    let target: ResolvedTarget | undefined;
    let targetError: unknown;
    try {
      target = resolveTarget(options, loadSshConfig(options.sshConfigFile));
    } catch (error) {
      // Reported by open(), where the engine handles per-host failures.
      targetError = error;
    }
    this.#target = target;
    this.#targetError = targetError;
    this.description = target
      ? `ssh ${target.user}@${target.host}:${target.port}${target.jumps.length > 0 ? ` via ${target.jumps.map((j) => j.label).join(',')}` : ''}`
      : `ssh ${options.alias}`;
  }

  // The resolved target (HostName, user, port, keys, jumps): for -v output and tests.
  get target(): ResolvedTarget | undefined {
    return this.#target;
  }

  open(): Promise<void> {
    this.#opening ??= this.#connect().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #connect(): Promise<void> {
    const target = this.#target;
    if (!target) throw this.#targetError;
    const options = this.#options;
    const agent = options.agentSocket === false ? undefined : (options.agentSocket ?? process.env.SSH_AUTH_SOCK);
    const ctx: ConnectContext = {
      agentSocket: agent || undefined,
      interactive: options.interactive ?? false,
      prompter: options.prompter ?? ttyPrompter,
      hostKeys: {
        knownHostsFiles: target.knownHostsFiles,
        writeFile: target.knownHostsFiles[0] ?? '',
        acceptNew: target.acceptNewHostKeys,
        hashNew: target.hashKnownHosts,
        warn: options.warn ?? ((message) => process.stderr.write(`hostctl: ${message}\n`)),
      },
      connectTimeoutMs: target.connectTimeoutMs,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
    };
    const where = `host ${target.label} (${target.host}:${target.port})`;
    let clients: SshClient[];
    try {
      clients = await pRetry(() => handshakes.acquire().then((release) => connectChain(target, ctx).finally(release)), {
        retries: options.connectRetries ?? 2,
        minTimeout: 200,
        factor: 2,
        maxTimeout: 1000,
        shouldRetry: ({ error }) => error instanceof ConnectFailure && error.retryable,
      });
    } catch (error) {
      if (isHostctlError(error)) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw unreachableError(`${where} is unreachable: ${reason}`, {
        cause: error,
        ...(error instanceof ConnectFailure && !error.retryable && reason.startsWith('permission denied')
          ? { hint: 'check ansible_user and ansible_ssh_private_key_file (or the keys in ssh-agent)' }
          : {}),
      });
    }
    this.#clients = clients;
    this.#lost = lostController();
    this.#closing = false;
    for (const [i, client] of clients.entries()) {
      let lastError: Error | undefined;
      // Keepalive timeouts and socket errors arrive as 'error' just before 'close'.
      client.on('error', (error: Error) => {
        lastError = error;
      });
      client.on('close', () => {
        const hop = i < clients.length - 1 ? `jump host ${target.jumps[i]?.label}: ` : '';
        this.#markLost(`${hop}${lastError?.message ?? 'the server closed the connection'}`);
      });
    }
  }

  #markLost(reason: string): void {
    if (this.#lost.signal.aborted) return;
    this.#lost.abort(reason);
    // The hops around the one that died are useless now.
    for (const client of this.#clients) client.destroy();
  }

  #lostError(command: string, when: 'during' | 'before'): HostctlError {
    const alias = this.#options.alias;
    const reason = String(this.#lost.signal.reason ?? 'closed');
    if (this.#closing) return unreachableError(`connection to ${alias} was closed ${when === 'during' ? 'during' : 'before'}: ${firstLine(command, 120)}`);
    return unreachableError(
      when === 'during'
        ? `connection to ${alias} lost during: ${firstLine(command, 120)} (${reason})`
        : `connection to ${alias} lost earlier (${reason}); not running: ${firstLine(command, 120)}`,
    );
  }

  run(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.start(command, options).result;
  }

  start(command: string, options: StartOptions = {}): Started {
    const input = { ended: false, stream: undefined as ClientChannel | undefined };
    const endInput = () => {
      input.ended = true;
      input.stream?.end();
    };
    return { result: this.#start(command, options, input), endInput };
  }

  // The connection broke under us (not closed by close()).
  get lost(): boolean {
    // Stays true through failed reconnects: only a new connection replaces #lost.
    return this.#lost.signal.aborted && !this.#closing;
  }

  async reconnect(): Promise<void> {
    if (!this.lost) return;
    for (const client of this.#clients) client.destroy();
    this.#clients = [];
    this.#opening = undefined;
    await this.open();
  }

  async #start(command: string, options: StartOptions, input: Input): Promise<RunResult> {
    if (this.#lost.signal.aborted) throw this.#lostError(command, 'before');
    await this.open();
    const lost = this.#lost.signal;
    if (lost.aborted) throw this.#lostError(command, 'before');
    let release: () => void;
    try {
      release = await this.#sessions.acquire([lost, options.signal]);
    } catch (error) {
      if (lost.aborted) throw this.#lostError(command, 'during');
      throw interrupted(command, error);
    }
    const client = this.#clients[this.#clients.length - 1];
    if (!client || lost.aborted) {
      release();
      throw this.#lostError(command, lost.aborted ? 'during' : 'before');
    }
    return this.#exec(client, command, options, input, lost, release);
  }

  #exec(client: SshClient, command: string, options: StartOptions, input: Input, lost: AbortSignal, release: () => void): Promise<RunResult> {
    return new Promise<RunResult>((resolve, reject) => {
      let settled = false;
      let stream: ClientChannel | undefined;
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        lost.removeEventListener('abort', onLost);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        cleanup();
        fn();
      };
      // Give up on the command: close its channel and free its permit at once. OpenSSH
      // neither honours "signal" requests for commands without a pty nor kills them when
      // the channel closes, so the remote command runs on until it exits by itself, as
      // after `ssh host CMD` is killed locally. The server counts that session until then;
      // the 2 spare sessions under MaxSessions absorb a few such leftovers, and beyond that
      // a new command fails with a clear "refused a new session" instead of hanging here.
      const stop = () => {
        release();
        stream?.close();
      };
      const onLost = () => {
        release();
        settle(() => reject(this.#lostError(command, 'during')));
      };
      const onAbort = () => {
        stop();
        settle(() => reject(interrupted(command, options.signal?.reason)));
      };
      if (options.signal?.aborted) {
        release();
        return reject(interrupted(command, options.signal.reason));
      }
      lost.addEventListener('abort', onLost, { once: true });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timer = setTimeout(() => {
          stop();
          settle(() =>
            reject(
              hostError(`timed out after ${options.timeoutMs} ms: ${firstLine(command, 120)}`, {
                hint: 'the command may still be running on the host: OpenSSH does not stop it when the channel closes',
              }),
            ),
          );
        }, options.timeoutMs);
      }

      const onOpen = (error: Error | undefined, channel: ClientChannel) => {
        if (error) {
          release();
          if (lost.aborted) return onLost();
          return settle(() =>
            reject(
              hostError(`${this.#options.alias} refused a new session for: ${firstLine(command, 120)} (${error.message})`, {
                cause: error,
                hint: 'the server may allow fewer than 8 sessions per connection (sshd MaxSessions)',
              }),
            ),
          );
        }
        stream = channel;
        if (settled) {
          // Timed out or aborted while the channel was opening.
          channel.close();
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | undefined;
        let signal: string | undefined;
        channel.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          options.onStdout?.(chunk);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr.push(chunk);
          options.onStderr?.(chunk);
        });
        channel.on('exit', (c: number | null, s?: string) => {
          if (typeof c === 'number') code = c;
          else signal = s;
        });
        // Writing stdin to a command that exits early fails with EPIPE-like errors; the
        // exit status is what counts.
        channel.on('error', () => {});
        const finish = () => {
          release();
          settle(() => {
            if (code !== undefined) {
              resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
              return;
            }
            const number = signal ? constants.signals[signal as keyof typeof constants.signals] : undefined;
            if (number !== undefined) {
              resolve({ code: 128 + number, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
              return;
            }
            reject(
              hostError(
                signal
                  ? `\`${firstLine(command, 120)}\` was killed by ${signal}`
                  : `\`${firstLine(command, 120)}\` ended without an exit status`,
              ),
            );
          });
        };
        channel.on('close', () => {
          // 'close' follows the end of stdout; wait for stderr's end too.
          if (channel.stderr.readableEnded) finish();
          else channel.stderr.once('end', finish);
        });
        input.stream = channel;
        if (!options.holdInput || input.ended) channel.end(options.stdin);
        else if (options.stdin !== undefined) channel.write(options.stdin);
      };

      try {
        client.exec(command, onOpen);
      } catch (error) {
        // ssh2 throws "Not connected" when the socket is already gone.
        this.#markLost((error as Error).message);
        onLost();
      }
    });
  }

  async close(): Promise<void> {
    const opening = this.#opening;
    this.#opening = undefined;
    if (opening) await opening.catch(() => undefined);
    if (this.#clients.length === 0) return;
    this.#closing = true;
    const clients = [...this.#clients].reverse();
    this.#clients = [];
    await Promise.all(
      clients.map(
        (client) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              client.destroy();
              resolve();
            }, 1000);
            client.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            client.end();
          }),
      ),
    );
    this.#lost.abort('closed');
  }
}

// A started command's stdin: ended by endInput(), possibly before the channel opened.
interface Input {
  ended: boolean;
  stream: ClientChannel | undefined;
}

// Every pending run listens on it: more than Node's default 10 listeners is normal.
function lostController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

function interrupted(command: string, reason: unknown): HostctlError {
  return new HostctlError('interrupted', `interrupted: ${firstLine(command, 120)}`, { cause: reason });
}
