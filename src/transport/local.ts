import { HostctlError } from '../core/errors.js';
import type { Channel, RunOptions, RunResult } from './transport.js';

// Commands on the controller itself (ansible_connection: local), through execa.
export class LocalChannel implements Channel {
  readonly description = 'local';

  async open(): Promise<void> {}

  async run(command: string, options: RunOptions = {}): Promise<RunResult> {
    if (options.signal?.aborted) throw new HostctlError('interrupted', 'interrupted');
    // Loaded on first use: execa alone costs ~90 ms of start-up that SSH-only runs never need.
    const { execa } = await import('execa');
    // Its own process group, so an interrupt or a timeout ends the whole command (a shell's
    // children included) and not just the shell, which would leave them holding the pipes.
    const child = execa('/bin/sh', ['-c', command], {
      input: options.stdin ?? '',
      encoding: 'buffer',
      reject: false,
      stripFinalNewline: false,
      detached: true,
    });
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
        stdout: Buffer.from(r.stdout),
        stderr: Buffer.from(r.stderr).toString('utf8'),
      };
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', killGroup);
    }
  }

  async close(): Promise<void> {}
}
