import { execa } from 'execa';
import type { Channel, RunOptions, RunResult } from './transport.js';

// Commands on the controller itself (ansible_connection: local), through execa.
export class LocalChannel implements Channel {
  readonly description = 'local';

  async open(): Promise<void> {}

  async run(command: string, options: RunOptions = {}): Promise<RunResult> {
    const r = await execa('/bin/sh', ['-c', command], {
      input: options.stdin ?? '',
      encoding: 'buffer',
      reject: false,
      stripFinalNewline: false,
      ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      ...(options.signal ? { cancelSignal: options.signal } : {}),
    });
    if (r.isCanceled || r.timedOut) {
      throw new Error(r.timedOut ? `timed out after ${options.timeoutMs} ms: ${command.split('\n')[0]}` : 'interrupted');
    }
    return {
      code: r.exitCode ?? 128 + 1,
      stdout: Buffer.from(r.stdout),
      stderr: Buffer.from(r.stderr).toString('utf8'),
    };
  }

  async close(): Promise<void> {}
}
