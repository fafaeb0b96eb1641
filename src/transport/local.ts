import { HostctlError } from '../core/errors.js';
import type { Channel, RunOptions, RunResult, StartOptions, Started } from './transport.js';

// Commands on the controller itself (ansible_connection: local), through execa.
export class LocalChannel implements Channel {
  readonly description = 'local';
  // A local "connection" cannot break.
  readonly lost = false;

  async open(): Promise<void> {}

  async reconnect(): Promise<void> {}

  run(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.start(command, options).result;
  }

  start(command: string, options: StartOptions = {}): Started {
    let child: import('execa').ResultPromise | undefined;
    let inputEnded = false;
    const endInput = () => {
      inputEnded = true;
      child?.stdin?.end();
    };
    return { result: this.#run(command, options, (c) => (child = c), () => inputEnded), endInput };
  }

  async #run(command: string, options: StartOptions, started: (child: import('execa').ResultPromise) => void, inputEnded: () => boolean): Promise<RunResult> {
    if (options.signal?.aborted) throw new HostctlError('interrupted', 'interrupted');
    // Loaded on first use: execa alone costs ~90 ms of start-up that SSH-only runs never need.
    const { execa } = await import('execa');
    // Its own process group, so an interrupt or a timeout ends the whole command (a shell's
    // children included) and not just the shell, which would leave them holding the pipes.
    // A held stdin is a pipe this process owns: when it dies (even by kill -9) the command
    // reads end of file, as over SSH when the connection drops.
    const child = execa('/bin/sh', ['-c', command], {
      ...(options.holdInput ? {} : { input: options.stdin ?? '' }),
      encoding: 'buffer',
      reject: false,
      stripFinalNewline: false,
      detached: true,
    });
    started(child);
    if (options.holdInput) {
      if (options.stdin !== undefined) child.stdin?.write(options.stdin);
      if (inputEnded()) child.stdin?.end();
    }
    if (options.onStdout) child.stdout?.on('data', options.onStdout);
    if (options.onStderr) child.stderr?.on('data', options.onStderr);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    };
    const timer = options.timeoutMs ? setTimeout(killGroup, options.timeoutMs) : undefined;
    options.signal?.addEventListener('abort', killGroup, { once: true });
    // An interrupt that came while the child was being made would otherwise be missed.
    if (options.signal?.aborted) killGroup();
    try {
      const r = await child;
      if (options.signal?.aborted) throw new HostctlError('interrupted', 'interrupted');
      if (r.signal && timer && !options.signal?.aborted) {
        throw new HostctlError('host', `timed out after ${options.timeoutMs} ms: ${command.split('\n')[0]}`);
      }
      return {
        code: r.exitCode ?? 128 + (r.signal === 'SIGKILL' ? 9 : 15),
        stdout: Buffer.from(r.stdout as Uint8Array),
        stderr: Buffer.from(r.stderr as Uint8Array).toString('utf8'),
      };
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', killGroup);
    }
  }

  async close(): Promise<void> {}
}
