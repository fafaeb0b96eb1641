import { exec, type ExecResult } from './exec.js';
import type { LabConfig, TargetConfig } from './options.js';
import { tcpAnswers } from './relay.js';
import { statePaths } from './state.js';
import { sleep } from './exec.js';

// OpenSSH options that trust exactly the lab's pinned host keys and use only the lab key.
export function sshOptions(config: LabConfig, options: { batch?: boolean } = {}): string[] {
  const p = statePaths(config.stateDir);
  return [
    '-i', p.key,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${p.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    ...(options.batch === false ? [] : ['-o', 'BatchMode=yes']),
  ];
}

export const sshArgs = (config: LabConfig, t: TargetConfig, command: string[] = [], options: { batch?: boolean } = {}) => [
  ...sshOptions(config, options),
  `root@${t.address}`,
  ...(command.length ? ['--', ...command] : []),
];

// One command over ssh; the caller judges the exit code.
export const sshRun = (config: LabConfig, t: TargetConfig, command: string, timeoutMs = 30_000): Promise<ExecResult> =>
  exec('ssh', sshArgs(config, t, [command]), { allowFail: true, timeoutMs });

export type SshWait = 'ready' | 'timeout' | 'exited' | 'aborted';

// Port 22 first (cheap, no noise), then a real login, which also proves the pinned host key.
// Gives up at once when the target's process is gone or another target's failure aborted
// the whole wait: nobody should sit out the timeout for a container that no longer runs.
export async function waitForSsh(
  config: LabConfig,
  t: TargetConfig,
  timeoutMs: number,
  running: () => Promise<boolean> = async () => true,
  signal?: AbortSignal,
): Promise<SshWait> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (signal?.aborted) return 'aborted';
    if (!(await running())) return 'exited';
    if ((await tcpAnswers(t.address, 22, 500)) && (await sshRun(config, t, 'true', 10_000)).code === 0) return 'ready';
    await sleep(200);
  }
  return 'timeout';
}
